/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ca_internal.h - what ca.c shares with the three backends (ca_builtin.c,
 * ca_provided.c, ca_cfssl.c). Not for other modules: they use ca.h.
 *
 * Conventions (as in ca.h): int functions return 0 or a negative code with
 * gw_err's message set (-ENOMEM, -EINVAL, -GW_E_CONFIG for a backend's conf,
 * -GW_E_CA for a certificate or a CA server, -GW_E_STATE for the state
 * store, the -GW_E_HSM_* codes of hsm.h); an X509 / EVP_PKEY returned
 * through an out parameter is the caller's to free. Everything here runs on
 * the control thread with the struct gw_ca it is given: not thread-safe,
 * like the struct gw_ca it works on.
 */
#ifndef GW_CA_INTERNAL_H
#define GW_CA_INTERNAL_H

#include "ca.h"

/* One configured backend. Everything in it is owned by it (ca.c frees it). */
struct gw_ca_be {
	char *name; /* the config's backend name (cfg.name points here) */
	enum gw_ca_type type;
	/* a copy of the config's line: its strings (name, cert, key, url,
	 * profile, ca_file) are strdup'ed by ca.c and owned by this backend;
	 * cert_m borrows the config's bytes during the per-type init only and is
	 * zeroed after it (empty: gw_ca_provided_init reads cfg.cert itself) */
	struct gw_cfg_ca_backend cfg;
	X509 *root;
	X509 *issuer;       /* builtin; cfssl with a CA profile; else NULL */
	X509 *cross;        /* root cross-signed by the previous backend; may be NULL */
	EVP_PKEY *root_key; /* builtin, provided (engine key); NULL for cfssl */
	EVP_PKEY *issuer_key;
	char *root_key_uri, *issuer_key_uri; /* pkcs11: URIs of those keys (no PIN) */
	STACK_OF(X509) * bundle;             /* { root } */
	bool fresh;                          /* created by this start (history "add") */
};

/* The CA module's state (ca.h's opaque struct gw_ca). */
struct gw_ca {
	struct gw_state *st;  /* owned: opened by gw_ca_create */
	struct gw_hsm *hsm;   /* owned: opened by gw_ca_create */
	char token[33];       /* label of the token the CA keys live in */
	char *trust_domain;   /* owned */
	char *enabled;        /* owned: name of the enabled backend */
	struct gw_ca_be **be; /* owned: n_be backends, config order */
	unsigned n_be;
	time_t now; /* 0: real clock (tests set it) */
};

/*
 * Per-type setup: fill be->root (and issuer, keys, bundle) from the state
 * store, the HSM or the CA server, recording a new root in the store.
 * 0, or: builtin -ENOMEM, -EINVAL, -GW_E_CA, -GW_E_STATE, HSM codes;
 * provided -GW_E_CONFIG (cert/key files or URI), -ENOMEM, HSM codes;
 * cfssl -GW_E_CONFIG (no conf.url), -GW_E_CA (server unreachable, a reply
 * that is not a CA certificate, a root that differs from the pinned one),
 * -GW_E_STATE, -ENOMEM. On error be may hold part of it; ca.c frees be.
 */
GW_MUST_CHECK int gw_ca_builtin_init(struct gw_ca *ca, struct gw_ca_be *be);
GW_MUST_CHECK int gw_ca_provided_init(struct gw_ca *ca, struct gw_ca_be *be);
GW_MUST_CHECK int gw_ca_cfssl_init(struct gw_ca *ca, struct gw_ca_be *be);
/*
 * cfssl signs csr (not consumed) for the SPIFFE ID; *out the caller's.
 * What cfssl returns is checked, not trusted: CA:FALSE, the SPIFFE ID as
 * URI SAN, notAfter within now + ttl_s, signed by the backend's root.
 * 0, -GW_E_CA (the server failed or its certificate fails a check), -ENOMEM.
 */
GW_MUST_CHECK int gw_ca_cfssl_sign(struct gw_ca_be *be, X509_REQ *csr, const char *spiffe_id,
	time_t now, uint64_t ttl_s, X509 **out);
/*
 * builtin: issue a new issuer cert for the existing issuer key (renewal),
 * signed by the root key. 0, -GW_E_CA, -ENOMEM, HSM codes; *out the caller's.
 */
GW_MUST_CHECK int gw_ca_builtin_new_issuer(struct gw_ca *ca, struct gw_ca_be *be, X509 **out);
/*
 * cfssl: a CA profile signs an issuer for be->issuer_key_uri; *out NULL
 * (and 0) for a leaf profile. 0, -GW_E_CA, -ENOMEM, HSM codes.
 */
GW_MUST_CHECK int gw_ca_cfssl_new_issuer(struct gw_ca *ca, struct gw_ca_be *be, X509 **out);

/* ---- helpers in ca.c ---- */
/*
 * snprintf into out[len] where a cut result is an error, never used: a
 * shortened label or name would name another object. -EINVAL, saying so.
 */
__attribute__((format(printf, 3, 4))) GW_MUST_CHECK int gw_ca_fmt(
	char *out, size_t len, const char *fmt, ...);
/*
 * The CA key labelled label: generated with a CKA_ID derived from the label,
 * or that exact key (label, CKA_ID, type) reused; any other key under the
 * label is refused (-EEXIST). *key is the caller's.
 */
GW_MUST_CHECK int gw_ca_key_ensure(struct gw_ca *ca, enum gw_key_type t, const char *label,
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
/* x's serial as upper-case hex into out[len]. 0, -ENOMEM (also: too long). */
GW_MUST_CHECK int gw_ca_serial_hex(X509 *x, char *out, size_t len);

#endif /* GW_CA_INTERNAL_H */
