/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tls_internal.h - the inside of a listener's TLS side, shared by its builder
 * (control/tls_ctx.c, control thread) and its OpenSSL callbacks
 * (policy/tls_policy.c, workers). Nobody else includes this.
 */
#ifndef GW_TLS_INTERNAL_H
#define GW_TLS_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "tls_policy.h"

struct gw_hsm;

/* ---- ticket keys ---- */

#define TK_RING 4 /* a power of two */

struct tk {
	uint8_t name[16];
	uint8_t aes[32];
	uint8_t hmac[32];
	time_t created;
};

struct gw_tls_ctl {
	struct gw_hsm *hsm;
	unsigned cfg_lifetime;     /* from params; 0 = from listeners */
	_Atomic unsigned lifetime; /* effective rotation period, seconds */
	struct tk ring[TK_RING];
	/*
	 * Serial of the current key (>= 1); its slot is serial % TK_RING.
	 * Rotation writes slot (serial + 1) and then publishes serial + 1 with
	 * a release store; a worker loads serial with acquire and reads the
	 * current and the previous slot only. The slot being rewritten is
	 * therefore three rotations older than anything a worker can still be
	 * reading, unless one ticket callback runs across three rotation
	 * periods (hours), which a worker loop cannot.
	 */
	_Atomic uint64_t serial;
	EVP_CIPHER *aes; /* fetched once: no provider lookup per ticket */
};

struct ident {
	SSL_CTX *ctx;
	char **sni;
	unsigned n_sni;
};

struct gw_tls_lst {
	struct gw_tls_ctl *ctl;
	const struct gw_trust *trust; /* the snapshot listener's; borrowed */
	char *name;
	enum gw_client_auth client_auth;
	uint8_t fp[GW_TLS_FP_LEN];
	struct ident *ids;
	unsigned n_ids;
};

/* The effective ticket key rotation period, seconds. Any thread. */
static inline unsigned
gw_tls_ctl_lifetime(const struct gw_tls_ctl *c)
{
	unsigned l = atomic_load_explicit(&c->lifetime, memory_order_relaxed);

	return l ? l : GW_TLS_TICKET_LIFETIME_DEFAULT;
}

/*
 * Register the SSL / SSL_CTX ex_data indexes the callbacks use. Control
 * thread, before any SSL exists; idempotent. Returns 0 or -GW_E_TLS.
 */
GW_MUST_CHECK int gw_tls_ex_indexes(void);

/*
 * Hang t on ctx and install the callbacks: session tickets (keys of t->ctl,
 * t's trust fingerprint), certificate verification with verify_mode
 * (SSL_VERIFY_*), SNI among t's identities, ALPN. t must outlive ctx.
 * Returns 0, -EINVAL, -GW_E_TLS. Control thread, while building.
 */
GW_MUST_CHECK int gw_tls_policy_install(SSL_CTX *ctx, struct gw_tls_lst *t, int verify_mode);

#endif /* GW_TLS_INTERNAL_H */
