/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_ctl_cluster.c - tools/ctl_cluster_fmt.c: the fleet's member and
 * tickets values (control/cluster.h) as `mtlsgw-ctl cluster status` shows
 * them. A full member, the leader decided by the leader key, missing and
 * mistyped fields, values that are not JSON or name another node, a
 * heartbeat ahead of our clock, and the tickets value without its sealed
 * keys.
 */
#include <jansson.h>

#include "ctl_cluster.h"
#include "gw_test.h"

#define NOW 1800000000

static json_t *
member(const char *node, const char *val, const char *leader)
{
	return gw_ctl_cluster_member(node, (const uint8_t *)val, strlen(val), leader, NOW);
}

static json_int_t
geti(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

int
main(void)
{
	char c[GW_CTL_MEMBER_COLS][GW_CTL_MEMBER_CELL];

	GW_TEST_BEGIN();
	{ /* every field, as the agent writes them; this node leads */
		json_t *m = member("gw-a",
			"{\"node\":\"gw-a\",\"pid\":4242,\"started\":1799999000,"
			"\"heartbeat\":1799999997,\"generation\":7,\"ticket_serial\":3,"
			"\"leader\":true,\"etcd\":\"http://10.0.0.1:2379\",\"version\":\"0.1.0\"}",
			"gw-a");

		EXPECT_TRUE(m != NULL);
		EXPECT_STREQ(json_string_value(json_object_get(m, "Node")), "gw-a");
		EXPECT_EQ(geti(m, "Pid"), 4242);
		EXPECT_EQ(geti(m, "Generation"), 7);
		EXPECT_EQ(geti(m, "TicketSerial"), 3);
		EXPECT_TRUE(json_is_true(json_object_get(m, "Leader")));
		EXPECT_EQ(geti(m, "Heartbeat"), 1799999997);
		EXPECT_EQ(geti(m, "HeartbeatAge"), 3);
		EXPECT_EQ(geti(m, "Started"), 1799999000);
		EXPECT_STREQ(json_string_value(json_object_get(m, "Version")), "0.1.0");
		EXPECT_STREQ(json_string_value(json_object_get(m, "Etcd")), "http://10.0.0.1:2379");
		EXPECT_TRUE(json_object_get(m, "Error") == NULL);
		gw_ctl_cluster_member_cells(m, c);
		EXPECT_STREQ(c[0], "gw-a");
		EXPECT_STREQ(c[1], "4242");
		EXPECT_STREQ(c[2], "7");
		EXPECT_STREQ(c[3], "3");
		EXPECT_STREQ(c[4], "yes");
		EXPECT_STREQ(c[5], "3s");
		EXPECT_STREQ(c[6], "0.1.0");
		json_decref(m);
	}
	{ /* the leader key decides, not the member's own (older) flag */
		json_t *m = member("gw-b", "{\"node\":\"gw-b\",\"leader\":true}", "gw-a");

		EXPECT_TRUE(json_is_false(json_object_get(m, "Leader")));
		json_decref(m);
		m = member("gw-b", "{\"node\":\"gw-b\",\"leader\":true}", NULL);
		EXPECT_TRUE(json_is_false(json_object_get(m, "Leader")));
		gw_ctl_cluster_member_cells(m, c);
		EXPECT_STREQ(c[4], "no");
		json_decref(m);
		/* a name that only starts like the leader's is not it */
		m = member("gw-a2", "{}", "gw-a");
		EXPECT_TRUE(json_is_false(json_object_get(m, "Leader")));
		json_decref(m);
	}
	{ /* missing and mistyped fields: null and "-", never a guess */
		json_t *m = member("gw-c",
			"{\"pid\":\"4242\",\"generation\":-1,\"ticket_serial\":1.5,"
			"\"heartbeat\":\"now\",\"version\":7}",
			"gw-a");

		EXPECT_TRUE(json_is_null(json_object_get(m, "Pid")));
		EXPECT_TRUE(json_is_null(json_object_get(m, "Generation")));
		EXPECT_TRUE(json_is_null(json_object_get(m, "TicketSerial")));
		EXPECT_TRUE(json_is_null(json_object_get(m, "Heartbeat")));
		EXPECT_TRUE(json_is_null(json_object_get(m, "HeartbeatAge")));
		EXPECT_TRUE(json_is_null(json_object_get(m, "Started")));
		EXPECT_TRUE(json_is_null(json_object_get(m, "Version")));
		EXPECT_TRUE(json_object_get(m, "Error") == NULL); /* no "node": the key's */
		gw_ctl_cluster_member_cells(m, c);
		EXPECT_STREQ(c[0], "gw-c");
		for (int i = 1; i < GW_CTL_MEMBER_COLS; i++)
			if (i != 4)
				EXPECT_STREQ(c[i], "-");
		json_decref(m);
	}
	{ /* a real heartbeat; one ahead of our clock is 0 s old */
		json_t *m = member("gw-d", "{\"heartbeat\":1799999990.75}", NULL);

		EXPECT_EQ(geti(m, "Heartbeat"), 1799999990);
		EXPECT_EQ(geti(m, "HeartbeatAge"), 10);
		json_decref(m);
		m = member("gw-d", "{\"heartbeat\":1800000005}", NULL);
		EXPECT_EQ(geti(m, "HeartbeatAge"), 0);
		json_decref(m);
		m = member("gw-d", "{\"heartbeat\":-5}", NULL);
		EXPECT_TRUE(json_is_null(json_object_get(m, "HeartbeatAge")));
		json_decref(m);
		m = member("gw-d", "{\"heartbeat\":1e300}", NULL);
		EXPECT_TRUE(json_is_null(json_object_get(m, "Heartbeat")));
		json_decref(m);
	}
	{ /* not JSON, not an object, another node's value: kept, marked */
		static const char *const bad[] = {"", "garbage", "[1,2]", "\"gw-e\"", "{\"pid\":"};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			json_t *m = member("gw-e", bad[i], "gw-e");

			EXPECT_STREQ(json_string_value(json_object_get(m, "Error")),
				"not a JSON object");
			EXPECT_TRUE(json_is_true(json_object_get(m, "Leader")));
			EXPECT_TRUE(json_is_null(json_object_get(m, "Pid")));
			gw_ctl_cluster_member_cells(m, c);
			EXPECT_STREQ(c[0], "gw-e ?");
			EXPECT_STREQ(c[4], "yes");
			json_decref(m);
		}
		json_t *m = member("gw-f", "{\"node\":\"gw-g\",\"pid\":1}", NULL);

		EXPECT_CONTAINS(json_string_value(json_object_get(m, "Error")), "node 'gw-g'");
		EXPECT_EQ(geti(m, "Pid"), 1);
		gw_ctl_cluster_member_cells(m, c);
		EXPECT_STREQ(c[0], "gw-f ?");
		json_decref(m);
	}
	{ /* NUL bytes in a value: not JSON (json_loadb sees them) */
		json_t *m = gw_ctl_cluster_member(
			"gw-h", (const uint8_t *)"{\"pid\":1}\0x", 11, NULL, NOW);

		EXPECT_TRUE(json_object_get(m, "Error") != NULL);
		json_decref(m);
	}
	{ /* a long version is cut to the cell, not overflowed */
		char val[400];
		json_t *m;

		memset(val, 0, sizeof(val));
		strcpy(val, "{\"version\":\"");
		memset(val + strlen(val), 'v', 300);
		strcat(val, "\"}");
		m = member("gw-i", val, NULL);
		gw_ctl_cluster_member_cells(m, c);
		EXPECT_EQ(strlen(c[6]), GW_CTL_MEMBER_CELL - 1);
		json_decref(m);
	}
	{ /* tickets: serial and created, never the sealed keys */
		const char *v = "{\"serial\":3,\"created\":1799996400,\"sealed\":\"c2VjcmV0\"}";
		json_t *t = gw_ctl_cluster_tickets((const uint8_t *)v, strlen(v));
		char *s;

		EXPECT_EQ(geti(t, "Serial"), 3);
		EXPECT_EQ(geti(t, "Created"), 1799996400);
		EXPECT_EQ(json_object_size(t), 2);
		s = json_dumps(t, 0);
		EXPECT_TRUE(s && strstr(s, "c2VjcmV0") == NULL);
		free(s);
		json_decref(t);
		v = "{\"serial\":1}";
		t = gw_ctl_cluster_tickets((const uint8_t *)v, strlen(v));
		EXPECT_EQ(geti(t, "Serial"), 1);
		EXPECT_TRUE(json_is_null(json_object_get(t, "Created")));
		json_decref(t);
		static const char *const bad[] = {
			"", "[]", "{\"serial\":\"3\"}", "{\"serial\":-1}", "{\"created\":1}"};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			EXPECT_TRUE(gw_ctl_cluster_tickets(
					    (const uint8_t *)bad[i], strlen(bad[i])) == NULL);
	}
	GW_TEST_END();
}
