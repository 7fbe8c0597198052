/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_tls.c - `mtlsgw-bench tls`: full mutual-TLS handshakes per second.
 *
 * The client side of the issue-6 comparison (mtlsgw vs nginx, bench/run):
 * kernel sockets, non-blocking, one epoll loop per thread, N connections in
 * flight. Every connection is a full handshake - TCP connect, TLS with the
 * client certificate, no resumption (SSL_OP_NO_TICKET, no session cache, a
 * fresh SSL each time) - then optionally one small request and the first
 * bytes of the answer, then close_notify and close.
 *
 * Why the request option matters: in TLS 1.3 the client finishes its
 * handshake before the server has read the client's certificate, so a
 * server that rejects the client is only seen on the next read. With
 * --request the connection counts as good only once the server answered,
 * which proves it accepted the client; bench/run always uses it.
 *
 * Latency is from connect() to the end of the client's handshake, so it
 * includes the TCP handshake. Failures are counted by reason (connect
 * error, TLS alert, verify error, timeout), never retried.
 *
 * Three variations (issue 12), each off by default so the plain run stays
 * the full-handshake measurement:
 *  --resume  each slot keeps the last TLS 1.3 ticket its previous
 *            connection received and offers it; SSL_session_reused()
 *            counts the handshakes the server really resumed, so a server
 *            that ignores tickets shows 0 resumed, not silently full ones.
 *  --rate R  open loop: connections start on a schedule of R per second in
 *            total (R / threads per thread), free slots permitting, so the
 *            latency can be read below saturation. A start later than 10 ms
 *            behind its schedule (all slots busy) is counted as late.
 *  --hold N  N connections, each handshake and request completed, then kept
 *            open and idle; one line when all are set up, then held until
 *            --seconds pass or SIGTERM/SIGINT, then closed. Setup is paced
 *            (--concurrency in flight, --rate if given) so the server never
 *            sees N SYNs at once. For memory per connection (bench/run --idle).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gw_ossl.h"

#define FAIL_SLOTS 24 /* distinct failure reasons kept per thread */
#define REASON_MAX 120

struct bench_opts {
	struct sockaddr_in addr;
	const char *cert, *key, *ca, *servername, *groups;
	char *request; /* NULL: handshake only */
	size_t request_len;
	const char *expect;  /* the answer's first bytes must contain this */
	uint64_t echo_bytes; /* --bytes: stream this much through an echo server */
	int concurrency, threads, tls;
	double seconds, warmup, timeout;
	bool json;
	const char *label;
	bool resume;      /* --resume: offer each slot's last ticket */
	double rate;      /* --rate: starts per second over all threads; 0: closed loop */
	int hold;         /* --hold: connections to establish and keep; 0: off */
	bool provider_ec; /* --provider-ec: leave OpenSSL 3.0's EC as it is */
};

enum slot_state { S_FREE, S_CONNECT, S_HANDSHAKE, S_WRITE, S_READ, S_ECHO, S_HELD };

struct slot {
	int fd;
	SSL *ssl;
	enum slot_state st;
	uint64_t t0, deadline; /* ns, CLOCK_MONOTONIC */
	uint32_t ev;           /* events registered with epoll */
	uint64_t sent, rcvd;   /* S_ECHO progress */
	SSL_SESSION *sess;     /* --resume: the last ticket this slot received (owned) */
	bool offered;          /* this connection offered sess */
};

struct fail_count {
	char reason[REASON_MAX];
	uint64_t n;
};

struct bench_thread {
	pthread_t tid;
	const struct bench_opts *o;
	SSL_CTX *ctx;
	int ep, nslots;
	struct slot *slots;
	uint64_t t_measure, t_end; /* counted window */
	/* results */
	uint64_t ok, handshakes, started;
	uint64_t offered, resumed;    /* --resume: handshakes that offered a ticket, were resumed */
	uint64_t next_due, interval;  /* --rate: next scheduled start, ns between starts */
	uint64_t late;                /* --rate: starts >10 ms behind the schedule */
	int hold_next, inflight, cap; /* --hold: next slot to open, in setup, setup cap */
	uint64_t held;                /* --hold: established and kept */
	atomic_uint_fast64_t dropped; /* --hold: held, then closed by the server (any time) */
	uint64_t echoed;              /* bytes that came back verified, in the window */
	uint32_t *lat_us;
	size_t nlat, caplat;
	struct fail_count fails[FAIL_SLOTS];
	uint64_t fail_other, fail_total;
	bool shown_unexpected; /* printed one unexpected answer already */
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
count_fail(struct bench_thread *t, const char *reason)
{
	if (now_ns() < t->t_measure)
		return;
	t->fail_total++;
	for (int i = 0; i < FAIL_SLOTS; i++) {
		if (t->fails[i].n == 0) {
			snprintf(t->fails[i].reason, REASON_MAX, "%s", reason);
			t->fails[i].n = 1;
			return;
		}
		if (strcmp(t->fails[i].reason, reason) == 0) {
			t->fails[i].n++;
			return;
		}
	}
	t->fail_other++;
}

static void
record_latency(struct bench_thread *t, uint64_t ns)
{
	if (t->nlat == t->caplat) {
		size_t cap = t->caplat ? t->caplat * 2 : 65536;
		uint32_t *p = realloc(t->lat_us, cap * sizeof(*p));

		if (!p)
			return; /* keep counting; percentiles use what fits */
		t->lat_us = p;
		t->caplat = cap;
	}
	t->lat_us[t->nlat++] = (uint32_t)(ns / 1000);
}

/* The TLS-level reason for a failure: an alert, a verify error, or errno. */
static void
tls_reason(struct slot *s, int ret, const char *phase, char *out, size_t cap)
{
	int e = SSL_get_error(s->ssl, ret);
	unsigned long q = ERR_peek_last_error();
	long vr = SSL_get_verify_result(s->ssl);

	if (e == SSL_ERROR_SSL && vr != X509_V_OK) {
		snprintf(out, cap, "%s: server certificate: %s", phase,
			X509_verify_cert_error_string(vr));
	} else if (e == SSL_ERROR_SSL && q) {
		const char *r = ERR_reason_error_string(q);
		snprintf(out, cap, "%s: %s", phase, r ? r : "TLS error");
	} else if (e == SSL_ERROR_ZERO_RETURN) {
		snprintf(out, cap, "%s: server sent close_notify", phase);
	} else if (e == SSL_ERROR_SYSCALL) {
		snprintf(out, cap, "%s: %s", phase,
			errno ? strerror(errno) : "connection closed by server");
	} else {
		snprintf(out, cap, "%s: SSL error %d", phase, e);
	}
	ERR_clear_error();
}

static void
slot_close(struct bench_thread *t, struct slot *s, bool clean)
{
	/* --hold: a slot that leaves setup, by failure or cut off, frees a place */
	if (t->o->hold && s->st != S_FREE && s->st != S_HELD)
		t->inflight--;
	if (s->ssl) {
		/* one close_notify, no wait for the peer's: what a short client does */
		if (clean)
			SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		epoll_ctl(t->ep, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
		s->fd = -1;
	}
	s->st = S_FREE;
	ERR_clear_error();
}

static void
slot_fail(struct bench_thread *t, struct slot *s, const char *reason)
{
	count_fail(t, reason);
	slot_close(t, s, false);
}

static int
slot_want(struct bench_thread *t, struct slot *s, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = s};

	if (s->ev == ev)
		return 0;
	s->ev = ev;
	return epoll_ctl(t->ep, EPOLL_CTL_MOD, s->fd, &e);
}

/* An SSL call in phase returned r <= 0: wait for the I/O it wants, or fail s with the reason. */
static void
slot_retry_or_fail(struct bench_thread *t, struct slot *s, int r, const char *phase)
{
	int e = SSL_get_error(s->ssl, r);
	char reason[REASON_MAX];

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		slot_want(t, s, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
		return;
	}
	tls_reason(s, r, phase, reason, sizeof(reason));
	slot_fail(t, s, reason);
}

static void
slot_start(struct bench_thread *t, struct slot *s)
{
	const struct bench_opts *o = t->o;
	struct epoll_event e = {.events = EPOLLOUT, .data.ptr = s};
	int one = 1;

	s->t0 = now_ns();
	s->deadline = s->t0 + (uint64_t)(o->timeout * 1e9);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		char r[REASON_MAX];
		snprintf(r, sizeof(r), "socket: %s", strerror(errno));
		count_fail(t, r);
		return;
	}
	t->started++;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, (const struct sockaddr *)&o->addr, sizeof(o->addr)) < 0 &&
		errno != EINPROGRESS) {
		char r[REASON_MAX];
		snprintf(r, sizeof(r), "connect: %s", strerror(errno));
		close(s->fd);
		s->fd = -1;
		count_fail(t, r);
		return;
	}
	s->st = S_CONNECT;
	s->ev = EPOLLOUT;
	t->inflight++;
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, s->fd, &e) < 0) {
		slot_fail(t, s, "epoll_ctl failed");
	}
}

/*
 * --resume: OpenSSL hands over each ticket as it arrives (TLS 1.3 sends
 * them after the handshake; the request's answer is read after them). The
 * slot keeps the newest: the reference is ours (return 1).
 */
static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct slot *s = SSL_get_app_data(ssl);

	if (!s)
		return 0;
	SSL_SESSION_free(s->sess);
	s->sess = sess;
	return 1;
}

static void
slot_done(struct bench_thread *t, struct slot *s)
{
	if (now_ns() >= t->t_measure)
		t->ok++;
	if (t->o->hold) {
		/* keep it: only a close or data from the server wakes it */
		s->st = S_HELD;
		t->inflight--;
		t->held++;
		if (slot_want(t, s, EPOLLIN | EPOLLRDHUP) < 0)
			slot_fail(t, s, "epoll_ctl failed");
		return;
	}
	slot_close(t, s, true);
}

/*
 * --bytes: the byte at stream offset i is i % 251 (a prime, so no record or
 * segment size lines up with it and a misplaced chunk is caught). One
 * buffer of the pattern serves every write and check at any offset.
 */
#define PAT_PERIOD 251
#define ECHO_CHUNK 16384
#define ECHO_WINDOW (1u << 20)           /* unanswered bytes: the echo must keep up */
static uint8_t pattern[PAT_PERIOD * 67]; /* >= PAT_PERIOD - 1 + ECHO_CHUNK */

static void
pattern_init(void)
{
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i % PAT_PERIOD);
}

/* Stream through the echo: read whatever came back, write while the window
 * allows, until every byte returned or something would block both ways. */
/*
 * An echo SSL_read/SSL_write returned r <= 0: true if it only waits (sets
 * *want_out when it waits to write), false if it failed (s is closed).
 */
static bool
echo_blocked(struct bench_thread *t, struct slot *s, int r, bool *want_out)
{
	char reason[REASON_MAX];
	int e = SSL_get_error(s->ssl, r);

	if (e == SSL_ERROR_WANT_WRITE) {
		*want_out = true;
		return true;
	}
	if (e == SSL_ERROR_WANT_READ)
		return true;
	tls_reason(s, r, "echo", reason, sizeof(reason));
	slot_fail(t, s, reason);
	return false;
}

static void
echo_step(struct bench_thread *t, struct slot *s)
{
	const struct bench_opts *o = t->o;
	uint8_t buf[ECHO_CHUNK];
	bool want_out = false, progress = true;
	int r;

	while (progress) {
		progress = false;
		r = SSL_read(s->ssl, buf, sizeof(buf));
		if (r > 0) {
			if (s->rcvd + (uint64_t)r > o->echo_bytes ||
				memcmp(buf, pattern + s->rcvd % PAT_PERIOD, (size_t)r) != 0) {
				slot_fail(t, s, "echo: bytes came back changed or extra");
				return;
			}
			s->rcvd += (uint64_t)r;
			if (now_ns() >= t->t_measure)
				t->echoed += (uint64_t)r;
			s->deadline = now_ns() + (uint64_t)(o->timeout * 1e9);
			if (s->rcvd == o->echo_bytes) {
				slot_done(t, s);
				return;
			}
			progress = true;
		} else if (!echo_blocked(t, s, r, &want_out)) {
			return;
		}
		if (s->sent < o->echo_bytes && s->sent - s->rcvd < ECHO_WINDOW) {
			/* same arguments on a retry: both depend only on s->sent */
			uint64_t left = o->echo_bytes - s->sent;
			int len = (int)(left < ECHO_CHUNK ? left : ECHO_CHUNK);

			r = SSL_write(s->ssl, pattern + s->sent % PAT_PERIOD, len);
			if (r > 0) {
				s->sent += (uint64_t)r;
				progress = true;
			} else if (!echo_blocked(t, s, r, &want_out)) {
				return;
			}
		}
	}
	slot_want(t, s, EPOLLIN | (want_out ? EPOLLOUT : 0));
}

/* Advance one connection as far as it goes without blocking. */
static void
slot_step(struct bench_thread *t, struct slot *s)
{
	const struct bench_opts *o = t->o;
	char reason[REASON_MAX];
	int r;

	switch (s->st) {
	case S_CONNECT: {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			snprintf(reason, sizeof(reason), "connect: %s", strerror(err));
			slot_fail(t, s, reason);
			return;
		}
		s->ssl = SSL_new(t->ctx);
		if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1) {
			slot_fail(t, s, "SSL_new failed");
			return;
		}
		if (o->servername) {
			SSL_set_tlsext_host_name(s->ssl, o->servername);
			/* the server certificate must name what we asked for */
			SSL_set1_host(s->ssl, o->servername);
		}
		SSL_set_connect_state(s->ssl);
		SSL_set_app_data(s->ssl, s);
		s->offered = false;
		if (s->sess && SSL_SESSION_is_resumable(s->sess)) {
			if (SSL_set_session(s->ssl, s->sess) != 1) {
				slot_fail(t, s, "SSL_set_session failed");
				return;
			}
			s->offered = true;
		}
		s->st = S_HANDSHAKE;
	}
		/* fall through */
	case S_HANDSHAKE:
		r = SSL_do_handshake(s->ssl);
		if (r != 1) {
			slot_retry_or_fail(t, s, r, "handshake");
			return;
		}
		if (now_ns() >= t->t_measure) {
			t->handshakes++;
			t->offered += s->offered;
			t->resumed += SSL_session_reused(s->ssl) == 1;
			record_latency(t, now_ns() - s->t0);
		}
		if (o->echo_bytes) {
			s->st = S_ECHO;
			s->sent = s->rcvd = 0;
			echo_step(t, s);
			return;
		}
		if (!o->request) {
			slot_done(t, s);
			return;
		}
		s->st = S_WRITE;
		/* fall through */
	case S_WRITE:
		r = SSL_write(s->ssl, o->request, (int)o->request_len);
		if (r <= 0) {
			slot_retry_or_fail(t, s, r, "request");
			return;
		}
		s->st = S_READ;
		/* fall through */
	case S_READ: {
		char buf[4096];

		r = SSL_read(s->ssl, buf, sizeof(buf) - 1);
		if (r > 0) {
			buf[r] = '\0';
			if (o->expect && !memmem(buf, (size_t)r, o->expect, strlen(o->expect))) {
				/* e.g. nginx answers 400 to a client it did not accept */
				if (!t->shown_unexpected) {
					t->shown_unexpected = true;
					fprintf(stderr, "tls: first unexpected answer: %.80s\n",
						buf);
				}
				slot_fail(t, s, "answer: does not contain the --expect text");
				return;
			}
			slot_done(t, s);
			return;
		}
		/* an alert here is usually the server refusing our certificate */
		slot_retry_or_fail(t, s, r, "answer");
		return;
	}
	case S_ECHO:
		echo_step(t, s);
		return;
	case S_HELD: {
		char buf[4096];

		/* the rest of an answer (or a ticket) is read and dropped; an
		 * end from the server while held is a drop */
		while ((r = SSL_read(s->ssl, buf, sizeof(buf))) > 0)
			;
		if (SSL_get_error(s->ssl, r) == SSL_ERROR_WANT_READ)
			return;
		/* not through count_fail: the failure table is final once the
		 * setup is (the main thread prints it while we hold) */
		atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
		ERR_clear_error();
		slot_close(t, s, false);
		return;
	}
	case S_FREE:
		return;
	}
}

/*
 * --rate: may a connection start now? Advances the schedule when it may.
 * Closed loop (no --rate): always.
 */
static bool
rate_take(struct bench_thread *t, uint64_t now)
{
	if (!t->interval)
		return true;
	if (now < t->next_due)
		return false;
	if (now - t->next_due > 10000000ull && now >= t->t_measure)
		t->late++;
	t->next_due += t->interval;
	return true;
}

/* epoll timeout in ms: at most 50, less when a paced start is due sooner */
static int
wait_ms(const struct bench_thread *t, uint64_t now)
{
	uint64_t ms;

	if (!t->interval)
		return 50;
	if (t->next_due <= now)
		return 0;
	ms = (t->next_due - now + 999999) / 1000000;
	return ms < 50 ? (int)ms : 50;
}

static const char *const state_names[] = {
	"", "connect", "handshake", "request", "answer", "echo", "held"};

static void
slot_timeout(struct bench_thread *t, struct slot *s)
{
	char r[REASON_MAX];

	snprintf(r, sizeof(r), "%s: timeout", state_names[s->st]);
	slot_fail(t, s, r);
}

static void *
bench_thread_run(void *arg)
{
	struct bench_thread *t = arg;
	struct epoll_event ev[256];
	uint64_t now;

	for (int i = 0; i < t->nslots; i++) {
		if (rate_take(t, now_ns()))
			slot_start(t, &t->slots[i]);
	}
	while ((now = now_ns()) < t->t_end) {
		int n = epoll_wait(t->ep, ev, 256, wait_ms(t, now));

		for (int i = 0; i < n; i++)
			slot_step(t, ev[i].data.ptr);
		now = now_ns();
		for (int i = 0; i < t->nslots; i++) {
			struct slot *s = &t->slots[i];

			if (s->st != S_FREE && now > s->deadline)
				slot_timeout(t, s);
			if (s->st == S_FREE && now < t->t_end && rate_take(t, now)) {
				slot_start(t, s);
				/* a socket() failure leaves it free: pace the retries */
				if (s->st == S_FREE)
					usleep(1000);
			}
		}
	}
	for (int i = 0; i < t->nslots; i++) {
		if (t->slots[i].st != S_FREE)
			slot_close(t, &t->slots[i], false); /* cut off by the clock: not counted */
	}
	return NULL;
}

/*
 * --hold: the main thread waits for every thread to have opened its share
 * (hold_setup_left, counted down with the default seq_cst order, so what a
 * thread counted before is visible to the main thread after), then for the
 * hold time or a signal, then sets hold_stop. After its setup a thread only
 * touches its `dropped` counter, read after the join.
 */
static atomic_int hold_setup_left;
static atomic_bool hold_stop;
static volatile sig_atomic_t got_signal;

static void
on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

static void *
hold_thread_run(void *arg)
{
	struct bench_thread *t = arg;
	struct epoll_event ev[256];
	uint64_t now, next_scan = 0;
	bool setup = true;

	while (!atomic_load(&hold_stop)) {
		now = now_ns();
		while (setup && t->hold_next < t->nslots && t->inflight < t->cap &&
			rate_take(t, now))
			slot_start(t, &t->slots[t->hold_next++]);
		if (setup && t->hold_next == t->nslots && t->inflight == 0) {
			setup = false;
			atomic_fetch_sub(&hold_setup_left, 1);
		}
		int n = epoll_wait(t->ep, ev, 256, wait_ms(t, now));

		for (int i = 0; i < n; i++)
			slot_step(t, ev[i].data.ptr);
		/* a scan of every slot is O(N): every 10 ms is enough for timeouts */
		now = now_ns();
		if (setup && now >= next_scan) {
			next_scan = now + 10000000ull;
			for (int i = 0; i < t->hold_next; i++) {
				struct slot *s = &t->slots[i];

				if (s->st != S_FREE && s->st != S_HELD && now > s->deadline)
					slot_timeout(t, s);
			}
		}
	}
	for (int i = 0; i < t->nslots; i++) {
		if (t->slots[i].st != S_FREE)
			slot_close(t, &t->slots[i], true);
	}
	return NULL;
}

static SSL_CTX *
make_ctx(const struct bench_opts *o)
{
	SSL_CTX *ctx = NULL;
	int v = o->tls == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;

	/* before the first certificate or key is parsed (gw_ossl.h) */
	if (!o->provider_ec && gw_ossl_ec_builtin() < 0) {
		fprintf(stderr, "tls: %s\n", gw_err_msg());
		return NULL;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		goto err;
	SSL_CTX_set_min_proto_version(ctx, v);
	SSL_CTX_set_max_proto_version(ctx, v);
	if (o->resume) {
		/* tickets, kept per slot by new_session_cb, not in a shared cache */
		SSL_CTX_set_session_cache_mode(
			ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	} else {
		/* full handshakes only: no tickets, no client session cache */
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}
	/* --bytes: write what fits, keep going from where a write stopped */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	/* --hold: thousands of idle SSLs, none needs its buffers while idle */
	if (o->hold)
		SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
		fprintf(stderr, "tls: cannot load client certificate chain '%s'\n", o->cert);
		goto err;
	}
	{
		/* load, then attach: the two failures need different fixes */
		FILE *f = fopen(o->key, "r");
		EVP_PKEY *pk = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
		int used;

		if (f)
			fclose(f);
		if (!pk) {
			fprintf(stderr, "tls: cannot load client key '%s': %s\n", o->key,
				f ? "not a PEM private key" : strerror(errno));
			goto err;
		}
		used = SSL_CTX_use_PrivateKey(ctx, pk);
		EVP_PKEY_free(pk);
		if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
			fprintf(stderr, "tls: key '%s' does not match certificate '%s'\n", o->key,
				o->cert);
			goto err;
		}
	}
	if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
		fprintf(stderr, "tls: cannot load CA '%s'\n", o->ca);
		goto err;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (o->groups && SSL_CTX_set1_groups_list(ctx, o->groups) != 1) {
		fprintf(stderr, "tls: bad --groups '%s'\n", o->groups);
		goto err;
	}
	return ctx;
err:
	ERR_print_errors_fp(stderr);
	SSL_CTX_free(ctx);
	return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static uint32_t
pct(const uint32_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void
json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* The threads' results, merged. */
struct merged {
	uint64_t ok, hs, fails, other, echoed, offered, resumed, late, held, dropped;
	size_t nlat;
	uint32_t *lat; /* sorted; NULL when nothing was recorded or no memory */
	struct fail_count all[FAIL_SLOTS * 4];
	int nall;
};

static void
merge(struct bench_thread *th, int nth, struct merged *m)
{
	size_t k = 0;

	memset(m, 0, sizeof(*m));
	for (int i = 0; i < nth; i++) {
		m->ok += th[i].ok;
		m->hs += th[i].handshakes;
		m->echoed += th[i].echoed;
		m->offered += th[i].offered;
		m->resumed += th[i].resumed;
		m->late += th[i].late;
		m->held += th[i].held;
		m->dropped += atomic_load_explicit(&th[i].dropped, memory_order_relaxed);
		m->fails += th[i].fail_total;
		m->other += th[i].fail_other;
		m->nlat += th[i].nlat;
		for (int j = 0; j < FAIL_SLOTS && th[i].fails[j].n; j++) {
			int a;
			for (a = 0; a < m->nall; a++)
				if (strcmp(m->all[a].reason, th[i].fails[j].reason) == 0)
					break;
			if (a == m->nall) {
				if (m->nall == (int)(sizeof(m->all) / sizeof(m->all[0]))) {
					m->other += th[i].fails[j].n;
					continue;
				}
				m->all[m->nall] = th[i].fails[j];
				m->all[m->nall++].n = 0;
			}
			m->all[a].n += th[i].fails[j].n;
		}
	}
	m->lat = malloc((m->nlat ? m->nlat : 1) * sizeof(*m->lat));
	for (int i = 0; m->lat && i < nth; i++) {
		if (th[i].nlat == 0)
			continue; /* lat_us may be NULL */
		memcpy(m->lat + k, th[i].lat_us, th[i].nlat * sizeof(*m->lat));
		k += th[i].nlat;
	}
	if (m->lat)
		qsort(m->lat, m->nlat, sizeof(*m->lat), cmp_u32);
	else
		m->nlat = 0;
}

static void
json_failures(const struct merged *m)
{
	printf("\"failed\":%llu,\"failures\":{", (unsigned long long)m->fails);
	for (int a = 0; a < m->nall; a++) {
		if (a)
			putchar(',');
		json_str(m->all[a].reason);
		printf(":%llu", (unsigned long long)m->all[a].n);
	}
	if (m->other)
		printf("%s\"other\":%llu", m->nall ? "," : "", (unsigned long long)m->other);
	putchar('}');
}

static void
text_failures(const struct merged *m)
{
	printf("  failures           %llu\n", (unsigned long long)m->fails);
	for (int a = 0; a < m->nall; a++)
		printf("    %8llu  %s\n", (unsigned long long)m->all[a].n, m->all[a].reason);
	if (m->other)
		printf("    %8llu  (other reasons)\n", (unsigned long long)m->other);
}

/* Merge the threads' results and print them. */
static void
report(const struct bench_opts *o, struct bench_thread *th, int nth, double secs, double cpu)
{
	struct merged m;
	const uint32_t *lat;
	size_t nlat;

	merge(th, nth, &m);
	lat = m.lat;
	nlat = m.nlat;
	if (o->json) {
		printf("{\"mode\":\"tls\",");
		if (o->label) {
			printf("\"label\":");
			json_str(o->label);
			printf(",");
		}
		printf("\"tls\":\"1.%d\",\"concurrency\":%d,\"threads\":%d,\"seconds\":%.3f,"
		       "\"connections_ok\":%llu,\"handshakes\":%llu,\"handshakes_per_s\":%.1f,"
		       "\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u,\"max_us\":%u,"
		       "\"echo_bytes\":%llu,\"echo_mb_per_s\":%.2f,",
			o->tls % 10, o->concurrency, o->threads, secs, (unsigned long long)m.ok,
			(unsigned long long)m.hs, (double)m.ok / secs, pct(lat, nlat, 0.50),
			pct(lat, nlat, 0.90), pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] : 0,
			(unsigned long long)m.echoed, (double)m.echoed / secs / 1e6);
		printf("\"resume\":%s,\"resume_offered\":%llu,\"resumed\":%llu,\"rate\":%.1f,"
		       "\"rate_late\":%llu,",
			o->resume ? "true" : "false", (unsigned long long)m.offered,
			(unsigned long long)m.resumed, o->rate, (unsigned long long)m.late);
		printf("\"client_cpu_s\":%.3f,", cpu);
		json_failures(&m);
		printf("}\n");
	} else {
		printf("%s%s%.1f s, concurrency %d, %d thread(s), TLS 1.%d%s\n",
			o->label ? o->label : "", o->label ? ": " : "", secs, o->concurrency,
			o->threads, o->tls % 10, o->request ? ", one request each" : "");
		printf("  %s handshakes/s  %.1f  (%llu connections ok, %llu handshakes)\n",
			o->resume ? "all" : "full", (double)m.ok / secs, (unsigned long long)m.ok,
			(unsigned long long)m.hs);
		if (o->resume)
			printf("  resumed            %llu of %llu handshakes (%llu offered a "
			       "ticket)\n",
				(unsigned long long)m.resumed, (unsigned long long)m.hs,
				(unsigned long long)m.offered);
		if (o->rate > 0)
			printf("  paced              %.1f starts/s asked, %llu started >10 ms "
			       "late\n",
				o->rate, (unsigned long long)m.late);
		printf("  handshake latency  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n",
			pct(lat, nlat, 0.50) / 1e3, pct(lat, nlat, 0.90) / 1e3,
			pct(lat, nlat, 0.99) / 1e3, nlat ? lat[nlat - 1] / 1e3 : 0.0);
		if (o->echo_bytes)
			printf("  echoed             %.2f MB/s  (%llu bytes back, verified)\n",
				(double)m.echoed / secs / 1e6, (unsigned long long)m.echoed);
		printf("  client CPU         %.2f s\n", cpu);
		text_failures(&m);
	}
	free(m.lat);
}

/* --hold: the line when the setup is over (event "established"), and the
 * one after the close (event "closed", with secs held) */
static void
report_hold(const struct bench_opts *o, struct bench_thread *th, int nth, bool closed, double secs)
{
	struct merged m;

	merge(th, nth, &m);
	if (o->json) {
		printf("{\"mode\":\"hold\",\"event\":\"%s\",", closed ? "closed" : "established");
		if (o->label) {
			printf("\"label\":");
			json_str(o->label);
			printf(",");
		}
		printf("\"target\":%d,\"held\":%llu,\"dropped\":%llu,\"%s\":%.3f,"
		       "\"p50_us\":%u,\"p99_us\":%u,",
			o->hold, (unsigned long long)(m.held - m.dropped),
			(unsigned long long)m.dropped, closed ? "held_s" : "setup_s", secs,
			pct(m.lat, m.nlat, 0.50), pct(m.lat, m.nlat, 0.99));
		json_failures(&m);
		printf("}\n");
	} else if (!closed) {
		printf("%s%sheld %llu of %d connections, set up in %.1f s (handshake p50 %.2f ms, "
		       "p99 %.2f ms), %llu failed, %llu dropped by the server\n",
			o->label ? o->label : "", o->label ? ": " : "",
			(unsigned long long)(m.held - m.dropped), o->hold, secs,
			pct(m.lat, m.nlat, 0.50) / 1e3, pct(m.lat, m.nlat, 0.99) / 1e3,
			(unsigned long long)m.fails, (unsigned long long)m.dropped);
		if (m.fails)
			text_failures(&m);
	} else {
		printf("%s%sclosed %llu connections after %.1f s held, %llu dropped by the server "
		       "meanwhile\n",
			o->label ? o->label : "", o->label ? ": " : "",
			(unsigned long long)(m.held - m.dropped), secs,
			(unsigned long long)m.dropped);
	}
	fflush(stdout);
	free(m.lat);
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: mtlsgw-bench tls --connect IP:PORT --cert CHAIN.pem --key KEY.pem --ca "
		"ROOT.pem\n"
		"                        [--servername NAME] [--concurrency N] [--threads N]\n"
		"                        [--seconds S] [--warmup S] [--timeout S] [--tls 1.3|1.2]\n"
		"                        [--groups LIST] [--request STR [--expect STR]]\n"
		"                        [--label TEXT] [--json] [--resume] [--rate R] [--hold N]\n"
		"                        [--provider-ec]\n"
		"Opens full mutual-TLS handshakes (no resumption) for S seconds and reports\n"
		"handshakes/s, p50/p90/p99 handshake latency and failures by reason.\n"
		"  --request STR  after the handshake send STR (\\r \\n escapes) and wait for\n"
		"                 the first bytes of the answer; only then is the connection ok\n"
		"                 (proves the server accepted the client certificate)\n"
		"  --expect STR   the answer's first bytes must contain STR, else it is a failure\n"
		"  --warmup S     run S seconds first without counting them (default 0)\n"
		"  --timeout S    per-connection limit without progress (default 5)\n"
		"  --bytes N[K|M|G]  after the handshake stream N bytes through an echo\n"
		"                 server (tls-echo) and check every byte that comes back;\n"
		"                 reports echoed MB/s (the record path)\n"
		"  --resume       accept TLS 1.3 tickets; each slot offers the last ticket its\n"
		"                 previous connection received (read with the answer: use\n"
		"                 --request); reports how many handshakes the server resumed\n"
		"                 (SSL_session_reused): 0 if it ignores the tickets\n"
		"  --rate R       open loop: start at most R connections/s in total, on a\n"
		"                 schedule spread over the threads (free slots permitting;\n"
		"                 starts >10 ms behind it are reported as late), so latency\n"
		"                 can be read below saturation\n"
		"  --hold N       open N connections (handshake and --request each), keep them\n"
		"                 open and idle, print one line (JSON with --json, event\n"
		"                 \"established\") when all are set up, hold them until --seconds\n"
		"                 have passed since then or SIGTERM/SIGINT, close them and print\n"
		"                 a last line (event \"closed\"). Setup is paced: at most\n"
		"                 --concurrency in progress, and --rate if given. Raises\n"
		"                 RLIMIT_NOFILE as needed. No retries: a failed one is "
		"reported.\n"
		"  --provider-ec  keep OpenSSL 3.0's provider code for EC keys; by default the\n"
		"                 client uses OpenSSL's built-in EC methods, as mtlsgw does,\n"
		"                 which costs it a quarter to a third less CPU per\n"
		"                 handshake (0.98 -> 0.65 ms against mtlsgw): the\n"
		"                 cheaper the load generator, the more the server's cost shows\n");
}

/* "\r\n" escapes in --request, so a shell user can write an HTTP request. */
static size_t
unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && (r[1] == 'r' || r[1] == 'n' || r[1] == '\\')) {
			*w++ = r[1] == 'r' ? '\r' : r[1] == 'n' ? '\n' : '\\';
			r++;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static int
parse_num(const char *opt, const char *v, double lo, double hi, double *out)
{
	char *end;
	double d = strtod(v, &end);

	if (end == v || *end || d < lo || d > hi) {
		fprintf(stderr, "tls: %s '%s': want a number from %g to %g\n", opt, v, lo, hi);
		return -1;
	}
	*out = d;
	return 0;
}

/* "64K", "100M", "1G" (powers of 1024) or plain bytes; at least 1. */
static int
parse_size(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long n;
	uint64_t mul = 1;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (*end == 'K' || *end == 'k')
		mul = 1ull << 10;
	else if (*end == 'M' || *end == 'm')
		mul = 1ull << 20;
	else if (*end == 'G' || *end == 'g')
		mul = 1ull << 30;
	if (mul != 1)
		end++;
	if (end == v || *end || errno || v[0] == '-' || n == 0 || n > (1ull << 40) / mul) {
		fprintf(stderr, "tls: --bytes '%s': want a size like 65536, 64K, 100M, 1G\n", v);
		return -1;
	}
	*out = n * mul;
	return 0;
}

/* --hold: room for N sockets (root may raise the hard limit too) */
static int
raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_cur >= want)
		return 0;
	if (rl.rlim_max < want)
		rl.rlim_max = want;
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		fprintf(stderr, "tls: --hold: cannot raise RLIMIT_NOFILE to %llu: %s\n",
			(unsigned long long)want, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * --hold, on the main thread while `running` threads open their shares:
 * wait for the setup (or a signal), report it, hold for --seconds (or until
 * a signal), stop and join the threads, report the close. 0 if any
 * connection was held.
 */
static int
hold_wait(const struct bench_opts *o, struct bench_thread *th, int running, uint64_t t0)
{
	uint64_t t_est, held = 0;

	while (atomic_load(&hold_setup_left) > 0 && !got_signal)
		usleep(10000);
	t_est = now_ns();
	if (atomic_load(&hold_setup_left) == 0)
		report_hold(o, th, running, false, (double)(t_est - t0) / 1e9);
	while (!got_signal && now_ns() - t_est < (uint64_t)(o->seconds * 1e9))
		usleep(20000);
	atomic_store(&hold_stop, true);
	for (int i = 0; i < running; i++)
		pthread_join(th[i].tid, NULL);
	report_hold(o, th, running, true, (double)(now_ns() - t_est) / 1e9);
	for (int i = 0; i < running; i++)
		held += th[i].held;
	if (held == 0)
		fprintf(stderr, "tls: --hold: no connection was established\n");
	return held ? 0 : 1;
}

int gw_bench_tls_main(int argc, char **argv);

int
gw_bench_tls_main(int argc, char **argv)
{
	static const struct option lo[] = {{"connect", required_argument, NULL, 'c'},
		{"cert", required_argument, NULL, 'C'}, {"key", required_argument, NULL, 'K'},
		{"ca", required_argument, NULL, 'A'}, {"servername", required_argument, NULL, 'S'},
		{"concurrency", required_argument, NULL, 'n'},
		{"threads", required_argument, NULL, 't'},
		{"seconds", required_argument, NULL, 's'}, {"warmup", required_argument, NULL, 'w'},
		{"timeout", required_argument, NULL, 'T'}, {"tls", required_argument, NULL, 'v'},
		{"groups", required_argument, NULL, 'g'}, {"request", required_argument, NULL, 'r'},
		{"label", required_argument, NULL, 'l'}, {"expect", required_argument, NULL, 'e'},
		{"bytes", required_argument, NULL, 'b'}, {"json", no_argument, NULL, 'j'},
		{"resume", no_argument, NULL, 'R'}, {"rate", required_argument, NULL, 'p'},
		{"hold", required_argument, NULL, 'H'}, {"provider-ec", no_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct bench_opts o = {
		.concurrency = 16, .threads = 1, .tls = 13, .seconds = 10, .timeout = 5};
	const char *connect_to = NULL;
	struct bench_thread *th = NULL;
	struct rusage ru0, ru1;
	SSL_CTX *ctx = NULL;
	uint64_t t0, t1;
	double d;
	int c, rc = 1, nth = 0, running = 0;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			connect_to = optarg;
			break;
		case 'C':
			o.cert = optarg;
			break;
		case 'K':
			o.key = optarg;
			break;
		case 'A':
			o.ca = optarg;
			break;
		case 'S':
			o.servername = optarg;
			break;
		case 'g':
			o.groups = optarg;
			break;
		case 'l':
			o.label = optarg;
			break;
		case 'e':
			o.expect = optarg;
			break;
		case 'b':
			if (parse_size(optarg, &o.echo_bytes) < 0)
				return 2;
			break;
		case 'j':
			o.json = true;
			break;
		case 'R':
			o.resume = true;
			break;
		case 'P':
			o.provider_ec = true;
			break;
		case 'p':
			if (parse_num("--rate", optarg, 0.1, 10000000, &o.rate) < 0)
				return 2;
			break;
		case 'H':
			if (parse_num("--hold", optarg, 1, 1000000, &d) < 0)
				return 2;
			o.hold = (int)d;
			break;
		case 'r':
			o.request = optarg;
			o.request_len = unescape(optarg);
			if (o.request_len == 0) {
				fprintf(stderr, "tls: --request must not be empty\n");
				return 2;
			}
			break;
		case 'n':
			if (parse_num("--concurrency", optarg, 1, 100000, &d) < 0)
				return 2;
			o.concurrency = (int)d;
			break;
		case 't':
			if (parse_num("--threads", optarg, 1, 256, &d) < 0)
				return 2;
			o.threads = (int)d;
			break;
		case 's':
			if (parse_num("--seconds", optarg, 0.1, 86400, &o.seconds) < 0)
				return 2;
			break;
		case 'w':
			if (parse_num("--warmup", optarg, 0, 3600, &o.warmup) < 0)
				return 2;
			break;
		case 'T':
			if (parse_num("--timeout", optarg, 0.01, 3600, &o.timeout) < 0)
				return 2;
			break;
		case 'v':
			if (strcmp(optarg, "1.3") == 0)
				o.tls = 13;
			else if (strcmp(optarg, "1.2") == 0)
				o.tls = 12;
			else {
				fprintf(stderr, "tls: --tls '%s': want 1.3 or 1.2\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "tls: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!connect_to || !o.cert || !o.key || !o.ca) {
		fprintf(stderr, "tls: --connect, --cert, --key and --ca are required\n");
		usage(stderr);
		return 2;
	}
	{
		char host[64];
		const char *colon = strrchr(connect_to, ':');
		char *end;
		long port = colon ? strtol(colon + 1, &end, 10) : 0;

		o.addr.sin_family = AF_INET;
		if (!colon || (size_t)(colon - connect_to) >= sizeof(host) || *end || port <= 0 ||
			port > 65535) {
			fprintf(stderr, "tls: --connect '%s': want IPv4:PORT\n", connect_to);
			return 2;
		}
		memcpy(host, connect_to, (size_t)(colon - connect_to));
		host[colon - connect_to] = '\0';
		if (inet_pton(AF_INET, host, &o.addr.sin_addr) != 1) {
			fprintf(stderr, "tls: --connect '%s': '%s' is not an IPv4 address\n",
				connect_to, host);
			return 2;
		}
		o.addr.sin_port = htons((uint16_t)port);
	}
	if (o.echo_bytes && o.request) {
		fprintf(stderr, "tls: --bytes and --request exclude each other\n");
		return 2;
	}
	if (o.expect && !o.request) {
		fprintf(stderr, "tls: --expect needs --request\n");
		return 2;
	}
	if (o.hold && (o.echo_bytes || o.warmup > 0)) {
		fprintf(stderr, "tls: --hold excludes --bytes and --warmup\n");
		return 2;
	}
	if (o.threads > o.concurrency)
		o.threads = o.concurrency;
	if (o.hold && o.threads > o.hold)
		o.threads = o.hold;
	if (o.hold && raise_nofile((rlim_t)o.hold + 256) < 0)
		return 1;

	pattern_init();
	ctx = make_ctx(&o);
	if (!ctx)
		goto out;
	th = calloc((size_t)o.threads, sizeof(*th));
	if (!th)
		goto out;
	nth = o.threads;
	for (int i = 0; i < nth; i++)
		th[i].ep = -1;
	if (o.hold) {
		/* no SA_RESTART: a signal only sets the flag the loops look at */
		struct sigaction sa = {.sa_handler = on_signal};

		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		atomic_store(&hold_setup_left, o.threads);
	}
	t0 = now_ns();
	getrusage(RUSAGE_SELF, &ru0);
	for (int i = 0; i < nth; i++) {
		struct bench_thread *t = &th[i];

		t->o = &o;
		t->ctx = ctx;
		t->nslots = o.concurrency / o.threads + (i < o.concurrency % o.threads);
		if (o.hold) {
			/* slots: this thread's share of N; cap: of --concurrency */
			t->cap = t->nslots;
			t->nslots = o.hold / o.threads + (i < o.hold % o.threads);
		}
		t->slots = calloc((size_t)t->nslots, sizeof(*t->slots));
		t->ep = epoll_create1(EPOLL_CLOEXEC);
		t->t_measure = t0 + (uint64_t)(o.warmup * 1e9);
		t->t_end = t->t_measure + (uint64_t)(o.seconds * 1e9);
		if (!t->slots || t->ep < 0) {
			fprintf(stderr, "tls: out of memory or epoll: %s\n", strerror(errno));
			goto join;
		}
		for (int j = 0; j < t->nslots; j++)
			t->slots[j].fd = -1;
		if (o.rate > 0) {
			/* R / threads each, the threads' schedules staggered */
			t->interval = (uint64_t)(1e9 * o.threads / o.rate);
			t->next_due = t0 + t->interval * (uint64_t)i / (uint64_t)o.threads;
		}
		if (pthread_create(&t->tid, NULL, o.hold ? hold_thread_run : bench_thread_run, t) !=
			0) {
			fprintf(stderr, "tls: cannot start thread %d\n", i);
			goto join;
		}
		running++;
	}
	rc = 0;
	if (o.hold) {
		rc = hold_wait(&o, th, running, t0);
		running = 0; /* joined */
	}
join:
	/* on a setup failure the started threads still run to their end time
	 * (--hold: until told to stop) */
	atomic_store(&hold_stop, true);
	for (int i = 0; i < running; i++)
		pthread_join(th[i].tid, NULL);
	t1 = now_ns();
	getrusage(RUSAGE_SELF, &ru1);
	if (rc == 0 && !o.hold) {
		double secs = (double)(t1 - t0) / 1e9 - o.warmup;
		double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec +
				      ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
			     (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
				      ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) /
				     1e6;
		report(&o, th, o.threads, secs, cpu);
		/* a run where nothing succeeded is a failed measurement */
		uint64_t ok = 0;
		for (int i = 0; i < o.threads; i++)
			ok += th[i].ok;
		if (ok == 0) {
			fprintf(stderr, "tls: no connection succeeded\n");
			rc = 1;
		}
	}
	for (int i = 0; i < nth; i++) {
		for (int j = 0; th[i].slots && j < th[i].nslots; j++)
			SSL_SESSION_free(th[i].slots[j].sess);
		free(th[i].slots);
		free(th[i].lat_us);
		if (th[i].ep >= 0)
			close(th[i].ep);
	}
out:
	free(th);
	SSL_CTX_free(ctx);
	return rc;
}
