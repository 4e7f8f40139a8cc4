/*
** graph.c: building task graphs and planning them: culling, dependency
** checks, depth-first ordering and fusion of linear chains. Plain data, no
** threads, no Lua; every walk is iterative, so a chain of a million tasks
** needs no deep C stack.
*/
#include <stdlib.h>
#include <string.h>

#include "graph.h"

#define NONE UINT32_MAX

struct lask_graph *lask__graph_new(void) {
  struct lask_graph *g = calloc(1, sizeof *g);
  if (g == NULL) return NULL;
  g->dep_off = calloc(1, sizeof *g->dep_off);
  g->key_off = calloc(1, sizeof *g->key_off);
  g->pay_off = calloc(1, sizeof *g->pay_off);
  if (!g->dep_off || !g->key_off || !g->pay_off) {
    lask__graph_free(g);
    return NULL;
  }
  return g;
}

void lask__graph_free(struct lask_graph *g) {
  if (g == NULL) return;
  free(g->dep_off);
  free(g->deps);
  free(g->key_off);
  free(g->keys);
  free(g->pay_off);
  free(g->pay);
  free(g);
}

/* Grows '*p' (elements of 'size' bytes, '*cap' allocated) to hold 'need'. */
static int grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : 16;
  while (n < need) {
    if (n > SIZE_MAX / 2 / size) return LASK_ETOOBIG;
    n *= 2;
  }
  void *q = realloc(*p, n * size);
  if (q == NULL) return LASK_ENOMEM;
  *p = q;
  *cap = n;
  return 0;
}

/* Grows the three per-task offset arrays to hold task 'n'. */
static int grow_tasks(struct lask_graph *g, uint32_t n) {
  if (n < g->cap) return 0;
  if (n == NONE - 1) return LASK_ETOOBIG;
  size_t cap = g->cap ? (size_t)g->cap * 2 : 64;
  uint32_t *d = realloc(g->dep_off, (cap + 1) * sizeof *d);
  if (d == NULL) return LASK_ENOMEM;
  g->dep_off = d;
  size_t *k = realloc(g->key_off, (cap + 1) * sizeof *k);
  if (k == NULL) return LASK_ENOMEM;
  g->key_off = k;
  size_t *p = realloc(g->pay_off, (cap + 1) * sizeof *p);
  if (p == NULL) return LASK_ENOMEM;
  g->pay_off = p;
  g->cap = (uint32_t)(cap > NONE - 1 ? NONE - 1 : cap);
  return 0;
}

int lask__graph_add(struct lask_graph *g, const char *key, size_t keylen,
                    const uint32_t *deps, uint32_t ndeps, const void *payload,
                    size_t paylen) {
  int rc = grow_tasks(g, g->ntasks + 1);
  if (rc == 0 && g->ndeps + ndeps > UINT32_MAX) rc = LASK_ETOOBIG;
  if (rc == 0) {
    rc = grow((void **)&g->deps, &g->depcap, g->ndeps + ndeps, sizeof *deps);
  }
  if (rc == 0) rc = grow((void **)&g->keys, &g->keycap, g->keylen + keylen, 1);
  if (rc == 0) rc = grow((void **)&g->pay, &g->paycap, g->paylen + paylen, 1);
  if (rc != 0) return rc;
  if (ndeps > 0) memcpy(g->deps + g->ndeps, deps, ndeps * sizeof *deps);
  if (keylen > 0) memcpy(g->keys + g->keylen, key, keylen);
  if (paylen > 0) memcpy(g->pay + g->paylen, payload, paylen);
  g->ndeps += ndeps;
  g->keylen += keylen;
  g->paylen += paylen;
  uint32_t t = g->ntasks++;
  g->dep_off[t + 1] = (uint32_t)g->ndeps;
  g->key_off[t + 1] = g->keylen;
  g->pay_off[t + 1] = g->paylen;
  return 0;
}

/* -------------------------------------------------------------------------
** Planning
** ---------------------------------------------------------------------- */

/* Scratch arrays for planning, one slot per graph task. */
struct work {
  const struct lask_graph *g;
  uint32_t *order;    /* post-order number, NONE if not needed */
  uint8_t *color;     /* 0 unseen, 1 on the DFS stack, 2 done */
  uint32_t *stack;    /* DFS stack: task */
  uint32_t *pos;      /* DFS stack: next dependency to visit */
  uint32_t *ndependents; /* needed dependents (with repeats) */
  uint32_t *next;     /* fused successor, or NONE */
  uint8_t *is_output;
};

static void work_free(struct work *w) {
  free(w->order);
  free(w->color);
  free(w->stack);
  free(w->pos);
  free(w->ndependents);
  free(w->next);
  free(w->is_output);
}

static int work_init(struct work *w, const struct lask_graph *g) {
  size_t n = g->ntasks ? g->ntasks : 1;
  memset(w, 0, sizeof *w);
  w->g = g;
  w->order = malloc(n * sizeof *w->order);
  w->color = calloc(n, 1);
  w->stack = malloc(n * sizeof *w->stack);
  w->pos = malloc(n * sizeof *w->pos);
  w->ndependents = calloc(n, sizeof *w->ndependents);
  w->next = malloc(n * sizeof *w->next);
  w->is_output = calloc(n, 1);
  if (!w->order || !w->color || !w->stack || !w->pos || !w->ndependents ||
      !w->next || !w->is_output) {
    work_free(w);
    return LASK_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) w->order[i] = w->next[i] = NONE;
  return 0;
}

/* Depth-first walk from 'root' numbering tasks in post-order (a task after
** everything it depends on). Returns 0, or LASK_ECYCLE with *bad set. */
static int visit(struct work *w, uint32_t root, uint32_t *counter,
                 uint32_t *bad) {
  const struct lask_graph *g = w->g;
  if (w->color[root] != 0) return 0;
  uint32_t top = 0;
  w->stack[0] = root;
  w->pos[0] = g->dep_off[root];
  w->color[root] = 1;
  for (;;) {
    uint32_t t = w->stack[top];
    if (w->pos[top] < g->dep_off[t + 1]) {
      uint32_t d = g->deps[w->pos[top]++];
      if (w->color[d] == 1) {
        *bad = d;
        return LASK_ECYCLE;
      }
      if (w->color[d] == 0) {
        w->color[d] = 1;
        top++;
        w->stack[top] = d;
        w->pos[top] = g->dep_off[d];
      }
      continue;
    }
    w->color[t] = 2;
    w->order[t] = (*counter)++;
    if (top == 0) return 0;
    top--;
  }
}

/* Links each fusable task to its successor: task t fuses into d when d's
** only dependency is t, d is t's only needed dependent, and t is not an
** output (its value must then stay addressable). */
static void find_chains(struct work *w) {
  const struct lask_graph *g = w->g;
  for (uint32_t t = 0; t < g->ntasks; t++) {
    if (w->order[t] == NONE) continue;
    for (uint32_t i = g->dep_off[t]; i < g->dep_off[t + 1]; i++) {
      w->ndependents[g->deps[i]]++;
    }
  }
  for (uint32_t d = 0; d < g->ntasks; d++) {
    if (w->order[d] == NONE || g->dep_off[d + 1] - g->dep_off[d] != 1) {
      continue;
    }
    uint32_t t = g->deps[g->dep_off[d]];
    if (w->ndependents[t] == 1 && !w->is_output[t]) w->next[t] = d;
  }
}

static void plan_alloc(struct lask_plan *p, uint32_t ntasks, size_t nmem,
                       size_t nedges, uint32_t noutputs) {
  size_t n = (size_t)p->nunits + 1;
  p->mem_off = malloc(n * sizeof *p->mem_off);
  p->members = malloc((nmem ? nmem : 1) * sizeof *p->members);
  p->in_off = calloc(n, sizeof *p->in_off);
  p->inputs = malloc((nedges ? nedges : 1) * sizeof *p->inputs);
  p->out_off = calloc(n, sizeof *p->out_off);
  p->consumers = malloc((nedges ? nedges : 1) * sizeof *p->consumers);
  p->priority = malloc(n * sizeof *p->priority);
  p->is_output = calloc(n, 1);
  p->outputs = malloc((noutputs ? noutputs : 1) * sizeof *p->outputs);
  p->unit_of = malloc((ntasks ? ntasks : 1) * sizeof *p->unit_of);
}

static int plan_ok(const struct lask_plan *p) {
  return p->mem_off && p->members && p->in_off && p->inputs && p->out_off &&
         p->consumers && p->priority && p->is_output && p->outputs &&
         p->unit_of;
}

/* Fills members, priorities and unit_of: one unit per chain head. */
static void make_units(struct lask_plan *p, struct work *w, uint8_t *has_prev) {
  const struct lask_graph *g = w->g;
  uint32_t u = 0, m = 0;
  for (uint32_t t = 0; t < g->ntasks; t++) p->unit_of[t] = NONE;
  for (uint32_t t = 0; t < g->ntasks; t++) {
    if (w->order[t] == NONE || has_prev[t]) continue;
    p->mem_off[u] = m;
    p->priority[u] = w->order[t];
    for (uint32_t c = t; c != NONE; c = w->next[c]) {
      p->members[m++] = c;
      p->unit_of[c] = u;
    }
    u++;
  }
  p->mem_off[u] = m;
}

/* Fills the input and consumer lists of every unit (CSR, with repeats).
** 'fill' is zeroed scratch with a slot per unit. */
static void make_edges(struct lask_plan *p, uint32_t *fill) {
  const struct lask_graph *g = p->g;
  for (uint32_t u = 0; u < p->nunits; u++) {
    uint32_t head = p->members[p->mem_off[u]];
    uint32_t nin = g->dep_off[head + 1] - g->dep_off[head];
    p->in_off[u + 1] = p->in_off[u] + nin;
    for (uint32_t i = 0; i < nin; i++) {
      uint32_t src = p->unit_of[g->deps[g->dep_off[head] + i]];
      p->inputs[p->in_off[u] + i] = src;
      p->out_off[src + 1]++;
    }
  }
  for (uint32_t u = 0; u < p->nunits; u++) p->out_off[u + 1] += p->out_off[u];
  for (uint32_t u = 0; u < p->nunits; u++) {
    for (uint32_t i = p->in_off[u]; i < p->in_off[u + 1]; i++) {
      uint32_t src = p->inputs[i];
      p->consumers[p->out_off[src] + fill[src]++] = u;
    }
  }
}

static int check_deps(const struct lask_graph *g, uint32_t *bad) {
  for (uint32_t t = 0; t < g->ntasks; t++) {
    for (uint32_t i = g->dep_off[t]; i < g->dep_off[t + 1]; i++) {
      if (g->deps[i] >= g->ntasks) {
        *bad = t;
        return LASK_EINVAL;
      }
    }
  }
  return 0;
}

int lask__plan_new(const struct lask_graph *g, const uint32_t *outputs,
                   uint32_t noutputs, int opts, struct lask_plan **out,
                   uint32_t *bad) {
  struct work w;
  int rc = check_deps(g, bad);
  for (uint32_t i = 0; rc == 0 && i < noutputs; i++) {
    if (outputs[i] >= g->ntasks) {
      rc = LASK_EINVAL;
      *bad = outputs[i];
    }
  }
  if (rc != 0) return rc;
  if ((rc = work_init(&w, g)) != 0) return rc;
  uint32_t counter = 0;
  for (uint32_t i = 0; i < noutputs && rc == 0; i++) {
    w.is_output[outputs[i]] = 1;
    rc = visit(&w, outputs[i], &counter, bad);
  }
  if (rc == 0 && !(opts & LASK_PLAN_NOFUSE)) find_chains(&w);
  uint8_t *has_prev = calloc(g->ntasks ? g->ntasks : 1, 1);
  struct lask_plan *p = calloc(1, sizeof *p);
  if (rc == 0 && (has_prev == NULL || p == NULL)) rc = LASK_ENOMEM;
  if (rc == 0) {
    size_t nedges = 0;
    for (uint32_t t = 0; t < g->ntasks; t++) {
      if (w.next[t] != NONE) has_prev[w.next[t]] = 1;
    }
    for (uint32_t t = 0; t < g->ntasks; t++) {
      if (w.order[t] != NONE && !has_prev[t]) {
        p->nunits++;
        nedges += g->dep_off[t + 1] - g->dep_off[t];
      }
    }
    p->g = g;
    p->noutputs = noutputs;
    plan_alloc(p, g->ntasks, counter, nedges, noutputs);
    if (!plan_ok(p)) rc = LASK_ENOMEM;
  }
  if (rc == 0) {
    make_units(p, &w, has_prev);
    memset(w.pos, 0, (g->ntasks ? g->ntasks : 1) * sizeof *w.pos);
    make_edges(p, w.pos);
    for (uint32_t i = 0; i < noutputs; i++) {
      p->outputs[i] = p->unit_of[outputs[i]];
      p->is_output[p->outputs[i]] = 1;
    }
    *out = p;
    p = NULL;
  }
  lask__plan_free(p);
  free(has_prev);
  work_free(&w);
  return rc;
}

void lask__plan_free(struct lask_plan *p) {
  if (p == NULL) return;
  free(p->mem_off);
  free(p->members);
  free(p->in_off);
  free(p->inputs);
  free(p->out_off);
  free(p->consumers);
  free(p->priority);
  free(p->is_output);
  free(p->outputs);
  free(p->unit_of);
  free(p);
}
