/* SPDX-License-Identifier: MIT */
/*
 * hold_reader - test helper for tests/test_tools.sh.  Attaches to segment
 * NAME, takes a reader slot (with --section: enters a read section and stays
 * inside it), prints "ready <pid>" and waits.  SIGTERM/SIGINT leave cleanly
 * (unlock, close, exit 0); SIGKILL leaves a dead slot and attach record
 * behind, which is what the tests want to see cleared.
 *
 * With --run it instead starts a point-in-time run (run id 42), appends
 * three DTOs of type 5 under "signals", closes and exits: 0, or 3 when the
 * library does not implement runs (-ENOSYS).
 *
 * usage: hold_reader NAME [--section | --run]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tickcache.h"

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t block, old;
	tc_cache *c;
	char buf[8];
	int section = argc > 2 && !strcmp(argv[2], "--section");
	int run = argc > 2 && !strcmp(argv[2], "--run");
	int rc;

	if (argc < 2 || argc > 3 || (argc == 3 && !section && !run)) {
		fprintf(stderr, "usage: hold_reader NAME [--section | --run]\n");
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* Blocked until sigsuspend(): a signal between the test of `stop` and
	 * the wait cannot be lost. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	rc = tc_open(&c, argv[1], NULL);
	if (rc) {
		fprintf(stderr, "hold_reader: %s: %s\n", argv[1], tc_strerror(rc));
		return 1;
	}
	if (run) {
		rc = tc_run_start(c, 1700000000000000000LL, 42);
		for (int i = 0; i < 3 && !rc; i++)
			rc = tc_dto_append(c, "signals", 7, 5, "dto", 3);
		tc_close(c);
		if (rc)
			fprintf(stderr, "hold_reader: run: %s\n", tc_strerror(rc));
		return rc == -ENOSYS ? 3 : rc ? 1 : 0;
	}
	/* A read takes this thread's reader slot. */
	rc = tc_get(c, "hold_reader", 11, buf, sizeof buf, NULL);
	if (rc && rc != -ENOENT && rc != -E2BIG) {
		fprintf(stderr, "hold_reader: get: %s\n", tc_strerror(rc));
		tc_close(c);
		return 1;
	}
	if (section && (rc = tc_read_lock(c))) {
		fprintf(stderr, "hold_reader: read lock: %s\n", tc_strerror(rc));
		tc_close(c);
		return 1;
	}
	printf("ready %ld\n", (long)getpid());
	fflush(stdout);
	while (!stop)
		sigsuspend(&old);
	if (section)
		tc_read_unlock(c);
	tc_close(c);
	return 0;
}
