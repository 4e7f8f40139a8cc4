/*
** value.c: the Lua side of the serialization layer: per-state tables and
** the encoder of Lua values into the byte format of runtime/codec.h.
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
** The decoder is in value_dec.c, the module index in modindex.c.
*/
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "ndarray.h"
#include "value.h"

/* Registry keys: only their addresses matter. */
const char lask__key_mt_by_name = 0;
const char lask__key_name_by_mt = 0;

/* -------------------------------------------------------------------------
** Per-state tables in the registry
** ---------------------------------------------------------------------- */

void lask__push_regtable(lua_State *L, const void *key, const char *mode) {
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
  lask__push_regtable(L, &lask__key_mt_by_name, NULL);
  lask__push_regtable(L, &lask__key_name_by_mt, NULL);
  lua_pushvalue(L, 1);
  lua_rawget(L, -3);
  if (!lua_isnil(L, -1) && !lua_rawequal(L, -1, 2)) {
    return lask__fail(L, "lask.register_metatable: name '%s' is already "
                      "registered for another metatable", lua_tostring(L, 1));
  }
  lua_pop(L, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  if (!lua_isnil(L, -1) && !lua_rawequal(L, -1, 1)) {
    return lask__fail(L, "lask.register_metatable: this metatable is already "
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

static int wbuf_gc(lua_State *L) {
  lask__wbuf_close(lua_touserdata(L, 1));
  return 0;
}

struct lask_wbuf *lask__new_boxed_wbuf(lua_State *L) {
  struct lask_wbuf *w = lua_newuserdatauv(L, sizeof *w, 0);
  lask__wbuf_init(w);
  lua_newtable(L);
  lua_pushcfunction(L, wbuf_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  return w;
}

int lask__fail(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lua_error(L);
}

/* Calls __tostring on the value at 1 (protected by the caller). */
static int call_tostring(lua_State *L) {
  luaL_callmeta(L, 1, "__tostring");
  return 1;
}

int lask__task_traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    /* A __tostring that raises must not lose the original error. */
    lua_pushcfunction(L, call_tostring);
    lua_pushvalue(L, 1);
    if (luaL_getmetafield(L, 1, "__tostring") != LUA_TNIL &&
        (lua_pop(L, 1), lua_pcall(L, 1, 1, 0) == 0) &&
        lua_type(L, -1) == LUA_TSTRING) {
      msg = lua_tostring(L, -1);
    } else {
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, 1));
    }
  }
  /* A message raised again with the traceback of where it was first
  ** raised (bag pipelines with inlined steps) keeps that one alone. */
  if (strstr(msg, "\nstack traceback:\n") != NULL) lua_pushstring(L, msg);
  else luaL_traceback(L, L, msg, 1);
  /* The outermost frame is the C function the scheduler called the task
  ** from ("[C]: in ?", or an address on LuaJIT): not the user's, so it is
  ** left out, unless it is the only frame. */
  const char *tb = lua_tostring(L, -1);
  const char *head = strstr(tb, "\nstack traceback:\n");
  const char *last = strrchr(tb, '\n');
  if (head != NULL && last > strchr(head + 1, '\n') &&
      strncmp(last, "\n\t[C]: ", 6) == 0) {
    lua_pushlstring(L, tb, (size_t)(last - tb));
  }
  return 1;
}

int lask__raise_rc(lua_State *L, int rc, const char *what) {
  return lask__fail(L, "lask: %s: %s", what, lask_strerror(rc));
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
  int modchecked; /* the index was rebuilt during this encoding */
  int name_by_mt;
  const struct lask_placeholders *ph; /* or NULL */
  lua_Integer nextid;
  int flags;
  int depth;
  int byref; /* arrays by reference: the bytes stay in this process */
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
** module index (checked to be current once per encoding, at O(1) cost
** while package.loaded carries lask's hook); returns whether it did. */
static int enc_modref(struct enc *e, int idx) {
  lua_State *L = e->L;
  if (e->modindex == 0) {
    lask__modindex_push(L, 1);
    e->modindex = lua_gettop(L);
    e->modchecked = 0; /* current, but not rebuilt during this encoding */
  }
  lua_pushvalue(L, idx);
  lua_rawget(L, e->modindex);
  if (!lua_isnil(L, -1) && !lask__modref_valid(L, idx, lua_gettop(L))) {
    /* Unloaded or replaced since the index was built: rebuild it once per
    ** encoding and look again; failing that, the value travels by value. */
    lua_pop(L, 1);
    if (e->modchecked) return 0;
    lask__modindex_push(L, 1);
    lua_replace(L, e->modindex);
    e->modchecked = 1;
    lua_pushvalue(L, idx);
    lua_rawget(L, e->modindex);
    if (!lua_isnil(L, -1) && !lask__modref_valid(L, idx, lua_gettop(L))) {
      lua_pop(L, 1);
      return 0;
    }
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
  if (++e->depth > LASK__MAX_DEPTH) {
    lask__fail(e->L, "lask: cannot serialize: nesting deeper than %d levels",
               LASK__MAX_DEPTH);
  }
  if (!lua_checkstack(e->L, 8)) {
    lask__fail(e->L, "lask: cannot serialize: Lua stack exhausted");
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
    if (key == NULL) lask__fail(L, "lask: a placeholder without a key");
    lask__put_u8(e->w, LASK__T_STR);
    int rc = lask__put_string(e->w, key, n);
    if (rc != 0) lask__raise_rc(L, rc, "serialize");
  } else {
    lua_pushvalue(L, idx);
    lua_rawget(L, e->ph->map);
    if (!lua_isnumber(L, -1)) {
      lask__fail(L, "lask: a Delayed inside a table with a metatable, or "
                 "in an upvalue, is not a dependency of the task: pass it as "
                 "an argument or inside a plain table");
    }
    lask__put_u8(e->w, LASK__T_DEPREF);
    lask__put_varint(e->w, (uint64_t)lua_tointeger(L, -1));
  }
  lua_pop(L, 1);
  return 1;
}

/* Writes one table entry, its value at 'top' and its key just below: as
** the next array value when 'next', else as a key/value pair. */
static void enc_entry(struct enc *e, int top, int next, const struct step *at,
                      uint32_t *narr, uint32_t *nhash) {
  if (next) {
    struct step s = {STEP_INDEX, 0, (lua_Integer)*narr + 1, at};
    enc_value(e, top, &s);
    (*narr)++;
  } else {
    struct step sk = {STEP_KEY, 0, 0, at};
    struct step sv = {STEP_FIELD, top - 1, 0, at};
    enc_value(e, top - 1, &sk);
    enc_value(e, top, &sv);
    (*nhash)++;
  }
}

/* Writes the entries of the table at 'idx' in lua_next order: array
** values first, then pairs; counts them into *narr and *nhash. */
static void enc_entries(struct enc *e, int idx, const struct step *at,
                        uint32_t *narr, uint32_t *nhash) {
  lua_State *L = e->L;
  lua_pushnil(L);
  int top = lua_gettop(L) + 1; /* the value; the key is just below it */
  while (lua_next(L, idx)) {
    /* The format puts the array values before the pairs, but lua_next may
    ** give a pair first (LuaJIT's slot 0, integer keys in the hash part):
    ** after the first pair, every entry is written as a pair. */
#if LASK_HAS_INTEGERS
    int next = (*nhash) == 0 && lua_isinteger(L, -2) &&
               lua_tointeger(L, -2) == (*narr) + 1;
#else
    int next = (*nhash) == 0 && lua_type(L, -2) == LUA_TNUMBER &&
               lua_tonumber(L, -2) == (lua_Number)(*narr) + 1;
#endif
    if (next && lua_type(L, top) == LUA_TNUMBER) { /* the hot case */
      reserve(e, 16);
      enc_number(e, top);
      (*narr)++;
    } else {
      enc_entry(e, top, next, at, narr, nhash);
    }
    lua_pop(L, 1);
    if ((*narr) == UINT32_MAX || (*nhash) == UINT32_MAX) {
      lask__fail(L, "lask: cannot serialize a table of %d or more entries",
                 (int)UINT32_MAX);
    }
  }
}

/* A key of a table being hashed, for sorting. */
struct ckey {
  int rank;        /* 0 number, 1 string, 2 boolean, 3 anything else */
  double num;
  const char *s;
  size_t len;
  lua_Integer pos; /* where the key is kept (and lua_next order) */
};

static int cmp_ckey(const void *a, const void *b) {
  const struct ckey *x = a, *y = b;
  if (x->rank != y->rank) return x->rank - y->rank;
  if (x->rank == 1) {
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (c != 0) return c;
    return (x->len > y->len) - (x->len < y->len);
  }
  if (x->rank != 3 && x->num != y->num) return x->num < y->num ? -1 : 1;
  return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Writes the entries of the table at 'idx' with keys in a canonical order
** (numbers, strings, booleans, then others as lua_next gives them), so
** that equal tables encode to equal bytes whatever their insertion
** history: used for the keys of pure tasks. */
static void enc_entries_sorted(struct enc *e, int idx, const struct step *at,
                               uint32_t *narr, uint32_t *nhash) {
  lua_State *L = e->L;
  lua_newtable(L); /* keeps the keys alive and in place while sorting */
  int keys = lua_gettop(L);
  lua_Integer n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, keys, ++n);
  }
  struct ckey *ck = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *ck, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    struct ckey *c = &ck[i - 1];
    lua_rawgeti(L, keys, i);
    int t = lua_type(L, -1);
    c->rank = t == LUA_TNUMBER ? 0 : t == LUA_TSTRING ? 1 :
              t == LUA_TBOOLEAN ? 2 : 3;
    c->num = t == LUA_TNUMBER ? (double)lua_tonumber(L, -1) :
             t == LUA_TBOOLEAN ? lua_toboolean(L, -1) : 0;
    c->s = t == LUA_TSTRING ? lua_tolstring(L, -1, &c->len) : NULL;
    c->pos = i;
    lua_pop(L, 1);
  }
  qsort(ck, (size_t)n, sizeof *ck, cmp_ckey);
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, keys, ck[i].pos);
    lua_pushvalue(L, -1);
    lua_rawget(L, idx);
    int top = lua_gettop(L);
    int next = *nhash == 0 && ck[i].rank == 0 &&
               ck[i].num == (double)*narr + 1;
    enc_entry(e, top, next, at, narr, nhash);
    lua_pop(L, 2);
  }
  lua_pop(L, 2);
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
  if (e->ph != NULL && e->ph->canonical) {
    enc_entries_sorted(e, idx, at, &narr, &nhash);
  } else {
    enc_entries(e, idx, at, &narr, &nhash);
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
  case LUA_TUSERDATA: {
    struct lask_nd *a = lask__nd_test(L, idx);
    if (a && a->buf) {
      lask__nd_encode(L, e->w, a, e->byref);
      break;
    }
    if (enc_modref(e, idx)) break;
    enc_fail(e, idx, at, "");
    break;
  }
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
  e->byref = 0;
  e->modindex = 0;
  e->modchecked = 0;
  lua_pushnil(L); /* the ids table, made by enc_newid when first needed */
  e->ids = lua_gettop(L);
  e->has_ids = 0;
  lask_pushglobals(L);
  e->globals = lua_gettop(L);
  lask__push_regtable(L, &lask__key_name_by_mt, NULL);
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
  /* In-process items carry arrays by reference, except for hashing,
  ** where equal contents must give equal keys. */
  e.byref = !(ph && ph->canonical);
  for (int i = 0; i < count; i++) enc_value(&e, idx + i, NULL);
  lua_settop(L, top);
  return e.flags;
}
