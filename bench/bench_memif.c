/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_memif.c - mtlsgw-bench-memif: load for the gateway's echo service
 * from another DPDK process over memif, with our own TCP on both ends, so
 * the gateway is measured without the kernel or a tap in the path.
 *
 *   mtlsgw-bench-memif --socket PATH --mode stream|cps [--conns N]
 *                      [--seconds S] [--lcore L] [--size BYTES] [--hold]
 *                      [--port P] [--echo-port P] [--cpu-pid PID]
 *                      [--tls --cert F --key F --ca F --servername NAME]
 *
 * The client is a memif *client* port 10.98.0.3/24 on one worker lcore; the
 * gateway under test is an mtlsgw with a memif server port 10.98.0.2/24 and
 * an echo listener on 10.98.0.2:7 (bench/memif_echo.sh sets both up in a
 * namespace of their own).
 *   stream: N connections each keep writing and reading back; reports
 *           MB/s echoed (each way) and checks every byte that comes back.
 *   cps:    N connections at a time each connect, send SIZE bytes, read
 *           them back, close, and are replaced; reports completed
 *           connections per second.
 * Prints one JSON line. Figures are for comparing, never asserted.
 *
 * --tls (stream only): the connections speak TLS to --port (default 8443:
 * the gateway's tls-echo or tls-proxy) as an OpenSSL client over our TCP
 * (tls.h's gw_tcp BIO, no kernel socket): TLS 1.3 with TLS_AES_128_GCM_SHA256
 * only, client certificate --cert (chain) + --key, server checked against
 * --ca and --servername, 16 KiB records. Every decrypted byte is checked.
 * --echo-port P: this side also serves plain echo on 10.98.0.3:P, the
 * upstream of a tls-proxy under test, so the proxied path stays on memif.
 * --cpu-pid PID: the CPU time (utime + stime) of PID's DPDK worker threads
 * ("lcore-worker-N") and of all its threads over the measured seconds,
 * and MB echoed per worker CPU-second: what the gateway spends per byte
 * however fast this side is (run it with idle: adaptive, so an idle worker
 * sleeps instead of counting).
 *
 * --hold: after the JSON line, keep the memif connection until SIGTERM or
 * SIGINT, with this side's worker already stopped. DPDK 22.11's memif PMD
 * tears a connection down on its interrupt thread (flag cleared, regions
 * unmapped) without waiting for a worker inside rte_eth_rx/tx_burst on the
 * same port: a peer that leaves while the other side's worker polls can
 * make that worker touch unmapped memory. So our worker stops when the
 * run ends but our port stays open; with --hold the script stops the
 * gateway first (its workers stop before its port closes) and then us, so
 * neither side is polling when the connection goes away.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <rte_cycles.h>
#include <rte_eal.h>

#include "dataplane.h"
#include "svc.h"
#include "tcp.h"
#include "tls.h"

#define MAX_CONNS 4096
#define REC_MAX 16384 /* TLS plaintext per record */
#define REC_OVH 64    /* a TLS 1.3 AES-GCM record's overhead is 22 bytes: margin */

enum mode { STREAM, CPS };

struct bconn {
	struct gw_tcp_conn *c;
	SSL *ssl;            /* --tls: the client over c, NULL before/after */
	uint64_t sent, rcvd; /* stream offsets: byte i of a stream is (i * 131) >> 3 */
	size_t wpend;        /* --tls: bytes of a record OpenSSL holds (offer again) */
	bool connected, done, hs;
	bool dead; /* TLS failed: the slot stays empty */
};

static struct {
	enum mode mode;
	unsigned conns;
	unsigned size;
	uint32_t server;
	uint16_t port;
	uint16_t echo_port; /* network order; 0: no echo listener here */
	SSL_CTX *tls;       /* --tls */
	const char *servername;
	struct gw_tcp_stack *tcp;
	struct bconn bc[MAX_CONNS];
	/* results: written by the worker, read by main after it stopped */
	uint64_t bytes, completed, failed, corrupt, started, handshakes;
	char cipher[64];   /* the first connection's */
	char tls_err[200]; /* the first TLS failure */
	volatile bool measuring;
	unsigned connected; /* connections that reached ESTABLISHED (atomic: main waits on it) */
} B;

static inline uint8_t
pat(uint64_t i)
{
	return (uint8_t)((i * 131) >> 3);
}

static void bench_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx);

/* n bytes echoed back to b: each one must be the pattern's, and counted */
static void
rx_check(struct bconn *b, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i] != pat(b->rcvd + i))
			B.corrupt++;
	b->rcvd += n;
	if (B.measuring)
		B.bytes += n;
}

/* The first TLS failure, with OpenSSL's reason; the slot gives up (no retry storm). */
static void
tls_fail(struct bconn *b, const char *what, int ssl_err)
{
	unsigned long e = ERR_peek_error();

	if (B.tls_err[0] == 0) {
		char why[120] = "";

		if (e != 0)
			ERR_error_string_n(e, why, sizeof(why));
		else if (b->ssl != NULL && SSL_get_verify_result(b->ssl) != X509_V_OK)
			snprintf(why, sizeof(why), "server certificate: %s",
				X509_verify_cert_error_string(SSL_get_verify_result(b->ssl)));
		snprintf(B.tls_err, sizeof(B.tls_err), "%s failed (SSL_get_error %d): %s", what,
			ssl_err, why[0] ? why : "the peer closed or reset");
	}
	ERR_clear_error();
	B.failed++;
	b->dead = true;
}

static void
tls_free(struct bconn *b)
{
	if (b->ssl == NULL)
		return;
	BIO_set_data(SSL_get_rbio(b->ssl), NULL); /* c is gone or going */
	SSL_free(b->ssl);
	b->ssl = NULL;
}

static int
tls_open(struct bconn *b)
{
	BIO *bio;

	b->ssl = SSL_new(B.tls);
	bio = b->ssl ? gw_tls_bio_new(b->c) : NULL;
	if (bio == NULL) {
		tls_fail(b, "SSL_new", 0);
		SSL_free(b->ssl);
		b->ssl = NULL;
		return -1;
	}
	SSL_set_bio(b->ssl, bio, bio);
	if (SSL_set_tlsext_host_name(b->ssl, B.servername) != 1 ||
		SSL_set1_host(b->ssl, B.servername) != 1) {
		tls_fail(b, "SNI", 0);
		tls_free(b);
		return -1;
	}
	SSL_set_connect_state(b->ssl);
	return 0;
}

/* --tls: handshake, then read and check, then write whole 16 KiB records. */
static void
tls_pump(struct bconn *b)
{
	uint8_t buf[REC_MAX];
	size_t n;
	int rc;

	/* SSL_get_error() blames any entry left in the queue: start clean */
	if (ERR_peek_error() != 0)
		ERR_clear_error();
	if (!b->hs) {
		rc = SSL_do_handshake(b->ssl);
		if (rc != 1) {
			rc = SSL_get_error(b->ssl, rc);
			if (rc != SSL_ERROR_WANT_READ && rc != SSL_ERROR_WANT_WRITE) {
				tls_fail(b, "TLS handshake", rc);
				gw_tcp_abort(b->c);
				tls_free(b);
				b->c = NULL;
			}
			return;
		}
		b->hs = true;
		B.handshakes++;
		if (B.cipher[0] == 0)
			snprintf(B.cipher, sizeof(B.cipher), "%s", SSL_get_cipher_name(b->ssl));
	}
	for (;;) {
		if (SSL_read_ex(b->ssl, buf, sizeof(buf), &n) != 1) {
			rc = SSL_get_error(b->ssl, 0);
			if (rc == SSL_ERROR_WANT_READ || rc == SSL_ERROR_WANT_WRITE)
				break;
			tls_fail(b, "TLS read", rc);
			gw_tcp_abort(b->c);
			tls_free(b);
			b->c = NULL;
			return;
		}
		rx_check(b, buf, n);
	}
	/* a record only when all of it fits: OpenSSL then never holds one,
	 * but if the mbuf pool ran dry it does, and wpend offers it again */
	while (b->wpend != 0 || gw_tcp_tx_space(b->c) >= REC_MAX + REC_OVH) {
		size_t len = b->wpend ? b->wpend : REC_MAX, wr = 0;

		for (size_t i = 0; i < len; i++)
			buf[i] = pat(b->sent + i);
		if (SSL_write_ex(b->ssl, buf, len, &wr) != 1) {
			rc = SSL_get_error(b->ssl, 0);
			if (rc == SSL_ERROR_WANT_WRITE) {
				b->wpend = len; /* encrypted and held: same offer next time */
				break;
			}
			tls_fail(b, "TLS write", rc);
			gw_tcp_abort(b->c);
			tls_free(b);
			b->c = NULL;
			return;
		}
		b->wpend = 0;
		b->sent += wr;
	}
}

static void
bconn_open(struct bconn *b)
{
	struct gw_tcp_connect_params cp = {
		.raddr = B.server, .rport = B.port, .cb = bench_event, .ctx = b};

	memset(b, 0, sizeof(*b));
	if (gw_tcp_connect(B.tcp, &cp, &b->c) < 0) {
		b->c = NULL; /* hook_poll retries */
		return;
	}
	B.started++;
	if (B.tls != NULL && tls_open(b) < 0) {
		gw_tcp_abort(b->c);
		b->c = NULL;
		b->dead = true;
	}
}

static void
pump(struct bconn *b)
{
	uint8_t buf[8192];
	uint64_t limit = B.mode == CPS ? B.size : UINT64_MAX;

	if (B.tls != NULL) {
		tls_pump(b);
		return;
	}
	for (;;) {
		size_t n = gw_tcp_read(b->c, buf, sizeof(buf));

		if (n == 0)
			break;
		rx_check(b, buf, n);
	}
	while (b->sent < limit) {
		size_t n = (size_t)RTE_MIN((uint64_t)sizeof(buf), limit - b->sent);
		long w;

		n = RTE_MIN(n, gw_tcp_tx_space(b->c));
		if (n == 0)
			break;
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(b->sent + i);
		w = gw_tcp_write(b->c, buf, n);
		if (w <= 0)
			break;
		b->sent += (uint64_t)w;
	}
	if (B.mode == CPS && b->rcvd == B.size && !b->done) {
		b->done = true;
		if (B.measuring)
			B.completed++;
		gw_tcp_close(b->c);
		bconn_open(b); /* the next one in this slot */
	}
}

static void
bench_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	struct bconn *b = ctx;

	if (b->c != c)
		return; /* a closed predecessor of this slot */
	switch (ev) {
	case GW_TCP_EV_CONNECTED:
		b->connected = true;
		__atomic_fetch_add(&B.connected, 1, __ATOMIC_RELEASE);
		/* fall through */
	case GW_TCP_EV_READABLE:
	case GW_TCP_EV_WRITABLE:
		pump(b);
		break;
	case GW_TCP_EV_PEER_FIN:
		if (B.tls != NULL)
			pump(b); /* the EOF shows as a failed read */
		break;
	case GW_TCP_EV_CLOSED:
		if (B.tls != NULL && b->connected) {
			/* a TLS stream never ends by itself: the gateway gave up */
			if (B.tls_err[0] == 0)
				snprintf(B.tls_err, sizeof(B.tls_err),
					"the gateway closed a TLS connection (%s)",
					reason ? strerror(-reason) : "FIN");
			B.failed++;
			tls_free(b);
			b->c = NULL;
			b->dead = true;
			break;
		}
		/* plain, or a TLS connect that failed (the link was not up yet) */
		tls_free(b);
		if (!b->done && B.measuring)
			B.failed++;
		bconn_open(b);
		break;
	}
}

static int
hook_init(void *arg, unsigned w, struct gw_tcp_stack *tcp)
{
	(void)arg;
	if (w != 0)
		return 0;
	B.tcp = tcp;
	if (B.echo_port != 0) {
		struct gw_svc_params sp = {.port = B.echo_port, .kind = GW_SVC_ECHO};

		int rc = gw_svc_listen(tcp, &sp);

		if (rc < 0)
			return rc; /* gw_err says why */
	}
	for (unsigned i = 0; i < B.conns; i++)
		bconn_open(&B.bc[i]);
	return 0;
}

/* a slot whose connect failed (pool full of TIME_WAIT, no port) tries again */
static unsigned
hook_poll(void *arg, unsigned w)
{
	(void)arg;
	(void)w;
	for (unsigned i = 0; i < B.conns; i++)
		if (B.bc[i].c == NULL && !B.bc[i].dead)
			bconn_open(&B.bc[i]);
	return 0; /* nothing arrives without a packet */
}

static void
hook_fini(void *arg, unsigned w)
{
	(void)arg;
	(void)w;
	/* the stack frees the connections without events */
	for (unsigned i = 0; i < B.conns; i++)
		tls_free(&B.bc[i]);
	memset(B.bc, 0, sizeof(B.bc));
}

#define CONNECT_WAIT_S 20

/*
 * 0 once every slot has connected once, -ETIMEDOUT after CONNECT_WAIT_S,
 * -EINTR when one of set (blocked) arrives first: the run is stopped.
 */
static int
wait_connected(const sigset_t *set)
{
	const struct timespec step = {.tv_nsec = 10 * 1000 * 1000};

	for (int i = 0; i < CONNECT_WAIT_S * 100; i++) {
		if (__atomic_load_n(&B.connected, __ATOMIC_ACQUIRE) >= B.conns)
			return 0;
		if (sigtimedwait(set, NULL, &step) > 0)
			return -EINTR;
	}
	return -ETIMEDOUT;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: mtlsgw-bench-memif --socket PATH --mode stream|cps [--conns N] "
		   "[--seconds S] [--lcore L] [--size BYTES] [--hold]\n"
		   "         [--port P] [--echo-port P] [--cpu-pid PID]\n"
		   "         [--tls --cert CHAIN.pem --key KEY.pem --ca ROOT.pem --servername "
		   "NAME]\n");
}

/* utime + stime in clock ticks: of pid's worker threads (DPDK names them
 * "lcore-worker-N") and of all its live threads. 0 or -errno. */
static int
cpu_ticks(long pid, uint64_t *workers, uint64_t *all, unsigned *n_workers)
{
	char path[64], buf[1024];
	struct dirent *e;
	DIR *d;

	*workers = *all = 0;
	*n_workers = 0;
	snprintf(path, sizeof(path), "/proc/%ld/task", pid);
	d = opendir(path);
	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		unsigned long ut, st;
		char *p, *comm;
		FILE *f;
		size_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/task/%.20s/stat", pid, e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue; /* the thread just left */
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		/* "tid (comm) S ppid ...": comm may hold anything, fields follow
		 * the last ')'; utime and stime are fields 14 and 15 */
		comm = strchr(buf, '(');
		p = strrchr(buf, ')');
		if (comm == NULL || p == NULL ||
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
				&st) != 2)
			continue;
		*all += ut + st;
		*p = 0;
		if (strstr(comm, "worker") != NULL) {
			*workers += ut + st;
			(*n_workers)++;
		}
	}
	closedir(d);
	return 0;
}

static SSL_CTX *
tls_ctx_new(const char *cert, const char *key, const char *ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	/* the record path of the deployment: TLS 1.3, AES-128-GCM */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
		SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1) {
		fprintf(stderr,
			"mtlsgw-bench-memif: TLS 1.3 with TLS_AES_128_GCM_SHA256 unavailable\n");
		goto err;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		fprintf(stderr, "mtlsgw-bench-memif: --cert %s: not a PEM certificate chain\n",
			cert);
		goto err;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
		SSL_CTX_check_private_key(ctx) != 1) {
		fprintf(stderr, "mtlsgw-bench-memif: --key %s: not a PEM key for --cert %s\n", key,
			cert);
		goto err;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		fprintf(stderr, "mtlsgw-bench-memif: --ca %s: no PEM certificate in it\n", ca);
		goto err;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* a held record is offered again from a fresh stack buffer */
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
err:
	ERR_print_errors_fp(stderr);
	SSL_CTX_free(ctx);
	return NULL;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"mode", required_argument, NULL, 'm'},
		{"conns", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 't'},
		{"lcore", required_argument, NULL, 'l'},
		{"size", required_argument, NULL, 'z'},
		{"hold", no_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"echo-port", required_argument, NULL, 'e'},
		{"cpu-pid", required_argument, NULL, 'P'},
		{"tls", no_argument, NULL, 'T'},
		{"cert", required_argument, NULL, 'C'},
		{"key", required_argument, NULL, 'K'},
		{"ca", required_argument, NULL, 'A'},
		{"servername", required_argument, NULL, 'N'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static struct gw_dp_params p;
	struct gw_dp *dp = NULL;
	const char *sock = NULL, *cert = NULL, *key = NULL, *ca = NULL;
	unsigned seconds = 5, lcore = 1, port = 0, echo_port = 0;
	bool hold = false, tls = false;
	long cpu_pid = 0;
	uint64_t wk0 = 0, wk1 = 0, all0 = 0, all1 = 0;
	unsigned n_wk = 0;
	char cpu[200] = "";
	struct timespec t0, t1;
	sigset_t set;
	double dt;
	int c, rc;

	B.mode = STREAM;
	B.conns = 1;
	B.size = 64;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "stream") == 0)
				B.mode = STREAM;
			else if (strcmp(optarg, "cps") == 0)
				B.mode = CPS;
			else {
				fprintf(stderr, "mtlsgw-bench-memif: --mode stream or cps\n");
				return 2;
			}
			break;
		case 'c':
			B.conns = (unsigned)atoi(optarg);
			break;
		case 't':
			seconds = (unsigned)atoi(optarg);
			break;
		case 'l':
			lcore = (unsigned)atoi(optarg);
			break;
		case 'z':
			B.size = (unsigned)atoi(optarg);
			break;
		case 'H':
			hold = true;
			break;
		case 'p':
			port = (unsigned)atoi(optarg);
			break;
		case 'e':
			echo_port = (unsigned)atoi(optarg);
			break;
		case 'P':
			cpu_pid = atol(optarg);
			break;
		case 'T':
			tls = true;
			break;
		case 'C':
			cert = optarg;
			break;
		case 'K':
			key = optarg;
			break;
		case 'A':
			ca = optarg;
			break;
		case 'N':
			B.servername = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (sock == NULL || B.conns < 1 || B.conns > MAX_CONNS || seconds < 1 || B.size < 1 ||
		lcore < 1) {
		usage(stderr);
		return 2;
	}
	if (port > 65535 || echo_port > 65535 || cpu_pid < 0) {
		fprintf(stderr,
			"mtlsgw-bench-memif: --port/--echo-port 1..65535, --cpu-pid a pid\n");
		return 2;
	}
	if (tls && (B.mode != STREAM || !cert || !key || !ca || !B.servername)) {
		fprintf(stderr,
			"mtlsgw-bench-memif: --tls needs --mode stream, --cert, --key, --ca "
			"and --servername\n");
		return 2;
	}
	if (!tls && (cert || key || ca || B.servername)) {
		fprintf(stderr, "mtlsgw-bench-memif: --cert/--key/--ca/--servername need --tls\n");
		return 2;
	}
	if (cpu_pid != 0 && cpu_ticks(cpu_pid, &wk0, &all0, &n_wk) < 0) {
		fprintf(stderr, "mtlsgw-bench-memif: --cpu-pid %ld: no such process\n", cpu_pid);
		return 2;
	}
	if (tls && (B.tls = tls_ctx_new(cert, key, ca)) == NULL)
		return 2;
	B.server = inet_addr("10.98.0.2");
	B.port = htons((uint16_t)(port ? port : tls ? 8443 : 7));
	B.echo_port = htons((uint16_t)echo_port);
	p.workers[0] = lcore;
	p.n_workers = 1;
	p.main_lcore = 0;
	p.no_huge = true;
	p.memory_mb = 512;
	p.file_prefix = "gwbench";
	p.ports[0].dev = (struct gw_port_params){
		.name = "bench", .kind = GW_PORT_KIND_MEMIF, .device = sock, .memif_client = true};
	p.ports[0].ip = inet_addr("10.98.0.3");
	p.ports[0].prefix_len = 24;
	p.n_ports = 1;
	/* cps: every closed connection spends 2 s in TIME_WAIT here (we close
	 * first), so the pool bounds the rate at max_conns / 2 per second */
	p.max_conns = 65536;
	p.memory_mb = 1024;
	p.worker_init = hook_init;
	p.worker_poll = hook_poll;
	p.worker_fini = hook_fini;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (gw_dp_eal_init(&p, argv[0]) < 0 || gw_dp_start(&p, &dp) < 0) {
		fprintf(stderr, "mtlsgw-bench-memif: %s\n", gw_err_msg());
		return 1;
	}
	/*
	 * Every connection established first (the memif link comes up on the
	 * EAL's interrupt thread, late on a loaded box; a connect made before
	 * it is lost and retried), at most CONNECT_WAIT_S; then one second of
	 * warm-up (handshakes, slow start), then measure.
	 */
	rc = wait_connected(&set);
	if (rc == -ETIMEDOUT)
		fprintf(stderr,
			"mtlsgw-bench-memif: only %u of %u connections established in %d s "
			"(memif link down? the gateway not answering?); measuring anyway\n",
			__atomic_load_n(&B.connected, __ATOMIC_ACQUIRE), B.conns, CONNECT_WAIT_S);
	if (rc == -EINTR) {
		seconds = 0; /* stopped: report what there is, and do not hold */
		hold = false;
	} else {
		sleep(1);
	}
	if (cpu_pid != 0)
		(void)cpu_ticks(cpu_pid, &wk0, &all0, &n_wk);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	B.measuring = true;
	{
		struct timespec ts = {.tv_sec = seconds};

		(void)sigtimedwait(&set, NULL, &ts);
	}
	B.measuring = false;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (cpu_pid != 0 && cpu_ticks(cpu_pid, &wk1, &all1, &n_wk) == 0) {
		double hz = (double)sysconf(_SC_CLK_TCK), wk = (double)(wk1 - wk0) / hz;

		snprintf(cpu, sizeof(cpu),
			",\"workers\":%u,\"worker_cpu_s\":%.2f,\"process_cpu_s\":%.2f,"
			"\"mb_per_worker_cpu_s\":%.1f",
			n_wk, wk, (double)(all1 - all0) / hz,
			wk > 0 ? (double)B.bytes / wk / 1e6 : 0.0);
	}
	/* the port stays open: closing it now would tear the memif connection
	 * down under the gateway's polling worker (see --hold) */
	gw_dp_stop_workers(dp);
	dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("{\"mode\":\"%s\",\"tls\":%s,\"cipher\":\"%s\",\"conns\":%u,\"seconds\":%.2f,"
	       "\"bytes\":%" PRIu64 ",\"mb_per_s\":%.1f,\"completed\":%" PRIu64
	       ",\"conns_per_s\":%.0f,\"started\":%" PRIu64 ",\"handshakes\":%" PRIu64
	       ",\"failed\":%" PRIu64 ",\"corrupt\":%" PRIu64 "%s}\n",
		B.mode == STREAM ? "stream" : "cps", tls ? "true" : "false", B.cipher, B.conns, dt,
		B.bytes, (double)B.bytes / dt / 1e6, B.completed, (double)B.completed / dt,
		B.started, B.handshakes, B.failed, B.corrupt, cpu);
	fflush(stdout);
	if (B.tls_err[0] != 0)
		fprintf(stderr, "mtlsgw-bench-memif: %s\n", B.tls_err);
	/* our worker is stopped: the peer may now leave first (see --hold) */
	if (hold)
		(void)sigwaitinfo(&set, NULL);
	gw_dp_stop(dp);
	gw_dp_eal_cleanup();
	SSL_CTX_free(B.tls);
	return B.corrupt || (tls && B.failed) ? 1 : 0;
}
