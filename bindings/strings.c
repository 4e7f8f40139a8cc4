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
#include <string.h>

#include "strings.h"
#include "textio.h"
#include "value.h"

/* Returns the string at index 'i' of the list at 1, or raises. */
static const char *element(lua_State *L, lua_Integer i, size_t *n) {
  lua_rawgeti(L, 1, i);
  if (lua_type(L, -1) != LUA_TSTRING) { /* before tolstring converts it */
    lask__fail(L, "lask: bag.str: element %d is a %s, not a string", (int)i,
               luaL_typename(L, -1));
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
    while (it->s < it->end && isspace((unsigned char)*it->s)) it->s++;
    const char *start = it->s;
    while (it->s < it->end && !isspace((unsigned char)*it->s)) it->s++;
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
  const char *s = element(L, i, &len), *w;
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

/* flatten_list(list) -> the elements of the element lists, in order. */
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
    lua_Integer m = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer j = 1; j <= m; j++) {
      lua_rawgeti(L, -1, j);
      lua_rawseti(L, -3, ++k);
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* Applies 'f' to each byte of each string: lower and upper. The bytes are
** built in a userdata scratch buffer (freed by the collector even if an
** element raises), replaced by a larger one when a string needs it. */
static int map_bytes(lua_State *L, int (*f)(int)) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  size_t cap = 256;
  char *p = lua_newuserdatauv(L, cap, 0);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s = element(L, i, &len);
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

static int l_str_lower(lua_State *L) { return map_bytes(L, tolower); }
static int l_str_upper(lua_State *L) { return map_bytes(L, toupper); }

/* str_strip(list) -> each string without leading and trailing spaces. */
static int l_str_strip(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s = element(L, i, &len), *e = s + len;
    while (s < e && isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) e--;
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
    element(L, i, &len);
    lua_pop(L, 1);
    lua_pushinteger(L, (lua_Integer)len);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

/* Calls string.<name>(s, extra...) for each string; keeps the first result
** (match: nil where nothing matches). */
static int call_each(lua_State *L, const char *name, int nextra) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getglobal(L, "string");
  lua_getfield(L, -1, name);
  int fn = lua_gettop(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  lua_createtable(L, (int)n, 0);
  int out = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    element(L, i, &len);
    lua_pushvalue(L, fn);
    lua_insert(L, -2);
    for (int a = 0; a < nextra; a++) lua_pushvalue(L, 2 + a);
    lua_call(L, 1 + nextra, 1);
    lua_rawseti(L, out, i);
  }
  return 1;
}

/* str_match(list, pattern) and str_gsub(list, pattern, repl). */
static int l_str_match(lua_State *L) {
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  return call_each(L, "match", 1);
}

static int l_str_gsub(lua_State *L) {
  luaL_checkstring(L, 2);
  luaL_checkany(L, 3);
  lua_settop(L, 3);
  return call_each(L, "gsub", 2);
}

/* count_values(list) -> {value = count}: frequencies of one partition. */
static int l_count_values(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  lua_newtable(L);
  int t = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER &&
                             lua_tonumber(L, -1) != lua_tonumber(L, -1))) {
      lua_pop(L, 1); /* nil and NaN cannot be keys: not counted */
      continue;
    }
    lua_pushvalue(L, -1);
    lua_rawget(L, t);
    lua_Integer c = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushinteger(L, c + 1);
    lua_rawset(L, t);
  }
  return 1;
}

/* Open-addressing table of byte strings (pointing into the partition's
** lines, which stay anchored as the call's argument) and their counts. */
struct wslot {
  const char *s; /* NULL: empty */
  size_t len;
  uint64_t hash;
  lua_Integer count;
};

/* Are the 'n' bytes at a and b equal? Short words are compared inline: a
** memcmp call costs more than the comparison. */
static inline int same_bytes(const char *a, const char *b, size_t n) {
  if (n > 16) return memcmp(a, b, n) == 0;
  for (size_t i = 0; i < n; i++) {
    if (a[i] != b[i]) return 0;
  }
  return 1;
}

/* Returns the slot for the word s[0..len) in 'tab' (mask + 1 slots). */
static struct wslot *wfind(struct wslot *tab, size_t mask, const char *s,
                           size_t len, uint64_t h) {
  size_t i = (size_t)(h ^ (h >> 29)) & mask;
  for (;;) {
    struct wslot *w = &tab[i];
    if (w->s == NULL ||
        (w->hash == h && w->len == len && same_bytes(w->s, s, len))) {
      return w;
    }
    i = (i + 1) & mask;
  }
}

/* Grows the table held in the userdata at stack index 'box' to twice its
** size (a new userdata replaces it; the old one is garbage). */
static struct wslot *wgrow(lua_State *L, int box, struct wslot *tab,
                           size_t *mask) {
  size_t n = (*mask + 1) * 2;
  struct wslot *big = lua_newuserdatauv(L, n * sizeof *big, 0);
  memset(big, 0, n * sizeof *big);
  for (size_t i = 0; i <= *mask; i++) {
    if (tab[i].s != NULL) {
      *wfind(big, n - 1, tab[i].s, tab[i].len, tab[i].hash) = tab[i];
    }
  }
  lua_replace(L, box);
  *mask = n - 1;
  return big;
}

/* A word table being filled: its userdata sits at stack index 'box'. */
struct wtable {
  struct wslot *tab;
  size_t mask, used;
  int box;
};

static void wtable_init(lua_State *L, struct wtable *t) {
  t->mask = 1023;
  t->used = 0;
  t->tab = lua_newuserdatauv(L, (t->mask + 1) * sizeof *t->tab, 0);
  memset(t->tab, 0, (t->mask + 1) * sizeof *t->tab);
  t->box = lua_gettop(L);
}

/* Counts the words of s[0..len) (split on whitespace runs, or on 'sep'),
** keeping pointers into s: the bytes must outlive the table. */
static void count_words(lua_State *L, struct wtable *t, const char *s,
                        size_t len, const char *sep, size_t seplen) {
  struct pieces it;
  const char *w;
  size_t wl;
  pieces_init(&it, s, len, sep, seplen);
  for (;;) {
    uint64_t h = 0xcbf29ce484222325ull;
    if (sep == NULL) {
      /* next_piece's whitespace scan, with FNV-1a fused into it: this is
      ** the word count's hot loop (one pass over each word's bytes). */
      while (it.s < it.end && isspace((unsigned char)*it.s)) it.s++;
      w = it.s;
      while (it.s < it.end && !isspace((unsigned char)*it.s)) {
        h = (h ^ (unsigned char)*it.s) * 0x100000001b3ull;
        it.s++;
      }
      wl = (size_t)(it.s - w);
      if (wl == 0) break;
    } else {
      if (!next_piece(&it, &w, &wl)) break;
      h = lask_hash64(w, wl, 0);
    }
    struct wslot *slot = wfind(t->tab, t->mask, w, wl, h);
    if (slot->s == NULL) {
      if (2 * (t->used + 1) > t->mask + 1) {
        t->tab = wgrow(L, t->box, t->tab, &t->mask);
        slot = wfind(t->tab, t->mask, w, wl, h);
      }
      slot->s = w;
      slot->len = wl;
      slot->hash = h;
      t->used++;
    }
    slot->count++;
  }
}

/* Pushes {word = count} for the table 't'. */
static void push_counts(lua_State *L, const struct wtable *t) {
  lua_createtable(L, 0, (int)t->used);
  for (size_t i = 0; i <= t->mask; i++) {
    if (t->tab[i].s == NULL) continue;
    lua_pushlstring(L, t->tab[i].s, t->tab[i].len);
    lua_pushinteger(L, t->tab[i].count);
    lua_rawset(L, -3);
  }
}

/* count_split(lines [, sep]) -> {word = count}: what
** str:split():flatten():frequencies() computes for one partition, counted
** from the lines' bytes, with a Lua string made once per distinct word. */
static int l_count_split(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t seplen;
  const char *sep = opt_sep(L, &seplen);
  lua_settop(L, 2);
  struct wtable t;
  wtable_init(L, &t);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s = element(L, i, &len);
    lua_pop(L, 1); /* the line stays referenced by the list */
    count_words(L, &t, s, len, sep, seplen);
  }
  push_counts(L, &t);
  return 1;
}

/* count_block(path, start, size [, sep]) -> {word = count} of the lines
** the block owns (the same lines lask.core.read_block returns), counted
** from the file's bytes with no Lua string per line or per word. */
static int l_count_block(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer start = luaL_checkinteger(L, 2);
  lua_Integer size = luaL_checkinteger(L, 3);
  size_t seplen = 0;
  const char *sep = luaL_optlstring(L, 4, NULL, &seplen);
  luaL_argcheck(L, start >= 0 && size > 0, 2, "bad block");
  luaL_argcheck(L, sep == NULL || seplen > 0, 4, "empty separator");
  lua_settop(L, 4);
  size_t n;
  int box;
  const char *buf = lask__read_block_bytes(L, path, start, size, &n, &box);
  struct wtable t;
  wtable_init(L, &t);
  if (sep == NULL) { /* '\n' is whitespace: the block splits as a whole */
    count_words(L, &t, buf, n, NULL, 0);
  } else { /* a piece must not run across a line end: line by line */
    const char *p = buf, *end = buf + n;
    while (p < end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      const char *stop = nl ? nl + 1 : end;
      count_words(L, &t, p, (size_t)(stop - p), sep, seplen);
      p = stop;
    }
  }
  push_counts(L, &t); /* the words are copied into Lua strings */
  lask__release_block_bytes(L, box);
  return 1;
}

static const luaL_Reg string_funcs[] = {
  {"count_split", l_count_split},
  {"count_block", l_count_block},
  {"str_split", l_str_split},
  {"str_split_flat", l_str_split_flat},
  {"flatten_list", l_flatten_list},
  {"str_lower", l_str_lower},
  {"str_upper", l_str_upper},
  {"str_strip", l_str_strip},
  {"str_len", l_str_len},
  {"str_match", l_str_match},
  {"str_gsub", l_str_gsub},
  {"count_values", l_count_values},
  {NULL, NULL}
};

void lask__strings_register(lua_State *L) {
  luaL_setfuncs(L, string_funcs, 0);
}
