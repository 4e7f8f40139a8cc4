/*
** graph.h: task graphs and their plans (internal).
**
** A graph is what the user described: tasks with keys, dependencies and
** opaque payloads. A plan is what will run: the tasks the outputs need,
** with linear chains fused into single units, each unit given a
** depth-first priority. Both are plain data, built and read by one thread
** at a time; neither knows of Lua, threads or I/O.
*/
#ifndef LASK_GRAPH_H
#define LASK_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "lask.h"

/* A graph under construction, then frozen. Every array is owned by it. */
struct lask_graph {
  uint32_t ntasks;
  uint32_t cap;       /* allocated task slots */
  uint32_t *dep_off;  /* deps of task i: deps[dep_off[i]..dep_off[i+1]) */
  uint32_t *deps;     /* task numbers */
  size_t ndeps, depcap;
  size_t *key_off;    /* key of task i: keys[key_off[i]..key_off[i+1]) */
  char *keys;
  size_t keylen, keycap;
  size_t *pay_off;    /* payload of task i, likewise */
  uint8_t *pay;
  size_t paylen, paycap;
};

/* Makes an empty graph. Returns NULL when out of memory. */
LASK_INTERNAL struct lask_graph *lask__graph_new(void);
LASK_INTERNAL void lask__graph_free(struct lask_graph *g);

/* Appends a task; its number is the graph's ntasks before the call. 'deps'
** may name tasks not added yet (checked by lask__plan_new). Copies every
** argument. Returns 0 or LASK_ENOMEM / LASK_ETOOBIG. */
LASK_INTERNAL int lask__graph_add(struct lask_graph *g, const char *key,
                                  size_t keylen, const uint32_t *deps,
                                  uint32_t ndeps, const void *payload,
                                  size_t paylen);

static inline const char *lask__graph_key(const struct lask_graph *g,
                                          uint32_t t, size_t *len) {
  *len = g->key_off[t + 1] - g->key_off[t];
  return g->keys + g->key_off[t];
}

static inline const uint8_t *lask__graph_payload(const struct lask_graph *g,
                                                 uint32_t t, size_t *len) {
  *len = g->pay_off[t + 1] - g->pay_off[t];
  return g->pay + g->pay_off[t];
}

/* A plan: units to run. Unit u runs tasks members[mem_off[u]..mem_off[u+1])
** in that order; the first member reads the unit's inputs, each later
** member reads the one before it (a fused chain). The unit's result is
** its last member's. */
struct lask_plan {
  const struct lask_graph *g; /* not owned: must outlive the plan */
  uint32_t nunits;
  uint32_t *mem_off, *members;
  uint32_t *in_off, *inputs;      /* units whose results unit u reads */
  uint32_t *out_off, *consumers;  /* units that read unit u's result */
  uint32_t *priority;             /* lower runs first (depth-first) */
  uint8_t *is_output;             /* asked for by the caller */
  uint32_t noutputs;
  uint32_t *outputs;              /* unit of each requested task, in order */
  uint32_t *unit_of;              /* graph task -> unit, or UINT32_MAX */
};

/* Plan options. */
#define LASK_PLAN_NOFUSE 0x01 /* one unit per task */

/* Makes the plan for computing tasks 'outputs[0..noutputs)' of 'g': culls
** what they do not need, checks dependencies (LASK_EINVAL for a number out
** of range, with *bad set to the task that names it; LASK_ECYCLE for a
** cycle, *bad on it), fuses chains unless LASK_PLAN_NOFUSE, and orders.
** On success *out owns a new plan. Thread: any, one at a time per graph. */
#define LASK_ECYCLE (-20)
LASK_INTERNAL int lask__plan_new(const struct lask_graph *g,
                                 const uint32_t *outputs, uint32_t noutputs,
                                 int opts, struct lask_plan **out,
                                 uint32_t *bad);
LASK_INTERNAL void lask__plan_free(struct lask_plan *p);

#endif
