/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_access_log.c - the access log: the workers' SPSC ring (order, full,
 * dropped, across threads), the formatter (text and JSON, with hostile SNI,
 * subject and SPIFFE ID: quotes, newlines, control and high bytes must come
 * out escaped, one line each), the per-reason refusal limiter, and the
 * writer (a file, drained, reopened after a rename as logrotate does).
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "access_log.h"
#include "gw_alog.h"
#include "gw_test.h"

/* A record as a worker fills it, for client cn/uri (NULL: none). */
static void
rec_fill(struct gw_alog_rec *r, const char *sni, const char *cn, const char *uri)
{
	memset(r, 0, sizeof(*r));
	r->end_ns = 1764961266123456789ull; /* 2025-12-05T19:01:06.123Z */
	r->dur_us = 12345;
	r->rx_bytes = 10;
	r->tx_bytes = 20;
	r->client_ip = htonl(0x0a630001);
	r->client_port = htons(40000);
	r->upstream_ip = htonl(0x0a630001);
	r->upstream_port = htons(9000);
	r->accepted = 1;
	r->flags = GW_ALOG_F_PROXY | GW_ALOG_F_CERT;
	snprintf(r->version, sizeof(r->version), "TLSv1.3");
	snprintf(r->cipher, sizeof(r->cipher), "TLS_AES_128_GCM_SHA256");
	snprintf(r->sni, sizeof(r->sni), "%s", sni);
	if (cn != NULL) {
		X509_NAME *n = X509_NAME_new();
		const unsigned char *der;
		size_t len;

		X509_NAME_add_entry_by_txt(
			n, "O", MBSTRING_ASC, (const unsigned char *)"Acme", -1, -1, 0);
		X509_NAME_add_entry_by_txt(
			n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
		if (X509_NAME_get0_der(n, &der, &len) == 1 && len <= sizeof(r->subject)) {
			memcpy(r->subject, der, len);
			r->subject_len = (uint16_t)len;
		}
		X509_NAME_free(n);
	}
	if (uri != NULL) {
		GENERAL_NAMES *gns = sk_GENERAL_NAME_new_null();
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		unsigned char *p = r->san;
		int len;

		ASN1_STRING_set(s, uri, -1);
		GENERAL_NAME_set0_value(g, GEN_URI, s);
		sk_GENERAL_NAME_push(gns, g);
		len = i2d_GENERAL_NAMES(gns, NULL);
		if (len > 0 && (size_t)len <= sizeof(r->san)) {
			i2d_GENERAL_NAMES(gns, &p);
			r->san_len = (uint16_t)len;
		}
		GENERAL_NAMES_free(gns);
	}
}

struct prod {
	struct gw_alog_ring *r;
	unsigned n;
};

static void *
producer(void *arg)
{
	struct prod *p = arg;

	for (unsigned i = 0; i < p->n;) {
		struct gw_alog_rec *rec = gw_alog_slot(p->r);

		if (rec == NULL) {
			usleep(10);
			continue;
		}
		rec->rx_bytes = i;
		rec->tx_bytes = ~(uint64_t)i;
		gw_alog_push(p->r);
		i++;
	}
	return NULL;
}

static unsigned
count_lines(const char *path, const char *needle)
{
	char line[8192];
	unsigned n = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += needle == NULL || strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

int
main(void)
{
	GW_TEST_BEGIN();

	{ /* the ring: FIFO, full drops and counts, the slot frees on pop */
		struct gw_alog_ring *r;
		const struct gw_alog_rec *c;

		EXPECT_ERR(gw_alog_ring_create(1u << 21, &r), -EINVAL);
		EXPECT_OK(gw_alog_ring_create(3, &r)); /* rounded up to 4 */
		EXPECT_TRUE(gw_alog_peek(r) == NULL);
		for (unsigned i = 0; i < 4; i++) {
			struct gw_alog_rec *s = gw_alog_slot(r);

			EXPECT_TRUE(s != NULL);
			if (s == NULL)
				break;
			s->rx_bytes = i;
			gw_alog_push(r);
		}
		EXPECT_TRUE(gw_alog_slot(r) == NULL);
		EXPECT_TRUE(gw_alog_slot(r) == NULL);
		EXPECT_EQ(gw_alog_ring_dropped(r), 2);
		for (unsigned i = 0; i < 4; i++) {
			c = gw_alog_peek(r);
			EXPECT_TRUE(c != NULL && c->rx_bytes == i);
			gw_alog_pop(r);
		}
		EXPECT_TRUE(gw_alog_peek(r) == NULL);
		EXPECT_TRUE(gw_alog_slot(r) != NULL); /* room again */
		EXPECT_EQ(gw_alog_ring_dropped(NULL), 0);
		gw_alog_ring_destroy(r);
		gw_alog_ring_destroy(NULL);
	}

	{ /* the ring across threads: every record once, in order, whole */
		struct gw_alog_ring *r;
		struct prod p = {.n = 200000};
		pthread_t th;
		unsigned next = 0, bad = 0;

		EXPECT_OK(gw_alog_ring_create(64, &r));
		p.r = r;
		pthread_create(&th, NULL, producer, &p);
		while (next < p.n) {
			const struct gw_alog_rec *c = gw_alog_peek(r);

			if (c == NULL)
				continue;
			bad += c->rx_bytes != next || c->tx_bytes != ~(uint64_t)next;
			gw_alog_pop(r);
			next++;
		}
		pthread_join(th, NULL);
		EXPECT_EQ(bad, 0);
		EXPECT_TRUE(gw_alog_peek(r) == NULL);
		gw_alog_ring_destroy(r);
	}

	{ /* text: every field, in order */
		struct gw_alog_rec r;
		char line[4096];

		rec_fill(&r, "api.example.com", "client-1", "spiffe://example.org/ns/prod/sa/web");
		EXPECT_TRUE(gw_access_log_format(
				    &r, "proxy", GW_CFG_ALOG_TEXT, line, sizeof(line)) > 0);
		EXPECT_STREQ(line,
			"2025-12-05T19:01:06.123Z listener=\"proxy\" client=10.99.0.1:40000 "
			"sni=\"api.example.com\" tls=TLSv1.3 cipher=TLS_AES_128_GCM_SHA256 "
			"session=full subject=\"CN=client-1,O=Acme\" "
			"spiffe_id=\"spiffe://example.org/ns/prod/sa/web\" verdict=accepted "
			"reason=- "
			"upstream=10.99.0.1:9000 end=close bytes_in=10 bytes_out=20 "
			"duration_ms=12.345");
		/* a refusal: its reason, no end */
		r.accepted = 0;
		r.reason = GW_ALOG_R_UNTRUSTED_ISSUER;
		r.version[0] = r.cipher[0] = '\0';
		EXPECT_TRUE(gw_access_log_format(
				    &r, "proxy", GW_CFG_ALOG_TEXT, line, sizeof(line)) > 0);
		EXPECT_CONTAINS(line, " tls=- cipher=- session=- ");
		EXPECT_CONTAINS(line, " verdict=refused reason=untrusted_issuer ");
		EXPECT_CONTAINS(line, " end=- ");
		EXPECT_ERR(gw_access_log_format(&r, "proxy", GW_CFG_ALOG_TEXT, line, 40), -ENOSPC);
		EXPECT_TRUE(strlen(line) < 40);
	}

	{ /* text: hostile SNI, subject and URI stay on one line, escaped */
		struct gw_alog_rec r;
		char line[4096];

		rec_fill(&r, "a\"b\nc\\d\x01\x7f\xc3\xa9", "x\"y\nz", "spiffe://td/a\"b\nc\x02");
		EXPECT_TRUE(
			gw_access_log_format(&r, "l\n1", GW_CFG_ALOG_TEXT, line, sizeof(line)) > 0);
		EXPECT_TRUE(strchr(line, '\n') == NULL);
		EXPECT_TRUE(strchr(line, '\x01') == NULL && strchr(line, '\x02') == NULL);
		EXPECT_CONTAINS(line, "listener=\"l\\n1\"");
		EXPECT_CONTAINS(line, "sni=\"a\\\"b\\nc\\\\d\\x01\\x7f\\xc3\\xa9\"");
		/* RFC 2253 escapes the quote itself, and the newline as \0A */
		EXPECT_CONTAINS(line, "subject=\"CN=x\\\\\\\"y\\\\0Az,O=Acme\"");
		EXPECT_CONTAINS(line, "spiffe_id=\"spiffe://td/a\\\"b\\nc\\x02\"");
		for (const char *p = line; *p; p++)
			EXPECT_TRUE((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f);
	}

	{ /* JSON: one object a line that parses back to the same values */
		struct gw_alog_rec r;
		char line[4096];
		json_t *j;
		json_error_t e;

		rec_fill(&r, "a\"b\nc\\d\x01\xc3\xa9", "client-1", "spiffe://td/w\"x\ny");
		EXPECT_TRUE(gw_access_log_format(
				    &r, "proxy", GW_CFG_ALOG_JSON, line, sizeof(line)) > 0);
		EXPECT_TRUE(strchr(line, '\n') == NULL);
		j = json_loads(line, 0, &e);
		EXPECT_TRUE(j != NULL);
		if (j != NULL) {
			EXPECT_STREQ(json_string_value(json_object_get(j, "time")),
				"2025-12-05T19:01:06.123Z");
			EXPECT_STREQ(json_string_value(json_object_get(j, "listener")), "proxy");
			EXPECT_STREQ(
				json_string_value(json_object_get(j, "client")), "10.99.0.1:40000");
			EXPECT_STREQ(json_string_value(json_object_get(j, "sni")),
				"a\"b\\x0ac\\\\d\\x01\\xc3\\xa9");
			EXPECT_STREQ(json_string_value(json_object_get(j, "subject")),
				"CN=client-1,O=Acme");
			EXPECT_STREQ(json_string_value(json_object_get(j, "spiffe_id")),
				"spiffe://td/w\"x\\x0ay");
			EXPECT_STREQ(json_string_value(json_object_get(j, "verdict")), "accepted");
			EXPECT_TRUE(json_is_null(json_object_get(j, "reason")));
			EXPECT_STREQ(json_string_value(json_object_get(j, "upstream")),
				"10.99.0.1:9000");
			EXPECT_STREQ(json_string_value(json_object_get(j, "session")), "full");
			EXPECT_EQ(json_integer_value(json_object_get(j, "bytes_in")), 10);
			EXPECT_EQ(json_integer_value(json_object_get(j, "bytes_out")), 20);
			json_decref(j);
		}
	}

	{ /* cut fields say so with "..." (the log only) */
		struct gw_alog_rec r;
		char line[4096];

		rec_fill(&r, "x.example", NULL, NULL);
		r.flags |= GW_ALOG_F_SUBJECT_CUT | GW_ALOG_F_SAN_CUT | GW_ALOG_F_SNI_CUT;
		EXPECT_TRUE(
			gw_access_log_format(&r, "p", GW_CFG_ALOG_TEXT, line, sizeof(line)) > 0);
		EXPECT_CONTAINS(line, "sni=\"x.example\"... ");
		EXPECT_CONTAINS(line, "subject=\"...\" spiffe_id=\"...\"");
		/* no certificate at all: empty, not "..." */
		rec_fill(&r, "", NULL, "urn:not-spiffe");
		EXPECT_TRUE(
			gw_access_log_format(&r, "p", GW_CFG_ALOG_TEXT, line, sizeof(line)) > 0);
		EXPECT_CONTAINS(line, "sni=\"\" ");
		EXPECT_CONTAINS(line, "subject=\"\" spiffe_id=\"\"");
	}

	{ /* the limiter: N a second per reason, then a summary once the second is over */
		struct gw_alog_limit l;
		uint64_t n = 0;
		unsigned ok = 0;

		gw_alog_limit_init(&l, 3);
		for (unsigned i = 0; i < 10; i++)
			ok += gw_alog_limit_take(&l, GW_ALOG_R_NO_CLIENT_CERT, 5000 + i);
		EXPECT_EQ(ok, 3);
		/* another reason has its own budget */
		EXPECT_TRUE(gw_alog_limit_take(&l, GW_ALOG_R_REVOKED, 5010));
		EXPECT_EQ(gw_alog_limit_due(&l, 5999, &n), -1); /* the second is not over */
		EXPECT_EQ(gw_alog_limit_due(&l, 6000, &n), GW_ALOG_R_NO_CLIENT_CERT);
		EXPECT_EQ(n, 7);
		EXPECT_EQ(gw_alog_limit_due(&l, 6000, &n), -1); /* once */
		/* a new second: lines again */
		EXPECT_TRUE(gw_alog_limit_take(&l, GW_ALOG_R_NO_CLIENT_CERT, 6001));
		/* an out-of-range reason counts as other, never out of bounds */
		EXPECT_TRUE(gw_alog_limit_take(&l, 250, 6001));
	}

	{ /* the writer: a file, refusals limited with a summary, accepted only when enabled,
	   * reopened after a rename */
		char dir[] = "/tmp/test_alog.XXXXXX", path[256], moved[256];
		struct gw_cfg_listener ls[1] = {{.name = "proxy"}};
		struct gw_cfg cfg = {.listeners = ls, .n_listeners = 1};
		struct gw_access_log *al;
		struct gw_alog_ring *ring;

		EXPECT_TRUE(mkdtemp(dir) != NULL);
		snprintf(path, sizeof(path), "%s/access.log", dir);
		snprintf(moved, sizeof(moved), "%s/access.log.1", dir);
		cfg.access_log = (struct gw_cfg_access_log){
			.enabled = true,
			.dest = GW_CFG_ALOG_FILE,
			.path = path,
			.format = GW_CFG_ALOG_TEXT,
			.refusals_per_second = 2,
		};
		EXPECT_OK(gw_access_log_create(&cfg, 2, 16, &al));
		EXPECT_TRUE(gw_access_log_ring(al, 2) == NULL);
		ring = gw_access_log_ring(al, 1);
		for (unsigned i = 0; ring != NULL && i < 6; i++) {
			struct gw_alog_rec *s = gw_alog_slot(ring);

			rec_fill(s, "x", "c", NULL);
			s->accepted = i == 0;
			s->reason = GW_ALOG_R_NO_CLIENT_CERT;
			gw_alog_push(ring);
		}
		EXPECT_EQ(gw_access_log_drain(al, 100000), 6);
		EXPECT_EQ(count_lines(path, "verdict=accepted"), 1);
		EXPECT_EQ(count_lines(path, "reason=no_client_cert"), 2);
		EXPECT_EQ(count_lines(path, "suppressed"), 0);
		EXPECT_EQ(gw_access_log_drain(al, 101000), 0); /* the second is over */
		EXPECT_EQ(count_lines(path, "suppressed 3 refusals for reason no_client_cert"), 1);
		/* logrotate: rename, SIGHUP -> reopen: new lines in a new file */
		EXPECT_TRUE(rename(path, moved) == 0);
		cfg.access_log.format = GW_CFG_ALOG_JSON;
		EXPECT_OK(gw_access_log_reopen(al, &cfg));
		rec_fill(gw_alog_slot(ring), "y", "c", NULL);
		gw_alog_push(ring);
		EXPECT_EQ(gw_access_log_drain(al, 102000), 1);
		EXPECT_EQ(count_lines(path, "\"sni\":\"y\""), 1);
		EXPECT_EQ(count_lines(moved, NULL), 4);
		/* off: accepted connections are not written anywhere */
		cfg.access_log.enabled = false;
		EXPECT_OK(gw_access_log_reopen(al, &cfg));
		rec_fill(gw_alog_slot(ring), "z", "c", NULL);
		gw_alog_push(ring);
		EXPECT_EQ(gw_access_log_drain(al, 103000), 1);
		EXPECT_EQ(count_lines(path, "\"sni\":\"z\""), 0);
		/* a file that cannot be opened: the error names it, the old one stays */
		cfg.access_log.enabled = true;
		cfg.access_log.path = (char *)"/nonexistent/dir/access.log";
		EXPECT_ERR(gw_access_log_reopen(al, &cfg), -ENOENT);
		EXPECT_CONTAINS(gw_err_msg(), "/nonexistent/dir/access.log");
		gw_access_log_destroy(al);
		gw_access_log_destroy(NULL);
		unlink(path);
		unlink(moved);
		rmdir(dir);
	}

	GW_TEST_END();
}
