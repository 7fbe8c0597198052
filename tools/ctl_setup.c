/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_setup.c - `mtlsgw-ctl setup hugepages|nic`: the two host steps a
 * DPDK box needs before `mtlsgw --check` passes, done through DPDK's own
 * scripts from Debian's dpdk package (dpdk-hugepages.py, dpdk-devbind.py)
 * rather than our own writes to sysfs.
 *
 * Both are idempotent: a step already done says so and exits 0. Both refuse
 * what would hurt the box, before running anything: `setup nic` never takes
 * the interface that carries the default route. --dry-run prints the
 * commands instead of running them. Exit 0 done (or nothing to do), 1
 * refused or failed, 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "host.h"

extern char **environ;

#define HUGEPAGES_PY "dpdk-hugepages.py"
#define DEVBIND_PY "dpdk-devbind.py"

static const char setup_usage[] =
	"usage: mtlsgw-ctl setup <command> [options] (--help on every command)\n\n"
	"commands:\n"
	"  hugepages  reserve hugepages and mount hugetlbfs (dpdk-hugepages.py)\n"
	"  nic        bind a PCI NIC to vfio-pci for the gateway (dpdk-devbind.py)\n";

static const char hugepages_usage[] =
	"usage: mtlsgw-ctl setup hugepages --mb N [--node N] [--page-size 2M|1G] [--dry-run]\n\n"
	"Reserve N MB of hugepages (on NUMA node N, or on each node) and mount hugetlbfs,\n"
	"through dpdk-hugepages.py. Nothing to do when N MB of that page size are reserved\n"
	"already and hugetlbfs is mounted. Needs root; the reservation lasts until reboot\n"
	"(for a permanent one, see docs/operations.md \"Preflight\").\n\n"
	"  --mb N          megabytes to reserve (dataplane.memory_mb, or more)\n"
	"  --node N        only on this NUMA node (the NIC's: "
	"/sys/bus/pci/devices/ADDR/numa_node)\n"
	"  --page-size S   2M (default) or 1G\n"
	"  --dry-run       print the command, run nothing\n"
	"  --sysfs-root D  read sysfs from D instead of /sys (tests)\n";

static const char nic_usage[] =
	"usage: mtlsgw-ctl setup nic PCI_ADDR [--driver vfio-pci|uio_pci_generic] [--dry-run]\n\n"
	"Bind the NIC at PCI_ADDR (e.g. 0000:03:00.0) to a DPDK driver (default vfio-pci),\n"
	"loading the driver's module first, through dpdk-devbind.py. Nothing to do when it\n"
	"is bound already. Refuses a NIC whose interface carries the default route.\n"
	"Needs root; lasts until reboot (docs/operations.md \"Preflight\").\n\n"
	"  --driver D      vfio-pci (default, needs the IOMMU), uio_pci_generic or igb_uio\n"
	"  --dry-run       print the commands, run nothing\n"
	"  --sysfs-root D  read sysfs from D instead of /sys (tests)\n";

/* Print argv as one shell-like line: what --dry-run shows and what we run. */
static void
print_cmd(FILE *f, const char *const *argv)
{
	for (size_t i = 0; argv[i] != NULL; i++)
		fprintf(f, "%s%s", i ? " " : "", argv[i]);
	fputc('\n', f);
}

/* Run argv (found on PATH); its output goes to ours. Returns its exit status or -1. */
static int
run(const char *const *argv)
{
	pid_t pid;
	int st, rc;

	fputs("+ ", stdout);
	print_cmd(stdout, argv);
	fflush(stdout);
	rc = posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ);
	if (rc != 0) {
		gw_ctl_die(GW_CTL_FAIL, "setup: cannot run %s: %s%s", argv[0], strerror(rc),
			rc == ENOENT ? " (install Debian's dpdk package: tools/deps.sh)" : "");
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s[0] || s[0] == '-')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
setup_hugepages(int argc, char **argv)
{
	enum { O_MB = 1000, O_NODE, O_PAGE, O_DRY, O_SYSFS, O_HELP };
	static const struct option opts[] = {
		{"mb", required_argument, NULL, O_MB},
		{"node", required_argument, NULL, O_NODE},
		{"page-size", required_argument, NULL, O_PAGE},
		{"dry-run", no_argument, NULL, O_DRY},
		{"sysfs-root", required_argument, NULL, O_SYSFS},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	const char *sys = "/sys", *page = "2M";
	unsigned long mb = 0, node = 0, page_kb = 2048;
	char path[PATH_MAX], reserve[32], node_s[24];
	const char *cmd[12];
	bool has_node = false, dry = false;
	long have_pages;
	size_t n = 0;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = gw_ctl_getopt(argc, argv, opts)) != -1) {
		switch (c) {
		case O_MB:
			if (parse_uint(optarg, 1ul << 30, &mb) < 0 || mb == 0)
				return gw_ctl_die(GW_CTL_USAGE,
					"setup hugepages: --mb '%s' is not a size in MB (e.g. "
					"1024)",
					optarg);
			break;
		case O_NODE:
			if (parse_uint(optarg, 1023, &node) < 0)
				return gw_ctl_die(GW_CTL_USAGE,
					"setup hugepages: --node '%s' is not a NUMA node number",
					optarg);
			has_node = true;
			break;
		case O_PAGE:
			if (strcmp(optarg, "2M") == 0)
				page_kb = 2048;
			else if (strcmp(optarg, "1G") == 0)
				page_kb = 1048576;
			else
				return gw_ctl_die(GW_CTL_USAGE,
					"setup hugepages: --page-size '%s': give 2M or 1G", optarg);
			page = optarg;
			break;
		case O_DRY:
			dry = true;
			break;
		case O_SYSFS:
			sys = optarg;
			break;
		case O_HELP:
			fputs(hugepages_usage, stdout);
			return GW_CTL_OK;
		default:
			return gw_ctl_bad_option("setup hugepages", c, argv[optind - 1]);
		}
	}
	if (optind < argc)
		return gw_ctl_die(
			GW_CTL_USAGE, "setup hugepages: unexpected argument '%s'", argv[optind]);
	if (mb == 0) {
		fputs(hugepages_usage, stderr);
		return gw_ctl_die(GW_CTL_USAGE, "setup hugepages: --mb N is required");
	}
	if (mb * 1024 % page_kb != 0)
		return gw_ctl_die(GW_CTL_USAGE,
			"setup hugepages: --mb %lu is not a whole number of %s pages", mb, page);
	if (has_node) {
		snprintf(path, sizeof(path), "%s/devices/system/node/node%lu", sys, node);
		if (access(path, F_OK) != 0)
			return gw_ctl_die(GW_CTL_FAIL,
				"setup hugepages: no NUMA node %lu (%s missing)", node, path);
		snprintf(path, sizeof(path),
			"%s/devices/system/node/node%lu/hugepages/hugepages-%lukB/nr_hugepages",
			sys, node, page_kb);
	} else {
		snprintf(path, sizeof(path), "%s/kernel/mm/hugepages/hugepages-%lukB/nr_hugepages",
			sys, page_kb);
	}
	have_pages = gw_host_read_long(path, -1);
	if (have_pages < 0)
		return gw_ctl_die(GW_CTL_FAIL,
			"setup hugepages: this kernel offers no %s pages (%s missing)", page, path);
	if ((unsigned long)have_pages * page_kb >= mb * 1024 && gw_host_hugetlbfs(NULL, 0)) {
		printf("hugepages: %lu MB of %s pages reserved already%s and hugetlbfs mounted: "
		       "nothing to do\n",
			(unsigned long)have_pages * page_kb / 1024, page,
			has_node ? " on that node" : "");
		return GW_CTL_OK;
	}
	snprintf(reserve, sizeof(reserve), "%luM", mb);
	snprintf(node_s, sizeof(node_s), "%lu", node);
	cmd[n++] = HUGEPAGES_PY;
	cmd[n++] = "--pagesize";
	cmd[n++] = page;
	if (has_node) {
		cmd[n++] = "--node";
		cmd[n++] = node_s;
	}
	cmd[n++] = "--reserve";
	cmd[n++] = reserve;
	cmd[n++] = "--mount";
	cmd[n] = NULL;
	if (dry) {
		print_cmd(stdout, cmd);
		return GW_CTL_OK;
	}
	if (geteuid() != 0)
		return gw_ctl_die(GW_CTL_FAIL, "setup hugepages: needs root (or --dry-run to see "
					       "the command)");
	rc = run(cmd);
	if (rc != 0)
		return rc < 0 ? GW_CTL_FAIL
			      : gw_ctl_die(GW_CTL_FAIL, "setup hugepages: %s exited with %d",
					HUGEPAGES_PY, rc);
	have_pages = gw_host_read_long(path, 0);
	if ((unsigned long)have_pages * page_kb < mb * 1024)
		return gw_ctl_die(GW_CTL_FAIL,
			"setup hugepages: only %ld MB reserved of %lu MB asked: memory is too "
			"fragmented; reserve at boot (hugepages= on the kernel command line)",
			have_pages * (long)page_kb / 1024, mb);
	printf("hugepages: %ld MB of %s pages reserved, hugetlbfs mounted\n",
		have_pages * (long)page_kb / 1024, page);
	return GW_CTL_OK;
}

/* "0000:03:00.0" or "03:00.0" (then domain 0000) into full[len]; -1 if neither. */
static int
pci_addr(const char *s, char *full, size_t len)
{
	unsigned dom, bus, dev, fn;
	char tail;

	if (sscanf(s, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &tail) == 4 && strlen(s) == 12)
		snprintf(full, len, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
	else if (sscanf(s, "%2x:%2x.%1x%c", &bus, &dev, &fn, &tail) == 3 && strlen(s) == 7)
		snprintf(full, len, "0000:%02x:%02x.%x", bus, dev, fn);
	else
		return -1;
	return dev < 32 && fn < 8 ? 0 : -1;
}

/* Is iface the device of a default route (IPv4 or IPv6) of this box? */
static bool
carries_default_route(const char *iface)
{
	char line[512], name[64], dest[64], mask[64];
	bool found = false;
	FILE *f = fopen("/proc/net/route", "re");

	/* Iface Destination Gateway Flags RefCnt Use Metric Mask ... */
	while (f && !found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%63s %63s %*s %*s %*s %*s %*s %63s", name, dest, mask) == 3)
			found = strcmp(name, iface) == 0 && strcmp(dest, "00000000") == 0 &&
				strcmp(mask, "00000000") == 0;
	if (f)
		fclose(f);
	f = fopen("/proc/net/ipv6_route", "re");
	/* dest dest_len src src_len nexthop metric refcnt use flags iface */
	while (f && !found && fgets(line, sizeof(line), f)) {
		unsigned plen;

		if (sscanf(line, "%63s %x %*s %*s %*s %*s %*s %*s %*s %63s", dest, &plen, name) ==
			3)
			found = strcmp(name, iface) == 0 && plen == 0 &&
				strspn(dest, "0") == strlen(dest) && strcmp(iface, "lo") != 0;
	}
	if (f)
		fclose(f);
	return found;
}

/*
 * The kernel interface of the device at dev_dir that carries the default
 * route, into iface; false if none. Interfaces sit in DEV/net/ (most NICs)
 * or one level down, DEV/virtioN/net/ (virtio-net).
 */
static bool
default_route_iface(const char *dev_dir, char *iface, size_t len)
{
	char path[PATH_MAX];
	struct dirent *e, *s;
	DIR *d, *sd;
	bool found = false;

	if (!(d = opendir(dev_dir)))
		return false;
	while (!found && (e = readdir(d)) != NULL) {
		int n;

		if (strcmp(e->d_name, "net") == 0)
			n = snprintf(path, sizeof(path), "%s/net", dev_dir);
		else if (strncmp(e->d_name, "virtio", 6) == 0)
			n = snprintf(path, sizeof(path), "%s/%s/net", dev_dir, e->d_name);
		else
			continue;
		if (n < 0 || (size_t)n >= sizeof(path) || !(sd = opendir(path)))
			continue;
		while (!found && (s = readdir(sd)) != NULL)
			if (s->d_name[0] != '.' && carries_default_route(s->d_name))
				found = (size_t)snprintf(iface, len, "%s", s->d_name) < len;
		closedir(sd);
	}
	closedir(d);
	return found;
}

static int
setup_nic(int argc, char **argv)
{
	enum { O_DRIVER = 1000, O_DRY, O_SYSFS, O_HELP };
	static const struct option opts[] = {
		{"driver", required_argument, NULL, O_DRIVER},
		{"dry-run", no_argument, NULL, O_DRY},
		{"sysfs-root", required_argument, NULL, O_SYSFS},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	const char *sys = "/sys", *driver = "vfio-pci";
	char addr[40], dev_dir[PATH_MAX], path[PATH_MAX], cur[64], iface[64], bind[80];
	const char *modprobe[] = {"modprobe", NULL, NULL};
	const char *devbind[] = {DEVBIND_PY, bind, addr, NULL};
	bool dry = false, load;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = gw_ctl_getopt(argc, argv, opts)) != -1) {
		switch (c) {
		case O_DRIVER:
			driver = optarg;
			break;
		case O_DRY:
			dry = true;
			break;
		case O_SYSFS:
			sys = optarg;
			break;
		case O_HELP:
			fputs(nic_usage, stdout);
			return GW_CTL_OK;
		default:
			return gw_ctl_bad_option("setup nic", c, argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		fputs(nic_usage, stderr);
		return gw_ctl_die(
			GW_CTL_USAGE, "setup nic: which PCI address? (e.g. 0000:03:00.0)");
	}
	if (optind + 1 < argc)
		return gw_ctl_die(
			GW_CTL_USAGE, "setup nic: unexpected argument '%s'", argv[optind + 1]);
	if (strcmp(driver, "vfio-pci") != 0 && strcmp(driver, "uio_pci_generic") != 0 &&
		strcmp(driver, "igb_uio") != 0)
		return gw_ctl_die(GW_CTL_USAGE,
			"setup nic: --driver '%s': give vfio-pci, uio_pci_generic or igb_uio",
			driver);
	if (pci_addr(argv[optind], addr, sizeof(addr)) < 0)
		return gw_ctl_die(GW_CTL_USAGE,
			"setup nic: '%s' is not a PCI address (expected e.g. 0000:03:00.0 or "
			"03:00.0; `lspci -D` lists them)",
			argv[optind]);
	snprintf(dev_dir, sizeof(dev_dir), "%s/bus/pci/devices/%s", sys, addr);
	if (access(dev_dir, F_OK) != 0)
		return gw_ctl_die(GW_CTL_FAIL,
			"setup nic: no PCI device %s on this box (%s missing; `lspci -D` lists "
			"the devices)",
			addr, dev_dir);
	(void)gw_host_pci_driver(dev_dir, cur, sizeof(cur));
	if (strcmp(cur, driver) == 0) {
		printf("nic: %s is bound to %s already: nothing to do\n", addr, driver);
		return GW_CTL_OK;
	}
	/* the box's own way out: dpdk-devbind.py only warns about "Active" ones */
	if (default_route_iface(dev_dir, iface, sizeof(iface)))
		return gw_ctl_die(GW_CTL_FAIL,
			"setup nic: refused: %s is interface %s, which carries this box's default "
			"route; binding it to %s would cut the box off (move the route to "
			"another interface first)",
			addr, iface, driver);
	snprintf(path, sizeof(path), "%s/bus/pci/drivers/%s", sys, driver);
	load = access(path, F_OK) != 0;
	modprobe[1] = driver;
	snprintf(bind, sizeof(bind), "--bind=%s", driver);
	if (strcmp(driver, "vfio-pci") == 0 &&
		!(gw_host_iommu_groups(sys) > 0 || gw_host_vfio_noiommu(sys)))
		fprintf(stderr,
			"mtlsgw-ctl: setup nic: warning: no IOMMU groups and vfio's no-IOMMU mode "
			"is off: DPDK cannot use %s through vfio-pci until the IOMMU is on "
			"(intel_iommu=on iommu=pt) or --driver uio_pci_generic is used\n",
			addr);
	if (dry) {
		if (load)
			print_cmd(stdout, modprobe);
		print_cmd(stdout, devbind);
		return GW_CTL_OK;
	}
	if (geteuid() != 0)
		return gw_ctl_die(
			GW_CTL_FAIL, "setup nic: needs root (or --dry-run to see the commands)");
	if (load && (rc = run(modprobe)) != 0)
		return rc < 0 ? GW_CTL_FAIL
			      : gw_ctl_die(GW_CTL_FAIL,
					"setup nic: module %s is not loadable (modprobe %s "
					"exited with %d; is it built for this kernel?)",
					driver, driver, rc);
	rc = run(devbind);
	if (rc != 0)
		return rc < 0 ? GW_CTL_FAIL
			      : gw_ctl_die(GW_CTL_FAIL, "setup nic: %s exited with %d", DEVBIND_PY,
					rc);
	(void)gw_host_pci_driver(dev_dir, cur, sizeof(cur));
	if (strcmp(cur, driver) != 0)
		return gw_ctl_die(GW_CTL_FAIL, "setup nic: %s is bound to '%s', not %s, after %s",
			addr, cur[0] ? cur : "no driver", driver, DEVBIND_PY);
	printf("nic: %s bound to %s\n", addr, driver);
	return GW_CTL_OK;
}

static int
setup_run(int argc, char **argv)
{
	if (argc < 2) {
		fputs(setup_usage, stderr);
		return GW_CTL_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(setup_usage, stdout);
		return GW_CTL_OK;
	}
	if (strcmp(argv[1], "hugepages") == 0)
		return setup_hugepages(argc - 1, argv + 1);
	if (strcmp(argv[1], "nic") == 0)
		return setup_nic(argc - 1, argv + 1);
	return gw_ctl_die(GW_CTL_USAGE, "setup: unknown command '%s' (try setup --help)", argv[1]);
}

const struct gw_ctl_group gw_ctl_group_setup = {
	.name = "setup",
	.summary = "host steps for DPDK: hugepages, bind a NIC (dpdk-hugepages/devbind.py)",
	.run = setup_run,
};
