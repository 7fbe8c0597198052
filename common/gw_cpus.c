/* SPDX-License-Identifier: BSD-3-Clause */
/* gw_cpus.c - CPU sets as lists (gw_cpus.h). */
#include <stdio.h>

#include "gw_cpus.h"

int
gw_cpus_of_set(const cpu_set_t *set, int *cpus, int max)
{
	int n = 0;

	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, set))
			cpus[n++] = c;
	return n;
}

int
gw_cpus_ranges(const int *cpus, int n, char *buf, size_t len)
{
	size_t off = 0;

	if (len > 0)
		buf[0] = '\0';
	for (int i = 0; i < n && off < len;) {
		int j = i;

		while (j + 1 < n && cpus[j + 1] == cpus[j] + 1)
			j++;
		off += (size_t)snprintf(buf + off, len - off, "%s%d", i ? "," : "", cpus[i]);
		if (j > i && off < len)
			off += (size_t)snprintf(buf + off, len - off, "-%d", cpus[j]);
		i = j + 1;
	}
	return (int)off;
}

int
gw_cpus_str(const cpu_set_t *set, char *buf, size_t len)
{
	int cpus[CPU_SETSIZE];

	return gw_cpus_ranges(cpus, gw_cpus_of_set(set, cpus, CPU_SETSIZE), buf, len);
}
