/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_ca.c - `mtlsgw-ctl ca roots|config|rotate|sign`, `mtlsgw-ctl
 * status` and `mtlsgw-ctl reload`: the admin API (control/admin.h) from the command line, over the
 * gateway's unix socket with a small HTTP/1.0 client (one request per
 * connection, the answer ends at EOF; User-Agent mtlsgw-ctl/VERSION, so the
 * gateway's log says a reload came from here). Human tables by default, the
 * API's JSON with --json. `ca sign --config F` also works with no gateway running:
 * it opens the state store and the HSM itself, as the gateway would.
 *
 * The socket: --socket PATH, else admin.socket of --config FILE, else
 * $MTLSGW_SOCKET, else /run/mtlsgw/admin.sock.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "admin.h"
#include "ca.h"
#include "config.h"
#include "ctl.h"

#define DEFAULT_SOCKET "/run/mtlsgw/admin.sock"

/* Options every command takes. */
struct common {
	const char *socket;
	const char *config;
	bool json;
	bool force;
};

static const char *
socket_path(const struct common *o, char *buf, size_t len)
{
	struct gw_cfg *cfg = NULL;

	if (o->socket)
		return o->socket;
	if (o->config && gw_cfg_load(o->config, &cfg, NULL) == 0) {
		if (cfg->admin.socket)
			snprintf(buf, len, "%s", cfg->admin.socket);
		gw_cfg_free(cfg);
		if (buf[0])
			return buf;
	}
	if (getenv("MTLSGW_SOCKET"))
		return getenv("MTLSGW_SOCKET");
	return DEFAULT_SOCKET;
}

/*
 * One request to the admin API. Returns the HTTP status (> 0) and *out the
 * JSON answer, or -1 after printing why there is none.
 */
static int
api(const struct common *o, const char *method, const char *path, const char *body, json_t **out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char pbuf[128] = "", head[512], *buf = NULL;
	const char *sp = socket_path(o, pbuf, sizeof(pbuf));
	size_t len = 0, cap = 0, blen = body ? strlen(body) : 0;
	const char *p;
	json_error_t je;
	int fd, status = 0;
	ssize_t n;

	*out = NULL;
	if (strlen(sp) >= sizeof(sa.sun_path)) {
		gw_ctl_die(GW_CTL_FAIL, "admin socket %s: path too long", sp);
		return -1;
	}
	memcpy(sa.sun_path, sp, strlen(sp));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		gw_ctl_die(GW_CTL_FAIL, "cannot reach the gateway's admin API at %s: %s%s", sp,
			strerror(errno),
			errno == EACCES ? " (it answers root only)"
			: errno == ENOENT || errno == ECONNREFUSED
				? " (is mtlsgw running with admin.socket set? --socket PATH)"
				: "");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(head, sizeof(head),
		"%s %s HTTP/1.0\r\nHost: mtlsgw\r\nUser-Agent: mtlsgw-ctl/%s\r\n"
		"Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		method, path, GW_VERSION, blen);
	/* MSG_NOSIGNAL: a gateway closing early is an error here, not a SIGPIPE */
	if (send(fd, head, strlen(head), MSG_NOSIGNAL) != (ssize_t)strlen(head) ||
		(blen && send(fd, body, blen, MSG_NOSIGNAL) != (ssize_t)blen)) {
		gw_ctl_die(GW_CTL_FAIL, "admin API %s: send: %s", sp, strerror(errno));
		close(fd);
		return -1;
	}
	for (;;) {
		if (len + 4097 > cap) {
			char *nb = realloc(buf, cap = cap ? 2 * cap : 16384);

			if (nb == NULL || cap > (16u << 20)) {
				free(nb);
				close(fd);
				gw_ctl_die(GW_CTL_FAIL, "admin API answer too large");
				return -1;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf == NULL) {
		gw_ctl_die(GW_CTL_FAIL, "admin API %s closed the connection without answering", sp);
		return -1;
	}
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1 || !(p = strstr(buf, "\r\n\r\n")) ||
		(*out = json_loads(p + 4, 0, &je)) == NULL) {
		gw_ctl_die(GW_CTL_FAIL, "admin API %s: answer is not HTTP with JSON", sp);
		free(buf);
		return -1;
	}
	free(buf);
	return status;
}

/* A non-2xx answer: its message on stderr (and the JSON with --json). */
static int
api_failed(const struct common *o, int status, json_t *ans, const char *what)
{
	const char *m = json_string_value(json_object_get(ans, "error"));

	if (o->json)
		gw_ctl_print_json(ans);
	gw_ctl_die(GW_CTL_FAIL, "%s: %s (HTTP %d)", what, m ? m : "refused", status);
	json_decref(ans);
	return GW_CTL_FAIL;
}

/*
 * GET path for the read-only command what. With --json the answer is
 * printed as it came and the command is done (*out NULL); otherwise *out
 * is the answer for the caller to print and free. Returns GW_CTL_OK, or
 * GW_CTL_FAIL after saying why (*out NULL).
 */
static int
api_get(const struct common *o, const char *path, const char *what, json_t **out)
{
	json_t *a;
	int st;

	*out = NULL;
	if ((st = api(o, "GET", path, NULL, &a)) < 0)
		return GW_CTL_FAIL;
	if (st != 200)
		return api_failed(o, st, a, what);
	if (o->json) {
		gw_ctl_print_json(a);
		json_decref(a);
		return GW_CTL_OK;
	}
	*out = a;
	return GW_CTL_OK;
}

static const char *
js(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

static void
human_secs(json_int_t s, char *out, size_t len)
{
	const char *neg = s < 0 ? "expired " : "";

	if (s < 0)
		s = -s;
	if (s >= 2 * 86400)
		snprintf(out, len, "%s%lldd", neg, (long long)(s / 86400));
	else if (s >= 2 * 3600)
		snprintf(out, len, "%s%lldh", neg, (long long)(s / 3600));
	else
		snprintf(out, len, "%s%llds", neg, (long long)s);
	if (*neg)
		strncat(out, " ago", len - strlen(out) - 1);
}

/* Parse the common options plus extras; returns optind or -1 (usage printed). */
static int
parse(int argc, char **argv, struct common *o, const struct option *extra, size_t n_extra,
	int (*on_extra)(int c, const char *arg, void *ctx), void *ctx, const char *usage)
{
	enum { O_SOCKET = 1, O_CONFIG, O_JSON, O_FORCE, O_HELP, O_EXTRA = 100 };
	struct option opts[24] = {
		{"socket", required_argument, NULL, O_SOCKET},
		{"config", required_argument, NULL, O_CONFIG},
		{"json", no_argument, NULL, O_JSON},
		{"force", no_argument, NULL, O_FORCE},
		{"help", no_argument, NULL, O_HELP},
	};
	int c;

	for (size_t i = 0; i < n_extra && i < 18; i++)
		opts[5 + i] = extra[i];
	optind = 1;
	opterr = 0;
	while ((c = gw_ctl_getopt(argc, argv, opts)) != -1) {
		switch (c) {
		case O_SOCKET:
			o->socket = optarg;
			break;
		case O_CONFIG:
			o->config = optarg;
			break;
		case O_JSON:
			o->json = true;
			break;
		case O_FORCE:
			o->force = true;
			break;
		case O_HELP:
			fputs(usage, stdout);
			exit(GW_CTL_OK);
		default: {
			/* the command as its usage line names it: "ca roots", "status" */
			const char *cmd = usage + strlen("usage: mtlsgw-ctl ");
			char name[32];

			if (c >= O_EXTRA && on_extra && on_extra(c, optarg, ctx) == 0)
				break;
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(cmd, "[-\n") - 1, cmd);
			fputs(usage, stderr);
			gw_ctl_bad_option(name, c, argv[optind - 1]);
			return -1;
		}
		}
	}
	return optind;
}

/* ---- ca roots ------------------------------------------------------------ */

static const char roots_usage[] =
	"usage: mtlsgw-ctl ca roots [--socket PATH | --config FILE] [--json]\n\n"
	"The trust domain and every CA backend's root: which is active, its SHA-1\n"
	"ID, type, expiry and how many intermediates it serves with its leaves\n"
	"(issuer, root cross-signed by the previous backend). --json prints the API's\n"
	"answer (GET /v1/connect/ca/roots, Consul's shape).\n";

static int
ca_roots(int argc, char **argv)
{
	struct common o = {0};
	json_t *a, *r;
	size_t i;
	int rc;

	if (parse(argc, argv, &o, NULL, 0, NULL, NULL, roots_usage) < 0)
		return GW_CTL_USAGE;
	if ((rc = api_get(&o, "/v1/connect/ca/roots", "ca roots", &a)) != GW_CTL_OK || a == NULL)
		return rc;
	struct gw_ctl_table t = {.n_cols = 7};

	printf("trust domain: %s\n\n", js(a, "TrustDomain"));
	gw_ctl_table_row(&t, "NAME", "TYPE", "ACTIVE", "NOT AFTER", "EXPIRES IN", "INTER", "ID");
	json_array_foreach(json_object_get(a, "Roots"), i, r)
	{
		char left[40], inter[24];

		human_secs(json_integer_value(json_object_get(r, "ExpiresInSeconds")), left,
			sizeof(left));
		snprintf(inter, sizeof(inter), "%zu",
			json_array_size(json_object_get(r, "IntermediateCerts")));
		gw_ctl_table_row(&t, js(r, "Name"), js(r, "Type"),
			json_is_true(json_object_get(r, "Active")) ? "yes" : "no",
			js(r, "NotAfter"), left, inter, js(r, "ID"));
	}
	gw_ctl_table_print(&t);
	json_decref(a);
	return GW_CTL_OK;
}

/* ---- ca config ------------------------------------------------------------- */

static const char config_usage[] =
	"usage: mtlsgw-ctl ca config [--socket PATH | --config FILE] [--json]\n\n"
	"The CA configuration the gateway runs: the enabled backend (Provider is its\n"
	"type), the trust domain and every backend (GET /v1/connect/ca/configuration).\n";

static int
ca_config(int argc, char **argv)
{
	struct common o = {0};
	json_t *a, *c, *b;
	size_t i;
	int rc;

	if (parse(argc, argv, &o, NULL, 0, NULL, NULL, config_usage) < 0)
		return GW_CTL_USAGE;
	if ((rc = api_get(&o, "/v1/connect/ca/configuration", "ca config", &a)) != GW_CTL_OK ||
		a == NULL)
		return rc;
	c = json_object_get(a, "Config");
	printf("provider:        %s\nenabled backend: %s\ntrust domain:    %s\nbackends:\n",
		js(a, "Provider"), js(c, "EnabledBackend"), js(c, "TrustDomain"));
	json_array_foreach(json_object_get(c, "Backends"), i, b)
		printf("  %-12s %s\n", js(b, "Name"), js(b, "Type"));
	json_decref(a);
	return GW_CTL_OK;
}

/* ---- ca rotate --------------------------------------------------------------- */

static const char rotate_usage[] =
	"usage: mtlsgw-ctl ca rotate [--enable NAME] [--force] [--socket PATH | --config FILE]\n"
	"                            [--json]\n\n"
	"One step of a CA rotation (README, \"Rotate your CA\"):\n"
	"  1. add backend B to mtls.backends in the config file, then\n"
	"     `mtlsgw-ctl ca rotate`            (reloads the file: every worker trusts A and B)\n"
	"  2. `mtlsgw-ctl ca rotate --enable B` (B issues; its root cross-signed by A)\n"
	"     refused until a snapshot trusting B is live on every worker\n"
	"  3. remove A from the file (enabledBackend: B), then `mtlsgw-ctl ca rotate`\n"
	"     refused while certificates issued by A are unexpired, unless --force\n"
	"Each refusal names the rule; the running config stays.\n";

static int
rotate_extra(int c, const char *arg, void *ctx)
{
	if (c != 100)
		return -1;
	*(const char **)ctx = arg;
	return 0;
}

/*
 * POST /v1/reload, for `reload` and `ca rotate` (what): on success "<done>:
 * generation N" (the snapshot generation now published); refused, every
 * error the gateway found, one per line on stderr. --json prints the
 * answer as it came either way.
 */
static int
reload_post(const struct common *o, const char *what, const char *done)
{
	json_t *req = json_pack("{s:b}", "Force", o->force), *a, *e;
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	size_t i;
	int st;

	json_decref(req);
	if (body == NULL)
		return gw_ctl_die(GW_CTL_FAIL, "%s: out of memory", what);
	st = api(o, "POST", "/v1/reload", body, &a);
	free(body);
	if (st < 0)
		return GW_CTL_FAIL;
	if (st != 200 && json_array_size(json_object_get(a, "Errors")) == 0)
		return api_failed(o, st, a, what);
	if (o->json)
		gw_ctl_print_json(a);
	if (st == 200) {
		if (!o->json)
			printf("%s: generation %" JSON_INTEGER_FORMAT "\n", done,
				json_integer_value(json_object_get(a, "Generation")));
		json_decref(a);
		return GW_CTL_OK;
	}
	gw_ctl_die(GW_CTL_FAIL, "%s refused (HTTP %d); the running config stays:", what, st);
	json_array_foreach(json_object_get(a, "Errors"), i, e)
		fprintf(stderr, "  %s\n", json_string_value(e) ? json_string_value(e) : "?");
	json_decref(a);
	return GW_CTL_FAIL;
}

static int
ca_rotate(int argc, char **argv)
{
	static const struct option extra[] = {{"enable", required_argument, NULL, 100}};
	struct common o = {0};
	const char *enable = NULL;
	json_t *a, *req;
	char *body;
	int st;

	if (parse(argc, argv, &o, extra, 1, rotate_extra, &enable, rotate_usage) < 0)
		return GW_CTL_USAGE;
	if (!enable)
		return reload_post(&o, "ca rotate", "config reloaded");
	req = json_pack("{s:{s:s,s:b}}", "Config", "EnabledBackend", enable, "Force", o.force);
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	st = api(&o, "PUT", "/v1/connect/ca/configuration", body, &a);
	free(body);
	if (st < 0)
		return GW_CTL_FAIL;
	if (st != 200)
		return api_failed(&o, st, a, "ca rotate --enable");
	if (o.json)
		gw_ctl_print_json(a);
	else
		printf("enabled backend is now %s\n",
			js(json_object_get(a, "Config"), "EnabledBackend"));
	json_decref(a);
	return GW_CTL_OK;
}

/* ---- ca sign ------------------------------------------------------------------ */

static const char sign_usage[] =
	"usage: mtlsgw-ctl ca sign --csr FILE --spiffe-id ID [--ttl 24h] [--out FILE]\n"
	"                          [--socket PATH | --config FILE] [--json]\n\n"
	"Issue a client certificate from the enabled CA backend for the CSR (PEM), with\n"
	"the SPIFFE ID (spiffe://<trust domain>/...) as its URI SAN. Prints the\n"
	"certificate and the intermediates to send with it (PEM) to stdout or --out.\n"
	"Through the running gateway (POST /v1/connect/ca/leaf); with --config FILE\n"
	"without it: the state store and HSM that FILE names are opened directly.\n"
	"Every issued certificate is recorded in the state store.\n";

struct sign_opts {
	const char *csr, *id, *ttl, *out;
	bool offline;
};

static int
sign_extra(int c, const char *arg, void *ctx)
{
	struct sign_opts *s = ctx;

	switch (c) {
	case 100:
		s->csr = arg;
		return 0;
	case 101:
		s->id = arg;
		return 0;
	case 102:
		s->ttl = arg;
		return 0;
	case 103:
		s->out = arg;
		return 0;
	default:
		return -1;
	}
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (f == NULL)
		return NULL;
	buf = malloc(65537);
	if (buf)
		len = fread(buf, 1, 65536, f);
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

static int
sign_offline(const struct common *o, const struct sign_opts *s, const char *csr_pem, uint64_t ttl,
	FILE *out)
{
	struct gw_cfg *cfg = NULL;
	struct gw_ca_params p;
	struct gw_ca *ca = NULL;
	char token[33];
	BIO *b = BIO_new_mem_buf(csr_pem, -1);
	X509_REQ *csr = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
	X509 *x = NULL;
	STACK_OF(X509) *chain = NULL;
	int rc = GW_CTL_FAIL;

	BIO_free(b);
	if (csr == NULL)
		return gw_ctl_die(
			GW_CTL_FAIL, "ca sign: %s: not a PEM certificate request", s->csr);
	if (gw_cfg_load(o->config, &cfg, stderr) < 0) {
		X509_REQ_free(csr);
		return gw_ctl_die(GW_CTL_USAGE, "ca sign: config %s rejected", o->config);
	}
	if (!cfg->has_mtls || cfg->mtls.n_backends == 0) {
		gw_ctl_die(GW_CTL_USAGE, "ca sign: %s has no mtls backends", o->config);
		goto out;
	}
	/* as the gateway does (hsm.env): before the PKCS#11 module loads */
	for (unsigned i = 0; i < cfg->hsm.n_env; i++)
		(void)setenv(cfg->hsm.env[i].name, cfg->hsm.env[i].value, 1);
	gw_ca_params_from_cfg(cfg, &p, token);
	if (gw_ca_create(&cfg->mtls, &p, &ca) < 0) {
		gw_ctl_die(GW_CTL_FAIL, "ca sign: %s", gw_err_msg());
		goto out;
	}
	if (gw_ca_sign(ca,
		    &(struct gw_ca_leaf_req){.csr = csr,
			    .spiffe_id = s->id,
			    .ttl_s = ttl,
			    .kind = GW_STATE_KIND_CLIENT},
		    &x, &chain) < 0) {
		gw_ctl_die(GW_CTL_FAIL, "ca sign: %s", gw_err_msg());
		goto out;
	}
	if (o->json) {
		char *pem = gw_ca_pem(x), na[32];
		time_t t = gw_ca_not_after(x);
		json_t *inter = json_array();

		strftime(na, sizeof(na), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
		for (int i = 0; i < sk_X509_num(chain); i++) {
			char *ip = gw_ca_pem(sk_X509_value(chain, i));

			json_array_append_new(inter, json_string(ip ? ip : ""));
			free(ip);
		}
		json_t *j = json_pack("{s:s,s:s,s:o,s:s,s:s}", "SpiffeID", s->id, "CertPEM",
			pem ? pem : "", "IntermediatePEMs", inter, "NotAfter", na, "Backend",
			gw_ca_enabled(ca));

		gw_ctl_print_json(j);
		json_decref(j);
		free(pem);
	}
	PEM_write_X509(out, x);
	for (int i = 0; i < sk_X509_num(chain); i++)
		PEM_write_X509(out, sk_X509_value(chain, i));
	rc = GW_CTL_OK;
out:
	X509_free(x);
	sk_X509_pop_free(chain, X509_free);
	X509_REQ_free(csr);
	gw_ca_destroy(ca);
	gw_cfg_free(cfg);
	gw_hsm_shutdown();
	return rc;
}

static int
ca_sign(int argc, char **argv)
{
	static const struct option extra[] = {
		{"csr", required_argument, NULL, 100},
		{"spiffe-id", required_argument, NULL, 101},
		{"ttl", required_argument, NULL, 102},
		{"out", required_argument, NULL, 103},
	};
	struct common o = {0};
	struct sign_opts s = {0};
	uint64_t ttl = 0;
	char *csr;
	FILE *out = stdout;
	json_t *req, *a;
	int st, rc;

	if (parse(argc, argv, &o, extra, 4, sign_extra, &s, sign_usage) < 0)
		return GW_CTL_USAGE;
	s.offline = o.config && !o.socket;
	if (!s.csr || !s.id) {
		fputs(sign_usage, stderr);
		return gw_ctl_die(GW_CTL_USAGE, "ca sign needs --csr and --spiffe-id");
	}
	if (s.ttl && !gw_admin_parse_duration(s.ttl, &ttl))
		return gw_ctl_die(GW_CTL_USAGE,
			"ca sign: --ttl '%s' is not a duration (e.g. 90s, 15m, 24h, 7d)", s.ttl);
	if ((csr = slurp(s.csr)) == NULL)
		return gw_ctl_die(GW_CTL_FAIL, "ca sign: %s: %s", s.csr, strerror(errno));
	if (s.out && (out = fopen(s.out, "w")) == NULL) {
		free(csr);
		return gw_ctl_die(GW_CTL_FAIL, "ca sign: %s: %s", s.out, strerror(errno));
	}
	if (s.offline) {
		rc = sign_offline(&o, &s, csr, ttl, out);
		goto done;
	}
	req = json_pack("{s:s,s:s}", "CSR", csr, "SpiffeID", s.id);
	if (ttl)
		json_object_set_new(req, "TTL", json_integer((json_int_t)ttl));
	{
		char *body = json_dumps(req, JSON_COMPACT);

		json_decref(req);
		st = api(&o, "POST", "/v1/connect/ca/leaf", body, &a);
		free(body);
	}
	if (st < 0) {
		rc = GW_CTL_FAIL;
		goto done;
	}
	if (st != 200) {
		rc = api_failed(&o, st, a, "ca sign");
		goto done;
	}
	if (o.json)
		gw_ctl_print_json(a);
	{
		size_t i;
		json_t *p;

		fputs(js(a, "CertPEM"), out);
		json_array_foreach(json_object_get(a, "IntermediatePEMs"), i, p)
			fputs(json_string_value(p) ? json_string_value(p) : "", out);
	}
	json_decref(a);
	rc = GW_CTL_OK;
done:
	if (out != stdout && fclose(out) != 0 && rc == GW_CTL_OK)
		rc = gw_ctl_die(GW_CTL_FAIL, "ca sign: %s: %s", s.out, strerror(errno));
	free(csr);
	return rc;
}

/* ---- groups ------------------------------------------------------------------ */

static int
ca_group(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int, char **);
	} cmds[] = {
		{"roots", ca_roots},
		{"config", ca_config},
		{"rotate", ca_rotate},
		{"sign", ca_sign},
	};

	if (argc >= 2)
		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strcmp(argv[1], cmds[i].name) == 0)
				return cmds[i].run(argc - 1, argv + 1);
	fprintf(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
		"usage: mtlsgw-ctl ca <command> [options] (--help on every command)\n\n"
		"commands:\n"
		"  roots    every backend's root: active, expiry, ID\n"
		"  config   the enabled backend and the trust domain\n"
		"  rotate   one step of a CA rotation (reload, or --enable NAME)\n"
		"  sign     issue a client certificate for a CSR and a SPIFFE ID\n");
	return argc >= 2 && strcmp(argv[1], "--help") == 0 ? GW_CTL_OK : GW_CTL_USAGE;
}

static const char status_usage[] =
	"usage: mtlsgw-ctl status [--socket PATH | --config FILE] [--json]\n\n"
	"What the running gateway reports (GET /v1/status), as tables: the snapshot\n"
	"generation, the HSM, the listeners, each worker's generation, busy time and\n"
	"open connections, and the time to expiry of every CA root, issuer and\n"
	"identity certificate, and of every trust anchor and identity file of the\n"
	"config (BACKEND \"(file)\"). --json prints the API's answer instead.\n";

/* One line "KEY  value" of the status head. */
static void status_line(const char *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
status_line(const char *k, const char *fmt, ...)
{
	va_list ap;

	printf("%-12s ", k);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* A field no table below knows (a newer gateway): on one line. */
static void
status_other(const char *k, json_t *v)
{
	const char *sk;
	json_t *sv;
	char line[512] = "";
	size_t used = 0;

	if (json_is_array(v)) {
		status_line(k, "%zu entries (--json shows them)", json_array_size(v));
		return;
	}
	if (!json_is_object(v)) {
		char *x = json_dumps(v, JSON_ENCODE_ANY);

		status_line(k, "%s", x && json_is_string(v) ? json_string_value(v) : x ? x : "?");
		free(x);
		return;
	}
	json_object_foreach(v, sk, sv)
	{
		char *x = json_is_string(sv) ? NULL : json_dumps(sv, JSON_ENCODE_ANY);
		int w = snprintf(line + used, sizeof(line) - used, "%s%s %s", used ? ", " : "", sk,
			x ? x : json_string_value(sv));

		free(x);
		if (w < 0 || (size_t)w >= sizeof(line) - used)
			break;
		used += (size_t)w;
	}
	status_line(k, "%s", line);
}

static int
status_run(int argc, char **argv)
{
	static const char *const known[] = {"Generation", "LiveGeneration", "TscHz", "TLS", "HSM",
		"Listeners", "Workers", "CA", "Identities", "ListenerCertificates", NULL};
	struct common o = {0};
	struct gw_ctl_table t = {0};
	json_t *a, *v, *hsm, *tls, *ca;
	const char *k;
	double hz;
	size_t i;
	int rc;

	if (parse(argc, argv, &o, NULL, 0, NULL, NULL, status_usage) < 0)
		return GW_CTL_USAGE;
	if ((rc = api_get(&o, "/v1/status", "status", &a)) != GW_CTL_OK || a == NULL)
		return rc;
	if ((v = json_object_get(a, "Generation")))
		status_line("generation", "%" JSON_INTEGER_FORMAT "%s", json_integer_value(v),
			json_object_get(a, "LiveGeneration") &&
					json_integer_value(json_object_get(a, "LiveGeneration")) !=
						json_integer_value(v)
				? " (not yet on every worker)"
				: "");
	if ((hsm = json_object_get(a, "HSM")))
		status_line("hsm", "%s, %" JSON_INTEGER_FORMAT " signature failures",
			js(hsm, "Module"),
			json_integer_value(json_object_get(hsm, "SignatureFailures")));
	if ((tls = json_object_get(a, "TLS")))
		status_line("tls",
			"%" JSON_INTEGER_FORMAT " established, %" JSON_INTEGER_FORMAT
			" handshaking",
			json_integer_value(json_object_get(tls, "Established")),
			json_integer_value(json_object_get(tls, "Handshaking")));
	json_object_foreach(a, k, v)
	{
		size_t n;

		for (n = 0; known[n] && strcmp(known[n], k) != 0; n++)
			;
		if (!known[n])
			status_other(k, v);
	}

	t.n_cols = 4;
	gw_ctl_table_row(&t, "LISTENER", "ADDRESS", "SERVICE", "TRUST");
	json_array_foreach(json_object_get(a, "Listeners"), i, v) gw_ctl_table_row(
		&t, js(v, "Name"), js(v, "Address"), js(v, "Service"), js(v, "Trust"));
	if (t.n_rows > 1)
		putchar('\n');
	gw_ctl_table_print(&t);

	hz = (double)json_integer_value(json_object_get(a, "TscHz"));
	t.n_cols = 5;
	gw_ctl_table_row(&t, "WORKER", "LCORE", "GENERATION", "BUSY", "CONNECTIONS");
	json_array_foreach(json_object_get(a, "Workers"), i, v)
	{
		char id[24], lc[24], gen[24], busy[32], conns[24] = "-";

		snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT,
			json_integer_value(json_object_get(v, "Id")));
		snprintf(lc, sizeof(lc), "%" JSON_INTEGER_FORMAT,
			json_integer_value(json_object_get(v, "Lcore")));
		snprintf(gen, sizeof(gen), "%" JSON_INTEGER_FORMAT,
			json_integer_value(json_object_get(v, "Generation")));
		if (hz > 0)
			snprintf(busy, sizeof(busy), "%.1fs",
				(double)json_integer_value(json_object_get(v, "BusyCycles")) / hz);
		else
			snprintf(busy, sizeof(busy), "-");
		/* "in use/slots" (dataplane.tcp.max_connections) */
		if (json_object_get(v, "Connections") && json_object_get(v, "MaxConnections"))
			snprintf(conns, sizeof(conns),
				"%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
				json_integer_value(json_object_get(v, "Connections")),
				json_integer_value(json_object_get(v, "MaxConnections")));
		else if (json_object_get(v, "Connections"))
			snprintf(conns, sizeof(conns), "%" JSON_INTEGER_FORMAT,
				json_integer_value(json_object_get(v, "Connections")));
		gw_ctl_table_row(&t, id, lc, gen, busy, conns);
	}
	if (t.n_rows > 1)
		putchar('\n');
	gw_ctl_table_print(&t);

	ca = json_object_get(a, "CA");
	if (ca)
		printf("\ntrust domain %s, enabled backend %s\n", js(ca, "TrustDomain"),
			js(ca, "EnabledBackend"));
	t.n_cols = 4;
	gw_ctl_table_row(&t, "BACKEND", "CERTIFICATE", "NOT AFTER", "EXPIRES IN");
	json_array_foreach(json_object_get(ca, "Certificates"), i, v)
	{
		char left[40];

		human_secs(json_integer_value(json_object_get(v, "ExpiresInSeconds")), left,
			sizeof(left));
		gw_ctl_table_row(
			&t, js(v, "Backend"), js(v, "Certificate"), js(v, "NotAfter"), left);
	}
	json_array_foreach(json_object_get(a, "Identities"), i, v)
	{
		char left[40], what[256];

		human_secs(json_integer_value(json_object_get(v, "ExpiresInSeconds")), left,
			sizeof(left));
		snprintf(what, sizeof(what), "identity %s", js(v, "Listener"));
		gw_ctl_table_row(&t, js(v, "Backend"), what, js(v, "NotAfter"), left);
	}
	/* the config's own trust anchors and identity files: no backend */
	json_array_foreach(json_object_get(a, "ListenerCertificates"), i, v)
	{
		char left[40], what[1024];

		human_secs(json_integer_value(json_object_get(v, "ExpiresInSeconds")), left,
			sizeof(left));
		snprintf(what, sizeof(what), "%s %s: %s", js(v, "Kind"), js(v, "Listener"),
			js(v, "Name"));
		gw_ctl_table_row(&t, "(file)", what, js(v, "NotAfter"), left);
	}
	if (t.n_rows > 1)
		putchar('\n');
	gw_ctl_table_print(&t);
	json_decref(a);
	return GW_CTL_OK;
}

/* ---- reload ------------------------------------------------------------------ */

static const char reload_usage[] =
	"usage: mtlsgw-ctl reload [--force] [--socket PATH | --config FILE] [--json]\n\n"
	"Make the running gateway read its config file again (POST /v1/reload), as\n"
	"SIGHUP does: all or nothing. Prints the snapshot generation now published\n"
	"(\"reloaded: generation 5\"), or every error found in the file, one per line,\n"
	"and exits 1: the running config stays. --force takes a CA rotation's step 3\n"
	"while certificates issued by the removed backend are unexpired.\n";

static int
reload_run(int argc, char **argv)
{
	struct common o = {0};
	int i = parse(argc, argv, &o, NULL, 0, NULL, NULL, reload_usage);

	if (i < 0)
		return GW_CTL_USAGE;
	if (i < argc) {
		fputs(reload_usage, stderr);
		return gw_ctl_die(GW_CTL_USAGE, "reload: unexpected argument '%s'", argv[i]);
	}
	return reload_post(&o, "reload", "reloaded");
}

const struct gw_ctl_group gw_ctl_group_ca = {
	.name = "ca",
	.summary = "CA backends: roots, config, rotate, sign (admin API)",
	.run = ca_group,
};

const struct gw_ctl_group gw_ctl_group_status = {
	.name = "status",
	.summary = "the running gateway: workers, generations, certificate expiries",
	.run = status_run,
};

const struct gw_ctl_group gw_ctl_group_reload = {
	.name = "reload",
	.summary = "make the running gateway read its config again (admin API)",
	.run = reload_run,
};
