/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * proxy_v2.c - PROXY protocol v2 header encoder (see proxy_v2.h).
 *
 * Two passes over the same field list: the first sizes the header and
 * rejects what cannot be encoded, the second writes it. Writing starts only
 * once the size is known to fit, so a failed call leaves buf untouched and
 * the writer needs no bounds check per byte (the size pass is the check).
 * gw_pp2_info_from_ssl() at the end reads a finished SSL for the TLS TLVs.
 */
#include <string.h>
#include <strings.h>

#include <openssl/x509v3.h>

#include "proxy_v2.h"

static const uint8_t pp2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define PP2_VER_CMD_PROXY 0x21 /* version 2 (high nibble), PROXY (low) */
#define PP2_FAM_TCP4 0x11      /* AF_INET (high nibble), STREAM (low) */
#define PP2_TLV_HDR 3          /* type, length_hi, length_lo */
#define PP2_SSL_FIXED 5        /* client (1), verify (4) */
#define PP2_TLV_MAX 0xffff

#define PP2_CLIENT_ALL (GW_PP2_CLIENT_SSL | GW_PP2_CLIENT_CERT_CONN | GW_PP2_CLIENT_CERT_SESS)

static size_t
str_len(const char *s)
{
	return s ? strlen(s) : 0;
}

/* The SSL sub-TLVs, in wire order: one table for both passes. */
struct pp2_sub {
	uint8_t type;
	const char *val;
};

static void
ssl_subs(const struct gw_pp2_info *in, struct pp2_sub sub[5])
{
	sub[0] = (struct pp2_sub){GW_PP2_SUBTYPE_SSL_VERSION, in->ssl_version};
	sub[1] = (struct pp2_sub){GW_PP2_SUBTYPE_SSL_CN, in->ssl_cn};
	sub[2] = (struct pp2_sub){GW_PP2_SUBTYPE_SSL_CIPHER, in->ssl_cipher};
	sub[3] = (struct pp2_sub){GW_PP2_SUBTYPE_SSL_SIG_ALG, in->ssl_sig_alg};
	sub[4] = (struct pp2_sub){GW_PP2_SUBTYPE_SSL_KEY_ALG, in->ssl_key_alg};
}

/* Size of one optional TLV (0 when absent), or -EINVAL when it cannot fit. */
static long
tlv_size(size_t vlen)
{
	if (vlen == 0)
		return 0;
	if (vlen > PP2_TLV_MAX)
		return -EINVAL;
	return PP2_TLV_HDR + (long)vlen;
}

int
gw_pp2_len(const struct gw_pp2_info *in)
{
	struct pp2_sub sub[5];
	long total = GW_PP2_HDR_LEN + GW_PP2_INET_LEN, t;

	GW_ENSURE(in != NULL, -EINVAL);
	GW_ENSURE(in->alpn_len == 0 || in->alpn != NULL, -EINVAL);
	ssl_subs(in, sub);

	t = tlv_size(in->alpn_len);
	GW_ENSURE(t >= 0, -EINVAL);
	total += t;
	t = tlv_size(str_len(in->authority));
	GW_ENSURE(t >= 0, -EINVAL);
	total += t;

	if (in->has_ssl) {
		long ssl = PP2_SSL_FIXED;

		GW_ENSURE((in->ssl_client & ~PP2_CLIENT_ALL) == 0, -EINVAL);
		/* spec 2.2.6: PP2_CLIENT_SSL means a VERSION sub-TLV follows */
		GW_ENSURE(!(in->ssl_client & GW_PP2_CLIENT_SSL) || str_len(in->ssl_version) > 0,
			-EINVAL);
		for (int i = 0; i < 5; i++) {
			t = tlv_size(str_len(sub[i].val));
			GW_ENSURE(t >= 0, -EINVAL);
			ssl += t;
		}
		GW_ENSURE(ssl <= PP2_TLV_MAX, -EINVAL);
		total += PP2_TLV_HDR + ssl;
	} else {
		/* SSL details without the SSL TLV would be silently dropped */
		for (int i = 0; i < 5; i++)
			GW_ENSURE(str_len(sub[i].val) == 0, -EINVAL);
		GW_ENSURE(in->ssl_client == 0 && in->ssl_verify == 0, -EINVAL);
	}

	t = tlv_size(str_len(in->client_id));
	GW_ENSURE(t >= 0, -EINVAL);
	total += t;

	GW_ENSURE(total <= GW_PP2_MAX_LEN, -EINVAL);
	return (int)total;
}

static uint8_t *
put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *
put_tlv(uint8_t *p, uint8_t type, const void *val, size_t len)
{
	if (len == 0)
		return p;
	*p++ = type;
	p = put_u16(p, (uint16_t)len);
	memcpy(p, val, len);
	return p + len;
}

int
gw_pp2_build(uint8_t *buf, size_t cap, const struct gw_pp2_info *in)
{
	struct pp2_sub sub[5];
	uint8_t *p = buf;
	int len;

	len = gw_pp2_len(in);
	if (len < 0)
		return len;
	/* size first: (NULL, 0) asks "does it fit?" and gets -ENOSPC, like snprintf */
	GW_ENSURE((size_t)len <= cap, -ENOSPC);
	GW_ENSURE(buf != NULL, -EINVAL);

	memcpy(p, pp2_sig, sizeof(pp2_sig));
	p += sizeof(pp2_sig);
	*p++ = PP2_VER_CMD_PROXY;
	*p++ = PP2_FAM_TCP4;
	p = put_u16(p, (uint16_t)(len - GW_PP2_HDR_LEN));
	/* already in network byte order: copy the bytes as they are */
	memcpy(p, &in->src_addr, 4);
	memcpy(p + 4, &in->dst_addr, 4);
	memcpy(p + 8, &in->src_port, 2);
	memcpy(p + 10, &in->dst_port, 2);
	p += GW_PP2_INET_LEN;

	p = put_tlv(p, GW_PP2_TYPE_ALPN, in->alpn, in->alpn_len);
	p = put_tlv(p, GW_PP2_TYPE_AUTHORITY, in->authority, str_len(in->authority));

	if (in->has_ssl) {
		size_t ssl = PP2_SSL_FIXED;

		ssl_subs(in, sub);
		for (int i = 0; i < 5; i++) {
			size_t l = str_len(sub[i].val);
			ssl += l ? PP2_TLV_HDR + l : 0;
		}
		*p++ = GW_PP2_TYPE_SSL;
		p = put_u16(p, (uint16_t)ssl);
		*p++ = in->ssl_client;
		p = put_u16(p, (uint16_t)(in->ssl_verify >> 16));
		p = put_u16(p, (uint16_t)in->ssl_verify);
		for (int i = 0; i < 5; i++)
			p = put_tlv(p, sub[i].type, sub[i].val, str_len(sub[i].val));
	}

	p = put_tlv(p, GW_PP2_TYPE_CLIENT_ID, in->client_id, str_len(in->client_id));

	/* the size pass and the write pass walk the same fields */
	GW_ENSURE(p - buf == len, -EINVAL);
	return len;
}

/* ---- from a finished server-side SSL ------------------------------------ */

/* Copy a counted string, or give NULL when it is empty, has a NUL inside or
 * does not fit: a value is sent whole or not at all. */
static const char *
copy_whole(char *dst, size_t cap, const void *src, size_t len)
{
	if (!src || len == 0 || len >= cap || memchr(src, 0, len))
		return NULL;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return dst;
}

/* First spiffe:// URI SAN, else the first URI SAN (a SPIFFE SVID has one). */
static const char *
cert_client_id(X509 *x, char *dst, size_t cap)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	const unsigned char *pick = NULL;
	const char *out;
	int pick_len = 0;

	for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *d;
		int len;

		if (gn->type != GEN_URI)
			continue;
		d = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		len = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (!pick) {
			pick = d;
			pick_len = len;
		}
		if (len >= 9 && strncasecmp((const char *)d, "spiffe://", 9) == 0) {
			pick = d;
			pick_len = len;
			break;
		}
	}
	out = copy_whole(dst, cap, pick, pick_len > 0 ? (size_t)pick_len : 0);
	GENERAL_NAMES_free(sans);
	return out;
}

static const char *
cert_cn(X509 *x, char *dst, size_t cap)
{
	const X509_NAME *n = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	const char *out = NULL;
	int len;

	if (i < 0)
		return NULL;
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
	if (len > 0)
		out = copy_whole(dst, cap, utf8, (size_t)len);
	OPENSSL_free(utf8);
	return out;
}

/* haproxy's spelling: "EC256", "RSA2048", else the key type's short name */
static const char *
cert_key_alg(X509 *x, char *dst, size_t cap)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	int id, n;

	if (!pk)
		return NULL;
	id = EVP_PKEY_get_base_id(pk);
	if (id == EVP_PKEY_EC)
		n = snprintf(dst, cap, "EC%d", EVP_PKEY_get_bits(pk));
	else if (id == EVP_PKEY_RSA)
		n = snprintf(dst, cap, "RSA%d", EVP_PKEY_get_bits(pk));
	else
		n = snprintf(dst, cap, "%s", OBJ_nid2sn(id));
	return n > 0 && (size_t)n < cap ? dst : NULL;
}

int
gw_pp2_info_from_ssl(struct gw_pp2_info *in, SSL *ssl, struct gw_pp2_ssl_strs *strs)
{
	X509 *peer, *own;
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;
	const SSL_CIPHER *cipher;

	GW_ENSURE(in && ssl && strs, -EINVAL);
	GW_ENSURE(SSL_is_server(ssl) && SSL_is_init_finished(ssl), -EINVAL);

	in->authority = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
	in->alpn = alpn_len ? alpn : NULL;
	in->alpn_len = alpn_len;

	in->has_ssl = true;
	in->ssl_client = GW_PP2_CLIENT_SSL;
	in->ssl_version = SSL_get_version(ssl);
	cipher = SSL_get_current_cipher(ssl);
	in->ssl_cipher = cipher ? SSL_CIPHER_get_name(cipher) : NULL;

	own = SSL_get_certificate(ssl);
	in->ssl_sig_alg = NULL;
	in->ssl_key_alg = NULL;
	if (own) {
		int nid = X509_get_signature_nid(own);
		in->ssl_sig_alg = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
		in->ssl_key_alg = cert_key_alg(own, strs->key_alg, sizeof(strs->key_alg));
	}

	/* the session keeps the client's certificate across resumption: the
	 * cert was sent on this connection only if this was a full handshake */
	peer = SSL_get0_peer_certificate(ssl);
	in->ssl_cn = NULL;
	in->client_id = NULL;
	if (peer) {
		in->ssl_client |= SSL_session_reused(ssl)
					  ? GW_PP2_CLIENT_CERT_SESS
					  : GW_PP2_CLIENT_CERT_CONN | GW_PP2_CLIENT_CERT_SESS;
		in->ssl_verify = (uint32_t)SSL_get_verify_result(ssl);
		in->ssl_cn = cert_cn(peer, strs->cn, sizeof(strs->cn));
		in->client_id = cert_client_id(peer, strs->client_id, sizeof(strs->client_id));
	} else {
		/* spec: zero only when a certificate was presented and verified */
		in->ssl_verify = 1;
	}
	return 0;
}
