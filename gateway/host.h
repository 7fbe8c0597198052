/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * host.h - what the box says about itself in /proc and sysfs, read the
 * same way by `mtlsgw --check` (preflight.c) and `mtlsgw-ctl setup`
 * (tools/ctl_setup.c): hugetlbfs, the IOMMU, a PCI device's driver. sys is
 * the sysfs root ("/sys", or a fake tree in tests). Nothing is written.
 */
#ifndef GW_HOST_H
#define GW_HOST_H

#include <stdbool.h>
#include <stddef.h>

/* The number at the start of the file at path; dflt if unreadable or none. */
long gw_host_read_long(const char *path, long dflt);

/* Is hugetlbfs mounted? Its first mount point into where[len] (where may be NULL). */
bool gw_host_hugetlbfs(char *where, size_t len);

/* IOMMU groups under sys/kernel/iommu_groups (0: no IOMMU in use). */
unsigned gw_host_iommu_groups(const char *sys);

/* Does vfio run in its no-IOMMU mode (enable_unsafe_noiommu_mode Y or 1)? */
bool gw_host_vfio_noiommu(const char *sys);

/*
 * The name of the driver the PCI device at dev_dir (sys/bus/pci/devices/ADDR)
 * is bound to, into drv[len]; false (drv "") when it is bound to none.
 */
bool gw_host_pci_driver(const char *dev_dir, char *drv, size_t len);

#endif /* GW_HOST_H */
