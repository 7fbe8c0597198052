/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_admin.c - the admin API through a real client: curl --unix-socket
 * against gw_admin on a real builtin CA (SoftHSM token, SQLite state). The
 * gateway's callbacks are played by this file: ca_enable runs the real
 * rotation validators and gw_ca_reconfigure, as gateway/gateway.c does. Every
 * endpoint, every error class, "nothing changes" after a refusal, and a
 * socket that refuses a non-root user (curl run as nobody through setpriv).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "admin.h"
#include "ca.h"
#include "gw_softhsm.h"
#include "gw_test.h"
#include "rotation.h"

static struct gw_softhsm tok; /* the temp dir: token, PINs, state, curl files */
static char sock[128];
static struct gw_ca *ca;
static struct gw_rotation *rot;
static atomic_bool stop;
static uint64_t live_gen = 1;
static unsigned reloads;
static char reload_source[32]; /* what the last reload was told of its caller */
static char curl_ua[64];       /* curl's -A option for http(); "": curl's own */

static struct gw_cfg_ca_backend backends[2] = {
	{.name = "ca-1",
		.type = GW_CA_BUILTIN,
		.root_validity_s = 10ull * 365 * 86400,
		.leaf_validity_s = 72 * 3600},
	{.name = "ca-2",
		.type = GW_CA_BUILTIN,
		.root_validity_s = 10ull * 365 * 86400,
		.leaf_validity_s = 72 * 3600},
};
static struct gw_cfg_mtls running = {.trust_domain = "example.org",
	.enabled_backend = "ca-1",
	.backends = backends,
	.n_backends = 2};

static void
write_file(const char *path, const char *s)
{
	if (gw_softhsm_write(path, s) < 0)
		exit(2);
}

/* ---- the gateway's callbacks ---- */

static int
op_status(void *arg, json_t *o)
{
	(void)arg;
	json_object_set_new(o, "Generation", json_integer((json_int_t)live_gen));
	json_object_set_new(o, "Workers",
		json_pack("[{s:i,s:I}]", "Id", 1, "Generation", (json_int_t)live_gen));
	return 0;
}

static int
op_reload(void *arg, struct gw_admin_reload *r)
{
	(void)arg;
	reloads++;
	r->generation = live_gen;
	snprintf(reload_source, sizeof(reload_source), "%s", r->source);
	if (r->force) {
		/* as the gateway does with the loader's lines: every error, in order */
		json_array_append_new(
			r->errors, json_string("test: forced reload refused on purpose"));
		json_array_append_new(r->errors, json_string("test: and a second error"));
		return gw_err_setf(-GW_E_CONFIG, GW_HERE, "test: forced reload refused on purpose");
	}
	return 0;
}

static int
op_enable(void *arg, const char *backend, bool force)
{
	struct gw_cfg_mtls next = running;
	struct gw_rotation_env env = {.live_gen = live_gen, .st = gw_ca_state(ca), .force = force};

	(void)arg;
	next.enabled_backend = (char *)backend;
	GW_GUARD(gw_rotation_check(rot, &running, &next, &env));
	GW_GUARD(gw_ca_reconfigure(ca, &next));
	running.enabled_backend = backend[3] == '1' ? "ca-1" : "ca-2";
	return 0;
}

static int
op_metrics(void *arg, struct gw_metrics *m)
{
	(void)arg;
	gw_metrics_simple(m, "mtlsgw_test_total", "counter", "a test counter", 42);
	return 0;
}

/* curl to the metrics port: METHOD URL; the body into out[len]; the HTTP status. */
static int
http_tcp(const char *method, const char *url, char *out, size_t len, char *hdr, size_t hlen)
{
	char cmd[512], outf[160], hdrf[160];
	FILE *p;
	int code = 0;

	snprintf(outf, sizeof(outf), "%s/mout", tok.dir);
	snprintf(hdrf, sizeof(hdrf), "%s/mhdr", tok.dir);
	unlink(outf);
	unlink(hdrf);
	snprintf(cmd, sizeof(cmd), "curl -s -o %s -D %s -w '%%{http_code}' %s %s '%s'", outf, hdrf,
		strcmp(method, "HEAD") == 0 ? "-I" : "-X",
		strcmp(method, "HEAD") == 0 ? "" : method, url);
	p = popen(cmd, "r");
	if (p == NULL || fscanf(p, "%d", &code) != 1)
		code = 0;
	if (p)
		pclose(p);
	for (int k = 0; k < 2; k++) {
		char *buf = k ? hdr : out;
		size_t cap = k ? hlen : len;
		FILE *f = fopen(k ? hdrf : outf, "r");
		size_t n = f ? fread(buf, 1, cap - 1, f) : 0;

		buf[n] = '\0';
		if (f)
			fclose(f);
	}
	return code;
}

static void *
serve(void *arg)
{
	struct gw_admin *a = arg;

	while (!atomic_load(&stop))
		(void)gw_admin_run(a, 50);
	return NULL;
}

/* curl METHOD PATH [body]; the answer into out; returns the HTTP status (0: no answer). */
static int
http(const char *user, const char *method, const char *path, const char *body, json_t **out)
{
	char cmd[1024], bodyf[160], outf[160];
	FILE *p;
	int code = 0;

	snprintf(bodyf, sizeof(bodyf), "%s/body", tok.dir);
	snprintf(outf, sizeof(outf), "%s/out", tok.dir);
	unlink(outf);
	if (user) { /* curl runs as another user: let it write its answer */
		write_file(outf, "");
		chmod(outf, 0666);
	}
	if (body)
		write_file(bodyf, body);
	snprintf(cmd, sizeof(cmd),
		"%s curl -s %s -o %s -w '%%{http_code}' --unix-socket %s -X %s %s%s http://gw%s",
		user ? user : "", curl_ua, outf, sock, method, body ? "--data-binary @" : "",
		body ? bodyf : "", path);
	p = popen(cmd, "r");
	if (p == NULL || fscanf(p, "%d", &code) != 1)
		code = 0;
	if (p)
		pclose(p);
	if (out) {
		json_error_t je;

		*out = json_load_file(outf, 0, &je);
	}
	return code;
}

static const char *
jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

/* A PEM CSR for a software key of the given kind: "P-256", "P-224", "RSA-1024". */
static char *
csr_pem_key(const char *kind)
{
	EVP_PKEY *k = strncmp(kind, "RSA-", 4) == 0 ? EVP_RSA_gen((unsigned)atoi(kind + 4))
						    : EVP_PKEY_Q_keygen(NULL, NULL, "EC", kind);
	X509_REQ *r = X509_REQ_new();
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_UTF8,
		(const unsigned char *)"billing", -1, -1, 0);
	X509_REQ_set_pubkey(r, k);
	X509_REQ_sign(r, k, EVP_sha256());
	PEM_write_bio_X509_REQ(b, r);
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	BIO_free(b);
	X509_REQ_free(r);
	EVP_PKEY_free(k);
	return out;
}

static char *
csr_pem(void)
{
	return csr_pem_key("P-256");
}

/* POST a leaf request; returns the status, *o the answer. */
static int
post_leaf(const char *csr, const char *id, const char *ttl, json_t **o)
{
	json_t *req = json_pack("{s:s,s:s}", "CSR", csr, "SpiffeID", id);
	char *js;
	int st;

	if (ttl)
		json_object_set_new(req, "TTL", json_string(ttl));
	js = json_dumps(req, 0);
	st = http(NULL, "POST", "/v1/connect/ca/leaf", js, o);
	free(js);
	json_decref(req);
	return st;
}

int
main(void)
{
	struct gw_admin *a = NULL;
	struct gw_admin_ops ops = {.status = op_status,
		.reload = op_reload,
		.ca_enable = op_enable,
		.metrics = op_metrics};
	pthread_t th;
	char path[256];
	json_t *o = NULL;

	GW_TEST_BEGIN();
	if (gw_softhsm_setup(&tok, "gwadm") < 0)
		return 2;
	chmod(tok.dir, 0755); /* so that nobody reaches the socket's own mode check */
	if (gw_hsm_token_init(
		    &(struct gw_hsm_params){.token = "gw", .pin_file = tok.pin}, tok.so_pin) < 0)
		return 2;
	snprintf(path, sizeof(path), "%s/state", tok.dir);
	{
		/* start on ca-1 only, then add ca-2 (step 1) as a reload would */
		struct gw_cfg_mtls first = running;

		first.n_backends = 1;
		if (gw_ca_create(&first,
			    &(struct gw_ca_params){
				    .hsm = {.token = "gw", .pin_file = tok.pin}, .state_dir = path},
			    &ca) < 0 ||
			gw_rotation_create(&rot) < 0 || gw_rotation_published(rot, &first, 1) < 0 ||
			gw_ca_reconfigure(ca, &running) < 0 ||
			gw_rotation_published(rot, &running, 2) < 0) {
			fprintf(stderr, "setup: %s\n", gw_err_msg());
			return 2;
		}
	}
	snprintf(sock, sizeof(sock), "%s/admin.sock", tok.dir);
	EXPECT_OK(gw_admin_start(
		&(struct gw_admin_params){
			.socket_path = sock, .ca = ca, .ops = &ops, .max_body = 16384},
		&a));
	if (a == NULL)
		GW_TEST_END();
	{ /* the socket is 0600 */
		struct stat st;

		EXPECT_TRUE(stat(sock, &st) == 0 && (st.st_mode & 0777) == 0600);
	}
	pthread_create(&th, NULL, serve, a);

	{ /* roots, Consul's shape */
		json_t *roots, *r0;

		EXPECT_EQ(http(NULL, "GET", "/v1/connect/ca/roots", NULL, &o), 200);
		EXPECT_STREQ(jstr(o, "TrustDomain"), "example.org");
		roots = json_object_get(o, "Roots");
		EXPECT_EQ(json_array_size(roots), 2);
		r0 = json_array_get(roots, 0);
		EXPECT_STREQ(jstr(r0, "Name"), "ca-1");
		EXPECT_TRUE(json_is_true(json_object_get(r0, "Active")));
		EXPECT_STREQ(jstr(o, "ActiveRootID"), jstr(r0, "ID"));
		EXPECT_EQ(strlen(jstr(r0, "ID")), 59); /* 20 bytes, colon hex */
		EXPECT_CONTAINS(jstr(r0, "RootCert"), "-----BEGIN CERTIFICATE-----");
		EXPECT_EQ(json_array_size(json_object_get(r0, "IntermediateCerts")), 1);
		EXPECT_TRUE(strlen(jstr(r0, "SigningKeyID")) > 0 &&
			    strlen(jstr(r0, "SerialNumber")) > 0);
		EXPECT_CONTAINS(jstr(r0, "NotAfter"), "Z");
		EXPECT_TRUE(json_is_false(json_object_get(json_array_get(roots, 1), "Active")));
		json_decref(o);
	}
	{ /* configuration */
		EXPECT_EQ(http(NULL, "GET", "/v1/connect/ca/configuration", NULL, &o), 200);
		EXPECT_STREQ(jstr(o, "Provider"), "builtin");
		EXPECT_STREQ(jstr(json_object_get(o, "Config"), "EnabledBackend"), "ca-1");
		json_decref(o);
		/* bad bodies: 400, nothing changes */
		const char *bad[] = {
			"{",
			"[1]",
			"{\"Config\":{\"EnabledBackend\":\"ca-2\"},\"Extra\":1}",
			"{\"Config\":{\"EnabledBackend\":\"ca-2\",\"Rotate\":true}}",
			"{\"Config\":{\"EnabledBackend\":2}}",
			"{\"Config\":{}}",
			"{\"Config\":{\"EnabledBackend\":\"ca-2\",\"Force\":\"yes\"}}",
			"{\"Config\":{\"EnabledBackend\":\"ca-9\"}}",
			"{\"Provider\":\"cfssl\",\"Config\":{\"EnabledBackend\":\"ca-2\"}}",
			("{\"Config\":{\"EnabledBackend\":\"ca-2\"},\"Config\":{\"EnabledBackend\":"
			 "\"ca-1\"}}"),
		};
		const char *why[] = {"bad JSON", "expected a JSON object", "unknown field 'Extra'",
			"unknown field 'Rotate' in Config",
			"field 'EnabledBackend': expected a string",
			"missing field 'EnabledBackend'", "field 'Force': expected true or false",
			"no backend named 'ca-9'", "does not match backend ca-2", "bad JSON"};
		for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			EXPECT_EQ(
				http(NULL, "PUT", "/v1/connect/ca/configuration", bad[i], &o), 400);
			EXPECT_CONTAINS(jstr(o, "error"), why[i]);
			json_decref(o);
		}
		EXPECT_STREQ(gw_ca_enabled(ca), "ca-1");
		/* too early: the rule, 409, nothing changes */
		EXPECT_EQ(http(NULL, "PUT", "/v1/connect/ca/configuration",
				  "{\"Provider\":\"builtin\",\"Config\":{\"EnabledBackend\":\"ca-"
				  "2\"}}",
				  &o),
			409);
		EXPECT_CONTAINS(jstr(o, "error"), "rotation rule enable-after-trust: backend ca-2 "
						  "is not yet trusted by every worker");
		json_decref(o);
		EXPECT_STREQ(gw_ca_enabled(ca), "ca-1");
		/* every worker runs generation 2 now */
		live_gen = 2;
		EXPECT_EQ(http(NULL, "PUT", "/v1/connect/ca/configuration",
				  "{\"Config\":{\"EnabledBackend\":\"ca-2\"}}", &o),
			200);
		EXPECT_STREQ(jstr(json_object_get(o, "Config"), "EnabledBackend"), "ca-2");
		json_decref(o);
		EXPECT_STREQ(gw_ca_enabled(ca), "ca-2");
		EXPECT_EQ(http(NULL, "GET", "/v1/connect/ca/roots", NULL, &o), 200);
		/* ca-2 now serves its issuer and its root cross-signed by ca-1 */
		EXPECT_EQ(json_array_size(
				  json_object_get(json_array_get(json_object_get(o, "Roots"), 1),
					  "IntermediateCerts")),
			2);
		json_decref(o);
	}
	{ /* leaf */
		char *csr = csr_pem(), body[4096];
		json_t *req = json_pack("{s:s,s:s,s:s}", "CSR", csr, "SpiffeID",
			"spiffe://example.org/ns/billing", "TTL", "24h");
		char *js = json_dumps(req, 0);

		EXPECT_EQ(http(NULL, "POST", "/v1/connect/ca/leaf", js, &o), 200);
		EXPECT_CONTAINS(jstr(o, "CertPEM"), "BEGIN CERTIFICATE");
		EXPECT_STREQ(jstr(o, "SpiffeID"), "spiffe://example.org/ns/billing");
		EXPECT_STREQ(jstr(o, "Backend"), "ca-2");
		EXPECT_EQ(json_array_size(json_object_get(o, "IntermediatePEMs")), 2);
		json_decref(o);
		{
			unsigned n = 0;

			EXPECT_OK(gw_state_certs_count(gw_ca_state(ca), "ca-2", &n));
			EXPECT_EQ(n, 1);
		}
		/* errors */
		snprintf(body, sizeof(body),
			"{\"CSR\":\"x\",\"SpiffeID\":\"spiffe://example.org/a\"}");
		EXPECT_EQ(http(NULL, "POST", "/v1/connect/ca/leaf", body, &o), 400);
		EXPECT_CONTAINS(jstr(o, "error"), "expected a PEM certificate request");
		json_decref(o);
		json_object_set_new(req, "SpiffeID", json_string("spiffe://evil.org/a"));
		free(js);
		js = json_dumps(req, 0);
		EXPECT_EQ(http(NULL, "POST", "/v1/connect/ca/leaf", js, &o), 400);
		EXPECT_CONTAINS(jstr(o, "error"), "not in trust domain example.org");
		json_decref(o);
		json_object_set_new(req, "SpiffeID", json_string("spiffe://example.org/a"));
		json_object_set_new(req, "TTL", json_string("soon"));
		free(js);
		js = json_dumps(req, 0);
		EXPECT_EQ(http(NULL, "POST", "/v1/connect/ca/leaf", js, &o), 400);
		EXPECT_CONTAINS(jstr(o, "error"), "field 'TTL'");
		json_decref(o);
		json_object_del(req, "TTL");
		json_object_set_new(req, "Hosts", json_string("x"));
		free(js);
		js = json_dumps(req, 0);
		EXPECT_EQ(http(NULL, "POST", "/v1/connect/ca/leaf", js, &o), 400);
		EXPECT_CONTAINS(jstr(o, "error"), "unknown field 'Hosts'");
		json_decref(o);
		{ /* refused leaf requests (400) and what the answer says */
			static const struct {
				const char *id, *ttl, *error;
			} bad[] = {
				/* the gateway's own identities are not for callers */
				{"spiffe://example.org/gateway/web", NULL,
					"is reserved: spiffe://example.org/gateway/..."},
				{"spiffe://example.org/gateway", NULL, "is reserved"},
				{"spiffe://example.org/x/../gateway/web", NULL,
					"'..' path segment"},
				{"spiffe://example.org//gateway/web", NULL,
					"empty, '.' or '..' path segment"},
				/* a TTL beyond the backend's leaf_validity (72h) is refused, not capped */
				{"spiffe://example.org/a", "36500d",
					"TTL of 3153600000 s is longer than backend ca-2's "
					"leaf_validity (259200 s)"},
				{"spiffe://example.org/a", "73h", "leaf_validity (259200 s)"},
			};

			for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
				EXPECT_EQ(post_leaf(csr, bad[i].id, bad[i].ttl, &o), 400);
				EXPECT_CONTAINS(jstr(o, "error"), bad[i].error);
				json_decref(o);
			}
		}
		/* weak keys */
		{
			char *weak = csr_pem_key("RSA-1024");

			EXPECT_EQ(post_leaf(weak, "spiffe://example.org/a", NULL, &o), 400);
			EXPECT_CONTAINS(jstr(o, "error"), "the CSR's key is RSA-1024; at least "
							  "RSA-2048");
			json_decref(o);
			free(weak);
			weak = csr_pem_key("P-224");
			EXPECT_EQ(post_leaf(weak, "spiffe://example.org/a", NULL, &o), 400);
			EXPECT_CONTAINS(jstr(o, "error"), "EC curve 'secp224r1'; P-256");
			json_decref(o);
			free(weak);
		}
		{
			unsigned n = 0;

			EXPECT_OK(gw_state_certs_count(gw_ca_state(ca), "ca-2", &n));
			EXPECT_EQ(n, 1); /* nothing issued by the refusals */
		}
		/* the edge cases that are fine: exactly leaf_validity, RSA-2048 */
		EXPECT_EQ(post_leaf(csr, "spiffe://example.org/a", "72h", &o), 200);
		json_decref(o);
		{
			char *ok = csr_pem_key("RSA-2048");

			EXPECT_EQ(post_leaf(ok, "spiffe://example.org/gatewayish", NULL, &o), 200);
			json_decref(o);
			free(ok);
		}
		/* oversized body */
		{
			size_t big = 40000;
			char *huge = malloc(big + 1);

			memset(huge, ' ', big);
			huge[0] = '{';
			huge[big - 1] = '}';
			huge[big] = '\0';
			EXPECT_EQ(http(NULL, "POST", "/v1/connect/ca/leaf", huge, &o), 400);
			EXPECT_CONTAINS(jstr(o, "error"), "body larger than 16384 bytes");
			json_decref(o);
			free(huge);
		}
		free(js);
		json_decref(req);
		free(csr);
	}
	{ /* status, reload, unknown paths and methods */
		json_t *certs;

		EXPECT_EQ(http(NULL, "GET", "/v1/status", NULL, &o), 200);
		EXPECT_EQ(json_integer_value(json_object_get(o, "Generation")), 2);
		certs = json_object_get(json_object_get(o, "CA"), "Certificates");
		EXPECT_EQ(json_array_size(certs), 5); /* 2 roots, 2 issuers, 1 cross */
		EXPECT_TRUE(json_integer_value(json_object_get(
				    json_array_get(certs, 0), "ExpiresInSeconds")) > 0);
		json_decref(o);
		EXPECT_EQ(http(NULL, "POST", "/v1/reload", NULL, &o), 200);
		EXPECT_EQ(
			json_integer_value(json_object_get(o, "Generation")), (json_int_t)live_gen);
		EXPECT_STREQ(reload_source, "admin API");
		json_decref(o);
		/* mtlsgw-ctl says who it is; the gateway's log names it */
		snprintf(curl_ua, sizeof(curl_ua), "-A mtlsgw-ctl/%s", GW_VERSION);
		EXPECT_EQ(http(NULL, "POST", "/v1/reload", "{\"Force\":true}", &o), 409);
		curl_ua[0] = '\0';
		EXPECT_STREQ(reload_source, "mtlsgw-ctl");
		EXPECT_CONTAINS(jstr(o, "error"), "refused on purpose");
		EXPECT_EQ(json_array_size(json_object_get(o, "Errors")), 2);
		EXPECT_CONTAINS(json_string_value(json_array_get(json_object_get(o, "Errors"), 1)),
			"a second error");
		json_decref(o);
		EXPECT_EQ(http(NULL, "POST", "/v1/reload", "{\"Forse\":true}", &o), 400);
		EXPECT_CONTAINS(jstr(o, "error"), "unknown field 'Forse'");
		json_decref(o);
		EXPECT_EQ(reloads, 2);
		EXPECT_EQ(http(NULL, "GET", "/v1/nope", NULL, &o), 404);
		EXPECT_CONTAINS(jstr(o, "error"), "no such endpoint");
		json_decref(o);
		EXPECT_EQ(http(NULL, "DELETE", "/v1/connect/ca/roots", NULL, &o), 405);
		json_decref(o);
		EXPECT_EQ(http(NULL, "GET", "/v1/connect/ca/leaf", NULL, &o), 405);
		json_decref(o);
	}
	{ /* a non-root user: the file mode refuses, and so do the peer credentials */
		const char *nobody = "setpriv --reuid=nobody --regid=nogroup --clear-groups";

		EXPECT_EQ(http(nobody, "GET", "/v1/connect/ca/roots", NULL, NULL), 0);
		chmod(sock, 0666);
		EXPECT_EQ(http(nobody, "GET", "/v1/connect/ca/roots", NULL, &o), 403);
		EXPECT_CONTAINS(jstr(o, "error"), "only root");
		json_decref(o);
		chmod(sock, 0600);
	}
	atomic_store(&stop, true);
	pthread_join(th, NULL);
	gw_admin_stop(a);
	EXPECT_TRUE(access(sock, F_OK) != 0);
	{ /* the metrics port alone: GET/HEAD /metrics, nothing of the API */
		struct sockaddr_in sin = {
			.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t sl = sizeof(sin);
		int hold = socket(AF_INET, SOCK_STREAM, 0);
		char name[64], url[128], body[4096], hdr[2048];

		/* a port in use: said so, nothing left behind */
		EXPECT_TRUE(hold >= 0 && bind(hold, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
			    listen(hold, 1) == 0 &&
			    getsockname(hold, (struct sockaddr *)&sin, &sl) == 0);
		snprintf(name, sizeof(name), "127.0.0.1:%u", ntohs(sin.sin_port));
		a = NULL;
		EXPECT_ERR(gw_admin_start(&(struct gw_admin_params){.ops = &ops,
						  .metrics_sa = (struct sockaddr *)&sin,
						  .metrics_sa_len = sizeof(sin),
						  .metrics_name = name},
				   &a),
			-EADDRINUSE);
		EXPECT_TRUE(a == NULL);
		snprintf(
			url, sizeof(url), "admin.metrics_address %s: Address already in use", name);
		EXPECT_STREQ(gw_err_msg(), url);
		/* the same port once free (SO_REUSEADDR: a TIME_WAIT does not block it) */
		close(hold);
		EXPECT_OK(gw_admin_start(&(struct gw_admin_params){.ops = &ops,
						 .metrics_sa = (struct sockaddr *)&sin,
						 .metrics_sa_len = sizeof(sin),
						 .metrics_name = name},
			&a));
		if (a != NULL) {
			atomic_store(&stop, false);
			pthread_create(&th, NULL, serve, a);
			snprintf(url, sizeof(url), "http://%s/metrics", name);
			EXPECT_EQ(http_tcp("GET", url, body, sizeof(body), hdr, sizeof(hdr)), 200);
			EXPECT_CONTAINS(
				body, "# TYPE mtlsgw_test_total counter\nmtlsgw_test_total 42\n");
			EXPECT_CONTAINS(hdr, "Content-Type: text/plain; version=0.0.4");
			EXPECT_EQ(http_tcp("HEAD", url, body, sizeof(body), hdr, sizeof(hdr)), 200);
			EXPECT_CONTAINS(hdr, "Content-Type: text/plain; version=0.0.4");
			EXPECT_TRUE(strstr(body, "mtlsgw_test_total") == NULL); /* no body */
			for (unsigned i = 0; i < 3; i++) {
				static const char *const m[] = {"POST", "PUT", "DELETE"};

				EXPECT_EQ(http_tcp(m[i], url, body, sizeof(body), hdr, sizeof(hdr)),
					405);
				EXPECT_CONTAINS(hdr, "Allow: GET, HEAD");
			}
			for (unsigned i = 0; i < 4; i++) {
				static const char *const path[] = {
					"/v1/metrics", "/v1/status", "/metrics/", "/"};

				snprintf(url, sizeof(url), "http://%s%s", name, path[i]);
				EXPECT_EQ(
					http_tcp("GET", url, body, sizeof(body), hdr, sizeof(hdr)),
					404);
				EXPECT_CONTAINS(body, "this port serves GET /metrics only");
			}
			snprintf(url, sizeof(url), "http://%s/v1/reload", name);
			EXPECT_EQ(http_tcp("POST", url, body, sizeof(body), hdr, sizeof(hdr)), 405);
			EXPECT_EQ(reloads, 2); /* never reached */
			atomic_store(&stop, true);
			pthread_join(th, NULL);
		}
		gw_admin_stop(a);
		EXPECT_ERR(gw_admin_start(&(struct gw_admin_params){.ops = &ops}, &a), -EINVAL);
	}
	gw_rotation_destroy(rot);
	gw_ca_destroy(ca);
	gw_hsm_shutdown();
	if (gw_softhsm_remove(&tok) < 0)
		return 1;
	GW_TEST_END();
}
