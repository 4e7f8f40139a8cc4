/*
** sched.c: the task state machine (waiting, ready, fetching, processing,
** memory, released, erred) with its policies: depth-first priorities,
** placement by input bytes, release as soon as nothing waits, stealing when
** an executor runs dry. No threads, no I/O, no Lua: see sched.h.
*/
#include <stdlib.h>
#include <string.h>

#include "sched.h"

struct unit {
  uint8_t state;       /* enum lask_ustate */
  uint8_t running;     /* handed out and not reported yet: counted in
                       ** 'processing' whatever the state says (a running
                       ** unit may be marked erred by a failed input) */
  uint8_t published;   /* the value is in the shared store */
  uint8_t publishing;  /* a publish request is queued or served */
  int32_t exec;        /* placed on, running on, or holding the value */
  uint32_t nwaiting;   /* inputs not yet in memory (with repeats) */
  uint32_t nfetch;     /* remote inputs not yet published (with repeats) */
  uint32_t nconsumers; /* consumers not finished (+1 if an output) */
  uint64_t nbytes;     /* size of the value, as reported */
};

/* A growable array of units used as a min-heap by priority. */
struct heap {
  uint32_t *a;
  uint32_t n, cap;
};

/* A growable FIFO of actions. */
struct fifo {
  struct lask_action *a;
  uint32_t head, n, cap;
};

struct exec {
  struct heap ready;
  struct fifo todo; /* publish requests and releases */
  uint64_t tally;   /* place(): input bytes held here (0 between calls) */
};

struct lask_sched {
  const struct lask_plan *p;
  int nexec;
  struct unit *u;
  struct exec *x;
  uint32_t outputs_left; /* outputs not yet published */
  uint32_t processing;   /* units handed out and not yet reported */
  int failed, cancelled;
  uint32_t first_error;
  int next_exec;         /* round robin for units without inputs */
  int oom;               /* a queue could not grow: fail loudly */
};

/* ----------------------------------------------------------------- heaps */

static int before(const struct lask_sched *s, uint32_t a, uint32_t b) {
  uint32_t pa = s->p->priority[a], pb = s->p->priority[b];
  return pa < pb || (pa == pb && a < b);
}

static void heap_push(struct lask_sched *s, struct heap *h, uint32_t u) {
  if (h->n == h->cap) {
    uint32_t cap = h->cap ? h->cap * 2 : 64;
    uint32_t *a = realloc(h->a, cap * sizeof *a);
    if (a == NULL) {
      s->oom = 1;
      return;
    }
    h->a = a;
    h->cap = cap;
  }
  uint32_t i = h->n++;
  while (i > 0 && before(s, u, h->a[(i - 1) / 2])) {
    h->a[i] = h->a[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h->a[i] = u;
}

static uint32_t heap_pop(const struct lask_sched *s, struct heap *h) {
  uint32_t top = h->a[0], last = h->a[--h->n], i = 0;
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= h->n) break;
    if (c + 1 < h->n && before(s, h->a[c + 1], h->a[c])) c++;
    if (!before(s, h->a[c], last)) break;
    h->a[i] = h->a[c];
    i = c;
  }
  if (h->n > 0) h->a[i] = last;
  return top;
}

static void fifo_push(struct lask_sched *s, struct fifo *f, uint32_t kind,
                      uint32_t u) {
  if (f->n == f->cap) {
    uint32_t cap = f->cap ? f->cap * 2 : 16;
    struct lask_action *a = malloc(cap * sizeof *a);
    if (a == NULL) {
      s->oom = 1;
      return;
    }
    for (uint32_t i = 0; i < f->n; i++) a[i] = f->a[(f->head + i) % f->cap];
    free(f->a);
    f->a = a;
    f->head = 0;
    f->cap = cap;
  }
  struct lask_action *slot = &f->a[(f->head + f->n++) % f->cap];
  slot->kind = kind;
  slot->unit = u;
}

/* ------------------------------------------------------------ placement */

/* Queues a publish request for input 'in' on its holder, unless the value
** is already published or on its way. */
static void request_publish(struct lask_sched *s, uint32_t in) {
  struct unit *iu = &s->u[in];
  if (iu->published || iu->publishing) return;
  iu->publishing = 1;
  fifo_push(s, &s->x[iu->exec].todo, LASK_A_PUBLISH, in);
}

/* Puts unit 'c' on executor 'e': ready at once when every input lives
** there or is published, fetching otherwise. */
static void place_on(struct lask_sched *s, uint32_t c, int e) {
  const struct lask_plan *p = s->p;
  struct unit *cu = &s->u[c];
  cu->exec = e;
  cu->nfetch = 0;
  for (uint32_t i = p->in_off[c]; i < p->in_off[c + 1]; i++) {
    uint32_t in = p->inputs[i];
    if (s->u[in].exec != e && !s->u[in].published) {
      cu->nfetch++;
      request_publish(s, in);
    }
  }
  if (cu->nfetch == 0) {
    cu->state = LASK_U_READY;
    heap_push(s, &s->x[e].ready, c);
  } else {
    cu->state = LASK_U_FETCHING;
  }
}

/* Chooses where a ready unit runs: where most of its input bytes are, or,
** with no inputs, on the next executor in turn. */
static void place(struct lask_sched *s, uint32_t c) {
  const struct lask_plan *p = s->p;
  if (p->in_off[c] == p->in_off[c + 1]) {
    int e = s->next_exec;
    s->next_exec = (e + 1) % s->nexec;
    place_on(s, c, e);
    return;
  }
  /* The executor holding most input bytes; on a tie the one that holds the
  ** earliest input. One pass to tally, one to choose, one to clear: linear
  ** in the inputs (a gather of a shuffle has one per partition). */
  uint32_t lo = p->in_off[c], hi = p->in_off[c + 1];
  int best = s->u[p->inputs[lo]].exec;
  uint64_t best_bytes = 0;
  for (uint32_t i = lo; i < hi; i++) {
    const struct unit *in = &s->u[p->inputs[i]];
    if (in->exec >= 0 && in->exec < s->nexec)
      s->x[in->exec].tally += in->nbytes + 1;
  }
  for (uint32_t i = lo; i < hi; i++) {
    int e = s->u[p->inputs[i]].exec;
    if (e >= 0 && e < s->nexec && s->x[e].tally > best_bytes) {
      best = e;
      best_bytes = s->x[e].tally;
    }
  }
  for (uint32_t i = lo; i < hi; i++) {
    int e = s->u[p->inputs[i]].exec;
    if (e >= 0 && e < s->nexec) s->x[e].tally = 0;
  }
  place_on(s, c, best);
}

struct ranked {
  uint32_t priority, unit;
};

static int by_priority(const void *a, const void *b) {
  const struct ranked *x = a, *y = b;
  return (x->priority > y->priority) - (x->priority < y->priority);
}

/* Places the units without inputs in contiguous blocks of priority order
** (executor e gets the e-th slice), so that neighbours in the depth-first
** order, which usually feed the same consumer, share an executor: the
** consumer then needs no transfer and runs before the next roots start. */
static void place_roots(struct lask_sched *s) {
  const struct lask_plan *p = s->p;
  uint32_t n = 0;
  for (uint32_t u = 0; u < p->nunits; u++) n += s->u[u].nwaiting == 0;
  struct ranked *roots = malloc((n ? n : 1) * sizeof *roots);
  if (roots == NULL) { /* fall back to round robin */
    for (uint32_t u = 0; u < p->nunits; u++) {
      if (s->u[u].nwaiting == 0) place(s, u);
    }
    return;
  }
  uint32_t k = 0;
  for (uint32_t u = 0; u < p->nunits; u++) {
    if (s->u[u].nwaiting == 0) {
      roots[k].priority = p->priority[u];
      roots[k++].unit = u;
    }
  }
  qsort(roots, n, sizeof *roots, by_priority);
  for (uint32_t i = 0; i < n; i++) {
    place_on(s, roots[i].unit, (int)((uint64_t)i * (uint64_t)s->nexec / n));
  }
  free(roots);
}

/* ------------------------------------------------------------------ API */

int lask__sched_new(const struct lask_plan *p, int nexec,
                    struct lask_sched **out) {
  if (nexec < 1) return LASK_EINVAL;
  struct lask_sched *s = calloc(1, sizeof *s);
  if (s == NULL) return LASK_ENOMEM;
  s->p = p;
  s->nexec = nexec;
  s->u = calloc(p->nunits ? p->nunits : 1, sizeof *s->u);
  s->x = calloc((size_t)nexec, sizeof *s->x);
  if (s->u == NULL || s->x == NULL) {
    lask__sched_free(s);
    return LASK_ENOMEM;
  }
  for (uint32_t u = 0; u < p->nunits; u++) {
    s->u[u].state = LASK_U_WAITING;
    s->u[u].exec = -1;
    s->u[u].nwaiting = p->in_off[u + 1] - p->in_off[u];
    s->u[u].nconsumers = p->out_off[u + 1] - p->out_off[u] + p->is_output[u];
  }
  /* Outputs may repeat: count each unit once. */
  for (uint32_t u = 0; u < p->nunits; u++) s->outputs_left += p->is_output[u];
  place_roots(s);
  if (s->oom) {
    lask__sched_free(s);
    return LASK_ENOMEM;
  }
  *out = s;
  return 0;
}

void lask__sched_free(struct lask_sched *s) {
  if (s == NULL) return;
  for (int e = 0; s->x && e < s->nexec; e++) {
    free(s->x[e].ready.a);
    free(s->x[e].todo.a);
  }
  free(s->x);
  free(s->u);
  free(s);
}

/* Takes a unit from the fullest other heap for idle executor 'e'. */
static int steal(struct lask_sched *s, int e, uint32_t *u) {
  int victim = -1;
  uint32_t most = 0;
  for (int v = 0; v < s->nexec; v++) {
    if (v != e && s->x[v].ready.n > most) {
      most = s->x[v].ready.n;
      victim = v;
    }
  }
  if (victim < 0) return 0;
  uint32_t c = heap_pop(s, &s->x[victim].ready);
  place_on(s, c, e);
  if (s->u[c].state != LASK_U_READY) return 0; /* fetching its inputs */
  heap_pop(s, &s->x[e].ready); /* place_on pushed it: take it back */
  *u = c;
  return 1;
}

int lask__sched_next(struct lask_sched *s, int e, struct lask_action *acts,
                     int max) {
  int n = 0;
  struct fifo *f = &s->x[e].todo;
  while (n < max && f->n > 0) {
    acts[n++] = f->a[f->head];
    f->head = (f->head + 1) % f->cap;
    f->n--;
  }
  while (n < max && !s->failed && !s->cancelled) {
    uint32_t u;
    if (s->x[e].ready.n > 0) {
      u = heap_pop(s, &s->x[e].ready);
    } else if (n > 0 || !steal(s, e, &u)) {
      break; /* steal only when there is nothing else to do */
    }
    s->u[u].state = LASK_U_PROCESSING;
    s->u[u].exec = e;
    s->u[u].running = 1;
    s->processing++;
    acts[n].kind = LASK_A_RUN;
    acts[n].unit = u;
    n++;
  }
  return n;
}

/* One consumer of 'in' finished: release it once nothing needs it. */
static void consumed(struct lask_sched *s, uint32_t in) {
  struct unit *iu = &s->u[in];
  if (--iu->nconsumers == 0 && iu->state == LASK_U_MEMORY) {
    iu->state = LASK_U_RELEASED;
    fifo_push(s, &s->x[iu->exec].todo, LASK_A_RELEASE, in);
  }
}

void lask__sched_finished(struct lask_sched *s, int e, uint32_t u,
                          uint64_t nbytes) {
  const struct lask_plan *p = s->p;
  struct unit *uu = &s->u[u];
  if (uu->running) {
    uu->running = 0;
    s->processing--;
  }
  uu->state = LASK_U_MEMORY;
  uu->exec = e;
  uu->nbytes = nbytes;
  /* The holder publishes an output on its own, right after running it:
  ** no consumer placed elsewhere may ask it again. */
  if (p->is_output[u]) uu->publishing = 1;
  for (uint32_t i = p->out_off[u]; i < p->out_off[u + 1]; i++) {
    uint32_t c = p->consumers[i];
    if (--s->u[c].nwaiting == 0 && s->u[c].state == LASK_U_WAITING &&
        !s->failed && !s->cancelled) {
      place(s, c);
    }
  }
  for (uint32_t i = p->in_off[u]; i < p->in_off[u + 1]; i++) {
    consumed(s, p->inputs[i]);
  }
  if (uu->nconsumers == 0) { /* neither consumed nor asked for */
    uu->state = LASK_U_RELEASED;
    fifo_push(s, &s->x[e].todo, LASK_A_RELEASE, u);
  }
}

void lask__sched_published(struct lask_sched *s, uint32_t u) {
  const struct lask_plan *p = s->p;
  struct unit *uu = &s->u[u];
  if (uu->published) return;
  uu->published = 1;
  if (p->is_output[u]) s->outputs_left--;
  for (uint32_t i = p->out_off[u]; i < p->out_off[u + 1]; i++) {
    uint32_t c = p->consumers[i];
    struct unit *cu = &s->u[c];
    if (cu->state == LASK_U_FETCHING && cu->exec != uu->exec &&
        --cu->nfetch == 0) {
      cu->state = LASK_U_READY;
      heap_push(s, &s->x[cu->exec].ready, c);
    }
  }
}

void lask__sched_erred(struct lask_sched *s, uint32_t u) {
  const struct lask_plan *p = s->p;
  if (s->u[u].running) {
    s->u[u].running = 0;
    s->processing--;
  }
  if (!s->failed) s->first_error = u;
  s->failed = 1;
  s->u[u].state = LASK_U_ERRED;
  /* Dependents are erred too; a worklist on the heap keeps it iterative. */
  struct heap todo = {NULL, 0, 0};
  heap_push(s, &todo, u);
  while (todo.n > 0) {
    uint32_t v = todo.a[--todo.n];
    for (uint32_t i = p->out_off[v]; i < p->out_off[v + 1]; i++) {
      uint32_t c = p->consumers[i];
      if (s->u[c].state != LASK_U_ERRED) {
        s->u[c].state = LASK_U_ERRED;
        heap_push(s, &todo, c);
      }
    }
  }
  free(todo.a);
}

int lask__sched_has_work(const struct lask_sched *s, int e) {
  if (s->x[e].todo.n > 0) return 1;
  if (s->failed || s->cancelled) return 0;
  for (int v = 0; v < s->nexec; v++) {
    if (s->x[v].ready.n > 0) return 1; /* its own, or one to steal */
  }
  return 0;
}

void lask__sched_cancel(struct lask_sched *s) { s->cancelled = 1; }

int lask__sched_over(const struct lask_sched *s) {
  if (s->failed || s->cancelled || s->oom) return s->processing == 0;
  return s->outputs_left == 0;
}

int lask__sched_failed(const struct lask_sched *s, uint32_t *u) {
  if (s->failed && u != NULL) *u = s->first_error;
  return s->failed;
}

enum lask_ustate lask__sched_state(const struct lask_sched *s, uint32_t u) {
  return (enum lask_ustate)s->u[u].state;
}

int lask__sched_holder(const struct lask_sched *s, uint32_t u) {
  return s->u[u].exec;
}

uint32_t lask__sched_queued(const struct lask_sched *s, int e) {
  return s->x[e].ready.n;
}

uint32_t lask__sched_processing(const struct lask_sched *s) {
  return s->processing;
}
