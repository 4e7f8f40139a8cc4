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

/* Reads the bytes of the lines that the block [start, start + size) of
** 'path' owns (as read_block defines them) into mapped memory held by a
** userdata it pushes (its stack index in *box); returns them, their
** length in *n. Raises on I/O errors. Release with the function below. */
LASK_INTERNAL const char *lask__read_block_bytes(lua_State *L,
                                                 const char *path,
                                                 lua_Integer start,
                                                 lua_Integer size,
                                                 size_t *n, int *box);
/* Gives the memory of the userdata at 'box' back to the system now. */
LASK_INTERNAL void lask__release_block_bytes(lua_State *L, int box);

#endif
