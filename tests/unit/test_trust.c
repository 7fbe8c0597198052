/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_trust.c - the trust engine and the verify cache against a corpus
 * generated at test time (tests/lib/mkcorpus.c): the seed's three cases,
 * a rotation bundle, mesh bundles, and one bad certificate per check, each
 * with its expected verdict, reason and words. Plus concurrent verification
 * and the cache never turning a rejection into an acceptance.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "gw_ossl.h"
#include "gw_test.h"
#include "mkcorpus.h"
#include "trust.h"
#include "verify_cache.h"

static struct mk_corpus C;
static char dir[] = "/tmp/gwtrust.XXXXXX";

static char *
path_of(const char *name)
{
	static char buf[16][4096];
	static unsigned i;
	char *p = buf[i++ % 16];

	snprintf(p, 4096, "%s/%s.pem", dir, name);
	return p;
}

static enum gw_crl_check mk_crl_check; /* for mk_trust: chain (default) or leaf */

/* A trust from a list of file names (NULL-terminated). */
static struct gw_trust *
mk_trust(enum gw_trust_mode mode, unsigned max_depth, const char *crl, const char *first, ...)
{
	struct gw_cfg_trust cfg = {.mode = mode, .max_depth = max_depth, .crl_check = mk_crl_check};
	char *certs[8], *crls[1];
	struct gw_trust *t = NULL;
	va_list ap;

	va_start(ap, first);
	for (const char *n = first; n != NULL && cfg.n_certs < 8; n = va_arg(ap, const char *))
		certs[cfg.n_certs++] = path_of(n);
	va_end(ap);
	cfg.certs = certs;
	if (crl) {
		crls[0] = path_of(crl);
		cfg.crl = crls;
		cfg.n_crl = 1;
	}
	if (gw_trust_create(&cfg, "t", &t) < 0) {
		fprintf(stderr, "mk_trust: %s\n", gw_err_msg());
		return NULL;
	}
	return t;
}

/*
 * One expectation: verify leaf (+ chain certs, NULL-terminated) and check
 * the verdict, the reason and that msg contains want. A wrong acceptance is
 * reported loudly: that is the failure this suite exists for.
 */
static void
check_(int line, const struct gw_trust *t, enum gw_trust_reason want_reason, const char *want,
	X509 *leaf, ...)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	struct gw_trust_verdict v, bare;
	struct gw_trust_why w;
	va_list ap;
	int rc;

	va_start(ap, leaf);
	for (X509 *x = va_arg(ap, X509 *); x != NULL; x = va_arg(ap, X509 *))
		sk_X509_push(sk, x);
	va_end(ap);
	rc = gw_trust_verify_why(t, leaf, sk, 0, &v, &w);
	/* the hot path (no words) reaches the same verdict, code for code */
	EXPECT_EQ(gw_trust_verify(t, leaf, sk, 0, &bare), rc);
	EXPECT_EQ(bare.accepted, v.accepted);
	EXPECT_EQ(bare.reason, v.reason);
	EXPECT_EQ(bare.depth, v.depth);
	EXPECT_EQ(bare.ossl_error, v.ossl_error);
	EXPECT_EQ(bare.until, v.until);
	sk_X509_free(sk);
	if (want_reason == GW_TRUST_R_OK) {
		if (rc != 0 || !v.accepted)
			fprintf(stderr, "line %d: wanted accept, got %s: %s\n", line,
				gw_trust_reason_name(v.reason), w.msg);
		EXPECT_EQ(rc, 0);
		EXPECT_TRUE(v.accepted);
	} else {
		if (rc == 0 || v.accepted)
			fprintf(stderr, "line %d: WRONGLY ACCEPTED (wanted %s)\n", line,
				gw_trust_reason_name(want_reason));
		else if (v.reason != want_reason)
			fprintf(stderr, "line %d: wanted %s, got %s: %s\n", line,
				gw_trust_reason_name(want_reason), gw_trust_reason_name(v.reason),
				w.msg);
		EXPECT_ERR(rc, -GW_E_TRUST);
		EXPECT_TRUE(!v.accepted);
		EXPECT_EQ(v.reason, want_reason);
	}
	if (want)
		EXPECT_CONTAINS(w.msg, want);
	if (getenv("GW_TEST_VERBOSE"))
		printf("line %d: %s [%s depth %d]: %s\n", line, v.accepted ? "accept" : "reject",
			gw_trust_reason_name(v.reason), v.depth, w.msg);
}
#define CHECK(t, reason, want, ...) \
	check_(__LINE__, t, GW_TRUST_R_##reason, want, __VA_ARGS__, NULL)

/*
 * A leaf of inter with the given URI SAN, DNS SAN and CN (each may be NULL),
 * of any length: the CN is set as a raw UTF8String, past OpenSSL's own
 * ub-common-name check, as a hostile CA could.
 */
static X509 *
names_leaf(const char *uri, const char *dns, const char *cn)
{
	X509 *x = X509_new();
	EVP_PKEY *k = EVP_EC_gen("prime256v1");
	X509_NAME *n = X509_NAME_new();
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	X509V3_CTX v3;
	X509_EXTENSION *e;
	static long serial = 5000;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_NID(n, NID_commonName, V_ASN1_UTF8STRING,
		(const unsigned char *)(cn ? cn : "names"), -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, X509_get_subject_name(C.inter.x));
	X509_set_pubkey(x, k);
	for (int i = 0; i < 2; i++) {
		const char *v = i == 0 ? uri : dns;
		GENERAL_NAME *g;
		ASN1_IA5STRING *ia5;

		if (v == NULL)
			continue;
		g = GENERAL_NAME_new();
		ia5 = ASN1_IA5STRING_new();
		ASN1_STRING_set(ia5, v, (int)strlen(v));
		GENERAL_NAME_set0_value(g, i == 0 ? GEN_URI : GEN_DNS, ia5);
		sk_GENERAL_NAME_push(gens, g);
	}
	if (sk_GENERAL_NAME_num(gens) > 0)
		X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0);
	X509V3_set_ctx(&v3, C.inter.x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, "clientAuth");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	X509_sign(x, C.inter.k, EVP_sha256());
	GENERAL_NAMES_free(gens);
	X509_NAME_free(n);
	EVP_PKEY_free(k);
	return x;
}

/* "spiffe://td/ns/prod/sa/" + 'a' up to len bytes in all, + tail. */
static char *
long_id(size_t len, const char *tail)
{
	const char *head = "spiffe://td/ns/prod/sa/";
	size_t tl = strlen(tail);
	char *s = malloc(len + 1);

	memset(s, 'a', len);
	memcpy(s, head, strlen(head));
	memcpy(s + len - tl, tail, tl);
	s[len] = '\0';
	return s;
}

struct par {
	const struct gw_trust *t;
	unsigned bad;
};

static void *
par_verify(void *arg)
{
	struct par *p = arg;
	STACK_OF(X509) *good = mk_stack(C.inter.x, NULL);

	for (unsigned i = 0; i < 300; i++) {
		struct gw_trust_verdict v;

		if (gw_trust_verify(p->t, C.leaf.x, good, 0, &v) != 0 || !v.accepted)
			p->bad++;
		if (gw_trust_verify(p->t, C.leaf.x, NULL, 0, &v) == 0 ||
			v.reason != GW_TRUST_R_UNTRUSTED_ISSUER)
			p->bad++;
		if (gw_trust_verify(p->t, C.revoked.x, good, 0, &v) == 0 ||
			v.reason != GW_TRUST_R_REVOKED)
			p->bad++;
	}
	sk_X509_pop_free(good, X509_free);
	return NULL;
}

int
main(int argc, char **argv)
{
	time_t now = time(NULL);

	GW_TEST_BEGIN();
	EXPECT_TRUE(!gw_ossl_ec_builtin_on());
	if (mkdtemp(dir) == NULL || mk_corpus_build(&C, now) < 0 || mk_corpus_write(&C, dir) < 0) {
		fprintf(stderr, "cannot build the corpus\n");
		return 1;
	}
	/*
	 * --ec-builtin: the same cases and verdicts the way the gateway runs
	 * (gateway.c, gw_ossl.h): OpenSSL's built-in EC methods, and every
	 * certificate decoded again from DER with them, as a client's are.
	 */
	if (argc > 1 && strcmp(argv[1], "--ec-builtin") == 0) {
		EXPECT_OK(gw_ossl_ec_builtin());
		EXPECT_TRUE(gw_ossl_ec_builtin_on());
		if (mk_corpus_builtin(&C) < 0)
			return 1;
	}

	{ /* seed case cert1: pinned leaf */
		struct gw_trust *t = mk_trust(GW_TRUST_PINNED, 4, NULL, "leaf", NULL);

		EXPECT_TRUE(t != NULL);
		EXPECT_EQ(gw_trust_n_anchors(t), 1);
		CHECK(t, OK, "accepted", C.leaf.x);
		CHECK(t, OK, NULL, C.leaf.x, C.inter.x); /* extra certs do no harm */
		CHECK(t, OK, NULL, C.leaf.x, C.leaf.x);  /* leaf repeated, as on a server */
		CHECK(t, NOT_PINNED, "not the pinned certificate", C.leaf_b.x);
		CHECK(t, NOT_PINNED, "'CN=client-b,O=mtlsgw test'", C.leaf_b.x, C.inter.x);
		CHECK(t, NOT_PINNED, "not the pinned certificate", C.leaf2.x, C.inter2.x);
		/* the impostor: same subject as the pinned cert, its own key */
		CHECK(t, NOT_PINNED, "not the pinned certificate", C.impostor.x);
		CHECK(t, NOT_PINNED, NULL, C.impostor.x, C.leaf.x);
		CHECK(t, NOT_PINNED, NULL, C.forged.x);
		gw_trust_destroy(t);
	}
	{ /* pinned by fingerprint; a pinned self-signed cert; dates still apply */
		struct gw_cfg_trust cfg = {.mode = GW_TRUST_PINNED, .max_depth = 4};
		uint8_t pins[2][32];
		unsigned n = 0;
		struct gw_trust *t = NULL;

		X509_digest(C.leaf.x, EVP_sha256(), pins[0], &n);
		X509_digest(C.expired.x, EVP_sha256(), pins[1], &n);
		cfg.pins_sha256 = pins;
		cfg.n_pins = 2;
		EXPECT_OK(gw_trust_create(&cfg, "pins", &t));
		CHECK(t, OK, NULL, C.leaf.x);
		CHECK(t, EXPIRED, "expired on", C.expired.x);
		CHECK(t, NOT_PINNED, NULL, C.impostor.x);
		gw_trust_destroy(t);
		t = mk_trust(GW_TRUST_PINNED, 4, NULL, "selfpin", NULL);
		CHECK(t, OK, NULL, C.selfpin.x);
		CHECK(t, NOT_PINNED, NULL, C.impostor.x);
		gw_trust_destroy(t);
	}
	{ /* seed case cert2: the intermediate as anchor (partial chain) */
		struct gw_trust *t = mk_trust(GW_TRUST_CA, 4, NULL, "inter", NULL);

		CHECK(t, OK, NULL, C.leaf.x);
		CHECK(t, OK, NULL, C.leaf.x, C.inter.x);
		CHECK(t, OK, NULL, C.leaf_b.x);
		/* another intermediate of the same root: not trusted */
		CHECK(t, UNTRUSTED_ISSUER, "unable to get issuer certificate", C.leaf2.x);
		CHECK(t, UNTRUSTED_ISSUER, "issuer 'CN=mtlsgw test root", C.leaf2.x, C.inter2.x);
		CHECK(t, BAD_SIGNATURE, "forged or corrupted", C.forged.x);
		CHECK(t, SELF_SIGNED, "self-signed", C.impostor.x);
		gw_trust_destroy(t);
	}
	{ /* seed case cert3: only the root; the client must send its intermediate */
		struct gw_trust *t = mk_trust(GW_TRUST_CA, 4, NULL, "root", NULL);

		CHECK(t, OK, NULL, C.leaf.x, C.inter.x);
		CHECK(t, OK, NULL, C.leaf2.x, C.inter2.x);
		CHECK(t, OK, NULL, C.leaf.x, C.inter.x, C.root.x); /* root sent too: fine */
		CHECK(t, UNTRUSTED_ISSUER,
			"issuer 'CN=mtlsgw test intermediate,O=mtlsgw test' not trusted (unable to "
			"get "
			"issuer certificate: the client must send its intermediate",
			C.leaf.x);
		CHECK(t, UNTRUSTED_ISSUER, NULL, C.leaf2.x, C.inter.x); /* wrong intermediate */
		CHECK(t, UNTRUSTED_ISSUER, NULL, C.leaf_r2.x, C.inter_r2.x);
		gw_trust_destroy(t);
	}
	{ /* rotation: a bundle file with two roots; and two files */
		struct gw_trust *t = mk_trust(GW_TRUST_CA, 4, NULL, "roots.bundle", NULL);

		EXPECT_EQ(gw_trust_n_anchors(t), 2);
		CHECK(t, OK, NULL, C.leaf.x, C.inter.x);
		CHECK(t, OK, NULL, C.leaf_r2.x, C.inter_r2.x);
		CHECK(t, SELF_SIGNED, "not a trust anchor", C.evil_leaf.x, C.evil_root.x);
		CHECK(t, UNTRUSTED_ISSUER, NULL, C.evil_leaf.x);
		gw_trust_destroy(t);
		t = mk_trust(GW_TRUST_MESH, 4, NULL, "root", "root2", "root", NULL);
		EXPECT_EQ(gw_trust_n_anchors(t), 2); /* duplicates merged */
		CHECK(t, OK, NULL, C.leaf_r2.x, C.inter_r2.x);
		gw_trust_destroy(t);
	}
	{ /* the fingerprint: of what was built, whatever it was built from */
		STACK_OF(X509) *a = mk_stack(C.root.x, NULL), *b = mk_stack(C.root2.x, NULL);
		STACK_OF(X509) * bundles[2] = {a, b};
		struct gw_cfg_trust cfg = {.mode = GW_TRUST_MESH, .max_depth = 4};
		struct gw_trust *t1 = mk_trust(GW_TRUST_CA, 4, NULL, "root", NULL);
		struct gw_trust *t2 = mk_trust(GW_TRUST_CA, 4, NULL, "root", NULL);
		struct gw_trust *m2 = NULL, *m1 = NULL, *c1, *c2, *c3;

		EXPECT_TRUE(gw_trust_id(t1) != gw_trust_id(t2));
		EXPECT_TRUE(memcmp(gw_trust_fingerprint(t1), gw_trust_fingerprint(t2), 32) == 0);
		/* a mesh backend's root gone: another fingerprint */
		EXPECT_OK(gw_trust_create_bundles(&cfg, "mesh", bundles, 2, &m2));
		EXPECT_OK(gw_trust_create_bundles(&cfg, "mesh", bundles, 1, &m1));
		EXPECT_TRUE(memcmp(gw_trust_fingerprint(m1), gw_trust_fingerprint(m2), 32) != 0);
		/* CRLs and crl_check count */
		c1 = mk_trust(GW_TRUST_CA, 4, "inter.crl", "root", NULL);
		c2 = mk_trust(GW_TRUST_CA, 4, "chain.crl", "root", NULL);
		mk_crl_check = GW_CRL_CHECK_LEAF;
		c3 = mk_trust(GW_TRUST_CA, 4, "chain.crl", "root", NULL);
		mk_crl_check = GW_CRL_CHECK_CHAIN;
		EXPECT_TRUE(memcmp(gw_trust_fingerprint(t1), gw_trust_fingerprint(c1), 32) != 0);
		EXPECT_TRUE(memcmp(gw_trust_fingerprint(c1), gw_trust_fingerprint(c2), 32) != 0);
		EXPECT_TRUE(memcmp(gw_trust_fingerprint(c2), gw_trust_fingerprint(c3), 32) != 0);
		EXPECT_TRUE(gw_trust_fingerprint(NULL) == NULL);
		gw_trust_destroy(t1);
		gw_trust_destroy(t2);
		gw_trust_destroy(m1);
		gw_trust_destroy(m2);
		gw_trust_destroy(c1);
		gw_trust_destroy(c2);
		gw_trust_destroy(c3);
		sk_X509_pop_free(a, X509_free);
		sk_X509_pop_free(b, X509_free);
	}
	{ /* mesh from in-memory bundles (what the CA backends hand over) */
		STACK_OF(X509) *a = mk_stack(C.root.x, NULL), *b = mk_stack(C.root2.x, NULL);
		STACK_OF(X509) * bundles[2] = {a, b};
		struct gw_cfg_trust cfg = {.mode = GW_TRUST_MESH, .max_depth = 4};
		struct gw_trust *t = NULL;

		EXPECT_OK(gw_trust_create_bundles(&cfg, "mesh", bundles, 2, &t));
		CHECK(t, OK, NULL, C.leaf.x, C.inter.x);
		CHECK(t, OK, NULL, C.leaf_r2.x, C.inter_r2.x);
		CHECK(t, SELF_SIGNED, NULL, C.evil_leaf.x, C.evil_root.x);
		gw_trust_destroy(t);
		t = NULL;
		EXPECT_ERR(gw_trust_create_bundles(&cfg, "mesh", bundles, 0, &t), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "no anchors");
		sk_X509_pop_free(a, X509_free);
		sk_X509_pop_free(b, X509_free);
	}
	{ /* one bad certificate per check */
		struct gw_trust *t = mk_trust(GW_TRUST_CA, 4, NULL, "root", NULL);
		struct gw_trust *t1 = mk_trust(GW_TRUST_CA, 1, NULL, "root", NULL);

		CHECK(t, EXPIRED, "certificate 'CN=expired,O=mtlsgw test' expired on", C.expired.x,
			C.inter.x);
		CHECK(t, NOT_YET_VALID, "not valid yet", C.notyet.x, C.inter.x);
		CHECK(t, EKU, "missing clientAuth extended key usage", C.noeku.x, C.inter.x);
		CHECK(t, OK, NULL, C.deep.x, C.sub2.x, C.sub1.x, C.inter.x);
		CHECK(t1, TOO_DEEP, "max_depth", C.deep.x, C.sub2.x, C.sub1.x, C.inter.x);
		CHECK(t1, OK, NULL, C.leaf.x, C.inter.x);
		{ /* the boundary: deep has 3 intermediates (sub2, sub1, inter) */
			struct gw_trust *t2 = mk_trust(GW_TRUST_CA, 2, NULL, "root", NULL);
			struct gw_trust *t3 = mk_trust(GW_TRUST_CA, 3, NULL, "root", NULL);

			CHECK(t2, TOO_DEEP, "at most 2 intermediate CAs", C.deep.x, C.sub2.x,
				C.sub1.x, C.inter.x);
			CHECK(t3, OK, NULL, C.deep.x, C.sub2.x, C.sub1.x, C.inter.x);
			gw_trust_destroy(t2);
			gw_trust_destroy(t3);
		}
		CHECK(t, NAME_CONSTRAINTS, "name constraints", C.nc_bad.x, C.nc_ca.x);
		CHECK(t, OK, NULL, C.nc_ok.x, C.nc_ca.x);
		CHECK(t, BAD_SIGNATURE, "does not verify", C.forged.x, C.inter.x);
		CHECK(t, SELF_SIGNED, "self-signed", C.impostor.x);
		/* a loop: X by Y, Y by X; nothing reaches the root */
		CHECK(t, UNTRUSTED_ISSUER, "not trusted", C.loop_leaf.x, C.loop_x.x, C.loop_y.x);
		CHECK(t, UNTRUSTED_ISSUER, NULL, C.loop_leaf.x, C.loop_y.x, C.loop_x.x, C.loop_y.x);
		gw_trust_destroy(t);
		gw_trust_destroy(t1);
	}
	{ /* CRLs, crl_check chain (the default): every CA of the path */
		struct gw_trust *t = mk_trust(GW_TRUST_CA, 4, "chain.crl", "root", NULL);
		struct gw_trust *ti = mk_trust(GW_TRUST_CA, 4, "inter.crl", "inter", NULL);
		struct gw_trust *tc = mk_trust(GW_TRUST_CA, 4, "inter.crl", "root", NULL);
		time_t until = 0;
		STACK_OF(X509) *sk = mk_stack(C.inter.x, NULL);

		CHECK(t, REVOKED, "is revoked", C.revoked.x, C.inter.x);
		CHECK(t, OK, NULL, C.leaf.x, C.inter.x);
		/* a revoked intermediate: its own leaf is not listed anywhere */
		CHECK(t, REVOKED,
			"certificate 'CN=mtlsgw revoked intermediate,O=mtlsgw test' (serial",
			C.leaf_ir.x, C.inter_rev.x);
		/* the anchor is not checked: a partial chain needs only its CA's CRL */
		CHECK(ti, REVOKED, "revoked", C.revoked.x);
		CHECK(ti, OK, NULL, C.leaf.x);
		CHECK(ti, OK, NULL, C.leaf.x,
			C.inter.x); /* the anchor sent along: still the anchor */
		CHECK(ti, OK, NULL, C.leaf.x, C.inter.x, C.root.x);
		/* inter2 has no CRL here: fail closed */
		CHECK(t, CRL, "no usable CRL", C.leaf2.x, C.inter2.x);
		/* a CA of the path (inter, issued by root) whose CRL is not loaded */
		CHECK(tc, CRL,
			"no usable CRL from 'CN=mtlsgw test root,O=mtlsgw test' for certificate "
			"'CN=mtlsgw test intermediate,O=mtlsgw test'",
			C.leaf.x, C.inter.x);
		CHECK(tc, REVOKED, NULL, C.revoked.x, C.inter.x);
		gw_trust_destroy(tc);
		/* crl_check leaf: only the leaf's issuer needs a CRL, as before */
		mk_crl_check = GW_CRL_CHECK_LEAF;
		tc = mk_trust(GW_TRUST_CA, 4, "inter.crl", "root", NULL);
		CHECK(tc, OK, NULL, C.leaf.x, C.inter.x);
		CHECK(tc, REVOKED, NULL, C.revoked.x, C.inter.x);
		CHECK(tc, CRL, NULL, C.leaf2.x, C.inter2.x);
		gw_trust_destroy(tc);
		tc = mk_trust(GW_TRUST_CA, 4, "chain.crl", "root", NULL);
		CHECK(tc, OK, NULL, C.leaf_ir.x, C.inter_rev.x); /* what leaf mode gives up */
		gw_trust_destroy(tc);
		mk_crl_check = GW_CRL_CHECK_CHAIN;
		/* the cache horizon includes the CRL's nextUpdate (7 days) */
		EXPECT_OK(gw_trust_verify_until(t, C.leaf.x, sk, 0, NULL, &until));
		{ /* every acceptance carries it (tickets use it) */
			struct gw_trust_verdict v;

			EXPECT_OK(gw_trust_verify(t, C.leaf.x, sk, 0, &v));
			EXPECT_EQ(v.until, until);
		}
		EXPECT_TRUE(until > now + 6 * 86400 && until <= now + 7 * 86400 + 60);
		/* and past nextUpdate, the CRL is stale: rejected */
		{
			struct gw_trust_verdict v;

			EXPECT_ERR(
				gw_trust_verify(t, C.leaf.x, sk, now + 8 * 86400, &v), -GW_E_TRUST);
			EXPECT_EQ(v.reason, GW_TRUST_R_CRL);
		}
		sk_X509_pop_free(sk, X509_free);
		gw_trust_destroy(t);
		gw_trust_destroy(ti);
	}
	{ /* allow rules */
		struct gw_cfg_trust cfg = {.mode = GW_TRUST_CA, .max_depth = 4};
		char *certs[] = {path_of("inter"), path_of("root")};
		char *spiffe[] = {"spiffe://example.org/ns/prod/*"};
		char *dns[] = {"*.example.com"};
		char *cn[] = {"client-b"};
		struct gw_trust *t = NULL;

		cfg.certs = certs;
		cfg.n_certs = 2;
		cfg.allow.spiffe = spiffe;
		cfg.allow.n_spiffe = 1;
		EXPECT_OK(gw_trust_create(&cfg, "spiffe", &t));
		CHECK(t, OK, NULL, C.leaf.x);
		CHECK(t, OK, NULL, C.srvleaf.x);
		CHECK(t, NOT_ALLOWED,
			"SPIFFE ID spiffe://example.org/ns/dev/web not allowed by rule "
			"spiffe://example.org/ns/prod/*",
			C.leaf_b.x);
		CHECK(t, NOT_ALLOWED, "has no SPIFFE ID (URI SAN)", C.nc_ok.x, C.nc_ca.x);
		{ /* a SAN with a newline (log injection) never reaches a log line as one */
			X509 *e = names_leaf(
				"spiffe://example.org/ns/dev/x\nFAKE LOG LINE", NULL, "evil san");

			CHECK(t, NOT_ALLOWED,
				"SPIFFE ID spiffe://example.org/ns/dev/x?FAKE LOG LINE", e);
			X509_free(e);
		}
		gw_trust_destroy(t);
		t = NULL;
		cfg.allow.n_spiffe = 0;
		cfg.allow.dns = dns;
		cfg.allow.n_dns = 1;
		EXPECT_OK(gw_trust_create(&cfg, "dns", &t));
		CHECK(t, OK, NULL, C.leaf.x);
		CHECK(t, OK, NULL, C.leaf_b.x);
		CHECK(t, NOT_ALLOWED, "DNS name (none) not allowed by *.example.com", C.srvleaf.x);
		gw_trust_destroy(t);
		t = NULL;
		cfg.allow.n_dns = 0;
		cfg.allow.cn = cn;
		cfg.allow.n_cn = 1;
		EXPECT_OK(gw_trust_create(&cfg, "cn", &t));
		CHECK(t, OK, NULL, C.leaf_b.x);
		CHECK(t, NOT_ALLOWED, "CN 'client' not allowed by client-b", C.leaf.x);
		gw_trust_destroy(t);
		t = NULL;
		/* a bad rule is a config error */
		{
			char *bad[] = {"example.org/ns/*"};

			cfg.allow.spiffe = bad;
			cfg.allow.n_spiffe = 1;
			EXPECT_ERR(gw_trust_create(&cfg, "bad", &t), -GW_E_CONFIG);
			EXPECT_CONTAINS(gw_err_msg(), "is not a SPIFFE ID");
		}
	}
	{ /* SPIFFE matching */
		const char *r = "spiffe://td/ns/prod/*";

		EXPECT_TRUE(gw_trust_spiffe_match(r, "spiffe://td/ns/prod/web"));
		EXPECT_TRUE(!gw_trust_spiffe_match(r, "spiffe://td/ns/prod"));
		EXPECT_TRUE(!gw_trust_spiffe_match(r, "spiffe://td/ns/prod/"));
		EXPECT_TRUE(!gw_trust_spiffe_match(r, "spiffe://td/ns/prod/web/x"));
		EXPECT_TRUE(!gw_trust_spiffe_match(r, "spiffe://td2/ns/prod/web"));
		EXPECT_TRUE(!gw_trust_spiffe_match(r, "spiffe://t/ns/prod/web"));
		EXPECT_TRUE(!gw_trust_spiffe_match(r, "spiffe://td/ns/production/web"));
		EXPECT_TRUE(gw_trust_spiffe_match("spiffe://td/*/prod/*", "spiffe://td/a/prod/b"));
		EXPECT_TRUE(gw_trust_spiffe_match("spiffe://td/a/b", "spiffe://td/a/b"));
		EXPECT_TRUE(!gw_trust_spiffe_match("spiffe://td/a/b", "spiffe://td/a/b/"));
		EXPECT_TRUE(!gw_trust_spiffe_match("spiffe://td/a/b", "spiffe://td/a//b"));
		EXPECT_TRUE(!gw_trust_spiffe_match("spiffe://*/a", "spiffe://td/a"));
		EXPECT_TRUE(!gw_trust_spiffe_match(NULL, "spiffe://td/a"));
	}
	{ /* "**" last: one or more segments (the README's rule admits ns/prod/sa/api) */
		const char *r = "spiffe://example.org/ns/prod/**";
		char why[160];

		EXPECT_TRUE(gw_trust_spiffe_match(r, "spiffe://example.org/ns/prod/sa/api"));
		EXPECT_TRUE(gw_trust_spiffe_match(r, "spiffe://example.org/ns/prod/web"));
		EXPECT_TRUE(gw_trust_spiffe_match(r, "spiffe://example.org/ns/prod/a/b/c/d"));
		EXPECT_TRUE(!gw_trust_spiffe_match(r, "spiffe://example.org/ns/prod"));
		EXPECT_TRUE(!gw_trust_spiffe_match(r, "spiffe://example.org/ns/prod/"));
		EXPECT_TRUE(!gw_trust_spiffe_match(r, "spiffe://example.org/ns/prod/a//b"));
		EXPECT_TRUE(!gw_trust_spiffe_match(r, "spiffe://example.org/ns/prod/a/"));
		EXPECT_TRUE(!gw_trust_spiffe_match(r, "spiffe://example.org/ns/production/a"));
		EXPECT_TRUE(!gw_trust_spiffe_match(r, "spiffe://example.org.evil/ns/prod/a"));
		EXPECT_TRUE(
			gw_trust_spiffe_match("spiffe://td/*/prod/**", "spiffe://td/x/prod/y/z"));
		EXPECT_TRUE(gw_trust_spiffe_match("spiffe://td/**", "spiffe://td/x"));
		EXPECT_TRUE(!gw_trust_spiffe_match("spiffe://td/**", "spiffe://td"));
		/* the one "*" segment rule: sa/api is two segments */
		EXPECT_TRUE(!gw_trust_spiffe_match(
			"spiffe://example.org/ns/prod/*", "spiffe://example.org/ns/prod/sa/api"));
		/* patterns the matcher cannot honour: refused, and never match */
		EXPECT_OK(gw_trust_spiffe_rule_check(r, why, sizeof(why)));
		EXPECT_OK(gw_trust_spiffe_rule_check("spiffe://td", why, sizeof(why)));
		EXPECT_OK(gw_trust_spiffe_rule_check("spiffe://td/*/x/*", why, sizeof(why)));
		{
			static const struct {
				const char *rule, *why;
			} bad[] = {
				{"spiffe://td/ns/prod/**/x", "'**' before the last segment"},
				{"spiffe://td/ns/a*b", "'*' inside a path segment"},
				{"spiffe://td/ns/*b", "'*' inside a path segment"},
				{"spiffe://td/ns/***", "'*' inside a path segment"},
				{"spiffe://*.td/ns", "wildcard in the trust domain"},
				{"spiffe://**/ns", "wildcard in the trust domain"},
				{"spiffe://td/ns//x", "empty path segment"},
				{"spiffe://td/ns/", "empty path segment"},
				{"spiffe:///ns", "no trust domain"},
				{"example.org/ns/*", "is not a SPIFFE ID pattern"},
			};

			for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
				why[0] = '\0';
				EXPECT_ERR(
					gw_trust_spiffe_rule_check(bad[i].rule, why, sizeof(why)),
					-GW_E_CONFIG);
				EXPECT_CONTAINS(why, bad[i].why);
				EXPECT_TRUE(
					!gw_trust_spiffe_match(bad[i].rule, "spiffe://td/ns/ab"));
			}
		}
		{ /* dns and cn rules that could never match do not load either */
			char r254[260], l64[80];

			memset(r254, 'r', sizeof(r254));
			for (int i = 63; i < 254; i += 64)
				r254[i] = '.';
			r254[254] = '\0';
			memset(l64, 'l', 64);
			snprintf(l64 + 64, sizeof(l64) - 64, ".example.com");
			EXPECT_OK(gw_trust_dns_rule_check("*.example.com", why, sizeof(why)));
			EXPECT_OK(gw_trust_dns_rule_check("client_1.example.com", NULL, 0));
			EXPECT_ERR(gw_trust_dns_rule_check(r254, why, sizeof(why)), -GW_E_CONFIG);
			EXPECT_CONTAINS(why, "over 253 characters");
			EXPECT_OK(gw_trust_dns_rule_check(r254 + 1, why, sizeof(why))); /* 253 */
			EXPECT_ERR(gw_trust_dns_rule_check(l64, why, sizeof(why)), -GW_E_CONFIG);
			EXPECT_CONTAINS(why, "a label is over 63 characters");
			EXPECT_OK(gw_trust_dns_rule_check(l64 + 1, why, sizeof(why)));
			EXPECT_ERR(gw_trust_dns_rule_check("*.*.example.com", why, sizeof(why)),
				-GW_E_CONFIG);
			EXPECT_CONTAINS(why, "'*' only as the whole first label");
			EXPECT_ERR(gw_trust_dns_rule_check("a*.example.com", why, sizeof(why)),
				-GW_E_CONFIG);
			EXPECT_ERR(gw_trust_dns_rule_check("*", why, sizeof(why)), -GW_E_CONFIG);
			EXPECT_ERR(gw_trust_dns_rule_check("a..b", why, sizeof(why)), -GW_E_CONFIG);
			EXPECT_CONTAINS(why, "empty label");
			EXPECT_ERR(gw_trust_dns_rule_check("a b", why, sizeof(why)), -GW_E_CONFIG);
			EXPECT_ERR(gw_trust_dns_rule_check("", why, sizeof(why)), -GW_E_CONFIG);
			l64[65] = '\0'; /* 65 characters */
			EXPECT_ERR(gw_trust_cn_rule_check(l64, why, sizeof(why)), -GW_E_CONFIG);
			EXPECT_CONTAINS(why, "is over 64 characters");
			EXPECT_OK(gw_trust_cn_rule_check(l64 + 1, why, sizeof(why)));
			EXPECT_ERR(gw_trust_cn_rule_check("", why, sizeof(why)), -GW_E_CONFIG);
		}
		{ /* and gw_trust_create refuses them too, naming the problem */
			struct gw_cfg_trust cfg = {.mode = GW_TRUST_CA, .max_depth = 4};
			char *certs[] = {path_of("inter")};
			char *rules[] = {"spiffe://example.org/ns/**/x"};
			struct gw_trust *t = NULL;

			cfg.certs = certs;
			cfg.n_certs = 1;
			cfg.allow.spiffe = rules;
			cfg.allow.n_spiffe = 1;
			EXPECT_ERR(gw_trust_create(&cfg, "bad", &t), -GW_E_CONFIG);
			EXPECT_CONTAINS(gw_err_msg(), "has '**' before the last segment");
			rules[0] = "spiffe://example.org/ns/prod/**";
			EXPECT_OK(gw_trust_create(&cfg, "prod", &t));
			CHECK(t, OK, NULL, C.leaf.x);            /* ns/prod/web */
			CHECK(t, OK, NULL, C.srvleaf.x);         /* ns/prod/api */
			CHECK(t, NOT_ALLOWED, NULL, C.leaf_b.x); /* ns/dev/web */
			gw_trust_destroy(t);
		}
	}
	{ /* names are judged whole: long SPIFFE IDs, DNS names, CNs */
		struct gw_cfg_trust cfg = {.mode = GW_TRUST_CA, .max_depth = 4};
		char *certs[] = {path_of("inter")};
		char *spiffe[] = {"spiffe://td/ns/prod/sa/*"};
		struct gw_trust *t = NULL;
		static const size_t lens[] = {254, 255, 256, 300, 2048};

		cfg.certs = certs;
		cfg.n_certs = 1;
		cfg.allow.spiffe = spiffe;
		cfg.allow.n_spiffe = 1;
		EXPECT_OK(gw_trust_create(&cfg, "long", &t));
		for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			char *one = long_id(lens[i], ""), *two = long_id(lens[i], "/admin");
			X509 *a = names_leaf(one, NULL, NULL), *b = names_leaf(two, NULL, NULL);

			EXPECT_EQ(strlen(one), lens[i]);
			/* one segment after sa/: admitted at every length up to 2048 */
			CHECK(t, OK, NULL, a);
			/* .../sa/<a...>/admin is two segments, however far the tail is */
			CHECK(t, NOT_ALLOWED, "not allowed by rule spiffe://td/ns/prod/sa/*", b);
			X509_free(a);
			X509_free(b);
			free(one);
			free(two);
		}
		{ /* the issue's case: 290 bytes, sa/<240 x a>/admin */
			char id[400], *filler = long_id(300, "");
			X509 *x;

			snprintf(id, sizeof(id), "spiffe://td/ns/prod/sa/%.*s/admin", 240,
				filler + 60);
			free(filler);
			EXPECT_EQ(strlen(id), 23 + 240 + 6);
			x = names_leaf(id, NULL, NULL);
			CHECK(t, NOT_ALLOWED, NULL, x);
			X509_free(x);
		}
		{ /* over SPIFFE's 2048 bytes: malformed, never cut and matched */
			char *id = long_id(2049, "");
			X509 *x = names_leaf(id, NULL, NULL);

			CHECK(t, MALFORMED, "SPIFFE ID (URI SAN) of 2049 bytes", x);
			X509_free(x);
			free(id);
		}
		gw_trust_destroy(t);
		t = NULL;

		/* DNS: 253 characters, labels of 63 (RFC 1035) */
		{
			char n253[260], n254[260], n300[310], l64[80];
			char *dns[1];
			X509 *x;

			/* labels of 63: 3 x (63 + '.') + 61 = 253, + 62 = 254 */
			memset(n253, 'd', sizeof(n253));
			memset(n254, 'd', sizeof(n254));
			for (int i = 63; i < 254; i += 64)
				n253[i] = n254[i] = '.';
			n253[253] = '\0';
			n254[254] = '\0';
			memset(n300, 'c', 300);
			for (int i = 50; i < 300; i += 50)
				n300[i] = '.';
			n300[300] = '\0';
			memset(l64, 'l', 64);
			snprintf(l64 + 64, sizeof(l64) - 64, ".example.com");

			cfg.allow.n_spiffe = 0;
			dns[0] = n253;
			cfg.allow.dns = dns;
			cfg.allow.n_dns = 1;
			EXPECT_OK(gw_trust_create(&cfg, "dns", &t));
			x = names_leaf(NULL, n253, NULL);
			CHECK(t, OK, NULL, x);
			X509_free(x);
			/* 254 characters: one more than a DNS name may have */
			EXPECT_EQ(strlen(n253), 253);
			EXPECT_EQ(strlen(n254), 254);
			x = names_leaf(NULL, n254, NULL);
			CHECK(t, MALFORMED, "DNS name (SAN) of 254 characters", x);
			X509_free(x);
			gw_trust_destroy(t);
			t = NULL;
			/* a 300-character name: judged whole, so malformed, never cut */
			dns[0] = n253;
			EXPECT_OK(gw_trust_create(&cfg, "dns300", &t));
			x = names_leaf(NULL, n300, NULL);
			CHECK(t, MALFORMED, "DNS name (SAN) of 300 characters", x);
			X509_free(x);
			gw_trust_destroy(t);
			t = NULL;
			/* a 64-character label */
			dns[0] = "*.example.com";
			EXPECT_OK(gw_trust_create(&cfg, "dns64", &t));
			x = names_leaf(NULL, l64, NULL);
			CHECK(t, MALFORMED, "labels of 1..63", x);
			X509_free(x);
			l64[63] = '\0'; /* 63 l's, no suffix: "*.example.com" does not match */
			snprintf(l64 + 63, sizeof(l64) - 63, ".example.com");
			x = names_leaf(NULL, l64 + 1, NULL);
			CHECK(t, OK, NULL, x); /* 62-character label */
			X509_free(x);
			gw_trust_destroy(t);
			t = NULL;
			cfg.allow.n_dns = 0;
		}
		/* CN: at most 64 characters (ub-common-name), counted as characters */
		{
			char c64[80], c65[80], c200[210], e64[140];
			char *cn[1];
			X509 *x;

			memset(c64, 'n', 64);
			c64[64] = '\0';
			memset(c65, 'n', 65);
			c65[65] = '\0';
			memset(c200, 'n', 200);
			c200[200] = '\0';
			e64[0] = '\0';
			for (int i = 0; i < 64; i++)
				strcat(e64, "\xc3\xa9"); /* e acute: 64 characters, 128 bytes */
			cfg.allow.cn = cn;
			cfg.allow.n_cn = 1;
			cn[0] = c64;
			EXPECT_OK(gw_trust_create(&cfg, "cn", &t));
			x = names_leaf(NULL, NULL, c64);
			CHECK(t, OK, NULL, x);
			X509_free(x);
			x = names_leaf(NULL, NULL, c65);
			CHECK(t, MALFORMED, "subject CN of 65 bytes", x);
			X509_free(x);
			gw_trust_destroy(t);
			t = NULL;
			cn[0] = e64;
			EXPECT_OK(gw_trust_create(&cfg, "cn-utf8", &t));
			x = names_leaf(NULL, NULL, e64);
			CHECK(t, OK, NULL, x);
			X509_free(x);
			gw_trust_destroy(t);
			t = NULL;
			/* a 200-byte CN (the old 128-byte buffer would have cut it) */
			cn[0] = c64;
			EXPECT_OK(gw_trust_create(&cfg, "cn200", &t));
			x = names_leaf(NULL, NULL, c200);
			CHECK(t, MALFORMED, "subject CN of 200 bytes", x);
			X509_free(x);
			gw_trust_destroy(t);
		}
	}
	{ /* malformed DER, and the DER entry point */
		struct gw_trust *t = mk_trust(GW_TRUST_CA, 4, NULL, "inter", NULL);
		unsigned char *d0 = NULL, *d1 = NULL;
		int n0 = i2d_X509(C.leaf.x, &d0), n1 = i2d_X509(C.inter.x, &d1);
		const uint8_t *der[2] = {d0, d1};
		size_t len[2] = {(size_t)n0, (size_t)n1};
		struct gw_trust_verdict v;
		struct gw_trust_why w;

		EXPECT_OK(gw_trust_verify_der(t, der, len, 2, 0, &v, &w));
		EXPECT_CONTAINS(w.msg, "accepted by listener");
		EXPECT_TRUE(v.accepted);
		len[0] = (size_t)n0 - 40;
		EXPECT_ERR(gw_trust_verify_der(t, der, len, 2, 0, &v, &w), -GW_E_TRUST);
		EXPECT_EQ(v.reason, GW_TRUST_R_MALFORMED);
		EXPECT_CONTAINS(w.msg, "certificate 1 of the chain (the leaf) is malformed");
		len[0] = (size_t)n0;
		len[1] = (size_t)n1 + 0;
		d1[0] ^= 0xff; /* not a SEQUENCE any more */
		EXPECT_ERR(gw_trust_verify_der(t, der, len, 2, 0, &v, NULL), -GW_E_TRUST);
		EXPECT_EQ(v.reason, GW_TRUST_R_MALFORMED);
		EXPECT_EQ(v.depth, 1);
		/* trailing garbage after a valid certificate is malformed too */
		{
			unsigned char *big = malloc((size_t)n0 + 1);
			const uint8_t *d[1] = {big};
			size_t l[1] = {(size_t)n0 + 1};

			memcpy(big, d0, (size_t)n0);
			big[n0] = 0;
			EXPECT_ERR(gw_trust_verify_der(t, d, l, 1, 0, &v, NULL), -GW_E_TRUST);
			EXPECT_EQ(v.reason, GW_TRUST_R_MALFORMED);
			free(big);
		}
		OPENSSL_free(d0);
		OPENSSL_free(d1);
		gw_trust_destroy(t);
	}
	{ /* chain files */
		X509 *leaf = NULL;
		STACK_OF(X509) *rest = NULL;

		EXPECT_OK(gw_trust_chain_load(path_of("leaf.chain"), &leaf, &rest));
		EXPECT_EQ(sk_X509_num(rest), 1);
		EXPECT_EQ(X509_cmp(leaf, C.leaf.x), 0);
		X509_free(leaf);
		sk_X509_pop_free(rest, X509_free);
		EXPECT_ERR(gw_trust_chain_load(path_of("malformed"), &leaf, &rest), -GW_E_PARSE);
		EXPECT_CONTAINS(gw_err_msg(), "certificate 1 is not valid DER");
		EXPECT_ERR(gw_trust_chain_load(path_of("inter.crl"), &leaf, &rest), -GW_E_PARSE);
		EXPECT_CONTAINS(gw_err_msg(), "not a CERTIFICATE");
		EXPECT_ERR(gw_trust_chain_load("/nonexistent/x.pem", &leaf, &rest), -ENOENT);
	}
	{ /* config errors */
		struct gw_trust *t = NULL;
		struct gw_cfg_trust cfg = {.mode = GW_TRUST_CA, .max_depth = 4};
		char *leafp[] = {path_of("leaf")}, *badp[] = {path_of("malformed")};
		char *nop[] = {"/nonexistent/root.pem"}, *keyp[] = {path_of("leaf.key")};

		cfg.n_certs = 1;
		cfg.certs = leafp;
		EXPECT_ERR(gw_trust_create(&cfg, "x", &t), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "is not a CA certificate");
		cfg.certs = badp;
		EXPECT_ERR(gw_trust_create(&cfg, "x", &t), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "not valid DER");
		cfg.certs = nop;
		EXPECT_ERR(gw_trust_create(&cfg, "x", &t), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "cannot open");
		cfg.certs = keyp;
		EXPECT_ERR(gw_trust_create(&cfg, "x", &t), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "not a CERTIFICATE");
		cfg.n_certs = 0;
		cfg.mode = GW_TRUST_PINNED;
		EXPECT_ERR(gw_trust_create(&cfg, "x", &t), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "pinned needs certs or pins_sha256");
		EXPECT_TRUE(t == NULL);
		gw_trust_destroy(NULL);
	}
	{ /* many threads, one trust */
		struct gw_trust *t = mk_trust(GW_TRUST_CA, 4, "chain.crl", "root", NULL);
		pthread_t th[4];
		struct par p[4];

		for (int i = 0; i < 4; i++) {
			p[i] = (struct par){.t = t};
			pthread_create(&th[i], NULL, par_verify, &p[i]);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			EXPECT_EQ(p[i].bad, 0);
		}
		gw_trust_destroy(t);
	}
	{ /* the verify cache */
		struct gw_trust *t = mk_trust(GW_TRUST_CA, 4, NULL, "root", NULL);
		struct gw_trust *t2 = mk_trust(GW_TRUST_CA, 4, NULL, "root", NULL);
		struct gw_trust *ti = mk_trust(GW_TRUST_CA, 4, NULL, "inter", NULL);
		STACK_OF(X509) *good = mk_stack(C.inter.x, NULL);
		STACK_OF(X509) *good_dup = mk_stack(C.leaf.x, C.inter.x, NULL);
		STACK_OF(X509) *wrong = mk_stack(C.inter2.x, NULL);
		struct gw_vcache *c = NULL;
		struct gw_vcache_stats st;
		struct gw_trust_verdict v;
		uint8_t d1[32], d2[32];
		time_t leaf_na = now + 365 * 86400 - 3600; /* before the leaf's notAfter */

		EXPECT_OK(gw_vcache_create(16, 0, &c));
		EXPECT_ERR(gw_vcache_create(0, 0, &c), -EINVAL);
		/* first time: verified and cached */
		EXPECT_OK(gw_trust_verify_cached(t, 1, c, C.leaf.x, good, now, &v));
		EXPECT_TRUE(v.accepted && !v.cached);
		{
			time_t u0 = v.until;

			EXPECT_TRUE(u0 > now);
			EXPECT_OK(gw_trust_verify_cached(t, 1, c, C.leaf.x, good, now, &v));
			EXPECT_TRUE(v.accepted && v.cached);
			EXPECT_EQ(v.until, u0); /* a hit answers with the entry's horizon */
		}
		/* the leaf repeated at the head is the same presented chain */
		EXPECT_OK(gw_trust_verify_cached(t, 1, c, C.leaf.x, good_dup, now, &v));
		EXPECT_TRUE(v.cached);
		/* same leaf, chain without the intermediate: never from the cache */
		EXPECT_ERR(gw_trust_verify_cached(t, 1, c, C.leaf.x, NULL, now, &v), -GW_E_TRUST);
		EXPECT_TRUE(!v.cached && v.reason == GW_TRUST_R_UNTRUSTED_ISSUER);
		/* same leaf, a wrong intermediate: rejected */
		EXPECT_ERR(gw_trust_verify_cached(t, 1, c, C.leaf.x, wrong, now, &v), -GW_E_TRUST);
		EXPECT_TRUE(!v.cached);
		/* rejections are not cached: asking again still verifies */
		EXPECT_ERR(gw_trust_verify_cached(t, 1, c, C.leaf.x, NULL, now, &v), -GW_E_TRUST);
		EXPECT_TRUE(!v.cached);
		/* a new generation misses (then verifies again) */
		EXPECT_OK(gw_trust_verify_cached(t, 2, c, C.leaf.x, good, now, &v));
		EXPECT_TRUE(!v.cached);
		/* another trust (same anchors, another listener or snapshot) misses */
		EXPECT_OK(gw_trust_verify_cached(t2, 1, c, C.leaf.x, good, now, &v));
		EXPECT_TRUE(!v.cached);
		EXPECT_TRUE(gw_trust_id(t) != gw_trust_id(t2));
		/* a trust that rejects this chain never sees the other's acceptance */
		EXPECT_ERR(gw_trust_verify_cached(ti, 1, c, C.leaf2.x, NULL, now, &v), -GW_E_TRUST);
		/* expiry: just before the leaf's notAfter a hit, after it a rejection */
		EXPECT_OK(gw_trust_verify_cached(t, 1, c, C.leaf.x, good, leaf_na, &v));
		EXPECT_TRUE(v.cached);
		EXPECT_ERR(gw_trust_verify_cached(t, 1, c, C.leaf.x, good, now + 366 * 86400, &v),
			-GW_E_TRUST);
		EXPECT_TRUE(!v.cached && v.reason == GW_TRUST_R_EXPIRED);
		gw_vcache_stats_get(c, &st);
		EXPECT_EQ(st.expired, 1);
		/* the full digest is the key: one flipped bit is another chain */
		EXPECT_OK(gw_trust_chain_digest(C.leaf.x, good, d1));
		memcpy(d2, d1, 32);
		d2[31] ^= 1;
		gw_vcache_insert(c, d1, 77, 5, now, now + 100);
		EXPECT_TRUE(gw_vcache_lookup(c, d1, 77, 5, now));
		EXPECT_TRUE(!gw_vcache_lookup(c, d2, 77, 5, now));
		EXPECT_TRUE(!gw_vcache_lookup(c, d1, 78, 5, now));
		EXPECT_TRUE(!gw_vcache_lookup(c, d1, 77, 6, now));
		EXPECT_TRUE(!gw_vcache_lookup(c, d1, 77, 5, now + 100));
		/* past-dated or zero-trust inserts are ignored */
		gw_vcache_insert(c, d2, 77, 5, now, now);
		EXPECT_TRUE(!gw_vcache_lookup(c, d2, 77, 5, now));
		/* digest differs for different chains, equal for equal ones */
		{
			uint8_t a[32], b[32];

			EXPECT_OK(gw_trust_chain_digest(C.leaf.x, NULL, a));
			EXPECT_OK(gw_trust_chain_digest(C.leaf.x, good_dup, b));
			EXPECT_TRUE(memcmp(a, b, 32) != 0);
			EXPECT_OK(gw_trust_chain_digest(C.leaf.x, good, a));
			EXPECT_TRUE(memcmp(a, b, 32) == 0);
		}
		/* bounded: 1000 distinct inserts into 16 entries */
		for (unsigned i = 0; i < 1000; i++) {
			uint8_t d[32];

			memset(d, 0, sizeof(d));
			memcpy(d, &i, sizeof(i));
			d[20] = (uint8_t)i;
			gw_vcache_insert(c, d, 9, 1, now, now + 1000);
		}
		EXPECT_TRUE(gw_vcache_count(c) <= 16);
		gw_vcache_stats_get(c, &st);
		EXPECT_TRUE(st.evictions > 900);
		/* LRU within a set: the recently used entry survives */
		{
			uint8_t hot[32] = {0}, d[32] = {0};

			gw_vcache_clear(c);
			EXPECT_EQ(gw_vcache_count(c), 0);
			hot[31] = 1;
			gw_vcache_insert(c, hot, 9, 1, now, now + 1000);
			for (unsigned i = 0; i < 50; i++) {
				d[31] = (uint8_t)(i + 2); /* same set (first bytes 0) */
				gw_vcache_insert(c, d, 9, 1, now, now + 1000);
				EXPECT_TRUE(gw_vcache_lookup(c, hot, 9, 1, now));
			}
		}
		/* max TTL caps the certificates' horizon */
		{
			struct gw_vcache *c2 = NULL;

			EXPECT_OK(gw_vcache_create(8, 60, &c2));
			EXPECT_OK(gw_trust_verify_cached(t, 1, c2, C.leaf.x, good, now, &v));
			EXPECT_OK(gw_trust_verify_cached(t, 1, c2, C.leaf.x, good, now + 59, &v));
			EXPECT_TRUE(v.cached);
			EXPECT_OK(gw_trust_verify_cached(t, 1, c2, C.leaf.x, good, now + 61, &v));
			EXPECT_TRUE(!v.cached);
			gw_vcache_destroy(c2);
		}
		/* no cache: plain verification */
		EXPECT_OK(gw_trust_verify_cached(t, 1, NULL, C.leaf.x, good, now, &v));
		EXPECT_TRUE(!v.cached);
		/*
		 * Exhaustive: every corpus chain through a cache, twice, under
		 * the root trust: the cached answer always equals the engine's.
		 */
		{
			X509 *all[] = {C.leaf.x, C.leaf_b.x, C.leaf2.x, C.leaf_r2.x, C.expired.x,
				C.notyet.x, C.impostor.x, C.forged.x, C.evil_leaf.x, C.noeku.x,
				C.deep.x, C.nc_ok.x, C.nc_bad.x, C.revoked.x, C.loop_leaf.x,
				C.selfpin.x};
			X509 *mids[] = {NULL, C.inter.x, C.inter2.x, C.nc_ca.x, C.evil_root.x};
			unsigned wrong_accept = 0;

			gw_vcache_clear(c);
			for (unsigned round = 0; round < 2; round++)
				for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++)
					for (unsigned j = 0; j < 5; j++) {
						STACK_OF(X509) *sk =
							mids[j] ? mk_stack(mids[j], NULL) : NULL;
						struct gw_trust_verdict a, b;
						int ra = gw_trust_verify(t, all[i], sk, now, &a);
						int rb = gw_trust_verify_cached(
							t, 1, c, all[i], sk, now, &b);

						if (ra != rb || a.accepted != b.accepted)
							wrong_accept++;
						sk_X509_pop_free(sk, X509_free);
					}
			EXPECT_EQ(wrong_accept, 0);
			gw_vcache_stats_get(c, &st);
			EXPECT_TRUE(st.hits > 0);
		}
		gw_vcache_destroy(c);
		gw_vcache_destroy(NULL);
		sk_X509_pop_free(good, X509_free);
		sk_X509_pop_free(good_dup, X509_free);
		sk_X509_pop_free(wrong, X509_free);
		gw_trust_destroy(t);
		gw_trust_destroy(t2);
		gw_trust_destroy(ti);
	}
	{ /* reasons have names */
		EXPECT_STREQ(gw_trust_reason_name(GW_TRUST_R_NOT_PINNED), "not_pinned");
		EXPECT_STREQ(gw_trust_reason_name(GW_TRUST_R__COUNT), "unknown");
	}

	mk_corpus_free(&C);
	{
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	GW_TEST_END();
}
