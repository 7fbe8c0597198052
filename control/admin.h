/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * admin.h - the admin API: HTTP/JSON on a unix socket (libmicrohttpd),
 * shaped like Consul's Connect CA API so its users feel at home
 * (docs/architecture.md "Admin API").
 *
 *   GET  /v1/connect/ca/roots          ActiveRootID, TrustDomain, Roots[] (ID =
 *                                      SHA-1 fingerprint in colon hex, Name,
 *                                      SerialNumber (colon hex), SigningKeyID,
 *                                      NotBefore, NotAfter, RootCert,
 *                                      IntermediateCerts, Active; plus Type,
 *                                      Expired, ExpiresInSeconds)
 *   GET  /v1/connect/ca/configuration  {Provider, Config{EnabledBackend,
 *                                      TrustDomain, Backends[{Name, Type}]}}
 *   PUT  /v1/connect/ca/configuration  {Provider?, Config{EnabledBackend, Force?}}:
 *                                      rotation step 2 through ops->ca_enable
 *   POST /v1/connect/ca/leaf           {CSR, SpiffeID, TTL?} -> {SerialNumber,
 *                                      CertPEM, IntermediatePEMs, NotAfter, ...}
 *   GET  /v1/status                    the gateway's ops->status object plus CA
 *                                      {TrustDomain, EnabledBackend, Certificates[]
 *                                      with NotAfter and ExpiresInSeconds}
 *   GET  /v1/cluster                   the status's Cluster object (control/cluster.h:
 *                                      Name, Node, Leader, IsLeader, EtcdUp,
 *                                      TicketSerial, LastError, Members[]); 404
 *                                      without a cluster: section
 *   POST /v1/reload                    {Force?} (body optional): ops->reload;
 *                                      200 {Reloaded, Generation} (the snapshot
 *                                      generation now published), or the error
 *                                      status with {error, Errors[]}: every error
 *                                      the reload found (each loader line
 *                                      "FILE:LINE: FIELD: why"), error the first.
 *                                      The log names who asked: "mtlsgw-ctl"
 *                                      when the User-Agent starts with it, else
 *                                      "admin API"
 *   GET  /v1/metrics                   Prometheus text (metrics.h), content type
 *                                      text/plain; version=0.0.4: ops->metrics
 *
 * Errors are {"error": "<message>"}: 400 for a malformed body (bad JSON, an
 * unknown field, a wrong type, a body over max_body bytes), 404 unknown
 * path, 405 wrong method, 409 when a rotation rule refuses the change
 * (ops return -GW_E_CONFIG), 500 otherwise. A refused request changes
 * nothing.
 *
 * Access: the socket is created mode 0600 (owner: the gateway, root), and
 * every connection's peer credentials (SO_PEERCRED) must be uid 0 or the
 * socket owner's uid, else 403: a loosened file mode is not enough.
 *
 * Metrics port (admin.metrics_address, optional): a second libmicrohttpd
 * daemon, plain HTTP on a TCP socket, for a Prometheus server to scrape.
 * It serves GET and HEAD /metrics only, the same text as GET /v1/metrics
 * (ops->metrics), and nothing of the API above: any other method is 405
 * (Allow: GET, HEAD) on every path, any other path 404, with short
 * text/plain bodies. No peer check (TCP has no SO_PEERCRED): the operator
 * binds it to an address only the scraper reaches.
 *
 * Threading: no thread of its own. The control thread calls gw_admin_run()
 * in its loop, and every handler (and every ops callback, and every use of
 * the struct gw_ca) runs inside that call, so nothing here needs a lock.
 * The API module knows nothing about the dataplane: the gateway hands it
 * callbacks (struct gw_admin_ops).
 */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include <jansson.h>

#include "ca.h"
#include "gw_err.h"
#include "metrics.h"

#define GW_ADMIN_MAX_BODY_DEFAULT (64 * 1024)

/* One POST /v1/reload, as ops->reload gets it. */
struct gw_admin_reload {
	bool force;          /* {"Force": true} */
	const char *source;  /* who asked, for the log: "mtlsgw-ctl" or "admin API" */
	uint64_t generation; /* out: the snapshot generation published by it */
	/* out: a JSON array the callee appends every error to, one string each
	 * (the loader's lines); left empty, the answer carries gw_err_msg() */
	json_t *errors;
};

/* What the gateway provides. Every callback is optional (absent: 501). */
struct gw_admin_ops {
	void *arg;
	/*
	 * Fill obj (an empty JSON object) with the gateway's side of the status:
	 * e.g. Listeners[], Workers[{Id, Generation}], Generation, HSM{...},
	 * Identities[{Listener, NotAfter, ...}]. 0 or a negative code.
	 */
	int (*status)(void *arg, json_t *obj);
	/* Reload the config file (one rotation step); 0, or <0 with gw_err_msg()
	 * (and every error in r->errors). */
	int (*reload)(void *arg, struct gw_admin_reload *r);
	/* Make backend the enabled one (rotation step 2); 0, or <0 with gw_err_msg(). */
	int (*ca_enable)(void *arg, const char *backend, bool force);
	/* Append the Prometheus text of GET /v1/metrics to m (counters, expiry);
	 * 0, or <0 with gw_err_msg() (answered 500). */
	int (*metrics)(void *arg, struct gw_metrics *m);
};

struct gw_admin_params {
	const char *socket_path; /* NULL: no unix socket API (metrics_sa alone) */
	/* the metrics port: sockaddr_in or _in6 of metrics_sa_len bytes; NULL: none */
	const struct sockaddr *metrics_sa;
	unsigned metrics_sa_len;
	const char *metrics_name; /* metrics_sa as configured, for messages */
	struct gw_ca *ca;         /* may be NULL (no mtls section): CA endpoints answer 404 */
	const struct gw_admin_ops *ops;
	size_t max_body; /* 0: GW_ADMIN_MAX_BODY_DEFAULT */
};

struct gw_admin;

/*
 * Create the socket (an existing socket file at the path is replaced; any
 * other file is an error) and the server, and the metrics port if
 * metrics_sa is set (at least one of the two). -EINVAL, -EADDRINUSE (also
 * the metrics port: "admin.metrics_address 127.0.0.1:9465: Address
 * already in use"), -EADDRNOTAVAIL and other -errno of bind, -GW_E_CONFIG
 * (path unusable), -ENOMEM. On error nothing is left open.
 */
GW_MUST_CHECK int gw_admin_start(const struct gw_admin_params *p, struct gw_admin **out);

/*
 * Serve what is ready on the socket and the metrics port, waiting at most
 * timeout_ms (select). Control thread.
 * Returns the number of ready descriptors (0: timeout or a signal), -EINVAL
 * (a NULL), -EIO (libmicrohttpd gave no descriptors) or -errno of select.
 */
int gw_admin_run(struct gw_admin *a, int timeout_ms);

/* Stop, close and unlink the socket, close the metrics port. NULL is fine. */
void gw_admin_stop(struct gw_admin *a);

/* Point the API at another CA (after a reload that replaced it); ca is
 * borrowed (NULL: the CA endpoints answer 404) and must outlive its use. */
void gw_admin_set_ca(struct gw_admin *a, struct gw_ca *ca);

/* ---- the body parsers (strict; the fuzz target runs them) ---- */

struct gw_admin_leaf_req {
	char *csr_pem;   /* malloc'ed */
	char *spiffe_id; /* malloc'ed */
	uint64_t ttl_s;  /* 0: backend default */
};
struct gw_admin_ca_put {
	char *provider; /* NULL if absent */
	char *enabled;  /* Config.EnabledBackend, required */
	bool force;
};

/*
 * Parse a body. 0 and *out filled (free with the matching _clear), or -EINVAL
 * with err[errlen] saying what is wrong ("unknown field 'Foo'", "field
 * 'TTL': expected a duration like 24h ...").
 */
GW_MUST_CHECK int gw_admin_parse_leaf(
	const char *body, size_t len, struct gw_admin_leaf_req *out, char *err, size_t errlen);
/* Free r's strings and zero it; NULL fine. */
void gw_admin_leaf_req_clear(struct gw_admin_leaf_req *r);
GW_MUST_CHECK int gw_admin_parse_ca_put(
	const char *body, size_t len, struct gw_admin_ca_put *out, char *err, size_t errlen);
/* Free r's strings and zero it; NULL fine. */
void gw_admin_ca_put_clear(struct gw_admin_ca_put *r);
/* Body of POST /v1/reload: empty, or {"Force": bool}. */
GW_MUST_CHECK int gw_admin_parse_reload(
	const char *body, size_t len, bool *force, char *err, size_t errlen);

/*
 * A duration in the config's syntax (gw_duration.h: "90s" "15m" "24h" "7d"
 * "1y") of at most 100 years -> seconds; false if not one. Thread-safe.
 */
bool gw_admin_parse_duration(const char *s, uint64_t *out);

#endif /* GW_ADMIN_H */
