/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_pki.c - `mtlsgw-ctl pki demo`: a throwaway PKI for tests and the quick start.
 *
 * One root CA, two intermediate CAs under it, a server certificate for a key
 * that lives in the HSM (signed by the first intermediate) and a client for
 * each intermediate, with SPIFFE URI SANs under a trust domain. The CA and
 * client keys are plain files in DIR: they are demo keys, nothing else uses
 * them; only the server key is the real thing, inside the token.
 *
 * Files (DIR):
 *   root.pem root.key                       root CA (self-signed)
 *   intermediate.pem intermediate.key       intermediate CA, issued by root
 *   server.pem server.chain.pem server.uri  server leaf for --key (+ intermediate)
 *   client.pem client.chain.pem client.key  client leaf (spiffe://TD/client)
 *   other-intermediate.pem .key             a second intermediate under root
 *   other-client.pem other-client.chain.pem other-client.key
 *   cert1.pem cert2.pem cert3.pem           links: client leaf, intermediate, root
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ctl.h"
#include "gw_x509.h"
#include "hsm.h"

struct pki_opts {
	struct gw_hsm_params p;
	const char *dir;
	const char *key;
	const char *td;
	const char *server_san;
	int days;
};

struct ca {
	X509 *cert;
	EVP_PKEY *key;
};

/*
 * What failed, and why: OpenSSL's queue, or (gw_x509 empties the queue into
 * gw_err) the minting's message with OpenSSL's reason.
 */
static int
die_ossl(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[GW_ERR_MSG_MAX] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	else if (gw_err_get()->code != 0)
		snprintf(buf, sizeof(buf), "%s", gw_err_msg());
	ERR_clear_error();
	return gw_ctl_die(GW_CTL_FAIL, "pki demo: %s%s%s", what, buf[0] ? ": " : "", buf);
}

/*
 * A certificate for pub, issued by issuer (NULL: self-signed with sign_key),
 * minted by gw_x509_cert_make. is_ca: CA with pathlen; else a leaf with the
 * given EKU and SANs. Valid from an hour back (a peer whose clock runs a
 * little behind still accepts it) for days. NULL on failure, gw_err set.
 */
static X509 *
make_cert(const char *cn, EVP_PKEY *pub, const struct ca *issuer, EVP_PKEY *sign_key, int is_ca,
	int pathlen, const char *eku, const char *sans, int days)
{
	X509_NAME *name = X509_NAME_new();
	time_t now = time(NULL);
	X509 *x = NULL;

	if (name == NULL ||
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
			(const unsigned char *)"mtlsgw demo", -1, -1, 0) != 1 ||
		X509_NAME_add_entry_by_txt(
			name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1) {
		gw_err_setf(-GW_E_TLS, GW_HERE, "cannot build the name '%s'", cn);
		(void)gw_err_add_ossl();
	} else {
		const struct gw_x509_cert_spec spec = {
			.subject = name,
			.pub = pub,
			.issuer = issuer ? issuer->cert : NULL,
			.sign_key = issuer ? issuer->key : sign_key,
			.not_before = now - 3600,
			.not_after = now + (time_t)days * 86400,
			.ca = is_ca != 0,
			.pathlen = pathlen,
			.eku = eku,
			.san = sans,
		};

		if (gw_x509_cert_make(&spec, &x) < 0)
			x = NULL;
	}
	X509_NAME_free(name);
	return x;
}

static int
write_pem(const char *dir, const char *name, X509 *a, X509 *b, EVP_PKEY *key)
{
	char path[4096];
	FILE *f;
	int ok, fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	/*
	 * A new file every time (O_EXCL), never through a symlink planted in
	 * its place (O_NOFOLLOW), so a key is 0600 from its first byte whatever
	 * was there before; certificates world-readable.
	 */
	if (unlink(path) < 0 && errno != ENOENT)
		return gw_ctl_die(
			GW_CTL_FAIL, "pki demo: cannot replace '%s': %s", path, strerror(errno));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, key ? 0600 : 0644);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		return gw_ctl_die(
			GW_CTL_FAIL, "pki demo: cannot write '%s': %s", path, strerror(errno));
	}
	ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1
		 : PEM_write_X509(f, a) == 1 && (b == NULL || PEM_write_X509(f, b) == 1);
	if (fclose(f) != 0 || !ok)
		return gw_ctl_die(GW_CTL_FAIL, "pki demo: cannot write '%s'", path);
	return 0;
}

static int
link_as(const char *dir, const char *target, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	if (symlink(target, path) != 0)
		return gw_ctl_die(
			GW_CTL_FAIL, "pki demo: cannot link '%s': %s", path, strerror(errno));
	return 0;
}

/* A CA (self-signed if parent is NULL) with a fresh P-256 file key. */
static int
make_ca(struct ca *out, const char *cn, const struct ca *parent, int pathlen)
{
	out->key = EVP_EC_gen("P-256");
	if (out->key == NULL)
		return die_ossl("cannot generate a CA key");
	out->cert = make_cert(cn, out->key, parent, out->key, 1, pathlen, NULL, NULL, 3650);
	if (out->cert == NULL)
		return die_ossl("cannot make the CA certificate");
	return 0;
}

/* A client leaf with SPIFFE ID spiffe://td/name under issuer; files name.* */
static int
make_client(const struct pki_opts *o, const struct ca *issuer, const char *name)
{
	char sans[512], file[128];
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = NULL;
	int rc = GW_CTL_OK;

	snprintf(sans, sizeof(sans), "URI:spiffe://%s/%s", o->td, name);
	if (k == NULL || (x = make_cert(name, k, issuer, NULL, 0, -1, "clientAuth", sans,
				  o->days)) == NULL) {
		rc = die_ossl("cannot make a client certificate");
		goto out;
	}
	snprintf(file, sizeof(file), "%s.pem", name);
	if ((rc = write_pem(o->dir, file, x, NULL, NULL)) != 0)
		goto out;
	snprintf(file, sizeof(file), "%s.chain.pem", name);
	if ((rc = write_pem(o->dir, file, x, issuer->cert, NULL)) != 0)
		goto out;
	snprintf(file, sizeof(file), "%s.key", name);
	rc = write_pem(o->dir, file, NULL, NULL, k);
out:
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

static int
demo(struct pki_opts *o)
{
	struct ca root = {0}, inter = {0}, other = {0};
	struct gw_hsm *h = NULL;
	EVP_PKEY *skey = NULL;
	X509 *server = NULL;
	char sans[1024], path[4096];
	int rc;

	if (mkdir(o->dir, 0700) != 0 && errno != EEXIST)
		return gw_ctl_die(
			GW_CTL_FAIL, "pki demo: cannot create '%s': %s", o->dir, strerror(errno));
	/* the server key: in the token, used through it, never read */
	if (gw_hsm_open(&o->p, &h) < 0 || gw_hsm_key_load(h, o->key, &skey) < 0) {
		rc = gw_ctl_die(GW_CTL_FAIL, "pki demo: %s", gw_err_msg());
		goto out;
	}
	if ((rc = make_ca(&root, "mtlsgw demo root CA", NULL, 1)) != 0 ||
		(rc = make_ca(&inter, "mtlsgw demo intermediate CA", &root, 0)) != 0 ||
		(rc = make_ca(&other, "mtlsgw demo other intermediate CA", &root, 0)) != 0)
		goto out;
	snprintf(sans, sizeof(sans), "%s,URI:spiffe://%s/mtlsgw", o->server_san, o->td);
	server = make_cert(
		"mtlsgw demo server", skey, &inter, NULL, 0, -1, "serverAuth", sans, o->days);
	if (server == NULL) {
		rc = die_ossl("cannot make the server certificate (check --server-san)");
		goto out;
	}
	/* belt and braces: the token itself proves the certificate is its key's */
	if (gw_hsm_cert_matches_key(h, server, o->key) < 0) {
		rc = gw_ctl_die(GW_CTL_FAIL, "pki demo: %s", gw_err_msg());
		goto out;
	}
	if ((rc = write_pem(o->dir, "root.pem", root.cert, NULL, NULL)) != 0 ||
		(rc = write_pem(o->dir, "root.key", NULL, NULL, root.key)) != 0 ||
		(rc = write_pem(o->dir, "intermediate.pem", inter.cert, NULL, NULL)) != 0 ||
		(rc = write_pem(o->dir, "intermediate.key", NULL, NULL, inter.key)) != 0 ||
		(rc = write_pem(o->dir, "other-intermediate.pem", other.cert, NULL, NULL)) != 0 ||
		(rc = write_pem(o->dir, "other-intermediate.key", NULL, NULL, other.key)) != 0 ||
		(rc = write_pem(o->dir, "server.pem", server, NULL, NULL)) != 0 ||
		(rc = write_pem(o->dir, "server.chain.pem", server, inter.cert, NULL)) != 0 ||
		(rc = make_client(o, &inter, "client")) != 0 ||
		(rc = make_client(o, &other, "other-client")) != 0 ||
		(rc = link_as(o->dir, "client.pem", "cert1.pem")) != 0 ||
		(rc = link_as(o->dir, "intermediate.pem", "cert2.pem")) != 0 ||
		(rc = link_as(o->dir, "root.pem", "cert3.pem")) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/server.uri", o->dir);
	{
		FILE *f = fopen(path, "w");

		if (f == NULL || fprintf(f, "%s\n", o->key) < 0 || fclose(f) != 0) {
			rc = gw_ctl_die(GW_CTL_FAIL, "pki demo: cannot write '%s'", path);
			goto out;
		}
	}
	printf("demo PKI in %s (trust domain %s):\n"
	       "  root.pem               root CA (cert3.pem)\n"
	       "  intermediate.pem       intermediate CA (cert2.pem)\n"
	       "  server.chain.pem       server cert for %s + intermediate\n"
	       "  client.pem             client leaf spiffe://%s/client (cert1.pem); "
	       "client.chain.pem, client.key\n"
	       "  other-intermediate.pem a second intermediate under the same root; "
	       "other-client.{pem,chain.pem,key}\n",
		o->dir, o->td, o->key, o->td);
out:
	X509_free(server);
	X509_free(root.cert);
	X509_free(inter.cert);
	X509_free(other.cert);
	EVP_PKEY_free(root.key);
	EVP_PKEY_free(inter.key);
	EVP_PKEY_free(other.key);
	EVP_PKEY_free(skey);
	gw_hsm_close(h);
	return rc;
}

static const char demo_usage[] =
	"usage: mtlsgw-ctl pki demo --dir DIR --key URI --pin-file FILE [options]\n\n"
	"Make a demo PKI in DIR: root CA, intermediate CA, a server certificate for the\n"
	"HSM key URI (signed by the intermediate), SPIFFE client certificates, and a\n"
	"second intermediate with its own client. CA and client keys are demo files.\n\n"
	"options:\n"
	"  --dir DIR             where the files go (created if missing)\n"
	"  --key URI             the server's private key in the token (pkcs11:...)\n"
	"  --pin-file FILE       user PIN, read from FILE (or --pin-env VAR)\n"
	"  --token LABEL         token label (default: the URI's token=)\n"
	"  --module PATH         PKCS#11 module (default " GW_DEFAULT_PKCS11_MODULE ")\n"
	"  --trust-domain TD     SPIFFE trust domain (default example.org)\n"
	"  --server-san LIST     server SANs (default DNS:localhost,IP:127.0.0.1)\n"
	"  --days N              leaf validity in days (default 365; CAs 3650)\n";

static int
pki_run(int argc, char **argv)
{
	enum { O_DIR = 1000, O_KEY, O_TD, O_SAN, O_DAYS, O_HELP };
	static const struct option opts[] = {
		{"dir", required_argument, NULL, O_DIR},
		{"key", required_argument, NULL, O_KEY},
		GW_CTL_HSM_OPTIONS,
		{"trust-domain", required_argument, NULL, O_TD},
		{"server-san", required_argument, NULL, O_SAN},
		{"days", required_argument, NULL, O_DAYS},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	struct pki_opts o = {
		.td = "example.org", .server_san = "DNS:localhost,IP:127.0.0.1", .days = 365};
	char **av = argv + 1;
	int ac = argc - 1, c, rc;
	char *end;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		FILE *f = argc < 2 ? stderr : stdout;

		fprintf(f, "usage: mtlsgw-ctl pki <command> [options] (--help on every command)\n\n"
			   "commands:\n  demo    make a demo PKI around an HSM server key\n");
		return argc < 2 ? GW_CTL_USAGE : GW_CTL_OK;
	}
	if (strcmp(argv[1], "demo") != 0)
		return gw_ctl_die(
			GW_CTL_USAGE, "pki: unknown command '%s' (try pki --help)", argv[1]);
	optind = 1;
	opterr = 0;
	while ((c = gw_ctl_getopt(ac, av, opts)) != -1) {
		if (gw_ctl_hsm_opt(&o.p, c, optarg))
			continue;
		switch (c) {
		case O_DIR:
			o.dir = optarg;
			break;
		case O_KEY:
			o.key = optarg;
			break;
		case O_TD:
			o.td = optarg;
			break;
		case O_SAN:
			o.server_san = optarg;
			break;
		case O_DAYS:
			errno = 0;
			o.days = (int)strtol(optarg, &end, 10);
			if (errno || *end || o.days < 1 || o.days > 36500)
				return gw_ctl_die(GW_CTL_USAGE,
					"pki demo: --days '%s' is not a number of days (1..36500)",
					optarg);
			break;
		case O_HELP:
			fputs(demo_usage, stdout);
			return GW_CTL_OK;
		default:
			return gw_ctl_bad_option("pki demo", c, av[optind - 1]);
		}
	}
	if (optind < ac)
		return gw_ctl_die(GW_CTL_USAGE, "pki demo: unexpected argument '%s' (try --help)",
			av[optind]);
	if (o.dir == NULL || o.key == NULL)
		return gw_ctl_die(GW_CTL_USAGE, "pki demo: --dir DIR and --key URI are required "
						"(try --help)");
	if (o.p.pin_file == NULL && o.p.pin_env == NULL)
		return gw_ctl_die(
			GW_CTL_USAGE, "pki demo: --pin-file FILE is required (try --help)");
	if (strchr(o.td, '/') != NULL || strchr(o.td, ':') != NULL || o.td[0] == '\0')
		return gw_ctl_die(GW_CTL_USAGE,
			"pki demo: --trust-domain '%s' must be a bare name like example.org", o.td);
	rc = demo(&o);
	gw_hsm_shutdown();
	return rc;
}

const struct gw_ctl_group gw_ctl_group_pki = {
	.name = "pki",
	.summary = "demo PKI around an HSM server key (offline)",
	.run = pki_run,
};
