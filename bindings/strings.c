/*
** strings.c: string helpers that bags apply to a whole partition (a Lua
** list) in C: split, lower, upper, strip, len, and counting values for
** frequencies. No Lua function runs per element; match and gsub call the
** string library's own C functions, found once per partition.
**
** Each function takes the list first and returns a new list (count_values
** a table value -> count). Elements that are not strings raise an error
** naming the element's index and type.
*/
#include <ctype.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "strings.h"
#include "textio.h"
#include "value.h"

/* Is c whitespace: the six ASCII ones, as isspace() and Lua's %s in the
** C locale. Fixed, whatever locale the program sets (a Latin-1 locale's
** 0xA0 is not whitespace here). A table, not a call per byte. */
static const unsigned char is_ws[256] = {
  ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [' '] = 1,
};

const char *lask__str_element(lua_State *L, const char *who, lua_Integer i,
                              size_t *n) {
  lua_rawgeti(L, 1, i);
  if (lua_type(L, -1) != LUA_TSTRING) { /* before tolstring converts it */
    lask__fail(L, "lask: bag.str.%s: element %d of a partition is a %s, not "
               "a string", who, (int)i, luaL_typename(L, -1));
  }
  return lua_tolstring(L, -1, n);
}

/* The pieces of a string: runs of non-space (empty pieces dropped, as
** Python's str.split()) when 'sep' is NULL, else what lies between the
** occurrences of the plain string 'sep' (empty pieces kept). */
struct pieces {
  const char *s, *end, *sep;
  size_t seplen;
  int done;
};

static void pieces_init(struct pieces *it, const char *s, size_t len,
                        const char *sep, size_t seplen) {
  it->s = s;
  it->end = s + len;
  it->sep = sep;
  it->seplen = seplen;
  it->done = 0;
}

/* Sets *w, *wl to the next piece and returns 1, or returns 0 at the end. */
static int next_piece(struct pieces *it, const char **w, size_t *wl) {
  if (it->sep == NULL) {
    while (it->s < it->end && is_ws[(unsigned char)*it->s]) it->s++;
    const char *start = it->s;
    while (it->s < it->end && !is_ws[(unsigned char)*it->s]) it->s++;
    *w = start;
    *wl = (size_t)(it->s - start);
    return *wl > 0;
  }
  if (it->done) return 0;
  const char *hit = memmem(it->s, (size_t)(it->end - it->s), it->sep,
                           it->seplen);
  const char *stop = hit ? hit : it->end;
  *w = it->s;
  *wl = (size_t)(stop - it->s);
  if (hit == NULL) it->done = 1;
  else it->s = hit + it->seplen;
  return 1;
}

/* Checks the optional separator at index 2; returns it or NULL. */
static const char *opt_sep(lua_State *L, size_t *seplen) {
  *seplen = 0;
  const char *sep = luaL_optlstring(L, 2, NULL, seplen);
  luaL_argcheck(L, sep == NULL || *seplen > 0, 2, "empty separator");
  return sep;
}

/* Appends the pieces of string i of the list at 1 to the table on top,
** from index *k + 1. */
static void push_pieces(lua_State *L, lua_Integer i, const char *sep,
                        size_t seplen, lua_Integer *k) {
  size_t len, wl;
  const char *s = lask__str_element(L, "split", i, &len), *w;
  lua_pop(L, 1); /* the string stays referenced by the list */
  struct pieces it;
  pieces_init(&it, s, len, sep, seplen);
  while (next_piece(&it, &w, &wl)) {
    lua_pushlstring(L, w, wl);
    lua_rawseti(L, -2, ++*k);
  }
}

/* str_split(list [, sep]) -> list of lists of pieces (see struct
** pieces). */
static int l_str_split(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t seplen;
  const char *sep = opt_sep(L, &seplen);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_Integer k = 0;
    lua_newtable(L);
    push_pieces(L, i, sep, seplen, &k);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

/* str_split_flat(list [, sep]) -> one list of all the pieces: what
** b.str:split():flatten() runs, without the lists in between. */
static int l_str_split_flat(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t seplen;
  const char *sep = opt_sep(L, &seplen);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1), k = 0;
  lua_createtable(L, (int)(n * 4), 0);
  for (lua_Integer i = 1; i <= n; i++) push_pieces(L, i, sep, seplen, &k);
  return 1;
}

/* check_sequence(list, who) -> list, when its elements are list[1..#list]
** with no nil between them and none past the end (keys that are not whole
** numbers are let be, unless there is no element at all: a record); else
** an error naming the first missing index, for a
** partition a user's function made (# would silently stop at a border).
** Then the whole table is walked for keys past the end. */
static void check_list(lua_State *L, const char *who) {
  if (!lua_istable(L, 1)) {
    lask__fail(L, "%s: a partition must be a list, got a %s", who,
               luaL_typename(L, 1));
  }
}

/* check_list(p [, who]) -> p if it is a table, else an error naming its
** type: the cheap check of a partition made by lask's own steps. */
static int l_check_list(lua_State *L) {
  check_list(L, luaL_optstring(L, 2, "lask.bag"));
  lua_settop(L, 1);
  return 1;
}

static int l_check_sequence(lua_State *L) {
  const char *who = luaL_checkstring(L, 2);
  check_list(L, who);
  lua_settop(L, 2);
  /* a proxy would read one way in the Lua steps (#, []) and another in
  ** the C ones (raw): refused */
  if (lua_getmetatable(L, 1)) {
    lua_getfield(L, -1, "__len");
    lua_getfield(L, -2, "__index");
    int proxy = !lua_isnil(L, -1) || !lua_isnil(L, -2);
    lua_settop(L, 2);
    if (proxy)
      return lask__fail(L, "%s: the list has a metatable with __len or "
                        "__index (a partition must be a plain list)", who);
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1), i;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    int hole = lua_isnil(L, -1);
    lua_pop(L, 1);
    if (hole) goto fail;
  }
  /* the whole table: a list filled out of order may keep a key past the
  ** end anywhere in it (walking on from key n missed those) */
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TNUMBER) {
      /* keys and no list at all: a record, not a sequence ("n", as
      ** table.pack sets, is let be) */
      if (n == 0 && !(lua_type(L, -1) == LUA_TSTRING &&
                      strcmp(lua_tostring(L, -1), "n") == 0))
        return lask__fail(L, "%s: the table has key '%s' and no element 1 "
                          "(a bag holds lists, not records)", who,
                          lua_type(L, -1) == LUA_TSTRING
                              ? lua_tostring(L, -1) : luaL_typename(L, -1));
      continue;
    }
    lua_Number k = lua_tonumber(L, -1);
    if (isfinite(k) && floor(k) == k && k > (lua_Number)n) goto fail;
  }
  lua_settop(L, 1);
  return 1;
fail:
  return lask__fail(L, "%s: the list has a hole at index %d (a bag cannot "
                    "hold nil: return false, or leave the element out)",
                    who, (int)i);
}

/* #t of the table at idx as Lua code sees it: with __len on Lua 5.4
** (5.1's # ignores __len on tables). */
static lua_Integer len_as_lua(lua_State *L, int idx) {
#if LASK_FLAVOUR == LASK_FLAVOUR_LUAJIT
  return (lua_Integer)lua_objlen(L, idx);
#else
  return luaL_len(L, idx);
#endif
}

/* flatten_list(list) -> the elements of the element lists, in order. An
** element list is read as the Lua flatten step reads it (#xs, xs[j]), so
** a proxy list with __len and __index flattens the same after a C step. */
static int l_flatten_list(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1), k = 0;
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    if (!lua_istable(L, -1)) {
      lask__fail(L, "lask: bag.flatten: element %d is a %s, not a list",
                 (int)i, luaL_typename(L, -1));
    }
    int meta = lua_getmetatable(L, -1);
    if (meta) lua_pop(L, 1);
    lua_Integer m = meta ? len_as_lua(L, -1) : (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer j = 1; j <= m; j++) {
      if (meta) {
        lua_pushinteger(L, j);
        lua_gettable(L, -2);
      } else {
        lua_rawgeti(L, -1, j);
      }
      if (lua_isnil(L, -1)) /* as the Lua flatten step */
        lask__fail(L, "lask.bag: an element is nil (bag.flatten: element "
                   "%d of list %d is nil; a bag cannot hold nil)", (int)j,
                   (int)i);
      lua_rawseti(L, -3, ++k);
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* Applies 'f' to each byte of each string: lower and upper. The bytes are
** built in a userdata scratch buffer (freed by the collector even if an
** element raises), replaced by a larger one when a string needs it. */
static int map_bytes(lua_State *L, int (*f)(int), const char *who) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  size_t cap = 256;
  char *p = lua_newuserdatauv(L, cap, 0);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s = lask__str_element(L, who, i, &len);
    if (len > cap) {
      while (cap < len) cap *= 2;
      p = lua_newuserdatauv(L, cap, 0);
      lua_replace(L, 2);
    }
    for (size_t j = 0; j < len; j++) p[j] = (char)f((unsigned char)s[j]);
    lua_pushlstring(L, p, len);
    lua_rawseti(L, 3, i);
    lua_pop(L, 1);
  }
  return 1;
}

static int l_str_lower(lua_State *L) {
  return map_bytes(L, tolower, "lower");
}
static int l_str_upper(lua_State *L) {
  return map_bytes(L, toupper, "upper");
}

/* str_strip(list) -> each string without leading and trailing spaces. */
static int l_str_strip(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s = lask__str_element(L, "strip", i, &len), *e = s + len;
    while (s < e && is_ws[(unsigned char)*s]) s++;
    while (e > s && is_ws[(unsigned char)e[-1]]) e--;
    lua_pushlstring(L, s, (size_t)(e - s));
    lua_rawseti(L, -3, i);
    lua_pop(L, 1);
  }
  return 1;
}

/* str_len(list) -> the byte length of each string. */
static int l_str_len(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    lask__str_element(L, "len", i, &len);
    lua_pop(L, 1);
    lua_pushinteger(L, (lua_Integer)len);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

/* count_values(list) -> {value = count}: frequencies of one partition. */
static int l_count_values(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  lua_newtable(L);
  int t = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    if (lua_isnil(L, -1)) { /* a hole: the list ends here */
      lua_pop(L, 1);
      continue;
    }
    if (lua_type(L, -1) == LUA_TNUMBER &&
        lua_tonumber(L, -1) != lua_tonumber(L, -1))
      return lask__fail(L, "lask: bag.frequencies: cannot count NaN (it is not "
                           "equal to itself)");
    lua_pushvalue(L, -1);
    lua_rawget(L, t);
    lua_Integer c = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushinteger(L, c + 1);
    lua_rawset(L, t);
  }
  return 1;
}

/* A table of words and their counts: the words in a dense array, in the
** order first seen (the frequent ones, seen early, share cache lines),
** found through an open-addressing index of 8-byte entries (32 bits of
** hash, and the word's place + 1; 0 is empty) small enough to stay in
** the second-level cache. A word's first 16 bytes are kept in its slot,
** zero-padded, so most comparisons do not read the text again; 's' points
** into the partition's lines or the file block, anchored while the table
** lives. */
struct wslot {
  uint64_t w0, w1;  /* the first 16 bytes, zero-padded */
  uint64_t hash;
  const char *s;
  size_t len;
  lua_Integer count;
};

/* A word as the table sees it: bytes, length, head and hash. */
struct wkey {
  const char *s;
  size_t len;
  uint64_t w0, w1, hash;
};

static uint64_t load_le(const char *p, size_t n) { /* n <= 8 bytes */
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v |= (uint64_t)(unsigned char)p[i] << (8 * i);
  return v;
}

/* lomask[n]: the low n bytes of a word (n <= 8). */
static const uint64_t lomask[9] = {
  0, 0xff, 0xffff, 0xffffff, 0xffffffff, 0xffffffffff, 0xffffffffffff,
  0xffffffffffffff, UINT64_MAX};

/* Fills k for the word s[0..len); 'end' bounds the readable bytes after
** it (two 8-byte loads, masked, when the word has 16 readable bytes). */
static void wkey_make(struct wkey *k, const char *s, size_t len,
                      const char *end) {
  k->s = s;
  k->len = len;
  size_t n0 = len < 8 ? len : 8;
  size_t n1 = len < 8 ? 0 : len < 16 ? len - 8 : 8;
  if ((size_t)(end - s) >= 16) {
    uint64_t a, b;
    memcpy(&a, s, 8);
    memcpy(&b, s + 8, 8);
    k->w0 = a & lomask[n0];
    k->w1 = b & lomask[n1];
  } else {
    k->w0 = load_le(s, n0);
    k->w1 = load_le(s + 8, n1);
  }
  uint64_t h;
  if (len <= 16) {
    h = k->w0 * UINT64_C(0x9e3779b97f4a7c15) ^
        (k->w1 + len) * UINT64_C(0xc2b2ae3d27d4eb4f);
    h ^= h >> 29;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 32;
  } else {
    h = lask_hash64(s, len, 0);
  }
  k->hash = h;
}

/* A word table being filled: its two arrays are userdata at stack
** indexes 'ibox' (the index) and 'sbox' (the slots). */
struct wtable {
  uint64_t *idx;
  size_t mask; /* index entries - 1 */
  struct wslot *slots;
  size_t used, cap;
  int ibox, sbox;
};

static void *new_zeroed(lua_State *L, size_t n) {
  void *p = lua_newuserdatauv(L, n, 0);
  memset(p, 0, n);
  return p;
}

static void wtable_init(lua_State *L, struct wtable *t) {
  t->mask = 1023;
  t->idx = new_zeroed(L, (t->mask + 1) * sizeof *t->idx);
  t->ibox = lua_gettop(L);
  t->used = 0;
  t->cap = 256;
  t->slots = new_zeroed(L, t->cap * sizeof *t->slots);
  t->sbox = lua_gettop(L);
}

static void windex_put(uint64_t *idx, size_t mask, uint64_t hash,
                       size_t place) {
  size_t i = (size_t)hash & mask;
  while (idx[i] != 0) i = (i + 1) & mask;
  idx[i] = (hash >> 32 << 32) | (uint64_t)(place + 1);
}

/* Doubles the index (a new userdata replaces the old: garbage). */
static void windex_grow(lua_State *L, struct wtable *t) {
  size_t n = (t->mask + 1) * 2;
  uint64_t *big = new_zeroed(L, n * sizeof *big);
  for (size_t p = 0; p < t->used; p++)
    windex_put(big, n - 1, t->slots[p].hash, p);
  lua_replace(L, t->ibox);
  t->idx = big;
  t->mask = n - 1;
}

static void wtable_add(lua_State *L, struct wtable *t, const struct wkey *k) {
  uint64_t tag = k->hash >> 32;
  size_t i = (size_t)k->hash & t->mask;
  for (;;) {
    uint64_t e = t->idx[i];
    if (e == 0) break;
    if (e >> 32 == tag) {
      struct wslot *w = &t->slots[(uint32_t)e - 1];
      if (w->len == k->len && w->w0 == k->w0 && w->w1 == k->w1 &&
          (k->len <= 16 || memcmp(w->s + 16, k->s + 16, k->len - 16) == 0)) {
        w->count++;
        return;
      }
    }
    i = (i + 1) & t->mask;
  }
  /* a new word */
  if (t->used == UINT32_MAX - 1) lask__fail(L, "lask: too many distinct words");
  if (t->used == t->cap) {
    struct wslot *big = lua_newuserdatauv(L, 2 * t->cap * sizeof *big, 0);
    memcpy(big, t->slots, t->cap * sizeof *big);
    lua_replace(L, t->sbox);
    t->slots = big;
    t->cap *= 2;
  }
  struct wslot *w = &t->slots[t->used];
  w->w0 = k->w0;
  w->w1 = k->w1;
  w->hash = k->hash;
  w->s = k->s;
  w->len = k->len;
  w->count = 1;
  if (2 * (t->used + 1) > t->mask + 1) {
    t->used++;
    windex_grow(L, t); /* places the new word too */
    return;
  }
  t->idx[i] = (tag << 32) | (uint64_t)(t->used + 1);
  t->used++;
}

#ifdef __SSE2__
/* Bit b set when p[b] is whitespace, for the 64 bytes at p. */
static uint64_t ws_mask64(const char *p) {
  uint64_t m = 0;
  for (int q = 0; q < 4; q++) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * q));
    __m128i sp = _mm_cmpeq_epi8(v, _mm_set1_epi8(' '));
    __m128i t = _mm_sub_epi8(v, _mm_set1_epi8(9)); /* \t..\r: 0..4 */
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(4)), t);
    uint64_t bits = (unsigned)_mm_movemask_epi8(_mm_or_si128(sp, ctl));
    m |= bits << (16 * q);
  }
  return m;
}
#endif

/* Counts the whitespace-separated words of s[0..len): 64 bytes at a
** time, word edges found from a bit mask of the whitespace (no branch
** per byte), then byte by byte for the tail. */
static void count_ws_words(lua_State *L, struct wtable *t, const char *s,
                           size_t len) {
  const char *end = s + len, *w = NULL; /* w: the word under way, if any */
  size_t i = 0;
  struct wkey k;
#ifdef __SSE2__
  for (; i + 64 <= len; i += 64) {
    uint64_t ws = ws_mask64(s + i), m;
    int pos = 0; /* always < 64 */
    for (;;) {
      if (w != NULL) { /* its end: the next whitespace */
        m = ws & (UINT64_MAX << pos);
        if (m == 0) break; /* it runs on into the next 64 bytes */
        pos = __builtin_ctzll(m);
        wkey_make(&k, w, (size_t)(s + i + pos - w), end);
        wtable_add(L, t, &k);
        w = NULL;
      }
      m = ~ws & (UINT64_MAX << pos); /* the next word's start */
      if (m == 0) break;
      pos = __builtin_ctzll(m);
      w = s + i + pos;
    }
  }
#endif
  for (; i < len; i++) {
    int sp = is_ws[(unsigned char)s[i]];
    if (w != NULL && sp) {
      wkey_make(&k, w, (size_t)(s + i - w), end);
      wtable_add(L, t, &k);
      w = NULL;
    } else if (w == NULL && !sp) {
      w = s + i;
    }
  }
  if (w != NULL) {
    wkey_make(&k, w, (size_t)(end - w), end);
    wtable_add(L, t, &k);
  }
}

/* Counts the words of s[0..len) (split on whitespace runs, or on 'sep'),
** keeping pointers into s: the bytes must outlive the table. */
static void count_words(lua_State *L, struct wtable *t, const char *s,
                        size_t len, const char *sep, size_t seplen) {
  if (sep == NULL) {
    count_ws_words(L, t, s, len);
    return;
  }
  struct pieces it;
  const char *w;
  size_t wl;
  struct wkey k;
  pieces_init(&it, s, len, sep, seplen);
  while (next_piece(&it, &w, &wl)) {
    wkey_make(&k, w, wl, s + len);
    wtable_add(L, t, &k);
  }
}

/* Pushes {word = count} for the table 't'. */
static void push_counts(lua_State *L, const struct wtable *t) {
  lua_createtable(L, 0, t->used > INT32_MAX ? INT32_MAX : (int)t->used);
  for (size_t p = 0; p < t->used; p++) {
    lua_pushlstring(L, t->slots[p].s, t->slots[p].len);
    lua_pushinteger(L, t->slots[p].count);
    lua_rawset(L, -3);
  }
}

/* Pushes the list of the words of 't' in first-seen order (the slots are
** added in that order). */
static void push_words(lua_State *L, const struct wtable *t) {
  lua_createtable(L, t->used > INT32_MAX ? INT32_MAX : (int)t->used, 0);
  for (size_t p = 0; p < t->used; p++) {
    lua_pushlstring(L, t->slots[p].s, t->slots[p].len);
    lua_rawseti(L, -2, (lua_Integer)p + 1);
  }
}

typedef void (*push_fn)(lua_State *L, const struct wtable *t);

/* The words of the lines in the list at 1, split as str:split (sep at 2). */
static int split_lines(lua_State *L, push_fn push) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t seplen;
  const char *sep = opt_sep(L, &seplen);
  lua_settop(L, 2);
  struct wtable t;
  wtable_init(L, &t);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s = lask__str_element(L, "split", i, &len);
    lua_pop(L, 1); /* the line stays referenced by the list */
    count_words(L, &t, s, len, sep, seplen);
  }
  push(L, &t);
  return 1;
}

/* Whether every byte of the delimiter is whitespace to split(): then no
** word runs across a line end, and a block splits as a whole. */
static int delim_is_space(const struct lask_delim *d) {
  for (size_t i = 0; i < d->len; i++)
    if (!is_ws[(unsigned char)d->s[i]]) return 0;
  return 1;
}

/* The words of the lines a file block owns (path, start, size at 1-3, sep
** at 4, the line delimiter at 5), from the file's bytes with no Lua string
** per line or per word. */
static int split_block(lua_State *L, push_fn push) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer start = luaL_checkinteger(L, 2);
  lua_Integer size = luaL_checkinteger(L, 3);
  size_t seplen = 0;
  const char *sep = luaL_optlstring(L, 4, NULL, &seplen);
  luaL_argcheck(L, sep == NULL || seplen > 0, 4, "empty separator");
  struct lask_delim d;
  lask__opt_delim(L, 5, &d);
  lua_settop(L, 5);
  size_t n;
  int box;
  const char *buf = lask__read_block_bytes(L, path, start, size, &d, &n,
                                           &box);
  struct wtable t;
  wtable_init(L, &t);
  if (sep == NULL && delim_is_space(&d)) {
    count_words(L, &t, buf, n, NULL, 0);
  } else { /* a piece must not run across a line end: line by line */
    const char *p = buf, *end = buf + n;
    while (p < end) {
      const char *stop = lask__line_end(p, end, &d);
      count_words(L, &t, p, (size_t)(stop - p), sep, seplen);
      p = stop;
    }
  }
  push(L, &t); /* the words are copied into Lua strings */
  lask__release_block_bytes(L, box);
  return 1;
}

/* count_split(lines [, sep]) -> {word = count}: what
** str:split():flatten():frequencies() computes for one partition, counted
** from the lines' bytes, with a Lua string made once per distinct word. */
static int l_count_split(lua_State *L) { return split_lines(L, push_counts); }

/* distinct_split(lines [, sep]) -> the distinct words in first-seen order:
** str:split():flatten():distinct() of one partition. */
static int l_distinct_split(lua_State *L) {
  return split_lines(L, push_words);
}

/* count_block(path, start, size [, sep [, delimiter]]) -> {word = count}
** of the lines the block owns (the same lines lask.core.read_block
** returns). */
static int l_count_block(lua_State *L) { return split_block(L, push_counts); }

/* distinct_block(path, start, size [, sep [, delimiter]]) -> the block's
** distinct words in first-seen order. */
static int l_distinct_block(lua_State *L) {
  return split_block(L, push_words);
}

static const luaL_Reg string_funcs[] = {
  {"count_split", l_count_split},
  {"count_block", l_count_block},
  {"distinct_split", l_distinct_split},
  {"distinct_block", l_distinct_block},
  {"str_split", l_str_split},
  {"str_split_flat", l_str_split_flat},
  {"flatten_list", l_flatten_list},
  {"check_list", l_check_list},
  {"check_sequence", l_check_sequence},
  {"str_lower", l_str_lower},
  {"str_upper", l_str_upper},
  {"str_strip", l_str_strip},
  {"str_len", l_str_len},
  {"count_values", l_count_values},
  {NULL, NULL}
};

void lask__strings_register(lua_State *L) {
  luaL_setfuncs(L, string_funcs, 0);
}
