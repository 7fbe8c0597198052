/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * etcd.c - the etcd v3 client of etcd.h over etcd's JSON gRPC gateway
 * (etcd 3.4: POST /v3/kv/range, /v3/kv/put, /v3/kv/deleterange, /v3/kv/txn,
 * /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke, /v3/watch).
 *
 * The gateway's JSON is protobuf's: bytes fields are base64, int64 fields
 * are strings, and fields at their default value are left out (a PUT
 * event has no "type", an empty value no "value", a failed txn no
 * "succeeded"). Errors are {"error":..,"message":..,"code":<gRPC code>},
 * or inside a stream {"error":{"grpc_code":..,"message":..}}. Streams
 * (keepalive, watch) answer one JSON object per message, back to back:
 * jansson's JSON_DISABLE_EOF_CHECK reads one and tells where it ended.
 *
 * Values may be ticket keys: they never reach a log line or an error
 * message, and the buffers and JSON strings that held them are wiped.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "etcd.h"

#define ETCD_TIMEOUT_MS_DEFAULT 5000u
#define GRPC_NOT_FOUND 5

struct gw_etcd {
	char *ep[GW_ETCD_MAX_ENDPOINTS];
	unsigned n_ep;
	unsigned cur; /* the endpoint that last worked */
	char *ca_file, *cert_file, *key_file;
	EVP_PKEY *key;     /* a pkcs11: key_file, loaded through the caller's hsm */
	char key_why[160]; /* why ssl_ctx_cb could not use it, for ep_fail */
	long timeout_ms;
	CURL *c; /* reused, so its connections are too */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_ok;

static void
curl_init_once(void)
{
	curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static void
wipe_free(char *p, size_t n)
{
	if (p) {
		OPENSSL_cleanse(p, n);
		free(p);
	}
}

/* Wipe a JSON string in place (it may hold a base64 value) before its decref. */
static void
wipe_json_str(json_t *s)
{
	if (json_is_string(s))
		OPENSSL_cleanse((char *)json_string_value(s), json_string_length(s));
}

static json_t *
b64_json(const void *p, size_t n)
{
	size_t cap = 4 * ((n + 2) / 3) + 1;
	char *buf = malloc(cap);
	json_t *s = NULL;
	int k;

	if (buf == NULL || n > INT32_MAX)
		goto out;
	k = EVP_EncodeBlock((unsigned char *)buf, p, (int)n);
	s = json_stringn_nocheck(buf, (size_t)k);
out:
	wipe_free(buf, cap);
	return s;
}

/*
 * Decode base64 string s into a malloc'd buffer with a NUL after it.
 * A missing field is an empty value (protobuf leaves defaults out).
 */
static int
b64_decode(json_t *s, uint8_t **out, size_t *len)
{
	const char *in = json_string_value(s);
	size_t n = in ? json_string_length(s) : 0, pad = 0;
	uint8_t *buf;
	int k = 0;

	*out = NULL;
	*len = 0;
	if ((buf = malloc(n / 4 * 3 + 4)) == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	if (n > 0) {
		if (n % 4 != 0 || n > INT32_MAX ||
			(k = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)n)) < 0) {
			free(buf);
			return gw_err_setf(-GW_E_ETCD, GW_HERE, "etcd answered malformed base64");
		}
		/* EVP_DecodeBlock counts the padding as zero bytes */
		pad = (in[n - 1] == '=') + (in[n - 2] == '=');
	}
	*len = (size_t)k - pad;
	buf[*len] = '\0';
	*out = buf;
	return 0;
}

/* An int64 field: a JSON string ("42"), a number, or absent (0). */
static int64_t
j_i64(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

int
gw_etcd_open(const struct gw_etcd_params *p, struct gw_etcd **out)
{
	struct gw_etcd *e;

	*out = NULL;
	if (p == NULL || p->endpoints == NULL || p->n_endpoints == 0)
		return gw_err_setf(-EINVAL, GW_HERE, "etcd: no endpoint given");
	if (p->n_endpoints > GW_ETCD_MAX_ENDPOINTS)
		return gw_err_setf(-EINVAL, GW_HERE, "etcd: %u endpoints, at most %d",
			p->n_endpoints, GW_ETCD_MAX_ENDPOINTS);
	for (unsigned i = 0; i < p->n_endpoints; i++) {
		const char *u = p->endpoints[i];

		if (u == NULL || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0))
			return gw_err_setf(-EINVAL, GW_HERE,
				"etcd: endpoint '%s' is not an http:// or https:// URL",
				u ? u : "(null)");
	}
	if ((p->cert_file == NULL) != (p->key_file == NULL))
		return gw_err_setf(-EINVAL, GW_HERE,
			"etcd: a client certificate needs both cert_file and key_file");
	if (p->key_file && strncmp(p->key_file, "pkcs11:", 7) == 0 && p->hsm == NULL)
		return gw_err_setf(-EINVAL, GW_HERE,
			"etcd: key_file is a pkcs11: URI: it needs the hsm handle of its token");
	pthread_once(&curl_once, curl_init_once);
	if (!curl_ok)
		return gw_err_setf(-GW_E_ETCD, GW_HERE, "etcd: cannot initialise libcurl");
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	e->n_ep = p->n_endpoints;
	e->timeout_ms = p->timeout_ms ? p->timeout_ms : ETCD_TIMEOUT_MS_DEFAULT;
	for (unsigned i = 0; i < e->n_ep; i++) {
		size_t l = strlen(p->endpoints[i]);

		/* "http://h:2379/" + "/v3/..." would be a double slash */
		if ((e->ep[i] = strdup(p->endpoints[i])) != NULL && l > 0 && e->ep[i][l - 1] == '/')
			e->ep[i][l - 1] = '\0';
		if (e->ep[i] == NULL)
			goto nomem;
	}
	if ((p->ca_file && (e->ca_file = strdup(p->ca_file)) == NULL) ||
		(p->cert_file && (e->cert_file = strdup(p->cert_file)) == NULL) ||
		(p->key_file && (e->key_file = strdup(p->key_file)) == NULL) ||
		(e->c = curl_easy_init()) == NULL)
		goto nomem;
	if (p->key_file && strncmp(p->key_file, "pkcs11:", 7) == 0) {
		int rc = gw_hsm_key_load(p->hsm, p->key_file, &e->key);

		if (rc < 0) { /* hsm's message names the key */
			gw_etcd_close(e);
			return rc;
		}
	}
	*out = e;
	return 0;
nomem:
	gw_etcd_close(e);
	return gw_err_set(-ENOMEM, GW_HERE);
}

void
gw_etcd_close(struct gw_etcd *e)
{
	if (e == NULL)
		return;
	for (unsigned i = 0; i < e->n_ep; i++)
		free(e->ep[i]);
	free(e->ca_file);
	free(e->cert_file);
	free(e->key_file);
	EVP_PKEY_free(e->key);
	curl_easy_cleanup(e->c);
	free(e);
}

const char *
gw_etcd_endpoint(const struct gw_etcd *e)
{
	return e->ep[e->cur];
}

/* What one request collects: the body, or for a watch, the stream's state. */
struct xfer {
	char *buf;
	size_t len, cap;
	bool too_big;
	long status; /* HTTP status, once known */
	/* watch only */
	bool watch;
	CURL *c;
	const atomic_bool *stop;
	gw_etcd_event_fn fn;
	void *arg;
	bool created; /* etcd accepted the watch: no more failing over */
	int rc;       /* < 0: why the write callback stopped the transfer */
	const char *ep;
};

static int stream_parse(struct xfer *x);

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t add = size * n;

	if (x->len + add > GW_ETCD_MAX_REPLY) {
		x->too_big = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	if (x->len + add + 1 > x->cap) {
		size_t cap = (x->len + add + 1) * 2;
		char *nb = malloc(cap);

		if (nb == NULL)
			return 0;
		if (x->buf)
			memcpy(nb, x->buf, x->len);
		wipe_free(x->buf, x->cap); /* no realloc: the old block may hold values */
		x->buf = nb;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, p, add);
	x->len += add;
	x->buf[x->len] = '\0';
	return x->watch && stream_parse(x) < 0 ? 0 : add;
}

/* Watch: look at the stop flag while the stream is idle (about once a second). */
static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct xfer *x = arg;

	(void)dt, (void)dn, (void)ut, (void)un;
	return x->stop && atomic_load(x->stop) ? 1 : 0;
}

/* A transport failure of one endpoint, said so that a human can act on it. */
static int
ep_fail(const struct gw_etcd *e, const char *ep, CURLcode cc, const char *errbuf)
{
	const char *d = errbuf && errbuf[0] ? errbuf : curl_easy_strerror(cc);
	long os_errno = 0;

	curl_easy_getinfo(e->c, CURLINFO_OS_ERRNO, &os_errno);
	if (cc == CURLE_SSL_CERTPROBLEM && e->key_why[0])
		return gw_err_setf(
			-GW_E_ETCD, GW_HERE, "etcd %s: client certificate: %s", ep, e->key_why);
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		if (os_errno == ECONNREFUSED)
			return gw_err_setf(-GW_E_ETCD, GW_HERE,
				"etcd %s: connection refused (is etcd listening there?)", ep);
		return gw_err_setf(-GW_E_ETCD, GW_HERE, "etcd %s: cannot connect: %s", ep,
			os_errno ? strerror((int)os_errno) : d);
	case CURLE_OPERATION_TIMEDOUT:
		return gw_err_setf(
			-GW_E_ETCD, GW_HERE, "etcd %s: no answer within %ld ms", ep, e->timeout_ms);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
		return gw_err_setf(-GW_E_ETCD, GW_HERE,
			"etcd %s: TLS failed: ca_file %s must hold the CA of etcd's --cert-file; "
			"cert_file %s, from its --trusted-ca-file (%s)",
			ep, e->ca_file ? e->ca_file : "(system store)",
			e->cert_file ? e->cert_file : "(none)", d);
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2: /* the same, on a connection that negotiated h2 */
		/* TLS 1.3: a refused client certificate shows only at the first read */
		if (strncmp(ep, "https://", 8) == 0)
			return gw_err_setf(-GW_E_ETCD, GW_HERE,
				"etcd %s: connection broken; client certificate refused? cert_file "
				"%s must come from etcd's --trusted-ca-file (%s)",
				ep, e->cert_file ? e->cert_file : "(none)", d);
		return gw_err_setf(-GW_E_ETCD, GW_HERE, "etcd %s: the connection broke: %s", ep, d);
	default:
		return gw_err_setf(-GW_E_ETCD, GW_HERE, "etcd %s: %s (curl %d)", ep, d, (int)cc);
	}
}

/* etcd's error object: {"error":"..","message":"..","code":N} or nested. */
static int
etcd_error(const char *ep, const char *path, long status, json_t *j)
{
	json_t *err = json_object_get(j, "error");
	const char *m = json_string_value(json_object_get(j, "message"));
	int64_t code = j_i64(j, "code");

	if (json_is_object(err)) { /* inside a stream */
		m = json_string_value(json_object_get(err, "message"));
		code = j_i64(err, "grpc_code");
	}
	if (m == NULL)
		m = json_string_value(err);
	return gw_err_setf(code == GRPC_NOT_FOUND ? -ENOENT : -GW_E_ETCD, GW_HERE,
		"etcd %s%s: HTTP %ld: %s", ep, path, status, m ? m : "no message");
}

/*
 * libcurl's hook on each new TLS connection's SSL_CTX: the client
 * certificate chain from cert_file and its key from the token (etcd.h).
 * A failure fails the connection with CURLE_SSL_CERTPROBLEM; key_why
 * says why.
 */
static CURLcode
ssl_ctx_cb(CURL *c, void *ssl_ctx, void *arg)
{
	struct gw_etcd *e = arg;
	SSL_CTX *ctx = ssl_ctx;
	unsigned long err;

	(void)c;
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, e->cert_file) != 1) {
		err = ERR_peek_last_error();
		snprintf(e->key_why, sizeof(e->key_why), "cert_file %s: cannot use it (%s)",
			e->cert_file, err ? ERR_reason_error_string(err) : "no certificate");
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(ctx, e->key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(e->key_why, sizeof(e->key_why), "cert_file %s does not match key_file %s",
			e->cert_file, e->key_file);
		goto fail;
	}
	ERR_clear_error();
	return CURLE_OK;
fail:
	ERR_clear_error();
	return CURLE_SSL_CERTPROBLEM;
}

/* Set up e->c for one POST of body to ep+path. */
static int
setup(struct gw_etcd *e, const char *ep, const char *path, const char *body, struct xfer *x,
	struct curl_slist *hdr, char *errbuf)
{
	char url[1024];
	CURL *c = e->c;

	if ((size_t)snprintf(url, sizeof(url), "%s%s", ep, path) >= sizeof(url))
		return gw_err_setf(-EINVAL, GW_HERE, "etcd %s: URL too long", ep);
	curl_easy_reset(c); /* keeps the connection cache */
	/*
	 * NOSIGNAL: no SIGALRM for timeouts, and libcurl leaves SIGPIPE alone:
	 * the process ignores it (etcd.h).
	 * Only http(s), no redirects, no proxy from the environment: the answer
	 * comes from the endpoint configured or not at all. A watch lives
	 * long: only its connection is timed, and TCP keepalive finds a peer
	 * gone silent.
	 */
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_PROXY, "") != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, e->timeout_ms) != CURLE_OK ||
		(!x->watch && curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, e->timeout_ms) != CURLE_OK) ||
		(x->watch && (curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
				     curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
				     curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress) !=
					     CURLE_OK ||
				     curl_easy_setopt(c, CURLOPT_XFERINFODATA, x) != CURLE_OK)) ||
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
		(e->ca_file && curl_easy_setopt(c, CURLOPT_CAINFO, e->ca_file) != CURLE_OK) ||
		(e->cert_file && !e->key &&
			(curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert_file) != CURLE_OK ||
				curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM") != CURLE_OK ||
				curl_easy_setopt(c, CURLOPT_SSLKEY, e->key_file) != CURLE_OK)) ||
		(e->key && (curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb) != CURLE_OK ||
				   curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, e) != CURLE_OK)) ||
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_WRITEDATA, x) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK)
		return gw_err_setf(-GW_E_ETCD, GW_HERE, "etcd %s: cannot set up libcurl", ep);
	return 0;
}

/*
 * POST req (consumed) to path on the endpoints, starting with the one that
 * last worked, until one answers. A unary call (x->watch false) parses the
 * answer into *reply; a watch hands each message to stream_parse.
 * secret: req holds a value, so its JSON text is wiped after use.
 */
static int
post(struct gw_etcd *e, const char *path, json_t *req, bool secret, struct xfer *x, json_t **reply)
{
	char errbuf[CURL_ERROR_SIZE], last[GW_ERR_MSG_MAX] = "";
	struct curl_slist *hdr = NULL;
	char *body = NULL;
	json_error_t je;
	unsigned tried = 0;
	int rc;

	if (reply)
		*reply = NULL;
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (body == NULL || hdr == NULL) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	for (; tried < e->n_ep; tried++) {
		unsigned i = (e->cur + tried) % e->n_ep;
		const char *ep = e->ep[i];
		CURLcode cc;

		wipe_free(x->buf, x->cap);
		x->buf = NULL;
		x->len = x->cap = 0;
		x->status = 0;
		x->ep = ep;
		x->c = e->c;
		errbuf[0] = '\0';
		e->key_why[0] = '\0';
		if ((rc = setup(e, ep, path, body, x, hdr, errbuf)) < 0)
			goto out;
		cc = curl_easy_perform(e->c);
		curl_easy_getinfo(e->c, CURLINFO_RESPONSE_CODE, &x->status);
		if (x->too_big) {
			rc = gw_err_setf(-GW_E_ETCD, GW_HERE,
				"etcd %s%s: answer larger than %u bytes", ep, path,
				GW_ETCD_MAX_REPLY);
			goto out;
		}
		if (x->watch && cc == CURLE_ABORTED_BY_CALLBACK) {
			rc = 0; /* the stop flag */
			goto out;
		}
		if (x->watch && x->rc < 0) {
			rc = x->rc; /* the callback's, compaction, etcd's error: already said */
			goto out;
		}
		if (x->watch && x->created) {
			e->cur = i;
			rc = gw_err_setf(-GW_E_ETCD, GW_HERE,
				"etcd %s: the watch stream ended: %s; watch again from the last "
				"revision seen + 1",
				ep, cc == CURLE_OK ? "etcd closed it" : curl_easy_strerror(cc));
			goto out;
		}
		if (cc != CURLE_OK || x->status == 0) {
			/* unreachable: the next endpoint */
			ep_fail(e, ep, cc == CURLE_OK ? CURLE_GOT_NOTHING : cc, errbuf);
			snprintf(last, sizeof(last), "%s", gw_err_msg());
			continue;
		}
		e->cur = i; /* it answered, whatever it said */
		{
			json_t *j = x->buf ? json_loadb(x->buf, x->len, JSON_DISABLE_EOF_CHECK, &je)
					   : NULL;

			if (!json_is_object(j)) {
				json_decref(j);
				rc = gw_err_setf(-GW_E_ETCD, GW_HERE,
					"etcd %s%s: HTTP %ld without a JSON answer (is this etcd's "
					"v3 gateway?)",
					ep, path, x->status);
				goto out;
			}
			if (x->status != 200 || json_object_get(j, "error")) {
				rc = etcd_error(ep, path, x->status, j);
				json_decref(j);
				goto out;
			}
			if (reply)
				*reply = j;
			else
				json_decref(j);
			rc = 0;
			goto out;
		}
	}
	if (e->n_ep == 1)
		rc = gw_err_setf(-GW_E_ETCD, GW_HERE, "%s", last);
	else
		rc = gw_err_setf(-GW_E_ETCD, GW_HERE, "etcd: all %u endpoints failed (last: %s)",
			e->n_ep, last);
out:
	if (body && secret)
		OPENSSL_cleanse(body, strlen(body));
	free(body);
	curl_slist_free_all(hdr);
	wipe_free(x->buf, x->cap);
	x->buf = NULL;
	x->len = x->cap = 0;
	json_decref(req);
	return rc;
}

/* A unary call: post and parse. */
static int
call(struct gw_etcd *e, const char *path, json_t *req, bool secret, json_t **reply)
{
	struct xfer x = {0};

	if (req == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	return post(e, path, req, secret, &x, reply);
}

static int
check_key(const char *key)
{
	if (key == NULL || key[0] == '\0')
		return gw_err_setf(-EINVAL, GW_HERE, "etcd: empty key");
	return 0;
}

/* {"key": b64(key), "value": b64(val), "lease": id}; *vnode: the value, to wipe. */
static json_t *
put_req(const char *key, const void *val, size_t len, int64_t lease_id, json_t **vnode)
{
	json_t *r = json_object();
	json_t *v = b64_json(val, len);

	*vnode = v;
	if (r == NULL || v == NULL || json_object_set_new(r, "key", b64_json(key, strlen(key))) ||
		json_object_set(r, "value", v) ||
		(lease_id && json_object_set_new(r, "lease", json_integer(lease_id)))) {
		json_decref(r);
		return NULL;
	}
	return r;
}

int
gw_etcd_put(struct gw_etcd *e, const char *key, const void *val, size_t len, int64_t lease_id)
{
	json_t *v = NULL, *req;
	int rc;

	GW_GUARD(check_key(key));
	req = put_req(key, val, len, lease_id, &v);
	rc = call(e, "/v3/kv/put", req, true, NULL);
	wipe_json_str(v);
	json_decref(v);
	if (rc == -ENOENT)
		return gw_err_setf(rc, GW_HERE,
			"etcd %s: key %s: lease %lld not found (expired or revoked); grant a new "
			"one",
			gw_etcd_endpoint(e), key, (long long)lease_id);
	return rc;
}

/* The first kv of a range answer, or NULL. */
static json_t *
first_kv(json_t *range)
{
	return json_array_get(json_object_get(range, "kvs"), 0);
}

int
gw_etcd_put_if(struct gw_etcd *e, const char *key, const void *val, size_t len,
	int64_t expect_mod_revision, int64_t lease_id)
{
	json_t *v = NULL, *put, *req = NULL, *reply = NULL, *k;
	int64_t found;
	int rc;

	GW_GUARD(check_key(key));
	/*
	 * One txn: if the key's mod_revision (0 when absent) is the expected
	 * one, put; else read the key, so the refusal can say what it found.
	 */
	put = put_req(key, val, len, lease_id, &v);
	k = b64_json(key, strlen(key));
	if (put && k)
		req = json_pack("{s:[{s:O,s:s,s:s,s:I}],s:[{s:O}],s:[{s:{s:O}}]}", "compare", "key",
			k, "target", "MOD", "result", "EQUAL", "mod_revision",
			(json_int_t)expect_mod_revision, "success", "request_put", put, "failure",
			"request_range", "key", k);
	rc = call(e, "/v3/kv/txn", req, true, &reply);
	wipe_json_str(v);
	json_decref(v);
	json_decref(put);
	json_decref(k);
	if (rc == -ENOENT)
		rc = gw_err_setf(rc, GW_HERE,
			"etcd %s: key %s: lease %lld not found (expired or revoked); grant a new "
			"one",
			gw_etcd_endpoint(e), key, (long long)lease_id);
	if (rc < 0)
		return rc;
	if (json_is_true(json_object_get(reply, "succeeded"))) {
		json_decref(reply);
		return 0;
	}
	found = j_i64(
		first_kv(json_object_get(
			json_array_get(json_object_get(reply, "responses"), 0), "response_range")),
		"mod_revision");
	json_decref(reply);
	if (expect_mod_revision == 0)
		return gw_err_setf(-EEXIST, GW_HERE,
			"etcd: key %s: compare failed (exists, mod_revision %lld, expected absent)",
			key, (long long)found);
	return gw_err_setf(-ESTALE, GW_HERE,
		"etcd: key %s: compare failed (mod_revision %lld, expected %lld)%s", key,
		(long long)found, (long long)expect_mod_revision,
		found ? "" : " (the key is gone)");
}

/* Hand one kv of a range answer to fn (wiping its value afterwards). */
static int
kv_out(json_t *kv, gw_etcd_kv_fn fn, void *arg)
{
	uint8_t *k = NULL, *v = NULL;
	size_t kl, vl = 0;
	int rc;

	if ((rc = b64_decode(json_object_get(kv, "key"), &k, &kl)) < 0)
		return rc;
	if ((rc = b64_decode(json_object_get(kv, "value"), &v, &vl)) < 0)
		goto out;
	rc = strlen((char *)k) != kl ? 0 : fn(arg, (char *)k, v, vl, j_i64(kv, "mod_revision"));
out:
	free(k);
	wipe_free((char *)v, vl + 1);
	return rc;
}

struct get_one {
	uint8_t *val;
	size_t len;
	int64_t rev;
};

static int
take_one(void *arg, const char *key, const uint8_t *val, size_t len, int64_t mod_revision)
{
	struct get_one *g = arg;

	(void)key;
	if ((g->val = malloc(len + 1)) == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	memcpy(g->val, val, len + 1);
	g->len = len;
	g->rev = mod_revision;
	return 0;
}

/* Wipe the base64 values of a range answer, then free it. */
static void
range_free(json_t *reply)
{
	json_t *kv;
	size_t i;

	json_array_foreach(json_object_get(reply, "kvs"), i, kv)
		wipe_json_str(json_object_get(kv, "value"));
	json_decref(reply);
}

int
gw_etcd_get(struct gw_etcd *e, const char *key, uint8_t **val, size_t *len, int64_t *mod_revision)
{
	struct get_one g = {0};
	json_t *reply = NULL, *kv;
	int rc;

	*val = NULL;
	*len = 0;
	GW_GUARD(check_key(key));
	GW_GUARD(call(e, "/v3/kv/range", json_pack("{s:o}", "key", b64_json(key, strlen(key))),
		false, &reply));
	if ((kv = first_kv(reply)) == NULL) {
		json_decref(reply);
		return gw_err_setf(-ENOENT, GW_HERE, "etcd: key %s: not found", key);
	}
	rc = kv_out(kv, take_one, &g);
	range_free(reply);
	if (rc < 0)
		return rc;
	*val = g.val;
	*len = g.len;
	if (mod_revision)
		*mod_revision = g.rev;
	return 0;
}

/*
 * {"key": prefix, "range_end": prefix + 1}: every key under prefix. The
 * end is the prefix with its last byte raised (trailing 0xff bytes
 * dropped first); "\0" as both key and end means every key.
 */
static json_t *
prefix_req(const char *prefix)
{
	size_t n = strlen(prefix), en = n;
	unsigned char *end = malloc(n + 1);
	json_t *r = NULL;

	if (end == NULL)
		return NULL;
	memcpy(end, prefix, n + 1);
	while (en > 0 && end[en - 1] == 0xff)
		en--;
	if (en > 0)
		end[en - 1]++;
	else
		end[0] = '\0', en = 1;
	r = json_pack("{s:o,s:o}", "key", n ? b64_json(prefix, n) : b64_json("", 1), "range_end",
		b64_json(end, en));
	free(end);
	return r;
}

int
gw_etcd_get_prefix(struct gw_etcd *e, const char *prefix, gw_etcd_kv_fn fn, void *arg)
{
	json_t *reply = NULL, *kv;
	size_t i;
	int rc = 0;

	GW_GUARD(call(e, "/v3/kv/range", prefix_req(prefix), false, &reply));
	json_array_foreach(
		json_object_get(reply, "kvs"), i, kv) if ((rc = kv_out(kv, fn, arg)) < 0) break;
	range_free(reply);
	return rc;
}

int
gw_etcd_delete(struct gw_etcd *e, const char *key)
{
	json_t *reply = NULL;
	int64_t n;

	GW_GUARD(check_key(key));
	GW_GUARD(call(e, "/v3/kv/deleterange",
		json_pack("{s:o}", "key", b64_json(key, strlen(key))), false, &reply));
	n = j_i64(reply, "deleted");
	json_decref(reply);
	if (n == 0)
		return gw_err_setf(
			-ENOENT, GW_HERE, "etcd: key %s: not found, nothing deleted", key);
	return 0;
}

int
gw_etcd_lease_grant(struct gw_etcd *e, unsigned ttl_s, int64_t *id)
{
	json_t *reply = NULL;

	*id = 0;
	GW_GUARD(call(
		e, "/v3/lease/grant", json_pack("{s:I}", "TTL", (json_int_t)ttl_s), false, &reply));
	*id = j_i64(reply, "ID");
	json_decref(reply);
	if (*id == 0)
		return gw_err_setf(-GW_E_ETCD, GW_HERE, "etcd %s: lease grant answered no lease ID",
			gw_etcd_endpoint(e));
	return 0;
}

int
gw_etcd_lease_keepalive(struct gw_etcd *e, int64_t id)
{
	json_t *reply = NULL;
	int64_t ttl;

	/*
	 * A stream in gRPC: the gateway sends our one request, closes its side,
	 * and answers {"result":{...,"TTL":"N"}}. etcd answers an unknown or
	 * expired lease with TTL 0, which JSON leaves out.
	 */
	GW_GUARD(call(
		e, "/v3/lease/keepalive", json_pack("{s:I}", "ID", (json_int_t)id), false, &reply));
	ttl = j_i64(json_object_get(reply, "result"), "TTL");
	json_decref(reply);
	if (ttl <= 0)
		return gw_err_setf(-ENOENT, GW_HERE,
			"etcd %s: lease %lld expired or revoked; its keys are gone: grant a new "
			"one",
			gw_etcd_endpoint(e), (long long)id);
	return 0;
}

int
gw_etcd_lease_revoke(struct gw_etcd *e, int64_t id)
{
	int rc = call(e, "/v3/lease/revoke", json_pack("{s:I}", "ID", (json_int_t)id), false, NULL);

	if (rc == -ENOENT)
		return gw_err_setf(rc, GW_HERE,
			"etcd %s: lease %lld not found (expired or revoked)", gw_etcd_endpoint(e),
			(long long)id);
	return rc;
}

/* One watch message: {"result":{"created":true | "events":[..] | "canceled":..}}. */
static int
watch_msg(struct xfer *x, json_t *j)
{
	json_t *res = json_object_get(j, "result"), *ev;
	int64_t compact;
	size_t i;

	if (json_object_get(j, "error") || !json_is_object(res))
		return etcd_error(x->ep, "/v3/watch", x->status, j);
	if (json_is_true(json_object_get(res, "created")))
		x->created = true;
	if ((compact = j_i64(res, "compact_revision")) > 0)
		return gw_err_setf(-ESTALE, GW_HERE,
			"etcd %s: watch: the start revision was compacted (oldest kept %lld); read "
			"the state again and watch from its revision",
			x->ep, (long long)compact);
	if (json_is_true(json_object_get(res, "canceled"))) {
		const char *why = json_string_value(json_object_get(res, "cancel_reason"));

		return gw_err_setf(-GW_E_ETCD, GW_HERE, "etcd %s: etcd cancelled the watch: %s",
			x->ep, why && why[0] ? why : "no reason given");
	}
	json_array_foreach(json_object_get(res, "events"), i, ev)
	{
		json_t *kv = json_object_get(ev, "kv");
		const char *t = json_string_value(json_object_get(ev, "type"));
		struct gw_etcd_event e = {0};
		uint8_t *k = NULL, *v = NULL;
		size_t kl, vl = 0;
		int rc;

		/* PUT is the enum's default: protobuf's JSON leaves it out */
		e.type = t && strcmp(t, "DELETE") == 0 ? GW_ETCD_DELETE : GW_ETCD_PUT;
		e.mod_revision = j_i64(kv, "mod_revision");
		if ((rc = b64_decode(json_object_get(kv, "key"), &k, &kl)) < 0 ||
			(rc = b64_decode(json_object_get(kv, "value"), &v, &vl)) < 0) {
			free(k);
			return rc;
		}
		e.key = (char *)k;
		e.val = v;
		e.len = vl;
		rc = strlen(e.key) != kl ? 0 : x->fn(x->arg, &e);
		free(k);
		wipe_free((char *)v, vl + 1);
		wipe_json_str(json_object_get(kv, "value"));
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * Parse every complete JSON object at the start of x->buf, keep the rest
 * for the next chunk. An HTTP error's body is left whole for post().
 */
static int
stream_parse(struct xfer *x)
{
	json_error_t je;
	size_t used = 0;
	int rc = 0;

	if (x->status == 0)
		curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->status != 200)
		return 0; /* an HTTP error: its body is read whole by post() */
	while (used < x->len && rc == 0) {
		json_t *j = json_loadb(x->buf + used, x->len - used, JSON_DISABLE_EOF_CHECK, &je);

		if (j == NULL) {
			if (json_error_code(&je) == json_error_premature_end_of_input)
				break; /* the rest comes in the next chunk */
			rc = gw_err_setf(-GW_E_ETCD, GW_HERE,
				"etcd %s: watch: malformed JSON in the stream: %s", x->ep, je.text);
			break;
		}
		used += (size_t)je.position;
		rc = watch_msg(x, j);
		json_decref(j);
	}
	OPENSSL_cleanse(x->buf, used);
	memmove(x->buf, x->buf + used, x->len - used);
	x->len -= used;
	x->rc = rc;
	return rc;
}

int
gw_etcd_watch(struct gw_etcd *e, const char *prefix, int64_t start_revision, gw_etcd_event_fn fn,
	void *arg, const atomic_bool *stop)
{
	struct xfer x = {.watch = true, .stop = stop, .fn = fn, .arg = arg};
	json_t *cr = prefix_req(prefix);

	if (cr && start_revision > 0 &&
		json_object_set_new(cr, "start_revision", json_integer(start_revision)) != 0) {
		json_decref(cr);
		cr = NULL;
	}
	if (cr == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	return post(e, "/v3/watch", json_pack("{s:o}", "create_request", cr), false, &x, NULL);
}
