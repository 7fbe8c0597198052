/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_log.c - control's leveled log lines on stderr (see gw_log.h), with
 * syslog priorities when the journal reads them.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <systemd/sd-daemon.h>

#include "gw_log.h"

static _Atomic int log_level = GW_LOG_LVL_INFO;
static FILE *_Atomic log_file;
static atomic_bool log_journal;

/* The journal's priority prefixes (sd-daemon.h), by level. */
static const char *const level_prio[] = {
	[GW_LOG_LVL_ERR] = SD_ERR,
	[GW_LOG_LVL_WARN] = SD_WARNING,
	[GW_LOG_LVL_INFO] = SD_INFO,
	[GW_LOG_LVL_DEBUG] = SD_DEBUG,
};

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

bool
gw_log_fd_is_journal(int fd, const char *journal_stream)
{
	uintmax_t dev, ino;
	struct stat st;
	int end = 0;

	/* "DEVICE:INODE", both decimal (systemd.exec(5)) */
	if (journal_stream == NULL || sscanf(journal_stream, "%ju:%ju%n", &dev, &ino, &end) != 2 ||
		journal_stream[end] != '\0' || fstat(fd, &st) < 0)
		return false;
	return (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
}

void
gw_log_set_journal(bool on)
{
	atomic_store(&log_journal, on);
}

static FILE *
out(void)
{
	FILE *f = atomic_load(&log_file);

	return f != NULL ? f : stderr;
}

/* The record's priority prefix for the journal, or nothing. */
static const char *
prio(const char *p)
{
	return atomic_load(&log_journal) ? p : "";
}

void
gw_log_lines(int prio, const char *buf, size_t len)
{
	FILE *f = out();
	bool journal = atomic_load(&log_journal);

	prio = prio < 0 ? 0 : prio > 7 ? 7 : prio;
	flockfile(f);
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t n = nl != NULL ? (size_t)(nl - buf) + 1 : len;

		if (journal)
			fprintf(f, "<%d>", prio);
		fwrite(buf, 1, n, f);
		buf += n;
		len -= n;
	}
	fflush(f);
	funlockfile(f);
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
		fprintf(out(), "%smtlsgw: %s: %s: %s\n", prio(level_prio[level]), module,
			level_names[level], msg);
	else
		fprintf(out(), "%smtlsgw: %s: %s\n", prio(level_prio[level]), level_names[level],
			msg);
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
	fprintf(out(), "%smtlsgw: %s\n", prio(SD_NOTICE), msg);
	fflush(out());
}
