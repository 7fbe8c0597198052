/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rotation.c - the rotation validators and the renewal rule (rotation.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotation.h"

struct rot_entry {
	char name[64];
	uint64_t gen;
};

struct gw_rotation {
	struct rot_entry *e;
	unsigned n, cap;
};

bool
gw_rotation_renew_due(time_t nb, time_t na, time_t now)
{
	if (na <= nb)
		return true;
	/* in 64 bits: (na - nb) * 2 overflows nothing for certificate lifetimes */
	return (int64_t)now >= (int64_t)nb + ((int64_t)na - (int64_t)nb) * 2 / 3;
}

int
gw_rotation_create(struct gw_rotation **out)
{
	GW_ENSURE(out != NULL, -EINVAL);
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : gw_err_set(-ENOMEM, GW_HERE);
}

void
gw_rotation_destroy(struct gw_rotation *r)
{
	if (r == NULL)
		return;
	free(r->e);
	free(r);
}

static bool
has_backend(const struct gw_cfg_mtls *m, const char *name)
{
	for (unsigned i = 0; m && i < m->n_backends; i++)
		if (strcmp(m->backends[i].name, name) == 0)
			return true;
	return false;
}

uint64_t
gw_rotation_trusted_since(const struct gw_rotation *r, const char *backend)
{
	for (unsigned i = 0; r && backend && i < r->n; i++)
		if (strcmp(r->e[i].name, backend) == 0)
			return r->e[i].gen;
	return 0;
}

int
gw_rotation_published(struct gw_rotation *r, const struct gw_cfg_mtls *m, uint64_t gen)
{
	unsigned k = 0;

	GW_ENSURE(r && m && gen > 0, -EINVAL);
	for (unsigned i = 0; i < r->n; i++)
		if (has_backend(m, r->e[i].name))
			r->e[k++] = r->e[i];
	r->n = k;
	for (unsigned i = 0; i < m->n_backends; i++) {
		if (gw_rotation_trusted_since(r, m->backends[i].name))
			continue;
		if (r->n == r->cap) {
			unsigned cap = r->cap ? 2 * r->cap : 8;
			struct rot_entry *ne = realloc(r->e, cap * sizeof(*ne));

			if (ne == NULL)
				return gw_err_set(-ENOMEM, GW_HERE);
			r->e = ne;
			r->cap = cap;
		}
		snprintf(r->e[r->n].name, sizeof(r->e[r->n].name), "%s", m->backends[i].name);
		r->e[r->n++].gen = gen;
	}
	return 0;
}

static bool
str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The backend named like b in m, or NULL. */
static const struct gw_cfg_ca_backend *
find_backend(const struct gw_cfg_mtls *m, const char *name)
{
	for (unsigned i = 0; m && i < m->n_backends; i++)
		if (strcmp(m->backends[i].name, name) == 0)
			return &m->backends[i];
	return NULL;
}

/* The other boxes of env's fleet list what ("members", "leaves"): the next after *i, or NULL. */
static json_t *
other_member(const struct gw_rotation_env *env, const char *what, size_t *i)
{
	json_t *a = json_object_get(env->fleet, what);

	for (; *i < json_array_size(a); (*i)++) {
		json_t *m = json_array_get(a, *i);
		const char *node = json_string_value(json_object_get(m, "node"));

		if (node != NULL && (env->self == NULL || strcmp(node, env->self) != 0)) {
			(*i)++;
			return m;
		}
	}
	return NULL;
}

/* Step 2 in a fleet: does every other member report a live snapshot trusting b? */
static int
fleet_trusts(const struct gw_rotation_env *env, const char *b)
{
	size_t i = 0;
	json_t *m;

	if (env->fleet == NULL)
		return 0;
	if (env->fleet_down)
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"rotation rule enable-after-trust: the fleet's members cannot be asked "
			"whether they trust backend %s (etcd does not answer); retry when it does",
			b);
	while ((m = other_member(env, "members", &i)) != NULL) {
		json_t *trusts = json_object_get(json_object_get(m, "mesh"), "trusts"), *t;
		size_t k;
		bool yes = false;

		json_array_foreach(trusts, k, t) yes |=
			json_is_string(t) && strcmp(json_string_value(t), b) == 0;
		if (!yes)
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"rotation rule enable-after-trust: backend %s is not yet trusted "
				"by fleet member %s (it reports no live snapshot trusting it); "
				"retry once every member runs the config that adds it",
				b, json_string_value(json_object_get(m, "node")));
	}
	return 0;
}

/* Step 3 in a fleet: may backend a go, for the other boxes' certificates? */
static int
fleet_expired(const struct gw_rotation_env *env, const char *a, time_t now)
{
	size_t i = 0;
	json_t *m;

	if (env->fleet == NULL)
		return 0;
	if (env->fleet_down)
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"rotation rule remove-after-expiry: the fleet's members cannot be asked "
			"for certificates of backend %s still valid (etcd does not answer); retry "
			"when it does, or force it (--force)",
			a);
	while ((m = other_member(env, "leaves", &i)) != NULL) {
		json_t *r = json_object_get(json_object_get(m, "backends"), a);
		json_int_t n = json_integer_value(json_object_get(r, "live"));
		time_t until = (time_t)json_integer_value(json_object_get(r, "until"));
		char when[32] = "?";
		struct tm tm;

		if (n <= 0 || until <= now)
			continue;
		if (gmtime_r(&until, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"rotation rule remove-after-expiry: backend %s issued %lld certificate%s "
			"still valid on fleet member %s (the last until %s); remove it after "
			"that, or force it (--force) to cut those clients off",
			a, (long long)n, n == 1 ? "" : "s",
			json_string_value(json_object_get(m, "node")), when);
	}
	return 0;
}

int
gw_rotation_check(const struct gw_rotation *r, const struct gw_cfg_mtls *old,
	const struct gw_cfg_mtls *new_, const struct gw_rotation_env *env)
{
	time_t now;

	GW_ENSURE(r && new_ && env, -EINVAL);
	if (old == NULL || old->n_backends == 0)
		return 0;
	now = env->now ? env->now : time(NULL);
	/* a CA that changes under its name would be a rotation without its steps */
	for (unsigned i = 0; i < new_->n_backends; i++) {
		const struct gw_cfg_ca_backend *n = &new_->backends[i],
					       *o = find_backend(old, n->name);

		if (o && (o->type != n->type || o->key_type != n->key_type ||
				 !str_eq(o->cert, n->cert) || !str_eq(o->key, n->key) ||
				 !str_eq(o->url, n->url) || !str_eq(o->profile, n->profile)))
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"rotation rule backend-unchanged: backend %s changed its type or "
				"conf; give the new CA another name and rotate to it (add, enable, "
				"remove)",
				n->name);
	}
	/* step 3: removing backends */
	for (unsigned i = 0; i < old->n_backends; i++) {
		const char *a = old->backends[i].name;
		unsigned n = 0;
		int64_t latest = 0;
		char when[32] = "?";
		struct tm tm;

		if (has_backend(new_, a))
			continue;
		if (old->enabled_backend && strcmp(old->enabled_backend, a) == 0)
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"rotation rule remove-not-enabled: backend %s is the enabled "
				"backend; enable another backend first (step 2), then remove it",
				a);
		if (env->force)
			continue;
		GW_GUARD(fleet_expired(env, a, now));
		if (env->st == NULL)
			continue;
		GW_GUARD(gw_state_certs_live(env->st, a, now, &n, &latest));
		if (n == 0)
			continue;
		time_t t = (time_t)latest;

		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"rotation rule remove-after-expiry: backend %s issued %u certificate%s "
			"still valid (the last until %s); remove it after that, or force it "
			"(--force) to cut those clients off",
			a, n, n == 1 ? "" : "s", when);
	}
	/* step 2: switching the issuing backend */
	if (new_->enabled_backend && old->enabled_backend &&
		strcmp(new_->enabled_backend, old->enabled_backend) != 0) {
		const char *b = new_->enabled_backend;
		uint64_t since = gw_rotation_trusted_since(r, b);

		if (!has_backend(old, b))
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"rotation rule add-before-enable: backend %s is new; add it with "
				"enabledBackend still %s first (step 1), then enable it",
				b, old->enabled_backend);
		if (since == 0 || env->live_gen < since)
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"rotation rule enable-after-trust: backend %s is not yet trusted "
				"by "
				"every worker (snapshot generation %llu trusts it; every worker "
				"has "
				"acknowledged generation %llu); retry shortly",
				b, (unsigned long long)since, (unsigned long long)env->live_gen);
		GW_GUARD(fleet_trusts(env, b));
	}
	return 0;
}
