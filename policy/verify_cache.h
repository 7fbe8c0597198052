/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * verify_cache.h - a per-worker cache of accepted client chains, so a
 * returning client skips chain verification (docs/architecture.md "The data
 * path of one connection", step 5).
 *
 * One cache per worker lcore: not shared, no locks, no allocation after
 * creation. Only ACCEPTANCES are cached, keyed by the full SHA-256 of the
 * presented chain (gw_trust_chain_digest: every certificate, in order,
 * length-prefixed), the gw_trust's unique id and the snapshot generation.
 * An entry dies at the earliest notAfter of the verified chain (and the
 * earliest CRL nextUpdate), or after max_ttl, whichever is first. So a
 * lookup can only answer "accepted" for exactly the bytes that were accepted
 * before, by exactly that trust, in that generation, while still in date; a
 * miss always goes to the engine. A rejection is never cached, so the cache
 * can never turn one into an acceptance, nor keep a client out after the
 * operator fixed the trust.
 *
 * Bounded: capacity entries in 4-way sets, least recently used evicted.
 */
#ifndef GW_VERIFY_CACHE_H
#define GW_VERIFY_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "trust_verify.h"

struct gw_vcache;

struct gw_vcache_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t inserts;
	uint64_t evictions; /* a live entry pushed out by a newer one */
	uint64_t expired;   /* an entry found past its expiry (counted as a miss) */
};

/*
 * capacity: entries (rounded up to a power of two, at least 4).
 * max_ttl_s: longest an entry lives whatever the certificates say (0: no cap).
 * Returns 0 and *out, -EINVAL, -ENOMEM. Allocates once; call on the worker's
 * NUMA node / before the loop.
 */
GW_MUST_CHECK int gw_vcache_create(unsigned capacity, unsigned max_ttl_s, struct gw_vcache **out);

/* Free. NULL is fine. */
void gw_vcache_destroy(struct gw_vcache *c);

/*
 * Is an acceptance of exactly this chain digest by this trust in this
 * generation cached and unexpired at now? Single-threaded (the owner).
 */
bool gw_vcache_lookup(struct gw_vcache *c, const uint8_t digest[32], uint64_t trust_id,
	uint64_t generation, time_t now);

/* The same, and on a hit *until (if not NULL) = when the entry expires. */
bool gw_vcache_lookup_until(struct gw_vcache *c, const uint8_t digest[32], uint64_t trust_id,
	uint64_t generation, time_t now, time_t *until);

/*
 * Remember an acceptance valid until `until` (exclusive). An until <= now
 * is not stored. Evicts the least recently used entry of its set if full.
 */
void gw_vcache_insert(struct gw_vcache *c, const uint8_t digest[32], uint64_t trust_id,
	uint64_t generation, time_t now, time_t until);

/* Drop everything (e.g. a worker told to). */
void gw_vcache_clear(struct gw_vcache *c);

void gw_vcache_stats_get(const struct gw_vcache *c, struct gw_vcache_stats *st);

/* Number of entries currently held (live or not yet found expired). */
unsigned gw_vcache_count(const struct gw_vcache *c);

/*
 * What a worker calls: digest the chain, answer from the cache if it can,
 * else run gw_trust_verify_until() and cache an acceptance. Same returns and
 * verdict as gw_trust_verify(); on a hit v->cached is true, v->reason OK,
 * v->until the entry's expiry (never later than the engine's, maybe
 * earlier by max_ttl) and v->subject is left empty (read it from the leaf if needed). c may be
 * NULL (no cache). now = 0: current time. Single-threaded per cache.
 */
GW_MUST_CHECK int gw_trust_verify_cached(const struct gw_trust *t, uint64_t generation,
	struct gw_vcache *c, X509 *leaf, STACK_OF(X509) * chain_untrusted, time_t now,
	struct gw_trust_verdict *v);

#endif /* GW_VERIFY_CACHE_H */
