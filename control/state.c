/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * state.c - the state store on SQLite (state.h). WAL so a reader (the admin
 * API, `mtlsgw-ctl ca sign --config` run beside the gateway) never blocks the
 * writer; synchronous=FULL because a CA that forgets a certificate it issued
 * or a root it made is worse than a slow commit, and commits are rare.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "state.h"

struct state_conn;

struct gw_state {
	struct state_conn *c; /* shared by the handles on this database */
	sqlite3 *db;          /* c's */
	unsigned level;       /* 0: no transaction of ours; else its depth in c */
	char path[512];
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS ca ("
	" name TEXT PRIMARY KEY, type TEXT NOT NULL, root_pem TEXT NOT NULL,"
	" issuer_pem TEXT, root_key TEXT, issuer_key TEXT, cross_pem TEXT,"
	" created INTEGER NOT NULL, removed INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS cert ("
	" serial TEXT NOT NULL, backend TEXT NOT NULL, kind TEXT NOT NULL,"
	" subject TEXT NOT NULL, spiffe_id TEXT, not_after INTEGER NOT NULL,"
	" owner TEXT, issued INTEGER NOT NULL, superseded INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (backend, serial));"
	"CREATE TABLE IF NOT EXISTS history ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, event TEXT NOT NULL,"
	" backend TEXT, detail TEXT);";

static int
db_err(struct gw_state *st, const char *what)
{
	return gw_err_setf(-GW_E_STATE, GW_HERE, "state store %s: %s: %s", st->path, what,
		st->db ? sqlite3_errmsg(st->db) : "cannot open");
}

static int
exec(struct gw_state *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		gw_err_setf(
			-GW_E_STATE, GW_HERE, "state store %s: %s", st->path, msg ? msg : "error");
		sqlite3_free(msg);
		return -GW_E_STATE;
	}
	return 0;
}

/*
 * The state directory holds the CA's records and the identities' chains:
 * created 0700; an existing one must be ours (or root's) and not writable
 * by group or others (refused: someone else could swap state.db), and is
 * tightened to 0700 if group or others may only read it.
 */
static int
state_dir_check(const char *dir)
{
	struct stat sb;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return gw_err_setf(-GW_E_STATE, GW_HERE, "state_dir %s: cannot create: %s", dir,
			strerror(errno));
	if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return gw_err_setf(-GW_E_STATE, GW_HERE, "state_dir %s: not a directory", dir);
	if (sb.st_uid != geteuid() && sb.st_uid != 0)
		return gw_err_setf(-GW_E_STATE, GW_HERE,
			"state_dir %s: owned by uid %u, not by this user (uid %u) or root: chown "
			"it",
			dir, (unsigned)sb.st_uid, (unsigned)geteuid());
	if (sb.st_mode & 022)
		return gw_err_setf(-GW_E_STATE, GW_HERE,
			"state_dir %s: writable by group or others (mode %04o): chmod 700 it", dir,
			(unsigned)(sb.st_mode & 07777));
	if ((sb.st_mode & 077) && chmod(dir, 0700) < 0)
		return gw_err_setf(-GW_E_STATE, GW_HERE, "state_dir %s: cannot chmod 700: %s", dir,
			strerror(errno));
	return 0;
}

/*
 * state.db is made 0600 before SQLite opens it (never a symlink): SQLite
 * gives its -wal and -shm files the database file's mode, so all three are
 * 0600 from the start. Files left with another mode are tightened.
 */
static int
state_files_prepare(struct gw_state *st)
{
	static const char *const sfx[] = {"", "-wal", "-shm"};
	char p[sizeof(st->path) + 8];
	int fd;

	fd = open(st->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST)
		fd = open(st->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return gw_err_setf(-GW_E_STATE, GW_HERE, "state store %s: cannot open: %s%s",
			st->path, strerror(errno),
			errno == ELOOP ? " (a symlink: state files must be plain files)" : "");
	close(fd);
	for (unsigned i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		struct stat sb;

		snprintf(p, sizeof(p), "%s%s", st->path, sfx[i]);
		if (lstat(p, &sb) < 0)
			continue;
		if (!S_ISREG(sb.st_mode))
			return gw_err_setf(
				-GW_E_STATE, GW_HERE, "state store %s: not a regular file", p);
		if ((sb.st_mode & 077) && chmod(p, 0600) < 0)
			return gw_err_setf(-GW_E_STATE, GW_HERE, "state store %s: cannot chmod: %s",
				p, strerror(errno));
	}
	return 0;
}

/*
 * Handles on one database in one process share one connection (found by
 * the file's device and inode), so their transactions nest: see state.h.
 * Control thread only, like the handles; a connection is never shared with
 * a forked child (pid).
 */
struct state_conn {
	sqlite3 *db;
	dev_t dev;
	ino_t ino;
	pid_t pid;
	unsigned refs;
	unsigned depth; /* 0: none; 1: BEGIN; n > 1: savepoint s<n-1> too */
	struct state_conn *next;
};
static struct state_conn *conns;

static struct state_conn *
conn_find(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return NULL;
	for (struct state_conn *c = conns; c != NULL; c = c->next)
		if (c->dev == sb.st_dev && c->ino == sb.st_ino && c->pid == getpid())
			return c;
	return NULL;
}

static void
conn_put(struct state_conn *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	for (struct state_conn **pp = &conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	/* BUSY only if a statement was left unfinalized (a bug): then close
	 * when the last one is */
	if (sqlite3_close(c->db) != SQLITE_OK)
		(void)sqlite3_close_v2(c->db);
	free(c);
}

int
gw_state_open(const char *state_dir, struct gw_state **out)
{
	struct gw_state *st;
	struct state_conn *c;
	struct stat sb;
	int rc;

	GW_ENSURE(state_dir != NULL && state_dir[0] && out != NULL, -EINVAL);
	GW_GUARD(state_dir_check(state_dir));
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	if ((size_t)snprintf(st->path, sizeof(st->path), "%s/state.db", state_dir) >=
		sizeof(st->path)) {
		free(st);
		return gw_err_setf(-EINVAL, GW_HERE, "state_dir %s: path too long", state_dir);
	}
	if ((rc = state_files_prepare(st)) < 0)
		goto fail;
	if ((c = conn_find(st->path)) != NULL) {
		c->refs++;
		st->c = c;
		st->db = c->db;
		*out = st;
		return 0;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL || stat(st->path, &sb) < 0) {
		free(c);
		rc = gw_err_setf(-GW_E_STATE, GW_HERE, "state store %s: cannot open", st->path);
		goto fail;
	}
	c->dev = sb.st_dev;
	c->ino = sb.st_ino;
	c->pid = getpid();
	c->refs = 1;
	st->c = c;
	if (sqlite3_open_v2(st->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
		SQLITE_OK) {
		st->db = c->db;
		rc = db_err(st, "cannot open");
		goto fail;
	}
	st->db = c->db;
	if (sqlite3_busy_timeout(st->db, 5000) != SQLITE_OK) {
		rc = db_err(st, "set the busy timeout");
		goto fail;
	}
	if ((rc = exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")) < 0 ||
		(rc = exec(st, schema)) < 0)
		goto fail;
	c->next = conns;
	conns = c;
	*out = st;
	return 0;
fail:
	if (st->c != NULL) {
		(void)sqlite3_close_v2(st->c->db); /* nothing was prepared: nothing to report */
		free(st->c);
	}
	free(st);
	return rc;
}

void
gw_state_close(struct gw_state *st)
{
	if (st == NULL)
		return;
	if (st->level)
		gw_state_rollback(st);
	conn_put(st->c);
	free(st);
}

const char *
gw_state_path(const struct gw_state *st)
{
	return st ? st->path : "?";
}

int
gw_state_begin(struct gw_state *st)
{
	char sql[32];

	GW_ENSURE(st != NULL && !st->level, -EINVAL);
	if (st->c->depth == 0)
		GW_GUARD(exec(st, "BEGIN IMMEDIATE"));
	else {
		snprintf(sql, sizeof(sql), "SAVEPOINT s%u", st->c->depth);
		GW_GUARD(exec(st, sql));
	}
	st->level = ++st->c->depth;
	return 0;
}

int
gw_state_commit(struct gw_state *st, const char *label)
{
	char sql[32];

	/* only the innermost transaction can end */
	GW_ENSURE(st != NULL && st->level && st->level == st->c->depth, -EINVAL);
#ifdef GW_TEST_HOOKS
	/* what a kill between the writes and the COMMIT leaves behind (tests only) */
	{
		const char *crash = getenv("GW_STATE_CRASH_AT");

		if (crash != NULL && label != NULL && strcmp(crash, label) == 0)
			_exit(86);
	}
#else
	(void)label;
#endif
	if (st->level == 1)
		snprintf(sql, sizeof(sql), "COMMIT");
	else
		snprintf(sql, sizeof(sql), "RELEASE s%u", st->level - 1);
	if (exec(st, sql) < 0) {
		gw_state_rollback(st);
		return -GW_E_STATE;
	}
	st->c->depth = st->level - 1;
	st->level = 0;
	return 0;
}

void
gw_state_rollback(struct gw_state *st)
{
	char sql[64];

	if (st == NULL || !st->level)
		return;
	if (st->level == 1)
		snprintf(sql, sizeof(sql), "ROLLBACK");
	else
		snprintf(sql, sizeof(sql), "ROLLBACK TO s%u; RELEASE s%u", st->level - 1,
			st->level - 1);
	/* the caller's error stays the cause; a failed ROLLBACK is added to
	 * it (the transaction may stay open: the next BEGIN fails, saying so) */
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		struct gw_err *e = gw_err_get();
		size_t n = strnlen(e->msg, sizeof(e->msg));

		snprintf(e->msg + n, sizeof(e->msg) - n, "%sstate store %s: roll back: %s",
			n ? "; " : "", st->path, sqlite3_errmsg(st->db));
	}
	/* inner transactions of other handles ended with this one */
	st->c->depth = st->level - 1;
	st->level = 0;
}

static int
prep(struct gw_state *st, const char *sql, sqlite3_stmt **s)
{
	if (sqlite3_prepare_v2(st->db, sql, -1, s, NULL) != SQLITE_OK)
		return db_err(st, "prepare");
	return 0;
}

/* SQLite's code: SQLITE_OK (0) or why the parameter could not be bound. */
static int
bind_text(sqlite3_stmt *s, int i, const char *v)
{
	return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(s, i);
}

/*
 * rcs: the bind calls' codes OR'ed together (SQLITE_OK is 0). Anything else
 * finalizes s and fails: a parameter left unbound would be written as NULL.
 */
static int
bound(struct gw_state *st, sqlite3_stmt *s, int rcs)
{
	int rc;

	if (rcs == SQLITE_OK)
		return 0;
	rc = db_err(st, "bind a parameter");
	sqlite3_finalize(s);
	return rc;
}

static int
col_dup(sqlite3_stmt *s, int i, char **out)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	*out = NULL;
	if (t == NULL)
		return 0;
	*out = strdup((const char *)t);
	return *out ? 0 : gw_err_set(-ENOMEM, GW_HERE);
}

/* Step a statement that returns no row. */
static int
run(struct gw_state *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s) == SQLITE_DONE ? 0 : db_err(st, what);

	sqlite3_finalize(s);
	return rc;
}

/* The one number a SELECT count(*) with one text parameter (NULL ok) answers. */
static int
count(struct gw_state *st, const char *sql, const char *arg, unsigned *n, const char *what)
{
	sqlite3_stmt *s;
	int rc = 0;

	GW_GUARD(prep(st, sql, &s));
	GW_GUARD(bound(st, s, bind_text(s, 1, arg)));
	if (sqlite3_step(s) == SQLITE_ROW)
		*n = (unsigned)sqlite3_column_int64(s, 0);
	else
		rc = db_err(st, what);
	sqlite3_finalize(s);
	return rc;
}

int
gw_state_meta_get(struct gw_state *st, const char *key, char **val)
{
	sqlite3_stmt *s;
	int rc;

	GW_ENSURE(st && key && val, -EINVAL);
	GW_GUARD(prep(st, "SELECT value FROM meta WHERE key = ?", &s));
	GW_GUARD(bound(st, s, bind_text(s, 1, key)));
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = col_dup(s, 0, val);
	else if (rc == SQLITE_DONE)
		rc = -ENOENT;
	else
		rc = db_err(st, "read meta");
	sqlite3_finalize(s);
	return rc;
}

int
gw_state_meta_set(struct gw_state *st, const char *key, const char *val)
{
	sqlite3_stmt *s;

	GW_ENSURE(st && key && val, -EINVAL);
	GW_GUARD(prep(st, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", &s));
	GW_GUARD(bound(st, s, bind_text(s, 1, key) | bind_text(s, 2, val)));
	return run(st, s, "write meta");
}

void
gw_state_ca_clear(struct gw_state_ca *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c->type);
	free(c->root_pem);
	free(c->issuer_pem);
	free(c->root_key);
	free(c->issuer_key);
	free(c->cross_pem);
	memset(c, 0, sizeof(*c));
}

int
gw_state_ca_get(struct gw_state *st, const char *name, struct gw_state_ca *out)
{
	sqlite3_stmt *s;
	int rc;

	GW_ENSURE(st && name && out, -EINVAL);
	memset(out, 0, sizeof(*out));
	GW_GUARD(prep(st,
		"SELECT name, type, root_pem, issuer_pem, root_key, issuer_key, cross_pem, "
		"created, removed FROM ca WHERE name = ?",
		&s));
	GW_GUARD(bound(st, s, bind_text(s, 1, name)));
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		rc = 0;
		if (col_dup(s, 0, &out->name) < 0 || col_dup(s, 1, &out->type) < 0 ||
			col_dup(s, 2, &out->root_pem) < 0 || col_dup(s, 3, &out->issuer_pem) < 0 ||
			col_dup(s, 4, &out->root_key) < 0 || col_dup(s, 5, &out->issuer_key) < 0 ||
			col_dup(s, 6, &out->cross_pem) < 0) {
			gw_state_ca_clear(out);
			rc = gw_err_set(-ENOMEM, GW_HERE);
		} else {
			out->created = sqlite3_column_int64(s, 7);
			out->removed = sqlite3_column_int64(s, 8);
		}
	} else if (rc == SQLITE_DONE) {
		rc = -ENOENT;
	} else {
		rc = db_err(st, "read ca");
	}
	sqlite3_finalize(s);
	return rc;
}

int
gw_state_ca_put(struct gw_state *st, const struct gw_state_ca *c)
{
	sqlite3_stmt *s;

	GW_ENSURE(st && c && c->name && c->type && c->root_pem, -EINVAL);
	GW_GUARD(prep(st,
		"INSERT OR REPLACE INTO ca (name, type, root_pem, issuer_pem, root_key, "
		"issuer_key, cross_pem, created, removed) VALUES (?,?,?,?,?,?,?,?,?)",
		&s));
	GW_GUARD(bound(st, s,
		bind_text(s, 1, c->name) | bind_text(s, 2, c->type) | bind_text(s, 3, c->root_pem) |
			bind_text(s, 4, c->issuer_pem) | bind_text(s, 5, c->root_key) |
			bind_text(s, 6, c->issuer_key) | bind_text(s, 7, c->cross_pem) |
			sqlite3_bind_int64(s, 8, c->created) |
			sqlite3_bind_int64(s, 9, c->removed)));
	return run(st, s, "write ca");
}

int
gw_state_cert_record(struct gw_state *st, const struct gw_state_cert *c, int64_t now)
{
	sqlite3_stmt *s;

	GW_ENSURE(st && c && c->serial && c->subject && c->backend && c->kind, -EINVAL);
	if (strcmp(c->kind, GW_STATE_KIND_IDENTITY) == 0 && c->owner) {
		GW_GUARD(prep(st,
			"UPDATE cert SET superseded = ? WHERE kind = 'identity' AND owner = ? "
			"AND superseded = 0",
			&s));
		GW_GUARD(bound(st, s, sqlite3_bind_int64(s, 1, now) | bind_text(s, 2, c->owner)));
		GW_GUARD(run(st, s, "supersede identity"));
	}
	GW_GUARD(prep(st,
		"INSERT INTO cert (serial, backend, kind, subject, spiffe_id, not_after, owner, "
		"issued) VALUES (?,?,?,?,?,?,?,?)",
		&s));
	GW_GUARD(bound(st, s,
		bind_text(s, 1, c->serial) | bind_text(s, 2, c->backend) |
			bind_text(s, 3, c->kind) | bind_text(s, 4, c->subject) |
			bind_text(s, 5, c->spiffe_id) | sqlite3_bind_int64(s, 6, c->not_after) |
			bind_text(s, 7, c->owner) | sqlite3_bind_int64(s, 8, now)));
	return run(st, s, "record certificate");
}

int
gw_state_certs_live(
	struct gw_state *st, const char *backend, int64_t now, unsigned *n, int64_t *latest)
{
	sqlite3_stmt *s;
	int rc;

	GW_ENSURE(st && backend && n, -EINVAL);
	GW_GUARD(prep(st,
		"SELECT count(*), coalesce(max(not_after), 0) FROM cert WHERE backend = ? AND "
		"not_after > ? AND superseded = 0 AND kind IN ('identity', 'client')",
		&s));
	GW_GUARD(bound(st, s, bind_text(s, 1, backend) | sqlite3_bind_int64(s, 2, now)));
	if (sqlite3_step(s) == SQLITE_ROW) {
		*n = (unsigned)sqlite3_column_int64(s, 0);
		if (latest)
			*latest = sqlite3_column_int64(s, 1);
		rc = 0;
	} else {
		rc = db_err(st, "count certificates");
	}
	sqlite3_finalize(s);
	return rc;
}

int
gw_state_certs_count(struct gw_state *st, const char *backend, unsigned *n)
{
	GW_ENSURE(st && backend && n, -EINVAL);
	return count(st, "SELECT count(*) FROM cert WHERE backend = ?", backend, n,
		"count certificates");
}

int
gw_state_history_add(struct gw_state *st, int64_t now, const char *event, const char *backend,
	const char *detail)
{
	sqlite3_stmt *s;

	GW_ENSURE(st && event, -EINVAL);
	GW_GUARD(prep(st, "INSERT INTO history (at, event, backend, detail) VALUES (?,?,?,?)", &s));
	GW_GUARD(bound(st, s,
		sqlite3_bind_int64(s, 1, now) | bind_text(s, 2, event) | bind_text(s, 3, backend) |
			bind_text(s, 4, detail)));
	return run(st, s, "write history");
}

int
gw_state_history_count(struct gw_state *st, const char *event, unsigned *n)
{
	GW_ENSURE(st && n, -EINVAL);
	return count(st, "SELECT count(*) FROM history WHERE ?1 IS NULL OR event = ?1", event, n,
		"read history");
}

int
gw_state_ca_list(struct gw_state *st, char ***names, unsigned *n)
{
	sqlite3_stmt *s;
	char **v = NULL;
	unsigned k = 0;
	int rc;

	GW_ENSURE(st && names && n, -EINVAL);
	GW_GUARD(prep(st, "SELECT name FROM ca WHERE removed = 0 ORDER BY name", &s));
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		char **nv = realloc(v, (k + 1) * sizeof(*v));

		if (nv == NULL)
			goto nomem;
		v = nv;
		if (col_dup(s, 0, &v[k]) < 0 || v[k] == NULL)
			goto nomem;
		k++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		while (k)
			free(v[--k]);
		free(v);
		return db_err(st, "list ca");
	}
	*names = v;
	*n = k;
	return 0;
nomem:
	sqlite3_finalize(s);
	while (k)
		free(v[--k]);
	free(v);
	return gw_err_set(-ENOMEM, GW_HERE);
}
