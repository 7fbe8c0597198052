/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ca_provided.c - the operator's own CA: a certificate file and its key in
 * the HSM. Checked on every start: the certificate must be a CA that may
 * sign certificates, and the token's key must be the certificate's (the
 * token signs a challenge; nothing leaves it). An expired certificate is
 * loaded (so a rotation away from it works) but issues nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"

int
gw_ca_provided_init(struct gw_ca *ca, struct gw_ca_be *be)
{
	struct gw_material own = {0};
	const struct gw_material *m;
	char what[GW_CFG_CA_NAME_MAX + 32]; /* the config caps the name */
	X509 *x;

	if (be->cfg.cert == NULL || be->cfg.key == NULL)
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"backend %s: type provided needs conf.cert and conf.key", be->name);
	/* the loader's bytes; a backend made outside the loader reads through the same owner */
	snprintf(what, sizeof(what), "backend %s: conf.cert", be->name);
	GW_GUARD(gw_material_get(be->cfg.cert_m.bytes != NULL ? &be->cfg.cert_m : NULL,
		be->cfg.cert, what, &own, &m));
	x = gw_ca_pem_read((const char *)m->bytes); /* NUL-terminated by gw_material_read */
	gw_material_fini(&own);
	if (x == NULL) {
		gw_err_setf(-GW_E_CONFIG, GW_HERE, "backend %s: %s: no PEM certificate", be->name,
			be->cfg.cert);
		return gw_err_add_ossl();
	}
	be->root = x;
	/* key usage first: X509_check_ca() also says 0 for a CA without keyCertSign */
	if ((X509_get_extension_flags(x) & EXFLAG_KUSAGE) &&
		!(X509_get_key_usage(x) & KU_KEY_CERT_SIGN))
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"backend %s: %s: the CA certificate's key usage does not allow keyCertSign",
			be->name, be->cfg.cert);
	if (X509_check_ca(x) < 1)
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"backend %s: %s is not a CA certificate (basicConstraints CA:TRUE is "
			"missing)",
			be->name, be->cfg.cert);
	GW_GUARD(gw_hsm_cert_matches_key(ca->hsm, x, be->cfg.key));
	if ((be->root_key_uri = strdup(be->cfg.key)) == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	GW_GUARD(gw_hsm_key_load(ca->hsm, be->root_key_uri, &be->root_key));
	{
		/* keep a cross-signed root made by an earlier rotation */
		struct gw_state_ca row;

		if (gw_state_ca_get(ca->st, be->name, &row) == 0) {
			if (row.cross_pem && strcmp(row.type, "provided") == 0)
				be->cross = gw_ca_pem_read(row.cross_pem);
			/* the operator replaced the certificate: that cross is not for it */
			if (be->cross && EVP_PKEY_eq(X509_get0_pubkey(be->cross),
						 X509_get0_pubkey(x)) != 1) {
				X509_free(be->cross);
				be->cross = NULL;
			}
			gw_state_ca_clear(&row);
		}
		gw_err_clear();
	}
	return 0;
}
