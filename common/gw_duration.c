/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_duration.c - the duration parser shared by config, admin API and CLI
 * (syntax in gw_duration.h). Strict on purpose: "1h30m", " 5m", "-5m",
 * "5M" and "5" are all refused rather than guessed at.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gw_duration.h"

/* Leading digits of s into *v; *end after them. strtoull alone takes signs and spaces. */
static int
leading_number(const char *s, unsigned long long *v, char **end)
{
	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, end, 10);
	if (errno || *end == s || *v == 0)
		return -EINVAL;
	return 0;
}

int
gw_duration_parse(const char *s, uint64_t *secs)
{
	unsigned long long v;
	char *end;
	uint64_t mul;

	if (leading_number(s, &v, &end) < 0 || end[0] == '\0' || end[1] != '\0')
		return -EINVAL;
	switch (end[0]) {
	case 's':
		mul = 1;
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	case 'y':
		mul = 365ull * 86400;
		break;
	default:
		return -EINVAL;
	}
	if (v > UINT64_MAX / mul / 1000) /* keep room for a conversion to ms */
		return -EINVAL;
	*secs = v * mul;
	return 0;
}

/* "<n><unit>" with a two-letter unit, n <= UINT32_MAX: 1, not that unit: 0, bad: -EINVAL. */
static int
small_unit(const char *s, const char *unit, uint64_t *out)
{
	size_t n = s ? strlen(s) : 0;
	unsigned long long v;
	char *end;

	if (n <= 2 || strcmp(s + n - 2, unit) != 0)
		return 0;
	if (leading_number(s, &v, &end) < 0 || end != s + n - 2 || v > UINT32_MAX)
		return -EINVAL;
	*out = v;
	return 1;
}

/* s in unit (small_unit), or coarse's value in the next bigger unit * 1000 */
static int
finer(const char *s, const char *unit, int (*coarse)(const char *, uint64_t *), uint64_t *out)
{
	uint64_t v;
	int rc = small_unit(s, unit, out);

	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (coarse(s, &v) < 0 || v > UINT64_MAX / 1000)
		return -EINVAL;
	*out = v * 1000;
	return 0;
}

int
gw_duration_parse_ms(const char *s, uint64_t *ms)
{
	return finer(s, "ms", gw_duration_parse, ms); /* gw_duration_parse keeps the room */
}

int
gw_duration_parse_us(const char *s, uint64_t *us)
{
	return finer(s, "us", gw_duration_parse_ms, us);
}
