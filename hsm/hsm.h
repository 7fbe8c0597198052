/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hsm.h - private keys that never leave the token: the hsm module's contract.
 *
 * Everything PKCS#11 and libp11 stays behind this header. Callers get
 * OpenSSL objects (EVP_PKEY, X509_REQ) and plain structs; nothing here hands
 * out key bytes, PINs or PKCS#11 handles. AES secret keys (imported once,
 * then used by the token to seal and open data) are at the end.
 *
 * Model
 *   - A struct gw_hsm is one thread's connection to one token: a PKCS#11
 *     session of its own (lookups, login, key generation, listing) plus the
 *     process's instance of libp11's pkcs11 engine, which turns a checked key
 *     into an EVP_PKEY. libp11 0.4.12's engine can be bound only once per
 *     process, so all handles share that instance (and one process uses one
 *     PKCS#11 module); inside it libp11 keeps a pool of sessions per token
 *     and every signature takes a session of its own from the pool, so
 *     threads signing at once never share a session. Open one handle per
 *     thread (per worker lcore) AFTER fork / after the EAL has launched the
 *     worker, and use it only from that thread.
 *   - libp11 0.4.12's engine lists the module's slots once per process (at
 *     the first key load): a token initialised after that is seen only by
 *     processes started later. gw_hsm_key_load says so when it happens.
 *   - Keys are named by RFC 7512 URIs ("pkcs11:token=gw;object=web;type=private").
 *     A URI carrying pin-value or pin-source is refused: PINs come only from
 *     a file or an environment variable (gw_hsm_params), are read, handed to
 *     the token and the engine, then wiped (OPENSSL_cleanse). They never go
 *     to argv or a log, and no message of this module contains one.
 *   - An EVP_PKEY from gw_hsm_key_load signs through the token. It works with
 *     SSL_CTX_use_PrivateKey / SSL_use_PrivateKey, EVP_DigestSign*,
 *     X509_sign / X509_REQ_sign (so a CA can sign certificates with a token
 *     key) and gw_hsm_sign. Free it with EVP_PKEY_free; it may outlive its
 *     handle (the engine instance stays alive until gw_hsm_shutdown), but it
 *     should be used by the thread that owns the handle it came from: to sign
 *     from N workers, load the key through each worker's own handle.
 *   - Fork: a handle belongs to the process that opened it. Any gw_hsm_*
 *     call on a handle opened before fork() fails in the child with
 *     -GW_E_HSM ("... opened in process N before fork; open a new handle in
 *     this process"), never a crash and never PKCS#11's "Object handle
 *     invalid"; gw_hsm_close on it in the child only frees memory. A new
 *     handle opened in the child works (the engine instance is inherited and
 *     libp11 re-initialises the module in the child). An EVP_PKEY loaded
 *     before the fork and used in the child directly through OpenSSL signs
 *     correctly with libp11 0.4.12 (it notices the fork and re-finds the
 *     key); tests/unit/test_hsm.c checks all three.
 *   - PKCS#11 login state belongs to the process, not the session: once one
 *     handle has logged in to a token, the token answers a second login with
 *     "already logged in" whatever the PIN. The PIN is therefore verified by
 *     the token at a process's first login to it.
 *
 * Errors: every function returns 0 (or a count) on success and a negative
 * code on failure, with a message for a person in the calling thread's
 * gw_err slot (gw_err_msg()):
 *   -GW_E_HSM_MODULE  "PKCS#11 module '/x.so' cannot be loaded: <why>"
 *   -GW_E_HSM_TOKEN   "no token labelled 'gw' in PKCS#11 module '...'"
 *   -GW_E_HSM_PIN     "PIN rejected by token 'gw'", PIN locked, PIN file
 *                     unreadable/empty, PIN variable unset, no PIN given
 *   -GW_E_HSM_KEY     no private key matches the URI (or several do);
 *                     a certificate does not match its key
 *   -GW_E_HSM_USAGE   the key exists but may not sign (CKA_SIGN false)
 *   -GW_E_HSM         engine cannot be loaded, other PKCS#11 failure,
 *                     handle used after fork
 *   -EINVAL           bad argument, malformed URI/subject/SAN, URI with a PIN
 *   -EEXIST           token or key label already exists
 *   -EBADMSG          sealed data does not authenticate (gw_hsm_unseal)
 *   -GW_E_PARSE       sealed data too short or of another format version
 *   -EACCES           a key file group/others may access (like PIN files)
 *   -ENOMEM           out of memory
 */
#ifndef GW_HSM_H
#define GW_HSM_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "gw_err.h"

#define GW_HSM_PIN_MAX 128  /* longest PIN accepted, bytes */
#define GW_HSM_LABEL_MAX 64 /* longest object label, bytes (token labels: 32) */
#define GW_HSM_URI_MAX 512  /* longest URI this module produces */

/* Key pair types gw_hsm_keygen makes. */
enum gw_hsm_key_type {
	GW_HSM_KEY_NONE = 0,
	GW_HSM_KEY_EC_P256,
	GW_HSM_KEY_EC_P384,
	GW_HSM_KEY_RSA_2048,
	GW_HSM_KEY_RSA_3072,
};

/* "ec-p256" | "ec-p384" | "rsa-2048" | "rsa-3072" -> type; GW_HSM_KEY_NONE if unknown. */
enum gw_hsm_key_type gw_hsm_key_type_parse(const char *name);
/* The inverse; "?" for an unknown value. Static string. */
const char *gw_hsm_key_type_name(enum gw_hsm_key_type t);

/* How to reach a token. Strings are borrowed for the duration of the call. */
struct gw_hsm_params {
	const char *module;   /* PKCS#11 module path; NULL: GW_DEFAULT_PKCS11_MODULE */
	const char *engine;   /* libp11 engine .so; NULL: GW_DEFAULT_PKCS11_ENGINE */
	const char *token;    /* token label; NULL: taken from the first key URI used */
	const char *pin_file; /* file holding the user PIN (one trailing newline ok) */
	const char *pin_env;  /* or: name of an environment variable holding it */
	/* Neither pin_file nor pin_env: no login; only public objects are visible. */
};

struct gw_hsm; /* opaque: one thread's connection to one token */

/*
 * Load the module and the engine, find the token (if p->token is set) and log
 * in with the PIN (if one is given). *out is set only on success.
 * Thread-safe (serialises on a module-wide lock while it loads things).
 */
GW_MUST_CHECK int gw_hsm_open(const struct gw_hsm_params *p, struct gw_hsm **out);

/* Close a handle; NULL does nothing. Keys loaded through it stay usable. */
void gw_hsm_close(struct gw_hsm *h);

/*
 * Finish every engine instance this process created. Call once at exit,
 * after every handle is closed and every EVP_PKEY from them is freed.
 */
void gw_hsm_shutdown(void);

/* Label of the token h is bound to, or NULL if none yet. Owned by h. */
const char *gw_hsm_token(const struct gw_hsm *h);

/*
 * Token label named by a key URI, percent-decoded, into label[len].
 * -EINVAL if the URI is malformed, names no token or carries a PIN.
 */
GW_MUST_CHECK int gw_hsm_uri_token(const char *uri, char *label, size_t len);

/*
 * Initialise a fresh token in the first free slot of p->module, labelled
 * p->token, with the SO PIN from so_pin_file and the user PIN from
 * p->pin_file / p->pin_env. -EEXIST if a token with that label exists,
 * -GW_E_HSM_TOKEN if the module has no free slot. Needs no handle.
 */
GW_MUST_CHECK int gw_hsm_token_init(const struct gw_hsm_params *p, const char *so_pin_file);

/*
 * Generate a key pair inside h's token: private half CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_SIGN only; public half CKA_VERIFY;
 * both with CKA_LABEL=label and the same random 8-byte CKA_ID.
 * Writes the private key's URI ("pkcs11:token=..;id=..;object=..;type=private")
 * to uri[GW_HSM_URI_MAX]. -EEXIST if a private key with that label exists.
 */
GW_MUST_CHECK int gw_hsm_keygen(
	struct gw_hsm *h, enum gw_hsm_key_type type, const char *label, char uri[GW_HSM_URI_MAX]);

/*
 * The key pair labelled label whose CKA_ID is id[id_len] (1..64 bytes):
 * generated as gw_hsm_keygen does, but with that CKA_ID, if no private key
 * has the label; reused if exactly one private key has exactly that label,
 * that CKA_ID and that type (a key made before a crash lost the record of
 * it). Anything else is someone else's key and is never reused: -EEXIST
 * naming the label and both CKA_IDs (or the types, or the count). Writes
 * the private key's URI (with the id) to uri. -EINVAL for a label that is
 * empty or longer than GW_HSM_LABEL_MAX (never truncated).
 */
GW_MUST_CHECK int gw_hsm_key_ensure(struct gw_hsm *h, enum gw_hsm_key_type type, const char *label,
	const uint8_t *id, size_t id_len, char uri[GW_HSM_URI_MAX]);

/* One object on a token, as gw_hsm_list and gw_hsm_key_info report it. */
enum gw_hsm_obj_kind {
	GW_HSM_OBJ_PRIVATE_KEY,
	GW_HSM_OBJ_PUBLIC_KEY,
	GW_HSM_OBJ_CERT,
	GW_HSM_OBJ_SECRET_KEY, /* CKO_SECRET_KEY, e.g. from gw_hsm_secret_import */
};

struct gw_hsm_object {
	enum gw_hsm_obj_kind kind;
	enum gw_hsm_key_type type; /* keys of the four types above; NONE otherwise */
	char label[GW_HSM_LABEL_MAX + 1];
	char id_hex[2 * 32 + 1];  /* CKA_ID in hex (truncated past 32 bytes) */
	char uri[GW_HSM_URI_MAX]; /* pkcs11: URI naming this object */
	char subject[256];        /* certificates: one-line subject */
	char secret_type[16];     /* secret keys: "aes-256", "aes-128", ... or "secret" */
	/* key attributes, as the token reports them (never a key's value) */
	bool sensitive, extractable, always_sensitive, never_extractable, private_, sign;
	bool encrypt; /* secret keys: CKA_ENCRYPT */
};

/*
 * Every key and certificate on h's token (private and secret keys only when
 * logged in). Secret keys are described by label, id and type; their value
 * is never read.
 * *objs is a malloc'ed array the caller free()s; *n its length.
 */
GW_MUST_CHECK int gw_hsm_list(struct gw_hsm *h, struct gw_hsm_object **objs, size_t *n);

/*
 * The private key named by uri, with its attributes. -GW_E_HSM_KEY if no
 * key or several keys match, -GW_E_HSM_TOKEN if the URI's token is not h's.
 */
GW_MUST_CHECK int gw_hsm_key_info(struct gw_hsm *h, const char *uri, struct gw_hsm_object *out);

/*
 * Load the private key named by uri as an engine-backed EVP_PKEY (caller
 * frees). Checks first, with clear errors: the URI (no PIN in it), the
 * token, the login, that exactly one private key matches, that it may sign.
 */
GW_MUST_CHECK int gw_hsm_key_load(struct gw_hsm *h, const char *uri, EVP_PKEY **out);

/*
 * Sign tbs[n] with key (from gw_hsm_key_load through h) using digest md
 * (NULL: SHA-256). sig has *siglen bytes of room; *siglen gets the length.
 * For RSA keys this is PKCS#1 v1.5. Fails cleanly on a handle from before a
 * fork. Not MT-safe on one handle.
 */
GW_MUST_CHECK int gw_hsm_sign(struct gw_hsm *h, EVP_PKEY *key, const EVP_MD *md, const uint8_t *tbs,
	size_t n, uint8_t *sig, size_t *siglen);

/*
 * A certificate signing request for the token key named by uri, signed by
 * that key. subject: "/CN=x/O=y" (OpenSSL's one-line form, '\' escapes '/').
 * sans: NULL or "DNS:a,URI:spiffe://td/x,IP:1.2.3.4" (only DNS, URI, IP).
 * *out is the caller's (X509_REQ_free).
 */
GW_MUST_CHECK int gw_hsm_csr(
	struct gw_hsm *h, const char *uri, const char *subject, const char *sans, X509_REQ **out);

/*
 * Does cert belong to the token key named by uri? Checked through the HSM:
 * the token signs a random challenge, verified with the certificate's
 * public key. 0 if it matches; -GW_E_HSM_KEY "certificate '<subject>' does
 * not match key '<uri>'" if not; other errors as gw_hsm_key_load.
 */
GW_MUST_CHECK int gw_hsm_cert_matches_key(struct gw_hsm *h, X509 *cert, const char *uri);

/*
 * Read a PIN from file (one trailing "\n" or "\r\n" stripped) or, if file is
 * NULL, from the environment variable env, into pin[GW_HSM_PIN_MAX].
 * -GW_E_HSM_PIN (with the file or variable name, never the PIN) if it is
 * unreadable, unset, empty or too long, and, like ssh with private keys, if
 * the file is not a regular file, is owned by a user other than this one or
 * root ("chown it"), or may be read or written by group or others ("chmod
 * 600 it"). The file is read again on every call, so a reload sees a new one.
 * A variable is read once: its value is wiped and it is unset (no child, no
 * /proc/PID/environ shows it), and the PIN is kept in this module's memory
 * for later reads of the same variable (worker handles, reloads, recovery)
 * until gw_hsm_shutdown() cleanses it; a variable set again is read again.
 * Thread-safe. The caller OPENSSL_cleanse()s pin.
 */
GW_MUST_CHECK int gw_hsm_pin_read(const char *file, const char *env, char pin[GW_HSM_PIN_MAX]);

/*
 * Would a process starting now log in to each of tokens[n_tokens] with p's
 * PIN source? What a start checks, for a reload: this process is logged in
 * already, and a token answers a second login of a process with "already
 * logged in" whatever the PIN (see Model). So the PIN is read here
 * (gw_hsm_pin_read's rules: file mode and owner, the kept variable) and a
 * fresh process, this program re-executed from /proc/self/exe with
 * GW_HSM_LOGIN_CHECK_ARG, logs in and out with it; the PIN reaches it over a
 * pipe. Every program that calls this must start main() with
 * gw_hsm_login_check_main(). A wrong PIN counts as a failed login on the
 * token, as a start with it would. No PIN source: 0, nothing to check.
 * Returns 0, or gw_hsm_open's codes with its message ("PIN rejected by
 * token 'gw'"), -GW_E_HSM if the check itself could not run (30 s limit).
 * Blocks; control thread.
 */
GW_MUST_CHECK int gw_hsm_login_check(
	const struct gw_hsm_params *p, const char *const *tokens, unsigned n_tokens);

#define GW_HSM_LOGIN_CHECK_ARG "--internal-hsm-login-check"

/*
 * The checking process's side: if argv is "PROG GW_HSM_LOGIN_CHECK_ARG
 * MODULE TOKEN", read the PIN from stdin, try it, answer on stdout and
 * return the exit status (0 or 1); otherwise return -1 and do nothing.
 */
int gw_hsm_login_check_main(int argc, char **argv);

/*
 * ---- Secret keys: AES-256-GCM through the token (fleet ticket-key wrapping) ----
 *
 * A fleet shares session ticket keys through etcd, sealed under one AES-256
 * key that every box holds in its own token ("as HSM clusters share key
 * material"): the same 32 bytes are imported once into each box's token,
 * then the file is deleted. After import nothing outside the token can read
 * the key (CKA_SENSITIVE, not CKA_EXTRACTABLE); mtlsgw only asks the token
 * to encrypt and decrypt. libp11 has no secret-key support, so this part
 * talks PKCS#11 directly (C_CreateObject, C_EncryptInit/C_Encrypt and
 * C_DecryptInit/C_Decrypt with CKM_AES_GCM).
 *
 * Keys are named by RFC 7512 URIs of type secret-key, as gw_hsm_secret_import
 * prints them: "pkcs11:token=gw;id=%..;object=fleet-wrap;type=secret-key"
 * (object= and/or id=; no type= means secret-key here; a URI with
 * type=private/public/cert is refused). The key is looked up on every call
 * (one C_FindObjects), so a key re-imported under the same label is used at
 * once.
 *
 * Sealed format (version 1), GW_HSM_SEAL_OVERHEAD bytes longer than the
 * plaintext:
 *
 *   +---------+----------------+----------------------+----------------+
 *   | 0x01    | IV (12 bytes)  | ciphertext (pt_len)  | tag (16 bytes) |
 *   +---------+----------------+----------------------+----------------+
 *
 * AES-256-GCM (NIST SP 800-38D) with a fresh random 96-bit IV per seal
 * (OpenSSL's RAND_bytes), a 128-bit tag, and the caller's associated data
 * (AAD), which is authenticated but not stored: unseal needs the same AAD
 * (the etcd key name and generation, say), so sealed bytes moved to another
 * place do not open there. The version byte is not in the AAD; it selects
 * the format, and any other value is refused. With random IVs, one key may
 * seal at most 2^32 messages (SP 800-38D 8.3); ticket keys are a few a day.
 *
 * Threads and sessions: these calls use h's own PKCS#11 session (one
 * operation at a time per session), so, like the rest of this header, a
 * handle is used by one thread; threads that seal at once use one handle
 * each. They block on the token: control thread or an HSM thread, never a
 * worker's packet path. The handle must be logged in (a PIN source).
 *
 * Secrets: key bytes and plaintexts never go into a log or an error
 * message; buffers holding them inside this module are wiped with
 * OPENSSL_cleanse. Errors name the token and the key's label (or URI).
 */
#define GW_HSM_SECRET_LEN 32 /* AES-256 key bytes: the only length accepted */
#define GW_HSM_SEAL_VERSION 1
#define GW_HSM_SEAL_IV_LEN 12
#define GW_HSM_SEAL_TAG_LEN 16
#define GW_HSM_SEAL_OVERHEAD (1 + GW_HSM_SEAL_IV_LEN + GW_HSM_SEAL_TAG_LEN)
#define GW_HSM_SEAL_MAX (1u << 20) /* longest plaintext sealed or opened, bytes */

/*
 * Create a token object on h's token from key[key_len]: CKO_SECRET_KEY,
 * CKK_AES, CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE,
 * CKA_ENCRYPT and CKA_DECRYPT (nothing else: no wrap, unwrap, sign, derive),
 * CKA_LABEL=label and a random 8-byte CKA_ID. Writes its URI
 * ("pkcs11:token=..;id=..;object=..;type=secret-key") to uri.
 * Consumes key: key[0..key_len) is wiped (OPENSSL_cleanse) on every path,
 * success or failure; keep a copy only if you must import it elsewhere.
 * Returns 0; -EINVAL if key_len is not GW_HSM_SECRET_LEN ("... is 31 bytes;
 * an AES-256 key is exactly 32") or the label is empty or longer than
 * GW_HSM_LABEL_MAX; -EEXIST if any object on the token already has that
 * label ("an object labelled 'fleet-wrap' already exists on token 'gw'");
 * -GW_E_HSM_PIN if h is not logged in; -GW_E_HSM if the token refuses.
 */
GW_MUST_CHECK int gw_hsm_secret_import(struct gw_hsm *h, const char *label, uint8_t *key,
	size_t key_len, char uri[GW_HSM_URI_MAX]);

/*
 * gw_hsm_secret_import of the key in file: exactly GW_HSM_SECRET_LEN raw
 * bytes. The file must obey the PIN file's rules (gw_hsm_pin_read: a
 * regular file of this user or root, no access for group or others:
 * "key file 'f' is accessible by group or others (mode 0644): chmod 600
 * it", -EACCES); any other size is -EINVAL ("key file 'f' is 31 bytes; an
 * AES-256 key is exactly 32 raw bytes"); unreadable: -ENOENT/-EACCES with
 * the cause. The bytes read are wiped after use. The file is not removed.
 */
GW_MUST_CHECK int gw_hsm_secret_import_file(
	struct gw_hsm *h, const char *label, const char *file, char uri[GW_HSM_URI_MAX]);

/*
 * Seal pt[pt_len] (0 <= pt_len <= GW_HSM_SEAL_MAX) under the secret key
 * named by uri, with associated data aad[aad_len] (aad may be NULL when
 * aad_len is 0). out has *out_len bytes of room, at least pt_len +
 * GW_HSM_SEAL_OVERHEAD; *out_len gets the sealed length. Returns 0;
 * -ENOSPC if out is too small; -EINVAL for a bad URI or argument;
 * -GW_E_HSM_KEY if no secret key (or several) matches; -GW_E_HSM_USAGE if
 * it is not an AES key allowed to encrypt; -GW_E_HSM_PIN if not logged in;
 * -GW_E_HSM if the token fails.
 */
GW_MUST_CHECK int gw_hsm_seal(struct gw_hsm *h, const char *uri, const uint8_t *aad, size_t aad_len,
	const uint8_t *pt, size_t pt_len, uint8_t *out, size_t *out_len);

/*
 * Open what gw_hsm_seal made: in[in_len] under the key named by uri with the
 * same aad. out has *out_len bytes of room, at least in_len -
 * GW_HSM_SEAL_OVERHEAD; *out_len gets the plaintext's length. Nothing is
 * written to out unless the tag verifies. Returns 0, the errors of
 * gw_hsm_seal, and:
 *   -GW_E_PARSE "sealed data is 20 bytes; version 1 needs at least 29"
 *               (short or truncated below the minimum)
 *   -GW_E_PARSE "sealed data has format version 7; this build reads version 1"
 *   -EBADMSG    "sealed data does not authenticate under key 'fleet-wrap' of
 *               token 'gw': tampered, another key, or other associated data"
 *               (any flipped bit, a truncated input above the minimum, a
 *               wrong AAD, a different key)
 */
GW_MUST_CHECK int gw_hsm_unseal(struct gw_hsm *h, const char *uri, const uint8_t *aad,
	size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len);

/*
 * ---- Asynchronous signatures (a slow HSM never stalls a worker) ----
 *
 * An EVP_PKEY from gw_hsm_key_load signs synchronously on the calling
 * thread, except inside an OpenSSL ASYNC job (SSL_MODE_ASYNC) on a thread
 * that has bound a completion ring (gw_hsm_async_ring_bind) while the pool
 * runs: there the signature becomes a request on a bounded queue served by
 * a pool of HSM threads (each libp11 signature takes a PKCS#11 session of
 * its own), and the job pauses (ASYNC_pause_job): SSL_do_handshake returns
 * SSL_ERROR_WANT_ASYNC and the worker serves other connections. The HSM
 * thread posts the finished request to the worker's ring; the worker's
 * gw_hsm_async_ring_poll hands back the cookie it attached and the worker
 * calls SSL_do_handshake again: the job resumes with the signature.
 *
 *   worker (job)                       HSM thread
 *   sign -> request, queue, pause  ->  C_Sign (its own session)
 *   ... other connections ...      <-  ring push (lock-free)
 *   ring_poll -> cookie -> resume
 *
 * Worker side: no locks (the queue is lock-free; one sem_post per request
 * wakes an HSM thread), no PKCS#11 call. A full queue fails the signature at
 * once (gw_hsm_async_take says GW_HSM_ASYNC_QUEUE_FULL): the handshake
 * fails rather than waiting behind a backlog that is already longer than
 * the HSM can answer in a handshake's time. A worker that stops waiting
 * (timeout, connection gone) calls gw_hsm_async_abandon and resumes the job
 * at once: the signature fails, and a result that comes later is dropped.
 * Requests are reference counted between the job and the HSM side and hold
 * references on their key and ring, so a reload, a freed connection or a
 * destroyed ring never leaves the HSM side pointing at freed memory.
 *
 * Signing in place (inline_below_us, off by default): a parked handshake
 * waits for two cross-thread wake-ups (the HSM thread's, then the
 * worker's), which on an idle box cost more than a fast HSM's signature.
 * With inline_below_us set, a signature in a job is made by the worker
 * itself, blocking it, while (a) the recent signatures of that key type
 * (EC or RSA) took less than inline_below_us on average (an exponentially
 * weighted mean, 1/8 per signature, of every signature made here or on an
 * HSM thread, the test delay included; unknown until the first one, which
 * goes to an HSM thread; a signature at or above inline_below_us becomes the
 * mean at once), and (b) no signature is queued for or being made
 * by an HSM thread (none waits behind this one, and the HSM is not busy).
 * Under load, or once the HSM turns slow, signatures go to the HSM threads
 * again. The price: a signature in place that hangs (a network HSM that
 * stops answering) stalls its worker for as long as the PKCS#11 call takes,
 * and sign_timeout cannot end it. The job pauses as for an HSM thread;
 * gw_hsm_async_take says GW_HSM_ASYNC_INLINE, and the worker signs with
 * gw_hsm_async_sign_here, on its own stack, then resumes the job at once.
 */
#define GW_HSM_ASYNC_THREADS_DEFAULT 16
#define GW_HSM_ASYNC_QUEUE_DEFAULT 1024

struct gw_hsm_async_params {
	unsigned threads; /* HSM threads; 0 = GW_HSM_ASYNC_THREADS_DEFAULT, at most 256 */
	unsigned queue;   /* queued requests (rounded up to a power of two); 0 = default */
	/* sign on the worker below this mean signature time (see above); 0 = never */
	unsigned inline_below_us;
	/* the CPUs the HSM threads may run on; NULL: the caller's (inherited) */
	const cpu_set_t *cpus;
};

/*
 * Start the pool (threads on p->cpus, else with the caller's CPU affinity:
 * call from the control thread, not a worker lcore). Counted: a second start only counts
 * (its params are ignored) and needs its own stop. Returns 0, -EINVAL,
 * -ENOMEM, -GW_E_HSM (thread creation). Thread-safe.
 */
GW_MUST_CHECK int gw_hsm_async_start(const struct gw_hsm_async_params *p);

/*
 * Undo one start; the last one stops the pool: requests being signed finish
 * (the HSM call cannot be interrupted), queued ones fail back to their
 * workers. gw_hsm_shutdown stops a pool still running. Thread-safe; blocks.
 */
void gw_hsm_async_stop(void);

/* Is the pool running (signatures in jobs go asynchronous)? Thread-safe. */
bool gw_hsm_async_running(void);

struct gw_hsm_async_ring; /* opaque: one worker's completions */
struct gw_hsm_async_req;  /* opaque: one signature in flight */

/* A ring for one worker. Returns 0, -EINVAL, -ENOMEM. */
GW_MUST_CHECK int gw_hsm_async_ring_create(struct gw_hsm_async_ring **out);

/*
 * Close and free (the memory goes when the last request on it is done;
 * completions arriving later are dropped). Parked jobs must have been
 * abandoned and resumed first. NULL ok. The worker's thread.
 */
void gw_hsm_async_ring_destroy(struct gw_hsm_async_ring *g);

/*
 * An eventfd that becomes readable when an answer reaches g after the
 * worker's last poll found it empty, for a worker that sleeps in epoll:
 * it reads the fd (nonblocking) and then polls; an answer that comes
 * after the read either is taken by that poll or writes the fd again.
 * Open as long as g. -1 for NULL.
 */
int gw_hsm_async_ring_fd(const struct gw_hsm_async_ring *g);

/* Signatures in ASYNC jobs on this thread complete on g (NULL: synchronous). */
void gw_hsm_async_ring_bind(struct gw_hsm_async_ring *g);

typedef void gw_hsm_async_done_fn(void *cookie, void *arg);

/*
 * Call fn(cookie, arg) for every request answered since the last poll whose
 * cookie is still set (its job has not taken the result otherwise), on the
 * worker's thread; fn resumes the job. Returns the number of completions
 * taken. No locks: one atomic load when there is nothing.
 */
unsigned gw_hsm_async_ring_poll(struct gw_hsm_async_ring *g, gw_hsm_async_done_fn *fn, void *arg);

enum gw_hsm_async_status {
	GW_HSM_ASYNC_NONE = 0,   /* no asynchronous signature since the last take */
	GW_HSM_ASYNC_PARKED,     /* a request is in flight: *req, the job paused */
	GW_HSM_ASYNC_QUEUE_FULL, /* the queue was full: the signature failed */
	GW_HSM_ASYNC_INLINE,     /* *req is to be signed in place (inline_below_us), now */
};

/*
 * What the last signature on this thread did, once: after SSL_do_handshake
 * returned. PARKED sets *req: the worker attaches its cookie
 * (gw_hsm_async_set_cookie) and keeps req until the ring hands the cookie
 * back or it abandons req; it never frees req. INLINE sets *req too: the
 * worker calls gw_hsm_async_sign_here(req) (or, to fail the signature,
 * gw_hsm_async_abandon) and then SSL_do_handshake again at once; req is not
 * the worker's after that.
 */
enum gw_hsm_async_status gw_hsm_async_take(struct gw_hsm_async_req **req);

/*
 * Make an INLINE request's signature on this thread (the job is paused, not
 * running: the module gets the thread's own stack), timed into the mean
 * (gw_hsm_async_sign_us). Blocks for as long as the token takes.
 */
void gw_hsm_async_sign_here(struct gw_hsm_async_req *r);

void gw_hsm_async_set_cookie(struct gw_hsm_async_req *r, void *cookie);

/*
 * The worker stops waiting for r (timeout, connection freed): the cookie is
 * cleared and, unless the answer came first, the signature will fail. Then
 * resume the job (SSL_do_handshake) so it ends; r is not the worker's to
 * use after. Returns true if r was still pending (the signature fails).
 * The worker's thread.
 */
bool gw_hsm_async_abandon(struct gw_hsm_async_req *r);

/*
 * The mean time of the recent signatures of EC (rsa false) or RSA keys
 * made for the workers, on the HSM threads or in place (see "Signing in
 * place"), in microseconds; UINT_MAX when none was made since the pool
 * started. Thread-safe.
 */
unsigned gw_hsm_async_sign_us(bool rsa);

#ifdef GW_TEST_HOOKS
/*
 * Tests only (-Dtest_hooks=true): HSM threads wait before signing while
 * hold is on; every signature is delayed by us microseconds (also set at
 * start from the environment variable GW_TEST_HSM_DELAY_US, for benchmarks).
 */
void gw_hsm_async_test_hold(bool on);
void gw_hsm_async_test_delay(unsigned us);

/* Set the mean signature time gw_hsm_async_sign_us reports (and decides by). */
void gw_hsm_async_test_set_sign_us(bool rsa, unsigned us);
#endif

#endif /* GW_HSM_H */
