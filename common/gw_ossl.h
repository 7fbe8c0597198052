/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_ossl.h - how a process of ours sets up OpenSSL 3.0 before its first
 * handshake.
 *
 * gw_ossl_ec_builtin() makes OpenSSL's built-in EC methods (the code paths
 * of 1.1.1 that 3.0 still ships) the default for EC keys that come without
 * an engine of their own: the public key of every certificate a client
 * sends, the CertificateVerify and chain signatures checked with it, P-256
 * ECDHE. Without it, OpenSSL 3.0 decodes each certificate's public key
 * through its provider decoder machinery (it builds a decoder chain by
 * walking every decoder and key manager by name, under read locks) and
 * fetches an implementation for every EC operation: measured with
 * callgrind, 6.08M instructions per full mutual-TLS handshake through the
 * gateway, 4.10M with the built-in methods (the same verdicts: the unit
 * and integration suites run with it, the certificate corpus included).
 *
 * How: an engine ("mtlsgw-ec") whose only method is the built-in
 * EVP_PKEY_METHOD for EVP_PKEY_EC, registered as the default EC method.
 * OpenSSL's certificate decoder takes the built-in ASN.1 route when an
 * engine is the default for the key type. Keys that name their engine
 * (the HSM's, through libp11) keep it; other key types (X25519, RSA,
 * Ed25519) are untouched. Process-wide and idempotent; call it before the
 * first certificate is parsed. Returns 0, or -GW_E_TLS with gw_err set.
 *
 * One thing it changes: an EC key generated in memory must name its curve
 * by OpenSSL's short name ("prime256v1", as libssl's ECDHE does), not the
 * NIST name "P-256", which OpenSSL 3.0 does not translate for built-in
 * methods. The gateway generates no EC key in memory (the HSM does), so
 * mtlsgw-ctl, which does (pki demo), leaves OpenSSL as it is.
 */
#ifndef GW_OSSL_H
#define GW_OSSL_H

#include <stdbool.h>

#include "gw_err.h"

GW_MUST_CHECK int gw_ossl_ec_builtin(void);

/* Whether gw_ossl_ec_builtin() is in effect (the default EC method is ours). */
bool gw_ossl_ec_builtin_on(void);

#endif
