/* See inline.h: forwarders to DPDK's static inline functions. */
/* rte_ipv4_udptcp_cksum_mbuf (multi-segment TCP checksum) is still marked
 * experimental in 22.11; it is a static inline, so no symbol is involved. */
#define ALLOW_EXPERIMENTAL_API
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_DEFAULT */
#endif
#include <rte_config.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_prefetch.h>
#include <rte_pause.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <dlfcn.h>
#include "inline.h"

uint16_t ff_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{ return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts); }
uint16_t ff_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{ return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts); }
struct rte_mbuf *ff_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
int ff_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count)
{ return rte_pktmbuf_alloc_bulk(mp, mbufs, count); }
void ff_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
void *ff_pktmbuf_data(const struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }
uint16_t ff_pktmbuf_data_len(const struct rte_mbuf *m) { return rte_pktmbuf_data_len(m); }
uint32_t ff_pktmbuf_pkt_len(const struct rte_mbuf *m) { return rte_pktmbuf_pkt_len(m); }
uint16_t ff_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t ff_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
uint16_t ff_pktmbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
char *ff_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *ff_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *ff_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int ff_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
uint16_t ff_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value) { return rte_mbuf_refcnt_update(m, value); }
void ff_pktmbuf_refcnt_update(struct rte_mbuf *m, int16_t value) { rte_pktmbuf_refcnt_update(m, value); }
uint16_t ff_mbuf_refcnt_read(const struct rte_mbuf *m) { return rte_mbuf_refcnt_read(m); }
void ff_prefetch0(const void *p) { rte_prefetch0(p); }
unsigned ff_lcore_id(void) { return rte_lcore_id(); }
uint64_t ff_rdtsc(void) { return rte_rdtsc(); }
void ff_pause(void) { rte_pause(); }
int ff_errno(void) { return rte_errno; }
unsigned ff_mempool_avail_count(const struct rte_mempool *mp) { return rte_mempool_avail_count(mp); }
unsigned ff_mempool_in_use_count(const struct rte_mempool *mp) { return rte_mempool_in_use_count(mp); }

void ff_mbuf_set_tx_offload(struct rte_mbuf *m, uint64_t ol_flags, uint16_t l2_len, uint16_t l3_len, uint16_t l4_len)
{ m->ol_flags = ol_flags; m->l2_len = l2_len; m->l3_len = l3_len; m->l4_len = l4_len; }
uint16_t ff_mbuf_tso_segsz(const struct rte_mbuf *m) { return m->tso_segsz; }
void ff_mbuf_set_tso_segsz(struct rte_mbuf *m, uint16_t tso_segsz) { m->tso_segsz = tso_segsz; }
int ff_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail) { return rte_pktmbuf_chain(head, tail); }
/* The IPv4 header and TCP checksums of one segment whose headers are in its
 * first mbuf (what rte_gso_segment makes); the payload may span the chain. */
void ff_tcp4_fill_checksums(struct rte_mbuf *m, uint16_t l2_len)
{
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, l2_len);
	uint16_t l3_len = rte_ipv4_hdr_len(ip);
	struct rte_tcp_hdr *tcp = rte_pktmbuf_mtod_offset(m, struct rte_tcp_hdr *, l2_len + l3_len);
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	tcp->cksum = 0;
	tcp->cksum = rte_ipv4_udptcp_cksum_mbuf(m, ip, l2_len + l3_len);
}

/* rte_eth_vhost_get_vid_from_port_id lives in the net_vhost PMD, which EAL
 * loads as a plugin (linking it too would register the driver twice): found
 * in the loaded plugin by its soname. -1 when the PMD is not loaded or no
 * guest is attached. */
int ff_vhost_vid_of_port(uint16_t port_id)
{
	static int (*get_vid)(uint16_t);
	if (get_vid == NULL) {
		/* DPDK 22.11's ABI 23; RTLD_DEFAULT where the PMD is linked in. */
		void *h = dlopen("librte_net_vhost.so.23", RTLD_NOW | RTLD_NOLOAD);
		get_vid = (int (*)(uint16_t))dlsym(h ? h : RTLD_DEFAULT, "rte_eth_vhost_get_vid_from_port_id");
		if (get_vid == NULL)
			return -1;
	}
	return get_vid(port_id);
}
