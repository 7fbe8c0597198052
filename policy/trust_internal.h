/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * trust_internal.h - the inside of a struct gw_trust, shared by the two
 * halves of the trust engine: control/trust.c builds it (reads files,
 * precomputes), policy/trust_verify.c judges chains with it. Nobody else
 * includes this: everyone else sees the opaque type of trust_verify.h.
 * Nothing here is written after gw_trust_create() returns.
 */
#ifndef GW_TRUST_INTERNAL_H
#define GW_TRUST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "trust_verify.h"

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

/* SHA-256, fetched once (an implicit fetch per call costs a lookup). MT-safe. */
const EVP_MD *gw_trust_sha256(void);

/* RFC 2253 form of n into buf ("" if n is NULL, "(empty subject)"). MT-safe. */
void gw_trust_name_str(const X509_NAME *n, char *buf, size_t len);

/* SHA-256 of x's DER. Returns 0 or -GW_E_TLS. MT-safe. */
GW_MUST_CHECK int gw_trust_cert_fp(X509 *x, uint8_t out[32]);

/*
 * What is wrong with an allow.spiffe rule, or NULL if nothing: the one
 * definition of a valid pattern, used by the matcher and the rule check.
 */
const char *gw_trust_spiffe_rule_why(const char *rule);

/* Characters of a UTF-8 string of l bytes. */
size_t gw_trust_utf8_chars(const unsigned char *s, size_t l);

#endif /* GW_TRUST_INTERNAL_H */
