/* SPDX-License-Identifier: MIT */
/*
 * lifecycle.c - creating and removing segments: create, unlink.
 */
#include "inspect.h"

int cmd_create(const char *name, const tc_opts *o)
{
	tc_cache *c;
	tc_info info;
	char b1[32];
	int rc;

	if (!tc_name_valid(name))
		return usage_error("invalid segment name '%s' (want [A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
				   name);
	if (o->mode & 0007)
		fprintf(stderr, "%s: warning: mode %04o lets every user of this host %s the segment "
			"(0660 shares it with the group only)\n", prog, o->mode,
			o->mode & 0002 ? "write to" : "read");
	rc = tc_open(&c, name, o);
	if (rc == -EEXIST) {
		char path[256];
		struct stat sb;
		tc_opts o2 = *o;

		/* An empty object is a creation that never finished: build it, as
		 * any TC_CREATE open does.  If another creator finishes first, we
		 * attach to its segment and say that it exists. */
		if (lstat(seg_path(path, sizeof path, name), &sb) || !S_ISREG(sb.st_mode) ||
		    sb.st_size != 0)
			return fail(rc, "segment '%s' already exists", name);
		o2.flags &= ~TC_EXCL;
		rc = tc_open(&c, name, &o2);
		if (!rc && (tc_get_info(c, &info) || info.creator_pid != (uint32_t)getpid())) {
			tc_close(c);
			return fail(-EEXIST, "segment '%s' already exists", name);
		}
		if (!rc)
			fprintf(stderr, "%s: '%s' was an empty segment file (a creation that never "
				"finished): built anew\n", prog, name);
	}
	if (rc)
		return attach_failed(rc, name, "cannot create segment");
	rc = tc_get_info(c, &info);
	if (rc) {
		tc_close(c);
		return fail(rc, "segment '%s' created but unreadable", name);
	}
	if (g_json) {
		jobj(NULL);
		jstr("created", info.name);
		ju64("max_entries", info.max_entries);
		ju64("memory_bytes", info.memory_bytes);
		ju64("max_readers", info.max_readers);
		jstr("mode", (snprintf(b1, sizeof b1, "%04o", info.mode), b1));
		ju64("default_ttl_ms", info.default_ttl_ms);
		jstr("eviction", eviction_name(info.eviction));
		ju64("segment_bytes", info.segment_bytes);
		jobj_end();
	} else {
		printf("created %s: %" PRIu64 " entries, %s memory, %" PRIu32 " readers, mode %04o, "
		       "ttl %" PRIu64 " ms, eviction %s\n", info.name, info.max_entries,
		       fmt_size(b1, sizeof b1, info.memory_bytes), info.max_readers, info.mode,
		       info.default_ttl_ms, eviction_name(info.eviction));
	}
	tc_close(c);
	return 0;
}

int cmd_unlink(const char *name, bool force)
{
	tc_cache *c = NULL;
	struct counts att;
	uint32_t lpid = 0;
	uint64_t lage;
	bool lalive = false;
	int rc;

	if (!tc_name_valid(name))
		return usage_error("invalid segment name '%s' (want [A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
				   name);
	rc = tc_open(&c, name, &lazy_attach);
	if (rc == -ENOENT)
		return fail(rc, "segment '%s' not found", name);
	if (rc && !force)
		return attach_failed(rc, name, "cannot check who uses (use --force to remove it anyway)");
	if (!rc) {
		/* The sweeper attaches to every segment; it never blocks removal. */
		if (tc_lease_holder(c, &lpid, &lage, &lalive) || !lalive)
			lpid = 0;
		rc = other_attached(c, lpid, &att);
		tc_close(c);
		if (rc && !force)
			return fail(rc, "cannot list the processes attached to '%s'", name);
		if (!rc && att.n && !force) {
			char msg[1200];

			snprintf(msg, sizeof msg, "segment '%s' is in use by %s; stop them or use --force",
				 name, att.pids);
			return refuse_in_use(&att, msg);
		}
	}
	rc = tc_unlink(name);
	if (rc)
		return fail(rc, "cannot remove segment '%s'", name);
	if (g_json) {
		jobj(NULL);
		jstr("unlinked", name);
		jobj_end();
	} else {
		printf("unlinked %s\n", name);
	}
	return 0;
}
