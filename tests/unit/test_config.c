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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "gw_test.h"

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
	return p;
}

/* Load a YAML text; errors land in errbuf. */
static int
load_text(const char *yaml, struct gw_cfg **out)
{
	FILE *errs = fmemopen(errbuf, sizeof(errbuf), "w");
	const char *path = put("gw.yaml", yaml);
	int rc;

	memset(errbuf, 0, sizeof(errbuf));
	*out = NULL;
	rc = gw_cfg_load(path, out, errs);
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

static void
make_pki(void)
{
	EVP_PKEY *ca_key = ec_key(), *leaf_key = ec_key(), *k2 = ec_key();
	X509 *ca = make_cert(ca_key, NULL, NULL, "test root", -1, 3650, 1);
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
	X509_free(ca);
	X509_free(leaf);
	X509_free(old);
	X509_free(future);
	X509_free(notca);
	EVP_PKEY_free(ca_key);
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
	"admin:\n"
	"  socket: /run/mtlsgw/admin.sock\n"
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
	make_pki();

	{ /* the committed minimal fixture: dataplane + one echo listener, defaults */
		char p[512];
		struct gw_cfg *c = NULL;
		const char *src = getenv("GW_SRC") ? getenv("GW_SRC") : "../..";

		snprintf(p, sizeof(p), "%s/tests/fixtures/config/echo.yaml", src);
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
			EXPECT_TRUE(!c->has_mtls);
			EXPECT_STREQ(c->path, p);
			EXPECT_TRUE(gw_cfg_listener_find(c, "echo") == &c->listeners[0]);
			EXPECT_TRUE(gw_cfg_listener_find(c, "nope") == NULL);
		}
		gw_cfg_free(c);
	}

	{ /* committed fixtures with shape errors: all reported, with lines */
		char p[512];
		struct gw_cfg *c = NULL;
		const char *src = getenv("GW_SRC") ? getenv("GW_SRC") : "../..";
		FILE *errs = fmemopen(errbuf, sizeof(errbuf), "w");

		memset(errbuf, 0, sizeof(errbuf));
		snprintf(p, sizeof(p), "%s/tests/fixtures/config/bad_shape.yaml", src);
		EXPECT_ERR(gw_cfg_load(p, &c, errs), -GW_E_CONFIG);
		fclose(errs);
		EXPECT_TRUE(c == NULL);
		EXPECT_CONTAINS(errbuf, "bad_shape.yaml:3: dataplane.workers[1]: expected a whole "
					"number >= 0, got 'x'");
		EXPECT_CONTAINS(errbuf, "bad_shape.yaml:4: dataplane.no_huge: expected true or "
					"false, got 'maybe'");
		EXPECT_CONTAINS(errbuf, "bad_shape.yaml:9: dataplane.ports[0].adress: unknown key "
					"(expected one of: name, driver, device, address, gateway, "
					"mtu, role)");
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
		char p[512];
		struct gw_cfg *c = NULL;
		const char *src = getenv("GW_SRC") ? getenv("GW_SRC") : "../..";
		FILE *errs = fmemopen(errbuf, sizeof(errbuf), "w");

		memset(errbuf, 0, sizeof(errbuf));
		snprintf(p, sizeof(p), "%s/tests/fixtures/config/bad_values.yaml", src);
		EXPECT_ERR(gw_cfg_load(p, &c, errs), -GW_E_CONFIG);
		fclose(errs);
		EXPECT_TRUE(c == NULL);
		EXPECT_CONTAINS(errbuf, ":3: dataplane.workers[1]: lcore 1 is listed twice");
		EXPECT_CONTAINS(errbuf, ":4: dataplane.idle: 'lazy' is not one of adaptive, poll");
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

	{ /* a missing file */
		struct gw_cfg *c = NULL;
		char p[128];

		snprintf(p, sizeof(p), "%s/does-not-exist.yaml", tmpdir);
		EXPECT_ERR(gw_cfg_load(p, &c, NULL), -ENOENT);
		EXPECT_CONTAINS(gw_err_msg(), "does-not-exist.yaml: cannot read the config");
		EXPECT_TRUE(c == NULL);
	}

	GW_TEST_END();
}
