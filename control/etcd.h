/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * etcd.h - a small synchronous etcd v3 client: the fleet's shared store
 * (docs/architecture.md, issue 14). It speaks etcd's JSON gRPC gateway
 * (etcd 3.4, paths under /v3/) through libcurl and jansson: keys and values
 * travel base64 in JSON, int64 fields come back as JSON strings.
 *
 * Endpoints are URLs, http:// or https://. A request goes to the endpoint
 * that last worked; when it cannot be reached (connection refused, timeout,
 * TLS failure) the next one is tried, and the one that answers is
 * remembered. An endpoint that answers with an HTTP or etcd error is not
 * skipped: the error is the answer. timeout_ms bounds each attempt, so a
 * call takes at most n_endpoints * timeout_ms. A request whose answer was
 * lost (timeout after sending) is sent again to the next endpoint: a put
 * is then applied twice (same value, one more revision), a put_if may
 * report the compare failed on its own first write, a lease grant may
 * leave an unused lease to expire. https:// checks the server against
 * ca_file (else the system store), host name included; cert_file and
 * key_file are the client certificate for --client-cert-auth.
 *
 * The client certificate's key may stay in the HSM: key_file is then a
 * pkcs11: URI, loaded once at open through the caller's struct gw_hsm
 * (hsm.h) as an engine-backed EVP_PKEY, and each new TLS connection gets
 * it through libcurl's CURLOPT_SSL_CTX_FUNCTION (SSL_CTX_use_PrivateKey
 * beside cert_file's chain), so the handshake signs in the token. Not
 * libcurl's own engine options (CURLOPT_SSLENGINE "pkcs11" with
 * CURLOPT_SSLKEYTYPE "ENG"): libcurl looks the engine up by id in
 * OpenSSL's list, where hsm's instance is not (it is private to hsm), and
 * would load a second one, which libp11 0.4.12 refuses in a process that
 * has one (hsm.h), and which would want the module path and the PIN as
 * engine commands. This way the module, the login and the PIN stay hsm's:
 * this client never sees a PIN.
 *
 * Errors: 0 or a negative code, the cause in gw_err_msg(), naming the
 * endpoint and what to do ("etcd http://127.0.0.1:2379: connection
 * refused", "etcd: all 3 endpoints failed (last: ...)", HTTP status and
 * etcd's own message). Values are never logged nor put in a message: they
 * may be ticket keys.
 *
 * Threading: a struct gw_etcd belongs to one thread at a time; a watch runs
 * in its own thread on its own gw_etcd. gw_etcd_open may be called from any
 * thread (libcurl's global init runs once, under pthread_once). The
 * process must ignore SIGPIPE (mtlsgw and mtlsgw-ctl do): libcurl runs
 * with CURLOPT_NOSIGNAL, so a peer closing during a TLS write would
 * otherwise kill it.
 */
#ifndef GW_ETCD_H
#define GW_ETCD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"
#include "hsm.h"

struct gw_etcd;

#define GW_ETCD_MAX_ENDPOINTS 16
/* largest answer accepted for one request, and one watch message */
#define GW_ETCD_MAX_REPLY (4u << 20)

struct gw_etcd_params {
	const char *const *endpoints; /* URLs "http(s)://host:port", copied */
	unsigned n_endpoints;         /* 1 .. GW_ETCD_MAX_ENDPOINTS */
	const char *ca_file;          /* PEM CA for https://; NULL: system store */
	const char *cert_file;        /* PEM client certificate (chain), or NULL */
	/* its private key (needed with cert_file): a PEM file, or a pkcs11: URI
	 * of a key in hsm's token */
	const char *key_file;
	/*
	 * For a pkcs11: key_file: an open handle, logged in, to the token that
	 * holds the key; borrowed during gw_etcd_open only (the key it loads
	 * lives on in e). NULL otherwise. The key signs on the thread that uses
	 * e, so open e on the thread that owns hsm (hsm.h).
	 */
	struct gw_hsm *hsm;
	unsigned timeout_ms; /* per endpoint attempt; 0: 5000 */
};

/*
 * Open a client (no connection is made yet). Every call below on the
 * returned e must come from one thread at a time. Strings are copied; files are
 * read by libcurl at each connection. -EINVAL: no endpoint, too many, one
 * not http(s)://, cert_file without key_file (or the other way), a pkcs11:
 * key_file without hsm. A pkcs11: key_file is loaded here: the hsm
 * module's errors (-GW_E_HSM_KEY no such key, ...) come back as they are.
 */
GW_MUST_CHECK int gw_etcd_open(const struct gw_etcd_params *p, struct gw_etcd **out);

/* Close connections and free. NULL ok. */
void gw_etcd_close(struct gw_etcd *e);

/* The endpoint requests go to first (the last that worked). Never NULL. */
const char *gw_etcd_endpoint(const struct gw_etcd *e);

/*
 * Put key = val[0..len) (binary, NUL bytes fine), attached to lease_id
 * (0: none). -ENOENT: the lease does not exist (expired or revoked);
 * -GW_E_ETCD: unreachable or refused.
 */
GW_MUST_CHECK int gw_etcd_put(
	struct gw_etcd *e, const char *key, const void *val, size_t len, int64_t lease_id);

/*
 * Put key only if its mod_revision is expect_mod_revision (0: only if the
 * key is absent), in one etcd transaction, attached to lease_id (0: none).
 * -EEXIST: expect 0 and the key exists; -ESTALE: the key's mod_revision is
 * another (or it is gone); both name the revision found. -GW_E_ETCD as put.
 */
GW_MUST_CHECK int gw_etcd_put_if(struct gw_etcd *e, const char *key, const void *val, size_t len,
	int64_t expect_mod_revision, int64_t lease_id);

/*
 * Get key. On success *val is a malloc'd copy of the value with a NUL after
 * it (not counted in *len), owned by the caller (OPENSSL_cleanse it first if
 * it is a secret); mod_revision may be NULL. -ENOENT: no such key (*val
 * NULL).
 */
GW_MUST_CHECK int gw_etcd_get(
	struct gw_etcd *e, const char *key, uint8_t **val, size_t *len, int64_t *mod_revision);

/*
 * One key and value of a range; key and val are valid during the call only
 * (val has a NUL after it). Return < 0 to stop: gw_etcd_get_prefix returns it.
 */
typedef int (*gw_etcd_kv_fn)(
	void *arg, const char *key, const uint8_t *val, size_t len, int64_t mod_revision);

/*
 * Call fn for every key that starts with prefix ("" : every key), in key
 * order, from one consistent read. Returns 0, fn's negative return, or an
 * error. Keys with a NUL byte are skipped (we never write them).
 */
GW_MUST_CHECK int gw_etcd_get_prefix(
	struct gw_etcd *e, const char *prefix, gw_etcd_kv_fn fn, void *arg);

/* Delete key. -ENOENT: there was none. */
GW_MUST_CHECK int gw_etcd_delete(struct gw_etcd *e, const char *key);

/* Grant a lease of ttl_s seconds (etcd's minimum is 2 s); *id gets its ID. */
GW_MUST_CHECK int gw_etcd_lease_grant(struct gw_etcd *e, unsigned ttl_s, int64_t *id);

/*
 * Renew lease id once, for its full TTL (one request, no stream kept).
 * -ENOENT: the lease expired or was revoked; its keys are gone.
 */
GW_MUST_CHECK int gw_etcd_lease_keepalive(struct gw_etcd *e, int64_t id);

/* Revoke lease id, deleting its keys. -ENOENT: no such lease. */
GW_MUST_CHECK int gw_etcd_lease_revoke(struct gw_etcd *e, int64_t id);

enum gw_etcd_event_type {
	GW_ETCD_PUT,
	GW_ETCD_DELETE,
};

/* One change; pointers valid during the callback only. */
struct gw_etcd_event {
	enum gw_etcd_event_type type;
	const char *key;
	const uint8_t *val; /* NUL after it; empty for DELETE */
	size_t len;
	int64_t mod_revision; /* the revision of this change */
};

/* Return < 0 to stop the watch: gw_etcd_watch returns it. */
typedef int (*gw_etcd_event_fn)(void *arg, const struct gw_etcd_event *ev);

/*
 * Watch every key under prefix from start_revision (0: from now), calling
 * fn for each change in revision order. Blocks (run it in a thread of its
 * own, on its own gw_etcd) and returns:
 *   0 when *stop became true (seen within about a second);
 *   -ESTALE when start_revision was compacted away: the message names the
 *     compact revision; read the state again (get_prefix) and watch anew;
 *   fn's negative return;
 *   -GW_E_ETCD when no endpoint takes the watch, or the stream breaks or
 *     is cancelled by etcd: watch again from the last revision seen + 1.
 * The endpoints are tried as for any request until one accepts the watch;
 * after that a broken stream returns (no silent resume).
 */
GW_MUST_CHECK int gw_etcd_watch(struct gw_etcd *e, const char *prefix, int64_t start_revision,
	gw_etcd_event_fn fn, void *arg, const atomic_bool *stop);

#endif /* GW_ETCD_H */
