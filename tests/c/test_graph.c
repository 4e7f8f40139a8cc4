/*
** test_graph.c: tests of runtime/graph.c: building graphs, culling,
** dependency checks, cycle detection, chain fusion and depth-first order.
*/
#include <stdio.h>
#include <string.h>

#include "graph.h"
#include "test.h"

/* Adds task "t<i>" with the given dependencies; returns its number. */
static uint32_t add(struct lask_graph *g, const uint32_t *deps, uint32_t n) {
  char key[16];
  int len = snprintf(key, sizeof key, "t%u", g->ntasks);
  uint32_t t = g->ntasks;
  if (lask__graph_add(g, key, (size_t)len, deps, n, key, (size_t)len) != 0) {
    return UINT32_MAX;
  }
  return t;
}

TEST(graph_stores_keys_deps_and_payloads) {
  struct lask_graph *g = lask__graph_new();
  ASSERT_TRUE(g != NULL);
  for (uint32_t i = 0; i < 1000; i++) {
    uint32_t dep = i - 1;
    ASSERT_EQ(i, add(g, &dep, i > 0 ? 1u : 0u));
  }
  size_t n;
  const char *k = lask__graph_key(g, 777, &n);
  ASSERT_EQ((size_t)4, n);
  ASSERT_MEMEQ("t777", k, 4);
  const uint8_t *p = lask__graph_payload(g, 0, &n);
  ASSERT_MEMEQ("t0", p, 2);
  ASSERT_EQ(776u, g->deps[g->dep_off[777]]);
  lask__graph_free(g);
}

TEST(plan_culls_what_outputs_do_not_need) {
  struct lask_graph *g = lask__graph_new();
  uint32_t a = add(g, NULL, 0), b = add(g, NULL, 0);
  uint32_t c = add(g, &a, 1);
  (void)b;
  struct lask_plan *p;
  uint32_t bad;
  ASSERT_EQ(0, lask__plan_new(g, &c, 1, LASK_PLAN_NOFUSE, &p, &bad));
  ASSERT_EQ(2u, p->nunits);
  ASSERT_EQ(UINT32_MAX, p->unit_of[b]);
  ASSERT_TRUE(p->unit_of[a] != UINT32_MAX);
  lask__plan_free(p);
  lask__graph_free(g);
}

TEST(plan_rejects_out_of_range_dependency) {
  struct lask_graph *g = lask__graph_new();
  uint32_t missing = 5;
  uint32_t t = add(g, &missing, 1);
  struct lask_plan *p = NULL;
  uint32_t bad = 0;
  ASSERT_EQ(LASK_EINVAL, lask__plan_new(g, &t, 1, 0, &p, &bad));
  ASSERT_EQ(t, bad);
  ASSERT_TRUE(p == NULL);
  uint32_t out = 9;
  ASSERT_EQ(LASK_EINVAL, lask__plan_new(g, &out, 1, 0, &p, &bad));
  lask__graph_free(g);
}

TEST(plan_detects_cycles) {
  struct lask_graph *g = lask__graph_new();
  uint32_t d1 = 2, d0 = 0, d2 = 1;
  add(g, &d1, 1);  /* t0 <- t2 */
  add(g, &d0, 1);  /* t1 <- t0 */
  add(g, &d2, 1);  /* t2 <- t1 */
  struct lask_plan *p = NULL;
  uint32_t bad = UINT32_MAX, out = 1;
  ASSERT_EQ(LASK_ECYCLE, lask__plan_new(g, &out, 1, 0, &p, &bad));
  ASSERT_TRUE(bad < 3);
  lask__graph_free(g);
}

TEST(plan_fuses_a_chain_into_one_unit) {
  struct lask_graph *g = lask__graph_new();
  uint32_t prev = add(g, NULL, 0);
  for (int i = 0; i < 9; i++) prev = add(g, &prev, 1);
  struct lask_plan *p;
  uint32_t bad;
  ASSERT_EQ(0, lask__plan_new(g, &prev, 1, 0, &p, &bad));
  ASSERT_EQ(1u, p->nunits);
  ASSERT_EQ(10u, p->mem_off[1] - p->mem_off[0]);
  for (uint32_t i = 0; i < 10; i++) ASSERT_EQ(i, p->members[i]);
  ASSERT_EQ(0u, p->outputs[0]);
  lask__plan_free(p);
  ASSERT_EQ(0, lask__plan_new(g, &prev, 1, LASK_PLAN_NOFUSE, &p, &bad));
  ASSERT_EQ(10u, p->nunits);
  lask__plan_free(p);
  lask__graph_free(g);
}

TEST(plan_does_not_fuse_across_outputs_or_fan_out) {
  struct lask_graph *g = lask__graph_new();
  uint32_t a = add(g, NULL, 0);
  uint32_t b = add(g, &a, 1);      /* a feeds b and c: no fusion of a */
  uint32_t c = add(g, &a, 1);
  uint32_t bc[2] = {b, c};
  uint32_t d = add(g, bc, 2);      /* two inputs: d is not fused */
  uint32_t e = add(g, &d, 1);      /* d -> e fuses... */
  uint32_t outs[2] = {e, d};       /* ...unless d is an output */
  struct lask_plan *p;
  uint32_t bad;
  ASSERT_EQ(0, lask__plan_new(g, outs, 1, 0, &p, &bad));
  ASSERT_EQ(4u, p->nunits);        /* a, b, c, d+e */
  ASSERT_EQ(p->unit_of[d], p->unit_of[e]);
  lask__plan_free(p);
  ASSERT_EQ(0, lask__plan_new(g, outs, 2, 0, &p, &bad));
  ASSERT_EQ(5u, p->nunits);
  ASSERT_TRUE(p->unit_of[d] != p->unit_of[e]);
  ASSERT_EQ(p->unit_of[d], p->outputs[1]);
  lask__plan_free(p);
  lask__graph_free(g);
}

TEST(plan_orders_depth_first) {
  /* Two independent branches a1 <- a2 and b1 <- b2 feeding a sum: a
  ** depth-first order finishes one branch before starting the other. */
  struct lask_graph *g = lask__graph_new();
  uint32_t a1 = add(g, NULL, 0), b1 = add(g, NULL, 0);
  uint32_t a2 = add(g, &a1, 1), b2 = add(g, &b1, 1);
  uint32_t ab[2] = {a2, b2};
  uint32_t s = add(g, ab, 2);
  struct lask_plan *p;
  uint32_t bad;
  ASSERT_EQ(0, lask__plan_new(g, &s, 1, LASK_PLAN_NOFUSE, &p, &bad));
  uint32_t pa1 = p->priority[p->unit_of[a1]], pa2 = p->priority[p->unit_of[a2]];
  uint32_t pb1 = p->priority[p->unit_of[b1]];
  ASSERT_TRUE(pa1 < pa2);
  ASSERT_TRUE(pa2 < pb1);
  ASSERT_TRUE(p->priority[p->unit_of[s]] > pb1);
  lask__plan_free(p);
  lask__graph_free(g);
}

TEST(plan_handles_a_million_long_chain_without_recursion) {
  struct lask_graph *g = lask__graph_new();
  uint32_t prev = add(g, NULL, 0);
  for (int i = 1; i < 1000000; i++) prev = add(g, &prev, 1);
  struct lask_plan *p;
  uint32_t bad;
  ASSERT_EQ(0, lask__plan_new(g, &prev, 1, LASK_PLAN_NOFUSE, &p, &bad));
  ASSERT_EQ(1000000u, p->nunits);
  ASSERT_EQ(p->unit_of[999999], p->outputs[0]);
  lask__plan_free(p);
  lask__graph_free(g);
}

TEST(plan_keeps_repeated_inputs_as_slots) {
  struct lask_graph *g = lask__graph_new();
  uint32_t a = add(g, NULL, 0);
  uint32_t aa[2] = {a, a};
  uint32_t b = add(g, aa, 2);
  struct lask_plan *p;
  uint32_t bad;
  ASSERT_EQ(0, lask__plan_new(g, &b, 1, 0, &p, &bad));
  uint32_t ub = p->unit_of[b], ua = p->unit_of[a];
  ASSERT_EQ(2u, p->in_off[ub + 1] - p->in_off[ub]);
  ASSERT_EQ(2u, p->out_off[ua + 1] - p->out_off[ua]);
  lask__plan_free(p);
  lask__graph_free(g);
}
