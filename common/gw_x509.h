/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_x509.h - X.509 minting shared by the CA backends (control/ca*.c), the
 * CLI's demo PKI (tools/ctl_pki.c) and the HSM's CSRs (hsm/hsm.c): random
 * serials, validity, the extensions of a CA or a leaf, SANs, subjects. It
 * sits in common/ because hsm/ is below control/ in the link order.
 *
 * Errors: 0 or a negative code with gw_err set (message + OpenSSL's reason):
 * -EINVAL for bad input text, -ENOMEM, -GW_E_TLS when OpenSSL refuses.
 * Functions never take ownership of their arguments; *out is the caller's.
 * The date readers at the end serve every module that shows or compares a
 * certificate's validity (CA, config, trust verification).
 * Thread-safe (no shared state); signing with an engine key follows that
 * key's rules.
 */
#ifndef GW_X509_H
#define GW_X509_H

#include <stdbool.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gw_err.h"

/* "/CN=x/O=y" ('\\' escapes '/' and '\\') into a new *out (X509_NAME_free). */
GW_MUST_CHECK int gw_x509_name_parse(const char *s, X509_NAME **out);

/* "DNS:a,URI:spiffe://td/x,IP:1.2.3.4" (only these three) into a new *out. */
GW_MUST_CHECK int gw_x509_san_parse(const char *s, GENERAL_NAMES **out);

/* A random positive 16-octet serial (RFC 5280 4.1.2.2, CA/B 7.1) into x. */
GW_MUST_CHECK int gw_x509_serial_rand(X509 *x);

/*
 * Add extension nid = val (OpenSSL's config syntax, e.g. "critical,CA:TRUE")
 * to x, issued by issuer (x itself when self-signed).
 */
GW_MUST_CHECK int gw_x509_add_ext(X509 *x, X509 *issuer, int nid, const char *val);

/* What gw_x509_cert_make builds. Pointers are borrowed. */
struct gw_x509_cert_spec {
	X509_NAME *subject; /* copied into the certificate */
	EVP_PKEY *pub;      /* the subject's public key */
	X509 *issuer;       /* NULL: self-signed (issuer name = subject) */
	EVP_PKEY *sign_key; /* the issuer's private key (or an HSM handle) */
	time_t not_before;  /* validity, seconds since the epoch */
	time_t not_after;
	bool ca;         /* CA:TRUE + keyCertSign,cRLSign; else a leaf */
	int pathlen;     /* CA only: pathLenConstraint, -1 = none */
	const char *eku; /* leaf only: NULL = "serverAuth,clientAuth" */
	const char *san; /* leaf only: NULL = none; "DNS:a,URI:b" syntax */
};

/*
 * Build and sign (SHA-256) a v3 certificate: random serial, the validity,
 * basicConstraints (critical), keyUsage (critical; a leaf's RSA key also
 * keyEncipherment), a leaf's extendedKeyUsage and SAN, subject and authority
 * key identifiers. *out is the caller's (X509_free).
 */
GW_MUST_CHECK int gw_x509_cert_make(const struct gw_x509_cert_spec *s, X509 **out);

/*
 * An unsigned v1 CSR for name and key's public half, with a SAN extension
 * when sans is not NULL. The caller signs it (X509_REQ_sign) and owns *out.
 */
GW_MUST_CHECK int gw_x509_csr_build(
	X509_NAME *name, EVP_PKEY *key, GENERAL_NAMES *sans, X509_REQ **out);

/* ---- reading certificate dates ---- */

/* t as seconds since the epoch (UTC); 0 when t is NULL or unreadable. */
time_t gw_x509_time(const ASN1_TIME *t);

/*
 * t as "YYYY-MM-DD HH:MM:SS UTC" into buf[len] ("(unknown date)" when t is
 * NULL or unreadable), for messages.
 */
void gw_x509_time_str(const ASN1_TIME *t, char *buf, size_t len);

#endif /* GW_X509_H */
