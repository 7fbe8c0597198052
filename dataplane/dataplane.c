/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dataplane.c - control's side of the dataplane: EAL argv from the params
 * (operators never write EAL options), mbuf pool, ports, rings, launching
 * and stopping the workers, and reading their counters.
 *
 * Runs on the main lcore only. Workers get a read-only struct gw_dp and their
 * own struct gw_lcore; the only thing control writes while they run is the
 * stop flag.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dp_log.h"
#include "gw_cpus.h"
#include "gw_log.h"
#include "net_internal.h"

GW_DP_LOG_REGISTER(dp);

#define GW_EAL_MAX_ARGS 64
#define GW_EAL_ARGBUF 4096
#define GW_START_TIMEOUT_MS 15000

struct eal_argv {
	char *argv[GW_EAL_MAX_ARGS];
	int argc;
	char buf[GW_EAL_ARGBUF];
	size_t used;
};

static int eal_add(struct eal_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
eal_add(struct eal_argv *a, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (a->argc >= GW_EAL_MAX_ARGS - 1)
		return gw_err_set(-ENOSPC, GW_HERE);
	va_start(ap, fmt);
	n = vsnprintf(a->buf + a->used, sizeof(a->buf) - a->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(a->buf) - a->used)
		return gw_err_set(-ENOSPC, GW_HERE);
	a->argv[a->argc++] = a->buf + a->used;
	a->argv[a->argc] = NULL;
	a->used += (size_t)n + 1;
	return 0;
}

/* The CPUs we may run on, in increasing order (see lcore_cpus). */
static int
allowed_cpus(int *cpus, int max)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 0;
	return gw_cpus_of_set(&set, cpus, max);
}

/*
 * Where lcore id runs, as --lcores writes it after '@' (see gw_dp_params):
 * an id that is an allowed CPU runs on that CPU; any other id on the
 * (id mod n)-th allowed CPU, so workers wrap round-robin over the CPUs when
 * there are more lcores than CPUs. The main lcore only sleeps in control:
 * when its id is not an allowed CPU it floats on all of them, "(0,1)".
 */
static int
lcore_cpus(unsigned id, bool is_main, const int *cpus, int ncpu, char *buf, size_t len)
{
	int i, n;

	for (i = 0; i < ncpu; i++)
		if ((unsigned)cpus[i] == id)
			return snprintf(buf, len, "%d", cpus[i]);
	if (!is_main || ncpu == 1)
		return snprintf(buf, len, "%d", cpus[id % (unsigned)ncpu]);
	if (len < 3)
		return (int)len;
	buf[0] = '(';
	n = gw_cpus_ranges(cpus, ncpu, buf + 1, len - 1);
	if ((size_t)n + 1 >= len - 1)
		return (int)len;
	return n + 1 + snprintf(buf + 1 + n, len - 1 - (size_t)n, ")");
}

static int
build_eal(const struct gw_dp_params *p, const char *prog, struct eal_argv *a)
{
	int cpus[CPU_SETSIZE], ncpu;
	char lcores[2048];
	size_t off = 0;
	unsigned i, j;
	bool pci = false;

	GW_ENSURE(p->n_workers >= 1 && p->n_workers <= GW_DP_MAX_WORKERS, -EINVAL);
	GW_ENSURE(p->n_ports >= 1 && p->n_ports <= GW_DP_MAX_PORTS, -EINVAL);
	ncpu = allowed_cpus(cpus, CPU_SETSIZE);
	if (ncpu <= 0) {
		cpus[0] = 0;
		ncpu = 1;
	}
	for (i = 0; i < p->n_workers; i++) {
		if (p->workers[i] == p->main_lcore || p->workers[i] >= RTE_MAX_LCORE)
			return gw_err_setf(-EINVAL, GW_HERE,
				"worker lcore %u: must differ from the main lcore (%u) and be < %d",
				p->workers[i], p->main_lcore, RTE_MAX_LCORE);
		for (j = 0; j < i; j++)
			if (p->workers[j] == p->workers[i])
				return gw_err_setf(-EINVAL, GW_HERE, "worker lcore %u listed twice",
					p->workers[i]);
	}
	for (i = 0; i <= p->n_workers && off < sizeof(lcores); i++) {
		unsigned id = i == 0 ? p->main_lcore : p->workers[i - 1];
		char at[1024];

		if ((size_t)lcore_cpus(id, i == 0, cpus, ncpu, at, sizeof(at)) >= sizeof(at))
			return gw_err_set(-ENOSPC, GW_HERE);
		off += (size_t)snprintf(
			lcores + off, sizeof(lcores) - off, "%s%u@%s", i ? "," : "", id, at);
	}
	if (off >= sizeof(lcores))
		return gw_err_set(-ENOSPC, GW_HERE);

	GW_GUARD(eal_add(a, "%s", prog));
	GW_GUARD(eal_add(a, "--lcores=%s", lcores));
	GW_GUARD(eal_add(a, "--main-lcore=%u", p->main_lcore));
	GW_GUARD(eal_add(a, "-m"));
	GW_GUARD(eal_add(a, "%u", p->memory_mb ? p->memory_mb : 512));
	if (p->no_huge) {
		/* no hugepages, and no shared runtime files (--in-memory is refused
		 * with --no-huge's legacy memory): parallel tests and the demo never
		 * collide on a file prefix */
		GW_GUARD(eal_add(a, "--no-huge"));
		GW_GUARD(eal_add(a, "--no-shconf"));
	}
	GW_GUARD(eal_add(a, "--file-prefix=%s", p->file_prefix ? p->file_prefix : "mtlsgw"));
	GW_GUARD(eal_add(a, "--no-telemetry"));
	for (i = 0; i < p->n_ports; i++) {
		char dev[256];
		bool is_pci;

		GW_GUARD(gw_port_devargs(&p->ports[i].dev, i, dev, sizeof(dev), &is_pci));
		if (is_pci) {
			pci = true;
			GW_GUARD(eal_add(a, "-a"));
		} else {
			GW_GUARD(eal_add(a, "--vdev"));
		}
		GW_GUARD(eal_add(a, "%s", dev));
	}
	if (!pci)
		GW_GUARD(eal_add(a, "--no-pci"));
	/* The EAL matches saved patterns newest first at driver registration:
	 * specific levels must come before the "*" default. */
	if (p->verbose) {
		GW_GUARD(eal_add(a, "--log-level=gw.*:debug"));
	} else {
		/* net_tap reports its optional rte_flow/multiq setup and the absent
		 * secondary processes as errors; our own port line says what the
		 * port really got (--verbose shows them) */
		GW_GUARD(eal_add(a, "--log-level=pmd.net.tap:critical"));
	}
	GW_GUARD(eal_add(a, "--log-level=%s", p->verbose ? "*:info" : "*:notice"));
	return 0;
}

int
gw_dp_eal_cmdline(const struct gw_dp_params *p, const char *prog, char *buf, size_t len)
{
	struct eal_argv *a = calloc(1, sizeof(*a));
	size_t off = 0;
	int i, rc;

	if (a == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	rc = build_eal(p, prog, a);
	if (rc < 0)
		goto out;
	if (len)
		buf[0] = '\0';
	for (i = 0; i < a->argc; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? " " : "", a->argv[i]);

		if (n < 0 || (size_t)n >= len - off) {
			rc = gw_err_set(-ENOSPC, GW_HERE);
			goto out;
		}
		off += (size_t)n;
	}
out:
	free(a);
	return rc;
}

/*
 * DPDK's log stream (the EAL's, every PMD's, our gw.* types) goes where
 * control's records go (stderr), each line with its priority for the
 * journal (gw_log_lines). DPDK 22.11's own stream on Linux writes each
 * message to stderr and to syslog, which under systemd put every line in
 * the journal twice, once without its priority. Line buffered: each line
 * leaves under the stream's lock with its own thread's level.
 */
static ssize_t
eal_log_write(void *cookie, const char *buf, size_t size)
{
	(void)cookie;
	/* RTE_LOG_EMERG is 1: syslog's priorities start at 0 */
	gw_log_lines((int)rte_log_cur_msg_loglevel() - 1, buf, size);
	return (ssize_t)size;
}

static int
eal_log_stream(void)
{
	static FILE *f; /* for the life of the process: rte_log may run until exit */

	if (f == NULL) {
		f = fopencookie(NULL, "w", (cookie_io_functions_t){.write = eal_log_write});
		if (f == NULL)
			return gw_err_setf(-errno, GW_HERE, "DPDK log stream: %s", strerror(errno));
		setvbuf(f, NULL, _IOLBF, BUFSIZ);
	}
	return rte_openlog_stream(f) == 0 ? 0 : gw_err_setf(-EIO, GW_HERE, "DPDK log stream");
}

/* the affinity the process had before rte_eal_init (gw_dp_spare_cpus) */
static cpu_set_t start_cpus;
static bool have_start_cpus;

int
gw_dp_spare_cpus(cpu_set_t *set, cpu_set_t *allowed)
{
	cpu_set_t all;
	unsigned id;

	CPU_ZERO(&all);
	if (have_start_cpus)
		all = start_cpus;
	else
		(void)sched_getaffinity(0, sizeof(all), &all);
	*set = all;
	RTE_LCORE_FOREACH_WORKER(id)
	{
		rte_cpuset_t w = rte_lcore_cpuset(id);

		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &w))
				CPU_CLR(c, set);
	}
	if (CPU_COUNT(set) == 0)
		*set = all;
	if (allowed != NULL)
		*allowed = all;
	return CPU_COUNT(set);
}

int
gw_dp_eal_init(const struct gw_dp_params *p, const char *prog)
{
	struct eal_argv *a = calloc(1, sizeof(*a));
	int rc;

	if (a == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	rc = build_eal(p, prog, a);
	if (rc < 0)
		goto out;
	for (unsigned i = 0; i < p->n_ports; i++) {
		rc = gw_port_check(&p->ports[i].dev);
		if (rc < 0)
			goto out;
	}
	rc = eal_log_stream();
	if (rc < 0)
		goto out;
	if (p->verbose) {
		char line[GW_EAL_ARGBUF];

		if (gw_dp_eal_cmdline(p, prog, line, sizeof(line)) == 0)
			GW_DP_LOG(NOTICE, dp, "EAL: %s", line);
	}
	/* rte_eal_init permutes argv: it gets its own copy of the pointers */
	{
		char *argv[GW_EAL_MAX_ARGS];

		memcpy(argv, a->argv, sizeof(argv));
		have_start_cpus = sched_getaffinity(0, sizeof(start_cpus), &start_cpus) == 0;
		rc = rte_eal_init(a->argc, argv);
	}
	if (rc < 0) {
		rc = -rte_errno;
		gw_err_setf(rc ? rc : -EINVAL, GW_HERE,
			"DPDK EAL init failed: %s (see the EAL messages above; run with "
			"--verbose to see the EAL options)",
			rte_strerror(rte_errno));
		rc = rc ? rc : -EINVAL;
		goto out;
	}
	rc = 0;
out:
	free(a);
	return rc;
}

void
gw_dp_eal_cleanup(void)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	(void)rmdir(dir); /* fails, harmlessly, while anything is left in it */
}

static void
drain_ring(struct rte_ring *r)
{
	void *objs[GW_BURST];
	unsigned n;

	if (r == NULL)
		return;
	while ((n = rte_ring_dequeue_burst(r, objs, GW_BURST, NULL)) > 0)
		rte_pktmbuf_free_bulk((struct rte_mbuf **)objs, n);
}

void
gw_dp_stop_workers(struct gw_dp *dp)
{
	unsigned i;

	atomic_store(&dp->stop, true);
	for (i = 0; i < dp->n_workers && dp->lcores != NULL; i++) /* idle: interrupt */
		gw_worker_wake(&dp->lcores[i]);
	rte_eal_mp_wait_lcore();
}

void
gw_dp_stop(struct gw_dp *dp)
{
	unsigned i;

	if (dp == NULL)
		return;
	gw_dp_stop_workers(dp);
	for (i = 0; i < dp->n_workers && dp->lcores != NULL; i++) {
		gw_worker_wait_fini(&dp->lcores[i]); /* before its ports close */
		drain_ring(dp->lcores[i].ring);
		rte_ring_free(dp->lcores[i].ring);
	}
	for (i = 0; i < dp->n_ports; i++) {
		drain_ring(dp->ports[i].txring);
		rte_ring_free(dp->ports[i].txring);
		gw_port_close(&dp->ports[i].dev);
	}
	rte_mempool_free(dp->pool);
	rte_free(dp->lcores);
	rte_free(dp);
}

static unsigned
pool_size(const struct gw_dp_params *p)
{
	uint64_t mem = (uint64_t)(p->memory_mb ? p->memory_mb : 512) << 20;
	uint64_t per = RTE_MBUF_DEFAULT_BUF_SIZE + sizeof(struct rte_mbuf) + RTE_CACHE_LINE_SIZE;

	if (p->n_mbufs)
		return p->n_mbufs;
	/* half the EAL memory: the rest is the TCP stacks' pools, hashes, rings */
	return (unsigned)RTE_MAX((uint64_t)8192, RTE_MIN(mem / 2 / per, (uint64_t)1 << 20));
}

static int
setup_ports(struct gw_dp *dp, const struct gw_dp_params *p)
{
	unsigned i;
	char name[RTE_RING_NAMESIZE];

	dp->tx_cksum_offload = true;
	dp->mtu = UINT16_MAX;
	for (i = 0; i < p->n_ports; i++) {
		struct gw_dp_port_rt *pr = &dp->ports[i];
		struct gw_port_params pp = p->ports[i].dev;

		pp.pool = dp->pool;
		pp.n_queues = (uint16_t)p->n_workers;
		pp.rx_intr = p->idle == GW_DP_IDLE_INTERRUPT;
		GW_GUARD(gw_port_open(&pp, i, &pr->dev));
		dp->n_ports = i + 1;
		dp->port_idx[pr->dev.port_id] = (int16_t)i;
		pr->ip = p->ports[i].ip;
		pr->mask = p->ports[i].prefix_len
				   ? rte_cpu_to_be_32(~0u << (32 - p->ports[i].prefix_len))
				   : 0;
		pr->gateway = p->ports[i].gateway;
		if (!pr->dev.tx_ip_cksum || !pr->dev.tx_tcp_cksum)
			dp->tx_cksum_offload = false;
		dp->mtu = RTE_MIN(dp->mtu, pr->dev.mtu);
		if (pr->dev.n_txq < p->n_workers) {
			snprintf(name, sizeof(name), "gw_txr%u", i);
			pr->txring = rte_ring_create(
				name, GW_TXRING_SIZE, (int)rte_socket_id(), RING_F_SC_DEQ);
			if (pr->txring == NULL)
				return gw_err_setf(-ENOMEM, GW_HERE, "port '%s': TX ring: %s",
					pr->dev.name, rte_strerror(rte_errno));
		}
		GW_DP_LOG(NOTICE, dp,
			"port '%s' %s %s: %u rxq %u txq, %s, rx cksum %s, tx cksum %s, "
			"mtu %u, mac " RTE_ETHER_ADDR_PRT_FMT,
			pr->dev.name, gw_port_kind_name(p->ports[i].dev.kind), pr->dev.devname,
			pr->dev.n_rxq, pr->dev.n_txq,
			pr->dev.rss        ? "hardware RSS"
			: p->n_workers > 1 ? "software RSS dispatch"
					   : "one worker",
			pr->dev.rx_ip_cksum && pr->dev.rx_tcp_cksum ? "offload" : "software",
			pr->dev.tx_ip_cksum && pr->dev.tx_tcp_cksum ? "offload" : "software",
			pr->dev.mtu, RTE_ETHER_ADDR_BYTES(&pr->dev.mac));
	}
	return 0;
}

static void
setup_lcore(struct gw_dp *dp, const struct gw_dp_params *p, unsigned w)
{
	struct gw_lcore *lc = &dp->lcores[w];
	unsigned i;

	lc->dp = dp;
	lc->idx = (uint16_t)w;
	lc->lcore_id = p->workers[w];
	lc->idle_poll = p->idle == GW_DP_IDLE_POLL;
	lc->sleep_us = 10;
	for (i = 0; i < dp->n_ports; i++) {
		const struct gw_dp_port_rt *pr = &dp->ports[i];

		if (w < pr->dev.n_rxq) {
			struct gw_rxq *q = &lc->rxq[lc->n_rxq++];

			q->port_id = pr->dev.port_id;
			q->port_idx = (uint16_t)i;
			q->queue = (uint16_t)w;
			q->dispatch = !pr->dev.rss && dp->n_workers > 1;
		}
		if (w < pr->dev.n_txq) {
			lc->tx[i].queue = (uint16_t)w;
		} else {
			lc->tx[i].via_ring = true;
		}
		lc->tx[i].drains_ring = w == 0 && pr->txring != NULL;
	}
}

int
gw_dp_start(const struct gw_dp_params *p, struct gw_dp **out)
{
	struct gw_dp *dp;
	unsigned i, w;
	uint64_t deadline;
	int rc = 0;

	GW_ENSURE(p->n_workers >= 1 && p->n_workers <= GW_DP_MAX_WORKERS, -EINVAL);
	GW_ENSURE(p->n_ports >= 1 && p->n_ports <= GW_DP_MAX_PORTS, -EINVAL);
	dp = rte_zmalloc("gw_dp", sizeof(*dp), RTE_CACHE_LINE_SIZE);
	if (dp == NULL)
		return gw_err_setf(-ENOMEM, GW_HERE, "dataplane: out of EAL memory (memory_mb)");
	for (i = 0; i < RTE_MAX_ETHPORTS; i++)
		dp->port_idx[i] = -1;
	dp->params = p;
	dp->n_workers = p->n_workers;
	dp->tsc_hz = rte_get_tsc_hz();
	atomic_init(&dp->stop, false);
	dp->pool = rte_pktmbuf_pool_create(
		"gw_mbufs", pool_size(p), 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (dp->pool == NULL) {
		rc = gw_err_setf(-ENOMEM, GW_HERE,
			"dataplane: cannot create a pool of %u mbufs: %s (raise memory_mb)",
			pool_size(p), rte_strerror(rte_errno));
		goto fail;
	}
	dp->lcores =
		rte_zmalloc("gw_lcores", sizeof(*dp->lcores) * p->n_workers, RTE_CACHE_LINE_SIZE);
	if (dp->lcores == NULL) {
		rc = gw_err_setf(-ENOMEM, GW_HERE, "dataplane: out of EAL memory (memory_mb)");
		goto fail;
	}
	for (w = 0; w < p->n_workers; w++) /* no fds yet: gw_dp_stop closes none */
		dp->lcores[w].epfd = dp->lcores[w].wake_fd = dp->lcores[w].hook_fd = -1;
	rc = setup_ports(dp, p);
	if (rc < 0)
		goto fail;
	for (w = 0; w < p->n_workers; w++) {
		setup_lcore(dp, p, w);
		if (p->n_workers > 1) {
			char name[RTE_RING_NAMESIZE];

			snprintf(name, sizeof(name), "gw_rx%u", w);
			dp->lcores[w].ring = rte_ring_create(
				name, GW_RING_SIZE, (int)rte_socket_id(), RING_F_SC_DEQ);
			if (dp->lcores[w].ring == NULL) {
				rc = gw_err_setf(-ENOMEM, GW_HERE, "worker %u ring: %s", w,
					rte_strerror(rte_errno));
				goto fail;
			}
		}
	}
	for (i = 0; i < dp->n_ports && p->idle == GW_DP_IDLE_INTERRUPT; i++)
		if (!dp->ports[i].dev.rx_intr)
			GW_DP_LOG(WARNING, dp,
				"port '%s' (%s) has no RX interrupts: the workers polling it "
				"sleep adaptively instead of idle: interrupt",
				dp->ports[i].dev.name, gw_port_kind_name(p->ports[i].dev.kind));
	if (p->idle == GW_DP_IDLE_INTERRUPT) {
		unsigned n_intr = 0;

		for (w = 0; w < p->n_workers; w++) {
			rc = gw_worker_wait_init(&dp->lcores[w]);
			if (rc < 0)
				goto fail;
			n_intr += dp->lcores[w].intr;
		}
		GW_DP_LOG(NOTICE, dp, "idle: interrupt: %u of %u workers wait for RX interrupts",
			n_intr, p->n_workers);
	}
	for (w = 0; w < p->n_workers; w++) {
		if (rte_lcore_is_enabled(p->workers[w]) == 0) {
			rc = gw_err_setf(
				-EINVAL, GW_HERE, "worker lcore %u is not enabled", p->workers[w]);
			goto fail;
		}
		rc = rte_eal_remote_launch(gw_worker_main, &dp->lcores[w], p->workers[w]);
		if (rc < 0) {
			rc = gw_err_setf(rc, GW_HERE, "cannot launch worker on lcore %u: %s",
				p->workers[w], rte_strerror(-rc));
			goto fail;
		}
	}
	deadline = rte_get_timer_cycles() + rte_get_timer_hz() * GW_START_TIMEOUT_MS / 1000;
	for (w = 0; w < p->n_workers;) {
		int r = atomic_load(&dp->lcores[w].ready);

		if (r < 0) {
			rc = gw_err_setf(r, GW_HERE, "%s", dp->lcores[w].err);
			goto fail;
		}
		if (r > 0) {
			w++;
			continue;
		}
		if (rte_get_timer_cycles() > deadline) {
			rc = gw_err_setf(-ETIMEDOUT, GW_HERE, "worker %u did not start", w);
			goto fail;
		}
		rte_delay_us_sleep(1000);
	}
	*out = dp;
	return 0;
fail : {
	/* keep the first cause: stopping may overwrite the error slot */
	struct gw_err saved = *gw_err_get();

	gw_dp_stop(dp);
	*gw_err_get() = saved;
}
	return rc;
}
