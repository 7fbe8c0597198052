/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * timer_wheel.c - hashed timing wheel, see timer_wheel.h. Slots are
 * doubly-linked through pprev so cancel is O(1) without knowing the slot.
 */
#include <stdlib.h>

#include "timer_wheel.h"

int
gw_tw_init(struct gw_tw *w, uint32_t nslots, uint64_t now, gw_tw_fire_fn *fire, void *arg)
{
	GW_ENSURE(nslots && (nslots & (nslots - 1)) == 0 && fire, -EINVAL);
	w->slots = calloc(nslots, sizeof(*w->slots));
	GW_ENSURE(w->slots, -ENOMEM);
	w->mask = nslots - 1;
	w->now = now;
	w->fire = fire;
	w->arg = arg;
	return 0;
}

void
gw_tw_fini(struct gw_tw *w)
{
	free(w->slots);
	w->slots = NULL;
}

static void
tw_link(struct gw_tw_timer **head, struct gw_tw_timer *t)
{
	t->next = *head;
	if (t->next)
		t->next->pprev = &t->next;
	*head = t;
	t->pprev = head;
}

void
gw_tw_cancel(struct gw_tw_timer *t)
{
	if (!t->pprev)
		return;
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	t->next = NULL;
	t->pprev = NULL;
}

void
gw_tw_arm(struct gw_tw *w, struct gw_tw_timer *t, uint64_t expire)
{
	gw_tw_cancel(t);
	/* a past expiry goes into the next tick's slot so advance finds it */
	if (expire <= w->now)
		expire = w->now + 1;
	t->expire = expire;
	tw_link(&w->slots[expire & w->mask], t);
}

void
gw_tw_advance(struct gw_tw *w, uint64_t now)
{
	uint64_t n, tick;

	if (now <= w->now)
		return;
	/* one revolution visits every slot: more ticks than slots add nothing */
	n = now - w->now;
	if (n > (uint64_t)w->mask + 1)
		n = (uint64_t)w->mask + 1;
	for (tick = now - n + 1; tick <= now; tick++) {
		struct gw_tw_timer *pend = NULL, *t;
		struct gw_tw_timer **slot = &w->slots[tick & w->mask];

		/* detach the slot: callbacks may re-arm into it (or cancel
		 * timers still pending here, which pprev handles) */
		/* arms made by callbacks are relative to the tick being run */
		w->now = tick;
		if (!*slot)
			continue;
		pend = *slot;
		pend->pprev = &pend;
		*slot = NULL;
		while ((t = pend) != NULL) {
			gw_tw_cancel(t);
			if (t->expire <= now)
				w->fire(t, w->arg);
			else
				tw_link(&w->slots[t->expire & w->mask], t);
		}
	}
	w->now = now;
}
