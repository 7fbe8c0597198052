/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_ca.c - the CA backends and the rotation validators on a real SoftHSM2
 * token, a real SQLite state store and a real `cfssl serve` on loopback
 * (Debian golang-cfssl). Chains are checked with `openssl verify`, the
 * independent implementation, not with our own code. Crash consistency: a
 * forked child runs a step with GW_STATE_CRASH_AT set and dies just before
 * its COMMIT; the parent then starts again from the store.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "ca_internal.h"
#include "gw_softhsm.h"
#include "gw_test.h"
#include "rotation.h"
#include "state.h"

static struct gw_softhsm tok;
static unsigned state_seq;

static void
sh(const char *cmd)
{
	if (system(cmd) != 0) {
		fprintf(stderr, "command failed: %s\n", cmd);
		exit(2);
	}
}

static void
setup(void)
{
	if (gw_softhsm_setup(&tok, "gwca") < 0)
		exit(2);
	if (gw_hsm_token_init(
		    &(struct gw_hsm_params){.token = "gw", .pin_file = tok.pin}, tok.so_pin) != 0) {
		fprintf(stderr, "token: %s\n", gw_err_msg());
		exit(2);
	}
}

/* A fresh state dir path into out[128]. */
static void
fresh_state(char *out)
{
	snprintf(out, 128, "%s/state%u", tok.dir, ++state_seq);
}

/* The CA's parameters: the test token, state in s. */
#define P(s) (&(struct gw_ca_params){.hsm = {.token = "gw", .pin_file = tok.pin}, .state_dir = (s)})

static struct gw_cfg_ca_backend
builtin(const char *name)
{
	return (struct gw_cfg_ca_backend){.name = (char *)name,
		.type = GW_CA_BUILTIN,
		.root_validity_s = 10ull * 365 * 86400,
		.leaf_validity_s = 72 * 3600};
}

static void
pem_out(const char *path, X509 *x, STACK_OF(X509) * more)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		exit(2);
	if (x)
		PEM_write_X509(f, x);
	for (int i = 0; more && i < sk_X509_num(more); i++)
		PEM_write_X509(f, sk_X509_value(more, i));
	fclose(f);
}

/* `openssl verify` of leaf (+ untrusted chain) against anchor alone: 0 = verified. */
static int
ossl_verify(X509 *anchor, X509 *leaf, STACK_OF(X509) * chain)
{
	char a[200], l[200], c[200], cmd[900];

	snprintf(a, sizeof(a), "%s/v-anchor.pem", tok.dir);
	snprintf(l, sizeof(l), "%s/v-leaf.pem", tok.dir);
	snprintf(c, sizeof(c), "%s/v-chain.pem", tok.dir);
	pem_out(a, anchor, NULL);
	pem_out(l, leaf, NULL);
	pem_out(c, NULL, chain);
	snprintf(cmd, sizeof(cmd),
		"openssl verify -x509_strict -purpose sslclient -CAfile %s %s %s %s", a,
		chain && sk_X509_num(chain) ? "-untrusted" : "",
		chain && sk_X509_num(chain) ? c : "", l);
	return system(cmd);
}

/* A CSR from a software key (a client enrolling). */
static X509_REQ *
client_csr(const char *cn)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *r = X509_REQ_new();

	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_UTF8,
		(const unsigned char *)cn, -1, -1, 0);
	X509_REQ_set_pubkey(r, k);
	X509_REQ_sign(r, k, EVP_sha256());
	EVP_PKEY_free(k);
	return r;
}

static bool
has_uri(X509 *x, const char *id)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool ok = false;

	for (int i = 0; g && i < sk_GENERAL_NAME_num(g); i++) {
		GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);

		ok = ok || (n->type == GEN_URI && strcmp((const char *)ASN1_STRING_get0_data(
								 n->d.uniformResourceIdentifier),
							  id) == 0);
	}
	GENERAL_NAMES_free(g);
	return ok;
}

static bool
same_cert(X509 *a, X509 *b)
{
	return a && b && X509_cmp(a, b) == 0;
}

/* ---- cfssl serve on loopback ----------------------------------------------- */

static pid_t cfssl_pid;
static unsigned short cfssl_port;
static bool cfssl_tls;                      /* serve https with tls-srv.pem */
static const char *cfssl_root = "cfssl-ca"; /* <dir>/<root>.pem/.key sign */

static void
cfssl_stop(void)
{
	if (cfssl_pid > 0) {
		kill(cfssl_pid, SIGTERM);
		waitpid(cfssl_pid, NULL, 0);
		cfssl_pid = 0;
	}
}

/* Start cfssl serve with the PKI made by cfssl_pki(); wait until it listens. */
static void
cfssl_start(void)
{
	char a[64], p[16], ca[200], key[200], cfg[200], log[200];
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	if (!cfssl_port)
		cfssl_port = gw_test_free_port();
	snprintf(a, sizeof(a), "127.0.0.1");
	snprintf(p, sizeof(p), "%u", cfssl_port);
	char tc[200], tk[200];

	snprintf(ca, sizeof(ca), "%s/%s.pem", tok.dir, cfssl_root);
	snprintf(key, sizeof(key), "%s/%s.key", tok.dir, cfssl_root);
	snprintf(tc, sizeof(tc), "%s/tls-srv.pem", tok.dir);
	snprintf(tk, sizeof(tk), "%s/tls-srv.key", tok.dir);
	snprintf(cfg, sizeof(cfg), "%s/cfssl.json", tok.dir);
	snprintf(log, sizeof(log), "%s/cfssl.log", tok.dir);
	cfssl_pid = fork();
	if (cfssl_pid == 0) {
		freopen(log, "a", stdout);
		freopen(log, "a", stderr);
		if (cfssl_tls)
			execlp("cfssl", "cfssl", "serve", "-address", a, "-port", p, "-ca", ca,
				"-ca-key", key, "-config", cfg, "-tls-cert", tc, "-tls-key", tk,
				(char *)NULL);
		else
			execlp("cfssl", "cfssl", "serve", "-address", a, "-port", p, "-ca", ca,
				"-ca-key", key, "-config", cfg, (char *)NULL);
		_exit(127);
	}
	sa.sin_port = htons(cfssl_port);
	/* readiness, not timing: poll until it accepts (or give up after 30 s) */
	for (int i = 0; i < 300; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int ok = connect(fd, (void *)&sa, sizeof(sa)) == 0;

		close(fd);
		if (ok)
			return;
		usleep(100000);
	}
	fprintf(stderr, "cfssl serve did not start (see %s)\n", log);
	exit(2);
}

/* tests/lib/cfssl_fake.py on port: a cfssl that signs what its profile says. */
static pid_t
fake_start(unsigned short port)
{
	const char *src = getenv("GW_SRC");
	char script[300], p[16], log[200];
	struct sockaddr_in sa = {.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		.sin_port = htons(port)};
	pid_t pid;

	snprintf(script, sizeof(script), "%s/tests/lib/cfssl_fake.py", src ? src : "..");
	snprintf(p, sizeof(p), "%u", port);
	snprintf(log, sizeof(log), "%s/fake.log", tok.dir);
	pid = fork();
	if (pid == 0) {
		freopen(log, "a", stdout);
		freopen(log, "a", stderr);
		execlp("python3", "python3", script, p, tok.dir, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int ok = connect(fd, (void *)&sa, sizeof(sa)) == 0;

		close(fd);
		if (ok)
			return pid;
		usleep(100000);
	}
	fprintf(stderr, "cfssl_fake.py did not start (see %s)\n", log);
	exit(2);
}

static void
cfssl_pki(void)
{
	static const char cfssl_json[] =
		"{\"signing\":{\"default\":{\"expiry\":\"72h\",\"usages\":[\"digital signature\","
		"\"server auth\",\"client auth\"]},\"profiles\":{"
		"\"issuer\":{\"expiry\":\"720h\",\"usages\":[\"cert sign\",\"crl sign\"],"
		"\"ca_constraint\":{\"is_ca\":true,\"max_path_len\":0,\"max_path_len_zero\":true}},"
		"\"leaf\":{\"expiry\":\"72h\",\"usages\":[\"digital signature\",\"server auth\","
		"\"client auth\"]}}}}";
	char cmd[2400];

	snprintf(cmd, sizeof(cmd),
		"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		"-keyout %1$s/cfssl-ca.key -out %1$s/cfssl-ca.pem -subj '/CN=cfssl test root' "
		"-days 30 -addext basicConstraints=critical,CA:TRUE "
		"-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null",
		tok.dir);
	sh(cmd);
	/* a second signing root (a swapped server), and TLS: a CA, a server cert for
	 * 127.0.0.1 under it, and an unrelated CA (the wrong ca_file) */
	snprintf(cmd, sizeof(cmd),
		"cd %1$s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		"-keyout cfssl-ca2.key -out cfssl-ca2.pem -subj '/CN=cfssl other root' -days 30 "
		"-addext basicConstraints=critical,CA:TRUE "
		"-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null && "
		"for c in tls-ca tls-other; do openssl req -x509 -newkey ec -pkeyopt "
		"ec_paramgen_curve:P-256 -nodes -keyout $c.key -out $c.pem -subj /CN=$c -days 30 "
		"-addext basicConstraints=critical,CA:TRUE 2>/dev/null || exit 1; done && "
		"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		"-keyout tls-srv.key -out tls-srv.csr -subj /CN=127.0.0.1 2>/dev/null && "
		"printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' "
		">tls-srv.ext "
		"&& openssl x509 -req -in tls-srv.csr -CA tls-ca.pem -CAkey tls-ca.key "
		"-CAcreateserial -days 30 -extfile tls-srv.ext -out tls-srv.pem 2>/dev/null",
		tok.dir);
	sh(cmd);
	snprintf(cmd, sizeof(cmd), "%s/cfssl.json", tok.dir);
	if (gw_softhsm_write(cmd, cfssl_json) < 0)
		exit(2);
}

/* ---- the cases ------------------------------------------------------------- */

int
main(void)
{
	GW_TEST_BEGIN();
	setup();
	cfssl_pki();
	cfssl_start();
	/* the cfssl cases below assert what Debian 12's cfssl (1.2.0) does */
	if (system("cfssl version | grep -qx 'Version: 1.2.0'") != 0) {
		fprintf(stderr, "expected Debian 12's cfssl 1.2.0 (golang-cfssl)\n");
		return 1;
	}

	{ /* builtin: root + issuer in the HSM on first start, never regenerated */
		char st[128];
		struct gw_cfg_ca_backend b[] = {builtin("ca-1")};
		struct gw_cfg_mtls m = {.trust_domain = "example.org",
			.enabled_backend = "ca-1",
			.backends = b,
			.n_backends = 1};
		struct gw_ca *ca = NULL;
		struct gw_ca_info i1, i2;
		X509 *root = NULL, *issuer = NULL, *leaf = NULL;
		STACK_OF(X509) *chain = NULL;
		char uri[GW_HSM_URI_MAX];
		unsigned n = 0;

		fresh_state(st);
		EXPECT_OK(gw_ca_create(&m, P(st), &ca));
		EXPECT_OK(gw_ca_backend_info(ca, 0, &i1));
		EXPECT_TRUE(i1.active && !i1.expired && i1.issuer != NULL);
		EXPECT_EQ(X509_check_issued(i1.root, i1.root), X509_V_OK);
		EXPECT_EQ(X509_check_issued(i1.root, i1.issuer), X509_V_OK);
		EXPECT_TRUE(X509_check_ca(i1.root) >= 1 && X509_check_ca(i1.issuer) >= 1);
		root = X509_dup(i1.root);
		issuer = X509_dup(i1.issuer);
		/* the keys are the token's: non-extractable */
		{
			struct gw_hsm *h = NULL;
			struct gw_hsm_object o;

			EXPECT_OK(gw_hsm_open(
				&(struct gw_hsm_params){.token = "gw", .pin_file = tok.pin}, &h));
			EXPECT_OK(gw_hsm_key_info(
				h, "pkcs11:token=gw;object=ca-ca-1-root;type=private", &o));
			EXPECT_TRUE(o.sensitive && !o.extractable);
			gw_hsm_close(h);
		}
		/* the gateway's identity: SPIFFE ID, chain to the root, recorded */
		EXPECT_OK(gw_ca_issue_identity(ca, "web", &leaf, &chain, uri));
		EXPECT_TRUE(leaf && has_uri(leaf, "spiffe://example.org/gateway/web"));
		EXPECT_CONTAINS(uri, "object=gw-id-web");
		EXPECT_EQ(ossl_verify(root, leaf, chain), 0);
		EXPECT_OK(gw_state_certs_count(gw_ca_state(ca), "ca-1", &n));
		EXPECT_EQ(n, 1);
		X509_free(leaf);
		sk_X509_pop_free(chain, X509_free);
		gw_ca_destroy(ca);
		ca = NULL;

		/* restart: the same root and issuer, from the store */
		EXPECT_OK(gw_ca_create(&m, P(st), &ca));
		EXPECT_OK(gw_ca_backend_info(ca, 0, &i2));
		EXPECT_TRUE(same_cert(root, i2.root));
		EXPECT_TRUE(same_cert(issuer, i2.issuer));
		{
			unsigned adds = 0;

			EXPECT_OK(gw_state_history_count(gw_ca_state(ca), "add", &adds));
			EXPECT_EQ(adds, 1);
		}
		/* a client certificate through the issuer, TTL honoured, wrong domain refused */
		{
			X509_REQ *csr = client_csr("billing");
			struct gw_ca_leaf_req r = {.csr = csr,
				.spiffe_id = "spiffe://example.org/ns/billing",
				.ttl_s = 3600,
				.kind = GW_STATE_KIND_CLIENT};

			EXPECT_OK(gw_ca_sign(ca, &r, &leaf, &chain));
			EXPECT_EQ(ossl_verify(root, leaf, chain), 0);
			EXPECT_TRUE(gw_ca_not_after(leaf) - gw_ca_not_before(leaf) == 3600 + 60);
			X509_free(leaf);
			sk_X509_pop_free(chain, X509_free);
			r.spiffe_id = "spiffe://other.org/ns/billing";
			EXPECT_ERR(gw_ca_sign(ca, &r, &leaf, NULL), -EINVAL);
			EXPECT_CONTAINS(gw_err_msg(), "not in trust domain example.org");
			r.spiffe_id = "spiffe://example.org/ns/billing";
			r.backend = "nope";
			EXPECT_ERR(gw_ca_sign(ca, &r, &leaf, NULL), -ENOENT);
			X509_REQ_free(csr);
		}
		gw_ca_destroy(ca);
		X509_free(root);
		X509_free(issuer);
	}

	{ /* backend names: labels never cut, a foreign key under our label refused */
		char st[128], name[80], uri[GW_HSM_URI_MAX];
		struct gw_cfg_ca_backend b = builtin(NULL);
		struct gw_cfg_mtls m = {
			.trust_domain = "example.org", .backends = &b, .n_backends = 1};
		struct gw_ca *ca = NULL;
		struct gw_ca_info inf;

		/* 60..64: once ca-<name>-root and ca-<name>-issuer cut to one label */
		for (unsigned n = 60; n <= 64; n++) {
			memset(name, 'a' + (char)(n - 60), n);
			name[n] = '\0';
			b.name = name;
			m.enabled_backend = name;
			fresh_state(st);
			EXPECT_ERR(gw_ca_create(&m, P(st), &ca), -EINVAL);
			EXPECT_CONTAINS(gw_err_msg(), "bytes; at most 50");
			EXPECT_TRUE(ca == NULL);
		}
		/* 50: root and issuer get two keys */
		memset(name, 'f', 50);
		name[50] = '\0';
		fresh_state(st);
		EXPECT_OK(gw_ca_create(&m, P(st), &ca));
		if (ca) {
			EXPECT_OK(gw_ca_backend_info(ca, 0, &inf));
			EXPECT_TRUE(X509_cmp(inf.root, inf.issuer) != 0);
			EXPECT_TRUE(EVP_PKEY_eq(X509_get0_pubkey(inf.root),
					    X509_get0_pubkey(inf.issuer)) != 1);
			gw_ca_destroy(ca);
			ca = NULL;
		}
		/* a key someone else made with our issuer label is never signed with */
		{
			struct gw_hsm *h = NULL;

			EXPECT_OK(gw_hsm_open(
				&(struct gw_hsm_params){.token = "gw", .pin_file = tok.pin}, &h));
			EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "ca-squat-issuer", uri));
			gw_hsm_close(h);
		}
		b.name = "squat";
		m.enabled_backend = "squat";
		fresh_state(st);
		EXPECT_ERR(gw_ca_create(&m, P(st), &ca), -EEXIST);
		EXPECT_CONTAINS(gw_err_msg(), "labelled 'ca-squat-issuer'");
		EXPECT_CONTAINS(gw_err_msg(), "not reused");
		/* after that failed start (root made, never committed) the root is reused */
		{
			struct gw_hsm *h = NULL;
			struct gw_hsm_object *objs = NULL;
			size_t no = 0, roots = 0;

			EXPECT_OK(gw_hsm_open(
				&(struct gw_hsm_params){.token = "gw", .pin_file = tok.pin}, &h));
			EXPECT_OK(gw_hsm_list(h, &objs, &no));
			for (size_t i = 0; i < no; i++)
				roots += objs[i].kind == GW_HSM_OBJ_PRIVATE_KEY &&
					 strcmp(objs[i].label, "ca-squat-root") == 0;
			EXPECT_EQ(roots, 1);
			free(objs);
			gw_hsm_close(h);
		}
		EXPECT_ERR(gw_ca_create(&m, P(st), &ca), -EEXIST);
		EXPECT_CONTAINS(gw_err_msg(), "ca-squat-issuer");
	}

	{ /* leaf requests: reserved IDs, TTL over leaf_validity, weak keys refused */
		char st[128], kuri[GW_HSM_URI_MAX];
		struct gw_cfg_ca_backend b = builtin("ca-l");
		struct gw_cfg_mtls m = {.trust_domain = "example.org",
			.enabled_backend = "ca-l",
			.backends = &b,
			.n_backends = 1};
		struct gw_ca *ca = NULL;
		X509_REQ *csr = client_csr("c");
		X509 *leaf = NULL;
		STACK_OF(X509) *chain = NULL;
		struct gw_ca_leaf_req r = {.csr = csr};
		unsigned n = 0;

		fresh_state(st);
		EXPECT_OK(gw_ca_create(&m, P(st), &ca));
		if (ca) {
			time_t t0 = time(NULL);

			gw_ca_set_time(ca, t0);
			r.spiffe_id = "spiffe://example.org/gateway/web";
			EXPECT_ERR(gw_ca_sign(ca, &r, &leaf, NULL), -EINVAL);
			EXPECT_CONTAINS(gw_err_msg(), "is reserved");
			r.kind = GW_STATE_KIND_CLIENT;
			EXPECT_ERR(gw_ca_sign(ca, &r, &leaf, NULL), -EINVAL);
			r.spiffe_id = "spiffe://example.org/gateway/./web";
			EXPECT_ERR(gw_ca_sign(ca, &r, &leaf, NULL), -EINVAL);
			EXPECT_CONTAINS(gw_err_msg(), "path segment");
			r.spiffe_id = "spiffe://example.org/a%2Fb";
			EXPECT_ERR(gw_ca_sign(ca, &r, &leaf, NULL), -EINVAL);
			EXPECT_CONTAINS(gw_err_msg(), "character 0x25");
			/* the gateway's own identity is still issued */
			EXPECT_OK(gw_ca_issue_identity(ca, "web", &leaf, &chain, kuri));
			EXPECT_TRUE(leaf && has_uri(leaf, "spiffe://example.org/gateway/web"));
			X509_free(leaf);
			sk_X509_pop_free(chain, X509_free);
			leaf = NULL;
			/* TTL: one second over leaf_validity refused, exactly it issued */
			r.spiffe_id = "spiffe://example.org/ns/c";
			r.ttl_s = 72 * 3600 + 1;
			EXPECT_ERR(gw_ca_sign(ca, &r, &leaf, NULL), -EINVAL);
			EXPECT_CONTAINS(gw_err_msg(), "TTL of 259201 s is longer than backend "
						      "ca-l's leaf_validity (259200 s)");
			r.ttl_s = 100ull * 365 * 86400;
			EXPECT_ERR(gw_ca_sign(ca, &r, &leaf, NULL), -EINVAL);
			r.ttl_s = 72 * 3600;
			EXPECT_OK(gw_ca_sign(ca, &r, &leaf, NULL));
			EXPECT_EQ(gw_ca_not_after(leaf), t0 + 72 * 3600);
			X509_free(leaf);
			leaf = NULL;
			/* keys: RSA-1024 and P-224 refused, RSA-2048 and P-384 issued */
			{
				static const char *const weak[] = {"RSA-1024", "P-224"};
				static const char *const good[] = {"RSA-2048", "P-384"};

				for (unsigned i = 0; i < 4; i++) {
					const char *kind = i < 2 ? weak[i] : good[i - 2];
					EVP_PKEY *k =
						kind[0] == 'R'
							? EVP_RSA_gen((unsigned)atoi(kind + 4))
							: EVP_PKEY_Q_keygen(NULL, NULL, "EC", kind);
					X509_REQ *q = X509_REQ_new();

					X509_REQ_set_pubkey(q, k);
					X509_REQ_sign(q, k, EVP_sha256());
					r.csr = q;
					r.ttl_s = 0;
					if (i < 2) {
						EXPECT_ERR(
							gw_ca_sign(ca, &r, &leaf, NULL), -EINVAL);
						EXPECT_CONTAINS(gw_err_msg(), "the CSR's key is");
					} else {
						EXPECT_OK(gw_ca_sign(ca, &r, &leaf, NULL));
						X509_free(leaf);
						leaf = NULL;
					}
					X509_REQ_free(q);
					EVP_PKEY_free(k);
				}
			}
			/* identity + the 72h leaf + RSA-2048 + P-384: nothing from the refusals */
			EXPECT_OK(gw_state_certs_count(gw_ca_state(ca), "ca-l", &n));
			EXPECT_EQ(n, 4);
			gw_ca_destroy(ca);
		}
		X509_REQ_free(csr);
	}

	{ /* provided: CA cert + key in the HSM; refusals */
		char st[128], path[200], cmd[1024], uri[GW_HSM_URI_MAX];
		struct gw_hsm *h = NULL;
		EVP_PKEY *k = NULL;
		X509 *x = NULL, *leaf = NULL;
		X509_NAME *nm = X509_NAME_new();
		struct gw_cfg_ca_backend b = {.name = "ca-2",
			.type = GW_CA_PROVIDED,
			.leaf_validity_s = 3600,
			.cert = path,
			.key = uri};
		struct gw_cfg_mtls m = {.trust_domain = "example.org",
			.enabled_backend = "ca-2",
			.backends = &b,
			.n_backends = 1};
		struct gw_ca *ca = NULL;

		EXPECT_OK(gw_hsm_open(
			&(struct gw_hsm_params){.token = "gw", .pin_file = tok.pin}, &h));
		EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "prov", uri));
		EXPECT_OK(gw_hsm_key_load(h, uri, &k));
		X509_NAME_add_entry_by_txt(
			nm, "CN", MBSTRING_UTF8, (const unsigned char *)"operator CA", -1, -1, 0);
		EXPECT_OK(gw_ca_make_cert(
			nm, k, NULL, k, time(NULL) - 60, time(NULL) + 86400, true, -1, NULL, &x));
		snprintf(path, sizeof(path), "%s/prov.pem", tok.dir);
		pem_out(path, x, NULL);
		fresh_state(st);
		EXPECT_OK(gw_ca_create(&m, P(st), &ca));
		if (ca) {
			X509_REQ *csr = client_csr("c");
			struct gw_ca_leaf_req r = {
				.csr = csr, .spiffe_id = "spiffe://example.org/c"};

			EXPECT_OK(gw_ca_sign(ca, &r, &leaf, NULL));
			EXPECT_EQ(ossl_verify(x, leaf, NULL), 0);
			X509_free(leaf);
			X509_REQ_free(csr);
			gw_ca_destroy(ca);
			ca = NULL;
		}
		/* the key of another certificate */
		EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "prov-other", uri));
		fresh_state(st);
		EXPECT_ERR(gw_ca_create(&m, P(st), &ca), -GW_E_HSM_KEY);
		EXPECT_CONTAINS(gw_err_msg(), "does not match key");
		/* not a CA; a CA without keyCertSign */
		snprintf(cmd, sizeof(cmd),
			"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
			"-keyout %1$s/nca.key "
			"-out %1$s/nca.pem -subj /CN=leafy -days 2 -addext "
			"basicConstraints=critical,CA:FALSE 2>/dev/null && "
			"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
			"-keyout %1$s/nks.key "
			"-out %1$s/nks.pem -subj /CN=nosign -days 2 -addext "
			"basicConstraints=critical,CA:TRUE "
			"-addext keyUsage=critical,digitalSignature 2>/dev/null",
			tok.dir);
		sh(cmd);
		snprintf(path, sizeof(path), "%s/nca.pem", tok.dir);
		fresh_state(st);
		EXPECT_ERR(gw_ca_create(&m, P(st), &ca), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "not a CA certificate");
		snprintf(path, sizeof(path), "%s/nks.pem", tok.dir);
		EXPECT_ERR(gw_ca_create(&m, P(st), &ca), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "does not allow keyCertSign");
		X509_NAME_free(nm);
		X509_free(x);
		EVP_PKEY_free(k);
		gw_hsm_close(h);
	}

	{ /* cfssl: CA profile -> issuer in the HSM; leaf profile; errors */
		char st[128], url[64], bad[64];
		struct gw_cfg_ca_backend b = {.name = "ca-3",
			.type = GW_CA_CFSSL,
			.leaf_validity_s = 3600,
			.url = url,
			.profile = "issuer"};
		struct gw_cfg_mtls m = {.trust_domain = "example.org",
			.enabled_backend = "ca-3",
			.backends = &b,
			.n_backends = 1};
		struct gw_ca *ca = NULL;
		struct gw_ca_info inf;
		X509 *leaf = NULL;
		STACK_OF(X509) *chain = NULL;
		char kuri[GW_HSM_URI_MAX];

		snprintf(url, sizeof(url), "http://127.0.0.1:%u", cfssl_port);
		fresh_state(st);
		EXPECT_OK(gw_ca_create(&m, P(st), &ca));
		if (ca) {
			EXPECT_OK(gw_ca_backend_info(ca, 0, &inf));
			EXPECT_TRUE(inf.issuer != NULL);
			EXPECT_OK(gw_ca_issue_identity(ca, "api", &leaf, &chain, kuri));
			EXPECT_TRUE(leaf && has_uri(leaf, "spiffe://example.org/gateway/api"));
			EXPECT_EQ(ossl_verify(inf.root, leaf, chain), 0);
			X509_free(leaf);
			sk_X509_pop_free(chain, X509_free);
			leaf = NULL;
			chain = NULL;

			/* renewal of the issuer at 2/3 of its life, after a failed attempt */
			time_t nb = gw_ca_not_before(inf.issuer), na = gw_ca_not_after(inf.issuer);
			X509 *old = X509_dup(inf.issuer);

			gw_ca_set_time(ca, nb + (na - nb) / 2);
			EXPECT_EQ(gw_ca_maintain(ca), 0); /* not due yet */
			gw_ca_set_time(ca, nb + (na - nb) * 3 / 4);
			cfssl_stop();
			EXPECT_ERR(gw_ca_maintain(ca), -GW_E_CA);
			EXPECT_CONTAINS(gw_err_msg(), "cannot reach cfssl");
			/* the leaves still come from the HSM issuer while cfssl is down */
			EXPECT_OK(gw_ca_issue_identity(ca, "api", &leaf, &chain, kuri));
			X509_free(leaf);
			sk_X509_pop_free(chain, X509_free);
			EXPECT_ERR(gw_ca_maintain(ca), -GW_E_CA); /* and again: still due */
			cfssl_start();
			EXPECT_EQ(gw_ca_maintain(ca), 1);
			EXPECT_OK(gw_ca_backend_info(ca, 0, &inf));
			EXPECT_TRUE(!same_cert(old, inf.issuer));
			EXPECT_OK(gw_ca_issue_identity(ca, "api", &leaf, &chain, kuri));
			X509_free(leaf);
			sk_X509_pop_free(chain, X509_free);
			X509_free(old);
			gw_ca_destroy(ca);
			ca = NULL;
		}
		/* leaf profile: cfssl 1.2.0 cannot write a URI SAN: said plainly */
		b.profile = "leaf";
		fresh_state(st);
		EXPECT_OK(gw_ca_create(&m, P(st), &ca));
		if (ca) {
			X509_REQ *csr = client_csr("c");
			struct gw_ca_leaf_req r = {
				.csr = csr, .spiffe_id = "spiffe://example.org/c"};
			/*
			 * Debian 12's cfssl is 1.2.0 (checked at the top): it writes the
			 * ID as a DNS name, and the leaf is refused, saying why
			 */
			EXPECT_ERR(gw_ca_sign(ca, &r, &leaf, NULL), -GW_E_CA);
			EXPECT_CONTAINS(gw_err_msg(), "signed without the URI SAN "
						      "spiffe://example.org/c (cfssl before 1.3");
			X509_REQ_free(csr);
			/* an Ed25519 key is refused here, before cfssl sees it */
			{
				EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
				X509_REQ *e = X509_REQ_new();

				X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(e), "CN",
					MBSTRING_UTF8, (const unsigned char *)"ed", -1, -1, 0);
				X509_REQ_set_pubkey(e, k);
				X509_REQ_sign(e, k, NULL);
				r.csr = e;
				EXPECT_ERR(gw_ca_sign(ca, &r, &leaf, NULL), -EINVAL);
				EXPECT_CONTAINS(gw_err_msg(), "the CSR's key is ED25519");
				X509_REQ_free(e);
				EVP_PKEY_free(k);
			}
			gw_ca_destroy(ca);
			ca = NULL;
		}
		/* nobody listening */
		snprintf(bad, sizeof(bad), "http://127.0.0.1:%u", gw_test_free_port());
		b.url = bad;
		EXPECT_ERR(gw_ca_create(&m, P(st), &ca), -GW_E_CA);
		EXPECT_CONTAINS(gw_err_msg(), "cannot reach cfssl");
	}

	{ /* cfssl over https: ca_file checked, a wrong one refused, root pinned */
		char st[128], url[64], cafile[200], other[200];
		struct gw_cfg_ca_backend b = {.name = "ca-t",
			.type = GW_CA_CFSSL,
			.leaf_validity_s = 3600,
			.url = url,
			.profile = "issuer",
			.ca_file = cafile};
		struct gw_cfg_mtls m = {.trust_domain = "example.org",
			.enabled_backend = "ca-t",
			.backends = &b,
			.n_backends = 1};
		struct gw_ca *ca = NULL;
		X509 *leaf = NULL;
		STACK_OF(X509) *chain = NULL;
		char kuri[GW_HSM_URI_MAX];

		cfssl_stop();
		cfssl_tls = true;
		cfssl_start();
		snprintf(url, sizeof(url), "https://127.0.0.1:%u", cfssl_port);
		snprintf(cafile, sizeof(cafile), "%s/tls-ca.pem", tok.dir);
		snprintf(other, sizeof(other), "%s/tls-other.pem", tok.dir);
		fresh_state(st);
		EXPECT_OK(gw_ca_create(&m, P(st), &ca));
		if (ca) {
			EXPECT_OK(gw_ca_issue_identity(ca, "api", &leaf, &chain, kuri));
			X509_free(leaf);
			sk_X509_pop_free(chain, X509_free);
			gw_ca_destroy(ca);
			ca = NULL;
		}
		/* a server whose certificate ca_file did not sign: refused, before any POST */
		b.ca_file = other;
		EXPECT_ERR(gw_ca_create(&m, P(st), &ca), -GW_E_CA);
		EXPECT_CONTAINS(gw_err_msg(), "backend ca-t: cfssl https://127.0.0.1:");
		EXPECT_CONTAINS(gw_err_msg(), "TLS: ");
		EXPECT_CONTAINS(gw_err_msg(), "tls-other.pem must hold the CA that signed");
		/* nor does the system store vouch for it */
		b.ca_file = NULL;
		EXPECT_ERR(gw_ca_create(&m, P(st), &ca), -GW_E_CA);
		EXPECT_CONTAINS(gw_err_msg(), "TLS: ");
		b.ca_file = cafile;
		/* the same server, now signing with another root: refused, both named */
		cfssl_stop();
		cfssl_root = "cfssl-ca2";
		cfssl_start();
		EXPECT_ERR(gw_ca_create(&m, P(st), &ca), -GW_E_CA);
		EXPECT_CONTAINS(gw_err_msg(), "now serves root SHA256 ");
		EXPECT_CONTAINS(gw_err_msg(), ".., but this backend's root is ");
		EXPECT_CONTAINS(gw_err_msg(), "add the new root as another backend");
		/* a new backend for the new root is the way (a rotation) */
		b.name = "ca-t2";
		m.enabled_backend = "ca-t2";
		EXPECT_OK(gw_ca_create(&m, P(st), &ca));
		gw_ca_destroy(ca);
		ca = NULL;
		/* and the old root back: the old backend starts again */
		cfssl_stop();
		cfssl_root = "cfssl-ca";
		cfssl_start();
		b.name = "ca-t";
		m.enabled_backend = "ca-t";
		EXPECT_OK(gw_ca_create(&m, P(st), &ca));
		if (ca) {
			/* a reload's ca_file is the one the next renewal uses */
			struct gw_ca_info inf;
			time_t nb, na;

			EXPECT_OK(gw_ca_backend_info(ca, 0, &inf));
			nb = gw_ca_not_before(inf.issuer);
			na = gw_ca_not_after(inf.issuer);
			gw_ca_set_time(ca, nb + (na - nb) * 3 / 4);
			b.ca_file = other;
			EXPECT_OK(gw_ca_reconfigure(ca, &m));
			EXPECT_ERR(gw_ca_maintain(ca), -GW_E_CA);
			EXPECT_CONTAINS(gw_err_msg(), "tls-other.pem must hold the CA");
			b.ca_file = cafile;
			EXPECT_OK(gw_ca_reconfigure(ca, &m));
			EXPECT_EQ(gw_ca_maintain(ca), 1);
		}
		gw_ca_destroy(ca);
		cfssl_stop();
		cfssl_tls = false;
		cfssl_start();
	}

	{ /* what cfssl returns is checked: CA:FALSE, the ID, the TTL, the root */
		static const struct {
			const char *profile, *why;
		} bad[] = {
			{"ca", "returned a CA certificate (not CA:FALSE)"},
			{"long", "longer than the 172800 s asked for"},
			{"other", "not signed by the backend's root"},
			{"wrongid", "signed without the URI SAN spiffe://example.org/ns/c"},
		};
		unsigned short port = gw_test_free_port();
		pid_t fake = fake_start(port);
		char st[128], url[64];
		struct gw_cfg_ca_backend b = {.name = "ca-f",
			.type = GW_CA_CFSSL,
			.leaf_validity_s = 2 * 86400,
			.url = url,
			.profile = "good"};
		struct gw_cfg_mtls m = {.trust_domain = "example.org",
			.enabled_backend = "ca-f",
			.backends = &b,
			.n_backends = 1};
		struct gw_ca *ca = NULL;
		struct gw_ca_info inf;
		X509_REQ *csr = client_csr("c");
		struct gw_ca_leaf_req r = {.csr = csr, .spiffe_id = "spiffe://example.org/ns/c"};
		X509 *leaf = NULL;
		unsigned n = 0;

		snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
		/* a well-behaved answer is taken: cfssl signs the leaves */
		fresh_state(st);
		EXPECT_OK(gw_ca_create(&m, P(st), &ca));
		if (ca) {
			EXPECT_OK(gw_ca_backend_info(ca, 0, &inf));
			EXPECT_TRUE(inf.issuer == NULL);
			EXPECT_OK(gw_ca_sign(ca, &r, &leaf, NULL));
			EXPECT_TRUE(leaf && has_uri(leaf, "spiffe://example.org/ns/c"));
			X509_free(leaf);
			leaf = NULL;
			/* cfssl takes the validity from its profile: a shorter TTL is refused */
			r.ttl_s = 3600;
			EXPECT_ERR(gw_ca_sign(ca, &r, &leaf, NULL), -GW_E_CA);
			EXPECT_CONTAINS(gw_err_msg(), "longer than the 3600 s asked for");
			r.ttl_s = 0;
			gw_ca_destroy(ca);
			ca = NULL;
		}
		for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			b.profile = (char *)bad[i].profile;
			fresh_state(st);
			EXPECT_OK(gw_ca_create(&m, P(st), &ca));
			if (ca == NULL)
				continue;
			EXPECT_ERR(gw_ca_sign(ca, &r, &leaf, NULL), -GW_E_CA);
			EXPECT_CONTAINS(gw_err_msg(), bad[i].why);
			EXPECT_OK(gw_state_certs_count(gw_ca_state(ca), "ca-f", &n));
			EXPECT_EQ(n, 0); /* nothing refused is recorded */
			gw_ca_destroy(ca);
			ca = NULL;
		}
		X509_REQ_free(csr);
		kill(fake, SIGTERM);
		waitpid(fake, NULL, 0);
	}

	{ /* rotation A -> B: cross-signed root verifies against A alone and B alone */
		char st[128];
		struct gw_cfg_ca_backend b2[] = {builtin("rot-a"), builtin("rot-b")};
		struct gw_cfg_mtls m1 = {.trust_domain = "example.org",
			.enabled_backend = "rot-a",
			.backends = b2,
			.n_backends = 1};
		struct gw_cfg_mtls m2 = m1, m3 = m1, m4 = m1;
		struct gw_ca *ca = NULL;
		struct gw_ca_info ia, ib;
		X509 *leaf = NULL, *aroot = NULL;
		STACK_OF(X509) *chain = NULL;
		char kuri[GW_HSM_URI_MAX];

		m2.n_backends = 2;
		m3.n_backends = 2;
		m3.enabled_backend = "rot-b";
		m4.backends = &b2[1];
		m4.enabled_backend = "rot-b";
		fresh_state(st);
		EXPECT_OK(gw_ca_create(&m1, P(st), &ca));
		EXPECT_OK(gw_ca_reconfigure(ca, &m2));
		EXPECT_EQ(gw_ca_n_backends(ca), 2);
		EXPECT_STREQ(gw_ca_enabled(ca), "rot-a");
		EXPECT_OK(gw_ca_reconfigure(ca, &m3));
		EXPECT_STREQ(gw_ca_enabled(ca), "rot-b");
		EXPECT_OK(gw_ca_backend_info(ca, 0, &ia));
		EXPECT_OK(gw_ca_backend_info(ca, 1, &ib));
		EXPECT_TRUE(ib.active && ib.cross != NULL);
		aroot = X509_dup(ia.root);
		EXPECT_OK(gw_ca_issue_identity(ca, "web", &leaf, &chain, kuri));
		EXPECT_EQ(sk_X509_num(chain), 2);
		EXPECT_EQ(ossl_verify(ia.root, leaf, chain), 0); /* old root alone */
		EXPECT_EQ(ossl_verify(ib.root, leaf, chain), 0); /* new root alone */
		/* and without the cross cert, the old root alone refuses */
		{
			STACK_OF(X509) *only = sk_X509_new_null();

			sk_X509_push(only, ib.issuer);
			EXPECT_TRUE(ossl_verify(ia.root, leaf, only) != 0);
			sk_X509_free(only);
		}
		X509_free(leaf);
		sk_X509_pop_free(chain, X509_free);
		EXPECT_OK(gw_ca_reconfigure(ca, &m4));
		EXPECT_EQ(gw_ca_n_backends(ca), 1);
		{
			unsigned n = 0;

			EXPECT_OK(gw_state_history_count(gw_ca_state(ca), "enable", &n));
			EXPECT_EQ(n, 1);
			EXPECT_OK(gw_state_history_count(gw_ca_state(ca), "remove", &n));
			EXPECT_EQ(n, 1);
		}
		gw_ca_destroy(ca);
		ca = NULL;
		/* restart on the final config: B with its cross cert, A gone */
		EXPECT_OK(gw_ca_create(&m4, P(st), &ca));
		EXPECT_OK(gw_ca_backend_info(ca, 0, &ib));
		EXPECT_TRUE(ib.cross != NULL && X509_check_issued(aroot, ib.cross) == X509_V_OK);
		gw_ca_destroy(ca);
		X509_free(aroot);
	}

	{ /* validators: refuse early steps with the rule named, accept on time */
		char st[128];
		struct gw_cfg_ca_backend b2[] = {builtin("ca-1"), builtin("ca-2")};
		struct gw_cfg_mtls m1 = {
			.enabled_backend = "ca-1", .backends = b2, .n_backends = 1};
		struct gw_cfg_mtls m2 = m1, m3 = m1, m4 = m1, bad = m1;
		struct gw_rotation *r = NULL;
		struct gw_state *s = NULL;
		struct gw_rotation_env env = {.live_gen = 1};
		time_t now = time(NULL);

		m2.n_backends = 2;
		m3.n_backends = 2;
		m3.enabled_backend = "ca-2";
		m4.backends = &b2[1];
		m4.enabled_backend = "ca-2";
		fresh_state(st);
		EXPECT_OK(gw_state_open(st, &s));
		env.st = s;
		env.now = now;
		EXPECT_OK(gw_rotation_create(&r));
		EXPECT_OK(gw_rotation_check(r, NULL, &m1, &env)); /* first config */
		EXPECT_OK(gw_rotation_published(r, &m1, 1));
		/* add and enable at once */
		bad.n_backends = 2;
		bad.enabled_backend = "ca-2";
		EXPECT_ERR(gw_rotation_check(r, &m1, &bad, &env), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "rotation rule add-before-enable");
		/* a backend that changes under its name */
		{
			struct gw_cfg_ca_backend chg[] = {builtin("ca-1")};
			struct gw_cfg_mtls mc = m1;

			chg[0].type = GW_CA_CFSSL;
			chg[0].url = "http://127.0.0.1:1";
			mc.backends = chg;
			EXPECT_ERR(gw_rotation_check(r, &m1, &mc, &env), -GW_E_CONFIG);
			EXPECT_CONTAINS(
				gw_err_msg(), "rotation rule backend-unchanged: backend ca-1");
			chg[0] = builtin("ca-1");
			chg[0].leaf_validity_s = 3600; /* validities may change */
			EXPECT_OK(gw_rotation_check(r, &m1, &mc, &env));
		}
		/* step 1 */
		EXPECT_OK(gw_rotation_check(r, &m1, &m2, &env));
		EXPECT_OK(gw_rotation_published(r, &m2, 2));
		EXPECT_EQ(gw_rotation_trusted_since(r, "ca-2"), 2);
		/* step 2 before every worker runs generation 2 */
		EXPECT_ERR(gw_rotation_check(r, &m2, &m3, &env), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "rotation rule enable-after-trust: backend ca-2 is "
					      "not yet trusted by every worker");
		/* step 3 too early: removing the enabled backend */
		EXPECT_ERR(gw_rotation_check(r, &m2, &m4, &env), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "remove-not-enabled");
		env.live_gen = 2;
		/* a fleet: every other member must report a live snapshot trusting ca-2 */
		{
			json_t *fleet = json_pack(
				"{s:[{s:s,s:{s:[s,s]}},{s:s,s:{s:[s]}},{s:s}],s:[]}", "members",
				"node", "me", "mesh", "trusts", "ca-1", "ca-2", "node", "gw-b",
				"mesh", "trusts", "ca-1", "node", "gw-c", "leaves");
			json_t *members = json_object_get(fleet, "members");
			json_t *leaves = json_object_get(fleet, "leaves");

			env.fleet = fleet;
			env.self = "me";
			EXPECT_ERR(gw_rotation_check(r, &m2, &m3, &env), -GW_E_CONFIG);
			EXPECT_CONTAINS(gw_err_msg(),
				"rotation rule enable-after-trust: backend "
				"ca-2 is not yet trusted by fleet member gw-b");
			json_array_append_new(
				json_object_get(json_object_get(json_array_get(members, 1), "mesh"),
					"trusts"),
				json_string("ca-2"));
			EXPECT_ERR(gw_rotation_check(r, &m2, &m3, &env), -GW_E_CONFIG);
			EXPECT_CONTAINS(gw_err_msg(), "fleet member gw-c"); /* no report at all */
			json_object_set_new(json_array_get(members, 2), "mesh",
				json_pack("{s:[s,s]}", "trusts", "ca-2", "ca-1"));
			EXPECT_OK(gw_rotation_check(r, &m2, &m3, &env));
			env.fleet_down = true; /* etcd away: the members cannot be asked */
			EXPECT_ERR(gw_rotation_check(r, &m2, &m3, &env), -GW_E_CONFIG);
			EXPECT_CONTAINS(gw_err_msg(), "etcd does not answer");
			/* step 3 reads every box's record, a dead one's too, until it expires */
			env.fleet_down = false;
			json_array_append_new(leaves,
				json_pack("{s:s,s:{s:{s:i,s:I}}}", "node", "gw-gone", "backends",
					"ca-1", "live", 3, "until", (json_int_t)(now + 60)));
			json_array_append_new(leaves,
				json_pack("{s:s,s:{s:{s:i,s:I}}}", "node", "me", "backends", "ca-1",
					"live", 9, "until", (json_int_t)(now + 600)));
			EXPECT_ERR(gw_rotation_check(r, &m3, &m4, &env), -GW_E_CONFIG);
			EXPECT_CONTAINS(gw_err_msg(), "rotation rule remove-after-expiry: backend "
						      "ca-1 issued 3 certificates still valid on "
						      "fleet member gw-gone");
			env.force = true;
			EXPECT_OK(gw_rotation_check(r, &m3, &m4, &env));
			env.force = false;
			env.now = now + 61; /* gw-gone's expired; our own record is not read */
			EXPECT_OK(gw_rotation_check(r, &m3, &m4, &env));
			env.now = now;
			env.fleet = NULL;
			env.self = NULL;
			json_decref(fleet);
		}
		EXPECT_OK(gw_rotation_check(r, &m2, &m3, &env));
		EXPECT_OK(gw_rotation_published(r, &m3, 3));
		/* step 3 while a client cert from ca-1 is valid */
		EXPECT_OK(gw_state_begin(s));
		EXPECT_OK(gw_state_cert_record(s,
			&(struct gw_state_cert){.serial = "0A",
				.subject = "/CN=c",
				.spiffe_id = "spiffe://td/c",
				.not_after = now + 3600,
				.backend = "ca-1",
				.kind = GW_STATE_KIND_CLIENT},
			now));
		/* a superseded identity does not count */
		EXPECT_OK(gw_state_cert_record(s,
			&(struct gw_state_cert){.serial = "0B",
				.subject = "/CN=web",
				.not_after = now + 7200,
				.backend = "ca-1",
				.kind = GW_STATE_KIND_IDENTITY,
				.owner = "web"},
			now));
		EXPECT_OK(gw_state_cert_record(s,
			&(struct gw_state_cert){.serial = "0C",
				.subject = "/CN=web",
				.not_after = now + 7200,
				.backend = "ca-2",
				.kind = GW_STATE_KIND_IDENTITY,
				.owner = "web"},
			now));
		EXPECT_OK(gw_state_commit(s, "t"));
		EXPECT_ERR(gw_rotation_check(r, &m3, &m4, &env), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "rotation rule remove-after-expiry: backend ca-1 "
					      "issued 1 certificate still valid");
		env.force = true;
		EXPECT_OK(gw_rotation_check(r, &m3, &m4, &env));
		env.force = false;
		env.now = now + 3601;
		EXPECT_OK(gw_rotation_check(r, &m3, &m4, &env));
		/* renewal rule */
		EXPECT_TRUE(!gw_rotation_renew_due(1000, 1300, 1199));
		EXPECT_TRUE(gw_rotation_renew_due(1000, 1300, 1200));
		EXPECT_TRUE(gw_rotation_renew_due(1000, 1300, 5000));
		gw_rotation_destroy(r);
		gw_state_close(s);
	}

	{ /* rotating away from a backend whose root has expired */
		char st[128];
		struct gw_cfg_ca_backend b2[] = {builtin("exp-a"), builtin("exp-b")};
		struct gw_cfg_mtls m2 = {.trust_domain = "example.org",
			.enabled_backend = "exp-a",
			.backends = b2,
			.n_backends = 2};
		struct gw_cfg_mtls m3 = m2, m4 = m2;
		struct gw_ca *ca = NULL;
		struct gw_ca_info ia;
		struct gw_rotation *r = NULL;
		struct gw_rotation_env env = {.live_gen = 1};
		X509 *leaf = NULL;
		STACK_OF(X509) *chain = NULL;
		char kuri[GW_HSM_URI_MAX];
		time_t t0 = time(NULL);

		b2[0].root_validity_s = 3000;
		b2[0].leaf_validity_s = 100;
		m3.enabled_backend = "exp-b";
		m4.backends = &b2[1];
		m4.n_backends = 1;
		m4.enabled_backend = "exp-b";
		fresh_state(st);
		EXPECT_OK(gw_ca_create(&m2, P(st), &ca));
		EXPECT_OK(gw_ca_issue_identity(ca, "web", &leaf, &chain, kuri));
		X509_free(leaf);
		sk_X509_pop_free(chain, X509_free);
		/* builtin issuer renewal at 2/3 (issuer life 1500 s here) */
		EXPECT_OK(gw_ca_backend_info(ca, 0, &ia));
		{
			time_t nb = gw_ca_not_before(ia.issuer), na = gw_ca_not_after(ia.issuer);
			X509 *old = X509_dup(ia.issuer);

			gw_ca_set_time(ca, nb + (na - nb) * 2 / 3 + 1);
			EXPECT_EQ(gw_ca_maintain(ca), 1);
			EXPECT_OK(gw_ca_backend_info(ca, 0, &ia));
			EXPECT_TRUE(!same_cert(old, ia.issuer));
			EXPECT_EQ(gw_ca_maintain(ca), 0);
			X509_free(old);
		}
		gw_ca_set_time(ca, t0 + 4000); /* exp-a's root has expired */
		EXPECT_OK(gw_ca_backend_info(ca, 0, &ia));
		EXPECT_TRUE(ia.expired);
		{
			X509_REQ *csr = client_csr("x");
			struct gw_ca_leaf_req rq = {
				.csr = csr, .spiffe_id = "spiffe://example.org/x"};

			EXPECT_ERR(gw_ca_sign(ca, &rq, &leaf, NULL), -GW_E_CA);
			EXPECT_CONTAINS(gw_err_msg(), "root expired");
			X509_REQ_free(csr);
		}
		EXPECT_OK(gw_rotation_create(&r));
		EXPECT_OK(gw_rotation_published(r, &m2, 1));
		env.st = gw_ca_state(ca);
		env.now = t0 + 4000;
		EXPECT_OK(gw_rotation_check(r, &m2, &m3, &env));
		EXPECT_OK(gw_ca_reconfigure(ca, &m3));
		EXPECT_OK(gw_ca_issue_identity(ca, "web", &leaf, &chain, kuri));
		X509_free(leaf);
		sk_X509_pop_free(chain, X509_free);
		EXPECT_OK(gw_rotation_published(r, &m3, 2));
		EXPECT_OK(gw_rotation_check(r, &m3, &m4, &env));
		EXPECT_OK(gw_ca_reconfigure(ca, &m4));
		gw_rotation_destroy(r);
		gw_ca_destroy(ca);
	}

#ifdef GW_TEST_HOOKS /* the crash hook (state.h) exists only in -Dtest_hooks=true builds */
	{            /* crash at every step: the next start continues from a consistent state */
		char st[128];
		struct gw_cfg_ca_backend b2[] = {builtin("cr-a"), builtin("cr-b")};
		struct gw_cfg_mtls m1 = {.trust_domain = "example.org",
			.enabled_backend = "cr-a",
			.backends = b2,
			.n_backends = 1};
		struct gw_cfg_mtls m2 = m1, m3 = m1, m4 = m1;
		const struct gw_cfg_mtls *steps[] = {&m1, &m2, &m3, &m4};
		const char *labels[] = {"ca-create", "reconfigure", "reconfigure", "reconfigure"};

		m2.n_backends = 2;
		m3.n_backends = 2;
		m3.enabled_backend = "cr-b";
		m4.backends = &b2[1];
		m4.enabled_backend = "cr-b";
		fresh_state(st);
		for (unsigned k = 0; k < 4; k++) {
			struct gw_ca *ca = NULL;
			int status = 0;
			pid_t pid = fork();

			if (pid == 0) {
				struct gw_ca *c = NULL;

				setenv("GW_STATE_CRASH_AT", labels[k], 1);
				if (k == 0) {
					if (gw_ca_create(steps[0], P(st), &c) == 0)
						_exit(0);
				} else if (gw_ca_create(steps[k - 1], P(st), &c) == 0) {
					/* the start itself must not crash: it has nothing to catch up */
					if (gw_ca_reconfigure(c, steps[k]) == 0)
						_exit(0);
				}
				_exit(0);
			}
			waitpid(pid, &status, 0);
			EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 86);
			/* the next start, on the config of step k */
			EXPECT_OK(gw_ca_create(steps[k], P(st), &ca));
			if (ca == NULL)
				continue;
			EXPECT_EQ(gw_ca_n_backends(ca), steps[k]->n_backends);
			EXPECT_STREQ(gw_ca_enabled(ca), steps[k]->enabled_backend);
			for (unsigned i = 0; i < gw_ca_n_backends(ca); i++) {
				struct gw_ca_info inf;

				EXPECT_OK(gw_ca_backend_info(ca, i, &inf));
				/* every root and issuer belongs to its HSM key (the token signs) */
				EXPECT_EQ(X509_check_issued(inf.root, inf.issuer), X509_V_OK);
				if (k >= 2 && strcmp(inf.name, "cr-b") == 0)
					EXPECT_TRUE(inf.cross != NULL);
			}
			{
				X509 *leaf = NULL;
				STACK_OF(X509) *chain = NULL;
				char kuri[GW_HSM_URI_MAX];
				struct gw_ca_info inf;

				EXPECT_OK(gw_ca_issue_identity(ca, "web", &leaf, &chain, kuri));
				EXPECT_OK(gw_ca_backend_info(
					ca, k >= 2 ? gw_ca_n_backends(ca) - 1 : 0, &inf));
				if (leaf)
					EXPECT_EQ(ossl_verify(inf.root, leaf, chain), 0);
				X509_free(leaf);
				sk_X509_pop_free(chain, X509_free);
			}
			{
				unsigned n = 0;

				EXPECT_OK(gw_state_history_count(gw_ca_state(ca), "enable", &n));
				EXPECT_EQ(n, k >= 2 ? 1 : 0);
				EXPECT_OK(gw_state_history_count(gw_ca_state(ca), "remove", &n));
				EXPECT_EQ(n, k >= 3 ? 1 : 0);
			}
			gw_ca_destroy(ca);
		}
	}
#else
	printf("# crash steps skipped: built without -Dtest_hooks=true\n");
#endif

	cfssl_stop();
	gw_hsm_shutdown();
	(void)gw_softhsm_remove(&tok);
	GW_TEST_END();
}
