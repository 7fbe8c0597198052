/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_alog.h - the access log's records and the ring that carries them from
 * a worker to control (docs/operations.md "Access log").
 *
 * A worker never formats text or blocks for the access log: when a TLS
 * connection ends it fills one fixed-size binary record (bounded copies of
 * SNI, version, cipher, and the DER of the client's subject and
 * subjectAltName as the certificate holds them) and pushes it into its own
 * single-producer single-consumer ring. Control pops the records each
 * run/tick, decodes the DER, formats and writes (control/access_log.h). A
 * full ring drops the record and counts it (gw_alog_ring_dropped: the
 * metric mtlsgw_access_log_dropped_total); nothing waits.
 *
 * A field too long for its record slot is cut in the LOG only (flag
 * GW_ALOG_F_*_CUT: the line shows "..."); the trust decision was made on
 * the whole certificate before the record existed.
 *
 * No DPDK: C11 atomics, so control and its tests use it without the EAL.
 * Threading: one producer thread (the worker) calls gw_alog_push, one
 * consumer thread (control) gw_alog_pop; gw_alog_ring_dropped from any
 * thread. Create and destroy on control, while no worker runs.
 */
#ifndef GW_ALOG_H
#define GW_ALOG_H

#include <stdbool.h>
#include <stdint.h>

#include "gw_counters.h"
#include "gw_err.h"

#define GW_ALOG_SNI_MAX 256     /* with the NUL: a DNS name is at most 253 */
#define GW_ALOG_SUBJECT_MAX 384 /* DER of the client's subject name */
#define GW_ALOG_SAN_MAX 768     /* DER of its subjectAltName extension value */
#define GW_ALOG_RING_DEFAULT 2048

/*
 * Why a connection was refused (the counters' reason names: the trust
 * reasons of policy/trust_verify.h, then tls.h's handshake failures), or,
 * for an accepted one, GW_ALOG_R_NONE.
 */
#define GW_ALOG_REASONS(X)                                                           \
	X(NONE, "-")                                                                 \
	X(MALFORMED, "malformed")                                                    \
	X(NOT_PINNED, "not_pinned")                                                  \
	X(UNTRUSTED_ISSUER, "untrusted_issuer")                                      \
	X(SELF_SIGNED, "self_signed")                                                \
	X(EXPIRED, "expired")                                                        \
	X(NOT_YET_VALID, "not_yet_valid")                                            \
	X(BAD_SIGNATURE, "bad_signature")                                            \
	X(REVOKED, "revoked")                                                        \
	X(CRL, "crl")                                                                \
	X(EKU, "eku")                                                                \
	X(TOO_DEEP, "too_deep")                                                      \
	X(NAME_CONSTRAINTS, "name_constraints")                                      \
	X(NOT_CA, "not_ca")                                                          \
	X(NOT_ALLOWED, "not_allowed")                                                \
	X(OTHER, "other")                                                            \
	X(INTERNAL, "internal")                                                      \
	X(NO_CLIENT_CERT, "no_client_cert") /* client_auth required, none sent */    \
	X(HSM, "hsm")                       /* the server's signature failed */      \
	X(PROTO, "proto")                   /* protocol error, no common version */  \
	X(EOF, "eof")                       /* client closed during the handshake */ \
	X(HANDSHAKE_TIMEOUT, "handshake_timeout")

enum gw_alog_reason {
#define GW_ALOG_R_ENUM_(n, s) GW_ALOG_R_##n,
	GW_ALOG_REASONS(GW_ALOG_R_ENUM_)
#undef GW_ALOG_R_ENUM_
		GW_ALOG_R__COUNT
};

/* The reason's name ("untrusted_issuer"); "other" for a value out of range. */
const char *gw_alog_reason_name(unsigned r);

/* How an accepted connection ended. */
enum gw_alog_end {
	GW_ALOG_END_CLOSE,        /* close_notify/FIN both ways */
	GW_ALOG_END_RESET,        /* a reset or a record error on either side */
	GW_ALOG_END_IDLE_TIMEOUT, /* no plaintext either way for idle_timeout */
	GW_ALOG_END_UPSTREAM,     /* no upstream could be connected */
	GW_ALOG_END_SHUTDOWN,     /* the gateway stopped */
};

const char *gw_alog_end_name(unsigned e);

#define GW_ALOG_F_RESUMED 0x01     /* a resumed session (ticket) */
#define GW_ALOG_F_SNI_CUT 0x02     /* SNI longer than sni[]: "..." */
#define GW_ALOG_F_SUBJECT_CUT 0x04 /* subject DER longer than subject[]: "..." */
#define GW_ALOG_F_SAN_CUT 0x08     /* SAN DER longer than san[]: "..." */
#define GW_ALOG_F_PROXY 0x10       /* a tls-proxy connection: upstream fields apply */
#define GW_ALOG_F_CERT 0x20        /* the client presented a certificate */

/* One ended connection, as the worker saw it. Addresses in network order. */
struct gw_alog_rec {
	uint64_t end_ns;   /* CLOCK_REALTIME at the end */
	uint64_t dur_us;   /* TCP accept to the end */
	uint64_t rx_bytes; /* plaintext from the client */
	uint64_t tx_bytes; /* plaintext to the client */
	uint32_t client_ip, upstream_ip;
	uint16_t client_port, upstream_port;
	uint16_t listener; /* its index in the snapshot's listener table */
	uint8_t accepted;  /* verdict: the handshake completed */
	uint8_t reason;    /* enum gw_alog_reason (refused) */
	uint8_t end;       /* enum gw_alog_end (accepted) */
	uint8_t flags;     /* GW_ALOG_F_* */
	uint16_t subject_len, san_len;
	char version[16]; /* "TLSv1.3"; "" before the handshake chose one */
	char cipher[48];  /* "TLS_AES_128_GCM_SHA256"; "" likewise */
	char sni[GW_ALOG_SNI_MAX];
	uint8_t subject[GW_ALOG_SUBJECT_MAX];
	uint8_t san[GW_ALOG_SAN_MAX];
};

struct gw_alog_ring;

/*
 * A ring of n records (rounded up to a power of two; 0 =
 * GW_ALOG_RING_DEFAULT). Returns 0, -EINVAL, -ENOMEM.
 */
GW_MUST_CHECK int gw_alog_ring_create(unsigned n, struct gw_alog_ring **out);

/* NULL ok. */
void gw_alog_ring_destroy(struct gw_alog_ring *r);

/*
 * The producer's slot for the next record, or NULL when the ring is full
 * (the record is dropped and counted). Fill it, then gw_alog_push. No
 * allocation, no lock, no system call.
 */
struct gw_alog_rec *gw_alog_slot(struct gw_alog_ring *r);

/*
 * Stamp r's end_ns (CLOCK_REALTIME now, through the vDSO: no system call)
 * and dur_us: the TSC cycles from t_accept to now_tsc at tsc_hz.
 */
void gw_alog_stamp(struct gw_alog_rec *r, uint64_t t_accept, uint64_t now_tsc, uint64_t tsc_hz);

/* Publish the record gw_alog_slot returned (release store). */
void gw_alog_push(struct gw_alog_ring *r);

/*
 * The consumer's oldest record, or NULL when empty; valid until gw_alog_pop.
 */
const struct gw_alog_rec *gw_alog_peek(struct gw_alog_ring *r);

/* Done with the record gw_alog_peek returned: its slot is free again. */
void gw_alog_pop(struct gw_alog_ring *r);

/* Records dropped because the ring was full, since it was created. */
uint64_t gw_alog_ring_dropped(const struct gw_alog_ring *r);

/*
 * The "access_log" counter group: one member, dropped (Prometheus
 * mtlsgw_access_log_dropped_total, JSON "access_log":{"dropped":N}), one
 * word per worker: gw_alog_ring_dropped of its ring.
 */
extern const struct gw_ctr_group gw_alog_group;

#endif /* GW_ALOG_H */
