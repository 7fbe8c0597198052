/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcp_timers.c - the per-connection timers on the stack's wheel: RTO
 * (RFC 6298) with the tail loss probe before it (RFC 8985) and the persist
 * probe in its place at a zero window, the delayed ACK and the life timer
 * (handshake, idle, orphan, TIME_WAIT).
 *
 * Each connection has three deadlines (rtx/persist, delayed ACK, life) and
 * one wheel entry armed at the earliest (tcp_timer_update()). The idle
 * deadline is checked lazily against last_rx_ms so receiving a segment
 * never touches the wheel for it.
 */
#include <rte_common.h>

#include "tcp_internal.h"

/*
 * Arm the retransmission timer (RFC 6298 5.1). While not recovering, a
 * tail loss probe (RFC 8985 7) comes first at 2 SRTT (plus the peer's
 * delayed-ACK time when one segment is out): an app-limited sender, such
 * as a relay, often has too few segments in flight for three dupacks, and
 * the probe turns a 200+ ms timeout into a fast recovery.
 */
void
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

void
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

void
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
