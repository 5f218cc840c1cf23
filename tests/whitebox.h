/* SPDX-License-Identifier: MIT */
/*
 * whitebox.h - helpers shared by the white-box module tests
 * (tests/test_alloc.c, test_table.c, test_epoch.c, test_segment.c).  They
 * look inside a handle (internal.h) and at the segment's bytes (layout.h).
 * Header only: the other .c files of tests/ are linked into every test.
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
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "index.h" /* tc__hash, inline */
#include "room.h"  /* tc__alloc, inline */
#include "layout.h"

#define WB_RC(exp, call)                                                       \
	do {                                                                   \
		int e_ = (exp), g_ = (call);                                   \
		if (e_ != g_)                                                  \
			fail_msg("%s:%d: %s: expected %d (%s), got %d (%s)",   \
				 __FILE__, __LINE__, #call, e_, tc_strerror(e_), \
				 g_, tc_strerror(g_));                         \
	} while (0)

/* A segment name unique to this process and test: wb-<tag>-<pid>-<n>. */
static inline const char *wb_name(char *buf, size_t cap, const char *tag)
{
	static int seq;
	snprintf(buf, cap, "wb-%s-%d-%d", tag, (int)getpid(), seq++);
	return buf;
}

static inline tc_opts wb_opts(uint64_t entries, uint64_t memory, uint32_t readers, int eviction)
{
	tc_opts o;
	memset(&o, 0, sizeof(o));
	o.max_entries = entries;
	o.memory_bytes = memory;
	o.max_readers = readers;
	o.eviction = eviction;
	o.flags = TC_CREATE | TC_EXCL;
	return o;
}

/* Create a fresh segment (any leftover of the same name is removed first). */
static inline tc_cache *wb_create(const char *name, uint64_t entries, uint64_t memory,
				  uint32_t readers, int eviction)
{
	tc_opts o = wb_opts(entries, memory, readers, eviction);
	tc_cache *c = NULL;
	(void)tc_unlink(name);
	WB_RC(0, tc_open(&c, name, &o));
	assert_non_null(c);
	return c;
}

/* Published (FINAL) index slots whose entry is KEY (kind TC_KIND_KEY). */
static inline int wb_count_final(tc_cache *c, const void *key, size_t klen)
{
	int n = 0;
	for (uint64_t b = 0; b < c->nbuckets; b++) {
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t w = tc__ld(&c->index[b].w[i]);
			if (TC_SW_STATE(w) != TC_SW_FINAL)
				continue;
			struct tc_entry *e = tc__block(c, TC_SW_REF(w));
			if (e && e->kind == TC_KIND_KEY && e->klen == klen &&
			    memcmp(tc__ekey(e), key, klen) == 0)
				n++;
		}
	}
	return n;
}

/* All published slots, and (optionally) all slots in any non-zero state. */
static inline uint64_t wb_count_slots(tc_cache *c, uint64_t *nonzero)
{
	uint64_t fin = 0, nz = 0;
	for (uint64_t b = 0; b < c->nbuckets; b++) {
		for (int i = 0; i < TC_BUCKET_SLOTS; i++) {
			uint64_t w = tc__ld(&c->index[b].w[i]);
			if (w)
				nz++;
			if (TC_SW_STATE(w) == TC_SW_FINAL)
				fin++;
		}
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

/* Wait for child PID; returns its exit code, or 128 + signal. */
static inline int wb_wait(pid_t pid)
{
	int st = 0;
	while (waitpid(pid, &st, 0) == -1)
		;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

#endif /* TC_TESTS_WHITEBOX_H */
