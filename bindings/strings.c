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

/* str_split(list [, sep]) -> list of lists of pieces. Without sep, splits
** on runs of whitespace and drops empty pieces (Python's str.split());
** with sep, splits on each occurrence of that plain string. */
static int l_str_split(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t seplen = 0;
  const char *sep = luaL_optlstring(L, 2, NULL, &seplen);
  luaL_argcheck(L, sep == NULL || seplen > 0, 2, "empty separator");
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  lua_createtable(L, (int)n, 0);
  int out = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s = element(L, i, &len), *end = s + len;
    lua_newtable(L);
    lua_Integer k = 0;
    if (sep == NULL) {
      while (s < end) {
        while (s < end && isspace((unsigned char)*s)) s++;
        const char *w = s;
        while (s < end && !isspace((unsigned char)*s)) s++;
        if (s > w) {
          lua_pushlstring(L, w, (size_t)(s - w));
          lua_rawseti(L, -2, ++k);
        }
      }
    } else {
      for (;;) {
        const char *hit = len >= seplen ?
                          memmem(s, (size_t)(end - s), sep, seplen) : NULL;
        const char *stop = hit ? hit : end;
        lua_pushlstring(L, s, (size_t)(stop - s));
        lua_rawseti(L, -2, ++k);
        if (hit == NULL) break;
        s = hit + seplen;
      }
    }
    lua_rawseti(L, out, i);
    lua_pop(L, 1);
  }
  return 1;
}

/* str_split_flat(list [, sep]) -> one list of all the pieces: what
** b.str:split():flatten() runs, without the lists in between. */
static int l_str_split_flat(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t seplen = 0;
  const char *sep = luaL_optlstring(L, 2, NULL, &seplen);
  luaL_argcheck(L, sep == NULL || seplen > 0, 2, "empty separator");
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1), k = 0;
  lua_createtable(L, (int)(n * 4), 0);
  int out = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s = element(L, i, &len), *end = s + len;
    while (sep == NULL && s < end) {
      while (s < end && isspace((unsigned char)*s)) s++;
      const char *w = s;
      while (s < end && !isspace((unsigned char)*s)) s++;
      if (s > w) {
        lua_pushlstring(L, w, (size_t)(s - w));
        lua_rawseti(L, out, ++k);
      }
    }
    while (sep != NULL) {
      const char *hit = memmem(s, (size_t)(end - s), sep, seplen);
      const char *stop = hit ? hit : end;
      lua_pushlstring(L, s, (size_t)(stop - s));
      lua_rawseti(L, out, ++k);
      if (hit == NULL) break;
      s = hit + seplen;
    }
    lua_pop(L, 1);
  }
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

/* Returns the slot for the word s[0..len) in 'tab' (mask + 1 slots). */
static struct wslot *wfind(struct wslot *tab, size_t mask, const char *s,
                           size_t len, uint64_t h) {
  size_t i = (size_t)h & mask;
  for (;;) {
    struct wslot *w = &tab[i];
    if (w->s == NULL ||
        (w->hash == h && w->len == len && memcmp(w->s, s, len) == 0)) {
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

/* count_split(lines [, sep]) -> {word = count}: what
** str:split():flatten():frequencies() computes for one partition, counted
** from the lines' bytes, with a Lua string made once per distinct word. */
static int l_count_split(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  size_t seplen = 0;
  const char *sep = luaL_optlstring(L, 2, NULL, &seplen);
  luaL_argcheck(L, sep == NULL || seplen > 0, 2, "empty separator");
  lua_settop(L, 2);
  size_t mask = 1023, used = 0;
  struct wslot *tab = lua_newuserdatauv(L, (mask + 1) * sizeof *tab, 0);
  memset(tab, 0, (mask + 1) * sizeof *tab);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s = element(L, i, &len), *end = s + len;
    lua_pop(L, 1); /* the line stays referenced by the list */
    while (s < end || (sep != NULL && s == end)) {
      const char *w = s, *stop;
      if (sep == NULL) {
        while (w < end && isspace((unsigned char)*w)) w++;
        stop = w;
        while (stop < end && !isspace((unsigned char)*stop)) stop++;
        s = stop;
        if (stop == w) break;
      } else {
        const char *hit = memmem(w, (size_t)(end - w), sep, seplen);
        stop = hit ? hit : end;
        s = hit ? hit + seplen : end + 1;
      }
      size_t wl = (size_t)(stop - w);
      uint64_t h = lask_hash64(w, wl, 0);
      struct wslot *slot = wfind(tab, mask, w, wl, h);
      if (slot->s == NULL) {
        if (2 * (used + 1) > mask + 1) {
          tab = wgrow(L, 3, tab, &mask);
          slot = wfind(tab, mask, w, wl, h);
        }
        slot->s = w;
        slot->len = wl;
        slot->hash = h;
        used++;
      }
      slot->count++;
    }
  }
  lua_createtable(L, 0, (int)used);
  for (size_t i = 0; i <= mask; i++) {
    if (tab[i].s == NULL) continue;
    lua_pushlstring(L, tab[i].s, tab[i].len);
    lua_pushinteger(L, tab[i].count);
    lua_rawset(L, -3);
  }
  return 1;
}

static const luaL_Reg string_funcs[] = {
  {"count_split", l_count_split},
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
