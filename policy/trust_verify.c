/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * trust_verify.c - the verify half of the trust engine (trust_verify.h has
 * the semantics): matching allow rules, one X509_STORE_CTX per call with the
 * anchors as a trusted stack (X509_STORE_CTX_set0_trusted_stack), the CRLs as
 * a CRL stack and a copy of the gw_trust's X509_VERIFY_PARAM, then OpenSSL's
 * error turned into one of our reasons and a sentence naming the certificate
 * and what to do about it. Runs on worker lcores, concurrently; never writes
 * to the gw_trust. The build half (files, anchors, fingerprint) is
 * control/trust.c.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gw_x509.h"
#include "trust_internal.h"

static const char *const reason_names[] = {
#define GW_TRUST_R_NAME_(n, s) s,
	GW_TRUST_REASONS(GW_TRUST_R_NAME_)
#undef GW_TRUST_R_NAME_
};

const char *
gw_trust_reason_name(enum gw_trust_reason r)
{
	if ((unsigned)r >= GW_TRUST_R__COUNT)
		return "unknown";
	return reason_names[r];
}

uint64_t
gw_trust_id(const struct gw_trust *t)
{
	return t ? t->id : 0;
}

enum gw_trust_mode
gw_trust_mode(const struct gw_trust *t)
{
	return t->mode;
}

unsigned
gw_trust_n_anchors(const struct gw_trust *t)
{
	if (t == NULL)
		return 0;
	return t->mode == GW_TRUST_PINNED ? t->n_pins : (unsigned)sk_X509_num(t->anchors);
}

/*
 * The verify errors that mean "no usable CRL" (missing, stale, not yet
 * valid, badly signed, out of scope): one list for the rejection's words
 * and for crl_anchor_cb, which forgives them on the anchor.
 */
#define CRL_UNUSABLE(X)                    \
	X(UNABLE_TO_GET_CRL)               \
	X(UNABLE_TO_GET_CRL_ISSUER)        \
	X(CRL_HAS_EXPIRED)                 \
	X(CRL_NOT_YET_VALID)               \
	X(CRL_SIGNATURE_FAILURE)           \
	X(UNABLE_TO_DECRYPT_CRL_SIGNATURE) \
	X(DIFFERENT_CRL_SCOPE)             \
	X(KEYUSAGE_NO_CRL_SIGN)
#define CRL_CASE(e) case X509_V_ERR_##e:

/* ---- SHA-256, fetched once (implicit fetches per call cost a lookup) ---- */

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *
gw_trust_sha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md;
}

/* ---- names and dates for messages ---- */

void
gw_trust_name_str(const X509_NAME *n, char *buf, size_t len)
{
	BIO *b;
	int r;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (n == NULL)
		return;
	b = BIO_new(BIO_s_mem());
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		r = BIO_read(b, buf, (int)len - 1);
		buf[r > 0 ? r : 0] = '\0';
	}
	BIO_free(b);
	if (buf[0] == '\0')
		snprintf(buf, len, "(empty subject)");
}

int
gw_trust_cert_fp(X509 *x, uint8_t out[32])
{
	unsigned int n = 0;

	if (X509_digest(x, gw_trust_sha256(), out, &n) != 1 || n != 32) {
		ERR_clear_error();
		return -GW_E_TLS;
	}
	return 0;
}

static void
hex_fp(const uint8_t fp[32], char *buf, size_t len)
{
	size_t o = 0;

	for (unsigned i = 0; i < 32 && o + 3 < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%02x", fp[i]);
}

static void
free_strv(char **v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
gw_trust_destroy(struct gw_trust *t)
{
	if (t == NULL)
		return;
	sk_X509_pop_free(t->anchors, X509_free);
	sk_X509_CRL_pop_free(t->crls, X509_CRL_free);
	X509_VERIFY_PARAM_free(t->param);
	free(t->pins);
	free_strv(t->allow.spiffe, t->allow.n_spiffe);
	free_strv(t->allow.dns, t->allow.n_dns);
	free_strv(t->allow.cn, t->allow.n_cn);
	free(t);
}

/*
 * What is wrong with an allow.spiffe rule, or NULL if nothing. The one
 * definition of a valid pattern: the matcher below relies on it.
 */
const char *
gw_trust_spiffe_rule_why(const char *rule)
{
	const char *p, *seg;
	size_t n;

	if (rule == NULL || strncmp(rule, "spiffe://", 9) != 0)
		return "is not a SPIFFE ID pattern (expected spiffe://TRUST-DOMAIN/path, e.g. "
		       "spiffe://example.org/ns/prod/**)";
	if (strlen(rule) > GW_TRUST_SPIFFE_ID_MAX)
		return "is longer than a SPIFFE ID may be (2048 bytes)";
	p = rule + 9;
	n = strcspn(p, "/");
	if (n == 0)
		return "has no trust domain (expected spiffe://TRUST-DOMAIN/path)";
	if (memchr(p, '*', n) != NULL)
		return "has a wildcard in the trust domain: the trust domain must be exact";
	for (p += n; *p != '\0'; p += n) {
		seg = ++p; /* past the '/' */
		n = strcspn(seg, "/");
		if (n == 0)
			return "has an empty path segment ('//' or a trailing '/'): no SPIFFE ID "
			       "has one, so it would match nothing";
		if (memchr(seg, '*', n) == NULL)
			continue;
		if (n == 1)
			continue; /* "*": exactly one segment */
		if (n == 2 && seg[1] == '*') {
			if (seg[2] != '\0')
				return "has '**' before the last segment: '**' (one or more "
				       "segments) may only end a pattern";
			continue;
		}
		return "has '*' inside a path segment: a wildcard must be a whole segment "
		       "('*' = exactly one segment, a last '**' = one or more)";
	}
	return NULL;
}

bool
gw_trust_spiffe_match(const char *rule, const char *id)
{
	const char *r, *i;

	if (gw_trust_spiffe_rule_why(rule) != NULL || id == NULL ||
		strncmp(id, "spiffe://", 9) != 0 ||
		strnlen(id, GW_TRUST_SPIFFE_ID_MAX + 1) > GW_TRUST_SPIFFE_ID_MAX)
		return false;
	r = rule + 9;
	i = id + 9;
	/* trust domain: exact, never a wildcard */
	{
		size_t rl = strcspn(r, "/"), il = strcspn(i, "/");

		if (rl == 0 || rl != il || strncmp(r, i, rl) != 0)
			return false;
		r += rl;
		i += il;
	}
	/* then segment by segment; "*" is one non-empty segment, a last "**" one or more */
	while (*r != '\0' || *i != '\0') {
		size_t rl, il;

		if (*r != '/' || *i != '/')
			return false;
		r++;
		i++;
		rl = strcspn(r, "/");
		il = strcspn(i, "/");
		if (il == 0)
			return false; /* "spiffe://td/a//b" or a trailing '/' */
		if (rl == 2 && r[0] == '*' && r[1] == '*') {
			/* the rest of the ID: non-empty segments only */
			for (i += il; *i != '\0'; i += il) {
				il = strcspn(++i, "/");
				if (il == 0)
					return false;
			}
			return true;
		}
		if (!(rl == 1 && r[0] == '*') && (rl != il || strncmp(r, i, rl) != 0))
			return false;
		r += rl;
		i += il;
	}
	return true;
}

bool
gw_trust_dns_match(const char *rule, const char *name)
{
	if (rule == NULL || name == NULL)
		return false;
	if (strncmp(rule, "*.", 2) == 0) {
		const char *dot = strchr(name, '.');

		/* "*.example.com" matches exactly one label */
		return dot != NULL && dot != name && strcasecmp(dot + 1, rule + 2) == 0;
	}
	return strcasecmp(rule, name) == 0;
}

/*
 * Set the words of a verdict (truncated to GW_TRUST_MSG_MAX, by design).
 * w == NULL (the handshake path) formats nothing.
 */
static void msgf(struct gw_trust_why *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
msgf(struct gw_trust_why *w, const char *fmt, ...)
{
	va_list ap;

	if (w == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
	va_end(ap);
}

/* The subject words of w, "" without w (arguments of a msgf that formats nothing). */
static const char *
subj(const struct gw_trust_why *w)
{
	return w != NULL ? w->subject : "";
}

/* Put x's subject into w (a BIO and a print: only when words are wanted). */
static void
subject_set(struct gw_trust_why *w, X509 *x)
{
	if (w != NULL)
		gw_trust_name_str(X509_get_subject_name(x), w->subject, sizeof(w->subject));
}

/* Append to a message without overflowing it. */
static void catf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
catf(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

static void
rules_str(char *buf, size_t len, char *const *rules, unsigned n)
{
	buf[0] = '\0';
	for (unsigned i = 0; i < n; i++)
		catf(buf, len, "%s%s", i ? ", " : "", rules[i]);
}

/* RFC 1035: at most 253 characters, each label 1..63 (a trailing root dot allowed). */
static bool
dns_name_fits(const unsigned char *s, size_t l)
{
	size_t label = 0;

	if (l > 0 && s[l - 1] == '.')
		l--;
	if (l == 0 || l > GW_TRUST_DNS_MAX)
		return false;
	for (size_t i = 0; i < l; i++) {
		if (s[i] != '.') {
			if (++label > GW_TRUST_DNS_LABEL_MAX)
				return false;
			continue;
		}
		if (label == 0)
			return false;
		label = 0;
	}
	return label > 0;
}

/* Characters (not bytes) of a UTF-8 string: a CN's limit counts characters. */
size_t
gw_trust_utf8_chars(const unsigned char *s, size_t l)
{
	size_t n = 0;

	for (size_t i = 0; i < l; i++)
		n += (s[i] & 0xc0) != 0x80;
	return n;
}

/* A name we cannot judge whole: reject the client as malformed. */
static void malformed(struct gw_trust_verdict *v, struct gw_trust_why *w, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
malformed(struct gw_trust_verdict *v, struct gw_trust_why *w, const char *fmt, ...)
{
	va_list ap;

	v->reason = GW_TRUST_R_MALFORMED;
	v->depth = 0;
	if (w == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
	va_end(ap);
}

/*
 * The allow check on an accepted leaf. Returns true if admitted; fills v if
 * not. Every name is judged whole (trust.h): one that does not fit what it
 * may be is "malformed", never cut to a buffer and then matched.
 */
static bool
allow_check(
	const struct gw_trust *t, X509 *leaf, struct gw_trust_verdict *v, struct gw_trust_why *w)
{
	const struct gw_trust_rules *a = &t->allow;
	GENERAL_NAMES *sans;
	X509_NAME *sn = X509_get_subject_name(leaf);
	char spiffe[GW_TRUST_SPIFFE_ID_MAX + 1] = "", dns[GW_TRUST_DNS_MAX + 2] = "", rules[256];
	unsigned char *cn = NULL;
	unsigned n_spiffe = 0;
	bool ok = false, bad = false, cn_one = false;
	int cn_len = -1, idx;

	if (a->n_spiffe == 0 && a->n_dns == 0 && a->n_cn == 0)
		return true;
	subject_set(w, leaf);

	sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; i < sk_GENERAL_NAME_num(sans) && !bad; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *s;
		int l;

		if (g->type != GEN_URI && g->type != GEN_DNS)
			continue;
		s = ASN1_STRING_get0_data(g->d.ia5);
		l = ASN1_STRING_length(g->d.ia5);
		if (g->type == GEN_URI && l > 9 &&
			strncasecmp((const char *)s, "spiffe://", 9) == 0) {
			/* embedded NULs would let "a\0/evil" pass a strcmp */
			if (l > GW_TRUST_SPIFFE_ID_MAX || memchr(s, '\0', (size_t)l) != NULL) {
				malformed(v, w,
					"certificate '%s' has a SPIFFE ID (URI SAN) of %d bytes%s: "
					"a SPIFFE ID is at most %d bytes of text, so it is not "
					"judged",
					subj(w), l,
					l > GW_TRUST_SPIFFE_ID_MAX ? "" : " with a NUL byte",
					GW_TRUST_SPIFFE_ID_MAX);
				bad = true;
				break;
			}
			if (n_spiffe++ == 0) {
				memcpy(spiffe, s, (size_t)l);
				spiffe[l] = '\0';
			}
		} else if (g->type == GEN_DNS && a->n_dns > 0) {
			char name[GW_TRUST_DNS_MAX + 2];

			if (l <= 0 || memchr(s, '\0', (size_t)l) != NULL ||
				!dns_name_fits(s, (size_t)l)) {
				malformed(v, w,
					"certificate '%s' has a DNS name (SAN) of %d characters "
					"that is not a DNS name: at most %d characters, labels of "
					"1..%d, no NUL",
					subj(w), l, GW_TRUST_DNS_MAX, GW_TRUST_DNS_LABEL_MAX);
				bad = true;
				break;
			}
			memcpy(name, s, (size_t)l); /* fits: l <= GW_TRUST_DNS_MAX + 1 */
			name[l] = '\0';
			for (unsigned r = 0; r < a->n_dns && !ok; r++)
				ok = gw_trust_dns_match(a->dns[r], name);
			if (dns[0] == '\0')
				memcpy(dns, name, (size_t)l + 1);
		}
	}
	GENERAL_NAMES_free(sans);
	if (bad)
		return false;

	if (a->n_cn > 0 && (idx = X509_NAME_get_index_by_NID(sn, NID_commonName, -1)) >= 0) {
		cn_one = X509_NAME_get_index_by_NID(sn, NID_commonName, idx) < 0;
		cn_len = ASN1_STRING_to_UTF8(
			&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(sn, idx)));
		if (cn_len < 0 || gw_trust_utf8_chars(cn, (size_t)cn_len) > GW_TRUST_CN_MAX) {
			malformed(v, w,
				"certificate '%s' has a subject CN of %d bytes%s: a CN is at most "
				"%d characters (X.509 ub-common-name), so it is not judged",
				subj(w), cn_len, cn_len < 0 ? " that is not text" : "",
				GW_TRUST_CN_MAX);
			OPENSSL_free(cn);
			ERR_clear_error();
			return false;
		}
		/* two CNs are ambiguous, a NUL could hide a suffix: neither ever matches */
		cn_one = cn_one && memchr(cn, '\0', (size_t)cn_len) == NULL;
	}

	/* an X509-SVID carries exactly one SPIFFE ID; two is ambiguous, never a match */
	if (!ok && n_spiffe == 1)
		for (unsigned r = 0; r < a->n_spiffe && !ok; r++)
			ok = gw_trust_spiffe_match(a->spiffe[r], spiffe);
	if (!ok && cn_one)
		for (unsigned r = 0; r < a->n_cn && !ok; r++)
			ok = strcmp(a->cn[r], (const char *)cn) == 0;
	ERR_clear_error();
	if (ok) {
		OPENSSL_free(cn);
		return true;
	}

	v->reason = GW_TRUST_R_NOT_ALLOWED;
	v->depth = 0;
	if (w == NULL) {
		OPENSSL_free(cn);
		return false;
	}
	w->msg[0] = '\0';
	if (a->n_spiffe == 0)
		catf(w->msg, sizeof(w->msg), "certificate '%s': ", w->subject);
	if (a->n_spiffe > 0) {
		rules_str(rules, sizeof(rules), a->spiffe, a->n_spiffe);
		if (n_spiffe == 1 && strlen(spiffe) > 160) /* keep the rules in the line */
			catf(w->msg, sizeof(w->msg),
				"SPIFFE ID %.160s... (%zu bytes) not allowed by rule%s %s", spiffe,
				strlen(spiffe), a->n_spiffe > 1 ? "s" : "", rules);
		else if (n_spiffe == 1)
			catf(w->msg, sizeof(w->msg), "SPIFFE ID %s not allowed by rule%s %s",
				spiffe, a->n_spiffe > 1 ? "s" : "", rules);
		else if (n_spiffe == 0)
			catf(w->msg, sizeof(w->msg),
				"certificate '%s' has no SPIFFE ID (URI SAN) but the listener "
				"allows "
				"only %s",
				w->subject, rules);
		else
			catf(w->msg, sizeof(w->msg),
				"certificate '%s' has %u SPIFFE IDs (an X509-SVID carries exactly "
				"one)",
				w->subject, n_spiffe);
	}
	if (a->n_dns > 0) {
		rules_str(rules, sizeof(rules), a->dns, a->n_dns);
		catf(w->msg, sizeof(w->msg), "%sDNS name %s%s%s not allowed by %s",
			a->n_spiffe ? "; " : "", dns[0] ? "'" : "", dns[0] ? dns : "(none)",
			dns[0] ? "'" : "", rules);
	}
	if (a->n_cn > 0) {
		rules_str(rules, sizeof(rules), a->cn, a->n_cn);
		if (cn_len >= 0 && !cn_one)
			catf(w->msg, sizeof(w->msg),
				"%sthe subject has more than one CN (or a NUL in it), which no "
				"cn rule matches",
				a->n_spiffe || a->n_dns ? "; " : "");
		else
			catf(w->msg, sizeof(w->msg), "%sCN '%s' not allowed by %s",
				a->n_spiffe || a->n_dns ? "; " : "",
				cn_len > 0 ? (const char *)cn : "", rules);
	}
	OPENSSL_free(cn);
	return false;
}

/* ---- the verification ---- */

static void
verdict_init(struct gw_trust_verdict *v, struct gw_trust_why *w)
{
	memset(v, 0, sizeof(*v));
	if (w != NULL)
		memset(w, 0, sizeof(*w));
	v->reason = GW_TRUST_R_INTERNAL;
	v->depth = -1;
}

/* Turn OpenSSL's verify error into a reason and a sentence. */
static void
explain(const struct gw_trust *t, X509_STORE_CTX *ctx, X509 *leaf, struct gw_trust_verdict *v,
	struct gw_trust_why *w)
{
	int err = X509_STORE_CTX_get_error(ctx);
	int depth = X509_STORE_CTX_get_error_depth(ctx);
	X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
	char when[64] = "", issuer[GW_TRUST_SUBJECT_MAX] = "";
	const char *s = subj(w);

	if (cur == NULL) {
		cur = leaf;
		depth = 0;
	}
	v->ossl_error = err;
	v->depth = depth;
	subject_set(w, cur);
	if (w != NULL)
		gw_trust_name_str(X509_get_issuer_name(cur), issuer, sizeof(issuer));

	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		v->reason = GW_TRUST_R_EXPIRED;
		gw_x509_time_str(X509_get0_notAfter(cur), when, sizeof(when));
		msgf(w, "certificate '%s' expired on %s", s, when);
		break;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		v->reason = GW_TRUST_R_NOT_YET_VALID;
		gw_x509_time_str(X509_get0_notBefore(cur), when, sizeof(when));
		msgf(w, "certificate '%s' is not valid yet: not before %s (check the clocks)", s,
			when);
		break;
	case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
	case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
		v->reason = GW_TRUST_R_MALFORMED;
		msgf(w, "certificate '%s' has a malformed validity date", s);
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		v->reason = GW_TRUST_R_UNTRUSTED_ISSUER;
		if (depth == 0)
			msgf(w,
				"certificate '%s': issuer '%s' not trusted (unable to get issuer "
				"certificate: the client must send its intermediate, or trust it "
				"as an anchor)",
				s, issuer);
		else
			msgf(w,
				"certificate '%s': issuer '%s' not trusted (unable to get issuer "
				"certificate: that CA is not among listener '%s' trust anchors)",
				s, issuer, t->name);
		break;
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		v->reason = GW_TRUST_R_SELF_SIGNED;
		msgf(w, "certificate '%s' is self-signed and not a trust anchor of listener '%s'",
			s, t->name);
		break;
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		v->reason = GW_TRUST_R_SELF_SIGNED;
		msgf(w,
			"the chain ends in self-signed root '%s', which is not a trust anchor of "
			"listener '%s'",
			s, t->name);
		break;
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
	case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
		v->reason = GW_TRUST_R_BAD_SIGNATURE;
		msgf(w,
			"signature on certificate '%s' does not verify with the key of issuer "
			"'%s' (forged or corrupted)",
			s, issuer);
		break;
	case X509_V_ERR_CERT_REVOKED: {
		char serial[80] = "?";
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cur), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;

		if (hex)
			snprintf(serial, sizeof(serial), "%s", hex);
		OPENSSL_free(hex);
		BN_free(bn);
		v->reason = GW_TRUST_R_REVOKED;
		msgf(w, "certificate '%s' (serial %s) is revoked by the CRL of '%s'", s, serial,
			issuer);
		break;
	}
		CRL_UNUSABLE(CRL_CASE)
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
		v->reason = GW_TRUST_R_CRL;
		msgf(w,
			"no usable CRL from '%s' for certificate '%s' (%s): give a current CRL "
			"of that CA in trust.crl",
			issuer, s, X509_verify_cert_error_string(err));
		break;
	case X509_V_ERR_INVALID_PURPOSE: {
		uint32_t xku = X509_get_extended_key_usage(cur);

		v->reason = GW_TRUST_R_EKU;
		if (xku != UINT32_MAX && !(xku & XKU_SSL_CLIENT))
			msgf(w,
				"certificate '%s' is missing clientAuth extended key usage (it "
				"may not be used as a TLS client certificate)",
				s);
		else
			msgf(w,
				"certificate '%s' may not be used for TLS client authentication "
				"(its key usage lacks digitalSignature)",
				s);
		break;
	}
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
		v->reason = GW_TRUST_R_TOO_DEEP;
		msgf(w,
			"chain is too deep at certificate '%s': listener '%s' allows at most %u "
			"intermediate CA%s between leaf and anchor (max_depth)",
			s, t->name, t->max_depth, t->max_depth == 1 ? "" : "s");
		break;
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
		v->reason = GW_TRUST_R_TOO_DEEP;
		msgf(w,
			"chain is too deep at certificate '%s': a CA's pathLenConstraint is "
			"exceeded",
			s);
		break;
	case X509_V_ERR_PERMITTED_VIOLATION:
	case X509_V_ERR_EXCLUDED_VIOLATION:
	case X509_V_ERR_SUBTREE_MINMAX:
	case X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE:
	case X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX:
	case X509_V_ERR_UNSUPPORTED_NAME_SYNTAX:
#ifdef X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS
	case X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS:
#endif
		v->reason = GW_TRUST_R_NAME_CONSTRAINTS;
		msgf(w, "certificate '%s' violates the name constraints of an issuing CA (%s)", s,
			X509_verify_cert_error_string(err));
		break;
	case X509_V_ERR_INVALID_CA:
	case X509_V_ERR_INVALID_NON_CA:
		v->reason = GW_TRUST_R_NOT_CA;
		msgf(w, "certificate '%s' issues others but is not a valid CA certificate (%s)", s,
			X509_verify_cert_error_string(err));
		break;
	case X509_V_ERR_OUT_OF_MEM:
		v->reason = GW_TRUST_R_INTERNAL;
		msgf(w, "out of memory while verifying '%s'", s);
		break;
	default:
		v->reason = GW_TRUST_R_OTHER;
		msgf(w, "certificate '%s' rejected: %s", s, X509_verify_cert_error_string(err));
		break;
	}
}

/*
 * SAN values come from the client verbatim: a URI SAN with a newline or an
 * escape sequence must not forge a log line or a terminal. Subjects are
 * already escaped by the RFC 2253 printer.
 */
static void
one_line(char *msg)
{
	for (unsigned char *p = (unsigned char *)msg; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
}

static int
reject_internal(struct gw_trust_verdict *v, struct gw_trust_why *w, const char *what)
{
	ERR_clear_error();
	v->accepted = false;
	v->reason = GW_TRUST_R_INTERNAL;
	msgf(w, "internal error while verifying: %s", what);
	return -GW_E_TRUST;
}

/*
 * crl_check chain asks OpenSSL for CRLs of every certificate in the path
 * (X509_V_FLAG_CRL_CHECK_ALL), the anchor included. The anchor is trusted
 * by configuration and, as a partial-chain intermediate, its own issuer is
 * not even known: a CRL that is missing or unusable for it is not a reason
 * to reject (trust.h). A CRL that does list the anchor still rejects.
 */
static int
crl_anchor_cb(int ok, X509_STORE_CTX *ctx)
{
	int err = X509_STORE_CTX_get_error(ctx);
	int depth = X509_STORE_CTX_get_error_depth(ctx);

	if (ok || depth < X509_STORE_CTX_get_num_untrusted(ctx))
		return ok;
	switch (err) {
		CRL_UNUSABLE(CRL_CASE)
		/* the anchor (trusted stack), not a certificate the client vouched for */
		X509_STORE_CTX_set_error(ctx, X509_V_OK);
		return 1;
	default:
		return ok;
	}
}

static int
verify_core(const struct gw_trust *t, X509 *leaf, STACK_OF(X509) * chain, time_t now,
	struct gw_trust_verdict *v, struct gw_trust_why *w, time_t *until)
{
	STACK_OF(X509) *untrusted = NULL, *pinned = NULL, *trusted;
	X509_STORE_CTX *ctx = NULL;
	int rc = -GW_E_TRUST;
	int start = 0;

	if (v == NULL)
		return -EINVAL;
	verdict_init(v, w);
	if (t == NULL || leaf == NULL) {
		msgf(w, "no certificate to verify");
		return -EINVAL;
	}

	/* on a server, SSL_get_peer_cert_chain() repeats the leaf first */
	if (sk_X509_num(chain) > 0 && X509_cmp(sk_X509_value(chain, 0), leaf) == 0)
		start = 1;
	untrusted = sk_X509_new_reserve(NULL, sk_X509_num(chain) > 0 ? sk_X509_num(chain) : 1);
	if (untrusted == NULL)
		return reject_internal(v, w, "out of memory");
	for (int i = start; i < sk_X509_num(chain); i++)
		(void)sk_X509_push(untrusted, sk_X509_value(chain, i)); /* reserved: cannot fail */

	if (t->mode == GW_TRUST_PINNED) {
		uint8_t fp[32];
		bool hit = false;

		if (gw_trust_cert_fp(leaf, fp) < 0) {
			rc = reject_internal(v, w, "cannot hash the leaf");
			goto out;
		}
		for (unsigned i = 0; i < t->n_pins && !hit; i++)
			hit = CRYPTO_memcmp(t->pins[i], fp, 32) == 0;
		if (!hit) {
			char hex[72] = "";

			hex_fp(fp, hex, sizeof(hex));
			v->reason = GW_TRUST_R_NOT_PINNED;
			v->depth = 0;
			subject_set(w, leaf);
			msgf(w,
				"certificate '%s' is not the pinned certificate (its SHA-256 is "
				"%.16s..., listener '%s' pins %u)",
				subj(w), hex, t->name, t->n_pins);
			goto out;
		}
		/* the leaf is its own anchor: dates, EKU still checked below */
		pinned = sk_X509_new_reserve(NULL, 1);
		if (pinned == NULL) {
			rc = reject_internal(v, w, "out of memory");
			goto out;
		}
		(void)sk_X509_push(pinned, leaf);
		trusted = pinned;
	} else {
		trusted = t->anchors;
	}

	ctx = X509_STORE_CTX_new();
	if (ctx == NULL || X509_STORE_CTX_init(ctx, NULL, leaf, untrusted) != 1) {
		rc = reject_internal(v, w, "cannot set up the verify context");
		goto out;
	}
	X509_STORE_CTX_set0_trusted_stack(ctx, trusted);
	if (t->crls != NULL)
		X509_STORE_CTX_set0_crls(ctx, t->crls);
	if (X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(ctx), t->param) != 1) {
		rc = reject_internal(v, w, "cannot copy verify parameters");
		goto out;
	}
	if (now != 0)
		X509_STORE_CTX_set_time(ctx, 0, now);
	if (t->crls != NULL && t->crl_check == GW_CRL_CHECK_CHAIN)
		X509_STORE_CTX_set_verify_cb(ctx, crl_anchor_cb);

	if (X509_verify_cert(ctx) != 1) {
		explain(t, ctx, leaf, v, w);
		ERR_clear_error();
		goto out;
	}
	if (!allow_check(t, leaf, v, w))
		goto out;

	{
		STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(ctx);
		time_t u = 0;

		for (int i = 0; i < sk_X509_num(built); i++) {
			time_t na = gw_x509_time(X509_get0_notAfter(sk_X509_value(built, i)));

			if (i == 0 || na < u)
				u = na;
		}
		for (int i = 0; i < sk_X509_CRL_num(t->crls); i++) {
			const ASN1_TIME *nu =
				X509_CRL_get0_nextUpdate(sk_X509_CRL_value(t->crls, i));

			if (nu != NULL && gw_x509_time(nu) < u)
				u = gw_x509_time(nu);
		}
		v->until = u;
		if (until != NULL)
			*until = u;
	}
	v->accepted = true;
	v->reason = GW_TRUST_R_OK;
	v->depth = 0;
	subject_set(w, leaf);
	msgf(w, "certificate '%s' accepted by listener '%s'", subj(w), t->name);
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	sk_X509_free(pinned);
	sk_X509_free(untrusted);
	if (w != NULL)
		one_line(w->msg);
	return rc;
}

int
gw_trust_verify(const struct gw_trust *t, X509 *leaf, STACK_OF(X509) * chain_untrusted, time_t now,
	struct gw_trust_verdict *v)
{
	return verify_core(t, leaf, chain_untrusted, now, v, NULL, NULL);
}

int
gw_trust_verify_why(const struct gw_trust *t, X509 *leaf, STACK_OF(X509) * chain_untrusted,
	time_t now, struct gw_trust_verdict *v, struct gw_trust_why *why)
{
	return verify_core(t, leaf, chain_untrusted, now, v, why, NULL);
}

int
gw_trust_verify_until(const struct gw_trust *t, X509 *leaf, STACK_OF(X509) * chain_untrusted,
	time_t now, struct gw_trust_verdict *v, time_t *until)
{
	struct gw_trust_verdict tmp;

	if (until == NULL)
		return -EINVAL;
	return verify_core(t, leaf, chain_untrusted, now, v ? v : &tmp, NULL, until);
}

int
gw_trust_verify_der(const struct gw_trust *t, const uint8_t *const *der, const size_t *len,
	unsigned n, time_t now, struct gw_trust_verdict *v, struct gw_trust_why *w)
{
	STACK_OF(X509) *rest = NULL;
	X509 *leaf = NULL;
	int rc = -GW_E_TRUST;

	if (v == NULL)
		return -EINVAL;
	verdict_init(v, w);
	if (t == NULL || der == NULL || len == NULL || n == 0) {
		msgf(w, "no certificate to verify");
		return -EINVAL;
	}
	rest = sk_X509_new_null();
	if (rest == NULL)
		return reject_internal(v, w, "out of memory");
	for (unsigned i = 0; i < n; i++) {
		const unsigned char *p = der[i];
		X509 *x = NULL;

		if (len[i] > 0 && len[i] < (size_t)INT32_MAX)
			x = d2i_X509(NULL, &p, (long)len[i]);
		if (x == NULL || p != der[i] + len[i]) {
			X509_free(x);
			ERR_clear_error();
			v->reason = GW_TRUST_R_MALFORMED;
			v->depth = (int)i;
			msgf(w,
				"certificate %u of the chain (%s) is malformed: not a DER X.509 "
				"certificate",
				i + 1, i == 0 ? "the leaf" : "an intermediate");
			goto out;
		}
		if (i == 0)
			leaf = x;
		else if (!sk_X509_push(rest, x)) {
			X509_free(x);
			rc = reject_internal(v, w, "out of memory");
			goto out;
		}
	}
	rc = verify_core(t, leaf, rest, now, v, w, NULL);
out:
	X509_free(leaf);
	sk_X509_pop_free(rest, X509_free);
	return rc;
}

int
gw_trust_chain_digest(X509 *leaf, STACK_OF(X509) * chain, uint8_t out[32])
{
	EVP_MD_CTX *md = NULL;
	unsigned char *der = NULL;
	unsigned int olen = 0;
	int start = 0, rc = -GW_E_TLS;

	if (leaf == NULL || out == NULL)
		return -EINVAL;
	if (sk_X509_num(chain) > 0 && X509_cmp(sk_X509_value(chain, 0), leaf) == 0)
		start = 1;
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, gw_trust_sha256(), NULL) != 1)
		goto out;
	for (int i = start - 1; i < sk_X509_num(chain); i++) {
		X509 *x = i < start ? leaf : sk_X509_value(chain, i);
		int n = i2d_X509(x, &der);
		uint8_t be[4];

		if (n <= 0)
			goto out;
		/* the length prefix keeps (A|B) and (A'|B') with A|B == A'|B' apart */
		be[0] = (uint8_t)(n >> 24);
		be[1] = (uint8_t)(n >> 16);
		be[2] = (uint8_t)(n >> 8);
		be[3] = (uint8_t)n;
		if (EVP_DigestUpdate(md, be, 4) != 1 || EVP_DigestUpdate(md, der, (size_t)n) != 1)
			goto out;
		OPENSSL_free(der);
		der = NULL;
	}
	if (EVP_DigestFinal_ex(md, out, &olen) != 1 || olen != 32)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		ERR_clear_error();
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	return rc;
}
