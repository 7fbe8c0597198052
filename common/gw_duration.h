/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_duration.h - the one duration syntax of mtlsgw: the config file, the
 * admin API ("TTL") and the CLI (--ttl) all read durations through here.
 *
 * Syntax: a positive decimal number immediately followed by one unit:
 *   s (second), m (minute), h (hour), d (day), y (365 days)
 * e.g. "90s", "5m", "24h", "30d", "10y"; gw_duration_parse_ms also takes
 * "ms" ("500ms"), gw_duration_parse_us also "us" ("300us"). No sign, no
 * spaces, no bare number, no zero, one unit.
 * Values are capped so that seconds * 1000 still fits a uint64_t, so callers
 * may convert to milliseconds without overflow.
 *
 * Pure functions: thread-safe, no allocation, do not touch gw_err.
 */
#ifndef GW_DURATION_H
#define GW_DURATION_H

#include <stdint.h>

#include "gw_err.h"

/*
 * Parse s into *secs. Returns 0, or -EINVAL when s is NULL, malformed, zero
 * or too large (*secs untouched then).
 */
GW_MUST_CHECK int gw_duration_parse(const char *s, uint64_t *secs);

/*
 * Like gw_duration_parse, also accepting "<n>ms" (n <= UINT32_MAX); the
 * result is in milliseconds. Returns 0 or -EINVAL (*ms untouched then).
 */
GW_MUST_CHECK int gw_duration_parse_ms(const char *s, uint64_t *ms);

/*
 * Like gw_duration_parse_ms, also accepting "<n>us" (n <= UINT32_MAX); the
 * result is in microseconds. Returns 0 or -EINVAL (*us untouched then;
 * also for a seconds value whose microseconds overflow a uint64_t).
 */
GW_MUST_CHECK int gw_duration_parse_us(const char *s, uint64_t *us);

#endif /* GW_DURATION_H */
