/*
 * From configuration + manifests to a load plan. Works on "nodes" (one per
 * instance, in base order: discovery order of their packages, then config
 * order), then emits them as plan items in dependency order.
 *
 * Steps: build nodes -> per-node checks (first failure wins) -> edges ->
 * cycles -> order -> propagate skips -> emit. Everything is deterministic:
 * every loop runs in base order, so the same input gives the same plan.
 */
#include "resolver.h"

#include <plughost/sdk.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct node {
    char *instance;
    const char *package;          /* the package name it runs */
    const ph_manifest *m;         /* NULL: package not installed */
    const ph_instance_conf *conf; /* NULL: default instance */
    char *mount;
    ph_plan_state state;
    char *reason;
    size_t *deps;   /* node indices */
    bool *optional; /* per dep: reached through [optional] */
    size_t n_deps;
    bool on_cycle;
    size_t cause; /* skipped: the failed node at the root of the chain */
    char *note;   /* a warning for an instance that runs anyway (an optional dependency left out) */
} node;

/* A requirement between two packages, for choosing versions. */
typedef struct edge {
    const ph_manifest *from; /* the requiring version */
    size_t from_pkg, to_pkg; /* indices in rctx.pkgs */
    const ph_range *range;
} edge;

/* A package name with every installed version of it (releases first, highest first). */
typedef struct pkgvers {
    const char *name;
    const ph_manifest **cand;
    size_t n_cand;
    long choice;     /* index in cand, -1 while undecided */
    const char *pin; /* the host.ini range pinning it, or NULL */
    const ph_instance_conf *pin_conf;
    edge *in; /* requirements on it */
    size_t n_in;
    edge *opt_in; /* [optional] uses of it: they steer the choice, never decide it */
    size_t n_opt_in;
    size_t *nodes; /* the nodes (instances) that run it */
    size_t n_nodes;
} pkgvers;

/*
 * A capability some package provides ([provides] NAME = VERSION) and no
 * installed package is named: each requirement on it goes to the running
 * provider with the highest version of it in range.
 */
typedef struct capability {
    const char *name;
    const ph_manifest **all; /* every installed version that provides it */
    size_t n_all;
    const ph_manifest **prov; /* the chosen versions that provide it and run, best first */
    size_t n_prov;
    const ph_kv *pin; /* host.ini [provides] CAPABILITY = PACKAGE, or NULL */
} capability;

typedef struct rctx {
    bool want_viable; /* the version search skips versions that cannot run (viable()) */
    const ph_config *cfg;
    const ph_manifest_set *set;
    pkgvers *pkgs;
    size_t n_pkgs;
    size_t *slot;          /* open addressing by package name: index + 1 in pkgs, 0 empty */
    size_t n_slot;         /* a power of two, at least twice n_pkgs */
    size_t steps;          /* of the version search, bounded */
    long *level;           /* per package: its level in the version search, -1 if installed once */
    uint64_t *conflict;    /* per level: a bit set of the levels that ruled out its versions */
    size_t conflict_words; /* words per level in conflict */
    node *nodes;
    size_t n;
    char **problems;
    size_t n_problems;
    char **notes;
    size_t n_notes;
    capability *caps;
    size_t n_caps;
    char **explained; /* packages whose requirers were listed once (a disagreement) */
    size_t n_explained;
} rctx;

#define NOMEM() ph_error_set(PH_ENOMEM, "out of memory")

static int push_msg(char ***list, size_t *n, char *msg);

static const char *cfg_path(const rctx *x)
{
    return x->cfg && x->cfg->path ? x->cfg->path : "configuration";
}

static size_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

/* By name, in constant time: thousands of packages resolve without a scan per lookup. */
static const pkgvers *find_pkg(const rctx *x, const char *name)
{
    for (size_t i = x->n_slot ? name_hash(name) & (x->n_slot - 1) : 0; x->n_slot;
         i = (i + 1) & (x->n_slot - 1)) {
        if (!x->slot[i])
            return NULL;
        if (strcmp(x->pkgs[x->slot[i] - 1].name, name) == 0)
            return &x->pkgs[x->slot[i] - 1];
    }
    return NULL;
}

/* Indexes pkgs[p] by name, growing the table to keep it at most half full. */
static int index_pkg(rctx *x, size_t p)
{
    if (2 * (x->n_pkgs + 1) > x->n_slot) {
        size_t n = x->n_slot ? x->n_slot * 2 : 64;
        size_t *slot = calloc(n, sizeof *slot);
        if (!slot)
            return NOMEM();
        free(x->slot);
        x->slot = slot;
        x->n_slot = n;
        for (size_t q = 0; q < x->n_pkgs; q++)
            if (q != p)
                index_pkg(x, q); /* fits: the table is now at most a quarter full */
    }
    size_t i = name_hash(x->pkgs[p].name) & (x->n_slot - 1);
    while (x->slot[i])
        i = (i + 1) & (x->n_slot - 1);
    x->slot[i] = p + 1;
    return 0;
}

/*
 * The version of `name` chosen to run, and how many copies of that version
 * are installed (two copies of one version are refused).
 */
static const ph_manifest *lookup(const rctx *x, const char *name, size_t *count)
{
    const pkgvers *pv = find_pkg(x, name);
    *count = 0;
    if (!pv || pv->choice < 0)
        return NULL;
    const ph_manifest *m = pv->cand[pv->choice];
    for (size_t i = 0; i < pv->n_cand; i++)
        *count += ph_semver_cmp(&pv->cand[i]->version, &m->version) == 0;
    return m;
}

static capability *find_cap(const rctx *x, const char *name)
{
    for (size_t i = 0; i < x->n_caps; i++)
        if (strcmp(x->caps[i].name, name) == 0)
            return &x->caps[i];
    return NULL;
}

/* The version of capability `name` that `m` provides. */
static const ph_semver *provided(const ph_manifest *m, const char *name)
{
    const ph_provide *pv = ph_manifest_provides(m, name);
    return pv ? &pv->version : NULL;
}

static int push_manifest(const ph_manifest ***list, size_t *n, const ph_manifest *m)
{
    const ph_manifest **nl = reallocarray(*list, *n + 1, sizeof *nl);
    if (!nl)
        return ph_error_set(PH_ENOMEM, "out of memory");
    nl[(*n)++] = m;
    *list = nl;
    return 0;
}

/* Every [provides] of every installed version, by capability (names of packages excluded). */
static int collect_capabilities(rctx *x)
{
    for (size_t i = 0; i < x->set->n; i++) {
        const ph_manifest *m = x->set->items[i];
        for (size_t k = 0; k < m->n_provides; k++) {
            const char *name = m->provides[k].name;
            if (find_pkg(x, name))
                continue; /* a package of that name is installed: it is what requirers get */
            capability *c = find_cap(x, name);
            if (!c) {
                capability *nc = reallocarray(x->caps, x->n_caps + 1, sizeof *nc);
                if (!nc)
                    return ph_error_set(PH_ENOMEM, "out of memory");
                x->caps = nc;
                c = &nc[x->n_caps++];
                *c = (capability){.name = name};
            }
            if (push_manifest(&c->all, &c->n_all, m))
                return PH_ENOMEM;
        }
    }
    return 0;
}

static int add_problem(rctx *x, char *msg);

/* "pg_store, sqlite_store": the packages providing capability `c` (names repeat per version). */
static char *provider_names(const capability *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    for (size_t i = 0; f && i < c->n_all; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(c->all[k]->name, c->all[i]->name) == 0;
        if (!seen)
            fprintf(f, "%s%s", i ? ", " : "", c->all[i]->name);
    }
    if (f)
        fclose(f);
    return text;
}

/*
 * host.ini [provides] CAPABILITY = PACKAGE: only that package's versions
 * provide the capability (the search, the providers, the messages). A pin
 * naming no installed package, or one that does not provide it, is a
 * problem naming file:line, and the capability then has no provider.
 */
static int apply_provider_pins(rctx *x)
{
    for (size_t i = 0; x->cfg && i < x->cfg->n_provides; i++) {
        const ph_kv *pin = &x->cfg->provides[i];
        capability *c = find_cap(x, pin->key);
        char *msg = NULL, *names = c ? provider_names(c) : NULL;
        size_t kept = 0;
        for (size_t k = 0; c && k < c->n_all; k++)
            if (strcmp(c->all[k]->name, pin->value) == 0)
                c->all[kept++] = c->all[k];
        int bad = !c || !kept, rc = 0;
        if (!c)
            rc = asprintf(&msg,
                          "%s:%d: [provides] %s = %s: no installed package provides '%s'; "
                          "remove the line or install a provider",
                          cfg_path(x), pin->line, pin->key, pin->value, pin->key);
        else if (!kept && !find_pkg(x, pin->value))
            rc = asprintf(&msg,
                          "%s:%d: [provides] %s = %s: no package '%s' is installed; the "
                          "providers of %s are %s",
                          cfg_path(x), pin->line, pin->key, pin->value, pin->value, pin->key,
                          names ? names : "?");
        else if (!kept)
            rc = asprintf(&msg,
                          "%s:%d: [provides] %s = %s: package '%s' does not provide %s (no "
                          "[provides] %s in its package.ini); the providers of %s are %s",
                          cfg_path(x), pin->line, pin->key, pin->value, pin->value, pin->key,
                          pin->key, pin->key, names ? names : "?");
        free(names);
        if (c) {
            c->n_all = kept;
            c->pin = pin;
        }
        if (rc < 0 || (bad && add_problem(x, msg)))
            return NOMEM();
    }
    return 0;
}

static size_t n_conf(const rctx *x)
{
    return x->cfg ? x->cfg->n_instances : 0;
}

/* ---------------------------------------------------------------- versions */

/* The search for versions gives up after this many tries (then: greedy). */
#define SEARCH_STEPS 100000

/* Releases before pre-releases ("only when asked for"), each highest first. */
static bool ranks_before(const ph_manifest *a, const ph_manifest *b)
{
    bool pa = a->version.pre[0] != '\0', pb = b->version.pre[0] != '\0';
    if (pa != pb)
        return pb;
    return ph_semver_cmp(&a->version, &b->version) > 0;
}

static int add_candidate(rctx *x, const ph_manifest *m)
{
    pkgvers *pv = (pkgvers *)find_pkg(x, m->name);
    if (!pv) {
        pkgvers *np = reallocarray(x->pkgs, x->n_pkgs + 1, sizeof *np);
        if (!np)
            return NOMEM();
        x->pkgs = np;
        pv = &np[x->n_pkgs];
        memset(pv, 0, sizeof *pv);
        pv->name = m->name;
        pv->choice = -1;
        if (index_pkg(x, x->n_pkgs))
            return NOMEM();
        x->n_pkgs++;
    }
    const ph_manifest **nc = reallocarray(pv->cand, pv->n_cand + 1, sizeof *nc);
    if (!nc)
        return NOMEM();
    pv->cand = nc;
    size_t at = pv->n_cand++; /* insertion keeps discovery order among equals */
    while (at > 0 && ranks_before(m, nc[at - 1])) {
        nc[at] = nc[at - 1];
        at--;
    }
    nc[at] = m;
    return 0;
}

static int push_edge(edge **list, size_t *n, edge e)
{
    edge *ne = reallocarray(*list, *n + 1, sizeof *ne);
    if (!ne)
        return NOMEM();
    ne[(*n)++] = e;
    *list = ne;
    return 0;
}

/* Edges from version m (of package p) through `deps`, kept on each installed target's list. */
static int add_dep_edges(rctx *x, size_t p, const ph_manifest *m, const ph_dep *deps, size_t n,
                         bool optional)
{
    for (size_t k = 0; k < n; k++) {
        pkgvers *t = (pkgvers *)find_pkg(x, deps[k].name);
        if (!t)
            continue;
        edge e = {m, p, (size_t)(t - x->pkgs), &deps[k].range};
        if (optional ? push_edge(&t->opt_in, &t->n_opt_in, e) : push_edge(&t->in, &t->n_in, e))
            return NOMEM();
    }
    return 0;
}

/* Every [requires] and [optional] of every installed version, kept on its target package. */
static int collect_edges(rctx *x)
{
    for (size_t p = 0; p < x->n_pkgs; p++) {
        for (size_t c = 0; c < x->pkgs[p].n_cand; c++) {
            const ph_manifest *m = x->pkgs[p].cand[c];
            if (add_dep_edges(x, p, m, m->requires, m->n_requires, false) ||
                add_dep_edges(x, p, m, m->optional, m->n_optional, true))
                return NOMEM();
        }
    }
    return 0;
}

static bool pin_allows(const pkgvers *pv, const ph_manifest *m)
{
    ph_range pin;
    return !pv->pin ||
           (ph_range_parse(pv->pin, &pin) == 0 && ph_range_satisfies(&pin, &m->version));
}

/* The chosen version of package `p`, or NULL while undecided. */
static const ph_manifest *choice_of(const rctx *x, size_t p)
{
    const pkgvers *pv = &x->pkgs[p];
    return pv->choice < 0 ? NULL : pv->cand[pv->choice];
}

/*
 * Why version `m` could never run whatever else is chosen (its ABI, a hard
 * requirement that no installed version meets, a [conflicts] entry covering
 * a package installed in one version only), or NULL. A lower version that
 * can run is chosen before a higher one that cannot.
 */
static const char *unviable(const rctx *x, const ph_manifest *m, const ph_dep **dep)
{
    *dep = NULL;
    if (m->abi != PH_ABI_VERSION)
        return "built for another SDK ABI";
    for (size_t k = 0; k < m->n_requires; k++) {
        const pkgvers *t = find_pkg(x, m->requires[k].name);
        const capability *cap = t ? NULL : find_cap(x, m->requires[k].name);
        bool met = false;
        for (size_t c = 0; t && c < t->n_cand && !met; c++)
            met = ph_range_satisfies(&m->requires[k].range, &t->cand[c]->version);
        for (size_t c = 0; cap && c < cap->n_all && !met; c++)
            met = ph_range_satisfies(&m->requires[k].range, provided(cap->all[c], cap->name));
        if (!met) {
            *dep = &m->requires[k];
            return t ? "requires a version of %s that is not installed (%s)"
                     : "requires %s, which is not installed (%s)";
        }
    }
    for (size_t k = 0; k < m->n_conflicts; k++) {
        const pkgvers *t = find_pkg(x, m->conflicts[k].name);
        if (t && t->n_cand == 1 && ph_range_covers(&m->conflicts[k].range, &t->cand[0]->version)) {
            *dep = &m->conflicts[k];
            return "conflicts with the installed %s (%s)";
        }
    }
    return NULL;
}

static bool viable(const rctx *x, const ph_manifest *m)
{
    const ph_dep *dep;
    return unviable(x, m, &dep) == NULL;
}

/*
 * True if a decided package rules out version `m` of package `p`: a decided
 * requirer whose range excludes it, or a decided dependency outside its own
 * range. *level is the search level of the earliest culprit, or -1 when a
 * package installed in one version rules it out (nothing the search undoes
 * could admit it then).
 */
static bool ruled_out(const rctx *x, size_t p, const ph_manifest *m, long *level)
{
    const pkgvers *pv = &x->pkgs[p];
    bool out = false;
    *level = LONG_MAX;
    for (size_t i = 0; i < pv->n_in && *level >= 0; i++) {
        const edge *e = &pv->in[i];
        if (choice_of(x, e->from_pkg) == e->from && !ph_range_satisfies(e->range, &m->version)) {
            out = true;
            if (x->level[e->from_pkg] < *level)
                *level = x->level[e->from_pkg];
        }
    }
    for (size_t k = 0; k < m->n_requires && *level >= 0; k++) {
        const pkgvers *t = find_pkg(x, m->requires[k].name);
        const ph_manifest *tm = t ? choice_of(x, (size_t)(t - x->pkgs)) : NULL;
        if (tm && !ph_range_satisfies(&m->requires[k].range, &tm->version)) {
            out = true;
            if (x->level[t - x->pkgs] < *level)
                *level = x->level[t - x->pkgs];
        }
    }
    return out;
}

/* Version `m` of package `p` agrees with every decided requirer and dependency. */
static bool consistent(const rctx *x, size_t p, const ph_manifest *m)
{
    long level;
    return !ruled_out(x, p, m, &level);
}

/*
 * Backtracking over the packages installed in several versions (`multi`, in
 * discovery order): each takes the highest version that agrees with every
 * decided requirer and dependency; a dead end undoes the last choice.
 */
/*
 * True if version `m` of `pv` is in the [optional] range of every decided
 * package that names it there: an optional dependency does not decide, but
 * between versions that work, the one its optional users accept goes first.
 */
static bool optional_users_accept(const rctx *x, const pkgvers *pv, const ph_manifest *m)
{
    for (size_t i = 0; i < pv->n_opt_in; i++) {
        const edge *e = &pv->opt_in[i];
        if (choice_of(x, e->from_pkg) == e->from && !ph_range_satisfies(e->range, &m->version))
            return false;
    }
    return true;
}

/* The conflict set of search level k: the levels whose choices ruled out its versions. */
static uint64_t *conflicts_of(const rctx *x, size_t k)
{
    return &x->conflict[k * x->conflict_words];
}

/*
 * Conflict-directed backjumping (Prosser's CBJ; PubGrub learns the same way):
 * each level records which earlier levels ruled out its versions; when none
 * is left, the search jumps back to the latest of them, past the levels that
 * had nothing to do with the dead end, and hands that level the rest of the
 * set. A dead end that only packages installed once caused ends the search
 * at once: no other choice could mend it. Returns true when levels k..n-1
 * are decided; otherwise *jump is the level to resume at (-1: give up).
 */
static bool search(rctx *x, const size_t *multi, size_t n, size_t k, long *jump)
{
    if (k == n)
        return true;
    pkgvers *pv = &x->pkgs[multi[k]];
    uint64_t *mine = conflicts_of(x, k);
    memset(mine, 0, x->conflict_words * sizeof *mine);
    /* pass 0: the versions the optional users accept; pass 1: the others */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t c = 0; c < pv->n_cand; c++) {
            long level;
            if (++x->steps > SEARCH_STEPS) {
                *jump = -1;
                return false;
            }
            if (optional_users_accept(x, pv, pv->cand[c]) != (pass == 0) ||
                !pin_allows(pv, pv->cand[c]) || (x->want_viable && !viable(x, pv->cand[c])))
                continue;
            if (ruled_out(x, multi[k], pv->cand[c], &level)) {
                if (level >= 0)
                    mine[(size_t)level / 64] |= (uint64_t)1 << ((size_t)level % 64);
                continue;
            }
            pv->choice = (long)c;
            long back;
            bool done = search(x, multi, n, k + 1, &back);
            if (done)
                return true;
            pv->choice = -1;
            if (back != (long)k) { /* a dead end this level did not cause */
                *jump = back;
                return false;
            }
        }
    }
    long back = -1;
    for (size_t w = x->conflict_words; w-- > 0 && back < 0;)
        if (mine[w])
            back = (long)(w * 64 + 63 - (size_t)__builtin_clzll(mine[w]));
    if (back >= 0) { /* the level jumped to inherits the rest of the reasons */
        uint64_t *theirs = conflicts_of(x, (size_t)back);
        mine[(size_t)back / 64] &= ~((uint64_t)1 << ((size_t)back % 64));
        for (size_t w = 0; w < x->conflict_words; w++)
            theirs[w] |= mine[w];
    }
    *jump = back;
    return false;
}

/* Without a full solution: each takes the first version that agrees so far. */
static void choose_greedily(rctx *x, const size_t *multi, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        pkgvers *pv = &x->pkgs[multi[k]];
        long first = -1, pinned = -1;
        for (size_t c = 0; c < pv->n_cand && first < 0; c++) {
            bool pin = pin_allows(pv, pv->cand[c]);
            if (pin && pinned < 0)
                pinned = (long)c;
            if (pin && consistent(x, multi[k], pv->cand[c]))
                first = (long)c;
        }
        pv->choice = first >= 0 ? first : pinned >= 0 ? pinned : 0;
    }
}

/* The first pin of each package in host.ini (enabled instances). */
static void apply_pins(rctx *x)
{
    for (size_t i = 0; x->cfg && i < x->cfg->n_instances; i++) {
        const ph_instance_conf *ic = &x->cfg->instances[i];
        pkgvers *pv = (pkgvers *)find_pkg(x, ic->package);
        if (ic->enabled && ic->version && pv && !pv->pin) {
            pv->pin = ic->version;
            pv->pin_conf = ic;
        }
    }
}

/* Appends p after every package that requires it (requirers decide first), once. */
static void requirers_first(const rctx *x, size_t p, unsigned char *mark, size_t *order, size_t *n)
{
    if (mark[p])
        return;
    mark[p] = 1; /* on a cycle, the package reached first goes first */
    for (size_t i = 0; i < x->pkgs[p].n_in; i++)
        requirers_first(x, x->pkgs[p].in[i].from_pkg, mark, order, n);
    for (size_t i = 0; i < x->pkgs[p].n_opt_in; i++)
        requirers_first(x, x->pkgs[p].opt_in[i].from_pkg, mark, order, n);
    order[(*n)++] = p;
}

static int choose_versions(rctx *x)
{
    for (size_t i = 0; i < x->set->n; i++)
        if (add_candidate(x, x->set->items[i]))
            return NOMEM();
    if (collect_capabilities(x) || apply_provider_pins(x))
        return NOMEM();
    apply_pins(x);
    if (collect_edges(x))
        return NOMEM();
    size_t *multi = calloc(x->n_pkgs ? x->n_pkgs : 1, sizeof *multi), n = 0;
    size_t *order = calloc(x->n_pkgs ? x->n_pkgs : 1, sizeof *order), n_order = 0;
    unsigned char *mark = calloc(x->n_pkgs ? x->n_pkgs : 1, 1);
    x->level = calloc(x->n_pkgs ? x->n_pkgs : 1, sizeof *x->level);
    if (!multi || !order || !mark || !x->level) {
        free(multi);
        free(order);
        free(mark);
        return NOMEM();
    }
    /*
     * A requirer's version is decided before the versions of what it
     * requires, so its range steers them: deciding a dependency first and
     * its requirer last would make a dead end undo every choice between them.
     */
    for (size_t p = 0; p < x->n_pkgs; p++)
        requirers_first(x, p, mark, order, &n_order);
    for (size_t i = 0; i < n_order; i++) {
        size_t p = order[i];
        x->level[p] = x->pkgs[p].n_cand == 1 ? -1 : (long)n;
        if (x->pkgs[p].n_cand == 1)
            x->pkgs[p].choice = 0;
        else
            multi[n++] = p;
    }
    free(order);
    free(mark);
    x->conflict_words = (n + 63) / 64;
    if (n && !(x->conflict = calloc(n, x->conflict_words * sizeof *x->conflict))) {
        free(multi);
        return NOMEM();
    }
    /* First only versions that can run; if that leaves no solution, any (the plan says why). */
    long jump;
    x->want_viable = true;
    if (!search(x, multi, n, 0, &jump)) {
        x->want_viable = false;
        x->steps = 0;
        for (size_t k = 0; k < n; k++)
            x->pkgs[multi[k]].choice = -1;
        if (!search(x, multi, n, 0, &jump))
            choose_greedily(x, multi, n);
    }
    free(multi);
    return 0;
}

/*
 * Lists in messages stop after this many items and say how many more there
 * are: a message stays a line, whatever the number of versions or requirers.
 */
#define LIST_MAX 6

/* "2.0.0, 1.1.0 and 1.0.0": the installed versions of `pv` (LIST_MAX, then "and N more"). */
static void print_versions(const pkgvers *pv, FILE *f)
{
    for (size_t i = 0; i < pv->n_cand; i++) {
        if (i == LIST_MAX) {
            fprintf(f, " and %zu more", pv->n_cand - i);
            return;
        }
        fprintf(f, "%s%s",
                i == 0                ? ""
                : i + 1 == pv->n_cand ? " and "
                                      : ", ",
                pv->cand[i]->version_text);
    }
}

/*
 * "1.0.0 is installed", or with several versions "1.0.0 is the version
 * chosen (installed: 1.0.0, 1.1.0 and 2.0.0; pinned to 1.0.0 in
 * host.ini:6)": malloc'd, NULL when out of memory.
 */
static char *chosen_text(const rctx *x, const ph_manifest *dm)
{
    const pkgvers *pv = find_pkg(x, dm->name);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    if (!pv || pv->n_cand < 2) {
        fprintf(f, "%s is installed", dm->version_text);
    } else {
        fprintf(f, "%s is the version chosen (installed: ", dm->version_text);
        print_versions(pv, f);
        if (pv->pin)
            fprintf(f, "; pinned to %s in %s:%d", pv->pin, cfg_path(x), pv->pin_conf->version_line);
        fputc(')', f);
    }
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* Why version `m` of `pv` was not chosen. */
static void why_not(const rctx *x, const pkgvers *pv, const ph_manifest *m, FILE *f)
{
    if (!pin_allows(pv, m)) {
        fprintf(f, "outside the pin %s (%s:%d)", pv->pin, cfg_path(x), pv->pin_conf->version_line);
        return;
    }
    for (size_t i = 0; i < pv->n_in; i++) {
        const edge *e = &pv->in[i];
        if (choice_of(x, e->from_pkg) == e->from && !ph_range_satisfies(e->range, &m->version)) {
            fprintf(f, "outside %s of %s %s", e->range->text, e->from->name, e->from->version_text);
            return;
        }
    }
    if (!consistent(x, (size_t)(pv - x->pkgs), m)) {
        fprintf(f, "its own requirements do not agree with the versions chosen");
        return;
    }
    const ph_dep *dep;
    const char *cannot = unviable(x, m, &dep);
    if (cannot) {
        fprintf(f, "it cannot run: ");
        if (dep)
            fprintf(f, cannot, dep->name, dep->range.text);
        else
            fputs(cannot, f);
        return;
    }
    for (size_t i = 0; i < pv->n_opt_in; i++) {
        const edge *e = &pv->opt_in[i];
        if (choice_of(x, e->from_pkg) == e->from && !ph_range_satisfies(e->range, &m->version)) {
            fprintf(f, "outside %s of %s %s ([optional])", e->range->text, e->from->name,
                    e->from->version_text);
            return;
        }
    }
    const ph_manifest *c = pv->cand[pv->choice];
    fprintf(f, "%s",
            m->version.pre[0] && !c->version.pre[0]       ? "a pre-release, not asked for"
            : ph_semver_cmp(&m->version, &c->version) < 0 ? "lower"
                                                          : "the same version, another copy");
}

/* One note per package installed in several versions: the choice, and why not the others. */
static int note_choices(rctx *x)
{
    for (size_t p = 0; p < x->n_pkgs; p++) {
        const pkgvers *pv = &x->pkgs[p];
        if (pv->n_cand < 2)
            continue;
        char *msg = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&msg, &len);
        if (!f)
            return NOMEM();
        const ph_manifest *c = pv->cand[pv->choice];
        fprintf(f, "package '%s': %s chosen", pv->name, c->version_text);
        if (pv->pin)
            fprintf(f, " (pinned to %s in %s:%d)", pv->pin, cfg_path(x),
                    pv->pin_conf->version_line);
        size_t told = 0;
        for (size_t i = 0; i < pv->n_cand; i++) {
            if (pv->cand[i] == c)
                continue;
            if (told++ == LIST_MAX) {
                fprintf(f, "; and %zu other versions", pv->n_cand - i - (pv->choice > (long)i));
                break;
            }
            fprintf(f, "; not %s: ", pv->cand[i]->version_text);
            why_not(x, pv, pv->cand[i], f);
        }
        if (fclose(f) != 0) {
            free(msg);
            return NOMEM();
        }
        if (push_msg(&x->notes, &x->n_notes, msg))
            return NOMEM();
    }
    return 0;
}

/* True if some [instance] section (enabled or not) runs package `pkg`. */
static bool configured(const rctx *x, const char *pkg)
{
    for (size_t i = 0; i < n_conf(x); i++)
        if (strcmp(x->cfg->instances[i].package, pkg) == 0)
            return true;
    return false;
}

static int fail(node *nd, ph_plan_state state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Marks the node failed/skipped with a reason (the first reason stays). */
static int fail(node *nd, ph_plan_state state, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NOMEM();
    free(nd->reason);
    nd->reason = msg;
    nd->state = state;
    return 0;
}

/* Appends `msg` (taken) to a list of messages. */
static int push_msg(char ***list, size_t *n, char *msg)
{
    char **np = reallocarray(*list, *n + 1, sizeof *np);
    if (!np) {
        free(msg);
        return NOMEM();
    }
    np[(*n)++] = msg;
    *list = np;
    return 0;
}

static int add_problem(rctx *x, char *msg)
{
    return push_msg(&x->problems, &x->n_problems, msg);
}

static int add_note(node *nd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A warning for an instance that still runs; the first one stays. */
static int add_note(node *nd, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NOMEM();
    if (nd->note)
        free(msg);
    else
        nd->note = msg;
    return 0;
}

/* ------------------------------------------------------------------- nodes */

static int add_node(rctx *x, const char *instance, const char *package, const ph_manifest *m,
                    const ph_instance_conf *conf)
{
    node *nn = reallocarray(x->nodes, x->n + 1, sizeof *nn);
    if (!nn)
        return NOMEM();
    x->nodes = nn;
    node *nd = &nn[x->n];
    memset(nd, 0, sizeof *nd);
    nd->instance = strdup(instance);
    nd->package = package;
    nd->m = m;
    nd->conf = conf;
    if (conf && conf->mount)
        nd->mount = strdup(conf->mount);
    else if (asprintf(&nd->mount, "/%s", instance) < 0)
        nd->mount = NULL;
    x->n++; /* counted even when half-built, so it is freed */
    if (!nd->instance || !nd->mount)
        return NOMEM();
    pkgvers *pv = m ? (pkgvers *)find_pkg(x, package) : NULL;
    if (pv) { /* the instances of a package, for the edges to it */
        size_t *nodes = reallocarray(pv->nodes, pv->n_nodes + 1, sizeof *nodes);
        if (!nodes)
            return NOMEM();
        pv->nodes = nodes;
        nodes[pv->n_nodes++] = x->n - 1;
    }
    return 0;
}

/* The default instance of an unconfigured package, unless its name is taken. */
static int add_default(rctx *x, const ph_manifest *m)
{
    const ph_instance_conf *taken = ph_config_instance(x->cfg, m->name);
    if (!taken)
        return add_node(x, m->name, m->name, m, NULL);
    char *msg = NULL;
    if (asprintf(&msg,
                 "package '%s' (%s) gets no default instance: %s:%d uses the name for "
                 "package '%s'; add an [instance NAME] section with package = %s",
                 m->name, m->path, cfg_path(x), taken->line, taken->package, m->name) < 0)
        return NOMEM();
    return add_problem(x, msg);
}

static int build_nodes(rctx *x)
{
    int rc = 0;
    for (size_t i = 0; i < x->set->n && !rc; i++) {
        const ph_manifest *m = x->set->items[i];
        size_t count;
        if (lookup(x, m->name, &count) != m)
            continue; /* another version, or a copy: the chosen one stands for all */
        if (!configured(x, m->name)) {
            rc = add_default(x, m);
            continue;
        }
        for (size_t k = 0; k < n_conf(x) && !rc; k++) {
            const ph_instance_conf *ic = &x->cfg->instances[k];
            if (ic->enabled && strcmp(ic->package, m->name) == 0)
                rc = add_node(x, ic->name, ic->package, m, ic);
        }
    }
    for (size_t k = 0; k < n_conf(x) && !rc; k++) {
        const ph_instance_conf *ic = &x->cfg->instances[k];
        size_t count;
        if (ic->enabled && !lookup(x, ic->package, &count))
            rc = add_node(x, ic->name, ic->package, NULL, ic);
    }
    return rc;
}

/* ------------------------------------------------------------------ checks */

static bool same_version(const ph_manifest *a, const ph_manifest *b)
{
    return strcmp(a->name, b->name) == 0 && ph_semver_cmp(&a->version, &b->version) == 0;
}

/* "A, B and C" of the paths of every copy of `of` (same name and version). */
static char *list_copies(const rctx *x, const ph_manifest *of)
{
    char *out = strdup("");
    for (size_t i = 0; out && i < x->set->n; i++) {
        const ph_manifest *m = x->set->items[i];
        if (!same_version(m, of))
            continue;
        char *next = NULL;
        bool last = true;
        for (size_t k = i + 1; k < x->set->n; k++)
            last = last && !same_version(x->set->items[k], of);
        if (asprintf(&next, "%s%s%s", out, !*out ? "" : last ? " and " : ", ", m->path) < 0)
            next = NULL;
        free(out);
        out = next;
    }
    return out;
}

static int check_duplicate(const rctx *x, node *nd)
{
    size_t count;
    lookup(x, nd->package, &count);
    if (count < 2)
        return 0;
    char *paths = list_copies(x, nd->m);
    if (!paths)
        return NOMEM();
    int rc =
        fail(nd, PH_PLAN_FAILED, "package '%s' %s is installed %zu times: %s; remove all but one",
             nd->package, nd->m->version_text, count, paths);
    free(paths);
    return rc;
}

static const ph_kv *find_kv(const ph_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return &kv[i];
    return NULL;
}

/* "a, b, c" of the declared parameter names. */
static char *param_names(const ph_manifest *m)
{
    size_t len = 1;
    for (size_t i = 0; i < m->n_params; i++) {
        size_t k = strlen(m->params[i].key) + 2;
        if (len > SIZE_MAX - k)
            return NULL;
        len += k;
    }
    char *out = malloc(len);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (size_t i = 0; i < m->n_params; i++) {
        if (i)
            strcat(out, ", ");
        strcat(out, m->params[i].key);
    }
    return out;
}

static int check_params(const rctx *x, node *nd)
{
    for (size_t i = 0; nd->conf && i < nd->conf->n_params; i++) {
        const ph_kv *o = &nd->conf->params[i];
        if (find_kv(nd->m->params, nd->m->n_params, o->key))
            continue;
        if (nd->m->n_params == 0)
            return fail(nd, PH_PLAN_FAILED,
                        "%s:%d: instance '%s' sets parameter '%s', but package "
                        "'%s' declares no parameters; remove the line",
                        cfg_path(x), o->line, nd->instance, o->key, nd->package);
        char *names = param_names(nd->m);
        if (!names)
            return NOMEM();
        int rc = fail(nd, PH_PLAN_FAILED,
                      "%s:%d: instance '%s' sets parameter '%s', which "
                      "package '%s' does not declare; declared parameters: %s",
                      cfg_path(x), o->line, nd->instance, o->key, nd->package, names);
        free(names);
        return rc;
    }
    return 0;
}

static int check_mount(const rctx *x, size_t i)
{
    node *nd = &x->nodes[i];
    for (size_t k = 0; k < i; k++) {
        if (strcmp(x->nodes[k].mount, nd->mount) == 0)
            return fail(nd, PH_PLAN_FAILED,
                        "instance '%s' has mount '%s', which instance '%s' "
                        "already uses; set another mount in [instance %s]",
                        nd->instance, nd->mount, x->nodes[k].instance, nd->instance);
    }
    return 0;
}

static bool has_enabled_instance(const rctx *x, const char *pkg)
{
    for (size_t i = 0; i < x->n; i++)
        if (x->nodes[i].m && strcmp(x->nodes[i].package, pkg) == 0)
            return true;
    return false;
}

static const char *pre_hint(const ph_manifest *dm)
{
    return dm->version.pre[0] ? " (a pre-release only matches a range naming a pre-release of "
                                "the same version, such as >=1.0.0-rc.1)"
                              : "";
}

/* The problem of a package directory whose manifest names `name` but is invalid. */
static const char *invalid_manifest(const rctx *x, const char *name)
{
    for (size_t i = 0; x->set->problem_names && i < x->set->n_problems; i++)
        if (x->set->problem_names[i] && strcmp(x->set->problem_names[i], name) == 0)
            return x->set->problems[i];
    return NULL;
}

static int missing_dep(const rctx *x, node *nd, const ph_dep *d)
{
    const ph_manifest *m = nd->m;
    const char *bad = invalid_manifest(x, d->name);
    if (bad)
        return fail(nd, PH_PLAN_FAILED,
                    "instance '%s' (package %s %s) requires package '%s' (%s), which is "
                    "installed but its manifest is invalid: %s",
                    nd->instance, m->name, m->version_text, d->name, d->range.text, bad);
    return fail(nd, PH_PLAN_FAILED,
                "instance '%s' (package %s %s) requires package '%s' "
                "(%s), which is not installed; add it to a package "
                "directory or remove the requirement",
                nd->instance, m->name, m->version_text, d->name, d->range.text);
}

/* The number of chosen versions of packages whose [requires] names `name`. */
static size_t n_requirers(const rctx *x, const char *name)
{
    const pkgvers *pv = find_pkg(x, name);
    size_t n = 0;
    for (size_t i = 0; pv && i < pv->n_in; i++)
        n += choice_of(x, pv->in[i].from_pkg) == pv->in[i].from;
    return n;
}

/* Releases before pre-releases, each highest first: the order providers are taken in. */
static bool provides_before(const capability *c, const ph_manifest *a, const ph_manifest *b)
{
    const ph_semver *va = provided(a, c->name), *vb = provided(b, c->name);
    bool pa = va->pre[0] != '\0', pb = vb->pre[0] != '\0';
    if (pa != pb)
        return pb;
    return ph_semver_cmp(va, vb) > 0;
}

/* The [requires] or [optional] line of the chosen version of package p naming `name`, or NULL. */
static const ph_dep *chosen_uses(const rctx *x, size_t p, const char *name)
{
    const ph_manifest *m = choice_of(x, p);
    for (size_t k = 0; m && k < m->n_requires; k++)
        if (strcmp(m->requires[k].name, name) == 0)
    return &m->requires[k];
    for (size_t k = 0; m && k < m->n_optional; k++)
        if (strcmp(m->optional[k].name, name) == 0)
            return &m->optional[k];
    return NULL;
}

/*
 * The provider a requirement on capability `c` gets: the running provider
 * with the highest version of it in range (releases first), as the router
 * picks it for a call addressed to the capability; NULL if none.
 */
static const ph_manifest *provider_for(const capability *c, const ph_range *range)
{
    for (size_t i = 0; i < c->n_prov; i++)
        if (ph_range_satisfies(range, provided(c->prov[i], c->name)))
            return c->prov[i];
    return NULL;
}

/* "capability 'sql-store': pg_store 2.0.0 provides 2.1.0, used by web 1.0.0; ..." */
static int note_providers(rctx *x, const capability *c)
{
    char *msg = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&msg, &len);
    if (!f)
        return NOMEM();
    fprintf(f, "capability '%s':", c->name);
    for (size_t i = 0; i < c->n_prov && i < LIST_MAX; i++) {
        const ph_manifest *m = c->prov[i];
        size_t users = 0;
        fprintf(f, "%s %s %s provides %s", i ? ";" : "", m->name, m->version_text,
                ph_manifest_provides(m, c->name)->version_text);
        for (size_t p = 0; p < x->n_pkgs; p++) {
            const ph_dep *d = chosen_uses(x, p, c->name);
            if (!d || provider_for(c, &d->range) != m)
                continue;
            if (users++ < LIST_MAX)
                fprintf(f, "%s %s %s", users > 1 ? "," : ", used by", choice_of(x, p)->name,
                        choice_of(x, p)->version_text);
        }
        if (users > LIST_MAX)
            fprintf(f, " and %zu more", users - LIST_MAX);
        if (!users)
            fprintf(f, ", unused");
    }
    if (c->n_prov > LIST_MAX)
        fprintf(f, "; and %zu more providers", c->n_prov - LIST_MAX);
    if (c->pin)
        fprintf(f, " (pinned in %s:%d)", cfg_path(x), c->pin->line);
    if (fclose(f) != 0) {
        free(msg);
        return NOMEM();
    }
    return push_msg(&x->notes, &x->n_notes, msg);
}

/*
 * Per capability, its providers that run (the chosen versions of packages
 * providing it, with an enabled instance), best first; a note says who
 * provides it and who uses which.
 */
static int take_providers(rctx *x)
{
    for (size_t ci = 0; ci < x->n_caps; ci++) {
        capability *c = &x->caps[ci];
        for (size_t i = 0; i < c->n_all; i++) {
            const ph_manifest *m = c->all[i];
            size_t count;
            if (lookup(x, m->name, &count) != m || count > 1 || !has_enabled_instance(x, m->name))
                continue;
            if (push_manifest(&c->prov, &c->n_prov, m))
                return NOMEM();
            for (size_t at = c->n_prov - 1; at > 0 && provides_before(c, m, c->prov[at - 1]);
                 at--) {
                c->prov[at] = c->prov[at - 1];
                c->prov[at - 1] = m;
            }
        }
        if (c->n_prov && note_providers(x, c))
            return NOMEM();
    }
    /* a [provides] line naming an installed package is no capability: say so */
    for (size_t p = 0; p < x->n_pkgs; p++) {
        const ph_manifest *m = choice_of(x, p);
        for (size_t k = 0; m && k < m->n_provides; k++) {
            char *msg = NULL;
            if (!find_pkg(x, m->provides[k].name))
                continue;
            if (asprintf(&msg,
                         "package '%s' %s provides '%s' (%s:%d), but a package named '%s' is "
                         "installed: requirements on '%s' get that package; rename the "
                         "capability",
                         m->name, m->version_text, m->provides[k].name, m->path,
                         m->provides[k].line, m->provides[k].name, m->provides[k].name) < 0 ||
                push_msg(&x->notes, &x->n_notes, msg))
                return NOMEM();
        }
    }
    return 0;
}

/*
 * A requirement naming capability `c` needs a running provider of a version
 * in range; otherwise the message lists every provider with the version it
 * provides and why it cannot serve.
 */
static int check_cap_dep(const rctx *x, node *nd, const ph_dep *d, const capability *c,
                         bool optional)
{
    const ph_manifest *m = nd->m;
    if (provider_for(c, &d->range))
        return 0;
    char *list = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&list, &len);
    if (!f)
        return NOMEM();
    for (size_t i = 0; i < c->n_all && i < LIST_MAX; i++) {
        const ph_manifest *p = c->all[i];
        size_t count;
        const ph_manifest *run = lookup(x, p->name, &count);
        fprintf(f, "%s%s %s provides %s %s (", i ? ", " : "", p->name, p->version_text, c->name,
                ph_manifest_provides(p, c->name)->version_text);
        if (!ph_range_satisfies(&d->range, provided(p, c->name)))
            fprintf(f, "outside %s", d->range.text);
        else if (run != p)
            fprintf(f, "%s %s is the version chosen", p->name, run ? run->version_text : "?");
        else
            fprintf(f, "every instance of %s is disabled", p->name);
        fputc(')', f);
    }
    if (c->n_all > LIST_MAX)
        fprintf(f, " and %zu more", c->n_all - LIST_MAX);
    if (c->pin) /* the operator chose the provider: say where */
        fprintf(f, "%s%s:%d pins %s to %s ([provides])", c->n_all ? "; " : "", cfg_path(x),
                c->pin->line, c->name, c->pin->value);
    if (fclose(f) != 0) {
        free(list);
        return NOMEM();
    }
    int rc = optional
                 ? add_note(nd,
                            "package '%s' %s optionally uses %s %s (a capability), but no "
                            "provider suits: %s; running without it",
                            m->name, m->version_text, d->name, d->range.text, list)
                 : fail(nd, PH_PLAN_FAILED,
                        "package '%s' %s requires %s %s, a capability no running provider "
                        "suits: %s; install a provider of a matching version or change the "
                        "range in %s:%d",
                        m->name, m->version_text, d->name, d->range.text, list, m->path, d->line);
    free(list);
    return rc;
}

/* [requires] and [optional]: installed, in range, and runnable. */
static int check_deps(const rctx *x, node *nd, const ph_dep *deps, size_t n, bool optional)
{
    const ph_manifest *m = nd->m;
    for (size_t i = 0; i < n; i++) {
        const ph_dep *d = &deps[i];
        size_t count;
        const ph_manifest *dm = lookup(x, d->name, &count);
        const capability *cap = dm ? NULL : find_cap(x, d->name);
        if (cap && (cap->n_all || cap->pin)) { /* a pin with no provider left: it says why */
            int rc = check_cap_dep(x, nd, d, cap, optional);
            if (rc || nd->state)
                return rc;
            continue;
        }
        if (!dm && optional)
            continue;
        if (!dm)
            return missing_dep(x, nd, d);
        if (count > 1)
            continue; /* its instances fail; this one is skipped */
        if (!ph_range_satisfies(&d->range, &dm->version) && optional) {
            int rc = add_note(nd,
                              "package '%s' %s optionally uses %s %s but %s %s is installed%s; "
                              "running without it (change the range in %s:%d to use it)",
                              m->name, m->version_text, d->name, d->range.text, d->name,
                              dm->version_text, pre_hint(dm), m->path, d->line);
            if (rc)
                return rc;
            continue;
        }
        if (!ph_range_satisfies(&d->range, &dm->version)) {
            char *which = chosen_text(x, dm);
            int rc = n_requirers(x, d->name) > 1
                         ? fail(nd, PH_PLAN_FAILED,
                                "package '%s' %s requires %s %s but %s %s%s; `plughost check` "
                                "lists the requirers of %s and the versions each accepts; or "
                                "change the range in %s:%d",
                                m->name, m->version_text, d->name, d->range.text, d->name,
                                which ? which : dm->version_text, pre_hint(dm), d->name, m->path,
                                d->line)
                         : fail(nd, PH_PLAN_FAILED,
                                "package '%s' %s requires %s %s but %s %s%s; "
                                "install a matching version of %s or change the range "
                                "in %s:%d%s%s",
                                m->name, m->version_text, d->name, d->range.text, d->name,
                                which ? which : dm->version_text, pre_hint(dm), d->name, m->path,
                                d->line,
                                invalid_manifest(x, d->name) ? "; another manifest of it could "
                                                               "not be read: "
                                                             : "",
                                invalid_manifest(x, d->name) ? invalid_manifest(x, d->name) : "");
            free(which);
            return rc;
        }
        if (!optional && !has_enabled_instance(x, d->name))
            return fail(nd, PH_PLAN_FAILED,
                        "package '%s' %s requires %s, but every instance of %s "
                        "is disabled in %s; enable one",
                        m->name, m->version_text, d->name, d->name, cfg_path(x));
    }
    return 0;
}

static int check_conflicts(const rctx *x, node *nd)
{
    const ph_manifest *m = nd->m;
    for (size_t i = 0; i < m->n_conflicts; i++) {
        const ph_dep *d = &m->conflicts[i];
        size_t count;
        const ph_manifest *dm = lookup(x, d->name, &count);
        const capability *cap = dm ? NULL : find_cap(x, d->name);
        for (size_t k = 0; cap && k < cap->n_prov; k++) {
            const ph_manifest *pm = cap->prov[k];
            if (pm != m && ph_range_covers(&d->range, provided(pm, cap->name)))
                return fail(nd, PH_PLAN_FAILED,
                            "package '%s' %s conflicts with %s %s, which %s %s provides (%s:%d: "
                            "%s = %s); remove or disable one of them",
                            m->name, m->version_text, d->name,
                            ph_manifest_provides(pm, cap->name)->version_text, pm->name,
                            pm->version_text, m->path, d->line, d->name, d->range.text);
        }
        if (!dm || !has_enabled_instance(x, d->name) || !ph_range_covers(&d->range, &dm->version))
            continue;
        return fail(nd, PH_PLAN_FAILED,
                    "package '%s' %s conflicts with %s %s (%s:%d: %s = %s); "
                    "remove or disable one of them",
                    m->name, m->version_text, dm->name, dm->version_text, m->path, d->line, d->name,
                    d->range.text);
    }
    return 0;
}

/* The versions every range of a set of ranges admits: one interval, maybe empty. */
typedef struct span {
    ph_semver lo, hi;
    bool has_lo, has_hi, lo_incl, hi_incl;
} span;

static void span_add(span *sp, const ph_range *r)
{
    for (int i = 0; i < r->n; i++) {
        const ph_semver_cmpr *c = &r->c[i];
        bool lower = c->op == PH_OP_GE || c->op == PH_OP_GT || c->op == PH_OP_EQ;
        bool upper = c->op == PH_OP_LE || c->op == PH_OP_LT || c->op == PH_OP_EQ;
        bool incl = c->op != PH_OP_GT && c->op != PH_OP_LT;
        int d = sp->has_lo ? ph_semver_cmp(&c->v, &sp->lo) : 1;
        if (lower && (d > 0 || (d == 0 && !incl))) {
            sp->lo = c->v;
            sp->lo_incl = incl;
            sp->has_lo = true;
        }
        d = sp->has_hi ? ph_semver_cmp(&c->v, &sp->hi) : -1;
        if (upper && (d < 0 || (d == 0 && !incl))) {
            sp->hi = c->v;
            sp->hi_incl = incl;
            sp->has_hi = true;
        }
    }
}

static bool span_empty(const span *sp)
{
    if (!sp->has_lo || !sp->has_hi)
        return false;
    int d = ph_semver_cmp(&sp->lo, &sp->hi);
    return d > 0 || (d == 0 && !(sp->lo_incl && sp->hi_incl));
}

static bool same_tuple(const ph_semver *a, const ph_semver *b)
{
    return a->major == b->major && a->minor == b->minor && a->patch == b->patch;
}

/*
 * A span that holds only pre-releases of one version (">=1.5.0-rc.1, <1.5.0")
 * is met only if every range admits that version's pre-releases: npm's rule
 * (a range takes X.Y.Z-pre only through a comparator naming X.Y.Z-something).
 */
static bool span_needs_prereleases_of(const span *sp, ph_semver *t)
{
    if (!sp->has_lo || !sp->lo.pre[0] || !sp->has_hi || !same_tuple(&sp->lo, &sp->hi))
        return false;
    *t = sp->lo;
    return true;
}

static bool range_admits_prereleases_of(const ph_range *r, const ph_semver *t)
{
    for (int i = 0; i < r->n; i++)
        if (r->c[i].v.pre[0] && same_tuple(&r->c[i].v, t))
            return true;
    return false;
}

/* "versions >=2.0.0, <3.0.0" (a "-0" upper bound is shown as its release). */
static void span_print(FILE *f, const span *sp)
{
    char lo[96], hi[96];
    ph_semver h = sp->hi;
    if (strcmp(h.pre, "0") == 0)
        h.pre[0] = '\0';
    ph_semver_format(&sp->lo, lo, sizeof lo);
    ph_semver_format(&h, hi, sizeof hi);
    if (sp->has_lo && sp->has_hi && !ph_semver_cmp(&sp->lo, &sp->hi))
        fprintf(f, "only %s", lo);
    else
        fprintf(f, "versions %s%s%s%s%s%s", sp->has_lo ? (sp->lo_incl ? ">=" : ">") : "",
                sp->has_lo ? lo : "", sp->has_lo && sp->has_hi ? ", " : "",
                sp->has_hi ? (sp->hi_incl ? "<=" : "<") : "", sp->has_hi ? hi : "",
                !sp->has_lo && !sp->has_hi ? "*" : "");
}

/* Lists every requirer of `dm` with its range, and what would satisfy them all. */
static int explain_requirers(rctx *x, const ph_manifest *dm)
{
    for (size_t i = 0; i < x->n_explained; i++)
        if (strcmp(x->explained[i], dm->name) == 0)
            return 0;
    char *name = strdup(dm->name);
    if (!name || push_msg(&x->explained, &x->n_explained, name))
        return NOMEM();
    char *msg = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&msg, &len);
    if (!f)
        return NOMEM();
    span sp = {0};
    const pkgvers *pv = find_pkg(x, dm->name);
    size_t n = n_requirers(x, dm->name), k = 0;
    fprintf(f, "package '%s' (installed: ", dm->name);
    print_versions(pv, f);
    fprintf(f, ") is required by");
    for (size_t i = 0; i < pv->n_in; i++) {
        const edge *e = &pv->in[i];
        if (choice_of(x, e->from_pkg) != e->from)
            continue;
        span_add(&sp, e->range);
        if (++k > LIST_MAX * 2) { /* every requirer counts in the span, the first ones are named */
            if (k == LIST_MAX * 2 + 1)
                fprintf(f, " and %zu more", n - LIST_MAX * 2);
            continue;
        }
        fprintf(f, "%s %s %s (%s accepts ",
                k == 1   ? ""
                : k == n ? " and"
                         : ",",
                e->from->name, e->from->version_text, e->range->text);
        size_t ok = 0;
        for (size_t c = 0; c < pv->n_cand; c++) {
            if (!ph_range_satisfies(e->range, &pv->cand[c]->version))
                continue;
            if (ok++ < LIST_MAX)
                fprintf(f, "%s%s", ok > 1 ? ", " : "", pv->cand[c]->version_text);
        }
        if (ok > LIST_MAX)
            fprintf(f, " and %zu more", ok - LIST_MAX);
        fprintf(f, "%s)", ok ? "" : "no installed version");
    }
    ph_semver t;
    bool empty = span_empty(&sp);
    for (size_t i = 0; !empty && span_needs_prereleases_of(&sp, &t) && i < pv->n_in; i++)
        empty = choice_of(x, pv->in[i].from_pkg) == pv->in[i].from &&
                !range_admits_prereleases_of(pv->in[i].range, &t);
    if (empty) {
        fprintf(f, "; no version satisfies all of them: change one of the ranges");
    } else {
        fprintf(f, "; ");
        span_print(f, &sp);
        fprintf(f, " satisfy all of them: install one of those");
    }
    if (fclose(f) != 0) {
        free(msg);
        return NOMEM();
    }
    return add_problem(x, msg);
}

/* Lists the requirers of each dependency of `nd` that some of them disagree about. */
static int explain_disagreements(rctx *x, const node *nd)
{
    for (size_t k = 0; nd->m && k < nd->m->n_requires; k++) {
        const ph_dep *d = &nd->m->requires[k];
        size_t count;
        const ph_manifest *dm = lookup(x, d->name, &count);
        if (!dm || count > 1 || ph_range_satisfies(&d->range, &dm->version) ||
            n_requirers(x, d->name) < 2)
            continue;
        int rc = explain_requirers(x, dm);
        if (rc)
            return rc;
    }
    return 0;
}

/* [instance] version = RANGE: the version chosen must be inside it. */
static int check_pin(const rctx *x, node *nd)
{
    ph_range pin;
    if (!nd->conf || !nd->conf->version || ph_range_parse(nd->conf->version, &pin) ||
        ph_range_satisfies(&pin, &nd->m->version))
        return 0;
    const pkgvers *pv = find_pkg(x, nd->package);
    if (pv && pv->pin_conf && pv->pin_conf != nd->conf) /* another instance's pin decided */
        return fail(nd, PH_PLAN_FAILED,
                    "%s:%d: instance '%s' pins package '%s' to %s, but instance '%s' pins it to "
                    "%s (%s:%d), and every instance of a package runs one version; pin them "
                    "alike",
                    cfg_path(x), nd->conf->version_line, nd->instance, nd->package,
                    nd->conf->version, pv->pin_conf->name, pv->pin, cfg_path(x),
                    pv->pin_conf->version_line);
    char *versions = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&versions, &len);
    if (!f)
        return NOMEM();
    print_versions(find_pkg(x, nd->package), f);
    if (fclose(f) != 0) {
        free(versions);
        return NOMEM();
    }
    int rc = fail(nd, PH_PLAN_FAILED,
                  "%s:%d: instance '%s' pins package '%s' to %s, but the installed versions "
                  "are %s; install a matching version or change the pin",
                  cfg_path(x), nd->conf->version_line, nd->instance, nd->package, nd->conf->version,
                  versions);
    free(versions);
    return rc;
}

/* Runs the checks of one node in order; the first failure is its reason. */
static int check_node(rctx *x, size_t i)
{
    node *nd = &x->nodes[i];
    if (!nd->m)
        return fail(nd, PH_PLAN_FAILED,
                    "instance '%s' (%s:%d): package '%s' is not installed; "
                    "check the name or add the package to a package directory",
                    nd->instance, cfg_path(x), nd->conf->line, nd->package);
    int rc = check_duplicate(x, nd);
    if (!rc && !nd->state && nd->m->abi != PH_ABI_VERSION)
        rc = fail(nd, PH_PLAN_FAILED,
                  "package '%s' declares abi %d but this host supports abi %d; "
                  "rebuild it against this host's SDK",
                  nd->package, nd->m->abi, PH_ABI_VERSION);
    if (!rc && !nd->state)
        rc = check_pin(x, nd);
    if (!rc && !nd->state)
        rc = check_params(x, nd);
    if (!rc && !nd->state)
        rc = check_mount(x, i);
    if (!rc && !nd->state)
        rc = check_deps(x, nd, nd->m->requires, nd->m->n_requires, false);
    if (!rc && !nd->state)
        rc = check_deps(x, nd, nd->m->optional, nd->m->n_optional, true);
    if (!rc && !nd->state)
        rc = check_conflicts(x, nd);
    return rc;
}

/* ------------------------------------------------------------------- edges */

static int add_edge(node *nd, size_t to, bool optional)
{
    for (size_t i = 0; i < nd->n_deps; i++)
        if (nd->deps[i] == to)
            return 0;
    size_t *nd_deps = reallocarray(nd->deps, nd->n_deps + 1, sizeof *nd_deps);
    if (!nd_deps)
        return NOMEM();
    nd->deps = nd_deps;
    bool *nopt = reallocarray(nd->optional, nd->n_deps + 1, sizeof *nopt);
    if (!nopt)
        return NOMEM();
    nd->optional = nopt;
    nd->deps[nd->n_deps] = to;
    nd->optional[nd->n_deps++] = optional;
    return 0;
}

/* Edges to every instance of each installed dependency within its range. */
static int add_edges(rctx *x, size_t i, const ph_dep *deps, size_t n, bool optional)
{
    for (size_t k = 0; k < n; k++) {
        size_t count;
        const ph_manifest *dm = lookup(x, deps[k].name, &count);
        const capability *cap = dm ? NULL : find_cap(x, deps[k].name);
        if (cap && provider_for(cap, &deps[k].range)) {
            dm = provider_for(cap, &deps[k].range); /* the edge goes to the provider's instances */
            count = 1;
        } else if (!dm || (count == 1 && !ph_range_satisfies(&deps[k].range, &dm->version)))
            continue;
        const pkgvers *pv = find_pkg(x, dm->name);
        for (size_t n_j = 0; pv && n_j < pv->n_nodes; n_j++) {
            size_t j = pv->nodes[n_j];
            if (x->nodes[j].m) {
                int rc = add_edge(&x->nodes[i], j, optional);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ cycles */

/* "a -> b -> c -> a": the shortest cycle through `start`, from BFS parents. */
static int cycle_reason(rctx *x, size_t start, size_t last, const size_t *parent)
{
    size_t len = 0, count = 0;
    for (size_t v = last;; v = parent[v]) {
        len += strlen(x->nodes[v].package) + 4;
        count++;
        if (v == start)
            break;
    }
    const char **names = calloc(count, sizeof *names);
    char *path = malloc(len + strlen(x->nodes[start].package) + 1);
    int rc = NOMEM();
    if (!names || !path)
        goto cleanup;
    size_t k = count;
    for (size_t v = last;; v = parent[v]) {
        names[--k] = x->nodes[v].package;
        if (v == start)
            break;
    }
    path[0] = '\0';
    for (k = 0; k < count; k++) {
        strcat(path, names[k]);
        strcat(path, " -> ");
    }
    strcat(path, x->nodes[start].package);
    x->nodes[start].on_cycle = true;
    rc = 0;
    if (!x->nodes[start].state)
        rc = fail(&x->nodes[start], PH_PLAN_FAILED,
                  "dependency cycle: %s; remove one of these requirements", path);
    /* The path is stated once; the other members point to it, so a cycle
     * of N packages prints N short lines, not N paths of N names. */
    for (size_t v = last; !rc && v != start; v = parent[v]) {
        node *nd = &x->nodes[v];
        nd->on_cycle = true;
        if (!nd->state)
            rc = fail(nd, PH_PLAN_FAILED,
                      "on the dependency cycle stated for instance '%s'; remove one of its "
                      "requirements",
                      x->nodes[start].instance);
    }
cleanup:
    free(names);
    free(path);
    return rc;
}

/* Breadth-first search from `start` back to itself. */
static int find_cycle(rctx *x, size_t start, size_t *parent, size_t *queue, bool *seen)
{
    size_t head = 0, tail = 0;
    memset(seen, 0, x->n * sizeof *seen);
    queue[tail++] = start;
    seen[start] = true;
    while (head < tail) {
        size_t v = queue[head++];
        const node *nd = &x->nodes[v];
        for (size_t i = 0; i < nd->n_deps; i++) {
            size_t w = nd->deps[i];
            if (w == start)
                return cycle_reason(x, start, v, parent);
            if (!seen[w]) {
                seen[w] = true;
                parent[w] = v;
                queue[tail++] = w;
            }
        }
    }
    return 0;
}

/* True if `to` is reachable from `from` along the edges. */
static bool reaches(const rctx *x, size_t from, size_t to, size_t *queue, bool *seen)
{
    size_t head = 0, tail = 0;
    memset(seen, 0, x->n * sizeof *seen);
    queue[tail++] = from;
    seen[from] = true;
    while (head < tail) {
        const node *nd = &x->nodes[queue[head++]];
        for (size_t i = 0; i < nd->n_deps; i++) {
            size_t w = nd->deps[i];
            if (w == to)
                return true;
            if (!seen[w]) {
                seen[w] = true;
                queue[tail++] = w;
            }
        }
    }
    return false;
}

/*
 * An [optional] edge that would close a cycle is dropped (with a note): an
 * optional dependency is never the reason an instance fails.
 */
static int drop_optional_cycles(rctx *x)
{
    int rc = 0;
    size_t *queue = calloc(x->n ? x->n : 1, sizeof *queue);
    bool *seen = calloc(x->n ? x->n : 1, sizeof *seen);
    if (!queue || !seen)
        rc = NOMEM();
    for (size_t i = 0; i < x->n && !rc; i++) {
        node *nd = &x->nodes[i];
        for (size_t k = 0; k < nd->n_deps && !rc; k++) {
            size_t to = nd->deps[k];
            if (!nd->optional[k] || (to != i && !reaches(x, to, i, queue, seen)))
                continue;
            rc = add_note(nd,
                          "its optional dependency on '%s' would close a dependency cycle "
                          "('%s' needs '%s'); '%s' is loaded without waiting for it",
                          x->nodes[to].instance, x->nodes[to].instance, nd->instance, nd->instance);
            nd->deps[k] = nd->deps[nd->n_deps - 1];
            nd->optional[k] = nd->optional[nd->n_deps - 1];
            nd->n_deps--;
            k--;
        }
    }
    free(queue);
    free(seen);
    return rc;
}

static int mark_cycles(rctx *x)
{
    int rc = 0;
    size_t *parent = calloc(x->n, sizeof *parent);
    size_t *queue = calloc(x->n, sizeof *queue);
    bool *seen = calloc(x->n, sizeof *seen);
    if (!parent || !queue || !seen)
        rc = NOMEM();
    for (size_t i = 0; i < x->n && !rc; i++)
        if (!x->nodes[i].on_cycle)
            rc = find_cycle(x, i, parent, queue, seen);
    free(parent);
    free(queue);
    free(seen);
    return rc;
}

/* ------------------------------------------------------------------- order */

static bool ready(const rctx *x, size_t i, const bool *placed)
{
    const node *nd = &x->nodes[i];
    if (nd->on_cycle)
        return true; /* failed; its edges cannot be honoured */
    for (size_t k = 0; k < nd->n_deps; k++)
        if (!placed[nd->deps[k]])
            return false;
    return true;
}

/* Topological order, always taking the first ready node in base order. */
static int order_nodes(const rctx *x, size_t *order)
{
    bool *placed = calloc(x->n ? x->n : 1, sizeof *placed);
    if (!placed)
        return NOMEM();
    for (size_t k = 0; k < x->n; k++) {
        size_t pick = SIZE_MAX, first = SIZE_MAX;
        for (size_t i = 0; i < x->n && pick == SIZE_MAX; i++) {
            if (placed[i])
                continue;
            if (first == SIZE_MAX)
                first = i;
            if (ready(x, i, placed))
                pick = i;
        }
        if (pick == SIZE_MAX)
            pick = first; /* unreachable: every cycle is marked */
        placed[pick] = true;
        order[k] = pick;
    }
    free(placed);
    return 0;
}

/* In load order: dependents of failed/skipped instances are skipped. */
static int propagate(rctx *x, const size_t *order)
{
    for (size_t k = 0; k < x->n; k++) {
        node *nd = &x->nodes[order[k]];
        for (size_t i = 0; nd->state == PH_PLAN_OK && i < nd->n_deps; i++) {
            const node *d = &x->nodes[nd->deps[i]];
            if (d->state == PH_PLAN_OK || nd->optional[i])
                continue;
            /* Only the direct dependency and the root cause: a long chain
             * gives lines of constant length, not the whole chain in each. */
            nd->cause = d->state == PH_PLAN_FAILED ? nd->deps[i] : d->cause;
            int rc = d->state == PH_PLAN_FAILED
                         ? fail(nd, PH_PLAN_SKIPPED, "skipped: depends on '%s', which failed",
                                d->instance)
                         : fail(nd, PH_PLAN_SKIPPED,
                                "skipped: depends on '%s', which is skipped because '%s' failed",
                                d->instance, x->nodes[nd->cause].instance);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------- emit */

static void free_kvs(ph_kv *kv, size_t n)
{
    for (size_t i = 0; kv && i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

/* Declared defaults, with the config's overrides applied (and their lines). */
static int effective_params(const node *nd, ph_plan_item *it)
{
    if (!nd->m || nd->m->n_params == 0)
        return 0;
    it->params = calloc(nd->m->n_params, sizeof *it->params);
    if (!it->params)
        return NOMEM();
    for (size_t i = 0; i < nd->m->n_params; i++) {
        const ph_kv *src = &nd->m->params[i];
        const ph_kv *o = nd->conf ? find_kv(nd->conf->params, nd->conf->n_params, src->key) : NULL;
        if (o)
            src = o;
        it->params[i].key = strdup(src->key);
        it->params[i].value = strdup(src->value);
        it->params[i].line = src->line;
        it->n_params = i + 1;
        if (!it->params[i].key || !it->params[i].value)
            return NOMEM();
    }
    return 0;
}

/* "instance 'x': reason", unless the reason already names the instance. */
static int problem_for(rctx *x, const ph_plan_item *it)
{
    char *msg = NULL, *self = NULL;
    if (asprintf(&self, "instance '%s'", it->instance) < 0)
        return NOMEM();
    int n = strstr(it->reason, self) ? asprintf(&msg, "%s", it->reason)
                                     : asprintf(&msg, "%s: %s", self, it->reason);
    free(self);
    if (n < 0)
        return NOMEM();
    return add_problem(x, msg);
}

/* Moves node `nd` into plan item `it`; deps renumbered to plan positions. */
static int emit_item(rctx *x, node *nd, const size_t *pos, ph_plan_item *it)
{
    it->instance = nd->instance;
    nd->instance = NULL;
    it->mount = nd->mount;
    nd->mount = NULL;
    it->reason = nd->reason;
    nd->reason = NULL;
    if (nd->state == PH_PLAN_OK && nd->note) {
        it->note = nd->note;
        nd->note = NULL;
        char *msg = NULL;
        if (asprintf(&msg, "instance '%s': %s", it->instance, it->note) < 0 ||
            push_msg(&x->notes, &x->n_notes, msg))
            return NOMEM();
    }
    it->manifest = nd->m;
    it->conf = nd->conf;
    it->state = nd->state;
    it->deps = calloc(nd->n_deps ? nd->n_deps : 1, sizeof *it->deps);
    if (!it->deps)
        return NOMEM();
    for (size_t i = 0; i < nd->n_deps; i++) {
        /* An OK instance does not need an optional one that will not run. */
        if (nd->optional[i] && nd->state == PH_PLAN_OK && x->nodes[nd->deps[i]].state != PH_PLAN_OK)
            continue;
        it->deps[it->n_deps++] = pos[nd->deps[i]];
    }
    int rc = effective_params(nd, it);
    if (!rc && it->state != PH_PLAN_OK)
        rc = problem_for(x, it);
    return rc;
}

static int emit(rctx *x, const size_t *order, ph_plan *out)
{
    size_t *pos = calloc(x->n ? x->n : 1, sizeof *pos);
    if (!pos)
        return NOMEM();
    out->items = calloc(x->n ? x->n : 1, sizeof *out->items);
    int rc = out->items ? 0 : NOMEM();
    for (size_t k = 0; k < x->n; k++)
        pos[order[k]] = k;
    for (size_t k = 0; k < x->n && !rc; k++) {
        out->n = k + 1;
        rc = emit_item(x, &x->nodes[order[k]], pos, &out->items[k]);
    }
    free(pos);
    return rc;
}

static void free_nodes(rctx *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->nodes[i].instance);
        free(x->nodes[i].mount);
        free(x->nodes[i].reason);
        free(x->nodes[i].deps);
        free(x->nodes[i].optional);
        free(x->nodes[i].note);
    }
    free(x->nodes);
    for (size_t i = 0; i < x->n_pkgs; i++) {
        free(x->pkgs[i].cand);
        free(x->pkgs[i].in);
        free(x->pkgs[i].opt_in);
        free(x->pkgs[i].nodes);
    }
    free(x->pkgs);
    free(x->slot);
    free(x->level);
    free(x->conflict);
    for (size_t i = 0; i < x->n_caps; i++) {
        free(x->caps[i].all);
        free(x->caps[i].prov);
    }
    free(x->caps);
    for (size_t i = 0; i < x->n_explained; i++)
        free(x->explained[i]);
    free(x->explained);
    for (size_t i = 0; i < x->n_notes; i++)
        free(x->notes[i]);
    free(x->notes);
}

static int resolve(rctx *x, ph_plan *out)
{
    size_t *order = NULL;
    int rc = choose_versions(x);
    if (!rc)
        rc = note_choices(x);
    if (!rc)
        rc = build_nodes(x);
    if (!rc)
        rc = take_providers(x);
    for (size_t i = 0; i < x->n && !rc; i++)
        rc = check_node(x, i);
    for (size_t i = 0; i < x->n && !rc; i++) {
        const ph_manifest *m = x->nodes[i].m;
        if (m)
            rc = add_edges(x, i, m->requires, m->n_requires, false);
        if (m && !rc)
            rc = add_edges(x, i, m->optional, m->n_optional, true);
    }
    if (!rc)
        rc = drop_optional_cycles(x);
    if (!rc)
        rc = mark_cycles(x);
    if (!rc && !(order = calloc(x->n ? x->n : 1, sizeof *order)))
        rc = NOMEM();
    if (!rc)
        rc = order_nodes(x, order);
    if (!rc)
        rc = propagate(x, order);
    if (!rc)
        rc = emit(x, order, out);
    for (size_t i = 0; i < x->n && !rc; i++)
        rc = explain_disagreements(x, &x->nodes[i]);
    /* Problems of building nodes come first, then those of items in load order. */
    out->problems = x->problems;
    out->n_problems = x->n_problems;
    x->problems = NULL;
    out->notes = x->notes;
    out->n_notes = x->n_notes;
    x->notes = NULL;
    x->n_notes = 0;
    free(order);
    return rc;
}

int ph_resolve(const ph_config *cfg, const ph_manifest_set *set, ph_plan *out)
{
    static const ph_manifest_set empty;
    memset(out, 0, sizeof *out);
    rctx x = {.cfg = cfg, .set = set ? set : &empty};
    int rc = resolve(&x, out);
    free_nodes(&x);
    if (rc)
        ph_plan_free(out);
    return rc;
}

void ph_plan_free(ph_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->items && i < p->n; i++) {
        ph_plan_item *it = &p->items[i];
        free(it->instance);
        free(it->mount);
        free(it->reason);
        free(it->deps);
        free(it->note);
        free_kvs(it->params, it->n_params);
    }
    free(p->items);
    for (size_t i = 0; i < p->n_notes; i++)
        free(p->notes[i]);
    free(p->notes);
    for (size_t i = 0; i < p->n_problems; i++)
        free(p->problems[i]);
    free(p->problems);
    memset(p, 0, sizeof *p);
}

long ph_plan_find(const ph_plan *p, const char *instance)
{
    for (size_t i = 0; p && instance && i < p->n; i++)
        if (p->items[i].instance && strcmp(p->items[i].instance, instance) == 0)
            return (long)i;
    return -1;
}
