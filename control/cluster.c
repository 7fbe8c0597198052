/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cluster.c - the fleet agent (cluster.h): membership, leader election and
 * the fleet's session ticket keys in etcd, on a thread of its own.
 *
 * Everything the agent thread owns (its etcd client, HSM handle, lease, the
 * fleet keys it last unsealed) is touched by that thread only, except
 * during gw_cluster_start's join, before the thread exists. What the
 * control thread reads (keys waiting to be installed, the status) is
 * behind c->lock; the two flags other threads read are atomics.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define GW_LOG_MODULE "cluster"
#include "cluster.h"
#include "cluster_cfg.h"
#include "etcd.h"
#include "gw_log.h"

#define KEY_MAX 256
/* sealed plaintext: serial, the current key, has_prev, the previous key */
#define TKEY_LEN (16 + 32 + 32 + 8)
#define TKEYS_LEN (8 + TKEY_LEN + 1 + TKEY_LEN)

struct gw_cluster {
	/* from the params, copied */
	char name[GW_CFG_CLUSTER_NAME_MAX + 1];
	char node[GW_CFG_CLUSTER_NAME_MAX + 1];
	char *ticket_key;
	char k_members[KEY_MAX], k_member[KEY_MAX], k_leader[KEY_MAX], k_tickets[KEY_MAX];
	char k_config[KEY_MAX], k_leaves[KEY_MAX], k_leaf[KEY_MAX];
	unsigned ttl_s, lifetime_s, turn_ms;

	/* the agent thread's (the join's before it starts) */
	struct gw_etcd *etcd;
	struct gw_hsm *hsm;
	int64_t lease;
	int64_t tickets_rev;           /* mod_revision of the tickets key last read */
	struct gw_cluster_tkeys fleet; /* the newest unsealed, fleet.serial 0: none */
	int64_t fleet_rev;             /* the mod_revision fleet was read at */
	bool heal;                     /* a stale value is in etcd: rotate now */
	bool turn_ok;                  /* every etcd request of this turn answered */
	bool said_down;                /* "etcd unreachable" was logged */
	char err[256];                 /* this turn's first error */
	char tickets_err[256];         /* why the tickets value was refused ("": it was not) */
	int64_t config_rev;            /* mod_revision of the config key last read */
	char *leaf_written;            /* our leaves record as last written */
	uint8_t roots_digest[32];      /* of our roots as last sealed */
	char *roots_seal;              /* their seal (base64) */
	json_t *roots_ok;              /* {node: sha256 hex} of others' roots whose seal opened */
	uint64_t config_seen;          /* the newest config revision offered */
	time_t started;

	pthread_t thread;
	bool thread_up;
	atomic_bool stop;
	atomic_bool etcd_up, leader;

	/* shared with the control thread */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct gw_cluster_tkeys pending; /* pending.serial 0: nothing to take */
	uint64_t taken;                  /* the last serial handed over */
	uint64_t rep_generation, rep_ticket_serial;
	/* the pushed config: waiting to be applied, and how the last one went */
	uint64_t cfg_pending_rev; /* 0: nothing waiting */
	char *cfg_pending;
	json_t *cfg_pending_files;
	uint64_t cfg_rev;     /* the revision last tried (applied or refused); 0: none */
	uint64_t cfg_applied; /* the revision running (0: the box's own file) */
	json_t *mesh;         /* the rotation validators' report (gw_mesh_fleet_report), or NULL */
	json_t *leaves;       /* every box's leaves record, as last read */
	char *fleet_roots;    /* the other members' verified roots (PEM), or NULL */
	bool cfg_ok;
	char cfg_msg[256];
	char leader_node[GW_CFG_CLUSTER_NAME_MAX + 1];
	char last_error[256];
	json_t *members; /* the last members list read */
};

/* ---- the sealed ticket keys ---- */

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint8_t *
tkey_put(uint8_t *p, const struct gw_cluster_tkey *k)
{
	memcpy(p, k->name, 16);
	memcpy(p + 16, k->aes, 32);
	memcpy(p + 48, k->hmac, 32);
	put_be64(p + 80, (uint64_t)k->created);
	return p + TKEY_LEN;
}

static const uint8_t *
tkey_get(const uint8_t *p, struct gw_cluster_tkey *k)
{
	memcpy(k->name, p, 16);
	memcpy(k->aes, p + 16, 32);
	memcpy(k->hmac, p + 48, 32);
	k->created = (int64_t)get_be64(p + 80);
	return p + TKEY_LEN;
}

static void
aad_of(const struct gw_cluster *c, uint64_t serial, char *aad, size_t len)
{
	snprintf(aad, len, "mtlsgw/%s/tickets/%" PRIu64, c->name, serial);
}

/* The tickets key's value for ks: {"serial","created","sealed"}. */
static int
tickets_seal(struct gw_cluster *c, const struct gw_cluster_tkeys *ks, char **out)
{
	uint8_t pt[TKEYS_LEN], sealed[TKEYS_LEN + GW_HSM_SEAL_OVERHEAD], *p;
	char aad[KEY_MAX], b64[((sizeof(sealed) + 2) / 3) * 4 + 1];
	size_t n = sizeof(sealed);
	json_t *o;
	int rc;

	put_be64(pt, ks->serial);
	p = tkey_put(pt + 8, &ks->cur);
	*p++ = ks->has_prev;
	tkey_put(p, &ks->prev);
	aad_of(c, ks->serial, aad, sizeof(aad));
	rc = gw_hsm_seal(c->hsm, c->ticket_key, (const uint8_t *)aad, strlen(aad), pt, sizeof(pt),
		sealed, &n);
	OPENSSL_cleanse(pt, sizeof(pt));
	GW_GUARD(rc);
	EVP_EncodeBlock((unsigned char *)b64, sealed, (int)n);
	o = json_pack("{s:I,s:I,s:s}", "serial", (json_int_t)ks->serial, "created",
		(json_int_t)ks->cur.created, "sealed", b64);
	GW_ENSURE(o, -ENOMEM);
	*out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	GW_ENSURE(*out, -ENOMEM);
	return 0;
}

/* Base64 s (as EVP_EncodeBlock wrote it) into out[cap]: its length, or -1 (not base64, too long). */
static int
b64_bytes(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s);
	int k;

	if (n % 4 != 0 || n / 4 * 3 > cap)
		return -1;
	k = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if (k > 0 && s[n - 1] == '=')
		k -= s[n - 2] == '=' ? 2 : 1;
	return k;
}

/* Open the tickets key's value into *ks; its serial must be the JSON's. */
static int
tickets_open(struct gw_cluster *c, const uint8_t *val, size_t len, struct gw_cluster_tkeys *ks)
{
	uint8_t sealed[TKEYS_LEN + GW_HSM_SEAL_OVERHEAD + 3], pt[TKEYS_LEN];
	const uint8_t *p;
	char aad[KEY_MAX];
	json_int_t serial = 0;
	const char *b64 = NULL;
	size_t n = sizeof(pt);
	json_t *o = json_loadb((const char *)val, len, 0, NULL);
	int k, rc;

	if (o == NULL || json_unpack(o, "{s:I,s:s}", "serial", &serial, "sealed", &b64) < 0 ||
		serial < 1) {
		json_decref(o);
		return gw_err_setf(-GW_E_PARSE, GW_HERE,
			"%s is not a ticket key record ({serial, created, sealed})", c->k_tickets);
	}
	k = b64_bytes(b64, sealed, sizeof(sealed));
	json_decref(o);
	if (k < 0)
		return gw_err_setf(
			-GW_E_PARSE, GW_HERE, "%s: 'sealed' is not base64", c->k_tickets);
	aad_of(c, (uint64_t)serial, aad, sizeof(aad));
	rc = gw_hsm_unseal(c->hsm, c->ticket_key, (const uint8_t *)aad, strlen(aad), sealed,
		(size_t)k, pt, &n);
	if (rc < 0) {
		char why[GW_ERR_MSG_MAX];

		snprintf(why, sizeof(why), "%s", gw_err_msg());
		return gw_err_setf(rc, GW_HERE, "ticket keys %s (serial %" PRId64 ") refused: %s",
			c->k_tickets, (int64_t)serial, why);
	}
	if (n != TKEYS_LEN || get_be64(pt) != (uint64_t)serial) {
		OPENSSL_cleanse(pt, sizeof(pt));
		return gw_err_setf(-GW_E_PARSE, GW_HERE,
			"ticket keys %s: sealed record of serial %" PRId64 " holds another layout",
			c->k_tickets, (int64_t)serial);
	}
	ks->serial = (uint64_t)serial;
	p = tkey_get(pt + 8, &ks->cur);
	ks->has_prev = *p++ != 0;
	tkey_get(p, &ks->prev);
	OPENSSL_cleanse(pt, sizeof(pt));
	return 0;
}

static int
tkey_make(struct gw_cluster_tkey *k, time_t now)
{
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 ||
		RAND_priv_bytes(k->aes, sizeof(k->aes)) != 1 ||
		RAND_priv_bytes(k->hmac, sizeof(k->hmac)) != 1)
		return gw_err_setf(-GW_E_TLS, GW_HERE, "no randomness for a session ticket key");
	k->created = now;
	return 0;
}

/* ---- one turn ---- */

/* Note this turn's first error (etcd's or ours) for the status and the log. */
static int
turn_err(struct gw_cluster *c, int rc)
{
	if (rc == -GW_E_ETCD)
		c->turn_ok = false;
	if (c->err[0] == '\0')
		snprintf(c->err, sizeof(c->err), "%s", gw_err_msg());
	return rc;
}

static int
lease_step(struct gw_cluster *c)
{
	int rc;

	if (c->lease != 0) {
		rc = gw_etcd_lease_keepalive(c->etcd, c->lease);
		if (rc == 0)
			return 0;
		if (rc != -ENOENT)
			return turn_err(c, rc);
		GW_LOG_WARN("lease %" PRIx64 " expired in etcd: joining again", c->lease);
		c->lease = 0;
		atomic_store(&c->leader, false);
	}
	rc = gw_etcd_lease_grant(c->etcd, c->ttl_s, &c->lease);
	return rc < 0 ? turn_err(c, rc) : 0;
}

static void roots_sign(struct gw_cluster *c, json_t *mesh);

static int
member_step(struct gw_cluster *c)
{
	uint64_t gen, ts;
	char *s;
	json_t *o, *cfg, *mesh;
	int rc;

	pthread_mutex_lock(&c->lock);
	gen = c->rep_generation;
	ts = c->rep_ticket_serial;
	cfg = json_pack("{s:I,s:I,s:I,s:s,s:s}", "revision", (json_int_t)c->cfg_rev, "applied",
		(json_int_t)c->cfg_applied, "seen", (json_int_t)c->config_seen, "status",
		c->cfg_rev == 0 ? "none"
		: c->cfg_ok     ? "ok"
				: "error",
		"message", c->cfg_msg);
	mesh = c->mesh ? json_deep_copy(c->mesh) : NULL;
	pthread_mutex_unlock(&c->lock);
	if (mesh != NULL) {
		json_object_del(mesh, "live_leaves"); /* in leaves/<node>, outliving the member */
		roots_sign(c, mesh);
	}
	o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:b,s:s,s:o?,s:o?}", "node", c->node, "pid",
		(json_int_t)getpid(), "started", (json_int_t)c->started, "heartbeat",
		(json_int_t)time(NULL), "generation", (json_int_t)gen, "ticket_serial",
		(json_int_t)ts, "leader", atomic_load(&c->leader), "version", GW_VERSION, "config",
		cfg, "mesh", mesh);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	GW_ENSURE(s, -ENOMEM);
	rc = gw_etcd_put(c->etcd, c->k_member, s, strlen(s), c->lease);
	free(s);
	if (rc == -ENOENT) /* the lease went between keepalive and put */
		c->lease = 0;
	return rc < 0 ? turn_err(c, rc) : 0;
}

static int
leader_step(struct gw_cluster *c)
{
	uint8_t *v = NULL;
	size_t n = 0;
	bool was = atomic_load(&c->leader), is;
	int rc = gw_etcd_get(c->etcd, c->k_leader, &v, &n, NULL);

	if (rc == -ENOENT) {
		rc = gw_etcd_put_if(c->etcd, c->k_leader, c->node, strlen(c->node), 0, c->lease);
		if (rc < 0 && rc != -EEXIST)
			return turn_err(c, rc);
		/* taken, or taken by whoever won the race (perhaps our own resent write) */
		rc = gw_etcd_get(c->etcd, c->k_leader, &v, &n, NULL);
	}
	if (rc < 0 && rc != -ENOENT)
		return turn_err(c, rc);
	is = rc == 0 && n == strlen(c->node) && memcmp(v, c->node, n) == 0;
	pthread_mutex_lock(&c->lock);
	snprintf(c->leader_node, sizeof(c->leader_node), "%s", rc == 0 ? (const char *)v : "");
	pthread_mutex_unlock(&c->lock);
	free(v);
	atomic_store(&c->leader, is);
	if (is != was)
		GW_LOG_INFO("%s", is ? "this member leads the fleet: it makes and rotates the "
				       "session ticket keys"
				     : "this member no longer leads the fleet");
	return 0;
}

/* Hand ks to the control thread when it is newer than what it has. */
static void
offer(struct gw_cluster *c, const struct gw_cluster_tkeys *ks)
{
	pthread_mutex_lock(&c->lock);
	if (ks->serial > c->taken && ks->serial > c->pending.serial)
		c->pending = *ks;
	pthread_mutex_unlock(&c->lock);
}

/* Read the tickets key; a new serial is unsealed and offered. *rev: its mod_revision (0: none). */
static int
tickets_read(struct gw_cluster *c, int64_t *rev)
{
	struct gw_cluster_tkeys ks;
	uint8_t *v = NULL;
	size_t n = 0;
	int rc = gw_etcd_get(c->etcd, c->k_tickets, &v, &n, rev);

	if (rc == -ENOENT) {
		*rev = 0;
		return 0;
	}
	if (rc < 0)
		return turn_err(c, rc);
	if (*rev == c->tickets_rev) {
		free(v);
		return 0;
	}
	rc = tickets_open(c, v, n, &ks);
	free(v);
	if (rc < 0) {
		/* once per revision: the next turn reads the same value */
		GW_LOG_ERR("%s", gw_err_msg());
		snprintf(c->tickets_err, sizeof(c->tickets_err), "%s", gw_err_msg());
		c->tickets_rev = *rev;
		return turn_err(c, rc);
	}
	c->tickets_rev = *rev;
	if (ks.serial < c->fleet.serial) {
		rc = gw_err_setf(-ESTALE, GW_HERE,
			"ticket keys %s: serial %" PRIu64 " is older than the %" PRIu64
			" installed (a stale or replayed value): refused",
			c->k_tickets, ks.serial, c->fleet.serial);
		GW_LOG_ERR("%s", gw_err_msg());
		snprintf(c->tickets_err, sizeof(c->tickets_err), "%s", gw_err_msg());
		OPENSSL_cleanse(&ks, sizeof(ks));
		c->fleet_rev = *rev; /* the leader writes the next serial over it */
		c->heal = true;
		return turn_err(c, rc);
	}
	if (ks.serial > c->fleet.serial) {
		c->fleet = ks;
		offer(c, &ks);
	}
	c->fleet_rev = *rev;
	c->tickets_err[0] = '\0';
	OPENSSL_cleanse(&ks, sizeof(ks));
	return 0;
}

/* The leader: the first keys, or the next ones when the current is a lifetime old. */
static int
tickets_rotate(struct gw_cluster *c, int64_t rev, time_t now)
{
	struct gw_cluster_tkeys ks = {0};
	char *val = NULL;
	int rc;

	if (rev != 0 && rev != c->fleet_rev)
		return 0; /* a value we could not open: never overwritten (docs/operations.md, "Fleet") */
	if (rev != 0 && !c->heal && now - c->fleet.cur.created < (time_t)c->lifetime_s)
		return 0;
	/* after the newest this member has seen, even when the key was deleted */
	ks.serial = c->fleet.serial + 1;
	if (c->fleet.serial > 0) {
		ks.prev = c->fleet.cur;
		ks.has_prev = true;
	}
	rc = tkey_make(&ks.cur, now);
	if (rc == 0)
		rc = tickets_seal(c, &ks, &val);
	OPENSSL_cleanse(&ks, sizeof(ks));
	if (rc < 0) {
		GW_LOG_ERR("session ticket keys not rotated: %s", gw_err_msg());
		return turn_err(c, rc);
	}
	rc = gw_etcd_put_if(c->etcd, c->k_tickets, val, strlen(val), rev, 0);
	free(val);
	c->heal = false;
	if (rc == -EEXIST || rc == -ESTALE)
		return 0; /* another member wrote first: read it next turn */
	if (rc < 0)
		return turn_err(c, rc);
	GW_LOG_INFO("fleet session ticket keys %s (serial %" PRIu64 ")",
		c->fleet.serial == 0 ? "made" : "rotated", c->fleet.serial + 1);
	return 1;
}

/* ---- the mesh CA's fleet state: roots (sealed), issued-leaf records ---- */

static void
sha256_hex(const char *s, uint8_t d[32], char hex[65])
{
	unsigned n = 32;

	EVP_Digest(s, strlen(s), d, &n, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static void
roots_aad(const struct gw_cluster *c, const char *node, char *aad, size_t len)
{
	snprintf(aad, len, "mtlsgw/%s/roots/%s", c->name, node);
}

/*
 * mesh.roots (this box's CA roots) gets roots_seal: the SHA-256 of the PEM
 * sealed under the fleet's key, so the other members trust only roots a
 * box holding that key reported. Sealed again only when they change.
 */
static void
roots_sign(struct gw_cluster *c, json_t *mesh)
{
	const char *pem = json_string_value(json_object_get(mesh, "roots"));
	uint8_t d[32], sealed[32 + GW_HSM_SEAL_OVERHEAD];
	char hex[65], aad[KEY_MAX], b64[((sizeof(sealed) + 2) / 3) * 4 + 1];
	size_t n = sizeof(sealed);

	if (pem == NULL)
		return;
	sha256_hex(pem, d, hex);
	if (c->roots_seal == NULL || memcmp(d, c->roots_digest, 32) != 0) {
		roots_aad(c, c->node, aad, sizeof(aad));
		if (gw_hsm_seal(c->hsm, c->ticket_key, (const uint8_t *)aad, strlen(aad), d, 32,
			    sealed, &n) < 0) {
			GW_LOG_ERR("mesh roots not sealed for the fleet: %s", gw_err_msg());
			json_object_del(mesh, "roots");
			return;
		}
		EVP_EncodeBlock((unsigned char *)b64, sealed, (int)n);
		free(c->roots_seal);
		c->roots_seal = strdup(b64);
		memcpy(c->roots_digest, d, 32);
	}
	if (c->roots_seal != NULL)
		json_object_set_new(mesh, "roots_seal", json_string(c->roots_seal));
}

/* Does a member's roots_seal open to the SHA-256 of its roots? (cached by digest) */
static bool
roots_verified(struct gw_cluster *c, const char *node, const char *pem, const char *seal)
{
	uint8_t d[32], sealed[64 + GW_HSM_SEAL_OVERHEAD], opened[48];
	size_t on = sizeof(opened);
	char hex[65], aad[KEY_MAX];
	const char *known = json_string_value(json_object_get(c->roots_ok, node));
	int k;

	sha256_hex(pem, d, hex);
	if (known != NULL && strcmp(known, hex) == 0)
		return true;
	k = seal != NULL && seal[0] != '\0' ? b64_bytes(seal, sealed, sizeof(sealed)) : -1;
	roots_aad(c, node, aad, sizeof(aad));
	if (k < 0 ||
		gw_hsm_unseal(c->hsm, c->ticket_key, (const uint8_t *)aad, strlen(aad), sealed,
			(size_t)k, opened, &on) < 0 ||
		on != 32 || CRYPTO_memcmp(opened, d, 32) != 0) {
		if (known == NULL || strcmp(known, "refused") != 0)
			GW_LOG_ERR("mesh roots of fleet member '%s' refused: their seal does not "
				   "open under cluster.ticket_key (not written by a box of this "
				   "fleet?)",
				node);
		json_object_set_new(c->roots_ok, node, json_string("refused"));
		return false;
	}
	json_object_set_new(c->roots_ok, node, json_string(hex));
	return true;
}

/* The other members' roots whose seals open, in node order (PEM); NULL if none. */
static char *
fleet_roots_of(struct gw_cluster *c, json_t *members)
{
	size_t i, len = 0;
	json_t *m;
	char *out = NULL;
	FILE *f = open_memstream(&out, &len);

	if (f == NULL)
		return NULL;
	json_array_foreach(members, i, m)
	{
		const char *node = json_string_value(json_object_get(m, "node"));
		json_t *mesh = json_object_get(m, "mesh");
		const char *pem = json_string_value(json_object_get(mesh, "roots"));

		if (node == NULL || pem == NULL || strcmp(node, c->node) == 0)
			continue;
		if (roots_verified(
			    c, node, pem, json_string_value(json_object_get(mesh, "roots_seal"))))
			fputs(pem, f);
	}
	fclose(f);
	if (out != NULL && out[0] == '\0') {
		free(out);
		out = NULL;
	}
	return out;
}

/* Our leaves record (no lease: it outlives us until its certificates expire), when it changed. */
static int
leaves_step(struct gw_cluster *c)
{
	json_t *mesh, *o;
	char *s;
	int rc;

	pthread_mutex_lock(&c->lock);
	mesh = c->mesh ? json_incref(json_object_get(c->mesh, "live_leaves")) : NULL;
	pthread_mutex_unlock(&c->lock);
	if (mesh == NULL)
		return 0;
	o = json_pack("{s:s,s:o}", "node", c->node, "backends", mesh);
	s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	GW_ENSURE(s, -ENOMEM);
	if (c->leaf_written != NULL && strcmp(s, c->leaf_written) == 0) {
		free(s);
		return 0;
	}
	rc = gw_etcd_put(c->etcd, c->k_leaf, s, strlen(s), 0);
	if (rc < 0) {
		free(s);
		return turn_err(c, rc);
	}
	free(c->leaf_written);
	c->leaf_written = s;
	return 0;
}

static int
leaf_row(void *arg, const char *key, const uint8_t *val, size_t len, int64_t mod_revision)
{
	json_t *a = arg, *o = json_loadb((const char *)val, len, 0, NULL);

	(void)key;
	(void)mod_revision;
	if (json_is_object(o))
		json_array_append(a, o);
	json_decref(o);
	return 0;
}

/* Refuse a pushed revision: logged once, reported in the member key. */
static int
config_refuse(struct gw_cluster *c, uint64_t rev, int rc)
{
	GW_LOG_ERR("%s", gw_err_msg());
	pthread_mutex_lock(&c->lock);
	c->cfg_rev = rev;
	c->cfg_ok = false;
	snprintf(c->cfg_msg, sizeof(c->cfg_msg), "%s", gw_err_msg());
	pthread_mutex_unlock(&c->lock);
	return turn_err(c, rc);
}

/*
 * Read the pushed config; a newer revision whose seal matches is left for
 * the control thread (gw_cluster_take_config). An older one than the
 * newest seen (stale or replayed) and one whose seal does not match are
 * refused.
 */
static int
config_read(struct gw_cluster *c)
{
	uint8_t *v = NULL, digest[32], opened[32 + 16], sealed[64 + GW_HSM_SEAL_OVERHEAD];
	size_t n = 0, on = sizeof(opened);
	int64_t mod = 0;
	json_int_t rev = 0;
	const char *shared = NULL, *seal = NULL;
	json_t *o, *files = NULL;
	char aad[KEY_MAX];
	int k, rc = gw_etcd_get(c->etcd, c->k_config, &v, &n, &mod);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return turn_err(c, rc);
	if (mod == c->config_rev) {
		free(v);
		return 0;
	}
	c->config_rev = mod;
	o = json_loadb((const char *)v, n, 0, NULL);
	free(v);
	if (o == NULL ||
		json_unpack(o, "{s:I,s:s,s:o,s:s}", "revision", &rev, "shared", &shared, "files",
			&files, "seal", &seal) < 0 ||
		rev < 1 || !json_is_object(files)) {
		json_decref(o);
		rc = gw_err_setf(-GW_E_PARSE, GW_HERE,
			"%s is not a pushed config ({revision, shared, files, seal}): refused",
			c->k_config);
		return config_refuse(c, 0, rc);
	}
	if ((uint64_t)rev <= c->config_seen) {
		rc = gw_err_setf(-ESTALE, GW_HERE,
			"pushed config revision %" PRId64 " is not newer than the %" PRIu64
			" already seen (a stale or replayed value): refused",
			(int64_t)rev, c->config_seen);
		json_decref(o);
		return config_refuse(c, (uint64_t)rev, rc);
	}
	/* the seal: the digest of this revision, sealed under the fleet's key */
	gw_cluster_shared_digest(c->name, (uint64_t)rev, shared, files, digest);
	gw_cluster_shared_aad(c->name, (uint64_t)rev, aad, sizeof(aad));
	k = b64_bytes(seal, sealed, sizeof(sealed));
	rc = k < 0 ? gw_err_setf(-GW_E_PARSE, GW_HERE, "'seal' is not base64")
		   : gw_hsm_unseal(c->hsm, c->ticket_key, (const uint8_t *)aad, strlen(aad), sealed,
			     (size_t)k, opened, &on);
	if (rc == 0 && (on != sizeof(digest) || CRYPTO_memcmp(opened, digest, on) != 0))
		rc = gw_err_setf(-EBADMSG, GW_HERE, "the content does not match its seal");
	if (rc < 0) {
		char why[GW_ERR_MSG_MAX];

		snprintf(why, sizeof(why), "%s", gw_err_msg());
		rc = gw_err_setf(rc, GW_HERE, "pushed config revision %" PRId64 " refused: %s",
			(int64_t)rev, why);
		json_decref(o);
		return config_refuse(c, (uint64_t)rev, rc);
	}
	c->config_seen = (uint64_t)rev;
	pthread_mutex_lock(&c->lock);
	free(c->cfg_pending);
	json_decref(c->cfg_pending_files);
	c->cfg_pending = strdup(shared);
	c->cfg_pending_files = json_incref(files);
	c->cfg_pending_rev = c->cfg_pending ? (uint64_t)rev : 0;
	pthread_mutex_unlock(&c->lock);
	json_decref(o);
	return 0;
}

struct members_acc {
	json_t *a;
};

static int
member_row(void *arg, const char *key, const uint8_t *val, size_t len, int64_t mod_revision)
{
	struct members_acc *m = arg;
	json_t *o = json_loadb((const char *)val, len, 0, NULL);

	(void)key;
	(void)mod_revision;
	if (json_is_object(o))
		json_array_append(m->a, o);
	json_decref(o);
	return 0;
}

static void
members_step(struct gw_cluster *c)
{
	struct members_acc m = {.a = json_array()};
	int rc;

	if (m.a == NULL)
		return;
	rc = gw_etcd_get_prefix(c->etcd, c->k_members, member_row, &m);
	if (rc < 0) {
		json_decref(m.a);
		(void)turn_err(c, rc);
		return;
	}
	{
		json_t *leaves = json_array();
		char *roots = fleet_roots_of(c, m.a);

		if (leaves != NULL &&
			(rc = gw_etcd_get_prefix(c->etcd, c->k_leaves, leaf_row, leaves)) < 0) {
			(void)turn_err(c, rc);
			json_decref(leaves);
			leaves = NULL;
		}
		pthread_mutex_lock(&c->lock);
		json_decref(c->members);
		c->members = m.a;
		if (leaves != NULL) {
			json_decref(c->leaves);
			c->leaves = leaves;
		}
		free(c->fleet_roots);
		c->fleet_roots = roots;
		pthread_mutex_unlock(&c->lock);
	}
}

/* One turn; returns whether etcd answered every request. */
static bool
turn(struct gw_cluster *c)
{
	bool was_up = atomic_load(&c->etcd_up);
	int64_t rev = 0;

	c->turn_ok = true;
	c->err[0] = '\0';
	if (lease_step(c) == 0 && member_step(c) == 0 && leader_step(c) == 0 &&
		(tickets_read(c, &rev) == 0 || c->heal) && atomic_load(&c->leader) &&
		tickets_rotate(c, rev, time(NULL)) == 1)
		(void)tickets_read(c, &rev); /* the leader installs what it wrote */
	if (c->lease != 0) {
		(void)config_read(c);
		(void)leaves_step(c);
	}
	members_step(c);
	/* leader before etcd_up: whoever reads etcd down also reads no
	 * leadership (its lease may expire meanwhile) */
	if (!c->turn_ok)
		atomic_store(&c->leader, false);
	atomic_store(&c->etcd_up, c->turn_ok);
	if (c->turn_ok && c->said_down) {
		GW_LOG_INFO("etcd %s answers again", gw_etcd_endpoint(c->etcd));
		c->said_down = false;
	} else if (!c->turn_ok && (was_up || c->fleet.serial == 0) && !c->said_down) {
		GW_LOG_WARN("etcd unreachable (%s): serving with the last keys; retrying", c->err);
		c->said_down = true;
	}
	pthread_mutex_lock(&c->lock);
	snprintf(c->last_error, sizeof(c->last_error), "%s",
		!c->turn_ok || c->tickets_err[0] == '\0' ? c->err : c->tickets_err);
	pthread_mutex_unlock(&c->lock);
	return c->turn_ok;
}

static void *
agent(void *arg)
{
	struct gw_cluster *c = arg;
	struct timespec ts;

	while (!atomic_load(&c->stop)) {
		turn(c);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)c->turn_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&c->lock);
		if (!atomic_load(&c->stop))
			pthread_cond_timedwait(&c->wake, &c->lock, &ts);
		pthread_mutex_unlock(&c->lock);
	}
	return NULL;
}

/* ---- start, stop ---- */

static int
open_clients(struct gw_cluster *c, const struct gw_cluster_params *p)
{
	const struct gw_cfg_cluster *cc = p->cfg;
	struct gw_etcd_params ep = {
		.endpoints = (const char *const *)cc->endpoints,
		.n_endpoints = cc->n_endpoints,
		.ca_file = cc->etcd_ca,
		.cert_file = cc->etcd_cert,
		.key_file = cc->etcd_key,
		.timeout_ms = cc->timeout_ms,
	};
	/* etcd.key may be in the token too: loaded through the agent's handle */
	uint8_t probe[16] = {0}, sealed[sizeof(probe) + GW_HSM_SEAL_OVERHEAD];
	size_t n = sizeof(sealed);
	int rc;

	GW_GUARD(gw_hsm_open(p->hsm, &c->hsm));
	rc = gw_hsm_seal(c->hsm, c->ticket_key, NULL, 0, probe, sizeof(probe), sealed, &n);
	if (rc < 0) {
		char why[GW_ERR_MSG_MAX];

		snprintf(why, sizeof(why), "%s", gw_err_msg());
		return gw_err_setf(rc, GW_HERE, "cluster.ticket_key: %s", why);
	}
	ep.hsm = c->hsm;
	return gw_etcd_open(&ep, &c->etcd);
}

int
gw_cluster_start(const struct gw_cluster_params *p, struct gw_cluster **out)
{
	const struct gw_cfg_cluster *cc;
	struct gw_cluster *c;
	struct timespec t0, t;
	int rc;

	GW_ENSURE(p && p->cfg && p->hsm && out && p->cfg->name && p->cfg->node &&
			  p->cfg->ticket_key && p->cfg->n_endpoints > 0,
		-EINVAL);
	cc = p->cfg;
	c = calloc(1, sizeof(*c));
	GW_ENSURE(c, -ENOMEM);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	snprintf(c->name, sizeof(c->name), "%s", cc->name);
	snprintf(c->node, sizeof(c->node), "%s", cc->node);
	snprintf(c->k_members, sizeof(c->k_members), "/mtlsgw/%s/members/", c->name);
	snprintf(c->k_member, sizeof(c->k_member), "/mtlsgw/%s/members/%s", c->name, c->node);
	snprintf(c->k_leader, sizeof(c->k_leader), "/mtlsgw/%s/leader", c->name);
	snprintf(c->k_tickets, sizeof(c->k_tickets), "/mtlsgw/%s/tickets", c->name);
	snprintf(c->k_config, sizeof(c->k_config), "/mtlsgw/%s/config", c->name);
	snprintf(c->k_leaves, sizeof(c->k_leaves), "/mtlsgw/%s/leaves/", c->name);
	snprintf(c->k_leaf, sizeof(c->k_leaf), "/mtlsgw/%s/leaves/%s", c->name, c->node);
	c->roots_ok = json_object();
	c->ticket_key = strdup(cc->ticket_key);
	c->ttl_s = cc->lease_ttl_s ? cc->lease_ttl_s : 10;
	c->lifetime_s = p->ticket_lifetime_s ? p->ticket_lifetime_s : 3600;
#ifdef GW_TEST_HOOKS
	/* tests: rotate every few seconds (a ticket lifetime is at least a minute) */
	if (getenv("GW_TEST_CLUSTER_ROTATE_S") != NULL)
		c->lifetime_s = (unsigned)strtoul(getenv("GW_TEST_CLUSTER_ROTATE_S"), NULL, 10);
#endif
	c->turn_ms = c->ttl_s * 1000 / 3 < 1000 ? c->ttl_s * 1000 / 3 : 1000;
	c->started = time(NULL);
	c->config_seen = c->cfg_rev = c->cfg_applied = p->config_revision;
	c->cfg_ok = p->config_revision > 0;
	if (c->cfg_ok)
		snprintf(c->cfg_msg, sizeof(c->cfg_msg), "started on it");
	atomic_init(&c->stop, false);
	atomic_init(&c->etcd_up, false);
	atomic_init(&c->leader, false);
	rc = c->ticket_key ? open_clients(c, p) : -ENOMEM;
	if (rc < 0)
		goto fail;
	/* the join: until the fleet's keys are read, or the timeout */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (turn(c) && c->fleet.serial > 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >=
			(long)p->join_timeout_ms) {
			GW_LOG_WARN("joined without the fleet's ticket keys (%s): serving with "
				    "this box's own until they are read",
				c->tickets_err[0] ? c->tickets_err
				: c->err[0]       ? c->err
						  : "none written yet");
			break;
		}
		usleep(200 * 1000);
	}
	rc = pthread_create(&c->thread, NULL, agent, c);
	if (rc != 0) {
		rc = gw_err_setf(-rc, GW_HERE, "cluster agent thread: %s", strerror(rc));
		goto fail;
	}
	c->thread_up = true;
	GW_LOG_INFO("member '%s' of cluster '%s' via etcd %s%s", c->node, c->name,
		gw_etcd_endpoint(c->etcd), atomic_load(&c->leader) ? " (leader)" : "");
	*out = c;
	return 0;
fail:
	gw_cluster_stop(c);
	return rc;
}

void
gw_cluster_stop(struct gw_cluster *c)
{
	if (c == NULL)
		return;
	if (c->thread_up) {
		pthread_mutex_lock(&c->lock);
		atomic_store(&c->stop, true);
		pthread_cond_signal(&c->wake);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
	}
	/* the member key and the leadership go now, not a TTL later */
	if (c->etcd != NULL && c->lease != 0 && gw_etcd_lease_revoke(c->etcd, c->lease) < 0)
		GW_LOG_WARN("leaving: %s (the lease expires within %us)", gw_err_msg(), c->ttl_s);
	gw_etcd_close(c->etcd);
	gw_hsm_close(c->hsm);
	OPENSSL_cleanse(&c->fleet, sizeof(c->fleet));
	OPENSSL_cleanse(&c->pending, sizeof(c->pending));
	json_decref(c->members);
	json_decref(c->mesh);
	json_decref(c->leaves);
	json_decref(c->roots_ok);
	free(c->fleet_roots);
	free(c->roots_seal);
	free(c->leaf_written);
	free(c->cfg_pending);
	json_decref(c->cfg_pending_files);
	free(c->ticket_key);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ---- the control thread's side ---- */

int
gw_cluster_take_keys(struct gw_cluster *c, struct gw_cluster_tkeys *out)
{
	int got = 0;

	pthread_mutex_lock(&c->lock);
	if (c->pending.serial > c->taken) {
		*out = c->pending;
		c->taken = c->pending.serial;
		got = 1;
	}
	OPENSSL_cleanse(&c->pending, sizeof(c->pending));
	pthread_mutex_unlock(&c->lock);
	return got;
}

int
gw_cluster_take_config(struct gw_cluster *c, uint64_t *revision, char **shared, json_t **files)
{
	int got = 0;

	pthread_mutex_lock(&c->lock);
	if (c->cfg_pending_rev != 0) {
		*revision = c->cfg_pending_rev;
		*shared = c->cfg_pending;
		*files = c->cfg_pending_files;
		c->cfg_pending = NULL;
		c->cfg_pending_files = NULL;
		c->cfg_pending_rev = 0;
		got = 1;
	}
	pthread_mutex_unlock(&c->lock);
	return got;
}

void
gw_cluster_config_report(struct gw_cluster *c, uint64_t revision, bool ok, const char *message)
{
	pthread_mutex_lock(&c->lock);
	c->cfg_rev = revision;
	c->cfg_ok = ok;
	if (ok)
		c->cfg_applied = revision;
	snprintf(c->cfg_msg, sizeof(c->cfg_msg), "%s", message ? message : "");
	pthread_mutex_unlock(&c->lock);
}

void
gw_cluster_report(struct gw_cluster *c, uint64_t generation, uint64_t ticket_serial)
{
	pthread_mutex_lock(&c->lock);
	c->rep_generation = generation;
	c->rep_ticket_serial = ticket_serial;
	pthread_mutex_unlock(&c->lock);
}

void
gw_cluster_report_mesh(struct gw_cluster *c, json_t *mesh)
{
	pthread_mutex_lock(&c->lock);
	json_decref(c->mesh);
	c->mesh = mesh;
	pthread_mutex_unlock(&c->lock);
}

json_t *
gw_cluster_fleet(struct gw_cluster *c)
{
	json_t *f;

	pthread_mutex_lock(&c->lock);
	f = json_pack("{s:o,s:o}", "members",
		c->members ? json_deep_copy(c->members) : json_array(), "leaves",
		c->leaves ? json_deep_copy(c->leaves) : json_array());
	pthread_mutex_unlock(&c->lock);
	return f;
}

char *
gw_cluster_fleet_roots(struct gw_cluster *c)
{
	char *r;

	pthread_mutex_lock(&c->lock);
	r = c->fleet_roots ? strdup(c->fleet_roots) : NULL;
	pthread_mutex_unlock(&c->lock);
	return r;
}

const char *
gw_cluster_node(const struct gw_cluster *c)
{
	return c->node;
}

bool
gw_cluster_etcd_up(const struct gw_cluster *c)
{
	return atomic_load(&c->etcd_up);
}

bool
gw_cluster_is_leader(const struct gw_cluster *c)
{
	return atomic_load(&c->leader);
}

int
gw_cluster_status(struct gw_cluster *c, json_t *o)
{
	json_t *m = json_array();
	size_t i;
	json_t *v;

	pthread_mutex_lock(&c->lock);
	json_array_foreach(c->members, i, v)
	{
		json_t *cf = json_object_get(v, "config");
		json_t *r = json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?}", "Node",
			json_object_get(v, "node"), "Generation", json_object_get(v, "generation"),
			"TicketSerial", json_object_get(v, "ticket_serial"), "Heartbeat",
			json_object_get(v, "heartbeat"), "Leader", json_object_get(v, "leader"),
			"ConfigRevision", json_object_get(cf, "revision"), "ConfigStatus",
			json_object_get(cf, "status"), "ConfigMessage",
			json_object_get(cf, "message"));

		if (r != NULL)
			json_array_append_new(m, r);
	}
	json_object_set_new(o, "Name", json_string(c->name));
	json_object_set_new(o, "Node", json_string(c->node));
	json_object_set_new(o, "Leader", json_string(c->leader_node));
	json_object_set_new(o, "TicketSerial", json_integer((json_int_t)c->rep_ticket_serial));
	json_object_set_new(o, "LastError", json_string(c->last_error));
	json_object_set_new(o, "Config",
		json_pack("{s:I,s:I,s:s,s:s}", "Revision", (json_int_t)c->cfg_rev, "Applied",
			(json_int_t)c->cfg_applied, "Status",
			c->cfg_rev == 0 ? "none"
			: c->cfg_ok     ? "ok"
					: "error",
			"Message", c->cfg_msg));
	pthread_mutex_unlock(&c->lock);
	json_object_set_new(o, "IsLeader", json_boolean(atomic_load(&c->leader)));
	json_object_set_new(o, "EtcdUp", json_boolean(atomic_load(&c->etcd_up)));
	json_object_set_new(o, "Members", m);
	return 0;
}
