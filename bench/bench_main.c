/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_main.c - mtlsgw-bench: dispatch to the benchmark modes.
 */
#include <stdio.h>
#include <string.h>

/* bench_tls.c: full mTLS handshakes per second over kernel sockets */
int gw_bench_tls_main(int argc, char **argv);
/* bench_hsm.c: signatures per second through the PKCS#11 engine vs in-memory */
int gw_bench_hsm_main(int argc, char **argv);

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("mtlsgw-bench %s\n", GW_VERSION);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "tls") == 0)
		return gw_bench_tls_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "hsm") == 0)
		return gw_bench_hsm_main(argc - 1, argv + 1);
	fprintf(stderr, "usage: mtlsgw-bench <mode> [args]\nmodes:\n"
			"  tls   full mTLS handshakes per second (tls --help)\n"
			"  hsm   HSM signatures per second vs in-memory keys (hsm --help)\n");
	return 2;
}
