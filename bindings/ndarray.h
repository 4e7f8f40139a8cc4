/*
** ndarray.h: the lask.ndarray userdata (a struct lask_nd, runtime/nd.h)
** and its place in the value codec.
**
** Thread: like every binding, a function runs on the thread owning the
** lua_State it is given. The userdata holds one reference to its buffer;
** __gc drops it.
*/
#ifndef LASK_NDARRAY_H
#define LASK_NDARRAY_H

#include "compat.h"
#include "codec.h"
#include "nd.h"

#define LASK_ND_MT "lask.ndarray"

/* Set while a thread runs tasks (executor.c): BLAS then uses one thread,
** since the executors already use every core. */
LASK_INTERNAL extern _Thread_local int lask__in_executor;

/* The array at 'idx', or NULL if it is not one. */
LASK_INTERNAL struct lask_nd *lask__nd_test(lua_State *L, int idx);
/* Pushes a new array userdata (buf NULL until the caller fills it). */
LASK_INTERNAL struct lask_nd *lask__nd_push(lua_State *L);
/* Creates the metatable in this state (luaopen_lask_core calls it). */
LASK_INTERNAL void lask__nd_register(lua_State *L);
/* Adds the nd functions to the table on top (lask.core.nd). */
LASK_INTERNAL void lask__nd_openlib(lua_State *L);

/* Codec: writes a LASK__T_BUFFER item for 'a'. By reference (mode 1, 'w'
** takes a reference) when 'byref', else by its bytes. Raises on error. */
LASK_INTERNAL void lask__nd_encode(lua_State *L, struct lask_wbuf *w,
                                   const struct lask_nd *a, int byref);
/* Reads the rest of a LASK__T_BUFFER item (after the tag) and pushes the
** array. Mode 1 is accepted only when 'inproc'. Returns 0, or a static
** message naming what is corrupt. */
LASK_INTERNAL const char *lask__nd_decode(lua_State *L, struct lask_rbuf *r,
                                          int inproc);

#endif
