/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * port.c - a port description -> a configured, started DPDK ethdev.
 *
 * Queue policy (why each kind gets what it gets):
 * - tap: the kernel's tun driver hands each packet to one of the attached
 *   queue fds by its own flow hash, so every RX queue we create must be
 *   polled; we create one pair per worker and each worker polls its own and
 *   dispatches in software (the kernel's hash is not our Toeplitz).
 * - af_packet: qpairs=N with PACKET_FANOUT, same reasoning as tap.
 * - af_xdp, memif: one pair (the queue count is the NIC's / the peer's to
 *   choose); other workers transmit through the dataplane's TX fallback.
 * - pci: one pair per worker where dev_info allows, and RSS programmed with
 *   our key and a reta of i % n so a flow's hash names its worker both in
 *   hardware and in gw_port_rss_hash().
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_thash.h>

#include "port.h"

/*
 * Repeating 0x6d5a makes Toeplitz symmetric (hash(a,b) == hash(b,a)), so both
 * directions of a flow agree even if a caller swaps them; and it is the key
 * most NICs accept. 40 bytes: the common hash_key_size.
 */
/* clang-format off */
const uint8_t gw_port_rss_key[40] = {
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};
/* clang-format on */

#define GW_PORT_DEFAULT_DESC 1024
/*
 * The kernel queues frames for a tap reader in the interface's TX queue
 * (txqueuelen, 1000 by default). Many flows bursting at once overflow it
 * while the worker is between bursts, and every overflow is a TCP loss:
 * measured with 100 concurrent echo connections, 1000 dropped ~16% of
 * frames (RTO stalls, 20-40 MB/s), 10000 ~1% (77 MB/s, no RTO).
 */
#define GW_TAP_TXQLEN 10000

/*
 * af_packet: DPDK 22.11's PMD gives each queue an AF_PACKET socket of its
 * own (PACKET_MMAP rings, TPACKET_V2) bound to the interface. It offers no
 * interrupt, but poll(2) on such a socket reports it readable while the
 * newest frame in its RX ring waits for the reader, which is what the
 * worker's wait needs. With one queue the one such socket in the process
 * is the queue's; with several (PACKET_FANOUT) nothing says which socket is
 * which queue, so those wait adaptively. Fills out->rx_fd[0]; false when
 * not exactly one queue and one such socket.
 */
static bool
afp_rx_fd(const struct gw_port_params *p, struct gw_port *out)
{
	unsigned ifindex = if_nametoindex(p->device), n = 0;
	struct dirent *de;
	int found = -1;
	DIR *d;

	if (ifindex == 0 || out->n_rxq != 1 || (d = opendir("/proc/self/fd")) == NULL)
		return false;
	while ((de = readdir(d)) != NULL) {
		struct sockaddr_ll sll;
		socklen_t len = sizeof(int);
		int fd, dom, ver;
		char *end;

		fd = (int)strtol(de->d_name, &end, 10);
		if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end != '\0' || fd == dirfd(d))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &len) < 0 || dom != AF_PACKET)
			continue;
		len = sizeof(sll);
		if (getsockname(fd, (struct sockaddr *)&sll, &len) < 0 ||
			sll.sll_ifindex != (int)ifindex)
			continue;
		len = sizeof(ver);
		if (getsockopt(fd, SOL_PACKET, PACKET_VERSION, &ver, &len) < 0 || ver != TPACKET_V2)
			continue;
		found = fd;
		n++;
	}
	closedir(d);
	if (n != 1)
		return false;
	out->rx_fd[0] = found;
	return true;
}

const char *
gw_port_kind_name(enum gw_port_kind kind)
{
	switch (kind) {
	case GW_PORT_KIND_TAP:
		return "tap";
	case GW_PORT_KIND_AF_PACKET:
		return "af_packet";
	case GW_PORT_KIND_AF_XDP:
		return "af_xdp";
	case GW_PORT_KIND_MEMIF:
		return "memif";
	case GW_PORT_KIND_PCI:
		return "pci";
	}
	return "?";
}

uint32_t
gw_port_rss_hash(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport)
{
	/* rte_softrss wants host-order words laid out as struct rte_ipv4_tuple */
	struct rte_ipv4_tuple t = {
		.src_addr = rte_be_to_cpu_32(saddr),
		.dst_addr = rte_be_to_cpu_32(daddr),
		.sport = rte_be_to_cpu_16(sport),
		.dport = rte_be_to_cpu_16(dport),
	};

	return rte_softrss((uint32_t *)&t, RTE_THASH_V4_L4_LEN, gw_port_rss_key);
}

/* Device strings end up inside a devargs list: no separators, sane length. */
static int
check_device(const struct gw_port_params *p, size_t max)
{
	const char *d = p->device;

	if (d == NULL || d[0] == '\0')
		return gw_err_setf(-EINVAL, GW_HERE, "port '%s': device is empty", p->name);
	if (strlen(d) > max)
		return gw_err_setf(-EINVAL, GW_HERE, "port '%s': device '%s' is longer than %zu",
			p->name, d, max);
	if (strpbrk(d, ",= \t\n") != NULL)
		return gw_err_setf(-EINVAL, GW_HERE,
			"port '%s': device '%s' must not contain ',', '=' or spaces", p->name, d);
	return 0;
}

int
gw_port_devargs(const struct gw_port_params *p, unsigned idx, char *buf, size_t len, bool *is_pci)
{
	int n = 0;
	unsigned q = p->n_queues ? p->n_queues : 1;

	*is_pci = false;
	switch (p->kind) {
	case GW_PORT_KIND_TAP:
		GW_GUARD(check_device(p, 15)); /* IFNAMSIZ - 1 */
		n = snprintf(buf, len, "net_tap%u,iface=%s", idx, p->device);
		break;
	case GW_PORT_KIND_AF_PACKET:
		GW_GUARD(check_device(p, 15));
		n = snprintf(buf, len, "net_af_packet%u,iface=%s,qpairs=%u", idx, p->device, q);
		break;
	case GW_PORT_KIND_AF_XDP:
		GW_GUARD(check_device(p, 15));
		n = snprintf(buf, len, "net_af_xdp%u,iface=%s,start_queue=0,queue_count=1", idx,
			p->device);
		break;
	case GW_PORT_KIND_MEMIF:
		GW_GUARD(check_device(p, 200));
		if (p->device[0] != '/')
			return gw_err_setf(-EINVAL, GW_HERE,
				"port '%s': memif socket '%s' must be an absolute path", p->name,
				p->device);
		n = snprintf(buf, len, "net_memif%u,socket=%s,role=%s,id=0", idx, p->device,
			p->memif_client ? "client" : "server");
		break;
	case GW_PORT_KIND_PCI: {
		unsigned dom, bus, dev, fn;
		char tail;

		GW_GUARD(check_device(p, 32));
		if (sscanf(p->device, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) != 4 &&
			sscanf(p->device, "%x:%x.%x%c", &bus, &dev, &fn, &tail) != 3)
			return gw_err_setf(-EINVAL, GW_HERE,
				"port '%s': '%s' is not a PCI address (like 0000:01:00.0)", p->name,
				p->device);
		n = snprintf(buf, len, "%s", p->device);
		*is_pci = true;
		break;
	}
	default:
		return gw_err_setf(
			-EINVAL, GW_HERE, "port '%s': unknown driver %d", p->name, (int)p->kind);
	}
	if (n < 0 || (size_t)n >= len)
		return gw_err_set(-ENOSPC, GW_HERE);
	return 0;
}

/* Best effort: a tap works with the default queue, only worse under bursts. */
static void
tap_set_txqlen(const char *ifname, int qlen)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		return;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_qlen = qlen;
	(void)ioctl(fd, SIOCSIFTXQLEN, &ifr);
	close(fd);
}

/*
 * The kernel side of a tap: address, netmask, up (SIOCSIFADDR,
 * SIOCSIFNETMASK, SIOCSIFFLAGS: what `ip addr add` and `ip link set up`
 * do). 0 or -errno with the message.
 */
static int
tap_set_peer(const struct gw_port_params *p)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	char a[INET_ADDRSTRLEN] = "?";
	const char *step = "socket";
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	inet_ntop(AF_INET, &p->peer_ip, a, sizeof(a));
	if (fd < 0)
		goto fail;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", p->device);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = p->peer_ip;
	step = "SIOCSIFADDR";
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		goto fail;
	sin->sin_addr.s_addr =
		htonl(p->peer_prefix_len >= 32 ? UINT32_MAX : ~(UINT32_MAX >> p->peer_prefix_len));
	step = "SIOCSIFNETMASK";
	if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0)
		goto fail;
	step = "SIOCGIFFLAGS";
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		goto fail;
	ifr.ifr_flags |= IFF_UP;
	step = "SIOCSIFFLAGS";
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		goto fail;
	close(fd);
	return 0;
fail:
	rc = -errno;
	gw_err_setf(rc, GW_HERE, "port '%s': peer_address %s/%u on tap %s: %s: %s%s", p->name, a,
		p->peer_prefix_len, p->device, step, strerror(errno),
		errno == EPERM ? " (needs CAP_NET_ADMIN)" : "");
	if (fd >= 0)
		close(fd);
	return rc;
}

int
gw_port_check(const struct gw_port_params *p)
{
	switch (p->kind) {
	case GW_PORT_KIND_TAP:
		if (p->device != NULL && if_nametoindex(p->device) != 0)
			return gw_err_setf(-EEXIST, GW_HERE,
				"port '%s': interface %s already exists (another mtlsgw running, "
				"or a leftover tap?); a tap port creates its own interface",
				p->name, p->device);
		return 0;
	case GW_PORT_KIND_AF_PACKET:
	case GW_PORT_KIND_AF_XDP:
		if (p->device == NULL || if_nametoindex(p->device) == 0)
			return gw_err_setf(-ENODEV, GW_HERE,
				"port '%s': no interface named %s in this network namespace",
				p->name, p->device ? p->device : "(none)");
		return 0;
	default:
		return 0;
	}
}

static int
find_port_id(const char *devname, uint16_t *pid)
{
	char alt[300];

	if (rte_eth_dev_get_port_by_name(devname, pid) == 0)
		return 0;
	/* the PCI bus names devices with the domain: accept "01:00.0" too */
	snprintf(alt, sizeof(alt), "0000:%s", devname);
	if (rte_eth_dev_get_port_by_name(alt, pid) == 0)
		return 0;
	return -ENODEV;
}

static int
program_reta(struct gw_port *out, uint16_t reta_size)
{
	struct rte_eth_rss_reta_entry64 reta[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];
	unsigned i;

	if (reta_size == 0 || reta_size > RTE_ETH_RSS_RETA_SIZE_512)
		return -ENOTSUP;
	memset(reta, 0, sizeof(reta));
	for (i = 0; i < reta_size; i++) {
		reta[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
		reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] =
			(uint16_t)(i % out->n_rxq);
	}
	return rte_eth_dev_rss_reta_update(out->port_id, reta, reta_size);
}

int
gw_port_open(const struct gw_port_params *p, unsigned idx, struct gw_port *out)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	char devargs[256];
	uint16_t pid, nq, nb_rxd, nb_txd, q;
	uint64_t want;
	bool is_pci, configured = false;
	int rc, socket;

	memset(out, 0, sizeof(*out));
	GW_GUARD(gw_port_devargs(p, idx, devargs, sizeof(devargs), &is_pci));
	/* the workers take a frame as one mbuf: no scatter, no jumbo chains */
	if (p->mtu > GW_PORT_MAX_MTU)
		return gw_err_setf(-EINVAL, GW_HERE,
			"port '%s': mtu %u is more than this build handles (%u: one frame per "
			"%u-byte buffer)",
			p->name, p->mtu, GW_PORT_MAX_MTU, RTE_MBUF_DEFAULT_DATAROOM);
	*strchrnul(devargs, ',') = '\0';
	snprintf(out->name, sizeof(out->name), "%s", p->name);
	if (find_port_id(devargs, &pid) < 0)
		return gw_err_setf(-ENODEV, GW_HERE, "port '%s': no DPDK device %s (%s)", p->name,
			devargs,
			is_pci ? "is the NIC bound to vfio-pci and not in use?"
			       : "the EAL did not create it; see the EAL messages above");
	if (rte_eth_dev_get_name_by_port(pid, out->devname) != 0)
		snprintf(out->devname, sizeof(out->devname), "port%u", pid); /* messages only */
	out->port_id = pid;
	rc = rte_eth_dev_info_get(pid, &info);
	if (rc < 0)
		goto fail;

	nq = p->n_queues ? p->n_queues : 1;
	switch (p->kind) {
	case GW_PORT_KIND_AF_XDP:
	case GW_PORT_KIND_MEMIF:
		nq = 1;
		break;
	default:
		break;
	}
	out->n_rxq = RTE_MAX(1, RTE_MIN(nq, info.max_rx_queues));
	out->n_txq = RTE_MAX(1, RTE_MIN(nq, info.max_tx_queues));
	if (p->kind == GW_PORT_KIND_TAP || p->kind == GW_PORT_KIND_AF_PACKET) {
		/* every queue the kernel can deliver to must be polled: keep pairs */
		out->n_rxq = out->n_txq = RTE_MIN(out->n_rxq, out->n_txq);
	}

	memset(&conf, 0, sizeof(conf));
	want = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
	conf.rxmode.offloads = info.rx_offload_capa & want;
	want = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
	       RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	conf.txmode.offloads = info.tx_offload_capa & want;
	/* Hardware RSS only where we can program our key and reta (PCI NICs). */
	if (p->kind == GW_PORT_KIND_PCI && out->n_rxq > 1 &&
		(info.flow_type_rss_offloads & RTE_ETH_RSS_NONFRAG_IPV4_TCP) &&
		(info.hash_key_size == 0 || info.hash_key_size == sizeof(gw_port_rss_key)) &&
		info.reta_size > 0 && info.reta_size <= RTE_ETH_RSS_RETA_SIZE_512) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = (uint8_t *)(uintptr_t)gw_port_rss_key;
		conf.rx_adv_conf.rss_conf.rss_key_len = sizeof(gw_port_rss_key);
		conf.rx_adv_conf.rss_conf.rss_hf =
			info.flow_type_rss_offloads &
			(RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_IPV4);
		out->rss = true;
	}
	if (p->mtu)
		conf.rxmode.mtu = p->mtu;
	/* af_packet, af_xdp and memif have no RX interrupts in DPDK 22.11
	 * (measured): not asked of them, so nothing of theirs changes
	 * (one af_packet queue's socket serves instead: afp_rx_fd) */
	conf.intr_conf.rxq =
		p->rx_intr && (p->kind == GW_PORT_KIND_TAP || p->kind == GW_PORT_KIND_PCI);

	rc = rte_eth_dev_configure(pid, out->n_rxq, out->n_txq, &conf);
	if (rc < 0 && conf.intr_conf.rxq) {
		/* a driver that refuses RX interrupts: the workers sleep adaptively */
		conf.intr_conf.rxq = 0;
		rc = rte_eth_dev_configure(pid, out->n_rxq, out->n_txq, &conf);
	}
	if (rc < 0)
		goto fail;
	configured = true;
	nb_rxd = p->nb_rxd ? p->nb_rxd : GW_PORT_DEFAULT_DESC;
	nb_txd = p->nb_txd ? p->nb_txd : GW_PORT_DEFAULT_DESC;
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(pid, &nb_rxd, &nb_txd);
	if (rc < 0)
		goto fail;
	socket = rte_eth_dev_socket_id(pid);
	if (socket < 0)
		socket = (int)rte_socket_id();
	for (q = 0; q < out->n_rxq; q++) {
		struct rte_eth_rxconf rxc = info.default_rxconf;

		rxc.offloads = conf.rxmode.offloads;
		rc = rte_eth_rx_queue_setup(pid, q, nb_rxd, (unsigned)socket, &rxc, p->pool);
		if (rc < 0)
			goto fail;
	}
	for (q = 0; q < out->n_txq; q++) {
		struct rte_eth_txconf txc = info.default_txconf;

		txc.offloads = conf.txmode.offloads;
		rc = rte_eth_tx_queue_setup(pid, q, nb_txd, (unsigned)socket, &txc);
		if (rc < 0)
			goto fail;
	}
	if (p->mtu) {
		rc = rte_eth_dev_set_mtu(pid, p->mtu);
		if (rc < 0)
			goto fail;
	}
	rc = rte_eth_dev_start(pid);
	if (rc < 0)
		goto fail;
	out->started = true;
	if (p->kind == GW_PORT_KIND_TAP)
		tap_set_txqlen(p->device, GW_TAP_TXQLEN);
	if (p->peer_ip != 0 && p->kind != GW_PORT_KIND_TAP) {
		rc = gw_err_setf(-EINVAL, GW_HERE,
			"port '%s': a peer address applies to tap ports only", p->name);
		goto fail_set;
	}
	if (p->peer_ip != 0 && (rc = tap_set_peer(p)) < 0)
		goto fail_set;
	if (out->rss) {
		rc = program_reta(out, info.reta_size);
		if (rc < 0) {
			/* RSS on but reta not ours: software dispatch still works */
			out->rss = false;
		}
	}
	out->reta_size = out->rss ? info.reta_size : GW_PORT_SW_RETA;
	out->rx_ip_cksum = conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
	out->rx_tcp_cksum = conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
	out->tx_ip_cksum = conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	out->tx_tcp_cksum = conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	if (rte_eth_dev_get_mtu(pid, &out->mtu) < 0)
		out->mtu = RTE_ETHER_MTU;
	out->rx_intr = conf.intr_conf.rxq;
	if (out->rx_intr) {
		/* a NIC without them: ethdev logs "Rx Intr handle unset" as an
		 * error, where the dataplane's warning says what it means */
		int lt = rte_log_register("lib.ethdev"), lvl = rte_log_get_level(lt);

		if (lt >= 0)
			rte_log_set_level(lt, RTE_LOG_CRIT);
		for (q = 0; q < out->n_rxq && out->rx_intr; q++) {
			int fd = rte_eth_dev_rx_intr_ctl_q_get_fd(pid, q);

			out->rx_intr = fd >= 0;
			if (q < GW_PORT_MAX_LEVEL_QUEUES) /* a tap's, used when level */
				out->rx_fd[q] = fd;
		}
		if (lt >= 0 && lvl >= 0)
			rte_log_set_level(lt, (uint32_t)lvl);
	}
	out->rx_intr_level = out->rx_intr && p->kind == GW_PORT_KIND_TAP &&
			     out->n_rxq <= GW_PORT_MAX_LEVEL_QUEUES;
	if (p->rx_intr && p->kind == GW_PORT_KIND_AF_PACKET)
		out->rx_intr = out->rx_intr_level = afp_rx_fd(p, out);
	/* the MAC is what ARP answers with: a port without one cannot work */
	rc = rte_eth_macaddr_get(pid, &out->mac);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	gw_err_setf(rc, GW_HERE, "port '%s' (%s, %s %s): %s", p->name, out->devname,
		gw_port_kind_name(p->kind), p->device, rte_strerror(-rc));
fail_set: /* the message is set */
	if (out->started)
		rte_eth_dev_stop(pid);
	if (configured || p->kind != GW_PORT_KIND_PCI)
		rte_eth_dev_close(pid);
	out->started = false;
	return rc;
}

void
gw_port_close(struct gw_port *port)
{
	if (port == NULL || port->devname[0] == '\0')
		return;
	if (port->started)
		rte_eth_dev_stop(port->port_id);
	rte_eth_dev_close(port->port_id);
	port->started = false;
	port->devname[0] = '\0';
}
