/*
** modindex.c: the module index, object -> MODREF payload, from which the
** encoder sends tables, functions and userdata reachable from
** package.loaded as references instead of copies.
**
** Built from package.loaded: every module (depth 0), the fields of module
** tables (depth 1) and the fields of those (depth 2), names sorted in C so
** the first, shortest path wins deterministically (no Lua function is
** called, so building the index never reenters the encoder). From _G only
** C functions and userdata are taken: a user's global table or Lua
** function is the user's data, not a module, and travels by value. The
** index is weak-keyed, so it keeps no unloaded module alive; a hook on
** package.loaded tells when a module was added, and every reference is
** checked against package.loaded before it is written.
*/
#include <stdlib.h>
#include <string.h>

#include "value.h"

static const char key_modules = 0;

static int is_indexable(lua_State *L, int idx, int from_globals) {
  int t = lua_type(L, idx);
  if (from_globals) {
    return lua_iscfunction(L, idx) || t == LUA_TUSERDATA;
  }
  return t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TUSERDATA;
}

struct skey {
  const char *s;
  size_t n;
};

static int cmp_skey(const void *a, const void *b) {
  const struct skey *x = a, *y = b;
  int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
  return c != 0 ? c : (x->n > y->n) - (x->n < y->n);
}

/* Pushes a sorted list of the string keys of the table at 'idx'. The
** strings stay anchored as keys of that table while they are sorted. */
static void push_sorted_keys(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  size_t n = 0, cap = 16;
  struct skey *keys = lua_newuserdatauv(L, cap * sizeof *keys, 0);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) continue;
    if (n == cap) { /* grow: a new userdata, the old one is garbage */
      struct skey *more = lua_newuserdatauv(L, 2 * cap * sizeof *keys, 0);
      memcpy(more, keys, n * sizeof *keys);
      lua_replace(L, -3);
      keys = more;
      cap *= 2;
    }
    keys[n].s = lua_tolstring(L, -1, &keys[n].n);
    n++;
  }
  qsort(keys, n, sizeof *keys, cmp_skey);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushlstring(L, keys[i].s, keys[i].n);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_remove(L, -2);
}

/* Adds index[v] = payload for the value on top (popped) reached through
** parts[0..nparts-1], unless it is already there. */
static void index_add(lua_State *L, int index, const char **parts,
                      const size_t *lens, int nparts) {
  lua_pushvalue(L, -1);
  lua_rawget(L, index);
  int known = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (known) {
    lua_pop(L, 1);
    return;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, (char)nparts);
  for (int i = 0; i < nparts; i++) {
    /* The same varint length prefix as lask__put_string. */
    size_t n = lens[i];
    while (n >= 0x80) {
      luaL_addchar(&b, (char)(n | 0x80));
      n >>= 7;
    }
    luaL_addchar(&b, (char)n);
    luaL_addlstring(&b, parts[i], lens[i]);
  }
  luaL_pushresult(&b);
  lua_rawset(L, index);
}

/* Indexes the fields of the table on top of the stack, reached through
** parts[0..depth-1], then recurses one level for depth < 2. */
static void index_fields(lua_State *L, int index, const char **parts,
                         size_t *lens, int depth, int from_globals) {
  int t = lua_gettop(L);
  push_sorted_keys(L, t);
  int keys = lua_gettop(L);
  int n = (int)lua_rawlen(L, keys);
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 1; i <= n; i++) {
      lua_rawgeti(L, keys, i);
      parts[depth] = lua_tolstring(L, -1, &lens[depth]);
      lua_pushvalue(L, -1);
      lua_rawget(L, t);
      if (pass == 0 && is_indexable(L, -1, from_globals)) {
        index_add(L, index, parts, lens, depth + 1);
        lua_pop(L, 1);
      } else if (pass == 1 && depth < LASK__MAX_MODPARTS - 2 && !from_globals &&
                 lua_istable(L, -1)) {
        index_fields(L, index, parts, lens, depth + 1, 0);
        lua_pop(L, 2);
      } else {
        lua_pop(L, 2);
      }
    }
  }
  lua_settop(L, t);
}

/* Builds a fresh module index with its snapshot; leaves the holder table
** {index = ..., snap = ..., n = ...} on the stack. */
static void build_modindex(lua_State *L) {
  lua_newtable(L);
  int holder = lua_gettop(L);
  lua_newtable(L);
  int index = lua_gettop(L);
  lua_newtable(L); /* weak keys: the index keeps no module alive */
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, index);
  lua_newtable(L);
  int snap = lua_gettop(L);
  lask_pushloaded(L);
  int loaded = lua_gettop(L);
  push_sorted_keys(L, loaded);
  int keys = lua_gettop(L);
  int n = (int)lua_rawlen(L, keys);
  const char *parts[LASK__MAX_MODPARTS];
  size_t lens[LASK__MAX_MODPARTS];
  for (int i = 1; i <= n; i++) { /* depth 0: the modules themselves */
    lua_rawgeti(L, keys, i);
    parts[0] = lua_tolstring(L, -1, &lens[0]);
    lua_pushvalue(L, -1);
    lua_rawget(L, loaded);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, snap);
    if (is_indexable(L, -1, 0)) index_add(L, index, parts, lens, 1);
    else lua_pop(L, 1);
    lua_pop(L, 1);
  }
  for (int i = 1; i <= n; i++) { /* depths 1 and 2: their fields */
    lua_rawgeti(L, keys, i);
    parts[0] = lua_tolstring(L, -1, &lens[0]);
    lua_pushvalue(L, -1);
    lua_rawget(L, loaded);
    if (lua_istable(L, -1)) {
      int globals = strcmp(parts[0], "_G") == 0;
      index_fields(L, index, parts, lens, 1, globals);
    }
    lua_pop(L, 2);
  }
  lua_settop(L, loaded - 1);
  lua_pushinteger(L, n);
  lua_setfield(L, holder, "n");
  lua_setfield(L, holder, "snap");
  lua_setfield(L, holder, "index");
}

/* Is the holder's snapshot still what package.loaded holds? */
static int modindex_fresh(lua_State *L, int holder) {
  lua_getfield(L, holder, "snap");
  int snap = lua_gettop(L);
  lask_pushloaded(L);
  int loaded = lua_gettop(L);
  lua_Integer count = 0;
  int fresh = 1;
  lua_pushnil(L);
  while (fresh && lua_next(L, loaded)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      count++;
      lua_pushvalue(L, -2);
      lua_rawget(L, snap);
      fresh = lua_rawequal(L, -1, -2);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (!fresh) lua_pop(L, 1); /* the key left by the broken loop */
  lua_getfield(L, holder, "n");
  fresh = fresh && lua_tointeger(L, -1) == count;
  lua_settop(L, snap - 1);
  return fresh;
}

/* package.loaded.__newindex, installed by lask when package.loaded has no
** metatable: require (and any new module) writes through it, which marks
** the index stale at no cost to lookups. Removing or replacing a module
** does not pass here; lask__modref_valid catches those. */
static const char key_dirty = 0;
static int loaded_newindex(lua_State *L) {
  lua_settop(L, 3);
  lua_rawset(L, 1);
  lua_pushboolean(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &key_dirty);
  return 0;
}

/* Hooks package.loaded if nobody else gave it a metatable; returns 1 if
** the hook (ours) is in place, so the dirty flag can be trusted. */
static int hook_loaded(lua_State *L) {
  lask_pushloaded(L);
  int hooked = 0;
  if (lua_getmetatable(L, -1)) {
    lua_getfield(L, -1, "__newindex");
    hooked = lua_tocfunction(L, -1) == loaded_newindex;
    lua_pop(L, 2);
  } else {
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, loaded_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, -2);
    hooked = 1;
  }
  lua_pop(L, 1);
  return hooked;
}

/* Is the index in the holder at 'holder' still current? */
static int modindex_current(lua_State *L, int holder) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_dirty);
  int dirty = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, holder, "hooked");
  int hooked = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (hooked) return !dirty;            /* O(1) */
  return modindex_fresh(L, holder);      /* someone else's metatable */
}

void lask__modindex_push(lua_State *L, int check) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_modules);
  if (!lua_istable(L, -1) || (check && !modindex_current(L, lua_gettop(L)))) {
    lua_pop(L, 1);
    int hooked = hook_loaded(L);
    lua_pushboolean(L, 0);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_dirty);
    build_modindex(L);
    lua_pushboolean(L, hooked);
    lua_setfield(L, -2, "hooked");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_modules);
  }
  lua_getfield(L, -1, "index");
  lua_remove(L, -2);
}

int lask__modref_valid(lua_State *L, int idx, int payload) {
  size_t n;
  const uint8_t *p = (const uint8_t *)lua_tolstring(L, payload, &n);
  struct lask_rbuf r = {p, p + n};
  unsigned nparts;
  if (p == NULL || lask__get_u8(&r, &nparts) != 0 || nparts < 1) return 0;
  int top = lua_gettop(L);
  lask_pushloaded(L);
  for (unsigned i = 0; i < nparts; i++) {
    const uint8_t *s;
    size_t len;
    if (!lua_istable(L, -1) || lask__get_string(&r, &s, &len) != 0) {
      lua_settop(L, top);
      return 0;
    }
    lua_pushlstring(L, (const char *)s, len);
    lua_rawget(L, -2);
  }
  int same = lua_rawequal(L, -1, idx);
  lua_settop(L, top);
  return same;
}
