/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_cluster_fmt.c - the fleet's etcd values as `mtlsgw-ctl cluster
 * status` shows them (ctl_cluster.h): strict on types, no I/O.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ctl_cluster.h"

const char *const gw_ctl_member_header[GW_CTL_MEMBER_COLS] = {
	"NODE", "PID", "GENERATION", "TICKET SERIAL", "LEADER", "HEARTBEAT", "VERSION", "CONFIG"};

/* o[k] if it is a JSON integer >= 0, else null (a new reference either way). */
static json_t *
uint_or_null(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) && json_integer_value(v) >= 0 ? json_incref(v) : json_null();
}

static json_t *
str_or_null(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_incref(v) : json_null();
}

/* o[k] as unix seconds (integer, or a finite real >= 0), else null. */
static json_t *
time_or_null(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (json_is_integer(v) && json_integer_value(v) >= 0)
		return json_incref(v);
	if (json_is_real(v) && isfinite(json_real_value(v)) && json_real_value(v) >= 0 &&
		json_real_value(v) < 1e15)
		return json_integer((json_int_t)json_real_value(v));
	return json_null();
}

json_t *
gw_ctl_cluster_member(
	const char *node, const uint8_t *val, size_t len, const char *leader, int64_t now)
{
	json_t *m = json_object(), *v = json_loadb((const char *)val, len, 0, NULL), *hb;
	const char *says;
	int bad = 0;

	if (m == NULL) {
		json_decref(v);
		return NULL;
	}
	bad |= json_object_set_new(m, "Node", json_string(node));
	if (!json_is_object(v)) {
		json_decref(v);
		v = json_object(); /* every field null below */
		bad |= json_object_set_new(m, "Error", json_string("not a JSON object"));
	} else if ((says = json_string_value(json_object_get(v, "node"))) &&
		   strcmp(says, node) != 0) {
		char why[160];

		snprintf(why, sizeof(why), "its value names node '%.64s'", says);
		bad |= json_object_set_new(m, "Error", json_string(why));
	}
	bad |= json_object_set_new(m, "Pid", uint_or_null(v, "pid"));
	bad |= json_object_set_new(m, "Generation", uint_or_null(v, "generation"));
	bad |= json_object_set_new(m, "TicketSerial", uint_or_null(v, "ticket_serial"));
	bad |= json_object_set_new(
		m, "Leader", json_boolean(leader != NULL && strcmp(leader, node) == 0));
	hb = time_or_null(v, "heartbeat");
	bad |= json_object_set_new(m, "Heartbeat", hb);
	if (json_is_integer(hb))
		bad |= json_object_set_new(m, "HeartbeatAge",
			json_integer(now > json_integer_value(hb)
					     ? (json_int_t)(now - json_integer_value(hb))
					     : 0));
	else
		bad |= json_object_set_new(m, "HeartbeatAge", json_null());
	bad |= json_object_set_new(m, "Started", time_or_null(v, "started"));
	bad |= json_object_set_new(m, "Version", str_or_null(v, "version"));
	bad |= json_object_set_new(m, "Etcd", str_or_null(v, "etcd"));
	{
		json_t *cf = json_object_get(v, "config");

		bad |= json_object_set_new(m, "ConfigRevision", uint_or_null(cf, "revision"));
		bad |= json_object_set_new(m, "ConfigApplied", uint_or_null(cf, "applied"));
		bad |= json_object_set_new(m, "ConfigStatus", str_or_null(cf, "status"));
		bad |= json_object_set_new(m, "ConfigMessage", str_or_null(cf, "message"));
	}
	json_decref(v);
	if (bad) {
		json_decref(m);
		return NULL;
	}
	return m;
}

static void
cell_int(json_t *m, const char *k, char *out, const char *suffix)
{
	json_t *v = json_object_get(m, k);

	if (json_is_integer(v))
		snprintf(out, GW_CTL_MEMBER_CELL, "%" JSON_INTEGER_FORMAT "%s",
			json_integer_value(v), suffix);
	else
		snprintf(out, GW_CTL_MEMBER_CELL, "-");
}

void
gw_ctl_cluster_member_cells(json_t *m, char cells[GW_CTL_MEMBER_COLS][GW_CTL_MEMBER_CELL])
{
	const char *node = json_string_value(json_object_get(m, "Node"));
	const char *ver = json_string_value(json_object_get(m, "Version"));

	snprintf(cells[0], GW_CTL_MEMBER_CELL, "%s%s", node ? node : "-",
		json_object_get(m, "Error") ? " ?" : "");
	cell_int(m, "Pid", cells[1], "");
	cell_int(m, "Generation", cells[2], "");
	cell_int(m, "TicketSerial", cells[3], "");
	snprintf(cells[4], GW_CTL_MEMBER_CELL, "%s",
		json_is_true(json_object_get(m, "Leader")) ? "yes" : "no");
	cell_int(m, "HeartbeatAge", cells[5], "s");
	snprintf(cells[6], GW_CTL_MEMBER_CELL, "%s", ver && *ver ? ver : "-");
	{
		json_t *rev = json_object_get(m, "ConfigRevision");
		const char *st = json_string_value(json_object_get(m, "ConfigStatus"));

		if (json_is_integer(rev) && json_integer_value(rev) > 0 && st != NULL)
			snprintf(cells[7], GW_CTL_MEMBER_CELL, "%" JSON_INTEGER_FORMAT " %s",
				json_integer_value(rev), st);
		else
			snprintf(cells[7], GW_CTL_MEMBER_CELL, "-");
	}
}

json_t *
gw_ctl_cluster_tickets(const uint8_t *val, size_t len)
{
	json_t *v = json_loadb((const char *)val, len, 0, NULL), *t = NULL;
	json_t *serial = json_object_get(v, "serial");

	if (json_is_integer(serial) && json_integer_value(serial) >= 0)
		t = json_pack("{s:O,s:o}", "Serial", serial, "Created", time_or_null(v, "created"));
	json_decref(v);
	return t;
}
