/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tls.h - TLS termination on a worker lcore: an OpenSSL SSL driven over one
 * gw_tcp_conn (the contract).
 *
 * docs/architecture.md "The data path of one connection", steps 4-5: on ESTABLISHED a service
 * hands the TCP connection to gw_tls_accept(), which creates an SSL from the
 * connection's snapshot listener (control/tls_ctx.h) and attaches a custom
 * BIO: BIO reads pull from gw_tcp_read() and BIO writes push into
 * gw_tcp_write(); "no bytes and no error" sets the BIO retry flag and
 * returns -1 (HAProxy's ha_ssl_read/ha_ssl_write), so no socket, no file
 * descriptor and no copy through the kernel. The handshake is stepped on
 * the TCP READABLE/WRITABLE events. gw_tls_write encrypts at most what the
 * TCP send buffer has room for, so backpressure reaches the app instead of
 * piling up records in memory.
 *
 * One struct gw_tls_worker per worker lcore: its connection pool, the
 * verify cache, the handshake and idle timeout lists, the bound on
 * concurrent handshakes (a flood cannot starve established connections:
 * excess connections are refused with RST and counted) and the counters.
 * Like tcp.h, everything here is MT-unsafe by design: call it on the lcore
 * that owns the worker and the TCP stack.
 *
 * With hsm_async (the gateway's way) a handshake runs in an OpenSSL ASYNC
 * job until it is established; when the server's signature is due, the job
 * pauses and the handshake is parked (counter hsm_async_parked) while an HSM
 * thread signs (hsm.h). gw_tls_worker_poll picks the answer off this
 * worker's completion ring and resumes the handshake; TCP events for a
 * parked handshake wait in the TCP buffers until then. No answer within
 * hsm_timeout_ms fails it (hsm_timeout, hs_fail_hsm); a parked connection
 * that is closed, reset or destroyed abandons its request and ends its job
 * at once, so the answer, if it comes, never touches freed memory.
 *
 * Connection lifetime: the app owns a struct gw_tls_conn * from
 * gw_tls_accept() until it calls gw_tls_close()/gw_tls_abort() or receives
 * GW_TLS_EV_CLOSED; afterwards it must not use it. Calling anything from
 * inside an event callback is allowed (memory is released after the
 * callback returns). The connection holds a reference on its snapshot for
 * its whole life (released when it is freed).
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "gw_alog.h"
#include "gw_err.h"
#include "snap.h"
#include "svc.h"
#include "tcp.h"
#include "trust_verify.h"

struct gw_tls_worker;
struct gw_tls_conn;

/* Per-worker counters (X-macro: enum of names, struct fields). */
#define GW_TLS_STATS(X)                                                                     \
	X(accepted)            /* TCP connections handed to TLS */                          \
	X(refused_busy)        /* refused: too many concurrent handshakes */                \
	X(refused_nomem)       /* refused: connection pool full or SSL_new failed */        \
	X(refused_no_tls)      /* refused: listener has no TLS context in the snapshot */   \
	X(hs_ok)               /* handshakes completed */                                   \
	X(hs_full)             /* ... of which full (certificate verified) */               \
	X(hs_resumed)          /* ... of which resumed from a ticket */                     \
	X(hs_fail)             /* handshakes failed (any reason below) */                   \
	X(hs_fail_verify)      /* client certificate rejected (see rejections by reason) */ \
	X(hs_fail_no_cert)     /* client sent no certificate, client_auth required */       \
	X(hs_fail_hsm)         /* the server's signature (HSM) failed */                    \
	X(hs_fail_proto)       /* protocol error, version/cipher mismatch, bad record */    \
	X(hs_fail_eof)         /* peer closed or reset during the handshake */              \
	X(hs_timeout)          /* handshake not done in time */                             \
	X(idle_timeout)        /* established connection idle too long */                   \
	X(verify_cache_hit)    /* client chain accepted from the verify cache */            \
	X(ticket_stale_trust)  /* ticket ignored: the trust changed since */                \
	X(ticket_expired_cert) /* ticket ignored: the client certificate expired */         \
	X(ticket_unknown_key)  /* ticket ignored: key retired or never ours */              \
	X(close_notify_rx)     /* peer sent close_notify */                                 \
	X(close_notify_tx)     /* we sent close_notify */                                   \
	X(eof_no_notify)       /* peer FIN without close_notify (truncation) */             \
	X(rec_err)             /* fatal error on an established connection */               \
	X(peer_reset)          /* TCP reset/timeout on an established connection */         \
	X(linger_rst)          /* failed/timed-out connection reset: no FIN within 2 s */   \
	X(rx_bytes)            /* plaintext bytes read by apps */                           \
	X(tx_bytes)            /* plaintext bytes written by apps */                        \
	X(hsm_async_parked)    /* handshakes parked on an HSM signature (async) */          \
	X(hsm_queue_full)      /* ... refused: the HSM queue was full (hs_fail_hsm too) */  \
	X(hsm_timeout)         /* ... not answered in hsm_timeout_ms (hs_fail_hsm too) */   \
	X(hsm_inline)          /* signatures made on the worker (hsm.inline_below) */

struct gw_tls_stats {
#define GW_TLS_STAT_FIELD_(n) uint64_t n;
	GW_TLS_STATS(GW_TLS_STAT_FIELD_)
#undef GW_TLS_STAT_FIELD_
	uint64_t reject[GW_TRUST_R__COUNT]; /* hs_fail_verify by gw_trust reason */
	uint64_t handshaking;               /* handshakes in progress now */
	uint64_t established;               /* established connections now */
};

/*
 * Handshake latency, per listener (Prometheus histogram
 * mtlsgw_tls_handshake_seconds{listener}): from the moment the first bytes
 * of the ClientHello are read from TCP (the first handshake step that finds
 * data; TCP's own handshake and any wait before the client speaks are not
 * included) to the handshake's completion on our side (SSL_do_handshake
 * returns 1: the client's Finished is processed, the HSM signature, chain
 * verification and any parking included). Completed handshakes only (full
 * and resumed); failures are counted by reason above. Upper bounds in
 * seconds, ascending; the last bucket, above 2.5 s, is +Inf.
 */
#define GW_TLS_HS_BOUNDS 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5
#define GW_TLS_HS_N_BOUNDS 12
/* Histogram slots per worker: a listener's index in the snapshot table. */
#define GW_TLS_HIST_SLOTS 64

struct gw_tls_hs_hist {
	uint64_t b[GW_TLS_HS_N_BOUNDS + 1]; /* per bucket, not cumulative; [N]: +Inf */
	uint64_t sum_tsc;                   /* sum of the durations, TSC ticks */
};

struct gw_tls_worker_params {
	unsigned lcore;
	uint32_t max_conns;            /* TLS connections; 0 = 16384 */
	uint32_t max_handshakes;       /* concurrent handshakes; 0 = 512 */
	uint32_t handshake_timeout_ms; /* accept to Finished; 0 = 10000 */
	uint32_t idle_timeout_ms;      /* no plaintext either way; 0 = 300000 */
	uint64_t tsc_hz;               /* clock of now_tsc; 0 = rte_get_tsc_hz() */
	unsigned vcache_entries;       /* verify cache; 0 = 4096 */
	unsigned vcache_max_ttl_s;     /* 0 = no cap beyond the certificates' dates */
	/*
	 * Server signatures off the worker (hsm.h, "Asynchronous signatures"):
	 * the SSLs run in OpenSSL ASYNC jobs during the handshake, a signature
	 * parks its handshake until an HSM thread answers (the pool must run:
	 * gw_hsm_async_start). false: the worker signs itself, blocking.
	 */
	bool hsm_async;
	uint32_t hsm_timeout_ms; /* a parked signature fails after this; 0 = 2000 */
	/*
	 * The access log (gw_alog.h): every connection that ends, accepted or
	 * refused, leaves one record here (a full ring drops and counts it).
	 * Borrowed; NULL: no records.
	 */
	struct gw_alog_ring *alog;
};

/*
 * Create a worker's TLS state (allocates the pool and the verify cache).
 * Returns 0, -EINVAL, -ENOMEM. Call before the loop, on the worker lcore or
 * the main one.
 */
GW_MUST_CHECK int gw_tls_worker_create(
	const struct gw_tls_worker_params *p, struct gw_tls_worker **out);

/*
 * Free: aborts the remaining connections (RST, no events), frees their SSL
 * and drops their snapshot references. Call before gw_tcp_stack_destroy of
 * the stack they live on. NULL ok.
 */
void gw_tls_worker_destroy(struct gw_tls_worker *w);

/*
 * Once per loop iteration (after gw_tcp_poll): resume the handshakes whose
 * HSM signature was answered, expire HSM, handshake and idle timeouts.
 * Returns flags: GW_TLS_POLL_PARKED while a handshake is still parked on an
 * HSM signature (its answer comes from an HSM thread, not a packet: the
 * worker must not sleep long then), GW_TLS_POLL_HANDSHAKING while a
 * handshake is in progress and one began to wait for its client's next
 * flight in the last 10 ms (that flight is due soon; a client that stalls
 * longer does not keep the worker waking early).
 */
#define GW_TLS_POLL_PARKED 1u
#define GW_TLS_POLL_HANDSHAKING 2u
unsigned gw_tls_worker_poll(struct gw_tls_worker *w, uint64_t now_tsc);

/*
 * An eventfd that fires when an HSM answer reaches this worker
 * (gw_hsm_async_ring_fd), for a worker that sleeps in epoll; read it
 * before gw_tls_worker_poll. -1 without hsm_async. Open until
 * gw_tls_worker_destroy.
 */
int gw_tls_worker_wait_fd(const struct gw_tls_worker *w);

void gw_tls_stats_get(const struct gw_tls_worker *w, struct gw_tls_stats *out);

/* The handshake latency histogram of slot (< GW_TLS_HIST_SLOTS; else zeros). */
void gw_tls_hs_hist_get(const struct gw_tls_worker *w, unsigned slot, struct gw_tls_hs_hist *out);

/*
 * Count an upstream connect failure (svc.h, GW_SVC_UP_FAILS) of the
 * tls-proxy listener in slot (its index in the snapshot table,
 * < GW_TLS_HIST_SLOTS; else not counted).
 */
void gw_tls_upstream_failed(struct gw_tls_worker *w, unsigned slot, int reason);

/* The upstream connect failures of slot (< GW_TLS_HIST_SLOTS; else zeros). */
void gw_tls_up_fails_get(const struct gw_tls_worker *w, unsigned slot, struct gw_svc_up_fails *out);

/* ---- connections ---- */

enum gw_tls_event {
	GW_TLS_EV_ESTABLISHED, /* handshake done: identity and metadata readable */
	GW_TLS_EV_READABLE,    /* plaintext may be readable, or the peer closed */
	GW_TLS_EV_WRITABLE,    /* a short gw_tls_write() may go on */
	GW_TLS_EV_CLOSED,      /* over; handle invalid. reason: 0, -EPROTO (handshake or
				* record failure), -ETIMEDOUT, -ECONNRESET */
};

typedef void gw_tls_event_fn(struct gw_tls_conn *t, enum gw_tls_event ev, int reason, void *ctx);

/*
 * Start TLS on an accepted TCP connection c (call from the TCP accept
 * callback). snap is the caller's current snapshot (gw_snap_current, or a
 * reference) and lst one of its listeners with lst->tls set. Takes a
 * snapshot reference, takes over c's event callback. On error c is left
 * untouched (the caller refuses it: return non-zero from the accept
 * callback, the stack answers RST) and the refusal is counted.
 * Returns 0, -EBUSY (handshake bound), -ENOMEM, -EINVAL (no TLS on lst).
 */
GW_MUST_CHECK int gw_tls_accept(struct gw_tls_worker *w, struct gw_tcp_conn *c,
	const struct gw_snapshot *snap, const struct gw_snap_listener *lst, gw_tls_event_fn *cb,
	void *ctx, struct gw_tls_conn **out);

/*
 * Read decrypted bytes. Returns the count, 0 when nothing is readable now
 * (check gw_tls_peer_closed), -ENOTCONN before ESTABLISHED, -EPROTO on a
 * fatal record error (the app should abort).
 */
GW_MUST_CHECK long gw_tls_read(struct gw_tls_conn *t, void *buf, size_t len);

/*
 * gw_tls_read without consuming: the same bytes come again from the next
 * peek or read. For a relay that may not be able to pass on all it got
 * (the other side's buffer or the mbuf pool ran out): peek, write, then
 * gw_tls_read() exactly what was written. Same returns as gw_tls_read.
 */
GW_MUST_CHECK long gw_tls_peek(struct gw_tls_conn *t, void *buf, size_t len);

/* close_notify or FIN received and every byte before it read. */
bool gw_tls_peer_closed(const struct gw_tls_conn *t);

/*
 * Encrypt and queue up to len bytes as one record, at most the TCP send
 * buffer's free space and at most one record's plaintext (16 KiB, or the
 * client's max_fragment_length). Returns bytes taken (may be fewer than len;
 * 0 when there is no room: GW_TLS_EV_WRITABLE follows), -ENOTCONN, -EPIPE (after shutdown or
 * reset), -EPROTO. Bytes taken are never asked for again: if the mbuf pool
 * ran dry, OpenSSL keeps the encrypted record and the driver flushes it on
 * the next write or WRITABLE.
 */
GW_MUST_CHECK long gw_tls_write(struct gw_tls_conn *t, const void *buf, size_t len);

/*
 * Plaintext that one gw_tls_write() takes whole right now (at most one
 * record). 0 = no room: GW_TLS_EV_WRITABLE is armed and will follow.
 */
size_t gw_tls_write_room(struct gw_tls_conn *t);

/* Half-close: send close_notify, then TCP FIN after the queued records. */
void gw_tls_shutdown(struct gw_tls_conn *t);

/* close_notify (if established and not yet sent), FIN, free. Handle invalid after. */
void gw_tls_close(struct gw_tls_conn *t);

/* RST, free. Handle invalid after. */
void gw_tls_abort(struct gw_tls_conn *t);

/*
 * Record t's handshake latency in histogram slot (the listener's index in
 * the snapshot table, < GW_TLS_HIST_SLOTS). Call after gw_tls_accept;
 * without it the handshake is not recorded (counted all the same).
 */
void gw_tls_set_hist_slot(struct gw_tls_conn *t, unsigned slot);

/*
 * For the access log: the upstream t is relayed to (network order; the
 * last one tried), and that no upstream could be connected (the record
 * says end "upstream" rather than "reset").
 */
void gw_tls_set_upstream(struct gw_tls_conn *t, uint32_t ip, uint16_t port);
void gw_tls_set_upstream_failed(struct gw_tls_conn *t);

void *gw_tls_get_ctx(const struct gw_tls_conn *t);
void gw_tls_set_ctx(struct gw_tls_conn *t, void *ctx);
void gw_tls_set_callback(struct gw_tls_conn *t, gw_tls_event_fn *cb, void *ctx);
struct gw_tcp_conn *gw_tls_tcp(const struct gw_tls_conn *t);
SSL *gw_tls_ssl(const struct gw_tls_conn *t);
bool gw_tls_resumed(const struct gw_tls_conn *t);
/* The server name the client asked for ("" if none). */
const char *gw_tls_sni(const struct gw_tls_conn *t);

/*
 * The PROXY v2 header for this client (address, SNI as AUTHORITY, the
 * client's first ALPN, PP2_TYPE_SSL with version/CN/cipher/sig/key alg,
 * and GW_PP2_TYPE_CLIENT_ID = SPIFFE ID or first URI SAN) into buf[cap].
 * Returns the length or a negative error (-ENOSPC, -EINVAL).
 */
GW_MUST_CHECK int gw_tls_pp2_build(const struct gw_tls_conn *t, uint8_t *buf, size_t cap);

/*
 * A BIO over a TCP connection (what gw_tls_accept uses). For a client SSL
 * in tests and tools: SSL_set_bio(ssl, b, b). The BIO does not own c.
 */
BIO *gw_tls_bio_new(struct gw_tcp_conn *c);

#endif /* GW_TLS_H */
