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

/* What ends a line: 1 to LASK_DELIM_MAX bytes ("\n" by default). */
#define LASK_DELIM_MAX 255
struct lask_delim {
  size_t len;
  char s[LASK_DELIM_MAX];
};

/* The optional delimiter argument 'arg' ("\n" when absent) into *d;
** raises naming the argument when it is empty or too long. */
LASK_INTERNAL void lask__opt_delim(lua_State *L, int arg,
                                   struct lask_delim *d);

/* The end of the line starting at p, past its delimiter (or 'end'). */
LASK_INTERNAL const char *lask__line_end(const char *p, const char *end,
                                         const struct lask_delim *d);

/* Reads the bytes of the lines that the block [start, start + size) of
** 'path' owns (as read_block defines them, lines ended by 'd') into
** mapped memory held by a userdata it pushes (its stack index in *box);
** returns them, their length in *n. Raises on I/O errors. Release with
** the function below. */
LASK_INTERNAL const char *lask__read_block_bytes(lua_State *L,
                                                 const char *path,
                                                 lua_Integer start,
                                                 lua_Integer size,
                                                 const struct lask_delim *d,
                                                 size_t *n, int *box);
/* Gives the memory of the userdata at 'box' back to the system now. */
LASK_INTERNAL void lask__release_block_bytes(lua_State *L, int box);

#endif
