/*
** strings.h: the per-partition string helpers of bags (strings.c).
*/
#ifndef LASK_STRINGS_H
#define LASK_STRINGS_H

#include "compat.h"

/* Adds str_split, str_lower, ..., count_values to the table on top. */
LASK_INTERNAL void lask__strings_register(lua_State *L);

/* Pushes the string at index 'i' of the list at 1 and returns it (its
** length in *n), or raises naming the helper 'who' (bag.str.<who>). */
LASK_INTERNAL const char *lask__str_element(lua_State *L, const char *who,
                                            lua_Integer i, size_t *n);

#endif
