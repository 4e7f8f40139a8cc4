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
  struct lask_wbuf keep;   /* references to the arrays payloads name */
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

/* -------------------------------------------------------------------------
** Shared by engine.c (the pool, the client side) and executor.c (the
** executor threads). The guards of every field are in the comments.
** ---------------------------------------------------------------------- */

#include <signal.h>
#include <stdatomic.h>
#include <uv.h>

#define BATCH 32 /* actions an executor takes per lock, at most */
/* Sent to an executor thread to interrupt its running task. */
#define SIG_INTERRUPT (SIGRTMIN + 2)

struct pool;

/* One computation. Created and freed by the client thread. */
struct run {
  struct job *job;          /* read-only while the run lasts; the job may
                            ** be freed before the run (see free_run) */
  uint32_t nunits;          /* the job's units, kept for free_run */
  struct lask_sched *s;     /* guarded by pool.lock */
  struct lask_wbuf *pub;    /* per unit; written under pool.lock, then
                            ** read-only until released */
  uint64_t gen;             /* executors reset their tables on a new gen */
  uint32_t ndone;           /* units finished, for progress */
  char *err;                /* first task error (malloc'd), or NULL */
  uint64_t *t_start, *t_end; /* per unit, when profiling, else NULL */
  int32_t *t_exec;
  volatile sig_atomic_t *interrupted; /* set by the SIGINT handler */
  int gc_pause;             /* the executors' collector pause, percent */
};

struct executor {
  struct pool *pool;
  int id;
  uv_thread_t tid;
  uv_cond_t cond;   /* this executor waits here */
  int started;      /* the thread was created */
  int sleeping;     /* guarded by pool.lock */
  uint64_t gen;     /* the run its tables belong to (thread-local use) */
  int batch;        /* actions to take per lock, 1..BATCH (thread-local) */
  int gc_pause;     /* the pause its collector has (thread-local; 0: unset) */
  lua_State *L;     /* owned by the thread */
  volatile sig_atomic_t in_task; /* a task's function is running (its
                                  ** thread only, read by its hook) */
};

struct pool {
  uv_mutex_t lock;
  uv_cond_t done;       /* the client waits here */
  int nexec;
  struct executor *ex;
  struct run *run;      /* guarded by lock; NULL between runs */
  int busy;             /* executors carrying out actions of 'run'; the
                        ** client frees a run only when this is 0 */
  int shutdown;         /* guarded by lock */
  uint64_t gen;         /* guarded by lock */
  char *path, *cpath;   /* package.path/cpath the states were made with */
  int ready;            /* executors that finished starting */
  int failed_start;     /* an executor could not make its state */
  atomic_int cancel;    /* set on SIGINT; read by the executors' hooks */
};

/* The thread function of an executor (executor.c). */
LASK_INTERNAL void lask__executor_main(void *arg);
/* Installs the executors' SIG_INTERRUPT handler (once per process). */
LASK_INTERNAL void lask__install_interrupt(void);
/* Cancels the running job: sets pool.cancel and signals every executor
** thread but 'except' (-1: none) to interrupt its task. Used on the first
** task error, so compute() raises without waiting for unrelated tasks, and
** on SIGINT. Caller holds pool.lock. */
LASK_INTERNAL void lask__cancel_run(struct pool *pool, int except);
/* Wakes executors with work, and the client when the run is over. Caller
** holds pool.lock. */
LASK_INTERNAL void lask__wake_up(struct pool *pool);

#endif
