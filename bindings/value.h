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

/* Deepest nesting of tables and functions, encoding and decoding. Each
** level holds two Lua stack slots, and LuaJIT allows a C function 8000. */
#if LASK_FLAVOUR == LASK_FLAVOUR_LUAJIT
#define LASK__MAX_DEPTH 3000
#else
#define LASK__MAX_DEPTH 7000
#endif
/* Longest module path: the module name plus keys. */
#define LASK__MAX_MODPARTS 4

/* Registry keys of the per-state tables: only their addresses matter. */
LASK_INTERNAL extern const char lask__key_mt_by_name;
LASK_INTERNAL extern const char lask__key_name_by_mt;

/* Pushes the registry table at 'key', creating it (with weak mode 'mode',
** or none) on first use. */
LASK_INTERNAL void lask__push_regtable(lua_State *L, const void *key,
                                       const char *mode);

/* Pushes a userdata holding an empty writer whose __gc frees it: scratch
** memory that an error half-way through cannot leak. */
LASK_INTERNAL struct lask_wbuf *lask__new_boxed_wbuf(lua_State *L);

/* Raises "lask: ..." formatted like lua_pushfstring, with no position
** prefix: lask's messages start with "lask:" wherever they are caught. */
LASK_INTERNAL int lask__fail(lua_State *L, const char *fmt, ...);

/* The message handler of a task (on every scheduler, lask.core's
** task_traceback): the message with a traceback from where it was raised.
** An error object that is not a string is named through its __tostring
** (an error in that is not allowed to hide the first one), else by its
** type; a message that has a traceback already (raised again by a bag
** pipeline with inlined steps) keeps it alone. */
LASK_INTERNAL int lask__task_traceback(lua_State *L);

/* The module index (modindex.c): pushes the table object -> MODREF payload,
** rebuilt first if it does not exist or, when 'check' is set, if
** package.loaded changed since it was built. */
LASK_INTERNAL void lask__modindex_push(lua_State *L, int check);

/* Is the MODREF payload string at 'payload' still the path to the object at
** 'idx' in this state's package.loaded (a module may have been unloaded or
** replaced since the index was built)? */
LASK_INTERNAL int lask__modref_valid(lua_State *L, int idx, int payload);

/* Decode options. */
#define LASK_DEC_NOCODE 0x01 /* refuse bytecode (untrusted input) */

/* How the encoder writes placeholders: tables whose metatable is the one at
** stack index 'mt' (lask's Delayed). With 'map' (a stack index of a table
** placeholder -> task number) each is written as a DEPREF to that task;
** with map 0 as the string at its index 1 (its key), for hashing. */
struct lask_placeholders {
  int mt;
  int map;
  int canonical; /* sort table keys: equal tables give equal bytes */
};

/* Resolves a DEPREF while decoding a task payload: pushes the value of
** graph task 'task', or raises. */
struct lask_deps {
  void (*push)(lua_State *L, void *ud, uint64_t task);
  void *ud;
};

/* Encodes the value at 'idx' into 'w' (emptied first) as a complete,
** sealed encoding. Raises a Lua error naming the value's type and path when
** something cannot travel. 'w' stays owned by the caller, who must free it
** even when this raises: keep it in a userdata with __gc, as core.c does. */
LASK_INTERNAL void lask__value_encode(lua_State *L, int idx,
                                      struct lask_wbuf *w);

/* Appends the 'count' values at stack indexes idx.. to 'w' as body items,
** with no header or checksum (task payloads inside one process or one
** framed message), placeholders written as 'ph' says ('ph' may be NULL).
** The items share one table of references. Returns the LASK__CF_* flags of
** what was written. Raises like lask__value_encode. */
LASK_INTERNAL int lask__value_encode_items(lua_State *L, int idx, int count,
                                           struct lask_wbuf *w,
                                           const struct lask_placeholders *ph);

/* Decodes 'count' values from the body items at p[0..n) and pushes them;
** DEPREF items are resolved by 'deps' (NULL: they are corrupt). The bytes
** must come from this process (bytecode is trusted). Raises on bad input. */
LASK_INTERNAL void lask__value_decode_items(lua_State *L, const void *p,
                                            size_t n, int count,
                                            const struct lask_deps *deps);

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
