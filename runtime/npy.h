/*
** npy.h: the header of NumPy's .npy files, and the dtype codes of lask
** arrays (internal).
**
** An .npy file (NEP 1, numpy.lib.format) is:
**
**   offset 0  "\x93NUMPY"           magic
**          6  major, minor          format version: 1.0, 2.0 or 3.0
**          8  header length         u16 LE (1.0) or u32 LE (2.0, 3.0)
**     10/12  header                 a Python dict literal in ASCII, e.g.
**                                   {'descr': '<f8', 'fortran_order': False,
**                                    'shape': (3, 4), }
**                                   padded with spaces and ended by '\n'
**                                   so that the data starts at a multiple
**                                   of 64 (writers align, readers need not)
**          data_offset              the items, in C or Fortran order
**
** The parser reads only the six simple dtypes below and no Python syntax
** beyond what writers of such files produce: strings without escapes,
** True/False, tuples of non-negative decimal integers (a Python 2 'L'
** suffix is allowed). No allocation, no globals, no Lua: any thread.
*/
#ifndef LASK_NPY_H
#define LASK_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "lask.h"

/* dtype codes shared with the array code (nd.h): keep these values. */
enum {
  LASK_DT_F64 = 0,
  LASK_DT_F32 = 1,
  LASK_DT_I64 = 2,
  LASK_DT_I32 = 3,
  LASK_DT_U8 = 4,
  LASK_DT_BOOL = 5,
  LASK_DT_COUNT = 6
};

#define LASK_ND_MAXDIM 32

/* Room that is always enough for lask__npy_header, for any dtype and any
** shape of at most LASK_ND_MAXDIM dimensions (a header is never longer than 832 bytes). */
#define LASK_NPY_HEADER_MAX 1024

/* The largest header length (after the preamble) that the parser accepts;
** a longer one is LASK_ECORRUPT before the caller is asked to read it. */
#define LASK_NPY_HEADER_LIMIT 65536u

struct lask_npy_info {
  int dtype;   /* LASK_DT_* */
  int swap;    /* 1: data is in the other byte order than this machine's,
               ** swap each item on read (always 0 for 1-byte items) */
  int fortran; /* 1: fortran_order True */
  int ndim;    /* 0..LASK_ND_MAXDIM */
  int64_t shape[LASK_ND_MAXDIM];
  uint64_t data_offset; /* bytes from the start of the file to the data */
};

/* Parses an .npy header from the first 'n' bytes of a file. Returns 0, or:
**   LASK_ETRUNC    'n' is too short. info->data_offset then holds a size
**                  to read before calling again: the whole header once the
**                  preamble (10 bytes for 1.0, 12 for 2.0/3.0) is there,
**                  else the longest preamble (12);
**   LASK_ECORRUPT  not a well-formed .npy header (bad magic, syntax, keys,
**                  a negative or too large dimension, a data size that
**                  overflows: itemsize * prod(shape), zero dimensions
**                  counted as 1, must fit in int64_t, and data_offset plus
**                  the data size in uint64_t);
**   LASK_EINVAL    well-formed but unsupported: format version, dtype
**                  other than the six, more than LASK_ND_MAXDIM dimensions.
** On an error other than LASK_ETRUNC, *why receives a static English
** message (why may be NULL). Reads nothing at or beyond p + n. On failure
** the other fields of *info are unspecified. */
LASK_INTERNAL int lask__npy_parse(const uint8_t *p, size_t n,
                                  struct lask_npy_info *info,
                                  const char **why);

/* Writes into out[0..cap) the header (magic, version, header length, dict,
** spaces, '\n') of a C-order little-endian array of 'dtype' and 'shape',
** byte for byte as NumPy (>= 1.24) writes it, including the spare spaces it
** leaves for growing the first dimension. Version 1.0 unless the header
** needs 2.0. The length is a multiple of 64. Returns that length, or
** LASK_EINVAL (bad dtype or ndim, a negative dimension, a data size that
** overflows as above) or LASK_ETOOBIG (cap too small; LASK_NPY_HEADER_MAX
** is always enough). The data written after it must be little-endian. */
LASK_INTERNAL int64_t lask__npy_header(int dtype, int ndim,
                                       const int64_t *shape, uint8_t *out,
                                       size_t cap);

/* Item size in bytes of a dtype, 0 for an invalid one. */
LASK_INTERNAL int lask__dtype_size(int dtype);

/* Name ("float64", "float32", "int64", "int32", "uint8", "bool") or NULL. */
LASK_INTERNAL const char *lask__dtype_name(int dtype);

#endif
