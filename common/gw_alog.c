/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_alog.c - the access log's SPSC ring and reason names (gw_alog.h).
 *
 * Lamport's ring: the producer owns head, the consumer tail; each reads
 * the other's index with acquire and publishes its own with release, so a
 * record's bytes are visible before the index that hands it over. Indexes
 * run free (uint32_t wrap is fine with a power-of-two size).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_alog.h"

#define CACHE_LINE 64

struct gw_alog_ring {
	_Alignas(CACHE_LINE) _Atomic uint32_t head; /* producer: next slot to fill */
	uint64_t dropped;                           /* producer writes, anyone reads (relaxed) */
	_Alignas(CACHE_LINE) _Atomic uint32_t tail; /* consumer: next slot to read */
	_Alignas(CACHE_LINE) uint32_t mask;
	struct gw_alog_rec *recs;
};

static const char *const reason_names[] = {
#define GW_ALOG_R_NAME_(n, s) s,
	GW_ALOG_REASONS(GW_ALOG_R_NAME_)
#undef GW_ALOG_R_NAME_
};

const char *
gw_alog_reason_name(unsigned r)
{
	return r < GW_ALOG_R__COUNT ? reason_names[r] : "other";
}

const char *
gw_alog_end_name(unsigned e)
{
	static const char *const names[] = {
		"close", "reset", "idle_timeout", "upstream", "shutdown"};

	return e < sizeof(names) / sizeof(names[0]) ? names[e] : "close";
}

static const struct gw_ctr_desc alog_desc[] = {
	{"dropped", GW_CTR_COUNTER,
		"access log records dropped because a worker's ring was full (control drains "
		"it several times a second)"},
};

const struct gw_ctr_group gw_alog_group = {
	.name = "access_log",
	.help = "access log",
	.d = alog_desc,
	.n = 1,
};

int
gw_alog_ring_create(unsigned n, struct gw_alog_ring **out)
{
	struct gw_alog_ring *r;
	unsigned size = 1;

	GW_ENSURE(out != NULL && n <= (1u << 20), -EINVAL);
	if (n == 0)
		n = GW_ALOG_RING_DEFAULT;
	while (size < n)
		size <<= 1;
	r = aligned_alloc(CACHE_LINE, sizeof(*r));
	GW_ENSURE(r != NULL, -ENOMEM);
	memset(r, 0, sizeof(*r));
	r->recs = calloc(size, sizeof(r->recs[0]));
	if (r->recs == NULL) {
		free(r);
		return gw_err_set(-ENOMEM, GW_HERE);
	}
	r->mask = size - 1;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	*out = r;
	return 0;
}

void
gw_alog_ring_destroy(struct gw_alog_ring *r)
{
	if (r == NULL)
		return;
	free(r->recs);
	free(r);
}

struct gw_alog_rec *
gw_alog_slot(struct gw_alog_ring *r)
{
	uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);

	if (h - t > r->mask) {
		/* full: the reader of `dropped` only needs each word whole */
		__atomic_store_n(&r->dropped, r->dropped + 1, __ATOMIC_RELAXED);
		return NULL;
	}
	return &r->recs[h & r->mask];
}

void
gw_alog_push(struct gw_alog_ring *r)
{
	uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

	/* release: the record's bytes before the index that hands it over */
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

const struct gw_alog_rec *
gw_alog_peek(struct gw_alog_ring *r)
{
	uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);

	return h == t ? NULL : &r->recs[t & r->mask];
}

void
gw_alog_pop(struct gw_alog_ring *r)
{
	uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);

	/* release: done reading the slot before the producer may refill it */
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
}

uint64_t
gw_alog_ring_dropped(const struct gw_alog_ring *r)
{
	return r != NULL ? __atomic_load_n(&r->dropped, __ATOMIC_RELAXED) : 0;
}

void
gw_alog_stamp(struct gw_alog_rec *r, uint64_t t_accept, uint64_t now_tsc, uint64_t tsc_hz)
{
	uint64_t per_us = tsc_hz / 1000000 ? tsc_hz / 1000000 : 1;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	r->end_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	r->dur_us = (now_tsc - t_accept) / per_us;
}
