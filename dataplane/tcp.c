/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcp.c - mtlsgw's per-lcore TCP: the stack (create/destroy, listeners,
 * connect), connection objects, the poll loop and the stream API of tcp.h.
 * The protocol itself lives beside it (see tcp_internal.h): input
 * (tcp_input.c), output and retransmission (tcp_output.c), SACK and
 * congestion control (tcp_sack_cc.c), timers (tcp_timers.c), ISNs and SYN
 * cookies (tcp_syncookie.c).
 *
 * It is a deliberately small RFC 9293 core: retransmission (RFC 6298),
 * congestion control (RFC 5681 + NewReno, RFC 6582; SACK-paced recovery
 * after RFC 6675 when the peer SACKs, RFC 2018 blocks in our ACKs), tail
 * loss probes (RFC 8985), early and limited transmit (RFC 5827, 3042), SYN
 * cookies (RFC 4987), RST/SYN/ACK hardening (RFC 5961). No timestamps (and
 * so no PAWS): we never advertise them.
 *
 * Output is batched: input and the app only mark a connection as needing
 * output (ACK_NOW, new data, FIN); gw_tcp_poll() walks that list once per
 * worker loop iteration, so the ACKs of a whole RX burst coalesce (VPP does
 * the same). Duplicate ACKs for out-of-order data, challenge ACKs and RSTs go
 * out at once because the peer's loss recovery counts them one by one.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "tcp_internal.h"

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

/* ---------- connection objects ---------- */

struct gw_tcp_conn *
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
void
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

void
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
void
tcp_conn_drop(struct gw_tcp_conn *c, int reason)
{
	if (c->flags & GW_TCPF_DEAD)
		return;
	tcp_notify(c, GW_TCP_EV_CLOSED, reason);
	tcp_conn_free(c);
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
gw_tcp_flush(struct gw_tcp_stack *s)
{
	struct gw_tcp_conn *c;

	while ((c = TAILQ_FIRST(&s->out_list)) != NULL) {
		TAILQ_REMOVE(&s->out_list, c, out_link);
		c->flags &= ~GW_TCPF_IN_OUT;
		tcp_output(c);
	}
}

void
gw_tcp_poll(struct gw_tcp_stack *s, uint64_t now_tsc)
{
	struct gw_tcp_conn *c;

	tcp_clock(s, now_tsc);
	gw_tw_advance(&s->tw, s->now_ms);
	gw_tcp_flush(s);
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
	s->ck_period = s->now_ms / GW_TCP_COOKIE_SLOT_MS;
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
		rc = gw_err_setf(-ENOMEM, GW_HERE,
			"no memory for %u TCP connection slots (%zu bytes each; "
			"dataplane.tcp.max_connections)",
			s->p.max_conns, sizeof(*s->conns));
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
		rc = gw_err_setf(-ENOMEM, GW_HERE,
			"cannot create the TCP connection table for %u connections: %s (raise "
			"dataplane.memory_mb or lower dataplane.tcp.max_connections)",
			s->p.max_conns, rte_strerror(rte_errno));
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

uint32_t
gw_tcp_stack_max_conns(const struct gw_tcp_stack *s)
{
	return s->p.max_conns;
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
gw_tcp_get_peer(const struct gw_tcp_conn *c, uint32_t *raddr, uint16_t *rport)
{
	*raddr = c->key.raddr;
	*rport = c->key.rport;
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
