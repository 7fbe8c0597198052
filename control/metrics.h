/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * metrics.h - Prometheus text exposition (format 0.0.4) for GET /v1/metrics
 * (docs/architecture.md "Metrics", docs/operations.md).
 *
 * A growable text buffer and the few writers the gateway needs:
 *  - families: "# HELP" / "# TYPE" once per metric name;
 *  - samples with labels, values escaped as the format says (\\, \", \n);
 *  - the counters (gw_counters.h), rendered from the same groups as the
 *    stats JSON line, never through it: every member of a group becomes
 *    mtlsgw_<group>_<name>_total (counters) or mtlsgw_<group>_<name>
 *    (gauges: tls handshaking / established); a labelled group one gauge
 *    family (conns: mtlsgw_tcp_connections{state=...}); a group's
 *    per-worker members mtlsgw_<group>_worker_<name>_total{worker=...};
 *    ports' device counters mtlsgw_port_<name>_total{port=...}; each
 *    worker's busy cycles as mtlsgw_worker_busy_seconds_total{worker=...};
 *    histograms (struct gw_ctr_hist: mtlsgw_tls_handshake_seconds) as
 *    cumulative <name>_bucket{<label>, le} ending in le="+Inf", <name>_sum
 *    in seconds and <name>_count;
 *  - certificate expiry: mtlsgw_cert_expiry_seconds{kind, name, <scope>,
 *    fingerprint} = notAfter - now (negative once expired);
 *  - mtlsgw_build_info{version, openssl, dpdk} 1.
 *
 * No knowledge of the dataplane: struct gw_ctr_snap (common/gw_counters.h)
 * is the interface, so this module and its tests need no DPDK. Not
 * thread-safe: one struct gw_metrics per thread (control's). Writers never
 * fail individually: a failed allocation marks the text incomplete and
 * gw_metrics_text reports it.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "gw_counters.h"
#include "gw_err.h"

#define GW_METRICS_MAX_FAMILIES 512

struct gw_metrics {
	char *buf; /* NUL-terminated text so far (NULL until the first write) */
	size_t len, cap;
	bool oom; /* a write failed for memory: the text is incomplete */
	/* names whose HELP/TYPE were written, so each family has them once */
	char *families[GW_METRICS_MAX_FAMILIES];
	unsigned n_families;
};

void gw_metrics_init(struct gw_metrics *m);
void gw_metrics_clear(struct gw_metrics *m);

/* The text and its length; -ENOMEM if any write failed. */
GW_MUST_CHECK int gw_metrics_text(const struct gw_metrics *m, const char **text, size_t *len);

/*
 * Escape a label value into out (at most outlen bytes with the NUL):
 * backslash, double quote and newline as \\, \" and \n. Truncates on a
 * character boundary of the escaping; returns the length written.
 */
size_t gw_metrics_escape(const char *v, char *out, size_t outlen);

/*
 * "# HELP name help" and "# TYPE name type" (counter, gauge, histogram) unless
 * name had them already.
 */
void gw_metrics_family(struct gw_metrics *m, const char *name, const char *type, const char *help);

/*
 * One sample: name{k1="v1",...} value. labels are n key/value pairs
 * (labels[2i] the key, labels[2i+1] the value, escaped here); NULL values
 * are left out.
 */
void gw_metrics_sample(struct gw_metrics *m, const char *name, const char *const *labels,
	unsigned n, int64_t value);

/* The same with a float value (seconds), printed with 9 significant digits. */
void gw_metrics_sample_f(struct gw_metrics *m, const char *name, const char *const *labels,
	unsigned n, double value);

/* Family and sample in one call, without labels. */
void gw_metrics_simple(
	struct gw_metrics *m, const char *name, const char *type, const char *help, int64_t value);

/*
 * Every group, port and gauge of s (see above), summed over the workers.
 * s is only read; the caller keeps it.
 */
void gw_metrics_counters(struct gw_metrics *m, const struct gw_ctr_snap *s);

/* mtlsgw_build_info{version, openssl, dpdk} 1 (the caller knows the versions). */
void gw_metrics_build_info(
	struct gw_metrics *m, const char *version, const char *openssl, const char *dpdk);

/* x's subject CN, else its one-line subject, into out[len]. */
void gw_metrics_cert_name(X509 *x, char *out, size_t len);

/*
 * mtlsgw_cert_expiry_seconds for x: kind ("anchor", "issuer", "identity",
 * "root", "cross"), name (the subject CN, else the subject line), the
 * scope label (e.g. "listener" / "backend") with its value, and the SHA-1
 * fingerprint (a root and its cross-signed copy share a subject).
 */
void gw_metrics_cert(struct gw_metrics *m, const char *kind, const char *scope_key,
	const char *scope_val, X509 *x, time_t now);

#endif /* GW_METRICS_H */
