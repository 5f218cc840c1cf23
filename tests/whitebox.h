/* SPDX-License-Identifier: MIT */
/*
 * whitebox.h - helpers shared by the white-box module tests
 * (tests/test_alloc.c, test_table.c, test_epoch.c, test_segment.c).  They
 * look inside a handle (internal.h) and at the segment's bytes (layout.h).
 * Segment names, cleanup and ASSERT_RC come from fixture.h.
 */
#ifndef TC_TESTS_WHITEBOX_H
#define TC_TESTS_WHITEBOX_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "internal.h"
#include "epoch.h" /* tc__tls_key */
#include "index.h" /* tc__hash, inline */
#include "room.h"  /* tc__alloc, inline */
#include "layout.h"

static inline tc_opts wb_opts(uint64_t entries, uint64_t memory, uint32_t readers, int eviction)
{
	tc_opts o = fx_opts(entries, memory, readers);
	o.eviction = eviction;
	o.flags |= TC_EXCL;
	return o;
}

/* Create a fresh segment (any leftover of the same name is removed first);
 * FLAGS added to the options (TC_CHECKSUM). */
static inline tc_cache *wb_create_flags(const char *name, uint64_t entries, uint64_t memory,
					uint32_t readers, int eviction, unsigned flags)
{
	tc_opts o = wb_opts(entries, memory, readers, eviction);
	o.flags |= flags;
	tc_cache *c = NULL;
	(void)tc_unlink(name);
	ASSERT_RC(0, tc_open(&c, name, &o));
	assert_non_null(c);
	return c;
}

static inline tc_cache *wb_create(const char *name, uint64_t entries, uint64_t memory,
				  uint32_t readers, int eviction)
{
	return wb_create_flags(name, entries, memory, readers, eviction, 0);
}

/* The block of the published entry of KEY (kind KIND). */
static inline struct tc_entry *wb_entry_of(tc_cache *c, const char *key, uint32_t kind)
{
	size_t klen = strlen(key);
	uint64_t *slotp, w;
	struct tc_entry *e = NULL;
	ASSERT_RC(0, tc__lookup(c, tc__hash(c, key, klen, kind), key, klen, kind, &slotp, &w, &e));
	assert_non_null(e);
	return e;
}

/* N keys of 1,000 bytes, written then deleted: N retired blocks. */
static inline void wb_retire_n(tc_cache *c, int n, char tag)
{
	char v[1000];
	memset(v, tag, sizeof(v));
	for (int i = 0; i < n; i++) {
		char k[16];
		snprintf(k, sizeof(k), "%c%d", tag, i);
		ASSERT_RC(0, tc_set(c, k, strlen(k), v, sizeof(v), 0, 0));
	}
	for (int i = 0; i < n; i++) {
		char k[16];
		snprintf(k, sizeof(k), "%c%d", tag, i);
		ASSERT_RC(0, tc_del(c, k, strlen(k)));
	}
}

/*
 * WB_EACH_SLOT(c, w) { ... }: the body runs for every non-zero index slot
 * word W of C, bucket by bucket (a loop: continue skips to the next word;
 * no break out of both loops).
 */
#define WB_EACH_SLOT(c, w)                                                        \
	for (uint64_t wb_b_ = 0; wb_b_ < (c)->nbuckets; wb_b_++)                  \
		for (int wb_i_ = 0; wb_i_ < TC_BUCKET_SLOTS; wb_i_++)             \
			for (uint64_t w = tc__ld(&(c)->index[wb_b_].w[wb_i_]),    \
				      wb_once_ = 1; wb_once_ && w; wb_once_ = 0)

/* Published (FINAL) index slots whose entry is KEY (kind TC_KIND_KEY). */
static inline int wb_count_final(tc_cache *c, const void *key, size_t klen)
{
	int n = 0;
	WB_EACH_SLOT(c, w) {
		if (TC_SW_STATE(w) != TC_SW_FINAL)
			continue;
		struct tc_entry *e = tc__block(c, TC_SW_REF(w));
		if (e && e->kind == TC_KIND_KEY && e->klen == klen &&
		    memcmp(tc__ekey(e), key, klen) == 0)
			n++;
	}
	return n;
}

/* All published slots, and (optionally) all slots in any non-zero state. */
static inline uint64_t wb_count_slots(tc_cache *c, uint64_t *nonzero)
{
	uint64_t fin = 0, nz = 0;
	WB_EACH_SLOT(c, w) {
		nz++;
		if (TC_SW_STATE(w) == TC_SW_FINAL)
			fin++;
	}
	if (nonzero)
		*nonzero = nz;
	return fin;
}

/* Blocks handed out by the allocator (live + retired + in flight). */
static inline uint64_t wb_blocks_used(tc_cache *c)
{
	uint64_t u = 0;
	for (int k = 0; k < TC_CLASSES_USED; k++)
		u += tc__ld(&c->h->cls[k].used);
	return u;
}

/* Reader slots with a non-zero owner. */
static inline int wb_slots_owned(tc_cache *c)
{
	int n = 0;
	for (uint32_t i = 0; i < c->nslots; i++)
		if (tc__ld(&c->slots[i].owner))
			n++;
	return n;
}

/*
 * Move C's mapping so that a PROT_NONE page follows it: a read past the
 * segment's end is a SIGSEGV.  Right after tc_open, before any call has
 * kept a pointer into the segment (the thread's entry keeps its slot's).
 * The handle's pointers follow the move, and so does the read path's bound
 * of the arena (arena_end, which tc__hash_init derives).  0, or -1 when
 * the mapping cannot be moved (the handle is then unchanged).
 */
static inline int wb_guard_after(tc_cache *c)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *res = mmap(NULL, c->size + pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		return -1;
	if (mremap(c->base, c->size, c->size, MREMAP_MAYMOVE | MREMAP_FIXED, res) != res) {
		munmap(res, c->size + pg);
		return -1;
	}
	ptrdiff_t d = res - c->base;
	c->base = res;
	c->h = (struct tc_hdr *)((uint8_t *)c->h + d);
	c->slots = (struct tc_rslot *)((uint8_t *)c->slots + d);
	c->attach = (struct tc_attach_rec *)((uint8_t *)c->attach + d);
	c->index = (struct tc_bucket *)((uint8_t *)c->index + d);
	c->arena += d;
	tc__hash_init(c);
	return 0;
}

/* A child that attaches NAME, runs FN on its handle and dies without
 * giving its slot back (no tc_close, no destructor: _exit): its pid, the
 * owner of a dead slot. */
static inline pid_t wb_die_holding_a_slot(const char *name, int (*fn)(tc_cache *c))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tc_cache *cc = NULL;
		_exit(tc_open(&cc, name, NULL) || fn(cc) ? 1 : 0);
	}
	assert_int_equal(fx_wait(pid), 0);
	return pid;
}

/* The reader slot that process PID held. */
static inline struct tc_rslot *wb_slot_of(tc_cache *c, pid_t pid)
{
	for (uint32_t i = 0; i < c->nslots; i++)
		if (tc__ld(&c->slots[i].owner) >> 32 == (uint64_t)pid)
			return &c->slots[i];
	fail_msg("no slot of pid %d", (int)pid);
	return NULL;
}

/* A DTO list at "k" (type 7) of two elements, "first" and "second", for
 * wb_die_holding_a_slot. */
static inline int wb_append_two(tc_cache *c)
{
	int rc = tc_dto_append(c, "k", 1, 7, "first", 5);
	return rc ? rc : tc_dto_append(c, "k", 1, 7, "second", 6);
}

/* tc_dto_each's callback: the elements' values, concatenated into ARG. */
static inline int wb_collect_dto(const void *dto, size_t len, void *arg)
{
	strncat(arg, dto, len);
	return 0;
}

#endif /* TC_TESTS_WHITEBOX_H */
