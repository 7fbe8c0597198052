/* SPDX-License-Identifier: BSD-3-Clause */
/* svc_internal.h - per-service listen functions behind gw_svc_listen(). */
#ifndef GW_SVC_INTERNAL_H
#define GW_SVC_INTERNAL_H

#include "svc.h"

GW_MUST_CHECK int gw_svc_echo_listen(struct gw_tcp_stack *s, const struct gw_svc_params *p);
GW_MUST_CHECK int gw_svc_proxy_listen(struct gw_tcp_stack *s, const struct gw_svc_params *p);

#endif /* GW_SVC_INTERNAL_H */
