/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_counters.c - the counters convention (common/gw_counters.h) on the
 * real groups the dataplane reports (net, tcp, conns, port, tls): every
 * member of every group is in the stats JSON line and in the Prometheus
 * text under the same name with the same sum; summing over workers; the
 * publish/read primitive (never a mix of two publishes, also with a writer
 * thread racing the reader); a worker's gw_dp_publish. No EAL: the groups
 * and the publish need none.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "dp_counters.h"
#include "gw_counters.h"
#include "gw_test.h"
#include "metrics.h"
#include "tls_dp.h"

/* A value no other (group, worker, word) has. */
static uint64_t
val(unsigned g, unsigned w, unsigned i)
{
	return (uint64_t)g * 1000000 + (uint64_t)w * 1000 + i + 1;
}

static const char *
text_of_metrics(struct gw_metrics *m)
{
	const char *t = "";
	size_t len;

	if (gw_metrics_text(m, &t, &len) < 0)
		return "(oom)";
	return t;
}

/* The Prometheus sample line "name value" or "name{k="v"} value" is in t. */
static bool
has_line(const char *t, const char *name, const char *label, const char *lv, uint64_t v)
{
	char want[256];

	if (label != NULL)
		snprintf(want, sizeof(want), "\n%s{%s=\"%s\"} %llu\n", name, label, lv,
			(unsigned long long)v);
	else
		snprintf(want, sizeof(want), "\n%s %llu\n", name, (unsigned long long)v);
	return strstr(t, want) != NULL;
}

#define N_PUB_WORDS 64
struct race {
	uint64_t seq;
	uint64_t pub[N_PUB_WORDS];
	int stop;
	uint64_t got;
};

/* gw_ctr_read once; then got = the words if all agree, else 0; stop = 1. */
static void *
reader(void *arg)
{
	struct race *r = arg;
	uint64_t out[N_PUB_WORDS];

	gw_ctr_read(&r->seq, out, r->pub, N_PUB_WORDS);
	r->got = out[0];
	for (unsigned i = 1; i < N_PUB_WORDS; i++)
		if (out[i] != out[0])
			r->got = 0;
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *
writer(void *arg)
{
	struct race *r = arg;
	uint64_t priv[N_PUB_WORDS];

	for (uint64_t k = 1; !__atomic_load_n(&r->stop, __ATOMIC_RELAXED); k++) {
		for (unsigned i = 0; i < N_PUB_WORDS; i++)
			priv[i] = k;
		gw_ctr_publish(&r->seq, r->pub, priv, N_PUB_WORDS);
	}
	return NULL;
}

int
main(void)
{
	GW_TEST_BEGIN();
	{ /* every member of every real group, in both renderings, same names and sums */
		const struct gw_ctr_group *groups[] = {
			&gw_dp_net_group, &gw_dp_tcp_group, &gw_dp_conns_group, &gw_tls_dp_group};
		const unsigned nw = 3, ng = sizeof(groups) / sizeof(groups[0]);
		struct gw_ctr_snap s;
		struct gw_ctr_port *p;
		struct gw_metrics m;
		char *line = NULL;
		size_t len = 0;
		FILE *f;
		json_t *o;
		const char *t;

		EXPECT_OK(gw_ctr_snap_init(&s, nw));
		s.tsc_hz = 1000;
		for (unsigned g = 0; g < ng; g++) {
			uint64_t *w;

			EXPECT_OK(gw_ctr_snap_add(&s, groups[g], &w));
			for (unsigned k = 0; k < nw; k++)
				for (unsigned i = 0; i < groups[g]->n; i++)
					w[k * groups[g]->n + i] = val(g, k, i);
		}
		for (unsigned k = 0; k < nw; k++) {
			s.lcore[k] = k + 1;
			s.busy_cycles[k] = 1000 * (k + 1);
		}
		EXPECT_OK(gw_ctr_snap_port(&s, &gw_dp_port_group, &p));
		snprintf(p->name, sizeof(p->name), "wan");
		snprintf(p->device, sizeof(p->device), "net_tap0");
		for (unsigned i = 0; i < gw_dp_port_group.n; i++)
			p->v[i] = 70 + i;
		gw_ctr_snap_seal(&s);

		f = open_memstream(&line, &len);
		EXPECT_TRUE(f != NULL);
		gw_ctr_snap_json(&s, f);
		EXPECT_TRUE(fclose(f) == 0);
		EXPECT_TRUE(len > 0 && line[len - 1] == '\n');
		o = json_loadb(line, len, 0, NULL);
		EXPECT_TRUE(json_is_object(o));
		gw_metrics_init(&m);
		gw_metrics_counters(&m, &s);
		t = text_of_metrics(&m);

		for (unsigned g = 0; g < ng; g++) {
			const struct gw_ctr_group *gr = groups[g];
			json_t *jo = json_object_get(o, gr->name);
			unsigned shown = 0;

			EXPECT_TRUE(json_is_object(jo));
			for (unsigned i = 0; i < gr->n; i++) {
				const char *n = gr->d[i].name;
				uint64_t sum = 0;
				char pn[160];

				for (unsigned k = 0; k < nw; k++)
					sum += val(g, k, i);
				EXPECT_EQ(s.groups[g].sum[i], sum);
				if (n == NULL)
					continue;
				shown++;
				EXPECT_EQ(gw_ctr_snap_get(&s, gr->name, n), (int64_t)sum);
				/* JSON: "<group>":{"<name>":sum} */
				EXPECT_EQ(
					(uint64_t)json_integer_value(json_object_get(jo, n)), sum);
				/* Prometheus: the same name, the same sum */
				if (gr->label != NULL)
					EXPECT_TRUE(has_line(t, gr->family, gr->label, n, sum));
				else if (gr->d[i].kind == GW_CTR_GAUGE)
					snprintf(pn, sizeof(pn), "mtlsgw_%s_%s", gr->name, n);
				else
					snprintf(pn, sizeof(pn), "mtlsgw_%s_%s_total", gr->name, n);
				if (gr->label == NULL && !has_line(t, pn, NULL, NULL, sum))
					GW_TEST_FAIL_("no Prometheus line %s %llu", pn,
						(unsigned long long)sum);
			}
			/* every JSON member is a table member (and per-worker lists) */
			EXPECT_EQ(json_object_size(jo), shown + (gr->per_worker != NULL ? 1 : 0));
		}
		/* the names the tests and dashboards use, from the real tables */
		EXPECT_TRUE(
			json_is_integer(json_object_get(json_object_get(o, "net"), "icmp_echo")));
		EXPECT_TRUE(json_is_integer(json_object_get(json_object_get(o, "tcp"), "rx_seg")));
		EXPECT_TRUE(
			json_is_integer(json_object_get(json_object_get(o, "conns"), "TIME_WAIT")));
		EXPECT_TRUE(json_is_integer(
			json_object_get(json_object_get(o, "tls"), "reject_not_allowed")));
		EXPECT_TRUE(json_object_get(json_object_get(o, "tls"), "reject_ok") == NULL);
		EXPECT_TRUE(
			json_is_integer(json_object_get(json_object_get(o, "tls"), "established")));
		EXPECT_CONTAINS(t, "# TYPE mtlsgw_tls_handshaking gauge\n");
		{ /* per worker: hs_* per worker in both */
			json_t *a = json_object_get(json_object_get(o, "tls"), "per_worker_hs");
			int k = gw_ctr_find(&gw_tls_dp_group, "hs_ok");

			EXPECT_EQ(json_array_size(a), nw);
			EXPECT_EQ(json_object_size(json_array_get(a, 0)), 4);
			EXPECT_EQ((uint64_t)json_integer_value(
					  json_object_get(json_array_get(a, 1), "hs_ok")),
				val(3, 1, (unsigned)k));
			EXPECT_TRUE(has_line(t, "mtlsgw_tls_worker_hs_ok_total", "worker", "1",
				val(3, 1, (unsigned)k)));
		}
		{ /* ports and the per-worker rows */
			json_t *po = json_array_get(json_object_get(o, "ports"), 0);
			json_t *pw = json_array_get(json_object_get(o, "per_worker"), 2);

			EXPECT_STREQ(json_string_value(json_object_get(po, "name")), "wan");
			EXPECT_STREQ(json_string_value(json_object_get(po, "device")), "net_tap0");
			for (unsigned i = 0; i < gw_dp_port_group.n; i++) {
				char pn[96];

				EXPECT_EQ(json_integer_value(
						  json_object_get(po, gw_dp_port_group.d[i].name)),
					70 + i);
				snprintf(pn, sizeof(pn), "mtlsgw_port_%s_total",
					gw_dp_port_group.d[i].name);
				EXPECT_TRUE(has_line(t, pn, "port", "wan", 70 + i));
			}
			EXPECT_EQ(json_integer_value(json_object_get(pw, "lcore")), 3);
			EXPECT_EQ(json_integer_value(json_object_get(pw, "busy_cycles")), 3000);
			EXPECT_EQ((uint64_t)json_integer_value(json_object_get(pw, "rx_pkts")),
				val(0, 2, (unsigned)gw_ctr_find(&gw_dp_net_group, "rx_pkts")));
			EXPECT_EQ(
				(uint64_t)json_integer_value(json_object_get(pw, "conn_accepted")),
				val(1, 2,
					(unsigned)gw_ctr_find(&gw_dp_tcp_group, "conn_accepted")));
			EXPECT_EQ(json_object_size(pw), 8);
			EXPECT_TRUE(has_line(t, "mtlsgw_workers", NULL, NULL, nw));
		}
		json_decref(o);
		free(line);
		gw_metrics_clear(&m);
		gw_ctr_snap_fini(&s);
	}
	{ /* limits: groups and ports are bounded, a group needs members */
		static const struct gw_ctr_desc d[] = {{"x", GW_CTR_COUNTER, NULL}};
		static const struct gw_ctr_group g = {.name = "g", .d = d, .n = 1};
		static const struct gw_ctr_group empty = {.name = "e", .d = d, .n = 0};
		struct gw_ctr_snap s;
		struct gw_ctr_port *p;
		uint64_t *w;

		EXPECT_OK(gw_ctr_snap_init(&s, 1));
		EXPECT_ERR(gw_ctr_snap_add(&s, &empty, &w), -EINVAL);
		for (unsigned i = 0; i < GW_CTR_MAX_GROUPS; i++)
			EXPECT_OK(gw_ctr_snap_add(&s, &g, &w));
		EXPECT_ERR(gw_ctr_snap_add(&s, &g, &w), -ENOSPC);
		for (unsigned i = 0; i < GW_CTR_MAX_PORTS; i++)
			EXPECT_OK(gw_ctr_snap_port(&s, &g, &p));
		EXPECT_ERR(gw_ctr_snap_port(&s, &g, &p), -ENOSPC);
		EXPECT_TRUE(gw_ctr_snap_group(&s, "nope") == NULL);
		gw_ctr_snap_fini(&s);
		gw_ctr_snap_fini(&s); /* twice: zeroed */
	}
	{ /* publish / read, one thread: the copy, and seq even after */
		uint64_t seq = 0, pub[3] = {0}, priv[3] = {1, 2, 3}, out[3];

		gw_ctr_publish(&seq, pub, priv, 3);
		EXPECT_EQ(seq, 2);
		gw_ctr_read(&seq, out, pub, 3);
		EXPECT_TRUE(memcmp(out, priv, sizeof(out)) == 0);
		priv[1] = 20;
		EXPECT_EQ(pub[1], 2); /* private until published */
		gw_ctr_publish(&seq, pub, priv, 3);
		gw_ctr_read(&seq, out, pub, 3);
		EXPECT_EQ(out[1], 20);
	}
	{ /* a publish in flight (odd seq): the reader waits for it to end */
		static struct race r;
		pthread_t th;

		r.seq = 1; /* as if a writer were preempted mid-copy */
		r.pub[0] = 5;
		EXPECT_EQ(pthread_create(&th, NULL, reader, &r), 0);
		usleep(50 * 1000);
		EXPECT_EQ(__atomic_load_n(&r.stop, __ATOMIC_ACQUIRE), 0); /* still waiting */
		for (unsigned i = 0; i < N_PUB_WORDS; i++)
			__atomic_store_n(&r.pub[i], 9, __ATOMIC_RELAXED);
		__atomic_store_n(&r.seq, 2, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
		EXPECT_EQ(r.stop, 1);
		EXPECT_EQ(r.got, 9);
	}
	{ /* publish / read racing: never a mix of two publishes, never backwards
	   * (a reader without the seqlock fails this when both threads get a core) */
		struct race r = {0};
		pthread_t th;
		uint64_t last = 0, mixed = 0, changes = 0;

		EXPECT_EQ(pthread_create(&th, NULL, writer, &r), 0);
		/* until the reader saw the writer move 1000 times (or 2M reads:
		 * on a busy box the writer may hardly run) */
		for (unsigned n = 0; n < 2000000 && changes < 1000; n++) {
			uint64_t out[N_PUB_WORDS];

			gw_ctr_read(&r.seq, out, r.pub, N_PUB_WORDS);
			for (unsigned i = 1; i < N_PUB_WORDS; i++)
				if (out[i] != out[0])
					mixed++;
			if (out[0] < last)
				mixed++;
			changes += out[0] != last;
			last = out[0];
		}
		__atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
		pthread_join(th, NULL);
		EXPECT_EQ(mixed, 0);
		EXPECT_TRUE(last > 0);
	}
	{ /* a worker's publish: net, busy cycles; without a stack TCP keeps its last */
		struct gw_lcore *lc = aligned_alloc(64, sizeof(*lc));
		struct gw_lcore_counters c;

		EXPECT_TRUE(lc != NULL);
		memset(lc, 0, sizeof(*lc));
		lc->st.rx_pkts = 7;
		lc->busy_cycles = 99;
		lc->pub.tcp.rx_seg = 5; /* as if published before the stack went */
		gw_dp_publish(lc);
		lc->st.rx_pkts = 8; /* not yet published */
		GW_CTR_READ(&lc->pub_seq, &c, &lc->pub);
		EXPECT_EQ(c.net.rx_pkts, 7);
		EXPECT_EQ(c.busy_cycles, 99);
		EXPECT_EQ(c.tcp.rx_seg, 5);
		EXPECT_EQ(lc->pub_seq, 2);
		free(lc);
	}
	GW_TEST_END();
}
