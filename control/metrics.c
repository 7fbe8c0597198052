/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * metrics.c - Prometheus text exposition (metrics.h): a text buffer, the
 * label escaping, the stats JSON line as counters, certificate expiry.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/objects.h>

#include "ca.h"
#include "metrics.h"

void
gw_metrics_init(struct gw_metrics *m)
{
	memset(m, 0, sizeof(*m));
}

void
gw_metrics_clear(struct gw_metrics *m)
{
	if (m == NULL)
		return;
	free(m->buf);
	for (unsigned i = 0; i < m->n_families; i++)
		free(m->families[i]);
	memset(m, 0, sizeof(*m));
}

int
gw_metrics_text(const struct gw_metrics *m, const char **text, size_t *len)
{
	if (m->oom)
		return gw_err_setf(-ENOMEM, GW_HERE, "metrics: out of memory while rendering");
	*text = m->buf ? m->buf : "";
	*len = m->len;
	return 0;
}

static void put(struct gw_metrics *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct gw_metrics *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (m->oom)
		return;
	for (;;) {
		size_t room = m->cap - m->len;

		va_start(ap, fmt);
		n = vsnprintf(m->buf ? m->buf + m->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			m->oom = true;
			return;
		}
		if ((size_t)n < room) {
			m->len += (size_t)n;
			return;
		}
		size_t cap = m->cap ? m->cap * 2 : 4096;
		while (cap - m->len <= (size_t)n)
			cap *= 2;
		char *nb = realloc(m->buf, cap);
		if (nb == NULL) {
			m->oom = true;
			return;
		}
		m->buf = nb;
		m->cap = cap;
	}
}

size_t
gw_metrics_escape(const char *v, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen == 0)
		return 0;
	for (; *v; v++) {
		const char *rep = *v == '\\'   ? "\\\\"
				  : *v == '"'  ? "\\\""
				  : *v == '\n' ? "\\n"
					       : NULL;
		size_t need = rep ? 2 : 1;

		if (o + need >= outlen)
			break; /* never half an escape */
		if (rep) {
			out[o++] = rep[0];
			out[o++] = rep[1];
		} else {
			out[o++] = *v;
		}
	}
	out[o] = '\0';
	return o;
}

void
gw_metrics_family(struct gw_metrics *m, const char *name, const char *type, const char *help)
{
	for (unsigned i = 0; i < m->n_families; i++)
		if (strcmp(m->families[i], name) == 0)
			return;
	if (m->n_families < GW_METRICS_MAX_FAMILIES) {
		if ((m->families[m->n_families] = strdup(name)) == NULL) {
			m->oom = true;
			return;
		}
		m->n_families++;
	}
	put(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
gw_metrics_sample(struct gw_metrics *m, const char *name, const char *const *labels, unsigned n,
	int64_t value)
{
	char esc[512];
	bool first = true;

	put(m, "%s", name);
	for (unsigned i = 0; i < n; i++) {
		if (labels[2 * i + 1] == NULL)
			continue;
		gw_metrics_escape(labels[2 * i + 1], esc, sizeof(esc));
		put(m, "%s%s=\"%s\"", first ? "{" : ",", labels[2 * i], esc);
		first = false;
	}
	put(m, "%s %" PRId64 "\n", first ? "" : "}", value);
}

void
gw_metrics_sample_f(
	struct gw_metrics *m, const char *name, const char *const *labels, unsigned n, double value)
{
	/* the integer writer up to the value, then the value as a float */
	size_t mark;

	gw_metrics_sample(m, name, labels, n, 0);
	if (m->oom)
		return;
	mark = m->len - 2; /* "0\n" */
	m->len = mark;
	put(m, "%.9g\n", value);
}

void
gw_metrics_simple(
	struct gw_metrics *m, const char *name, const char *type, const char *help, int64_t value)
{
	gw_metrics_family(m, name, type, help);
	gw_metrics_sample(m, name, NULL, 0, value);
}

/* A JSON key as a metric name part: [a-zA-Z0-9_] only, the rest as '_'. */
static void
name_part(const char *k, char *out, size_t len)
{
	size_t i;

	for (i = 0; k[i] && i + 1 < len; i++) {
		char c = k[i];

		out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
					 (c >= '0' && c <= '9') || c == '_'
				 ? c
				 : '_';
	}
	out[i] = '\0';
}

static const char *
group_help(const char *g)
{
	return strcmp(g, "net") == 0   ? "dataplane packet counter, summed over the workers"
	       : strcmp(g, "tcp") == 0 ? "TCP stack counter, summed over the workers"
				       : "TLS counter, summed over the workers";
}

/* Every integer member of one group object as a counter (gauges named). */
static void
render_group(struct gw_metrics *m, const char *group, json_t *o)
{
	const char *k;
	json_t *v;
	char part[96], name[160];

	json_object_foreach(o, k, v)
	{
		if (!json_is_integer(v))
			continue;
		name_part(k, part, sizeof(part));
		if (strcmp(group, "tls") == 0 &&
			(strcmp(k, "handshaking") == 0 || strcmp(k, "established") == 0)) {
			snprintf(name, sizeof(name), "mtlsgw_tls_%s", part);
			gw_metrics_simple(m, name, "gauge",
				strcmp(k, "handshaking") == 0 ? "TLS handshakes in progress now"
							      : "established TLS connections now",
				(int64_t)json_integer_value(v));
			continue;
		}
		snprintf(name, sizeof(name), "mtlsgw_%s_%s_total", group, part);
		gw_metrics_simple(
			m, name, "counter", group_help(group), (int64_t)json_integer_value(v));
	}
}

/* Names outer, workers inner: a family's samples must be contiguous. */
static void
render_per_worker(struct gw_metrics *m, json_t *arr)
{
	const char *k;
	json_t *v;

	json_object_foreach(json_array_get(arr, 0), k, v)
	{
		char part[96], name[160];
		size_t w;
		json_t *e;

		if (!json_is_integer(v))
			continue;
		name_part(k, part, sizeof(part));
		snprintf(name, sizeof(name), "mtlsgw_tls_worker_%s_total", part);
		gw_metrics_family(m, name, "counter", "TLS counter of one worker");
		json_array_foreach(arr, w, e)
		{
			json_t *x = json_object_get(e, k);
			char ws[24];

			snprintf(ws, sizeof(ws), "%zu", w);
			if (json_is_integer(x))
				gw_metrics_sample(m, name, (const char *const[]){"worker", ws}, 1,
					(int64_t)json_integer_value(x));
		}
	}
}

static void
render_ports(struct gw_metrics *m, json_t *arr)
{
	/* the device's own counters; rxq/txq/mtu are settings, not metrics */
	static const char *const counters[] = {"imissed", "ierrors", "oerrors", "rx_nombuf"};

	for (unsigned k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
		char name[96];
		size_t i;
		json_t *p;

		snprintf(name, sizeof(name), "mtlsgw_port_%s_total", counters[k]);
		json_array_foreach(arr, i, p)
		{
			json_t *v = json_object_get(p, counters[k]);

			if (!json_is_integer(v))
				continue;
			gw_metrics_family(m, name, "counter",
				"packets the port's device counted (DPDK eth stats)");
			gw_metrics_sample(m, name,
				(const char *const[]){
					"port", json_string_value(json_object_get(p, "name"))},
				1, (int64_t)json_integer_value(v));
		}
	}
}

int
gw_metrics_stats_json(struct gw_metrics *m, const char *json, size_t len)
{
	static const char *const groups[] = {"net", "tcp", "tls"};
	json_error_t je;
	json_t *o = json_loadb(json, len, 0, &je), *v;
	const char *k;

	if (!json_is_object(o)) {
		json_decref(o);
		return gw_err_setf(
			-EINVAL, GW_HERE, "metrics: the stats line is not a JSON object");
	}
	for (unsigned g = 0; g < 3; g++)
		if (json_is_object(v = json_object_get(o, groups[g])))
			render_group(m, groups[g], v);
	if (json_is_object(v = json_object_get(o, "conns"))) {
		json_t *n;

		gw_metrics_family(m, "mtlsgw_tcp_connections", "gauge",
			"TCP connections by state, summed over the workers");
		json_object_foreach(v, k, n)
		{
			if (json_is_integer(n))
				gw_metrics_sample(m, "mtlsgw_tcp_connections",
					(const char *const[]){"state", k}, 1,
					(int64_t)json_integer_value(n));
		}
	}
	if (json_is_array(v = json_object_get(json_object_get(o, "tls"), "per_worker_hs")))
		render_per_worker(m, v);
	if (json_is_integer(v = json_object_get(o, "workers")))
		gw_metrics_simple(m, "mtlsgw_workers", "gauge", "dataplane workers",
			(int64_t)json_integer_value(v));
	if (json_is_integer(v = json_object_get(o, "mbufs_in_use")))
		gw_metrics_simple(m, "mtlsgw_mbufs_in_use", "gauge",
			"packet buffers in use (rings, TCP, caches)",
			(int64_t)json_integer_value(v));
	if (json_is_integer(v = json_object_get(o, "mbufs_total")))
		gw_metrics_simple(m, "mtlsgw_mbufs", "gauge", "packet buffers in the pool",
			(int64_t)json_integer_value(v));
	if (json_is_array(v = json_object_get(o, "ports")))
		render_ports(m, v);
	json_decref(o);
	return 0;
}

void
gw_metrics_cert_name(X509 *x, char *out, size_t len)
{
	const X509_NAME *subj = X509_get_subject_name(x);
	int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);

	if (len == 0)
		return;
	if (idx >= 0) {
		const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
		size_t n = (size_t)ASN1_STRING_length(s);

		if (n > len - 1)
			n = len - 1;
		memcpy(out, ASN1_STRING_get0_data(s), n);
		out[n] = '\0';
	} else {
		X509_NAME_oneline(subj, out, (int)len);
	}
}

void
gw_metrics_cert(struct gw_metrics *m, const char *kind, const char *scope_key,
	const char *scope_val, X509 *x, time_t now)
{
	char cn[256], fp[60];

	if (x == NULL)
		return;
	gw_metrics_cert_name(x, cn, sizeof(cn));
	gw_ca_fingerprint(x, fp);
	gw_metrics_family(m, "mtlsgw_cert_expiry_seconds", "gauge",
		"seconds until the certificate's notAfter (negative: expired)");
	gw_metrics_sample(m, "mtlsgw_cert_expiry_seconds",
		(const char *const[]){
			"kind", kind, "name", cn, scope_key, scope_val, "fingerprint", fp},
		4, (int64_t)(gw_ca_not_after(x) - now));
}
