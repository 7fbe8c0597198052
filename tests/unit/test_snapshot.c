/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_snapshot.c - snapshots and their publisher, with pthreads standing
 * in for worker lcores (rte_rcu_qsbr without rte_eal_init).
 *
 * Readers check every snapshot they see against invariants the builder
 * derives from the generation (listener name, port, canaries), so a
 * half-built or freed snapshot would show. A thousand publishes under
 * readers must free every replaced snapshot (counted, and ASan checks the
 * rest); a reader holding a reference keeps its snapshot alive through
 * every publish until it lets go.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_test.h"
#include "mkcorpus.h"
#include "snapshot.h"

#define N_READERS 3
#define N_PUBLISH 1000

static char dir[] = "/tmp/gwsnap.XXXXXX";
static char root_path[4200], leaf_path[4200];

/* ---- a config, rewritten per generation ---- */

struct tcfg {
	struct gw_cfg cfg;
	struct gw_cfg_listener l[2];
	char name0[32];
	char *certs[1];
	struct gw_cfg_ep up[1];
};

static void
tcfg_set(struct tcfg *t, uint64_t gen, bool with_trust)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->name0, sizeof(t->name0), "gen-%llu", (unsigned long long)gen);
	t->certs[0] = root_path;
	t->up[0] = (struct gw_cfg_ep){.ip = htonl(0x0a630001), .port = htons(8080)};
	t->l[0] = (struct gw_cfg_listener){
		.name = t->name0,
		.addr = {.ip = htonl(0x0a630002), .port = htons((uint16_t)gen)},
		.service = GW_SVC_TLS_PROXY,
		.backlog = 1024,
		.has_tls = true,
		.tls = {.min_version = 0x0304, .client_auth = GW_CLIENT_AUTH_REQUIRED},
		.has_trust = with_trust,
		.trust = {.mode = GW_TRUST_CA, .certs = t->certs, .n_certs = 1, .max_depth = 4},
		.has_upstream = true,
		.upstream = {.servers = t->up, .n_servers = 1, .proxy_protocol = GW_PROXY_V2},
	};
	t->l[1] = (struct gw_cfg_listener){.name = "echo", .service = GW_SVC_ECHO};
	t->cfg.listeners = t->l;
	t->cfg.n_listeners = 2;
}

/* ---- ext hooks: count what is made and freed ---- */

static _Atomic int tls_made, tls_freed, trust_hook_calls;

/* l->tls is typed; this test's canary stands in for the real gw_tls_lst (opaque here) */
struct gw_tls_lst {
	uint64_t gen;
	uint32_t magic;
};

static int
hook_init(void *arg, const struct gw_cfg_listener *lc, struct gw_snap_listener *l)
{
	struct gw_tls_lst *c = malloc(sizeof(*c));

	(void)arg;
	if (c == NULL)
		return -ENOMEM;
	c->gen = ntohs(lc->addr.port);
	c->magic = 0x7115;
	l->tls = c;
	tls_made++;
	return 0;
}

static void
hook_fini(void *arg, struct gw_snap_listener *l)
{
	(void)arg;
	if (l->tls) {
		l->tls->magic = 0;
		free(l->tls);
		tls_freed++;
	}
}

static int
hook_trust(void *arg, const struct gw_cfg_listener *lc, struct gw_trust **out)
{
	trust_hook_calls++;
	return gw_trust_create(&lc->trust, (const char *)arg, out);
}

static const struct gw_snapshot_ext ext = {
	.arg = "hooked",
	.listener_init = hook_init,
	.listener_fini = hook_fini,
};

/* ---- readers ---- */

struct reader {
	struct gw_snap_pub *p;
	unsigned id;
	_Atomic bool *stop;
	unsigned long seen, bad, refs_taken;
	uint64_t max_gen;
};

/* The invariants every published snapshot holds. */
static bool
snap_ok(const struct gw_snapshot *s)
{
	const struct gw_snap_listener *l0, *l1;
	const struct gw_tls_lst *c;
	char want[32];
	uint64_t g;

	if (!gw_snapshot_valid(s) || gw_snapshot_n_listeners(s) != 2)
		return false;
	g = gw_snapshot_generation(s);
	l0 = gw_snapshot_listener(s, 0);
	l1 = gw_snapshot_listener(s, 1);
	snprintf(want, sizeof(want), "gen-%llu", (unsigned long long)g);
	c = l0->tls;
	return strcmp(l0->name, want) == 0 && ntohs(l0->addr.port) == (uint16_t)g &&
	       strcmp(l1->name, "echo") == 0 && l0->n_upstreams == 1 &&
	       ntohs(l0->upstreams[0].port) == 8080 && c != NULL && c->magic == 0x7115 &&
	       c->gen == (uint16_t)g && (g % 50 != 0 || l0->trust != NULL);
}

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	struct gw_snapshot *held[4] = {0};
	unsigned long n = 0;

	if (gw_snap_reader_register(r->p, r->id) != 0) {
		r->bad++;
		return NULL;
	}
	while (!atomic_load(r->stop)) {
		const struct gw_snapshot *s = gw_snap_current(r->p);

		if (s != NULL) {
			r->seen++;
			if (!snap_ok(s))
				r->bad++;
			if (gw_snapshot_generation(s) < r->max_gen)
				r->bad++; /* generations never go back */
			r->max_gen = gw_snapshot_generation(s);
			/* a "connection": hold a ref for a while, check it each time */
			if (n % 7 == 0) {
				unsigned k = (unsigned)(n / 7) % 4;

				gw_snapshot_unref(held[k]);
				held[k] = gw_snapshot_ref(s);
				r->refs_taken++;
			}
			for (unsigned k = 0; k < 4; k++)
				if (held[k] && !snap_ok(held[k]))
					r->bad++;
		}
		n++;
		/* now and then sleep like an idle worker: offline first */
		if (n % 64 == 0) {
			gw_snap_reader_offline(r->p, r->id);
			usleep(50);
			gw_snap_reader_online(r->p, r->id);
		}
		gw_snap_reader_quiescent(r->p, r->id);
	}
	for (unsigned k = 0; k < 4; k++)
		gw_snapshot_unref(held[k]);
	gw_snap_reader_unregister(r->p, r->id);
	return NULL;
}

/* A reader that takes one reference and keeps it until told. */
struct holder {
	struct gw_snap_pub *p;
	unsigned id;
	_Atomic int state; /* 0 start, 1 holding, 2 release now, 3 released */
	struct gw_snapshot *s;
	uint64_t gen;
	unsigned long bad;
};

static void *
holder_main(void *arg)
{
	struct holder *h = arg;

	if (gw_snap_reader_register(h->p, h->id) != 0) {
		h->bad++;
		return NULL;
	}
	while (gw_snap_current(h->p) == NULL)
		gw_snap_reader_quiescent(h->p, h->id);
	h->s = gw_snapshot_ref(gw_snap_current(h->p));
	h->gen = gw_snapshot_generation(h->s);
	gw_snap_reader_quiescent(h->p, h->id);
	atomic_store(&h->state, 1);
	while (atomic_load(&h->state) != 2) {
		if (!snap_ok(h->s) || gw_snapshot_generation(h->s) != h->gen)
			h->bad++;
		gw_snap_reader_quiescent(h->p, h->id);
		usleep(100);
	}
	gw_snapshot_unref(h->s);
	gw_snap_reader_unregister(h->p, h->id);
	atomic_store(&h->state, 3);
	return NULL;
}

int
main(void)
{
	struct mk_corpus corpus;

	GW_TEST_BEGIN();
	if (mkdtemp(dir) == NULL || mk_corpus_build(&corpus, time(NULL)) < 0 ||
		mk_corpus_write(&corpus, dir) < 0) {
		fprintf(stderr, "cannot build the corpus\n");
		return 1;
	}
	snprintf(root_path, sizeof(root_path), "%s/root.pem", dir);
	snprintf(leaf_path, sizeof(leaf_path), "%s/leaf.pem", dir);

	{ /* build: fields copied, trust compiled, lookups */
		struct tcfg t;
		struct gw_snapshot *s = NULL;
		const struct gw_snap_listener *l;
		struct gw_trust_verdict v;
		STACK_OF(X509) *chain = mk_stack(corpus.inter.x, NULL);

		tcfg_set(&t, 7, true);
		EXPECT_OK(gw_snapshot_build(&t.cfg, 7, NULL, &s));
		EXPECT_TRUE(gw_snapshot_valid(s));
		EXPECT_EQ(gw_snapshot_generation(s), 7);
		EXPECT_EQ(gw_snapshot_n_listeners(s), 2);
		memset(&t, 0xa5, sizeof(t)); /* the snapshot keeps no pointer into cfg */
		l = gw_snapshot_listener_find(s, "gen-7");
		EXPECT_TRUE(l != NULL);
		if (l) {
			EXPECT_EQ(ntohs(l->addr.port), 7);
			EXPECT_EQ(l->service, GW_SVC_TLS_PROXY);
			EXPECT_EQ(l->tls_min_version, 0x0304);
			EXPECT_EQ(l->n_upstreams, 1);
			EXPECT_EQ(l->proxy_protocol, GW_PROXY_V2);
			EXPECT_TRUE(l->trust != NULL && l->tls == NULL);
			EXPECT_OK(gw_trust_verify(l->trust, corpus.leaf.x, chain, 0, &v));
			EXPECT_ERR(
				gw_trust_verify(l->trust, corpus.leaf.x, NULL, 0, &v), -GW_E_TRUST);
		}
		l = gw_snapshot_listener_find(s, "echo");
		EXPECT_TRUE(l != NULL && l->trust == NULL && l->n_upstreams == 0);
		EXPECT_TRUE(gw_snapshot_listener_find(s, "nope") == NULL);
		EXPECT_TRUE(gw_snapshot_listener(s, 2) == NULL);
		gw_snapshot_destroy(s);
		gw_snapshot_destroy(NULL);
		sk_X509_pop_free(chain, X509_free);
	}
	{ /* the listener table: one typed entry per config listener, in config order */
		struct gw_cfg cfg = {0};
		struct gw_cfg_listener lc[3];
		struct gw_cfg_ep ups[3] = {
			{.ip = htonl(0x0a000001), .port = htons(9001)},
			{.ip = htonl(0x0a000002), .port = htons(9002)},
			{.ip = htonl(0x0a000003), .port = htons(9003)},
		};
		struct gw_snapshot *s = NULL;
		const struct gw_snap_listener *l;

		lc[0] = (struct gw_cfg_listener){.name = "plain-echo",
			.addr = {.ip = htonl(0x0a630002), .port = htons(7)},
			.service = GW_SVC_ECHO,
			.backlog = 64};
		lc[1] = (struct gw_cfg_listener){.name = "plain-proxy",
			.addr = {.ip = htonl(0x0a630002), .port = htons(8000)},
			.service = GW_SVC_TCP_PROXY,
			.has_upstream = true,
			.upstream = {.servers = ups, .n_servers = 3}};
		lc[2] = (struct gw_cfg_listener){.name = "tls-echo",
			.addr = {.ip = 0, .port = htons(8443)},
			.service = GW_SVC_TLS_ECHO,
			.has_tls = true,
			.tls = {.min_version = 0x0303, .client_auth = GW_CLIENT_AUTH_OPTIONAL}};
		cfg.listeners = lc;
		cfg.n_listeners = 3;
		EXPECT_OK(gw_snapshot_build(&cfg, 1, NULL, &s));
		memset(ups, 0x5a, sizeof(ups)); /* copied, not borrowed */
		EXPECT_EQ(gw_snapshot_n_listeners(s), 3);
		/* by index (what accept uses): the config's order */
		l = gw_snapshot_listener(s, 0);
		EXPECT_TRUE(l != NULL && strcmp(l->name, "plain-echo") == 0);
		if (l) {
			EXPECT_EQ(l->service, GW_SVC_ECHO);
			EXPECT_EQ(ntohs(l->addr.port), 7);
			EXPECT_EQ(ntohl(l->addr.ip), 0x0a630002);
			EXPECT_EQ(l->backlog, 64);
			EXPECT_TRUE(!l->has_tls && l->tls_min_version == 0 && l->tls == NULL);
			EXPECT_EQ(l->client_auth, GW_CLIENT_AUTH_NONE);
			EXPECT_TRUE(l->n_upstreams == 0 && l->upstreams == NULL);
		}
		l = gw_snapshot_listener(s, 1);
		EXPECT_TRUE(l != NULL && strcmp(l->name, "plain-proxy") == 0);
		if (l) {
			EXPECT_EQ(l->service, GW_SVC_TCP_PROXY);
			EXPECT_EQ(l->n_upstreams, 3);
			for (unsigned i = 0; i < 3 && i < l->n_upstreams; i++) {
				EXPECT_EQ(ntohl(l->upstreams[i].ip), 0x0a000001 + i);
				EXPECT_EQ(ntohs(l->upstreams[i].port), 9001 + i);
			}
			EXPECT_EQ(l->proxy_protocol, GW_PROXY_OFF);
			EXPECT_TRUE(l->trust == NULL);
		}
		l = gw_snapshot_listener(s, 2);
		EXPECT_TRUE(l != NULL && strcmp(l->name, "tls-echo") == 0);
		if (l) {
			EXPECT_EQ(l->service, GW_SVC_TLS_ECHO);
			EXPECT_TRUE(l->has_tls);
			EXPECT_EQ(l->tls_min_version, 0x0303);
			EXPECT_EQ(l->client_auth, GW_CLIENT_AUTH_OPTIONAL);
			EXPECT_TRUE(l->tls == NULL); /* no ext: no TLS side built */
		}
		EXPECT_TRUE(gw_snapshot_listener(s, 3) == NULL);
		EXPECT_TRUE(
			gw_snapshot_listener_find(s, "plain-proxy") == gw_snapshot_listener(s, 1));
		gw_snapshot_destroy(s);
	}
	{ /* the object the builder fills: room, counting, sealing */
		struct gw_snapshot *s = NULL;
		struct gw_snap_listener *l;

		EXPECT_ERR(gw_snapshot_create(0, 1, NULL, NULL, &s), -EINVAL);
		EXPECT_OK(gw_snapshot_create(5, 2, NULL, NULL, &s));
		EXPECT_TRUE(!gw_snapshot_valid(s)); /* not sealed: never publishable */
		EXPECT_EQ(gw_snapshot_n_listeners(s), 0);
		l = gw_snapshot_listener_add(s);
		EXPECT_TRUE(l != NULL && l->name == NULL && l->tls == NULL);
		EXPECT_TRUE(gw_snapshot_listener_add(s) != NULL);
		EXPECT_TRUE(gw_snapshot_listener_add(s) == NULL); /* room for two */
		EXPECT_EQ(gw_snapshot_n_listeners(s), 2);
		gw_snapshot_seal(s);
		EXPECT_TRUE(gw_snapshot_valid(s));
		EXPECT_EQ(gw_snapshot_generation(s), 5);
		gw_snapshot_destroy(s); /* zeroed listeners free cleanly */
	}
	{ /* a listener table made by hand (dataplane tests): name and upstreams copied */
		struct gw_ep ups[2] = {{htonl(0x0a000001), htons(9001)}, {htonl(0x0a000002), 0}};
		struct gw_snapshot *s = NULL;
		struct gw_snap_listener *l;

		EXPECT_OK(gw_snapshot_create(9, 1, NULL, NULL, &s));
		l = gw_snapshot_listener_add(s);
		EXPECT_ERR(gw_snapshot_listener_set(l, NULL, ups, 1), -EINVAL);
		EXPECT_ERR(gw_snapshot_listener_set(l, "p", NULL, 1), -EINVAL);
		EXPECT_TRUE(l->name == NULL && l->n_upstreams == 0); /* unchanged */
		EXPECT_OK(gw_snapshot_listener_set(l, "first", ups, 2));
		/* set again: the old ones are freed (ASan), the new ones copied */
		EXPECT_OK(gw_snapshot_listener_set(l, "proxy", ups, 1));
		memset(ups, 0x5a, sizeof(ups));
		EXPECT_TRUE(strcmp(l->name, "proxy") == 0 && l->n_upstreams == 1);
		EXPECT_TRUE(l->upstreams[0].ip == htonl(0x0a000001) &&
			    l->upstreams[0].port == htons(9001));
		EXPECT_OK(gw_snapshot_listener_set(l, "echo", NULL, 0));
		EXPECT_TRUE(l->upstreams == NULL && l->n_upstreams == 0);
		gw_snapshot_seal(s);
		EXPECT_TRUE(gw_snapshot_listener_find(s, "echo") == gw_snapshot_listener(s, 0));
		gw_snapshot_destroy(s);
	}
	{ /* a trust that does not build fails the whole snapshot, naming the listener */
		struct tcfg t;
		struct gw_snapshot *s = NULL;

		tcfg_set(&t, 3, true);
		t.certs[0] = leaf_path; /* a leaf is not a CA anchor */
		tls_made = tls_freed = 0;
		EXPECT_ERR(gw_snapshot_build(&t.cfg, 3, &ext, &s), -GW_E_CONFIG);
		EXPECT_CONTAINS(gw_err_msg(), "listener 'gen-3' trust:");
		EXPECT_CONTAINS(gw_err_msg(), "is not a CA certificate");
		EXPECT_TRUE(s == NULL);
		EXPECT_EQ(tls_made, tls_freed);
		EXPECT_ERR(gw_snapshot_build(&t.cfg, 0, NULL, &s), -EINVAL);
	}
	{ /* the trust hook replaces gw_trust_create */
		struct tcfg t;
		struct gw_snapshot *s = NULL;
		struct gw_snapshot_ext e = {.arg = "from-hook", .trust_build = hook_trust};

		tcfg_set(&t, 4, true);
		trust_hook_calls = 0;
		EXPECT_OK(gw_snapshot_build(&t.cfg, 4, &e, &s));
		EXPECT_EQ(trust_hook_calls, 1);
		gw_snapshot_destroy(s);
	}
	{ /* publish rules */
		struct gw_snap_pub *p = NULL;
		struct gw_snapshot *a = NULL, *b = NULL;
		struct gw_snap_stats st;
		struct tcfg t;

		EXPECT_ERR(gw_snap_pub_create(0, &p), -EINVAL);
		EXPECT_OK(gw_snap_pub_create(2, &p));
		EXPECT_TRUE(gw_snap_current(p) == NULL);
		tcfg_set(&t, 5, false);
		EXPECT_OK(gw_snapshot_build(&t.cfg, 5, NULL, &a));
		EXPECT_OK(gw_snapshot_build(&t.cfg, 5, NULL, &b));
		EXPECT_OK(gw_snap_pub_publish(p, a));
		EXPECT_TRUE(gw_snap_current(p) == a);
		EXPECT_ERR(gw_snap_pub_publish(p, b), -EINVAL); /* same generation */
		EXPECT_CONTAINS(gw_err_msg(), "not newer");
		EXPECT_ERR(gw_snap_pub_publish(p, NULL), -EINVAL);
		gw_snapshot_destroy(b);
		EXPECT_ERR(gw_snap_reader_register(p, 2), -EINVAL);
		/* no readers: a replaced snapshot goes at once, unless referenced */
		gw_snapshot_ref(a);
		tcfg_set(&t, 6, false);
		EXPECT_OK(gw_snapshot_build(&t.cfg, 6, NULL, &b));
		EXPECT_OK(gw_snap_pub_publish(p, b));
		EXPECT_EQ(gw_snap_pub_reclaim(p, true), 1); /* a is still referenced */
		EXPECT_TRUE(gw_snapshot_valid(a));
		gw_snapshot_unref(a);
		EXPECT_EQ(gw_snap_pub_reclaim(p, false), 0);
		gw_snap_pub_stats_get(p, &st);
		EXPECT_EQ(st.published, 2);
		EXPECT_EQ(st.freed, 1);
		EXPECT_EQ(st.pending, 0);
		/* a registered reader that has not reported quiescent holds the grace period */
		EXPECT_OK(gw_snap_reader_register(p, 0));
		tcfg_set(&t, 8, false);
		EXPECT_OK(gw_snapshot_build(&t.cfg, 8, NULL, &a));
		EXPECT_OK(gw_snap_pub_publish(p, a));
		EXPECT_EQ(gw_snap_pub_reclaim(p, false), 1);
		gw_snap_reader_quiescent(p, 0);
		EXPECT_EQ(gw_snap_pub_reclaim(p, false), 0);
		/* an offline reader does not */
		gw_snap_reader_offline(p, 0);
		tcfg_set(&t, 9, false);
		EXPECT_OK(gw_snapshot_build(&t.cfg, 9, NULL, &b));
		EXPECT_OK(gw_snap_pub_publish(p, b));
		EXPECT_EQ(gw_snap_pub_reclaim(p, false), 0);
		gw_snap_reader_unregister(p, 0);
		gw_snap_pub_destroy(p);
		gw_snap_pub_destroy(NULL);
	}
	{ /* a thousand publishes under three readers and one long-lived reference */
		struct gw_snap_pub *p = NULL;
		struct reader r[N_READERS];
		struct holder h = {0};
		pthread_t th[N_READERS], hth;
		_Atomic bool stop = false;
		struct gw_snap_stats st;
		unsigned long bad = 0, seen = 0, refs = 0;
		bool held_alive = true;

		tls_made = tls_freed = 0;
		EXPECT_OK(gw_snap_pub_create(N_READERS + 1, &p));
		for (unsigned i = 0; i < N_READERS; i++) {
			r[i] = (struct reader){.p = p, .id = i, .stop = &stop};
			pthread_create(&th[i], NULL, reader_main, &r[i]);
		}
		h.p = p;
		h.id = N_READERS;
		pthread_create(&hth, NULL, holder_main, &h);
		for (uint64_t g = 1; g <= N_PUBLISH; g++) {
			struct tcfg t;
			struct gw_snapshot *s = NULL;

			/* a real trust now and then: building one reads files */
			tcfg_set(&t, g, g % 50 == 0);
			if (gw_snapshot_build(&t.cfg, g, &ext, &s) != 0 ||
				gw_snap_pub_publish(p, s) != 0) {
				bad++;
				gw_snapshot_destroy(s);
			}
			if (g == 2)
				while (atomic_load(&h.state) != 1)
					usleep(100);
			if (g > 2 && g % 100 == 0 && !gw_snapshot_valid(h.s))
				held_alive = false;
			if (g % 16 == 0)
				usleep(200); /* let the readers run on a 2-core box */
		}
		/* the held snapshot (an early generation) is alive and pending */
		EXPECT_TRUE(held_alive);
		EXPECT_TRUE(gw_snapshot_valid(h.s));
		EXPECT_TRUE(h.gen >= 1 && h.gen <= 2);
		atomic_store(&stop, true);
		for (unsigned i = 0; i < N_READERS; i++) {
			pthread_join(th[i], NULL);
			bad += r[i].bad;
			seen += r[i].seen;
			refs += r[i].refs_taken;
		}
		EXPECT_TRUE(gw_snap_pub_reclaim(p, true) >= 1); /* h still holds one */
		EXPECT_TRUE(gw_snapshot_valid(h.s));
		atomic_store(&h.state, 2);
		pthread_join(hth, NULL);
		EXPECT_EQ(h.bad, 0);
		EXPECT_EQ(gw_snap_pub_reclaim(p, true), 0);
		gw_snap_pub_stats_get(p, &st);
		EXPECT_EQ(bad, 0);
		EXPECT_TRUE(seen > 0 && refs > 0);
		EXPECT_EQ(st.published, N_PUBLISH);
		EXPECT_EQ(st.freed, N_PUBLISH - 1); /* every old one; the current stays */
		EXPECT_EQ(st.pending, 0);
		EXPECT_EQ(tls_made - tls_freed, 2); /* the current snapshot's two listeners */
		EXPECT_EQ(gw_snapshot_generation(gw_snap_current(p)), N_PUBLISH);
		printf("readers saw %lu snapshots, took %lu references\n", seen, refs);
		gw_snap_pub_destroy(p);
		EXPECT_EQ(tls_made, tls_freed);
	}

	mk_corpus_free(&corpus);
	{
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	GW_TEST_END();
}
