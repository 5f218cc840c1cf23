/* SPDX-License-Identifier: MIT */
/*
 * test_limits.c - argument bounds of the public API that the tools rely on
 * (issue 12): a TTL that wrapped around is refused, not taken as 146
 * million years, and tc_strerror names a buffer too small as such.
 * Public header only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "blackbox.h"

static void test_wrapped_ttl_returns_einval(void **state)
{
	char name[TC_NAME_MAX + 1];
	tc_opts o = { .max_entries = 1024, .memory_bytes = 1 << 20, .flags = TC_CREATE };
	tc_cache *c;
	tc_meta m;
	char buf[8];
	int64_t v;

	(void)state;
	assert_int_equal(0, tc_open(&c, fx_name(name), &o));
	assert_int_equal(-EINVAL, tc_set(c, "k", 1, "v", 1, 0, (uint64_t)-5));
	assert_int_equal(-EINVAL, tc_set(c, "k", 1, "v", 1, 0, TC_TTL_MAX + 1));
	assert_int_equal(-EINVAL, tc_add(c, "k", 1, "v", 1, 0, (uint64_t)-5));
	assert_int_equal(-EINVAL, tc_incr(c, "n", 1, 1, (uint64_t)-2, &v));
	assert_int_equal(-ENOENT, tc_get(c, "k", 1, buf, sizeof buf, &m));
	/* The bound itself, the default and "never" are TTLs. */
	assert_int_equal(0, tc_set(c, "k", 1, "v", 1, 0, TC_TTL_MAX));
	assert_int_equal(0, tc_get(c, "k", 1, buf, sizeof buf, &m));
	assert_true(m.expires_ms > tc_now_ms() + (int64_t)(TC_TTL_MAX - 60000));
	assert_int_equal(0, tc_set(c, "k", 1, "v", 1, 0, TC_TTL_DEFAULT));
	assert_int_equal(0, tc_set(c, "k", 1, "v", 1, 0, 0));
	assert_int_equal(-EINVAL, tc_expire(c, "k", 1, (uint64_t)-5));
	assert_int_equal(0, tc_get(c, "k", 1, buf, sizeof buf, &m));
	assert_int_equal(0, m.expires_ms);
	assert_int_equal(-EINVAL, tc_cas(c, "k", 1, m.version, "w", 1, 0, (uint64_t)-5));
	assert_int_equal(-EINVAL, tc_ttl_policy_set(c, "p:", (uint64_t)-5));
	assert_int_equal(-EINVAL, tc_ttl_policy_set(c, "p:", TC_TTL_MAX + 1));
	assert_int_equal(0, tc_ttl_policy_set(c, "p:", TC_TTL_MAX));
	tc_close(c);
}

static void test_strerror_e2big_names_the_buffer(void **state)
{
	(void)state;
	assert_string_equal("value larger than the buffer given", tc_strerror(-E2BIG));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_wrapped_ttl_returns_einval),
		FX_TEST(test_strerror_e2big_names_the_buffer),
	};

	return fx_run(tests);
}
