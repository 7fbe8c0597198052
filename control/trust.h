/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * trust.h - the trust engine's build side: compile a listener's trust
 * config into a struct gw_trust (the verify side, which workers call, is
 * policy/trust_verify.h: would this chain be accepted, and if not, why).
 *
 * Control compiles a struct gw_cfg_trust (pinned | ca | mesh) into one
 * immutable struct gw_trust: the anchors, CRLs, verify parameters (depth,
 * clientAuth purpose, partial chain) and the listener's allow rules. Workers
 * only call gw_trust_verify() on it, concurrently from many lcores: nothing
 * in a gw_trust is written after gw_trust_create() returns, each call uses
 * its own X509_STORE_CTX, and the anchors are handed to OpenSSL as a trusted
 * stack (no X509_STORE, so no store lock on the handshake path).
 *
 * Semantics (docs/config.md "listeners[].trust", README "Trust: which client
 * certificates a listener accepts"):
 *  - pinned: the leaf's SHA-256 DER fingerprint must equal one pin (from
 *    `certs` files or `pins_sha256`); the client may send only its leaf.
 *    Validity dates, clientAuth EKU and allow rules still apply. An impostor
 *    with the same subject and a different key or serial is "not the pinned
 *    certificate".
 *  - ca: every certificate in `certs` is an anchor, root or intermediate.
 *    An intermediate anchor is a partial chain (X509_V_FLAG_PARTIAL_CHAIN):
 *    the client sends only its leaf. With only a root trusted the client must
 *    send its intermediates.
 *  - mesh: like ca, over the union of several bundles (each `certs` file is
 *    one bundle, plus any bundles the CA backends hand to
 *    gw_trust_create_bundles()).
 * max_depth is OpenSSL's verify depth: the most intermediate CA certificates
 * between the leaf and the anchor (neither counts). CRLs, when given, are
 * checked per cfg->crl_check:
 *  - chain (default; X509_V_FLAG_CRL_CHECK_ALL, nginx's "a CRL per CA"):
 *    every certificate of the path below the anchor (the leaf and each
 *    intermediate) must be covered by a current CRL of its issuer, so a
 *    revoked intermediate is "revoked". A CA of the path whose CRL is not
 *    loaded fails closed with "crl" (OpenSSL's unable_to_get_crl). The
 *    anchor itself is not checked: it is trusted by configuration (remove
 *    it to distrust it), and a partial-chain anchor's issuer is unknown.
 *  - leaf (X509_V_FLAG_CRL_CHECK): only the leaf's issuer needs a CRL.
 * Name constraints are OpenSSL's.
 *
 * Allow rules (empty = any client the chain check accepts) are tried after
 * the chain check; any one matching rule admits the client:
 *  - spiffe: the leaf's SPIFFE ID (its one spiffe:// URI SAN). The trust
 *    domain is exact. A rule segment "*" matches exactly one non-empty path
 *    segment; a last segment "**" matches one or more (Istio's principal
 *    prefix): spiffe://td/ns/prod/ + "*" admits spiffe://td/ns/prod/web,
 *    not spiffe://td/ns/prod nor spiffe://td/ns/prod/web/x; spiffe://td/ns/
 *    + "**" admits both spiffe://td/ns/prod and spiffe://td/ns/prod/sa/api,
 *    not spiffe://td/ns. Any other wildcard use ("a*b", "**" not last, a
 *    wildcard in the trust domain) and empty segments are refused when the
 *    trust is built (gw_trust_spiffe_rule_check), never silently unmatched.
 *  - dns: a DNS SAN, case-insensitive; "*.example.com" matches one label.
 *  - cn: the leaf's subject CN, exact (a subject with two CNs matches none).
 * Names are judged whole, never truncated. A name that is longer than its
 * kind may be rejects the client as "malformed": a SPIFFE URI SAN over
 * 2048 bytes (SPIFFE's limit; checked whenever allow rules exist, since the
 * ID is also forwarded upstream), and, when dns / cn rules exist, a DNS SAN
 * over 253 characters or with a label over 63 (RFC 1035), a CN over 64
 * characters (X.509 ub-common-name, RFC 5280).
 */
#ifndef GW_TRUST_H
#define GW_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "config.h"
#include "gw_err.h"
#include "trust_verify.h"

/*
 * Build the trust of one listener from its config (reads the certs and crl
 * files, which the config loader has checked exist). name is the listener's
 * name, used in messages only (may be NULL).
 * Returns 0 and *out, or -GW_E_CONFIG (unreadable or unparsable file, a ca
 * anchor that is not a CA, pinned without pins, mode mesh/ca without
 * anchors), -EINVAL, -ENOMEM; gw_err_msg() names the file and the problem.
 * Control thread only (reads files).
 */
GW_MUST_CHECK int gw_trust_create(
	const struct gw_cfg_trust *cfg, const char *name, struct gw_trust **out);

/*
 * Mesh (and anything else that holds certificates in memory, like the CA
 * backends): build from cfg (mode, crl, max_depth, allow, and cfg's own
 * certs files as extra bundles) plus n in-memory bundles whose union becomes
 * the anchors. The bundles are not consumed (certificates are up-ref'd).
 * cfg->mode must be GW_TRUST_CA or GW_TRUST_MESH. Returns as gw_trust_create.
 */
GW_MUST_CHECK int gw_trust_create_bundles(const struct gw_cfg_trust *cfg, const char *name,
	STACK_OF(X509) *const *bundles, unsigned n, struct gw_trust **out);

/*
 * Read a PEM file of one or more certificates (leaf first) into leaf and the
 * rest. A block that is not a certificate or whose DER does not parse is
 * reported as -GW_E_PARSE naming its position; a missing file -ENOENT.
 * Caller frees with X509_free / sk_X509_pop_free(rest, X509_free).
 */
GW_MUST_CHECK int gw_trust_chain_load(const char *path, X509 **leaf, STACK_OF(X509) * *rest);

/*
 * Is rule a usable allow.spiffe pattern (see above)? Returns 0, or
 * -GW_E_CONFIG with why (if not NULL) set to what is wrong with it, e.g.
 * "'*' must be a whole path segment ...". The config loader and
 * gw_trust_create both use it, so a pattern loads only if the matcher can
 * match something with it. Does not touch the gw_err slot. MT-safe.
 */
GW_MUST_CHECK int gw_trust_spiffe_rule_check(const char *rule, char *why, size_t len);

/*
 * Are rule a usable allow.dns pattern (a DNS name of at most 253
 * characters, labels of 1..63 letters, digits, '-' or '_', optionally
 * "*." in front for one label) and an allow.cn value (1..64 characters)?
 * Same returns and why as gw_trust_spiffe_rule_check: a rule that could
 * never match (names over those limits are rejected as malformed) does not
 * load.
 */
GW_MUST_CHECK int gw_trust_dns_rule_check(const char *rule, char *why, size_t len);
GW_MUST_CHECK int gw_trust_cn_rule_check(const char *rule, char *why, size_t len);

/*
 * Visit every allow rule of a that could match nothing: bad(arg, kind, i,
 * rule, why) for each, kind being "spiffe", "dns" or "cn" and i its index
 * in that list. Returns how many were refused (0: every rule can match).
 * The config loader reports each; gw_trust_create refuses the first. MT-safe.
 */
unsigned gw_trust_allow_rules_each(const struct gw_cfg_allow *a,
	void (*bad)(void *arg, const char *kind, unsigned i, const char *rule, const char *why),
	void *arg);

/*
 * The trust fingerprint: SHA-256 over what this gw_trust was built from and
 * judges with (mode, max_depth, crl_check, the DER of every anchor, every
 * pin, the DER of every CRL, the allow rules). Two gw_trust with the same
 * fingerprint accept exactly the same chains; anything that can change a
 * verdict (a mesh backend's root removed, a CRL reissued) changes it.
 * Session tickets carry it (tls_ctx.h). Computed once at create time.
 */
const uint8_t *gw_trust_fingerprint(const struct gw_trust *t);

#endif /* GW_TRUST_H */
