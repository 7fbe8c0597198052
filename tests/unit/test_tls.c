/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_tls.c - the TLS termination core (control/tls_ctx + dataplane/tls +
 * svc_tls) end to end in one process, with real parts only:
 *
 *   client stack A (10.0.0.1) <-- ip_output feeds gw_tcp_input --> server stack B (10.0.0.2)
 *
 * Two of our own TCP stacks back to back (EAL --no-huge), an OpenSSL client
 * SSL on A over the same gw_tcp BIO, and on B the real services (tls-echo,
 * tls-proxy) with SSL_CTX sets built by tls_ctx from snapshots whose server
 * keys live in a fresh SoftHSM token. The clock is ours (1 tick = 1 us), so
 * timeouts are tested without sleeping and without timing assertions.
 *
 * Cases: TLS 1.3 and 1.2 full mTLS handshakes; the seed's three trust cases
 * (pinned leaf, intermediate anchor, root + chain); rejections with the
 * alert the client receives and the counter by reason; SNI choosing the
 * identity; resumption across two workers on two snapshots (shared ticket
 * keys) and refused after a trust change; key rotation; handshake timeout;
 * the handshake bound; data both ways; close_notify; tls-proxy with a PROXY
 * v2 header to an upstream; a stale entry in OpenSSL's error queue before a
 * read or write.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <p11-kit/pkcs11.h>

#include "gw_dpdk_test.h"
#include "gw_ossl.h"
#include "gw_softhsm.h"
#include "gw_test.h"
#include "hsm.h"
#include "mkcorpus.h"
#include "proxy_v2.h"
#include "snapshot.h"
#include "svc.h"
#include "svc_tls.h"
#include "tcp.h"
#include "tls.h"
#include "tls_ctx.h"

#define IP_A 0x0a000001u /* host order */
#define IP_B 0x0a000002u
#define HZ 1000000ull

static struct gw_softhsm tok; /* token, PIN files, corpus and server chains */
static struct mk_corpus K;
static uint64_t now_tsc = 1;

/* ---- the wire: two stacks, two queues ---- */

#define QMAX 8192
struct wire {
	struct rte_mbuf *q[QMAX];
	unsigned n;
};
static struct wire to_a, to_b;
static struct gw_tcp_stack *SA, *SB;
static struct gw_tls_worker *W1, *W2, *W3; /* W3: asynchronous HSM signatures */

/* One end of the wire: its stack's net_ctx (where its packets go, its address). */
struct side {
	struct wire *out;
	uint32_t ip; /* host order */
};
static struct side side_a = {.out = &to_b, .ip = IP_A}, side_b = {.out = &to_a, .ip = IP_B};

static void
side_output(void *ctx, struct rte_mbuf *m)
{
	struct wire *w = ((struct side *)ctx)->out;

	if (w->n == QMAX) {
		rte_pktmbuf_free(m);
		return;
	}
	w->q[w->n++] = m;
}

static uint32_t
side_addr(void *ctx, uint32_t raddr)
{
	(void)raddr;
	return htonl(((struct side *)ctx)->ip);
}

/* Hand what is queued on w to stack s (what s sends meanwhile queues anew). */
static void
deliver(struct wire *w, struct gw_tcp_stack *s)
{
	struct rte_mbuf *q[QMAX];
	unsigned n = w->n;

	memcpy(q, w->q, n * sizeof(q[0]));
	w->n = 0;
	for (unsigned i = 0; i < n; i++)
		gw_tcp_input(s, q[i]);
}

/* One round: deliver what is queued, advance the clock by dt us, poll. */
static void
pump(uint64_t dt)
{
	deliver(&to_b, SB);
	deliver(&to_a, SA);
	now_tsc += dt;
	gw_tcp_poll(SA, now_tsc);
	gw_tcp_poll(SB, now_tsc);
	if (W1)
		gw_tls_worker_poll(W1, now_tsc);
	if (W2)
		gw_tls_worker_poll(W2, now_tsc);
	if (W3)
		gw_tls_worker_poll(W3, now_tsc);
}

/* ---- HSM token and server certificates ---- */

/* Remove the temp dir on every exit, also the exit(2) of a failed setup. */
static void
remove_dir(void)
{
	if (tok.dir[0] == 0)
		return;
	(void)gw_softhsm_remove(&tok);
	tok.dir[0] = 0;
}

static void
setup_softhsm(void)
{
	if (gw_softhsm_setup(&tok, "gwtls") < 0)
		exit(2);
	atexit(remove_dir);
}

/*
 * Issue a server certificate for the token key `uri` from the corpus
 * intermediate, signed with md.
 */
static void
issue_server_cert(struct gw_hsm *h, const char *uri, const char *cn, const char *san,
	const char *path, const EVP_MD *md)
{
	X509_REQ *req = NULL;
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	FILE *f;

	if (gw_hsm_csr(h, uri, cn, san, &req) != 0) {
		fprintf(stderr, "csr: %s\n", gw_err_msg());
		exit(2);
	}
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(now_tsc + 1000 + (uintptr_t)path % 1000));
	X509_set_subject_name(x, X509_REQ_get_subject_name(req));
	X509_set_issuer_name(x, X509_get_subject_name(K.inter.x));
	X509_set_pubkey(x, X509_REQ_get0_pubkey(req));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 30);
	X509V3_set_ctx(&v3, K.inter.x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san + 0);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, "serverAuth");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (X509_sign(x, K.inter.k, md) <= 0) {
		fprintf(stderr, "sign server cert failed\n");
		exit(2);
	}
	f = fopen(path, "w");
	PEM_write_X509(f, x);
	PEM_write_X509(f, K.inter.x);
	fclose(f);
	X509_free(x);
	X509_REQ_free(req);
}

/* ---- PROXY v2: the PP2_TYPE_SSL TLV of a header, parsed by the spec ---- */

struct pp2_ssl {
	unsigned client, verify;
	char version[32], cn[256], sig_alg[64], key_alg[32];
};

static void
pp2_str(char *dst, size_t cap, const uint8_t *v, size_t n)
{
	n = n < cap - 1 ? n : cap - 1;
	memcpy(dst, v, n);
	dst[n] = 0;
}

/* Find PP2_TYPE_SSL in h[0..hl) (a whole header) and read it; false if absent or bad. */
static bool
pp2_ssl_parse(const uint8_t *h, size_t hl, struct pp2_ssl *o)
{
	size_t i = GW_PP2_HDR_LEN + GW_PP2_INET_LEN;

	memset(o, 0, sizeof(*o));
	while (i + 3 <= hl) {
		size_t n = (size_t)h[i + 1] << 8 | h[i + 2];
		const uint8_t *v = h + i + 3;

		if (i + 3 + n > hl)
			return false;
		if (h[i] == GW_PP2_TYPE_SSL) {
			size_t k = 5;

			if (n < 5)
				return false;
			o->client = v[0];
			o->verify = (unsigned)v[1] << 24 | (unsigned)v[2] << 16 |
				    (unsigned)v[3] << 8 | v[4];
			while (k + 3 <= n) {
				size_t m = (size_t)v[k + 1] << 8 | v[k + 2];
				const uint8_t *sv = v + k + 3;

				if (k + 3 + m > n)
					return false;
				if (v[k] == GW_PP2_SUBTYPE_SSL_VERSION)
					pp2_str(o->version, sizeof(o->version), sv, m);
				else if (v[k] == GW_PP2_SUBTYPE_SSL_CN)
					pp2_str(o->cn, sizeof(o->cn), sv, m);
				else if (v[k] == GW_PP2_SUBTYPE_SSL_SIG_ALG)
					pp2_str(o->sig_alg, sizeof(o->sig_alg), sv, m);
				else if (v[k] == GW_PP2_SUBTYPE_SSL_KEY_ALG)
					pp2_str(o->key_alg, sizeof(o->key_alg), sv, m);
				k += 3 + m;
			}
			return k == n;
		}
		i += 3 + n;
	}
	return false;
}

/* ---- config by hand (the loader has its own tests) ---- */

static char srv_uri[GW_HSM_URI_MAX], srv2_uri[GW_HSM_URI_MAX];
static char srv_pem[128], srv2_pem[128];
static char pem_root[200], pem_inter[200], pem_inter2[200], pem_leaf[200];

enum tcase { TC_PINNED, TC_INTER, TC_ROOT, TC_INTER2 };

struct lcfg {
	struct gw_cfg cfg;
	struct gw_cfg_listener l[3];
	struct gw_cfg_identity ids[2];
	char *sni1[1];
	char *certs[1];
	struct gw_cfg_ep ups[2];
};

static void
lcfg_init(struct lcfg *c, enum tcase tc, int min_version, unsigned n_listeners)
{
	memset(c, 0, sizeof(*c));
	c->ids[0].cert = srv_pem;
	c->ids[0].key = srv_uri;
	c->ids[1].cert = srv2_pem;
	c->ids[1].key = srv2_uri;
	c->sni1[0] = "api.example.test";
	c->ids[1].sni = c->sni1;
	c->ids[1].n_sni = 1;
	c->certs[0] = tc == TC_PINNED  ? pem_leaf
		      : tc == TC_INTER ? pem_inter
		      : tc == TC_ROOT  ? pem_root
				       : pem_inter2;
	c->ups[0].ip = htonl(IP_A);
	c->ups[0].port = htons(9000);
	c->ups[1].ip = htonl(IP_A);
	c->ups[1].port = htons(9001);
	for (unsigned i = 0; i < n_listeners; i++) {
		struct gw_cfg_listener *l = &c->l[i];
		static char *names[] = {"l0", "l1", "l2"};

		l->name = names[i];
		l->addr.ip = htonl(IP_B);
		l->addr.port = htons((uint16_t)(8443 + i));
		l->service = i == 2 ? GW_SVC_TLS_PROXY : GW_SVC_TLS_ECHO;
		l->has_tls = true;
		l->tls.min_version = min_version;
		l->tls.identities = c->ids;
		l->tls.n_identities = 2;
		l->tls.client_auth = GW_CLIENT_AUTH_REQUIRED;
		l->has_trust = true;
		l->trust.mode = tc == TC_PINNED ? GW_TRUST_PINNED : GW_TRUST_CA;
		l->trust.certs = c->certs;
		l->trust.n_certs = 1;
		l->trust.max_depth = 4;
		if (i == 2) {
			l->has_upstream = true;
			/* 9001 first: nobody listens there, so round robin must skip it */
			l->upstream.servers = &c->ups[0];
			l->upstream.n_servers = 2;
			l->upstream.proxy_protocol = GW_PROXY_V2;
		}
	}
	c->cfg.listeners = c->l;
	c->cfg.n_listeners = n_listeners;
}

/* ---- the client ---- */

struct client {
	struct gw_tcp_conn *c;
	SSL *ssl;
	bool connected, closed;
	int close_reason;
	int alert_rx; /* alert description received, -1 none */
	bool hs_done;
	int hs_err;
};

static void
client_tcp_ev(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	struct client *cl = ctx;

	(void)c;
	if (ev == GW_TCP_EV_CONNECTED)
		cl->connected = true;
	if (ev == GW_TCP_EV_CLOSED) {
		cl->closed = true;
		cl->close_reason = reason;
		cl->c = NULL;
		if (cl->ssl)
			BIO_set_data(SSL_get_rbio(cl->ssl), NULL);
	}
}

static void
info_cb(const SSL *ssl, int where, int ret)
{
	struct client *cl = SSL_get_app_data(ssl);

	if ((where & SSL_CB_READ_ALERT) && cl)
		cl->alert_rx = ret & 0xff;
}

static SSL_CTX *
client_ctx(int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	X509_STORE *st = SSL_CTX_get_cert_store(ctx);

	X509_STORE_add_cert(st, K.root.x); /* the client checks the server too */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (max_version)
		SSL_CTX_set_max_proto_version(ctx, max_version);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

/* Connect A -> B:port and start a client SSL presenting cert (+chain). */
static void
client_open(struct client *cl, SSL_CTX *ctx, uint16_t port, const struct mk_cert *cert, X509 *chain,
	const char *sni, SSL_SESSION *sess)
{
	struct gw_tcp_connect_params cp = {0};

	memset(cl, 0, sizeof(*cl));
	cl->alert_rx = -1;
	cp.laddr = htonl(IP_A);
	cp.raddr = htonl(IP_B);
	cp.rport = htons(port);
	cp.cb = client_tcp_ev;
	cp.ctx = cl;
	if (gw_tcp_connect(SA, &cp, &cl->c) != 0) {
		fprintf(stderr, "connect: %s\n", gw_err_msg());
		exit(2);
	}
	for (int i = 0; i < 50 && !cl->connected && !cl->closed; i++)
		pump(100);
	cl->ssl = SSL_new(ctx);
	SSL_set_app_data(cl->ssl, cl);
	SSL_set_info_callback(cl->ssl, info_cb);
	if (cert) {
		SSL_use_certificate(cl->ssl, cert->x);
		SSL_use_PrivateKey(cl->ssl, cert->k);
	}
	if (chain)
		SSL_add1_chain_cert(cl->ssl, chain);
	if (sni)
		SSL_set_tlsext_host_name(cl->ssl, sni);
	if (sess)
		SSL_set_session(cl->ssl, sess);
	SSL_set1_host(cl->ssl, NULL);
	SSL_set_bio(cl->ssl, gw_tls_bio_new(cl->closed ? NULL : cl->c),
		gw_tls_bio_new(cl->closed ? NULL : cl->c));
	SSL_set_connect_state(cl->ssl);
}

static void
client_free(struct client *cl)
{
	if (cl->c)
		gw_tcp_abort(cl->c);
	cl->c = NULL;
	/* a session freed without shutdown is marked not resumable: keep ours */
	if (cl->ssl && cl->hs_done)
		SSL_set_shutdown(cl->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(cl->ssl);
	cl->ssl = NULL;
	pump(100);
}

/* Drive the client handshake: 1 done, 0 failed. */
static int
client_handshake(struct client *cl)
{
	for (int i = 0; i < 400; i++) {
		int rc;

		ERR_clear_error();
		rc = SSL_do_handshake(cl->ssl);
		if (rc == 1) {
			cl->hs_done = true;
			return 1;
		}
		rc = SSL_get_error(cl->ssl, rc);
		if (rc != SSL_ERROR_WANT_READ && rc != SSL_ERROR_WANT_WRITE) {
			cl->hs_err = rc;
			if (getenv("GW_TLS_DEBUG"))
				ERR_print_errors_fp(stderr);
			ERR_clear_error();
			return 0;
		}
		if (cl->closed)
			return 0;
		pump(100);
	}
	return 0;
}

/*
 * Send msg, read back len bytes (the echo; TLS 1.3 tickets and the
 * server's verdict arrive on this read). Returns bytes read, -1 on error.
 */
static long
client_roundtrip(struct client *cl, const uint8_t *msg, size_t len, uint8_t *back, size_t cap)
{
	size_t sent = 0, got = 0;

	for (int i = 0; i < 20000 && (sent < len || got < len); i++) {
		size_t n = 0;

		if (sent < len) {
			ERR_clear_error();
			if (SSL_write_ex(
				    cl->ssl, msg + sent, RTE_MIN(len - sent, (size_t)16384), &n))
				sent += n;
			else if (SSL_get_error(cl->ssl, 0) != SSL_ERROR_WANT_WRITE &&
				 SSL_get_error(cl->ssl, 0) != SSL_ERROR_WANT_READ)
				return -1;
		}
		for (;;) {
			int e;

			if (got == cap)
				break;
			ERR_clear_error();
			if (SSL_read_ex(cl->ssl, back + got, cap - got, &n) == 1) {
				got += n;
				continue;
			}
			e = SSL_get_error(cl->ssl, 0);
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				return -1;
			break;
		}
		if (cl->closed)
			break;
		pump(100);
	}
	return (long)got;
}

/* Read until the peer's alert/EOF shows (server rejected us after our Finished). */
static void
client_drain(struct client *cl)
{
	uint8_t buf[256];

	for (int i = 0; i < 100 && !cl->closed; i++) {
		size_t n;

		ERR_clear_error();
		if (SSL_read_ex(cl->ssl, buf, sizeof(buf), &n) != 1) {
			int e = SSL_get_error(cl->ssl, 0);

			if (e != SSL_ERROR_WANT_READ)
				break;
		}
		pump(100);
	}
	ERR_clear_error();
}

/*
 * Send n bytes of msg and read back want bytes into back, reading at most
 * `sip` bytes per round (a slow reader: the windows close and the server
 * meets a full TCP send buffer again and again). Returns bytes read.
 */
static size_t
slow_roundtrip(
	struct client *cl, const uint8_t *msg, size_t n, uint8_t *back, size_t want, size_t sip)
{
	size_t sent = 0, got = 0;

	/*
	 * The client takes the server's TLS 1.3 tickets in first,
	 * before any write of its own can be pending. (OpenSSL 3.0 resizes
	 * its write buffer to the max_fragment_length on the first
	 * post-handshake message, and a record pending in it then goes out
	 * as garbage.)
	 */
	for (int i = 0; n && i < 20; i++) {
		uint8_t b;
		size_t k;

		(void)SSL_peek_ex(cl->ssl, &b, 1, &k); /* tickets in, app data stays */
		ERR_clear_error();
		pump(1000);
	}
	/* first write only, until everything is blocked */
	for (int i = 0; i < 400 && sent < n; i++) {
		size_t k = 0;

		if (SSL_write_ex(cl->ssl, msg + sent, RTE_MIN(n - sent, (size_t)16384), &k))
			sent += k;
		ERR_clear_error();
		pump(1000);
	}
	for (int i = 0; i < 200000 && got < want && !cl->closed; i++) {
		size_t k = 0;

		if (sent < n &&
			SSL_write_ex(cl->ssl, msg + sent, RTE_MIN(n - sent, (size_t)16384), &k))
			sent += k;
		ERR_clear_error();
		if (SSL_read_ex(cl->ssl, back + got, RTE_MIN(want - got, sip), &k) == 1)
			got += k;
		ERR_clear_error();
		pump(1000);
	}
	return got;
}

/* ---- the token, straight through PKCS#11 (to delete a key behind our back) ---- */

static int
raw_destroy_key(const char *token, const char *label)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	CK_C_INITIALIZE_ARGS a = {.flags = CKF_OS_LOCKING_OK};
	CK_FUNCTION_LIST *f = NULL;
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	void *dl = dlopen(GW_DEFAULT_PKCS11_MODULE, RTLD_NOW);
	CK_RV rv;

	if (dl == NULL)
		return -1;
	*(void **)&get = dlsym(dl, "C_GetFunctionList");
	if (get == NULL || get(&f) != CKR_OK)
		return -1;
	rv = f->C_Initialize(&a);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return -1;
	if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return -1;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		CK_SESSION_HANDLE sh;
		CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
		CK_ATTRIBUTE t[] = {
			{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
		CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
		CK_ULONG k = 0;
		size_t l = strlen(token);

		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK || memcmp(ti.label, token, l) != 0 ||
			(l < 32 && ti.label[l] != ' '))
			continue;
		if (f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
			    &sh) != CKR_OK)
			return -1;
		rv = f->C_Login(sh, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4);
		if ((rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) &&
			f->C_FindObjectsInit(sh, t, 2) == CKR_OK) {
			f->C_FindObjects(sh, &o, 1, &k);
			f->C_FindObjectsFinal(sh);
		}
		rv = k == 1 ? f->C_DestroyObject(sh, o) : CKR_GENERAL_ERROR;
		f->C_CloseSession(sh);
		return rv == CKR_OK ? 0 : -1;
	}
	return -1;
}

/* ---- two threads signing with one HSM key at once (the shared EVP_PKEY) ---- */

struct par_arg {
	SSL_CTX *srv, *cli;
	int ok;
};

static void *
par_handshakes(void *argp)
{
	struct par_arg *a = argp;

	for (int i = 0; i < 40; i++) {
		SSL *s = SSL_new(a->srv), *c = SSL_new(a->cli);
		BIO *bs = NULL, *bc = NULL;
		int rs = 0, rcl = 0;

		BIO_new_bio_pair(&bs, 0, &bc, 0);
		SSL_set_bio(s, bs, bs);
		SSL_set_bio(c, bc, bc);
		SSL_set_accept_state(s);
		SSL_set_connect_state(c);
		SSL_use_certificate(c, K.leaf.x);
		SSL_use_PrivateKey(c, K.leaf.k);
		for (int k = 0; k < 50 && (rs != 1 || rcl != 1); k++) {
			if (rcl != 1)
				rcl = SSL_do_handshake(c);
			if (rs != 1)
				rs = SSL_do_handshake(s);
		}
		/* TLS 1.3: the server signed with the token key for every one of these */
		if (rs == 1 && rcl == 1 && !SSL_session_reused(s))
			a->ok++;
		ERR_clear_error();
		SSL_free(s);
		SSL_free(c);
	}
	return NULL;
}

/* ---- asynchronous HSM signatures (W3): the HSM threads run in real time ---- */

#ifdef GW_TEST_HOOKS /* used only by the tests that stall the HSM (test hooks) */
/* Drive cl's handshake while real time passes: 1 done, 0 failed or 5 s gone. */
static int
client_handshake_rt(struct client *cl)
{
	for (int i = 0; i < 5000; i++) {
		int rc;

		ERR_clear_error();
		rc = SSL_do_handshake(cl->ssl);
		if (rc == 1) {
			cl->hs_done = true;
			return 1;
		}
		rc = SSL_get_error(cl->ssl, rc);
		if (rc != SSL_ERROR_WANT_READ && rc != SSL_ERROR_WANT_WRITE) {
			cl->hs_err = rc;
			ERR_clear_error();
			return 0;
		}
		if (cl->closed)
			return 0;
		pump(100);
		usleep(1000);
	}
	return 0;
}

/* client_handshake_rt, then one echo: the server has finished its side too. */
static int
client_hs_echo_rt(struct client *cl)
{
	uint8_t msg[100], back[100];

	memset(msg, 0x5a, sizeof(msg));
	return client_handshake_rt(cl) &&
	       client_roundtrip(cl, msg, sizeof(msg), back, sizeof(back)) == (long)sizeof(msg) &&
	       memcmp(msg, back, sizeof(msg)) == 0;
}

/* Step cl until the server (w) parks one more handshake: true if it did. */
static bool
client_until_parked(struct client *cl, struct gw_tls_worker *w)
{
	struct gw_tls_stats st0, st;

	gw_tls_stats_get(w, &st0);
	for (int i = 0; i < 200; i++) {
		ERR_clear_error();
		(void)SSL_do_handshake(cl->ssl);
		ERR_clear_error();
		pump(100);
		gw_tls_stats_get(w, &st);
		if (st.hsm_async_parked > st0.hsm_async_parked)
			return true;
	}
	return false;
}
#endif /* GW_TEST_HOOKS */

/* ---- the server side ---- */

static struct gw_tls_ctl *CTL;
static struct gw_snap_pub *P1, *P2;

#ifdef GW_TEST_HOOKS /* the async HSM cases */
/*
 * A worker whose handshakes sign on the HSM threads (the pool must run),
 * with a tls-echo listener "l0" of P1 on IP_B:port; NULL if it failed.
 */
static struct gw_tls_worker *
async_echo_worker(const struct gw_tls_worker_params *wp, uint16_t port, uint32_t hsm_timeout_ms)
{
	struct gw_tls_worker_params ap = *wp;
	struct gw_svc_tls_params sp = {0};
	struct gw_tls_worker *w = NULL;

	ap.max_handshakes = 16;
	ap.handshake_timeout_ms = 30000;
	ap.hsm_async = true;
	ap.hsm_timeout_ms = hsm_timeout_ms;
	EXPECT_OK(gw_tls_worker_create(&ap, &w));
	sp.ip = htonl(IP_B);
	sp.port = htons(port);
	sp.kind = GW_SVC_TLS_ECHO;
	sp.index = 0; /* "l0" */
	sp.pub = P1;
	sp.tw = w;
	EXPECT_OK(gw_svc_tls_listen(SB, &sp));
	return w;
}
#endif /* GW_TEST_HOOKS */

static uint64_t gen = 1;
static struct gw_hsm *hsm_h;

/*
 * Mesh-like trust: when set, listeners in mode mesh get their anchors from
 * these in-memory bundles, as the CA backends hand them over (mesh.c).
 */
static STACK_OF(X509) * mesh_bundles[4];
static unsigned n_mesh_bundles;

static int
mesh_trust_build(void *arg, const struct gw_cfg_listener *lc, struct gw_trust **out)
{
	(void)arg;
	if (lc->trust.mode != GW_TRUST_MESH)
		return gw_trust_create(&lc->trust, lc->name, out);
	return gw_trust_create_bundles(&lc->trust, lc->name, mesh_bundles, n_mesh_bundles, out);
}

/* A TLS connection the test drives itself (gw_tls_write straight, no service). */
static struct gw_tls_conn *raw_t;

static void
raw_ev(struct gw_tls_conn *t, enum gw_tls_event ev, int reason, void *ctx)
{
	(void)reason;
	(void)ctx;
	if (ev == GW_TLS_EV_ESTABLISHED)
		raw_t = t;
	if (ev == GW_TLS_EV_CLOSED)
		raw_t = NULL;
}

static int
raw_accept(struct gw_tcp_conn *c, void *ctx)
{
	const struct gw_snapshot *snap = gw_snap_current(P1);
	struct gw_tls_conn *t;

	(void)ctx;
	return gw_tls_accept(W1, c, snap, gw_snapshot_listener_find(snap, "l0"), raw_ev, NULL, &t);
}

static struct gw_snapshot *
build(struct lcfg *c)
{
	struct gw_snapshot_ext ext;
	struct gw_snapshot *s = NULL;

	gw_tls_ctl_ext(CTL, &ext);
	ext.trust_build = mesh_trust_build;
	if (gw_snapshot_build(&c->cfg, gen++, &ext, &s) != 0) {
		fprintf(stderr, "snapshot build: %s\n", gw_err_msg());
		return NULL;
	}
	return s;
}

static void
publish(struct gw_snap_pub *p, struct lcfg *c)
{
	struct gw_snapshot *s = build(c);

	if (s == NULL || gw_snap_pub_publish(p, s) != 0) {
		fprintf(stderr, "publish failed: %s\n", gw_err_msg());
		exit(2);
	}
}

static struct gw_tcp_stack *
new_stack(struct rte_mempool *mp, struct side *side)
{
	struct gw_tcp_stack_params sp = {0};
	struct gw_tcp_stack *s = NULL;

	sp.lcore = rte_lcore_id();
	sp.pool = mp;
	sp.ip_output = side_output;
	sp.net_ctx = side;
	sp.src_addr = side_addr;
	sp.tsc_hz = HZ;
	sp.max_conns = 256;
	sp.rto_min_ms = 200;
	if (gw_tcp_stack_create(&sp, &s) != 0) {
		fprintf(stderr, "stack: %s\n", gw_err_msg());
		exit(2);
	}
	gw_tcp_poll(s, now_tsc);
	return s;
}

static void
stats(struct gw_tls_worker *w, struct gw_tls_stats *st)
{
	gw_tls_stats_get(w, st);
}

#ifdef GW_TEST_HOOKS /* the in-place signature cases */
/*
 * One mTLS handshake and echo with w's listener on port: its server
 * signature went to an HSM thread (*how 'p') or was made in place ('i');
 * false if the handshake or the echo failed.
 */
static bool
signed_how(SSL_CTX *ctx, uint16_t port, struct gw_tls_worker *w, char *how)
{
	struct gw_tls_stats s0, s1;
	struct client cl;
	bool ok;

	stats(w, &s0);
	client_open(&cl, ctx, port, &K.leaf, NULL, NULL, NULL);
	ok = client_hs_echo_rt(&cl) && SSL_get_verify_result(cl.ssl) == X509_V_OK;
	client_free(&cl);
	stats(w, &s1);
	*how = s1.hsm_async_parked - s0.hsm_async_parked == 1 && s1.hsm_inline == s0.hsm_inline
		       ? 'p'
	       : s1.hsm_inline - s0.hsm_inline == 1 && s1.hsm_async_parked == s0.hsm_async_parked
		       ? 'i'
		       : '?';
	return ok && s1.hs_fail == s0.hs_fail;
}
#endif /* GW_TEST_HOOKS */

/* Full mTLS handshake + echo on port; returns 1 if data came back intact. */
static int
echo_ok(SSL_CTX *ctx, uint16_t port, const struct mk_cert *cert, X509 *chain, const char *sni,
	SSL_SESSION *sess, SSL_SESSION **sess_out, bool *reused)
{
	struct client cl;
	uint8_t msg[3000], back[3000];
	int ok;

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7 + port);
	client_open(&cl, ctx, port, cert, chain, sni, sess);
	ok = client_handshake(&cl) &&
	     client_roundtrip(&cl, msg, sizeof(msg), back, sizeof(back)) == (long)sizeof(msg) &&
	     memcmp(msg, back, sizeof(msg)) == 0;
	if (!ok && getenv("GW_TLS_DEBUG")) {
		struct gw_tls_stats st;

		gw_tls_stats_get(port == 8444 ? W2 : W1, &st);
		fprintf(stderr,
			"echo_ok(%u) failed: hs_done %d hs_err %d alert %d closed %d/%d; "
			"server hs_ok %lu fail %lu proto %lu verify %lu eof %lu hsm %lu\n",
			port, cl.hs_done, cl.hs_err, cl.alert_rx, cl.closed, cl.close_reason,
			(unsigned long)st.hs_ok, (unsigned long)st.hs_fail,
			(unsigned long)st.hs_fail_proto, (unsigned long)st.hs_fail_verify,
			(unsigned long)st.hs_fail_eof, (unsigned long)st.hs_fail_hsm);
		ERR_print_errors_fp(stderr);
	}
	if (getenv("GW_TLS_DEBUG") && SSL_get0_session(cl.ssl))
		fprintf(stderr, "port %u: session resumable %d ticket %d reused %d\n", port,
			SSL_SESSION_is_resumable(SSL_get0_session(cl.ssl)),
			SSL_SESSION_has_ticket(SSL_get0_session(cl.ssl)),
			SSL_session_reused(cl.ssl));
	if (reused)
		*reused = SSL_session_reused(cl.ssl);
	if (sess_out)
		*sess_out = ok ? SSL_get1_session(cl.ssl) : NULL;
	client_free(&cl);
	return ok;
}

/* A handshake the server must refuse: the alert the client got (-1 none). */
static int
rejected_alert(SSL_CTX *ctx, uint16_t port, const struct mk_cert *cert, X509 *chain)
{
	struct client cl;
	uint8_t msg[16] = "ping", back[16];
	int alert;

	client_open(&cl, ctx, port, cert, chain, NULL, NULL);
	if (client_handshake(&cl)) {
		/* TLS 1.3: the client is done before the server has judged it */
		if (client_roundtrip(&cl, msg, sizeof(msg), back, sizeof(back)) == sizeof(msg))
			alert = -2; /* accepted: wrong */
		else
			alert = cl.alert_rx;
	} else {
		alert = cl.alert_rx;
	}
	client_drain(&cl);
	client_free(&cl);
	return alert;
}

/* The CN of the certificate the server presents for sni (NULL: none sent). */
static const char *
server_cn(SSL_CTX *ctx, uint16_t port, const char *sni)
{
	static char cn[128];
	struct client cl;

	cn[0] = '\0';
	client_open(&cl, ctx, port, &K.leaf, NULL, sni, NULL);
	if (client_handshake(&cl))
		X509_NAME_get_text_by_NID(X509_get_subject_name(SSL_get0_peer_certificate(cl.ssl)),
			NID_commonName, cn, sizeof(cn));
	client_free(&cl);
	return cn;
}

/*
 * Offer sess; the server must not resume it and must refuse the full
 * handshake that follows: the alert the client got (-2: resumed or
 * accepted, -1: no alert).
 */
static int
resume_alert(
	SSL_CTX *ctx, uint16_t port, const struct mk_cert *cert, X509 *chain, SSL_SESSION *sess)
{
	struct client cl;
	uint8_t msg[8] = "x", back[8];
	int alert = -1;

	client_open(&cl, ctx, port, cert, chain, NULL, sess);
	if (client_handshake(&cl) &&
		(SSL_session_reused(cl.ssl) ||
			client_roundtrip(&cl, msg, sizeof(msg), back, sizeof(back)) == sizeof(msg)))
		alert = -2;
	else
		alert = cl.alert_rx;
	client_drain(&cl);
	client_free(&cl);
	return alert;
}

int
main(int argc, char **argv)
{
	char prefix[64];
	char *eal[] = {argv[0], "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "-l", "0",
		"--log-level", "lib.*:error", "--file-prefix", prefix, NULL};
	struct rte_mempool *mp;
	struct gw_hsm_params hp = {0};
	struct gw_hsm *h = NULL;
	struct gw_tls_ctl_params cp = {0};
	struct gw_tls_worker_params wp = {0};
	struct lcfg cfg;
	SSL_CTX *c13, *c12;

	(void)argc;
	GW_TEST_BEGIN();
	snprintf(prefix, sizeof(prefix), "gwtls%d", (int)getpid());
	if (rte_eal_init((int)RTE_DIM(eal) - 1, eal) < 0)
		GW_TEST_SKIP("EAL cannot start here");
	atexit(gw_test_eal_dir_remove); /* the per-pid prefix would pile up otherwise */
	mp = rte_pktmbuf_pool_create(
		"tlsmp", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (mp == NULL || mk_corpus_build(&K, time(NULL)) != 0)
		GW_TEST_SKIP("no mempool or corpus");
	/* from here as the gateway runs (gateway.c): OpenSSL's built-in EC
	 * methods. After the corpus: they cannot generate a key by the name
	 * "P-256" (OpenSSL 3.0), which the gateway never does. */
	EXPECT_OK(gw_ossl_ec_builtin());
	EXPECT_TRUE(gw_ossl_ec_builtin_on());
	if (mk_corpus_builtin(&K) < 0)
		return 2;
	setup_softhsm();
	{ /* corpus as files for the trust config */
		char cdir[96];

		snprintf(cdir, sizeof(cdir), "%s/pki", tok.dir);
		mkdir(cdir, 0700);
		if (mk_corpus_write(&K, cdir) != 0) {
			fprintf(stderr, "corpus write failed\n");
			return 2;
		}
		snprintf(pem_root, sizeof(pem_root), "%s/root.pem", cdir);
		snprintf(pem_inter, sizeof(pem_inter), "%s/inter.pem", cdir);
		snprintf(pem_inter2, sizeof(pem_inter2), "%s/inter2.pem", cdir);
		snprintf(pem_leaf, sizeof(pem_leaf), "%s/leaf.pem", cdir);
	}
	/* the server keys: generated inside a fresh SoftHSM token */
	hp.token = "gwtls";
	hp.pin_file = tok.pin;
	EXPECT_OK(gw_hsm_token_init(&hp, tok.so_pin));
	EXPECT_OK(gw_hsm_open(&hp, &h));
	if (h == NULL)
		GW_TEST_END();
	/*
	 * The default identity is P-384 signed with SHA-384 while the client's
	 * leaf is P-256 with SHA-256, so the PROXY v2 check can tell whose
	 * algorithms the header carries (the gateway's, spec 2.2.6).
	 */
	EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P384, "srv", srv_uri));
	EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "srv2", srv2_uri));
	snprintf(srv_pem, sizeof(srv_pem), "%s/srv.chain.pem", tok.dir);
	snprintf(srv2_pem, sizeof(srv2_pem), "%s/srv2.chain.pem", tok.dir);
	issue_server_cert(h, srv_uri, "/CN=default.example.test", "DNS:default.example.test",
		srv_pem, EVP_sha384());
	issue_server_cert(h, srv2_uri, "/CN=api.example.test", "DNS:api.example.test", srv2_pem,
		EVP_sha256());

	cp.hsm = h;
	hsm_h = h;
	EXPECT_OK(gw_tls_ctl_create(&cp, &CTL));
	SA = new_stack(mp, &side_a);
	SB = new_stack(mp, &side_b);
	wp.lcore = rte_lcore_id();
	wp.tsc_hz = HZ;
	wp.max_conns = 64;
	wp.max_handshakes = 3;
	wp.handshake_timeout_ms = 2000;
	wp.idle_timeout_ms = 60000;
	EXPECT_OK(gw_tls_worker_create(&wp, &W1));
	EXPECT_OK(gw_tls_worker_create(&wp, &W2));
	EXPECT_EQ(gw_tls_worker_wait_fd(W1), -1); /* signs in place: nothing to wait for */
	EXPECT_OK(gw_snap_pub_create(2, &P1));
	EXPECT_OK(gw_snap_pub_create(2, &P2));
	EXPECT_OK(gw_snap_reader_register(P1, 0));
	EXPECT_OK(gw_snap_reader_register(P2, 0));
	{ /* listeners: worker 1 on 8443 (+ tls-proxy on 8445), worker 2 on 8444 */
		struct gw_svc_tls_params sp = {0};
		struct gw_svc_params up = {0};

		sp.ip = htonl(IP_B);
		sp.port = htons(8443);
		sp.kind = GW_SVC_TLS_ECHO;
		sp.index = 0; /* "l0" */
		sp.pub = P1;
		sp.tw = W1;
		EXPECT_OK(gw_svc_tls_listen(SB, &sp));
		sp.port = htons(8444);
		sp.index = 1; /* "l1" */
		sp.pub = P2;
		sp.tw = W2;
		EXPECT_OK(gw_svc_tls_listen(SB, &sp));
		sp.port = htons(8445);
		sp.index = 2; /* "l2" */
		sp.kind = GW_SVC_TLS_PROXY;
		sp.pub = P1;
		sp.tw = W1;
		EXPECT_OK(gw_svc_tls_listen(SB, &sp));
		/* the upstream: a plain echo on A:9000 (echoes the PROXY header too) */
		up.ip = htonl(IP_A);
		up.port = htons(9000);
		up.kind = GW_SVC_ECHO;
		EXPECT_OK(gw_svc_listen(SA, &up));
	}
	c13 = client_ctx(0);
	c12 = client_ctx(TLS1_2_VERSION);

	{ /* the shared HSM key signs from two threads at once (libp11's session pool) */
		struct gw_snapshot *s = NULL;
		struct gw_snapshot_ext ext;
		struct par_arg a[2];
		pthread_t th[2];

		lcfg_init(&cfg, TC_INTER, TLS1_3_VERSION, 1);
		gw_tls_ctl_ext(CTL, &ext);
		EXPECT_OK(gw_snapshot_build(&cfg.cfg, 7000, &ext, &s));
		if (s != NULL) {
			const struct gw_snap_listener *l = gw_snapshot_listener(s, 0);

			for (int i = 0; i < 2; i++) {
				a[i] = (struct par_arg){.srv = gw_tls_lst_ctx(l->tls), .cli = c13};
				pthread_create(&th[i], NULL, par_handshakes, &a[i]);
			}
			for (int i = 0; i < 2; i++)
				pthread_join(th[i], NULL);
			EXPECT_EQ(a[0].ok, 40);
			EXPECT_EQ(a[1].ok, 40);
			gw_snapshot_destroy(s);
		}
	}
	{ /* a bad identity is refused at build time, naming the listener and the problem */
		struct gw_snapshot *s = NULL;
		struct gw_snapshot_ext ext;

		lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 1);
		cfg.ids[0].key = srv2_uri; /* srv's certificate with srv2's key */
		gw_tls_ctl_ext(CTL, &ext);
		EXPECT_ERR(gw_snapshot_build(&cfg.cfg, 1000, &ext, &s), -GW_E_HSM_KEY);
		EXPECT_CONTAINS(gw_err_msg(), "does not match key");
		EXPECT_CONTAINS(gw_err_msg(), "listener 'l0' identity 0");
		cfg.ids[0].key = "pkcs11:token=gwtls;object=nosuchkey;type=private";
		EXPECT_ERR(gw_snapshot_build(&cfg.cfg, 1001, &ext, &s), -GW_E_HSM_KEY);
		cfg.ids[0].key = srv_uri;
		cfg.ids[0].cert = "/nonexistent/chain.pem";
		EXPECT_ERR(gw_snapshot_build(&cfg.cfg, 1002, &ext, &s), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "/nonexistent/chain.pem");
	}

	/* the seed's three trust cases, TLS 1.3 and 1.2, full handshakes with data */
	{ /* intermediate as anchor: the client sends only its leaf */
		struct gw_tls_stats st;

		lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
		publish(P1, &cfg);
		publish(P2, &cfg);
		EXPECT_TRUE(echo_ok(c13, 8443, &K.leaf, NULL, NULL, NULL, NULL, NULL));
		EXPECT_TRUE(echo_ok(c12, 8443, &K.leaf, NULL, NULL, NULL, NULL, NULL));
		stats(W1, &st);
		EXPECT_EQ(st.hs_ok, 2);
		EXPECT_EQ(st.hs_full, 2);
		EXPECT_EQ(st.hs_fail, 0);
		{ /* both in listener l0's latency histogram (slot 0), none elsewhere */
			struct gw_tls_hs_hist h, h2;
			uint64_t n = 0;

			gw_tls_hs_hist_get(W1, 0, &h);
			for (unsigned k = 0; k <= GW_TLS_HS_N_BOUNDS; k++)
				n += h.b[k];
			EXPECT_EQ(n, 2);
			EXPECT_TRUE(h.sum_tsc > 0);
			gw_tls_hs_hist_get(W1, 2, &h2);
			EXPECT_EQ(h2.sum_tsc, 0);
			gw_tls_hs_hist_get(W1, GW_TLS_HIST_SLOTS, &h2);
			EXPECT_EQ(h2.b[0], 0);
		}
		EXPECT_EQ(st.rx_bytes, 6000);
		EXPECT_EQ(st.tx_bytes, 6000);
		/* the second full handshake of the same chain came from the verify cache */
		EXPECT_EQ(st.verify_cache_hit, 1);
	}
	{ /* pinned leaf */
		lcfg_init(&cfg, TC_PINNED, TLS1_2_VERSION, 3);
		publish(P1, &cfg);
		EXPECT_TRUE(echo_ok(c13, 8443, &K.leaf, NULL, NULL, NULL, NULL, NULL));
		EXPECT_TRUE(echo_ok(c12, 8443, &K.leaf, NULL, NULL, NULL, NULL, NULL));
		/* same subject, other key: bad_certificate, counted as not_pinned */
		struct gw_tls_stats st0, st1;

		stats(W1, &st0);
		EXPECT_EQ(rejected_alert(c13, 8443, &K.impostor, NULL), SSL_AD_BAD_CERTIFICATE);
		stats(W1, &st1);
		EXPECT_EQ(st1.reject[GW_TRUST_R_NOT_PINNED] - st0.reject[GW_TRUST_R_NOT_PINNED], 1);
		EXPECT_EQ(st1.hs_fail_verify - st0.hs_fail_verify, 1);
	}
	{ /* root as anchor: the client must send its intermediate */
		lcfg_init(&cfg, TC_ROOT, TLS1_2_VERSION, 3);
		publish(P1, &cfg);
		EXPECT_TRUE(echo_ok(c13, 8443, &K.leaf, K.inter.x, NULL, NULL, NULL, NULL));
		EXPECT_TRUE(echo_ok(c12, 8443, &K.leaf, K.inter.x, NULL, NULL, NULL, NULL));
		/* without it: unknown_ca */
		EXPECT_EQ(rejected_alert(c13, 8443, &K.leaf, NULL), SSL_AD_UNKNOWN_CA);
		EXPECT_EQ(rejected_alert(c12, 8443, &K.leaf, NULL), SSL_AD_UNKNOWN_CA);
	}
	{ /* rejections: the alert the client gets and the counter by reason */
		struct gw_tls_stats st0, st1;

		lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
		publish(P1, &cfg);
		stats(W1, &st0);
		EXPECT_EQ(rejected_alert(c13, 8443, &K.expired, NULL), SSL_AD_CERTIFICATE_EXPIRED);
		EXPECT_EQ(rejected_alert(c12, 8443, &K.expired, NULL), SSL_AD_CERTIFICATE_EXPIRED);
		EXPECT_EQ(
			rejected_alert(c13, 8443, &K.evil_leaf, K.evil_root.x), SSL_AD_UNKNOWN_CA);
		EXPECT_EQ(
			rejected_alert(c13, 8443, &K.noeku, NULL), SSL_AD_UNSUPPORTED_CERTIFICATE);
		EXPECT_EQ(rejected_alert(c13, 8443, &K.notyet, NULL), SSL_AD_BAD_CERTIFICATE);
		/* no certificate at all: certificate_required (1.3), handshake_failure (1.2) */
		EXPECT_EQ(rejected_alert(c13, 8443, NULL, NULL), 116 /* certificate_required */);
		EXPECT_EQ(rejected_alert(c12, 8443, NULL, NULL), SSL_AD_HANDSHAKE_FAILURE);
		stats(W1, &st1);
		EXPECT_EQ(st1.reject[GW_TRUST_R_EXPIRED] - st0.reject[GW_TRUST_R_EXPIRED], 2);
		EXPECT_EQ(st1.reject[GW_TRUST_R_UNTRUSTED_ISSUER] -
				  st0.reject[GW_TRUST_R_UNTRUSTED_ISSUER] +
				  st1.reject[GW_TRUST_R_SELF_SIGNED] -
				  st0.reject[GW_TRUST_R_SELF_SIGNED],
			1);
		EXPECT_EQ(st1.reject[GW_TRUST_R_EKU] - st0.reject[GW_TRUST_R_EKU], 1);
		EXPECT_EQ(
			st1.reject[GW_TRUST_R_NOT_YET_VALID] - st0.reject[GW_TRUST_R_NOT_YET_VALID],
			1);
		EXPECT_EQ(st1.hs_fail_no_cert - st0.hs_fail_no_cert, 2);
		EXPECT_EQ(st1.hs_fail - st0.hs_fail, 7);
		EXPECT_EQ(st1.hs_ok, st0.hs_ok);
	}
	{ /* SNI picks the identity; an unknown name gets the default */
		struct client cl;
		char cn[128] = "";

		client_open(&cl, c13, 8443, &K.leaf, NULL, "api.example.test", NULL);
		EXPECT_TRUE(client_handshake(&cl));
		X509_NAME_get_text_by_NID(X509_get_subject_name(SSL_get0_peer_certificate(cl.ssl)),
			NID_commonName, cn, sizeof(cn));
		EXPECT_STREQ(cn, "api.example.test");
		client_free(&cl);
		client_open(&cl, c13, 8443, &K.leaf, NULL, "other.example.test", NULL);
		EXPECT_TRUE(client_handshake(&cl));
		X509_NAME_get_text_by_NID(X509_get_subject_name(SSL_get0_peer_certificate(cl.ssl)),
			NID_commonName, cn, sizeof(cn));
		EXPECT_STREQ(cn, "default.example.test");
		client_free(&cl);
	}
	{ /* SNI: an exact name beats a wildcard whichever identity comes first */
		char *exact[] = {"api.example.test"}, *wild[] = {"*.example.test"};

		lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
		/* exact name on identity 0, a wildcard on identity 1 */
		cfg.ids[0].sni = exact;
		cfg.ids[0].n_sni = 1;
		cfg.ids[1].sni = wild;
		cfg.ids[1].n_sni = 1;
		publish(P1, &cfg);
		EXPECT_STREQ(server_cn(c13, 8443, "api.example.test"), "default.example.test");
		EXPECT_STREQ(server_cn(c13, 8443, "web.example.test"), "api.example.test");
		EXPECT_STREQ(server_cn(c13, 8443, "other.test"), "default.example.test");
		EXPECT_STREQ(server_cn(c13, 8443, NULL), "default.example.test");
		/* a wildcard on identity 0, the exact name on identity 1 */
		cfg.ids[0].sni = wild;
		cfg.ids[1].sni = exact;
		publish(P1, &cfg);
		EXPECT_STREQ(server_cn(c13, 8443, "api.example.test"), "api.example.test");
		EXPECT_STREQ(server_cn(c13, 8443, "web.example.test"), "default.example.test");
		EXPECT_STREQ(server_cn(c13, 8443, "a.b.example.test"), "default.example.test");
		EXPECT_STREQ(server_cn(c13, 8443, "other.test"), "default.example.test");
	}
	{ /* resumption across workers (two snapshots, shared keys), then a trust change */
		SSL_CTX *cs[2] = {c13, c12};

		for (int v = 0; v < 2; v++) {
			SSL_SESSION *s1 = NULL, *s2 = NULL;
			struct gw_tls_stats a0, a1;
			bool reused = false;

			lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
			publish(P1, &cfg);
			publish(P2, &cfg);
			stats(W2, &a0);
			EXPECT_TRUE(echo_ok(cs[v], 8443, &K.leaf, NULL, NULL, NULL, &s1, &reused));
			EXPECT_TRUE(!reused);
			EXPECT_TRUE(s1 && SSL_SESSION_is_resumable(s1));
			/* worker 2, its own snapshot: resumes without a certificate */
			EXPECT_TRUE(echo_ok(cs[v], 8444, &K.leaf, NULL, NULL, s1, &s2, &reused));
			EXPECT_TRUE(reused);
			stats(W2, &a1);
			EXPECT_EQ(a1.hs_resumed - a0.hs_resumed, 1);
			if (cs[v] == c13) { /* TLS 1.3: a new ticket after each resumption */
				const unsigned char *t1 = NULL, *t2 = NULL;
				size_t n1 = 0, n2 = 0;
				SSL_SESSION *s3 = NULL;

				SSL_SESSION_get0_ticket(s1, &t1, &n1);
				if (s2 != NULL)
					SSL_SESSION_get0_ticket(s2, &t2, &n2);
				EXPECT_TRUE(s2 && SSL_SESSION_is_resumable(s2) && n2 > 0);
				EXPECT_TRUE(n1 != n2 || (t1 && t2 && memcmp(t1, t2, n1) != 0));
				EXPECT_TRUE(echo_ok(
					cs[v], 8443, &K.leaf, NULL, NULL, s2, &s3, &reused));
				EXPECT_TRUE(reused);
				SSL_SESSION_free(s3);
			}
			/* a reload with the same trust keeps resumption */
			publish(P2, &cfg);
			EXPECT_TRUE(echo_ok(cs[v], 8444, &K.leaf, NULL, NULL, s1, NULL, &reused));
			EXPECT_TRUE(reused);
			/* the trust changes: leaf's issuer no longer trusted */
			lcfg_init(&cfg, TC_INTER2, TLS1_2_VERSION, 3);
			publish(P2, &cfg);
			stats(W2, &a0);
			EXPECT_EQ(resume_alert(cs[v], 8444, &K.leaf, NULL, s1), SSL_AD_UNKNOWN_CA);
			stats(W2, &a1);
			EXPECT_EQ(a1.ticket_stale_trust - a0.ticket_stale_trust, 1);
			EXPECT_EQ(a1.hs_resumed, a0.hs_resumed);
			EXPECT_EQ(a1.reject[GW_TRUST_R_UNTRUSTED_ISSUER] -
					  a0.reject[GW_TRUST_R_UNTRUSTED_ISSUER],
				1);
			SSL_SESSION_free(s1);
			SSL_SESSION_free(s2);
		}
	}
	{ /* tls.session_tickets: false: no ticket issued, none accepted; true again resumes */
		SSL_CTX *cs[2] = {c13, c12};

		for (int v = 0; v < 2; v++) {
			SSL_SESSION *s1 = NULL, *s2 = NULL;
			struct gw_tls_stats a0, a1;
			bool reused = true;

			lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
			publish(P1, &cfg);
			EXPECT_TRUE(echo_ok(cs[v], 8443, &K.leaf, NULL, NULL, NULL, &s1, &reused));
			EXPECT_TRUE(s1 && SSL_SESSION_is_resumable(s1));
			for (unsigned i = 0; i < 3; i++)
				cfg.l[i].tls.no_tickets = true;
			publish(P1, &cfg);
			stats(W1, &a0);
			EXPECT_TRUE(echo_ok(cs[v], 8443, &K.leaf, NULL, NULL, s1, &s2, &reused));
			EXPECT_TRUE(!reused);
			EXPECT_TRUE(s2 && !SSL_SESSION_is_resumable(s2));
			stats(W1, &a1);
			EXPECT_EQ(a1.hs_full - a0.hs_full, 1);
			EXPECT_EQ(a1.hs_resumed, a0.hs_resumed);
			/* tickets on again: the ticket from before still resumes */
			lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
			publish(P1, &cfg);
			EXPECT_TRUE(echo_ok(cs[v], 8443, &K.leaf, NULL, NULL, s1, NULL, &reused));
			EXPECT_TRUE(reused);
			SSL_SESSION_free(s1);
			SSL_SESSION_free(s2);
		}
	}
	{ /* a mesh backend removed (--force): its clients do not resume */
		SSL_CTX *cs[2] = {c13, c12};

		mesh_bundles[0] = mk_stack(K.root.x, NULL);
		mesh_bundles[1] = mk_stack(K.root2.x, NULL);
		for (int v = 0; v < 2; v++) {
			SSL_SESSION *s1 = NULL;
			struct gw_tls_stats a0, a1;
			bool reused = false;

			/* mode mesh with its own identities: trust from the backends' bundles */
			lcfg_init(&cfg, TC_ROOT, TLS1_2_VERSION, 3);
			for (int i = 0; i < 3; i++) {
				cfg.l[i].trust.mode = GW_TRUST_MESH;
				cfg.l[i].trust.n_certs = 0;
			}
			n_mesh_bundles = 2;
			publish(P2, &cfg);
			EXPECT_TRUE(echo_ok(
				cs[v], 8444, &K.leaf_r2, K.inter_r2.x, NULL, NULL, &s1, &reused));
			EXPECT_TRUE(!reused);
			EXPECT_TRUE(echo_ok(
				cs[v], 8444, &K.leaf_r2, K.inter_r2.x, NULL, s1, NULL, &reused));
			EXPECT_TRUE(reused);
			/* backend 2 (root2) goes; the config text is the same */
			n_mesh_bundles = 1;
			publish(P2, &cfg);
			stats(W2, &a0);
			EXPECT_EQ(resume_alert(cs[v], 8444, &K.leaf_r2, K.inter_r2.x, s1),
				SSL_AD_UNKNOWN_CA);
			stats(W2, &a1);
			EXPECT_EQ(a1.ticket_stale_trust - a0.ticket_stale_trust, 1);
			EXPECT_EQ(a1.hs_resumed, a0.hs_resumed);
			/* backend 1's clients still get in (full handshake: new trust) */
			EXPECT_TRUE(
				echo_ok(cs[v], 8444, &K.leaf, K.inter.x, NULL, NULL, NULL, NULL));
			SSL_SESSION_free(s1);
		}
		n_mesh_bundles = 0;
		sk_X509_pop_free(mesh_bundles[0], X509_free);
		sk_X509_pop_free(mesh_bundles[1], X509_free);
	}
	{ /*
	   * Resumption applies the verify cache's validity: an intermediate that
	   * expired (worker 1) or a CRL past nextUpdate (worker 2) ends it, not
	   * only the leaf's notAfter. Both lapse 3 s from now; one wait for both.
	   */
		struct mk_cert ishort = {0}, lshort = {0};
		X509_CRL *crl = mk_crl_issue(&K.inter, NULL, 3);
		char crl_path[160], *crls[1] = {crl_path};
		SSL_SESSION *sa[2] = {NULL, NULL}, *sb[2] = {NULL, NULL};
		SSL_CTX *cs[2] = {c13, c12};
		struct lcfg cfg2;
		struct gw_tls_stats a0, a1, b0, b1;
		bool reused = false;
		FILE *f;

		EXPECT_OK(mk_issue(
			&ishort, &K.root, "short-lived intermediate", true, -3600, 3, NULL, 7001));
		EXPECT_OK(mk_issue(&lshort, &ishort, "client of short", false, -3600, 86400,
			"URI:spiffe://example.org/ns/prod/short", 7002));
		snprintf(crl_path, sizeof(crl_path), "%s/short.crl.pem", tok.dir);
		f = fopen(crl_path, "w");
		EXPECT_TRUE(f && crl && PEM_write_X509_CRL(f, crl));
		if (f)
			fclose(f);
		lcfg_init(&cfg, TC_ROOT, TLS1_2_VERSION, 3);
		publish(P1, &cfg);
		lcfg_init(&cfg2, TC_INTER, TLS1_2_VERSION, 3);
		for (int i = 0; i < 3; i++) {
			cfg2.l[i].trust.crl = crls;
			cfg2.l[i].trust.n_crl = 1;
		}
		publish(P2, &cfg2);
		for (int v = 0; v < 2; v++) {
			EXPECT_TRUE(
				echo_ok(cs[v], 8443, &lshort, ishort.x, NULL, NULL, &sa[v], NULL));
			EXPECT_TRUE(echo_ok(cs[v], 8444, &K.leaf, NULL, NULL, NULL, &sb[v], NULL));
			/* in date: both resume */
			EXPECT_TRUE(echo_ok(
				cs[v], 8443, &lshort, ishort.x, NULL, sa[v], NULL, &reused));
			EXPECT_TRUE(reused);
			EXPECT_TRUE(
				echo_ok(cs[v], 8444, &K.leaf, NULL, NULL, sb[v], NULL, &reused));
			EXPECT_TRUE(reused);
		}
		sleep(4);
		stats(W1, &a0);
		stats(W2, &b0);
		for (int v = 0; v < 2; v++) {
			/* the leaf is still in date; its intermediate is not */
			EXPECT_EQ(resume_alert(cs[v], 8443, &lshort, ishort.x, sa[v]),
				SSL_AD_CERTIFICATE_EXPIRED);
			/* the leaf is in date, the CRL that vouches for it is stale */
			EXPECT_EQ(
				resume_alert(cs[v], 8444, &K.leaf, NULL, sb[v]), SSL_AD_UNKNOWN_CA);
			SSL_SESSION_free(sa[v]);
			SSL_SESSION_free(sb[v]);
		}
		stats(W1, &a1);
		stats(W2, &b1);
		/* (the worker counts ticket_expired_cert on successful handshakes only) */
		EXPECT_EQ(a1.hs_resumed, a0.hs_resumed);
		EXPECT_EQ(b1.hs_resumed, b0.hs_resumed);
		EXPECT_EQ(a1.reject[GW_TRUST_R_EXPIRED] - a0.reject[GW_TRUST_R_EXPIRED], 2);
		EXPECT_EQ(b1.reject[GW_TRUST_R_CRL] - b0.reject[GW_TRUST_R_CRL], 2);
		X509_CRL_free(crl);
		X509_free(ishort.x);
		EVP_PKEY_free(ishort.k);
		X509_free(lshort.x);
		EVP_PKEY_free(lshort.k);
	}
	{ /* ticket key rotation: previous key still resumes, two rotations retire it */
		SSL_SESSION *s1 = NULL;
		bool reused = false;
		struct gw_tls_stats a0, a1;

		lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
		publish(P1, &cfg);
		publish(P2, &cfg);
		EXPECT_TRUE(echo_ok(c13, 8443, &K.leaf, NULL, NULL, NULL, &s1, NULL));
		EXPECT_EQ(gw_tls_ctl_rotate(CTL, time(NULL), false), 0); /* not due */
		EXPECT_EQ(gw_tls_ctl_rotate(CTL, time(NULL), true), 1);
		EXPECT_TRUE(echo_ok(c13, 8444, &K.leaf, NULL, NULL, s1, NULL, &reused));
		EXPECT_TRUE(reused);
		EXPECT_EQ(gw_tls_ctl_rotate(CTL, time(NULL), true), 1);
		stats(W2, &a0);
		EXPECT_TRUE(echo_ok(c13, 8444, &K.leaf, NULL, NULL, s1, NULL, &reused));
		EXPECT_TRUE(!reused);
		stats(W2, &a1);
		EXPECT_EQ(a1.ticket_unknown_key - a0.ticket_unknown_key, 1);
		SSL_SESSION_free(s1);
	}
	{ /* handshake timeout and the bound on concurrent handshakes */
		struct client cl[4];
		struct gw_tls_stats st0, st1;

		stats(W1, &st0);
		/* three silent TCP connections fill worker 1's bound of 3 */
		for (int i = 0; i < 4; i++)
			client_open(&cl[i], c13, 8443, NULL, NULL, NULL, NULL);
		pump(100);
		stats(W1, &st1);
		EXPECT_EQ(st1.refused_busy - st0.refused_busy, 1);
		EXPECT_TRUE(cl[3].closed && cl[3].close_reason == -ECONNRESET);
		EXPECT_EQ(st1.handshaking, 3);
		for (int i = 0; i < 30; i++)
			pump(100000); /* 3 s of our clock */
		stats(W1, &st1);
		EXPECT_EQ(st1.hs_timeout - st0.hs_timeout, 3);
		EXPECT_EQ(st1.handshaking, 0);
		EXPECT_TRUE(cl[0].closed && cl[1].closed && cl[2].closed);
		for (int i = 0; i < 4; i++)
			client_free(&cl[i]);
		/* and the worker still serves */
		EXPECT_TRUE(echo_ok(c13, 8443, &K.leaf, NULL, NULL, NULL, NULL, NULL));
	}
	{ /* backpressure: a client that stops reading stalls the echo, nothing is lost */
		struct client cl;
		size_t n = 2u << 20, sent = 0, got = 0;
		uint8_t *msg = malloc(n), *back = malloc(n);

		for (size_t i = 0; i < n; i++)
			msg[i] = (uint8_t)(i * 13 + (i >> 9));
		client_open(&cl, c13, 8443, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_handshake(&cl));
		/* write only: TLS, both TCP buffers and windows fill, then we are blocked */
		for (int i = 0; i < 400 && sent < n; i++) {
			size_t k = 0;

			if (SSL_write_ex(cl.ssl, msg + sent, RTE_MIN(n - sent, (size_t)16384), &k))
				sent += k;
			ERR_clear_error();
			pump(1000);
		}
		EXPECT_TRUE(sent < n);
		EXPECT_TRUE(sent > 256 * 1024);
		/* now read and write until all came back, in order */
		for (int i = 0; i < 20000 && got < n; i++) {
			size_t k = 0;

			if (sent < n && SSL_write_ex(cl.ssl, msg + sent,
						RTE_MIN(n - sent, (size_t)16384), &k))
				sent += k;
			ERR_clear_error();
			while (got < n && SSL_read_ex(cl.ssl, back + got, n - got, &k) == 1)
				got += k;
			ERR_clear_error();
			pump(1000);
		}
		EXPECT_EQ(got, n);
		EXPECT_TRUE(memcmp(msg, back, n) == 0);
		client_free(&cl);
		free(msg);
		free(back);
	}
	{ /* bulk data both ways, then close_notify from the client */
		struct client cl;
		size_t n = 300000;
		uint8_t *msg = malloc(n), *back = malloc(n);
		struct gw_tls_stats st0, st1;

		for (size_t i = 0; i < n; i++)
			msg[i] = (uint8_t)(i * 31 + (i >> 11));
		stats(W1, &st0);
		client_open(&cl, c13, 8443, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_handshake(&cl));
		EXPECT_EQ(client_roundtrip(&cl, msg, n, back, n), (long)n);
		EXPECT_TRUE(memcmp(msg, back, n) == 0);
		SSL_shutdown(cl.ssl);
		for (int i = 0; i < 50 && !cl.closed; i++) {
			uint8_t b[16];
			size_t k;

			SSL_read_ex(cl.ssl, b, sizeof(b), &k);
			pump(1000);
		}
		EXPECT_TRUE(SSL_get_shutdown(cl.ssl) & SSL_RECEIVED_SHUTDOWN);
		stats(W1, &st1);
		EXPECT_EQ(st1.close_notify_rx - st0.close_notify_rx, 1);
		EXPECT_EQ(st1.close_notify_tx - st0.close_notify_tx, 1);
		EXPECT_EQ(st1.established, 0);
		client_free(&cl);
		free(msg);
		free(back);
	}
	{ /* tls-proxy: PROXY v2 header first, then the bytes, through an upstream that refuses */
		struct client cl;
		uint8_t msg[5000], back[6000];
		long got;
		size_t hl;

		lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
		cfg.ups[0].port = htons(9001); /* refuses (RST) */
		cfg.ups[1].port = htons(9000); /* the echo */
		publish(P1, &cfg);
		for (size_t i = 0; i < sizeof(msg); i++)
			msg[i] = (uint8_t)(i ^ 0x5a);
		client_open(&cl, c13, 8445, &K.leaf, NULL, "svc.example.test", NULL);
		EXPECT_TRUE(client_handshake(&cl));
		/* the echo returns the header, then our bytes */
		got = client_roundtrip(&cl, msg, sizeof(msg), back, sizeof(back));
		EXPECT_TRUE(got > (long)sizeof(msg));
		EXPECT_TRUE(memcmp(back, "\r\n\r\n\0\r\nQUIT\n", 12) == 0);
		hl = got > 16 ? 16 + ((size_t)back[14] << 8 | back[15]) : 0;
		EXPECT_EQ((long)hl + (long)sizeof(msg), got);
		if ((long)hl + (long)sizeof(msg) == got) {
			EXPECT_TRUE(memcmp(back + hl, msg, sizeof(msg)) == 0);
			/* source = the client A:port, destination = B:8445 */
			EXPECT_TRUE(
				memcmp(back + 16, (uint8_t[]){10, 0, 0, 1, 10, 0, 0, 2}, 8) == 0);
			EXPECT_TRUE(back[26] == 8445 >> 8 && back[27] == (8445 & 0xff));
			/* TLVs: authority = SNI, client id = the leaf's SPIFFE ID */
			EXPECT_TRUE(memmem(back, hl, "svc.example.test", 16) != NULL);
			EXPECT_TRUE(memmem(back, hl, "\xe0\x00\x20spiffe://example.org/ns/prod/web",
					    35) != NULL);
			EXPECT_TRUE(memmem(back, hl, "TLSv1.3", 7) != NULL);
			/* PP2_TYPE_SSL: verified client cert on this connection; the
			 * client's CN; SIG_ALG/KEY_ALG of the server's certificate */
			{
				struct pp2_ssl ps;
				char want_cn[64] = "";

				X509_NAME_get_text_by_NID(X509_get_subject_name(K.leaf.x),
					NID_commonName, want_cn, sizeof(want_cn));
				EXPECT_TRUE(pp2_ssl_parse(back, hl, &ps));
				EXPECT_EQ(ps.client, GW_PP2_CLIENT_SSL | GW_PP2_CLIENT_CERT_CONN |
							     GW_PP2_CLIENT_CERT_SESS);
				EXPECT_EQ(ps.verify, 0);
				EXPECT_STREQ(ps.version, "TLSv1.3");
				EXPECT_STREQ(ps.cn, want_cn);
				EXPECT_STREQ(ps.sig_alg, "ecdsa-with-SHA384");
				EXPECT_STREQ(ps.key_alg, "EC384");
				/* and not the client's (P-256, SHA-256) */
				EXPECT_EQ(X509_get_signature_nid(K.leaf.x), NID_ecdsa_with_SHA256);
				EXPECT_EQ(EVP_PKEY_get_bits(X509_get0_pubkey(K.leaf.x)), 256);
			}
		}
		/* close_notify from the client closes the pair */
		SSL_shutdown(cl.ssl);
		for (int i = 0; i < 100 && !cl.closed; i++) {
			uint8_t b[16];
			size_t k;

			SSL_read_ex(cl.ssl, b, sizeof(b), &k);
			pump(1000);
		}
		EXPECT_TRUE(SSL_get_shutdown(cl.ssl) & SSL_RECEIVED_SHUTDOWN);
		client_free(&cl);
		{
			struct gw_tls_stats st;

			stats(W1, &st);
			EXPECT_EQ(st.established, 0);
		}
	}
	{ /* max_fragment_length 512, TCP room for less than one record: no byte lost or zeroed */
		struct gw_tcp_listen_params lp = {0};
		struct client cl;
		static uint8_t pat[400000], back[400000];
		size_t off = 0, got = 0, ovh = 0, left;
		long w;

		for (size_t i = 0; i < sizeof(pat); i++)
			pat[i] = (uint8_t)(1 + (i * 7 + (i >> 8)) % 251); /* never 0 */
		lp.laddr = htonl(IP_B);
		lp.lport = htons(8450);
		lp.accept = raw_accept;
		EXPECT_OK(gw_tcp_listen(SB, &lp));
		client_open(&cl, c13, 8450, &K.leaf, NULL, NULL, NULL);
		SSL_set_tlsext_max_fragment_length(cl.ssl, TLSEXT_max_fragment_length_512);
		EXPECT_TRUE(client_handshake(&cl));
		for (int i = 0; i < 20; i++) {
			uint8_t b;
			size_t k;

			(void)SSL_peek_ex(cl.ssl, &b, 1, &k); /* the tickets */
			ERR_clear_error();
			pump(1000);
		}
		EXPECT_TRUE(raw_t != NULL);
		if (raw_t) {
			struct gw_tcp_conn *sc = gw_tls_tcp(raw_t);
			size_t room = gw_tcp_tx_space(sc);

			EXPECT_EQ(gw_tls_write(raw_t, pat, 512), 512);
			off = 512;
			ovh = room - gw_tcp_tx_space(sc) - 512; /* record overhead on the wire */
			/* fill the send buffer (no pump: nothing leaves) until the
			 * room is between a record's plaintext and its wire size */
			left = gw_tcp_tx_space(sc) - (512 + ovh / 2);
			while (left > 3 * (512 + ovh)) {
				EXPECT_EQ(gw_tls_write(raw_t, pat + off, 512), 512);
				off += 512;
				left -= 512 + ovh;
			}
			for (int k = 3; k > 0; k--) { /* the rest in three records */
				size_t x = (left - (size_t)k * ovh) / (size_t)k;

				EXPECT_EQ(gw_tls_write(raw_t, pat + off, x), (long)x);
				off += x;
				left -= x + ovh;
			}
			EXPECT_EQ(gw_tcp_tx_space(sc), 512 + ovh / 2);
			/* offered 16 KiB: one record of 512 is what is taken */
			w = gw_tls_write(raw_t, pat + off, 16384);
			EXPECT_EQ(w, 512);
			off += w > 0 ? (size_t)w : 0;
		}
		/* the rest as the windows allow; the client reads it all */
		for (int i = 0; i < 100000 && got < sizeof(back) && !cl.closed; i++) {
			size_t k = 0;

			if (raw_t && off < 300000 && gw_tls_write_room(raw_t)) {
				w = gw_tls_write(raw_t, pat + off,
					RTE_MIN(sizeof(pat) - off, (size_t)16384));
				off += w > 0 ? (size_t)w : 0;
			}
			while (got < off && SSL_read_ex(cl.ssl, back + got, off - got, &k) == 1)
				got += k;
			ERR_clear_error();
			if (off >= 300000 && got == off)
				break;
			pump(1000);
		}
		EXPECT_EQ(got, off);
		EXPECT_TRUE(off >= 300000 && memcmp(pat, back, off) == 0);
		client_free(&cl);
	}
	{ /* a stale error in the thread's queue fails no read or write that would succeed */
		struct gw_tcp_listen_params lp = {0};
		struct client cl;
		struct gw_tls_stats st0, st1;
		static uint8_t pat[300000], back[300000];
		uint8_t in[4096];
		size_t off = 0, got = 0, k = 0, r;
		long n = 0;
		bool filled = false;

		for (size_t i = 0; i < sizeof(pat); i++)
			pat[i] = (uint8_t)(1 + (i * 13 + (i >> 7)) % 251);
		lp.laddr = htonl(IP_B);
		lp.lport = htons(8451);
		lp.accept = raw_accept;
		EXPECT_OK(gw_tcp_listen(SB, &lp));
		client_open(&cl, c13, 8451, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_handshake(&cl));
		for (int i = 0; i < 20; i++) {
			uint8_t b;

			(void)SSL_peek_ex(cl.ssl, &b, 1, &k); /* the tickets */
			ERR_clear_error();
			pump(1000);
		}
		EXPECT_TRUE(raw_t != NULL);
		stats(W1, &st0);
		if (raw_t) {
			struct gw_tcp_conn *sc = gw_tls_tcp(raw_t);

			/* nothing to read: SSL_get_error would say SSL, not WANT_READ */
			ERR_raise(ERR_LIB_SSL, SSL_R_BAD_RECORD_TYPE);
			EXPECT_EQ(gw_tls_read(raw_t, in, sizeof(in)), 0);
			EXPECT_TRUE(SSL_write_ex(cl.ssl, pat, 3000, &k) == 1);
			for (int i = 0; i < 10 && n < 3000; i++) {
				pump(1000);
				ERR_raise(ERR_LIB_SSL, SSL_R_BAD_RECORD_TYPE);
				n = gw_tls_read(raw_t, in, sizeof(in));
			}
			EXPECT_EQ(n, 3000);
			EXPECT_TRUE(memcmp(in, pat, 3000) == 0);
			/* no pump: records until the last one straddles the full TCP
			 * buffer, which OpenSSL then holds (WANT_WRITE under the hood) */
			while (off + 16384 <= sizeof(pat) && (r = gw_tls_write_room(raw_t)) > 0) {
				ERR_raise(ERR_LIB_SSL, SSL_R_BAD_RECORD_TYPE);
				n = gw_tls_write(raw_t, pat + off, r);
				EXPECT_EQ(n, (long)r);
				if (n <= 0)
					break;
				off += (size_t)n;
				filled = gw_tcp_tx_space(sc) == 0;
			}
			EXPECT_TRUE(filled);
		}
		/* the rest as the windows allow, a stale error before each write */
		for (int i = 0; i < 100000 && got < sizeof(back) && !cl.closed; i++) {
			if (raw_t && off < sizeof(pat)) {
				ERR_raise(ERR_LIB_SSL, SSL_R_BAD_RECORD_TYPE);
				r = gw_tls_write_room(raw_t);
				ERR_raise(ERR_LIB_SSL, SSL_R_BAD_RECORD_TYPE);
				n = r ? gw_tls_write(
						raw_t, pat + off, RTE_MIN(r, sizeof(pat) - off))
				      : 0;
				EXPECT_TRUE(n >= 0);
				off += n > 0 ? (size_t)n : 0;
			}
			ERR_clear_error(); /* the client's own calls start clean */
			while (got < off && SSL_read_ex(cl.ssl, back + got, off - got, &k) == 1)
				got += k;
			ERR_clear_error();
			if (off == sizeof(pat) && got == off)
				break;
			pump(1000);
		}
		EXPECT_EQ(got, sizeof(pat));
		EXPECT_TRUE(memcmp(pat, back, got) == 0);
		stats(W1, &st1);
		EXPECT_EQ(st1.rec_err, st0.rec_err);
		ERR_clear_error();
		client_free(&cl);
	}
	{ /* max_fragment_length 512, slow reader: tls-echo returns every byte, no zeros */
		struct client cl;
		size_t n = 1u << 20;
		uint8_t *msg = malloc(n), *back = calloc(1, n);

		for (size_t i = 0; i < n; i++)
			msg[i] = (uint8_t)(1 + (i * 29 + (i >> 10)) % 251); /* never 0 */
		client_open(&cl, c13, 8443, &K.leaf, NULL, NULL, NULL);
		SSL_set_tlsext_max_fragment_length(cl.ssl, TLSEXT_max_fragment_length_512);
		EXPECT_TRUE(client_handshake(&cl));
		EXPECT_EQ(SSL_SESSION_get_max_fragment_length(SSL_get0_session(cl.ssl)),
			TLSEXT_max_fragment_length_512);
		EXPECT_EQ(slow_roundtrip(&cl, msg, n, back, n, 700), n);
		EXPECT_TRUE(memcmp(msg, back, n) == 0);
		EXPECT_TRUE(!cl.closed);
		client_free(&cl);
		free(msg);
		free(back);
	}
	{ /* max_fragment_length 512, slow reader: the same through tls-proxy's upstream */
		struct client cl;
		size_t n = 1u << 19, hl = 0, got;
		uint8_t *msg = malloc(n), *back = calloc(1, n + 2048);

		for (size_t i = 0; i < n; i++)
			msg[i] = (uint8_t)(1 + (i * 17 + (i >> 9)) % 251);
		client_open(&cl, c13, 8445, &K.leaf, NULL, NULL, NULL);
		SSL_set_tlsext_max_fragment_length(cl.ssl, TLSEXT_max_fragment_length_512);
		EXPECT_TRUE(client_handshake(&cl));
		/* the upstream echoes the PROXY v2 header first: learn its length */
		got = slow_roundtrip(&cl, msg, n, back, 16, 16);
		if (got == 16)
			hl = 16 + ((size_t)back[14] << 8 | back[15]);
		got += slow_roundtrip(&cl, NULL, 0, back + got, hl + n - got, 700);
		EXPECT_EQ(got, hl + n);
		EXPECT_TRUE(hl && memcmp(msg, back + hl, n) == 0);
		EXPECT_TRUE(!cl.closed);
		client_free(&cl);
		free(msg);
		free(back);
	}
	{ /* tls-proxy: the mbuf pool runs dry while client bytes arrive: wait, lose nothing */
		struct client cl;
		size_t n = 200000, hl = 0, got = 0, sent = 0;
		uint8_t *msg = malloc(n), *back = calloc(1, n + 2048);
		static struct rte_mbuf *hog[20000];
		unsigned nh = 0;

		for (size_t i = 0; i < n; i++)
			msg[i] = (uint8_t)(i * 11 + (i >> 8));
		client_open(&cl, c13, 8445, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_handshake(&cl));
		for (int i = 0; i < 20; i++)
			pump(1000); /* the upstream connects */
		while (sent < n) {
			size_t k = 0;

			if (!SSL_write_ex(cl.ssl, msg + sent, RTE_MIN(n - sent, (size_t)16384), &k))
				break;
			sent += k;
		}
		ERR_clear_error();
		pump(1000); /* A's segments are on the wire to B ... */
		while (nh < RTE_DIM(hog) && (hog[nh] = rte_pktmbuf_alloc(mp)) != NULL)
			nh++;
		for (int i = 0; i < 5; i++)
			pump(1000); /* ... and B meets an empty pool relaying them */
		EXPECT_TRUE(!cl.closed);
		for (unsigned i = 0; i < nh; i++)
			rte_pktmbuf_free(hog[i]);
		for (int i = 0; i < 20000 && !cl.closed && got < hl + n; i++) {
			size_t k = 0;

			if (sent < n && SSL_write_ex(cl.ssl, msg + sent,
						RTE_MIN(n - sent, (size_t)16384), &k))
				sent += k;
			ERR_clear_error();
			while (SSL_read_ex(cl.ssl, back + got, n + 2048 - got, &k) == 1)
				got += k;
			ERR_clear_error();
			if (!hl && got >= 16)
				hl = 16 + ((size_t)back[14] << 8 | back[15]);
			pump(1000);
		}
		EXPECT_TRUE(!cl.closed);
		EXPECT_EQ(got, hl + n);
		EXPECT_TRUE(hl && got == hl + n && memcmp(msg, back + hl, n) == 0);
		client_free(&cl);
		free(msg);
		free(back);
	}
	{ /* tls-proxy with 300 upstreams that all refuse: tried once each, then the end */
		static struct gw_cfg_ep many[300];
		struct client cl;
		struct lcfg mc;

		lcfg_init(&mc, TC_INTER, TLS1_2_VERSION, 3);
		for (unsigned i = 0; i < RTE_DIM(many); i++) {
			many[i].ip = htonl(IP_A);
			many[i].port = htons(9001); /* nobody: RST */
		}
		mc.l[2].upstream.servers = many;
		mc.l[2].upstream.n_servers = RTE_DIM(many);
		publish(P1, &mc);
		client_open(&cl, c13, 8445, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_handshake(&cl));
		for (int i = 0; i < 5000 && !cl.closed; i++)
			pump(1000);
		EXPECT_TRUE(cl.closed); /* a uint8_t count of tries wrapped at 256: forever */
		client_free(&cl);
		publish(P1, &cfg);
	}
	{ /* a failed handshake's peer that keeps trickling bytes is reset at the bound */
		struct client cl;
		struct gw_tls_stats st0, st1;
		int i;

		stats(W1, &st0);
		client_open(&cl, c13, 8443, NULL, NULL, NULL, NULL); /* no client cert */
		(void)client_handshake(&cl); /* TLS 1.3: the client is done first */
		for (i = 0; i < 30 && !cl.closed; i++) {
			/* a byte a second, on the raw TCP connection */
			if (cl.c && gw_tcp_write(cl.c, "x", 1) < 0)
				break;
			for (int k = 0; k < 10 && !cl.closed; k++)
				pump(100000);
		}
		stats(W1, &st1);
		EXPECT_EQ(st1.hs_fail_no_cert - st0.hs_fail_no_cert, 1);
		EXPECT_TRUE(cl.closed && cl.close_reason == -ECONNRESET);
		EXPECT_TRUE(i <= 4); /* within the 2 s bound (+ a round) */
		EXPECT_EQ(st1.linger_rst - st0.linger_rst, 1);
		client_free(&cl);
	}
	{ /* the HSM key of identity 1 deleted: clear failure and counter; a reload says why */
		struct gw_tls_stats st0, st1;
		struct gw_snapshot *s = NULL;
		struct gw_snapshot_ext ext;
		struct client cl;

		lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
		publish(P1, &cfg);
		EXPECT_EQ(raw_destroy_key("gwtls", "srv2"), 0);
		stats(W1, &st0);
		client_open(&cl, c13, 8443, &K.leaf, NULL, "api.example.test", NULL);
		EXPECT_TRUE(!client_handshake(&cl));
		client_free(&cl);
		stats(W1, &st1);
		EXPECT_EQ(st1.hs_fail_hsm - st0.hs_fail_hsm, 1);
		/* the default identity's key is still there */
		EXPECT_TRUE(echo_ok(c13, 8443, &K.leaf, NULL, NULL, NULL, NULL, NULL));
		/* a reload now is refused with the reason; the running snapshot stays */
		gw_tls_ctl_ext(CTL, &ext);
		EXPECT_ERR(gw_snapshot_build(&cfg.cfg, 5000, &ext, &s), -GW_E_HSM_KEY);
		EXPECT_CONTAINS(gw_err_msg(), "identity 1");
		/*
		 * Recovery without a restart: a new key for identity 1 in the token
		 * and its certificate, then a reload. (Copying the old token files
		 * back is not seen by a SoftHSM already loaded in the process: it
		 * keeps the object deleted, so that is no test of ours.)
		 */
		EXPECT_OK(gw_hsm_keygen(hsm_h, GW_HSM_KEY_EC_P256, "srv2b", srv2_uri));
		issue_server_cert(hsm_h, srv2_uri, "/CN=api.example.test", "DNS:api.example.test",
			srv2_pem, EVP_sha256());
		publish(P1, &cfg);
		EXPECT_TRUE(
			echo_ok(c13, 8443, &K.leaf, NULL, "api.example.test", NULL, NULL, NULL));
		stats(W1, &st0);
		EXPECT_EQ(st0.hs_fail_hsm, st1.hs_fail_hsm);
	}

#ifdef GW_TEST_HOOKS
	/* an RSA identity in the token, made by the first block, used by both */
	char rsa_uri[GW_HSM_URI_MAX], rsa_pem[160];

	{ /* asynchronous HSM signatures: a worker never waits for the token */
		struct gw_hsm_async_params hp1 = {.threads = 1, .queue = 2};
		struct gw_tls_stats st0, st1;
		struct client a, b, c, d, f[4];
		SSL_SESSION *sess = NULL;
		uint8_t msg[600], back[600];

		for (size_t i = 0; i < sizeof(msg); i++)
			msg[i] = (uint8_t)(i * 13);
		lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
		publish(P1, &cfg);
		/* one HSM thread, a queue of two: the bound is reachable */
		EXPECT_OK(gw_hsm_async_start(&hp1));
		EXPECT_TRUE(gw_hsm_async_running());
		W3 = async_echo_worker(&wp, 8446, 500);

		/* parked: the worker serves others meanwhile, then the handshake completes */
		client_open(&a, c13, 8446, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_handshake_rt(&a));
		EXPECT_EQ(client_roundtrip(&a, msg, sizeof(msg), back, sizeof(back)),
			(long)sizeof(msg));
		sess = SSL_get1_session(a.ssl);
		stats(W3, &st0);
		EXPECT_EQ(st0.hsm_async_parked, 1);
		gw_hsm_async_test_hold(true);
		client_open(&b, c13, 8446, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_until_parked(&b, W3));
		/* the worker hears it waits: its idle sleeps stay short */
		EXPECT_EQ(gw_tls_worker_poll(W3, now_tsc),
			GW_TLS_POLL_PARKED | GW_TLS_POLL_HANDSHAKING);
		stats(W3, &st1);
		EXPECT_EQ(st1.handshaking, 1);
		/* an established connection echoes, a resumed handshake completes */
		EXPECT_EQ(client_roundtrip(&a, msg, sizeof(msg), back, sizeof(back)),
			(long)sizeof(msg));
		EXPECT_TRUE(memcmp(msg, back, sizeof(msg)) == 0);
		client_open(&c, c13, 8446, &K.leaf, NULL, NULL, sess);
		EXPECT_TRUE(client_handshake_rt(&c));
		EXPECT_TRUE(SSL_session_reused(c.ssl));
		EXPECT_TRUE(!b.hs_done && !b.closed);
		{ /* the wait fd (idle: interrupt) fires when the answer comes,
		   * not before: a worker asleep in epoll wakes for it */
			struct pollfd pf = {.fd = gw_tls_worker_wait_fd(W3), .events = POLLIN};
			uint64_t v;

			EXPECT_TRUE(pf.fd >= 0);
			while (read(pf.fd, &v, sizeof(v)) == sizeof(v))
				; /* a's answer */
			EXPECT_EQ(poll(&pf, 1, 0), 0);
			gw_hsm_async_test_hold(false);
			EXPECT_EQ(poll(&pf, 1, 20000), 1); /* liveness, not speed */
			EXPECT_TRUE(read(pf.fd, &v, sizeof(v)) == sizeof(v) && v == 1);
		}
		/* the client checked the chain and the CertificateVerify made on the HSM thread */
		EXPECT_TRUE(client_handshake_rt(&b));
		EXPECT_EQ(SSL_get_verify_result(b.ssl), X509_V_OK);
		EXPECT_EQ(client_roundtrip(&b, msg, sizeof(msg), back, sizeof(back)),
			(long)sizeof(msg));
		stats(W3, &st1);
		EXPECT_EQ(st1.hs_fail, st0.hs_fail);
		EXPECT_EQ(st1.hsm_async_parked - st0.hsm_async_parked, 1);
		EXPECT_EQ(gw_tls_worker_poll(W3, now_tsc), 0u); /* nothing parked, no handshake */
		client_free(&a);
		client_free(&b);
		client_free(&c);
		SSL_SESSION_free(sess);

		/* timeout, with a reload meanwhile: hs_fail_hsm, the late answer dropped */
		stats(W3, &st0);
		gw_hsm_async_test_hold(true);
		client_open(&d, c13, 8446, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_until_parked(&d, W3));
		publish(P1, &cfg); /* the parked connection keeps the old snapshot's key */
		for (int i = 0; i < 6 && !d.closed; i++) {
			ERR_clear_error();
			(void)SSL_do_handshake(d.ssl);
			pump(100000); /* 0.1 s of our clock */
		}
		client_drain(&d);
		stats(W3, &st1);
		EXPECT_EQ(st1.hsm_timeout - st0.hsm_timeout, 1);
		EXPECT_EQ(st1.hs_fail_hsm - st0.hs_fail_hsm, 1);
		EXPECT_EQ(st1.handshaking, 0);
		EXPECT_TRUE(d.closed || d.alert_rx >= 0);
		client_free(&d);
		gw_hsm_async_test_hold(false);
		usleep(50000); /* the HSM thread meets the abandoned request */
		pump(100);

		/* a connection reset while its signature is in flight */
		gw_hsm_async_test_hold(true);
		client_open(&d, c13, 8446, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_until_parked(&d, W3));
		client_free(&d); /* RST: the server frees the connection now */
		stats(W3, &st1);
		EXPECT_EQ(st1.handshaking, 0);
		gw_hsm_async_test_hold(false);
		usleep(50000);
		pump(100);
		client_open(&d, c13, 8446, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_handshake_rt(&d));
		client_free(&d);

		/* a reload while a signature is in flight: the handshake completes on the
		 * old snapshot's key (the request holds it) */
		stats(W3, &st0);
		gw_hsm_async_test_hold(true);
		client_open(&d, c13, 8446, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_until_parked(&d, W3));
		publish(P1, &cfg);
		publish(P1, &cfg); /* twice: the first old snapshot is reclaimable now */
		gw_hsm_async_test_hold(false);
		EXPECT_TRUE(client_handshake_rt(&d));
		EXPECT_EQ(client_roundtrip(&d, msg, sizeof(msg), back, sizeof(back)),
			(long)sizeof(msg));
		client_free(&d);
		stats(W3, &st1);
		EXPECT_EQ(st1.hs_fail - st0.hs_fail, 0);

		/* the key disappears from the token while its signature is queued */
		{
			char gone_uri[GW_HSM_URI_MAX], gone_pem[160];

			EXPECT_OK(gw_hsm_keygen(hsm_h, GW_HSM_KEY_EC_P256, "srvgone", gone_uri));
			snprintf(gone_pem, sizeof(gone_pem), "%s/srvgone.chain.pem", tok.dir);
			issue_server_cert(hsm_h, gone_uri, "/CN=default.example.test",
				"DNS:default.example.test", gone_pem, EVP_sha256());
			cfg.ids[0].key = gone_uri;
			cfg.ids[0].cert = gone_pem;
			publish(P1, &cfg);
			stats(W3, &st0);
			gw_hsm_async_test_hold(true);
			client_open(&d, c13, 8446, &K.leaf, NULL, NULL, NULL);
			EXPECT_TRUE(client_until_parked(&d, W3));
			EXPECT_EQ(raw_destroy_key("gwtls", "srvgone"), 0);
			gw_hsm_async_test_hold(false);
			EXPECT_TRUE(!client_handshake_rt(&d));
			client_free(&d);
			stats(W3, &st1);
			EXPECT_EQ(st1.hs_fail_hsm - st0.hs_fail_hsm, 1);
			EXPECT_EQ(st1.hsm_timeout - st0.hsm_timeout, 0);
			EXPECT_EQ(st1.handshaking, 0);
			lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
			publish(P1, &cfg);
		}

		/* the queue full: one request on the (held) thread, two queued, the 4th refused */
		stats(W3, &st0);
		gw_hsm_async_test_hold(true);
		client_open(&f[0], c13, 8446, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_until_parked(&f[0], W3));
		usleep(50000); /* the thread took it off the queue */
		for (int i = 1; i < 3; i++) {
			client_open(&f[i], c13, 8446, &K.leaf, NULL, NULL, NULL);
			EXPECT_TRUE(client_until_parked(&f[i], W3));
		}
		client_open(&f[3], c13, 8446, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(!client_handshake_rt(&f[3]));
		stats(W3, &st1);
		EXPECT_EQ(st1.hsm_queue_full - st0.hsm_queue_full, 1);
		EXPECT_EQ(st1.hs_fail_hsm - st0.hs_fail_hsm, 1);
		gw_hsm_async_test_hold(false);
		for (int i = 0; i < 3; i++)
			EXPECT_TRUE(client_handshake_rt(&f[i]));
		for (int i = 0; i < 4; i++)
			client_free(&f[i]);

		/* RSA: TLS 1.3 (PSS) and 1.2, parked and completed */
		EXPECT_OK(gw_hsm_keygen(hsm_h, GW_HSM_KEY_RSA_2048, "srvrsa", rsa_uri));
		snprintf(rsa_pem, sizeof(rsa_pem), "%s/srvrsa.chain.pem", tok.dir);
		issue_server_cert(hsm_h, rsa_uri, "/CN=default.example.test",
			"DNS:default.example.test", rsa_pem, EVP_sha256());
		cfg.ids[0].key = rsa_uri;
		cfg.ids[0].cert = rsa_pem;
		publish(P1, &cfg);
		for (int v = 0; v < 2; v++) {
			stats(W3, &st0);
			client_open(&a, v ? c12 : c13, 8446, &K.leaf, NULL, NULL, NULL);
			EXPECT_TRUE(client_handshake_rt(&a));
			EXPECT_EQ(SSL_get_verify_result(a.ssl), X509_V_OK);
			EXPECT_EQ(
				EVP_PKEY_get_base_id(
					SSL_get0_peer_certificate(a.ssl)
						? X509_get0_pubkey(SSL_get0_peer_certificate(a.ssl))
						: NULL),
				EVP_PKEY_RSA);
			EXPECT_EQ(client_roundtrip(&a, msg, sizeof(msg), back, sizeof(back)),
				(long)sizeof(msg));
			client_free(&a);
			stats(W3, &st1);
			EXPECT_EQ(st1.hsm_async_parked - st0.hsm_async_parked, 1);
			EXPECT_EQ(st1.hs_ok - st0.hs_ok, 1);
		}
		lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
		publish(P1, &cfg);

		/* shutdown with a signature in flight: the worker goes, then the pool */
		gw_hsm_async_test_hold(true);
		client_open(&d, c13, 8446, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_until_parked(&d, W3));
		gw_tls_worker_destroy(W3);
		W3 = NULL;
		gw_hsm_async_test_hold(false);
		gw_hsm_async_stop();
		EXPECT_TRUE(!gw_hsm_async_running());
		client_free(&d);
		ASYNC_cleanup_thread();
	}
	{ /* hsm.inline_below: signing in place while the HSM is fast and idle */
		struct gw_hsm_async_params hp1 = {
			.threads = 2, .queue = 8, .inline_below_us = 80000};
		struct gw_tls_stats st0, st1;
		struct client a, b;
		bool back_in_place = false;
		int n_async = 0;
		char how;

		lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
		publish(P1, &cfg);
		EXPECT_OK(gw_hsm_async_start(&hp1));
		W3 = async_echo_worker(&wp, 8447, 20000);
		/* the first signature goes to an HSM thread: nothing is known of the HSM */
		EXPECT_EQ(gw_hsm_async_sign_us(false), UINT_MAX);
		EXPECT_TRUE(signed_how(c13, 8447, W3, &how) && how == 'p');
		EXPECT_TRUE(gw_hsm_async_sign_us(false) < 80000);
		/* known fast, nothing in flight: in place, and the client checks the signature */
		EXPECT_TRUE(signed_how(c13, 8447, W3, &how) && how == 'i');
		stats(W3, &st0);

		/* a signature queued for an HSM thread: the next one queues too */
		gw_hsm_async_test_hold(true);
		gw_hsm_async_test_set_sign_us(false, UINT_MAX); /* as at start: a goes async */
		client_open(&a, c13, 8447, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_until_parked(&a, W3));
		gw_hsm_async_test_set_sign_us(false, 10); /* fast, but a is in flight */
		client_open(&b, c13, 8447, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_until_parked(&b, W3));
		stats(W3, &st1);
		EXPECT_EQ(st1.hsm_async_parked - st0.hsm_async_parked, 2);
		EXPECT_EQ(st1.hsm_inline - st0.hsm_inline, 0);
		gw_hsm_async_test_hold(false);
		EXPECT_TRUE(client_hs_echo_rt(&a));
		EXPECT_TRUE(client_hs_echo_rt(&b));
		client_free(&a);
		client_free(&b);

		/* the HSM turns slow: one signature in place, then none until it is fast again */
		gw_hsm_async_test_set_sign_us(false, 10);
		gw_hsm_async_test_delay(150000);
		EXPECT_TRUE(signed_how(c13, 8447, W3, &how) && how == 'i');
		EXPECT_TRUE(gw_hsm_async_sign_us(false) >= 150000);
		client_open(&a, c13, 8447, &K.leaf, NULL, NULL, NULL);
		EXPECT_TRUE(client_until_parked(&a, W3)); /* the worker does not wait */
		EXPECT_TRUE(client_hs_echo_rt(&a));
		client_free(&a);
		gw_hsm_async_test_delay(0);
		/* fast answers from the HSM threads pull the mean back under 80 ms:
		 * 150 ms * (7/8)^n < 80 ms takes n >= 5 of them */
		for (int i = 0; i < 40 && !back_in_place; i++) {
			EXPECT_TRUE(signed_how(c13, 8447, W3, &how) && how != '?');
			back_in_place = how == 'i';
			n_async += !back_in_place;
		}
		EXPECT_TRUE(back_in_place);
		EXPECT_TRUE(n_async >= 5);
		printf("# in place again after %d signatures on the HSM threads\n", n_async);

		/* RSA keys keep a mean of their own: first async, then in place */
		cfg.ids[0].key = rsa_uri;
		cfg.ids[0].cert = rsa_pem;
		publish(P1, &cfg);
		EXPECT_EQ(gw_hsm_async_sign_us(true), UINT_MAX);
		EXPECT_TRUE(signed_how(c13, 8447, W3, &how) && how == 'p'); /* TLS 1.3: PSS */
		EXPECT_TRUE(signed_how(c12, 8447, W3, &how) && how == 'i'); /* 1.2: PKCS#1 */
		EXPECT_TRUE(gw_hsm_async_sign_us(true) < 80000);
		stats(W3, &st1);
		EXPECT_EQ(st1.hs_fail, 0);
		lcfg_init(&cfg, TC_INTER, TLS1_2_VERSION, 3);
		publish(P1, &cfg);
		gw_tls_worker_destroy(W3);
		W3 = NULL;
		gw_hsm_async_stop();
		ASYNC_cleanup_thread();
	}
#else
	printf("# async HSM cases skipped: built without -Dtest_hooks=true\n");
#endif

	/* teardown: connections, workers, stacks, snapshots, keys, the token */
	gw_tls_worker_destroy(W1);
	gw_tls_worker_destroy(W2);
	W1 = W2 = NULL;
	gw_tcp_stack_destroy(SA);
	gw_tcp_stack_destroy(SB);
	gw_snap_reader_unregister(P1, 0);
	gw_snap_reader_unregister(P2, 0);
	gw_snap_pub_destroy(P1);
	gw_snap_pub_destroy(P2);
	gw_tls_ctl_destroy(CTL);
	SSL_CTX_free(c13);
	SSL_CTX_free(c12);
	mk_corpus_free(&K);
	gw_hsm_close(h);
	remove_dir();
	GW_TEST_END();
}
