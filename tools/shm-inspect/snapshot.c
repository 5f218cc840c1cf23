/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - save and load: snapshots of a segment's keys to and from a
 * file.
 */
#include "inspect.h"

int cmd_save(const char *name, const char *file)
{
	tc_snapshot_report rep;
	tc_cache *c;
	int rc, ex;

	if ((ex = open_seg(name, &c)))
		return ex;
	rc = tc_snapshot_save(c, file, &rep);
	if (rc) {
		ex = fail(rc, "cannot save '%s' to %s", name, file);
	} else if (g_json) {
		jobj(NULL);
		jstr("file", file);
		ju64("keys", rep.keys);
		ju64("bytes", rep.bytes);
		jobj_end();
	} else {
		printf("saved %" PRIu64 " keys of %s to %s (%" PRIu64 " bytes)\n", rep.keys, name, file,
		       rep.bytes);
	}
	tc_close(c);
	return ex;
}

int cmd_load(const char *name, const char *file, bool replace)
{
	tc_snapshot_info info;
	tc_snapshot_report rep;
	tc_cache *c = NULL;
	bool created = false;
	int rc, ex = 0;

	if (!tc_name_valid(name))
		return usage_error("invalid segment name '%s' (want [A-Za-z0-9][A-Za-z0-9_.-]{0,63})",
				   name);
	rc = tc_snapshot_stat(file, &info);
	if (rc == TC_ECORRUPT) {
		char why[200], msg[600];

		snprintf(msg, sizeof msg, "cannot read snapshot %s: %s", file,
			 snap_damage(file, why, sizeof why));
		return report(EX_TC_SEGMENT, rc, why, msg, false);
	}
	if (rc)
		return fail(rc, "cannot read snapshot %s", file);
	rc = tc_open(&c, name, &lazy_attach);
	if (rc == -ENOENT) {
		/* A missing segment is made with the snapshot's geometry. */
		rc = create_like_snapshot(&c, name, &info);
		created = rc == 0;
	}
	if (rc)
		return fail(rc, "cannot open segment '%s'", name);
	rc = tc_snapshot_load(c, file, replace ? TC_SNAP_REPLACE : 0, &rep);
	if (rc == TC_ECORRUPT && !rep.keys) {
		char why[200], msg[600];

		/* Changed between the check and the load: say how. */
		snprintf(msg, sizeof msg, "cannot load %s into '%s': %s", file, name,
			 snap_damage(file, why, sizeof why));
		ex = report(EX_TC_SEGMENT, rc, why, msg, false);
	} else if (rc) {
		ex = fail(rc, "cannot load %s into '%s' (%" PRIu64 " keys loaded)", file, name,
			  rep.keys);
	} else if (g_json) {
		jobj(NULL);
		jstr("file", file);
		jbool("created", created);
		ju64("keys", rep.keys);
		ju64("expired", rep.expired);
		ju64("kept", rep.kept);
		jobj_end();
	} else {
		if (created)
			printf("created %s from the snapshot's geometry\n", name);
		printf("loaded %" PRIu64 " keys into %s (%" PRIu64 " expired skipped, %" PRIu64
		       " present kept)\n", rep.keys, name, rep.expired, rep.kept);
	}
	tc_close(c);
	return ex;
}
