/*
** pattern.c: Lua patterns matched in C for the bag string helpers
** str:match and str:gsub, one pass over a partition with no call into Lua
** per element (a gsub replacement function is the user's, called per
** match as string.gsub calls it).
**
** Written here from the patterns of the Lua reference manual (section
** 6.4.1): a backtracking matcher over the pattern's items. Where Lua 5.4
** and Lua 5.1 (LuaJIT) differ, it does as the running interpreter does:
** - gsub: 5.4 makes no empty match where the previous match ended
**   ("hello world":gsub("%w*", "x") is "x x"; 5.1 gives "xx xx");
** - gsub replacement strings: in 5.4 a '%' before anything but a digit or
**   '%' is an error; 5.1 takes the character as it is;
** - LuaJIT ends a pattern at its first NUL byte (use %z), 5.4 does not.
** Character classes are the C locale's, as both interpreters use by
** default (a program that calls os.setlocale may see 5.4's string.match
** classify bytes >= 0x80 differently). The specs compare both helpers
** with the string library on random patterns and subjects.
*/
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "compat.h"
#include "pattern.h"
#include "strings.h"
#include "value.h"

#define MAXCAP 32   /* captures in one pattern, as LUA_MAXCAPTURES */
#define MAXDEPTH 200 /* nested items before "pattern too complex" (both) */
#define CAP_OPEN (-1)
#define CAP_POS (-2)

struct pm {
  lua_State *L;
  const char *who, *pat;     /* for errors: the helper, the pattern */
  const char *s0, *s1;       /* the subject [s0, s1) */
  const char *p0, *p1;       /* the pattern, past a leading '^' */
  int anchor;                /* it had one: match at the start only */
  lua_Number most;           /* gsub: the most replacements per string */
  int depth;                 /* items left before "too complex" */
  int ncap;
  struct {
    const char *at;
    ptrdiff_t len;           /* or CAP_OPEN, CAP_POS */
  } cap[MAXCAP];
};

static int perr(struct pm *m, const char *what) {
  return lask__fail(m->L, "lask: bag.str.%s with pattern '%s': %s", m->who,
                    m->pat, what);
}

/* ASCII classes (the C locale's), with no table to share between threads. */
static int is_lower(unsigned c) { return c - 'a' < 26u; }
static int is_upper(unsigned c) { return c - 'A' < 26u; }
static int is_digit(unsigned c) { return c - '0' < 10u; }
static int is_alpha(unsigned c) { return is_lower(c) || is_upper(c); }
static int is_graph(unsigned c) { return c > 32 && c < 127; }

/* Whether byte c is in class %cl (a letter or any other byte). */
static int in_class(unsigned char c, unsigned char cl) {
  int r;
  switch (cl | 0x20) {
  case 'a': r = is_alpha(c); break;
  case 'c': r = c < 32 || c == 127; break;
  case 'd': r = is_digit(c); break;
  case 'g': r = is_graph(c); break;
  case 'l': r = is_lower(c); break;
  case 'p': r = is_graph(c) && !is_alpha(c) && !is_digit(c); break;
  case 's': r = c == ' ' || (c >= '\t' && c <= '\r'); break;
  case 'u': r = is_upper(c); break;
  case 'w': r = is_alpha(c) || is_digit(c); break;
  case 'x': r = is_digit(c) || (unsigned)((c | 0x20) - 'a') < 6u; break;
  case 'z': r = c == 0; break;
  default: return cl == c; /* %. %% %( ... */
  }
  if (is_upper(cl)) r = !r;
  return r;
}

/* The end of the single-character item at p ('.', %x, [set] or a byte). */
static const char *item_end(struct pm *m, const char *p) {
  char c = *p++;
  if (c == '%') {
    if (p >= m->p1) perr(m, "malformed pattern (ends with '%')");
    return p + 1;
  }
  if (c == '[') {
    if (p < m->p1 && *p == '^') p++;
    do { /* the first byte is in the set even if it is ']' */
      if (p >= m->p1) perr(m, "malformed pattern (missing ']')");
      c = *p++;
      if (c == '%' && p < m->p1) p++; /* %] is a ']' */
    } while (p >= m->p1 || *p != ']');
    return p + 1;
  }
  return p;
}

/* Whether c is in the set [p, last] (p at '[', last at its ']'). */
static int in_set(unsigned char c, const char *p, const char *last) {
  int yes = 1;
  p++;
  if (*p == '^') {
    yes = 0;
    p++;
  }
  for (; p < last; p++) {
    if (*p == '%' && p + 1 < last) {
      p++;
      if (in_class(c, (unsigned char)*p)) return yes;
    } else if (p + 2 < last && p[1] == '-') {
      if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2]) return yes;
      p += 2;
    } else if ((unsigned char)*p == c) {
      return yes;
    }
  }
  return !yes;
}

/* Whether the subject byte at s matches the item [p, ep). */
static int item_matches(struct pm *m, const char *s, const char *p,
                        const char *ep) {
  if (s >= m->s1) return 0;
  unsigned char c = (unsigned char)*s;
  switch (*p) {
  case '.': return 1;
  case '%': return in_class(c, (unsigned char)p[1]);
  case '[': return in_set(c, p, ep - 1);
  default: return (unsigned char)*p == c;
  }
}

static const char *match(struct pm *m, const char *s, const char *p);

/* %bxy at p (past "%b"): a balanced run from x to its y. */
static const char *balanced(struct pm *m, const char *s, const char *p) {
  if (p + 1 >= m->p1) perr(m, "malformed pattern (missing arguments to '%b')");
  if (s >= m->s1 || *s != p[0]) return NULL;
  char open = p[0], close = p[1];
  int level = 1;
  while (++s < m->s1) {
    if (*s == close) {
      if (--level == 0) return s + 1;
    } else if (*s == open) {
      level++;
    }
  }
  return NULL;
}

/* The longest run of item [p, ep) from s that lets the rest match. */
static const char *greedy(struct pm *m, const char *s, const char *p,
                          const char *ep) {
  ptrdiff_t n = 0;
  while (item_matches(m, s + n, p, ep)) n++;
  for (; n >= 0; n--) {
    const char *r = match(m, s + n, ep + 1);
    if (r) return r;
  }
  return NULL;
}

/* The shortest run of item [p, ep) from s that lets the rest match. */
static const char *lazy(struct pm *m, const char *s, const char *p,
                        const char *ep) {
  for (;;) {
    const char *r = match(m, s, ep + 1);
    if (r) return r;
    if (!item_matches(m, s, p, ep)) return NULL;
    s++;
  }
}

static const char *open_capture(struct pm *m, const char *s, const char *p,
                                ptrdiff_t what) {
  if (m->ncap >= MAXCAP) perr(m, "too many captures");
  m->cap[m->ncap].at = s;
  m->cap[m->ncap].len = what;
  m->ncap++;
  const char *r = match(m, s, p);
  if (r == NULL) m->ncap--; /* undo */
  return r;
}

static const char *close_capture(struct pm *m, const char *s, const char *p) {
  int k = m->ncap - 1;
  while (k >= 0 && m->cap[k].len != CAP_OPEN) k--;
  if (k < 0) perr(m, "invalid pattern capture");
  m->cap[k].len = s - m->cap[k].at;
  const char *r = match(m, s, p);
  if (r == NULL) m->cap[k].len = CAP_OPEN; /* undo */
  return r;
}

/* %1 .. %9 in a pattern: the text of a closed capture again. */
static const char *backref(struct pm *m, const char *s, int k) {
  k -= '1';
  if (k < 0 || k >= m->ncap || m->cap[k].len == CAP_OPEN)
    return perr(m, "invalid capture index"), NULL;
  size_t len = (size_t)m->cap[k].len;
  if ((size_t)(m->s1 - s) >= len && memcmp(m->cap[k].at, s, len) == 0)
    return s + len;
  return NULL;
}

/* The end of a match of pattern [p, p1) at s, or NULL. */
static const char *match(struct pm *m, const char *s, const char *p) {
  if (m->depth-- == 0) perr(m, "pattern too complex");
  const char *r = NULL;
  for (;;) {
    if (p >= m->p1) {
      r = s;
      break;
    }
    if (*p == '(') {
      r = p + 1 < m->p1 && p[1] == ')' ? open_capture(m, s, p + 2, CAP_POS)
                                       : open_capture(m, s, p + 1, CAP_OPEN);
      break;
    }
    if (*p == ')') {
      r = close_capture(m, s, p + 1);
      break;
    }
    if (*p == '$' && p + 1 == m->p1) {
      r = s == m->s1 ? s : NULL;
      break;
    }
    if (*p == '%' && p + 1 < m->p1) {
      char k = p[1];
      if (k == 'b') {
        s = balanced(m, s, p + 2);
        if (s == NULL) break;
        p += 4;
        continue;
      }
      if (k == 'f') {
        p += 2;
        if (p >= m->p1 || *p != '[')
          perr(m, "missing '[' after '%f' in pattern");
        const char *ep = item_end(m, p);
        unsigned char before = s == m->s0 ? 0 : (unsigned char)s[-1];
        unsigned char at = s < m->s1 ? (unsigned char)*s : 0;
        if (in_set(before, p, ep - 1) || !in_set(at, p, ep - 1)) break;
        p = ep;
        continue;
      }
      if (k >= '0' && k <= '9') {
        s = backref(m, s, k);
        if (s == NULL) break;
        p += 2;
        continue;
      }
    }
    /* a single-character item, maybe with a quantifier */
    const char *ep = item_end(m, p);
    char q = ep < m->p1 ? *ep : '\0';
    if (!item_matches(m, s, p, ep)) {
      if (q == '*' || q == '?' || q == '-') { /* may match nothing */
        p = ep + 1;
        continue;
      }
      break; /* r = NULL */
    }
    if (q == '?') {
      r = match(m, s + 1, ep + 1);
      if (r) break;
      p = ep + 1;
      continue;
    }
    if (q == '+') {
      r = greedy(m, s + 1, p, ep);
      break;
    }
    if (q == '*') {
      r = greedy(m, s, p, ep);
      break;
    }
    if (q == '-') {
      r = lazy(m, s, p, ep);
      break;
    }
    s++;
    p = ep;
  }
  m->depth++;
  return r;
}

static void pm_init(struct pm *m, lua_State *L, const char *who,
                    const char *pat, size_t plen, lua_Number most) {
  m->L = L;
  m->who = who;
  m->pat = pat;
#if LASK_FLAVOUR == LASK_FLAVOUR_LUAJIT
  plen = strlen(pat); /* Lua 5.1 ends a pattern at a NUL */
#endif
  m->p1 = pat + plen;
  m->anchor = plen > 0 && pat[0] == '^';
  m->p0 = pat + m->anchor;
  m->most = most;
}

/* A match of the pattern at s in the subject [s0, s1): its end, or NULL. */
static const char *match_at(struct pm *m, const char *s) {
  m->ncap = 0;
  m->depth = MAXDEPTH;
  return match(m, s, m->p0);
}

/* Finds the first match in [s, s + n) from its start (only there when
** anchored); returns its end and sets *start, or NULL. */
static const char *find(struct pm *m, const char *s, size_t n,
                        const char **start) {
  m->s0 = s;
  m->s1 = s + n;
  const char *at = s;
  do {
    const char *e = match_at(m, at);
    if (e != NULL) {
      *start = at;
      return e;
    }
  } while (at++ < m->s1 && !m->anchor);
  return NULL;
}

/* Pushes capture k of the match [s, e) (the whole match when the pattern
** has none and k is 0). */
static void push_capture(struct pm *m, int k, const char *s, const char *e) {
  if (k >= m->ncap) {
    if (k != 0) perr(m, "invalid capture index");
    lua_pushlstring(m->L, s, (size_t)(e - s));
    return;
  }
  ptrdiff_t len = m->cap[k].len;
  if (len == CAP_OPEN) perr(m, "unfinished capture");
  if (len == CAP_POS)
    lua_pushinteger(m->L, (lua_Integer)(m->cap[k].at - m->s0) + 1);
  else
    lua_pushlstring(m->L, m->cap[k].at, (size_t)len);
}

/* match of one string: pushes its first capture (or the whole match), or
** false where nothing matches (a list cannot hold nil). */
static void match_one(struct pm *m, const char *s, size_t n) {
  const char *start, *e = find(m, s, n, &start);
  if (e == NULL) {
    lua_pushboolean(m->L, 0);
    return;
  }
  for (int k = 1; k < m->ncap; k++) /* string.match returns them all */
    if (m->cap[k].len == CAP_OPEN) perr(m, "unfinished capture");
  push_capture(m, 0, start, e);
}

typedef void (*per_string)(struct pm *m, const char *s, size_t n);

/* The list of one(element) for the strings of the list at 1, the pattern
** at 2; the arguments end at 'top'. */
static int each_string(lua_State *L, const char *who, int top,
                       lua_Number most, per_string one) {
  size_t plen;
  const char *pat = lua_tolstring(L, 2, &plen);
  lua_settop(L, top);
  struct pm m;
  pm_init(&m, L, who, pat, plen, most);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    const char *s = lask__str_element(L, who, i, &len);
    one(&m, s, len);
    lua_rawseti(L, top + 1, i);
    lua_pop(L, 1); /* the element */
  }
  return 1;
}

/* str_match(list, pattern) -> per string string.match's first result,
** false where nothing matches. */
static int l_str_match(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkstring(L, 2);
  return each_string(L, "match", 2, 0, match_one);
}

/* Appends the replacement of the match [s, e) to b: repl (at index 3) is
** a string with %0-%9, a table indexed by the first capture or a
** function of the captures; false or nil keeps the match. */
static void replace(struct pm *m, luaL_Buffer *b, const char *s,
                    const char *e) {
  lua_State *L = m->L;
  int t = lua_type(L, 3);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    size_t rl;
    const char *r = lua_tolstring(L, 3, &rl), *r1 = r + rl;
    for (; r < r1; r++) {
      if (*r != '%') {
        luaL_addchar(b, *r);
        continue;
      }
      if (++r == r1) { /* a '%' that ends the string */
#if LASK_FLAVOUR == LASK_FLAVOUR_LUAJIT
        luaL_addchar(b, '\0'); /* as Lua 5.1 reads the terminator */
        break;
#else
        perr(m, "invalid use of '%' in replacement string");
#endif
      }
      if (*r >= '0' && *r <= '9') {
        if (*r == '0') lua_pushlstring(L, s, (size_t)(e - s));
        else push_capture(m, *r - '1', s, e);
        luaL_addvalue(b); /* a position becomes its digits */
      } else if (*r == '%') {
        luaL_addchar(b, '%');
      } else {
#if LASK_FLAVOUR == LASK_FLAVOUR_LUAJIT
        luaL_addchar(b, *r); /* Lua 5.1: the character itself */
#else
        perr(m, "invalid use of '%' in replacement string");
#endif
      }
    }
    return;
  }
  if (t == LUA_TTABLE) {
    push_capture(m, 0, s, e);
    lua_gettable(L, 3);
  } else { /* a function (checked by the caller) */
    lua_pushvalue(L, 3);
    int k = m->ncap == 0 ? 1 : m->ncap;
    luaL_checkstack(L, k, "too many captures");
    for (int i = 0; i < k; i++) push_capture(m, i, s, e);
    if (lua_pcall(L, k, 1, 0) != LUA_OK) /* name the helper */
      lask__fail(L, "lask: bag.str.gsub with pattern '%s': %s", m->pat,
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                : luaL_typename(L, -1));
  }
  if (!lua_toboolean(L, -1)) { /* keep the match as it is */
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
  } else if (lua_type(L, -1) == LUA_TSTRING ||
             lua_type(L, -1) == LUA_TNUMBER) {
    luaL_addvalue(b);
  } else {
    lask__fail(L, "lask: bag.str.gsub with pattern '%s': invalid "
               "replacement value (a %s)", m->pat, luaL_typename(L, -1));
  }
}

/* gsub of one string, at most m->most replacements: pushes the result. */
static void gsub_one(struct pm *m, const char *s, size_t n) {
  m->s0 = s;
  m->s1 = s + n;
  luaL_Buffer b;
  luaL_buffinit(m->L, &b);
  const char *last = NULL; /* where the previous match ended (5.4) */
  for (lua_Number done = 0; done < m->most;) {
    const char *e = match_at(m, s);
#if LASK_FLAVOUR == LASK_FLAVOUR_LUAJIT
    (void)last;
    if (e != NULL) {
      replace(m, &b, s, e);
      done++;
    }
    if (e != NULL && e > s) s = e;
    else if (s < m->s1) luaL_addchar(&b, *s++);
    else break;
#else
    if (e != NULL && e != last) {
      replace(m, &b, s, e);
      done++;
      s = last = e;
    } else if (s < m->s1) {
      luaL_addchar(&b, *s++);
    } else {
      break;
    }
#endif
    if (m->anchor) break;
  }
  luaL_addlstring(&b, s, (size_t)(m->s1 - s));
  luaL_pushresult(&b);
}

/* str_gsub(list, pattern, repl [, n]) -> per string string.gsub's first
** result (repl: a string, a number, a table or a function; at most n
** replacements in each). */
static int l_str_gsub(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkstring(L, 2);
  int t = lua_type(L, 3);
  luaL_argcheck(L, t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TTABLE ||
                t == LUA_TFUNCTION, 3, "a string, table or function");
  return each_string(L, "gsub", 3, luaL_optnumber(L, 4, HUGE_VAL), gsub_one);
}

static const luaL_Reg pattern_funcs[] = {
  {"str_match", l_str_match},
  {"str_gsub", l_str_gsub},
  {NULL, NULL}
};

void lask__pattern_register(lua_State *L) {
  luaL_setfuncs(L, pattern_funcs, 0);
}
