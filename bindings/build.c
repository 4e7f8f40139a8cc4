/*
** build.c: from Delayed values to a job for the engine, in one call.
**
** The Delayed layout is fixed by lua/lask/delayed.lua: [1] key, [2] fn or
** nil, [3] args {n = ..} (a literal: {value}), [4] deps. Tasks are numbered
** as they are first reached from the outputs (breadth first over deps), so
** the walk needs no recursion. Each distinct function is encoded once and
** referred to by id; arguments are encoded with every Delayed written as a
** DEPREF to its task number.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "nd.h"
#include "value.h"

static int job_gc(lua_State *L) {
  struct job *j = luaL_checkudata(L, 1, JOB_MT);
  lask__plan_free(j->plan);
  lask__graph_free(j->g);
  for (uint32_t i = 0; i < j->nfuncs; i++) lask__wbuf_close(&j->funcs[i]);
  free(j->funcs);
  lask__wbuf_close(&j->keep);
  free(j->outputs);
  memset(j, 0, sizeof *j);
  return 0;
}

struct job *lask__check_job(lua_State *L, int idx) {
  struct job *j = luaL_checkudata(L, idx, JOB_MT);
  luaL_argcheck(L, j->plan != NULL, idx, "job already released");
  return j;
}

/* Walk state: stack indexes of the working tables. */
struct walk {
  lua_State *L;
  struct job *j;
  int mt;      /* the Delayed metatable */
  int map;     /* Delayed -> task number */
  int queue;   /* task number + 1 -> Delayed */
  int funcs;   /* function -> fid */
  uint32_t n;  /* tasks numbered so far */
  const char *session; /* prefix of numeric keys (lask.delayed.session) */
  struct lask_wbuf *pay; /* scratch payload, in a userdata with __gc */
};

/* Returns the task number of the Delayed on top (popped), numbering it
** and queueing it when new. */
static uint32_t number(struct walk *w) {
  lua_State *L = w->L;
  if (!lua_getmetatable(L, -1) || !lua_rawequal(L, -1, w->mt)) {
    luaL_error(L, "lask: expected a Delayed in the graph, got a %s",
               luaL_typename(L, -2));
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -1);
  lua_rawget(L, w->map);
  if (!lua_isnil(L, -1)) {
    uint32_t t = (uint32_t)lua_tointeger(L, -1);
    lua_pop(L, 2);
    return t;
  }
  lua_pop(L, 1);
  /* Two Delayed with the same string key (equal pure calls) are one task. */
  lua_rawgeti(L, -1, 1);
  if (lua_type(L, -1) == LUA_TSTRING) {
    lua_pushvalue(L, -1);
    lua_rawget(L, w->map);
    if (!lua_isnil(L, -1)) {
      lua_Integer t = lua_tointeger(L, -1);
      lua_pop(L, 2);
      lua_pushinteger(L, t);
      lua_rawset(L, w->map); /* this object -> that task */
      return (uint32_t)t;
    }
    lua_pop(L, 1);
    lua_pushinteger(L, w->n);
    lua_rawset(L, w->map); /* key -> task */
  } else {
    lua_pop(L, 1);
  }
  uint32_t t = w->n++;
  lua_pushvalue(L, -1);
  lua_pushinteger(L, t);
  lua_rawset(L, w->map);
  lua_rawseti(L, w->queue, (lua_Integer)t + 1);
  return t;
}

/* Returns the id (1-based) of the function on top (popped), encoding it
** the first time it is met. */
static uint32_t function_id(struct walk *w) {
  lua_State *L = w->L;
  lua_pushvalue(L, -1);
  lua_rawget(L, w->funcs);
  if (!lua_isnil(L, -1)) {
    uint32_t f = (uint32_t)lua_tointeger(L, -1);
    lua_pop(L, 2);
    return f;
  }
  lua_pop(L, 1);
  struct job *j = w->j;
  if ((j->nfuncs & (j->nfuncs - 1)) == 0) { /* grow at powers of two */
    size_t cap = j->nfuncs ? (size_t)j->nfuncs * 2 : 4;
    struct lask_wbuf *f = realloc(j->funcs, cap * sizeof *f);
    if (f == NULL) luaL_error(L, "lask: out of memory building the graph");
    j->funcs = f;
  }
  lask__wbuf_init(&j->funcs[j->nfuncs]);
  uint32_t f = ++j->nfuncs;
  lask__value_encode(L, -1, &j->funcs[f - 1]);
  lua_pushinteger(L, f);
  lua_rawset(L, w->funcs);
  return f;
}

/* Encodes the payload of the Delayed at 'd' into w->pay. */
static void encode_payload(struct walk *w, int d) {
  lua_State *L = w->L;
  struct lask_placeholders ph = {w->mt, w->map, 0};
  w->pay->len = 0;
  if (lask__wbuf_reserve(w->pay, 20) != 0) {
    luaL_error(L, "lask: out of memory building the graph");
  }
  lua_rawgeti(L, d, 2);
  lua_rawgeti(L, d, 3);
  int args = lua_gettop(L);
  if (!lua_istable(L, args)) luaL_error(L, "lask: a Delayed without args");
  if (lua_isnil(L, args - 1)) { /* a literal */
    lask__put_varint(w->pay, 0);
    lask__put_varint(w->pay, 1);
    lua_rawgeti(L, args, 1);
    lask__value_encode_items(L, -1, 1, w->pay, &ph);
    lua_settop(L, args - 2);
    return;
  }
  lua_pushvalue(L, args - 1);
  uint32_t fid = function_id(w);
  lua_getfield(L, args, "n");
  int nargs = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  luaL_checkstack(L, nargs + 4, "lask: too many task arguments");
  lask__put_varint(w->pay, fid);
  lask__put_varint(w->pay, (uint64_t)nargs);
  for (int i = 1; i <= nargs; i++) lua_rawgeti(L, args, i);
  lask__value_encode_items(L, args + 1, nargs, w->pay, &ph);
  lua_settop(L, args - 2);
}

/* Returns the key of the Delayed at 'd' (pushing a string, or formatting
** into 'buf'): a string key as it is; a numeric one as name-session<n>,
** the same text lask.delayed.key makes. */
static const char *task_key(struct walk *w, int d, char *buf, size_t size,
                            size_t *len) {
  lua_State *L = w->L;
  lua_rawgeti(L, d, 1);
  if (lua_type(L, -1) == LUA_TSTRING) return lua_tolstring(L, -1, len);
  if (lua_type(L, -1) != LUA_TNUMBER) {
    luaL_error(L, "lask: a Delayed without a key");
  }
  lua_Number num = lua_tonumber(L, -1);
  unsigned long long n = num > 0 ? (unsigned long long)num : 0;
  lua_rawgeti(L, d, 5);
  size_t nlen, slen = strlen(w->session);
  const char *name = lua_tolstring(L, -1, &nlen);
  if (name == NULL) name = "task", nlen = 4;
  if (nlen + slen + 22 > size) { /* a long name: let Lua build it */
    lua_pushfstring(L, "%s-%s%s", name, w->session, lua_tostring(L, -2));
    return lua_tolstring(L, -1, len);
  }
  /* name-session<n>, as lask.delayed.key makes it; no printf per task */
  char digits[24], *p = digits + sizeof digits;
  do {
    *--p = (char)('0' + n % 10);
    n /= 10;
  } while (n > 0);
  size_t ndig = (size_t)(digits + sizeof digits - p);
  memcpy(buf, name, nlen);
  buf[nlen] = '-';
  memcpy(buf + nlen + 1, w->session, slen);
  memcpy(buf + nlen + 1 + slen, p, ndig);
  *len = nlen + 1 + slen + ndig;
  return buf;
}

/* Adds the task numbered 't' (its Delayed at 'd') to the graph. */
static void add_task(struct walk *w, uint32_t t, int d) {
  lua_State *L = w->L;
  uint32_t stackdeps[8], *deps = stackdeps;
  lua_rawgeti(L, d, 4);
  int dl = lua_gettop(L);
  uint32_t ndeps = lua_istable(L, dl) ? (uint32_t)lua_rawlen(L, dl) : 0;
  if (ndeps > 8) {
    deps = lua_newuserdatauv(L, ndeps * sizeof *deps, 0);
  }
  for (uint32_t i = 0; i < ndeps; i++) {
    lua_rawgeti(L, dl, (lua_Integer)i + 1);
    deps[i] = number(w);
  }
  encode_payload(w, d);
  char buf[128];
  size_t klen;
  const char *key = task_key(w, d, buf, sizeof buf, &klen);
  int rc = lask__graph_add(w->j->g, key, klen, deps, ndeps, w->pay->p,
                           w->pay->len);
  /* The job keeps the arrays the payload names by address. */
  for (uint32_t i = 0; i < w->pay->nrefs; i++) {
    if (rc == 0) rc = lask__wbuf_add_ref(&w->j->keep, w->pay->refs[i]);
    else lask__buf_release(w->pay->refs[i]);
  }
  w->pay->nrefs = 0;
  if (rc != 0) lask__raise_rc(L, rc, "building the graph");
  lua_settop(L, dl - 1);
  (void)t;
}


/* Raises the error of a failed plan, naming the task involved. */
static int plan_error(lua_State *L, struct job *j, int rc, uint32_t bad) {
  size_t n = 0;
  const char *key = bad < j->g->ntasks ? lask__graph_key(j->g, bad, &n) : "";
  lua_pushlstring(L, key, n);
  if (rc == LASK_ECYCLE) {
    return luaL_error(L, "lask: the graph has a cycle through task '%s'",
                      lua_tostring(L, -1));
  }
  if (rc == LASK_EINVAL) {
    return luaL_error(L, "lask: task '%s' depends on a task missing from "
                      "the graph", lua_tostring(L, -1));
  }
  return lask__raise_rc(L, rc, "planning the graph");
}

int lask__build_job(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  int nofuse = lua_toboolean(L, 3);
  const char *session = luaL_optstring(L, 4, "");
  lua_settop(L, 4);
  struct job *j = lua_newuserdatauv(L, sizeof *j, 0);
  memset(j, 0, sizeof *j);
  luaL_setmetatable(L, JOB_MT);
  int jobidx = lua_gettop(L);
  j->g = lask__graph_new();
  uint32_t nout = (uint32_t)lua_rawlen(L, 1);
  j->outputs = malloc((nout ? nout : 1) * sizeof *j->outputs);
  if (j->g == NULL || j->outputs == NULL) {
    return luaL_error(L, "lask: out of memory building the graph");
  }
  j->noutputs = nout;
  struct walk w;
  w.L = L;
  w.j = j;
  w.mt = 2;
  w.n = 0;
  w.session = session;
  w.pay = lask__new_boxed_wbuf(L); /* freed even if the walk raises */
  lua_createtable(L, 0, (int)nout); /* at least the outputs: fewer rehashes */
  w.map = lua_gettop(L);
  lua_createtable(L, (int)nout, 0);
  w.queue = lua_gettop(L);
  lua_newtable(L);
  w.funcs = lua_gettop(L);
  for (uint32_t i = 0; i < nout; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i + 1);
    j->outputs[i] = number(&w);
  }
  for (uint32_t t = 0; t < w.n; t++) {
    lua_rawgeti(L, w.queue, (lua_Integer)t + 1);
    add_task(&w, t, lua_gettop(L));
    lua_pop(L, 1);
  }
  uint32_t bad = 0;
  int rc = lask__plan_new(j->g, j->outputs, nout,
                          nofuse ? LASK_PLAN_NOFUSE : 0, &j->plan, &bad);
  if (rc != 0) plan_error(L, j, rc, bad);
  lua_settop(L, jobidx);
  return 1;
}

/* lask.core.job_size(job) -> the number of units the job will run. */
int lask__job_size(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lask__check_job(L, 1)->plan->nunits);
  return 1;
}

void lask__job_register(lua_State *L) {
  if (luaL_newmetatable(L, JOB_MT)) {
    lua_pushcfunction(L, job_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}
