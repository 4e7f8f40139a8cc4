/*
** ndarray.c: the lask.ndarray userdata and lask.core.nd, the C half of
** lua/lask/ndarray.lua (which adds operators, broadcasting rules, dtype
** promotion and 1-based indexing on top of these 0-based primitives).
*/
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nd_iter.h"
#include "ndarray.h"
#include "value.h"

_Thread_local int lask__in_executor;

static const char *const dtype_names[] = {"float64", "float32", "int64",
                                          "int32", "uint8", "bool", NULL};

static const char key_methods = 'm';

/* ---------------------------------------------------------------- basics */

struct lask_nd *lask__nd_test(lua_State *L, int idx) {
  return luaL_testudata(L, idx, LASK_ND_MT);
}

static struct lask_nd *check_nd(lua_State *L, int idx) {
  struct lask_nd *a = luaL_testudata(L, idx, LASK_ND_MT);
  if (!a || !a->buf) {
    lask__fail(L, "lask: argument %d: expected an ndarray, got %s", idx,
               a ? "a released ndarray" : luaL_typename(L, idx));
  }
  return a;
}

static int check_dtype(lua_State *L, int idx) {
  return luaL_checkoption(L, idx, NULL, dtype_names);
}

/* Loads lask.ndarray (the Lua methods and operators) once per state, the
** first time an array is made in it: a task's Lua state may meet arrays
** before any code in it required the module. */
static void ensure_methods(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_methods);
  int have = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (have) return;
  lua_pushboolean(L, 0); /* loading: no second attempt from inside */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_methods);
  lua_getglobal(L, "require");
  if (lua_isfunction(L, -1)) {
    lua_pushliteral(L, "lask.ndarray");
    if (lua_pcall(L, 1, 0, 0) != 0) lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
  }
}

struct lask_nd *lask__nd_push(lua_State *L) {
  lask__nd_register(L);
  ensure_methods(L);
  struct lask_nd *a = lua_newuserdatauv(L, sizeof *a, 0);
  memset(a, 0, offsetof(struct lask_nd, shape));
  a->buf = NULL;
  luaL_setmetatable(L, LASK_ND_MT);
  return a;
}

/* Raises for a failed runtime call. */
static int nd_fail(lua_State *L, int rc, const char *what, const char *why) {
  if (rc == LASK_ENOMEM) return lask__fail(L, "lask: %s: out of memory", what);
  return lask__fail(L, "lask: %s: %s", what, why ? why : lask_strerror(rc));
}

/* Lua's collector sees only the userdata's few bytes, not the buffer
** behind it, so every new or received buffer of 64 KB or more is
** accounted for here:
** - a new buffer asks for a collector step worth its size, so that dead
**   arrays go back to the pool about as fast as new ones are made (and the
**   next one reuses a buffer still in the cache); so does a received one
**   (a result coming back) outside executors;
** - a buffer an executor receives (a reference from another state) is
**   counted instead, and a step worth the count is taken every
**   lask__buf_gc_every() bytes (its share of the pool's limit): in an
**   executor's incremental collector a step worth one 8 MB block was a pass
**   over the whole Lua heap per block (0.14 ms, more than reducing the
**   block), and what it frees is only references;
** - on Lua 5.4, outside executors (whose collectors are incremental), a
**   state whose live buffer bytes grew by lask__buf_gc_every() also
**   collects in full once it has made or received that many bytes and as
**   many as its Lua heap holds (what a full collection costs: so at most a
**   constant per byte). The generational collector lua5.4 and lask's
**   interpreter use needs it: its steps are young collections, and a
**   temporary that lived across the making of the next array
**   (N.sin(x) + 1) is old when it dies, freed only by a full collection,
**   which the Lua heap alone seldom asks for (400 rounds of that on 8 MB
**   arrays held up to 968 MB). An incremental collector's steps free old
**   and young alike, so LuaJIT and executors pay for no full collection
**   (one every heap's worth of 32 MB results beside a 2e6-table heap made
**   100 computes 6.5 s instead of 4.1 s on LuaJIT). */
static const char key_gcbytes = 'g';

struct gcacct {
  size_t since;     /* bytes made or received since the last check */
  size_t live_base; /* lask__buf_live() after the last full collection */
};

static int gcacct_gc(lua_State *L) {
  lask__buf_gc_states(-1);
  (void)L;
  return 0;
}

static void gc_step(lua_State *L, size_t nbytes) {
  size_t kb = nbytes >> 10;
  lua_gc(L, LUA_GCSTEP, kb > INT_MAX ? INT_MAX : (int)kb);
}

static void account(lua_State *L, size_t nbytes, int received) {
  if (nbytes < 65536) return;
  int counted = received && lask__in_executor;
  if (!counted) gc_step(L, nbytes);
#if LUA_VERSION_NUM < 504
  if (!counted) return;
#endif
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_gcbytes);
  struct gcacct *c = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (c == NULL) {
    c = lua_newuserdata(L, sizeof *c);
    c->since = 0;
    c->live_base = lask__buf_live();
    lua_newtable(L);
    lua_pushcfunction(L, gcacct_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_gcbytes);
    lask__buf_gc_states(1);
  }
  c->since += nbytes;
  size_t every = lask__buf_gc_every();
  if (c->since < every) return;
  if (lask__in_executor) { /* incremental: a step frees old and young */
    gc_step(L, c->since);
    c->since = 0;
    return;
  }
  size_t heap = (size_t)lua_gc(L, LUA_GCCOUNT, 0) << 10;
  if (c->since < heap) return;
  c->since = 0;
  size_t live = lask__buf_live();
  if (live < c->live_base + every) { /* nothing piles up */
    if (live < c->live_base) c->live_base = live;
    return;
  }
  lua_gc(L, LUA_GCCOLLECT, 0);
  c->live_base = lask__buf_live();
}

/* Pushes a new array of that dtype and shape. */
static struct lask_nd *push_new(lua_State *L, int dtype, int ndim,
                                const int64_t *shape, int zero) {
  struct lask_nd *a = lask__nd_push(L);
  int rc = lask__nd_alloc(a, dtype, ndim, shape, zero);
  if (rc) nd_fail(L, rc, "ndarray", "shape too large or invalid");
  account(L, a->buf->nbytes, 0);
  return a;
}

/* Reads a shape table at 'idx' (non-negative integers). */
static int check_shape(lua_State *L, int idx, int64_t *shape) {
  luaL_checktype(L, idx, LUA_TTABLE);
  int n = (int)lua_rawlen(L, idx);
  if (n > LASK_ND_MAXDIM)
    lask__fail(L, "lask: a shape has at most %d dimensions", LASK_ND_MAXDIM);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    lua_Number v = lua_tonumber(L, -1);
    if (!lua_isnumber(L, -1) || v < 0 || v != floor(v) || v > 0x1p50)
      lask__fail(L, "lask: shape entry %d must be a non-negative integer",
                 i + 1);
    shape[i] = (int64_t)v;
    lua_pop(L, 1);
  }
  return n;
}

static void push_shape(lua_State *L, int n, const int64_t *shape) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Pushes the element at p as a Lua value. */
static void push_elem(lua_State *L, const char *p, int dt) {
  switch (dt) {
  case LASK_DT_F64: case LASK_DT_F32:
    lua_pushnumber(L, nd_load_f(p, dt));
    break;
  case LASK_DT_BOOL:
    lua_pushboolean(L, *(const uint8_t *)p != 0);
    break;
  default:
#if LASK_HAS_INTEGERS
    lua_pushinteger(L, (lua_Integer)nd_load_i(p, dt));
#else
    lua_pushnumber(L, (lua_Number)nd_load_i(p, dt));
#endif
  }
}

/* Stores the Lua value at idx into p. */
static void set_elem(lua_State *L, int idx, char *p, int dt) {
  if (dt == LASK_DT_BOOL) {
    int t = lua_type(L, idx) == LUA_TNUMBER ? lua_tonumber(L, idx) != 0
                                            : lua_toboolean(L, idx);
    *(uint8_t *)p = (uint8_t)t;
    return;
  }
  lua_Number v = 0;
  if (lua_type(L, idx) == LUA_TBOOLEAN) v = lua_toboolean(L, idx);
  else if (lua_type(L, idx) == LUA_TNUMBER) v = lua_tonumber(L, idx);
  else lask__fail(L, "lask: ndarray values must be numbers or booleans, got %s",
                  luaL_typename(L, idx));
  switch (dt) {
  case LASK_DT_F64: memcpy(p, &v, 8); break;
  case LASK_DT_F32: { float f = (float)v; memcpy(p, &f, 4); break; }
  default: {
    int64_t i;
#if LASK_HAS_INTEGERS
    if (lua_isinteger(L, idx)) i = (int64_t)lua_tointeger(L, idx);
    else
#endif
    i = (v >= -0x1p63 && v < 0x1p63) ? (int64_t)v : INT64_MIN;
    if (dt == LASK_DT_I64) memcpy(p, &i, 8);
    else if (dt == LASK_DT_I32) {
      int32_t j = (int32_t)(uint32_t)(uint64_t)i;
      memcpy(p, &j, 4);
    } else {
      *(uint8_t *)p = (uint8_t)(uint64_t)i;
    }
  }
  }
}

/* ------------------------------------------------------- the userdata */

static int nd_gc(lua_State *L) {
  struct lask_nd *a = lua_touserdata(L, 1);
  if (a->buf) lask__nd_clear(a);
  return 0;
}

static int nd_index(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1);
  size_t n;
  const char *k = lua_tolstring(L, 2, &n);
  if (k) {
    if (!strcmp(k, "shape")) {
      push_shape(L, a->ndim, a->shape);
      return 1;
    }
    if (!strcmp(k, "ndim")) {
      lua_pushinteger(L, a->ndim);
      return 1;
    }
    if (!strcmp(k, "dtype")) {
      lua_pushstring(L, dtype_names[a->dtype]);
      return 1;
    }
    if (!strcmp(k, "size")) {
      lua_pushinteger(L, (lua_Integer)lask__nd_size(a));
      return 1;
    }
    if (!strcmp(k, "itemsize")) {
      lua_pushinteger(L, lask__dtype_size(a->dtype));
      return 1;
    }
    if (!strcmp(k, "nbytes")) {
      lua_pushinteger(L, (lua_Integer)(lask__nd_size(a) *
                                       lask__dtype_size(a->dtype)));
      return 1;
    }
    if (!strcmp(k, "strides")) {
      push_shape(L, a->ndim, a->strides);
      return 1;
    }
    if (!strcmp(k, "offset")) { /* bytes from the buffer's start */
      lua_pushinteger(L, (lua_Integer)a->offset);
      return 1;
    }
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_methods);
  if (!lua_istable(L, -1)) return 0;
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* Byte address of the element at 1-based, possibly negative indexes
** idx..idx+ndim-1. */
static char *elem_at(lua_State *L, struct lask_nd *a, int idx) {
  int given = lua_gettop(L) - idx + 1;
  if (given < a->ndim)
    lask__fail(L, "lask: ndarray of %d dimensions needs %d indexes, got %d",
               a->ndim, a->ndim, given);
  char *p = lask__nd_data(a);
  for (int i = 0; i < a->ndim; i++) {
    lua_Number v = luaL_checknumber(L, idx + i);
    int64_t k = (int64_t)v;
    if ((lua_Number)k != v)
      lask__fail(L, "lask: index %d must be an integer", i + 1);
    int64_t d = a->shape[i];
    if (k < 0) k += d + 1;
    if (k < 1 || k > d)
      lask__fail(L, "lask: index %d out of range (axis %d has %d elements)",
                 (int)v, i + 1, (int)d);
    p += (k - 1) * a->strides[i];
  }
  return p;
}

static int nd_get(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1);
  push_elem(L, elem_at(L, a, 2), a->dtype);
  return 1;
}

/* An integer value at 'idx' must fit a uint8 or int32 dtype, as NumPy 2
** requires (it raises OverflowError; wrapping would be a silent wrong
** answer). Integer: a Lua 5.4 integer, or a whole number in LuaJIT. */
static void fits_or_fail(lua_State *L, int idx, int dt, const char *who) {
  if ((dt != LASK_DT_U8 && dt != LASK_DT_I32) ||
      lua_type(L, idx) != LUA_TNUMBER)
    return;
  lua_Number v = lua_tonumber(L, idx);
#if LASK_HAS_INTEGERS
  if (!lua_isinteger(L, idx)) return;
#else
  if (v != floor(v)) return;
#endif
  double lo = dt == LASK_DT_U8 ? 0 : -2147483648.0;
  double hi = dt == LASK_DT_U8 ? 255 : 2147483647.0;
  if (v < lo || v > hi)
    lask__fail(L, "lask.array: %s: %s does not fit %s (astype the array "
               "first)", who, lua_tostring(L, idx), dtype_names[dt]);
}

/* nd.check_fits(v, dtype, who): see fits_or_fail. */
static int nd_check_fits(lua_State *L) {
  int dt = check_dtype(L, 2);
  fits_or_fail(L, 1, dt, luaL_checkstring(L, 3));
  return 0;
}

static int nd_set(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1);
  int top = lua_gettop(L);
  if (top != a->ndim + 2)
    lask__fail(L, "lask: set takes %d indexes and a value", a->ndim);
  char *p = elem_at(L, a, 2);
  fits_or_fail(L, top, a->dtype, "set");
  set_elem(L, top, p, a->dtype);
  return 0;
}

static void totable_rec(lua_State *L, const struct lask_nd *a, int axis,
                        const char *p) {
  int64_t n = a->shape[axis];
  lua_createtable(L, n < 0x7fffffff ? (int)n : 0, 0);
  for (int64_t i = 0; i < n; i++) {
    const char *q = p + i * a->strides[axis];
    if (axis == a->ndim - 1) push_elem(L, q, a->dtype);
    else totable_rec(L, a, axis + 1, q);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static int nd_totable(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1);
  if (a->ndim == 0) {
    push_elem(L, lask__nd_data(a), a->dtype);
    return 1;
  }
  luaL_checkstack(L, a->ndim + 8, "ndarray too deep");
  totable_rec(L, a, 0, lask__nd_data(a));
  return 1;
}

/* nd.flat(a) -> a flat list of the values in C order. */
static int nd_flat(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1);
  int64_t n = lask__nd_size(a);
  int64_t idx[LASK_ND_MAXDIM] = {0};
  lua_createtable(L, n < 0x7fffffff ? (int)n : 0, 0);
  const char *p = lask__nd_data(a);
  for (int64_t k = 0; k < n; k++) {
    push_elem(L, p, a->dtype);
    lua_rawseti(L, -2, (lua_Integer)k + 1);
    for (int d = a->ndim - 1; d >= 0; d--) {
      p += a->strides[d];
      if (++idx[d] < a->shape[d]) break;
      p -= a->strides[d] * a->shape[d];
      idx[d] = 0;
    }
  }
  return 1;
}

static int nd_ptr(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1);
  if (!lask__nd_is_contig(a))
    lask__fail(L, "lask: ptr() needs a contiguous array (this one is a "
               "strided view): take a:copy() first");
  lua_pushlightuserdata(L, lask__nd_data(a));
  return 1;
}

static int nd_is_contig_l(lua_State *L) {
  lua_pushboolean(L, lask__nd_is_contig(check_nd(L, 1)));
  return 1;
}

/* -------------------------------------------------------- constructors */

/* nd.new(dtype, shape [, fill]): zeros, or every element 'fill'. */
static int nd_new(lua_State *L) {
  int dt = check_dtype(L, 1);
  int64_t shape[LASK_ND_MAXDIM];
  int n = check_shape(L, 2, shape);
  int fill = !lua_isnoneornil(L, 3);
  struct lask_nd *a = push_new(L, dt, n, shape, !fill);
  if (fill) {
    int64_t cnt = lask__nd_size(a);
    int isz = lask__dtype_size(dt);
    char *p = lask__nd_data(a);
    if (cnt > 0) {
      set_elem(L, 3, p, dt);
      for (int64_t k = 1; k < cnt; k++) memcpy(p + k * isz, p, (size_t)isz);
    }
  }
  return 1;
}

/* nd.from_flat(dtype, shape, list): the list's values in C order. */
static int nd_from_flat(lua_State *L) {
  int dt = check_dtype(L, 1);
  int64_t shape[LASK_ND_MAXDIM];
  int n = check_shape(L, 2, shape);
  luaL_checktype(L, 3, LUA_TTABLE);
  struct lask_nd *a = push_new(L, dt, n, shape, 0);
  int64_t cnt = lask__nd_size(a);
  if ((int64_t)lua_rawlen(L, 3) != cnt)
    lask__fail(L, "lask: from_flat: %d values for a shape of %d elements",
               (int)lua_rawlen(L, 3), (int)cnt);
  int isz = lask__dtype_size(dt);
  char *p = lask__nd_data(a);
  for (int64_t k = 0; k < cnt; k++) {
    lua_rawgeti(L, 3, k + 1);
    set_elem(L, -1, p + k * isz, dt);
    lua_pop(L, 1);
  }
  return 1;
}

/* nd.arange(dtype, n, start, step): start + i * step, i = 0..n-1. */
static int nd_arange(lua_State *L) {
  int dt = check_dtype(L, 1);
  lua_Number nn = luaL_checknumber(L, 2);
  if (nn < 0 || nn > 0x1p50 || nn != floor(nn))
    lask__fail(L, "lask: arange: bad length");
  int64_t shape[1] = {(int64_t)nn};
  struct lask_nd *a = push_new(L, dt, 1, shape, 0);
  char *p = lask__nd_data(a);
  int isz = lask__dtype_size(dt);
  if (nd_is_float(dt)) {
    double start = luaL_checknumber(L, 3), step = luaL_checknumber(L, 4);
    for (int64_t i = 0; i < shape[0]; i++) {
      double v = start + (double)i * step;
      if (dt == LASK_DT_F64) memcpy(p + i * 8, &v, 8);
      else {
        float f = (float)v;
        memcpy(p + i * 4, &f, 4);
      }
    }
  } else {
    lua_Number s0 = luaL_checknumber(L, 3), s1 = luaL_checknumber(L, 4);
    int64_t start = (int64_t)s0, step = (int64_t)s1;
    int64_t v[1];
    for (int64_t i = 0; i < shape[0]; i++) {
      v[0] = (int64_t)((uint64_t)start + (uint64_t)i * (uint64_t)step);
      lask__nd_store_block(LASK_LANE_I, dt, p + i * isz, isz, 1, v);
    }
  }
  return 1;
}

/* nd.random(shape, seed, stream, kind): float64, kind 0 uniform, 1 normal */
static int nd_random(lua_State *L) {
  int64_t shape[LASK_ND_MAXDIM];
  int n = check_shape(L, 1, shape);
  uint64_t seed = (uint64_t)luaL_checknumber(L, 2);
  uint64_t stream = (uint64_t)luaL_checknumber(L, 3);
  int kind = (int)luaL_checkinteger(L, 4);
  struct lask_nd *a = push_new(L, LASK_DT_F64, n, shape, 0);
  lask__nd_random(a, seed, stream, kind);
  return 1;
}

/* ---------------------------------------------------------------- views */

/* Reads t[i] (t at stack index 'idx') as an integer in [-2^50, 2^50];
** returns 0 if it is not one (no conversion of an out-of-range double). */
static int int_at(lua_State *L, int idx, int i, int64_t *out) {
  lua_rawgeti(L, idx, i);
  int isnum = lua_type(L, -1) == LUA_TNUMBER;
  lua_Number v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (!isnum || !(v >= -0x1p50 && v <= 0x1p50) || v != floor(v)) return 0;
  *out = (int64_t)v;
  return 1;
}

/* nd.view(a, starts, steps, counts): per axis, 'count' elements from
** 0-based 'start' every 'step' (negative allowed); the caller has checked
** them (lua/lask/ndarray.lua normalizes slices). Checked again here. */
static int nd_view(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  struct lask_nd *v = lask__nd_push(L);
  *v = *a;
  v->buf = NULL;
  for (int i = 0; i < a->ndim; i++) {
    int64_t start = 0, step = 0, cnt = 0;
    int64_t d = a->shape[i];
    if (!int_at(L, 2, i + 1, &start) || !int_at(L, 3, i + 1, &step) ||
        !int_at(L, 4, i + 1, &cnt) || (cnt > 1 && (step > d || -step > d)))
      lask__fail(L, "lask: view: bad start, step or count on axis %d", i + 1);
    if (cnt <= 1 && step != 0) step = 1; /* one element: no stride needed */
    int ok = cnt >= 0 && step != 0 &&
             (cnt == 0 || (start >= 0 && start < d &&
                           start + (cnt - 1) * step >= 0 &&
                           start + (cnt - 1) * step < d));
    if (!ok) lask__fail(L, "lask: view out of range on axis %d", i + 1);
    if (cnt > 0) v->offset += start * a->strides[i];
    v->shape[i] = cnt;
    v->strides[i] = a->strides[i] * step;
  }
  v->buf = a->buf;
  lask__buf_retain(a->buf);
  return 1;
}

/* nd.transpose(a, perm): perm is a 0-based permutation list. */
static int nd_transpose(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if ((int)lua_rawlen(L, 2) != a->ndim)
    lask__fail(L, "lask: transpose: the permutation must list %d axes",
               a->ndim);
  int seen[LASK_ND_MAXDIM] = {0};
  struct lask_nd *v = lask__nd_push(L);
  *v = *a;
  v->buf = NULL;
  for (int i = 0; i < a->ndim; i++) {
    lua_rawgeti(L, 2, i + 1);
    lua_Number pn = lua_tonumber(L, -1);
    lua_pop(L, 1);
    int p = (int)pn;
    if ((lua_Number)p != pn || p < 0 || p >= a->ndim || seen[p])
      lask__fail(L, "lask: transpose: not a permutation of the axes");
    seen[p] = 1;
    v->shape[i] = a->shape[p];
    v->strides[i] = a->strides[p];
  }
  v->buf = a->buf;
  lask__buf_retain(a->buf);
  return 1;
}

/* nd.squeeze(a, axes): a view without those 0-based axes (each of
** length 1), whatever the strides. */
static int nd_squeeze(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int drop[LASK_ND_MAXDIM] = {0};
  int n = (int)lua_rawlen(L, 2);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    int z = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (z < 0 || z >= a->ndim || a->shape[z] != 1)
      lask__fail(L, "lask: squeeze: axis %d is not of length 1", z + 1);
    drop[z] = 1;
  }
  struct lask_nd *v = lask__nd_push(L);
  *v = *a;
  v->buf = NULL;
  int k = 0;
  for (int i = 0; i < a->ndim; i++) {
    if (drop[i]) continue;
    v->shape[k] = a->shape[i];
    v->strides[k] = a->strides[i];
    k++;
  }
  v->ndim = k;
  v->buf = a->buf;
  lask__buf_retain(a->buf);
  return 1;
}

/* nd.copy(a [, dtype]): a C-contiguous copy, converted to dtype. */
static int nd_copy(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1);
  int dt = lua_isnoneornil(L, 2) ? a->dtype : check_dtype(L, 2);
  struct lask_nd *c = push_new(L, dt, a->ndim, a->shape, 0);
  const char *why = NULL;
  int rc = lask__nd_copy(a, c, &why);
  if (rc) nd_fail(L, rc, "copy", why);
  return 1;
}

/* nd.reshape(a, shape): a view when 'a' is contiguous, else a copy. */
static int nd_reshape(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1);
  int64_t shape[LASK_ND_MAXDIM];
  int n = check_shape(L, 2, shape);
  int64_t cnt = 1, span = 1;
  for (int i = 0; i < n; i++) {
    int64_t d = shape[i] ? shape[i] : 1;
    if (span > ((int64_t)1 << 47) / d) { /* strides would overflow */
      cnt = -1;
      break;
    }
    span *= d;
    cnt *= shape[i];
  }
  if (cnt < 0) lask__fail(L, "lask: reshape: shape too large");
  if (cnt != lask__nd_size(a))
    lask__fail(L, "lask: cannot reshape an array of %f elements into %f",
               (double)lask__nd_size(a), (double)cnt);
  if (!lask__nd_is_contig(a)) {
    lua_settop(L, 2);
    lua_pushcfunction(L, nd_copy);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    lua_replace(L, 1);
    a = check_nd(L, 1);
  }
  struct lask_nd *v = lask__nd_push(L);
  v->dtype = a->dtype;
  v->ndim = n;
  v->offset = a->offset;
  int64_t st = lask__dtype_size(a->dtype);
  for (int i = n - 1; i >= 0; i--) {
    v->shape[i] = shape[i];
    v->strides[i] = st;
    st *= shape[i] ? shape[i] : 1;
  }
  v->buf = a->buf;
  lask__buf_retain(a->buf);
  return 1;
}

/* ---------------------------------------------------------- kernels */

#define MAX_EVAL_INPUTS 32

/* Gathers arrays at idx..top into 'in' (views copied, no reference). */
static int gather(lua_State *L, int idx, struct lask_nd *in) {
  int n = lua_gettop(L) - idx + 1;
  if (n > MAX_EVAL_INPUTS) lask__fail(L, "lask: more than 32 inputs");
  for (int k = 0; k < n; k++) in[k] = *check_nd(L, idx + k);
  return n;
}

/* nd.eval(prog, out_dtype, inputs...) -> array of the broadcast shape */
static int nd_eval(lua_State *L) {
  size_t plen;
  const char *prog = luaL_checklstring(L, 1, &plen);
  int dt = check_dtype(L, 2);
  struct lask_nd in[MAX_EVAL_INPUTS];
  int n = gather(L, 3, in);
  int ndims[MAX_EVAL_INPUTS], ond, bad = 0;
  const int64_t *shapes[MAX_EVAL_INPUTS];
  int64_t oshape[LASK_ND_MAXDIM];
  for (int k = 0; k < n; k++) {
    ndims[k] = in[k].ndim;
    shapes[k] = in[k].shape;
  }
  if (lask__nd_broadcast(n, ndims, shapes, &ond, oshape, &bad) != 0)
    lask__fail(L, "lask: shapes do not broadcast together (axis %d from "
               "the right)", bad + 1);
  struct lask_nd *out = push_new(L, dt, ond, oshape, 0);
  const char *why = NULL;
  int rc = lask__nd_eval((const uint8_t *)prog, plen, n, in, out, &why);
  if (rc) nd_fail(L, rc, "eval", why);
  return 1;
}

static const char *const red_names[] = {"sum", "prod", "min", "max", "any",
                                        "all", "count", "sqdev", "argmin",
                                        "argmax", NULL};

/* nd.eval_reduce(prog, op, skipnan, mean, inputs...) -> f, i, count, pos
** nd.eval_reduce_pair(prog, op, skipnan, mean, pair, inputs...): the same,
** reducing also the run with input k read from input pair[k] (1-based). */
static int eval_reduce(lua_State *L, int paired) {
  size_t plen;
  const char *prog = luaL_checklstring(L, 1, &plen);
  int op = luaL_checkoption(L, 2, NULL, red_names);
  int skipnan = lua_toboolean(L, 3);
  struct lask_red_acc acc;
  memset(&acc, 0, sizeof acc);
  acc.mean = luaL_optnumber(L, 4, 0);
  struct lask_nd in[MAX_EVAL_INPUTS];
  int n = gather(L, 5 + paired, in);
  int pair[MAX_EVAL_INPUTS];
  if (paired) {
    luaL_checktype(L, 5, LUA_TTABLE);
    if ((int)lua_rawlen(L, 5) != n)
      lask__fail(L, "lask: eval_reduce_pair: the pairing lists %d inputs, "
                 "%d given", (int)lua_rawlen(L, 5), n);
    for (int k = 0; k < n; k++) {
      int64_t v;
      if (!int_at(L, 5, k + 1, &v) || v < 1 || v > n)
        lask__fail(L, "lask: eval_reduce_pair: pair[%d] must be an input "
                   "number from 1 to %d", k + 1, n);
      pair[k] = (int)v - 1;
    }
  }
  const char *why = NULL;
  int rc = lask__nd_eval_reduce((const uint8_t *)prog, plen, n, in, op,
                                skipnan, paired ? pair : NULL, &acc, &why);
  if (rc) nd_fail(L, rc, "reduce", why);
  lua_pushnumber(L, acc.f);
#if LASK_HAS_INTEGERS
  lua_pushinteger(L, (lua_Integer)acc.i);
#else
  lua_pushnumber(L, (lua_Number)acc.i);
#endif
  lua_pushinteger(L, (lua_Integer)acc.count);
  lua_pushinteger(L, (lua_Integer)acc.pos);
  return 4;
}
static int nd_eval_reduce(lua_State *L) { return eval_reduce(L, 0); }
static int nd_eval_reduce_pair(lua_State *L) { return eval_reduce(L, 1); }

/* nd.reduce(a, axes0, op, skipnan, out_dtype [, aux]) -> out [, values] */
static int nd_reduce(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int op = luaL_checkoption(L, 3, NULL, red_names);
  int skipnan = lua_toboolean(L, 4);
  int dt = check_dtype(L, 5);
  struct lask_nd *aux = lua_isnoneornil(L, 6) ? NULL : check_nd(L, 6);
  if (aux && aux->dtype != LASK_DT_F64)
    lask__fail(L, "lask: reduce: the mean must be float64");
  uint64_t mask = 0;
  int na = (int)lua_rawlen(L, 2);
  for (int i = 0; i < na; i++) {
    lua_rawgeti(L, 2, i + 1);
    lua_Number v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (v < 0 || v >= a->ndim || v != floor(v))
      lask__fail(L, "lask: reduce: bad axis");
    mask |= UINT64_C(1) << (int)v;
  }
  int64_t oshape[LASK_ND_MAXDIM];
  for (int i = 0; i < a->ndim; i++)
    oshape[i] = ((mask >> i) & 1) ? 1 : a->shape[i];
  if (aux && (aux->ndim != a->ndim ||
              memcmp(aux->shape, oshape, sizeof(int64_t) * (size_t)a->ndim)))
    lask__fail(L, "lask: reduce: the mean must have the result's shape");
  struct lask_nd *out = push_new(L, dt, a->ndim, oshape, 0);
  struct lask_nd *vals = NULL;
  if (op == LASK_RED_ARGMIN || op == LASK_RED_ARGMAX)
    vals = push_new(L, a->dtype, a->ndim, oshape, 0);
  const char *why = NULL;
  int rc = lask__nd_reduce(a, mask, op, skipnan, aux, out, vals, &why);
  if (rc) nd_fail(L, rc, "reduce", why);
  return vals ? 2 : 1;
}

/* BLAS threads: one inside an executor (the executors use every core),
** all of them on the caller's thread. */
static void blas_for_this_thread(void) {
  lask__blas_threads(lask__in_executor ? 1 : (int)sysconf(_SC_NPROCESSORS_ONLN));
}

/* nd.matmul(a, b, out_dtype) */
static int nd_matmul(lua_State *L) {
  struct lask_nd *a = check_nd(L, 1), *b = check_nd(L, 2);
  int dt = check_dtype(L, 3);
  struct lask_nd *out = lask__nd_push(L);
  const char *why = NULL;
  blas_for_this_thread();
  int rc = lask__nd_matmul(a, b, dt, out, &why);
  if (rc) nd_fail(L, rc, "matmul", why);
  account(L, out->buf->nbytes, 0);
  return 1;
}

/* nd.assign(dst, src): copies src (broadcast) into the view dst. */
static int nd_assign(lua_State *L) {
  struct lask_nd *d = check_nd(L, 1), *s = check_nd(L, 2);
  int nds[2] = {d->ndim, s->ndim}, ond, bad = 0;
  const int64_t *shs[2] = {d->shape, s->shape};
  int64_t osh[LASK_ND_MAXDIM];
  if (lask__nd_broadcast(2, nds, shs, &ond, osh, &bad) != 0 ||
      ond != d->ndim || memcmp(osh, d->shape, sizeof(int64_t) * (size_t)ond))
    lask__fail(L, "lask: assign: a value of that shape does not fit");
  const char *why = NULL;
  int rc;
  if (s->buf == d->buf) {
    /* Source and destination share memory (a[2:] = a[:-1], m = m.T): the
    ** source is copied first, as NumPy does, so no element is read after
    ** it was overwritten. */
    struct lask_nd *tmp = push_new(L, s->dtype, s->ndim, s->shape, 0);
    rc = lask__nd_copy(s, tmp, &why);
    if (rc == 0) rc = lask__nd_copy(tmp, d, &why);
  } else {
    rc = lask__nd_copy(s, d, &why);
  }
  if (rc) nd_fail(L, rc, "assign", why);
  return 0;
}

/* nd.assemble(nregs, ninputs, result, consts, code): a program's bytes.
** consts: list of {lane, value}; code: flat list of bytes. */
static int nd_assemble(lua_State *L) {
  luaL_Buffer b;
  int nregs = (int)luaL_checkinteger(L, 1), nin = (int)luaL_checkinteger(L, 2);
  int res = (int)luaL_checkinteger(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  luaL_checktype(L, 5, LUA_TTABLE);
  int nc = (int)lua_rawlen(L, 4);
  if (nregs > 255 || nin > 32 || nc > 255 || res > 255 || nregs < 1)
    lask__fail(L, "lask: expression too large to fuse (255 steps, 32 inputs)");
  luaL_buffinit(L, &b);
  char hdr[4] = {(char)nregs, (char)nin, (char)nc, (char)res};
  luaL_addlstring(&b, hdr, 4);
  for (int i = 1; i <= nc; i++) {
    lua_rawgeti(L, 4, i);
    if (!lua_istable(L, -1))
      lask__fail(L, "lask: assemble: constant %d is not a {lane, value} pair", i);
    lua_rawgeti(L, -1, 1);
    int lane = (int)lua_tointeger(L, -1);
    lua_rawgeti(L, -2, 2);
    uint64_t u;
    if (lane == LASK_LANE_F) {
      double v = lua_tonumber(L, -1);
      memcpy(&u, &v, 8);
    } else {
#if LASK_HAS_INTEGERS
      if (lua_isinteger(L, -1)) u = (uint64_t)lua_tointeger(L, -1);
      else
#endif
      {
        double v = lua_tonumber(L, -1);
        u = (uint64_t)((v >= -0x1p63 && v < 0x1p63) ? (int64_t)v : INT64_MIN);
      }
    }
    lua_pop(L, 3);
    char c[9];
    c[0] = (char)lane;
    for (int j = 0; j < 8; j++) c[1 + j] = (char)(u >> (8 * j));
    luaL_addlstring(&b, c, 9);
  }
  int n = (int)lua_rawlen(L, 5);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, 5, i);
    char c = (char)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_addlstring(&b, &c, 1);
  }
  luaL_pushresult(&b);
  return 1;
}

/* nd.matmul_acc(out, a, b): out += a @ b (float, 2-d, out contiguous). */
static int nd_matmul_acc(lua_State *L) {
  struct lask_nd *out = check_nd(L, 1), *a = check_nd(L, 2), *b = check_nd(L, 3);
  const char *why = NULL;
  blas_for_this_thread();
  int rc = lask__nd_matmul_acc(a, b, out, &why);
  if (rc) nd_fail(L, rc, "matmul", why);
  return 0;
}

static int nd_stats(lua_State *L) {
  size_t live, pooled;
  lask__buf_stats(&live, &pooled);
  lua_pushnumber(L, (lua_Number)live);
  lua_pushnumber(L, (lua_Number)pooled);
  return 2;
}

/* pool_limit([bytes]): the pool's limit; with none, the default again. */
static int nd_pool_limit(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lask__buf_pool_limit(LASK_POOL_DEFAULT);
    return 0;
  }
  lua_Number v = luaL_checknumber(L, 1);
  lask__buf_pool_limit(v > 0 ? (size_t)v : 0);
  return 0;
}

static int nd_set_methods(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushvalue(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_methods);
  /* metamethods (fields starting "__") go into the metatable itself */
  luaL_getmetatable(L, LASK_ND_MT);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
    if (k[0] == '_' && k[1] == '_' && strcmp(k, "__index") &&
        strcmp(k, "__gc") && strcmp(k, "__name")) {
      lua_pushvalue(L, -2);
      lua_pushvalue(L, -2);
      lua_rawset(L, -5);
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* ------------------------------------------------------------------ npy */

static void push_info(lua_State *L, const struct lask_npy_info *in) {
  lua_createtable(L, 0, 5);
  lua_pushstring(L, dtype_names[in->dtype]);
  lua_setfield(L, -2, "dtype");
  push_shape(L, in->ndim, in->shape);
  lua_setfield(L, -2, "shape");
  lua_pushboolean(L, in->fortran);
  lua_setfield(L, -2, "fortran");
  lua_pushboolean(L, in->swap);
  lua_setfield(L, -2, "swap");
  lua_pushnumber(L, (lua_Number)in->data_offset);
  lua_setfield(L, -2, "offset");
}

/* Reads the header of the open .npy file into *info. Returns NULL, or a
** message (in 'msg' or static). */
static const char *read_info(int fd, struct lask_npy_info *info, char *msg,
                             size_t msz) {
  size_t cap = 4096, have = 0, want = 12;
  uint8_t *buf = malloc(cap);
  if (!buf) return "out of memory";
  for (;;) {
    if (want > cap) {
      uint8_t *nb = realloc(buf, want);
      if (!nb) {
        free(buf);
        return "out of memory";
      }
      buf = nb;
      cap = want;
    }
    while (have < want) {
      ssize_t r = pread(fd, buf + have, want - have, (off_t)have);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        snprintf(msg, msz, "read failed: %s", strerror(errno));
        free(buf);
        return msg;
      }
      if (r == 0) break;
      have += (size_t)r;
    }
    const char *why = NULL;
    int rc = lask__npy_parse(buf, have, info, &why);
    if (rc == LASK_ETRUNC && have == want && info->data_offset > have &&
        info->data_offset <= LASK_NPY_HEADER_LIMIT + 16) {
      want = (size_t)info->data_offset;
      continue;
    }
    free(buf);
    if (rc == 0) return NULL;
    return rc == LASK_ETRUNC ? "not an .npy file (truncated header)"
                             : (why ? why : lask_strerror(rc));
  }
}

/* Opens 'path' and reads its header, or raises naming the file. */
static int open_npy(lua_State *L, const char *path, int flags,
                    struct lask_npy_info *info) {
  int fd = open(path, flags | O_CLOEXEC);
  if (fd < 0)
    lask__fail(L, "lask: cannot open %s: %s", path, strerror(errno));
  char msg[160];
  const char *err = read_info(fd, info, msg, sizeof msg);
  if (err) {
    close(fd);
    lua_pushstring(L, err); /* msg lives on this frame: copy it first */
    lask__fail(L, "lask: %s: %s", path, lua_tostring(L, -1));
  }
  return fd;
}

/* nd.npy_info(path) -> {dtype, shape, fortran, swap, offset} */
static int nd_npy_info(lua_State *L) {
  struct lask_npy_info info;
  close(open_npy(L, luaL_checkstring(L, 1), O_RDONLY, &info));
  push_info(L, &info);
  return 1;
}

/* Box geometry: per axis a 0-based start and a count, within 'full'. */
struct box {
  int nd;
  int64_t full[LASK_ND_MAXDIM], start[LASK_ND_MAXDIM], count[LASK_ND_MAXDIM];
};

static const char *read_box(lua_State *L, int si, int ci, struct box *b) {
  for (int i = 0; i < b->nd; i++) {
    b->start[i] = 0;
    b->count[i] = b->full[i];
    if (!lua_isnoneornil(L, si)) {
      if (!lua_istable(L, si) || !lua_istable(L, ci) ||
          !int_at(L, si, i + 1, &b->start[i]) ||
          !int_at(L, ci, i + 1, &b->count[i]))
        return "the region must be two lists of integers";
      if (b->start[i] < 0 || b->count[i] < 0 ||
          b->start[i] + b->count[i] > b->full[i])
        return "region out of range";
    }
  }
  return NULL;
}

/* Moves the bytes of a box between a file (C order of b->full, data at
** 'off') and contiguous memory 'mem', in runs as long as the box allows.
** Returns NULL or an error message. */
static const char *box_io(int fd, uint64_t off, const struct box *b,
                          int isz, char *mem, int writing) {
  int j = b->nd - 1;
  while (j > 0 && b->count[j] == b->full[j]) j--;
  if (b->nd == 0) j = -1;
  int64_t inner = isz;
  for (int k = j + 1; k < b->nd; k++) inner *= b->full[k];
  int64_t run = j >= 0 ? b->count[j] * inner : inner;
  int64_t nruns = 1;
  for (int k = 0; k < j; k++) nruns *= b->count[k];
  for (int k = 0; k < b->nd; k++)
    if (b->count[k] == 0) return NULL;
  int64_t idx[LASK_ND_MAXDIM] = {0};
  for (int64_t r = 0; r < nruns; r++) {
    /* file offset of this run's first element */
    int64_t pos = 0;
    for (int k = 0; k < b->nd; k++) {
      int64_t i = k < j ? b->start[k] + idx[k] : b->start[k];
      pos = pos * b->full[k] + i;
    }
    uint64_t at = off + (uint64_t)pos * (uint64_t)isz;
    char *m = mem + r * run;
    int64_t done = 0;
    while (done < run) {
      ssize_t n = writing
          ? pwrite(fd, m + done, (size_t)(run - done), (off_t)(at + (uint64_t)done))
          : pread(fd, m + done, (size_t)(run - done), (off_t)(at + (uint64_t)done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return strerror(errno);
      if (n == 0) return "file ends before its data (truncated .npy)";
      done += n;
    }
    for (int k = j - 1; k >= 0; k--) {
      if (++idx[k] < b->count[k]) break;
      idx[k] = 0;
    }
  }
  return NULL;
}

static void swap_bytes(char *p, int64_t n, int isz) {
  for (int64_t i = 0; i < n; i++, p += isz)
    for (int a = 0, z = isz - 1; a < z; a++, z--) {
      char t = p[a];
      p[a] = p[z];
      p[z] = t;
    }
}

/* nd.npy_read(path [, starts, counts]) -> the array, or the box of it
** (0-based starts). Fortran-ordered files come back as transposed views. */
static int nd_npy_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct lask_npy_info info;
  int fd = open_npy(L, path, O_RDONLY, &info);
  struct box b;
  b.nd = info.ndim;
  /* A Fortran file is the C-order file of the reversed shape. */
  for (int i = 0; i < b.nd; i++)
    b.full[i] = info.shape[info.fortran ? b.nd - 1 - i : i];
  struct box want;
  want.nd = b.nd;
  memcpy(want.full, info.shape, sizeof want.full);
  const char *bad = read_box(L, 2, 3, &want);
  if (bad) {
    close(fd);
    lask__fail(L, "lask: reading %s: %s", path, bad);
  }
  for (int i = 0; i < b.nd; i++) {
    int s = info.fortran ? b.nd - 1 - i : i;
    b.start[i] = want.start[s];
    b.count[i] = want.count[s];
  }
  struct lask_nd *a = lask__nd_push(L);
  int rc = lask__nd_alloc(a, info.dtype, b.nd, b.count, 0);
  if (rc) {
    close(fd);
    nd_fail(L, rc, "npy", "array too large");
  }
  int isz = lask__dtype_size(info.dtype);
  const char *err = box_io(fd, info.data_offset, &b, isz,
                           lask__nd_data(a), 0);
  close(fd);
  if (err) lask__fail(L, "lask: reading %s: %s", path, err);
  account(L, a->buf->nbytes, 0); /* after close: it may raise */
  if (info.swap) swap_bytes(lask__nd_data(a), lask__nd_size(a), isz);
  if (info.dtype == LASK_DT_BOOL) { /* any nonzero byte is true */
    uint8_t *p = (uint8_t *)lask__nd_data(a);
    for (int64_t i = 0; i < lask__nd_size(a); i++) p[i] = p[i] != 0;
  }
  if (info.fortran) { /* reverse the axes: a view, no copy */
    struct lask_nd t = *a;
    for (int i = 0; i < b.nd; i++) {
      a->shape[i] = t.shape[b.nd - 1 - i];
      a->strides[i] = t.strides[b.nd - 1 - i];
    }
  }
  return 1;
}

/* nd.npy_create(path, dtype, shape): writes the header, sizes the file. */
static int nd_npy_create(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int dt = check_dtype(L, 2);
  int64_t shape[LASK_ND_MAXDIM];
  int n = check_shape(L, 3, shape);
  uint8_t hdr[LASK_NPY_HEADER_MAX];
  int64_t hl = lask__npy_header(dt, n, shape, hdr, sizeof hdr);
  if (hl < 0) lask__fail(L, "lask: npy: cannot make a header for that shape");
  uint64_t size = (uint64_t)lask__dtype_size(dt);
  for (int i = 0; i < n; i++) size *= (uint64_t)shape[i];
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    lask__fail(L, "lask: cannot create %s: %s", path, strerror(errno));
  const char *err = NULL;
  if (pwrite(fd, hdr, (size_t)hl, 0) != (ssize_t)hl) err = strerror(errno);
  else if (ftruncate(fd, (off_t)((uint64_t)hl + size)) != 0)
    err = strerror(errno);
  if (close(fd) != 0 && !err) err = strerror(errno);
  if (err) lask__fail(L, "lask: writing %s: %s", path, err);
  lua_pushinteger(L, (lua_Integer)hl);
  return 1;
}

/* nd.npy_write(path, a [, starts]): writes 'a' as the whole file, or (with
** 0-based starts) into that box of the file made by npy_create. */
static int nd_npy_write(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct lask_nd *a = check_nd(L, 2);
  int whole = lua_isnoneornil(L, 3);
  if (whole) {
    lua_pushcfunction(L, nd_npy_create);
    lua_pushvalue(L, 1);
    lua_pushstring(L, dtype_names[a->dtype]);
    push_shape(L, a->ndim, a->shape);
    lua_call(L, 3, 0);
  }
  struct lask_npy_info info;
  int fd = open_npy(L, path, O_RDWR, &info);
  const char *err = NULL;
  struct box b;
  b.nd = info.ndim;
  memcpy(b.full, info.shape, sizeof b.full);
  if (info.dtype != a->dtype || info.fortran || info.swap ||
      info.ndim != a->ndim)
    err = "the file's dtype, order or rank differ from the array's";
  for (int i = 0; !err && i < b.nd; i++) {
    b.start[i] = 0;
    if (!whole && (!lua_istable(L, 3) || !int_at(L, 3, i + 1, &b.start[i])))
      err = "the starts must be a list of integers";
    b.count[i] = a->shape[i];
    if (!err && (b.start[i] < 0 || b.start[i] + b.count[i] > b.full[i]))
      err = "the array does not fit the file there";
  }
  struct lask_nd c = *a;
  int copied = 0;
  if (!err && !lask__nd_is_contig(a)) {
    const char *why = NULL;
    if (lask__nd_alloc(&c, a->dtype, a->ndim, a->shape, 0) != 0) {
      err = "out of memory";
    } else {
      copied = 1; /* c holds its own buffer from here */
      if (lask__nd_copy(a, &c, &why) != 0) err = "out of memory";
    }
  }
  if (!err) err = box_io(fd, info.data_offset, &b,
                         lask__dtype_size(a->dtype), lask__nd_data(&c), 1);
  if (copied) lask__nd_clear(&c);
  if (close(fd) != 0 && !err) err = strerror(errno);
  if (err) lask__fail(L, "lask: writing %s: %s", path, err);
  return 0;
}

/* ---------------------------------------------------------------- codec */

void lask__nd_encode(lua_State *L, struct lask_wbuf *w,
                     const struct lask_nd *a, int byref) {
  size_t need = 3 + (size_t)a->ndim * 20 + 40;
  int rc = lask__wbuf_reserve(w, need);
  if (rc) lask__raise_rc(L, rc, "serialize");
  lask__put_u8(w, LASK__T_BUFFER);
  lask__put_u8(w, byref ? 1 : 0);
  lask__put_u8(w, (unsigned)a->dtype);
  lask__put_u8(w, (unsigned)a->ndim);
  for (int i = 0; i < a->ndim; i++) lask__put_varint(w, (uint64_t)a->shape[i]);
  if (byref) {
    uint8_t addr[8];
    lask__store_le64(addr, (uint64_t)(uintptr_t)a->buf);
    memcpy(w->p + w->len, addr, 8);
    w->len += 8;
    lask__put_varint(w, lask__zigzag(a->offset));
    for (int i = 0; i < a->ndim; i++)
      lask__put_varint(w, lask__zigzag(a->strides[i]));
    lask__buf_retain(a->buf);
    rc = lask__wbuf_add_ref(w, a->buf);
    if (rc) lask__raise_rc(L, rc, "serialize");
    return;
  }
  size_t nbytes = (size_t)lask__nd_size(a) * (size_t)lask__dtype_size(a->dtype);
  lask__put_varint(w, nbytes);
  rc = lask__wbuf_reserve(w, nbytes);
  if (rc) lask__raise_rc(L, rc, "serialize");
  if (lask__nd_is_contig(a)) {
    if (nbytes) memcpy(w->p + w->len, lask__nd_data(a), nbytes);
  } else {
    /* Copy through a view over the writer's own bytes (no buffer). */
    struct lask_buf tmp = {1, nbytes, nbytes, w->p + w->len};
    struct lask_nd c;
    c.dtype = a->dtype;
    c.ndim = a->ndim;
    c.offset = 0;
    c.buf = &tmp;
    int64_t st = lask__dtype_size(a->dtype);
    for (int i = a->ndim - 1; i >= 0; i--) {
      c.shape[i] = a->shape[i];
      c.strides[i] = st;
      st *= a->shape[i] ? a->shape[i] : 1;
    }
    const char *why = NULL;
    rc = lask__nd_copy(a, &c, &why);
    if (rc) lask__raise_rc(L, rc, "serialize");
  }
  w->len += nbytes;
}

const char *lask__nd_decode(lua_State *L, struct lask_rbuf *r, int inproc) {
  unsigned mode, dt, nd;
  if (lask__get_u8(r, &mode) || lask__get_u8(r, &dt) || lask__get_u8(r, &nd))
    return "truncated array";
  if (mode > 1 || dt >= LASK_DT_COUNT || nd > LASK_ND_MAXDIM)
    return "bad array header";
  if (mode == 1 && !inproc) return "array reference from outside";
  int64_t shape[LASK_ND_MAXDIM];
  uint64_t cnt = 1;
  for (unsigned i = 0; i < nd; i++) {
    uint64_t v;
    if (lask__get_varint(r, &v) || v > (UINT64_C(1) << 50))
      return "bad array shape";
    shape[i] = (int64_t)v;
    if (v && cnt > (UINT64_C(1) << 50) / v) return "bad array shape";
    cnt *= v;
  }
  int isz = lask__dtype_size((int)dt);
  if (mode == 1) {
    uint8_t addr[8];
    const uint8_t *ap;
    if (lask__get_bytes(r, 8, &ap)) return "truncated array";
    memcpy(addr, ap, 8);
    struct lask_buf *b = (struct lask_buf *)(uintptr_t)lask__load_le64(addr);
    uint64_t off;
    if (lask__get_varint(r, &off)) return "truncated array";
    struct lask_nd *a = lask__nd_push(L);
    a->dtype = (int)dt;
    a->ndim = (int)nd;
    a->offset = lask__unzigzag(off);
    for (unsigned i = 0; i < nd; i++) {
      uint64_t s;
      if (lask__get_varint(r, &s)) {
        lua_pop(L, 1);
        return "truncated array";
      }
      a->shape[i] = shape[i];
      a->strides[i] = lask__unzigzag(s);
    }
    lask__buf_retain(b);
    a->buf = b;
    account(L, b->nbytes, 1);
    return NULL;
  }
  uint64_t nbytes;
  const uint8_t *data;
  if (lask__get_varint(r, &nbytes)) return "truncated array";
  if (nbytes != cnt * (uint64_t)isz) return "array size disagrees with shape";
  if (lask__get_bytes(r, (size_t)nbytes, &data)) return "truncated array";
  struct lask_nd *a = lask__nd_push(L);
  if (lask__nd_alloc(a, (int)dt, (int)nd, shape, 0) != 0) {
    lua_pop(L, 1);
    return "array too large";
  }
  account(L, a->buf->nbytes, 0);
  if (nbytes) memcpy(lask__nd_data(a), data, (size_t)nbytes);
  if (dt == LASK_DT_BOOL) {
    uint8_t *p = (uint8_t *)lask__nd_data(a);
    for (uint64_t i = 0; i < nbytes; i++) p[i] = p[i] != 0;
  }
  return NULL;
}

/* ------------------------------------------------------------- register */

void lask__nd_register(lua_State *L) {
  if (luaL_newmetatable(L, LASK_ND_MT)) {
    lua_pushcfunction(L, nd_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, nd_index);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "lask.ndarray");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
}

static const luaL_Reg nd_funcs[] = {
  {"new", nd_new},
  {"from_flat", nd_from_flat},
  {"arange", nd_arange},
  {"random", nd_random},
  {"get", nd_get},
  {"set", nd_set},
  {"check_fits", nd_check_fits},
  {"totable", nd_totable},
  {"flat", nd_flat},
  {"ptr", nd_ptr},
  {"is_contiguous", nd_is_contig_l},
  {"view", nd_view},
  {"transpose", nd_transpose},
  {"copy", nd_copy},
  {"squeeze", nd_squeeze},
  {"reshape", nd_reshape},
  {"eval", nd_eval},
  {"eval_reduce", nd_eval_reduce},
  {"eval_reduce_pair", nd_eval_reduce_pair},
  {"reduce", nd_reduce},
  {"matmul", nd_matmul},
  {"matmul_acc", nd_matmul_acc},
  {"stats", nd_stats},
  {"assign", nd_assign},
  {"assemble", nd_assemble},
  {"pool_limit", nd_pool_limit},
  {"set_methods", nd_set_methods},
  {"npy_info", nd_npy_info},
  {"npy_read", nd_npy_read},
  {"npy_create", nd_npy_create},
  {"npy_write", nd_npy_write},
  {NULL, NULL}
};

static int nd_test_l(lua_State *L) {
  lua_pushboolean(L, lask__nd_test(L, 1) != NULL);
  return 1;
}

void lask__nd_openlib(lua_State *L) {
  lua_createtable(L, 0, 32);
  luaL_setfuncs(L, nd_funcs, 0);
  lua_pushcfunction(L, nd_test_l);
  lua_setfield(L, -2, "is_ndarray");
  lua_createtable(L, 0, LASK_OP_COUNT); /* op name -> code */
#define OPNAME(name, text) \
  lua_pushinteger(L, LASK_OP_##name); \
  lua_setfield(L, -2, text);
  LASK_PROG_OPS(OPNAME)
#undef OPNAME
  lua_setfield(L, -2, "ops");
}
