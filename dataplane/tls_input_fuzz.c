/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tls_input_fuzz.c - libFuzzer target for the TLS input path: bytes from the
 * network, through our TCP and the custom BIO, into a server SSL driven by
 * dataplane/tls.c (tls-echo), with the SSL_CTX that control/tls_ctx.c builds
 * (key in a SoftHSM token made at start-up, client_auth optional with a
 * pinned trust, so Certificate messages reach the verify callback).
 *
 * Each input is one TCP connection from a second in-process stack: the
 * input, split at every 0xff 0xfe marker into separate writes (so record
 * boundaries land across segments), is sent in order, the stacks run until
 * quiet, then the connection is aborted. Seeds (tests/fuzz/tls_input/) are
 * real TLS 1.3 and 1.2 ClientHellos. No mocks: production code only.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "gw_dpdk_test.h"
#include "gw_softhsm.h"
#include "hsm.h"
#include "snapshot.h"
#include "svc_tls.h"
#include "tcp.h"
#include "tls.h"
#include "tls_ctx.h"

#define IP_A 0x0a000001u
#define IP_B 0x0a000002u
#define QMAX 4096

struct wire {
	struct rte_mbuf *q[QMAX];
	unsigned n;
};
static struct wire to_a, to_b;
static struct gw_tcp_stack *SA, *SB;
static struct gw_tls_worker *W;
static struct gw_snap_pub *P;
static uint64_t now = 1;
static struct gw_softhsm tok;

static void
out_b(void *ctx, struct rte_mbuf *m)
{
	(void)ctx;
	if (to_b.n == QMAX)
		rte_pktmbuf_free(m);
	else
		to_b.q[to_b.n++] = m;
}

static void
out_a(void *ctx, struct rte_mbuf *m)
{
	(void)ctx;
	if (to_a.n == QMAX)
		rte_pktmbuf_free(m);
	else
		to_a.q[to_a.n++] = m;
}

static unsigned
pump(void)
{
	struct rte_mbuf *q[QMAX];
	unsigned n, moved = 0;

	n = to_b.n;
	memcpy(q, to_b.q, n * sizeof(q[0]));
	to_b.n = 0;
	moved += n;
	for (unsigned i = 0; i < n; i++)
		gw_tcp_input(SB, q[i]);
	n = to_a.n;
	memcpy(q, to_a.q, n * sizeof(q[0]));
	to_a.n = 0;
	moved += n;
	for (unsigned i = 0; i < n; i++)
		gw_tcp_input(SA, q[i]);
	now += 1000;
	gw_tcp_poll(SA, now);
	gw_tcp_poll(SB, now);
	gw_tls_worker_poll(W, now);
	return moved;
}

static void
die(const char *what)
{
	fprintf(stderr, "tls_input_fuzz setup: %s: %s\n", what, gw_err_msg());
	abort();
}

/* atexit: the token dir goes with the process */
static void
cleanup(void)
{
	(void)gw_softhsm_remove(&tok);
}

static struct gw_tcp_stack *
stack(struct rte_mempool *mp, void (*out)(void *, struct rte_mbuf *))
{
	struct gw_tcp_stack_params sp = {0};
	struct gw_tcp_stack *s = NULL;

	sp.lcore = rte_lcore_id();
	sp.pool = mp;
	sp.ip_output = out;
	sp.tsc_hz = 1000000;
	sp.max_conns = 64;
	if (gw_tcp_stack_create(&sp, &s) != 0)
		die("stack");
	gw_tcp_poll(s, now);
	return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char prefix[64], pem[128];
	char *eal[] = {"tls_input_fuzz", "--no-huge", "--no-pci", "--no-shconf", "-m", "128",
		"--file-prefix", prefix, "-l", "0", "--log-level", "error", NULL};
	char uri[GW_HSM_URI_MAX], *certs[1] = {pem};
	struct gw_hsm_params hp = {.token = "fuzz", .pin_file = tok.pin};
	struct gw_cfg_identity id = {.cert = pem, .key = uri};
	struct gw_cfg_listener l = {0};
	struct gw_cfg cfg = {0};
	struct gw_tls_ctl_params cp = {0};
	struct gw_tls_worker_params wp = {0};
	struct gw_svc_tls_params sp = {0};
	struct gw_snapshot_ext ext;
	struct gw_snapshot *snap = NULL;
	struct gw_tls_ctl *ctl = NULL;
	struct gw_hsm *h = NULL;
	struct rte_mempool *mp;
	X509_REQ *req = NULL;
	X509 *x;
	EVP_PKEY *k = NULL;
	FILE *f;

	(void)argc;
	(void)argv;
	snprintf(prefix, sizeof(prefix), "tlsfz%d", (int)getpid());
	if (rte_eal_init((int)RTE_DIM(eal) - 1, eal) < 0)
		abort();
	atexit(gw_test_eal_dir_remove); /* the per-pid prefix would pile up otherwise */
	mp = rte_pktmbuf_pool_create(
		"tlsfz", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (mp == NULL)
		abort();
	/* a SoftHSM token of our own, removed at exit */
	if (gw_softhsm_setup(&tok, "gwtlsfz") < 0)
		abort();
	atexit(cleanup);
	if (gw_hsm_token_init(&hp, tok.so_pin) != 0 || gw_hsm_open(&hp, &h) != 0 ||
		gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "srv", uri) != 0 ||
		gw_hsm_csr(h, uri, "/CN=fuzz.example.test", "DNS:fuzz.example.test", &req) != 0 ||
		gw_hsm_key_load(h, uri, &k) != 0)
		die("hsm");
	/* self-signed by the token key: the server chain, and the pinned client cert */
	x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_set_subject_name(x, X509_REQ_get_subject_name(req));
	X509_set_issuer_name(x, X509_REQ_get_subject_name(req));
	X509_set_pubkey(x, X509_REQ_get0_pubkey(req));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 365);
	if (X509_sign(x, k, EVP_sha256()) <= 0)
		die("sign");
	snprintf(pem, sizeof(pem), "%s/srv.pem", tok.dir);
	f = fopen(pem, "w");
	if (f == NULL)
		die(pem);
	PEM_write_X509(f, x);
	fclose(f);
	X509_free(x);
	X509_REQ_free(req);
	EVP_PKEY_free(k);

	l.name = "fz";
	l.addr.ip = htonl(IP_B);
	l.addr.port = htons(443);
	l.service = GW_SVC_TLS_ECHO;
	l.has_tls = true;
	l.tls.min_version = TLS1_2_VERSION;
	l.tls.identities = &id;
	l.tls.n_identities = 1;
	l.tls.client_auth = GW_CLIENT_AUTH_OPTIONAL;
	l.has_trust = true;
	l.trust.mode = GW_TRUST_PINNED;
	l.trust.certs = certs;
	l.trust.n_certs = 1;
	l.trust.max_depth = 4;
	cfg.listeners = &l;
	cfg.n_listeners = 1;
	cp.hsm = h;
	if (gw_tls_ctl_create(&cp, &ctl) != 0)
		die("tls ctl");
	gw_tls_ctl_ext(ctl, &ext);
	if (gw_snapshot_build(&cfg, 1, &ext, &snap) != 0 || gw_snap_pub_create(1, &P) != 0 ||
		gw_snap_reader_register(P, 0) != 0 || gw_snap_pub_publish(P, snap) != 0)
		die("snapshot");
	SA = stack(mp, out_b);
	SB = stack(mp, out_a);
	wp.lcore = rte_lcore_id();
	wp.tsc_hz = 1000000;
	wp.max_conns = 64;
	if (gw_tls_worker_create(&wp, &W) != 0)
		die("tls worker");
	sp.ip = htonl(IP_B);
	sp.port = htons(443);
	sp.kind = GW_SVC_TLS_ECHO;
	sp.index = 0;
	sp.pub = P;
	sp.tw = W;
	if (gw_svc_tls_listen(SB, &sp) != 0)
		die("listen");
	return 0;
}

static void
fz_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	struct gw_tcp_conn **slot = ctx;
	uint8_t sink[4096];

	(void)reason;
	if (ev == GW_TCP_EV_CLOSED)
		*slot = NULL;
	else if (ev == GW_TCP_EV_READABLE)
		while (gw_tcp_read(c, sink, sizeof(sink)) > 0)
			;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_tcp_connect_params cp = {0};
	struct gw_tcp_conn *c = NULL;
	size_t off = 0;

	cp.laddr = htonl(IP_A);
	cp.raddr = htonl(IP_B);
	cp.rport = htons(443);
	cp.cb = fz_event;
	cp.ctx = &c;
	if (gw_tcp_connect(SA, &cp, &c) != 0)
		return 0;
	for (int i = 0; i < 10 && c && gw_tcp_get_state(c) != GW_TCP_ST_ESTABLISHED; i++)
		pump();
	while (c && off < size) {
		const uint8_t *m = memmem(data + off, size - off, "\xff\xfe", 2);
		size_t end = m ? (size_t)(m - data) : size;
		long w = gw_tcp_write(c, data + off, end - off);

		if (w < 0)
			break;
		off += (size_t)w;
		if (off == end && m)
			off += 2;
		pump();
	}
	for (int i = 0; i < 64 && pump(); i++)
		;
	if (c)
		gw_tcp_abort(c);
	for (int i = 0; i < 8; i++)
		pump();
	/* connections the server kept (tls-echo waits for more) end by timeout */
	now += 400ull * 1000000;
	pump();
	pump();
	return 0;
}
