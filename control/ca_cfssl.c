/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ca_cfssl.c - an external CA: a running `cfssl serve` (Debian golang-cfssl)
 * signs. Its API is JSON over HTTP(S): POST /api/v1/cfssl/info tells the
 * signing certificate, POST /api/v1/cfssl/sign signs a PEM CSR. libcurl
 * speaks it: https:// with the server checked against conf.ca_file (else
 * the system store); http:// still works, with a warning, for a cfssl on
 * loopback and for tests. Errors come back as
 * {"success":false,"errors":[{"code":N,"message":"..."}]}: the message is
 * passed on as cfssl said it.
 *
 * cfssl's root is pinned: the state store keeps the one seen first, and a
 * server that later answers with another root is refused, naming both
 * fingerprints. Moving to a new cfssl root is a rotation (a new backend).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <openssl/x509v3.h>

#include "ca_internal.h"
#include "gw_log.h"
#include "rotation.h"

#define GW_LOG_MODULE "ca"

#define CFSSL_MAX_REPLY (1 << 20)
#define CFSSL_TIMEOUT_S 10

struct reply_buf {
	char *buf;
	size_t len;
	bool too_big;
};

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct reply_buf *r = arg;
	size_t add = size * n;
	char *nb;

	if (r->len + add > CFSSL_MAX_REPLY) {
		r->too_big = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	if ((nb = realloc(r->buf, r->len + add + 1)) == NULL)
		return 0;
	memcpy(nb + r->len, p, add);
	r->buf = nb;
	r->len += add;
	r->buf[r->len] = '\0';
	return add;
}

/* curl's global init is not thread-safe: once, from the control thread. */
static int
curl_once(void)
{
	static bool done;

	if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return gw_err_setf(-GW_E_CA, GW_HERE, "cannot initialise libcurl");
	done = true;
	return 0;
}

/* A transport failure, said so that a human can act on it. */
static int
curl_fail(const struct gw_ca_be *be, CURLcode e, const char *detail)
{
	const char *url = be->cfg.url;
	const char *d = detail && detail[0] ? detail : curl_easy_strerror(e);

	switch (e) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
		return gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cannot reach cfssl at %s: %s (is `cfssl serve` running?)",
			be->name, url, d);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
		return gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl %s: TLS: %s (conf.ca_file %s must hold the CA that "
			"signed cfssl's -tls-cert)",
			be->name, url, d, be->cfg.ca_file ? be->cfg.ca_file : "(system store)");
	default:
		return gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl %s: %s (the server closed or broke the exchange)",
			be->name, url, d);
	}
}

/* POST body to url+path; *reply gets the JSON object cfssl answered with. */
static int
cfssl_post(const struct gw_ca_be *be, const char *path, const char *body, json_t **reply)
{
	char full[1024], errbuf[CURL_ERROR_SIZE] = "";
	struct reply_buf r = {0};
	struct curl_slist *hdr = NULL;
	json_error_t je;
	long status = 0;
	CURLcode e;
	CURL *c = NULL;
	int rc;

	*reply = NULL;
	GW_GUARD(curl_once());
	GW_GUARD(gw_ca_fmt(full, sizeof(full), "%s%s", be->cfg.url, path));
	c = curl_easy_init();
	hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (c == NULL || hdr == NULL) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	/*
	 * NOSIGNAL: no SIGALRM for timeouts, and no SIGPIPE from a server that
	 * closes mid-request (the process ignores it too). Only http(s), no
	 * redirects: the answer comes from the configured server or not at all.
	 */
	if (curl_easy_setopt(c, CURLOPT_URL, full) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)CFSSL_TIMEOUT_S) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
		(be->cfg.ca_file &&
			curl_easy_setopt(c, CURLOPT_CAINFO, be->cfg.ca_file) != CURLE_OK) ||
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &r) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK) {
		rc = gw_err_setf(-GW_E_CA, GW_HERE, "backend %s: cannot set up libcurl", be->name);
		goto out;
	}
	e = curl_easy_perform(c);
	if (r.too_big) {
		rc = gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl %s: answer larger than 1 MiB", be->name, be->cfg.url);
		goto out;
	}
	if (e != CURLE_OK) {
		rc = curl_fail(be, e, errbuf);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	*reply = r.buf ? json_loads(r.buf, 0, &je) : NULL;
	if (*reply == NULL || !json_is_object(*reply)) {
		json_decref(*reply);
		*reply = NULL;
		rc = gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl %s%s answered HTTP %ld without JSON (is this cfssl?)",
			be->name, be->cfg.url, path, status);
		goto out;
	}
	rc = 0;
	if (!json_is_true(json_object_get(*reply, "success"))) {
		json_t *e0 = json_array_get(json_object_get(*reply, "errors"), 0);
		const char *m = json_string_value(json_object_get(e0, "message"));

		rc = gw_err_setf(-GW_E_CA, GW_HERE, "backend %s: cfssl %s refused (HTTP %ld): %s",
			be->name, be->cfg.url, status, m ? m : "no message");
		json_decref(*reply);
		*reply = NULL;
	}
out:
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	free(r.buf);
	return rc;
}

static int
cert_from_reply(json_t *reply, const char *name, X509 **out)
{
	json_t *res = json_object_get(reply, "result");
	const char *pem = json_string_value(json_object_get(res, "certificate"));

	if (pem == NULL)
		pem = json_string_value(res); /* older servers answer the PEM as result */
	if (pem == NULL || (*out = gw_ca_pem_read(pem)) == NULL)
		return gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl answered without a PEM certificate", name);
	return 0;
}

/*
 * POST req (consumed; NULL: out of memory) to cfssl's path with the
 * backend's profile added; *out gets the certificate cfssl answers with.
 * /info and /sign differ only in the request and where the answer goes.
 */
static int
cfssl_cert(struct gw_ca_be *be, const char *path, json_t *req, X509 **out)
{
	json_t *reply = NULL;
	char *body;
	int rc;

	/* without its profile cfssl would sign with its default one */
	if (req && be->cfg.profile &&
		json_object_set_new(req, "profile", json_string(be->cfg.profile)) != 0) {
		json_decref(req);
		req = NULL;
	}
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	rc = cfssl_post(be, path, body, &reply);
	free(body);
	if (rc < 0)
		return rc;
	rc = cert_from_reply(reply, be->name, out);
	json_decref(reply);
	return rc;
}

/* Does x carry id as a URI SAN? */
static bool
has_uri(X509 *x, const char *id)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool found = false;

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		found = g->type == GEN_URI &&
			(size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier) == strlen(id) &&
			memcmp(ASN1_STRING_get0_data(g->d.uniformResourceIdentifier), id,
				strlen(id)) == 0;
	}
	GENERAL_NAMES_free(gens);
	return found;
}

/* Is x issued and signed by be's root? */
static bool
signed_by_root(const struct gw_ca_be *be, X509 *x)
{
	EVP_PKEY *rk = X509_get0_pubkey(be->root);
	bool ok = X509_check_issued(be->root, x) == X509_V_OK && rk && X509_verify(x, rk) == 1;

	ERR_clear_error();
	return ok;
}

/*
 * The first 12 bytes of x's SHA-256 as "AB:CD:...:" into out[96], to name
 * it in a message (openssl x509 -fingerprint -sha256 starts the same);
 * roots are compared whole, never by this.
 */
static void
fp256(X509 *x, char out[96])
{
	unsigned char md[32];
	unsigned n = 0;

	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32)
		return;
	for (unsigned i = 0; i < 12; i++)
		snprintf(out + 3 * i, 4, "%02X:", md[i]);
}

/*
 * The root cfssl serves must be the one the store pinned on first use: a
 * server swapped (or its CA replaced) would otherwise become the mesh's
 * trust anchor silently.
 */
static int
check_pinned_root(struct gw_ca *ca, struct gw_ca_be *be, const struct gw_state_ca *row)
{
	X509 *pinned = gw_ca_pem_read(row->root_pem);
	char was[96], now[96];
	int rc = 0;

	if (pinned == NULL)
		return gw_err_setf(-GW_E_STATE, GW_HERE,
			"backend %s: the state store %s holds an unreadable cfssl root", be->name,
			gw_state_path(ca->st));
	if (X509_cmp(pinned, be->root) != 0) {
		fp256(pinned, was);
		fp256(be->root, now);
		rc = gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl %s now serves root SHA256 %s.., but this backend's "
			"root is %s..; refused: add the new root as another backend and rotate",
			be->name, be->cfg.url, now, was);
	}
	X509_free(pinned);
	return rc;
}

static int
sign_csr(struct gw_ca_be *be, X509_REQ *csr, const char *host, X509 **out)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *pem = NULL;
	json_t *req;
	long n;

	if (b == NULL || PEM_write_bio_X509_REQ(b, csr) != 1 ||
		(n = BIO_get_mem_data(b, &pem)) <= 0) {
		BIO_free(b);
		return gw_err_set(-ENOMEM, GW_HERE);
	}
	req = json_pack("{s:s%}", "certificate_request", pem, (size_t)n);
	BIO_free(b);
	if (req && host && json_object_set_new(req, "hosts", json_pack("[s]", host)) != 0) {
		json_decref(req);
		req = NULL; /* cfssl_cert: out of memory */
	}
	return cfssl_cert(be, "/api/v1/cfssl/sign", req, out);
}

int
gw_ca_cfssl_new_issuer(struct gw_ca *ca, struct gw_ca_be *be, X509 **out)
{
	char subj[400];
	X509_REQ *csr = NULL;
	X509 *x = NULL;
	int rc;

	*out = NULL;
	GW_GUARD(gw_ca_fmt(
		subj, sizeof(subj), "/O=%s/CN=mtlsgw %s issuer", ca->trust_domain, be->name));
	GW_GUARD(gw_hsm_csr(ca->hsm, be->issuer_key_uri, subj, NULL, &csr));
	rc = sign_csr(be, csr, NULL, &x);
	X509_REQ_free(csr);
	if (rc < 0)
		return rc;
	if (X509_check_ca(x) < 1) {
		/* a leaf profile: cfssl signs the leaves itself */
		X509_free(x);
		return 0;
	}
	/* the issuer signs every leaf: it must come from the pinned root */
	if (!signed_by_root(be, x)) {
		X509_free(x);
		return gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl %s signed an issuer that does not chain to the "
			"backend's root; refused",
			be->name, be->cfg.url);
	}
	*out = x;
	return 0;
}

int
gw_ca_cfssl_init(struct gw_ca *ca, struct gw_ca_be *be)
{
	struct gw_state_ca row;
	char label[GW_HSM_LABEL_MAX + 1], uri[GW_HSM_URI_MAX];

	if (be->cfg.url == NULL)
		return gw_err_setf(
			-GW_E_CONFIG, GW_HERE, "backend %s: type cfssl needs conf.url", be->name);
	if (strncmp(be->cfg.url, "http://", 7) == 0)
		GW_LOG_WARN("backend %s: cfssl %s is plain http: its root and certificates are "
			    "not authenticated; use https:// with conf.ca_file",
			be->name, be->cfg.url);
	GW_GUARD(cfssl_cert(be, "/api/v1/cfssl/info", json_pack("{s:s}", "label", ""), &be->root));
	/*
	 * cfssl before 1.3 (Debian's 1.2.0) writes a URI host as a DNS SAN, so it
	 * cannot put a SPIFFE ID in a leaf. With a CA profile it signs an issuer
	 * for a key in our HSM instead, and the issuer signs the leaves here
	 * (Consul's and Vault's intermediate model). Kept while valid and
	 * issued by the same root.
	 */
	if (gw_state_ca_get(ca->st, be->name, &row) == 0) {
		int rc = strcmp(row.type, "cfssl") != 0 || row.removed
				 ? 0
				 : check_pinned_root(ca, be, &row);

		if (rc < 0) {
			gw_state_ca_clear(&row);
			return rc;
		}
		if (strcmp(row.type, "cfssl") == 0 && row.issuer_pem && row.issuer_key) {
			X509 *i = gw_ca_pem_read(row.issuer_pem);

			if (i && X509_check_issued(be->root, i) == X509_V_OK &&
				!gw_rotation_renew_due(
					gw_ca_not_before(i), gw_ca_not_after(i), gw_ca_now(ca))) {
				be->issuer = i;
				be->issuer_key_uri = strdup(row.issuer_key);
			} else {
				X509_free(i);
			}
		}
		gw_state_ca_clear(&row);
	}
	gw_err_clear();
	if (be->issuer == NULL) {
		GW_GUARD(gw_ca_fmt(label, sizeof(label), "ca-%s-issuer", be->name));
		GW_GUARD(gw_ca_key_ensure(ca, be->cfg.key_type, label, uri, &be->issuer_key));
		if ((be->issuer_key_uri = strdup(uri)) == NULL)
			return gw_err_set(-ENOMEM, GW_HERE);
		GW_GUARD(gw_ca_cfssl_new_issuer(ca, be, &be->issuer));
		if (be->issuer == NULL) {
			EVP_PKEY_free(be->issuer_key);
			be->issuer_key = NULL;
			free(be->issuer_key_uri);
			be->issuer_key_uri = NULL;
		}
	} else {
		if (be->issuer_key_uri == NULL)
			return gw_err_set(-ENOMEM, GW_HERE);
		GW_GUARD(gw_hsm_key_load(ca->hsm, be->issuer_key_uri, &be->issuer_key));
	}
	return 0;
}

int
gw_ca_cfssl_sign(struct gw_ca_be *be, X509_REQ *csr, const char *spiffe_id, time_t now,
	uint64_t ttl_s, X509 **out)
{
	X509 *x = NULL;
	int rc;

	GW_GUARD(sign_csr(be, csr, spiffe_id, &x));
	if (!has_uri(x, spiffe_id)) {
		rc = gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl %s signed without the URI SAN %s (cfssl before 1.3 "
			"writes it as a DNS name); give the backend a CA profile (ca_constraint "
			"is_ca) so cfssl signs an issuer whose key stays in the HSM",
			be->name, be->cfg.url, spiffe_id);
		goto fail;
	}
	/* a CA certificate for a client's key would let it mint any identity */
	if (X509_check_ca(x) != 0) {
		rc = gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl %s returned a CA certificate (not CA:FALSE) for %s; "
			"refused: its signing profile must not set is_ca for leaves",
			be->name, be->cfg.url, spiffe_id);
		goto fail;
	}
	/* cfssl takes its validity from the profile, not the request: check it */
	if (gw_ca_not_after(x) > now + (time_t)ttl_s + 60) {
		rc = gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl %s returned a certificate valid for %lld s, longer "
			"than the %llu s asked for; shorten the profile's expiry",
			be->name, be->cfg.url, (long long)(gw_ca_not_after(x) - now),
			(unsigned long long)ttl_s);
		goto fail;
	}
	if (!signed_by_root(be, x)) {
		rc = gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl %s returned a certificate not signed by the backend's "
			"root; refused",
			be->name, be->cfg.url);
		goto fail;
	}
	*out = x;
	return 0;
fail:
	X509_free(x);
	return rc;
}
