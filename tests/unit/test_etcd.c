/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_etcd.c - control/etcd.c against a real etcd (Debian etcd-server) on
 * loopback: one etcd started here, serving http:// on one port and
 * https:// with --client-cert-auth on another, its PKI made by `openssl`
 * in a mkdtemp dir. The etcd is killed and the dir removed at the end,
 * also when the test fails or is killed (atexit and signal handlers; the
 * etcd child also dies with us through PR_SET_PDEATHSIG).
 *
 * Cases: open's argument checks; put/get/get_prefix/delete with binary
 * values; etcd's own error message passed on; compare-and-swap; leases
 * (expiry, keepalive, revoke); watch (from a revision, live, stop flag,
 * compaction); failover (a dead and a silent endpoint first), all
 * endpoints dead; https with a client certificate, a wrong CA refused;
 * the client certificate's key in a fresh SoftHSM2 token (its own temp
 * dir, removed likewise), a certificate of another key or another CA
 * refused.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "etcd.h"
#include "gw_softhsm.h"
#include "gw_test.h"
#include "hsm.h"

static char dir[64];
static struct gw_softhsm tok;
static pid_t etcd_pid;
static char url[64], url_tls[64];

static void
cleanup(void)
{
	char cmd[128];

	if (etcd_pid > 0) {
		kill(etcd_pid, SIGKILL);
		waitpid(etcd_pid, NULL, 0);
		etcd_pid = 0;
	}
	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
		dir[0] = '\0';
	}
	if (tok.dir[0]) {
		(void)gw_softhsm_remove(&tok);
		tok.dir[0] = '\0';
	}
}

static void
on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* A port that accepts connections (the kernel's backlog) and never answers. */
static int
silent_listener(unsigned short *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (void *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0 ||
		getsockname(fd, (void *)&a, &l) < 0)
		exit(2);
	*port = ntohs(a.sin_port);
	return fd;
}

static double
now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * Two CAs (ca: the real one, bad: a stranger), etcd's server certificate
 * for IP 127.0.0.1 and a client certificate, both from ca.
 */
static void
make_pki(void)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		"cd %s && printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,"
		"clientAuth\\n' > ext.cnf && for n in ca bad; do openssl req -x509 -newkey ec "
		"-pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=$n -keyout $n.key "
		"-out $n.pem || exit 1; done >/dev/null 2>&1 && for n in srv cli; do openssl req "
		"-newkey ec "
		"-pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=$n -keyout $n.key -out $n.csr "
		"&& openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		"-days 1 -extfile ext.cnf -out $n.pem || exit 1; done >/dev/null 2>&1",
		dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "openssl could not make the test PKI in %s\n", dir);
		exit(2);
	}
}

static struct gw_etcd *
client(const char *const *eps, unsigned n, unsigned timeout_ms)
{
	struct gw_etcd_params p = {.endpoints = eps, .n_endpoints = n, .timeout_ms = timeout_ms};
	struct gw_etcd *e = NULL;

	if (gw_etcd_open(&p, &e) < 0) {
		fprintf(stderr, "gw_etcd_open: %s\n", gw_err_msg());
		exit(2);
	}
	return e;
}

static void
etcd_start(void)
{
	char curls[200], peer[80], cluster[120], data[120], log[120];
	char cert[120], key[120], ca[120];
	unsigned short pp = gw_test_free_port(), cp = gw_test_free_port(), tp = gw_test_free_port();
	const char *eps[1] = {url};
	struct gw_etcd *e;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u", cp);
	snprintf(url_tls, sizeof(url_tls), "https://127.0.0.1:%u", tp);
	snprintf(curls, sizeof(curls), "%s,%s", url, url_tls);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%u", pp);
	snprintf(cluster, sizeof(cluster), "t=%s", peer);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(log, sizeof(log), "%s/etcd.log", dir);
	snprintf(cert, sizeof(cert), "%s/srv.pem", dir);
	snprintf(key, sizeof(key), "%s/srv.key", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	etcd_pid = fork();
	if (etcd_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (!freopen(log, "a", stdout) || !freopen(log, "a", stderr))
			_exit(126);
		execl("/usr/bin/etcd", "etcd", "--name", "t", "--data-dir", data,
			"--listen-client-urls", curls, "--advertise-client-urls", url,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", cluster, "--initial-cluster-state", "new",
			"--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca,
			"--client-cert-auth", "--logger", "zap", "--log-level", "warn",
			(char *)NULL);
		_exit(127);
	}
	/* readiness, not timing: until etcd answers (at most 20 s) */
	e = client(eps, 1, 1000);
	for (int i = 0; i < 200; i++) {
		uint8_t *v = NULL;
		size_t l;
		int rc = gw_etcd_get(e, "/ready", &v, &l, NULL);

		free(v);
		if (rc == -ENOENT) {
			gw_etcd_close(e);
			gw_err_clear();
			return;
		}
		usleep(100000);
	}
	fprintf(stderr, "etcd did not start (see %s): %s\n", log, gw_err_msg());
	exit(2);
}

/* ---- get_prefix and watch collectors --------------------------------------- */

struct seen {
	pthread_mutex_t mu;
	unsigned n;
	char key[8][32];
	uint8_t val[8][16];
	size_t len[8];
	int64_t rev[8];
	enum gw_etcd_event_type type[8];
	int stop_after; /* > 0: return -ECANCELED after that many */
};

static int
on_kv(void *arg, const char *key, const uint8_t *val, size_t len, int64_t rev)
{
	struct seen *s = arg;

	if (s->n < 8 && strlen(key) < 32 && len <= 16) {
		snprintf(s->key[s->n], 32, "%s", key);
		memcpy(s->val[s->n], val, len);
		s->len[s->n] = len;
		s->rev[s->n] = rev;
	}
	s->n++;
	return s->stop_after && (int)s->n >= s->stop_after ? -ECANCELED : 0;
}

static int
on_event(void *arg, const struct gw_etcd_event *ev)
{
	struct seen *s = arg;
	int rc;

	pthread_mutex_lock(&s->mu);
	if (s->n < 8)
		s->type[s->n] = ev->type;
	rc = on_kv(arg, ev->key, ev->val, ev->len, ev->mod_revision);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static unsigned
seen_n(struct seen *s)
{
	unsigned n;

	pthread_mutex_lock(&s->mu);
	n = s->n;
	pthread_mutex_unlock(&s->mu);
	return n;
}

struct watcher {
	pthread_t th;
	const char *prefix;
	int64_t from;
	atomic_bool stop;
	struct seen seen;
	int rc;
	char msg[GW_ERR_MSG_MAX];
};

static void *
watch_main(void *arg)
{
	struct watcher *w = arg;
	char dead[64];
	const char *eps[2] = {dead, url};
	struct gw_etcd *e;

	/* its own client (one per thread); a dead endpoint first: failover */
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%u", gw_test_free_port());
	e = client(eps, 2, 2000);

	w->rc = gw_etcd_watch(e, w->prefix, w->from, on_event, &w->seen, &w->stop);
	snprintf(w->msg, sizeof(w->msg), "%s", gw_err_msg());
	gw_etcd_close(e);
	return NULL;
}

/* Join the watch thread; a watch that does not return fails the test here. */
static bool
join_watch(struct watcher *w)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += 5;
	if (pthread_timedjoin_np(w->th, NULL, &t) == 0)
		return true;
	fprintf(stderr, "FAIL: the watch did not return within 5 s\n");
	exit(1); /* atexit: etcd killed, dir removed */
}

/* Wait up to 5 s for n events. */
static bool
wait_events(struct watcher *w, unsigned n)
{
	for (int i = 0; i < 500 && seen_n(&w->seen) < n; i++)
		usleep(10000);
	return seen_n(&w->seen) >= n;
}

int
main(void)
{
	static const uint8_t bin[] = {0x00, 0x01, 0xff, 0x00, 'k', 0x00, 0x80};
	double t0 = now_s();

	GW_TEST_BEGIN();
	if (access("/usr/bin/etcd", X_OK) != 0)
		GW_TEST_SKIP("no /usr/bin/etcd (tools/deps.sh installs etcd-server)");
	snprintf(dir, sizeof(dir), "/tmp/gw_etcd_XXXXXX");
	if (mkdtemp(dir) == NULL) {
		dir[0] = '\0';
		return 2;
	}
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGABRT, on_signal);
	signal(SIGSEGV, on_signal);
	signal(SIGPIPE, SIG_IGN); /* as mtlsgw does (etcd.h) */
	make_pki();
	etcd_start();
	printf("etcd up after %.2f s\n", now_s() - t0);

	{ /* open checks its arguments */
		const char *ftp[1] = {"ftp://127.0.0.1:1"}, *ok[1] = {"http://127.0.0.1:1"};
		struct gw_etcd_params p = {.endpoints = ftp, .n_endpoints = 1};
		struct gw_etcd *e = NULL;

		EXPECT_ERR(gw_etcd_open(&p, &e), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "ftp://127.0.0.1:1");
		EXPECT_TRUE(e == NULL);
		p.n_endpoints = 0;
		EXPECT_ERR(gw_etcd_open(&p, &e), -EINVAL);
		p.endpoints = ok;
		p.n_endpoints = 1;
		p.cert_file = "/x.pem";
		EXPECT_ERR(gw_etcd_open(&p, &e), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "key_file");
		p.cert_file = NULL;
		EXPECT_OK(gw_etcd_open(&p, &e));
		EXPECT_STREQ(gw_etcd_endpoint(e), "http://127.0.0.1:1");
		gw_etcd_close(e);
		gw_etcd_close(NULL);
	}

	{ /* put / get / get_prefix / delete, binary values */
		const char *eps[1] = {url};
		struct gw_etcd *e = client(eps, 1, 2000);
		struct seen s = {.n = 0};
		uint8_t *v = NULL;
		size_t l = 99;
		int64_t r1 = 0, r2 = 0;

		EXPECT_OK(gw_etcd_put(e, "/t/p/a", bin, sizeof(bin), 0));
		EXPECT_OK(gw_etcd_get(e, "/t/p/a", &v, &l, &r1));
		EXPECT_EQ(l, sizeof(bin));
		EXPECT_TRUE(v && memcmp(v, bin, sizeof(bin)) == 0);
		EXPECT_TRUE(r1 > 0);
		free(v);
		/* an empty value: protobuf's JSON leaves the field out */
		EXPECT_OK(gw_etcd_put(e, "/t/p/b", "", 0, 0));
		EXPECT_OK(gw_etcd_get(e, "/t/p/b", &v, &l, &r2));
		EXPECT_EQ(l, 0);
		EXPECT_TRUE(v != NULL && r2 == r1 + 1);
		free(v);
		EXPECT_OK(gw_etcd_put(e, "/t/p/c", bin + 1, 3, 0));
		EXPECT_OK(gw_etcd_put(e, "/t/q", "x", 1, 0));  /* outside the prefix */
		EXPECT_OK(gw_etcd_put(e, "/t/p", "x", 1, 0));  /* the prefix itself is in */
		EXPECT_OK(gw_etcd_put(e, "/t/o/", "x", 1, 0)); /* before it, outside */
		EXPECT_OK(gw_etcd_get_prefix(e, "/t/p/", on_kv, &s));
		EXPECT_EQ(s.n, 3);
		EXPECT_STREQ(s.key[0], "/t/p/a");
		EXPECT_STREQ(s.key[1], "/t/p/b");
		EXPECT_STREQ(s.key[2], "/t/p/c");
		EXPECT_TRUE(s.len[0] == sizeof(bin) && memcmp(s.val[0], bin, sizeof(bin)) == 0);
		EXPECT_TRUE(s.len[2] == 3 && memcmp(s.val[2], bin + 1, 3) == 0);
		EXPECT_EQ(s.rev[0], r1);
		memset(&s, 0, sizeof(s));
		EXPECT_OK(gw_etcd_get_prefix(e, "/t/p", on_kv, &s));
		EXPECT_EQ(s.n, 4);
		memset(&s, 0, sizeof(s));
		s.stop_after = 2; /* the callback's error comes back */
		EXPECT_ERR(gw_etcd_get_prefix(e, "/t/", on_kv, &s), -ECANCELED);
		EXPECT_EQ(s.n, 2);
		memset(&s, 0, sizeof(s));
		EXPECT_OK(gw_etcd_get_prefix(e, "", on_kv, &s)); /* every key */
		EXPECT_TRUE(s.n >= 6);

		EXPECT_OK(gw_etcd_delete(e, "/t/p/a"));
		v = (uint8_t *)"sentinel";
		EXPECT_ERR(gw_etcd_get(e, "/t/p/a", &v, &l, NULL), -ENOENT);
		EXPECT_TRUE(v == NULL);
		EXPECT_CONTAINS(gw_err_msg(), "key /t/p/a: not found");
		EXPECT_ERR(gw_etcd_delete(e, "/t/p/a"), -ENOENT);
		memset(&s, 0, sizeof(s));
		EXPECT_OK(gw_etcd_get_prefix(e, "/t/p/", on_kv, &s));
		EXPECT_EQ(s.n, 2);
		EXPECT_ERR(gw_etcd_put(e, "", "x", 1, 0), -EINVAL);
		gw_etcd_close(e);
	}

	{ /* etcd's own refusal comes through with its HTTP status and message */
		const char *eps[1] = {url};
		struct gw_etcd *e = client(eps, 1, 5000);
		size_t n = 1700u << 10; /* etcd's request limit is 1.5 MiB */
		uint8_t *big = calloc(1, n);

		EXPECT_ERR(gw_etcd_put(e, "/t/big", big, n, 0), -GW_E_ETCD);
		EXPECT_CONTAINS(gw_err_msg(), "HTTP 4");
		EXPECT_CONTAINS(gw_err_msg(), "request is too large");
		EXPECT_CONTAINS(gw_err_msg(), url);
		free(big);
		gw_etcd_close(e);
	}

	{ /* compare-and-swap */
		const char *eps[1] = {url};
		struct gw_etcd *e = client(eps, 1, 2000);
		uint8_t *v = NULL;
		size_t l;
		int64_t r = 0;

		EXPECT_OK(gw_etcd_put_if(e, "/t/cas", "one", 3, 0, 0));
		EXPECT_ERR(gw_etcd_put_if(e, "/t/cas", "two", 3, 0, 0), -EEXIST);
		EXPECT_CONTAINS(gw_err_msg(), "key /t/cas: compare failed");
		EXPECT_TRUE(strstr(gw_err_msg(), "two") == NULL); /* never a value */
		EXPECT_OK(gw_etcd_get(e, "/t/cas", &v, &l, &r));
		EXPECT_TRUE(l == 3 && memcmp(v, "one", 3) == 0);
		free(v);
		EXPECT_OK(gw_etcd_put_if(e, "/t/cas", "three", 5, r, 0));
		EXPECT_ERR(gw_etcd_put_if(e, "/t/cas", "four", 4, r, 0), -ESTALE);
		{
			char want[96];

			snprintf(want, sizeof(want),
				"compare failed (mod_revision %lld, expected %lld)",
				(long long)r + 1, (long long)r);
			EXPECT_CONTAINS(gw_err_msg(), want);
		}
		EXPECT_OK(gw_etcd_get(e, "/t/cas", &v, &l, NULL));
		EXPECT_TRUE(l == 5 && memcmp(v, "three", 5) == 0);
		free(v);
		EXPECT_ERR(gw_etcd_put_if(e, "/t/cas-none", "x", 1, r, 0), -ESTALE);
		EXPECT_CONTAINS(gw_err_msg(), "gone");
		gw_etcd_close(e);
	}

	{ /* a watch from a revision: PUT and DELETE, live events, the stop flag */
		const char *eps[1] = {url};
		struct gw_etcd *e = client(eps, 1, 2000);
		struct watcher w = {.prefix = "/w/", .seen.mu = PTHREAD_MUTEX_INITIALIZER};
		int64_t r0 = 0;
		uint8_t *v = NULL;
		size_t l;
		double t;

		EXPECT_OK(gw_etcd_put(e, "/w/a", "a", 1, 0));
		EXPECT_OK(gw_etcd_get(e, "/w/a", &v, &l, &r0));
		free(v);
		EXPECT_OK(gw_etcd_put(e, "/w/b", bin, sizeof(bin), 0)); /* r0 + 1 */
		EXPECT_OK(gw_etcd_put(e, "/x", "x", 1, 0));             /* r0 + 2, not watched */
		EXPECT_OK(gw_etcd_delete(e, "/w/a"));                   /* r0 + 3 */
		w.from = r0 + 1;
		atomic_init(&w.stop, false);
		EXPECT_OK(-pthread_create(&w.th, NULL, watch_main, &w));
		EXPECT_TRUE(wait_events(&w, 2));
		EXPECT_OK(gw_etcd_put(e, "/w/c", "live", 4, 0)); /* r0 + 4, while watching */
		EXPECT_TRUE(wait_events(&w, 3));
		t = now_s();
		atomic_store(&w.stop, true);
		EXPECT_TRUE(join_watch(&w));
		EXPECT_EQ(w.rc, 0);
		printf("watch stopped %.2f s after the flag\n", now_s() - t);
		EXPECT_TRUE(now_s() - t < 2.5);
		EXPECT_EQ(w.seen.n, 3);
		EXPECT_TRUE(w.seen.type[0] == GW_ETCD_PUT && w.seen.rev[0] == r0 + 1);
		EXPECT_STREQ(w.seen.key[0], "/w/b");
		EXPECT_TRUE(w.seen.len[0] == sizeof(bin) &&
			    memcmp(w.seen.val[0], bin, sizeof(bin)) == 0);
		EXPECT_TRUE(w.seen.type[1] == GW_ETCD_DELETE && w.seen.rev[1] == r0 + 3);
		EXPECT_STREQ(w.seen.key[1], "/w/a");
		EXPECT_TRUE(w.seen.type[2] == GW_ETCD_PUT && w.seen.rev[2] == r0 + 4);
		EXPECT_TRUE(w.seen.len[2] == 4 && memcmp(w.seen.val[2], "live", 4) == 0);

		/* the callback stops it */
		memset(&w.seen, 0, sizeof(w.seen));
		pthread_mutex_init(&w.seen.mu, NULL);
		w.seen.stop_after = 2;
		atomic_store(&w.stop, false);
		EXPECT_OK(-pthread_create(&w.th, NULL, watch_main, &w));
		EXPECT_TRUE(join_watch(&w));
		EXPECT_EQ(w.rc, -ECANCELED);
		EXPECT_EQ(w.seen.n, 2);

		/* compacted: -ESTALE, naming the compact revision */
		{
			char cmd[256], rev[32];

			snprintf(rev, sizeof(rev), "%lld", (long long)r0 + 3);
			snprintf(cmd, sizeof(cmd),
				"ETCDCTL_API=3 etcdctl --endpoints=%s compact %s >/dev/null", url,
				rev);
			EXPECT_EQ(system(cmd), 0);
			memset(&w.seen, 0, sizeof(w.seen));
			pthread_mutex_init(&w.seen.mu, NULL);
			EXPECT_OK(-pthread_create(&w.th, NULL, watch_main, &w));
			EXPECT_TRUE(join_watch(&w));
			EXPECT_EQ(w.rc, -ESTALE);
			EXPECT_CONTAINS(w.msg, "compacted");
			EXPECT_CONTAINS(w.msg, rev);
			EXPECT_EQ(w.seen.n, 0);
		}
		gw_etcd_close(e);
	}

	{ /* leases: keepalive keeps the key, expiry removes it, revoke */
		const char *eps[1] = {url};
		struct gw_etcd *e = client(eps, 1, 2000);
		int64_t id = 0, id2 = 0;
		uint8_t *v = NULL;
		size_t l;
		int rc = 0;

		EXPECT_OK(gw_etcd_lease_grant(e, 2, &id));
		EXPECT_TRUE(id != 0);
		EXPECT_OK(gw_etcd_put(e, "/t/lease", "held", 4, id));
		usleep(1500000);
		EXPECT_OK(gw_etcd_lease_keepalive(e, id));
		usleep(1500000); /* 3 s after the grant: only the keepalive holds it */
		EXPECT_OK(gw_etcd_get(e, "/t/lease", &v, &l, NULL));
		free(v);
		/* no keepalive: gone within TTL + etcd's 0.5 s expiry check */
		for (int i = 0; i < 40; i++) {
			v = NULL;
			if ((rc = gw_etcd_get(e, "/t/lease", &v, &l, NULL)) == -ENOENT)
				break;
			free(v);
			usleep(100000);
		}
		EXPECT_ERR(rc, -ENOENT);
		EXPECT_ERR(gw_etcd_lease_keepalive(e, id), -ENOENT);
		EXPECT_CONTAINS(gw_err_msg(), "expired or revoked");
		EXPECT_ERR(gw_etcd_put(e, "/t/lease", "x", 1, id), -ENOENT);
		EXPECT_CONTAINS(gw_err_msg(), "not found");

		EXPECT_OK(gw_etcd_lease_grant(e, 60, &id2));
		EXPECT_OK(gw_etcd_put_if(e, "/t/lease2", "y", 1, 0, id2));
		EXPECT_OK(gw_etcd_lease_revoke(e, id2));
		v = NULL;
		EXPECT_ERR(gw_etcd_get(e, "/t/lease2", &v, &l, NULL), -ENOENT);
		EXPECT_ERR(gw_etcd_lease_revoke(e, id2), -ENOENT);
		gw_etcd_close(e);
	}

	{ /* failover: a dead endpoint, then a silent one, then etcd */
		char dead[64], silent[64];
		unsigned short sp;
		int sfd = silent_listener(&sp);
		const char *eps[3] = {dead, silent, url};
		struct gw_etcd *e;
		uint8_t *v = NULL;
		size_t l;
		double t;

		snprintf(dead, sizeof(dead), "http://127.0.0.1:%u", gw_test_free_port());
		snprintf(silent, sizeof(silent), "http://127.0.0.1:%u/", sp);
		e = client(eps, 3, 500);
		t = now_s();
		EXPECT_OK(gw_etcd_put(e, "/t/fo", "z", 1, 0));
		EXPECT_TRUE(now_s() - t >= 0.45); /* the silent one's timeout */
		EXPECT_STREQ(gw_etcd_endpoint(e), url);
		t = now_s();
		EXPECT_OK(gw_etcd_get(e, "/t/fo", &v, &l, NULL)); /* remembered: no waiting */
		EXPECT_TRUE(now_s() - t < 0.3);
		EXPECT_TRUE(l == 1 && v && v[0] == 'z');
		free(v);
		gw_etcd_close(e);

		/* the silent one alone: its timeout, said so */
		e = client(eps + 1, 1, 300);
		t = now_s();
		EXPECT_ERR(gw_etcd_delete(e, "/t/fo"), -GW_E_ETCD);
		EXPECT_TRUE(now_s() - t >= 0.25 && now_s() - t < 1.5);
		EXPECT_CONTAINS(gw_err_msg(), "no answer within 300 ms");
		gw_etcd_close(e);
		close(sfd);
	}

	{ /* every endpoint dead: one error naming the count and the last cause */
		char d[3][64], one[96];
		const char *eps[3] = {d[0], d[1], d[2]};
		struct gw_etcd *e;
		double t;

		for (int i = 0; i < 3; i++)
			snprintf(d[i], sizeof(d[i]), "http://127.0.0.1:%u", gw_test_free_port());
		e = client(eps, 3, 1000);
		t = now_s();
		EXPECT_ERR(gw_etcd_put(e, "/t/x", "x", 1, 0), -GW_E_ETCD);
		EXPECT_TRUE(now_s() - t < 1.0);
		EXPECT_CONTAINS(gw_err_msg(), "etcd: all 3 endpoints failed (last: etcd ");
		EXPECT_CONTAINS(gw_err_msg(), "connection refused");
		gw_etcd_close(e);
		e = client(eps, 1, 1000);
		EXPECT_ERR(gw_etcd_lease_revoke(e, 1), -GW_E_ETCD);
		snprintf(one, sizeof(one), "etcd %s: connection refused", d[0]);
		EXPECT_CONTAINS(gw_err_msg(), one);
		gw_etcd_close(e);
	}

	{ /* https with a client certificate; a wrong CA and no certificate refused */
		char ca[96], bad[96], cert[96], key[96];
		const char *eps[1] = {url_tls};
		struct gw_etcd_params p = {.endpoints = eps,
			.n_endpoints = 1,
			.ca_file = ca,
			.cert_file = cert,
			.key_file = key,
			.timeout_ms = 2000};
		struct gw_etcd *e = NULL;
		uint8_t *v = NULL;
		size_t l;

		snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
		snprintf(bad, sizeof(bad), "%s/bad.pem", dir);
		snprintf(cert, sizeof(cert), "%s/cli.pem", dir);
		snprintf(key, sizeof(key), "%s/cli.key", dir);
		EXPECT_OK(gw_etcd_open(&p, &e));
		EXPECT_OK(gw_etcd_put(e, "/t/tls", bin, sizeof(bin), 0));
		EXPECT_OK(gw_etcd_get(e, "/t/tls", &v, &l, NULL));
		EXPECT_TRUE(l == sizeof(bin) && v && memcmp(v, bin, l) == 0);
		free(v);
		gw_etcd_close(e);

		p.ca_file = bad;
		EXPECT_OK(gw_etcd_open(&p, &e));
		EXPECT_ERR(gw_etcd_put(e, "/t/tls", "x", 1, 0), -GW_E_ETCD);
		EXPECT_CONTAINS(gw_err_msg(), "TLS");
		EXPECT_CONTAINS(gw_err_msg(), bad);
		gw_etcd_close(e);

		p.ca_file = ca;
		p.cert_file = p.key_file = NULL;
		EXPECT_OK(gw_etcd_open(&p, &e));
		EXPECT_ERR(gw_etcd_put(e, "/t/tls", "x", 1, 0), -GW_E_ETCD);
		EXPECT_CONTAINS(gw_err_msg(), url_tls);
		EXPECT_CONTAINS(gw_err_msg(), "cert_file (none)");
		gw_etcd_close(e);
		v = NULL;
	}

	if (access(GW_DEFAULT_PKCS11_MODULE, R_OK) != 0) {
		printf("no SoftHSM2 module: the HSM client key case is skipped\n");
	} else { /* the client key in the HSM; another key's or another CA's cert refused */
		struct gw_hsm_params hp = {.token = "etcd"};
		char uri[GW_HSM_URI_MAX], ca[96], cert[96], other[96], stranger[96], cmd[1024];
		const char *eps[1] = {url_tls};
		struct gw_etcd_params p = {.endpoints = eps,
			.n_endpoints = 1,
			.ca_file = ca,
			.cert_file = cert,
			.key_file = uri,
			.timeout_ms = 2000};
		struct gw_hsm *h = NULL;
		struct gw_etcd *e = NULL;
		X509_REQ *req = NULL;
		uint8_t *v = NULL;
		size_t l;
		FILE *f;
		double t = now_s();

		if (gw_softhsm_setup(&tok, "gw_etcd_hsm") < 0)
			exit(2);
		hp.pin_file = tok.pin;
		EXPECT_OK(gw_hsm_token_init(&hp, tok.so_pin));
		EXPECT_OK(gw_hsm_open(&hp, &h));
		if (h == NULL)
			exit(2);
		EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "etcd-client", uri));
		EXPECT_OK(gw_hsm_csr(h, uri, "/CN=gw-a", NULL, &req));
		snprintf(cmd, sizeof(cmd), "%s/hsm.csr", dir);
		if (req == NULL || (f = fopen(cmd, "w")) == NULL)
			exit(2);
		PEM_write_X509_REQ(f, req);
		fclose(f);
		X509_REQ_free(req);
		/* one certificate for the token key from etcd's CA, one from a stranger */
		snprintf(cmd, sizeof(cmd),
			"cd %s && for n in ca bad; do openssl x509 -req -in hsm.csr -CA $n.pem "
			"-CAkey $n.key -CAcreateserial -days 1 -extfile ext.cnf -out hsm-$n.pem "
			"|| exit 1; done >/dev/null 2>&1",
			dir);
		EXPECT_EQ(system(cmd), 0);
		snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
		snprintf(cert, sizeof(cert), "%s/hsm-ca.pem", dir);
		snprintf(other, sizeof(other), "%s/cli.pem", dir);
		snprintf(stranger, sizeof(stranger), "%s/hsm-bad.pem", dir);

		EXPECT_ERR(gw_etcd_open(&p, &e), -EINVAL); /* no handle to load it through */
		EXPECT_CONTAINS(gw_err_msg(), "needs the hsm handle");
		p.hsm = h;
		EXPECT_OK(gw_etcd_open(&p, &e));
		EXPECT_OK(gw_etcd_put(e, "/t/hsm", bin, sizeof(bin), 0));
		EXPECT_OK(gw_etcd_get(e, "/t/hsm", &v, &l, NULL));
		EXPECT_TRUE(l == sizeof(bin) && v && memcmp(v, bin, l) == 0);
		free(v);
		v = NULL;
		gw_etcd_close(e);

		/* a certificate of another key: refused before anything is sent */
		p.cert_file = other;
		EXPECT_OK(gw_etcd_open(&p, &e));
		EXPECT_ERR(gw_etcd_put(e, "/t/hsm", "x", 1, 0), -GW_E_ETCD);
		EXPECT_CONTAINS(gw_err_msg(), url_tls);
		EXPECT_CONTAINS(gw_err_msg(), "client certificate: cert_file");
		EXPECT_CONTAINS(gw_err_msg(), "does not match key_file pkcs11:");
		gw_etcd_close(e);

		/* the token key's certificate from a CA etcd does not trust: etcd refuses */
		p.cert_file = stranger;
		EXPECT_OK(gw_etcd_open(&p, &e));
		EXPECT_ERR(gw_etcd_put(e, "/t/hsm", "x", 1, 0), -GW_E_ETCD);
		EXPECT_CONTAINS(gw_err_msg(), url_tls);
		EXPECT_CONTAINS(gw_err_msg(), stranger);
		EXPECT_CONTAINS(gw_err_msg(), "--trusted-ca-file");
		gw_etcd_close(e);

		/* a URI no key answers: the hsm module's error, at open */
		p.cert_file = cert;
		p.key_file = "pkcs11:token=etcd;object=nothere;type=private";
		EXPECT_ERR(gw_etcd_open(&p, &e), -GW_E_HSM_KEY);
		EXPECT_TRUE(e == NULL);
		gw_hsm_close(h);
		gw_hsm_shutdown();
		printf("HSM client key cases took %.2f s\n", now_s() - t);
	}

	printf("took %.2f s\n", now_s() - t0);
	cleanup();
	GW_TEST_END();
}
