/* SPDX-License-Identifier: MIT */
/*
 * bus.c - a segment truncated under shm-inspect.
 *
 * Shrinking the file of a live segment (ftruncate(2) or truncate(1) by
 * another process) is outside what libtickcache promises (docs/design.md,
 * "What a scribble can do"): every access past the new end raises SIGBUS
 * in every process that has the segment mapped, as the kernel does for any
 * shared file mapping.  The library installs no handler (signals belong to
 * the application); shm-inspect handles it for its own process: main()
 * runs the command through run_guarded(), and a SIGBUS that is a fault (not
 * one sent by kill(2)) ends the command with one line naming the segment
 * whose mapping faulted, the byte and its file's size now, and exit
 * 3; with --json, the error document, reason "segment truncated".
 *
 * Nothing of the library is called after the jump: the handle is abandoned
 * where the fault left it (its reader slot, attach record and flock go with
 * the process, as they would with a kill, which the library's crash safety
 * covers), what stdout still buffers of the interrupted output is dropped,
 * and the process ends with _exit(2).  The fault is never inside stdio or
 * malloc: the only accesses to a mapping are the library's loads and stores
 * and the tool's memcmp/memcpy of peeked values.  A SIGBUS at an address
 * that is no segment's is a bug of the tool: it aborts, with a core.
 */
#include "inspect.h"

#include <setjmp.h>
#include <stdio_ext.h>

static sigjmp_buf bus_jmp;
static void *volatile bus_addr;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (si->si_code <= 0) {
		/* Sent by a process (kill, sigqueue), not a fault: the default
		 * action, once this handler returns and unblocks it. */
		struct sigaction dfl;

		memset(&dfl, 0, sizeof dfl);
		dfl.sa_handler = SIG_DFL;
		sigaction(sig, &dfl, NULL);
		raise(sig);
		return;
	}
	bus_addr = si->si_addr;
	siglongjmp(bus_jmp, 1);
}

/* The mapping of /proc/self/maps that holds ADDR: its start, file offset
 * and path (" (deleted)" removed, *DELETED set).  False when none does. */
static bool find_mapping(uintptr_t addr, uintptr_t *lo, unsigned long long *pgoff, char *path,
			 size_t cap, bool *deleted)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char *line = NULL;
	size_t lcap = 0;
	bool found = false;

	if (!f)
		return false;
	while (!found && getline(&line, &lcap, f) > 0) {
		unsigned long a, b;
		unsigned long long off;
		int at = 0;
		size_t n;

		if (sscanf(line, "%lx-%lx %*s %llx %*s %*s %n", &a, &b, &off, &at) < 3 || !at)
			continue;
		if (addr < a || addr >= b)
			continue;
		found = true;
		*lo = a;
		*pgoff = off;
		snprintf(path, cap, "%s", line + at);
		n = strcspn(path, "\n");
		path[n] = '\0';
		*deleted = n >= 10 && !strcmp(path + n - 10, " (deleted)");
		if (*deleted)
			path[n - 10] = '\0';
	}
	free(line);
	fclose(f);
	return found;
}

/* After the jump: say which segment faulted, and end. */
static void __attribute__((noreturn)) bus_exit(void)
{
	static const char shm_prefix[] = "/dev/shm/tickcache.";
	uintptr_t addr = (uintptr_t)bus_addr, lo = 0;
	unsigned long long pgoff = 0, at;
	char path[512], msg[1024], now[64];
	bool deleted = false;
	struct stat sb;

	__fpurge(stdout);
	if (!find_mapping(addr, &lo, &pgoff, path, sizeof path, &deleted) ||
	    strncmp(path, shm_prefix, sizeof shm_prefix - 1) != 0) {
		fprintf(stderr, "%s: bus error at %p, outside every segment's mapping\n", prog,
			(void *)addr);
		abort();
	}
	at = (unsigned long long)(addr - lo) + pgoff;
	if (deleted || stat(path, &sb) != 0)
		snprintf(now, sizeof now, "its file was removed since");
	else
		snprintf(now, sizeof now, "its file now has %lld bytes", (long long)sb.st_size);
	snprintf(msg, sizeof msg,
		 "segment '%s' was truncated while shm-inspect read it (a bus error at byte %llu; "
		 "%s): another process shrank a live segment, which tickcache does not survive",
		 path + sizeof shm_prefix - 1, at, now);
	report(EX_TC_SEGMENT, TC_ECORRUPT, "segment truncated", msg, false);
	fflush(stdout);
	fflush(stderr);
	_exit(EX_TC_SEGMENT);
}

int run_guarded(int (*run)(const struct args *a), const struct args *a)
{
	struct sigaction sa;

	if (sigsetjmp(bus_jmp, 1))
		bus_exit();
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	return run(a);
}
