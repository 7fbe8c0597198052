/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_hsm.c - `mtlsgw-bench hsm`: signatures per second through the HSM.
 *
 * Signs through libp11's engine (hsm/hsm.h) with 1 thread and N threads, each
 * thread with its own handle as the workers do, next to OpenSSL signing with
 * an in-memory key of the same type in the same run: the ratio is the figure,
 * not the absolute number. Every thread's first signature is verified, so a
 * broken setup cannot report a fast zero. Without --key it makes a throwaway
 * SoftHSM token in a temporary directory and removes it afterwards.
 */
#include <ftw.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "hsm.h"

int gw_bench_hsm_main(int argc, char **argv);

struct bench {
	struct gw_hsm_params p;
	const char *uri;
	enum gw_hsm_key_type type;
	EVP_PKEY *soft; /* in-memory key, NULL for the HSM runs */
	double seconds;
	atomic_int go;
	atomic_int stop;
};

struct worker {
	struct bench *b;
	pthread_t tid;
	unsigned long signs;
	int rc;
	char err[GW_ERR_MSG_MAX];
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const EVP_MD *
md_of(enum gw_hsm_key_type t)
{
	return t == GW_HSM_KEY_EC_P384 ? EVP_sha384() : EVP_sha256();
}

static int
verify(EVP_PKEY *k, const EVP_MD *md, const uint8_t *m, size_t n, const uint8_t *sig, size_t sl)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestVerifyInit(c, NULL, md, NULL, k) == 1 &&
		 EVP_DigestVerify(c, sig, sl, m, n) == 1;

	EVP_MD_CTX_free(c);
	return ok;
}

static void *
run(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	const EVP_MD *md = md_of(b->type);
	struct gw_hsm *h = NULL;
	EVP_PKEY *k = b->soft;
	uint8_t msg[32], sig[1024];
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	/* set-up outside the timed part: each thread its own handle, like a worker */
	if (k == NULL) {
		if ((w->rc = gw_hsm_open(&b->p, &h)) == 0)
			w->rc = gw_hsm_key_load(h, b->uri, &k);
		if (w->rc < 0)
			snprintf(w->err, sizeof(w->err), "%s", gw_err_msg());
	}
	RAND_bytes(msg, sizeof(msg));
	while (!atomic_load(&b->go))
		sched_yield();
	for (unsigned long i = 0;
		w->rc == 0 && !atomic_load_explicit(&b->stop, memory_order_relaxed); i++) {
		size_t sl = sizeof(sig);

		msg[0] = (uint8_t)i;
		if (EVP_DigestSignInit(c, NULL, md, NULL, k) != 1 ||
			EVP_DigestSign(c, sig, &sl, msg, sizeof(msg)) != 1) {
			w->rc = -1;
			snprintf(w->err, sizeof(w->err), "signing failed");
			break;
		}
		if (i == 0 && !verify(k, md, msg, sizeof(msg), sig, sl)) {
			w->rc = -1;
			snprintf(w->err, sizeof(w->err), "signature does not verify");
			break;
		}
		w->signs++;
	}
	EVP_MD_CTX_free(c);
	if (k != b->soft)
		EVP_PKEY_free(k);
	gw_hsm_close(h);
	return NULL;
}

/* Signatures per second with n threads; <0 on failure (message printed). */
static double
measure(struct bench *b, int n)
{
	struct worker *w = calloc((size_t)n, sizeof(*w));
	unsigned long total = 0;
	double t0, t1;
	int bad = 0;

	if (w == NULL)
		return -1;
	atomic_store(&b->go, 0);
	atomic_store(&b->stop, 0);
	for (int i = 0; i < n; i++) {
		w[i].b = b;
		if (pthread_create(&w[i].tid, NULL, run, &w[i]) != 0) {
			n = i;
			bad = 1;
			break;
		}
	}
	usleep(200000); /* let every thread open its handle before the clock starts */
	t0 = now();
	atomic_store(&b->go, 1);
	while (!bad && now() - t0 < b->seconds)
		usleep(10000);
	atomic_store(&b->stop, 1);
	t1 = now();
	atomic_store(&b->go, 1);
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].tid, NULL);
		if (w[i].rc != 0) {
			fprintf(stderr, "mtlsgw-bench hsm: thread %d: %s\n", i, w[i].err);
			bad = 1;
		}
		total += w[i].signs;
	}
	free(w);
	return bad ? -1 : (double)total / (t1 - t0);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A throwaway SoftHSM token with one key of type t, under dir. */
static int
make_token(struct bench *b, char *dir, char *pin_file, char *uri)
{
	char path[512], so[512], conf[1024];
	struct gw_hsm *h = NULL;
	uint8_t r[12];
	FILE *f;
	int rc;

	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/tokens", dir);
	mkdir(path, 0700);
	snprintf(conf, sizeof(conf),
		"directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
		dir);
	snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
	f = fopen(path, "w");
	if (f == NULL || fputs(conf, f) < 0 || fclose(f) != 0)
		return -1;
	setenv("SOFTHSM2_CONF", path, 1);
	/* random PINs, in 0600 files only */
	snprintf(pin_file, 512, "%s/pin", dir);
	snprintf(so, sizeof(so), "%s/sopin", dir);
	for (int i = 0; i < 2; i++) {
		umask(077);
		f = fopen(i ? so : pin_file, "w");
		RAND_bytes(r, sizeof(r));
		for (size_t j = 0; f && j < sizeof(r); j++)
			fprintf(f, "%02x", r[j]);
		if (f == NULL || fclose(f) != 0)
			return -1;
	}
	b->p.token = "bench";
	b->p.pin_file = pin_file;
	rc = gw_hsm_token_init(&b->p, so);
	if (rc == 0)
		rc = gw_hsm_open(&b->p, &h);
	if (rc == 0)
		rc = gw_hsm_keygen(h, b->type, "bench", uri);
	gw_hsm_close(h);
	return rc;
}

static EVP_PKEY *
soft_key(enum gw_hsm_key_type t)
{
	switch (t) {
	case GW_HSM_KEY_EC_P256:
		return EVP_EC_gen("P-256");
	case GW_HSM_KEY_EC_P384:
		return EVP_EC_gen("P-384");
	case GW_HSM_KEY_RSA_2048:
		return EVP_RSA_gen(2048);
	case GW_HSM_KEY_RSA_3072:
		return EVP_RSA_gen(3072);
	default:
		return NULL;
	}
}

static const char usage[] =
	"usage: mtlsgw-bench hsm [--threads N] [--seconds S] [--type "
	"ec-p256|ec-p384|rsa-2048|rsa-3072]\n"
	"                        [--key URI --pin-file FILE [--module PATH]]\n\n"
	"Signatures per second through the PKCS#11 engine, 1 thread and N threads (each\n"
	"its own handle), next to OpenSSL with an in-memory key of the same type.\n"
	"Without --key: a throwaway SoftHSM token in a temporary directory.\n";

int
gw_bench_hsm_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"threads", required_argument, NULL, 't'},
		{"seconds", required_argument, NULL, 's'},
		{"type", required_argument, NULL, 'y'},
		{"key", required_argument, NULL, 'k'},
		{"pin-file", required_argument, NULL, 'p'},
		{"module", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct bench b = {.seconds = 3, .type = GW_HSM_KEY_EC_P256};
	char dir[400], pin_file[512], uri[GW_HSM_URI_MAX];
	double hsm1, hsmn, soft1, softn;
	bool own_token = false;
	int threads = 4, c, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			threads = atoi(optarg);
			break;
		case 's':
			b.seconds = atof(optarg);
			break;
		case 'y':
			b.type = gw_hsm_key_type_parse(optarg);
			break;
		case 'k':
			b.uri = optarg;
			break;
		case 'p':
			b.p.pin_file = optarg;
			break;
		case 'm':
			b.p.module = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (threads < 1 || threads > 256 || b.seconds <= 0 || b.seconds > 3600 ||
		b.type == GW_HSM_KEY_NONE) {
		fprintf(stderr, "mtlsgw-bench hsm: bad --threads, --seconds or --type\n%s", usage);
		return 2;
	}
	if (b.uri != NULL && b.p.pin_file == NULL) {
		fprintf(stderr, "mtlsgw-bench hsm: --key needs --pin-file\n");
		return 2;
	}
	if (b.uri == NULL) {
		const char *tmp = getenv("TMPDIR");

		snprintf(dir, sizeof(dir), "%s/gwbench.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
		if (make_token(&b, dir, pin_file, uri) != 0) {
			fprintf(stderr, "mtlsgw-bench hsm: cannot set up a SoftHSM token: %s\n",
				gw_err_msg());
			goto out;
		}
		own_token = true;
		b.uri = uri;
	}
	b.soft = NULL;
	hsm1 = measure(&b, 1);
	hsmn = hsm1 < 0 ? -1 : measure(&b, threads);
	b.soft = soft_key(b.type);
	soft1 = b.soft ? measure(&b, 1) : -1;
	softn = soft1 < 0 ? -1 : measure(&b, threads);
	if (hsm1 < 0 || hsmn < 0 || soft1 < 0 || softn < 0)
		goto out;
	printf("mtlsgw-bench hsm: %s signatures (%s), %.1f s per row, key %s\n",
		gw_hsm_key_type_name(b.type), EVP_MD_get0_name(md_of(b.type)), b.seconds, b.uri);
	printf("%-22s %7s %12s %10s\n", "signer", "threads", "signs/s", "hsm/mem");
	printf("%-22s %7d %12.0f %10s\n", "openssl in-memory", 1, soft1, "");
	printf("%-22s %7d %12.0f %9.3fx\n", "pkcs11 engine (hsm)", 1, hsm1, hsm1 / soft1);
	printf("%-22s %7d %12.0f %10s\n", "openssl in-memory", threads, softn, "");
	printf("%-22s %7d %12.0f %9.3fx\n", "pkcs11 engine (hsm)", threads, hsmn, hsmn / softn);
	printf("scaling 1 -> %d threads: hsm %.2fx, in-memory %.2fx (%ld cores online)\n", threads,
		hsmn / hsm1, softn / soft1, sysconf(_SC_NPROCESSORS_ONLN));
	rc = 0;
out:
	EVP_PKEY_free(b.soft);
	gw_hsm_shutdown();
	if (own_token)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
