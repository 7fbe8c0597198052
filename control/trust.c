/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * trust.c - the trust engine (see trust.h for the semantics).
 *
 * Build side (control thread): read anchors, pins and CRLs, precompute
 * everything OpenSSL would otherwise cache lazily on shared objects (X509
 * extension flags, CRL revoked-list sort) so that verification never writes
 * to anything the gw_trust owns.
 *
 * Verify side (any thread): one X509_STORE_CTX per call with the anchors as
 * a trusted stack (X509_STORE_CTX_set0_trusted_stack), the CRLs as a CRL
 * stack, and a copy of our X509_VERIFY_PARAM. Then OpenSSL's error is turned
 * into one of our reasons and a sentence naming the certificate and what to
 * do about it.
 */
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "trust.h"

struct gw_trust_rules {
	char **spiffe;
	unsigned n_spiffe;
	char **dns;
	unsigned n_dns;
	char **cn;
	unsigned n_cn;
};

struct gw_trust {
	uint64_t id;
	enum gw_trust_mode mode;
	char name[64];
	STACK_OF(X509) * anchors; /* ca/mesh: the anchors; pinned: the pinned certs we have */
	uint8_t (*pins)[32];      /* pinned: every fingerprint (files and pins_sha256) */
	unsigned n_pins;
	STACK_OF(X509_CRL) * crls; /* NULL when no CRL is configured */
	X509_VERIFY_PARAM *param;  /* copied into each X509_STORE_CTX */
	unsigned max_depth;
	enum gw_crl_check crl_check;
	struct gw_trust_rules allow;
	uint8_t fp[GW_TRUST_FP_LEN]; /* gw_trust_fingerprint(), set last by trust_build */
};

static _Atomic uint64_t gw_trust_next_id = 1;

static const char *const reason_names[] = {
#define GW_TRUST_R_NAME_(n, s) s,
	GW_TRUST_REASONS(GW_TRUST_R_NAME_)
#undef GW_TRUST_R_NAME_
};

const char *
gw_trust_reason_name(enum gw_trust_reason r)
{
	if ((unsigned)r >= GW_TRUST_R__COUNT)
		return "unknown";
	return reason_names[r];
}

uint64_t
gw_trust_id(const struct gw_trust *t)
{
	return t ? t->id : 0;
}

enum gw_trust_mode
gw_trust_mode(const struct gw_trust *t)
{
	return t->mode;
}

unsigned
gw_trust_n_anchors(const struct gw_trust *t)
{
	if (t == NULL)
		return 0;
	return t->mode == GW_TRUST_PINNED ? t->n_pins : (unsigned)sk_X509_num(t->anchors);
}

/* ---- SHA-256, fetched once (implicit fetches per call cost a lookup) ---- */

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *
sha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md;
}

/* ---- names and dates for messages ---- */

static void
name_str(const X509_NAME *n, char *buf, size_t len)
{
	BIO *b;
	int r;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (n == NULL)
		return;
	b = BIO_new(BIO_s_mem());
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		r = BIO_read(b, buf, (int)len - 1);
		buf[r > 0 ? r : 0] = '\0';
	}
	BIO_free(b);
	if (buf[0] == '\0')
		snprintf(buf, len, "(empty subject)");
}

static void
time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		snprintf(buf, len, "(unknown date)");
		return;
	}
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static time_t
asn1_to_time_t(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/* ---- loading files ---- */

/*
 * The bytes of one configured file: the loader's (loaded, when the config
 * came from gw_cfg_load: the file is not opened again), else, for a config
 * built by hand, read once here into *own (caller finis it).
 */
static int
material_get(const struct gw_material *loaded, const char *path, const char *what,
	struct gw_material *own, const struct gw_material **out)
{
	int rc;

	if (loaded != NULL) {
		if (loaded->bytes == NULL)
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"%s '%s': the config holds no bytes for it", what, path);
		*out = loaded;
		return 0;
	}
	rc = gw_material_read(path, GW_MATERIAL_MAX, own);
	if (rc < 0)
		return gw_err_setf(-GW_E_CONFIG, GW_HERE, "%s '%s': cannot open: %s", what, path,
			rc > -GW_E_BASE ? strerror(-rc) : "cannot hash it");
	*out = own;
	return 0;
}

/* A read-only memory BIO over m's bytes. */
static BIO *
material_bio(const struct gw_material *m)
{
	if (m->len > INT_MAX)
		return NULL;
	return BIO_new_mem_buf(m->bytes, (int)m->len);
}

/*
 * Parse every PEM block of m in order. Each block must be a certificate
 * whose DER parses completely. what and m->path name the file in messages.
 */
static int
load_certs(const struct gw_material *m, STACK_OF(X509) * out, const char *what)
{
	BIO *b = NULL;
	char *name = NULL, *hdr = NULL;
	unsigned char *data = NULL;
	const char *path = m->path;
	long len = 0;
	unsigned n = 0;
	int rc = 0;

	b = material_bio(m);
	if (b == NULL) {
		ERR_clear_error();
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	for (;;) {
		const unsigned char *p;
		X509 *x;

		if (PEM_read_bio(b, &name, &hdr, &data, &len) != 1) {
			unsigned long e = ERR_peek_last_error();

			if (ERR_GET_REASON(e) == PEM_R_NO_START_LINE && n > 0) {
				ERR_clear_error();
				break;
			}
			ERR_clear_error();
			if (n == 0)
				rc = gw_err_setf(-GW_E_CONFIG, GW_HERE,
					"%s '%s': no PEM certificate in the file", what, path);
			else
				rc = gw_err_setf(-GW_E_CONFIG, GW_HERE,
					"%s '%s': PEM block %u is damaged", what, path, n + 1);
			goto out;
		}
		n++;
		if (strcmp(name, PEM_STRING_X509) != 0 && strcmp(name, PEM_STRING_X509_OLD) != 0 &&
			strcmp(name, PEM_STRING_X509_TRUSTED) != 0) {
			rc = gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"%s '%s': PEM block %u is a '%s', not a CERTIFICATE", what, path, n,
				name);
			goto out;
		}
		p = data;
		x = strcmp(name, PEM_STRING_X509_TRUSTED) == 0 ? d2i_X509_AUX(NULL, &p, len)
							       : d2i_X509(NULL, &p, len);
		if (x == NULL || p != data + len) {
			X509_free(x);
			ERR_clear_error();
			rc = gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"%s '%s': certificate %u is not valid DER", what, path, n);
			goto out;
		}
		if (!sk_X509_push(out, x)) {
			X509_free(x);
			rc = gw_err_set(-ENOMEM, GW_HERE);
			goto out;
		}
		OPENSSL_free(name);
		OPENSSL_free(hdr);
		OPENSSL_free(data);
		name = hdr = NULL;
		data = NULL;
	}
out:
	OPENSSL_free(name);
	OPENSSL_free(hdr);
	OPENSSL_free(data);
	BIO_free(b);
	return rc;
}

int
gw_trust_chain_load(const char *path, X509 **leaf, STACK_OF(X509) * *rest)
{
	STACK_OF(X509) *sk = NULL;
	struct gw_material m = {0};
	int rc;

	GW_ENSURE(path != NULL && leaf != NULL && rest != NULL, -EINVAL);
	rc = gw_material_read(path, GW_MATERIAL_MAX, &m);
	if (rc < 0)
		return gw_err_setf(rc, GW_HERE, "chain '%s': %s", path,
			rc > -GW_E_BASE ? strerror(-rc) : "cannot hash it");
	sk = sk_X509_new_null();
	if (sk == NULL) {
		gw_material_fini(&m);
		return gw_err_set(-ENOMEM, GW_HERE);
	}
	rc = load_certs(&m, sk, "chain");
	gw_material_fini(&m);
	if (rc < 0) {
		/* same message, but for a chain it is malformed input, not config */
		gw_err_get()->code = -GW_E_PARSE;
		rc = -GW_E_PARSE;
		sk_X509_pop_free(sk, X509_free);
		return rc;
	}
	*leaf = sk_X509_shift(sk);
	*rest = sk;
	return 0;
}

/* Parse every CRL of m (PEM blocks, or one DER CRL) onto out. */
static int
load_crls(const struct gw_material *m, STACK_OF(X509_CRL) * out)
{
	BIO *b = material_bio(m);
	const char *path = m->path;
	unsigned n = 0;
	int rc = 0;

	if (b == NULL) {
		ERR_clear_error();
		return gw_err_set(-ENOMEM, GW_HERE);
	}
	for (;;) {
		X509_CRL *c = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);

		if (c == NULL) {
			unsigned long e = ERR_peek_last_error();

			ERR_clear_error();
			if (ERR_GET_REASON(e) == PEM_R_NO_START_LINE && n > 0)
				break;
			if (n == 0) {
				/* maybe DER; a read-only memory BIO rewinds to its start */
				(void)BIO_reset(b);
				c = d2i_X509_CRL_bio(b, NULL);
				ERR_clear_error();
			}
			if (c == NULL) {
				rc = gw_err_setf(-GW_E_CONFIG, GW_HERE,
					"trust crl '%s': CRL %u does not parse (PEM or DER "
					"X509 CRL expected)",
					path, n + 1);
				goto out;
			}
			if (!sk_X509_CRL_push(out, c)) {
				X509_CRL_free(c);
				rc = gw_err_set(-ENOMEM, GW_HERE);
			}
			goto out;
		}
		n++;
		if (!sk_X509_CRL_push(out, c)) {
			X509_CRL_free(c);
			rc = gw_err_set(-ENOMEM, GW_HERE);
			goto out;
		}
	}
out:
	BIO_free(b);
	return rc;
}

static int
fingerprint(X509 *x, uint8_t out[32])
{
	unsigned int n = 0;

	if (X509_digest(x, sha256(), out, &n) != 1 || n != 32) {
		ERR_clear_error();
		return -GW_E_TLS;
	}
	return 0;
}

static void
hex_fp(const uint8_t fp[32], char *buf, size_t len)
{
	size_t o = 0;

	for (unsigned i = 0; i < 32 && o + 3 < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%02x", fp[i]);
}

static int
copy_strv(char ***dst, unsigned *n_dst, char *const *src, unsigned n)
{
	*n_dst = 0;
	*dst = NULL;
	if (n == 0)
		return 0;
	*dst = calloc(n, sizeof(char *));
	if (*dst == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		(*dst)[i] = strdup(src[i] ? src[i] : "");
		if ((*dst)[i] == NULL)
			return -ENOMEM;
		(*n_dst)++;
	}
	return 0;
}

static void
free_strv(char **v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
gw_trust_destroy(struct gw_trust *t)
{
	if (t == NULL)
		return;
	sk_X509_pop_free(t->anchors, X509_free);
	sk_X509_CRL_pop_free(t->crls, X509_CRL_free);
	X509_VERIFY_PARAM_free(t->param);
	free(t->pins);
	free_strv(t->allow.spiffe, t->allow.n_spiffe);
	free_strv(t->allow.dns, t->allow.n_dns);
	free_strv(t->allow.cn, t->allow.n_cn);
	free(t);
}

/* Is this certificate already in the stack (same DER)? Bundles overlap in mesh. */
static bool
sk_has(STACK_OF(X509) * sk, X509 *x)
{
	for (int i = 0; i < sk_X509_num(sk); i++)
		if (X509_cmp(sk_X509_value(sk, i), x) == 0)
			return true;
	return false;
}

static int
add_anchor(struct gw_trust *t, X509 *x, const char *src)
{
	char subj[GW_TRUST_SUBJECT_MAX];

	if (sk_has(t->anchors, x))
		return 0;
	/* also computes and caches the extension flags, so readers never do */
	if (X509_check_ca(x) < 1) {
		name_str(X509_get_subject_name(x), subj, sizeof(subj));
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"trust anchor '%s' from %s is not a CA certificate (to trust "
			"exactly this certificate use mode: pinned)",
			subj, src);
	}
	if (!X509_up_ref(x))
		return gw_err_set(-GW_E_TLS, GW_HERE);
	if (!sk_X509_push(t->anchors, x)) {
		X509_free(x);
		return gw_err_set(-ENOMEM, GW_HERE);
	}
	return 0;
}

static int
add_pin(struct gw_trust *t, const uint8_t fp[32])
{
	void *p;

	for (unsigned i = 0; i < t->n_pins; i++)
		if (memcmp(t->pins[i], fp, 32) == 0)
			return 0;
	p = realloc(t->pins, (t->n_pins + 1) * sizeof(*t->pins));
	if (p == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	t->pins = p;
	memcpy(t->pins[t->n_pins++], fp, 32);
	return 0;
}

static int
md_u32(EVP_MD_CTX *md, uint32_t v)
{
	uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	return EVP_DigestUpdate(md, be, 4) == 1 ? 0 : -1;
}

/* Length-prefixed, so ("ab","c") and ("a","bc") differ. */
static int
md_bytes(EVP_MD_CTX *md, const void *p, size_t n)
{
	if (n > UINT32_MAX || md_u32(md, (uint32_t)n) < 0)
		return -1;
	return n == 0 || EVP_DigestUpdate(md, p, n) == 1 ? 0 : -1;
}

static int
md_strv(EVP_MD_CTX *md, const char *tag, char *const *v, unsigned n)
{
	if (md_bytes(md, tag, strlen(tag)) < 0 || md_u32(md, n) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++)
		if (md_bytes(md, v[i], strlen(v[i])) < 0)
			return -1;
	return 0;
}

/*
 * The count of sk, then each element's DER (through its ASN1_ITEM, so
 * certificates and CRLs share this), length-prefixed. A NULL sk counts as
 * (uint32_t)-1, as the fingerprint always had it for "no CRLs".
 */
static int
md_der_stack(EVP_MD_CTX *md, const OPENSSL_STACK *sk, const ASN1_ITEM *it)
{
	unsigned char *der = NULL;
	int n, rc = 0;

	if (md_u32(md, (uint32_t)OPENSSL_sk_num(sk)) < 0)
		return -1;
	for (int i = 0; i < OPENSSL_sk_num(sk) && rc == 0; i++) {
		n = ASN1_item_i2d((const ASN1_VALUE *)OPENSSL_sk_value(sk, i), &der, it);
		rc = n > 0 && md_bytes(md, der, (size_t)n) == 0 ? 0 : -1;
		OPENSSL_free(der);
		der = NULL;
	}
	return rc;
}

/*
 * The fingerprint over what was actually built (trust.h): the certificates
 * and CRLs as parsed, wherever they came from (files, a CA backend's
 * bundle), so whoever compares fingerprints compares verdicts, not config
 * text.
 */
static int
trust_fp_compute(struct gw_trust *t)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int olen = 0;
	int rc = -GW_E_TLS;

	if (md == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	if (EVP_DigestInit_ex(md, sha256(), NULL) != 1 ||
		md_bytes(md, "mtlsgw trust fp 1", 17) < 0 || md_u32(md, (uint32_t)t->mode) < 0 ||
		md_u32(md, t->max_depth) < 0 ||
		md_u32(md, t->crls ? (uint32_t)t->crl_check + 1 : 0) < 0 ||
		md_der_stack(md, (const OPENSSL_STACK *)t->anchors, ASN1_ITEM_rptr(X509)) < 0)
		goto out;
	if (md_u32(md, t->n_pins) < 0)
		goto out;
	for (unsigned i = 0; i < t->n_pins; i++)
		if (md_bytes(md, t->pins[i], 32) < 0)
			goto out;
	if (md_der_stack(md, (const OPENSSL_STACK *)t->crls, ASN1_ITEM_rptr(X509_CRL)) < 0 ||
		md_strv(md, "spiffe", t->allow.spiffe, t->allow.n_spiffe) < 0 ||
		md_strv(md, "dns", t->allow.dns, t->allow.n_dns) < 0 ||
		md_strv(md, "cn", t->allow.cn, t->allow.n_cn) < 0)
		goto out;
	if (EVP_DigestFinal_ex(md, t->fp, &olen) != 1 || olen != GW_TRUST_FP_LEN)
		goto out;
	rc = 0;
out:
	if (rc < 0) {
		gw_err_setf(rc, GW_HERE, "listener '%s': cannot compute the trust fingerprint",
			t->name);
		gw_err_add_ossl();
	}
	EVP_MD_CTX_free(md);
	return rc;
}

const uint8_t *
gw_trust_fingerprint(const struct gw_trust *t)
{
	return t ? t->fp : NULL;
}

/* gw_trust_create's visitor: the first rule that can match nothing names the error. */
struct rule_refusal {
	const char *listener;
	bool seen;
};

static void
rule_refuse_first(void *arg, const char *kind, unsigned i, const char *rule, const char *why)
{
	struct rule_refusal *r = arg;

	(void)i;
	if (r->seen)
		return;
	r->seen = true;
	gw_err_setf(-GW_E_CONFIG, GW_HERE, "listener '%s': allow.%s rule '%.200s' %s", r->listener,
		kind, rule, why);
}

static int
trust_build(const struct gw_cfg_trust *cfg, const char *name, STACK_OF(X509) *const *bundles,
	unsigned n_bundles, struct gw_trust **out)
{
	struct gw_trust *t = NULL;
	STACK_OF(X509) *tmp = NULL;
	unsigned long flags;
	char src[320];
	int rc = 0;

	GW_ENSURE(cfg != NULL && out != NULL && (n_bundles == 0 || bundles != NULL), -EINVAL);
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	t->id = atomic_fetch_add(&gw_trust_next_id, 1);
	t->mode = cfg->mode;
	t->max_depth = cfg->max_depth;
	snprintf(t->name, sizeof(t->name), "%s", name ? name : "");
	t->anchors = sk_X509_new_null();
	t->param = X509_VERIFY_PARAM_new();
	if (t->anchors == NULL || t->param == NULL) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}

	for (unsigned i = 0; i < cfg->n_certs; i++) {
		tmp = sk_X509_new_null();
		if (tmp == NULL) {
			rc = gw_err_set(-ENOMEM, GW_HERE);
			goto out;
		}
		{
			const char *what =
				cfg->mode == GW_TRUST_PINNED ? "pinned cert" : "trust cert";
			const struct gw_material *m = NULL;
			struct gw_material own = {0};

			rc = material_get(cfg->certs_m ? &cfg->certs_m[i] : NULL, cfg->certs[i],
				what, &own, &m);
			if (rc == 0)
				rc = load_certs(m, tmp, what);
			gw_material_fini(&own);
			if (rc < 0)
				goto out;
		}
		snprintf(src, sizeof(src), "'%s'", cfg->certs[i]);
		for (int j = 0; j < sk_X509_num(tmp); j++) {
			X509 *x = sk_X509_value(tmp, j);

			if (cfg->mode == GW_TRUST_PINNED) {
				uint8_t fp[32];

				if (fingerprint(x, fp) < 0) {
					rc = gw_err_setf(-GW_E_TLS, GW_HERE, "cannot hash %s", src);
					goto out;
				}
				rc = add_pin(t, fp);
				if (rc == 0 && !sk_has(t->anchors, x)) {
					(void)X509_check_purpose(x, -1, 0); /* cache flags now */
					if (!X509_up_ref(x) || !sk_X509_push(t->anchors, x)) {
						rc = gw_err_set(-ENOMEM, GW_HERE);
						goto out;
					}
				}
			} else {
				rc = add_anchor(t, x, src);
			}
			if (rc < 0)
				goto out;
		}
		sk_X509_pop_free(tmp, X509_free);
		tmp = NULL;
	}
	if (cfg->mode == GW_TRUST_PINNED) {
		for (unsigned i = 0; i < cfg->n_pins; i++)
			if ((rc = add_pin(t, cfg->pins_sha256[i])) < 0)
				goto out;
		if (t->n_pins == 0) {
			rc = gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"listener '%s': trust mode pinned needs certs or pins_sha256",
				t->name);
			goto out;
		}
		if (n_bundles > 0) {
			rc = gw_err_setf(-EINVAL, GW_HERE,
				"listener '%s': bundles are for ca/mesh trust, not pinned",
				t->name);
			goto out;
		}
	} else {
		for (unsigned i = 0; i < n_bundles; i++) {
			snprintf(src, sizeof(src), "bundle %u", i);
			for (int j = 0; j < sk_X509_num(bundles[i]); j++)
				if ((rc = add_anchor(t, sk_X509_value(bundles[i], j), src)) < 0)
					goto out;
		}
		if (sk_X509_num(t->anchors) == 0 && cfg->mode == GW_TRUST_MESH) {
			/* mesh roots come from the CA backends: they must be handed in */
			rc = gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"listener '%s': trust mode mesh has no anchors: its roots come "
				"from "
				"the CA backends (mtls.backends), none were given "
				"(gw_trust_create_bundles), nor trust.certs",
				t->name);
			goto out;
		}
		if (sk_X509_num(t->anchors) == 0) {
			rc = gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"listener '%s': trust mode ca has no anchors (trust.certs)",
				t->name);
			goto out;
		}
	}

	if (cfg->n_crl > 0) {
		t->crls = sk_X509_CRL_new_null();
		if (t->crls == NULL) {
			rc = gw_err_set(-ENOMEM, GW_HERE);
			goto out;
		}
		for (unsigned i = 0; i < cfg->n_crl; i++) {
			const struct gw_material *m = NULL;
			struct gw_material own = {0};

			rc = material_get(cfg->crl_m ? &cfg->crl_m[i] : NULL, cfg->crl[i],
				"trust crl", &own, &m);
			if (rc == 0)
				rc = load_crls(m, t->crls);
			gw_material_fini(&own);
			if (rc < 0)
				goto out;
		}
		for (int i = 0; i < sk_X509_CRL_num(t->crls); i++) {
			X509_REVOKED *r = NULL;
			ASN1_INTEGER *zero = ASN1_INTEGER_new();

			/*
			 * OpenSSL sorts a CRL's revoked list on first lookup, under
			 * the CRL's write lock; do it here so readers only read.
			 */
			if (zero != NULL)
				(void)X509_CRL_get0_by_serial(
					sk_X509_CRL_value(t->crls, i), &r, zero);
			ASN1_INTEGER_free(zero);
		}
	}

	/*
	 * PARTIAL_CHAIN: any anchor ends a chain, so an intermediate anchor is
	 * enough (seed case cert2) and a pinned leaf anchors itself (cert1).
	 * The purpose makes OpenSSL check clientAuth EKU / key usage.
	 */
	flags = X509_V_FLAG_PARTIAL_CHAIN;
	t->crl_check = cfg->crl_check;
	if (t->crls != NULL)
		flags |= X509_V_FLAG_CRL_CHECK |
			 (t->crl_check == GW_CRL_CHECK_CHAIN ? X509_V_FLAG_CRL_CHECK_ALL : 0);
	if (X509_VERIFY_PARAM_set_flags(t->param, flags) != 1 ||
		X509_VERIFY_PARAM_set_purpose(t->param, X509_PURPOSE_SSL_CLIENT) != 1 ||
		X509_VERIFY_PARAM_set_trust(t->param, X509_TRUST_SSL_CLIENT) != 1) {
		rc = gw_err_set(-GW_E_TLS, GW_HERE);
		gw_err_add_ossl();
		goto out;
	}
	X509_VERIFY_PARAM_set_depth(t->param, (int)cfg->max_depth);

	if ((rc = copy_strv(&t->allow.spiffe, &t->allow.n_spiffe, cfg->allow.spiffe,
		     cfg->allow.n_spiffe)) < 0 ||
		(rc = copy_strv(&t->allow.dns, &t->allow.n_dns, cfg->allow.dns, cfg->allow.n_dns)) <
			0 ||
		(rc = copy_strv(&t->allow.cn, &t->allow.n_cn, cfg->allow.cn, cfg->allow.n_cn)) <
			0) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	if (gw_trust_allow_rules_each(&cfg->allow, rule_refuse_first,
		    &(struct rule_refusal){.listener = t->name}) > 0) {
		rc = -GW_E_CONFIG;
		goto out;
	}
	if ((rc = trust_fp_compute(t)) < 0)
		goto out;
	*out = t;
	t = NULL;
out:
	sk_X509_pop_free(tmp, X509_free);
	gw_trust_destroy(t);
	return rc;
}

int
gw_trust_create(const struct gw_cfg_trust *cfg, const char *name, struct gw_trust **out)
{
	return trust_build(cfg, name, NULL, 0, out);
}

int
gw_trust_create_bundles(const struct gw_cfg_trust *cfg, const char *name,
	STACK_OF(X509) *const *bundles, unsigned n, struct gw_trust **out)
{
	GW_ENSURE(cfg != NULL && cfg->mode != GW_TRUST_PINNED, -EINVAL);
	return trust_build(cfg, name, bundles, n, out);
}

/* ---- allow rules ---- */

/*
 * What is wrong with an allow.spiffe rule, or NULL if nothing. The one
 * definition of a valid pattern: the matcher below relies on it.
 */
static const char *
spiffe_rule_why(const char *rule)
{
	const char *p, *seg;
	size_t n;

	if (rule == NULL || strncmp(rule, "spiffe://", 9) != 0)
		return "is not a SPIFFE ID pattern (expected spiffe://TRUST-DOMAIN/path, e.g. "
		       "spiffe://example.org/ns/prod/**)";
	if (strlen(rule) > GW_TRUST_SPIFFE_ID_MAX)
		return "is longer than a SPIFFE ID may be (2048 bytes)";
	p = rule + 9;
	n = strcspn(p, "/");
	if (n == 0)
		return "has no trust domain (expected spiffe://TRUST-DOMAIN/path)";
	if (memchr(p, '*', n) != NULL)
		return "has a wildcard in the trust domain: the trust domain must be exact";
	for (p += n; *p != '\0'; p += n) {
		seg = ++p; /* past the '/' */
		n = strcspn(seg, "/");
		if (n == 0)
			return "has an empty path segment ('//' or a trailing '/'): no SPIFFE ID "
			       "has one, so it would match nothing";
		if (memchr(seg, '*', n) == NULL)
			continue;
		if (n == 1)
			continue; /* "*": exactly one segment */
		if (n == 2 && seg[1] == '*') {
			if (seg[2] != '\0')
				return "has '**' before the last segment: '**' (one or more "
				       "segments) may only end a pattern";
			continue;
		}
		return "has '*' inside a path segment: a wildcard must be a whole segment "
		       "('*' = exactly one segment, a last '**' = one or more)";
	}
	return NULL;
}

int
gw_trust_spiffe_rule_check(const char *rule, char *why, size_t len)
{
	const char *w = spiffe_rule_why(rule);

	if (w == NULL)
		return 0;
	if (why != NULL && len > 0)
		snprintf(why, len, "%s", w);
	return -GW_E_CONFIG;
}

static size_t utf8_chars(const unsigned char *s, size_t l);

static int
rule_refused(const char *w, char *why, size_t len)
{
	if (why != NULL && len > 0)
		snprintf(why, len, "%s", w);
	return -GW_E_CONFIG;
}

int
gw_trust_dns_rule_check(const char *rule, char *why, size_t len)
{
	const char *p = rule;
	size_t label = 0;

	if (rule == NULL || rule[0] == '\0')
		return rule_refused("is not a DNS name: it is empty", why, len);
	if (strncmp(p, "*.", 2) == 0)
		p += 2; /* "*." = exactly one label, the only wildcard dns_match knows */
	for (; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0)
				return rule_refused(
					"is not a DNS name: it has an empty label", why, len);
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return rule_refused(*p == '*' ? "is not a DNS name pattern: '*' only as "
							"the whole first label (*.example.com)"
						      : "is not a DNS name: only letters, digits, "
							"'-', '_' and '.'",
				why, len);
		if (++label > GW_TRUST_DNS_LABEL_MAX)
			return rule_refused(
				"is not a DNS name: a label is over 63 characters", why, len);
	}
	if (label == 0)
		return rule_refused("is not a DNS name: it has an empty label", why, len);
	if ((size_t)(p - rule) > GW_TRUST_DNS_MAX) /* p is at the end: the whole rule */
		return rule_refused("is not a DNS name: over 253 characters", why, len);
	return 0;
}

int
gw_trust_cn_rule_check(const char *rule, char *why, size_t len)
{
	if (rule == NULL || rule[0] == '\0')
		return rule_refused("must not be empty", why, len);
	if (utf8_chars((const unsigned char *)rule, strlen(rule)) > GW_TRUST_CN_MAX)
		return rule_refused("is over 64 characters: no CN can be that long (X.509 "
				    "ub-common-name), so it would match nothing",
			why, len);
	return 0;
}

unsigned
gw_trust_allow_rules_each(const struct gw_cfg_allow *a,
	void (*bad)(void *arg, const char *kind, unsigned i, const char *rule, const char *why),
	void *arg)
{
	static const struct {
		const char *kind;
		int (*check)(const char *rule, char *why, size_t len);
	} kinds[] = {
		{"spiffe", gw_trust_spiffe_rule_check},
		{"dns", gw_trust_dns_rule_check},
		{"cn", gw_trust_cn_rule_check},
	};
	char **const lists[] = {a->spiffe, a->dns, a->cn};
	const unsigned counts[] = {a->n_spiffe, a->n_dns, a->n_cn};
	unsigned n_bad = 0;

	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (unsigned i = 0; i < counts[k]; i++) {
			char why[160];

			if (kinds[k].check(lists[k][i], why, sizeof(why)) < 0) {
				bad(arg, kinds[k].kind, i, lists[k][i], why);
				n_bad++;
			}
		}
	return n_bad;
}

bool
gw_trust_spiffe_match(const char *rule, const char *id)
{
	const char *r, *i;

	if (spiffe_rule_why(rule) != NULL || id == NULL || strncmp(id, "spiffe://", 9) != 0 ||
		strnlen(id, GW_TRUST_SPIFFE_ID_MAX + 1) > GW_TRUST_SPIFFE_ID_MAX)
		return false;
	r = rule + 9;
	i = id + 9;
	/* trust domain: exact, never a wildcard */
	{
		size_t rl = strcspn(r, "/"), il = strcspn(i, "/");

		if (rl == 0 || rl != il || strncmp(r, i, rl) != 0)
			return false;
		r += rl;
		i += il;
	}
	/* then segment by segment; "*" is one non-empty segment, a last "**" one or more */
	while (*r != '\0' || *i != '\0') {
		size_t rl, il;

		if (*r != '/' || *i != '/')
			return false;
		r++;
		i++;
		rl = strcspn(r, "/");
		il = strcspn(i, "/");
		if (il == 0)
			return false; /* "spiffe://td/a//b" or a trailing '/' */
		if (rl == 2 && r[0] == '*' && r[1] == '*') {
			/* the rest of the ID: non-empty segments only */
			for (i += il; *i != '\0'; i += il) {
				il = strcspn(++i, "/");
				if (il == 0)
					return false;
			}
			return true;
		}
		if (!(rl == 1 && r[0] == '*') && (rl != il || strncmp(r, i, rl) != 0))
			return false;
		r += rl;
		i += il;
	}
	return true;
}

static bool
dns_match(const char *rule, const char *name)
{
	if (strncmp(rule, "*.", 2) == 0) {
		const char *dot = strchr(name, '.');

		return dot != NULL && dot != name && strcasecmp(dot + 1, rule + 2) == 0;
	}
	return strcasecmp(rule, name) == 0;
}

/* Append to a message without overflowing it. */
static void catf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
catf(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

static void
rules_str(char *buf, size_t len, char *const *rules, unsigned n)
{
	buf[0] = '\0';
	for (unsigned i = 0; i < n; i++)
		catf(buf, len, "%s%s", i ? ", " : "", rules[i]);
}

/* RFC 1035: at most 253 characters, each label 1..63 (a trailing root dot allowed). */
static bool
dns_name_fits(const unsigned char *s, size_t l)
{
	size_t label = 0;

	if (l > 0 && s[l - 1] == '.')
		l--;
	if (l == 0 || l > GW_TRUST_DNS_MAX)
		return false;
	for (size_t i = 0; i < l; i++) {
		if (s[i] != '.') {
			if (++label > GW_TRUST_DNS_LABEL_MAX)
				return false;
			continue;
		}
		if (label == 0)
			return false;
		label = 0;
	}
	return label > 0;
}

/* Characters (not bytes) of a UTF-8 string: a CN's limit counts characters. */
static size_t
utf8_chars(const unsigned char *s, size_t l)
{
	size_t n = 0;

	for (size_t i = 0; i < l; i++)
		n += (s[i] & 0xc0) != 0x80;
	return n;
}

/* A name we cannot judge whole: reject the client as malformed. */
static void malformed(struct gw_trust_verdict *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
malformed(struct gw_trust_verdict *v, const char *fmt, ...)
{
	va_list ap;

	v->reason = GW_TRUST_R_MALFORMED;
	v->depth = 0;
	va_start(ap, fmt);
	vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
	va_end(ap);
}

/*
 * The allow check on an accepted leaf. Returns true if admitted; fills v if
 * not. Every name is judged whole (trust.h): one that does not fit what it
 * may be is "malformed", never cut to a buffer and then matched.
 */
static bool
allow_check(const struct gw_trust *t, X509 *leaf, struct gw_trust_verdict *v)
{
	const struct gw_trust_rules *a = &t->allow;
	GENERAL_NAMES *sans;
	X509_NAME *sn = X509_get_subject_name(leaf);
	char spiffe[GW_TRUST_SPIFFE_ID_MAX + 1] = "", dns[GW_TRUST_DNS_MAX + 2] = "", rules[256];
	unsigned char *cn = NULL;
	unsigned n_spiffe = 0;
	bool ok = false, bad = false, cn_one = false;
	int cn_len = -1, idx;

	if (a->n_spiffe == 0 && a->n_dns == 0 && a->n_cn == 0)
		return true;
	name_str(sn, v->subject, sizeof(v->subject));

	sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; i < sk_GENERAL_NAME_num(sans) && !bad; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *s;
		int l;

		if (g->type != GEN_URI && g->type != GEN_DNS)
			continue;
		s = ASN1_STRING_get0_data(g->d.ia5);
		l = ASN1_STRING_length(g->d.ia5);
		if (g->type == GEN_URI && l > 9 &&
			strncasecmp((const char *)s, "spiffe://", 9) == 0) {
			/* embedded NULs would let "a\0/evil" pass a strcmp */
			if (l > GW_TRUST_SPIFFE_ID_MAX || memchr(s, '\0', (size_t)l) != NULL) {
				malformed(v,
					"certificate '%s' has a SPIFFE ID (URI SAN) of %d bytes%s: "
					"a SPIFFE ID is at most %d bytes of text, so it is not "
					"judged",
					v->subject, l,
					l > GW_TRUST_SPIFFE_ID_MAX ? "" : " with a NUL byte",
					GW_TRUST_SPIFFE_ID_MAX);
				bad = true;
				break;
			}
			if (n_spiffe++ == 0) {
				memcpy(spiffe, s, (size_t)l);
				spiffe[l] = '\0';
			}
		} else if (g->type == GEN_DNS && a->n_dns > 0) {
			char name[GW_TRUST_DNS_MAX + 2];

			if (l <= 0 || memchr(s, '\0', (size_t)l) != NULL ||
				!dns_name_fits(s, (size_t)l)) {
				malformed(v,
					"certificate '%s' has a DNS name (SAN) of %d characters "
					"that is not a DNS name: at most %d characters, labels of "
					"1..%d, no NUL",
					v->subject, l, GW_TRUST_DNS_MAX, GW_TRUST_DNS_LABEL_MAX);
				bad = true;
				break;
			}
			memcpy(name, s, (size_t)l); /* fits: l <= GW_TRUST_DNS_MAX + 1 */
			name[l] = '\0';
			for (unsigned r = 0; r < a->n_dns && !ok; r++)
				ok = dns_match(a->dns[r], name);
			if (dns[0] == '\0')
				memcpy(dns, name, (size_t)l + 1);
		}
	}
	GENERAL_NAMES_free(sans);
	if (bad)
		return false;

	if (a->n_cn > 0 && (idx = X509_NAME_get_index_by_NID(sn, NID_commonName, -1)) >= 0) {
		cn_one = X509_NAME_get_index_by_NID(sn, NID_commonName, idx) < 0;
		cn_len = ASN1_STRING_to_UTF8(
			&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(sn, idx)));
		if (cn_len < 0 || utf8_chars(cn, (size_t)cn_len) > GW_TRUST_CN_MAX) {
			malformed(v,
				"certificate '%s' has a subject CN of %d bytes%s: a CN is at most "
				"%d characters (X.509 ub-common-name), so it is not judged",
				v->subject, cn_len, cn_len < 0 ? " that is not text" : "",
				GW_TRUST_CN_MAX);
			OPENSSL_free(cn);
			ERR_clear_error();
			return false;
		}
		/* two CNs are ambiguous, a NUL could hide a suffix: neither ever matches */
		cn_one = cn_one && memchr(cn, '\0', (size_t)cn_len) == NULL;
	}

	/* an X509-SVID carries exactly one SPIFFE ID; two is ambiguous, never a match */
	if (!ok && n_spiffe == 1)
		for (unsigned r = 0; r < a->n_spiffe && !ok; r++)
			ok = gw_trust_spiffe_match(a->spiffe[r], spiffe);
	if (!ok && cn_one)
		for (unsigned r = 0; r < a->n_cn && !ok; r++)
			ok = strcmp(a->cn[r], (const char *)cn) == 0;
	ERR_clear_error();
	if (ok) {
		OPENSSL_free(cn);
		return true;
	}

	v->reason = GW_TRUST_R_NOT_ALLOWED;
	v->depth = 0;
	v->msg[0] = '\0';
	if (a->n_spiffe == 0)
		catf(v->msg, sizeof(v->msg), "certificate '%s': ", v->subject);
	if (a->n_spiffe > 0) {
		rules_str(rules, sizeof(rules), a->spiffe, a->n_spiffe);
		if (n_spiffe == 1 && strlen(spiffe) > 160) /* keep the rules in the line */
			catf(v->msg, sizeof(v->msg),
				"SPIFFE ID %.160s... (%zu bytes) not allowed by rule%s %s", spiffe,
				strlen(spiffe), a->n_spiffe > 1 ? "s" : "", rules);
		else if (n_spiffe == 1)
			catf(v->msg, sizeof(v->msg), "SPIFFE ID %s not allowed by rule%s %s",
				spiffe, a->n_spiffe > 1 ? "s" : "", rules);
		else if (n_spiffe == 0)
			catf(v->msg, sizeof(v->msg),
				"certificate '%s' has no SPIFFE ID (URI SAN) but the listener "
				"allows "
				"only %s",
				v->subject, rules);
		else
			catf(v->msg, sizeof(v->msg),
				"certificate '%s' has %u SPIFFE IDs (an X509-SVID carries exactly "
				"one)",
				v->subject, n_spiffe);
	}
	if (a->n_dns > 0) {
		rules_str(rules, sizeof(rules), a->dns, a->n_dns);
		catf(v->msg, sizeof(v->msg), "%sDNS name %s%s%s not allowed by %s",
			a->n_spiffe ? "; " : "", dns[0] ? "'" : "", dns[0] ? dns : "(none)",
			dns[0] ? "'" : "", rules);
	}
	if (a->n_cn > 0) {
		rules_str(rules, sizeof(rules), a->cn, a->n_cn);
		if (cn_len >= 0 && !cn_one)
			catf(v->msg, sizeof(v->msg),
				"%sthe subject has more than one CN (or a NUL in it), which no "
				"cn rule matches",
				a->n_spiffe || a->n_dns ? "; " : "");
		else
			catf(v->msg, sizeof(v->msg), "%sCN '%s' not allowed by %s",
				a->n_spiffe || a->n_dns ? "; " : "",
				cn_len > 0 ? (const char *)cn : "", rules);
	}
	OPENSSL_free(cn);
	return false;
}

/* ---- the verification ---- */

static void
verdict_init(struct gw_trust_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->reason = GW_TRUST_R_INTERNAL;
	v->depth = -1;
}

/* Turn OpenSSL's verify error into a reason and a sentence. */
static void
explain(const struct gw_trust *t, X509_STORE_CTX *ctx, X509 *leaf, struct gw_trust_verdict *v)
{
	int err = X509_STORE_CTX_get_error(ctx);
	int depth = X509_STORE_CTX_get_error_depth(ctx);
	X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
	char when[64], issuer[GW_TRUST_SUBJECT_MAX];
	const char *s = v->subject;

	if (cur == NULL) {
		cur = leaf;
		depth = 0;
	}
	v->ossl_error = err;
	v->depth = depth;
	name_str(X509_get_subject_name(cur), v->subject, sizeof(v->subject));
	name_str(X509_get_issuer_name(cur), issuer, sizeof(issuer));

	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		v->reason = GW_TRUST_R_EXPIRED;
		time_str(X509_get0_notAfter(cur), when, sizeof(when));
		snprintf(v->msg, sizeof(v->msg), "certificate '%s' expired on %s", s, when);
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		v->reason = GW_TRUST_R_NOT_YET_VALID;
		time_str(X509_get0_notBefore(cur), when, sizeof(when));
		snprintf(v->msg, sizeof(v->msg),
			"certificate '%s' is not valid yet: not before %s (check the clocks)", s,
			when);
		break;
	case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
	case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
		v->reason = GW_TRUST_R_MALFORMED;
		snprintf(v->msg, sizeof(v->msg), "certificate '%s' has a malformed validity date",
			s);
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		v->reason = GW_TRUST_R_UNTRUSTED_ISSUER;
		if (depth == 0)
			snprintf(v->msg, sizeof(v->msg),
				"certificate '%s': issuer '%s' not trusted (unable to get issuer "
				"certificate: the client must send its intermediate, or trust it "
				"as an anchor)",
				s, issuer);
		else
			snprintf(v->msg, sizeof(v->msg),
				"certificate '%s': issuer '%s' not trusted (unable to get issuer "
				"certificate: that CA is not among listener '%s' trust anchors)",
				s, issuer, t->name);
		break;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		v->reason = GW_TRUST_R_SELF_SIGNED;
		snprintf(v->msg, sizeof(v->msg),
			"certificate '%s' is self-signed and not a trust anchor of listener '%s'",
			s, t->name);
		break;
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		v->reason = GW_TRUST_R_SELF_SIGNED;
		snprintf(v->msg, sizeof(v->msg),
			"the chain ends in self-signed root '%s', which is not a trust anchor of "
			"listener '%s'",
			s, t->name);
		break;
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
	case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
		v->reason = GW_TRUST_R_BAD_SIGNATURE;
		snprintf(v->msg, sizeof(v->msg),
			"signature on certificate '%s' does not verify with the key of issuer "
			"'%s' (forged or corrupted)",
			s, issuer);
		break;
	case X509_V_ERR_CERT_REVOKED: {
		char serial[80] = "?";
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cur), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;

		if (hex)
			snprintf(serial, sizeof(serial), "%s", hex);
		OPENSSL_free(hex);
		BN_free(bn);
		v->reason = GW_TRUST_R_REVOKED;
		snprintf(v->msg, sizeof(v->msg),
			"certificate '%s' (serial %s) is revoked by the CRL of '%s'", s, serial,
			issuer);
		break;
	}
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
		v->reason = GW_TRUST_R_CRL;
		snprintf(v->msg, sizeof(v->msg),
			"no usable CRL from '%s' for certificate '%s' (%s): give a current CRL "
			"of that CA in trust.crl",
			issuer, s, X509_verify_cert_error_string(err));
		break;
	case X509_V_ERR_INVALID_PURPOSE: {
		uint32_t xku = X509_get_extended_key_usage(cur);

		v->reason = GW_TRUST_R_EKU;
		if (xku != UINT32_MAX && !(xku & XKU_SSL_CLIENT))
			snprintf(v->msg, sizeof(v->msg),
				"certificate '%s' is missing clientAuth extended key usage (it "
				"may not be used as a TLS client certificate)",
				s);
		else
			snprintf(v->msg, sizeof(v->msg),
				"certificate '%s' may not be used for TLS client authentication "
				"(its key usage lacks digitalSignature)",
				s);
		break;
	}
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
		v->reason = GW_TRUST_R_TOO_DEEP;
		snprintf(v->msg, sizeof(v->msg),
			"chain is too deep at certificate '%s': listener '%s' allows at most %u "
			"intermediate CA%s between leaf and anchor (max_depth)",
			s, t->name, t->max_depth, t->max_depth == 1 ? "" : "s");
		break;
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
		v->reason = GW_TRUST_R_TOO_DEEP;
		snprintf(v->msg, sizeof(v->msg),
			"chain is too deep at certificate '%s': a CA's pathLenConstraint is "
			"exceeded",
			s);
		break;
	case X509_V_ERR_PERMITTED_VIOLATION:
	case X509_V_ERR_EXCLUDED_VIOLATION:
	case X509_V_ERR_SUBTREE_MINMAX:
	case X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE:
	case X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX:
	case X509_V_ERR_UNSUPPORTED_NAME_SYNTAX:
#ifdef X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS
	case X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS:
#endif
		v->reason = GW_TRUST_R_NAME_CONSTRAINTS;
		snprintf(v->msg, sizeof(v->msg),
			"certificate '%s' violates the name constraints of an issuing CA (%s)", s,
			X509_verify_cert_error_string(err));
		break;
	case X509_V_ERR_INVALID_CA:
	case X509_V_ERR_INVALID_NON_CA:
		v->reason = GW_TRUST_R_NOT_CA;
		snprintf(v->msg, sizeof(v->msg),
			"certificate '%s' issues others but is not a valid CA certificate (%s)", s,
			X509_verify_cert_error_string(err));
		break;
	case X509_V_ERR_OUT_OF_MEM:
		v->reason = GW_TRUST_R_INTERNAL;
		snprintf(v->msg, sizeof(v->msg), "out of memory while verifying '%s'", s);
		break;
	default:
		v->reason = GW_TRUST_R_OTHER;
		snprintf(v->msg, sizeof(v->msg), "certificate '%s' rejected: %s", s,
			X509_verify_cert_error_string(err));
		break;
	}
}

/*
 * SAN values come from the client verbatim: a URI SAN with a newline or an
 * escape sequence must not forge a log line or a terminal. Subjects are
 * already escaped by the RFC 2253 printer.
 */
static void
one_line(char *msg)
{
	for (unsigned char *p = (unsigned char *)msg; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
}

static int
reject_internal(struct gw_trust_verdict *v, const char *what)
{
	ERR_clear_error();
	v->accepted = false;
	v->reason = GW_TRUST_R_INTERNAL;
	snprintf(v->msg, sizeof(v->msg), "internal error while verifying: %s", what);
	return -GW_E_TRUST;
}

/*
 * crl_check chain asks OpenSSL for CRLs of every certificate in the path
 * (X509_V_FLAG_CRL_CHECK_ALL), the anchor included. The anchor is trusted
 * by configuration and, as a partial-chain intermediate, its own issuer is
 * not even known: a CRL that is missing or unusable for it is not a reason
 * to reject (trust.h). A CRL that does list the anchor still rejects.
 */
static int
crl_anchor_cb(int ok, X509_STORE_CTX *ctx)
{
	int err = X509_STORE_CTX_get_error(ctx);
	int depth = X509_STORE_CTX_get_error_depth(ctx);

	if (ok || depth < X509_STORE_CTX_get_num_untrusted(ctx))
		return ok;
	switch (err) {
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
	case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
		/* the anchor (trusted stack), not a certificate the client vouched for */
		X509_STORE_CTX_set_error(ctx, X509_V_OK);
		return 1;
	default:
		return ok;
	}
}

static int
verify_core(const struct gw_trust *t, X509 *leaf, STACK_OF(X509) * chain, time_t now,
	struct gw_trust_verdict *v, time_t *until)
{
	STACK_OF(X509) *untrusted = NULL, *pinned = NULL, *trusted;
	X509_STORE_CTX *ctx = NULL;
	int rc = -GW_E_TRUST;
	int start = 0;

	if (v == NULL)
		return -EINVAL;
	verdict_init(v);
	if (t == NULL || leaf == NULL) {
		snprintf(v->msg, sizeof(v->msg), "no certificate to verify");
		return -EINVAL;
	}

	/* on a server, SSL_get_peer_cert_chain() repeats the leaf first */
	if (sk_X509_num(chain) > 0 && X509_cmp(sk_X509_value(chain, 0), leaf) == 0)
		start = 1;
	untrusted = sk_X509_new_reserve(NULL, sk_X509_num(chain) > 0 ? sk_X509_num(chain) : 1);
	if (untrusted == NULL)
		return reject_internal(v, "out of memory");
	for (int i = start; i < sk_X509_num(chain); i++)
		(void)sk_X509_push(untrusted, sk_X509_value(chain, i)); /* reserved: cannot fail */

	if (t->mode == GW_TRUST_PINNED) {
		uint8_t fp[32];
		bool hit = false;

		if (fingerprint(leaf, fp) < 0) {
			rc = reject_internal(v, "cannot hash the leaf");
			goto out;
		}
		for (unsigned i = 0; i < t->n_pins && !hit; i++)
			hit = CRYPTO_memcmp(t->pins[i], fp, 32) == 0;
		if (!hit) {
			char hex[72] = "";

			hex_fp(fp, hex, sizeof(hex));
			v->reason = GW_TRUST_R_NOT_PINNED;
			v->depth = 0;
			name_str(X509_get_subject_name(leaf), v->subject, sizeof(v->subject));
			snprintf(v->msg, sizeof(v->msg),
				"certificate '%s' is not the pinned certificate (its SHA-256 is "
				"%.16s..., listener '%s' pins %u)",
				v->subject, hex, t->name, t->n_pins);
			goto out;
		}
		/* the leaf is its own anchor: dates, EKU still checked below */
		pinned = sk_X509_new_reserve(NULL, 1);
		if (pinned == NULL) {
			rc = reject_internal(v, "out of memory");
			goto out;
		}
		(void)sk_X509_push(pinned, leaf);
		trusted = pinned;
	} else {
		trusted = t->anchors;
	}

	ctx = X509_STORE_CTX_new();
	if (ctx == NULL || X509_STORE_CTX_init(ctx, NULL, leaf, untrusted) != 1) {
		rc = reject_internal(v, "cannot set up the verify context");
		goto out;
	}
	X509_STORE_CTX_set0_trusted_stack(ctx, trusted);
	if (t->crls != NULL)
		X509_STORE_CTX_set0_crls(ctx, t->crls);
	if (X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(ctx), t->param) != 1) {
		rc = reject_internal(v, "cannot copy verify parameters");
		goto out;
	}
	if (now != 0)
		X509_STORE_CTX_set_time(ctx, 0, now);
	if (t->crls != NULL && t->crl_check == GW_CRL_CHECK_CHAIN)
		X509_STORE_CTX_set_verify_cb(ctx, crl_anchor_cb);

	if (X509_verify_cert(ctx) != 1) {
		explain(t, ctx, leaf, v);
		ERR_clear_error();
		goto out;
	}
	if (!allow_check(t, leaf, v))
		goto out;

	{
		STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(ctx);
		time_t u = 0;

		for (int i = 0; i < sk_X509_num(built); i++) {
			time_t na = asn1_to_time_t(X509_get0_notAfter(sk_X509_value(built, i)));

			if (i == 0 || na < u)
				u = na;
		}
		for (int i = 0; i < sk_X509_CRL_num(t->crls); i++) {
			const ASN1_TIME *nu =
				X509_CRL_get0_nextUpdate(sk_X509_CRL_value(t->crls, i));

			if (nu != NULL && asn1_to_time_t(nu) < u)
				u = asn1_to_time_t(nu);
		}
		v->until = u;
		if (until != NULL)
			*until = u;
	}
	v->accepted = true;
	v->reason = GW_TRUST_R_OK;
	v->depth = 0;
	name_str(X509_get_subject_name(leaf), v->subject, sizeof(v->subject));
	snprintf(v->msg, sizeof(v->msg), "certificate '%s' accepted by listener '%s'", v->subject,
		t->name);
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	sk_X509_free(pinned);
	sk_X509_free(untrusted);
	one_line(v->msg);
	return rc;
}

int
gw_trust_verify(const struct gw_trust *t, X509 *leaf, STACK_OF(X509) * chain_untrusted, time_t now,
	struct gw_trust_verdict *v)
{
	return verify_core(t, leaf, chain_untrusted, now, v, NULL);
}

int
gw_trust_verify_until(const struct gw_trust *t, X509 *leaf, STACK_OF(X509) * chain_untrusted,
	time_t now, struct gw_trust_verdict *v, time_t *until)
{
	struct gw_trust_verdict tmp;

	if (until == NULL)
		return -EINVAL;
	return verify_core(t, leaf, chain_untrusted, now, v ? v : &tmp, until);
}

int
gw_trust_verify_der(const struct gw_trust *t, const uint8_t *const *der, const size_t *len,
	unsigned n, time_t now, struct gw_trust_verdict *v)
{
	STACK_OF(X509) *rest = NULL;
	X509 *leaf = NULL;
	int rc = -GW_E_TRUST;

	if (v == NULL)
		return -EINVAL;
	verdict_init(v);
	if (t == NULL || der == NULL || len == NULL || n == 0) {
		snprintf(v->msg, sizeof(v->msg), "no certificate to verify");
		return -EINVAL;
	}
	rest = sk_X509_new_null();
	if (rest == NULL)
		return reject_internal(v, "out of memory");
	for (unsigned i = 0; i < n; i++) {
		const unsigned char *p = der[i];
		X509 *x = NULL;

		if (len[i] > 0 && len[i] < (size_t)INT32_MAX)
			x = d2i_X509(NULL, &p, (long)len[i]);
		if (x == NULL || p != der[i] + len[i]) {
			X509_free(x);
			ERR_clear_error();
			v->reason = GW_TRUST_R_MALFORMED;
			v->depth = (int)i;
			snprintf(v->msg, sizeof(v->msg),
				"certificate %u of the chain (%s) is malformed: not a DER X.509 "
				"certificate",
				i + 1, i == 0 ? "the leaf" : "an intermediate");
			goto out;
		}
		if (i == 0)
			leaf = x;
		else if (!sk_X509_push(rest, x)) {
			X509_free(x);
			rc = reject_internal(v, "out of memory");
			goto out;
		}
	}
	rc = verify_core(t, leaf, rest, now, v, NULL);
out:
	X509_free(leaf);
	sk_X509_pop_free(rest, X509_free);
	return rc;
}

int
gw_trust_chain_digest(X509 *leaf, STACK_OF(X509) * chain, uint8_t out[32])
{
	EVP_MD_CTX *md = NULL;
	unsigned char *der = NULL;
	unsigned int olen = 0;
	int start = 0, rc = -GW_E_TLS;

	if (leaf == NULL || out == NULL)
		return -EINVAL;
	if (sk_X509_num(chain) > 0 && X509_cmp(sk_X509_value(chain, 0), leaf) == 0)
		start = 1;
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, sha256(), NULL) != 1)
		goto out;
	for (int i = start - 1; i < sk_X509_num(chain); i++) {
		X509 *x = i < start ? leaf : sk_X509_value(chain, i);
		int n = i2d_X509(x, &der);
		uint8_t be[4];

		if (n <= 0)
			goto out;
		/* the length prefix keeps (A|B) and (A'|B') with A|B == A'|B' apart */
		be[0] = (uint8_t)(n >> 24);
		be[1] = (uint8_t)(n >> 16);
		be[2] = (uint8_t)(n >> 8);
		be[3] = (uint8_t)n;
		if (EVP_DigestUpdate(md, be, 4) != 1 || EVP_DigestUpdate(md, der, (size_t)n) != 1)
			goto out;
		OPENSSL_free(der);
		der = NULL;
	}
	if (EVP_DigestFinal_ex(md, out, &olen) != 1 || olen != 32)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		ERR_clear_error();
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	return rc;
}
