/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcp_sack_cc.c - what the sender knows about the path: the SACK
 * scoreboard (RFC 6675, simplified) and its pipe, RTT estimation
 * (RFC 6298) and the congestion window's reaction to ACKs, duplicate ACKs
 * and loss (RFC 5681 + RFC 3465, NewReno RFC 6582, early retransmit
 * RFC 5827, limited transmit RFC 3042).
 */
#include <rte_common.h>

#include "tcp_internal.h"

/* ---------- SACK scoreboard (RFC 6675, simplified) ----------
 * Up to GW_TCP_SB_MAX disjoint ranges the peer SACKed above snd_una.
 * Everything unSACKed below the highest SACKed byte counts as lost (as
 * Linux's FACK did); the pipe is what is above that edge plus what we
 * retransmitted below it.
 */
void
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
void
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

uint32_t
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

uint32_t
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

/* ---------- RTT and congestion control ---------- */

void
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

/*
 * A duplicate ACK (RFC 5681 2, or one that SACKs new data; the caller
 * decides): count it, send new data on the first two (limited transmit,
 * RFC 3042), inflate the window in NewReno recovery (RFC 6582 3.2 step 3)
 * and enter fast recovery at the threshold (step 2 / RFC 6675 5 step 4;
 * RFC 5827 early retransmit lowers it when fewer than four segments are out
 * and nothing new waits). SACK recovery is paced by the pipe, not by
 * inflation.
 */
void
tcp_cc_dupack(struct gw_tcp_conn *c, uint32_t ack)
{
	struct gw_tcp_stack *s = c->s;
	uint32_t thresh = 3;

	/* RFC 5827 early retransmit: with fewer than four segments out and
	 * nothing new to send, three dupacks can never come */
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
		/* RFC 6582 3.2 step 2 / RFC 6675 5 step 4: enter fast recovery */
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

/*
 * New data acknowledged (acked bytes, up to ack): a full ACK ends recovery
 * and deflates the window (RFC 6582 3.2 step 6), a partial one resends the
 * next hole (step 5; SACK recovery leaves that to output); outside recovery
 * slow start (RFC 3465, L = 2 SMSS) or congestion avoidance (RFC 5681 3.1).
 */
void
tcp_cc_ack(struct gw_tcp_conn *c, uint32_t ack, uint32_t acked)
{
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
}
