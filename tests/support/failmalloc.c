/*
 * The interposed allocator behind failmalloc.h; see there for how it covers
 * the host's, libc's, jansson's and SQLite's allocations.
 *
 * Why interposition and not the alternatives:
 *  - `-Wl,--wrap=malloc` reaches only the objects linked into the executable,
 *    not jansson/SQLite/libc (asprintf, fopen, realpath), which the host uses
 *    everywhere;
 *  - json_set_alloc_funcs + SQLITE_CONFIG_MALLOC + a host hook would need
 *    host code changes and would still miss libc's allocations;
 *  - forwarding to glibc's __libc_malloc would hide every block from ASan
 *    (no leak check) and mix two heaps under ASan.
 * Forwarding through dlsym(RTLD_NEXT) keeps ASan/LSan (whose runtime is the
 * next definition in the lookup order) in charge of every block. ASan's own
 * strdup, strndup, reallocarray and realpath call its allocator directly,
 * which is why those are wrapped here too.
 *
 * dlsym may allocate while the real functions are being looked up: those
 * few requests are served from a small static arena (never freed).
 */
#include "failmalloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FM_EXPORT __attribute__((visibility("default")))

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static char *(*real_realpath)(const char *, char *);

static atomic_int armed;
static atomic_long counted, target, failures;
static atomic_int persistent_mode;

/* Nesting depth of this thread inside a wrapper (nested allocations are not counted). */
static _Thread_local int depth;
static _Thread_local int resolving;

/* The arena for allocations made by dlsym during resolve(). */
static _Alignas(max_align_t) char arena[16384];
static size_t arena_used;

static int in_arena(const void *p)
{
    return (const char *)p >= arena && (const char *)p < arena + sizeof arena;
}

static void *arena_alloc(size_t n)
{
    size_t a = _Alignof(max_align_t);
    n = (n + a - 1) / a * a;
    if (n > sizeof arena - arena_used)
        return NULL;
    void *p = arena + arena_used;
    arena_used += n;
    return p; /* static storage: already zero */
}

static void resolve(void)
{
    if (real_free)
        return;
    resolving = 1;
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    /* the default version of realpath is the pre-2.3 one, which cannot allocate */
    real_realpath = (char *(*)(const char *, char *))dlvsym(RTLD_NEXT, "realpath", "GLIBC_2.3");
    atomic_thread_fence(memory_order_seq_cst);
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    resolving = 0;
}

/* True if this allocation is to fail (counting it when armed and not nested). */
static int fail_now(void)
{
    if (!atomic_load_explicit(&armed, memory_order_relaxed) || depth)
        return 0;
    long n = atomic_fetch_add(&counted, 1) + 1;
    long t = atomic_load(&target);
    if (t > 0 && (n == t || (n > t && atomic_load(&persistent_mode)))) {
        atomic_fetch_add(&failures, 1);
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

/* A forked child (the host's scanner) allocates for itself: the injection stays in the process
 * under test, whose count the sweep reads. */
static void disarm_in_child(void)
{
    atomic_store(&armed, 0);
}

void fm_arm(long n, int persistent)
{
    static atomic_int atfork;
    if (!atomic_exchange(&atfork, 1))
        pthread_atfork(NULL, NULL, disarm_in_child);
    resolve();
    atomic_store(&counted, 0);
    atomic_store(&failures, 0);
    atomic_store(&target, n);
    atomic_store(&persistent_mode, persistent);
    atomic_store(&armed, 1);
}

long fm_disarm(void)
{
    atomic_store(&armed, 0);
    return atomic_load(&counted);
}

long fm_failures(void)
{
    return atomic_load(&failures);
}

int fm_active(void)
{
    return real_free != NULL;
}

FM_EXPORT void *malloc(size_t n)
{
    if (resolving)
        return arena_alloc(n);
    resolve();
    if (fail_now())
        return NULL;
    depth++;
    void *p = real_malloc(n);
    depth--;
    return p;
}

FM_EXPORT void *calloc(size_t n, size_t size)
{
    if (resolving)
        return size && n > SIZE_MAX / size ? NULL : arena_alloc(n * size);
    resolve();
    if (fail_now())
        return NULL;
    depth++;
    void *p = real_calloc(n, size);
    depth--;
    return p;
}

FM_EXPORT void free(void *p)
{
    if (!p || in_arena(p))
        return;
    resolve();
    depth++;
    real_free(p);
    depth--;
}

FM_EXPORT void *realloc(void *p, size_t n)
{
    if (in_arena(p)) { /* never happens after start-up; copy out of the arena */
        void *q = malloc(n);
        if (q)
            memcpy(q, p,
                   n < (size_t)(arena + sizeof arena - (char *)p)
                       ? n
                       : (size_t)(arena + sizeof arena - (char *)p));
        return q;
    }
    resolve();
    if (n && fail_now())
        return NULL;
    depth++;
    void *q = real_realloc(p, n);
    depth--;
    return q;
}

FM_EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n * size);
}

FM_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    resolve();
    if (fail_now())
        return ENOMEM;
    depth++;
    int rc = real_posix_memalign(out, align, n);
    depth--;
    return rc;
}

FM_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    resolve();
    if (fail_now())
        return NULL;
    depth++;
    void *p = real_aligned_alloc(align, n);
    depth--;
    return p;
}

FM_EXPORT void *memalign(size_t align, size_t n)
{
    resolve();
    if (fail_now())
        return NULL;
    depth++;
    void *p = real_memalign(align, n);
    depth--;
    return p;
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

FM_EXPORT char *strdup(const char *s)
{
    return dup_n(s, strlen(s));
}

FM_EXPORT char *__strdup(const char *s)
{
    return dup_n(s, strlen(s));
}

FM_EXPORT char *strndup(const char *s, size_t n)
{
    return dup_n(s, strnlen(s, n));
}

/* realpath(p, NULL) allocates its result (inside ASan's runtime, out of our sight). */
FM_EXPORT char *realpath(const char *path, char *resolved)
{
    resolve();
    if (!resolved && fail_now())
        return NULL;
    depth++;
    char *p = real_realpath(path, resolved);
    depth--;
    return p;
}
