/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * p11_delay.c - a PKCS#11 module that is SoftHSM2 with a slow signer: what a
 * network HSM (Luna, CloudHSM, nShield: 1-5 ms a signature) looks like to
 * its caller, for the tests and for `bench/run --hsm-delay`.
 *
 * Built as libgw_p11delay.so (tests/lib/meson.build). It dlopen()s the real
 * module and hands out a copy of its function list in which only these differ:
 *   C_Initialize  reads the settings below (again on every call, so a
 *                 process can change them between C_Finalize and
 *                 C_Initialize), then forwards
 *   C_Sign        a call that makes a signature (pSignature != NULL and the
 *   C_SignFinal   real call returns CKR_OK) returns GW_P11DELAY_US later;
 *                 the length query (pSignature NULL) and CKR_BUFFER_TOO_SMALL
 *                 are not delayed. With GW_P11DELAY_MAX = N > 0, at most N
 *                 signatures are in the "HSM" at once (its capacity); callers
 *                 beyond that wait their turn. The wait and the delay are
 *                 both inside the call, as a blocking PKCS#11 call would be.
 * Everything else (C_SignInit included) is the real module's own function.
 *
 * Environment:
 *   GW_P11DELAY_MODULE  the real module (default /usr/lib/softhsm/libsofthsm2.so),
 *                       read once, at the first C_GetFunctionList
 *   GW_P11DELAY_US      delay per signature, microseconds, 0..60000000 (default 0)
 *   GW_P11DELAY_MAX     signatures at once, 0..100000; 0 = no limit (default 0)
 * Values are decimal digits only: anything else makes C_Initialize print
 * "gw_p11delay: GW_P11DELAY_US='2ms' is not ..." on stderr and return
 * CKR_GENERAL_ERROR without initialising the real module. A module that
 * cannot be loaded makes C_GetFunctionList say so and return CKR_GENERAL_ERROR.
 *
 * Thread-safe: the settings and the capacity count are under one mutex; the
 * real module is called as its caller asked (CKF_OS_LOCKING_OK passes
 * through). After fork() the child starts with an empty HSM (no signature
 * of the parent's other threads is in flight there).
 * Test code only: nothing of the product links or installs it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#define P11DELAY_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define P11DELAY_US_MAX 60000000UL /* one minute: a bigger delay is a typo */
#define P11DELAY_CAP_MAX 100000UL

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_free = PTHREAD_COND_INITIALIZER;
static unsigned long delay_us; /* under lock */
static unsigned long cap;      /* under lock; 0: unlimited */
static unsigned long busy;     /* signatures in the "HSM" now; under lock */

static void *real_dl;            /* the real module; never dlclose()d */
static CK_FUNCTION_LIST *real;   /* its function list */
static CK_FUNCTION_LIST wrapped; /* what callers get */
static int loaded;               /* under lock: real and wrapped are set */

/*
 * Strict unsigned decimal: digits only, no sign, no space, no unit, <= max.
 * Unset or empty: dflt. 0, or -1 with the reason on stderr.
 */
static int
env_ulong(const char *name, unsigned long max, unsigned long dflt, unsigned long *out)
{
	const char *s = getenv(name);
	unsigned long v = 0;

	if (s == NULL || *s == '\0') {
		*out = dflt;
		return 0;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || v > (max - (unsigned long)(*p - '0')) / 10) {
			fprintf(stderr,
				"gw_p11delay: %s='%.40s' is not a whole number from 0 to %lu "
				"(decimal digits only, no unit)\n",
				name, s, max);
			return -1;
		}
		v = v * 10 + (unsigned long)(*p - '0');
	}
	*out = v;
	return 0;
}

static CK_RV
d_initialize(void *args)
{
	unsigned long us, max;

	if (env_ulong("GW_P11DELAY_US", P11DELAY_US_MAX, 0, &us) < 0 ||
		env_ulong("GW_P11DELAY_MAX", P11DELAY_CAP_MAX, 0, &max) < 0)
		return CKR_GENERAL_ERROR;
	pthread_mutex_lock(&lock);
	delay_us = us;
	cap = max;
	pthread_cond_broadcast(&slot_free); /* a raised cap lets waiters in */
	pthread_mutex_unlock(&lock);
	return real->C_Initialize(args);
}

/*
 * fork(): only the forking thread goes on in the child, so no signature is
 * in flight there and the lock must not be held by a thread that is gone.
 */
static void
fork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void
fork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

static void
fork_child(void)
{
	busy = 0;
	pthread_mutex_unlock(&lock);
}

/* Wait for room in the "HSM"; returns the delay to apply, in microseconds. */
static unsigned long
slot_take(void)
{
	unsigned long us;

	pthread_mutex_lock(&lock);
	while (cap != 0 && busy >= cap)
		pthread_cond_wait(&slot_free, &lock);
	busy++;
	us = delay_us;
	pthread_mutex_unlock(&lock);
	return us;
}

static void
slot_give(void)
{
	pthread_mutex_lock(&lock);
	if (busy > 0)
		busy--;
	pthread_cond_signal(&slot_free);
	pthread_mutex_unlock(&lock);
}

/* Sleep until start + us on the monotonic clock (signals do not cut it short). */
static void
sleep_until(const struct timespec *start, unsigned long us)
{
	struct timespec t = *start;

	if (us == 0)
		return;
	t.tv_sec += (time_t)(us / 1000000);
	t.tv_nsec += (long)(us % 1000000) * 1000;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
		;
}

/*
 * The signature is made at once and handed back us later: the HSM's time
 * on the wire and in its queue, which is what the caller waits for.
 */
static CK_RV
d_sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG n, CK_BYTE_PTR sig, CK_ULONG_PTR siglen)
{
	struct timespec start;
	unsigned long us;
	CK_RV rv;

	if (sig == NULL) /* the length query of the two-call convention */
		return real->C_Sign(s, data, n, sig, siglen);
	us = slot_take();
	clock_gettime(CLOCK_MONOTONIC, &start);
	rv = real->C_Sign(s, data, n, sig, siglen);
	if (rv == CKR_OK)
		sleep_until(&start, us);
	slot_give();
	return rv;
}

static CK_RV
d_sign_final(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG_PTR siglen)
{
	struct timespec start;
	unsigned long us;
	CK_RV rv;

	if (sig == NULL)
		return real->C_SignFinal(s, sig, siglen);
	us = slot_take();
	clock_gettime(CLOCK_MONOTONIC, &start);
	rv = real->C_SignFinal(s, sig, siglen);
	if (rv == CKR_OK)
		sleep_until(&start, us);
	slot_give();
	return rv;
}

/* Load the real module once; 0, or -1 with the reason on stderr. Under lock. */
static int
load_real(void)
{
	const char *path = getenv("GW_P11DELAY_MODULE");
	CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
	CK_RV rv;

	if (path == NULL || *path == '\0')
		path = P11DELAY_DEFAULT_MODULE;
	dlerror();
	real_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (real_dl == NULL) {
		const char *why = dlerror();

		fprintf(stderr,
			"gw_p11delay: cannot load the real module '%s' (GW_P11DELAY_MODULE): %s\n",
			path, why ? why : "dlopen failed");
		return -1;
	}
	*(void **)&get_list = dlsym(real_dl, "C_GetFunctionList");
	if (get_list == NULL) {
		fprintf(stderr,
			"gw_p11delay: '%s' is not a PKCS#11 module (no C_GetFunctionList)\n", path);
		goto fail;
	}
	rv = get_list(&real);
	if (rv != CKR_OK || real == NULL) {
		fprintf(stderr, "gw_p11delay: C_GetFunctionList of '%s' failed: 0x%lx\n", path,
			(unsigned long)rv);
		goto fail;
	}
	if (real->version.major != 2) {
		fprintf(stderr, "gw_p11delay: '%s' speaks PKCS#11 %u.%u; this wrapper knows 2.x\n",
			path, real->version.major, real->version.minor);
		goto fail;
	}
	if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0) {
		fprintf(stderr, "gw_p11delay: pthread_atfork failed\n");
		goto fail;
	}
	wrapped = *real;
	wrapped.C_Initialize = d_initialize;
	wrapped.C_GetFunctionList = C_GetFunctionList;
	wrapped.C_Sign = d_sign;
	wrapped.C_SignFinal = d_sign_final;
	return 0;
fail:
	dlclose(real_dl);
	real_dl = NULL;
	real = NULL;
	return -1;
}

__attribute__((visibility("default"))) CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	CK_RV rv = CKR_OK;

	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&lock);
	if (!loaded) {
		if (load_real() == 0)
			loaded = 1;
		else
			rv = CKR_GENERAL_ERROR;
	}
	pthread_mutex_unlock(&lock);
	if (rv == CKR_OK)
		*list = &wrapped;
	return rv;
}
