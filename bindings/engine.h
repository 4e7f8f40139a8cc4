/*
** engine.h: the local threaded scheduler (see doc/ENGINE.md): a prepared
** graph ("job") built from Delayed values, and the pool of executor
** threads that runs it with the state machine of runtime/sched.c.
*/
#ifndef LASK_ENGINE_H
#define LASK_ENGINE_H

#include "codec.h"
#include "compat.h"
#include "graph.h"
#include "sched.h"

/* A graph ready to run: built on the client thread, then read-only while
** executors run it (the 'pub' slots excepted, see struct run in engine.c).
** Owned by a userdata (JOB_MT) so that a failure half-way frees it. */
struct job {
  struct lask_graph *g;
  struct lask_plan *plan;
  uint32_t nfuncs;
  struct lask_wbuf *funcs; /* encoded functions, shipped once per graph */
  uint32_t noutputs;
  uint32_t *outputs;       /* graph task of each requested output */
};

#define JOB_MT "lask.job"

/* Payload of a task: varint fid (0: a literal), varint nargs, then nargs
** body items (one item, the value, for a literal). */

/* lask.core.build_job(outputs, delayed_mt, nofuse) -> job userdata:
** walks the Delayed reachable from the list 'outputs', encodes each task's
** payload (Delayed arguments as DEPREF), each function once, and plans the
** graph. Raises on values that cannot travel or a bad graph. */
LASK_INTERNAL int lask__build_job(lua_State *L);
LASK_INTERNAL struct job *lask__check_job(lua_State *L, int idx);
LASK_INTERNAL int lask__job_size(lua_State *L);
LASK_INTERNAL void lask__job_register(lua_State *L);

/* lask.core.run_job(job, num_workers, profile, progress_fn) -> {values...}
** [, profile]: runs the job on the state's pool of executors. */
LASK_INTERNAL int lask__run_job(lua_State *L);
LASK_INTERNAL void lask__engine_register(lua_State *L);

#endif
