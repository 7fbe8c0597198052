/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hsm.c - handles, engine instances, keys as EVP_PKEYs, CSRs (see hsm.h).
 *
 * A handle is one thread's view of one token: our own PKCS#11 session (for
 * lookups, login, keygen, listing) plus the process's engine instance, which
 * turns a checked key into an EVP_PKEY. Finishing the engine instance calls
 * C_Finalize on the module, which would close every other thread's sessions,
 * so it is finished only by gw_hsm_shutdown, at exit.
 */
#include "ossl_compat.h" /* first: ENGINE API, see there */

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gw_x509.h"
#include "hsm_internal.h"

struct hsm_engine {
	ENGINE *e;
	char *engine_path;
	char *module;
	struct hsm_engine *next;
};

static pthread_mutex_t eng_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hsm_engine *engines;

struct gw_hsm {
	struct gw_p11_mod *mod;
	struct hsm_engine *eng;
	pid_t pid;
	char *pin_file; /* where the PIN comes from; the PIN itself is not kept */
	char *pin_env;
	bool bound;     /* token found, session open */
	bool logged_in; /* this process is logged in to the token */
	char token[33];
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE sess;
};

static const char *const type_names[] = {
	[GW_HSM_KEY_EC_P256] = "ec-p256",
	[GW_HSM_KEY_EC_P384] = "ec-p384",
	[GW_HSM_KEY_RSA_2048] = "rsa-2048",
	[GW_HSM_KEY_RSA_3072] = "rsa-3072",
};

enum gw_hsm_key_type
gw_hsm_key_type_parse(const char *name)
{
	for (size_t i = 1; name != NULL && i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (strcmp(name, type_names[i]) == 0)
			return (enum gw_hsm_key_type)i;
	return GW_HSM_KEY_NONE;
}

const char *
gw_hsm_key_type_name(enum gw_hsm_key_type t)
{
	if (t > GW_HSM_KEY_NONE && t <= GW_HSM_KEY_RSA_3072)
		return type_names[t];
	return "?";
}

/*
 * A PIN given in an environment variable: read once, then the variable's
 * value is wiped in place (the bytes of the initial environment stay
 * readable in /proc/PID/environ otherwise) and unset, so no child and no
 * core dump of a long-running gateway carries it. Later reads of the same
 * variable (worker handles, a reload, HSM recovery) get it from here;
 * gw_hsm_shutdown() cleanses it. One variable at a time: a different name
 * replaces it.
 */
static pthread_mutex_t env_pin_lock = PTHREAD_MUTEX_INITIALIZER;
static char env_pin_name[128];
static char env_pin[GW_HSM_PIN_MAX];

static int
pin_from_env(const char *env, char pin[GW_HSM_PIN_MAX])
{
	char *v;
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&env_pin_lock);
	v = getenv(env);
	if (v != NULL && v[0] != '\0') {
		n = strlen(v);
		if (n >= GW_HSM_PIN_MAX) {
			rc = gw_err_setf(-GW_E_HSM_PIN, GW_HERE,
				"PIN in '%s' is too long (at most %d bytes)", env,
				GW_HSM_PIN_MAX - 1);
			goto out;
		}
		if (strlen(env) >= sizeof(env_pin_name)) {
			rc = gw_err_setf(-GW_E_HSM_PIN, GW_HERE,
				"PIN environment variable name '%.40s...' is too long", env);
			goto out;
		}
		memcpy(pin, v, n + 1);
		memcpy(env_pin, v, n + 1);
		memcpy(env_pin_name, env, strlen(env) + 1);
		OPENSSL_cleanse(v, n);
		unsetenv(env);
		goto out;
	}
	if (env_pin_name[0] != '\0' && strcmp(env_pin_name, env) == 0) {
		memcpy(pin, env_pin, sizeof(env_pin));
		goto out;
	}
	rc = gw_err_setf(-GW_E_HSM_PIN, GW_HERE, "PIN environment variable '%s' is not set", env);
out:
	pthread_mutex_unlock(&env_pin_lock);
	return rc;
}

/*
 * ssh's rule for private keys: ours or root's, nobody else may read or write
 * it. what names the file in messages ("PIN file", "key file"); code is the
 * error raised.
 */
int
gw_hsm_file_check(const char *what, const char *file, int fd, int code)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return gw_err_setf(
			code, GW_HERE, "cannot read %s '%s': %s", what, file, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return gw_err_setf(code, GW_HERE, "%s '%s' is not a regular file", what, file);
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return gw_err_setf(code, GW_HERE,
			"%s '%s' is owned by uid %u, not by this user (uid %u) or root: "
			"chown it",
			what, file, (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & 077)
		return gw_err_setf(code, GW_HERE,
			"%s '%s' is accessible by group or others (mode %04o): chmod 600 "
			"it",
			what, file, (unsigned)(st.st_mode & 07777));
	return 0;
}

int
gw_hsm_pin_read(const char *file, const char *env, char pin[GW_HSM_PIN_MAX])
{
	size_t n = 0;

	pin[0] = '\0';
	if (file != NULL) {
		int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		FILE *f;
		int err;

		if (fd < 0)
			return gw_err_setf(-GW_E_HSM_PIN, GW_HERE, "cannot read PIN file '%s': %s",
				file, strerror(errno));
		if (gw_hsm_file_check("PIN file", file, fd, -GW_E_HSM_PIN) < 0) {
			close(fd);
			return gw_err_get()->code;
		}
		f = fdopen(fd, "r");
		if (f == NULL) {
			close(fd);
			return gw_err_setf(-GW_E_HSM_PIN, GW_HERE, "cannot read PIN file '%s': %s",
				file, strerror(errno));
		}
		n = fread(pin, 1, GW_HSM_PIN_MAX, f);
		err = ferror(f);
		fclose(f);
		if (err) {
			OPENSSL_cleanse(pin, GW_HSM_PIN_MAX);
			return gw_err_setf(
				-GW_E_HSM_PIN, GW_HERE, "cannot read PIN file '%s'", file);
		}
		if (n == GW_HSM_PIN_MAX) {
			OPENSSL_cleanse(pin, GW_HSM_PIN_MAX);
			return gw_err_setf(-GW_E_HSM_PIN, GW_HERE,
				"PIN file '%s' is too long (at most %d bytes)", file,
				GW_HSM_PIN_MAX - 1);
		}
		pin[n] = '\0';
		if (n > 0 && pin[n - 1] == '\n')
			pin[--n] = '\0';
		if (n > 0 && pin[n - 1] == '\r')
			pin[--n] = '\0';
		if (n == 0 || memchr(pin, '\0', n) != NULL || memchr(pin, '\n', n) != NULL) {
			OPENSSL_cleanse(pin, GW_HSM_PIN_MAX);
			return gw_err_setf(-GW_E_HSM_PIN, GW_HERE,
				"PIN file '%s' must hold one non-empty line", file);
		}
		return 0;
	}
	if (env != NULL)
		return pin_from_env(env, pin);
	return gw_err_setf(-GW_E_HSM_PIN, GW_HERE, "no PIN given (a PIN file or variable)");
}

int
gw_hsm_uri_token(const char *uri, char *label, size_t len)
{
	struct gw_p11_uri u;

	GW_GUARD(gw_p11_uri_parse(uri, &u));
	if (!u.has_token)
		return gw_err_setf(
			-EINVAL, GW_HERE, "key URI '%s' names no token (token=...)", uri);
	if (strlen(u.token) >= len)
		return gw_err_set(-ENOSPC, GW_HERE);
	memcpy(label, u.token, strlen(u.token) + 1);
	return 0;
}

/* --- engine instances ---------------------------------------------------------------- */

static int
engine_ctrl(ENGINE *e, const char *cmd, const char *arg, const char *what)
{
	if (ENGINE_ctrl_cmd_string(e, cmd, arg, 0) != 1) {
		gw_err_setf(-GW_E_HSM, GW_HERE, "pkcs11 engine '%s': %s failed", what, cmd);
		return gw_err_add_ossl();
	}
	return 0;
}

static int
engine_new(const char *engine_path, const char *module, ENGINE **out)
{
	ENGINE *e;
	int rc;

	if (access(engine_path, R_OK) != 0)
		return gw_err_setf(-GW_E_HSM, GW_HERE,
			"pkcs11 engine '%s' cannot be loaded: %s (package "
			"libengine-pkcs11-openssl)",
			engine_path, strerror(errno));
	/*
	 * Pin the engine library for the life of the process: OpenSSL dlclose()s
	 * it when the engine is freed, but libp11's key methods may still be
	 * referenced by an EVP_PKEY someone frees later (and leak reports need
	 * its symbols). The handle is deliberately never closed.
	 */
	if (dlopen(engine_path, RTLD_NOW | RTLD_NODELETE) == NULL)
		return gw_err_setf(-GW_E_HSM, GW_HERE, "pkcs11 engine '%s' cannot be loaded: %s",
			engine_path, dlerror());
	GW_GUARD_OSSL(OPENSSL_init_crypto(OPENSSL_INIT_ENGINE_DYNAMIC, NULL), -GW_E_HSM);
	e = ENGINE_by_id("dynamic");
	if (e == NULL) {
		gw_err_setf(-GW_E_HSM, GW_HERE, "OpenSSL has no dynamic engine loader");
		return gw_err_add_ossl();
	}
	/*
	 * LIST_ADD 0: this instance stays private to its handle, out of
	 * OpenSSL's engine list, and never becomes a default for anything.
	 */
	if ((rc = engine_ctrl(e, "SO_PATH", engine_path, engine_path)) < 0 ||
		(rc = engine_ctrl(e, "ID", "pkcs11", engine_path)) < 0 ||
		(rc = engine_ctrl(e, "LIST_ADD", "0", engine_path)) < 0 ||
		(rc = engine_ctrl(e, "LOAD", NULL, engine_path)) < 0 ||
		(rc = engine_ctrl(e, "MODULE_PATH", module, engine_path)) < 0) {
		ENGINE_free(e);
		return rc;
	}
	if (ENGINE_init(e) != 1) {
		ENGINE_free(e);
		gw_err_setf(
			-GW_E_HSM, GW_HERE, "pkcs11 engine '%s' failed to initialise", engine_path);
		return gw_err_add_ossl();
	}
	*out = e;
	return 0;
}

/*
 * The process's engine instance for (engine, module), made on first use.
 * libp11 0.4.12's engine binds only once per process (a second "dynamic"
 * LOAD of it fails), so every handle of the process shares this instance;
 * libp11 keeps a pool of PKCS#11 sessions per slot and each signature takes
 * its own session from it, so threads do not share a session. The instance
 * is inherited across fork() and libp11 re-initialises it in the child.
 */
static int
engine_get(const char *engine_path, const char *module, struct hsm_engine **out)
{
	struct hsm_engine *it;
	int rc = 0;

	pthread_mutex_lock(&eng_lock);
	for (it = engines; it != NULL; it = it->next)
		if (strcmp(it->engine_path, engine_path) == 0 && strcmp(it->module, module) == 0)
			break;
	if (it == NULL) {
		for (it = engines; it != NULL; it = it->next)
			if (strcmp(it->engine_path, engine_path) == 0)
				break;
		if (it != NULL) {
			rc = gw_err_setf(-GW_E_HSM, GW_HERE,
				"pkcs11 engine '%s' is already bound to module '%s' in this "
				"process; "
				"one process can use one PKCS#11 module",
				engine_path, it->module);
			goto out;
		}
		it = calloc(1, sizeof(*it));
		if (it == NULL || (it->engine_path = strdup(engine_path)) == NULL ||
			(it->module = strdup(module)) == NULL) {
			rc = gw_err_set(-ENOMEM, GW_HERE);
		} else {
			rc = engine_new(engine_path, module, &it->e);
		}
		if (rc < 0) {
			if (it != NULL) {
				free(it->engine_path);
				free(it->module);
			}
			free(it);
			goto out;
		}
		it->next = engines;
		engines = it;
	}
	*out = it;
out:
	pthread_mutex_unlock(&eng_lock);
	return rc;
}

void
gw_hsm_shutdown(void)
{
	/* no HSM thread may sign while the engine goes */
	while (gw_hsm_async_running())
		gw_hsm_async_stop();
	pthread_mutex_lock(&env_pin_lock);
	OPENSSL_cleanse(env_pin, sizeof(env_pin));
	env_pin_name[0] = '\0';
	pthread_mutex_unlock(&env_pin_lock);
	pthread_mutex_lock(&eng_lock);
	while (engines != NULL) {
		struct hsm_engine *it = engines;

		engines = it->next;
		/* 0 only for an engine never initialised: nothing left to undo */
		(void)ENGINE_finish(it->e);
		ENGINE_free(it->e);
		free(it->engine_path);
		free(it->module);
		free(it);
	}
	pthread_mutex_unlock(&eng_lock);
	gw_p11_mod_unload_all();
}

/* --- handles --------------------------------------------------------------------------- */

static int
check_pid(const struct gw_hsm *h)
{
	if (h->pid != getpid())
		return gw_err_setf(-GW_E_HSM, GW_HERE,
			"HSM handle for token '%s' was opened in process %d before fork; open a "
			"new handle in this process (%d)",
			h->bound ? h->token : "?", (int)h->pid, (int)getpid());
	return 0;
}

/* Find the token, open our session, log in if we have a PIN source. */
static int
bind_token(struct gw_hsm *h, const char *label)
{
	char pin[GW_HSM_PIN_MAX];
	CK_RV rv;
	int rc;

	if (strlen(label) == 0 || strlen(label) >= sizeof(h->token))
		return gw_err_setf(
			-EINVAL, GW_HERE, "token label '%s' must be 1 to 32 bytes", label);
	GW_GUARD(gw_p11_find_token(h->mod, label, &h->slot));
	rv = h->mod->f->C_OpenSession(
		h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h->sess);
	if (rv == CKR_TOKEN_WRITE_PROTECTED)
		rv = h->mod->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION, NULL, NULL, &h->sess);
	if (rv != CKR_OK)
		return gw_err_setf(-GW_E_HSM, GW_HERE, "cannot open a session on token '%s': %s",
			label, gw_p11_ckr_name(rv));
	memcpy(h->token, label, strlen(label) + 1);
	h->bound = true;
	if (h->pin_file == NULL && h->pin_env == NULL)
		return 0;
	rc = gw_hsm_pin_read(h->pin_file, h->pin_env, pin);
	if (rc == 0)
		rc = gw_p11_login(h->mod, h->sess, label, pin);
	/*
	 * The engine logs in on its own sessions (and again after a fork). Its
	 * controls are not thread-safe (concurrent PIN sets double-free), and
	 * the instance is shared: under the lock.
	 */
	if (rc == 0) {
		pthread_mutex_lock(&eng_lock);
		if (ENGINE_ctrl_cmd_string(h->eng->e, "PIN", pin, 0) != 1)
			rc = gw_err_setf(
				-GW_E_HSM, GW_HERE, "pkcs11 engine refused the PIN control");
		pthread_mutex_unlock(&eng_lock);
	}
	OPENSSL_cleanse(pin, sizeof(pin));
	if (rc < 0) {
		/* unbound again, so a later call on this handle reports the real cause
		 * (a failed close: the session is gone either way) */
		(void)h->mod->f->C_CloseSession(h->sess);
		h->sess = CK_INVALID_HANDLE;
		h->bound = false;
		return rc;
	}
	h->logged_in = true;
	return 0;
}

int
gw_hsm_open(const struct gw_hsm_params *p, struct gw_hsm **out)
{
	const char *module, *engine;
	struct gw_hsm *h;
	int rc;

	GW_ENSURE(p != NULL && out != NULL, -EINVAL);
	if (p->pin_file != NULL && p->pin_env != NULL)
		return gw_err_setf(
			-EINVAL, GW_HERE, "give the PIN as a file or a variable, not both");
	module = p->module ? p->module : GW_DEFAULT_PKCS11_MODULE;
	engine = p->engine ? p->engine : GW_DEFAULT_PKCS11_ENGINE;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	h->pid = getpid();
	h->sess = CK_INVALID_HANDLE;
	if ((p->pin_file && (h->pin_file = strdup(p->pin_file)) == NULL) ||
		(p->pin_env && (h->pin_env = strdup(p->pin_env)) == NULL)) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	/* Module first: its error is the one a person can act on. */
	rc = gw_p11_mod_get(module, &h->mod);
	if (rc < 0)
		goto out;
	rc = engine_get(engine, module, &h->eng);
	if (rc < 0)
		goto out;
	if (p->token != NULL)
		rc = bind_token(h, p->token);
out:
	if (rc < 0) {
		gw_hsm_close(h);
		return rc;
	}
	*out = h;
	return 0;
}

void
gw_hsm_close(struct gw_hsm *h)
{
	if (h == NULL)
		return;
	/* In a child, the parent's session is not ours to close. */
	if (h->pid == getpid()) {
		if (h->sess != CK_INVALID_HANDLE)
			(void)h->mod->f->C_CloseSession(h->sess); /* freed: nothing to retry */
	}
	free(h->pin_file);
	free(h->pin_env);
	free(h);
}

const char *
gw_hsm_token(const struct gw_hsm *h)
{
	return h != NULL && h->bound ? h->token : NULL;
}

/*
 * Common entry of every key operation: right process, URI parsed, token
 * bound (by the URI's token if the handle has none yet), the URI's token
 * the handle's.
 */
int
gw_hsm_uri_bind(struct gw_hsm *h, const char *uri, struct gw_p11_uri *u)
{
	GW_ENSURE(h != NULL && uri != NULL, -EINVAL);
	GW_GUARD(check_pid(h));
	GW_GUARD(gw_p11_uri_parse(uri, u));
	if (!h->bound) {
		if (!u->has_token)
			return gw_err_setf(
				-EINVAL, GW_HERE, "key URI '%s' names no token (token=...)", uri);
		GW_GUARD(bind_token(h, u->token));
	} else if (u->has_token && strcmp(u->token, h->token) != 0) {
		return gw_err_setf(-GW_E_HSM_TOKEN, GW_HERE,
			"key URI names token '%s' but this handle is for token '%s'", u->token,
			h->token);
	}
	return 0;
}

static const char *
class_name(int cls)
{
	switch (cls) {
	case CKO_PRIVATE_KEY:
		return "private key";
	case CKO_PUBLIC_KEY:
		return "public key";
	case CKO_SECRET_KEY:
		return "secret key";
	default:
		return "certificate";
	}
}

/* A private key's URI: bound, of no other type, naming a key. */
static int
key_prepare(struct gw_hsm *h, const char *uri, struct gw_p11_uri *u)
{
	GW_GUARD(gw_hsm_uri_bind(h, uri, u));
	if (u->type != -1 && u->type != (int)CKO_PRIVATE_KEY)
		return gw_err_setf(-GW_E_HSM_USAGE, GW_HERE,
			"key URI '%s' names a %s, not a private key (type=private)", uri,
			class_name(u->type));
	if (!u->has_object && !u->has_id)
		return gw_err_setf(-EINVAL, GW_HERE,
			"key URI '%s' names no key (object=LABEL and/or id=...)", uri);
	return 0;
}

int
gw_hsm_session(struct gw_hsm *h, const char *what, struct gw_p11_mod **m, CK_SESSION_HANDLE *s)
{
	GW_ENSURE(h != NULL, -EINVAL);
	GW_GUARD(check_pid(h));
	if (!h->bound)
		return gw_err_setf(-EINVAL, GW_HERE, "no token given for %s", what);
	/* checked here, not left to the token: login is per process (see key_find) */
	if (!h->logged_in)
		return gw_err_setf(-GW_E_HSM_PIN, GW_HERE, "%s on token '%s' needs the user PIN",
			what, h->token);
	*m = h->mod;
	*s = h->sess;
	return 0;
}

/* The one private key u names, described in o. */
static int
key_find(struct gw_hsm *h, const char *uri, const struct gw_p11_uri *u, struct gw_hsm_object *o)
{
	CK_OBJECT_HANDLE obj;
	int n;

	/*
	 * Checked here, not left to the token: login is per process, so another
	 * handle's login would otherwise lend this one its keys.
	 */
	if (!h->logged_in)
		return gw_err_setf(-GW_E_HSM_PIN, GW_HERE,
			"no PIN given for token '%s': private keys are usable only after login",
			h->token);
	n = gw_p11_find(h->mod, h->sess, CKO_PRIVATE_KEY, u, &obj, 1);
	if (n < 0)
		return n;
	if (n == 0)
		return gw_err_setf(-GW_E_HSM_KEY, GW_HERE,
			"no private key matches '%s' on token '%s'", uri, h->token);
	if (n > 1)
		return gw_err_setf(-GW_E_HSM_KEY, GW_HERE,
			"%d private keys match '%s' on token '%s'; add id=... to pick one", n, uri,
			h->token);
	return gw_p11_describe(h->mod, h->sess, obj, CKO_PRIVATE_KEY, h->token, o);
}

int
gw_hsm_key_info(struct gw_hsm *h, const char *uri, struct gw_hsm_object *out)
{
	struct gw_p11_uri u;

	GW_GUARD(key_prepare(h, uri, &u));
	return key_find(h, uri, &u, out);
}

int
gw_hsm_key_load(struct gw_hsm *h, const char *uri, EVP_PKEY **out)
{
	struct gw_hsm_object o;
	struct gw_p11_uri u;
	EVP_PKEY *k;

	GW_ENSURE(out != NULL, -EINVAL);
	GW_GUARD(key_prepare(h, uri, &u));
	GW_GUARD(key_find(h, uri, &u, &o));
	if (!o.sign)
		return gw_err_setf(-GW_E_HSM_USAGE, GW_HERE,
			"key '%s' on token '%s' may not sign (CKA_SIGN is false); generate a "
			"signing key",
			uri, h->token);
	if (o.id_hex[0] == '\0' && o.label[0] == '\0')
		return gw_err_setf(-GW_E_HSM_KEY, GW_HERE,
			"key '%s' has neither CKA_ID nor CKA_LABEL; the engine cannot name it",
			uri);
	/*
	 * Hand the engine the URI of exactly the object we checked (token, id,
	 * label, type), so it cannot pick another key or another token.
	 */
	/*
	 * One load at a time per process: libp11 0.4.12 caches the EVP_PKEY in
	 * its key object without a lock, so concurrent first loads of one key
	 * race (seen as leaked EVP_PKEYs under ASan). Loading is start-up work.
	 */
	pthread_mutex_lock(&eng_lock);
	ERR_clear_error();
	k = ENGINE_load_private_key(h->eng->e, o.uri, NULL, NULL);
	if (k != NULL)
		gw_hsm_async_wrap_key(
			h->eng->e, k); /* signatures inside ASYNC jobs go to the HSM threads */
	pthread_mutex_unlock(&eng_lock);
	if (k == NULL) {
		/*
		 * We just found the key ourselves, so the likely cause is libp11
		 * 0.4.12's engine listing slots only once per process (and its
		 * RE_ENUMERATE control crashes): a token made after that is unseen.
		 */
		gw_err_setf(-GW_E_HSM, GW_HERE,
			"pkcs11 engine could not load key '%s' (a token initialised after "
			"this process first loaded a key is only seen after a restart)",
			o.uri);
		return gw_err_add_ossl();
	}
	*out = k;
	return 0;
}

int
gw_hsm_sign(struct gw_hsm *h, EVP_PKEY *key, const EVP_MD *md, const uint8_t *tbs, size_t n,
	uint8_t *sig, size_t *siglen)
{
	EVP_MD_CTX *ctx;
	int rc = 0;

	GW_ENSURE(h != NULL && key != NULL && (tbs != NULL || n == 0) && sig != NULL &&
			  siglen != NULL,
		-EINVAL);
	GW_GUARD(check_pid(h));
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	if (EVP_DigestSignInit(ctx, NULL, md ? md : EVP_sha256(), NULL, key) != 1 ||
		EVP_DigestSign(ctx, sig, siglen, tbs, n) != 1) {
		gw_err_setf(-GW_E_HSM, GW_HERE, "signing with the token key on '%s' failed",
			h->bound ? h->token : "?");
		rc = gw_err_add_ossl();
	}
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* What every key generation needs: this process's session, a token, the PIN, a label that fits. */
static int
keygen_ready(struct gw_hsm *h, enum gw_hsm_key_type type, const char *label)
{
	GW_GUARD(check_pid(h));
	if (!h->bound)
		return gw_err_setf(-EINVAL, GW_HERE, "no token given for key generation");
	if (!h->logged_in)
		return gw_err_setf(-GW_E_HSM_PIN, GW_HERE,
			"key generation on token '%s' needs the user PIN", h->token);
	if (gw_hsm_key_type_name(type)[0] == '?')
		return gw_err_setf(-EINVAL, GW_HERE, "unknown key type %d", (int)type);
	if (label[0] == '\0' || strlen(label) > GW_HSM_LABEL_MAX)
		return gw_err_setf(-EINVAL, GW_HERE,
			"key label '%.80s' is %zu bytes; labels must be 1 to %d bytes", label,
			strlen(label), GW_HSM_LABEL_MAX);
	return 0;
}

int
gw_hsm_keygen(
	struct gw_hsm *h, enum gw_hsm_key_type type, const char *label, char uri[GW_HSM_URI_MAX])
{
	struct gw_p11_uri u = {.has_object = true};
	CK_OBJECT_HANDLE obj;
	uint8_t id[8];
	int n;

	GW_ENSURE(h != NULL && label != NULL && uri != NULL, -EINVAL);
	GW_GUARD(keygen_ready(h, type, label));
	memcpy(u.object, label, strlen(label) + 1);
	n = gw_p11_find(h->mod, h->sess, CKO_PRIVATE_KEY, &u, &obj, 1);
	if (n < 0)
		return n;
	if (n > 0)
		return gw_err_setf(-EEXIST, GW_HERE,
			"a private key labelled '%s' already exists on token '%s'", label,
			h->token);
	/* A random CKA_ID: labels may repeat across tokens or be renamed; ids name the pair. */
	if (RAND_bytes(id, sizeof(id)) != 1)
		return gw_err_setf(-GW_E_HSM, GW_HERE, "no randomness for the key id");
	GW_GUARD(gw_p11_keygen(h->mod, h->sess, type, label, id, sizeof(id)));
	return gw_p11_uri_build(
		uri, GW_HSM_URI_MAX, h->token, id, sizeof(id), label, CKO_PRIVATE_KEY);
}

static void
hex_of(const uint8_t *b, size_t n, char *out, size_t len)
{
	out[0] = '\0';
	for (size_t i = 0; i < n && 2 * i + 2 < len; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

int
gw_hsm_key_ensure(struct gw_hsm *h, enum gw_hsm_key_type type, const char *label, const uint8_t *id,
	size_t id_len, char uri[GW_HSM_URI_MAX])
{
	struct gw_p11_uri u = {.has_object = true};
	struct gw_hsm_object o;
	CK_OBJECT_HANDLE obj[2];
	char want[2 * 32 + 1];
	int n;

	GW_ENSURE(h != NULL && label != NULL && id != NULL && uri != NULL, -EINVAL);
	GW_GUARD(keygen_ready(h, type, label));
	/* gw_hsm_object.id_hex holds 32 bytes: a longer id could not be compared */
	if (id_len == 0 || id_len > 32)
		return gw_err_setf(-EINVAL, GW_HERE, "key id must be 1 to 32 bytes");
	memcpy(u.object, label, strlen(label) + 1);
	n = gw_p11_find(h->mod, h->sess, CKO_PRIVATE_KEY, &u, obj, 2);
	if (n < 0)
		return n;
	if (n == 0) {
		GW_GUARD(gw_p11_keygen(h->mod, h->sess, type, label, id, id_len));
		return gw_p11_uri_build(
			uri, GW_HSM_URI_MAX, h->token, id, id_len, label, CKO_PRIVATE_KEY);
	}
	if (n > 1)
		return gw_err_setf(-EEXIST, GW_HERE,
			"%d private keys are labelled '%s' on token '%s'; none is reused: delete "
			"the extra ones",
			n, label, h->token);
	GW_GUARD(gw_p11_describe(h->mod, h->sess, obj[0], CKO_PRIVATE_KEY, h->token, &o));
	hex_of(id, id_len, want, sizeof(want));
	if (strcmp(o.label, label) != 0 || strcmp(o.id_hex, want) != 0)
		return gw_err_setf(-EEXIST, GW_HERE,
			"a private key labelled '%s' on token '%s' has CKA_ID %s, not %s: it "
			"was not made for this, so it is not reused; delete it or rename",
			label, h->token, o.id_hex[0] ? o.id_hex : "(none)", want);
	if (o.type != type)
		return gw_err_setf(-EEXIST, GW_HERE,
			"the private key labelled '%s' on token '%s' is %s, not %s: not reused",
			label, h->token, gw_hsm_key_type_name(o.type), gw_hsm_key_type_name(type));
	return gw_p11_uri_build(uri, GW_HSM_URI_MAX, h->token, id, id_len, label, CKO_PRIVATE_KEY);
}

int
gw_hsm_list(struct gw_hsm *h, struct gw_hsm_object **objs, size_t *n)
{
	/* the first two are private objects: listed only after login */
	static const CK_OBJECT_CLASS classes[] = {
		CKO_PRIVATE_KEY, CKO_SECRET_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE};
	enum { MAX_PER_CLASS = 1024 };
	CK_OBJECT_HANDLE *found = NULL;
	struct gw_hsm_object *out = NULL;
	size_t len = 0;
	int rc = 0;

	GW_ENSURE(h != NULL && objs != NULL && n != NULL, -EINVAL);
	GW_GUARD(check_pid(h));
	if (!h->bound)
		return gw_err_setf(-EINVAL, GW_HERE, "no token given to list");
	found = calloc(MAX_PER_CLASS, sizeof(*found));
	if (found == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	for (size_t c = h->logged_in ? 0 : 2; c < sizeof(classes) / sizeof(classes[0]); c++) {
		int k = gw_p11_find(h->mod, h->sess, classes[c], NULL, found, MAX_PER_CLASS);
		struct gw_hsm_object *grown;

		if (k < 0) {
			rc = k;
			goto out;
		}
		if (k > MAX_PER_CLASS)
			k = MAX_PER_CLASS;
		grown = realloc(out, (len + (size_t)k + 1) * sizeof(*out));
		if (grown == NULL) {
			rc = gw_err_set(-ENOMEM, GW_HERE);
			goto out;
		}
		out = grown;
		for (int i = 0; i < k; i++) {
			rc = gw_p11_describe(
				h->mod, h->sess, found[i], classes[c], h->token, &out[len]);
			if (rc < 0)
				goto out;
			len++;
		}
	}
out:
	free(found);
	if (rc < 0) {
		free(out);
		return rc;
	}
	*objs = out;
	*n = len;
	return 0;
}

/* --- CSRs ------------------------------------------------------------------------------ */

static const EVP_MD *
md_for(EVP_PKEY *k)
{
	/* P-384 pairs with SHA-384 (RFC 8446 4.2.3); everything else SHA-256. */
	return EVP_PKEY_get_bits(k) == 384 ? EVP_sha384() : EVP_sha256();
}

int
gw_hsm_csr(struct gw_hsm *h, const char *uri, const char *subject, const char *sans, X509_REQ **out)
{
	GENERAL_NAMES *gens = NULL;
	X509_NAME *name = NULL;
	X509_REQ *req = NULL;
	EVP_PKEY *key = NULL;
	int rc;

	GW_ENSURE(out != NULL, -EINVAL);
	rc = gw_x509_name_parse(subject, &name);
	if (rc == 0 && sans != NULL && sans[0] != '\0')
		rc = gw_x509_san_parse(sans, &gens);
	if (rc == 0)
		rc = gw_hsm_key_load(h, uri, &key);
	if (rc < 0)
		goto out;
	if ((rc = gw_x509_csr_build(name, key, gens, &req)) < 0)
		goto out;
	/* The token signs: the CSR proves possession of a key nobody can read. */
	if (X509_REQ_sign(req, key, md_for(key)) <= 0) {
		gw_err_setf(-GW_E_HSM, GW_HERE, "the token could not sign the CSR with '%s'", uri);
		rc = gw_err_add_ossl();
		goto out;
	}
	*out = req;
	req = NULL;
out:
	GENERAL_NAMES_free(gens);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return rc;
}

int
gw_hsm_cert_matches_key(struct gw_hsm *h, X509 *cert, const char *uri)
{
	uint8_t challenge[32], sig[1024];
	size_t siglen = sizeof(sig);
	EVP_PKEY *key = NULL, *pub;
	EVP_MD_CTX *vctx = NULL;
	char subj[256];
	int rc;

	GW_ENSURE(cert != NULL, -EINVAL);
	pub = X509_get0_pubkey(cert);
	if (X509_NAME_oneline(X509_get_subject_name(cert), subj, sizeof(subj)) == NULL)
		snprintf(subj, sizeof(subj), "(unprintable subject)");
	rc = gw_hsm_key_load(h, uri, &key);
	if (rc < 0)
		goto out;
	if (pub == NULL) {
		rc = gw_err_setf(
			-GW_E_PARSE, GW_HERE, "certificate '%s' has no usable public key", subj);
		goto out;
	}
	if (RAND_bytes(challenge, sizeof(challenge)) != 1) {
		rc = gw_err_setf(-GW_E_HSM, GW_HERE, "no randomness for the key check");
		goto out;
	}
	/* Proof through the token itself: it signs, the certificate's key verifies. */
	rc = gw_hsm_sign(h, key, EVP_sha256(), challenge, sizeof(challenge), sig, &siglen);
	if (rc < 0)
		goto out;
	vctx = EVP_MD_CTX_new();
	if (vctx == NULL) {
		rc = gw_err_set(-ENOMEM, GW_HERE);
		goto out;
	}
	if (EVP_DigestVerifyInit(vctx, NULL, EVP_sha256(), NULL, pub) != 1 ||
		EVP_DigestVerify(vctx, sig, siglen, challenge, sizeof(challenge)) != 1) {
		ERR_clear_error();
		rc = gw_err_setf(-GW_E_HSM_KEY, GW_HERE, "certificate '%s' does not match key '%s'",
			subj, uri);
	}
out:
	EVP_MD_CTX_free(vctx);
	EVP_PKEY_free(key);
	return rc;
}

int
gw_hsm_token_init(const struct gw_hsm_params *p, const char *so_pin_file)
{
	char pin[GW_HSM_PIN_MAX], so_pin[GW_HSM_PIN_MAX];
	struct gw_p11_mod *m;
	int rc;

	GW_ENSURE(p != NULL, -EINVAL);
	if (p->token == NULL)
		return gw_err_setf(-EINVAL, GW_HERE, "no token label given");
	if (so_pin_file == NULL)
		return gw_err_setf(-GW_E_HSM_PIN, GW_HERE, "no SO PIN file given");
	GW_GUARD(gw_p11_mod_get(p->module ? p->module : GW_DEFAULT_PKCS11_MODULE, &m));
	GW_GUARD(gw_hsm_pin_read(p->pin_file, p->pin_env, pin));
	rc = gw_hsm_pin_read(so_pin_file, NULL, so_pin);
	if (rc == 0)
		rc = gw_p11_token_init(m, p->token, pin, so_pin);
	OPENSSL_cleanse(pin, sizeof(pin));
	OPENSSL_cleanse(so_pin, sizeof(so_pin));
	return rc;
}
