/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mesh.c - the mesh control plane (mesh.h): CA backends + rotation rules +
 * identities + admin API, on the control thread, through callbacks the
 * gateway provides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "admin.h"
#include "gw_log.h"
#include "mesh.h"
#include "rotation.h"

#define GW_LOG_MODULE "ca"

#define MESH_WARN_MAX 64

struct mesh_id {
	char *listener;
	char *backend; /* that issued cert */
	X509 *cert;
	char key_uri[GW_HSM_URI_MAX];
	char pem_path[600];
	/* issued by a reload being staged: in next_path until gw_mesh_commit */
	X509 *next_cert;
	char *next_backend;
	char next_path[608];
};

/* A certificate of the config's own files: a trust anchor or an identity. */
struct mesh_fcert {
	const char *kind; /* "anchor" or "identity" */
	char *listener;
	char what[200]; /* for the expiry warning */
	X509 *x;
};

struct gw_mesh {
	const struct gw_cfg *cfg; /* running; the gateway's */
	struct gw_mesh_params p;
	struct gw_ca *ca;
	struct gw_rotation *rot;
	struct gw_admin *admin;
	char *enabled_override; /* PUT /v1/connect/ca/configuration */
	struct mesh_id *ids;
	unsigned n_ids;
	char roots_path[600];
	/* a fleet's other members' roots (gw_mesh_set_fleet_roots), trusted too */
	char fleet_roots_path[600];
	char *fleet_roots;            /* their PEM as set; NULL: none */
	STACK_OF(X509) * fleet_stack; /* the same, parsed: one more bundle of mesh anchors */
	struct gw_snapshot_ext inner;
	time_t now, last_tick, last_fail_log;
	struct {
		char fp[60];
		int bucket;
	} warn[MESH_WARN_MAX];
	unsigned n_warn;
	struct mesh_fcert *fcerts; /* of m->cfg, read when it is published */
	unsigned n_fcerts;
	/*
	 * A reload being staged (gw_mesh_prepare .. gw_mesh_commit/abort): one
	 * state-store transaction holds every write of the CA built for the new
	 * config, files go beside the live ones; the running CA is untouched.
	 */
	struct {
		bool open;
		struct gw_state *st; /* the outer transaction */
		struct gw_ca *ca;    /* the new config's CA (NULL: it has none) */
		unsigned n_ids;      /* ids past this were added by the stage */
		bool roots;          /* roots_next written */
		char *was;           /* the enabled backend before (for the log) */
		char *override;      /* enabled_override after the commit (PUT) */
	} stage;
	char roots_next[608];
};

static time_t
mesh_now(const struct gw_mesh *m)
{
	return m->now ? m->now : time(NULL);
}

void
gw_mesh_set_time(struct gw_mesh *m, time_t now)
{
	m->now = now;
	gw_ca_set_time(m->ca, now);
}

struct gw_ca *
gw_mesh_ca(struct gw_mesh *m)
{
	return m ? m->ca : NULL;
}

/* The CA snapshots are built with: the staged one during a reload. */
static struct gw_ca *
cur_ca(const struct gw_mesh *m)
{
	return m->stage.open ? m->stage.ca : m->ca;
}

/* The mtls section in force: the file's, with the API's enabled backend. */
static struct gw_cfg_mtls
running_mtls(const struct gw_mesh *m)
{
	struct gw_cfg_mtls r = m->cfg->mtls;

	if (m->enabled_override)
		r.enabled_backend = m->enabled_override;
	return r;
}

static bool
mesh_listener(const struct gw_cfg_listener *lc)
{
	return lc->has_tls && lc->has_trust && lc->trust.mode == GW_TRUST_MESH &&
	       lc->tls.n_identities == 0;
}

/* Write data to path through a temp file and rename: readers see old or new. */
static int
write_atomic(const char *path, X509 *first, STACK_OF(X509) * rest)
{
	char tmp[640];
	FILE *f = NULL;
	bool ok;
	int fd;

	/* a new 0600 file, never through a symlink left in the state dir */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (unlink(tmp) < 0 && errno != ENOENT)
		return gw_err_setf(-GW_E_STATE, GW_HERE, "%s: %s", tmp, strerror(errno));
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && (f = fdopen(fd, "w")) == NULL)
		close(fd);
	if (f == NULL)
		return gw_err_setf(-GW_E_STATE, GW_HERE, "%s: %s", tmp, strerror(errno));
	ok = !first || PEM_write_X509(f, first) == 1;
	for (int i = 0; ok && rest && i < sk_X509_num(rest); i++)
		ok = PEM_write_X509(f, sk_X509_value(rest, i)) == 1;
	if (fclose(f) != 0 || !ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return gw_err_setf(-GW_E_STATE, GW_HERE, "cannot write %s", path);
	}
	return 0;
}

static int
write_roots(struct gw_ca *ca, const char *path)
{
	STACK_OF(X509) * all;
	int rc;

	if (ca == NULL)
		return 0;
	all = sk_X509_new_null();
	if (all == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	for (unsigned i = 0; i < gw_ca_n_backends(ca); i++)
		if (sk_X509_push(all, sk_X509_value(gw_ca_bundle(ca, i), 0)) <= 0) {
			sk_X509_free(all);
			return gw_err_set(-ENOMEM, GW_HERE);
		}
	rc = write_atomic(path, NULL, all);
	sk_X509_free(all);
	return rc;
}

static struct mesh_id *
id_find(struct gw_mesh *m, const char *listener)
{
	for (unsigned i = 0; i < m->n_ids; i++)
		if (strcmp(m->ids[i].listener, listener) == 0)
			return &m->ids[i];
	return NULL;
}

/* Issue id's certificate from ca; staged: into next_* / next_path. */
static int
id_issue(struct gw_ca *ca, struct mesh_id *id, bool staged)
{
	X509 *x = NULL;
	STACK_OF(X509) *chain = NULL;
	char *be;
	int rc;

	GW_GUARD(gw_ca_issue_identity(ca, id->listener, &x, &chain, id->key_uri));
	rc = write_atomic(staged ? id->next_path : id->pem_path, x, chain);
	sk_X509_pop_free(chain, X509_free);
	if (rc < 0 || (be = strdup(gw_ca_enabled(ca))) == NULL) {
		X509_free(x);
		return rc < 0 ? rc : gw_err_set(-ENOMEM, GW_HERE);
	}
	X509_free(staged ? id->next_cert : id->cert);
	free(staged ? id->next_backend : id->backend);
	if (staged) {
		id->next_cert = x;
		id->next_backend = be;
	} else {
		id->cert = x;
		id->backend = be;
	}
	{
		char na[32];
		time_t t = gw_ca_not_after(x);
		struct tm tm;

		strftime(na, sizeof(na), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
		GW_LOG_INFO("identity of listener %s issued by %s, valid until %s", id->listener,
			be, na);
	}
	return 0;
}

/* Identities for cfg's mesh listeners from ca: keep the current ones, issue the rest. */
static int
ids_sync(struct gw_mesh *m, struct gw_ca *ca, const struct gw_cfg *cfg, bool reissue, bool staged)
{
	for (unsigned i = 0; i < cfg->n_listeners; i++) {
		const struct gw_cfg_listener *lc = &cfg->listeners[i];
		struct mesh_id *id;

		if (!mesh_listener(lc))
			continue;
		if (ca == NULL)
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"listener '%s': mesh trust needs mtls backends", lc->name);
		id = id_find(m, lc->name);
		if (id == NULL) {
			struct mesh_id *n = realloc(m->ids, (m->n_ids + 1) * sizeof(*n));

			if (n == NULL)
				return gw_err_set(-ENOMEM, GW_HERE);
			m->ids = n;
			id = &m->ids[m->n_ids];
			memset(id, 0, sizeof(*id));
			if ((id->listener = strdup(lc->name)) == NULL)
				return gw_err_set(-ENOMEM, GW_HERE);
			snprintf(id->pem_path, sizeof(id->pem_path), "%s/identity-%s.pem",
				cfg->state_dir, lc->name);
			snprintf(id->next_path, sizeof(id->next_path), "%s.next", id->pem_path);
			m->n_ids++;
		}
		if (id->cert == NULL || reissue || strcmp(id->backend, gw_ca_enabled(ca)) != 0)
			GW_GUARD(id_issue(ca, id, staged));
	}
	return 0;
}

/* ---- the config's certificate files (expiry metrics and warnings) ------------ */

static void
fcerts_free(struct gw_mesh *m)
{
	for (unsigned i = 0; i < m->n_fcerts; i++) {
		free(m->fcerts[i].listener);
		X509_free(m->fcerts[i].x);
	}
	free(m->fcerts);
	m->fcerts = NULL;
	m->n_fcerts = 0;
}

/*
 * Add the certificates of one file as the config loader read it (all of
 * them, or only the first). The file itself is never opened again.
 */
static int
fcerts_add(struct gw_mesh *m, const char *kind, const char *listener, const struct gw_material *mat,
	bool first_only)
{
	BIO *b;
	X509 *x;

	/* a config that loaded holds every file's bytes; metrics just lack others */
	if (mat == NULL || mat->bytes == NULL || mat->len > INT_MAX)
		return 0;
	if ((b = gw_material_bio(mat)) == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		struct mesh_fcert *n = realloc(m->fcerts, (m->n_fcerts + 1) * sizeof(*n));
		char *l = strdup(listener);

		if (n == NULL || l == NULL) {
			if (n)
				m->fcerts = n;
			free(l);
			X509_free(x);
			BIO_free(b);
			return gw_err_set(-ENOMEM, GW_HERE);
		}
		m->fcerts = n;
		n = &m->fcerts[m->n_fcerts++];
		n->kind = kind;
		n->listener = l;
		n->x = x;
		snprintf(n->what, sizeof(n->what), "%s of listener %s (%.120s)",
			strcmp(kind, "anchor") == 0 ? "trust anchor" : "identity", listener,
			mat->path);
		if (first_only)
			break;
	}
	ERR_clear_error(); /* the end of the bytes reads as an error */
	BIO_free(b);
	return 0;
}

static int
fcerts_load(struct gw_mesh *m, const struct gw_cfg *cfg)
{
	fcerts_free(m);
	for (unsigned i = 0; i < cfg->n_listeners; i++) {
		const struct gw_cfg_listener *lc = &cfg->listeners[i];

		for (unsigned j = 0; lc->has_trust && lc->trust.certs_m && j < lc->trust.n_certs;
			j++)
			GW_GUARD(fcerts_add(m, "anchor", lc->name, &lc->trust.certs_m[j], false));
		for (unsigned j = 0; lc->has_tls && j < lc->tls.n_identities; j++)
			GW_GUARD(fcerts_add(
				m, "identity", lc->name, &lc->tls.identities[j].cert_m, true));
	}
	return 0;
}

/* ---- the snapshot extension ------------------------------------------------ */

static int
ext_trust_build(void *arg, const struct gw_cfg_listener *lc, struct gw_trust **out)
{
	struct gw_mesh *m = arg;
	struct gw_ca *ca = cur_ca(m);
	STACK_OF(X509) * b[32];
	unsigned n = 0;

	if (lc->trust.mode != GW_TRUST_MESH || ca == NULL)
		return gw_trust_create(&lc->trust, lc->name, out);
	for (unsigned i = 0; i < gw_ca_n_backends(ca) && n < 31; i++)
		b[n++] = gw_ca_bundle(ca, i);
	if (m->fleet_stack != NULL) /* the other fleet members' roots (their own CA keys) */
		b[n++] = m->fleet_stack;
	return gw_trust_create_bundles(&lc->trust, lc->name, b, n, out);
}

static int
ext_listener_init(void *arg, const struct gw_cfg_listener *lc, struct gw_snap_listener *l)
{
	struct gw_mesh *m = arg;
	struct gw_cfg_listener lc2;
	struct gw_cfg_identity ident = {0};
	struct mesh_id *id;
	struct gw_material *certs_m = NULL, roots = {0}, fleet = {0};
	const char *roots_path;
	unsigned n_extra;
	char **certs;
	int rc;

	if (m->inner.listener_init == NULL)
		return 0;
	if (!mesh_listener(lc) || (id = id_find(m, lc->name)) == NULL)
		return m->inner.listener_init(m->inner.arg, lc, l);
	/*
	 * A shallow copy, never the config itself: the issued identity, and the
	 * roots file among the trust certs so the TLS side's trust fingerprint
	 * (session tickets) changes whenever the roots do.
	 */
	lc2 = *lc;
	ident.cert = m->stage.open && id->next_cert ? id->next_path : id->pem_path;
	ident.key = id->key_uri;
	lc2.tls.identities = &ident;
	lc2.tls.n_identities = 1;
	roots_path = m->stage.open && m->stage.roots ? m->roots_next : m->roots_path;
	n_extra = m->fleet_roots != NULL ? 2 : 1;
	certs = calloc(lc->trust.n_certs + n_extra, sizeof(*certs));
	if (certs == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	for (unsigned i = 0; i < lc->trust.n_certs; i++)
		certs[i] = lc->trust.certs[i];
	certs[lc->trust.n_certs] = (char *)roots_path;
	if (n_extra == 2)
		certs[lc->trust.n_certs + 1] = m->fleet_roots_path;
	lc2.trust.certs = certs;
	lc2.trust.n_certs = lc->trust.n_certs + n_extra;
	if (lc->trust.certs_m != NULL) {
		/*
		 * The config's files as its loader read them, plus the roots file
		 * this module wrote (read once here: it is ours, not the config's).
		 */
		certs_m = calloc(lc->trust.n_certs + n_extra, sizeof(*certs_m));
		if (certs_m == NULL) {
			rc = gw_err_set(-ENOMEM, GW_HERE);
			goto out;
		}
		if ((rc = gw_material_read(roots_path, GW_MATERIAL_MAX, &roots)) < 0) {
			char why[GW_ERR_MSG_MAX];

			snprintf(why, sizeof(why), "%s", gw_err_msg()); /* not aliased */
			rc = gw_err_setf(
				-GW_E_CA, GW_HERE, "listener '%s': mesh roots %s", lc->name, why);
			goto out;
		}
		if (n_extra == 2 &&
			(rc = gw_material_read(m->fleet_roots_path, GW_MATERIAL_MAX, &fleet)) < 0)
			goto out;
		for (unsigned i = 0; i < lc->trust.n_certs; i++)
			certs_m[i] = lc->trust.certs_m[i]; /* shallow: still the config's */
		certs_m[lc->trust.n_certs] = roots;
		if (n_extra == 2)
			certs_m[lc->trust.n_certs + 1] = fleet;
		lc2.trust.certs_m = certs_m;
	}
	rc = m->inner.listener_init(m->inner.arg, &lc2, l);
out:
	gw_material_fini(&roots);
	gw_material_fini(&fleet);
	free(certs_m);
	free(certs);
	return rc;
}

static void
ext_listener_fini(void *arg, struct gw_snap_listener *l)
{
	struct gw_mesh *m = arg;

	if (m->inner.listener_fini)
		m->inner.listener_fini(m->inner.arg, l);
}

void
gw_mesh_ext(struct gw_mesh *m, const struct gw_snapshot_ext *inner, struct gw_snapshot_ext *out)
{
	memset(&m->inner, 0, sizeof(m->inner));
	if (inner)
		m->inner = *inner;
	memset(out, 0, sizeof(*out));
	out->arg = m;
	out->trust_build = ext_trust_build;
	out->listener_init = ext_listener_init;
	out->listener_fini = ext_listener_fini;
}

/* ---- rotation ------------------------------------------------------------------ */

int
gw_mesh_set_fleet_roots(struct gw_mesh *m, const char *pem)
{
	STACK_OF(X509) *all = NULL;
	BIO *b;
	X509 *x;
	int rc;

	if ((pem == NULL && m->fleet_roots == NULL) ||
		(pem != NULL && m->fleet_roots != NULL && strcmp(pem, m->fleet_roots) == 0))
		return 0;
	if (pem == NULL) {
		free(m->fleet_roots);
		m->fleet_roots = NULL;
		sk_X509_pop_free(m->fleet_stack, X509_free);
		m->fleet_stack = NULL;
		unlink(m->fleet_roots_path);
		return 1;
	}
	all = sk_X509_new_null();
	b = BIO_new_mem_buf(pem, -1);
	GW_ENSURE(all && b, -ENOMEM);
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(all, x) <= 0) {
			X509_free(x);
			break;
		}
	ERR_clear_error(); /* the end of the PEM */
	BIO_free(b);
	rc = sk_X509_num(all) > 0
		     ? write_atomic(m->fleet_roots_path, NULL, all)
		     : gw_err_setf(-GW_E_CA, GW_HERE, "the fleet's mesh roots hold no certificate");
	if (rc < 0) {
		sk_X509_pop_free(all, X509_free);
		return rc;
	}
	free(m->fleet_roots);
	sk_X509_pop_free(m->fleet_stack, X509_free);
	m->fleet_stack = all; /* trusts built from it hold their own references */
	m->fleet_roots = strdup(pem);
	if (m->fleet_roots == NULL) {
		sk_X509_pop_free(m->fleet_stack, X509_free);
		m->fleet_stack = NULL;
		unlink(m->fleet_roots_path);
		return -ENOMEM;
	}
	return 1;
}

int
gw_mesh_fleet_report(struct gw_mesh *m, json_t *o)
{
	struct gw_cfg_mtls run = running_mtls(m);
	json_t *trusts = json_array(), *leaves = json_object();
	uint64_t live = gw_mesh_live_gen(m);
	time_t now = mesh_now(m);

	if (trusts == NULL || leaves == NULL) {
		json_decref(trusts);
		json_decref(leaves);
		return -ENOMEM;
	}
	for (unsigned i = 0; m->ca != NULL && i < run.n_backends; i++) {
		const char *b = run.backends[i].name;
		uint64_t since = gw_rotation_trusted_since(m->rot, b);
		unsigned n = 0;
		int64_t latest = 0;

		if (since != 0 && since <= live)
			json_array_append_new(trusts, json_string(b));
		if (gw_state_certs_live(gw_ca_state(m->ca), b, now, &n, &latest) == 0)
			json_object_set_new(leaves, b,
				json_pack("{s:i,s:I}", "live", n, "until", (json_int_t)latest));
	}
	json_object_set_new(o, "trusts", trusts);
	json_object_set_new(o, "live_leaves", leaves);
	/* this box's roots (each box's CA keys are its own): the fleet trusts them all */
	if (m->ca != NULL) {
		BIO *b = BIO_new(BIO_s_mem());
		char *p = NULL;
		long len;

		for (unsigned i = 0; b != NULL && i < gw_ca_n_backends(m->ca); i++)
			PEM_write_bio_X509(b, sk_X509_value(gw_ca_bundle(m->ca, i), 0));
		len = b ? BIO_get_mem_data(b, &p) : 0;
		if (len > 0)
			json_object_set_new(o, "roots", json_stringn(p, (size_t)len));
		BIO_free(b);
	}
	return 0;
}

uint64_t
gw_mesh_live_gen(struct gw_mesh *m)
{
	const struct gw_snapshot *cur;

	if (m->p.ops.live_gen)
		return m->p.ops.live_gen(m->p.ops.arg);
	if (m->p.pub == NULL)
		return 0;
	/* every reader past a quiescent point since the last publish runs the current one */
	gw_snap_pub_reclaim(m->p.pub, true);
	cur = gw_snap_current(m->p.pub);
	return cur ? gw_snapshot_generation(cur) : 0;
}

void
gw_mesh_abort(struct gw_mesh *m)
{
	if (m == NULL || !m->stage.open)
		return;
	gw_ca_destroy(m->stage.ca);
	gw_state_rollback(m->stage.st);
	gw_state_close(m->stage.st);
	if (m->stage.roots)
		unlink(m->roots_next);
	for (unsigned i = 0; i < m->n_ids; i++) {
		struct mesh_id *id = &m->ids[i];

		if (id->next_cert != NULL)
			unlink(id->next_path);
		X509_free(id->next_cert);
		free(id->next_backend);
		id->next_cert = NULL;
		id->next_backend = NULL;
		if (i >= m->stage.n_ids) { /* added by the stage */
			free(id->listener);
			free(id->backend);
			X509_free(id->cert);
		}
	}
	m->n_ids = m->stage.n_ids;
	free(m->stage.was);
	free(m->stage.override);
	memset(&m->stage, 0, sizeof(m->stage));
}

/*
 * Stage mtls (next's own, or the running one with the API's enabled
 * backend: override) for the listeners of next; see gw_mesh_prepare.
 */
static int
stage(struct gw_mesh *m, const struct gw_cfg *next, const struct gw_cfg_mtls *mtls, bool force,
	const char *override)
{
	struct gw_cfg_mtls run;
	struct gw_ca_params p;
	char token[33];
	int rc;

	gw_mesh_abort(m); /* one left open by a caller that did not finish */
	run = running_mtls(m);
	if (m->ca != NULL) {
		struct gw_rotation_env env = {
			.st = gw_ca_state(m->ca), .now = mesh_now(m), .force = force};

		env.live_gen = gw_mesh_live_gen(m);
		if (m->p.ops.fleet != NULL)
			env.fleet = m->p.ops.fleet(m->p.ops.arg, &env.fleet_down, &env.self);
		rc = gw_rotation_check(m->rot, &run, mtls, &env);
		json_decref(env.fleet);
		GW_GUARD(rc);
	} else if (!mtls->n_backends) {
		/* no CA before or after: only the identities' check */
		return ids_sync(m, NULL, next, false, false);
	}
	gw_ca_params_from_cfg(next, &p, token);
	m->stage.n_ids = m->n_ids;
	if (override != NULL && (m->stage.override = strdup(override)) == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	if (m->ca && gw_ca_enabled(m->ca) && (m->stage.was = strdup(gw_ca_enabled(m->ca))) == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	if ((rc = gw_state_open(p.state_dir, &m->stage.st)) < 0 ||
		(rc = gw_state_begin(m->stage.st)) < 0) {
		gw_state_close(m->stage.st);
		free(m->stage.was);
		free(m->stage.override);
		memset(&m->stage, 0, sizeof(m->stage));
		return rc;
	}
	m->stage.open = true;
	/*
	 * The running CA stays as it is: a second one is brought up from the
	 * store as running (nothing to catch up), then moved to the new config,
	 * its writes nested in the stage's transaction.
	 */
	if (m->ca == NULL)
		rc = gw_ca_create(mtls, &p, &m->stage.ca);
	else if ((rc = gw_ca_create(&run, &p, &m->stage.ca)) == 0) {
		if (m->now)
			gw_ca_set_time(m->stage.ca, m->now);
		rc = gw_ca_reconfigure(m->stage.ca, mtls);
	}
	if (rc == 0 && (rc = write_roots(m->stage.ca, m->roots_next)) == 0)
		m->stage.roots = m->stage.ca != NULL;
	if (rc == 0) {
		const char *now_en = m->stage.ca ? gw_ca_enabled(m->stage.ca) : NULL;
		bool switched = (m->stage.was == NULL) != (now_en == NULL) ||
				(m->stage.was && strcmp(m->stage.was, now_en) != 0);

		rc = ids_sync(m, m->stage.ca, next, switched && m->ca != NULL, true);
	}
	if (rc < 0)
		gw_mesh_abort(m); /* sets no error: the cause stays in gw_err */
	return rc;
}

int
gw_mesh_prepare(struct gw_mesh *m, const struct gw_cfg *next, bool force)
{
	GW_ENSURE(m && next, -EINVAL);
	return stage(m, next, &next->mtls, force, NULL);
}

int
gw_mesh_commit(struct gw_mesh *m)
{
	const char *now_en;
	int rc;

	GW_ENSURE(m != NULL, -EINVAL);
	if (!m->stage.open)
		return 0;
	if ((rc = gw_state_commit(m->stage.st, "reload")) < 0) {
		gw_mesh_abort(m);
		return rc;
	}
	gw_state_close(m->stage.st);
	/* the store has it: from here on memory and files follow, whatever fails */
	if (m->stage.roots && rename(m->roots_next, m->roots_path) < 0)
		GW_LOG_ERR("cannot rename %s: %s", m->roots_next, strerror(errno));
	for (unsigned i = 0; i < m->n_ids; i++) {
		struct mesh_id *id = &m->ids[i];

		if (id->next_cert == NULL)
			continue;
		if (rename(id->next_path, id->pem_path) < 0)
			GW_LOG_ERR("cannot rename %s: %s", id->next_path, strerror(errno));
		X509_free(id->cert);
		free(id->backend);
		id->cert = id->next_cert;
		id->backend = id->next_backend;
		id->next_cert = NULL;
		id->next_backend = NULL;
	}
	now_en = m->stage.ca ? gw_ca_enabled(m->stage.ca) : NULL;
	if ((m->stage.was == NULL) != (now_en == NULL) ||
		(m->stage.was && strcmp(m->stage.was, now_en) != 0))
		GW_LOG_INFO("enabled backend %s -> %s", m->stage.was ? m->stage.was : "(none)",
			now_en ? now_en : "(none)");
	gw_ca_destroy(m->ca); /* snapshots hold their own references to its roots */
	m->ca = m->stage.ca;
	gw_admin_set_ca(m->admin, m->ca);
	free(m->enabled_override);
	m->enabled_override = m->stage.override; /* a reload's file decides again */
	free(m->stage.was);
	memset(&m->stage, 0, sizeof(m->stage));
	return 0;
}

int
gw_mesh_published(struct gw_mesh *m, const struct gw_cfg *cfg, uint64_t gen)
{
	struct gw_cfg_mtls run;

	GW_ENSURE(m && cfg, -EINVAL);
	/* a caller that publishes a staged reload without gw_mesh_commit */
	GW_GUARD(gw_mesh_commit(m));
	m->cfg = cfg;
	GW_GUARD(fcerts_load(m, cfg));
	run = running_mtls(m);
	return gw_rotation_published(m->rot, &run, gen);
}

/* ---- admin callbacks ------------------------------------------------------------ */

/*
 * PUT /v1/connect/ca/configuration: the enabled backend switched like a
 * reload, all or nothing: staged, published (the snapshot built on the
 * staged CA; gw_mesh_published commits), or aborted if the build fails.
 */
static int
op_enable(void *arg, const char *backend, bool force)
{
	struct gw_mesh *m = arg;
	struct gw_cfg_mtls next = running_mtls(m);
	int rc;

	if (m->ca == NULL)
		return gw_err_setf(-ENOENT, GW_HERE, "no CA backends configured");
	if (m->p.ops.fleet != NULL) {
		bool down = false;
		const char *self = NULL;
		json_t *f = m->p.ops.fleet(m->p.ops.arg, &down, &self);

		json_decref(f);
		/* one box's override would leave the fleet issuing from two backends */
		if (f != NULL)
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"this gateway is a member of a fleet: change mtls.enabledBackend "
				"for every member with mtlsgw-ctl cluster push");
	}
	next.enabled_backend = (char *)backend;
	GW_GUARD(stage(m, m->cfg, &next, force, backend));
	if (m->stage.open && m->stage.was && strcmp(m->stage.was, backend) == 0)
		return gw_mesh_commit(m); /* already enabled: nothing to publish */
	rc = m->p.ops.publish ? m->p.ops.publish(m->p.ops.arg) : 0;
	if (rc < 0)
		gw_mesh_abort(m); /* the build failed: nothing was published */
	else
		rc = gw_mesh_commit(m); /* a gateway without publish (tests) */
	return rc;
}

static int
op_reload(void *arg, struct gw_admin_reload *r)
{
	struct gw_mesh *m = arg;

	if (m->p.ops.reload == NULL)
		return gw_err_setf(-ENOTSUP, GW_HERE, "this gateway cannot reload");
	return m->p.ops.reload(m->p.ops.arg, r);
}

static int
op_status(void *arg, json_t *o)
{
	struct gw_mesh *m = arg;
	json_t *ids = json_array();
	time_t now = mesh_now(m);

	if (m->p.ops.status)
		GW_GUARD(m->p.ops.status(m->p.ops.arg, o));
	for (unsigned i = 0; i < m->n_ids; i++) {
		char na[32];
		time_t t = gw_ca_not_after(m->ids[i].cert);
		struct tm tm;

		strftime(na, sizeof(na), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
		json_array_append_new(
			ids, json_pack("{s:s,s:s,s:s,s:I}", "Listener", m->ids[i].listener,
				     "Backend", m->ids[i].backend, "NotAfter", na,
				     "ExpiresInSeconds", (json_int_t)(t - now)));
	}
	json_object_set_new(o, "Identities", ids);
	/* the config's own anchors and identity files, which nothing renews */
	ids = json_array();
	for (unsigned i = 0; i < m->n_fcerts; i++) {
		char na[32], cn[256];
		time_t t = gw_ca_not_after(m->fcerts[i].x);
		struct tm tm;

		strftime(na, sizeof(na), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
		gw_metrics_cert_name(m->fcerts[i].x, cn, sizeof(cn));
		json_array_append_new(
			ids, json_pack("{s:s,s:s,s:s,s:s,s:I}", "Listener", m->fcerts[i].listener,
				     "Kind", m->fcerts[i].kind, "Name", cn, "NotAfter", na,
				     "ExpiresInSeconds", (json_int_t)(t - now)));
	}
	json_object_set_new(o, "ListenerCertificates", ids);
	json_object_set_new(o, "LiveGeneration", json_integer((json_int_t)gw_mesh_live_gen(m)));
	return 0;
}

static int
op_metrics(void *arg, struct gw_metrics *mt)
{
	struct gw_mesh *m = arg;
	time_t now = mesh_now(m);

	if (m->p.ops.metrics)
		GW_GUARD(m->p.ops.metrics(m->p.ops.arg, mt));
	for (unsigned i = 0; m->ca && i < gw_ca_n_backends(m->ca); i++) {
		struct gw_ca_info in;

		if (gw_ca_backend_info(m->ca, i, &in) < 0)
			continue;
		gw_metrics_cert(mt, "root", "backend", in.name, in.root, now);
		gw_metrics_cert(mt, "root", "backend", in.name, in.cross, now);
		gw_metrics_cert(mt, "issuer", "backend", in.name, in.issuer, now);
	}
	/* a mesh listener trusts every backend's root (ext_trust_build) */
	for (unsigned l = 0; m->ca && l < m->cfg->n_listeners; l++) {
		const struct gw_cfg_listener *lc = &m->cfg->listeners[l];

		if (!lc->has_trust || lc->trust.mode != GW_TRUST_MESH)
			continue;
		for (unsigned i = 0; i < gw_ca_n_backends(m->ca); i++)
			gw_metrics_cert(mt, "anchor", "listener", lc->name,
				sk_X509_value(gw_ca_bundle(m->ca, i), 0), now);
	}
	for (unsigned i = 0; i < m->n_fcerts; i++)
		gw_metrics_cert(mt, m->fcerts[i].kind, "listener", m->fcerts[i].listener,
			m->fcerts[i].x, now);
	for (unsigned i = 0; i < m->n_ids; i++)
		gw_metrics_cert(
			mt, "identity", "listener", m->ids[i].listener, m->ids[i].cert, now);
	return 0;
}

/* ---- timed work ------------------------------------------------------------------ */

/* Log once when a certificate enters the 30, 7 or 1 day window (or expires). */
static void
warn_expiry(struct gw_mesh *m, const char *what, X509 *x, time_t now)
{
	static const long days[] = {30, 7, 1, 0};
	char fp[60];
	long left;
	int bucket = 0;
	unsigned i;

	if (x == NULL)
		return;
	left = (long)(gw_ca_not_after(x) - now);
	for (unsigned k = 0; k < 4; k++)
		if (left <= days[k] * 86400)
			bucket = (int)k + 1;
	if (bucket == 0)
		return;
	gw_ca_fingerprint(x, fp);
	for (i = 0; i < m->n_warn && strcmp(m->warn[i].fp, fp) != 0; i++)
		;
	if (i < m->n_warn && m->warn[i].bucket >= bucket)
		return;
	if (i == m->n_warn) {
		if (m->n_warn == MESH_WARN_MAX)
			i = 0; /* forget the oldest */
		else
			m->n_warn++;
		snprintf(m->warn[i].fp, sizeof(m->warn[i].fp), "%s", fp);
	}
	m->warn[i].bucket = bucket;
	if (left <= 0)
		GW_LOG_WARN("%s has expired", what);
	else
		GW_LOG_WARN("%s expires in %ld day(s) %ld hour(s)", what, left / 86400,
			left % 86400 / 3600);
}

static void
tick(struct gw_mesh *m)
{
	time_t now = mesh_now(m);
	bool renewed = false, failed = false;
	int rc;

	/* the config's own anchors and identities: nothing renews them */
	for (unsigned i = 0; i < m->n_fcerts; i++)
		warn_expiry(m, m->fcerts[i].what, m->fcerts[i].x, now);
	if (m->ca == NULL)
		return;
	rc = gw_ca_maintain(m->ca);
	if (rc < 0)
		failed = true;
	for (unsigned i = 0; i < m->n_ids; i++) {
		struct mesh_id *id = &m->ids[i];

		/* due is a property of the certificate alone: a failed attempt is retried */
		if (!gw_rotation_renew_due(
			    gw_ca_not_before(id->cert), gw_ca_not_after(id->cert), now))
			continue;
		if (id_issue(m->ca, id, false) < 0)
			failed = true;
		else
			renewed = true;
	}
	if (failed && now - m->last_fail_log >= 60) {
		GW_LOG_ERR("renewal failed, retrying every second: %s", gw_err_msg());
		m->last_fail_log = now;
	}
	for (unsigned i = 0; i < gw_ca_n_backends(m->ca); i++) {
		struct gw_ca_info in;
		char what[128];

		if (gw_ca_backend_info(m->ca, i, &in) < 0)
			continue;
		snprintf(what, sizeof(what), "root of CA backend %s", in.name);
		warn_expiry(m, what, in.root, now);
		/* issuers and identities renew themselves: warn only when that is failing */
		snprintf(what, sizeof(what), "issuer of CA backend %s (renewal failing)", in.name);
		if (in.issuer && gw_rotation_renew_due(gw_ca_not_before(in.issuer),
					 gw_ca_not_after(in.issuer), now))
			warn_expiry(m, what, in.issuer, now);
	}
	for (unsigned i = 0; i < m->n_ids; i++) {
		char what[128];

		X509 *x = m->ids[i].cert;

		snprintf(what, sizeof(what), "identity of listener %s (renewal failing)",
			m->ids[i].listener);
		if (gw_rotation_renew_due(gw_ca_not_before(x), gw_ca_not_after(x), now))
			warn_expiry(m, what, x, now);
	}
	if (renewed && m->p.ops.publish && m->p.ops.publish(m->p.ops.arg) < 0)
		GW_LOG_ERR("publishing renewed identities failed: %s", gw_err_msg());
}

int
gw_mesh_run(struct gw_mesh *m, int timeout_ms)
{
	int rc = 0;

	if (m == NULL)
		return -EINVAL;
	if (m->admin)
		rc = gw_admin_run(m->admin, timeout_ms);
	else if (timeout_ms > 0)
		(void)poll(NULL, 0, timeout_ms); /* still the caller's wait: it must not spin */
	if (mesh_now(m) != m->last_tick) {
		m->last_tick = mesh_now(m);
		tick(m);
	}
	return rc;
}

/* ---- life ------------------------------------------------------------------------ */

int
gw_mesh_create(const struct gw_cfg *cfg, const struct gw_mesh_params *p, struct gw_mesh **out)
{
	struct gw_mesh *m;
	int rc;

	GW_ENSURE(cfg && p && out, -EINVAL);
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	m->cfg = cfg;
	m->p = *p;
	snprintf(m->roots_path, sizeof(m->roots_path), "%s/mesh-roots.pem", cfg->state_dir);
	snprintf(m->fleet_roots_path, sizeof(m->fleet_roots_path), "%s/fleet-roots.pem",
		cfg->state_dir);
	snprintf(m->roots_next, sizeof(m->roots_next), "%s.next", m->roots_path);
	if ((rc = gw_rotation_create(&m->rot)) < 0)
		goto fail;
	if (cfg->has_mtls && cfg->mtls.n_backends) {
		struct gw_ca_params cp;
		char token[33];

		gw_ca_params_from_cfg(cfg, &cp, token);
		if ((rc = gw_ca_create(&cfg->mtls, &cp, &m->ca)) < 0 ||
			(rc = write_roots(m->ca, m->roots_path)) < 0)
			goto fail;
	}
	if ((rc = ids_sync(m, m->ca, cfg, false, false)) < 0 || (rc = fcerts_load(m, cfg)) < 0)
		goto fail;
	if (cfg->admin.socket || cfg->admin.metrics_address) {
		struct gw_admin_ops ops = {.arg = m,
			.status = op_status,
			.reload = op_reload,
			.ca_enable = op_enable,
			.metrics = op_metrics};
		struct gw_admin_params ap = {.socket_path = cfg->admin.socket,
			.ca = m->ca,
			.ops = &ops,
			.metrics_name = cfg->admin.metrics_address};

		if (cfg->admin.metrics_address) {
			ap.metrics_sa = (const struct sockaddr *)&cfg->admin.metrics_sa;
			ap.metrics_sa_len = cfg->admin.metrics_sa_len;
		}
		if ((rc = gw_admin_start(&ap, &m->admin)) < 0)
			goto fail;
	}
	*out = m;
	return 0;
fail:
	gw_mesh_destroy(m);
	return rc;
}

void
gw_mesh_destroy(struct gw_mesh *m)
{
	if (m == NULL)
		return;
	gw_mesh_abort(m);
	gw_admin_stop(m->admin);
	free(m->fleet_roots);
	sk_X509_pop_free(m->fleet_stack, X509_free);
	for (unsigned i = 0; i < m->n_ids; i++) {
		free(m->ids[i].listener);
		free(m->ids[i].backend);
		X509_free(m->ids[i].cert);
	}
	free(m->ids);
	fcerts_free(m);
	free(m->enabled_override);
	gw_rotation_destroy(m->rot);
	gw_ca_destroy(m->ca);
	free(m);
}
