/*
** host.c: an example of a C program that embeds Lua and lask.
**
** Usage: embed_host [script.lua]
** The host makes its own lua_State, opens the standard libraries, then
** lask with lask_openlibs (the public API of runtime/lask.h: after it,
** require "lask" works from the copies built into the library, whatever
** package.path says). It also offers a module of its own, "host", written
** in C, and runs the script named on the command line, or a built-in
** snippet when there is none. Everything runs under lua_pcall; an error
** prints its message with a traceback and the program exits with 1.
**
** Works with Lua 5.4 and LuaJIT 2.1: it uses only the API they share.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lask.h"

/* Run when no script is given: a closure with an upvalue travels through
** lask.serialize and comes back callable. */
static const char default_script[] =
  "local lask = require 'lask'\n"
  "local host = require 'host'\n"
  "local base = 40\n"
  "local add = function(x) return base + x end\n"
  "local bytes = lask.serialize(add)\n"
  "local copy = lask.deserialize(bytes)\n"
  "host.log(('closure sent as %d bytes, copy(2) = %d'):format(#bytes,\n"
  "  copy(2)))\n"
  "host.log(('host.hypot(3, 4) = %g'):format(host.hypot(3, 4)))\n";

/* host.hypot(x, y) -> the length of the vector (x, y). */
static int l_hypot(lua_State *L) {
  lua_Number x = luaL_checknumber(L, 1);
  lua_Number y = luaL_checknumber(L, 2);
  lua_pushnumber(L, (lua_Number)hypot((double)x, (double)y));
  return 1;
}

/* host.log(msg): prints msg on standard output, tagged as from the host. */
static int l_log(lua_State *L) {
  const char *msg = luaL_checkstring(L, 1);
  printf("[host] %s\n", msg);
  fflush(stdout);
  return 0;
}

static const luaL_Reg host_funcs[] = {
  {"hypot", l_hypot},
  {"log", l_log},
  {NULL, NULL}
};

/* Makes the "host" module and stores it in package.loaded, so that
** require "host" finds it and lask sends its functions as references to
** the module (a C function cannot travel as bytecode). */
static void open_host(lua_State *L) {
  lua_newtable(L);
  luaL_setfuncs(L, host_funcs, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "host");
  lua_pop(L, 2);
}

/* Message handler: adds a traceback to the error message. */
static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Protected main: opens the libraries, then loads and runs the script
** whose path is the light userdata at index 1 (the default one for NULL). */
static int pmain(lua_State *L) {
  const char *path = lua_touserdata(L, 1);
  luaL_openlibs(L);
  lask_openlibs(L);
  open_host(L);
  int rc = path != NULL
    ? luaL_loadfile(L, path)
    : luaL_loadbuffer(L, default_script, sizeof default_script - 1,
                      "=default");
  if (rc != 0) return lua_error(L);
  lua_call(L, 0, 0);
  return 0;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create a Lua state\n", argv[0]);
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, traceback);
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, argc > 1 ? argv[1] : NULL);
  int failed = lua_pcall(L, 1, 0, 1) != 0;
  if (failed) fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
  lua_close(L);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
