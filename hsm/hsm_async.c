/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hsm_async.c - token signatures off the worker: a pool of HSM threads fed
 * by a bounded lock-free queue, completions posted to per-worker rings, and
 * the key-method wrappers that turn a signature inside an OpenSSL ASYNC job
 * into a request plus ASYNC_pause_job() (see hsm.h, "Asynchronous
 * signatures").
 *
 * Wrapping. libp11 0.4.12 gives every EC key of the engine one shared
 * EC_KEY_METHOD (OpenSSL's, with sign/sign_sig reaching the token and a
 * finish that drops the key's PKCS#11 object) and every RSA key one shared
 * RSA_METHOD (rsa_priv_enc = the token's C_Sign with CKM_RSA_PKCS or
 * CKM_RSA_X_509; OpenSSL's legacy RSA path pads PSS itself and calls
 * priv_enc with RSA_NO_PADDING). A per-key method cannot be installed:
 * EC_KEY_set_method/RSA_set_method run the old method's finish, which
 * frees the key's PKCS#11 object. So the engine's own method objects get
 * their signing entry replaced, once, at the first key load (before any key
 * of that method is handed out, under the engine lock): the wrapper calls
 * the saved original synchronously outside an ASYNC job or on a thread with
 * no completion ring bound, so control, the CLI and the tests sign exactly
 * as before.
 *
 * In place. With inline_below_us, req_wait may keep a request off the
 * queue (sign_here_ok, hsm.h "Signing in place"): the job pauses all the
 * same, and the worker, told GW_HSM_ASYNC_INLINE, signs it on its own stack
 * (gw_hsm_async_sign_here, in the HSM side's place) and resumes the job at
 * once. Not inside the job: an ASYNC job's stack is 32 KB, too little to
 * promise to a PKCS#11 module. inflight counts the requests queued or being
 * signed on an HSM thread, sign_us[] the mean signature time per key type,
 * both read with relaxed loads: a stale value costs one signature made the
 * other way, nothing else. Every signature updates its mean with a plain
 * load and store: concurrent updates may lose a sample.
 *
 * Ownership. A request is shared by the worker (the paused job) and the HSM
 * side (queue, thread, then the completion ring) and reference counted: the
 * last of the two frees it. state goes PENDING -> DONE (the HSM side
 * finished) or PENDING -> ABANDONED (the worker gave up: timeout, the
 * connection freed); whichever CAS wins decides, so a late result is
 * dropped and never touches a freed connection. A request holds a
 * reference on its EC_KEY/RSA (a reload may free the snapshot and its
 * EVP_PKEY while the HSM thread still signs) and on its ring.
 */
#include "ossl_compat.h" /* first: the ENGINE-era key method API, see there */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "hsm_internal.h"

enum req_state { RS_PENDING, RS_DONE, RS_ABANDONED };
enum req_kind { RK_PKEY, RK_EC_SIG, RK_EC_DER, RK_RSA };

#define REQ_IN_MAX 512 /* digest (EC) or modulus-sized block (RSA up to 4096 bits) */

struct gw_hsm_async_req {
	struct gw_hsm_async_req *next; /* completion ring link */
	int refs;                      /* __atomic */
	int state;                     /* enum req_state, __atomic */
	enum req_kind kind;
	bool here; /* to be signed in place: the worker is its "HSM side" */
	struct gw_hsm_async_ring *ring;
	void *cookie; /* the worker's; only the worker's thread touches it */
	EC_KEY *ec;
	RSA *rsa;
	EVP_PKEY *pkey;   /* RK_PKEY: the key; the HSM thread makes its own EVP_PKEY_CTX */
	const EVP_MD *md; /* RK_PKEY: signature digest, RSA-PSS MGF1 digest */
	const EVP_MD *mgf1_md;
	int saltlen;
	int padding; /* RSA */
	int type;    /* EC sign: digest NID, passed on */
	int in_len;
	unsigned char in[REQ_IN_MAX];
	/* results, written by the HSM thread before state = DONE */
	ECDSA_SIG *sig;
	int out_len;
	unsigned char out[REQ_IN_MAX];
};

/* Treiber stack: HSM threads push, the worker takes all at once (no ABA). */
#define RING_CLOSED ((struct gw_hsm_async_req *)1)

struct gw_hsm_async_ring {
	struct gw_hsm_async_req *head; /* __atomic; RING_CLOSED after destroy */
	int refs;                      /* the worker's + one per live request */
	int efd;                       /* eventfd: written when a push finds the ring empty */
};

/* Bounded MPMC queue (D. Vyukov's): workers enqueue, HSM threads dequeue. */
struct qcell {
	size_t seq; /* __atomic */
	struct gw_hsm_async_req *r;
};

static struct {
	pthread_mutex_t lock; /* start/stop only, never on a signature's path */
	unsigned users;
	bool running; /* __atomic: submissions accepted */
	bool stop;    /* __atomic */
	struct gw_hsm_async_params p;
	pthread_t *th;
	unsigned n_th;
	sem_t sem;
	struct qcell *q;
	size_t mask;
	size_t enq, deq;     /* __atomic */
	size_t inflight;     /* __atomic: queued or being signed on an HSM thread */
	unsigned sign_us[2]; /* __atomic: mean signature time, [0] EC, [1] RSA */
#ifdef GW_TEST_HOOKS
	bool hold;         /* __atomic */
	unsigned delay_us; /* __atomic */
#endif
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .sign_us = {UINT_MAX, UINT_MAX}};

/* The engine's originals (set once, under the engine lock, before any use). */
typedef int pm_sign_fn(EVP_PKEY_CTX *, unsigned char *, size_t *, const unsigned char *, size_t);
static pm_sign_fn *orig_pm_sign_ec, *orig_pm_sign_rsa;
static int (*orig_ec_sign)(int, const unsigned char *, int, unsigned char *, unsigned int *,
	const BIGNUM *, const BIGNUM *, EC_KEY *);
static ECDSA_SIG *(*orig_ec_sign_sig)(
	const unsigned char *, int, const BIGNUM *, const BIGNUM *, EC_KEY *);
static int (*orig_rsa_priv_enc)(int, const unsigned char *, unsigned char *, RSA *, int);

/* The worker thread's view: where completions go, what the last signature did. */
static __thread struct gw_hsm_async_ring *tl_ring;
static __thread struct gw_hsm_async_req *tl_parked;
static __thread int tl_status;

/* ---- signature times ---- */

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * One more signature of that key type took t0..now: into the mean (1/8).
 * One at or above inline_below_us becomes the mean at once, so signing in
 * place stops after a single slow signature, and comes back only once the
 * HSM threads' signatures have pulled the mean down again.
 */
static void
sign_time(bool rsa, uint64_t t0)
{
	uint64_t d = now_us() - t0;
	unsigned m = __atomic_load_n(&pool.sign_us[rsa], __ATOMIC_RELAXED);
	unsigned s = d >= UINT_MAX - 1 ? UINT_MAX - 1 : (unsigned)d;

	if (m != UINT_MAX && s < pool.p.inline_below_us) /* the first one sets it */
		s = (unsigned)(((uint64_t)m * 7 + s) / 8);
	__atomic_store_n(&pool.sign_us[rsa], s, __ATOMIC_RELAXED);
}

/* A slow HSM for the tests and benchmarks of test builds, wherever it signs. */
static void
test_delay(void)
{
#ifdef GW_TEST_HOOKS
	unsigned d = __atomic_load_n(&pool.delay_us, __ATOMIC_RELAXED);

	if (d)
		nanosleep(&(struct timespec){.tv_sec = d / 1000000, .tv_nsec = d % 1000000 * 1000L},
			NULL);
#endif
}

/* ---- requests ---- */

static void
ring_unref(struct gw_hsm_async_ring *g)
{
	if (__atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		close(g->efd);
		free(g); /* closed and drained: nothing left on it */
	}
}

static void
req_unref(struct gw_hsm_async_req *r)
{
	if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	ECDSA_SIG_free(r->sig);
	EVP_PKEY_free(r->pkey);
	EC_KEY_free(r->ec);
	RSA_free(r->rsa);
	OPENSSL_cleanse(r->in, sizeof(r->in));
	OPENSSL_cleanse(r->out, sizeof(r->out));
	ring_unref(r->ring);
	free(r);
}

/* The HSM side is done with r (result in r, or failed): hand it to its worker. */
static void
req_complete(struct gw_hsm_async_req *r)
{
	struct gw_hsm_async_ring *g = r->ring;
	int pend = RS_PENDING;
	struct gw_hsm_async_req *h;

	if (!__atomic_compare_exchange_n(
		    &r->state, &pend, RS_DONE, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		req_unref(r); /* abandoned: the worker is gone from it */
		return;
	}
	/* once pushed, r (and its reference on g) may be gone at any moment:
	 * hold g ourselves until the wake-up is written */
	__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
	h = __atomic_load_n(&g->head, __ATOMIC_ACQUIRE);
	do {
		if (h == RING_CLOSED) {
			req_unref(r); /* its worker is gone */
			ring_unref(g);
			return;
		}
		r->next = h;
	} while (!__atomic_compare_exchange_n(
		&g->head, &h, r, true, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE));
	/* the ring's node now holds the HSM side's reference. The first
	 * answer since the worker's last poll wakes it: it reads the eventfd
	 * before it polls, so a later push either is taken by that poll or
	 * finds the ring empty again and writes */
	if (h == NULL) {
		static const uint64_t one = 1;

		if (write(g->efd, &one, sizeof(one)) < 0) {
			/* EAGAIN only: the counter is full, the worker wakes anyway */
		}
	}
	ring_unref(g);
}

/* ---- the queue ---- */

static bool
q_push(struct gw_hsm_async_req *r)
{
	size_t pos = __atomic_load_n(&pool.enq, __ATOMIC_RELAXED);
	struct qcell *c;

	for (;;) {
		size_t seq;
		intptr_t dif;

		c = &pool.q[pos & pool.mask];
		seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
		dif = (intptr_t)seq - (intptr_t)pos;
		if (dif == 0) {
			if (__atomic_compare_exchange_n(&pool.enq, &pos, pos + 1, true,
				    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				break;
		} else if (dif < 0) {
			return false; /* full */
		} else {
			pos = __atomic_load_n(&pool.enq, __ATOMIC_RELAXED);
		}
	}
	c->r = r;
	__atomic_store_n(&c->seq, pos + 1, __ATOMIC_RELEASE);
	return true;
}

static struct gw_hsm_async_req *
q_pop(void)
{
	size_t pos = __atomic_load_n(&pool.deq, __ATOMIC_RELAXED);
	struct gw_hsm_async_req *r;
	struct qcell *c;

	for (;;) {
		size_t seq;
		intptr_t dif;

		c = &pool.q[pos & pool.mask];
		seq = __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE);
		dif = (intptr_t)seq - (intptr_t)(pos + 1);
		if (dif == 0) {
			if (__atomic_compare_exchange_n(&pool.deq, &pos, pos + 1, true,
				    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				break;
		} else if (dif < 0) {
			return NULL; /* empty */
		} else {
			pos = __atomic_load_n(&pool.deq, __ATOMIC_RELAXED);
		}
	}
	r = c->r;
	__atomic_store_n(&c->seq, pos + pool.mask + 1, __ATOMIC_RELEASE);
	return r;
}

/* ---- HSM threads ---- */

/*
 * The signature of an RK_PKEY request, on the HSM thread: with an
 * EVP_PKEY_CTX of its own (the job's may be gone by the time the token
 * answers), set up as the job's was. The engine's method (wrapped, no job
 * here) signs through the token. Returns the length or -1.
 */
static int
pkey_sign_here(struct gw_hsm_async_req *r)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(r->pkey, NULL);
	size_t n = sizeof(r->out);
	int ok;

	ok = c != NULL && EVP_PKEY_sign_init(c) == 1 &&
	     (r->md == NULL || EVP_PKEY_CTX_set_signature_md(c, r->md) == 1);
	if (ok && EVP_PKEY_get_base_id(r->pkey) == EVP_PKEY_RSA) {
		ok = EVP_PKEY_CTX_set_rsa_padding(c, r->padding) == 1;
		if (ok && r->padding == RSA_PKCS1_PSS_PADDING)
			ok = EVP_PKEY_CTX_set_rsa_pss_saltlen(c, r->saltlen) == 1 &&
			     (r->mgf1_md == NULL ||
				     EVP_PKEY_CTX_set_rsa_mgf1_md(c, r->mgf1_md) == 1);
	}
	ok = ok && EVP_PKEY_sign(c, r->out, &n, r->in, (size_t)r->in_len) == 1;
	EVP_PKEY_CTX_free(c);
	return ok ? (int)n : -1;
}

/* Is r an RSA key's signature (its own mean signature time)? */
static bool
req_rsa(const struct gw_hsm_async_req *r)
{
	return r->rsa != NULL || (r->pkey != NULL && EVP_PKEY_get_base_id(r->pkey) == EVP_PKEY_RSA);
}

/* Make r's signature, on an HSM thread or in place (gw_hsm_async_sign_here). */
static void
req_run(struct gw_hsm_async_req *r)
{
	uint64_t t0 = now_us();

	test_delay();
	/* nobody waits for it any more: spare the token */
	if (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) == RS_ABANDONED ||
		__atomic_load_n(&pool.stop, __ATOMIC_ACQUIRE))
		return;
	if (r->kind == RK_PKEY) {
		r->out_len = pkey_sign_here(r);
	} else if (r->kind == RK_EC_SIG) {
		r->sig = orig_ec_sign_sig(r->in, r->in_len, NULL, NULL, r->ec);
	} else if (r->kind == RK_EC_DER) {
		unsigned int n = sizeof(r->out);

		if (ECDSA_size(r->ec) <= (int)sizeof(r->out) &&
			orig_ec_sign(r->type, r->in, r->in_len, r->out, &n, NULL, NULL, r->ec) == 1)
			r->out_len = (int)n;
	} else {
		r->out_len = orig_rsa_priv_enc(r->in_len, r->in, r->out, r->rsa, r->padding);
	}
	sign_time(req_rsa(r), t0);
	ERR_clear_error(); /* this thread's queue; the worker reports the failure */
}

static void *
hsm_thread(void *arg)
{
	(void)arg;
	for (;;) {
		struct gw_hsm_async_req *r;

		while (sem_wait(&pool.sem) != 0 && errno == EINTR)
			;
		r = q_pop();
		if (r != NULL) {
#ifdef GW_TEST_HOOKS
			while (__atomic_load_n(&pool.hold, __ATOMIC_ACQUIRE) &&
				!__atomic_load_n(&pool.stop, __ATOMIC_ACQUIRE))
				nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
#endif
			req_run(r);
			__atomic_sub_fetch(&pool.inflight, 1, __ATOMIC_RELAXED);
			req_complete(r);
			continue;
		}
		if (__atomic_load_n(&pool.stop, __ATOMIC_ACQUIRE))
			break;
	}
	OPENSSL_thread_stop();
	return NULL;
}

/* The HSM threads' attributes: on cpus when given. Destroy attr after. */
static int
thread_attr(pthread_attr_t *attr, const cpu_set_t *cpus)
{
	int e;

	(void)pthread_attr_init(attr); /* glibc's cannot fail */
	if (cpus == NULL)
		return 0;
	e = pthread_attr_setaffinity_np(attr, sizeof(*cpus), cpus);
	if (e != 0)
		return gw_err_setf(-GW_E_HSM, GW_HERE, "HSM threads' CPUs: %s", strerror(e));
	return 0;
}

int
gw_hsm_async_start(const struct gw_hsm_async_params *p)
{
	struct gw_hsm_async_params d = {.threads = 0};
	pthread_attr_t attr;
	size_t qn = 1;
	int rc = 0;

	if (p != NULL)
		d = *p;
	GW_ENSURE(d.threads <= 256 && d.queue <= (1u << 20), -EINVAL);
	if (d.threads == 0)
		d.threads = GW_HSM_ASYNC_THREADS_DEFAULT;
	if (d.queue == 0)
		d.queue = GW_HSM_ASYNC_QUEUE_DEFAULT;
	while (qn < d.queue)
		qn <<= 1;
	pthread_mutex_lock(&pool.lock);
	if (pool.users > 0) {
		pool.users++;
		goto out;
	}
	pool.q = calloc(qn, sizeof(*pool.q));
	pool.th = calloc(d.threads, sizeof(*pool.th));
	if (pool.q == NULL || pool.th == NULL || sem_init(&pool.sem, 0, 0) != 0) {
		free(pool.q);
		free(pool.th);
		pool.q = NULL;
		pool.th = NULL;
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	for (size_t i = 0; i < qn; i++)
		pool.q[i].seq = i;
	pool.mask = qn - 1;
	pool.enq = pool.deq = 0;
	pool.p = d;
	pool.stop = false;
	pool.inflight = 0;
	pool.sign_us[0] = pool.sign_us[1] = UINT_MAX; /* this start's HSM, not the last one's */
	pool.n_th = 0;
	pool.p.cpus = NULL; /* the caller's set: only for the threads made here */
	rc = thread_attr(&attr, d.cpus);
	for (unsigned i = 0; rc == 0 && i < d.threads; i++) {
		int e = pthread_create(&pool.th[i], &attr, hsm_thread, NULL);

		if (e != 0) {
			rc = gw_err_setf(-GW_E_HSM, GW_HERE, "cannot start HSM thread %u: %s", i,
				strerror(e));
			break;
		}
		pool.n_th++;
		{ /* visible in /proc/PID/task/N/comm (top -H, bench/run) */
			char name[16];

			snprintf(name, sizeof(name), "gw-hsm-%u", i);
			(void)pthread_setname_np(pool.th[i], name);
		}
	}
	pthread_attr_destroy(&attr);
	if (rc < 0) {
		__atomic_store_n(&pool.stop, true, __ATOMIC_RELEASE);
		for (unsigned i = 0; i < pool.n_th; i++)
			sem_post(&pool.sem);
		for (unsigned i = 0; i < pool.n_th; i++)
			pthread_join(pool.th[i], NULL);
		sem_destroy(&pool.sem);
		free(pool.q);
		free(pool.th);
		pool.q = NULL;
		pool.th = NULL;
		goto out;
	}
	pool.users = 1;
#ifdef GW_TEST_HOOKS
	/* a slow HSM for benchmarks of test builds (never in a release build) */
	if (getenv("GW_TEST_HSM_DELAY_US") != NULL)
		pool.delay_us = (unsigned)strtoul(getenv("GW_TEST_HSM_DELAY_US"), NULL, 10);
#endif
	__atomic_store_n(&pool.running, true, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&pool.lock);
	return rc;
}

void
gw_hsm_async_stop(void)
{
	struct gw_hsm_async_req *r;

	pthread_mutex_lock(&pool.lock);
	if (pool.users == 0 || --pool.users > 0) {
		pthread_mutex_unlock(&pool.lock);
		return;
	}
	__atomic_store_n(&pool.running, false, __ATOMIC_RELEASE);
	__atomic_store_n(&pool.stop, true, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < pool.n_th; i++)
		sem_post(&pool.sem);
	for (unsigned i = 0; i < pool.n_th; i++)
		pthread_join(pool.th[i], NULL);
	/* what nobody took: failed back to its worker (or freed if it is gone) */
	while ((r = q_pop()) != NULL) {
		__atomic_sub_fetch(&pool.inflight, 1, __ATOMIC_RELAXED);
		req_complete(r);
	}
	sem_destroy(&pool.sem);
	free(pool.q);
	free(pool.th);
	pool.q = NULL;
	pool.th = NULL;
	pool.n_th = 0;
	pthread_mutex_unlock(&pool.lock);
}

bool
gw_hsm_async_running(void)
{
	return __atomic_load_n(&pool.running, __ATOMIC_ACQUIRE);
}

unsigned
gw_hsm_async_sign_us(bool rsa)
{
	return __atomic_load_n(&pool.sign_us[rsa], __ATOMIC_RELAXED);
}

#ifdef GW_TEST_HOOKS
void
gw_hsm_async_test_hold(bool on)
{
	__atomic_store_n(&pool.hold, on, __ATOMIC_RELEASE);
}

void
gw_hsm_async_test_delay(unsigned us)
{
	__atomic_store_n(&pool.delay_us, us, __ATOMIC_RELAXED);
}

void
gw_hsm_async_test_set_sign_us(bool rsa, unsigned us)
{
	__atomic_store_n(&pool.sign_us[rsa], us, __ATOMIC_RELAXED);
}
#endif

/* ---- rings (worker side) ---- */

int
gw_hsm_async_ring_create(struct gw_hsm_async_ring **out)
{
	struct gw_hsm_async_ring *g;

	GW_ENSURE(out != NULL, -EINVAL);
	g = calloc(1, sizeof(*g));
	GW_ENSURE(g != NULL, -ENOMEM);
	g->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g->efd < 0) {
		int rc = -errno;

		free(g);
		return gw_err_setf(rc, GW_HERE, "HSM completion ring: eventfd: %s", strerror(-rc));
	}
	g->refs = 1;
	*out = g;
	return 0;
}

int
gw_hsm_async_ring_fd(const struct gw_hsm_async_ring *g)
{
	return g != NULL ? g->efd : -1;
}

void
gw_hsm_async_ring_destroy(struct gw_hsm_async_ring *g)
{
	struct gw_hsm_async_req *r;

	if (g == NULL)
		return;
	if (tl_ring == g)
		tl_ring = NULL;
	r = __atomic_exchange_n(&g->head, RING_CLOSED, __ATOMIC_ACQ_REL);
	while (r != NULL) {
		struct gw_hsm_async_req *n = r->next;

		req_unref(r);
		r = n;
	}
	ring_unref(g);
}

void
gw_hsm_async_ring_bind(struct gw_hsm_async_ring *g)
{
	tl_ring = g;
}

unsigned
gw_hsm_async_ring_poll(struct gw_hsm_async_ring *g, gw_hsm_async_done_fn *fn, void *arg)
{
	struct gw_hsm_async_req *r;
	unsigned n = 0;

	if (__atomic_load_n(&g->head, __ATOMIC_RELAXED) == NULL)
		return 0; /* the common case: one load, no write */
	r = __atomic_exchange_n(&g->head, NULL, __ATOMIC_ACQUIRE);
	while (r != NULL) {
		struct gw_hsm_async_req *nx = r->next;

		/* NULL: the job already took the result (resumed by other means) */
		if (r->cookie != NULL)
			fn(r->cookie, arg);
		req_unref(r); /* the ring's reference */
		r = nx;
		n++;
	}
	return n;
}

enum gw_hsm_async_status
gw_hsm_async_take(struct gw_hsm_async_req **req)
{
	enum gw_hsm_async_status st = (enum gw_hsm_async_status)tl_status;

	*req = tl_parked;
	tl_parked = NULL;
	tl_status = GW_HSM_ASYNC_NONE;
	return st;
}

void
gw_hsm_async_set_cookie(struct gw_hsm_async_req *r, void *cookie)
{
	r->cookie = cookie;
}

bool
gw_hsm_async_abandon(struct gw_hsm_async_req *r)
{
	int pend = RS_PENDING;

	r->cookie = NULL;
	if (!__atomic_compare_exchange_n(
		    &r->state, &pend, RS_ABANDONED, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false;
	if (r->here)
		req_unref(r); /* its HSM side was to be the worker: never signed */
	return true;
}

void
gw_hsm_async_sign_here(struct gw_hsm_async_req *r)
{
	int pend = RS_PENDING;

	req_run(r);
	/* the HSM thread's way, without the ring: the worker resumes the job now */
	if (__atomic_compare_exchange_n(
		    &r->state, &pend, RS_DONE, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		req_unref(r);
}

/* ---- the wrappers (run inside the worker's ASYNC job) ---- */

/* In a job, with a ring to complete on and the pool up: the async path applies. */
static bool
async_applies(void)
{
	return tl_ring != NULL && ASYNC_get_current_job() != NULL &&
	       __atomic_load_n(&pool.running, __ATOMIC_ACQUIRE);
}

/*
 * Is r's signature to be made in place, by the worker, rather than on an
 * HSM thread (hsm.h, "Signing in place")?
 */
static bool
sign_here_ok(const struct gw_hsm_async_req *r)
{
	unsigned lim = pool.p.inline_below_us; /* set before running, read after it */

	return lim != 0 && __atomic_load_n(&pool.inflight, __ATOMIC_RELAXED) == 0 &&
	       __atomic_load_n(&pool.sign_us[req_rsa(r)], __ATOMIC_RELAXED) < lim;
}

static struct gw_hsm_async_req *
req_new(enum req_kind kind, const unsigned char *in, int in_len)
{
	struct gw_hsm_async_req *r;

	if (in_len < 0 || (size_t)in_len > sizeof(r->in))
		return NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->kind = kind;
	r->refs = 2; /* the job's and the HSM side's */
	r->state = RS_PENDING;
	r->in_len = in_len;
	memcpy(r->in, in, (size_t)in_len);
	r->ring = tl_ring;
	__atomic_add_fetch(&r->ring->refs, 1, __ATOMIC_RELAXED);
	return r;
}

/*
 * Queue r and pause the job until the HSM side answers or the worker gives
 * up. true: r holds a result (DONE); false: no result (queue full,
 * abandoned, pause impossible). Drops the job's reference in every case
 * except DONE, where the caller reads the result and drops it.
 */
static bool
req_wait(struct gw_hsm_async_req *r)
{
	if (sign_here_ok(r)) {
		r->here = true; /* the worker signs it once we pause */
		tl_status = GW_HSM_ASYNC_INLINE;
	} else {
		__atomic_add_fetch(&pool.inflight, 1, __ATOMIC_RELAXED);
		if (!q_push(r)) {
			__atomic_sub_fetch(&pool.inflight, 1, __ATOMIC_RELAXED);
			tl_status = GW_HSM_ASYNC_QUEUE_FULL;
			r->refs = 1; /* never reached the HSM side */
			req_unref(r);
			return false;
		}
		sem_post(&pool.sem);
		tl_status = GW_HSM_ASYNC_PARKED;
	}
	tl_parked = r;
	/* a resume before the answer (the worker polled us early) pauses again */
	while (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) == RS_PENDING) {
		if (ASYNC_pause_job() == 0) {
			/* no pause, so no take: the worker must not see r, which
			 * may be freed before SSL_do_handshake returns */
			tl_parked = NULL;
			tl_status = GW_HSM_ASYNC_NONE;
			if (!gw_hsm_async_abandon(r))
				break; /* answered meanwhile */
		}
	}
	r->cookie = NULL; /* the ring's copy, if any, must not resume us again */
	if (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) != RS_DONE) {
		req_unref(r);
		return false;
	}
	return true;
}

static ECDSA_SIG *
ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv, const BIGNUM *rp, EC_KEY *ec)
{
	struct gw_hsm_async_req *r;
	ECDSA_SIG *sig;

	if (!async_applies() || (r = req_new(RK_EC_SIG, dgst, dlen)) == NULL)
		return orig_ec_sign_sig(dgst, dlen, kinv, rp, ec);
	EC_KEY_up_ref(ec);
	r->ec = ec;
	if (!req_wait(r))
		return NULL;
	sig = r->sig;
	r->sig = NULL;
	req_unref(r);
	return sig;
}

/*
 * The engine's EVP_PKEY_METHOD sign (libp11 sets the engine on its keys,
 * so OpenSSL's EVP signing of a token key, TLS's included, lands here).
 */
static int
pm_sign(EVP_PKEY_CTX *ctx, unsigned char *sig, size_t *siglen, const unsigned char *tbs,
	size_t tbslen)
{
	EVP_PKEY *k = EVP_PKEY_CTX_get0_pkey(ctx);
	bool rsa = k != NULL && EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA;
	pm_sign_fn *orig = rsa ? orig_pm_sign_rsa : orig_pm_sign_ec;
	struct gw_hsm_async_req *r;
	int n;

	/* a size query (sig NULL) costs no token call */
	if (sig == NULL || k == NULL || tbslen > INT_MAX || !async_applies() ||
		(r = req_new(RK_PKEY, tbs, (int)tbslen)) == NULL)
		return orig(ctx, sig, siglen, tbs, tbslen);
	EVP_PKEY_up_ref(k);
	r->pkey = k;
	if (EVP_PKEY_CTX_get_signature_md(ctx, &r->md) != 1)
		r->md = NULL;
	if (rsa) {
		if (EVP_PKEY_CTX_get_rsa_padding(ctx, &r->padding) != 1)
			r->padding = RSA_PKCS1_PADDING;
		if (r->padding == RSA_PKCS1_PSS_PADDING &&
			(EVP_PKEY_CTX_get_rsa_pss_saltlen(ctx, &r->saltlen) != 1 ||
				EVP_PKEY_CTX_get_rsa_mgf1_md(ctx, &r->mgf1_md) != 1)) {
			r->refs = 1; /* not queued: ours alone */
			req_unref(r);
			return orig(ctx, sig, siglen, tbs, tbslen);
		}
	}
	ERR_clear_error();
	if (!req_wait(r))
		return 0;
	n = r->out_len;
	if (n > 0 && (size_t)n <= *siglen) {
		memcpy(sig, r->out, (size_t)n);
		*siglen = (size_t)n;
	} else {
		n = -1;
	}
	req_unref(r);
	return n > 0;
}

/* ECDSA_sign's entry (DER out): what OpenSSL's legacy EC signing calls. */
static int
ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig, unsigned int *siglen,
	const BIGNUM *kinv, const BIGNUM *rp, EC_KEY *ec)
{
	struct gw_hsm_async_req *r;
	int ok = 0;

	if (!async_applies() || (r = req_new(RK_EC_DER, dgst, dlen)) == NULL)
		return orig_ec_sign(type, dgst, dlen, sig, siglen, kinv, rp, ec);
	EC_KEY_up_ref(ec);
	r->ec = ec;
	r->type = type;
	if (!req_wait(r)) {
		*siglen = 0;
		return 0;
	}
	/* sig has ECDSA_size(ec) bytes of room (ECDSA_sign's contract) */
	if (r->out_len > 0 && r->out_len <= ECDSA_size(ec)) {
		memcpy(sig, r->out, (size_t)r->out_len);
		*siglen = (unsigned int)r->out_len;
		ok = 1;
	} else {
		*siglen = 0;
	}
	req_unref(r);
	return ok;
}

static int
rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding)
{
	struct gw_hsm_async_req *r;
	int n;

	if (!async_applies() || RSA_size(rsa) > REQ_IN_MAX ||
		(r = req_new(RK_RSA, from, flen)) == NULL)
		return orig_rsa_priv_enc(flen, from, to, rsa, padding);
	RSA_up_ref(rsa);
	r->rsa = rsa;
	r->padding = padding;
	if (!req_wait(r))
		return -1;
	n = r->out_len;
	if (n > 0 && n <= RSA_size(rsa))
		memcpy(to, r->out, (size_t)n);
	else
		n = -1;
	req_unref(r);
	return n;
}

/*
 * Put the wrappers into the engine's method objects of key k (see the top
 * of this file). Called by gw_hsm_key_load under the engine lock, before k
 * is handed out; a method already wrapped is left alone.
 */
void
gw_hsm_async_wrap_key(ENGINE *e, EVP_PKEY *k)
{
	const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(k);
	const RSA *rsa = EVP_PKEY_get0_RSA(k);
	int id = EVP_PKEY_get_base_id(k);

	if (e != NULL && (id == EVP_PKEY_EC || id == EVP_PKEY_RSA)) {
		/*
		 * libp11 makes its engine the key's EVP_PKEY_METHOD engine
		 * (EVP_PKEY_set1_engine), so OpenSSL's EVP signing, TLS's
		 * included, reaches the engine's pkey method first.
		 */
		EVP_PKEY_METHOD *pm = (EVP_PKEY_METHOD *)ENGINE_get_pkey_meth(e, id);
		pm_sign_fn **orig = id == EVP_PKEY_RSA ? &orig_pm_sign_rsa : &orig_pm_sign_ec;
		int (*init)(EVP_PKEY_CTX *) = NULL;
		pm_sign_fn *sign = NULL;

		if (pm != NULL) {
			EVP_PKEY_meth_get_sign(pm, &init, &sign);
			if (sign != NULL && sign != pm_sign && *orig == NULL) {
				*orig = sign;
				EVP_PKEY_meth_set_sign(pm, init, pm_sign);
			}
		}
	}

	ERR_clear_error(); /* get0 of the other type leaves an error */
	if (ec != NULL) {
		EC_KEY_METHOD *m = (EC_KEY_METHOD *)EC_KEY_get_method(ec);
		int (*sign)(int, const unsigned char *, int, unsigned char *, unsigned int *,
			const BIGNUM *, const BIGNUM *, EC_KEY *) = NULL;
		int (*setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;
		ECDSA_SIG *(*ss)(const unsigned char *, int, const BIGNUM *, const BIGNUM *,
			EC_KEY *) = NULL;

		if (m == NULL || m == EC_KEY_OpenSSL())
			return; /* not the engine's: nothing to offload */
		EC_KEY_METHOD_get_sign(m, &sign, &setup, &ss);
		if (sign == NULL || ss == NULL || sign == ec_sign || ss == ec_sign_sig)
			return;
		if (orig_ec_sign != NULL && (orig_ec_sign != sign || orig_ec_sign_sig != ss))
			return; /* a second, different method: leave it synchronous */
		/*
		 * Both entries: ECDSA_sign (OpenSSL's legacy EVP path, X509_sign)
		 * calls sign, ECDSA_do_sign calls sign_sig; libp11 versions differ
		 * in which one reaches the token. On the HSM thread (no job) the
		 * wrappers call straight through.
		 */
		orig_ec_sign = sign;
		orig_ec_sign_sig = ss;
		EC_KEY_METHOD_set_sign(m, ec_sign, setup, ec_sign_sig);
	} else if (rsa != NULL) {
		RSA_METHOD *m = (RSA_METHOD *)RSA_get_method(rsa);
		int (*pe)(int, const unsigned char *, unsigned char *, RSA *, int);

		if (m == NULL || m == RSA_PKCS1_OpenSSL())
			return;
		pe = RSA_meth_get_priv_enc(m);
		if (pe == NULL || pe == rsa_priv_enc)
			return;
		if (orig_rsa_priv_enc != NULL && orig_rsa_priv_enc != pe)
			return;
		orig_rsa_priv_enc = pe;
		if (RSA_meth_set_priv_enc(m, rsa_priv_enc) != 1)
			orig_rsa_priv_enc = NULL;
	}
}
