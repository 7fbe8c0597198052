/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_x509.c - common/gw_x509: the one X.509 minting the CA backends, the
 * CLI's demo PKI and the HSM's CSRs share. Each case checks what those
 * callers rely on: subjects and SANs parsed strictly, random positive
 * serials, a CA and a leaf with the right extensions that verify against
 * their issuer, a CSR with its SANs, and refusals with a message.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gw_test.h"
#include "gw_x509.h"

/* The extension nid of x as OpenSSL prints it ("" when absent). */
static const char *
ext_text(X509 *x, int nid, char *buf, size_t cap)
{
	int i = X509_get_ext_by_NID(x, nid, -1);
	BIO *b = BIO_new(BIO_s_mem());
	int n = 0;

	buf[0] = '\0';
	if (i >= 0 && b && X509V3_EXT_print(b, X509_get_ext(x, i), 0, 0) == 1)
		n = BIO_read(b, buf, (int)cap - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
	return buf;
}

int
main(void)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *leaf_key = EVP_EC_gen("P-256");
	X509 *ca = NULL;
	char buf[512];

	GW_TEST_BEGIN();
	EXPECT_TRUE(ca_key != NULL && leaf_key != NULL);
	{ /* subjects: "/F=v/..." with '\' escapes; anything else refused */
		X509_NAME *n = NULL;

		EXPECT_OK(gw_x509_name_parse("/CN=a\\/b/O=org", &n));
		if (n) {
			EXPECT_EQ(X509_NAME_entry_count(n), 2);
			EXPECT_TRUE(
				X509_NAME_get_text_by_NID(n, NID_commonName, buf, sizeof(buf)) > 0);
			EXPECT_STREQ(buf, "a/b");
		}
		X509_NAME_free(n);
		n = NULL;
		EXPECT_ERR(gw_x509_name_parse("CN=x", &n), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "subject 'CN=x' must look like /CN=name");
		EXPECT_ERR(gw_x509_name_parse(NULL, &n), -EINVAL);
		EXPECT_ERR(gw_x509_name_parse("/CN", &n), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "'CN' is not FIELD=value");
		EXPECT_ERR(gw_x509_name_parse("/NOPE=x", &n), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "unknown field 'NOPE'");
		EXPECT_TRUE(n == NULL);
	}
	{ /* SANs: DNS, URI (with a scheme), IP; nothing else */
		GENERAL_NAMES *g = NULL;

		EXPECT_OK(gw_x509_san_parse("DNS:a.test,URI:spiffe://td/x,IP:10.0.0.1", &g));
		EXPECT_EQ(sk_GENERAL_NAME_num(g), 3);
		if (sk_GENERAL_NAME_num(g) == 3) {
			EXPECT_EQ(sk_GENERAL_NAME_value(g, 0)->type, GEN_DNS);
			EXPECT_EQ(sk_GENERAL_NAME_value(g, 1)->type, GEN_URI);
			EXPECT_EQ(sk_GENERAL_NAME_value(g, 2)->type, GEN_IPADD);
		}
		GENERAL_NAMES_free(g);
		g = NULL;
		EXPECT_ERR(gw_x509_san_parse("EMAIL:a@b", &g), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "SAN 'EMAIL:a@b' is not DNS:name");
		EXPECT_ERR(gw_x509_san_parse("URI:noscheme", &g), -EINVAL);
		EXPECT_ERR(gw_x509_san_parse("IP:300.1.1.1", &g), -EINVAL);
		EXPECT_ERR(gw_x509_san_parse(",", &g), -EINVAL);
		EXPECT_TRUE(g == NULL);
	}
	{ /* serials: 16 octets, positive, not repeated */
		X509 *a = X509_new(), *b = X509_new();

		EXPECT_OK(gw_x509_serial_rand(a));
		EXPECT_OK(gw_x509_serial_rand(b));
		if (a && b) {
			const ASN1_INTEGER *sa = X509_get0_serialNumber(a);

			EXPECT_EQ(ASN1_STRING_length(sa), 16);
			EXPECT_EQ(ASN1_STRING_type(sa), V_ASN1_INTEGER); /* not negative */
			EXPECT_TRUE(ASN1_INTEGER_cmp(sa, X509_get0_serialNumber(b)) != 0);
		}
		X509_free(a);
		X509_free(b);
		EXPECT_ERR(gw_x509_serial_rand(NULL), -EINVAL);
	}
	{ /* a self-signed CA: pathlen, keyCertSign, SKI = AKI, verifies with itself */
		X509_NAME *n = NULL;
		time_t now = time(NULL);

		EXPECT_OK(gw_x509_name_parse("/CN=test root/O=mtlsgw", &n));
		struct gw_x509_cert_spec s = {.subject = n,
			.pub = ca_key,
			.sign_key = ca_key,
			.not_before = now - 60,
			.not_after = now + 86400,
			.ca = true,
			.pathlen = 1};

		EXPECT_OK(gw_x509_cert_make(&s, &ca));
		X509_NAME_free(n);
		if (ca) {
			EXPECT_EQ(X509_verify(ca, ca_key), 1);
			EXPECT_EQ(X509_check_ca(ca), 1);
			EXPECT_EQ(X509_get_pathlen(ca), 1);
			EXPECT_TRUE(X509_get_key_usage(ca) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
			EXPECT_EQ(
				X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(ca)),
				0);
			EXPECT_TRUE(X509_get0_subject_key_id(ca) != NULL);
			EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(ca),
					  X509_get0_authority_key_id(ca)),
				0);
			EXPECT_EQ(X509_cmp_time(X509_get0_notBefore(ca), &now), -1);
			EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_get0_notAfter(ca), now + 86400), 0);
		}
	}
	{ /* leaves: issued by the CA, default and given EKU, the SAN, RSA key usage */
		X509_NAME *n = NULL;
		X509 *leaf = NULL;
		time_t now = time(NULL);
		EVP_PKEY *rsa = EVP_RSA_gen(2048);

		EXPECT_OK(gw_x509_name_parse("/CN=leaf", &n));
		struct gw_x509_cert_spec s = {.subject = n,
			.pub = leaf_key,
			.issuer = ca,
			.sign_key = ca_key,
			.not_before = now,
			.not_after = now + 3600,
			.pathlen = 5,
			.san = "DNS:a.test,URI:spiffe://td/x"};

		EXPECT_OK(gw_x509_cert_make(&s, &leaf));
		if (leaf && ca) {
			EXPECT_EQ(X509_verify(leaf, ca_key), 1);
			EXPECT_EQ(X509_check_issued(ca, leaf), X509_V_OK);
			EXPECT_EQ(X509_check_ca(leaf), 0);
			EXPECT_TRUE(X509_get_extended_key_usage(leaf) ==
				    (XKU_SSL_SERVER | XKU_SSL_CLIENT));
			EXPECT_TRUE(X509_get_key_usage(leaf) == KU_DIGITAL_SIGNATURE);
			EXPECT_CONTAINS(ext_text(leaf, NID_subject_alt_name, buf, sizeof(buf)),
				"DNS:a.test, URI:spiffe://td/x");
			EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(ca),
					  X509_get0_authority_key_id(leaf)),
				0);
		}
		X509_free(leaf);
		leaf = NULL;
		s.eku = "clientAuth";
		s.san = NULL;
		s.pub = rsa;
		EXPECT_OK(gw_x509_cert_make(&s, &leaf));
		if (leaf) {
			EXPECT_TRUE(X509_get_extended_key_usage(leaf) == XKU_SSL_CLIENT);
			EXPECT_TRUE(X509_get_key_usage(leaf) ==
				    (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT));
			EXPECT_EQ(X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1), -1);
		}
		X509_free(leaf);
		leaf = NULL;
		/* refusals: a SAN OpenSSL cannot read, a wrong key, missing input */
		s.pub = leaf_key;
		s.san = "BOGUS:x";
		EXPECT_ERR(gw_x509_cert_make(&s, &leaf), -GW_E_TLS);
		EXPECT_CONTAINS(gw_err_msg(), "cannot add extension subjectAltName=BOGUS:x");
		s.san = NULL;
		s.sign_key = NULL;
		EXPECT_ERR(gw_x509_cert_make(&s, &leaf), -EINVAL);
		EXPECT_ERR(gw_x509_cert_make(NULL, &leaf), -EINVAL);
		EXPECT_TRUE(leaf == NULL);
		X509_NAME_free(n);
		EVP_PKEY_free(rsa);
	}
	{ /* CSRs: subject, key, SANs; signed by the caller, verifiable */
		X509_NAME *n = NULL;
		GENERAL_NAMES *g = NULL;
		X509_REQ *r = NULL;

		EXPECT_OK(gw_x509_name_parse("/CN=csr", &n));
		EXPECT_OK(gw_x509_san_parse("URI:spiffe://td/csr", &g));
		EXPECT_OK(gw_x509_csr_build(n, leaf_key, g, &r));
		if (r) {
			STACK_OF(X509_EXTENSION) *ex = X509_REQ_get_extensions(r);

			EXPECT_TRUE(X509_REQ_sign(r, leaf_key, EVP_sha256()) > 0);
			EXPECT_EQ(X509_REQ_verify(r, leaf_key), 1);
			EXPECT_EQ(X509_NAME_cmp(X509_REQ_get_subject_name(r), n), 0);
			EXPECT_EQ(X509v3_get_ext_by_NID(ex, NID_subject_alt_name, -1), 0);
			sk_X509_EXTENSION_pop_free(ex, X509_EXTENSION_free);
		}
		X509_REQ_free(r);
		r = NULL;
		EXPECT_OK(gw_x509_csr_build(n, leaf_key, NULL, &r)); /* no SANs: no extension */
		if (r) {
			STACK_OF(X509_EXTENSION) *ex = X509_REQ_get_extensions(r);

			EXPECT_EQ(sk_X509_EXTENSION_num(ex), 0);
			sk_X509_EXTENSION_pop_free(ex, X509_EXTENSION_free);
		}
		X509_REQ_free(r);
		r = NULL;
		EXPECT_ERR(gw_x509_csr_build(NULL, leaf_key, NULL, &r), -EINVAL);
		GENERAL_NAMES_free(g);
		X509_NAME_free(n);
	}
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(leaf_key);
	GW_TEST_END();
}
