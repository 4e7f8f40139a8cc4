/*
** lask.c: library-wide facts of the runtime: its version and the text of
** its error codes.
*/
#include "lask.h"

const char *lask_strerror(int rc) {
  switch (rc) {
  case LASK_OK: return "success";
  case LASK_ENOMEM: return "out of memory";
  case LASK_ETRUNC: return "input is truncated";
  case LASK_ECORRUPT: return "input is not a valid lask encoding";
  case LASK_EVERSION: return "made by an unsupported format version";
  case LASK_EFLAVOUR: return "made by another Lua interpreter";
  case LASK_ECHECKSUM: return "checksum mismatch (damaged bytes)";
  case LASK_ETOOBIG: return "size beyond the format's limits";
  case LASK_EINVAL: return "invalid argument";
  case LASK_ESYS: return "system call failed";
  default: return "unknown error";
  }
}

const char *lask_version(void) { return LASK_VERSION_STRING; }
