/* SPDX-License-Identifier: BSD-3-Clause */
/* placeholder: filled in by its module work */
extern int gw_placeholder_port;
