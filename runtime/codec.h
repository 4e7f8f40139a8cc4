/*
** codec.h: the byte-level format of lask values (internal).
**
** An encoding is a 16-byte header followed by a body:
**
**   offset 0  'l' 's' 'k'       magic
**          3  format version    LASK__CODEC_VERSION
**          4  flavour           LASK_FLAVOUR_* of the interpreter that made it
**          5  flags             LASK__CF_* (e.g. the body holds bytecode)
**          6  0 0               reserved, must be zero
**          8  checksum          u64 LE: lask_hash64(body, seed = bytes 0..7)
**         16  body              tagged items (tags below)
**
** The checksum is verified before any byte of the body is interpreted, so
** random damage is reported as LASK_ECHECKSUM; the body reader is still fully
** bounds-checked, because a forged checksum is cheap.
**
** Integers are LEB128 varints (signed ones zigzagged), floats are 8 bytes
** little-endian IEEE 754, strings are a varint length then the bytes, table
** sizes are u32 LE so that the encoder can patch them after one pass.
**
** Writers grow a malloc'd buffer; readers never allocate. Neither holds a
** lock or a global: each belongs to the thread that made it.
*/
#ifndef LASK_CODEC_H
#define LASK_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lask.h"

#define LASK__CODEC_VERSION 1
#define LASK__CODEC_HEADER 16

/* Header flags. */
#define LASK__CF_CODE 0x01 /* the body holds interpreter bytecode */

/* Value tags. */
enum {
  LASK__T_NIL = 0,
  LASK__T_FALSE = 1,
  LASK__T_TRUE = 2,
  LASK__T_INT = 3,      /* zigzag varint */
  LASK__T_FLOAT = 4,    /* f64 */
  LASK__T_STR = 5,      /* varint length, bytes */
  LASK__T_TABLE = 6,    /* u32 narray, u32 nhash, values, key/value pairs */
  LASK__T_TABLE_MT = 7, /* name (varint length, bytes), then as TABLE */
  LASK__T_REF = 8,      /* varint id of a table or function seen before */
  LASK__T_FUNC = 9,     /* bytecode, u8 nups, upvalues, environment */
  LASK__T_MODREF = 10,  /* u8 nparts, strings: module name then keys */
  LASK__T_GLOBALS = 11, /* the receiving state's globals table */
  LASK__T_BUFFER = 12,  /* an array: u8 mode, u8 dtype, u8 ndim, varint
                        ** shape; mode 0: varint byte count, the C-order
                        ** little-endian data; mode 1 (inside one process
                        ** only): u64 address of a struct lask_buf the
                        ** writer holds a reference to (wbuf refs), varint
                        ** offset, zigzag strides */
  LASK__T_DEPREF = 13,  /* varint: the value of that graph task (payloads) */
  LASK__T_LAST = 13
};

/* Upvalue kinds inside a FUNC item. */
enum {
  LASK__UV_ENV = 0,   /* the receiver's globals (Lua 5.4 _ENV) */
  LASK__UV_VALUE = 1, /* followed by a value */
  LASK__UV_JOIN = 2   /* varint function id, u8 upvalue index (1-based) */
};

/* A growable output buffer. The writer owns 'p' (malloc'd) and one
** reference to each shared array buffer (struct lask_buf, nd.h) that its
** bytes name by address: they live as long as the encoding does. */
struct lask_buf;
struct lask_wbuf {
  uint8_t *p;
  size_t len; /* bytes written */
  size_t cap; /* bytes allocated */
  struct lask_buf **refs;
  uint32_t nrefs, caprefs;
};

/* Takes over one reference to 'b' (released by lask__wbuf_close): 0 or
** LASK_ENOMEM, when the reference is released at once. */
LASK_INTERNAL int lask__wbuf_add_ref(struct lask_wbuf *w, struct lask_buf *b);

/* A bounds-checked view of input bytes; it owns nothing. */
struct lask_rbuf {
  const uint8_t *pos;
  const uint8_t *end;
};

/* Header fields, as read by lask__codec_open. */
struct lask_header {
  int version;
  int flavour;
  int flags;
};

/* Initializes an empty writer (no allocation yet). */
LASK_INTERNAL void lask__wbuf_init(struct lask_wbuf *w);
/* Frees the writer's memory and leaves it empty. */
LASK_INTERNAL void lask__wbuf_close(struct lask_wbuf *w);
/* Makes room for 'n' more bytes: 0, or LASK_ENOMEM / LASK_ETOOBIG with the
** buffer unchanged. */
LASK_INTERNAL int lask__wbuf_grow(struct lask_wbuf *w, size_t n);

static inline int lask__wbuf_reserve(struct lask_wbuf *w, size_t n) {
  return (w->cap - w->len >= n) ? 0 : lask__wbuf_grow(w, n);
}

/* The put_* functions write without checking room: call reserve first
** (a scalar needs at most 11 bytes). */
static inline void lask__put_u8(struct lask_wbuf *w, unsigned v) {
  w->p[w->len++] = (uint8_t)v;
}

static inline void lask__put_varint(struct lask_wbuf *w, uint64_t v) {
  uint8_t *p = w->p + w->len, *start = p; /* locals: no aliasing reloads */
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  w->len += (size_t)(p - start);
}

static inline uint64_t lask__zigzag(int64_t v) {
  return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t lask__unzigzag(uint64_t u) {
  return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static inline void lask__put_u32(struct lask_wbuf *w, uint32_t v) {
  uint8_t *p = w->p + w->len;
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
  w->len += 4;
}

/* Overwrites the u32 at byte offset 'at' (written earlier by put_u32). */
static inline void lask__patch_u32(struct lask_wbuf *w, size_t at,
                                   uint32_t v) {
  uint8_t *p = w->p + at;
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/* Stores 'u' as 8 little-endian bytes at 'p'. */
static inline void lask__store_le64(uint8_t *p, uint64_t u) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  u = __builtin_bswap64(u);
#endif
  memcpy(p, &u, 8);
}

/* Reads 8 little-endian bytes at 'p'. */
static inline uint64_t lask__load_le64(const uint8_t *p) {
  uint64_t u;
  memcpy(&u, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  u = __builtin_bswap64(u);
#endif
  return u;
}

static inline void lask__put_f64(struct lask_wbuf *w, double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  lask__store_le64(w->p + w->len, u);
  w->len += 8;
}

/* Appends 'n' bytes (reserves room itself): 0 or LASK_ENOMEM. */
LASK_INTERNAL int lask__put_bytes(struct lask_wbuf *w, const void *s,
                                  size_t n);
/* Appends a varint length then the bytes: 0 or LASK_ENOMEM. */
LASK_INTERNAL int lask__put_string(struct lask_wbuf *w, const void *s,
                                   size_t n);

/* Readers: each returns 0, or LASK_ETRUNC when the input ends early, or
** LASK_ECORRUPT for an ill-formed item; on failure *out is unchanged. */
static inline int lask__get_u8(struct lask_rbuf *r, unsigned *out) {
  if (r->pos >= r->end) return LASK_ETRUNC;
  *out = *r->pos++;
  return 0;
}

/* A varint of at most 10 bytes whose value fits in 64 bits. */
LASK_INTERNAL int lask__get_varint_slow(struct lask_rbuf *r, uint64_t *out);
static inline int lask__get_varint(struct lask_rbuf *r, uint64_t *out) {
  if (r->pos < r->end && *r->pos < 0x80) { /* the common one-byte case */
    *out = *r->pos++;
    return 0;
  }
  return lask__get_varint_slow(r, out);
}
LASK_INTERNAL int lask__get_u32(struct lask_rbuf *r, uint32_t *out);
static inline int lask__get_f64(struct lask_rbuf *r, double *out) {
  if ((size_t)(r->end - r->pos) < 8) return LASK_ETRUNC;
  uint64_t u = lask__load_le64(r->pos);
  memcpy(out, &u, 8);
  r->pos += 8;
  return 0;
}
/* Points *out at the next 'n' bytes of the input and skips them. */
LASK_INTERNAL int lask__get_bytes(struct lask_rbuf *r, size_t n,
                                  const uint8_t **out);
/* A varint length then that many bytes (see put_string). */
LASK_INTERNAL int lask__get_string(struct lask_rbuf *r, const uint8_t **s,
                                   size_t *n);

static inline size_t lask__rbuf_left(const struct lask_rbuf *r) {
  return (size_t)(r->end - r->pos);
}

/* Starts an encoding: empties 'w' and writes a header for 'flavour' with a
** zero checksum. Returns 0 or LASK_ENOMEM. */
LASK_INTERNAL int lask__codec_begin(struct lask_wbuf *w, int flavour);
/* Finishes an encoding begun by codec_begin: stores 'flags' and the
** checksum of everything written since. */
LASK_INTERNAL void lask__codec_seal(struct lask_wbuf *w, int flags);
/* Checks the header and checksum of 'n' bytes at 'p'; on success fills *h
** and points *body at the body. Returns 0 or LASK_ETRUNC, LASK_ECORRUPT
** (bad magic or reserved bytes), LASK_EVERSION, LASK_ECHECKSUM. The flavour
** is reported, not judged: the caller decides what it accepts. */
LASK_INTERNAL int lask__codec_open(const void *p, size_t n,
                                   struct lask_header *h,
                                   struct lask_rbuf *body);

#endif
