/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * preflight.h - `mtlsgw --check`: will this config start, and run well, on
 * this box? Answered without starting anything: no EAL, no port, no
 * hugepage touched, no packet.
 *
 * Checks, in order, one result each (a check may give several results, one
 * per port, token, key or certificate file):
 *   config      the loader's verdict (every error line it found is a fail)
 *   hugepages   reserved and free per size and NUMA node, against
 *               dataplane.memory_mb, and a hugetlbfs mount (skipped with
 *               dataplane.no_huge)
 *   port NAME   pci ports: the device exists and is bound to vfio-pci or a
 *               uio driver; other drivers need nothing bound
 *   iommu       for vfio-pci ports: IOMMU groups exist, or vfio's no-IOMMU
 *               mode (warn), or why not
 *   cpus        the worker lcores' CPUs are isolated (isolcpus, nohz_full)
 *   hsm ...     the module loads, each token is there, the PIN (the
 *               gateway's own source: hsm.pin_file / hsm.pin_env) logs in
 *   key ...     every key URI resolves to a signing key matching its
 *               certificate (the hsm module's proof: the token signs)
 *   cert PATH   identity, trust anchor and CA certificates: days left
 *               (warn under 30 days, fail once expired or not yet valid)
 * A failed config load stops there: the other checks need the config.
 *
 * Output: text, one line per result, "ok|warn|fail  CHECK: DETAIL"; or
 * with json a JSON array of {"check", "status", "detail"} objects. No PIN
 * is ever printed (the hsm module's messages never hold one).
 */
#ifndef GW_PREFLIGHT_H
#define GW_PREFLIGHT_H

#include <stdbool.h>
#include <stdio.h>

enum gw_preflight_status { GW_PREFLIGHT_OK, GW_PREFLIGHT_WARN, GW_PREFLIGHT_FAIL };

struct gw_preflight_params {
	const char *config; /* the config file, as for the gateway */
	bool json;          /* a JSON array instead of lines */
	FILE *out;          /* NULL: stdout */
	/*
	 * Where sysfs is; NULL: "/sys", or (test builds only) the environment
	 * variable MTLSGW_TEST_SYSFS, so a test can show a fake PCI tree.
	 */
	const char *sysfs_root;
};

/*
 * Run every check and print the results. Returns the exit status: 0 all
 * ok, 1 warnings only, 2 at least one failure (or the checks could not
 * run: no memory, no config given). Opens the HSM in this process: call
 * it instead of starting the gateway, never alongside it. Control thread.
 */
int gw_preflight_run(const struct gw_preflight_params *p);

#endif /* GW_PREFLIGHT_H */
