/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_cluster.c - the fleet agent (control/cluster.c) against a real etcd
 * on loopback and a real SoftHSM token holding the wrapping key: the first
 * member leads and makes the ticket keys, a second reads the same keys, the
 * leader rotates them (the previous key travels along), a value that does
 * not unseal or is older than the installed one is refused (and the leader
 * heals a replay by writing the next serial), the leadership passes on when
 * the leader leaves, a member keeps its keys while etcd is down and catches
 * up when it returns, a member with another wrapping key refuses the
 * fleet's keys, and a ticket_key that is not in the token fails the start.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cluster.h"
#include "cluster_cfg.h"
#include "etcd.h"
#include "gw_etcd_test.h"
#include "gw_softhsm.h"
#include "gw_test.h"
#include "hsm.h"

static struct gw_softhsm tok;
static struct gw_etcd_test etcd;

static void
cleanup(void)
{
	gw_etcd_test_kill(&etcd);
	if (tok.dir[0])
		(void)gw_softhsm_remove(&tok);
	tok.dir[0] = '\0';
}

static void
on_signal(int sig)
{
	cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* A token with an AES-256 key labelled fleet-wrap (a random one per token). */
static void
token(const char *label)
{
	struct gw_hsm_params p = {.token = label, .pin_file = tok.pin};
	struct gw_hsm *h = NULL;
	uint8_t key[GW_HSM_SECRET_LEN];
	char uri[GW_HSM_URI_MAX];

	if (gw_hsm_token_init(&p, tok.so_pin) != 0 || gw_hsm_open(&p, &h) != 0 ||
		RAND_bytes(key, sizeof(key)) != 1 ||
		gw_hsm_secret_import(h, "fleet-wrap", key, sizeof(key), uri) != 0) {
		fprintf(stderr, "token %s: %s\n", label, gw_err_msg());
		exit(2);
	}
	gw_hsm_close(h);
}

static struct gw_cluster *
member(const char *node, const char *token_label, unsigned lifetime_s, unsigned join_ms)
{
	static char uris[4][128];
	static unsigned next;
	char *uri = uris[next++ % 4];
	struct gw_cfg_cluster cc = {
		.name = "t1",
		.node = (char *)node,
		.endpoints = {etcd.url},
		.n_endpoints = 1,
		.lease_ttl_s = 2,
		.timeout_ms = 500,
	};
	struct gw_hsm_params hp = {.pin_file = tok.pin};
	struct gw_cluster_params p = {.cfg = &cc,
		.hsm = &hp,
		.ticket_lifetime_s = lifetime_s,
		.join_timeout_ms = join_ms};
	struct gw_cluster *c = NULL;

	snprintf(uri, 128, "pkcs11:token=%s;object=fleet-wrap;type=secret-key", token_label);
	cc.ticket_key = uri;
	if (gw_cluster_start(&p, &c) != 0) {
		fprintf(stderr, "member %s: %s\n", node, gw_err_msg());
		exit(1);
	}
	return c;
}

/* Wait (at most s seconds) for keys with at least serial min; the serial taken, 0 if none. */
static uint64_t
wait_keys(struct gw_cluster *c, uint64_t min, unsigned s, struct gw_cluster_tkeys *ks)
{
	for (unsigned i = 0; i < s * 10; i++) {
		if (gw_cluster_take_keys(c, ks) == 1 && ks->serial >= min)
			return ks->serial;
		usleep(100000);
	}
	return 0;
}

static bool
wait_flag(bool (*f)(const struct gw_cluster *), struct gw_cluster *c, bool want, unsigned s)
{
	for (unsigned i = 0; i < s * 10; i++) {
		if (f(c) == want)
			return true;
		usleep(100000);
	}
	return false;
}

/* The status's LastError (empty when none). */
static void
last_error(struct gw_cluster *c, char *buf, size_t len)
{
	json_t *o = json_object();

	(void)gw_cluster_status(c, o);
	snprintf(buf, len, "%s", json_string_value(json_object_get(o, "LastError")) ?: "");
	json_decref(o);
}

/* Put a pushed config revision as mtlsgw-ctl cluster push would, sealed in token "gw". */
static void
put_config(struct gw_etcd *e, uint64_t rev, const char *shared, const char *seal_shared)
{
	struct gw_hsm_params hp = {.pin_file = tok.pin};
	struct gw_hsm *h = NULL;
	uint8_t digest[32], sealed[32 + GW_HSM_SEAL_OVERHEAD];
	char aad[128], b64[128], *val;
	size_t n = sizeof(sealed);
	json_t *files = json_pack("{s:s}", "/etc/x.pem", "00"), *o;

	gw_cluster_shared_digest("t1", rev, seal_shared, files, digest);
	gw_cluster_shared_aad("t1", rev, aad, sizeof(aad));
	if (gw_hsm_open(&hp, &h) != 0 ||
		gw_hsm_seal(h, "pkcs11:token=gw;object=fleet-wrap;type=secret-key",
			(const uint8_t *)aad, strlen(aad), digest, sizeof(digest), sealed,
			&n) != 0) {
		fprintf(stderr, "seal: %s\n", gw_err_msg());
		exit(2);
	}
	gw_hsm_close(h);
	EVP_EncodeBlock((unsigned char *)b64, sealed, (int)n);
	o = json_pack("{s:I,s:s,s:o,s:s}", "revision", (json_int_t)rev, "shared", shared, "files",
		files, "seal", b64);
	val = json_dumps(o, JSON_COMPACT);
	if (gw_etcd_put(e, "/mtlsgw/t1/config", val, strlen(val), 0) != 0)
		exit(2);
	free(val);
	json_decref(o);
}

/* Wait for a pushed revision; 0 if none came. */
static uint64_t
wait_config(struct gw_cluster *c, unsigned s, char **shared)
{
	uint64_t rev;
	json_t *files;

	for (unsigned i = 0; i < s * 10; i++) {
		if (gw_cluster_take_config(c, &rev, shared, &files) == 1) {
			json_decref(files);
			return rev;
		}
		usleep(100000);
	}
	return 0;
}

/* The shared part of a config's text, and a member's file with it in. */
static void
test_shared_text(void)
{
	const char *file = "ports:\n  - name: p\n# about listeners\nlisteners:\n  - name: a\n"
			   "    address: 1.2.3.4:1\n\n- name: b\nhsm:\n  pin_file: x\n"
			   "mtls :\n  backends: []\nstate_dir: /s\n";
	const char *mine = "ports: [p]\nlisteners:\n  - name: old\nhsm: {pin_file: y}\n";
	char *sh = NULL, *m = NULL;

	EXPECT_OK(gw_cluster_shared_extract(file, &sh));
	EXPECT_STREQ(sh, "listeners:\n  - name: a\n    address: 1.2.3.4:1\n\n- name: b\n"
			 "mtls :\n  backends: []\n");
	EXPECT_OK(gw_cluster_shared_merge(mine, sh, &m));
	EXPECT_TRUE(strstr(m, "name: old") == NULL);
	EXPECT_CONTAINS(m, "ports: [p]\nhsm: {pin_file: y}\n");
	EXPECT_CONTAINS(m, "- name: b\nmtls :");
	free(sh);
	free(m);
	EXPECT_ERR(gw_cluster_shared_extract("ports: []\n", &sh), -EINVAL);
	EXPECT_CONTAINS(gw_err_msg(), "no top-level 'listeners:'");
	EXPECT_ERR(gw_cluster_shared_extract("listeners: []\n", &sh), -EINVAL);
	EXPECT_CONTAINS(gw_err_msg(), "flow style");
	EXPECT_ERR(gw_cluster_shared_extract("listeners:\n - a\n---\nlisteners:\n", &sh), -EINVAL);
	EXPECT_CONTAINS(gw_err_msg(), "several YAML documents");
}

int
main(void)
{
	const char *eps[1];
	struct gw_etcd_params ep = {.endpoints = eps, .n_endpoints = 1, .timeout_ms = 1000};
	struct gw_cluster_tkeys ka, kb, k;
	struct gw_cluster *a, *b, *c;
	struct gw_etcd *raw = NULL;
	uint8_t *v1 = NULL, *v = NULL;
	size_t l1 = 0, l = 0;
	char err[256];
	uint64_t s;

	GW_TEST_BEGIN();
	if (access("/usr/bin/etcd", X_OK) != 0)
		GW_TEST_SKIP("no /usr/bin/etcd (tools/deps.sh installs etcd-server)");
	signal(SIGPIPE, SIG_IGN); /* as mtlsgw does (etcd.h) */
	if (gw_softhsm_setup(&tok, "gwcluster") < 0)
		return 2;
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	token("gw");
	token("other");
	snprintf(etcd.dir, sizeof(etcd.dir), "%s", tok.dir);
	snprintf(etcd.url, sizeof(etcd.url), "http://127.0.0.1:%u", gw_test_free_port());
	snprintf(etcd.peer, sizeof(etcd.peer), "http://127.0.0.1:%u", gw_test_free_port());
	if (gw_etcd_test_start(&etcd) != 0)
		return 2;
	eps[0] = etcd.url;
	if (gw_etcd_open(&ep, &raw) != 0)
		return 2;

	test_shared_text();

	/* the first member leads and makes serial 1; the second reads the same keys */
	a = member("a", "gw", 2, 3000);
	EXPECT_TRUE(gw_cluster_is_leader(a));
	EXPECT_TRUE(gw_cluster_etcd_up(a));
	EXPECT_EQ(gw_cluster_take_keys(a, &ka), 1);
	EXPECT_EQ(ka.serial, 1);
	EXPECT_TRUE(!ka.has_prev);
	b = member("b", "gw", 2, 3000);
	EXPECT_TRUE(!gw_cluster_is_leader(b));
	EXPECT_EQ(gw_cluster_take_keys(b, &kb), 1);
	EXPECT_EQ(kb.serial, 1);
	EXPECT_TRUE(memcmp(&ka.cur, &kb.cur, sizeof(ka.cur)) == 0);
	EXPECT_EQ(gw_cluster_take_keys(b, &kb), 0); /* nothing new */
	/* the value in etcd is sealed: no key byte in clear */
	EXPECT_OK(gw_etcd_get(raw, "/mtlsgw/t1/tickets", &v1, &l1, NULL));
	EXPECT_TRUE(memmem(v1, l1, ka.cur.aes, 8) == NULL);
	{
		json_t *o = json_object();

		EXPECT_OK(gw_cluster_status(b, o));
		EXPECT_STREQ(json_string_value(json_object_get(o, "Leader")), "a");
		EXPECT_EQ(json_array_size(json_object_get(o, "Members")), 2);
		json_decref(o);
	}

	/* rotation (lifetime 2 s): serial 2 carries serial 1's key as the previous */
	s = wait_keys(b, 2, 8, &kb);
	EXPECT_EQ(s, 2);
	EXPECT_TRUE(kb.has_prev && memcmp(&kb.prev, &ka.cur, sizeof(ka.cur)) == 0);
	EXPECT_TRUE(memcmp(&kb.cur, &ka.cur, sizeof(ka.cur)) != 0);
	EXPECT_EQ(wait_keys(a, 2, 4, &ka), 2);
	EXPECT_TRUE(memcmp(&ka.cur, &kb.cur, sizeof(ka.cur)) == 0);

	/* a pushed config: taken once; a changed content, a replay: refused and reported */
	{
		char *sh = NULL;
		json_t *o = json_object(), *cf;

		put_config(raw, 1, "listeners:\n  - name: a\n", "listeners:\n  - name: a\n");
		EXPECT_EQ(wait_config(b, 4, &sh), 1);
		EXPECT_STREQ(sh, "listeners:\n  - name: a\n");
		free(sh);
		sh = NULL;
		gw_cluster_config_report(b, 1, true, "generation 2");
		put_config(raw, 2, "listeners:\n  - name: EVIL\n", "listeners:\n  - name: b\n");
		EXPECT_EQ(wait_config(b, 2, &sh), 0);
		put_config(raw, 1, "listeners:\n  - name: a\n", "listeners:\n  - name: a\n");
		EXPECT_EQ(wait_config(b, 2, &sh), 0);
		EXPECT_OK(gw_cluster_status(b, o));
		cf = json_object_get(o, "Config");
		EXPECT_STREQ(json_string_value(json_object_get(cf, "Status")), "error");
		EXPECT_EQ(json_integer_value(json_object_get(cf, "Applied")), 1);
		EXPECT_CONTAINS(
			json_string_value(json_object_get(cf, "Message")), "stale or replayed");
		json_decref(o);
		put_config(raw, 3, "listeners:\n  - name: c\n", "listeners:\n  - name: c\n");
		EXPECT_EQ(wait_config(b, 4, &sh), 3);
		free(sh);
		gw_cluster_config_report(b, 3, true, "generation 3");
		/* the member key carries the report (the next turn) */
		sleep(1);
		EXPECT_OK(gw_etcd_get(raw, "/mtlsgw/t1/members/b", &v, &l, NULL));
		EXPECT_CONTAINS((const char *)v, "\"applied\":3");
		free(v);
		v = NULL;
	}

	/* a replayed old value is refused; the leader heals it with the next serial */
	EXPECT_OK(gw_etcd_put(raw, "/mtlsgw/t1/tickets", v1, l1, 0));
	s = wait_keys(b, 3, 8, &kb);
	EXPECT_TRUE(s >= 3);
	EXPECT_TRUE(kb.has_prev);
	/* a record whose serial was changed does not unseal (the serial is in the AAD) */
	gw_cluster_stop(a); /* no leader to heal it: b must refuse it and keep its keys */
	a = NULL;
	EXPECT_OK(gw_etcd_get(raw, "/mtlsgw/t1/tickets", &v, &l, NULL));
	{
		json_t *o = json_loadb((const char *)v, l, 0, NULL);
		char *t;

		json_object_set_new(o, "serial", json_integer(99));
		t = json_dumps(o, JSON_COMPACT);
		EXPECT_OK(gw_etcd_put(raw, "/mtlsgw/t1/tickets", t, strlen(t), 0));
		free(t);
		json_decref(o);
	}
	free(v);
	v = NULL;
	sleep(2);
	EXPECT_EQ(gw_cluster_take_keys(b, &k), 0);
	last_error(b, err, sizeof(err));
	EXPECT_CONTAINS(err, "does not authenticate");
	/* the leader left (lease revoked): b takes over and, seeing a value it cannot open, leaves it alone */
	EXPECT_TRUE(wait_flag(gw_cluster_is_leader, b, true, 6));
	sleep(1);
	EXPECT_EQ(gw_cluster_take_keys(b, &k), 0);
	/* the operator deletes it: the new leader writes the next serial after its own */
	EXPECT_OK(gw_etcd_delete(raw, "/mtlsgw/t1/tickets"));
	EXPECT_TRUE(wait_keys(b, s + 1, 6, &kb) > s);
	EXPECT_TRUE(kb.has_prev);

	/* another wrapping key (token "other"): the fleet's keys are refused */
	c = member("c", "other", 2, 1000);
	EXPECT_EQ(gw_cluster_take_keys(c, &k), 0);
	last_error(c, err, sizeof(err));
	EXPECT_CONTAINS(err, "does not authenticate");
	gw_cluster_stop(c);

	/* etcd down: b says so and keeps serving; back: it answers again */
	gw_etcd_test_kill(&etcd);
	EXPECT_TRUE(wait_flag(gw_cluster_etcd_up, b, false, 6));
	EXPECT_TRUE(!gw_cluster_is_leader(b));
	EXPECT_OK(gw_etcd_test_start(&etcd) == 0 ? 0 : -1);
	EXPECT_TRUE(wait_flag(gw_cluster_etcd_up, b, true, 10));
	EXPECT_TRUE(wait_flag(gw_cluster_is_leader, b, true, 10));

	/* a ticket_key the token does not have: the start fails, naming it */
	{
		struct gw_cfg_cluster cc = {.name = "t1",
			.node = "d",
			.endpoints = {etcd.url},
			.n_endpoints = 1,
			.ticket_key = "pkcs11:token=gw;object=nope;type=secret-key"};
		struct gw_hsm_params hp = {.pin_file = tok.pin};
		struct gw_cluster_params p = {.cfg = &cc, .hsm = &hp, .join_timeout_ms = 500};
		struct gw_cluster *d = NULL;

		EXPECT_ERR(gw_cluster_start(&p, &d), -GW_E_HSM_KEY);
		EXPECT_CONTAINS(gw_err_msg(), "cluster.ticket_key");
		EXPECT_TRUE(d == NULL);
	}
	gw_cluster_stop(b);
	/* leaving revokes the lease: no member key is left behind */
	EXPECT_ERR(gw_etcd_get(raw, "/mtlsgw/t1/members/b", &v, &l, NULL), -ENOENT);
	free(v1);
	gw_etcd_close(raw);
	OPENSSL_cleanse(&ka, sizeof(ka));
	GW_TEST_END();
}
