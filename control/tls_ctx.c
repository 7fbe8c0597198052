/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tls_ctx.c - builds the per-listener SSL_CTX set of a snapshot and holds
 * the session ticket keys every worker shares. See tls_ctx.h for the model
 * (identities, SNI, verification through the trust engine, alerts, tickets,
 * ALPN). Runs on the control thread; the OpenSSL callbacks, which run on
 * whichever worker drives the handshake, are policy/tls_policy.c.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "tls_ctx.h"
#include "tls_internal.h"

/* ---- ticket keys ---- */

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
	GW_GUARD(gw_tls_ex_indexes());
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

int
gw_tls_ctl_rotate(struct gw_tls_ctl *c, time_t now, bool force)
{
	uint64_t s;

	GW_ENSURE(c, -EINVAL);
	s = atomic_load_explicit(&c->serial, memory_order_relaxed);
	if (!force && now - c->ring[s % TK_RING].created < (time_t)gw_tls_ctl_lifetime(c))
		return 0;
	GW_GUARD(tk_make(&c->ring[(s + 1) % TK_RING], now));
	/* release: the new key's bytes before the serial that names it */
	atomic_store_explicit(&c->serial, s + 1, memory_order_release);
	return 1;
}

int
gw_tls_ctl_install(struct gw_tls_ctl *c, const uint8_t name[16], const uint8_t aes[32],
	const uint8_t hmac[32], time_t created)
{
	uint64_t s;
	struct tk *k;

	GW_ENSURE(c && name && aes && hmac, -EINVAL);
	s = atomic_load_explicit(&c->serial, memory_order_relaxed);
	if (memcmp(c->ring[s % TK_RING].name, name, 16) == 0 ||
		memcmp(c->ring[(s - 1) % TK_RING].name, name, 16) == 0)
		return 0;
	k = &c->ring[(s + 1) % TK_RING];
	memcpy(k->name, name, sizeof(k->name));
	memcpy(k->aes, aes, sizeof(k->aes));
	memcpy(k->hmac, hmac, sizeof(k->hmac));
	k->created = created;
	/* release: the new key's bytes before the serial that names it */
	atomic_store_explicit(&c->serial, s + 1, memory_order_release);
	return 1;
}

uint64_t
gw_tls_ctl_key_serial(const struct gw_tls_ctl *c)
{
	return c ? atomic_load_explicit(&c->serial, memory_order_acquire) : 0;
}

/* ---- building a listener ---- */

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

/*
 * Leaf + intermediates from m's bytes into ctx, as
 * SSL_CTX_use_certificate_chain_file would from the file: the first
 * certificate is the leaf, every further one a chain certificate, and the
 * bytes must hold nothing but certificates. 0, or -GW_E_TLS with OpenSSL's
 * reason still queued.
 */
static int
use_chain(SSL_CTX *ctx, const struct gw_material *m)
{
	X509 *x = NULL;
	unsigned long e;
	int rc = -GW_E_TLS;
	BIO *b;

	if ((b = gw_material_bio(m)) == NULL)
		return -GW_E_TLS;
	if ((x = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL)) == NULL ||
		SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_clear_chain_certs(ctx) != 1)
		goto out;
	X509_free(x);
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1)
			goto out; /* not consumed on failure */
	/* the end of the bytes reads as "no start line"; anything else is an error */
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
		goto out;
	ERR_clear_error();
	rc = 0;
out:
	X509_free(x);
	BIO_free(b);
	return rc;
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
	struct gw_material own = {0};
	const struct gw_material *m;
	char what[160];
	EVP_PKEY *pk = NULL;
	int mode, rc;

	d->ctx = SSL_CTX_new(TLS_server_method());
	if (d->ctx == NULL) {
		gw_err_set(-GW_E_TLS, GW_HERE);
		return gw_err_add_ossl();
	}
	GW_GUARD_OSSL(SSL_CTX_set_min_proto_version(
			      d->ctx, tc->min_version ? tc->min_version : TLS1_2_VERSION),
		-GW_E_TLS);
	GW_GUARD(set_ciphers(d->ctx, tc, lc->name));
	SSL_CTX_set_options(d->ctx,
		SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	/* our BIO takes what fits; a record is retried with the same bytes */
	SSL_CTX_set_mode(d->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
					 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
					 SSL_MODE_RELEASE_BUFFERS);
	/*
	 * Read through material.c at every build, not the loader's id->cert_m:
	 * HSM recovery rebuilds from the running config after a key was
	 * replaced in the token, and the replacement's certificate sits at the
	 * same path (tests/integ/tls_hsm.sh). What is read here is also what is
	 * checked against the key below; the ticket fingerprint does not
	 * depend on it.
	 */
	snprintf(what, sizeof(what), "listener '%s' identity %u: certificate", lc->name, idx);
	GW_GUARD(gw_material_get(NULL, id->cert, what, &own, &m));
	rc = use_chain(d->ctx, m);
	gw_material_fini(&own);
	if (rc < 0) {
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
	GW_GUARD_OSSL(
		SSL_CTX_set_session_id_context(d->ctx, t->fp, SSL_MAX_SID_CTX_LENGTH), -GW_E_TLS);
	/* no server-side cache (a lock shared by all workers); stateless tickets only */
	SSL_CTX_set_session_cache_mode(d->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_timeout(d->ctx, lifetime);
	GW_GUARD_OSSL(SSL_CTX_set_num_tickets(d->ctx, tc->no_tickets ? 0 : 1), -GW_E_TLS);
	if (tc->no_tickets) /* TLS 1.2 too; TLS 1.3's stateful lookup finds no cache */
		SSL_CTX_set_options(d->ctx, SSL_OP_NO_TICKET);
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
	/* tickets, verify, SNI, ALPN: the worker side (policy/tls_policy.c) */
	GW_GUARD(gw_tls_policy_install(d->ctx, t, mode));
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
