/* Out-of-line copies of DPDK's static inline hot-path functions, so that Rust
 * can call them. Each is a one-line forwarder: the C compiler inlines the DPDK
 * body into it, and one call per burst costs nothing measurable. */
#ifndef FERROFLOW_INLINE_H
#define FERROFLOW_INLINE_H
#include <stdint.h>
struct rte_mbuf;
struct rte_mempool;

uint16_t ff_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t ff_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
struct rte_mbuf *ff_pktmbuf_alloc(struct rte_mempool *mp);
int ff_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count);
void ff_pktmbuf_free(struct rte_mbuf *m);
void *ff_pktmbuf_data(const struct rte_mbuf *m);
uint16_t ff_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t ff_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t ff_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t ff_pktmbuf_tailroom(const struct rte_mbuf *m);
uint16_t ff_pktmbuf_nb_segs(const struct rte_mbuf *m);
char *ff_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *ff_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *ff_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int ff_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t ff_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value);
void ff_pktmbuf_refcnt_update(struct rte_mbuf *m, int16_t value);
uint16_t ff_mbuf_refcnt_read(const struct rte_mbuf *m);
void ff_prefetch0(const void *p);
unsigned ff_lcore_id(void);
uint64_t ff_rdtsc(void);
void ff_pause(void);
int ff_errno(void);
unsigned ff_mempool_avail_count(const struct rte_mempool *mp);
unsigned ff_mempool_in_use_count(const struct rte_mempool *mp);
/* Segmentation offload (cold path: only frames a guest sent with TSO). */
void ff_mbuf_set_tx_offload(struct rte_mbuf *m, uint64_t ol_flags, uint16_t l2_len, uint16_t l3_len, uint16_t l4_len);
uint16_t ff_mbuf_tso_segsz(const struct rte_mbuf *m);
void ff_mbuf_set_tso_segsz(struct rte_mbuf *m, uint16_t tso_segsz);
int ff_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail);
void ff_tcp4_fill_checksums(struct rte_mbuf *m, uint16_t l2_len);
int ff_vhost_vid_of_port(uint16_t port_id);
#endif
