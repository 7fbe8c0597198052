/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * config.c - load the YAML config into struct gw_cfg (see config.h).
 *
 * Three steps, each reporting every error it finds as "FILE:LINE: FIELD:
 * message":
 *  1. config_yaml.c walks the document against the cyaml schema below
 *     (shape: keys, types, list sizes) and indexes the line of every key;
 *  2. libcyaml loads the document into the raw_* structs (strings where we
 *     parse ourselves, so enum and address errors can say what was expected);
 *  3. convert raw_* into struct gw_cfg, applying defaults, parsing addresses,
 *     mapping enums, opening and parsing every file named, and checking
 *     fields against each other.
 * Nothing is returned unless all three pass: a half-valid config is never
 * handed out.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "config_internal.h"
#include "gw_duration.h"
#include "gw_x509.h"
#include "trust.h"

#define GW_CFG_DEFAULT_STATE_DIR "/var/lib/mtlsgw"
#define GW_CFG_MAX_LISTENERS 64        /* each worker's TCP stack has 64 listener slots */
#define GW_CFG_MAX_LIST 256            /* any other list: anchors, SNI names, rules ... */
#define GW_CFG_STR_MAX 4095            /* paths and URIs */
#define GW_CFG_MAX_LCORE 128           /* DPDK's default RTE_MAX_LCORE */
#define GW_CFG_MAX_PEM GW_MATERIAL_MAX /* a CA bundle or CRL larger than this is a mistake */

/* ---- raw structs: what libcyaml loads ------------------------------------ */

struct raw_port {
	char *name, *driver, *device, *address, *gateway, *role, *peer_address;
	unsigned mtu;
};

struct raw_dp_tls {
	char *handshake_timeout, *idle_timeout;
	unsigned max_handshakes;
};

struct raw_dp_tcp {
	char *time_wait, *handshake_timeout, *idle_timeout, *rto_min;
	unsigned sndbuf, rcvbuf, max_connections;
};

struct raw_dataplane {
	unsigned *workers;
	unsigned workers_count;
	unsigned main_lcore;
	bool no_huge;
	unsigned memory_mb;
	char *file_prefix;
	char *idle;
	struct raw_port *ports;
	unsigned ports_count;
	struct raw_dp_tls *tls;
	struct raw_dp_tcp *tcp;
};

struct raw_identity {
	char *cert, *key;
	char **sni;
	unsigned sni_count;
};

struct raw_tls {
	char *min_version;
	char **ciphersuites;
	unsigned ciphersuites_count;
	struct raw_identity *identity;
	unsigned identity_count;
	char *client_auth;
	char *ticket_lifetime;
	bool *session_tickets;
};

struct raw_allow {
	char **spiffe;
	unsigned spiffe_count;
	char **dns;
	unsigned dns_count;
	char **cn;
	unsigned cn_count;
};

struct raw_trust {
	char *mode;
	char **certs;
	unsigned certs_count;
	char **pins_sha256;
	unsigned pins_sha256_count;
	char **crl;
	unsigned crl_count;
	char *crl_check;
	unsigned max_depth;
	struct raw_allow *allow;
};

struct raw_upstream {
	char **servers;
	unsigned servers_count;
	char *proxy_protocol;
};

struct raw_listener {
	char *name, *address, *service;
	unsigned backlog;
	struct raw_tls *tls;
	struct raw_trust *trust;
	struct raw_upstream *upstream;
};

struct raw_hsm {
	char *module, *pin_file, *pin_env;
	unsigned threads, queue;
	char *sign_timeout, *inline_below;
	unsigned *cpus;
	unsigned cpus_count;
};

struct raw_admin {
	char *socket;
	char *metrics_address;
};

struct raw_access_log {
	bool enabled;
	char *path, *format;
	unsigned refusals_per_second;
};

struct raw_ca_conf {
	char *key_type, *root_validity, *leaf_validity, *cert, *key, *url, *profile, *ca_file;
};

struct raw_backend {
	char *name, *type;
	struct raw_ca_conf *conf;
};

struct raw_mtls {
	char *trust_domain, *enabled_camel, *enabled_snake;
	struct raw_backend *backends;
	unsigned backends_count;
};

struct raw_etcd {
	char **endpoints;
	unsigned endpoints_count;
	char *ca, *cert, *key, *timeout;
};

struct raw_cluster {
	char *name, *node, *ticket_key, *lease_ttl;
	struct raw_etcd *etcd;
};

struct raw_cfg {
	struct raw_dataplane *dataplane;
	struct raw_listener *listeners;
	unsigned listeners_count;
	struct raw_hsm *hsm;
	char *state_dir;
	struct raw_admin *admin;
	struct raw_access_log *access_log;
	struct raw_mtls *mtls;
	struct raw_cluster *cluster;
};

/* ---- the schema ---------------------------------------------------------- */

#define OPT CYAML_FLAG_OPTIONAL
#define STR(k, fl, st, m) CYAML_FIELD_STRING_PTR(k, fl, st, m, 0, GW_CFG_STR_MAX)
#define STRS(k, st, m, max) \
	CYAML_FIELD_SEQUENCE(k, CYAML_FLAG_POINTER | OPT, st, m, &str_entry, 0, max)

static const cyaml_schema_value_t str_entry = {
	CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, GW_CFG_STR_MAX),
};
static const cyaml_schema_value_t uint_entry = {
	CYAML_VALUE_UINT(CYAML_FLAG_DEFAULT, unsigned),
};

static const cyaml_schema_field_t port_fields[] = {
	STR("name", 0, struct raw_port, name),
	STR("driver", 0, struct raw_port, driver),
	STR("device", 0, struct raw_port, device),
	STR("address", 0, struct raw_port, address),
	STR("gateway", OPT, struct raw_port, gateway),
	CYAML_FIELD_UINT("mtu", OPT, struct raw_port, mtu),
	STR("role", OPT, struct raw_port, role),
	STR("peer_address", OPT, struct raw_port, peer_address),
	CYAML_FIELD_END,
};
static const cyaml_schema_value_t port_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_port, port_fields),
};

static const cyaml_schema_field_t dp_tls_fields[] = {
	STR("handshake_timeout", OPT, struct raw_dp_tls, handshake_timeout),
	STR("idle_timeout", OPT, struct raw_dp_tls, idle_timeout),
	CYAML_FIELD_UINT("max_handshakes", OPT, struct raw_dp_tls, max_handshakes),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t dp_tcp_fields[] = {
	STR("time_wait", OPT, struct raw_dp_tcp, time_wait),
	STR("handshake_timeout", OPT, struct raw_dp_tcp, handshake_timeout),
	STR("idle_timeout", OPT, struct raw_dp_tcp, idle_timeout),
	STR("rto_min", OPT, struct raw_dp_tcp, rto_min),
	CYAML_FIELD_UINT("sndbuf", OPT, struct raw_dp_tcp, sndbuf),
	CYAML_FIELD_UINT("rcvbuf", OPT, struct raw_dp_tcp, rcvbuf),
	CYAML_FIELD_UINT("max_connections", OPT, struct raw_dp_tcp, max_connections),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t dataplane_fields[] = {
	CYAML_FIELD_SEQUENCE("workers", CYAML_FLAG_POINTER, struct raw_dataplane, workers,
		&uint_entry, 0, GW_CFG_MAX_WORKERS),
	CYAML_FIELD_UINT("main_lcore", OPT, struct raw_dataplane, main_lcore),
	CYAML_FIELD_BOOL("no_huge", OPT, struct raw_dataplane, no_huge),
	CYAML_FIELD_UINT("memory_mb", OPT, struct raw_dataplane, memory_mb),
	STR("file_prefix", OPT, struct raw_dataplane, file_prefix),
	STR("idle", OPT, struct raw_dataplane, idle),
	CYAML_FIELD_SEQUENCE("ports", CYAML_FLAG_POINTER, struct raw_dataplane, ports, &port_entry,
		0, GW_CFG_MAX_PORTS),
	CYAML_FIELD_MAPPING_PTR("tls", OPT, struct raw_dataplane, tls, dp_tls_fields),
	CYAML_FIELD_MAPPING_PTR("tcp", OPT, struct raw_dataplane, tcp, dp_tcp_fields),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t identity_fields[] = {
	STR("cert", 0, struct raw_identity, cert),
	STR("key", 0, struct raw_identity, key),
	STRS("sni", struct raw_identity, sni, GW_CFG_MAX_LIST),
	CYAML_FIELD_END,
};
static const cyaml_schema_value_t identity_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_identity, identity_fields),
};

static const cyaml_schema_field_t tls_fields[] = {
	STR("min_version", OPT, struct raw_tls, min_version),
	STRS("ciphersuites", struct raw_tls, ciphersuites, GW_CFG_MAX_LIST),
	CYAML_FIELD_SEQUENCE("identity", CYAML_FLAG_POINTER | OPT, struct raw_tls, identity,
		&identity_entry, 0, GW_CFG_MAX_LIST),
	STR("client_auth", OPT, struct raw_tls, client_auth),
	STR("ticket_lifetime", OPT, struct raw_tls, ticket_lifetime),
	CYAML_FIELD_BOOL_PTR("session_tickets", OPT, struct raw_tls, session_tickets),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t allow_fields[] = {
	STRS("spiffe", struct raw_allow, spiffe, GW_CFG_MAX_LIST),
	STRS("dns", struct raw_allow, dns, GW_CFG_MAX_LIST),
	STRS("cn", struct raw_allow, cn, GW_CFG_MAX_LIST),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t trust_fields[] = {
	STR("mode", 0, struct raw_trust, mode),
	STRS("certs", struct raw_trust, certs, GW_CFG_MAX_LIST),
	STRS("pins_sha256", struct raw_trust, pins_sha256, GW_CFG_MAX_LIST),
	STRS("crl", struct raw_trust, crl, GW_CFG_MAX_LIST),
	STR("crl_check", OPT, struct raw_trust, crl_check),
	CYAML_FIELD_UINT("max_depth", OPT, struct raw_trust, max_depth),
	CYAML_FIELD_MAPPING_PTR("allow", OPT, struct raw_trust, allow, allow_fields),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t upstream_fields[] = {
	STRS("servers", struct raw_upstream, servers, GW_CFG_MAX_LIST),
	STR("proxy_protocol", OPT, struct raw_upstream, proxy_protocol),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t listener_fields[] = {
	STR("name", 0, struct raw_listener, name),
	STR("address", 0, struct raw_listener, address),
	STR("service", 0, struct raw_listener, service),
	CYAML_FIELD_UINT("backlog", OPT, struct raw_listener, backlog),
	CYAML_FIELD_MAPPING_PTR("tls", OPT, struct raw_listener, tls, tls_fields),
	CYAML_FIELD_MAPPING_PTR("trust", OPT, struct raw_listener, trust, trust_fields),
	CYAML_FIELD_MAPPING_PTR("upstream", OPT, struct raw_listener, upstream, upstream_fields),
	CYAML_FIELD_END,
};
static const cyaml_schema_value_t listener_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_listener, listener_fields),
};

static const cyaml_schema_field_t hsm_fields[] = {
	STR("module", OPT, struct raw_hsm, module),
	STR("pin_file", OPT, struct raw_hsm, pin_file),
	STR("pin_env", OPT, struct raw_hsm, pin_env),
	/* its keys are variable names: read by the first pass (walk_env) */
	CYAML_FIELD_IGNORE("env", OPT),
	CYAML_FIELD_UINT("threads", OPT, struct raw_hsm, threads),
	CYAML_FIELD_UINT("queue", OPT, struct raw_hsm, queue),
	STR("sign_timeout", OPT, struct raw_hsm, sign_timeout),
	STR("inline_below", OPT, struct raw_hsm, inline_below),
	CYAML_FIELD_SEQUENCE("cpus", CYAML_FLAG_POINTER | OPT, struct raw_hsm, cpus, &uint_entry, 0,
		GW_CFG_MAX_HSM_CPUS),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t admin_fields[] = {
	STR("socket", OPT, struct raw_admin, socket),
	STR("metrics_address", OPT, struct raw_admin, metrics_address),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t access_log_fields[] = {
	CYAML_FIELD_BOOL("enabled", OPT, struct raw_access_log, enabled),
	STR("path", OPT, struct raw_access_log, path),
	STR("format", OPT, struct raw_access_log, format),
	CYAML_FIELD_UINT("refusals_per_second", OPT, struct raw_access_log, refusals_per_second),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t ca_conf_fields[] = {
	STR("key_type", OPT, struct raw_ca_conf, key_type),
	STR("root_validity", OPT, struct raw_ca_conf, root_validity),
	STR("leaf_validity", OPT, struct raw_ca_conf, leaf_validity),
	STR("cert", OPT, struct raw_ca_conf, cert),
	STR("key", OPT, struct raw_ca_conf, key),
	STR("url", OPT, struct raw_ca_conf, url),
	STR("profile", OPT, struct raw_ca_conf, profile),
	STR("ca_file", OPT, struct raw_ca_conf, ca_file),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t backend_fields[] = {
	STR("name", 0, struct raw_backend, name),
	STR("type", 0, struct raw_backend, type),
	CYAML_FIELD_MAPPING_PTR("conf", OPT, struct raw_backend, conf, ca_conf_fields),
	CYAML_FIELD_END,
};
static const cyaml_schema_value_t backend_entry = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_backend, backend_fields),
};

static const cyaml_schema_field_t mtls_fields[] = {
	STR("trust_domain", OPT, struct raw_mtls, trust_domain),
	/* issue 7 spells it enabledBackend (Consul's shape); the snake_case
	 * spelling of every other key is accepted too, but not both at once */
	STR("enabledBackend", OPT, struct raw_mtls, enabled_camel),
	STR("enabled_backend", OPT, struct raw_mtls, enabled_snake),
	CYAML_FIELD_SEQUENCE("backends", CYAML_FLAG_POINTER | OPT, struct raw_mtls, backends,
		&backend_entry, 0, GW_CFG_MAX_LIST),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t etcd_fields[] = {
	CYAML_FIELD_SEQUENCE("endpoints", CYAML_FLAG_POINTER, struct raw_etcd, endpoints,
		&str_entry, 0, GW_CFG_MAX_ETCD),
	STR("ca", OPT, struct raw_etcd, ca),
	STR("cert", OPT, struct raw_etcd, cert),
	STR("key", OPT, struct raw_etcd, key),
	STR("timeout", OPT, struct raw_etcd, timeout),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t cluster_fields[] = {
	STR("name", 0, struct raw_cluster, name),
	STR("node", OPT, struct raw_cluster, node),
	CYAML_FIELD_MAPPING_PTR("etcd", 0, struct raw_cluster, etcd, etcd_fields),
	STR("ticket_key", 0, struct raw_cluster, ticket_key),
	STR("lease_ttl", OPT, struct raw_cluster, lease_ttl),
	CYAML_FIELD_END,
};

static const cyaml_schema_field_t top_fields[] = {
	CYAML_FIELD_MAPPING_PTR("dataplane", 0, struct raw_cfg, dataplane, dataplane_fields),
	CYAML_FIELD_SEQUENCE("listeners", CYAML_FLAG_POINTER | OPT, struct raw_cfg, listeners,
		&listener_entry, 0, GW_CFG_MAX_LISTENERS),
	CYAML_FIELD_MAPPING_PTR("hsm", OPT, struct raw_cfg, hsm, hsm_fields),
	STR("state_dir", OPT, struct raw_cfg, state_dir),
	CYAML_FIELD_MAPPING_PTR("admin", OPT, struct raw_cfg, admin, admin_fields),
	CYAML_FIELD_MAPPING_PTR("access_log", OPT, struct raw_cfg, access_log, access_log_fields),
	CYAML_FIELD_MAPPING_PTR("mtls", OPT, struct raw_cfg, mtls, mtls_fields),
	CYAML_FIELD_MAPPING_PTR("cluster", OPT, struct raw_cfg, cluster, cluster_fields),
	CYAML_FIELD_END,
};

static const cyaml_schema_value_t top_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_cfg, top_fields),
};

/* ---- small parsers --------------------------------------------------------- */

struct name_val {
	const char *name;
	int val;
};

/* Map s through tab; on a miss report "'s' is not one of a, b, c". */
static int
enum_map(struct gw_cfg_ctx *c, const char *pfx, const char *key, const char *s,
	const struct name_val *tab, size_t n, int *out)
{
	char list[160] = "";
	size_t used = 0;

	for (size_t i = 0; i < n; i++) {
		if (strcmp(s, tab[i].name) == 0) {
			*out = tab[i].val;
			return 0;
		}
	}
	for (size_t i = 0; i < n && used < sizeof(list); i++)
		used += (size_t)snprintf(
			list + used, sizeof(list) - used, "%s%s", i ? ", " : "", tab[i].name);
	gw_cfg_err(c, 0, pfx, key, "'%s' is not one of %s", s, list);
	return -GW_E_CONFIG;
}

#define ENUM(c, pfx, key, s, tab, out) \
	enum_map(c, pfx, key, s, tab, sizeof(tab) / sizeof(tab[0]), out)

/* Strict dotted quad: four decimal parts 0..255, nothing else. */
static bool
parse_ip(const char *s, uint32_t *ip_be)
{
	unsigned part[4];
	int used = 0;

	if (strlen(s) > 15 || !isdigit((unsigned char)s[0]))
		return false;
	if (sscanf(s, "%3u.%3u.%3u.%3u%n", &part[0], &part[1], &part[2], &part[3], &used) != 4 ||
		s[used] != '\0')
		return false;
	for (int i = 0; i < 4; i++)
		if (part[i] > 255)
			return false;
	/* refuse "1.+2.3.4" and friends that sscanf would take */
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return false;
	*ip_be = htonl(part[0] << 24 | part[1] << 16 | part[2] << 8 | part[3]);
	return true;
}

static bool
parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end || errno || v > max)
		return false;
	*out = v;
	return true;
}

/* "a.b.c.d:port", port 1..65535. */
static bool
parse_ep(const char *s, struct gw_cfg_ep *ep)
{
	const char *colon = strrchr(s, ':');
	char ip[16];
	unsigned long port;

	if (!colon || (size_t)(colon - s) >= sizeof(ip))
		return false;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	if (!parse_ip(ip, &ep->ip) || !parse_uint(colon + 1, 65535, &port) || port == 0)
		return false;
	ep->port = htons((uint16_t)port);
	return true;
}

static uint32_t
mask_of(uint8_t len)
{
	return len == 0 ? 0 : htonl(~0u << (32 - len));
}

static const char *
ip_str(uint32_t ip_be, char buf[static INET_ADDRSTRLEN])
{
	struct in_addr a = {.s_addr = ip_be};

	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

/*
 * An optional duration key, read by parse (gw_duration.h) in its unit, in
 * [min, max] into *out (left as is when absent). units lists the units it
 * takes with an example, range how the bounds read, e.g. "1s..10m".
 */
static void
conv_duration(struct gw_cfg_ctx *c, const char *pfx, const char *key, const char *s,
	int (*parse)(const char *, uint64_t *), const char *units, uint64_t min, uint64_t max,
	const char *range, uint32_t *out)
{
	uint64_t v;

	if (!s)
		return;
	if (parse(s, &v) < 0)
		gw_cfg_err(c, 0, pfx, key,
			"'%s' is not a duration (expected a number and one of %s)", s, units);
	else if (v < min || v > max)
		gw_cfg_err(c, 0, pfx, key, "'%s' is out of range (expected %s)", s, range);
	else
		*out = (uint32_t)v;
}

/* conv_duration in milliseconds */
static void
conv_duration_ms(struct gw_cfg_ctx *c, const char *pfx, const char *key, const char *s,
	uint64_t min_ms, uint64_t max_ms, const char *range, uint32_t *out)
{
	conv_duration(c, pfx, key, s, gw_duration_parse_ms, "ms, s, m, h, d, e.g. 10s", min_ms,
		max_ms, range, out);
}

/* An optional whole-number key in [min, max] into *out. */
static void
conv_uint_range(struct gw_cfg_ctx *c, const char *pfx, const char *key, unsigned v, unsigned min,
	unsigned max, const char *unit, uint32_t *out)
{
	if (!gw_cfg_has(c, pfx, key))
		return;
	if (v < min || v > max)
		gw_cfg_err(c, 0, pfx, key, "%u is out of range (expected %u..%u%s)", v, min, max,
			unit);
	else
		*out = v;
}

/* ---- files ----------------------------------------------------------------- */

/* Resolve p against the config's directory; NULL on ENOMEM. */
static char *
resolve(const struct gw_cfg_ctx *c, const char *p)
{
	char *r;

	if (p[0] == '/' || !c->base_dir)
		return strdup(p);
	if (asprintf(&r, "%s/%s", c->base_dir, p) < 0)
		return NULL;
	return r;
}

/* OpenSSL's first queued reason, for a message; clears the queue. */
static const char *
ossl_reason(char *buf, size_t cap)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	snprintf(buf, cap, "%s", r ? r : "no PEM block found");
	ERR_clear_error();
	return buf;
}

enum pem_kind { PEM_CERTS, PEM_CRLS };

/*
 * Read path (already resolved) once into *mat and check it holds at least
 * one PEM object of kind, and nothing unparsable. *first gets the first
 * certificate when asked (caller frees). *mat is filled even when the
 * content does not parse (gw_cfg_free frees it). Reports against pfx.key and
 * returns -GW_E_CONFIG.
 */
static int
check_pem(struct gw_cfg_ctx *c, const char *pfx, const char *key, const char *path,
	enum pem_kind kind, struct gw_material *mat, X509 **first)
{
	BIO *b = NULL;
	unsigned n = 0;
	char why[128];
	int rc = -GW_E_CONFIG, r;
	const char *what = kind == PEM_CERTS ? "certificate" : "CRL";

	r = gw_material_read(path, GW_CFG_MAX_PEM, mat);
	if (r == -ENODATA) { /* empty: reported as the parser would */
		gw_cfg_err(c, 0, pfx, key, "%s: does not parse as PEM %ss (no PEM block found)",
			path, what);
		return rc;
	}
	if (r < 0) { /* gw_err_msg() starts with the path */
		gw_cfg_err(c, 0, pfx, key, "%s (expected a PEM %s file)", gw_err_msg(), what);
		return rc;
	}
	ERR_clear_error();
	b = BIO_new_mem_buf(mat->bytes, (int)mat->len);
	if (!b) {
		gw_cfg_err(c, 0, pfx, key, "%s: out of memory: %s", path,
			ossl_reason(why, sizeof(why)));
		return rc;
	}
	for (;;) {
		void *obj = kind == PEM_CERTS ? (void *)PEM_read_bio_X509(b, NULL, NULL, NULL)
					      : (void *)PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
		if (!obj)
			break;
		if (kind == PEM_CERTS && n == 0 && first)
			*first = obj;
		else if (kind == PEM_CERTS)
			X509_free(obj);
		else
			X509_CRL_free(obj);
		n++;
	}
	/* the loop ends at EOF (PEM_R_NO_START_LINE) or at a broken block */
	unsigned long e = ERR_peek_last_error();

	if (n == 0 || (e && ERR_GET_REASON(e) != PEM_R_NO_START_LINE)) {
		bool no_pem = !e || ERR_GET_REASON(e) == PEM_R_NO_START_LINE;

		gw_cfg_err(c, 0, pfx, key, "%s: does not parse as PEM %ss (%s)", path, what,
			no_pem ? "no PEM block found" : ossl_reason(why, sizeof(why)));
		if (first && *first) {
			X509_free(*first);
			*first = NULL;
		}
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	BIO_free(b);
	return rc;
}

/* A pkcs11: URI that is safe to keep: the PIN never goes into the config. */
static int
check_pkcs11_uri(struct gw_cfg_ctx *c, const char *pfx, const char *key, const char *uri)
{
	if (strncmp(uri, "pkcs11:", 7) != 0 || !uri[7]) {
		/* not echoed: a mistyped URI may hold a secret */
		gw_cfg_err(c, 0, pfx, key,
			"expected an RFC 7512 URI like "
			"\"pkcs11:token=gw;object=api;type=private\"");
		return -GW_E_CONFIG;
	}
	if (strstr(uri, "pin-value") || strstr(uri, "pin-source")) {
		gw_cfg_err(c, 0, pfx, key,
			"must not carry the PIN (pin-value / pin-source): set hsm.pin_file or "
			"hsm.pin_env instead");
		return -GW_E_CONFIG;
	}
	return 0;
}

/* ---- the tree being built ----------------------------------------------- */

static char **
dup_strs(char *const *src, unsigned n)
{
	char **d = calloc(n ? n : 1, sizeof(*d));

	if (!d)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		d[i] = strdup(src[i]);
		if (!d[i]) {
			while (i--)
				free(d[i]);
			free(d);
			return NULL;
		}
	}
	return d;
}

static void
free_strs(char **v, unsigned n)
{
	if (!v)
		return;
	for (unsigned i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
listener_fini(struct gw_cfg_listener *l)
{
	free(l->name);
	free_strs(l->tls.ciphersuites, l->tls.n_ciphersuites);
	for (unsigned i = 0; l->tls.identities && i < l->tls.n_identities; i++) {
		free(l->tls.identities[i].cert);
		gw_material_fini(&l->tls.identities[i].cert_m);
		free(l->tls.identities[i].key);
		free_strs(l->tls.identities[i].sni, l->tls.identities[i].n_sni);
	}
	free(l->tls.identities);
	free_strs(l->trust.certs, l->trust.n_certs);
	free(l->trust.pins_sha256);
	free_strs(l->trust.crl, l->trust.n_crl);
	for (unsigned i = 0; l->trust.certs_m && i < l->trust.n_certs; i++)
		gw_material_fini(&l->trust.certs_m[i]);
	free(l->trust.certs_m);
	for (unsigned i = 0; l->trust.crl_m && i < l->trust.n_crl; i++)
		gw_material_fini(&l->trust.crl_m[i]);
	free(l->trust.crl_m);
	free_strs(l->trust.allow.spiffe, l->trust.allow.n_spiffe);
	free_strs(l->trust.allow.dns, l->trust.allow.n_dns);
	free_strs(l->trust.allow.cn, l->trust.allow.n_cn);
	free(l->upstream.servers);
}

void
gw_cfg_free(struct gw_cfg *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	for (unsigned i = 0; i < cfg->dataplane.n_ports; i++) {
		free(cfg->dataplane.ports[i].name);
		free(cfg->dataplane.ports[i].device);
	}
	free(cfg->dataplane.file_prefix);
	for (unsigned i = 0; cfg->listeners && i < cfg->n_listeners; i++)
		listener_fini(&cfg->listeners[i]);
	free(cfg->listeners);
	free(cfg->hsm.module);
	free(cfg->hsm.pin_file);
	free(cfg->hsm.pin_env);
	for (unsigned i = 0; i < cfg->hsm.n_env; i++) {
		free(cfg->hsm.env[i].name);
		free(cfg->hsm.env[i].value);
	}
	free(cfg->state_dir);
	free(cfg->admin.socket);
	free(cfg->admin.metrics_address);
	free(cfg->access_log.path);
	free(cfg->mtls.trust_domain);
	free(cfg->mtls.enabled_backend);
	for (unsigned i = 0; cfg->mtls.backends && i < cfg->mtls.n_backends; i++) {
		struct gw_cfg_ca_backend *b = &cfg->mtls.backends[i];

		free(b->name);
		free(b->cert);
		gw_material_fini(&b->cert_m);
		free(b->key);
		free(b->url);
		free(b->profile);
		free(b->ca_file);
	}
	free(cfg->mtls.backends);
	free(cfg->cluster.name);
	free(cfg->cluster.node);
	for (unsigned i = 0; i < cfg->cluster.n_endpoints; i++)
		free(cfg->cluster.endpoints[i]);
	free(cfg->cluster.etcd_ca);
	free(cfg->cluster.etcd_cert);
	free(cfg->cluster.etcd_key);
	free(cfg->cluster.ticket_key);
	free_strs(cfg->warnings, cfg->n_warnings);
	free(cfg);
}

const struct gw_cfg_listener *
gw_cfg_listener_find(const struct gw_cfg *cfg, const char *name)
{
	if (!cfg || !name)
		return NULL;
	for (unsigned i = 0; i < cfg->n_listeners; i++)
		if (strcmp(cfg->listeners[i].name, name) == 0)
			return &cfg->listeners[i];
	return NULL;
}

/*
 * Conversion state: rc stays 0 while only semantic errors are found (each
 * is reported and counted in c->n_errs); it turns negative on ENOMEM, which
 * stops everything.
 */
#define NOMEM(p)                        \
	do {                            \
		if (!(p))               \
			return -ENOMEM; \
	} while (0)

/* ---- dataplane ------------------------------------------------------------ */

static const struct name_val drivers[] = {
	{"tap", GW_PORT_TAP},
	{"af_packet", GW_PORT_AF_PACKET},
	{"af_xdp", GW_PORT_AF_XDP},
	{"memif", GW_PORT_MEMIF},
	{"pci", GW_PORT_PCI},
};
static const struct name_val idle_modes[] = {
	{"adaptive", GW_IDLE_ADAPTIVE},
	{"poll", GW_IDLE_POLL},
	{"interrupt", GW_IDLE_INTERRUPT},
};
static const struct name_val memif_roles[] = {
	{"server", GW_MEMIF_SERVER},
	{"client", GW_MEMIF_CLIENT},
};

/* PCI address: [DDDD:]BB:DD.F in hex. */
static bool
is_pci_addr(const char *s)
{
	unsigned dom, bus, dev, fn;
	int used = 0;

	if (sscanf(s, "%4x:%2x:%2x.%1x%n", &dom, &bus, &dev, &fn, &used) == 4 && !s[used] &&
		used == 12)
		return dev < 32 && fn < 8;
	used = 0;
	if (sscanf(s, "%2x:%2x.%1x%n", &bus, &dev, &fn, &used) == 3 && !s[used] && used == 7)
		return dev < 32 && fn < 8;
	return false;
}

/* "a.b.c.d/len", len 1..32 -> *ip (network order), *len; false if not one. */
static bool
parse_prefix(const char *s, uint32_t *ip, unsigned long *len)
{
	const char *slash = strchr(s, '/');
	char a[16];

	if (!slash || (size_t)(slash - s) >= sizeof(a))
		return false;
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	return parse_ip(a, ip) && parse_uint(slash + 1, 32, len) && *len >= 1;
}

static int
conv_port(struct gw_cfg_ctx *c, const struct raw_port *r, struct gw_cfg_port *p, unsigned i)
{
	char pfx[48], a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
	int v;

	gw_cfg_fmt(pfx, sizeof(pfx), "dataplane.ports[%u]", i);
	NOMEM(p->name = strdup(r->name));
	NOMEM(p->device = strdup(r->device));
	if (!r->name[0])
		gw_cfg_err(c, 0, pfx, "name", "must not be empty");
	if (ENUM(c, pfx, "driver", r->driver, drivers, &v) == 0)
		p->driver = (enum gw_port_driver)v;
	if (!r->device[0]) {
		gw_cfg_err(c, 0, pfx, "device",
			"must not be empty (an interface name, memif socket path or PCI address)");
	} else if ((p->driver == GW_PORT_TAP || p->driver == GW_PORT_AF_PACKET ||
			   p->driver == GW_PORT_AF_XDP) &&
		   (strlen(r->device) > 15 || strchr(r->device, '/') || strchr(r->device, ' '))) {
		gw_cfg_err(c, 0, pfx, "device",
			"'%s' is not an interface name (at most 15 characters, no '/' or spaces)",
			r->device);
	} else if (p->driver == GW_PORT_PCI && !is_pci_addr(r->device)) {
		gw_cfg_err(c, 0, pfx, "device",
			"'%s' is not a PCI address (expected DDDD:BB:DD.F or BB:DD.F, e.g. "
			"0000:03:00.0)",
			r->device);
	}

	/* address: a.b.c.d/len */
	unsigned long len = 0;
	bool ok = parse_prefix(r->address, &p->ip, &len);

	if (!ok)
		gw_cfg_err(c, 0, pfx, "address",
			"'%s' is not an IPv4 address with prefix length (expected a.b.c.d/len, "
			"e.g. 10.99.0.2/24)",
			r->address);
	p->prefix_len = (uint8_t)len;
	if (r->gateway) {
		if (!parse_ip(r->gateway, &p->gateway))
			gw_cfg_err(c, 0, pfx, "gateway",
				"'%s' is not an IPv4 address (expected a.b.c.d)", r->gateway);
		else if (ok &&
			 (p->gateway & mask_of(p->prefix_len)) != (p->ip & mask_of(p->prefix_len)))
			gw_cfg_err(c, 0, pfx, "gateway", "%s is not on the port's subnet %s/%u",
				r->gateway, ip_str(p->ip & mask_of(p->prefix_len), a),
				p->prefix_len);
		else if (ok && p->gateway == p->ip)
			gw_cfg_err(c, 0, pfx, "gateway", "%s is the port's own address",
				ip_str(p->gateway, b));
	}
	if (r->peer_address) {
		unsigned long plen = 0;

		if (p->driver != GW_PORT_TAP)
			gw_cfg_err(c, 0, pfx, "peer_address",
				"only applies to driver tap (mtlsgw creates that interface; "
				"address other interfaces as usual)");
		else if (!parse_prefix(r->peer_address, &p->peer_ip, &plen))
			gw_cfg_err(c, 0, pfx, "peer_address",
				"'%s' is not an IPv4 address with prefix length (expected "
				"a.b.c.d/len, e.g. 10.99.0.1/24)",
				r->peer_address);
		else if (ok && p->peer_ip == p->ip)
			gw_cfg_err(c, 0, pfx, "peer_address",
				"%s is the port's own address (the kernel side needs another)",
				ip_str(p->peer_ip, a));
		else if (ok &&
			 (p->peer_ip & mask_of(p->prefix_len)) != (p->ip & mask_of(p->prefix_len)))
			gw_cfg_err(c, 0, pfx, "peer_address",
				"%s is not on the port's subnet %s/%u", ip_str(p->peer_ip, a),
				ip_str(p->ip & mask_of(p->prefix_len), b), p->prefix_len);
		p->peer_prefix_len = (uint8_t)plen;
	}
	if (gw_cfg_has(c, pfx, "mtu") && (r->mtu < 68 || r->mtu > 9216))
		gw_cfg_err(c, 0, pfx, "mtu", "%u is out of range (expected 68..9216)", r->mtu);
	p->mtu = (uint16_t)(r->mtu <= 9216 ? r->mtu : 0);
	p->memif_role = GW_MEMIF_SERVER;
	if (r->role) {
		if (p->driver != GW_PORT_MEMIF)
			gw_cfg_err(c, 0, pfx, "role", "only applies to driver memif");
		else if (ENUM(c, pfx, "role", r->role, memif_roles, &v) == 0)
			p->memif_role = (enum gw_memif_role)v;
	}
	return 0;
}

/* The CPUs this process may run on: where the main lcore prefers to be. */
static bool
cpu_allowed(unsigned id, const cpu_set_t *set, bool have_set)
{
	return !have_set || (id < CPU_SETSIZE && CPU_ISSET(id, set));
}

/*
 * dataplane.tls and dataplane.tcp: the defaults are those of dataplane/tls.h
 * and dataplane/tcp.h, written out so the config says what runs. The bounds
 * keep each knob where the stack still works (a timer of 0 would mean "the
 * default" below us; buffers above 1 GiB are refused by the stack).
 */
static int
conv_dp_knobs(struct gw_cfg_ctx *c, const struct raw_dataplane *r, struct gw_cfg_dataplane *d)
{
	const struct raw_dp_tls no_tls = {0}, *t = r->tls ? r->tls : &no_tls;
	const struct raw_dp_tcp no_tcp = {0}, *p = r->tcp ? r->tcp : &no_tcp;
	const char *tpfx = "dataplane.tls", *ppfx = "dataplane.tcp";

	d->tls = (struct gw_cfg_dp_tls){
		.handshake_timeout_ms = 10000,
		.idle_timeout_ms = 300000,
		.max_handshakes = 512,
	};
	conv_duration_ms(c, tpfx, "handshake_timeout", t->handshake_timeout, 100, 600000,
		"100ms..10m", &d->tls.handshake_timeout_ms);
	conv_duration_ms(c, tpfx, "idle_timeout", t->idle_timeout, 1000, 7 * 86400000ull, "1s..7d",
		&d->tls.idle_timeout_ms);
	conv_uint_range(c, tpfx, "max_handshakes", t->max_handshakes, 1, 16384,
		" handshakes in progress per worker", &d->tls.max_handshakes);

	d->tcp = (struct gw_cfg_dp_tcp){
		.time_wait_ms = 2000,
		.handshake_timeout_ms = 10000,
		.idle_timeout_ms = 300000,
		.rto_min_ms = 200,
		.sndbuf = 256 * 1024,
		.rcvbuf = 256 * 1024,
		.max_connections = GW_CFG_MAX_CONNECTIONS_DEFAULT,
	};
	conv_duration_ms(
		c, ppfx, "time_wait", p->time_wait, 10, 240000, "10ms..240s", &d->tcp.time_wait_ms);
	conv_duration_ms(c, ppfx, "handshake_timeout", p->handshake_timeout, 100, 600000,
		"100ms..10m", &d->tcp.handshake_timeout_ms);
	conv_duration_ms(c, ppfx, "idle_timeout", p->idle_timeout, 1000, 7 * 86400000ull, "1s..7d",
		&d->tcp.idle_timeout_ms);
	/* RTO_MAX is 60 s (RFC 6298 2.5): a higher minimum would be no bound */
	conv_duration_ms(c, ppfx, "rto_min", p->rto_min, 1, 60000, "1ms..60s", &d->tcp.rto_min_ms);
	conv_uint_range(c, ppfx, "sndbuf", p->sndbuf, 4096, 1u << 30, " bytes", &d->tcp.sndbuf);
	conv_uint_range(c, ppfx, "rcvbuf", p->rcvbuf, 4096, 1u << 30, " bytes", &d->tcp.rcvbuf);
	/* each takes a TCP and a TLS object (about 1 KB) from the heap and a
	 * hash entry from EAL memory, all at start */
	conv_uint_range(c, ppfx, "max_connections", p->max_connections, 64, 1u << 20,
		" connections per worker", &d->tcp.max_connections);
	return 0;
}

static int
conv_dataplane(struct gw_cfg_ctx *c, const struct raw_dataplane *r, struct gw_cfg_dataplane *d)
{
	const char *pfx = "dataplane";
	cpu_set_t set;
	bool have_set = sched_getaffinity(0, sizeof(set), &set) == 0;
	int v;

	/* workers */
	if (r->workers_count == 0)
		gw_cfg_err(c, 0, pfx, "workers",
			"needs at least one worker lcore (e.g. workers: [1])");
	d->n_workers = r->workers_count;
	for (unsigned i = 0; i < r->workers_count; i++) {
		char k[32];

		gw_cfg_fmt(k, sizeof(k), "workers[%u]", i);
		d->workers[i] = r->workers[i];
		/* lcore ids are logical: one that is not a CPU we may use wraps
		 * over the allowed CPUs (dataplane.h, gw_dp_params) */
		if (r->workers[i] >= GW_CFG_MAX_LCORE)
			gw_cfg_err(c, 0, pfx, k, "lcore %u is out of range (expected 0..%u)",
				r->workers[i], GW_CFG_MAX_LCORE - 1);
		for (unsigned j = 0; j < i; j++)
			if (r->workers[j] == r->workers[i])
				gw_cfg_err(c, 0, pfx, k,
					"lcore %u is listed twice (also workers[%u])",
					r->workers[i], j);
	}

	/* main lcore: given, or the lowest allowed CPU that is not a worker */
	if (gw_cfg_has(c, pfx, "main_lcore")) {
		d->main_lcore = r->main_lcore;
		if (r->main_lcore >= GW_CFG_MAX_LCORE)
			gw_cfg_err(c, 0, pfx, "main_lcore",
				"lcore %u is out of range (expected 0..%u)", r->main_lcore,
				GW_CFG_MAX_LCORE - 1);
	} else {
		/* the lowest allowed CPU that is not a worker; when every CPU
		 * is a worker, the lowest free id: the main lcore then floats
		 * on the allowed CPUs (it only sleeps in control) */
		bool found = false;

		d->main_lcore = 0;
		for (int pass = 0; pass < 2 && !found; pass++) {
			for (unsigned id = 0; id < GW_CFG_MAX_LCORE && !found; id++) {
				bool worker = false;

				for (unsigned i = 0; i < d->n_workers; i++)
					worker = worker || d->workers[i] == id;
				if (!worker && (pass == 1 || cpu_allowed(id, &set, have_set))) {
					d->main_lcore = id;
					found = true;
				}
			}
		}
	}
	for (unsigned i = 0; i < d->n_workers; i++) {
		if (d->workers[i] == d->main_lcore) {
			char k[32];

			gw_cfg_fmt(k, sizeof(k), "workers[%u]", i);
			gw_cfg_err(c, 0, pfx, k,
				"lcore %u is the main lcore, which runs control and never a "
				"worker%s",
				d->main_lcore,
				gw_cfg_has(c, pfx, "main_lcore")
					? ""
					: " (main_lcore defaults to the lowest "
					  "CPU that is not a worker)");
		}
	}

	d->no_huge = r->no_huge;
	d->memory_mb = 512;
	if (gw_cfg_has(c, pfx, "memory_mb")) {
		d->memory_mb = r->memory_mb;
		if (r->memory_mb < 64 || r->memory_mb > 1024 * 1024)
			gw_cfg_err(c, 0, pfx, "memory_mb",
				"%u is out of range (expected 64..1048576 MB)", r->memory_mb);
	}
	NOMEM(d->file_prefix = strdup(r->file_prefix ? r->file_prefix : "mtlsgw"));
	if (r->file_prefix) {
		bool ok = r->file_prefix[0] != '\0' && strlen(r->file_prefix) <= 64;

		for (const char *s = r->file_prefix; *s && ok; s++)
			ok = isalnum((unsigned char)*s) || *s == '-' || *s == '_' || *s == '.';
		if (!ok)
			gw_cfg_err(c, 0, pfx, "file_prefix",
				"'%s' is not usable as a DPDK file prefix (expected 1..64 of "
				"[A-Za-z0-9._-])",
				r->file_prefix);
	}
	d->idle = GW_IDLE_ADAPTIVE;
	if (r->idle && ENUM(c, pfx, "idle", r->idle, idle_modes, &v) == 0)
		d->idle = (enum gw_idle_mode)v;
	GW_GUARD(conv_dp_knobs(c, r, d));

	if (r->ports_count == 0)
		gw_cfg_err(c, 0, pfx, "ports", "needs at least one port");
	for (unsigned i = 0; i < r->ports_count; i++) {
		GW_GUARD(conv_port(c, &r->ports[i], &d->ports[i], i));
		d->n_ports = i + 1;
		for (unsigned j = 0; j < i; j++) {
			char pfx2[48];

			gw_cfg_fmt(pfx2, sizeof(pfx2), "dataplane.ports[%u]", i);
			if (strcmp(d->ports[j].name, d->ports[i].name) == 0)
				gw_cfg_err(c, 0, pfx2, "name",
					"'%s' is already the name of dataplane.ports[%u]",
					d->ports[i].name, j);
			if (strcmp(d->ports[j].device, d->ports[i].device) == 0)
				gw_cfg_err(c, 0, pfx2, "device",
					"'%s' is already used by dataplane.ports[%u]",
					d->ports[i].device, j);
		}
	}
	return 0;
}

/* ---- listeners --------------------------------------------------------------- */

static const struct name_val services[] = {
	{"echo", GW_SVC_ECHO},
	{"tcp-proxy", GW_SVC_TCP_PROXY},
	{"tls-echo", GW_SVC_TLS_ECHO},
	{"tls-proxy", GW_SVC_TLS_PROXY},
};
const char *
gw_cfg_service_name(enum gw_service s)
{
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (services[i].val == (int)s)
			return services[i].name;
	return "?";
}

static const struct name_val tls_versions[] = {
	{"1.2", TLS1_2_VERSION},
	{"1.3", TLS1_3_VERSION},
};
static const struct name_val client_auths[] = {
	{"required", GW_CLIENT_AUTH_REQUIRED},
	{"optional", GW_CLIENT_AUTH_OPTIONAL},
	{"none", GW_CLIENT_AUTH_NONE},
};
static const struct name_val trust_modes[] = {
	{"pinned", GW_TRUST_PINNED},
	{"ca", GW_TRUST_CA},
	{"mesh", GW_TRUST_MESH},
};
static const struct name_val crl_checks[] = {
	{"chain", GW_CRL_CHECK_CHAIN},
	{"leaf", GW_CRL_CHECK_LEAF},
};
static const struct name_val proxy_protocols[] = {
	{"off", GW_PROXY_OFF},
	{"v2", GW_PROXY_V2},
};

/* Names end up in SPIFFE IDs, log lines and API paths: keep them plain. */
static bool
is_plain_name(const char *s)
{
	if (!s[0] || strlen(s) > 63)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

/* OpenSSL spelling of a TLS 1.3 suite or a TLS 1.2 cipher. */
static bool
is_cipher_name(SSL_CTX *ctx, const char *s)
{
	if (!ctx || !s[0] || strchr(s, ':') || strchr(s, ','))
		return false;
	/* a single name: either list parser accepts it only if it is known */
	bool ok = SSL_CTX_set_ciphersuites(ctx, s) == 1 || SSL_CTX_set_cipher_list(ctx, s) == 1;

	ERR_clear_error();
	return ok;
}

/* 64 hex digits, optionally as 32 colon-separated pairs. */
static bool
parse_pin(const char *s, uint8_t out[32])
{
	size_t n = 0;

	for (const char *p = s; *p;) {
		unsigned v;

		if (n == 32 || !isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]))
			return false;
		sscanf(p, "%2x", &v);
		out[n++] = (uint8_t)v;
		p += 2;
		if (*p == ':' && p[1])
			p++;
	}
	return n == 32;
}

static int
conv_identity(struct gw_cfg_ctx *c, const char *tpfx, unsigned i, const struct raw_identity *r,
	struct gw_cfg_identity *id)
{
	char pfx[GW_CFG_PATH_MAX], nb[40], na[40];
	X509 *leaf = NULL;

	gw_cfg_fmt(pfx, sizeof(pfx), "%s.identity[%u]", tpfx, i);
	NOMEM(id->cert = resolve(c, r->cert));
	NOMEM(id->key = strdup(r->key));
	id->line = gw_cfg_line(c, pfx, "key");
	NOMEM(id->sni = dup_strs(r->sni, r->sni_count));
	id->n_sni = r->sni_count;
	(void)check_pkcs11_uri(c, pfx, "key", r->key);
	if (check_pem(c, pfx, "cert", id->cert, PEM_CERTS, &id->cert_m, &leaf) == 0) {
		const ASN1_TIME *nbt = X509_get0_notBefore(leaf), *nat = X509_get0_notAfter(leaf);

		gw_x509_time_str(nbt, nb, sizeof(nb));
		gw_x509_time_str(nat, na, sizeof(na));
		if (X509_cmp_current_time(nat) <= 0)
			gw_cfg_err(c, 0, pfx, "cert", "%s: the certificate expired on %s", id->cert,
				na);
		else if (X509_cmp_current_time(nbt) >= 0)
			gw_cfg_err(c, 0, pfx, "cert", "%s: the certificate is not valid before %s",
				id->cert, nb);
		X509_free(leaf);
	}
	for (unsigned k = 0; k < r->sni_count; k++) {
		char key[24];

		gw_cfg_fmt(key, sizeof(key), "sni[%u]", k);
		if (!r->sni[k][0] || strchr(r->sni[k], ' ') || strchr(r->sni[k], '/'))
			gw_cfg_err(c, 0, pfx, key,
				"'%s' is not a server name (expected e.g. "
				"api.example.com or *.example.com)",
				r->sni[k]);
	}
	return 0;
}

static int
conv_tls(struct gw_cfg_ctx *c, const char *lpfx, const struct raw_tls *r, bool mesh,
	struct gw_cfg_tls *t)
{
	char pfx[GW_CFG_PATH_MAX];
	int v;

	gw_cfg_fmt(pfx, sizeof(pfx), "%s.tls", lpfx);
	t->min_version = TLS1_2_VERSION;
	if (r->min_version && ENUM(c, pfx, "min_version", r->min_version, tls_versions, &v) == 0)
		t->min_version = v;
	t->client_auth = GW_CLIENT_AUTH_REQUIRED;
	if (r->client_auth && ENUM(c, pfx, "client_auth", r->client_auth, client_auths, &v) == 0)
		t->client_auth = (enum gw_client_auth)v;
	t->no_tickets = r->session_tickets != NULL && !*r->session_tickets;
	if (r->ticket_lifetime) {
		uint64_t secs;

		/* RFC 8446 4.6.1: a ticket lifetime is at most seven days */
		if (gw_duration_parse(r->ticket_lifetime, &secs) < 0)
			gw_cfg_err(c, 0, pfx, "ticket_lifetime",
				"'%s' is not a duration (expected a number and one of s, m, h, d, "
				"e.g. 1h)",
				r->ticket_lifetime);
		else if (secs < 60 || secs > 7 * 86400)
			gw_cfg_err(c, 0, pfx, "ticket_lifetime",
				"'%s' is out of range (expected 1m..7d)", r->ticket_lifetime);
		else
			t->ticket_lifetime_s = (unsigned)secs;
	}
	if (r->ciphersuites_count) {
		SSL_CTX *ctx = SSL_CTX_new(TLS_method());

		NOMEM(ctx);
		for (unsigned i = 0; i < r->ciphersuites_count; i++) {
			char key[32];

			gw_cfg_fmt(key, sizeof(key), "ciphersuites[%u]", i);
			if (!is_cipher_name(ctx, r->ciphersuites[i]))
				gw_cfg_err(c, 0, pfx, key,
					"'%s' is not a cipher suite OpenSSL knows (expected e.g. "
					"TLS_AES_128_GCM_SHA256 or ECDHE-ECDSA-AES128-GCM-SHA256; "
					"see `openssl ciphers -s -v`)",
					r->ciphersuites[i]);
		}
		SSL_CTX_free(ctx);
		NOMEM(t->ciphersuites = dup_strs(r->ciphersuites, r->ciphersuites_count));
		t->n_ciphersuites = r->ciphersuites_count;
	}
	if (r->identity_count == 0 && !mesh)
		gw_cfg_err(c, 0, pfx, "identity",
			"needs at least one identity (cert + key) unless trust.mode is mesh, "
			"where the enabled CA backend issues it");
	NOMEM(t->identities =
			calloc(r->identity_count ? r->identity_count : 1, sizeof(*t->identities)));
	for (unsigned i = 0; i < r->identity_count; i++) {
		GW_GUARD(conv_identity(c, pfx, i, &r->identity[i], &t->identities[i]));
		t->n_identities = i + 1;
	}
	return 0;
}

/* conv_trust's visitor: every allow rule that can match nothing is reported. */
struct allow_refusal {
	struct gw_cfg_ctx *c;
	const char *prefix;
};

static void
allow_rule_refused(void *arg, const char *kind, unsigned i, const char *rule, const char *why)
{
	struct allow_refusal *r = arg;
	char key[32];

	gw_cfg_fmt(key, sizeof(key), "%s[%u]", kind, i);
	/* a cn rule fails only by being empty or too long: quoting it adds nothing */
	if (strcmp(kind, "cn") == 0)
		gw_cfg_err(r->c, 0, r->prefix, key, "%s", why);
	else
		gw_cfg_err(r->c, 0, r->prefix, key, "'%.200s' %s", rule, why);
}

static int
conv_trust(
	struct gw_cfg_ctx *c, const char *lpfx, const struct raw_trust *r, struct gw_cfg_trust *t)
{
	char pfx[GW_CFG_PATH_MAX], key[32];
	int v;

	gw_cfg_fmt(pfx, sizeof(pfx), "%s.trust", lpfx);
	t->mode = GW_TRUST_CA;
	bool mode_ok = ENUM(c, pfx, "mode", r->mode, trust_modes, &v) == 0;

	if (mode_ok)
		t->mode = (enum gw_trust_mode)v;

	NOMEM(t->certs = calloc(r->certs_count ? r->certs_count : 1, sizeof(*t->certs)));
	NOMEM(t->certs_m = calloc(r->certs_count ? r->certs_count : 1, sizeof(*t->certs_m)));
	for (unsigned i = 0; i < r->certs_count; i++) {
		gw_cfg_fmt(key, sizeof(key), "certs[%u]", i);
		NOMEM(t->certs[i] = resolve(c, r->certs[i]));
		t->n_certs = i + 1;
		(void)check_pem(c, pfx, key, t->certs[i], PEM_CERTS, &t->certs_m[i], NULL);
	}
	NOMEM(t->crl = calloc(r->crl_count ? r->crl_count : 1, sizeof(*t->crl)));
	NOMEM(t->crl_m = calloc(r->crl_count ? r->crl_count : 1, sizeof(*t->crl_m)));
	for (unsigned i = 0; i < r->crl_count; i++) {
		gw_cfg_fmt(key, sizeof(key), "crl[%u]", i);
		NOMEM(t->crl[i] = resolve(c, r->crl[i]));
		t->n_crl = i + 1;
		(void)check_pem(c, pfx, key, t->crl[i], PEM_CRLS, &t->crl_m[i], NULL);
	}
	NOMEM(t->pins_sha256 = calloc(
		      r->pins_sha256_count ? r->pins_sha256_count : 1, sizeof(*t->pins_sha256)));
	t->n_pins = r->pins_sha256_count;
	for (unsigned i = 0; i < r->pins_sha256_count; i++) {
		gw_cfg_fmt(key, sizeof(key), "pins_sha256[%u]", i);
		if (!parse_pin(r->pins_sha256[i], t->pins_sha256[i]))
			gw_cfg_err(c, 0, pfx, key,
				"'%s' is not a SHA-256 fingerprint (expected 64 hex digits, "
				"optionally colon-separated, e.g. from `openssl x509 -noout "
				"-fingerprint -sha256`)",
				r->pins_sha256[i]);
		for (unsigned j = 0; j < i; j++)
			if (memcmp(t->pins_sha256[i], t->pins_sha256[j], 32) == 0)
				gw_cfg_err(c, 0, pfx, key, "the same pin as pins_sha256[%u]", j);
	}

	if (mode_ok) {
		switch (t->mode) {
		case GW_TRUST_PINNED:
			if (r->certs_count + r->pins_sha256_count == 0)
				gw_cfg_err(c, 0, pfx, "mode",
					"pinned mode needs the pinned certificates: give "
					"trust.certs "
					"(PEM files) or trust.pins_sha256 (fingerprints)");
			if (r->crl_count)
				gw_cfg_err(c, 0, pfx, "crl",
					"only applies to modes ca and mesh (a pinned certificate "
					"is "
					"revoked by removing its pin)");
			break;
		case GW_TRUST_CA:
			if (r->certs_count == 0)
				gw_cfg_err(c, 0, pfx, "certs",
					"ca mode needs at least one anchor certificate file in "
					"trust.certs");
			if (r->pins_sha256_count)
				gw_cfg_err(c, 0, pfx, "pins_sha256", "only applies to mode pinned");
			break;
		case GW_TRUST_MESH:
			if (r->certs_count)
				gw_cfg_err(c, 0, pfx, "certs",
					"not used in mesh mode: the anchors are the roots of "
					"mtls.backends");
			if (r->pins_sha256_count)
				gw_cfg_err(c, 0, pfx, "pins_sha256", "only applies to mode pinned");
			break;
		}
	}

	t->crl_check = GW_CRL_CHECK_CHAIN;
	if (r->crl_check) {
		if (ENUM(c, pfx, "crl_check", r->crl_check, crl_checks, &v) == 0)
			t->crl_check = (enum gw_crl_check)v;
		if (r->crl_count == 0)
			gw_cfg_err(c, 0, pfx, "crl_check",
				"has no effect without trust.crl: give the CRLs to check");
	}

	t->max_depth = 4;
	if (gw_cfg_has(c, pfx, "max_depth")) {
		t->max_depth = r->max_depth;
		if (r->max_depth < 1 || r->max_depth > 16)
			gw_cfg_err(c, 0, pfx, "max_depth", "%u is out of range (expected 1..16)",
				r->max_depth);
	}

	if (r->allow) {
		const struct raw_allow *a = r->allow;
		char apfx[GW_CFG_PATH_MAX];

		NOMEM(t->allow.spiffe = dup_strs(a->spiffe, a->spiffe_count));
		t->allow.n_spiffe = a->spiffe_count;
		NOMEM(t->allow.dns = dup_strs(a->dns, a->dns_count));
		t->allow.n_dns = a->dns_count;
		NOMEM(t->allow.cn = dup_strs(a->cn, a->cn_count));
		t->allow.n_cn = a->cn_count;
		/* the matcher's own check: a pattern loads only if it can match */
		gw_cfg_fmt(apfx, sizeof(apfx), "%s.allow", pfx);
		(void)gw_trust_allow_rules_each(
			&t->allow, allow_rule_refused, &(struct allow_refusal){c, apfx});
	}
	return 0;
}

static int
conv_upstream(struct gw_cfg_ctx *c, const char *lpfx, const struct raw_upstream *r,
	struct gw_cfg_upstream *u)
{
	char pfx[GW_CFG_PATH_MAX];
	int v;

	gw_cfg_fmt(pfx, sizeof(pfx), "%s.upstream", lpfx);
	if (r->servers_count == 0)
		gw_cfg_err(
			c, 0, pfx, "servers", "needs at least one upstream server (a.b.c.d:port)");
	NOMEM(u->servers = calloc(r->servers_count ? r->servers_count : 1, sizeof(*u->servers)));
	u->n_servers = r->servers_count;
	for (unsigned i = 0; i < r->servers_count; i++) {
		char key[32];

		gw_cfg_fmt(key, sizeof(key), "servers[%u]", i);
		if (!parse_ep(r->servers[i], &u->servers[i]))
			gw_cfg_err(c, 0, pfx, key,
				"'%s' is not an IPv4 address and port (expected a.b.c.d:port, e.g. "
				"10.99.0.1:8080)",
				r->servers[i]);
	}
	u->proxy_protocol = GW_PROXY_OFF;
	if (r->proxy_protocol &&
		ENUM(c, pfx, "proxy_protocol", r->proxy_protocol, proxy_protocols, &v) == 0)
		u->proxy_protocol = (enum gw_proxy_protocol)v;
	return 0;
}

static int
conv_listener(struct gw_cfg_ctx *c, const struct gw_cfg *cfg, const struct raw_listener *r,
	struct gw_cfg_listener *l, unsigned i)
{
	char pfx[32], a[INET_ADDRSTRLEN];
	int v;
	bool svc_ok, addr_ok, tls_svc, proxy_svc;

	gw_cfg_fmt(pfx, sizeof(pfx), "listeners[%u]", i);
	NOMEM(l->name = strdup(r->name));
	if (!is_plain_name(r->name))
		gw_cfg_err(c, 0, pfx, "name",
			"'%s' is not a plain name (expected 1..63 of "
			"[A-Za-z0-9._-])",
			r->name);
	else if (cfg->has_mtls && strlen(r->name) > GW_CFG_MESH_LISTENER_NAME_MAX)
		gw_cfg_err(c, 0, pfx, "name",
			"'%s' is %zu bytes; with an mtls section a listener name is at most %d "
			"(its HSM key label gw-id-<name> must fit 64 bytes)",
			r->name, strlen(r->name), GW_CFG_MESH_LISTENER_NAME_MAX);

	addr_ok = parse_ep(r->address, &l->addr);
	if (!addr_ok) {
		gw_cfg_err(c, 0, pfx, "address",
			"'%s' is not an IPv4 address and port (expected a.b.c.d:port, e.g. "
			"10.99.0.2:443)",
			r->address);
	} else {
		bool on_port = false, ports_ok = true;

		/* a port whose own address is broken was reported already */
		for (unsigned p = 0; p < cfg->dataplane.n_ports; p++)
			ports_ok = ports_ok && cfg->dataplane.ports[p].prefix_len != 0;
		on_port = !ports_ok;
		for (unsigned p = 0; p < cfg->dataplane.n_ports && !on_port; p++) {
			const struct gw_cfg_port *pt = &cfg->dataplane.ports[p];

			on_port = pt->prefix_len && (l->addr.ip & mask_of(pt->prefix_len)) ==
							    (pt->ip & mask_of(pt->prefix_len));
		}
		if (!on_port) {
			char nets[256] = "";
			size_t used = 0;

			for (unsigned p = 0; p < cfg->dataplane.n_ports && used < sizeof(nets);
				p++) {
				const struct gw_cfg_port *pt = &cfg->dataplane.ports[p];

				used += (size_t)snprintf(nets + used, sizeof(nets) - used,
					"%s%s %s/%u", used ? ", " : "", pt->name,
					ip_str(pt->ip & mask_of(pt->prefix_len), a),
					pt->prefix_len);
			}
			gw_cfg_err(c, 0, pfx, "address",
				"%s is not on the subnet of any port (ports: %s)", r->address,
				used ? nets : "none");
		}
	}

	svc_ok = ENUM(c, pfx, "service", r->service, services, &v) == 0;
	l->service = svc_ok ? (enum gw_service)v : GW_SVC_ECHO;
	tls_svc = l->service == GW_SVC_TLS_ECHO || l->service == GW_SVC_TLS_PROXY;
	proxy_svc = l->service == GW_SVC_TCP_PROXY || l->service == GW_SVC_TLS_PROXY;

	l->backlog = 1024;
	if (gw_cfg_has(c, pfx, "backlog")) {
		l->backlog = r->backlog;
		if (r->backlog < 1 || r->backlog > 65535)
			gw_cfg_err(c, 0, pfx, "backlog", "%u is out of range (expected 1..65535)",
				r->backlog);
	}

	/* trust first: whether tls may go without an identity depends on mode */
	bool mesh = r->trust && r->trust->mode && strcmp(r->trust->mode, "mesh") == 0;

	if (svc_ok && tls_svc && !r->tls)
		gw_cfg_err(c, 0, pfx, "tls",
			"service %s needs a tls section (identity, client_auth ...)", r->service);
	if (svc_ok && !tls_svc && r->tls)
		gw_cfg_err(c, 0, pfx, "tls",
			"only applies to services tls-echo and tls-proxy "
			"(this listener is %s)",
			r->service);
	if (r->tls && (!svc_ok || tls_svc)) {
		l->has_tls = true;
		GW_GUARD(conv_tls(c, pfx, r->tls, mesh, &l->tls));
	}
	if (svc_ok && !tls_svc && r->trust)
		gw_cfg_err(c, 0, pfx, "trust",
			"only applies to services tls-echo and tls-proxy (this listener is %s)",
			r->service);
	if (svc_ok && tls_svc && r->tls && !r->trust && l->tls.client_auth != GW_CLIENT_AUTH_NONE)
		gw_cfg_err(c, 0, pfx, "trust",
			"client_auth is %s, so the listener needs a trust section (mode pinned, ca "
			"or mesh) to check client certificates",
			r->tls->client_auth ? r->tls->client_auth : "required (the default)");
	/* mesh still drives the identity; pinned / ca would check nothing */
	if (svc_ok && tls_svc && r->tls && r->trust && !mesh &&
		l->tls.client_auth == GW_CLIENT_AUTH_NONE)
		gw_cfg_err(c, 0, pfx, "trust",
			"client_auth is none, so this trust section would never be used: remove "
			"it or set tls.client_auth to required or optional");
	if (r->trust && (!svc_ok || tls_svc)) {
		l->has_trust = true;
		GW_GUARD(conv_trust(c, pfx, r->trust, &l->trust));
		if (mesh && !(cfg->has_mtls && cfg->mtls.n_backends))
			gw_cfg_err(c, 0, pfx, "trust.mode",
				"mesh mode needs CA backends: add an mtls section with backends");
	}

	if (svc_ok && proxy_svc && !r->upstream)
		gw_cfg_err(c, 0, pfx, "upstream",
			"service %s needs an upstream section with servers", r->service);
	if (svc_ok && !proxy_svc && r->upstream)
		gw_cfg_err(c, 0, pfx, "upstream",
			"only applies to services tcp-proxy and tls-proxy (this listener is %s)",
			r->service);
	if (r->upstream && (!svc_ok || proxy_svc)) {
		l->has_upstream = true;
		GW_GUARD(conv_upstream(c, pfx, r->upstream, &l->upstream));
	}
	return 0;
}

static int
conv_listeners(struct gw_cfg_ctx *c, const struct raw_cfg *r, struct gw_cfg *cfg)
{
	char pfx[32], a[INET_ADDRSTRLEN];

	NOMEM(cfg->listeners = calloc(
		      r->listeners_count ? r->listeners_count : 1, sizeof(*cfg->listeners)));
	for (unsigned i = 0; i < r->listeners_count; i++) {
		struct gw_cfg_listener *l = &cfg->listeners[i];

		cfg->n_listeners = i + 1;
		GW_GUARD(conv_listener(c, cfg, &r->listeners[i], l, i));
		gw_cfg_fmt(pfx, sizeof(pfx), "listeners[%u]", i);
		for (unsigned j = 0; j < i; j++) {
			const struct gw_cfg_listener *o = &cfg->listeners[j];

			if (strcmp(o->name, l->name) == 0) {
				char opfx[32];

				gw_cfg_fmt(opfx, sizeof(opfx), "listeners[%u]", j);
				gw_cfg_err(c, 0, pfx, "name",
					"'%s' is already the name of listeners[%u] (line %u)",
					l->name, j, gw_cfg_line(c, opfx, "name"));
			}
			if (o->addr.port && o->addr.ip == l->addr.ip &&
				o->addr.port == l->addr.port)
				gw_cfg_err(c, 0, pfx, "address",
					"%s:%u is already the address of listeners[%u] '%s'",
					ip_str(l->addr.ip, a), ntohs(l->addr.port), j, o->name);
		}
	}
	return 0;
}

/* ---- mtls: CA backends ------------------------------------------------------ */

static const struct name_val ca_types[] = {
	{"builtin", GW_CA_BUILTIN},
	{"provided", GW_CA_PROVIDED},
	{"cfssl", GW_CA_CFSSL},
};
static const struct name_val key_types[] = {
	{"ec-p256", GW_KEY_EC_P256},
	{"ec-p384", GW_KEY_EC_P384},
	{"rsa-2048", GW_KEY_RSA_2048},
	{"rsa-3072", GW_KEY_RSA_3072},
};

/* A provided CA must be able to sign certificates. */
static void
check_ca_cert(struct gw_cfg_ctx *c, const char *pfx, const char *path, struct gw_material *m)
{
	X509 *x = NULL;

	if (check_pem(c, pfx, "cert", path, PEM_CERTS, m, &x) < 0)
		return;
	if (X509_check_ca(x) < 1)
		gw_cfg_err(c, 0, pfx, "cert",
			"%s: not a CA certificate (basicConstraints CA:TRUE is missing)", path);
	else if ((X509_get_extension_flags(x) & EXFLAG_KUSAGE) &&
		 !(X509_get_key_usage(x) & KU_KEY_CERT_SIGN))
		gw_cfg_err(c, 0, pfx, "cert",
			"%s: the CA certificate's key usage does not allow keyCertSign", path);
	/* an expired CA is not refused here: issue 7 wants rotating away from a
	 * backend whose root has expired to work */
	X509_free(x);
}

static int
conv_backend(
	struct gw_cfg_ctx *c, const struct raw_backend *r, struct gw_cfg_ca_backend *b, unsigned i)
{
	char pfx[32], cpfx[40];
	const struct raw_ca_conf none = {0}, *cf = r->conf ? r->conf : &none;
	int v;
	bool type_ok;

	gw_cfg_fmt(pfx, sizeof(pfx), "mtls.backends[%u]", i);
	gw_cfg_fmt(cpfx, sizeof(cpfx), "%s.conf", pfx);
	NOMEM(b->name = strdup(r->name));
	if (!is_plain_name(r->name))
		gw_cfg_err(c, 0, pfx, "name",
			"'%s' is not a plain name (expected 1..63 of "
			"[A-Za-z0-9._-])",
			r->name);
	else if (strlen(r->name) > GW_CFG_CA_NAME_MAX)
		gw_cfg_err(c, 0, pfx, "name",
			"'%s' is %zu bytes; a CA backend name is at most %d (its HSM key "
			"label ca-<name>-issuer must fit 64 bytes, its CN 64 characters)",
			r->name, strlen(r->name), GW_CFG_CA_NAME_MAX);
	type_ok = ENUM(c, pfx, "type", r->type, ca_types, &v) == 0;
	b->type = type_ok ? (enum gw_ca_type)v : GW_CA_BUILTIN;

	b->key_type = GW_KEY_EC_P256;
	if (cf->key_type && ENUM(c, cpfx, "key_type", cf->key_type, key_types, &v) == 0)
		b->key_type = (enum gw_key_type)v;
	b->leaf_validity_s = 72 * 3600;
	if (cf->leaf_validity && gw_duration_parse(cf->leaf_validity, &b->leaf_validity_s) < 0)
		gw_cfg_err(c, 0, cpfx, "leaf_validity",
			"'%s' is not a duration (expected a number and one of s, m, h, d, y, "
			"e.g. 72h)",
			cf->leaf_validity);
	if (!type_ok)
		return 0;

	/* which conf keys each type takes; the others are errors, not ignored */
	struct {
		const char *key;
		const char *val;
		bool allowed;
	} keys[] = {
		{"root_validity", cf->root_validity, b->type == GW_CA_BUILTIN},
		{"cert", cf->cert, b->type == GW_CA_PROVIDED},
		{"key", cf->key, b->type == GW_CA_PROVIDED},
		{"url", cf->url, b->type == GW_CA_CFSSL},
		{"profile", cf->profile, b->type == GW_CA_CFSSL},
		{"ca_file", cf->ca_file, b->type == GW_CA_CFSSL},
	};
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		if (keys[k].val && !keys[k].allowed)
			gw_cfg_err(c, 0, cpfx, keys[k].key, "does not apply to type %s", r->type);

	switch (b->type) {
	case GW_CA_BUILTIN:
		b->root_validity_s = 10ull * 365 * 86400;
		if (cf->root_validity &&
			gw_duration_parse(cf->root_validity, &b->root_validity_s) < 0)
			gw_cfg_err(c, 0, cpfx, "root_validity",
				"'%s' is not a duration (expected a number and one of s, m, h, d, "
				"y, e.g. 10y)",
				cf->root_validity);
		else if (b->leaf_validity_s >= b->root_validity_s)
			gw_cfg_err(
				c, 0, cpfx, "leaf_validity", "must be shorter than root_validity");
		break;
	case GW_CA_PROVIDED:
		if (!cf->cert) {
			gw_cfg_err(c, 0, r->conf ? cpfx : pfx, r->conf ? "cert" : "conf",
				"type provided needs conf.cert (the CA certificate, PEM)");
		} else {
			NOMEM(b->cert = resolve(c, cf->cert));
			check_ca_cert(c, cpfx, b->cert, &b->cert_m);
		}
		if (!cf->key) {
			gw_cfg_err(c, 0, r->conf ? cpfx : pfx, r->conf ? "key" : "conf",
				"type provided needs conf.key (pkcs11: URI of the CA key in the "
				"HSM)");
		} else {
			NOMEM(b->key = strdup(cf->key));
			b->line = gw_cfg_line(c, cpfx, "key");
			(void)check_pkcs11_uri(c, cpfx, "key", cf->key);
		}
		break;
	case GW_CA_CFSSL:
		if (!cf->url) {
			gw_cfg_err(c, 0, r->conf ? cpfx : pfx, r->conf ? "url" : "conf",
				"type cfssl needs conf.url (e.g. http://127.0.0.1:8888)");
		} else {
			NOMEM(b->url = strdup(cf->url));
			const char *host = strncmp(cf->url, "http://", 7) == 0    ? cf->url + 7
					   : strncmp(cf->url, "https://", 8) == 0 ? cf->url + 8
										  : NULL;

			if (!host || !host[0] || host[0] == '/')
				gw_cfg_err(c, 0, cpfx, "url",
					"'%s' is not an http:// or https:// URL", cf->url);
		}
		if (cf->profile)
			NOMEM(b->profile = strdup(cf->profile));
		/* the CA that signed cfssl's TLS certificate: https only */
		if (cf->ca_file) {
			NOMEM(b->ca_file = resolve(c, cf->ca_file));
			if (cf->url && strncmp(cf->url, "https://", 8) != 0)
				gw_cfg_err(c, 0, cpfx, "ca_file",
					"applies to an https:// url only (url is '%s')", cf->url);
			else {
				struct gw_material m = {0};

				(void)check_pem(
					c, cpfx, "ca_file", b->ca_file, PEM_CERTS, &m, NULL);
				gw_material_fini(&m); /* curl reads the file itself */
			}
		}
		break;
	}
	return 0;
}

static int
conv_mtls(struct gw_cfg_ctx *c, const struct raw_mtls *r, struct gw_cfg_mtls *m)
{
	const char *pfx = "mtls";
	const char *en = r->enabled_camel ? r->enabled_camel : r->enabled_snake;
	const char *en_key = r->enabled_camel ? "enabledBackend" : "enabled_backend";

	if (r->trust_domain) {
		bool ok = r->trust_domain[0] != '\0' && strlen(r->trust_domain) <= 255;

		for (const char *s = r->trust_domain; *s && ok; s++)
			ok = islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
			     *s == '.' || *s == '-' || *s == '_';
		if (!ok)
			gw_cfg_err(c, 0, pfx, "trust_domain",
				"'%s' is not a SPIFFE trust domain (expected lowercase letters, "
				"digits, '.', '-', '_', e.g. example.org; no spiffe://)",
				r->trust_domain);
		NOMEM(m->trust_domain = strdup(r->trust_domain));
	}
	if (r->enabled_camel && r->enabled_snake)
		gw_cfg_err(c, 0, pfx, "enabled_backend",
			"give enabledBackend or enabled_backend, not both");
	NOMEM(m->backends =
			calloc(r->backends_count ? r->backends_count : 1, sizeof(*m->backends)));
	for (unsigned i = 0; i < r->backends_count; i++) {
		char bp[32];

		GW_GUARD(conv_backend(c, &r->backends[i], &m->backends[i], i));
		m->n_backends = i + 1;
		gw_cfg_fmt(bp, sizeof(bp), "mtls.backends[%u]", i);
		for (unsigned j = 0; j < i; j++)
			if (strcmp(m->backends[j].name, m->backends[i].name) == 0)
				gw_cfg_err(c, 0, bp, "name",
					"'%s' is already the name of mtls.backends[%u]",
					m->backends[i].name, j);
	}
	if (en) {
		bool found = false;
		char names[256] = "";
		size_t used = 0;

		NOMEM(m->enabled_backend = strdup(en));
		for (unsigned i = 0; i < m->n_backends; i++) {
			found = found || strcmp(m->backends[i].name, en) == 0;
			if (used < sizeof(names))
				used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
					i ? ", " : "", m->backends[i].name);
		}
		if (!found)
			gw_cfg_err(c, 0, pfx, en_key, "'%s' is not one of the backends (%s)", en,
				used ? names : "none configured");
	} else if (r->backends_count) {
		gw_cfg_err(c, 0, pfx, "enabledBackend",
			"required when backends are configured: name the backend that issues "
			"identities");
	}
	return 0;
}

/* ---- cluster: the fleet's etcd and wrapping key ----------------------------- */

/*
 * An etcd endpoint as the client takes it (etcd.h): http:// or https://,
 * host:port (a name, an IPv4 address or [IPv6]), port 1..65535, nothing
 * after but an optional '/'. A path, user or query would mean nothing there.
 */
static bool
is_etcd_url(const char *s)
{
	const char *h = strncmp(s, "http://", 7) == 0    ? s + 7
			: strncmp(s, "https://", 8) == 0 ? s + 8
							 : NULL;
	const char *end, *colon = NULL;
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr a6;
	unsigned long port;

	if (!h || !h[0])
		return false;
	end = h + strcspn(h, "/");
	if (end[0] && strcmp(end, "/") != 0)
		return false;
	if (h[0] == '[') {
		const char *close = memchr(h, ']', (size_t)(end - h));

		if (!close || close[1] != ':' || (size_t)(close - h - 1) >= sizeof(buf))
			return false;
		memcpy(buf, h + 1, (size_t)(close - h - 1));
		buf[close - h - 1] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			return false;
		colon = close + 1;
	} else {
		for (const char *p = h; p < end; p++) {
			if (*p == ':' && !colon)
				colon = p;
			else if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
				return false;
		}
		if (!colon || colon == h)
			return false;
	}
	if (end - colon - 1 < 1 || (size_t)(end - colon - 1) >= 6)
		return false;
	memcpy(buf, colon + 1, (size_t)(end - colon - 1));
	buf[end - colon - 1] = '\0';
	return parse_uint(buf, 65535, &port) && port > 0;
}

/* The value of attribute attr in a pkcs11: URI's path part into out; false if absent. */
static bool
uri_attr(const char *uri, const char *attr, char *out, size_t cap)
{
	size_t al = strlen(attr);
	const char *p = uri + 7; /* after "pkcs11:", checked by check_pkcs11_uri */

	for (;;) {
		size_t n = strcspn(p, ";?");

		if (n > al && strncmp(p, attr, al) == 0 && p[al] == '=') {
			gw_cfg_fmt(out, cap, "%.*s", (int)(n - al - 1), p + al + 1);
			return true;
		}
		if (p[n] != ';')
			return false;
		p += n + 1;
	}
}

/* A PEM private key file libcurl will read: here, only that it can. */
static void
check_key_file(struct gw_cfg_ctx *c, const char *pfx, const char *key, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0 || (S_ISREG(st.st_mode) && access(path, R_OK) < 0))
		gw_cfg_err(c, 0, pfx, key,
			"%s: %s (expected a PEM private key file or a pkcs11: URI)", path,
			strerror(errno));
	else if (!S_ISREG(st.st_mode))
		gw_cfg_err(c, 0, pfx, key,
			"%s: not a regular file (expected a PEM private key file or a pkcs11: "
			"URI)",
			path);
}

static int
conv_cluster(struct gw_cfg_ctx *c, const struct raw_cluster *r, struct gw_cfg_cluster *k)
{
	const char *pfx = "cluster", *epfx = "cluster.etcd";
	const struct raw_etcd *e = r->etcd;
	char host[256], type[32], key[24];
	bool all_http = e->endpoints_count > 0;
	uint64_t secs;

	NOMEM(k->name = strdup(r->name));
	if (!is_plain_name(r->name))
		gw_cfg_err(c, 0, pfx, "name",
			"'%s' is not a plain name (expected 1..63 of [A-Za-z0-9._-])", r->name);
	if (r->node) {
		NOMEM(k->node = strdup(r->node));
		if (!is_plain_name(r->node))
			gw_cfg_err(c, 0, pfx, "node",
				"'%s' is not a plain name (expected 1..63 of [A-Za-z0-9._-])",
				r->node);
	} else if (gethostname(host, sizeof(host)) < 0) {
		gw_cfg_err(c, 0, pfx, "node",
			"the host name cannot be read (%s): set cluster.node (1..63 of "
			"[A-Za-z0-9._-], unique in the cluster)",
			strerror(errno));
	} else {
		host[sizeof(host) - 1] = '\0';
		NOMEM(k->node = strdup(host));
		if (!is_plain_name(host))
			gw_cfg_err(c, 0, pfx, "node",
				"the host name '%s' is not a plain name (expected 1..63 of "
				"[A-Za-z0-9._-]): set cluster.node",
				host);
	}

	if (e->endpoints_count == 0)
		gw_cfg_err(c, 0, epfx, "endpoints",
			"needs at least one etcd endpoint (e.g. [https://10.0.0.5:2379])");
	for (unsigned i = 0; i < e->endpoints_count && i < GW_CFG_MAX_ETCD; i++) {
		const char *u = e->endpoints[i];

		gw_cfg_fmt(key, sizeof(key), "endpoints[%u]", i);
		NOMEM(k->endpoints[i] = strdup(u));
		k->n_endpoints = i + 1;
		all_http = all_http && strncmp(u, "https://", 8) != 0;
		if (!is_etcd_url(u)) {
			gw_cfg_err(c, 0, epfx, key,
				"'%s' is not an etcd endpoint (expected http:// or https:// and "
				"host:port, e.g. https://10.0.0.5:2379)",
				u);
			continue;
		}
		for (unsigned j = 0; j < i; j++)
			if (strcmp(k->endpoints[j], u) == 0)
				gw_cfg_err(c, 0, epfx, key, "'%s' is already endpoints[%u]", u, j);
		if (strncmp(u, "http://", 7) == 0)
			GW_GUARD(gw_cfg_warn(c, 0, epfx, key,
				"'%s' is plain http: the fleet's requests (membership, sealed "
				"ticket keys) travel unauthenticated and in clear; use https:// "
				"outside tests",
				u));
	}

	/* https only: libcurl reads these files at each connection */
	if (e->ca) {
		struct gw_material m = {0};

		NOMEM(k->etcd_ca = resolve(c, e->ca));
		if (check_pem(c, epfx, "ca", k->etcd_ca, PEM_CERTS, &m, NULL) == 0 && all_http)
			GW_GUARD(gw_cfg_warn(c, 0, epfx, "ca",
				"unused: every endpoint is http:// (the CA checks https:// "
				"endpoints)"));
		gw_material_fini(&m);
	}
	if (e->cert) {
		struct gw_material m = {0};

		NOMEM(k->etcd_cert = resolve(c, e->cert));
		(void)check_pem(c, epfx, "cert", k->etcd_cert, PEM_CERTS, &m, NULL);
		gw_material_fini(&m);
		if (!e->key)
			gw_cfg_err(c, 0, epfx, "cert",
				"needs etcd.key (the certificate's private key: a PEM file or a "
				"pkcs11: URI)");
		else if (all_http)
			GW_GUARD(gw_cfg_warn(c, 0, epfx, "cert",
				"unused, and etcd.key with it: every endpoint is http:// (a "
				"client certificate is sent to https:// endpoints)"));
	}
	if (e->key) {
		if (!e->cert)
			gw_cfg_err(c, 0, epfx, "key",
				"applies only with etcd.cert (the client certificate this key "
				"belongs to)");
		if (strncmp(e->key, "pkcs11:", 7) == 0) {
			NOMEM(k->etcd_key = strdup(e->key));
			if (check_pkcs11_uri(c, epfx, "key", e->key) == 0 &&
				uri_attr(e->key, "type", type, sizeof(type)) &&
				strcmp(type, "private") != 0)
				gw_cfg_err(c, 0, epfx, "key",
					"'type=%s' is not a private key (expected type=private or "
					"no type)",
					type);
		} else {
			NOMEM(k->etcd_key = resolve(c, e->key));
			check_key_file(c, epfx, "key", k->etcd_key);
		}
	}
	k->timeout_ms = 2000;
	conv_duration_ms(c, epfx, "timeout", e->timeout, 100, 60000, "100ms..60s", &k->timeout_ms);

	NOMEM(k->ticket_key = strdup(r->ticket_key));
	if (check_pkcs11_uri(c, pfx, "ticket_key", r->ticket_key) == 0 &&
		uri_attr(r->ticket_key, "type", type, sizeof(type)) &&
		strcmp(type, "secret-key") != 0)
		gw_cfg_err(c, 0, pfx, "ticket_key",
			"'type=%s' is not an AES secret key (expected type=secret-key or no type; "
			"import the key with `mtlsgw-ctl hsm import-secret`)",
			type);
	k->lease_ttl_s = 10;
	if (r->lease_ttl) {
		if (gw_duration_parse(r->lease_ttl, &secs) < 0)
			gw_cfg_err(c, 0, pfx, "lease_ttl",
				"'%s' is not a duration (expected a number and one of s, m, h, d, "
				"e.g. 10s)",
				r->lease_ttl);
		else if (secs < 2 || secs > 300)
			gw_cfg_err(c, 0, pfx, "lease_ttl", "'%s' is out of range (expected 2s..5m)",
				r->lease_ttl);
		else
			k->lease_ttl_s = (unsigned)secs;
	}
	/* a request that outwaits the lease lets the member's lease expire */
	if (k->timeout_ms >= k->lease_ttl_s * 1000u)
		gw_cfg_err(c, 0, epfx, "timeout",
			"%u ms is not shorter than cluster.lease_ttl (%u s): a request waiting "
			"that long lets the member's lease expire",
			k->timeout_ms, k->lease_ttl_s);
	return 0;
}

/* ---- hsm, state, admin ----------------------------------------------------- */

int
gw_cfg_parse_listen(
	const char *s, struct sockaddr_storage *sa, socklen_t *len, char *why, size_t whylen)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *h = s;
	size_t hl;
	unsigned long port;

	GW_ENSURE(s && sa && len && why, -EINVAL);
	memset(sa, 0, sizeof(*sa));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':') {
			gw_cfg_fmt(why, whylen,
				"'%s' is not [IPv6]:port (the closing bracket must be followed "
				"by :port, e.g. [::1]:9465)",
				s);
			return -EINVAL;
		}
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			gw_cfg_fmt(why, whylen,
				"'%s' has no port (expected host:port, e.g. 127.0.0.1:9465 or "
				"[::1]:9465)",
				s);
			return -EINVAL;
		}
		hl = (size_t)(colon - s);
	}
	if (!parse_uint(colon + 1, 65535, &port) || port == 0) {
		gw_cfg_fmt(why, whylen, "'%s': port '%s' is not a number 1..65535", s, colon + 1);
		return -EINVAL;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		gw_cfg_fmt(why, whylen, "'%s': expected an IPv4 address or [IPv6] before :port", s);
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (s[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;

		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
			gw_cfg_fmt(why, whylen, "'%s': '%s' is not an IPv6 address", s, host);
			return -EINVAL;
		}
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
		uint32_t ip;

		if (strchr(host, ':') != NULL) {
			gw_cfg_fmt(why, whylen, "'%s': an IPv6 address needs brackets: [%s]:%lu", s,
				host, port);
			return -EINVAL;
		}
		if (!parse_ip(host, &ip)) {
			gw_cfg_fmt(why, whylen,
				"'%s': '%s' is not an IPv4 address (a.b.c.d; host names are not "
				"resolved)",
				s, host);
			return -EINVAL;
		}
		a4->sin_family = AF_INET;
		a4->sin_addr.s_addr = ip;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
	}
	return 0;
}

static int
conv_hsm(struct gw_cfg_ctx *c, const struct raw_hsm *r, struct gw_cfg *cfg)
{
	const struct raw_hsm none = {0};
	bool needed = false;
	struct stat st;

	if (!r)
		r = &none;
	for (unsigned i = 0; i < cfg->n_listeners; i++)
		needed = needed || cfg->listeners[i].has_tls;
	for (unsigned i = 0; i < cfg->mtls.n_backends; i++)
		needed = needed || cfg->mtls.backends[i].type != GW_CA_CFSSL;
	needed = needed || cfg->has_cluster; /* cluster.ticket_key */

	NOMEM(cfg->hsm.module =
			r->module ? resolve(c, r->module) : strdup(GW_DEFAULT_PKCS11_MODULE));
	if ((needed || r->module) && stat(cfg->hsm.module, &st) < 0)
		gw_cfg_err(c, 0, "hsm", r->module ? "module" : NULL,
			"PKCS#11 module %s: %s (expected the path of a PKCS#11 .so, e.g. %s)",
			cfg->hsm.module, strerror(errno), GW_DEFAULT_PKCS11_MODULE);
	if (r->pin_file && r->pin_env)
		gw_cfg_err(c, 0, "hsm", "pin_env", "give pin_file or pin_env, not both");
	if (needed && !r->pin_file && !r->pin_env)
		gw_cfg_err(c, 0, "hsm", NULL,
			"the HSM holds the TLS/CA keys, so it needs hsm.pin_file (a file holding "
			"the user PIN) or hsm.pin_env (the name of an environment variable)");
	if (r->pin_file) {
		NOMEM(cfg->hsm.pin_file = resolve(c, r->pin_file));
		if (stat(cfg->hsm.pin_file, &st) < 0)
			gw_cfg_err(c, 0, "hsm", "pin_file", "%s: %s", cfg->hsm.pin_file,
				strerror(errno));
		else if (!S_ISREG(st.st_mode))
			gw_cfg_err(c, 0, "hsm", "pin_file", "%s: not a regular file",
				cfg->hsm.pin_file);
	}
	if (r->pin_env) {
		bool ok = isalpha((unsigned char)r->pin_env[0]) || r->pin_env[0] == '_';

		for (const char *s = r->pin_env; *s && ok; s++)
			ok = isalnum((unsigned char)*s) || *s == '_';
		if (!ok)
			gw_cfg_err(c, 0, "hsm", "pin_env",
				"'%s' is not an environment variable name (expected "
				"[A-Za-z_][A-Za-z0-9_]*, e.g. MTLSGW_PIN)",
				r->pin_env);
		NOMEM(cfg->hsm.pin_env = strdup(r->pin_env));
	}
	/* hsm.env: moved from the first pass, checked here */
	for (unsigned i = 0; i < c->n_env; i++) {
		const char *name = c->env[i].name;
		bool ok = isupper((unsigned char)name[0]) || name[0] == '_';
		char sub[GW_CFG_PATH_MAX];

		for (const char *s = name; *s && ok; s++)
			ok = isupper((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_';
		gw_cfg_fmt(sub, sizeof(sub), "hsm.env.%s", name);
		if (!ok)
			gw_cfg_err(c, c->env_line[i], sub, NULL,
				"'%s' is not an environment variable name (expected "
				"[A-Z_][A-Z0-9_]*, e.g. SOFTHSM2_CONF)",
				name);
		else if (r->pin_env && strcmp(name, r->pin_env) == 0)
			gw_cfg_err(c, c->env_line[i], sub, NULL,
				"%s is hsm.pin_env, the PIN's variable: a PIN never goes in the "
				"config; set it in the service's environment (or use hsm.pin_file)",
				name);
		cfg->hsm.env[i] = c->env[i];
		c->env[i] = (struct gw_cfg_env){0};
	}
	cfg->hsm.n_env = c->n_env;
	c->n_env = 0;
	/* the HSM threads that sign for the workers (hsm.h, asynchronous signatures) */
	cfg->hsm.threads = 16; /* GW_HSM_ASYNC_THREADS_DEFAULT */
	cfg->hsm.queue = 1024; /* GW_HSM_ASYNC_QUEUE_DEFAULT */
	cfg->hsm.sign_timeout_ms = 2000;
	conv_uint_range(c, "hsm", "threads", r->threads, 1, 256, " HSM threads", &cfg->hsm.threads);
	conv_uint_range(
		c, "hsm", "queue", r->queue, 1, 65536, " queued signatures", &cfg->hsm.queue);
	conv_duration_ms(c, "hsm", "sign_timeout", r->sign_timeout, 10, 60000, "10ms..60s",
		&cfg->hsm.sign_timeout_ms);
	/* absent: never (hsm.h, "Signing in place") */
	conv_duration(c, "hsm", "inline_below", r->inline_below, gw_duration_parse_us,
		"us, ms, s, e.g. 500us", 10, 100000, "10us..100ms", &cfg->hsm.inline_below_us);
	/* absent: the CPUs no worker runs on (gateway start, dataplane.h
	 * gw_dp_spare_cpus); whether this process may use them is for the
	 * start to say (a reload runs on the main lcore's CPU alone) */
	for (unsigned i = 0; i < r->cpus_count; i++) {
		char k[32];

		gw_cfg_fmt(k, sizeof(k), "cpus[%u]", i);
		if (r->cpus[i] >= CPU_SETSIZE) {
			gw_cfg_err(c, 0, "hsm", k, "CPU %u is out of range (expected 0..%d)",
				r->cpus[i], CPU_SETSIZE - 1);
			continue;
		}
		for (unsigned j = 0; j < i; j++)
			if (r->cpus[j] == r->cpus[i])
				gw_cfg_err(c, 0, "hsm", k, "CPU %u is listed twice (also cpus[%u])",
					r->cpus[i], j);
		cfg->hsm.cpus[cfg->hsm.n_cpus++] = (uint16_t)r->cpus[i];
	}
	return 0;
}

/* ---- loading ------------------------------------------------------------------ */

static void
cyaml_log_capture(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct gw_cfg_ctx *c = ctx;
	size_t room = sizeof(c->cyaml_log) - c->cyaml_log_len;
	int w;

	if (level < CYAML_LOG_ERROR || room <= 1)
		return;
	w = vsnprintf(c->cyaml_log + c->cyaml_log_len, room, fmt, args);
	if (w < 0)
		return;
	c->cyaml_log_len += (size_t)w < room ? (size_t)w : room - 1;
	/* its messages end in '\n' and come in pieces: make one line */
	for (char *p = c->cyaml_log; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
}

static const struct name_val alog_formats[] = {
	{"text", GW_CFG_ALOG_TEXT},
	{"json", GW_CFG_ALOG_JSON},
};

/* access_log: (docs/config.md): off for accepted connections unless enabled. */
static int
conv_access_log(struct gw_cfg_ctx *c, const struct raw_access_log *r, struct gw_cfg_access_log *a)
{
	int v;

	a->dest = GW_CFG_ALOG_STDERR;
	a->format = GW_CFG_ALOG_TEXT;
	a->refusals_per_second = GW_CFG_ALOG_REFUSALS_DEFAULT;
	if (!r)
		return 0;
	a->enabled = r->enabled;
	if (r->path && strcmp(r->path, "stderr") == 0) {
		a->dest = GW_CFG_ALOG_STDERR;
	} else if (r->path && strcmp(r->path, "journal") == 0) {
		a->dest = GW_CFG_ALOG_JOURNAL;
	} else if (r->path) {
		a->dest = GW_CFG_ALOG_FILE;
		if (!r->path[0] || r->path[strlen(r->path) - 1] == '/')
			gw_cfg_err(c, 0, "access_log", "path",
				"'%s' is not a file name (expected a file, journal or stderr)",
				r->path);
		else
			NOMEM(a->path = resolve(c, r->path));
	}
	if (r->format && ENUM(c, "access_log", "format", r->format, alog_formats, &v) == 0)
		a->format = (enum gw_cfg_alog_format)v;
	conv_uint_range(c, "access_log", "refusals_per_second", r->refusals_per_second, 1, 100000,
		" lines per reason per second", &a->refusals_per_second);
	return 0;
}

static int
convert(struct gw_cfg_ctx *c, const struct raw_cfg *r, struct gw_cfg *cfg)
{
	GW_GUARD(conv_dataplane(c, r->dataplane, &cfg->dataplane));
	if (r->mtls) {
		cfg->has_mtls = true;
		GW_GUARD(conv_mtls(c, r->mtls, &cfg->mtls));
	}
	GW_GUARD(conv_listeners(c, r, cfg));
	if (r->cluster) {
		cfg->has_cluster = true;
		GW_GUARD(conv_cluster(c, r->cluster, &cfg->cluster));
	}
	GW_GUARD(conv_hsm(c, r->hsm, cfg));
	GW_GUARD(conv_access_log(c, r->access_log, &cfg->access_log));
	NOMEM(cfg->state_dir =
			r->state_dir ? resolve(c, r->state_dir) : strdup(GW_CFG_DEFAULT_STATE_DIR));
	if (r->state_dir && !r->state_dir[0])
		gw_cfg_err(c, 0, NULL, "state_dir", "must not be empty");
	if (r->admin && r->admin->socket) {
		NOMEM(cfg->admin.socket = resolve(c, r->admin->socket));
		/* sun_path is 108 bytes with its NUL */
		if (!r->admin->socket[0] || strlen(cfg->admin.socket) > 107)
			gw_cfg_err(c, 0, "admin", "socket",
				"'%s' is not usable as a unix socket path (1..107 characters)",
				cfg->admin.socket);
	}
	if (r->admin && r->admin->metrics_address) {
		char why[GW_ERR_MSG_MAX];

		NOMEM(cfg->admin.metrics_address = strdup(r->admin->metrics_address));
		if (gw_cfg_parse_listen(cfg->admin.metrics_address, &cfg->admin.metrics_sa,
			    &cfg->admin.metrics_sa_len, why, sizeof(why)) < 0)
			gw_cfg_err(c, 0, "admin", "metrics_address", "%s", why);
	}
	return 0;
}

static int
load(struct gw_cfg_ctx *c, const char *buf, size_t len, struct gw_cfg **out)
{
	cyaml_config_t cc = {
		.log_fn = cyaml_log_capture,
		.log_ctx = c,
		.mem_fn = cyaml_mem,
		.log_level = CYAML_LOG_ERROR,
		.flags = CYAML_CFG_NO_ALIAS,
	};
	struct raw_cfg *raw = NULL;
	struct gw_cfg *cfg = NULL;
	cyaml_err_t e;
	bool schema_bad;
	int rc;

	if (len > GW_CFG_MAX_FILE) {
		gw_cfg_err(c, 1, NULL, NULL, "the file is %zu bytes; a config is at most %u", len,
			GW_CFG_MAX_FILE);
		rc = -GW_E_CONFIG;
		goto out;
	}
	rc = gw_cfg_yaml_check(c, buf, len, &top_schema);
	if (rc == -ENOMEM)
		goto out;
	/*
	 * Every error of the file in one run (README): after schema errors the
	 * typed load still runs, skipping unknown keys, so the value checks of
	 * the conversion report too. A document libcyaml cannot load even then
	 * (wrong types, missing keys) has had its errors reported already.
	 */
	schema_bad = rc < 0;
	if (schema_bad)
		cc.flags |= CYAML_CFG_IGNORE_UNKNOWN_KEYS;
	e = cyaml_load_data(
		(const uint8_t *)buf, len, &cc, &top_schema, (cyaml_data_t **)&raw, NULL);
	if (e != CYAML_OK) {
		if (e == CYAML_ERR_OOM) {
			rc = -ENOMEM;
			goto out;
		}
		if (schema_bad)
			goto out;
		/* the first pass should have caught it: still say what libcyaml said */
		c->cyaml_refused = true;
		gw_cfg_err(c, 1, NULL, NULL, "libcyaml: %s%s%s", cyaml_strerror(e),
			c->cyaml_log_len ? ": " : "", c->cyaml_log);
		rc = -GW_E_CONFIG;
		goto out;
	}
	if (raw == NULL) { /* an empty document, reported by the first pass */
		rc = -GW_E_CONFIG;
		goto out;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		rc = -ENOMEM;
		goto out;
	}
	rc = convert(c, raw, cfg);
	if (rc == 0 && (c->n_errs || schema_bad))
		rc = -GW_E_CONFIG;
	if (rc == 0) {
		*out = cfg;
		cfg = NULL;
	}
out:
	gw_cfg_free(cfg);
	if (raw)
		cyaml_free(&cc, &top_schema, raw, 0);
	return rc;
}

/* Set up c, run load(), publish the first error in the thread's gw_err. */
int
gw_cfg_load_check(const char *name, const char *buf, size_t len, struct gw_cfg **out, FILE *errs,
	bool *cyaml_refused)
{
	struct gw_cfg_ctx c = {.file = name, .errs = errs};
	struct gw_cfg *cfg = NULL;
	const char *slash = strrchr(name, '/');
	int rc;

	if (slash) {
		c.base_dir = slash == name ? strdup("/") : strndup(name, (size_t)(slash - name));
		if (!c.base_dir)
			return gw_err_setf(-ENOMEM, GW_HERE, "config %s: out of memory", name);
	}
	rc = load(&c, buf, len, &cfg);
	if (rc == 0) {
		cfg->path = strdup(name);
		cfg->warnings = c.warns;
		cfg->n_warnings = c.n_warns;
		c.warns = NULL;
		c.n_warns = 0;
		if (!cfg->path) {
			gw_cfg_free(cfg);
			rc = -ENOMEM;
		}
	}
	if (rc == 0) {
		*out = cfg;
	} else if (rc == -ENOMEM) {
		gw_err_setf(rc, GW_HERE, "config %s: out of memory", name);
	} else if (c.n_errs > 1) {
		gw_err_setf(rc, GW_HERE, "%s (and %u more)", c.first, c.n_errs - 1);
	} else {
		gw_err_setf(rc, GW_HERE, "%s", c.first);
	}
	if (c.n_errs > GW_CFG_MAX_ERRS && errs)
		fprintf(errs, "%s: %u more errors not shown\n", name, c.n_errs - GW_CFG_MAX_ERRS);
	if (cyaml_refused)
		*cyaml_refused = c.cyaml_refused;
	gw_cfg_idx_free(&c.idx);
	for (unsigned i = 0; i < c.n_env; i++) { /* not moved: the load failed first */
		free(c.env[i].name);
		free(c.env[i].value);
	}
	free_strs(c.warns, c.n_warns);
	free(c.base_dir);
	return rc;
}

int
gw_cfg_load_mem(const char *name, const void *buf, size_t len, struct gw_cfg **out, FILE *errs)
{
	if (!name || !buf || !out)
		return gw_err_setf(-EINVAL, GW_HERE, "gw_cfg_load_mem: NULL argument");
	return gw_cfg_load_check(name, buf, len, out, errs, NULL);
}

int
gw_cfg_load(const char *path, struct gw_cfg **out, FILE *errs)
{
	FILE *f = NULL;
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	bool reported = false;
	int rc;

	if (!path || !out)
		return gw_err_setf(-EINVAL, GW_HERE, "gw_cfg_load: NULL argument");
	f = fopen(path, "rb");
	if (!f || fstat(fileno(f), &st) < 0) {
		rc = -errno;
		gw_err_setf(rc, GW_HERE, "%s: cannot read the config: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = gw_err_setf(-GW_E_CONFIG, GW_HERE, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > GW_CFG_MAX_FILE) {
		rc = gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"%s:1: the file is %lld bytes; a config is at most %u", path,
			(long long)st.st_size, GW_CFG_MAX_FILE);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = gw_err_setf(-ENOMEM, GW_HERE, "%s: out of memory", path);
		goto out;
	}
	len = fread(buf, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		rc = gw_err_setf(-EIO, GW_HERE, "%s: read error", path);
		goto out;
	}
	rc = gw_cfg_load_check(path, buf, len, out, errs, NULL);
	reported = true; /* it wrote its own lines */
out:
	if (rc < 0 && !reported && errs)
		fprintf(errs, "%s\n", gw_err_msg());
	free(buf);
	if (f)
		fclose(f);
	return rc;
}
