/*
** core.c: the lask.core C module: the value codec exposed to Lua, and a
** one-shot "call this function in a fresh Lua state on another OS thread"
** primitive that proves values travel between states and threads.
**
** Per-state context (STYLE 11): a userdata holding a scratch output buffer,
** passed to every function as upvalue 1; its __gc frees the buffer. The
** scratch buffer may be reused without locking because a Lua state runs on
** one thread and encoding never calls back into Lua.
*/
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <uv.h>

#include "engine.h"
#include "ndarray.h"
#include "state.h"
#include "rank.h"
#include "pattern.h"
#include "strings.h"
#include "textio.h"
#include "value.h"

#define CTX_MT "lask.context"
#define TCALL_MT "lask.thread_call"
/* A scratch buffer grown past this is released after use. Below it, the
** buffer is kept: touching fresh pages costs more than encoding into them
** (ARCHITECTURE.md, Memory). */
#define SCRATCH_KEEP (32u << 20)

struct ctx {
  struct lask_wbuf scratch;
  int busy; /* the scratch buffer is in use by an encoding */
};

/* An encoding that runs while the scratch buffer is busy (a __gc
** finalizer or a hook may call lask.serialize in the middle of another
** encoding) gets a private buffer from lask__new_boxed_wbuf. */

/* Encodes the values at idx.. with enc(), into the scratch buffer or, if
** that is busy, a private one; pushes the result as a string (or, with
** 'hash', its lask_hash64 in hex). */
static int encode_to_string(lua_State *L, int idx, int count,
                            const struct lask_placeholders *ph, int hash) {
  struct ctx *c = lua_touserdata(L, lua_upvalueindex(1));
  int reentered = c->busy;
  struct lask_wbuf *w = reentered ? lask__new_boxed_wbuf(L) : &c->scratch;
  c->busy = 1;
  w->len = 0;
  if (ph == NULL && count == 1) {
    lask__value_encode(L, idx, w); /* on error 'busy' stays set: harmless,
                                   ** the next call just uses its own box */
  } else {
    lask__value_encode_items(L, idx, count, w, ph);
  }
  if (hash) {
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)lask_hash64(
             w->p, w->len, 0x6c61736bu));
    lua_pushlstring(L, hex, 16);
  } else {
    lua_pushlstring(L, (const char *)w->p, w->len);
  }
  if (!reentered) {
    c->busy = 0;
    if (c->scratch.cap > SCRATCH_KEEP) lask__wbuf_close(&c->scratch);
  }
  return 1;
}


static int ctx_gc(lua_State *L) {
  struct ctx *c = luaL_checkudata(L, 1, CTX_MT);
  lask__wbuf_close(&c->scratch);
  return 0;
}

/* lask.serialize(v) -> string */
static int l_serialize(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  return encode_to_string(L, 1, 1, NULL, 0);
}

/* lask.deserialize(s [, {code = false}]) -> v */
static int l_deserialize(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  int opts = 0;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "code");
    if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
      opts |= LASK_DEC_NOCODE;
    }
    lua_pop(L, 1);
  }
  lask__value_decode(L, s, n, opts);
  return 1;
}

/* lask.core.hash(s [, seed]) -> 16 hex digits of lask_hash64 */
static int l_hash(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  uint64_t seed = (uint64_t)luaL_optinteger(L, 2, 0);
  char hex[17];
  snprintf(hex, sizeof hex, "%016llx",
           (unsigned long long)lask_hash64(s, n, seed));
  lua_pushlstring(L, hex, 16);
  return 1;
}

/* lask.core.task_hash(fn, args, delayed_mt, depkeys) -> 16 hex digits: the
** hash of the function's encoding (bytecode and upvalue values), the
** arguments with every Delayed written as its key, and the keys of the
** dependencies. Equal calls of pure functions get equal keys. */
static int l_task_hash(lua_State *L) {
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 4);
  lua_createtable(L, 3, 0);
  for (int i = 1; i <= 3; i++) {
    lua_pushvalue(L, i == 3 ? 4 : i);
    lua_rawseti(L, -2, i);
  }
  struct lask_placeholders ph = {3, 0, 1};
  return encode_to_string(L, lua_gettop(L), 1, &ph, 1);
}

/* lask.core.isatty(file) -> whether the Lua file handle is a terminal. */
static int l_isatty(lua_State *L) {
  luaL_Stream *s = luaL_checkudata(L, 1, LUA_FILEHANDLE);
  lua_pushboolean(L, s->f != NULL && isatty(fileno(s->f)));
  return 1;
}

/* lask.core.now() -> seconds on a monotonic clock (for timing). */
static int l_now(lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

/* lask.core.cpu_count() -> the number of cores this process may use. */
static int l_cpu_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_available_parallelism());
  return 1;
}

/* -------------------------------------------------------------------------
** call_in_thread
** ---------------------------------------------------------------------- */

/* A call to run on another thread. Lives in a userdata of the caller's
** state; the worker thread writes 'out', 'failed' and 'err' while the caller
** is blocked in uv_thread_join, so no field needs a lock. */
struct tcall {
  struct lask_wbuf in;  /* encoded {fn, n, args...}; owned by the job */
  struct lask_wbuf out; /* encoded {n, results...} or the error text */
  char *path;           /* the caller's package.path (malloc'd) */
  char *cpath;          /* the caller's package.cpath (malloc'd) */
  int failed;           /* 1: 'out' holds an error message, not a value */
};

static int job_gc(lua_State *L) {
  struct tcall *j = luaL_checkudata(L, 1, TCALL_MT);
  lask__wbuf_close(&j->in);
  lask__wbuf_close(&j->out);
  free(j->path);
  free(j->cpath);
  j->path = j->cpath = NULL;
  return 0;
}

/* In the worker state: decode the call, run it, encode {n, results...}. */
static int run_job(lua_State *L) {
  struct tcall *j = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lask__value_decode(L, j->in.p, j->in.len, 0);
  int pack = lua_gettop(L);
  lua_pushcfunction(L, lask__task_traceback);
  lua_rawgeti(L, pack, 1);
  lua_rawgeti(L, pack, 2);
  int nargs = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, nargs + 8, "call_in_thread");
  for (int i = 1; i <= nargs; i++) lua_rawgeti(L, pack, i + 2);
  if (lua_pcall(L, nargs, LUA_MULTRET, pack + 1) != 0) return lua_error(L);
  int nres = lua_gettop(L) - (pack + 1);
  lua_createtable(L, nres + 1, 0);
  lua_pushinteger(L, nres);
  lua_rawseti(L, -2, 1);
  for (int i = 1; i <= nres; i++) {
    lua_pushvalue(L, pack + 1 + i);
    lua_rawseti(L, -2, i + 1);
  }
  lask__value_encode(L, -1, &j->out);
  return 0;
}

static void set_failure(struct tcall *j, const char *msg) {
  j->failed = 1;
  j->out.len = 0;
  if (lask__put_bytes(&j->out, msg, strlen(msg)) != 0) j->out.len = 0;
}

static void thread_main(void *arg) {
  struct tcall *j = arg;
  lua_State *L = lask__state_new(j->path, j->cpath);
  if (L == NULL) {
    set_failure(j, "out of memory creating a Lua state");
    return;
  }
  lua_pushcfunction(L, run_job);
  lua_pushlightuserdata(L, j);
  if (lua_pcall(L, 1, 0, 0) != 0) {
    const char *msg = lua_tostring(L, -1);
    set_failure(j, msg ? msg : "error object is not a string");
  }
  lua_close(L);
}

static char *dup_package_field(lua_State *L, const char *field) {
  lua_getglobal(L, "package");
  char *s = NULL;
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, field);
    const char *v = lua_tostring(L, -1);
    if (v != NULL) s = strdup(v);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return s;
}

/* Pushes a new job for calling the function at 'fn' with the 'nargs'
** values that follow it, encoded and ready to hand to a thread. */
static struct tcall *new_tcall(lua_State *L, int fn, int nargs) {
  struct tcall *j = lua_newuserdatauv(L, sizeof *j, 0);
  memset(j, 0, sizeof *j);
  luaL_setmetatable(L, TCALL_MT);
  lua_createtable(L, nargs + 2, 0);
  lua_pushvalue(L, fn);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, nargs);
  lua_rawseti(L, -2, 2);
  for (int i = 1; i <= nargs; i++) {
    lua_pushvalue(L, fn + i);
    lua_rawseti(L, -2, i + 2);
  }
  lask__value_encode(L, -1, &j->in);
  lua_pop(L, 1);
  j->path = dup_package_field(L, "path");
  j->cpath = dup_package_field(L, "cpath");
  return j;
}

/* After the job's thread has been joined: raises its error, or pushes its
** results and returns how many. */
static int push_job_results(lua_State *L, struct tcall *j) {
  if (j->failed) {
    lua_pushlstring(L, (const char *)j->out.p, j->out.len);
    return luaL_error(L, "lask: in thread: %s", lua_tostring(L, -1));
  }
  lask__value_decode(L, j->out.p, j->out.len, 0);
  int pack = lua_gettop(L);
  lua_rawgeti(L, pack, 1);
  int nres = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, nres, "call_in_thread");
  for (int i = 1; i <= nres; i++) lua_rawgeti(L, pack, i + 1);
  lua_remove(L, pack);
  return nres;
}

/* Starts a thread per job and waits for all of them. Raises if a thread
** cannot be started (after joining those that were). */
static void run_jobs(lua_State *L, struct tcall **jobs, int n) {
  uv_thread_t *tids = lua_newuserdatauv(L, sizeof *tids * (size_t)n, 0);
  int started = 0, rc = 0;
  while (started < n && rc == 0) {
    rc = uv_thread_create(&tids[started], thread_main, jobs[started]);
    if (rc == 0) started++;
  }
  for (int i = 0; i < started; i++) uv_thread_join(&tids[i]);
  if (rc != 0) {
    luaL_error(L, "lask: cannot start a thread: %s", uv_strerror(rc));
  }
  lua_pop(L, 1);
}

/* lask.core.call_in_thread(fn, ...) -> fn(...) run in a new Lua state on a
** new OS thread; arguments and results travel serialized both ways. */
static int l_call_in_thread(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  struct tcall *j = new_tcall(L, 1, lua_gettop(L) - 1);
  run_jobs(L, &j, 1);
  return push_job_results(L, j);
}

/* lask.core.call_in_threads({{fn, args...}, ...}) -> {{results...}, ...}:
** every call at once, each in its own state on its own thread. */
static int l_call_in_threads(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)lua_rawlen(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 256, 1, "between 1 and 256 calls");
  struct tcall **jobs = lua_newuserdatauv(L, sizeof *jobs * (size_t)n, 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    luaL_argcheck(L, lua_istable(L, -1), 1, "each call is {fn, args...}");
    int call = lua_gettop(L);
    int nargs = (int)lua_rawlen(L, call) - 1;
    luaL_checkstack(L, nargs + 8, "call_in_threads");
    for (int k = 1; k <= nargs + 1; k++) lua_rawgeti(L, call, k);
    luaL_argcheck(L, lua_isfunction(L, call + 1), 1, "each call is {fn, ...}");
    jobs[i] = new_tcall(L, call + 1, nargs);
    lua_replace(L, call); /* keep the job alive, drop the rest */
    lua_settop(L, call);
  }
  run_jobs(L, jobs, n);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    int top = lua_gettop(L);
    int nres = push_job_results(L, jobs[i]);
    lua_createtable(L, nres, 0);
    lua_insert(L, top + 1);
    for (int k = nres; k >= 1; k--) lua_rawseti(L, top + 1, k);
    lua_rawseti(L, top, i + 1);
  }
  return 1;
}

static const luaL_Reg core_funcs[] = {
  {"serialize", l_serialize},
  {"deserialize", l_deserialize},
  {"register_metatable", lask__value_register_metatable},
  {"hash", l_hash},
  {"task_hash", l_task_hash},
  {"cpu_count", l_cpu_count},
  {"now", l_now},
  {"task_traceback", lask__task_traceback},
  {"isatty", l_isatty},
  {"build_job", lask__build_job},
  {"run_job", lask__run_job},
  {"job_size", lask__job_size},
  {"call_in_thread", l_call_in_thread},
  {"call_in_threads", l_call_in_threads},
  {NULL, NULL}
};

LASK_API int luaopen_lask_core(lua_State *L) {
  lask__job_register(L);
  lask__engine_register(L);
  if (luaL_newmetatable(L, TCALL_MT)) {
    lua_pushcfunction(L, job_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlibtable(L, core_funcs);
  struct ctx *c = lua_newuserdatauv(L, sizeof *c, 0);
  lask__wbuf_init(&c->scratch);
  c->busy = 0;
  if (luaL_newmetatable(L, CTX_MT)) {
    lua_pushcfunction(L, ctx_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  luaL_setfuncs(L, core_funcs, 1);
  lask__strings_register(L);
  lask__pattern_register(L);
  lask__rank_register(L);
  lask__textio_register(L);
  lask__nd_register(L);
  lask__nd_openlib(L);
  lua_setfield(L, -2, "nd");
  lua_pushstring(L, LASK_VERSION_STRING);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, LASK_FLAVOUR_NAME);
  lua_setfield(L, -2, "flavour");
  return 1;
}
