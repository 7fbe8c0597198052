/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcp_input.c - segment arrival: header and checksum checks, option
 * parsing, the listener (SYN, SYN cookie ACK), SYN_SENT, and for the
 * synchronized states RFC 9293 3.10.7.4 one step per function (sequence
 * check, RST, SYN, ACK, URG, segment text, FIN), with RFC 5961's
 * hardening; then the receive and out-of-order queues.
 */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "tcp_internal.h"

/*
 * Drop acked bytes from the send queue head. A buffer goes back to the pool
 * as soon as all of it is acknowledged, the write buffer at the tail too:
 * an idle connection holds none (10,000 idle connections would otherwise
 * pin 10,000 mbufs), and the next write takes a fresh one.
 */
static void
tcp_sndq_drop(struct gw_tcp_conn *c, uint32_t n)
{
	c->sndq_bytes -= n;
	n += c->sndq_head_off;
	while (c->sndq_head && n >= c->sndq_head->data_len) {
		struct rte_mbuf *m = c->sndq_head;

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
			c->snd_max != c->snd_una && !(c->flags & GW_TCPF_PERSIST))
			tcp_cc_dupack(c, ack);
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
	tcp_cc_ack(c, ack, acked);
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

struct gw_tcp_listener *
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

/* The handshake is over: its retransmission state goes, the idle timer
 * starts (RFC 9293 3.10.7.3 / 3.10.7.4 fifth, SYN-RECEIVED). */
static void
tcp_established(struct gw_tcp_conn *c)
{
	c->retries = 0;
	c->backoff = 0;
	tcp_rtx_stop(c);
	tcp_set_state(c, GW_TCP_ST_ESTABLISHED);
	c->t_life = c->s->now_ms + c->s->p.idle_timeout_ms;
	tcp_timer_update(c);
}

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

/*
 * The ACK that may complete a SYN-cookie handshake (RFC 4987 3.6): a valid
 * cookie in ack - 1 makes the connection ESTABLISHED at once and hands it
 * to the listener; the segment then goes through normal processing (it may
 * carry data and FIN). An invalid one is answered with a RST. Consumes m.
 */
static void
tcp_listen_cookie_ack(struct gw_tcp_stack *s, struct gw_tcp_listener *l, struct tcp_seg *g,
	struct rte_mbuf *m, uint32_t seglen)
{
	uint16_t mss = tcp_cookie_check(s, &g->key, g->seq - 1, g->ack - 1);
	struct gw_tcp_conn *c;

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
	tcp_established(c);
	if (!tcp_accept(c, l))
		goto drop;
	/* the ACK may carry data (and FIN): normal processing */
	tcp_input_conn(c, g, m);
	return;
drop:
	rte_pktmbuf_free(m);
}

/*
 * A SYN for listener l (RFC 9293 3.10.7.2 third): a SYN_RCVD connection and
 * its SYN-ACK, or with the backlog (or table) full a stateless SYN-ACK
 * carrying a cookie. Leaves the segment to the caller.
 */
static void
tcp_listen_syn(struct gw_tcp_stack *s, struct gw_tcp_listener *l, const struct tcp_seg *g)
{
	struct gw_tcp_conn *c;

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
		return;
	}
	c = tcp_conn_alloc(s, &g->key);
	if (!c) {
		s->st.rx_syn_drop++;
		return;
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
}

/* Segments for no connection (RFC 9293 3.10.7.1/3.10.7.2): a SYN for a
 * listener, the ACK that completes a SYN cookie, else a RST. Consumes m. */
static void
tcp_input_listen(struct gw_tcp_stack *s, struct tcp_seg *g, struct rte_mbuf *m)
{
	uint32_t seglen = g->len + ((g->flags & TH_SYN) ? 1 : 0) + ((g->flags & TH_FIN) ? 1 : 0);
	struct gw_tcp_listener *l = tcp_listener_find(s, g->key.laddr, g->key.lport);

	if (g->flags & TH_RST)
		goto drop;
	if (!l) {
		s->st.rx_no_conn++;
		tcp_send_rst_for(s, &g->key, g->seq, g->ack, g->flags, seglen);
		goto drop;
	}
	if ((g->flags & (TH_SYN | TH_ACK)) == TH_ACK) {
		/* maybe the third segment of a SYN-cookie handshake */
		tcp_listen_cookie_ack(s, l, g, m, seglen);
		return;
	}
	if ((g->flags & (TH_SYN | TH_ACK | TH_FIN)) != TH_SYN) {
		if (g->flags & TH_ACK)
			tcp_send_rst_for(s, &g->key, g->seq, g->ack, g->flags, seglen);
		goto drop;
	}
	tcp_listen_syn(s, l, g);
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
	tcp_established(c);
	c->flags |= GW_TCPF_ACK_NOW;
	tcp_mark_output(c);
	s->st.conn_connected++;
	/* payload in a SYN-ACK is rare: not ACKed, the peer sends it again */
	rte_pktmbuf_free(m);
	tcp_notify(c, GW_TCP_EV_CONNECTED, 0);
	return;
drop:
	rte_pktmbuf_free(m);
}

/*
 * What one step of RFC 9293 3.10.7.4 decided: go on to the next step, drop
 * the segment (the caller frees m), or stop (the step consumed m or freed c).
 */
enum tcp_in_verdict {
	TCP_IN_NEXT,
	TCP_IN_DROP,
	TCP_IN_DONE,
};

/*
 * SYN in a synchronized state or in SYN_RCVD (RFC 9293 3.10.7.4 fourth,
 * taken before the sequence check as RFC 5961 4.2 does: any SYN gets a
 * challenge ACK). A SYN_RCVD connection's duplicate SYN resends our SYN-ACK;
 * a different one goes on as a data-less segment one sequence later.
 */
static enum tcp_in_verdict
tcp_in_syn(struct gw_tcp_conn *c, struct tcp_seg *g)
{
	if (!(g->flags & TH_SYN))
		return TCP_IN_NEXT;
	if (c->state == GW_TCP_ST_SYN_RCVD && !(g->flags & (TH_ACK | TH_RST)) && g->seq == c->irs) {
		/* the peer missed our SYN-ACK: send it again */
		c->flags &= ~GW_TCPF_SYN_SENT_ONCE;
		c->snd_nxt = c->iss;
		tcp_output(c);
		return TCP_IN_DROP;
	}
	if (c->state != GW_TCP_ST_SYN_RCVD) {
		/* SYN on a synchronized connection: challenge ACK (RFC 5961 4.2) */
		if (!(g->flags & TH_RST))
			tcp_challenge_ack(c);
		return TCP_IN_DROP;
	}
	/* SYN_RCVD with a different SYN: treat its seq as data-less */
	g->seq++;
	g->flags &= ~TH_SYN;
	return TCP_IN_NEXT;
}

/*
 * A RST one below rcv_nxt after the peer's FIN: its socket sent the FIN,
 * then went away, and our segment that crossed the FIN (acking only up to
 * it) drew a reset carrying that segment's ACK number. It comes with every
 * close that crosses a Linux client's (bench/run --wire, one request per
 * connection: 4.5% of them at one client); refused, it left the connection
 * in CLOSING until our FIN's retransmission drew a second RST about 50 ms
 * later. Linux takes it in these three states too; one more exact value
 * keeps RFC 5961's protection.
 */
static bool
tcp_rst_after_fin(const struct gw_tcp_conn *c, const struct tcp_seg *g)
{
	return (g->flags & TH_RST) && g->seq == c->rcv_nxt - 1 &&
	       (c->state == GW_TCP_ST_CLOSE_WAIT || c->state == GW_TCP_ST_CLOSING ||
		       c->state == GW_TCP_ST_LAST_ACK);
}

/* RFC 9293 3.10.7.4 first: is the segment acceptable (its table over
 * segment length and receive window)? A zero-window probe at rcv_nxt loses
 * its text but keeps its ACK. Not acceptable: ACK it (RST: count it), drop. */
static enum tcp_in_verdict
tcp_in_seq_check(struct gw_tcp_conn *c, struct tcp_seg *g, struct rte_mbuf *m, uint32_t rwnd)
{
	struct gw_tcp_stack *s = c->s;
	uint32_t seq = g->seq, seglen = g->len + ((g->flags & TH_FIN) ? 1 : 0);
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
		/* zero window: still take the ACK (a probe gets its answer from
		 * the ACK we owe) */
		rte_pktmbuf_trim(m, (uint16_t)g->len);
		g->len = 0;
		g->flags &= ~TH_FIN;
		c->flags |= GW_TCPF_ACK_NOW;
		tcp_mark_output(c);
		ok = true;
	}
	if (ok || tcp_rst_after_fin(c, g))
		return TCP_IN_NEXT;
	if (g->flags & TH_RST) {
		s->st.rx_rst_bad++;
	} else {
		if (SEQ_LEQ(seq + seglen, c->rcv_nxt))
			s->st.rx_dup++;
		else
			s->st.rx_out_of_window++;
		tcp_send_ack_now(c);
	}
	return TCP_IN_DROP;
}

/* RFC 9293 3.10.7.4 second: RST. Only the exact sequence resets (RFC 5961
 * 3.2; and tcp_rst_after_fin's); any other in the window earns a
 * challenge ACK. */
static enum tcp_in_verdict
tcp_in_rst(struct gw_tcp_conn *c, const struct tcp_seg *g)
{
	struct gw_tcp_stack *s = c->s;

	if (!(g->flags & TH_RST))
		return TCP_IN_NEXT;
	if (g->seq != c->rcv_nxt && !tcp_rst_after_fin(c, g)) {
		tcp_challenge_ack(c);
		return TCP_IN_DROP;
	}
	s->st.rx_rst++;
	if (c->state == GW_TCP_ST_SYN_RCVD && (c->flags & GW_TCPF_APP_OWNED)) {
		s->st.conn_refused++; /* simultaneous open, then reset */
		tcp_conn_drop(c, -ECONNREFUSED);
	} else if (c->state == GW_TCP_ST_TIME_WAIT || (c->flags & GW_TCPF_APP_CLOSED) ||
		   c->state == GW_TCP_ST_SYN_RCVD) {
		tcp_conn_free(c);
	} else {
		s->st.conn_reset++;
		tcp_conn_drop(c, -ECONNRESET);
	}
	return TCP_IN_DROP;
}

/* The ACK that completes a passive (or simultaneous) open in SYN_RCVD
 * (RFC 9293 3.10.7.4 fifth, first bullet). An unacceptable ACK gets a RST. */
static enum tcp_in_verdict
tcp_in_ack_synrcvd(struct gw_tcp_conn *c, const struct tcp_seg *g)
{
	struct gw_tcp_stack *s = c->s;
	struct gw_tcp_listener *l = c->lst;

	if (!(SEQ_GT(g->ack, c->snd_una) && SEQ_LEQ(g->ack, c->snd_max))) {
		(void)tcp_xmit_raw(s, &c->key, g->ack, 0, TH_RST, 0, NULL, 0, NULL, 0);
		return TCP_IN_DROP;
	}
	if (l)
		l->n_synrcvd--;
	c->lst = NULL;
	c->snd_una = g->ack;
	c->snd_wnd = g->wnd << c->snd_wscale;
	c->max_snd_wnd = tcp_max32(c->max_snd_wnd, c->snd_wnd);
	c->snd_wl1 = g->seq;
	c->snd_wl2 = g->ack;
	tcp_established(c);
	if (c->flags & GW_TCPF_APP_OWNED) {
		/* an active open that met a simultaneous SYN */
		s->st.conn_connected++;
		if (!tcp_notify(c, GW_TCP_EV_CONNECTED, 0))
			return TCP_IN_DROP;
	} else if (!tcp_accept(c, l)) {
		return TCP_IN_DROP;
	}
	return TCP_IN_NEXT;
}

/* RFC 9293 3.10.7.4 fifth: ACK. No ACK bit: drop. Then the ACK proper
 * (tcp_rx_ack) and the state changes an ACK of our FIN makes. */
static enum tcp_in_verdict
tcp_in_ack(struct gw_tcp_conn *c, const struct tcp_seg *g, struct rte_mbuf *m)
{
	bool fin_acked = false;

	if (!(g->flags & TH_ACK))
		return TCP_IN_DROP;
	if (c->state == GW_TCP_ST_SYN_RCVD && tcp_in_ack_synrcvd(c, g) != TCP_IN_NEXT)
		return TCP_IN_DROP;
	if (!tcp_rx_ack(c, g->seq, g->ack, (uint32_t)g->wnd << c->snd_wscale, g->len, g->n_sack,
		    (const uint32_t(*)[2])g->sack, &fin_acked))
		return TCP_IN_DROP;
	if (!fin_acked)
		return TCP_IN_NEXT;
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
		return TCP_IN_DONE;
	default:
		break;
	}
	return TCP_IN_NEXT;
}

/* TIME_WAIT takes no text: a retransmitted FIN is ACKed again and restarts
 * the 2MSL wait (RFC 9293 3.10.7.4 eighth, TIME-WAIT). */
static enum tcp_in_verdict
tcp_in_time_wait(struct gw_tcp_conn *c, const struct tcp_seg *g)
{
	struct gw_tcp_stack *s = c->s;

	if (c->state != GW_TCP_ST_TIME_WAIT)
		return TCP_IN_NEXT;
	if ((g->flags & TH_FIN) || g->len) {
		c->flags |= GW_TCPF_ACK_NOW;
		c->t_life = s->now_ms + s->p.time_wait_ms;
		tcp_timer_update(c);
		tcp_mark_output(c);
	}
	return TCP_IN_DROP;
}

/*
 * RFC 9293 3.10.7.4 seventh (segment text) and eighth (FIN, in
 * tcp_rx_data -> tcp_rx_fin): trim to rcv_nxt .. rcv_nxt + rwnd, queue in
 * order or out of order. Always consumes m (TCP_IN_DONE when c was freed).
 * The sixth step, URG, has nothing to do: we ignore the urgent pointer and
 * deliver its bytes in line (RFC 6093).
 */
static enum tcp_in_verdict
tcp_in_text(struct gw_tcp_conn *c, struct tcp_seg *g, struct rte_mbuf *m, uint32_t rwnd,
	bool *readable, bool *got_fin)
{
	struct gw_tcp_stack *s = c->s;
	uint32_t seq = g->seq, len = g->len;
	bool fin = g->flags & TH_FIN;

	if (!len && !fin) {
		rte_pktmbuf_free(m);
		return TCP_IN_NEXT;
	}
	if (c->state != GW_TCP_ST_ESTABLISHED && c->state != GW_TCP_ST_FIN_WAIT_1 &&
		c->state != GW_TCP_ST_FIN_WAIT_2) {
		/* peer already sent FIN: nothing more can be data */
		rte_pktmbuf_free(m);
		return TCP_IN_NEXT;
	}
	if ((c->flags & GW_TCPF_APP_CLOSED) && len) {
		/* nobody will read it: RST (RFC 2525 2.17 / Linux) */
		s->st.rx_after_close++;
		(void)tcp_xmit(c, c->snd_nxt, TH_RST | TH_ACK, 0);
		rte_pktmbuf_free(m);
		tcp_conn_free(c);
		return TCP_IN_DONE;
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
	if (len || fin)
		tcp_rx_data(c, m, seq, fin, readable, got_fin);
	else
		rte_pktmbuf_free(m);
	return TCP_IN_NEXT;
}

/* Tell the app what this segment changed: room to write, bytes to read,
 * the peer's FIN. Each callback may free c. */
static void
tcp_in_notify(struct gw_tcp_conn *c, bool readable, bool got_fin)
{
	struct gw_tcp_stack *s = c->s;

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
	if (got_fin)
		(void)tcp_notify(c, GW_TCP_EV_PEER_FIN, 0);
}

/* All states after SYN_SENT: RFC 9293 3.10.7.4 step by step, with
 * RFC 5961. Consumes m. */
static void
tcp_input_conn(struct gw_tcp_conn *c, struct tcp_seg *g, struct rte_mbuf *m)
{
	bool readable = false, got_fin = false;
	enum tcp_in_verdict v;
	uint32_t rwnd;

	if (c->state == GW_TCP_ST_SYN_SENT) {
		tcp_input_syn_sent(c, g, m);
		return;
	}
	c->last_rx_ms = c->s->now_ms;
	if ((v = tcp_in_syn(c, g)) != TCP_IN_NEXT)
		goto out;
	rwnd = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	if ((v = tcp_in_seq_check(c, g, m, rwnd)) != TCP_IN_NEXT)
		goto out;
	if ((v = tcp_in_rst(c, g)) != TCP_IN_NEXT)
		goto out;
	if ((v = tcp_in_ack(c, g, m)) != TCP_IN_NEXT)
		goto out;
	if ((v = tcp_in_time_wait(c, g)) != TCP_IN_NEXT)
		goto out;
	if (tcp_in_text(c, g, m, rwnd, &readable, &got_fin) == TCP_IN_DONE)
		return;
	tcp_in_notify(c, readable, got_fin);
	return;
out:
	if (v == TCP_IN_DROP)
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
