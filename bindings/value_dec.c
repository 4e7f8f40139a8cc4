/*
** value_dec.c: the decoder of the serialization layer: the byte format of
** runtime/codec.h back into Lua values.
**
** The header and checksum are checked first, then every item is read with
** bounds checks; table sizes are judged against the bytes left before any
** allocation. Bytecode is loaded only from an encoding made by the same
** interpreter, and never under LASK_DEC_NOCODE, which also refuses module
** references and the globals table: untrusted input decodes to plain data
** only.
*/
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "ndarray.h"
#include "value.h"

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
  int inproc;   /* the bytes come from this process: array references ok */
};

static int dec_corrupt(struct dec *d, const char *what) {
  return lask__fail(d->L, "lask: corrupt serialized value (%s at byte %d)",
                    what, (int)(d->r.pos - d->start));
}

static inline void dec_check(struct dec *d, int rc, const char *what) {
  if (rc == LASK_ETRUNC) dec_corrupt(d, "truncated");
  if (rc != 0) dec_corrupt(d, what);
}

static void dec_value(struct dec *d);

/* Untrusted input ({code = false}) decodes to plain data only: no code, no
** reference into this state (a module function such as os.execute, the
** globals table). */
static int untrusted(struct dec *d, const char *what) {
  return lask__fail(d->L, "lask: refusing %s from an untrusted source", what);
}

static void dec_enter(struct dec *d) {
  if (++d->depth > LASK__MAX_DEPTH) dec_corrupt(d, "nesting too deep");
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
    char num[32]; /* lua_pushfstring knows no %lld */
    snprintf(num, sizeof num, "%lld", (long long)v);
    lask__fail(d->L, "lask: cannot deserialize integer %s: LuaJIT "
               "numbers hold integers exactly only up to 2^53", num);
  }
  lua_pushnumber(d->L, (lua_Number)v);
#endif
}

/* A metatable name this state has not registered: the module that
** registers it may not be loaded here yet. Requires the name's prefixes
** in turn, longest first ("pkg.mod.Point": "pkg.mod.Point", "pkg.mod",
** "pkg"), until the name is registered; failures to load are ignored
** (the caller then reports the name). Trusted input only. Leaves the
** stack as it was. */
static void require_registrar(lua_State *L, const char *name, size_t n) {
  for (size_t end = n; end > 0;) {
    lua_getglobal(L, "require");
    if (lua_isfunction(L, -1)) {
      lua_pushlstring(L, name, end);
      if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1); /* the message */
    } else {
      lua_pop(L, 1);
    }
    lask__push_regtable(L, &lask__key_mt_by_name, NULL);
    lua_pushlstring(L, name, n);
    lua_rawget(L, -2);
    int found = lua_istable(L, -1);
    lua_pop(L, 2);
    if (found) return;
    while (end > 0 && name[end - 1] != '.') end--;
    if (end > 0) end--; /* drop the dot */
  }
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
    lask__push_regtable(L, &lask__key_mt_by_name, NULL);
    lua_pushlstring(L, (const char *)name, nlen);
    lua_rawget(L, -2);
    if (!lua_istable(L, -1) && !(d->opts & LASK_DEC_NOCODE)) {
      lua_pop(L, 1);
      require_registrar(L, (const char *)name, nlen);
      lua_pushlstring(L, (const char *)name, nlen);
      lua_rawget(L, -2);
    }
    if (!lua_istable(L, -1)) {
      lua_pushlstring(L, (const char *)name, nlen);
      lask__fail(L, "lask: cannot deserialize a table whose metatable '%s' "
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
  if (d->opts & LASK_DEC_NOCODE) untrusted(d, "bytecode");
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
  if (nparts < 1 || nparts > LASK__MAX_MODPARTS) dec_corrupt(d, "bad module path");
  const uint8_t *part[LASK__MAX_MODPARTS];
  size_t len[LASK__MAX_MODPARTS];
  for (unsigned i = 0; i < nparts; i++) {
    dec_check(d, lask__get_string(&d->r, &part[i], &len[i]), "bad module");
  }
  lua_pushlstring(L, (const char *)part[0], len[0]);
  lask_pushloaded(L);
  lua_pushvalue(L, -2);
  lua_rawget(L, -2);
  lua_remove(L, -2);
  if (lua_islightuserdata(L, -1)) {
    /* LuaJIT's mark of a module whose loading was interrupted (a task
    ** cancelled half-way through require): load it again. */
    lask_pushloaded(L);
    lua_pushvalue(L, -3);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushvalue(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      lask__fail(L, "lask: cannot deserialize a reference to module '%s': %s",
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
      lask__fail(L, "lask: cannot deserialize a reference to '%s': not "
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
  case LASK__T_MODREF:
    if (d->opts & LASK_DEC_NOCODE) untrusted(d, "a module reference");
    dec_modref(d);
    break;
  case LASK__T_GLOBALS:
    if (d->opts & LASK_DEC_NOCODE) untrusted(d, "the globals table");
    lask_pushglobals(L);
    break;
  case LASK__T_BUFFER: {
    const char *bad = lask__nd_decode(L, &d->r, d->inproc);
    if (bad) dec_corrupt(d, bad);
    break;
  }
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
    lask__fail(L, "lask: cannot deserialize: made by format version %d, "
               "this is version %d", n > 3 ? ((const uint8_t *)p)[3] : 0,
               LASK__CODEC_VERSION);
  }
  if (rc != 0) {
    lask__fail(L, "lask: corrupt serialized value (%s)", lask_strerror(rc));
  }
  if ((h.flags & LASK__CF_CODE) && h.flavour != LASK_FLAVOUR) {
    lask__fail(L, "lask: cannot deserialize bytecode made by %s in %s "
               "(bytecode is interpreter-specific: run one interpreter on "
               "both sides)", lask_flavour_name(h.flavour), LASK_FLAVOUR_NAME);
  }
  if (h.flags & ~LASK__CF_CODE) {
    lask__fail(L, "lask: corrupt serialized value (unknown flags)");
  }
  luaL_checkstack(L, 16, "lask.deserialize");
  d.L = L;
  d.start = p;
  d.nextid = 1;
  d.depth = 0;
  d.opts = opts;
  d.deps = NULL;
  d.inproc = 0;
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
  d.inproc = 1;
  lua_pushnil(L);
  d.refs = lua_gettop(L);
  d.has_refs = 0;
  for (int i = 0; i < count; i++) dec_value(&d);
  if (d.r.pos != d.r.end) dec_corrupt(&d, "trailing bytes");
  lua_remove(L, d.refs);
}
