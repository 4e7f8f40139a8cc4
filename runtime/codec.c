/*
** codec.c: writers, bounds-checked readers and the header of the lask value
** format (see codec.h for the layout). No Lua, no threads, no globals.
*/
#include <stdlib.h>

#include "codec.h"
#include "nd.h"

void lask__wbuf_init(struct lask_wbuf *w) {
  w->p = NULL;
  w->len = 0;
  w->cap = 0;
  w->refs = NULL;
  w->nrefs = w->caprefs = 0;
}

void lask__wbuf_close(struct lask_wbuf *w) {
  free(w->p);
  for (uint32_t i = 0; i < w->nrefs; i++) lask__buf_release(w->refs[i]);
  free(w->refs);
  lask__wbuf_init(w);
}

int lask__wbuf_add_ref(struct lask_wbuf *w, struct lask_buf *b) {
  if (w->nrefs == w->caprefs) {
    uint32_t cap = w->caprefs ? w->caprefs * 2 : 4;
    struct lask_buf **r = w->caprefs < UINT32_MAX / 2
                              ? realloc(w->refs, cap * sizeof *r)
                              : NULL;
    if (!r) {
      lask__buf_release(b);
      return LASK_ENOMEM;
    }
    w->refs = r;
    w->caprefs = cap;
  }
  w->refs[w->nrefs++] = b;
  return 0;
}

int lask__wbuf_grow(struct lask_wbuf *w, size_t n) {
  if (n > SIZE_MAX / 2 - w->len) return LASK_ETOOBIG;
  size_t need = w->len + n;
  size_t cap = w->cap ? w->cap : 256;
  while (cap < need) cap *= 2;
  uint8_t *p = realloc(w->p, cap);
  if (p == NULL) return LASK_ENOMEM;
  w->p = p;
  w->cap = cap;
  return 0;
}

int lask__put_bytes(struct lask_wbuf *w, const void *s, size_t n) {
  int rc = lask__wbuf_reserve(w, n);
  if (rc != 0) return rc;
  if (n > 0) memcpy(w->p + w->len, s, n);
  w->len += n;
  return 0;
}

int lask__put_string(struct lask_wbuf *w, const void *s, size_t n) {
  if (n > SIZE_MAX - 10) return LASK_ETOOBIG;
  int rc = lask__wbuf_reserve(w, 10 + n);
  if (rc != 0) return rc;
  lask__put_varint(w, n);
  if (n > 0) memcpy(w->p + w->len, s, n);
  w->len += n;
  return 0;
}

int lask__get_varint_slow(struct lask_rbuf *r, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (r->pos >= r->end) return LASK_ETRUNC;
    unsigned b = *r->pos++;
    /* The tenth byte may only carry the top bit of a 64-bit value. */
    if (shift == 63 && b > 1) return LASK_ECORRUPT;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (b < 0x80) {
      *out = v;
      return 0;
    }
  }
  return LASK_ECORRUPT;
}

int lask__get_u32(struct lask_rbuf *r, uint32_t *out) {
  if (lask__rbuf_left(r) < 4) return LASK_ETRUNC;
  const uint8_t *p = r->pos;
  *out = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
  r->pos += 4;
  return 0;
}

int lask__get_bytes(struct lask_rbuf *r, size_t n, const uint8_t **out) {
  if (lask__rbuf_left(r) < n) return LASK_ETRUNC;
  *out = r->pos;
  r->pos += n;
  return 0;
}

int lask__get_string(struct lask_rbuf *r, const uint8_t **s, size_t *n) {
  uint64_t len;
  int rc = lask__get_varint(r, &len);
  if (rc != 0) return rc;
  if (len > lask__rbuf_left(r)) return LASK_ETRUNC;
  *s = r->pos;
  *n = (size_t)len;
  r->pos += len;
  return 0;
}

int lask__codec_begin(struct lask_wbuf *w, int flavour) {
  w->len = 0;
  int rc = lask__wbuf_reserve(w, LASK__CODEC_HEADER);
  if (rc != 0) return rc;
  static const uint8_t magic[3] = {'l', 's', 'k'};
  memcpy(w->p, magic, 3);
  w->p[3] = LASK__CODEC_VERSION;
  w->p[4] = (uint8_t)flavour;
  memset(w->p + 5, 0, LASK__CODEC_HEADER - 5);
  w->len = LASK__CODEC_HEADER;
  return 0;
}

/* The checksum seed: header bytes 0..7 read as a little-endian integer, so
** that a damaged header is caught like a damaged body. */
static uint64_t header_seed(const uint8_t *h) {
  uint64_t s = 0;
  for (int i = 0; i < 8; i++) s |= (uint64_t)h[i] << (8 * i);
  return s;
}

void lask__codec_seal(struct lask_wbuf *w, int flags) {
  if (w->p == NULL || w->len < LASK__CODEC_HEADER) abort(); /* no begin */
  w->p[5] = (uint8_t)flags;
  uint64_t sum = lask_hash64(w->p + LASK__CODEC_HEADER,
                             w->len - LASK__CODEC_HEADER, header_seed(w->p));
  for (int i = 0; i < 8; i++) w->p[8 + i] = (uint8_t)(sum >> (8 * i));
}

int lask__codec_open(const void *data, size_t n, struct lask_header *h,
                     struct lask_rbuf *body) {
  const uint8_t *p = data;
  if (n < LASK__CODEC_HEADER) return n == 0 ? LASK_ETRUNC : LASK_ECORRUPT;
  if (p[0] != 'l' || p[1] != 's' || p[2] != 'k') return LASK_ECORRUPT;
  if (p[3] != LASK__CODEC_VERSION) return LASK_EVERSION;
  if (p[6] != 0 || p[7] != 0) return LASK_ECORRUPT;
  uint64_t want = 0;
  for (int i = 0; i < 8; i++) want |= (uint64_t)p[8 + i] << (8 * i);
  uint64_t got = lask_hash64(p + LASK__CODEC_HEADER, n - LASK__CODEC_HEADER,
                             header_seed(p));
  if (want != got) return LASK_ECHECKSUM;
  h->version = p[3];
  h->flavour = p[4];
  h->flags = p[5];
  body->pos = p + LASK__CODEC_HEADER;
  body->end = p + n;
  return 0;
}

int lask_codec_check(const void *p, size_t n, int *flavour) {
  struct lask_header h;
  struct lask_rbuf body;
  int rc = lask__codec_open(p, n, &h, &body);
  if (rc == 0 && flavour != NULL) *flavour = h.flavour;
  return rc;
}
