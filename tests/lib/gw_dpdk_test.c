/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_dpdk_test.c - crafted TCP segments and EAL runtime dir cleanup for the
 * TCP tests (see gw_dpdk_test.h).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "gw_dpdk_test.h"

struct rte_mbuf *
gw_test_tcp_seg(struct rte_mempool *pool, uint32_t src, uint32_t dst, uint16_t sport,
	uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t win, const uint8_t *opt,
	unsigned optlen, const void *data, unsigned len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	unsigned thlen = 20 + optlen;
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *th;

	if (!m)
		abort();
	ip = (struct rte_ipv4_hdr *)rte_pktmbuf_append(m, 20 + thlen + len);
	memset(ip, 0, 20 + thlen);
	ip->version_ihl = 0x45;
	ip->total_length = htons(20 + thlen + len);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = htonl(src);
	ip->dst_addr = htonl(dst);
	th = (struct rte_tcp_hdr *)(ip + 1);
	th->src_port = htons(sport);
	th->dst_port = htons(dport);
	th->sent_seq = htonl(seq);
	th->recv_ack = htonl(ack);
	th->data_off = (uint8_t)((thlen / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = htons(win);
	if (optlen)
		memcpy(th + 1, opt, optlen);
	if (len)
		memcpy((uint8_t *)(th + 1) + optlen, data, len);
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return m;
}

void
gw_test_eal_dir_remove(void)
{
	char path[PATH_MAX];
	const char *dir = rte_eal_get_runtime_dir();
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}
