/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_mesh.c - the mesh control plane as the gateway drives it, minus the
 * packets: a real config file through the loader, the real snapshot
 * publisher with two reader threads standing in for workers (the harness
 * tests/lib/gw_mesh_test.c, shared with mesh_srv), the real TLS
 * extension (SSL_CTX per snapshot, keys in a SoftHSM token), the builtin CA
 * and the admin API over curl. The three rotation steps, each a reloaded
 * file (step 2 also through PUT /v1/connect/ca/configuration): which
 * clients each published snapshot's trust accepts, which backend issued the
 * identity every snapshot serves, and what the validators refuse.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "ca.h"
#include "config.h"
#include "gw_mesh_test.h"
#include "gw_softhsm.h"
#include "gw_test.h"

static struct gw_softhsm tok;
static char cfg_path[128], sock[128];
static struct gw_mesh_test m;
static atomic_bool stop_admin;

/* The config with these backends (YAML flow list) and enabled backend. */
static void
write_cfg(const char *backends, const char *enabled)
{
	char buf[2048];

	snprintf(buf, sizeof(buf),
		"dataplane:\n  workers: [1]\n  no_huge: true\n  ports:\n"
		"    - { name: wan, driver: tap, device: gwm0, address: 10.77.0.2/24 }\n"
		"listeners:\n"
		"  - name: web\n    address: 10.77.0.2:443\n    service: tls-echo\n"
		"    tls: { client_auth: required }\n"
		"    trust: { mode: mesh, allow: { spiffe: [\"spiffe://example.org/ns/*\"] } }\n"
		"hsm: { pin_file: pin }\nstate_dir: state\nadmin: { socket: %s }\n"
		"mtls:\n  trust_domain: example.org\n  enabledBackend: %s\n  backends: %s\n",
		sock, enabled, backends);
	if (gw_softhsm_write(cfg_path, buf) < 0)
		exit(2);
}

static void *
admin_loop(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_admin))
		(void)gw_mesh_run(m.mesh, 50);
	return NULL;
}

/* ---- checks ---- */

/* A client certificate from backend (a software key, as an enrolled workload has). */
static void
client_cert(
	const char *backend, const char *path, X509 **leaf, STACK_OF(X509) * *chain, EVP_PKEY **key)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509_REQ *r = X509_REQ_new();
	int rc;

	X509_REQ_set_pubkey(r, k);
	X509_REQ_sign(r, k, EVP_sha256());
	rc = gw_ca_sign(gw_mesh_ca(m.mesh),
		&(struct gw_ca_leaf_req){.csr = r,
			.spiffe_id = path,
			.kind = GW_STATE_KIND_CLIENT,
			.backend = backend},
		leaf, chain);
	if (rc < 0) {
		fprintf(stderr, "client cert: %s\n", gw_err_msg());
		exit(2);
	}
	X509_REQ_free(r);
	*key = k;
}

/*
 * A TLS handshake in memory between the current snapshot's SSL_CTX for
 * "web" (the gateway side: HSM key, served chain, verify callback on the
 * listener's trust) and a client holding leaf/key that trusts only root.
 * True if both sides completed it.
 */
static bool
handshake(X509 *leaf, STACK_OF(X509) * chain, EVP_PKEY *key, X509 *root)
{
	const struct gw_snap_listener *l = gw_snapshot_listener_find(gw_snap_current(m.pub), "web");
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *c = NULL, *s = NULL;
	BIO *b1 = NULL, *b2 = NULL;
	struct gw_tls_vctx v = {0};
	bool cdone = false, sdone = false, ok = false;

	if (l == NULL || l->tls == NULL || cctx == NULL)
		goto out;
	X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), root);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_use_certificate(cctx, leaf);
	SSL_CTX_use_PrivateKey(cctx, key);
	for (int i = 0; i < sk_X509_num(chain); i++)
		SSL_CTX_add1_chain_cert(cctx, sk_X509_value(chain, i));
	c = SSL_new(cctx);
	s = SSL_new(gw_tls_lst_ctx(l->tls));
	if (!c || !s || gw_tls_vctx_attach(s, &v) < 0 || !BIO_new_bio_pair(&b1, 0, &b2, 0))
		goto out;
	SSL_set_bio(c, b1, b1);
	SSL_set_bio(s, b2, b2);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (int i = 0; i < 50 && !(cdone && sdone); i++) {
		int rc = SSL_do_handshake(c), e;

		if (rc == 1)
			cdone = true;
		else if ((e = SSL_get_error(c, rc)) != SSL_ERROR_WANT_READ &&
			 e != SSL_ERROR_WANT_WRITE)
			break;
		rc = SSL_do_handshake(s);
		if (rc == 1)
			sdone = true;
		else if ((e = SSL_get_error(s, rc)) != SSL_ERROR_WANT_READ &&
			 e != SSL_ERROR_WANT_WRITE)
			break;
	}
	ok = cdone && sdone;
out:
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	X509_free(v.refused_leaf); /* the owner's (tls_policy.h) */
	return ok;
}

/* Does the current snapshot's listener accept this client? */
static bool
accepts(X509 *leaf, STACK_OF(X509) * chain)
{
	const struct gw_snap_listener *l = gw_snapshot_listener_find(gw_snap_current(m.pub), "web");
	struct gw_trust_verdict v;

	return l && l->trust && gw_trust_verify(l->trust, leaf, chain, 0, &v) == 0;
}

/* The issuer CN of the identity the current snapshot serves. */
static void
served_issuer(char *out, size_t len)
{
	const struct gw_snap_listener *l = gw_snapshot_listener_find(gw_snap_current(m.pub), "web");
	X509 *x = l && l->tls ? SSL_CTX_get0_certificate(gw_tls_lst_ctx(l->tls)) : NULL;

	out[0] = '\0';
	if (x)
		X509_NAME_get_text_by_NID(X509_get_issuer_name(x), NID_commonName, out, (int)len);
}

static int
curl_put_enable(const char *backend, char *out, size_t len)
{
	char cmd[512];
	FILE *p;
	int code = 0;

	snprintf(cmd, sizeof(cmd),
		"curl -s -o %s/put.out -w '%%{http_code}' --unix-socket %s -X PUT "
		"--data-binary '{\"Config\":{\"EnabledBackend\":\"%s\"}}' "
		"http://gw/v1/connect/ca/configuration",
		tok.dir, sock, backend);
	p = popen(cmd, "r");
	if (p == NULL || fscanf(p, "%d", &code) != 1)
		code = 0;
	if (p)
		pclose(p);
	snprintf(cmd, sizeof(cmd), "%s/put.out", tok.dir);
	out[0] = '\0';
	{
		FILE *f = fopen(cmd, "r");

		if (f) {
			size_t n = fread(out, 1, len - 1, f);

			out[n] = '\0';
			fclose(f);
		}
	}
	return code;
}

int
main(void)
{
	struct gw_hsm *h = NULL;
	pthread_t adm;
	char iss[128], ans[1024];
	const char *B1 = "[ { name: ca-1, type: builtin } ]";
	const char *B12 = "[ { name: ca-1, type: builtin }, { name: ca-2, type: builtin } ]";
	const char *B2 = "[ { name: ca-2, type: builtin } ]";
	X509 *ca1 = NULL, *ca2 = NULL, *r1 = NULL, *r2 = NULL;
	STACK_OF(X509) *ca1c = NULL, *ca2c = NULL;
	EVP_PKEY *k1 = NULL, *k2 = NULL;
	struct gw_ca_info in;

	GW_TEST_BEGIN();
	if (gw_softhsm_setup(&tok, "gwmesh") < 0)
		return 2;
	/* mesh-only config: the builtin CA's token is the one labelled mtlsgw */
	if (gw_hsm_token_init(&(struct gw_hsm_params){.token = "mtlsgw", .pin_file = tok.pin},
		    tok.so_pin) < 0 ||
		gw_hsm_open(&(struct gw_hsm_params){.token = "mtlsgw", .pin_file = tok.pin}, &h) <
			0)
		return 2;
	snprintf(cfg_path, sizeof(cfg_path), "%s/gw.yaml", tok.dir);
	snprintf(sock, sizeof(sock), "%s/admin.sock", tok.dir);
	write_cfg(B1, "ca-1");
	m.cfg_path = cfg_path;
	EXPECT_OK(gw_cfg_load(cfg_path, &m.running, stderr));
	if (m.running == NULL)
		GW_TEST_END();
	EXPECT_OK(gw_mesh_test_start(&m, h, NULL));
	if (m.mesh == NULL)
		GW_TEST_END();

	client_cert("ca-1", "spiffe://example.org/ns/a", &ca1, &ca1c, &k1);
	EXPECT_OK(gw_ca_backend_info(gw_mesh_ca(m.mesh), 0, &in));
	r1 = X509_dup(in.root);
	EXPECT_TRUE(accepts(ca1, ca1c));
	EXPECT_TRUE(handshake(ca1, ca1c, k1, r1));
	served_issuer(iss, sizeof(iss));
	EXPECT_STREQ(iss, "mtlsgw ca-1 issuer");

	{ /* a staged reload that is aborted leaves CA, store and files as they were */
		struct gw_cfg *next = NULL;
		unsigned h0 = 0, h1 = 0, h2 = 0;
		char p[300];
		struct stat sb;

		EXPECT_OK(gw_state_history_count(gw_ca_state(gw_mesh_ca(m.mesh)), NULL, &h0));
		write_cfg(B12, "ca-1");
		EXPECT_OK(gw_cfg_load(cfg_path, &next, stderr));
		EXPECT_OK(gw_mesh_prepare(m.mesh, next, false));
		/* staged: the running CA still has one backend, the store sees the add */
		EXPECT_EQ(gw_ca_n_backends(gw_mesh_ca(m.mesh)), 1);
		EXPECT_OK(gw_state_history_count(gw_ca_state(gw_mesh_ca(m.mesh)), "add", &h1));
		snprintf(p, sizeof(p), "%s/state/mesh-roots.pem.next", tok.dir);
		EXPECT_TRUE(stat(p, &sb) == 0);
		gw_mesh_abort(m.mesh);
		EXPECT_TRUE(stat(p, &sb) < 0);
		EXPECT_EQ(gw_ca_n_backends(gw_mesh_ca(m.mesh)), 1);
		EXPECT_OK(gw_state_history_count(gw_ca_state(gw_mesh_ca(m.mesh)), NULL, &h2));
		EXPECT_EQ(h2, h0);
		EXPECT_TRUE(h1 == 2); /* ca-1 at start, ca-2 staged */
		EXPECT_TRUE(handshake(ca1, ca1c, k1, r1));
		gw_cfg_free(next);
		write_cfg(B1, "ca-1");
	}

	/* step 1: add ca-2; both trusted, identity still from ca-1 */
	write_cfg(B12, "ca-1");
	EXPECT_OK(gw_mesh_test_reload(&m, false));
	client_cert("ca-2", "spiffe://example.org/ns/b", &ca2, &ca2c, &k2);
	EXPECT_OK(gw_ca_backend_info(gw_mesh_ca(m.mesh), 1, &in));
	r2 = X509_dup(in.root);
	EXPECT_TRUE(accepts(ca1, ca1c) && accepts(ca2, ca2c));
	/* a ca-2 client trusting only ca-2 cannot verify the ca-1 identity yet */
	EXPECT_TRUE(handshake(ca1, ca1c, k1, r1) && !handshake(ca2, ca2c, k2, r2));
	served_issuer(iss, sizeof(iss));
	EXPECT_STREQ(iss, "mtlsgw ca-1 issuer");

	/* step 3 too early: ca-1 is still enabled */
	write_cfg(B2, "ca-2");
	EXPECT_ERR(gw_mesh_test_reload(&m, false), -GW_E_CONFIG);
	EXPECT_CONTAINS(gw_err_msg(), "remove-not-enabled");
	EXPECT_TRUE(accepts(ca1, ca1c)); /* the running config stays */

	/* step 2 through the API; the workers run the snapshot trusting ca-2 by now */
	pthread_create(&adm, NULL, admin_loop, NULL);
	EXPECT_EQ(curl_put_enable("ca-2", ans, sizeof(ans)), 200);
	EXPECT_CONTAINS(ans, "\"EnabledBackend\": \"ca-2\"");
	served_issuer(iss, sizeof(iss));
	EXPECT_STREQ(iss, "mtlsgw ca-2 issuer");
	EXPECT_TRUE(accepts(ca1, ca1c) && accepts(ca2, ca2c));
	/* both clients, each trusting only its own root: the cross-signed root at work */
	EXPECT_TRUE(handshake(ca1, ca1c, k1, r1));
	EXPECT_TRUE(handshake(ca2, ca2c, k2, r2));
	EXPECT_EQ(curl_put_enable("ca-9", ans, sizeof(ans)), 400);
	EXPECT_CONTAINS(ans, "no backend named 'ca-9'");
	/* the control thread does the rest itself, as the gateway's loop would */
	atomic_store(&stop_admin, true);
	pthread_join(adm, NULL);

	/* step 3: ca-1 issued a client certificate that is still valid */
	write_cfg(B2, "ca-2");
	EXPECT_ERR(gw_mesh_test_reload(&m, false), -GW_E_CONFIG);
	EXPECT_CONTAINS(gw_err_msg(), "rotation rule remove-after-expiry: backend ca-1");
	EXPECT_TRUE(accepts(ca1, ca1c));
	EXPECT_OK(gw_mesh_test_reload(&m, true)); /* --force */
	EXPECT_TRUE(!accepts(ca1, ca1c));         /* a client from ca-1 alone is refused */
	EXPECT_TRUE(accepts(ca2, ca2c));
	EXPECT_TRUE(!handshake(ca1, ca1c, k1, r1));
	EXPECT_TRUE(handshake(ca2, ca2c, k2, r2));
	served_issuer(iss, sizeof(iss));
	EXPECT_STREQ(iss, "mtlsgw ca-2 issuer");

	{ /* identity renewal at 2/3 of its life, after a failed attempt, published */
		const struct gw_snap_listener *l =
			gw_snapshot_listener_find(gw_snap_current(m.pub), "web");
		X509 *before = X509_dup(SSL_CTX_get0_certificate(gw_tls_lst_ctx(l->tls)));
		time_t t = gw_ca_not_before(before) +
			   (gw_ca_not_after(before) - gw_ca_not_before(before)) * 2 / 3 + 5;
		uint64_t g0 = m.gen;
		char cmd[600];

		/* the identity file cannot be replaced: the attempt fails, nothing published */
		snprintf(cmd, sizeof(cmd),
			"rm -f %1$s/state/identity-web.pem && mkdir -p "
			"%1$s/state/identity-web.pem/x",
			tok.dir);
		EXPECT_EQ(system(cmd), 0);
		gw_mesh_set_time(m.mesh, t);
		EXPECT_OK(gw_mesh_run(m.mesh, 0));
		EXPECT_EQ(m.gen, g0);
		l = gw_snapshot_listener_find(gw_snap_current(m.pub), "web");
		EXPECT_EQ(X509_cmp(before, SSL_CTX_get0_certificate(gw_tls_lst_ctx(l->tls))), 0);
		/* fixed: the next tick renews and publishes */
		snprintf(cmd, sizeof(cmd), "rm -rf %s/state/identity-web.pem", tok.dir);
		EXPECT_EQ(system(cmd), 0);
		gw_mesh_set_time(m.mesh, t + 1);
		EXPECT_OK(gw_mesh_run(m.mesh, 0));
		EXPECT_EQ(m.gen, g0 + 1);
		l = gw_snapshot_listener_find(gw_snap_current(m.pub), "web");
		EXPECT_TRUE(
			X509_cmp(before, SSL_CTX_get0_certificate(gw_tls_lst_ctx(l->tls))) != 0);
		EXPECT_TRUE(gw_ca_not_after(SSL_CTX_get0_certificate(gw_tls_lst_ctx(l->tls))) >
			    gw_ca_not_after(before));
		/* and not again until its own 2/3 */
		gw_mesh_set_time(m.mesh, t + 2);
		EXPECT_OK(gw_mesh_run(m.mesh, 0));
		EXPECT_EQ(m.gen, g0 + 1);
		X509_free(before);
	}

	gw_mesh_test_stop(&m);
	X509_free(ca1);
	X509_free(ca2);
	X509_free(r1);
	X509_free(r2);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	sk_X509_pop_free(ca1c, X509_free);
	sk_X509_pop_free(ca2c, X509_free);
	gw_hsm_close(h);
	gw_hsm_shutdown();
	if (gw_softhsm_remove(&tok) < 0)
		return 1;
	GW_TEST_END();
}
