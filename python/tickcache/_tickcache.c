/* SPDX-License-Identifier: MIT */
/*
 * _tickcache.c - the CPython extension over libtickcache's public header.
 *
 * One Cache object is one tc_cache handle.  The hot calls (get, set, add,
 * exists, ...) parse their arguments by hand (METH_FASTCALL, no format
 * strings), call the library with the GIL held - they take nanoseconds, and
 * releasing the GIL costs more than the call - and copy values into bytes
 * (get hands out the same bytes again while a key's version is unchanged:
 * struct recent).
 * Only get_or_load releases the GIL, for its wait; its Python loader runs
 * with the GIL taken back.
 *
 * Lifetime rules, in the manner of Modules/mmapmodule.c:
 *  - read() sections export read-only memoryviews of the segment.  Leaving
 *    a section while a view is exported raises BufferError; the section then
 *    ends when the last view is released, so no view ever outlives the read
 *    section that keeps its memory from being reclaimed.  close() refuses
 *    while a section is open.  A thread that exits with views of its
 *    sections exported waits for their release (owner_exit).
 *  - close() while get_or_load, wait or wait_any run (in another thread,
 *    or from a signal handler or a collection they run) marks the cache
 *    closed; the last such call (busy) closes the handle when it returns.
 *    Every other call converts its arguments (which may run Python code:
 *    __index__, __fspath__, a generator, a finalizer) before it takes the
 *    handle, and runs no Python code between handle() and its last
 *    library call, or holds the handle busy meanwhile.
 *  - fork(): the library forbids using an inherited handle.  A child bumps
 *    fork_gen (pthread_atfork); every call compares one word and, in a child,
 *    closes the inherited handle and attaches anew on first use, so the child
 *    never touches the parent's reader slots.  Views exported at the fork
 *    read private copies of their pages in the child (live_views), and the
 *    inherited handle stays mapped while the parent's sections were open.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tickcache.h"

#if defined(__GNUC__)
#define LIKELY(x)   __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define LIKELY(x)   (x)
#define UNLIKELY(x) (x)
#endif

/* Largest TTL accepted, in ms (~285,000 years): far from any overflow. */
#define TTL_MAX_MS (1ull << 53)
/* Values up to this size are copied through the stack on get. */
#define STACK_VALUE 512

/* ------------------------------------------------------------------ */
/* Module state (single-phase init: one interpreter)                    */
/* ------------------------------------------------------------------ */

static PyObject *Error, *CorruptError, *GeometryError, *StaleError, *FullError, *BusyError,
	*NotConfiguredError, *InvalidDTOTypeError;
static PyTypeObject ItemType;

/* Bumped in the child of every fork (written before the child runs any
 * Python code, read with the GIL held). */
static unsigned long fork_gen = 1;

static void at_fork_prepare(void);
static void at_fork_parent(void);
static void at_fork_child(void);

/*
 * The results of recent gets: the bytes objects get returned, kept so that
 * a hot get allocates nothing.  Two ways to reuse one:
 *  - Shared: when KEY's live version is the one a slot holds and the value
 *    tc_get_with just copied to the stack is byte for byte that slot's
 *    bytes object, get returns that object again.  The version is only a
 *    filter: the bytes are compared too, so a version seen again (a
 *    scribbled version counter, a segment recreated under the same name)
 *    can never return another value.
 *  - Owned: when the caller passes the very key object a slot holds and
 *    that slot's bytes object is referenced by the slot alone (Py_REFCNT 1:
 *    the caller dropped it, no one else can see it), get copies the value
 *    straight into that object (tc_get_with's BUF, the object's length its
 *    CAP: no stack copy, no compare; its cached hash reset first, since
 *    any copy, even one not returned, changes its bytes) and returns it
 *    when the value has exactly that length.  The bytes returned are
 *    the ones this call copied, whatever the version.  BYOBJ, indexed by
 *    the key object's address, names the slot to try (no reference: the
 *    slot's own KEY, a strong reference, is compared by identity).
 *    Every way to reach a bytes object counts a reference: a variable, a
 *    container, a buffer export (memoryview), a C caller's argument (a
 *    borrowed reference on the interpreter's stack has a counted owner);
 *    bytes take no weak references and the GC does not track them, so
 *    gc.get_objects() cannot reach one either.
 * An object that anyone else holds is never written.  An owned object that
 * a failed or shorter copy left with other bytes is returned only after a
 * whole copy into it, or a compare with the live value (shared).
 * Only keys of exactly str or bytes (immutable, no __del__, no reference
 * cycle) and values copied whole (up to RECENT_MAX = STACK_VALUE bytes)
 * are kept.  Emptied when the handle changes (close, attach after fork):
 * another segment's versions mean nothing here.  A slot is chosen by the
 * version and the key's last 8 bytes (TAIL), which are also compared before
 * the key.  A result is kept when the same (version, tail, length) comes to
 * its slot twice in a row (the first time only a word that mixes the three
 * is noted, CAND): keys read round robin then cost no reference counting
 * and no frees here.
 *
 * The spare: one more bytes object (2 to RECENT_MAX bytes), the last one
 * get made and did not keep, for keys that are not kept (a key read once,
 * keys read at random).  While the spare alone references it (Py_REFCNT 1,
 * by the argument above), get copies any key's value into it and returns it
 * when the value has exactly its length: a loop of gets whose results are
 * dropped allocates and frees nothing.  Its cached hash is reset before the
 * copy, as an owned object's is.  A spare is never a kept slot's value too:
 * a slot that keeps it takes the spare's reference over.  An empty or 1-byte
 * result is never made the spare: CPython returns one shared object for
 * those bytes, which a slot and anyone may hold at once (its count is never
 * 1: 3.10 caches it with a reference of its own, 3.11 starts it near 10^9,
 * 3.12 on make it immortal), so it could never be written anyway.
 */
#define RECENT_BITS 4
#define RECENT (1 << RECENT_BITS)
#define RECENT_MAX STACK_VALUE
struct recent {
	uint64_t version;        /* of VALUE's bytes; 0: not known to be a value */
	uint64_t tail;
	PyObject *key;           /* strong reference, NULL when empty */
	const char *kp;          /* KEY's bytes (its UTF-8 for a str) */
	Py_ssize_t kn;
	PyObject *value;         /* strong reference: the bytes returned */
	uint64_t hash;           /* tc_key_hash of KEY under the handle: the owned
				  * get passes it (tc_get_hashed) */
	uint64_t cand;           /* the last (version, tail, length) seen here, mixed:
				  * recent_mix */
};

typedef struct CacheObject {
	PyObject_HEAD
	tc_cache *c;             /* NULL when closed or not (re)attached */
	tc_cache *deferred;      /* closed by close() while calls were busy:
				  * tc_close'd when the last returns */
	tc_cache *inherited;     /* a child's handle of the parent, kept mapped
				  * while views of the parent's sections may be
				  * read (their pages: see at_fork_prepare) */
	tc_opts opts;            /* as opened, for attaching again after fork */
	unsigned long fork_gen;  /* fork_gen when c was opened */
	int closed;              /* close() was called */
	Py_ssize_t busy;         /* calls using c across Python code or without
				  * the GIL (close() defers to the last) */
	Py_ssize_t sections;     /* read sections open on c */
	PyObject *weakrefs;
	char name[TC_NAME_MAX + 1];
	struct recent recent[RECENT];
	struct recent *byobj[RECENT]; /* see struct recent; never NULL */
	PyObject *spare;         /* strong reference or NULL: see struct recent */
} CacheObject;

static void recent_clear(CacheObject *self)
{
	for (int i = 0; i < RECENT; i++) {
		struct recent *e = &self->recent[i];
		PyObject *k = e->key, *v = e->value;
		e->version = e->tail = e->cand = 0;
		e->key = e->value = NULL;
		e->kp = NULL;
		e->kn = 0;
		Py_XDECREF(k);
		Py_XDECREF(v);
	}
	Py_CLEAR(self->spare);
}

/*
 * Read sections whose last view was released by a thread other than the
 * one that entered them: the library's sections are per thread, so the
 * owner ends them on its next call into this module, or when it exits
 * (owner_exit).  Rare (a view handed to another thread and outliving its
 * block); the hot path tests one word.
 */
struct pending {
	struct pending *next;
	unsigned long owner;     /* PyThread_get_thread_ident() of the owner */
	unsigned long fork_gen;
	int ended;               /* ended by its owner's owner_exit */
	CacheObject *cache;      /* strong reference */
};
static struct pending *pending_head;

/*
 * views_lock guards what a thread reads or writes without the GIL: the
 * list of exported views (fork), the list of open sections, their state and
 * view counts, the pending list's links and ended flags, and each Cache's
 * count of open sections.  Such a thread is a fork from a thread without
 * the GIL, or a thread that owns sections and exits (owner_exit), its
 * Python code done.  views_cond: a view count reached 0, or owner_exit ended
 * a section.  Never held while Python code may run.
 */
static pthread_mutex_t views_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t views_cond = PTHREAD_COND_INITIALIZER;
static pthread_key_t owner_key;  /* set in threads that entered a section */

static PyObject *cache_error(int rc, const char *seg, const char *key, Py_ssize_t klen);
static void run_pending(void);

/* ------------------------------------------------------------------ */
/* Argument parsing                                                     */
/* ------------------------------------------------------------------ */

/*
 * parse - fill OUT[i] from positional ARGS and keyword KWNAMES by NAMES
 * (NULL-terminated).  OUT holds the defaults on entry (NULL = required when
 * i < NREQ).  Borrowed references.
 */
static int parse(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
		 const char *const *names, int nreq, PyObject **out)
{
	int n = 0;
	while (names[n])
		n++;
	if (nargs > n) {
		PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fname, n,
			     nargs);
		return -1;
	}
	for (Py_ssize_t i = 0; i < nargs; i++)
		out[i] = args[i];
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	for (Py_ssize_t j = 0; j < nkw; j++) {
		PyObject *kw = PyTuple_GET_ITEM(kwnames, j);
		int i;
		for (i = 0; i < n; i++)
			if (PyUnicode_CompareWithASCIIString(kw, names[i]) == 0)
				break;
		if (i == n) {
			PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'",
				     fname, kw);
			return -1;
		}
		if (i < nargs) {
			PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
				     fname, names[i]);
			return -1;
		}
		out[i] = args[nargs + j];
	}
	for (int i = 0; i < nreq; i++) {
		if (!out[i]) {
			PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname,
				     names[i]);
			return -1;
		}
	}
	return 0;
}

/* A key or value: a pointer into a str's UTF-8, a bytes object, or a
 * buffer export (released by arg_release). */
typedef struct bytearg {
	const char *p;
	Py_ssize_t n;
	int has_view;
	Py_buffer view;
	PyObject *ref;           /* get_many: its own reference to the key */
} bytearg;

static inline void arg_release(bytearg *a)
{
	if (a->has_view) {
		PyBuffer_Release(&a->view);
		a->has_view = 0;
	}
}

/*
 * simple_buffer - O's bytes (PyBUF_SIMPLE).  A buffer that is not
 * C-contiguous (a strided memoryview) is not bytes-like: TypeError, saying
 * WANT ("key must be str or", "value must be", ...), not BufferError.
 */
static int simple_buffer(PyObject *o, Py_buffer *view, const char *want)
{
	if (PyObject_GetBuffer(o, view, PyBUF_SIMPLE) == 0)
		return 0;
	if (PyErr_ExceptionMatches(PyExc_BufferError)) {
		PyErr_Clear();
		PyErr_Format(PyExc_TypeError, "%s a C-contiguous bytes-like object (%.100s is not "
			     "C-contiguous)", want, Py_TYPE(o)->tp_name);
	}
	return -1;
}

static int buffer_arg(PyObject *o, bytearg *a, const char *want)
{
	if (simple_buffer(o, &a->view, want) < 0)
		return -1;
	a->has_view = 1;
	a->p = a->view.buf;
	a->n = a->view.len;
	return 0;
}

static inline int key_arg(PyObject *o, bytearg *a)
{
	a->has_view = 0;
	if (PyUnicode_Check(o)) {
		/* A compact ASCII str is its own UTF-8: no call, no cache. */
		if (LIKELY(PyUnicode_IS_COMPACT_ASCII(o))) {
			a->p = (const char *)PyUnicode_DATA(o);
			a->n = PyUnicode_GET_LENGTH(o);
		} else {
			a->p = PyUnicode_AsUTF8AndSize(o, &a->n);
			if (!a->p)
				return -1;
		}
	} else if (PyBytes_Check(o)) {
		a->p = PyBytes_AS_STRING(o);
		a->n = PyBytes_GET_SIZE(o);
	} else if (PyObject_CheckBuffer(o)) {
		if (buffer_arg(o, a, "key must be str or") < 0)
			return -1;
	} else {
		PyErr_Format(PyExc_TypeError, "key must be str or bytes-like, not %.100s",
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	if (UNLIKELY(a->n == 0 || a->n > TC_KEY_MAX)) {
		if (a->n == 0)
			PyErr_SetString(PyExc_ValueError, "key is empty");
		else
			PyErr_Format(PyExc_ValueError, "key is %zd bytes; the limit is %d", a->n,
				     TC_KEY_MAX);
		arg_release(a);
		return -1;
	}
	return 0;
}

static inline int value_arg(PyObject *o, bytearg *a)
{
	a->has_view = 0;
	if (PyBytes_Check(o)) {
		a->p = PyBytes_AS_STRING(o);
		a->n = PyBytes_GET_SIZE(o);
	} else if (PyUnicode_Check(o) || !PyObject_CheckBuffer(o)) {
		PyErr_Format(PyExc_TypeError, "value must be bytes-like, not %.100s%s",
			     Py_TYPE(o)->tp_name, PyUnicode_Check(o) ? " (encode it first)" : "");
		return -1;
	} else if (buffer_arg(o, a, "value must be") < 0) {
		return -1;
	}
	if (UNLIKELY((size_t)a->n > TC_VALUE_MAX)) {
		PyErr_Format(PyExc_ValueError, "value is %zd bytes; the limit is %u", a->n,
			     (unsigned)TC_VALUE_MAX);
		arg_release(a);
		return -1;
	}
	return 0;
}

/*
 * seconds_arg - seconds (int or float, >= 0) to ms, rounding up so that a
 * positive duration never becomes 0 ("never expires").  None gives NONE_MS
 * when ALLOW_NONE.
 */
static int seconds_arg(PyObject *o, const char *what, int allow_none, uint64_t none_ms,
		       uint64_t *ms)
{
	if (o == NULL || o == Py_None) {
		if (allow_none) {
			*ms = none_ms;
			return 0;
		}
		PyErr_Format(PyExc_TypeError, "%s must be a number of seconds, not None", what);
		return -1;
	}
	/* An exact int first: no subtype walk for the common add(k, v, 3600). */
	int exact_int = PyLong_CheckExact(o);
	if (!exact_int && PyFloat_Check(o)) {
		double d = PyFloat_AS_DOUBLE(o);
		if (isnan(d)) {
			PyErr_Format(PyExc_ValueError, "%s is NaN", what);
			return -1;
		}
		if (d < 0) {
			PyErr_Format(PyExc_ValueError, "%s must not be negative, got %R", what, o);
			return -1;
		}
		double m = ceil(d * 1000.0);
		if (!(m <= (double)TTL_MAX_MS)) {
			PyErr_Format(PyExc_ValueError, "%s of %R seconds is too large", what, o);
			return -1;
		}
		*ms = (uint64_t)m;
		return 0;
	}
	if (exact_int || (PyIndex_Check(o) && !PyBool_Check(o))) {
		int over = 0;
		long long v = PyLong_AsLongLongAndOverflow(o, &over);
		if (v == -1 && PyErr_Occurred())
			return -1;
		if (over < 0 || (!over && v < 0)) {
			PyErr_Format(PyExc_ValueError, "%s must not be negative, got %R", what, o);
			return -1;
		}
		if (over || (unsigned long long)v > TTL_MAX_MS / 1000) {
			PyErr_Format(PyExc_ValueError, "%s of %R seconds is too large", what, o);
			return -1;
		}
		*ms = (uint64_t)v * 1000;
		return 0;
	}
	PyErr_Format(PyExc_TypeError, "%s must be int or float seconds%s, not %.100s", what,
		     allow_none ? " or None" : "", Py_TYPE(o)->tp_name);
	return -1;
}

static int u32_arg(PyObject *o, const char *what, uint32_t *out)
{
	if (!o) {
		*out = 0;
		return 0;
	}
	if (!PyLong_Check(o) || PyBool_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be int, not %.100s", what, Py_TYPE(o)->tp_name);
		return -1;
	}
	int over = 0;
	long long v = PyLong_AsLongLongAndOverflow(o, &over);
	if (v == -1 && PyErr_Occurred())
		return -1;
	if (over || v < 0 || v > (long long)UINT32_MAX) {
		PyErr_Format(PyExc_ValueError, "%s must be in 0..%lu, got %R", what,
			     (unsigned long)UINT32_MAX, o);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int u64_arg(PyObject *o, const char *what, uint64_t *out)
{
	if (!PyLong_Check(o) || PyBool_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be int, not %.100s", what, Py_TYPE(o)->tp_name);
		return -1;
	}
	unsigned long long v = PyLong_AsUnsignedLongLong(o);
	if (v == (unsigned long long)-1 && PyErr_Occurred()) {
		PyErr_Clear();
		PyErr_Format(PyExc_ValueError, "%s must be in 0..2**64-1, got %R", what, o);
		return -1;
	}
	*out = v;
	return 0;
}

/* A str/bytes/PathLike file name, NUL-free. */
static int path_arg(PyObject *o, PyObject **bytes_out)
{
	return PyUnicode_FSConverter(o, bytes_out) ? 0 : -1;
}

/* A glob pattern: str or bytes without NUL. */
static int glob_arg(PyObject *o, PyObject **bytes_out)
{
	if (PyUnicode_Check(o)) {
		*bytes_out = PyUnicode_AsUTF8String(o);
	} else if (PyBytes_Check(o)) {
		Py_INCREF(o);
		*bytes_out = o;
	} else {
		PyErr_Format(PyExc_TypeError, "pattern must be str or bytes, not %.100s",
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	if (!*bytes_out)
		return -1;
	if (strlen(PyBytes_AS_STRING(*bytes_out)) != (size_t)PyBytes_GET_SIZE(*bytes_out)) {
		Py_CLEAR(*bytes_out);
		PyErr_SetString(PyExc_ValueError, "pattern contains a NUL character");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

/* A key for messages: str when it is UTF-8, else bytes; long keys cut. */
static PyObject *key_repr_obj(const char *k, Py_ssize_t n)
{
	Py_ssize_t m = n > 80 ? 80 : n;
	PyObject *o = PyUnicode_DecodeUTF8(k, m, "strict");
	if (!o) {
		PyErr_Clear();
		o = PyBytes_FromStringAndSize(k, m);
	}
	return o;
}

static PyObject *raise_code(PyObject *cls, int rc, PyObject *msg, PyObject *filename)
{
	PyObject *exc;
	if (rc < 0 && rc > -4096) {
		if (filename)
			exc = PyObject_CallFunction(cls, "iOO", -rc, msg, filename);
		else
			exc = PyObject_CallFunction(cls, "iO", -rc, msg);
	} else {
		exc = PyObject_CallFunctionObjArgs(cls, msg, NULL);
	}
	if (!exc)
		return NULL;
	PyObject *code = PyLong_FromLong(rc);
	if (!code || PyObject_SetAttrString(exc, "code", code) < 0) {
		Py_XDECREF(code);
		Py_DECREF(exc);
		return NULL;
	}
	Py_DECREF(code);
	PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
	Py_DECREF(exc);
	return NULL;
}

static PyObject *class_of(int rc)
{
	switch (rc) {
	case TC_ECORRUPT:
		return CorruptError;
	case TC_EGEOMETRY:
		return GeometryError;
	case TC_ENORUN:
		return NotConfiguredError;
	case -ESTALE:
		return StaleError;
	case -ENOSPC:
		return FullError;
	case -EBUSY:
		return BusyError;
	case -ETIMEDOUT:
		return PyExc_TimeoutError;
	default:
		return Error;
	}
}

/*
 * cache_error - raise the exception for library code RC: tc_strerror's
 * words, then the segment and key concerned.  -EINVAL, -EMSGSIZE, -E2BIG
 * are ValueError (arguments), -ENOMEM MemoryError; the rest by class_of().
 */
static PyObject *cache_error(int rc, const char *seg, const char *key, Py_ssize_t klen)
{
	PyObject *msg, *kr = NULL;
	if (key) {
		kr = key_repr_obj(key, klen);
		if (!kr)
			return NULL;
		msg = PyUnicode_FromFormat("%s (segment '%s', key %R%s)", tc_strerror(rc), seg, kr,
					   klen > 80 ? "..." : "");
	} else {
		msg = PyUnicode_FromFormat("%s (segment '%s')", tc_strerror(rc), seg);
	}
	Py_XDECREF(kr);
	if (!msg)
		return NULL;
	if (rc == -EINVAL || rc == -EMSGSIZE || rc == -E2BIG) {
		PyErr_SetObject(PyExc_ValueError, msg);
		Py_DECREF(msg);
		return NULL;
	}
	if (rc == -ENOMEM) {
		PyErr_SetObject(PyExc_MemoryError, msg);
		Py_DECREF(msg);
		return NULL;
	}
	raise_code(class_of(rc), rc, msg, NULL);
	Py_DECREF(msg);
	return NULL;
}

/* A file operation's error: the file system's errno as the built-in
 * OSError subclass with the file name; the library's own codes as above. */
static PyObject *file_error(int rc, const char *seg, PyObject *path, int enospc_is_full)
{
	if (rc < 0 && rc > -4096 && rc != -ESTALE && rc != -EBUSY && rc != -EUSERS &&
	    rc != -EINVAL && rc != -ENOMEM && !(rc == -ENOSPC && enospc_is_full)) {
		PyObject *msg = PyUnicode_FromString(tc_strerror(rc));
		if (!msg)
			return NULL;
		PyObject *exc = PyObject_CallFunction(PyExc_OSError, "iOO", -rc, msg, path);
		Py_DECREF(msg);
		if (exc) {
			PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
			Py_DECREF(exc);
		}
		return NULL;
	}
	PyObject *msg = PyUnicode_FromFormat("%s (segment '%s', file %R)", tc_strerror(rc), seg,
					     path);
	if (!msg)
		return NULL;
	if (rc == -EINVAL)
		PyErr_SetObject(PyExc_ValueError, msg);
	else
		raise_code(class_of(rc), rc, msg, NULL);
	Py_DECREF(msg);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Cache: lifecycle                                                     */
/* ------------------------------------------------------------------ */

static PyObject *closed_error(CacheObject *self)
{
	if (self->closed)
		PyErr_Format(PyExc_ValueError, "cache '%s' is closed", self->name);
	else
		PyErr_SetString(PyExc_ValueError, "cache is not open (Cache.__init__ not called)");
	return NULL;
}

/*
 * In a child of fork(): drop the parent's handle.  While sections of the
 * parent were open (their views' pages are the child's private copies now,
 * inside that handle's mapping) it stays mapped until the Cache goes away.
 */
static void fork_forget(CacheObject *self)
{
	if (self->c && self->sections > 0 && !self->inherited)
		self->inherited = self->c;
	else if (self->c)
		tc_close(self->c);
	if (self->deferred)
		tc_close(self->deferred);
	self->c = self->deferred = NULL;
	self->busy = 0;
	self->sections = 0;
}

static tc_cache *handle_slow(CacheObject *self)
{
	if (pending_head)
		run_pending();
	if (self->closed || !self->name[0]) {
		closed_error(self);
		return NULL;
	}
	if (self->fork_gen != fork_gen) {
		/* A child of fork(): the inherited handle may only be closed.
		 * Sections and waits of the parent's threads do not exist here. */
		fork_forget(self);
		recent_clear(self);
		tc_opts o = self->opts;
		o.flags &= ~(TC_CREATE | TC_EXCL);
		tc_cache *c = NULL;
		int rc = tc_open(&c, self->name, &o);
		if (rc) {
			cache_error(rc == -ENOENT ? -ESTALE : rc, self->name, NULL, 0);
			return NULL;
		}
		self->c = c;
		self->fork_gen = fork_gen;
	}
	if (!self->c) {
		closed_error(self);
		return NULL;
	}
	return self->c;
}

/* The handle for a call, or NULL with an exception set. */
static inline tc_cache *handle(CacheObject *self)
{
	if (LIKELY(self->c != NULL && self->fork_gen == fork_gen && pending_head == NULL))
		return self->c;
	return handle_slow(self);
}

/* A call that ran without the GIL on a handle returned; the last one
 * closes a handle that close() left to it. */
static void busy_end(CacheObject *self)
{
	if (--self->busy == 0 && self->deferred) {
		tc_close(self->deferred);
		self->deferred = NULL;
	}
}

static PyObject *Cache_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	(void)args;
	(void)kw;
	CacheObject *self = (CacheObject *)type->tp_alloc(type, 0);
	if (!self)
		return NULL;
	self->fork_gen = fork_gen;
	for (int i = 0; i < RECENT; i++)
		self->byobj[i] = &self->recent[0];
	return (PyObject *)self;
}

/* "64M", "1G", "65536", 65536 -> bytes (K/M/G/T are powers of 1024). */
static int memory_arg(PyObject *o, uint64_t *out)
{
	if (!o || o == Py_None) {
		*out = 0;
		return 0;
	}
	if (PyLong_Check(o) && !PyBool_Check(o)) {
		int over = 0;
		long long v = PyLong_AsLongLongAndOverflow(o, &over);
		if (v == -1 && PyErr_Occurred())
			return -1;
		if (over || v <= 0) {
			PyErr_Format(PyExc_ValueError, "memory must be a positive size, got %R", o);
			return -1;
		}
		*out = (uint64_t)v;
		return 0;
	}
	if (!PyUnicode_Check(o)) {
		PyErr_Format(PyExc_TypeError, "memory must be int bytes or a str like \"64M\", not %.100s",
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	const char *s = PyUnicode_AsUTF8(o);
	if (!s)
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (*end == 'i' && shift)
		end++;
	if ((*end == 'B' || *end == 'b') && end[1] == '\0')
		end++;
	if (end == s || *end || errno || !(s[0] >= '0' && s[0] <= '9') || v == 0 ||
	    v > (UINT64_MAX >> shift)) {
		PyErr_Format(PyExc_ValueError,
			     "memory %R is not a size (bytes, or a number with K, M, G or T)", o);
		return -1;
	}
	*out = (uint64_t)v << shift;
	return 0;
}

static int count_arg(PyObject *o, const char *what, uint64_t max, uint64_t *out)
{
	if (!o || o == Py_None) {
		*out = 0;
		return 0;
	}
	if (!PyLong_Check(o) || PyBool_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be int or None, not %.100s", what,
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	int over = 0;
	long long v = PyLong_AsLongLongAndOverflow(o, &over);
	if (v == -1 && PyErr_Occurred())
		return -1;
	if (over || v <= 0 || (uint64_t)v > max) {
		PyErr_Format(PyExc_ValueError, "%s must be in 1..%llu, got %R", what,
			     (unsigned long long)max, o);
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

static int Cache_init(CacheObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { (char *)"name", (char *)"create", (char *)"max_entries",
				  (char *)"memory", (char *)"max_readers", (char *)"default_ttl",
				  (char *)"eviction", (char *)"mode", (char *)"checksum", NULL };
	const char *name;
	int create = 0, checksum = 0;
	PyObject *o_entries = NULL, *o_memory = NULL, *o_readers = NULL, *o_ttl = NULL,
		 *o_evict = NULL, *o_mode = NULL;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "s|pOOOOOOp:Cache", kwlist, &name, &create,
					 &o_entries, &o_memory, &o_readers, &o_ttl, &o_evict,
					 &o_mode, &checksum))
		return -1;
	if (self->c || self->closed) {
		PyErr_SetString(PyExc_RuntimeError, "Cache.__init__ called twice");
		return -1;
	}
	if (!tc_name_valid(name)) {
		PyErr_Format(PyExc_ValueError,
			     "invalid segment name '%s' (want [A-Za-z0-9][A-Za-z0-9_.-]{0,63})", name);
		return -1;
	}
	tc_opts o;
	memset(&o, 0, sizeof o);
	uint64_t readers = 0, mode = 0;
	if (count_arg(o_entries, "max_entries", TC_MAX_ENTRIES, &o.max_entries) < 0 ||
	    memory_arg(o_memory, &o.memory_bytes) < 0 ||
	    count_arg(o_readers, "max_readers", TC_MAX_READERS, &readers) < 0 ||
	    seconds_arg(o_ttl, "default_ttl", 1, 0, &o.default_ttl_ms) < 0)
		return -1;
	o.max_readers = (uint32_t)readers;
	if (o_mode && o_mode != Py_None) {
		if (count_arg(o_mode, "mode", 07777, &mode) < 0)
			return -1;
		o.mode = (uint32_t)mode;
	}
	if (!o_evict || o_evict == Py_None) {
		o.eviction = TC_EVICT_NONE;
	} else if (PyUnicode_Check(o_evict) && PyUnicode_CompareWithASCIIString(o_evict, "none") == 0) {
		o.eviction = TC_EVICT_NONE;
	} else if (PyUnicode_Check(o_evict) && PyUnicode_CompareWithASCIIString(o_evict, "lru") == 0) {
		o.eviction = TC_EVICT_LRU;
	} else {
		PyErr_Format(PyExc_ValueError, "eviction must be \"none\" or \"lru\", got %R", o_evict);
		return -1;
	}
	o.flags = (create ? TC_CREATE : 0) | (checksum ? TC_CHECKSUM : 0);
	tc_cache *c = NULL;
	int rc;
	/* Creating reserves and maps the whole segment: not nanoseconds. */
	Py_BEGIN_ALLOW_THREADS
	rc = tc_open(&c, name, &o);
	Py_END_ALLOW_THREADS
	if (rc) {
		cache_error(rc, name, NULL, 0);
		return -1;
	}
	if (self->c || self->closed) {
		/* Another thread's __init__ of this object ran meanwhile. */
		tc_close(c);
		PyErr_SetString(PyExc_RuntimeError, "Cache.__init__ called twice");
		return -1;
	}
	snprintf(self->name, sizeof self->name, "%s", name);
	self->opts = o;
	self->c = c;
	self->fork_gen = fork_gen;
	return 0;
}

static void Cache_dealloc(CacheObject *self)
{
	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	/* Sections and waits hold references, so none is left here. */
	if (self->c)
		tc_close(self->c);
	if (self->deferred)
		tc_close(self->deferred);
	if (self->inherited)
		tc_close(self->inherited);
	self->c = self->deferred = self->inherited = NULL;
	recent_clear(self);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(close_doc,
"close()\n--\n\n"
"Detach from the segment (the segment itself stays; see unlink()).  Calls\n"
"after close raise ValueError; closing twice does nothing.  Raises\n"
"BufferError while a read() section of this cache is open.  A get_or_load,\n"
"wait or wait_any in progress (in another thread, or the caller of the\n"
"code that closes) finishes first: the handle is closed when it returns.");

static PyObject *Cache_close(CacheObject *self, PyObject *unused)
{
	(void)unused;
	if (pending_head)
		run_pending();
	pthread_mutex_lock(&views_lock);
	Py_ssize_t open = self->sections;
	pthread_mutex_unlock(&views_lock);
	if (open > 0 && self->fork_gen == fork_gen) {
		PyErr_Format(PyExc_BufferError,
			     "cannot close cache '%s': %zd read section(s) open (release their views)",
			     self->name, open);
		return NULL;
	}
	self->closed = 1;
	if (self->fork_gen != fork_gen)
		fork_forget(self);
	else if (self->c && self->busy > 0)
		self->deferred = self->c; /* every new call fails from now on */
	else if (self->c)
		tc_close(self->c);
	self->c = NULL;
	recent_clear(self);
	Py_RETURN_NONE;
}

static PyObject *Cache_enter(CacheObject *self, PyObject *unused)
{
	(void)unused;
	if (!handle(self))
		return NULL;
	Py_INCREF(self);
	return (PyObject *)self;
}

static PyObject *Cache_exit(CacheObject *self, PyObject *args)
{
	(void)args;
	return Cache_close(self, NULL);
}

/* ------------------------------------------------------------------ */
/* Cache: reads                                                         */
/* ------------------------------------------------------------------ */

static PyObject *make_item(PyObject *value, const tc_meta *m)
{
	PyObject *it = PyStructSequence_New(&ItemType);
	if (!it) {
		Py_DECREF(value);
		return NULL;
	}
	PyObject *type = PyLong_FromUnsignedLong(m->type);
	PyObject *ver = PyLong_FromUnsignedLongLong(m->version);
	PyObject *exp;
	if (m->expires_ms) {
		exp = PyFloat_FromDouble((double)m->expires_ms / 1000.0);
	} else {
		Py_INCREF(Py_None);
		exp = Py_None;
	}
	PyStructSequence_SET_ITEM(it, 0, value);
	PyStructSequence_SET_ITEM(it, 1, type);
	PyStructSequence_SET_ITEM(it, 2, ver);
	PyStructSequence_SET_ITEM(it, 3, exp);
	if (!type || !ver || !exp) {
		Py_DECREF(it);
		return NULL;
	}
	return it;
}

/* KEY's last 8 bytes (a shorter key's all, zero-padded). */
static inline uint64_t key_tail(const bytearg *k)
{
	uint64_t t = 0;
	if (LIKELY(k->n >= 8))
		memcpy(&t, k->p + k->n - 8, 8);
	else
		memcpy(&t, k->p, (size_t)k->n);
	return t;
}

/* VERSION and TAIL mixed: the top RECENT_BITS choose the slot, and with
 * the key's length the whole word is the slot's CAND. */
static inline uint64_t recent_mix(uint64_t version, uint64_t tail)
{
	return (version ^ tail) * 0x9E3779B97F4A7C15ull;
}

/* The BYOBJ entry of key object KEYOBJ (by its address). */
static inline struct recent **recent_byobj(CacheObject *self, PyObject *keyobj)
{
	return &self->byobj[((uintptr_t)keyobj * 0x9E3779B97F4A7C15ull) >> (64 - RECENT_BITS)];
}

/*
 * recent_find - the bytes object get returned for KEYOBJ (K) at version
 * M->version, when E, the slot of that version and TAIL, still holds it and
 * it is byte for byte VAL, the value just copied (shared); a new reference.
 */
static inline PyObject *recent_find(CacheObject *self, struct recent *e, uint64_t tail,
				    PyObject *keyobj, const bytearg *k, const tc_meta *m,
				    const char *val)
{
	if (e->version == m->version && e->tail == tail && e->kn == k->n &&
	    (e->key == keyobj || memcmp(e->kp, k->p, (size_t)k->n) == 0) &&
	    (size_t)PyBytes_GET_SIZE(e->value) == m->len &&
	    memcmp(PyBytes_AS_STRING(e->value), val, m->len) == 0) {
		if (e->key == keyobj)
			*recent_byobj(self, keyobj) = e;
		Py_INCREF(e->value);
		return e->value;
	}
	return NULL;
}

/* Remember B, the value of KEYOBJ (K) at version M->version, read
 * through C (the handle whose hash of K the slot keeps), in E, the slot of
 * that version and TAIL, when CAND (their mix with K's length) came to E
 * last time too.  True when E keeps B (it took a reference).  Two triples
 * with one CAND only keep a result a get early. */
static inline int recent_put(CacheObject *self, struct recent *e, uint64_t cand, uint64_t tail,
			     tc_cache *c, PyObject *keyobj, const bytearg *k, const tc_meta *m,
			     PyObject *b)
{
	if (e->cand != cand) {
		e->cand = cand;
		return 0;
	}
	if (m->len > RECENT_MAX || !(PyUnicode_CheckExact(keyobj) || PyBytes_CheckExact(keyobj)))
		return 0;
	PyObject *ok = e->key, *ov = e->value;
	Py_INCREF(keyobj);
	Py_INCREF(b);
	e->version = m->version;
	e->tail = tail;
	e->key = keyobj;
	e->kp = k->p;
	e->kn = k->n;
	e->value = b;
	e->hash = tc_key_hash(c, k->p, (size_t)k->n);
	*recent_byobj(self, keyobj) = e;
	Py_XDECREF(ok);
	Py_XDECREF(ov);
	return 1;
}

/*
 * recent_owned - the slot whose bytes object get may copy KEYOBJ's value
 * into (owned, see struct recent), or NULL.
 */
static inline struct recent *recent_owned(CacheObject *self, PyObject *keyobj)
{
	struct recent *e = *recent_byobj(self, keyobj);
	if (e->key == keyobj && Py_REFCNT(e->value) == 1)
		return e;
	return NULL;
}

/* B's bytes are to be written in place: forget the hash of the old ones. */
static inline void bytes_rewritten(PyObject *b)
{
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
	((PyBytesObject *)b)->ob_shash = -1;
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
}

/*
 * spare_take - the spare, when get may copy a value into it (the spare
 * alone references it: see struct recent), its cached hash reset; or NULL.
 */
static inline PyObject *spare_take(CacheObject *self)
{
	PyObject *s = self->spare;
	if (s && Py_REFCNT(s) == 1) {
		bytes_rewritten(s);
		return s;
	}
	return NULL;
}

/* B, a value get returns and no slot kept, is the spare from now on (up to
 * RECENT_MAX bytes: a spare is no reason to keep a big object alive; over
 * 1 byte: CPython's shared objects are never written, see struct recent). */
static inline void spare_offer(CacheObject *self, PyObject *b)
{
	if (b != self->spare && (size_t)PyBytes_GET_SIZE(b) - 2 <= RECENT_MAX - 2) {
		PyObject *old = self->spare;
		Py_INCREF(b);
		self->spare = b;
		Py_XDECREF(old);
	}
}

/*
 * get_big - tc_get_with's buffer for a value longer than the buffer it was
 * given: a new bytes object of exactly its length (*ARG), made inside the
 * read section.  Allocating there runs no Python code (bytes are not
 * tracked by the GC) and cannot release the GIL.
 */
static void *get_big(const tc_meta *m, void *arg)
{
	PyObject **out = arg;
	*out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)m->len);
	return *out ? PyBytes_AS_STRING(*out) : NULL;
}

/*
 * fetch_key - the live value of KEY as bytes, or NULL.  *RC is 0 (value
 * returned), -ENOENT (miss, no exception) or another code (exception set).
 * KEYOBJ is the key's object, for the recent results (see struct recent),
 * or NULL.
 *
 * One lookup (tc_get_with).  The value goes straight into the bytes object
 * kept for KEYOBJ when only the kept results hold it (owned), else into the
 * spare when only the spare holds it (KEYOBJ known), else to the stack, up
 * to STACK_VALUE bytes (tc_get's path, no callback); when that copy is byte
 * for byte the bytes object a recent get returned for this key and version,
 * that object is returned again (shared); else the spare is returned when
 * the value filled it exactly, or the bytes are made from the copy.  A
 * value longer than the buffer is copied once, straight into its new bytes
 * object (get_big), which the shared case compares in the same way.
 */
static inline __attribute__((always_inline)) PyObject *
fetch_key(CacheObject *self, tc_cache *c, PyObject *keyobj, const bytearg *k, tc_meta *m, int *rc)
{
	char buf[STACK_VALUE];
	char *dst = buf;
	size_t cap = sizeof buf;
	PyObject *big = NULL, *spare = NULL;
	struct recent *own = keyobj ? recent_owned(self, keyobj) : NULL;
	if (!own && keyobj && (spare = spare_take(self)) != NULL) {
		dst = PyBytes_AS_STRING(spare);
		cap = (size_t)PyBytes_GET_SIZE(spare);
	}
	if (own) {
		dst = PyBytes_AS_STRING(own->value);
		cap = (size_t)PyBytes_GET_SIZE(own->value);
		/* Its bytes are this call's from here on, whether or not it
		 * returns them: a shorter or failed copy changes them too, and
		 * the shared case may return the object later (by content,
		 * under a version scribbled to 0). */
		own->version = 0;
		bytes_rewritten(own->value);
	}
	/* The owned slot's key is KEYOBJ itself, whose hash under this handle
	 * the slot kept: the library skips hashing it again. */
	int r = own ? tc_get_hashed(c, own->hash, k->p, (size_t)k->n, dst, cap, m, get_big, &big)
		    : tc_get_with(c, k->p, (size_t)k->n, dst, cap, m, get_big, &big);
	if (LIKELY(r == 0)) {
		PyObject *b = big;
		*rc = 0;
		if (LIKELY(own != NULL && b == NULL && m->len == cap)) {
			b = own->value;
			own->version = m->version;
			Py_INCREF(b);
			return b;
		}
		if (!keyobj) {
			if (!b)
				b = PyBytes_FromStringAndSize(dst, (Py_ssize_t)m->len);
			if (UNLIKELY(b == NULL))
				goto nomem;
			return b;
		}
		uint64_t tail = key_tail(k), mix = recent_mix(m->version, tail);
		struct recent *e = &self->recent[mix >> (64 - RECENT_BITS)];
		/* The shared case compares the copy, wherever it went. */
		PyObject *f = recent_find(self, e, tail, keyobj, k, m, b ? PyBytes_AS_STRING(b) : dst);
		if (f) {
			Py_XDECREF(b);
			return f;
		}
		if (!b) {
			if (spare && m->len == cap) {
				b = spare;
				Py_INCREF(b);
			} else if (UNLIKELY((b = PyBytes_FromStringAndSize(dst, (Py_ssize_t)m->len)) ==
					    NULL)) {
				goto nomem;
			}
		}
		if (!recent_put(self, e, mix ^ (uint64_t)k->n, tail, c, keyobj, k, m, b))
			spare_offer(self, b);
		else if (b == self->spare)
			Py_CLEAR(self->spare); /* the slot's reference now */
		return b;
	} else if (UNLIKELY(big != NULL)) {
		Py_DECREF(big); /* a copy that failed its checksum */
	}
	*rc = r;
	if (r != -ENOENT && r != -ENOMEM) /* -ENOMEM: get_big raised MemoryError */
		cache_error(r, self->name, k->p, k->n);
	return NULL;
nomem: /* PyBytes_FromStringAndSize raised MemoryError */
	*rc = -ENOMEM;
	return NULL;
}

/* fetch_key without the recent results (KEY's object unknown). */
static PyObject *fetch(CacheObject *self, tc_cache *c, const bytearg *k, tc_meta *m, int *rc)
{
	return fetch_key(self, c, NULL, k, m, rc);
}

PyDoc_STRVAR(get_doc,
"get(key, default=None) -> bytes | default\n--\n\n"
"The live value of KEY (str, UTF-8, or bytes-like) as bytes, or DEFAULT\n"
"when the key is absent or expired.  A miss never raises; a removed\n"
"segment raises StaleError.  Lock-free; the GIL is held (the call takes\n"
"nanoseconds).  get may return a bytes object it returned before: the\n"
"same object while KEY's value is unchanged (the same version and the same\n"
"bytes), or, once nothing but the cache references it, an object it\n"
"returned before (for KEY or another key) with the new value written into\n"
"it instead of a new copy.");

static PyObject *Cache_get(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
			   PyObject *kwnames)
{
	PyObject *key, *dflt = Py_None;
	if (LIKELY(nargs == 1 && !kwnames)) {
		key = args[0];
	} else if (nargs == 2 && !kwnames) {
		key = args[0];
		dflt = args[1];
	} else {
		static const char *const names[] = { "key", "default", NULL };
		PyObject *a[2] = { NULL, Py_None };
		if (parse("get", args, nargs, kwnames, names, 1, a) < 0)
			return NULL;
		key = a[0];
		dflt = a[1];
	}
	bytearg k;
	if (LIKELY(PyUnicode_CheckExact(key) && PyUnicode_IS_COMPACT_ASCII(key) &&
		   (size_t)PyUnicode_GET_LENGTH(key) - 1 < TC_KEY_MAX)) {
		/* key_arg's most common case, inline: a str of 1..TC_KEY_MAX
		 * ASCII characters is its own UTF-8. */
		k.p = (const char *)PyUnicode_DATA(key);
		k.n = PyUnicode_GET_LENGTH(key);
		k.has_view = 0;
	} else if (UNLIKELY(key_arg(key, &k) < 0)) {
		return NULL;
	}
	tc_cache *c = handle(self);
	if (UNLIKELY(!c)) {
		arg_release(&k);
		return NULL;
	}
	tc_meta m;
	int rc;
	PyObject *v = fetch_key(self, c, key, &k, &m, &rc);
	arg_release(&k);
	if (LIKELY(v != NULL))
		return v;
	if (rc == -ENOENT) {
		Py_INCREF(dflt);
		return dflt;
	}
	return NULL;
}

PyDoc_STRVAR(get_item_doc,
"get_item(key) -> Item | None\n--\n\n"
"The live value of KEY with its metadata (Item: value, type, version,\n"
"expires_at as float epoch seconds or None), or None on a miss.");

static PyObject *Cache_get_item(CacheObject *self, PyObject *key)
{
	bytearg k;
	if (key_arg(key, &k) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c) {
		arg_release(&k);
		return NULL;
	}
	tc_meta m;
	int rc;
	PyObject *v = fetch_key(self, c, key, &k, &m, &rc);
	arg_release(&k);
	if (v)
		return make_item(v, &m);
	if (rc == -ENOENT)
		Py_RETURN_NONE;
	return NULL;
}

PyDoc_STRVAR(get_many_doc,
"get_many(keys) -> list[bytes | None]\n--\n\n"
"The values of an iterable of keys, in order, None for each miss (a single\n"
"str, bytes or bytearray key is a TypeError, not the keys of its items).  One\n"
"tc_peek_many in one read section: the keys' cache misses overlap, and\n"
"each value is copied once, straight into its bytes object.");

static PyObject *Cache_get_many(CacheObject *self, PyObject *keys)
{
	tc_cache *c;
	if (PyUnicode_Check(keys) || PyBytes_Check(keys) || PyByteArray_Check(keys)) {
		/* Iterating it would read its characters (or ints) as keys. */
		PyErr_Format(PyExc_TypeError, "keys must be an iterable of keys, not one %.100s key",
			     Py_TYPE(keys)->tp_name);
		return NULL;
	}
	PyObject *seq = PySequence_Fast(keys, "keys must be an iterable of keys");
	if (!seq)
		return NULL;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), got = 0;
	PyObject *out = NULL;
	bytearg *ka = NULL;
	tc_req *r = NULL;
	const void **vals = NULL;
	if (n == 0) {
		Py_DECREF(seq);
		return handle(self) ? PyList_New(0) : NULL;
	}
	ka = PyMem_Calloc((size_t)n, sizeof(*ka));
	r = PyMem_Calloc((size_t)n, sizeof(*r));
	vals = PyMem_Calloc((size_t)n, sizeof(*vals));
	if (!ka || !r || !vals) {
		PyErr_NoMemory();
		goto fail;
	}
	/* A reference of our own to each key: its bytes are read from it until
	 * the lookups, and Python code that runs before them (a finalizer, at
	 * the allocation of OUT) may empty a list of the caller's. */
	for (; got < n; got++) {
		if (got >= PySequence_Fast_GET_SIZE(seq)) {
			PyErr_SetString(PyExc_RuntimeError, "keys list changed size during get_many");
			goto fail;
		}
		PyObject *o = PySequence_Fast_GET_ITEM(seq, got);
		Py_INCREF(o);
		if (key_arg(o, &ka[got]) < 0) {
			Py_DECREF(o);
			goto fail;
		}
		ka[got].ref = o;
		r[got].key = ka[got].p;
		r[got].klen = (size_t)ka[got].n;
	}
	out = PyList_New(n);
	if (!out)
		goto fail;
	/* The handle last: iterating KEYS and allocating OUT may run Python
	 * code (a generator, a finalizer), which may close the cache. */
	c = handle(self);
	if (!c)
		goto fail;
	int rc = tc_read_lock(c);
	if (rc) {
		cache_error(rc, self->name, NULL, 0);
		goto fail;
	}
	/* The bytes objects are made inside the section, from the pointers:
	 * no Python code runs there, only allocations. */
	rc = tc_peek_many(c, r, (size_t)n, vals);
	Py_ssize_t bad = -1;
	for (Py_ssize_t i = 0; rc >= 0 && i < n; i++) {
		PyObject *v;
		if (r[i].rc == 0) {
			v = PyBytes_FromStringAndSize(vals[i], (Py_ssize_t)r[i].meta.len);
			if (!v)
				break;
		} else if (r[i].rc == -ENOENT) {
			v = Py_None;
			Py_INCREF(v);
		} else {
			bad = i;
			break;
		}
		PyList_SET_ITEM(out, i, v);
	}
	tc_read_unlock(c);
	if (PyErr_Occurred())
		goto fail;
	if (rc < 0) {
		cache_error(rc, self->name, NULL, 0);
		goto fail;
	}
	if (bad >= 0) {
		cache_error(r[bad].rc, self->name, ka[bad].p, ka[bad].n);
		goto fail;
	}
	goto done;
fail:
	Py_CLEAR(out);
done:
	for (Py_ssize_t i = 0; i < got; i++) {
		arg_release(&ka[i]);
		Py_DECREF(ka[i].ref);
	}
	PyMem_Free(vals);
	PyMem_Free(r);
	PyMem_Free(ka);
	Py_DECREF(seq);
	return out;
}

PyDoc_STRVAR(exists_doc,
"exists(key) -> bool\n--\n\n"
"True when KEY holds a live value (also `key in cache`).  Errors raise as\n"
"get's do (StaleError when the segment was removed), never False.");

static int Cache_contains(CacheObject *self, PyObject *key)
{
	bytearg k;
	if (key_arg(key, &k) < 0)
		return -1;
	tc_cache *c = handle(self);
	if (!c) {
		arg_release(&k);
		return -1;
	}
	/* tc_exists's own call, whose errors tc_exists folds into false: a
	 * removed segment is StaleError here as in get, never "absent". */
	tc_meta m;
	int rc = tc_get(c, k.p, (size_t)k.n, NULL, 0, &m);
	int r = rc == 0 || rc == -E2BIG;
	if (!r && rc != -ENOENT) {
		cache_error(rc, self->name, k.p, k.n);
		r = -1;
	}
	arg_release(&k);
	return r;
}

static PyObject *Cache_exists(CacheObject *self, PyObject *key)
{
	int r = Cache_contains(self, key);
	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

/* ------------------------------------------------------------------ */
/* Cache: writes                                                        */
/* ------------------------------------------------------------------ */

enum { W_SET, W_ADD, W_CAS };

static PyObject *write_common(CacheObject *self, int op, const char *fname, PyObject *const *args,
			      Py_ssize_t nargs, PyObject *kwnames)
{
	static const char *const n_set[] = { "key", "value", "ttl", "type", NULL };
	static const char *const n_cas[] = { "key", "value", "version", "ttl", "type", NULL };
	PyObject *a[5] = { NULL, NULL, NULL, NULL, NULL };
	PyObject *o_ttl, *o_type, *o_ver = NULL;
	if (op == W_CAS) {
		if (parse(fname, args, nargs, kwnames, n_cas, 3, a) < 0)
			return NULL;
		o_ver = a[2];
		o_ttl = a[3];
		o_type = a[4];
	} else {
		if (LIKELY(!kwnames && nargs >= 2 && nargs <= 4)) {
			/* Positional only (add(key, value, ttl) of a dedupe
			 * mark): no keyword matching. */
			for (Py_ssize_t i = 0; i < nargs; i++)
				a[i] = args[i];
		} else if (parse(fname, args, nargs, kwnames, n_set, 2, a) < 0) {
			return NULL;
		}
		o_ttl = a[2];
		o_type = a[3];
	}
	uint64_t ttl, ver = 0;
	uint32_t type;
	if (seconds_arg(o_ttl, "ttl", 1, TC_TTL_DEFAULT, &ttl) < 0 ||
	    u32_arg(o_type, "type", &type) < 0 || (o_ver && u64_arg(o_ver, "version", &ver) < 0))
		return NULL;
	bytearg k, v;
	if (key_arg(a[0], &k) < 0)
		return NULL;
	if (value_arg(a[1], &v) < 0) {
		arg_release(&k);
		return NULL;
	}
	/* The handle after the arguments: converting them may run Python
	 * code (a ttl's __index__), which may close the cache. */
	tc_cache *c = handle(self);
	if (!c) {
		arg_release(&v);
		arg_release(&k);
		return NULL;
	}
	int rc;
	PyObject *res = NULL;
	switch (op) {
	case W_SET:
		rc = tc_set_v(c, k.p, (size_t)k.n, v.p, (size_t)v.n, type, ttl, &ver);
		if (rc == 0)
			res = PyLong_FromUnsignedLongLong(ver);
		break;
	case W_ADD:
		rc = tc_add(c, k.p, (size_t)k.n, v.p, (size_t)v.n, type, ttl);
		if (rc == 0 || rc == -EEXIST)
			res = PyBool_FromLong(rc == 0);
		break;
	default:
		rc = tc_cas(c, k.p, (size_t)k.n, ver, v.p, (size_t)v.n, type, ttl);
		if (rc == 0 || rc == TC_ECONFLICT || rc == -ENOENT)
			res = PyBool_FromLong(rc == 0);
		break;
	}
	if (!res && !PyErr_Occurred())
		cache_error(rc, self->name, k.p, k.n);
	arg_release(&v);
	arg_release(&k);
	return res;
}

PyDoc_STRVAR(set_doc,
"set(key, value, ttl=None, type=0) -> int\n--\n\n"
"Store VALUE (bytes-like) under KEY and return the new version.  TTL in\n"
"seconds: None = the segment's TTL policy or default, 0 = never expires.\n"
"TYPE is the application's uint32 type id.  The version is the one the\n"
"write published (tc_set_v), which get_item() reports and cas() expects\n"
"until the key's next change.  FullError when the segment is full under\n"
"eviction=\"none\".");

static PyObject *Cache_set(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
			   PyObject *kwnames)
{
	return write_common(self, W_SET, "set", args, nargs, kwnames);
}

PyDoc_STRVAR(add_doc,
"add(key, value, ttl=None, type=0) -> bool\n--\n\n"
"Store VALUE only when KEY has no live value: True when stored, False when\n"
"the key exists.  Atomic across processes: of racing adds exactly one\n"
"returns True.");

static PyObject *Cache_add(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
			   PyObject *kwnames)
{
	return write_common(self, W_ADD, "add", args, nargs, kwnames);
}

PyDoc_STRVAR(cas_doc,
"cas(key, value, version, ttl=None, type=0) -> bool\n--\n\n"
"Store VALUE only when KEY's live version equals VERSION (from set() or\n"
"get_item()).  False on a version conflict and when the key is missing.");

static PyObject *Cache_cas(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
			   PyObject *kwnames)
{
	return write_common(self, W_CAS, "cas", args, nargs, kwnames);
}

PyDoc_STRVAR(delete_doc,
"delete(key) -> bool\n--\n\n"
"Remove KEY: True when it was live, False when absent or expired.");

static PyObject *Cache_delete(CacheObject *self, PyObject *key)
{
	bytearg k;
	if (key_arg(key, &k) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c) {
		arg_release(&k);
		return NULL;
	}
	int rc = tc_del(c, k.p, (size_t)k.n);
	PyObject *res = NULL;
	if (rc == 0 || rc == -ENOENT)
		res = PyBool_FromLong(rc == 0);
	else
		cache_error(rc, self->name, k.p, k.n);
	arg_release(&k);
	return res;
}

PyDoc_STRVAR(expire_doc,
"expire(key, ttl) -> bool\n--\n\n"
"Give a live KEY a new TTL in seconds from now (0 removes its expiry); the\n"
"value is kept.  False when the key is absent or expired.");

static PyObject *Cache_expire(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
			      PyObject *kwnames)
{
	static const char *const names[] = { "key", "ttl", NULL };
	PyObject *a[2] = { NULL, NULL };
	if (parse("expire", args, nargs, kwnames, names, 2, a) < 0)
		return NULL;
	uint64_t ttl;
	if (seconds_arg(a[1], "ttl", 0, 0, &ttl) < 0)
		return NULL;
	bytearg k;
	if (key_arg(a[0], &k) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c) {
		arg_release(&k);
		return NULL;
	}
	int rc = tc_expire(c, k.p, (size_t)k.n, ttl);
	PyObject *res = NULL;
	if (rc == 0 || rc == -ENOENT)
		res = PyBool_FromLong(rc == 0);
	else
		cache_error(rc, self->name, k.p, k.n);
	arg_release(&k);
	return res;
}

PyDoc_STRVAR(incr_doc,
"incr(key, delta=1, ttl=None) -> int\n--\n\n"
"Add DELTA to the 64-bit counter at KEY and return the new value.  A\n"
"missing key starts from 0 and gets TTL; an existing counter keeps its\n"
"expiry.  A value that is not a counter raises Error (code TC_ETYPE).\n"
"Wraps on overflow, as int64 does.");

static PyObject *Cache_incr(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
			    PyObject *kwnames)
{
	static const char *const names[] = { "key", "delta", "ttl", NULL };
	PyObject *a[3] = { NULL, NULL, NULL };
	if (parse("incr", args, nargs, kwnames, names, 1, a) < 0)
		return NULL;
	long long delta = 1;
	if (a[1]) {
		if (!PyLong_Check(a[1]) || PyBool_Check(a[1])) {
			PyErr_Format(PyExc_TypeError, "delta must be int, not %.100s",
				     Py_TYPE(a[1])->tp_name);
			return NULL;
		}
		int over = 0;
		delta = PyLong_AsLongLongAndOverflow(a[1], &over);
		if (delta == -1 && PyErr_Occurred())
			return NULL;
		if (over) {
			PyErr_Format(PyExc_ValueError, "delta must fit in int64, got %R", a[1]);
			return NULL;
		}
	}
	uint64_t ttl;
	if (seconds_arg(a[2], "ttl", 1, TC_TTL_DEFAULT, &ttl) < 0)
		return NULL;
	bytearg k;
	if (key_arg(a[0], &k) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c) {
		arg_release(&k);
		return NULL;
	}
	int64_t out = 0;
	int rc = tc_incr(c, k.p, (size_t)k.n, (int64_t)delta, ttl, &out);
	PyObject *res = rc == 0 ? PyLong_FromLongLong(out) : cache_error(rc, self->name, k.p, k.n);
	arg_release(&k);
	return res;
}

PyDoc_STRVAR(rate_limit_doc,
"rate_limit(key, limit, window) -> tuple[bool, int]\n--\n\n"
"Count one call against the fixed-window limiter KEY: LIMIT calls per\n"
"WINDOW seconds (windows aligned to multiples of WINDOW since the epoch).\n"
"Returns (allowed, count): count is the calls of the current window\n"
"including this one, allowed is count <= limit.  Exact across processes.");

static PyObject *Cache_rate_limit(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
				  PyObject *kwnames)
{
	static const char *const names[] = { "key", "limit", "window", NULL };
	PyObject *a[3] = { NULL, NULL, NULL };
	if (parse("rate_limit", args, nargs, kwnames, names, 3, a) < 0)
		return NULL;
	uint64_t limit, window;
	if (u64_arg(a[1], "limit", &limit) < 0 || seconds_arg(a[2], "window", 0, 0, &window) < 0)
		return NULL;
	if (limit == 0) {
		PyErr_SetString(PyExc_ValueError, "limit must be at least 1");
		return NULL;
	}
	if (window == 0) {
		PyErr_SetString(PyExc_ValueError, "window must be positive");
		return NULL;
	}
	bytearg k;
	if (key_arg(a[0], &k) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c) {
		arg_release(&k);
		return NULL;
	}
	bool allowed = false;
	uint64_t count = 0;
	int rc = tc_rate_limit(c, k.p, (size_t)k.n, limit, window, &allowed, &count);
	PyObject *res = rc == 0 ? Py_BuildValue("(NK)", PyBool_FromLong(allowed),
					       (unsigned long long)count)
				: cache_error(rc, self->name, k.p, k.n);
	arg_release(&k);
	return res;
}

/* ------------------------------------------------------------------ */
/* get_or_load                                                          */
/* ------------------------------------------------------------------ */

struct load_ctx {
	PyObject *loader;
	PyThreadState *ts;   /* saved while the GIL is released */
	PyObject *exc_type, *exc_value, *exc_tb;
};

/* Called by tc_get_or_load without the GIL: take it, call the loader,
 * copy its bytes, give the GIL back.  A Python exception is kept for the
 * caller and reported to the library as -ECANCELED (nothing is cached). */
static int load_cb(const void *key, size_t klen, void *buf, size_t cap, size_t *len, void *arg)
{
	(void)key;
	(void)klen;
	struct load_ctx *x = arg;
	int rc = 0;
	PyEval_RestoreThread(x->ts);
	PyObject *r = PyObject_CallNoArgs(x->loader);
	if (r) {
		Py_buffer b;
		if (PyUnicode_Check(r) || !PyObject_CheckBuffer(r)) {
			PyErr_Format(PyExc_TypeError, "loader must return bytes-like, not %.100s",
				     Py_TYPE(r)->tp_name);
		} else if (simple_buffer(r, &b, "loader must return") == 0) {
			if ((size_t)b.len > cap)
				PyErr_Format(PyExc_ValueError,
					     "value is %zd bytes; the limit is %zu", b.len, cap);
			else {
				memcpy(buf, b.buf, (size_t)b.len);
				*len = (size_t)b.len;
			}
			PyBuffer_Release(&b);
		}
		Py_DECREF(r);
	}
	if (PyErr_Occurred()) {
		/* Only the first failure is kept (a lease takeover may call again). */
		if (!x->exc_type)
			PyErr_Fetch(&x->exc_type, &x->exc_value, &x->exc_tb);
		else
			PyErr_Clear();
		/* PyErr_Fetch is deprecated from 3.12 but kept working; the
		 * exception is restored unchanged with PyErr_Restore. */
		rc = -ECANCELED;
	}
	x->ts = PyEval_SaveThread();
	return rc;
}

PyDoc_STRVAR(get_or_load_doc,
"get_or_load(key, loader, ttl=None, wait=5.0, type=0) -> bytes\n--\n\n"
"Read-through with single flight across processes.  A hit returns the\n"
"value.  On a miss exactly one caller (of any process) runs LOADER() ->\n"
"bytes-like, stores its value with TTL and TYPE and returns it; the others\n"
"wait up to WAIT seconds for it (TimeoutError when it does not come).  The\n"
"loading caller's lease lasts WAIT seconds (at least 1): when its loader\n"
"raises or runs longer, a waiter takes the lease over and loads.  The\n"
"GIL is released while waiting; the loader runs with the GIL held.  A\n"
"loader's exception reaches its own caller unchanged and nothing is\n"
"cached.");

static PyObject *Cache_get_or_load(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
				   PyObject *kwnames)
{
	static const char *const names[] = { "key", "loader", "ttl", "wait", "type", NULL };
	PyObject *a[5] = { NULL, NULL, NULL, NULL, NULL };
	if (parse("get_or_load", args, nargs, kwnames, names, 2, a) < 0)
		return NULL;
	if (!PyCallable_Check(a[1])) {
		PyErr_Format(PyExc_TypeError, "loader must be callable, not %.100s",
			     Py_TYPE(a[1])->tp_name);
		return NULL;
	}
	uint64_t ttl, wait = 5000;
	uint32_t type;
	if (seconds_arg(a[2], "ttl", 1, TC_TTL_DEFAULT, &ttl) < 0 ||
	    (a[3] && seconds_arg(a[3], "wait", 0, 0, &wait) < 0) || u32_arg(a[4], "type", &type) < 0)
		return NULL;
	bytearg k;
	if (key_arg(a[0], &k) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c) {
		arg_release(&k);
		return NULL;
	}
	/* A hit is a plain get, with the GIL held. */
	tc_meta m;
	int rc;
	PyObject *v = fetch(self, c, &k, &m, &rc);
	if (v || rc != -ENOENT) {
		arg_release(&k);
		return v;
	}
	char *buf = PyMem_RawMalloc(TC_VALUE_MAX);
	if (!buf) {
		arg_release(&k);
		return PyErr_NoMemory();
	}
	struct load_ctx x = { .loader = a[1] };
	self->busy++;
	x.ts = PyEval_SaveThread();
	rc = tc_get_or_load(c, k.p, (size_t)k.n, buf, TC_VALUE_MAX, &m, type, ttl, wait, load_cb,
			    &x);
	PyEval_RestoreThread(x.ts);
	busy_end(self);
	if (x.exc_type) {
		/* The loader's own exception, unchanged (even if a later
		 * takeover by this call succeeded, the caller learns it). */
		PyErr_Restore(x.exc_type, x.exc_value, x.exc_tb);
		v = NULL;
	} else if (rc == 0) {
		v = PyBytes_FromStringAndSize(buf, (Py_ssize_t)m.len);
	} else {
		v = cache_error(rc, self->name, k.p, k.n);
	}
	PyMem_RawFree(buf);
	arg_release(&k);
	return v;
}

/* ------------------------------------------------------------------ */
/* Iteration, purge                                                     */
/* ------------------------------------------------------------------ */

/* Store the new reference V (NULL: its creation failed) in the dict D under
 * KEY; 0, or -1 with an exception set. */
static int set_new(PyObject *d, const char *key, PyObject *v)
{
	int r = v ? PyDict_SetItemString(d, key, v) : -1;

	Py_XDECREF(v);
	return r < 0 ? -1 : 0;
}

/* Append the new reference O (NULL: its creation failed) to the list L: the
 * return value of an enumeration callback, 0 to go on, 1 to stop with the
 * exception set. */
static int append_new(PyObject *l, PyObject *o)
{
	int r = o ? PyList_Append(l, o) : -1;

	Py_XDECREF(o);
	return r < 0 ? 1 : 0;
}

/* The end of an enumeration that filled the new reference OUT and returned
 * RC: OUT when RC is 0, else NULL, with the exception its callback set (RC 1)
 * or the library's error. */
static PyObject *collected(CacheObject *self, PyObject *out, int rc)
{
	if (!rc)
		return out;
	Py_DECREF(out);
	return rc == 1 && PyErr_Occurred() ? NULL : cache_error(rc, self->name, NULL, 0);
}

/* A key as str when it is UTF-8, else bytes. */
static PyObject *key_object(const void *key, size_t klen)
{
	PyObject *o = PyUnicode_DecodeUTF8(key, (Py_ssize_t)klen, "strict");
	if (!o && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
		PyErr_Clear();
		o = PyBytes_FromStringAndSize(key, (Py_ssize_t)klen);
	}
	return o;
}

static int scan_cb(const void *key, size_t klen, const tc_meta *meta, void *arg)
{
	(void)meta;
	return append_new((PyObject *)arg, key_object(key, klen));
}

PyDoc_STRVAR(keys_doc,
"keys(pattern=\"*\") -> list\n--\n\n"
"The live keys matching the glob PATTERN (fnmatch rules), str for UTF-8\n"
"keys and bytes for others, in no particular order.  Keys present for the\n"
"whole call are listed once; keys written meanwhile may or may not be.\n"
"Never blocks writers.");

static PyObject *Cache_keys(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
			    PyObject *kwnames)
{
	static const char *const names[] = { "pattern", NULL };
	PyObject *a[1] = { NULL };
	if (parse("keys", args, nargs, kwnames, names, 0, a) < 0)
		return NULL;
	PyObject *glob = NULL;
	if (a[0] && glob_arg(a[0], &glob) < 0)
		return NULL;
	PyObject *list = PyList_New(0);
	tc_cache *c = list ? handle(self) : NULL;
	if (!c) {
		Py_XDECREF(list);
		Py_XDECREF(glob);
		return NULL;
	}
	int rc = tc_scan(c, glob ? PyBytes_AS_STRING(glob) : "*", scan_cb, list);
	Py_XDECREF(glob);
	return collected(self, list, rc);
}

PyDoc_STRVAR(purge_doc,
"purge(pattern) -> int\n--\n\n"
"Delete the live keys matching the glob PATTERN (\"*\" deletes every key)\n"
"and return how many were deleted.  DTO lists, rate limiters and load\n"
"leases are not keys and are never purged.");

static PyObject *Cache_purge(CacheObject *self, PyObject *pattern)
{
	PyObject *glob;
	if (glob_arg(pattern, &glob) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c) {
		Py_DECREF(glob);
		return NULL;
	}
	uint64_t n = 0;
	int rc = tc_purge(c, PyBytes_AS_STRING(glob), &n);
	Py_DECREF(glob);
	if (rc)
		return cache_error(rc, self->name, NULL, 0);
	return PyLong_FromUnsignedLongLong(n);
}

/* ------------------------------------------------------------------ */
/* TTL policies                                                         */
/* ------------------------------------------------------------------ */

PyDoc_STRVAR(ttl_policy_doc,
"ttl_policy(prefix, ttl)\n--\n\n"
"Writes with ttl=None to keys starting with PREFIX get TTL seconds (the\n"
"longest matching prefix wins; 0 = never expires).  TTL None removes the\n"
"prefix's policy.  Seen at once by every process of the segment.");

static PyObject *Cache_ttl_policy(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
				  PyObject *kwnames)
{
	static const char *const names[] = { "prefix", "ttl", NULL };
	PyObject *a[2] = { NULL, NULL };
	if (parse("ttl_policy", args, nargs, kwnames, names, 2, a) < 0)
		return NULL;
	if (!PyUnicode_Check(a[0])) {
		PyErr_Format(PyExc_TypeError, "prefix must be str, not %.100s",
			     Py_TYPE(a[0])->tp_name);
		return NULL;
	}
	Py_ssize_t plen;
	const char *prefix = PyUnicode_AsUTF8AndSize(a[0], &plen);
	if (!prefix)
		return NULL;
	if (plen == 0 || plen > TC_POLICY_PREFIX_MAX || strlen(prefix) != (size_t)plen) {
		PyErr_Format(PyExc_ValueError, "prefix is %zd bytes; it must be 1..%d without NUL",
			     plen, TC_POLICY_PREFIX_MAX);
		return NULL;
	}
	uint64_t ttl = 0;
	if (a[1] != Py_None && seconds_arg(a[1], "ttl", 0, 0, &ttl) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c)
		return NULL;
	int rc;
	if (a[1] == Py_None) {
		rc = tc_ttl_policy_del(c, prefix);
		if (rc == -ENOENT)
			rc = 0;
	} else {
		rc = tc_ttl_policy_set(c, prefix, ttl);
	}
	if (rc)
		return cache_error(rc, self->name, prefix, plen);
	Py_RETURN_NONE;
}

static int policy_cb(const char *prefix, uint64_t ttl_ms, void *arg)
{
	return set_new((PyObject *)arg, prefix, PyFloat_FromDouble((double)ttl_ms / 1000.0)) < 0;
}

PyDoc_STRVAR(ttl_policies_doc,
"ttl_policies() -> dict\n--\n\n"
"The segment's TTL policies: prefix (str) -> TTL in seconds (float).");

static PyObject *Cache_ttl_policies(CacheObject *self, PyObject *unused)
{
	(void)unused;
	PyObject *d = PyDict_New();
	tc_cache *c = d ? handle(self) : NULL;
	if (!c) {
		Py_XDECREF(d);
		return NULL;
	}
	return collected(self, d, tc_ttl_policy_list(c, policy_cb, d));
}

PyDoc_STRVAR(load_ttl_policies_doc,
"load_ttl_policies(path)\n--\n\n"
"Apply a policy file of lines \"prefix = ttl_ms\" (the C library's format:\n"
"# comments, blank lines skipped) as one change.  A bad line raises\n"
"ValueError naming the file and line and nothing is applied; a missing\n"
"file raises FileNotFoundError.");

static PyObject *Cache_load_ttl_policies(CacheObject *self, PyObject *path)
{
	PyObject *p;
	if (path_arg(path, &p) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c) {
		Py_DECREF(p);
		return NULL;
	}
	unsigned bad = 0;
	int rc = tc_ttl_policy_load_ex(c, PyBytes_AS_STRING(p), &bad);
	PyObject *res = NULL;
	if (rc == 0) {
		Py_INCREF(Py_None);
		res = Py_None;
	} else if (rc == -EINVAL && bad > 0) {
		PyErr_Format(PyExc_ValueError, "%R, line %u: not a TTL policy line \"prefix = ttl_ms\"",
			     path, bad);
	} else {
		file_error(rc, self->name, path, 1);
	}
	Py_DECREF(p);
	return res;
}

/* ------------------------------------------------------------------ */
/* Statistics, readers, info                                            */
/* ------------------------------------------------------------------ */

/* D[KEY] = VAL as an int, an int, a float, or the new reference VAL (each
 * evaluated once); on failure goto fail. */
#define SET_O(d, key, val) do { if (set_new((d), (key), (val)) < 0) goto fail; } while (0)
#define SET_U(d, key, val) SET_O(d, key, PyLong_FromUnsignedLongLong((unsigned long long)(val)))
#define SET_I(d, key, val) SET_O(d, key, PyLong_FromLongLong((long long)(val)))
#define SET_F(d, key, val) SET_O(d, key, PyFloat_FromDouble((double)(val)))

PyDoc_STRVAR(raw_stats_doc,
"_raw_stats() -> dict\n--\n\n"
"tc_get_stats as a dict of its field names (stats() adds what\n"
"shm-inspect --json stat shows).");

static PyObject *Cache_raw_stats(CacheObject *self, PyObject *unused)
{
	(void)unused;
	tc_cache *c = handle(self);
	if (!c)
		return NULL;
	tc_stats st;
	int rc = tc_get_stats(c, &st);
	if (rc)
		return cache_error(rc, self->name, NULL, 0);
	PyObject *d = PyDict_New(), *cl = NULL;
	if (!d)
		return NULL;
	SET_U(d, "hits", st.hits);
	SET_U(d, "misses", st.misses);
	SET_F(d, "hit_rate", st.hit_rate);
	SET_U(d, "sets", st.sets);
	SET_U(d, "adds", st.adds);
	SET_U(d, "deletes", st.deletes);
	SET_U(d, "expirations", st.expirations);
	SET_U(d, "evictions", st.evictions);
	SET_U(d, "errors", st.errors);
	SET_U(d, "ops", st.ops);
	SET_U(d, "clears", st.clears);
	SET_U(d, "keys_deleted", st.keys_deleted);
	SET_U(d, "lat_samples", st.lat_samples);
	SET_U(d, "lat_mean_ns", st.lat_mean_ns);
	SET_U(d, "slow_ops", st.slow_ops);
	SET_U(d, "slow_threshold_ns", st.slow_threshold_ns);
	SET_U(d, "entries", st.entries);
	SET_U(d, "max_entries", st.max_entries);
	SET_U(d, "index_slots", st.index_slots);
	SET_U(d, "memory_bytes", st.memory_bytes);
	SET_U(d, "memory_used", st.memory_used);
	SET_U(d, "memory_retired", st.memory_retired);
	SET_U(d, "memory_carved", st.memory_carved);
	SET_U(d, "merges", st.merges);
	SET_U(d, "checksum_failures", st.checksum_failures);
	SET_U(d, "max_readers", st.max_readers);
	SET_U(d, "readers", st.readers);
	SET_U(d, "tool_readers", st.tool_readers);
	SET_U(d, "attached", st.attached);
	SET_U(d, "epoch", st.epoch);
	SET_U(d, "epoch_lag", st.epoch_lag);
	SET_I(d, "created_ms", st.created_ms);
	SET_U(d, "uptime_ms", st.uptime_ms);
	SET_U(d, "run_generation", st.run_generation);
	SET_U(d, "dto_lists", st.dto_lists);
	SET_U(d, "run_active", st.run_active);
	SET_U(d, "ttl_policies", st.ttl_policies);
	cl = PyList_New(0);
	if (!cl)
		goto fail;
	for (uint32_t i = 0; i < st.nclasses && i < TC_NCLASSES; i++)
		if (append_new(cl, Py_BuildValue("{sIsKsK}", "size", (unsigned)st.classes[i].size,
						 "used", (unsigned long long)st.classes[i].used,
						 "free", (unsigned long long)st.classes[i].free)))
			goto fail;
	int r = PyDict_SetItemString(d, "classes", cl);
	Py_CLEAR(cl);
	if (r < 0)
		goto fail;
	return d;
fail:
	Py_XDECREF(cl);
	Py_DECREF(d);
	return NULL;
}

PyDoc_STRVAR(info_doc,
"info() -> dict\n--\n\n"
"The segment's geometry and settings: name, layout_version, max_entries,\n"
"memory_bytes, max_readers, mode, default_ttl_ms, eviction (\"none\" or\n"
"\"lru\"), checksums (bool), segment_bytes, created_ms, creator_pid; and\n"
"the sweeper lease:\n"
"sweeper_pid (None when no sweeper holds it), sweeper_alive,\n"
"sweeper_age_ms; and the Redis tier (shm-bridge): tier (\"up\", \"down\"\n"
"or \"none\"; \"down\" also when the bridge is dead), tier_pid (None when\n"
"no bridge holds it), tier_alive, tier_heartbeat_age_ms (None without a\n"
"bridge), tier_since_ms (the last change of state, 0 = never).");

static PyObject *Cache_info(CacheObject *self, PyObject *unused)
{
	(void)unused;
	tc_cache *c = handle(self);
	if (!c)
		return NULL;
	tc_info in;
	int rc = tc_get_info(c, &in);
	if (rc)
		return cache_error(rc, self->name, NULL, 0);
	uint32_t lpid = 0;
	uint64_t lage = 0;
	bool lalive = false;
	if (tc_lease_holder(c, &lpid, &lage, &lalive))
		lpid = 0;
	/* Every library call before the first Python object: making one may
	 * run a finalizer, which may close the cache. */
	tc_tier t;
	if (tc_tier_get(c, &t))
		memset(&t, 0, sizeof(t));
	PyObject *d = PyDict_New();
	if (!d)
		return NULL;
	SET_O(d, "name", PyUnicode_FromString(in.name));
	SET_U(d, "layout_version", in.layout_version);
	SET_U(d, "max_entries", in.max_entries);
	SET_U(d, "memory_bytes", in.memory_bytes);
	SET_U(d, "max_readers", in.max_readers);
	SET_U(d, "mode", in.mode);
	SET_U(d, "default_ttl_ms", in.default_ttl_ms);
	SET_O(d, "eviction", PyUnicode_FromString(in.eviction == TC_EVICT_LRU ? "lru" : "none"));
	SET_O(d, "checksums", PyBool_FromLong((in.flags & TC_CHECKSUM) != 0));
	SET_U(d, "segment_bytes", in.segment_bytes);
	SET_I(d, "created_ms", in.created_ms);
	SET_U(d, "creator_pid", in.creator_pid);
	if (lpid) {
		SET_U(d, "sweeper_pid", lpid);
		SET_O(d, "sweeper_alive", PyBool_FromLong(lalive));
		SET_U(d, "sweeper_age_ms", lage);
	} else {
		if (PyDict_SetItemString(d, "sweeper_pid", Py_None) < 0 ||
		    PyDict_SetItemString(d, "sweeper_alive", Py_False) < 0 ||
		    PyDict_SetItemString(d, "sweeper_age_ms", Py_None) < 0)
			goto fail;
	}
	SET_O(d, "tier", PyUnicode_FromString(t.state == TC_TIER_UP ? "up" :
					      t.state == TC_TIER_DOWN ? "down" : "none"));
	if (t.pid) {
		SET_U(d, "tier_pid", t.pid);
		SET_U(d, "tier_heartbeat_age_ms", t.beat_age_ms);
	} else if (PyDict_SetItemString(d, "tier_pid", Py_None) < 0 ||
		   PyDict_SetItemString(d, "tier_heartbeat_age_ms", Py_None) < 0) {
		goto fail;
	}
	SET_O(d, "tier_alive", PyBool_FromLong(t.alive));
	SET_I(d, "tier_since_ms", t.since_ms);
	return d;
fail:
	Py_DECREF(d);
	return NULL;
}

static int reader_cb(const tc_reader *r, void *arg)
{
	static const char *const states[] = { "idle", "active", "dead" };
	return append_new((PyObject *)arg,
			  Py_BuildValue("{sIsOsIsIsssKsK}", "slot", (unsigned)r->slot, "tool",
					r->tool ? Py_True : Py_False, "pid", (unsigned)r->pid,
					"tid", (unsigned)r->tid, "state",
					(unsigned)r->state < 3 ? states[r->state] : "unknown",
					"epoch", (unsigned long long)r->epoch, "epoch_lag",
					(unsigned long long)r->epoch_lag));
}

PyDoc_STRVAR(readers_doc,
"readers() -> list[dict]\n--\n\n"
"The reader slots in use: slot, tool, pid, tid, state (\"idle\", \"active\"\n"
"or \"dead\"), epoch, epoch_lag.  A thread takes a slot on its first call.");

static PyObject *Cache_readers(CacheObject *self, PyObject *unused)
{
	(void)unused;
	PyObject *l = PyList_New(0);
	tc_cache *c = l ? handle(self) : NULL;
	if (!c) {
		Py_XDECREF(l);
		return NULL;
	}
	/* The callback makes dicts: a collection it starts may run a
	 * finalizer that closes the cache, deferred to busy_end. */
	self->busy++;
	int rc = tc_readers(c, reader_cb, l);
	busy_end(self);
	return collected(self, l, rc);
}

static int attach_cb(const tc_attach *a, void *arg)
{
	return append_new((PyObject *)arg,
			  Py_BuildValue("{sIsIsO}", "pid", (unsigned)a->pid, "handles",
					(unsigned)a->handles, "alive",
					a->alive ? Py_True : Py_False));
}

PyDoc_STRVAR(attached_doc,
"attached() -> list[dict]\n--\n\n"
"The processes attached to the segment: pid, handles, alive.");

static PyObject *Cache_attached(CacheObject *self, PyObject *unused)
{
	(void)unused;
	PyObject *l = PyList_New(0);
	tc_cache *c = l ? handle(self) : NULL;
	if (!c) {
		Py_XDECREF(l);
		return NULL;
	}
	/* The callback makes dicts: a collection it starts may run a
	 * finalizer that closes the cache, deferred to busy_end. */
	self->busy++;
	int rc = tc_attached(c, attach_cb, l);
	busy_end(self);
	return collected(self, l, rc);
}

/* ------------------------------------------------------------------ */
/* Snapshots                                                            */
/* ------------------------------------------------------------------ */

PyDoc_STRVAR(save_doc,
"save(path) -> int\n--\n\n"
"Write every live key (value, type, absolute expiry) to the snapshot file\n"
"PATH, atomically (a whole snapshot or the old file), and return the\n"
"number of keys saved.  Runs, DTO lists, rate windows and TTL policies are\n"
"not saved.  File system errors raise the built-in OSError subclasses.");

static PyObject *Cache_save(CacheObject *self, PyObject *path)
{
	PyObject *p;
	if (path_arg(path, &p) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c) {
		Py_DECREF(p);
		return NULL;
	}
	tc_snapshot_report rep;
	memset(&rep, 0, sizeof rep);
	int rc;
	self->busy++;
	Py_BEGIN_ALLOW_THREADS
	rc = tc_snapshot_save(c, PyBytes_AS_STRING(p), &rep);
	Py_END_ALLOW_THREADS
	busy_end(self);
	Py_DECREF(p);
	if (rc)
		return file_error(rc, self->name, path, 0);
	return PyLong_FromUnsignedLongLong(rep.keys);
}

PyDoc_STRVAR(load_doc,
"load(path, replace=False) -> int\n--\n\n"
"Write the keys of the snapshot file PATH into the cache with their\n"
"remaining TTL (expired ones are skipped) and return the number of keys\n"
"written.  Keys already present are kept unless REPLACE.  A damaged file\n"
"raises CorruptError before anything is written; FullError when the\n"
"segment fills up part way.");

static PyObject *Cache_load(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
			    PyObject *kwnames)
{
	static const char *const names[] = { "path", "replace", NULL };
	PyObject *a[2] = { NULL, Py_False };
	if (parse("load", args, nargs, kwnames, names, 1, a) < 0)
		return NULL;
	int replace = PyObject_IsTrue(a[1]);
	if (replace < 0)
		return NULL;
	PyObject *p;
	if (path_arg(a[0], &p) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c) {
		Py_DECREF(p);
		return NULL;
	}
	tc_snapshot_report rep;
	memset(&rep, 0, sizeof rep);
	int rc;
	self->busy++;
	Py_BEGIN_ALLOW_THREADS
	rc = tc_snapshot_load(c, PyBytes_AS_STRING(p), replace ? TC_SNAP_REPLACE : 0, &rep);
	Py_END_ALLOW_THREADS
	busy_end(self);
	Py_DECREF(p);
	if (rc)
		return file_error(rc, self->name, a[0], 1);
	return PyLong_FromUnsignedLongLong(rep.keys);
}

/* ------------------------------------------------------------------ */
/* Runs and DTO lists (the primitives of tickcache.strategy)            */
/* ------------------------------------------------------------------ */

PyDoc_STRVAR(run_start_doc,
"_run_start(ts_ns, run_id=0)\n--\n\n"
"tc_run_start: begin a run anchored at TS_NS (UTC nanoseconds).  BusyError\n"
"when a run is active.");

static PyObject *Cache_run_start(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
				 PyObject *kwnames)
{
	static const char *const names[] = { "ts_ns", "run_id", NULL };
	PyObject *a[2] = { NULL, NULL };
	if (parse("_run_start", args, nargs, kwnames, names, 1, a) < 0)
		return NULL;
	long long ts = PyLong_AsLongLong(a[0]);
	if (ts == -1 && PyErr_Occurred())
		return NULL;
	uint64_t run_id = 0;
	if (a[1] && u64_arg(a[1], "run_id", &run_id) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c)
		return NULL;
	int rc = tc_run_start(c, (int64_t)ts, run_id);
	if (rc)
		return cache_error(rc, self->name, NULL, 0);
	Py_RETURN_NONE;
}

PyDoc_STRVAR(run_anchor_doc,
"_run_anchor() -> tuple\n--\n\n"
"tc_run_anchor: (ts_ns, run_id, generation, started_ms, starter_pid) of\n"
"the active run; CacheNotConfiguredError without one.");

static PyObject *Cache_run_anchor(CacheObject *self, PyObject *unused)
{
	(void)unused;
	tc_cache *c = handle(self);
	if (!c)
		return NULL;
	tc_anchor an;
	int rc = tc_run_anchor(c, &an);
	if (rc)
		return cache_error(rc, self->name, NULL, 0);
	return Py_BuildValue("(LKKLI)", (long long)an.ts_ns, (unsigned long long)an.run_id,
			     (unsigned long long)an.generation, (long long)an.started_ms,
			     (unsigned)an.starter_pid);
}

PyDoc_STRVAR(run_end_doc,
"_run_end(generation=None) -> bool\n--\n\n"
"End the active run (only the run of GENERATION when given): True when a\n"
"run was ended, False when none was active (or another run is).");

static PyObject *Cache_run_end(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
			       PyObject *kwnames)
{
	static const char *const names[] = { "generation", NULL };
	PyObject *a[1] = { NULL };
	if (parse("_run_end", args, nargs, kwnames, names, 0, a) < 0)
		return NULL;
	uint64_t gen = 0;
	if (a[0] && a[0] != Py_None && u64_arg(a[0], "generation", &gen) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c)
		return NULL;
	int rc;
	if (a[0] && a[0] != Py_None) {
		rc = tc_run_end_gen(c, gen);
	} else {
		rc = tc_run_end(c);
	}
	if (rc == 0 || rc == TC_ENORUN || rc == TC_ECONFLICT)
		return PyBool_FromLong(rc == 0);
	return cache_error(rc, self->name, NULL, 0);
}

PyDoc_STRVAR(dto_append_doc,
"_dto_append(key, type, data)\n--\n\n"
"tc_dto_append: append DATA (bytes-like) of uint32 TYPE to the DTO list\n"
"at KEY in the active run.");

static PyObject *Cache_dto_append(CacheObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	if (nargs != 3) {
		PyErr_Format(PyExc_TypeError, "_dto_append() takes 3 arguments (%zd given)", nargs);
		return NULL;
	}
	uint32_t type;
	if (u32_arg(args[1], "type", &type) < 0)
		return NULL;
	bytearg k, v;
	if (key_arg(args[0], &k) < 0)
		return NULL;
	if (value_arg(args[2], &v) < 0) {
		arg_release(&k);
		return NULL;
	}
	tc_cache *c = handle(self);
	if (!c) {
		arg_release(&v);
		arg_release(&k);
		return NULL;
	}
	int rc = tc_dto_append(c, k.p, (size_t)k.n, type, v.p, (size_t)v.n);
	PyObject *res = NULL;
	if (rc == 0) {
		Py_INCREF(Py_None);
		res = Py_None;
	} else {
		cache_error(rc, self->name, k.p, k.n);
	}
	arg_release(&v);
	arg_release(&k);
	return res;
}

PyDoc_STRVAR(dto_count_doc,
"_dto_count(key) -> int\n--\n\n"
"tc_dto_count: the number of DTOs at KEY in the active run.");

static PyObject *Cache_dto_count(CacheObject *self, PyObject *key)
{
	bytearg k;
	if (key_arg(key, &k) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c) {
		arg_release(&k);
		return NULL;
	}
	size_t n = 0;
	int rc = tc_dto_count(c, k.p, (size_t)k.n, &n);
	PyObject *res = rc == 0 ? PyLong_FromSize_t(n) : cache_error(rc, self->name, k.p, k.n);
	arg_release(&k);
	return res;
}

static int dto_cb(const void *dto, size_t len, void *arg)
{
	PyObject *b = PyBytes_FromStringAndSize(dto, (Py_ssize_t)len);
	if (!b)
		return 1;
	int r = PyList_Append((PyObject *)arg, b);
	Py_DECREF(b);
	return r < 0 ? 1 : 0;
}

PyDoc_STRVAR(dto_list_doc,
"_dto_list(key, type) -> list[bytes]\n--\n\n"
"tc_dto_each: the DTOs at KEY in insertion order, copied; InvalidDTOTypeError\n"
"(code TC_ETYPE) when any is not of TYPE.");

static PyObject *Cache_dto_list(CacheObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	if (nargs != 2) {
		PyErr_Format(PyExc_TypeError, "_dto_list() takes 2 arguments (%zd given)", nargs);
		return NULL;
	}
	uint32_t type;
	if (u32_arg(args[1], "type", &type) < 0)
		return NULL;
	bytearg k;
	if (key_arg(args[0], &k) < 0)
		return NULL;
	PyObject *l = PyList_New(0);
	tc_cache *c = l ? handle(self) : NULL;
	if (!c) {
		Py_XDECREF(l);
		arg_release(&k);
		return NULL;
	}
	int rc = tc_dto_each(c, k.p, (size_t)k.n, type, dto_cb, l);
	if (rc == 1 && PyErr_Occurred()) {
		Py_CLEAR(l);
	} else if (rc == TC_ETYPE) {
		Py_CLEAR(l);
		PyObject *kr = key_repr_obj(k.p, k.n);
		if (kr) {
			PyObject *msg = PyUnicode_FromFormat("%s (segment '%s', key %R)",
							     tc_strerror(rc), self->name, kr);
			if (msg) {
				raise_code(InvalidDTOTypeError, rc, msg, NULL);
				Py_DECREF(msg);
			}
			Py_DECREF(kr);
		}
	} else if (rc) {
		Py_CLEAR(l);
		cache_error(rc, self->name, k.p, k.n);
	}
	arg_release(&k);
	return l;
}

/* ------------------------------------------------------------------ */
/* Waiting for a change (tc_wait, tc_wait_any)                          */
/* ------------------------------------------------------------------ */

/* The GIL is released while the call sleeps.  The caller holds the handle
 * busy for its whole call (a close() meanwhile, by another thread or by a
 * signal handler run here, is deferred to its end, as get_or_load's): it
 * uses C again after the wait.  A signal ends the sleep with -EINTR, or
 * is seen at the end of a slice of WAIT_SLICE_MS: its Python handler
 * runs, and unless it raised, the wait goes on with what is left of the
 * timeout (PEP 475). */
static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* tc_wait's "no deadline": TC_FOREVER, or any timeout above 100 years. */
#define WAIT_NO_END_MS (100ull * 365 * 24 * 3600 * 1000)

/* The end of a wait of TIMEOUT_MS from now (CLOCK_MONOTONIC ns; 0: none). */
static uint64_t wait_end(uint64_t timeout_ms)
{
	return timeout_ms > WAIT_NO_END_MS ? 0 : mono_ns() + timeout_ms * 1000000ull;
}

/* What is left until T_END, in ms rounded up: a call given it ends no
 * earlier than T_END. */
static uint64_t wait_left(uint64_t t_end)
{
	if (!t_end)
		return TC_FOREVER;
	uint64_t now = mono_ns();
	return now < t_end ? (t_end - now + 999999) / 1000000 : 0;
}

/*
 * The longest sleep between two looks at the signal flags.  A signal
 * interrupts the futex call only when this thread takes it; one that
 * another thread takes (the handler's C part then only trips a flag for
 * the main thread), or that lands between the GIL's release and the futex
 * call, is seen at the end of the slice, not of the whole timeout (which
 * may be none).  A slice's end re-arms the key's word: no writer pays.
 */
#define WAIT_SLICE_MS 1000u

static int wait_released(tc_cache *c, const bytearg *k, uint64_t version,
			 uint64_t t_end, tc_meta *m, uint64_t *seq)
{
	for (;;) {
		int rc;
		uint64_t left = wait_left(t_end),
			 timeout_ms = left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS;
		Py_BEGIN_ALLOW_THREADS
		rc = k ? tc_wait(c, k->p, (size_t)k->n, version, timeout_ms, m)
		       : tc_wait_any(c, seq, timeout_ms);
		Py_END_ALLOW_THREADS
		if (rc != -EINTR && (rc != -ETIMEDOUT || timeout_ms == left))
			return rc;
		if (PyErr_CheckSignals() < 0)
			return -EINTR; /* the handler's exception is set */
	}
}

PyDoc_STRVAR(wait_doc,
"wait(key, version=0, timeout=None) -> Item | None\n--\n\n"
"Sleep until KEY's version is greater than VERSION (0: until KEY exists),\n"
"then return it as get_item() does (an Item at least that new).  TIMEOUT\n"
"in seconds (None: no limit; 0: check once).  None when the timeout\n"
"passed, or when VERSION > 0 and the key is gone (deleted or expired; wait\n"
"with version=0 for it to come back).  The thread sleeps in the kernel\n"
"with the GIL released, woken by any writer of any process (tc_wait(3));\n"
"writers pay nothing while nobody waits.  A signal handler that raises\n"
"ends the wait with its exception (KeyboardInterrupt); otherwise the wait\n"
"goes on.");

static PyObject *Cache_wait(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
			    PyObject *kwnames)
{
	static const char *const names[] = { "key", "version", "timeout", NULL };
	PyObject *a[3] = { NULL, NULL, NULL };
	if (parse("wait", args, nargs, kwnames, names, 1, a) < 0)
		return NULL;
	uint64_t version = 0, timeout;
	if ((a[1] && u64_arg(a[1], "version", &version) < 0) ||
	    seconds_arg(a[2], "timeout", 1, TC_FOREVER, &timeout) < 0)
		return NULL;
	bytearg k;
	if (key_arg(a[0], &k) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c) {
		arg_release(&k);
		return NULL;
	}
	PyObject *res = NULL;
	/* One deadline for the whole call: a key deleted between the wake and
	 * the read below sends it back to sleep for what is left of it. */
	uint64_t t_end = wait_end(timeout);
	self->busy++;
	for (;;) {
		tc_meta m;
		int rc = wait_released(c, &k, version, t_end, &m, NULL);
		if (rc == -ETIMEDOUT || rc == -ENOENT) {
			Py_INCREF(Py_None);
			res = Py_None;
			break;
		}
		if (rc == -EINTR)
			break;
		if (rc) {
			cache_error(rc, self->name, k.p, k.n);
			break;
		}
		/* The value as of now: at least the version waited for, unless
		 * it was deleted since (then wait for it again). */
		PyObject *v = fetch(self, c, &k, &m, &rc);
		if (v) {
			res = make_item(v, &m);
			break;
		}
		if (rc != -ENOENT)
			break;
		if (version != 0) {
			Py_INCREF(Py_None);
			res = Py_None;
			break;
		}
	}
	busy_end(self);
	arg_release(&k);
	return res;
}

PyDoc_STRVAR(wait_any_doc,
"wait_any(seq=0, timeout=None) -> int | None\n--\n\n"
"Sleep until anything was published in the segment since SEQ (a write,\n"
"delete, expiry removal, DTO append, run start or end) and return the new\n"
"sequence, to pass to the next call.  SEQ 0 returns the current sequence\n"
"at once.  A loop of calls, each followed by the reads it reacts with,\n"
"misses no change (one may be reported twice).  TIMEOUT in seconds (None:\n"
"no limit); None when it passed.  GIL and signals as wait().");

static PyObject *Cache_wait_any(CacheObject *self, PyObject *const *args, Py_ssize_t nargs,
				PyObject *kwnames)
{
	static const char *const names[] = { "seq", "timeout", NULL };
	PyObject *a[2] = { NULL, NULL };
	if (parse("wait_any", args, nargs, kwnames, names, 0, a) < 0)
		return NULL;
	uint64_t seq = 0, timeout;
	if ((a[0] && u64_arg(a[0], "seq", &seq) < 0) ||
	    seconds_arg(a[1], "timeout", 1, TC_FOREVER, &timeout) < 0)
		return NULL;
	tc_cache *c = handle(self);
	if (!c)
		return NULL;
	self->busy++;
	int rc = wait_released(c, NULL, 0, wait_end(timeout), NULL, &seq);
	busy_end(self);
	if (rc == 0)
		return PyLong_FromUnsignedLongLong(seq);
	if (rc == -ETIMEDOUT)
		Py_RETURN_NONE;
	if (rc == -EINTR)
		return NULL;
	return cache_error(rc, self->name, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Read sections and zero-copy views                                    */
/* ------------------------------------------------------------------ */

enum { RS_NEW, RS_OPEN, RS_DRAINING, RS_DONE };

/* A link of the lists below (views_lock held): an object's own member. */
struct dlink {
	struct dlink *prev, *next;
};
#define DL_ENTRY(l, type) ((type *)((char *)(l) - offsetof(type, link)))

static void dl_push(struct dlink **head, struct dlink *n)
{
	n->prev = NULL;
	n->next = *head;
	if (*head)
		(*head)->prev = n;
	*head = n;
}

static void dl_remove(struct dlink **head, struct dlink *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else if (*head == n)
		*head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	n->prev = n->next = NULL;
}

typedef struct SectionObject {
	PyObject_HEAD
	CacheObject *cache;      /* strong reference */
	unsigned long owner;     /* thread that entered */
	unsigned long fork_gen;  /* of the handle it locked */
	int state;
	int parked;              /* its owner is exiting (owner_exit) */
	Py_ssize_t views;        /* buffers exported and not released */
	struct dlink link;       /* in open_sections while OPEN or DRAINING */
} SectionObject;

static struct dlink *open_sections;

typedef struct ViewObject {
	PyObject_HEAD
	SectionObject *section;  /* strong reference */
	const void *ptr;
	Py_ssize_t len;
	Py_ssize_t exports;      /* buffers exported and not released */
	struct dlink link;       /* in live_views while exports > 0 */
	void *snap;              /* at_fork_prepare's copy of its pages */
	size_t snap_len;
} ViewObject;

/*
 * The views whose buffers are exported, for fork(): a child's views are
 * outside any read section of the child (the parent's section may end at
 * once, and the child's first call unmaps the parent's handle).  Before the
 * fork, with every such section still open, at_fork_prepare copies the
 * pages under each exported view; in the child, at_fork_child puts the
 * copies in place of those pages (mremap), so a view read in the child
 * holds the bytes it held at the fork, for as long as it lives, whatever
 * the parent frees or writes.  Only the parent's handle maps those pages in
 * the child, and the child never reads through it (fork_forget keeps it
 * mapped).  The lock is a mutex, not the GIL: a fork may come from a thread
 * that does not hold it.
 */
static struct dlink *live_views;

static void view_pages(const ViewObject *v, uintptr_t *lo, size_t *len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)v->ptr, e = a + (uintptr_t)v->len;
	*lo = a & ~(page - 1);
	*len = (size_t)(((e + page - 1) & ~(page - 1)) - *lo);
}

static void at_fork_prepare(void)
{
	pthread_mutex_lock(&views_lock);
	for (struct dlink *l = live_views; l; l = l->next) {
		ViewObject *v = DL_ENTRY(l, ViewObject);
		v->snap = NULL;
		if (v->len == 0)
			continue;
		uintptr_t lo;
		size_t n;
		view_pages(v, &lo, &n);
		void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			continue; /* the child's view then reads the shared pages */
		memcpy(m, (const void *)lo, n);
		v->snap = m;
		v->snap_len = n;
	}
}

static void at_fork_parent(void)
{
	for (struct dlink *l = live_views; l; l = l->next) {
		ViewObject *v = DL_ENTRY(l, ViewObject);
		if (v->snap)
			munmap(v->snap, v->snap_len);
		v->snap = NULL;
	}
	pthread_mutex_unlock(&views_lock);
}

static void at_fork_child(void)
{
	fork_gen++;
	for (struct dlink *l = live_views; l; l = l->next) {
		ViewObject *v = DL_ENTRY(l, ViewObject);
		if (!v->snap)
			continue;
		uintptr_t lo;
		size_t n;
		view_pages(v, &lo, &n);
		mprotect(v->snap, n, PROT_READ);
		if (mremap(v->snap, n, n, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)lo) == MAP_FAILED)
			munmap(v->snap, n);
		v->snap = NULL;
	}
	pthread_mutex_unlock(&views_lock);
}

static PyTypeObject SectionType, ViewType;

/*
 * End a section's library read section (on the owner thread) and forget it
 * (GIL held).  From another thread, the owner ends it: on its next call
 * (pending), or at once when it is exiting (owner_exit; this thread waits
 * for that, so that the section is ended when the last view's release
 * returns).
 */
static void section_finish(SectionObject *s)
{
	CacheObject *cache = s->cache;
	pthread_mutex_lock(&views_lock);
	if (s->state == RS_DONE) {
		pthread_mutex_unlock(&views_lock); /* its exiting owner ended it */
		return;
	}
	s->state = RS_DONE;
	dl_remove(&open_sections, &s->link);
	if (s->fork_gen != fork_gen) {
		/* a section of the parent: this process never entered it */
	} else if (PyThread_get_thread_ident() == s->owner) {
		tc_read_unlock(cache->c);
		cache->sections--;
	} else {
		struct pending *p = PyMem_RawMalloc(sizeof *p);
		if (p) { /* else the owner's section stays open: nothing safe to do */
			p->owner = s->owner;
			p->fork_gen = s->fork_gen;
			p->ended = 0;
			Py_INCREF(cache);
			p->cache = cache;
			p->next = pending_head;
			pending_head = p;
			if (s->parked) {
				pthread_cond_broadcast(&views_cond);
				while (!p->ended)
					pthread_cond_wait(&views_cond, &views_lock);
			}
		}
	}
	pthread_mutex_unlock(&views_lock);
}

/* End the sections whose last view another thread released, and forget the
 * ones their exiting owners ended (GIL held). */
static void run_pending(void)
{
	unsigned long me = PyThread_get_thread_ident();
	struct pending *done = NULL;
	pthread_mutex_lock(&views_lock);
	struct pending **pp = &pending_head;
	while (*pp) {
		struct pending *p = *pp;
		int mine = p->fork_gen == fork_gen && p->owner == me && !p->ended;
		if (p->fork_gen != fork_gen || mine || p->ended) {
			*pp = p->next;
			if (mine) {
				tc_read_unlock(p->cache->c);
				p->cache->sections--;
			}
			p->next = done;
			done = p;
		} else {
			pp = &p->next;
		}
	}
	pthread_mutex_unlock(&views_lock);
	while (done) { /* a Cache freed here may run weakref callbacks */
		struct pending *p = done;
		done = p->next;
		Py_DECREF(p->cache);
		PyMem_RawFree(p);
	}
}

/*
 * owner_exit - the destructor of owner_key, run when a thread that entered a
 * read section exits, after its Python code (no GIL, no Python object
 * touched).  The library gives an exiting thread's reader slot back, which
 * ends its read sections; views of them that other threads still hold
 * would then read memory that may be freed and reused.  So the thread waits
 * here until every view of its sections is released, and ends each section
 * itself when its last view is (and the ones other threads asked it to end:
 * pending).  Keys' destructors run in the order of their creation (glibc);
 * owner_key is made when the module is imported, before the library's, so
 * this runs while the thread still has its slot.  Thread.join() returns
 * before (Python's thread state is gone by then).
 */
static void owner_exit(void *arg)
{
	(void)arg;
	unsigned long me = PyThread_get_thread_ident();
	pthread_mutex_lock(&views_lock);
	for (;;) {
		int waiting = 0;
		for (struct dlink *l = open_sections, *nx; l; l = nx) {
			SectionObject *s = DL_ENTRY(l, SectionObject);
			nx = l->next;
			if (s->owner != me || s->fork_gen != fork_gen)
				continue;
			s->parked = 1;
			if (s->views > 0) {
				waiting = 1;
				continue;
			}
			tc_read_unlock(s->cache->c);
			s->cache->sections--;
			s->state = RS_DONE;
			dl_remove(&open_sections, &s->link);
		}
		for (struct pending *p = pending_head; p; p = p->next) {
			if (!p->ended && p->owner == me && p->fork_gen == fork_gen) {
				tc_read_unlock(p->cache->c);
				p->cache->sections--;
				p->ended = 1;
			}
		}
		pthread_cond_broadcast(&views_cond);
		if (!waiting)
			break;
		pthread_cond_wait(&views_cond, &views_lock);
	}
	pthread_mutex_unlock(&views_lock);
}

PyDoc_STRVAR(read_doc,
"read() -> ReadSection\n--\n\n"
"A read section for zero-copy reads, used as a context manager:\n\n"
"    with cache.read() as r:\n"
"        view = r.peek(key)   # read-only memoryview into the segment\n\n"
"The memory of a view stays valid and unchanged while the section is open;\n"
"keep sections short (a long one delays reclamation in every process).\n"
"Leaving the block while a view is still exported raises BufferError, and\n"
"the section then ends when the last view is released.  In a child of\n"
"fork(), a view exported at the fork keeps the bytes it held then (a\n"
"private copy of its pages).");

static PyObject *Cache_read(CacheObject *self, PyObject *unused)
{
	(void)unused;
	if (!handle(self))
		return NULL;
	SectionObject *s = PyObject_New(SectionObject, &SectionType);
	if (!s)
		return NULL;
	Py_INCREF(self);
	s->cache = self;
	s->owner = 0;
	s->fork_gen = 0;
	s->state = RS_NEW;
	s->parked = 0;
	s->views = 0;
	s->link.prev = s->link.next = NULL;
	return (PyObject *)s;
}

static void Section_dealloc(SectionObject *s)
{
	/* Views hold a reference to their section, so none is exported. */
	if (s->state == RS_OPEN || s->state == RS_DRAINING)
		section_finish(s);
	Py_DECREF(s->cache);
	PyObject_Free(s);
}

static PyObject *Section_enter(SectionObject *s, PyObject *unused)
{
	(void)unused;
	if (s->state != RS_NEW) {
		PyErr_SetString(PyExc_ValueError, "a read section can be entered once");
		return NULL;
	}
	tc_cache *c = handle(s->cache);
	if (!c)
		return NULL;
	int rc = tc_read_lock(c);
	if (rc)
		return cache_error(rc, s->cache->name, NULL, 0);
	/* owner_exit runs when this thread exits */
	if (pthread_setspecific(owner_key, (void *)1) != 0) {
		tc_read_unlock(c);
		return PyErr_NoMemory();
	}
	pthread_mutex_lock(&views_lock);
	s->owner = PyThread_get_thread_ident();
	s->fork_gen = fork_gen;
	s->state = RS_OPEN;
	s->cache->sections++;
	dl_push(&open_sections, &s->link);
	pthread_mutex_unlock(&views_lock);
	Py_INCREF(s);
	return (PyObject *)s;
}

static PyObject *Section_exit(SectionObject *s, PyObject *args)
{
	(void)args;
	pthread_mutex_lock(&views_lock);
	int state = s->state;
	Py_ssize_t views = s->views;
	if (state == RS_OPEN && views > 0)
		s->state = RS_DRAINING;
	pthread_mutex_unlock(&views_lock);
	if (state != RS_OPEN)
		Py_RETURN_NONE;
	if (views > 0) {
		PyErr_Format(PyExc_BufferError,
			     "%zd view(s) of the read section are still exported; the section ends "
			     "when the last is released",
			     views);
		return NULL;
	}
	section_finish(s);
	Py_RETURN_NONE;
}

PyDoc_STRVAR(peek_doc,
"peek(key) -> memoryview | None\n--\n\n"
"A read-only memoryview of KEY's live value inside the segment (no copy),\n"
"or None on a miss.  Only in the thread that entered the section, and only\n"
"inside it.");

static PyObject *Section_peek(SectionObject *s, PyObject *key)
{
	if (s->state != RS_OPEN) {
		PyErr_SetString(PyExc_ValueError, "peek outside the read section's block");
		return NULL;
	}
	if (s->fork_gen != fork_gen) {
		PyErr_SetString(PyExc_ValueError, "read section of the parent process (after fork)");
		return NULL;
	}
	if (PyThread_get_thread_ident() != s->owner) {
		PyErr_SetString(PyExc_ValueError, "peek from a thread that did not enter the section");
		return NULL;
	}
	bytearg k;
	if (key_arg(key, &k) < 0)
		return NULL;
	const void *p;
	tc_meta m;
	int rc = tc_peek(s->cache->c, k.p, (size_t)k.n, &p, &m);
	if (rc) {
		PyObject *r = NULL;
		if (rc == -ENOENT) {
			Py_INCREF(Py_None);
			r = Py_None;
		} else {
			cache_error(rc, s->cache->name, k.p, k.n);
		}
		arg_release(&k);
		return r;
	}
	arg_release(&k);
	ViewObject *v = PyObject_New(ViewObject, &ViewType);
	if (!v)
		return NULL;
	Py_INCREF(s);
	v->section = s;
	v->ptr = p;
	v->len = (Py_ssize_t)m.len;
	v->exports = 0;
	v->link.prev = v->link.next = NULL;
	v->snap = NULL;
	v->snap_len = 0;
	PyObject *mv = PyMemoryView_FromObject((PyObject *)v);
	Py_DECREF(v);
	return mv;
}

static void View_releasebuffer(ViewObject *v, Py_buffer *view);

static int View_getbuffer(ViewObject *v, Py_buffer *view, int flags)
{
	SectionObject *s = v->section;
	pthread_mutex_lock(&views_lock);
	int open = s->state == RS_OPEN && s->fork_gen == fork_gen;
	if (open) { /* counted first: the section cannot end meanwhile */
		s->views++;
		if (v->exports++ == 0)
			dl_push(&live_views, &v->link);
	}
	pthread_mutex_unlock(&views_lock);
	if (!open) {
		PyErr_SetString(PyExc_BufferError, "the read section of this view has ended");
		view->obj = NULL;
		return -1;
	}
	if (PyBuffer_FillInfo(view, (PyObject *)v, (void *)v->ptr, v->len, 1, flags) < 0) {
		View_releasebuffer(v, NULL);
		return -1;
	}
	return 0;
}

static void View_releasebuffer(ViewObject *v, Py_buffer *view)
{
	(void)view;
	SectionObject *s = v->section;
	pthread_mutex_lock(&views_lock);
	if (--v->exports == 0)
		dl_remove(&live_views, &v->link);
	int finish = --s->views == 0 && s->state == RS_DRAINING;
	if (s->views == 0 && s->parked && s->fork_gen == fork_gen) {
		/* Its owner is exiting: it ends the section now (owner_exit).
		 * (Not in a child of fork: the owner is not there.) */
		pthread_cond_broadcast(&views_cond);
		while (s->state != RS_DONE)
			pthread_cond_wait(&views_cond, &views_lock);
		finish = 0;
	}
	pthread_mutex_unlock(&views_lock);
	if (finish)
		section_finish(s);
}

static void View_dealloc(ViewObject *v)
{
	Py_DECREF(v->section);
	PyObject_Free(v);
}

static PyBufferProcs View_as_buffer = {
	.bf_getbuffer = (getbufferproc)View_getbuffer,
	.bf_releasebuffer = (releasebufferproc)View_releasebuffer,
};

static PyMethodDef Section_methods[] = {
	{ "__enter__", (PyCFunction)Section_enter, METH_NOARGS, "Enter the read section." },
	{ "__exit__", (PyCFunction)Section_exit, METH_VARARGS,
	  "Leave the read section (BufferError while views are exported)." },
	{ "peek", (PyCFunction)Section_peek, METH_O, peek_doc },
	{ NULL, NULL, 0, NULL }
};

static PyTypeObject SectionType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "tickcache.ReadSection",
	.tp_basicsize = sizeof(SectionObject),
	.tp_dealloc = (destructor)Section_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A read section of a Cache (see Cache.read()).",
	.tp_methods = Section_methods,
};

static PyTypeObject ViewType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "tickcache._View",
	.tp_basicsize = sizeof(ViewObject),
	.tp_dealloc = (destructor)View_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "The exporter behind a ReadSection.peek() memoryview.",
	.tp_as_buffer = &View_as_buffer,
};

/* ------------------------------------------------------------------ */
/* Cache type                                                           */
/* ------------------------------------------------------------------ */

static PyObject *Cache_get_name(CacheObject *self, void *unused)
{
	(void)unused;
	return PyUnicode_FromString(self->name);
}

static PyObject *Cache_get_closed(CacheObject *self, void *unused)
{
	(void)unused;
	return PyBool_FromLong(self->closed || !self->name[0]);
}

static PyGetSetDef Cache_getset[] = {
	{ "name", (getter)Cache_get_name, NULL, "The segment's name.", NULL },
	{ "closed", (getter)Cache_get_closed, NULL, "True after close().", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

#define FASTKW (METH_FASTCALL | METH_KEYWORDS)

static PyMethodDef Cache_methods[] = {
	{ "get", (PyCFunction)(void (*)(void))Cache_get, FASTKW, get_doc },
	{ "get_item", (PyCFunction)Cache_get_item, METH_O, get_item_doc },
	{ "get_many", (PyCFunction)Cache_get_many, METH_O, get_many_doc },
	{ "exists", (PyCFunction)Cache_exists, METH_O, exists_doc },
	{ "set", (PyCFunction)(void (*)(void))Cache_set, FASTKW, set_doc },
	{ "add", (PyCFunction)(void (*)(void))Cache_add, FASTKW, add_doc },
	{ "cas", (PyCFunction)(void (*)(void))Cache_cas, FASTKW, cas_doc },
	{ "delete", (PyCFunction)Cache_delete, METH_O, delete_doc },
	{ "expire", (PyCFunction)(void (*)(void))Cache_expire, FASTKW, expire_doc },
	{ "incr", (PyCFunction)(void (*)(void))Cache_incr, FASTKW, incr_doc },
	{ "rate_limit", (PyCFunction)(void (*)(void))Cache_rate_limit, FASTKW, rate_limit_doc },
	{ "get_or_load", (PyCFunction)(void (*)(void))Cache_get_or_load, FASTKW, get_or_load_doc },
	{ "keys", (PyCFunction)(void (*)(void))Cache_keys, FASTKW, keys_doc },
	{ "purge", (PyCFunction)Cache_purge, METH_O, purge_doc },
	{ "ttl_policy", (PyCFunction)(void (*)(void))Cache_ttl_policy, FASTKW, ttl_policy_doc },
	{ "ttl_policies", (PyCFunction)Cache_ttl_policies, METH_NOARGS, ttl_policies_doc },
	{ "load_ttl_policies", (PyCFunction)Cache_load_ttl_policies, METH_O, load_ttl_policies_doc },
	{ "_raw_stats", (PyCFunction)Cache_raw_stats, METH_NOARGS, raw_stats_doc },
	{ "info", (PyCFunction)Cache_info, METH_NOARGS, info_doc },
	{ "readers", (PyCFunction)Cache_readers, METH_NOARGS, readers_doc },
	{ "attached", (PyCFunction)Cache_attached, METH_NOARGS, attached_doc },
	{ "save", (PyCFunction)Cache_save, METH_O, save_doc },
	{ "load", (PyCFunction)(void (*)(void))Cache_load, FASTKW, load_doc },
	{ "read", (PyCFunction)Cache_read, METH_NOARGS, read_doc },
	{ "close", (PyCFunction)Cache_close, METH_NOARGS, close_doc },
	{ "__enter__", (PyCFunction)Cache_enter, METH_NOARGS, "Return the cache itself." },
	{ "__exit__", (PyCFunction)Cache_exit, METH_VARARGS, "Close the cache." },
	{ "_run_start", (PyCFunction)(void (*)(void))Cache_run_start, FASTKW, run_start_doc },
	{ "_run_anchor", (PyCFunction)Cache_run_anchor, METH_NOARGS, run_anchor_doc },
	{ "_run_end", (PyCFunction)(void (*)(void))Cache_run_end, FASTKW, run_end_doc },
	{ "_dto_append", (PyCFunction)(void (*)(void))Cache_dto_append, METH_FASTCALL,
	  dto_append_doc },
	{ "_dto_count", (PyCFunction)Cache_dto_count, METH_O, dto_count_doc },
	{ "_dto_list", (PyCFunction)(void (*)(void))Cache_dto_list, METH_FASTCALL, dto_list_doc },
	{ "wait", (PyCFunction)(void (*)(void))Cache_wait, FASTKW, wait_doc },
	{ "wait_any", (PyCFunction)(void (*)(void))Cache_wait_any, FASTKW, wait_any_doc },
	{ NULL, NULL, 0, NULL }
};

static PySequenceMethods Cache_as_sequence = {
	.sq_contains = (objobjproc)Cache_contains,
};

PyDoc_STRVAR(Cache_doc,
"Cache(name, create=False, max_entries=None, memory=None, max_readers=None,\n"
"      default_ttl=None, eviction=\"none\", mode=None)\n--\n\n"
"One attached tickcache segment (/dev/shm/tickcache.NAME).\n\n"
"CREATE creates the segment when it does not exist.  The geometry\n"
"(MAX_ENTRIES keys, MEMORY bytes as an int or \"64M\", MAX_READERS threads)\n"
"is the library's default when None; when given and the segment exists it\n"
"must match (GeometryError).  DEFAULT_TTL (seconds), EVICTION (\"none\":\n"
"a full segment raises FullError; \"lru\") and MODE (permission bits) apply\n"
"when the segment is created.  Keys are str (UTF-8) or bytes-like, values\n"
"bytes-like in and bytes out.  A Cache may be shared by the threads of a\n"
"process; after fork() the child attaches anew on first use.");

static PyTypeObject CacheType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "tickcache._tickcache.Cache",
	.tp_basicsize = sizeof(CacheObject),
	.tp_dealloc = (destructor)Cache_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = Cache_doc,
	.tp_methods = Cache_methods,
	.tp_getset = Cache_getset,
	.tp_as_sequence = &Cache_as_sequence,
	.tp_init = (initproc)Cache_init,
	.tp_new = Cache_new,
	.tp_weaklistoffset = offsetof(CacheObject, weakrefs),
};

/* ------------------------------------------------------------------ */
/* Module functions                                                     */
/* ------------------------------------------------------------------ */

PyDoc_STRVAR(unlink_doc,
"unlink(name, missing_ok=False)\n--\n\n"
"Remove segment NAME.  Every handle still attached, in any process, gets\n"
"StaleError from then on.  A missing segment raises Error (errno ENOENT)\n"
"unless MISSING_OK.");

static PyObject *mod_unlink(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
			    PyObject *kwnames)
{
	(void)mod;
	static const char *const names[] = { "name", "missing_ok", NULL };
	PyObject *a[2] = { NULL, Py_False };
	if (parse("unlink", args, nargs, kwnames, names, 1, a) < 0)
		return NULL;
	if (!PyUnicode_Check(a[0])) {
		PyErr_Format(PyExc_TypeError, "name must be str, not %.100s", Py_TYPE(a[0])->tp_name);
		return NULL;
	}
	const char *name = PyUnicode_AsUTF8(a[0]);
	if (!name)
		return NULL;
	if (!tc_name_valid(name)) {
		PyErr_Format(PyExc_ValueError,
			     "invalid segment name '%s' (want [A-Za-z0-9][A-Za-z0-9_.-]{0,63})", name);
		return NULL;
	}
	int missing_ok = PyObject_IsTrue(a[1]);
	if (missing_ok < 0)
		return NULL;
	int rc = tc_unlink(name);
	if (rc && !(rc == -ENOENT && missing_ok))
		return cache_error(rc, name, NULL, 0);
	Py_RETURN_NONE;
}

PyDoc_STRVAR(strerror_doc,
"strerror(code) -> str\n--\n\n"
"The library's message for a return code (Error.code).");

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	(void)mod;
	int over = 0;
	long v = PyLong_AsLongAndOverflow(arg, &over);
	if (v == -1 && PyErr_Occurred())
		return NULL;
	if (over || v < INT32_MIN || v > INT32_MAX)
		return PyUnicode_FromString("unknown error");
	return PyUnicode_FromString(tc_strerror((int)v));
}

PyDoc_STRVAR(name_valid_doc,
"name_valid(name) -> bool\n--\n\n"
"True when NAME is a valid segment name ([A-Za-z0-9][A-Za-z0-9_.-]{0,63}).");

static PyObject *mod_name_valid(PyObject *mod, PyObject *arg)
{
	(void)mod;
	if (!PyUnicode_Check(arg))
		Py_RETURN_FALSE;
	Py_ssize_t n;
	const char *s = PyUnicode_AsUTF8AndSize(arg, &n);
	if (!s) {
		PyErr_Clear();
		Py_RETURN_FALSE;
	}
	return PyBool_FromLong(strlen(s) == (size_t)n && tc_name_valid(s));
}

PyDoc_STRVAR(now_doc,
"now() -> float\n--\n\n"
"The clock expiry uses (CLOCK_REALTIME), in seconds.");

static PyObject *mod_now(PyObject *mod, PyObject *unused)
{
	(void)mod;
	(void)unused;
	return PyFloat_FromDouble((double)tc_now_ms() / 1000.0);
}

static PyMethodDef module_methods[] = {
	{ "unlink", (PyCFunction)(void (*)(void))mod_unlink, FASTKW, unlink_doc },
	{ "strerror", (PyCFunction)mod_strerror, METH_O, strerror_doc },
	{ "name_valid", (PyCFunction)mod_name_valid, METH_O, name_valid_doc },
	{ "now", (PyCFunction)mod_now, METH_NOARGS, now_doc },
	{ NULL, NULL, 0, NULL }
};

static PyStructSequence_Field item_fields[] = {
	{ "value", "the value (bytes)" },
	{ "type", "the application's uint32 type id (0 = untyped)" },
	{ "version", "grows on every change of the key, never reused" },
	{ "expires_at", "absolute expiry, float epoch seconds, or None" },
	{ NULL, NULL }
};

static PyStructSequence_Desc item_desc = {
	"tickcache.Item",
	"A value with its metadata, as returned by Cache.get_item().",
	item_fields,
	4,
};

static struct PyModuleDef moduledef = {
	PyModuleDef_HEAD_INIT,
	.m_name = "tickcache._tickcache",
	.m_doc = "The C extension behind the tickcache package (import tickcache instead).",
	.m_size = -1,
	.m_methods = module_methods,
};

static PyObject *new_error(PyObject *m, const char *name, const char *doc, PyObject *bases)
{
	char full[64];
	snprintf(full, sizeof full, "tickcache.%s", name);
	PyObject *e = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
	if (!e)
		return NULL;
	if (PyModule_AddObjectRef(m, name, e) < 0) {
		Py_DECREF(e);
		return NULL;
	}
	return e;
}

PyMODINIT_FUNC PyInit__tickcache(void);
PyMODINIT_FUNC PyInit__tickcache(void)
{
	static int atfork_done;
	if (!atfork_done) {
		/* Before the library makes its own key (at a thread's first
		 * reader slot): owner_exit must run before it gives the slot back. */
		if (pthread_key_create(&owner_key, owner_exit) != 0) {
			PyErr_SetString(PyExc_ImportError, "pthread_key_create failed");
			return NULL;
		}
		if (pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child) != 0) {
			PyErr_SetString(PyExc_ImportError, "pthread_atfork failed");
			return NULL;
		}
		atfork_done = 1;
	}
	if (PyType_Ready(&CacheType) < 0 || PyType_Ready(&SectionType) < 0 ||
	    PyType_Ready(&ViewType) < 0)
		return NULL;
	if (!ItemType.tp_name && PyStructSequence_InitType2(&ItemType, &item_desc) < 0)
		return NULL;
	PyObject *m = PyModule_Create(&moduledef);
	if (!m)
		return NULL;
	PyObject *b2 = NULL;
	if (!(Error = new_error(m, "Error",
				"A tickcache library error: .code is the library's negative code,\n"
				".errno the positive errno where there is one.",
				PyExc_OSError)) ||
	    !(CorruptError = new_error(m, "CorruptError",
				       "The segment failed validation (TC_ECORRUPT).", Error)) ||
	    !(GeometryError = new_error(m, "GeometryError",
					"The segment's geometry differs from the one asked (TC_EGEOMETRY).",
					Error)) ||
	    !(StaleError = new_error(m, "StaleError",
				     "The segment was removed (-ESTALE): reopen it.", Error)) ||
	    !(FullError = new_error(m, "FullError",
				    "The segment is full (-ENOSPC) under eviction=\"none\".", Error)) ||
	    !(BusyError = new_error(m, "BusyError",
				    "The segment is busy (-EBUSY): an audit at work, or a run active.",
				    Error)) ||
	    !(NotConfiguredError = new_error(m, "CacheNotConfiguredError",
					     "No run is active (TC_ENORUN): call start_run() first.",
					     Error)) ||
	    !(b2 = PyTuple_Pack(2, Error, PyExc_TypeError)) ||
	    !(InvalidDTOTypeError = new_error(m, "InvalidDTOTypeError",
					      "A stored DTO is not of the type asked for (TC_ETYPE).",
					      b2)))
		goto fail;
	Py_CLEAR(b2);
	if (PyModule_AddObjectRef(m, "Cache", (PyObject *)&CacheType) < 0 ||
	    PyModule_AddObjectRef(m, "ReadSection", (PyObject *)&SectionType) < 0 ||
	    PyModule_AddObjectRef(m, "Item", (PyObject *)&ItemType) < 0)
		goto fail;
	struct { const char *n; long long v; } consts[] = {
		{ "TC_ECONFLICT", TC_ECONFLICT }, { "TC_ETYPE", TC_ETYPE },
		{ "TC_EGEOMETRY", TC_EGEOMETRY }, { "TC_EVERSION", TC_EVERSION },
		{ "TC_ECORRUPT", TC_ECORRUPT }, { "TC_ENORUN", TC_ENORUN },
		{ "KEY_MAX", TC_KEY_MAX }, { "VALUE_MAX", TC_VALUE_MAX },
		{ "NAME_MAX", TC_NAME_MAX }, { "TYPE_COUNTER", (long long)TC_TYPE_COUNTER },
		{ "POLICY_PREFIX_MAX", TC_POLICY_PREFIX_MAX },
	};
	for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++)
		if (PyModule_AddIntConstant(m, consts[i].n, (long)consts[i].v) < 0)
			goto fail;
	if (PyModule_AddStringConstant(m, "LIB_VERSION", tc_version()) < 0)
		goto fail;
	return m;
fail:
	Py_XDECREF(b2);
	Py_DECREF(m);
	return NULL;
}
