/*
** pattern.h: Lua patterns matched in C for str:match and str:gsub
** (pattern.c).
*/
#ifndef LASK_PATTERN_H
#define LASK_PATTERN_H

#include "compat.h"

/* Adds str_match and str_gsub to the table on top. */
LASK_INTERNAL void lask__pattern_register(lua_State *L);

#endif
