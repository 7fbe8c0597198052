/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_softhsm.h - a fresh SoftHSM2 token directory for the C tests.
 *
 * Every test that needs a real token made the same temp dir by hand: a
 * tokens/ directory, a softhsm2.conf pointing at it, SOFTHSM2_CONF set, a
 * user PIN file and an SO PIN file. It is made here once, so the tests only
 * say which tokens they initialise (labels differ per test). The C twin of
 * gw_token in tests/lib/common.sh. mtlsgw-bench hsm makes its own (random
 * PINs, and an installed program does not link test code).
 */
#ifndef GW_SOFTHSM_H
#define GW_SOFTHSM_H

#include <p11-kit/pkcs11.h>

#include "gw_err.h"

struct gw_softhsm {
	char dir[64];     /* /tmp/<prefix>.XXXXXX: tokens/, softhsm2.conf, PIN files */
	char pin[128];    /* dir/pin: the user PIN, 1234 */
	char so_pin[128]; /* dir/sopin: the SO PIN, 5678 */
};

/*
 * Make the directory under /tmp (prefix names it, e.g. "gwhsm"), write the
 * SoftHSM2 config and both PIN files (0600), and point SOFTHSM2_CONF at it.
 * No token is initialised. 0, or -errno with perror() on stderr.
 */
GW_MUST_CHECK int gw_softhsm_setup(struct gw_softhsm *t, const char *prefix);

/* Write s to path, mode 0600. 0, or -errno with perror() on stderr. */
GW_MUST_CHECK int gw_softhsm_write(const char *path, const char *s);

/* rm -rf the directory. 0, or -1 with a line on stderr (teardown may ignore it). */
int gw_softhsm_remove(const struct gw_softhsm *t);

/*
 * The PKCS#11 module (GW_DEFAULT_PKCS11_MODULE, SoftHSM2) straight, loaded
 * and C_Initialize'd once per process, independent of hsm/: for the checks
 * that must not take our own code's word (attributes, CKA_VALUE refused).
 * NULL if it cannot be loaded or initialised.
 */
CK_FUNCTION_LIST *gw_softhsm_module(void);

/*
 * A read-write session on the token labelled label, logged in as the user
 * with pin (CKR_USER_ALREADY_LOGGED_IN is fine), or CK_INVALID_HANDLE.
 * The caller closes it (C_CloseSession).
 */
CK_SESSION_HANDLE gw_softhsm_session(CK_FUNCTION_LIST *f, const char *label, const char *pin);

#endif /* GW_SOFTHSM_H */
