/* SPDX-License-Identifier: MIT */
/*
 * scribble_counters - test helper for tests/test_tools.sh: writes HITS and
 * MISSES straight into the lifetime totals of segment NAME's header, as a
 * stray write would, so that the tools can be checked against counters
 * whose sum wraps around 2^64.
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
	h = mmap(NULL, sizeof *h, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (h == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	h->tot[TC_C_HITS] = strtoull(argv[2], NULL, 0);
	h->tot[TC_C_MISSES] = strtoull(argv[3], NULL, 0);
	munmap(h, sizeof *h);
	return 0;
}
