/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * config_yaml.c - the first pass of the config loader: libyaml events ->
 * a small node tree with line numbers -> checked against the cyaml schema.
 *
 * libcyaml stops at the first problem and its messages carry no line, so
 * this pass finds every schema error (unknown or duplicate key, missing
 * required key, wrong type, list too long) and reports each as
 * "FILE:LINE: FIELD: message". It also records the line of every key and
 * list item in a path -> line index, which the semantic checks in config.c
 * use so their errors carry lines too. Only a document this pass accepts is
 * handed to libcyaml for the typed load.
 *
 * Aliases are refused here (and by libcyaml with CYAML_CFG_NO_ALIAS): a
 * config has no use for them and they are the classic way to make a small
 * YAML file expand without bound.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "config_internal.h"

enum node_kind { NODE_SCALAR, NODE_SEQ, NODE_MAP };

struct node {
	enum node_kind kind;
	unsigned line;
	char *value;       /* scalar only */
	struct node **kid; /* seq: items; map: key, value, key, value ... */
	size_t n, cap;
};

/* ---- errors and the index ---------------------------------------------- */

static void
join(char *dst, size_t cap, const char *prefix, const char *key)
{
	bool p = prefix && prefix[0], k = key && key[0];

	snprintf(dst, cap, "%s%s%s", p ? prefix : "", p && k && key[0] != '[' ? "." : "",
		k ? key : "");
}

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct gw_cfg_idx_ent *
idx_find(const struct gw_cfg_idx *idx, const char *path)
{
	if (idx->cap == 0)
		return NULL;
	for (size_t i = fnv1a(path) & (idx->cap - 1);; i = (i + 1) & (idx->cap - 1)) {
		struct gw_cfg_idx_ent *e = &idx->ents[i];

		if (!e->path)
			return NULL;
		if (strcmp(e->path, path) == 0)
			return e;
	}
}

static int
idx_put(struct gw_cfg_idx *idx, const char *path, unsigned line)
{
	/* keep the load factor at or below one half: probes stay short */
	if ((idx->n + 1) * 2 > idx->cap) {
		size_t ncap = idx->cap ? idx->cap * 2 : 64;
		struct gw_cfg_idx_ent *ne = calloc(ncap, sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		for (size_t i = 0; i < idx->cap; i++) {
			struct gw_cfg_idx_ent *o = &idx->ents[i];
			size_t j;

			if (!o->path)
				continue;
			for (j = fnv1a(o->path) & (ncap - 1); ne[j].path; j = (j + 1) & (ncap - 1))
				;
			ne[j] = *o;
		}
		free(idx->ents);
		idx->ents = ne;
		idx->cap = ncap;
	}
	if (idx_find(idx, path))
		return 0; /* first occurrence wins; duplicates are reported apart */
	size_t j = fnv1a(path) & (idx->cap - 1);

	while (idx->ents[j].path)
		j = (j + 1) & (idx->cap - 1);
	idx->ents[j].path = strdup(path);
	if (!idx->ents[j].path)
		return -ENOMEM;
	idx->ents[j].line = line;
	idx->n++;
	return 0;
}

void
gw_cfg_idx_free(struct gw_cfg_idx *idx)
{
	for (size_t i = 0; i < idx->cap; i++)
		free(idx->ents[i].path);
	free(idx->ents);
	memset(idx, 0, sizeof(*idx));
}

unsigned
gw_cfg_line(const struct gw_cfg_ctx *c, const char *prefix, const char *key)
{
	char p[GW_CFG_PATH_MAX];

	join(p, sizeof(p), prefix, key);
	for (;;) {
		const struct gw_cfg_idx_ent *e = idx_find(&c->idx, p);
		char *dot = strrchr(p, '.'), *br = strrchr(p, '[');
		char *cut = dot > br ? dot : br;

		if (e)
			return e->line;
		if (!cut)
			return 0;
		*cut = '\0';
	}
}

int
gw_cfg_has(const struct gw_cfg_ctx *c, const char *prefix, const char *key)
{
	char p[GW_CFG_PATH_MAX];

	join(p, sizeof(p), prefix, key);
	return idx_find(&c->idx, p) != NULL;
}

/* "FILE:LINE: FIELD: message" into all[1024]; a syntax error has no field. */
static void
format_line(const struct gw_cfg_ctx *c, unsigned line, const char *prefix, const char *key,
	const char *fmt, va_list ap, char *all)
{
	char field[GW_CFG_PATH_MAX], msg[384];

	join(field, sizeof(field), prefix, key);
	if (line == 0)
		line = gw_cfg_line(c, prefix, key);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* values from the file are quoted in messages: keep each error one line
	 * of printable text whatever the file holds */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	gw_cfg_fmt(all, 1024, "%s:%u: %s%s%s", c->file, line ? line : 1, field,
		field[0] ? ": " : "", msg);
}

void
gw_cfg_err(struct gw_cfg_ctx *c, unsigned line, const char *prefix, const char *key,
	const char *fmt, ...)
{
	char all[1024];
	va_list ap;

	/* past a hundred, more lines help nobody: count them only */
	if (c->n_errs >= GW_CFG_MAX_ERRS) {
		c->n_errs++;
		return;
	}
	va_start(ap, fmt);
	format_line(c, line, prefix, key, fmt, ap, all);
	va_end(ap);
	if (c->errs)
		fprintf(c->errs, "%s\n", all);
	if (c->n_errs++ == 0)
		gw_cfg_fmt(c->first, sizeof(c->first), "%s", all);
}

int
gw_cfg_warn(struct gw_cfg_ctx *c, unsigned line, const char *prefix, const char *key,
	const char *fmt, ...)
{
	char all[1024], **nw;
	va_list ap;

	if (c->n_warns >= GW_CFG_MAX_ERRS)
		return 0;
	va_start(ap, fmt);
	format_line(c, line, prefix, key, fmt, ap, all);
	va_end(ap);
	nw = realloc(c->warns, (c->n_warns + 1) * sizeof(*nw));
	if (!nw)
		return -ENOMEM;
	c->warns = nw;
	if (!(c->warns[c->n_warns] = strdup(all)))
		return -ENOMEM;
	c->n_warns++;
	return 0;
}

void
gw_cfg_fmt(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
}

/* ---- libyaml events -> node tree ---------------------------------------- */

static void
node_free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		node_free(n->kid[i]);
	free(n->kid);
	free(n->value);
	free(n);
}

static int
node_add(struct node *parent, struct node *kid)
{
	if (parent->n == parent->cap) {
		size_t ncap = parent->cap ? parent->cap * 2 : 8;
		struct node **nk = realloc(parent->kid, ncap * sizeof(*nk));

		if (!nk)
			return -ENOMEM;
		parent->kid = nk;
		parent->cap = ncap;
	}
	parent->kid[parent->n++] = kid;
	return 0;
}

/* Printable copy of a scalar for a message: short, no control characters. */
static const char *
shown(const char *s, char *buf, size_t cap)
{
	size_t i, j = 0;

	for (i = 0; s[i] && j + 4 < cap; i++)
		buf[j++] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (s[i])
		buf[j++] = '.', buf[j++] = '.', buf[j++] = '.';
	buf[j] = '\0';
	return buf;
}

/*
 * Build the tree of the one document in buf. Returns 0 and *root (NULL for
 * an empty file), or -GW_E_CONFIG after reporting a syntax error, or
 * -ENOMEM.
 */
static int
build_tree(struct gw_cfg_ctx *c, const char *buf, size_t len, struct node **root)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct node *stack[GW_CFG_MAX_DEPTH + 1];
	unsigned depth = 0, docs = 0;
	struct node *top = NULL;
	int rc = 0;
	bool done = false;

	*root = NULL;
	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (!done) {
		struct node *n = NULL;

		if (!yaml_parser_parse(&p, &ev)) {
			if (p.error == YAML_MEMORY_ERROR) {
				rc = -ENOMEM;
				goto out;
			}
			gw_cfg_err(c, (unsigned)p.problem_mark.line + 1, NULL, NULL,
				"YAML syntax error: %s%s%s", p.problem ? p.problem : "unknown",
				p.context ? " " : "", p.context ? p.context : "");
			rc = -GW_E_CONFIG;
			goto out;
		}
		unsigned line = (unsigned)ev.start_mark.line + 1;

		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				gw_cfg_err(c, line, NULL, NULL,
					"only one YAML document per config file (found a second "
					"'---')");
				rc = -GW_E_CONFIG;
			}
			break;
		case YAML_ALIAS_EVENT:
			gw_cfg_err(c, line, NULL, NULL,
				"YAML aliases (*%s) are not supported in the config",
				(const char *)ev.data.alias.anchor);
			rc = -GW_E_CONFIG;
			break;
		case YAML_SCALAR_EVENT:
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			n = calloc(1, sizeof(*n));
			if (!n) {
				rc = -ENOMEM;
				break;
			}
			n->line = line;
			if (ev.type == YAML_SCALAR_EVENT) {
				n->kind = NODE_SCALAR;
				n->value = strndup(
					(const char *)ev.data.scalar.value, ev.data.scalar.length);
				if (!n->value) {
					free(n);
					rc = -ENOMEM;
					break;
				}
			} else {
				n->kind =
					ev.type == YAML_SEQUENCE_START_EVENT ? NODE_SEQ : NODE_MAP;
			}
			if (depth > 0 && stack[depth - 1]->kind == NODE_MAP &&
				stack[depth - 1]->n % 2 == 0 && n->kind != NODE_SCALAR) {
				gw_cfg_err(c, line, NULL, NULL,
					"a mapping key must be a plain word, not a list or "
					"mapping");
				node_free(n);
				rc = -GW_E_CONFIG;
				break;
			}
			if (depth == 0) {
				if (top) { /* a second document: already reported */
					node_free(n);
					n = NULL;
				} else {
					top = n;
				}
			} else if (node_add(stack[depth - 1], n) < 0) {
				node_free(n);
				rc = -ENOMEM;
				break;
			}
			if (n && n->kind != NODE_SCALAR) {
				if (depth == GW_CFG_MAX_DEPTH) {
					gw_cfg_err(c, line, NULL, NULL,
						"nested more than %d levels deep",
						GW_CFG_MAX_DEPTH);
					rc = -GW_E_CONFIG;
					break;
				}
				stack[depth++] = n;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (rc < 0)
			goto out;
	}
	*root = top;
	top = NULL;
out:
	node_free(top);
	yaml_parser_delete(&p);
	return rc;
}

/* ---- node tree x cyaml schema ------------------------------------------ */

static const char *
kind_name(const struct node *n)
{
	switch (n->kind) {
	case NODE_SEQ:
		return "a list";
	case NODE_MAP:
		return "a mapping";
	default:
		return n->value[0] ? "a single value" : "nothing";
	}
}

static bool
is_bool(const char *s)
{
	static const char *const ok[] = {"true", "false", "yes", "no", "on", "off"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcasecmp(s, ok[i]) == 0)
			return true;
	return false;
}

static void
list_keys(const cyaml_schema_field_t *f, char *buf, size_t cap)
{
	size_t used = 0;

	buf[0] = '\0';
	for (; f->key && used < cap; f++) {
		int w = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", f->key);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

static int walk(struct gw_cfg_ctx *c, const struct node *n, const cyaml_schema_value_t *s,
	const char *path, bool *bad);

static int
walk_map(struct gw_cfg_ctx *c, const struct node *n, const cyaml_schema_value_t *s,
	const char *path, bool *bad)
{
	const cyaml_schema_field_t *fields = s->mapping.fields;
	char sub[GW_CFG_PATH_MAX], keys[384], tmp[64];

	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct node *k = n->kid[i], *v = n->kid[i + 1];
		const cyaml_schema_field_t *f;

		join(sub, sizeof(sub), path, shown(k->value, tmp, sizeof(tmp)));
		/* known keys are indexed as they are seen, so a second one is a
		 * lookup, not a scan (a mapping may have many unknown keys) */
		if (gw_cfg_has(c, sub, NULL)) {
			gw_cfg_err(c, k->line, sub, NULL, "duplicate key (first given on line %u)",
				gw_cfg_line(c, sub, NULL));
			*bad = true;
			continue;
		}
		for (f = fields; f->key && strcmp(f->key, k->value) != 0; f++)
			;
		if (!f->key) {
			list_keys(fields, keys, sizeof(keys));
			gw_cfg_err(
				c, k->line, sub, NULL, "unknown key (expected one of: %s)", keys);
			*bad = true;
			continue;
		}
		if (idx_put(&c->idx, sub, k->line) < 0)
			return -ENOMEM;
		GW_GUARD(walk(c, v, &f->value, sub, bad));
	}
	for (const cyaml_schema_field_t *f = fields; f->key; f++) {
		bool found = false;

		if (f->value.flags & CYAML_FLAG_OPTIONAL)
			continue;
		for (size_t i = 0; i + 1 < n->n && !found; i += 2)
			found = strcmp(n->kid[i]->value, f->key) == 0;
		if (!found) {
			gw_cfg_err(c, n->line, path, f->key, "required key is missing");
			*bad = true;
		}
	}
	return 0;
}

/*
 * hsm.env: NAME: value lines, kept in c->env for config.c to check. Its
 * keys are the operator's, so the schema cannot list them.
 */
static int
walk_env(struct gw_cfg_ctx *c, const struct node *n, const char *path, bool *bad)
{
	char sub[GW_CFG_PATH_MAX], tmp[64];

	if (n->kind != NODE_MAP) {
		gw_cfg_err(c, n->line, path, NULL,
			"expected a mapping of variable names to values (SOFTHSM2_CONF: "
			"/etc/softhsm/softhsm2.conf), got %s",
			kind_name(n));
		*bad = true;
		return 0;
	}
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct node *k = n->kid[i], *v = n->kid[i + 1];

		join(sub, sizeof(sub), path, shown(k->value, tmp, sizeof(tmp)));
		if (gw_cfg_has(c, sub, NULL)) {
			gw_cfg_err(c, k->line, sub, NULL, "duplicate key (first given on line %u)",
				gw_cfg_line(c, sub, NULL));
			*bad = true;
			continue;
		}
		if (idx_put(&c->idx, sub, k->line) < 0)
			return -ENOMEM;
		if (v->kind != NODE_SCALAR) {
			gw_cfg_err(c, v->line, sub, NULL, "expected a single value, got %s",
				kind_name(v));
			*bad = true;
			continue;
		}
		if (c->n_env == GW_CFG_MAX_ENV) {
			gw_cfg_err(c, k->line, sub, NULL, "takes at most %d variables",
				GW_CFG_MAX_ENV);
			*bad = true;
			return 0;
		}
		c->env[c->n_env].name = strdup(k->value);
		c->env[c->n_env].value = strdup(v->value);
		c->env_line[c->n_env] = k->line;
		if (!c->env[c->n_env].name || !c->env[c->n_env].value) {
			free(c->env[c->n_env].name);
			free(c->env[c->n_env].value);
			return -ENOMEM;
		}
		c->n_env++;
	}
	return 0;
}

static int
walk(struct gw_cfg_ctx *c, const struct node *n, const cyaml_schema_value_t *s, const char *path,
	bool *bad)
{
	char sub[GW_CFG_PATH_MAX], tmp[64];

	switch (s->type) {
	case CYAML_MAPPING:
		if (n->kind != NODE_MAP) {
			gw_cfg_err(c, n->line, path, NULL,
				"expected a mapping (key: value ...), got %s", kind_name(n));
			*bad = true;
			return 0;
		}
		return walk_map(c, n, s, path, bad);
	case CYAML_SEQUENCE:
	case CYAML_SEQUENCE_FIXED:
		if (n->kind != NODE_SEQ) {
			gw_cfg_err(c, n->line, path, NULL,
				"expected a list ([a, b] or '- a' lines), got %s", kind_name(n));
			*bad = true;
			return 0;
		}
		if (n->n < s->sequence.min) {
			gw_cfg_err(c, n->line, path, NULL, "needs at least %u entr%s, got %zu",
				s->sequence.min, s->sequence.min == 1 ? "y" : "ies", n->n);
			*bad = true;
		}
		if (s->sequence.max != CYAML_UNLIMITED && n->n > s->sequence.max) {
			gw_cfg_err(c, n->line, path, NULL, "takes at most %u entries, got %zu",
				s->sequence.max, n->n);
			*bad = true;
			return 0;
		}
		for (size_t i = 0; i < n->n; i++) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (idx_put(&c->idx, sub, n->kid[i]->line) < 0)
				return -ENOMEM;
			GW_GUARD(walk(c, n->kid[i], s->sequence.entry, sub, bad));
		}
		return 0;
	case CYAML_IGNORE:
		return strcmp(path, "hsm.env") == 0 ? walk_env(c, n, path, bad) : 0;
	default:
		break;
	}
	/* the rest are scalars */
	if (n->kind != NODE_SCALAR) {
		gw_cfg_err(c, n->line, path, NULL, "expected a single value, got %s", kind_name(n));
		*bad = true;
		return 0;
	}
	const char *v = n->value;

	switch (s->type) {
	case CYAML_UINT: {
		uint64_t max = s->data_size >= 8 ? UINT64_MAX : (1ull << (8 * s->data_size)) - 1;
		char *end;
		unsigned long long x;

		errno = 0;
		x = strtoull(v, &end, 10);
		/* a leading 0 is refused: libcyaml would read "0100" as octal 64 */
		if (!isdigit((unsigned char)v[0]) || *end || (v[0] == '0' && v[1])) {
			gw_cfg_err(c, n->line, path, NULL,
				"expected a whole number >= 0 (decimal, no leading zeros), got "
				"'%s'",
				shown(v, tmp, sizeof(tmp)));
			*bad = true;
		} else if (errno == ERANGE || x > max) {
			gw_cfg_err(c, n->line, path, NULL, "%s is too large (at most %" PRIu64 ")",
				shown(v, tmp, sizeof(tmp)), max);
			*bad = true;
		}
		break;
	}
	case CYAML_BOOL:
		if (!is_bool(v)) {
			gw_cfg_err(c, n->line, path, NULL, "expected true or false, got '%s'",
				shown(v, tmp, sizeof(tmp)));
			*bad = true;
		}
		break;
	case CYAML_STRING:
		if (strlen(v) < s->string.min) {
			gw_cfg_err(c, n->line, path, NULL, "must not be empty");
			*bad = true;
		} else if (strlen(v) > s->string.max) {
			gw_cfg_err(
				c, n->line, path, NULL, "longer than %u characters", s->string.max);
			*bad = true;
		}
		break;
	default:
		/* the config schema uses no other scalar types; libcyaml checks them */
		break;
	}
	return 0;
}

int
gw_cfg_yaml_check(
	struct gw_cfg_ctx *c, const char *buf, size_t len, const cyaml_schema_value_t *schema)
{
	struct node *root = NULL;
	bool bad = false;
	int rc;

	rc = build_tree(c, buf, len, &root);
	if (rc < 0)
		goto out;
	if (!root || (root->kind == NODE_SCALAR && root->value[0] == '\0')) {
		gw_cfg_err(c, 1, NULL, NULL,
			"the file is empty: expected a mapping with at least "
			"'dataplane:'");
		rc = -GW_E_CONFIG;
		goto out;
	}
	rc = walk(c, root, schema, "", &bad);
	if (rc == 0 && bad)
		rc = -GW_E_CONFIG;
out:
	node_free(root);
	return rc;
}
