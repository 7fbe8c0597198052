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
 * Threading: gw_log may be called from any thread (one fprintf per record,
 * stdio locks the stream, so records do not interleave); gw_log_set_level
 * and gw_log_set_file belong to start-up, before other threads log.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

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

/* One record, "mtlsgw: <module>: <level>: <message>\n". module may be NULL. */
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
