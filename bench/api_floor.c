/*
** api_floor.c: the least a C encoder and decoder of a Lua table must do
** through the public Lua API, with no encoding at all: walk every entry with
** lua_next reading each number, and build a table of n numbers with
** lua_rawseti. It bounds what any serializer of Lua tables can reach, and
** is the yardstick for lask's codec in bench/RESULTS.md.
** Built by make bench as build/bench/api_floor.so (Lua 5.4) only.
*/
#include <lauxlib.h>
#include <lua.h>

/* walk(t) -> sum of the numeric values, touching every entry. */
static int l_walk(lua_State *L) {
  double sum = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) == LUA_TNUMBER && lua_isinteger(L, -2) &&
        lua_type(L, -1) == LUA_TNUMBER) {
      sum += lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
  }
  lua_pushnumber(L, sum);
  return 1;
}

/* fill(n) -> a new table {0.5, 1.5, ...} of n floats. */
static int l_fill(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_pushnumber(L, (lua_Number)i - 0.5);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

int luaopen_api_floor(lua_State *L);
int luaopen_api_floor(lua_State *L) {
  static const luaL_Reg funcs[] = {{"walk", l_walk}, {"fill", l_fill},
                                   {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
