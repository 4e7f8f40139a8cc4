#!/bin/sh
# check-rock.sh: installs lask with luarocks, offline, into temporary trees
# for Lua 5.4 and LuaJIT, then checks that the stock interpreters can
# require "lask" and round-trip a closure. Prints "rock: N passed, N failed".
cd "$(dirname "$0")/.."
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
pass=0
fail=0
probe='local lask = require "lask"
local k = 41
local f = lask.deserialize(lask.serialize(function(x) return x + k end))
assert(f(1) == 42, "closure round trip")
assert(package.searchpath("lask.core", package.cpath):find(os.getenv("TREE"), 1, true),
  "lask.core must come from the luarocks tree")
print("rock ok: " .. lask.version .. " on " .. lask.flavour)'
check() { # check NAME INTERPRETER LUAVERSION [luarocks args...]
  name=$1; interp=$2; ver=$3; shift 3
  t="$tree/$name"
  if luarocks make --lua-version="$ver" --tree "$t" lask-0.1.0-1.rockspec \
      "$@" > "$tree/$name.log" 2>&1 &&
     (eval "$(luarocks --lua-version="$ver" --tree "$t" path)" &&
      cd /tmp && TREE="$t" "$interp" -e "$probe"); then
    pass=$((pass + 1))
  else
    cat "$tree/$name.log"
    echo "FAIL: luarocks install for $name"
    fail=$((fail + 1))
  fi
}
unset LUA_PATH LUA_CPATH LUA_PATH_5_4 LUA_CPATH_5_4
check lua5.4 lua5.4 5.4
check luajit luajit 5.1 LUA_INCDIR=/usr/include/luajit-2.1 LUA=/usr/bin/luajit
echo "rock: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
