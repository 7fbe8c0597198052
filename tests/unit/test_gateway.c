/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_gateway.c - the running gateway (gateway/gateway.h) without ports:
 * the config -> dataplane params translation, the reload compatibility
 * rules (every field that forbids a reload, and a change that is allowed),
 * and a gateway started control-only (no EAL, no workers) on a real config
 * file, a fresh SoftHSM token and the builtin mesh CA: reloads that are
 * refused change nothing (generation, running config, the CA's roots file),
 * a reload failing at each step (test hooks) is all or nothing, the tick's
 * ticket key schedule, status and metrics as the admin API renders them.
 * The snapshot is the one listener table: plain listeners are in it with
 * their upstreams, a reload that changes a tcp-proxy's upstreams publishes
 * them, and a gateway without TLS (no HSM) publishes snapshots too.
 * As root, a child in a network namespace of its own (unshare: the tap and
 * everything on it disappear with it) also starts the whole gateway (EAL
 * --no-huge, a tap port, one worker), reloads it and stops it.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "gateway.h"
#include "gw_log.h"
#include "gw_softhsm.h"
#include "gw_test.h"
#include "hsm.h"
#include "metrics.h"

static struct gw_softhsm tok;
static char cfg_path[128], sock[128], roots_path[160];
/* the tcp-proxy's upstream servers in the next write_cfg */
static const char *plain_ups = "10.78.0.9:8080, 10.78.0.10:8081";

/*
 * The config: one tcp-proxy and one tls-echo (mesh trust, builtin CA)
 * listener. The fields a reload may not change are parameters.
 */
static void
write_cfg(const char *web_name, const char *web_addr, const char *web_service, const char *spiffe,
	const char *backends, const char *extra)
{
	char buf[4096];

	snprintf(buf, sizeof(buf),
		"dataplane:\n  workers: [1, 2]\n  no_huge: true\n  memory_mb: 300\n"
		"  ports:\n"
		"    - { name: wan, driver: tap, device: gwg0, address: 10.78.0.2/24, gateway: "
		"10.78.0.1 }\n"
		"  tls: { max_handshakes: 77 }\n"
		"  tcp: { max_connections: 4000 }\n"
		"listeners:\n"
		"  - name: plain\n    address: 10.78.0.2:80\n    service: tcp-proxy\n"
		"    upstream: { servers: [ %s ] }\n"
		"  - name: %s\n    address: %s\n    service: %s\n"
		"    tls: { client_auth: required, ticket_lifetime: 10m }\n"
		"    trust: { mode: mesh, allow: { spiffe: [\"%s\"] } }\n"
		"%s"
		"hsm: { pin_file: pin }\nstate_dir: state\nadmin: { socket: %s }\n"
		"mtls:\n  trust_domain: example.org\n  enabledBackend: ca-1\n  backends: %s\n",
		plain_ups, web_name, web_addr, web_service, spiffe, extra, sock, backends);
	if (gw_softhsm_write(cfg_path, buf) < 0)
		exit(2);
}

#define B1 "[ { name: ca-1, type: builtin } ]"
#define B12 "[ { name: ca-1, type: builtin }, { name: ca-2, type: builtin } ]"
#define GOOD_ARGS "web", "10.78.0.2:443", "tls-echo", "spiffe://example.org/ns/*"

static void
write_good(void)
{
	write_cfg(GOOD_ARGS, B1, "");
}

static struct gw_cfg *
load(void)
{
	struct gw_cfg *c = NULL;

	if (gw_cfg_load(cfg_path, &c, stderr) < 0) {
		fprintf(stderr, "config: %s\n", gw_err_msg());
		exit(2);
	}
	return c;
}

/* The file's bytes (NULL if missing); caller frees. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *b;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = calloc(1, (size_t)n + 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

static bool
contains(const char *hay, const char *needle)
{
	return hay != NULL && strstr(hay, needle) != NULL;
}

/* One field that forbids a reload: refused with its reason, by the rule and by the gateway. */
static void
incompatible(struct gw_gateway *g, const struct gw_cfg *start, const char *why)
{
	struct gw_cfg *n = load();
	const struct gw_cfg *before = gw_gateway_config(g);
	uint64_t gen = gw_gateway_generation(g);
	char *roots = slurp(roots_path), *roots_after;

	EXPECT_ERR(gw_gateway_reload_compatible(start, n), -GW_E_CONFIG);
	EXPECT_TRUE(contains(gw_err_msg(), why));
	EXPECT_TRUE(contains(gw_err_msg(), "restart"));
	EXPECT_ERR(gw_gateway_reload(g), -GW_E_CONFIG);
	EXPECT_TRUE(contains(gw_err_msg(), why));
	EXPECT_TRUE(gw_gateway_generation(g) == gen);
	EXPECT_TRUE(gw_gateway_config(g) == before);
	roots_after = slurp(roots_path);
	EXPECT_TRUE(roots != NULL && roots_after != NULL && strcmp(roots, roots_after) == 0);
	free(roots);
	free(roots_after);
	gw_cfg_free(n);
}

/* A reload made to fail at step: nothing changes (the CA neither, before commit). */
static void
fails_at(struct gw_gateway *g, enum gw_gateway_step step)
{
	const struct gw_cfg *before = gw_gateway_config(g);
	uint64_t gen = gw_gateway_generation(g);
	char *roots = slurp(roots_path), *roots_after, next[200];

	/* a compatible change that also adds a CA backend (staged by prepare) */
	write_cfg(GOOD_ARGS, B12, "");
	EXPECT_OK(gw_gateway_fail_at(g, step));
	EXPECT_ERR(gw_gateway_reload(g), -EIO);
	EXPECT_TRUE(contains(gw_err_msg(), "test hook"));
	EXPECT_OK(gw_gateway_fail_at(g, GW_GATEWAY_STEP_NONE));
	EXPECT_TRUE(gw_gateway_generation(g) == gen);
	EXPECT_TRUE(gw_gateway_config(g) == before);
	EXPECT_TRUE(gw_gateway_config(g)->mtls.n_backends == 1);
	roots_after = slurp(roots_path);
	if (step != GW_GATEWAY_STEP_PUBLISH) {
		/* before the commit: the CA's roots exactly as they were, nothing staged left */
		EXPECT_TRUE(roots && roots_after && strcmp(roots, roots_after) == 0);
		snprintf(next, sizeof(next), "%s.next", roots_path);
		EXPECT_TRUE(access(next, F_OK) != 0);
	} else {
		/* the one documented exception: the CA change is applied, the snapshot not */
		EXPECT_TRUE(roots && roots_after && strcmp(roots, roots_after) != 0);
	}
	free(roots);
	free(roots_after);
	write_good();
}

/* Write s into a /proc/sys file (a sysctl of our own namespace). */
static void
sysctl_set(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);

	if (fd >= 0) {
		if (write(fd, s, strlen(s)) < 0)
			perror(path);
		close(fd);
	}
}

/*
 * The whole gateway: EAL, TLS, mesh, a tap port, one worker; a reload the
 * workers take; status, metrics and the stats line from running workers.
 * In a child that made its own network namespace (no packet leaves it).
 * Exit status: 0 passed, 1 failed, 77 skipped.
 */
static int
eal_case(const char *prog)
{
	struct gw_gateway *g = NULL;

	GW_TEST_BEGIN();
	if (unshare(CLONE_NEWNET) < 0) {
		gw_softhsm_remove(&tok);
		GW_TEST_SKIP("no network namespace of our own (not root?)");
	}
	/* no IPv6 chatter on the tap */
	sysctl_set("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	sysctl_set("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	write_cfg(GOOD_ARGS, B1, "");
	{ /* one worker on lcore 1, our own EAL file prefix */
		char *c = slurp(cfg_path), *w;

		if (c == NULL || (w = strstr(c, "workers: [1, 2]")) == NULL)
			return 2;
		memcpy(w, "workers: [1]   ", strlen("workers: [1]   "));
		memcpy(strstr(c, "memory_mb: 300"), "memory_mb: 384", 14);
		if (gw_softhsm_write(cfg_path, c) < 0)
			return 2;
		free(c);
	}
	EXPECT_OK(gw_gateway_create(
		&(struct gw_gateway_params){.config = cfg_path, .prog = prog}, &g));
	if (g == NULL)
		GW_TEST_END();
	EXPECT_OK(gw_gateway_start(g));
	EXPECT_TRUE(gw_gateway_generation(g) == 1);
	write_cfg(GOOD_ARGS, B1, "");
	{
		char *c = slurp(cfg_path), *w;

		if (c && (w = strstr(c, "workers: [1, 2]")) != NULL) {
			memcpy(w, "workers: [1]   ", strlen("workers: [1]   "));
			memcpy(strstr(c, "memory_mb: 300"), "memory_mb: 384", 14);
			memcpy(strstr(c, "ns/*"), "xy/*", 4); /* a compatible change */
			if (gw_softhsm_write(cfg_path, c) < 0)
				return 2;
		}
		free(c);
	}
	EXPECT_OK(gw_gateway_reload(g));
	EXPECT_TRUE(gw_gateway_generation(g) == 2);
	{ /* the worker takes generation 2 within a second */
		json_t *o = NULL;
		json_int_t wgen = 0;

		for (int i = 0; i < 100 && wgen != 2; i++) {
			json_decref(o);
			o = json_object();
			usleep(10000);
			gw_gateway_tick(g);
			EXPECT_OK(gw_gateway_status(g, o));
			wgen = json_integer_value(json_object_get(
				json_array_get(json_object_get(o, "Workers"), 0), "Generation"));
		}
		EXPECT_TRUE(json_array_size(json_object_get(o, "Workers")) == 1);
		EXPECT_TRUE(
			json_integer_value(json_object_get(
				json_array_get(json_object_get(o, "Workers"), 0), "Lcore")) == 1);
		EXPECT_TRUE(wgen == 2);
		EXPECT_TRUE(json_integer_value(json_object_get(o, "TscHz")) > 0);
		json_decref(o);
	}
	{ /* metrics with running workers, the stats line */
		struct gw_metrics m;
		const char *text = NULL;
		size_t len = 0;
		char *line = NULL;
		FILE *f = open_memstream(&line, &len);

		gw_metrics_init(&m);
		EXPECT_OK(gw_gateway_metrics(g, &m));
		EXPECT_OK(gw_metrics_text(&m, &text, &len));
		EXPECT_TRUE(contains(text, "mtlsgw_worker_snapshot_generation{worker=\"0\"} 2\n"));
		EXPECT_TRUE(contains(text, "mtlsgw_worker_busy_seconds_total{worker=\"0\"} "));
		gw_metrics_clear(&m);
		gw_gateway_stats_json(g, f);
		fclose(f);
		EXPECT_TRUE(line != NULL && line[0] == '{' && contains(line, "\"tls\":{"));
		free(line);
	}
	EXPECT_OK(gw_gateway_run(g, 10));
	gw_gateway_destroy(g);
	gw_softhsm_remove(&tok);
	GW_TEST_END();
}

static bool
ep_is(const struct gw_ep *e, uint32_t ip, uint16_t port)
{
	return e->ip == htonl(ip) && e->port == htons(port);
}

/*
 * No TLS listener, no hsm or mtls section: the gateway still creates the
 * publisher and publishes the listener table at start and on every reload
 * (a plain tcp-proxy's upstreams change with it). Control only.
 */
static void
plain_only_case(const char *prog)
{
	char path[160], buf[1024];
	struct gw_gateway *g = NULL;
	const struct gw_snap_listener *l;

	snprintf(path, sizeof(path), "%s/plain.yaml", tok.dir);
	for (int round = 0; round < 2; round++) {
		snprintf(buf, sizeof(buf),
			"dataplane:\n  workers: [1]\n  no_huge: true\n"
			"  ports:\n    - { name: wan, driver: tap, device: gwp0, address: "
			"10.78.1.2/24 }\n"
			"listeners:\n"
			"  - name: echo\n    address: 10.78.1.2:7\n    service: echo\n"
			"  - name: proxy\n    address: 10.78.1.2:80\n    service: tcp-proxy\n"
			"    upstream: { servers: [ %s ] }\n",
			round == 0 ? "10.78.1.9:8080" : "10.78.1.10:9000, 10.78.1.11:9001");
		if (gw_softhsm_write(path, buf) < 0)
			exit(2);
		if (round == 0) {
			EXPECT_OK(gw_gateway_create(
				&(struct gw_gateway_params){
					.config = path, .prog = prog, .no_dataplane = true},
				&g));
			if (g == NULL)
				return;
			EXPECT_TRUE(gw_gateway_snapshot(g) == NULL); /* before start: none */
			EXPECT_OK(gw_gateway_start(g));
		} else {
			EXPECT_OK(gw_gateway_reload(g));
		}
		EXPECT_TRUE(gw_gateway_generation(g) == (uint64_t)round + 1);
		EXPECT_TRUE(gw_snapshot_n_listeners(gw_gateway_snapshot(g)) == 2);
		EXPECT_TRUE(gw_gateway_ticket_key_serial(g) == 0); /* no TLS: no keys */
		l = gw_snapshot_listener(gw_gateway_snapshot(g), 1);
		EXPECT_TRUE(l != NULL && l->service == GW_SVC_TCP_PROXY && l->tls == NULL);
		if (round == 0)
			EXPECT_TRUE(l != NULL && l->n_upstreams == 1 &&
				    ep_is(&l->upstreams[0], 0x0a4e0109, 8080));
		else
			EXPECT_TRUE(l != NULL && l->n_upstreams == 2 &&
				    ep_is(&l->upstreams[0], 0x0a4e010a, 9000) &&
				    ep_is(&l->upstreams[1], 0x0a4e010b, 9001));
		l = gw_snapshot_listener(gw_gateway_snapshot(g), 0);
		EXPECT_TRUE(l != NULL && l->service == GW_SVC_ECHO && l->n_upstreams == 0);
	}
	gw_gateway_tick(g); /* reclaims; no ticket keys to rotate */
	gw_gateway_destroy(g);
}

int
main(int argc, char **argv)
{
	struct gw_gateway *g = NULL;
	struct gw_cfg *start = NULL;
	int rc;

	/* a reload's PIN check runs in a fresh copy of this program (hsm.h) */
	if ((rc = gw_hsm_login_check_main(argc, argv)) >= 0)
		return rc;
	GW_TEST_BEGIN();
	if (gw_softhsm_setup(&tok, "gwgate") < 0 ||
		gw_hsm_token_init(&(struct gw_hsm_params){.token = "mtlsgw", .pin_file = tok.pin},
			tok.so_pin) < 0)
		return 2;
	snprintf(cfg_path, sizeof(cfg_path), "%s/gw.yaml", tok.dir);
	snprintf(sock, sizeof(sock), "%s/admin.sock", tok.dir);
	snprintf(roots_path, sizeof(roots_path), "%s/state/mesh-roots.pem", tok.dir);
	if (argc == 2 && strcmp(argv[1], "--eal-case") == 0)
		return eal_case(argv[0]);
	{ /* as root: the whole gateway in a child (EAL once per process, own netns) */
		pid_t pid = fork();
		int st = 0;

		if (pid == 0)
			execl("/proc/self/exe", argv[0], "--eal-case", (char *)NULL), _exit(2);
		EXPECT_TRUE(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st));
		if (WEXITSTATUS(st) == 77)
			printf("SKIP the EAL case (not root)\n");
		else
			EXPECT_TRUE(WEXITSTATUS(st) == 0);
	}
	write_good();
	start = load();

	{ /* config -> dataplane params: plain listeners to the dataplane, TLS ones to tls_dp */
		static struct gw_dp_params p;
		static struct gw_tls_dp_params tp;

		EXPECT_OK(gw_gateway_translate(start, &p, &tp));
		EXPECT_TRUE(p.n_workers == 2 && p.workers[0] == 1 && p.workers[1] == 2);
		EXPECT_TRUE(p.no_huge && p.memory_mb == 300);
		EXPECT_TRUE(p.n_ports == 1 && p.ports[0].dev.kind == GW_PORT_KIND_TAP);
		EXPECT_TRUE(strcmp(p.ports[0].dev.device, "gwg0") == 0);
		EXPECT_TRUE(p.ports[0].ip == htonl(0x0a4e0002) && p.ports[0].prefix_len == 24);
		EXPECT_TRUE(p.ports[0].gateway == htonl(0x0a4e0001));
		EXPECT_TRUE(p.n_listeners == 1 && strcmp(p.listeners[0].name, "plain") == 0);
		EXPECT_TRUE(p.listeners[0].service == GW_SVC_TCP_PROXY);
		EXPECT_TRUE(p.listeners[0].port == htons(80));
		/* its bind and its index in the snapshot: the upstreams are the snapshot's */
		EXPECT_TRUE(p.listeners[0].index == 0 && p.pub == NULL);
		EXPECT_TRUE(tp.n_listeners == 1 && strcmp(tp.listeners[0].name, "web") == 0);
		EXPECT_TRUE(tp.listeners[0].kind == GW_SVC_TLS_ECHO);
		/* the snapshot's listener table is in the config's order */
		EXPECT_TRUE(strcmp(start->listeners[tp.listeners[0].index].name, "web") == 0);
		EXPECT_TRUE(tp.listeners[0].port == htons(443));
		EXPECT_TRUE(tp.n_workers == 2 && tp.worker.max_handshakes == 77);
		/* every worker's TCP and TLS connection slots */
		EXPECT_TRUE(p.max_conns == 4000 && tp.worker.max_conns == 4000);
	}
	plain_only_case(argv[0]);

	/* control only: TLS, the first snapshot, the mesh CA and admin API */
	EXPECT_OK(gw_gateway_create(
		&(struct gw_gateway_params){
			.config = cfg_path, .prog = argv[0], .no_dataplane = true},
		&g));
	if (g == NULL)
		GW_TEST_END();
	EXPECT_OK(gw_gateway_start(g));
	EXPECT_TRUE(gw_gateway_generation(g) == 1);
	EXPECT_TRUE(access(roots_path, F_OK) == 0);
	EXPECT_OK(gw_gateway_run(g, 10));
	{ /* one listener table: the plain tcp-proxy is in the snapshot, with its upstreams */
		const struct gw_snapshot *s = gw_gateway_snapshot(g);
		const struct gw_snap_listener *l = gw_snapshot_listener(s, 0);
		const struct gw_snap_listener *w = gw_snapshot_listener(s, 1);

		EXPECT_TRUE(gw_snapshot_generation(s) == 1 && gw_snapshot_n_listeners(s) == 2);
		EXPECT_TRUE(l != NULL && strcmp(l->name, "plain") == 0);
		EXPECT_TRUE(l != NULL && l->service == GW_SVC_TCP_PROXY && !l->has_tls);
		EXPECT_TRUE(l != NULL && l->n_upstreams == 2 &&
			    ep_is(&l->upstreams[0], 0x0a4e0009, 8080) &&
			    ep_is(&l->upstreams[1], 0x0a4e000a, 8081));
		EXPECT_TRUE(l != NULL && l->addr.port == htons(80));
		EXPECT_TRUE(w != NULL && w->service == GW_SVC_TLS_ECHO && w->tls != NULL);
	}

	{ /* status: listeners with their trust, generation, no workers, TLS and HSM */
		json_t *o = json_object();
		json_t *l;

		EXPECT_OK(gw_gateway_status(g, o));
		l = json_object_get(o, "Listeners");
		EXPECT_TRUE(json_array_size(l) == 2);
		EXPECT_TRUE(strcmp(json_string_value(json_object_get(json_array_get(l, 1), "Name")),
				    "web") == 0);
		EXPECT_TRUE(
			strcmp(json_string_value(json_object_get(json_array_get(l, 1), "Trust")),
				"mesh") == 0);
		EXPECT_TRUE(
			strcmp(json_string_value(json_object_get(json_array_get(l, 0), "Trust")),
				"none") == 0);
		EXPECT_TRUE(json_integer_value(json_object_get(o, "Generation")) == 1);
		EXPECT_TRUE(json_array_size(json_object_get(o, "Workers")) == 0);
		EXPECT_TRUE(json_integer_value(json_object_get(
				    json_object_get(o, "HSM"), "SignatureFailures")) == 0);
		EXPECT_TRUE(json_object_get(o, "TLS") != NULL);
		json_decref(o);
	}
	{ /* metrics: the generation; no counters before a dataplane runs */
		struct gw_metrics m;
		const char *text = NULL;
		size_t len = 0;

		gw_metrics_init(&m);
		EXPECT_OK(gw_gateway_metrics(g, &m));
		EXPECT_OK(gw_metrics_text(&m, &text, &len));
		EXPECT_TRUE(contains(text, "# TYPE mtlsgw_snapshot_generation gauge\n"));
		EXPECT_TRUE(contains(text, "\nmtlsgw_snapshot_generation 1\n"));
		EXPECT_TRUE(!contains(text, "mtlsgw_worker_busy_seconds_total"));
		gw_metrics_clear(&m);
	}

	/* every field that forbids a reload: refused, with why, nothing changed */
	write_cfg("web", "10.78.0.2:443", "tls-echo", "spiffe://example.org/ns/*", B1,
		"  - name: more\n    address: 10.78.0.2:7\n    service: echo\n");
	incompatible(g, start, "3 listeners instead of 2");
	write_cfg("web2", "10.78.0.2:443", "tls-echo", "spiffe://example.org/ns/*", B1, "");
	incompatible(g, start, "listener 'web2' changed name, address or service");
	write_cfg("web", "10.78.0.3:443", "tls-echo", "spiffe://example.org/ns/*", B1, "");
	incompatible(g, start, "listener 'web' changed name, address or service");
	write_cfg("web", "10.78.0.2:444", "tls-echo", "spiffe://example.org/ns/*", B1, "");
	incompatible(g, start, "listener 'web' changed name, address or service");
	write_cfg("web", "10.78.0.2:443", "tls-proxy", "spiffe://example.org/ns/*", B1,
		"    upstream: { servers: [ 10.78.0.9:9000 ] }\n");
	incompatible(g, start, "listener 'web' changed name, address or service");
#define CLUSTER(ttl)                                          \
	"cluster:\n  name: edge-1\n  node: gw-a\n"            \
	"  etcd: { endpoints: [ https://10.78.0.1:2379 ] }\n" \
	"  ticket_key: \"pkcs11:token=gw;object=fleet-wrap\"\n  lease_ttl: " ttl "\n"
	write_cfg(GOOD_ARGS, B1, CLUSTER("10s"));
	incompatible(g, start, "cluster changed: the cluster settings are read at start only");
	{ /* a cluster key changed, or none: the rule, without the gateway */
		struct gw_cfg *a, *b;

		a = load();
		write_cfg(GOOD_ARGS, B1, CLUSTER("20s"));
		b = load();
		EXPECT_ERR(gw_gateway_reload_compatible(a, b), -GW_E_CONFIG);
		EXPECT_TRUE(contains(gw_err_msg(), "cluster.lease_ttl changed"));
		EXPECT_TRUE(contains(gw_err_msg(), "restart the gateway to apply it"));
		EXPECT_OK(gw_gateway_reload_compatible(b, b));
		EXPECT_ERR(gw_gateway_reload_compatible(b, start), -GW_E_CONFIG);
		EXPECT_TRUE(contains(gw_err_msg(), ": cluster changed"));
		gw_cfg_free(a);
		gw_cfg_free(b);
	}
#undef CLUSTER

	{ /* a compatible change (the allow rule): accepted, published, the running config */
		struct gw_cfg *n;

		write_cfg(
			"web", "10.78.0.2:443", "tls-echo", "spiffe://example.org/other/*", B1, "");
		n = load();
		EXPECT_OK(gw_gateway_reload_compatible(start, n));
		gw_cfg_free(n);
		EXPECT_OK(gw_gateway_reload(g));
		EXPECT_TRUE(gw_gateway_generation(g) == 2);
		EXPECT_TRUE(strcmp(gw_gateway_config(g)->listeners[1].trust.allow.spiffe[0],
				    "spiffe://example.org/other/*") == 0);
		write_good();
	}

	/* all or nothing at each step */
	fails_at(g, GW_GATEWAY_STEP_PREPARE);
	fails_at(g, GW_GATEWAY_STEP_BUILD);
	fails_at(g, GW_GATEWAY_STEP_COMMIT);
	{ /* after the refusals the same file reloads */
		write_cfg(GOOD_ARGS, B12, "");
		EXPECT_OK(gw_gateway_reload(g));
		EXPECT_TRUE(gw_gateway_generation(g) == 3);
		EXPECT_TRUE(gw_gateway_config(g)->mtls.n_backends == 2);
	}
	{ /* publish fails after the commit: logged as such, config and generation stay */
		write_cfg("web", "10.78.0.2:443", "tls-echo", "spiffe://example.org/ns/*",
			"[ { name: ca-1, type: builtin }, { name: ca-2, type: builtin }, "
			"{ name: ca-3, type: builtin } ]",
			"");
		EXPECT_OK(gw_gateway_fail_at(g, GW_GATEWAY_STEP_PUBLISH));
		EXPECT_ERR(gw_gateway_reload(g), -EIO);
		EXPECT_OK(gw_gateway_fail_at(g, GW_GATEWAY_STEP_NONE));
		EXPECT_TRUE(gw_gateway_generation(g) == 3);
		EXPECT_TRUE(gw_gateway_config(g)->mtls.n_backends == 2);
	}

	{ /* tick: the ticket key turns every ticket_lifetime (600 s), not before */
		time_t t0 = time(NULL);
		uint64_t k = gw_gateway_ticket_key_serial(g);

		EXPECT_TRUE(k == 1);
		gw_gateway_set_time(g, t0 + 590);
		gw_gateway_tick(g);
		EXPECT_TRUE(gw_gateway_ticket_key_serial(g) == 1);
		gw_gateway_set_time(g, t0 + 601);
		gw_gateway_tick(g);
		EXPECT_TRUE(gw_gateway_ticket_key_serial(g) == 2);
		gw_gateway_tick(g);
		EXPECT_TRUE(gw_gateway_ticket_key_serial(g) == 2);
		gw_gateway_set_time(g, t0 + 601 + 599);
		gw_gateway_tick(g);
		EXPECT_TRUE(gw_gateway_ticket_key_serial(g) == 2);
		gw_gateway_set_time(g, t0 + 601 + 600);
		gw_gateway_tick(g);
		EXPECT_TRUE(gw_gateway_ticket_key_serial(g) == 3);
		/* no HSM failures: the tick published nothing */
		EXPECT_TRUE(gw_gateway_generation(g) == 3);
		gw_gateway_set_time(g, 0);
	}
	{ /* the log: one leveled line per event, module named */
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);

		gw_log_set_file(f);
		write_cfg("web", "10.78.0.2:443", "tls-echo", "spiffe://example.org/ns/*", B12,
			"  - name: more\n    address: 10.78.0.2:7\n    service: echo\n");
		EXPECT_ERR(gw_gateway_reload(g), -GW_E_CONFIG);
		gw_log_set_level(GW_LOG_LVL_ERR);
		gw_log(GW_LOG_LVL_INFO, "gateway", "dropped below the threshold");
		gw_log_set_level(GW_LOG_LVL_INFO);
		gw_log_set_file(NULL);
		fclose(f);
		EXPECT_TRUE(contains(buf, "mtlsgw: gateway: error: reload (SIGHUP): "));
		EXPECT_TRUE(contains(buf, "running config unchanged\n"));
		EXPECT_TRUE(!contains(buf, "dropped below"));
		free(buf);
	}

	{ /* a reload that changes only the tcp-proxy's upstreams: published */
		const struct gw_snap_listener *l;
		uint64_t gen = gw_gateway_generation(g);

		plain_ups = "10.78.0.11:9090";
		write_good();
		EXPECT_OK(gw_gateway_reload(g));
		EXPECT_TRUE(gw_gateway_generation(g) == gen + 1);
		l = gw_snapshot_listener(gw_gateway_snapshot(g), 0);
		EXPECT_TRUE(gw_snapshot_generation(gw_gateway_snapshot(g)) == gen + 1);
		EXPECT_TRUE(l != NULL && l->n_upstreams == 1 &&
			    ep_is(&l->upstreams[0], 0x0a4e000b, 9090));
		EXPECT_TRUE(gw_gateway_config(g)->listeners[0].upstream.n_servers == 1);
		plain_ups = "10.78.0.9:8080, 10.78.0.10:8081";
		write_good();
	}

	gw_gateway_destroy(g);
	gw_cfg_free(start);
	gw_softhsm_remove(&tok);
	GW_TEST_END();
}
