/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_state.c - the SQLite state store: schema on first open, WAL, file
 * mode, rows that survive a reopen, a rolled-back transaction that leaves
 * nothing, and the live-certificate count the removal rule reads.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_test.h"
#include "state.h"

int
main(void)
{
	char dir[64] = "/tmp/gwstate.XXXXXX", sd[128], cmd[160];

	GW_TEST_BEGIN();
	if (mkdtemp(dir) == NULL)
		return 2;
	snprintf(sd, sizeof(sd), "%s/state", dir);
	{ /* first open: dir 0700, db 0600, WAL */
		struct gw_state *st = NULL;
		struct stat sb;
		char path[200];

		EXPECT_OK(gw_state_open(sd, &st));
		EXPECT_TRUE(stat(sd, &sb) == 0 && (sb.st_mode & 0777) == 0700);
		snprintf(path, sizeof(path), "%s/state.db", sd);
		EXPECT_TRUE(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
		snprintf(path, sizeof(path), "%s/state.db-wal", sd);
		EXPECT_OK(gw_state_begin(st));
		EXPECT_OK(gw_state_meta_set(st, "trust_domain", "example.org"));
		EXPECT_OK(gw_state_ca_put(st, &(struct gw_state_ca){.name = "ca-1",
						      .type = "builtin",
						      .root_pem = "R",
						      .issuer_pem = "I",
						      .root_key = "pkcs11:object=r",
						      .created = 5}));
		EXPECT_OK(gw_state_history_add(st, 5, "add", "ca-1", NULL));
		EXPECT_OK(gw_state_commit(st, "t"));
		EXPECT_TRUE(stat(path, &sb) == 0); /* journal_mode=WAL */
		/* a transaction rolled back leaves nothing */
		EXPECT_OK(gw_state_begin(st));
		EXPECT_OK(gw_state_meta_set(st, "trust_domain", "other.org"));
		EXPECT_OK(gw_state_history_add(st, 6, "add", "ca-2", NULL));
		gw_state_rollback(st);
		/* begin twice is a bug the caller hears about */
		EXPECT_OK(gw_state_begin(st));
		EXPECT_ERR(gw_state_begin(st), -EINVAL);
		gw_state_close(st); /* rolls back */
	}
	{ /* reopen: the committed rows only */
		struct gw_state *st = NULL;
		struct gw_state_ca c;
		char *v = NULL, **names = NULL;
		unsigned n = 9;

		EXPECT_OK(gw_state_open(sd, &st));
		EXPECT_OK(gw_state_meta_get(st, "trust_domain", &v));
		EXPECT_STREQ(v, "example.org");
		free(v);
		EXPECT_ERR(gw_state_meta_get(st, "nope", &v), -ENOENT);
		EXPECT_OK(gw_state_ca_get(st, "ca-1", &c));
		EXPECT_STREQ(c.root_pem, "R");
		EXPECT_STREQ(c.issuer_pem, "I");
		EXPECT_TRUE(c.cross_pem == NULL && c.created == 5 && c.removed == 0);
		gw_state_ca_clear(&c);
		EXPECT_ERR(gw_state_ca_get(st, "ca-2", &c), -ENOENT);
		EXPECT_OK(gw_state_history_count(st, NULL, &n));
		EXPECT_EQ(n, 1);
		EXPECT_OK(gw_state_ca_list(st, &names, &n));
		EXPECT_EQ(n, 1);
		if (n == 1)
			EXPECT_STREQ(names[0], "ca-1");
		for (unsigned i = 0; i < n; i++)
			free(names[i]);
		free(names);
		/* live certificates: clients and current identities, not expired ones */
		EXPECT_OK(gw_state_begin(st));
		EXPECT_OK(gw_state_cert_record(st,
			&(struct gw_state_cert){.serial = "01",
				.subject = "/CN=a",
				.not_after = 100,
				.backend = "ca-1",
				.kind = "client"},
			10));
		EXPECT_OK(gw_state_cert_record(st,
			&(struct gw_state_cert){.serial = "02",
				.subject = "/CN=b",
				.not_after = 300,
				.backend = "ca-1",
				.kind = "client"},
			10));
		EXPECT_OK(gw_state_cert_record(st,
			&(struct gw_state_cert){.serial = "03",
				.subject = "/CN=gw",
				.not_after = 500,
				.backend = "ca-1",
				.kind = "identity",
				.owner = "web"},
			10));
		EXPECT_OK(gw_state_cert_record(st,
			&(struct gw_state_cert){.serial = "04",
				.subject = "/CN=gw",
				.not_after = 900,
				.backend = "ca-2",
				.kind = "identity",
				.owner = "web"},
			20));
		/* the same serial twice from one backend is refused */
		EXPECT_ERR(gw_state_cert_record(st,
				   &(struct gw_state_cert){.serial = "01",
					   .subject = "/CN=a",
					   .not_after = 100,
					   .backend = "ca-1",
					   .kind = "client"},
				   10),
			-GW_E_STATE);
		EXPECT_OK(gw_state_commit(st, "t"));
		{
			unsigned live = 0;
			int64_t latest = 0;

			EXPECT_OK(gw_state_certs_live(st, "ca-1", 50, &live, &latest));
			EXPECT_EQ(live, 2); /* identity 03 was superseded by 04 */
			EXPECT_EQ(latest, 300);
			EXPECT_OK(gw_state_certs_live(st, "ca-1", 300, &live, &latest));
			EXPECT_EQ(live, 0);
			EXPECT_OK(gw_state_certs_count(st, "ca-1", &live));
			EXPECT_EQ(live, 3);
		}
		gw_state_close(st);
	}
	{ /* an unusable state_dir says so */
		struct gw_state *st = NULL;
		char f[128];

		snprintf(f, sizeof(f), "%s/file", dir);
		fclose(fopen(f, "w"));
		EXPECT_ERR(gw_state_open(f, &st), -GW_E_STATE);
		EXPECT_CONTAINS(gw_err_msg(), "not a directory");
	}
#ifndef GW_TEST_HOOKS
	{ /* a build without -Dtest_hooks=true (a release) has no crash hook */
		struct gw_state *st = NULL;

		setenv("GW_STATE_CRASH_AT", "t", 1);
		EXPECT_OK(gw_state_open(sd, &st));
		EXPECT_OK(gw_state_begin(st));
		EXPECT_OK(gw_state_meta_set(st, "hook", "none"));
		EXPECT_OK(gw_state_commit(st, "t")); /* still here */
		gw_state_close(st);
		unsetenv("GW_STATE_CRASH_AT");
	}
#endif
	{ /* two handles on one database: one connection, transactions nest */
		struct gw_state *a = NULL, *b = NULL;
		char *v = NULL;

		EXPECT_OK(gw_state_open(sd, &a));
		EXPECT_OK(gw_state_open(sd, &b));
		/* inner commits, outer rolls back: nothing stays */
		EXPECT_OK(gw_state_begin(a));
		EXPECT_OK(gw_state_meta_set(a, "outer", "1"));
		EXPECT_OK(gw_state_begin(b));
		EXPECT_OK(gw_state_meta_set(b, "inner", "1"));
		EXPECT_ERR(gw_state_commit(a, "t"), -EINVAL); /* b's is still open */
		EXPECT_OK(gw_state_commit(b, "t"));
		EXPECT_OK(gw_state_meta_get(a, "inner", &v)); /* the outer one sees it */
		free(v);
		v = NULL;
		gw_state_rollback(a);
		EXPECT_ERR(gw_state_meta_get(b, "inner", &v), -ENOENT);
		EXPECT_ERR(gw_state_meta_get(b, "outer", &v), -ENOENT);
		/* an inner rollback keeps the outer's writes; the outer commit keeps them */
		EXPECT_OK(gw_state_begin(a));
		EXPECT_OK(gw_state_meta_set(a, "outer", "2"));
		EXPECT_OK(gw_state_begin(b));
		EXPECT_OK(gw_state_meta_set(b, "inner", "2"));
		gw_state_rollback(b);
		EXPECT_OK(gw_state_begin(b));
		EXPECT_OK(gw_state_meta_set(b, "inner", "3"));
		EXPECT_OK(gw_state_commit(b, "t"));
		EXPECT_OK(gw_state_commit(a, "t"));
		gw_state_close(b);
		gw_state_close(a);
		EXPECT_OK(gw_state_open(sd, &a));
		EXPECT_OK(gw_state_meta_get(a, "outer", &v));
		EXPECT_STREQ(v, "2");
		free(v);
		v = NULL;
		EXPECT_OK(gw_state_meta_get(a, "inner", &v));
		EXPECT_STREQ(v, "3");
		free(v);
		gw_state_close(a);
	}
	{ /* with umask 0: dir 0700, state.db, -wal and -shm 0600 from the start */
		struct gw_state *st = NULL;
		mode_t old = umask(0);
		char d2[160], p[200];
		struct stat sb;

		snprintf(d2, sizeof(d2), "%s/open", dir);
		EXPECT_OK(gw_state_open(d2, &st));
		EXPECT_OK(gw_state_begin(st));
		EXPECT_OK(gw_state_meta_set(st, "k", "v"));
		EXPECT_OK(gw_state_commit(st, "t"));
		EXPECT_TRUE(stat(d2, &sb) == 0 && (sb.st_mode & 0777) == 0700);
		for (unsigned i = 0; i < 3; i++) {
			snprintf(p, sizeof(p), "%s/state.db%s", d2,
				(const char *[]){"", "-wal", "-shm"}[i]);
			EXPECT_TRUE(stat(p, &sb) == 0);
			EXPECT_EQ(sb.st_mode & 0777, 0600);
		}
		gw_state_close(st);
		umask(old);
	}
	{ /* a state_dir others may write is refused; one they may read is tightened */
		struct gw_state *st = NULL;
		char d2[160], p[200];
		struct stat sb;

		snprintf(d2, sizeof(d2), "%s/loose", dir);
		EXPECT_TRUE(mkdir(d2, 0700) == 0 && chmod(d2, 0777) == 0);
		EXPECT_ERR(gw_state_open(d2, &st), -GW_E_STATE);
		EXPECT_CONTAINS(
			gw_err_msg(), "writable by group or others (mode 0777): chmod 700 it");
		EXPECT_TRUE(chmod(d2, 0755) == 0);
		EXPECT_OK(gw_state_open(d2, &st));
		gw_state_close(st);
		EXPECT_TRUE(stat(d2, &sb) == 0 && (sb.st_mode & 0777) == 0700);
		/* a loose state.db left by an old version is tightened */
		snprintf(p, sizeof(p), "%s/state.db", d2);
		EXPECT_TRUE(chmod(p, 0644) == 0);
		EXPECT_OK(gw_state_open(d2, &st));
		gw_state_close(st);
		EXPECT_TRUE(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0600);
		/* state.db as a symlink is refused */
		EXPECT_TRUE(unlink(p) == 0 && symlink("/tmp/elsewhere.db", p) == 0);
		EXPECT_ERR(gw_state_open(d2, &st), -GW_E_STATE);
		EXPECT_CONTAINS(gw_err_msg(), "symlink");
		EXPECT_TRUE(lstat("/tmp/elsewhere.db", &sb) < 0); /* nothing made there */
		if (geteuid() == 0) {                             /* owned by another user */
			snprintf(d2, sizeof(d2), "%s/theirs", dir);
			EXPECT_TRUE(mkdir(d2, 0700) == 0 && chown(d2, 65534, 65534) == 0);
			EXPECT_ERR(gw_state_open(d2, &st), -GW_E_STATE);
			EXPECT_CONTAINS(gw_err_msg(), "owned by uid 65534");
		}
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	GW_TEST_END();
}
