/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * trust_verify.h - the worker side of the trust engine: would this listener
 * accept this client chain, and if not, why. No config types: a worker
 * compiles this, never config.h.
 *
 * A struct gw_trust is built by control (control/trust.h, gw_trust_create)
 * and immutable from then on. Workers only call gw_trust_verify() on it,
 * concurrently from many lcores: each call uses its own X509_STORE_CTX, and
 * the anchors are handed to OpenSSL as a trusted stack (no X509_STORE, so no
 * store lock on the handshake path). The semantics of pinned / ca / mesh,
 * CRL checks and allow rules are described in control/trust.h.
 */
#ifndef GW_TRUST_VERIFY_H
#define GW_TRUST_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "gw_err.h"
#include "policy_types.h"

/*
 * Why a chain was rejected. X-macro: one list makes the enum, the stable
 * names (counter labels, JSON "check") and GW_TRUST_R__COUNT.
 */
#define GW_TRUST_REASONS(X)                                                              \
	X(OK, "ok")                             /* accepted */                           \
	X(MALFORMED, "malformed")               /* not a parsable certificate */         \
	X(NOT_PINNED, "not_pinned")             /* pinned mode, fingerprint differs */   \
	X(UNTRUSTED_ISSUER, "untrusted_issuer") /* no path to an anchor */               \
	X(SELF_SIGNED, "self_signed")           /* self-signed, not an anchor */         \
	X(EXPIRED, "expired")                   /* notAfter passed */                    \
	X(NOT_YET_VALID, "not_yet_valid")       /* notBefore in the future */            \
	X(BAD_SIGNATURE, "bad_signature")       /* a signature does not verify */        \
	X(REVOKED, "revoked")                   /* listed on its issuer's CRL */         \
	X(CRL, "crl")                           /* CRL missing, expired, bad */          \
	X(EKU, "eku")                           /* not allowed for client auth */        \
	X(TOO_DEEP, "too_deep")                 /* more intermediates than max_depth */  \
	X(NAME_CONSTRAINTS, "name_constraints") /* violates an issuer's constraints */   \
	X(NOT_CA, "not_ca")                     /* an issuer is not a CA */              \
	X(NOT_ALLOWED, "not_allowed")           /* trusted, but no allow rule matches */ \
	X(OTHER, "other")                       /* any other OpenSSL verify error */     \
	X(INTERNAL, "internal")                 /* out of memory, OpenSSL failure */

enum gw_trust_reason {
#define GW_TRUST_R_ENUM_(n, s) GW_TRUST_R_##n,
	GW_TRUST_REASONS(GW_TRUST_R_ENUM_)
#undef GW_TRUST_R_ENUM_
		GW_TRUST_R__COUNT
};

#define GW_TRUST_SUBJECT_MAX 256
#define GW_TRUST_SPIFFE_ID_MAX 2048 /* bytes; SPIFFE ID spec, "Maximum length" */
#define GW_TRUST_DNS_MAX 253        /* characters of a DNS name (RFC 1035) */
#define GW_TRUST_DNS_LABEL_MAX 63
#define GW_TRUST_CN_MAX 64 /* characters; X.509 ub-common-name (RFC 5280) */
#define GW_TRUST_FP_LEN 32
#define GW_TRUST_MSG_MAX 512

/*
 * The outcome of one verification: a code and the few facts callers act on.
 * Filled completely by gw_trust_verify() on every path (no pointers into
 * OpenSSL objects: it outlives them). No words: formatting a sentence (a
 * BIO for the subject, a 512-byte message) costs more than a cached verify,
 * so only the callers that show one ask for it (gw_trust_verify_why).
 */
struct gw_trust_verdict {
	bool accepted;
	enum gw_trust_reason reason; /* GW_TRUST_R_OK when accepted */
	int depth;                   /* certificate the reason is about: 0 = leaf; -1 = none */
	int ossl_error;              /* X509_V_ERR_* behind the reason, 0 if none */
	bool cached;                 /* set by gw_vcache users: answered from the cache */
	time_t until;                /* accepted: when the acceptance lapses by the clock
					alone (gw_trust_verify_until's), else 0 */
};

/*
 * The words of a verdict, for where one is shown (`mtlsgw-ctl trust check`,
 * a log line of a rejection, tests). Filled by the _why variants only.
 */
struct gw_trust_why {
	char subject
		[GW_TRUST_SUBJECT_MAX]; /* subject of the certificate v->depth names, RFC 2253 */
	char msg[GW_TRUST_MSG_MAX];     /* one line a person can act on, e.g.
					       "certificate 'CN=x' expired on ..." */
};

/* Opaque, immutable once created. */
struct gw_trust;

/* Free. NULL is fine. Only once no reader can still use it (snapshots do this). */
void gw_trust_destroy(struct gw_trust *t);

/*
 * Verify a client chain: leaf plus the certificates the client sent after
 * it (chain_untrusted, may be NULL or may start with the leaf again, as
 * SSL_get_peer_cert_chain() does on a server: a duplicate leaf is skipped).
 * Nothing is consumed or modified. now = 0 means the current time; tests
 * pass a fixed time.
 * Returns 0 (accepted) or -GW_E_TRUST (rejected, v says why); -EINVAL for
 * NULL t/leaf/v. v is always filled. Does not touch the gw_err slot on
 * rejection (the dataplane counts v->reason instead).
 * MT-safe: any number of threads may verify against one gw_trust at once.
 * Usable from an OpenSSL cert verify callback (it builds its own
 * X509_STORE_CTX and uses no SSL state).
 */
GW_MUST_CHECK int gw_trust_verify(const struct gw_trust *t, X509 *leaf,
	STACK_OF(X509) * chain_untrusted, time_t now, struct gw_trust_verdict *v);

/*
 * gw_trust_verify, plus the words: why (not NULL) gets the subject and one
 * sentence, on acceptance too ("certificate '...' accepted by listener
 * '...'"). Same returns; MT-safe. For display paths only.
 */
GW_MUST_CHECK int gw_trust_verify_why(const struct gw_trust *t, X509 *leaf,
	STACK_OF(X509) * chain_untrusted, time_t now, struct gw_trust_verdict *v,
	struct gw_trust_why *why);

/*
 * Verify a chain given as DER blobs (der[0] = leaf). A blob that does not
 * parse is a rejection with reason MALFORMED naming its position. why
 * (may be NULL) gets the words, as gw_trust_verify_why. Same returns as
 * gw_trust_verify.
 */
GW_MUST_CHECK int gw_trust_verify_der(const struct gw_trust *t, const uint8_t *const *der,
	const size_t *len, unsigned n, time_t now, struct gw_trust_verdict *v,
	struct gw_trust_why *why);

/*
 * When an accepted chain stops being acceptable by the clock alone: the
 * earliest notAfter among the certificates the chain check used (leaf,
 * intermediates, anchor) and, with CRLs, their earliest nextUpdate.
 * Returns 0 and *until, -GW_E_TRUST if the chain is not accepted (v filled
 * as by gw_trust_verify if v is not NULL). Used by the verify cache.
 */
GW_MUST_CHECK int gw_trust_verify_until(const struct gw_trust *t, X509 *leaf,
	STACK_OF(X509) * chain_untrusted, time_t now, struct gw_trust_verdict *v, time_t *until);

/*
 * SHA-256 over the presented chain, as the verify cache keys it: for each
 * certificate (leaf first, a duplicated leaf at the head of chain skipped),
 * its DER length as 4 big-endian bytes, then the DER. Returns 0, or
 * -GW_E_TLS / -ENOMEM. MT-safe.
 */
GW_MUST_CHECK int gw_trust_chain_digest(
	X509 *leaf, STACK_OF(X509) * chain_untrusted, uint8_t out[32]);

/* A unique id per gw_trust created in this process (never reused). */
uint64_t gw_trust_id(const struct gw_trust *t);

enum gw_trust_mode gw_trust_mode(const struct gw_trust *t);

/* Number of anchors (ca/mesh) or pins (pinned). */
unsigned gw_trust_n_anchors(const struct gw_trust *t);

/* Stable name of a reason ("expired", "not_pinned" ...). */
const char *gw_trust_reason_name(enum gw_trust_reason r);

/*
 * Does SPIFFE ID id match rule (see above)? A rule that
 * gw_trust_spiffe_rule_check() refuses, or an id longer than
 * GW_TRUST_SPIFFE_ID_MAX, matches nothing. NULL-safe (false). MT-safe.
 */
bool gw_trust_spiffe_match(const char *rule, const char *id);

/*
 * Does DNS name match rule, case-insensitively? "*.example.com" matches
 * exactly one label before "example.com"; any other rule only itself. Serves
 * the dns allow rules and the listeners' SNI names. NULL-safe (false).
 * MT-safe.
 */
bool gw_trust_dns_match(const char *rule, const char *name);

#endif /* GW_TRUST_VERIFY_H */
