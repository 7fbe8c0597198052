/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ossl_compat.h - the one place where mtlsgw bends to OpenSSL versions.
 *
 * libp11's pkcs11 module reaches OpenSSL 3 only as an ENGINE (its provider
 * arrived in libp11 0.4.13; Debian 12 ships 0.4.12). The ENGINE API is
 * deprecated in OpenSSL 3.0, so the files of hsm/ that use it include this
 * header FIRST, before any OpenSSL header: OPENSSL_SUPPRESS_DEPRECATED must be
 * seen before <openssl/macros.h> decides what is deprecated. No other module
 * includes this header or silences deprecations itself.
 */
#ifndef GW_OSSL_COMPAT_H
#define GW_OSSL_COMPAT_H

#ifdef OPENSSL_VERSION_NUMBER
#error "hsm/ossl_compat.h must be included before any OpenSSL header"
#endif

#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <openssl/opensslv.h>

#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "mtlsgw needs OpenSSL 3.0 or later"
#endif

#include <openssl/engine.h>

#endif /* GW_OSSL_COMPAT_H */
