/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_err.c - per-thread error slot (see gw_err.h).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "gw_err.h"

static _Thread_local struct gw_err gw_err_tls;

struct gw_err *
gw_err_get(void)
{
	return &gw_err_tls;
}

int
gw_err_set(int code, const char *where)
{
	gw_err_tls.code = code;
	gw_err_tls.where = where;
	gw_err_tls.msg[0] = '\0';
	return code;
}

int
gw_err_setf(int code, const char *where, const char *fmt, ...)
{
	va_list ap;

	gw_err_tls.code = code;
	gw_err_tls.where = where;
	va_start(ap, fmt);
	vsnprintf(gw_err_tls.msg, sizeof(gw_err_tls.msg), fmt, ap);
	va_end(ap);
	return code;
}

int
gw_err_add_ossl(void)
{
	unsigned long e = ERR_get_error();
	char buf[160];
	size_t n;

	if (e != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		n = strlen(gw_err_tls.msg);
		snprintf(
			gw_err_tls.msg + n, sizeof(gw_err_tls.msg) - n, "%s%s", n ? ": " : "", buf);
	}
	ERR_clear_error();
	return gw_err_tls.code;
}

void
gw_err_clear(void)
{
	memset(&gw_err_tls, 0, sizeof(gw_err_tls));
}

const char *
gw_err_name(int code)
{
	static const char *const names[] = {
		[GW_E_TLS - GW_E_BASE] = "GW_E_TLS",
		[GW_E_HSM - GW_E_BASE] = "GW_E_HSM",
		[GW_E_HSM_MODULE - GW_E_BASE] = "GW_E_HSM_MODULE",
		[GW_E_HSM_TOKEN - GW_E_BASE] = "GW_E_HSM_TOKEN",
		[GW_E_HSM_PIN - GW_E_BASE] = "GW_E_HSM_PIN",
		[GW_E_HSM_KEY - GW_E_BASE] = "GW_E_HSM_KEY",
		[GW_E_HSM_USAGE - GW_E_BASE] = "GW_E_HSM_USAGE",
		[GW_E_CONFIG - GW_E_BASE] = "GW_E_CONFIG",
		[GW_E_TRUST - GW_E_BASE] = "GW_E_TRUST",
		[GW_E_PARSE - GW_E_BASE] = "GW_E_PARSE",
		[GW_E_STATE - GW_E_BASE] = "GW_E_STATE",
		[GW_E_CA - GW_E_BASE] = "GW_E_CA",
		[GW_E_ETCD - GW_E_BASE] = "GW_E_ETCD",
	};
	/* long: -INT_MIN does not fit an int */
	long c = code < 0 ? -(long)code : code;

	if (c > GW_E_BASE && c < GW_E_MAX)
		return names[c - GW_E_BASE];
	switch (c) {
	case 0:
		return "OK";
	case EINVAL:
		return "EINVAL";
	case ENOMEM:
		return "ENOMEM";
	case ENOENT:
		return "ENOENT";
	case EAGAIN:
		return "EAGAIN";
	case EEXIST:
		return "EEXIST";
	case ENOSPC:
		return "ENOSPC";
	case EIO:
		return "EIO";
	case EPERM:
		return "EPERM";
	case EACCES:
		return "EACCES";
	default:
		return "error";
	}
}

const char *
gw_err_msg(void)
{
	if (gw_err_tls.msg[0] == '\0') {
		if (gw_err_tls.code < 0 && gw_err_tls.code > -GW_E_BASE)
			snprintf(gw_err_tls.msg, sizeof(gw_err_tls.msg), "%s",
				strerror(-gw_err_tls.code));
		else
			snprintf(gw_err_tls.msg, sizeof(gw_err_tls.msg), "%s",
				gw_err_name(gw_err_tls.code));
	}
	return gw_err_tls.msg;
}
