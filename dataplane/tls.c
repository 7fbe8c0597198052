/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tls.c - the TLS connection driver of a worker lcore: custom BIO over our
 * TCP, handshake stepping on TCP events, record read/write sized to the TCP
 * send buffer, close_notify, handshake and idle timeouts, the per-worker
 * handshake bound and the counters. See tls.h for the contract.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_log.h>

#include "dp_log.h"
#include "hsm.h"
#include "proxy_v2.h"
#include "svc_internal.h"
#include "tls.h"
#include "tls_policy.h"
#include "verify_cache.h"

GW_DP_LOG_REGISTER(tls);

#define TLS_REC_MAX 16384
/*
 * A failed connection's alert gets this long to reach the peer's app
 * before an RST (which would make the peer's kernel drop it, RFC 2525
 * 2.17); then it is reset, however much the peer keeps sending.
 */
#define TLS_LINGER_MS 2000

/*
 * A handshake that waits for its client's next flight makes the worker
 * wake sooner (GW_TLS_POLL_HANDSHAKING) only this long after the latest
 * such wait began: a client on the LAN answers within a few ms, while a
 * client that stalls mid-handshake (or many, for up to handshake_timeout
 * each) must not keep an idle worker waking 25,000 times a second.
 */
#define TLS_SOON_MS 10

/* CS_LINGER: released by the app, only its TCP connection is left */
enum conn_state { CS_FREE, CS_HS, CS_EST, CS_LINGER };

struct gw_tls_conn {
	struct gw_tls_worker *w;
	struct gw_tcp_conn *tcp;    /* NULL once TCP reported CLOSED */
	struct gw_tcp_conn *linger; /* after a failure: half-closed, reset at the bound */
	SSL *ssl;
	struct gw_snapshot *snap;
	const struct gw_snap_listener *lst;
	gw_tls_event_fn *cb;
	void *ctx;
	enum conn_state st;
	uint16_t busy;      /* nesting depth of our dispatch: free deferred while > 0 */
	bool dead;          /* released by the app or by us: no more events */
	bool peer_closed;   /* close_notify or EOF seen by a read */
	bool shut_sent;     /* close_notify queued */
	bool want_writable; /* app saw a short write */
	size_t wpend;       /* bytes of a record OpenSSL holds for retry */
	uint64_t t_mark;    /* handshake start or last activity (tsc) */
	uint64_t t_hello;   /* rdtsc at the first ClientHello bytes; 0: not yet */
	uint16_t hist_slot; /* latency histogram slot; GW_TLS_HIST_SLOTS: none */
	struct gw_tls_conn *prev, *next; /* hs list or idle list */
	struct gw_tls_conn *next_free;
	/* parked on an HSM signature (hsm.h): the request, when, the list */
	struct gw_hsm_async_req *areq;
	uint64_t t_park;
	struct gw_tls_conn *pk_prev, *pk_next;
	/* the access log's (gw_alog.h): filled as the connection goes */
	uint64_t t_accept;           /* rdtsc at gw_tls_accept */
	uint64_t rx_bytes, tx_bytes; /* plaintext read from / written to the client */
	uint32_t cl_ip, up_ip;       /* network order */
	uint16_t cl_port, up_port;   /* network order */
	uint8_t why;                 /* enum gw_alog_reason of a failed handshake */
	uint8_t end;                 /* enum gw_alog_end of an established one */
	bool up_failed;              /* no upstream could be connected */
	struct gw_tls_vctx v;
};

/* the access log's refusal reasons begin with the trust reasons, same values */
#define GW_ALOG_R_OK GW_ALOG_R_NONE
#define GW_TLS_SAME_REASON_(n, s)                                                             \
	_Static_assert(                                                                       \
		(int)GW_TRUST_R_##n == (int)GW_ALOG_R_##n || GW_TRUST_R_##n == GW_TRUST_R_OK, \
		"alog reason " s);
GW_TRUST_REASONS(GW_TLS_SAME_REASON_)
#undef GW_TLS_SAME_REASON_
#undef GW_ALOG_R_OK

struct tls_list {
	struct gw_tls_conn *head, *tail;
};

struct gw_tls_worker {
	struct gw_tls_worker_params p;
	uint64_t hs_ticks, idle_ticks, linger_ticks, hsm_ticks, soon_ticks;
	uint64_t now;
	uint64_t hs_wait_at; /* when a handshake last began to wait for its client */
	uint64_t last_hsm_log;
	struct gw_vcache *vcache;
	struct tls_list hs, idle, linger; /* each ordered by t_mark */
	struct tls_list parked;           /* by t_park, linked through pk_prev/pk_next */
	struct gw_hsm_async_ring *ring;   /* HSM completions (hsm_async) */
	uint32_t n_hs, n_est;
	struct gw_tls_conn *free_head;
	struct gw_tls_stats st;
	struct gw_tls_conn *conns;                 /* p.max_conns */
	uint64_t hs_bound_tsc[GW_TLS_HS_N_BOUNDS]; /* GW_TLS_HS_BOUNDS in TSC ticks */
	struct gw_tls_hs_hist hist[GW_TLS_HIST_SLOTS];
	struct gw_svc_up_fails up_fail[GW_TLS_HIST_SLOTS]; /* by listener index */
};

static const double hs_bounds_s[GW_TLS_HS_N_BOUNDS] = {GW_TLS_HS_BOUNDS};

/* A completed handshake of d ticks into its listener's histogram: at most
 * 12 compares, once per handshake, no lock (the worker's own memory). */
static void
hist_add(struct gw_tls_worker *w, const struct gw_tls_conn *t, uint64_t d)
{
	struct gw_tls_hs_hist *h;
	unsigned k = 0;

	if (t->hist_slot >= GW_TLS_HIST_SLOTS || t->t_hello == 0)
		return;
	h = &w->hist[t->hist_slot];
	while (k < GW_TLS_HS_N_BOUNDS && d > w->hs_bound_tsc[k])
		k++;
	h->b[k]++;
	h->sum_tsc += d;
}

static bool wpend_flush(struct gw_tls_conn *t);

/* ---- BIO over gw_tcp_conn ---- */

static BIO_METHOD *bio_meth;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int
bio_write(BIO *b, const char *buf, int len)
{
	struct gw_tcp_conn *c = BIO_get_data(b);
	long n;

	BIO_clear_retry_flags(b);
	if (c == NULL)
		return -1;
	n = gw_tcp_write(c, buf, (size_t)len);
	if (n > 0)
		return (int)n;
	if (n == 0 || n == -ENOBUFS) {
		/* no room and no error: retry on WRITABLE */
		BIO_set_retry_write(b);
		return -1;
	}
	return -1; /* -EPIPE / -ENOTCONN: a real error */
}

static int
bio_read(BIO *b, char *buf, int len)
{
	struct gw_tcp_conn *c = BIO_get_data(b);
	size_t n;

	BIO_clear_retry_flags(b);
	if (c == NULL)
		return 0;
	n = gw_tcp_read(c, buf, (size_t)len);
	if (n > 0)
		return (int)n;
	if (gw_tcp_peer_closed(c))
		return 0; /* EOF */
	BIO_set_retry_read(b);
	return -1;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct gw_tcp_conn *c = BIO_get_data(b);

	RTE_SET_USED(num);
	RTE_SET_USED(ptr);
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* gw_tcp_poll sends; OpenSSL treats <= 0 as failure */
	case BIO_CTRL_EOF:
		return c == NULL || gw_tcp_peer_closed(c);
	case BIO_CTRL_PENDING:
		return c ? (long)gw_tcp_rx_avail(c) : 0;
	case BIO_CTRL_WPENDING:
		return 0;
	default:
		return 0;
	}
}

static int
bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void
bio_meth_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gw_tcp");

	if (m == NULL)
		return;
	if (BIO_meth_set_write(m, bio_write) != 1 || BIO_meth_set_read(m, bio_read) != 1 ||
		BIO_meth_set_ctrl(m, bio_ctrl) != 1 || BIO_meth_set_create(m, bio_create) != 1) {
		BIO_meth_free(m);
		return;
	}
	bio_meth = m;
}

BIO *
gw_tls_bio_new(struct gw_tcp_conn *c)
{
	BIO *b;

	pthread_once(&bio_once, bio_meth_init);
	if (bio_meth == NULL || (b = BIO_new(bio_meth)) == NULL)
		return NULL;
	BIO_set_data(b, c);
	return b;
}

/* ---- lists ---- */

static void
list_del(struct tls_list *l, struct gw_tls_conn *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else if (l->head == t)
		l->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else if (l->tail == t)
		l->tail = t->prev;
	t->prev = t->next = NULL;
}

static void
list_add_tail(struct tls_list *l, struct gw_tls_conn *t)
{
	t->next = NULL;
	t->prev = l->tail;
	if (l->tail)
		l->tail->next = t;
	else
		l->head = t;
	l->tail = t;
}

/*
 * SSL_get_error() blames whatever is in the thread's error queue, so a stale
 * entry would turn a WANT_READ/WANT_WRITE into a fatal error: the queue must
 * be empty before each SSL call on the record path. ERR_clear_error() walks
 * and resets all 16 slots every time (~6% of a tls-echo worker), while the
 * queue is almost always empty already: peek first.
 */
static inline void
err_clear_stale(void)
{
	if (ERR_peek_error() != 0)
		ERR_clear_error();
}

static void
touch(struct gw_tls_conn *t)
{
	struct gw_tls_worker *w = t->w;

	if (t->st != CS_EST)
		return;
	t->t_mark = w->now;
	if (w->idle.tail != t) { /* LRU: most recent at the tail */
		list_del(&w->idle, t);
		list_add_tail(&w->idle, t);
	}
}

/* ---- handshakes parked on an HSM signature ---- */

static void
park_add(struct gw_tls_worker *w, struct gw_tls_conn *t, struct gw_hsm_async_req *r)
{
	t->areq = r;
	t->t_park = w->now;
	gw_hsm_async_set_cookie(r, t);
	t->pk_next = NULL;
	t->pk_prev = w->parked.tail;
	if (w->parked.tail)
		w->parked.tail->pk_next = t;
	else
		w->parked.head = t;
	w->parked.tail = t;
	w->st.hsm_async_parked++;
}

/* The job took its answer or was abandoned: off the list. */
static void
park_del(struct gw_tls_worker *w, struct gw_tls_conn *t)
{
	if (t->pk_prev)
		t->pk_prev->pk_next = t->pk_next;
	else
		w->parked.head = t->pk_next;
	if (t->pk_next)
		t->pk_next->pk_prev = t->pk_prev;
	else
		w->parked.tail = t->pk_prev;
	t->pk_prev = t->pk_next = NULL;
	t->areq = NULL;
}

/*
 * The connection goes while its signature is in flight: abandon the request
 * and resume the job at once so that it ends (the signature fails, or a
 * result already there is used and the handshake fails on the detached
 * BIO). An SSL freed with a paused job would leak the job and its stack.
 */
static void
park_cancel(struct gw_tls_conn *t)
{
	struct gw_tls_worker *w = t->w;
	struct gw_hsm_async_req *r = t->areq;

	BIO_set_data(SSL_get_rbio(t->ssl), NULL); /* no TCP under it any more */
	if (r != NULL)
		park_del(w, t); /* only the first one is on the parked list */
	for (int i = 0; r != NULL && i < 4; i++) {
		enum gw_hsm_async_status as;

		(void)gw_hsm_async_abandon(r);
		gw_hsm_async_ring_bind(w->ring);
		ERR_clear_error();
		r = NULL;
		if (SSL_do_handshake(t->ssl) <= 0) {
			as = gw_hsm_async_take(&r); /* another signature: abandon that too */
			if (as != GW_HSM_ASYNC_PARKED && as != GW_HSM_ASYNC_INLINE)
				r = NULL;
		}
	}
	ERR_clear_error();
}

/* ---- the access log (gw_alog.h) ---- */

/* Copy der[0..n) into dst[cap] with its length, or nothing and flag when too long. */
static void
alog_der(uint8_t *dst, size_t cap, uint16_t *len, const unsigned char *der, size_t n,
	uint8_t *flags, uint8_t cut)
{
	*len = 0;
	if (der == NULL || n == 0)
		return;
	if (n > cap) {
		*flags |= cut; /* the log shows "..."; the verdict saw it whole */
		return;
	}
	memcpy(dst, der, n);
	*len = (uint16_t)n;
}

/* NUL-ended copy of s into dst[cap]; true when s did not fit. */
static bool
alog_str(char *dst, size_t cap, const char *s)
{
	size_t n;
	bool cut;

	dst[0] = '\0';
	if (s == NULL)
		return false;
	n = strnlen(s, cap);
	cut = n == cap;
	if (cut)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return cut;
}

/*
 * The connection's record, once, as it is released: bounded copies into a
 * slot of the worker's ring, no text formatted, nothing allocated (the
 * certificate's DER is the encoding OpenSSL keeps). A full ring drops it
 * (counted by the ring).
 */
static void
alog_record(struct gw_tls_conn *t)
{
	struct gw_tls_worker *w = t->w;
	struct gw_alog_rec *r;
	const SSL_CIPHER *ci;
	X509 *peer;

	if (w->p.alog == NULL || t->hist_slot >= GW_TLS_HIST_SLOTS ||
		(r = gw_alog_slot(w->p.alog)) == NULL)
		return;
	gw_alog_stamp(r, t->t_accept, rte_rdtsc(), w->p.tsc_hz);
	r->rx_bytes = t->rx_bytes;
	r->tx_bytes = t->tx_bytes;
	r->client_ip = t->cl_ip;
	r->client_port = t->cl_port;
	r->upstream_ip = t->up_ip;
	r->upstream_port = t->up_port;
	r->listener = t->hist_slot;
	r->accepted = t->st == CS_EST;
	r->reason = r->accepted ? GW_ALOG_R_NONE : t->why;
	r->end = t->up_failed ? GW_ALOG_END_UPSTREAM : t->end;
	r->flags = t->lst != NULL && t->lst->service == GW_SVC_TLS_PROXY ? GW_ALOG_F_PROXY : 0;
	if (SSL_session_reused(t->ssl))
		r->flags |= GW_ALOG_F_RESUMED;
	if (alog_str(r->sni, sizeof(r->sni), t->v.sni))
		r->flags |= GW_ALOG_F_SNI_CUT;
	/* what the handshake agreed, once it did */
	ci = SSL_is_init_finished(t->ssl) ? SSL_get_current_cipher(t->ssl) : NULL;
	(void)alog_str(r->version, sizeof(r->version), ci != NULL ? SSL_get_version(t->ssl) : NULL);
	(void)alog_str(r->cipher, sizeof(r->cipher), ci != NULL ? SSL_CIPHER_get_name(ci) : NULL);
	r->subject_len = r->san_len = 0;
	peer = SSL_get0_peer_certificate(t->ssl);
	if (peer == NULL)
		peer = t->v.refused_leaf; /* a refused chain is not in the session */
	if (peer != NULL) {
		const unsigned char *der = NULL;
		size_t n = 0;
		int i = X509_get_ext_by_NID(peer, NID_subject_alt_name, -1);

		r->flags |= GW_ALOG_F_CERT;
		if (X509_NAME_get0_der(X509_get_subject_name(peer), &der, &n) == 1)
			alog_der(r->subject, sizeof(r->subject), &r->subject_len, der, n, &r->flags,
				GW_ALOG_F_SUBJECT_CUT);
		if (i >= 0) {
			const ASN1_OCTET_STRING *os =
				X509_EXTENSION_get_data(X509_get_ext(peer, i));

			alog_der(r->san, sizeof(r->san), &r->san_len, ASN1_STRING_get0_data(os),
				(size_t)ASN1_STRING_length(os), &r->flags, GW_ALOG_F_SAN_CUT);
		}
	}
	gw_alog_push(w->p.alog);
}

void
gw_tls_upstream_failed(struct gw_tls_worker *w, unsigned slot, int reason)
{
	if (slot < GW_TLS_HIST_SLOTS)
		gw_svc_up_fail_count(&w->up_fail[slot], reason);
}

void
gw_tls_up_fails_get(const struct gw_tls_worker *w, unsigned slot, struct gw_svc_up_fails *out)
{
	if (slot < GW_TLS_HIST_SLOTS)
		*out = w->up_fail[slot];
	else
		memset(out, 0, sizeof(*out));
}

void
gw_tls_set_upstream(struct gw_tls_conn *t, uint32_t ip, uint16_t port)
{
	t->up_ip = ip;
	t->up_port = port;
}

void
gw_tls_set_upstream_failed(struct gw_tls_conn *t)
{
	t->up_failed = true;
}

/* ---- worker ---- */

int
gw_tls_worker_create(const struct gw_tls_worker_params *p, struct gw_tls_worker **out)
{
	struct gw_tls_worker *w;
	int rc;

	GW_ENSURE(p && out, -EINVAL);
	pthread_once(&bio_once, bio_meth_init);
	GW_ENSURE(bio_meth, -GW_E_TLS);
	w = calloc(1, sizeof(*w));
	GW_ENSURE(w, -ENOMEM);
	w->p = *p;
	if (!w->p.max_conns)
		w->p.max_conns = 16384;
	if (!w->p.max_handshakes)
		w->p.max_handshakes = 512;
	if (!w->p.handshake_timeout_ms)
		w->p.handshake_timeout_ms = 10000;
	if (!w->p.idle_timeout_ms)
		w->p.idle_timeout_ms = 300000;
	if (!w->p.tsc_hz)
		w->p.tsc_hz = rte_get_tsc_hz();
	if (!w->p.vcache_entries)
		w->p.vcache_entries = 4096;
	w->hs_ticks = w->p.tsc_hz / 1000 * w->p.handshake_timeout_ms;
	w->idle_ticks = w->p.tsc_hz / 1000 * w->p.idle_timeout_ms;
	w->linger_ticks = w->p.tsc_hz / 1000 * TLS_LINGER_MS;
	w->soon_ticks = w->p.tsc_hz / 1000 * TLS_SOON_MS;
	if (!w->p.hsm_timeout_ms)
		w->p.hsm_timeout_ms = 2000;
	w->hsm_ticks = w->p.tsc_hz / 1000 * w->p.hsm_timeout_ms;
	for (unsigned k = 0; k < GW_TLS_HS_N_BOUNDS; k++)
		w->hs_bound_tsc[k] = (uint64_t)(hs_bounds_s[k] * (double)w->p.tsc_hz);
	if (w->p.hsm_async) {
		rc = gw_hsm_async_ring_create(&w->ring);
		if (rc < 0)
			goto out;
	}
	w->conns = calloc(w->p.max_conns, sizeof(*w->conns));
	if (w->conns == NULL) {
		rc = gw_err_setf(-ENOMEM, GW_HERE,
			"no memory for %u TLS connection slots (%zu bytes each; "
			"dataplane.tcp.max_connections)",
			w->p.max_conns, sizeof(*w->conns));
		goto out;
	}
	for (uint32_t i = w->p.max_conns; i-- > 0;) {
		w->conns[i].w = w;
		w->conns[i].next_free = w->free_head;
		w->free_head = &w->conns[i];
	}
	rc = gw_vcache_create(w->p.vcache_entries, w->p.vcache_max_ttl_s, &w->vcache);
	if (rc < 0)
		goto out;
	*out = w;
	return 0;
out:
	gw_hsm_async_ring_destroy(w->ring);
	free(w->conns);
	free(w);
	return rc;
}

static void
conn_free(struct gw_tls_conn *t)
{
	struct gw_tls_worker *w = t->w;

	t->st = CS_FREE;
	t->next_free = w->free_head;
	w->free_head = t;
}

/* A lingering TCP connection is over (closed by us or the peer). */
static void
linger_done(struct gw_tls_conn *t)
{
	t->linger = NULL;
	if (t->st != CS_LINGER)
		return; /* not released yet: conn_release frees it */
	list_del(&t->w->linger, t);
	conn_free(t);
}

/*
 * Release everything a connection holds; it goes back to the pool, or,
 * with a TCP connection still lingering, to the linger list until that
 * one ends.
 */
static void
conn_release(struct gw_tls_conn *t)
{
	struct gw_tls_worker *w = t->w;

	if (t->st == CS_HS || t->st == CS_EST)
		alog_record(t); /* while the SSL still holds version, cipher, certificate */
	if (t->st == CS_HS) {
		list_del(&w->hs, t);
		w->n_hs--;
	} else if (t->st == CS_EST) {
		list_del(&w->idle, t);
		w->n_est--;
	}
	if (t->areq != NULL)
		park_cancel(t);
	SSL_free(t->ssl); /* frees the BIO too */
	t->ssl = NULL;
	X509_free(t->v.refused_leaf);
	t->v.refused_leaf = NULL;
	gw_snapshot_unref(t->snap);
	t->snap = NULL;
	t->tcp = NULL;
	if (t->linger) {
		t->st = CS_LINGER;
		t->t_mark = w->now;
		list_add_tail(&w->linger, t);
		return;
	}
	conn_free(t);
}

/*
 * Unhook t from its TCP connection (the BIO reads nothing more from it) and
 * return that connection for the caller to close, abort or forget; NULL if
 * there is none any more.
 */
static struct gw_tcp_conn *
conn_detach(struct gw_tls_conn *t)
{
	struct gw_tcp_conn *c = t->tcp;

	if (c != NULL) {
		t->tcp = NULL;
		BIO_set_data(SSL_get_rbio(t->ssl), NULL);
	}
	return c;
}

/* Mark dead; free now or when the outermost dispatch unwinds. */
static void
conn_kill(struct gw_tls_conn *t)
{
	t->dead = true;
	if (t->busy == 0)
		conn_release(t);
}

void
gw_tls_worker_destroy(struct gw_tls_worker *w)
{
	if (w == NULL)
		return;
	for (uint32_t i = 0; i < w->p.max_conns; i++) {
		struct gw_tls_conn *t = &w->conns[i];

		if (t->st == CS_FREE)
			continue;
		if (t->linger)
			gw_tcp_abort(t->linger);
		t->linger = NULL;
		if (t->st == CS_LINGER) {
			list_del(&w->linger, t);
			conn_free(t);
			continue;
		}
		if (t->tcp) {
			gw_tcp_abort(t->tcp);
			(void)conn_detach(t); /* the BIO must not reach it when a job resumes */
		}
		t->busy = 0;
		t->why = GW_ALOG_R_EOF;
		t->end = GW_ALOG_END_SHUTDOWN;
		conn_release(t);
	}
	gw_hsm_async_ring_destroy(w->ring); /* after every parked job was ended */
	gw_vcache_destroy(w->vcache);
	free(w->conns);
	free(w);
}

void
gw_tls_stats_get(const struct gw_tls_worker *w, struct gw_tls_stats *out)
{
	struct gw_vcache_stats vs;

	*out = w->st;
	gw_vcache_stats_get(w->vcache, &vs);
	out->verify_cache_hit = vs.hits;
	out->handshaking = w->n_hs;
	out->established = w->n_est;
}

/* Deliver an event to the app unless it has released the connection. */
static void
app_event(struct gw_tls_conn *t, enum gw_tls_event ev, int reason)
{
	if (t->dead || t->cb == NULL)
		return;
	t->busy++;
	t->cb(t, ev, reason, t->ctx);
	t->busy--;
}

/*
 * A failed connection whose alert is on its way: discard input until the
 * peer closes, or until gw_tls_worker_poll resets it at the linger bound.
 */
static void
linger_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	struct gw_tls_conn *t = ctx;

	RTE_SET_USED(reason);
	if (ev == GW_TCP_EV_CLOSED) {
		linger_done(t); /* the handle is gone */
		return;
	}
	if (ev != GW_TCP_EV_READABLE && ev != GW_TCP_EV_PEER_FIN)
		return;
	gw_tcp_consume(c, gw_tcp_rx_avail(c));
	if (gw_tcp_peer_closed(c)) {
		gw_tcp_close(c);
		linger_done(t);
	}
}

/* Over from our side (failure, timeout): tell the app, then free. */
static void
conn_end(struct gw_tls_conn *t, int reason, bool rst)
{
	if (t->dead)
		return;
	if (t->tcp) {
		struct gw_tcp_conn *c = conn_detach(t);

		if (rst) {
			gw_tcp_abort(c);
		} else {
			/*
			 * The alert is queued; the peer may still be sending the
			 * rest of its flight (CertificateVerify, Finished ...).
			 * Closing now would answer those with RST (RFC 2525 2.17)
			 * and the peer's kernel would drop our alert with it, so
			 * half-close and discard until the peer's FIN ends the
			 * connection, for TLS_LINGER_MS at most: a peer that
			 * keeps sending must not keep it (gw_tls_worker_poll
			 * resets it then).
			 */
			gw_tcp_consume(c, gw_tcp_rx_avail(c));
			gw_tcp_shutdown(c);
			t->linger = c;
			gw_tcp_set_callback(c, linger_event, t);
		}
	}
	app_event(t, GW_TLS_EV_CLOSED, reason);
	conn_kill(t);
}

/* Failed handshake: count by cause. */
static void
hs_failed(struct gw_tls_conn *t, int ssl_err)
{
	struct gw_tls_worker *w = t->w;
	unsigned long e = ERR_peek_error();
	OSSL_HANDSHAKE_STATE hst = SSL_get_state(t->ssl);

	w->st.hs_fail++;
	if (t->v.verify_ran && t->v.reason != GW_TRUST_R_OK) {
		unsigned r = t->v.reason < GW_TRUST_R__COUNT ? t->v.reason : GW_TRUST_R_OTHER;

		w->st.hs_fail_verify++;
		w->st.reject[r]++;
		t->why = (uint8_t)r; /* the same value (asserted above) */
	} else if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		   (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
			   ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)) {
		w->st.hs_fail_no_cert++;
		t->why = GW_ALOG_R_NO_CLIENT_CERT;
	} else if (ssl_err == SSL_ERROR_SSL &&
		   (hst == TLS_ST_SW_CERT_VRFY || hst == TLS_ST_SW_KEY_EXCH)) {
		/* the step that signs with the HSM key failed */
		w->st.hs_fail_hsm++;
		t->why = GW_ALOG_R_HSM;
		if (w->now - w->last_hsm_log >= w->p.tsc_hz || w->last_hsm_log == 0) {
			w->last_hsm_log = w->now ? w->now : 1; /* at most one line a second */
			GW_DP_LOG(ERR, tls,
				"TLS: lcore %u: server signature with the HSM key failed (%s); "
				"handshakes fail until the token/key is back (counter "
				"hs_fail_hsm)",
				w->p.lcore,
				ERR_reason_error_string(e) ? ERR_reason_error_string(e)
							   : "no reason");
		}
	} else if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN) {
		w->st.hs_fail_eof++;
		t->why = GW_ALOG_R_EOF;
	} else {
		w->st.hs_fail_proto++;
		t->why = GW_ALOG_R_PROTO;
	}
	ERR_clear_error();
	conn_end(t, -EPROTO, false);
}

static void
hs_step(struct gw_tls_conn *t)
{
	struct gw_tls_worker *w = t->w;
	int rc, err;

	ERR_clear_error();
	/* the latency starts with the client's first bytes (tls.h, GW_TLS_HS_BOUNDS) */
	if (t->t_hello == 0 && t->tcp != NULL && gw_tcp_rx_avail(t->tcp) > 0)
		t->t_hello = rte_rdtsc();
	if (w->ring != NULL)
		gw_hsm_async_ring_bind(w->ring);
	for (;;) {
		struct gw_hsm_async_req *r;
		enum gw_hsm_async_status as;

		rc = SSL_do_handshake(t->ssl);
		if (w->ring == NULL)
			break;
		as = gw_hsm_async_take(&r);
		if (as == GW_HSM_ASYNC_INLINE && r != NULL) {
			/* a fast, idle HSM (hsm.inline_below): sign here, resume now */
			gw_hsm_async_sign_here(r);
			w->st.hsm_inline++;
			continue;
		}
		if (as == GW_HSM_ASYNC_PARKED && r != NULL)
			park_add(w, t, r);
		else if (as == GW_HSM_ASYNC_QUEUE_FULL)
			w->st.hsm_queue_full++;
		break;
	}
	if (rc == 1) {
		/* no job on the record path: SSL_read/SSL_write stay direct calls */
		SSL_clear_mode(t->ssl, SSL_MODE_ASYNC);
		list_del(&w->hs, t);
		w->n_hs--;
		t->st = CS_EST;
		w->n_est++;
		t->t_mark = w->now;
		list_add_tail(&w->idle, t);
		w->st.hs_ok++;
		hist_add(w, t, rte_rdtsc() - t->t_hello);
		if (SSL_session_reused(t->ssl))
			w->st.hs_resumed++;
		else
			w->st.hs_full++;
		if (t->v.ticket_stale_trust)
			w->st.ticket_stale_trust++;
		if (t->v.ticket_expired_cert)
			w->st.ticket_expired_cert++;
		if (t->v.ticket_unknown_key)
			w->st.ticket_unknown_key++;
		app_event(t, GW_TLS_EV_ESTABLISHED, 0);
		/* records may have come with the last flight */
		if (!t->dead && (SSL_has_pending(t->ssl) || (t->tcp && gw_tcp_rx_avail(t->tcp))))
			app_event(t, GW_TLS_EV_READABLE, 0);
		return;
	}
	err = SSL_get_error(t->ssl, rc);
	if (err == SSL_ERROR_WANT_READ) {
		if (t->tcp && gw_tcp_peer_closed(t->tcp) && gw_tcp_rx_avail(t->tcp) == 0) {
			hs_failed(t, SSL_ERROR_SYSCALL);
			return;
		}
		w->hs_wait_at = w->now; /* its client's next flight is due (TLS_SOON_MS) */
		return;
	}
	if (err == SSL_ERROR_WANT_WRITE || (err == SSL_ERROR_WANT_ASYNC && t->areq != NULL))
		return; /* the ring resumes a parked handshake (tls_hsm_done) */
	if (t->v.ticket_stale_trust)
		w->st.ticket_stale_trust++;
	hs_failed(t, err);
}

/* Step a handshake outside a TCP event (its HSM signature came back or timed out). */
static void
hs_resume(struct gw_tls_conn *t)
{
	if (t->dead || t->st != CS_HS)
		return;
	t->busy++;
	hs_step(t);
	t->busy--;
	if (t->dead && t->busy == 0)
		conn_release(t);
}

static void
tcp_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	struct gw_tls_conn *t = ctx;
	struct gw_tls_worker *w = t->w;

	RTE_SET_USED(c);
	if (t->dead)
		return;
	t->busy++;
	switch (ev) {
	case GW_TCP_EV_READABLE:
	case GW_TCP_EV_PEER_FIN:
		/* parked: the bytes wait in TCP, the resumed handshake reads them */
		if (t->st == CS_HS && t->areq == NULL)
			hs_step(t);
		else if (t->st == CS_EST)
			app_event(t, GW_TLS_EV_READABLE, 0);
		break;
	case GW_TCP_EV_WRITABLE:
		if (t->st == CS_HS) {
			if (t->areq == NULL)
				hs_step(t);
		} else if (t->st == CS_EST && (t->want_writable || t->wpend)) {
			if (!wpend_flush(t))
				break;
			t->want_writable = false;
			app_event(t, GW_TLS_EV_WRITABLE, 0);
		}
		break;
	case GW_TCP_EV_CLOSED:
		/* the TCP handle is gone: detach it before anything else */
		(void)conn_detach(t);
		if (t->st == CS_HS) {
			w->st.hs_fail++;
			if (reason == -ETIMEDOUT) {
				w->st.hs_timeout++;
				t->why = GW_ALOG_R_HANDSHAKE_TIMEOUT;
			} else {
				w->st.hs_fail_eof++;
				t->why = GW_ALOG_R_EOF;
			}
		} else if (reason != 0) {
			w->st.peer_reset++;
			t->end = GW_ALOG_END_RESET;
		}
		app_event(t, GW_TLS_EV_CLOSED, reason);
		conn_kill(t);
		break;
	default:
		break;
	}
	t->busy--;
	if (t->dead && t->busy == 0)
		conn_release(t);
}

int
gw_tls_accept(struct gw_tls_worker *w, struct gw_tcp_conn *c, const struct gw_snapshot *snap,
	const struct gw_snap_listener *lst, gw_tls_event_fn *cb, void *ctx,
	struct gw_tls_conn **out)
{
	struct gw_tls_conn *t;
	BIO *b;

	if (lst == NULL || lst->tls == NULL || snap == NULL) {
		w->st.refused_no_tls++;
		return gw_err_set(-EINVAL, GW_HERE);
	}
	if (w->n_hs >= w->p.max_handshakes) {
		w->st.refused_busy++;
		return gw_err_set(-EBUSY, GW_HERE);
	}
	t = w->free_head;
	if (t == NULL) {
		w->st.refused_nomem++;
		return gw_err_set(-ENOMEM, GW_HERE);
	}
	memset(&t->v, 0, sizeof(t->v));
	t->ssl = SSL_new(gw_tls_lst_ctx(lst->tls));
	b = t->ssl ? gw_tls_bio_new(c) : NULL;
	if (b == NULL || gw_tls_vctx_attach(t->ssl, &t->v) < 0) {
		BIO_free(b);
		SSL_free(t->ssl);
		t->ssl = NULL;
		ERR_clear_error();
		w->st.refused_nomem++;
		return gw_err_set(-ENOMEM, GW_HERE);
	}
	w->free_head = t->next_free;
	gw_tcp_get_peer(c, &t->cl_ip, &t->cl_port);
	t->t_accept = rte_rdtsc();
	t->rx_bytes = t->tx_bytes = 0;
	t->up_ip = 0;
	t->up_port = 0;
	t->why = GW_ALOG_R_EOF; /* until a failure says better */
	t->end = GW_ALOG_END_CLOSE;
	t->up_failed = false;
	SSL_set_bio(t->ssl, b, b);
	SSL_set_accept_state(t->ssl);
	if (w->ring != NULL)
		SSL_set_mode(t->ssl, SSL_MODE_ASYNC); /* the handshake runs in a job */
	t->areq = NULL;
	t->pk_prev = t->pk_next = NULL;
	t->v.vcache = w->vcache;
	t->v.generation = gw_snapshot_generation(snap);
	t->tcp = c;
	t->snap = gw_snapshot_ref(snap);
	t->lst = lst;
	t->cb = cb;
	t->ctx = ctx;
	t->busy = 0;
	t->dead = t->peer_closed = t->shut_sent = t->want_writable = false;
	t->wpend = 0;
	t->st = CS_HS;
	t->t_mark = w->now;
	t->t_hello = 0;
	t->hist_slot = GW_TLS_HIST_SLOTS;
	list_add_tail(&w->hs, t);
	w->n_hs++;
	w->st.accepted++;
	gw_tcp_set_callback(c, tcp_event, t);
	*out = t;
	return 0;
}

/* An HSM signature was answered: resume its handshake (the job takes the result). */
static void
tls_hsm_done(void *cookie, void *arg)
{
	struct gw_tls_conn *t = cookie;

	RTE_SET_USED(arg);
	park_del(t->w, t);
	hs_resume(t);
}

int
gw_tls_worker_wait_fd(const struct gw_tls_worker *w)
{
	return gw_hsm_async_ring_fd(w->ring);
}

unsigned
gw_tls_worker_poll(struct gw_tls_worker *w, uint64_t now)
{
	w->now = now;
	if (w->ring != NULL) {
		gw_hsm_async_ring_poll(w->ring, tls_hsm_done, NULL);
		while (w->parked.head && now - w->parked.head->t_park >= w->hsm_ticks) {
			struct gw_tls_conn *t = w->parked.head;

			/* the HSM did not answer in time: the resumed job fails its
			 * signature (hs_fail_hsm); a late answer is dropped */
			if (gw_hsm_async_abandon(t->areq))
				w->st.hsm_timeout++;
			park_del(w, t);
			hs_resume(t);
		}
	}
	/* both lists are ordered by t_mark: the head is the oldest */
	while (w->hs.head && now - w->hs.head->t_mark >= w->hs_ticks) {
		struct gw_tls_conn *t = w->hs.head;

		w->st.hs_fail++;
		w->st.hs_timeout++;
		t->why = GW_ALOG_R_HANDSHAKE_TIMEOUT;
		conn_end(t, -ETIMEDOUT, true);
	}
	while (w->idle.head && now - w->idle.head->t_mark >= w->idle_ticks) {
		struct gw_tls_conn *t = w->idle.head;

		w->st.idle_timeout++;
		t->end = GW_ALOG_END_IDLE_TIMEOUT;
		if (!t->shut_sent && t->tcp) {
			ERR_clear_error();
			SSL_shutdown(t->ssl); /* close_notify, then FIN */
			w->st.close_notify_tx++;
			t->shut_sent = true;
		}
		conn_end(t, -ETIMEDOUT, false);
	}
	while (w->linger.head && now - w->linger.head->t_mark >= w->linger_ticks) {
		struct gw_tls_conn *t = w->linger.head;
		struct gw_tcp_conn *c = t->linger;

		w->st.linger_rst++;
		linger_done(t);
		gw_tcp_abort(c); /* no event: the stack frees c at once */
	}
	return (w->parked.head != NULL ? GW_TLS_POLL_PARKED : 0) |
	       (w->n_hs > 0 && now - w->hs_wait_at < w->soon_ticks ? GW_TLS_POLL_HANDSHAKING : 0);
}

/* ---- app API ---- */

static long
tls_read(struct gw_tls_conn *t, void *buf, size_t len, bool peek)
{
	struct gw_tls_worker *w = t->w;
	size_t n = 0;
	int err, rc;

	if (t->st != CS_EST || t->dead)
		return -ENOTCONN;
	if (t->peer_closed)
		return 0;
	err_clear_stale();
	rc = peek ? SSL_peek_ex(t->ssl, buf, len, &n) : SSL_read_ex(t->ssl, buf, len, &n);
	if (rc == 1) {
		if (!peek) {
			w->st.rx_bytes += n;
			t->rx_bytes += n;
			touch(t);
		}
		return (long)n;
	}
	err = SSL_get_error(t->ssl, 0);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		/* EOF under the retry: FIN without close_notify */
		if (t->tcp == NULL ||
			(gw_tcp_peer_closed(t->tcp) && gw_tcp_rx_avail(t->tcp) == 0)) {
			t->peer_closed = true;
			w->st.eof_no_notify++;
		}
		return 0;
	case SSL_ERROR_WANT_WRITE:
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		t->peer_closed = true;
		w->st.close_notify_rx++;
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			/* OpenSSL 3 without SSL_OP_IGNORE_UNEXPECTED_EOF: EOF */
			t->peer_closed = true;
			w->st.eof_no_notify++;
			ERR_clear_error();
			return 0;
		}
		/* fall through */
	default:
		ERR_clear_error();
		w->st.rec_err++;
		return -EPROTO;
	}
}

long
gw_tls_read(struct gw_tls_conn *t, void *buf, size_t len)
{
	return tls_read(t, buf, len, false);
}

long
gw_tls_peek(struct gw_tls_conn *t, void *buf, size_t len)
{
	return tls_read(t, buf, len, true);
}

bool
gw_tls_peer_closed(const struct gw_tls_conn *t)
{
	return t->peer_closed;
}

/* Send a record OpenSSL holds from a write the TCP buffer could not take. */
static bool
wpend_flush(struct gw_tls_conn *t)
{
	/*
	 * The record is already encrypted in OpenSSL's write buffer; the retry
	 * only has to offer as many bytes (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER,
	 * ssl3_write_pending checks the length, never the contents).
	 */
	static const uint8_t zeros[TLS_REC_MAX];
	size_t wr = 0;

	if (t->wpend == 0)
		return true;
	err_clear_stale();
	if (SSL_write_ex(t->ssl, zeros, t->wpend, &wr) == 1) {
		t->wpend = 0;
		return true;
	}
	ERR_clear_error();
	return false;
}

/*
 * The plaintext of one record: 16 KiB, or what the client asked for with
 * max_fragment_length (RFC 6066 4). gw_tls_write never offers OpenSSL more,
 * so a record it holds for retry (WANT_WRITE) carries exactly the bytes of
 * that call: with more, SSL_MODE_ENABLE_PARTIAL_WRITE would hold only the
 * first record and the rest of the offer would be neither sent nor kept.
 */
static size_t
rec_max(const struct gw_tls_conn *t)
{
	const SSL_SESSION *sess = SSL_get0_session(t->ssl);
	uint8_t mfl = sess ? SSL_SESSION_get_max_fragment_length(sess) : 0;

	if (mfl >= TLSEXT_max_fragment_length_512 && mfl <= TLSEXT_max_fragment_length_4096)
		return (size_t)512 << (mfl - TLSEXT_max_fragment_length_512);
	return TLS_REC_MAX;
}

size_t
gw_tls_write_room(struct gw_tls_conn *t)
{
	size_t room;

	if (t->st != CS_EST || t->tcp == NULL || t->shut_sent || t->dead)
		return 0;
	if (!wpend_flush(t)) {
		t->want_writable = true;
		return 0;
	}
	room = gw_tcp_tx_space(t->tcp);
	if (room == 0) {
		/* a full TCP buffer owes us WRITABLE */
		t->want_writable = true;
		return 0;
	}
	/*
	 * The record may be larger than the room by its overhead: the BIO then
	 * takes what fits, which fills the TCP buffer (arming WRITABLE), and
	 * OpenSSL holds the rest as a pending write that wpend_flush sends.
	 */
	return RTE_MIN(room, rec_max(t));
}

long
gw_tls_write(struct gw_tls_conn *t, const void *buf, size_t len)
{
	struct gw_tls_worker *w = t->w;
	size_t n, wr = 0;
	int err;

	if (t->st != CS_EST || t->dead)
		return -ENOTCONN;
	if (t->shut_sent || t->tcp == NULL)
		return -EPIPE;
	if (len == 0)
		return 0;
	n = RTE_MIN(len, gw_tls_write_room(t));
	if (n == 0)
		return 0;
	err_clear_stale();
	if (SSL_write_ex(t->ssl, buf, n, &wr) == 1) {
		w->st.tx_bytes += wr;
		t->tx_bytes += wr;
		touch(t);
		return (long)wr;
	}
	err = SSL_get_error(t->ssl, 0);
	if (err == SSL_ERROR_WANT_WRITE && SSL_in_init(t->ssl)) {
		/* a post-handshake message (KeyUpdate) is stuck before our
		 * record: nothing of buf was taken */
		t->want_writable = true;
		return 0;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		/* encrypted as one record (n <= rec_max) and held by OpenSSL:
		 * taken, flushed later */
		t->wpend = n;
		t->want_writable = true;
		w->st.tx_bytes += n;
		t->tx_bytes += n;
		touch(t);
		return (long)n;
	}
	ERR_clear_error();
	w->st.rec_err++;
	return -EPROTO;
}

void
gw_tls_shutdown(struct gw_tls_conn *t)
{
	if (t->st != CS_EST || t->shut_sent || t->tcp == NULL)
		return;
	ERR_clear_error();
	SSL_shutdown(t->ssl);
	ERR_clear_error();
	t->shut_sent = true;
	t->w->st.close_notify_tx++;
	gw_tcp_shutdown(t->tcp);
}

void
gw_tls_close(struct gw_tls_conn *t)
{
	if (t->dead)
		return;
	if (t->st == CS_EST && !t->shut_sent && t->tcp) {
		ERR_clear_error();
		SSL_shutdown(t->ssl);
		ERR_clear_error();
		t->shut_sent = true;
		t->w->st.close_notify_tx++;
	}
	if (t->tcp)
		gw_tcp_close(conn_detach(t));
	conn_kill(t);
}

void
gw_tls_abort(struct gw_tls_conn *t)
{
	if (t->dead)
		return;
	if (t->end == GW_ALOG_END_CLOSE)
		t->end = GW_ALOG_END_RESET;
	if (t->tcp)
		gw_tcp_abort(conn_detach(t));
	conn_kill(t);
}

void
gw_tls_hs_hist_get(const struct gw_tls_worker *w, unsigned slot, struct gw_tls_hs_hist *out)
{
	if (slot < GW_TLS_HIST_SLOTS)
		*out = w->hist[slot];
	else
		memset(out, 0, sizeof(*out));
}

void
gw_tls_set_hist_slot(struct gw_tls_conn *t, unsigned slot)
{
	t->hist_slot = slot < GW_TLS_HIST_SLOTS ? (uint16_t)slot : GW_TLS_HIST_SLOTS;
}

void *
gw_tls_get_ctx(const struct gw_tls_conn *t)
{
	return t->ctx;
}

void
gw_tls_set_ctx(struct gw_tls_conn *t, void *ctx)
{
	t->ctx = ctx;
}

void
gw_tls_set_callback(struct gw_tls_conn *t, gw_tls_event_fn *cb, void *ctx)
{
	t->cb = cb;
	t->ctx = ctx;
}

struct gw_tcp_conn *
gw_tls_tcp(const struct gw_tls_conn *t)
{
	return t->tcp;
}

SSL *
gw_tls_ssl(const struct gw_tls_conn *t)
{
	return t->ssl;
}

bool
gw_tls_resumed(const struct gw_tls_conn *t)
{
	return t->ssl && SSL_session_reused(t->ssl);
}

const char *
gw_tls_sni(const struct gw_tls_conn *t)
{
	return t->v.sni;
}

int
gw_tls_pp2_build(const struct gw_tls_conn *t, uint8_t *buf, size_t cap)
{
	struct gw_pp2_info pi = {0};
	struct gw_pp2_ssl_strs strs;

	GW_ENSURE(t->st == CS_EST && t->tcp, -ENOTCONN);
	/* SIG_ALG/KEY_ALG of the certificate we presented (spec 2.2.6, as
	 * haproxy sends them); a CN or ID too long for strs is left out, not cut */
	GW_GUARD(gw_pp2_info_from_ssl(&pi, t->ssl, &strs));
	/*
	 * The gateway's own verdict on top of OpenSSL's: on a full handshake
	 * our trust engine and the listener's allow rules decided (tls_ctx's
	 * verify callback). A resumed session keeps the verdict of its full
	 * handshake, which the ticket check held against the current trust.
	 */
	if (t->v.verify_ran && (pi.ssl_client & GW_PP2_CLIENT_CERT_CONN))
		pi.ssl_verify = t->v.reason == GW_TRUST_R_OK
					? 0
					: (uint32_t)gw_tls_reason_x509err(t->v.reason);
	gw_svc_pp2_addrs(t->tcp, &pi); /* the 4-tuple, as tcp-proxy sends it */
	/* ALPN is recorded, not negotiated (tls_ctx.h): the client's first offer */
	if (pi.alpn_len == 0 && t->v.alpn_len) {
		pi.alpn = t->v.alpn;
		pi.alpn_len = t->v.alpn_len;
	}
	return gw_pp2_build(buf, cap, &pi);
}
