/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_net.c - the parts of drivers/ and the dataplane that need no EAL:
 * devargs per driver (and refusals), the generated EAL command line, and
 * the Toeplitz hash that software dispatch and TCP's flow_is_local share.
 */
#include <arpa/inet.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>

#include <rte_thash.h>

#include "dataplane.h"
#include "gw_test.h"
#include "port.h"

static struct gw_dp_params
one_tap(void)
{
	struct gw_dp_params p = {0};

	p.workers[0] = 1;
	p.n_workers = 1;
	p.no_huge = true;
	p.memory_mb = 256;
	p.ports[0].dev = (struct gw_port_params){
		.name = "wan", .kind = GW_PORT_KIND_TAP, .device = "mtlsgw0"};
	p.n_ports = 1;
	return p;
}

int
main(void)
{
	char buf[1024];
	bool pci;

	GW_TEST_BEGIN();
	{ /* devargs per driver */
		struct gw_port_params p = {.name = "wan", .device = "eth1", .n_queues = 2};

		p.kind = GW_PORT_KIND_TAP;
		EXPECT_OK(gw_port_devargs(&p, 0, buf, sizeof(buf), &pci));
		EXPECT_STREQ(buf, "net_tap0,iface=eth1");
		EXPECT_TRUE(!pci);
		p.kind = GW_PORT_KIND_AF_PACKET;
		EXPECT_OK(gw_port_devargs(&p, 1, buf, sizeof(buf), &pci));
		EXPECT_STREQ(buf, "net_af_packet1,iface=eth1,qpairs=2");
		p.kind = GW_PORT_KIND_AF_XDP;
		EXPECT_OK(gw_port_devargs(&p, 2, buf, sizeof(buf), &pci));
		EXPECT_STREQ(buf, "net_af_xdp2,iface=eth1,start_queue=0,queue_count=1");
		p.kind = GW_PORT_KIND_MEMIF;
		p.device = "/run/gw.sock";
		p.memif_client = true;
		EXPECT_OK(gw_port_devargs(&p, 3, buf, sizeof(buf), &pci));
		EXPECT_STREQ(buf, "net_memif3,socket=/run/gw.sock,role=client,id=0");
		p.kind = GW_PORT_KIND_PCI;
		p.device = "0000:01:00.1";
		EXPECT_OK(gw_port_devargs(&p, 4, buf, sizeof(buf), &pci));
		EXPECT_STREQ(buf, "0000:01:00.1");
		EXPECT_TRUE(pci);
	}
	{ /* refused, with the port's name and the bad value */
		struct gw_port_params p = {.name = "wan", .kind = GW_PORT_KIND_TAP};

		p.device = "eth1,iface=evil";
		EXPECT_ERR(gw_port_devargs(&p, 0, buf, sizeof(buf), &pci), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "port 'wan': device 'eth1,iface=evil' must not");
		p.device = "a-name-longer-than-ifnamsiz";
		EXPECT_ERR(gw_port_devargs(&p, 0, buf, sizeof(buf), &pci), -EINVAL);
		p.device = "";
		EXPECT_ERR(gw_port_devargs(&p, 0, buf, sizeof(buf), &pci), -EINVAL);
		p.kind = GW_PORT_KIND_MEMIF;
		p.device = "relative.sock";
		EXPECT_ERR(gw_port_devargs(&p, 0, buf, sizeof(buf), &pci), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "must be an absolute path");
		p.kind = GW_PORT_KIND_PCI;
		p.device = "eth0";
		EXPECT_ERR(gw_port_devargs(&p, 0, buf, sizeof(buf), &pci), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "not a PCI address");
		p.device = "0000:01:00.1";
		EXPECT_ERR(gw_port_devargs(&p, 0, buf, 4, &pci), -ENOSPC);
	}
	{ /* EAL command line: tests' shape */
		struct gw_dp_params p = one_tap();

		EXPECT_OK(gw_dp_eal_cmdline(&p, "mtlsgw", buf, sizeof(buf)));
		EXPECT_CONTAINS(buf, "mtlsgw --lcores=0@");
		EXPECT_CONTAINS(buf, ",1@");
		EXPECT_CONTAINS(buf, " --main-lcore=0 -m 256 --no-huge --no-shconf");
		EXPECT_CONTAINS(buf, " --file-prefix=mtlsgw ");
		EXPECT_CONTAINS(buf, " --vdev net_tap0,iface=mtlsgw0 ");
		EXPECT_CONTAINS(buf, " --no-pci ");
		EXPECT_CONTAINS(buf, "--log-level=*:notice");
	}
	{ /* EAL --lcores: logical ids placed on the allowed CPUs (dataplane.h) */
		cpu_set_t set, sub;
		unsigned a = 0, b;
		char want[256];

		EXPECT_OK(sched_getaffinity(0, sizeof(set), &set));
		while (a < CPU_SETSIZE - 1 && !CPU_ISSET(a, &set))
			a++;
		for (b = a + 1; b < CPU_SETSIZE && !CPU_ISSET(b, &set); b++)
			;
		/* one CPU: every lcore on it, the main one too */
		CPU_ZERO(&sub);
		CPU_SET(a, &sub);
		EXPECT_OK(sched_setaffinity(0, sizeof(sub), &sub));
		{
			struct gw_dp_params p = one_tap();

			p.main_lcore = 120;
			p.workers[0] = 121;
			p.workers[1] = 122;
			p.n_workers = 2;
			EXPECT_OK(gw_dp_eal_cmdline(&p, "mtlsgw", buf, sizeof(buf)));
			snprintf(want, sizeof(want),
				"--lcores=120@%u,121@%u,122@%u --main-lcore=120 ", a, a, a);
			EXPECT_CONTAINS(buf, want);
		}
		if (b < CPU_SETSIZE) {
			const char *dash = b == a + 1 ? "-" : ",";

			CPU_SET(b, &sub);
			EXPECT_OK(sched_setaffinity(0, sizeof(sub), &sub));
			{ /* the lcores are the CPUs: exactly the line from before */
				struct gw_dp_params p = one_tap();

				p.main_lcore = a;
				p.workers[0] = b;
				EXPECT_OK(gw_dp_eal_cmdline(&p, "mtlsgw", buf, sizeof(buf)));
				snprintf(want, sizeof(want),
					"mtlsgw --lcores=%u@%u,%u@%u --main-lcore=%u ", a, a, b, b,
					a);
				EXPECT_CONTAINS(buf, want);
			}
			{ /* two workers on the two CPUs, the main lcore floats on both */
				struct gw_dp_params p = one_tap();

				p.main_lcore = 120;
				p.workers[0] = a;
				p.workers[1] = b;
				p.workers[2] = 122; /* the 0th allowed CPU: 122 mod 2 */
				p.n_workers = 3;
				EXPECT_OK(gw_dp_eal_cmdline(&p, "mtlsgw", buf, sizeof(buf)));
				snprintf(want, sizeof(want),
					"--lcores=120@(%u%s%u),%u@%u,%u@%u,122@%u "
					"--main-lcore=120 ",
					a, dash, b, a, a, b, b, a);
				EXPECT_CONTAINS(buf, want);
			}
		}
		EXPECT_OK(sched_setaffinity(0, sizeof(set), &set));
	}
	{ /* EAL command line: a NIC, hugepages, a file prefix */
		struct gw_dp_params p = one_tap();

		p.no_huge = false;
		p.file_prefix = "gw7";
		p.ports[1].dev = (struct gw_port_params){
			.name = "lan", .kind = GW_PORT_KIND_PCI, .device = "0000:3b:00.0"};
		p.n_ports = 2;
		EXPECT_OK(gw_dp_eal_cmdline(&p, "mtlsgw", buf, sizeof(buf)));
		EXPECT_CONTAINS(buf, " -a 0000:3b:00.0 ");
		EXPECT_CONTAINS(buf, " --file-prefix=gw7 ");
		EXPECT_TRUE(strstr(buf, "--no-pci") == NULL);
		EXPECT_TRUE(strstr(buf, "--no-huge") == NULL);
	}
	{ /* EAL command line: refusals */
		struct gw_dp_params p = one_tap();

		p.workers[0] = 0;
		EXPECT_ERR(gw_dp_eal_cmdline(&p, "mtlsgw", buf, sizeof(buf)), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "must differ from the main lcore");
		p = one_tap();
		p.workers[1] = 1;
		p.n_workers = 2;
		EXPECT_ERR(gw_dp_eal_cmdline(&p, "mtlsgw", buf, sizeof(buf)), -EINVAL);
		EXPECT_CONTAINS(gw_err_msg(), "listed twice");
		p = one_tap();
		p.n_ports = 0;
		EXPECT_ERR(gw_dp_eal_cmdline(&p, "mtlsgw", buf, sizeof(buf)), -EINVAL);
		p = one_tap();
		EXPECT_ERR(gw_dp_eal_cmdline(&p, "mtlsgw", buf, 20), -ENOSPC);
	}
	{ /* the hash: DPDK's reference Toeplitz, and symmetric with our key */
		uint32_t s = inet_addr("10.99.0.1"), d = inet_addr("10.99.0.2");
		uint16_t sp = htons(50123), dp = htons(7);
		struct rte_ipv4_tuple t = {.src_addr = ntohl(s),
			.dst_addr = ntohl(d),
			.sport = ntohs(sp),
			.dport = ntohs(dp)};
		unsigned spread[4] = {0};

		EXPECT_EQ(gw_port_rss_hash(s, d, sp, dp),
			rte_softrss((uint32_t *)&t, RTE_THASH_V4_L4_LEN, gw_port_rss_key));
		EXPECT_EQ(gw_port_rss_hash(s, d, sp, dp), gw_port_rss_hash(d, s, dp, sp));
		/* consecutive client ports spread over workers */
		for (unsigned port = 40000; port < 40400; port++)
			spread[(gw_port_rss_hash(s, d, htons((uint16_t)port), dp) %
				       GW_PORT_SW_RETA) %
				4]++;
		for (unsigned w = 0; w < 4; w++)
			EXPECT_TRUE(spread[w] > 50);
	}
	GW_TEST_END();
}
