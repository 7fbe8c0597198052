/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * secret.c - AES-256 secret keys in the token: import, seal, unseal (hsm.h).
 *
 * libp11 (and so the engine) knows nothing of secret keys, so this file
 * calls the PKCS#11 module directly on the handle's own session, like p11.c.
 * The key is found again on every call: a handle outlives no object handle
 * we could cache (another process may delete and re-import the key), and a
 * seal is control-plane work, rare next to one C_FindObjects.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "hsm_internal.h"

/* How many objects of any class carry label (CKA_LABEL only in the template). */
static int
label_count(struct gw_p11_mod *m, CK_SESSION_HANDLE s, const char *label)
{
	CK_ATTRIBUTE t = {CKA_LABEL, (void *)label, strlen(label)};
	CK_OBJECT_HANDLE objs[4];
	CK_ULONG got = 0;
	CK_RV rv;

	rv = m->f->C_FindObjectsInit(s, &t, 1);
	if (rv != CKR_OK)
		return gw_err_setf(
			-GW_E_HSM, GW_HERE, "C_FindObjectsInit: %s", gw_p11_ckr_name(rv));
	rv = m->f->C_FindObjects(s, objs, 4, &got);
	/* a search left active makes the session's next C_FindObjectsInit fail */
	(void)m->f->C_FindObjectsFinal(s);
	if (rv != CKR_OK)
		return gw_err_setf(-GW_E_HSM, GW_HERE, "C_FindObjects: %s", gw_p11_ckr_name(rv));
	return (int)got;
}

int
gw_hsm_secret_import(
	struct gw_hsm *h, const char *label, uint8_t *key, size_t key_len, char uri[GW_HSM_URI_MAX])
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE obj;
	struct gw_p11_mod *m;
	uint8_t id[8];
	int rc, n;
	CK_RV rv;

	if (key == NULL)
		return gw_err_set(-EINVAL, GW_HERE);
	if (h == NULL || label == NULL || uri == NULL) {
		rc = gw_err_set(-EINVAL, GW_HERE);
		goto out;
	}
	if (key_len != GW_HSM_SECRET_LEN) {
		rc = gw_err_setf(-EINVAL, GW_HERE,
			"secret key for '%.80s' is %zu bytes; an AES-256 key is exactly %d", label,
			key_len, GW_HSM_SECRET_LEN);
		goto out;
	}
	if (label[0] == '\0' || strlen(label) > GW_HSM_LABEL_MAX) {
		rc = gw_err_setf(-EINVAL, GW_HERE,
			"key label '%.80s' is %zu bytes; labels must be 1 to %d bytes", label,
			strlen(label), GW_HSM_LABEL_MAX);
		goto out;
	}
	if ((rc = gw_hsm_session(h, "a secret key import", &m, &s)) < 0)
		goto out;
	/*
	 * Any class: a key pair or certificate already labelled so would make
	 * "object=label" name two things.
	 */
	if ((n = label_count(m, s, label)) != 0) {
		rc = n < 0 ? n
			   : gw_err_setf(-EEXIST, GW_HERE,
				     "an object labelled '%s' already exists on token '%s'; "
				     "nothing imported (pick another label or delete it)",
				     label, gw_hsm_token(h));
		goto out;
	}
	if (RAND_bytes(id, sizeof(id)) != 1) {
		rc = gw_err_setf(-GW_E_HSM, GW_HERE, "no randomness for the key id");
		goto out;
	}
	{
		/* In the token, behind the PIN, never readable, encrypt/decrypt only. */
		CK_ATTRIBUTE t[] = {
			{CKA_CLASS, &cls, sizeof(cls)},
			{CKA_KEY_TYPE, &kt, sizeof(kt)},
			{CKA_TOKEN, &yes, sizeof(yes)},
			{CKA_PRIVATE, &yes, sizeof(yes)},
			{CKA_SENSITIVE, &yes, sizeof(yes)},
			{CKA_EXTRACTABLE, &no, sizeof(no)},
			{CKA_ENCRYPT, &yes, sizeof(yes)},
			{CKA_DECRYPT, &yes, sizeof(yes)},
			{CKA_WRAP, &no, sizeof(no)},
			{CKA_UNWRAP, &no, sizeof(no)},
			{CKA_SIGN, &no, sizeof(no)},
			{CKA_VERIFY, &no, sizeof(no)},
			{CKA_DERIVE, &no, sizeof(no)},
			{CKA_LABEL, (void *)label, strlen(label)},
			{CKA_ID, id, sizeof(id)},
			{CKA_VALUE, key, key_len},
		};

		rv = m->f->C_CreateObject(s, t, sizeof(t) / sizeof(t[0]), &obj);
	}
	if (rv != CKR_OK) {
		rc = gw_err_setf(rv == CKR_USER_NOT_LOGGED_IN ? -GW_E_HSM_PIN : -GW_E_HSM, GW_HERE,
			"cannot import secret key '%s' into token '%s': C_CreateObject: %s", label,
			gw_hsm_token(h), gw_p11_ckr_name(rv));
		goto out;
	}
	rc = gw_p11_uri_build(
		uri, GW_HSM_URI_MAX, gw_hsm_token(h), id, sizeof(id), label, CKO_SECRET_KEY);
out:
	OPENSSL_cleanse(key, key_len);
	return rc;
}

int
gw_hsm_secret_import_file(
	struct gw_hsm *h, const char *label, const char *file, char uri[GW_HSM_URI_MAX])
{
	/* one byte more than a key: a longer file is refused, not cut */
	uint8_t buf[GW_HSM_SECRET_LEN + 1];
	size_t n = 0;
	int fd, rc;

	GW_ENSURE(file != NULL, -EINVAL);
	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return gw_err_setf(
			-errno, GW_HERE, "cannot read key file '%s': %s", file, strerror(errno));
	rc = gw_hsm_file_check("key file", file, fd, -EACCES);
	while (rc == 0 && n < sizeof(buf)) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = gw_err_setf(-errno, GW_HERE, "cannot read key file '%s': %s", file,
				strerror(errno));
		else if (r == 0)
			break;
		else
			n += (size_t)r;
	}
	close(fd);
	if (rc == 0 && n != GW_HSM_SECRET_LEN)
		rc = gw_err_setf(-EINVAL, GW_HERE,
			"key file '%s' is %s%zu bytes; an AES-256 key is exactly %d raw bytes "
			"(openssl rand -out FILE %d)",
			file, n > GW_HSM_SECRET_LEN ? "more than " : "",
			n > GW_HSM_SECRET_LEN ? n - 1 : n, GW_HSM_SECRET_LEN, GW_HSM_SECRET_LEN);
	if (rc == 0)
		return gw_hsm_secret_import(h, label, buf, n, uri); /* wipes buf */
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/* A secret key's name as error messages give it: its label, else the URI. */
static const char *
key_name(const struct gw_p11_uri *u, const char *uri)
{
	return u->has_object ? u->object : uri;
}

/* The one AES secret key uri names, allowed to do attr (CKA_ENCRYPT or CKA_DECRYPT). */
static int
secret_find(struct gw_hsm *h, const char *uri, CK_ATTRIBUTE_TYPE attr, struct gw_p11_uri *u,
	struct gw_p11_mod **m, CK_SESSION_HANDLE *s, CK_OBJECT_HANDLE *obj)
{
	CK_KEY_TYPE kt = 0;
	CK_BBOOL may = CK_FALSE;
	CK_ATTRIBUTE a[] = {{CKA_KEY_TYPE, &kt, sizeof(kt)}, {attr, &may, sizeof(may)}};
	CK_OBJECT_HANDLE found[2];
	CK_RV rv;
	int n;

	GW_GUARD(gw_hsm_uri_bind(h, uri, u));
	if (u->type != -1 && u->type != (int)CKO_SECRET_KEY)
		return gw_err_setf(-GW_E_HSM_USAGE, GW_HERE,
			"key URI '%s' does not name a secret key (type=secret-key)", uri);
	if (!u->has_object && !u->has_id)
		return gw_err_setf(-EINVAL, GW_HERE,
			"key URI '%s' names no key (object=LABEL and/or id=...)", uri);
	GW_GUARD(gw_hsm_session(h, "sealing and opening", m, s));
	n = gw_p11_find(*m, *s, CKO_SECRET_KEY, u, found, 2);
	if (n < 0)
		return n;
	if (n == 0)
		return gw_err_setf(-GW_E_HSM_KEY, GW_HERE,
			"no secret key matches '%s' on token '%s'", uri, gw_hsm_token(h));
	if (n > 1)
		return gw_err_setf(-GW_E_HSM_KEY, GW_HERE,
			"%d secret keys match '%s' on token '%s'; add id=... to pick one", n, uri,
			gw_hsm_token(h));
	rv = (*m)->f->C_GetAttributeValue(*s, found[0], a, 2);
	if (rv != CKR_OK || kt != CKK_AES || may != CK_TRUE)
		return gw_err_setf(-GW_E_HSM_USAGE, GW_HERE,
			"secret key '%s' on token '%s' is not an AES key that may %s",
			key_name(u, uri), gw_hsm_token(h),
			attr == CKA_ENCRYPT ? "encrypt" : "decrypt");
	*obj = found[0];
	return 0;
}

static void
gcm_params(CK_GCM_PARAMS *p, uint8_t *iv, const uint8_t *aad, size_t aad_len)
{
	static uint8_t empty[1];

	*p = (CK_GCM_PARAMS){0};
	p->iv_ptr = iv;
	p->iv_len = GW_HSM_SEAL_IV_LEN;
	p->iv_bits = GW_HSM_SEAL_IV_LEN * 8; /* PKCS#11 2.40 errata: some tokens read this */
	p->aad_ptr = aad_len > 0 ? (uint8_t *)aad : empty;
	p->aad_len = aad_len;
	p->tag_bits = GW_HSM_SEAL_TAG_LEN * 8;
}

int
gw_hsm_seal(struct gw_hsm *h, const char *uri, const uint8_t *aad, size_t aad_len,
	const uint8_t *pt, size_t pt_len, uint8_t *out, size_t *out_len)
{
	static const uint8_t none[1];
	CK_MECHANISM mech = {CKM_AES_GCM, NULL, sizeof(CK_GCM_PARAMS)};
	CK_GCM_PARAMS gcm;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	struct gw_p11_mod *m;
	struct gw_p11_uri u;
	CK_ULONG clen;
	size_t need;
	CK_RV rv;

	GW_ENSURE(h != NULL && uri != NULL && out != NULL && out_len != NULL, -EINVAL);
	GW_ENSURE((pt != NULL || pt_len == 0) && (aad != NULL || aad_len == 0), -EINVAL);
	if (pt_len > GW_HSM_SEAL_MAX)
		return gw_err_setf(-EINVAL, GW_HERE, "cannot seal %zu bytes; at most %u", pt_len,
			GW_HSM_SEAL_MAX);
	need = pt_len + GW_HSM_SEAL_OVERHEAD;
	if (*out_len < need)
		return gw_err_setf(-ENOSPC, GW_HERE,
			"sealing %zu bytes needs %zu bytes of output, %zu given", pt_len, need,
			*out_len);
	GW_GUARD(secret_find(h, uri, CKA_ENCRYPT, &u, &m, &s, &key));
	out[0] = GW_HSM_SEAL_VERSION;
	/* a fresh IV per message: GCM with a repeated IV under one key leaks both */
	if (RAND_bytes(out + 1, GW_HSM_SEAL_IV_LEN) != 1)
		return gw_err_setf(-GW_E_HSM, GW_HERE, "no randomness for the IV");
	gcm_params(&gcm, out + 1, aad, aad_len);
	mech.pParameter = &gcm;
	rv = m->f->C_EncryptInit(s, &mech, key);
	if (rv != CKR_OK)
		return gw_err_setf(-GW_E_HSM, GW_HERE,
			"token '%s' cannot start AES-GCM with key '%s': C_EncryptInit: %s",
			gw_hsm_token(h), key_name(&u, uri), gw_p11_ckr_name(rv));
	clen = (CK_ULONG)(*out_len - 1 - GW_HSM_SEAL_IV_LEN);
	/* C_Encrypt ends the operation, also on failure (PKCS#11 5.8) */
	rv = m->f->C_Encrypt(s, pt_len > 0 ? (CK_BYTE_PTR)pt : (CK_BYTE_PTR)none, pt_len,
		out + 1 + GW_HSM_SEAL_IV_LEN, &clen);
	if (rv != CKR_OK || clen != pt_len + GW_HSM_SEAL_TAG_LEN) {
		OPENSSL_cleanse(out, *out_len);
		if (rv == CKR_OK)
			return gw_err_setf(-GW_E_HSM, GW_HERE,
				"token '%s' returned %lu bytes sealing %zu with key '%s'; want %zu",
				gw_hsm_token(h), (unsigned long)clen, pt_len, key_name(&u, uri),
				pt_len + GW_HSM_SEAL_TAG_LEN);
		return gw_err_setf(-GW_E_HSM, GW_HERE,
			"token '%s' cannot seal with key '%s': C_Encrypt: %s", gw_hsm_token(h),
			key_name(&u, uri), gw_p11_ckr_name(rv));
	}
	*out_len = need;
	return 0;
}

int
gw_hsm_unseal(struct gw_hsm *h, const char *uri, const uint8_t *aad, size_t aad_len,
	const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len)
{
	CK_MECHANISM mech = {CKM_AES_GCM, NULL, sizeof(CK_GCM_PARAMS)};
	uint8_t iv[GW_HSM_SEAL_IV_LEN];
	CK_GCM_PARAMS gcm;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	struct gw_p11_mod *m;
	struct gw_p11_uri u;
	CK_ULONG plen;
	uint8_t *tmp;
	size_t pt_len;
	int rc = 0;
	CK_RV rv;

	GW_ENSURE(h != NULL && uri != NULL && out_len != NULL, -EINVAL);
	GW_ENSURE((in != NULL || in_len == 0) && (aad != NULL || aad_len == 0), -EINVAL);
	GW_ENSURE(out != NULL || *out_len == 0, -EINVAL);
	/* the format first: a person gets "not our data" before any token error */
	if (in_len < GW_HSM_SEAL_OVERHEAD)
		return gw_err_setf(-GW_E_PARSE, GW_HERE,
			"sealed data is %zu bytes; version %d needs at least %d (version, IV, tag)",
			in_len, GW_HSM_SEAL_VERSION, GW_HSM_SEAL_OVERHEAD);
	if (in[0] != GW_HSM_SEAL_VERSION)
		return gw_err_setf(-GW_E_PARSE, GW_HERE,
			"sealed data has format version %u; this build reads version %d",
			(unsigned)in[0], GW_HSM_SEAL_VERSION);
	pt_len = in_len - GW_HSM_SEAL_OVERHEAD;
	if (pt_len > GW_HSM_SEAL_MAX)
		return gw_err_setf(-EINVAL, GW_HERE, "sealed data is %zu bytes; at most %u open",
			in_len, GW_HSM_SEAL_MAX + GW_HSM_SEAL_OVERHEAD);
	if (*out_len < pt_len)
		return gw_err_setf(-ENOSPC, GW_HERE,
			"opening %zu sealed bytes needs %zu bytes of output, %zu given", in_len,
			pt_len, *out_len);
	GW_GUARD(secret_find(h, uri, CKA_DECRYPT, &u, &m, &s, &key));
	memcpy(iv, in + 1, sizeof(iv));
	gcm_params(&gcm, iv, aad, aad_len);
	mech.pParameter = &gcm;
	/*
	 * Into a buffer of ours with room for ciphertext and tag (some tokens
	 * want that much for the output), so the caller's buffer only ever
	 * receives authenticated plaintext.
	 */
	tmp = malloc(pt_len + GW_HSM_SEAL_TAG_LEN);
	if (tmp == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	rv = m->f->C_DecryptInit(s, &mech, key);
	if (rv != CKR_OK) {
		rc = gw_err_setf(-GW_E_HSM, GW_HERE,
			"token '%s' cannot start AES-GCM with key '%s': C_DecryptInit: %s",
			gw_hsm_token(h), key_name(&u, uri), gw_p11_ckr_name(rv));
		goto out;
	}
	plen = (CK_ULONG)(pt_len + GW_HSM_SEAL_TAG_LEN);
	rv = m->f->C_Decrypt(s, (CK_BYTE_PTR)in + 1 + GW_HSM_SEAL_IV_LEN,
		(CK_ULONG)(pt_len + GW_HSM_SEAL_TAG_LEN), tmp, &plen);
	if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE ||
		rv == CKR_GENERAL_ERROR) {
		/*
		 * PKCS#11 3.0 says a GCM tag mismatch is CKR_ENCRYPTED_DATA_INVALID;
		 * SoftHSM2 2.6 answers CKR_GENERAL_ERROR. Key, session and
		 * parameters were all accepted by C_DecryptInit just now, so what
		 * is left to fail is the data.
		 */
		rc = gw_err_setf(-EBADMSG, GW_HERE,
			"sealed data does not authenticate under key '%s' of token '%s': "
			"tampered, another key, or other associated data",
			key_name(&u, uri), gw_hsm_token(h));
		goto out;
	}
	if (rv != CKR_OK) {
		rc = gw_err_setf(-GW_E_HSM, GW_HERE,
			"token '%s' cannot open sealed data with key '%s': C_Decrypt: %s",
			gw_hsm_token(h), key_name(&u, uri), gw_p11_ckr_name(rv));
		goto out;
	}
	if (plen != pt_len) {
		rc = gw_err_setf(-GW_E_HSM, GW_HERE,
			"token '%s' returned %lu bytes opening %zu with key '%s'; want %zu",
			gw_hsm_token(h), (unsigned long)plen, in_len, key_name(&u, uri), pt_len);
		goto out;
	}
	if (pt_len > 0)
		memcpy(out, tmp, pt_len);
	*out_len = pt_len;
out:
	OPENSSL_cleanse(tmp, pt_len + GW_HSM_SEAL_TAG_LEN);
	free(tmp);
	return rc;
}
