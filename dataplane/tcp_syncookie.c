/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tcp_syncookie.c - the stack's secrets at work: SipHash-2-4 initial
 * sequence numbers (RFC 6528) and SYN cookies (RFC 4987), both keyed from
 * RAND_bytes and wiped in gw_tcp_stack_destroy().
 */
#include <openssl/rand.h>

#include <rte_common.h>

#include "tcp_internal.h"

/* ---------- SipHash-2-4 (ISNs per RFC 6528, SYN cookie MACs) ---------- */

#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND                      \
	do {                           \
		v0 += v1;              \
		v1 = SIP_ROTL(v1, 13); \
		v1 ^= v0;              \
		v0 = SIP_ROTL(v0, 32); \
		v2 += v3;              \
		v3 = SIP_ROTL(v3, 16); \
		v3 ^= v2;              \
		v0 += v3;              \
		v3 = SIP_ROTL(v3, 21); \
		v3 ^= v0;              \
		v2 += v1;              \
		v1 = SIP_ROTL(v1, 17); \
		v1 ^= v2;              \
		v2 = SIP_ROTL(v2, 32); \
	} while (0)

static uint64_t
tcp_siphash(const uint64_t k[2], uint64_t m0, uint64_t m1)
{
	uint64_t v0 = k[0] ^ 0x736f6d6570736575ULL, v1 = k[1] ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k[0] ^ 0x6c7967656e657261ULL, v3 = k[1] ^ 0x7465646279746573ULL;
	uint64_t m[3] = {m0, m1, 16ULL << 56};

	for (int i = 0; i < 3; i++) {
		v3 ^= m[i];
		SIP_ROUND;
		SIP_ROUND;
		v0 ^= m[i];
	}
	v2 ^= 0xff;
	SIP_ROUND;
	SIP_ROUND;
	SIP_ROUND;
	SIP_ROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t
tcp_key_word(const struct gw_tcp_key *k)
{
	return (uint64_t)k->laddr << 32 | k->raddr;
}

static uint64_t
tcp_port_word(const struct gw_tcp_key *k)
{
	return (uint64_t)k->lport << 16 | k->rport;
}

/* RFC 6528: ISN = M + F(4-tuple, secret), M a 4 microsecond clock */
uint32_t
tcp_isn(struct gw_tcp_stack *s, const struct gw_tcp_key *k)
{
	return (uint32_t)tcp_siphash(s->secret, tcp_key_word(k), tcp_port_word(k)) +
	       (uint32_t)(s->now_us >> 2);
}

/*
 * A fresh 128-bit key. Every secret comes from OpenSSL's CSPRNG (DPDK
 * documents rte_rand() as not cryptographically secure); params.secret_seed
 * (tests) derives keys deterministically from the seed and tweak instead.
 * If RAND_bytes fails, the key is a keyed hash of the previous one: still
 * unpredictable to anyone who did not know that. Returns 0 or -EIO.
 */
int
tcp_key_fill(const struct gw_tcp_stack *s, uint64_t k[2], uint64_t tweak)
{
	if (s->p.secret_seed) {
		k[0] = s->p.secret_seed * 0x9e3779b97f4a7c15ULL + tweak;
		k[1] = (s->p.secret_seed ^ tweak) * 0xc2b2ae3d27d4eb4fULL + 1;
		return 0;
	}
	if (RAND_bytes((unsigned char *)k, 2 * sizeof(k[0])) == 1)
		return 0;
	k[0] = tcp_siphash(k, tweak, 1);
	k[1] = tcp_siphash(k, tweak, 2);
	return -EIO;
}

/* ---------- SYN cookies (RFC 4987) ----------
 * 32 bits: [31:27] time slot (64 s, mod 32) [26:25] MSS index [24:0] MAC over
 * the 4-tuple, the client's ISN, slot and MSS index. No room for window
 * scale: a cookie connection runs unscaled (as Linux without timestamps).
 * Each slot has its own MAC key, made when the slot begins: a cookie is
 * valid in its slot and the next one (64..128 s) and the key of a slot
 * older than that no longer exists.
 */
static const uint16_t tcp_cookie_mss[4] = {536, 1220, 1440, 1460};

/* Rekey when a new slot begins (lazily, on the next cookie made or checked). */
static void
tcp_cookie_rekey(struct gw_tcp_stack *s)
{
	uint64_t period = s->now_ms / GW_TCP_COOKIE_SLOT_MS;

	if (period == s->ck_period)
		return;
	if (period != s->ck_period + 1) {
		/* more than one slot passed: the previous slot's key was never
		 * made, so nothing may verify against the old one */
		(void)tcp_key_fill(s, s->ck_key[(period - 1) & 1], period - 1);
	}
	(void)tcp_key_fill(s, s->ck_key[period & 1], period);
	s->ck_period = period;
}

static uint32_t
tcp_cookie_mac(struct gw_tcp_stack *s, const struct gw_tcp_key *k, uint32_t irs, uint32_t slot,
	uint32_t mssi, uint64_t period)
{
	uint64_t m1 = tcp_port_word(k) << 32 | irs;
	uint64_t h = tcp_siphash(
		s->ck_key[period & 1], tcp_key_word(k) ^ ((uint64_t)(slot << 2 | mssi) << 56), m1);

	return (uint32_t)h & 0x1ffffff;
}

uint32_t
tcp_cookie_make(struct gw_tcp_stack *s, const struct gw_tcp_key *k, uint32_t irs, uint16_t mss)
{
	uint32_t slot, mssi = 0;

	tcp_cookie_rekey(s);
	slot = (uint32_t)s->ck_period & 31;
	for (uint32_t i = 0; i < RTE_DIM(tcp_cookie_mss); i++)
		if (tcp_cookie_mss[i] <= mss)
			mssi = i;
	return slot << 27 | mssi << 25 | tcp_cookie_mac(s, k, irs, slot, mssi, s->ck_period);
}

/* Returns the MSS encoded in a valid cookie, 0 if forged or stale. */
uint16_t
tcp_cookie_check(struct gw_tcp_stack *s, const struct gw_tcp_key *k, uint32_t irs, uint32_t cookie)
{
	uint32_t slot = cookie >> 27, mssi = (cookie >> 25) & 3;
	uint64_t period;

	tcp_cookie_rekey(s);
	/* valid for the current and the previous slot: 64..128 s */
	if (slot == (s->ck_period & 31))
		period = s->ck_period;
	else if (slot == ((s->ck_period - 1) & 31))
		period = s->ck_period - 1;
	else
		return 0;
	if ((cookie & 0x1ffffff) != tcp_cookie_mac(s, k, irs, slot, mssi, period))
		return 0;
	return tcp_cookie_mss[mssi];
}
