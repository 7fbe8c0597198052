/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_etcd_test.h - one etcd (Debian's /usr/bin/etcd) on loopback for the C
 * tests: plain http on a free port, data in a directory the test owns. The
 * child dies with the test (PR_SET_PDEATHSIG); the test kills it at exit.
 * Readiness is asked of etcd itself (a get answered), never a sleep.
 */
#ifndef GW_ETCD_TEST_H
#define GW_ETCD_TEST_H

#include <sys/types.h>

#include "gw_err.h"

struct gw_etcd_test {
	pid_t pid;               /* 0: not running */
	char dir[128];           /* data/ and etcd.log live here */
	char url[64];            /* http://127.0.0.1:PORT, the client URL (the caller sets it) */
	char peer[64];           /* its peer URL (the caller sets it; gw_test_free_port) */
	const char *extra[16];   /* more etcd arguments for start (NULL-terminated), e.g. TLS */
	const char *client_urls; /* --listen-client-urls; NULL: url */
};

/*
 * Start etcd with dir (made by the caller) on url and peer and wait until
 * it answers (at most 20 s). Start it again after gw_etcd_test_kill: same
 * data, same ports. 0, or -1 with the reason on stderr.
 */
GW_MUST_CHECK int gw_etcd_test_start(struct gw_etcd_test *t);

/* SIGKILL etcd and reap it (nothing if it is not running). */
void gw_etcd_test_kill(struct gw_etcd_test *t);

#endif /* GW_ETCD_TEST_H */
