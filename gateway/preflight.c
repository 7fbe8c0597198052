/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * preflight.c - `mtlsgw --check` (preflight.h): the config loader, sysfs
 * and the hsm module's API, each asked what a start would ask, and every
 * answer written as one line an operator can act on. Nothing here starts
 * the EAL or touches a port: a box that is not ready yet (no hugepages, a
 * NIC still on its kernel driver) is exactly where it must run.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca.h"
#include "config.h"
#include "etcd.h"
#include "gw_cpus.h"
#include "gw_x509.h"
#include "host.h"
#include "hsm.h"
#include "preflight.h"
#include "state.h"

#define MAX_RESULTS 512
#define MAX_TOKENS 8  /* distinct token labels one config names, as config_keys.c */
#define WARN_DAYS 30  /* a certificate closer to its end than this is a warning */
#define MAX_CPUS 1024 /* CPUs a cpulist may name */
_Static_assert(MAX_CPUS <= CPU_SETSIZE, "a cpulist's CPUs fit a cpu_set_t");
#define DETAIL_MAX 512

struct result {
	char *check;
	char *detail;
	enum gw_preflight_status status;
};

struct pf {
	const struct gw_preflight_params *p;
	const char *sys; /* sysfs root */
	struct result res[MAX_RESULTS];
	unsigned n;
	unsigned dropped; /* past MAX_RESULTS: counted, never silent */
};

static void add(struct pf *f, enum gw_preflight_status st, const char *check, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
add(struct pf *f, enum gw_preflight_status st, const char *check, const char *fmt, ...)
{
	char detail[DETAIL_MAX];
	struct result *r;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	/* a detail is one line: the loader's and OpenSSL's texts are already */
	for (char *c = detail; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	if (f->n == MAX_RESULTS) {
		f->dropped++;
		return;
	}
	r = &f->res[f->n];
	r->check = strdup(check);
	r->detail = strdup(detail);
	if (!r->check || !r->detail) {
		free(r->check);
		free(r->detail);
		f->dropped++;
		return;
	}
	r->status = st;
	f->n++;
}

/* ---- files under sysfs ---- */

/* ROOT/rel into buf; false if it does not fit. */
static bool
sys_path(const struct pf *f, char *buf, size_t len, const char *rel)
{
	int n = snprintf(buf, len, "%s/%s", f->sys, rel);

	return n > 0 && (size_t)n < len;
}

/* The first line of a small file, without its newline; false if unreadable. */
static bool
read_line(const char *path, char *buf, size_t len)
{
	FILE *fp = fopen(path, "re");
	bool ok;

	if (!fp)
		return false;
	ok = fgets(buf, (int)len, fp) != NULL;
	fclose(fp);
	if (!ok)
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return true;
}

/* "0-3,8,10-11" into set (bits up to MAX_CPUS); an empty string is no CPU. */
static void
cpulist_parse(const char *s, bool set[MAX_CPUS])
{
	memset(set, 0, MAX_CPUS * sizeof(set[0]));
	while (*s) {
		char *end;
		long a = strtol(s, &end, 10), b = a;

		if (end == s)
			return;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		for (long i = a; i <= b && i >= 0 && i < MAX_CPUS; i++)
			set[i] = true;
		s = *end == ',' ? end + 1 : end;
		if (*end != ',' && *end != '\0')
			return;
	}
}

/* ---- config ---- */

static struct gw_cfg *
check_config(struct pf *f)
{
	struct gw_cfg *cfg = NULL;
	char *errs = NULL, *line, *save = NULL;
	size_t errs_len = 0;
	FILE *mem = open_memstream(&errs, &errs_len);
	int rc = gw_cfg_load(f->p->config, &cfg, mem);

	if (mem)
		fclose(mem);
	if (rc == 0) {
		add(f, GW_PREFLIGHT_OK, "config",
			"%s: valid (%u listener%s, %u port%s, %u worker%s)", f->p->config,
			cfg->n_listeners, cfg->n_listeners == 1 ? "" : "s", cfg->dataplane.n_ports,
			cfg->dataplane.n_ports == 1 ? "" : "s", cfg->dataplane.n_workers,
			cfg->dataplane.n_workers == 1 ? "" : "s");
		for (unsigned i = 0; i < cfg->n_warnings; i++)
			add(f, GW_PREFLIGHT_WARN, "config", "%s", cfg->warnings[i]);
	} else if (errs && errs[0]) {
		for (line = strtok_r(errs, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			add(f, GW_PREFLIGHT_FAIL, "config", "%s", line);
	} else {
		add(f, GW_PREFLIGHT_FAIL, "config", "%s", gw_err_msg());
	}
	free(errs);
	return cfg;
}

/* ---- hugepages ---- */

static void
check_hugepages(struct pf *f, const struct gw_cfg *cfg)
{
	char path[PATH_MAX], sizes[256] = "", nodes[256] = "", mnt[PATH_MAX];
	unsigned long long total_kb = 0, free_kb = 0;
	unsigned want_mb = cfg->dataplane.memory_mb;
	struct dirent *e;
	DIR *d;

	if (cfg->dataplane.no_huge) {
		add(f, GW_PREFLIGHT_OK, "hugepages",
			"not needed (dataplane.no_huge: true; not for production)");
		return;
	}
	if (!sys_path(f, path, sizeof(path), "kernel/mm/hugepages") || !(d = opendir(path))) {
		add(f, GW_PREFLIGHT_FAIL, "hugepages",
			"%s: cannot read (%s): this kernel has no hugepage support", path,
			strerror(errno));
		return;
	}
	while ((e = readdir(d)) != NULL) {
		unsigned long kb;
		long nr, fr;
		char sub[PATH_MAX + 300];
		size_t l = strlen(sizes);

		if (sscanf(e->d_name, "hugepages-%lukB", &kb) != 1)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s/nr_hugepages", path, e->d_name);
		nr = gw_host_read_long(sub, 0);
		snprintf(sub, sizeof(sub), "%s/%s/free_hugepages", path, e->d_name);
		fr = gw_host_read_long(sub, 0);
		total_kb += (unsigned long long)nr * kb;
		free_kb += (unsigned long long)fr * kb;
		if (nr > 0)
			snprintf(sizes + l, sizeof(sizes) - l, "%s%ld x %lukB (%ld free)",
				l ? ", " : "", nr, kb, fr);
	}
	closedir(d);
	/* which NUMA node holds them: DPDK allocates a port's memory on its node */
	if (sys_path(f, path, sizeof(path), "devices/system/node") && (d = opendir(path))) {
		while ((e = readdir(d)) != NULL) {
			unsigned node, kb;
			unsigned long long node_kb = 0;
			char sub[PATH_MAX + 300];
			struct dirent *h;
			DIR *hd;
			size_t l = strlen(nodes);

			if (sscanf(e->d_name, "node%u", &node) != 1)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s/hugepages", path, e->d_name);
			if (!(hd = opendir(sub)))
				continue;
			while ((h = readdir(hd)) != NULL) {
				char nr[PATH_MAX + 600];

				if (sscanf(h->d_name, "hugepages-%ukB", &kb) != 1)
					continue;
				snprintf(nr, sizeof(nr), "%s/%s/nr_hugepages", sub, h->d_name);
				node_kb += (unsigned long long)gw_host_read_long(nr, 0) * kb;
			}
			closedir(hd);
			snprintf(nodes + l, sizeof(nodes) - l, "%snode %u: %llu MB", l ? ", " : "",
				node, node_kb / 1024);
		}
		closedir(d);
	}
	if (total_kb == 0) {
		add(f, GW_PREFLIGHT_FAIL, "hugepages",
			"none reserved; dataplane.memory_mb is %u: mtlsgw-ctl setup hugepages --mb "
			"%u",
			want_mb, want_mb);
		return;
	}
	if (free_kb / 1024 < want_mb)
		add(f, GW_PREFLIGHT_FAIL, "hugepages",
			"%llu MB free of %llu MB reserved (%s; %s), dataplane.memory_mb needs %u: "
			"mtlsgw-ctl setup hugepages --mb %llu",
			free_kb / 1024, total_kb / 1024, sizes, nodes[0] ? nodes : "no NUMA info",
			want_mb, total_kb / 1024 + (want_mb - free_kb / 1024));
	else
		add(f, GW_PREFLIGHT_OK, "hugepages",
			"%llu MB reserved, %llu MB free (%s; %s); "
			"dataplane.memory_mb needs %u",
			total_kb / 1024, free_kb / 1024, sizes, nodes[0] ? nodes : "no NUMA info",
			want_mb);
	if (gw_host_hugetlbfs(mnt, sizeof(mnt)))
		add(f, GW_PREFLIGHT_OK, "hugetlbfs", "mounted on %s", mnt);
	else
		add(f, GW_PREFLIGHT_FAIL, "hugetlbfs",
			"not mounted: mtlsgw-ctl setup hugepages mounts it (dpdk-hugepages.py "
			"--mount)");
}

/* ---- ports, IOMMU ---- */

/* "03:00.0" -> "0000:03:00.0"; the full form stays. */
static void
pci_full(const char *dev, char *buf, size_t len)
{
	/* the loader checked the form: [DDDD:]BB:DD.F; sysfs spells it in lower case */
	snprintf(buf, len, "%s%s", strlen(dev) == 7 ? "0000:" : "", dev);
	for (char *c = buf; *c; c++)
		*c = (char)tolower((unsigned char)*c);
}

static const char *const port_drv_name[] = {
	[GW_PORT_TAP] = "tap",
	[GW_PORT_AF_PACKET] = "af_packet",
	[GW_PORT_AF_XDP] = "af_xdp",
	[GW_PORT_MEMIF] = "memif",
	[GW_PORT_PCI] = "pci",
};

/* Returns true when the port is a PCI device bound to vfio-pci. */
static bool
check_port(struct pf *f, const struct gw_cfg_port *port)
{
	char check[96], addr[64], path[PATH_MAX], drv[64], rel[128];
	long node;

	snprintf(check, sizeof(check), "port %s", port->name);
	if (port->driver != GW_PORT_PCI) {
		add(f, GW_PREFLIGHT_OK, check,
			"%s %s: a kernel or shared-memory device, nothing to bind",
			port_drv_name[port->driver], port->device);
		return false;
	}
	pci_full(port->device, addr, sizeof(addr));
	snprintf(rel, sizeof(rel), "bus/pci/devices/%s", addr);
	if (!sys_path(f, path, sizeof(path), rel) || access(path, F_OK) != 0) {
		add(f, GW_PREFLIGHT_FAIL, check,
			"no PCI device %s on this box (%s missing; `lspci -D` lists the devices)",
			addr, path);
		return false;
	}
	if (!gw_host_pci_driver(path, drv, sizeof(drv))) {
		add(f, GW_PREFLIGHT_FAIL, check,
			"PCI %s is bound to no driver: mtlsgw-ctl setup nic %s", addr, addr);
		return false;
	}
	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/numa_node", addr);
	node = sys_path(f, path, sizeof(path), rel) ? gw_host_read_long(path, -1) : -1;
	if (strcmp(drv, "vfio-pci") == 0 || strcmp(drv, "uio_pci_generic") == 0 ||
		strcmp(drv, "igb_uio") == 0) {
		add(f, GW_PREFLIGHT_OK, check, "PCI %s bound to %s (NUMA node %ld)", addr, drv,
			node);
		return strcmp(drv, "vfio-pci") == 0;
	}
	add(f, GW_PREFLIGHT_FAIL, check,
		"PCI %s is bound to the kernel driver %s, not vfio-pci: mtlsgw-ctl setup nic %s",
		addr, drv, addr);
	return false;
}

static void
check_iommu(struct pf *f)
{
	char cmdline[1024] = "";
	unsigned groups = gw_host_iommu_groups(f->sys);

	if (groups > 0) {
		add(f, GW_PREFLIGHT_OK, "iommu", "on (%u IOMMU groups): vfio-pci isolates DMA",
			groups);
		return;
	}
	if (gw_host_vfio_noiommu(f->sys)) {
		add(f, GW_PREFLIGHT_WARN, "iommu",
			"off; vfio runs in no-IOMMU mode: the NIC can DMA anywhere in memory");
		return;
	}
	(void)read_line("/proc/cmdline", cmdline, sizeof(cmdline));
	add(f, GW_PREFLIGHT_FAIL, "iommu",
		"off (no IOMMU groups)%s: enable VT-d/AMD-Vi in the firmware and boot with "
		"intel_iommu=on iommu=pt, or (no isolation) set vfio "
		"enable_unsafe_noiommu_mode=1",
		strstr(cmdline, "intel_iommu=on") || strstr(cmdline, "amd_iommu=on")
			? " although the kernel command line asks for it"
			: ", the kernel command line has no intel_iommu=on");
}

/* ---- CPU isolation ---- */

/*
 * The CPU a worker lcore runs on, by the gateway's rule (config.h): its own
 * id when that CPU is ours, else the (id mod n)-th of our n CPUs. Isolated
 * CPUs count as ours: a process started by systemd with CPUAffinity= or
 * taskset gets them, one started from a shell usually does not.
 */
static int
worker_cpu(unsigned lcore, const bool ours[MAX_CPUS])
{
	unsigned n = 0, k;

	if (lcore < MAX_CPUS && ours[lcore])
		return (int)lcore;
	for (unsigned i = 0; i < MAX_CPUS; i++)
		n += ours[i];
	if (n == 0)
		return -1;
	k = lcore % n;
	for (unsigned i = 0; i < MAX_CPUS; i++)
		if (ours[i] && k-- == 0)
			return (int)i;
	return -1;
}

/* set[0..MAX_CPUS) as a cpulist, "0-3,8" */
static void
cpulist_str(const bool set[MAX_CPUS], char *buf, size_t len)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	for (unsigned i = 0; i < MAX_CPUS && i < CPU_SETSIZE; i++)
		if (set[i])
			CPU_SET(i, &s);
	(void)gw_cpus_str(&s, buf, len);
}

/*
 * Where the HSM threads will run, by the gateway's rule (gateway.c
 * hsm_cpus): hsm.cpus, each one ours, or the CPUs no worker runs on. A
 * start refuses a CPU that is not ours; one a worker also runs on makes
 * the HSM threads and that worker take turns, which is slower.
 */
static void
check_hsm_cpus(struct pf *f, const struct gw_cfg *cfg, const bool ours[MAX_CPUS],
	const bool busy[MAX_CPUS])
{
	char list[256], ok[256], both[256];
	cpu_set_t hsm, shared; /* the HSM threads' CPUs; those of them a worker runs on */
	bool tls = false;

	for (unsigned i = 0; i < cfg->n_listeners; i++)
		tls |= cfg->listeners[i].has_tls;
	if (!tls)
		return; /* no TLS listener: the gateway starts no HSM thread */
	CPU_ZERO(&hsm);
	CPU_ZERO(&shared);
	for (unsigned i = 0; i < cfg->hsm.n_cpus; i++) {
		unsigned c = cfg->hsm.cpus[i];

		if (c >= MAX_CPUS || !ours[c]) {
			cpulist_str(ours, ok, sizeof(ok));
			add(f, GW_PREFLIGHT_FAIL, "hsm cpus",
				"hsm.cpus[%u]: CPU %u is not one this process may run on (%s)", i,
				c, ok);
			return;
		}
		CPU_SET(c, &hsm);
		if (busy[c])
			CPU_SET(c, &shared);
	}
	for (unsigned i = 0; cfg->hsm.n_cpus == 0 && i < MAX_CPUS; i++)
		if (ours[i] && !busy[i])
			CPU_SET(i, &hsm);
	if (CPU_COUNT(&hsm) == 0) { /* none given, and workers take every CPU */
		add(f, GW_PREFLIGHT_WARN, "hsm cpus",
			"every CPU this process may use runs a worker lcore: the %u HSM threads "
			"take turns with the workers; leave a CPU to them (fewer workers, or "
			"CPUAffinity= with one more CPU)",
			cfg->hsm.threads);
		return;
	}
	(void)gw_cpus_str(&hsm, list, sizeof(list));
	if (CPU_COUNT(&shared) > 0) {
		(void)gw_cpus_str(&shared, both, sizeof(both));
		add(f, GW_PREFLIGHT_WARN, "hsm cpus",
			"hsm.cpus %s: worker lcores also run on %s, and take turns with the HSM "
			"threads there (slower handshakes); name CPUs no worker runs on",
			list, both);
		return;
	}
	add(f, GW_PREFLIGHT_OK, "hsm cpus", "%u HSM thread(s) on CPU(s) %s%s", cfg->hsm.threads,
		list, cfg->hsm.n_cpus > 0 ? " (hsm.cpus)" : " (those no worker runs on)");
}

static void
check_cpus(struct pf *f, const struct gw_cfg *cfg)
{
	static bool isol[MAX_CPUS], nohz[MAX_CPUS], ours[MAX_CPUS], busy[MAX_CPUS];
	char path[PATH_MAX], line[1024], cpus[256] = "", bad[256] = "";
	unsigned n_bad = 0, n_nohz = 0;
	cpu_set_t aff;

	line[0] = '\0';
	if (sys_path(f, path, sizeof(path), "devices/system/cpu/isolated"))
		(void)read_line(path, line, sizeof(line));
	cpulist_parse(line, isol);
	line[0] = '\0';
	if (sys_path(f, path, sizeof(path), "devices/system/cpu/nohz_full"))
		(void)read_line(path, line, sizeof(line));
	/* "(null)" when the kernel has nohz_full support but none is set */
	cpulist_parse(line[0] == '(' ? "" : line, nohz);
	memset(ours, 0, sizeof(ours));
	CPU_ZERO(&aff);
	if (sched_getaffinity(0, sizeof(aff), &aff) == 0)
		for (unsigned i = 0; i < MAX_CPUS && i < CPU_SETSIZE; i++)
			ours[i] = CPU_ISSET(i, &aff) || isol[i];
	memset(busy, 0, sizeof(busy));
	for (unsigned i = 0; i < cfg->dataplane.n_workers; i++) {
		int cpu = worker_cpu(cfg->dataplane.workers[i], ours);
		size_t l = strlen(cpus), b = strlen(bad);

		if (cpu >= 0)
			busy[cpu] = true;

		snprintf(cpus + l, sizeof(cpus) - l, "%s%d", l ? "," : "", cpu);
		if (cpu < 0 || !isol[cpu]) {
			snprintf(bad + b, sizeof(bad) - b, "%s%d", b ? "," : "", cpu);
			n_bad++;
		}
		n_nohz += cpu >= 0 && nohz[cpu];
	}
	if (cfg->dataplane.n_workers == 0)
		add(f, GW_PREFLIGHT_OK, "cpus", "no worker lcores");
	else if (n_bad > 0)
		add(f, GW_PREFLIGHT_WARN, "cpus",
			"worker CPU%s %s not isolated from the scheduler: other tasks will share "
			"them; boot with isolcpus=%s nohz_full=%s rcu_nocbs=%s",
			n_bad == 1 ? "" : "s", bad, bad, bad, bad);
	else if (n_nohz < cfg->dataplane.n_workers)
		add(f, GW_PREFLIGHT_WARN, "cpus",
			"worker CPUs %s isolated, but not all nohz_full: the scheduler tick "
			"still interrupts them (boot with nohz_full=%s)",
			cpus, cpus);
	else
		add(f, GW_PREFLIGHT_OK, "cpus", "worker CPUs %s isolated and nohz_full", cpus);
	check_hsm_cpus(f, cfg, ours, busy);
}

/* ---- HSM: module, tokens, PIN, keys ---- */

struct token {
	char label[GW_HSM_LABEL_MAX + 1];
	struct gw_hsm *h; /* logged in; NULL when a check before failed */
};

struct key_ref {
	const char *what; /* "listener 'ext' identity[0]" */
	const char *uri;
	const char *cert;
	const struct gw_material *cert_m;
};

/* The first certificate of the loader's bytes (never the file again). */
static X509 *
first_cert(const struct gw_material *m)
{
	BIO *b = gw_material_bio(m);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	ERR_clear_error();
	return x;
}

static void
check_key(struct pf *f, struct token *toks, unsigned n_toks, const struct key_ref *k)
{
	char check[160], label[GW_HSM_LABEL_MAX + 1] = "";
	struct gw_hsm *h = NULL;
	X509 *x;
	int rc;

	snprintf(check, sizeof(check), "key %s", k->what);
	if (gw_hsm_uri_token(k->uri, label, sizeof(label)) < 0)
		label[0] = '\0';
	for (unsigned i = 0; i < n_toks; i++)
		if (strcmp(toks[i].label, label) == 0)
			h = toks[i].h;
	if (!h) {
		add(f, GW_PREFLIGHT_FAIL, check,
			"%s: not checked, its token cannot be used (above)", k->uri);
		return;
	}
	if (!(x = first_cert(k->cert_m))) {
		add(f, GW_PREFLIGHT_FAIL, check, "%s: no certificate in it", k->cert);
		return;
	}
	rc = gw_hsm_cert_matches_key(h, x, k->uri);
	if (rc == 0)
		add(f, GW_PREFLIGHT_OK, check, "%s signs, and matches %s", k->uri, k->cert);
	else
		add(f, GW_PREFLIGHT_FAIL, check, "%s (certificate %s)", gw_err_msg(), k->cert);
	X509_free(x);
}

/*
 * Open the token named label (the first one for "") twice: without a PIN
 * ("not there" and "wrong PIN" apart), then logged in, which stays open in
 * toks for the key checks; NULL there when it failed. Once per label.
 */
static void
token_add(struct pf *f, const struct gw_cfg *cfg, struct token *toks, unsigned *n_toks,
	const char *label, const char *pin_src)
{
	const char *module = cfg->hsm.module ? cfg->hsm.module : GW_DEFAULT_PKCS11_MODULE;
	struct gw_hsm_params tp = {.module = cfg->hsm.module};
	char check[GW_HSM_LABEL_MAX + 32];
	struct token *t;
	struct gw_hsm *h;

	for (unsigned i = 0; i < *n_toks; i++)
		if (strcmp(toks[i].label, label) == 0)
			return;
	if (*n_toks == MAX_TOKENS)
		return;
	t = &toks[(*n_toks)++];
	snprintf(t->label, sizeof(t->label), "%s", label);
	t->h = NULL;
	tp.token = label[0] ? label : NULL;
	snprintf(check, sizeof(check), "hsm token '%s'", label[0] ? label : "(first)");
	if (gw_hsm_open(&tp, &h) < 0) {
		add(f, GW_PREFLIGHT_FAIL, check, "%s", gw_err_msg());
		return;
	}
	gw_hsm_close(h);
	add(f, GW_PREFLIGHT_OK, check, "present in %s", module);
	snprintf(check, sizeof(check), "hsm login '%s'", label[0] ? label : "(first)");
	tp.pin_file = cfg->hsm.pin_file;
	tp.pin_env = cfg->hsm.pin_env;
	if (gw_hsm_open(&tp, &t->h) < 0) {
		add(f, GW_PREFLIGHT_FAIL, check, "%s (PIN from %s)", gw_err_msg(), pin_src);
		t->h = NULL;
		return;
	}
	add(f, GW_PREFLIGHT_OK, check, "the PIN from %s logs in", pin_src);
}

/* One of a built-in backend's keys (role "root" or "issuer") against its
 * certificate in the state store. */
static void
check_ca_key(struct pf *f, struct gw_hsm *h, const char *check, const char *role, const char *uri,
	const char *pem, const char *db)
{
	X509 *x = gw_ca_pem_read(pem);

	ERR_clear_error();
	if (!x || !uri)
		add(f, GW_PREFLIGHT_FAIL, check, "%s: the %s certificate or key URI is unreadable",
			db, role);
	else if (gw_hsm_cert_matches_key(h, x, uri) == 0)
		add(f, GW_PREFLIGHT_OK, check, "%s key %s signs, and matches the %s in %s", role,
			uri, role, db);
	else
		add(f, GW_PREFLIGHT_FAIL, check,
			"%s key: %s; the backend cannot issue (docs/operations.md, \"HSM key loss "
			"and "
			"recovery\")",
			role, gw_err_msg());
	X509_free(x);
}

/*
 * The built-in CA backends: their root and issuer keys live in the CA's
 * token, their certificates in state_dir's state.db. Before the first start
 * there is neither, and the start makes both; after it, each key must still
 * be in the token and match its certificate, or the gateway cannot start.
 * Reads state.db only when it exists (never creates it).
 */
static void
check_builtin_ca(struct pf *f, const struct gw_cfg *cfg, struct token *toks, unsigned n_toks,
	const char *token)
{
	const char *dir = cfg->state_dir ? cfg->state_dir : "/var/lib/mtlsgw";
	char db[PATH_MAX + 16], check[96];
	struct gw_state *st = NULL;
	struct gw_hsm *h = NULL;
	bool any = false;

	for (unsigned i = 0; i < cfg->mtls.n_backends; i++)
		any |= cfg->mtls.backends[i].type == GW_CA_BUILTIN;
	if (!any)
		return;
	for (unsigned i = 0; i < n_toks; i++)
		if (strcmp(toks[i].label, token) == 0)
			h = toks[i].h;
	snprintf(db, sizeof(db), "%s/state.db", dir);
	if (access(db, F_OK) == 0 && gw_state_open(dir, &st) < 0) {
		add(f, GW_PREFLIGHT_FAIL, "state", "%s", gw_err_msg());
		return;
	}
	for (unsigned i = 0; i < cfg->mtls.n_backends; i++) {
		const struct gw_cfg_ca_backend *b = &cfg->mtls.backends[i];
		struct gw_state_ca row;
		int rc;

		if (b->type != GW_CA_BUILTIN)
			continue;
		snprintf(check, sizeof(check), "CA backend '%s'", b->name);
		rc = st ? gw_state_ca_get(st, b->name, &row) : -ENOENT;
		if (rc == -ENOENT) {
			add(f, GW_PREFLIGHT_OK, check,
				"not made yet: the first start makes its root and issuer keys in "
				"token "
				"'%s' (%s)",
				token, st ? "no row in state.db" : "no state.db");
			continue;
		}
		if (rc < 0) {
			add(f, GW_PREFLIGHT_FAIL, check, "%s", gw_err_msg());
			continue;
		}
		if (strcmp(row.type, "builtin") != 0)
			add(f, GW_PREFLIGHT_FAIL, check,
				"%s knows it as a %s backend; give the new backend another name",
				db, row.type);
		else if (!h)
			add(f, GW_PREFLIGHT_FAIL, check,
				"not checked, its token '%s' cannot be used (above)", token);
		else {
			check_ca_key(f, h, check, "root", row.root_key, row.root_pem, db);
			check_ca_key(f, h, check, "issuer", row.issuer_key, row.issuer_pem, db);
		}
		gw_state_ca_clear(&row);
	}
	gw_state_close(st);
}

static void
check_hsm(struct pf *f, const struct gw_cfg *cfg)
{
	struct key_ref keys[128];
	struct token toks[MAX_TOKENS];
	char what[128][96];
	unsigned n_keys = 0, n_toks = 0;
	const char *module = cfg->hsm.module ? cfg->hsm.module : GW_DEFAULT_PKCS11_MODULE;
	struct gw_hsm_params mp = {.module = cfg->hsm.module};
	char pin_src[PATH_MAX + 32], ca_token[33];
	struct gw_ca_params cp;
	struct gw_hsm *h;
	int rc;

	for (unsigned i = 0; i < cfg->n_listeners; i++) {
		const struct gw_cfg_listener *l = &cfg->listeners[i];

		for (unsigned j = 0; l->has_tls && j < l->tls.n_identities && n_keys < 128; j++) {
			snprintf(what[n_keys], sizeof(what[0]), "listener '%s' identity[%u]",
				l->name, j);
			keys[n_keys] = (struct key_ref){what[n_keys], l->tls.identities[j].key,
				l->tls.identities[j].cert, &l->tls.identities[j].cert_m};
			n_keys++;
		}
	}
	for (unsigned i = 0; i < cfg->mtls.n_backends && n_keys < 128; i++) {
		const struct gw_cfg_ca_backend *b = &cfg->mtls.backends[i];

		if (b->type != GW_CA_PROVIDED || !b->cert || !b->key)
			continue;
		snprintf(what[n_keys], sizeof(what[0]), "CA backend '%s'", b->name);
		keys[n_keys] = (struct key_ref){what[n_keys], b->key, b->cert, &b->cert_m};
		n_keys++;
	}
	if (n_keys == 0 && !cfg->has_mtls) {
		add(f, GW_PREFLIGHT_OK, "hsm", "no key in this config lives in the HSM");
		return;
	}
	rc = gw_hsm_open(&mp, &h);
	if (rc < 0) {
		add(f, GW_PREFLIGHT_FAIL, "hsm module", "%s", gw_err_msg());
		return;
	}
	gw_hsm_close(h);
	add(f, GW_PREFLIGHT_OK, "hsm module", "%s loads", module);
	if (cfg->hsm.pin_file)
		snprintf(pin_src, sizeof(pin_src), "file %s", cfg->hsm.pin_file);
	else
		snprintf(pin_src, sizeof(pin_src), "variable %s",
			cfg->hsm.pin_env ? cfg->hsm.pin_env : "(none)");
	for (unsigned i = 0; i < n_keys; i++) {
		char label[GW_HSM_LABEL_MAX + 1] = "";

		if (gw_hsm_uri_token(keys[i].uri, label, sizeof(label)) < 0)
			label[0] = '\0';
		token_add(f, cfg, toks, &n_toks, label, pin_src);
	}
	if (cfg->has_mtls) {
		gw_ca_params_from_cfg(cfg, &cp, ca_token);
		token_add(f, cfg, toks, &n_toks, ca_token, pin_src);
	}
	for (unsigned i = 0; i < n_keys; i++)
		check_key(f, toks, n_toks, &keys[i]);
	if (cfg->has_mtls)
		check_builtin_ca(f, cfg, toks, n_toks, ca_token);
	for (unsigned t = 0; t < n_toks; t++)
		gw_hsm_close(toks[t].h);
}

/* ---- the fleet (cluster:) ---- */

/*
 * The wrapping key seals in the token (the gateway refuses to start
 * otherwise) and etcd answers (a warning only: without it the gateway
 * starts on its own keys and catches up).
 */
static void
check_cluster(struct pf *f, const struct gw_cfg *cfg)
{
	const struct gw_cfg_cluster *cl = &cfg->cluster;
	struct gw_hsm_params hp = {.module = cfg->hsm.module,
		.pin_file = cfg->hsm.pin_file,
		.pin_env = cfg->hsm.pin_env};
	uint8_t probe[16] = {0}, sealed[sizeof(probe) + GW_HSM_SEAL_OVERHEAD], *v = NULL;
	size_t n = sizeof(sealed), len = 0;
	char key[GW_CFG_CLUSTER_NAME_MAX + 16];
	struct gw_hsm *h = NULL;
	struct gw_etcd *e = NULL;
	int rc;

	if (!cfg->has_cluster)
		return;
	rc = gw_hsm_open(&hp, &h);
	if (rc == 0)
		rc = gw_hsm_seal(h, cl->ticket_key, NULL, 0, probe, sizeof(probe), sealed, &n);
	if (rc < 0)
		add(f, GW_PREFLIGHT_FAIL, "cluster ticket_key", "%s: %s", cl->ticket_key,
			gw_err_msg());
	else
		add(f, GW_PREFLIGHT_OK, "cluster ticket_key", "%s seals in the token",
			cl->ticket_key);
	rc = gw_etcd_open(&(struct gw_etcd_params){.endpoints = (const char *const *)cl->endpoints,
				  .n_endpoints = cl->n_endpoints,
				  .ca_file = cl->etcd_ca,
				  .cert_file = cl->etcd_cert,
				  .key_file = cl->etcd_key,
				  .hsm = h,
				  .timeout_ms = cl->timeout_ms},
		&e);
	snprintf(key, sizeof(key), "/mtlsgw/%s/leader", cl->name);
	if (rc == 0)
		rc = gw_etcd_get(e, key, &v, &len, NULL);
	if (rc == 0 || rc == -ENOENT)
		add(f, GW_PREFLIGHT_OK, "cluster etcd", "%s answers; cluster '%s' %s%s",
			gw_etcd_endpoint(e), cl->name, rc == 0 ? "led by " : "has no leader yet",
			rc == 0 ? (const char *)v : "");
	else
		add(f, GW_PREFLIGHT_WARN, "cluster etcd",
			"%s; the gateway would start on its own ticket keys and join when etcd "
			"answers",
			gw_err_msg());
	free(v);
	gw_etcd_close(e);
	gw_hsm_close(h);
}

/* ---- certificate validity ---- */

static void
check_cert_file(struct pf *f, const char *role, const char *path, const struct gw_material *m)
{
	char check[PATH_MAX + 16], subj[256] = "?", date[40];
	struct gw_material own = {0};
	const struct gw_material *mm;
	const ASN1_TIME *na_first = NULL, *nb_late = NULL;
	X509 *first = NULL, *late = NULL, *x;
	time_t now = time(NULL), na_t = 0;
	unsigned n = 0;
	BIO *b;

	snprintf(check, sizeof(check), "cert %s", path);
	if (gw_material_get(m, path, role, &own, &mm) < 0) {
		add(f, GW_PREFLIGHT_FAIL, check, "%s", gw_err_msg());
		return;
	}
	b = gw_material_bio(mm);
	while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		time_t na = gw_x509_time(X509_get0_notAfter(x));

		n++;
		if (!first || na < na_t) {
			X509_free(first);
			first = X509_dup(x);
			na_t = na;
		}
		if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0 && !late)
			late = X509_dup(x);
		X509_free(x);
	}
	BIO_free(b);
	ERR_clear_error();
	gw_material_fini(&own);
	if (!first) {
		add(f, GW_PREFLIGHT_FAIL, check, "%s: no certificate in it", role);
		goto out;
	}
	X509_NAME_oneline(X509_get_subject_name(late ? late : first), subj, sizeof(subj));
	na_first = X509_get0_notAfter(first);
	if (late) {
		nb_late = X509_get0_notBefore(late);
		gw_x509_time_str(nb_late, date, sizeof(date));
		add(f, GW_PREFLIGHT_FAIL, check, "%s '%s' is not valid before %s", role, subj,
			date);
		goto out;
	}
	gw_x509_time_str(na_first, date, sizeof(date));
	if (na_t <= now)
		add(f, GW_PREFLIGHT_FAIL, check, "%s '%s' expired on %s", role, subj, date);
	else if ((na_t - now) / 86400 < WARN_DAYS)
		add(f, GW_PREFLIGHT_WARN, check, "%s '%s' expires on %s: %ld days left", role, subj,
			date, (long)((na_t - now) / 86400));
	else
		add(f, GW_PREFLIGHT_OK, check, "%s%s '%s' expires on %s: %ld days left", role,
			n > 1 ? " (first to expire of its chain)" : "", subj, date,
			(long)((na_t - now) / 86400));
out:
	X509_free(first);
	X509_free(late);
}

static void
check_certs(struct pf *f, const struct gw_cfg *cfg)
{
	for (unsigned i = 0; i < cfg->n_listeners; i++) {
		const struct gw_cfg_listener *l = &cfg->listeners[i];

		for (unsigned j = 0; l->has_tls && j < l->tls.n_identities; j++)
			check_cert_file(f, "identity", l->tls.identities[j].cert,
				&l->tls.identities[j].cert_m);
		for (unsigned j = 0; l->has_trust && j < l->trust.n_certs; j++)
			check_cert_file(f, "trust anchor", l->trust.certs[j],
				l->trust.certs_m ? &l->trust.certs_m[j] : NULL);
	}
	for (unsigned i = 0; i < cfg->mtls.n_backends; i++)
		if (cfg->mtls.backends[i].type == GW_CA_PROVIDED && cfg->mtls.backends[i].cert)
			check_cert_file(
				f, "CA", cfg->mtls.backends[i].cert, &cfg->mtls.backends[i].cert_m);
}

/* ---- output ---- */

static const char *const status_name[] = {"ok", "warn", "fail"};

static int
print_results(struct pf *f)
{
	FILE *out = f->p->out ? f->p->out : stdout;
	enum gw_preflight_status worst = GW_PREFLIGHT_OK;
	json_t *arr = f->p->json ? json_array() : NULL;

	if (f->dropped)
		add(f, GW_PREFLIGHT_FAIL, "preflight",
			"%u results not shown (out of memory or room)", f->dropped);
	for (unsigned i = 0; i < f->n; i++) {
		const struct result *r = &f->res[i];

		if (r->status > worst)
			worst = r->status;
		if (!arr)
			fprintf(out, "%-4s  %s: %s\n", status_name[r->status], r->check, r->detail);
		else
			json_array_append_new(
				arr, json_pack("{s:s,s:s,s:s}", "check", r->check, "status",
					     status_name[r->status], "detail", r->detail));
	}
	if (f->p->json) {
		if (!arr || json_dumpf(arr, out, JSON_INDENT(2)) < 0)
			worst = GW_PREFLIGHT_FAIL;
		fputc('\n', out);
		json_decref(arr);
	}
	fflush(out);
	return worst == GW_PREFLIGHT_OK ? 0 : worst == GW_PREFLIGHT_WARN ? 1 : 2;
}

int
gw_preflight_run(const struct gw_preflight_params *p)
{
	struct pf *f = calloc(1, sizeof(*f));
	struct gw_cfg *cfg;
	bool vfio = false;
	int rc;

	if (!f || !p || !p->config) {
		fprintf(stderr, "mtlsgw --check: %s\n",
			f ? "--config FILE is required" : "out of memory");
		free(f);
		return 2;
	}
	f->p = p;
	f->sys = p->sysfs_root ? p->sysfs_root : "/sys";
#ifdef GW_TEST_HOOKS
	if (!p->sysfs_root && getenv("MTLSGW_TEST_SYSFS"))
		f->sys = getenv("MTLSGW_TEST_SYSFS");
#endif
	cfg = check_config(f);
	if (cfg) {
		/* as the gateway does: hsm.env before the PKCS#11 module loads */
		for (unsigned i = 0; i < cfg->hsm.n_env; i++)
			(void)setenv(cfg->hsm.env[i].name, cfg->hsm.env[i].value, 1);
		check_hugepages(f, cfg);
		for (unsigned i = 0; i < cfg->dataplane.n_ports; i++)
			vfio |= check_port(f, &cfg->dataplane.ports[i]);
		if (vfio)
			check_iommu(f);
		check_cpus(f, cfg);
		check_hsm(f, cfg);
		check_cluster(f, cfg);
		check_certs(f, cfg);
		gw_cfg_free(cfg);
	}
	rc = print_results(f);
	for (unsigned i = 0; i < f->n; i++) {
		free(f->res[i].check);
		free(f->res[i].detail);
	}
	free(f);
	gw_hsm_shutdown();
	return rc;
}
