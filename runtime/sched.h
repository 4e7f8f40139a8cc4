/*
** sched.h: the scheduler state machine (internal).
**
** Policy only: no threads, no I/O, no Lua. It follows the units of a plan
** through their states and tells executors what to do through per-executor
** action queues. The caller serialises every call (the local engine holds
** its lock; the distributed scheduler runs it in its event loop), so the
** same code serves both transports.
**
** Unit states: waiting (inputs not ready) -> ready (in an executor's heap)
** or fetching (placed, waiting for inputs from other executors to be
** published) -> processing -> memory -> released; or erred.
*/
#ifndef LASK_SCHED_H
#define LASK_SCHED_H

#include "graph.h"

enum lask_ustate {
  LASK_U_WAITING,
  LASK_U_READY,
  LASK_U_FETCHING,
  LASK_U_PROCESSING,
  LASK_U_MEMORY,
  LASK_U_RELEASED,
  LASK_U_ERRED
};

/* What an executor is told to do. */
enum lask_akind {
  LASK_A_RUN,     /* run the unit: its remote inputs are published */
  LASK_A_PUBLISH, /* encode the unit's value into the shared store */
  LASK_A_RELEASE  /* drop the unit's value: nothing needs it any more */
};

struct lask_action {
  uint32_t kind; /* enum lask_akind */
  uint32_t unit;
};

struct lask_sched;

/* Starts scheduling plan 'p' over 'nexec' executors; units without inputs
** are spread over the executors' heaps. *out owns the new state machine;
** 'p' must outlive it. Returns 0 or LASK_ENOMEM / LASK_EINVAL. */
LASK_INTERNAL int lask__sched_new(const struct lask_plan *p, int nexec,
                                  struct lask_sched **out);
LASK_INTERNAL void lask__sched_free(struct lask_sched *s);

/* Fills 'acts' with at most 'max' actions for executor 'e': publish
** requests first, then releases, then units to run (its own heap first; if
** that is empty it steals from the fullest heap). Returns how many. Runs are
** marked processing; after a failure or a cancel no run is handed out. */
LASK_INTERNAL int lask__sched_next(struct lask_sched *s, int e,
                                   struct lask_action *acts, int max);

/* Executor 'e' finished unit 'u' (its value, of about 'nbytes' bytes, now
** lives there). Makes consumers ready and queues releases of inputs that
** nothing needs any more. */
LASK_INTERNAL void lask__sched_finished(struct lask_sched *s, int e,
                                        uint32_t u, uint64_t nbytes);

/* Unit 'u's value is now in the shared store (after a publish request, or
** because it is an output). Fetching consumers may become ready. */
LASK_INTERNAL void lask__sched_published(struct lask_sched *s, uint32_t u);

/* Unit 'u' raised. It and everything depending on it is erred; the
** computation has failed and hands out no more runs. */
LASK_INTERNAL void lask__sched_erred(struct lask_sched *s, uint32_t u);

/* 1 if lask__sched_next would give executor 'e' something now. */
LASK_INTERNAL int lask__sched_has_work(const struct lask_sched *s, int e);

/* Stops handing out runs (the caller gave up, e.g. on SIGINT). */
LASK_INTERNAL void lask__sched_cancel(struct lask_sched *s);

/* 1 when every output is in memory and published, or when the computation
** failed or was cancelled and no unit is still processing; else 0. */
LASK_INTERNAL int lask__sched_over(const struct lask_sched *s);

/* 1 if the computation failed; *u receives the first unit that raised. */
LASK_INTERNAL int lask__sched_failed(const struct lask_sched *s, uint32_t *u);

/* Where unit 'u' is and what it is doing (for tests, diagnostics and the
** dashboard). */
LASK_INTERNAL enum lask_ustate lask__sched_state(const struct lask_sched *s,
                                                 uint32_t u);
LASK_INTERNAL int lask__sched_holder(const struct lask_sched *s, uint32_t u);
/* Units queued (ready) on executor 'e', and units processing anywhere. */
LASK_INTERNAL uint32_t lask__sched_queued(const struct lask_sched *s, int e);
LASK_INTERNAL uint32_t lask__sched_processing(const struct lask_sched *s);

#endif
