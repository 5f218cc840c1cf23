/* SPDX-License-Identifier: MIT */
/*
 * errors.c - how shm-inspect fails: one line on stderr, and with --json an
 * error document on stdout; the exit code of a failed library call; the
 * diagnosis of a segment that cannot be attached.
 */
#include "inspect.h"

/* The error: stderr, and with --json the error document, with the other
 * processes attached when ATT is not NULL.  Returns EX. */
static int error_out(int ex, int rc, const char *reason, const char *msg, bool say_reason,
		     const struct counts *att)
{
	if (say_reason)
		fprintf(stderr, "%s: %s: %s\n", prog, msg, reason);
	else
		fprintf(stderr, "%s: %s\n", prog, msg);
	if (g_json) {
		jreset();
		jobj(NULL);
		jobj("error");
		jstr("message", msg);
		jstr("reason", reason);
		ji64("code", rc);
		ji64("exit", ex);
		if (att)
			jattached("attached", att);
		jobj_end();
		jobj_end();
	}
	return ex;
}

/*
 * report - one line on stderr ("PROG: MSG", then REASON unless MSG says it
 * already) and, with --json, an error document on stdout.  Returns EX.
 */
int report(int ex, int rc, const char *reason, const char *msg, bool say_reason)
{
	return error_out(ex, rc, reason, msg, say_reason, NULL);
}

/* refuse_in_use - the refusal of a command while other processes are attached. */
int refuse_in_use(const struct counts *att, const char *msg)
{
	return error_out(EX_TC_INUSE, -EBUSY, "segment in use", msg, false, att);
}

/*
 * fail - report a failed library call: one line on stderr and, with --json,
 * an error document on stdout.  Returns the exit code for RC.  A message
 * that already says "not found" gets no errno text after it.
 */
int fail(int rc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (rc == -ENOSYS) {
		char m2[600];

		snprintf(m2, sizeof m2, "%s: not implemented by this libtickcache (%s)", msg,
			 tc_version());
		return report(exit_for_rc(rc), rc, "not implemented", m2, false);
	}
	return report(exit_for_rc(rc), rc, tc_strerror(rc), msg,
		      !((rc == -ENOENT || rc == -ESTALE) && strstr(msg, "not found")));
}

/*
 * attach_failed - report a failed tc_open of an existing name, saying what
 * the object is when it is no segment at all: a directory or other
 * non-regular file (exit 3, never "usage"), or an empty file, which is a
 * creation that never finished (its creator died before sizing it).
 */
int attach_failed(int rc, const char *name, const char *what)
{
	char path[256], msg[512];
	struct stat sb;

	if (rc == -ENOENT)
		return fail(rc, "segment '%s' not found", name);
	if (lstat(seg_path(path, sizeof path, name), &sb) == 0) {
		if (!S_ISREG(sb.st_mode)) {
			snprintf(msg, sizeof msg, "%s '%s': %s is %s, not a segment", what, name, path,
				 S_ISDIR(sb.st_mode) ? "a directory" : "not a regular file");
			return report(EX_TC_SEGMENT, rc, "not a segment", msg, false);
		}
		if (sb.st_size == 0) {
			snprintf(msg, sizeof msg, "%s '%s': %s is empty, a creation that never "
				 "finished (its creator died before sizing it); 'shm-inspect create %s' "
				 "builds it anew, 'shm-inspect unlink %s --force' removes it", what, name, path,
				 name, name);
			return report(EX_TC_SEGMENT, TC_ECORRUPT, "empty segment file", msg, false);
		}
	}
	return fail(rc, "%s '%s'", what, name);
}

/* open_seg - attach to NAME; on failure report it and return the exit code. */
int open_seg(const char *name, tc_cache **c)
{
	int rc;

	if (!tc_name_valid(name))
		return usage_error("invalid segment name '%s' (want [A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
				   name);
	rc = tc_open(c, name, &lazy_attach);
	if (rc)
		return attach_failed(rc, name, "cannot attach segment");
	return 0;
}
