/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_p11delay.c - tests/lib/p11_delay.c, the slow-HSM PKCS#11 module, on a
 * fresh SoftHSM2 token.
 *
 * The module ($GW_P11DELAY, set by meson) is used twice in one process, as
 * bench/run's servers use it: through the project's hsm API (libp11's engine
 * and hsm/p11.c load it by path) and straight through its function list. The
 * wrapper reads GW_P11DELAY_US/GW_P11DELAY_MAX at every C_Initialize, also
 * one the real module answers with ALREADY_INITIALIZED, so the cases change
 * the settings by calling it again. Only lower bounds on time are checked
 * (a delay that did not happen fails; a slow machine never does): a delayed
 * signature takes >= the delay and still verifies with the public key, two
 * signatures through a capacity of one take >= twice the delay, and a bad
 * setting fails C_Initialize with a message naming it.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#include "gw_softhsm.h"
#include "gw_test.h"
#include "hsm.h"

#define DELAY_US 20000 /* 20 ms: far above the time SoftHSM takes to sign */

static struct gw_softhsm tok;
static const char *module_path;
static CK_FUNCTION_LIST *f;

static double
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Set the wrapper's settings (NULL: unset) and call its C_Initialize. */
static CK_RV
reinit(const char *us, const char *max)
{
	CK_C_INITIALIZE_ARGS a = {.flags = CKF_OS_LOCKING_OK};
	CK_RV rv;

	if (us != NULL)
		setenv("GW_P11DELAY_US", us, 1);
	else
		unsetenv("GW_P11DELAY_US");
	if (max != NULL)
		setenv("GW_P11DELAY_MAX", max, 1);
	else
		unsetenv("GW_P11DELAY_MAX");
	rv = f->C_Initialize(&a);
	return rv == CKR_CRYPTOKI_ALREADY_INITIALIZED ? CKR_OK : rv;
}

/* C_Initialize's return and what it printed on stderr, into msg[len]. */
static CK_RV
reinit_capture(const char *us, const char *max, char *msg, size_t len)
{
	char path[160];
	int fd, saved;
	ssize_t n;
	CK_RV rv;

	snprintf(path, sizeof(path), "%s/stderr", tok.dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return (CK_RV)-1;
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	rv = reinit(us, max);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, msg, len - 1, 0);
	msg[n > 0 ? n : 0] = '\0';
	close(fd);
	return rv;
}

/* A session on the token labelled label (logged in by the hsm API already). */
static CK_SESSION_HANDLE
session(const char *label)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	CK_SESSION_HANDLE s;

	if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return CK_INVALID_HANDLE;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		size_t k = strlen(label);

		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK || memcmp(ti.label, label, k) != 0 ||
			ti.label[k] != ' ')
			continue;
		if (f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
			return CK_INVALID_HANDLE;
		return s;
	}
	return CK_INVALID_HANDLE;
}

static CK_OBJECT_HANDLE
find_private(CK_SESSION_HANDLE s, const char *label)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	if (f->C_FindObjectsInit(s, t, 2) != CKR_OK)
		return CK_INVALID_HANDLE;
	if (f->C_FindObjects(s, &o, 1, &n) != CKR_OK)
		n = 0;
	f->C_FindObjectsFinal(s);
	return n == 1 ? o : CK_INVALID_HANDLE;
}

/* A software copy of the public half of an engine key. */
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

/* Does sig verify over msg with pub (SHA-256; PKCS#1 v1.5 for RSA)? */
static int
verify(EVP_PKEY *pub, const uint8_t *msg, size_t n, const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c != NULL && EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, pub) == 1 &&
		 EVP_DigestVerify(c, sig, siglen, msg, n) == 1;

	EVP_MD_CTX_free(c);
	ERR_clear_error();
	return ok;
}

/* Does PKCS#11's raw ECDSA signature r||s (P-256) verify over digest dg[32]? */
static int
raw_verify(EVP_PKEY *pub, const uint8_t dg[32], const uint8_t *rs, size_t len)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, (int)len / 2, NULL),
	       *s = BN_bin2bn(rs + len / 2, (int)len / 2, NULL);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pub, NULL);
	unsigned char *der = NULL;
	int n = -1, ok = 0;

	if (len != 64 || es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		goto out;
	}
	n = i2d_ECDSA_SIG(es, &der);
	ok = n > 0 && c != NULL && EVP_PKEY_verify_init(c) == 1 &&
	     EVP_PKEY_verify(c, der, (size_t)n, dg, 32) == 1;
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(c);
	ERR_clear_error();
	return ok;
}

/* --- two signers at once --------------------------------------------------------- */

struct signer {
	const char *token;
	pthread_barrier_t *go;
	CK_RV rv;
	double t0, t1; /* just before the C_Sign call, just after it returned */
};

static void *
signer_run(void *arg)
{
	struct signer *w = arg;
	CK_SESSION_HANDLE s = session(w->token);
	CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
	uint8_t dg[32] = {1}, sig[64];
	CK_ULONG siglen = sizeof(sig);
	CK_OBJECT_HANDLE k;

	w->rv = CKR_GENERAL_ERROR;
	k = s != CK_INVALID_HANDLE ? find_private(s, "k") : CK_INVALID_HANDLE;
	if (k != CK_INVALID_HANDLE && f->C_SignInit(s, &m, k) == CKR_OK) {
		pthread_barrier_wait(w->go);
		w->t0 = now_ms();
		w->rv = f->C_Sign(s, dg, sizeof(dg), sig, &siglen);
		w->t1 = now_ms();
	} else {
		pthread_barrier_wait(w->go);
	}
	if (s != CK_INVALID_HANDLE)
		f->C_CloseSession(s);
	return NULL;
}

/*
 * Two threads sign once each, released together: the time from the first
 * call to the last return, as the signers saw it (the main thread may run
 * late); < 0 on failure.
 */
static double
two_signers(const char *token)
{
	pthread_barrier_t go;
	struct signer w[2] = {{.token = token, .go = &go}, {.token = token, .go = &go}};
	pthread_t th[2];

	pthread_barrier_init(&go, NULL, 2);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, signer_run, &w[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	if (w[0].rv != CKR_OK || w[1].rv != CKR_OK)
		return -1;
	return (w[0].t1 > w[1].t1 ? w[0].t1 : w[1].t1) - (w[0].t0 < w[1].t0 ? w[0].t0 : w[1].t0);
}

int
main(void)
{
	struct gw_hsm *h = NULL;
	EVP_PKEY *key = NULL, *pub = NULL, *rkey = NULL, *rpub = NULL;
	char uri[GW_HSM_URI_MAX];
	void *dl;

	GW_TEST_BEGIN();
	module_path = getenv("GW_P11DELAY");
	if (module_path == NULL || access(module_path, R_OK) != 0) {
		fprintf(stderr,
			"GW_P11DELAY (the module's path, set by meson) is unset or unreadable\n");
		return 2;
	}
	if (access(GW_DEFAULT_PKCS11_MODULE, R_OK) != 0)
		GW_TEST_SKIP("no SoftHSM2 module at " GW_DEFAULT_PKCS11_MODULE);
	if (gw_softhsm_setup(&tok, "gwp11d") < 0)
		return 2;
	setenv("GW_P11DELAY_MODULE", GW_DEFAULT_PKCS11_MODULE, 1);
	setenv("GW_P11DELAY_US", "20000", 1);
	unsetenv("GW_P11DELAY_MAX");

	{ /* the hsm API through the wrapper: token, key, a delayed signature that verifies */
		struct gw_hsm_params p = {
			.module = module_path, .token = "d1", .pin_file = tok.pin};
		uint8_t msg[100] = "delayed", sig[256];
		size_t siglen = sizeof(sig);
		double t;

		EXPECT_OK(gw_hsm_token_init(&p, tok.so_pin));
		EXPECT_OK(gw_hsm_open(&p, &h));
		EXPECT_TRUE(h != NULL);
		if (h == NULL)
			goto out;
		EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_EC_P256, "k", uri));
		EXPECT_OK(gw_hsm_key_load(h, uri, &key));
		EXPECT_TRUE(key != NULL && (pub = soft_pub(key)) != NULL);
		if (pub == NULL)
			goto out;
		t = now_ms();
		EXPECT_OK(gw_hsm_sign(h, key, NULL, msg, sizeof(msg), sig, &siglen));
		t = now_ms() - t;
		printf("hsm API, GW_P11DELAY_US=20000: one signature %.1f ms\n", t);
		EXPECT_TRUE(t >= DELAY_US / 1e3);
		EXPECT_TRUE(verify(pub, msg, sizeof(msg), sig, siglen));
		/* an RSA key too, for the multi-part case below */
		EXPECT_OK(gw_hsm_keygen(h, GW_HSM_KEY_RSA_2048, "r", uri));
		EXPECT_OK(gw_hsm_key_load(h, uri, &rkey));
		EXPECT_TRUE(rkey != NULL && (rpub = soft_pub(rkey)) != NULL);
	}

	/* the same module straight: dlopen() of the same path is the same library */
	dl = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
	EXPECT_TRUE(dl != NULL);
	if (dl != NULL) {
		CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);

		*(void **)&get = dlsym(dl, "C_GetFunctionList");
		EXPECT_TRUE(get != NULL && get(&f) == CKR_OK && f != NULL);
	}
	if (f == NULL)
		goto out;

	{ /* C_Sign: the length query answers, the signature comes DELAY_US late and verifies */
		CK_SESSION_HANDLE s = session("d1");
		CK_OBJECT_HANDLE k =
			s != CK_INVALID_HANDLE ? find_private(s, "k") : CK_INVALID_HANDLE;
		CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
		uint8_t dg[32], sig[128];
		CK_ULONG len = 0;
		double t;

		EXPECT_TRUE(reinit("20000", NULL) == CKR_OK);
		EXPECT_TRUE(k != CK_INVALID_HANDLE);
		memset(dg, 0x5a, sizeof(dg));
		EXPECT_TRUE(f->C_SignInit(s, &m, k) == CKR_OK);
		t = now_ms();
		EXPECT_TRUE(f->C_Sign(s, dg, sizeof(dg), NULL, &len) == CKR_OK && len == 64);
		printf("C_Sign length query: %.2f ms\n", now_ms() - t);
		t = now_ms();
		EXPECT_TRUE(f->C_Sign(s, dg, sizeof(dg), sig, &len) == CKR_OK);
		t = now_ms() - t;
		printf("C_Sign, GW_P11DELAY_US=20000: %.1f ms\n", t);
		EXPECT_TRUE(t >= DELAY_US / 1e3);
		EXPECT_TRUE(raw_verify(pub, dg, sig, len));

		if (s != CK_INVALID_HANDLE)
			f->C_CloseSession(s);
	}

	{ /* C_SignFinal (multi-part; SoftHSM's ECDSA is single-part only, so RSA) */
		CK_SESSION_HANDLE s = session("d1");
		CK_OBJECT_HANDLE k =
			s != CK_INVALID_HANDLE ? find_private(s, "r") : CK_INVALID_HANDLE;
		CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
		uint8_t msg[] = "multi-part", sig[512];
		CK_ULONG len = 0;
		double t;

		EXPECT_TRUE(k != CK_INVALID_HANDLE);
		EXPECT_TRUE(f->C_SignInit(s, &m, k) == CKR_OK);
		EXPECT_TRUE(f->C_SignUpdate(s, msg, sizeof(msg)) == CKR_OK);
		EXPECT_TRUE(f->C_SignFinal(s, NULL, &len) == CKR_OK && len == 256);
		t = now_ms();
		EXPECT_TRUE(f->C_SignFinal(s, sig, &len) == CKR_OK);
		t = now_ms() - t;
		printf("C_SignFinal, GW_P11DELAY_US=20000: %.1f ms\n", t);
		EXPECT_TRUE(t >= DELAY_US / 1e3);
		EXPECT_TRUE(verify(rpub, msg, sizeof(msg), sig, len));
		if (s != CK_INVALID_HANDLE)
			f->C_CloseSession(s);
	}

	{ /* GW_P11DELAY_MAX=1: two signatures at once take turns */
		double t;

		EXPECT_TRUE(reinit("20000", "1") == CKR_OK);
		t = two_signers("d1");
		printf("two threads, GW_P11DELAY_US=20000 GW_P11DELAY_MAX=1: %.1f ms\n", t);
		EXPECT_TRUE(t >= 2 * DELAY_US / 1e3);
		/* no cap: both still sign (no bound on time either way) */
		EXPECT_TRUE(reinit("20000", "0") == CKR_OK);
		t = two_signers("d1");
		printf("two threads, GW_P11DELAY_US=20000 no cap: %.1f ms\n", t);
		EXPECT_TRUE(t >= DELAY_US / 1e3);
	}

	{ /* bad settings: C_Initialize fails and says which and why */
		static const char *const bad_us[] = {"2ms", "-1", " 5", "1.5", "0x10", "60000001",
			"99999999999999999999999", "5 "};
		char msg[512];

		for (size_t i = 0; i < sizeof(bad_us) / sizeof(bad_us[0]); i++) {
			char want[64];

			snprintf(want, sizeof(want), "GW_P11DELAY_US='%s'", bad_us[i]);
			EXPECT_TRUE(reinit_capture(bad_us[i], NULL, msg, sizeof(msg)) ==
				    CKR_GENERAL_ERROR);
			EXPECT_TRUE(strstr(msg, want) != NULL &&
				    strstr(msg, "not a whole number") != NULL);
			if (i == 0)
				printf("GW_P11DELAY_US=2ms: %s", msg);
		}
		EXPECT_TRUE(reinit_capture("0", "many", msg, sizeof(msg)) == CKR_GENERAL_ERROR);
		EXPECT_TRUE(strstr(msg, "GW_P11DELAY_MAX='many'") != NULL);
		/* the edges are accepted, and a good setting works again */
		EXPECT_TRUE(reinit_capture("60000000", "100000", msg, sizeof(msg)) == CKR_OK);
		EXPECT_TRUE(msg[0] == '\0');
		EXPECT_TRUE(reinit("", "") == CKR_OK);
	}

	{ /* delay 0 (unset): a signature through the hsm API still works */
		uint8_t m[8] = "x", sig[256];
		size_t siglen = sizeof(sig);

		EXPECT_TRUE(reinit(NULL, NULL) == CKR_OK);
		EXPECT_OK(gw_hsm_sign(h, key, NULL, m, sizeof(m), sig, &siglen));
	}
out:
	EVP_PKEY_free(rpub);
	EVP_PKEY_free(rkey);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(key);
	gw_hsm_close(h);
	gw_hsm_shutdown();
	(void)gw_softhsm_remove(&tok);
	GW_TEST_END();
}
