/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * admin.c - the admin API on libmicrohttpd (admin.h): a unix socket made
 * here and handed to MHD (MHD_OPTION_LISTEN_SOCKET), and the optional
 * metrics port, a TCP socket made here and handed to a second MHD daemon
 * that only knows GET /metrics; both driven from the control thread with
 * select() + MHD_run_from_select() so handlers never race the control
 * thread's use of the CA and the config.
 */
#include <errno.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "admin.h"
#include "gw_duration.h"
#define GW_LOG_MODULE "admin"
#include "gw_log.h"

/*
 * libmicrohttpd's own messages for one daemon (a peer that hangs up in the
 * middle of a request, the connection limit reached), rate limited: the
 * metrics port faces the network, and a peer must not be able to flood the
 * log through it (as for every peer-triggered message).
 */
#define MHD_LOG_PER_S 5
struct mhd_log {
	const char *who;          /* "admin socket", "metrics port" */
	time_t second;            /* CLOCK_MONOTONIC second of the window */
	unsigned lines;           /* logged in that second */
	unsigned long suppressed; /* dropped since the last summary */
};

struct gw_admin {
	struct MHD_Daemon *d;  /* the API on the unix socket; NULL: none */
	struct MHD_Daemon *md; /* the metrics port; NULL: none */
	struct mhd_log d_log, md_log;
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct gw_ca *ca;
	struct gw_admin_ops ops;
	size_t max_body;
	uid_t owner;
};

/* One request's body, gathered across the handler's calls. */
struct req_body {
	char *buf;
	size_t len;
	bool too_big;
};

/* ---- parsers ------------------------------------------------------------------ */

bool
gw_admin_parse_duration(const char *s, uint64_t *out)
{
	uint64_t v;

	/* the config's syntax; nothing issues for more than ~100 years, which
	 * keeps time_t arithmetic on the result safe */
	if (gw_duration_parse(s, &v) < 0 || v > 100ull * 365 * 86400)
		return false;
	*out = v;
	return true;
}

static int perr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
perr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return gw_err_setf(-EINVAL, GW_HERE, "%s", err);
}

/* Load an object strictly: valid JSON, one object, no duplicate keys. */
static int
load_object(const char *body, size_t len, json_t **out, char *err, size_t errlen)
{
	json_error_t je;

	if (body == NULL || len == 0)
		return perr(err, errlen, "empty body: expected a JSON object");
	*out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (*out == NULL)
		return perr(err, errlen, "bad JSON at line %d column %d: %s", je.line, je.column,
			je.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return perr(err, errlen, "expected a JSON object");
	}
	return 0;
}

/* Every key of o must be in allowed (NULL-terminated). */
static int
only_keys(json_t *o, const char *const *allowed, const char *where, char *err, size_t errlen)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		bool ok = false;

		for (unsigned i = 0; allowed[i] && !ok; i++)
			ok = strcmp(k, allowed[i]) == 0;
		if (!ok)
			return perr(err, errlen, "unknown field '%.64s'%s", k, where);
	}
	return 0;
}

static int
get_str(json_t *o, const char *key, bool required, char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL) {
		if (required)
			return perr(err, errlen, "missing field '%s'", key);
		return 0;
	}
	if (!json_is_string(v))
		return perr(err, errlen, "field '%s': expected a string", key);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return perr(err, errlen, "field '%s': contains a NUL byte", key);
	*out = strdup(json_string_value(v));
	return *out ? 0 : gw_err_set(-ENOMEM, GW_HERE);
}

static int
get_bool(json_t *o, const char *key, bool *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return perr(err, errlen, "field '%s': expected true or false", key);
	*out = json_is_true(v);
	return 0;
}

void
gw_admin_leaf_req_clear(struct gw_admin_leaf_req *r)
{
	if (r == NULL)
		return;
	free(r->csr_pem);
	free(r->spiffe_id);
	memset(r, 0, sizeof(*r));
}

int
gw_admin_parse_leaf(
	const char *body, size_t len, struct gw_admin_leaf_req *out, char *err, size_t errlen)
{
	static const char *const keys[] = {"CSR", "SpiffeID", "TTL", NULL};
	json_t *o = NULL, *ttl;
	int rc;

	memset(out, 0, sizeof(*out));
	GW_GUARD(load_object(body, len, &o, err, errlen));
	if ((rc = only_keys(o, keys, "; expected CSR, SpiffeID, TTL", err, errlen)) < 0 ||
		(rc = get_str(o, "CSR", true, &out->csr_pem, err, errlen)) < 0 ||
		(rc = get_str(o, "SpiffeID", true, &out->spiffe_id, err, errlen)) < 0)
		goto fail;
	ttl = json_object_get(o, "TTL");
	if (ttl && json_is_integer(ttl)) {
		json_int_t v = json_integer_value(ttl);

		if (v <= 0 || v > 100ll * 365 * 86400) {
			rc = perr(err, errlen,
				"field 'TTL': %" JSON_INTEGER_FORMAT " seconds is out of range", v);
			goto fail;
		}
		out->ttl_s = (uint64_t)v;
	} else if (ttl && (!json_is_string(ttl) ||
				  !gw_admin_parse_duration(json_string_value(ttl), &out->ttl_s))) {
		rc = perr(err, errlen,
			"field 'TTL': expected a duration like \"24h\" (s, m, h, d, y) or "
			"a JSON number of seconds");
		goto fail;
	}
	if (strncmp(out->csr_pem, "-----BEGIN CERTIFICATE REQUEST-----", 35) != 0 &&
		strncmp(out->csr_pem, "-----BEGIN NEW CERTIFICATE REQUEST-----", 39) != 0) {
		rc = perr(err, errlen, "field 'CSR': expected a PEM certificate request");
		goto fail;
	}
	json_decref(o);
	return 0;
fail:
	json_decref(o);
	gw_admin_leaf_req_clear(out);
	return rc;
}

void
gw_admin_ca_put_clear(struct gw_admin_ca_put *r)
{
	if (r == NULL)
		return;
	free(r->provider);
	free(r->enabled);
	memset(r, 0, sizeof(*r));
}

int
gw_admin_parse_ca_put(
	const char *body, size_t len, struct gw_admin_ca_put *out, char *err, size_t errlen)
{
	static const char *const keys[] = {"Provider", "Config", NULL};
	static const char *const ckeys[] = {"EnabledBackend", "Force", NULL};
	json_t *o = NULL, *c;
	int rc;

	memset(out, 0, sizeof(*out));
	GW_GUARD(load_object(body, len, &o, err, errlen));
	if ((rc = only_keys(o, keys, "; expected Provider, Config", err, errlen)) < 0 ||
		(rc = get_str(o, "Provider", false, &out->provider, err, errlen)) < 0)
		goto fail;
	c = json_object_get(o, "Config");
	if (!json_is_object(c)) {
		rc = perr(err, errlen, "field 'Config': expected an object with EnabledBackend");
		goto fail;
	}
	if ((rc = only_keys(c, ckeys, " in Config; expected EnabledBackend, Force", err, errlen)) <
			0 ||
		(rc = get_str(c, "EnabledBackend", true, &out->enabled, err, errlen)) < 0 ||
		(rc = get_bool(c, "Force", &out->force, err, errlen)) < 0)
		goto fail;
	json_decref(o);
	return 0;
fail:
	json_decref(o);
	gw_admin_ca_put_clear(out);
	return rc;
}

int
gw_admin_parse_reload(const char *body, size_t len, bool *force, char *err, size_t errlen)
{
	static const char *const keys[] = {"Force", NULL};
	json_t *o = NULL;
	int rc;

	*force = false;
	if (len == 0)
		return 0;
	GW_GUARD(load_object(body, len, &o, err, errlen));
	if ((rc = only_keys(o, keys, "; expected Force", err, errlen)) == 0)
		rc = get_bool(o, "Force", force, err, errlen);
	json_decref(o);
	return rc;
}

/* ---- responses ---------------------------------------------------------------- */

static enum MHD_Result
send_json(struct MHD_Connection *c, unsigned status, json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	struct MHD_Response *r;
	enum MHD_Result ret;

	json_decref(o);
	if (s == NULL)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(s);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
send_err(struct MHD_Connection *c, unsigned status, const char *msg)
{
	return send_json(c, status, json_pack("{s:s}", "error", msg));
}

/* 409 for a rotation rule, 400 for a bad argument, else 500. */
static unsigned
rc_status(int rc)
{
	return rc == -GW_E_CONFIG               ? MHD_HTTP_CONFLICT
	       : rc == -ENOENT || rc == -EINVAL ? MHD_HTTP_BAD_REQUEST
						: MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* rc_status(rc); the message is the thread's error. */
static enum MHD_Result
send_rc(struct MHD_Connection *c, int rc)
{
	return send_err(c, rc_status(rc), gw_err_msg());
}

static void
time_str(time_t t, char out[32])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "?");
}

static void
colon_hex(const unsigned char *b, size_t n, char *out, size_t len)
{
	out[0] = '\0';
	for (size_t i = 0; i < n && 3 * i + 3 <= len; i++)
		snprintf(out + 3 * i, 4, "%02x%s", b[i], i + 1 < n && 3 * i + 6 <= len ? ":" : "");
}

static void
serial_str(X509 *x, char *out, size_t len)
{
	const ASN1_INTEGER *s = X509_get0_serialNumber(x);

	colon_hex(ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s), out, len);
}

static json_t *
pem_str(X509 *x)
{
	char *p = gw_ca_pem(x);
	json_t *j = p ? json_string(p) : json_null();

	free(p);
	return j;
}

/* One Roots[] entry, Consul's fields first. */
static json_t *
root_json(const struct gw_ca *ca, const struct gw_ca_info *in)
{
	char id[60], serial[130], ski[130] = "", nb[32], na[32];
	const ASN1_OCTET_STRING *k = X509_get0_subject_key_id(in->root);
	json_t *o, *inter = json_array();
	time_t now = gw_ca_now(ca);

	gw_ca_fingerprint(in->root, id);
	serial_str(in->root, serial, sizeof(serial));
	if (k)
		colon_hex(
			ASN1_STRING_get0_data(k), (size_t)ASN1_STRING_length(k), ski, sizeof(ski));
	time_str(gw_ca_not_before(in->root), nb);
	time_str(gw_ca_not_after(in->root), na);
	if (in->issuer)
		json_array_append_new(inter, pem_str(in->issuer));
	if (in->cross)
		json_array_append_new(inter, pem_str(in->cross));
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:b,s:s,s:b,s:I}", "ID", id, "Name",
		in->name, "SerialNumber", serial, "SigningKeyID", ski, "NotBefore", nb, "NotAfter",
		na, "RootCert", pem_str(in->root), "IntermediateCerts",
		json_array_size(inter) ? inter : json_null(), "Active", in->active, "Type",
		in->type == GW_CA_BUILTIN    ? "builtin"
		: in->type == GW_CA_PROVIDED ? "provided"
					     : "cfssl",
		"Expired", in->expired, "ExpiresInSeconds",
		(json_int_t)(gw_ca_not_after(in->root) - now));
	if (!json_array_size(inter))
		json_decref(inter);
	return o;
}

static enum MHD_Result
get_roots(struct gw_admin *a, struct MHD_Connection *c)
{
	json_t *roots = json_array(), *o;
	const char *active = "";
	char id[60];

	for (unsigned i = 0; i < gw_ca_n_backends(a->ca); i++) {
		struct gw_ca_info in;

		if (gw_ca_backend_info(a->ca, i, &in) < 0)
			continue;
		if (in.active) {
			gw_ca_fingerprint(in.root, id);
			active = id;
		}
		json_array_append_new(roots, root_json(a->ca, &in));
	}
	o = json_pack("{s:s,s:s,s:o}", "ActiveRootID", active, "TrustDomain",
		gw_ca_trust_domain(a->ca), "Roots", roots);
	return send_json(c, MHD_HTTP_OK, o);
}

static const char *
type_of(const struct gw_ca *ca, const char *name)
{
	for (unsigned i = 0; i < gw_ca_n_backends(ca); i++) {
		struct gw_ca_info in;

		if (gw_ca_backend_info(ca, i, &in) == 0 && strcmp(in.name, name) == 0)
			return in.type == GW_CA_BUILTIN    ? "builtin"
			       : in.type == GW_CA_PROVIDED ? "provided"
							   : "cfssl";
	}
	return NULL;
}

static enum MHD_Result
get_config(struct gw_admin *a, struct MHD_Connection *c)
{
	json_t *bs = json_array();
	const char *en = gw_ca_enabled(a->ca);

	for (unsigned i = 0; i < gw_ca_n_backends(a->ca); i++) {
		struct gw_ca_info in;

		if (gw_ca_backend_info(a->ca, i, &in) == 0)
			json_array_append_new(bs, json_pack("{s:s,s:s}", "Name", in.name, "Type",
							  type_of(a->ca, in.name)));
	}
	return send_json(c, MHD_HTTP_OK,
		json_pack("{s:s?,s:{s:s?,s:s,s:o}}", "Provider", en ? type_of(a->ca, en) : NULL,
			"Config", "EnabledBackend", en, "TrustDomain", gw_ca_trust_domain(a->ca),
			"Backends", bs));
}

static enum MHD_Result
put_config(struct gw_admin *a, struct MHD_Connection *c, const struct req_body *b)
{
	struct gw_admin_ca_put p;
	char err[256];
	const char *t;
	int rc;

	if (gw_admin_parse_ca_put(b->buf, b->len, &p, err, sizeof(err)) < 0)
		return send_err(c, MHD_HTTP_BAD_REQUEST, err);
	t = type_of(a->ca, p.enabled);
	if (t == NULL) {
		snprintf(err, sizeof(err),
			"Config.EnabledBackend: no backend named '%.64s' (add it to the config "
			"file and reload first: rotation step 1)",
			p.enabled);
		gw_admin_ca_put_clear(&p);
		return send_err(c, MHD_HTTP_BAD_REQUEST, err);
	}
	if (p.provider && strcmp(p.provider, t) != 0) {
		snprintf(err, sizeof(err),
			"Provider '%.32s' does not match backend %.64s of type %s", p.provider,
			p.enabled, t);
		gw_admin_ca_put_clear(&p);
		return send_err(c, MHD_HTTP_BAD_REQUEST, err);
	}
	if (a->ops.ca_enable == NULL) {
		gw_admin_ca_put_clear(&p);
		return send_err(c, MHD_HTTP_NOT_IMPLEMENTED, "this process cannot switch backends");
	}
	gw_err_clear();
	rc = a->ops.ca_enable(a->ops.arg, p.enabled, p.force);
	gw_admin_ca_put_clear(&p);
	if (rc < 0)
		return send_rc(c, rc);
	return get_config(a, c);
}

static enum MHD_Result
post_leaf(struct gw_admin *a, struct MHD_Connection *c, const struct req_body *b)
{
	struct gw_admin_leaf_req p;
	char err[256], serial[130], na[32];
	BIO *bio;
	X509_REQ *csr;
	X509 *x = NULL;
	STACK_OF(X509) *chain = NULL;
	json_t *inter;
	int rc;

	if (gw_admin_parse_leaf(b->buf, b->len, &p, err, sizeof(err)) < 0)
		return send_err(c, MHD_HTTP_BAD_REQUEST, err);
	bio = BIO_new_mem_buf(p.csr_pem, -1);
	csr = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (csr == NULL) {
		gw_admin_leaf_req_clear(&p);
		return send_err(c, MHD_HTTP_BAD_REQUEST, "field 'CSR': not a readable PEM CSR");
	}
	gw_err_clear();
	rc = gw_ca_sign(a->ca,
		&(struct gw_ca_leaf_req){.csr = csr,
			.spiffe_id = p.spiffe_id,
			.ttl_s = p.ttl_s,
			.kind = GW_STATE_KIND_CLIENT},
		&x, &chain);
	X509_REQ_free(csr);
	if (rc < 0) {
		gw_admin_leaf_req_clear(&p);
		return send_rc(c, rc);
	}
	inter = json_array();
	for (int i = 0; i < sk_X509_num(chain); i++)
		json_array_append_new(inter, pem_str(sk_X509_value(chain, i)));
	serial_str(x, serial, sizeof(serial));
	time_str(gw_ca_not_after(x), na);
	rc = send_json(c, MHD_HTTP_OK,
		json_pack("{s:s,s:s,s:o,s:o,s:s,s:s}", "SerialNumber", serial, "SpiffeID",
			p.spiffe_id, "CertPEM", pem_str(x), "IntermediatePEMs", inter, "NotAfter",
			na, "Backend", gw_ca_enabled(a->ca)));
	X509_free(x);
	sk_X509_pop_free(chain, X509_free);
	gw_admin_leaf_req_clear(&p);
	return rc;
}

static void
cert_entry(json_t *arr, const char *backend, const char *what, X509 *x, time_t now)
{
	char na[32];

	if (x == NULL)
		return;
	time_str(gw_ca_not_after(x), na);
	json_array_append_new(arr,
		json_pack("{s:s,s:s,s:s,s:I}", "Backend", backend, "Certificate", what, "NotAfter",
			na, "ExpiresInSeconds", (json_int_t)(gw_ca_not_after(x) - now)));
}

static enum MHD_Result
get_status(struct gw_admin *a, struct MHD_Connection *c)
{
	json_t *o = json_object();
	int rc;

	if (a->ops.status && (rc = a->ops.status(a->ops.arg, o)) < 0) {
		json_decref(o);
		return send_rc(c, rc);
	}
	if (a->ca) {
		json_t *certs = json_array();
		time_t now = gw_ca_now(a->ca);

		for (unsigned i = 0; i < gw_ca_n_backends(a->ca); i++) {
			struct gw_ca_info in;

			if (gw_ca_backend_info(a->ca, i, &in) < 0)
				continue;
			cert_entry(certs, in.name, "root", in.root, now);
			cert_entry(certs, in.name, "issuer", in.issuer, now);
			cert_entry(certs, in.name, "cross-signed root", in.cross, now);
		}
		json_object_set_new(o, "CA",
			json_pack("{s:s,s:s?,s:o}", "TrustDomain", gw_ca_trust_domain(a->ca),
				"EnabledBackend", gw_ca_enabled(a->ca), "Certificates", certs));
	}
	return send_json(c, MHD_HTTP_OK, o);
}

/* GET /v1/cluster: the status's Cluster object (ops->status fills it when the gateway is in a fleet). */
static enum MHD_Result
get_cluster(struct gw_admin *a, struct MHD_Connection *c)
{
	json_t *o = json_object(), *cl;
	int rc;

	if (a->ops.status && (rc = a->ops.status(a->ops.arg, o)) < 0) {
		json_decref(o);
		return send_rc(c, rc);
	}
	cl = json_object_get(o, "Cluster");
	if (cl == NULL) {
		json_decref(o);
		return send_err(
			c, MHD_HTTP_NOT_FOUND, "no cluster: section in this gateway's config");
	}
	json_incref(cl);
	json_decref(o);
	return send_json(c, MHD_HTTP_OK, cl);
}

static enum MHD_Result
post_reload(struct gw_admin *a, struct MHD_Connection *c, const struct req_body *b)
{
	const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
	struct gw_admin_reload r = {
		.source = ua && strncmp(ua, "mtlsgw-ctl", 10) == 0 ? "mtlsgw-ctl" : "admin API"};
	char err[256];
	int rc;

	if (gw_admin_parse_reload(b->buf, b->len, &r.force, err, sizeof(err)) < 0)
		return send_err(c, MHD_HTTP_BAD_REQUEST, err);
	if (a->ops.reload == NULL)
		return send_err(c, MHD_HTTP_NOT_IMPLEMENTED, "this process cannot reload");
	if ((r.errors = json_array()) == NULL)
		return MHD_NO;
	gw_err_clear();
	if ((rc = a->ops.reload(a->ops.arg, &r)) == 0) {
		json_decref(r.errors);
		return send_json(c, MHD_HTTP_OK,
			json_pack("{s:b,s:I}", "Reloaded", 1, "Generation",
				(json_int_t)r.generation));
	}
	/* every error, so a client need not read the gateway's log to fix the file */
	if (json_array_size(r.errors) == 0)
		json_array_append_new(r.errors, json_string(gw_err_msg()));
	return send_json(c, rc_status(rc),
		json_pack("{s:s?,s:o}", "error", json_string_value(json_array_get(r.errors, 0)),
			"Errors", r.errors));
}

/* GET /v1/metrics: Prometheus text from ops->metrics (metrics.h). */
static enum MHD_Result
get_metrics(struct gw_admin *a, struct MHD_Connection *c)
{
	struct gw_metrics m;
	struct MHD_Response *r;
	enum MHD_Result ret;
	const char *text;
	size_t len;
	int rc;

	if (a->ops.metrics == NULL)
		return send_err(c, MHD_HTTP_NOT_IMPLEMENTED, "this process has no metrics");
	gw_metrics_init(&m);
	gw_err_clear();
	if ((rc = a->ops.metrics(a->ops.arg, &m)) < 0 ||
		(rc = gw_metrics_text(&m, &text, &len)) < 0) {
		gw_metrics_clear(&m);
		return send_rc(c, rc);
	}
	r = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
	gw_metrics_clear(&m);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- the metrics port ------------------------------------------------------------ */

static enum MHD_Result
send_text(struct MHD_Connection *c, unsigned status, const char *text, bool allow)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * The metrics port: GET/HEAD /metrics and nothing else. Answered on the
 * first call, before any body is read: this port takes no uploads, and a
 * method that could change something never reaches a handler. MHD leaves
 * the body out of a HEAD answer itself.
 */
static enum MHD_Result
handle_metrics(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct gw_admin *a = cls;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
			"method not allowed: this port serves GET /metrics only\n", true);
	if (strcmp(url, "/metrics") != 0)
		return send_text(c, MHD_HTTP_NOT_FOUND,
			"not found: this port serves GET /metrics only\n", false);
	return get_metrics(a, c);
}

/* The metrics port's listening socket: 0 and *fd, or -errno with the message. */
static int
metrics_listen(const struct gw_admin_params *p, int *fd)
{
	const char *name = p->metrics_name ? p->metrics_name : "metrics port";
	int one = 1, rc;

	*fd = socket(p->metrics_sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (*fd < 0)
		return gw_err_setf(
			-errno, GW_HERE, "admin.metrics_address %s: %s", name, strerror(errno));
	/* a restart must not wait out the last run's TIME_WAIT; another
	 * listener on the port is still refused (EADDRINUSE) */
	if (setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		(p->metrics_sa->sa_family == AF_INET6 &&
			setsockopt(*fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
		bind(*fd, p->metrics_sa, p->metrics_sa_len) < 0 || listen(*fd, 16) < 0) {
		rc = gw_err_setf(
			-errno, GW_HERE, "admin.metrics_address %s: %s", name, strerror(errno));
		close(*fd);
		*fd = -1;
		return rc;
	}
	return 0;
}

/* ---- dispatch ------------------------------------------------------------------ */

static bool
peer_allowed(struct gw_admin *a, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cr;
	socklen_t l = sizeof(cr);

	if (ci == NULL || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0)
		return false;
	return cr.uid == 0 || cr.uid == a->owner;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct gw_admin *a = cls;
	struct req_body *b = *con_cls;
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
	     put = strcmp(method, "PUT") == 0;
	char msg[200];

	(void)version;
	if (b == NULL) {
		if ((b = calloc(1, sizeof(*b))) == NULL)
			return MHD_NO;
		*con_cls = b;
		return MHD_YES;
	}
	if (*upload_size) {
		/* keep reading an oversized body (to answer 400), but keep none of it */
		if (!b->too_big && b->len + *upload_size > a->max_body) {
			b->too_big = true;
			free(b->buf);
			b->buf = NULL;
			b->len = 0;
		}
		if (!b->too_big) {
			char *nb = realloc(b->buf, b->len + *upload_size + 1);

			if (nb == NULL)
				return MHD_NO;
			b->buf = nb;
			memcpy(b->buf + b->len, upload, *upload_size);
			b->len += *upload_size;
			b->buf[b->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (!peer_allowed(a, c))
		return send_err(c, MHD_HTTP_FORBIDDEN,
			"admin API: only root (or the gateway's user) may use it");
	if (b->too_big) {
		snprintf(msg, sizeof(msg), "body larger than %zu bytes", a->max_body);
		return send_err(c, MHD_HTTP_BAD_REQUEST, msg);
	}
	if (strcmp(url, "/v1/status") == 0)
		return get ? get_status(a, c) : send_err(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
	if (strcmp(url, "/v1/cluster") == 0)
		return get ? get_cluster(a, c)
			   : send_err(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
	if (strcmp(url, "/v1/metrics") == 0)
		return get ? get_metrics(a, c)
			   : send_err(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
	if (strcmp(url, "/v1/reload") == 0)
		return post ? post_reload(a, c, b)
			    : send_err(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
	if (strncmp(url, "/v1/connect/ca/", 15) == 0 && a->ca == NULL)
		return send_err(c, MHD_HTTP_NOT_FOUND,
			"no CA: the config has no mtls section with backends");
	if (strcmp(url, "/v1/connect/ca/roots") == 0)
		return get ? get_roots(a, c) : send_err(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET");
	if (strcmp(url, "/v1/connect/ca/configuration") == 0)
		return get   ? get_config(a, c)
		       : put ? put_config(a, c, b)
			     : send_err(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET or PUT");
	if (strcmp(url, "/v1/connect/ca/leaf") == 0)
		return post ? post_leaf(a, c, b)
			    : send_err(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST");
	snprintf(msg, sizeof(msg), "no such endpoint: %.100s", url);
	return send_err(c, MHD_HTTP_NOT_FOUND, msg);
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	struct req_body *b = *con_cls;

	(void)cls;
	(void)c;
	(void)t;
	if (b) {
		free(b->buf);
		free(b);
		*con_cls = NULL;
	}
}

/* A window that ended with messages dropped: say how many, once. */
static void
mhd_log_flush(struct mhd_log *l, time_t now)
{
	if (now == l->second)
		return;
	if (l->suppressed != 0)
		GW_LOG_WARN(
			"%s: %lu more libmicrohttpd message(s) suppressed (at most %d a second)",
			l->who, l->suppressed, MHD_LOG_PER_S);
	l->second = now;
	l->lines = 0;
	l->suppressed = 0;
}

static time_t
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* MHD_OPTION_EXTERNAL_LOGGER: MHD runs on the control thread (select). */
static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	struct mhd_log *l = cls;
	char msg[512];
	size_t n;

	mhd_log_flush(l, mono_s());
	if (l->lines >= MHD_LOG_PER_S) {
		l->suppressed++;
		return;
	}
	l->lines++;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	for (char *c = msg; *c != '\0'; c++) /* one line, nothing a terminal acts on */
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	GW_LOG_WARN("%s: %s", l->who, msg);
}

/* The unix socket API: its socket and daemon into a. */
static int
api_start(struct gw_admin *a, const struct gw_admin_params *p)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old;
	int rc;

	if (strlen(p->socket_path) >= sizeof(sa.sun_path))
		return gw_err_setf(
			-GW_E_CONFIG, GW_HERE, "admin socket %s: path too long", p->socket_path);
	if (lstat(p->socket_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"admin socket %s: exists and is not a socket; not replacing it",
				p->socket_path);
		unlink(p->socket_path); /* a stale socket of an earlier run */
	}
	memcpy(sa.sun_path, p->socket_path, strlen(p->socket_path));
	a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (a->fd < 0)
		return gw_err_setf(-errno, GW_HERE, "admin socket: %s", strerror(errno));
	/* 0600 from birth: no window in which another user could connect */
	old = umask(0177);
	rc = bind(a->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(a->fd, 16) < 0) {
		rc = gw_err_setf(
			-errno, GW_HERE, "admin socket %s: %s", p->socket_path, strerror(errno));
		close(a->fd);
		a->fd = -1;
		return rc;
	}
	snprintf(a->path, sizeof(a->path), "%s", p->socket_path); /* ours: unlinked at stop */
	a->d_log.who = "admin socket";
	a->d = MHD_start_daemon(MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, a,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, &a->d_log, MHD_OPTION_LISTEN_SOCKET, a->fd,
		MHD_OPTION_NOTIFY_COMPLETED, completed, a, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
	if (a->d == NULL) {
		close(a->fd);
		a->fd = -1;
		unlink(p->socket_path);
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"admin socket %s: libmicrohttpd would not start", p->socket_path);
	}
	return 0;
}

/* The metrics port: its socket and daemon into a. */
static int
metrics_start(struct gw_admin *a, const struct gw_admin_params *p)
{
	int fd;

	GW_GUARD(metrics_listen(p, &fd));
	/* short timeouts and few connections: a scraper asks once in a while */
	a->md_log.who = "metrics port";
	a->md = MHD_start_daemon(
		MHD_USE_ERROR_LOG | (p->metrics_sa->sa_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0,
		NULL, NULL, handle_metrics, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, &a->md_log,
		MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_END);
	if (a->md == NULL) {
		close(fd);
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"admin.metrics_address %s: libmicrohttpd would not start",
			p->metrics_name ? p->metrics_name : "?");
	}
	return 0;
}

int
gw_admin_start(const struct gw_admin_params *p, struct gw_admin **out)
{
	struct gw_admin *a;
	int rc;

	GW_ENSURE(p && out && (p->socket_path || p->metrics_sa), -EINVAL);
	GW_ENSURE(p->metrics_sa == NULL || p->metrics_sa->sa_family == AF_INET ||
			  p->metrics_sa->sa_family == AF_INET6,
		-EINVAL);
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	a->fd = -1;
	a->ca = p->ca;
	if (p->ops)
		a->ops = *p->ops;
	a->max_body = p->max_body ? p->max_body : GW_ADMIN_MAX_BODY_DEFAULT;
	a->owner = geteuid();
	if ((p->socket_path && (rc = api_start(a, p)) < 0) ||
		(p->metrics_sa && (rc = metrics_start(a, p)) < 0)) {
		gw_admin_stop(a);
		return rc;
	}
	*out = a;
	return 0;
}

/* Add d's descriptors to the sets; false if MHD gave none. */
static bool
fdset_add(
	struct MHD_Daemon *d, fd_set *rs, fd_set *ws, fd_set *es, MHD_socket *max, int *timeout_ms)
{
	MHD_UNSIGNED_LONG_LONG mt;

	if (d == NULL)
		return true;
	if (MHD_get_fdset(d, rs, ws, es, max) != MHD_YES)
		return false;
	if (MHD_get_timeout(d, &mt) == MHD_YES && mt < (MHD_UNSIGNED_LONG_LONG)*timeout_ms)
		*timeout_ms = (int)mt;
	return true;
}

int
gw_admin_run(struct gw_admin *a, int timeout_ms)
{
	fd_set rs, ws, es;
	MHD_socket max = 0;
	struct timeval tv;
	int n;

	if (a == NULL)
		return -EINVAL;
	FD_ZERO(&rs);
	FD_ZERO(&ws);
	FD_ZERO(&es);
	if (!fdset_add(a->d, &rs, &ws, &es, &max, &timeout_ms) ||
		!fdset_add(a->md, &rs, &ws, &es, &max, &timeout_ms))
		return -EIO;
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	n = select(max + 1, &rs, &ws, &es, &tv);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (a->d != NULL)
		MHD_run_from_select(a->d, &rs, &ws, &es);
	if (a->md != NULL)
		MHD_run_from_select(a->md, &rs, &ws, &es);
	mhd_log_flush(&a->d_log, mono_s());
	mhd_log_flush(&a->md_log, mono_s());
	return n;
}

void
gw_admin_set_ca(struct gw_admin *a, struct gw_ca *ca)
{
	if (a)
		a->ca = ca;
}

void
gw_admin_stop(struct gw_admin *a)
{
	if (a == NULL)
		return;
	if (a->d != NULL)
		MHD_stop_daemon(a->d); /* closes the listening socket it was given */
	else if (a->fd >= 0)
		close(a->fd);
	if (a->md != NULL)
		MHD_stop_daemon(a->md);
	if (a->path[0])
		unlink(a->path);
	free(a);
}
