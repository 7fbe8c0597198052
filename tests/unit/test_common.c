/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_common.c - common/: the per-thread error slot (gw_err_*) and the
 * GW_HERE / GW_ENSURE / GW_GUARD / GW_GUARD_OSSL macros every module uses.
 * Each case checks what a caller relies on: the code returned and
 * recorded, the raise site, the message (formatted, truncated, with
 * OpenSSL's reason appended), names for every code, and one slot per thread;
 * the one duration parser (gw_duration_*) config, admin API and CLI share;
 * CPU sets as lists (gw_cpus_*: runs, the empty set, a cut buffer);
 * and gw_log's syslog priorities when stderr is the journal (JOURNAL_STREAM).
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "gw_cpus.h"
#include "gw_duration.h"
#include "gw_log.h"
#include "gw_test.h"

static unsigned evals; /* how often a macro evaluated its argument */

static int
count(int rc)
{
	evals++;
	return rc;
}

static char ensure_at[64]; /* GW_HERE of the GW_ENSURE below */

static int
ensure(int ok)
{
	/* the raise site must be this line, not the caller's */
	snprintf(ensure_at, sizeof(ensure_at), "%s:%d", __FILE__, __LINE__ + 1);
	GW_ENSURE(ok, -EINVAL);
	return 0;
}

/* returns 7 when x passed the guard, x when the guard returned it */
static int
guard(int x)
{
	GW_GUARD(count(x));
	return 7;
}

static int
guard_ossl(int x)
{
	GW_GUARD_OSSL(count(x), -GW_E_TLS);
	return 0;
}

static void *
other_thread(void *arg)
{
	long *seen = arg;

	/* a fresh thread starts with an empty slot, and raising here ... */
	seen[0] = gw_err_get()->code;
	seen[1] = gw_err_get()->where != NULL;
	gw_err_setf(-EIO, GW_HERE, "thread's own error");
	return NULL;
}

int
main(void)
{
	GW_TEST_BEGIN();
	{
		/* GW_HERE is "file:line" of where it is written */
		char want[64];
		const char *here = GW_HERE;

		snprintf(want, sizeof(want), "%s:%d", __FILE__, __LINE__ - 2);
		EXPECT_STREQ(here, want);
	}
	{
		/* gw_err_set: returns and records the code and place, clears msg */
		EXPECT_ERR(gw_err_setf(-GW_E_HSM, "a:1", "old message"), -GW_E_HSM);
		EXPECT_ERR(gw_err_set(-ENOENT, "b:2"), -ENOENT);
		EXPECT_EQ(gw_err_get()->code, -ENOENT);
		EXPECT_STREQ(gw_err_get()->where, "b:2");
		EXPECT_STREQ(gw_err_get()->msg, "");
		/* no message of its own: gw_err_msg names the errno */
		EXPECT_STREQ(gw_err_msg(), "No such file or directory");
	}
	{
		/* GW_ENSURE: a true condition passes and leaves the slot alone */
		gw_err_clear();
		EXPECT_OK(ensure(1));
		EXPECT_EQ(gw_err_get()->code, 0);
		EXPECT_TRUE(gw_err_get()->where == NULL);
		/* a false one returns the code, recorded at the GW_ENSURE line */
		EXPECT_ERR(ensure(0), -EINVAL);
		EXPECT_EQ(gw_err_get()->code, -EINVAL);
		EXPECT_STREQ(gw_err_get()->where, ensure_at);
		EXPECT_STREQ(gw_err_msg(), "Invalid argument");
	}
	{
		/* GW_GUARD: negative returns propagate, 0 and positive go on,
		 * the expression is evaluated once */
		evals = 0;
		EXPECT_EQ(guard(0), 7);
		EXPECT_EQ(guard(5), 7);
		EXPECT_EQ(guard(-ENOSPC), -ENOSPC);
		EXPECT_EQ(guard(-GW_E_CONFIG), -GW_E_CONFIG);
		EXPECT_EQ(evals, 4);
	}
	{
		/* GW_GUARD_OSSL: only 1 is success (0 and -1 both fail), once */
		ERR_clear_error();
		evals = 0;
		EXPECT_OK(guard_ossl(1));
		EXPECT_ERR(guard_ossl(0), -GW_E_TLS);
		EXPECT_CONTAINS(gw_err_get()->where, "test_common.c:");
		EXPECT_ERR(guard_ossl(-1), -GW_E_TLS);
		EXPECT_ERR(guard_ossl(2), -GW_E_TLS);
		EXPECT_EQ(evals, 4);
		/* with an OpenSSL error queued, its reason becomes the message */
		ERR_raise_data(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM, "x");
		EXPECT_ERR(guard_ossl(0), -GW_E_TLS);
		EXPECT_CONTAINS(gw_err_msg(), "unsupported algorithm");
		EXPECT_TRUE(strncmp(gw_err_msg(), ": ", 2) != 0); /* no empty prefix */
		EXPECT_EQ(ERR_peek_error(), 0);
	}
	{
		/* gw_err_setf: formats, returns the code */
		EXPECT_ERR(gw_err_setf(-GW_E_HSM_PIN, GW_HERE, "PIN rejected by token '%s' (%d)",
				   "gw", 3),
			-GW_E_HSM_PIN);
		EXPECT_STREQ(gw_err_msg(), "PIN rejected by token 'gw' (3)");
		EXPECT_EQ(gw_err_get()->code, -GW_E_HSM_PIN);
		/* gw_err_add_ossl with an empty queue: message and code unchanged */
		ERR_clear_error();
		EXPECT_ERR(gw_err_add_ossl(), -GW_E_HSM_PIN);
		EXPECT_STREQ(gw_err_msg(), "PIN rejected by token 'gw' (3)");
	}
	{
		/* gw_err_add_ossl: ours, ": ", the first queued reason; queue emptied */
		ERR_clear_error();
		gw_err_setf(-GW_E_TLS, GW_HERE, "loading '%s'", "ca.pem");
		ERR_raise(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM);
		ERR_raise(ERR_LIB_EVP, EVP_R_BAD_DECRYPT);
		EXPECT_ERR(gw_err_add_ossl(), -GW_E_TLS);
		EXPECT_CONTAINS(gw_err_msg(), "loading 'ca.pem': error:");
		EXPECT_CONTAINS(gw_err_msg(), "unsupported algorithm");
		EXPECT_TRUE(strstr(gw_err_msg(), "bad decrypt") == NULL);
		EXPECT_EQ(ERR_peek_error(), 0);
	}
	{
		/* a message longer than the slot is cut, still terminated, and an
		 * OpenSSL reason appended to a full slot does not overflow it */
		char big[2 * GW_ERR_MSG_MAX];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		gw_err_setf(-EIO, GW_HERE, "%s", big);
		EXPECT_EQ(strlen(gw_err_msg()), GW_ERR_MSG_MAX - 1);
		ERR_raise(ERR_LIB_EVP, EVP_R_BAD_DECRYPT);
		EXPECT_ERR(gw_err_add_ossl(), -EIO);
		EXPECT_EQ(strlen(gw_err_msg()), GW_ERR_MSG_MAX - 1);
		/* OpenSSL's reason follows a long message and is cut at the end */
		gw_err_setf(-EIO, GW_HERE, "%.*s", GW_ERR_MSG_MAX - 40, big);
		ERR_raise(ERR_LIB_EVP, EVP_R_BAD_DECRYPT);
		gw_err_add_ossl();
		EXPECT_EQ(strlen(gw_err_msg()), GW_ERR_MSG_MAX - 1);
		EXPECT_EQ(gw_err_msg()[GW_ERR_MSG_MAX - 40], ':');
	}
	{
		/* gw_err_clear empties the slot */
		gw_err_setf(-EIO, GW_HERE, "x");
		gw_err_clear();
		EXPECT_EQ(gw_err_get()->code, 0);
		EXPECT_TRUE(gw_err_get()->where == NULL);
		EXPECT_STREQ(gw_err_msg(), "OK");
		/* our codes without a message are named, not strerror'd */
		gw_err_set(-GW_E_TRUST, GW_HERE);
		EXPECT_STREQ(gw_err_msg(), "GW_E_TRUST");
	}
	{
		/* every GW_E_* code has its own name, either sign */
		for (int c = GW_E_BASE + 1; c < GW_E_MAX; c++) {
			const char *n = gw_err_name(-c);

			EXPECT_TRUE(n != NULL && strncmp(n, "GW_E_", 5) == 0);
			EXPECT_STREQ(gw_err_name(c), n);
			for (int d = GW_E_BASE + 1; d < c; d++)
				EXPECT_TRUE(strcmp(gw_err_name(-d), n) != 0);
		}
		EXPECT_STREQ(gw_err_name(-GW_E_CA), "GW_E_CA");
		EXPECT_STREQ(gw_err_name(-EINVAL), "EINVAL");
		EXPECT_STREQ(gw_err_name(-ENOMEM), "ENOMEM");
		EXPECT_STREQ(gw_err_name(0), "OK");
		/* outside both ranges: a generic name, never NULL or a crash */
		EXPECT_STREQ(gw_err_name(-GW_E_BASE), "error");
		EXPECT_STREQ(gw_err_name(-GW_E_MAX), "error");
		EXPECT_STREQ(gw_err_name(-ERANGE), "error");
		EXPECT_STREQ(gw_err_name(INT_MIN), "error");
		EXPECT_STREQ(gw_err_name(INT_MAX), "error");
		gw_err_set(INT_MIN, GW_HERE);
		EXPECT_STREQ(gw_err_msg(), "error");
	}
	{
		/* one slot per thread: neither sees the other's error */
		pthread_t t;
		long seen[2] = {-1, -1};

		gw_err_setf(-ENOMEM, "main:1", "main's error");
		EXPECT_EQ(pthread_create(&t, NULL, other_thread, seen), 0);
		pthread_join(t, NULL);
		EXPECT_EQ(seen[0], 0);
		EXPECT_EQ(seen[1], 0);
		EXPECT_EQ(gw_err_get()->code, -ENOMEM);
		EXPECT_STREQ(gw_err_get()->where, "main:1");
		EXPECT_STREQ(gw_err_msg(), "main's error");
	}
	{
		/* durations: every unit, in seconds */
		static const struct {
			const char *in;
			uint64_t secs;
		} ok[] = {{"90s", 90}, {"5m", 300}, {"24h", 86400}, {"30d", 2592000},
			{"10y", 315360000}, {"1s", 1}, {"007s", 7}};
		uint64_t v;

		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
			v = 0;
			EXPECT_OK(gw_duration_parse(ok[i].in, &v));
			EXPECT_EQ(v, ok[i].secs);
		}
	}
	{
		/* durations: what is refused, and *secs is left alone then */
		static const char *const bad[] = {"", "5", "0s", "0ms", "-5m", "+5m", " 5m", "5m ",
			"5M", "5 m", "1h30m", "5ms", "m", "s5", "5w", "1.5h",
			"99999999999999999999s", "18446744073709552s", "584942418y"};
		uint64_t v = 42;

		EXPECT_ERR(gw_duration_parse(NULL, &v), -EINVAL);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			EXPECT_ERR(gw_duration_parse(bad[i], &v), -EINVAL);
		EXPECT_EQ(v, 42);
		/* the largest value still converts to ms without overflow */
		EXPECT_OK(gw_duration_parse("18446744073709551s", &v));
		EXPECT_EQ(v, 18446744073709551ull);
		EXPECT_TRUE(v * 1000 / 1000 == v);
	}
	{
		/* durations in milliseconds: "ms" plus every seconds form */
		uint64_t v = 0;

		EXPECT_OK(gw_duration_parse_ms("500ms", &v));
		EXPECT_EQ(v, 500);
		EXPECT_OK(gw_duration_parse_ms("90s", &v));
		EXPECT_EQ(v, 90000);
		EXPECT_OK(gw_duration_parse_ms("7d", &v));
		EXPECT_EQ(v, 7 * 86400000ull);
		EXPECT_OK(gw_duration_parse_ms("4294967295ms", &v));
		EXPECT_EQ(v, 4294967295ull);
		v = 42;
		EXPECT_ERR(gw_duration_parse_ms("4294967296ms", &v), -EINVAL);
		EXPECT_ERR(gw_duration_parse_ms("0ms", &v), -EINVAL);
		EXPECT_ERR(gw_duration_parse_ms("ms", &v), -EINVAL);
		EXPECT_ERR(gw_duration_parse_ms("5 ms", &v), -EINVAL);
		EXPECT_ERR(gw_duration_parse_ms("-5ms", &v), -EINVAL);
		EXPECT_ERR(gw_duration_parse_ms("5", &v), -EINVAL);
		EXPECT_ERR(gw_duration_parse_ms(NULL, &v), -EINVAL);
		EXPECT_EQ(v, 42);
	}
	{
		/* durations in microseconds: "us" plus every ms and seconds form */
		uint64_t v = 0;

		EXPECT_OK(gw_duration_parse_us("300us", &v));
		EXPECT_EQ(v, 300);
		EXPECT_OK(gw_duration_parse_us("2ms", &v));
		EXPECT_EQ(v, 2000);
		EXPECT_OK(gw_duration_parse_us("1s", &v));
		EXPECT_EQ(v, 1000000);
		EXPECT_OK(gw_duration_parse_us("4294967295us", &v));
		EXPECT_EQ(v, 4294967295ull);
		EXPECT_OK(gw_duration_parse_us("18446744073709s", &v));
		EXPECT_EQ(v, 18446744073709ull * 1000000);
		v = 42;
		EXPECT_ERR(gw_duration_parse_us("18446744073710s", &v), -EINVAL); /* overflows */
		EXPECT_ERR(gw_duration_parse_us("4294967296us", &v), -EINVAL);
		EXPECT_ERR(gw_duration_parse_us("0us", &v), -EINVAL);
		EXPECT_ERR(gw_duration_parse_us("us", &v), -EINVAL);
		EXPECT_ERR(gw_duration_parse_us("5 us", &v), -EINVAL);
		EXPECT_ERR(gw_duration_parse_us("5µs", &v), -EINVAL);
		EXPECT_ERR(gw_duration_parse_us("5", &v), -EINVAL);
		EXPECT_ERR(gw_duration_parse_us(NULL, &v), -EINVAL);
		EXPECT_EQ(v, 42);
		EXPECT_ERR(gw_duration_parse_ms("5us", &v), -EINVAL); /* ms callers: no us */
	}
	{
		/* CPU sets as lists: runs of two or more collapse, singles stay */
		cpu_set_t set;
		int cpus[8];
		char buf[64];

		CPU_ZERO(&set);
		EXPECT_EQ(gw_cpus_str(&set, buf, sizeof(buf)), 0);
		EXPECT_STREQ(buf, "");
		CPU_SET(0, &set);
		CPU_SET(1, &set);
		CPU_SET(2, &set);
		CPU_SET(3, &set);
		CPU_SET(8, &set);
		CPU_SET(10, &set);
		CPU_SET(11, &set);
		CPU_SET(1023, &set);
		EXPECT_EQ(gw_cpus_of_set(&set, cpus, 8), 8);
		EXPECT_EQ(cpus[4], 8);
		EXPECT_EQ(cpus[7], 1023);
		EXPECT_EQ(gw_cpus_of_set(&set, cpus, 2), 2); /* never past max */
		EXPECT_EQ(gw_cpus_str(&set, buf, sizeof(buf)), 16);
		EXPECT_STREQ(buf, "0-3,8,10-11,1023");
		/* a short buffer: cut, terminated, and the count says so */
		EXPECT_TRUE(gw_cpus_str(&set, buf, 6) >= 6);
		EXPECT_STREQ(buf, "0-3,8");
	}
	{
		/* JOURNAL_STREAM "DEV:INODE" names the stream: only that file matches */
		FILE *f = tmpfile(), *g = tmpfile();
		struct stat st;
		char js[64], bad[80];

		EXPECT_TRUE(f != NULL && g != NULL && fstat(fileno(f), &st) == 0);
		snprintf(js, sizeof(js), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
		EXPECT_TRUE(gw_log_fd_is_journal(fileno(f), js));
		EXPECT_TRUE(!gw_log_fd_is_journal(fileno(g), js)); /* another inode */
		EXPECT_TRUE(!gw_log_fd_is_journal(fileno(f), NULL));
		EXPECT_TRUE(!gw_log_fd_is_journal(fileno(f), ""));
		snprintf(bad, sizeof(bad), "%sx", js);
		EXPECT_TRUE(!gw_log_fd_is_journal(fileno(f), bad));
		snprintf(bad, sizeof(bad), "%ju", (uintmax_t)st.st_dev);
		EXPECT_TRUE(!gw_log_fd_is_journal(fileno(f), bad));
		EXPECT_TRUE(!gw_log_fd_is_journal(-1, js));
		if (f != NULL)
			fclose(f);
		if (g != NULL)
			fclose(g);
	}
	{
		/* on the journal each record starts with its priority; off: unchanged */
		static const char want[] = "<3>mtlsgw: t: error: e 1\n"
					   "<4>mtlsgw: t: warning: w\n"
					   "<6>mtlsgw: t: info: i\n"
					   "<7>mtlsgw: t: debug: d\n"
					   "<5>mtlsgw: running: x\n"
					   "<6>mtlsgw: info: no module\n"
					   "<3>EAL: two\n<3>lines\n<0>emerg\n<7>x\n<6>no newline"
					   "mtlsgw: t: error: plain\n"
					   "mtlsgw: stopped\n"
					   "EAL: a\nb\n";
		char buf[512] = "";
		FILE *f = tmpfile();
		size_t n = 0;

		EXPECT_TRUE(f != NULL);
		if (f != NULL) {
			gw_log_set_file(f);
			gw_log_set_level(GW_LOG_LVL_DEBUG);
			gw_log_set_journal(true);
			gw_log(GW_LOG_LVL_ERR, "t", "e %d", 1);
			gw_log(GW_LOG_LVL_WARN, "t", "w");
			gw_log(GW_LOG_LVL_INFO, "t", "i");
			gw_log(GW_LOG_LVL_DEBUG, "t", "d");
			gw_log_banner("running: %s", "x");
			gw_log(GW_LOG_LVL_INFO, NULL, "no module");
			/* another logger's text (DPDK's stream): a prefix per line, the
			 * priority clamped to 0..7 */
			gw_log_lines(3, "EAL: two\nlines\n", 15);
			gw_log_lines(-4, "emerg\n", 6);
			gw_log_lines(99, "x\n", 2);
			gw_log_lines(6, "no newline", 10);
			gw_log_set_journal(false);
			gw_log(GW_LOG_LVL_ERR, "t", "plain");
			gw_log_banner("stopped");
			gw_log_lines(3, "EAL: a\nb\n", 9);
			gw_log_set_file(NULL);
			gw_log_set_level(GW_LOG_LVL_INFO);
			rewind(f);
			n = fread(buf, 1, sizeof(buf) - 1, f);
			buf[n] = '\0';
			fclose(f);
		}
		EXPECT_STREQ(buf, want);
	}
	GW_TEST_END();
}
