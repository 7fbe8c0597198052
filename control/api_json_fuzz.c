/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * api_json_fuzz.c - libFuzzer target for the admin API's JSON body parsers
 * (admin.h): the first input byte picks the parser (leaf, CA configuration,
 * reload, duration), the rest is the body exactly as a client would send
 * it. The real parsers run; on success every field is checked for the
 * invariants the handlers rely on, then freed (ASan sees leaks). Seeds:
 * tests/fuzz/api_json/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0: {
		struct gw_admin_leaf_req r;

		if (gw_admin_parse_leaf((const char *)data + 1, size - 1, &r, err, sizeof(err)) ==
			0) {
			if (!r.csr_pem || !r.spiffe_id || strlen(r.csr_pem) < 35)
				abort();
			gw_admin_leaf_req_clear(&r);
		} else if (!err[0]) {
			abort(); /* a refusal always says why */
		}
		break;
	}
	case 1: {
		struct gw_admin_ca_put r;

		if (gw_admin_parse_ca_put((const char *)data + 1, size - 1, &r, err, sizeof(err)) ==
			0) {
			if (!r.enabled)
				abort();
			gw_admin_ca_put_clear(&r);
		} else if (!err[0]) {
			abort();
		}
		break;
	}
	case 2: {
		bool force;

		(void)gw_admin_parse_reload(
			(const char *)data + 1, size - 1, &force, err, sizeof(err));
		break;
	}
	default: {
		char *s = strndup((const char *)data + 1, size - 1);
		uint64_t v;

		if (s && gw_admin_parse_duration(s, &v) && (v == 0 || v > 100ull * 365 * 86400))
			abort();
		free(s);
		break;
	}
	}
	return 0;
}
