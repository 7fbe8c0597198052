/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * etcd_fuzz.c - libFuzzer target for what etcd.c reads from the network:
 * the first input byte picks a watch stream (fed to the real write
 * callback in chunks whose size the second byte picks, so JSON objects
 * split anywhere across chunks) or a range answer (every kv decoded). The
 * real code runs (etcd.c is compiled in, its statics included); each
 * event and kv is checked for the invariants callers rely on. Seeds:
 * tests/fuzz/etcd/.
 */
#include "etcd.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
check_kv(void *arg, const char *key, const uint8_t *val, size_t len, int64_t rev)
{
	(void)arg, (void)rev;
	if (key == NULL || val == NULL || val[len] != '\0')
		abort();
	return 0;
}

static int
check_event(void *arg, const struct gw_etcd_event *ev)
{
	if (ev->type != GW_ETCD_PUT && ev->type != GW_ETCD_DELETE)
		abort();
	return check_kv(arg, ev->key, ev->val, ev->len, ev->mod_revision);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	if (data[0] & 1) {
		json_t *reply = json_loadb((const char *)data + 2, size - 2, 0, NULL), *kv;
		size_t i;

		json_array_foreach(json_object_get(reply, "kvs"), i,
			kv) if (kv_out(kv, check_kv, NULL) < 0) break;
		(void)j_i64(first_kv(reply), "mod_revision");
		range_free(reply);
	} else {
		struct xfer x = {
			.watch = true, .status = 200, .fn = check_event, .ep = "http://fuzz"};
		size_t chunk = (size_t)data[1] % 64 + 1;

		for (size_t off = 2; off < size; off += chunk) {
			size_t n = size - off < chunk ? size - off : chunk;

			if (on_data((char *)data + off, 1, n, &x) != n)
				break; /* an error, a compaction or an over-long message */
		}
		wipe_free(x.buf, x.cap);
	}
	gw_err_clear();
	return 0;
}
