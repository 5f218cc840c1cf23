/* SPDX-License-Identifier: MIT */
/*
 * readers.c - the readers command: reader slots, alive, dead or stuck.
 */
#include "inspect.h"

struct rdlist {
	tc_reader v[TC_MAX_READERS + TC_TOOL_READERS];
	uint32_t n;
	uint32_t self;
};

static int collect_reader(const tc_reader *r, void *arg)
{
	struct rdlist *l = arg;

	if (r->pid == l->self || l->n >= TC_MAX_READERS + TC_TOOL_READERS)
		return 0;
	l->v[l->n++] = *r;
	return 0;
}

static const char *reader_state(const tc_reader *r)
{
	if (r->state == TC_READER_DEAD)
		return "dead";
	if (r->state == TC_READER_ACTIVE && r->epoch_lag >= STUCK_LAG)
		return "stuck";
	return "alive";
}

int cmd_readers(const char *name, bool clean)
{
	tc_cache *c;
	static struct rdlist l;
	uint32_t cleared = 0;
	char comm[32];
	int rc, ex;

	if ((ex = open_seg(name, &c)))
		return ex;
	if (clean) {
		rc = tc_readers_clean(c, &cleared);
		if (rc) {
			ex = fail(rc, "cannot clean reader slots of '%s'", name);
			goto out;
		}
	}
	l.n = 0;
	l.self = (uint32_t)getpid();
	rc = tc_readers(c, collect_reader, &l);
	if (rc) {
		ex = fail(rc, "cannot read reader slots of '%s'", name);
		goto out;
	}
	if (g_json) {
		jobj(NULL);
		if (clean)
			ju64("cleared", cleared);
		else
			jnull("cleared");
		jarr("readers");
		for (uint32_t i = 0; i < l.n; i++) {
			jobj(NULL);
			ju64("slot", l.v[i].slot);
			ju64("pid", l.v[i].pid);
			ju64("tid", l.v[i].tid);
			jstr("comm", proc_comm(l.v[i].pid, comm, sizeof comm));
			jstr("state", reader_state(&l.v[i]));
			jbool("in_section", l.v[i].state == TC_READER_ACTIVE);
			jbool("tool", l.v[i].tool);
			ju64("epoch", l.v[i].epoch);
			ju64("epoch_lag", l.v[i].epoch_lag);
			jobj_end();
		}
		jarr_end();
		jobj_end();
	} else {
		if (clean)
			printf("cleared %" PRIu32 "\n", cleared);
		printf("%6s %8s %8s %-16s %-6s %-8s %12s %10s %s\n", "SLOT", "PID", "TID", "COMMAND",
		       "STATE", "SECTION", "EPOCH", "LAG", "KIND");
		for (uint32_t i = 0; i < l.n; i++)
			printf("%6" PRIu32 " %8" PRIu32 " %8" PRIu32 " %-16s %-6s %-8s %12" PRIu64
			       " %10" PRIu64 " %s\n", l.v[i].slot, l.v[i].pid, l.v[i].tid,
			       proc_comm(l.v[i].pid, comm, sizeof comm), reader_state(&l.v[i]),
			       l.v[i].state == TC_READER_ACTIVE ? "yes" : "no", l.v[i].epoch,
			       l.v[i].epoch_lag, l.v[i].tool ? "tool" : "reader");
	}
out:
	tc_close(c);
	return ex;
}
