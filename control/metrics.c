/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * metrics.c - Prometheus text exposition (metrics.h): a text buffer, the
 * label escaping, the counter groups (gw_counters.h), certificate expiry.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A counter name as a metric name part: [a-zA-Z0-9_] only, the rest as '_'. */
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

/* mtlsgw_<group>[_<infix>]_<name>[_total] into out. */
static void
metric_name(char *out, size_t len, const struct gw_ctr_group *g, const char *infix,
	const struct gw_ctr_desc *d)
{
	char gp[64], np[96];

	name_part(g->name, gp, sizeof(gp));
	name_part(d->name, np, sizeof(np));
	snprintf(out, len, "mtlsgw_%s%s%s_%s%s", gp, infix ? "_" : "", infix ? infix : "", np,
		d->kind == GW_CTR_GAUGE ? "" : "_total");
}

/* One group: its sums, or one labelled family; then its per-worker members. */
static void
render_group(struct gw_metrics *m, const struct gw_ctr_snap *s, const struct gw_ctr_vals *v)
{
	const struct gw_ctr_group *g = v->g;
	char name[192];

	if (g->label != NULL) {
		gw_metrics_family(m, g->family, "gauge", g->help);
		for (unsigned i = 0; i < g->n; i++)
			if (g->d[i].name != NULL)
				gw_metrics_sample(m, g->family,
					(const char *const[]){g->label, g->d[i].name}, 1,
					(int64_t)v->sum[i]);
		return;
	}
	for (unsigned i = 0; i < g->n; i++) {
		const struct gw_ctr_desc *d = &g->d[i];

		if (d->name == NULL)
			continue;
		metric_name(name, sizeof(name), g, NULL, d);
		gw_metrics_simple(m, name, d->kind == GW_CTR_GAUGE ? "gauge" : "counter",
			d->help ? d->help : g->help, (int64_t)v->sum[i]);
	}
	/* names outer, workers inner: a family's samples must be contiguous */
	for (const char *const *k = g->worker_keys; k != NULL && *k != NULL; k++) {
		int i = gw_ctr_find(g, *k);

		if (i < 0)
			continue;
		metric_name(name, sizeof(name), g, "worker",
			&(struct gw_ctr_desc){g->d[i].name, GW_CTR_COUNTER, NULL});
		gw_metrics_family(m, name, "counter", g->worker_help ? g->worker_help : g->help);
		for (unsigned w = 0; w < s->n_workers; w++) {
			char ws[24];

			snprintf(ws, sizeof(ws), "%u", w);
			gw_metrics_sample(m, name, (const char *const[]){"worker", ws}, 1,
				(int64_t)v->w[(size_t)w * g->n + (size_t)i]);
		}
	}
}

/* An le label value: the bound as the shortest decimal that reads back. */
static void
le_str(double b, char *out, size_t len)
{
	snprintf(out, len, "%.9g", b);
}

/*
 * One histogram family: per series cumulative _bucket{label,le} (ending
 * with le="+Inf", which equals _count), _sum in seconds, _count. The
 * format wants each series' lines together and the buckets in order.
 */
static void
render_hist(struct gw_metrics *m, const struct gw_ctr_hist *h, uint64_t tsc_hz)
{
	const struct gw_ctr_hist_desc *d = h->d;
	char bname[160], sname[160], cname[160], le[32];

	snprintf(bname, sizeof(bname), "%s_bucket", d->name);
	snprintf(sname, sizeof(sname), "%s_sum", d->name);
	snprintf(cname, sizeof(cname), "%s_count", d->name);
	gw_metrics_family(m, d->name, "histogram", d->help);
	for (unsigned i = 0; i < h->n; i++) {
		const struct gw_ctr_hist_series *se = &h->s[i];
		uint64_t cum = 0;

		for (unsigned k = 0; k <= d->n_bounds; k++) {
			cum += se->b[k];
			if (k < d->n_bounds)
				le_str(d->bounds[k], le, sizeof(le));
			else
				snprintf(le, sizeof(le), "+Inf");
			gw_metrics_sample(m, bname,
				(const char *const[]){d->label, se->value, "le", le}, 2,
				(int64_t)cum);
		}
		gw_metrics_sample_f(m, sname, (const char *const[]){d->label, se->value}, 1,
			tsc_hz ? (double)se->sum_ticks / (double)tsc_hz : 0.0);
		gw_metrics_sample(
			m, cname, (const char *const[]){d->label, se->value}, 1, (int64_t)cum);
	}
}

void
gw_metrics_counters(struct gw_metrics *m, const struct gw_ctr_snap *s)
{
	const struct gw_ctr_group *pg = s->port_group;

	for (unsigned i = 0; i < s->n_groups; i++)
		render_group(m, s, &s->groups[i]);
	gw_metrics_simple(m, "mtlsgw_workers", "gauge", "dataplane workers", s->n_workers);
	gw_metrics_simple(m, "mtlsgw_mbufs_in_use", "gauge",
		"packet buffers in use (rings, TCP, caches)", (int64_t)s->mbufs_in_use);
	gw_metrics_simple(
		m, "mtlsgw_mbufs", "gauge", "packet buffers in the pool", (int64_t)s->mbufs_total);
	gw_metrics_family(m, "mtlsgw_worker_busy_seconds_total", "counter",
		"seconds the worker spent in loop iterations that did work");
	for (unsigned w = 0; s->tsc_hz != 0 && w < s->n_workers; w++) {
		char ws[24];

		snprintf(ws, sizeof(ws), "%u", w);
		gw_metrics_sample_f(m, "mtlsgw_worker_busy_seconds_total",
			(const char *const[]){"worker", ws}, 1,
			(double)s->busy_cycles[w] / (double)s->tsc_hz);
	}
	/* the device's own counters, one family per counter, one sample per port */
	for (unsigned k = 0; pg != NULL && k < pg->n; k++) {
		char name[192];

		if (pg->d[k].name == NULL)
			continue;
		metric_name(name, sizeof(name), pg, NULL, &pg->d[k]);
		gw_metrics_family(m, name, "counter", pg->d[k].help ? pg->d[k].help : pg->help);
		for (unsigned i = 0; i < s->n_ports; i++)
			gw_metrics_sample(m, name, (const char *const[]){"port", s->ports[i].name},
				1, (int64_t)s->ports[i].v[k]);
	}
	for (unsigned i = 0; i < s->n_hists; i++)
		render_hist(m, &s->hists[i], s->tsc_hz);
	for (unsigned i = 0; i < s->n_tables; i++) {
		const struct gw_ctr_table *t = &s->tables[i];

		gw_metrics_family(m, t->d->name, "counter", t->d->help);
		for (unsigned r = 0; r < t->n; r++)
			for (unsigned c = 0; c < t->d->n_cols; c++)
				gw_metrics_sample(m, t->d->name,
					(const char *const[]){t->d->row_label, t->r[r].value,
						t->d->col_label, t->d->cols[c]},
					2, (int64_t)t->r[r].v[c]);
	}
}

void
gw_metrics_build_info(
	struct gw_metrics *m, const char *version, const char *openssl, const char *dpdk)
{
	gw_metrics_family(m, "mtlsgw_build_info", "gauge",
		"always 1: the labels say which mtlsgw, OpenSSL and DPDK are running");
	gw_metrics_sample(m, "mtlsgw_build_info",
		(const char *const[]){"version", version, "openssl", openssl, "dpdk", dpdk}, 3, 1);
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
	} else if (X509_NAME_oneline(subj, out, (int)len) == NULL) {
		snprintf(out, len, "?"); /* a label value, never garbage */
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
