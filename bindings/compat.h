/*
** compat.h: one face for Lua 5.4 and LuaJIT 2.1 (Lua 5.1 API).
**
** Bindings are written against the Lua 5.4 API; this header supplies the
** few 5.2+ functions LuaJIT lacks, and names the operations whose signatures
** differ (dump, binary load, the globals table, function environments).
*/
#ifndef LASK_COMPAT_H
#define LASK_COMPAT_H

#include <stdio.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lask.h"

#if LUA_VERSION_NUM >= 504
#define LASK_FLAVOUR LASK_FLAVOUR_LUA54
#define LASK_FLAVOUR_NAME "Lua 5.4"
#define LASK_HAS_INTEGERS 1
#define LASK_HAS_FENV 0
#elif LUA_VERSION_NUM == 501 && defined(LUAJIT_VERSION_NUM) || \
    LUA_VERSION_NUM == 501
#define LASK_FLAVOUR LASK_FLAVOUR_LUAJIT
#define LASK_FLAVOUR_NAME "LuaJIT 2.1"
#define LASK_HAS_INTEGERS 0
#define LASK_HAS_FENV 1
#else
#error "lask supports Lua 5.4 and LuaJIT 2.1"
#endif

/* The name of the interpreter that made an encoding, for messages. */
static inline const char *lask_flavour_name(int flavour) {
  switch (flavour) {
  case LASK_FLAVOUR_LUA54: return "Lua 5.4";
  case LASK_FLAVOUR_LUAJIT: return "LuaJIT 2.1";
  default: return "an unknown interpreter";
  }
}

#if LASK_FLAVOUR == LASK_FLAVOUR_LUAJIT

static inline int lua_absindex(lua_State *L, int i) {
  return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + 1 + i;
}
#define lua_rawlen(L, i) lua_objlen(L, (i))
/* LuaJIT takes int indexes where Lua 5.4 takes lua_Integer. */
#define lua_rawgeti(L, t, i) (lua_rawgeti)(L, (t), (int)(i))
#define lua_rawseti(L, t, i) (lua_rawseti)(L, (t), (int)(i))
#define lua_isinteger(L, i) 0
#define lua_newuserdatauv(L, sz, nuv) lua_newuserdata(L, (sz))

static inline void lua_rawgetp(lua_State *L, int t, const void *p) {
  t = lua_absindex(L, t);
  lua_pushlightuserdata(L, (void *)p);
  lua_rawget(L, t);
}

static inline void lua_rawsetp(lua_State *L, int t, const void *p) {
  t = lua_absindex(L, t);
  lua_pushlightuserdata(L, (void *)p);
  lua_insert(L, -2);
  lua_rawset(L, t);
}

static inline void luaL_requiref(lua_State *L, const char *name,
                                 lua_CFunction open, int glb) {
  lua_pushcfunction(L, open);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
  if (glb) {
    lua_pushvalue(L, -1);
    lua_setglobal(L, name);
  }
}

/* LuaJIT's file handles: userdata "FILE*" starting with the FILE*. */
#define LUA_FILEHANDLE "FILE*"
typedef struct luaL_Stream {
  FILE *f;
} luaL_Stream;

/* Pushes the state's globals table. */
#define lask_pushglobals(L) lua_pushvalue(L, LUA_GLOBALSINDEX)
#define lask_dump(L, w, ud, strip) lua_dump(L, (w), (ud))

#else

#define lask_pushglobals(L) \
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS)
#define lask_dump(L, w, ud, strip) lua_dump(L, (w), (ud), (strip))

#endif

/* Loads a binary chunk only (never source text). */
#define lask_loadbinary(L, s, n, name) luaL_loadbufferx(L, (s), (n), (name), "b")

/* Pushes package.loaded. */
#define lask_pushloaded(L) lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED")

#endif
