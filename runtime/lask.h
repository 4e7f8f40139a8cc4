/*
** lask.h: the public C API of the lask runtime, for hosts that embed lask.
** This header includes no Lua header: a host that wants the Lua module
** includes lua.h itself and calls luaopen_lask_core (declared below with a
** forward declaration of lua_State).
**
** Conventions: functions return 0 on success or a negative LASK_E* code;
** results come back through out-parameters.  Every function says which
** thread may call it and who owns the memory it hands out.
*/
#ifndef LASK_H
#define LASK_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define LASK_API __attribute__((visibility("default")))
#define LASK_INTERNAL __attribute__((visibility("hidden")))
#else
#define LASK_API
#define LASK_INTERNAL
#endif

#define LASK_VERSION_MAJOR 0
#define LASK_VERSION_MINOR 1
#define LASK_VERSION_PATCH 0
#define LASK_VERSION_STRING "0.1.0"

/* Error codes: 0 is success, every failure is negative. */
#define LASK_OK 0
#define LASK_ENOMEM (-1)     /* out of memory */
#define LASK_ETRUNC (-2)     /* input ends in the middle of an item */
#define LASK_ECORRUPT (-3)   /* input is not a valid encoding */
#define LASK_EVERSION (-4)   /* made by another format version */
#define LASK_EFLAVOUR (-5)   /* made by another interpreter (bytecode) */
#define LASK_ECHECKSUM (-6)  /* checksum mismatch: damaged bytes */
#define LASK_ETOOBIG (-7)    /* a length or count beyond the format's range */
#define LASK_EINVAL (-8)     /* bad argument */
#define LASK_ESYS (-9)       /* an operating system call failed */

/* Returns a static string describing error code 'rc'. Thread: any. */
LASK_API const char *lask_strerror(int rc);

/* Returns LASK_VERSION_STRING of the library actually linked. Thread: any. */
LASK_API const char *lask_version(void);

/* 64-bit hash of 'n' bytes at 'p' with 'seed'; not cryptographic, used as
** the checksum of encoded values and for pure task keys. Thread: any. */
LASK_API uint64_t lask_hash64(const void *p, size_t n, uint64_t seed);

/* Checks that 'n' bytes at 'p' are a complete, undamaged lask encoding
** (magic, format version, checksum) without decoding it. Returns 0 or a
** LASK_E* code; on success *flavour (if not NULL) receives the interpreter
** flavour that made it (LASK_FLAVOUR_*). Thread: any. */
#define LASK_FLAVOUR_LUA54 1
#define LASK_FLAVOUR_LUAJIT 2
LASK_API int lask_codec_check(const void *p, size_t n, int *flavour);

/* The Lua module. A host that has its own lua_State calls
**   luaL_requiref(L, "lask.core", luaopen_lask_core, 0);
** or lask_openlibs(L), which also makes require "lask" and the other
** lask.* Lua modules available from the copies built into the library. */
struct lua_State;
LASK_API int luaopen_lask_core(struct lua_State *L);
LASK_API void lask_openlibs(struct lua_State *L);

#endif
