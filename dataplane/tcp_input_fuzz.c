/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcp_input_fuzz.c - libFuzzer target for the TCP packet input path
 * (gw_tcp_input, with gw_tcp_poll and the stream API in between).
 *
 * Each input is a sequence of records that drive a fresh stack holding a
 * listener (the echo service on 10.0.0.1:80), an established connection
 * (from 10.0.0.2:5555, handshake done before the records) and an active open
 * in SYN_SENT:
 *   u8 mode, u8 ms_advance, u16 len (LE), len bytes of IPv4+TCP packet
 * mode bit 0: fix IPv4 length/IHL/checksums and the TCP checksum, so the
 *             fuzzer gets past the checksum into the state machine;
 *        bit 1: rewrite the 4-tuple to the established connection (or the
 *             active open if bit 4);
 *        bit 2: seq/ack become offsets from that connection's rcv_nxt /
 *             snd_una (as a peer would send);
 *        bit 3: then an app action on the connection chosen by the first
 *             payload byte (write / read / shutdown / close / abort).
 * Without bit 0 the bytes go in raw (TCP's own defensive checks). After the
 * records the stack is destroyed and every mbuf must be back in the pool.
 */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_tcp.h>

#include "gw_dpdk_test.h"
#include "svc.h"
#include "tcp.h"
#include "tcp_internal.h"

static struct rte_mempool *pool;

static void
out_free(void *ctx, struct rte_mbuf *m)
{
	(void)ctx;
	rte_pktmbuf_free(m);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char prefix[64];
	char *eal_argv[] = {"tcp_input_fuzz", "--no-huge", "--no-pci", "-m", "128", "--file-prefix",
		prefix, "-l", "0", "--log-level", "error", NULL};

	(void)argc;
	(void)argv;
	snprintf(prefix, sizeof(prefix), "tcp_input_fuzz_%d", (int)getpid());
	if (rte_eal_init((int)RTE_DIM(eal_argv) - 1, eal_argv) < 0)
		abort();
	atexit(gw_test_eal_dir_remove);
	pool = rte_pktmbuf_pool_create(
		"fuzz", 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (!pool)
		abort();
	return 0;
}

#define L_ADDR RTE_IPV4(10, 0, 0, 1)
#define P_ADDR RTE_IPV4(10, 0, 0, 2)

static struct gw_tcp_conn *est, *act;

static void
ev(struct gw_tcp_conn *c, enum gw_tcp_event e, int reason, void *ctx)
{
	uint8_t buf[2048];

	(void)reason;
	(void)ctx;
	if (e == GW_TCP_EV_CLOSED) {
		if (c == est)
			est = NULL;
		if (c == act)
			act = NULL;
		return;
	}
	if (e == GW_TCP_EV_READABLE)
		(void)gw_tcp_read(c, buf, sizeof(buf) / 2); /* leave some unread */
}

static int
acc(struct gw_tcp_conn *c, void *ctx)
{
	(void)ctx;
	if (!est)
		est = c;
	gw_tcp_set_callback(c, ev, NULL);
	return 0;
}

/* a bare segment (no options, no payload, full window) of the handshake */
static struct rte_mbuf *
mk(uint32_t src, uint32_t dst, uint16_t sp, uint16_t dp, uint32_t seq, uint32_t ack, uint8_t fl)
{
	return gw_test_tcp_seg(pool, src, dst, sp, dp, seq, ack, fl, 65535, NULL, 0, NULL, 0);
}

/* the last segment the stack sent, to learn ISNs */
static uint32_t last_seq;
static void
out_seq(void *ctx, struct rte_mbuf *m)
{
	struct rte_tcp_hdr *th = rte_pktmbuf_mtod_offset(m, struct rte_tcp_hdr *, 20);

	(void)ctx;
	last_seq = rte_be_to_cpu_32(th->sent_seq);
	rte_pktmbuf_free(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_tcp_stack_params p = {
		.pool = pool,
		.ip_output = out_seq,
		.max_conns = 32,
		.tsc_hz = 1000,
		.rcvbuf = 16384,
		.sndbuf = 16384,
		.max_ooo_segs = 8,
		.secret_seed = 7,
	};
	struct gw_svc_params sp = {.ip = rte_cpu_to_be_32(L_ADDR),
		.port = rte_cpu_to_be_16(80),
		.kind = GW_SVC_ECHO,
		.backlog = 4};
	struct gw_tcp_listen_params lp = {.laddr = rte_cpu_to_be_32(L_ADDR),
		.lport = rte_cpu_to_be_16(81),
		.backlog = 2,
		.accept = acc};
	struct gw_tcp_connect_params cp = {.laddr = rte_cpu_to_be_32(L_ADDR),
		.raddr = rte_cpu_to_be_32(P_ADDR),
		.rport = rte_cpu_to_be_16(443),
		.cb = ev};
	struct gw_tcp_stack *s;
	uint64_t now = 1000;
	uint32_t iss;

	est = act = NULL;
	if (gw_tcp_stack_create(&p, &s) != 0)
		abort();
	gw_tcp_poll(s, now);
	if (gw_svc_listen(s, &sp) != 0 || gw_tcp_listen(s, &lp) != 0)
		abort();
	/* established connection on port 81 (our accept keeps it) */
	gw_tcp_input(s, mk(P_ADDR, L_ADDR, 5555, 81, 1000, 0, RTE_TCP_SYN_FLAG));
	iss = last_seq;
	gw_tcp_input(s, mk(P_ADDR, L_ADDR, 5555, 81, 1001, iss + 1, RTE_TCP_ACK_FLAG));
	if (gw_tcp_connect(s, &cp, &act) != 0)
		abort();
	gw_tcp_poll(s, ++now);
	s->p.ip_output = out_free;

	while (size >= 4) {
		uint8_t mode = data[0];
		unsigned adv = data[1], len = (unsigned)data[2] | (unsigned)data[3] << 8;
		struct gw_tcp_conn *c = (mode & 0x10) ? act : est;
		struct rte_mbuf *m;
		uint8_t *pkt;

		data += 4;
		size -= 4;
		if (len > size)
			len = (unsigned)size;
		if (len > 1600)
			len = 1600;
		m = rte_pktmbuf_alloc(pool);
		if (!m)
			abort();
		pkt = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)RTE_MAX(len, 40u));
		memset(pkt, 0, RTE_MAX(len, 40u));
		memcpy(pkt, data, len);
		data += len;
		size -= len;
		if (mode & 1) {
			struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)pkt;
			unsigned plen = RTE_MAX(len, 40u), ihl = (ip->version_ihl & 0xf) * 4u;
			struct rte_tcp_hdr *th;

			/* what the net layer guarantees */
			if (ihl < 20 || ihl + 20 > plen)
				ihl = 20;
			ip->version_ihl = (uint8_t)(0x40 | ihl / 4);
			ip->total_length = rte_cpu_to_be_16((uint16_t)plen);
			ip->fragment_offset = 0;
			ip->next_proto_id = IPPROTO_TCP;
			th = (struct rte_tcp_hdr *)(pkt + ihl);
			if ((mode & 2) && c) {
				ip->src_addr = c->key.raddr;
				ip->dst_addr = c->key.laddr;
				th->src_port = c->key.rport;
				th->dst_port = c->key.lport;
			}
			if ((mode & 4) && c) {
				th->sent_seq = rte_cpu_to_be_32(
					c->rcv_nxt + (uint32_t)(int16_t)rte_be_to_cpu_16(
							     (uint16_t)th->sent_seq));
				th->recv_ack = rte_cpu_to_be_32(
					c->snd_una + (uint32_t)(int16_t)rte_be_to_cpu_16(
							     (uint16_t)th->recv_ack));
			}
			/* the checksum over the header as it now is */
			if (((th->data_off >> 4) * 4u) + ihl <= plen) {
				th->cksum = 0;
				th->cksum = rte_ipv4_udptcp_cksum(ip, th);
			}
			ip->hdr_checksum = 0;
			ip->hdr_checksum = rte_ipv4_cksum(ip);
		}
		gw_tcp_input(s, m);
		now += adv * 4u; /* up to ~1 s per record */
		gw_tcp_poll(s, now);
		if ((mode & 8) && c && len > 40) {
			static const uint8_t junk[255 * 12];
			uint8_t buf[512];

			switch (pkt[40] & 7) {
			case 0:
			case 1:
				(void)gw_tcp_write(c, junk, (size_t)pkt[41] * 12);
				break;
			case 2:
				(void)gw_tcp_read(c, buf, sizeof(buf));
				break;
			case 3:
				gw_tcp_shutdown(c);
				break;
			case 4:
				gw_tcp_close(c);
				if (c == est)
					est = NULL;
				else
					act = NULL;
				break;
			case 5:
				gw_tcp_abort(c);
				if (c == est)
					est = NULL;
				else
					act = NULL;
				break;
			default:
				(void)gw_tcp_peek(c, buf, sizeof(buf));
				gw_tcp_consume(c, pkt[41]);
				break;
			}
			gw_tcp_poll(s, ++now);
		}
	}
	/* let every timer run out: retransmissions, TIME_WAIT, timeouts */
	for (int i = 0; i < 40; i++) {
		now += 30000;
		gw_tcp_poll(s, now);
	}
	gw_tcp_stack_destroy(s);
	if (rte_mempool_in_use_count(pool) != 0)
		abort(); /* an mbuf leaked */
	return 0;
}
