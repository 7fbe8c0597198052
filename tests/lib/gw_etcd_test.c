/* SPDX-License-Identifier: BSD-3-Clause */
/* gw_etcd_test.c - one etcd on loopback for the C tests (gw_etcd_test.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "etcd.h"
#include "gw_etcd_test.h"

int
gw_etcd_test_start(struct gw_etcd_test *t)
{
	char data[200], log[200], cluster[100];
	const char *argv[48], *eps[1] = {t->url};
	struct gw_etcd_params p = {.endpoints = eps, .n_endpoints = 1, .timeout_ms = 1000};
	struct gw_etcd *e = NULL;
	unsigned n = 0;

	if (t->url[0] == '\0' || t->peer[0] == '\0') {
		fprintf(stderr, "gw_etcd_test_start: set url and peer first\n");
		return -1;
	}
	snprintf(data, sizeof(data), "%s/data", t->dir);
	snprintf(log, sizeof(log), "%s/etcd.log", t->dir);
	snprintf(cluster, sizeof(cluster), "t=%s", t->peer);
	argv[n++] = "etcd";
	argv[n++] = "--name=t";
	argv[n++] = "--data-dir";
	argv[n++] = data;
	argv[n++] = "--listen-client-urls";
	argv[n++] = t->client_urls ? t->client_urls : t->url;
	argv[n++] = "--advertise-client-urls";
	argv[n++] = t->url;
	argv[n++] = "--listen-peer-urls";
	argv[n++] = t->peer;
	argv[n++] = "--initial-advertise-peer-urls";
	argv[n++] = t->peer;
	argv[n++] = "--initial-cluster";
	argv[n++] = cluster;
	argv[n++] = "--logger=zap";
	argv[n++] = "--log-level=warn";
	for (unsigned i = 0; t->extra[i] != NULL && n < 46; i++)
		argv[n++] = t->extra[i];
	argv[n] = NULL;
	t->pid = fork();
	if (t->pid < 0) {
		perror("fork");
		return -1;
	}
	if (t->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (!freopen(log, "a", stdout) || !freopen(log, "a", stderr))
			_exit(126);
		execv("/usr/bin/etcd", (char *const *)argv);
		_exit(127);
	}
	if (gw_etcd_open(&p, &e) < 0) {
		fprintf(stderr, "gw_etcd_open: %s\n", gw_err_msg());
		return -1;
	}
	for (int i = 0; i < 200; i++) {
		uint8_t *v = NULL;
		size_t l;
		int rc = gw_etcd_get(e, "/ready", &v, &l, NULL);

		free(v);
		if (rc == 0 || rc == -ENOENT) {
			gw_etcd_close(e);
			gw_err_clear();
			return 0;
		}
		usleep(100000);
	}
	gw_etcd_close(e);
	fprintf(stderr, "etcd did not start (see %s): %s\n", log, gw_err_msg());
	return -1;
}

void
gw_etcd_test_kill(struct gw_etcd_test *t)
{
	if (t->pid <= 0)
		return;
	kill(t->pid, SIGKILL);
	waitpid(t->pid, NULL, 0);
	t->pid = 0;
}
