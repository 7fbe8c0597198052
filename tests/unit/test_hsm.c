/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_hsm.c - hsm/ against a real SoftHSM2 token.
 *
 * Each case gets a fresh token (its own label) in a SoftHSM token directory
 * made for this run (SOFTHSM2_CONF). Signatures are checked in software with
 * the public key; key attributes are read back independently of hsm/ by
 * talking to the module directly; every error of hsm.h is triggered and its
 * message checked; signing runs from several threads and from a forked child.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <p11-kit/pkcs11.h>

#include "gw_softhsm.h"
#include "gw_test.h"
#include "hsm.h"

static struct gw_softhsm tok;
static char pin_bad[128], pin_empty[128];
static unsigned token_seq;

/* The token dir, plus two PIN files only the error cases use. */
static void
setup(void)
{
	if (gw_softhsm_setup(&tok, "gwhsm") < 0)
		exit(2);
	snprintf(pin_bad, sizeof(pin_bad), "%s/badpin", tok.dir);
	snprintf(pin_empty, sizeof(pin_empty), "%s/emptypin", tok.dir);
	if (gw_softhsm_write(pin_bad, "9999\n") < 0 || gw_softhsm_write(pin_empty, "\n") < 0)
		exit(2);
}

static void
teardown(void)
{
	(void)gw_softhsm_remove(&tok);
}

/*
 * Fresh tokens, one per case, all made before the first key is loaded:
 * libp11 0.4.12's engine lists slots once per process (see hsm.h).
 */
enum { N_TOKENS = 12 };

static void
make_tokens(void)
{
	for (unsigned i = 1; i <= N_TOKENS; i++) {
		struct gw_hsm_params p = {.pin_file = tok.pin};
		char label[33];

		snprintf(label, sizeof(label), "t%u", i);
		p.token = label;
		if (gw_hsm_token_init(&p, tok.so_pin) != 0) {
			fprintf(stderr, "token init '%s': %s\n", label, gw_err_msg());
			exit(2);
		}
	}
}

/* The next fresh token's label into label[33]. */
static void
fresh_token(char label[33])
{
	if (token_seq == N_TOKENS) {
		fprintf(stderr, "raise N_TOKENS\n");
		exit(2);
	}
	snprintf(label, 33, "t%u", ++token_seq);
}

static struct gw_hsm *
open_token(const char *label)
{
	struct gw_hsm_params p = {.token = label, .pin_file = tok.pin};
	struct gw_hsm *h = NULL;

	if (gw_hsm_open(&p, &h) != 0) {
		fprintf(stderr, "open '%s': %s\n", label, gw_err_msg());
		exit(2);
	}
	return h;
}

/* A software copy of the public half: what a peer verifies with. */
static EVP_PKEY *
soft_pub(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub;
	int n = i2d_PUBKEY(k, &der);

	if (n <= 0)
		return NULL;
	p = der;
	pub = d2i_PUBKEY(NULL, &p, n);
	OPENSSL_free(der);
	return pub;
}

static int
soft_verify(EVP_PKEY *pub, const EVP_MD *md, const uint8_t *tbs, size_t n, const uint8_t *sig,
	size_t siglen)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c != NULL && EVP_DigestVerifyInit(c, NULL, md, NULL, pub) == 1 &&
		 EVP_DigestVerify(c, sig, siglen, tbs, n) == 1;

	EVP_MD_CTX_free(c);
	ERR_clear_error();
	return ok;
}

/* --- the module, straight (independent of hsm/) ------------------------------------ */

static CK_OBJECT_HANDLE
raw_find_private(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, const char *label)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	if (f->C_FindObjectsInit(s, t, 2) != CKR_OK)
		return CK_INVALID_HANDLE;
	f->C_FindObjects(s, &o, 1, &n);
	f->C_FindObjectsFinal(s);
	return n == 1 ? o : CK_INVALID_HANDLE;
}

/* An EC key pair that may NOT sign (decrypt/derive only), for the usage error. */
static int
raw_make_nosign_key(const char *token, const char *label)
{
	static const uint8_t p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	CK_FUNCTION_LIST *f = gw_softhsm_module();
	CK_SESSION_HANDLE s;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_BYTE id[] = {0xde, 0xad};
	CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_ATTRIBUTE pub[] = {{CKA_TOKEN, &yes, 1}, {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
		{CKA_LABEL, (void *)label, strlen(label)}, {CKA_ID, id, sizeof(id)}};
	CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, 1}, {CKA_PRIVATE, &yes, 1},
		{CKA_SENSITIVE, &yes, 1}, {CKA_SIGN, &no, 1}, {CKA_DERIVE, &yes, 1},
		{CKA_LABEL, (void *)label, strlen(label)}, {CKA_ID, id, sizeof(id)}};
	CK_OBJECT_HANDLE a, b;
	CK_RV rv;

	if (f == NULL || (s = gw_softhsm_session(f, token, "1234")) == CK_INVALID_HANDLE)
		return -1;
	rv = f->C_GenerateKeyPair(s, &m, pub, 4, priv, 7, &a, &b);
	f->C_CloseSession(s);
	return rv == CKR_OK ? 0 : -1;
}

/* --- threads ------------------------------------------------------------------------- */

struct worker {
	const char *token;
	const char *uri;
	int signs, good;
	int rc;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct gw_hsm_params p = {.token = w->token, .pin_file = tok.pin};
	struct gw_hsm *h = NULL;
	EVP_PKEY *k = NULL, *pub = NULL;

	/* each thread: its own handle, its own engine instance, its own sessions */
	w->rc = gw_hsm_open(&p, &h);
	if (w->rc == 0)
		w->rc = gw_hsm_key_load(h, w->uri, &k);
	if (w->rc == 0 && (pub = soft_pub(k)) == NULL)
		w->rc = -1;
	for (int i = 0; w->rc == 0 && i < w->signs; i++) {
		uint8_t msg[64], sig[512];
		size_t siglen = sizeof(sig);

		memset(msg, i, sizeof(msg));
		msg[0] = (uint8_t)(uintptr_t)w;
		if (gw_hsm_sign(h, k, NULL, msg, sizeof(msg), sig, &siglen) == 0 &&
			soft_verify(pub, EVP_sha256(), msg, sizeof(msg), sig, siglen))
			w->good++;
	}
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
	gw_hsm_close(h);
	return NULL;
}

/* --- TLS ---------------------------------------------------------------------------- */

/* A self-signed certificate for k, signed by k (through the token). */
static X509 *
self_signed(EVP_PKEY *k, const EVP_MD *md)
{
	X509 *x = X509_new();

	if (x == NULL)
		return NULL;
	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
		(const unsigned char *)"tls", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	if (X509_set_pubkey(x, k) != 1 || X509_sign(x, k, md) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/*
 * A full TLS 1.3 handshake over a memory BIO pair: the server's key is the
 * token key (it signs CertificateVerify through the engine), the client
 * trusts cert and checks the signature. Returns 1 when both sides finish
 * and the client verified the server.
 */
static int
tls_handshake(EVP_PKEY *key, X509 *cert)
{
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
	SSL *s = NULL, *c = NULL;
	BIO *sb = NULL, *cb = NULL;
	int ok = 0, sdone = 0, cdone = 0;

	if (sctx == NULL || cctx == NULL ||
		SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION) != 1 ||
		SSL_CTX_use_certificate(sctx, cert) != 1 ||
		SSL_CTX_use_PrivateKey(sctx, key) != 1 || SSL_CTX_check_private_key(sctx) != 1 ||
		X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), cert) != 1)
		goto out;
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	s = SSL_new(sctx);
	c = SSL_new(cctx);
	if (s == NULL || c == NULL || BIO_new_bio_pair(&sb, 0, &cb, 0) != 1)
		goto out;
	SSL_set_bio(s, sb, sb);
	SSL_set_bio(c, cb, cb);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	for (int i = 0; i < 50 && !(sdone && cdone); i++) {
		int r;

		if (!cdone) {
			r = SSL_do_handshake(c);
			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
				break;
		}
		if (!sdone) {
			r = SSL_do_handshake(s);
			if (r == 1)
				sdone = 1;
			else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
				break;
		}
	}
	ok = sdone && cdone && SSL_get_verify_result(c) == X509_V_OK &&
	     SSL_version(c) == TLS1_3_VERSION;
out:
	if (!ok)
		ERR_print_errors_fp(stderr);
	SSL_free(s);
	SSL_free(c);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	return ok;
}

int
main(int argc, char **argv)
{
	static const enum gw_hsm_key_type types[] = {
		GW_HSM_KEY_EC_P256, GW_HSM_KEY_EC_P384, GW_HSM_KEY_RSA_2048, GW_HSM_KEY_RSA_3072};
	char label[33], uri[GW_HSM_URI_MAX];
	int lc = gw_hsm_login_check_main(argc, argv); /* the login check's child */

	if (lc >= 0)
		return lc;
	GW_TEST_BEGIN();
	setup();

	{ /* key type names */
		EXPECT_EQ(gw_hsm_key_type_parse("ec-p256"), GW_HSM_KEY_EC_P256);
		EXPECT_EQ(gw_hsm_key_type_parse("rsa-3072"), GW_HSM_KEY_RSA_3072);
		EXPECT_EQ(gw_hsm_key_type_parse("dsa-1024"), GW_HSM_KEY_NONE);
		EXPECT_STREQ(gw_hsm_key_type_name(GW_HSM_KEY_EC_P384), "ec-p384");
	}
	{ /* PIN sources: file, env, and every way they fail */
		char pin[GW_HSM_PIN_MAX], path[160];

		EXPECT_OK(gw_hsm_pin_read(tok.pin, NULL, pin));
		EXPECT_STREQ(pin, "1234");
		snprintf(path, sizeof(path), "%s/nope", tok.dir);
		EXPECT_ERR(gw_hsm_pin_read(path, NULL, pin), -GW_E_HSM_PIN);
		EXPECT_CONTAINS(gw_err_msg(), "cannot read PIN file");
		EXPECT_CONTAINS(gw_err_msg(), "No such file");
		EXPECT_ERR(gw_hsm_pin_read(pin_empty, NULL, pin), -GW_E_HSM_PIN);
		EXPECT_CONTAINS(gw_err_msg(), "one non-empty line");
		unsetenv("GW_TEST_PIN");
		EXPECT_ERR(gw_hsm_pin_read(NULL, "GW_TEST_PIN", pin), -GW_E_HSM_PIN);
		EXPECT_CONTAINS(gw_err_msg(), "PIN environment variable 'GW_TEST_PIN' is not set");
		setenv("GW_TEST_PIN", "4321", 1);
		EXPECT_OK(gw_hsm_pin_read(NULL, "GW_TEST_PIN", pin));
		EXPECT_STREQ(pin, "4321");
		/* read once: unset from the environment, kept in memory for the next read */
		EXPECT_TRUE(getenv("GW_TEST_PIN") == NULL);
		memset(pin, 0, sizeof(pin));
		EXPECT_OK(gw_hsm_pin_read(NULL, "GW_TEST_PIN", pin));
		EXPECT_STREQ(pin, "4321");
		EXPECT_ERR(gw_hsm_pin_read(NULL, "GW_OTHER_PIN", pin), -GW_E_HSM_PIN);
		EXPECT_CONTAINS(gw_err_msg(), "'GW_OTHER_PIN' is not set");
		EXPECT_ERR(gw_hsm_pin_read(NULL, NULL, pin), -GW_E_HSM_PIN);
		OPENSSL_cleanse(pin, sizeof(pin));
	}
	{ /* PIN files: ssh's rules for private keys (mode, owner, kind) */
		char pin[GW_HSM_PIN_MAX], path[160];

		snprintf(path, sizeof(path), "%s/loose-pin", tok.dir);
		EXPECT_OK(gw_softhsm_write(path, "1234\n"));
		EXPECT_OK(chmod(path, 0640));
		EXPECT_ERR(gw_hsm_pin_read(path, NULL, pin), -GW_E_HSM_PIN);
		EXPECT_CONTAINS(gw_err_msg(), "is accessible by group or others (mode 0640): chmod "
					      "600 it");
		EXPECT_TRUE(strstr(gw_err_msg(), "1234") == NULL);
		EXPECT_OK(chmod(path, 0604));
		EXPECT_ERR(gw_hsm_pin_read(path, NULL, pin), -GW_E_HSM_PIN);
		EXPECT_OK(chmod(path, 0400));
		EXPECT_OK(gw_hsm_pin_read(path, NULL, pin));
		EXPECT_STREQ(pin, "1234");
		EXPECT_ERR(gw_hsm_pin_read(tok.dir, NULL, pin), -GW_E_HSM_PIN);
		EXPECT_CONTAINS(gw_err_msg(), "is not a regular file");
		/* owned by another user: only root can make one */
		if (geteuid() == 0) {
			EXPECT_OK(chmod(path, 0600));
			EXPECT_OK(chown(path, 65534, 65534));
			EXPECT_ERR(gw_hsm_pin_read(path, NULL, pin), -GW_E_HSM_PIN);
			EXPECT_CONTAINS(gw_err_msg(), "is owned by uid 65534, not by this user");
		}
		OPENSSL_cleanse(pin, sizeof(pin));
	}
	{ /* module not found / not a PKCS#11 module */
		struct gw_hsm_params p = {.module = "/nonexistent/x.so", .token = "gw"};
		struct gw_hsm *h = NULL;

		EXPECT_ERR(gw_hsm_open(&p, &h), -GW_E_HSM_MODULE);
		EXPECT_CONTAINS(
			gw_err_msg(), "PKCS#11 module '/nonexistent/x.so' cannot be loaded:");
		EXPECT_CONTAINS(gw_err_msg(), "No such file");
		EXPECT_TRUE(h == NULL);
		p.module = GW_DEFAULT_PKCS11_ENGINE; /* a shared object, but no C_GetFunctionList */
		EXPECT_ERR(gw_hsm_open(&p, &h), -GW_E_HSM_MODULE);
		EXPECT_CONTAINS(gw_err_msg(), "not a PKCS#11 module");
	}
	{ /* engine not found */
		struct gw_hsm_params p = {.engine = "/nonexistent/pkcs11.so"};
		struct gw_hsm *h = NULL;

		EXPECT_ERR(gw_hsm_open(&p, &h), -GW_E_HSM);
		EXPECT_CONTAINS(
			gw_err_msg(), "pkcs11 engine '/nonexistent/pkcs11.so' cannot be loaded");
	}
	{ /* token init: once per label */
		struct gw_hsm_params p = {.pin_file = tok.pin};

		make_tokens();
		fresh_token(label);
		p.token = label;
		EXPECT_ERR(gw_hsm_token_init(&p, tok.so_pin), -EEXIST);
		EXPECT_CONTAINS(gw_err_msg(), "already exists");
		p.token = "this-label-is-far-too-long-for-pkcs11";
		EXPECT_ERR(gw_hsm_token_init(&p, tok.so_pin), -EINVAL);
	}
	{ /* token not found */
		struct gw_hsm_params p = {.token = "nosuchtoken", .pin_file = tok.pin};
		struct gw_hsm *h = NULL;

		char want[256];

		EXPECT_ERR(gw_hsm_open(&p, &h), -GW_E_HSM_TOKEN);
		EXPECT_CONTAINS(gw_err_msg(), "no token labelled 'nosuchtoken'");
		/* where SoftHSM2 looked: SOFTHSM2_CONF's directories.tokendir */
		snprintf(want, sizeof(want),
			"; SoftHSM2 looked in %s/tokens (directories.tokendir of "
			"%s/softhsm2.conf, SOFTHSM2_CONF)",
			tok.dir, tok.dir);
		EXPECT_CONTAINS(gw_err_msg(), want);
	}
	{ /* PIN rejected (first login of this process to a fresh token) and unreadable */
		struct gw_hsm_params p = {.pin_file = pin_bad};
		struct gw_hsm *h = NULL;
		char path[160];

		fresh_token(label);
		p.token = label;
		EXPECT_ERR(gw_hsm_open(&p, &h), -GW_E_HSM_PIN);
		EXPECT_CONTAINS(gw_err_msg(), "PIN rejected by token 't");
		EXPECT_TRUE(strstr(gw_err_msg(), "9999") == NULL);
		snprintf(path, sizeof(path), "%s/missing-pin", tok.dir);
		p.pin_file = path;
		EXPECT_ERR(gw_hsm_open(&p, &h), -GW_E_HSM_PIN);
		EXPECT_CONTAINS(gw_err_msg(), "cannot read PIN file");
		EXPECT_TRUE(h == NULL);
		/* bound lazily from a URI: the PIN error, and again on the next call */
		{
			struct gw_hsm_params q = {.pin_file = pin_bad};
			char u[80];
			EVP_PKEY *k = NULL;

			snprintf(u, sizeof(u), "pkcs11:token=%s;object=x", label);
			EXPECT_OK(gw_hsm_open(&q, &h));
			EXPECT_ERR(gw_hsm_key_load(h, u, &k), -GW_E_HSM_PIN);
			EXPECT_CONTAINS(gw_err_msg(), "PIN rejected by token");
			EXPECT_ERR(gw_hsm_key_load(h, u, &k), -GW_E_HSM_PIN);
			EXPECT_CONTAINS(gw_err_msg(), "PIN rejected by token");
			EXPECT_TRUE(gw_hsm_token(h) == NULL);
			gw_hsm_close(h);
			h = NULL;
		}
	}
	{ /* keygen of every type: attributes, real signatures, verified in software */
		struct gw_hsm *h;
		CK_FUNCTION_LIST *f = gw_softhsm_module();
		CK_SESSION_HANDLE rs;

		fresh_token(label);
		h = open_token(label);
		EXPECT_STREQ(gw_hsm_token(h), label);
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
			const char *name = gw_hsm_key_type_name(types[i]);
			struct gw_hsm_object o;
			EVP_PKEY *k = NULL, *pub = NULL;
			uint8_t msg[] = "the quick brown fox", sig[1024];
			size_t siglen = sizeof(sig);
			const EVP_MD *md =
				types[i] == GW_HSM_KEY_EC_P384 ? EVP_sha384() : EVP_sha256();

			EXPECT_OK(gw_hsm_keygen(h, types[i], name, uri));
			EXPECT_CONTAINS(uri, "pkcs11:token=");
			EXPECT_CONTAINS(uri, name);
			EXPECT_CONTAINS(uri, ";type=private");
			EXPECT_OK(gw_hsm_key_info(h, uri, &o));
			EXPECT_EQ(o.type, types[i]);
			EXPECT_TRUE(o.sensitive && !o.extractable && o.private_ && o.sign);
			EXPECT_TRUE(o.always_sensitive && o.never_extractable);
			EXPECT_OK(gw_hsm_key_load(h, uri, &k));
			if (k == NULL)
				continue;
			pub = soft_pub(k);
			EXPECT_TRUE(pub != NULL);
			EXPECT_EQ(EVP_PKEY_get_bits(k), types[i] == GW_HSM_KEY_EC_P256    ? 256
							: types[i] == GW_HSM_KEY_EC_P384  ? 384
							: types[i] == GW_HSM_KEY_RSA_2048 ? 2048
											  : 3072);
			EXPECT_OK(gw_hsm_sign(h, k, md, msg, sizeof(msg), sig, &siglen));
			EXPECT_TRUE(soft_verify(pub, md, msg, sizeof(msg), sig, siglen));
			msg[0] ^= 1; /* and it is a real signature: it fails on other data */
			EXPECT_TRUE(!soft_verify(pub, md, msg, sizeof(msg), sig, siglen));
			EVP_PKEY_free(pub);
			EVP_PKEY_free(k);
		}
		/* independently of hsm/: the module says the key cannot leave */
		EXPECT_TRUE(f != NULL);
		rs = f ? gw_softhsm_session(f, label, "1234") : CK_INVALID_HANDLE;
		EXPECT_TRUE(rs != CK_INVALID_HANDLE);
		if (rs != CK_INVALID_HANDLE) {
			CK_OBJECT_HANDLE o = raw_find_private(f, rs, "ec-p256");
			CK_BBOOL ext = CK_TRUE, sens = CK_FALSE;
			CK_ATTRIBUTE a[] = {{CKA_EXTRACTABLE, &ext, 1}, {CKA_SENSITIVE, &sens, 1}};
			uint8_t val[256];
			CK_ATTRIBUTE v = {CKA_VALUE, val, sizeof(val)};

			EXPECT_TRUE(o != CK_INVALID_HANDLE);
			EXPECT_EQ(f->C_GetAttributeValue(rs, o, a, 2), CKR_OK);
			EXPECT_EQ(ext, CK_FALSE);
			EXPECT_EQ(sens, CK_TRUE);
			EXPECT_EQ(f->C_GetAttributeValue(rs, o, &v, 1), CKR_ATTRIBUTE_SENSITIVE);
			f->C_CloseSession(rs);
		}
		/* same label again */
		EXPECT_ERR(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "ec-p256", uri), -EEXIST);
		EXPECT_CONTAINS(gw_err_msg(), "already exists");
		gw_hsm_close(h);
	}
	{ /* key_ensure: reuse only the exact label + CKA_ID + type, never cut a label */
		struct gw_hsm *h;
		struct gw_hsm_object o;
		const uint8_t id1[8] = {1, 2, 3, 4, 5, 6, 7, 8}, id2[8] = {8, 7, 6, 5, 4, 3, 2, 1};
		char u1[GW_HSM_URI_MAX], u2[GW_HSM_URI_MAX], l64[80], l65[80];

		fresh_token(label);
		h = open_token(label);
		EXPECT_OK(gw_hsm_key_ensure(h, GW_HSM_KEY_EC_P256, "ens", id1, 8, u1));
		EXPECT_CONTAINS(u1, "id=%01%02%03%04%05%06%07%08");
		EXPECT_OK(gw_hsm_key_ensure(h, GW_HSM_KEY_EC_P256, "ens", id1, 8, u2));
		EXPECT_TRUE(strcmp(u1, u2) == 0); /* the same key, reused */
		/* same label, another id: someone else's key, refused */
		EXPECT_ERR(gw_hsm_key_ensure(h, GW_HSM_KEY_EC_P256, "ens", id2, 8, u2), -EEXIST);
		EXPECT_CONTAINS(gw_err_msg(), "has CKA_ID 0102030405060708, not 0807060504030201");
		/* same label and id, another type: refused */
		EXPECT_ERR(gw_hsm_key_ensure(h, GW_HSM_KEY_EC_P384, "ens", id1, 8, u2), -EEXIST);
		EXPECT_CONTAINS(gw_err_msg(), "is ec-p256, not ec-p384");
		/* a key from gw_hsm_keygen (random id) under the label: not reused */
		EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "rnd", u2));
		EXPECT_ERR(gw_hsm_key_ensure(h, GW_HSM_KEY_EC_P256, "rnd", id1, 8, u2), -EEXIST);
		EXPECT_CONTAINS(gw_err_msg(), "not reused");
		/* 64 bytes is a label; 65 is an error, never cut to the 64 of another */
		memset(l64, 'x', 64);
		l64[64] = '\0';
		memset(l65, 'x', 65);
		l65[65] = '\0';
		EXPECT_OK(gw_hsm_key_ensure(h, GW_HSM_KEY_EC_P256, l64, id1, 8, u2));
		EXPECT_OK(gw_hsm_key_info(h, u2, &o));
		EXPECT_TRUE(strcmp(o.label, l64) == 0);
		EXPECT_ERR(gw_hsm_key_ensure(h, GW_HSM_KEY_EC_P256, l65, id2, 8, u2), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "is 65 bytes; labels must be 1 to 64 bytes");
		EXPECT_ERR(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, l65, u2), -EINVAL);
		gw_hsm_close(h);
	}
	{ /* key errors: not found, cannot sign, PIN in URI, other token, no PIN, list */
		struct gw_hsm *h;
		EVP_PKEY *k = NULL;
		char u2[GW_HSM_URI_MAX];
		struct gw_hsm_object *objs = NULL;
		size_t n = 0, priv = 0, pubs = 0;

		fresh_token(label);
		h = open_token(label);
		EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "web", uri));
		snprintf(u2, sizeof(u2), "pkcs11:token=%s;object=nope;type=private", label);
		EXPECT_ERR(gw_hsm_key_load(h, u2, &k), -GW_E_HSM_KEY);
		EXPECT_CONTAINS(gw_err_msg(), "no private key matches");
		EXPECT_CONTAINS(gw_err_msg(), "object=nope");
		EXPECT_TRUE(raw_make_nosign_key(label, "nosign") == 0);
		snprintf(u2, sizeof(u2), "pkcs11:token=%s;object=nosign", label);
		EXPECT_ERR(gw_hsm_key_load(h, u2, &k), -GW_E_HSM_USAGE);
		EXPECT_CONTAINS(gw_err_msg(), "may not sign (CKA_SIGN is false)");
		snprintf(u2, sizeof(u2), "pkcs11:token=%s;object=web;type=public", label);
		EXPECT_ERR(gw_hsm_key_load(h, u2, &k), -GW_E_HSM_USAGE);
		snprintf(u2, sizeof(u2), "pkcs11:token=%s;object=web?pin-value=1234", label);
		EXPECT_ERR(gw_hsm_key_load(h, u2, &k), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "carries a PIN");
		EXPECT_TRUE(strstr(gw_err_msg(), "1234") == NULL);
		/* a PIN is an attribute name, in the path or after '&' in the query */
		snprintf(u2, sizeof(u2), "pkcs11:token=%s;pin-value=4321;object=web", label);
		EXPECT_ERR(gw_hsm_key_load(h, u2, &k), -EINVAL);
		EXPECT_TRUE(strstr(gw_err_msg(), "4321") == NULL);
		EXPECT_ERR(gw_hsm_uri_token(
				   "pkcs11:token=a?module-name=p11&pin-source=/p", u2, sizeof(u2)),
			-EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "carries a PIN");
		/* ... and a label may contain the text (found by the URI fuzzer) */
		EXPECT_OK(
			gw_hsm_uri_token("pkcs11:token=my%70in-value;object=web", u2, sizeof(u2)));
		EXPECT_TRUE(strcmp(u2, "mypin-value") == 0);
		EXPECT_OK(gw_hsm_uri_token("pkcs11:token=pin-source-gw", u2, sizeof(u2)));
		EXPECT_ERR(
			gw_hsm_key_load(h, "pkcs11:token=other;object=web", &k), -GW_E_HSM_TOKEN);
		EXPECT_CONTAINS(gw_err_msg(), "names token 'other'");
		EXPECT_ERR(gw_hsm_key_load(h, "file:/etc/key.pem", &k), -EINVAL);
		EXPECT_ERR(gw_hsm_key_load(h, "pkcs11:token=x;bogus=1", &k), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "unknown attribute 'bogus'");
		EXPECT_TRUE(k == NULL);
		/* the same key, named by label only and by id only */
		snprintf(u2, sizeof(u2), "pkcs11:token=%s;object=web", label);
		EXPECT_OK(gw_hsm_key_load(h, u2, &k));
		EVP_PKEY_free(k);
		k = NULL;
		{
			/* id only: cut ";object=web" out of the keygen URI */
			char *obj = strstr(strcpy(u2, uri), ";object=");

			EXPECT_TRUE(obj != NULL);
			if (obj != NULL)
				memmove(obj, obj + strlen(";object=web"),
					strlen(obj + strlen(";object=web")) + 1);
			EXPECT_TRUE(strstr(u2, "object") == NULL && strstr(u2, ";id=%") != NULL);
			EXPECT_OK(gw_hsm_key_load(h, u2, &k));
			EVP_PKEY_free(k);
			k = NULL;
		}
		/* percent-encoding is decoded: %77 is 'w' */
		snprintf(u2, sizeof(u2), "pkcs11:token=%s;object=%%77eb;type=private", label);
		EXPECT_OK(gw_hsm_key_load(h, u2, &k));
		EVP_PKEY_free(k);
		k = NULL;
		EXPECT_ERR(gw_hsm_key_load(h, "pkcs11:object=%zz", &k), -EINVAL);
		EXPECT_ERR(gw_hsm_key_load(h, "pkcs11:object", &k), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "attribute 'object' has no value");
		snprintf(u2, sizeof(u2), "pkcs11:token=%s;type=private", label);
		EXPECT_ERR(gw_hsm_key_load(h, u2, &k), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "names no key");
		snprintf(u2, sizeof(u2), "pkcs11:token=%s;object=web;type=secret", label);
		EXPECT_ERR(gw_hsm_key_load(h, u2, &k), -EINVAL);
		EXPECT_TRUE(k == NULL);
		EXPECT_OK(gw_hsm_list(h, &objs, &n));
		for (size_t i = 0; i < n; i++) {
			priv += objs[i].kind == GW_HSM_OBJ_PRIVATE_KEY;
			pubs += objs[i].kind == GW_HSM_OBJ_PUBLIC_KEY;
		}
		EXPECT_EQ(priv, 2); /* web, nosign */
		EXPECT_EQ(pubs, 2);
		free(objs);
		gw_hsm_close(h);

		/* no PIN: the handle opens, private keys stay out of reach */
		{
			struct gw_hsm_params p = {.token = label};

			EXPECT_OK(gw_hsm_open(&p, &h));
			EXPECT_ERR(gw_hsm_key_load(h, uri, &k), -GW_E_HSM_PIN);
			EXPECT_CONTAINS(gw_err_msg(), "no PIN given");
			EXPECT_ERR(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "x", u2), -GW_E_HSM_PIN);
			gw_hsm_close(h);
		}
		/* token bound lazily from the URI, PIN from the environment */
		{
			struct gw_hsm_params p = {.pin_env = "GW_TEST_PIN"};

			setenv("GW_TEST_PIN", "1234", 1);
			EXPECT_OK(gw_hsm_open(&p, &h));
			EXPECT_TRUE(gw_hsm_token(h) == NULL);
			EXPECT_OK(gw_hsm_key_load(h, uri, &k));
			EXPECT_STREQ(gw_hsm_token(h), label);
			gw_hsm_close(h);
			/* a key outlives its handle */
			{
				uint8_t sig[256];
				size_t siglen = sizeof(sig);
				EVP_MD_CTX *c = EVP_MD_CTX_new();
				EVP_PKEY *pub = soft_pub(k);

				EXPECT_TRUE(
					EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k) == 1 &&
					EVP_DigestSign(c, sig, &siglen, (const uint8_t *)"x", 1) ==
						1);
				EXPECT_TRUE(soft_verify(
					pub, EVP_sha256(), (const uint8_t *)"x", 1, sig, siglen));
				EVP_MD_CTX_free(c);
				EVP_PKEY_free(pub);
			}
			EVP_PKEY_free(k);
			k = NULL;
		}
		{
			char tl[40];

			EXPECT_OK(gw_hsm_uri_token(uri, tl, sizeof(tl)));
			EXPECT_STREQ(tl, label);
			EXPECT_ERR(gw_hsm_uri_token("pkcs11:object=web", tl, sizeof(tl)), -EINVAL);
		}
	}
	{ /* CSR and certificate/key match, through the token */
		struct gw_hsm *h;
		X509_REQ *req = NULL;
		EVP_PKEY *k = NULL, *other = NULL;

		fresh_token(label);
		h = open_token(label);
		EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "srv", uri));
		EXPECT_OK(gw_hsm_csr(h, uri, "/CN=gw.example.org/O=mtlsgw",
			"DNS:gw.example.org,URI:spiffe://example.org/gw,IP:10.0.0.1", &req));
		if (req != NULL) {
			EVP_PKEY *rk = X509_REQ_get0_pubkey(req);
			STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
			GENERAL_NAMES *g = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
			char cn[64] = "";

			EXPECT_EQ(X509_REQ_verify(req, rk), 1);
			X509_NAME_get_text_by_NID(
				X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof(cn));
			EXPECT_STREQ(cn, "gw.example.org");
			EXPECT_EQ(g ? sk_GENERAL_NAME_num(g) : 0, 3);
			GENERAL_NAMES_free(g);
			sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
			X509_REQ_free(req);
			req = NULL;
		}
		EXPECT_ERR(gw_hsm_csr(h, uri, "CN=x", NULL, &req), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "must look like /CN=name");
		EXPECT_ERR(gw_hsm_csr(h, uri, "/XX=y", NULL, &req), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "unknown field 'XX'");
		EXPECT_ERR(gw_hsm_csr(h, uri, "/CN=x", "EMAIL:a@b", &req), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "SAN 'EMAIL:a@b'");
		EXPECT_ERR(gw_hsm_csr(h, uri, "/CN=x", "IP:300.1.1.1", &req), -EINVAL);

		/* a certificate signed by the token key (what the built-in CA does) */
		EXPECT_OK(gw_hsm_key_load(h, uri, &k));
		other = EVP_EC_gen("P-256");
		for (int pass = 0; k != NULL && other != NULL && pass < 2; pass++) {
			X509 *x = X509_new();

			X509_set_version(x, X509_VERSION_3);
			ASN1_INTEGER_set(X509_get_serialNumber(x), 1 + pass);
			X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				(const unsigned char *)"self", -1, -1, 0);
			X509_set_issuer_name(x, X509_get_subject_name(x));
			X509_gmtime_adj(X509_getm_notBefore(x), 0);
			X509_gmtime_adj(X509_getm_notAfter(x), 3600);
			X509_set_pubkey(x, pass == 0 ? k : other);
			EXPECT_TRUE(X509_sign(x, k, EVP_sha256()) > 0);
			if (pass == 0) {
				EXPECT_EQ(X509_verify(x, X509_get0_pubkey(x)), 1);
				EXPECT_OK(gw_hsm_cert_matches_key(h, x, uri));
			} else {
				EXPECT_ERR(gw_hsm_cert_matches_key(h, x, uri), -GW_E_HSM_KEY);
				EXPECT_CONTAINS(
					gw_err_msg(), "certificate '/CN=self' does not match key");
			}
			X509_free(x);
		}
		EVP_PKEY_free(other);
		EVP_PKEY_free(k);
		gw_hsm_close(h);
	}
	{ /* login check: a process logged in already still learns a wrong PIN */
		struct gw_hsm *h;
		const char *toks[] = {label};
		struct gw_hsm_params good = {.pin_file = tok.pin}, bad = {.pin_file = pin_bad};

		fresh_token(label);
		h = open_token(label); /* this process is now logged in */
		EXPECT_OK(gw_hsm_login_check(&good, toks, 1));
		EXPECT_ERR(gw_hsm_login_check(&bad, toks, 1), -GW_E_HSM_PIN);
		EXPECT_CONTAINS(gw_err_msg(), "PIN rejected by token 't");
		EXPECT_TRUE(strstr(gw_err_msg(), "9999") == NULL);
		toks[0] = "nosuchtoken";
		EXPECT_ERR(gw_hsm_login_check(&good, toks, 1), -GW_E_HSM_TOKEN);
		EXPECT_CONTAINS(gw_err_msg(), "no token labelled 'nosuchtoken'");
		EXPECT_OK(gw_hsm_login_check(&(struct gw_hsm_params){0}, toks, 1)); /* no PIN */
		/* and this process's own login still works */
		EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "after-check", uri));
		gw_hsm_close(h);
	}
	{ /* the token key as a TLS 1.3 server key: EC (ECDSA) and RSA (RSA-PSS) */
		static const enum gw_hsm_key_type tt[] = {
			GW_HSM_KEY_EC_P256, GW_HSM_KEY_EC_P384, GW_HSM_KEY_RSA_2048};
		struct gw_hsm *h;

		fresh_token(label);
		h = open_token(label);
		for (size_t i = 0; i < sizeof(tt) / sizeof(tt[0]); i++) {
			EVP_PKEY *k = NULL;
			X509 *x = NULL;

			EXPECT_OK(gw_hsm_keygen(h, tt[i], gw_hsm_key_type_name(tt[i]), uri));
			EXPECT_OK(gw_hsm_key_load(h, uri, &k));
			if (k != NULL)
				x = self_signed(k, EVP_sha256());
			EXPECT_TRUE(x != NULL);
			if (x != NULL && !tls_handshake(k, x))
				GW_TEST_FAIL_("TLS 1.3 handshake with a %s token key",
					gw_hsm_key_type_name(tt[i]));
			else
				gw_test_pass_++;
			X509_free(x);
			EVP_PKEY_free(k);
		}
		gw_hsm_close(h);
	}
	{ /* several threads, each with its own handle, sign at once */
		enum { NT = 8, SIGNS = 100 };
		struct worker w[NT];
		pthread_t t[NT];
		struct gw_hsm *h;

		fresh_token(label);
		h = open_token(label);
		EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "mt", uri));
		gw_hsm_close(h);
		for (int i = 0; i < NT; i++) {
			w[i] = (struct worker){.token = label, .uri = uri, .signs = SIGNS};
			EXPECT_EQ(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
		}
		for (int i = 0; i < NT; i++) {
			pthread_join(t[i], NULL);
			EXPECT_EQ(w[i].rc, 0);
			EXPECT_EQ(w[i].good, SIGNS);
		}
	}
	{ /* fork: the child opens its own handle; the parent's handle fails cleanly there */
		struct gw_hsm *h;
		EVP_PKEY *k = NULL;
		pid_t pid;
		int st = 0;

		fresh_token(label);
		h = open_token(label);
		EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "fork", uri));
		EXPECT_OK(gw_hsm_key_load(h, uri, &k)); /* used before the fork */
		pid = fork();
		if (pid == 0) {
			/*
			 * Child: exit code bits say what failed. 1: own handle could not
			 * sign; 2: pre-fork handle did not fail with -GW_E_HSM;
			 * 4: that error does not say "before fork".
			 */
			struct gw_hsm_params p = {.token = label, .pin_file = tok.pin};
			struct gw_hsm *ch = NULL;
			EVP_PKEY *ck = NULL, *pub = NULL;
			uint8_t sig[256];
			size_t siglen = sizeof(sig);
			int bits = 0;

			if (gw_hsm_open(&p, &ch) != 0 || gw_hsm_key_load(ch, uri, &ck) != 0 ||
				gw_hsm_sign(ch, ck, NULL, (const uint8_t *)"child", 5, sig,
					&siglen) != 0 ||
				(pub = soft_pub(ck)) == NULL ||
				!soft_verify(pub, EVP_sha256(), (const uint8_t *)"child", 5, sig,
					siglen)) {
				fprintf(stderr, "child: own handle: %s\n", gw_err_msg());
				bits |= 1;
			}
			siglen = sizeof(sig);
			if (gw_hsm_sign(h, k, NULL, (const uint8_t *)"x", 1, sig, &siglen) !=
				-GW_E_HSM)
				bits |= 2;
			else if (strstr(gw_err_msg(), "before fork") == NULL)
				bits |= 4;
			EVP_PKEY_free(pub);
			EVP_PKEY_free(ck);
			gw_hsm_close(ch);
			gw_hsm_close(h); /* the parent's handle: freed, its sessions untouched */
			_exit(bits);
		}
		EXPECT_TRUE(pid > 0);
		EXPECT_EQ(waitpid(pid, &st, 0), pid);
		EXPECT_TRUE(WIFEXITED(st));
		EXPECT_EQ(WEXITSTATUS(st), 0);

		/*
		 * The raw OpenSSL path with a pre-fork EVP_PKEY in a child: libp11
		 * notices the fork and re-initialises; it must sign correctly or fail
		 * cleanly, never crash. Exit 0: signed and verified; 3: failed cleanly.
		 */
		pid = fork();
		if (pid == 0) {
			uint8_t sig[256];
			size_t siglen = sizeof(sig);
			EVP_MD_CTX *c = EVP_MD_CTX_new();
			EVP_PKEY *pub = soft_pub(k);
			int ok = EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k) == 1 &&
				 EVP_DigestSign(c, sig, &siglen, (const uint8_t *)"y", 1) == 1;

			if (ok)
				ok = soft_verify(
					pub, EVP_sha256(), (const uint8_t *)"y", 1, sig, siglen);
			_exit(ok ? 0 : 3);
		}
		st = 0;
		EXPECT_EQ(waitpid(pid, &st, 0), pid);
		EXPECT_TRUE(WIFEXITED(st));
		EXPECT_TRUE(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3));
		printf("pre-fork EVP_PKEY used in a child: %s\n",
			WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "signs correctly"
							      : "fails cleanly");

		/* and the parent goes on signing after its children */
		{
			uint8_t sig[256];
			size_t siglen = sizeof(sig);
			EVP_PKEY *pub = soft_pub(k);

			EXPECT_OK(gw_hsm_sign(h, k, NULL, (const uint8_t *)"p", 1, sig, &siglen));
			EXPECT_TRUE(soft_verify(
				pub, EVP_sha256(), (const uint8_t *)"p", 1, sig, siglen));
			EVP_PKEY_free(pub);
		}
		EVP_PKEY_free(k);
		gw_hsm_close(h);
	}

	gw_hsm_shutdown();
	teardown();
	GW_TEST_END();
}
