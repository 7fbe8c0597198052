/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_hsm_secret.c - hsm/'s secret keys (import, seal, unseal) on real
 * SoftHSM2 tokens.
 *
 * Its own file (and process) beside test_hsm.c: these cases need tokens of
 * their own and no engine key loads. Key attributes are read back from the
 * module directly, independently of hsm/: CKA_VALUE must be refused. The
 * fleet case imports one 32-byte key into two tokens and opens on one what
 * the other sealed.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "gw_softhsm.h"
#include "gw_test.h"
#include "hsm.h"

static struct gw_softhsm tok;

/* Printable key bytes, so a leak into a message would be found by strstr. */
static const char fleet_key[] = "fleet-key-0123456789abcdefghijkl";
static const char other_key[] = "other-key-0123456789abcdefghijkl";

static struct gw_hsm *
open_token(const char *label, bool pin)
{
	struct gw_hsm_params p = {.token = label, .pin_file = pin ? tok.pin : NULL};
	struct gw_hsm *h = NULL;

	if (gw_hsm_open(&p, &h) != 0) {
		fprintf(stderr, "open '%s': %s\n", label, gw_err_msg());
		exit(2);
	}
	return h;
}

static int
import(struct gw_hsm *h, const char *label, const char *key, size_t n, char uri[GW_HSM_URI_MAX])
{
	uint8_t copy[64];

	memcpy(copy, key, n);
	return gw_hsm_secret_import(h, label, copy, n, uri);
}

static void
no_leak(void)
{
	EXPECT_TRUE(strstr(gw_err_msg(), "0123456789abcdef") == NULL);
}

/* --- the module, straight (independent of hsm/) ------------------------------------ */

/*
 * The attributes of the secret key labelled label on token, read by the
 * module itself: 0 if it is what gw_hsm_secret_import promises and its
 * CKA_VALUE is refused (CKR_ATTRIBUTE_SENSITIVE); -1 otherwise.
 */
static int
raw_check_secret(const char *token, const char *label)
{
	CK_FUNCTION_LIST *f = gw_softhsm_module();
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, (void *)label, strlen(label)}};
	CK_BBOOL tok_ = 0, priv = 0, sens = 0, extr = 1, enc = 0, dec = 0, wrap = 1, nevx = 0;
	CK_KEY_TYPE kt = 0;
	CK_ULONG vlen = 0, n = 0;
	CK_ATTRIBUTE a[] = {{CKA_TOKEN, &tok_, 1}, {CKA_PRIVATE, &priv, 1},
		{CKA_SENSITIVE, &sens, 1}, {CKA_EXTRACTABLE, &extr, 1}, {CKA_ENCRYPT, &enc, 1},
		{CKA_DECRYPT, &dec, 1}, {CKA_WRAP, &wrap, 1}, {CKA_NEVER_EXTRACTABLE, &nevx, 1},
		{CKA_KEY_TYPE, &kt, sizeof(kt)}, {CKA_VALUE_LEN, &vlen, sizeof(vlen)}};
	uint8_t val[64];
	CK_ATTRIBUTE v = {CKA_VALUE, val, sizeof(val)};
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
	CK_SESSION_HANDLE s;
	CK_RV rv;
	int rc = -1;

	if (f == NULL || (s = gw_softhsm_session(f, token, "1234")) == CK_INVALID_HANDLE)
		return -1;
	if (f->C_FindObjectsInit(s, t, 2) == CKR_OK) {
		(void)f->C_FindObjects(s, &o, 1, &n);
		(void)f->C_FindObjectsFinal(s);
	}
	if (n != 1 || f->C_GetAttributeValue(s, o, a, sizeof(a) / sizeof(a[0])) != CKR_OK)
		goto out;
	if (!tok_ || !priv || !sens || extr || !enc || !dec || wrap || kt != CKK_AES || vlen != 32)
		goto out;
	/* the point of it all: the token will not hand out the value */
	memset(val, 0, sizeof(val));
	rv = f->C_GetAttributeValue(s, o, &v, 1);
	if (rv == CKR_ATTRIBUTE_SENSITIVE && v.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		rc = 0;
	else
		fprintf(stderr, "CKA_VALUE of '%s': %#lx\n", label, (unsigned long)rv);
	(void)nevx; /* SoftHSM sets CKA_NEVER_EXTRACTABLE false on imported keys: correct */
out:
	f->C_CloseSession(s);
	return rc;
}

int
main(void)
{
	static const char *const tokens[] = {"sa", "sb", "sc"};
	static const uint8_t aad[] = "etcd:/mtlsgw/tickets/gen-7";
	char uri_a[GW_HSM_URI_MAX], uri_b[GW_HSM_URI_MAX], uri_c[GW_HSM_URI_MAX];
	struct gw_hsm *ha, *hb, *hc;

	GW_TEST_BEGIN();
	if (access(GW_DEFAULT_PKCS11_MODULE, R_OK) != 0)
		GW_TEST_SKIP("no SoftHSM2 module");
	if (gw_softhsm_setup(&tok, "gwsecret") < 0)
		return 2;
	for (size_t i = 0; i < 3; i++) {
		struct gw_hsm_params p = {.token = tokens[i], .pin_file = tok.pin};

		if (gw_hsm_token_init(&p, tok.so_pin) != 0) {
			fprintf(stderr, "token init: %s\n", gw_err_msg());
			return 2;
		}
	}
	ha = open_token("sa", true);
	hb = open_token("sb", true);
	hc = open_token("sc", true);

	{ /* import: URI, attributes through hsm/ and straight from the module, key wiped */
		uint8_t key[GW_HSM_SECRET_LEN], zero[GW_HSM_SECRET_LEN] = {0};
		struct gw_hsm_object *objs = NULL;
		size_t n = 0, secrets = 0;

		memcpy(key, fleet_key, sizeof(key));
		EXPECT_OK(gw_hsm_secret_import(ha, "fleet-wrap", key, sizeof(key), uri_a));
		EXPECT_TRUE(memcmp(key, zero, sizeof(key)) == 0); /* consumed */
		EXPECT_TRUE(strncmp(uri_a, "pkcs11:token=sa;id=%", 20) == 0);
		EXPECT_CONTAINS(uri_a, ";object=fleet-wrap;type=secret-key");
		EXPECT_TRUE(raw_check_secret("sa", "fleet-wrap") == 0);
		EXPECT_OK(gw_hsm_list(ha, &objs, &n));
		for (size_t i = 0; i < n; i++) {
			if (objs[i].kind != GW_HSM_OBJ_SECRET_KEY)
				continue;
			secrets++;
			EXPECT_STREQ(objs[i].label, "fleet-wrap");
			EXPECT_STREQ(objs[i].secret_type, "aes-256");
			EXPECT_STREQ(objs[i].uri, uri_a);
			EXPECT_TRUE(objs[i].sensitive && !objs[i].extractable && objs[i].private_ &&
				    objs[i].encrypt && !objs[i].sign);
		}
		EXPECT_EQ(secrets, 1);
		free(objs);
		/* without a PIN, secret keys are not listed (they are private objects) */
		{
			struct gw_hsm *hn = open_token("sa", false);

			EXPECT_OK(gw_hsm_list(hn, &objs, &n));
			EXPECT_EQ(n, 0);
			free(objs);
			gw_hsm_close(hn);
		}
	}
	{ /* the same label again, any class of object: refused, token and label named */
		char u[GW_HSM_URI_MAX];

		EXPECT_ERR(import(ha, "fleet-wrap", other_key, 32, u), -EEXIST);
		EXPECT_CONTAINS(gw_err_msg(), "an object labelled 'fleet-wrap' already exists on "
					      "token 'sa'");
		no_leak();
		EXPECT_OK(gw_hsm_keygen(ha, GW_HSM_KEY_EC_P256, "web", u));
		EXPECT_ERR(import(ha, "web", other_key, 32, u), -EEXIST);
		/* and the label still names the first key: it still opens what it sealed */
	}
	{ /* lengths other than 32 bytes, bad labels */
		char u[GW_HSM_URI_MAX], l65[66];
		uint8_t k31[31];

		memcpy(k31, fleet_key, sizeof(k31));
		EXPECT_ERR(gw_hsm_secret_import(ha, "short", k31, sizeof(k31), u), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "is 31 bytes; an AES-256 key is exactly 32");
		EXPECT_TRUE(k31[0] == 0 && k31[30] == 0); /* wiped on failure too */
		no_leak();
		EXPECT_ERR(import(ha, "long", fleet_key, 33, u), -EINVAL);
		EXPECT_ERR(import(ha, "", fleet_key, 32, u), -EINVAL);
		memset(l65, 'x', 65);
		l65[65] = '\0';
		EXPECT_ERR(import(ha, l65, fleet_key, 32, u), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "labels must be 1 to 64 bytes");
	}
	{ /* round trips of 0, 1, 1000 and 65536 bytes; format and length */
		static const size_t lens[] = {0, 1, 1000, 65536};

		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			size_t n = lens[i], slen = n + GW_HSM_SEAL_OVERHEAD, olen = n + 1;
			uint8_t *pt = malloc(n + 1), *sealed = malloc(slen), *back = malloc(n + 1);

			if (pt == NULL || sealed == NULL || back == NULL)
				return 2;
			for (size_t j = 0; j < n; j++)
				pt[j] = (uint8_t)(j * 7 + i);
			EXPECT_OK(gw_hsm_seal(ha, uri_a, aad, sizeof(aad), pt, n, sealed, &slen));
			EXPECT_EQ(slen, n + 29);
			EXPECT_EQ(sealed[0], 1);
			if (n >= 16)
				EXPECT_TRUE(memcmp(sealed + 13, pt, 16) != 0); /* encrypted */
			EXPECT_OK(gw_hsm_unseal(
				ha, uri_a, aad, sizeof(aad), sealed, slen, back, &olen));
			EXPECT_EQ(olen, n);
			EXPECT_TRUE(n == 0 || memcmp(back, pt, n) == 0);
			free(pt);
			free(sealed);
			free(back);
		}
		/* no AAD at all is fine too, and the label alone names the key */
		{
			uint8_t s[64], b[8];
			size_t slen = sizeof(s), blen = sizeof(b);

			EXPECT_OK(gw_hsm_seal(ha, "pkcs11:object=fleet-wrap", NULL, 0,
				(const uint8_t *)"ticket", 6, s, &slen));
			EXPECT_OK(gw_hsm_unseal(ha, uri_a, NULL, 0, s, slen, b, &blen));
			EXPECT_TRUE(blen == 6 && memcmp(b, "ticket", 6) == 0);
		}
	}
	{ /* a fresh IV per seal: same key, plaintext and AAD; 16 seals, 16 IVs, 16 outputs */
		enum { N = 16 };
		uint8_t s[N][64];
		size_t l[N];
		unsigned same_iv = 0, same_ct = 0;

		for (int i = 0; i < N; i++) {
			l[i] = sizeof(s[i]);
			EXPECT_OK(gw_hsm_seal(ha, uri_a, aad, sizeof(aad), (const uint8_t *)"same",
				4, s[i], &l[i]));
		}
		for (int i = 0; i < N; i++)
			for (int j = i + 1; j < N; j++) {
				same_iv += memcmp(s[i] + 1, s[j] + 1, GW_HSM_SEAL_IV_LEN) == 0;
				same_ct +=
					memcmp(s[i] + 13, s[j] + 13, 4 + GW_HSM_SEAL_TAG_LEN) == 0;
			}
		EXPECT_EQ(same_iv, 0);
		EXPECT_EQ(same_ct, 0);
	}
	{ /* tampering: each fails with its own error; out is left alone */
		const uint8_t pt[100] = "a ticket key: 80 bytes of name, AES and HMAC keys";
		uint8_t s[200], t[200], out[200];
		size_t slen = sizeof(s), olen;

		EXPECT_OK(gw_hsm_seal(ha, uri_a, aad, sizeof(aad), pt, sizeof(pt), s, &slen));
#define OPEN_FAILS(buf, len, a, alen, want)                                                \
	do {                                                                               \
		olen = sizeof(out);                                                        \
		memset(out, 0xee, sizeof(out));                                            \
		EXPECT_ERR(gw_hsm_unseal(ha, uri_a, a, alen, buf, len, out, &olen), want); \
		EXPECT_TRUE(out[0] == 0xee && out[99] == 0xee);                            \
		no_leak();                                                                 \
	} while (0)
		memcpy(t, s, slen);
		t[13 + 50] ^= 0x01; /* a ciphertext bit */
		OPEN_FAILS(t, slen, aad, sizeof(aad), -EBADMSG);
		EXPECT_CONTAINS(gw_err_msg(), "sealed data does not authenticate under key "
					      "'fleet-wrap' of token 'sa': tampered, another "
					      "key, or other associated data");
		memcpy(t, s, slen);
		t[slen - 1] ^= 0x80; /* a tag bit */
		OPEN_FAILS(t, slen, aad, sizeof(aad), -EBADMSG);
		memcpy(t, s, slen);
		t[1] ^= 0x01; /* an IV bit */
		OPEN_FAILS(t, slen, aad, sizeof(aad), -EBADMSG);
		OPEN_FAILS(s, slen, (const uint8_t *)"etcd:/mtlsgw/tickets/gen-8", sizeof(aad),
			-EBADMSG);
		OPEN_FAILS(s, slen, NULL, 0, -EBADMSG);
		OPEN_FAILS(s, slen - 1, aad, sizeof(aad), -EBADMSG); /* truncated by a byte */
		OPEN_FAILS(s, 28, aad, sizeof(aad), -GW_E_PARSE);    /* below version+IV+tag */
		EXPECT_CONTAINS(
			gw_err_msg(), "sealed data is 28 bytes; version 1 needs at least 29");
		OPEN_FAILS(s, 0, aad, sizeof(aad), -GW_E_PARSE);
		memcpy(t, s, slen);
		t[0] = 7;
		OPEN_FAILS(t, slen, aad, sizeof(aad), -GW_E_PARSE);
		EXPECT_CONTAINS(gw_err_msg(), "format version 7; this build reads version 1");
#undef OPEN_FAILS
		/* still opens: none of the above changed the key or the session */
		olen = sizeof(out);
		EXPECT_OK(gw_hsm_unseal(ha, uri_a, aad, sizeof(aad), s, slen, out, &olen));
		EXPECT_TRUE(olen == sizeof(pt) && memcmp(out, pt, sizeof(pt)) == 0);
		/* room */
		olen = sizeof(pt) - 1;
		EXPECT_ERR(
			gw_hsm_unseal(ha, uri_a, aad, sizeof(aad), s, slen, out, &olen), -ENOSPC);
		slen = sizeof(pt) + GW_HSM_SEAL_OVERHEAD - 1;
		EXPECT_ERR(gw_hsm_seal(ha, uri_a, aad, sizeof(aad), pt, sizeof(pt), s, &slen),
			-ENOSPC);
	}
	{ /* the fleet: one 32-byte file in two tokens; a third token has another key */
		uint8_t s[128], out[128];
		size_t slen = sizeof(s), olen = sizeof(out);
		char f[160];

		snprintf(f, sizeof(f), "%s/fleet.key", tok.dir);
		EXPECT_OK(gw_softhsm_write(f, fleet_key)); /* 32 bytes, mode 0600 */
		EXPECT_OK(gw_hsm_secret_import_file(hb, "fleet-wrap", f, uri_b));
		EXPECT_CONTAINS(uri_b, "pkcs11:token=sb;");
		EXPECT_TRUE(raw_check_secret("sb", "fleet-wrap") == 0);
		EXPECT_OK(import(hc, "fleet-wrap", other_key, 32, uri_c));
		EXPECT_OK(gw_hsm_seal(
			ha, uri_a, aad, sizeof(aad), (const uint8_t *)"tickets", 7, s, &slen));
		EXPECT_OK(gw_hsm_unseal(hb, uri_b, aad, sizeof(aad), s, slen, out, &olen));
		EXPECT_TRUE(olen == 7 && memcmp(out, "tickets", 7) == 0);
		olen = sizeof(out);
		EXPECT_ERR(
			gw_hsm_unseal(hc, uri_c, aad, sizeof(aad), s, slen, out, &olen), -EBADMSG);
		EXPECT_CONTAINS(gw_err_msg(), "under key 'fleet-wrap' of token 'sc'");
		/* and back: b seals, a opens */
		slen = sizeof(s);
		olen = sizeof(out);
		EXPECT_OK(gw_hsm_seal(hb, "pkcs11:token=sb;object=fleet-wrap;type=secret-key", NULL,
			0, (const uint8_t *)"x", 1, s, &slen));
		EXPECT_OK(gw_hsm_unseal(ha, uri_a, NULL, 0, s, slen, out, &olen));
	}
	{ /* key files: the PIN file's mode rule, exactly 32 bytes */
		char f[160], u[GW_HSM_URI_MAX];

		snprintf(f, sizeof(f), "%s/open.key", tok.dir);
		EXPECT_OK(gw_softhsm_write(f, other_key));
		EXPECT_OK(chmod(f, 0644));
		EXPECT_ERR(gw_hsm_secret_import_file(hb, "k2", f, u), -EACCES);
		EXPECT_CONTAINS(gw_err_msg(), "is accessible by group or others (mode 0644): "
					      "chmod 600 it");
		snprintf(f, sizeof(f), "%s/short.key", tok.dir);
		EXPECT_OK(gw_softhsm_write(f, "fleet-key-0123456789abcdefghijk"));
		EXPECT_ERR(gw_hsm_secret_import_file(hb, "k2", f, u), -EINVAL);
		EXPECT_CONTAINS(
			gw_err_msg(), "is 31 bytes; an AES-256 key is exactly 32 raw bytes");
		no_leak();
		snprintf(f, sizeof(f), "%s/long.key", tok.dir);
		EXPECT_OK(gw_softhsm_write(f, "fleet-key-0123456789abcdefghijkl\n"));
		EXPECT_ERR(gw_hsm_secret_import_file(hb, "k2", f, u), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "is more than 32 bytes");
		snprintf(f, sizeof(f), "%s/none.key", tok.dir);
		EXPECT_ERR(gw_hsm_secret_import_file(hb, "k2", f, u), -ENOENT);
	}
	{ /* naming: wrong type, no such key, no PIN; a private-key call on a secret key */
		uint8_t s[64];
		size_t slen = sizeof(s);
		struct gw_hsm *hn;
		EVP_PKEY *k = NULL;

		EXPECT_ERR(gw_hsm_seal(ha, "pkcs11:token=sa;object=web;type=private", NULL, 0,
				   (const uint8_t *)"x", 1, s, &slen),
			-GW_E_HSM_USAGE);
		EXPECT_ERR(gw_hsm_seal(ha, "pkcs11:token=sa;object=nope;type=secret-key", NULL, 0,
				   (const uint8_t *)"x", 1, s, &slen),
			-GW_E_HSM_KEY);
		EXPECT_CONTAINS(gw_err_msg(), "no secret key matches");
		EXPECT_ERR(gw_hsm_seal(ha, "pkcs11:token=sb;object=fleet-wrap", NULL, 0,
				   (const uint8_t *)"x", 1, s, &slen),
			-GW_E_HSM_TOKEN);
		EXPECT_ERR(gw_hsm_key_load(ha, uri_a, &k), -GW_E_HSM_USAGE);
		EXPECT_CONTAINS(gw_err_msg(), "names a secret key, not a private key");
		hn = open_token("sa", false);
		EXPECT_ERR(gw_hsm_seal(hn, uri_a, NULL, 0, (const uint8_t *)"x", 1, s, &slen),
			-GW_E_HSM_PIN);
		gw_hsm_close(hn);
	}
	gw_hsm_close(ha);
	gw_hsm_close(hb);
	gw_hsm_close(hc);
	gw_hsm_shutdown();
	(void)gw_softhsm_remove(&tok);
	GW_TEST_END();
}
