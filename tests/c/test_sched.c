/*
** test_sched.c: tests of runtime/sched.c. Besides small cases, a simulator
** drives the state machine over random graphs with several executors,
** executing its actions and checking the invariants the engine relies on:
** every needed unit runs exactly once, only when its inputs are finished
** and reachable (held by the executor or published), values are released
** only after their last consumer, outputs end published, nothing hangs.
*/
#include <stdlib.h>
#include <string.h>

#include "sched.h"
#include "test.h"

static uint32_t rng_state = 12345;
static uint32_t rnd(uint32_t n) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state % n;
}

/* A random DAG of 'n' tasks, each with up to 3 earlier dependencies. */
static struct lask_graph *random_graph(uint32_t n) {
  struct lask_graph *g = lask__graph_new();
  for (uint32_t t = 0; g != NULL && t < n; t++) {
    uint32_t deps[3], nd = t == 0 ? 0 : rnd(4);
    for (uint32_t i = 0; i < nd; i++) deps[i] = rnd(t);
    if (lask__graph_add(g, "k", 1, deps, nd, "p", 1) != 0) return NULL;
  }
  return g;
}

struct sim {
  const struct lask_plan *p;
  struct lask_sched *s;
  int nexec;
  uint32_t *ran;
  uint8_t *finished, *published, *released, *erred;
  int *holder;
  uint32_t fail_unit; /* this unit raises, or UINT32_MAX */
  int bad;            /* an invariant broke */
};

/* May unit u run on executor e now? */
static int inputs_ok(struct sim *m, uint32_t u, int e) {
  const struct lask_plan *p = m->p;
  for (uint32_t i = p->in_off[u]; i < p->in_off[u + 1]; i++) {
    uint32_t in = p->inputs[i];
    if (!m->finished[in] || m->released[in]) return 0;
    if (m->holder[in] != e && !m->published[in]) return 0;
  }
  return 1;
}

/* Have all consumers of u finished (or erred)? */
static int consumers_done(struct sim *m, uint32_t u) {
  const struct lask_plan *p = m->p;
  for (uint32_t i = p->out_off[u]; i < p->out_off[u + 1]; i++) {
    uint32_t c = p->consumers[i];
    if (!m->finished[c] && !m->erred[c]) return 0;
  }
  return !p->is_output[u];
}

static void do_action(struct sim *m, int e, const struct lask_action *a) {
  uint32_t u = a->unit;
  if (a->kind == LASK_A_RUN) {
    if (!inputs_ok(m, u, e) || m->ran[u]++ != 0) m->bad = 1;
    if (u == m->fail_unit) {
      m->erred[u] = 1;
      lask__sched_erred(m->s, u);
      return;
    }
    m->finished[u] = 1;
    m->holder[u] = e;
    lask__sched_finished(m->s, e, u, rnd(1000));
    if (m->p->is_output[u]) {
      m->published[u] = 1;
      lask__sched_published(m->s, u);
    }
  } else if (a->kind == LASK_A_PUBLISH) {
    /* Once only: the engine must never replace bytes being decoded. */
    if (!m->finished[u] || m->holder[u] != e || m->released[u] ||
        m->published[u]) {
      m->bad = 1;
    }
    m->published[u] = 1;
    lask__sched_published(m->s, u);
  } else {
    if (!consumers_done(m, u) || m->released[u] || m->holder[u] != e) {
      m->bad = 1;
    }
    m->released[u] = 1;
  }
}

/* Runs the plan to the end; returns 0, or -1 if it stalled. */
static int simulate(struct sim *m) {
  struct lask_action acts[4];
  for (int idle_rounds = 0; !lask__sched_over(m->s);) {
    int any = 0;
    int first = (int)rnd((uint32_t)m->nexec); /* vary who goes first */
    for (int k = 0; k < m->nexec; k++) {
      int e = (first + k) % m->nexec;
      int n = lask__sched_next(m->s, e, acts, 1 + (int)rnd(4));
      for (int i = 0; i < n; i++) do_action(m, e, &acts[i]);
      any |= n > 0;
    }
    idle_rounds = any ? 0 : idle_rounds + 1;
    if (idle_rounds > 2) return -1;
  }
  return 0;
}

static void sim_init(struct sim *m, const struct lask_plan *p, int nexec) {
  memset(m, 0, sizeof *m);
  size_t n = p->nunits ? p->nunits : 1;
  m->p = p;
  m->nexec = nexec;
  m->ran = calloc(n, sizeof *m->ran);
  m->finished = calloc(n, 1);
  m->published = calloc(n, 1);
  m->released = calloc(n, 1);
  m->erred = calloc(n, 1);
  m->holder = calloc(n, sizeof *m->holder);
  m->fail_unit = UINT32_MAX;
}

static void sim_free(struct sim *m) {
  lask__sched_free(m->s);
  free(m->ran);
  free(m->finished);
  free(m->published);
  free(m->released);
  free(m->erred);
  free(m->holder);
}

TEST(sched_random_graphs_run_every_unit_once) {
  for (int round = 0; round < 300; round++) {
    uint32_t n = 1 + rnd(200);
    struct lask_graph *g = random_graph(n);
    ASSERT_TRUE(g != NULL);
    uint32_t outs[3] = {n - 1, rnd(n), rnd(n)};
    struct lask_plan *p;
    uint32_t bad;
    ASSERT_EQ(0, lask__plan_new(g, outs, 1 + rnd(3), rnd(2) ? 0 :
                                LASK_PLAN_NOFUSE, &p, &bad));
    struct sim m;
    sim_init(&m, p, 1 + (int)rnd(4));
    ASSERT_EQ(0, lask__sched_new(p, m.nexec, &m.s));
    ASSERT_EQ(0, simulate(&m));
    ASSERT_TRUE(!m.bad);
    for (uint32_t u = 0; u < p->nunits; u++) ASSERT_EQ(1u, m.ran[u]);
    for (uint32_t i = 0; i < p->noutputs; i++) {
      ASSERT_TRUE(m.published[p->outputs[i]]);
      ASSERT_TRUE(!m.released[p->outputs[i]]);
    }
    sim_free(&m);
    lask__plan_free(p);
    lask__graph_free(g);
  }
}

TEST(sched_errors_stop_dependents_and_end_the_run) {
  for (int round = 0; round < 200; round++) {
    uint32_t n = 2 + rnd(100);
    struct lask_graph *g = random_graph(n);
    uint32_t out = n - 1;
    struct lask_plan *p;
    uint32_t bad;
    ASSERT_EQ(0, lask__plan_new(g, &out, 1, LASK_PLAN_NOFUSE, &p, &bad));
    struct sim m;
    sim_init(&m, p, 2);
    m.fail_unit = rnd(p->nunits);
    ASSERT_EQ(0, lask__sched_new(p, 2, &m.s));
    ASSERT_EQ(0, simulate(&m));
    ASSERT_TRUE(!m.bad);
    uint32_t first;
    ASSERT_TRUE(lask__sched_failed(m.s, &first));
    ASSERT_EQ(m.fail_unit, first);
    ASSERT_EQ(0u, lask__sched_processing(m.s));
    /* Nothing that depends on the failed unit ran. */
    for (uint32_t u = 0; u < p->nunits; u++) {
      if (lask__sched_state(m.s, u) == LASK_U_ERRED && u != m.fail_unit) {
        ASSERT_EQ(0u, m.ran[u]);
      }
    }
    ASSERT_EQ(0u, m.ran[p->outputs[0]] - (p->outputs[0] == m.fail_unit));
    sim_free(&m);
    lask__plan_free(p);
    lask__graph_free(g);
  }
}

TEST(sched_diamond_runs_the_shared_task_once_in_place) {
  struct lask_graph *g = lask__graph_new();
  uint32_t a = 0, bc[2] = {1, 2};
  lask__graph_add(g, "a", 1, NULL, 0, "", 0);
  lask__graph_add(g, "b", 1, &a, 1, "", 0);
  lask__graph_add(g, "c", 1, &a, 1, "", 0);
  lask__graph_add(g, "d", 1, bc, 2, "", 0);
  uint32_t out = 3;
  struct lask_plan *p;
  uint32_t bad;
  ASSERT_EQ(0, lask__plan_new(g, &out, 1, 0, &p, &bad));
  struct sim m;
  sim_init(&m, p, 1);
  ASSERT_EQ(0, lask__sched_new(p, 1, &m.s));
  ASSERT_EQ(0, simulate(&m));
  ASSERT_TRUE(!m.bad);
  for (uint32_t u = 0; u < p->nunits; u++) ASSERT_EQ(1u, m.ran[u]);
  /* With one executor nothing is ever published but the output. */
  ASSERT_TRUE(!m.published[p->unit_of[0]]);
  ASSERT_TRUE(m.released[p->unit_of[0]]);
  sim_free(&m);
  lask__plan_free(p);
  lask__graph_free(g);
}

TEST(sched_spreads_independent_units_over_executors) {
  struct lask_graph *g = lask__graph_new();
  uint32_t outs[100];
  for (uint32_t i = 0; i < 100; i++) {
    lask__graph_add(g, "k", 1, NULL, 0, "", 0);
    outs[i] = i;
  }
  struct lask_plan *p;
  uint32_t bad;
  ASSERT_EQ(0, lask__plan_new(g, outs, 100, 0, &p, &bad));
  struct lask_sched *s;
  ASSERT_EQ(0, lask__sched_new(p, 4, &s));
  for (int e = 0; e < 4; e++) ASSERT_EQ(25u, lask__sched_queued(s, e));
  lask__sched_free(s);
  lask__plan_free(p);
  lask__graph_free(g);
}

TEST(sched_idle_executor_steals) {
  struct lask_graph *g = lask__graph_new();
  uint32_t outs[10];
  for (uint32_t i = 0; i < 10; i++) {
    lask__graph_add(g, "k", 1, NULL, 0, "", 0);
    outs[i] = i;
  }
  struct lask_plan *p;
  uint32_t bad;
  ASSERT_EQ(0, lask__plan_new(g, outs, 10, 0, &p, &bad));
  struct lask_sched *s;
  ASSERT_EQ(0, lask__sched_new(p, 2, &s));
  struct lask_action acts[16];
  ASSERT_EQ(5, lask__sched_next(s, 0, acts, 16)); /* its own five */
  ASSERT_EQ(1, lask__sched_next(s, 0, acts, 16)); /* then one stolen */
  ASSERT_EQ(4u, lask__sched_queued(s, 1));
  ASSERT_EQ(6u, lask__sched_processing(s));
  lask__sched_free(s);
  lask__plan_free(p);
  lask__graph_free(g);
}

TEST(sched_cancel_hands_out_no_more_runs) {
  struct lask_graph *g = lask__graph_new();
  uint32_t outs[4];
  for (uint32_t i = 0; i < 4; i++) {
    lask__graph_add(g, "k", 1, NULL, 0, "", 0);
    outs[i] = i;
  }
  struct lask_plan *p;
  uint32_t bad;
  ASSERT_EQ(0, lask__plan_new(g, outs, 4, 0, &p, &bad));
  struct lask_sched *s;
  ASSERT_EQ(0, lask__sched_new(p, 1, &s));
  struct lask_action a;
  ASSERT_EQ(1, lask__sched_next(s, 0, &a, 1));
  lask__sched_cancel(s);
  ASSERT_EQ(0, lask__sched_next(s, 0, &a, 1));
  ASSERT_EQ(0, lask__sched_over(s)); /* one unit is still running */
  lask__sched_finished(s, 0, a.unit, 0);
  ASSERT_EQ(1, lask__sched_over(s));
  lask__sched_free(s);
  lask__plan_free(p);
  lask__graph_free(g);
}

TEST(sched_running_unit_erred_by_a_failed_input_still_ends_the_run) {
  /* a -> c and b -> c: c runs... no: a feeds both b and c; b runs while a
  ** publish of a fails (a is erred after it finished), which marks b erred
  ** by propagation; b's own report must still end the run. */
  struct lask_graph *g = lask__graph_new();
  uint32_t a = 0;
  lask__graph_add(g, "a", 1, NULL, 0, "", 0);
  lask__graph_add(g, "b", 1, &a, 1, "", 0);
  lask__graph_add(g, "c", 1, &a, 1, "", 0);
  uint32_t outs[2] = {1, 2};
  struct lask_plan *p;
  uint32_t bad;
  ASSERT_EQ(0, lask__plan_new(g, outs, 2, LASK_PLAN_NOFUSE, &p, &bad));
  struct lask_sched *s;
  ASSERT_EQ(0, lask__sched_new(p, 1, &s));
  struct lask_action act[4];
  ASSERT_EQ(1, lask__sched_next(s, 0, act, 1));
  lask__sched_finished(s, 0, act[0].unit, 0); /* a */
  ASSERT_EQ(1, lask__sched_next(s, 0, act, 1)); /* b or c starts */
  uint32_t running = act[0].unit;
  lask__sched_erred(s, p->unit_of[0]);          /* a's publish failed */
  ASSERT_EQ((int)LASK_U_ERRED, (int)lask__sched_state(s, running));
  ASSERT_EQ(0, lask__sched_over(s));             /* it still runs */
  lask__sched_erred(s, running);                 /* and reports */
  ASSERT_EQ(0u, lask__sched_processing(s));
  ASSERT_EQ(1, lask__sched_over(s));
  lask__sched_free(s);
  lask__plan_free(p);
  lask__graph_free(g);
}
