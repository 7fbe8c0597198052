/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_cpus.h - CPU sets as the lists messages and EAL arguments show ("0-3,8"),
 * shared by the dataplane (its --lcores), the gateway (where the HSM
 * threads run) and `mtlsgw --check`, which links no DPDK.
 *
 * Pure functions: thread-safe, no allocation, do not touch gw_err.
 */
#ifndef GW_CPUS_H
#define GW_CPUS_H

#include <sched.h>
#include <stddef.h>

/* The CPUs of set into cpus[max], in increasing order; returns their count. */
int gw_cpus_of_set(const cpu_set_t *set, int *cpus, int max);

/*
 * cpus[0..n) (increasing) as runs into buf, "0-3,8", so a list stays short
 * on a big box; "" when n is 0. Returns snprintf's count (>= len: cut).
 */
int gw_cpus_ranges(const int *cpus, int n, char *buf, size_t len);

/* set as a CPU list, "0-3,8" (for messages); returns snprintf's count. */
int gw_cpus_str(const cpu_set_t *set, char *buf, size_t len);

#endif
