/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_x509.c - the one place mtlsgw mints X.509: certificates for the CA
 * backends and the demo PKI, CSRs for the HSM's keys (contract in
 * gw_x509.h). Every OpenSSL return is checked; failures name what failed
 * and carry OpenSSL's reason.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "gw_x509.h"

int
gw_x509_name_parse(const char *s, X509_NAME **out)
{
	X509_NAME *name = NULL;
	char *buf = NULL, *w;
	const char *r;
	int rc = 0;

	if (s == NULL || s[0] != '/' || s[1] == '\0')
		return gw_err_setf(
			-EINVAL, GW_HERE, "subject '%s' must look like /CN=name/O=org", s ? s : "");
	name = X509_NAME_new();
	buf = malloc(strlen(s) + 1);
	if (name == NULL || buf == NULL) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	r = s + 1;
	while (*r != '\0') {
		char *eq;

		for (w = buf; *r != '\0' && *r != '/'; r++) {
			if (*r == '\\' && r[1] != '\0')
				r++;
			*w++ = *r;
		}
		*w = '\0';
		if (*r == '/')
			r++;
		eq = strchr(buf, '=');
		if (eq == NULL || eq == buf || eq[1] == '\0') {
			rc = gw_err_setf(
				-EINVAL, GW_HERE, "subject '%s': '%s' is not FIELD=value", s, buf);
			goto out;
		}
		*eq = '\0';
		if (X509_NAME_add_entry_by_txt(name, buf, MBSTRING_UTF8,
			    (const unsigned char *)eq + 1, -1, -1, 0) != 1) {
			ERR_clear_error();
			rc = gw_err_setf(-EINVAL, GW_HERE,
				"subject '%s': unknown field '%s' (CN, O, OU, C, ST, L, ...)", s,
				buf);
			goto out;
		}
	}
	*out = name;
	name = NULL;
out:
	free(buf);
	X509_NAME_free(name);
	return rc;
}

int
gw_x509_san_parse(const char *s, GENERAL_NAMES **out)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	char *buf = strdup(s), *save = NULL, *item;
	int rc = 0;

	if (gens == NULL || buf == NULL) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	for (item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_STRING *v = NULL;
		int type = -1;

		if (g == NULL) {
			rc = gw_err_set(-ENOMEM, GW_HERE);
			goto out;
		}
		if (strncmp(item, "DNS:", 4) == 0 && item[4] != '\0') {
			type = GEN_DNS;
			v = ASN1_IA5STRING_new();
			if (v != NULL && ASN1_STRING_set(v, item + 4, -1) != 1)
				ASN1_STRING_free(v), v = NULL;
		} else if (strncmp(item, "URI:", 4) == 0 && strchr(item + 4, ':') != NULL) {
			type = GEN_URI;
			v = ASN1_IA5STRING_new();
			if (v != NULL && ASN1_STRING_set(v, item + 4, -1) != 1)
				ASN1_STRING_free(v), v = NULL;
		} else if (strncmp(item, "IP:", 3) == 0) {
			type = GEN_IPADD;
			v = a2i_IPADDRESS(item + 3);
			ERR_clear_error();
		}
		if (v == NULL) {
			GENERAL_NAME_free(g);
			rc = gw_err_setf(-EINVAL, GW_HERE,
				"SAN '%s' is not DNS:name, URI:scheme:... or IP:address", item);
			goto out;
		}
		GENERAL_NAME_set0_value(g, type, v);
		if (sk_GENERAL_NAME_push(gens, g) <= 0) {
			GENERAL_NAME_free(g);
			rc = gw_err_set(-ENOMEM, GW_HERE);
			goto out;
		}
	}
	if (sk_GENERAL_NAME_num(gens) == 0) {
		rc = gw_err_setf(-EINVAL, GW_HERE, "SAN list '%s' is empty", s);
		goto out;
	}
	*out = gens;
	gens = NULL;
out:
	free(buf);
	GENERAL_NAMES_free(gens);
	return rc;
}

int
gw_x509_serial_rand(X509 *x)
{
	unsigned char rnd[16];
	BIGNUM *bn = NULL;
	int rc = 0;

	GW_ENSURE(x != NULL, -EINVAL);
	/* RFC 5280 4.1.2.2: positive, at most 20 octets; unpredictable (CA/B 7.1);
	 * the low bit of the first octet keeps it a full 16 octets long */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		gw_err_setf(-GW_E_TLS, GW_HERE, "no random bytes for a serial number");
		return gw_err_add_ossl();
	}
	rnd[0] = (unsigned char)((rnd[0] & 0x7f) | 0x01);
	bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) {
		gw_err_setf(-GW_E_TLS, GW_HERE, "cannot set the serial number");
		rc = gw_err_add_ossl();
	}
	BN_free(bn);
	return rc;
}

int
gw_x509_add_ext(X509 *x, X509 *issuer, int nid, const char *val)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	GW_ENSURE(x != NULL && val != NULL, -EINVAL);
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, val);
	ok = e != NULL && X509_add_ext(x, e, -1) == 1;
	X509_EXTENSION_free(e);
	if (!ok) {
		gw_err_setf(-GW_E_TLS, GW_HERE, "cannot add extension %s=%s", OBJ_nid2sn(nid), val);
		return gw_err_add_ossl();
	}
	return 0;
}

int
gw_x509_cert_make(const struct gw_x509_cert_spec *s, X509 **out)
{
	X509 *x = NULL, *icert;
	char bc[48];
	int rc;

	GW_ENSURE(s != NULL && s->subject != NULL && s->pub != NULL && s->sign_key != NULL &&
			  out != NULL,
		-EINVAL);
	if ((x = X509_new()) == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	icert = s->issuer ? s->issuer : x;
	if ((rc = gw_x509_serial_rand(x)) < 0)
		goto out;
	if (X509_set_version(x, X509_VERSION_3) != 1 || X509_set_subject_name(x, s->subject) != 1 ||
		X509_set_issuer_name(
			x, s->issuer ? X509_get_subject_name(s->issuer) : s->subject) != 1 ||
		ASN1_TIME_set(X509_getm_notBefore(x), s->not_before) == NULL ||
		ASN1_TIME_set(X509_getm_notAfter(x), s->not_after) == NULL ||
		X509_set_pubkey(x, s->pub) != 1) {
		gw_err_setf(-GW_E_TLS, GW_HERE, "cannot build certificate");
		rc = gw_err_add_ossl();
		goto out;
	}
	if (s->ca) {
		if (s->pathlen >= 0)
			snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", s->pathlen);
		else
			snprintf(bc, sizeof(bc), "critical,CA:TRUE");
		if ((rc = gw_x509_add_ext(x, icert, NID_basic_constraints, bc)) < 0 ||
			(rc = gw_x509_add_ext(
				 x, icert, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0)
			goto out;
	} else {
		bool rsa = EVP_PKEY_get_base_id(s->pub) == EVP_PKEY_RSA;

		if ((rc = gw_x509_add_ext(x, icert, NID_basic_constraints, "critical,CA:FALSE")) <
				0 ||
			(rc = gw_x509_add_ext(x, icert, NID_key_usage,
				 rsa ? "critical,digitalSignature,keyEncipherment"
				     : "critical,digitalSignature")) < 0 ||
			(rc = gw_x509_add_ext(x, icert, NID_ext_key_usage,
				 s->eku ? s->eku : "serverAuth,clientAuth")) < 0)
			goto out;
		if (s->san && (rc = gw_x509_add_ext(x, icert, NID_subject_alt_name, s->san)) < 0)
			goto out;
	}
	/* SKI before AKI: a self-signed AKI takes its keyid from the SKI */
	if ((rc = gw_x509_add_ext(x, icert, NID_subject_key_identifier, "hash")) < 0 ||
		(rc = gw_x509_add_ext(x, icert, NID_authority_key_identifier, "keyid:always")) < 0)
		goto out;
	if (X509_sign(x, s->sign_key, EVP_sha256()) <= 0) {
		gw_err_setf(
			-GW_E_TLS, GW_HERE, "signing the certificate with the issuer key failed");
		rc = gw_err_add_ossl();
		goto out;
	}
	*out = x;
	x = NULL;
	rc = 0;
out:
	X509_free(x);
	return rc;
}

int
gw_x509_csr_build(X509_NAME *name, EVP_PKEY *key, GENERAL_NAMES *sans, X509_REQ **out)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_REQ *req = NULL;
	int rc = 0;

	GW_ENSURE(name != NULL && key != NULL && out != NULL, -EINVAL);
	req = X509_REQ_new();
	if (req == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
		X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, key) != 1) {
		gw_err_setf(-GW_E_TLS, GW_HERE, "cannot build the CSR");
		rc = gw_err_add_ossl();
		goto out;
	}
	if (sans != NULL) {
		X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, sans);

		exts = sk_X509_EXTENSION_new_null();
		if (ext == NULL || exts == NULL || sk_X509_EXTENSION_push(exts, ext) <= 0) {
			X509_EXTENSION_free(ext);
			rc = gw_err_set(-ENOMEM, GW_HERE);
			goto out;
		}
		if (X509_REQ_add_extensions(req, exts) != 1) {
			gw_err_setf(-GW_E_TLS, GW_HERE, "cannot add the SANs to the CSR");
			rc = gw_err_add_ossl();
			goto out;
		}
	}
	*out = req;
	req = NULL;
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return rc;
}

time_t
gw_x509_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

void
gw_x509_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
		snprintf(buf, len, "(unknown date)");
		return;
	}
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}
