/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tls_policy.c - the OpenSSL callbacks of a listener's SSL_CTX set
 * (tls_policy.h): certificate verification through the trust engine and the
 * worker's verify cache, SNI among the identities, ALPN recording, session
 * ticket encryption and the ticket trust/expiry check. They run on whichever
 * worker drives the handshake and only read the gw_tls_lst and the ticket
 * ring (see the ring's comment in tls_internal.h for why that is safe while
 * control rotates). control/tls_ctx.c builds the SSL_CTX set and calls
 * gw_tls_policy_install() on each.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tls_internal.h"

static int vctx_idx = -1, ctx_idx = -1;

int
gw_tls_ex_indexes(void)
{
	/* Called on the control thread before any SSL exists; idempotent. */
	if (vctx_idx < 0)
		vctx_idx = SSL_get_ex_new_index(0, "gw_tls_vctx", NULL, NULL, NULL);
	if (ctx_idx < 0)
		ctx_idx = SSL_CTX_get_ex_new_index(0, "gw_tls_lst", NULL, NULL, NULL);
	GW_ENSURE(vctx_idx >= 0 && ctx_idx >= 0, -GW_E_TLS);
	return 0;
}

int
gw_tls_vctx_attach(SSL *ssl, struct gw_tls_vctx *v)
{
	GW_ENSURE(ssl && vctx_idx >= 0, -EINVAL);
	GW_ENSURE(SSL_set_ex_data(ssl, vctx_idx, v) == 1, -GW_E_TLS);
	return 0;
}

static struct gw_tls_vctx *
vctx_of(SSL *ssl)
{
	return ssl && vctx_idx >= 0 ? SSL_get_ex_data(ssl, vctx_idx) : NULL;
}

/* ---- session tickets ---- */

/*
 * SSL_CTX_set_tlsext_ticket_key_evp_cb: RFC 5077's recommended layout (key
 * name, IV, AES-256-CBC, HMAC-SHA256), for TLS 1.2 tickets and TLS 1.3
 * stateless PSKs alike. Returns 1 (current key), 2 (older key: renew),
 * 0 (unknown key: full handshake), -1 (error).
 */
static int
ticket_key_cb(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
	EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct gw_tls_lst *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);
	struct gw_tls_ctl *c;
	const struct tk *k = NULL;
	OSSL_PARAM params[3];
	uint64_t s;
	int ret = 1;

	if (t == NULL)
		return -1;
	c = t->ctl;
	s = atomic_load_explicit(&c->serial, memory_order_acquire);
	if (enc) {
		k = &c->ring[s % TK_RING];
		memcpy(name, k->name, 16);
		if (RAND_bytes(iv, 16) != 1 ||
			EVP_EncryptInit_ex2(cctx, c->aes, k->aes, iv, NULL) != 1)
			return -1;
	} else {
		time_t now = time(NULL);
		time_t max_age = 2 * (time_t)gw_tls_ctl_lifetime(c);

		for (uint64_t i = 0; i < 2 && i < s; i++) {
			const struct tk *cand = &c->ring[(s - i) % TK_RING];

			if (memcmp(cand->name, name, 16) == 0 && now - cand->created < max_age) {
				k = cand;
				ret = i == 0 ? 1 : 2;
				break;
			}
		}
		if (k == NULL) {
			struct gw_tls_vctx *v = vctx_of(ssl);

			if (v != NULL)
				v->ticket_unknown_key = true;
			return 0;
		}
		if (EVP_DecryptInit_ex2(cctx, c->aes, k->aes, iv, NULL) != 1)
			return -1;
	}
	params[0] = OSSL_PARAM_construct_octet_string(
		OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	return ret;
}

/*
 * Session ticket content (inside the encrypted ticket): the trust
 * fingerprint the session was verified under, then, big-endian, when that
 * verification lapses by the clock alone (gw_trust_verdict.until: earliest
 * notAfter of the chain, earliest CRL nextUpdate; 0 = unknown).
 */
#define TICKET_AD_LEN (GW_TLS_FP_LEN + 8)

static int
ticket_gen_cb(SSL *ssl, void *arg)
{
	struct gw_tls_lst *t = arg;
	struct gw_tls_vctx *v = vctx_of(ssl);
	SSL_SESSION *ss = SSL_get0_session(ssl);
	uint64_t until = v != NULL && v->verify_until > 0 ? (uint64_t)v->verify_until : 0;
	uint8_t ad[TICKET_AD_LEN];

	memcpy(ad, t->fp, GW_TLS_FP_LEN);
	for (unsigned i = 0; i < 8; i++)
		ad[GW_TLS_FP_LEN + i] = (uint8_t)(until >> (56 - 8 * i));
	return ss != NULL && SSL_SESSION_set1_ticket_appdata(ss, ad, sizeof(ad)) == 1;
}

static SSL_TICKET_RETURN
ticket_dec_cb(SSL *ssl, SSL_SESSION *ss, const unsigned char *keyname, size_t keyname_len,
	SSL_TICKET_STATUS status, void *arg)
{
	struct gw_tls_lst *t = arg;
	struct gw_tls_vctx *v = vctx_of(ssl);
	void *ad = NULL;
	size_t adlen = 0;
	uint64_t until = 0;
	X509 *peer;

	(void)keyname;
	(void)keyname_len;
	switch (status) {
	case SSL_TICKET_EMPTY:
	case SSL_TICKET_NO_DECRYPT:
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	case SSL_TICKET_SUCCESS:
	case SSL_TICKET_SUCCESS_RENEW:
		break;
	default:
		return SSL_TICKET_RETURN_ABORT;
	}
	/*
	 * The trust the session was verified under must be the listener's
	 * current one; else the client re-verifies in a full handshake.
	 */
	if (SSL_SESSION_get0_ticket_appdata(ss, &ad, &adlen) != 1 || adlen != TICKET_AD_LEN ||
		memcmp(ad, t->fp, GW_TLS_FP_LEN) != 0) {
		if (v != NULL)
			v->ticket_stale_trust = true;
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
	for (unsigned i = 0; i < 8; i++)
		until = until << 8 | ((const uint8_t *)ad)[GW_TLS_FP_LEN + i];
	/*
	 * The same validity a full handshake (or the verify cache) would apply:
	 * every certificate of the verified chain and the CRLs must still be in
	 * date, not just the leaf the session stores. Unknown (0) never resumes.
	 */
	peer = SSL_SESSION_get0_peer(ss);
	if (peer != NULL && (until == 0 || (uint64_t)time(NULL) >= until ||
				    X509_cmp_current_time(X509_get0_notAfter(peer)) <= 0)) {
		if (v != NULL)
			v->ticket_expired_cert = true;
		return SSL_TICKET_RETURN_IGNORE_RENEW;
	}
	/* a renewed ticket inherits the verification it rests on */
	if (v != NULL)
		v->verify_until = (time_t)until;
	/*
	 * TLS 1.3 clients use a ticket once (RFC 8446 C.4): without a new one
	 * after each resumption only every other connection could resume.
	 * TLS 1.2 clients keep theirs; it is renewed when its key is old.
	 */
	if (SSL_version(ssl) >= TLS1_3_VERSION || status == SSL_TICKET_SUCCESS_RENEW)
		return SSL_TICKET_RETURN_USE_RENEW;
	return SSL_TICKET_RETURN_USE;
}

/* ---- verification ---- */

int
gw_tls_reason_x509err(enum gw_trust_reason r)
{
	switch (r) {
	case GW_TRUST_R_OK:
		return X509_V_OK;
	case GW_TRUST_R_EXPIRED:
		return X509_V_ERR_CERT_HAS_EXPIRED; /* certificate_expired */
	case GW_TRUST_R_REVOKED:
		return X509_V_ERR_CERT_REVOKED; /* certificate_revoked */
	case GW_TRUST_R_UNTRUSTED_ISSUER:
		return X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY; /* unknown_ca */
	case GW_TRUST_R_SELF_SIGNED:
		return X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT; /* unknown_ca */
	case GW_TRUST_R_NOT_CA:
		return X509_V_ERR_INVALID_CA; /* unknown_ca */
	case GW_TRUST_R_TOO_DEEP:
		return X509_V_ERR_CERT_CHAIN_TOO_LONG; /* unknown_ca */
	case GW_TRUST_R_CRL:
		return X509_V_ERR_UNABLE_TO_GET_CRL; /* unknown_ca */
	case GW_TRUST_R_NOT_PINNED:
	case GW_TRUST_R_MALFORMED:
	case GW_TRUST_R_NAME_CONSTRAINTS:
		return X509_V_ERR_CERT_REJECTED; /* bad_certificate */
	case GW_TRUST_R_BAD_SIGNATURE:
		return X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE; /* bad_certificate */
	case GW_TRUST_R_NOT_YET_VALID:
		return X509_V_ERR_CERT_NOT_YET_VALID; /* bad_certificate */
	case GW_TRUST_R_EKU:
		return X509_V_ERR_INVALID_PURPOSE; /* unsupported_certificate */
	case GW_TRUST_R_INTERNAL:
		return X509_V_ERR_OUT_OF_MEM; /* internal_error */
	case GW_TRUST_R_NOT_ALLOWED:
	case GW_TRUST_R_OTHER:
	default:
		/* not in OpenSSL's table: certificate_unknown */
		return X509_V_ERR_SUBJECT_ISSUER_MISMATCH;
	}
}

static int
verify_cb(X509_STORE_CTX *x, void *arg)
{
	struct gw_tls_lst *t = arg;
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct gw_tls_vctx *v = vctx_of(ssl);
	struct gw_trust_verdict vd;
	X509 *leaf = X509_STORE_CTX_get0_cert(x);
	int rc;

	if (t->trust == NULL || leaf == NULL) {
		vd.reason = GW_TRUST_R_INTERNAL;
		vd.cached = false;
		vd.until = 0;
		rc = -GW_E_TRUST;
	} else {
		rc = gw_trust_verify_cached(t->trust, v ? v->generation : 0, v ? v->vcache : NULL,
			leaf, X509_STORE_CTX_get0_untrusted(x), 0, &vd);
	}
	if (v != NULL) {
		v->verify_ran = true;
		v->reason = rc == 0 ? GW_TRUST_R_OK : vd.reason;
		/* who was refused, for the access log: the session never holds a
		 * refused chain's leaf (a reference, no copy) */
		if (rc != 0 && leaf != NULL && v->refused_leaf == NULL && X509_up_ref(leaf) == 1)
			v->refused_leaf = leaf;
		v->verify_cached = rc == 0 && vd.cached;
		v->verify_until = rc == 0 ? vd.until : 0;
	}
	if (rc == 0) {
		X509_STORE_CTX_set_error(x, X509_V_OK);
		return 1;
	}
	X509_STORE_CTX_set_error(x, gw_tls_reason_x509err(vd.reason));
	return 0;
}

/* ---- SNI and ALPN ---- */

static int
sni_cb(SSL *ssl, int *al, void *arg)
{
	struct gw_tls_lst *t = arg;
	struct gw_tls_vctx *v = vctx_of(ssl);
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	unsigned pick = 0;

	(void)al;
	if (name != NULL) {
		/*
		 * An exact name beats a wildcard whatever the identities' order
		 * (pass 0: exact names, pass 1: wildcards); the first identity
		 * that matches in a pass wins.
		 */
		bool found = false;

		for (int pass = 0; pass < 2 && !found; pass++)
			for (unsigned i = 0; i < t->n_ids && !found; i++)
				for (unsigned j = 0; j < t->ids[i].n_sni && !found; j++) {
					const char *p = t->ids[i].sni[j];

					if ((strncmp(p, "*.", 2) == 0) == (pass == 1) &&
						gw_trust_dns_match(p, name)) {
						pick = i;
						found = true;
					}
				}
		if (v != NULL)
			snprintf(v->sni, sizeof(v->sni), "%s", name);
	}
	if (pick != 0 && SSL_set_SSL_CTX(ssl, t->ids[pick].ctx) == NULL)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	if (v != NULL)
		v->identity = pick;
	/* an unknown name gets the default identity, as most servers do */
	return SSL_TLSEXT_ERR_OK;
}

static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
	unsigned int inlen, void *arg)
{
	struct gw_tls_vctx *v = vctx_of(ssl);

	(void)out;
	(void)outlen;
	(void)arg;
	if (v != NULL && inlen > 1 && in[0] > 0 && in[0] < inlen && in[0] <= GW_TLS_ALPN_MAX) {
		memcpy(v->alpn, in + 1, in[0]);
		v->alpn[in[0]] = 0;
		v->alpn_len = in[0];
	}
	return SSL_TLSEXT_ERR_NOACK; /* recorded, not negotiated (tls_ctx.h) */
}

SSL_CTX *
gw_tls_lst_ctx(const struct gw_tls_lst *t)
{
	return t ? t->ids[0].ctx : NULL;
}

unsigned
gw_tls_lst_n_identities(const struct gw_tls_lst *t)
{
	return t ? t->n_ids : 0;
}

const struct gw_trust *
gw_tls_lst_trust(const struct gw_tls_lst *t)
{
	return t ? t->trust : NULL;
}

const uint8_t *
gw_tls_lst_fp(const struct gw_tls_lst *t)
{
	return t ? t->fp : NULL;
}

/* ---- installing the callbacks ---- */

int
gw_tls_policy_install(SSL_CTX *ctx, struct gw_tls_lst *t, int verify_mode)
{
	GW_ENSURE(ctx != NULL && t != NULL && ctx_idx >= 0, -EINVAL);
	GW_GUARD_OSSL(SSL_CTX_set_ex_data(ctx, ctx_idx, t), -GW_E_TLS);
	GW_GUARD_OSSL(SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb), -GW_E_TLS);
	GW_GUARD_OSSL(
		SSL_CTX_set_session_ticket_cb(ctx, ticket_gen_cb, ticket_dec_cb, t), -GW_E_TLS);
	SSL_CTX_set_verify(ctx, verify_mode, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, verify_cb, t);
	SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, t);
	return 0;
}
