/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mkcorpus.c - generate the trust test corpus (see mkcorpus.h).
 *
 * Built into test_trust and into the small `mkcorpus DIR` program the
 * integration scripts run, so both see the same certificates. P-256 keys:
 * fast to generate, the curve the demo PKI uses.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* EC_KEY: built-in copies (mk_corpus_builtin) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "mkcorpus.h"

#define DAY (24L * 3600L)

/* MK() below sets defaults, then the case overrides some of them on purpose */
#pragma GCC diagnostic ignored "-Woverride-init"

struct mk_opts {
	const char *cn;
	const char *o;
	const struct mk_cert *issuer; /* NULL: self-signed */
	EVP_PKEY *sign_key;           /* override the issuer's key (forgeries) */
	const char *issuer_cn;        /* override the issuer name (loops) */
	bool ca;
	int pathlen;     /* -1: none */
	long nb, na;     /* offsets from now, seconds */
	const char *eku; /* NULL: clientAuth for leaves, none for CAs; "": none */
	const char *san;
	const char *nc; /* nameConstraints value */
	long serial;
};

static EVP_PKEY *
mk_key(void)
{
	/* the short name: OpenSSL 3.0's built-in EC method (common/gw_ossl.h,
	 * which tests turn on after building the corpus) does not know "P-256" */
	return EVP_EC_gen("prime256v1");
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *val)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, val);
	int ok;

	if (e == NULL)
		return -1;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

static X509_NAME *
mk_name(const char *cn, const char *o)
{
	X509_NAME *n = X509_NAME_new();

	if (n == NULL)
		return NULL;
	if (o && !X509_NAME_add_entry_by_txt(
			 n, "O", MBSTRING_UTF8, (const unsigned char *)o, -1, -1, 0))
		goto err;
	if (!X509_NAME_add_entry_by_txt(
		    n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0))
		goto err;
	return n;
err:
	X509_NAME_free(n);
	return NULL;
}

static int
mk(struct mk_cert *out, time_t now, const struct mk_opts *o, EVP_PKEY *reuse_key)
{
	X509 *x = X509_new();
	X509_NAME *subj = NULL, *iss = NULL;
	X509V3_CTX ctx;
	EVP_PKEY *key = reuse_key ? reuse_key : mk_key();
	EVP_PKEY *sk;
	char buf[64];
	int rc = -1;

	if (x == NULL || key == NULL)
		goto out;
	if (reuse_key)
		EVP_PKEY_up_ref(reuse_key);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), o->serial);
	X509_time_adj_ex(X509_getm_notBefore(x), 0, o->nb, &now);
	X509_time_adj_ex(X509_getm_notAfter(x), 0, o->na, &now);
	subj = mk_name(o->cn, o->o ? o->o : "mtlsgw test");
	if (o->issuer_cn)
		iss = mk_name(o->issuer_cn, o->o ? o->o : "mtlsgw test");
	else if (o->issuer)
		iss = X509_NAME_dup(X509_get_subject_name(o->issuer->x));
	else
		iss = X509_NAME_dup(subj);
	if (subj == NULL || iss == NULL || !X509_set_subject_name(x, subj) ||
		!X509_set_issuer_name(x, iss) || !X509_set_pubkey(x, key))
		goto out;
	X509V3_set_ctx(&ctx, o->issuer ? o->issuer->x : x, x, NULL, NULL, 0);
	if (o->ca) {
		if (o->pathlen >= 0)
			snprintf(buf, sizeof(buf), "critical,CA:TRUE,pathlen:%d", o->pathlen);
		else
			snprintf(buf, sizeof(buf), "critical,CA:TRUE");
		if (add_ext(x, &ctx, NID_basic_constraints, buf) ||
			add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"))
			goto out;
	} else {
		if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
			add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature"))
			goto out;
	}
	if (add_ext(x, &ctx, NID_subject_key_identifier, "hash"))
		goto out;
	if (!o->issuer_cn && add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
		goto out;
	{
		const char *eku = o->eku ? o->eku : (o->ca ? "" : "clientAuth");

		if (eku[0] && add_ext(x, &ctx, NID_ext_key_usage, eku))
			goto out;
	}
	if (o->san && add_ext(x, &ctx, NID_subject_alt_name, o->san))
		goto out;
	if (o->nc && add_ext(x, &ctx, NID_name_constraints, o->nc))
		goto out;
	sk = o->sign_key ? o->sign_key : (o->issuer ? o->issuer->k : key);
	if (X509_sign(x, sk, EVP_sha256()) <= 0)
		goto out;
	out->x = x;
	out->k = key;
	x = NULL;
	key = NULL;
	rc = 0;
out:
	if (rc < 0) {
		fprintf(stderr, "mkcorpus: cannot make '%s'\n", o->cn);
		ERR_print_errors_fp(stderr);
	}
	X509_free(x);
	EVP_PKEY_free(key);
	X509_NAME_free(subj);
	X509_NAME_free(iss);
	return rc;
}

X509_CRL *
mk_crl_issue(const struct mk_cert *ca, const struct mk_cert *rev, long next_s)
{
	X509_CRL *crl = X509_CRL_new();
	X509_REVOKED *r = rev ? X509_REVOKED_new() : NULL;
	ASN1_TIME *t = ASN1_TIME_new();
	time_t now = time(NULL);

	if (!crl || (rev && !r) || !t) {
		X509_CRL_free(crl);
		X509_REVOKED_free(r);
		ASN1_TIME_free(t);
		return NULL;
	}
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->x));
	X509_time_adj_ex(t, 0, -3600, &now);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_time_adj_ex(t, 0, next_s, &now);
	X509_CRL_set1_nextUpdate(crl, t);
	if (r) {
		X509_REVOKED_set_serialNumber(r, (ASN1_INTEGER *)X509_get0_serialNumber(rev->x));
		X509_time_adj_ex(t, 0, -60, &now);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
	}
	X509_CRL_sort(crl);
	ASN1_TIME_free(t);
	if (X509_CRL_sign(crl, ca->k, EVP_sha256()) <= 0) {
		X509_CRL_free(crl);
		return NULL;
	}
	return crl;
}

static int
mk_crl(struct mk_corpus *c)
{
	X509_CRL *crl = X509_CRL_new();
	X509_REVOKED *r = X509_REVOKED_new();
	ASN1_TIME *t = ASN1_TIME_new();

	if (!crl || !r || !t)
		return -1;
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(c->inter.x));
	X509_time_adj_ex(t, 0, -3600, &c->now);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_time_adj_ex(t, 7, 0, &c->now);
	X509_CRL_set1_nextUpdate(crl, t);
	X509_REVOKED_set_serialNumber(r, (ASN1_INTEGER *)X509_get0_serialNumber(c->revoked.x));
	X509_time_adj_ex(t, 0, -60, &c->now);
	X509_REVOKED_set_revocationDate(r, t);
	X509_CRL_add0_revoked(crl, r);
	X509_CRL_sort(crl);
	ASN1_TIME_free(t);
	if (X509_CRL_sign(crl, c->inter.k, EVP_sha256()) <= 0) {
		X509_CRL_free(crl);
		return -1;
	}
	c->crl = crl;
	return 0;
}

int
mk_issue(struct mk_cert *out, const struct mk_cert *issuer, const char *cn, bool ca, long nb,
	long na, const char *san, long serial)
{
	struct mk_opts o = {.cn = cn,
		.issuer = issuer,
		.ca = ca,
		.pathlen = -1,
		.nb = nb,
		.na = na,
		.san = san,
		.serial = serial};

	return mk(out, time(NULL), &o, NULL);
}

int
mk_corpus_build(struct mk_corpus *c, time_t now)
{
	const long H = 3600, Y = 365 * DAY;
	long s = 1000;

	memset(c, 0, sizeof(*c));
	c->now = now;
#define MK(dst, ...)                                                                   \
	do {                                                                           \
		struct mk_opts o_ = {                                                  \
			.pathlen = -1, .nb = -H, .na = Y, .serial = s++, __VA_ARGS__}; \
		if (mk(&c->dst, now, &o_, NULL) < 0)                                   \
			return -1;                                                     \
	} while (0)
	MK(root, .cn = "mtlsgw test root", .ca = true, .na = 10 * Y);
	MK(inter, .cn = "mtlsgw test intermediate", .ca = true, .issuer = &c->root, .na = 5 * Y);
	MK(leaf, .cn = "client", .issuer = &c->inter,
		.san = "URI:spiffe://example.org/ns/prod/web,DNS:client.example.com");
	MK(leaf_b, .cn = "client-b", .issuer = &c->inter,
		.san = "URI:spiffe://example.org/ns/dev/web,DNS:b.example.com");
	MK(inter2, .cn = "mtlsgw test intermediate 2", .ca = true, .issuer = &c->root, .na = 5 * Y);
	MK(leaf2, .cn = "client2", .issuer = &c->inter2,
		.san = "URI:spiffe://example.org/ns/prod/web2");
	MK(root2, .cn = "mtlsgw test root 2", .ca = true, .na = 10 * Y);
	MK(inter_r2, .cn = "mtlsgw test intermediate r2", .ca = true, .issuer = &c->root2,
		.na = 5 * Y);
	MK(leaf_r2, .cn = "client-r2", .issuer = &c->inter_r2,
		.san = "URI:spiffe://example.org/ns/prod/r2");
	MK(expired, .cn = "expired", .issuer = &c->inter, .nb = -30 * DAY, .na = -DAY);
	MK(notyet, .cn = "notyet", .issuer = &c->inter, .nb = DAY, .na = 30 * DAY);
	/* the impostor: the leaf's exact subject, its own key, self-signed */
	MK(impostor, .cn = "client", .san = "URI:spiffe://example.org/ns/prod/web");
	{
		EVP_PKEY *other = mk_key();
		struct mk_opts o = {.cn = "forged",
			.issuer = &c->inter,
			.sign_key = other,
			.pathlen = -1,
			.nb = -H,
			.na = Y,
			.serial = s++,
			.san = "URI:spiffe://example.org/ns/prod/web"};
		int r = mk(&c->forged, now, &o, NULL);

		EVP_PKEY_free(other);
		if (r < 0)
			return -1;
	}
	MK(evil_root, .cn = "evil root", .ca = true, .o = "evil");
	MK(evil_leaf, .cn = "client", .issuer = &c->evil_root, .o = "evil",
		.san = "URI:spiffe://example.org/ns/prod/web");
	MK(noeku, .cn = "server-only", .issuer = &c->inter, .eku = "serverAuth",
		.san = "URI:spiffe://example.org/ns/prod/noeku");
	MK(sub1, .cn = "mtlsgw test sub 1", .ca = true, .issuer = &c->inter, .na = 2 * Y);
	MK(sub2, .cn = "mtlsgw test sub 2", .ca = true, .issuer = &c->sub1, .na = 2 * Y);
	MK(deep, .cn = "deep", .issuer = &c->sub2, .san = "URI:spiffe://example.org/ns/prod/deep");
	MK(nc_ca, .cn = "mtlsgw constrained CA", .ca = true, .issuer = &c->root, .na = 2 * Y,
		.nc = "critical,permitted;DNS:.good.example");
	MK(nc_ok, .cn = "ok", .issuer = &c->nc_ca, .san = "DNS:a.good.example");
	MK(nc_bad, .cn = "bad", .issuer = &c->nc_ca, .san = "DNS:www.evil.example");
	MK(revoked, .cn = "revoked", .issuer = &c->inter,
		.san = "URI:spiffe://example.org/ns/prod/revoked");
	if (mk_crl(c) < 0)
		return -1;
	MK(inter_rev, .cn = "mtlsgw revoked intermediate", .ca = true, .issuer = &c->root,
		.na = 5 * Y);
	MK(leaf_ir, .cn = "client-ir", .issuer = &c->inter_rev,
		.san = "URI:spiffe://example.org/ns/prod/ir");
	c->root_crl = mk_crl_issue(&c->root, &c->inter_rev, 7 * DAY);
	c->inter_rev_crl = mk_crl_issue(&c->inter_rev, NULL, 7 * DAY);
	if (c->root_crl == NULL || c->inter_rev_crl == NULL)
		return -1;
	/* a loop: X says Y issued it, Y says X issued it, both signatures valid */
	{
		EVP_PKEY *kx = mk_key(), *ky = mk_key();
		struct mk_cert fx = {.x = NULL, .k = kx}, fy = {.x = NULL, .k = ky};
		struct mk_opts ox = {.cn = "loop X",
			.issuer_cn = "loop Y",
			.sign_key = ky,
			.ca = true,
			.pathlen = -1,
			.nb = -H,
			.na = Y,
			.serial = s++};
		struct mk_opts oy = {.cn = "loop Y",
			.issuer_cn = "loop X",
			.sign_key = kx,
			.ca = true,
			.pathlen = -1,
			.nb = -H,
			.na = Y,
			.serial = s++};
		int r = mk(&c->loop_x, now, &ox, kx) | mk(&c->loop_y, now, &oy, ky);

		(void)fx;
		(void)fy;
		EVP_PKEY_free(kx);
		EVP_PKEY_free(ky);
		if (r < 0)
			return -1;
	}
	MK(loop_leaf, .cn = "loop leaf", .issuer = &c->loop_x,
		.san = "URI:spiffe://example.org/ns/prod/loop");
	MK(selfpin, .cn = "pinned self-signed client", .san = "DNS:pinned.example.com");
	MK(srvleaf, .cn = "api", .issuer = &c->inter,
		.san = "URI:spiffe://example.org/ns/prod/api");
#undef MK
	return 0;
}

/* clang-format does not settle on one layout for this list */
/* clang-format off */
#define MK_ALL(X) \
	X(root) X(inter) X(leaf) X(leaf_b) X(inter2) X(leaf2) \
	X(root2) X(inter_r2) X(leaf_r2) X(expired) X(notyet) X(impostor) \
	X(forged) X(evil_root) X(evil_leaf) X(noeku) X(sub1) X(sub2) \
	X(deep) X(nc_ca) X(nc_ok) X(nc_bad) X(revoked) X(loop_x) \
	X(loop_y) X(loop_leaf) X(selfpin) X(srvleaf) X(inter_rev) X(leaf_ir)
/* clang-format on */

void
mk_corpus_free(struct mk_corpus *c)
{
#define FREE_(n)           \
	X509_free(c->n.x); \
	EVP_PKEY_free(c->n.k);
	MK_ALL(FREE_)
#undef FREE_
	X509_CRL_free(c->crl);
	X509_CRL_free(c->root_crl);
	X509_CRL_free(c->inter_rev_crl);
	memset(c, 0, sizeof(*c));
}

static int
write_pem(const char *dir, const char *name, X509 *const *xs, unsigned n, EVP_PKEY *k)
{
	char path[4096];
	FILE *f;
	int ok = 1;

	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	for (unsigned i = 0; i < n; i++)
		ok &= PEM_write_X509(f, xs[i]);
	ok &= fclose(f) == 0;
	if (k) {
		snprintf(path, sizeof(path), "%s/%s.key.pem", dir, name);
		f = fopen(path, "w");
		if (f == NULL)
			return -1;
		ok &= PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
		ok &= fclose(f) == 0;
	}
	return ok ? 0 : -1;
}

int
mk_corpus_write(const struct mk_corpus *c, const char *dir)
{
	int rc = 0;
	char path[4096];
	FILE *f;

#define W_(n) rc |= write_pem(dir, #n, &c->n.x, 1, c->n.k);
	MK_ALL(W_)
#undef W_
	/* the chains a client would send */
	{
		X509 *leaf_chain[] = {c->leaf.x, c->inter.x};
		X509 *leaf2_chain[] = {c->leaf2.x, c->inter2.x};
		X509 *r2_chain[] = {c->leaf_r2.x, c->inter_r2.x};
		X509 *deep_chain[] = {c->deep.x, c->sub2.x, c->sub1.x, c->inter.x};
		X509 *nc_chain[] = {c->nc_bad.x, c->nc_ca.x};
		X509 *nc_ok_chain[] = {c->nc_ok.x, c->nc_ca.x};
		X509 *loop_chain[] = {c->loop_leaf.x, c->loop_x.x, c->loop_y.x};
		X509 *evil_chain[] = {c->evil_leaf.x, c->evil_root.x};
		X509 *bundle[] = {c->root.x, c->root2.x};

		rc |= write_pem(dir, "leaf.chain", leaf_chain, 2, NULL);
		rc |= write_pem(dir, "leaf2.chain", leaf2_chain, 2, NULL);
		rc |= write_pem(dir, "leaf_r2.chain", r2_chain, 2, NULL);
		rc |= write_pem(dir, "deep.chain", deep_chain, 4, NULL);
		rc |= write_pem(dir, "nc_bad.chain", nc_chain, 2, NULL);
		rc |= write_pem(dir, "nc_ok.chain", nc_ok_chain, 2, NULL);
		rc |= write_pem(dir, "loop.chain", loop_chain, 3, NULL);
		rc |= write_pem(dir, "evil.chain", evil_chain, 2, NULL);
		rc |= write_pem(dir, "roots.bundle", bundle, 2, NULL);
	}
	snprintf(path, sizeof(path), "%s/inter.crl.pem", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	rc |= PEM_write_X509_CRL(f, c->crl) ? 0 : -1;
	rc |= fclose(f);
	/* crl_check chain: root's CRL (lists inter_rev), and every CA's in one file */
	snprintf(path, sizeof(path), "%s/root.crl.pem", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	rc |= PEM_write_X509_CRL(f, c->root_crl) ? 0 : -1;
	rc |= fclose(f);
	snprintf(path, sizeof(path), "%s/chain.crl.pem", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	rc |= PEM_write_X509_CRL(f, c->crl) && PEM_write_X509_CRL(f, c->root_crl) &&
			      PEM_write_X509_CRL(f, c->inter_rev_crl)
		      ? 0
		      : -1;
	rc |= fclose(f);
	{
		X509 *ir_chain[] = {c->leaf_ir.x, c->inter_rev.x};

		rc |= write_pem(dir, "leaf_ir.chain", ir_chain, 2, NULL);
	}
	/* malformed: a PEM block whose DER is the leaf's with its tail cut off */
	{
		unsigned char *der = NULL;
		int n = i2d_X509(c->leaf.x, &der);

		snprintf(path, sizeof(path), "%s/malformed.pem", dir);
		f = fopen(path, "w");
		if (f == NULL || n <= 0)
			return -1;
		rc |= PEM_write(f, "CERTIFICATE", "", der, n - 40) ? 0 : -1;
		rc |= fclose(f);
		OPENSSL_free(der);
	}
	return rc ? -1 : 0;
}

STACK_OF(X509) * mk_stack(X509 *first, ...)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	va_list ap;

	if (sk == NULL)
		return NULL;
	va_start(ap, first);
	for (X509 *x = first; x != NULL; x = va_arg(ap, X509 *)) {
		X509_up_ref(x);
		sk_X509_push(sk, x);
	}
	va_end(ap);
	return sk;
}

static int
builtin_one(struct mk_cert *m, const char *what)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int n = m->x ? i2d_X509(m->x, &der) : 0;
	X509 *x;

	if (m->x == NULL)
		return 0;
	p = der;
	x = n > 0 ? d2i_X509(NULL, &p, n) : NULL;
	OPENSSL_free(der);
	if (x == NULL) {
		fprintf(stderr, "mkcorpus: %s does not decode again\n", what);
		return -1;
	}
	X509_free(m->x);
	m->x = x;
	if (m->k != NULL) {
		EC_KEY *ec = EVP_PKEY_get1_EC_KEY(m->k);
		EVP_PKEY *k = EVP_PKEY_new();

		if (ec == NULL || k == NULL || EVP_PKEY_assign_EC_KEY(k, ec) != 1) {
			fprintf(stderr, "mkcorpus: %s: no built-in copy of its key\n", what);
			EC_KEY_free(ec);
			EVP_PKEY_free(k);
			return -1;
		}
		EVP_PKEY_free(m->k);
		m->k = k;
	}
	return 0;
}

int
mk_corpus_builtin(struct mk_corpus *c)
{
#define B(f)                                    \
	do {                                    \
		if (builtin_one(&c->f, #f) < 0) \
			return -1;              \
	} while (0)
	B(root);
	B(inter);
	B(leaf);
	B(leaf_b);
	B(inter2);
	B(leaf2);
	B(root2);
	B(inter_r2);
	B(leaf_r2);
	B(expired);
	B(notyet);
	B(impostor);
	B(forged);
	B(evil_root);
	B(evil_leaf);
	B(noeku);
	B(sub1);
	B(sub2);
	B(deep);
	B(nc_ca);
	B(nc_ok);
	B(nc_bad);
	B(revoked);
	B(inter_rev);
	B(leaf_ir);
	B(loop_x);
	B(loop_y);
	B(loop_leaf);
	B(selfpin);
	B(srvleaf);
#undef B
	return 0;
}
