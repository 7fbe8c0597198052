/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_tcp.c - unit harness for dataplane/tcp: an in-process EAL (no huge
 * pages, no PCI, no ports), one mbuf pool, stacks whose ip_output captures
 * packets. Segments are crafted here (IPv4+TCP with real checksums) and fed
 * to gw_tcp_input; time is a fake TSC at 1 MHz passed to gw_tcp_poll. The
 * last cases wire several stacks through a lossy in-memory "network" and move
 * megabytes through the echo and tcp-proxy services byte for byte. Every case
 * ends by checking that no mbuf leaked (pool in-use count back to zero).
 */
/* RAND_set_rand_method (deprecated in 3.0, still honoured by RAND_bytes)
 * stands in for the CSPRNG to prove where the TCP secrets come from */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_tcp.h>

#include <openssl/rand.h>

#include "gw_dpdk_test.h"
#include "gw_test.h"
#include "snap.h"
#include "svc.h"
#include "tcp.h"

#define A_ADDR RTE_IPV4(10, 0, 0, 1) /* the stack under test */
#define P_ADDR RTE_IPV4(10, 0, 0, 2) /* the crafted peer */
#define F_SYN RTE_TCP_SYN_FLAG
#define F_ACK RTE_TCP_ACK_FLAG
#define F_FIN RTE_TCP_FIN_FLAG
#define F_RST RTE_TCP_RST_FLAG
#define F_PSH RTE_TCP_PSH_FLAG

static struct rte_mempool *pool;

/*
 * Under ASan, catch writes into frames that have returned: the nobuf-list
 * case below relies on it (a list head left pointing into gw_tcp_poll's
 * frame). Harmless without ASan.
 */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_stack_use_after_return=1";
}

/* ---------- capture ---------- */

#define CAP_MAX 4096
struct cap {
	struct rte_mbuf *m[CAP_MAX];
	unsigned n;
};

static void
cap_out(void *ctx, struct rte_mbuf *m)
{
	struct cap *c = ctx;

	if (c->n < CAP_MAX)
		c->m[c->n++] = m;
	else
		rte_pktmbuf_free(m);
}

static void
cap_clear(struct cap *c)
{
	for (unsigned i = 0; i < c->n; i++)
		rte_pktmbuf_free(c->m[i]);
	c->n = 0;
}

struct pk {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	uint16_t mss;
	int ws;
	bool sack_ok;
	unsigned sack_n;
	uint32_t sack[4][2];
	uint32_t len;
	const uint8_t *data;
	bool csum_ok;
};

static struct pk
pk_parse(struct rte_mbuf *m)
{
	struct pk p = {0};
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);
	unsigned doff = (th->data_off >> 4) * 4, olen = doff - 20;
	const uint8_t *o = (const uint8_t *)(th + 1);

	p.src = ntohl(ip->src_addr);
	p.dst = ntohl(ip->dst_addr);
	p.sport = ntohs(th->src_port);
	p.dport = ntohs(th->dst_port);
	p.seq = ntohl(th->sent_seq);
	p.ack = ntohl(th->recv_ack);
	p.flags = th->tcp_flags;
	p.win = ntohs(th->rx_win);
	p.ws = -1;
	p.len = ntohs(ip->total_length) - 20 - doff;
	p.data = o + olen;
	p.csum_ok = rte_ipv4_cksum(ip) == 0 || ip->hdr_checksum == rte_ipv4_cksum(ip);
	{
		/* full verification: recompute over a copy with cksum zeroed */
		uint16_t ck = th->cksum;

		th->cksum = 0;
		p.csum_ok = p.csum_ok && rte_ipv4_udptcp_cksum(ip, th) == ck;
		th->cksum = ck;
	}
	while (olen > 0) {
		if (o[0] == 0)
			break;
		if (o[0] == 1) {
			o++;
			olen--;
			continue;
		}
		if (o[0] == 2)
			p.mss = (uint16_t)(o[2] << 8 | o[3]);
		if (o[0] == 3)
			p.ws = o[2];
		if (o[0] == 4)
			p.sack_ok = true;
		if (o[0] == 5) {
			for (unsigned i = 0; i < (o[1] - 2u) / 8 && i < 4; i++) {
				uint32_t b, e;

				memcpy(&b, o + 2 + 8 * i, 4);
				memcpy(&e, o + 6 + 8 * i, 4);
				p.sack[i][0] = ntohl(b);
				p.sack[i][1] = ntohl(e);
				p.sack_n = i + 1;
			}
		}
		olen -= o[1];
		o += o[1];
	}
	return p;
}

static const uint8_t syn_opts[8] = {2, 4, 0x05, 0xb4, 1, 3, 3, 7}; /* MSS 1460, WS 7 */

/* ---------- a stack under test with a crafted peer ---------- */

struct evrec {
	int n[5];
	int reason;
	struct gw_tcp_conn *c;
	bool close_on_fin;
};

static void
rec_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	struct evrec *r = ctx;

	r->n[ev]++;
	if (ev == GW_TCP_EV_CLOSED) {
		r->reason = reason;
		r->c = NULL;
	} else {
		r->c = c;
	}
}

static struct evrec acc_rec;

static int
rec_accept(struct gw_tcp_conn *c, void *ctx)
{
	(void)ctx;
	memset(&acc_rec, 0, sizeof(acc_rec));
	acc_rec.c = c;
	gw_tcp_set_callback(c, rec_event, &acc_rec);
	return 0;
}

static uint64_t h_seed = 42; /* secret_seed of the next h_new (0 = RAND_bytes) */
static uint64_t h_ooo_max;   /* ooo_mem_max of the next h_new (0 = default) */

struct h {
	struct gw_tcp_stack *s;
	struct cap cap;
	uint64_t now; /* us */
};

static struct h *
h_new(uint32_t backlog, uint32_t rcvbuf, uint32_t sndbuf)
{
	struct h *h = calloc(1, sizeof(*h));
	struct gw_tcp_stack_params p = {
		.lcore = 0,
		.pool = pool,
		.ip_output = cap_out,
		.net_ctx = &h->cap,
		.max_conns = 64,
		.tsc_hz = 1000000,
		.rcvbuf = rcvbuf,
		.sndbuf = sndbuf,
		.secret_seed = h_seed,
		.ooo_mem_max = h_ooo_max,
	};
	struct gw_tcp_listen_params lp = {
		.laddr = htonl(A_ADDR),
		.lport = htons(80),
		.backlog = backlog,
		.accept = rec_accept,
	};

	h->now = 1000000;
	if (gw_tcp_stack_create(&p, &h->s) != 0 || gw_tcp_listen(h->s, &lp) != 0)
		abort();
	gw_tcp_poll(h->s, h->now);
	return h;
}

static void
h_free(struct h *h)
{
	cap_clear(&h->cap);
	gw_tcp_stack_destroy(h->s);
	free(h);
}

static void
h_in(struct h *h, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t win, const void *d,
	unsigned len)
{
	gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 80, seq, ack, flags, win,
				   NULL, 0, d, len));
}

static void
h_poll(struct h *h, uint64_t adv_us)
{
	h->now += adv_us;
	gw_tcp_poll(h->s, h->now);
}

static struct gw_tcp_stats
h_st(struct h *h)
{
	struct gw_tcp_stats st;

	gw_tcp_stats_get(h->s, &st);
	return st;
}

/* Passive handshake from 10.0.0.2:5555; returns our ISS; peer ISS 1000. */
static uint32_t
h_establish(struct h *h)
{
	struct pk p;
	uint32_t iss;

	gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 80, 1000, 0, F_SYN, 65535,
				   syn_opts, 8, NULL, 0));
	if (h->cap.n != 1)
		return 0;
	p = pk_parse(h->cap.m[0]);
	iss = p.seq;
	cap_clear(&h->cap);
	h_in(h, 1001, iss + 1, F_ACK, 1024, NULL, 0); /* 1024 << 7 = 128 KiB */
	return iss;
}

/* Passive handshake from 10.0.0.2:sport (peer ISS 1000); returns our ISS. */
static uint32_t
h_establish_from(struct h *h, uint16_t sport)
{
	uint32_t iss;

	gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, sport, 80, 1000, 0, F_SYN, 65535,
				   syn_opts, 8, NULL, 0));
	if (h->cap.n != 1)
		return 0;
	iss = pk_parse(h->cap.m[0]).seq;
	cap_clear(&h->cap);
	gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, sport, 80, 1001, iss + 1, F_ACK,
				   1024, NULL, 0, NULL, 0));
	return iss;
}

/* WRITABLE of the first waiter aborts the other one (nobuf_list walk). */
struct nobuf_rec {
	struct gw_tcp_conn *self, *victim;
	int writable;
};

static void
nobuf_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	struct nobuf_rec *r = ctx;

	(void)c;
	(void)reason;
	if (ev != GW_TCP_EV_WRITABLE)
		return;
	r->writable++;
	if (r->victim) {
		gw_tcp_abort(r->victim);
		r->victim = NULL;
	}
}

/* Backlog (1) filled from sport + 1000, then the SYN-ACK's cookie for sport/isn. */
static uint32_t
h_cookie(struct h *h, uint16_t sport, uint32_t isn)
{
	uint32_t ck = 0;

	gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, (uint16_t)(sport + 1000), 80, 1, 0,
				   F_SYN, 65535, syn_opts, 8, NULL, 0));
	cap_clear(&h->cap);
	gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, sport, 80, isn, 0, F_SYN, 65535,
				   syn_opts, 8, NULL, 0));
	if (h->cap.n == 1)
		ck = pk_parse(h->cap.m[0]).seq;
	cap_clear(&h->cap);
	return ck;
}

/* A stand-in CSPRNG: counts calls, fills a fixed pattern, fails on demand */
static unsigned rand_calls;
static bool rand_fail;

static int
rand_fixed_bytes(unsigned char *buf, int num)
{
	rand_calls++;
	if (rand_fail)
		return 0;
	for (int i = 0; i < num; i++)
		buf[i] = (unsigned char)(0xa5 ^ i);
	return 1;
}

static int
rand_fixed_status(void)
{
	return !rand_fail;
}

static const RAND_METHOD rand_fixed = {
	.bytes = rand_fixed_bytes,
	.pseudorand = rand_fixed_bytes,
	.status = rand_fixed_status,
};

/* The ISN the stack's SYN-ACK carries for a SYN from P_ADDR:sport */
static uint32_t
h_isn(struct h *h, uint16_t sport)
{
	uint32_t isn = 0;

	cap_clear(&h->cap);
	gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, sport, 80, 1000, 0, F_SYN, 65535,
				   syn_opts, 8, NULL, 0));
	if (h->cap.n == 1)
		isn = pk_parse(h->cap.m[0]).seq;
	cap_clear(&h->cap);
	return isn;
}

static bool
pool_clean(void)
{
	return rte_mempool_in_use_count(pool) == 0;
}

/* ---------- the lossy wire for multi-stack cases ---------- */

#define WIRE_MAX 65536
struct wire {
	struct rte_mbuf *q[WIRE_MAX];
	unsigned head, tail;
	uint64_t n, dropped;
	unsigned drop_every;    /* 0 = lossless; else drop pseudo-randomly 1 in N */
	unsigned reorder_every; /* 0 = in order; else hold 1 in N back one packet */
	struct rte_mbuf *held;
	uint64_t reordered;
	uint64_t rnd;
	struct {
		uint32_t addr;
		struct gw_tcp_stack *s;
	} hosts[4];
	unsigned n_hosts;
};

static void
wire_out(void *ctx, struct rte_mbuf *m)
{
	struct wire *w = ctx;

	w->n++;
	if (w->drop_every) {
		w->rnd = w->rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		if ((w->rnd >> 33) % w->drop_every == 0) {
			w->dropped++;
			rte_pktmbuf_free(m);
			return;
		}
	}
	if (w->reorder_every && !w->held) {
		w->rnd = w->rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		if ((w->rnd >> 33) % w->reorder_every == 0) {
			w->held = m; /* goes out after the next packet */
			w->reordered++;
			return;
		}
	}
	if (w->tail - w->head >= WIRE_MAX - 1) {
		rte_pktmbuf_free(m);
		return;
	}
	w->q[w->tail++ % WIRE_MAX] = m;
	if (w->held && m != w->held) {
		w->q[w->tail++ % WIRE_MAX] = w->held;
		w->held = NULL;
	}
}

/* deliver what is queued now (not what delivery produces) */
static void
wire_deliver(struct wire *w)
{
	unsigned end;

	if (w->held && w->head == w->tail) { /* nothing to pass it: let it go */
		w->q[w->tail++ % WIRE_MAX] = w->held;
		w->held = NULL;
	}
	end = w->tail;

	while (w->head != end) {
		struct rte_mbuf *m = w->q[w->head++ % WIRE_MAX];
		struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *);
		struct gw_tcp_stack *dst = NULL;

		for (unsigned i = 0; i < w->n_hosts; i++)
			if (w->hosts[i].addr == ip->dst_addr)
				dst = w->hosts[i].s;
		if (dst)
			gw_tcp_input(dst, m);
		else
			rte_pktmbuf_free(m);
	}
}

static void
wire_flush(struct wire *w)
{
	if (w->held) {
		rte_pktmbuf_free(w->held);
		w->held = NULL;
	}
	while (w->head != w->tail)
		rte_pktmbuf_free(w->q[w->head++ % WIRE_MAX]);
}

/* True if a segment from src:sport (host order) with all of flags is queued. */
static bool
wire_has(const struct wire *w, uint32_t src, uint16_t sport, uint8_t flags)
{
	for (unsigned i = w->head; i != w->tail; i++) {
		struct rte_ipv4_hdr *ip =
			rte_pktmbuf_mtod(w->q[i % WIRE_MAX], struct rte_ipv4_hdr *);
		struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);

		if (ip->src_addr == htonl(src) && th->src_port == htons(sport) &&
			(th->tcp_flags & flags) == flags)
			return true;
	}
	return false;
}

/* A stack on the wire whose mbufs come from mp (the test's pool if NULL). */
static struct gw_tcp_stack *
wire_stack_on(struct wire *w, uint32_t addr,
	bool (*local)(void *, uint32_t, uint32_t, uint16_t, uint16_t), struct rte_mempool *mp)
{
	struct gw_tcp_stack_params p = {
		.pool = mp ? mp : pool,
		.ip_output = wire_out,
		.net_ctx = w,
		.max_conns = 256,
		.tsc_hz = 1000000,
		.flow_is_local = local,
	};
	struct gw_tcp_stack *s = NULL;

	if (gw_tcp_stack_create(&p, &s) != 0)
		abort();
	w->hosts[w->n_hosts].addr = htonl(addr);
	w->hosts[w->n_hosts++].s = s;
	return s;
}

static struct gw_tcp_stack *
wire_stack(struct wire *w, uint32_t addr,
	bool (*local)(void *, uint32_t, uint32_t, uint16_t, uint16_t))
{
	return wire_stack_on(w, addr, local, NULL);
}

/* a client that streams a pattern and checks what comes back */
struct streamer {
	struct gw_tcp_conn *c;
	uint64_t total, sent, rcvd;
	bool connected, closed, bad, shut;
	int reason;
};

static uint8_t
pat(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 11));
}

static void
streamer_pump(struct streamer *st)
{
	uint8_t buf[8192];

	while (st->sent < st->total) {
		size_t n = RTE_MIN((uint64_t)sizeof(buf), st->total - st->sent);
		long w;

		for (size_t i = 0; i < n; i++)
			buf[i] = pat(st->sent + i);
		w = gw_tcp_write(st->c, buf, n);
		if (w <= 0)
			break;
		st->sent += (uint64_t)w;
		if ((size_t)w < n)
			break;
	}
	if (st->sent == st->total && !st->shut) {
		st->shut = true;
		gw_tcp_shutdown(st->c);
	}
	for (;;) {
		size_t n = gw_tcp_read(st->c, buf, sizeof(buf));

		if (!n)
			break;
		for (size_t i = 0; i < n; i++)
			if (buf[i] != pat(st->rcvd + i))
				st->bad = true;
		st->rcvd += n;
	}
}

static void
streamer_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	struct streamer *st = ctx;

	(void)c;
	switch (ev) {
	case GW_TCP_EV_CONNECTED:
		st->connected = true;
		streamer_pump(st);
		break;
	case GW_TCP_EV_READABLE:
	case GW_TCP_EV_WRITABLE:
		streamer_pump(st);
		break;
	case GW_TCP_EV_PEER_FIN:
		streamer_pump(st);
		if (gw_tcp_peer_closed(st->c)) {
			st->closed = true;
			gw_tcp_close(st->c);
			st->c = NULL;
		}
		break;
	case GW_TCP_EV_CLOSED:
		st->closed = true;
		st->reason = reason;
		st->c = NULL;
		break;
	}
}

/*
 * Publish a snapshot of generation gen whose listener 0 is a tcp-proxy to
 * 10.0.0.3 at the n ports (host order): its upstreams, as a reload sets them.
 */
static int
proxy_snap_publish_pp(struct gw_snap_pub *pub, uint64_t gen, const uint16_t *ports, unsigned n,
	enum gw_proxy_protocol pp)
{
	struct gw_ep ups[4];
	struct gw_snapshot *s;
	struct gw_snap_listener *l;
	int rc;

	for (unsigned i = 0; i < n && i < RTE_DIM(ups); i++)
		ups[i] = (struct gw_ep){htonl(RTE_IPV4(10, 0, 0, 3)), htons(ports[i])};
	GW_GUARD(gw_snapshot_create(gen, 1, NULL, NULL, &s));
	l = gw_snapshot_listener_add(s);
	l->service = GW_SVC_TCP_PROXY;
	l->proxy_protocol = pp;
	rc = gw_snapshot_listener_set(l, "proxy", ups, RTE_MIN(n, RTE_DIM(ups)));
	gw_snapshot_seal(s);
	if (rc == 0)
		rc = gw_snap_pub_publish(pub, s);
	if (rc < 0)
		gw_snapshot_destroy(s);
	return rc;
}

static int
proxy_snap_publish(struct gw_snap_pub *pub, uint64_t gen, const uint16_t *ports, unsigned n)
{
	return proxy_snap_publish_pp(pub, gen, ports, n, GW_PROXY_OFF);
}

/* An upstream that keeps every byte it receives and closes after the FIN. */
struct sink {
	uint8_t buf[16384];
	size_t n;
	bool overflow, closed;
};

static void
sink_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	struct sink *k = ctx;
	uint8_t b[4096];
	size_t n;

	(void)reason;
	if (ev == GW_TCP_EV_CLOSED) { /* the handle is gone */
		k->closed = true;
		return;
	}
	while ((n = gw_tcp_read(c, b, sizeof(b))) > 0) {
		if (n > sizeof(k->buf) - k->n) {
			k->overflow = true;
			n = sizeof(k->buf) - k->n;
		}
		memcpy(k->buf + k->n, b, n);
		k->n += n;
	}
	if (gw_tcp_peer_closed(c)) {
		k->closed = true;
		gw_tcp_close(c);
	}
}

static int
sink_accept(struct gw_tcp_conn *c, void *ctx)
{
	gw_tcp_set_callback(c, sink_event, ctx);
	return 0;
}

/* Run the wire until the streamer is done (or a step limit). */
static void
wire_run(struct wire *w, struct streamer *st, uint64_t *now, unsigned max_steps)
{
	for (unsigned i = 0; i < max_steps && !st->closed; i++) {
		*now += 200; /* 200 us per loop iteration */
		for (unsigned k = 0; k < w->n_hosts; k++)
			gw_tcp_poll(w->hosts[k].s, *now);
		wire_deliver(w);
	}
	/* let TIME_WAIT and the last ACKs finish */
	for (unsigned i = 0; i < 200; i++) {
		*now += 50000;
		for (unsigned k = 0; k < w->n_hosts; k++)
			gw_tcp_poll(w->hosts[k].s, *now);
		wire_deliver(w);
	}
}

static bool
odd_port_local(void *ctx, uint32_t la, uint32_t ra, uint16_t lp, uint16_t rp)
{
	(void)ctx;
	(void)la;
	(void)ra;
	(void)rp;
	return ntohs(lp) % 2 == 1;
}

/* client A -> tcp-proxy on P:8080 -> upstream host 10.0.0.3, over one wire */
struct proxy_fix {
	struct wire *w;
	struct gw_tcp_stack *cl, *px, *up;
	struct gw_snap_pub *pub; /* the proxy's snapshots; reader 0 registered */
	uint64_t now;
};

static void
proxy_fix_open(struct proxy_fix *f, struct wire *w, unsigned drop_every, uint64_t rnd,
	struct rte_mempool *px_pool)
{
	memset(w, 0, sizeof(*w));
	w->drop_every = drop_every;
	w->rnd = rnd;
	f->w = w;
	f->now = 1000000;
	f->cl = wire_stack(w, A_ADDR, NULL);
	f->px = wire_stack_on(w, P_ADDR, odd_port_local, px_pool); /* NULL: the test's */
	f->up = wire_stack(w, RTE_IPV4(10, 0, 0, 3), NULL);
	gw_tcp_poll(f->cl, f->now);
	gw_tcp_poll(f->px, f->now);
	gw_tcp_poll(f->up, f->now);
	EXPECT_OK(gw_snap_pub_create(1, &f->pub));
	EXPECT_OK(gw_snap_reader_register(f->pub, 0));
}

/* Every proxy connection gone; free it all; no mbuf leaked. */
static void
proxy_fix_close(struct proxy_fix *f)
{
	struct gw_tcp_stats ps;

	gw_tcp_stats_get(f->px, &ps);
	for (int k = GW_TCP_ST_LISTEN; k < GW_TCP_ST_MAX; k++)
		EXPECT_EQ(ps.conns[k], 0);
	gw_tcp_stack_destroy(f->cl);
	gw_tcp_stack_destroy(f->px);
	gw_tcp_stack_destroy(f->up);
	gw_snap_reader_unregister(f->pub, 0);
	gw_snap_pub_destroy(f->pub);
	wire_flush(f->w);
	EXPECT_TRUE(pool_clean());
}

/* A client connection to the proxy on P:8080, streaming st. */
static void
proxy_fix_client(struct proxy_fix *f, struct streamer *st)
{
	struct gw_tcp_connect_params cp = {
		.laddr = htonl(A_ADDR),
		.raddr = htonl(P_ADDR),
		.rport = htons(8080),
		.cb = streamer_event,
		.ctx = st,
	};

	EXPECT_OK(gw_tcp_connect(f->cl, &cp, &st->c));
}

int
main(void)
{
	char prefix[64];
	char *eal_argv[] = {"test_tcp", "--no-huge", "--no-pci", "-m", "256", "--file-prefix",
		prefix, "-l", "0", "--log-level", "error", NULL};

	GW_TEST_BEGIN();
	/* per process: two builds' tests may run at once */
	snprintf(prefix, sizeof(prefix), "test_tcp_%d", (int)getpid());
	if (rte_eal_init((int)RTE_DIM(eal_argv) - 1, eal_argv) < 0) {
		fprintf(stderr, "FAIL: rte_eal_init (--no-huge -m 256): %s\n",
			rte_strerror(rte_errno));
		return 1;
	}
	pool = rte_pktmbuf_pool_create(
		"test_tcp", 32767, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (!pool) {
		fprintf(stderr, "FAIL: mbuf pool: %s\n", rte_strerror(rte_errno));
		return 1;
	}

	{ /* params validation */
		struct gw_tcp_stack_params p = {0};
		struct gw_tcp_stack *s = NULL;

		EXPECT_ERR(gw_tcp_stack_create(&p, &s), -EINVAL);
		EXPECT_TRUE(s == NULL);
		gw_tcp_stack_destroy(NULL);
	}

	{ /* passive 3-way handshake, options, in-order data, delayed ACK */
		struct h *h = h_new(0, 0, 0);
		struct pk p;
		struct gw_tcp_conn_info ci;
		uint32_t iss;
		char buf[256];

		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 80, 1000, 0, F_SYN,
					   65535, syn_opts, 8, NULL, 0));
		EXPECT_EQ(h->cap.n, 1);
		p = pk_parse(h->cap.m[0]);
		EXPECT_EQ(p.flags, F_SYN | F_ACK);
		EXPECT_EQ(p.ack, 1001);
		EXPECT_EQ(p.mss, 1460);
		EXPECT_EQ(p.ws, 3); /* 256 KiB rcvbuf needs shift 3 */
		EXPECT_TRUE(p.csum_ok);
		EXPECT_EQ(p.sport, 80);
		EXPECT_EQ(p.dport, 5555);
		iss = p.seq;
		cap_clear(&h->cap);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_SYN_RCVD], 1);
		EXPECT_TRUE(acc_rec.c == NULL || acc_rec.c != NULL); /* not yet accepted */
		memset(&acc_rec, 0, sizeof(acc_rec));
		h_in(h, 1001, iss + 1, F_ACK, 1024, NULL, 0);
		EXPECT_TRUE(acc_rec.c != NULL);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_ESTABLISHED], 1);
		gw_tcp_get_info(acc_rec.c, &ci);
		EXPECT_EQ(ci.snd_mss, 1460);
		EXPECT_EQ(ci.snd_wscale, 7);
		EXPECT_EQ(ci.snd_wnd, 1024u << 7);
		EXPECT_EQ(ci.state, GW_TCP_ST_ESTABLISHED);

		/* 100 bytes: READABLE, no immediate ACK, ACK after 40 ms */
		h_in(h, 1001, iss + 1, F_ACK | F_PSH, 1024, "hello, world", 12);
		EXPECT_EQ(acc_rec.n[GW_TCP_EV_READABLE], 1);
		h_poll(h, 1000);
		EXPECT_EQ(h->cap.n, 0);
		h_poll(h, 45000);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.flags, F_ACK);
			EXPECT_EQ(p.ack, 1013);
		}
		cap_clear(&h->cap);
		EXPECT_EQ(gw_tcp_read(acc_rec.c, buf, sizeof(buf)), 12);
		EXPECT_TRUE(memcmp(buf, "hello, world", 12) == 0);
		EXPECT_EQ(gw_tcp_read(acc_rec.c, buf, sizeof(buf)), 0);

		/* two full segments: ACK at the next poll, no delay */
		{
			static uint8_t big[2920];

			memset(big, 'x', sizeof(big));
			h_in(h, 1013, iss + 1, F_ACK, 1024, big, 1460);
			h_in(h, 1013 + 1460, iss + 1, F_ACK, 1024, big, 1460);
			h_poll(h, 10);
			EXPECT_EQ(h->cap.n, 1);
			if (h->cap.n)
				EXPECT_EQ(pk_parse(h->cap.m[0]).ack, 1013 + 2920);
			cap_clear(&h->cap);
			EXPECT_EQ(gw_tcp_rx_avail(acc_rec.c), 2920);
			EXPECT_EQ(gw_tcp_read(acc_rec.c, big, sizeof(big)), 2920);
		}
		gw_tcp_abort(acc_rec.c);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n)
			EXPECT_TRUE(pk_parse(h->cap.m[0]).flags & F_RST);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* out of order, duplicate, hole filled */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;
		char buf[64];

		EXPECT_TRUE(c != NULL);
		h_in(h, 1001 + 10, iss + 1, F_ACK, 1024, "KLMNOPQRST", 10);
		EXPECT_EQ(h->cap.n, 1); /* immediate duplicate ACK */
		if (h->cap.n)
			EXPECT_EQ(pk_parse(h->cap.m[0]).ack, 1001);
		cap_clear(&h->cap);
		EXPECT_EQ(gw_tcp_rx_avail(c), 0);
		EXPECT_EQ(h_st(h).rx_ooo, 1);
		h_in(h, 1001 + 25, iss + 1, F_ACK, 1024, "Z", 1); /* second hole */
		cap_clear(&h->cap);
		h_in(h, 1001, iss + 1, F_ACK, 1024, "ABCDEFGHIJ", 10); /* fills first */
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n)
			EXPECT_EQ(pk_parse(h->cap.m[0]).ack, 1021);
		cap_clear(&h->cap);
		/* overlapping segment covering old bytes and the next hole */
		h_in(h, 1001 + 15, iss + 1, F_ACK, 1024, "PQRSTUVWXY", 10);
		h_poll(h, 10);
		EXPECT_EQ(gw_tcp_rx_avail(c), 26);
		EXPECT_EQ(gw_tcp_read(c, buf, sizeof(buf)), 26);
		EXPECT_TRUE(memcmp(buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26) == 0);
		cap_clear(&h->cap);
		/* a pure duplicate gets an immediate ACK and is counted */
		h_in(h, 1001, iss + 1, F_ACK, 1024, "ABCDEFGHIJ", 10);
		EXPECT_EQ(h->cap.n, 1);
		EXPECT_EQ(h_st(h).rx_dup, 1);
		cap_clear(&h->cap);
		/* beyond the window: ACK, dropped */
		h_in(h, 1001 + 26 + 300000, iss + 1, F_ACK, 1024, "x", 1);
		EXPECT_EQ(h->cap.n, 1);
		EXPECT_EQ(h_st(h).rx_out_of_window, 1);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* 1-byte segments at scattered offsets: charged by buffer, not by bytes */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h), room = rte_pktmbuf_data_room_size(pool);
		unsigned base = rte_mempool_in_use_count(pool), held;
		struct gw_tcp_stats st;

		for (uint32_t i = 0; i < 500; i++) {
			h_in(h, 1001 + 2 + 3 * i, iss + 1, F_ACK, 1024, "x", 1);
			cap_clear(&h->cap);
		}
		held = rte_mempool_in_use_count(pool) - base;
		st = h_st(h);
		/* at most twice rcvbuf (256 KiB) of buffers: 240 mbufs, not 359 */
		EXPECT_TRUE(held <= 2u * 256 * 1024 / room);
		EXPECT_TRUE(held >= 2u * 256 * 1024 / room - 2);
		EXPECT_EQ(st.rx_ooo + st.rx_ooo_drop, 500);
		EXPECT_TRUE(st.rx_ooo_drop >= 500 - 2u * 256 * 1024 / room);
		/* in-order data over all of it: what was queued is covered, every
		 * buffer back */
		{
			static uint8_t d[1000];

			h_in(h, 1001, iss + 1, F_ACK, 1024, d, 1000);
			h_in(h, 2001, iss + 1, F_ACK, 1024, d, 1000);
		}
		EXPECT_EQ(gw_tcp_rx_avail(acc_rec.c), 2000);
		gw_tcp_consume(acc_rec.c, gw_tcp_rx_avail(acc_rec.c));
		cap_clear(&h->cap);
		EXPECT_EQ(rte_mempool_in_use_count(pool), base);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* the worker's out-of-order ceiling holds across connections, and is counted */
		struct h *h;
		uint32_t room = rte_pktmbuf_data_room_size(pool), iss[3];
		unsigned base, held;

		h_ooo_max = 100ull * room; /* 100 mbufs for the whole stack */
		h = h_new(0, 0, 0);
		h_ooo_max = 0;
		base = rte_mempool_in_use_count(pool);
		for (uint16_t k = 0; k < 3; k++)
			iss[k] = h_establish_from(h, (uint16_t)(7101 + k));
		cap_clear(&h->cap);
		for (uint32_t i = 0; i < 80; i++)
			for (uint16_t k = 0; k < 3; k++) {
				gw_tcp_input(
					h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR,
						      (uint16_t)(7101 + k), 80, 1001 + 2 + 3 * i,
						      iss[k] + 1, F_ACK, 1024, NULL, 0, "y", 1));
				cap_clear(&h->cap);
			}
		held = rte_mempool_in_use_count(pool) - base;
		EXPECT_EQ(held, 100);
		EXPECT_EQ(h_st(h).rx_ooo, 100);
		EXPECT_EQ(h_st(h).rx_ooo_drop_mem, 140);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* SACK permitted: negotiated, and dupacks carry the blocks */
		struct h *h = h_new(0, 0, 0);
		static const uint8_t o[12] = {2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2};
		struct pk p;
		uint32_t iss;

		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 80, 1000, 0, F_SYN,
					   65535, o, 12, NULL, 0));
		p = pk_parse(h->cap.m[0]);
		EXPECT_TRUE(p.sack_ok);
		iss = p.seq;
		cap_clear(&h->cap);
		h_in(h, 1001, iss + 1, F_ACK, 1024, NULL, 0);
		h_in(h, 1101, iss + 1, F_ACK, 1024, "0123456789", 10);
		h_in(h, 1201, iss + 1, F_ACK, 1024, "abcdefghij", 10);
		EXPECT_EQ(h->cap.n, 2);
		if (h->cap.n == 2) {
			p = pk_parse(h->cap.m[1]);
			EXPECT_EQ(p.ack, 1001);
			EXPECT_EQ(p.sack_n, 2);
			EXPECT_EQ(p.sack[0][0], 1201); /* latest first */
			EXPECT_EQ(p.sack[0][1], 1211);
			EXPECT_EQ(p.sack[1][0], 1101);
			EXPECT_EQ(p.sack[1][1], 1111);
		}
		cap_clear(&h->cap);
		h_in(h, 1111, iss + 1, F_ACK, 1024, "klmnopqrst", 10); /* merges */
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.sack_n, 2);
			EXPECT_EQ(p.sack[0][0], 1101);
			EXPECT_EQ(p.sack[0][1], 1121);
		}
		cap_clear(&h->cap);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* an idle connection whose data is all acknowledged holds no buffer */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;
		unsigned base;

		cap_clear(&h->cap);
		base = rte_mempool_in_use_count(pool);
		EXPECT_EQ(gw_tcp_write(c, "ping", 4), 4);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		cap_clear(&h->cap);
		EXPECT_EQ(rte_mempool_in_use_count(pool), base + 1);
		h_in(h, 1001, iss + 5, F_ACK, 1024, NULL, 0);
		cap_clear(&h->cap);
		EXPECT_EQ(rte_mempool_in_use_count(pool), base);
		/* and the next write starts a fresh buffer, in sequence */
		EXPECT_EQ(gw_tcp_write(c, "pong", 4), 4);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			struct pk p = pk_parse(h->cap.m[0]);

			EXPECT_EQ(p.seq, iss + 5);
			EXPECT_TRUE(p.len == 4 && memcmp(p.data, "pong", 4) == 0);
		}
		cap_clear(&h->cap);
		h_in(h, 1001, iss + 9, F_ACK, 1024, NULL, 0);
		cap_clear(&h->cap);
		EXPECT_EQ(rte_mempool_in_use_count(pool), base);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* send, RTT estimate, retransmission timer with backoff */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;
		struct gw_tcp_conn_info ci;
		struct pk p;

		EXPECT_EQ(gw_tcp_write(c, "ping", 4), 4);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		p = pk_parse(h->cap.m[0]);
		EXPECT_EQ(p.seq, iss + 1);
		EXPECT_EQ(p.len, 4);
		EXPECT_TRUE(memcmp(p.data, "ping", 4) == 0);
		EXPECT_TRUE(p.csum_ok);
		cap_clear(&h->cap);
		/* ACK after 50 ms: srtt 50 ms, rto = 50 + 4 * 25 = 150 -> min 200 */
		h->now += 50000;
		gw_tcp_poll(h->s, h->now);
		h_in(h, 1001, iss + 5, F_ACK, 1024, NULL, 0);
		gw_tcp_get_info(c, &ci);
		EXPECT_EQ(ci.srtt_us, 50000);
		EXPECT_EQ(ci.rto_ms, 200);
		/* unacked write: a tail loss probe at 2 srtt + 50 ms (one segment
		 * out: the peer may delay its ACK), then the RTO 200 ms later,
		 * then 400 ms later */
		EXPECT_EQ(gw_tcp_write(c, "pong", 4), 4);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		cap_clear(&h->cap);
		h_poll(h, 140000);
		EXPECT_EQ(h->cap.n, 0);
		h_poll(h, 11000);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.seq, iss + 5);
			EXPECT_EQ(p.len, 4);
		}
		cap_clear(&h->cap);
		EXPECT_EQ(h_st(h).tx_tlp, 1);
		EXPECT_EQ(h_st(h).tx_rto, 0);
		h_poll(h, 150000);
		EXPECT_EQ(h->cap.n, 0);
		h_poll(h, 60000);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.seq, iss + 5);
			EXPECT_EQ(p.len, 4);
		}
		cap_clear(&h->cap);
		EXPECT_EQ(h_st(h).tx_rto, 1);
		h_poll(h, 300000);
		EXPECT_EQ(h->cap.n, 0); /* backed off to 400 ms */
		h_poll(h, 110000);
		EXPECT_EQ(h->cap.n, 1);
		cap_clear(&h->cap);
		EXPECT_EQ(h_st(h).tx_rto, 2);
		/* the ACK of a retransmitted segment gives no RTT sample (Karn) */
		h_in(h, 1001, iss + 9, F_ACK, 1024, NULL, 0);
		gw_tcp_get_info(c, &ci);
		EXPECT_EQ(ci.srtt_us, 50000);
		h_poll(h, 5000000);
		EXPECT_EQ(h->cap.n, 0); /* nothing outstanding, no timer */
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* fast retransmit on 3 dupacks, NewReno partial and full ACK */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;
		static uint8_t data[14600];
		struct gw_tcp_conn_info ci;
		struct pk p;

		for (unsigned i = 0; i < sizeof(data); i++)
			data[i] = (uint8_t)i;
		EXPECT_EQ(gw_tcp_write(c, data, sizeof(data)), sizeof(data));
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 10); /* initial window: 10 segments */
		cap_clear(&h->cap);
		/* segment 1 lost: 3 dupacks of iss+1+1460 */
		h_in(h, 1001, iss + 1 + 1460, F_ACK, 1024, NULL, 0);
		for (int i = 0; i < 3; i++)
			h_in(h, 1001, iss + 1 + 1460, F_ACK, 1024, NULL, 0);
		EXPECT_EQ(h_st(h).tx_fast_rtx, 1);
		EXPECT_TRUE(h->cap.n >= 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.seq, iss + 1 + 1460);
			EXPECT_EQ(p.len, 1460);
			EXPECT_TRUE(memcmp(p.data, data + 1460, 1460) == 0);
		}
		cap_clear(&h->cap);
		gw_tcp_get_info(c, &ci);
		EXPECT_EQ(ci.ssthresh, 13140 / 2);
		/* partial ACK (up to segment 4 lost too): retransmit segment 4 */
		h_in(h, 1001, iss + 1 + 4 * 1460, F_ACK, 1024, NULL, 0);
		EXPECT_TRUE(h->cap.n >= 1);
		if (h->cap.n)
			EXPECT_EQ(pk_parse(h->cap.m[0]).seq, iss + 1 + 4 * 1460);
		cap_clear(&h->cap);
		/* full ACK ends recovery: cwnd deflated to <= ssthresh */
		h_in(h, 1001, iss + 1 + 14600, F_ACK, 1024, NULL, 0);
		gw_tcp_get_info(c, &ci);
		EXPECT_TRUE(ci.cwnd <= ci.ssthresh);
		EXPECT_EQ(gw_tcp_tx_space(c), 256 * 1024);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* SACK recovery: holes resent from the scoreboard, SACKed data not */
		struct h *h = h_new(0, 0, 0);
		static const uint8_t o[12] = {2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2};
		static uint8_t data[14600];
		uint32_t iss, S[12];
		struct pk p;
		uint8_t sk[40];
		struct gw_tcp_conn *c;

		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 80, 1000, 0, F_SYN,
					   65535, o, 12, NULL, 0));
		iss = pk_parse(h->cap.m[0]).seq;
		cap_clear(&h->cap);
		h_in(h, 1001, iss + 1, F_ACK, 1024, NULL, 0);
		c = acc_rec.c;
		for (int k = 1; k < 12; k++)
			S[k] = iss + 1 + (uint32_t)(k - 1) * 1460;
		EXPECT_EQ(gw_tcp_write(c, data, sizeof(data)), sizeof(data));
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 10);
		cap_clear(&h->cap);
		/* segments 1 and 4 lost; SACK options: NOP NOP 5 len blocks */
#define SACK_IN(nblk, ...)                                                                     \
	do {                                                                                   \
		uint32_t b_[] = {__VA_ARGS__};                                                 \
		sk[0] = 1;                                                                     \
		sk[1] = 1;                                                                     \
		sk[2] = 5;                                                                     \
		sk[3] = (uint8_t)(2 + 8 * (nblk));                                             \
		for (int i_ = 0; i_ < 2 * (nblk); i_++) {                                      \
			uint32_t v_ = htonl(b_[i_]);                                           \
			memcpy(sk + 4 + 4 * i_, &v_, 4);                                       \
		}                                                                              \
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 80, 1001, S[1], \
					   F_ACK, 1024, sk, 4 + 8 * (nblk), NULL, 0));         \
	} while (0)
		SACK_IN(1, S[2], S[4]);
		EXPECT_EQ(h->cap.n, 0);
		SACK_IN(2, S[2], S[4], S[5], S[6]); /* 3 segments SACKed: recovery */
		EXPECT_EQ(h_st(h).tx_fast_rtx, 1);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.seq, S[1]);
			EXPECT_EQ(p.len, 1460);
		}
		cap_clear(&h->cap);
		SACK_IN(2, S[2], S[4], S[5], S[8]); /* two more left the pipe */
		h_poll(h, 10);
		EXPECT_TRUE(h->cap.n >= 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.seq, S[4]); /* the second hole, without a partial ACK */
			EXPECT_EQ(p.len, 1460);
		}
		for (unsigned i = 0; i < h->cap.n; i++) { /* never SACKed data again */
			p = pk_parse(h->cap.m[i]);
			EXPECT_TRUE(p.seq == S[4] || p.seq >= S[11]);
		}
		cap_clear(&h->cap);
		h_in(h, 1001, S[11], F_ACK, 1024, NULL, 0);
		EXPECT_EQ(gw_tcp_tx_space(c), 256 * 1024);
		EXPECT_EQ(h_st(h).tx_rto, 0);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* zero window: persist probes, then the window reopens */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;
		struct pk p;

		h_in(h, 1001, iss + 1, F_ACK, 0, NULL, 0); /* window closed */
		EXPECT_EQ(gw_tcp_write(c, "abc", 3), 3);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 0);
		h_poll(h, 1100000); /* initial RTO 1 s */
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.seq, iss); /* snd_una - 1: a probe */
			EXPECT_EQ(p.len, 0);
		}
		cap_clear(&h->cap);
		EXPECT_EQ(h_st(h).tx_probe, 1);
		h_in(h, 1001, iss + 1, F_ACK, 0, NULL, 0); /* still closed */
		h_poll(h, 2100000);                        /* backed off */
		EXPECT_EQ(h_st(h).tx_probe, 2);
		cap_clear(&h->cap);
		h_in(h, 1001, iss + 1, F_ACK, 1024, NULL, 0); /* window update */
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.len, 3);
			EXPECT_EQ(p.seq, iss + 1);
		}
		cap_clear(&h->cap);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* an orphan stuck on a zero window dies after 30 s, probes or not */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;

		h_in(h, 1001, iss + 1, F_ACK, 0, NULL, 0);
		EXPECT_EQ(gw_tcp_write(c, "stuck", 5), 5);
		gw_tcp_close(c);               /* FIN after data that cannot go */
		for (int i = 0; i < 40; i++) { /* the peer answers every probe */
			h_poll(h, 1000000);
			if (h_st(h).conns[GW_TCP_ST_FIN_WAIT_1] == 0)
				break;
			h_in(h, 1001, iss + 1, F_ACK, 0, NULL, 0);
		}
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_FIN_WAIT_1], 0);
		EXPECT_EQ(h_st(h).conn_timeout, 1);
		EXPECT_TRUE(h_st(h).tx_probe >= 3);
		EXPECT_EQ(h_st(h).tx_rst, 1);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* app-owned, a peer that never reads: no progress for the idle time */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;
		int i;

		h_in(h, 1001, iss + 1, F_ACK, 0, NULL, 0);
		EXPECT_EQ(gw_tcp_write(c, "stuck", 5), 5);
		for (i = 0; i < 400 && acc_rec.n[GW_TCP_EV_CLOSED] == 0; i++) {
			h_poll(h, 1000000);
			h_in(h, 1001, iss + 1, F_ACK, 0, NULL, 0); /* "still zero" */
		}
		EXPECT_EQ(acc_rec.n[GW_TCP_EV_CLOSED], 1);
		EXPECT_EQ(acc_rec.reason, -ETIMEDOUT);
		EXPECT_TRUE(i >= 299); /* not before the 300 s idle time */
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* our receive window shrinks while unread, reopens on read */
		struct h *h = h_new(0, 4096, 0);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;
		static uint8_t d[1460];
		uint8_t buf[4096];
		struct pk p;

		h_in(h, 1001, iss + 1, F_ACK, 1024, d, 1460);
		h_in(h, 1001 + 1460, iss + 1, F_ACK, 1024, d, 1460);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		p = pk_parse(h->cap.m[0]);
		EXPECT_EQ(p.ack, 1001 + 2920);
		EXPECT_EQ(p.win, 4096 - 2920); /* no scaling for 4 KiB */
		cap_clear(&h->cap);
		h_in(h, 1001 + 2920, iss + 1, F_ACK, 1024, d, 1176);
		h_poll(h, 50000);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n)
			EXPECT_EQ(pk_parse(h->cap.m[0]).win, 0);
		cap_clear(&h->cap);
		/* a zero-window probe with one byte: ACKed, byte not taken */
		h_in(h, 1001 + 4096, iss + 1, F_ACK, 1024, d, 1);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.ack, 1001 + 4096);
			EXPECT_EQ(p.win, 0);
		}
		cap_clear(&h->cap);
		EXPECT_EQ(gw_tcp_read(c, buf, sizeof(buf)), 4096);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1); /* window update */
		if (h->cap.n)
			EXPECT_EQ(pk_parse(h->cap.m[0]).win, 4096);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* send buffer backpressure and WRITABLE */
		struct h *h = h_new(0, 0, 8192);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;
		static uint8_t d[10000];

		EXPECT_EQ(gw_tcp_write(c, d, sizeof(d)), 8192);
		EXPECT_EQ(gw_tcp_tx_space(c), 0);
		EXPECT_EQ(gw_tcp_write(c, d, 1), 0);
		h_poll(h, 10);
		cap_clear(&h->cap);
		h_in(h, 1001, iss + 1 + 8192, F_ACK, 1024, NULL, 0);
		EXPECT_EQ(acc_rec.n[GW_TCP_EV_WRITABLE], 1);
		EXPECT_EQ(gw_tcp_tx_space(c), 8192);
		{ /* pool empty: -ENOBUFS, nothing lost, WRITABLE once it refills */
			static struct rte_mbuf *hog[40000];
			unsigned nh = 0;

			h_poll(h, 10);
			cap_clear(&h->cap);
			while (nh < RTE_DIM(hog) && (hog[nh] = rte_pktmbuf_alloc(pool)) != NULL)
				nh++;
			EXPECT_ERR(gw_tcp_write(c, d, 100), -ENOBUFS);
			EXPECT_EQ(gw_tcp_tx_space(c), 8192);
			h_poll(h, 10);
			EXPECT_EQ(acc_rec.n[GW_TCP_EV_WRITABLE], 1); /* still empty */
			for (unsigned i = 0; i < nh; i++)
				rte_pktmbuf_free(hog[i]);
			h_poll(h, 10);
			EXPECT_EQ(acc_rec.n[GW_TCP_EV_WRITABLE], 2);
			EXPECT_EQ(gw_tcp_write(c, d, 100), 100);
		}
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* a WRITABLE callback that frees another waiter on the nobuf list */
		struct h *h = h_new(0, 0, 8192);
		struct nobuf_rec ra = {0}, rb = {0}, rc = {0};
		static struct rte_mbuf *hog[40000];
		static uint8_t d[100];
		unsigned nh = 0;

		h_establish_from(h, 7001);
		ra.self = acc_rec.c;
		h_establish_from(h, 7002);
		rb.self = acc_rec.c;
		h_establish_from(h, 7003);
		rc.self = acc_rec.c;
		gw_tcp_set_callback(ra.self, nobuf_event, &ra);
		gw_tcp_set_callback(rb.self, nobuf_event, &rb);
		gw_tcp_set_callback(rc.self, nobuf_event, &rc);
		ra.victim = rb.self; /* b waits behind a: a's WRITABLE kills it */
		h_poll(h, 10);
		cap_clear(&h->cap);
		while (nh < RTE_DIM(hog) && (hog[nh] = rte_pktmbuf_alloc(pool)) != NULL)
			nh++;
		EXPECT_ERR(gw_tcp_write(ra.self, d, sizeof(d)), -ENOBUFS);
		EXPECT_ERR(gw_tcp_write(rb.self, d, sizeof(d)), -ENOBUFS);
		for (unsigned i = 0; i < nh; i++)
			rte_pktmbuf_free(hog[i]);
		h_poll(h, 10);
		EXPECT_EQ(ra.writable, 1);
		EXPECT_EQ(rb.writable, 0); /* aborted before its turn */
		cap_clear(&h->cap);
		/* the list must still be sound: c waits, and is woken */
		nh = 0;
		while (nh < RTE_DIM(hog) && (hog[nh] = rte_pktmbuf_alloc(pool)) != NULL)
			nh++;
		EXPECT_ERR(gw_tcp_write(rc.self, d, sizeof(d)), -ENOBUFS);
		for (unsigned i = 0; i < nh; i++)
			rte_pktmbuf_free(hog[i]);
		h_poll(h, 10);
		EXPECT_EQ(rc.writable, 1);
		EXPECT_EQ(gw_tcp_write(rc.self, d, sizeof(d)), (long)sizeof(d));
		h_poll(h, 10);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* peer closes first: CLOSE_WAIT, then our close: LAST_ACK, freed */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;
		struct pk p;
		char buf[8];

		h_in(h, 1001, iss + 1, F_ACK | F_FIN, 1024, "bye", 3);
		EXPECT_EQ(acc_rec.n[GW_TCP_EV_PEER_FIN], 1);
		EXPECT_EQ(gw_tcp_get_state(c), GW_TCP_ST_CLOSE_WAIT);
		EXPECT_TRUE(!gw_tcp_peer_closed(c)); /* 3 bytes still unread */
		EXPECT_EQ(gw_tcp_read(c, buf, sizeof(buf)), 3);
		EXPECT_TRUE(gw_tcp_peer_closed(c));
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n)
			EXPECT_EQ(pk_parse(h->cap.m[0]).ack, 1005);
		cap_clear(&h->cap);
		EXPECT_EQ(gw_tcp_write(c, "ok", 2), 2); /* half-close: we may still send */
		gw_tcp_close(c);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.flags, F_ACK | F_PSH | F_FIN);
			EXPECT_EQ(p.len, 2);
		}
		cap_clear(&h->cap);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_LAST_ACK], 1);
		h_in(h, 1005, iss + 4, F_ACK, 1024, NULL, 0);
		h_poll(h, 10);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_LAST_ACK], 0);
		EXPECT_EQ(h_st(h).conn_freed, 1);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* we close first: FIN_WAIT_1/2, TIME_WAIT, expiry; retransmitted FIN */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;

		gw_tcp_shutdown(c);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n)
			EXPECT_EQ(pk_parse(h->cap.m[0]).flags, F_ACK | F_FIN);
		cap_clear(&h->cap);
		EXPECT_EQ(gw_tcp_get_state(c), GW_TCP_ST_FIN_WAIT_1);
		EXPECT_ERR(gw_tcp_write(c, "x", 1), -EPIPE);
		h_in(h, 1001, iss + 2, F_ACK, 1024, NULL, 0);
		EXPECT_EQ(gw_tcp_get_state(c), GW_TCP_ST_FIN_WAIT_2);
		h_in(h, 1001, iss + 2, F_ACK | F_FIN, 1024, NULL, 0);
		EXPECT_EQ(gw_tcp_get_state(c), GW_TCP_ST_TIME_WAIT);
		EXPECT_EQ(acc_rec.n[GW_TCP_EV_PEER_FIN], 1);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n)
			EXPECT_EQ(pk_parse(h->cap.m[0]).ack, 1002);
		cap_clear(&h->cap);
		/* our ACK was lost: the FIN comes again and is ACKed again */
		h_in(h, 1001, iss + 2, F_ACK | F_FIN, 1024, NULL, 0);
		h_poll(h, 10);
		EXPECT_EQ(h->cap.n, 1);
		cap_clear(&h->cap);
		h_poll(h, 1000000);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_TIME_WAIT], 1);
		h_poll(h, 1100000); /* default TIME_WAIT 2 s */
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_TIME_WAIT], 0);
		EXPECT_EQ(acc_rec.n[GW_TCP_EV_CLOSED], 1); /* app never closed */
		EXPECT_EQ(acc_rec.reason, 0);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* simultaneous close: FIN_WAIT_1 -> CLOSING -> TIME_WAIT */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;

		gw_tcp_shutdown(c);
		h_poll(h, 10);
		cap_clear(&h->cap);
		h_in(h, 1001, iss + 1, F_ACK | F_FIN, 1024, NULL, 0); /* theirs, ours unacked */
		EXPECT_EQ(gw_tcp_get_state(c), GW_TCP_ST_CLOSING);
		h_in(h, 1002, iss + 2, F_ACK, 1024, NULL, 0);
		EXPECT_EQ(gw_tcp_get_state(c), GW_TCP_ST_TIME_WAIT);
		gw_tcp_close(c);
		h_poll(h, 3000000);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_TIME_WAIT], 0);
		EXPECT_EQ(acc_rec.n[GW_TCP_EV_CLOSED], 0);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* closes crossing: the peer's RST one below rcv_nxt resets */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);
		struct gw_tcp_conn *c = acc_rec.c;

		/* before any FIN it is outside the window: ignored */
		h_in(h, 1000, 0, F_RST, 0, NULL, 0);
		EXPECT_EQ(h_st(h).rx_rst_bad, 1);
		EXPECT_EQ(gw_tcp_get_state(c), GW_TCP_ST_ESTABLISHED);
		EXPECT_EQ(gw_tcp_write(c, "bye", 3), 3);
		gw_tcp_close(c);
		h_poll(h, 10);
		cap_clear(&h->cap);
		/* their FIN crossed our data and FIN; their socket is gone, so
		 * our segments draw a RST with the ACK number they carried */
		h_in(h, 1001, iss + 1, F_ACK | F_FIN, 1024, NULL, 0);
		EXPECT_EQ(gw_tcp_get_state(c), GW_TCP_ST_CLOSING);
		cap_clear(&h->cap);
		h_in(h, 1001, 0, F_RST, 0, NULL, 0);
		EXPECT_EQ(h->cap.n, 0); /* no challenge ACK */
		EXPECT_EQ(h_st(h).rx_rst, 1);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_CLOSING], 0);
		EXPECT_EQ(h_st(h).conn_freed, 1);
		h_poll(h, 1000000); /* nothing left to retransmit */
		EXPECT_EQ(h->cap.n, 0);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* the same in CLOSE_WAIT: their FIN first, then their RST */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);

		h_in(h, 1001, iss + 1, F_ACK | F_FIN, 1024, NULL, 0);
		EXPECT_EQ(gw_tcp_get_state(acc_rec.c), GW_TCP_ST_CLOSE_WAIT);
		h_in(h, 1001, 0, F_RST, 0, NULL, 0);
		EXPECT_EQ(h_st(h).rx_rst, 1);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_CLOSE_WAIT], 0);
		EXPECT_EQ(acc_rec.n[GW_TCP_EV_CLOSED], 1);
		EXPECT_EQ(acc_rec.reason, -ECONNRESET);
		/* gone: a RST for no connection is not answered */
		h_in(h, 1000, 0, F_RST, 0, NULL, 0);
		EXPECT_EQ(h->cap.n, 0);
		EXPECT_EQ(h_st(h).rx_rst, 1);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* RST: exact resets, in window challenges, outside ignored; SYN too */
		struct h *h = h_new(0, 0, 0);
		uint32_t iss = h_establish(h);
		struct pk p;

		h_in(h, 1001 + 100, 0, F_RST, 0, NULL, 0);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.flags, F_ACK);
			EXPECT_EQ(p.ack, 1001);
			EXPECT_EQ(p.seq, iss + 1);
		}
		cap_clear(&h->cap);
		EXPECT_EQ(h_st(h).rx_challenge_ack, 1);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_ESTABLISHED], 1);
		h_in(h, 1001 + 10000000, 0, F_RST, 0, NULL, 0);
		EXPECT_EQ(h->cap.n, 0);
		EXPECT_EQ(h_st(h).rx_rst_bad, 1);
		/* SYN on an established connection: challenge ACK, no reset */
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 80, 7777, 0, F_SYN,
					   65535, syn_opts, 8, NULL, 0));
		EXPECT_EQ(h_st(h).rx_challenge_ack, 2);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_ESTABLISHED], 1);
		cap_clear(&h->cap);
		/* a flood of in-window RSTs: at most 1000 challenge ACKs a second */
		for (int i = 0; i < 1100; i++)
			h_in(h, 1001 + 5, 0, F_RST, 0, NULL, 0);
		EXPECT_EQ(h->cap.n, 998);
		EXPECT_EQ(h_st(h).rx_challenge_ack_limited, 102);
		cap_clear(&h->cap);
		h_poll(h, 1000000);
		h_in(h, 1001 + 5, 0, F_RST, 0, NULL, 0);
		EXPECT_EQ(h->cap.n, 1); /* next second: allowed again */
		cap_clear(&h->cap);
		h_in(h, 1001, 0, F_RST, 0, NULL, 0);
		EXPECT_EQ(acc_rec.n[GW_TCP_EV_CLOSED], 1);
		EXPECT_EQ(acc_rec.reason, -ECONNRESET);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_ESTABLISHED], 0);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* closed port: RST|ACK to SYN, RST to ACK, nothing to RST */
		struct h *h = h_new(0, 0, 0);
		struct pk p;

		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 81, 500, 0, F_SYN,
					   65535, NULL, 0, NULL, 0));
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.flags, F_RST | F_ACK);
			EXPECT_EQ(p.ack, 501);
			EXPECT_EQ(p.seq, 0);
		}
		cap_clear(&h->cap);
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 81, 500, 123456,
					   F_ACK, 65535, NULL, 0, "x", 1));
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			p = pk_parse(h->cap.m[0]);
			EXPECT_EQ(p.flags, F_RST);
			EXPECT_EQ(p.seq, 123456);
		}
		cap_clear(&h->cap);
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 81, 500, 1, F_RST, 0,
					   NULL, 0, NULL, 0));
		EXPECT_EQ(h->cap.n, 0);
		EXPECT_EQ(h_st(h).rx_no_conn, 2);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* malformed input: bad checksum, truncated, bad offset, bad options */
		struct h *h = h_new(0, 0, 0);
		struct rte_mbuf *m;
		static const uint8_t bad_mss[4] = {2, 3, 5, 1};
		static const uint8_t overrun[4] = {1, 1, 8, 10};

		m = gw_test_tcp_seg(
			pool, P_ADDR, A_ADDR, 5555, 80, 1, 0, F_SYN, 65535, NULL, 0, NULL, 0);
		rte_pktmbuf_mtod_offset(m, uint8_t *, 36)[0] ^= 0xff; /* checksum */
		gw_tcp_input(h->s, m);
		EXPECT_EQ(h_st(h).rx_bad_csum, 1);
		m = gw_test_tcp_seg(
			pool, P_ADDR, A_ADDR, 5555, 80, 1, 0, F_SYN, 65535, NULL, 0, NULL, 0);
		m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_BAD; /* the NIC said so */
		gw_tcp_input(h->s, m);
		EXPECT_EQ(h_st(h).rx_bad_csum, 2);
		/* truncated: IP total length says 30 bytes */
		m = gw_test_tcp_seg(
			pool, P_ADDR, A_ADDR, 5555, 80, 1, 0, F_SYN, 65535, NULL, 0, NULL, 0);
		rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *)->total_length = htons(30);
		rte_pktmbuf_trim(m, 10);
		gw_tcp_input(h->s, m);
		EXPECT_EQ(h_st(h).rx_bad_hdr, 1);
		/* data offset beyond the packet */
		m = gw_test_tcp_seg(
			pool, P_ADDR, A_ADDR, 5555, 80, 1, 0, F_SYN, 65535, NULL, 0, NULL, 0);
		rte_pktmbuf_mtod_offset(m, struct rte_tcp_hdr *, 20)->data_off = 0xf0;
		m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD;
		gw_tcp_input(h->s, m);
		EXPECT_EQ(h_st(h).rx_bad_hdr, 2);
		/* data offset below 5 words */
		m = gw_test_tcp_seg(
			pool, P_ADDR, A_ADDR, 5555, 80, 1, 0, F_SYN, 65535, NULL, 0, NULL, 0);
		rte_pktmbuf_mtod_offset(m, struct rte_tcp_hdr *, 20)->data_off = 0x40;
		m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD;
		gw_tcp_input(h->s, m);
		EXPECT_EQ(h_st(h).rx_bad_hdr, 3);
		/* SYN+FIN */
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 80, 1, 0,
					   F_SYN | F_FIN, 65535, NULL, 0, NULL, 0));
		EXPECT_EQ(h_st(h).rx_bad_hdr, 4);
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 80, 1, 0, F_SYN,
					   65535, bad_mss, 4, NULL, 0));
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 80, 1, 0, F_SYN,
					   65535, overrun, 4, NULL, 0));
		EXPECT_EQ(h_st(h).rx_bad_opt, 2);
		EXPECT_EQ(h->cap.n, 0);
		EXPECT_EQ(h_st(h).rx_syn, 0);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* SYN backlog full -> SYN cookies; valid cookie ACK accepted, forged not */
		struct h *h = h_new(2, 0, 0);
		struct gw_tcp_conn_info ci;
		struct pk p;
		uint32_t cookie;

		for (uint16_t port = 6000; port < 6002; port++)
			gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, port, 80, 100, 0,
						   F_SYN, 65535, syn_opts, 8, NULL, 0));
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_SYN_RCVD], 2);
		cap_clear(&h->cap);
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 6002, 80, 5000, 0, F_SYN,
					   65535, syn_opts, 8, NULL, 0));
		EXPECT_EQ(h_st(h).syncookie_tx, 1);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_SYN_RCVD], 2);
		EXPECT_EQ(h->cap.n, 1);
		p = pk_parse(h->cap.m[0]);
		EXPECT_EQ(p.flags, F_SYN | F_ACK);
		EXPECT_EQ(p.ack, 5001);
		EXPECT_EQ(p.mss, 1460);
		EXPECT_EQ(p.ws, -1); /* a cookie cannot remember window scale */
		cookie = p.seq;
		cap_clear(&h->cap);
		/* forged: wrong cookie, and a right cookie for another client ISN */
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 6002, 80, 5001, cookie + 2,
					   F_ACK, 512, NULL, 0, NULL, 0));
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 6002, 80, 6001, cookie + 1,
					   F_ACK, 512, NULL, 0, NULL, 0));
		EXPECT_EQ(h_st(h).syncookie_bad, 2);
		EXPECT_EQ(h->cap.n, 2); /* both answered with RST */
		if (h->cap.n)
			EXPECT_EQ(pk_parse(h->cap.m[0]).flags, F_RST);
		cap_clear(&h->cap);
		memset(&acc_rec, 0, sizeof(acc_rec));
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 6002, 80, 5001, cookie + 1,
					   F_ACK, 512, NULL, 0, "GET", 3));
		EXPECT_EQ(h_st(h).syncookie_ok, 1);
		EXPECT_TRUE(acc_rec.c != NULL);
		if (acc_rec.c) {
			gw_tcp_get_info(acc_rec.c, &ci);
			EXPECT_TRUE(ci.from_syncookie);
			EXPECT_EQ(ci.snd_mss, 1460);
			EXPECT_EQ(ci.snd_wnd, 512);
			EXPECT_EQ(gw_tcp_rx_avail(acc_rec.c), 3);
			EXPECT_EQ(acc_rec.n[GW_TCP_EV_READABLE], 1);
		}
		/* a cookie from a past slot (> 128 s) is stale */
		cap_clear(&h->cap);
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 6003, 80, 9000, 0, F_SYN,
					   65535, syn_opts, 8, NULL, 0));
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n)
			cookie = pk_parse(h->cap.m[0]).seq;
		cap_clear(&h->cap);
		h_poll(h, 200000000); /* 200 s; half-open ones time out meanwhile */
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_SYN_RCVD], 0);
		EXPECT_EQ(h_st(h).conn_timeout, 2);
		cap_clear(&h->cap);
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 6003, 80, 9001, cookie + 1,
					   F_ACK, 512, NULL, 0, NULL, 0));
		EXPECT_EQ(h_st(h).syncookie_bad, 3);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* SYN cookie keys: a new one each 64 s slot, the previous slot's still valid */
		struct h *h = h_new(1, 0, 0);
		uint64_t slot_us = 64000000;
		uint32_t c1, c2;

		/* same 4-tuple, ISN and MSS 32 slots apart: the slot bits are the
		 * same, so only a new key makes another cookie */
		c1 = h_cookie(h, 6101, 7000);
		h_poll(h, 32 * slot_us);
		c2 = h_cookie(h, 6101, 7000);
		EXPECT_TRUE(c1 != 0 && c2 != 0);
		EXPECT_EQ(c1 >> 27, c2 >> 27);
		EXPECT_TRUE(c1 != c2);
		/* made just before a slot ends, checked right after the rekey: ok */
		h_poll(h, slot_us - (h->now % slot_us) - 1000);
		c1 = h_cookie(h, 6102, 8000);
		h_poll(h, 2000);
		c2 = h_cookie(h, 6104, 9000); /* the new slot's key is in use */
		EXPECT_TRUE((c1 >> 27) != (c2 >> 27));
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 6102, 80, 8001, c1 + 1,
					   F_ACK, 512, NULL, 0, NULL, 0));
		EXPECT_EQ(h_st(h).syncookie_ok, 1);
		/* two rekeys later the key is gone: rejected */
		h_poll(h, 2 * slot_us);
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 6104, 80, 9001, c2 + 1,
					   F_ACK, 512, NULL, 0, NULL, 0));
		EXPECT_EQ(h_st(h).syncookie_ok, 1);
		EXPECT_EQ(h_st(h).syncookie_bad, 1);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* every secret from RAND_bytes: with OpenSSL's generator replaced by a
	   * fixed one, two stacks agree on the ISN (nothing else fed it); a new
	   * cookie slot draws a new key; a failing generator refuses the stack */
		struct gw_tcp_stack_params p = {
			.pool = pool,
			.ip_output = cap_out,
			.max_conns = 4,
			.tsc_hz = 1000000,
		};
		struct gw_tcp_stack *s = NULL;
		struct h *h1, *h2;
		unsigned calls;
		uint32_t i1;

		EXPECT_EQ(RAND_set_rand_method(&rand_fixed), 1);
		h_seed = 0;
		rand_calls = 0;
		h1 = h_new(0, 0, 0);
		EXPECT_TRUE(rand_calls >= 4); /* ISN secret, 2 cookie keys, ports */
		h2 = h_new(0, 0, 0);
		i1 = h_isn(h1, 5555);
		EXPECT_EQ(i1, h_isn(h2, 5555));
		EXPECT_TRUE(i1 != h_isn(h1, 5556)); /* keyed by the 4-tuple */
		h_free(h1);
		h_free(h2);
		h1 = h_new(1, 0, 0);
		calls = rand_calls;
		h_poll(h1, 2 * 64000000ULL); /* two cookie slots (64 s) later */
		EXPECT_TRUE(h_cookie(h1, 6000, 7) != 0);
		EXPECT_TRUE(rand_calls > calls); /* rekeyed for the new slot */
		h_free(h1);
		/* the slots asked for (dataplane.tcp.max_connections), or the default */
		EXPECT_OK(gw_tcp_stack_create(&p, &s));
		EXPECT_EQ(s ? gw_tcp_stack_max_conns(s) : 0, 4);
		gw_tcp_stack_destroy(s);
		p.max_conns = 0;
		s = NULL;
		EXPECT_OK(gw_tcp_stack_create(&p, &s));
		EXPECT_EQ(s ? gw_tcp_stack_max_conns(s) : 0, 16384);
		gw_tcp_stack_destroy(s);
		s = NULL;
		p.max_conns = 4;
		rand_fail = true;
		p.net_ctx = NULL;
		EXPECT_EQ(gw_tcp_stack_create(&p, &s), -EIO);
		EXPECT_TRUE(s == NULL);
		rand_fail = false;
		EXPECT_EQ(RAND_set_rand_method(RAND_OpenSSL()), 1);

		/* OpenSSL's own generator: two stacks, two ISNs for one 4-tuple */
		h1 = h_new(0, 0, 0);
		h2 = h_new(0, 0, 0);
		h_seed = 42;
		EXPECT_TRUE(h_isn(h1, 5555) != h_isn(h2, 5555));
		h_free(h1);
		h_free(h2);
		EXPECT_TRUE(pool_clean());
	}

	{ /* SYN-ACK retransmission and handshake timeout */
		struct h *h = h_new(0, 0, 0);

		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 80, 1000, 0, F_SYN,
					   65535, syn_opts, 8, NULL, 0));
		cap_clear(&h->cap);
		h_poll(h, 1001000);
		EXPECT_EQ(h->cap.n, 1); /* SYN-ACK again after 1 s */
		if (h->cap.n)
			EXPECT_EQ(pk_parse(h->cap.m[0]).flags, F_SYN | F_ACK);
		cap_clear(&h->cap);
		/* duplicate SYN: SYN-ACK again at once */
		gw_tcp_input(h->s, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 5555, 80, 1000, 0, F_SYN,
					   65535, syn_opts, 8, NULL, 0));
		EXPECT_EQ(h->cap.n, 1);
		cap_clear(&h->cap);
		h_poll(h, 10000000);
		EXPECT_EQ(h_st(h).conns[GW_TCP_ST_SYN_RCVD], 0);
		EXPECT_EQ(h_st(h).conn_timeout, 1);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* active open: SYN options, SYN-ACK, CONNECTED; flow_is_local port */
		struct h *h = h_new(0, 0, 0);
		struct gw_tcp_stack_params p = {
			.pool = pool,
			.ip_output = cap_out,
			.net_ctx = &h->cap,
			.max_conns = 16,
			.tsc_hz = 1000000,
			.flow_is_local = odd_port_local,
		};
		struct gw_tcp_stack *s2 = NULL;
		struct gw_tcp_connect_params cp = {
			.raddr = htonl(P_ADDR),
			.rport = htons(443),
			.cb = rec_event,
		};
		struct evrec r = {0}, r2 = {0};
		struct gw_tcp_conn *c = NULL;
		struct pk pk;

		EXPECT_OK(gw_tcp_stack_create(&p, &s2));
		gw_tcp_poll(s2, 1000000);
		cp.ctx = &r;
		EXPECT_ERR(gw_tcp_connect(s2, &cp, &c), -EADDRNOTAVAIL); /* no source */
		cp.laddr = htonl(A_ADDR);
		EXPECT_OK(gw_tcp_connect(s2, &cp, &c));
		gw_tcp_poll(s2, 1000010);
		EXPECT_EQ(h->cap.n, 1);
		pk = pk_parse(h->cap.m[0]);
		EXPECT_EQ(pk.flags, F_SYN);
		EXPECT_EQ(pk.mss, 1460);
		EXPECT_EQ(pk.ws, 3);
		EXPECT_EQ(pk.sport % 2, 1);
		EXPECT_EQ(pk.dport, 443);
		EXPECT_TRUE(pk.sport >= 32768 && pk.sport < 61000);
		cap_clear(&h->cap);
		EXPECT_ERR(gw_tcp_write(c, "x", 1), -ENOTCONN);
		{
			static const uint8_t o[8] = {2, 4, 0x02, 0x18, 1, 3, 3, 2}; /* MSS 536 */

			/* a SYN-ACK with a wrong ACK gets an RST, no state change */
			gw_tcp_input(s2, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 443, pk.sport, 9000,
						 pk.seq + 5, F_SYN | F_ACK, 100, o, 8, NULL, 0));
			EXPECT_EQ(h->cap.n, 1);
			if (h->cap.n)
				EXPECT_EQ(pk_parse(h->cap.m[0]).flags, F_RST);
			cap_clear(&h->cap);
			gw_tcp_input(s2, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 443, pk.sport, 9000,
						 pk.seq + 1, F_SYN | F_ACK, 100, o, 8, NULL, 0));
		}
		EXPECT_EQ(r.n[GW_TCP_EV_CONNECTED], 1);
		{
			struct gw_tcp_conn_info ci;

			gw_tcp_get_info(c, &ci);
			EXPECT_EQ(ci.snd_mss, 536);
			EXPECT_EQ(ci.snd_wscale, 2);
			EXPECT_EQ(ci.snd_wnd, 100);
		}
		gw_tcp_poll(s2, 1000020);
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			pk = pk_parse(h->cap.m[0]);
			EXPECT_EQ(pk.flags, F_ACK);
			EXPECT_EQ(pk.ack, 9001);
		}
		cap_clear(&h->cap);
		gw_tcp_close(c);
		/* refused: RST|ACK to our SYN */
		cp.ctx = &r2;
		EXPECT_OK(gw_tcp_connect(s2, &cp, &c));
		gw_tcp_poll(s2, 1000030);
		for (unsigned i = 0; i < h->cap.n; i++) /* our FIN of the first goes too */
			if (pk_parse(h->cap.m[i]).flags == F_SYN)
				pk = pk_parse(h->cap.m[i]);
		cap_clear(&h->cap);
		gw_tcp_input(s2, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 443, pk.sport, 0, pk.seq + 1,
					 F_RST | F_ACK, 0, NULL, 0, NULL, 0));
		EXPECT_EQ(r2.n[GW_TCP_EV_CLOSED], 1);
		EXPECT_EQ(r2.reason, -ECONNREFUSED);
		/* simultaneous open: their SYN crosses ours -> SYN-ACK -> ACK */
		memset(&r2, 0, sizeof(r2));
		EXPECT_OK(gw_tcp_connect(s2, &cp, &c));
		gw_tcp_poll(s2, 1000035);
		pk = pk_parse(h->cap.m[h->cap.n - 1]);
		EXPECT_EQ(pk.flags, F_SYN);
		cap_clear(&h->cap);
		gw_tcp_input(s2, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 443, pk.sport, 7000, 0,
					 F_SYN, 1000, syn_opts, 8, NULL, 0));
		EXPECT_EQ(h->cap.n, 1);
		if (h->cap.n) {
			struct pk sa = pk_parse(h->cap.m[0]);

			EXPECT_EQ(sa.flags, F_SYN | F_ACK);
			EXPECT_EQ(sa.seq, pk.seq);
			EXPECT_EQ(sa.ack, 7001);
		}
		cap_clear(&h->cap);
		gw_tcp_input(s2, gw_test_tcp_seg(pool, P_ADDR, A_ADDR, 443, pk.sport, 7001,
					 pk.seq + 1, F_ACK, 1000, NULL, 0, NULL, 0));
		EXPECT_EQ(r2.n[GW_TCP_EV_CONNECTED], 1);
		EXPECT_EQ(gw_tcp_get_state(c), GW_TCP_ST_ESTABLISHED);
		gw_tcp_abort(c);
		gw_tcp_poll(s2, 1000036);
		cap_clear(&h->cap);
		/* unanswered: SYN retries, then ETIMEDOUT (handshake timeout) */
		memset(&r2, 0, sizeof(r2));
		EXPECT_OK(gw_tcp_connect(s2, &cp, &c));
		for (uint64_t t = 1000040; t < 13000000; t += 100000)
			gw_tcp_poll(s2, t);
		EXPECT_TRUE(h->cap.n >= 4); /* 1 + retries at 1, 3, 7 s */
		EXPECT_EQ(r2.n[GW_TCP_EV_CLOSED], 1);
		EXPECT_EQ(r2.reason, -ETIMEDOUT);
		cap_clear(&h->cap);
		gw_tcp_stack_destroy(s2);
		h_free(h);
		EXPECT_TRUE(pool_clean());
	}

	{ /* two stacks: 10 MB through echo, lossless then with ~3% loss */
		for (int lossy = 0; lossy < 3; lossy++) {
			static struct wire w;
			struct gw_tcp_stack *cl, *srv;
			struct gw_svc_params sp = {
				.ip = htonl(P_ADDR), .port = htons(7), .kind = GW_SVC_ECHO};
			struct gw_tcp_connect_params cp = {
				.laddr = htonl(A_ADDR),
				.raddr = htonl(P_ADDR),
				.rport = htons(7),
				.cb = streamer_event,
			};
			struct streamer st = {.total = 10u << 20};
			uint64_t now = 1000000;
			struct gw_tcp_stats ss, cs;

			memset(&w, 0, sizeof(w));
			w.drop_every = lossy ? 33 : 0;
			w.reorder_every = lossy == 2 ? 40 : 0; /* and reordering */
			w.rnd = 12345;
			cl = wire_stack(&w, A_ADDR, NULL);
			srv = wire_stack(&w, P_ADDR, NULL);
			gw_tcp_poll(cl, now);
			gw_tcp_poll(srv, now);
			EXPECT_OK(gw_svc_listen(srv, &sp));
			EXPECT_ERR(gw_svc_listen(srv, &sp), -EADDRINUSE);
			cp.ctx = &st;
			EXPECT_OK(gw_tcp_connect(cl, &cp, &st.c));
			wire_run(&w, &st, &now, 400000);
			EXPECT_TRUE(st.connected);
			EXPECT_EQ(st.sent, st.total);
			EXPECT_EQ(st.rcvd, st.total);
			EXPECT_TRUE(!st.bad);
			EXPECT_TRUE(st.closed);
			EXPECT_EQ(st.reason, 0);
			gw_tcp_stats_get(srv, &ss);
			gw_tcp_stats_get(cl, &cs);
			if (lossy) {
				EXPECT_TRUE(w.dropped > 100);
				EXPECT_TRUE(cs.tx_rtx_bytes > 0 && ss.tx_rtx_bytes > 0);
				printf("echo 10 MB with loss%s: %" PRIu64 " of %" PRIu64
				       " packets dropped, fast rtx %" PRIu64 "+%" PRIu64
				       ", rto %" PRIu64 "+%" PRIu64 "\n",
					lossy == 2 ? " and reordering" : "", w.dropped, w.n,
					cs.tx_fast_rtx, ss.tx_fast_rtx, cs.tx_rto, ss.tx_rto);
			}
			/* every connection gone on both sides */
			for (int k = GW_TCP_ST_LISTEN; k < GW_TCP_ST_MAX; k++) {
				EXPECT_EQ(ss.conns[k], 0);
				EXPECT_EQ(cs.conns[k], 0);
			}
			gw_tcp_stack_destroy(cl);
			gw_tcp_stack_destroy(srv);
			wire_flush(&w); /* frees what is still in flight */
			EXPECT_TRUE(pool_clean());
		}
	}

	{ /* tcp-proxy: client -> proxy -> (refusing upstream, then echo) */
		static struct wire w;
		struct proxy_fix f;
		struct gw_svc_params echo = {
			.ip = htonl(RTE_IPV4(10, 0, 0, 3)), .port = htons(7), .kind = GW_SVC_ECHO};
		struct gw_svc_params prox = {
			.ip = htonl(P_ADDR), .port = htons(8080), .kind = GW_SVC_TCP_PROXY};
		struct streamer st = {.total = 2u << 20}, st2 = {.total = 1000},
				st3 = {.total = 1000};
		struct gw_tcp_stats ps;
		const struct gw_snapshot *gen1;

		proxy_fix_open(&f, &w, 50, 777, NULL);
		/* the upstreams come from the snapshot: port 9 (nobody listens:
		 * RST), then the echo on 7 */
		EXPECT_OK(proxy_snap_publish(f.pub, 1, (const uint16_t[]){9, 7}, 2));
		gen1 = gw_snap_current(f.pub);
		prox.pub = f.pub;
		EXPECT_OK(gw_svc_listen(f.up, &echo));
		EXPECT_OK(gw_svc_listen(f.px, &prox));
		prox.pub = NULL;
		prox.port = htons(8081);
		EXPECT_ERR(gw_svc_listen(f.px, &prox), -EINVAL);
		proxy_fix_client(&f, &st);
		wire_run(&w, &st, &f.now, 400000);
		EXPECT_TRUE(st.connected);
		EXPECT_EQ(st.rcvd, st.total);
		EXPECT_TRUE(!st.bad);
		EXPECT_TRUE(st.closed);
		EXPECT_EQ(st.reason, 0);
		/* second client: round robin now starts at the refusing one again or
		 * the good one; either way it must get through */
		proxy_fix_client(&f, &st2);
		wire_run(&w, &st2, &f.now, 100000);
		EXPECT_EQ(st2.rcvd, st2.total);
		EXPECT_TRUE(!st2.bad);
		/* both pairs released their snapshot (the reader never went
		 * quiescent: gen1 cannot have been freed) */
		EXPECT_EQ(gw_snapshot_refs(gen1), 0);
		/* a reload to the refusing upstream only: the next client is
		 * proxied there and reset */
		EXPECT_OK(proxy_snap_publish(f.pub, 2, (const uint16_t[]){9}, 1));
		proxy_fix_client(&f, &st3);
		wire_run(&w, &st3, &f.now, 100000);
		EXPECT_TRUE(st3.closed && st3.reason != 0 && st3.rcvd == 0);
		EXPECT_EQ(gw_snapshot_refs(gw_snap_current(f.pub)), 0);
		gw_tcp_stats_get(f.px, &ps);
		EXPECT_TRUE(ps.conn_refused >= 2);
		EXPECT_EQ(ps.conn_connected, 2);
		proxy_fix_close(&f);
	}

	/* tcp-proxy with proxy_protocol v2: the upstream receives the PROXY v2
	 * header (address only) first, then the client's bytes unchanged; with
	 * it off, the client's bytes only. Modes: 0 off; 1 v2 through loss; 2 v2
	 * with the mbuf pool empty when the upstream connects (the header waits
	 * for WRITABLE, and no client byte goes before it) */
	for (int mode = 0; mode < 3; mode++) {
		bool v2 = mode > 0;
		static struct wire w;
		static struct sink sk;
		struct proxy_fix f;
		struct gw_tcp_listen_params lp = {
			.laddr = htonl(RTE_IPV4(10, 0, 0, 3)),
			.lport = htons(9000),
			.accept = sink_accept,
			.ctx = &sk,
		};
		struct gw_svc_params prox = {
			.ip = htonl(P_ADDR), .port = htons(8080), .kind = GW_SVC_TCP_PROXY};
		struct streamer st = {.total = 5000};
		struct gw_tcp_conn_info ci;
		struct rte_mempool *px_pool;
		uint16_t cport;
		size_t hl = v2 ? 28 : 0;

		memset(&sk, 0, sizeof(sk));
		/* mode 2: the proxy has a pool of its own, so that the
		 * test can empty it while the others still send */
		px_pool = mode == 2 ? rte_pktmbuf_pool_create("test_tcp_px", 2047, 0, 0,
					      RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY)
				    : NULL;
		EXPECT_TRUE(mode != 2 || px_pool != NULL);
		proxy_fix_open(&f, &w, mode == 1 ? 7 : 0, 4242, px_pool);
		EXPECT_OK(proxy_snap_publish_pp(
			f.pub, 1, (const uint16_t[]){9000}, 1, v2 ? GW_PROXY_V2 : GW_PROXY_OFF));
		prox.pub = f.pub;
		EXPECT_OK(gw_tcp_listen(f.up, &lp));
		EXPECT_OK(gw_svc_listen(f.px, &prox));
		proxy_fix_client(&f, &st);
		gw_tcp_get_info(st.c, &ci);
		cport = ntohs(ci.lport);
		if (mode == 2) {
			static struct rte_mbuf *hog[4096];
			struct gw_tcp_stats b, a;
			unsigned nh = 0, i;

			/* up to the upstream's SYN-ACK on the wire: the client's
			 * bytes are at the proxy by then */
			for (i = 0; i < 1000; i++) {
				f.now += 200;
				gw_tcp_poll(f.cl, f.now);
				gw_tcp_poll(f.px, f.now);
				gw_tcp_poll(f.up, f.now);
				if (wire_has(&w, RTE_IPV4(10, 0, 0, 3), 9000,
					    RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG))
					break;
				wire_deliver(&w);
			}
			EXPECT_TRUE(i < 1000);
			while (nh < RTE_DIM(hog) && (hog[nh] = rte_pktmbuf_alloc(px_pool)) != NULL)
				nh++;
			gw_tcp_stats_get(f.px, &b);
			wire_deliver(&w); /* CONNECTED with no mbuf for the header */
			gw_tcp_stats_get(f.px, &a);
			EXPECT_TRUE(a.tx_nombuf > b.tx_nombuf);
			EXPECT_EQ(a.conn_connected, 1);
			for (i = 0; i < nh; i++)
				rte_pktmbuf_free(hog[i]);
		}
		wire_run(&w, &st, &f.now, 100000);
		EXPECT_TRUE(st.connected && st.closed && !st.bad);
		EXPECT_EQ(st.reason, 0);
		EXPECT_EQ(st.rcvd, 0);
		EXPECT_TRUE(sk.closed && !sk.overflow);
		EXPECT_EQ(sk.n, hl + st.total);
		if (v2 && sk.n >= hl) {
			const uint8_t want[28] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51,
				0x55, 0x49, 0x54, 0x0a, /* signature */
				0x21,                   /* version 2, PROXY */
				0x11,                   /* AF_INET, STREAM */
				0x00, 0x0c,             /* 12 bytes follow: no TLV */
				10, 0, 0, 1,            /* source: the client */
				10, 0, 0, 2,            /* destination: the listener */
				(uint8_t)(cport >> 8), (uint8_t)cport, /* the client's port */
				8080 >> 8, 8080 & 0xff};               /* the listener's */

			EXPECT_TRUE(memcmp(sk.buf, want, sizeof(want)) == 0);
		}
		if (sk.n == hl + st.total) {
			bool same = true;

			for (size_t i = 0; i < st.total; i++)
				same = same && sk.buf[hl + i] == pat(i);
			EXPECT_TRUE(same);
		}
		proxy_fix_close(&f);
		if (px_pool) {
			EXPECT_EQ(rte_mempool_in_use_count(px_pool), 0);
			rte_mempool_free(px_pool);
		}
	}

	rte_mempool_free(pool);
	rte_eal_cleanup();
	gw_test_eal_dir_remove(); /* the per-pid prefix would pile up otherwise */
	GW_TEST_END();
}
