/*
** executor.c: the executor threads of the local scheduler. Each owns one
** Lua state, takes actions from the state machine under pool.lock (run a
** unit, publish a value, release one), carries them out without the lock,
** and reports back in batches. Values stay in the executor's state until a
** publish request or an output makes it encode them into run->pub.
** See engine.h for the shared structures and their guards.
*/
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "state.h"
#include "ndarray.h"
#include "value.h"

/* -------------------------------------------------------------------------
** Interrupting running tasks
**
** On SIGINT the client sets pool.cancel and sends SIG_INTERRUPT to every
** executor thread. The handler runs on that thread and arms a one-shot hook
** on that thread's own state, as lua.c does for Ctrl-C: no thread touches
** another's lua_State. The hook raises only if the run is really
** cancelled, so a late signal does no harm. (LuaJIT runs no hooks inside
** JIT-compiled loops: such a task finishes before the run stops.)
** ---------------------------------------------------------------------- */

static _Thread_local struct executor *tls_executor; /* this thread's */

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  struct executor *ex = tls_executor;
  /* Only a task's own code is interrupted: not lask's decoding around it,
  ** which may be loading a module (an error half-way through require
  ** leaves the module unusable in LuaJIT). Outside a task the hook stays
  ** armed until the task starts or the run ends. */
  if (ex != NULL && !ex->in_task && atomic_load(&ex->pool->cancel)) return;
  lua_sethook(L, NULL, 0, 0);
  if (ex != NULL && atomic_load(&ex->pool->cancel)) {
    luaL_error(L, "lask: computation interrupted");
  }
}

static void on_interrupt(int sig) {
  (void)sig;
  struct executor *ex = tls_executor;
  if (ex != NULL && ex->L != NULL) {
    lua_sethook(ex->L, interrupt_hook,
                LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  }
}

/* Installs the handler once per process. */
void lask__install_interrupt(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_interrupt;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIG_INTERRUPT, &sa, NULL);
}

/* -------------------------------------------------------------------------
** Executor side (runs on executor threads)
** ---------------------------------------------------------------------- */

/* Registry slots of an executor state: vals (unit -> value held here) and
** funcs (fid -> function); key_nil marks a nil value in vals. */
static const char key_vals = 0, key_funcs = 0, key_nil = 0;

/* Makes the per-run tables; 'nunits' sizes the values table so that it
** never rehashes while the run stores into it. */
static void reset_tables(lua_State *L, uint32_t nunits) {
  lua_createtable(L, (int)(nunits < (1u << 26) ? nunits : 0), 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_vals);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_funcs);
}

/* Pushes a value from a values table, turning the nil marker back. */
static void push_stored(lua_State *L, int tbl, uint32_t u) {
  lua_rawgeti(L, tbl, (lua_Integer)u + 1);
  if (lua_islightuserdata(L, -1) && lua_touserdata(L, -1) == &key_nil) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

/* Context of the unit being run, for resolving DEPREF items. */
struct running {
  struct executor *ex;
  struct run *run;
  uint32_t unit;
  int vals;
  int prev;        /* stack index of the previous member's result, or 0 */
  uint32_t prev_task;
};

/* Pushes the value of graph task 'task' for a DEPREF (see value.h). */
static void push_dep(lua_State *L, void *ud, uint64_t task) {
  struct running *r = ud;
  const struct lask_plan *p = r->run->job->plan;
  if (task >= r->run->job->g->ntasks) luaL_error(L, "lask: bad dependency");
  if (r->prev != 0 && task == r->prev_task) {
    lua_pushvalue(L, r->prev);
    return;
  }
  uint32_t u = p->unit_of[task];
  lua_rawgeti(L, r->vals, (lua_Integer)u + 1);
  if (lua_isnil(L, -1)) {
    /* Published by another executor: decoded for this unit only and not
    ** kept, so that releasing it there frees it everywhere. */
    lua_pop(L, 1);
    struct lask_wbuf *b = &r->run->pub[u];
    if (b->p == NULL) luaL_error(L, "lask: input of a task is missing");
    lask__value_decode_items(L, b->p, b->len, 1, NULL);
    return;
  }
  if (lua_islightuserdata(L, -1) && lua_touserdata(L, -1) == &key_nil) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
}

/* Pushes function 'fid' of the run, decoding it on first use. */
static void push_function(lua_State *L, struct run *run, uint32_t fid) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_funcs);
  lua_rawgeti(L, -1, fid);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    if (fid == 0 || fid > run->job->nfuncs) luaL_error(L, "lask: bad function");
    struct lask_wbuf *f = &run->job->funcs[fid - 1];
    lask__value_decode(L, f->p, f->len, 0);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, fid);
  }
  lua_remove(L, -2);
}

/* Protected: pushes a task's function (unless fid is 0: a literal) and
** decodes its arguments (args: running*, fid, payload bytes as light
** userdata, their length, how many items, deps). */
static int decode_protected(lua_State *L) {
  struct running *r = lua_touserdata(L, 1);
  uint32_t fid = (uint32_t)lua_tointeger(L, 2);
  const void *p = lua_touserdata(L, 3);
  size_t n = (size_t)lua_tointeger(L, 4);
  int count = (int)lua_tointeger(L, 5);
  const struct lask_deps *deps = lua_touserdata(L, 6);
  /* Arg 7 is the previous chain member's value. push_dep reads stack
  ** indexes, which are per C frame: point them into this frame. */
  int outer_vals = r->vals, outer_prev = r->prev;
  lua_settop(L, 7);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_vals);
  r->vals = 8;
  if (outer_prev != 0) r->prev = 7;
  int base = lua_gettop(L);
  if (fid != 0) push_function(L, r->run, fid);
  lask__value_decode_items(L, p, n, count, deps);
  r->vals = outer_vals;
  r->prev = outer_prev;
  return lua_gettop(L) - base;
}

/* Raises "lask: task '<key>' <what>:\n<message on top>". */
static int task_fail(lua_State *L, struct running *r, uint32_t task,
                     const char *what) {
  size_t klen;
  const char *key = lask__graph_key(r->run->job->g, task, &klen);
  lua_pushlstring(L, key, klen);
  lua_pushfstring(L, "lask: task '%s' %s:\n%s", lua_tostring(L, -1), what,
                  lua_tostring(L, -2));
  return lua_error(L);
}

/* Runs one member task (protected by the caller); leaves its result. */
static void run_member(lua_State *L, struct running *r, uint32_t task) {
  size_t n;
  const uint8_t *p = lask__graph_payload(r->run->job->g, task, &n);
  struct lask_rbuf rb = {p, p + n};
  uint64_t fid, nargs;
  if (lask__get_varint(&rb, &fid) || lask__get_varint(&rb, &nargs) ||
      nargs > INT_MAX / 2) {
    lua_pushliteral(L, "corrupt task payload");
    task_fail(L, r, task, "could not start");
  }
  luaL_checkstack(L, (int)nargs + 8, "lask: too many task arguments");
  struct lask_deps deps = {push_dep, r};
  int base = lua_gettop(L);
  lua_pushcfunction(L, lask__task_traceback);
  lua_pushcfunction(L, decode_protected);
  lua_pushlightuserdata(L, r);
  lua_pushinteger(L, (lua_Integer)fid);
  lua_pushlightuserdata(L, (void *)rb.pos);
  lua_pushinteger(L, (lua_Integer)(rb.end - rb.pos));
  lua_pushinteger(L, fid == 0 ? 1 : (lua_Integer)nargs);
  lua_pushlightuserdata(L, &deps);
  if (r->prev != 0) lua_pushvalue(L, r->prev);
  else lua_pushnil(L);
  int saved_vals = r->vals, saved_prev = r->prev;
  int rc = lua_pcall(L, 7, fid == 0 ? 1 : (int)nargs + 1, 0);
  r->vals = saved_vals; /* an error skipped the frame's own restore */
  r->prev = saved_prev;
  if (rc != 0) {
    task_fail(L, r, task, "could not be decoded");
  }
  if (fid == 0) { /* a literal: its value is the result */
    lua_replace(L, base + 1);
    return;
  }
  r->ex->in_task = 1;
  int failed = lua_pcall(L, (int)nargs, 1, base + 1) != 0;
  r->ex->in_task = 0;
  if (failed) task_fail(L, r, task, "raised an error");
  lua_remove(L, base + 1);
}

/* lua_CFunction: runs unit (upvalue-free, args: running*). Leaves the
** unit's result on the stack. */
static int run_unit_protected(lua_State *L) {
  struct running *r = lua_touserdata(L, 1);
  const struct lask_plan *p = r->run->job->plan;
  lua_settop(L, 0);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_vals);
  r->vals = lua_gettop(L);
  r->prev = 0;
  for (uint32_t m = p->mem_off[r->unit]; m < p->mem_off[r->unit + 1]; m++) {
    uint32_t task = p->members[m];
    run_member(L, r, task);
    if (r->prev != 0) lua_remove(L, r->prev);
    r->prev = lua_gettop(L);
    r->prev_task = task;
  }
  return 1;
}

/* A rough size of a value, for placement. */
static uint64_t approx_bytes(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: return (uint64_t)lua_rawlen(L, idx);
  case LUA_TTABLE: return 16 * (uint64_t)lua_rawlen(L, idx) + 64;
  default: return 8;
  }
}

/* Protected: encodes the value on top of the stack into *b (userdata). */
static int encode_protected(lua_State *L) {
  struct lask_wbuf *b = lua_touserdata(L, 2);
  lask__value_encode_items(L, 1, 1, b, NULL);
  return 0;
}

/* Encodes the value at the top of ex's stack into a fresh buffer *b.
** Returns 0, or 1 with an error message left on the stack. */
static int encode_value(struct executor *ex, struct lask_wbuf *b) {
  lua_State *L = ex->L;
  lask__wbuf_init(b);
  lua_pushcfunction(L, encode_protected);
  lua_pushvalue(L, -2);
  lua_pushlightuserdata(L, b);
  if (lua_pcall(L, 2, 0, 0) != 0) {
    lask__wbuf_close(b);
    return 1;
  }
  return 0;
}

/* What one executor learned in a batch, reported under the lock. */
struct report {
  uint32_t unit;
  int kind;               /* 0 finished, 1 erred, 2 published */
  uint64_t nbytes;
  struct lask_wbuf pub;   /* for outputs and publish requests */
  char *err;              /* for erred: malloc'd message */
};

static char *dup_message(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  return strdup(msg ? msg : "lask: error object is not a string");
}

/* The message on top, for a result of unit 'u' that could not be encoded,
** naming the unit's task (malloc'd). */
static char *result_error(lua_State *L, struct run *run, uint32_t u) {
  const struct lask_plan *p = run->job->plan;
  size_t n;
  const char *key = lask__graph_key(run->job->g,
                                    p->members[p->mem_off[u + 1] - 1], &n);
  const char *msg = lua_tostring(L, -1);
  lua_pushlstring(L, key, n);
  lua_pushfstring(L, "lask: the result of task '%s' cannot be sent: %s",
                  lua_tostring(L, -1), msg ? msg : "?");
  return dup_message(L);
}

/* Runs unit 'u' and fills the report; publishes outputs at once. */
static void do_run(struct executor *ex, struct run *run, uint32_t u,
                   struct report *rep) {
  lua_State *L = ex->L;
  struct running r = {ex, run, u, 0, 0, 0};
  if (run->t_start) run->t_start[u] = uv_hrtime();
  rep->unit = u;
  rep->err = NULL;
  lask__wbuf_init(&rep->pub);
  lua_pushcfunction(L, run_unit_protected);
  lua_pushlightuserdata(L, &r);
  if (lua_pcall(L, 1, 1, 0) != 0) {
    rep->kind = 1;
    rep->err = dup_message(L);
    lua_settop(L, 0);
    return;
  }
  rep->kind = 0;
  rep->nbytes = approx_bytes(L, -1);
  if (run->job->plan->is_output[u] && encode_value(ex, &rep->pub) != 0) {
    rep->kind = 1;
    rep->err = result_error(L, run, u);
    lua_settop(L, 0);
    return;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_vals);
  if (lua_isnil(L, -2)) lua_pushlightuserdata(L, (void *)&key_nil);
  else lua_pushvalue(L, -2);
  lua_rawseti(L, -2, (lua_Integer)u + 1);
  lua_settop(L, 0);
  if (run->t_end) {
    run->t_end[u] = uv_hrtime();
    run->t_exec[u] = ex->id;
  }
}

/* Serves a publish request for unit 'u'. */
static void do_publish(struct executor *ex, struct run *run, uint32_t u,
                       struct report *rep) {
  lua_State *L = ex->L;
  rep->unit = u;
  rep->err = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_vals);
  push_stored(L, lua_gettop(L), u);
  if (encode_value(ex, &rep->pub) != 0) {
    rep->kind = 1;
    rep->err = result_error(L, run, u);
  } else {
    rep->kind = 2;
  }
  lua_settop(L, 0);
}

static void do_release(struct executor *ex, uint32_t u) {
  lua_State *L = ex->L;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_vals);
  lua_pushnil(L);
  lua_rawseti(L, -2, (lua_Integer)u + 1);
  lua_pop(L, 1);
}

/* Wakes every sleeping executor that has something to do, and the client
** when the run is over and no executor still works on it. Caller holds
** pool.lock. */
void lask__wake_up(struct pool *pool) {
  struct run *run = pool->run;
  if (run == NULL) return;
  for (int e = 0; e < pool->nexec; e++) {
    struct executor *x = &pool->ex[e];
    if (x->sleeping && lask__sched_has_work(run->s, e)) {
      uv_cond_signal(&x->cond);
    }
  }
  if (pool->busy == 0 && lask__sched_over(run->s)) {
    uv_cond_signal(&pool->done);
  }
}

/* Records a batch of reports in the state machine. Caller holds the lock. */
static void apply_reports(struct executor *ex, struct run *run,
                          struct report *reps, int n) {
  for (int i = 0; i < n; i++) {
    struct report *rep = &reps[i];
    uint32_t u = rep->unit;
    if (rep->kind == 1) {
      if (run->err == NULL) {
        run->err = rep->err;
        lask__cancel_run(ex->pool, ex->id);
      } else {
        free(rep->err);
      }
      lask__sched_erred(run->s, u);
      continue;
    }
    /* Published before finished: finishing places consumers, which must
    ** see the bytes already there. A buffer once set is never replaced
    ** while the run lasts: another executor may be decoding it. */
    if (rep->pub.p != NULL) {
      if (run->pub[u].p == NULL) {
        run->pub[u] = rep->pub;
        lask__sched_published(run->s, u);
      } else {
        lask__wbuf_close(&rep->pub);
      }
    }
    if (rep->kind == 0) {
      run->ndone++;
      lask__sched_finished(run->s, ex->id, u, rep->nbytes);
    }
  }
}

void lask__cancel_run(struct pool *pool, int except) {
  atomic_store(&pool->cancel, 1);
  for (int e = 0; e < pool->nexec; e++) {
    if (e != except && pool->ex[e].started) {
      pthread_kill(pool->ex[e].tid, SIG_INTERRUPT);
    }
  }
}

/* Sizes the next batch from the last task's duration: short tasks are
** taken many at a time (one lock per batch), long ones one at a time so
** that idle executors can still take the rest. */
static void adapt_batch(struct executor *ex, uint64_t ns) {
  if (ns > 50000) {
    ex->batch = 1;
  } else if (ex->batch < BATCH) {
    ex->batch *= 2;
  }
}

/* Carries out one batch of actions outside the lock; returns how many
** reports it made. */
static int carry_out(struct executor *ex, struct run *run,
                     const struct lask_action *acts, int n,
                     struct report *reps) {
  int nrep = 0;
  for (int i = 0; i < n; i++) {
    uint32_t u = acts[i].unit;
    if (acts[i].kind == LASK_A_RUN && atomic_load(&ex->pool->cancel)) {
      struct report *rep = &reps[nrep++]; /* cancelled: do not start it */
      memset(rep, 0, sizeof *rep);
      rep->unit = u;
      rep->kind = 1;
      rep->err = strdup("lask: computation interrupted");
    } else if (acts[i].kind == LASK_A_RUN) {
      uint64_t t0 = uv_hrtime();
      do_run(ex, run, u, &reps[nrep++]);
      adapt_batch(ex, uv_hrtime() - t0);
    } else if (acts[i].kind == LASK_A_PUBLISH) {
      do_publish(ex, run, u, &reps[nrep++]);
    } else {
      do_release(ex, u);
    }
  }
  return nrep;
}

/* Waits for work. Between runs it drops the values of the last run, so
** that they do not outlive it. Caller holds pool.lock; returns with it. */
static void idle(struct executor *ex, struct pool *pool) {
  if (pool->run == NULL && ex->gen != pool->gen) {
    uint64_t gen = pool->gen;
    uv_mutex_unlock(&pool->lock);
    reset_tables(ex->L, 0);
    lua_gc(ex->L, LUA_GCCOLLECT, 0);
    uv_mutex_lock(&pool->lock);
    ex->gen = gen;
    return;
  }
  ex->sleeping = 1;
  uv_cond_wait(&ex->cond, &pool->lock);
  ex->sleeping = 0;
}

void lask__executor_main(void *arg) {
  struct executor *ex = arg;
  struct pool *pool = ex->pool;
  ex->L = lask__state_new(pool->path, pool->cpath);
  tls_executor = ex;
  lask__in_executor = 1;
  ex->batch = 1; /* grows while tasks are short */
  if (ex->L != NULL) reset_tables(ex->L, 0);
  uv_mutex_lock(&pool->lock);
  pool->ready++;
  if (ex->L == NULL) pool->failed_start = 1;
  uv_cond_signal(&pool->done);
  struct lask_action acts[BATCH];
  struct report reps[BATCH];
  while (!pool->shutdown && ex->L != NULL) {
    struct run *run = pool->run;
    int n = run ? lask__sched_next(run->s, ex->id, acts, ex->batch) : 0;
    if (n == 0) {
      idle(ex, pool);
      continue;
    }
    for (int i = 0; i < n; i++) { /* released: its bytes too, now */
      if (acts[i].kind == LASK_A_RELEASE) {
        lask__wbuf_close(&run->pub[acts[i].unit]);
      }
    }
    pool->busy++;
    uv_mutex_unlock(&pool->lock);
    if (ex->gen != run->gen) {
      reset_tables(ex->L, run->job->plan->nunits);
      ex->gen = run->gen;
      if (ex->gc_pause != run->gc_pause) {
        ex->gc_pause = run->gc_pause;
#if LASK_FLAVOUR == LASK_FLAVOUR_LUA54
        lua_gc(ex->L, LUA_GCINC, ex->gc_pause, 0, 0);
#else
        lua_gc(ex->L, LUA_GCSETPAUSE, ex->gc_pause);
#endif
      }
    }
    int nrep = carry_out(ex, run, acts, n, reps);
    uv_mutex_lock(&pool->lock);
    apply_reports(ex, run, reps, nrep);
    pool->busy--;
    lask__wake_up(pool);
  }
  uv_mutex_unlock(&pool->lock);
  tls_executor = NULL;
  if (ex->L != NULL) lua_close(ex->L);
}

