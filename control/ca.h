/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ca.h - the mesh's certificate authorities: the CA backends of the config's
 * `mtls:` section (builtin, provided, cfssl), which of them issues, and the
 * certificates they issue (docs/architecture.md "CA backends and rotation").
 *
 * A struct gw_ca is the control thread's view of every configured backend:
 *  - builtin: a root and, under it, an intermediate issuer (Linkerd's trust
 *    anchor and issuer), both keys generated in the HSM on first start and
 *    the certificates kept in the state store; a restart loads them, never
 *    regenerates. A key whose label exists but whose certificate never made
 *    it to the store (a crash between keygen and COMMIT) is reused.
 *  - provided: the operator's CA certificate (CA basic constraints and
 *    keyCertSign required) whose key is in the HSM; the key must match the
 *    certificate (checked through the token).
 *  - cfssl: a running `cfssl serve` (POST /api/v1/cfssl/info tells its root).
 *    With a CA signing profile (ca_constraint is_ca) it signs an issuer for a
 *    key generated in the HSM, and that issuer signs the leaves here (the
 *    Consul/Vault intermediate model; needed with Debian's cfssl 1.2.0,
 *    which writes a URI host as a DNS SAN and so cannot issue SPIFFE IDs).
 *    With a leaf profile cfssl signs each leaf (POST /api/v1/cfssl/sign,
 *    hosts = the SPIFFE ID); a leaf without the ID as URI SAN is refused,
 *    saying why. libcurl: https:// checked against conf.ca_file (http://
 *    works, with a warning); cfssl's errors are passed on in its words. Its
 *    root is pinned in the state store on first use; another root later is
 *    refused (a new root is a new backend, rotated to).
 *    The issuer is renewed (by cfssl) at 2/3 of its life like a builtin one.
 * Every issued certificate is recorded in the state store (serial, subject,
 * SPIFFE ID, notAfter, backend).
 *
 * Mesh trust is the union of every backend's roots (gw_ca_bundle per backend,
 * handed to gw_trust_create_bundles). When the enabled backend changes from A
 * to B (gw_ca_reconfigure), B's root is cross-signed by A's root key (when
 * A holds a key and has not expired) and served as an intermediate after
 * every leaf B issues, so a peer that trusts only A still accepts them.
 *
 * Validators (may this change happen now?) are in rotation.h; this module
 * does what it is told.
 *
 * Not MT-safe: the control thread owns a struct gw_ca (it holds an HSM
 * handle and a state store connection). Errors: -GW_E_CA (backend failure:
 * "backend ca-3 (cfssl http://127.0.0.1:8888): ..."), -GW_E_CONFIG (a
 * provided certificate that is not a CA), the hsm module's and state
 * module's codes, -EINVAL, -ENOMEM, -ENOENT (no such backend); gw_err_msg()
 * names the backend.
 */
#ifndef GW_CA_H
#define GW_CA_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "config.h"
#include "gw_err.h"
#include "hsm.h"
#include "state.h"

struct gw_ca; /* opaque */

struct gw_ca_params {
	struct gw_hsm_params hsm; /* token: where builtin keys go; NULL: "mtlsgw" */
	const char *state_dir;
};

/*
 * The parameters a config implies, so the gateway and `mtlsgw-ctl ca sign
 * --config` open the same token and state: hsm module/PIN from cfg->hsm,
 * state_dir, and the token of the first pkcs11: URI in the config (a
 * provided backend's key, else a listener identity's key), else "mtlsgw".
 * token[33] holds the label; p borrows cfg's strings and token.
 */
void gw_ca_params_from_cfg(const struct gw_cfg *cfg, struct gw_ca_params *p, char token[33]);

/*
 * The first certificate of PEM text (a state row's root_pem, say), the
 * caller's; NULL if none (pem NULL ok). OpenSSL's error queue may hold why.
 */
X509 *gw_ca_pem_read(const char *pem);

/*
 * Open the state store and the token, and bring up every backend of m
 * (builtin: created in one transaction on first start). The trust domain is
 * m->trust_domain, else the one stored, else a generated "<hex>.mtlsgw"
 * (stored). Records "add" in the rotation history for a backend new to the
 * store. Returns 0 and *out or the first backend's error.
 */
GW_MUST_CHECK int gw_ca_create(
	const struct gw_cfg_mtls *m, const struct gw_ca_params *p, struct gw_ca **out);

/* Free; NULL is fine. */
void gw_ca_destroy(struct gw_ca *ca);

/* Tests: pretend the time is now (0: the real clock again). */
void gw_ca_set_time(struct gw_ca *ca, time_t now);
time_t gw_ca_now(const struct gw_ca *ca);

const char *gw_ca_trust_domain(const struct gw_ca *ca);
const char *gw_ca_enabled(const struct gw_ca *ca);
struct gw_state *gw_ca_state(struct gw_ca *ca); /* borrowed */

/* One backend, read-only, borrowed from ca until the next reconfigure. */
struct gw_ca_info {
	const char *name;
	enum gw_ca_type type;
	X509 *root;      /* self-signed root (provided: the operator's CA cert) */
	X509 *issuer;    /* builtin: the intermediate that signs leaves; else NULL */
	X509 *cross;     /* root cross-signed by the previous enabled backend, or NULL */
	const char *url; /* cfssl */
	bool active;     /* the enabled backend */
	bool expired;    /* root past notAfter */
};
unsigned gw_ca_n_backends(const struct gw_ca *ca);
GW_MUST_CHECK int gw_ca_backend_info(const struct gw_ca *ca, unsigned i, struct gw_ca_info *out);
/* Backend i's trust bundle (its root), borrowed; NULL if i is out of range. */
STACK_OF(X509) * gw_ca_bundle(const struct gw_ca *ca, unsigned i);

/* What to issue. */
struct gw_ca_leaf_req {
	X509_REQ *csr;         /* its signature is checked; its public key is used */
	const char *spiffe_id; /* required: spiffe://<trust_domain>/... */
	uint64_t ttl_s;        /* 0: the backend's leaf_validity */
	const char *kind;      /* GW_STATE_KIND_CLIENT or _IDENTITY */
	const char *owner;     /* identity: listener name */
	const char *backend;   /* NULL: the enabled backend */
};

/*
 * Issue a leaf (clientAuth + serverAuth, SAN = the SPIFFE ID, subject CN =
 * the CSR's CN or the ID's last segment) and record it. *cert is the
 * caller's; *chain (may be NULL) gets the intermediates to send after it
 * (builtin issuer, cross-signed root), the caller's. notAfter never exceeds
 * the issuing certificate's. -GW_E_CA if the backend's root has expired
 * ("enable another backend"). -EINVAL, saying which, for: a SPIFFE ID not in
 * the trust domain or whose path is not [A-Za-z0-9._-] segments (no empty,
 * "." or ".."); spiffe://<td>/gateway[/...] unless kind is identity (the
 * gateway's own); ttl_s over the backend's leaf_validity (refused, never
 * capped); a CSR key other than EC P-256/P-384/P-521 or RSA >= 2048. A
 * cfssl-signed leaf is checked (CA:FALSE, the ID, notAfter within the TTL,
 * signed by the backend's root), -GW_E_CA if not.
 */
GW_MUST_CHECK int gw_ca_sign(
	struct gw_ca *ca, const struct gw_ca_leaf_req *r, X509 **cert, STACK_OF(X509) * *chain);

/*
 * A listener's identity: key "gw-id-<listener>" in the HSM (generated if
 * absent, reused otherwise), CSR signed by it, certificate from the enabled
 * backend with spiffe://<trust_domain>/gateway/<listener>, recorded as
 * kind identity (earlier ones superseded). key_uri gets the key's URI.
 */
GW_MUST_CHECK int gw_ca_issue_identity(struct gw_ca *ca, const char *listener, X509 **cert,
	STACK_OF(X509) * *chain, char key_uri[GW_HSM_URI_MAX]);

/*
 * Apply a new mtls section (already accepted by gw_rotation_check): bring up
 * added backends, drop removed ones (marked removed in the store), switch
 * the enabled backend (cross-signing the new root by the old one's key).
 * All store writes in one transaction ("reconfigure"); on failure nothing
 * changes, in memory or on disk.
 */
GW_MUST_CHECK int gw_ca_reconfigure(struct gw_ca *ca, const struct gw_cfg_mtls *m);

/*
 * Renew every builtin issuer past two thirds of its life (new certificate
 * for the same HSM key, stored). Returns how many were renewed, or an error
 * (the next call tries again: nothing is remembered about failures).
 */
GW_MUST_CHECK int gw_ca_maintain(struct gw_ca *ca);

/* "aa:bb:..." SHA-1 fingerprint of x (Consul's root ID) into out[60]. */
void gw_ca_fingerprint(X509 *x, char out[60]);

/* x's notBefore / notAfter as unix time (0 if unreadable). */
time_t gw_ca_not_before(X509 *x);
time_t gw_ca_not_after(X509 *x);

/* PEM of x, malloc'ed (NULL on error). */
char *gw_ca_pem(X509 *x);

#endif /* GW_CA_H */
