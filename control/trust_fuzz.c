/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * trust_fuzz.c - libFuzzer target for the trust engine's input side: what a
 * client sends. The input is up to four DER certificates, each prefixed by
 * a 2-byte big-endian length, run through the real gw_trust_verify_der()
 * against a CA trust and a pinned trust (anchors made in memory at start),
 * then through the verify cache twice. Invariants checked on every input:
 * the verdict is complete (a reason, a message), nothing random is ever
 * accepted (no input can carry a signature of our fresh key), the cached
 * answer equals the uncached one. A trailing byte pair also drives
 * gw_trust_spiffe_match on two strings cut from the input.
 * Seeds: tests/fuzz/trust/ (framed real chains).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "trust.h"
#include "verify_cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw_trust *ca_trust, *pin_trust;
static struct gw_vcache *cache;

/* A fresh self-signed CA: nothing in the corpus can chain to it. */
static X509 *
fresh_ca(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	if (!k || !x || !n)
		abort();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
	X509_NAME_add_entry_by_txt(
		n, "CN", MBSTRING_UTF8, (const unsigned char *)"mtlsgw test root", -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	if (X509_sign(x, k, EVP_sha256()) <= 0)
		abort();
	X509_NAME_free(n);
	EVP_PKEY_free(k);
	return x;
}

static void
init(void)
{
	X509 *ca = fresh_ca();
	STACK_OF(X509) *b = sk_X509_new_null();
	struct gw_cfg_trust cfg = {.mode = GW_TRUST_CA, .max_depth = 4};
	char *spiffe[] = {"spiffe://example.org/ns/prod/*"};
	uint8_t pin[1][32];
	unsigned n = 0;

	sk_X509_push(b, ca);
	cfg.allow.spiffe = spiffe;
	cfg.allow.n_spiffe = 1;
	if (gw_trust_create_bundles(&cfg, "fuzz", &b, 1, &ca_trust) != 0)
		abort();
	X509_digest(ca, EVP_sha256(), pin[0], &n);
	cfg = (struct gw_cfg_trust){.mode = GW_TRUST_PINNED, .max_depth = 4};
	cfg.pins_sha256 = pin;
	cfg.n_pins = 1;
	if (gw_trust_create(&cfg, "fuzz-pin", &pin_trust) != 0)
		abort();
	if (gw_vcache_create(64, 0, &cache) != 0)
		abort();
	sk_X509_pop_free(b, X509_free);
}

static void
check_verdict(int rc, const struct gw_trust_verdict *v, const struct gw_trust_why *w)
{
	if (rc == 0 || v->accepted)
		abort(); /* nothing from the fuzzer can be signed by our fresh key */
	if (rc != -GW_E_TRUST || v->reason == GW_TRUST_R_OK)
		abort();
	/* where words were asked for, there is one NUL-ended sentence */
	if (w != NULL && (w->msg[0] == '\0' || memchr(w->msg, '\0', sizeof(w->msg)) == NULL))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *der[4];
	size_t len[4], off = 0;
	unsigned n = 0;
	struct gw_trust_verdict v;
	struct gw_trust_why w;

	if (ca_trust == NULL)
		init();
	while (n < 4 && off + 2 <= size) {
		size_t l = (size_t)data[off] << 8 | data[off + 1];

		off += 2;
		if (l > size - off)
			l = size - off;
		der[n] = data + off;
		len[n] = l;
		n++;
		off += l;
	}
	if (n == 0)
		return 0;
	check_verdict(gw_trust_verify_der(ca_trust, der, len, n, 0, &v, &w), &v, &w);
	check_verdict(gw_trust_verify_der(pin_trust, der, len, n, 0, &v, &w), &v, &w);
	check_verdict(gw_trust_verify_der(ca_trust, der, len, n, 0, &v, NULL), &v, NULL);

	/* when the blobs parse, the cached path must agree, twice */
	{
		STACK_OF(X509) *rest = sk_X509_new_null();
		X509 *leaf = NULL;
		bool ok = rest != NULL;

		for (unsigned i = 0; i < n && ok; i++) {
			const unsigned char *p = der[i];
			X509 *x = d2i_X509(NULL, &p, (long)len[i]);

			if (x == NULL)
				ok = false;
			else if (i == 0)
				leaf = x;
			else
				sk_X509_push(rest, x);
		}
		if (ok && leaf != NULL) {
			for (int r = 0; r < 2; r++) {
				int rc = gw_trust_verify_cached(
					ca_trust, 1, cache, leaf, rest, 0, &v);

				check_verdict(rc, &v, NULL);
				if (v.cached)
					abort();
			}
		}
		X509_free(leaf);
		sk_X509_pop_free(rest, X509_free);
	}

	/* the rest of the input, if any, is two strings for the SPIFFE matcher */
	if (off < size) {
		size_t rest = size - off, cut = data[off] % (rest + 1);
		char *a = strndup((const char *)data + off, cut);
		char *b = strndup((const char *)data + off + cut, rest - cut);

		if (a && b && gw_trust_spiffe_match(a, b) && strncmp(b, "spiffe://", 9) != 0)
			abort();
		free(a);
		free(b);
	}
	return 0;
}
