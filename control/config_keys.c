/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * config_keys.c - gw_cfg_check_keys(): does every certificate in a loaded
 * config belong to the HSM key it is paired with?
 *
 * Kept apart from gw_cfg_load() because it needs the token: opening it
 * reads the PIN and talks PKCS#11, which a pure file check (mtlsgw-ctl
 * trust check, the fuzzer) should not, and which must happen in the
 * process that will use the keys, after any fork (hsm.h). The proof is the
 * hsm module's: the token signs a challenge and the certificate's public
 * key verifies it, so no key material ever leaves the token.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "config_internal.h"
#include "hsm.h"

#define MAX_TOKENS 8 /* distinct token labels one config names */

struct token_slot {
	char label[GW_HSM_LABEL_MAX + 1]; /* "" = the URI names no token */
	struct gw_hsm *h;
	int open_rc; /* <0: opening failed, already reported once */
};

struct keys_ctx {
	const struct gw_cfg *cfg;
	FILE *errs;
	unsigned n_errs;
	int first_rc;
	char first[GW_ERR_MSG_MAX];
	struct token_slot tok[MAX_TOKENS];
	unsigned n_tok;
};

static void
report(struct keys_ctx *k, int rc, unsigned line, const char *field, const char *msg)
{
	char all[GW_ERR_MSG_MAX + 256];

	gw_cfg_fmt(all, sizeof(all), "%s:%u: %s: %s", k->cfg->path ? k->cfg->path : "config",
		line ? line : 1, field, msg);
	if (k->errs)
		fprintf(k->errs, "%s\n", all);
	if (k->n_errs++ == 0) {
		k->first_rc = rc;
		gw_cfg_fmt(k->first, sizeof(k->first), "%s", all);
	}
}

/* The handle for uri's token, opened on first use; NULL after reporting. */
static struct gw_hsm *
token_for(struct keys_ctx *k, const char *uri, unsigned line, const char *field)
{
	char label[GW_HSM_LABEL_MAX + 1] = "", msg[GW_ERR_MSG_MAX + 64];
	struct token_slot *t = NULL;

	if (gw_hsm_uri_token(uri, label, sizeof(label)) < 0)
		label[0] = '\0'; /* no token= in the URI: the module's first match */
	for (unsigned i = 0; i < k->n_tok; i++)
		if (strcmp(k->tok[i].label, label) == 0)
			t = &k->tok[i];
	if (!t) {
		struct gw_hsm_params p = {
			.module = k->cfg->hsm.module,
			.pin_file = k->cfg->hsm.pin_file,
			.pin_env = k->cfg->hsm.pin_env,
			.token = label[0] ? label : NULL,
		};

		if (k->n_tok == MAX_TOKENS) {
			report(k, -GW_E_CONFIG, line, field, "keys on more than 8 tokens");
			return NULL;
		}
		t = &k->tok[k->n_tok++];
		gw_cfg_fmt(t->label, sizeof(t->label), "%s", label);
		t->open_rc = gw_hsm_open(&p, &t->h);
		if (t->open_rc < 0) {
			gw_cfg_fmt(msg, sizeof(msg), "cannot open the HSM for this key: %s",
				gw_err_msg());
			report(k, t->open_rc, line, field, msg);
		}
	}
	return t->open_rc < 0 ? NULL : t->h;
}

/* The first certificate of the loader's bytes of cert_path (never the file again). */
static void
check_one(struct keys_ctx *k, const char *cert_path, const struct gw_material *cert_m,
	const char *uri, unsigned line, const char *field)
{
	char msg[GW_ERR_MSG_MAX + 64];
	struct gw_hsm *h;
	X509 *x = NULL;
	BIO *b = gw_material_bio(cert_m);
	int rc;

	if (b)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	ERR_clear_error();
	if (!x) {
		/* the loader checked and kept it: only a config that did not load gets here */
		gw_cfg_fmt(
			msg, sizeof(msg), "%s: the loader holds no certificate for it", cert_path);
		report(k, -GW_E_CONFIG, line, field, msg);
		return;
	}
	h = token_for(k, uri, line, field);
	if (h) {
		rc = gw_hsm_cert_matches_key(h, x, uri);
		if (rc < 0) {
			gw_cfg_fmt(
				msg, sizeof(msg), "%s (certificate %s)", gw_err_msg(), cert_path);
			report(k, rc == -GW_E_HSM_KEY ? -GW_E_CONFIG : rc, line, field, msg);
		}
	}
	X509_free(x);
}

int
gw_cfg_check_keys(const struct gw_cfg *cfg, FILE *errs)
{
	struct keys_ctx k = {.cfg = cfg, .errs = errs};
	char field[96];

	if (!cfg)
		return gw_err_setf(-EINVAL, GW_HERE, "gw_cfg_check_keys: NULL config");
	for (unsigned i = 0; i < cfg->n_listeners; i++) {
		const struct gw_cfg_listener *l = &cfg->listeners[i];

		for (unsigned j = 0; l->has_tls && j < l->tls.n_identities; j++) {
			const struct gw_cfg_identity *id = &l->tls.identities[j];

			gw_cfg_fmt(
				field, sizeof(field), "listeners[%u].tls.identity[%u].key", i, j);
			check_one(&k, id->cert, &id->cert_m, id->key, id->line, field);
		}
	}
	for (unsigned i = 0; i < cfg->mtls.n_backends; i++) {
		const struct gw_cfg_ca_backend *b = &cfg->mtls.backends[i];

		if (b->type != GW_CA_PROVIDED || !b->cert || !b->key)
			continue;
		gw_cfg_fmt(field, sizeof(field), "mtls.backends[%u].conf.key", i);
		check_one(&k, b->cert, &b->cert_m, b->key, b->line, field);
	}
	for (unsigned i = 0; i < k.n_tok; i++)
		gw_hsm_close(k.tok[i].h);
	if (k.n_errs == 0)
		return 0;
	if (k.n_errs > 1)
		return gw_err_setf(k.first_rc, GW_HERE, "%s (and %u more)", k.first, k.n_errs - 1);
	return gw_err_setf(k.first_rc, GW_HERE, "%s", k.first);
}
