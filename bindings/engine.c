/*
** engine.c: the threaded local scheduler, client side: the pool of
** executor threads (executor.c), and running a job on it with
** runtime/sched.c's state machine.
**
** Threads and ownership (doc/ENGINE.md):
** - struct pool lives in a userdata of the client state; its __gc stops and
**   joins the threads and closes their states.
** - pool.lock guards pool.run, pool.shutdown, the state machine (run->s),
**   run->pub[], run->err*, run->ndone and every executor's 'wake' flag.
**   Lock order: pool.lock only; no other lock exists.
** - An executor's lua_State is touched only by its own thread. Values stay
**   there (a table indexed by unit) until a publish request or an output
**   makes the executor encode them into run->pub[u].
** - The client thread builds the job, sets pool.run, then waits on
**   pool.done with a timeout (to draw progress and notice SIGINT).
*/
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "engine.h"
#include "state.h"
#include "value.h"

#define POOL_MT "lask.pool"
#define WAIT_MS 100     /* the client's wait between progress updates */

/* -------------------------------------------------------------------------
** Client side
** ---------------------------------------------------------------------- */

static void pool_stop(struct pool *pool) {
  if (pool->ex == NULL) return;
  uv_mutex_lock(&pool->lock);
  pool->shutdown = 1;
  for (int e = 0; e < pool->nexec; e++) uv_cond_signal(&pool->ex[e].cond);
  uv_mutex_unlock(&pool->lock);
  for (int e = 0; e < pool->nexec; e++) {
    if (pool->ex[e].started) uv_thread_join(&pool->ex[e].tid);
    uv_cond_destroy(&pool->ex[e].cond);
  }
  free(pool->ex);
  pool->ex = NULL;
  uv_cond_destroy(&pool->done);
  uv_mutex_destroy(&pool->lock);
  free(pool->path);
  free(pool->cpath);
  pool->path = pool->cpath = NULL;
}

static int pool_gc(lua_State *L) {
  struct pool *pool = luaL_checkudata(L, 1, POOL_MT);
  pool_stop(pool);
  return 0;
}

static char *package_field(lua_State *L, const char *field) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, field);
  const char *s = lua_tostring(L, -1);
  char *copy = s ? strdup(s) : NULL;
  lua_pop(L, 2);
  return copy;
}

static int same(const char *a, const char *b) {
  return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* Starts 'nexec' executors in 'pool' (zeroed). Raises on failure, after
** stopping whatever started. */
static void pool_start(lua_State *L, struct pool *pool, int nexec) {
  pool->ex = calloc((size_t)nexec, sizeof *pool->ex);
  pool->path = package_field(L, "path");
  pool->cpath = package_field(L, "cpath");
  if (pool->ex == NULL || uv_mutex_init(&pool->lock) != 0 ||
      uv_cond_init(&pool->done) != 0) {
    free(pool->ex);
    pool->ex = NULL;
    luaL_error(L, "lask: cannot create the thread pool");
  }
  pool->nexec = nexec;
  static uv_once_t once = UV_ONCE_INIT;
  uv_once(&once, lask__install_interrupt);
  int rc = 0;
  for (int e = 0; e < nexec && rc == 0; e++) {
    struct executor *x = &pool->ex[e];
    x->pool = pool;
    x->id = e;
    uv_cond_init(&x->cond);
    /* The default stack (8 MB) holds the codec's deepest nesting. */
    rc = uv_thread_create(&x->tid, lask__executor_main, x);
    x->started = rc == 0;
  }
  uv_mutex_lock(&pool->lock);
  int started = 0;
  for (int e = 0; e < nexec; e++) started += pool->ex[e].started;
  while (pool->ready < started) uv_cond_wait(&pool->done, &pool->lock);
  int failed = pool->failed_start;
  uv_mutex_unlock(&pool->lock);
  if (rc != 0 || failed) {
    pool_stop(pool);
    luaL_error(L, "lask: cannot start %d executor threads%s%s", nexec,
               rc ? ": " : "", rc ? uv_strerror(rc) : "");
  }
}

/* Pushes the state's pool with 'nexec' executors, (re)starting it when the
** size or the package paths changed. */
static const char key_pool = 0;
static struct pool *get_pool(lua_State *L, int nexec) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_pool);
  struct pool *pool = lua_touserdata(L, -1);
  if (pool != NULL && pool->ex != NULL) {
    char *path = package_field(L, "path"), *cpath = package_field(L, "cpath");
    int ok = pool->nexec == nexec && same(path, pool->path) &&
             same(cpath, pool->cpath);
    free(path);
    free(cpath);
    if (ok) return pool;
    pool_stop(pool);
  } else if (pool == NULL) {
    lua_pop(L, 1);
    pool = lua_newuserdatauv(L, sizeof *pool, 0);
    memset(pool, 0, sizeof *pool);
    luaL_setmetatable(L, POOL_MT);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_pool);
  }
  memset(pool, 0, sizeof *pool);
  pool_start(L, pool, nexec);
  return pool;
}

/* SIGINT while waiting: remembered, acted on by the wait loop. */
static volatile sig_atomic_t sigint_seen;
static struct sigaction sigint_before; /* the handler compute() replaced */
static struct timespec sigint_first;   /* when the first one came */

/* Milliseconds since the first SIGINT (async-signal-safe). */
static long since_first_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - sigint_first.tv_sec) * 1000 +
         (now.tv_nsec - sigint_first.tv_nsec) / 1000000;
}

static void on_sigint(int sig) {
  /* One Ctrl-C may arrive twice (GNU timeout signals the child and then its
  ** process group): a second one counts only half a second later. */
  if (sigint_seen && since_first_ms() >= 500) {
    /* A second Ctrl-C: the running tasks did not stop (LuaJIT runs no
    ** hooks in compiled loops). Hand the signal to the previous handler,
    ** or to the default action, which ends the process. */
    sigaction(SIGINT, &sigint_before, NULL);
    raise(sig);
    return;
  }
  if (!sigint_seen) clock_gettime(CLOCK_MONOTONIC, &sigint_first);
  sigint_seen = 1;
}

static void free_run(struct run *run) {
  if (run == NULL) return;
  /* Not run->job: the collector may have freed the job already. */
  uint32_t n = run->nunits;
  for (uint32_t u = 0; run->pub && u < n; u++) lask__wbuf_close(&run->pub[u]);
  free(run->pub);
  lask__sched_free(run->s);
  free(run->err);
  free(run->t_start);
  free(run->t_end);
  free(run->t_exec);
  free(run);
}

/* A run in a userdata, so that an error in the client frees it. */
static int runbox_gc(lua_State *L) {
  struct run **box = lua_touserdata(L, 1);
  free_run(*box);
  *box = NULL;
  return 0;
}

static struct run *new_run(lua_State *L, struct job *job, int profile) {
  struct run **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  lua_newtable(L);
  lua_pushcfunction(L, runbox_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  struct run *run = calloc(1, sizeof *run);
  if (run == NULL) luaL_error(L, "lask: out of memory");
  *box = run;
  uint32_t n = job->plan->nunits ? job->plan->nunits : 1;
  run->job = job;
  run->nunits = job->plan->nunits;
  run->pub = calloc(n, sizeof *run->pub);
  if (profile) {
    run->t_start = calloc(n, sizeof *run->t_start);
    run->t_end = calloc(n, sizeof *run->t_end);
    run->t_exec = calloc(n, sizeof *run->t_exec);
  }
  if (run->pub == NULL || (profile && !run->t_exec)) {
    luaL_error(L, "lask: out of memory");
  }
  return run;
}

/* Calls progress(done, total) if given (stack index 'fn'), unlocked and
** protected: an error in it must not leave executors on a freed run. The
** first error is kept in the registry slot below and raised afterwards. */
static const char key_progress_err = 0;
static void report_progress(lua_State *L, int fn, uint32_t done,
                            uint32_t total) {
  if (fn == 0) return;
  lua_pushvalue(L, fn);
  lua_pushinteger(L, done);
  lua_pushinteger(L, total);
  if (lua_pcall(L, 2, 0, 0) != 0) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &key_progress_err);
    if (lua_isnil(L, -1)) {
      lua_pushvalue(L, -2);
      lua_rawsetp(L, LUA_REGISTRYINDEX, &key_progress_err);
    }
    lua_pop(L, 2);
  }
}

/* Waits until the run is over and no executor works on it any more,
** drawing progress; cancels it on SIGINT. Then detaches it from the pool
** and tells the executors to drop its values. */
static int wait_run(lua_State *L, struct pool *pool, struct run *run,
                    int progress) {
  int interrupted = 0;
  uint32_t total = run->job->plan->nunits;
  uv_mutex_lock(&pool->lock);
  while (!lask__sched_over(run->s) || pool->busy > 0) {
    uv_cond_timedwait(&pool->done, &pool->lock, WAIT_MS * 1000000ull);
    if (sigint_seen && !interrupted) {
      interrupted = 1;
      lask__sched_cancel(run->s);
      lask__cancel_run(pool, -1);
    }
    uint32_t done = run->ndone;
    if (progress) {
      uv_mutex_unlock(&pool->lock);
      report_progress(L, progress, done, total);
      uv_mutex_lock(&pool->lock);
    }
  }
  pool->run = NULL;
  pool->gen++;
  atomic_store(&pool->cancel, 0);
  for (int e = 0; e < pool->nexec; e++) uv_cond_signal(&pool->ex[e].cond);
  uv_mutex_unlock(&pool->lock);
  if (progress) report_progress(L, progress, run->ndone, total);
  return interrupted;
}

/* Pushes {key = ..., start = s, finish = s, executor = e} per unit. */
static void push_profile(lua_State *L, struct run *run) {
  const struct lask_plan *p = run->job->plan;
  lua_createtable(L, (int)p->nunits, 0);
  for (uint32_t u = 0; u < p->nunits; u++) {
    size_t n;
    uint32_t last = p->members[p->mem_off[u + 1] - 1];
    const char *key = lask__graph_key(run->job->g, last, &n);
    lua_createtable(L, 0, 4);
    lua_pushlstring(L, key, n);
    lua_setfield(L, -2, "key");
    lua_pushnumber(L, (lua_Number)run->t_start[u] / 1e9);
    lua_setfield(L, -2, "start");
    lua_pushnumber(L, (lua_Number)run->t_end[u] / 1e9);
    lua_setfield(L, -2, "finish");
    lua_pushinteger(L, run->t_exec[u] + 1);
    lua_setfield(L, -2, "executor");
    lua_rawseti(L, -2, (lua_Integer)u + 1);
  }
}

int lask__run_job(lua_State *L) {
  struct job *job = lask__check_job(L, 1);
  int nexec = (int)luaL_checkinteger(L, 2);
  luaL_argcheck(L, nexec >= 1 && nexec <= 1024, 2, "1 to 1024 workers");
  int profile = lua_toboolean(L, 3);
  int progress = lua_isfunction(L, 4) ? 4 : 0;
  /* The executors' collector pause (percent; the interpreters' default is
  ** 200: a cycle starts when the heap has doubled). With a memory budget
  ** lask.threads asks for 125: on word counts under a 40 MB budget, peak
  ** RSS 54-77 MB against 79-126 MB, for 0-10% more time (100 keeps the
  ** collector always running: 1.5-4.5x the time). */
  int gc_pause = (int)luaL_optinteger(L, 5, 200);
  luaL_argcheck(L, gc_pause >= 50 && gc_pause <= 1000, 5,
                "a collector pause from 50 to 1000");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_pool);
  struct pool *busy = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (busy != NULL && busy->ex != NULL && busy->run != NULL) {
    lua_pushliteral(L, "lask: compute() was called while another threads "
                    "computation of this Lua state is running (from a "
                    "progress callback or a finalizer?): use "
                    "{scheduler = \"sync\"} there");
    return lua_error(L);
  }
  struct pool *pool = get_pool(L, nexec);
  struct run *run = new_run(L, job, profile);
  run->gc_pause = gc_pause;
  int rc = lask__sched_new(job->plan, nexec, &run->s);
  if (rc != 0) lask__raise_rc(L, rc, "scheduling");
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigint_seen = 0;
  sigaction(SIGINT, &sa, &old);
  sigint_before = old;
  uv_mutex_lock(&pool->lock);
  run->gen = ++pool->gen;
  pool->run = run;
  lask__wake_up(pool);
  uv_mutex_unlock(&pool->lock);
  int interrupted = wait_run(L, pool, run, progress);
  sigaction(SIGINT, &old, NULL);
  if (interrupted) {
    lua_pushliteral(L, "lask: computation interrupted");
    return lua_error(L);
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_progress_err);
  if (!lua_isnil(L, -1)) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_progress_err);
    return lua_error(L);
  }
  lua_pop(L, 1);
  if (run->err != NULL) {
    lua_pushstring(L, run->err);
    return lua_error(L);
  }
  lua_createtable(L, (int)job->noutputs, 0);
  for (uint32_t i = 0; i < job->noutputs; i++) {
    struct lask_wbuf *b = &run->pub[job->plan->outputs[i]];
    lask__value_decode_items(L, b->p, b->len, 1, NULL);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  if (!profile) return 1;
  push_profile(L, run);
  return 2;
}

void lask__engine_register(lua_State *L) {
  if (luaL_newmetatable(L, POOL_MT)) {
    lua_pushcfunction(L, pool_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}
