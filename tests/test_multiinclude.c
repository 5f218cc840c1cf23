/* SPDX-License-Identifier: MIT */
/*
 * test_multiinclude.c - the public header stands alone and may be included
 * twice: nothing precedes it here, not even <stddef.h> (the fixture's
 * headers come after).
 */
#include "tickcache.h"
#include "tickcache.h"

#include "fixture.h"

static void test_header_included_twice_compiles_and_links(void **state)
{
	tc_meta m = { 0, 0, 0, 0 };

	(void)state;
	assert_int_equal(-30805, TC_ERRNO_LAST);
	assert_int_equal(TC_ENORUN, TC_ERRNO_LAST);
	assert_true(TC_TTL_DEFAULT == UINT64_MAX);
	assert_int_equal(0, m.len);
	assert_string_equal(TC_VERSION_STRING, tc_version());
	assert_true(tc_name_valid("ok"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		FX_TEST(test_header_included_twice_compiles_and_links),
	};

	return fx_run(tests);
}
