/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ca.c - the CA backends' common part (ca.h): bring backends up, issue and
 * record leaves, switch the enabled backend with a cross-signed root, renew
 * builtin issuers. The type-specific parts are ca_builtin.c, ca_provided.c
 * and ca_cfssl.c.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"
#include "gw_x509.h"
#include "rotation.h"

/* ---- small helpers ------------------------------------------------------- */

time_t
gw_ca_now(const struct gw_ca *ca)
{
	return ca && ca->now ? ca->now : time(NULL);
}

void
gw_ca_set_time(struct gw_ca *ca, time_t now)
{
	if (ca)
		ca->now = now;
}

time_t
gw_ca_not_after(X509 *x)
{
	return x ? gw_x509_time(X509_get0_notAfter(x)) : 0;
}

time_t
gw_ca_not_before(X509 *x)
{
	return x ? gw_x509_time(X509_get0_notBefore(x)) : 0;
}

X509 *
gw_ca_pem_read(const char *pem)
{
	BIO *b;
	X509 *x;

	if (pem == NULL || (b = BIO_new_mem_buf(pem, -1)) == NULL)
		return NULL;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	return x;
}

char *
gw_ca_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (b == NULL)
		return NULL;
	if (x && PEM_write_bio_X509(b, x) == 1 && (n = BIO_get_mem_data(b, &data)) > 0 &&
		(out = malloc((size_t)n + 1)) != NULL) {
		memcpy(out, data, (size_t)n);
		out[n] = '\0';
	}
	BIO_free(b);
	return out;
}

void
gw_ca_fingerprint(X509 *x, char out[60])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	out[0] = '\0';
	if (x == NULL || X509_digest(x, EVP_sha1(), md, &n) != 1)
		return;
	for (unsigned i = 0; i < n && i < 20; i++)
		snprintf(out + 3 * i, 4, "%02x%s", md[i], i + 1 < n && i < 19 ? ":" : "");
}

int
gw_ca_serial_hex(X509 *x, char *out, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	int rc = 0;

	if (hex == NULL || strlen(hex) >= len)
		rc = gw_err_set(-ENOMEM, GW_HERE);
	else
		strcpy(out, hex);
	OPENSSL_free(hex);
	BN_free(bn);
	return rc;
}

static enum gw_hsm_key_type
hsm_type(enum gw_key_type t)
{
	switch (t) {
	case GW_KEY_EC_P384:
		return GW_HSM_KEY_EC_P384;
	case GW_KEY_RSA_2048:
		return GW_HSM_KEY_RSA_2048;
	case GW_KEY_RSA_3072:
		return GW_HSM_KEY_RSA_3072;
	default:
		return GW_HSM_KEY_EC_P256;
	}
}

int
gw_ca_fmt(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return gw_err_setf(-EINVAL, GW_HERE,
			"'%.60s...' is longer than %zu bytes (it would be cut short, naming "
			"something else)",
			out, len - 1);
	return 0;
}

int
gw_ca_key_ensure(struct gw_ca *ca, enum gw_key_type t, const char *label, char uri[GW_HSM_URI_MAX],
	EVP_PKEY **key)
{
	static const char ctx[] = "mtlsgw CA key id";
	unsigned char md[32];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok;

	/*
	 * The CKA_ID is derived from the label, so a key found under the label
	 * after a crash (made, then its certificate never committed) is reused
	 * only if its id is the one we would have given it: a key someone else
	 * labelled alike is refused, never signed with.
	 */
	ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(c, ctx, sizeof(ctx)) == 1 &&
	     EVP_DigestUpdate(c, label, strlen(label)) == 1 && EVP_DigestFinal_ex(c, md, NULL) == 1;
	EVP_MD_CTX_free(c);
	if (!ok)
		return gw_err_set(-ENOMEM, GW_HERE);
	GW_GUARD(gw_hsm_key_ensure(ca->hsm, hsm_type(t), label, md, 8, uri));
	return gw_hsm_key_load(ca->hsm, uri, key);
}

int
gw_ca_make_cert(X509_NAME *subject, EVP_PKEY *pub, X509 *issuer_cert, EVP_PKEY *key, time_t nb,
	time_t na, bool ca_cert, int pathlen, const char *san, X509 **out)
{
	const struct gw_x509_cert_spec spec = {
		.subject = subject,
		.pub = pub,
		.issuer = issuer_cert,
		.sign_key = key,
		.not_before = nb,
		.not_after = na,
		.ca = ca_cert,
		.pathlen = pathlen,
		.san = san,
	};
	int rc = gw_x509_cert_make(&spec, out);

	if (rc < 0 && rc != -ENOMEM) /* the CA's failure, whatever OpenSSL said */
		rc = gw_err_get()->code = -GW_E_CA;
	return rc;
}

/* ---- backends -------------------------------------------------------------- */

static const char *
type_name(enum gw_ca_type t)
{
	return t == GW_CA_BUILTIN ? "builtin" : t == GW_CA_PROVIDED ? "provided" : "cfssl";
}

static void
be_free(struct gw_ca_be *be)
{
	if (be == NULL)
		return;
	free(be->name);
	free(be->cfg.cert);
	free(be->cfg.key);
	free(be->cfg.url);
	free(be->cfg.profile);
	free(be->cfg.ca_file);
	X509_free(be->root);
	X509_free(be->issuer);
	X509_free(be->cross);
	EVP_PKEY_free(be->root_key);
	EVP_PKEY_free(be->issuer_key);
	free(be->root_key_uri);
	free(be->issuer_key_uri);
	sk_X509_pop_free(be->bundle, X509_free);
	free(be);
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Bring one backend up (inside the caller's transaction). */
static int
be_create(struct gw_ca *ca, const struct gw_cfg_ca_backend *c, struct gw_ca_be **out)
{
	struct gw_ca_be *be = calloc(1, sizeof(*be));
	int rc;

	if (be == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	/* the config refuses these too; a shorter cut would share keys between names */
	if (c->name == NULL || c->name[0] == '\0' || strlen(c->name) > GW_CFG_CA_NAME_MAX) {
		free(be);
		return gw_err_setf(-EINVAL, GW_HERE,
			"CA backend name '%.70s' is %zu bytes; at most %d (its HSM key labels "
			"ca-<name>-root/-issuer must fit 64 bytes)",
			c->name ? c->name : "", c->name ? strlen(c->name) : 0, GW_CFG_CA_NAME_MAX);
	}
	be->cfg = *c;
	be->name = strdup(c->name);
	be->cfg.name = be->name;
	be->cfg.cert = dup_or_null(c->cert);
	be->cfg.key = dup_or_null(c->key);
	be->cfg.url = dup_or_null(c->url);
	be->cfg.profile = dup_or_null(c->profile);
	be->cfg.ca_file = dup_or_null(c->ca_file);
	be->type = c->type;
	{
		struct gw_state_ca row;

		if (gw_state_ca_get(ca->st, c->name, &row) == 0) {
			be->fresh = row.removed != 0;
			gw_state_ca_clear(&row);
		} else {
			be->fresh = true;
			gw_err_clear();
		}
	}
	if (be->name == NULL || (c->cert && !be->cfg.cert) || (c->key && !be->cfg.key) ||
		(c->url && !be->cfg.url) || (c->profile && !be->cfg.profile) ||
		(c->ca_file && !be->cfg.ca_file)) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto fail;
	}
	switch (be->type) {
	case GW_CA_BUILTIN:
		rc = gw_ca_builtin_init(ca, be);
		break;
	case GW_CA_PROVIDED:
		rc = gw_ca_provided_init(ca, be);
		break;
	default:
		rc = gw_ca_cfssl_init(ca, be);
		break;
	}
	/* the caller's bytes (be->cfg = *c), for the init above only: never kept */
	memset(&be->cfg.cert_m, 0, sizeof(be->cfg.cert_m));
	if (rc < 0)
		goto fail;
	if ((be->bundle = sk_X509_new_null()) == NULL || !sk_X509_push(be->bundle, be->root) ||
		!X509_up_ref(be->root)) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto fail;
	}
	*out = be;
	return 0;
fail:
	be_free(be);
	return rc;
}

static struct gw_ca_be *
be_find(const struct gw_ca *ca, const char *name)
{
	for (unsigned i = 0; name && i < ca->n_be; i++)
		if (strcmp(ca->be[i]->name, name) == 0)
			return ca->be[i];
	return NULL;
}

/* Store row of a backend (provided/cfssl: so the roots and history survive). */
static int
be_store(struct gw_ca *ca, struct gw_ca_be *be)
{
	struct gw_state_ca row = {0}, old = {0};
	int rc;

	if (gw_state_ca_get(ca->st, be->name, &old) == 0)
		row.created = old.created;
	else
		row.created = gw_ca_now(ca);
	gw_err_clear();
	row.name = be->name;
	row.type = (char *)type_name(be->type);
	row.root_pem = gw_ca_pem(be->root);
	row.issuer_pem = be->issuer ? gw_ca_pem(be->issuer) : NULL;
	row.root_key = be->root_key_uri;
	row.issuer_key = be->issuer_key_uri;
	row.cross_pem = be->cross ? gw_ca_pem(be->cross) : NULL;
	row.removed = 0;
	if (row.root_pem == NULL)
		rc = gw_err_set(-ENOMEM, GW_HERE);
	else
		rc = gw_state_ca_put(ca->st, &row);
	free(row.root_pem);
	free(row.issuer_pem);
	free(row.cross_pem);
	gw_state_ca_clear(&old);
	return rc;
}

static int
trust_domain_init(struct gw_ca *ca, const struct gw_cfg_mtls *m)
{
	char *stored = NULL;
	unsigned char rnd[8];
	char gen[32];

	if (m->trust_domain) {
		GW_GUARD(gw_state_meta_set(ca->st, "trust_domain", m->trust_domain));
		ca->trust_domain = strdup(m->trust_domain);
	} else if (gw_state_meta_get(ca->st, "trust_domain", &stored) == 0) {
		ca->trust_domain = stored;
	} else {
		gw_err_clear();
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return gw_err_setf(-GW_E_CA, GW_HERE, "no randomness for a trust domain");
		for (unsigned i = 0; i < sizeof(rnd); i++)
			snprintf(gen + 2 * i, 3, "%02x", rnd[i]);
		strcat(gen, ".mtlsgw");
		GW_GUARD(gw_state_meta_set(ca->st, "trust_domain", gen));
		ca->trust_domain = strdup(gen);
	}
	return ca->trust_domain ? 0 : gw_err_set(-ENOMEM, GW_HERE);
}

void
gw_ca_params_from_cfg(const struct gw_cfg *cfg, struct gw_ca_params *p, char token[33])
{
	const char *uri = NULL;

	for (unsigned i = 0; !uri && i < cfg->mtls.n_backends; i++)
		uri = cfg->mtls.backends[i].key;
	for (unsigned i = 0; !uri && i < cfg->n_listeners; i++)
		if (cfg->listeners[i].has_tls && cfg->listeners[i].tls.n_identities)
			uri = cfg->listeners[i].tls.identities[0].key;
	if (!uri || gw_hsm_uri_token(uri, token, 33) < 0)
		snprintf(token, 33, "mtlsgw");
	gw_err_clear();
	memset(p, 0, sizeof(*p));
	p->hsm.module = cfg->hsm.module;
	p->hsm.pin_file = cfg->hsm.pin_file;
	p->hsm.pin_env = cfg->hsm.pin_env;
	p->hsm.token = token;
	p->state_dir = cfg->state_dir;
}

static int cross_sign(struct gw_ca *ca, struct gw_ca_be *a, struct gw_ca_be *b, X509 **out);

/*
 * The config may be ahead of the store: a crash (or a stop) after the new
 * config was written but before the rotation step was committed. Finish that
 * step now: mark backends gone from the config removed, and if the enabled
 * backend changed, cross-sign and record it as gw_ca_reconfigure would have.
 */
static int
catch_up(struct gw_ca *ca, const struct gw_cfg_mtls *m)
{
	char **names = NULL, *prev = NULL;
	unsigned n = 0;
	time_t now = gw_ca_now(ca);
	int rc;

	GW_GUARD(gw_state_ca_list(ca->st, &names, &n));
	for (unsigned i = 0; i < n; i++) {
		struct gw_state_ca row;
		bool kept = false;

		for (unsigned j = 0; j < m->n_backends; j++)
			kept = kept || strcmp(m->backends[j].name, names[i]) == 0;
		if (kept || gw_state_ca_get(ca->st, names[i], &row) < 0)
			continue;
		row.removed = now;
		rc = gw_state_ca_put(ca->st, &row);
		gw_state_ca_clear(&row);
		if (rc < 0 || (rc = gw_state_history_add(ca->st, now, "remove", names[i],
				       "found removed at start")) < 0)
			goto out;
	}
	gw_err_clear();
	rc = 0;
	if (ca->enabled == NULL)
		goto out;
	if (gw_state_meta_get(ca->st, "enabled", &prev) == 0 && strcmp(prev, ca->enabled) != 0) {
		struct gw_ca_be *a = be_find(ca, prev), *b = be_find(ca, ca->enabled);
		X509 *cross = NULL;

		if (a && b && a->root_key && gw_ca_not_after(a->root) > now &&
			X509_cmp(a->root, b->root) != 0) {
			if ((rc = cross_sign(ca, a, b, &cross)) < 0)
				goto out;
			X509_free(b->cross);
			b->cross = cross;
			if ((rc = be_store(ca, b)) < 0)
				goto out;
		}
		if ((rc = gw_state_history_add(ca->st, now, "enable", ca->enabled,
			     cross ? "at start, root cross-signed" : "at start")) < 0)
			goto out;
	}
	gw_err_clear();
	rc = gw_state_meta_set(ca->st, "enabled", ca->enabled);
out:
	for (unsigned i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(prev);
	return rc;
}

int
gw_ca_create(const struct gw_cfg_mtls *m, const struct gw_ca_params *p, struct gw_ca **out)
{
	struct gw_ca *ca;
	struct gw_hsm_params hp;
	int rc;

	GW_ENSURE(m && p && p->state_dir && out, -EINVAL);
	ca = calloc(1, sizeof(*ca));
	if (ca == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	hp = p->hsm;
	if ((rc = gw_ca_fmt(ca->token, sizeof(ca->token), "%s", hp.token ? hp.token : "mtlsgw")) <
		0) {
		free(ca);
		return rc;
	}
	hp.token = ca->token;
	if ((rc = gw_state_open(p->state_dir, &ca->st)) < 0 ||
		(rc = gw_hsm_open(&hp, &ca->hsm)) < 0)
		goto fail;
	ca->be = calloc(m->n_backends ? m->n_backends : 1, sizeof(*ca->be));
	if (ca->be == NULL) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto fail;
	}
	if ((rc = gw_state_begin(ca->st)) < 0)
		goto fail;
	if ((rc = trust_domain_init(ca, m)) < 0)
		goto fail_tx;
	for (unsigned i = 0; i < m->n_backends; i++) {
		if ((rc = be_create(ca, &m->backends[i], &ca->be[i])) < 0)
			goto fail_tx;
		ca->n_be = i + 1;
		if ((rc = be_store(ca, ca->be[i])) < 0)
			goto fail_tx;
		if (ca->be[i]->fresh && (rc = gw_state_history_add(ca->st, gw_ca_now(ca), "add",
						 ca->be[i]->name, type_name(ca->be[i]->type))) < 0)
			goto fail_tx;
	}
	if (m->enabled_backend && (ca->enabled = strdup(m->enabled_backend)) == NULL) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto fail_tx;
	}
	if ((rc = catch_up(ca, m)) < 0)
		goto fail_tx;
	if ((rc = gw_state_commit(ca->st, "ca-create")) < 0)
		goto fail;
	*out = ca;
	return 0;
fail_tx:
	gw_state_rollback(ca->st);
fail:
	gw_ca_destroy(ca);
	return rc;
}

void
gw_ca_destroy(struct gw_ca *ca)
{
	if (ca == NULL)
		return;
	for (unsigned i = 0; i < ca->n_be; i++)
		be_free(ca->be[i]);
	free(ca->be);
	free(ca->trust_domain);
	free(ca->enabled);
	gw_hsm_close(ca->hsm);
	gw_state_close(ca->st);
	free(ca);
}

const char *
gw_ca_trust_domain(const struct gw_ca *ca)
{
	return ca ? ca->trust_domain : NULL;
}

const char *
gw_ca_enabled(const struct gw_ca *ca)
{
	return ca ? ca->enabled : NULL;
}

struct gw_state *
gw_ca_state(struct gw_ca *ca)
{
	return ca ? ca->st : NULL;
}

unsigned
gw_ca_n_backends(const struct gw_ca *ca)
{
	return ca ? ca->n_be : 0;
}

int
gw_ca_backend_info(const struct gw_ca *ca, unsigned i, struct gw_ca_info *out)
{
	const struct gw_ca_be *be;

	GW_ENSURE(ca && out && i < ca->n_be, -EINVAL);
	be = ca->be[i];
	out->name = be->name;
	out->type = be->type;
	out->root = be->root;
	out->issuer = be->issuer;
	out->cross = be->cross;
	out->url = be->cfg.url;
	out->active = ca->enabled && strcmp(ca->enabled, be->name) == 0;
	out->expired = gw_ca_not_after(be->root) <= gw_ca_now(ca);
	return 0;
}

STACK_OF(X509) * gw_ca_bundle(const struct gw_ca *ca, unsigned i)
{
	return ca && i < ca->n_be ? ca->be[i]->bundle : NULL;
}

/* ---- issuing --------------------------------------------------------------- */

/*
 * A SPIFFE ID of this trust domain whose path follows the SPIFFE ID spec
 * (2.2): segments of [A-Za-z0-9._-], none empty, "." or "..", so no two
 * spellings name one workload and none dodges the reserved prefix below.
 */
static int
check_spiffe(const struct gw_ca *ca, const char *id)
{
	size_t tl = strlen(ca->trust_domain);
	const char *p, *seg;

	if (id == NULL || strncmp(id, "spiffe://", 9) != 0 ||
		strncmp(id + 9, ca->trust_domain, tl) != 0 || id[9 + tl] != '/' || !id[10 + tl] ||
		strlen(id) > 2048)
		return gw_err_setf(-EINVAL, GW_HERE,
			"SPIFFE ID '%.100s' is not in trust domain %s (expected "
			"spiffe://%s/<path>)",
			id ? id : "(none)", ca->trust_domain, ca->trust_domain);
	for (p = seg = id + 9 + tl + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t n = (size_t)(p - seg);

			if (n == 0 || (n == 1 && seg[0] == '.') ||
				(n == 2 && seg[0] == '.' && seg[1] == '.'))
				return gw_err_setf(-EINVAL, GW_HERE,
					"SPIFFE ID '%.100s': empty, '.' or '..' path segment", id);
			if (*p == '\0')
				break;
			seg = p + 1;
		} else if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_') {
			return gw_err_setf(-EINVAL, GW_HERE,
				"SPIFFE ID '%.100s': character 0x%02x in its path (expected "
				"[A-Za-z0-9._-] and '/')",
				id, (unsigned char)*p);
		}
	}
	return 0;
}

/* The gateway's own identities are spiffe://<td>/gateway/<listener>: nobody else's. */
static int
check_not_reserved(const struct gw_ca *ca, const struct gw_ca_leaf_req *r)
{
	const char *path = r->spiffe_id + 9 + strlen(ca->trust_domain);

	if (r->kind && strcmp(r->kind, GW_STATE_KIND_IDENTITY) == 0)
		return 0;
	if (strcmp(path, "/gateway") == 0 || strncmp(path, "/gateway/", 9) == 0)
		return gw_err_setf(-EINVAL, GW_HERE,
			"SPIFFE ID '%.100s' is reserved: spiffe://%s/gateway/... names the "
			"gateway's own listeners; ask for another path",
			r->spiffe_id, ca->trust_domain);
	return 0;
}

/* EC P-256 or stronger NIST curve, or RSA of at least 2048 bits. */
static int
check_key_strength(EVP_PKEY *pub)
{
	char curve[64] = "";
	size_t cl = 0;

	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pub) >= 2048)
			return 0;
		return gw_err_setf(-EINVAL, GW_HERE,
			"the CSR's key is RSA-%d; at least RSA-2048 (or EC P-256) is required",
			EVP_PKEY_get_bits(pub));
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(pub, "group", curve, sizeof(curve), &cl) == 1 &&
			(strcmp(curve, "prime256v1") == 0 || strcmp(curve, "secp384r1") == 0 ||
				strcmp(curve, "secp521r1") == 0))
			return 0;
		ERR_clear_error();
		return gw_err_setf(-EINVAL, GW_HERE,
			"the CSR's key is on EC curve '%s'; P-256, P-384 or P-521 is required",
			curve[0] ? curve : "(unnamed)");
	default:
		return gw_err_setf(-EINVAL, GW_HERE,
			"the CSR's key is %s; EC P-256 or better, or RSA-2048 or better, is "
			"required",
			OBJ_nid2sn(EVP_PKEY_get_base_id(pub)));
	}
}

/* Subject: the CSR's if it has one, else CN = the ID's last path segment. */
static X509_NAME *
leaf_subject(X509_REQ *csr, const char *spiffe)
{
	X509_NAME *n = X509_REQ_get_subject_name(csr);
	const char *last = strrchr(spiffe, '/');

	if (n && X509_NAME_entry_count(n) > 0)
		return X509_NAME_dup(n);
	n = X509_NAME_new();
	if (n && X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
			 (const unsigned char *)(last ? last + 1 : spiffe), -1, -1, 0) != 1) {
		X509_NAME_free(n);
		n = NULL;
	}
	return n;
}

static int
record(struct gw_ca *ca, struct gw_ca_be *be, X509 *x, const struct gw_ca_leaf_req *r)
{
	char serial[80], subject[256];
	struct gw_state_cert c = {0};

	GW_GUARD(gw_ca_serial_hex(x, serial, sizeof(serial)));
	X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
	c.serial = serial;
	c.subject = subject;
	c.spiffe_id = r->spiffe_id;
	c.not_after = gw_ca_not_after(x);
	c.backend = be->name;
	c.kind = r->kind ? r->kind : GW_STATE_KIND_CLIENT;
	c.owner = r->owner;
	GW_GUARD(gw_state_begin(ca->st));
	if (gw_state_cert_record(ca->st, &c, gw_ca_now(ca)) < 0 ||
		gw_state_commit(ca->st, "issue") < 0) {
		gw_state_rollback(ca->st);
		return -GW_E_STATE;
	}
	return 0;
}

int
gw_ca_sign(struct gw_ca *ca, const struct gw_ca_leaf_req *r, X509 **cert, STACK_OF(X509) * *chain)
{
	struct gw_ca_be *be;
	EVP_PKEY *pub;
	X509_NAME *subj = NULL;
	X509 *x = NULL, *signer;
	EVP_PKEY *key;
	STACK_OF(X509) *ch = NULL;
	char san[2100];
	time_t now = gw_ca_now(ca), na;
	uint64_t ttl;
	int rc;

	GW_ENSURE(ca && r && r->csr && cert, -EINVAL);
	be = be_find(ca, r->backend ? r->backend : ca->enabled);
	if (be == NULL)
		return gw_err_setf(-ENOENT, GW_HERE, "no CA backend named '%s'",
			r->backend    ? r->backend
			: ca->enabled ? ca->enabled
				      : "(none enabled)");
	GW_GUARD(check_spiffe(ca, r->spiffe_id));
	GW_GUARD(check_not_reserved(ca, r));
	if (r->ttl_s > be->cfg.leaf_validity_s)
		return gw_err_setf(-EINVAL, GW_HERE,
			"TTL of %llu s is longer than backend %s's leaf_validity (%llu s); ask for "
			"at most that",
			(unsigned long long)r->ttl_s, be->name,
			(unsigned long long)be->cfg.leaf_validity_s);
	ttl = r->ttl_s ? r->ttl_s : be->cfg.leaf_validity_s;
	pub = X509_REQ_get0_pubkey(r->csr);
	if (pub == NULL || X509_REQ_verify(r->csr, pub) != 1) {
		ERR_clear_error();
		return gw_err_setf(-EINVAL, GW_HERE,
			"the CSR's signature does not verify with its own public key");
	}
	GW_GUARD(check_key_strength(pub));
	if (gw_ca_not_after(be->root) <= now)
		return gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: its root expired; enable another backend to issue", be->name);
	if (be->type == GW_CA_CFSSL && be->issuer == NULL) {
		rc = gw_ca_cfssl_sign(be, r->csr, r->spiffe_id, now, ttl, &x);
		if (rc < 0)
			return rc;
	} else {
		signer = be->issuer ? be->issuer : be->root;
		key = be->issuer ? be->issuer_key : be->root_key;
		if (gw_ca_not_after(signer) <= now)
			return gw_err_setf(-GW_E_CA, GW_HERE,
				"backend %s: its issuer expired (renewal failed?)", be->name);
		na = now + (time_t)ttl;
		if (na > gw_ca_not_after(signer))
			na = gw_ca_not_after(signer);
		GW_GUARD(gw_ca_fmt(san, sizeof(san), "URI:%s", r->spiffe_id));
		if ((subj = leaf_subject(r->csr, r->spiffe_id)) == NULL)
			return gw_err_set(-ENOMEM, GW_HERE);
		/* a minute back: peers whose clock is slightly behind still accept it */
		rc = gw_ca_make_cert(subj, pub, signer, key, now - 60, na, false, -1, san, &x);
		X509_NAME_free(subj);
		if (rc < 0)
			return rc;
	}
	if ((rc = record(ca, be, x, r)) < 0)
		goto fail;
	if (chain) {
		if ((ch = sk_X509_new_null()) == NULL)
			goto nomem;
		if (be->issuer && (!sk_X509_push(ch, be->issuer) || !X509_up_ref(be->issuer)))
			goto nomem;
		if (be->cross && (!sk_X509_push(ch, be->cross) || !X509_up_ref(be->cross)))
			goto nomem;
		*chain = ch;
	}
	*cert = x;
	return 0;
nomem:
	rc = gw_err_set(-ENOMEM, GW_HERE);
fail:
	sk_X509_pop_free(ch, X509_free);
	X509_free(x);
	return rc;
}

int
gw_ca_issue_identity(struct gw_ca *ca, const char *listener, X509 **cert, STACK_OF(X509) * *chain,
	char key_uri[GW_HSM_URI_MAX])
{
	char label[GW_HSM_LABEL_MAX + 1], subj[128], san[600], id[560];
	struct gw_ca_be *be;
	EVP_PKEY *k = NULL;
	X509_REQ *csr = NULL;
	int rc;

	GW_ENSURE(ca && listener && cert && key_uri, -EINVAL);
	be = be_find(ca, ca->enabled);
	if (be == NULL)
		return gw_err_setf(-ENOENT, GW_HERE, "no enabled CA backend");
	GW_GUARD(gw_ca_fmt(label, sizeof(label), "gw-id-%s", listener));
	GW_GUARD(gw_ca_fmt(id, sizeof(id), "spiffe://%s/gateway/%s", ca->trust_domain, listener));
	GW_GUARD(gw_ca_fmt(san, sizeof(san), "URI:%s", id));
	GW_GUARD(gw_ca_fmt(subj, sizeof(subj), "/CN=%s", listener));
	if ((rc = gw_ca_key_ensure(ca, be->cfg.key_type, label, key_uri, &k)) < 0)
		return rc;
	EVP_PKEY_free(k);
	if ((rc = gw_hsm_csr(ca->hsm, key_uri, subj, san, &csr)) < 0)
		return rc;
	rc = gw_ca_sign(ca,
		&(struct gw_ca_leaf_req){.csr = csr,
			.spiffe_id = id,
			.kind = GW_STATE_KIND_IDENTITY,
			.owner = listener},
		cert, chain);
	X509_REQ_free(csr);
	return rc;
}

/* ---- reconfigure, renew ------------------------------------------------------ */

/* B's root, re-signed by A's root key: same subject, key and SKI as B's root. */
static int
cross_sign(struct gw_ca *ca, struct gw_ca_be *a, struct gw_ca_be *b, X509 **out)
{
	time_t na = gw_ca_not_after(a->root), nb = gw_ca_not_after(b->root);

	return gw_ca_make_cert(X509_get_subject_name(b->root), X509_get0_pubkey(b->root), a->root,
		a->root_key, gw_ca_now(ca) - 60, na < nb ? na : nb, true, -1, NULL, out);
}

int
gw_ca_reconfigure(struct gw_ca *ca, const struct gw_cfg_mtls *m)
{
	struct gw_ca_be **nb = NULL, *old_en, *new_en;
	bool *made = NULL;
	char **ca_files = NULL;
	X509 *cross = NULL;
	time_t now = gw_ca_now(ca);
	char *enabled = NULL;
	int rc;

	GW_ENSURE(ca && m, -EINVAL);
	nb = calloc(m->n_backends ? m->n_backends : 1, sizeof(*nb));
	made = calloc(m->n_backends ? m->n_backends : 1, sizeof(*made));
	ca_files = calloc(m->n_backends ? m->n_backends : 1, sizeof(*ca_files));
	for (unsigned i = 0; ca_files && i < m->n_backends; i++)
		if (m->backends[i].ca_file &&
			(ca_files[i] = strdup(m->backends[i].ca_file)) == NULL) {
			rc = gw_err_set(-ENOMEM, GW_HERE);
			goto out;
		}
	if (nb == NULL || made == NULL || ca_files == NULL ||
		(m->enabled_backend && (enabled = strdup(m->enabled_backend)) == NULL)) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	if ((rc = gw_state_begin(ca->st)) < 0)
		goto out;
	for (unsigned i = 0; i < m->n_backends; i++) {
		struct gw_ca_be *e = be_find(ca, m->backends[i].name);

		if (e && e->type == m->backends[i].type) {
			nb[i] = e;
			continue;
		}
		if ((rc = be_create(ca, &m->backends[i], &nb[i])) < 0)
			goto rollback;
		made[i] = true;
		if ((rc = be_store(ca, nb[i])) < 0 ||
			(rc = gw_state_history_add(
				 ca->st, now, "add", nb[i]->name, type_name(nb[i]->type))) < 0)
			goto rollback;
	}
	for (unsigned i = 0; i < ca->n_be; i++) {
		bool kept = false;
		struct gw_state_ca row;

		for (unsigned j = 0; j < m->n_backends; j++)
			kept = kept || nb[j] == ca->be[i];
		if (kept)
			continue;
		if (gw_state_ca_get(ca->st, ca->be[i]->name, &row) == 0) {
			row.removed = now;
			rc = gw_state_ca_put(ca->st, &row);
			gw_state_ca_clear(&row);
			if (rc < 0)
				goto rollback;
		}
		gw_err_clear();
		if ((rc = gw_state_history_add(ca->st, now, "remove", ca->be[i]->name, NULL)) < 0)
			goto rollback;
	}
	old_en = be_find(ca, ca->enabled);
	new_en = NULL;
	for (unsigned i = 0; enabled && i < m->n_backends; i++)
		if (strcmp(nb[i]->name, enabled) == 0)
			new_en = nb[i];
	if (new_en && new_en != old_en) {
		char detail[160];

		/* an expired or key-less old root cannot vouch for the new one */
		if (old_en && old_en->root_key && gw_ca_not_after(old_en->root) > now &&
			X509_cmp(old_en->root, new_en->root) != 0) {
			if ((rc = cross_sign(ca, old_en, new_en, &cross)) < 0)
				goto rollback;
		}
		snprintf(detail, sizeof(detail), "from %s%s", old_en ? old_en->name : "(none)",
			cross ? ", root cross-signed" : "");
		if ((rc = gw_state_history_add(ca->st, now, "enable", new_en->name, detail)) < 0)
			goto rollback;
		if (cross) {
			X509 *keep = new_en->cross;

			new_en->cross = cross;
			rc = be_store(ca, new_en);
			new_en->cross = keep;
			if (rc < 0)
				goto rollback;
		}
	}
	if (enabled && (rc = gw_state_meta_set(ca->st, "enabled", enabled)) < 0)
		goto rollback;
	if ((rc = gw_state_commit(ca->st, "reconfigure")) < 0)
		goto undo;
	/* committed: now change memory */
	for (unsigned i = 0; i < ca->n_be; i++) {
		bool kept = false;

		for (unsigned j = 0; j < m->n_backends; j++)
			kept = kept || nb[j] == ca->be[i];
		if (!kept)
			be_free(ca->be[i]);
	}
	if (cross) {
		X509_free(new_en->cross);
		new_en->cross = cross;
		cross = NULL;
	}
	/*
	 * kept backends take the new validities (rotation.h allows only those to
	 * change) and cfssl's TLS CA file (its server certificate may be renewed
	 * under a new CA: the pinned root is what must not change)
	 */
	for (unsigned i = 0; i < m->n_backends; i++) {
		nb[i]->cfg.leaf_validity_s = m->backends[i].leaf_validity_s;
		nb[i]->cfg.root_validity_s = m->backends[i].root_validity_s;
		free(nb[i]->cfg.ca_file);
		nb[i]->cfg.ca_file = ca_files[i];
		ca_files[i] = NULL;
	}
	free(ca->be);
	ca->be = nb;
	ca->n_be = m->n_backends;
	nb = NULL;
	free(ca->enabled);
	ca->enabled = enabled;
	enabled = NULL;
	rc = 0;
	goto out;
rollback:
	gw_state_rollback(ca->st);
undo:
	for (unsigned i = 0; nb && i < m->n_backends; i++)
		if (made[i])
			be_free(nb[i]);
out:
	X509_free(cross);
	for (unsigned i = 0; ca_files && i < m->n_backends; i++)
		free(ca_files[i]);
	free(ca_files);
	free(nb);
	free(made);
	free(enabled);
	return rc;
}

int
gw_ca_maintain(struct gw_ca *ca)
{
	time_t now = gw_ca_now(ca);
	int renewed = 0, rc;

	GW_ENSURE(ca != NULL, -EINVAL);
	for (unsigned i = 0; i < ca->n_be; i++) {
		struct gw_ca_be *be = ca->be[i];
		X509 *x = NULL;

		if (be->issuer == NULL || !gw_rotation_renew_due(gw_ca_not_before(be->issuer),
						  gw_ca_not_after(be->issuer), now))
			continue;
		rc = be->type == GW_CA_BUILTIN ? gw_ca_builtin_new_issuer(ca, be, &x)
					       : gw_ca_cfssl_new_issuer(ca, be, &x);
		if (rc < 0)
			return rc;
		if (x == NULL)
			return gw_err_setf(-GW_E_CA, GW_HERE,
				"backend %s: cfssl no longer signs CA certificates with profile %s",
				be->name, be->cfg.profile ? be->cfg.profile : "(default)");
		{
			X509 *old = be->issuer;

			be->issuer = x;
			if ((rc = gw_state_begin(ca->st)) < 0 || (rc = be_store(ca, be)) < 0 ||
				(rc = gw_state_history_add(
					 ca->st, now, "renew", be->name, "issuer")) < 0 ||
				(rc = gw_state_commit(ca->st, "renew-issuer")) < 0) {
				gw_state_rollback(ca->st);
				be->issuer = old;
				X509_free(x);
				return rc;
			}
			X509_free(old);
		}
		renewed++;
	}
	return renewed;
}
