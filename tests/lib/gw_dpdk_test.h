/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_dpdk_test.h - what the in-process EAL programs of the TCP tests share
 * (tests/unit/test_tcp.c, dataplane/tcp_input_fuzz.c): a crafted IPv4+TCP
 * segment with valid checksums, and the removal of the per-pid EAL runtime
 * dir, so the crafted peer and the cleanup are the same in both.
 */
#ifndef GW_DPDK_TEST_H
#define GW_DPDK_TEST_H

#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_mempool.h>

/*
 * An IPv4 (TTL 64) + TCP segment from pool: addresses and ports in host
 * order, optlen bytes of TCP options (a multiple of 4), len bytes of
 * payload, both checksums set. Aborts if the pool is empty: a test's pool
 * is sized for it.
 */
struct rte_mbuf *gw_test_tcp_seg(struct rte_mempool *pool, uint32_t src, uint32_t dst,
	uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, uint16_t win,
	const uint8_t *opt, unsigned optlen, const void *data, unsigned len);

/*
 * EAL leaves /var/run/dpdk/<prefix>/ behind; with a per-pid prefix they
 * would pile up. Call after rte_eal_cleanup() or at exit.
 */
void gw_test_eal_dir_remove(void);

#endif /* GW_DPDK_TEST_H */
