/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mkcorpus.h - the trust test corpus, generated at test time with the
 * OpenSSL C API (no keys committed, dates relative to "now").
 *
 * One PKI shaped like the demo PKI (root -> intermediate -> client leaf with
 * a SPIFFE URI SAN; a second intermediate; a second root for rotation) plus
 * one certificate per way a client chain can be wrong. test_trust.c uses it
 * in memory; the mkcorpus program writes it as PEM files for the
 * integration scripts (tests/integ/trust_*.sh).
 */
#ifndef GW_MKCORPUS_H
#define GW_MKCORPUS_H

#include <stdbool.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* One certificate and its key. */
struct mk_cert {
	X509 *x;
	EVP_PKEY *k;
};

struct mk_corpus {
	time_t now;
	/* the seed table: cert3 root, cert2 intermediate, cert1 leaf */
	struct mk_cert root, inter, leaf;
	struct mk_cert leaf_b;   /* same intermediate, another leaf (spiffe .../ns/dev/web) */
	struct mk_cert inter2;   /* a second intermediate of the same root */
	struct mk_cert leaf2;    /* issued by inter2 */
	struct mk_cert root2;    /* a second root (rotation bundle) */
	struct mk_cert inter_r2; /* root2 -> inter_r2 */
	struct mk_cert leaf_r2;  /* inter_r2 -> leaf_r2 */
	struct mk_cert expired;  /* inter -> expired leaf */
	struct mk_cert notyet;   /* inter -> leaf valid from tomorrow */
	struct mk_cert impostor; /* self-signed, same subject as leaf */
	struct mk_cert forged;   /* issuer name = inter, signed by another key */
	struct mk_cert evil_root, evil_leaf; /* an untrusted CA and its leaf */
	struct mk_cert noeku;                /* inter -> leaf with EKU serverAuth only */
	struct mk_cert sub1, sub2, deep;     /* inter -> sub1 -> sub2 -> deep leaf */
	struct mk_cert nc_ca;                /* root -> CA permitted DNS:.good.example only */
	struct mk_cert nc_ok, nc_bad;        /* nc_ca -> DNS a.good.example / evil.example */
	struct mk_cert revoked;              /* inter -> leaf listed on crl */
	X509_CRL *crl;                       /* inter's CRL listing revoked */
	struct mk_cert inter_rev;            /* root -> intermediate listed on root_crl */
	struct mk_cert leaf_ir;              /* inter_rev -> leaf (itself not revoked) */
	X509_CRL *inter_rev_crl;             /* inter_rev's CRL (empty) */
	X509_CRL *root_crl;                  /* root's CRL listing inter_rev (chain CRL checks) */
	struct mk_cert loop_x, loop_y, loop_leaf; /* X issued by Y, Y by X, leaf by X */
	struct mk_cert selfpin;                   /* self-signed client cert for pinning */
	struct mk_cert srvleaf; /* inter -> leaf, spiffe://example.org/ns/prod/api, no CN rule */
};

/* Build the whole corpus with dates relative to now. Returns 0 or -1. */
int mk_corpus_build(struct mk_corpus *c, time_t now);

void mk_corpus_free(struct mk_corpus *c);

/*
 * After gw_ossl_ec_builtin() (common/gw_ossl.h): every certificate decoded
 * again from DER, as a client's are, and every key replaced by a built-in
 * EC copy so that tests can still sign with it (the gateway signs with the
 * HSM's engine keys). Returns 0 or -1 (with a message on stderr).
 */
int mk_corpus_builtin(struct mk_corpus *c);

/* Write every certificate as DIR/<name>.pem (+ <name>.key.pem, chains, crl). */
int mk_corpus_write(const struct mk_corpus *c, const char *dir);

/*
 * One more certificate for a test: issued by issuer (NULL: self-signed),
 * valid from now + nb to now + na seconds, a CA or a clientAuth leaf, with
 * an optional SAN ("URI:spiffe://..."). Returns 0 or -1.
 */
int mk_issue(struct mk_cert *out, const struct mk_cert *issuer, const char *cn, bool ca, long nb,
	long na, const char *san, long serial);

/* A CRL of ca listing rev (NULL: none), nextUpdate now + next_s seconds. NULL on error. */
X509_CRL *mk_crl_issue(const struct mk_cert *ca, const struct mk_cert *rev, long next_s);

/* Stack helper: a new stack holding (up-ref'd) the given certs, NULL-terminated. */
STACK_OF(X509) * mk_stack(X509 *first, ...);

#endif /* GW_MKCORPUS_H */
