/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proxy_v2.h - PROXY protocol version 2 header encoder (the contract).
 *
 * When a tcp-proxy or tls-proxy listener has `proxy_protocol: v2`, the
 * worker sends this header as the first bytes of the upstream connection,
 * so the upstream learns who the client is. tcp-proxy sends the address
 * block only (no TLV: a plain TCP client is not authenticated); tls-proxy
 * adds the SNI and ALPN it asked for, the TLS parameters, the CN of its
 * certificate and its SPIFFE ID. Format: haproxy's doc/proxy-protocol.txt,
 * section 2.2 (binary header + TLVs).
 *
 * Layout we emit (all integers big-endian):
 *
 *	12 B signature  0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
 *	 1 B 0x21        version 2, command PROXY
 *	 1 B 0x11        AF_INET, STREAM (TCP over IPv4)
 *	 2 B len         bytes that follow (12 + TLVs)
 *	 4+4+2+2 B       src addr, dst addr, src port, dst port
 *	TLVs (tls-proxy only), in this order, each only when its field is set:
 *	  PP2_TYPE_ALPN (0x01)        the negotiated ALPN protocol
 *	  PP2_TYPE_AUTHORITY (0x02)   the SNI host name
 *	  PP2_TYPE_SSL (0x20)         client flags (1 B), verify result (4 B),
 *	                              then sub-TLVs VERSION (0x21), CN (0x22),
 *	                              CIPHER (0x23), SIG_ALG (0x24), KEY_ALG (0x25)
 *	  GW_PP2_TYPE_CLIENT_ID (0xE0) mtlsgw's own TLV, from the spec's custom
 *	                              range 0xE0..0xEF: the client's SPIFFE ID or,
 *	                              without one, the first URI SAN of its
 *	                              certificate, as UTF-8 ("spiffe://td/x")
 *
 * Pure C, no DPDK: the worker calls it once per upstream connection, the
 * unit test and fuzzers call it directly. No allocation, no logging; errors
 * record only code and place in the thread's gw_err slot (dataplane rule).
 * gw_pp2_info_from_ssl() fills the TLS half of the info from a finished
 * server-side SSL (OpenSSL only), so the worker adds just its 4-tuple.
 */
#ifndef GW_PROXY_V2_H
#define GW_PROXY_V2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "gw_err.h"

/* Fixed part: signature, ver/cmd, family, length. */
#define GW_PP2_HDR_LEN 16
/* The IPv4 address block: two addresses and two ports. */
#define GW_PP2_INET_LEN 12
/* The length field is 16 bits: everything after the fixed part. */
#define GW_PP2_MAX_LEN (GW_PP2_HDR_LEN + 0xffff)

#define GW_PP2_TYPE_ALPN 0x01
#define GW_PP2_TYPE_AUTHORITY 0x02
#define GW_PP2_TYPE_SSL 0x20
#define GW_PP2_SUBTYPE_SSL_VERSION 0x21
#define GW_PP2_SUBTYPE_SSL_CN 0x22
#define GW_PP2_SUBTYPE_SSL_CIPHER 0x23
#define GW_PP2_SUBTYPE_SSL_SIG_ALG 0x24
#define GW_PP2_SUBTYPE_SSL_KEY_ALG 0x25
#define GW_PP2_TYPE_MIN_CUSTOM 0xE0
#define GW_PP2_TYPE_MAX_CUSTOM 0xEF
/* mtlsgw's TLV: client's SPIFFE ID, or its first URI SAN (README, "PROXY v2"). */
#define GW_PP2_TYPE_CLIENT_ID 0xE0

/* pp2_tlv_ssl.client bits. */
#define GW_PP2_CLIENT_SSL 0x01       /* connected over TLS: VERSION required */
#define GW_PP2_CLIENT_CERT_CONN 0x02 /* sent a certificate on this connection */
#define GW_PP2_CLIENT_CERT_SESS 0x04 /* sent one at least once in this session */

/*
 * What the header says. Addresses and ports are in network byte order,
 * exactly as they sit in the IPv4 and TCP headers of the client connection
 * (src = the client, dst = the listener address it connected to), so the
 * worker copies them from its 4-tuple without swapping.
 *
 * Every string is optional: NULL or "" leaves its TLV out. Strings are
 * copied as they are (no terminator on the wire) and must each fit a TLV
 * (65535 bytes); the whole header must fit GW_PP2_MAX_LEN. The builder reads
 * the struct and the strings only during the call and keeps no pointer.
 */
struct gw_pp2_info {
	uint32_t src_addr; /* network byte order */
	uint32_t dst_addr; /* network byte order */
	uint16_t src_port; /* network byte order */
	uint16_t dst_port; /* network byte order */

	const uint8_t *alpn;   /* protocol name (not the length-prefixed list) */
	size_t alpn_len;       /* 0: no ALPN TLV */
	const char *authority; /* SNI the client sent */

	bool has_ssl;            /* emit PP2_TYPE_SSL; the ssl_* fields need it */
	uint8_t ssl_client;      /* GW_PP2_CLIENT_* bits */
	uint32_t ssl_verify;     /* 0: the client's certificate was verified */
	const char *ssl_version; /* "TLSv1.3"; required with GW_PP2_CLIENT_SSL */
	const char *ssl_cn;      /* CN of the client certificate's subject */
	const char *ssl_cipher;  /* "TLS_AES_128_GCM_SHA256" */
	/* spec 2.2.6: SIG_ALG and KEY_ALG describe the certificate the frontend
	 * (the gateway) presented to the client, as haproxy sends them */
	const char *ssl_sig_alg; /* "ecdsa-with-SHA256" */
	const char *ssl_key_alg; /* "EC256", "RSA2048" */

	const char *client_id; /* SPIFFE ID or first URI SAN: GW_PP2_TYPE_CLIENT_ID */
};

/*
 * Bytes gw_pp2_build() would write for info.
 *
 * Returns the length (>= GW_PP2_HDR_LEN + GW_PP2_INET_LEN) or -EINVAL when
 * info is NULL or inconsistent: ssl_* strings without has_ssl, unknown
 * ssl_client bits, GW_PP2_CLIENT_SSL without ssl_version, a value longer than
 * a TLV can carry, or a header longer than the 16-bit length field allows.
 * Thread-safe (reads only info).
 */
GW_MUST_CHECK int gw_pp2_len(const struct gw_pp2_info *info);

/*
 * Write the PROXY v2 header for info into buf[0..cap).
 *
 * Returns the number of bytes written, -EINVAL as for gw_pp2_len(),
 * -ENOSPC when cap is smaller than the header (checked before buf, so
 * (NULL, 0) is -ENOSPC), or -EINVAL when buf is NULL and cap would fit. On any error
 * nothing is written to buf. Never writes at or past buf + cap.
 * Thread-safe (touches only buf).
 */
GW_MUST_CHECK int gw_pp2_build(uint8_t *buf, size_t cap, const struct gw_pp2_info *info);

/*
 * Storage for the strings gw_pp2_info_from_ssl() derives (the others point
 * into the SSL). Lives as long as the info is used; the stack is fine.
 */
struct gw_pp2_ssl_strs {
	char cn[256];
	char sig_alg[64];
	char key_alg[32];
	char client_id[1024];
};

/*
 * Fill the TLS fields of info from ssl, a server-side connection whose
 * handshake has completed: authority (SNI), alpn, has_ssl, ssl_client
 * (SSL; CERT_CONN when the client sent a certificate on this connection;
 * CERT_SESS when the session holds one, also after resumption), ssl_verify
 * (SSL_get_verify_result, 0 = verified; 1 without a client certificate, as
 * the spec wants non-zero then; a caller whose trust engine decides outside
 * OpenSSL's verify sets its own result after this), ssl_version, ssl_cipher, ssl_cn
 * (client certificate subject CN), ssl_sig_alg and ssl_key_alg (of the
 * certificate the gateway presented), client_id (the client certificate's
 * first spiffe:// URI SAN, else its first URI SAN). Fields that do not
 * apply are left NULL / 0; the address fields are not touched.
 *
 * Pointers into ssl stay valid while ssl lives and is not renegotiated;
 * pointers into strs while strs lives. A value too long for its strs buffer
 * is left out rather than cut (an upstream must not act on half an ID).
 * Returns 0, or -EINVAL when an argument is NULL or the handshake is not
 * finished. Thread-safe for distinct ssl objects.
 */
GW_MUST_CHECK int gw_pp2_info_from_ssl(
	struct gw_pp2_info *info, SSL *ssl, struct gw_pp2_ssl_strs *strs);

#endif /* GW_PROXY_V2_H */
