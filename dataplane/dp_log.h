/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_log.h - logging on the dataplane side: one rte_log type per module,
 * named gw.<module> (gw.dp, gw.tls, ...), and one macro with levels. The
 * control side has its own (common/gw_log.h); the dataplane logs through
 * the EAL so --log-level=gw.*:debug (gw_dp_params.verbose) and the EAL's
 * log stream apply to it.
 *
 * In the module's .c, once:   GW_DP_LOG_REGISTER(tls);
 * then:                       GW_DP_LOG(ERR, tls, "lcore %u: ...", id);
 * Levels are rte_log's without the prefix (EMERG ... DEBUG). Each call is
 * one line: the macro adds the "mtlsgw: " prefix and the newline.
 *
 * Never on the packet path (STYLE.md: counters, not logs); anything a peer
 * can trigger is rate-limited by the caller. Never a key, PIN, ticket or
 * raw handshake byte. Thread-safe (rte_log).
 */
#ifndef GW_DP_LOG_H
#define GW_DP_LOG_H

#include <rte_log.h>

/*
 * Define the log type variable gw_<mod>_logtype and register "gw.<mod>"
 * at NOTICE when the program starts. (RTE_LOG_REGISTER_SUFFIX would name
 * it after RTE_LOG_DEFAULT_LOGTYPE, which only DPDK's own build defines.)
 */
#define GW_DP_LOG_REGISTER(mod) RTE_LOG_REGISTER(gw_##mod##_logtype, gw.mod, NOTICE)

/* Declared by GW_DP_LOG_REGISTER in the module's one .c file. */
#define GW_DP_LOG_EXTERN(mod) extern int gw_##mod##_logtype

#define GW_DP_LOG(level, mod, fmt, ...) \
	rte_log(RTE_LOG_##level, gw_##mod##_logtype, "mtlsgw: " fmt "\n", ##__VA_ARGS__)

#endif /* GW_DP_LOG_H */
