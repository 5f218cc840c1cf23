/* SPDX-License-Identifier: MIT */
/*
 * hist.c - shm-bench's log-linear histogram (HdrHistogram's layout: 2^HB_SUB
 * linear sub-buckets per power of two): merge, quantiles, bucket bounds.
 * Recording (hist_add, hist_add_n) is inline in bench.h, in the timed loop.
 */
#include <math.h>

#include "bench.h"

/* Lowest value of bucket I and its width. */
void hb_bounds(unsigned i, uint64_t *lo, uint64_t *width)
{
	if (i < (1u << HB_SUB)) {
		*lo = i;
		*width = 1;
		return;
	}
	unsigned g = i / HB_HALF - 1;
	uint64_t sub = i - (uint64_t)g * HB_HALF;

	*lo = sub << g;
	*width = 1ull << g;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (!src->count)
		return;
	for (unsigned i = 0; i < HB_N; i++)
		dst->b[i] += src->b[i];
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
}

/* Value at quantile Q (0..1) in ticks: the middle of its bucket, capped by max. */
double hist_quantile(const struct hist *h, double q)
{
	if (!h->count)
		return 0;
	uint64_t rank = (uint64_t)ceil(q * (double)h->count), seen = 0;

	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HB_N; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t lo, w;

			hb_bounds(i, &lo, &w);
			double v = (double)lo + (double)(w - 1) / 2.0;
			if (v > (double)h->max)
				v = (double)h->max;
			if (v < (double)h->min)
				v = (double)h->min;
			return v;
		}
	}
	return (double)h->max;
}

/* Ticks to reported nanoseconds, with the timer's overhead taken off when asked. */
double rep_ns(double ticks)
{
	if (cfg.subtract) {
		ticks -= timer_ovh_ticks;
		if (ticks < 0)
			ticks = 0;
	}
	return ticks * ns_per_tick;
}
