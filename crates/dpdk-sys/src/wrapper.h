/* The DPDK API surface Ferroflow binds. Keep it to what crates/dpdk uses:
 * fewer headers, faster bindgen. */
#include <rte_common.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_version.h>
#include <rte_dev.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_eth_vhost.h>
#include <rte_vhost.h>
#include <rte_gso.h>
#include "inline.h"
