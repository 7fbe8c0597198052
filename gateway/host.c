/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * host.c - facts of the box from /proc and sysfs (host.h).
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host.h"

long
gw_host_read_long(const char *path, long dflt)
{
	FILE *f = fopen(path, "re");
	long v;

	if (!f)
		return dflt;
	if (fscanf(f, "%ld", &v) != 1)
		v = dflt;
	fclose(f);
	return v;
}

bool
gw_host_hugetlbfs(char *where, size_t len)
{
	FILE *fp = fopen("/proc/mounts", "re");
	char dev[256], dir[PATH_MAX], type[64];
	bool found = false;

	if (!fp)
		return false;
	while (!found && fscanf(fp, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3)
		if (strcmp(type, "hugetlbfs") == 0) {
			if (where != NULL)
				snprintf(where, len, "%s", dir);
			found = true;
		}
	fclose(fp);
	return found;
}

unsigned
gw_host_iommu_groups(const char *sys)
{
	char path[PATH_MAX];
	unsigned groups = 0;
	struct dirent *e;
	DIR *d;

	if ((size_t)snprintf(path, sizeof(path), "%s/kernel/iommu_groups", sys) >= sizeof(path) ||
		!(d = opendir(path)))
		return 0;
	while ((e = readdir(d)) != NULL)
		groups += e->d_name[0] != '.';
	closedir(d);
	return groups;
}

bool
gw_host_vfio_noiommu(const char *sys)
{
	char path[PATH_MAX];
	int mode = 0;
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path),
		    "%s/module/vfio/parameters/enable_unsafe_noiommu_mode", sys) >= sizeof(path) ||
		!(f = fopen(path, "re")))
		return false;
	mode = fgetc(f);
	fclose(f);
	return mode == 'Y' || mode == '1';
}

bool
gw_host_pci_driver(const char *dev_dir, char *drv, size_t len)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *name;
	ssize_t n;

	drv[0] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/driver", dev_dir) >= sizeof(path) ||
		(n = readlink(path, link, sizeof(link) - 1)) < 0)
		return false;
	link[n] = '\0';
	name = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	if ((size_t)snprintf(drv, len, "%s", name) >= len) {
		drv[0] = '\0'; /* no driver name is that long */
		return false;
	}
	return true;
}
