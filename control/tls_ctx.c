/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tls_ctx.c - builds the per-listener SSL_CTX set of a snapshot and holds
 * the session ticket keys every worker shares. See tls_ctx.h for the model
 * (identities, SNI, verification through the trust engine, alerts, tickets,
 * ALPN). Runs on the control thread, except the OpenSSL callbacks, which
 * run on whichever worker drives the handshake and only read.
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

#include "tls_ctx.h"

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

static int vctx_idx = -1, ctx_idx = -1;

static int
ex_indexes(void)
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

static int
tk_make(struct tk *k, time_t now)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 ||
		RAND_priv_bytes(k->aes, sizeof(k->aes)) != 1 ||
		RAND_priv_bytes(k->hmac, sizeof(k->hmac)) != 1)
		return gw_err_setf(-GW_E_TLS, GW_HERE, "no randomness for a session ticket key");
	k->created = now;
	return 0;
}

int
gw_tls_ctl_create(const struct gw_tls_ctl_params *p, struct gw_tls_ctl **out)
{
	struct gw_tls_ctl *c;
	int rc;

	GW_ENSURE(p && out && p->hsm, -EINVAL);
	GW_GUARD(ex_indexes());
	c = calloc(1, sizeof(*c));
	GW_ENSURE(c, -ENOMEM);
	c->hsm = p->hsm;
	c->cfg_lifetime = p->ticket_lifetime_s;
	atomic_init(&c->lifetime, p->ticket_lifetime_s ? p->ticket_lifetime_s : 0);
	c->aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	if (c->aes == NULL) {
		rc = gw_err_setf(-GW_E_TLS, GW_HERE, "AES-256-CBC unavailable for session tickets");
		goto out;
	}
	rc = tk_make(&c->ring[1 % TK_RING], time(NULL));
	if (rc < 0)
		goto out;
	atomic_init(&c->serial, 1);
	*out = c;
	return 0;
out:
	gw_tls_ctl_destroy(c);
	return rc;
}

void
gw_tls_ctl_destroy(struct gw_tls_ctl *c)
{
	if (c == NULL)
		return;
	EVP_CIPHER_free(c->aes);
	OPENSSL_cleanse(c->ring, sizeof(c->ring));
	free(c);
}

static unsigned
ctl_lifetime(const struct gw_tls_ctl *c)
{
	unsigned l = atomic_load_explicit(&c->lifetime, memory_order_relaxed);

	return l ? l : GW_TLS_TICKET_LIFETIME_DEFAULT;
}

int
gw_tls_ctl_rotate(struct gw_tls_ctl *c, time_t now, bool force)
{
	uint64_t s;

	GW_ENSURE(c, -EINVAL);
	s = atomic_load_explicit(&c->serial, memory_order_relaxed);
	if (!force && now - c->ring[s % TK_RING].created < (time_t)ctl_lifetime(c))
		return 0;
	GW_GUARD(tk_make(&c->ring[(s + 1) % TK_RING], now));
	/* release: the new key's bytes before the serial that names it */
	atomic_store_explicit(&c->serial, s + 1, memory_order_release);
	return 1;
}

uint64_t
gw_tls_ctl_key_serial(const struct gw_tls_ctl *c)
{
	return c ? atomic_load_explicit(&c->serial, memory_order_acquire) : 0;
}

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
		time_t max_age = 2 * (time_t)ctl_lifetime(c);

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
	return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW
						  : SSL_TICKET_RETURN_USE;
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

static bool
sni_match(const char *pat, const char *name)
{
	if (strncmp(pat, "*.", 2) == 0) {
		const char *dot = strchr(name, '.');

		/* "*.example.com" matches exactly one label */
		return dot != NULL && dot != name && strcasecmp(dot + 1, pat + 2) == 0;
	}
	return strcasecmp(pat, name) == 0;
}

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
						sni_match(p, name)) {
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

/* ---- building a listener ---- */

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

static void
lst_free(struct gw_tls_lst *t)
{
	if (t == NULL)
		return;
	for (unsigned i = 0; i < t->n_ids; i++) {
		SSL_CTX_free(t->ids[i].ctx);
		for (unsigned j = 0; j < t->ids[i].n_sni; j++)
			free(t->ids[i].sni[j]);
		free(t->ids[i].sni);
	}
	free(t->ids);
	free(t->name);
	free(t);
}

/*
 * What a resumed session must still agree with: client_auth and the trust
 * the snapshot actually built (gw_trust_fingerprint: anchors, pins and CRLs
 * as loaded, whatever they came from, so a mesh backend removed or a CRL
 * reissued at the same path counts as a change).
 */
static int
trust_fp(const struct gw_cfg_listener *lc, const struct gw_trust *tr, uint8_t out[GW_TLS_FP_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const uint8_t *tfp = gw_trust_fingerprint(tr);
	uint8_t v[2];
	unsigned len = 0;
	int rc = 0;

	GW_ENSURE(md, -ENOMEM);
	v[0] = (uint8_t)lc->tls.client_auth;
	v[1] = tfp != NULL;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
		EVP_DigestUpdate(md, "mtlsgw ticket fp 2", 18) != 1 ||
		EVP_DigestUpdate(md, v, sizeof(v)) != 1 ||
		(tfp != NULL && EVP_DigestUpdate(md, tfp, GW_TRUST_FP_LEN) != 1) ||
		EVP_DigestFinal_ex(md, out, &len) != 1 || len != GW_TLS_FP_LEN)
		rc = gw_err_set(-GW_E_TLS, GW_HERE);
	EVP_MD_CTX_free(md);
	return rc;
}

/*
 * Defaults: Mozilla's "intermediate" server profile (v5.7) without its DHE
 * suites: ECDHE key exchange with an AEAD only, so TLS 1.2 offers no CBC
 * (LUCKY13), no RSA key exchange (no forward secrecy, ROBOT) and no SHA-1
 * MAC. OpenSSL's own TLS 1.2 default ("DEFAULT") has all three. A listener's
 * tls.ciphersuites replaces the default of the version its names are for
 * (TLS_* names: TLS 1.3; other names: TLS 1.2) and keeps the other one.
 */
#define GW_TLS12_DEFAULT                                             \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define GW_TLS13_DEFAULT \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

static int
set_ciphers(SSL_CTX *ctx, const struct gw_cfg_tls *tc, const char *lname)
{
	char l13[1024] = "", l12[1024] = "";

	for (unsigned i = 0; i < tc->n_ciphersuites; i++) {
		const char *s = tc->ciphersuites[i];
		char *dst = strncmp(s, "TLS_", 4) == 0 ? l13 : l12;
		size_t used = strlen(dst);

		if (used + strlen(s) + 2 > sizeof(l13))
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"listener '%s': tls.ciphersuites too long", lname);
		snprintf(dst + used, sizeof(l13) - used, "%s%s", used ? ":" : "", s);
	}
	if (l13[0] == '\0')
		snprintf(l13, sizeof(l13), "%s", GW_TLS13_DEFAULT);
	if (l12[0] == '\0')
		snprintf(l12, sizeof(l12), "%s", GW_TLS12_DEFAULT);
	/* TLS 1.3 suites and TLS 1.2 cipher lists are two separate OpenSSL settings */
	if (SSL_CTX_set_ciphersuites(ctx, l13) != 1) {
		gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"listener '%s': tls.ciphersuites '%s' not known to OpenSSL", lname, l13);
		return gw_err_add_ossl();
	}
	if (SSL_CTX_set_cipher_list(ctx, l12) != 1) {
		gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"listener '%s': tls.ciphersuites '%s' not known to OpenSSL", lname, l12);
		return gw_err_add_ossl();
	}
	return 0;
}

static int
ident_build(
	struct gw_tls_ctl *c, struct gw_tls_lst *t, const struct gw_cfg_listener *lc, unsigned idx)
{
	const struct gw_cfg_tls *tc = &lc->tls;
	const struct gw_cfg_identity *id = &tc->identities[idx];
	struct ident *d = &t->ids[idx];
	unsigned lifetime =
		tc->ticket_lifetime_s ? tc->ticket_lifetime_s : GW_TLS_TICKET_LIFETIME_DEFAULT;
	EVP_PKEY *pk = NULL;
	int mode, rc;

	d->ctx = SSL_CTX_new(TLS_server_method());
	if (d->ctx == NULL) {
		gw_err_set(-GW_E_TLS, GW_HERE);
		return gw_err_add_ossl();
	}
	SSL_CTX_set_ex_data(d->ctx, ctx_idx, t);
	if (SSL_CTX_set_min_proto_version(
		    d->ctx, tc->min_version ? tc->min_version : TLS1_2_VERSION) != 1) {
		gw_err_set(-GW_E_TLS, GW_HERE);
		return gw_err_add_ossl();
	}
	GW_GUARD(set_ciphers(d->ctx, tc, lc->name));
	SSL_CTX_set_options(d->ctx,
		SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	/* our BIO takes what fits; a record is retried with the same bytes */
	SSL_CTX_set_mode(d->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
					 SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(d->ctx, id->cert) != 1) {
		gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"listener '%s' identity %u: certificate file '%s' unusable", lc->name, idx,
			id->cert);
		return gw_err_add_ossl();
	}
	rc = gw_hsm_key_load(c->hsm, id->key, &pk);
	if (rc < 0) {
		char msg[GW_ERR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%s", gw_err_msg());
		return gw_err_setf(
			rc, GW_HERE, "listener '%s' identity %u: %s", lc->name, idx, msg);
	}
	rc = SSL_CTX_use_PrivateKey(d->ctx, pk) == 1 && SSL_CTX_check_private_key(d->ctx) == 1;
	EVP_PKEY_free(pk); /* the SSL_CTX holds its own reference */
	if (!rc) {
		gw_err_setf(-GW_E_HSM_KEY, GW_HERE,
			"listener '%s' identity %u: certificate '%s' does not match key '%s'",
			lc->name, idx, id->cert, id->key);
		return gw_err_add_ossl();
	}
	/* the session id context is the trust fingerprint: see tls_ctx.h */
	if (SSL_CTX_set_session_id_context(d->ctx, t->fp, SSL_MAX_SID_CTX_LENGTH) != 1) {
		gw_err_set(-GW_E_TLS, GW_HERE);
		return gw_err_add_ossl();
	}
	/* no server-side cache (a lock shared by all workers); stateless tickets only */
	SSL_CTX_set_session_cache_mode(d->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_timeout(d->ctx, lifetime);
	SSL_CTX_set_num_tickets(d->ctx, 1);
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(d->ctx, ticket_key_cb) != 1 ||
		SSL_CTX_set_session_ticket_cb(d->ctx, ticket_gen_cb, ticket_dec_cb, t) != 1) {
		gw_err_set(-GW_E_TLS, GW_HERE);
		return gw_err_add_ossl();
	}
	switch (tc->client_auth) {
	case GW_CLIENT_AUTH_REQUIRED:
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		break;
	case GW_CLIENT_AUTH_OPTIONAL:
		mode = SSL_VERIFY_PEER;
		break;
	default:
		mode = SSL_VERIFY_NONE;
		break;
	}
	SSL_CTX_set_verify(d->ctx, mode, NULL);
	SSL_CTX_set_cert_verify_callback(d->ctx, verify_cb, t);
	SSL_CTX_set_tlsext_servername_callback(d->ctx, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(d->ctx, t);
	SSL_CTX_set_alpn_select_cb(d->ctx, alpn_cb, t);
	if (id->n_sni) {
		d->sni = calloc(id->n_sni, sizeof(*d->sni));
		GW_ENSURE(d->sni, -ENOMEM);
		for (unsigned j = 0; j < id->n_sni; j++) {
			d->sni[j] = strdup(id->sni[j]);
			GW_ENSURE(d->sni[j], -ENOMEM);
			d->n_sni = j + 1;
		}
	}
	return 0;
}

static int
ext_listener_init(void *arg, const struct gw_cfg_listener *lc, struct gw_snap_listener *l)
{
	struct gw_tls_ctl *c = arg;
	struct gw_tls_lst *t;
	unsigned lifetime;
	int rc;

	l->tls = NULL;
	if (!lc->has_tls)
		return 0;
	if (lc->tls.n_identities == 0)
		return gw_err_setf(
			-GW_E_CONFIG, GW_HERE, "listener '%s': tls without identities", lc->name);
	if (lc->tls.client_auth != GW_CLIENT_AUTH_NONE && l->trust == NULL)
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"listener '%s': client_auth needs a trust section", lc->name);
	t = calloc(1, sizeof(*t));
	GW_ENSURE(t, -ENOMEM);
	t->ctl = c;
	t->trust = l->trust;
	t->client_auth = lc->tls.client_auth;
	t->name = strdup(lc->name ? lc->name : "");
	t->ids = calloc(lc->tls.n_identities, sizeof(*t->ids));
	if (t->name == NULL || t->ids == NULL) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	rc = trust_fp(lc, l->trust, t->fp);
	if (rc < 0)
		goto out;
	for (unsigned i = 0; i < lc->tls.n_identities; i++) {
		t->n_ids = i + 1;
		rc = ident_build(c, t, lc, i);
		if (rc < 0)
			goto out;
	}
	/* rotation period: the configured one, else the shortest listener's */
	lifetime = lc->tls.ticket_lifetime_s ? lc->tls.ticket_lifetime_s
					     : GW_TLS_TICKET_LIFETIME_DEFAULT;
	if (!c->cfg_lifetime) {
		unsigned cur = atomic_load(&c->lifetime);

		if (cur == 0 || lifetime < cur)
			atomic_store(&c->lifetime, lifetime);
	}
	l->tls = t;
	return 0;
out:
	lst_free(t);
	return rc;
}

static void
ext_listener_fini(void *arg, struct gw_snap_listener *l)
{
	(void)arg;
	lst_free(l->tls);
	l->tls = NULL;
}

void
gw_tls_ctl_ext(struct gw_tls_ctl *c, struct gw_snapshot_ext *out)
{
	memset(out, 0, sizeof(*out));
	out->arg = c;
	out->listener_init = ext_listener_init;
	out->listener_fini = ext_listener_fini;
}
