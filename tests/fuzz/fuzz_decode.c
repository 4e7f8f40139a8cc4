/*
** fuzz_decode.c: a libFuzzer target for the value decoder
** (lask__value_decode in bindings/value.c, over runtime/codec.c).
**
** The first input byte picks a mode (its value modulo 3), the rest is the
** payload:
**   0  the payload as it is: the checksum stops most mutations, so this
**      mostly tests the header checks; the seeds are complete encodings.
**   1  the payload as a BODY behind a freshly made, valid header (flags 0:
**      data only), decoded with LASK_DEC_NOCODE. This reaches the body
**      parser with every mutation.
**   2  as 1, but the header claims bytecode (LASK__CF_CODE) and the decoder
**      is still told LASK_DEC_NOCODE: it must refuse every function item.
** No mode loads bytecode: every decode is told LASK_DEC_NOCODE. Lua does
** not verify bytecode, and libFuzzer's comparison tracing can forge the
** checksum of a mode 0 input, so loading mutated bytecode would find limits
** of Lua (a crash in undump or the VM), not bugs in lask, and would make CI
** fail by chance. That matches the trust model of ARCHITECTURE.md: bytecode
** is accepted only from a peer that passed the handshake. The state's
** allocator still refuses to go past MEM_LIMIT, so a forged size is an
** ordinary Lua memory error.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "state.h"
#include "value.h"

/* A full garbage collection every this many inputs bounds memory. */
#define GC_EVERY 4096
/* Most bytes the Lua state may hold; past it allocations fail. */
#define MEM_LIMIT ((size_t)256 << 20)
/* The metatable name the seeds use (see seeds.lua). */
#define POINT_MT "fuzz.point"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the protected functions below work on. */
struct input {
  const uint8_t *p;
  size_t n;
  int opts; /* LASK_DEC_* */
};

static lua_State *fuzz_L;       /* made on the first input, never closed */
static struct lask_wbuf frame;  /* header + body for modes 1 and 2 */
static struct lask_wbuf again;  /* the re-encoding of a decoded value */
static unsigned long nruns;     /* inputs run so far */
static size_t mem_used;         /* bytes the Lua state holds */

/* The Lua state's allocator (lua_Alloc): realloc, failing any growth that
** would take the state past MEM_LIMIT. Shrinking never fails, as Lua
** requires. */
static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  size_t old = ptr != NULL ? osize : 0; /* for new blocks osize is a type */
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    mem_used -= old;
    return NULL;
  }
  if (nsize > old && nsize - old > MEM_LIMIT - mem_used) return NULL;
  void *p = realloc(ptr, nsize);
  if (p != NULL) mem_used = mem_used - old + nsize;
  return p;
}

/* lua_CFunction: decodes the input at light userdata 1; returns the value. */
static int decode(lua_State *L) {
  const struct input *in = lua_touserdata(L, 1);
  lask__value_decode(L, in->p, in->n, in->opts);
  return 1;
}

/* lua_CFunction: encodes value 2 into the writer at light userdata 1. */
static int encode(lua_State *L) {
  struct lask_wbuf *w = lua_touserdata(L, 1);
  lask__value_encode(L, 2, w);
  return 0;
}

/* Registers the seeds' metatable name, so tables carrying it decode. */
static void register_point(lua_State *L) {
  lua_pushcfunction(L, lask__value_register_metatable);
  lua_pushstring(L, POINT_MT);
  lua_newtable(L);
  lua_call(L, 2, 0);
}

/* The shared state: standard libraries and lask, with empty search paths so
** that a module reference in fuzz input can reach only the modules already
** loaded or preloaded, never an arbitrary module installed on the host. */
static lua_State *get_state(void) {
  if (fuzz_L != NULL) return fuzz_L;
  lua_State *L = lua_newstate(limited_alloc, NULL);
  if (L == NULL) abort();
  luaL_openlibs(L);
  lask_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  register_point(L);
  fuzz_L = L;
  return L;
}

/* Decodes 'in' in protected mode; returns 1 and leaves the value on top
** when it decoded, 0 (stack unchanged) when the decoder raised. */
static int try_decode(lua_State *L, struct input *in) {
  lua_pushcfunction(L, decode);
  lua_pushlightuserdata(L, in);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) return 1;
  lua_pop(L, 1);
  return 0;
}

/* The oracle: encodes the value on top (popped) and, when the encoder
** accepts it, decodes the result with 'opts'; aborts when that fails. */
static void check_reencode(lua_State *L, int opts) {
  lua_pushcfunction(L, encode);
  lua_pushlightuserdata(L, &again);
  lua_pushvalue(L, -3);
  int ok = lua_pcall(L, 2, 0, 0) == LUA_OK;
  if (!ok) {
    lua_pop(L, 2);
    return;
  }
  struct input in = {again.p, again.len, opts};
  if (!try_decode(L, &in)) {
    fprintf(stderr, "fuzz_decode: the decoder refused the encoder's "
            "output (%zu bytes)\n", again.len);
    abort();
  }
  lua_pop(L, 2);
}

/* Modes 1 and 2: frames 'body' with a valid header carrying 'flags'.
** Returns 0, or a LASK_E* code when out of memory. */
static int make_frame(const uint8_t *body, size_t n, int flags) {
  int rc = lask__codec_begin(&frame, LASK_FLAVOUR);
  if (rc == 0) rc = lask__put_bytes(&frame, body, n);
  if (rc == 0) lask__codec_seal(&frame, flags);
  return rc;
}

/* Decodes one input according to its mode byte; see the file header. */
static void run_one(lua_State *L, const uint8_t *data, size_t size) {
  struct input in = {data + 1, size - 1, LASK_DEC_NOCODE};
  int mode = data[0] % 3;
  if (mode != 0) {
    int flags = mode == 2 ? LASK__CF_CODE : 0;
    if (make_frame(data + 1, size - 1, flags) != 0) return;
    in.p = frame.p;
    in.n = frame.len;
  }
  if (try_decode(L, &in)) check_reencode(L, in.opts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  lua_State *L = get_state();
  run_one(L, data, size);
  lua_settop(L, 0);
  if (++nruns % GC_EVERY == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
