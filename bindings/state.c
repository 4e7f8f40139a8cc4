/*
** state.c: Lua states for executor threads, and the preloading of lask's
** own modules into any state.
**
** An executor state must be able to run whatever the client ships to it, so
** it gets the client's package.path and package.cpath and finds lask in
** package.preload: lask.core is this library's own opener, and the Lua
** modules come from the copies compiled into the library, so a worker runs
** the same lask as the client even when the client's path does not list it.
*/
#include <stdio.h>
#include <stdlib.h>

#include "state.h"

/* Loader for a built-in Lua module: upvalue 1 is its index in
** lask__embedded. Called by require with the module name. */
static int load_embedded(lua_State *L) {
  const struct lask_embedded *m =
      &lask__embedded[lua_tointeger(L, lua_upvalueindex(1))];
  lua_pushfstring(L, "=[lask] %s", m->name);
  if (luaL_loadbuffer(L, m->source, m->len, lua_tostring(L, -1)) != 0) {
    return lua_error(L);
  }
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

void lask_openlibs(lua_State *L) {
  lask_pushloaded(L);
  lua_getfield(L, -1, "package");
  lua_getfield(L, -1, "preload");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 3);
    return;
  }
  lua_pushcfunction(L, luaopen_lask_core);
  lua_setfield(L, -2, "lask.core");
  for (int i = 0; lask__embedded[i].name != NULL; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, lask__embedded[i].name);
  }
  lua_pop(L, 3);
}

/* Runs inside lua_pcall so that memory errors are caught. */
static int setup_state(lua_State *L) {
  const char *path = lua_touserdata(L, 1);
  const char *cpath = lua_touserdata(L, 2);
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  if (path != NULL) {
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
  }
  if (cpath != NULL) {
    lua_pushstring(L, cpath);
    lua_setfield(L, -2, "cpath");
  }
  lask_openlibs(L);
  return 0;
}

/* The allocator of executor states: the C library's realloc and free.
** LuaJIT's own allocator recycles memory with mmap and mremap, which
** ThreadSanitizer cannot follow across threads; malloc it can, and a
** per-state allocator is where memory accounting will hook in. */
static void *state_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, nsize);
}

static int state_panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "lask: unprotected error in an executor state: %s\n",
          msg ? msg : "(not a string)");
  return 0; /* abort() follows, as with luaL_newstate's handler */
}

lua_State *lask__state_new(const char *path, const char *cpath) {
  /* LuaJIT without GC64 refuses a custom allocator: use its own then. */
  lua_State *L = lua_newstate(state_alloc, NULL);
  if (L != NULL) lua_atpanic(L, state_panic);
  else L = luaL_newstate();
  if (L == NULL) return NULL;
  lua_pushcfunction(L, setup_state);
  lua_pushlightuserdata(L, (void *)path);
  lua_pushlightuserdata(L, (void *)cpath);
  if (lua_pcall(L, 2, 0, 0) != 0) {
    lua_close(L);
    return NULL;
  }
  return L;
}
