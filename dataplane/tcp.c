/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcp.c - mtlsgw's per-lcore TCP: connection table, state machine (RFC 9293
 * 3.10), retransmission (RFC 6298), congestion control (RFC 5681 + NewReno,
 * RFC 6582; SACK-paced recovery after RFC 6675 when the peer SACKs, RFC 2018
 * blocks in our ACKs), tail loss probes (RFC 8985), early and limited
 * transmit (RFC 5827, 3042), SYN cookies (RFC 4987), RST/SYN/ACK hardening
 * (RFC 5961) and the stream API of tcp.h. No timestamps (and so no PAWS):
 * we never advertise them.
 *
 * Output is batched: input and the app only mark a connection as needing
 * output (ACK_NOW, new data, FIN); gw_tcp_poll() walks that list once per
 * worker loop iteration, so the ACKs of a whole RX burst coalesce (VPP does
 * the same). Duplicate ACKs for out-of-order data, challenge ACKs and RSTs go
 * out at once because the peer's loss recovery counts them one by one.
 *
 * Timers: each connection has three deadlines (rtx/persist, delayed ACK,
 * life = handshake/idle/TIME_WAIT) and one wheel entry armed at the earliest.
 * The idle deadline is checked lazily against last_rx_ms so receiving a
 * segment never touches the wheel for it.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "tcp_internal.h"

#define TH_FIN RTE_TCP_FIN_FLAG
#define TH_SYN RTE_TCP_SYN_FLAG
#define TH_RST RTE_TCP_RST_FLAG
#define TH_PSH RTE_TCP_PSH_FLAG
#define TH_ACK RTE_TCP_ACK_FLAG

/* ---------- names ---------- */

static const char *const tcp_state_names[] = {
#define GW_TCP_ST_NAME_(n) #n,
	GW_TCP_STATES(GW_TCP_ST_NAME_)
#undef GW_TCP_ST_NAME_
};

const char *
gw_tcp_state_name(enum gw_tcp_state st)
{
	return (unsigned)st < GW_TCP_ST_MAX ? tcp_state_names[st] : "?";
}

static const char *const tcp_stat_names[] = {
#define GW_TCP_STAT_NAME_(n) #n,
	GW_TCP_STATS(GW_TCP_STAT_NAME_)
#undef GW_TCP_STAT_NAME_
};

const char *const *
gw_tcp_stat_names(size_t *n)
{
	*n = RTE_DIM(tcp_stat_names);
	return tcp_stat_names;
}

/* ---------- SipHash-2-4 (ISNs per RFC 6528, SYN cookie MACs) ---------- */

#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND                      \
	do {                           \
		v0 += v1;              \
		v1 = SIP_ROTL(v1, 13); \
		v1 ^= v0;              \
		v0 = SIP_ROTL(v0, 32); \
		v2 += v3;              \
		v3 = SIP_ROTL(v3, 16); \
		v3 ^= v2;              \
		v0 += v3;              \
		v3 = SIP_ROTL(v3, 21); \
		v3 ^= v0;              \
		v2 += v1;              \
		v1 = SIP_ROTL(v1, 17); \
		v1 ^= v2;              \
		v2 = SIP_ROTL(v2, 32); \
	} while (0)

static uint64_t
tcp_siphash(const uint64_t k[2], uint64_t m0, uint64_t m1)
{
	uint64_t v0 = k[0] ^ 0x736f6d6570736575ULL, v1 = k[1] ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k[0] ^ 0x6c7967656e657261ULL, v3 = k[1] ^ 0x7465646279746573ULL;
	uint64_t m[3] = {m0, m1, 16ULL << 56};

	for (int i = 0; i < 3; i++) {
		v3 ^= m[i];
		SIP_ROUND;
		SIP_ROUND;
		v0 ^= m[i];
	}
	v2 ^= 0xff;
	SIP_ROUND;
	SIP_ROUND;
	SIP_ROUND;
	SIP_ROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t
tcp_key_word(const struct gw_tcp_key *k)
{
	return (uint64_t)k->laddr << 32 | k->raddr;
}

static uint64_t
tcp_port_word(const struct gw_tcp_key *k)
{
	return (uint64_t)k->lport << 16 | k->rport;
}

/* RFC 6528: ISN = M + F(4-tuple, secret), M a 4 microsecond clock */
static uint32_t
tcp_isn(struct gw_tcp_stack *s, const struct gw_tcp_key *k)
{
	return (uint32_t)tcp_siphash(s->secret, tcp_key_word(k), tcp_port_word(k)) +
	       (uint32_t)(s->now_us >> 2);
}

/*
 * A fresh 128-bit key. Every secret comes from OpenSSL's CSPRNG (DPDK
 * documents rte_rand() as not cryptographically secure); params.secret_seed
 * (tests) derives keys deterministically from the seed and tweak instead.
 * If RAND_bytes fails, the key is a keyed hash of the previous one: still
 * unpredictable to anyone who did not know that. Returns 0 or -EIO.
 */
static int
tcp_key_fill(const struct gw_tcp_stack *s, uint64_t k[2], uint64_t tweak)
{
	if (s->p.secret_seed) {
		k[0] = s->p.secret_seed * 0x9e3779b97f4a7c15ULL + tweak;
		k[1] = (s->p.secret_seed ^ tweak) * 0xc2b2ae3d27d4eb4fULL + 1;
		return 0;
	}
	if (RAND_bytes((unsigned char *)k, 2 * sizeof(k[0])) == 1)
		return 0;
	k[0] = tcp_siphash(k, tweak, 1);
	k[1] = tcp_siphash(k, tweak, 2);
	return -EIO;
}

/* ---------- SYN cookies (RFC 4987) ----------
 * 32 bits: [31:27] time slot (64 s, mod 32) [26:25] MSS index [24:0] MAC over
 * the 4-tuple, the client's ISN, slot and MSS index. No room for window
 * scale: a cookie connection runs unscaled (as Linux without timestamps).
 * Each slot has its own MAC key, made when the slot begins: a cookie is
 * valid in its slot and the next one (64..128 s) and the key of a slot
 * older than that no longer exists.
 */
static const uint16_t tcp_cookie_mss[4] = {536, 1220, 1440, 1460};
#define COOKIE_SLOT_MS 64000

/* Rekey when a new slot begins (lazily, on the next cookie made or checked). */
static void
tcp_cookie_rekey(struct gw_tcp_stack *s)
{
	uint64_t period = s->now_ms / COOKIE_SLOT_MS;

	if (period == s->ck_period)
		return;
	if (period != s->ck_period + 1) {
		/* more than one slot passed: the previous slot's key was never
		 * made, so nothing may verify against the old one */
		(void)tcp_key_fill(s, s->ck_key[(period - 1) & 1], period - 1);
	}
	(void)tcp_key_fill(s, s->ck_key[period & 1], period);
	s->ck_period = period;
}

static uint32_t
tcp_cookie_mac(struct gw_tcp_stack *s, const struct gw_tcp_key *k, uint32_t irs, uint32_t slot,
	uint32_t mssi, uint64_t period)
{
	uint64_t m1 = tcp_port_word(k) << 32 | irs;
	uint64_t h = tcp_siphash(
		s->ck_key[period & 1], tcp_key_word(k) ^ ((uint64_t)(slot << 2 | mssi) << 56), m1);

	return (uint32_t)h & 0x1ffffff;
}

static uint32_t
tcp_cookie_make(struct gw_tcp_stack *s, const struct gw_tcp_key *k, uint32_t irs, uint16_t mss)
{
	uint32_t slot, mssi = 0;

	tcp_cookie_rekey(s);
	slot = (uint32_t)s->ck_period & 31;
	for (uint32_t i = 0; i < RTE_DIM(tcp_cookie_mss); i++)
		if (tcp_cookie_mss[i] <= mss)
			mssi = i;
	return slot << 27 | mssi << 25 | tcp_cookie_mac(s, k, irs, slot, mssi, s->ck_period);
}

/* Returns the MSS encoded in a valid cookie, 0 if forged or stale. */
static uint16_t
tcp_cookie_check(struct gw_tcp_stack *s, const struct gw_tcp_key *k, uint32_t irs, uint32_t cookie)
{
	uint32_t slot = cookie >> 27, mssi = (cookie >> 25) & 3;
	uint64_t period;

	tcp_cookie_rekey(s);
	/* valid for the current and the previous slot: 64..128 s */
	if (slot == (s->ck_period & 31))
		period = s->ck_period;
	else if (slot == ((s->ck_period - 1) & 31))
		period = s->ck_period - 1;
	else
		return 0;
	if ((cookie & 0x1ffffff) != tcp_cookie_mac(s, k, irs, slot, mssi, period))
		return 0;
	return tcp_cookie_mss[mssi];
}

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

static void
tcp_set_state(struct gw_tcp_conn *c, enum gw_tcp_state st)
{
	c->s->st.conns[c->state]--;
	c->state = st;
	c->s->st.conns[st]++;
}

static bool
tcp_synchronized(const struct gw_tcp_conn *c)
{
	return c->state >= GW_TCP_ST_ESTABLISHED;
}

static void
tcp_mark_output(struct gw_tcp_conn *c)
{
	if (c->flags & (GW_TCPF_IN_OUT | GW_TCPF_DEAD))
		return;
	c->flags |= GW_TCPF_IN_OUT;
	TAILQ_INSERT_TAIL(&c->s->out_list, c, out_link);
}

/* Re-arm the one wheel entry at the earliest deadline. */
static void
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

static void
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
static bool
tcp_notify(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason)
{
	if ((c->flags & (GW_TCPF_APP_OWNED | GW_TCPF_APP_CLOSED)) != GW_TCPF_APP_OWNED || !c->cb)
		return !(c->flags & GW_TCPF_DEAD);
	if (ev == GW_TCP_EV_CLOSED)
		c->flags |= GW_TCPF_APP_CLOSED; /* handle invalid from here */
	c->cb(c, ev, reason, c->ctx);
	return !(c->flags & GW_TCPF_DEAD);
}

/* ---------- connection objects ---------- */

static struct gw_tcp_conn *
tcp_conn_alloc(struct gw_tcp_stack *s, const struct gw_tcp_key *k)
{
	struct gw_tcp_conn *c = s->free_head;

	if (!c) {
		s->st.conn_alloc_fail++;
		return NULL;
	}
	if (rte_hash_add_key_data(s->hash, k, c) < 0) {
		s->st.conn_alloc_fail++;
		return NULL;
	}
	s->free_head = c->free_next;
	memset(c, 0, sizeof(*c));
	c->key = *k;
	c->s = s;
	c->state = GW_TCP_ST_CLOSED;
	s->st.conns[GW_TCP_ST_CLOSED]++;
	c->flags = GW_TCPF_HASHED;
	c->rto_ms = GW_TCP_RTO_INIT_MS;
	c->snd_mss = GW_TCP_DEFAULT_MSS;
	c->last_rx_ms = s->now_ms;
	c->last_prog_ms = s->now_ms;
	return c;
}

/*
 * Tear down: queues, timers, hash entry. The memory goes back to the pool
 * when the current input/poll call ends (callbacks up the stack may still
 * hold c).
 */
static void
tcp_conn_free(struct gw_tcp_conn *c)
{
	struct gw_tcp_stack *s = c->s;

	if (c->flags & GW_TCPF_DEAD)
		return;
	if (c->state == GW_TCP_ST_SYN_RCVD && c->lst)
		c->lst->n_synrcvd--;
	c->lst = NULL;
	tcp_set_state(c, GW_TCP_ST_CLOSED);
	if (c->flags & GW_TCPF_IN_OUT)
		TAILQ_REMOVE(&s->out_list, c, out_link);
	if (c->flags & GW_TCPF_NOBUF)
		TAILQ_REMOVE(&s->nobuf_list, c, nobuf_link);
	gw_tw_cancel(&c->tw);
	tcp_mbuf_list_free(c->sndq_head);
	tcp_mbuf_list_free(c->rcvq_head);
	tcp_mbuf_list_free(c->ooo_head);
	s->ooo_mem -= c->ooo_mem;
	c->ooo_mem = 0;
	c->sndq_head = c->sndq_tail = c->sndq_cur = NULL;
	c->rcvq_head = c->rcvq_tail = c->ooo_head = NULL;
	c->sndq_bytes = c->rcvq_bytes = c->ooo_n = 0;
	if (c->flags & GW_TCPF_HASHED)
		rte_hash_del_key(s->hash, &c->key);
	c->flags = (c->flags & ~(GW_TCPF_IN_OUT | GW_TCPF_HASHED | GW_TCPF_NOBUF)) | GW_TCPF_DEAD;
	TAILQ_INSERT_TAIL(&s->dead_list, c, dead_link);
}

static void
tcp_reap(struct gw_tcp_stack *s)
{
	struct gw_tcp_conn *c;

	while ((c = TAILQ_FIRST(&s->dead_list)) != NULL) {
		TAILQ_REMOVE(&s->dead_list, c, dead_link);
		s->st.conns[GW_TCP_ST_CLOSED]--;
		s->st.conn_freed++;
		c->flags = 0;
		c->free_next = s->free_head;
		s->free_head = c;
	}
}

/* The stack ends c: tell the app (if it still holds c), then free. */
static void
tcp_conn_drop(struct gw_tcp_conn *c, int reason)
{
	if (c->flags & GW_TCPF_DEAD)
		return;
	tcp_notify(c, GW_TCP_EV_CLOSED, reason);
	tcp_conn_free(c);
}

/* ---------- output ---------- */

static void
tcp_fill_cksum(struct gw_tcp_stack *s, struct rte_mbuf *m, struct rte_ipv4_hdr *ip,
	struct rte_tcp_hdr *th, uint16_t thlen)
{
	ip->hdr_checksum = 0;
	th->cksum = 0;
	if (s->p.tx_cksum_offload) {
		m->l2_len = 0;
		m->l3_len = sizeof(*ip);
		m->l4_len = thlen;
		m->ol_flags |=
			RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM;
		th->cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
	} else {
		th->cksum = rte_ipv4_udptcp_cksum(ip, th);
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	}
}

/*
 * Build and send one segment. data_len bytes are copied from the send queue
 * starting at sequence seq (c must be given when data_len > 0). opt/optlen:
 * ready-made options, optlen a multiple of 4. Returns 0 or -ENOBUFS.
 */
static int
tcp_xmit_raw(struct gw_tcp_stack *s, const struct gw_tcp_key *k, uint32_t seq, uint32_t ack,
	uint8_t flags, uint16_t wnd, const uint8_t *opt, uint16_t optlen, struct gw_tcp_conn *c,
	uint32_t data_len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(s->p.pool);
	uint16_t thlen;
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *th;
	uint8_t *o;

	if (!m) {
		s->st.tx_nombuf++;
		return -ENOBUFS;
	}
	thlen = sizeof(*th) + optlen;
	ip = (struct rte_ipv4_hdr *)rte_pktmbuf_append(m, sizeof(*ip) + thlen + data_len);
	if (!ip) {
		rte_pktmbuf_free(m);
		s->st.tx_nombuf++;
		return -ENOBUFS;
	}
	th = (struct rte_tcp_hdr *)(ip + 1);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16(sizeof(*ip) + thlen + data_len);
	ip->packet_id = rte_cpu_to_be_16(s->ip_id++);
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = k->laddr;
	ip->dst_addr = k->raddr;
	th->src_port = k->lport;
	th->dst_port = k->rport;
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = rte_cpu_to_be_32((flags & TH_ACK) ? ack : 0);
	th->data_off = (uint8_t)((thlen / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(wnd);
	th->tcp_urp = 0;
	o = (uint8_t *)(th + 1);
	if (optlen) {
		memcpy(o, opt, optlen);
		o += optlen;
	}
	if (data_len) {
		/* copy from the send queue; the cursor makes this O(1) amortized */
		uint32_t base = c->snd_una - c->sndq_head_off; /* seq of head's byte 0 */
		struct rte_mbuf *q = c->sndq_head;
		uint32_t qseq = base, left = data_len, off;

		if (c->sndq_cur && SEQ_GEQ(seq, c->sndq_cur_seq)) {
			q = c->sndq_cur;
			qseq = c->sndq_cur_seq;
		}
		while (q && SEQ_GEQ(seq, qseq + q->data_len)) {
			qseq += q->data_len;
			q = q->next;
		}
		off = seq - qseq;
		c->sndq_cur = q;
		c->sndq_cur_seq = qseq;
		while (left && q) {
			uint32_t n = tcp_min32(left, q->data_len - off);

			memcpy(o, rte_pktmbuf_mtod_offset(q, uint8_t *, off), n);
			o += n;
			left -= n;
			off = 0;
			q = q->next;
		}
		RTE_ASSERT(left == 0);
		s->st.tx_bytes += data_len;
	}
	tcp_fill_cksum(s, m, ip, th, thlen);
	s->st.tx_seg++;
	if (flags & TH_RST)
		s->st.tx_rst++;
	else if (!data_len && flags == TH_ACK)
		s->st.tx_ack++;
	s->p.ip_output(s->p.net_ctx, m);
	return 0;
}

/*
 * The window to advertise (RFC 9293 3.8.6.2.2 receiver SWS avoidance: the
 * right edge only moves by at least min(rcvbuf/2, MSS); it never shrinks).
 * Updates rcv_adv. syn: unscaled, capped at 65535.
 */
static uint16_t
tcp_rcv_wnd_field(struct gw_tcp_conn *c, bool syn)
{
	struct gw_tcp_stack *s = c->s;
	uint32_t rcvbuf = s->p.rcvbuf;
	/* out-of-order buffers count against the window by their memory
	 * (half of it: their budget is twice rcvbuf): it stops growing */
	uint32_t used = c->rcvq_bytes + c->ooo_mem / 2;
	uint32_t free_ = rcvbuf > used ? rcvbuf - used : 0;
	uint32_t cur = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	uint32_t wnd, field;
	uint8_t ws = (c->flags & GW_TCPF_WS_OK) ? c->rcv_wscale : 0;

	if (free_ < cur + tcp_min32(rcvbuf / 2, s->mss))
		wnd = cur;
	else
		wnd = free_;
	if (syn || !(c->flags & GW_TCPF_WS_OK)) {
		field = tcp_min32(wnd, 65535);
		ws = 0;
	} else {
		/* round up so the scaled edge never falls below cur */
		field = tcp_min32((wnd + (1u << ws) - 1) >> ws, 65535);
	}
	if (SEQ_GT(c->rcv_nxt + (field << ws), c->rcv_adv) || !syn)
		c->rcv_adv = c->rcv_nxt + (field << ws);
	return (uint16_t)field;
}

/* SYN options: MSS, window scale (ws >= 0), SACK permitted. */
static uint16_t
tcp_opt_syn(uint8_t *o, uint16_t mss, int ws, bool sack)
{
	uint16_t n = 0;

	o[n++] = 2;
	o[n++] = 4;
	o[n++] = (uint8_t)(mss >> 8);
	o[n++] = (uint8_t)(mss & 0xff);
	if (ws >= 0) {
		o[n++] = 1; /* NOP: keep 4-byte alignment */
		o[n++] = 3;
		o[n++] = 3;
		o[n++] = (uint8_t)ws;
	}
	if (sack) {
		o[n++] = 1;
		o[n++] = 1;
		o[n++] = 4;
		o[n++] = 2;
	}
	return n;
}

#define OOO_SEQ(m) ((m)->hash.fdir.lo)
#define OOO_FIN(m) ((m)->hash.fdir.hi)

/*
 * SACK blocks (RFC 2018 4) describing the out-of-order queue: the block
 * holding the latest arrival first, then the others in order, at most 4
 * (no timestamps, so 36 of the 40 option bytes).
 */
static uint16_t
tcp_opt_sack(const struct gw_tcp_conn *c, uint8_t *o)
{
	uint32_t blk[4][2], nb = 0, first = UINT32_MAX;
	const struct rte_mbuf *q = c->ooo_head;
	uint16_t n = 0;

	while (q && nb < 4) {
		uint32_t b = OOO_SEQ(q), e = b + q->data_len;

		/* merge queued segments that touch */
		while (q->next && OOO_SEQ(q->next) == e) {
			q = q->next;
			e += q->data_len;
		}
		if (e != b) {
			if (SEQ_LEQ(b, c->sack_last) && SEQ_LT(c->sack_last, e))
				first = nb;
			blk[nb][0] = b;
			blk[nb][1] = e;
			nb++;
		}
		q = q->next;
	}
	if (!nb)
		return 0;
	o[n++] = 1;
	o[n++] = 1;
	o[n++] = 5;
	o[n++] = (uint8_t)(2 + 8 * nb);
	for (uint32_t i = 0; i < nb; i++) {
		/* rotate so the most recent block leads */
		uint32_t j = first < nb ? (first + i) % nb : i;
		uint32_t be = rte_cpu_to_be_32(blk[j][0]), ee = rte_cpu_to_be_32(blk[j][1]);

		memcpy(o + n, &be, 4);
		memcpy(o + n + 4, &ee, 4);
		n += 8;
	}
	return n;
}

/* Any segment to the peer from connection c (ACK bit set when synchronized). */
static int
tcp_xmit(struct gw_tcp_conn *c, uint32_t seq, uint8_t flags, uint32_t data_len)
{
	struct gw_tcp_stack *s = c->s;
	bool syn = flags & TH_SYN;
	uint8_t opt[40];
	uint16_t wnd, optlen = 0;
	int rc;

	if (c->state != GW_TCP_ST_SYN_SENT)
		flags |= TH_ACK;
	wnd = tcp_rcv_wnd_field(c, syn);
	if (syn) {
		bool active = c->state == GW_TCP_ST_SYN_SENT;

		optlen = tcp_opt_syn(opt, s->mss,
			active || (c->flags & GW_TCPF_WS_OK) ? c->rcv_wscale : -1,
			active || (c->flags & GW_TCPF_SACK_OK));
	} else if ((c->flags & GW_TCPF_SACK_OK) && c->ooo_head && !(flags & TH_RST)) {
		optlen = tcp_opt_sack(c, opt);
		/* options eat into the MSS (RFC 6691): rather no SACK than a
		 * segment over the MTU */
		if (data_len + optlen > c->snd_mss)
			optlen = 0;
	}
	rc = tcp_xmit_raw(s, &c->key, seq, c->rcv_nxt, flags, wnd, opt, optlen, c, data_len);
	if (rc == 0 && (flags & TH_ACK)) {
		c->flags &= ~GW_TCPF_ACK_NOW;
		c->rcv_unacked = 0;
		if (c->t_delack) {
			c->t_delack = 0;
			tcp_timer_update(c);
		}
	}
	return rc;
}

static void
tcp_send_ack_now(struct gw_tcp_conn *c)
{
	(void)tcp_xmit(c, c->snd_nxt, TH_ACK, 0);
}

/* RFC 5961 3.2/4.2 with the section 7 limit: spoofed RSTs or SYNs must not
 * turn the gateway into an ACK cannon. */
static void
tcp_challenge_ack(struct gw_tcp_conn *c)
{
	struct gw_tcp_stack *s = c->s;
	uint64_t sec = s->now_ms / 1000;

	if (sec != s->chack_sec) {
		s->chack_sec = sec;
		s->chack_n = 0;
	}
	if (s->chack_n >= GW_TCP_CHALLENGE_ACK_PER_S) {
		s->st.rx_challenge_ack_limited++;
		return;
	}
	s->chack_n++;
	s->st.rx_challenge_ack++;
	tcp_send_ack_now(c);
}

/* RFC 9293 3.10.7.1: the RST for a segment that has no connection. */
static void
tcp_send_rst_for(struct gw_tcp_stack *s, const struct gw_tcp_key *k, uint32_t seq, uint32_t ack,
	uint8_t flags, uint32_t seglen)
{
	if (flags & TH_RST)
		return;
	if (flags & TH_ACK)
		(void)tcp_xmit_raw(s, k, ack, 0, TH_RST, 0, NULL, 0, NULL, 0);
	else
		(void)tcp_xmit_raw(s, k, 0, seq + seglen, TH_RST | TH_ACK, 0, NULL, 0, NULL, 0);
}

static uint32_t tcp_flight(const struct gw_tcp_conn *c);

/*
 * Arm the retransmission timer (RFC 6298 5.1). While not recovering, a
 * tail loss probe (RFC 8985 7) comes first at 2 SRTT (plus the peer's
 * delayed-ACK time when one segment is out): an app-limited sender, such
 * as a relay, often has too few segments in flight for three dupacks, and
 * the probe turns a 200+ ms timeout into a fast recovery.
 */
static void
tcp_rtx_arm(struct gw_tcp_conn *c)
{
	uint32_t rto = c->rto_ms << tcp_min32(c->backoff, 10);
	uint64_t when = c->s->now_ms + tcp_min32(tcp_max32(rto, c->rto_ms), GW_TCP_RTO_MAX_MS);

	c->flags &= ~(GW_TCPF_PERSIST | GW_TCPF_TLP_ARMED);
	if (tcp_synchronized(c) && c->srtt_us && !c->backoff &&
		!(c->flags & (GW_TCPF_RECOVERY | GW_TCPF_TLP_SENT))) {
		uint32_t pto = (2 * c->srtt_us + 999) / 1000;

		if (tcp_flight(c) <= c->snd_mss)
			pto += GW_TCP_DELACK_MS + 10;
		pto = tcp_max32(pto, 10);
		if (c->s->now_ms + pto < when) {
			when = c->s->now_ms + pto;
			c->flags |= GW_TCPF_TLP_ARMED;
		}
	}
	c->t_rtx = when;
	tcp_timer_update(c);
}

static void
tcp_rtx_stop(struct gw_tcp_conn *c)
{
	if (c->t_rtx) {
		c->t_rtx = 0;
		c->flags &= ~GW_TCPF_PERSIST;
		tcp_timer_update(c);
	}
}

static uint32_t
tcp_fin_seq(const struct gw_tcp_conn *c)
{
	return c->snd_una + c->sndq_bytes;
}

/* ---------- SACK scoreboard (RFC 6675, simplified) ----------
 * Up to GW_TCP_SB_MAX disjoint ranges the peer SACKed above snd_una.
 * Everything unSACKed below the highest SACKed byte counts as lost (as
 * Linux's FACK did); the pipe is what is above that edge plus what we
 * retransmitted below it.
 */
static void
tcp_sb_add(struct gw_tcp_conn *c, uint32_t b, uint32_t e)
{
	uint32_t nb[GW_TCP_SB_MAX + 1][2], n = 0, bytes = 0;
	bool in = false;

	/* only what we sent and is not acked: anything else is a lie */
	if (!SEQ_LT(b, e) || SEQ_LEQ(e, c->snd_una) || SEQ_GT(e, c->snd_max))
		return;
	if (SEQ_LT(b, c->snd_una))
		b = c->snd_una;
	for (unsigned i = 0; i < c->sb_n; i++) {
		uint32_t rb = c->sb[i][0], re = c->sb[i][1];

		if (SEQ_LT(re, b)) {
			nb[n][0] = rb;
			nb[n++][1] = re;
		} else if (SEQ_LT(e, rb)) {
			if (!in) {
				nb[n][0] = b;
				nb[n++][1] = e;
				in = true;
			}
			nb[n][0] = rb;
			nb[n++][1] = re;
		} else { /* overlaps or touches: grow the new range */
			if (SEQ_LT(rb, b))
				b = rb;
			if (SEQ_GT(re, e))
				e = re;
		}
	}
	if (!in) {
		nb[n][0] = b;
		nb[n++][1] = e;
	}
	/* full: keep the lowest ranges, they decide what to resend next */
	c->sb_n = (uint8_t)tcp_min32(n, GW_TCP_SB_MAX);
	for (unsigned i = 0; i < c->sb_n; i++) {
		c->sb[i][0] = nb[i][0];
		c->sb[i][1] = nb[i][1];
		bytes += nb[i][1] - nb[i][0];
	}
	c->sb_bytes = bytes;
}

/* Drop what the cumulative ACK now covers. */
static void
tcp_sb_trim(struct gw_tcp_conn *c)
{
	unsigned k = 0;
	uint32_t bytes = 0;

	for (unsigned i = 0; i < c->sb_n; i++) {
		uint32_t b = c->sb[i][0], e = c->sb[i][1];

		if (SEQ_LEQ(e, c->snd_una))
			continue;
		if (SEQ_LT(b, c->snd_una))
			b = c->snd_una;
		c->sb[k][0] = b;
		c->sb[k++][1] = e;
		bytes += e - b;
	}
	c->sb_n = (uint8_t)k;
	c->sb_bytes = bytes;
}

static uint32_t
tcp_sb_sacked_in(const struct gw_tcp_conn *c, uint32_t from, uint32_t to)
{
	uint32_t n = 0;

	for (unsigned i = 0; i < c->sb_n; i++) {
		uint32_t b = SEQ_GT(c->sb[i][0], from) ? c->sb[i][0] : from;
		uint32_t e = SEQ_LT(c->sb[i][1], to) ? c->sb[i][1] : to;

		if (SEQ_LT(b, e))
			n += e - b;
	}
	return n;
}

static uint32_t
tcp_sb_high(const struct gw_tcp_conn *c)
{
	return c->sb_n ? c->sb[c->sb_n - 1][1] : c->snd_una;
}

static uint32_t
tcp_sack_pipe(const struct gw_tcp_conn *c)
{
	uint32_t high = tcp_sb_high(c), rn = c->rtx_next, p;

	if (SEQ_LT(high, c->snd_una))
		high = c->snd_una;
	p = SEQ_GT(c->snd_max, high) ? c->snd_max - high : 0;
	if (SEQ_GT(rn, high))
		rn = high;
	if (SEQ_GT(rn, c->snd_una))
		p += (rn - c->snd_una) - tcp_sb_sacked_in(c, c->snd_una, rn);
	return p;
}

/* Resend the holes below the highest SACKed byte while the pipe allows. */
static void
tcp_sack_output(struct gw_tcp_conn *c, bool force_one)
{
	uint32_t high = tcp_sb_high(c);
	uint32_t data_end = c->snd_una + c->sndq_bytes;

	if (SEQ_GT(high, data_end))
		high = data_end;
	/* lost retransmission: data first sent after this round of
	 * retransmissions began is SACKed, yet holes we resent are still
	 * open: they were lost again, start another round */
	if (SEQ_GT(tcp_sb_high(c), c->rtx_round) && SEQ_GT(c->rtx_next, c->snd_una) &&
		tcp_sb_sacked_in(c, c->snd_una, c->rtx_next) < c->rtx_next - c->snd_una) {
		c->rtx_next = c->snd_una;
		c->rtx_round = c->snd_max;
		c->s->st.tx_lost_rtx++;
	}
	for (;;) {
		uint32_t pipe = tcp_sack_pipe(c), seq, len;

		if (!force_one && pipe && pipe + c->snd_mss > c->cwnd)
			break;
		force_one = false; /* RFC 6675 5 (4.3): the first hole goes now */
		seq = SEQ_GT(c->rtx_next, c->snd_una) ? c->rtx_next : c->snd_una;
		for (unsigned i = 0; i < c->sb_n; i++)
			if (SEQ_LEQ(c->sb[i][0], seq) && SEQ_LT(seq, c->sb[i][1]))
				seq = c->sb[i][1];
		if (!SEQ_LT(seq, high))
			break;
		len = tcp_min32(c->snd_mss, high - seq);
		for (unsigned i = 0; i < c->sb_n; i++)
			if (SEQ_GT(c->sb[i][0], seq)) {
				len = tcp_min32(len, c->sb[i][0] - seq);
				break;
			}
		if (tcp_xmit(c, seq, TH_ACK, len) != 0)
			break;
		c->s->st.tx_rtx_bytes += len;
		c->rtx_next = seq + len;
	}
}

/*
 * Send what the windows allow: new data (sender SWS avoidance: full
 * segments, or the tail of the queue when nothing is in flight or it all
 * fits), the FIN, the SYN/SYN-ACK of a handshake, then an ACK if one is
 * still owed.
 */
static void
tcp_output(struct gw_tcp_conn *c)
{
	struct gw_tcp_stack *s = c->s;

	if (c->flags & GW_TCPF_DEAD)
		return;
	if (c->state == GW_TCP_ST_SYN_SENT || c->state == GW_TCP_ST_SYN_RCVD) {
		if (!(c->flags & GW_TCPF_SYN_SENT_ONCE)) {
			c->flags |= GW_TCPF_SYN_SENT_ONCE;
			if (tcp_xmit(c, c->iss, TH_SYN, 0) == 0) {
				c->snd_nxt = c->snd_max = c->iss + 1;
				tcp_rtx_arm(c);
			} else {
				/* no mbuf: the rtx timer retries */
				c->snd_nxt = c->snd_max = c->iss + 1;
				tcp_rtx_arm(c);
			}
		}
		return;
	}
	if (c->state == GW_TCP_ST_TIME_WAIT || c->state == GW_TCP_ST_CLOSED) {
		if (c->flags & GW_TCPF_ACK_NOW)
			tcp_send_ack_now(c);
		return;
	}
	if (c->flags & GW_TCPF_SACK_RECOV)
		tcp_sack_output(c, false);
	for (;;) {
		uint32_t off = c->snd_nxt - c->snd_una;
		uint32_t in_flight = (c->flags & GW_TCPF_SACK_RECOV) ? tcp_sack_pipe(c)
								     : c->snd_nxt - c->snd_una;
		/* RFC 3042 limited transmit: the first two dupacks each let one
		 * new segment out, so a small window still yields 3 dupacks */
		uint32_t lt = (c->dupacks && c->dupacks < 3 && !(c->flags & GW_TCPF_RECOVERY))
				      ? c->dupacks * (uint32_t)c->snd_mss
				      : 0;
		uint32_t cw = c->cwnd + lt;
		uint32_t usable = cw > in_flight ? cw - in_flight : 0;

		/* the peer's window covers everything outstanding */
		usable = tcp_min32(usable, c->snd_wnd > off ? c->snd_wnd - off : 0);

		if (SEQ_LT(c->snd_nxt, tcp_fin_seq(c))) {
			uint32_t avail = c->sndq_bytes - off;
			uint32_t len = tcp_min32(tcp_min32(avail, c->snd_mss), usable);
			uint8_t fl = TH_ACK;

			if (len == 0)
				break;
			if (len < c->snd_mss && len < avail && in_flight > 0)
				break; /* sender SWS: wait for a full segment's room */
			if (len == avail) {
				fl |= TH_PSH;
				if (c->flags & GW_TCPF_FIN_QUEUED)
					fl |= TH_FIN;
			}
			if (tcp_xmit(c, c->snd_nxt, fl, len) != 0)
				break;
			if (SEQ_LT(c->snd_nxt, c->snd_max))
				s->st.tx_rtx_bytes += len;
			else if (!(c->flags & GW_TCPF_RTT_ON)) {
				c->flags |= GW_TCPF_RTT_ON;
				c->rtt_seq = c->snd_nxt + len;
				c->rtt_start_us = s->now_us;
			}
			c->snd_nxt += len + ((fl & TH_FIN) ? 1 : 0);
			if (SEQ_GT(c->snd_nxt, c->snd_max))
				c->snd_max = c->snd_nxt;
			if (!c->t_rtx || (c->flags & GW_TCPF_PERSIST))
				tcp_rtx_arm(c);
		} else if ((c->flags & GW_TCPF_FIN_QUEUED) && c->snd_nxt == tcp_fin_seq(c) &&
			   !(c->flags & GW_TCPF_FIN_ACKED)) {
			if (tcp_xmit(c, c->snd_nxt, TH_ACK | TH_FIN, 0) != 0)
				break;
			c->snd_nxt++;
			if (SEQ_GT(c->snd_nxt, c->snd_max))
				c->snd_max = c->snd_nxt;
			if (!c->t_rtx || (c->flags & GW_TCPF_PERSIST))
				tcp_rtx_arm(c);
		} else {
			break;
		}
	}
	/* zero window with data waiting and nothing in flight: persist */
	if (c->snd_wnd == 0 && SEQ_LT(c->snd_nxt, tcp_fin_seq(c)) && c->snd_una == c->snd_max &&
		!c->t_rtx) {
		c->flags |= GW_TCPF_PERSIST;
		c->t_rtx = s->now_ms +
			   tcp_min32(tcp_max32(c->rto_ms << tcp_min32(c->backoff, 10), c->rto_ms),
				   GW_TCP_RTO_MAX_MS);
		tcp_timer_update(c);
	}
	if (c->flags & GW_TCPF_ACK_NOW)
		tcp_send_ack_now(c);
}

/* Retransmit the first unacknowledged segment (fast retransmit, NewReno
 * partial ACK), with the FIN if it was sent and fits. */
static void
tcp_rtx_head(struct gw_tcp_conn *c)
{
	uint32_t len = tcp_min32(c->sndq_bytes, c->snd_mss);
	uint8_t fl = TH_ACK;

	if (len == c->sndq_bytes && (c->flags & GW_TCPF_FIN_QUEUED) &&
		SEQ_GT(c->snd_max, tcp_fin_seq(c)))
		fl |= TH_FIN;
	if (!len && !(fl & TH_FIN))
		return;
	if (tcp_xmit(c, c->snd_una, fl, len) == 0)
		c->s->st.tx_rtx_bytes += len;
}

/* ---------- RTT and congestion control ---------- */

static void
tcp_rtt_sample(struct gw_tcp_conn *c, uint32_t r_us)
{
	uint32_t rto;

	if (r_us == 0)
		r_us = 1;
	if (c->srtt_us == 0) { /* RFC 6298 2.2 */
		c->srtt_us = r_us;
		c->rttvar_us = r_us / 2;
	} else { /* 2.3, alpha 1/8, beta 1/4 */
		uint32_t d = c->srtt_us > r_us ? c->srtt_us - r_us : r_us - c->srtt_us;

		c->rttvar_us = (3 * c->rttvar_us + d) / 4;
		c->srtt_us = (7 * c->srtt_us + r_us) / 8;
	}
	rto = (c->srtt_us + tcp_max32(1000, 4 * c->rttvar_us) + 999) / 1000;
	c->rto_ms = tcp_min32(tcp_max32(rto, c->s->p.rto_min_ms), GW_TCP_RTO_MAX_MS);
}

static uint32_t
tcp_flight(const struct gw_tcp_conn *c)
{
	return c->snd_max - c->snd_una;
}

/* RFC 5681 (3.1, eq. 4) on loss: half the flight, at least two segments. */
static void
tcp_cc_loss(struct gw_tcp_conn *c)
{
	c->ssthresh = tcp_max32(tcp_flight(c) / 2, 2u * c->snd_mss);
}

/* Drop acked bytes from the send queue head. */
static void
tcp_sndq_drop(struct gw_tcp_conn *c, uint32_t n)
{
	c->sndq_bytes -= n;
	n += c->sndq_head_off;
	while (c->sndq_head && n >= c->sndq_head->data_len) {
		struct rte_mbuf *m = c->sndq_head;

		/* the tail mbuf is also the write buffer: keep it if not full */
		if (m == c->sndq_tail && n == m->data_len && c->sndq_bytes == 0 &&
			rte_pktmbuf_tailroom(m) > 0) {
			break;
		}
		n -= m->data_len;
		c->sndq_head = m->next;
		if (c->sndq_cur == m)
			c->sndq_cur = NULL;
		m->next = NULL;
		rte_pktmbuf_free_seg(m);
	}
	if (!c->sndq_head)
		c->sndq_tail = NULL;
	c->sndq_head_off = n;
}

/*
 * The ACK part of a segment in a synchronized state (RFC 9293 3.10.7.4
 * fifth check, RFC 5681, RFC 6582, RFC 6298). Returns false if the segment
 * must be dropped (the caller stops processing).
 */
static bool
tcp_rx_ack(struct gw_tcp_conn *c, uint32_t seq, uint32_t ack, uint32_t wnd, uint32_t seglen,
	unsigned n_sack, const uint32_t (*sack)[2], bool *fin_acked_now)
{
	struct gw_tcp_stack *s = c->s;
	uint32_t acked, prev_wnd = c->snd_wnd, sacked_before;

	*fin_acked_now = false;
	if (SEQ_GT(ack, c->snd_max)) {
		/* RFC 5961 5.2: ACK of unsent data -> ACK, drop */
		s->st.rx_ack_too_new++;
		tcp_send_ack_now(c);
		return false;
	}
	if (SEQ_LT(ack, c->snd_una - tcp_max32(c->max_snd_wnd, 65535))) {
		s->st.rx_out_of_window++;
		tcp_send_ack_now(c);
		return false;
	}
	sacked_before = c->sb_bytes;
	for (unsigned i = 0; i < n_sack; i++)
		tcp_sb_add(c, sack[i][0], sack[i][1]);
	/* window update (RFC 9293 3.10.7.4, SND.WL1/WL2 rule) */
	if (SEQ_LT(c->snd_wl1, seq) || (c->snd_wl1 == seq && SEQ_LEQ(c->snd_wl2, ack))) {
		bool was_zero = c->snd_wnd == 0;

		c->snd_wnd = wnd;
		c->snd_wl1 = seq;
		c->snd_wl2 = ack;
		if (wnd > c->max_snd_wnd)
			c->max_snd_wnd = wnd;
		if (was_zero && wnd) {
			/* window reopened: leave persist, send at once */
			if (c->flags & GW_TCPF_PERSIST)
				tcp_rtx_stop(c);
			c->backoff = 0;
			tcp_mark_output(c);
		}
	}
	if (SEQ_LEQ(ack, c->snd_una)) {
		/* RFC 5681 2: a duplicate ACK is a pure ACK, same ack and window,
		 * with data outstanding */
		/* ... or one that SACKs new data: Linux grows its window while
		 * it queues out of order, so its dupacks rarely repeat it */
		bool new_sack = c->sb_bytes > sacked_before;

		if (ack == c->snd_una && seglen == 0 && (wnd == prev_wnd || new_sack) &&
			c->snd_max != c->snd_una && !(c->flags & GW_TCPF_PERSIST)) {
			uint32_t thresh = 3;

			/* RFC 5827 early retransmit: with fewer than four
			 * segments out and nothing new to send, three dupacks
			 * can never come */
			if (!SEQ_LT(c->snd_max, tcp_fin_seq(c))) {
				uint32_t segs = (tcp_flight(c) + c->snd_mss - 1) / c->snd_mss;

				if (segs >= 2 && segs < 4)
					thresh = segs - 1;
			}
			c->dupacks++;
			if (c->dupacks < 3)
				tcp_mark_output(c); /* limited transmit */
			if (c->flags & GW_TCPF_RECOVERY) {
				if (!(c->flags & GW_TCPF_SACK_RECOV))
					c->cwnd += c->snd_mss; /* RFC 6582 3.2 step 3 */
				tcp_mark_output(c);
			} else if ((c->dupacks >= thresh || c->sb_bytes >= 3u * c->snd_mss) &&
				   SEQ_GT(ack, c->recover - 1)) {
				/* RFC 6582 3.2 step 2 / RFC 6675 5 step 4: enter
				 * fast recovery */
				tcp_cc_loss(c);
				c->recover = c->snd_max;
				c->flags |= GW_TCPF_RECOVERY;
				c->flags &= ~GW_TCPF_RTT_ON; /* Karn */
				s->st.tx_fast_rtx++;
				if (c->sb_n) {
					/* SACK: the pipe, not inflation, paces it */
					c->flags |= GW_TCPF_SACK_RECOV;
					c->cwnd = c->ssthresh;
					c->rtx_next = c->snd_una;
					c->rtx_round = c->snd_max;
					tcp_sack_output(c, true);
				} else {
					c->cwnd = c->ssthresh + 3u * c->snd_mss;
					tcp_rtx_head(c);
				}
				tcp_rtx_arm(c);
				tcp_mark_output(c);
			}
		}
		return true;
	}

	/* new data acknowledged */
	acked = ack - c->snd_una;
	if ((c->flags & GW_TCPF_FIN_QUEUED) && !(c->flags & GW_TCPF_FIN_ACKED) &&
		SEQ_GT(ack, tcp_fin_seq(c))) {
		c->flags |= GW_TCPF_FIN_ACKED;
		*fin_acked_now = true;
		tcp_sndq_drop(c, acked - 1);
	} else {
		tcp_sndq_drop(c, acked);
	}
	c->snd_una = ack;
	if (SEQ_LT(c->snd_nxt, c->snd_una))
		c->snd_nxt = c->snd_una;
	c->flags &= ~GW_TCPF_TLP_SENT; /* a new episode may probe again */
	c->last_prog_ms = s->now_ms;
	tcp_sb_trim(c);
	if (SEQ_LT(c->rtx_next, c->snd_una))
		c->rtx_next = c->snd_una;
	c->retries = 0;
	c->backoff = 0;
	if ((c->flags & GW_TCPF_RTT_ON) && SEQ_GEQ(ack, c->rtt_seq)) {
		c->flags &= ~GW_TCPF_RTT_ON;
		tcp_rtt_sample(
			c, (uint32_t)tcp_min32((uint32_t)(s->now_us - c->rtt_start_us), 60000000u));
	}
	if (c->flags & GW_TCPF_RECOVERY) {
		if (SEQ_GEQ(ack, c->recover)) {
			/* full ACK: RFC 6582 3.2 step 6, deflate */
			c->flags &= ~(GW_TCPF_RECOVERY | GW_TCPF_SACK_RECOV);
			c->cwnd = tcp_min32(
				c->ssthresh, tcp_max32(tcp_flight(c), c->snd_mss) + c->snd_mss);
			c->dupacks = 0;
		} else if (c->flags & GW_TCPF_SACK_RECOV) {
			/* SACK recovery: output retransmits the next hole */
		} else {
			/* partial ACK: retransmit the next hole, deflate by the
			 * amount acked, add back one MSS (step 5) */
			tcp_rtx_head(c);
			c->cwnd = c->cwnd > acked ? c->cwnd - acked : 0;
			if (acked >= c->snd_mss)
				c->cwnd += c->snd_mss;
			c->cwnd = tcp_max32(c->cwnd, c->snd_mss);
		}
	} else {
		c->dupacks = 0;
		if (c->cwnd < c->ssthresh) {
			/* slow start, RFC 3465 L = 2 SMSS */
			c->cwnd += tcp_min32(acked, 2u * c->snd_mss);
		} else {
			c->bytes_acked += acked;
			if (c->bytes_acked >= c->cwnd) {
				c->bytes_acked -= c->cwnd;
				c->cwnd += c->snd_mss;
			}
		}
	}
	if (c->cwnd > (1u << 30))
		c->cwnd = 1u << 30;
	/* RFC 6298 5.2/5.3 */
	if (c->snd_una == c->snd_max)
		tcp_rtx_stop(c);
	else
		tcp_rtx_arm(c);
	tcp_mark_output(c);
	return true;
}

/* ---------- receive queue ---------- */

static void
tcp_rcvq_append(struct gw_tcp_conn *c, struct rte_mbuf *m)
{
	struct rte_mbuf *t = c->rcvq_tail;
	uint16_t len = m->data_len;

	c->rcvq_bytes += len;
	/* small segments are copied into the tail's room so a peer trickling
	 * bytes cannot pin one mbuf per byte */
	if (t && len <= 512 && RTE_MBUF_DIRECT(t) && rte_mbuf_refcnt_read(t) == 1 &&
		rte_pktmbuf_tailroom(t) >= len) {
		/* (only into a buffer nobody else shares: zero-copy PMDs) */
		memcpy(rte_pktmbuf_mtod_offset(t, uint8_t *, t->data_len),
			rte_pktmbuf_mtod(m, uint8_t *), len);
		t->data_len += len;
		t->pkt_len += len;
		rte_pktmbuf_free(m);
		return;
	}
	m->next = NULL;
	if (t)
		t->next = m;
	else
		c->rcvq_head = m;
	c->rcvq_tail = m;
}

/*
 * What an out-of-order segment costs: its whole buffer, not its payload
 * (Linux's truesize). A 1-byte segment pins a 2 KB mbuf; counting bytes
 * would let a peer hold hundreds of mbufs per connection with a tiny
 * window's worth of data.
 */
#define OOO_TRUESIZE(m) ((uint32_t)(m)->buf_len)

/* q leaves the out-of-order queue (freed or moved to the receive queue). */
static void
tcp_ooo_uncharge(struct gw_tcp_conn *c, const struct rte_mbuf *q)
{
	c->ooo_n--;
	c->ooo_mem -= OOO_TRUESIZE(q);
	c->s->ooo_mem -= OOO_TRUESIZE(q);
}

/* Queue an out-of-order segment (seq > rcv_nxt), trimmed against its
 * neighbours so the queue holds disjoint ranges in order. Consumes m.
 * Charged by buffer memory: per connection against the receive buffer
 * (what is unread plus what waits out of order, at most twice rcvbuf of
 * buffers, as Linux budgets truesize), per worker against ooo_mem_max. */
static void
tcp_ooo_insert(struct gw_tcp_conn *c, struct rte_mbuf *m, uint32_t seq, bool fin)
{
	struct gw_tcp_stack *s = c->s;
	struct rte_mbuf **pp = &c->ooo_head, *q;
	uint32_t end = seq + m->data_len;

	while ((q = *pp) != NULL && SEQ_LEQ(OOO_SEQ(q) + q->data_len, seq))
		pp = &q->next;
	/* q is the first queued segment ending after seq */
	if (q && SEQ_LEQ(OOO_SEQ(q), seq)) {
		/* starts inside q: cut our front */
		uint32_t cut = OOO_SEQ(q) + q->data_len - seq;

		if (cut >= m->data_len && !(fin && !OOO_FIN(q))) {
			rte_pktmbuf_free(m);
			s->st.rx_dup++;
			return;
		}
		cut = tcp_min32(cut, m->data_len);
		rte_pktmbuf_adj(m, (uint16_t)cut);
		seq += cut;
		pp = &q->next;
		q = *pp;
	}
	/* drop queued segments we cover entirely, trim our tail at the next */
	while (q && SEQ_LEQ(OOO_SEQ(q) + q->data_len, end) && !(OOO_FIN(q) && !fin)) {
		*pp = q->next;
		q->next = NULL;
		tcp_ooo_uncharge(c, q);
		rte_pktmbuf_free_seg(q);
		q = *pp;
	}
	if (q && SEQ_LT(OOO_SEQ(q), end)) {
		rte_pktmbuf_trim(m, (uint16_t)(end - OOO_SEQ(q)));
		fin = false;
	}
	if (m->data_len == 0 && !fin) {
		rte_pktmbuf_free(m);
		return;
	}
	if (c->ooo_n >= s->p.max_ooo_segs ||
		(uint64_t)c->rcvq_bytes + c->ooo_mem + OOO_TRUESIZE(m) > 2ull * s->p.rcvbuf) {
		rte_pktmbuf_free(m);
		s->st.rx_ooo_drop++;
		return;
	}
	if (s->ooo_mem + OOO_TRUESIZE(m) > s->p.ooo_mem_max) {
		/* the worker's ceiling: many connections together must not
		 * drain the mbuf pool the whole lcore receives into */
		rte_pktmbuf_free(m);
		s->st.rx_ooo_drop_mem++;
		return;
	}
	c->ooo_mem += OOO_TRUESIZE(m);
	s->ooo_mem += OOO_TRUESIZE(m);
	OOO_SEQ(m) = seq;
	OOO_FIN(m) = fin;
	c->sack_last = seq;
	m->next = q;
	*pp = m;
	c->ooo_n++;
	s->st.rx_ooo++;
}

/* ---------- state transitions on FIN / ACK of our FIN ---------- */

static void
tcp_enter_time_wait(struct gw_tcp_conn *c)
{
	tcp_set_state(c, GW_TCP_ST_TIME_WAIT);
	tcp_rtx_stop(c);
	c->t_delack = 0;
	c->t_life = c->s->now_ms + c->s->p.time_wait_ms;
	tcp_timer_update(c);
}

/* Peer FIN taken in order (RFC 9293 3.10.7.4 eighth check). */
static void
tcp_rx_fin(struct gw_tcp_conn *c)
{
	c->rcv_nxt++;
	c->flags |= GW_TCPF_FIN_RCVD | GW_TCPF_ACK_NOW;
	switch (c->state) {
	case GW_TCP_ST_ESTABLISHED:
		tcp_set_state(c, GW_TCP_ST_CLOSE_WAIT);
		break;
	case GW_TCP_ST_FIN_WAIT_1:
		if (c->flags & GW_TCPF_FIN_ACKED)
			tcp_enter_time_wait(c);
		else
			tcp_set_state(c, GW_TCP_ST_CLOSING);
		break;
	case GW_TCP_ST_FIN_WAIT_2:
		tcp_enter_time_wait(c);
		break;
	default:
		break;
	}
	tcp_mark_output(c);
}

/*
 * Payload and FIN of an acceptable segment (already trimmed to the window,
 * seq >= rcv_nxt). Consumes m. Sets *readable / *fin when the app should
 * hear about it.
 */
static void
tcp_rx_data(struct gw_tcp_conn *c, struct rte_mbuf *m, uint32_t seq, bool fin, bool *readable,
	bool *got_fin)
{
	struct gw_tcp_stack *s = c->s;
	uint32_t len = m->data_len;

	if (seq != c->rcv_nxt) {
		/* a hole: queue, and send a duplicate ACK right away so the
		 * sender's fast retransmit can count it (RFC 5681 4.2) */
		tcp_ooo_insert(c, m, seq, fin);
		tcp_send_ack_now(c);
		return;
	}
	if (len) {
		tcp_rcvq_append(c, m);
		c->rcv_nxt += len;
		c->rcv_unacked += len;
		s->st.rx_bytes += len;
		*readable = true;
	} else {
		rte_pktmbuf_free(m);
	}
	if (fin) {
		tcp_rx_fin(c);
		*got_fin = true;
	}
	if (c->ooo_head) {
		struct rte_mbuf *q;

		/* a hole filled: ACK at once (RFC 5681 4.2) */
		c->flags |= GW_TCPF_ACK_NOW;
		while (!(c->flags & GW_TCPF_FIN_RCVD) && (q = c->ooo_head) != NULL &&
			SEQ_LEQ(OOO_SEQ(q), c->rcv_nxt)) {
			uint32_t qend = OOO_SEQ(q) + q->data_len;
			bool qfin = OOO_FIN(q);

			c->ooo_head = q->next;
			q->next = NULL;
			tcp_ooo_uncharge(c, q);
			if (SEQ_LEQ(qend, c->rcv_nxt) && !(qfin && qend == c->rcv_nxt)) {
				rte_pktmbuf_free_seg(q);
				continue;
			}
			if (SEQ_GT(qend, c->rcv_nxt)) {
				uint32_t cut = c->rcv_nxt - OOO_SEQ(q);

				rte_pktmbuf_adj(q, (uint16_t)cut);
				c->rcv_nxt += q->data_len;
				s->st.rx_bytes += q->data_len;
				tcp_rcvq_append(c, q);
				*readable = true;
			} else {
				rte_pktmbuf_free_seg(q);
			}
			if (qfin) {
				tcp_rx_fin(c);
				*got_fin = true;
			}
		}
	}
	/* delayed ACK (RFC 1122 4.2.3.2, RFC 5681 4.2): every second full
	 * segment now, else within 40 ms */
	if (!(c->flags & GW_TCPF_ACK_NOW)) {
		if (c->rcv_unacked >= 2u * s->mss) {
			c->flags |= GW_TCPF_ACK_NOW;
		} else if (c->rcv_unacked && !c->t_delack) {
			c->t_delack = s->now_ms + GW_TCP_DELACK_MS;
			tcp_timer_update(c);
		}
	}
	if (c->flags & GW_TCPF_ACK_NOW)
		tcp_mark_output(c);
}

/* ---------- input ---------- */

struct tcp_seg {
	struct gw_tcp_key key;
	uint32_t seq, ack, wnd, len;
	uint8_t flags;
	bool has_mss, has_ws, sack_ok, has_sack;
	uint32_t sack_max; /* highest right edge among the SACK blocks */
	uint8_t n_sack;
	uint32_t sack[4][2];
	uint16_t mss;
	uint8_t ws;
};

/* RFC 9293 3.1/3.2 options; malformed lengths reject the segment. */
static int
tcp_parse_opts(const uint8_t *p, unsigned len, struct tcp_seg *g)
{
	while (len > 0) {
		unsigned kind = p[0], olen;

		if (kind == 0) /* EOL */
			break;
		if (kind == 1) { /* NOP */
			p++;
			len--;
			continue;
		}
		if (len < 2)
			return -1;
		olen = p[1];
		if (olen < 2 || olen > len)
			return -1;
		switch (kind) {
		case 2:
			if (olen != 4)
				return -1;
			g->has_mss = true;
			g->mss = (uint16_t)(p[2] << 8 | p[3]);
			break;
		case 3:
			if (olen != 3)
				return -1;
			g->has_ws = true;
			g->ws = p[2] > 14 ? 14 : p[2]; /* RFC 7323 2.3 */
			break;
		case 4:
			if (olen != 2)
				return -1;
			g->sack_ok = true;
			break;
		case 5:
			if (olen < 10 || (olen - 2) % 8 != 0)
				return -1;
			for (unsigned i = 2; i + 8 <= olen; i += 8) {
				uint32_t b = (uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 |
					     (uint32_t)p[i + 2] << 8 | p[i + 3];
				uint32_t e = (uint32_t)p[i + 4] << 24 | (uint32_t)p[i + 5] << 16 |
					     (uint32_t)p[i + 6] << 8 | p[i + 7];

				if (g->n_sack < 4) {
					g->sack[g->n_sack][0] = b;
					g->sack[g->n_sack][1] = e;
					g->n_sack++;
				}
				if (!g->has_sack || SEQ_GT(e, g->sack_max))
					g->sack_max = e;
				g->has_sack = true;
			}
			break;
		default: /* SACK blocks (we do not use them yet), timestamps ...: ignored */
			break;
		}
		p += olen;
		len -= olen;
	}
	return 0;
}

/* Common setup from the peer's SYN options. */
static void
tcp_conn_syn_opts(struct gw_tcp_conn *c, const struct tcp_seg *g)
{
	struct gw_tcp_stack *s = c->s;
	uint16_t mss = g->has_mss ? g->mss : GW_TCP_DEFAULT_MSS;

	c->snd_mss = (uint16_t)tcp_max32(tcp_min32(mss, s->mss), GW_TCP_MIN_MSS);
	if (g->has_ws) {
		c->flags |= GW_TCPF_WS_OK;
		c->snd_wscale = g->ws;
	} else {
		c->rcv_wscale = 0;
		c->snd_wscale = 0;
	}
	if (g->sack_ok)
		c->flags |= GW_TCPF_SACK_OK;
	c->cwnd = GW_TCP_IW_SEGS * c->snd_mss;
	c->ssthresh = UINT32_MAX / 2;
}

static struct gw_tcp_listener *
tcp_listener_find(struct gw_tcp_stack *s, uint32_t laddr, uint16_t lport)
{
	struct gw_tcp_listener *any = NULL;

	for (unsigned i = 0; i < s->n_lst; i++) {
		struct gw_tcp_listener *l = &s->lst[i];

		if (l->lport != lport)
			continue;
		if (l->laddr == laddr)
			return l;
		if (l->laddr == 0)
			any = l;
	}
	return any;
}

static void tcp_input_conn(struct gw_tcp_conn *c, struct tcp_seg *g, struct rte_mbuf *m);

/* ESTABLISHED for a passive open: hand it to the listener's accept. */
static bool
tcp_accept(struct gw_tcp_conn *c, struct gw_tcp_listener *l)
{
	struct gw_tcp_stack *s = c->s;

	s->st.conn_accepted++;
	c->flags |= GW_TCPF_APP_OWNED;
	if (!l || !l->accept || l->accept(c, l->ctx) != 0) {
		if (!(c->flags & GW_TCPF_DEAD)) {
			c->flags |= GW_TCPF_APP_CLOSED;
			(void)tcp_xmit(c, c->snd_nxt, TH_RST | TH_ACK, 0);
			tcp_conn_free(c);
		}
		return false;
	}
	return !(c->flags & GW_TCPF_DEAD);
}

/* Segments for a listener: SYN, or the ACK that completes a SYN cookie. */
static void
tcp_input_listen(struct gw_tcp_stack *s, struct tcp_seg *g, struct rte_mbuf *m)
{
	uint32_t seglen = g->len + ((g->flags & TH_SYN) ? 1 : 0) + ((g->flags & TH_FIN) ? 1 : 0);
	struct gw_tcp_listener *l = tcp_listener_find(s, g->key.laddr, g->key.lport);
	struct gw_tcp_conn *c;

	if (g->flags & TH_RST)
		goto drop;
	if (!l) {
		s->st.rx_no_conn++;
		tcp_send_rst_for(s, &g->key, g->seq, g->ack, g->flags, seglen);
		goto drop;
	}
	if ((g->flags & (TH_SYN | TH_ACK)) == TH_ACK) {
		/* maybe the third segment of a SYN-cookie handshake */
		uint16_t mss = tcp_cookie_check(s, &g->key, g->seq - 1, g->ack - 1);

		if (!mss) {
			s->st.syncookie_bad++;
			tcp_send_rst_for(s, &g->key, g->seq, g->ack, g->flags, seglen);
			goto drop;
		}
		c = tcp_conn_alloc(s, &g->key);
		if (!c)
			goto drop;
		s->st.syncookie_ok++;
		c->flags |= GW_TCPF_SYNCOOKIE;
		c->irs = g->seq - 1;
		c->rcv_nxt = g->seq;
		c->rcv_adv = g->seq; /* re-advertised below */
		c->iss = g->ack - 1;
		c->snd_una = c->snd_nxt = c->snd_max = g->ack;
		c->snd_mss = (uint16_t)tcp_min32(mss, s->mss);
		c->cwnd = GW_TCP_IW_SEGS * c->snd_mss;
		c->ssthresh = UINT32_MAX / 2;
		c->recover = c->iss;
		c->rtx_next = c->iss;
		c->snd_wnd = c->max_snd_wnd = g->wnd; /* unscaled: no wscale */
		c->snd_wl1 = g->seq;
		c->snd_wl2 = g->ack;
		c->rcv_adv = c->rcv_nxt + tcp_min32(s->p.rcvbuf, 65535);
		c->t_life = s->now_ms + s->p.idle_timeout_ms;
		tcp_set_state(c, GW_TCP_ST_ESTABLISHED);
		tcp_timer_update(c);
		if (!tcp_accept(c, l))
			goto drop;
		/* the ACK may carry data (and FIN): normal processing */
		tcp_input_conn(c, g, m);
		return;
	}
	if ((g->flags & (TH_SYN | TH_ACK | TH_FIN)) != TH_SYN) {
		if (g->flags & TH_ACK)
			tcp_send_rst_for(s, &g->key, g->seq, g->ack, g->flags, seglen);
		goto drop;
	}
	s->st.rx_syn++;
	if (l->n_synrcvd >= l->backlog || !s->free_head) {
		/* backlog (or table) full: answer statelessly with a cookie */
		uint16_t mss = g->has_mss ? g->mss : GW_TCP_DEFAULT_MSS;
		uint32_t cookie = tcp_cookie_make(s, &g->key, g->seq, tcp_min32(mss, s->mss));

		uint8_t opt[4];
		uint16_t optlen = tcp_opt_syn(opt, s->mss, -1, false);

		s->st.syncookie_tx++;
		(void)tcp_xmit_raw(s, &g->key, cookie, g->seq + 1, TH_SYN | TH_ACK,
			(uint16_t)tcp_min32(s->p.rcvbuf, 65535), opt, optlen, NULL, 0);
		goto drop;
	}
	c = tcp_conn_alloc(s, &g->key);
	if (!c) {
		s->st.rx_syn_drop++;
		goto drop;
	}
	c->irs = g->seq;
	c->rcv_nxt = g->seq + 1;
	c->rcv_adv = c->rcv_nxt;
	c->iss = tcp_isn(s, &g->key);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->recover = c->iss;
	c->rtx_next = c->iss;
	c->rcv_wscale = s->rcv_wscale;
	tcp_conn_syn_opts(c, g);
	c->snd_wnd = c->max_snd_wnd = g->wnd; /* never scaled in a SYN */
	c->snd_wl1 = g->seq;
	c->snd_wl2 = c->iss;
	c->lst = l;
	l->n_synrcvd++;
	tcp_set_state(c, GW_TCP_ST_SYN_RCVD);
	c->t_life = s->now_ms + s->p.handshake_timeout_ms;
	tcp_timer_update(c);
	/* SYN-ACK goes out now: the handshake RTT matters more than batching */
	tcp_output(c);
drop:
	rte_pktmbuf_free(m);
}

/* RFC 9293 3.10.7.3 */
static void
tcp_input_syn_sent(struct gw_tcp_conn *c, struct tcp_seg *g, struct rte_mbuf *m)
{
	struct gw_tcp_stack *s = c->s;
	bool ack_ok = false;

	if (g->flags & TH_ACK) {
		if (SEQ_LEQ(g->ack, c->iss) || SEQ_GT(g->ack, c->snd_max)) {
			if (!(g->flags & TH_RST))
				(void)tcp_xmit_raw(
					s, &c->key, g->ack, 0, TH_RST, 0, NULL, 0, NULL, 0);
			goto drop;
		}
		ack_ok = true;
	}
	if (g->flags & TH_RST) {
		if (ack_ok) {
			s->st.conn_refused++;
			rte_pktmbuf_free(m);
			tcp_conn_drop(c, -ECONNREFUSED);
			return;
		}
		goto drop;
	}
	if (!(g->flags & TH_SYN))
		goto drop;
	c->irs = g->seq;
	c->rcv_nxt = g->seq + 1;
	c->rcv_adv = c->rcv_nxt;
	tcp_conn_syn_opts(c, g);
	c->snd_wnd = c->max_snd_wnd = g->wnd;
	c->snd_wl1 = g->seq;
	c->snd_wl2 = g->ack;
	if (!ack_ok) {
		/* simultaneous open: SYN_RCVD, SYN-ACK out (RFC 9293 3.5) */
		tcp_set_state(c, GW_TCP_ST_SYN_RCVD);
		c->flags &= ~GW_TCPF_SYN_SENT_ONCE;
		c->snd_nxt = c->iss;
		tcp_output(c);
		goto drop;
	}
	c->snd_una = g->ack;
	c->retries = 0;
	c->backoff = 0;
	tcp_rtx_stop(c);
	tcp_set_state(c, GW_TCP_ST_ESTABLISHED);
	c->t_life = s->now_ms + s->p.idle_timeout_ms;
	c->flags |= GW_TCPF_ACK_NOW;
	tcp_timer_update(c);
	tcp_mark_output(c);
	s->st.conn_connected++;
	/* payload in a SYN-ACK is rare: not ACKed, the peer sends it again */
	rte_pktmbuf_free(m);
	tcp_notify(c, GW_TCP_EV_CONNECTED, 0);
	return;
drop:
	rte_pktmbuf_free(m);
}

/* All states after SYN_SENT: RFC 9293 3.10.7.4, with RFC 5961. Consumes m. */
static void
tcp_input_conn(struct gw_tcp_conn *c, struct tcp_seg *g, struct rte_mbuf *m)
{
	struct gw_tcp_stack *s = c->s;
	uint32_t seq = g->seq, len = g->len, rwnd;
	bool fin = g->flags & TH_FIN, syn = g->flags & TH_SYN;
	bool readable = false, got_fin = false, fin_acked = false;
	uint32_t seglen;

	if (c->state == GW_TCP_ST_SYN_SENT) {
		tcp_input_syn_sent(c, g, m);
		return;
	}
	c->last_rx_ms = s->now_ms;
	if (c->state == GW_TCP_ST_SYN_RCVD && syn && !(g->flags & (TH_ACK | TH_RST)) &&
		seq == c->irs) {
		/* the peer missed our SYN-ACK: send it again */
		c->flags &= ~GW_TCPF_SYN_SENT_ONCE;
		c->snd_nxt = c->iss;
		tcp_output(c);
		goto drop;
	}
	if (syn && c->state != GW_TCP_ST_SYN_RCVD) {
		/* SYN on a synchronized connection: challenge ACK (RFC 5961 4.2) */
		if (!(g->flags & TH_RST)) {
			tcp_challenge_ack(c);
		}
		goto drop;
	}
	if (syn) { /* SYN_RCVD with a different SYN: treat its seq as data-less */
		seq++;
		syn = false;
	}

	/* first: sequence acceptability (RFC 9293 3.10.7.4 table) */
	rwnd = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	seglen = len + (fin ? 1 : 0);
	{
		bool ok;

		if (seglen == 0)
			ok = rwnd == 0 ? seq == c->rcv_nxt
				       : SEQ_GEQ(seq, c->rcv_nxt) && SEQ_LT(seq, c->rcv_nxt + rwnd);
		else if (rwnd == 0)
			ok = false;
		else
			ok = (SEQ_GEQ(seq, c->rcv_nxt) && SEQ_LT(seq, c->rcv_nxt + rwnd)) ||
			     (SEQ_GEQ(seq + seglen - 1, c->rcv_nxt) &&
				     SEQ_LT(seq + seglen - 1, c->rcv_nxt + rwnd));
		if (!ok && rwnd == 0 && seq == c->rcv_nxt && !(g->flags & TH_RST)) {
			/* zero window: still take the ACK (a probe gets its
			 * answer from the ACK we owe) */
			rte_pktmbuf_trim(m, (uint16_t)len);
			len = 0;
			fin = false;
			c->flags |= GW_TCPF_ACK_NOW;
			tcp_mark_output(c);
			ok = true;
		}
		if (!ok) {
			if (g->flags & TH_RST) {
				s->st.rx_rst_bad++;
			} else {
				if (SEQ_LEQ(seq + seglen, c->rcv_nxt))
					s->st.rx_dup++;
				else
					s->st.rx_out_of_window++;
				tcp_send_ack_now(c);
			}
			goto drop;
		}
	}
	/* second: RST (RFC 5961 3.2: only the exact sequence resets) */
	if (g->flags & TH_RST) {
		if (seq == c->rcv_nxt) {
			s->st.rx_rst++;
			if (c->state == GW_TCP_ST_SYN_RCVD && (c->flags & GW_TCPF_APP_OWNED)) {
				s->st.conn_refused++; /* simultaneous open, then reset */
				tcp_conn_drop(c, -ECONNREFUSED);
			} else if (c->state == GW_TCP_ST_TIME_WAIT ||
				   (c->flags & GW_TCPF_APP_CLOSED) ||
				   c->state == GW_TCP_ST_SYN_RCVD) {
				tcp_conn_free(c);
			} else {
				s->st.conn_reset++;
				tcp_conn_drop(c, -ECONNRESET);
			}
		} else {
			tcp_challenge_ack(c);
		}
		goto drop;
	}
	/* fifth: ACK */
	if (!(g->flags & TH_ACK))
		goto drop;
	if (c->state == GW_TCP_ST_SYN_RCVD) {
		struct gw_tcp_listener *l = c->lst;

		if (!(SEQ_GT(g->ack, c->snd_una) && SEQ_LEQ(g->ack, c->snd_max))) {
			(void)tcp_xmit_raw(s, &c->key, g->ack, 0, TH_RST, 0, NULL, 0, NULL, 0);
			goto drop;
		}
		if (l)
			l->n_synrcvd--;
		c->lst = NULL;
		c->snd_una = g->ack;
		c->snd_wnd = g->wnd << c->snd_wscale;
		c->max_snd_wnd = tcp_max32(c->max_snd_wnd, c->snd_wnd);
		c->snd_wl1 = seq;
		c->snd_wl2 = g->ack;
		c->retries = 0;
		c->backoff = 0;
		tcp_rtx_stop(c);
		tcp_set_state(c, GW_TCP_ST_ESTABLISHED);
		c->t_life = s->now_ms + s->p.idle_timeout_ms;
		tcp_timer_update(c);
		if (c->flags & GW_TCPF_APP_OWNED) {
			/* an active open that met a simultaneous SYN */
			s->st.conn_connected++;
			if (!tcp_notify(c, GW_TCP_EV_CONNECTED, 0))
				goto drop;
		} else if (!tcp_accept(c, l)) {
			goto drop;
		}
	}
	if (!tcp_rx_ack(c, seq, g->ack, (uint32_t)g->wnd << c->snd_wscale, len, g->n_sack,
		    (const uint32_t(*)[2])g->sack, &fin_acked))
		goto drop;
	if (fin_acked) {
		switch (c->state) {
		case GW_TCP_ST_FIN_WAIT_1:
			tcp_set_state(c, GW_TCP_ST_FIN_WAIT_2);
			break;
		case GW_TCP_ST_CLOSING:
			tcp_enter_time_wait(c);
			break;
		case GW_TCP_ST_LAST_ACK:
			rte_pktmbuf_free(m);
			tcp_conn_drop(c, 0);
			return;
		default:
			break;
		}
	}
	if (c->state == GW_TCP_ST_TIME_WAIT) {
		/* a retransmitted FIN: ACK again and restart the 2MSL wait */
		if (fin || len) {
			c->flags |= GW_TCPF_ACK_NOW;
			c->t_life = s->now_ms + s->p.time_wait_ms;
			tcp_timer_update(c);
			tcp_mark_output(c);
		}
		goto drop;
	}

	/* seventh: text. Trim to rcv_nxt .. rcv_nxt + rwnd */
	if (len || fin) {
		bool takes_data = c->state == GW_TCP_ST_ESTABLISHED ||
				  c->state == GW_TCP_ST_FIN_WAIT_1 ||
				  c->state == GW_TCP_ST_FIN_WAIT_2;

		if (!takes_data) {
			/* peer already sent FIN: nothing more can be data */
			goto drop_events;
		}
		if ((c->flags & GW_TCPF_APP_CLOSED) && len) {
			/* nobody will read it: RST (RFC 2525 2.17 / Linux) */
			s->st.rx_after_close++;
			(void)tcp_xmit(c, c->snd_nxt, TH_RST | TH_ACK, 0);
			rte_pktmbuf_free(m);
			tcp_conn_free(c);
			return;
		}
		if (SEQ_LT(seq, c->rcv_nxt)) {
			uint32_t cut = c->rcv_nxt - seq;

			if (cut > len) /* only the FIN is new... or old */
				cut = len;
			rte_pktmbuf_adj(m, (uint16_t)cut);
			len -= cut;
			seq += cut;
		}
		if (SEQ_GT(seq + len, c->rcv_nxt + rwnd)) {
			uint32_t cut = seq + len - (c->rcv_nxt + rwnd);

			rte_pktmbuf_trim(m, (uint16_t)tcp_min32(cut, len));
			len -= tcp_min32(cut, len);
			fin = false;
		}
		if (SEQ_LT(seq, c->rcv_nxt)) /* an old FIN */
			fin = false;
		if (len || fin) {
			tcp_rx_data(c, m, seq, fin, &readable, &got_fin);
			m = NULL;
		}
	}
drop_events:
	if (m)
		rte_pktmbuf_free(m);
	if (c->flags & GW_TCPF_DEAD)
		return;
	if ((c->flags & GW_TCPF_WANT_WRITE) &&
		gw_tcp_tx_space(c) >= tcp_max32(s->p.sndbuf / 4, 1)) {
		c->flags &= ~GW_TCPF_WANT_WRITE;
		if (!tcp_notify(c, GW_TCP_EV_WRITABLE, 0))
			return;
	}
	if (readable && !tcp_notify(c, GW_TCP_EV_READABLE, 0))
		return;
	if (got_fin && !tcp_notify(c, GW_TCP_EV_PEER_FIN, 0))
		return;
	return;
drop:
	rte_pktmbuf_free(m);
}

/* One's complement sum over pseudo header and segment, checksum included,
 * is 0xffff when intact (RFC 1071). */
static bool
tcp_cksum_ok(const struct rte_ipv4_hdr *ip, const void *th, uint32_t l4len)
{
	uint32_t sum = (uint32_t)rte_ipv4_phdr_cksum(ip, 0) + rte_raw_cksum(th, l4len);

	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

void
gw_tcp_input(struct gw_tcp_stack *s, struct rte_mbuf *m)
{
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *th;
	struct tcp_seg g;
	uint32_t plen, ihl, doff, tot;
	uint64_t ck;
	void *hv = NULL;

	s->st.rx_seg++;
	if (m->nb_segs > 1 && rte_pktmbuf_linearize(m) != 0) {
		s->st.rx_multiseg_drop++;
		goto drop;
	}
	/* the net layer validated IPv4; stay defensive anyway (fuzzing) */
	plen = rte_pktmbuf_pkt_len(m);
	if (plen < sizeof(*ip) + sizeof(*th))
		goto bad_hdr;
	ip = rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *);
	ihl = (ip->version_ihl & 0x0f) * 4u;
	tot = rte_be_to_cpu_16(ip->total_length);
	if (ihl < sizeof(*ip) || tot > plen || tot < ihl + sizeof(*th))
		goto bad_hdr;
	if (tot < plen) {
		rte_pktmbuf_trim(m, (uint16_t)(plen - tot));
		plen = tot;
	}
	th = (struct rte_tcp_hdr *)((uint8_t *)ip + ihl);
	doff = (th->data_off >> 4) * 4u;
	if (doff < sizeof(*th) || ihl + doff > plen)
		goto bad_hdr;
	ck = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	if (ck == RTE_MBUF_F_RX_L4_CKSUM_BAD ||
		(ck != RTE_MBUF_F_RX_L4_CKSUM_GOOD && !tcp_cksum_ok(ip, th, plen - ihl))) {
		s->st.rx_bad_csum++;
		goto drop;
	}
	memset(&g, 0, sizeof(g));
	g.flags = th->tcp_flags & (TH_FIN | TH_SYN | TH_RST | TH_PSH | TH_ACK);
	/* nonsense combinations (RFC 9293 leaves them undefined; drop) */
	if ((g.flags & (TH_SYN | TH_FIN)) == (TH_SYN | TH_FIN) ||
		(g.flags & (TH_SYN | TH_RST)) == (TH_SYN | TH_RST) ||
		!(g.flags & (TH_SYN | TH_RST | TH_ACK)))
		goto bad_hdr;
	if (tcp_parse_opts((const uint8_t *)(th + 1), doff - sizeof(*th), &g) != 0) {
		s->st.rx_bad_opt++;
		goto drop;
	}
	g.key.laddr = ip->dst_addr;
	g.key.raddr = ip->src_addr;
	g.key.lport = th->dst_port;
	g.key.rport = th->src_port;
	if (th->src_port == 0 || th->dst_port == 0)
		goto bad_hdr;
	g.seq = rte_be_to_cpu_32(th->sent_seq);
	g.ack = rte_be_to_cpu_32(th->recv_ack);
	g.wnd = rte_be_to_cpu_16(th->rx_win);
	g.len = plen - ihl - doff;
	rte_pktmbuf_adj(m, (uint16_t)(ihl + doff)); /* m is now the payload */

	if (rte_hash_lookup_data(s->hash, &g.key, &hv) >= 0) {
		struct gw_tcp_conn *c = hv;

		if (c->state == GW_TCP_ST_TIME_WAIT &&
			(g.flags & (TH_SYN | TH_ACK | TH_RST)) == TH_SYN &&
			SEQ_GT(g.seq, c->rcv_nxt)) {
			/* a new incarnation (RFC 9293 3.6.1 / RFC 6191 without
			 * timestamps): end TIME_WAIT, treat as a fresh SYN */
			tcp_conn_drop(c, 0);
			tcp_input_listen(s, &g, m);
		} else {
			tcp_input_conn(c, &g, m);
		}
	} else {
		tcp_input_listen(s, &g, m);
	}
	tcp_reap(s);
	return;
bad_hdr:
	s->st.rx_bad_hdr++;
drop:
	rte_pktmbuf_free(m);
}

/* ---------- timers ---------- */

/* RFC 8985 7.3: retransmit the last segment sent (its ACK or dupack is
 * what the sender lacks), then wait for the full RTO. */
static void
tcp_send_tlp(struct gw_tcp_conn *c)
{
	uint32_t data_end = c->snd_max, len;
	uint8_t fl = TH_ACK;

	c->flags = (c->flags & ~GW_TCPF_TLP_ARMED) | GW_TCPF_TLP_SENT;
	if (c->snd_una == c->snd_max)
		return;
	if ((c->flags & GW_TCPF_FIN_QUEUED) && SEQ_GT(c->snd_max, tcp_fin_seq(c))) {
		data_end = tcp_fin_seq(c);
		fl |= TH_FIN;
	}
	len = tcp_min32(c->snd_mss, data_end - c->snd_una);
	c->s->st.tx_tlp++;
	c->flags &= ~GW_TCPF_RTT_ON; /* Karn: the probe is a retransmission */
	if (tcp_xmit(c, data_end - len, fl, len) == 0)
		c->s->st.tx_rtx_bytes += len;
	tcp_rtx_arm(c);
}

static void
tcp_on_rto(struct gw_tcp_conn *c)
{
	struct gw_tcp_stack *s = c->s;

	if (c->flags & GW_TCPF_PERSIST) {
		/* zero-window probe: one octet below snd_una (old data, the
		 * peer must answer with its window; Linux's probe0) */
		s->st.tx_probe++;
		(void)tcp_xmit(c, c->snd_una - 1, TH_ACK, 0);
		if (c->backoff < 16)
			c->backoff++;
		c->t_rtx = s->now_ms +
			   tcp_min32(tcp_max32(c->rto_ms << tcp_min32(c->backoff, 10), c->rto_ms),
				   GW_TCP_RTO_MAX_MS);
		return;
	}
	if (c->flags & GW_TCPF_TLP_ARMED) {
		tcp_send_tlp(c);
		return;
	}
	if (++c->retries > (tcp_synchronized(c) ? GW_TCP_DATA_RETRIES : GW_TCP_SYN_RETRIES)) {
		s->st.conn_timeout++;
		if (tcp_synchronized(c))
			(void)tcp_xmit(c, c->snd_nxt, TH_RST | TH_ACK, 0);
		tcp_conn_drop(c, -ETIMEDOUT);
		return;
	}
	if (tcp_synchronized(c) && c->snd_una == c->snd_max) {
		c->retries--; /* nothing outstanding: stale timer */
		return;
	}
	s->st.tx_rto++;
	if (c->backoff < 16)
		c->backoff++;
	c->flags &= ~GW_TCPF_RTT_ON; /* Karn */
	if (c->state == GW_TCP_ST_SYN_SENT || c->state == GW_TCP_ST_SYN_RCVD) {
		c->flags &= ~GW_TCPF_SYN_SENT_ONCE;
		tcp_output(c);
		return;
	}
	/* RFC 5681 3.1 + RFC 6582 4: one segment, go back to snd_una */
	if (!(c->flags & GW_TCPF_RECOVERY) || c->backoff <= 1)
		tcp_cc_loss(c);
	c->cwnd = c->snd_mss;
	c->bytes_acked = 0;
	c->flags &= ~(GW_TCPF_RECOVERY | GW_TCPF_SACK_RECOV);
	c->dupacks = 0;
	c->recover = c->snd_max;
	c->snd_nxt = c->snd_una;
	c->sb_n = 0; /* RFC 6675 5.1: start over without SACK information */
	c->sb_bytes = 0;
	c->rtx_next = c->snd_una;
	c->t_rtx = 0;
	tcp_output(c);
	if (!c->t_rtx) /* output could not send (no mbuf): try again */
		tcp_rtx_arm(c);
}

static void
tcp_on_life(struct gw_tcp_conn *c)
{
	struct gw_tcp_stack *s = c->s;
	uint64_t limit, ref;

	c->t_life = 0;
	switch (c->state) {
	case GW_TCP_ST_TIME_WAIT:
		tcp_conn_drop(c, 0);
		return;
	case GW_TCP_ST_SYN_SENT:
	case GW_TCP_ST_SYN_RCVD:
		s->st.conn_timeout++;
		tcp_conn_drop(c, -ETIMEDOUT);
		return;
	default:
		break;
	}
	limit = s->p.idle_timeout_ms;
	ref = c->last_rx_ms;
	if (c->flags & GW_TCPF_APP_CLOSED) {
		/* an orphan lives on progress, not on segments: a peer that
		 * answers every probe with a zero window must not keep it */
		if (limit > GW_TCP_ORPHAN_TIMEOUT_MS)
			limit = GW_TCP_ORPHAN_TIMEOUT_MS;
		ref = c->last_prog_ms;
	} else if (c->sndq_bytes ||
		   ((c->flags & GW_TCPF_FIN_QUEUED) && !(c->flags & GW_TCPF_FIN_ACKED))) {
		/* stuck sending (a peer that never reads): no progress for the
		 * idle time ends it too, like TCP_USER_TIMEOUT */
		if (c->last_prog_ms < ref)
			ref = c->last_prog_ms;
	}
	if (s->now_ms - ref >= limit) {
		s->st.conn_timeout++;
		(void)tcp_xmit(c, c->snd_nxt, TH_RST | TH_ACK, 0);
		tcp_conn_drop(c, -ETIMEDOUT);
		return;
	}
	c->t_life = ref + limit;
}

static void
tcp_timer_fire(struct gw_tw_timer *t, void *arg)
{
	struct gw_tcp_conn *c = container_of(t, struct gw_tcp_conn, tw);
	struct gw_tcp_stack *s = arg;

	if (c->flags & GW_TCPF_DEAD)
		return;
	if (c->t_life && s->now_ms >= c->t_life) {
		tcp_on_life(c);
		if (c->flags & GW_TCPF_DEAD)
			return;
	}
	if (c->t_delack && s->now_ms >= c->t_delack) {
		c->t_delack = 0;
		c->flags |= GW_TCPF_ACK_NOW;
		tcp_mark_output(c);
	}
	if (c->t_rtx && s->now_ms >= c->t_rtx) {
		c->t_rtx = 0;
		tcp_on_rto(c);
		if (c->flags & GW_TCPF_DEAD)
			return;
	}
	tcp_timer_update(c);
}

static void
tcp_clock(struct gw_tcp_stack *s, uint64_t tsc)
{
	uint64_t hz = s->p.tsc_hz;
	uint64_t us = (tsc / hz) * 1000000ULL + (tsc % hz) * 1000000ULL / hz;

	if (us > s->now_us) {
		s->now_us = us;
		s->now_ms = us / 1000;
	}
}

void
gw_tcp_poll(struct gw_tcp_stack *s, uint64_t now_tsc)
{
	struct gw_tcp_conn *c;

	tcp_clock(s, now_tsc);
	gw_tw_advance(&s->tw, s->now_ms);
	while ((c = TAILQ_FIRST(&s->out_list)) != NULL) {
		TAILQ_REMOVE(&s->out_list, c, out_link);
		c->flags &= ~GW_TCPF_IN_OUT;
		tcp_output(c);
	}
	if (!TAILQ_EMPTY(&s->nobuf_list) && rte_mempool_avail_count(s->p.pool) > s->nobuf_min) {
		/*
		 * Walk the stack's own list, never a detached copy: a WRITABLE
		 * callback may free any other waiter, and tcp_conn_free unlinks
		 * it from s->nobuf_list (from a copy's head that would leave
		 * s->nobuf_list pointing into this stack frame). The generation
		 * stops the walk at waiters that failed again during it.
		 */
		uint32_t gen = ++s->nobuf_gen;

		while ((c = TAILQ_FIRST(&s->nobuf_list)) != NULL && c->nobuf_gen != gen) {
			TAILQ_REMOVE(&s->nobuf_list, c, nobuf_link);
			c->flags &= ~(GW_TCPF_NOBUF | GW_TCPF_WANT_WRITE);
			(void)tcp_notify(c, GW_TCP_EV_WRITABLE, 0);
		}
	}
	tcp_reap(s);
}

/* ---------- stack ---------- */

int
gw_tcp_stack_create(const struct gw_tcp_stack_params *p, struct gw_tcp_stack **out)
{
	static unsigned seq_no;
	struct gw_tcp_stack *s = NULL;
	struct rte_hash_parameters hp = {0};
	char name[RTE_HASH_NAMESIZE];
	uint16_t room;
	int rc = 0;

	*out = NULL;
	GW_ENSURE(p && p->pool && p->ip_output, -EINVAL);
	s = calloc(1, sizeof(*s));
	GW_ENSURE(s, -ENOMEM);
	s->p = *p;
	if (!s->p.max_conns)
		s->p.max_conns = 16384;
	if (!s->p.tsc_hz)
		s->p.tsc_hz = rte_get_tsc_hz();
	if (!s->p.mtu)
		s->p.mtu = 1500;
	if (!s->p.sndbuf)
		s->p.sndbuf = 256 * 1024;
	if (!s->p.rcvbuf)
		s->p.rcvbuf = 256 * 1024;
	if (!s->p.time_wait_ms)
		s->p.time_wait_ms = 2000;
	if (!s->p.handshake_timeout_ms)
		s->p.handshake_timeout_ms = 10000;
	if (!s->p.idle_timeout_ms)
		s->p.idle_timeout_ms = 300000;
	if (!s->p.max_ooo_segs) /* a whole window of full segments, twice */
		s->p.max_ooo_segs = tcp_max32(64, 2 * s->p.rcvbuf / tcp_max32(s->p.mtu - 40u, 1));
	if (!s->p.rto_min_ms)
		s->p.rto_min_ms = 200;
	if (!s->p.ooo_mem_max) /* an eighth of the pool's buffers */
		s->p.ooo_mem_max =
			(uint64_t)p->pool->size / 8 * rte_pktmbuf_data_room_size(p->pool);
	room = rte_pktmbuf_data_room_size(p->pool);
	if (s->p.mtu < 576 || s->p.mtu > 9000 || room < RTE_PKTMBUF_HEADROOM + s->p.mtu ||
		s->p.rcvbuf > (1u << 30) || s->p.sndbuf > (1u << 30)) {
		rc = gw_err_set(-EINVAL, GW_HERE);
		goto out;
	}
	/* wake writers once the pool has some slack again (a small pool for
	 * tests or a tiny config must still get there) */
	s->nobuf_min = RTE_MIN(256u, p->pool->size / 8);
	s->mss = (uint16_t)(s->p.mtu - 40);
	while (s->rcv_wscale < 14 && (65535u << s->rcv_wscale) < s->p.rcvbuf)
		s->rcv_wscale++;
	/* RFC 6528: the ISN secret; RFC 4987: the cookie keys; RFC 6056: the
	 * ephemeral port start. All from the CSPRNG. */
	s->ck_period = s->now_ms / COOKIE_SLOT_MS;
	if (tcp_key_fill(s, s->secret, UINT64_MAX) < 0 ||
		tcp_key_fill(s, s->ck_key[s->ck_period & 1], s->ck_period) < 0 ||
		tcp_key_fill(s, s->ck_key[(s->ck_period - 1) & 1], s->ck_period - 1) < 0 ||
		(!p->secret_seed &&
			RAND_bytes((unsigned char *)&s->eph_next, sizeof(s->eph_next)) != 1)) {
		rc = gw_err_set(-EIO, GW_HERE);
		goto out;
	}
	s->eph_next &= 0x7fff;
	s->conns = calloc(s->p.max_conns, sizeof(*s->conns));
	if (!s->conns) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	for (uint32_t i = s->p.max_conns; i-- > 0;) {
		s->conns[i].free_next = s->free_head;
		s->free_head = &s->conns[i];
	}
	TAILQ_INIT(&s->out_list);
	TAILQ_INIT(&s->dead_list);
	TAILQ_INIT(&s->nobuf_list);
	snprintf(name, sizeof(name), "gwtcp%u_%u", p->lcore,
		__atomic_fetch_add(&seq_no, 1, __ATOMIC_RELAXED));
	hp.name = name;
	hp.entries = tcp_max32(s->p.max_conns, 64);
	hp.key_len = sizeof(struct gw_tcp_key);
	hp.hash_func = rte_hash_crc;
	hp.socket_id = (int)rte_lcore_to_socket_id(p->lcore);
	if (hp.socket_id < 0 || (unsigned)hp.socket_id >= RTE_MAX_NUMA_NODES)
		hp.socket_id = SOCKET_ID_ANY;
	hp.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
	s->hash = rte_hash_create(&hp);
	if (!s->hash) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	if (s->p.tsc_hz == rte_get_tsc_hz() && !p->tsc_hz)
		tcp_clock(s, rte_rdtsc());
	rc = gw_tw_init(&s->tw, GW_TCP_WHEEL_SLOTS, s->now_ms, tcp_timer_fire, s);
	if (rc < 0)
		goto out;
	*out = s;
	s = NULL;
out:
	if (s) {
		rte_hash_free(s->hash);
		free(s->conns);
		free(s);
	}
	return rc;
}

void
gw_tcp_stack_destroy(struct gw_tcp_stack *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->p.max_conns; i++) {
		struct gw_tcp_conn *c = &s->conns[i];

		if (c->s && !(c->flags & GW_TCPF_DEAD) && (c->flags & GW_TCPF_HASHED)) {
			c->flags |= GW_TCPF_APP_CLOSED; /* no events from here */
			tcp_conn_free(c);
		}
	}
	tcp_reap(s);
	for (unsigned i = 0; i < s->n_lst; i++)
		if (s->lst[i].ctx_free)
			s->lst[i].ctx_free(s->lst[i].ctx);
	gw_tw_fini(&s->tw);
	rte_hash_free(s->hash);
	free(s->conns);
	OPENSSL_cleanse(s->secret, sizeof(s->secret));
	OPENSSL_cleanse(s->ck_key, sizeof(s->ck_key));
	free(s);
}

void
gw_tcp_stats_get(const struct gw_tcp_stack *s, struct gw_tcp_stats *out)
{
	*out = s->st;
	out->conns[GW_TCP_ST_CLOSED] = 0;
}

int
gw_tcp_listen(struct gw_tcp_stack *s, const struct gw_tcp_listen_params *p)
{
	struct gw_tcp_listener *l;

	GW_ENSURE(s && p && p->lport && p->accept, -EINVAL);
	for (unsigned i = 0; i < s->n_lst; i++)
		GW_ENSURE(
			!(s->lst[i].laddr == p->laddr && s->lst[i].lport == p->lport), -EADDRINUSE);
	GW_ENSURE(s->n_lst < GW_TCP_MAX_LISTENERS, -ENOSPC);
	l = &s->lst[s->n_lst++];
	memset(l, 0, sizeof(*l));
	l->laddr = p->laddr;
	l->lport = p->lport;
	l->backlog = p->backlog ? p->backlog : 128;
	l->accept = p->accept;
	l->ctx = p->ctx;
	l->ctx_free = p->ctx_free;
	return 0;
}

int
gw_tcp_connect(
	struct gw_tcp_stack *s, const struct gw_tcp_connect_params *p, struct gw_tcp_conn **out)
{
	struct gw_tcp_key k;
	struct gw_tcp_conn *c = NULL;
	void *hv;

	GW_ENSURE(s && p && out && p->raddr && p->rport && p->cb, -EINVAL);
	*out = NULL;
	k.laddr = p->laddr;
	if (!k.laddr && s->p.src_addr)
		k.laddr = s->p.src_addr(s->p.net_ctx, p->raddr);
	GW_ENSURE(k.laddr, -EADDRNOTAVAIL);
	k.raddr = p->raddr;
	k.rport = p->rport;
	/* ephemeral range 32768..61000 (Linux's); with N RSS queues about 1 in
	 * N ports returns here, so a few thousand tries are plenty */
	for (unsigned i = 0; i < 28232 && !c; i++) {
		uint16_t port = (uint16_t)(32768 + (s->eph_next++ % 28232));

		k.lport = rte_cpu_to_be_16(port);
		if (s->p.flow_is_local &&
			!s->p.flow_is_local(s->p.net_ctx, k.laddr, k.raddr, k.lport, k.rport))
			continue;
		if (rte_hash_lookup_data(s->hash, &k, &hv) >= 0)
			continue;
		if (tcp_listener_find(s, k.laddr, k.lport))
			continue;
		c = tcp_conn_alloc(s, &k);
		if (!c)
			return gw_err_set(-ENOMEM, GW_HERE);
	}
	GW_ENSURE(c, -EADDRNOTAVAIL);
	c->iss = tcp_isn(s, &k);
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->recover = c->iss;
	c->rtx_next = c->iss;
	c->rcv_wscale = s->rcv_wscale;
	c->snd_mss = GW_TCP_DEFAULT_MSS;
	c->cb = p->cb;
	c->ctx = p->ctx;
	c->flags |= GW_TCPF_APP_OWNED;
	tcp_set_state(c, GW_TCP_ST_SYN_SENT);
	c->t_life = s->now_ms + s->p.handshake_timeout_ms;
	tcp_timer_update(c);
	tcp_mark_output(c);
	*out = c;
	return 0;
}

/* ---------- stream API ---------- */

void
gw_tcp_set_callback(struct gw_tcp_conn *c, gw_tcp_event_fn *cb, void *ctx)
{
	c->cb = cb;
	c->ctx = ctx;
}

void *
gw_tcp_get_ctx(const struct gw_tcp_conn *c)
{
	return c->ctx;
}

void
gw_tcp_set_ctx(struct gw_tcp_conn *c, void *ctx)
{
	c->ctx = ctx;
}

struct gw_tcp_stack *
gw_tcp_conn_stack(const struct gw_tcp_conn *c)
{
	return c->s;
}

enum gw_tcp_state
gw_tcp_get_state(const struct gw_tcp_conn *c)
{
	return (enum gw_tcp_state)c->state;
}

void
gw_tcp_get_info(const struct gw_tcp_conn *c, struct gw_tcp_conn_info *o)
{
	memset(o, 0, sizeof(*o));
	o->laddr = c->key.laddr;
	o->raddr = c->key.raddr;
	o->lport = c->key.lport;
	o->rport = c->key.rport;
	o->state = (enum gw_tcp_state)c->state;
	o->snd_mss = c->snd_mss;
	o->cwnd = c->cwnd;
	o->ssthresh = c->ssthresh;
	o->srtt_us = c->srtt_us;
	o->rto_ms = c->rto_ms;
	o->snd_wnd = c->snd_wnd;
	o->rcv_wnd = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	o->snd_wscale = (c->flags & GW_TCPF_WS_OK) ? c->snd_wscale : 0;
	o->rcv_wscale = (c->flags & GW_TCPF_WS_OK) ? c->rcv_wscale : 0;
	o->from_syncookie = c->flags & GW_TCPF_SYNCOOKIE;
}

size_t
gw_tcp_rx_avail(const struct gw_tcp_conn *c)
{
	return c->rcvq_bytes;
}

bool
gw_tcp_peer_closed(const struct gw_tcp_conn *c)
{
	return (c->flags & GW_TCPF_FIN_RCVD) && c->rcvq_bytes == 0;
}

size_t
gw_tcp_peek(const struct gw_tcp_conn *c, void *buf, size_t len)
{
	struct rte_mbuf *m = c->rcvq_head;
	uint32_t off = c->rcvq_head_off;
	size_t done = 0;

	while (m && done < len) {
		size_t n = RTE_MIN((size_t)(m->data_len - off), len - done);

		memcpy((uint8_t *)buf + done, rte_pktmbuf_mtod_offset(m, uint8_t *, off), n);
		done += n;
		off = 0;
		m = m->next;
	}
	return done;
}

void
gw_tcp_consume(struct gw_tcp_conn *c, size_t n)
{
	struct gw_tcp_stack *s = c->s;
	uint32_t before, after, thresh;

	if (n > c->rcvq_bytes)
		n = c->rcvq_bytes;
	if (!n)
		return;
	before = c->rcvq_bytes;
	c->rcvq_bytes -= (uint32_t)n;
	n += c->rcvq_head_off;
	while (c->rcvq_head && n >= c->rcvq_head->data_len) {
		struct rte_mbuf *m = c->rcvq_head;

		n -= m->data_len;
		c->rcvq_head = m->next;
		m->next = NULL;
		rte_pktmbuf_free_seg(m);
	}
	if (!c->rcvq_head)
		c->rcvq_tail = NULL;
	c->rcvq_head_off = (uint32_t)n;
	/* window update when the right edge can move enough (SWS, and
	 * RFC 9293 3.8.6.2.2): min(rcvbuf/2, MSS) past what we advertised */
	after = c->rcvq_bytes;
	(void)before;
	thresh = tcp_min32(s->p.rcvbuf / 2, s->mss);
	if (tcp_synchronized(c) && !(c->flags & GW_TCPF_FIN_RCVD)) {
		uint32_t used = after + c->ooo_mem / 2; /* as tcp_rcv_wnd_field */
		uint32_t free_ = s->p.rcvbuf > used ? s->p.rcvbuf - used : 0;
		uint32_t cur = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;

		if (free_ >= cur + thresh && (cur < thresh || free_ >= 2 * cur)) {
			c->flags |= GW_TCPF_ACK_NOW;
			tcp_mark_output(c);
		}
	}
}

size_t
gw_tcp_read(struct gw_tcp_conn *c, void *buf, size_t len)
{
	size_t n = gw_tcp_peek(c, buf, len);

	gw_tcp_consume(c, n);
	return n;
}

size_t
gw_tcp_tx_space(const struct gw_tcp_conn *c)
{
	return c->sndq_bytes < c->s->p.sndbuf ? c->s->p.sndbuf - c->sndq_bytes : 0;
}

long
gw_tcp_write(struct gw_tcp_conn *c, const void *buf, size_t len)
{
	struct gw_tcp_stack *s = c->s;
	size_t room = gw_tcp_tx_space(c), done = 0;

	if (c->flags & (GW_TCPF_FIN_QUEUED | GW_TCPF_APP_CLOSED | GW_TCPF_DEAD))
		return -EPIPE;
	if (c->state != GW_TCP_ST_ESTABLISHED && c->state != GW_TCP_ST_CLOSE_WAIT)
		return c->state == GW_TCP_ST_SYN_SENT || c->state == GW_TCP_ST_SYN_RCVD ? -ENOTCONN
											: -EPIPE;
	if (len > room) {
		len = room;
		c->flags |= GW_TCPF_WANT_WRITE;
	}
	if (!c->sndq_bytes && len)
		c->last_prog_ms = s->now_ms; /* the no-progress clock starts now */
	while (done < len) {
		struct rte_mbuf *t = c->sndq_tail;
		size_t n;

		if (!t || rte_pktmbuf_tailroom(t) == 0) {
			t = rte_pktmbuf_alloc(s->p.pool);
			if (!t) {
				/* no ACK may be coming to trigger WRITABLE: poll
				 * retries once the pool has refilled */
				s->st.tx_nombuf++;
				c->flags |= GW_TCPF_WANT_WRITE;
				if (!(c->flags & GW_TCPF_NOBUF)) {
					c->flags |= GW_TCPF_NOBUF;
					c->nobuf_gen = s->nobuf_gen;
					TAILQ_INSERT_TAIL(&s->nobuf_list, c, nobuf_link);
				}
				break;
			}
			if (c->sndq_tail)
				c->sndq_tail->next = t;
			else
				c->sndq_head = t;
			c->sndq_tail = t;
		}
		n = RTE_MIN((size_t)rte_pktmbuf_tailroom(t), len - done);
		memcpy(rte_pktmbuf_mtod_offset(t, uint8_t *, t->data_len),
			(const uint8_t *)buf + done, n);
		t->data_len += (uint16_t)n;
		t->pkt_len += (uint32_t)n;
		c->sndq_bytes += (uint32_t)n;
		done += n;
	}
	if (done)
		tcp_mark_output(c);
	/* a full buffer owes WRITABLE even if this write was not short: the
	 * app may test gw_tcp_tx_space() == 0 instead of writing again */
	if (c->sndq_bytes >= s->p.sndbuf)
		c->flags |= GW_TCPF_WANT_WRITE;
	if (!done && len)
		return -ENOBUFS;
	return (long)done;
}

void
gw_tcp_shutdown(struct gw_tcp_conn *c)
{
	if (c->flags & (GW_TCPF_FIN_QUEUED | GW_TCPF_DEAD))
		return;
	switch (c->state) {
	case GW_TCP_ST_ESTABLISHED:
		tcp_set_state(c, GW_TCP_ST_FIN_WAIT_1);
		break;
	case GW_TCP_ST_CLOSE_WAIT:
		tcp_set_state(c, GW_TCP_ST_LAST_ACK);
		break;
	default:
		return;
	}
	if (!c->sndq_bytes)
		c->last_prog_ms = c->s->now_ms;
	c->flags |= GW_TCPF_FIN_QUEUED;
	tcp_mark_output(c);
}

void
gw_tcp_abort(struct gw_tcp_conn *c)
{
	if (c->flags & GW_TCPF_DEAD)
		return;
	c->flags |= GW_TCPF_APP_CLOSED;
	if (c->state != GW_TCP_ST_SYN_SENT && c->state != GW_TCP_ST_TIME_WAIT &&
		c->state != GW_TCP_ST_CLOSED)
		(void)tcp_xmit(c, c->snd_nxt, TH_RST | TH_ACK, 0);
	tcp_conn_free(c);
}

void
gw_tcp_close(struct gw_tcp_conn *c)
{
	if (c->flags & GW_TCPF_DEAD)
		return;
	if (c->rcvq_bytes || c->ooo_n) {
		/* unread data would be lost silently: tell the peer */
		gw_tcp_abort(c);
		return;
	}
	c->flags |= GW_TCPF_APP_CLOSED;
	switch (c->state) {
	case GW_TCP_ST_SYN_SENT:
		tcp_conn_free(c);
		return;
	case GW_TCP_ST_ESTABLISHED:
	case GW_TCP_ST_CLOSE_WAIT:
		gw_tcp_shutdown(c);
		break;
	default:
		break;
	}
	/* orphans get a shorter limit, counted from now (tcp_on_life) */
	c->last_prog_ms = c->s->now_ms;
	if (!c->t_life || c->t_life > c->s->now_ms + GW_TCP_ORPHAN_TIMEOUT_MS) {
		if (c->state != GW_TCP_ST_TIME_WAIT) {
			c->t_life = c->s->now_ms + GW_TCP_ORPHAN_TIMEOUT_MS;
			tcp_timer_update(c);
		}
	}
}
