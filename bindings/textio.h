/*
** textio.h: reading text files by blocks of lines, and helpers for writing
** them (textio.c).
*/
#ifndef LASK_TEXTIO_H
#define LASK_TEXTIO_H

#include "compat.h"

/* Adds read_block, read_gzip, file_size, glob and mkdirs to the table on
** top. */
LASK_INTERNAL void lask__textio_register(lua_State *L);

#endif
