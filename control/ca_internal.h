/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ca_internal.h - what ca.c shares with the three backends (ca_builtin.c,
 * ca_provided.c, ca_cfssl.c). Not for other modules: they use ca.h.
 */
#ifndef GW_CA_INTERNAL_H
#define GW_CA_INTERNAL_H

#include "ca.h"

struct gw_ca_be {
	char *name;
	enum gw_ca_type type;
	struct gw_cfg_ca_backend cfg; /* strings borrowed from be->cfg_copy's owner: see dup */
	X509 *root;
	X509 *issuer;       /* builtin */
	X509 *cross;        /* may be NULL */
	EVP_PKEY *root_key; /* builtin, provided (engine key) */
	EVP_PKEY *issuer_key;
	char *root_key_uri, *issuer_key_uri;
	STACK_OF(X509) * bundle; /* { root } */
	bool fresh;              /* created by this start (history "add") */
};

struct gw_ca {
	struct gw_state *st;
	struct gw_hsm *hsm;
	char token[33];
	char *trust_domain;
	char *enabled;
	struct gw_ca_be **be;
	unsigned n_be;
	time_t now; /* 0: real clock */
};

/* Per-type setup: fill be->root (and issuer, keys) from store/HSM/server. */
int gw_ca_builtin_init(struct gw_ca *ca, struct gw_ca_be *be);
int gw_ca_provided_init(struct gw_ca *ca, struct gw_ca_be *be);
int gw_ca_cfssl_init(struct gw_ca *ca, struct gw_ca_be *be);
/*
 * cfssl signs a CSR (PEM) for the SPIFFE ID; *out the caller's. What cfssl
 * returns is checked, not trusted: CA:FALSE, the SPIFFE ID as URI SAN,
 * notAfter within now + ttl_s, signed by the backend's root.
 */
int gw_ca_cfssl_sign(struct gw_ca_be *be, X509_REQ *csr, const char *spiffe_id, time_t now,
	uint64_t ttl_s, X509 **out);
/* builtin: issue a new issuer cert for the existing issuer key (renewal). */
int gw_ca_builtin_new_issuer(struct gw_ca *ca, struct gw_ca_be *be, X509 **out);
/* cfssl: a CA profile signs an issuer for be->issuer_key_uri; *out NULL for a leaf profile. */
int gw_ca_cfssl_new_issuer(struct gw_ca *ca, struct gw_ca_be *be, X509 **out);

/* Helpers in ca.c. */
/*
 * snprintf into out[len] where a cut result is an error, never used: a
 * shortened label or name would name another object. -EINVAL, saying so.
 */
__attribute__((format(printf, 3, 4))) int gw_ca_fmt(char *out, size_t len, const char *fmt, ...);
/*
 * The CA key labelled label: generated with a CKA_ID derived from the label,
 * or that exact key (label, CKA_ID, type) reused; any other key under the
 * label is refused (-EEXIST). *key is the caller's.
 */
int gw_ca_key_ensure(struct gw_ca *ca, enum gw_key_type t, const char *label,
	char uri[GW_HSM_URI_MAX], EVP_PKEY **key);
/*
 * Make and sign a certificate through gw_x509_cert_make (common/gw_x509.h):
 * subject/pubkey given, issued by issuer_cert (NULL: self-signed with
 * subject), signed with key. ca_cert: CA:TRUE (pathlen given, -1 none) +
 * keyCertSign/cRLSign; else a serverAuth+clientAuth leaf with san (NULL =
 * none). Returns 0 and a new *out (caller frees); -ENOMEM, or -GW_E_CA with
 * gw_err naming what OpenSSL refused. Thread-safe.
 */
GW_MUST_CHECK int gw_ca_make_cert(X509_NAME *subject, EVP_PKEY *pub, X509 *issuer_cert,
	EVP_PKEY *key, time_t nb, time_t na, bool ca_cert, int pathlen, const char *san,
	X509 **out);
int gw_ca_serial_hex(X509 *x, char *out, size_t len);
X509 *gw_ca_pem_read(const char *pem);

#endif /* GW_CA_INTERNAL_H */
