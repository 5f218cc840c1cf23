/* SPDX-License-Identifier: MIT */
/*
 * timer.c - shm-bench's clock: rdtscp + lfence calibrated against
 * CLOCK_MONOTONIC where the TSC is invariant, clock_gettime elsewhere, and
 * the timer's own overhead and step, measured once in the parent.
 */
#include <math.h>

#include "bench.h"

bool use_tsc;
double ns_per_tick = 1.0;
double timer_ovh_ticks;
double timer_ovh_min_ticks;
uint64_t timer_res_ticks;

uint64_t cpu_time_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool cpu_has_invariant_tsc(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[4096];
	bool constant = false, nonstop = false, rdtscp = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		constant = strstr(line, " constant_tsc") != NULL;
		nonstop = strstr(line, " nonstop_tsc") != NULL;
		rdtscp = strstr(line, " rdtscp") != NULL;
		break;
	}
	fclose(f);
	return constant && nonstop && rdtscp;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void timer_init(void)
{
	enum { NOVH = 20001 };
	static uint64_t samp[NOVH];

	use_tsc = HAVE_RDTSCP && !cfg.force_clock && cpu_has_invariant_tsc();
	if (use_tsc) {
		/* Calibrate against CLOCK_MONOTONIC: three 30 ms windows, the median. */
		double f[3];

		for (int r = 0; r < 3; r++) {
			uint64_t n0 = clock_ns(), t0 = now_ticks(), n1, t1;

			do
				n1 = clock_ns();
			while (n1 - n0 < 30000000u);
			t1 = now_ticks();
			f[r] = (double)(t1 - t0) / (double)(n1 - n0);
		}
		double lo = fmin(f[0], fmin(f[1], f[2])), hi = fmax(f[0], fmax(f[1], f[2]));
		double best = f[0] + f[1] + f[2] - lo - hi;

		ns_per_tick = 1.0 / best;
	}
	for (int i = 0; i < NOVH; i++) {
		uint64_t a = now_ticks();
		uint64_t b = now_ticks();

		samp[i] = b - a;
	}
	uint64_t g = 0;

	for (int i = 0; i < NOVH; i++) {
		uint64_t a = g, b = samp[i];

		while (b) {
			uint64_t t = a % b;

			a = b;
			b = t;
		}
		g = a;
	}
	timer_res_ticks = g ? g : 1;
	qsort(samp, NOVH, sizeof(samp[0]), cmp_u64);
	timer_ovh_ticks = (double)samp[NOVH / 2];
	timer_ovh_min_ticks = (double)samp[0];
}
