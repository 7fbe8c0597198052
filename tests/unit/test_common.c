/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_common.c - the shared error slot.
 */
#include <pthread.h>

#include <openssl/evp.h>
#include <openssl/err.h>

#include "gw_test.h"

static int
raise_in(void)
{
	GW_ENSURE(1 == 2, -EINVAL);
	return 0;
}

static void *
other_thread(void *arg)
{
	(void)arg;
	/* a fresh thread starts with an empty slot */
	return (void *)(long)gw_err_get()->code;
}

int
main(void)
{
	GW_TEST_BEGIN();
	{
		EXPECT_ERR(raise_in(), -EINVAL);
		EXPECT_EQ(gw_err_get()->code, -EINVAL);
		EXPECT_CONTAINS(gw_err_get()->where, "test_common.c:");
		EXPECT_STREQ(gw_err_msg(), "Invalid argument");
	}
	{
		EXPECT_ERR(gw_err_setf(-GW_E_HSM_PIN, GW_HERE, "PIN rejected by token '%s'", "gw"),
			-GW_E_HSM_PIN);
		EXPECT_STREQ(gw_err_msg(), "PIN rejected by token 'gw'");
		EXPECT_STREQ(gw_err_name(-GW_E_HSM_PIN), "GW_E_HSM_PIN");
	}
	{
		/* OpenSSL's reason is appended to ours */
		EXPECT_TRUE(EVP_get_digestbyname("no-such-digest") == NULL);
		ERR_raise_data(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM, "x");
		gw_err_setf(-GW_E_TLS, GW_HERE, "loading digest");
		EXPECT_ERR(gw_err_add_ossl(), -GW_E_TLS);
		EXPECT_CONTAINS(gw_err_msg(), "loading digest: error:");
		EXPECT_EQ(ERR_peek_error(), 0);
	}
	{
		pthread_t t;
		void *ret = (void *)1;

		gw_err_set(-ENOMEM, GW_HERE);
		EXPECT_EQ(pthread_create(&t, NULL, other_thread, NULL), 0);
		pthread_join(t, &ret);
		EXPECT_EQ((long)ret, 0);
		EXPECT_EQ(gw_err_get()->code, -ENOMEM);
		gw_err_clear();
		EXPECT_EQ(gw_err_get()->code, 0);
	}
	GW_TEST_END();
}
