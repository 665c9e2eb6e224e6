/* SPDX-License-Identifier: MIT
 *
 * make_seeds.c — writes the fuzzers' seed corpora from real encoders, so that
 * every target starts from inputs the code really produces:
 *
 *   frame     every request op (pm_request_encode, with each flag), every
 *             reply (pm_reply_encode: values, hits paged with MORE, CLIST,
 *             errors, THROTTLED), two frames in one datagram
 *   netfe     ARP requests, UDP datagrams carrying a frame (untagged and VLAN
 *             100), ICMP echo, an IPv4 fragment, built with netfe.h
 *   wal       segments of records of every type (pm_wal_encode), as written
 *             (mode 0) and with the fix-up bits set
 *   snapshot  a real snapshot (pm_snap_fill) of a shard with KV, flat and HNSW
 *             collections, with TTLs and tombstones
 *   config    config/pomai.conf, config/pomai-control.conf and variations
 *   admin     a request for every admin command, and replies
 *   repl      a frame of every replication type (proto/repl.h; RECORDS carry
 *             real WAL records), alone and as a primary's and a replica's
 *             streams, after fuzz_repl.c's delivery-plan byte
 *   cluster_map  slot map documents (proto/cluster_map.h: the header's
 *             example, keys in another order, the least map, a map at every
 *             count bound) and their wire forms (pm_cmap_encode)
 *   etcd      etcd 3.4's recorded answers (tests/etcd_bodies.h) after
 *             fuzz_etcd.c's reader byte: every kind of answer, every error,
 *             the watch stream in several delivery plans, base64
 *
 * Built by meson, run by hand (docs/fuzzing.md); its output is committed:
 *   build/tests/fuzz/make_seeds tests/fuzz/corpus config
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "admin_proto.h"
#include "bridge.h"
#include "cluster_map.h"
#include "netfe.h"
#include "repl.h"
#include "shard.h"
#include "snapshot.h"
#include "wal.h"

#include "../etcd_bodies.h"

/* Largest seed: a snapshot of the small shard below, with room to spare. */
#define SEED_BYTES_MAX (1u << 20)
#define SEED_PATH_BYTES 512u
/* The clock of the WAL and snapshot seeds (fuzz_snapshot.c loads at it). */
#define SEED_NOW_MS 1000000000ull

static const char *out_dir;
static uint8_t buf[SEED_BYTES_MAX];

static void die(const char *what)
{
	fprintf(stderr, "make_seeds: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void seed(const char *target, const char *name, const void *p, size_t n)
{
	char path[SEED_PATH_BYTES];
	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		die(path);
}

static struct pm_bytes s(const char *t)
{
	return (struct pm_bytes){ (const uint8_t *)t, (uint32_t)strlen(t) };
}

static const float vec4[4] = { 0.5f, -1.0f, 2.25f, 3.0f };

/* ---------------------------------------------------------------- frames */

static void request_seeds(void)
{
	static const struct { const char *name; struct pm_request r; } reqs[] = {
		{ "req_set", { .op = PM_OP_SET, .id = 1, .key = { (const uint8_t *)"k", 1 },
			       .value = { (const uint8_t *)"value", 5 } } },
		{ "req_set_ttl", { .op = PM_OP_SET, .id = 2, .key = { (const uint8_t *)"k", 1 },
				   .value = { (const uint8_t *)"v", 1 }, .has_ttl = true,
				   .ttl_ms = 5000 } },
		{ "req_get", { .op = PM_OP_GET, .id = 3, .key = { (const uint8_t *)"key", 3 } } },
		{ "req_del", { .op = PM_OP_DEL, .id = 4, .key = { (const uint8_t *)"key", 3 } } },
		{ "req_info", { .op = PM_OP_INFO, .id = 5 } },
		{ "req_info_section", { .op = PM_OP_INFO, .id = 6,
					.section = { (const uint8_t *)"memory", 6 } } },
		{ "req_info_paged", { .op = PM_OP_INFO, .id = 17, .info_flags = PM_INFO_PAGED } },
		{ "req_info_section_paged", { .op = PM_OP_INFO, .id = 18,
					      .section = { (const uint8_t *)"memory", 6 },
					      .info_flags = PM_INFO_PAGED } },
		{ "req_snapshot", { .op = PM_OP_SNAPSHOT, .id = 7 } },
		{ "req_vadd", { .op = PM_OP_VADD, .id = 8, .key = { (const uint8_t *)"v1", 2 },
				.vec = (const uint8_t *)vec4, .dim = 4 } },
		{ "req_vadd_ttl_coll", { .op = PM_OP_VADD, .id = 9, .key = { (const uint8_t *)"v2", 2 },
					 .vec = (const uint8_t *)vec4, .dim = 4, .has_ttl = true,
					 .ttl_ms = 1000, .collection = { (const uint8_t *)"c", 1 } } },
		{ "req_vget", { .op = PM_OP_VGET, .id = 10, .key = { (const uint8_t *)"v1", 2 } } },
		{ "req_vdel", { .op = PM_OP_VDEL, .id = 11, .key = { (const uint8_t *)"v1", 2 } } },
		{ "req_vquery", { .op = PM_OP_VQUERY, .id = 12, .k = 3, .vec = (const uint8_t *)vec4,
				  .dim = 4 } },
		{ "req_vquery_ef_coll_exact", { .op = PM_OP_VQUERY, .id = 13, .k = 3, .ef = 16,
						.exact = true, .vec = (const uint8_t *)vec4, .dim = 4,
						.collection = { (const uint8_t *)"c", 1 } } },
		{ "req_ccreate", { .op = PM_OP_CCREATE, .id = 14, .collection = { (const uint8_t *)"c", 1 },
				   .params = { .dim = 4, .metric = PM_METRIC_COSINE,
					       .index = PM_INDEX_HNSW, .hnsw_m = 8,
					       .ef_construction = 64, .ef_search = 32,
					       .flags = PM_COLL_EVICTABLE } } },
		{ "req_cdrop", { .op = PM_OP_CDROP, .id = 15, .collection = { (const uint8_t *)"c", 1 } } },
		{ "req_clist", { .op = PM_OP_CLIST, .id = 16 } },
		{ "req_clist_coll_flags", { .op = PM_OP_CLIST, .id = 19,
					    .list_flags = PM_CLIST_COLL_FLAGS } },
	};
	size_t total = 0;
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		size_t n = pm_request_encode(&reqs[i].r, buf, sizeof(buf));
		if (n == 0)
			die(reqs[i].name);
		seed("frame", reqs[i].name, buf, n);
		/* and the datagram of every request so far, back to back */
		size_t m = pm_request_encode(&reqs[i].r, buf + SEED_BYTES_MAX / 2 + total,
					     SEED_BYTES_MAX / 2 - total);
		total += m;
	}
	seed("frame", "req_all_in_one_datagram", buf + SEED_BYTES_MAX / 2, total);
}

static void reply_seed(const char *name, const struct pm_reply *rep, size_t cap)
{
	uint32_t cursor = 0;
	size_t n = pm_reply_encode(rep, &cursor, buf, cap);
	if (n == 0)
		die(name);
	seed("frame", name, buf, n);
}

static void reply_seeds(void)
{
	static const struct pm_knn_hit hits[3] = { { 0, 0.25f }, { 1, 1.5f }, { 2, 9.0f } };
	static const struct pm_bytes keys[3] = { { (const uint8_t *)"a", 1 },
						 { (const uint8_t *)"bb", 2 },
						 { (const uint8_t *)"ccc", 3 } };
	static const struct pm_coll_info colls[2] = {
		{ .name = { NULL, 0 }, .params = { .dim = 4 }, .count = 7, .bytes = 448 },
		{ .name = { (const uint8_t *)"c", 1 }, .params = { .dim = 4, .index = PM_INDEX_HNSW,
			  .hnsw_m = 8, .flags = PM_COLL_EVICTABLE }, .count = 2, .bytes = 128 },
	};
	struct pm_reply r = { .status = PM_OK, .op = PM_OP_SET, .id = 1 };
	reply_seed("rep_set", &r, sizeof(buf));
	r = (struct pm_reply){ .op = PM_OP_GET, .id = 2, .value = s("value") };
	reply_seed("rep_get", &r, sizeof(buf));
	r = (struct pm_reply){ .op = PM_OP_INFO, .id = 3, .value = s("# memory\r\nused:1\r\n") };
	reply_seed("rep_info", &r, sizeof(buf));
	/* a page with MORE: the cap fits the header, length and the first line */
	reply_seed("rep_info_more", &r, PM_FRAME_HEADER_BYTES + 4 + 10);
	r = (struct pm_reply){ .op = PM_OP_DEL, .id = 4, .removed = 1 };
	reply_seed("rep_del", &r, sizeof(buf));
	r = (struct pm_reply){ .op = PM_OP_VGET, .id = 5, .dim = 4, .collection = s("c"),
			       .value = { (const uint8_t *)vec4, sizeof(vec4) } };
	reply_seed("rep_vget", &r, sizeof(buf));
	r = (struct pm_reply){ .op = PM_OP_VQUERY, .id = 6, .hits = hits, .keys = keys, .nhits = 3 };
	reply_seed("rep_vquery", &r, sizeof(buf));
	/* a page of one hit with MORE: the cap fits the header, count and one hit */
	reply_seed("rep_vquery_more", &r, PM_FRAME_HEADER_BYTES + 1 + 4 + 8 + 1);
	r = (struct pm_reply){ .op = PM_OP_CLIST, .id = 7, .colls = colls, .ncolls = 2,
			       .list_flags = PM_CLIST_COLL_FLAGS };
	reply_seed("rep_clist", &r, sizeof(buf));
	r = (struct pm_reply){ .op = PM_OP_CDROP, .id = 8, .removed = 0 };
	reply_seed("rep_cdrop", &r, sizeof(buf));
	r = (struct pm_reply){ .status = PM_NOT_FOUND, .op = PM_OP_GET, .id = 9 };
	reply_seed("rep_get_not_found", &r, sizeof(buf));
	r = (struct pm_reply){ .status = PM_E_DIM, .op = PM_OP_VQUERY, .id = 10 };
	reply_seed("rep_vquery_error", &r, sizeof(buf));
	r = (struct pm_reply){ .status = PM_E_FRAME_OPCODE, .op = PM_OP_NONE, .id = 11 };
	reply_seed("rep_bad_opcode", &r, sizeof(buf));
	size_t n = pm_reply_encode_throttled(PM_OP_VADD, 12, 250, buf, sizeof(buf));
	if (n == 0)
		die("throttled");
	seed("frame", "rep_throttled", buf, n);
}

/* ---------------------------------------------------------------- netfe */

/* a.b.c.d in network order, as a constant expression */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define IP4(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#else
#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#endif
#define ETHERTYPE_IPV4 0x0800u

/* fuzz_netfe.c's first two ports (untagged, VLAN 100) and a peer. */
static struct pm_net_local net_local(uint8_t host, uint16_t vlan)
{
	return (struct pm_net_local){ .mac = { 0x02, 0, 0, 0, 0, host }, .vlan = vlan,
				      .ip_be = IP4(10, 0, 0, host),
				      .mask_be = IP4(255, 255, 255, 0),
				      .gateway_be = IP4(10, 0, 0, 254), .port_lo = 7700,
				      .port_hi = 7703 };
}

/* A UDP datagram from peer to us carrying a GET request; its length. */
static uint32_t udp_seed(const struct pm_net_local *peer, const struct pm_net_local *us,
			 uint16_t dport, uint8_t *out)
{
	uint32_t l2 = pm_net_l2_bytes(peer);
	struct pm_request get = { .op = PM_OP_GET, .id = 42, .key = s("key") };
	size_t plen = pm_request_encode(&get, out + l2 + 28, 2048);
	pm_net_eth_write(peer, us->mac, ETHERTYPE_IPV4, out);
	pm_net_ipv4_udp_write(peer, us->ip_be, 40000, dport, 7, out + l2, (uint32_t)plen);
	return l2 + 28 + (uint32_t)plen;
}

/* RFC 1071 over big-endian 16-bit words, complemented: what goes on the wire. */
static void put_csum(uint8_t *p, uint32_t n, uint8_t *at)
{
	uint32_t sum = 0;
	at[0] = at[1] = 0;
	for (uint32_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1u)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xFFFFu) + (sum >> 16);
	at[0] = (uint8_t)(~sum >> 8);
	at[1] = (uint8_t)~sum;
}

/* An ICMP echo request from peer to us with 16 bytes of data; its length. */
static uint32_t icmp_seed(const struct pm_net_local *peer, const struct pm_net_local *us,
			  uint8_t *out)
{
	const uint32_t data = 16, tot = 20 + 8 + data;
	uint32_t l2 = pm_net_eth_write(peer, us->mac, ETHERTYPE_IPV4, out);
	uint8_t *ip = out + l2, *ic = ip + 20;
	memset(ip, 0, tot);
	ip[0] = 0x45;
	ip[2] = (uint8_t)(tot >> 8), ip[3] = (uint8_t)tot;
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = 1; /* ICMP */
	memcpy(ip + 12, &peer->ip_be, 4);
	memcpy(ip + 16, &us->ip_be, 4);
	put_csum(ip, 20, ip + 10);
	ic[0] = 8; /* echo request */
	ic[5] = 0x34, ic[7] = 1;
	for (uint32_t i = 0; i < data; i++)
		ic[8 + i] = (uint8_t)i;
	put_csum(ic, 8 + data, ic + 2);
	return l2 + tot;
}

static void netfe_seeds(void)
{
	uint8_t *f = buf;
	for (uint16_t vlan = 0; vlan <= 100; vlan += 100) {
		struct pm_net_local us = net_local(1, vlan), peer = net_local(9, vlan);
		char name[64];
		snprintf(name, sizeof(name), "arp_request_vlan%u", vlan);
		seed("netfe", name, f, pm_net_arp_request(&peer, us.ip_be, f));
		snprintf(name, sizeof(name), "arp_reply_vlan%u", vlan);
		uint32_t n = pm_net_arp_request(&us, peer.ip_be, f);
		n = pm_net_arp_answer(&peer, f, n); /* the peer's answer to our request */
		seed("netfe", name, f, n);
		snprintf(name, sizeof(name), "udp_get_vlan%u", vlan);
		seed("netfe", name, f, udp_seed(&peer, &us, 7701, f));
		snprintf(name, sizeof(name), "icmp_echo_vlan%u", vlan);
		seed("netfe", name, f, icmp_seed(&peer, &us, f));
	}
	struct pm_net_local us = net_local(1, 0), peer = net_local(9, 0);
	/* the first fragment of a datagram: MF set, offset 0 */
	uint32_t n = udp_seed(&peer, &us, 7700, f);
	f[PM_NET_ETH_BYTES + 6] = 0x20;
	put_csum(f + PM_NET_ETH_BYTES, 20, f + PM_NET_ETH_BYTES + 10);
	seed("netfe", "ipv4_fragment", f, n);
	/* the bare IPv4 datagram, as reassembly hands it to pm_net_parse_ipv4 */
	n = udp_seed(&peer, &us, 7702, f);
	seed("netfe", "ipv4_datagram", f + PM_NET_ETH_BYTES, n - PM_NET_ETH_BYTES);
}

/* ---------------------------------------------------------------- WAL */

/* One segment: header, then a record of every type from LSN first; bytes. */
static size_t wal_segment(uint8_t *out, uint64_t first)
{
	const struct pm_request muts[] = {
		{ .op = PM_OP_CCREATE, .collection = s("c"),
		  .params = { .dim = 4, .index = PM_INDEX_HNSW, .hnsw_m = 8,
			      .flags = PM_COLL_EVICTABLE } },
		{ .op = PM_OP_SET, .key = s("k1"), .value = s("value one") },
		{ .op = PM_OP_SET, .key = s("k2"), .value = s("ttl"), .has_ttl = true, .ttl_ms = 60000 },
		{ .op = PM_OP_DEL, .key = s("k1") },
		{ .op = PM_OP_VADD, .key = s("v1"), .vec = (const uint8_t *)vec4, .dim = 4 },
		{ .op = PM_OP_VADD, .key = s("v2"), .vec = (const uint8_t *)vec4, .dim = 4,
		  .collection = s("c"), .has_ttl = true, .ttl_ms = 1000 },
		{ .op = PM_OP_VDEL, .key = s("v1") },
		{ .op = PM_OP_CDROP, .collection = s("c") },
	};
	struct pm_wal_segment_header h = { .version = PM_WAL_VERSION, .shard = 1, .first_lsn = first };
	pm_wal_segment_header_encode(&h, out);
	size_t n = PM_WAL_SEGMENT_HEADER_BYTES;
	for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
		size_t m = pm_wal_encode(&muts[i], SEED_NOW_MS, first + i, out + n, SEED_BYTES_MAX - n);
		if (m == 0)
			die("pm_wal_encode");
		n += m;
	}
	return n;
}

static void wal_seeds(void)
{
	buf[0] = 0; /* mode: as written */
	size_t n = wal_segment(buf + 1, 1);
	seed("wal", "segment_every_type", buf, 1 + n);
	/* the preallocated tail: zeros after the last record */
	memset(buf + 1 + n, 0, 64);
	seed("wal", "segment_zero_tail", buf, 1 + n + 64);
	/* a torn tail: the last record cut in half */
	seed("wal", "segment_torn", buf, 1 + n - 7);
	buf[0] = 3; /* mode: CRCs recomputed */
	n = wal_segment(buf + 1, 1000);
	seed("wal", "segment_fixup_mode", buf, 1 + n);
}

/* ---------------------------------------------------------------- snapshot */

static void shard_apply(struct pm_shard *sh, const struct pm_request *r)
{
	struct pm_reply rep;
	pm_shard_apply(sh, r, SEED_NOW_MS, &rep);
	if (rep.status != PM_OK)
		die(pm_status_name(rep.status));
}

/* A small shard: KV with and without TTL, a flat and an HNSW collection, the
 * default collection, and HNSW tombstones. */
static void fill_shard(struct pm_shard *sh)
{
	const char *names[2] = { "flat", "hnsw" };
	for (uint8_t ix = 0; ix < 2; ix++) {
		struct pm_request c = { .op = PM_OP_CCREATE, .collection = s(names[ix]),
					.params = { .dim = 4, .index = ix, .hnsw_m = 4,
						    .ef_construction = 16,
						    .flags = ix ? PM_COLL_EVICTABLE : 0 } };
		shard_apply(sh, &c);
	}
	char key[32];
	for (int i = 0; i < 24; i++) {
		float v[4] = { (float)i, (float)(i % 5), 1.0f, (float)(i * i % 7) };
		snprintf(key, sizeof(key), "key%d", i);
		struct pm_request r = { .op = PM_OP_SET, .key = s(key), .value = s(key),
					.has_ttl = i % 3 == 0, .ttl_ms = i % 3 == 0 ? 60000 : 0 };
		shard_apply(sh, &r);
		snprintf(key, sizeof(key), "vec%d", i);
		r = (struct pm_request){ .op = PM_OP_VADD, .key = s(key), .vec = (const uint8_t *)v,
					 .dim = 4, .collection = s(names[i % 3 == 2 ? 0 : 1]) };
		if (i % 4 == 3)
			r.collection = (struct pm_bytes){ 0 }; /* the default collection */
		shard_apply(sh, &r);
	}
	for (int i = 1; i < 24; i += 6) { /* HNSW tombstones */
		snprintf(key, sizeof(key), "vec%d", i);
		struct pm_request r = { .op = PM_OP_VDEL, .key = s(key) };
		shard_apply(sh, &r);
	}
}

/* The whole snapshot of sh into out (after a mode byte); its bytes. */
static size_t snapshot_of(struct pm_shard *sh, uint8_t *out, size_t cap, uint32_t items)
{
	static struct pm_snap_writer w;
	pm_snap_writer_init(&w, sh, 0, 77, SEED_NOW_MS);
	size_t n = 0;
	for (;;) {
		if (n + PM_SNAP_FILL_BYTES_MIN > cap)
			die("snapshot too large");
		size_t m = pm_snap_fill(&w, sh, SEED_NOW_MS, out + n, PM_SNAP_FILL_BYTES_MIN, items);
		if (m == 0 && pm_snap_done(&w))
			return n;
		n += m;
	}
}

static void snapshot_seeds(void)
{
	static uint8_t image[4u << 20];
	struct pm_shard sh;
	struct pm_shard_config cfg;
	pm_shard_config_default(&cfg);
	cfg.arena_bytes = 4u << 20;
	cfg.seed_capacity = 1024;
	cfg.hugepages = false;
	if (pm_shard_init(&sh, &cfg) != PM_OK)
		die("pm_shard_init");
	image[0] = 0; /* mode: as written */
	size_t n = snapshot_of(&sh, image + 1, sizeof(image) - 1, 16);
	seed("snapshot", "empty_shard", image, 1 + n);
	fill_shard(&sh);
	n = snapshot_of(&sh, image + 1, sizeof(image) - 1, 16);
	seed("snapshot", "kv_flat_hnsw", image, 1 + n);
	image[0] = 7; /* mode: counts and CRCs recomputed */
	seed("snapshot", "kv_flat_hnsw_fixup_mode", image, 1 + n);
	pm_shard_destroy(&sh);
}

/* ---------------------------------------------------------------- config */

static void copy_file(const char *target, const char *name, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die(path);
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	seed(target, name, buf, n);
}

static void config_seeds(const char *conf_dir)
{
	char path[SEED_PATH_BYTES];
	snprintf(path, sizeof(path), "%s/pomai.conf", conf_dir);
	copy_file("config", "pomai.conf", path);
	snprintf(path, sizeof(path), "%s/pomai-control.conf", conf_dir);
	copy_file("config", "pomai-control.conf", path);
	static const struct { const char *name, *text; } v[] = {
		{ "dpdk", "backend = dpdk\ndpdk_addrs = 10.0.0.2/24,10.0.1.2/24\n"
			  "dpdk_gateways = 10.0.0.1,none\ndpdk_vlan = 100\ndpdk_steering = rss\n"
			  "dpdk_eal_args = --no-pci --vdev=net_memif0\n" },
		{ "memory", "arena_bytes = 1G\nseeds = 4096\nmaxmemory = 512M\n"
			    "maxmemory_policy = harvest\nmaxmemory_samples = 8\nhugepages = no\n" },
		{ "quota", "allow_networks = 10.0.0.0/8,192.168.1.0/24\nquota_requests_per_s = 1000\n"
			   "quota_bytes_per_s = 10M\nquota_burst_ms = 200\n" },
		{ "wal", "wal = sync\nwal_segment_bytes = 16M\nwal_io_uring = no\n"
			 "wal_truncate_corrupt = yes\nsnapshot_interval_s = 0\n" },
		{ "control_quotas", "metrics_listen = off\nquota = 10.0.0.9 100 1000\n"
				    "quota = 10.0.0.10 0 0\ndaemon_timeout_ms = 100\n" },
		{ "comments_blank_crlf", "# comment\n\n  cores = 2,3  # inline\r\nshards = 2\n"
					 "polling = busy" },
		{ "bad_value", "base_port = 70000\n" },
		{ "bad_line", "no equals sign here\n" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		seed("config", v[i].name, v[i].text, strlen(v[i].text));
}

/* ---------------------------------------------------------------- admin */

static void admin_seed(const char *name, uint32_t argc, const char *const *argv)
{
	size_t n = pm_admin_req_encode(argc, argv, buf, sizeof(buf));
	if (n == 0)
		die(name);
	seed("admin", name, buf + PM_ADMIN_LEN_BYTES, n - PM_ADMIN_LEN_BYTES);
}

static void admin_seeds(void)
{
	static const struct { const char *name; uint32_t argc; const char *argv[8]; } cmds[] = {
		{ "ping", 1, { "PING" } },
		{ "info", 2, { "INFO", "memory" } },
		{ "snapshot", 2, { "SNAPSHOT", "now" } },
		{ "snapshot_status", 2, { "SNAPSHOT", "STATUS" } },
		{ "shards", 1, { "SHARDS" } },
		{ "config_get", 3, { "CONFIG", "GET", "knn_timeout_ms" } },
		{ "config_set", 4, { "CONFIG", "SET", "maintain_nodes", "2048" } },
		{ "collection_list", 2, { "COLLECTION", "LIST" } },
		{ "collection_create", 7, { "COLLECTION", "CREATE", "c", "dim=4", "metric=cosine",
					    "index=hnsw", "m=8" } },
		{ "collection_drop", 3, { "COLLECTION", "DROP", "c" } },
		{ "quota_set", 5, { "QUOTA", "SET", "10.0.0.9", "100", "1000" } },
		{ "quota_get", 3, { "QUOTA", "GET", "10.0.0.9" } },
		{ "quota_list", 2, { "QUOTA", "LIST" } },
		{ "quota_del", 3, { "QUOTA", "DEL", "10.0.0.9" } },
		{ "clients", 2, { "CLIENTS", "5" } },
		{ "control", 1, { "CONTROL" } },
		{ "shutdown", 1, { "SHUTDOWN" } },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		admin_seed(cmds[i].name, cmds[i].argc, cmds[i].argv);
	const char *text = "# Server\nversion:0.1.0\n";
	size_t n = pm_admin_reply_encode(PM_ADMIN_OK, text, strlen(text), buf, sizeof(buf));
	seed("admin", "reply_ok", buf + PM_ADMIN_LEN_BYTES, n - PM_ADMIN_LEN_BYTES);
	n = pm_admin_reply_encode(PM_ADMIN_USAGE, "unknown command\n", 16, buf, sizeof(buf));
	seed("admin", "reply_usage", buf + PM_ADMIN_LEN_BYTES, n - PM_ADMIN_LEN_BYTES);
}

/* ---------------------------------------------------------------- replication */

/* fuzz_repl.c's delivery plans: the stream in one piece, one byte at a time,
 * pieces of up to 2^7 bytes. */
#define REPL_PLAN_WHOLE 0u
#define REPL_PLAN_BYTES 13u
#define REPL_PLAN_PIECES 7u

/* A seed being built: the plan byte, then frames appended. */
static size_t repl_n;

static void repl_start(uint8_t plan)
{
	buf[0] = plan;
	repl_n = 1;
}

static void repl_add(size_t n)
{
	if (n == 0)
		die("pm_repl_encode_*");
	repl_n += n;
}

static uint8_t *repl_at(void)
{
	return buf + repl_n;
}

static size_t repl_cap(void)
{
	return SEED_BYTES_MAX - repl_n;
}

/* RECORDS of the WAL seed's eight records (a record of every type) from LSN first. */
static void repl_records(uint64_t first)
{
	static uint8_t seg[SEED_BYTES_MAX / 4];
	size_t n = wal_segment(seg, first) - PM_WAL_SEGMENT_HEADER_BYTES;
	uint8_t *f = repl_at();
	const size_t at = PM_REPL_FRAME_HEADER_BYTES + PM_REPL_RECORDS_FIXED_BYTES;
	if (at + n > repl_cap())
		die("records seed too large");
	memcpy(f + at, seg + PM_WAL_SEGMENT_HEADER_BYTES, n);
	repl_add(pm_repl_encode_records_header(f, first, 8, (uint32_t)n));
}

/* SNAP_DATA of n bytes of an image (a pattern: the stream does not read it). */
static void repl_snap_data(uint32_t n)
{
	uint8_t *f = repl_at();
	if (PM_REPL_FRAME_HEADER_BYTES + (size_t)n > repl_cap())
		die("snapshot data seed too large");
	for (uint32_t i = 0; i < n; i++)
		f[PM_REPL_FRAME_HEADER_BYTES + i] = (uint8_t)(i * 13 + 1);
	repl_add(pm_repl_encode_snap_data_header(f, n));
}

static void repl_seeds(void)
{
	const uint64_t id = 0x5eedfacecafe0016ull;
	const uint32_t addr_be = IP4(10, 0, 0, 1);
	const char *why = "the replica has seen epoch 4; this primary is at epoch 3";
	repl_start(REPL_PLAN_WHOLE);
	repl_add(pm_repl_encode_hello(repl_at(), repl_cap(), 1, 4, 3, id, 1000));
	seed("repl", "hello", buf, repl_n);
	repl_start(REPL_PLAN_WHOLE);
	repl_add(pm_repl_encode_welcome(repl_at(), repl_cap(), PM_REPL_PARTIAL, 3, id, 1000,
					addr_be, 7700, 7800));
	seed("repl", "welcome_partial", buf, repl_n);
	repl_start(REPL_PLAN_WHOLE);
	repl_add(pm_repl_encode_welcome(repl_at(), repl_cap(), PM_REPL_FULL, 3, id, 2000, addr_be,
					7700, 0));
	seed("repl", "welcome_full", buf, repl_n);
	repl_start(REPL_PLAN_WHOLE);
	repl_add(pm_repl_encode_refuse(repl_at(), repl_cap(), PM_REPL_REFUSE_EPOCH, why,
				       (uint32_t)strlen(why)));
	seed("repl", "refuse_epoch", buf, repl_n);
	repl_start(REPL_PLAN_WHOLE);
	repl_records(1001);
	seed("repl", "records", buf, repl_n);
	/* the last batch that fits below LSN 2^64 - 1: one more and it overflows */
	repl_start(REPL_PLAN_WHOLE);
	repl_records(UINT64_MAX - 8);
	seed("repl", "records_lsn_end", buf, repl_n);
	repl_start(REPL_PLAN_WHOLE);
	repl_add(pm_repl_encode_snap_begin(repl_at(), repl_cap(), 2000, 4096));
	seed("repl", "snap_begin", buf, repl_n);
	repl_start(REPL_PLAN_WHOLE);
	repl_snap_data(512);
	seed("repl", "snap_data", buf, repl_n);
	repl_start(REPL_PLAN_WHOLE);
	repl_add(pm_repl_encode_snap_end(repl_at(), repl_cap(), 4096));
	seed("repl", "snap_end", buf, repl_n);
	repl_start(REPL_PLAN_WHOLE);
	repl_add(pm_repl_encode_ack(repl_at(), repl_cap(), 1008, 1004));
	seed("repl", "ack", buf, repl_n);
	repl_start(REPL_PLAN_WHOLE);
	repl_add(pm_repl_encode_ping(repl_at(), repl_cap(), 1008, SEED_NOW_MS));
	seed("repl", "ping", buf, repl_n);
	/* a primary's partial sync, a byte at a time */
	repl_start(REPL_PLAN_BYTES);
	repl_add(pm_repl_encode_welcome(repl_at(), repl_cap(), PM_REPL_PARTIAL, 3, id, 1000,
					addr_be, 7700, 7800));
	repl_records(1001);
	repl_add(pm_repl_encode_ping(repl_at(), repl_cap(), 1008, SEED_NOW_MS));
	repl_records(1009);
	seed("repl", "primary_partial_sync", buf, repl_n);
	/* a primary's full sync, in pieces: the snapshot in slices, then the log */
	repl_start(REPL_PLAN_PIECES);
	repl_add(pm_repl_encode_welcome(repl_at(), repl_cap(), PM_REPL_FULL, 3, id, 2000, addr_be,
					7700, 7800));
	repl_add(pm_repl_encode_snap_begin(repl_at(), repl_cap(), 2000, 0));
	repl_snap_data(300);
	repl_snap_data(1);
	repl_add(pm_repl_encode_snap_end(repl_at(), repl_cap(), 301));
	repl_records(2001);
	seed("repl", "primary_full_sync", buf, repl_n);
	/* a replica's side: its HELLO, then acks */
	repl_start(REPL_PLAN_PIECES);
	repl_add(pm_repl_encode_hello(repl_at(), repl_cap(), 0, 2, 3, id, 0));
	repl_add(pm_repl_encode_ack(repl_at(), repl_cap(), 1008, 1000));
	repl_add(pm_repl_encode_ack(repl_at(), repl_cap(), 1016, 1016));
	seed("repl", "replica_stream", buf, repl_n);
}

/* ---------------------------------------------------------------- cluster_map */

static struct pm_cmap cmap;

/* A document as a seed, and its wire form (parsed, then encoded as self). */
static void cmap_seed(const char *name, const char *doc, size_t len, uint16_t self)
{
	char err[256], wname[64];
	seed("cluster_map", name, doc, len);
	if (pm_cmap_parse(doc, len, &cmap, err, sizeof(err)) != 0) {
		fprintf(stderr, "make_seeds: cluster_map %s: %s\n", name, err);
		exit(1);
	}
	size_t n = pm_cmap_encode(&cmap, self, buf, sizeof(buf));
	if (n == 0) {
		fprintf(stderr, "make_seeds: cluster_map %s: not encoded\n", name);
		exit(1);
	}
	snprintf(wname, sizeof(wname), "wire_%s", name);
	seed("cluster_map", wname, buf, n);
}

static void cmap_seeds(void)
{
	static const char example[] =
		"pomai-map version=1 epoch=12\n"
		"set name=s1 epoch=3 primary=n1\n"
		"set name=s2 epoch=1 primary=-\n"
		"node name=n1 set=s1 addr=127.0.0.1 udp=21000 tcp=20999 repl=21100 shards=2\n"
		"node name=n2 set=s1 addr=127.0.0.1 udp=21010 tcp=0 repl=21110 shards=2\n"
		"slots first=0 last=8191 set=s1\n"
		"slots first=8192 last=16383 set=s2\n";
	static const char moves[] =
		"pomai-map version=1 epoch=12\n"
		"set name=s1 epoch=3 primary=n1\n"
		"set name=s2 epoch=1 primary=-\n"
		"node name=n1 set=s1 addr=127.0.0.1 udp=21000 tcp=20999 repl=21100 shards=2\n"
		"slots first=0 last=8191 set=s1\n"
		"slots first=8192 last=16383 set=s2\n"
		"move first=100 last=199 from=s1 to=s2 state=copy\n"
		"move first=8192 last=9000 from=s2 to=s1 state=freeze\n";
	static const char any_order[] =
		"pomai-map epoch=18446744073709551615 version=1\n"
		"set primary=n-2 epoch=0 name=abcdefghijklmnop\n"
		"set epoch=7 name=s_2 primary=-\n"
		"node shards=255 repl=0 tcp=65535 udp=65281 addr=255.255.255.255 set=s_2 name=n1\n"
		"node name=n-2 set=abcdefghijklmnop addr=10.1.2.3 udp=1 tcp=0 repl=1 shards=1\n"
		"slots set=s_2 first=9000 last=16383\n"
		"slots first=0 last=0 set=abcdefghijklmnop\n"
		"slots first=1 last=8999 set=s_2\n";
	static const char least[] =
		"pomai-map version=1 epoch=1\n"
		"set name=a epoch=0 primary=-\n"
		"slots first=0 last=16383 set=a\n";
	cmap_seed("example", example, sizeof(example) - 1, 1);
	cmap_seed("any_order", any_order, sizeof(any_order) - 1, PM_CMAP_NONE);
	cmap_seed("least", least, sizeof(least) - 1, PM_CMAP_NONE);
	/* every count at its bound */
	static char doc[PM_CLUSTER_MAP_TEXT_BYTES_MAX];
	size_t n = (size_t)snprintf(doc, sizeof(doc), "pomai-map version=1 epoch=99\n");
	for (unsigned i = 0; i < PM_CLUSTER_SETS_MAX; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "set name=set%u epoch=%u primary=n%u\n",
				      i, i, i);
	for (unsigned i = 0; i < PM_CLUSTER_NODES_MAX; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n,
				      "node name=n%u set=set%u addr=10.0.%u.%u udp=%u tcp=%u repl=%u "
				      "shards=%u\n",
				      i, i % PM_CLUSTER_SETS_MAX, i / 64, 1 + i % 64, 20000 + 16 * i,
				      i % 2 ? 0 : 19999 - i, 30000 + i, 1 + i % 8);
	for (unsigned r = 0; r < PM_CLUSTER_RANGES_MAX; r++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "slots first=%u last=%u set=set%u\n",
				      r * 32, r * 32 + 31, (r * 7) % PM_CLUSTER_SETS_MAX);
	cmap_seed("bounds", doc, n, PM_CLUSTER_NODES_MAX - 1);
	cmap_seed("moves", moves, sizeof(moves) - 1, 0);
}

/* ---------------------------------------------------------------- etcd */

/* fuzz_etcd.c's readers (its first byte) and txn shapes (byte 1). */
enum { ETCD_GRANT, ETCD_KEEPALIVE, ETCD_HEADER, ETCD_RANGE, ETCD_DELETE, ETCD_TXN,
       ETCD_ERROR, ETCD_WATCH, ETCD_B64 };
enum { ETCD_TXN_PUT_RANGE = 0, ETCD_TXN_DELETE = 5 };

/* reader, [an extra byte,] body. */
static void etcd_seed(const char *name, int reader, int extra, const char *body)
{
	size_t n = strlen(body), at = 0;
	buf[at++] = (uint8_t)reader;
	if (extra >= 0)
		buf[at++] = (uint8_t)extra;
	memcpy(buf + at, body, n);
	seed("etcd", name, buf, at + n);
}

static void etcd_seeds(void)
{
	static const struct {
		const char *name;
		int reader, extra;
		const char *body;
	} seeds[] = {
		{ "grant", ETCD_GRANT, -1, EB_GRANT },
		{ "grant_min", ETCD_GRANT, -1, EB_GRANT_MIN },
		{ "keepalive", ETCD_KEEPALIVE, -1, EB_KEEPALIVE },
		{ "keepalive_dead", ETCD_KEEPALIVE, -1, EB_KEEPALIVE_DEAD },
		{ "put", ETCD_HEADER, -1, EB_PUT },
		{ "put_prev", ETCD_HEADER, -1, EB_PUT_PREV },
		{ "revoke", ETCD_HEADER, -1, EB_REVOKE },
		{ "range_one", ETCD_RANGE, -1, EB_RANGE_ONE },
		{ "range_prefix", ETCD_RANGE, -1, EB_RANGE_PREFIX },
		{ "range_keys_only", ETCD_RANGE, -1, EB_RANGE_KEYS_ONLY },
		{ "range_count_only", ETCD_RANGE, -1, EB_RANGE_COUNT_ONLY },
		{ "range_none", ETCD_RANGE, -1, EB_RANGE_NONE },
		{ "delete_prev", ETCD_DELETE, -1, EB_DELETE_PREV },
		{ "delete_none", ETCD_DELETE, -1, EB_DELETE_NONE },
		{ "delete_prefix", ETCD_DELETE, -1, EB_DELETE_PREFIX },
		{ "txn_elect_won", ETCD_TXN, ETCD_TXN_PUT_RANGE, EB_TXN_ELECT_WON },
		{ "txn_elect_lost", ETCD_TXN, ETCD_TXN_PUT_RANGE, EB_TXN_ELECT_LOST },
		{ "txn_map_updated", ETCD_TXN, ETCD_TXN_PUT_RANGE, EB_TXN_MAP_UPDATED },
		{ "txn_map_conflict", ETCD_TXN, ETCD_TXN_PUT_RANGE, EB_TXN_MAP_CONFLICT },
		{ "txn_failed_empty", ETCD_TXN, ETCD_TXN_DELETE, EB_TXN_FAILED_EMPTY },
		{ "error_lease_not_found", ETCD_ERROR, 404 - 201, EB_LEASE_NOT_FOUND },
		{ "error_lease_exists", ETCD_ERROR, 412 - 201, EB_GRANT_EXISTS },
		{ "error_ttl_too_large", ETCD_ERROR, 400 - 201, EB_TTL_TOO_LARGE },
		{ "error_compacted", ETCD_ERROR, 400 - 201, EB_COMPACTED },
		{ "error_duplicate", ETCD_ERROR, 400 - 201, EB_TXN_DUPLICATE },
		{ "error_stream_eof", ETCD_ERROR, 500 - 201, EB_STREAM_EOF },
		{ "error_not_found", ETCD_ERROR, 404 - 201, EB_NOT_FOUND },
		{ "error_not_allowed", ETCD_ERROR, 405 - 201, EB_NOT_ALLOWED },
		{ "watch_whole", ETCD_WATCH, 0, EB_W_STREAM },
		{ "watch_bytes", ETCD_WATCH, 13, EB_W_STREAM },
		{ "watch_pieces", ETCD_WATCH, 5, EB_W_STREAM },
		{ "watch_small_bound", ETCD_WATCH, 0x80 | 9, EB_W_STREAM },
		{ "watch_canceled", ETCD_WATCH, 3, EB_W_CREATED EB_W_CANCELED },
		{ "b64_key", ETCD_B64, -1, "L3BvbWFpL2MxL25vZGVzL24x" },
		{ "b64_pad1", ETCD_B64, -1, "djJiYQ==" },
		{ "b64_pad2", ETCD_B64, -1, "ZXBvY2g9Mw==" },
	};
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		etcd_seed(seeds[i].name, seeds[i].reader, seeds[i].extra, seeds[i].body);
}

/* Issue 18: a VADD batch (TTL, collection), a VQUERY batch (ef, exact), a
 * VRANGE; their replies (item statuses, hits with queries over two pages, a
 * truncated range). */
static void batch_seeds(void)
{
	const struct pm_wire_bytes c = { (const uint8_t *)"c", 1 };
	const struct pm_wire_request adds[2] = {
		{ .key = { (const uint8_t *)"a", 1 }, .vec = (const uint8_t *)vec4, .dim = 4,
		  .has_ttl = true, .ttl_ms = 100, .collection = c },
		{ .key = { (const uint8_t *)"b", 1 }, .vec = (const uint8_t *)vec4, .dim = 4,
		  .has_ttl = true, .ttl_ms = 200, .collection = c },
	};
	const struct pm_wire_request qs[2] = {
		{ .k = 2, .ef = 8, .exact = true, .vec = (const uint8_t *)vec4, .dim = 4 },
		{ .k = 3, .ef = 8, .exact = true, .vec = (const uint8_t *)vec4, .dim = 4 },
	};
	const struct { const char *name; struct pm_wire_request r; } reqs[] = {
		{ "req_vaddb", { .op = PM_WIRE_OP_VADDB, .id = 30, .item_list = adds, .nitems = 2 } },
		{ "req_vqueryb", { .op = PM_WIRE_OP_VQUERYB, .id = 31, .item_list = qs, .nitems = 2 } },
		{ "req_vrange", { .op = PM_WIRE_OP_VRANGE, .id = 32, .radius = 2.5f, .k = 5,
				  .vec = (const uint8_t *)vec4, .dim = 4, .collection = c } },
	};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		size_t n = pm_wire_request_encode(&reqs[i].r, buf, sizeof(buf));
		if (n == 0)
			die(reqs[i].name);
		seed("frame", reqs[i].name, buf, n);
	}
	static const uint8_t st[3] = { PM_WIRE_OK, PM_WIRE_E_NAN, PM_WIRE_E_DIM };
	static const struct pm_wire_hit hits[3] = {
		{ { (const uint8_t *)"a", 1 }, 0.5f, 0 }, { { (const uint8_t *)"b", 1 }, 1.0f, 0 },
		{ { (const uint8_t *)"a", 1 }, 0.25f, 1 },
	};
	const struct { const char *name; struct pm_wire_reply r; size_t cap; } reps[] = {
		{ "rep_vaddb", { .op = PM_WIRE_OP_VADDB, .id = 30, .item_status = st, .nitems = 3 },
		  sizeof(buf) },
		{ "rep_vqueryb_more", { .op = PM_WIRE_OP_VQUERYB, .id = 31, .hits = hits, .nhits = 3 },
		  PM_FRAME_HEADER_BYTES + 1 + 4 + 2 * (PM_WIRE_QHIT_BYTES_FIXED + 1) },
		{ "rep_vrange_truncated", { .op = PM_WIRE_OP_VRANGE, .id = 32, .hits = hits,
					    .nhits = 2, .range_flags = PM_WIRE_RANGE_TRUNCATED },
		  sizeof(buf) },
	};
	for (size_t i = 0; i < sizeof(reps) / sizeof(reps[0]); i++) {
		uint32_t cursor = 0;
		size_t n = pm_wire_reply_encode(&reps[i].r, &cursor, buf, reps[i].cap);
		if (n == 0)
			die(reps[i].name);
		seed("frame", reps[i].name, buf, n);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: make_seeds CORPUS_DIR CONFIG_DIR\n"
				"  e.g. build/tests/fuzz/make_seeds tests/fuzz/corpus config\n");
		return 2;
	}
	out_dir = argv[1];
	if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
		die(out_dir);
	request_seeds();
	reply_seeds();
	batch_seeds();
	netfe_seeds();
	wal_seeds();
	snapshot_seeds();
	config_seeds(argv[2]);
	admin_seeds();
	repl_seeds();
	cmap_seeds();
	etcd_seeds();
	printf("seeds written under %s\n", out_dir);
	return 0;
}
