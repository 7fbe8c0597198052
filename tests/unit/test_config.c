/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_config.c - the config loader (control/config.h): a full valid file
 * using every key, and every class of error with its message checked
 * (field path, line number, what was expected), reload keeping the old
 * config, and the committed fixtures in tests/fixtures/config/.
 *
 * Certificates, CRLs and garbage files are generated into a temp dir with
 * OpenSSL's C API so the validity dates are relative to now.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "gw_test.h"
#include "hsm.h"
#include "trust.h"

static char tmpdir[64];
static char errbuf[16384];

/* Write text to tmpdir/name; returns the path (static per call site use). */
static const char *
put(const char *name, const char *text)
{
	static char path[8][256];
	static unsigned slot;
	char *p = path[slot++ % 8];
	FILE *f;

	snprintf(p, 256, "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	if (!f) {
		perror(p);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
	if (strstr(name, "pin") != NULL)
		chmod(p, 0600); /* PIN files others may read are refused (hsm.h) */
	return p;
}

/* Load the config file at path; errors land in errbuf. */
static int
load_file(const char *path, struct gw_cfg **out)
{
	FILE *errs = fmemopen(errbuf, sizeof(errbuf), "w");
	int rc;

	memset(errbuf, 0, sizeof(errbuf));
	*out = NULL;
	rc = gw_cfg_load(path, out, errs);
	fclose(errs);
	return rc;
}

/* Load a YAML text; errors land in errbuf. */
static int
load_text(const char *yaml, struct gw_cfg **out)
{
	return load_file(put("gw.yaml", yaml), out);
}

/* The path of a committed fixture, tests/fixtures/config/name (one at a time). */
static const char *
fixture(const char *name)
{
	static char p[512];
	const char *src = getenv("GW_SRC") ? getenv("GW_SRC") : "../..";

	snprintf(p, sizeof(p), "%s/tests/fixtures/config/%s", src, name);
	return p;
}

/* gw_cfg_check_keys(c); errors land in errbuf. */
static int
check_keys(const struct gw_cfg *c)
{
	FILE *errs = fmemopen(errbuf, sizeof(errbuf), "w");
	int rc;

	memset(errbuf, 0, sizeof(errbuf));
	rc = gw_cfg_check_keys(c, errs);
	fclose(errs);
	return rc;
}

/* Number of lines in errbuf. */
static unsigned
n_lines(void)
{
	unsigned n = 0;

	for (const char *p = errbuf; *p; p++)
		n += *p == '\n';
	return n;
}

/* ---- test PKI ------------------------------------------------------------- */

static EVP_PKEY *
ec_key(void)
{
	return EVP_EC_gen("P-256");
}

/* A certificate valid from now+nb_days to now+na_days, CA or not. */
static X509 *
make_cert(EVP_PKEY *key, EVP_PKEY *signer, X509 *issuer, const char *cn, long nb_days, long na_days,
	int ca)
{
	X509 *x = X509_new();
	X509_NAME *n;
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)rand());
	X509_gmtime_adj(X509_getm_notBefore(x), nb_days * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), na_days * 86400);
	X509_set_pubkey(x, key);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(
		NULL, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
		ca == 1 ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509_sign(x, signer ? signer : key, EVP_sha256());
	return x;
}

static void
write_cert(const char *name, X509 *x)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	PEM_write_X509(f, x);
	fclose(f);
}

static void
write_crl(const char *name, X509 *ca, EVP_PKEY *cakey)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_adj(NULL, time(NULL), 0, 0);
	char p[256];
	FILE *f;

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	X509_CRL_set1_lastUpdate(crl, t);
	ASN1_TIME_adj(t, time(NULL), 30, 0);
	X509_CRL_set1_nextUpdate(crl, t);
	X509_CRL_sign(crl, cakey, EVP_sha256());
	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	PEM_write_X509_CRL(f, crl);
	fclose(f);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
}

static EVP_PKEY *ca_key; /* the test root, kept to sign the HSM key's cert */
static X509 *ca;

static void
make_pki(void)
{
	EVP_PKEY *leaf_key = ec_key(), *k2 = ec_key();
	X509 *leaf = make_cert(leaf_key, ca_key, ca, "api.example.com", -1, 365, 0);
	X509 *old = make_cert(k2, ca_key, ca, "old.example.com", -30, -1, 0);
	X509 *future = make_cert(k2, ca_key, ca, "future.example.com", 10, 20, 0);
	X509 *notca = make_cert(k2, NULL, NULL, "not a ca", -1, 365, 0);

	write_cert("root.pem", ca);
	write_cert("api.pem", leaf);
	write_cert("expired.pem", old);
	write_cert("future.pem", future);
	write_cert("notca.pem", notca);
	write_crl("root.crl", ca, ca_key);
	put("garbage.pem", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n"
			   "-----END CERTIFICATE-----\n");
	put("empty.pem", "just some text, no PEM at all\n");
	put("pin", "1234\n");
	X509_free(leaf);
	X509_free(old);
	X509_free(future);
	X509_free(notca);
	EVP_PKEY_free(leaf_key);
	EVP_PKEY_free(k2);
}

/* The head every listener test shares: lines 1..9. */
#define DP                              \
	"dataplane:\n"                  \
	"  workers: [1]\n"              \
	"  no_huge: true\n"             \
	"  ports:\n"                    \
	"    - name: wan\n"             \
	"      driver: tap\n"           \
	"      device: mtlsgw0\n"       \
	"      address: 10.99.0.2/24\n" \
	"hsm: { pin_file: pin }\n"

/* Every key the loader knows, once. Line numbers matter to the cases below. */
static const char full_yaml[] =
	"dataplane:\n"
	"  workers: [1]\n"
	"  main_lcore: 0\n"
	"  no_huge: true\n"
	"  memory_mb: 256\n"
	"  file_prefix: gwtest\n"
	"  idle: poll\n"
	"  ports:\n"
	"    - name: wan\n"
	"      driver: tap\n"
	"      device: mtlsgw0\n"
	"      address: 10.99.0.2/24\n"
	"      gateway: 10.99.0.1\n"
	"      mtu: 1500\n"
	"    - name: bench\n"
	"      driver: memif\n"
	"      device: /run/mtlsgw/memif.sock\n"
	"      address: 10.98.0.2/24\n"
	"      role: client\n"
	"listeners:\n"
	"  - name: api\n"
	"    address: 10.99.0.2:443\n"
	"    service: tls-proxy\n"
	"    backlog: 2048\n"
	"    tls:\n"
	"      min_version: \"1.3\"\n"
	"      ciphersuites: [TLS_AES_128_GCM_SHA256, ECDHE-ECDSA-AES128-GCM-SHA256]\n"
	"      identity:\n"
	"        - cert: api.pem\n"
	"          key: \"pkcs11:token=gw;object=api;type=private\"\n"
	"          sni: [api.example.com]\n"
	"      client_auth: optional\n"
	"    trust:\n"
	"      mode: ca\n"
	"      certs: [root.pem]\n"
	"      crl: [root.crl]\n"
	"      max_depth: 3\n"
	"      allow:\n"
	"        spiffe: [\"spiffe://example.org/ns/prod/*\"]\n"
	"        dns: [client.example.com]\n"
	"        cn: [client]\n"
	"    upstream:\n"
	"      servers: [10.99.0.1:8080, 10.99.0.3:8081]\n"
	"      proxy_protocol: v2\n"
	"  - name: pinned\n"
	"    address: 10.99.0.2:8443\n"
	"    service: tls-echo\n"
	"    tls:\n"
	"      identity: [{cert: api.pem, key: \"pkcs11:token=gw;object=api\"}]\n"
	"    trust:\n"
	"      mode: pinned\n"
	"      pins_sha256:\n"
	"        - 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
	"  - name: mesh\n"
	"    address: 10.98.0.2:443\n"
	"    service: tls-echo\n"
	"    tls: {}\n"
	"    trust: { mode: mesh }\n"
	"  - name: echo\n"
	"    address: 10.99.0.2:7\n"
	"    service: echo\n"
	"hsm:\n"
	"  module: " GW_DEFAULT_PKCS11_MODULE "\n"
	"  pin_file: pin\n"
	"state_dir: state\n"
	"admin: { socket: /run/mtlsgw/admin.sock,\n"
	"         metrics_address: \"127.0.0.1:9465\" }\n"
	"mtls:\n"
	"  trust_domain: example.org\n"
	"  enabledBackend: ca-1\n"
	"  backends:\n"
	"    - name: ca-1\n"
	"      type: builtin\n"
	"      conf: { key_type: ec-p384, root_validity: 10y, leaf_validity: 72h }\n"
	"    - name: ca-2\n"
	"      type: provided\n"
	"      conf:\n"
	"        cert: root.pem\n"
	"        key: \"pkcs11:token=gw;object=ca-2;type=private\"\n"
	"    - name: ca-3\n"
	"      type: cfssl\n"
	"      conf: { url: \"http://127.0.0.1:8888\", profile: mtlsgw }\n";

/* Load yaml, expect -GW_E_CONFIG and that errbuf holds want. */
#define EXPECT_CFG_ERR(yaml, want)                              \
	do {                                                    \
		struct gw_cfg *c_;                              \
		EXPECT_ERR(load_text(yaml, &c_), -GW_E_CONFIG); \
		EXPECT_TRUE(c_ == NULL);                        \
		EXPECT_CONTAINS(errbuf, want);                  \
	} while (0)

int
main(void)
{
	GW_TEST_BEGIN();
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	ca_key = ec_key();
	ca = make_cert(ca_key, NULL, NULL, "test root", -1, 3650, 1);
	make_pki();

	{ /* the committed minimal fixture: dataplane + one echo listener, defaults */
		const char *p = fixture("echo.yaml");
		struct gw_cfg *c = NULL;

		EXPECT_OK(gw_cfg_load(p, &c, stderr));
		if (c) {
			EXPECT_EQ(c->dataplane.n_workers, 1);
			EXPECT_EQ(c->dataplane.workers[0], 1);
			EXPECT_EQ(c->dataplane.main_lcore, 0);
			EXPECT_TRUE(c->dataplane.no_huge);
			EXPECT_EQ(c->dataplane.memory_mb, 256);
			EXPECT_STREQ(c->dataplane.file_prefix, "mtlsgw");
			EXPECT_EQ(c->dataplane.idle, GW_IDLE_ADAPTIVE);
			EXPECT_EQ(c->dataplane.n_ports, 1);
			EXPECT_STREQ(c->dataplane.ports[0].name, "wan");
			EXPECT_EQ(c->dataplane.ports[0].driver, GW_PORT_TAP);
			EXPECT_STREQ(c->dataplane.ports[0].device, "mtlsgw0");
			EXPECT_EQ(c->dataplane.ports[0].ip, htonl(0x0a630002));
			EXPECT_EQ(c->dataplane.ports[0].prefix_len, 24);
			EXPECT_EQ(c->dataplane.ports[0].gateway, htonl(0x0a630001));
			EXPECT_EQ(c->dataplane.ports[0].mtu, 0);
			EXPECT_EQ(c->n_listeners, 1);
			EXPECT_STREQ(c->listeners[0].name, "echo");
			EXPECT_EQ(c->listeners[0].addr.ip, htonl(0x0a630002));
			EXPECT_EQ(c->listeners[0].addr.port, htons(7));
			EXPECT_EQ(c->listeners[0].service, GW_SVC_ECHO);
			EXPECT_EQ(c->listeners[0].backlog, 1024);
			EXPECT_TRUE(!c->listeners[0].has_tls && !c->listeners[0].has_trust &&
				    !c->listeners[0].has_upstream);
			EXPECT_STREQ(c->hsm.module, GW_DEFAULT_PKCS11_MODULE);
			EXPECT_STREQ(c->state_dir, "/var/lib/mtlsgw");
			EXPECT_TRUE(c->admin.socket == NULL);
			EXPECT_TRUE(c->admin.metrics_address == NULL); /* absent: off */
			EXPECT_TRUE(!c->has_mtls);
			EXPECT_STREQ(c->path, p);
			EXPECT_TRUE(gw_cfg_listener_find(c, "echo") == &c->listeners[0]);
			EXPECT_TRUE(gw_cfg_listener_find(c, "nope") == NULL);
		}
		gw_cfg_free(c);
	}

	{ /* committed fixtures with shape errors: all reported, with lines */
		struct gw_cfg *c = NULL;

		EXPECT_ERR(load_file(fixture("bad_shape.yaml"), &c), -GW_E_CONFIG);
		EXPECT_TRUE(c == NULL);
		EXPECT_CONTAINS(errbuf, "bad_shape.yaml:3: dataplane.workers[1]: expected a whole "
					"number >= 0 (decimal, no leading zeros), got 'x'");
		EXPECT_CONTAINS(errbuf, "bad_shape.yaml:4: dataplane.no_huge: expected true or "
					"false, got 'maybe'");
		EXPECT_CONTAINS(errbuf, "bad_shape.yaml:9: dataplane.ports[0].adress: unknown key "
					"(expected one of: name, driver, device, address, gateway, "
					"mtu, role, peer_address)");
		EXPECT_CONTAINS(errbuf, "bad_shape.yaml:6: dataplane.ports[0].address: required "
					"key is missing");
		EXPECT_CONTAINS(errbuf, "bad_shape.yaml:14: listeners[0].service: duplicate key "
					"(first given on line 13)");
		EXPECT_CONTAINS(errbuf, "bad_shape.yaml:15: hsm: expected a mapping");
		EXPECT_EQ(n_lines(), 6);
		/* the first error is also the thread's error message */
		EXPECT_CONTAINS(gw_err_msg(), "bad_shape.yaml:3: dataplane.workers[1]");
		EXPECT_CONTAINS(gw_err_msg(), "(and 5 more)");
	}

	{ /* committed fixture with value errors: all reported, with lines */
		struct gw_cfg *c = NULL;

		EXPECT_ERR(load_file(fixture("bad_values.yaml"), &c), -GW_E_CONFIG);
		EXPECT_TRUE(c == NULL);
		EXPECT_CONTAINS(errbuf, ":3: dataplane.workers[1]: lcore 1 is listed twice");
		EXPECT_CONTAINS(errbuf,
			":4: dataplane.idle: 'lazy' is not one of adaptive, poll, interrupt");
		EXPECT_CONTAINS(errbuf, ":7: dataplane.ports[0].driver: 'tapp' is not one of tap, "
					"af_packet, af_xdp, memif, pci");
		EXPECT_CONTAINS(errbuf,
			":9: dataplane.ports[0].address: '10.99.0.2' is not an IPv4 "
			"address with prefix length (expected a.b.c.d/len");
		EXPECT_CONTAINS(errbuf,
			":15: listeners[1].address: '10.1.0.2:99999' is not an IPv4 "
			"address and port");
		EXPECT_CONTAINS(errbuf, ":14: listeners[1].upstream: service tcp-proxy needs an "
					"upstream section");
		EXPECT_CONTAINS(errbuf, ":14: listeners[1].name: 'echo' is already the name of "
					"listeners[0] (line 11)");
		/* no knock-on error from the broken port address */
		EXPECT_TRUE(strstr(errbuf, "not on the subnet") == NULL);
		EXPECT_EQ(n_lines(), 7);
	}

	{ /* every key at once, and what each becomes */
		struct gw_cfg *c = NULL;
		char want[256];

		EXPECT_OK(load_text(full_yaml, &c));
		EXPECT_STREQ(errbuf, "");
		if (c) {
			const struct gw_cfg_dataplane *d = &c->dataplane;
			const struct gw_cfg_listener *api = gw_cfg_listener_find(c, "api");
			const struct gw_cfg_listener *pin = gw_cfg_listener_find(c, "pinned");
			const struct gw_cfg_listener *mesh = gw_cfg_listener_find(c, "mesh");

			EXPECT_EQ(d->main_lcore, 0);
			EXPECT_EQ(d->memory_mb, 256);
			EXPECT_STREQ(d->file_prefix, "gwtest");
			EXPECT_EQ(d->idle, GW_IDLE_POLL);
			EXPECT_EQ(d->n_ports, 2);
			EXPECT_EQ(d->ports[0].mtu, 1500);
			EXPECT_EQ(d->ports[0].memif_role, GW_MEMIF_SERVER);
			EXPECT_EQ(d->ports[1].driver, GW_PORT_MEMIF);
			EXPECT_STREQ(d->ports[1].device, "/run/mtlsgw/memif.sock");
			EXPECT_EQ(d->ports[1].memif_role, GW_MEMIF_CLIENT);
			EXPECT_EQ(c->n_listeners, 4);
			EXPECT_TRUE(api && pin && mesh);
			if (api && pin && mesh) {
				EXPECT_EQ(api->addr.port, htons(443));
				EXPECT_EQ(api->service, GW_SVC_TLS_PROXY);
				EXPECT_EQ(api->backlog, 2048);
				EXPECT_TRUE(api->has_tls && api->has_trust && api->has_upstream);
				EXPECT_EQ(api->tls.min_version, 0x0304); /* TLS1_3_VERSION */
				EXPECT_EQ(api->tls.n_ciphersuites, 2);
				EXPECT_STREQ(
					api->tls.ciphersuites[1], "ECDHE-ECDSA-AES128-GCM-SHA256");
				EXPECT_EQ(api->tls.n_identities, 1);
				snprintf(want, sizeof(want), "%s/api.pem", tmpdir);
				EXPECT_STREQ(api->tls.identities[0].cert, want);
				EXPECT_STREQ(api->tls.identities[0].key,
					"pkcs11:token=gw;object=api;type=private");
				EXPECT_EQ(api->tls.identities[0].n_sni, 1);
				EXPECT_STREQ(api->tls.identities[0].sni[0], "api.example.com");
				EXPECT_EQ(api->tls.client_auth, GW_CLIENT_AUTH_OPTIONAL);
				EXPECT_EQ(api->trust.mode, GW_TRUST_CA);
				EXPECT_EQ(api->trust.n_certs, 1);
				snprintf(want, sizeof(want), "%s/root.pem", tmpdir);
				EXPECT_STREQ(api->trust.certs[0], want);
				EXPECT_EQ(api->trust.n_crl, 1);
				EXPECT_EQ(api->trust.crl_check, GW_CRL_CHECK_CHAIN); /* default */
				EXPECT_EQ(api->trust.max_depth, 3);
				EXPECT_EQ(api->trust.allow.n_spiffe, 1);
				EXPECT_STREQ(api->trust.allow.spiffe[0],
					"spiffe://example.org/ns/prod/*");
				EXPECT_STREQ(api->trust.allow.dns[0], "client.example.com");
				EXPECT_STREQ(api->trust.allow.cn[0], "client");
				EXPECT_EQ(api->upstream.n_servers, 2);
				EXPECT_EQ(api->upstream.servers[1].ip, htonl(0x0a630003));
				EXPECT_EQ(api->upstream.servers[1].port, htons(8081));
				EXPECT_EQ(api->upstream.proxy_protocol, GW_PROXY_V2);

				EXPECT_EQ(pin->tls.min_version, 0x0303); /* default 1.2 */
				EXPECT_EQ(pin->tls.client_auth, GW_CLIENT_AUTH_REQUIRED);
				EXPECT_EQ(pin->trust.mode, GW_TRUST_PINNED);
				EXPECT_EQ(pin->trust.n_pins, 1);
				EXPECT_EQ(pin->trust.pins_sha256[0][0], 0x9f);
				EXPECT_EQ(pin->trust.pins_sha256[0][31], 0x08);
				EXPECT_EQ(pin->trust.max_depth, 4);
				EXPECT_EQ(pin->backlog, 1024);
				EXPECT_TRUE(!pin->has_upstream);

				EXPECT_EQ(mesh->trust.mode, GW_TRUST_MESH);
				EXPECT_EQ(mesh->tls.n_identities, 0);
			}
			EXPECT_STREQ(c->hsm.module, GW_DEFAULT_PKCS11_MODULE);
			snprintf(want, sizeof(want), "%s/pin", tmpdir);
			EXPECT_STREQ(c->hsm.pin_file, want);
			EXPECT_TRUE(c->hsm.pin_env == NULL);
			snprintf(want, sizeof(want), "%s/state", tmpdir);
			EXPECT_STREQ(c->state_dir, want);
			EXPECT_STREQ(c->admin.socket, "/run/mtlsgw/admin.sock");
			EXPECT_STREQ(c->admin.metrics_address, "127.0.0.1:9465");
			EXPECT_EQ(c->admin.metrics_sa.ss_family, AF_INET);
			EXPECT_EQ(((struct sockaddr_in *)&c->admin.metrics_sa)->sin_port,
				htons(9465));
			EXPECT_TRUE(c->has_mtls);
			EXPECT_STREQ(c->mtls.trust_domain, "example.org");
			EXPECT_STREQ(c->mtls.enabled_backend, "ca-1");
			EXPECT_EQ(c->mtls.n_backends, 3);
			if (c->mtls.n_backends == 3) {
				const struct gw_cfg_ca_backend *b = c->mtls.backends;

				EXPECT_EQ(b[0].type, GW_CA_BUILTIN);
				EXPECT_EQ(b[0].key_type, GW_KEY_EC_P384);
				EXPECT_EQ(b[0].root_validity_s, 10ull * 365 * 86400);
				EXPECT_EQ(b[0].leaf_validity_s, 72 * 3600);
				EXPECT_EQ(b[1].type, GW_CA_PROVIDED);
				EXPECT_STREQ(b[1].key, "pkcs11:token=gw;object=ca-2;type=private");
				EXPECT_EQ(b[1].key_type, GW_KEY_EC_P256);
				EXPECT_EQ(b[2].type, GW_CA_CFSSL);
				EXPECT_STREQ(b[2].url, "http://127.0.0.1:8888");
				EXPECT_STREQ(b[2].profile, "mtlsgw");
			}
		}
		gw_cfg_free(c);
	}

	/* ---- one case per error class; DP is lines 1..9, listeners from 10 ---- */

	{ /* the issue's own example: a mistyped enum names field, line, choices */
		EXPECT_CFG_ERR(DP
			"listeners:\n"
			"  - name: echo\n"
			"    address: 10.99.0.2:7\n"
			"    service: echo\n"
			"  - name: api\n"
			"    address: 10.99.0.2:443\n"
			"    service: tls-echo\n"
			"    tls:\n"
			"      identity: [{cert: api.pem, key: \"pkcs11:token=gw;object=a\"}]\n"
			"    trust:\n"
			"      mode: pined\n",
			"gw.yaml:20: listeners[1].trust.mode: 'pined' is not one of pinned, ca, "
			"mesh\n");
		EXPECT_EQ(n_lines(), 1);
	}

	{ /* unknown keys, at any depth, say which keys exist */
		EXPECT_CFG_ERR(DP "listeners:\n"
				  "  - name: echo\n"
				  "    adress: 10.99.0.2:7\n"
				  "    service: echo\n"
				  "colour: blue\n",
			"gw.yaml:12: listeners[0].adress: unknown key (expected one of: name, "
			"address, service, backlog, tls, trust, upstream)");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:14: colour: unknown key (expected one of: "
			"dataplane, listeners, hsm, state_dir, admin, access_log, mtls, "
			"cluster)");
		EXPECT_CONTAINS(
			errbuf, "gw.yaml:11: listeners[0].address: required key is missing");
		EXPECT_EQ(n_lines(), 3);
	}

	{ /* admin.metrics_address: IPv4 or [IPv6] with a port, nothing else */
		struct sockaddr_storage sa;
		socklen_t len;
		char why[256];
		static const char *const bad[][2] = {
			{"127.0.0.1", "has no port"},
			{"127.0.0.1:", "port '' is not a number 1..65535"},
			{"127.0.0.1:0", "port '0' is not a number 1..65535"},
			{"127.0.0.1:65536", "port '65536' is not a number 1..65535"},
			{"127.0.0.1:+80", "port '+80' is not a number"},
			{"127.0.0.1:80x", "port '80x' is not a number"},
			{"localhost:9465", "'localhost' is not an IPv4 address"},
			{"127.1:9465", "'127.1' is not an IPv4 address"},
			{"256.0.0.1:9465", "'256.0.0.1' is not an IPv4 address"},
			{":9465", "expected an IPv4 address or [IPv6] before :port"},
			{"::1:9465", "an IPv6 address needs brackets: [::1]:9465"},
			{"[::1]", "is not [IPv6]:port"},
			{"[::1:9465", "is not [IPv6]:port"},
			{"[::1]9465", "is not [IPv6]:port"},
			{"[]:9465", "expected an IPv4 address or [IPv6] before :port"},
			{"[127.0.0.1]:9465", "'127.0.0.1' is not an IPv6 address"},
			{"[fe80::1%eth0]:9465", "is not an IPv6 address"},
		};

		EXPECT_OK(gw_cfg_parse_listen("127.0.0.1:9465", &sa, &len, why, sizeof(why)));
		EXPECT_EQ(sa.ss_family, AF_INET);
		EXPECT_EQ(len, sizeof(struct sockaddr_in));
		EXPECT_EQ(((struct sockaddr_in *)&sa)->sin_addr.s_addr, htonl(0x7f000001));
		EXPECT_EQ(((struct sockaddr_in *)&sa)->sin_port, htons(9465));
		EXPECT_OK(gw_cfg_parse_listen("0.0.0.0:1", &sa, &len, why, sizeof(why)));
		EXPECT_EQ(((struct sockaddr_in *)&sa)->sin_port, htons(1));
		EXPECT_OK(gw_cfg_parse_listen("[::1]:65535", &sa, &len, why, sizeof(why)));
		EXPECT_EQ(sa.ss_family, AF_INET6);
		EXPECT_EQ(len, sizeof(struct sockaddr_in6));
		EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&sa)->sin6_addr));
		EXPECT_EQ(((struct sockaddr_in6 *)&sa)->sin6_port, htons(65535));
		EXPECT_OK(gw_cfg_parse_listen("[::]:9465", &sa, &len, why, sizeof(why)));
		EXPECT_TRUE(IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&sa)->sin6_addr));
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			why[0] = '\0';
			EXPECT_ERR(gw_cfg_parse_listen(bad[i][0], &sa, &len, why, sizeof(why)),
				-EINVAL);
			EXPECT_CONTAINS(why, bad[i][1]);
		}

		/* in a file: the line, the field, the value quoted */
		EXPECT_CFG_ERR(DP "admin:\n"
				  "  metrics_address: localhost:9465\n",
			"gw.yaml:11: admin.metrics_address: 'localhost:9465': 'localhost' is not "
			"an IPv4 address (a.b.c.d; host names are not resolved)");
		EXPECT_EQ(n_lines(), 1);
		EXPECT_CFG_ERR(DP "admin:\n"
				  "  metrics_address: 9465\n",
			"gw.yaml:11: admin.metrics_address: '9465' has no port");
		EXPECT_CFG_ERR(DP "admin:\n"
				  "  metrics: 127.0.0.1:9465\n",
			"gw.yaml:11: admin.metrics: unknown key (expected one of: socket, "
			"metrics_address)");
		{ /* without a socket: a metrics listener alone is fine */
			struct gw_cfg *c;

			EXPECT_OK(load_text(DP "admin: { metrics_address: \"[::1]:9465\" }\n", &c));
			if (c) {
				EXPECT_TRUE(c->admin.socket == NULL);
				EXPECT_STREQ(c->admin.metrics_address, "[::1]:9465");
				EXPECT_EQ(c->admin.metrics_sa.ss_family, AF_INET6);
				EXPECT_EQ(c->admin.metrics_sa_len, sizeof(struct sockaddr_in6));
			}
			gw_cfg_free(c);
		}
	}

	{ /* access_log: off unless enabled; path file/journal/stderr; format; rate */
		struct gw_cfg *c;
		char want[512];

		EXPECT_OK(load_text(DP, &c));
		if (c) { /* absent: accepted connections not logged, refusals 10/s to stderr */
			EXPECT_TRUE(!c->access_log.enabled);
			EXPECT_EQ(c->access_log.dest, GW_CFG_ALOG_STDERR);
			EXPECT_EQ(c->access_log.format, GW_CFG_ALOG_TEXT);
			EXPECT_EQ(c->access_log.refusals_per_second, 10);
			EXPECT_TRUE(c->access_log.path == NULL);
		}
		gw_cfg_free(c);
		EXPECT_OK(load_text(DP "access_log:\n"
				       "  enabled: true\n"
				       "  path: log/access.log\n"
				       "  format: json\n"
				       "  refusals_per_second: 3\n",
			&c));
		if (c) { /* relative to the config's directory, like every path */
			snprintf(want, sizeof(want), "%s/log/access.log", tmpdir);
			EXPECT_TRUE(c->access_log.enabled);
			EXPECT_EQ(c->access_log.dest, GW_CFG_ALOG_FILE);
			EXPECT_STREQ(c->access_log.path, want);
			EXPECT_EQ(c->access_log.format, GW_CFG_ALOG_JSON);
			EXPECT_EQ(c->access_log.refusals_per_second, 3);
		}
		gw_cfg_free(c);
		EXPECT_OK(load_text(DP "access_log: { enabled: true, path: journal }\n", &c));
		if (c)
			EXPECT_EQ(c->access_log.dest, GW_CFG_ALOG_JOURNAL);
		gw_cfg_free(c);
		EXPECT_CFG_ERR(DP "access_log:\n"
				  "  format: xml\n",
			"gw.yaml:11: access_log.format: 'xml' is not one of text, json");
		EXPECT_CFG_ERR(DP "access_log:\n"
				  "  refusals_per_second: 0\n",
			"gw.yaml:11: access_log.refusals_per_second: 0 is out of range (expected "
			"1..100000 lines per reason per second)");
		EXPECT_CFG_ERR(DP "access_log:\n"
				  "  path: \"logs/\"\n",
			"gw.yaml:11: access_log.path: 'logs/' is not a file name (expected a file, "
			"journal or stderr)");
		EXPECT_CFG_ERR(DP "access_log:\n"
				  "  enable: true\n",
			"gw.yaml:11: access_log.enable: unknown key (expected one of: enabled, "
			"path, format, refusals_per_second)");
		EXPECT_CFG_ERR(DP "access_log:\n"
				  "  enabled: maybe\n",
			"gw.yaml:11: access_log.enabled:");
	}

	{ /* unknown keys do not hide value errors: all four in one run (README) */
		EXPECT_CFG_ERR(DP "listeners:\n"
				  "  - name: p\n"
				  "    address: 10.99.0.2:80\n"
				  "    service: tcp-proxy\n"
				  "    colour: blue\n"
				  "    upstream:\n"
				  "      servers: [10.99.0.1:80]\n"
				  "      proxy_protocol: of\n"
				  "  - name: q\n"
				  "    address: 10.99.0.2:81\n"
				  "    service: echho\n"
				  "flavour: mint\n",
			"gw.yaml:14: listeners[0].colour: unknown key");
		EXPECT_CONTAINS(errbuf, "gw.yaml:21: flavour: unknown key");
		EXPECT_CONTAINS(errbuf, "gw.yaml:17: listeners[0].upstream.proxy_protocol: 'of' is "
					"not one of off, v2");
		EXPECT_CONTAINS(errbuf, "gw.yaml:20: listeners[1].service: 'echho' is not one of");
		EXPECT_EQ(n_lines(), 4);
	}

	{ /* wrong types */
		EXPECT_CFG_ERR("dataplane:\n"
			       "  workers: 1\n"
			       "  memory_mb: lots\n"
			       "  no_huge: 2\n"
			       "  ports:\n"
			       "    name: wan\n"
			       "listeners:\n"
			       "  - name: [a, b]\n"
			       "    address: 10.99.0.2:7\n"
			       "    service: echo\n"
			       "    backlog: -1\n"
			       "    tls: yes\n",
			"gw.yaml:2: dataplane.workers: expected a list ([a, b] or '- a' lines), "
			"got a "
			"single value");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:3: dataplane.memory_mb: expected a whole number >= 0 (decimal, no "
			"leading zeros), got 'lots'");
		EXPECT_CONTAINS(errbuf, "gw.yaml:4: dataplane.no_huge: expected true or false, got "
					"'2'");
		EXPECT_CONTAINS(errbuf, "gw.yaml:6: dataplane.ports: expected a list");
		EXPECT_CONTAINS(errbuf, "got a mapping");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:8: listeners[0].name: expected a single value, got "
			"a list");
		EXPECT_CONTAINS(errbuf, "gw.yaml:11: listeners[0].backlog: expected a whole number "
					">= 0 (decimal, no leading zeros), got '-1'");
		EXPECT_CONTAINS(errbuf, "gw.yaml:12: listeners[0].tls: expected a mapping");
		EXPECT_EQ(n_lines(), 7);
	}

	{ /* numbers: decimal only (libcyaml would read 0100 as octal) */
		EXPECT_CFG_ERR(
			"dataplane:\n"
			"  workers: [1]\n"
			"  memory_mb: 0100\n"
			"  ports: [{name: a, driver: tap, device: a, address: 10.0.0.1/8, mtu: "
			"0x500}]\n",
			"gw.yaml:3: dataplane.memory_mb: expected a whole number >= 0 (decimal, no "
			"leading zeros), got '0100'");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:4: dataplane.ports[0].mtu: expected a whole number "
			">= 0 (decimal, no leading zeros), got '0x500'");
	}

	{ /* numbers too large for their field, lists too long */
		EXPECT_CFG_ERR(
			"dataplane:\n"
			"  workers: [1]\n"
			"  memory_mb: 99999999999\n"
			"  ports: [{name: a, driver: tap, device: a, address: 10.0.0.1/8},\n"
			"          {name: b, driver: tap, device: b, address: 10.1.0.1/8},\n"
			"          {name: c, driver: tap, device: c, address: 10.2.0.1/8},\n"
			"          {name: d, driver: tap, device: d, address: 10.3.0.1/8},\n"
			"          {name: e, driver: tap, device: e, address: 10.4.0.1/8},\n"
			"          {name: f, driver: tap, device: f, address: 10.5.0.1/8},\n"
			"          {name: g, driver: tap, device: g, address: 10.6.0.1/8},\n"
			"          {name: h, driver: tap, device: h, address: 10.7.0.1/8},\n"
			"          {name: i, driver: tap, device: i, address: 10.8.0.1/8}]\n",
			"gw.yaml:3: dataplane.memory_mb: 99999999999 is too large (at most "
			"4294967295)");
		EXPECT_CONTAINS(
			errbuf, "gw.yaml:4: dataplane.ports: takes at most 8 entries, got 9");
	}

	{ /* YAML syntax errors, aliases, empty files, two documents */
		EXPECT_CFG_ERR("dataplane:\n  workers: [1\n  ports: []\n",
			"gw.yaml:3: YAML syntax error: did not find expected ',' or ']'");
		EXPECT_CFG_ERR("dataplane: &dp\n  workers: [1]\nx: *dp\n",
			"gw.yaml:3: YAML aliases (*dp) are not supported");
		EXPECT_CFG_ERR("", "gw.yaml:1: the file is empty");
		EXPECT_CFG_ERR("# only a comment\n", "gw.yaml:1: the file is empty");
		EXPECT_CFG_ERR("just words\n", "gw.yaml:1: expected a mapping");
		EXPECT_CFG_ERR(DP "---\n" DP, "gw.yaml:10: only one YAML document");
		EXPECT_CFG_ERR("dataplane:\n  workers: [1]\n\tports: []\n",
			"gw.yaml:3: YAML syntax error:");
		EXPECT_CFG_ERR("? [a, b]\n: c\n", "a mapping key must be a plain word");
	}

	{ /* workers: empty, duplicated, the main lcore, out of range */
		EXPECT_CFG_ERR(
			"dataplane:\n"
			"  workers: []\n"
			"  ports: [{name: a, driver: tap, device: a, address: 10.0.0.1/8}]\n",
			"gw.yaml:2: dataplane.workers: needs at least one worker lcore");
		EXPECT_CFG_ERR(
			"dataplane:\n"
			"  workers: [1, 1]\n"
			"  main_lcore: 1\n"
			"  ports: [{name: a, driver: tap, device: a, address: 10.0.0.1/8}]\n",
			"gw.yaml:2: dataplane.workers[1]: lcore 1 is listed twice (also "
			"workers[0])");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:2: dataplane.workers[0]: lcore 1 is the main lcore, "
			"which runs control and never a worker");
		EXPECT_CFG_ERR(
			"dataplane:\n"
			"  workers:\n"
			"    - 1\n"
			"    - 500\n"
			"  ports: [{name: a, driver: tap, device: a, address: 10.0.0.1/8}]\n",
			"gw.yaml:4: dataplane.workers[1]: lcore 500 is out of range (expected "
			"0..127)");
		/* lcore ids are logical: 127 is fine on any box (it wraps over the
		 * CPUs), and the main lcore defaults to the lowest free allowed CPU */
		{
			struct gw_cfg *c = NULL;
			cpu_set_t set, one;
			unsigned first = 0;

			EXPECT_OK(sched_getaffinity(0, sizeof(set), &set));
			while (first < CPU_SETSIZE - 1 && !CPU_ISSET(first, &set))
				first++;
			EXPECT_OK(load_text("dataplane:\n"
					    "  workers: [127]\n"
					    "  ports: [{name: a, driver: tap, device: a, address: "
					    "10.0.0.1/8}]\n",
				&c));
			EXPECT_EQ(c ? c->dataplane.main_lcore : 999, first);
			gw_cfg_free(c);
			/* one CPU, and it is the worker: the main lcore takes the
			 * lowest free id (and floats, dataplane.h) */
			CPU_ZERO(&one);
			CPU_SET(first, &one);
			EXPECT_OK(sched_setaffinity(0, sizeof(one), &one));
			{
				char y[256];

				snprintf(y, sizeof(y),
					"dataplane:\n"
					"  workers: [%u]\n"
					"  ports: [{name: a, driver: tap, device: a, address: "
					"10.0.0.1/8}]\n",
					first);
				EXPECT_OK(load_text(y, &c));
			}
			EXPECT_EQ(c ? c->dataplane.main_lcore : 999, first == 0 ? 1 : 0);
			gw_cfg_free(c);
			EXPECT_OK(sched_setaffinity(0, sizeof(set), &set));
		}
		EXPECT_CFG_ERR("dataplane:\n"
			       "  workers: [1]\n"
			       "  memory_mb: 10\n"
			       "  file_prefix: \"a b\"\n"
			       "  ports: []\n",
			"gw.yaml:3: dataplane.memory_mb: 10 is out of range (expected 64..1048576 "
			"MB)");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:4: dataplane.file_prefix: 'a b' is not usable as a "
			"DPDK file prefix");
		EXPECT_CONTAINS(errbuf, "gw.yaml:5: dataplane.ports: needs at least one port");
	}

	{ /* ports: driver, device, address, gateway, mtu, role, duplicates */
		EXPECT_CFG_ERR(
			"dataplane:\n"
			"  workers: [1]\n"
			"  ports:\n"
			"    - {name: a, driver: pci, device: 3:0.0, address: 10.0.0.1/33}\n"
			"    - {name: b, driver: tap, device: \"\", address: 10.1.0.1/16,\n"
			"       gateway: 10.2.0.1, mtu: 20, role: client}\n"
			"    - {name: b, driver: tap, device: thisnameistoolong0, address: "
			"1.2.3/8}\n"
			"    - {name: d, driver: memif, device: /tmp/s, address: 10.9.0.1/24,\n"
			"       gateway: 10.9.0.300, role: both}\n",
			"gw.yaml:4: dataplane.ports[0].device: '3:0.0' is not a PCI address "
			"(expected "
			"DDDD:BB:DD.F or BB:DD.F");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:4: dataplane.ports[0].address: '10.0.0.1/33' is not "
			"an IPv4 address with prefix length");
		EXPECT_CONTAINS(errbuf, "gw.yaml:5: dataplane.ports[1].device: must not be empty");
		EXPECT_CONTAINS(errbuf, "gw.yaml:6: dataplane.ports[1].gateway: 10.2.0.1 is not on "
					"the port's subnet 10.1.0.0/16");
		EXPECT_CONTAINS(errbuf, "gw.yaml:6: dataplane.ports[1].mtu: 20 is out of range "
					"(expected 68..9216)");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:6: dataplane.ports[1].role: only applies to driver "
			"memif");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:7: dataplane.ports[2].name: 'b' is already the name "
			"of dataplane.ports[1]");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:7: dataplane.ports[2].device: 'thisnameistoolong0' "
			"is not an interface name");
		EXPECT_CONTAINS(errbuf, "gw.yaml:7: dataplane.ports[2].address: '1.2.3/8' is not");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:9: dataplane.ports[3].gateway: '10.9.0.300' is not "
			"an IPv4 address");
		EXPECT_CONTAINS(errbuf, "gw.yaml:9: dataplane.ports[3].role: 'both' is not one of "
					"server, client");
		EXPECT_EQ(n_lines(), 11);
	}

	{ /* listeners: duplicate names and addresses, address not on a port */
		EXPECT_CFG_ERR(DP
			"listeners:\n"
			"  - {name: a, address: 10.99.0.2:7, service: echo}\n"
			"  - {name: a, address: 10.99.0.2:8, service: echo}\n"
			"  - {name: c, address: 10.99.0.2:7, service: echo}\n"
			"  - {name: d, address: 10.98.0.2:7, service: echo}\n"
			"  - {name: \"e f\", address: 10.99.0.2, service: ftp, backlog: 0}\n",
			"gw.yaml:12: listeners[1].name: 'a' is already the name of listeners[0] "
			"(line "
			"11)");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:13: listeners[2].address: 10.99.0.2:7 is already the "
			"address of listeners[0] 'a'");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:14: listeners[3].address: 10.98.0.2:7 is not on the "
			"subnet of any port (ports: wan 10.99.0.0/24)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:15: listeners[4].name: 'e f' is not a plain name");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:15: listeners[4].address: '10.99.0.2' is not an IPv4 "
			"address and port (expected a.b.c.d:port");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:15: listeners[4].service: 'ftp' is not one of echo, "
			"tcp-proxy, tls-echo, tls-proxy");
		EXPECT_CONTAINS(errbuf, "gw.yaml:15: listeners[4].backlog: 0 is out of range "
					"(expected 1..65535)");
		EXPECT_EQ(n_lines(), 7);
	}

	{ /* what each service needs, and what it must not have */
		EXPECT_CFG_ERR(DP
			"listeners:\n"
			"  - {name: a, address: 10.99.0.2:1, service: tls-echo}\n"
			"  - {name: b, address: 10.99.0.2:2, service: tcp-proxy}\n"
			"  - name: c\n"
			"    address: 10.99.0.2:3\n"
			"    service: echo\n"
			"    tls: {client_auth: none}\n"
			"    trust: {mode: ca, certs: [root.pem]}\n"
			"    upstream: {servers: [10.99.0.1:80]}\n"
			"  - name: d\n"
			"    address: 10.99.0.2:4\n"
			"    service: tls-proxy\n"
			"    tls: {identity: [{cert: api.pem, key: \"pkcs11:object=x\"}]}\n"
			"    upstream: {servers: []}\n",
			"gw.yaml:11: listeners[0].tls: service tls-echo needs a tls section");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:12: listeners[1].upstream: service tcp-proxy needs "
			"an upstream section with servers");
		EXPECT_CONTAINS(errbuf, "gw.yaml:16: listeners[2].tls: only applies to services "
					"tls-echo and tls-proxy (this listener is echo)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:17: listeners[2].trust: only applies to services "
					"tls-echo and tls-proxy");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:18: listeners[2].upstream: only applies to services "
			"tcp-proxy and tls-proxy");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:19: listeners[3].trust: client_auth is required (the "
			"default), so the listener needs a trust section");
		EXPECT_CONTAINS(errbuf, "gw.yaml:23: listeners[3].upstream.servers: needs at least "
					"one upstream server");
		EXPECT_EQ(n_lines(), 7);
	}

	{ /* no listeners at all is a valid (if idle) gateway; a directory is no file */
		struct gw_cfg *c = NULL;

		EXPECT_OK(load_text("dataplane:\n"
				    "  workers: [1]\n"
				    "  ports: [{name: a, driver: af_packet, device: eth0, address: "
				    "192.168.1.10/24}]\n"
				    "listeners: []\n",
			&c));
		EXPECT_TRUE(c && c->n_listeners == 0 &&
			    c->dataplane.ports[0].driver == GW_PORT_AF_PACKET);
		gw_cfg_free(c);
		c = NULL;
		EXPECT_ERR(gw_cfg_load(tmpdir, &c, NULL), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), ": not a regular file");
		EXPECT_TRUE(c == NULL);
	}

	{ /* client_auth none needs no trust; upstream server syntax */
		struct gw_cfg *c = NULL;

		EXPECT_OK(
			load_text(DP "listeners:\n"
				     "  - name: plain\n"
				     "    address: 10.99.0.2:443\n"
				     "    service: tls-proxy\n"
				     "    tls:\n"
				     "      identity: [{cert: api.pem, key: \"pkcs11:object=x\"}]\n"
				     "      client_auth: none\n"
				     "    upstream: {servers: [10.99.0.1:80]}\n",
				&c));
		EXPECT_STREQ(errbuf, "");
		EXPECT_TRUE(c && !c->listeners[0].has_trust &&
			    c->listeners[0].tls.client_auth == GW_CLIENT_AUTH_NONE);
		gw_cfg_free(c);
		EXPECT_CFG_ERR(DP "listeners:\n"
				  "  - name: p\n"
				  "    address: 10.99.0.2:80\n"
				  "    service: tcp-proxy\n"
				  "    upstream:\n"
				  "      servers: [10.99.0.1:80, \"10.99.0.1:0\", host:80]\n"
				  "      proxy_protocol: v1\n",
			"gw.yaml:15: listeners[0].upstream.servers[1]: '10.99.0.1:0' is not an "
			"IPv4 "
			"address and port");
		EXPECT_CONTAINS(errbuf, "gw.yaml:15: listeners[0].upstream.servers[2]: 'host:80'");
		EXPECT_CONTAINS(errbuf, "gw.yaml:16: listeners[0].upstream.proxy_protocol: 'v1' is "
					"not one of off, v2");
	}

	{ /* proxy_protocol v2: both proxies send it; echo and tls-echo cannot */
		struct gw_cfg *c = NULL;

		EXPECT_OK(load_text(DP
			"listeners:\n"
			"  - name: p\n"
			"    address: 10.99.0.2:80\n"
			"    service: tcp-proxy\n"
			"    upstream: {servers: [10.99.0.1:80], proxy_protocol: v2}\n",
			&c));
		EXPECT_STREQ(errbuf, "");
		EXPECT_TRUE(c && c->listeners[0].has_upstream &&
			    c->listeners[0].upstream.proxy_protocol == GW_PROXY_V2);
		gw_cfg_free(c);
		EXPECT_CFG_ERR(DP "listeners:\n"
				  "  - name: e\n"
				  "    address: 10.99.0.2:7\n"
				  "    service: echo\n"
				  "    upstream: {proxy_protocol: v2}\n"
				  "  - name: te\n"
				  "    address: 10.99.0.2:8443\n"
				  "    service: tls-echo\n"
				  "    tls:\n"
				  "      identity: [{cert: api.pem, key: \"pkcs11:object=x\"}]\n"
				  "      client_auth: none\n"
				  "    upstream: {proxy_protocol: v2}\n",
			"gw.yaml:14: listeners[0].upstream: only applies to services tcp-proxy and "
			"tls-proxy (this listener is echo)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:21: listeners[1].upstream: only applies to "
					"services tcp-proxy and tls-proxy (this listener is "
					"tls-echo)");
		EXPECT_EQ(n_lines(), 2);
	}

#define TLS_HEAD(svc)                     \
	DP "listeners:\n"                 \
	   "  - name: t\n"                \
	   "    address: 10.99.0.2:443\n" \
	   "    service: " svc "\n"       \
	   "    tls:\n"                   \
	   "      identity: [{cert: api.pem, key: \"pkcs11:token=gw;object=api\"}]\n" /* 15 */

	{ /* trust: pinned without pins, ca without anchors, per-mode keys */
		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "    trust:\n"
						    "      mode: pinned\n",
			"gw.yaml:17: listeners[0].trust.mode: pinned mode needs the pinned "
			"certificates: give trust.certs (PEM files) or trust.pins_sha256");
		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "    trust:\n"
						    "      mode: ca\n"
						    "      pins_sha256: [\"ab\"]\n",
			"gw.yaml:16: listeners[0].trust.certs: ca mode needs at least one anchor");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:18: listeners[0].trust.pins_sha256[0]: 'ab' is not a "
			"SHA-256 fingerprint (expected 64 hex digits");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:18: listeners[0].trust.pins_sha256: only applies to "
			"mode pinned");
		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "    trust:\n"
						    "      mode: pinned\n"
						    "      certs: [api.pem]\n"
						    "      crl: [root.crl]\n"
						    "      max_depth: 40\n",
			"gw.yaml:19: listeners[0].trust.crl: only applies to modes ca and mesh");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:20: listeners[0].trust.max_depth: 40 is out of range "
			"(expected 1..16)");
		/* crl_check: chain | leaf, and only with CRLs */
		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "    trust:\n"
						    "      mode: ca\n"
						    "      certs: [root.pem]\n"
						    "      crl: [root.crl]\n"
						    "      crl_check: all\n",
			"gw.yaml:20: listeners[0].trust.crl_check: ");
		EXPECT_CONTAINS(errbuf, "'all'");
		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "    trust:\n"
						    "      mode: ca\n"
						    "      certs: [root.pem]\n"
						    "      crl_check: leaf\n",
			"gw.yaml:19: listeners[0].trust.crl_check: has no effect without "
			"trust.crl");
		{
			struct gw_cfg *c = NULL;

			EXPECT_OK(load_text(TLS_HEAD("tls-echo") "    trust:\n"
								 "      mode: ca\n"
								 "      certs: [root.pem]\n"
								 "      crl: [root.crl]\n"
								 "      crl_check: leaf\n",
				&c));
			if (c == NULL)
				fprintf(stderr, "%s", errbuf);
			EXPECT_TRUE(c && c->listeners[0].trust.crl_check == GW_CRL_CHECK_LEAF);
			gw_cfg_free(c);
		}
		/* colon-separated pins, as openssl prints them, and duplicates */
		EXPECT_CFG_ERR(
			TLS_HEAD("tls-echo") "    trust:\n"
					     "      mode: pinned\n"
					     "      pins_sha256:\n"
					     "        - "
					     "\"9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:"
					     "A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08\"\n"
					     "        - "
					     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d"
					     "6c15b0f00a08\n",
			"gw.yaml:20: listeners[0].trust.pins_sha256[1]: the same pin as "
			"pins_sha256[0]");
		EXPECT_EQ(n_lines(), 1);
		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "    trust:\n"
						    "      mode: mesh\n",
			"gw.yaml:17: listeners[0].trust.mode: mesh mode needs CA backends");
		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "    trust:\n"
						    "      mode: ca\n"
						    "      certs: [root.pem]\n"
						    "      allow:\n"
						    "        spiffe: [\"spiffe://*/x\", "
						    "\"http://example.org/x\"]\n"
						    "        dns: [\"a b\"]\n"
						    "        cn: [\"\"]\n",
			"gw.yaml:20: listeners[0].trust.allow.spiffe[0]: 'spiffe://*/x' has a "
			"wildcard in the trust domain");
		EXPECT_CONTAINS(errbuf,
			"listeners[0].trust.allow.spiffe[1]: 'http://example.org/x' "
			"is not a SPIFFE ID pattern");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:21: listeners[0].trust.allow.dns[0]: 'a b' is not a "
			"DNS name");
		EXPECT_CONTAINS(errbuf, "gw.yaml:22: listeners[0].trust.allow.cn[0]: must not be "
					"empty");
		/* every wildcard use the matcher cannot honour is refused at load */
		EXPECT_CFG_ERR(
			TLS_HEAD("tls-echo") "    trust:\n"
					     "      mode: ca\n"
					     "      certs: [root.pem]\n"
					     "      allow:\n"
					     "        spiffe:\n"
					     "          - \"spiffe://example.org/ns/prod/**\"\n"
					     "          - \"spiffe://example.org/ns/*/sa/*\"\n"
					     "          - \"spiffe://example.org/ns/a*b\"\n"
					     "          - \"spiffe://example.org/ns/**/x\"\n"
					     "          - \"spiffe://example.org/ns/*x\"\n"
					     "          - \"spiffe://ex*.org/ns\"\n"
					     "          - \"spiffe://example.org/ns//x\"\n"
					     "          - \"spiffe://example.org/ns/***\"\n",
			"gw.yaml:23: listeners[0].trust.allow.spiffe[2]: "
			"'spiffe://example.org/ns/a*b' has '*' inside a path segment");
		EXPECT_CONTAINS(errbuf, "gw.yaml:24: listeners[0].trust.allow.spiffe[3]: "
					"'spiffe://example.org/ns/**/x' has '**' before the last "
					"segment");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:25: listeners[0].trust.allow.spiffe[4]: "
			"'spiffe://example.org/ns/*x' has '*' inside a path segment");
		EXPECT_CONTAINS(errbuf, "gw.yaml:26: listeners[0].trust.allow.spiffe[5]: "
					"'spiffe://ex*.org/ns' has a wildcard in the trust domain");
		EXPECT_CONTAINS(errbuf, "gw.yaml:27: listeners[0].trust.allow.spiffe[6]: "
					"'spiffe://example.org/ns//x' has an empty path segment");
		EXPECT_CONTAINS(errbuf, "gw.yaml:28: listeners[0].trust.allow.spiffe[7]: "
					"'spiffe://example.org/ns/***' has '*' inside a path "
					"segment");
		EXPECT_EQ(n_lines(), 6); /* the first two patterns load */
		/* dns and cn rules no name can match */
		EXPECT_CFG_ERR(
			TLS_HEAD(
				"tls-echo") "    trust:\n"
					    "      mode: ca\n"
					    "      certs: [root.pem]\n"
					    "      allow:\n"
					    "        dns: [\"*.*.example.com\", "
					    "\"*.example.com\"]\n"
					    "        cn: "
					    "[\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
					    "nnnnnnnnnnnnnn\"]\n",
			"gw.yaml:20: listeners[0].trust.allow.dns[0]: '*.*.example.com' is not a "
			"DNS name pattern: '*' only as the whole first label");
		EXPECT_CONTAINS(errbuf, "gw.yaml:21: listeners[0].trust.allow.cn[0]: is over 64 "
					"characters");
		EXPECT_EQ(n_lines(), 2);
	}

	{ /* client_auth none with a pinned/ca trust section: a mistake, said so */
		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "      client_auth: none\n"
						    "    trust: {mode: ca, certs: [root.pem]}\n",
			"gw.yaml:17: listeners[0].trust: client_auth is none, so this trust "
			"section "
			"would never be used");
		EXPECT_EQ(n_lines(), 1);
	}

	{ /* trust files: missing, not PEM, broken PEM, a cert where a CRL belongs */
		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "    trust:\n"
						    "      mode: ca\n"
						    "      certs:\n"
						    "        - nope.pem\n"
						    "        - empty.pem\n"
						    "        - garbage.pem\n"
						    "        - /tmp\n"
						    "      crl: [root.pem]\n",
			"/nope.pem: No such file or directory (expected a PEM certificate file)");
		EXPECT_CONTAINS(
			errbuf, "gw.yaml:19: listeners[0].trust.certs[0]: /tmp/test_config.");
		EXPECT_CONTAINS(errbuf, "gw.yaml:20: listeners[0].trust.certs[1]: ");
		EXPECT_CONTAINS(errbuf,
			"empty.pem: does not parse as PEM certificates (no PEM block "
			"found)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:21: listeners[0].trust.certs[2]: ");
		EXPECT_CONTAINS(errbuf, "garbage.pem: does not parse as PEM certificates (");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:22: listeners[0].trust.certs[3]: /tmp: not a regular "
			"file");
		EXPECT_CONTAINS(errbuf, "gw.yaml:23: listeners[0].trust.crl[0]: ");
		EXPECT_CONTAINS(errbuf, "root.pem: does not parse as PEM CRLs");
		EXPECT_EQ(n_lines(), 5);
	}

	{ /* identity: expired, not yet valid, unparsable, key URIs (never echoing a PIN) */
		EXPECT_CFG_ERR(DP "listeners:\n"
				  "  - name: t\n"
				  "    address: 10.99.0.2:443\n"
				  "    service: tls-echo\n"
				  "    tls:\n"
				  "      min_version: \"1.1\"\n"
				  "      client_auth: sometimes\n"
				  "      ciphersuites: [TLS_AES_128_GCM_SHA256, NOPE_CIPHER]\n"
				  "      identity:\n"
				  "        - {cert: expired.pem, key: \"pkcs11:object=a\"}\n"
				  "        - {cert: future.pem, key: \"/etc/key.pem\"}\n"
				  "        - cert: garbage.pem\n"
				  "          key: \"pkcs11:object=a;pin-value=123456\"\n"
				  "          sni: [\"bad name\"]\n",
			"gw.yaml:15: listeners[0].tls.min_version: '1.1' is not one of 1.2, 1.3");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:16: listeners[0].tls.client_auth: 'sometimes' is not "
			"one of required, optional, none");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:17: listeners[0].tls.ciphersuites[1]: 'NOPE_CIPHER' "
			"is not a cipher suite OpenSSL knows");
		EXPECT_CONTAINS(errbuf, "gw.yaml:19: listeners[0].tls.identity[0].cert: ");
		EXPECT_CONTAINS(errbuf, "expired.pem: the certificate expired on ");
		EXPECT_CONTAINS(errbuf, "gw.yaml:20: listeners[0].tls.identity[1].cert: ");
		EXPECT_CONTAINS(errbuf, "future.pem: the certificate is not valid before ");
		EXPECT_CONTAINS(errbuf, "gw.yaml:20: listeners[0].tls.identity[1].key: expected an "
					"RFC 7512 URI");
		EXPECT_CONTAINS(errbuf, "gw.yaml:21: listeners[0].tls.identity[2].cert: ");
		EXPECT_CONTAINS(errbuf, "garbage.pem: does not parse as PEM certificates");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:22: listeners[0].tls.identity[2].key: must not carry "
			"the PIN");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:23: listeners[0].tls.identity[2].sni[0]: 'bad name' "
			"is not a server name");
		EXPECT_CONTAINS(errbuf, "gw.yaml:11: listeners[0].trust: client_auth is sometimes");
		EXPECT_TRUE(strstr(errbuf, "123456") == NULL);
		EXPECT_TRUE(strstr(gw_err_msg(), "123456") == NULL);
		EXPECT_EQ(n_lines(), 10);
	}

	{ /* hsm: PIN source needed for TLS keys, one of two, files exist */
		const char *nohsm =
			"dataplane:\n"
			"  workers: [1]\n"
			"  ports: [{name: a, driver: tap, device: a, address: 10.99.0.2/24}]\n"
			"listeners:\n"
			"  - name: t\n"
			"    address: 10.99.0.2:443\n"
			"    service: tls-echo\n"
			"    tls:\n"
			"      identity: [{cert: api.pem, key: \"pkcs11:object=api\"}]\n"
			"      client_auth: none\n";
		char y[2048];

		EXPECT_CFG_ERR(nohsm, "gw.yaml:1: hsm: the HSM holds the TLS/CA keys, so it needs "
				      "hsm.pin_file");
		snprintf(y, sizeof(y), "%shsm:\n  pin_file: nope\n  pin_env: \"1X\"\n", nohsm);
		EXPECT_CFG_ERR(y, "gw.yaml:13: hsm.pin_env: give pin_file or pin_env, not both");
		EXPECT_CONTAINS(errbuf, "gw.yaml:12: hsm.pin_file: ");
		EXPECT_CONTAINS(errbuf, "/nope: No such file or directory");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:13: hsm.pin_env: '1X' is not an environment variable "
			"name");
		snprintf(y, sizeof(y), "%shsm:\n  module: /nonexistent/p11.so\n  pin_env: PIN\n",
			nohsm);
		EXPECT_CFG_ERR(y, "gw.yaml:12: hsm.module: PKCS#11 module /nonexistent/p11.so: No "
				  "such file or directory");
		EXPECT_EQ(n_lines(), 1);
	}
	{ /* hsm: the signing threads, their queue and the signature timeout */
		const char *base =
			"dataplane:\n"
			"  workers: [1]\n"
			"  ports: [{name: a, driver: tap, device: a, address: 10.99.0.2/24}]\n"
			"hsm:\n"
			"  pin_env: PIN\n";
		char y[1024];
		struct gw_cfg *c = NULL;

		EXPECT_OK(load_text(base, &c));
		if (c != NULL) {
			EXPECT_EQ(c->hsm.threads, 16);
			EXPECT_EQ(c->hsm.queue, 1024);
			EXPECT_EQ(c->hsm.sign_timeout_ms, 2000);
			EXPECT_EQ(c->hsm.inline_below_us, 0); /* never signs on the worker */
			gw_cfg_free(c);
			c = NULL;
		}
		snprintf(y, sizeof(y),
			"%s  threads: 3\n  queue: 64\n  sign_timeout: 500ms\n  inline_below: "
			"300us\n",
			base);
		EXPECT_OK(load_text(y, &c));
		if (c != NULL) {
			EXPECT_EQ(c->hsm.threads, 3);
			EXPECT_EQ(c->hsm.queue, 64);
			EXPECT_EQ(c->hsm.sign_timeout_ms, 500);
			EXPECT_EQ(c->hsm.inline_below_us, 300);
			gw_cfg_free(c);
			c = NULL;
		}
		snprintf(y, sizeof(y), "%s  inline_below: 2ms\n", base);
		EXPECT_OK(load_text(y, &c));
		if (c != NULL) {
			EXPECT_EQ(c->hsm.inline_below_us, 2000);
			gw_cfg_free(c);
		}
		snprintf(y, sizeof(y),
			"%s  threads: 0\n  queue: 100000\n  sign_timeout: 5ms\n  inline_below: "
			"5us\n",
			base);
		EXPECT_CFG_ERR(y, "gw.yaml:6: hsm.threads: 0 is out of range (expected 1..256");
		EXPECT_CONTAINS(errbuf, "gw.yaml:7: hsm.queue: 100000 is out of range");
		EXPECT_CONTAINS(errbuf, "gw.yaml:8: hsm.sign_timeout: ");
		EXPECT_CONTAINS(errbuf, "gw.yaml:9: hsm.inline_below: '5us' is out of range "
					"(expected 10us..100ms)");
		snprintf(y, sizeof(y), "%s  inline_below: fast\n", base);
		EXPECT_CFG_ERR(y, "gw.yaml:6: hsm.inline_below: 'fast' is not a duration (expected "
				  "a number and one of us, ms, s, e.g. 500us)");
		/* cpus: none given, those no worker runs on (the gateway's start) */
		c = NULL;
		EXPECT_OK(load_text(base, &c));
		if (c != NULL) {
			EXPECT_EQ(c->hsm.n_cpus, 0);
			gw_cfg_free(c);
			c = NULL;
		}
		snprintf(y, sizeof(y), "%s  cpus: [0, 3, 2]\n", base);
		EXPECT_OK(load_text(y, &c));
		if (c != NULL) {
			EXPECT_EQ(c->hsm.n_cpus, 3);
			EXPECT_EQ(c->hsm.cpus[0], 0);
			EXPECT_EQ(c->hsm.cpus[1], 3);
			EXPECT_EQ(c->hsm.cpus[2], 2);
			gw_cfg_free(c);
		}
		snprintf(y, sizeof(y), "%s  cpus: [2, 1024, 2]\n", base);
		EXPECT_CFG_ERR(y, "gw.yaml:6: hsm.cpus[1]: CPU 1024 is out of range (expected "
				  "0..1023)");
		EXPECT_CONTAINS(errbuf, "hsm.cpus[2]: CPU 2 is listed twice (also cpus[0])");
		snprintf(y, sizeof(y), "%s  cpus: 1\n", base);
		EXPECT_CFG_ERR(y, "hsm.cpus");
	}

	{ /* hsm.env: variables for the PKCS#11 module, never the PIN's */
		const char *base =
			"dataplane:\n"
			"  workers: [1]\n"
			"  ports: [{name: a, driver: tap, device: a, address: 10.99.0.2/24}]\n"
			"hsm:\n"
			"  pin_env: MTLSGW_PIN\n";
		char y[1024];
		struct gw_cfg *c = NULL;

		snprintf(y, sizeof(y),
			"%s  env:\n    SOFTHSM2_CONF: /etc/softhsm/softhsm2.conf\n"
			"    _X1: \"\"\n",
			base);
		EXPECT_OK(load_text(y, &c));
		if (c != NULL) {
			EXPECT_EQ(c->hsm.n_env, 2);
			EXPECT_STREQ(c->hsm.env[0].name, "SOFTHSM2_CONF");
			EXPECT_STREQ(c->hsm.env[0].value, "/etc/softhsm/softhsm2.conf");
			EXPECT_STREQ(c->hsm.env[1].name, "_X1");
			EXPECT_STREQ(c->hsm.env[1].value, "");
			gw_cfg_free(c);
			c = NULL;
		}
		EXPECT_OK(load_text(base, &c));
		if (c != NULL) {
			EXPECT_EQ(c->hsm.n_env, 0);
			gw_cfg_free(c);
		}
		snprintf(y, sizeof(y),
			"%s  env:\n    MTLSGW_PIN: \"1234\"\n    lower_case: x\n    1X: y\n"
			"    LIST: [a]\n    LIST: b\n",
			base);
		EXPECT_CFG_ERR(y, "gw.yaml:7: hsm.env.MTLSGW_PIN: MTLSGW_PIN is hsm.pin_env, the "
				  "PIN's variable: a PIN never goes in the config");
		EXPECT_CONTAINS(errbuf, "gw.yaml:8: hsm.env.lower_case: 'lower_case' is not an "
					"environment variable name (expected [A-Z_][A-Z0-9_]*");
		EXPECT_CONTAINS(errbuf, "gw.yaml:9: hsm.env.1X: '1X' is not an environment");
		EXPECT_CONTAINS(errbuf, "gw.yaml:10: hsm.env.LIST: expected a single value, got a "
					"list");
		EXPECT_CONTAINS(errbuf, "gw.yaml:11: hsm.env.LIST: duplicate key (first given on "
					"line 10)");
		EXPECT_TRUE(strstr(errbuf, "1234") == NULL);
		snprintf(y, sizeof(y), "%s  env: [SOFTHSM2_CONF=/x]\n", base);
		EXPECT_CFG_ERR(y, "gw.yaml:6: hsm.env: expected a mapping of variable names to "
				  "values");
	}
	{ /* ports[].peer_address: the kernel side of a tap */
		const char *tail = "listeners:\n"
				   "  - name: e\n"
				   "    address: 10.99.0.2:7\n"
				   "    service: echo\n";
		char y[1024];
		struct gw_cfg *c = NULL;

		snprintf(y, sizeof(y),
			"dataplane:\n  workers: [1]\n"
			"  ports: [{name: a, driver: tap, device: a, address: 10.99.0.2/24, "
			"peer_address: 10.99.0.1/24}]\n%s",
			tail);
		EXPECT_OK(load_text(y, &c));
		if (c != NULL) {
			EXPECT_EQ(c->dataplane.ports[0].peer_ip, htonl(0x0a630001));
			EXPECT_EQ(c->dataplane.ports[0].peer_prefix_len, 24);
			gw_cfg_free(c);
			c = NULL;
		}
		snprintf(y, sizeof(y),
			"dataplane:\n  workers: [1]\n  ports:\n"
			"    - {name: a, driver: af_packet, device: lo, address: 10.99.0.2/24, "
			"peer_address: 10.99.0.1/24}\n"
			"    - {name: b, driver: tap, device: b, address: 10.98.0.2/24, "
			"peer_address: 10.98.0.1}\n"
			"    - {name: c, driver: tap, device: c, address: 10.97.0.2/24, "
			"peer_address: 10.96.0.1/24}\n"
			"    - {name: d, driver: tap, device: d, address: 10.95.0.2/24, "
			"peer_address: 10.95.0.2/24}\n%s",
			tail);
		EXPECT_CFG_ERR(y, "gw.yaml:4: dataplane.ports[0].peer_address: only applies to "
				  "driver tap");
		EXPECT_CONTAINS(errbuf, "gw.yaml:5: dataplane.ports[1].peer_address: '10.98.0.1' "
					"is not an IPv4 address with prefix length");
		EXPECT_CONTAINS(errbuf, "gw.yaml:6: dataplane.ports[2].peer_address: 10.96.0.1 is "
					"not on the port's subnet 10.97.0.0/24");
		EXPECT_CONTAINS(errbuf, "gw.yaml:7: dataplane.ports[3].peer_address: 10.95.0.2 is "
					"the port's own address");
	}
	{                                   /* mtls: backends, enabledBackend, per-type conf */
		EXPECT_CFG_ERR(DP "mtls:\n" /* 10 */
				  "  trust_domain: \"spiffe://Example.org\"\n" /* 11 */
				  "  enabledBackend: ca-9\n"                   /* 12 */
				  "  backends:\n"                              /* 13 */
				  "    - name: ca-1\n"                         /* 14 */
				  "      type: builtin\n"                      /* 15 */
				  "      conf: {key_type: ec-p999, root_validity: 10 years,\n"
				  "             url: \"http://x\"}\n"                /* 17 */
				  "    - name: ca-1\n"                               /* 18 */
				  "      type: provided\n"                           /* 19 */
				  "      conf: {cert: notca.pem, key: \"ca-key\"}\n" /* 20 */
				  "    - name: ca-3\n"                               /* 21 */
				  "      type: cfssl\n"                              /* 22 */
				  "      conf: {url: \"ftp://x\", leaf_validity: 3w}\n"
				  "    - name: ca-4\n" /* 24 */
				  "      type: vault\n"
				  "    - name: ca-5\n" /* 26 */
				  "      type: provided\n",
			"gw.yaml:11: mtls.trust_domain: 'spiffe://Example.org' is not a SPIFFE "
			"trust "
			"domain");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:16: mtls.backends[0].conf.key_type: 'ec-p999' is not "
			"one of ec-p256, ec-p384, rsa-2048, rsa-3072");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:16: mtls.backends[0].conf.root_validity: '10 years' "
			"is not a duration");
		EXPECT_CONTAINS(errbuf, "gw.yaml:17: mtls.backends[0].conf.url: does not apply to "
					"type builtin");
		EXPECT_CONTAINS(errbuf, "gw.yaml:18: mtls.backends[1].name: 'ca-1' is already the "
					"name of mtls.backends[0]");
		EXPECT_CONTAINS(errbuf, "gw.yaml:20: mtls.backends[1].conf.cert: ");
		EXPECT_CONTAINS(errbuf,
			"notca.pem: not a CA certificate (basicConstraints CA:TRUE is "
			"missing)");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:20: mtls.backends[1].conf.key: expected an RFC 7512 "
			"URI");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:23: mtls.backends[2].conf.leaf_validity: '3w' is not "
			"a duration");
		EXPECT_CONTAINS(errbuf,
			"gw.yaml:23: mtls.backends[2].conf.url: 'ftp://x' is not an "
			"http:// or https:// URL");
		EXPECT_CONTAINS(errbuf, "gw.yaml:25: mtls.backends[3].type: 'vault' is not one of "
					"builtin, provided, cfssl");
		EXPECT_CONTAINS(errbuf, "gw.yaml:26: mtls.backends[4].conf: type provided needs "
					"conf.cert");
		EXPECT_CONTAINS(errbuf, "gw.yaml:12: mtls.enabledBackend: 'ca-9' is not one of the "
					"backends (ca-1, ca-1, ca-3, ca-4, ca-5)");
		EXPECT_EQ(n_lines(), 13);

		/* cfssl's TLS CA file: https only, and a readable PEM */
		EXPECT_CFG_ERR(DP "mtls:\n  enabledBackend: c\n  backends: [{name: c, type: cfssl, "
				  "conf: {url: \"http://127.0.0.1:8888\", ca_file: root.pem}}]\n",
			"gw.yaml:12: mtls.backends[0].conf.ca_file: applies to an https:// url "
			"only");
		EXPECT_CFG_ERR(DP "mtls:\n  enabledBackend: c\n  backends: [{name: c, type: cfssl, "
				  "conf: {url: \"https://127.0.0.1:8888\", ca_file: nope.pem}}]\n",
			"mtls.backends[0].conf.ca_file: ");
		{
			struct gw_cfg *c_ = NULL;

			EXPECT_OK(
				load_text(DP "mtls:\n  enabledBackend: c\n  backends: [{name: c, "
					     "type: cfssl, conf: {url: \"https://127.0.0.1:8888\", "
					     "ca_file: root.pem}}]\n",
					&c_));
			EXPECT_TRUE(c_ && c_->mtls.backends[0].ca_file &&
				    strstr(c_->mtls.backends[0].ca_file, "/root.pem"));
			gw_cfg_free(c_);
		}
		/*
		 * backend names of 60..64 bytes once made one HSM label of
		 * ca-<name>-root and ca-<name>-issuer (cut at 64), so the issuer
		 * reused the root's key: refused at load, 50 is the longest
		 */
		for (unsigned n = 50; n <= 64; n++) {
			char name[80], y[1024], want[200];
			struct gw_cfg *c_ = NULL;

			memset(name, 'b', n);
			name[n] = '\0';
			snprintf(y, sizeof(y),
				DP "mtls:\n  enabledBackend: %s\n  backends: [{name: %s, type: "
				   "builtin}]\n",
				name, name);
			if (n == 50) {
				EXPECT_OK(load_text(y, &c_));
				gw_cfg_free(c_);
				continue;
			}
			snprintf(want, sizeof(want),
				n < 64 ? "mtls.backends[0].name: '%s' is %u bytes; a CA backend "
					 "name "
					 "is at most 50"
				       : "mtls.backends[0].name: '%s' is not a plain name",
				name, n);
			EXPECT_CFG_ERR(y, want);
		}
		/* a listener's identity key is gw-id-<name>: 58 bytes at most with mtls */
		for (unsigned n = 58; n <= 59; n++) {
			char name[80], y[2048];
			struct gw_cfg *c_ = NULL;

			memset(name, 'l', n);
			name[n] = '\0';
			snprintf(y, sizeof(y),
				DP
				"mtls:\n  enabledBackend: a\n  backends: [{name: a, type: "
				"builtin}]\n"
				"listeners:\n  - name: %s\n    address: 10.99.0.2:443\n"
				"    service: tls-echo\n    tls:\n      identity: [{cert: api.pem, "
				"key: \"pkcs11:token=gw;object=api\"}]\n"
				"    trust: {mode: mesh}\n",
				name);
			if (n == 58) {
				EXPECT_OK(load_text(y, &c_));
				gw_cfg_free(c_);
			} else {
				EXPECT_CFG_ERR(y,
					"is 59 bytes; with an mtls section a listener name "
					"is at most 58");
			}
		}

		EXPECT_CFG_ERR(DP
			"mtls:\n"
			"  enabled_backend: a\n"
			"  enabledBackend: a\n"
			"  backends: [{name: a, type: builtin, conf: {leaf_validity: 20y}}]\n",
			"gw.yaml:11: mtls.enabled_backend: give enabledBackend or enabled_backend, "
			"not "
			"both");
		EXPECT_CONTAINS(errbuf, "gw.yaml:13: mtls.backends[0].conf.leaf_validity: must be "
					"shorter than root_validity");
		EXPECT_CFG_ERR(DP
			"mtls:\n"
			"  backends: [{name: a, type: cfssl, conf: {url: \"http://h:1\"}}]\n",
			"gw.yaml:10: mtls.enabledBackend: required when backends are configured");
	}

	{ /* every error in a file is reported, not just the first */
		EXPECT_CFG_ERR(
			"dataplane:\n"
			"  workers: [1]\n"
			"  idle: lazy\n"
			"  ports: [{name: a, driver: tapp, device: a, address: 10.99.0.2/24}]\n"
			"listeners:\n"
			"  - {name: a, address: 10.99.0.2:7, service: echoo}\n"
			"  - {name: b, address: 10.1.0.2:7, service: echo}\n"
			"state_dir: \"\"\n",
			"gw.yaml:3: dataplane.idle: 'lazy' is not one of adaptive, poll, "
			"interrupt");
		EXPECT_CONTAINS(errbuf, "gw.yaml:4: dataplane.ports[0].driver: 'tapp'");
		EXPECT_CONTAINS(errbuf, "gw.yaml:6: listeners[0].service: 'echoo'");
		EXPECT_CONTAINS(errbuf, "gw.yaml:7: listeners[1].address: 10.1.0.2:7 is not on the "
					"subnet of any port");
		EXPECT_CONTAINS(errbuf, "gw.yaml:8: state_dir: must not be empty");
		EXPECT_EQ(n_lines(), 5);
		EXPECT_CONTAINS(gw_err_msg(), "gw.yaml:3: dataplane.idle");
		EXPECT_CONTAINS(gw_err_msg(), "(and 4 more)");
	}

	{ /* idle: interrupt (workers wait for RX interrupts) */
		struct gw_cfg *c = NULL;

		EXPECT_OK(load_text(
			"dataplane:\n"
			"  workers: [1]\n"
			"  idle: interrupt\n"
			"  ports: [{name: a, driver: tap, device: a, address: 10.99.0.2/24}]\n"
			"listeners:\n"
			"  - {name: a, address: 10.99.0.2:7, service: echo}\n",
			&c));
		EXPECT_EQ(c ? c->dataplane.idle : GW_IDLE_ADAPTIVE, GW_IDLE_INTERRUPT);
		gw_cfg_free(c);
	}

	{ /* a file full of errors: the first hundred are written, the rest counted */
		static char y[64 * 1024];
		size_t n = (size_t)snprintf(y, sizeof(y), "dataplane:\n");

		for (unsigned i = 0; i < 150; i++)
			n += (size_t)snprintf(y + n, sizeof(y) - n, "  k%u: 1\n", i);
		EXPECT_CFG_ERR(y, "gw.yaml:2: dataplane.k0: unknown key");
		EXPECT_CONTAINS(errbuf, "gw.yaml:101: dataplane.k99: unknown key");
		EXPECT_TRUE(strstr(errbuf, "dataplane.k100:") == NULL);
		EXPECT_CONTAINS(errbuf, "gw.yaml: 52 more errors not shown\n");
		EXPECT_EQ(n_lines(), 101);
		EXPECT_CONTAINS(gw_err_msg(), "(and 151 more)");
	}

	{ /* reload: a bad new file leaves the loaded config whole and usable */
		struct gw_cfg *a = NULL, *b = (struct gw_cfg *)0x1;

		EXPECT_OK(load_text(full_yaml, &a));
		EXPECT_ERR(load_text(DP "listeners:\n  - {name: x, address: 10.99.0.2:1, service: "
					"bogus}\n",
				   &b),
			-GW_E_CONFIG);
		EXPECT_TRUE(b == NULL); /* load_text resets it; the loader never sets it on error */
		EXPECT_CONTAINS(errbuf, "listeners[0].service: 'bogus'");
		if (a) {
			const struct gw_cfg_listener *api = gw_cfg_listener_find(a, "api");

			EXPECT_EQ(a->n_listeners, 4);
			EXPECT_TRUE(api && api->trust.n_crl == 1 && api->upstream.n_servers == 2);
			EXPECT_STREQ(a->mtls.backends[2].url, "http://127.0.0.1:8888");
			EXPECT_STREQ(a->dataplane.ports[1].device, "/run/mtlsgw/memif.sock");
		}
		/* the caller's pointer is untouched on failure */
		b = a;
		EXPECT_ERR(gw_cfg_load_mem("x.yaml", "dataplane: 1\n", 13, &b, NULL), -GW_E_CONFIG);
		EXPECT_TRUE(b == a);
		EXPECT_CONTAINS(gw_err_msg(), "x.yaml:1: dataplane: expected a mapping");
		/* and a good reload after the bad one replaces it */
		EXPECT_OK(load_text(DP "listeners:\n  - {name: x, address: 10.99.0.2:1, service: "
				       "echo}\n",
			&b));
		EXPECT_TRUE(b && b != a && b->n_listeners == 1);
		gw_cfg_free(a);
		gw_cfg_free(b);
	}

	{ /* load_mem: relative paths resolve against the name's directory */
		struct gw_cfg *c = NULL;
		char name[128], y[1024];
		int n;

		snprintf(name, sizeof(name), "%s/inline.yaml", tmpdir);
		n = snprintf(y, sizeof(y), "%s",
			TLS_HEAD("tls-echo") "    trust:\n"
					     "      mode: pinned\n"
					     "      certs: [api.pem]\n");
		EXPECT_OK(gw_cfg_load_mem(name, y, (size_t)n, &c, stderr));
		if (c) {
			char want[160];

			snprintf(want, sizeof(want), "%s/api.pem", tmpdir);
			EXPECT_STREQ(c->listeners[0].trust.certs[0], want);
			EXPECT_STREQ(c->path, name);
		}
		gw_cfg_free(c);
		EXPECT_ERR(gw_cfg_load_mem(NULL, y, 1, &c, NULL), -EINVAL);
	}

	{ /* gw_cfg_check_keys: certificates checked against their keys in a real token */
		char conf[512], path[256], uri[GW_HSM_URI_MAX], y[4096];
		struct gw_hsm_params p = {.token = "cfgtok"};
		struct gw_hsm *h = NULL;
		X509_REQ *req = NULL;
		struct gw_cfg *c = NULL;

		snprintf(path, sizeof(path), "%s/tokens", tmpdir);
		mkdir(path, 0700);
		snprintf(conf, sizeof(conf),
			"directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
			"log.level = ERROR\n",
			tmpdir);
		setenv("SOFTHSM2_CONF", put("softhsm2.conf", conf), 1);
		put("sopin", "5678\n");
		put("badpin", "9999\n");
		snprintf(path, sizeof(path), "%s/pin", tmpdir);
		p.pin_file = path;
		snprintf(conf, sizeof(conf), "%s/sopin", tmpdir);
		EXPECT_OK(gw_hsm_token_init(&p, conf));
		p.token = "cfgtok2"; /* all tokens before the first key load (hsm.h) */
		EXPECT_OK(gw_hsm_token_init(&p, conf));
		p.token = "cfgtok";
		EXPECT_OK(gw_hsm_open(&p, &h));
		if (h) {
			EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "api", uri));
			EXPECT_OK(gw_hsm_csr(h, uri, "/CN=api.example.com", NULL, &req));
		}
		gw_hsm_close(h);
		if (req) { /* the token key's certificate, issued by the test root */
			X509 *x = make_cert(X509_REQ_get0_pubkey(req), ca_key, ca,
				"api.example.com", -1, 30, 0);

			write_cert("hsm_api.pem", x);
			X509_free(x);
			X509_REQ_free(req);
		}
		/* identity[0] matches; identity[1] is a software key's cert; identity[2]
		 * names a key the token does not have; the provided CA's cert is not
		 * its key's either */
		snprintf(y, sizeof(y),
			DP "listeners:\n"                  /* 10 */
			   "  - name: t\n"                 /* 11 */
			   "    address: 10.99.0.2:443\n"  /* 12 */
			   "    service: tls-echo\n"       /* 13 */
			   "    tls:\n"                    /* 14 */
			   "      client_auth: none\n"     /* 15 */
			   "      identity:\n"             /* 16 */
			   "        - cert: hsm_api.pem\n" /* 17 */
			   "          key: \"%s\"\n"       /* 18 */
			   "        - cert: api.pem\n"     /* 19 */
			   "          key: \"%s\"\n"       /* 20 */
			   "        - cert: hsm_api.pem\n" /* 21 */
			   "          key: \"pkcs11:token=cfgtok;object=nope;type=private\"\n"
			   "mtls:\n"                                      /* 23 */
			   "  enabledBackend: p\n"                        /* 24 */
			   "  backends:\n"                                /* 25 */
			   "    - name: p\n"                              /* 26 */
			   "      type: provided\n"                       /* 27 */
			   "      conf: {cert: root.pem, key: \"%s\"}\n", /* 28 */
			uri, uri, uri);
		/* a wrong PIN, on a token this process never logged in to (a PKCS#11
		 * login holds for the whole process, whatever PIN comes later) */
		EXPECT_OK(load_text(
			"dataplane:\n"
			"  workers: [1]\n"
			"  ports: [{name: a, driver: tap, device: a, address: 10.9.0.2/24}]\n"
			"hsm: {pin_file: badpin}\n"
			"listeners:\n"
			"  - name: t\n"
			"    address: 10.9.0.2:443\n"
			"    service: tls-echo\n"
			"    tls:\n"
			"      client_auth: none\n"
			"      identity:\n"
			"        - cert: hsm_api.pem\n"
			"          key: \"pkcs11:token=cfgtok2;object=api\"\n",
			&c));
		if (c) {
			EXPECT_ERR(check_keys(c), -GW_E_HSM_PIN);
			EXPECT_CONTAINS(errbuf,
				"gw.yaml:13: listeners[0].tls.identity[0].key: cannot "
				"open the HSM for this key: ");
			EXPECT_CONTAINS(errbuf, "PIN");
			EXPECT_TRUE(strstr(errbuf, "9999") == NULL);
			EXPECT_EQ(n_lines(), 1);
		}
		gw_cfg_free(c);
		EXPECT_OK(load_text(y, &c));
		if (c) {
			EXPECT_ERR(check_keys(c), -GW_E_CONFIG);
			EXPECT_TRUE(strstr(errbuf, "identity[0]") == NULL);
			EXPECT_CONTAINS(errbuf,
				"gw.yaml:20: listeners[0].tls.identity[1].key: "
				"certificate '/CN=api.example.com' does not match key");
			EXPECT_CONTAINS(errbuf, "api.pem)\n");
			EXPECT_CONTAINS(errbuf, "gw.yaml:22: listeners[0].tls.identity[2].key: ");
			EXPECT_CONTAINS(errbuf,
				"gw.yaml:28: mtls.backends[0].conf.key: certificate "
				"'/CN=test root' does not match key");
			EXPECT_EQ(n_lines(), 3);
			EXPECT_CONTAINS(gw_err_msg(), "(and 2 more)");
		}
		gw_cfg_free(c);
		/* only the matching pair: accepted */
		{
			char *cut = strstr(y, "        - cert: api.pem\n");

			if (cut)
				*cut = '\0';
			EXPECT_OK(load_text(y, &c));
			EXPECT_OK(c ? gw_cfg_check_keys(c, stderr) : -1);
			gw_cfg_free(c);
		}
		gw_hsm_shutdown();
	}

	{ /* dataplane.tls, dataplane.tcp, tls.ticket_lifetime: defaults */
		struct gw_cfg *c = NULL;

		EXPECT_OK(load_text(
			TLS_HEAD("tls-echo") "    trust: {mode: ca, certs: [root.pem]}\n", &c));
		if (c) {
			const struct gw_cfg_dataplane *d = &c->dataplane;

			EXPECT_EQ(d->tls.handshake_timeout_ms, 10000);
			EXPECT_EQ(d->tls.idle_timeout_ms, 300000);
			EXPECT_EQ(d->tls.max_handshakes, 512);
			EXPECT_EQ(d->tcp.time_wait_ms, 2000);
			EXPECT_EQ(d->tcp.handshake_timeout_ms, 10000);
			EXPECT_EQ(d->tcp.idle_timeout_ms, 300000);
			EXPECT_EQ(d->tcp.rto_min_ms, 200);
			EXPECT_EQ(d->tcp.sndbuf, 256 * 1024);
			EXPECT_EQ(d->tcp.rcvbuf, 256 * 1024);
			EXPECT_EQ(d->tcp.max_connections, 16384);
			EXPECT_EQ(c->listeners[0].tls.ticket_lifetime_s, 0);
			EXPECT_TRUE(!c->listeners[0].tls.no_tickets);
		}
		gw_cfg_free(c);
	}

#define KNOBS_DP(tls, tcp)                                       \
	"dataplane:\n"                                           \
	"  workers: [1]\n"                                       \
	"  no_huge: true\n"                                      \
	"  ports:\n"                                             \
	"    - name: wan\n"                                      \
	"      driver: tap\n"                                    \
	"      device: mtlsgw0\n"                                \
	"      address: 10.99.0.2/24\n"                          \
	"  tls:\n" tls "  tcp:\n" tcp "hsm: { pin_file: pin }\n" \
	"listeners:\n"                                           \
	"  - name: t\n"                                          \
	"    address: 10.99.0.2:443\n"                           \
	"    service: tls-echo\n"                                \
	"    trust: {mode: ca, certs: [root.pem]}\n"             \
	"    tls:\n"                                             \
	"      identity: [{cert: api.pem, key: \"pkcs11:token=gw;object=api\"}]\n"

	{ /* dataplane.tls, dataplane.tcp, tls.ticket_lifetime: every key set */
		struct gw_cfg *c = NULL;

		EXPECT_OK(load_text(
			KNOBS_DP("    handshake_timeout: 2500ms\n"
				 "    idle_timeout: 1m\n"
				 "    max_handshakes: 64\n",
				"    time_wait: 500ms\n"
				"    handshake_timeout: 5s\n"
				"    idle_timeout: 2h\n"
				"    rto_min: 1s\n"
				"    sndbuf: 65536\n"
				"    rcvbuf: 131072\n"
				"    max_connections: 100000\n") "      ticket_lifetime: 30m\n",
			&c));
		EXPECT_STREQ(errbuf, "");
		if (c) {
			const struct gw_cfg_dataplane *d = &c->dataplane;

			EXPECT_EQ(d->tls.handshake_timeout_ms, 2500);
			EXPECT_EQ(d->tls.idle_timeout_ms, 60000);
			EXPECT_EQ(d->tls.max_handshakes, 64);
			EXPECT_EQ(d->tcp.time_wait_ms, 500);
			EXPECT_EQ(d->tcp.handshake_timeout_ms, 5000);
			EXPECT_EQ(d->tcp.idle_timeout_ms, 7200000);
			EXPECT_EQ(d->tcp.rto_min_ms, 1000);
			EXPECT_EQ(d->tcp.sndbuf, 65536);
			EXPECT_EQ(d->tcp.rcvbuf, 131072);
			EXPECT_EQ(d->tcp.max_connections, 100000);
			EXPECT_EQ(c->listeners[0].tls.ticket_lifetime_s, 1800);
		}
		gw_cfg_free(c);
		/* the other spellings of ticket_lifetime */
		EXPECT_OK(load_text(KNOBS_DP("    max_handshakes: 1\n",
					    "    rto_min: 1ms\n") "      ticket_lifetime: 3600s\n",
			&c));
		EXPECT_EQ(c ? c->listeners[0].tls.ticket_lifetime_s : 0, 3600);
		gw_cfg_free(c);
		EXPECT_OK(load_text(KNOBS_DP("    idle_timeout: 7d\n",
					    "    sndbuf: 4096\n") "      ticket_lifetime: 1h\n",
			&c));
		EXPECT_EQ(c ? c->listeners[0].tls.ticket_lifetime_s : 0, 3600);
		EXPECT_EQ(c ? c->dataplane.tls.idle_timeout_ms : 0, 7 * 86400000u);
		gw_cfg_free(c);
		/* tls.session_tickets: both values, and a word that is not a bool */
		EXPECT_OK(load_text(KNOBS_DP("    max_handshakes: 8\n",
					    "    rto_min: 1s\n") "      session_tickets: false\n",
			&c));
		EXPECT_TRUE(c && c->listeners[0].tls.no_tickets);
		gw_cfg_free(c);
		EXPECT_OK(load_text(KNOBS_DP("    max_handshakes: 8\n",
					    "    rto_min: 1s\n") "      session_tickets: true\n",
			&c));
		EXPECT_TRUE(c && !c->listeners[0].tls.no_tickets);
		gw_cfg_free(c);
		EXPECT_TRUE(
			load_text(KNOBS_DP("    max_handshakes: 8\n",
					  "    rto_min: 1s\n") "      session_tickets: sometimes\n",
				&c) < 0);
		EXPECT_CONTAINS(errbuf, "gw.yaml:21: listeners[0].tls.session_tickets: expected "
					"true or false, got 'sometimes'");
		gw_cfg_free(c);
	}

	{ /* dataplane.tls, dataplane.tcp, tls.ticket_lifetime: every bad value, with lines */
		EXPECT_CFG_ERR(
			KNOBS_DP("    handshake_timeout: 50ms\n" /* 10 */
				 "    idle_timeout: soon\n"
				 "    max_handshakes: 0\n",
				"    time_wait: 0s\n" /* 14 */
				"    handshake_timeout: 11m\n"
				"    idle_timeout: 8d\n"
				"    rto_min: 61s\n"
				"    sndbuf: 100\n"
				"    rcvbuf: 2147483648\n"
				"    max_connections: 63\n") "      ticket_lifetime: 8d\n", /* 29 */
			"gw.yaml:10: dataplane.tls.handshake_timeout: '50ms' is out of range "
			"(expected 100ms..10m)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:11: dataplane.tls.idle_timeout: 'soon' is not a "
					"duration (expected a number and one of ms, s, m, h, d, "
					"e.g. 10s)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:12: dataplane.tls.max_handshakes: 0 is out of "
					"range (expected 1..16384 handshakes in progress per "
					"worker)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:14: dataplane.tcp.time_wait: '0s' is not a "
					"duration");
		EXPECT_CONTAINS(errbuf, "gw.yaml:15: dataplane.tcp.handshake_timeout: '11m' is out "
					"of range (expected 100ms..10m)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:16: dataplane.tcp.idle_timeout: '8d' is out of "
					"range (expected 1s..7d)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:17: dataplane.tcp.rto_min: '61s' is out of range "
					"(expected 1ms..60s)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:18: dataplane.tcp.sndbuf: 100 is out of range "
					"(expected 4096..1073741824 bytes)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:19: dataplane.tcp.rcvbuf: 2147483648 is out of "
					"range (expected 4096..1073741824 bytes)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:20: dataplane.tcp.max_connections: 63 is out of "
					"range (expected 64..1048576 connections per worker)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:29: listeners[0].tls.ticket_lifetime: '8d' is out "
					"of range (expected 1m..7d)");
		EXPECT_EQ(n_lines(), 11);
		EXPECT_CFG_ERR(
			KNOBS_DP("    max_handshakes: 8\n", "    max_connections: 1048577\n"),
			"gw.yaml:12: dataplane.tcp.max_connections: 1048577 is out of range "
			"(expected 64..1048576 connections per worker)");
		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "      ticket_lifetime: 3600\n"
						    "    trust: {mode: ca, certs: [root.pem]}\n",
			"gw.yaml:16: listeners[0].tls.ticket_lifetime: '3600' is not a duration "
			"(expected a number and one of s, m, h, d, e.g. 1h)");
		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "      ticket_lifetime: 30s\n"
						    "    trust: {mode: ca, certs: [root.pem]}\n",
			"gw.yaml:16: listeners[0].tls.ticket_lifetime: '30s' is out of range");
		/* unknown keys in the new sections stay errors */
		EXPECT_CFG_ERR(KNOBS_DP("    handshake_timeut: 1s\n", "    sndbuff: 4096\n"),
			"gw.yaml:10: dataplane.tls.handshake_timeut: unknown key (expected one of: "
			"handshake_timeout, idle_timeout, max_handshakes)");
		EXPECT_CONTAINS(errbuf, "gw.yaml:12: dataplane.tcp.sndbuff: unknown key (expected "
					"one of: time_wait, handshake_timeout, idle_timeout, "
					"rto_min, sndbuf, rcvbuf, max_connections)");
	}

	{ /* more listeners or upstream servers than the dataplane has room for */
		static char y[16384];
		size_t n = (size_t)snprintf(y, sizeof(y), DP "listeners:\n");

		for (int i = 0; i < 65; i++)
			n += (size_t)snprintf(y + n, sizeof(y) - n,
				"  - { name: e%d, address: \"10.99.0.2:%d\", service: echo }\n", i,
				1000 + i);
		EXPECT_CFG_ERR(y, "gw.yaml:11: listeners: takes at most 64 entries, got 65");
		n = (size_t)snprintf(y, sizeof(y),
			DP "listeners:\n"
			   "  - name: p\n"
			   "    address: 10.99.0.2:80\n"
			   "    service: tcp-proxy\n"
			   "    upstream:\n"
			   "      servers: [");
		for (int i = 0; i < 257; i++)
			n += (size_t)snprintf(
				y + n, sizeof(y) - n, "%s\"10.0.0.1:%d\"", i ? ", " : "", 2000 + i);
		snprintf(y + n, sizeof(y) - n, "]\n");
		EXPECT_CFG_ERR(
			y, "listeners[0].upstream.servers: takes at most 256 entries, got 257");
	}

	{ /* a missing file */
		struct gw_cfg *c = NULL;
		char p[128];

		snprintf(p, sizeof(p), "%s/does-not-exist.yaml", tmpdir);
		EXPECT_ERR(gw_cfg_load(p, &c, NULL), -ENOENT);
		EXPECT_CONTAINS(gw_err_msg(), "does-not-exist.yaml: cannot read the config");
		EXPECT_TRUE(c == NULL);
	}

	{ /* gw_material_read: the bytes, their SHA-256, and each refusal */
		static const uint8_t abc_sha256[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf,
			0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61,
			0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15,
			0xad};
		struct gw_material m = {0};
		const char *abc = put("abc.pem", "abc");
		char p[128];

		EXPECT_OK(gw_material_read(abc, 16, &m));
		EXPECT_EQ(m.len, 3);
		EXPECT_TRUE(m.bytes && memcmp(m.bytes, "abc", 4) == 0); /* NUL-terminated */
		EXPECT_TRUE(memcmp(m.sha256, abc_sha256, 32) == 0);
		EXPECT_STREQ(m.path, abc);
		gw_material_fini(&m);
		EXPECT_TRUE(m.bytes == NULL && m.path == NULL && m.len == 0);
		gw_material_fini(NULL);
		EXPECT_ERR(gw_material_read(abc, 2, &m), -EFBIG);
		EXPECT_CONTAINS(gw_err_msg(), "3 bytes is too large (at most 2)");
		EXPECT_ERR(gw_material_read(put("nothing.pem", ""), 16, &m), -ENODATA);
		EXPECT_ERR(gw_material_read(tmpdir, 16, &m), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), ": not a regular file");
		snprintf(p, sizeof(p), "%s/gone.pem", tmpdir);
		EXPECT_ERR(gw_material_read(p, 16, &m), -ENOENT);
		EXPECT_CONTAINS(gw_err_msg(), "gone.pem: No such file or directory");
		EXPECT_TRUE(m.bytes == NULL && m.path == NULL);
	}

	{ /* a missing or unreadable trust file is one clear error at load */
		char p[128];

		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "    trust: {mode: ca, certs: [gone.pem]}\n",
			"gw.yaml:16: listeners[0].trust.certs[0]: ");
		EXPECT_CONTAINS(errbuf,
			"/gone.pem: No such file or directory (expected a PEM certificate file)");
		EXPECT_EQ(n_lines(), 1);
		/* a FIFO where a CRL belongs: refused at once, the load does not hang on it */
		snprintf(p, sizeof(p), "%s/fifo.crl", tmpdir);
		EXPECT_EQ(mkfifo(p, 0600), 0);
		EXPECT_CFG_ERR(TLS_HEAD("tls-echo") "    trust: {mode: ca, certs: [root.pem], "
						    "crl: [fifo.crl]}\n",
			"fifo.crl: not a regular file (expected a PEM CRL file)");
		EXPECT_EQ(n_lines(), 1);
		unlink(p);
	}

	{ /* trust material is read once: a file changed after the load changes nothing */
		EVP_PKEY *k = ec_key();
		X509 *other = make_cert(k, NULL, NULL, "another root", -1, 365, 1);
		struct gw_cfg *c = NULL, *c2 = NULL;
		struct gw_trust *t1 = NULL, *t2 = NULL, *t3 = NULL;
		unsigned char want[32], file[8192];
		char p[128];
		size_t flen = 0;
		FILE *f;

		write_cert("swap.pem", ca);
		snprintf(p, sizeof(p), "%s/swap.pem", tmpdir);
		if ((f = fopen(p, "rb")) != NULL) {
			flen = fread(file, 1, sizeof(file), f);
			fclose(f);
		}
		EXPECT_TRUE(flen > 0 && flen < sizeof(file));
		EXPECT_OK(load_text(
			TLS_HEAD("tls-echo") "    trust: {mode: ca, certs: [swap.pem]}\n", &c));
		if (c) {
			const struct gw_cfg_trust *tr = &c->listeners[0].trust;
			const struct gw_material *m = &tr->certs_m[0];

			/* the bytes are the file's and the SHA-256 is of those bytes */
			EXPECT_STREQ(m->path, tr->certs[0]);
			EXPECT_EQ(m->len, flen);
			EXPECT_TRUE(m->bytes && memcmp(m->bytes, file, flen) == 0);
			EXPECT_TRUE(SHA256(file, flen, want) != NULL);
			EXPECT_TRUE(memcmp(m->sha256, want, 32) == 0);
			/* the identity's bytes are kept too */
			EXPECT_TRUE(c->listeners[0].tls.identities[0].cert_m.len > 0);
			EXPECT_OK(gw_trust_create(tr, "t", &t1));
			/* another root in the file now, then no file at all: same trust */
			write_cert("swap.pem", other);
			EXPECT_OK(gw_trust_create(tr, "t", &t2));
			unlink(p);
			EXPECT_OK(gw_trust_create(tr, "t", &t3));
			if (t1 && t2 && t3) {
				EXPECT_TRUE(
					memcmp(gw_trust_fingerprint(t1), gw_trust_fingerprint(t2),
						GW_TRUST_FP_LEN) == 0);
				EXPECT_TRUE(
					memcmp(gw_trust_fingerprint(t1), gw_trust_fingerprint(t3),
						GW_TRUST_FP_LEN) == 0);
			}
			gw_trust_destroy(t2);
			gw_trust_destroy(t3);
			t2 = t3 = NULL;
			/* a reload is a new load: it reads the new file, a new fingerprint */
			write_cert("swap.pem", other);
			EXPECT_OK(load_text(
				TLS_HEAD("tls-echo") "    trust: {mode: ca, certs: [swap.pem]}\n",
				&c2));
			if (c2) {
				EXPECT_TRUE(memcmp(c2->listeners[0].trust.certs_m[0].sha256,
						    m->sha256, 32) != 0);
				EXPECT_OK(gw_trust_create(&c2->listeners[0].trust, "t", &t2));
			}
			if (t1 && t2)
				EXPECT_TRUE(
					memcmp(gw_trust_fingerprint(t1), gw_trust_fingerprint(t2),
						GW_TRUST_FP_LEN) != 0);
		}
		gw_trust_destroy(t1);
		gw_trust_destroy(t2);
		gw_cfg_free(c);
		gw_cfg_free(c2);
		X509_free(other);
		EVP_PKEY_free(k);
	}

	/* ---- cluster: DP is lines 1..9, the section starts on line 10 ---- */

	{ /* every cluster key; relative files resolve against the config's dir */
		struct gw_cfg *c = NULL;
		char want[256];

		EXPECT_OK(load_text(DP
			"cluster:\n"
			"  name: edge-1\n"
			"  node: gw-a\n"
			"  etcd:\n"
			"    endpoints: [https://10.0.0.5:2379, "
			"\"https://[fd00::6]:2379\", https://etcd-3.example:2379/]\n"
			"    ca: root.pem\n"
			"    cert: api.pem\n"
			"    key: \"pkcs11:token=gw;object=etcd;type=private\"\n"
			"    timeout: 500ms\n"
			"  ticket_key: \"pkcs11:token=gw;object=fleet-wrap;type=secret-key\"\n"
			"  lease_ttl: 30s\n",
			&c));
		if (c) {
			const struct gw_cfg_cluster *k = &c->cluster;

			EXPECT_TRUE(c->has_cluster);
			EXPECT_STREQ(k->name, "edge-1");
			EXPECT_STREQ(k->node, "gw-a");
			EXPECT_EQ(k->n_endpoints, 3);
			EXPECT_STREQ(k->endpoints[0], "https://10.0.0.5:2379");
			EXPECT_STREQ(k->endpoints[1], "https://[fd00::6]:2379");
			EXPECT_STREQ(k->endpoints[2], "https://etcd-3.example:2379/");
			snprintf(want, sizeof(want), "%s/root.pem", tmpdir);
			EXPECT_STREQ(k->etcd_ca, want);
			snprintf(want, sizeof(want), "%s/api.pem", tmpdir);
			EXPECT_STREQ(k->etcd_cert, want);
			EXPECT_STREQ(k->etcd_key, "pkcs11:token=gw;object=etcd;type=private");
			EXPECT_EQ(k->timeout_ms, 500);
			EXPECT_STREQ(
				k->ticket_key, "pkcs11:token=gw;object=fleet-wrap;type=secret-key");
			EXPECT_EQ(k->lease_ttl_s, 30);
			EXPECT_EQ(c->n_warnings, 0);
		}
		gw_cfg_free(c);
	}

	{ /* defaults: node is the host name, 2 s requests, 10 s lease; a PEM key file */
		struct gw_cfg *c = NULL;
		char host[256] = "", want[256];

		put("etcd.key", "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n");
		EXPECT_OK(gethostname(host, sizeof(host)));
		EXPECT_OK(load_text(DP "cluster:\n"
				       "  name: edge-1\n"
				       "  etcd:\n"
				       "    endpoints: [https://10.0.0.5:2379]\n"
				       "  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n",
			&c));
		if (c) {
			EXPECT_STREQ(c->cluster.node, host);
			EXPECT_EQ(c->cluster.n_endpoints, 1);
			EXPECT_TRUE(c->cluster.etcd_ca == NULL && c->cluster.etcd_cert == NULL &&
				    c->cluster.etcd_key == NULL);
			EXPECT_EQ(c->cluster.timeout_ms, 2000);
			EXPECT_EQ(c->cluster.lease_ttl_s, 10);
		}
		gw_cfg_free(c);
		c = NULL;
		EXPECT_OK(load_text(DP "cluster:\n"
				       "  name: edge-1\n"
				       "  etcd:\n"
				       "    endpoints: [https://10.0.0.5:2379]\n"
				       "    cert: api.pem\n"
				       "    key: etcd.key\n"
				       "  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n",
			&c));
		snprintf(want, sizeof(want), "%s/etcd.key", tmpdir);
		if (c)
			EXPECT_STREQ(c->cluster.etcd_key, want);
		gw_cfg_free(c);
		c = NULL;
		/* no cluster section: nothing set, nothing to free */
		EXPECT_OK(load_text(DP, &c));
		if (c)
			EXPECT_TRUE(
				!c->has_cluster && c->cluster.name == NULL && c->n_warnings == 0);
		gw_cfg_free(c);
	}

	{ /* plain http loads with a warning per endpoint; https-only keys are said unused */
		struct gw_cfg *c = NULL;

		EXPECT_OK(load_text(DP
			"cluster:\n"
			"  name: edge-1\n"
			"  etcd:\n"
			"    endpoints: [http://127.0.0.1:2379, http://127.0.0.1:2380]\n"
			"    ca: root.pem\n"
			"    cert: api.pem\n"
			"    key: \"pkcs11:token=gw;object=etcd\"\n"
			"  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n",
			&c));
		EXPECT_EQ(errbuf[0], '\0'); /* warnings are not errors */
		if (c) {
			EXPECT_EQ(c->n_warnings, 4);
			if (c->n_warnings == 4) {
				EXPECT_CONTAINS(c->warnings[0],
					"gw.yaml:13: cluster.etcd.endpoints[0]: "
					"'http://127.0.0.1:2379' is plain http");
				EXPECT_CONTAINS(c->warnings[1], "cluster.etcd.endpoints[1]: ");
				EXPECT_CONTAINS(c->warnings[2],
					"gw.yaml:14: cluster.etcd.ca: unused: every endpoint is "
					"http://");
				EXPECT_CONTAINS(c->warnings[3], "gw.yaml:15: cluster.etcd.cert: "
								"unused, and etcd.key with it");
			}
		}
		gw_cfg_free(c);
		c = NULL;
		/* one https endpoint: the CA and certificate are used, only http is said */
		EXPECT_OK(load_text(DP
			"cluster:\n"
			"  name: edge-1\n"
			"  etcd:\n"
			"    endpoints: [http://127.0.0.1:2379, https://127.0.0.1:2380]\n"
			"    ca: root.pem\n"
			"  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n",
			&c));
		if (c) {
			EXPECT_EQ(c->n_warnings, 1);
			if (c->n_warnings == 1)
				EXPECT_CONTAINS(c->warnings[0], "cluster.etcd.endpoints[0]");
		}
		gw_cfg_free(c);
	}

	{ /* the client key goes with the certificate, both ways */
		EXPECT_CFG_ERR(DP "cluster:\n"
				  "  name: edge-1\n"
				  "  etcd:\n"
				  "    endpoints: [https://10.0.0.5:2379]\n"
				  "    key: \"pkcs11:token=gw;object=etcd\"\n"
				  "  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n",
			"gw.yaml:14: cluster.etcd.key: applies only with etcd.cert (the client "
			"certificate this key belongs to)\n");
		EXPECT_EQ(n_lines(), 1);
		EXPECT_CFG_ERR(DP "cluster:\n"
				  "  name: edge-1\n"
				  "  etcd:\n"
				  "    endpoints: [https://10.0.0.5:2379]\n"
				  "    cert: api.pem\n"
				  "  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n",
			"gw.yaml:14: cluster.etcd.cert: needs etcd.key (the certificate's private "
			"key: a PEM file or a pkcs11: URI)\n");
		EXPECT_EQ(n_lines(), 1);
	}

	{ /* names: the plain charset, 1..63 */
		EXPECT_CFG_ERR(DP "cluster:\n"
				  "  name: edge 1\n"
				  "  node: gw/a\n"
				  "  etcd: {endpoints: [https://10.0.0.5:2379]}\n"
				  "  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n",
			"gw.yaml:11: cluster.name: 'edge 1' is not a plain name (expected 1..63 of "
			"[A-Za-z0-9._-])\n");
		EXPECT_CONTAINS(errbuf, "gw.yaml:12: cluster.node: 'gw/a' is not a plain name");
		EXPECT_EQ(n_lines(), 2);
		EXPECT_CFG_ERR(DP
			"cluster:\n"
			"  name: "
			"a123456789012345678901234567890123456789012345678901234567890123\n"
			"  etcd: {endpoints: [https://10.0.0.5:2379]}\n"
			"  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n",
			"gw.yaml:11: cluster.name: 'a1234");
	}

	{ /* at most 16 endpoints, at least one */
		char yaml[2048];
		size_t n = (size_t)snprintf(yaml, sizeof(yaml),
			DP "cluster:\n  name: edge-1\n  ticket_key: \"pkcs11:token=gw;object=w\"\n"
			   "  etcd:\n    endpoints:\n");

		for (int i = 0; i < 17; i++)
			n += (size_t)snprintf(yaml + n, sizeof(yaml) - n,
				"      - https://10.0.0.%d:2379\n", i + 1);
		EXPECT_CFG_ERR(yaml,
			"gw.yaml:15: cluster.etcd.endpoints: takes at most 16 entries, got 17\n");
		EXPECT_CFG_ERR(DP "cluster:\n"
				  "  name: edge-1\n"
				  "  etcd: {endpoints: []}\n"
				  "  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n",
			"gw.yaml:12: cluster.etcd.endpoints: needs at least one etcd endpoint");
	}

	{ /* each bad value names its field; all of them in one run */
		EXPECT_CFG_ERR(DP "cluster:\n"
				  "  name: edge-1\n"
				  "  etcd:\n"
				  "    endpoints:\n"
				  "      - ftp://10.0.0.5:2379\n"
				  "      - https://10.0.0.5\n"
				  "      - https://10.0.0.5:2379/v3\n"
				  "      - https://10.0.0.5:99999\n"
				  "      - https://user@10.0.0.5:2379\n"
				  "      - https://10.0.0.7:2379\n"
				  "      - https://10.0.0.7:2379\n"
				  "    ca: nothere.pem\n"
				  "    cert: garbage.pem\n"
				  "    key: nokey.pem\n"
				  "    timeout: 50ms\n"
				  "  ticket_key: \"pkcs11:token=gw;object=w;type=private\"\n"
				  "  lease_ttl: 301s\n",
			"gw.yaml:14: cluster.etcd.endpoints[0]: 'ftp://10.0.0.5:2379' is not an "
			"etcd endpoint (expected http:// or https:// and host:port, e.g. "
			"https://10.0.0.5:2379)\n");
		EXPECT_CONTAINS(errbuf, "gw.yaml:15: cluster.etcd.endpoints[1]: 'https://10.0.0.5' "
					"is not an etcd endpoint");
		EXPECT_CONTAINS(errbuf, "gw.yaml:16: cluster.etcd.endpoints[2]: ");
		EXPECT_CONTAINS(errbuf, "gw.yaml:17: cluster.etcd.endpoints[3]: ");
		EXPECT_CONTAINS(errbuf, "gw.yaml:18: cluster.etcd.endpoints[4]: ");
		EXPECT_CONTAINS(errbuf, "gw.yaml:20: cluster.etcd.endpoints[6]: "
					"'https://10.0.0.7:2379' is already endpoints[5]\n");
		EXPECT_CONTAINS(errbuf, "gw.yaml:21: cluster.etcd.ca: ");
		EXPECT_CONTAINS(errbuf, "nothere.pem");
		EXPECT_CONTAINS(errbuf, "gw.yaml:22: cluster.etcd.cert: ");
		EXPECT_CONTAINS(errbuf, "garbage.pem: does not parse as PEM certificates");
		EXPECT_CONTAINS(errbuf, "gw.yaml:23: cluster.etcd.key: ");
		EXPECT_CONTAINS(errbuf, "nokey.pem: No such file or directory (expected a PEM "
					"private key file or a pkcs11: URI)\n");
		EXPECT_CONTAINS(errbuf, "gw.yaml:24: cluster.etcd.timeout: '50ms' is out of range "
					"(expected 100ms..60s)\n");
		EXPECT_CONTAINS(errbuf, "gw.yaml:25: cluster.ticket_key: 'type=private' is not an "
					"AES secret key");
		EXPECT_CONTAINS(errbuf, "gw.yaml:26: cluster.lease_ttl: '301s' is out of range "
					"(expected 2s..5m)\n");
		EXPECT_EQ(n_lines(), 12);

		EXPECT_CFG_ERR(DP "cluster:\n"
				  "  name: edge-1\n"
				  "  etcd:\n"
				  "    endpoints: [https://10.0.0.5:2379]\n"
				  "    cert: api.pem\n"
				  "    key: \"pkcs11:token=gw;object=etcd;pin-value=1234\"\n"
				  "    timeout: soon\n"
				  "  ticket_key: fleet-wrap\n"
				  "  lease_ttl: 1s\n",
			"gw.yaml:15: cluster.etcd.key: must not carry the PIN");
		EXPECT_TRUE(strstr(errbuf, "1234") == NULL);
		EXPECT_CONTAINS(errbuf, "gw.yaml:16: cluster.etcd.timeout: 'soon' is not a "
					"duration");
		EXPECT_CONTAINS(errbuf, "gw.yaml:17: cluster.ticket_key: expected an RFC 7512 URI");
		EXPECT_CONTAINS(errbuf, "gw.yaml:18: cluster.lease_ttl: '1s' is out of range");
		EXPECT_EQ(n_lines(), 4);

		/* a request may not outwait the lease */
		EXPECT_CFG_ERR(DP "cluster:\n"
				  "  name: edge-1\n"
				  "  etcd: {endpoints: [https://10.0.0.5:2379], timeout: 5s}\n"
				  "  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n"
				  "  lease_ttl: 5s\n",
			"gw.yaml:12: cluster.etcd.timeout: 5000 ms is not shorter than "
			"cluster.lease_ttl (5 s)");
		EXPECT_CFG_ERR(DP "cluster:\n"
				  "  etcd: {endpoints: [https://10.0.0.5:2379], tls: on}\n",
			"gw.yaml:11: cluster.etcd.tls: unknown key (expected one of: endpoints, "
			"ca, "
			"cert, key, timeout)\n");
		EXPECT_CONTAINS(errbuf, "gw.yaml:11: cluster.name: required key is missing\n");
		EXPECT_CONTAINS(
			errbuf, "gw.yaml:11: cluster.ticket_key: required key is missing\n");
		EXPECT_CFG_ERR(DP "cluster:\n"
				  "  name: edge-1\n"
				  "  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n",
			"gw.yaml:11: cluster.etcd: required key is missing\n");
	}

	{ /* the wrapping key is in the HSM: a cluster needs its PIN */
		EXPECT_CFG_ERR("dataplane:\n"
			       "  workers: [1]\n"
			       "  no_huge: true\n"
			       "  ports: [{name: wan, driver: tap, device: mtlsgw0, address: "
			       "10.99.0.2/24}]\n"
			       "cluster:\n"
			       "  name: edge-1\n"
			       "  etcd: {endpoints: [https://10.0.0.5:2379]}\n"
			       "  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n",
			"gw.yaml:1: hsm: the HSM holds the TLS/CA keys");
	}

	X509_free(ca);
	EVP_PKEY_free(ca_key);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	GW_TEST_END();
}
