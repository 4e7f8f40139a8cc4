/*
** rank.h: the C paths of bag.topk and bag.distinct (rank.c).
*/
#ifndef LASK_RANK_H
#define LASK_RANK_H

#include "compat.h"

/* Adds topk_values and distinct_into to the table on top. */
LASK_INTERNAL void lask__rank_register(lua_State *L);

#endif
