/*
** value.c: the Lua side of the serialization layer. Maps Lua values onto the
** byte format of runtime/codec.h and back.
**
** Encoding walks the value depth first. Tables and functions get ids in the
** order they are first met, and a second meeting writes a reference, so
** shared references and cycles survive. Upvalues shared by two closures are
** recognised with lua_upvalueid and rejoined with lua_upvaluejoin. The
** globals table, any upvalue named _ENV and LuaJIT function environments
** become "the receiver's globals". Tables, functions and userdata reachable from
** package.loaded travel as module references. Everything else that is not
** plain data raises an error naming the value and the path to it; the path
** is a chain of 'struct step' living in the C frames of the recursion, so it
** costs nothing until it is printed.
**
** Decoding checks the header and checksum first, then reads every item with
** bounds checks; table sizes are judged against the bytes left before any
** allocation. Bytecode is loaded only from an encoding made by the same
** interpreter, and never when the caller asks for LASK_DEC_NOCODE.
*/
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "value.h"

/* Deepest nesting of tables and functions, encoding and decoding. Each
** level holds two Lua stack slots, and LuaJIT allows a C function 8000. */
#if LASK_FLAVOUR == LASK_FLAVOUR_LUAJIT
#define MAX_DEPTH 3000
#else
#define MAX_DEPTH 7000
#endif
/* Longest module path: the module name plus keys. */
#define MAX_MODPARTS 4

/* Registry keys: only their addresses matter. */
static const char key_mt_by_name = 0;
static const char key_name_by_mt = 0;
static const char key_modules = 0;

/* -------------------------------------------------------------------------
** Per-state tables in the registry
** ---------------------------------------------------------------------- */

/* Pushes the registry table at 'key', creating it (with 'mode' as its weak
** mode, or none) on first use. */
static void push_regtable(lua_State *L, const char *key, const char *mode) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  if (lua_istable(L, -1)) return;
  lua_pop(L, 1);
  lua_newtable(L);
  if (mode != NULL) {
    lua_newtable(L);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

int lask__value_register_metatable(lua_State *L) {
  size_t n;
  luaL_checklstring(L, 1, &n);
  luaL_argcheck(L, n > 0, 1, "metatable name must not be empty");
  luaL_checktype(L, 2, LUA_TTABLE);
  push_regtable(L, &key_mt_by_name, NULL);
  push_regtable(L, &key_name_by_mt, NULL);
  lua_pushvalue(L, 1);
  lua_rawget(L, -3);
  if (!lua_isnil(L, -1) && !lua_rawequal(L, -1, 2)) {
    return luaL_error(L, "lask.register_metatable: name '%s' is already "
                      "registered for another metatable", lua_tostring(L, 1));
  }
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  if (!lua_isnil(L, -1) && !lua_rawequal(L, -1, 1)) {
    return luaL_error(L, "lask.register_metatable: this metatable is already "
                      "registered as '%s'", lua_tostring(L, -1));
  }
  lua_pop(L, 1);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_rawset(L, -4);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 1);
  lua_rawset(L, -3);
  lua_settop(L, 2);
  return 1;
}

int lask__raise_rc(lua_State *L, int rc, const char *what) {
  return luaL_error(L, "lask: %s: %s", what, lask_strerror(rc));
}

/* -------------------------------------------------------------------------
** The module index: object -> encoded MODREF payload
**
** Built from package.loaded: every module (depth 0), the fields of module
** tables (depth 1) and the fields of those (depth 2), names sorted so the
** first, shortest path wins deterministically. From _G only C functions and
** userdata are taken: a user's global table or Lua function is the user's
** data, not a module, and travels by value. The index is rebuilt when
** package.loaded no longer matches the snapshot taken with it.
** ---------------------------------------------------------------------- */

static int is_indexable(lua_State *L, int idx, int from_globals) {
  int t = lua_type(L, idx);
  if (from_globals) {
    return lua_iscfunction(L, idx) || t == LUA_TUSERDATA;
  }
  return t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TUSERDATA;
}

/* Pushes a sorted list of the string keys of the table at 'idx'. */
static void push_sorted_keys(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_newtable(L);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, -3, ++n);
    }
  }
  lua_getglobal(L, "table");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, -3);
    lua_call(L, 1, 0);
  }
  lua_pop(L, 1);
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
      } else if (pass == 1 && depth < MAX_MODPARTS - 2 && !from_globals &&
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
  lua_newtable(L);
  int snap = lua_gettop(L);
  lask_pushloaded(L);
  int loaded = lua_gettop(L);
  push_sorted_keys(L, loaded);
  int keys = lua_gettop(L);
  int n = (int)lua_rawlen(L, keys);
  const char *parts[MAX_MODPARTS];
  size_t lens[MAX_MODPARTS];
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

/* Pushes the module index, rebuilt if it does not exist yet or, when
** 'check' is set, if package.loaded changed since it was built. */
static void push_modindex(lua_State *L, int check) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &key_modules);
  if (!lua_istable(L, -1) || (check && !modindex_fresh(L, lua_gettop(L)))) {
    lua_pop(L, 1);
    build_modindex(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &key_modules);
  }
  lua_getfield(L, -1, "index");
  lua_remove(L, -2);
}

/* -------------------------------------------------------------------------
** Encoding
** ---------------------------------------------------------------------- */

/* One step of the path from the root to the value being encoded. */
enum step_kind { STEP_INDEX, STEP_FIELD, STEP_KEY, STEP_UPVALUE };
struct step {
  enum step_kind kind;
  int idx;                 /* stack index: the key (FIELD), the function */
  lua_Integer n;           /* array index (INDEX), upvalue number */
  const struct step *up;   /* the step before, or NULL at the root */
};

struct enc {
  lua_State *L;
  struct lask_wbuf *w;
  int ids;       /* stack index: object -> id; upvalue id -> fid*256+n */
  int has_ids;   /* the ids slot holds its table (else nil, not made yet) */
  int globals;   /* stack index of this state's globals table */
  int modindex;  /* stack index of the module index, 0 until needed */
  int modchecked; /* the index was checked against package.loaded */
  int name_by_mt;
  const struct lask_placeholders *ph; /* or NULL */
  lua_Integer nextid;
  int flags;
  int depth;
};

static void enc_value(struct enc *e, int idx, const struct step *at);

static inline void reserve(struct enc *e, size_t n) {
  int rc = lask__wbuf_reserve(e->w, n);
  if (rc != 0) lask__raise_rc(e->L, rc, "serialize");
}

/* Appends "the function defined at src:line" for the function at 'idx'. */
static void add_funcname(lua_State *L, luaL_Buffer *b, int idx) {
  lua_Debug ar;
  lua_pushvalue(L, idx);
  lua_getinfo(L, ">S", &ar);
  if (ar.what[0] == 'C') {
    luaL_addstring(b, "a C function");
  } else {
    lua_pushfstring(L, "the function defined at %s:%d", ar.short_src,
                    ar.linedefined);
    luaL_addvalue(b);
  }
}

static void add_step(lua_State *L, luaL_Buffer *b, const struct step *s) {
  switch (s->kind) {
  case STEP_INDEX:
    lua_pushfstring(L, "index %d", (int)s->n);
    luaL_addvalue(b);
    break;
  case STEP_FIELD:
    if (lua_type(L, s->idx) == LUA_TSTRING) {
      lua_pushfstring(L, "field '%s'", lua_tostring(L, s->idx));
    } else if (lua_type(L, s->idx) == LUA_TNUMBER) {
      lua_pushvalue(L, s->idx);
      lua_pushfstring(L, "index %s", lua_tostring(L, -1));
      lua_remove(L, -2);
    } else {
      lua_pushfstring(L, "the field with a %s key",
                      luaL_typename(L, s->idx));
    }
    luaL_addvalue(b);
    break;
  case STEP_KEY:
    luaL_addstring(b, "a table key");
    break;
  case STEP_UPVALUE: {
    const char *name = lua_getupvalue(L, s->idx, (int)s->n);
    lua_pop(L, 1);
    if (name != NULL && name[0] != '\0' && name[0] != '(') {
      lua_pushfstring(L, "upvalue '%s' of ", name);
    } else {
      lua_pushfstring(L, "upvalue %d of ", (int)s->n);
    }
    luaL_addvalue(b);
    add_funcname(L, b, s->idx);
    break;
  }
  }
}

/* Raises "lask: cannot serialize <a thing><note> at <path>", innermost
** step first. */
static int enc_fail(struct enc *e, int idx, const struct step *at,
                    const char *note) {
  lua_State *L = e->L;
  luaL_Buffer b;
  lua_checkstack(L, 8);
  int t = lua_type(L, idx);
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "lask: cannot serialize ");
  if (t == LUA_TTHREAD) {
    luaL_addstring(&b, "a coroutine");
  } else if (t == LUA_TLIGHTUSERDATA) {
    luaL_addstring(&b, "a light userdata");
  } else if (t == LUA_TFUNCTION) {
    luaL_addstring(&b, "a C function");
  } else if (t == LUA_TUSERDATA) {
    luaL_addstring(&b, "a userdata");
    if (luaL_getmetafield(L, idx, "__name") != LUA_TNIL) {
      lua_pushfstring(L, " (%s)", lua_tostring(L, -1));
      lua_remove(L, -2);
      luaL_addvalue(&b);
    } else if (luaL_testudata(L, idx, "FILE*") != NULL) {
      luaL_addstring(&b, " (FILE*)"); /* LuaJIT's files have no __name */
    }
  } else {
    lua_pushfstring(L, "a %s", luaL_typename(L, idx));
    luaL_addvalue(&b);
  }
  luaL_addstring(&b, note);
  if (at == NULL) luaL_addstring(&b, " (the value itself)");
  for (int i = 0; at != NULL; at = at->up, i++) {
    luaL_addstring(&b, i == 0 ? " at " : ", in ");
    add_step(L, &b, at);
  }
  luaL_pushresult(&b);
  return lua_error(L);
}

/* If the object at 'idx' was met before, writes a reference to it and
** returns 1; otherwise returns 0. */
static int enc_ref(struct enc *e, int idx) {
  lua_State *L = e->L;
  if (!e->has_ids) return 0;
  lua_pushvalue(L, idx);
  lua_rawget(L, e->ids);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_Integer id = lua_tointeger(L, -1);
  lua_pop(L, 1);
  lask__put_u8(e->w, LASK__T_REF);
  lask__put_varint(e->w, (uint64_t)id);
  return 1;
}

/* Gives the object at 'idx' the next id; the decoder numbers the tables and
** functions it creates in the same order. Returns the id. */
static lua_Integer enc_newid(struct enc *e, int idx) {
  lua_State *L = e->L;
  if (!e->has_ids) { /* made on first need: plain arguments never pay */
    lua_createtable(L, 0, 4);
    lua_replace(L, e->ids);
    e->has_ids = 1;
  }
  lua_pushvalue(L, idx);
  lua_pushinteger(L, e->nextid);
  lua_rawset(L, e->ids);
  return e->nextid++;
}

/* Writes a module reference for the object at 'idx' if it is in the
** module index; returns whether it did. A Lua function is looked up in the
** index as it is, even if package.loaded changed since it was built: a miss
** only means the function travels by value, which works anyway, and it
** spares every closure a scan of package.loaded. */
static int enc_modref(struct enc *e, int idx) {
  lua_State *L = e->L;
  if (e->modindex == 0) {
    int lua_fn = lua_type(L, idx) == LUA_TFUNCTION && !lua_iscfunction(L, idx);
    push_modindex(L, !lua_fn);
    e->modindex = lua_gettop(L);
    e->modchecked = !lua_fn;
  }
  lua_pushvalue(L, idx);
  lua_rawget(L, e->modindex);
  if (lua_isnil(L, -1) && !e->modchecked &&
      (lua_type(L, idx) != LUA_TFUNCTION || lua_iscfunction(L, idx))) {
    /* A miss for a table, C function or userdata: make sure the index is
    ** current (once per encoding), then look again. */
    lua_pop(L, 1);
    push_modindex(L, 1);
    lua_replace(L, e->modindex);
    e->modchecked = 1;
    lua_pushvalue(L, idx);
    lua_rawget(L, e->modindex);
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  lask__put_u8(e->w, LASK__T_MODREF);
  int rc = lask__put_bytes(e->w, s, n);
  lua_pop(L, 1);
  if (rc != 0) lask__raise_rc(L, rc, "serialize");
  return 1;
}

static void enter(struct enc *e) {
  if (++e->depth > MAX_DEPTH) {
    luaL_error(e->L, "lask: cannot serialize: nesting deeper than %d levels",
               MAX_DEPTH);
  }
  if (!lua_checkstack(e->L, 8)) {
    luaL_error(e->L, "lask: cannot serialize: Lua stack exhausted");
  }
}

static inline void enc_number(struct enc *e, int idx) {
  lua_State *L = e->L;
#if LASK_HAS_INTEGERS
  if (lua_isinteger(L, idx)) {
    lask__put_u8(e->w, LASK__T_INT);
    lask__put_varint(e->w, lask__zigzag((int64_t)lua_tointeger(L, idx)));
    return;
  }
#endif
  double d = (double)lua_tonumber(L, idx);
#if !LASK_HAS_INTEGERS
  /* LuaJIT: integral doubles within 2^53 travel as compact integers. */
  if (d >= -9007199254740992.0 && d <= 9007199254740992.0 &&
      d == floor(d) && !(d == 0 && signbit(d))) {
    lask__put_u8(e->w, LASK__T_INT);
    lask__put_varint(e->w, lask__zigzag((int64_t)d));
    return;
  }
#endif
  lask__put_u8(e->w, LASK__T_FLOAT);
  lask__put_f64(e->w, d);
}

/* Writes a placeholder (see struct lask_placeholders) if the table at
** 'idx' is one; returns whether it was. */
static int enc_placeholder(struct enc *e, int idx) {
  lua_State *L = e->L;
  if (e->ph == NULL || !lua_getmetatable(L, idx)) return 0;
  int is = lua_rawequal(L, -1, e->ph->mt);
  lua_pop(L, 1);
  if (!is) return 0;
  if (e->ph->map == 0) {
    lua_rawgeti(L, idx, 1);
    size_t n;
    const char *key = lua_tolstring(L, -1, &n);
    if (key == NULL) luaL_error(L, "lask: a placeholder without a key");
    lask__put_u8(e->w, LASK__T_STR);
    int rc = lask__put_string(e->w, key, n);
    if (rc != 0) lask__raise_rc(L, rc, "serialize");
  } else {
    lua_pushvalue(L, idx);
    lua_rawget(L, e->ph->map);
    if (!lua_isnumber(L, -1)) {
      luaL_error(L, "lask: a Delayed argument is missing from the graph");
    }
    lask__put_u8(e->w, LASK__T_DEPREF);
    lask__put_varint(e->w, (uint64_t)lua_tointeger(L, -1));
  }
  lua_pop(L, 1);
  return 1;
}

static void enc_table(struct enc *e, int idx, const struct step *at) {
  lua_State *L = e->L;
  if (enc_placeholder(e, idx)) return;
  if (lua_rawequal(L, idx, e->globals)) {
    lask__put_u8(e->w, LASK__T_GLOBALS);
    return;
  }
  if (enc_ref(e, idx) || enc_modref(e, idx)) return;
  enc_newid(e, idx);
  enter(e);
  if (lua_getmetatable(L, idx)) {
    lua_rawget(L, e->name_by_mt);
    if (lua_isnil(L, -1)) {
      enc_fail(e, idx, at, " (its metatable is not registered: call "
               "lask.register_metatable(name, mt))");
    }
    size_t n;
    const char *name = lua_tolstring(L, -1, &n);
    reserve(e, 1);
    lask__put_u8(e->w, LASK__T_TABLE_MT);
    int rc = lask__put_string(e->w, name, n);
    if (rc != 0) lask__raise_rc(L, rc, "serialize");
    lua_pop(L, 1);
    reserve(e, 8);
  } else {
    reserve(e, 9);
    lask__put_u8(e->w, LASK__T_TABLE);
  }
  size_t sizes = e->w->len;
  lask__put_u32(e->w, 0);
  lask__put_u32(e->w, 0);
  uint32_t narr = 0, nhash = 0;
  lua_pushnil(L);
  int top = lua_gettop(L) + 1; /* the value; the key is just below it */
  while (lua_next(L, idx)) {
    /* The format puts the array values before the pairs, but lua_next may
    ** give a pair first (LuaJIT's slot 0, integer keys in the hash part):
    ** after the first pair, every entry is written as a pair. */
#if LASK_HAS_INTEGERS
    int next = nhash == 0 && lua_isinteger(L, -2) &&
               lua_tointeger(L, -2) == narr + 1;
#else
    int next = nhash == 0 && lua_type(L, -2) == LUA_TNUMBER &&
               lua_tonumber(L, -2) == (lua_Number)narr + 1;
#endif
    if (next) {
      if (lua_type(L, top) == LUA_TNUMBER) { /* the hot case, inline */
        reserve(e, 16);
        enc_number(e, top);
      } else {
        struct step s = {STEP_INDEX, 0, (lua_Integer)narr + 1, at};
        enc_value(e, top, &s);
      }
      narr++;
    } else {
      struct step sk = {STEP_KEY, 0, 0, at};
      struct step sv = {STEP_FIELD, top - 1, 0, at};
      enc_value(e, top - 1, &sk);
      enc_value(e, top, &sv);
      nhash++;
    }
    lua_pop(L, 1);
    if (narr == UINT32_MAX || nhash == UINT32_MAX) {
      luaL_error(L, "lask: cannot serialize a table of %d or more entries",
                 (int)UINT32_MAX);
    }
  }
  lask__patch_u32(e->w, sizes, narr);
  lask__patch_u32(e->w, sizes + 4, nhash);
  e->depth--;
}

static int dump_writer(lua_State *L, const void *p, size_t n, void *ud) {
  (void)L;
  return lask__put_bytes((struct lask_wbuf *)ud, p, n) != 0;
}

/* Writes the bytecode of the Lua function at 'idx' as a string item. The
** dump goes straight into the output after a 5-byte length slot that is
** patched afterwards (a padded varint: the reader accepts non-minimal
** varints). There is no per-closure cache: tasks make fresh closures, and
** caching those cost more in the garbage collector than dumping again;
** the scheduler encodes a function once per graph instead. */
static void put_bytecode(struct enc *e, int idx) {
  lua_State *L = e->L;
  reserve(e, 5);
  size_t slot = e->w->len;
  e->w->len += 5;
  lua_pushvalue(L, idx);
  int bad = lask_dump(L, dump_writer, e->w, 0);
  lua_pop(L, 1);
  size_t n = e->w->len - slot - 5;
  if (bad || n >= (1u << 28)) lask__raise_rc(L, LASK_ENOMEM, "serialize");
  for (int i = 0; i < 5; i++) {
    e->w->p[slot + (size_t)i] = (uint8_t)(((n >> (7 * i)) & 0x7f) |
                                          (i < 4 ? 0x80 : 0));
  }
}

static void enc_upvalue(struct enc *e, int idx, int i, lua_Integer fid,
                        const struct step *at) {
  lua_State *L = e->L;
  const char *name = lua_getupvalue(L, idx, i);
  reserve(e, 16);
  /* _ENV, whatever it holds (busted, for one, runs code in a proxy table),
  ** and any upvalue holding the globals become the receiver's globals. */
  if (lua_rawequal(L, -1, e->globals) || strcmp(name, "_ENV") == 0) {
    lask__put_u8(e->w, LASK__UV_ENV);
    lua_pop(L, 1);
    return;
  }
  lua_pushlightuserdata(L, lua_upvalueid(L, idx, i));
  lua_rawget(L, e->ids);
  if (!lua_isnil(L, -1)) {
    lua_Integer code = lua_tointeger(L, -1);
    lask__put_u8(e->w, LASK__UV_JOIN);
    lask__put_varint(e->w, (uint64_t)(code >> 8));
    lask__put_u8(e->w, (unsigned)(code & 0xff));
    lua_pop(L, 2);
    return;
  }
  lua_pop(L, 1);
  lua_pushlightuserdata(L, lua_upvalueid(L, idx, i));
  lua_pushinteger(L, fid * 256 + i);
  lua_rawset(L, e->ids);
  lask__put_u8(e->w, LASK__UV_VALUE);
  struct step s = {STEP_UPVALUE, idx, i, at};
  enc_value(e, lua_gettop(L), &s);
  lua_pop(L, 1);
}

static void enc_function(struct enc *e, int idx, const struct step *at) {
  lua_State *L = e->L;
  if (enc_ref(e, idx) || enc_modref(e, idx)) return;
  if (lua_iscfunction(L, idx)) {
    enc_fail(e, idx, at, " (C functions travel only when reachable from "
             "package.loaded)");
  }
  lua_Integer fid = enc_newid(e, idx);
  enter(e);
  e->flags |= LASK__CF_CODE;
  reserve(e, 1);
  lask__put_u8(e->w, LASK__T_FUNC);
  put_bytecode(e, idx);
  int nups = 0;
  while (lua_getupvalue(L, idx, nups + 1) != NULL) {
    lua_pop(L, 1);
    nups++;
  }
  reserve(e, 1);
  lask__put_u8(e->w, (unsigned)nups);
  for (int i = 1; i <= nups; i++) enc_upvalue(e, idx, i, fid, at);
  /* LuaJIT: the function environment is not sent; lua_load gives the
  ** decoded function the receiver's globals. */
  e->depth--;
}

static void enc_value(struct enc *e, int idx, const struct step *at) {
  lua_State *L = e->L;
  reserve(e, 16);
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    lask__put_u8(e->w, LASK__T_NIL);
    break;
  case LUA_TBOOLEAN:
    lask__put_u8(e->w, lua_toboolean(L, idx) ? LASK__T_TRUE : LASK__T_FALSE);
    break;
  case LUA_TNUMBER:
    enc_number(e, idx);
    break;
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    lask__put_u8(e->w, LASK__T_STR);
    int rc = lask__put_string(e->w, s, n);
    if (rc != 0) lask__raise_rc(L, rc, "serialize");
    break;
  }
  case LUA_TTABLE:
    enc_table(e, idx, at);
    break;
  case LUA_TFUNCTION:
    enc_function(e, idx, at);
    break;
  case LUA_TUSERDATA:
    if (enc_modref(e, idx)) break;
    enc_fail(e, idx, at, "");
    break;
  default:
    enc_fail(e, idx, at, "");
  }
}

/* Prepares 'e' and pushes its working tables (ids, globals, name_by_mt). */
static void enc_init(struct enc *e, lua_State *L, struct lask_wbuf *w,
                     const struct lask_placeholders *ph) {
  luaL_checkstack(L, 16, "lask.serialize");
  e->L = L;
  e->w = w;
  e->ph = ph;
  e->nextid = 1;
  e->flags = 0;
  e->depth = 0;
  e->modindex = 0;
  e->modchecked = 0;
  lua_pushnil(L); /* the ids table, made by enc_newid when first needed */
  e->ids = lua_gettop(L);
  e->has_ids = 0;
  lask_pushglobals(L);
  e->globals = lua_gettop(L);
  push_regtable(L, &key_name_by_mt, NULL);
  e->name_by_mt = lua_gettop(L);
}

void lask__value_encode(lua_State *L, int idx, struct lask_wbuf *w) {
  idx = lua_absindex(L, idx);
  int top = lua_gettop(L);
  struct enc e;
  enc_init(&e, L, w, NULL);
  int rc = lask__codec_begin(w, LASK_FLAVOUR);
  if (rc != 0) lask__raise_rc(L, rc, "serialize");
  enc_value(&e, idx, NULL);
  lask__codec_seal(w, e.flags);
  lua_settop(L, top);
}

int lask__value_encode_items(lua_State *L, int idx, int count,
                             struct lask_wbuf *w,
                             const struct lask_placeholders *ph) {
  idx = lua_absindex(L, idx);
  int top = lua_gettop(L);
  struct enc e;
  enc_init(&e, L, w, ph);
  for (int i = 0; i < count; i++) enc_value(&e, idx + i, NULL);
  lua_settop(L, top);
  return e.flags;
}

/* -------------------------------------------------------------------------
** Decoding
** ---------------------------------------------------------------------- */

struct dec {
  lua_State *L;
  struct lask_rbuf r;
  const uint8_t *start; /* first byte of the whole encoding, for offsets */
  int refs;             /* stack index: id -> table or function */
  lua_Integer nextid;
  int depth;
  int opts;
  int code; /* the header says the body holds bytecode */
  const struct lask_deps *deps; /* resolves DEPREF, or NULL */
  int has_refs; /* the refs slot holds its table (else nil, not made yet) */
};

static int dec_corrupt(struct dec *d, const char *what) {
  return luaL_error(d->L, "lask: corrupt serialized value (%s at byte %d)",
                    what, (int)(d->r.pos - d->start));
}

static inline void dec_check(struct dec *d, int rc, const char *what) {
  if (rc == LASK_ETRUNC) dec_corrupt(d, "truncated");
  if (rc != 0) dec_corrupt(d, what);
}

static void dec_value(struct dec *d);

static void dec_enter(struct dec *d) {
  if (++d->depth > MAX_DEPTH) dec_corrupt(d, "nesting too deep");
  if (!lua_checkstack(d->L, 8)) dec_corrupt(d, "nesting too deep");
}

static void dec_register(struct dec *d) {
  if (!d->has_refs) { /* made on first need: plain values never pay */
    lua_createtable(d->L, 4, 0);
    lua_replace(d->L, d->refs);
    d->has_refs = 1;
  }
  lua_pushvalue(d->L, -1);
  lua_rawseti(d->L, d->refs, (lua_Integer)d->nextid++);
}

static void dec_int(struct dec *d) {
  uint64_t u;
  dec_check(d, lask__get_varint(&d->r, &u), "bad integer");
  int64_t v = lask__unzigzag(u);
#if LASK_HAS_INTEGERS
  lua_pushinteger(d->L, (lua_Integer)v);
#else
  if (v > 9007199254740992LL || v < -9007199254740992LL) {
    luaL_error(d->L, "lask: cannot deserialize integer %lld: LuaJIT "
               "numbers hold integers exactly only up to 2^53",
               (long long)v);
  }
  lua_pushnumber(d->L, (lua_Number)v);
#endif
}

static void dec_table(struct dec *d, int with_mt) {
  lua_State *L = d->L;
  const uint8_t *name = NULL;
  size_t nlen = 0;
  if (with_mt) {
    dec_check(d, lask__get_string(&d->r, &name, &nlen), "bad name");
  }
  uint32_t narr, nhash;
  dec_check(d, lask__get_u32(&d->r, &narr), "bad table size");
  dec_check(d, lask__get_u32(&d->r, &nhash), "bad table size");
  /* Every entry takes at least one byte, so the sizes cannot exceed what
  ** is left: this bounds the allocation below by the input's size. */
  size_t left = lask__rbuf_left(&d->r);
  if (narr > left || nhash > left / 2 || narr + (size_t)nhash * 2 > left ||
      narr > INT_MAX || nhash > INT_MAX) {
    dec_corrupt(d, "table larger than its input");
  }
  dec_enter(d);
  lua_createtable(L, (int)narr, (int)nhash);
  dec_register(d);
  int t = lua_gettop(L);
  for (uint32_t i = 1; i <= narr; i++) {
    double v;
    if (d->r.pos < d->r.end && *d->r.pos == LASK__T_FLOAT &&
        d->r.end - d->r.pos >= 9) { /* the hot case, inline */
      uint64_t u = lask__load_le64(d->r.pos + 1);
      memcpy(&v, &u, 8);
      d->r.pos += 9;
      lua_pushnumber(L, (lua_Number)v);
    } else {
      dec_value(d);
    }
    lua_rawseti(L, t, (lua_Integer)i);
  }
  for (uint32_t i = 0; i < nhash; i++) {
    dec_value(d);
    if (lua_isnil(L, -1)) dec_corrupt(d, "nil table key");
    if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) !=
        lua_tonumber(L, -1)) {
      dec_corrupt(d, "NaN table key");
    }
    dec_value(d);
    lua_rawset(L, t);
  }
  if (with_mt) {
    push_regtable(L, &key_mt_by_name, NULL);
    lua_pushlstring(L, (const char *)name, nlen);
    lua_rawget(L, -2);
    if (!lua_istable(L, -1)) {
      lua_pushlstring(L, (const char *)name, nlen);
      luaL_error(L, "lask: cannot deserialize a table whose metatable '%s' "
                 "is not registered in this Lua state (call "
                 "lask.register_metatable)", lua_tostring(L, -1));
    }
    lua_setmetatable(L, t);
    lua_pop(L, 1);
  }
  d->depth--;
}

/* Pushes the function with id 'fid' if it is a Lua function with at least
** 'n' upvalues; a corrupt-input error otherwise. */
static void dec_join_target(struct dec *d, uint64_t fid, unsigned n) {
  lua_State *L = d->L;
  if (!d->has_refs || fid == 0 || fid >= (uint64_t)d->nextid) {
    dec_corrupt(d, "bad join");
  }
  lua_rawgeti(L, d->refs, (lua_Integer)fid);
  if (lua_type(L, -1) != LUA_TFUNCTION || lua_iscfunction(L, -1) || n == 0 ||
      lua_getupvalue(L, -1, (int)n) == NULL) {
    dec_corrupt(d, "bad join");
  }
  lua_pop(L, 1);
}

static void dec_function(struct dec *d) {
  lua_State *L = d->L;
  if (!d->code) dec_corrupt(d, "bytecode in a value flagged as data");
  if (d->opts & LASK_DEC_NOCODE) {
    luaL_error(L, "lask: refusing to load bytecode from an untrusted source");
  }
  const uint8_t *code;
  size_t n;
  dec_check(d, lask__get_string(&d->r, &code, &n), "bad bytecode");
  dec_enter(d);
  if (lask_loadbinary(L, (const char *)code, n, "=(lask)") != LUA_OK) {
    lua_pushfstring(L, "bytecode rejected: %s", lua_tostring(L, -1));
    dec_corrupt(d, lua_tostring(L, -1));
  }
  dec_register(d);
  int f = lua_gettop(L);
  unsigned nups = 0;
  dec_check(d, lask__get_u8(&d->r, &nups), "bad upvalue count");
  if (lua_getupvalue(L, f, (int)nups + 1) != NULL ||
      (nups > 0 && lua_getupvalue(L, f, (int)nups) == NULL)) {
    dec_corrupt(d, "upvalue count does not match the bytecode");
  }
  if (nups > 0) lua_pop(L, 1);
  for (unsigned i = 1; i <= nups; i++) {
    unsigned kind = 0;
    dec_check(d, lask__get_u8(&d->r, &kind), "bad upvalue");
    if (kind == LASK__UV_ENV) {
      lask_pushglobals(L);
      lua_setupvalue(L, f, (int)i);
    } else if (kind == LASK__UV_VALUE) {
      dec_value(d);
      lua_setupvalue(L, f, (int)i);
    } else if (kind == LASK__UV_JOIN) {
      uint64_t fid = 0;
      unsigned un = 0;
      dec_check(d, lask__get_varint(&d->r, &fid), "bad join");
      dec_check(d, lask__get_u8(&d->r, &un), "bad join");
      dec_join_target(d, fid, un);
      lua_upvaluejoin(L, f, (int)i, -1, (int)un);
      lua_pop(L, 1);
    } else {
      dec_corrupt(d, "bad upvalue kind");
    }
  }
#if LASK_HAS_FENV
  lask_pushglobals(L); /* whatever environment the loading code had */
  lua_setfenv(L, f);
#endif
  d->depth--;
}

/* Resolves a module reference: require(name), then the keys in turn. */
static void dec_modref(struct dec *d) {
  lua_State *L = d->L;
  unsigned nparts = 0;
  dec_check(d, lask__get_u8(&d->r, &nparts), "bad module reference");
  if (nparts < 1 || nparts > MAX_MODPARTS) dec_corrupt(d, "bad module path");
  const uint8_t *part[MAX_MODPARTS];
  size_t len[MAX_MODPARTS];
  for (unsigned i = 0; i < nparts; i++) {
    dec_check(d, lask__get_string(&d->r, &part[i], &len[i]), "bad module");
  }
  lua_pushlstring(L, (const char *)part[0], len[0]);
  lask_pushloaded(L);
  lua_pushvalue(L, -2);
  lua_rawget(L, -2);
  lua_remove(L, -2);
  if (lua_isnil(L, -1) && (d->opts & LASK_DEC_NOCODE)) {
    /* Untrusted input names no module to load: only loaded ones resolve. */
    luaL_error(L, "lask: cannot deserialize a reference to module '%s': "
               "not loaded, and untrusted input may not load modules",
               lua_tostring(L, -2));
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushvalue(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      luaL_error(L, "lask: cannot deserialize a reference to module '%s': %s",
                 lua_tostring(L, -2), lua_tostring(L, -1));
    }
  }
  for (unsigned i = 1; i < nparts; i++) {
    if (lua_istable(L, -1)) {
      lua_pushlstring(L, (const char *)part[i], len[i]);
      lua_rawget(L, -2);
    } else {
      lua_pushnil(L);
    }
    if (lua_isnil(L, -1)) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (unsigned j = 0; j <= i; j++) {
        if (j > 0) luaL_addchar(&b, '.');
        luaL_addlstring(&b, (const char *)part[j], len[j]);
      }
      luaL_pushresult(&b);
      luaL_error(L, "lask: cannot deserialize a reference to '%s': not "
                 "found in this Lua state", lua_tostring(L, -1));
    }
    lua_remove(L, -2);
  }
  lua_remove(L, -2);
}

static void dec_value(struct dec *d) {
  lua_State *L = d->L;
  unsigned tag = 0;
  dec_check(d, lask__get_u8(&d->r, &tag), "bad tag");
  switch (tag) {
  case LASK__T_NIL: lua_pushnil(L); break;
  case LASK__T_FALSE: lua_pushboolean(L, 0); break;
  case LASK__T_TRUE: lua_pushboolean(L, 1); break;
  case LASK__T_INT: dec_int(d); break;
  case LASK__T_FLOAT: {
    double v;
    dec_check(d, lask__get_f64(&d->r, &v), "bad float");
    lua_pushnumber(L, (lua_Number)v);
    break;
  }
  case LASK__T_STR: {
    const uint8_t *s;
    size_t n;
    dec_check(d, lask__get_string(&d->r, &s, &n), "bad string");
    lua_pushlstring(L, (const char *)s, n);
    break;
  }
  case LASK__T_TABLE: dec_table(d, 0); break;
  case LASK__T_TABLE_MT: dec_table(d, 1); break;
  case LASK__T_REF: {
    uint64_t id;
    dec_check(d, lask__get_varint(&d->r, &id), "bad reference");
    if (!d->has_refs || id == 0 || id >= (uint64_t)d->nextid) {
      dec_corrupt(d, "bad reference");
    }
    lua_rawgeti(L, d->refs, (lua_Integer)id);
    break;
  }
  case LASK__T_FUNC: dec_function(d); break;
  case LASK__T_MODREF: dec_modref(d); break;
  case LASK__T_GLOBALS: lask_pushglobals(L); break;
  case LASK__T_DEPREF: {
    uint64_t task;
    dec_check(d, lask__get_varint(&d->r, &task), "bad dependency");
    if (d->deps == NULL) dec_corrupt(d, "dependency outside a task");
    d->deps->push(L, d->deps->ud, task);
    break;
  }
  default: dec_corrupt(d, "unknown tag");
  }
}

void lask__value_decode(lua_State *L, const void *p, size_t n, int opts) {
  struct lask_header h;
  struct dec d;
  int rc = lask__codec_open(p, n, &h, &d.r);
  if (rc == LASK_EVERSION) {
    luaL_error(L, "lask: cannot deserialize: made by format version %d, "
               "this is version %d", n > 3 ? ((const uint8_t *)p)[3] : 0,
               LASK__CODEC_VERSION);
  }
  if (rc != 0) {
    luaL_error(L, "lask: corrupt serialized value (%s)", lask_strerror(rc));
  }
  if ((h.flags & LASK__CF_CODE) && h.flavour != LASK_FLAVOUR) {
    luaL_error(L, "lask: cannot deserialize bytecode made by %s in %s "
               "(bytecode is interpreter-specific: run one interpreter on "
               "both sides)", lask_flavour_name(h.flavour), LASK_FLAVOUR_NAME);
  }
  if (h.flags & ~LASK__CF_CODE) {
    luaL_error(L, "lask: corrupt serialized value (unknown flags)");
  }
  luaL_checkstack(L, 16, "lask.deserialize");
  d.L = L;
  d.start = p;
  d.nextid = 1;
  d.depth = 0;
  d.opts = opts;
  d.deps = NULL;
  /* Without the CODE flag no bytecode may appear, whatever the body says. */
  d.code = (h.flags & LASK__CF_CODE) != 0;
  lua_pushnil(L); /* the refs table, made by dec_register when needed */
  d.refs = lua_gettop(L);
  d.has_refs = 0;
  dec_value(&d);
  if (d.r.pos != d.r.end) dec_corrupt(&d, "trailing bytes");
  lua_remove(L, d.refs);
}

void lask__value_decode_items(lua_State *L, const void *p, size_t n,
                              int count, const struct lask_deps *deps) {
  struct dec d;
  luaL_checkstack(L, count + 16, "lask: task arguments");
  d.L = L;
  d.r.pos = p;
  d.r.end = (const uint8_t *)p + n;
  d.start = p;
  d.nextid = 1;
  d.depth = 0;
  d.opts = 0;
  d.code = 1;
  d.deps = deps;
  lua_pushnil(L);
  d.refs = lua_gettop(L);
  d.has_refs = 0;
  for (int i = 0; i < count; i++) dec_value(&d);
  if (d.r.pos != d.r.end) dec_corrupt(&d, "trailing bytes");
  lua_remove(L, d.refs);
}
