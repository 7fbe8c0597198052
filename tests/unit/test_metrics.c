/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_metrics.c - the Prometheus text of GET /v1/metrics (control/metrics.h):
 * exact lines for counter groups (gw_counters.h), HELP/TYPE once per family, label
 * escaping, certificate expiry (negative once expired), and the admin API
 * serving it over its unix socket with the right content type.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "admin.h"
#include "gw_test.h"
#include "metrics.h"

/* A self-signed P-256 certificate with the given CN and notAfter. */
static X509 *
make_cert(const char *cn, time_t not_after)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	ASN1_TIME_set(X509_getm_notBefore(x), not_after - 86400 * 365);
	ASN1_TIME_set(X509_getm_notAfter(x), not_after);
	X509_set_pubkey(x, k);
	X509_sign(x, k, EVP_sha256());
	X509_NAME_free(n);
	EVP_PKEY_free(k);
	return x;
}

static const char *
text_of(struct gw_metrics *m)
{
	const char *t = "";
	size_t len;

	if (gw_metrics_text(m, &t, &len) < 0)
		return "(oom)";
	return t;
}

static unsigned
count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* ops->metrics of the admin API test: one counter and one expiry. */
static int
ops_metrics(void *arg, struct gw_metrics *m)
{
	gw_metrics_simple(m, "mtlsgw_test_total", "counter", "a test counter", 42);
	gw_metrics_cert(m, "anchor", "listener", "l\"1", arg, 1000);
	return 0;
}

/* One HTTP/1.0 GET over the unix socket; the whole response into out. */
static int
http_get(const char *sock, const char *path, char *out, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char req[256];
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (strlen(sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: x\r\n\r\n", path);
	if (write(fd, req, strlen(req)) < 0) {
		close(fd);
		return -errno;
	}
	while (got + 1 < len && (n = read(fd, out + got, len - got - 1)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fd);
	return 0;
}

int
main(void)
{
	GW_TEST_BEGIN();
	{ /* escaping: backslash, double quote, newline; nothing else */
		char out[64];

		EXPECT_EQ(gw_metrics_escape("a\\b\"c\nd", out, sizeof(out)), 10);
		EXPECT_STREQ(out, "a\\\\b\\\"c\\nd");
		EXPECT_EQ(gw_metrics_escape("tab\there", out, sizeof(out)), 8);
		EXPECT_STREQ(out, "tab\there");
		/* truncation never leaves half an escape */
		EXPECT_EQ(gw_metrics_escape("ab\"", out, 4), 2);
		EXPECT_STREQ(out, "ab");
	}
	{ /* a sample with escaped labels; NULL values are left out */
		struct gw_metrics m;

		gw_metrics_init(&m);
		gw_metrics_family(&m, "mtlsgw_x", "gauge", "x");
		gw_metrics_family(&m, "mtlsgw_x", "gauge", "x");
		gw_metrics_sample(&m, "mtlsgw_x",
			(const char *const[]){"a", "q\"\\\n", "b", NULL, "c", "3"}, 3, -5);
		gw_metrics_sample(&m, "mtlsgw_x", NULL, 0, 7);
		gw_metrics_sample_f(&m, "mtlsgw_x", (const char *const[]){"w", "0"}, 1, 0.25);
		EXPECT_STREQ(text_of(&m), "# HELP mtlsgw_x x\n"
					  "# TYPE mtlsgw_x gauge\n"
					  "mtlsgw_x{a=\"q\\\"\\\\\\n\",c=\"3\"} -5\n"
					  "mtlsgw_x 7\n"
					  "mtlsgw_x{w=\"0\"} 0.25\n");
		gw_metrics_clear(&m);
	}
	{ /* counter groups: sums, gauges, a labelled group, per worker, ports, busy */
		static const struct gw_ctr_desc net_d[] = {
			{"rx_pkts", GW_CTR_COUNTER, NULL}, {"tx_bytes", GW_CTR_COUNTER, NULL}};
		static const struct gw_ctr_desc conns_d[] = {
			{"LISTEN", GW_CTR_GAUGE, NULL}, {"ESTABLISHED", GW_CTR_GAUGE, NULL}};
		static const struct gw_ctr_desc tls_d[] = {{"hs_ok", GW_CTR_COUNTER, NULL},
			{"hs_fail", GW_CTR_COUNTER, NULL}, {NULL, GW_CTR_COUNTER, NULL},
			{"reject_expired", GW_CTR_COUNTER, NULL},
			{"handshaking", GW_CTR_GAUGE, "in progress"},
			{"established", GW_CTR_GAUGE, "established now"}};
		static const char *const keys[] = {"hs_ok", "hs_fail", NULL};
		static const struct gw_ctr_desc port_d[] = {{"ierrors", GW_CTR_COUNTER, NULL}};
		static const struct gw_ctr_group net = {.name = "net",
			.help = "dataplane packet counter, summed over the workers",
			.d = net_d,
			.n = 2};
		static const struct gw_ctr_group conns = {.name = "conns",
			.help = "by state",
			.d = conns_d,
			.n = 2,
			.label = "state",
			.family = "mtlsgw_tcp_connections"};
		static const struct gw_ctr_group tls = {.name = "tls",
			.help = "TLS counter",
			.d = tls_d,
			.n = 6,
			.per_worker = "per_worker_hs",
			.worker_keys = keys,
			.worker_help = "TLS counter of one worker"};
		static const struct gw_ctr_group port = {
			.name = "port", .help = "device", .d = port_d, .n = 1};
		struct gw_metrics m;
		struct gw_ctr_snap s;
		struct gw_ctr_port *p;
		uint64_t *w;
		const char *t;

		EXPECT_OK(gw_ctr_snap_init(&s, 2));
		s.tsc_hz = 1000;
		s.busy_cycles[0] = 500;
		s.busy_cycles[1] = 2000;
		EXPECT_OK(gw_ctr_snap_add(&s, &net, &w));
		memcpy(w, (uint64_t[]){4, 100, 6, 200}, 4 * sizeof(uint64_t));
		EXPECT_OK(gw_ctr_snap_add(&s, &conns, &w));
		memcpy(w, (uint64_t[]){1, 0, 1, 1}, 4 * sizeof(uint64_t));
		EXPECT_OK(gw_ctr_snap_add(&s, &tls, &w));
		memcpy(w, (uint64_t[]){1, 0, 9, 1, 0, 1, 2, 1, 9, 0, 0, 0}, 12 * sizeof(uint64_t));
		EXPECT_OK(gw_ctr_snap_port(&s, &port, &p));
		snprintf(p->name, sizeof(p->name), "p0");
		p->v[0] = 2;
		s.mbufs_in_use = 50;
		s.mbufs_total = 1024;
		gw_ctr_snap_seal(&s);
		EXPECT_EQ(gw_ctr_snap_get(&s, NULL, "tx_bytes"), 300);
		EXPECT_EQ(gw_ctr_snap_get(&s, "tls", "hs_ok"), 3);
		EXPECT_EQ(gw_ctr_snap_get(&s, "net", "hs_ok"), -1);
		gw_metrics_init(&m);
		gw_metrics_counters(&m, &s);
		t = text_of(&m);
		EXPECT_CONTAINS(t, "# HELP mtlsgw_net_rx_pkts_total dataplane packet counter, "
				   "summed over the workers\n"
				   "# TYPE mtlsgw_net_rx_pkts_total counter\n"
				   "mtlsgw_net_rx_pkts_total 10\n");
		EXPECT_CONTAINS(t, "\nmtlsgw_net_tx_bytes_total 300\n");
		EXPECT_CONTAINS(t, "\nmtlsgw_tls_hs_ok_total 3\n");
		EXPECT_CONTAINS(t, "\nmtlsgw_tls_reject_expired_total 1\n");
		EXPECT_CONTAINS(t,
			"# HELP mtlsgw_tls_established established now\n"
			"# TYPE mtlsgw_tls_established gauge\nmtlsgw_tls_established 1\n");
		EXPECT_CONTAINS(t, "# TYPE mtlsgw_tcp_connections gauge\n"
				   "mtlsgw_tcp_connections{state=\"LISTEN\"} 2\n"
				   "mtlsgw_tcp_connections{state=\"ESTABLISHED\"} 1\n");
		EXPECT_CONTAINS(t, "# TYPE mtlsgw_tls_worker_hs_ok_total counter\n"
				   "mtlsgw_tls_worker_hs_ok_total{worker=\"0\"} 1\n"
				   "mtlsgw_tls_worker_hs_ok_total{worker=\"1\"} 2\n");
		EXPECT_CONTAINS(t, "\nmtlsgw_tls_worker_hs_fail_total{worker=\"1\"} 1\n");
		EXPECT_CONTAINS(t, "\nmtlsgw_port_ierrors_total{port=\"p0\"} 2\n");
		EXPECT_CONTAINS(t, "\nmtlsgw_workers 2\n");
		EXPECT_CONTAINS(t, "\nmtlsgw_mbufs_in_use 50\n");
		EXPECT_CONTAINS(t, "\nmtlsgw_mbufs 1024\n");
		EXPECT_CONTAINS(t, "\nmtlsgw_worker_busy_seconds_total{worker=\"0\"} 0.5\n"
				   "mtlsgw_worker_busy_seconds_total{worker=\"1\"} 2\n");
		/* gauges are not counters; a word without a name is not shown */
		EXPECT_TRUE(strstr(t, "handshaking_total") == NULL);
		EXPECT_TRUE(strstr(t, "(null)") == NULL);
		EXPECT_TRUE(strstr(t, "per_worker_hs") == NULL);
		/* HELP and TYPE once per family */
		EXPECT_EQ(count(t, "# TYPE mtlsgw_tcp_connections "), 1);
		EXPECT_EQ(count(t, "# TYPE mtlsgw_tls_worker_hs_ok_total "), 1);
		gw_metrics_clear(&m);
		gw_ctr_snap_fini(&s);
	}
	{ /* histograms: cumulative buckets ending in +Inf, sum in seconds, count */
		static const double bounds[] = {0.001, 0.5, 2.5};
		static const struct gw_ctr_hist_desc hd = {.name = "mtlsgw_x_seconds",
			.help = "x by duration",
			.label = "listener",
			.bounds = bounds,
			.n_bounds = 3};
		static const struct gw_ctr_hist_desc too_many = {
			.name = "y", .bounds = bounds, .n_bounds = GW_CTR_HIST_MAX_BOUNDS + 1};
		struct gw_metrics m;
		struct gw_ctr_snap s;
		struct gw_ctr_hist_series *hs;
		const char *t;

		EXPECT_OK(gw_ctr_snap_init(&s, 1));
		s.tsc_hz = 1000000;
		EXPECT_ERR(gw_ctr_snap_hist(&s, &too_many, 1, &hs), -EINVAL);
		EXPECT_OK(gw_ctr_snap_hist(&s, &hd, 2, &hs));
		snprintf(hs[0].value, sizeof(hs[0].value), "api");
		memcpy(hs[0].b, (uint64_t[]){2, 0, 3, 1}, 4 * sizeof(uint64_t));
		hs[0].sum_ticks = 4250000;                          /* 4.25 s */
		snprintf(hs[1].value, sizeof(hs[1].value), "a\"b"); /* escaped */
		EXPECT_OK(gw_ctr_snap_hist(&s, &hd, 0, &hs));
		EXPECT_ERR(gw_ctr_snap_hist(&s, &hd, 0, &hs), -ENOSPC);
		gw_ctr_snap_seal(&s);
		gw_metrics_init(&m);
		gw_metrics_counters(&m, &s);
		gw_metrics_build_info(&m, "0.1.0", "3.0.15", "22.11.4");
		t = text_of(&m);
		EXPECT_CONTAINS(t, "# HELP mtlsgw_x_seconds x by duration\n"
				   "# TYPE mtlsgw_x_seconds histogram\n"
				   "mtlsgw_x_seconds_bucket{listener=\"api\",le=\"0.001\"} 2\n"
				   "mtlsgw_x_seconds_bucket{listener=\"api\",le=\"0.5\"} 2\n"
				   "mtlsgw_x_seconds_bucket{listener=\"api\",le=\"2.5\"} 5\n"
				   "mtlsgw_x_seconds_bucket{listener=\"api\",le=\"+Inf\"} 6\n"
				   "mtlsgw_x_seconds_sum{listener=\"api\"} 4.25\n"
				   "mtlsgw_x_seconds_count{listener=\"api\"} 6\n"
				   "mtlsgw_x_seconds_bucket{listener=\"a\\\"b\",le=\"0.001\"} 0\n");
		EXPECT_CONTAINS(t, "mtlsgw_x_seconds_count{listener=\"a\\\"b\"} 0\n");
		/* the second family of the same description: HELP/TYPE once */
		EXPECT_EQ(count(t, "# TYPE mtlsgw_x_seconds "), 1);
		EXPECT_CONTAINS(t, "# TYPE mtlsgw_build_info gauge\n"
				   "mtlsgw_build_info{version=\"0.1.0\",openssl=\"3.0.15\","
				   "dpdk=\"22.11.4\"} 1\n");
		gw_metrics_clear(&m);
		gw_ctr_snap_fini(&s);
	}
	{ /* a table: one sample per row and column, two labels; JSON beside it */
		static const char *const cols[] = {"refused", "timeout"};
		static const struct gw_ctr_table_desc td = {.name = "mtlsgw_up_fail_total",
			.json = "up_fail",
			.help = "upstream failures",
			.row_label = "listener",
			.col_label = "reason",
			.cols = cols,
			.n_cols = 2};
		static const struct gw_ctr_table_desc wide = {.name = "w", .n_cols = 9};
		static const struct gw_ctr_table_desc td2 = {.name = "mtlsgw_t2_total",
			.help = "t2",
			.json = "t2",
			.row_label = "r",
			.col_label = "c",
			.cols = cols,
			.n_cols = 1};
		static const struct gw_ctr_table_desc td3 = {.name = "t3", .json = "t3"};
		struct gw_ctr_table_row *rows;
		struct gw_metrics m;
		struct gw_ctr_snap s;
		char json[1024] = "";
		FILE *f;

		EXPECT_OK(gw_ctr_snap_init(&s, 1));
		EXPECT_ERR(gw_ctr_snap_table(&s, &wide, 1, &rows), -EINVAL);
		EXPECT_OK(gw_ctr_snap_table(&s, &td, 2, &rows));
		snprintf(rows[0].value, sizeof(rows[0].value), "api");
		rows[0].v[0] = 3;
		snprintf(rows[1].value, sizeof(rows[1].value), "a\"b");
		rows[1].v[1] = 1;
		EXPECT_OK(gw_ctr_snap_table(&s, &td, 0, &rows));  /* the same: appended */
		EXPECT_OK(gw_ctr_snap_table(&s, &td2, 1, &rows)); /* another family */
		EXPECT_ERR(gw_ctr_snap_table(&s, &wide, 0, &rows), -EINVAL);
		EXPECT_ERR(gw_ctr_snap_table(&s, &td3, 0, &rows), -ENOSPC);
		EXPECT_OK(gw_ctr_snap_table(&s, &td, 1, &rows)); /* a third row of td */
		snprintf(rows[0].value, sizeof(rows[0].value), "tcp");
		rows[0].v[1] = 7;
		gw_ctr_snap_seal(&s);
		gw_metrics_init(&m);
		gw_metrics_counters(&m, &s);
		EXPECT_CONTAINS(text_of(&m),
			"# HELP mtlsgw_up_fail_total upstream failures\n"
			"# TYPE mtlsgw_up_fail_total counter\n"
			"mtlsgw_up_fail_total{listener=\"api\",reason=\"refused\"} 3\n"
			"mtlsgw_up_fail_total{listener=\"api\",reason=\"timeout\"} 0\n"
			"mtlsgw_up_fail_total{listener=\"a\\\"b\",reason=\"refused\"} 0\n"
			"mtlsgw_up_fail_total{listener=\"a\\\"b\",reason=\"timeout\"} 1\n"
			"mtlsgw_up_fail_total{listener=\"tcp\",reason=\"refused\"} 0\n"
			"mtlsgw_up_fail_total{listener=\"tcp\",reason=\"timeout\"} 7\n"
			"# HELP mtlsgw_t2_total");
		EXPECT_EQ(count(text_of(&m), "# TYPE mtlsgw_up_fail_total "), 1);
		f = fmemopen(json, sizeof(json) - 1, "w");
		gw_ctr_snap_json(&s, f);
		fclose(f);
		EXPECT_CONTAINS(json,
			",\"up_fail\":{\"api\":{\"refused\":3,\"timeout\":0},"
			"\"a\\\"b\":{\"refused\":0,\"timeout\":1},"
			"\"tcp\":{\"refused\":0,\"timeout\":7}},\"t2\":{\"\":{\"refused\":0}}");
		gw_metrics_clear(&m);
		gw_ctr_snap_fini(&s);
	}
	{ /* expiry: seconds to notAfter, negative once expired, CN escaped */
		struct gw_metrics m;
		time_t now = 1700000000;
		X509 *ok = make_cert("root \"A\"", now + 30 * 86400);
		X509 *old = make_cert("old", now - 3600);
		char fp[60], want[400];
		const char *t;

		gw_metrics_init(&m);
		gw_metrics_cert(&m, "root", "backend", "b1", ok, now);
		gw_metrics_cert(&m, "anchor", "listener", "web", old, now);
		gw_metrics_cert(&m, "identity", "listener", "web", NULL, now);
		t = text_of(&m);
		gw_ca_fingerprint(ok, fp);
		snprintf(want, sizeof(want),
			"# HELP mtlsgw_cert_expiry_seconds seconds until the certificate's "
			"notAfter "
			"(negative: expired)\n"
			"# TYPE mtlsgw_cert_expiry_seconds gauge\n"
			"mtlsgw_cert_expiry_seconds{kind=\"root\",name=\"root \\\"A\\\"\","
			"backend=\"b1\",fingerprint=\"%s\"} 2592000\n",
			fp);
		EXPECT_TRUE(strncmp(t, want, strlen(want)) == 0);
		gw_ca_fingerprint(old, fp);
		snprintf(want, sizeof(want),
			"mtlsgw_cert_expiry_seconds{kind=\"anchor\",name=\"old\",listener=\"web\","
			"fingerprint=\"%s\"} -3600\n",
			fp);
		EXPECT_CONTAINS(t, want);
		EXPECT_EQ(count(t, "\nmtlsgw_cert_expiry_seconds{"), 2);
		gw_metrics_clear(&m);
		X509_free(ok);
		X509_free(old);
	}
	{ /* the admin API: GET /v1/metrics is text/plain 0.0.4 */
		char dir[] = "/tmp/gw_metrics_XXXXXX", sock[128], resp[8192];
		struct gw_admin *a = NULL;
		X509 *x = make_cert("anc", 1000 + 60);
		struct gw_admin_ops ops = {.arg = x, .metrics = ops_metrics};
		pid_t pid;

		EXPECT_TRUE(mkdtemp(dir) != NULL);
		snprintf(sock, sizeof(sock), "%s/admin.sock", dir);
		EXPECT_OK(gw_admin_start(
			&(struct gw_admin_params){.socket_path = sock, .ops = &ops}, &a));
		pid = fork();
		if (pid == 0) { /* the client; the parent serves */
			int rc = http_get(sock, "/v1/metrics", resp, sizeof(resp));

			if (rc == 0) {
				fputs(resp, stdout);
				fflush(stdout);
			}
			_exit(rc == 0 && strstr(resp, " 200 OK\r\n") != NULL &&
						strstr(resp, "Content-Type: text/plain; "
							     "version=0.0.4") &&
						strstr(resp,
							"\r\n\r\n# HELP mtlsgw_test_total a test "
							"counter\n# TYPE mtlsgw_test_total "
							"counter\nmtlsgw_test_total 42\n") &&
						strstr(resp, "listener=\"l\\\"1\"") &&
						strstr(resp, "} 60\n")
					? 0
					: 1);
		}
		{
			int st = -1;
			pid_t done = 0;

			/* serve until the client is done (bounded: a hung client fails) */
			for (int i = 0; i < 300 && done == 0; i++) {
				(void)gw_admin_run(a, 100);
				done = waitpid(pid, &st, WNOHANG);
			}
			if (done == 0) {
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
			}
			EXPECT_EQ(done, pid);
			EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		}
		gw_admin_stop(a);
		rmdir(dir);
		X509_free(x);
	}
	GW_TEST_END();
}
