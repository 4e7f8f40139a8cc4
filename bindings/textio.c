/*
** textio.c: reading text files for bags, by blocks of lines, and writing
** partitions as text files.
**
** A block is a byte range [start, start + size) of a file. It owns every
** line that starts inside it: a block that does not start the file skips
** the partial line it starts in (the previous block owns it), and reads
** past its end to finish its last line. So every line belongs to exactly
** one block, whatever the block size. Lines keep their terminator ("\n",
** and a "\r" before it is data), as Dask's read_text does; a last line
** without one is kept as it is. Gzip files are read whole through zlib.
**
** The terminator is "\n" unless another delimiter is given (1 to
** LASK_DELIM_MAX bytes). A block finds where its lines start by searching
** for the delimiter from a few bytes before it, which is exact when no
** two occurrences of the delimiter can overlap: read_text reads a file
** whose delimiter can overlap itself ("\n\n") as one block.
*/
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "textio.h"
#include "value.h"

#define CHUNK (1u << 16)

void lask__opt_delim(lua_State *L, int arg, struct lask_delim *d) {
  size_t n;
  const char *s = luaL_optlstring(L, arg, "\n", &n);
  luaL_argcheck(L, n >= 1 && n <= LASK_DELIM_MAX, arg,
                "a line delimiter is 1 to 255 bytes");
  memcpy(d->s, s, n);
  d->len = n;
}

/* The first occurrence of the delimiter in [p, p + n), or NULL. */
static const char *find_delim(const char *p, size_t n,
                              const struct lask_delim *d) {
  if (d->len == 1) return memchr(p, (unsigned char)d->s[0], n);
  return memmem(p, n, d->s, d->len);
}

const char *lask__line_end(const char *p, const char *end,
                           const struct lask_delim *d) {
  const char *o = find_delim(p, (size_t)(end - p), d);
  return o ? o + d->len : end;
}

/* Raises "lask: <what> <path>: <strerror(errno)>". */
static int io_fail(lua_State *L, const char *what, const char *path) {
  return lask__fail(L, "lask: %s %s: %s", what, path, strerror(errno));
}

/* A FILE* in a userdata whose __gc closes it, so an error mid-read does not
** leak the descriptor. */
static int file_gc(lua_State *L) {
  FILE **f = lua_touserdata(L, 1);
  if (*f != NULL) fclose(*f);
  *f = NULL;
  return 0;
}

static FILE **open_boxed(lua_State *L, const char *path, const char *mode) {
  FILE **f = lua_newuserdatauv(L, sizeof *f, 0);
  *f = NULL;
  lua_newtable(L);
  lua_pushcfunction(L, file_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  *f = fopen(path, mode);
  if (*f == NULL) io_fail(L, "cannot open", path);
  return f;
}

/* The buffer of read_block_bytes: mapped memory, given back to the system
** as soon as the caller is done (lask__release_block_bytes), or by __gc if
** an error came first. A freed Lua userdata would linger until the next
** collection, and a large malloc'd block in the C heap. */
struct mapped {
  char *p;
  size_t cap;
  size_t pos, end; /* the lines not yet taken, for block_lines */
  struct lask_delim d; /* what ends a line */
};

#define MAPPED "lask.TextBlock"

static int mapped_gc(lua_State *L) {
  struct mapped *m = lua_touserdata(L, 1);
  if (m->p != NULL) munmap(m->p, m->cap);
  m->p = NULL;
  return 0;
}

/* Makes room for 'need' bytes in 'm', keeping the first 'len'. */
static void mapped_reserve(lua_State *L, struct mapped *m, size_t need,
                           size_t len) {
  if (need <= m->cap) return;
  size_t cap = m->cap ? m->cap : CHUNK;
  while (cap < need) cap *= 2;
  char *p = mmap(NULL, cap, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) lask__fail(L, "lask: out of memory reading a block");
  if (m->p != NULL) {
    memcpy(p, m->p, len);
    munmap(m->p, m->cap);
  }
  m->p = p;
  m->cap = cap;
}

void lask__release_block_bytes(lua_State *L, int box) {
  lua_pushcfunction(L, mapped_gc);
  lua_pushvalue(L, box);
  lua_call(L, 1, 0);
}

const char *lask__read_block_bytes(lua_State *L, const char *path,
                                   lua_Integer start, lua_Integer size,
                                   const struct lask_delim *d, size_t *n,
                                   int *box) {
  if (start < 0 || size < 0 || (size == 0 && start != 0))
    lask__fail(L, "lask: bad block of %s: offset %lld, size %lld (a size "
               "is positive, or 0 from offset 0: the whole file)", path,
               (long long)start, (long long)size);
  struct mapped *m = lua_newuserdatauv(L, sizeof *m, 0);
  m->p = NULL;
  m->cap = m->pos = m->end = 0;
  m->d = *d;
  if (luaL_newmetatable(L, MAPPED)) {
    lua_pushcfunction(L, mapped_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  *box = lua_gettop(L);
  FILE **f = open_boxed(L, path, "rb");
  /* Read from dl bytes before the block (or the file's start): a line
  ** starts at 'start' when the delimiter ends there. */
  size_t dl = d->len;
  size_t pre = start == 0 ? 0 : (size_t)start < dl ? (size_t)start : dl;
  long first = (long)start - (long)pre;
  if (first > 0 && fseek(*f, first, SEEK_SET) != 0) /* a pipe cannot */
    io_fail(L, "cannot seek in", path);
  /* Size 0 (with start 0) is the whole file, read to its end: a pipe, or
  ** a file whose size stat does not tell. */
  size_t want = size == 0 ? CHUNK : (size_t)size + pre;
  mapped_reserve(L, m, want + CHUNK, 0);
  size_t len = fread(m->p, 1, want, *f);
  if (len < want && ferror(*f)) io_fail(L, "cannot read", path);
  int eof = len < want;
  /* Lines starting at or after 'limit' (start + size) belong to the next
  ** block. */
  size_t limit = size == 0 ? 0 : pre + (size_t)size;
  size_t from = 0, stop = 0; /* the owned lines are [from, stop) */
  if (start > 0) { /* the first line starting in the block */
    const char *o = find_delim(m->p, len < limit ? len : limit, d);
    if (o == NULL || (size_t)(o - m->p) + dl >= limit) {
      /* None: the block lies inside one line. Not reading on to its end
      ** keeps a line many blocks long linear to read. */
      len = 0;
      eof = 1;
    } else {
      from = (size_t)(o - m->p) + dl;
    }
  }
  /* Then on, by chunks, to the end of the last line starting before
  ** 'limit': the first delimiter at or after limit - dl (occurrences do
  ** not overlap, so one found there is one of the file's). Size 0: to the
  ** end of the file. */
  size_t scan = limit >= dl && limit - dl > from ? limit - dl : from;
  for (;;) {
    if (size != 0 && len > scan) {
      const char *o = find_delim(m->p + scan, len - scan, d);
      if (o != NULL) {
        stop = (size_t)(o - m->p) + dl;
        break;
      }
      scan = len >= dl ? len - dl + 1 : 0; /* a delimiter may straddle */
      if (scan < from) scan = from;
    }
    if (eof) {
      stop = len;
      break;
    }
    mapped_reserve(L, m, len + CHUNK, len);
    size_t got = fread(m->p + len, 1, CHUNK, *f);
    if (got < CHUNK && ferror(*f)) io_fail(L, "cannot read", path);
    eof = got < CHUNK;
    len += got;
  }
  if (stop < from) stop = from;
  fclose(*f);
  *f = NULL;
  lua_pop(L, 1); /* the file box */
  *n = stop - from;
  m->pos = from;
  m->end = stop;
  return m->p + from;
}

/* Reads the block given as arguments (path, start, size [, delimiter])
** 1-4, as lask__read_block_bytes does. */
static const char *block_args(lua_State *L, size_t *n, int *box,
                              struct lask_delim *d) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer start = luaL_checkinteger(L, 2);
  lua_Integer size = luaL_checkinteger(L, 3);
  lask__opt_delim(L, 4, d);
  lua_settop(L, 4);
  return lask__read_block_bytes(L, path, start, size, d, n, box);
}

/* read_block(path, start, size [, delimiter]) -> the list of lines the
** block owns (see lask__read_block_bytes for which lines those are). */
static int l_read_block(lua_State *L) {
  size_t n;
  int box;
  struct lask_delim d;
  const char *p = block_args(L, &n, &box, &d);
  const char *end = p + n;
  lua_newtable(L);
  lua_Integer k = 0;
  while (p < end) { /* each line keeps its delimiter; the last may not */
    const char *stop = lask__line_end(p, end, &d);
    lua_pushlstring(L, p, (size_t)(stop - p));
    lua_rawseti(L, -2, ++k);
    p = stop;
  }
  lask__release_block_bytes(L, box);
  return 1;
}

/* block_lines(path, start, size [, delimiter]) -> a reader of the lines
** the block owns, for next_lines: the block's bytes are read now, its
** lines made a few at a time (a fused pipeline holds a chunk of lines, not
** the whole block). */
static int l_block_lines(lua_State *L) {
  size_t n;
  int box;
  struct lask_delim d;
  block_args(L, &n, &box, &d);
  lua_pushvalue(L, box);
  return 1;
}

/* close_lines(reader): gives the block's memory back now (next_lines
** then finds no line left). */
static int l_close_lines(lua_State *L) {
  luaL_checkudata(L, 1, MAPPED);
  return mapped_gc(L);
}

/* A chunk of next_lines stops after this many bytes (long lines). */
#define LINES_BYTES (1u << 20)

/* next_lines(reader, list, max) -> k: puts the reader's next lines (at
** most max, and no more once 1 MB is taken) in list[1..k]; 0 when none is
** left. The block's memory is given back as soon as its last line is
** taken. */
static int l_next_lines(lua_State *L) {
  struct mapped *m = luaL_checkudata(L, 1, MAPPED);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer max = luaL_checkinteger(L, 3);
  luaL_argcheck(L, max >= 1, 3, "must be at least 1");
  lua_Integer k = 0;
  if (m->p == NULL) { /* released: every line was taken */
    lua_pushinteger(L, 0);
    return 1;
  }
  const char *p = m->p + m->pos, *end = m->p + m->end;
  const char *cap = p + ((size_t)(end - p) < LINES_BYTES ? (size_t)(end - p)
                                                          : LINES_BYTES);
  while (k < max && p < end && (k == 0 || p < cap)) {
    const char *stop = lask__line_end(p, end, &m->d);
    lua_pushlstring(L, p, (size_t)(stop - p));
    lua_rawseti(L, 2, ++k);
    p = stop;
  }
  m->pos = (size_t)(p - m->p);
  if (p == end) mapped_gc(L); /* argument 1 is the reader */
  lua_pushinteger(L, k);
  return 1;
}

/* The zlib state of read_gzip, in a userdata whose __gc ends it and frees
** the line being put together, so an error mid-read (a line too long for
** memory) leaks neither; the file is in its own box (open_boxed). */
struct gzread {
  z_stream zs;
  int live;             /* zs was initialised */
  char *carry;          /* the bytes of lines not yet ended (malloc) */
  size_t clen, ccap;    /* their length, the capacity */
  size_t scanned;       /* carry[0, scanned) holds no whole delimiter */
  unsigned char in[CHUNK], out[CHUNK];
};

/* Appends the decompressed bytes [p, p + n) to the lines of read_gzip: each
** delimiter ends a line pushed as out[++*k]; the rest waits in the carry. */
static void gzip_lines(lua_State *L, struct gzread *g, int out,
                       lua_Integer *k, const struct lask_delim *d,
                       const char *p, size_t n) {
  if (n == 0) return;
  if (g->clen + n > g->ccap) {
    size_t cap = g->ccap ? g->ccap : CHUNK;
    while (cap < g->clen + n) cap *= 2;
    char *c = realloc(g->carry, cap);
    if (c == NULL) lask__fail(L, "lask: out of memory reading a gzip line");
    g->carry = c;
    g->ccap = cap;
  }
  memcpy(g->carry + g->clen, p, n);
  g->clen += n;
  /* a delimiter may have begun in the last bytes of what came before */
  size_t at = g->scanned >= d->len ? g->scanned - d->len + 1 : 0, ls = 0;
  const char *o;
  while ((o = find_delim(g->carry + at, g->clen - at, d)) != NULL) {
    size_t e = (size_t)(o - g->carry) + d->len;
    lua_pushlstring(L, g->carry + ls, e - ls);
    lua_rawseti(L, out, ++*k);
    ls = at = e;
  }
  memmove(g->carry, g->carry + ls, g->clen - ls);
  g->clen -= ls;
  g->scanned = g->clen;
}

/* Ends the zlib state and frees the carry: when read_gzip is done, or by
** the collector after an error. */
static void gzread_close(struct gzread *g) {
  if (g->live) inflateEnd(&g->zs);
  g->live = 0;
  free(g->carry);
  g->carry = NULL;
}

static int gzread_gc(lua_State *L) {
  gzread_close(lua_touserdata(L, 1));
  return 0;
}

/* read_gzip(path [, delimiter]) -> the list of lines of a whole gzip file
** (each keeps its delimiter, "\n" by default). The format is
** checked as gzip -t does: a file that is not gzip data, an empty one, one
** cut short and one with bytes after its last member are errors; several
** members in a row (as `cat a.gz b.gz` makes) are one text. */
static int l_read_gzip(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct lask_delim d;
  lask__opt_delim(L, 2, &d);
  lua_settop(L, 1);
  struct gzread *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->live = 0;
  g->carry = NULL;
  g->clen = g->ccap = g->scanned = 0;
  lua_newtable(L);
  lua_pushcfunction(L, gzread_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  int box = lua_gettop(L);
  FILE **f = open_boxed(L, path, "rb");
  memset(&g->zs, 0, sizeof g->zs);
  if (inflateInit2(&g->zs, 15 + 16) != Z_OK) /* 16: gzip wrapper only */
    return lask__fail(L, "lask: out of memory reading %s", path);
  g->live = 1;
  lua_newtable(L);
  int out = lua_gettop(L);
  lua_Integer k = 0;
  int rc = Z_OK, any = 0, full = 0; /* any: some input was read; full: */
  for (;;) {                         /* the last inflate filled 'out' */
    if (g->zs.avail_in == 0 && !full) {
      size_t n = fread(g->in, 1, CHUNK, *f);
      if (n == 0) {
        if (ferror(*f)) return io_fail(L, "cannot read", path);
        break;
      }
      any = 1;
      g->zs.next_in = g->in;
      g->zs.avail_in = (uInt)n;
    }
    if (rc == Z_STREAM_END) { /* a member ended: another may follow */
      if (g->zs.next_in[0] == 0) { /* zero padding, as gzip -t allows */
        while (g->zs.avail_in > 0 && g->zs.next_in[0] == 0) {
          g->zs.next_in++;
          g->zs.avail_in--;
        }
        if (g->zs.avail_in > 0) break; /* then something else: refused */
        continue; /* read on: zeros to the end, or more input */
      }
      if (g->zs.next_in[0] != 0x1f) break;
      inflateReset(&g->zs);
    }
    g->zs.next_out = g->out;
    g->zs.avail_out = CHUNK;
    rc = inflate(&g->zs, Z_NO_FLUSH);
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT)
      return lask__fail(L, "lask: cannot read %s: not gzip data (%s)", path,
                        g->zs.msg ? g->zs.msg : "corrupt");
    if (rc == Z_MEM_ERROR)
      return lask__fail(L, "lask: out of memory reading %s", path);
    full = rc != Z_STREAM_END && g->zs.avail_out == 0;
    gzip_lines(L, g, out, &k, &d, (const char *)g->out,
               CHUNK - g->zs.avail_out);
  }
  if (!any)
    return lask__fail(L, "lask: cannot read %s: empty file, not gzip data",
                      path);
  if (rc != Z_STREAM_END)
    return lask__fail(L, "lask: cannot read %s: truncated gzip file", path);
  if (g->zs.avail_in > 0)
    return lask__fail(L, "lask: cannot read %s: bytes after the gzip data",
                      path);
  if (g->clen > 0) { /* a last line without a delimiter */
    lua_pushlstring(L, g->carry, g->clen);
    lua_rawseti(L, out, ++k);
  }
  fclose(*f);
  *f = NULL;
  gzread_close(g);
  lua_remove(L, box + 1); /* the file box */
  lua_remove(L, box);
  return 1;
}

/* file_size(path) -> bytes, or 0 when the size is not known before
** reading (a pipe, a file of /proc); raises for what is not text to read
** to an end (a directory, a device such as /dev/zero, a socket). */
static int l_file_size(lua_State *L) {
  size_t n;
  const char *path = luaL_checklstring(L, 1, &n);
  if (strlen(path) != n)
    return lask__fail(L, "lask: cannot read a path with a NUL byte: %s", path);
  struct stat st;
  if (stat(path, &st) != 0) return io_fail(L, "cannot read", path);
  if (S_ISDIR(st.st_mode))
    return lask__fail(L, "lask: cannot read %s: it is a directory", path);
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
    return lask__fail(L, "lask: cannot read %s: not a regular file or a "
                      "pipe (a device or a socket)", path);
  lua_pushinteger(L, S_ISREG(st.st_mode) ? (lua_Integer)st.st_size : 0);
  return 1;
}

/* glob(pattern) -> sorted list of matching paths (empty if none). */
static int l_glob(lua_State *L) {
  const char *pat = luaL_checkstring(L, 1);
  glob_t g;
  int rc = glob(pat, 0, NULL, &g);
  lua_newtable(L);
  if (rc == 0) {
    for (size_t i = 0; i < g.gl_pathc; i++) {
      lua_pushstring(L, g.gl_pathv[i]);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
  }
  if (rc == 0 || rc == GLOB_NOMATCH) globfree(&g);
  return 1;
}

/* mkdirs(path): makes the directory and its parents (like mkdir -p). */
static int l_mkdirs(lua_State *L) {
  size_t n;
  const char *path = luaL_checklstring(L, 1, &n);
  char *p = lua_newuserdatauv(L, n + 1, 0);
  memcpy(p, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    char c = p[i];
    p[i] = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      return io_fail(L, "cannot create directory", p);
    }
    p[i] = c;
  }
  return 0;
}

/* count_up(path) -> n: adds one to the count kept as text in the file
** 'path' (made at 0) under an exclusive lock, so that tasks in several
** threads or processes each get a number of their own; the disk shuffle's
** last gather learns that it is the last. */
static int l_count_up(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return io_fail(L, "cannot open", path);
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      int e = errno;
      close(fd);
      errno = e;
      return io_fail(L, "cannot lock", path);
    }
  }
  char buf[32];
  ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
  long long n = 0;
  if (got > 0) {
    buf[got] = '\0';
    n = strtoll(buf, NULL, 10);
  }
  n++;
  int len = snprintf(buf, sizeof buf, "%lld\n", n);
  int ok = got >= 0 && pwrite(fd, buf, (size_t)len, 0) == len;
  int e = errno;
  close(fd); /* and the lock with it */
  if (!ok) {
    errno = e;
    return io_fail(L, "cannot write", path);
  }
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* replace_target(path) -> the file a write to 'path' should replace: the
** end of its chain of symbolic links (so that writing through a link
** updates what it points to), or 'path' itself when it does not exist. */
static int l_replace_target(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char *r = realpath(path, NULL);
  if (r == NULL) {
    lua_pushvalue(L, 1);
    return 1;
  }
  lua_pushstring(L, r);
  free(r);
  return 1;
}

/* copy_mode(from, to): gives 'to' the permission bits of 'from' (when
** 'from' exists); true, or nil and the reason. */
static int l_copy_mode(lua_State *L) {
  const char *from = luaL_checkstring(L, 1), *to = luaL_checkstring(L, 2);
  struct stat st;
  if (stat(from, &st) != 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (chmod(to, st.st_mode & 07777) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg textio_funcs[] = {
  {"replace_target", l_replace_target},
  {"copy_mode", l_copy_mode},
  {"read_block", l_read_block},
  {"block_lines", l_block_lines},
  {"next_lines", l_next_lines},
  {"close_lines", l_close_lines},
  {"read_gzip", l_read_gzip},
  {"file_size", l_file_size},
  {"glob", l_glob},
  {"mkdirs", l_mkdirs},
  {"count_up", l_count_up},
  {NULL, NULL}
};

void lask__textio_register(lua_State *L) {
  luaL_setfuncs(L, textio_funcs, 0);
}
