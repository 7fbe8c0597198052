/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * state.h - what mtlsgw must remember across restarts: the CA backends'
 * certificates and key URIs, every certificate it issued, the trust domain
 * and the history of CA rotations. One SQLite database, <state_dir>/state.db,
 * in WAL mode; every change that spans rows is one transaction, so a crash
 * leaves either all of it or none of it (docs/architecture.md "State").
 *
 * Keys never go in here: only pkcs11: URIs naming them in the HSM.
 *
 * Crash testing, in builds with -Dtest_hooks=true only (tests/run.sh sets
 * it; a release build never has it): if the environment variable
 * GW_STATE_CRASH_AT names the label passed to gw_state_commit() (e.g.
 * "ca-create", "enable"), the process _exit()s with status 86 just before
 * that COMMIT, which is what a kill at that moment does to the database.
 *
 * Files: state_dir is created 0700; an existing one owned by another
 * non-root user or writable by group or others is refused (-GW_E_STATE,
 * "chmod 700 it"), one only readable by them is tightened to 0700.
 * state.db, -wal and -shm are 0600 (made so before SQLite opens the
 * database, which copies its mode to the other two); symlinks are refused.
 *
 * Not MT-safe: one struct gw_state per thread (control thread).
 * Errors: -GW_E_STATE with gw_err_msg() naming the file and SQLite's reason;
 * -ENOENT for a row that is not there; -EINVAL, -ENOMEM.
 */
#ifndef GW_STATE_H
#define GW_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "gw_err.h"

struct gw_state; /* opaque */

/* Open (creating state_dir 0700, state.db 0600 and the schema if needed). */
GW_MUST_CHECK int gw_state_open(const char *state_dir, struct gw_state **out);
/* Close; a transaction still open is rolled back. NULL is fine. */
void gw_state_close(struct gw_state *st);

/*
 * BEGIN IMMEDIATE / COMMIT (label: for GW_STATE_CRASH_AT) / ROLLBACK.
 * Handles on the same database in one process share one SQLite connection,
 * so transactions nest: begin while another handle's transaction is open
 * is a savepoint, its commit releases it into the outer transaction, and
 * the outer commit or rollback decides for everything inside (how a
 * reload makes the CA's changes all or nothing, mesh.h). Only the innermost
 * transaction may commit (-EINVAL otherwise); a handle may have one open.
 * begin/commit: 0, -EINVAL, -GW_E_STATE (SQLite's reason; a failed commit
 * has rolled the transaction back). rollback: no
 * transaction or NULL does nothing; it never replaces the caller's error
 * (a failed ROLLBACK is appended to gw_err's message).
 */
GW_MUST_CHECK int gw_state_begin(struct gw_state *st);
GW_MUST_CHECK int gw_state_commit(struct gw_state *st, const char *label);
void gw_state_rollback(struct gw_state *st);

/*
 * Small key/value facts ("trust_domain"). get: *val malloc'ed (the
 * caller's), -ENOENT if absent. 0, -EINVAL, -GW_E_STATE, -ENOMEM.
 */
GW_MUST_CHECK int gw_state_meta_get(struct gw_state *st, const char *key, char **val);
GW_MUST_CHECK int gw_state_meta_set(struct gw_state *st, const char *key, const char *val);

/* One CA backend as stored. Strings malloc'ed by get; freed by gw_state_ca_clear. */
struct gw_state_ca {
	char *name;
	char *type;       /* "builtin" | "provided" | "cfssl" */
	char *root_pem;   /* the root (self-signed) */
	char *issuer_pem; /* builtin: the intermediate issuer; else NULL */
	char *root_key;   /* pkcs11: URI (builtin, provided); else NULL */
	char *issuer_key; /* builtin: pkcs11: URI of the issuer key */
	char *cross_pem;  /* this root cross-signed by the previous enabled backend, or NULL */
	int64_t created;  /* unix time */
	int64_t removed;  /* 0 while configured */
};
/*
 * The row named name into *out (zeroed first; filled only on 0). 0,
 * -ENOENT (no such row), -EINVAL, -GW_E_STATE, -ENOMEM.
 */
GW_MUST_CHECK int gw_state_ca_get(struct gw_state *st, const char *name, struct gw_state_ca *out);
/* Insert or replace the row named c->name (c is only read). 0, -EINVAL, -GW_E_STATE. */
GW_MUST_CHECK int gw_state_ca_put(struct gw_state *st, const struct gw_state_ca *c);
/* Free c's strings and zero it; NULL and a cleared c are fine. */
void gw_state_ca_clear(struct gw_state_ca *c);
/* Names of the rows not marked removed: *names malloc'ed array of malloc'ed strings. */
GW_MUST_CHECK int gw_state_ca_list(struct gw_state *st, char ***names, unsigned *n);

/* Kinds of issued certificates. */
#define GW_STATE_KIND_IDENTITY "identity" /* a listener's own certificate */
#define GW_STATE_KIND_CLIENT "client"     /* ca sign / POST /v1/connect/ca/leaf */
#define GW_STATE_KIND_ISSUER "issuer"     /* builtin intermediate */
#define GW_STATE_KIND_CROSS "cross"       /* cross-signed root */

struct gw_state_cert {
	const char *serial; /* hex */
	const char *subject;
	const char *spiffe_id; /* may be NULL */
	int64_t not_after;
	const char *backend;
	const char *kind;
	const char *owner; /* identity: listener name; else NULL */
};

/*
 * Record an issued certificate. For kind identity, earlier identities of
 * the same owner are marked superseded (they no longer serve, so they do not
 * hold back the removal of their backend).
 */
GW_MUST_CHECK int gw_state_cert_record(
	struct gw_state *st, const struct gw_state_cert *c, int64_t now);

/*
 * Certificates of backend still valid at now that count against removing
 * it: client certificates and current (not superseded) identities.
 * *n gets the count, *latest the latest notAfter (0 if none).
 */
GW_MUST_CHECK int gw_state_certs_live(
	struct gw_state *st, const char *backend, int64_t now, unsigned *n, int64_t *latest);

/* Count of every recorded certificate of backend (any kind), tests/status. */
GW_MUST_CHECK int gw_state_certs_count(struct gw_state *st, const char *backend, unsigned *n);

/* Append to the rotation history ("add", "enable", "remove", "renew" ...). */
GW_MUST_CHECK int gw_state_history_add(struct gw_state *st, int64_t now, const char *event,
	const char *backend, const char *detail);

/* Number of history rows with this event (NULL: all), tests/status. */
GW_MUST_CHECK int gw_state_history_count(struct gw_state *st, const char *event, unsigned *n);

/* The state database's path (for messages). */
const char *gw_state_path(const struct gw_state *st);

#endif /* GW_STATE_H */
