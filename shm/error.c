/* SPDX-License-Identifier: MIT */
/*
 * error.c - tc_strerror(): library codes from TC_ERRNO_MAP, the rest from
 * the C library's errno strings (which are static and thread-safe in glibc
 * through strerrordesc_np).
 */
#include "internal.h"

const char *tc_strerror(int rc)
{
	switch (rc) {
	case 0:
		return "success";
#define TC__ERR_CASE(name, val, msg) case (val): return (msg);
	TC_ERRNO_MAP(TC__ERR_CASE)
#undef TC__ERR_CASE
	case -E2BIG:
		/* The C library's "Argument list too long" is about exec(). */
		return "value larger than the buffer given";
	default:
		break;
	}
	if (rc < 0 && rc > -4096) {
		const char *s = strerrordesc_np(-rc);
		if (s)
			return s;
	}
	return "unknown error";
}

const char *tc_version(void)
{
	return TC_VERSION_STRING;
}

int64_t tc_now_ms(void)
{
	return tc__now_ms();
}
