/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_log.c - control's leveled log lines on stderr (see gw_log.h).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "gw_log.h"

static _Atomic int log_level = GW_LOG_LVL_INFO;
static FILE *_Atomic log_file;

static const char *const level_names[] = {
	[GW_LOG_LVL_ERR] = "error",
	[GW_LOG_LVL_WARN] = "warning",
	[GW_LOG_LVL_INFO] = "info",
	[GW_LOG_LVL_DEBUG] = "debug",
};

void
gw_log_set_level(enum gw_log_level max)
{
	atomic_store(&log_level, (int)max);
}

enum gw_log_level
gw_log_get_level(void)
{
	return (enum gw_log_level)atomic_load(&log_level);
}

void
gw_log_set_file(FILE *f)
{
	atomic_store(&log_file, f);
}

static FILE *
out(void)
{
	FILE *f = atomic_load(&log_file);

	return f != NULL ? f : stderr;
}

void
gw_log(enum gw_log_level level, const char *module, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if ((int)level > atomic_load(&log_level) || (unsigned)level > GW_LOG_LVL_DEBUG)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one call per record: stdio's stream lock keeps records whole */
	if (module != NULL)
		fprintf(out(), "mtlsgw: %s: %s: %s\n", module, level_names[level], msg);
	else
		fprintf(out(), "mtlsgw: %s: %s\n", level_names[level], msg);
	fflush(out());
}

void
gw_log_banner(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(out(), "mtlsgw: %s\n", msg);
	fflush(out());
}
