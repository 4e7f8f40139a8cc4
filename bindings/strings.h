/*
** strings.h: the per-partition string helpers of bags (strings.c).
*/
#ifndef LASK_STRINGS_H
#define LASK_STRINGS_H

#include "compat.h"

/* Adds str_split, str_lower, ..., count_values to the table on top. */
LASK_INTERNAL void lask__strings_register(lua_State *L);

#endif
