/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * port.h - drivers/: turn a port description (driver, device, queues wanted)
 * into a configured, started DPDK ethdev, and say what it got.
 *
 * The caller (the dataplane) asks for one RX/TX queue pair per worker; the
 * device may give fewer, and may or may not spread flows over its RX queues
 * with our Toeplitz key. struct gw_port reports both, so the dataplane can
 * fall back to software dispatch (gw_port_rss_hash, same key) and shared TX.
 *
 * Lifecycle: gw_port_devargs() before rte_eal_init() (the EAL needs the
 * --vdev / -a argument), gw_port_open() after it, gw_port_close() before
 * rte_eal_cleanup(). A tap interface exists exactly between open and close
 * (DPDK's tap is not persistent: if the process dies the kernel removes it).
 *
 * Not thread-safe: called from the main lcore while no worker runs
 * (except gw_port_rss_hash and gw_port_kind_name, which are pure).
 */
#ifndef GW_PORT_H
#define GW_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "gw_err.h"

enum gw_port_kind {
	GW_PORT_KIND_TAP,       /* net_tap: a kernel tap interface we create */
	GW_PORT_KIND_AF_PACKET, /* net_af_packet on an existing kernel interface */
	GW_PORT_KIND_AF_XDP,    /* net_af_xdp on an existing kernel interface */
	GW_PORT_KIND_MEMIF,     /* net_memif: shared memory with another DPDK process */
	GW_PORT_KIND_PCI,       /* a NIC bound to vfio-pci, by PCI address */
};

/* What a port should be. Strings are borrowed for the duration of a call. */
struct gw_port_params {
	const char *name; /* the operator's name ("wan"), for messages */
	enum gw_port_kind kind;
	const char *device; /* iface name, memif socket path, or PCI address */
	bool memif_client;  /* memif only: role=client (default server) */
	uint16_t n_queues;  /* RX/TX queue pairs wanted: one per worker */
	uint16_t mtu;       /* 0 = device default */
	uint16_t nb_rxd;    /* descriptors per RX queue; 0 = 1024 */
	uint16_t nb_txd;    /* descriptors per TX queue; 0 = 1024 */
	bool rx_intr;       /* ask for RX queue interrupts (idle: interrupt) */
	/* tap only: once the tap exists, give its kernel side this address
	 * (network order; 0 = leave it to the operator) and bring it up */
	uint32_t peer_ip;
	uint8_t peer_prefix_len;  /* 1..32 */
	struct rte_mempool *pool; /* RX buffers (gw_port_open only) */
};

/* RX queues of a port with level-triggered fds (rx_intr_level) that
 * gw_port_open records; a port with more waits adaptively. */
#define GW_PORT_MAX_LEVEL_QUEUES 64

/* What a port is, once open. */
struct gw_port {
	uint16_t port_id;
	uint16_t n_rxq;     /* RX queues configured (>= 1) */
	uint16_t n_txq;     /* TX queues configured (>= 1) */
	bool rss;           /* the device spreads TCP/IPv4 flows over n_rxq with
			      * gw_port_rss_key and reta[i] = i % n_rxq */
	uint16_t reta_size; /* hardware reta size if rss, else GW_PORT_SW_RETA */
	bool rx_ip_cksum;   /* RX: device checks IPv4 header checksums */
	bool rx_tcp_cksum;  /* RX: device checks TCP checksums */
	bool tx_ip_cksum;   /* TX: device fills IPv4 header checksums */
	bool tx_tcp_cksum;  /* TX: device fills TCP checksums (pseudo-header by us) */
	/* asked for (gw_port_params.rx_intr) and every RX queue has an
	 * interrupt event (rte_eth_dev_rx_intr_ctl_q works on it, or
	 * rx_intr_level); taps, af_packet with one queue (its socket, below)
	 * and NICs whose driver has them do; af_xdp and (DPDK 22.11) memif
	 * do not */
	bool rx_intr;
	/* tap: the interrupt fd is the queue's own fd, readable while frames
	 * wait: watch it level-triggered. DPDK's rte_eth_dev_rx_intr_ctl_q
	 * watches it edge-triggered, and the tap PMD reads only once its
	 * SIGIO handler has run, so a wake-up that beats the handler reads
	 * nothing and spends the edge: the frame would wait for the tick.
	 * af_packet with one queue: no interrupt in DPDK, but the queue is a
	 * PACKET_MMAP socket, which poll(2) reports readable while a frame
	 * waits in its RX ring: the same level-triggered fd, found at open
	 * (several queues: no telling which socket is which, so none).
	 * rx_fd[q] is queue q's fd for both. */
	bool rx_intr_level;
	int rx_fd[GW_PORT_MAX_LEVEL_QUEUES];
	uint16_t mtu;
	struct rte_ether_addr mac;
	char name[32];    /* operator's name */
	char devname[64]; /* ethdev name ("net_tap0", "0000:01:00.0") */
	bool started;
};

/* Largest MTU: a whole frame (with Ethernet header, a VLAN tag and the CRC
 * some drivers keep) must fit one default mbuf. */
#define GW_PORT_MAX_MTU (RTE_MBUF_DEFAULT_DATAROOM - RTE_ETHER_HDR_LEN - RTE_ETHER_CRC_LEN - 4)

/* Reta size used by software dispatch: owner = (hash % reta_size) % n. */
#define GW_PORT_SW_RETA 128

/*
 * The device's own counters control reports per port (the struct
 * rte_eth_stats fields of the same names: what the device dropped because
 * a queue was full, there was no mbuf, or a frame was bad). rxq/txq/mtu
 * are settings, not counters.
 */
#define GW_PORT_STATS(X) X(imissed) X(ierrors) X(oerrors) X(rx_nombuf)

/* The fixed 40-byte Toeplitz key shared by NIC RSS and software dispatch. */
extern const uint8_t gw_port_rss_key[40];

/*
 * The EAL argument that makes port number idx exist: for vdevs the value of a
 * --vdev option ("net_tap0,iface=mtlsgw0"), for pci the value of -a. Sets
 * *is_pci. Returns 0, or -EINVAL (bad device string, with a message) or
 * -ENOSPC (buf too small).
 */
GW_MUST_CHECK int gw_port_devargs(
	const struct gw_port_params *p, unsigned idx, char *buf, size_t len, bool *is_pci);

/*
 * Before rte_eal_init: is the device usable? A tap name must be free (DPDK
 * would silently attach to an existing tap as an extra queue, sharing it
 * with whoever made it), an af_packet/af_xdp interface must exist. Returns
 * 0, -EEXIST or -ENODEV with a message.
 */
GW_MUST_CHECK int gw_port_check(const struct gw_port_params *p);

/*
 * Configure and start port number idx (the same idx given to
 * gw_port_devargs): queues, offloads negotiated from dev_info, RSS when the
 * device has it for all queues, MTU, a tap's peer address. Fills *out. On failure nothing stays
 * configured and gw_err_msg() says why ("port 'wan' (net_tap0): ...").
 * Returns 0, -ENODEV (device not found), or the ethdev's negative errno.
 */
GW_MUST_CHECK int gw_port_open(const struct gw_port_params *p, unsigned idx, struct gw_port *out);

/* Stop and close the port (a tap interface disappears). NULL / closed ok. */
void gw_port_close(struct gw_port *port);

/*
 * Toeplitz hash with gw_port_rss_key over an IPv4 TCP 4-tuple as it arrives
 * on the wire (src, dst, sport, dport), all in network byte order: the value
 * a NIC configured by gw_port_open computes for that packet. Pure: any
 * thread (workers call it per packet).
 */
uint32_t gw_port_rss_hash(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport);

/* Static name of a kind ("tap" ...). */
const char *gw_port_kind_name(enum gw_port_kind kind);

#endif /* GW_PORT_H */
