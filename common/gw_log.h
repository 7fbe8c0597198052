/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_log.h - control's one logging call, with levels.
 *
 * Control code (the main lcore, the CLI) logs through gw_log(); workers keep
 * to counters and rte_log (STYLE.md). A record is one line on stderr:
 *
 *	mtlsgw: <module>: <level>: <message>
 *
 * e.g. "mtlsgw: gateway: error: SIGHUP: ...". Each file names its module
 * once (#define GW_LOG_MODULE "gateway" before including this header) and
 * logs with GW_LOG_ERR/WARN/INFO/DEBUG(fmt, ...). Records above the
 * threshold (gw_log_set_level, once at start: --verbose gives debug; the
 * default is info) are dropped without being formatted.
 *
 * Never pass a PIN, key material, a ticket or a pin-value URI: log
 * fingerprints, labels and subjects instead.
 *
 * Under systemd, when stderr is the journal's stream (gw_log_set_journal),
 * each record starts with its syslog priority, "<3>" error, "<4>" warning,
 * "<6>" info, "<7>" debug ("<5>" notice for banners), which the journal
 * strips and keeps as the entry's priority (sd-daemon(3)).
 *
 * Threading: gw_log may be called from any thread (one fprintf per record,
 * stdio locks the stream, so records do not interleave); gw_log_set_level,
 * gw_log_set_file and gw_log_set_journal belong to start-up, before other
 * threads log.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdbool.h>
#include <stdio.h>

enum gw_log_level {
	GW_LOG_LVL_ERR,
	GW_LOG_LVL_WARN,
	GW_LOG_LVL_INFO,
	GW_LOG_LVL_DEBUG,
};

/* Log records up to and including max (default GW_LOG_LVL_INFO). */
void gw_log_set_level(enum gw_log_level max);

/* The current threshold. */
enum gw_log_level gw_log_get_level(void);

/* Write records to f instead of stderr (tests); NULL: stderr again. Not owned. */
void gw_log_set_file(FILE *f);

/*
 * Is fd the journal's stream? journal_stream is $JOURNAL_STREAM, which
 * systemd sets to "DEVICE:INODE" of the stream it connected stdout and
 * stderr to (systemd.exec(5)); true when fd's device and inode are those.
 * NULL, a malformed value or an fd fstat refuses: false.
 */
bool gw_log_fd_is_journal(int fd, const char *journal_stream);

/*
 * Prefix every record (and banner) with its syslog priority for the
 * journal (on), or not (off, the default). mtlsgw sets it once at start:
 * gw_log_set_journal(gw_log_fd_is_journal(2, getenv("JOURNAL_STREAM"))).
 */
void gw_log_set_journal(bool on);

/*
 * Text another logger formatted (DPDK's log stream, dataplane.c), written
 * as it is to where records go, each line after "<prio>" (0 emerg .. 7
 * debug, clamped) when the journal reads us. One call, one write per line
 * under the stream's lock.
 */
void gw_log_lines(int prio, const char *buf, size_t len);

/*
 * One record, "mtlsgw: <module>: <level>: <message>\n" (after "<N>" for
 * the journal). module may be NULL.
 */
void gw_log(enum gw_log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A line scripts wait for, "mtlsgw: <message>\n" ("mtlsgw: running: ...",
 * "mtlsgw: stopped"): always written, whatever the level, no module or
 * level tag, so its fixed shape is a contract (tests/lib/common.sh).
 */
void gw_log_banner(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define GW_LOG_ERR(...) gw_log(GW_LOG_LVL_ERR, GW_LOG_MODULE, __VA_ARGS__)
#define GW_LOG_WARN(...) gw_log(GW_LOG_LVL_WARN, GW_LOG_MODULE, __VA_ARGS__)
#define GW_LOG_INFO(...) gw_log(GW_LOG_LVL_INFO, GW_LOG_MODULE, __VA_ARGS__)
#define GW_LOG_DEBUG(...) gw_log(GW_LOG_LVL_DEBUG, GW_LOG_MODULE, __VA_ARGS__)

#endif /* GW_LOG_H */
