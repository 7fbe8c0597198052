/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_hsm.c - `mtlsgw-ctl hsm ...`: token chores, offline, through hsm/hsm.h.
 *
 * init, keygen, import-secret, list, csr and match. PINs are only ever read from files or
 * environment variables: there is deliberately no option that takes a PIN,
 * so one can never end up in argv, `ps` or shell history.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "ctl.h"
#include "hsm.h"

struct hsm_opts {
	struct gw_hsm_params p;
	const char *so_pin_file;
	const char *label;
	const char *type;
	const char *key;
	const char *subject;
	const char *san;
	const char *out;
	const char *cert;
	const char *file;
};

enum {
	O_ENGINE = 1000,
	O_SO_PIN_FILE,
	O_LABEL,
	O_TYPE,
	O_KEY,
	O_SUBJECT,
	O_SAN,
	O_OUT,
	O_CERT,
	O_FILE,
	O_HELP,
};

static const struct option long_opts[] = {
	GW_CTL_HSM_OPTIONS,
	{"engine", required_argument, NULL, O_ENGINE},
	{"so-pin-file", required_argument, NULL, O_SO_PIN_FILE},
	{"label", required_argument, NULL, O_LABEL},
	{"type", required_argument, NULL, O_TYPE},
	{"key", required_argument, NULL, O_KEY},
	{"subject", required_argument, NULL, O_SUBJECT},
	{"san", required_argument, NULL, O_SAN},
	{"out", required_argument, NULL, O_OUT},
	{"cert", required_argument, NULL, O_CERT},
	{"file", required_argument, NULL, O_FILE},
	{"help", no_argument, NULL, O_HELP},
	{NULL, 0, NULL, 0},
};

static const char common_help[] =
	"  --module PATH       PKCS#11 module (default " GW_DEFAULT_PKCS11_MODULE ")\n"
	"  --pin-file FILE     user PIN, read from FILE (or --pin-env VAR)\n";

static const struct sub {
	const char *name;
	const char *summary;
	const char *usage;
	int (*run)(struct hsm_opts *o);
} subs[];

static int
usage_of(const struct sub *s, FILE *f)
{
	fprintf(f, "usage: mtlsgw-ctl hsm %s %s\n\n%s\n\noptions:\n%s", s->name, s->usage,
		s->summary, common_help);
	return f == stdout ? GW_CTL_OK : GW_CTL_USAGE;
}

/* "mtlsgw-ctl: hsm <sub>: <the hsm module's message>" */
static int
fail(const char *sub)
{
	return gw_ctl_die(GW_CTL_FAIL, "hsm %s: %s", sub, gw_err_msg());
}

static int
need(const char *sub, const char *v, const char *opt)
{
	if (v == NULL || v[0] == '\0') {
		gw_ctl_die(GW_CTL_USAGE, "hsm %s: %s is required (try --help)", sub, opt);
		return -1;
	}
	return 0;
}

static int
run_init(struct hsm_opts *o)
{
	if (need("init", o->p.token, "--token LABEL") < 0 ||
		need("init", o->so_pin_file, "--so-pin-file FILE") < 0)
		return GW_CTL_USAGE;
	if (o->p.pin_file == NULL && o->p.pin_env == NULL)
		return gw_ctl_die(
			GW_CTL_USAGE, "hsm init: --pin-file FILE is required (try --help)");
	if (gw_hsm_token_init(&o->p, o->so_pin_file) < 0)
		return fail("init");
	printf("token '%s' initialised in %s\n", o->p.token,
		o->p.module ? o->p.module : GW_DEFAULT_PKCS11_MODULE);
	return GW_CTL_OK;
}

static int
run_keygen(struct hsm_opts *o)
{
	char uri[GW_HSM_URI_MAX];
	enum gw_hsm_key_type t;
	struct gw_hsm *h = NULL;
	int rc = GW_CTL_OK;

	if (need("keygen", o->p.token, "--token LABEL") < 0 ||
		need("keygen", o->label, "--label NAME") < 0)
		return GW_CTL_USAGE;
	t = gw_hsm_key_type_parse(o->type ? o->type : "ec-p256");
	if (t == GW_HSM_KEY_NONE)
		return gw_ctl_die(GW_CTL_USAGE,
			"hsm keygen: --type '%s' is not ec-p256, ec-p384, rsa-2048 or rsa-3072",
			o->type);
	if (o->p.pin_file == NULL && o->p.pin_env == NULL)
		return gw_ctl_die(
			GW_CTL_USAGE, "hsm keygen: --pin-file FILE is required (try --help)");
	if (gw_hsm_open(&o->p, &h) < 0 || gw_hsm_keygen(h, t, o->label, uri) < 0)
		rc = fail("keygen");
	else
		printf("%s\n", uri);
	gw_hsm_close(h);
	return rc;
}

/*
 * The key in a file (32 raw bytes, mode 0600) into the token as an AES-256
 * secret key. The value is never printed: not here, not in an error.
 */
static int
run_import_secret(struct hsm_opts *o)
{
	char uri[GW_HSM_URI_MAX], id[2 * 32 + 1] = "";
	struct gw_hsm_object *objs = NULL;
	struct gw_hsm *h = NULL;
	size_t n = 0;

	if (need("import-secret", o->p.token, "--token LABEL") < 0 ||
		need("import-secret", o->label, "--label NAME") < 0 ||
		need("import-secret", o->file, "--file KEYFILE") < 0)
		return GW_CTL_USAGE;
	if (o->p.pin_file == NULL && o->p.pin_env == NULL)
		return gw_ctl_die(GW_CTL_USAGE,
			"hsm import-secret: --pin-file FILE is required (try --help)");
	if (gw_hsm_open(&o->p, &h) < 0 ||
		gw_hsm_secret_import_file(h, o->label, o->file, uri) < 0) {
		gw_hsm_close(h);
		return fail("import-secret");
	}
	/* the id as the token now reports it (a failed listing only loses the id) */
	if (gw_hsm_list(h, &objs, &n) == 0)
		for (size_t i = 0; i < n; i++)
			if (objs[i].kind == GW_HSM_OBJ_SECRET_KEY &&
				strcmp(objs[i].label, o->label) == 0)
				snprintf(id, sizeof(id), "%s", objs[i].id_hex);
	free(objs);
	printf("secret key imported: token '%s', label '%s', id %s, aes-256, sensitive, "
	       "non-extractable\n%s\n",
		o->p.token, o->label, id[0] ? id : "?", uri);
	gw_hsm_close(h);
	return GW_CTL_OK;
}

static void
flags_of(const struct gw_hsm_object *ob, char *buf, size_t len)
{
	buf[0] = '\0';
	if (ob->kind == GW_HSM_OBJ_CERT)
		snprintf(buf, len, "-");
	else if (ob->kind == GW_HSM_OBJ_PUBLIC_KEY)
		snprintf(buf, len, "%s", ob->private_ ? "private" : "public");
	else if (ob->kind == GW_HSM_OBJ_SECRET_KEY)
		snprintf(buf, len, "%s%s%s", ob->sensitive ? "sensitive" : "NOT-sensitive",
			ob->extractable ? ",EXTRACTABLE" : ",non-extractable",
			ob->encrypt ? ",encrypt" : ",no-encrypt");
	else
		snprintf(buf, len, "%s%s%s%s", ob->sensitive ? "sensitive" : "NOT-sensitive",
			ob->extractable ? ",EXTRACTABLE" : ",non-extractable",
			ob->never_extractable ? ",never-extractable" : "",
			ob->sign ? ",sign" : ",no-sign");
}

static int
run_list(struct hsm_opts *o)
{
	static const char *const kinds[] = {"private", "public", "cert", "secret"};
	struct gw_hsm_object *objs = NULL;
	struct gw_hsm *h = NULL;
	size_t n = 0;

	if (need("list", o->p.token, "--token LABEL") < 0)
		return GW_CTL_USAGE;
	if (gw_hsm_open(&o->p, &h) < 0 || gw_hsm_list(h, &objs, &n) < 0) {
		gw_hsm_close(h);
		return fail("list");
	}
	printf("token '%s': %zu object%s%s\n", o->p.token, n, n == 1 ? "" : "s",
		o->p.pin_file || o->p.pin_env ? "" : " (no PIN given: public objects only)");
	if (n > 0)
		printf("%-8s %-9s %-16s %-17s %-46s %s\n", "KIND", "TYPE", "LABEL", "ID", "FLAGS",
			"URI");
	for (size_t i = 0; i < n; i++) {
		char flags[96];

		flags_of(&objs[i], flags, sizeof(flags));
		printf("%-8s %-9s %-16s %-17s %-46s %s\n", kinds[objs[i].kind],
			objs[i].kind == GW_HSM_OBJ_CERT ? "x509"
			: objs[i].kind == GW_HSM_OBJ_SECRET_KEY
				? objs[i].secret_type
				: gw_hsm_key_type_name(objs[i].type),
			objs[i].label[0] ? objs[i].label : "-",
			objs[i].id_hex[0] ? objs[i].id_hex : "-", flags, objs[i].uri);
		if (objs[i].kind == GW_HSM_OBJ_CERT && objs[i].subject[0])
			printf("%-8s subject %s\n", "", objs[i].subject);
	}
	free(objs);
	gw_hsm_close(h);
	return GW_CTL_OK;
}

static int
run_csr(struct hsm_opts *o)
{
	struct gw_hsm *h = NULL;
	X509_REQ *req = NULL;
	int rc = GW_CTL_OK;
	FILE *f = NULL;

	if (need("csr", o->key, "--key URI") < 0 ||
		need("csr", o->subject, "--subject /CN=..") < 0 ||
		need("csr", o->out, "--out FILE") < 0)
		return GW_CTL_USAGE;
	if (gw_hsm_open(&o->p, &h) < 0 || gw_hsm_csr(h, o->key, o->subject, o->san, &req) < 0) {
		rc = fail("csr");
		goto out;
	}
	f = strcmp(o->out, "-") == 0 ? stdout : fopen(o->out, "w");
	if (f == NULL) {
		rc = gw_ctl_die(
			GW_CTL_FAIL, "hsm csr: cannot write '%s': %s", o->out, strerror(errno));
		goto out;
	}
	if (PEM_write_X509_REQ(f, req) != 1 || (f != stdout && fclose(f) != 0)) {
		f = NULL;
		rc = gw_ctl_die(GW_CTL_FAIL, "hsm csr: cannot write '%s'", o->out);
		goto out;
	}
	f = NULL;
	if (strcmp(o->out, "-") != 0)
		fprintf(stderr, "CSR for %s written to %s\n", o->key, o->out);
out:
	X509_REQ_free(req);
	gw_hsm_close(h);
	return rc;
}

static int
run_match(struct hsm_opts *o)
{
	struct gw_hsm *h = NULL;
	X509 *x = NULL;
	int rc = GW_CTL_OK;
	FILE *f;

	if (need("match", o->key, "--key URI") < 0 || need("match", o->cert, "--cert FILE") < 0)
		return GW_CTL_USAGE;
	f = fopen(o->cert, "r");
	if (f == NULL)
		return gw_ctl_die(
			GW_CTL_FAIL, "hsm match: cannot read '%s': %s", o->cert, strerror(errno));
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return gw_ctl_die(GW_CTL_FAIL, "hsm match: '%s' holds no PEM certificate", o->cert);
	if (gw_hsm_open(&o->p, &h) < 0 || gw_hsm_cert_matches_key(h, x, o->key) < 0)
		rc = fail("match");
	else
		printf("%s matches %s\n", o->cert, o->key);
	X509_free(x);
	gw_hsm_close(h);
	return rc;
}

static const struct sub subs[] = {
	{"init", "Initialise a new token in the module's first free slot.",
		"--token LABEL --pin-file FILE --so-pin-file FILE [--module PATH]", run_init},
	{"keygen",
		"Generate a key pair inside the token and print its pkcs11: URI.\n"
		"The private half is sensitive, non-extractable and may only sign.",
		"--token LABEL --pin-file FILE --label NAME [--type "
		"ec-p256|ec-p384|rsa-2048|rsa-3072]",
		run_keygen},
	{"import-secret",
		"Import a 32-byte AES-256 key file into the token as a secret key.\n"
		"KEYFILE holds exactly 32 raw bytes and must be mode 0600 (like PIN files).\n"
		"The key becomes sensitive and non-extractable, and may only encrypt and\n"
		"decrypt. Prints its token, label, id and pkcs11: URI, never its value.\n"
		"Import the same file on every box of a fleet, then delete the file.",
		"--token LABEL --pin-file FILE --label NAME --file KEYFILE [--module PATH]",
		run_import_secret},
	{"list",
		"List the keys and certificates on a token (private and secret keys need the PIN).",
		"--token LABEL [--pin-file FILE]", run_list},
	{"csr", "Write a PEM certificate signing request signed by a token key.",
		"--key URI --subject /CN=name[/O=org] [--san DNS:a,URI:spiffe://td/x,IP:1.2.3.4]\n"
		"       --out FILE|- --pin-file FILE",
		run_csr},
	{"match", "Check, through the token, that a certificate belongs to a token key.",
		"--key URI --cert FILE --pin-file FILE", run_match},
	{NULL, NULL, NULL, NULL},
};

static int
group_usage(FILE *f)
{
	fprintf(f, "usage: mtlsgw-ctl hsm <command> [options] (--help on every command)\n\n"
		   "commands:\n");
	for (const struct sub *s = subs; s->name != NULL; s++)
		fprintf(f, "  %-13s %.*s\n", s->name, (int)strcspn(s->summary, "\n"), s->summary);
	return f == stdout ? GW_CTL_OK : GW_CTL_USAGE;
}

static int
hsm_run(int argc, char **argv)
{
	struct hsm_opts o = {0};
	const struct sub *s;
	char **av = argv + 1; /* getopt sees "<command> [options]" */
	int ac = argc - 1, c, rc;

	if (argc < 2)
		return group_usage(stderr);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return group_usage(stdout);
	for (s = subs; s->name != NULL; s++)
		if (strcmp(argv[1], s->name) == 0)
			break;
	if (s->name == NULL)
		return gw_ctl_die(
			GW_CTL_USAGE, "hsm: unknown command '%s' (try hsm --help)", argv[1]);
	optind = 1;
	opterr = 0;
	while ((c = gw_ctl_getopt(ac, av, long_opts)) != -1) {
		if (gw_ctl_hsm_opt(&o.p, c, optarg))
			continue;
		switch (c) {
		case O_ENGINE:
			o.p.engine = optarg;
			break;
		case O_SO_PIN_FILE:
			o.so_pin_file = optarg;
			break;
		case O_LABEL:
			o.label = optarg;
			break;
		case O_TYPE:
			o.type = optarg;
			break;
		case O_KEY:
			o.key = optarg;
			break;
		case O_SUBJECT:
			o.subject = optarg;
			break;
		case O_SAN:
			o.san = optarg;
			break;
		case O_OUT:
			o.out = optarg;
			break;
		case O_CERT:
			o.cert = optarg;
			break;
		case O_FILE:
			o.file = optarg;
			break;
		case O_HELP:
			return usage_of(s, stdout);
		default: {
			char cmd[32];

			snprintf(cmd, sizeof(cmd), "hsm %s", s->name);
			return gw_ctl_bad_option(cmd, c, av[optind - 1]);
		}
		}
	}
	if (optind < ac)
		return gw_ctl_die(GW_CTL_USAGE, "hsm %s: unexpected argument '%s' (try --help)",
			s->name, av[optind]);
	if (o.p.pin_file != NULL && o.p.pin_env != NULL)
		return gw_ctl_die(
			GW_CTL_USAGE, "hsm %s: give --pin-file or --pin-env, not both", s->name);
	rc = s->run(&o);
	gw_hsm_shutdown();
	return rc;
}

const struct gw_ctl_group gw_ctl_group_hsm = {
	.name = "hsm",
	.summary = "token chores: init, keygen, import-secret, list, csr, match (offline)",
	.run = hsm_run,
};
