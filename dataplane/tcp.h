/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcp.h - mtlsgw's own per-lcore TCP (the contract).
 *
 * Why our own: docs/architecture.md "Why our own TCP". One struct
 * gw_tcp_stack per worker lcore owns that lcore's connections (4-tuple hash,
 * connection pool, timer wheel, counters). Nothing in here is shared between
 * lcores and nothing takes a lock: every function below must be called on the
 * lcore that created the stack (MT-unsafe by design, like VPP's per-worker
 * TCP). No call on the packet path allocates from the heap, logs, or makes a
 * system call.
 *
 * Layering:
 *   net (eth/ARP/IPv4) --gw_tcp_input()--> tcp --events/read/write--> tls, svc
 *   tcp --params.ip_output()--> net
 * The worker calls gw_tcp_poll() once per loop iteration: that runs the
 * timer wheel and sends the coalesced ACKs and queued data of the iteration.
 *
 * Stream API (for TLS's custom BIO, the proxy and the services): a
 * connection delivers events to one callback; the app pulls bytes with
 * gw_tcp_read() (which reopens the receive window) and pushes bytes with
 * gw_tcp_write() (which accepts only what fits in the bounded send buffer:
 * backpressure; GW_TCP_EV_WRITABLE tells when room came back).
 *
 * Handle lifetime (the one rule to remember): the app owns a struct
 * gw_tcp_conn * from GW_TCP_EV_CONNECTED (active open) or the accept callback
 * (passive open) until EITHER it calls gw_tcp_close()/gw_tcp_abort() OR it
 * receives GW_TCP_EV_CLOSED. After either, the pointer must not be used and no
 * further event is delivered. A graceful end: on GW_TCP_EV_PEER_FIN read what
 * is left (gw_tcp_peer_closed() turns true), finish writing, gw_tcp_close()
 * (its FIN follows the queued bytes; the stack completes the close). Calling any function (also close/abort, also on
 * another connection) from inside an event callback is allowed: connection
 * memory is released only after the current gw_tcp_input()/gw_tcp_poll()
 * returns.
 *
 * Addresses and ports are in network byte order everywhere in this API.
 */
#ifndef GW_TCP_H
#define GW_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw_err.h"

struct rte_mbuf;
struct rte_mempool;

struct gw_tcp_stack;
struct gw_tcp_conn;

/* Connection states (RFC 9293 3.3.2); one X-macro makes enum and names. */
#define GW_TCP_STATES(X) \
	X(CLOSED)        \
	X(LISTEN)        \
	X(SYN_SENT)      \
	X(SYN_RCVD)      \
	X(ESTABLISHED)   \
	X(FIN_WAIT_1)    \
	X(FIN_WAIT_2)    \
	X(CLOSE_WAIT)    \
	X(CLOSING)       \
	X(LAST_ACK)      \
	X(TIME_WAIT)

enum gw_tcp_state {
#define GW_TCP_ST_ENUM_(n) GW_TCP_ST_##n,
	GW_TCP_STATES(GW_TCP_ST_ENUM_)
#undef GW_TCP_ST_ENUM_
		GW_TCP_ST_MAX
};

/* "ESTABLISHED" ...; "?" for an out-of-range value. */
const char *gw_tcp_state_name(enum gw_tcp_state st);

/*
 * Per-lcore counters (VPP's foreach_tcp_wrk_stat). Drops are counted by
 * reason; nothing on the packet path logs.
 */
#define GW_TCP_STATS(X)                                                                            \
	X(rx_seg)                   /* segments handed to gw_tcp_input */                          \
	X(rx_bytes)                 /* in-order payload bytes accepted */                          \
	X(rx_bad_csum)              /* TCP checksum wrong (or NIC said bad) */                     \
	X(rx_bad_hdr)               /* truncated, bad data offset, bad flag combination */         \
	X(rx_bad_opt)               /* malformed TCP options */                                    \
	X(rx_no_conn)               /* no connection or listener: RST answered */                  \
	X(rx_dup)                   /* entirely old data (duplicate) */                            \
	X(rx_ooo)                   /* queued out of order */                                      \
	X(rx_ooo_drop)              /* out-of-order queue full (the connection's buffer budget) */ \
	X(rx_ooo_drop_mem)          /* out-of-order segment over the worker's ceiling */           \
	X(rx_out_of_window)         /* unacceptable segment (RFC 9293 3.10.7.4): ACKed, dropped */ \
	X(rx_ack_too_new)           /* ACK of data never sent */                                   \
	X(rx_rst)                   /* RST accepted */                                             \
	X(rx_rst_bad)               /* RST ignored (out of window) */                              \
	X(rx_challenge_ack)         /* challenge ACK sent (RFC 5961) */                            \
	X(rx_challenge_ack_limited) /* challenge ACKs suppressed (over 1000/s) */                  \
	X(rx_multiseg_drop)         /* chained mbuf that could not be linearized */                \
	X(rx_syn)                   /* SYN to a listener */                                        \
	X(rx_syn_drop)              /* SYN dropped (no memory, not local) */                       \
	X(rx_after_close)           /* data after the app closed: RST */                           \
	X(tx_seg)                   /* segments sent */                                            \
	X(tx_bytes)                 /* payload bytes sent (with retransmissions) */                \
	X(tx_ack)                   /* pure ACKs sent */                                           \
	X(tx_rst)                   /* RSTs sent */                                                \
	X(tx_rtx_bytes)             /* payload bytes retransmitted */                              \
	X(tx_fast_rtx)              /* fast retransmits (3 dupacks) */                             \
	X(tx_lost_rtx)              /* retransmissions found lost again (SACK) */                  \
	X(tx_rto)                   /* retransmission timeouts */                                  \
	X(tx_probe)                 /* zero-window probes */                                       \
	X(tx_tlp)                   /* tail loss probes (RFC 8985) */                              \
	X(tx_nombuf)                /* mbuf pool empty on output */                                \
	X(syncookie_tx)             /* SYN-ACKs carrying a SYN cookie */                           \
	X(syncookie_ok)             /* valid cookie ACK: connection created */                     \
	X(syncookie_bad)            /* cookie ACK rejected */                                      \
	X(conn_accepted)            /* passive opens that reached ESTABLISHED */                   \
	X(conn_connected)           /* active opens that reached ESTABLISHED */                    \
	X(conn_refused)             /* active opens answered with RST */                           \
	X(conn_reset)               /* connections ended by a peer RST */                          \
	X(conn_timeout)             /* ended by retransmission, handshake or idle timeout */       \
	X(conn_alloc_fail)          /* connection pool or hash full */                             \
	X(conn_freed)               /* connection objects returned to the pool */

struct gw_tcp_stats {
#define GW_TCP_STAT_FIELD_(n) uint64_t n;
	GW_TCP_STATS(GW_TCP_STAT_FIELD_)
#undef GW_TCP_STAT_FIELD_
	/* connections currently in each state (listeners not counted) */
	uint64_t conns[GW_TCP_ST_MAX];
};

struct gw_tcp_stack_params {
	unsigned lcore;           /* the lcore that will use the stack */
	struct rte_mempool *pool; /* mbufs for output and the send queues; data
				   * room >= 1600 bytes, headroom >= 128 */
	/*
	 * Hand a packet to the net layer. m's data starts at the IPv4 header:
	 * a complete IPv4+TCP packet. Unless tx_cksum_offload, IPv4 and TCP
	 * checksums are computed. With tx_cksum_offload, ol_flags carry
	 * RTE_MBUF_F_TX_IPV4|IP_CKSUM|TCP_CKSUM, l3_len/l4_len are set, the IP
	 * checksum is 0 and the TCP checksum holds the pseudo-header sum; l2_len
	 * is 0: the net layer sets it when it prepends Ethernet. Consumes m.
	 */
	void (*ip_output)(void *net_ctx, struct rte_mbuf *m);
	void *net_ctx;
	bool tx_cksum_offload;
	/*
	 * Active open: does the return traffic of this 4-tuple (from raddr:rport
	 * to laddr:lport) land on this lcore (RSS or software Toeplitz)? NULL =
	 * always. The ephemeral port is chosen until this says yes.
	 */
	bool (*flow_is_local)(
		void *net_ctx, uint32_t laddr, uint32_t raddr, uint16_t lport, uint16_t rport);
	/*
	 * Optional: source address for an active open to raddr (route lookup).
	 * Used by gw_tcp_connect() when its laddr is 0. Returns 0 if none.
	 */
	uint32_t (*src_addr)(void *net_ctx, uint32_t raddr);
	uint32_t max_conns;            /* connection objects; 0 = 16384 */
	uint64_t tsc_hz;               /* clock of now_tsc; 0 = rte_get_tsc_hz() */
	uint16_t mtu;                  /* IPv4 MTU; 0 = 1500 (MSS 1460) */
	uint32_t sndbuf;               /* send buffer per connection; 0 = 256 KiB */
	uint32_t rcvbuf;               /* receive buffer (window); 0 = 256 KiB */
	uint32_t time_wait_ms;         /* TIME_WAIT; 0 = 2000 (a gateway, not 2 MSL) */
	uint32_t handshake_timeout_ms; /* SYN_SENT/SYN_RCVD lifetime; 0 = 10000 */
	uint32_t idle_timeout_ms;      /* no segment received or, with data pending,
					* no new ACK; 0 = 300000. Closed by the app:
					* 30 s without progress */
	uint32_t max_ooo_segs;         /* out-of-order queue per conn; 0 = 2 windows
					* of full segments (2 * rcvbuf / MSS), >= 64 */
	uint32_t rto_min_ms;           /* 0 = 200 (Linux), RFC 6298 says 1000 */
	uint64_t ooo_mem_max;          /* out-of-order buffer bytes (mbuf buf_len) of all
					* connections; 0 = an eighth of the pool */
	uint64_t secret_seed;          /* tests only: derive the ISN/SYN cookie keys
					* from this; 0 = RAND_bytes (production) */
};

/*
 * Create a stack. Must be called on params->lcore after rte_eal_init (it
 * creates an rte_hash on that lcore's socket; the connection objects are one
 * array allocated here, never on the packet path).
 * Returns 0 or -EINVAL (bad params), -ENOMEM (hash/pool creation failed);
 * the cause is in gw_err.
 */
GW_MUST_CHECK int gw_tcp_stack_create(
	const struct gw_tcp_stack_params *p, struct gw_tcp_stack **out);

/*
 * Free everything: connections (no events delivered, no packets sent),
 * queued mbufs, listeners (their ctx_free is called), hash, connection array.
 * NULL ok.
 */
void gw_tcp_stack_destroy(struct gw_tcp_stack *s);

/*
 * One received segment. m's data starts at the IPv4 header; the net layer has
 * validated the IPv4 header (version, IHL, header checksum, total length, and
 * trimmed m to it), checked it is not a fragment, dst is ours, protocol TCP.
 * TCP checks the rest (checksum, honouring RTE_MBUF_F_RX_L4_CKSUM_GOOD/BAD;
 * header length; options). Consumes m on all paths. Time is the now_tsc of
 * the latest gw_tcp_poll().
 */
void gw_tcp_input(struct gw_tcp_stack *s, struct rte_mbuf *m);

/*
 * Once per worker loop iteration: advance the clock and the timer wheel,
 * then send pending ACKs, window updates and queued data.
 */
void gw_tcp_poll(struct gw_tcp_stack *s, uint64_t now_tsc);

/*
 * Send what was queued since gw_tcp_poll (ACKs, window updates, data
 * written by work that came without a packet, such as a handshake resumed
 * by an HSM answer), on the clock of that poll, so it leaves in this
 * iteration rather than after the worker's idle wait.
 */
void gw_tcp_flush(struct gw_tcp_stack *s);

/* Counters and connections by state, read by the same lcore (copy out). */
void gw_tcp_stats_get(const struct gw_tcp_stack *s, struct gw_tcp_stats *out);

/* The stack's connection slots (max_conns, its default filled in). */
uint32_t gw_tcp_stack_max_conns(const struct gw_tcp_stack *s);

/* ---- stream API ---- */

enum gw_tcp_event {
	GW_TCP_EV_CONNECTED, /* active open reached ESTABLISHED */
	GW_TCP_EV_READABLE,  /* new in-order bytes arrived (each arrival; bytes the
			      * app leaves unread stay buffered, no reminder) */
	GW_TCP_EV_WRITABLE,  /* room again after a gw_tcp_write() that was short,
			      * filled the buffer, or failed -ENOBUFS */
	GW_TCP_EV_PEER_FIN,  /* peer closed its direction; reads drain then return 0 */
	GW_TCP_EV_CLOSED,    /* the connection is over; handle now invalid. reason:
			      * 0 (both FINs done and TIME_WAIT/LAST_ACK over
			      * before the app called gw_tcp_close), -ECONNRESET
			      * (peer RST),
			      * -ECONNREFUSED (RST to our SYN), -ETIMEDOUT
			      * (retransmission, handshake or idle timeout) */
};

typedef void gw_tcp_event_fn(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx);

/*
 * A new passive connection reached ESTABLISHED. The callee sets the events
 * callback (gw_tcp_set_callback) and takes ownership of c; returning non-zero
 * refuses it (the stack answers RST and frees it).
 */
typedef int gw_tcp_accept_fn(struct gw_tcp_conn *c, void *listen_ctx);

struct gw_tcp_listen_params {
	uint32_t laddr;   /* 0 = any of our addresses */
	uint16_t lport;   /* != 0 */
	uint32_t backlog; /* half-open (SYN_RCVD) connections before SYN cookies; 0 = 128 */
	gw_tcp_accept_fn *accept;
	void *ctx;
	void (*ctx_free)(void *ctx); /* called by gw_tcp_stack_destroy; may be NULL */
};

/* Returns 0, -EINVAL, -EADDRINUSE (same laddr:lport), -ENOSPC (too many). */
GW_MUST_CHECK int gw_tcp_listen(struct gw_tcp_stack *s, const struct gw_tcp_listen_params *p);

struct gw_tcp_connect_params {
	uint32_t laddr; /* 0 = params.src_addr(raddr) */
	uint32_t raddr;
	uint16_t rport;
	gw_tcp_event_fn *cb; /* CONNECTED or CLOSED(-ECONNREFUSED/-ETIMEDOUT) follows */
	void *ctx;
};

/*
 * Active open: picks an ephemeral port whose return traffic is local, sends
 * the SYN at the next poll. *out is owned by the app from now on (see the
 * lifetime rule above). Returns 0, -EINVAL, -EADDRNOTAVAIL (no source
 * address or no local ephemeral port), -ENOMEM (connection pool full).
 */
GW_MUST_CHECK int gw_tcp_connect(
	struct gw_tcp_stack *s, const struct gw_tcp_connect_params *p, struct gw_tcp_conn **out);

void gw_tcp_set_callback(struct gw_tcp_conn *c, gw_tcp_event_fn *cb, void *ctx);
void *gw_tcp_get_ctx(const struct gw_tcp_conn *c);
void gw_tcp_set_ctx(struct gw_tcp_conn *c, void *ctx);

/*
 * Copy up to len received in-order bytes into buf. Returns the count, 0 if
 * nothing is buffered (check gw_tcp_peer_closed() for EOF). Reopens the
 * receive window (a window update is sent at the next poll if it grew
 * enough, RFC 9293 3.8.6.2.2).
 */
size_t gw_tcp_read(struct gw_tcp_conn *c, void *buf, size_t len);

/*
 * Copy up to len buffered bytes without consuming them; gw_tcp_consume()
 * then drops n of them (n <= gw_tcp_rx_avail) and reopens the window. For a
 * relay that may not be able to pass on everything it peeked.
 */
size_t gw_tcp_peek(const struct gw_tcp_conn *c, void *buf, size_t len);
void gw_tcp_consume(struct gw_tcp_conn *c, size_t n);

/* Bytes buffered for gw_tcp_read(). */
size_t gw_tcp_rx_avail(const struct gw_tcp_conn *c);

/* Peer sent FIN and every byte before it has been read. */
bool gw_tcp_peer_closed(const struct gw_tcp_conn *c);

/*
 * Copy up to len bytes into the send queue (mbufs filled to their data room;
 * segments of up to MSS are cut from it at send time); they go out at the
 * next poll as the windows allow. Returns bytes accepted (less than len
 * when the send buffer is full: GW_TCP_EV_WRITABLE follows once there is
 * room), or a negative errno: -ENOTCONN (not yet established), -EPIPE (after
 * gw_tcp_shutdown or a reset), -ENOBUFS (mbuf pool empty; nothing lost, try
 * again on WRITABLE).
 */
GW_MUST_CHECK long gw_tcp_write(struct gw_tcp_conn *c, const void *buf, size_t len);

/* Free space in the send buffer. */
size_t gw_tcp_tx_space(const struct gw_tcp_conn *c);

/* Send FIN after the queued data (half-close). Events continue. */
void gw_tcp_shutdown(struct gw_tcp_conn *c);

/*
 * Done with the connection: FIN after queued data (an RST instead if
 * received data was left unread, RFC 2525 2.17); the stack finishes the
 * close alone. The handle is invalid afterwards.
 */
void gw_tcp_close(struct gw_tcp_conn *c);

/* Send RST, drop all queues, free. The handle is invalid afterwards. */
void gw_tcp_abort(struct gw_tcp_conn *c);

enum gw_tcp_state gw_tcp_get_state(const struct gw_tcp_conn *c);

struct gw_tcp_conn_info {
	uint32_t laddr, raddr; /* network order */
	uint16_t lport, rport; /* network order */
	enum gw_tcp_state state;
	uint32_t snd_mss, cwnd, ssthresh, srtt_us, rto_ms;
	uint32_t snd_wnd, rcv_wnd;
	uint8_t snd_wscale, rcv_wscale;
	bool from_syncookie;
};
void gw_tcp_get_info(const struct gw_tcp_conn *c, struct gw_tcp_conn_info *out);

/* c's remote address and port, network order (the client of an accepted
 * connection): what gw_tcp_get_info reports as raddr/rport, without the rest. */
void gw_tcp_get_peer(const struct gw_tcp_conn *c, uint32_t *raddr, uint16_t *rport);

/* The stack a connection belongs to (for a service that opens a peer). */
struct gw_tcp_stack *gw_tcp_conn_stack(const struct gw_tcp_conn *c);

#endif /* GW_TCP_H */
