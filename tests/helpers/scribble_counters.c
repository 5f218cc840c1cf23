/* SPDX-License-Identifier: MIT */
/*
 * scribble_counters - test helper for tests/test_tools.sh: writes HITS and
 * MISSES straight into the lifetime totals of segment NAME's header, as a
 * stray write would, and zeroes those two counters of every reader slot
 * (which keep theirs from owner to owner, and tc_get_stats adds), so that
 * the segment's hits and misses are exactly HITS and MISSES and the tools
 * can be checked against counters whose sum wraps around 2^64.
 *
 * usage: scribble_counters NAME HITS MISSES
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"

int main(int argc, char **argv)
{
	char path[256];
	struct tc_hdr *h;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: scribble_counters NAME HITS MISSES\n");
		return 2;
	}
	snprintf(path, sizeof path, "/dev/shm/tickcache.%s", argv[1]);
	fd = open(path, O_RDWR);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof *h) {
		fprintf(stderr, "%s: not a segment\n", path);
		return 1;
	}
	h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (h == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	uint64_t nslots = (uint64_t)h->max_readers + TC_TOOL_READERS;
	if (h->slots_off + nslots * sizeof(struct tc_rslot) > (uint64_t)st.st_size) {
		fprintf(stderr, "%s: slots past the end\n", path);
		return 1;
	}
	struct tc_rslot *slots = (struct tc_rslot *)((char *)h + h->slots_off);
	for (uint64_t i = 0; i < nslots; i++) {
		slots[i].ctr[TC_C_HITS] = 0;
		slots[i].ctr[TC_C_MISSES] = 0;
	}
	h->tot[TC_C_HITS] = strtoull(argv[2], NULL, 0);
	h->tot[TC_C_MISSES] = strtoull(argv[3], NULL, 0);
	munmap(h, (size_t)st.st_size);
	return 0;
}
