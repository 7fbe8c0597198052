/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uri_fuzz.c - libFuzzer target for the RFC 7512 key URI parser, the one
 * hsm/ input that comes from a file (the config's key: line).
 *
 * Properties checked on top of "no crash": what parses rebuilds to a URI
 * that parses back to the same token, label and id (gw_p11_uri_build is what
 * keygen and list hand out); a URI carrying a PIN is refused and the message
 * never echoes it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hsm_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_p11_uri u, v;
	char in[1024], out[GW_HSM_URI_MAX], tok[40];

	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (gw_p11_uri_parse(in, &u) < 0) {
		const char *pin = strstr(in, "pin-value=");

		/* the PIN value itself (when it has one) must not reach the message */
		if (pin != NULL && strlen(pin) > strlen("pin-value=") + 3 &&
			strstr(gw_err_msg(), pin) != NULL)
			abort();
		return 0;
	}
	if (strstr(in, "pin-value") != NULL || strstr(in, "pin-source") != NULL)
		abort(); /* a PIN got through */
	(void)gw_hsm_uri_token(in, tok, sizeof(tok));
	if (!u.has_token)
		return 0;
	if (gw_p11_uri_build(out, sizeof(out), u.token, u.id, u.id_len,
		    u.has_object ? u.object : NULL,
		    u.type == -1 ? CKO_PRIVATE_KEY : (CK_OBJECT_CLASS)u.type) < 0)
		return 0; /* too long for our URIs: refused cleanly */
	if (gw_p11_uri_parse(out, &v) < 0 || strcmp(u.token, v.token) != 0 ||
		(u.has_object && u.object[0] && strcmp(u.object, v.object) != 0) ||
		u.id_len != v.id_len || memcmp(u.id, v.id, u.id_len) != 0)
		abort();
	return 0;
}
