/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * config.h - the mtlsgw configuration: one YAML file, loaded with libcyaml,
 * validated as a whole, and handed out as one immutable tree of plain structs.
 *
 * This header is the contract between control (which parses and validates)
 * and everything else (which only reads the result): the dataplane never
 * sees YAML. Addresses are already parsed, enums already mapped, paths
 * already checked to exist. A struct gw_cfg is never modified after
 * gw_cfg_load() returns it; a reload builds a new one.
 *
 * Keys are only ever added, never renamed (operators' files must keep
 * loading). README.md, "Configuration", lists every key.
 *
 * Errors: every problem in a file is reported, one line each, as
 *	FILE:LINE: FIELD: message
 * e.g. "gw.yaml:14: listeners[1].trust.mode: 'pined' is not one of pinned,
 * ca, mesh". FIELD is the key's path (dots for mappings, [i] for list items,
 * counted from 0); a YAML syntax error has no FIELD. The loader first checks
 * the document's shape (unknown, duplicate or missing keys, wrong types) and
 * reports every such error; only a well-formed file then gets the semantic
 * and cross-field checks (addresses, enums, files, duplicates ...), again
 * all of them. Past 100 error lines the rest are counted in one last line
 * ("FILE: N more errors not shown"). Values quoted from the file are made
 * printable, so each error is exactly one line. PINs are never in the
 * file and never in a message. What loads but deserves a word (plain
 * http:// to etcd) is a warning in the same format, kept in
 * cfg->warnings, not written to errs.
 *
 * Relative file paths in the file (certs, crl, pin_file ...) are resolved
 * against the directory of the config file; the struct holds the resolved
 * paths.
 *
 * Reload (SIGHUP, POST /v1/reload): gw_cfg_load() never touches a config
 * already loaded, so a reload is: load the new file into a new tree; on
 * success publish it (new snapshot) and free the old one once unused; on
 * failure report the errors and keep running on the old tree, which is
 * unchanged and still valid.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <sys/socket.h>

#include <openssl/types.h> /* BIO, for gw_material_bio */

#include "gw_err.h"
#include "policy_types.h" /* gw_service, gw_client_auth, gw_trust_mode, gw_crl_check, gw_proxy_protocol */

#define GW_CFG_MAX_PORTS 8
#define GW_CFG_MAX_WORKERS 64
#define GW_CFG_MAX_HSM_CPUS 256

enum gw_port_driver {
	GW_PORT_TAP,       /* kernel tap interface created by DPDK (net_tap) */
	GW_PORT_AF_PACKET, /* existing kernel interface (net_af_packet) */
	GW_PORT_AF_XDP,    /* existing kernel interface (net_af_xdp) */
	GW_PORT_MEMIF,     /* shared-memory link to another DPDK process (net_memif) */
	GW_PORT_PCI,       /* a NIC bound to vfio-pci, by PCI address */
};

enum gw_idle_mode {
	GW_IDLE_ADAPTIVE,  /* busy-poll under load, back off to short sleeps when idle */
	GW_IDLE_POLL,      /* always spin (a dedicated gateway core) */
	GW_IDLE_INTERRUPT, /* wait in epoll for RX interrupts: prompt, and no spinning */
};

enum gw_memif_role { GW_MEMIF_SERVER, GW_MEMIF_CLIENT };

/* An IPv4 endpoint. Both fields in network byte order. */
struct gw_cfg_ep {
	uint32_t ip;
	uint16_t port;
};

struct gw_cfg_port {
	char *name;
	enum gw_port_driver driver;
	char *device;                  /* tap/af_* iface name, memif socket path, PCI address */
	uint32_t ip;                   /* network byte order */
	uint8_t prefix_len;            /* from address: a.b.c.d/len */
	uint32_t gateway;              /* network byte order; 0 = none */
	uint16_t mtu;                  /* 0 = device default */
	enum gw_memif_role memif_role; /* memif only; default server */
	/* tap only: the kernel side's address (peer_address: a.b.c.d/len), set
	 * by mtlsgw once the tap exists; network byte order; 0 = none */
	uint32_t peer_ip;
	uint8_t peer_prefix_len;
};

/*
 * dataplane.tls: limits of every worker's TLS layer (dataplane/tls.h); they
 * apply per worker, to all its TLS listeners together. Durations in the
 * file are "500ms", "10s", "5m", "1h", "1d" (see README "Configuration").
 */
struct gw_cfg_dp_tls {
	uint32_t handshake_timeout_ms; /* accept to Finished; default 10 s */
	uint32_t idle_timeout_ms;      /* no plaintext either way; default 300 s */
	uint32_t max_handshakes;       /* concurrent per worker; default 512 */
};

/* dataplane.tcp: every worker's TCP stack (dataplane/tcp.h). */
#define GW_CFG_MAX_CONNECTIONS_DEFAULT 16384
struct gw_cfg_dp_tcp {
	uint32_t time_wait_ms;         /* TIME_WAIT; default 2 s */
	uint32_t handshake_timeout_ms; /* SYN_SENT/SYN_RCVD lifetime; default 10 s */
	uint32_t idle_timeout_ms;      /* default 300 s */
	uint32_t rto_min_ms;           /* lower bound of the RTO; default 200 ms */
	uint32_t sndbuf;               /* bytes per connection; default 256 KiB */
	uint32_t rcvbuf;               /* bytes per connection (window); default 256 KiB */
	uint32_t max_connections;      /* connection slots per worker; default 16384 */
};

/*
 * Lcore ids (workers, main_lcore) are logical, 0..127. Where each runs: an
 * id that is a CPU this process may use runs on that CPU; any other id runs
 * on the (id mod n)-th of the n allowed CPUs, so with more lcores than CPUs
 * the workers wrap round-robin (they then share CPUs). The main lcore only
 * sleeps in control, so it may share: when its id is not an allowed CPU it
 * floats on all of them. A 2-CPU box can run workers [0, 1] (main lcore 2,
 * on CPUs 0-1) or [1, 2] (main 0 on CPU 0, worker 2 on CPU 0 too). Configs
 * whose lcores are all allowed CPUs run exactly as before this rule.
 */
struct gw_cfg_dataplane {
	unsigned workers[GW_CFG_MAX_WORKERS]; /* lcore ids of the workers */
	unsigned n_workers;
	/* default: the lowest allowed CPU that is not a worker, else the lowest
	 * id that is not a worker (it then floats, see above) */
	unsigned main_lcore;
	bool no_huge;       /* EAL --no-huge (tests, demo) */
	unsigned memory_mb; /* EAL -m; default 512 */
	char *file_prefix;  /* EAL --file-prefix; default "mtlsgw" */
	enum gw_idle_mode idle;
	struct gw_cfg_port ports[GW_CFG_MAX_PORTS];
	unsigned n_ports;
	struct gw_cfg_dp_tls tls; /* defaults filled in when the section is absent */
	struct gw_cfg_dp_tcp tcp;
};

/*
 * One certificate, CRL or bundle file as the config loader read it, once.
 * Every later reader (trust build, its fingerprint, the expiry metrics,
 * status) parses these bytes, never the file again, so what was checked is
 * what is built and fingerprinted; a reload is a new load and re-reads.
 * Owned by the config (freed by gw_cfg_free) or by whoever called
 * gw_material_read (gw_material_fini).
 */
/* the largest certificate/CRL/bundle file anyone reads: larger is a mistake */
#define GW_MATERIAL_MAX (4u << 20)

struct gw_material {
	char *path;         /* the resolved path, for messages only */
	uint8_t *bytes;     /* the file's content; a NUL follows bytes[len] */
	size_t len;         /* bytes of content, > 0 */
	uint8_t sha256[32]; /* SHA-256 of bytes[0..len) */
};

struct gw_cfg_identity {
	char *cert;                /* PEM file: leaf + intermediates */
	struct gw_material cert_m; /* its bytes, read once by the loader */
	char *key;                 /* RFC 7512 pkcs11: URI (never contains pin-value) */
	char **sni;                /* server names this identity answers for */
	unsigned n_sni;
	unsigned line; /* line of `key` in the file, for gw_cfg_check_keys() messages */
};

struct gw_cfg_tls {
	int min_version;     /* TLS1_2_VERSION or TLS1_3_VERSION */
	char **ciphersuites; /* OpenSSL names; NULL = OpenSSL's default */
	unsigned n_ciphersuites;
	struct gw_cfg_identity *identities; /* first is the default */
	unsigned n_identities;
	enum gw_client_auth client_auth;
	/*
	 * tls.ticket_lifetime (seconds): how long a session ticket resumes, and
	 * the rotation period of the ticket keys every worker shares
	 * (control/tls_ctx.h). 0 = the default, 3600. In the file a duration,
	 * e.g. "1h", "30m", "3600s"; at most 7d (RFC 8446 4.6.1).
	 */
	unsigned ticket_lifetime_s;
	/*
	 * tls.session_tickets: false. No ticket is issued and none is accepted:
	 * every connection is a full handshake, verified against the trust of
	 * the moment. Default (false here): one stateless ticket per full
	 * handshake. Issuing it re-encodes the session with the client's
	 * certificate, a sixth of a full handshake's CPU in OpenSSL 3.0.
	 */
	bool no_tickets;
};

struct gw_cfg_allow {
	char **spiffe; /* "spiffe://td/path/" + '*': a trailing '*' matches one segment */
	unsigned n_spiffe;
	char **dns;
	unsigned n_dns;
	char **cn;
	unsigned n_cn;
};

struct gw_cfg_trust {
	enum gw_trust_mode mode;
	char **certs; /* ca: anchors; pinned: the pinned certs */
	unsigned n_certs;
	uint8_t (*pins_sha256)[32]; /* pinned: DER fingerprints */
	unsigned n_pins;
	char **crl;
	unsigned n_crl;
	/*
	 * The loader's bytes of certs[i] / crl[i] (n_certs / n_crl entries).
	 * NULL in a config built by hand (tests, tools): gw_trust_create then
	 * reads the paths itself.
	 */
	struct gw_material *certs_m;
	struct gw_material *crl_m;
	enum gw_crl_check crl_check; /* default chain (0) */
	unsigned max_depth;          /* default 4 */
	struct gw_cfg_allow allow;
};

struct gw_cfg_upstream {
	struct gw_cfg_ep *servers;
	unsigned n_servers;
	enum gw_proxy_protocol proxy_protocol;
};

struct gw_cfg_listener {
	char *name;
	struct gw_cfg_ep addr;
	enum gw_service service;
	unsigned backlog; /* SYN backlog before SYN cookies; default 1024 */
	bool has_tls;     /* tls-* services */
	struct gw_cfg_tls tls;
	bool has_trust;
	struct gw_cfg_trust trust;
	bool has_upstream; /* *-proxy services */
	struct gw_cfg_upstream upstream;
};

/* One hsm.env entry: a variable the PKCS#11 module reads (SOFTHSM2_CONF). */
struct gw_cfg_env {
	char *name; /* [A-Z_][A-Z0-9_]*, never hsm.pin_env */
	char *value;
};
#define GW_CFG_MAX_ENV 32

struct gw_cfg_hsm {
	char *module;   /* PKCS#11 module path; default SoftHSM2's */
	char *pin_file; /* one of pin_file / pin_env */
	char *pin_env;
	/* hsm.env, in file order: set in the process environment before the
	 * module loads (gateway start; the reload's PIN-check child inherits
	 * them). Read at start only. */
	struct gw_cfg_env env[GW_CFG_MAX_ENV];
	unsigned n_env;
	/* signatures for the workers, on HSM threads (hsm.h); read at start */
	uint32_t threads;         /* HSM threads; default 16, 1..256 */
	uint32_t queue;           /* signatures waiting for a thread; default 1024 */
	uint32_t sign_timeout_ms; /* a parked handshake's signature fails after; default 2000 */
	uint32_t inline_below_us; /* sign on the worker below this mean time; 0 (default): never */
	uint16_t cpus[GW_CFG_MAX_HSM_CPUS]; /* the HSM threads' CPUs; none: those no worker uses */
	unsigned n_cpus;
};

struct gw_cfg_admin {
	char *socket; /* unix socket path; NULL = no admin API */
	/*
	 * admin.metrics_address: "a.b.c.d:port" or "[v6]:port" as written (for
	 * messages); NULL = no Prometheus listener. metrics_sa is it parsed (a
	 * struct sockaddr_in or sockaddr_in6, metrics_sa_len bytes). Read at
	 * start only (docs/config.md "admin").
	 */
	char *metrics_address;
	struct sockaddr_storage metrics_sa;
	socklen_t metrics_sa_len;
};

/* access_log: (docs/config.md "access_log"): where each connection's line goes. */
enum gw_cfg_alog_dest {
	GW_CFG_ALOG_STDERR,  /* the gateway's stderr (the journal under systemd) */
	GW_CFG_ALOG_JOURNAL, /* sd_journal_send, SYSLOG_IDENTIFIER=mtlsgw-access */
	GW_CFG_ALOG_FILE,    /* appended to path, reopened on SIGHUP (logrotate) */
};

enum gw_cfg_alog_format { GW_CFG_ALOG_TEXT, GW_CFG_ALOG_JSON };

#define GW_CFG_ALOG_REFUSALS_DEFAULT 10

struct gw_cfg_access_log {
	/*
	 * Accepted connections are logged only when enabled; refused ones
	 * always, rate limited per reason: to dest when enabled, else to the
	 * gateway's own log.
	 */
	bool enabled;
	enum gw_cfg_alog_dest dest;
	char *path; /* GW_CFG_ALOG_FILE: resolved against the config's directory */
	enum gw_cfg_alog_format format;
	unsigned refusals_per_second; /* lines per reason per second; then one summary */
};

enum gw_ca_type {
	GW_CA_BUILTIN,  /* root + issuer keys generated in the HSM, state in SQLite */
	GW_CA_PROVIDED, /* operator's CA certificate, its key in the HSM */
	GW_CA_CFSSL,    /* an external `cfssl serve` signs */
};

/* Type of the keys mtlsgw generates in the HSM for a backend. */
enum gw_key_type { GW_KEY_EC_P256, GW_KEY_EC_P384, GW_KEY_RSA_2048, GW_KEY_RSA_3072 };

/* mtls.backends[i]; the fields of `conf` that do not apply to type are 0/NULL. */
/*
 * Longest CA backend name: its HSM key labels "ca-<name>-root" and
 * "ca-<name>-issuer" must fit GW_HSM_LABEL_MAX (64) bytes and its
 * certificates' CN "mtlsgw <name> issuer" the 64 characters X.509 allows.
 */
#define GW_CFG_CA_NAME_MAX 50
/* Longest listener name with an mtls section: its key is "gw-id-<name>" (64 bytes). */
#define GW_CFG_MESH_LISTENER_NAME_MAX 58

struct gw_cfg_ca_backend {
	char *name;
	enum gw_ca_type type;
	enum gw_key_type key_type; /* conf.key_type; default ec-p256 (all types) */
	uint64_t root_validity_s;  /* builtin: conf.root_validity; default 10y */
	uint64_t leaf_validity_s;  /* conf.leaf_validity; default 72h (all types) */
	char *cert;                /* provided: CA cert PEM (checked: CA, keyCertSign) */
	struct gw_material cert_m; /* provided: its bytes, read once by the loader */
	char *key;                 /* provided: pkcs11: URI of the CA key */
	char *url;                 /* cfssl: http(s)://host:port */
	char *profile;             /* cfssl: signing profile; NULL = server default */
	char *ca_file;             /* cfssl: PEM CA(s) for an https url; NULL = system store */
	unsigned line;             /* line of conf.key in the file, for messages */
};

struct gw_cfg_mtls {
	char *trust_domain;    /* SPIFFE trust domain; NULL = generate one */
	char *enabled_backend; /* name of one of backends (key enabledBackend) */
	struct gw_cfg_ca_backend *backends;
	unsigned n_backends;
};

/*
 * cluster: several gateways (behind ECMP or a load balancer) sharing their
 * session ticket keys through etcd (control/cluster.h, docs/operations.md "Fleet").
 * Read at start only: a reload that changes it is refused.
 */
#define GW_CFG_MAX_ETCD 16
#define GW_CFG_CLUSTER_NAME_MAX 63
struct gw_cfg_cluster {
	char *name;                       /* keys under /mtlsgw/<name>/; [A-Za-z0-9._-] */
	char *node;                       /* unique per box, same charset; default the host name */
	char *endpoints[GW_CFG_MAX_ETCD]; /* etcd.endpoints: http(s)://host:port */
	unsigned n_endpoints;             /* 1 .. GW_CFG_MAX_ETCD */
	char *etcd_ca;                    /* etcd.ca: PEM CA for https://, or NULL */
	char *etcd_cert;                  /* etcd.cert: PEM client certificate, or NULL */
	char *etcd_key;                   /* etcd.key: PEM file or pkcs11: URI, with etcd_cert */
	char *ticket_key;                 /* pkcs11: URI of the AES-256 wrapping key */
	unsigned lease_ttl_s;             /* membership/leader lease; default 10, 2..300 */
	unsigned timeout_ms;              /* each etcd request; default 2000, 100..60000 */
};

struct gw_cfg {
	char *path;          /* the file it came from */
	uint64_t generation; /* set by whoever publishes it; 0 from the loader */
	struct gw_cfg_dataplane dataplane;
	struct gw_cfg_listener *listeners;
	unsigned n_listeners;
	struct gw_cfg_hsm hsm;
	char *state_dir; /* default "/var/lib/mtlsgw" */
	struct gw_cfg_admin admin;
	struct gw_cfg_access_log access_log;
	bool has_mtls; /* the mtls: section is present */
	struct gw_cfg_mtls mtls;
	bool has_cluster; /* the cluster: section is present */
	struct gw_cfg_cluster cluster;
	/*
	 * What the loader accepted but an operator should hear about (plain
	 * http:// etcd endpoints ...), one line each in the errors' format
	 * "FILE:LINE: FIELD: message". Whoever runs the config logs them (the
	 * gateway at start and reload, --check as warnings); the loader writes
	 * them nowhere.
	 */
	char **warnings;
	unsigned n_warnings;
};

/*
 * Parse a TCP listen address: "a.b.c.d:port" (IPv4 dotted quad) or
 * "[IPv6]:port" (brackets required), port 1..65535 in decimal; no host
 * names, no zone ids. Fills *sa (sockaddr_in or sockaddr_in6, port in
 * network order) and *len. Returns 0, or -EINVAL with why[whylen] saying
 * what is wrong. Thread-safe.
 */
GW_MUST_CHECK int gw_cfg_parse_listen(
	const char *s, struct sockaddr_storage *sa, socklen_t *len, char *why, size_t whylen);

/* A listener's service as the config spells it ("tls-proxy"); "?" if unknown. */
const char *gw_cfg_service_name(enum gw_service s);

/*
 * Load and validate the file at path. On success *out is a new config the
 * caller frees with gw_cfg_free(). On failure returns -GW_E_CONFIG (also for
 * a file that is not a regular file or is over 1 MiB), -ENOENT / -EACCES /
 * -EIO for an unreadable file, -ENOMEM; *out is untouched, every error
 * found is written to errs (one line each: "FILE:LINE: FIELD: what was
 * expected", errs may be NULL) and gw_err_msg() holds the first one.
 * Thread-safe (no global state).
 */
GW_MUST_CHECK int gw_cfg_load(const char *path, struct gw_cfg **out, FILE *errs);

/*
 * The same from a buffer (admin API, fuzzing). name is used in messages
 * and as cfg->path; relative paths resolve against its directory (the
 * current directory when name has none). Same returns as gw_cfg_load().
 */
GW_MUST_CHECK int gw_cfg_load_mem(
	const char *name, const void *buf, size_t len, struct gw_cfg **out, FILE *errs);

/*
 * Check through the HSM that every certificate is paired with its key:
 * each listeners[].tls.identity[] cert with its key, and each provided CA
 * backend's conf.cert with its conf.key. The token signs a random challenge
 * and the certificate's public key must verify it (gw_hsm_cert_matches_key),
 * so nothing leaves the token. Opens the token(s) with cfg->hsm (module,
 * PIN) and closes them before returning: call it in the process that will
 * use the keys (after any fork; hsm.h), after gw_cfg_load() succeeded, on
 * start and on reload, and treat a failure like a load failure (keep the
 * old config). Not part of gw_cfg_load() so pure file checks (trust check,
 * the fuzzer) need no token.
 * Errors go to errs in gw_cfg_load()'s format, e.g.
 * "gw.yaml:19: listeners[0].tls.identity[0].key: certificate '/CN=api' does
 * not match key 'pkcs11:...' (certificate /etc/mtlsgw/api.pem)".
 * Returns 0; -GW_E_CONFIG when a certificate does not match or its key is
 * not on the token; the hsm module's code (-GW_E_HSM_MODULE, _TOKEN, _PIN,
 * _USAGE ...) when the token cannot be used. gw_err_msg() holds the first.
 */
GW_MUST_CHECK int gw_cfg_check_keys(const struct gw_cfg *cfg, FILE *errs);

/*
 * Read the regular file at path (at most max bytes) into *out, which the
 * caller zeroed: bytes, length, SHA-256 and a copy of path. The file is
 * opened once, without following it into a FIFO or device. Returns 0;
 * -errno of open/read (-ENOENT, -EACCES ...), -EINVAL when path is not a
 * regular file, -ENODATA when it is empty, -EFBIG when larger than max, -ENOMEM, -GW_E_TLS
 * when SHA-256 fails; gw_err holds "PATH: cause". Thread-safe.
 */
GW_MUST_CHECK int gw_material_read(const char *path, size_t max, struct gw_material *out);

/* Free what gw_material_read filled and zero *m. NULL ok. */
void gw_material_fini(struct gw_material *m);

/*
 * The bytes of one configured file for a reader after the loader: loaded
 * (the loader's, when the config came from gw_cfg_load: the file is not
 * opened again), else, for a config or identity built by hand (loaded
 * NULL), path read once through gw_material_read into *own, which the caller
 * zeroed and gw_material_fini's after use. *out points at one of the two.
 * what names the file in messages ("trust cert"). Returns 0; -GW_E_CONFIG
 * ("WHAT 'PATH': cannot open: ..." or no bytes in loaded), -EINVAL.
 * Thread-safe.
 */
GW_MUST_CHECK int gw_material_get(const struct gw_material *loaded, const char *path,
	const char *what, struct gw_material *own, const struct gw_material **out);

/*
 * A read-only memory BIO over m's bytes (BIO_free it; m must outlive it);
 * NULL when m holds no bytes or on allocation failure. Thread-safe.
 */
BIO *gw_material_bio(const struct gw_material *m);

/* Free a config and everything it owns. NULL is fine. */
void gw_cfg_free(struct gw_cfg *cfg);

/* Look a listener up by name; NULL if absent. */
const struct gw_cfg_listener *gw_cfg_listener_find(const struct gw_cfg *cfg, const char *name);

#endif /* GW_CONFIG_H */
