/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * trust.c - the trust engine (see trust.h for the semantics).
 *
 * Build side (control thread): read anchors, pins and CRLs, precompute
 * everything OpenSSL would otherwise cache lazily on shared objects (X509
 * extension flags, CRL revoked-list sort) so that verification never writes
 * to anything the gw_trust owns.
 *
 * Verify side (any thread): policy/trust_verify.c, on the struct gw_trust
 * both halves share through policy/trust_internal.h.
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
#include "trust_internal.h"

static _Atomic uint64_t gw_trust_next_id = 1;

/* ---- loading files ---- */

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

	b = gw_material_bio(m);
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
	BIO *b = gw_material_bio(m);
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
		gw_trust_name_str(X509_get_subject_name(x), subj, sizeof(subj));
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"trust anchor '%s' from %s is not a CA certificate (to trust "
			"exactly this certificate use mode: pinned)",
			subj, src);
	}
	GW_GUARD_OSSL(X509_up_ref(x), -GW_E_TLS);
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
	if (EVP_DigestInit_ex(md, gw_trust_sha256(), NULL) != 1 ||
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

			rc = gw_material_get(cfg->certs_m ? &cfg->certs_m[i] : NULL, cfg->certs[i],
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

				if (gw_trust_cert_fp(x, fp) < 0) {
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

			rc = gw_material_get(cfg->crl_m ? &cfg->crl_m[i] : NULL, cfg->crl[i],
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

int
gw_trust_spiffe_rule_check(const char *rule, char *why, size_t len)
{
	const char *w = gw_trust_spiffe_rule_why(rule);

	if (w == NULL)
		return 0;
	if (why != NULL && len > 0)
		snprintf(why, len, "%s", w);
	return -GW_E_CONFIG;
}

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
	if (gw_trust_utf8_chars((const unsigned char *)rule, strlen(rule)) > GW_TRUST_CN_MAX)
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
