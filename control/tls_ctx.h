/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tls_ctx.h - the TLS side of a listener, built per snapshot (the contract).
 *
 * Control builds, for every TLS listener of a snapshot, one immutable
 * struct gw_tls_lst: one SSL_CTX per identity (certificate chain from its
 * file, private key = an EVP_PKEY from the HSM through hsm.h, min_version,
 * ciphersuites), SNI selection among the identities (the first is the
 * default), client_auth, a certificate verification that calls the
 * listener's gw_trust (through the worker's verify cache) and the session
 * ticket machinery. It plugs into snapshot.h as a struct gw_snapshot_ext
 * (gw_tls_ctl_ext): l->tls of a struct gw_snap_listener is a gw_tls_lst.
 *
 * Workers only read a gw_tls_lst: they SSL_new() from gw_tls_lst_ctx() and
 * attach a struct gw_tls_vctx to the SSL (gw_tls_vctx_attach) so the verify
 * and ticket callbacks find the worker's verify cache and report why a
 * client was refused. SSL_CTX objects are safe to share between threads for
 * SSL_new and handshakes (OpenSSL 3.0 takes its own locks only for
 * reference counts); the SSL_CTX session cache is OFF, so no cache lock is
 * taken on the handshake path.
 *
 * HSM key and threads: each identity's key is loaded once per snapshot
 * through the control thread's gw_hsm handle and shared by every worker.
 * libp11 0.4.12 keeps a pool of PKCS#11 sessions per slot
 * (pkcs11_get_session/pkcs11_put_session under the slot lock): every
 * signature checks out a session of its own for the C_SignInit/C_Sign pair
 * and returns it, so N threads signing at once use N different sessions and
 * never share one behind a lock; the slot lock is held only for the pool
 * checkout. Workers do not sign themselves: their handshakes' signatures
 * run on hsm.h's HSM threads while the handshake is parked (tls.h,
 * hsm_async), so one PKCS#11 session per HSM thread in effect, without
 * building one SSL_CTX set per worker.
 *
 * Client verification and alerts. The verify callback replaces OpenSSL's
 * chain building with gw_trust_verify_cached(). OpenSSL turns the verify
 * error code into the alert with a fixed table (ssl_x509err2alert), so a
 * rejection reason is mapped to the X509_V_ERR code whose alert fits:
 *   expired -> certificate_expired      revoked -> certificate_revoked
 *   untrusted_issuer, self_signed, not_ca, too_deep, crl -> unknown_ca
 *   not_pinned, bad_signature, not_yet_valid, malformed,
 *   name_constraints -> bad_certificate
 *   eku -> unsupported_certificate      internal -> internal_error
 *   not_allowed, other -> certificate_unknown (OpenSSL 3.0 cannot send
 *   access_denied from a verify callback: no verify error maps to it)
 * A client that sends no certificate where client_auth is required gets
 * certificate_required (TLS 1.3) / handshake_failure (TLS 1.2) from OpenSSL.
 *
 * Session tickets (TLS 1.3 and 1.2, stateless): encrypted with keys of a
 * set owned by the struct gw_tls_ctl, shared by every snapshot and every
 * worker, so a ticket from worker A resumes on worker B and across reloads.
 * The set is a ring of four keys; gw_tls_ctl_rotate() (control) makes a
 * new current key every ticket lifetime; tickets under the previous key
 * still decrypt (and are renewed), older ones are ignored (full handshake).
 * Each ticket carries the listener's trust fingerprint (SHA-256 over
 * client_auth and gw_trust_fingerprint() of the trust the snapshot built:
 * mode, depth, crl_check, the anchors, pins and CRLs as loaded, allow
 * rules, in every mode, mesh roots from the CA backends included); it is
 * also the SSL session id context. A ticket also carries when its
 * verification lapses (earliest notAfter of the verified chain, earliest
 * CRL nextUpdate: what the verify cache uses). A ticket whose fingerprint
 * differs from the current listener's (the trust changed in a reload, a
 * mesh backend was removed) or whose verification has lapsed is ignored:
 * the client must do a full handshake and its certificate is verified
 * against the current trust. A reload that keeps the trust keeps
 * resumption. SNI: an exact name of any identity beats a wildcard of any
 * identity; no match gets the first (default) identity.
 *
 * ALPN: mtlsgw does not negotiate ALPN away on the client's behalf: it does
 * not acknowledge the extension (the client falls back to its default
 * protocol, e.g. HTTP/1.1), and records the client's first offered protocol
 * for the upstream metadata (PROXY v2 ALPN TLV). Terminating TLS at layer 4
 * cannot know which protocol the upstream speaks, so choosing e.g. h2 for
 * it would break HTTP/1.1 upstreams.
 */
#ifndef GW_TLS_CTX_H
#define GW_TLS_CTX_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "config.h"
#include "gw_err.h"
#include "hsm.h"
#include "snapshot.h"
#include "tls_policy.h"
#include "trust.h"

/* Owner of what outlives one snapshot: the HSM handle to load keys, the ticket keys. */
struct gw_tls_ctl;

struct gw_tls_ctl_params {
	struct gw_hsm *hsm;         /* control thread's handle; borrowed, must outlive ctl */
	unsigned ticket_lifetime_s; /* key rotation period; 0 = smallest listener's, else default */
};

/*
 * Create the controller and its first ticket key (random). Returns 0,
 * -EINVAL (no hsm), -ENOMEM, -GW_E_TLS. Control thread.
 */
GW_MUST_CHECK int gw_tls_ctl_create(const struct gw_tls_ctl_params *p, struct gw_tls_ctl **out);

/* Free; only after every snapshot built with it is gone. NULL ok. */
void gw_tls_ctl_destroy(struct gw_tls_ctl *ctl);

/* The snapshot extension (listener_init/fini) bound to ctl. */
void gw_tls_ctl_ext(struct gw_tls_ctl *ctl, struct gw_snapshot_ext *out);

/*
 * Make a new current ticket key if the current one is older than the
 * lifetime at now (force: always). Returns 1 if rotated, 0 if not, or a
 * negative error (-GW_E_TLS: no randomness). Control thread; workers may be
 * using the keys concurrently (see tls_ctx.c for why the ring is safe).
 */
GW_MUST_CHECK int gw_tls_ctl_rotate(struct gw_tls_ctl *ctl, time_t now, bool force);

/*
 * Make the given key the current one (a fleet's, control/cluster.h): the
 * current key becomes the previous, so tickets under it still resume. Keys
 * are installed in the order they were made. Returns 1, or 0 when the
 * current or the previous key already has this name (nothing changes).
 * Control thread, like gw_tls_ctl_rotate.
 */
GW_MUST_CHECK int gw_tls_ctl_install(struct gw_tls_ctl *ctl, const uint8_t name[16],
	const uint8_t aes[32], const uint8_t hmac[32], time_t created);

/* Ticket keys made or installed so far (1 after create). */
uint64_t gw_tls_ctl_key_serial(const struct gw_tls_ctl *ctl);

#endif /* GW_TLS_CTX_H */
