/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcp_internal.h - the per-lcore TCP's private types, shared by tcp*.c only.
 * Layout follows VPP's tcp_connection_t: hot sequence state first, queues and
 * timers next, application glue last.
 *
 * The stack is split VPP-style: tcp.c (stack, connection objects, stream
 * API, poll), tcp_input.c (segment arrival, RFC 9293 3.10.7), tcp_output.c
 * (segment building, send path, retransmission), tcp_sack_cc.c (SACK
 * scoreboard, RTT, congestion control), tcp_timers.c (rtx/persist/TLP,
 * delayed ACK, life timer) and tcp_syncookie.c (SipHash ISNs, SYN cookies).
 * Helpers the per-packet path calls across those files are static inline
 * here so the split costs no call. All of it runs on the stack's own lcore:
 * nothing here is thread-safe.
 */
#ifndef GW_TCP_INTERNAL_H
#define GW_TCP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "tcp.h"
#include "timer_wheel.h"

/* RFC 9293 3.4 modular sequence arithmetic */
#define SEQ_LT(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)) <= 0)
#define SEQ_GT(a, b) SEQ_LT(b, a)
#define SEQ_GEQ(a, b) SEQ_LEQ(b, a)

#define TH_FIN RTE_TCP_FIN_FLAG
#define TH_SYN RTE_TCP_SYN_FLAG
#define TH_RST RTE_TCP_RST_FLAG
#define TH_PSH RTE_TCP_PSH_FLAG
#define TH_ACK RTE_TCP_ACK_FLAG

/* an out-of-order mbuf's sequence number and FIN bit, kept in fields the
 * receive path does not use once the segment is parsed */
#define OOO_SEQ(m) ((m)->hash.fdir.lo)
#define OOO_FIN(m) ((m)->hash.fdir.hi)

#define GW_TCP_MAX_LISTENERS 64
#define GW_TCP_WHEEL_SLOTS 4096 /* 1 ms ticks: ~4 s per revolution */
#define GW_TCP_RTO_INIT_MS 1000 /* RFC 6298 2.1 */
#define GW_TCP_RTO_MAX_MS 60000 /* RFC 6298 2.5 */
#define GW_TCP_DELACK_MS 40     /* Linux's minimum delayed-ACK time */
#define GW_TCP_SYN_RETRIES 6
#define GW_TCP_DATA_RETRIES 12
#define GW_TCP_ORPHAN_TIMEOUT_MS 30000  /* closed by the app, peer gone quiet */
#define GW_TCP_MIN_MSS 64               /* refuse tiny-MSS resource attacks */
#define GW_TCP_DEFAULT_MSS 536          /* RFC 9293 3.7.1 without the option */
#define GW_TCP_IW_SEGS 10               /* RFC 6928 initial window */
#define GW_TCP_CHALLENGE_ACK_PER_S 1000 /* per stack (RFC 5961 7, Linux's old default) */
#define GW_TCP_SB_MAX 8                 /* SACK scoreboard ranges */
#define GW_TCP_COOKIE_SLOT_MS 64000     /* SYN cookie key lifetime (tcp_syncookie.c) */

/* lookup key: our side first, all network order */
struct gw_tcp_key {
	uint32_t laddr, raddr;
	uint16_t lport, rport;
};

enum {
	GW_TCPF_ACK_NOW = 1u << 0,        /* send an ACK at the next output */
	GW_TCPF_IN_OUT = 1u << 1,         /* on the stack's output list */
	GW_TCPF_FIN_QUEUED = 1u << 2,     /* shutdown: FIN after the send queue */
	GW_TCPF_FIN_ACKED = 1u << 3,      /* our FIN has been acknowledged */
	GW_TCPF_FIN_RCVD = 1u << 4,       /* peer's FIN taken in order */
	GW_TCPF_APP_OWNED = 1u << 5,      /* the app holds the handle */
	GW_TCPF_APP_CLOSED = 1u << 6,     /* the app released it (close/abort) */
	GW_TCPF_WANT_WRITE = 1u << 7,     /* a write was short: WRITABLE owed */
	GW_TCPF_DEAD = 1u << 8,           /* freed; memory returned after the call */
	GW_TCPF_SYNCOOKIE = 1u << 9,      /* created from a SYN cookie */
	GW_TCPF_WS_OK = 1u << 10,         /* both sides sent window scale */
	GW_TCPF_RECOVERY = 1u << 11,      /* NewReno fast recovery */
	GW_TCPF_PERSIST = 1u << 12,       /* rtx timer is the persist timer */
	GW_TCPF_RTT_ON = 1u << 13,        /* one segment is being timed */
	GW_TCPF_HASHED = 1u << 14,        /* in the 4-tuple hash */
	GW_TCPF_SACK_OK = 1u << 18,       /* peer sent SACK-permitted: we send blocks */
	GW_TCPF_NOBUF = 1u << 20,         /* on nobuf_list */
	GW_TCPF_SACK_RECOV = 1u << 19,    /* fast recovery paced by the SACK pipe */
	GW_TCPF_TLP_ARMED = 1u << 16,     /* rtx timer is a tail loss probe */
	GW_TCPF_TLP_SENT = 1u << 17,      /* probe sent since the last new ACK */
	GW_TCPF_SYN_SENT_ONCE = 1u << 15, /* SYN / SYN-ACK went out at least once */
};

struct gw_tcp_listener {
	uint32_t laddr;
	uint16_t lport;
	uint32_t backlog;
	uint32_t n_synrcvd;
	gw_tcp_accept_fn *accept;
	void *ctx;
	void (*ctx_free)(void *ctx);
};

struct gw_tcp_conn {
	/* hot: sequence state (RFC 9293 3.3.1 names) */
	struct gw_tcp_key key;
	uint8_t state;
	uint8_t snd_wscale, rcv_wscale;
	uint8_t dupacks;
	uint32_t flags;
	uint32_t snd_una, snd_nxt, snd_max, snd_wnd, snd_wl1, snd_wl2, iss;
	uint32_t max_snd_wnd;
	uint32_t rcv_nxt, rcv_adv, irs;
	uint32_t rcv_unacked; /* in-order bytes since our last ACK */
	uint16_t snd_mss;
	/* congestion control (RFC 5681, 6582) */
	uint32_t cwnd, ssthresh, recover, bytes_acked;
	/* RTT (RFC 6298), microseconds / milliseconds */
	uint32_t srtt_us, rttvar_us, rto_ms;
	uint32_t rtt_seq;
	uint64_t rtt_start_us;
	uint8_t backoff; /* RTO doublings since the last new ACK */
	uint8_t retries; /* consecutive timeouts */
	/* send queue: bytes from snd_una (head_off bytes of head already acked) */
	struct rte_mbuf *sndq_head, *sndq_tail;
	uint32_t sndq_bytes, sndq_head_off;
	struct rte_mbuf *sndq_cur; /* cursor: mbuf holding byte cur_seq */
	uint32_t sndq_cur_seq;
	/* receive queue: in-order unread bytes; ooo: sorted by seq */
	struct rte_mbuf *rcvq_head, *rcvq_tail;
	uint32_t rcvq_bytes, rcvq_head_off;
	struct rte_mbuf *ooo_head;
	uint32_t ooo_n;
	uint32_t ooo_mem;   /* buffer bytes (truesize) of the out-of-order queue */
	uint32_t sack_last; /* seq of the latest out-of-order arrival */
	/* SACK scoreboard (RFC 6675): disjoint sorted ranges above snd_una */
	uint32_t sb[GW_TCP_SB_MAX][2];
	uint8_t sb_n;
	uint32_t sb_bytes;
	uint32_t rtx_next;  /* SACK recovery: holes below it were resent */
	uint32_t rtx_round; /* snd_max when this round of resends began */
	/* timers: deadlines in ms (0 = off), one wheel entry at the earliest */
	struct gw_tw_timer tw;
	uint64_t t_rtx, t_delack, t_life;
	uint64_t last_rx_ms;
	uint64_t last_prog_ms; /* last new ACK (or close): orphan timeout */
	/* glue */
	struct gw_tcp_stack *s;
	struct gw_tcp_listener *lst; /* SYN_RCVD: backlog accounting */
	gw_tcp_event_fn *cb;
	void *ctx;
	TAILQ_ENTRY(gw_tcp_conn) out_link;
	TAILQ_ENTRY(gw_tcp_conn) dead_link;
	TAILQ_ENTRY(gw_tcp_conn) nobuf_link;
	uint32_t nobuf_gen; /* s->nobuf_gen when it joined nobuf_list */
	struct gw_tcp_conn *free_next;
};

TAILQ_HEAD(gw_tcp_conn_list, gw_tcp_conn);

struct gw_tcp_stack {
	struct gw_tcp_stack_params p;
	struct rte_hash *hash;
	struct gw_tcp_conn *conns; /* max_conns objects */
	struct gw_tcp_conn *free_head;
	struct gw_tcp_conn_list out_list;   /* need output at poll */
	struct gw_tcp_conn_list dead_list;  /* freed, memory back at call end */
	struct gw_tcp_conn_list nobuf_list; /* a write found the pool empty */
	uint32_t nobuf_gen;                 /* one per walk of nobuf_list */
	unsigned nobuf_min;                 /* free mbufs before nobuf_list is woken */
	struct gw_tw tw;
	uint64_t now_us, now_ms;
	uint16_t mss; /* what we advertise: mtu - 40 */
	uint8_t rcv_wscale;
	uint16_t ip_id;
	uint16_t eph_next;
	uint64_t secret[2];    /* SipHash key for ISNs (RFC 6528), from RAND_bytes */
	uint64_t ck_key[2][2]; /* SYN cookie keys of slots ck_period and ck_period - 1,
				* at index period & 1 (rekeyed each slot) */
	uint64_t ck_period;    /* cookie slot (now_ms / 64 s) of the newest key */
	uint64_t chack_sec;    /* challenge ACK limit: current second, count */
	uint32_t chack_n;
	unsigned n_lst;
	struct gw_tcp_listener lst[GW_TCP_MAX_LISTENERS];
	uint64_t ooo_mem; /* out-of-order buffer bytes of all connections */
	struct gw_tcp_stats st;
};

/* ---------- helpers the hot path shares across tcp*.c (inline) ---------- */

/* ---------- small helpers ---------- */

static inline uint32_t
tcp_min32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static inline uint32_t
tcp_max32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

static inline void
tcp_set_state(struct gw_tcp_conn *c, enum gw_tcp_state st)
{
	c->s->st.conns[c->state]--;
	c->state = st;
	c->s->st.conns[st]++;
}

static inline bool
tcp_synchronized(const struct gw_tcp_conn *c)
{
	return c->state >= GW_TCP_ST_ESTABLISHED;
}

static inline void
tcp_mark_output(struct gw_tcp_conn *c)
{
	if (c->flags & (GW_TCPF_IN_OUT | GW_TCPF_DEAD))
		return;
	c->flags |= GW_TCPF_IN_OUT;
	TAILQ_INSERT_TAIL(&c->s->out_list, c, out_link);
}

/* Re-arm the one wheel entry at the earliest deadline. */
static inline void
tcp_timer_update(struct gw_tcp_conn *c)
{
	uint64_t t = 0;

	if (c->flags & GW_TCPF_DEAD)
		return;
	if (c->t_rtx)
		t = c->t_rtx;
	if (c->t_delack && (!t || c->t_delack < t))
		t = c->t_delack;
	if (c->t_life && (!t || c->t_life < t))
		t = c->t_life;
	if (!t) {
		gw_tw_cancel(&c->tw);
		return;
	}
	if (!gw_tw_armed(&c->tw) || c->tw.expire != t)
		gw_tw_arm(&c->s->tw, &c->tw, t);
}

static inline void
tcp_mbuf_list_free(struct rte_mbuf *m)
{
	while (m) {
		struct rte_mbuf *n = m->next;

		m->next = NULL;
		m->nb_segs = 1;
		rte_pktmbuf_free_seg(m);
		m = n;
	}
}

/* Deliver an event unless the app is gone. Returns false if c died. */
static inline bool
tcp_notify(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason)
{
	if ((c->flags & (GW_TCPF_APP_OWNED | GW_TCPF_APP_CLOSED)) != GW_TCPF_APP_OWNED || !c->cb)
		return !(c->flags & GW_TCPF_DEAD);
	if (ev == GW_TCP_EV_CLOSED)
		c->flags |= GW_TCPF_APP_CLOSED; /* handle invalid from here */
	c->cb(c, ev, reason, c->ctx);
	return !(c->flags & GW_TCPF_DEAD);
}

static inline uint32_t
tcp_fin_seq(const struct gw_tcp_conn *c)
{
	return c->snd_una + c->sndq_bytes;
}

static inline uint32_t
tcp_flight(const struct gw_tcp_conn *c)
{
	return c->snd_max - c->snd_una;
}

static inline uint32_t
tcp_sb_high(const struct gw_tcp_conn *c)
{
	return c->sb_n ? c->sb[c->sb_n - 1][1] : c->snd_una;
}

/* RFC 5681 (3.1, eq. 4) on loss: half the flight, at least two segments. */
static inline void
tcp_cc_loss(struct gw_tcp_conn *c)
{
	c->ssthresh = tcp_max32(tcp_flight(c) / 2, 2u * c->snd_mss);
}

static inline void
tcp_rtx_stop(struct gw_tcp_conn *c)
{
	if (c->t_rtx) {
		c->t_rtx = 0;
		c->flags &= ~GW_TCPF_PERSIST;
		tcp_timer_update(c);
	}
}

/* ---------- functions shared between tcp*.c ----------
 * Full contracts are at the definitions; c (or s) is the calling lcore's
 * own. None takes an mbuf. Anything that may end c (drop, free, a callback)
 * leaves it flagged GW_TCPF_DEAD; its memory returns at tcp_reap().
 */

/* tcp.c */
/* NULL when the table or the hash is full (conn_alloc_fail counted) */
struct gw_tcp_conn *tcp_conn_alloc(struct gw_tcp_stack *s, const struct gw_tcp_key *k);
void tcp_conn_free(struct gw_tcp_conn *c); /* silent: no CLOSED event */
void tcp_reap(struct gw_tcp_stack *s);
void tcp_conn_drop(struct gw_tcp_conn *c, int reason); /* CLOSED(reason), then free */

/* tcp_syncookie.c */
uint32_t tcp_isn(struct gw_tcp_stack *s, const struct gw_tcp_key *k);
/* 0, or -EIO when RAND_bytes failed (k is still rekeyed from itself) */
int tcp_key_fill(const struct gw_tcp_stack *s, uint64_t k[2], uint64_t tweak);
uint32_t tcp_cookie_make(
	struct gw_tcp_stack *s, const struct gw_tcp_key *k, uint32_t irs, uint16_t mss);
/* the MSS the cookie encodes, or 0 if it is not one of ours (or too old) */
uint16_t tcp_cookie_check(
	struct gw_tcp_stack *s, const struct gw_tcp_key *k, uint32_t irs, uint32_t cookie);

/* tcp_output.c */
/* tcp_xmit_raw/tcp_xmit: 0, or -ENOBUFS when the pool is empty */
int tcp_xmit_raw(struct gw_tcp_stack *s, const struct gw_tcp_key *k, uint32_t seq, uint32_t ack,
	uint8_t flags, uint16_t wnd, const uint8_t *opt, uint16_t optlen, struct gw_tcp_conn *c,
	uint32_t data_len);
uint16_t tcp_rcv_wnd_field(struct gw_tcp_conn *c, bool syn);
uint16_t tcp_opt_syn(uint8_t *o, uint16_t mss, int ws, bool sack);
int tcp_xmit(struct gw_tcp_conn *c, uint32_t seq, uint8_t flags, uint32_t data_len);
void tcp_send_ack_now(struct gw_tcp_conn *c);
void tcp_challenge_ack(struct gw_tcp_conn *c);
void tcp_send_rst_for(struct gw_tcp_stack *s, const struct gw_tcp_key *k, uint32_t seq,
	uint32_t ack, uint8_t flags, uint32_t seglen);
void tcp_sack_output(struct gw_tcp_conn *c, bool force_one);
void tcp_output(struct gw_tcp_conn *c);
void tcp_rtx_head(struct gw_tcp_conn *c);

/* tcp_timers.c */
void tcp_rtx_arm(struct gw_tcp_conn *c);
void tcp_on_life(struct gw_tcp_conn *c);
void tcp_timer_fire(struct gw_tw_timer *t, void *arg);

/* tcp_sack_cc.c */
void tcp_sb_add(struct gw_tcp_conn *c, uint32_t b, uint32_t e);
void tcp_sb_trim(struct gw_tcp_conn *c);
uint32_t tcp_sb_sacked_in(const struct gw_tcp_conn *c, uint32_t from, uint32_t to);
uint32_t tcp_sack_pipe(const struct gw_tcp_conn *c);
void tcp_rtt_sample(struct gw_tcp_conn *c, uint32_t r_us);
void tcp_cc_dupack(struct gw_tcp_conn *c, uint32_t ack);
void tcp_cc_ack(struct gw_tcp_conn *c, uint32_t ack, uint32_t acked);

/* tcp_input.c */
/* the exact address first, then a wildcard (0) listener; NULL if none */
struct gw_tcp_listener *tcp_listener_find(struct gw_tcp_stack *s, uint32_t laddr, uint16_t lport);

#endif /* GW_TCP_INTERNAL_H */
