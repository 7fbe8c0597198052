/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ca_cfssl.c - an external CA: a running `cfssl serve` (Debian golang-cfssl)
 * signs. Its API is JSON over plain HTTP: POST /api/v1/cfssl/info tells the
 * signing certificate, POST /api/v1/cfssl/sign signs a PEM CSR. A tiny
 * HTTP/1.0 client is enough (one request per connection, the answer ends at
 * EOF, so no chunked coding), and saves a dependency on libcurl. Errors come
 * back as {"success":false,"errors":[{"code":N,"message":"..."}]}: the
 * message is passed on as cfssl said it.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <openssl/x509v3.h>

#include "ca_internal.h"
#include "rotation.h"

#define CFSSL_MAX_REPLY (1 << 20)
#define CFSSL_TIMEOUT_S 10

static int
connect_url(const char *url, const char *name, char *host, size_t hlen, int *fd_out)
{
	const char *h;
	char port[8] = "80";
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	struct timeval tv = {.tv_sec = CFSSL_TIMEOUT_S};
	size_t n;
	int fd = -1, e;

	if (strncmp(url, "http://", 7) != 0)
		return gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl url %s: only http:// is supported (run cfssl on "
			"loopback)",
			name, url);
	h = url + 7;
	n = strcspn(h, ":/");
	if (n == 0 || n >= hlen)
		return gw_err_setf(
			-GW_E_CA, GW_HERE, "backend %s: cfssl url %s has no host", name, url);
	memcpy(host, h, n);
	host[n] = '\0';
	if (h[n] == ':') {
		size_t pl = strcspn(h + n + 1, "/");

		if (pl == 0 || pl >= sizeof(port))
			return gw_err_setf(
				-GW_E_CA, GW_HERE, "backend %s: cfssl url %s: bad port", name, url);
		memcpy(port, h + n + 1, pl);
		port[pl] = '\0';
	}
	if ((e = getaddrinfo(host, port, &hints, &ai)) != 0)
		return gw_err_setf(
			-GW_E_CA, GW_HERE, "backend %s: cfssl %s: %s", name, url, gai_strerror(e));
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
		errno = e;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cannot reach cfssl at %s: %s (is `cfssl serve` running?)",
			name, url, strerror(errno));
	*fd_out = fd;
	return 0;
}

/* POST body to url+path; *reply gets the JSON object cfssl answered with. */
static int
cfssl_post(const char *url, const char *name, const char *path, const char *body, json_t **reply)
{
	char host[256], head[512], *buf = NULL;
	size_t len = 0, cap = 0;
	const char *p;
	json_error_t je;
	int fd = -1, rc, status = 0;
	ssize_t n;

	GW_GUARD(connect_url(url, name, host, sizeof(host), &fd));
	snprintf(head, sizeof(head),
		"POST %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\n"
		"Content-Length: %zu\r\n\r\n",
		path, host, strlen(body));
	if (write(fd, head, strlen(head)) != (ssize_t)strlen(head) ||
		write(fd, body, strlen(body)) != (ssize_t)strlen(body)) {
		rc = gw_err_setf(-GW_E_CA, GW_HERE, "backend %s: cfssl %s: send: %s", name, url,
			strerror(errno));
		goto out;
	}
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *nb;

			if (cap >= CFSSL_MAX_REPLY) {
				rc = gw_err_setf(-GW_E_CA, GW_HERE,
					"backend %s: cfssl %s: answer larger than 1 MiB", name,
					url);
				goto out;
			}
			cap = cap ? 2 * cap : 8192;
			if ((nb = realloc(buf, cap)) == NULL) {
				rc = gw_err_set(-ENOMEM, GW_HERE);
				goto out;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = gw_err_setf(-GW_E_CA, GW_HERE, "backend %s: cfssl %s: no answer: %s",
				name, url, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf = buf ? buf : calloc(1, 1);
	if (buf == NULL) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1 || !(p = strstr(buf, "\r\n\r\n"))) {
		rc = gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: %s does not answer like an HTTP server", name, url);
		goto out;
	}
	*reply = json_loads(p + 4, 0, &je);
	if (*reply == NULL || !json_is_object(*reply)) {
		json_decref(*reply);
		*reply = NULL;
		rc = gw_err_setf(-GW_E_CA, GW_HERE,
			"backend %s: cfssl %s%s answered HTTP %d without JSON (is this cfssl?)",
			name, url, path, status);
		goto out;
	}
	rc = 0;
	if (!json_is_true(json_object_get(*reply, "success"))) {
		json_t *e0 = json_array_get(json_object_get(*reply, "errors"), 0);
		const char *m = json_string_value(json_object_get(e0, "message"));

		rc = gw_err_setf(-GW_E_CA, GW_HERE, "backend %s: cfssl %s refused (HTTP %d): %s",
			name, url, status, m ? m : "no message");
		json_decref(*reply);
		*reply = NULL;
	}
out:
	close(fd);
	free(buf);
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

	if (req && be->cfg.profile)
		json_object_set_new(req, "profile", json_string(be->cfg.profile));
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	rc = cfssl_post(be->cfg.url, be->name, path, body, &reply);
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
	if (req && host)
		json_object_set_new(req, "hosts", json_pack("[s]", host));
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
	GW_GUARD(cfssl_cert(be, "/api/v1/cfssl/info", json_pack("{s:s}", "label", ""), &be->root));
	/*
	 * cfssl before 1.3 (Debian's 1.2.0) writes a URI host as a DNS SAN, so it
	 * cannot put a SPIFFE ID in a leaf. With a CA profile it signs an issuer
	 * for a key in our HSM instead, and the issuer signs the leaves here
	 * (Consul's and Vault's intermediate model). Kept while valid and
	 * issued by the same root.
	 */
	if (gw_state_ca_get(ca->st, be->name, &row) == 0) {
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
	EVP_PKEY *rk = X509_get0_pubkey(be->root);
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
	if (X509_check_issued(be->root, x) != X509_V_OK || rk == NULL || X509_verify(x, rk) != 1) {
		ERR_clear_error();
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
