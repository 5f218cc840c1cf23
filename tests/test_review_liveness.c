/* SPDX-License-Identifier: MIT */
/*
 * test_review_liveness.c - a review's interleaving of slot liveness
 * (issue 8, defect 2): a cleaner judges a slot by fields it reads one at a
 * time, then claims it by a CAS on the owner word alone.  When the owner
 * thread gives the slot back and claims it again in between (tc_close, then
 * tc_open of the same segment: same pid, same tid, so the same owner word),
 * the CAS succeeds on a live slot.
 *
 * tc__clean_dead does three things for a slot: load the owner word, judge
 * it (tc__slot_dead), claim it (clear_dead_slot's CAS).  This test runs
 * those three steps of the real code with the owner's steps between them,
 * the owner being a separate process (this program run again), and checks
 * that the owner's read section keeps its slot.
 *
 * Like test_handover.c, it carries its own copy of shm/epoch.c.
 */
#define TC_CRASHPOINTS 1
#include "epoch.c"
#include "recover.c" /* was part of epoch.c */

#include "whitebox.h"

#include <fcntl.h>
#include <sys/mman.h>

void tc__crash_point(const char *name)
{
	(void)name;
}

static char cur_name[64];

static void put(int fd, char ch)
{
	while (write(fd, &ch, 1) != 1)
		;
}

static char get(int fd)
{
	char ch = 0;
	if (read(fd, &ch, 1) != 1)
		return 0;
	return ch;
}

/* The owner: opens NAME, claims a slot (a miss), says 'a'; on 'c' closes,
 * says 'b'; on 'o' opens again (elsewhere in its address space), enters a
 * read section, says 'r'; on 'x' reports whether its slot is still its own
 * and still shows its epoch (exit 0), else exit 1. */
static int owner_main(const char *name, int in, int out)
{
	tc_cache *c = NULL;
	char b[4];
	if (tc_open(&c, name, NULL) || tc_get(c, "k", 1, b, sizeof(b), NULL) != -ENOENT)
		return 2;
	put(out, 'a');
	if (get(in) != 'c')
		return 3;
	tc_close(c);
	/* Whatever the kernel would pick next is taken, so that the next
	 * mapping lands at another address (any process may do this). */
	void *pad = mmap(NULL, 8 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pad == MAP_FAILED)
		return 4;
	put(out, 'b');
	if (get(in) != 'o')
		return 5;
	if (tc_open(&c, name, NULL) || tc_read_lock(c))
		return 6;
	struct tc_rslot *s = tc__section_slot(c);
	put(out, 'r');
	if (get(in) != 'x')
		return 7;
	uint64_t me = (uint64_t)getpid() << 32 | (uint32_t)gettid();
	bool ok = s && tc__ld(&s->owner) == me && tc__ld(&s->epoch) != 0;
	tc_read_unlock(c);
	tc_close(c);
	return ok ? 0 : 1;
}

static void test_slot_reclaimed_by_its_owner_is_not_cleared(void **state)
{
	(void)state;
	const char *name = fx_name(cur_name);
	tc_cache *c = wb_create(name, 1024, 1 << 20, 16, TC_EVICT_NONE);
	int to[2], from[2];
	assert_int_equal(0, pipe(to));
	assert_int_equal(0, pipe(from));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* A fresh image: no inherited mapping of the segment. */
		char a[16], b2[16];
		snprintf(a, sizeof(a), "%d", to[0]);
		snprintf(b2, sizeof(b2), "%d", from[1]);
		execl("/proc/self/exe", "test_review_liveness", "--owner", name, a, b2,
		      (char *)NULL);
		_exit(9);
	}
	assert_int_equal('a', get(from[0]));
	struct tc_rslot *s = NULL;
	for (uint32_t i = 0; i < c->nslots; i++)
		if ((tc__ld(&c->slots[i].owner) >> 32) == (uint64_t)pid)
			s = &c->slots[i];
	assert_non_null(s);
	/* Step 1 of tc__clean_dead: the owner word. */
	uint64_t owner = tc__ld(&s->owner);
	assert_false(tc__slot_dead(c, s, owner));
	put(to[1], 'c');
	assert_int_equal('b', get(from[0]));
	/* Step 2: the judgment, while the owner has no handle open. */
	bool dead = tc__slot_dead(c, s, owner);
	put(to[1], 'o');
	assert_int_equal('r', get(from[0]));
	/* The owner claimed the same slot again, with the same owner word. */
	assert_int_equal(owner, tc__ld(&s->owner));
	/* Step 3: the claim, for a slot judged dead. */
	if (dead)
		(void)clear_dead_slot(c, s, owner, NULL);
	put(to[1], 'x');
	assert_int_equal(0, fx_wait(pid)); /* 1: its live slot was cleared */
	tc_close(c);
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--owner") == 0)
		return owner_main(argv[2], atoi(argv[3]), atoi(argv[4]));
	const struct CMUnitTest tests[] = {
		FX_TEST(test_slot_reclaimed_by_its_owner_is_not_cleared),
	};
	return fx_run(tests);
}
