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

/* Pushes a userdata holding the bytes of the lines that the block
** [start, start + size) of 'path' owns (as read_block defines them), and
** returns them with their length in *n. Raises on I/O errors. */
LASK_INTERNAL const char *lask__read_block_bytes(lua_State *L,
                                                 const char *path,
                                                 lua_Integer start,
                                                 lua_Integer size,
                                                 size_t *n);

#endif
