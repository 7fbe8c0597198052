/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ca_builtin.c - the built-in CA: a root (trust anchor) and an intermediate
 * issuer under it, as Linkerd splits them, so the root key signs only once
 * per issuer and stays idle in the HSM while the issuer signs leaves. Both
 * keys are generated in the token; the certificates live in the state store
 * and are loaded, never regenerated, on every later start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "ca_internal.h"

/* An issuer outlives several leaves, but renews well inside the root's life. */
static time_t
issuer_validity(const struct gw_ca_be *be)
{
	uint64_t v = be->cfg.root_validity_s / 2;

	if (v > 365ull * 86400)
		v = 365ull * 86400;
	if (v < 3 * be->cfg.leaf_validity_s)
		v = 3 * be->cfg.leaf_validity_s;
	return (time_t)v;
}

static X509_NAME *
name_for(const char *cn, const char *td)
{
	X509_NAME *n = X509_NAME_new();

	if (n == NULL ||
		X509_NAME_add_entry_by_txt(
			n, "O", MBSTRING_UTF8, (const unsigned char *)td, -1, -1, 0) != 1 ||
		X509_NAME_add_entry_by_txt(
			n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

int
gw_ca_builtin_new_issuer(struct gw_ca *ca, struct gw_ca_be *be, X509 **out)
{
	time_t now = gw_ca_now(ca), na = now + issuer_validity(be);

	if (na > gw_ca_not_after(be->root))
		na = gw_ca_not_after(be->root);
	if (na <= now)
		return gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: its root has expired; it cannot renew its issuer", be->name);
	return gw_ca_make_cert(X509_get_subject_name(be->issuer), X509_get0_pubkey(be->issuer),
		be->root, be->root_key, now - 60, na, true, 0, NULL, out);
}

static int
load_stored(struct gw_ca *ca, struct gw_ca_be *be, const struct gw_state_ca *row)
{
	if (strcmp(row->type, "builtin") != 0)
		return gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: the state store %s knows it as a %s backend; give the new "
			"backend another name",
			be->name, gw_state_path(ca->st), row->type);
	be->root = gw_ca_pem_read(row->root_pem);
	be->issuer = gw_ca_pem_read(row->issuer_pem);
	be->cross = row->cross_pem ? gw_ca_pem_read(row->cross_pem) : NULL;
	if (!be->root || !be->issuer || !row->root_key || !row->issuer_key)
		return gw_err_setf(-GW_E_STATE, GW_HERE,
			"backend %s: the state store %s holds an unreadable root or issuer",
			be->name, gw_state_path(ca->st));
	if (!(be->root_key_uri = strdup(row->root_key)) ||
		!(be->issuer_key_uri = strdup(row->issuer_key)))
		return gw_err_set(-ENOMEM, GW_HERE);
	GW_GUARD(gw_hsm_key_load(ca->hsm, be->root_key_uri, &be->root_key));
	GW_GUARD(gw_hsm_key_load(ca->hsm, be->issuer_key_uri, &be->issuer_key));
	return 0;
}

int
gw_ca_builtin_init(struct gw_ca *ca, struct gw_ca_be *be)
{
	struct gw_state_ca row;
	char label[GW_HSM_LABEL_MAX + 1], uri[GW_HSM_URI_MAX], cn[128];
	X509_NAME *rn = NULL, *in = NULL;
	time_t now = gw_ca_now(ca);
	int rc;

	if (gw_state_ca_get(ca->st, be->name, &row) == 0) {
		rc = load_stored(ca, be, &row);
		gw_state_ca_clear(&row);
		return rc;
	}
	gw_err_clear();
	/* first start: make both keys and certificates; the caller commits */
	GW_GUARD(gw_ca_fmt(label, sizeof(label), "ca-%s-root", be->name));
	GW_GUARD(gw_ca_key_ensure(ca, be->cfg.key_type, label, uri, &be->root_key));
	if ((be->root_key_uri = strdup(uri)) == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	GW_GUARD(gw_ca_fmt(label, sizeof(label), "ca-%s-issuer", be->name));
	GW_GUARD(gw_ca_key_ensure(ca, be->cfg.key_type, label, uri, &be->issuer_key));
	if ((be->issuer_key_uri = strdup(uri)) == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	if ((rc = gw_ca_fmt(cn, sizeof(cn), "mtlsgw %s root", be->name)) < 0)
		goto out;
	rn = name_for(cn, ca->trust_domain);
	if ((rc = gw_ca_fmt(cn, sizeof(cn), "mtlsgw %s issuer", be->name)) < 0)
		goto out;
	in = name_for(cn, ca->trust_domain);
	if (rn == NULL || in == NULL) {
		/* X.509 bounds a CN at 64 characters (RFC 5280 ub-common-name) */
		rc = gw_err_setf(-EINVAL, GW_HERE,
			"backend %s: cannot make the subject 'O=%.40s, CN=%s' (a CN is at most 64 "
			"characters: use a backend name of at most %d)",
			be->name, ca->trust_domain, cn, GW_CFG_CA_NAME_MAX);
		goto out;
	}
	/*
	 * The root's public half: the engine key carries it. No pathlen on the
	 * root: a root cross-signed for a rotation adds a CA level below the
	 * old root (leaf <- issuer <- cross-signed root <- old root).
	 */
	rc = gw_ca_make_cert(rn, be->root_key, NULL, be->root_key, now - 60,
		now + (time_t)be->cfg.root_validity_s, true, -1, NULL, &be->root);
	if (rc < 0)
		goto out;
	{
		time_t na = now + issuer_validity(be);

		if (na > gw_ca_not_after(be->root))
			na = gw_ca_not_after(be->root);
		rc = gw_ca_make_cert(in, be->issuer_key, be->root, be->root_key, now - 60, na, true,
			0, NULL, &be->issuer);
	}
out:
	X509_NAME_free(rn);
	X509_NAME_free(in);
	return rc;
}
