/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * verify_cache.c - per-worker cache of accepted chains (see verify_cache.h).
 *
 * A set-associative table: the set comes from the digest's first bytes, the
 * match is on the whole key (32-byte digest, trust id, generation), so two
 * chains can only share an entry if SHA-256 collides. LRU per set by a tick.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "verify_cache.h"

#define GW_VCACHE_WAYS 4

struct gw_vcache_entry {
	uint8_t digest[32];
	uint64_t trust_id; /* 0 = empty slot (trust ids start at 1) */
	uint64_t generation;
	time_t until;
	uint64_t used; /* tick of the last hit or insert */
};

struct gw_vcache {
	uint32_t set_mask;
	unsigned max_ttl;
	uint64_t tick;
	struct gw_vcache_stats st;
	struct gw_vcache_entry *e; /* (set_mask + 1) * GW_VCACHE_WAYS */
};

int
gw_vcache_create(unsigned capacity, unsigned max_ttl_s, struct gw_vcache **out)
{
	struct gw_vcache *c;
	uint32_t sets = 1;

	GW_ENSURE(out != NULL && capacity > 0 && capacity <= (1u << 24), -EINVAL);
	while (sets * GW_VCACHE_WAYS < capacity)
		sets <<= 1;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	c->e = calloc((size_t)sets * GW_VCACHE_WAYS, sizeof(*c->e));
	if (c->e == NULL) {
		free(c);
		return gw_err_set(-ENOMEM, GW_HERE);
	}
	c->set_mask = sets - 1;
	c->max_ttl = max_ttl_s;
	*out = c;
	return 0;
}

void
gw_vcache_destroy(struct gw_vcache *c)
{
	if (c == NULL)
		return;
	free(c->e);
	free(c);
}

static struct gw_vcache_entry *
set_of(const struct gw_vcache *c, const uint8_t digest[32])
{
	uint32_t h;

	/* the digest is uniformly distributed already: its first bytes index */
	memcpy(&h, digest, sizeof(h));
	return &c->e[(size_t)(h & c->set_mask) * GW_VCACHE_WAYS];
}

static bool
same_key(const struct gw_vcache_entry *e, const uint8_t digest[32], uint64_t trust_id,
	uint64_t generation)
{
	return e->trust_id == trust_id && e->generation == generation &&
	       memcmp(e->digest, digest, 32) == 0;
}

bool
gw_vcache_lookup(struct gw_vcache *c, const uint8_t digest[32], uint64_t trust_id,
	uint64_t generation, time_t now)
{
	return gw_vcache_lookup_until(c, digest, trust_id, generation, now, NULL);
}

bool
gw_vcache_lookup_until(struct gw_vcache *c, const uint8_t digest[32], uint64_t trust_id,
	uint64_t generation, time_t now, time_t *until)
{
	struct gw_vcache_entry *s;

	if (c == NULL || digest == NULL || trust_id == 0)
		return false;
	s = set_of(c, digest);
	for (unsigned w = 0; w < GW_VCACHE_WAYS; w++) {
		if (!same_key(&s[w], digest, trust_id, generation))
			continue;
		if (now >= s[w].until) {
			memset(&s[w], 0, sizeof(s[w]));
			c->st.expired++;
			break;
		}
		s[w].used = ++c->tick;
		c->st.hits++;
		if (until != NULL)
			*until = s[w].until;
		return true;
	}
	c->st.misses++;
	return false;
}

void
gw_vcache_insert(struct gw_vcache *c, const uint8_t digest[32], uint64_t trust_id,
	uint64_t generation, time_t now, time_t until)
{
	struct gw_vcache_entry *s, *victim = NULL;

	if (c == NULL || digest == NULL || trust_id == 0)
		return;
	if (c->max_ttl != 0 && until > now + (time_t)c->max_ttl)
		until = now + (time_t)c->max_ttl;
	if (until <= now)
		return;
	s = set_of(c, digest);
	for (unsigned w = 0; w < GW_VCACHE_WAYS; w++) {
		if (s[w].trust_id == 0 || same_key(&s[w], digest, trust_id, generation)) {
			victim = &s[w];
			break;
		}
		/* an entry past its expiry is as good as empty */
		if (s[w].until <= now) {
			victim = &s[w];
			break;
		}
		if (victim == NULL || s[w].used < victim->used)
			victim = &s[w];
	}
	if (victim->trust_id != 0 && !same_key(victim, digest, trust_id, generation) &&
		victim->until > now)
		c->st.evictions++;
	memcpy(victim->digest, digest, 32);
	victim->trust_id = trust_id;
	victim->generation = generation;
	victim->until = until;
	victim->used = ++c->tick;
	c->st.inserts++;
}

void
gw_vcache_clear(struct gw_vcache *c)
{
	if (c == NULL)
		return;
	memset(c->e, 0, (size_t)(c->set_mask + 1) * GW_VCACHE_WAYS * sizeof(*c->e));
}

void
gw_vcache_stats_get(const struct gw_vcache *c, struct gw_vcache_stats *st)
{
	if (c == NULL || st == NULL)
		return;
	*st = c->st;
}

unsigned
gw_vcache_count(const struct gw_vcache *c)
{
	unsigned n = 0;

	if (c == NULL)
		return 0;
	for (size_t i = 0; i < (size_t)(c->set_mask + 1) * GW_VCACHE_WAYS; i++)
		n += c->e[i].trust_id != 0;
	return n;
}

int
gw_trust_verify_cached(const struct gw_trust *t, uint64_t generation, struct gw_vcache *c,
	X509 *leaf, STACK_OF(X509) * chain, time_t now, struct gw_trust_verdict *v)
{
	uint8_t digest[32];
	time_t until = 0;
	bool have_digest;
	int rc;

	if (v == NULL || t == NULL || leaf == NULL)
		return gw_trust_verify(t, leaf, chain, now, v); /* fills v, -EINVAL */
	if (now == 0)
		now = time(NULL);
	have_digest = c != NULL && gw_trust_chain_digest(leaf, chain, digest) == 0;
	if (have_digest &&
		gw_vcache_lookup_until(c, digest, gw_trust_id(t), generation, now, &until)) {
		memset(v, 0, sizeof(*v));
		v->until = until;
		v->accepted = true;
		v->reason = GW_TRUST_R_OK;
		v->depth = 0;
		v->cached = true;
		return 0;
	}
	rc = gw_trust_verify_until(t, leaf, chain, now, v, &until);
	if (rc == 0 && have_digest)
		gw_vcache_insert(c, digest, gw_trust_id(t), generation, now, until);
	return rc;
}
