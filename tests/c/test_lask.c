/*
** test_lask.c: tests of runtime/lask.c: the version and the text of every
** error code.
*/
#include <string.h>

#include "lask.h"
#include "test.h"

TEST(lask_strerror_names_every_code) {
  static const int codes[] = {LASK_OK, LASK_ENOMEM, LASK_ETRUNC,
                              LASK_ECORRUPT, LASK_EVERSION, LASK_EFLAVOUR,
                              LASK_ECHECKSUM, LASK_ETOOBIG, LASK_EINVAL,
                              LASK_ESYS};
  const size_t n = sizeof codes / sizeof codes[0];
  const char *unknown = lask_strerror(-1000);
  ASSERT_TRUE(unknown != NULL && unknown[0] != '\0');
  ASSERT_TRUE(lask_strerror(1)[0] != '\0');
  for (size_t i = 0; i < n; i++) {
    const char *s = lask_strerror(codes[i]);
    ASSERT_TRUE(s != NULL && s[0] != '\0');
    ASSERT_TRUE(strcmp(s, unknown) != 0);
    for (size_t j = 0; j < i; j++) {
      ASSERT_TRUE(strcmp(s, lask_strerror(codes[j])) != 0);
    }
  }
}

TEST(lask_version_string) {
  ASSERT_STREQ(LASK_VERSION_STRING, lask_version());
}
