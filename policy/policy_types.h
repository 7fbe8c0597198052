/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * policy_types.h - the enums and plain types the worker side of policy
 * shares with the config loader. Types only, no prototypes, no includes
 * beyond <stdint.h>: control/config.h includes this (config parses strings
 * into these values), and a worker compiles it without seeing config.h.
 */
#ifndef GW_POLICY_TYPES_H
#define GW_POLICY_TYPES_H

#include <stdint.h>

/* What a listener serves: the one service enum of config, snapshot and dataplane. */
enum gw_service {
	GW_SVC_ECHO,      /* TCP echo, diagnostic */
	GW_SVC_TCP_PROXY, /* plain TCP relay to upstream */
	GW_SVC_TLS_ECHO,  /* terminate TLS, echo plaintext */
	GW_SVC_TLS_PROXY, /* terminate TLS, relay plaintext to upstream */
};

enum gw_client_auth { GW_CLIENT_AUTH_REQUIRED, GW_CLIENT_AUTH_OPTIONAL, GW_CLIENT_AUTH_NONE };
enum gw_trust_mode { GW_TRUST_PINNED, GW_TRUST_CA, GW_TRUST_MESH };
/* trust.crl_check: which certificates of a path need a CRL (control/trust.h) */
enum gw_crl_check { GW_CRL_CHECK_CHAIN, GW_CRL_CHECK_LEAF };
enum gw_proxy_protocol { GW_PROXY_OFF, GW_PROXY_V2 };

/* An IPv4 endpoint as workers see it. Both fields in network byte order. */
struct gw_ep {
	uint32_t ip;
	uint16_t port;
};

#endif /* GW_POLICY_TYPES_H */
