/* SPDX-License-Identifier: MIT */
/* run.c - placeholder until the strategy-features work lands: every call
 * reports -ENOSYS so that callers get a clear error. */
#include "internal.h"

uint64_t tc__policy_ttl(tc_cache *c, const void *key, size_t klen)
{
	(void)key;
	(void)klen;
	return c->default_ttl_ms;
}

int tc_run_start(tc_cache *c, int64_t ts_ns, uint64_t run_id) { (void)c; (void)ts_ns; (void)run_id; return -ENOSYS; }
int tc_run_anchor(tc_cache *c, tc_anchor *out) { (void)c; (void)out; return -ENOSYS; }
int tc_run_end(tc_cache *c) { (void)c; return -ENOSYS; }
int tc_dto_append(tc_cache *c, const void *key, size_t klen, uint32_t type, const void *dto, size_t len) { (void)c; (void)key; (void)klen; (void)type; (void)dto; (void)len; return -ENOSYS; }
int tc_dto_count(tc_cache *c, const void *key, size_t klen, size_t *n) { (void)c; (void)key; (void)klen; (void)n; return -ENOSYS; }
int tc_dto_each(tc_cache *c, const void *key, size_t klen, uint32_t type, tc_dto_fn fn, void *arg) { (void)c; (void)key; (void)klen; (void)type; (void)fn; (void)arg; return -ENOSYS; }
int tc_rate_limit(tc_cache *c, const void *key, size_t klen, uint64_t limit, uint64_t window_ms, bool *allowed, uint64_t *count) { (void)c; (void)key; (void)klen; (void)limit; (void)window_ms; (void)allowed; (void)count; return -ENOSYS; }
int tc_get_or_load(tc_cache *c, const void *key, size_t klen, void *buf, size_t cap, tc_meta *meta, uint32_t type, uint64_t ttl_ms, uint64_t wait_ms, tc_loader_fn load, void *arg) { (void)c; (void)key; (void)klen; (void)buf; (void)cap; (void)meta; (void)type; (void)ttl_ms; (void)wait_ms; (void)load; (void)arg; return -ENOSYS; }
int tc_ttl_policy_set(tc_cache *c, const char *prefix, uint64_t ttl_ms) { (void)c; (void)prefix; (void)ttl_ms; return -ENOSYS; }
int tc_ttl_policy_del(tc_cache *c, const char *prefix) { (void)c; (void)prefix; return -ENOSYS; }
int tc_ttl_policy_load(tc_cache *c, const char *path) { (void)c; (void)path; return -ENOSYS; }
int tc_ttl_policy_load_ex(tc_cache *c, const char *path, unsigned *bad_line) { (void)c; (void)path; (void)bad_line; return -ENOSYS; }
int tc_ttl_policy_list(tc_cache *c, tc_policy_fn fn, void *arg) { (void)c; (void)fn; (void)arg; return -ENOSYS; }
int tc_dto_keys(tc_cache *c, tc_dto_key_fn fn, void *arg) { (void)c; (void)fn; (void)arg; return -ENOSYS; }

/* Blocks reachable from an index entry besides the entry itself: none yet. */
void tc__audit_entry(tc_cache *c, struct tc_entry *e, tc__mark_fn mark, void *ctx)
{
	(void)c; (void)e; (void)mark; (void)ctx;
}

/* Blocks reachable from the header (the run anchor): none yet. */
void tc__audit_roots(tc_cache *c, tc__mark_fn mark, void *ctx)
{
	(void)c; (void)mark; (void)ctx;
}
