/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * config_internal.h - shared between the parts of the config loader only
 * (config.c: schema, conversion, cross-field checks; config_yaml.c: the
 * libyaml pass that finds every schema error with its line and builds the
 * path -> line index the semantic checks report with).
 *
 * Why two passes: libcyaml loads typed structs well but stops at the first
 * error and does not say on which line a loaded value sat. The libyaml pass
 * walks the same cyaml schema tables over a node tree of the document, so
 * one schema drives both the typed load and the error report.
 */
#ifndef GW_CONFIG_INTERNAL_H
#define GW_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <cyaml/cyaml.h>

#include "config.h"

/* Bounds that keep a hostile or broken file from costing much. */
#define GW_CFG_MAX_FILE (1u << 20) /* bytes */
#define GW_CFG_MAX_DEPTH 32        /* nesting of mappings / lists */
#define GW_CFG_PATH_MAX 192        /* "listeners[12].trust.allow.spiffe[3]" */
#define GW_CFG_MAX_ERRS 100        /* error lines written; the rest are counted */

/* One "path -> line" entry; paths look like listeners[1].trust.mode. */
struct gw_cfg_idx_ent {
	char *path;
	unsigned line;
};

/* Open-addressing hash of every key and list item the document holds. */
struct gw_cfg_idx {
	struct gw_cfg_idx_ent *ents;
	size_t cap; /* power of two, 0 when empty */
	size_t n;
};

/* The state of one load: where errors go and how many there were. */
struct gw_cfg_ctx {
	const char *file; /* name used in messages */
	char *base_dir;   /* relative paths in the file resolve against this */
	FILE *errs;       /* may be NULL */
	unsigned n_errs;
	char first[GW_ERR_MSG_MAX]; /* first error line, for gw_err_msg() */
	struct gw_cfg_idx idx;
	/* libcyaml's log, collected so a failure it alone finds is reported */
	char cyaml_log[512];
	size_t cyaml_log_len;
	bool cyaml_refused; /* libcyaml refused what the first pass accepted */
	/* hsm.env as the first pass read it: its keys are variable names, which
	 * no cyaml schema can list (the schema ignores it); conv moves them */
	struct gw_cfg_env env[GW_CFG_MAX_ENV];
	unsigned env_line[GW_CFG_MAX_ENV];
	unsigned n_env;
	/* warnings so far, moved to cfg->warnings when the load succeeds */
	char **warns;
	unsigned n_warns;
};

/*
 * Report one error as "FILE:LINE: FIELD: message". prefix and key are
 * joined with '.' (either may be NULL or empty; key may start with '[').
 * line 0 means "look it up": the index line of the field, or of its nearest
 * parent that is in the file.
 */
void gw_cfg_err(struct gw_cfg_ctx *c, unsigned line, const char *prefix, const char *key,
	const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Keep one warning, in gw_cfg_err()'s format, for cfg->warnings: the value
 * loads, but the operator should hear about it. At most GW_CFG_MAX_ERRS are
 * kept. Returns 0 or -ENOMEM.
 */
int gw_cfg_warn(struct gw_cfg_ctx *c, unsigned line, const char *prefix, const char *key,
	const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Line of a field (0 if neither it nor any parent is in the file). */
unsigned gw_cfg_line(const struct gw_cfg_ctx *c, const char *prefix, const char *key);

/* Whether that exact key is present in the file. */
int gw_cfg_has(const struct gw_cfg_ctx *c, const char *prefix, const char *key);

/*
 * Parse buf with libyaml, check it against schema (the same cyaml schema the
 * typed load uses: types, unknown / duplicate / missing keys, list sizes,
 * aliases refused) and fill c->idx. Every error goes through gw_cfg_err().
 * Returns 0 when the document is well-formed, -GW_E_CONFIG when any error
 * was reported, -ENOMEM.
 */
int gw_cfg_yaml_check(
	struct gw_cfg_ctx *c, const char *buf, size_t len, const cyaml_schema_value_t *schema);

void gw_cfg_idx_free(struct gw_cfg_idx *idx);

/*
 * gw_cfg_load_mem() with one more result for the fuzzer: *cyaml_refused
 * (may be NULL) is set when libcyaml refused a document the first pass had
 * accepted, i.e. the two passes disagree, which is a bug in the first.
 */
int gw_cfg_load_check(const char *name, const char *buf, size_t len, struct gw_cfg **out,
	FILE *errs, bool *cyaml_refused);

/*
 * snprintf for field paths and messages, where cutting a too-long result
 * short is the wanted behaviour (a message is still useful cut short).
 */
void gw_cfg_fmt(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif /* GW_CONFIG_INTERNAL_H */
