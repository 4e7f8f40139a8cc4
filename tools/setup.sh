#!/bin/sh
# setup.sh: installs lask's system packages (Debian 12) and builds lask for
# Lua 5.4 and LuaJIT. Run as root, or as a user who may sudo.
set -eu
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
PACKAGES="build-essential pkg-config ca-certificates git \
  lua5.4 liblua5.4-dev luajit libluajit-5.1-dev libuv1-dev \
  lua-busted lua-filesystem luarocks clang libclang-rt-14-dev graphviz \
  zlib1g-dev libopenblas-dev python3-numpy"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing="$missing $p"
done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
make all
make all LUA=luajit
echo "setup: built build/lask (Lua 5.4) and build/luajit/lask (LuaJIT)"
