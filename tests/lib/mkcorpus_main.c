/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mkcorpus_main.c - `mkcorpus DIR`: write the trust test corpus (mkcorpus.h)
 * as PEM files for the integration scripts. Test keys only, made fresh on
 * every run, dated relative to now.
 */
#include <stdio.h>
#include <time.h>

#include "mkcorpus.h"

int
main(int argc, char **argv)
{
	struct mk_corpus c;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: mkcorpus DIR\n");
		return 2;
	}
	if (mk_corpus_build(&c, time(NULL)) < 0) {
		fprintf(stderr, "mkcorpus: cannot build the corpus\n");
		return 1;
	}
	rc = mk_corpus_write(&c, argv[1]);
	mk_corpus_free(&c);
	if (rc < 0) {
		fprintf(stderr, "mkcorpus: cannot write into %s\n", argv[1]);
		return 1;
	}
	return 0;
}
