/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_test.h - the tiny unit-test harness every module's tests share.
 *
 *	int main(void)
 *	{
 *		GW_TEST_BEGIN();
 *		{ // a case: one block, its own locals
 *			EXPECT_OK(gw_thing_do(x));
 *			EXPECT_ERR(gw_thing_do(NULL), -EINVAL);
 *		}
 *		GW_TEST_END();
 *	}
 *
 * A failed expectation prints file:line, the expression, and the last
 * gw_err message, then the case goes on (so one run shows every failure).
 * GW_TEST_END() prints "N passed, N failed" and returns non-zero on failure,
 * which is what meson's test() reads. GW_TEST_SKIP() exits 77 (meson: skip).
 */
#ifndef GW_TEST_H
#define GW_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "gw_err.h"

static unsigned gw_test_pass_, gw_test_fail_;

#define GW_TEST_BEGIN()                            \
	do {                                       \
		setvbuf(stdout, NULL, _IONBF, 0);  \
		gw_test_pass_ = gw_test_fail_ = 0; \
	} while (0)

#define GW_TEST_END()                                                                         \
	do {                                                                                  \
		printf("%s: %u passed, %u failed\n", __FILE__, gw_test_pass_, gw_test_fail_); \
		return gw_test_fail_ ? 1 : 0;                                                 \
	} while (0)

#define GW_TEST_SKIP(why)                                 \
	do {                                              \
		printf("SKIP %s: %s\n", __FILE__, (why)); \
		exit(77);                                 \
	} while (0)

#define GW_TEST_FAIL_(fmt, ...)                                                           \
	do {                                                                              \
		gw_test_fail_++;                                                          \
		fprintf(stderr, "FAIL %s:%d: " fmt " [last error: %s at %s]\n", __FILE__, \
			__LINE__, __VA_ARGS__, gw_err_msg(),                              \
			gw_err_get()->where ? gw_err_get()->where : "-");                 \
	} while (0)

#define EXPECT_TRUE(c)                           \
	do {                                     \
		if (c)                           \
			gw_test_pass_++;         \
		else                             \
			GW_TEST_FAIL_("%s", #c); \
	} while (0)

#define EXPECT_OK(call)                                                          \
	do {                                                                     \
		long long r_ = (long long)(call);                                \
		if (r_ >= 0)                                                     \
			gw_test_pass_++;                                         \
		else                                                             \
			GW_TEST_FAIL_("%s returned %lld, want >= 0", #call, r_); \
	} while (0)

#define EXPECT_ERR(call, want)                                                       \
	do {                                                                         \
		long long r_ = (long long)(call), w_ = (long long)(want);            \
		if (r_ == w_)                                                        \
			gw_test_pass_++;                                             \
		else                                                                 \
			GW_TEST_FAIL_("%s returned %lld, want %lld", #call, r_, w_); \
	} while (0)

#define EXPECT_EQ(a, b)                                                          \
	do {                                                                     \
		long long a_ = (long long)(a), b_ = (long long)(b);              \
		if (a_ == b_)                                                    \
			gw_test_pass_++;                                         \
		else                                                             \
			GW_TEST_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_); \
	} while (0)

#define EXPECT_STREQ(a, b)                                                                  \
	do {                                                                                \
		const char *a_ = (a), *b_ = (b);                                            \
		if (a_ && b_ && strcmp(a_, b_) == 0)                                        \
			gw_test_pass_++;                                                    \
		else                                                                        \
			GW_TEST_FAIL_("%s == %s: '%s' != '%s'", #a, #b, a_ ? a_ : "(null)", \
				b_ ? b_ : "(null)");                                        \
	} while (0)

/* a contains b (error messages are checked this way). */
#define EXPECT_CONTAINS(a, b)                                                           \
	do {                                                                            \
		const char *a_ = (a), *b_ = (b);                                        \
		if (a_ && b_ && strstr(a_, b_))                                         \
			gw_test_pass_++;                                                \
		else                                                                    \
			GW_TEST_FAIL_("'%s' does not contain '%s'", a_ ? a_ : "(null)", \
				b_ ? b_ : "(null)");                                    \
	} while (0)

/*
 * A TCP port on 127.0.0.1 free at the time of the call (the kernel picks
 * it), for a server the test starts itself (etcd, cfssl). Exits 2 if none.
 */
static inline unsigned short
gw_test_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (void *)&a, sizeof(a)) < 0 || getsockname(fd, (void *)&a, &l) < 0)
		exit(2);
	close(fd);
	return ntohs(a.sin_port);
}

#endif /* GW_TEST_H */
