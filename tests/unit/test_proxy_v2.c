/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_proxy_v2.c - the PROXY v2 header encoder (dataplane/proxy_v2.h).
 *
 * Exact bytes for known inputs (written out by hand from haproxy's
 * proxy-protocol.txt, not produced by the encoder), every too-small buffer
 * refused without a byte written past it, inconsistent input refused, and a
 * round trip of many generated inputs through an independent strict parser.
 * gw_pp2_info_from_ssl() on real in-memory TLS handshakes (a PKI made here):
 * TLS 1.3 and 1.2, with and without a client certificate, after resumption.
 *
 * `test_proxy_v2 --emit key=value...` writes one header to stdout instead, for
 * tests/integ/proxy_v2.sh, which feeds it to tests/lib/pp2_upstream.py:
 * keys src=IP:PORT dst=IP:PORT alpn sni version cn cipher sig_alg key_alg
 * id client=N verify=N ssl=0|1.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

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

/* ---- real handshakes for gw_pp2_info_from_ssl() ---- */

static long serial = 1;

/* A P-256 certificate for key, signed by issuer (NULL: self-signed CA). */
static X509 *
make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, const char *san)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);
	X509V3_CTX v3;
	X509_EXTENSION *e;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
		issuer ? "critical,CA:FALSE" : "critical,CA:TRUE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	if (san) {
		e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
	return x;
}

struct pki {
	EVP_PKEY *ca_key, *srv_key, *cli_key;
	X509 *ca, *srv;
};

static int
alpn_pick(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
	unsigned inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	for (unsigned i = 0; i + 1 < inlen; i += 1u + in[i]) {
		if (in[i] == 2 && i + 3 <= inlen && memcmp(in + i + 1, "h2", 2) == 0) {
			*out = in + i + 1;
			*outlen = 2;
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_NOACK;
}

struct hs {
	SSL_CTX *sctx, *cctx;
	SSL *s, *c;
};

/* One handshake over a BIO pair. cli_cert NULL: the client sends none. */
static int
handshake(struct hs *h, const struct pki *p, X509 *cli_cert, int max_version, SSL_SESSION *resume)
{
	BIO *cb, *sb;
	int rs = 0, rc = 0;

	memset(h, 0, sizeof(*h));
	h->sctx = SSL_CTX_new(TLS_server_method());
	h->cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_max_proto_version(h->sctx, max_version);
	SSL_CTX_use_certificate(h->sctx, p->srv);
	SSL_CTX_use_PrivateKey(h->sctx, p->srv_key);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(h->sctx), p->ca);
	SSL_CTX_set_verify(h->sctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_alpn_select_cb(h->sctx, alpn_pick, NULL);
	SSL_CTX_set_session_id_context(h->sctx, (const unsigned char *)"t", 1);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(h->cctx), p->ca);
	SSL_CTX_set_verify(h->cctx, SSL_VERIFY_PEER, NULL);
	if (cli_cert) {
		SSL_CTX_use_certificate(h->cctx, cli_cert);
		SSL_CTX_use_PrivateKey(h->cctx, p->cli_key);
	}
	h->s = SSL_new(h->sctx);
	h->c = SSL_new(h->cctx);
	if (!cli_cert) {
		/* no SNI, no ALPN either: those fields must come out empty */
	} else {
		SSL_set_tlsext_host_name(h->c, "gw.test");
		SSL_set_alpn_protos(h->c, (const unsigned char *)"\x08http/1.1\x02h2", 12);
	}
	if (resume)
		SSL_set_session(h->c, resume);
	BIO_new_bio_pair(&cb, 0, &sb, 0);
	SSL_set_bio(h->c, cb, cb);
	SSL_set_bio(h->s, sb, sb);
	SSL_set_connect_state(h->c);
	SSL_set_accept_state(h->s);
	for (int i = 0; i < 50 && (rs != 1 || rc != 1); i++) {
		if (rc != 1)
			rc = SSL_do_handshake(h->c);
		if (rs != 1)
			rs = SSL_do_handshake(h->s);
	}
	return rs == 1 && rc == 1 ? 0 : -1;
}

static void
hs_free(struct hs *h)
{
	/* freed without a shutdown, OpenSSL marks the session not resumable */
	SSL_set_shutdown(h->c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_set_shutdown(h->s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(h->s);
	SSL_free(h->c);
	SSL_CTX_free(h->sctx);
	SSL_CTX_free(h->cctx);
}

static void
test_from_ssl(void)
{
	struct pki p = {0};
	struct gw_pp2_ssl_strs strs;
	struct gw_pp2_info in;
	struct hs h;
	X509 *cli, *cli_urn, *cli_long;
	char long_san[1200];

	p.ca_key = EVP_EC_gen("P-256");
	p.srv_key = EVP_EC_gen("P-256");
	p.cli_key = EVP_EC_gen("P-256");
	p.ca = make_cert(p.ca_key, "test ca", NULL, NULL, NULL);
	p.srv = make_cert(p.srv_key, "gw.test", p.ca, p.ca_key, "DNS:gw.test");
	/* a non-SPIFFE URI first: the SPIFFE one must still be picked */
	cli = make_cert(p.cli_key, "client1", p.ca, p.ca_key,
		"URI:https://example.org/a,URI:spiffe://td.test/ns/a/sa/client1,DNS:c1.test");
	cli_urn = make_cert(p.cli_key, "client2", p.ca, p.ca_key, "URI:urn:example:client2");
	memcpy(long_san, "URI:spiffe://td.test/", 21);
	memset(long_san + 21, 'x', 1100);
	long_san[1121] = '\0';
	cli_long = make_cert(p.cli_key, "client3", p.ca, p.ca_key, long_san);

	{ /* TLS 1.3, client certificate, SNI, ALPN */
		uint8_t buf[1024];
		struct parsed o;
		int n;

		memset(&in, 0, sizeof(in));
		EXPECT_OK(handshake(&h, &p, cli, TLS1_3_VERSION, NULL));
		EXPECT_OK(gw_pp2_info_from_ssl(&in, h.s, &strs));
		EXPECT_STREQ(in.ssl_version, "TLSv1.3");
		EXPECT_TRUE(in.ssl_cipher && strncmp(in.ssl_cipher, "TLS_", 4) == 0);
		EXPECT_STREQ(in.ssl_cn, "client1");
		EXPECT_STREQ(in.client_id, "spiffe://td.test/ns/a/sa/client1");
		EXPECT_STREQ(in.ssl_sig_alg, "ecdsa-with-SHA256");
		EXPECT_STREQ(in.ssl_key_alg, "EC256");
		EXPECT_STREQ(in.authority, "gw.test");
		EXPECT_TRUE(in.alpn_len == 2 && memcmp(in.alpn, "h2", 2) == 0);
		EXPECT_EQ(in.ssl_client,
			GW_PP2_CLIENT_SSL | GW_PP2_CLIENT_CERT_CONN | GW_PP2_CLIENT_CERT_SESS);
		EXPECT_EQ(in.ssl_verify, 0);
		/* and it builds a header the parser reads back */
		in.src_addr = ip("192.0.2.10");
		in.dst_addr = ip("192.0.2.20");
		in.src_port = htons(40000);
		in.dst_port = htons(443);
		n = gw_pp2_build(buf, sizeof(buf), &in);
		EXPECT_TRUE(n > 0 && parse(buf, (size_t)n, &o) == n && same(&in, &o));
		/* the caller-side errors */
		EXPECT_ERR(gw_pp2_info_from_ssl(NULL, h.s, &strs), -EINVAL);
		EXPECT_ERR(gw_pp2_info_from_ssl(&in, NULL, &strs), -EINVAL);
		EXPECT_ERR(gw_pp2_info_from_ssl(&in, h.s, NULL), -EINVAL);
		EXPECT_ERR(gw_pp2_info_from_ssl(&in, h.c, &strs), -EINVAL); /* client side */
		hs_free(&h);
	}
	{ /* only a non-SPIFFE URI: that is the id */
		memset(&in, 0, sizeof(in));
		EXPECT_OK(handshake(&h, &p, cli_urn, TLS1_3_VERSION, NULL));
		EXPECT_OK(gw_pp2_info_from_ssl(&in, h.s, &strs));
		EXPECT_STREQ(in.client_id, "urn:example:client2");
		EXPECT_STREQ(in.ssl_cn, "client2");
		hs_free(&h);
	}
	{ /* an id longer than its buffer is left out, not cut */
		memset(&in, 0, sizeof(in));
		EXPECT_OK(handshake(&h, &p, cli_long, TLS1_3_VERSION, NULL));
		EXPECT_OK(gw_pp2_info_from_ssl(&in, h.s, &strs));
		EXPECT_TRUE(in.client_id == NULL);
		EXPECT_STREQ(in.ssl_cn, "client3");
		hs_free(&h);
	}
	{ /* no client certificate, no SNI, no ALPN: flags say so, verify non-zero */
		memset(&in, 0, sizeof(in));
		EXPECT_OK(handshake(&h, &p, NULL, TLS1_3_VERSION, NULL));
		EXPECT_OK(gw_pp2_info_from_ssl(&in, h.s, &strs));
		EXPECT_EQ(in.ssl_client, GW_PP2_CLIENT_SSL);
		EXPECT_TRUE(in.ssl_verify != 0);
		EXPECT_TRUE(in.ssl_cn == NULL && in.client_id == NULL);
		EXPECT_TRUE(in.authority == NULL && in.alpn == NULL && in.alpn_len == 0);
		EXPECT_OK(gw_pp2_len(&in));
		hs_free(&h);
	}
	{ /* TLS 1.2, then a resumed session: the cert was sent in the session only */
		SSL_SESSION *sess;
		SSL_CTX *keep_s;

		memset(&in, 0, sizeof(in));
		EXPECT_OK(handshake(&h, &p, cli, TLS1_2_VERSION, NULL));
		EXPECT_OK(gw_pp2_info_from_ssl(&in, h.s, &strs));
		EXPECT_STREQ(in.ssl_version, "TLSv1.2");
		EXPECT_STREQ(in.ssl_cipher, "ECDHE-ECDSA-AES256-GCM-SHA384");
		EXPECT_EQ(in.ssl_client,
			GW_PP2_CLIENT_SSL | GW_PP2_CLIENT_CERT_CONN | GW_PP2_CLIENT_CERT_SESS);
		sess = SSL_get1_session(h.c);
		/* resume against the same server context (tickets need its keys) */
		keep_s = h.sctx;
		SSL_CTX_up_ref(keep_s);
		hs_free(&h);
		{
			struct hs r;
			BIO *cb, *sb;
			int rs = 0, rc = 0;

			r.sctx = keep_s;
			r.cctx = SSL_CTX_new(TLS_client_method());
			X509_STORE_add_cert(SSL_CTX_get_cert_store(r.cctx), p.ca);
			SSL_CTX_use_certificate(r.cctx, cli);
			SSL_CTX_use_PrivateKey(r.cctx, p.cli_key);
			r.s = SSL_new(r.sctx);
			r.c = SSL_new(r.cctx);
			SSL_set_session(r.c, sess);
			/* the same name as the first time, or the session is not offered */
			SSL_set_tlsext_host_name(r.c, "gw.test");
			BIO_new_bio_pair(&cb, 0, &sb, 0);
			SSL_set_bio(r.c, cb, cb);
			SSL_set_bio(r.s, sb, sb);
			SSL_set_connect_state(r.c);
			SSL_set_accept_state(r.s);
			for (int i = 0; i < 50 && (rs != 1 || rc != 1); i++) {
				if (rc != 1)
					rc = SSL_do_handshake(r.c);
				if (rs != 1)
					rs = SSL_do_handshake(r.s);
			}
			EXPECT_TRUE(rs == 1 && rc == 1);
			EXPECT_TRUE(SSL_session_reused(r.s));
			memset(&in, 0, sizeof(in));
			EXPECT_OK(gw_pp2_info_from_ssl(&in, r.s, &strs));
			EXPECT_EQ(in.ssl_client, GW_PP2_CLIENT_SSL | GW_PP2_CLIENT_CERT_SESS);
			EXPECT_STREQ(in.client_id, "spiffe://td.test/ns/a/sa/client1");
			hs_free(&r);
		}
		SSL_SESSION_free(sess);
	}
	{ /* a handshake that has not finished */
		SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
		SSL *s = SSL_new(ctx);

		EXPECT_ERR(gw_pp2_info_from_ssl(&in, s, &strs), -EINVAL);
		SSL_free(s);
		SSL_CTX_free(ctx);
	}
	X509_free(cli);
	X509_free(cli_urn);
	X509_free(cli_long);
	X509_free(p.ca);
	X509_free(p.srv);
	EVP_PKEY_free(p.ca_key);
	EVP_PKEY_free(p.srv_key);
	EVP_PKEY_free(p.cli_key);
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
	test_from_ssl();
	GW_TEST_END();
}
