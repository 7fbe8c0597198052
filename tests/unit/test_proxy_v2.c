/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_proxy_v2.c - the PROXY v2 header encoder (dataplane/proxy_v2.h).
 *
 * Exact bytes for known inputs (written out by hand from haproxy's
 * proxy-protocol.txt, not produced by the encoder), every too-small buffer
 * refused without a byte written past it, inconsistent input refused, and a
 * round trip of many generated inputs through an independent strict parser.
 *
 * `test_proxy_v2 --emit key=value...` writes one header to stdout instead, for
 * tests/integ/proxy_v2.sh, which feeds it to tests/lib/pp2_upstream.py:
 * keys src=IP:PORT dst=IP:PORT alpn sni version cn cipher sig_alg key_alg
 * id client=N verify=N ssl=0|1.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <unistd.h>

#include "gw_test.h"
#include "proxy_v2.h"

/* ---- an independent, strict parser (what an upstream must do) ---- */

struct parsed {
	uint32_t src_addr, dst_addr;
	uint16_t src_port, dst_port;
	char alpn[64], authority[256], id[512];
	int has_ssl;
	uint8_t client;
	uint32_t verify;
	char version[64], cn[256], cipher[128], sig_alg[64], key_alg[64];
};

static unsigned
be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* copy a TLV value into a C string; a duplicate or an oversize value is an error */
static int
take(char *dst, size_t cap, const uint8_t *v, unsigned len)
{
	if (dst[0] != '\0' || len == 0 || len >= cap || memchr(v, 0, len))
		return -1;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return 0;
}

static int
parse_ssl(struct parsed *o, const uint8_t *v, unsigned len)
{
	unsigned off = 5;

	if (o->has_ssl || len < 5)
		return -1;
	o->has_ssl = 1;
	o->client = v[0];
	o->verify = (uint32_t)be16(v + 1) << 16 | be16(v + 3);
	while (off < len) {
		unsigned t, l;
		char *dst;
		size_t cap;

		if (len - off < 3)
			return -1;
		t = v[off];
		l = be16(v + off + 1);
		off += 3;
		if (l > len - off)
			return -1;
		switch (t) {
		case GW_PP2_SUBTYPE_SSL_VERSION:
			dst = o->version;
			cap = sizeof(o->version);
			break;
		case GW_PP2_SUBTYPE_SSL_CN:
			dst = o->cn;
			cap = sizeof(o->cn);
			break;
		case GW_PP2_SUBTYPE_SSL_CIPHER:
			dst = o->cipher;
			cap = sizeof(o->cipher);
			break;
		case GW_PP2_SUBTYPE_SSL_SIG_ALG:
			dst = o->sig_alg;
			cap = sizeof(o->sig_alg);
			break;
		case GW_PP2_SUBTYPE_SSL_KEY_ALG:
			dst = o->key_alg;
			cap = sizeof(o->key_alg);
			break;
		default:
			return -1;
		}
		if (take(dst, cap, v + off, l) < 0)
			return -1;
		off += l;
	}
	if ((o->client & GW_PP2_CLIENT_SSL) && o->version[0] == '\0')
		return -1;
	return 0;
}

/* Returns the header length, or -1 for anything not exactly well-formed. */
static int
parse(const uint8_t *b, size_t n, struct parsed *o)
{
	static const uint8_t sig[12] = {
		0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
	unsigned len, off;

	memset(o, 0, sizeof(*o));
	if (n < 16 || memcmp(b, sig, 12) != 0 || b[12] != 0x21 || b[13] != 0x11)
		return -1;
	len = be16(b + 14);
	if (len < 12 || n < 16 + (size_t)len)
		return -1;
	memcpy(&o->src_addr, b + 16, 4);
	memcpy(&o->dst_addr, b + 20, 4);
	memcpy(&o->src_port, b + 24, 2);
	memcpy(&o->dst_port, b + 26, 2);
	off = 28;
	while (off < 16 + len) {
		unsigned t, l;
		int rc;

		if (16 + len - off < 3)
			return -1;
		t = b[off];
		l = be16(b + off + 1);
		off += 3;
		if (l > 16 + len - off)
			return -1;
		switch (t) {
		case GW_PP2_TYPE_ALPN:
			rc = take(o->alpn, sizeof(o->alpn), b + off, l);
			break;
		case GW_PP2_TYPE_AUTHORITY:
			rc = take(o->authority, sizeof(o->authority), b + off, l);
			break;
		case GW_PP2_TYPE_SSL:
			rc = parse_ssl(o, b + off, l);
			break;
		case GW_PP2_TYPE_CLIENT_ID:
			rc = take(o->id, sizeof(o->id), b + off, l);
			break;
		default:
			rc = -1;
		}
		if (rc < 0)
			return -1;
		off += l;
	}
	return (int)(16 + len);
}

static int
same_str(const char *want, const char *got)
{
	return strcmp(want ? want : "", got) == 0;
}

static int
same(const struct gw_pp2_info *in, const struct parsed *o)
{
	char alpn[64] = "";

	if (in->alpn_len)
		memcpy(alpn, in->alpn, in->alpn_len);
	return in->src_addr == o->src_addr && in->dst_addr == o->dst_addr &&
	       in->src_port == o->src_port && in->dst_port == o->dst_port &&
	       strcmp(alpn, o->alpn) == 0 && same_str(in->authority, o->authority) &&
	       same_str(in->client_id, o->id) && (int)in->has_ssl == o->has_ssl &&
	       (!in->has_ssl ||
		       (in->ssl_client == o->client && in->ssl_verify == o->verify &&
			       same_str(in->ssl_version, o->version) &&
			       same_str(in->ssl_cn, o->cn) && same_str(in->ssl_cipher, o->cipher) &&
			       same_str(in->ssl_sig_alg, o->sig_alg) &&
			       same_str(in->ssl_key_alg, o->key_alg)));
}

/* ---- fixtures ---- */

static uint32_t
ip(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return a.s_addr;
}

static struct gw_pp2_info
full_info(void)
{
	struct gw_pp2_info in = {
		.src_addr = ip("192.0.2.1"),
		.dst_addr = ip("198.51.100.7"),
		.src_port = htons(51000),
		.dst_port = htons(443),
		.alpn = (const uint8_t *)"h2",
		.alpn_len = 2,
		.authority = "gw.example",
		.has_ssl = true,
		.ssl_client = GW_PP2_CLIENT_SSL | GW_PP2_CLIENT_CERT_CONN | GW_PP2_CLIENT_CERT_SESS,
		.ssl_verify = 0,
		.ssl_version = "TLSv1.3",
		.ssl_cn = "client1",
		.ssl_cipher = "TLS_AES_128_GCM_SHA256",
		.ssl_sig_alg = "ECDSA-SHA256",
		.ssl_key_alg = "EC256",
		.client_id = "spiffe://demo.mtlsgw/client1",
	};
	return in;
}

/* The header for full_info(), byte by byte (lengths counted by hand). */
static const char full_wire[] = "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A" /* signature */
				"\x21\x11"         /* v2 PROXY, TCP4 */
				"\x00\x89"         /* 137 = 12 + 5 + 13 + 76 + 31 */
				"\xC0\x00\x02\x01" /* 192.0.2.1 */
				"\xC6\x33\x64\x07" /* 198.51.100.7 */
				"\xC7\x38"         /* 51000 */
				"\x01\xBB"         /* 443 */
				"\x01\x00\x02"
				"h2"
				"\x02\x00\x0A"
				"gw.example"
				"\x20\x00\x49" /* SSL, 73 = 5 + 10 + 10 + 25 + 15 + 8 */
				"\x07\x00\x00\x00\x00"
				"\x21\x00\x07"
				"TLSv1.3"
				"\x22\x00\x07"
				"client1"
				"\x23\x00\x16"
				"TLS_AES_128_GCM_SHA256"
				"\x24\x00\x0C"
				"ECDSA-SHA256"
				"\x25\x00\x05"
				"EC256"
				"\xE0\x00\x1C"
				"spiffe://demo.mtlsgw/client1";

static const char min_wire[] = "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"
			       "\x21\x11\x00\x0C"
			       "\x0A\x00\x00\x01\x0A\x00\x00\x02\x30\x39\x01\xBB";

/* Every cap below the need: -ENOSPC, and not one byte of buf changed. */
static void
check_bounds(const struct gw_pp2_info *in)
{
	int need = gw_pp2_len(in);
	size_t slack = 64;
	uint8_t *guard;

	EXPECT_TRUE(need > 0);
	if (need <= 0)
		return;
	guard = malloc((size_t)need + slack);
	for (size_t cap = 0; cap < (size_t)need; cap++) {
		/* exact-size heap block: ASan reports any write past cap */
		uint8_t *exact = malloc(cap ? cap : 1);
		int rc = gw_pp2_build(exact, cap, in);

		if (rc != -ENOSPC) {
			GW_TEST_FAIL_("cap %zu of %d: rc %d, want -ENOSPC", cap, need, rc);
		}
		free(exact);
		memset(guard, 0xA5, (size_t)need + slack);
		rc = gw_pp2_build(guard, cap, in);
		for (size_t i = 0; i < (size_t)need + slack; i++) {
			if (guard[i] != 0xA5) {
				GW_TEST_FAIL_("cap %zu: byte %zu written on -ENOSPC", cap, i);
				break;
			}
		}
	}
	gw_test_pass_++;
	{
		uint8_t *exact = malloc((size_t)need);
		EXPECT_EQ(gw_pp2_build(exact, (size_t)need, in), need);
		free(exact);
	}
	free(guard);
}

/* xorshift: a reproducible stream of inputs without libFuzzer */
static uint32_t rng = 0x9e3779b9u;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static const char *
rnd_str(char *buf, size_t cap)
{
	size_t n;

	if (rnd() % 3 == 0)
		return NULL;
	n = rnd() % (cap - 1);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(0x20 + rnd() % 0x5f);
	buf[n] = '\0';
	return buf;
}

/* ---- --emit mode for the integration test ---- */

static int
addr_port(const char *s, uint32_t *addr, uint16_t *port)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	long p;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	p = strtol(colon + 1, NULL, 10);
	if (inet_pton(AF_INET, host, addr) != 1 || p <= 0 || p > 65535)
		return -1;
	*port = htons((uint16_t)p);
	return 0;
}

static int
emit(int argc, char **argv)
{
	struct gw_pp2_info in = {0};
	uint8_t buf[GW_PP2_MAX_LEN];
	int n;

	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		const char *k = argv[i], *v;

		if (!eq) {
			fprintf(stderr, "--emit: '%s' is not key=value\n", argv[i]);
			return 2;
		}
		*eq = '\0';
		v = eq + 1;
		if (!strcmp(k, "src") && addr_port(v, &in.src_addr, &in.src_port) == 0)
			continue;
		if (!strcmp(k, "dst") && addr_port(v, &in.dst_addr, &in.dst_port) == 0)
			continue;
		if (!strcmp(k, "alpn")) {
			in.alpn = (const uint8_t *)v;
			in.alpn_len = strlen(v);
		} else if (!strcmp(k, "sni"))
			in.authority = v;
		else if (!strcmp(k, "ssl"))
			in.has_ssl = atoi(v) != 0;
		else if (!strcmp(k, "client"))
			in.ssl_client = (uint8_t)strtoul(v, NULL, 0);
		else if (!strcmp(k, "verify"))
			in.ssl_verify = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(k, "version"))
			in.ssl_version = v;
		else if (!strcmp(k, "cn"))
			in.ssl_cn = v;
		else if (!strcmp(k, "cipher"))
			in.ssl_cipher = v;
		else if (!strcmp(k, "sig_alg"))
			in.ssl_sig_alg = v;
		else if (!strcmp(k, "key_alg"))
			in.ssl_key_alg = v;
		else if (!strcmp(k, "id"))
			in.client_id = v;
		else {
			fprintf(stderr, "--emit: bad key or value '%s=%s'\n", k, v);
			return 2;
		}
	}
	n = gw_pp2_build(buf, sizeof(buf), &in);
	if (n < 0) {
		fprintf(stderr, "--emit: gw_pp2_build: %s (%s)\n", gw_err_name(n), gw_err_msg());
		return 1;
	}
	return write(STDOUT_FILENO, buf, (size_t)n) == n ? 0 : 1;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--emit") == 0)
		return emit(argc - 2, argv + 2);

	GW_TEST_BEGIN();
	{ /* the full header, exact bytes */
		struct gw_pp2_info in = full_info();
		uint8_t buf[512];
		int n = gw_pp2_build(buf, sizeof(buf), &in);

		EXPECT_EQ(n, sizeof(full_wire) - 1);
		EXPECT_EQ(gw_pp2_len(&in), sizeof(full_wire) - 1);
		EXPECT_TRUE(n == sizeof(full_wire) - 1 && memcmp(buf, full_wire, (size_t)n) == 0);
	}
	{ /* addresses only: no TLV at all */
		struct gw_pp2_info in = {.src_addr = ip("10.0.0.1"),
			.dst_addr = ip("10.0.0.2"),
			.src_port = htons(12345),
			.dst_port = htons(443)};
		uint8_t buf[64];
		int n = gw_pp2_build(buf, sizeof(buf), &in);

		EXPECT_EQ(n, 28);
		EXPECT_TRUE(n == 28 && memcmp(buf, min_wire, 28) == 0);
		/* "" is the same as NULL: omitted */
		in.authority = "";
		in.client_id = "";
		EXPECT_EQ(gw_pp2_build(buf, sizeof(buf), &in), 28);
	}
	{ /* SSL TLV with a failed verify and no sub-TLV but the version */
		struct gw_pp2_info in = {.has_ssl = true,
			.ssl_client = GW_PP2_CLIENT_SSL,
			.ssl_verify = 0x01020304,
			.ssl_version = "TLSv1.2"};
		static const char want[] = "\x20\x00\x0F\x01\x01\x02\x03\x04\x21\x00\x07"
					   "TLSv1.2";
		uint8_t buf[64];
		int n = gw_pp2_build(buf, sizeof(buf), &in);

		EXPECT_EQ(n, 28 + sizeof(want) - 1);
		EXPECT_TRUE(n > 28 && memcmp(buf + 28, want, sizeof(want) - 1) == 0);
		EXPECT_EQ(buf[15], 12 + sizeof(want) - 1);
	}
	{ /* inconsistent input: -EINVAL, buffer untouched */
		struct gw_pp2_info in = full_info();
		uint8_t buf[512];

		memset(buf, 0x5A, sizeof(buf));
		EXPECT_ERR(gw_pp2_len(NULL), -EINVAL);
		EXPECT_ERR(gw_pp2_build(buf, sizeof(buf), NULL), -EINVAL);
		EXPECT_ERR(gw_pp2_build(NULL, 4096, &in), -EINVAL);
		EXPECT_ERR(gw_pp2_build(NULL, 0, &in), -ENOSPC);
		in.has_ssl = false; /* ssl_* strings would be lost */
		EXPECT_ERR(gw_pp2_build(buf, sizeof(buf), &in), -EINVAL);
		in = full_info();
		in.ssl_client = 0x08; /* not a defined bit */
		EXPECT_ERR(gw_pp2_build(buf, sizeof(buf), &in), -EINVAL);
		in = full_info();
		in.ssl_version = NULL; /* CLIENT_SSL promises a version */
		EXPECT_ERR(gw_pp2_build(buf, sizeof(buf), &in), -EINVAL);
		in.ssl_client = GW_PP2_CLIENT_CERT_CONN; /* no CLIENT_SSL: fine */
		EXPECT_OK(gw_pp2_build(buf, sizeof(buf), &in));
		memset(buf, 0x5A, sizeof(buf));
		in = full_info();
		in.alpn = NULL; /* a length without bytes */
		EXPECT_ERR(gw_pp2_build(buf, sizeof(buf), &in), -EINVAL);
		in = (struct gw_pp2_info){.ssl_verify = 1}; /* verify without the TLV */
		EXPECT_ERR(gw_pp2_build(buf, sizeof(buf), &in), -EINVAL);
		int untouched = 1;
		for (size_t i = 0; i < sizeof(buf); i++)
			untouched &= buf[i] == 0x5A;
		EXPECT_TRUE(untouched);
	}
	{ /* the 16-bit length field: the largest header fits, one more byte does not */
		size_t big = GW_PP2_MAX_LEN - 28 - 3; /* 65520 */
		char *s = malloc(big + 2);
		uint8_t *buf = malloc(GW_PP2_MAX_LEN);
		struct gw_pp2_info in = {0};

		memset(s, 'a', big + 1);
		s[big] = '\0';
		in.authority = s;
		EXPECT_EQ(gw_pp2_build(buf, GW_PP2_MAX_LEN, &in), GW_PP2_MAX_LEN);
		EXPECT_EQ(buf[14], 0xff);
		EXPECT_EQ(buf[15], 0xff);
		EXPECT_ERR(gw_pp2_build(buf, GW_PP2_MAX_LEN - 1, &in), -ENOSPC);
		s[big] = 'a';
		s[big + 1] = '\0';
		EXPECT_ERR(gw_pp2_len(&in), -EINVAL);
		/* a single value longer than any TLV */
		char *huge = malloc(70000);
		memset(huge, 'b', 69999);
		huge[69999] = '\0';
		in.authority = NULL;
		in.client_id = huge;
		EXPECT_ERR(gw_pp2_len(&in), -EINVAL);
		free(huge);
		free(s);
		free(buf);
	}
	{ /* bounds: every cap smaller than needed */
		struct gw_pp2_info in = full_info();
		check_bounds(&in);
		in = (struct gw_pp2_info){0};
		check_bounds(&in);
	}
	{ /* the parser agrees with the hand-written bytes */
		struct gw_pp2_info in = full_info();
		struct parsed o;

		EXPECT_EQ(parse((const uint8_t *)full_wire, sizeof(full_wire) - 1, &o),
			sizeof(full_wire) - 1);
		EXPECT_TRUE(same(&in, &o));
		EXPECT_STREQ(o.id, "spiffe://demo.mtlsgw/client1");
		/* and rejects a header cut anywhere */
		int cut_ok = 1;
		for (size_t n = 0; n < sizeof(full_wire) - 1; n++)
			cut_ok &= parse((const uint8_t *)full_wire, n, &o) < 0;
		EXPECT_TRUE(cut_ok);
	}
	{ /* round trip: generated inputs -> build -> parse -> same fields */
		unsigned bad = 0;

		for (int iter = 0; iter < 2000; iter++) {
			char a[60], au[250], v[60], cn[250], ci[120], sa[60], ka[60], id[500];
			struct gw_pp2_info in = {.src_addr = rnd(),
				.dst_addr = rnd(),
				.src_port = (uint16_t)rnd(),
				.dst_port = (uint16_t)rnd()};
			const char *alpn = rnd_str(a, sizeof(a));
			uint8_t buf[2048];
			struct parsed o;
			int n, m;

			in.alpn = (const uint8_t *)alpn;
			in.alpn_len = alpn ? strlen(alpn) : 0;
			in.authority = rnd_str(au, sizeof(au));
			in.client_id = rnd_str(id, sizeof(id));
			if (rnd() % 2) {
				in.has_ssl = true;
				in.ssl_verify = rnd() % 2 ? 0 : rnd();
				in.ssl_version = rnd_str(v, sizeof(v));
				in.ssl_client = (uint8_t)(rnd() % 8);
				if (!in.ssl_version || !in.ssl_version[0])
					in.ssl_client &= (uint8_t)~GW_PP2_CLIENT_SSL;
				in.ssl_cn = rnd_str(cn, sizeof(cn));
				in.ssl_cipher = rnd_str(ci, sizeof(ci));
				in.ssl_sig_alg = rnd_str(sa, sizeof(sa));
				in.ssl_key_alg = rnd_str(ka, sizeof(ka));
			}
			n = gw_pp2_build(buf, sizeof(buf), &in);
			m = n > 0 ? parse(buf, (size_t)n, &o) : -1;
			if (n <= 0 || m != n || !same(&in, &o)) {
				if (bad++ < 3)
					GW_TEST_FAIL_(
						"round trip %d: build %d parse %d", iter, n, m);
			}
		}
		EXPECT_EQ(bad, 0);
	}
	GW_TEST_END();
}
