/*
** rank.c: the C paths of bag.topk and bag.distinct over numbers and
** strings (lask.bag_ops keeps the Lua paths, which every other case takes).
**
** A key is the element itself, or element[key] for a table element with no
** metatable (a raw get: an __index could run Lua code). Key strings are
** held by the partition list while these functions run, so pointers to
** their bytes stay valid.
*/
#include <stdlib.h>
#include <string.h>

#include "rank.h"
#include "value.h"

struct entry {
  lua_Number num;
  const char *s;
  size_t len;
  lua_Integer idx; /* position in the list: equal keys keep list order */
};

/* Pushes the key of element i of the list at 1 ('key' at index kidx, nil
** for the element itself); returns its type, or LUA_TNONE when only the
** Lua path can take it (not a plain table, or one with a metatable). One
** value is left on the stack either way. */
static int push_key(lua_State *L, int kidx, lua_Integer i) {
  lua_rawgeti(L, 1, i);
  if (lua_isnil(L, kidx)) return lua_type(L, -1);
  if (!lua_istable(L, -1)) return LUA_TNONE;
  if (lua_getmetatable(L, -1)) {
    lua_pop(L, 1);
    return LUA_TNONE;
  }
  lua_pushvalue(L, kidx);
  lua_rawget(L, -2);
  lua_remove(L, -2);
  return lua_type(L, -1);
}

/* a < b as the interpreter's '<' orders strings: Lua 5.4 by strcoll over
** the pieces between NUL bytes, LuaJIT byte by byte. */
static int str_lt(const struct entry *a, const struct entry *b) {
#if LUA_VERSION_NUM >= 503
  const char *l = a->s, *r = b->s;
  size_t ll = a->len, lr = b->len;
  for (;;) {
    int c = strcoll(l, r);
    if (c != 0) return c < 0;
    size_t k = strlen(l); /* equal up to a NUL: go on past it */
    if (k == lr) return 0;
    if (k == ll) return 1;
    k++;
    l += k;
    ll -= k;
    r += k;
    lr -= k;
  }
#else
  size_t m = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->s, b->s, m);
  return c != 0 ? c < 0 : a->len < b->len;
#endif
}

/* Does a rank before b: a larger key, or an equal key earlier. */
static int before_num(const struct entry *a, const struct entry *b) {
  if (a->num != b->num) return a->num > b->num;
  return a->idx < b->idx;
}

static int before_str(const struct entry *a, const struct entry *b) {
  if (str_lt(b, a)) return 1;
  if (str_lt(a, b)) return 0;
  return a->idx < b->idx;
}

typedef int (*before_fn)(const struct entry *, const struct entry *);

static int cmp_num(const void *x, const void *y) {
  return before_num(x, y) ? -1 : before_num(y, x) ? 1 : 0;
}

static int cmp_str(const void *x, const void *y) {
  return before_str(x, y) ? -1 : before_str(y, x) ? 1 : 0;
}

/* The k best stay in a heap whose root is the worst of them. */
static void sift_down(struct entry *h, size_t n, size_t i, before_fn before) {
  for (;;) {
    size_t w = i, l = 2 * i + 1, r = l + 1;
    if (l < n && before(&h[w], &h[l])) w = l;
    if (r < n && before(&h[w], &h[r])) w = r;
    if (w == i) return;
    struct entry t = h[i];
    h[i] = h[w];
    h[w] = t;
    i = w;
  }
}

/* topk_values(list, k [, key]) -> the k elements with the largest keys,
** largest first, equal keys in list order; nil when the keys are not all
** numbers (no NaN) or all strings, for the Lua path to take or name. */
static int l_topk_values(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer k = luaL_checkinteger(L, 2);
  luaL_argcheck(L, k >= 0, 2, "must be >= 0");
  lua_settop(L, 3);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  size_t cap = (size_t)(k < n ? k : n);
  struct entry *h = lua_newuserdatauv(L, (cap ? cap : 1) * sizeof *h, 0);
  size_t used = 0;
  int type = LUA_TNONE;
  before_fn before = before_num;
  for (lua_Integer i = 1; i <= n && cap > 0; i++) {
    int t = push_key(L, 3, i);
    if (i == 1) {
      type = t;
      before = t == LUA_TSTRING ? before_str : before_num;
    }
    if (t != type || (t != LUA_TNUMBER && t != LUA_TSTRING)) return 0;
    struct entry e = {0, NULL, 0, i};
    if (t == LUA_TNUMBER) {
      e.num = lua_tonumber(L, -1);
      if (e.num != e.num) return 0; /* NaN: the Lua path names it */
      if (lua_isinteger(L, -1) &&
          (lua_tointeger(L, -1) > ((lua_Integer)1 << 53) ||
           lua_tointeger(L, -1) < -((lua_Integer)1 << 53)))
        return 0; /* beyond 2^53 a double would merge distinct integers */
    } else {
      e.s = lua_tolstring(L, -1, &e.len);
    }
    lua_pop(L, 1);
    if (used < cap) { /* fill, then heapify once */
      h[used++] = e;
      if (used == cap)
        for (size_t j = cap / 2; j-- > 0;) sift_down(h, cap, j, before);
    } else if (before(&e, &h[0])) {
      h[0] = e;
      sift_down(h, cap, 0, before);
    }
  }
  qsort(h, used, sizeof *h, type == LUA_TSTRING ? cmp_str : cmp_num);
  lua_createtable(L, (int)used, 0);
  for (size_t j = 0; j < used; j++) {
    lua_rawgeti(L, 1, h[j].idx);
    lua_rawseti(L, -2, (lua_Integer)j + 1);
  }
  return 1;
}

/* distinct_into(list, seen, out [, key]) -> i: appends to 'out' each
** element whose key 'seen' has not had yet, marking it; stops at the
** first element whose key is not a string, a number (no NaN) or a boolean
** and returns its index (#list + 1 when all were taken), for the Lua path
** to go on from or to name. */
static int l_distinct_into(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 4);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  lua_Integer m = (lua_Integer)lua_rawlen(L, 3), i;
  for (i = 1; i <= n; i++) {
    int t = push_key(L, 4, i);
    if (t == LUA_TNUMBER ? lua_tonumber(L, -1) != lua_tonumber(L, -1)
                         : t != LUA_TSTRING && t != LUA_TBOOLEAN)
      break;
    lua_pushvalue(L, -1);
    lua_rawget(L, 2);
    int seen = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (seen) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushboolean(L, 1);
    lua_rawset(L, 2);
    lua_rawgeti(L, 1, i);
    lua_rawseti(L, 3, ++m);
  }
  lua_pushinteger(L, i);
  return 1;
}

static const luaL_Reg rank_funcs[] = {
  {"topk_values", l_topk_values},
  {"distinct_into", l_distinct_into},
  {NULL, NULL}
};

void lask__rank_register(lua_State *L) {
  luaL_setfuncs(L, rank_funcs, 0);
}
