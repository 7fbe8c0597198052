/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mtlsgw.c - the appliance: `mtlsgw --config FILE`.
 *
 * Parses the arguments and runs the signal loop around the gateway
 * (gateway/gateway.h: config, EAL, TLS, mesh, dataplane). The main lcore
 * sleeps in the admin API's select and sigtimedwait: it runs control, never
 * touches a packet and never busy-polls.
 *
 * Under systemd (Type=notify): readiness, reloads, status and a watchdog fed
 * while every worker makes progress go to the service manager (gateway.h);
 * log records carry syslog priorities when stderr is the journal (gw_log.h).
 *
 * Signals: SIGINT/SIGTERM stop the workers, close the ports (taps
 * disappear), print the counters and exit 0. SIGUSR1 prints the counters
 * (one JSON line on stdout). SIGHUP reloads, all or nothing
 * (gw_gateway_reload). The signals are blocked before the EAL starts so
 * every thread it creates inherits the mask and only the main thread ever
 * takes them, synchronously.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef GW_MIMALLOC
#include <mimalloc.h>
#endif

#include "gateway.h"
#include "gw_log.h"
#include "hsm.h"
#include "preflight.h"

#define GW_LOG_MODULE "main"

static void
usage(FILE *f)
{
	fprintf(f, "usage: mtlsgw --config FILE [--verbose]\n"
		   "       mtlsgw --config FILE --print-eal   (show the EAL options and exit)\n"
		   "       mtlsgw --check --config FILE [--json]   (preflight: will it start, "
		   "and run well, here?)\n"
		   "       mtlsgw --version\n");
}

static void
block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* Which malloc the process runs on (meson -Dallocator), proven rather than
 * assumed: a block from malloc() must lie in mimalloc's heap. */
static void
log_allocator(void)
{
#ifdef GW_MIMALLOC
	int v = mi_version();
	void *p = malloc(64);
	bool ours = p != NULL && mi_is_in_heap_region(p);

	free(p);
	if (ours)
		GW_LOG_INFO("malloc: mimalloc %d.%d.%d, for every library in the process", v / 100,
			v / 10 % 10, v % 10);
	else
		GW_LOG_WARN("malloc: mimalloc is linked but malloc() is another's (preloaded?); "
			    "handshakes cost more CPU");
#else
	GW_LOG_INFO("malloc: the C library's (built with -Dallocator=libc or a sanitizer)");
#endif
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"verbose", no_argument, NULL, 'v'},
		{"print-eal", no_argument, NULL, 'E'},
		{"version", no_argument, NULL, 'V'},
		{"check", no_argument, NULL, 'C'},
		{"json", no_argument, NULL, 'J'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct gw_gateway_params gp = {.prog = argv[0]};
	struct gw_gateway *gw = NULL;
	struct gw_preflight_params pp = {0};
	bool print_eal = false, check = false;
	sigset_t set;
	int c, rc;

	/* a reload's PIN check runs in a fresh copy of this program (hsm.h) */
	if ((rc = gw_hsm_login_check_main(argc, argv)) >= 0)
		return rc;
	rc = 1;
	/* started by systemd with stderr on the journal: priorities it can keep */
	gw_log_set_journal(gw_log_fd_is_journal(STDERR_FILENO, getenv("JOURNAL_STREAM")));
	/* a peer closing mid-write (cfssl, an admin client) is an error, never our death */
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			gp.config = optarg;
			break;
		case 'v':
			gp.verbose = true;
			break;
		case 'E':
			print_eal = true;
			break;
		case 'C':
			check = true;
			break;
		case 'J':
			pp.json = true;
			break;
		case 'V':
			printf("mtlsgw %s\n", GW_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		GW_LOG_ERR("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (gp.config == NULL) {
		GW_LOG_ERR("--config FILE is required");
		return 2;
	}
	gw_log_set_level(gp.verbose ? GW_LOG_LVL_DEBUG : GW_LOG_LVL_INFO);
	if (pp.json && !check) {
		GW_LOG_ERR("--json goes with --check");
		return 2;
	}
	if (check) { /* preflight.h: nothing is started */
		pp.config = gp.config;
		return gw_preflight_run(&pp);
	}
	log_allocator();
	if (gw_gateway_create(&gp, &gw) < 0) {
		GW_LOG_ERR("%s", gw_err_msg());
		return 1;
	}
	if (print_eal) {
		char line[4096];

		if (gw_gateway_eal_cmdline(gw, line, sizeof(line)) < 0) {
			GW_LOG_ERR("%s", gw_err_msg());
			goto out;
		}
		printf("%s\n", line);
		rc = 0;
		goto out;
	}
	block_signals(&set);
	if (gw_gateway_start(gw) < 0) {
		GW_LOG_ERR("%s", gw_err_msg());
		goto out;
	}
	for (time_t last_tick = 0;;) {
		/* the admin API waits in select (up to 200 ms); if it cannot, sigtimedwait does */
		struct timespec ts = {0};
		int sig;

		if (gw_gateway_run(gw, 200) < 0)
			ts.tv_nsec = 200 * 1000 * 1000;
		sig = sigtimedwait(&set, NULL, &ts);

		if (sig == SIGINT || sig == SIGTERM) {
			GW_LOG_INFO("%s: stopping", strsignal(sig));
			break;
		}
		if (sig == SIGUSR1)
			gw_gateway_stats_json(gw, stdout);
		else if (sig == SIGHUP)
			(void)gw_gateway_reload(gw); /* refused: logged, the running config stays */
		gw_gateway_watchdog(gw);       /* WATCHDOG=1 while every worker makes progress */
		if (time(NULL) != last_tick) { /* once a second */
			last_tick = time(NULL);
			gw_gateway_tick(gw);
		}
	}
	gw_gateway_stats_json(gw, stdout);
	rc = 0;
out:
	gw_gateway_destroy(gw);
	if (rc == 0 && !print_eal)
		gw_log_banner("stopped");
	return rc;
}
