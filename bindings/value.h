/*
** value.h: Lua values to and from the lask byte format (runtime/codec.h).
**
** Thread: a lua_State belongs to one thread, and these functions run on the
** thread that owns the state they are given. They keep their per-state
** tables (registered metatables, the module index, the bytecode cache) in
** that state's registry, so any number of states may use them at once.
*/
#ifndef LASK_VALUE_H
#define LASK_VALUE_H

#include "compat.h"
#include "codec.h"

/* Decode options. */
#define LASK_DEC_NOCODE 0x01 /* refuse bytecode (untrusted input) */

/* Encodes the value at 'idx' into 'w' (emptied first) as a complete,
** sealed encoding. Raises a Lua error naming the value's type and path when
** something cannot travel. 'w' stays owned by the caller, who must free it
** even when this raises: keep it in a userdata with __gc, as core.c does. */
LASK_INTERNAL void lask__value_encode(lua_State *L, int idx,
                                      struct lask_wbuf *w);

/* Checks and decodes 'n' bytes at 'p' and pushes the value. Raises
** "lask: corrupt serialized value (...)" for damaged or ill-formed input, and
** a message naming both interpreters for bytecode from another one. */
LASK_INTERNAL void lask__value_decode(lua_State *L, const void *p, size_t n,
                                      int opts);

/* lask.register_metatable(name, mt): registers 'mt' under 'name' in this
** state, so that tables with it can be encoded and decoded. */
LASK_INTERNAL int lask__value_register_metatable(lua_State *L);

/* Raises "lask: <what>: <text of rc>" for a runtime error code. */
LASK_INTERNAL int lask__raise_rc(lua_State *L, int rc, const char *what);

#endif
