/* SPDX-License-Identifier: MIT */
/*
 * workload.c - what shm-bench reads and writes: the Zipf key generator and
 * the self-checking values of validating mode (key index, version and a
 * checksum in a 32-byte header).  The per-operation helpers (random
 * numbers, key choice and formatting, hashing) are inline in bench.h.
 */
#include <math.h>

#include "bench.h"


struct zipf zipf;

void zipf_init(uint64_t n, double s)
{
	double zetan = 0;

	for (uint64_t i = 1; i <= n; i++)
		zetan += 1.0 / pow((double)i, s);
	zipf.n = n;
	zipf.theta = s;
	zipf.zetan = zetan;
	zipf.alpha = 1.0 / (1.0 - s);
	double zeta2 = 1.0 + pow(0.5, s);
	zipf.eta = (1.0 - pow(2.0 / (double)n, 1.0 - s)) / (1.0 - zeta2 / zetan);
	zipf.half_pow = 1.0 + pow(0.5, s);
	zipf.mult = 1000003;
	while (n % zipf.mult == 0)
		zipf.mult += 2;
}

static uint64_t value_sum(const unsigned char *v, size_t len)
{
	uint64_t h = 0x51ED270B27E5A3C1ull ^ len;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		if (i == offsetof(struct vhdr, sum))
			w = 0;
		else
			memcpy(&w, v + i, 8);
		h = (h ^ w) * 0x100000001B3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ v[i]) * 0x100000001B3ull;
	return mix64(h);
}

/* Fill V (cfg.vsize bytes) with the value of key IDX at VERSION. */
void make_value(unsigned char *v, uint64_t idx, uint64_t version, bool full)
{
	struct vhdr h = { .key = idx, .version = version, .len = (uint32_t)cfg.vsize,
			  .magic = VMAGIC, .sum = 0 };

	if (cfg.vsize < VHDR_SIZE) {
		memset(v, (int)(idx & 0xff), cfg.vsize);
		return;
	}
	if (full) {
		uint64_t pat = mix64(idx ^ (version << 20));

		for (size_t i = VHDR_SIZE; i < cfg.vsize; i += 8) {
			size_t n = cfg.vsize - i < 8 ? cfg.vsize - i : 8;

			memcpy(v + i, &pat, n);
			pat += 0x9E3779B97F4A7C15ull;
		}
	}
	memcpy(v, &h, sizeof(h));
	if (full) {
		h.sum = value_sum(v, cfg.vsize);
		memcpy(v + offsetof(struct vhdr, sum), &h.sum, sizeof(h.sum));
	}
}

enum vcheck check_value(const unsigned char *v, size_t len, uint64_t idx)
{
	struct vhdr h;

	if (len != cfg.vsize || len < VHDR_SIZE)
		return V_TORN;
	memcpy(&h, v, sizeof(h));
	if (h.magic != VMAGIC || h.len != len || h.sum != value_sum(v, len))
		return V_TORN;
	return h.key == idx ? V_OK : V_FOREIGN;
}
