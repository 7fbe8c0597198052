/* SPDX-License-Identifier: BSD-3-Clause */
/* gw_ossl.c - OpenSSL setup of our processes: see gw_ossl.h. */
#define OPENSSL_SUPPRESS_DEPRECATED /* ENGINE: the only lever 3.0 offers here */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "gw_ossl.h"

#define EC_ENGINE_ID "mtlsgw-ec"

static int
ec_meths(ENGINE *e, EVP_PKEY_METHOD **pm, const int **nids, int nid)
{
	static const int ours[] = {EVP_PKEY_EC};

	(void)e;
	if (pm == NULL) { /* the list of key types we serve */
		*nids = ours;
		return 1;
	}
	*pm = nid == EVP_PKEY_EC ? (EVP_PKEY_METHOD *)EVP_PKEY_meth_find(EVP_PKEY_EC) : NULL;
	return *pm != NULL;
}

/* the outcome of the one install, for every caller (gw_err is per thread) */
static char ec_why[256];
static pthread_once_t ec_once = PTHREAD_ONCE_INIT;

static void
ec_fail(const char *what)
{
	unsigned long e = ERR_get_error();

	snprintf(ec_why, sizeof(ec_why), "%s%s%s", what, e ? ": " : "",
		e ? ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?" : "");
	ERR_clear_error();
}

static void
ec_install(void)
{
	ENGINE *e = NULL;

	if (EVP_PKEY_meth_find(EVP_PKEY_EC) == NULL) {
		ec_fail("OpenSSL has no built-in EC key method");
		return;
	}
	e = ENGINE_new();
	if (e == NULL || ENGINE_set_id(e, EC_ENGINE_ID) != 1 ||
		ENGINE_set_name(e, "mtlsgw: OpenSSL's built-in EC methods") != 1 ||
		ENGINE_set_pkey_meths(e, ec_meths) != 1 || ENGINE_add(e) != 1) {
		ec_fail("cannot create the " EC_ENGINE_ID " engine");
		ENGINE_free(e);
		return;
	}
	if (ENGINE_init(e) != 1) {
		ec_fail("cannot initialise the " EC_ENGINE_ID " engine");
		ENGINE_free(e);
		return;
	}
	if (ENGINE_set_default_pkey_meths(e) != 1)
		ec_fail("cannot make " EC_ENGINE_ID " the default EC method");
	/* the engine list and the default registration hold their own references */
	ENGINE_finish(e);
	ENGINE_free(e);
}

int
gw_ossl_ec_builtin(void)
{
	pthread_once(&ec_once, ec_install);
	if (ec_why[0] != '\0')
		return gw_err_setf(-GW_E_TLS, GW_HERE, "%s", ec_why);
	return 0;
}

bool
gw_ossl_ec_builtin_on(void)
{
	ENGINE *e = ENGINE_get_pkey_meth_engine(EVP_PKEY_EC);
	bool on = e != NULL && strcmp(ENGINE_get_id(e), EC_ENGINE_ID) == 0;

	ENGINE_finish(e);
	return on;
}
