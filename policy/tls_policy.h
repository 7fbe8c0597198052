/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tls_policy.h - what a worker sees of a listener's TLS side: the SSL_CTX to
 * SSL_new() from, the per-connection verify context its callbacks fill, and
 * the rejection -> alert mapping. No config types. The model (identities,
 * SNI, verification, alerts, tickets, ALPN) is described in
 * control/tls_ctx.h, which builds it.
 *
 * Thread-safety: a gw_tls_lst is immutable once its snapshot is published;
 * any number of workers may SSL_new() from it and handshake at once. A
 * gw_tls_vctx belongs to one connection (one worker).
 */
#ifndef GW_TLS_POLICY_H
#define GW_TLS_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "gw_err.h"
#include "trust_verify.h"
#include "verify_cache.h"

#define GW_TLS_TICKET_LIFETIME_DEFAULT 3600
#define GW_TLS_FP_LEN 32
#define GW_TLS_ALPN_MAX 64

/* ---- a built listener (workers read it) ---- */

struct gw_tls_lst;

/* The default SSL_CTX (first identity): SSL_new() from it. */
SSL_CTX *gw_tls_lst_ctx(const struct gw_tls_lst *t);
unsigned gw_tls_lst_n_identities(const struct gw_tls_lst *t);
/* The trust the verify callback uses (may be NULL with client_auth none). */
const struct gw_trust *gw_tls_lst_trust(const struct gw_tls_lst *t);
/* Trust fingerprint (session id context and ticket check). */
const uint8_t *gw_tls_lst_fp(const struct gw_tls_lst *t);

/*
 * What one connection's callbacks read and write. The dataplane owns it
 * (inside its connection) and attaches it to the SSL before the handshake.
 */
struct gw_tls_vctx {
	/* in */
	struct gw_vcache *vcache; /* worker's cache; NULL = none */
	uint64_t generation;      /* the connection's snapshot generation */
	/* out */
	bool verify_ran;                   /* a client certificate was checked */
	enum gw_trust_reason reason;       /* OK or why it was refused */
	bool verify_cached;                /* answered by the verify cache */
	bool ticket_stale_trust;           /* a ticket was ignored: trust changed */
	bool ticket_expired_cert;          /* a ticket was ignored: its chain or CRL lapsed */
	bool ticket_unknown_key;           /* a ticket under an unknown/retired key */
	unsigned identity;                 /* index of the identity SNI chose */
	char sni[256];                     /* the server name the client sent, "" if none */
	uint8_t alpn[GW_TLS_ALPN_MAX + 1]; /* client's first offered ALPN protocol, NUL ended */
	uint8_t alpn_len;
	time_t verify_until; /* the accepted chain's gw_trust_verdict.until (tickets) */
	/* the leaf of a chain the trust refused (a reference: the dataplane,
	 * which owns v, X509_free()s it when the connection goes); NULL if none */
	X509 *refused_leaf;
};

/* Attach v to ssl (SSL ex_data). Returns 0 or -GW_E_TLS. */
GW_MUST_CHECK int gw_tls_vctx_attach(SSL *ssl, struct gw_tls_vctx *v);

/* The X509_V_ERR code a rejection reason is reported with (see the table above). */
int gw_tls_reason_x509err(enum gw_trust_reason r);

#endif /* GW_TLS_POLICY_H */
