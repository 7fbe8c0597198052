/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_timer_wheel.c - the hashed timing wheel (dataplane/timer_wheel.c) on
 * its own: exact firing ticks, wrap-around of the slot index, timers further
 * than one revolution, cancel and re-arm (also from inside a callback), many
 * timers in one slot, and jumps of many revolutions at once.
 */
#include <stdint.h>

#include "gw_test.h"
#include "timer_wheel.h"

#define N_T 256

struct rec {
	struct gw_tw *w;
	unsigned n;                    /* fires recorded */
	struct gw_tw_timer *who[1024]; /* in firing order */
	uint64_t at[1024];             /* w->now when each fired */
	struct gw_tw_timer *cancel;    /* cancelled by the first fire */
	struct gw_tw_timer *rearm;     /* re-armed once, rearm_delta later */
	uint64_t rearm_delta;
};

static void
on_fire(struct gw_tw_timer *t, void *arg)
{
	struct rec *r = arg;

	if (r->n < 1024) {
		r->who[r->n] = t;
		r->at[r->n] = r->w->now;
	}
	r->n++;
	if (r->cancel != NULL) {
		gw_tw_cancel(r->cancel);
		r->cancel = NULL;
	}
	if (r->rearm == t) {
		r->rearm = NULL;
		gw_tw_arm(r->w, t, r->w->now + r->rearm_delta);
	}
}

static unsigned
fired(const struct rec *r, const struct gw_tw_timer *t)
{
	unsigned k = 0;

	for (unsigned i = 0; i < r->n && i < 1024; i++)
		k += r->who[i] == t;
	return k;
}

int
main(void)
{
	GW_TEST_BEGIN();
	{ /* init refuses what the mask arithmetic cannot take */
		struct gw_tw w;
		struct rec r = {0};

		EXPECT_ERR(gw_tw_init(&w, 0, 0, on_fire, &r), -EINVAL);
		EXPECT_ERR(gw_tw_init(&w, 12, 0, on_fire, &r), -EINVAL);
		EXPECT_ERR(gw_tw_init(&w, 16, 0, NULL, &r), -EINVAL);
		EXPECT_OK(gw_tw_init(&w, 1, 0, on_fire, &r));
		gw_tw_fini(&w);
		gw_tw_fini(&w); /* twice: slots already NULL */
	}
	{ /* a timer fires at its tick, not before, exactly once */
		struct gw_tw w;
		struct rec r = {.w = &w};
		struct gw_tw_timer t = {0};

		EXPECT_OK(gw_tw_init(&w, 16, 100, on_fire, &r));
		EXPECT_TRUE(!gw_tw_armed(&t));
		gw_tw_arm(&w, &t, 105);
		EXPECT_TRUE(gw_tw_armed(&t));
		gw_tw_advance(&w, 104);
		EXPECT_TRUE(r.n == 0);
		gw_tw_advance(&w, 104); /* no time passed: nothing */
		gw_tw_advance(&w, 50);  /* backwards: ignored */
		EXPECT_TRUE(w.now == 104);
		gw_tw_advance(&w, 105);
		EXPECT_TRUE(r.n == 1 && r.who[0] == &t && r.at[0] == 105);
		EXPECT_TRUE(!gw_tw_armed(&t));
		gw_tw_advance(&w, 200);
		EXPECT_TRUE(r.n == 1);
		gw_tw_fini(&w);
	}
	{ /* an expiry in the past (or now) fires at the next tick */
		struct gw_tw w;
		struct rec r = {.w = &w};
		struct gw_tw_timer a = {0}, b = {0};

		EXPECT_OK(gw_tw_init(&w, 8, 1000, on_fire, &r));
		gw_tw_arm(&w, &a, 10);
		gw_tw_arm(&w, &b, 1000);
		EXPECT_TRUE(a.expire == 1001 && b.expire == 1001);
		gw_tw_advance(&w, 1001);
		EXPECT_TRUE(r.n == 2 && fired(&r, &a) == 1 && fired(&r, &b) == 1);
		gw_tw_fini(&w);
	}
	{ /* wrap-around: 8 slots, timers over five revolutions, one tick at
	   * a time, each fires at its own tick and in tick order */
		struct gw_tw w;
		struct rec r = {.w = &w};
		struct gw_tw_timer t[40] = {{0}};
		bool order_ok = true;

		EXPECT_OK(gw_tw_init(&w, 8, 5, on_fire, &r));
		for (unsigned i = 0; i < 40; i++)
			gw_tw_arm(&w, &t[i], 6 + (i * 7) % 40); /* every tick 6..45, shuffled */
		for (uint64_t now = 6; now <= 45; now++) {
			unsigned before = r.n;

			gw_tw_advance(&w, now);
			order_ok &= r.n == before + 1 && r.at[before] == now &&
				    r.who[before]->expire == now;
		}
		EXPECT_TRUE(order_ok);
		EXPECT_TRUE(r.n == 40);
		for (unsigned i = 0; i < 40; i++)
			EXPECT_TRUE(fired(&r, &t[i]) == 1);
		gw_tw_fini(&w);
	}
	{ /* far future: 1000 ticks on a 16-slot wheel waits its revolutions,
	   * stepping or jumping */
		struct gw_tw w;
		struct rec r = {.w = &w};
		struct gw_tw_timer a = {0}, b = {0};

		EXPECT_OK(gw_tw_init(&w, 16, 0, on_fire, &r));
		gw_tw_arm(&w, &a, 1000);
		gw_tw_arm(&w, &b, 1000 + 16 * 3); /* same slot, three turns later */
		for (uint64_t now = 1; now < 1000; now++)
			gw_tw_advance(&w, now);
		EXPECT_TRUE(r.n == 0);
		EXPECT_TRUE(gw_tw_armed(&a) && gw_tw_armed(&b));
		gw_tw_advance(&w, 1000);
		EXPECT_TRUE(r.n == 1 && r.who[0] == &a && r.at[0] == 1000);
		EXPECT_TRUE(gw_tw_armed(&b));
		/* one jump of many revolutions: everything due fires, once */
		gw_tw_arm(&w, &a, 5000);
		gw_tw_advance(&w, 1000000);
		EXPECT_TRUE(r.n == 3 && fired(&r, &a) == 2 && fired(&r, &b) == 1);
		EXPECT_TRUE(w.now == 1000000);
		/* a jump short of the due tick fires nothing */
		gw_tw_arm(&w, &a, 1000000 + 100);
		gw_tw_advance(&w, 1000000 + 99);
		EXPECT_TRUE(r.n == 3 && gw_tw_armed(&a));
		gw_tw_advance(&w, 1000000 + 100);
		EXPECT_TRUE(r.n == 4);
		gw_tw_fini(&w);
	}
	{ /* cancel and re-arm */
		struct gw_tw w;
		struct rec r = {.w = &w};
		struct gw_tw_timer a = {0}, b = {0}, c = {0};

		EXPECT_OK(gw_tw_init(&w, 32, 0, on_fire, &r));
		gw_tw_cancel(&a); /* never armed: nothing */
		gw_tw_arm(&w, &a, 10);
		gw_tw_arm(&w, &b, 10);
		gw_tw_arm(&w, &c, 10);
		gw_tw_cancel(&b); /* the middle of a slot's list */
		gw_tw_cancel(&b);
		EXPECT_TRUE(!gw_tw_armed(&b));
		gw_tw_arm(&w, &c, 20); /* re-arm moves it: fires only at 20 */
		gw_tw_arm(&w, &a, 10); /* same expiry again: still once */
		gw_tw_advance(&w, 15);
		EXPECT_TRUE(r.n == 1 && r.who[0] == &a);
		gw_tw_advance(&w, 20);
		EXPECT_TRUE(r.n == 2 && r.who[1] == &c && r.at[1] == 20);
		EXPECT_TRUE(fired(&r, &b) == 0);
		/* re-arm earlier than before */
		gw_tw_arm(&w, &b, 100);
		gw_tw_arm(&w, &b, 25);
		gw_tw_advance(&w, 30);
		EXPECT_TRUE(r.n == 3 && r.who[2] == &b && r.at[2] == 25);
		gw_tw_advance(&w, 200);
		EXPECT_TRUE(r.n == 3);
		gw_tw_fini(&w);
	}
	{ /* many timers in one slot: due ones fire together, the ones a
	   * revolution later stay; cancelling half leaves the rest intact */
		struct gw_tw w;
		struct rec r = {.w = &w};
		static struct gw_tw_timer t[N_T];
		bool later_armed = true;

		EXPECT_OK(gw_tw_init(&w, 4, 0, on_fire, &r));
		for (unsigned i = 0; i < N_T; i++)
			gw_tw_arm(&w, &t[i], i % 2 ? 6 : 10); /* slot 2 either way */
		for (unsigned i = 0; i < N_T; i += 4)
			gw_tw_cancel(&t[i]); /* a quarter: every other even one */
		gw_tw_advance(&w, 6);
		EXPECT_TRUE(r.n == N_T / 2);
		for (unsigned i = 0; i < N_T; i += 2)
			later_armed &= gw_tw_armed(&t[i]) == (i % 4 != 0);
		EXPECT_TRUE(later_armed);
		gw_tw_advance(&w, 10);
		EXPECT_TRUE(r.n == N_T / 2 + N_T / 4);
		for (unsigned i = 0; i < N_T; i++)
			EXPECT_TRUE(fired(&r, &t[i]) == (i % 4 == 0 ? 0u : 1u));
		gw_tw_fini(&w);
	}
	{ /* callbacks: cancel another timer due in the same advance; re-arm
	   * itself (into the slot being run, and beyond) */
		struct gw_tw w;
		struct rec r = {.w = &w};
		struct gw_tw_timer a = {0}, b = {0}, c = {0};

		EXPECT_OK(gw_tw_init(&w, 8, 0, on_fire, &r));
		gw_tw_arm(&w, &a, 3);
		gw_tw_arm(&w, &b, 3);
		gw_tw_arm(&w, &c, 11); /* same slot as 3 */
		/* whichever of a/b fires first cancels the other */
		r.cancel = &b;
		gw_tw_arm(&w, &b, 3);
		gw_tw_arm(&w, &a, 3); /* a now heads the slot: fires first */
		gw_tw_advance(&w, 3);
		EXPECT_TRUE(r.n == 1 && r.who[0] == &a && !gw_tw_armed(&b));
		EXPECT_TRUE(gw_tw_armed(&c));
		/* a re-arms itself 8 ticks on: same slot, next revolution */
		r.rearm = &a;
		r.rearm_delta = 8;
		gw_tw_arm(&w, &a, 5);
		gw_tw_advance(&w, 12);
		EXPECT_TRUE(fired(&r, &a) == 2 && fired(&r, &c) == 1);
		EXPECT_TRUE(gw_tw_armed(&a) && a.expire == 13);
		/* re-arm for "now" inside the callback: the next tick */
		r.rearm = &a;
		r.rearm_delta = 0;
		gw_tw_advance(&w, 14);
		EXPECT_TRUE(fired(&r, &a) == 4);
		EXPECT_TRUE(r.at[r.n - 1] == 14);
		gw_tw_fini(&w);
	}
	GW_TEST_END();
}
