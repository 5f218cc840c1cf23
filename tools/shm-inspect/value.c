/* SPDX-License-Identifier: MIT */
/*
 * value.c - keys and values as the key commands take and print them: key
 * checks, remaining TTLs, counters, values as text or hex in JSON.
 */
#include "inspect.h"

int check_key(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > TC_KEY_MAX)
		return usage_error("key must be 1..%d bytes (got %zu)", TC_KEY_MAX, n);
	return 0;
}

/* ttl_left - remaining ms of an absolute expiry, -1 for never. */
int64_t ttl_left(int64_t expires_ms)
{
	int64_t now;

	if (!expires_ms)
		return -1;
	now = tc_now_ms();
	/* Compared first: an expiry read from a segment may be any value,
	 * and one far below now would overflow the subtraction. */
	return expires_ms <= now ? 0 : expires_ms - now;
}

/* counter_value - the int64 of an 8-byte little-endian counter. */
int64_t counter_value(const unsigned char *buf)
{
	int64_t cv = 0;

	for (int i = 7; i >= 0; i--)
		cv = (int64_t)(((uint64_t)cv << 8) | buf[i]);
	return cv;
}

/*
 * jvalue - "encoding" and "value" of a value as get --json shows it: a
 * counter as its decimal number (a string), UTF-8 text as a string, any
 * other bytes (or all with HEX) as lowercase hex.
 */
void jvalue(const unsigned char *buf, const tc_meta *m, bool hex)
{
	bool counter = !hex && m->type == TC_TYPE_COUNTER && m->len == 8;

	if (counter) {
		char num[32];

		snprintf(num, sizeof num, "%" PRId64, counter_value(buf));
		jstr("encoding", "counter");
		jstr("value", num);
	} else if (!hex && utf8_text(buf, m->len)) {
		jstr("encoding", "text");
		jbytes("value", buf, m->len);
	} else {
		jstr("encoding", "hex");
		jkey("value");
		putchar('"');
		print_hex(stdout, buf, m->len);
		putchar('"');
	}
}

/* A key as exact lowercase hex (JSON), which round-trips every byte. */
void jkey_hex(const void *key, size_t klen)
{
	jkey("key_hex");
	putchar('"');
	print_hex(stdout, key, klen);
	putchar('"');
}
