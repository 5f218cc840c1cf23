/* SPDX-License-Identifier: MIT */
/*
 * wait.c - wait NAME [KEY]: sleep until a key's next version (tc_wait) or
 * until anything changes in the segment (tc_wait_any).
 */
#include "inspect.h"

/*
 * cmd_wait - with KEY: tc_wait until KEY's version is above SINCE (without
 * --since: above the version it has now; absent: until it exists), then
 * print it as get does (a version at least that new).  Without KEY:
 * tc_wait_any from SINCE (without --since: from now) and print the new
 * sequence, for the next --since.  Exit EX_WAIT_TIMEOUT on the timeout.
 */
int cmd_wait(const char *name, const char *key, uint64_t since, bool has_since,
	     uint64_t timeout)
{
	tc_cache *c;
	tc_meta m;
	int rc, ex;

	if (key && (ex = check_key(key)))
		return ex;
	if ((ex = open_seg(name, &c)))
		return ex;
	if (key) {
		if (!has_since) {
			rc = tc_wait(c, key, strlen(key), 0, 0, &m);
			since = rc == 0 ? m.version : 0;
		}
		rc = tc_wait(c, key, strlen(key), since, timeout, &m);
	} else {
		if (!has_since)
			(void)tc_wait_any(c, &since, 0); /* the sequence now */
		rc = tc_wait_any(c, &since, timeout);
	}
	tc_close(c);
	if (rc == -ETIMEDOUT)
		return report(EX_WAIT_TIMEOUT, rc, "timed out",
			      key ? "no newer version in time" : "no change in time", false);
	if (rc == -ENOENT)
		return fail(rc, "key '%s' not found in '%s'", key, name);
	if (rc)
		return fail(rc, "cannot wait on '%s'", name);
	if (key)
		return cmd_get(name, key, V_AUTO);
	if (g_json) {
		jobj(NULL);
		ju64("seq", since);
		jobj_end();
	} else {
		printf("%" PRIu64 "\n", since);
	}
	return 0;
}
