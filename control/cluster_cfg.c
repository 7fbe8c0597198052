/* SPDX-License-Identifier: BSD-3-Clause */
/* cluster_cfg.c - the fleet's shared config (cluster_cfg.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cluster_cfg.h"

/* ---- the shared blocks of a config's text ---- */

/* A top-level key line: "listeners:" or "mtls:" (then the block's start), else NULL. */
static const char *
shared_key(const char *line, size_t len)
{
	static const char *const keys[] = {"listeners", "mtls"};

	for (unsigned i = 0; i < 2; i++) {
		size_t k = strlen(keys[i]);
		size_t j = k;

		if (len <= k || strncmp(line, keys[i], k) != 0)
			continue;
		while (j < len && line[j] == ' ')
			j++;
		if (j < len && line[j] == ':')
			return keys[i];
	}
	return NULL;
}

/* A line that belongs to the block above it: blank, indented, a "- " item or a comment. */
static bool
continues(const char *line, size_t len)
{
	return len == 0 || line[0] == ' ' || line[0] == '\t' || line[0] == '#' || line[0] == '-' ||
	       line[0] == '\r';
}

/*
 * Walk text's lines: keep (true) copies the shared blocks to out, keep
 * (false) everything else. Checks what extract needs (one listeners: block,
 * block style, one document).
 */
static int
split(const char *text, bool shared, FILE *out, unsigned *n_listeners)
{
	bool in = false, seen_mtls = false;
	const char *p = text;

	*n_listeners = 0;
	while (*p != '\0') {
		size_t len = strcspn(p, "\n");
		const char *key;

		if (len >= 3 && (strncmp(p, "---", 3) == 0 || strncmp(p, "...", 3) == 0) &&
			p != text)
			return gw_err_setf(-EINVAL, GW_HERE,
				"several YAML documents ('%.3s' line): a pushed config is one", p);
		if (!continues(p, len)) {
			key = shared_key(p, len);
			in = key != NULL;
			if (key != NULL) {
				const char *v = memchr(p, ':', len) + 1;

				while (v < p + len && (*v == ' ' || *v == '\t'))
					v++;
				if (v < p + len && *v != '#' && *v != '\r')
					return gw_err_setf(-EINVAL, GW_HERE,
						"top-level '%s:' is written inline (flow style): "
						"write it as an indented block to push it",
						key);
				if (strcmp(key, "listeners") == 0)
					(*n_listeners)++;
				else if (seen_mtls)
					return gw_err_setf(
						-EINVAL, GW_HERE, "two top-level 'mtls:'");
				else
					seen_mtls = true;
			}
		}
		if (in == shared && out != NULL)
			fprintf(out, "%.*s\n", (int)len, p);
		p += len + (p[len] == '\n');
	}
	return 0;
}

static int
split_to(const char *text, bool shared, char **out, unsigned *n_listeners)
{
	size_t len = 0;
	FILE *f;
	int rc;

	*out = NULL;
	f = open_memstream(out, &len);
	GW_ENSURE(f, -ENOMEM);
	rc = split(text, shared, f, n_listeners);
	if (fclose(f) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc < 0) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

int
gw_cluster_shared_extract(const char *text, char **shared)
{
	unsigned n;

	GW_ENSURE(text && shared, -EINVAL);
	GW_GUARD(split_to(text, true, shared, &n));
	if (n != 1) {
		free(*shared);
		*shared = NULL;
		return gw_err_setf(-EINVAL, GW_HERE,
			n == 0 ? "no top-level 'listeners:' block to push"
			       : "two top-level 'listeners:' blocks");
	}
	if (strlen(*shared) > GW_CLUSTER_SHARED_MAX) {
		free(*shared);
		*shared = NULL;
		return gw_err_setf(-EINVAL, GW_HERE, "the shared part is over %u bytes",
			GW_CLUSTER_SHARED_MAX);
	}
	return 0;
}

int
gw_cluster_shared_merge(const char *text, const char *shared, char **out)
{
	char *own = NULL;
	unsigned n;
	int rc;

	GW_ENSURE(text && shared && out, -EINVAL);
	GW_GUARD(split_to(text, false, &own, &n));
	rc = asprintf(out, "%s\n# pushed (mtlsgw-ctl cluster push):\n%s", own, shared) < 0 ? -ENOMEM
											   : 0;
	free(own);
	if (rc < 0)
		*out = NULL;
	return rc;
}

/* ---- the files the shared part reads ---- */

static void
hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void
add_file(json_t *files, const char *field, const struct gw_material *m)
{
	char h[65];

	if (m == NULL || m->path == NULL || m->bytes == NULL)
		return;
	hex(m->sha256, sizeof(m->sha256), h);
	json_object_set_new(files, field, json_pack("{s:s,s:s}", "path", m->path, "sha256", h));
}

json_t *
gw_cluster_shared_files(const struct gw_cfg *cfg)
{
	json_t *files = json_object();
	char f[256];

	if (files == NULL || cfg == NULL)
		return files;
	for (unsigned i = 0; i < cfg->n_listeners; i++) {
		const struct gw_cfg_listener *l = &cfg->listeners[i];

		/* identity certificates are each box's own (its key, its token): not compared */
		for (unsigned j = 0; l->has_trust && l->trust.certs_m && j < l->trust.n_certs;
			j++) {
			snprintf(f, sizeof(f), "listeners[%s].trust.certs[%u]", l->name, j);
			add_file(files, f, &l->trust.certs_m[j]);
		}
		for (unsigned j = 0; l->has_trust && l->trust.crl_m && j < l->trust.n_crl; j++) {
			snprintf(f, sizeof(f), "listeners[%s].trust.crl[%u]", l->name, j);
			add_file(files, f, &l->trust.crl_m[j]);
		}
	}
	for (unsigned i = 0; cfg->has_mtls && i < cfg->mtls.n_backends; i++) {
		snprintf(f, sizeof(f), "mtls.backends[%s].conf.cert", cfg->mtls.backends[i].name);
		add_file(files, f, &cfg->mtls.backends[i].cert_m);
	}
	return files;
}

int
gw_cluster_shared_check_files(const struct gw_cfg *cfg, json_t *files)
{
	json_t *mine = gw_cluster_shared_files(cfg), *v;
	const char *field;
	int rc = 0;

	GW_ENSURE(mine, -ENOMEM);
	json_object_foreach(files, field, v)
	{
		json_t *here = json_object_get(mine, field);
		const char *want = json_string_value(json_object_get(v, "sha256"));
		const char *from = json_string_value(json_object_get(v, "path"));
		const char *got = json_string_value(json_object_get(here, "sha256"));

		if (want == NULL || from == NULL) {
			rc = gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"pushed file list: '%s' has no path and sha256", field);
			break;
		}
		if (got == NULL) {
			rc = gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"%s: this box's config has no such file (pushed: %s)", field, from);
			break;
		}
		if (strcmp(got, want) != 0) {
			rc = gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"%s: %s differs from the pushed one (sha256 %.12s... here, "
				"%.12s... "
				"in %s on the pusher): copy it to this box first",
				field, json_string_value(json_object_get(here, "path")), got, want,
				from);
			break;
		}
	}
	json_decref(mine);
	return rc;
}

void
gw_cluster_shared_digest(
	const char *name, uint64_t revision, const char *shared, json_t *files, uint8_t out[32])
{
	char *f = json_dumps(files, JSON_COMPACT | JSON_SORT_KEYS);
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	uint8_t rev[8];
	unsigned n = 32;

	for (int i = 7; i >= 0; i--, revision >>= 8)
		rev[i] = (uint8_t)revision;
	memset(out, 0, 32);
	if (x != NULL && EVP_DigestInit_ex(x, EVP_sha256(), NULL) == 1) {
		EVP_DigestUpdate(
			x, "mtlsgw-config", 14); /* with its NUL: fields never run together */
		EVP_DigestUpdate(x, name, strlen(name) + 1);
		EVP_DigestUpdate(x, rev, sizeof(rev));
		EVP_DigestUpdate(x, shared, strlen(shared) + 1);
		if (f != NULL)
			EVP_DigestUpdate(x, f, strlen(f));
		EVP_DigestFinal_ex(x, out, &n);
	}
	EVP_MD_CTX_free(x);
	free(f);
}

void
gw_cluster_shared_aad(const char *name, uint64_t revision, char *buf, size_t len)
{
	snprintf(buf, len, "mtlsgw/%s/config/%" PRIu64, name, revision);
}

/* ---- push ---- */

/*
 * gw_etcd_kv_fn: *arg = max(*arg, the member's config revision, applied and
 * seen). "revision" alone is not enough: after refusing a replayed older
 * value a member reports that one, while it still refuses anything up to
 * the newest it has seen.
 */
static int
max_reported(void *arg, const char *key, const uint8_t *val, size_t len, int64_t mod_revision)
{
	static const char *const fields[] = {"revision", "applied", "seen"};
	uint64_t *rev = arg;
	json_t *o = json_loadb((const char *)val, len, 0, NULL);
	json_t *cf = json_object_get(o, "config");

	(void)key;
	(void)mod_revision;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		json_int_t r = json_integer_value(json_object_get(cf, fields[i]));

		if (r > 0 && (uint64_t)r > *rev)
			*rev = (uint64_t)r;
	}
	json_decref(o);
	return 0;
}

int
gw_cluster_push(struct gw_etcd *e, struct gw_hsm *h, const struct gw_cfg *cfg, const char *text,
	const char *pushed_by, uint64_t *revision)
{
	char key[GW_CFG_CLUSTER_NAME_MAX + 32], aad[GW_CFG_CLUSTER_NAME_MAX + 48];
	uint8_t digest[32], sealed[32 + GW_HSM_SEAL_OVERHEAD], *cur = NULL;
	char b64[((sizeof(sealed) + 2) / 3) * 4 + 1];
	size_t n = sizeof(sealed), cur_len = 0;
	int64_t mod = 0;
	uint64_t rev = 0;
	char *shared = NULL, *val = NULL;
	json_t *files = NULL, *o = NULL;
	int rc;

	GW_ENSURE(e && h && cfg && text && revision && cfg->has_cluster, -EINVAL);
	snprintf(key, sizeof(key), "/mtlsgw/%s/config", cfg->cluster.name);
	GW_GUARD(gw_cluster_shared_extract(text, &shared));
	files = gw_cluster_shared_files(cfg);
	if (files == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = gw_etcd_get(e, key, &cur, &cur_len, &mod);
	if (rc == 0) {
		json_t *c = json_loadb((const char *)cur, cur_len, 0, NULL);
		json_int_t r = json_integer_value(json_object_get(c, "revision"));
		const char *s = json_string_value(json_object_get(c, "shared"));

		if (r < 1) {
			json_decref(c);
			rc = gw_err_setf(-GW_E_PARSE, GW_HERE,
				"%s holds no pushed config (no revision): delete it or fix it",
				key);
			goto out;
		}
		rev = (uint64_t)r;
		if (s != NULL && strcmp(s, shared) == 0 &&
			json_equal(json_object_get(c, "files"), files)) {
			json_decref(c);
			*revision = rev;
			rc = gw_err_setf(-EALREADY, GW_HERE,
				"revision %" PRIu64 " already holds this config: nothing pushed",
				rev);
			goto out;
		}
		json_decref(c);
	} else if (rc != -ENOENT) {
		goto out;
	}
	/* after any revision a member reports too: one put back by hand (a
	 * replay) or a deleted key must not make the next push look stale */
	{
		char mk[GW_CFG_CLUSTER_NAME_MAX + 32];

		snprintf(mk, sizeof(mk), "/mtlsgw/%s/members/", cfg->cluster.name);
		rc = gw_etcd_get_prefix(e, mk, max_reported, &rev);
		if (rc < 0)
			goto out;
	}
	rev++;
	gw_cluster_shared_digest(cfg->cluster.name, rev, shared, files, digest);
	gw_cluster_shared_aad(cfg->cluster.name, rev, aad, sizeof(aad));
	rc = gw_hsm_seal(h, cfg->cluster.ticket_key, (const uint8_t *)aad, strlen(aad), digest,
		sizeof(digest), sealed, &n);
	if (rc < 0)
		goto out;
	EVP_EncodeBlock((unsigned char *)b64, sealed, (int)n);
	o = json_pack("{s:I,s:I,s:s,s:s,s:O,s:s}", "revision", (json_int_t)rev, "pushed_at",
		(json_int_t)time(NULL), "pushed_by", pushed_by ? pushed_by : "", "shared", shared,
		"files", files, "seal", b64);
	val = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (val == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = gw_etcd_put_if(e, key, val, strlen(val), mod, 0);
	if (rc == -EEXIST || rc == -ESTALE)
		rc = gw_err_setf(-ESTALE, GW_HERE,
			"another push stored a revision meanwhile: check `mtlsgw-ctl cluster "
			"status` and push again");
	if (rc == 0)
		*revision = rev;
out:
	free(cur);
	free(shared);
	free(val);
	json_decref(o);
	json_decref(files);
	return rc;
}
