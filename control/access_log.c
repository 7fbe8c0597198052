/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * access_log.c - the access log's consumer: drain the workers' rings,
 * decode, escape, rate limit and write (access_log.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <systemd/sd-journal.h>

#include "access_log.h"
#include "gw_log.h"

#define GW_LOG_MODULE "access"

#define LINE_MAX_ 8192
#define SUBJECT_TEXT_MAX 512 /* longer subjects end in "..." */
#define ID_TEXT_MAX 512

struct gw_access_log {
	struct gw_cfg_access_log c; /* c.path owned */
	FILE *f;                    /* GW_CFG_ALOG_FILE */
	char **names;               /* listener names by snapshot index */
	unsigned n_names;
	struct gw_alog_ring **rings;
	unsigned n_rings;
	struct gw_alog_limit lim;
};

/* ---- the limiter ---- */

void
gw_alog_limit_init(struct gw_alog_limit *l, unsigned per_second)
{
	memset(l, 0, sizeof(*l));
	l->per_second = per_second ? per_second : GW_CFG_ALOG_REFUSALS_DEFAULT;
}

bool
gw_alog_limit_take(struct gw_alog_limit *l, unsigned r, uint64_t now_ms)
{
	if (r >= GW_ALOG_R__COUNT)
		r = GW_ALOG_R_OTHER;
	/* a new window once the old one is over and its summary was taken */
	if (now_ms - l->win_ms[r] >= 1000 && l->suppressed[r] == 0) {
		l->win_ms[r] = now_ms;
		l->used[r] = 0;
	}
	if (l->used[r] < l->per_second) {
		l->used[r]++;
		return true;
	}
	l->suppressed[r]++;
	return false;
}

int
gw_alog_limit_due(struct gw_alog_limit *l, uint64_t now_ms, uint64_t *n)
{
	for (unsigned r = 0; r < GW_ALOG_R__COUNT; r++) {
		if (l->suppressed[r] == 0 || now_ms - l->win_ms[r] < 1000)
			continue;
		*n = l->suppressed[r];
		l->suppressed[r] = 0;
		/* the summary closes the window: the next refusal opens one */
		l->win_ms[r] = now_ms - 1000;
		return (int)r;
	}
	return -1;
}

/* ---- formatting ---- */

struct out {
	char *p;
	size_t cap, len;
	bool cut;
};

static void out_put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out_put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->len >= o->cap) {
		o->cut = true;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->cut = true;
		o->len = o->cap - 1;
		return;
	}
	o->len += (size_t)n;
}

/*
 * A text value: quoted, with ", \ as \", \\, common controls as \n \r \t,
 * every other byte below 0x20 or above 0x7e as \xHH. The bytes are the
 * peer's (SNI, certificate fields): nothing passes unescaped.
 */
static void
out_quoted(struct out *o, const char *s, size_t n)
{
	out_put(o, "\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			out_put(o, "\\%c", ch);
		else if (ch == '\n')
			out_put(o, "\\n");
		else if (ch == '\r')
			out_put(o, "\\r");
		else if (ch == '\t')
			out_put(o, "\\t");
		else if (ch < 0x20 || ch > 0x7e)
			out_put(o, "\\x%02x", ch);
		else
			out_put(o, "%c", ch);
	}
	out_put(o, "\"");
}

/*
 * For JSON: the bytes as printable ASCII (\ as \\ unless keep_bs, bytes
 * outside 0x20..0x7e as \xHH), so the string is valid UTF-8 whatever the
 * peer sent. keep_bs for the subject: its RFC 2253 escapes are its own.
 */
static void
ascii_clean(const char *s, size_t n, bool keep_bs, char *dst, size_t cap)
{
	struct out o = {.p = dst, .cap = cap};

	dst[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '\\' && !keep_bs)
			out_put(&o, "\\\\");
		else if (ch < 0x20 || ch > 0x7e)
			out_put(&o, "\\x%02x", ch);
		else
			out_put(&o, "%c", ch);
	}
}

/* The subject as RFC 2253 text into buf[cap] ("" if none); "..." when cut. */
static void
subject_text(const struct gw_alog_rec *r, char *buf, size_t cap)
{
	const unsigned char *p = r->subject;
	X509_NAME *nm;
	BIO *b;
	int n;

	buf[0] = '\0';
	if (r->flags & GW_ALOG_F_SUBJECT_CUT) {
		snprintf(buf, cap, "...");
		return;
	}
	if (r->subject_len == 0 || (nm = d2i_X509_NAME(NULL, &p, r->subject_len)) == NULL) {
		ERR_clear_error();
		return;
	}
	b = BIO_new(BIO_s_mem());
	/* RFC 2253 escapes ",+\"\\<>;" and, with ESC_MSB, bytes above 0x7f */
	if (b != NULL && X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_read(b, buf, (int)cap - 1);
		if (n < 0)
			n = 0;
		buf[n] = '\0';
		if (BIO_pending(b) > 0 && cap > 4)
			memcpy(buf + cap - 4, "...", 4); /* too long: the log only */
	}
	BIO_free(b);
	X509_NAME_free(nm);
	ERR_clear_error();
}

/*
 * The client's SPIFFE ID: its first spiffe:// URI SAN (as the PROXY v2
 * header's client ID and the allow rules read it). Raw bytes and length.
 */
static size_t
spiffe_text(const struct gw_alog_rec *r, char *buf, size_t cap)
{
	const unsigned char *p = r->san;
	GENERAL_NAMES *gns;
	size_t out = 0;

	buf[0] = '\0';
	if (r->flags & GW_ALOG_F_SAN_CUT) {
		snprintf(buf, cap, "...");
		return 3;
	}
	if (r->san_len == 0 || (gns = d2i_GENERAL_NAMES(NULL, &p, r->san_len)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	for (int i = 0; i < sk_GENERAL_NAME_num(gns); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gns, i);
		const unsigned char *s;
		int n;

		if (g->type != GEN_URI)
			continue;
		s = ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		n = ASN1_STRING_length(g->d.uniformResourceIdentifier);
		if (n < 9 || strncasecmp((const char *)s, "spiffe://", 9) != 0)
			continue;
		out = (size_t)n < cap - 4 ? (size_t)n : cap - 4;
		memcpy(buf, s, out);
		if ((size_t)n > out) {
			memcpy(buf + out, "...", 3); /* the log only */
			out += 3;
		}
		buf[out] = '\0';
		break;
	}
	GENERAL_NAMES_free(gns);
	return out;
}

static void
time_text(uint64_t ns, char *buf, size_t cap)
{
	time_t s = (time_t)(ns / 1000000000u);
	struct tm tm;
	char d[32];

	gmtime_r(&s, &tm);
	strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, cap, "%s.%03uZ", d, (unsigned)(ns / 1000000u % 1000u));
}

static void
addr_text(uint32_t ip, uint16_t port, char *buf, size_t cap)
{
	char a[INET_ADDRSTRLEN];
	struct in_addr in = {.s_addr = ip};

	if (ip == 0) {
		snprintf(buf, cap, "-");
		return;
	}
	inet_ntop(AF_INET, &in, a, sizeof(a));
	snprintf(buf, cap, "%s:%u", a, ntohs(port));
}

/* json_object_set_new of a string, or null when s is "" (absent). */
static int
jset(json_t *o, const char *k, const char *s)
{
	return json_object_set_new(o, k, s && s[0] ? json_string(s) : json_null());
}

int
gw_access_log_format(const struct gw_alog_rec *r, const char *listener,
	enum gw_cfg_alog_format format, char *buf, size_t cap)
{
	char when[40], client[32], up[32], subj[SUBJECT_TEXT_MAX], id[ID_TEXT_MAX], dur[32];
	const char *verdict = r->accepted ? "accepted" : "refused";
	const char *reason = r->accepted ? "-" : gw_alog_reason_name(r->reason);
	const char *end = r->accepted ? gw_alog_end_name(r->end) : "-";
	const char *sess = !r->version[0] ? "-" : r->flags & GW_ALOG_F_RESUMED ? "resumed" : "full";
	size_t sni_n = strnlen(r->sni, sizeof(r->sni)), id_n;
	struct out o = {.p = buf, .cap = cap};

	GW_ENSURE(r != NULL && buf != NULL && cap > 0, -EINVAL);
	buf[0] = '\0';
	time_text(r->end_ns, when, sizeof(when));
	addr_text(r->client_ip, r->client_port, client, sizeof(client));
	addr_text(r->upstream_ip, r->upstream_port, up, sizeof(up));
	subject_text(r, subj, sizeof(subj));
	id_n = spiffe_text(r, id, sizeof(id));
	snprintf(dur, sizeof(dur), "%" PRIu64 ".%03u", r->dur_us / 1000,
		(unsigned)(r->dur_us % 1000));
	if (listener == NULL)
		listener = "?";
	if (format == GW_CFG_ALOG_JSON) {
		char sni_c[GW_ALOG_SNI_MAX * 4 + 8], subj_c[sizeof(subj) * 2], id_c[sizeof(id) * 4];
		json_t *j = json_object();
		char *txt;
		int rc = 0;

		GW_ENSURE(j != NULL, -ENOMEM);
		ascii_clean(r->sni, sni_n, false, sni_c, sizeof(sni_c));
		if (r->flags & GW_ALOG_F_SNI_CUT)
			strncat(sni_c, "...", sizeof(sni_c) - strlen(sni_c) - 1);
		ascii_clean(subj, strlen(subj), true, subj_c, sizeof(subj_c));
		ascii_clean(id, id_n, false, id_c, sizeof(id_c));
		rc |= jset(j, "time", when);
		rc |= jset(j, "listener", listener);
		rc |= jset(j, "client", client);
		rc |= jset(j, "sni", sni_c);
		rc |= jset(j, "tls_version", r->version);
		rc |= jset(j, "cipher", r->cipher);
		rc |= jset(j, "session", sess[0] == '-' ? "" : sess);
		rc |= jset(j, "subject", subj_c);
		rc |= jset(j, "spiffe_id", id_c);
		rc |= jset(j, "verdict", verdict);
		rc |= jset(j, "reason", r->accepted ? "" : reason);
		rc |= jset(j, "upstream", r->flags & GW_ALOG_F_PROXY && r->upstream_ip ? up : "");
		rc |= jset(j, "end", r->accepted ? end : "");
		rc |= json_object_set_new(j, "bytes_in", json_integer((json_int_t)r->rx_bytes));
		rc |= json_object_set_new(j, "bytes_out", json_integer((json_int_t)r->tx_bytes));
		rc |= json_object_set_new(j, "duration_ms", json_real((double)r->dur_us / 1000.0));
		txt = rc == 0 ? json_dumps(j,
					JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))
			      : NULL;
		json_decref(j);
		GW_ENSURE(txt != NULL, -ENOMEM);
		out_put(&o, "%s", txt);
		free(txt);
	} else {
		out_put(&o, "%s listener=", when);
		out_quoted(&o, listener, strlen(listener));
		out_put(&o, " client=%s sni=", client);
		out_quoted(&o, r->sni, sni_n);
		if (r->flags & GW_ALOG_F_SNI_CUT)
			out_put(&o, "...");
		out_put(&o,
			" tls=%s cipher=%s session=%s subject=", r->version[0] ? r->version : "-",
			r->cipher[0] ? r->cipher : "-", sess);
		out_quoted(&o, subj, strlen(subj));
		out_put(&o, " spiffe_id=");
		out_quoted(&o, id, id_n);
		out_put(&o,
			" verdict=%s reason=%s upstream=%s end=%s bytes_in=%" PRIu64
			" bytes_out=%" PRIu64 " duration_ms=%s",
			verdict, reason, r->flags & GW_ALOG_F_PROXY ? up : "-", end, r->rx_bytes,
			r->tx_bytes, dur);
	}
	GW_ENSURE(!o.cut, -ENOSPC);
	return (int)o.len;
}

/* ---- the writer ---- */

static void
write_line(struct gw_access_log *al, const char *line)
{
	if (!al->c.enabled) {
		/* off: refusals only, in the gateway's own log */
		gw_log(GW_LOG_LVL_INFO, GW_LOG_MODULE, "%s", line);
		return;
	}
	switch (al->c.dest) {
	case GW_CFG_ALOG_FILE:
		if (al->f != NULL)
			fprintf(al->f, "%s\n", line);
		break;
	case GW_CFG_ALOG_JOURNAL:
		sd_journal_send("MESSAGE=%s", line, "PRIORITY=%d", LOG_INFO,
			"SYSLOG_IDENTIFIER=mtlsgw-access", NULL);
		break;
	case GW_CFG_ALOG_STDERR:
		fprintf(stderr, "%s\n", line);
		break;
	}
}

static void
write_suppressed(struct gw_access_log *al, int r, uint64_t n)
{
	char line[256], when[40];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	time_text((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, when, sizeof(when));
	if (al->c.format == GW_CFG_ALOG_JSON)
		snprintf(line, sizeof(line),
			"{\"time\":\"%s\",\"verdict\":\"refused\",\"reason\":\"%s\","
			"\"suppressed\":%" PRIu64 "}",
			when, gw_alog_reason_name((unsigned)r), n);
	else
		snprintf(line, sizeof(line),
			"%s suppressed %" PRIu64 " refusals for reason %s (more than %u a second)",
			when, n, gw_alog_reason_name((unsigned)r), al->lim.per_second);
	write_line(al, line);
}

static void
flush_due(struct gw_access_log *al, uint64_t now_ms)
{
	uint64_t n;
	int r;

	while ((r = gw_alog_limit_due(&al->lim, now_ms, &n)) >= 0)
		write_suppressed(al, r, n);
}

static void
one(struct gw_access_log *al, const struct gw_alog_rec *r, uint64_t now_ms)
{
	char line[LINE_MAX_];
	int n;

	if (r->accepted && !al->c.enabled)
		return;
	if (!r->accepted) {
		flush_due(al, now_ms); /* an ended window's summary before its successor */
		if (!gw_alog_limit_take(&al->lim, r->reason, now_ms))
			return;
	}
	n = gw_access_log_format(r, r->listener < al->n_names ? al->names[r->listener] : NULL,
		al->c.format, line, sizeof(line));
	if (n >= 0 || n == -ENOSPC) /* a cut line still says most of it */
		write_line(al, line);
}

unsigned
gw_access_log_drain(struct gw_access_log *al, uint64_t now_ms)
{
	unsigned taken = 0;

	if (al == NULL)
		return 0;
	for (unsigned i = 0; i < al->n_rings; i++) {
		const struct gw_alog_rec *r;

		/* a bounded batch per ring and call: the admin API waits meanwhile */
		for (unsigned k = 0; k < 4096 && (r = gw_alog_peek(al->rings[i])) != NULL; k++) {
			one(al, r, now_ms);
			gw_alog_pop(al->rings[i]);
			taken++;
		}
	}
	flush_due(al, now_ms);
	if (al->f != NULL)
		fflush(al->f);
	return taken;
}

static int
open_dest(const struct gw_cfg_access_log *c, FILE **f)
{
	*f = NULL;
	if (!c->enabled || c->dest != GW_CFG_ALOG_FILE)
		return 0;
	*f = fopen(c->path, "ae");
	if (*f == NULL)
		return gw_err_setf(-errno, GW_HERE, "access log %s: %s", c->path, strerror(errno));
	return 0;
}

int
gw_access_log_reopen(struct gw_access_log *al, const struct gw_cfg *cfg)
{
	struct gw_cfg_access_log c;
	FILE *f;

	GW_ENSURE(al != NULL && cfg != NULL, -EINVAL);
	c = cfg->access_log;
	c.path = NULL;
	if (cfg->access_log.path != NULL && (c.path = strdup(cfg->access_log.path)) == NULL)
		return gw_err_setf(-ENOMEM, GW_HERE, "access log: out of memory");
	if (open_dest(&c, &f) < 0) {
		free(c.path);
		return gw_err_get()->code;
	}
	if (al->f != NULL)
		fclose(al->f);
	free(al->c.path);
	al->f = f;
	al->c = c;
	if (al->lim.per_second != c.refusals_per_second)
		gw_alog_limit_init(&al->lim, c.refusals_per_second);
	return 0;
}

int
gw_access_log_create(
	const struct gw_cfg *cfg, unsigned n_rings, unsigned ring_size, struct gw_access_log **out)
{
	struct gw_access_log *al;

	GW_ENSURE(cfg != NULL && out != NULL, -EINVAL);
	al = calloc(1, sizeof(*al));
	GW_ENSURE(al != NULL, -ENOMEM);
	al->names = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof(*al->names));
	al->rings = calloc(n_rings ? n_rings : 1, sizeof(*al->rings));
	if (al->names == NULL || al->rings == NULL)
		goto nomem;
	for (; al->n_names < cfg->n_listeners; al->n_names++)
		if ((al->names[al->n_names] = strdup(cfg->listeners[al->n_names].name)) == NULL)
			goto nomem;
	for (; al->n_rings < n_rings; al->n_rings++)
		if (gw_alog_ring_create(ring_size, &al->rings[al->n_rings]) < 0)
			goto nomem;
	gw_alog_limit_init(&al->lim, cfg->access_log.refusals_per_second);
	if (gw_access_log_reopen(al, cfg) < 0) {
		int rc = gw_err_get()->code;

		gw_access_log_destroy(al);
		return rc;
	}
	*out = al;
	return 0;
nomem:
	gw_access_log_destroy(al);
	return gw_err_setf(-ENOMEM, GW_HERE, "access log: out of memory");
}

void
gw_access_log_destroy(struct gw_access_log *al)
{
	if (al == NULL)
		return;
	if (al->f != NULL)
		fclose(al->f);
	free(al->c.path);
	for (unsigned i = 0; al->names != NULL && i < al->n_names; i++)
		free(al->names[i]);
	free(al->names);
	for (unsigned i = 0; al->rings != NULL && i < al->n_rings; i++)
		gw_alog_ring_destroy(al->rings[i]);
	free(al->rings);
	free(al);
}

struct gw_alog_ring *
gw_access_log_ring(struct gw_access_log *al, unsigned i)
{
	return al != NULL && i < al->n_rings ? al->rings[i] : NULL;
}
