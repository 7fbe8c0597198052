/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * uri_fuzz.c - libFuzzer target for the RFC 7512 key URI parser, the one
 * hsm/ input that comes from a file (the config's key: line).
 *
 * Properties checked on top of "no crash": what parses rebuilds to a URI
 * that parses back to the same token, label and id (gw_p11_uri_build is what
 * keygen and list hand out); a URI with a pin-value or pin-source attribute
 * is refused for that and the message echoes none of it; a label that merely
 * contains that text is not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Some attribute, in the path (';') or the query ('?', '&'), names a PIN. */
static int
names_pin(const char *in)
{
	char copy[1024], *save = NULL;

	if (strncmp(in, "pkcs11:", 7) != 0)
		return 0;
	snprintf(copy, sizeof(copy), "%s", in + strlen("pkcs11:"));
	for (char *a = strtok_r(copy, ";?&", &save); a != NULL; a = strtok_r(NULL, ";?&", &save)) {
		a[strcspn(a, "=")] = '\0';
		if (strcmp(a, "pin-value") == 0 || strcmp(a, "pin-source") == 0)
			return 1;
	}
	return 0;
}

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
		/*
		 * A URI naming a PIN is refused for that, before anything else, with
		 * a message that echoes nothing of the URI.
		 */
		if (names_pin(in) && (strstr(gw_err_msg(), "carries a PIN") == NULL ||
					     strstr(gw_err_msg(), "pkcs11:") != NULL))
			abort();
		return 0;
	}
	if (names_pin(in))
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
