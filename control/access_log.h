/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * access_log.h - control's side of the access log (docs/operations.md
 * "Access log"): one ring per worker (common/gw_alog.h) that the workers
 * fill, drained by the gateway's run loop and tick, each record formatted
 * (text or JSON) and written where the config's access_log: says.
 *
 * What the worker copied raw (the client's subject and subjectAltName as
 * DER, SNI bytes) is decoded and escaped here: an attacker controls SNI
 * and every certificate field, so no byte of them reaches the log as is.
 * Text lines are key=value pairs whose string values are quoted with ",
 * \ and control or non-ASCII bytes escaped (\", \\, \n, \xHH); JSON lines
 * are one object each (jansson), non-ASCII bytes written as \xHH first.
 *
 * Refusals are always written, rate limited per reason: at most
 * refusals_per_second lines per reason in each second, then one line
 * "suppressed K refusals for reason R" when that second is over. Accepted
 * connections only when access_log.enabled. With the access log off,
 * refusals go to the gateway's own log (gw_log).
 *
 * Threading: control's thread only (the rings' consumer).
 */
#ifndef GW_ACCESS_LOG_H
#define GW_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gw_alog.h"
#include "gw_err.h"

struct gw_access_log;

/*
 * An access log for cfg's listeners (names by snapshot index) with one ring
 * per worker (n_rings, each of ring_size records; 0 = GW_ALOG_RING_DEFAULT),
 * writing where cfg->access_log says (a file is opened for appending now).
 * Returns 0, -EINVAL, -ENOMEM, or the open's error with a message.
 */
GW_MUST_CHECK int gw_access_log_create(
	const struct gw_cfg *cfg, unsigned n_rings, unsigned ring_size, struct gw_access_log **out);

/* Close and free (drain first to keep the last records). NULL ok. */
void gw_access_log_destroy(struct gw_access_log *al);

/* Worker i's ring (i < n_rings), for gw_tls_dp_params.alog; NULL otherwise. */
struct gw_alog_ring *gw_access_log_ring(struct gw_access_log *al, unsigned i);

/*
 * Take cfg's access_log: settings (a reload) and reopen the file (SIGHUP
 * after logrotate moved it). The listener names stay (they never change
 * on a reload). On an open failure the old destination stays and the
 * error is returned with a message.
 */
GW_MUST_CHECK int gw_access_log_reopen(struct gw_access_log *al, const struct gw_cfg *cfg);

/*
 * Pop every record of every ring, write its line (or count it as
 * suppressed), and the summaries of rate-limit windows that ended;
 * now_ms is a monotonic clock in milliseconds. Returns the number of
 * records taken. NULL ok.
 */
unsigned gw_access_log_drain(struct gw_access_log *al, uint64_t now_ms);

/* ---- the pieces, for tests ---- */

/*
 * Format r as one line (no newline) into buf[cap]: text or JSON
 * (GW_CFG_ALOG_*), listener its listener's name. Returns the length, or
 * -ENOSPC (cap too small: the line is cut), -ENOMEM.
 */
GW_MUST_CHECK int gw_access_log_format(const struct gw_alog_rec *r, const char *listener,
	enum gw_cfg_alog_format format, char *buf, size_t cap);

/* The per-reason limiter: at most per_second lines per reason per second. */
struct gw_alog_limit {
	unsigned per_second;
	uint64_t win_ms[GW_ALOG_R__COUNT]; /* start of the reason's window */
	unsigned used[GW_ALOG_R__COUNT];   /* lines written in it */
	uint64_t suppressed[GW_ALOG_R__COUNT];
};

void gw_alog_limit_init(struct gw_alog_limit *l, unsigned per_second);

/*
 * May a refusal for reason r be written at now_ms? false: it is counted as
 * suppressed in its window.
 */
bool gw_alog_limit_take(struct gw_alog_limit *l, unsigned r, uint64_t now_ms);

/*
 * The first reason whose window ended by now_ms with refusals suppressed:
 * its count into *n (then cleared); -1 when none.
 */
int gw_alog_limit_due(struct gw_alog_limit *l, uint64_t now_ms, uint64_t *n);

#endif /* GW_ACCESS_LOG_H */
