/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * p11.c - the PKCS#11 module, called directly (see hsm_internal.h for why).
 *
 * The module is dlopen()ed by path, once per process, and shared with the
 * engine instances: dlopen of the same path returns the same library, so
 * both see one C_Initialize state. Because of that we never call C_Finalize,
 * C_Logout or C_CloseAllSessions here: any of them would pull sessions out
 * from under every engine instance and every other thread's handle. Only
 * sessions we opened are closed, one at a time.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "hsm_internal.h"

static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gw_p11_mod *mods;

const char *
gw_p11_ckr_name(CK_RV rv)
{
	static _Thread_local char buf[32];

	switch (rv) {
#define C(x)    \
	case x: \
		return #x
		C(CKR_OK);
		C(CKR_HOST_MEMORY);
		C(CKR_SLOT_ID_INVALID);
		C(CKR_GENERAL_ERROR);
		C(CKR_FUNCTION_FAILED);
		C(CKR_ARGUMENTS_BAD);
		C(CKR_ATTRIBUTE_SENSITIVE);
		C(CKR_ATTRIBUTE_TYPE_INVALID);
		C(CKR_ATTRIBUTE_VALUE_INVALID);
		C(CKR_DATA_LEN_RANGE);
		C(CKR_DEVICE_ERROR);
		C(CKR_DEVICE_REMOVED);
		C(CKR_ENCRYPTED_DATA_INVALID);
		C(CKR_ENCRYPTED_DATA_LEN_RANGE);
		C(CKR_KEY_HANDLE_INVALID);
		C(CKR_KEY_TYPE_INCONSISTENT);
		C(CKR_KEY_FUNCTION_NOT_PERMITTED);
		C(CKR_MECHANISM_INVALID);
		C(CKR_MECHANISM_PARAM_INVALID);
		C(CKR_OBJECT_HANDLE_INVALID);
		C(CKR_OPERATION_ACTIVE);
		C(CKR_PIN_INCORRECT);
		C(CKR_PIN_INVALID);
		C(CKR_PIN_LEN_RANGE);
		C(CKR_PIN_EXPIRED);
		C(CKR_PIN_LOCKED);
		C(CKR_SESSION_CLOSED);
		C(CKR_SESSION_COUNT);
		C(CKR_SESSION_HANDLE_INVALID);
		C(CKR_SESSION_READ_ONLY);
		C(CKR_TEMPLATE_INCOMPLETE);
		C(CKR_TEMPLATE_INCONSISTENT);
		C(CKR_TOKEN_NOT_PRESENT);
		C(CKR_TOKEN_NOT_RECOGNIZED);
		C(CKR_TOKEN_WRITE_PROTECTED);
		C(CKR_USER_ALREADY_LOGGED_IN);
		C(CKR_USER_NOT_LOGGED_IN);
		C(CKR_USER_PIN_NOT_INITIALIZED);
		C(CKR_USER_TYPE_INVALID);
		C(CKR_DOMAIN_PARAMS_INVALID);
		C(CKR_BUFFER_TOO_SMALL);
		C(CKR_CRYPTOKI_NOT_INITIALIZED);
		C(CKR_CRYPTOKI_ALREADY_INITIALIZED);
#undef C
	default:
		snprintf(buf, sizeof(buf), "CKR_0x%lx", (unsigned long)rv);
		return buf;
	}
}

static int
mod_init(struct gw_p11_mod *m)
{
	/*
	 * CKF_OS_LOCKING_OK: several threads (each with its own session) call
	 * the module at once. ALREADY_INITIALIZED is fine: an engine instance
	 * (libp11) of this process got there first.
	 */
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_RV rv = m->f->C_Initialize(&args);

	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return gw_err_setf(-GW_E_HSM_MODULE, GW_HERE,
			"PKCS#11 module '%s' cannot be loaded: C_Initialize: %s", m->path,
			gw_p11_ckr_name(rv));
	m->init_pid = getpid();
	return 0;
}

int
gw_p11_mod_get(const char *path, struct gw_p11_mod **out)
{
	CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
	struct gw_p11_mod *m;
	int rc = 0;

	pthread_mutex_lock(&mod_lock);
	for (m = mods; m != NULL; m = m->next)
		if (strcmp(m->path, path) == 0)
			break;
	if (m != NULL) {
		/* a child process must initialise the module again (PKCS#11 5.4) */
		if (m->init_pid != getpid())
			rc = mod_init(m);
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->path = strdup(path)) == NULL) {
		rc = gw_err_setf(-ENOMEM, GW_HERE, "out of memory loading '%s'", path);
		goto fail;
	}
	dlerror();
	m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (m->dl == NULL) {
		const char *why = dlerror();

		rc = gw_err_setf(-GW_E_HSM_MODULE, GW_HERE,
			"PKCS#11 module '%s' cannot be loaded: %s", path,
			why ? why : "dlopen failed");
		goto fail;
	}
	*(void **)&get_list = dlsym(m->dl, "C_GetFunctionList");
	if (get_list == NULL || get_list(&m->f) != CKR_OK || m->f == NULL) {
		rc = gw_err_setf(-GW_E_HSM_MODULE, GW_HERE,
			"PKCS#11 module '%s' cannot be loaded: not a PKCS#11 module "
			"(no C_GetFunctionList)",
			path);
		goto fail;
	}
	rc = mod_init(m);
	if (rc < 0)
		goto fail;
	m->next = mods;
	mods = m;
	goto out;
fail:
	if (m != NULL) {
		if (m->dl != NULL)
			dlclose(m->dl);
		free(m->path);
		free(m);
	}
	m = NULL;
out:
	pthread_mutex_unlock(&mod_lock);
	if (rc == 0)
		*out = m;
	return rc;
}

void
gw_p11_mod_unload_all(void)
{
	pthread_mutex_lock(&mod_lock);
	while (mods != NULL) {
		struct gw_p11_mod *m = mods;

		mods = m->next;
		/*
		 * Finalize only what this process initialised, and only now that
		 * the engines are finished: nobody else holds a session.
		 */
		if (m->init_pid == getpid())
			(void)m->f->C_Finalize(NULL); /* process exit: nothing to undo */
		dlclose(m->dl);
		free(m->path);
		free(m);
	}
	pthread_mutex_unlock(&mod_lock);
}

/* --- RFC 7512 URIs --------------------------------------------------------------- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[n] into out[max]; returns the decoded length or -1. */
static long
pct_decode(const char *s, size_t n, uint8_t *out, size_t max)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi << 4 | lo;
			i += 2;
		}
		if (o >= max)
			return -1;
		out[o++] = (uint8_t)c;
	}
	return (long)o;
}

static int
uri_text(const char *v, size_t n, char *out, size_t max, const char *name)
{
	long len = pct_decode(v, n, (uint8_t *)out, max - 1);

	if (len < 0 || memchr(out, '\0', (size_t)len) != NULL)
		return gw_err_setf(-EINVAL, GW_HERE,
			"key URI: bad or too long value for '%s' (at most %zu bytes)", name,
			max - 1);
	out[len] = '\0';
	return 0;
}

/* Does any attribute of the path (';'-separated) or query ('&') name a PIN? */
static bool
uri_has_pin(const char *s)
{
	while (*s != '\0') {
		size_t n = strcspn(s, "=;&?");

		if ((n == 9 && strncmp(s, "pin-value", 9) == 0) ||
			(n == 10 && strncmp(s, "pin-source", 10) == 0))
			return true;
		s += n;
		s += strcspn(s, ";&?"); /* skip the value */
		if (*s != '\0')
			s++;
	}
	return false;
}

int
gw_p11_uri_parse(const char *uri, struct gw_p11_uri *u)
{
	const char *p, *end;

	memset(u, 0, sizeof(*u));
	u->type = -1;
	if (uri == NULL || strncmp(uri, "pkcs11:", 7) != 0)
		return gw_err_setf(
			-EINVAL, GW_HERE, "key URI must start with 'pkcs11:' (RFC 7512)");
	/*
	 * Refuse a PIN in the URI before anything else, and never echo the URI
	 * in that message: it contains the PIN. RFC 7512 puts pin-value and
	 * pin-source in the query; refuse them in the path too. Only attribute
	 * names count: a token label may well contain the text "pin-value".
	 */
	if (uri_has_pin(uri + 7))
		return gw_err_setf(-EINVAL, GW_HERE,
			"key URI carries a PIN (pin-value/pin-source); remove it and give the "
			"PIN through a PIN file or environment variable");
	p = uri + 7;
	end = p + strcspn(p, "?");
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *attr_end = semi ? semi : end;
		const char *eq = memchr(p, '=', (size_t)(attr_end - p));
		size_t nlen, vlen;
		const char *v;

		if (attr_end == p) { /* empty attribute (";;" or trailing ';') */
			p = attr_end + 1;
			continue;
		}
		if (eq == NULL)
			return gw_err_setf(-EINVAL, GW_HERE,
				"key URI: attribute '%.*s' has no value", (int)(attr_end - p), p);
		nlen = (size_t)(eq - p);
		v = eq + 1;
		vlen = (size_t)(attr_end - v);
#define IS(n) (nlen == strlen(n) && strncmp(p, n, nlen) == 0)
		if (IS("token")) {
			GW_GUARD(uri_text(v, vlen, u->token, sizeof(u->token), "token"));
			u->has_token = true;
		} else if (IS("object")) {
			GW_GUARD(uri_text(v, vlen, u->object, sizeof(u->object), "object"));
			u->has_object = true;
		} else if (IS("id")) {
			long len = pct_decode(v, vlen, u->id, sizeof(u->id));

			if (len <= 0)
				return gw_err_setf(-EINVAL, GW_HERE, "key URI: bad value for 'id'");
			u->id_len = (size_t)len;
			u->has_id = true;
		} else if (IS("type")) {
			if (vlen == 7 && strncmp(v, "private", 7) == 0)
				u->type = CKO_PRIVATE_KEY;
			else if (vlen == 6 && strncmp(v, "public", 6) == 0)
				u->type = CKO_PUBLIC_KEY;
			else if (vlen == 4 && strncmp(v, "cert", 4) == 0)
				u->type = CKO_CERTIFICATE;
			else if (vlen == 10 && strncmp(v, "secret-key", 10) == 0)
				u->type = CKO_SECRET_KEY;
			else
				return gw_err_setf(-EINVAL, GW_HERE,
					"key URI: type '%.*s' is not private, public, cert or "
					"secret-key",
					(int)vlen, v);
		} else if (IS("manufacturer") || IS("model") || IS("serial") ||
			   IS("library-manufacturer") || IS("library-description") ||
			   IS("library-version") || IS("slot-description") ||
			   IS("slot-manufacturer") || IS("slot-id")) {
			/* identify the token/library; the token label is what we select by */
		} else {
			return gw_err_setf(-EINVAL, GW_HERE, "key URI: unknown attribute '%.*s'",
				(int)nlen, p);
		}
#undef IS
		p = attr_end + (semi ? 1 : 0);
	}
	return 0;
}

static int
pct_append(char *out, size_t len, size_t *o, const uint8_t *s, size_t n, bool all)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		uint8_t c = s[i];
		bool plain = !all && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
					     (c >= '0' && c <= '9') || c == '-' || c == '.' ||
					     c == '_' || c == '~');

		if (*o + (plain ? 1 : 3) >= len)
			return -1;
		if (plain) {
			out[(*o)++] = (char)c;
		} else {
			out[(*o)++] = '%';
			out[(*o)++] = hex[c >> 4];
			out[(*o)++] = hex[c & 15];
		}
	}
	out[*o] = '\0';
	return 0;
}

int
gw_p11_uri_build(char *out, size_t len, const char *token, const uint8_t *id, size_t id_len,
	const char *label, CK_OBJECT_CLASS cls)
{
	const char *type = cls == CKO_PRIVATE_KEY  ? "private"
			   : cls == CKO_PUBLIC_KEY ? "public"
			   : cls == CKO_SECRET_KEY ? "secret-key"
						   : "cert";
	size_t o = 0;
	int bad = 0;

#define LIT(s) bad |= pct_append(out, len, &o, (const uint8_t *)(s), strlen(s), false) ? 1 : 0
	out[0] = '\0';
	bad |= snprintf(out, len, "pkcs11:token=") >= (int)len;
	o = strlen(out);
	LIT(token);
	if (id_len > 0) {
		if (o + 4 >= len)
			bad = 1;
		else {
			memcpy(out + o, ";id=", 4);
			o += 4;
			bad |= pct_append(out, len, &o, id, id_len, true) ? 1 : 0;
		}
	}
	if (label != NULL && label[0] != '\0') {
		if (o + 8 >= len)
			bad = 1;
		else {
			memcpy(out + o, ";object=", 8);
			o += 8;
			LIT(label);
		}
	}
	if (o + 6 + strlen(type) >= len)
		bad = 1;
	else
		o += (size_t)snprintf(out + o, len - o, ";type=%s", type);
#undef LIT
	if (bad)
		return gw_err_setf(-EINVAL, GW_HERE, "pkcs11 URI longer than %zu bytes", len - 1);
	return 0;
}

/* --- tokens and login --------------------------------------------------------------- */

/* CK_TOKEN_INFO labels are 32 bytes, blank padded, not NUL-terminated. */
static void
label_copy(char out[33], const CK_UTF8CHAR in[32])
{
	size_t n = 32;

	memcpy(out, in, 32);
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

/*
 * The slots with a token present: *slots (the caller frees; NULL when *n is
 * 0) and *n. 0, -ENOMEM, or -GW_E_HSM naming the module and the CKR.
 */
static int
slot_list(struct gw_p11_mod *m, CK_SLOT_ID **slots, CK_ULONG *n)
{
	CK_RV rv;

	*slots = NULL;
	*n = 0;
	rv = m->f->C_GetSlotList(CK_TRUE, NULL, n);
	if (rv == CKR_OK && *n > 0) {
		if ((*slots = calloc(*n, sizeof(**slots))) == NULL)
			return gw_err_set(-ENOMEM, GW_HERE);
		rv = m->f->C_GetSlotList(CK_TRUE, *slots, n);
	}
	if (rv != CKR_OK) {
		free(*slots);
		*slots = NULL;
		*n = 0;
		return gw_err_setf(-GW_E_HSM, GW_HERE, "PKCS#11 module '%s': C_GetSlotList: %s",
			m->path, gw_p11_ckr_name(rv));
	}
	return 0;
}

/*
 * Where SoftHSM2 looks for tokens, for a "no token" message: its config
 * file (SOFTHSM2_CONF, else the default) and that file's
 * directories.tokendir. Empty for other modules: we cannot know.
 */
static void
softhsm_where(const char *module, char *buf, size_t len)
{
	const char *env = getenv("SOFTHSM2_CONF");
	const char *conf = env && env[0] ? env : GW_SOFTHSM2_DEFAULT_CONF;
	char line[512], dir[384] = "";
	FILE *f;

	buf[0] = '\0';
	if (strstr(module, "softhsm") == NULL)
		return;
	if ((f = fopen(conf, "r")) == NULL) {
		snprintf(buf, len, "; SoftHSM2 config %s%s: %s", conf,
			env && env[0] ? " (SOFTHSM2_CONF)"
				      : " (the default: SOFTHSM2_CONF is unset)",
			strerror(errno));
		return;
	}
	/* "directories.tokendir = /var/lib/softhsm/tokens/" (softhsm2.conf(5)) */
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line + strspn(line, " \t");

		if (strncmp(p, "directories.tokendir", 20) != 0)
			continue;
		p += 20 + strspn(p + 20, " \t");
		if (*p != '=')
			continue;
		p += 1 + strspn(p + 1, " \t");
		p[strcspn(p, " \t\r\n")] = '\0';
		snprintf(dir, sizeof(dir), "%s", p);
	}
	fclose(f);
	snprintf(buf, len, "; SoftHSM2 looked in %s (directories.tokendir of %s%s)",
		dir[0] ? dir : "(no directories.tokendir)", conf,
		env && env[0] ? ", SOFTHSM2_CONF" : ", the default: SOFTHSM2_CONF is unset");
}

int
gw_p11_find_token(struct gw_p11_mod *m, const char *label, CK_SLOT_ID *slot)
{
	char where[GW_ERR_MSG_MAX];

	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	unsigned found = 0;
	int rc = 0;

	GW_GUARD(slot_list(m, &slots, &n));
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		char l[33];

		if (m->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
			!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		label_copy(l, ti.label);
		if (strcmp(l, label) == 0) {
			if (found++ == 0)
				*slot = slots[i];
		}
	}
	if (found == 0) {
		softhsm_where(m->path, where, sizeof(where));
		rc = gw_err_setf(-GW_E_HSM_TOKEN, GW_HERE,
			"no token labelled '%s' in PKCS#11 module '%s'%s", label, m->path, where);
	} else if (found > 1)
		rc = gw_err_setf(-GW_E_HSM_TOKEN, GW_HERE,
			"%u tokens are labelled '%s' in PKCS#11 module '%s'; labels must be unique",
			found, label, m->path);
	free(slots);
	return rc;
}

int
gw_p11_login(struct gw_p11_mod *m, CK_SESSION_HANDLE s, const char *token, const char *pin)
{
	CK_RV rv = m->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));

	switch (rv) {
	case CKR_OK:
	case CKR_USER_ALREADY_LOGGED_IN: /* login is per process: another handle did it */
		return 0;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
		return gw_err_setf(-GW_E_HSM_PIN, GW_HERE, "PIN rejected by token '%s' (%s)", token,
			gw_p11_ckr_name(rv));
	case CKR_PIN_LOCKED:
		return gw_err_setf(-GW_E_HSM_PIN, GW_HERE,
			"PIN locked on token '%s': too many wrong PINs; the SO must reset it",
			token);
	case CKR_PIN_EXPIRED:
		return gw_err_setf(-GW_E_HSM_PIN, GW_HERE, "PIN expired on token '%s'", token);
	case CKR_USER_PIN_NOT_INITIALIZED:
		return gw_err_setf(-GW_E_HSM_PIN, GW_HERE,
			"token '%s' has no user PIN yet (initialise it first)", token);
	default:
		return gw_err_setf(-GW_E_HSM, GW_HERE, "login to token '%s' failed: %s", token,
			gw_p11_ckr_name(rv));
	}
}

int
gw_p11_token_init(struct gw_p11_mod *m, const char *label, const char *pin, const char *so_pin)
{
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_UTF8CHAR plabel[32];
	CK_SLOT_ID slot, *slots = NULL;
	CK_ULONG n = 0;
	bool have_free = false;
	int rc = 0;
	CK_RV rv;

	if (strlen(label) == 0 || strlen(label) > 32)
		return gw_err_setf(
			-EINVAL, GW_HERE, "token label '%s' must be 1 to 32 bytes", label);
	if (gw_p11_find_token(m, label, &slot) == 0)
		return gw_err_setf(-EEXIST, GW_HERE,
			"a token labelled '%s' already exists in PKCS#11 module '%s'", label,
			m->path);
	GW_GUARD(slot_list(m, &slots, &n));
	for (CK_ULONG i = 0; i < n && !have_free; i++) {
		CK_TOKEN_INFO ti;

		if (m->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
			!(ti.flags & CKF_TOKEN_INITIALIZED)) {
			slot = slots[i];
			have_free = true;
		}
	}
	free(slots);
	if (!have_free)
		return gw_err_setf(-GW_E_HSM_TOKEN, GW_HERE,
			"PKCS#11 module '%s' has no free slot for a new token", m->path);
	memset(plabel, ' ', sizeof(plabel));
	memcpy(plabel, label, strlen(label));
	rv = m->f->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), plabel);
	if (rv != CKR_OK) {
		rc = gw_err_setf(rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE ? -GW_E_HSM_PIN
										    : -GW_E_HSM,
			GW_HERE, "cannot initialise token '%s': C_InitToken: %s", label,
			gw_p11_ckr_name(rv));
		goto out;
	}
	rv = m->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
	if (rv == CKR_OK)
		rv = m->f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin));
	if (rv == CKR_OK)
		rv = m->f->C_InitPIN(s, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	if (rv != CKR_OK) {
		rc = gw_err_setf(rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_INVALID ? -GW_E_HSM_PIN
										  : -GW_E_HSM,
			GW_HERE, "cannot set the user PIN of token '%s': %s", label,
			gw_p11_ckr_name(rv));
		goto out;
	}
	/* The SO must not stay logged in; this session is ours alone. */
	rv = m->f->C_Logout(s);
	if (rv != CKR_OK)
		rc = gw_err_setf(-GW_E_HSM, GW_HERE,
			"token '%s' initialised, but the SO could not log out: C_Logout: %s", label,
			gw_p11_ckr_name(rv));
out:
	/* the last session: closing it also ends any login (PKCS#11 5.6) */
	if (s != CK_INVALID_HANDLE)
		(void)m->f->C_CloseSession(s);
	return rc;
}

/* --- objects ------------------------------------------------------------------------ */

int
gw_p11_find(struct gw_p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
	const struct gw_p11_uri *u, CK_OBJECT_HANDLE *objs, size_t max)
{
	CK_ATTRIBUTE t[3];
	CK_ULONG nt = 0, got = 0;
	size_t total = 0;
	CK_RV rv;

	t[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
	if (u != NULL && u->has_object)
		t[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)u->object, strlen(u->object)};
	if (u != NULL && u->has_id)
		t[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)u->id, u->id_len};
	rv = m->f->C_FindObjectsInit(s, t, nt);
	if (rv != CKR_OK)
		return gw_err_setf(
			-GW_E_HSM, GW_HERE, "C_FindObjectsInit: %s", gw_p11_ckr_name(rv));
	for (;;) {
		CK_OBJECT_HANDLE tmp[16];
		CK_OBJECT_HANDLE *dst = total < max ? objs + total : tmp;
		CK_ULONG room = total < max ? (CK_ULONG)(max - total) : 16;

		if (room > 16 && dst == tmp)
			room = 16;
		rv = m->f->C_FindObjects(s, dst, room, &got);
		if (rv != CKR_OK || got == 0)
			break;
		total += got;
	}
	if (rv != CKR_OK) {
		(void)m->f->C_FindObjectsFinal(s); /* the first failure is the cause */
		return gw_err_setf(-GW_E_HSM, GW_HERE, "C_FindObjects: %s", gw_p11_ckr_name(rv));
	}
	/* a search left active makes the session's next C_FindObjectsInit fail */
	rv = m->f->C_FindObjectsFinal(s);
	if (rv != CKR_OK)
		return gw_err_setf(
			-GW_E_HSM, GW_HERE, "C_FindObjectsFinal: %s", gw_p11_ckr_name(rv));
	return (int)total;
}

static bool
attr_bool(struct gw_p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = {t, &v, sizeof(v)};

	if (m->f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK)
		return false;
	return v == CK_TRUE;
}

/* Variable-length attribute into buf[max]; returns its length or -1. */
static long
attr_bytes(struct gw_p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t,
	void *buf, size_t max)
{
	CK_ATTRIBUTE a = {t, NULL, 0};

	if (m->f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK ||
		a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > max)
		return -1;
	a.pValue = buf;
	if (m->f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK)
		return -1;
	return (long)a.ulValueLen;
}

/* What a private or secret key's attributes say of how it may leave and be used. */
static void
key_attrs(struct gw_p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, struct gw_hsm_object *o)
{
	o->sensitive = attr_bool(m, s, obj, CKA_SENSITIVE);
	o->extractable = attr_bool(m, s, obj, CKA_EXTRACTABLE);
	o->always_sensitive = attr_bool(m, s, obj, CKA_ALWAYS_SENSITIVE);
	o->never_extractable = attr_bool(m, s, obj, CKA_NEVER_EXTRACTABLE);
	o->private_ = attr_bool(m, s, obj, CKA_PRIVATE);
	o->sign = attr_bool(m, s, obj, CKA_SIGN);
}

/* DER OIDs of the named curves we make (CKA_EC_PARAMS). */
static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

int
gw_p11_describe(struct gw_p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
	CK_OBJECT_CLASS cls, const char *token, struct gw_hsm_object *o)
{
	uint8_t id[64], buf[4096];
	long n, idn;

	memset(o, 0, sizeof(*o));
	o->kind = cls == CKO_PRIVATE_KEY  ? GW_HSM_OBJ_PRIVATE_KEY
		  : cls == CKO_PUBLIC_KEY ? GW_HSM_OBJ_PUBLIC_KEY
		  : cls == CKO_SECRET_KEY ? GW_HSM_OBJ_SECRET_KEY
					  : GW_HSM_OBJ_CERT;
	n = attr_bytes(m, s, obj, CKA_LABEL, o->label, GW_HSM_LABEL_MAX);
	o->label[n > 0 ? n : 0] = '\0';
	idn = attr_bytes(m, s, obj, CKA_ID, id, sizeof(id));
	if (idn < 0)
		idn = 0;
	for (long i = 0; i < idn && i < 32; i++)
		snprintf(o->id_hex + 2 * i, 3, "%02x", id[i]);
	GW_GUARD(gw_p11_uri_build(o->uri, sizeof(o->uri), token, id, (size_t)idn, o->label, cls));
	if (cls == CKO_CERTIFICATE) {
		n = attr_bytes(m, s, obj, CKA_VALUE, buf, sizeof(buf));
		if (n > 0) {
			const unsigned char *p = buf;
			X509 *x = d2i_X509(NULL, &p, n);

			if (x != NULL && X509_NAME_oneline(X509_get_subject_name(x), o->subject,
						 sizeof(o->subject)) == NULL)
				o->subject[0] = '\0'; /* listed without a subject */
			X509_free(x);
		}
		return 0;
	}
	if (cls == CKO_SECRET_KEY) {
		/* type and length only: CKA_VALUE is never asked for */
		CK_KEY_TYPE kt = 0;
		CK_ULONG vlen = 0;
		CK_ATTRIBUTE a[] = {
			{CKA_KEY_TYPE, &kt, sizeof(kt)}, {CKA_VALUE_LEN, &vlen, sizeof(vlen)}};

		if (m->f->C_GetAttributeValue(s, obj, a, 2) == CKR_OK && kt == CKK_AES)
			snprintf(o->secret_type, sizeof(o->secret_type), "aes-%lu", vlen * 8);
		else
			snprintf(o->secret_type, sizeof(o->secret_type), "secret");
		key_attrs(m, s, obj, o);
		o->encrypt = attr_bool(m, s, obj, CKA_ENCRYPT);
		return 0;
	}
	{
		CK_KEY_TYPE kt = 0;
		CK_ATTRIBUTE a = {CKA_KEY_TYPE, &kt, sizeof(kt)};

		if (m->f->C_GetAttributeValue(s, obj, &a, 1) == CKR_OK) {
			if (kt == CKK_EC) {
				n = attr_bytes(m, s, obj, CKA_EC_PARAMS, buf, sizeof(buf));
				if (n == sizeof(oid_p256) && memcmp(buf, oid_p256, (size_t)n) == 0)
					o->type = GW_HSM_KEY_EC_P256;
				else if (n == sizeof(oid_p384) &&
					 memcmp(buf, oid_p384, (size_t)n) == 0)
					o->type = GW_HSM_KEY_EC_P384;
			} else if (kt == CKK_RSA) {
				n = attr_bytes(m, s, obj, CKA_MODULUS, buf, sizeof(buf));
				if (n == 256)
					o->type = GW_HSM_KEY_RSA_2048;
				else if (n == 384)
					o->type = GW_HSM_KEY_RSA_3072;
			}
		}
	}
	if (cls == CKO_PRIVATE_KEY) {
		key_attrs(m, s, obj, o);
	} else {
		o->private_ = attr_bool(m, s, obj, CKA_PRIVATE);
		o->sign = false;
	}
	return 0;
}

int
gw_p11_keygen(struct gw_p11_mod *m, CK_SESSION_HANDLE s, enum gw_hsm_key_type t, const char *label,
	const uint8_t *id, size_t id_len)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = t == GW_HSM_KEY_RSA_3072 ? 3072 : 2048;
	CK_BYTE exp[] = {0x01, 0x00, 0x01};
	CK_MECHANISM mech = {0, NULL, 0};
	CK_OBJECT_HANDLE pub, priv;
	CK_ATTRIBUTE pubt[8], privt[12];
	CK_ULONG np = 0, nk = 0;
	CK_RV rv;

	pubt[np++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
	pubt[np++] = (CK_ATTRIBUTE){CKA_PRIVATE, &no, sizeof(no)};
	pubt[np++] = (CK_ATTRIBUTE){CKA_VERIFY, &yes, sizeof(yes)};
	pubt[np++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
	pubt[np++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
	/* The private half: in the token, behind the PIN, never readable, sign only. */
	privt[nk++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
	privt[nk++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof(yes)};
	privt[nk++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes, sizeof(yes)};
	privt[nk++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, sizeof(no)};
	privt[nk++] = (CK_ATTRIBUTE){CKA_SIGN, &yes, sizeof(yes)};
	privt[nk++] = (CK_ATTRIBUTE){CKA_DECRYPT, &no, sizeof(no)};
	privt[nk++] = (CK_ATTRIBUTE){CKA_UNWRAP, &no, sizeof(no)};
	privt[nk++] = (CK_ATTRIBUTE){CKA_DERIVE, &no, sizeof(no)};
	privt[nk++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
	privt[nk++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
	switch (t) {
	case GW_HSM_KEY_EC_P256:
	case GW_HSM_KEY_EC_P384:
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		if (t == GW_HSM_KEY_EC_P256)
			pubt[np++] =
				(CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)oid_p256, sizeof(oid_p256)};
		else
			pubt[np++] =
				(CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)oid_p384, sizeof(oid_p384)};
		break;
	case GW_HSM_KEY_RSA_2048:
	case GW_HSM_KEY_RSA_3072:
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		pubt[np++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
		pubt[np++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, exp, sizeof(exp)};
		break;
	default:
		return gw_err_setf(-EINVAL, GW_HERE, "unknown key type %d", (int)t);
	}
	rv = m->f->C_GenerateKeyPair(s, &mech, pubt, np, privt, nk, &pub, &priv);
	if (rv != CKR_OK)
		return gw_err_setf(rv == CKR_USER_NOT_LOGGED_IN ? -GW_E_HSM_PIN : -GW_E_HSM,
			GW_HERE, "key generation (%s) for '%s' failed: C_GenerateKeyPair: %s",
			gw_hsm_key_type_name(t), label, gw_p11_ckr_name(rv));
	return 0;
}
