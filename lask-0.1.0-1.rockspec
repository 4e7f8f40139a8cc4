-- lask: parallel computing for Lua (task graphs, bags, arrays, clusters).
-- Offline install from a checkout:
--   luarocks make --lua-version=5.4 lask-0.1.0-1.rockspec
--   luarocks make --lua-version=5.1 lask-0.1.0-1.rockspec \
--     LUA_INCDIR=/usr/include/luajit-2.1 LUA=/usr/bin/luajit     (LuaJIT)
rockspec_format = "3.0"
package = "lask"
version = "0.1.0-1"
source = {
  url = "git+file:///lask",
}
description = {
  summary = "Parallel computing for Lua with a C runtime",
  detailed = [[
lask brings the Dask model to Lua: delayed task graphs, local and
distributed schedulers, bags and chunked arrays, and a serialization layer
that moves closures and data between Lua states, threads and machines.]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
external_dependencies = {
  LIBUV = { header = "uv.h" },
  ZLIB = { header = "zlib.h" },
}
build = {
  type = "make",
  build_target = "rock",
  install_target = "install",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA = "$(LUA)",
    LIBUV_INCDIR = "$(LIBUV_INCDIR)",
    LIBUV_LIBDIR = "$(LIBUV_LIBDIR)",
  },
  install_variables = {
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA = "$(LUA)",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
    BINDIR = "$(BINDIR)",
  },
}
