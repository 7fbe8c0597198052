/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * timer_wheel.h - a hashed timing wheel (Varghese & Lauck, scheme 6) for one
 * lcore's TCP timers: O(1) arm/cancel, advance cost proportional to elapsed
 * ticks (capped at one revolution) plus expired timers. Timers are intrusive
 * (embedded in the connection), so arming never allocates. A timer due
 * further than one revolution stays in its slot until its expiry comes round.
 * Not thread-safe: one wheel per lcore.
 */
#ifndef GW_TIMER_WHEEL_H
#define GW_TIMER_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#include "gw_err.h"

struct gw_tw_timer {
	struct gw_tw_timer *next;
	struct gw_tw_timer **pprev; /* NULL when not armed */
	uint64_t expire;            /* absolute tick */
};

typedef void gw_tw_fire_fn(struct gw_tw_timer *t, void *arg);

struct gw_tw {
	uint64_t now; /* last tick processed */
	uint32_t mask;
	struct gw_tw_timer **slots;
	gw_tw_fire_fn *fire;
	void *arg;
};

/* nslots: a power of two. Returns 0 or -EINVAL/-ENOMEM. */
GW_MUST_CHECK int gw_tw_init(
	struct gw_tw *w, uint32_t nslots, uint64_t now, gw_tw_fire_fn *fire, void *arg);
void gw_tw_fini(struct gw_tw *w);

static inline bool
gw_tw_armed(const struct gw_tw_timer *t)
{
	return t->pprev != NULL;
}

/* (Re)arm t for tick expire; a past expiry fires at the next advance. */
void gw_tw_arm(struct gw_tw *w, struct gw_tw_timer *t, uint64_t expire);
void gw_tw_cancel(struct gw_tw_timer *t);

/*
 * Fire every timer due at or before now. A callback may arm or cancel any
 * timer, including its own and others due in the same advance.
 */
void gw_tw_advance(struct gw_tw *w, uint64_t now);

#endif /* GW_TIMER_WHEEL_H */
