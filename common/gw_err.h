/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_err.h - the one error convention every mtlsgw module shares.
 *
 * Functions return int: 0 on success, a negative errno (-EINVAL, -ENOMEM ...)
 * or a negative GW_E_* code on failure; pointer-returning functions return
 * NULL. The cause goes into one per-thread struct gw_err: the code, the
 * "file:line" where it was raised and, on control paths, a message a person
 * can act on ("PIN rejected by token 'gw'"). The dataplane records only code
 * and place (no formatting per packet) and counts the event instead.
 *
 * Never put a PIN, key material or a pin-value URI into msg.
 */
#ifndef GW_ERR_H
#define GW_ERR_H

#include <errno.h>
#include <stdarg.h>

#define GW_MUST_CHECK __attribute__((warn_unused_result))

#define GW_STR_(x) #x
#define GW_STR(x) GW_STR_(x)
/* Where an error was raised; a string literal, so setting it costs nothing. */
#define GW_HERE (__FILE__ ":" GW_STR(__LINE__))

/* Our own codes start above the errno range so the two never collide. */
enum {
	GW_E_BASE = 1000,
	GW_E_TLS,        /* an OpenSSL call failed */
	GW_E_HSM,        /* PKCS#11 / engine failure not covered below */
	GW_E_HSM_MODULE, /* PKCS#11 module cannot be loaded */
	GW_E_HSM_TOKEN,  /* no token with that label */
	GW_E_HSM_PIN,    /* PIN rejected, locked or unreadable */
	GW_E_HSM_KEY,    /* key not found */
	GW_E_HSM_USAGE,  /* key exists but cannot sign */
	GW_E_CONFIG,     /* configuration rejected */
	GW_E_TRUST,      /* chain rejected by the trust engine */
	GW_E_PARSE,      /* malformed input (PEM, DER, packet) */
	GW_E_STATE,      /* state store failure */
	GW_E_CA,         /* CA backend failure */
	GW_E_ETCD,       /* etcd unreachable, or it refused a request */
	GW_E_MAX
};

#define GW_ERR_MSG_MAX 256

struct gw_err {
	int code;          /* last error code (negative) */
	const char *where; /* GW_HERE of the raise site */
	char msg[GW_ERR_MSG_MAX];
};

/* The calling thread's error slot. Never NULL. */
struct gw_err *gw_err_get(void);

/* Record code + place, clear msg, return code (so `return gw_err_set(...)`). */
int gw_err_set(int code, const char *where);

/* Like gw_err_set, with a printf-style message. Returns code. */
int gw_err_setf(int code, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Append the first entry of OpenSSL's error queue (if any) to the current
 * message as ": <reason>" and clear the queue. Returns the current code.
 */
int gw_err_add_ossl(void);

/* Forget the last error. */
void gw_err_clear(void);

/* Message of the last error, or a generic text naming the code. Never NULL. */
const char *gw_err_msg(void);

/* Static name of a code ("EINVAL", "GW_E_HSM_PIN" ...). */
const char *gw_err_name(int code);

/* Raise (code, here) unless cond holds. */
#define GW_ENSURE(c, e)                                  \
	do {                                             \
		if (!(c))                                \
			return gw_err_set((e), GW_HERE); \
	} while (0)

/* Propagate a negative return. */
#define GW_GUARD(x)                 \
	do {                        \
		int rc_ = (x);      \
		if (rc_ < 0)        \
			return rc_; \
	} while (0)

/* OpenSSL calls return 1 on success: anything else raises e with its reason. */
#define GW_GUARD_OSSL(x, e)                       \
	do {                                      \
		if ((x) != 1) {                   \
			gw_err_set((e), GW_HERE); \
			return gw_err_add_ossl(); \
		}                                 \
	} while (0)

#endif /* GW_ERR_H */
