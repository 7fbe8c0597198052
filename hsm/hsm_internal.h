/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hsm_internal.h - what the files of hsm/ share; nobody outside hsm/ includes it.
 *
 * p11.c talks to the PKCS#11 module directly (function list from the module
 * itself) for everything the engine cannot do or cannot explain: finding
 * the token, logging in with a PIN and saying why it failed, key generation
 * with exactly the attributes we want, listing, attribute checks. hsm.c owns
 * the handles and the engine instances that turn a key into an EVP_PKEY.
 * secret.c does the AES secret keys (import, seal, unseal) on a handle's
 * own session: libp11 has no secret-key support.
 */
#ifndef GW_HSM_INTERNAL_H
#define GW_HSM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <p11-kit/pkcs11.h>

#include "hsm.h"

/* Where SoftHSM2 reads its config when SOFTHSM2_CONF is unset (softhsm2.conf(5)). */
#define GW_SOFTHSM2_DEFAULT_CONF "/etc/softhsm/softhsm2.conf"

/* A loaded, initialised PKCS#11 module. Lives until gw_hsm_shutdown. */
struct gw_p11_mod {
	char *path;
	void *dl;
	CK_FUNCTION_LIST *f;
	pid_t init_pid; /* C_Initialize was called in this process */
	struct gw_p11_mod *next;
};

/* A parsed RFC 7512 URI (the attributes we act on). */
struct gw_p11_uri {
	char token[33];
	char object[GW_HSM_LABEL_MAX + 1];
	uint8_t id[64];
	size_t id_len;
	bool has_token, has_object, has_id;
	int type; /* -1: not given; else CKO_PRIVATE_KEY, _PUBLIC_KEY, _SECRET_KEY, CKO_CERTIFICATE */
};

/* Static name of a CKR_ value ("CKR_PIN_INCORRECT"), or "CKR_0x..". Not MT-safe for unknowns. */
const char *gw_p11_ckr_name(CK_RV rv);

/* Load (once per process) and C_Initialize (once per pid) the module. Locks internally. */
int gw_p11_mod_get(const char *path, struct gw_p11_mod **out);
/* dlclose every module (after the engines are gone). */
void gw_p11_mod_unload_all(void);

int gw_p11_uri_parse(const char *uri, struct gw_p11_uri *u);
/* Build "pkcs11:token=..;id=..;object=..;type=..". Empty label/id: left out. */
int gw_p11_uri_build(char *out, size_t len, const char *token, const uint8_t *id, size_t id_len,
	const char *label, CK_OBJECT_CLASS cls);

int gw_p11_find_token(struct gw_p11_mod *m, const char *label, CK_SLOT_ID *slot);
int gw_p11_login(struct gw_p11_mod *m, CK_SESSION_HANDLE s, const char *token, const char *pin);

/* Objects of class cls matching u (label/id), up to max; returns the count found (may exceed max). */
int gw_p11_find(struct gw_p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
	const struct gw_p11_uri *u, CK_OBJECT_HANDLE *objs, size_t max);
/* Fill o from the object's attributes; token labels the URI. */
int gw_p11_describe(struct gw_p11_mod *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
	CK_OBJECT_CLASS cls, const char *token, struct gw_hsm_object *o);
int gw_p11_keygen(struct gw_p11_mod *m, CK_SESSION_HANDLE s, enum gw_hsm_key_type t,
	const char *label, const uint8_t *id, size_t id_len);
int gw_p11_token_init(struct gw_p11_mod *m, const char *label, const char *pin, const char *so_pin);

/*
 * hsm.c, for secret.c: parse uri into u and bind h to its token (the
 * process, token and handle checks every key operation makes first).
 */
int gw_hsm_uri_bind(struct gw_hsm *h, const char *uri, struct gw_p11_uri *u);
/* h's module and session, if h is bound and logged in; else what needs them is refused. */
int gw_hsm_session(struct gw_hsm *h, const char *what, struct gw_p11_mod **m, CK_SESSION_HANDLE *s);
/* PIN file rules (owner, mode, regular) on fd; what names the file in messages. */
int gw_hsm_file_check(const char *what, const char *file, int fd, int code);

/*
 * hsm_async.c: put the asynchronous wrappers into engine e's key methods
 * for k's type (once per method). Under the engine lock, before k is
 * handed out.
 */
void gw_hsm_async_wrap_key(ENGINE *e, EVP_PKEY *k);

#endif /* GW_HSM_INTERNAL_H */
