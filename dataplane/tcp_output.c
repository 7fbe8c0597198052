/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcp_output.c - segment building and the send path: headers, checksums
 * (or their offload), options (MSS, window scale, SACK-permitted, SACK
 * blocks), the advertised window, and tcp_output(), which sends what the
 * windows allow (new data, SACK-paced retransmissions, FIN, the owed ACK).
 * Called from input, timers and gw_tcp_poll's output list.
 */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "tcp_internal.h"

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
int
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
uint16_t
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
uint16_t
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
int
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

void
tcp_send_ack_now(struct gw_tcp_conn *c)
{
	(void)tcp_xmit(c, c->snd_nxt, TH_ACK, 0);
}

/* RFC 5961 3.2/4.2 with the section 7 limit: spoofed RSTs or SYNs must not
 * turn the gateway into an ACK cannon. */
void
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
void
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

/* Resend the holes below the highest SACKed byte while the pipe allows. */
void
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
void
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
void
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
