/*
** test.h: a tiny unit-test framework for the C runtime.
**
** A test is written as
**   TEST(codec_rejects_truncated_varint) { ... ASSERT_EQ(x, y); ... }
** in a tests/c/test_<module>.c file, and listed as
**   X(codec_rejects_truncated_varint)
** in tests/c/test_list.h, from which main.c builds its table of tests.
**
** A failed ASSERT_* prints one line "FAIL <test>: <file>:<line>: <what>"
** with both values, marks the running test failed and returns from the
** function it is in; the run goes on with the next test. So an ASSERT_* may
** only appear in a TEST body or in a helper that returns void. The values
** given to ASSERT_EQ are evaluated once each and compared with ==: give both
** the same signedness (write 127u or (uint64_t)127), as -Wsign-compare asks.
**
** Thread: tests run one at a time on the main thread; the assertion macros
** must not be used from other threads.
*/
#ifndef LASK_TEST_H
#define LASK_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Defines test 'name' as the function test_<name>, declared first so that
** -Wmissing-prototypes accepts the definition. */
#define TEST(name) \
  void test_##name(void); \
  void test_##name(void)

/* Set by test__fail when the running test has failed; read by main.c. */
extern int test__failed;

/* Prints "FAIL <test>: <file>:<line>: <printf-style message>" on one line
** and marks the running test failed. */
void test__fail(const char *file, int line, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

/* Writers of one value as text into 'buf' (at least TEST__VALUE_MAX bytes),
** for failure messages; ASSERT_EQ picks one by the value's type. */
#define TEST__VALUE_MAX 64
void test__fmt_int(char *buf, long long v);
void test__fmt_uint(char *buf, unsigned long long v);
void test__fmt_float(char *buf, double v);
void test__fmt_ptr(char *buf, const void *p);

#define TEST__FMT(buf, v) \
  _Generic((v), \
    float: test__fmt_float, \
    double: test__fmt_float, \
    long double: test__fmt_float, \
    unsigned char: test__fmt_uint, \
    unsigned short: test__fmt_uint, \
    unsigned int: test__fmt_uint, \
    unsigned long: test__fmt_uint, \
    unsigned long long: test__fmt_uint, \
    void *: test__fmt_ptr, \
    const void *: test__fmt_ptr, \
    const uint8_t *: test__fmt_ptr, \
    uint8_t *: test__fmt_ptr, \
    const char *: test__fmt_ptr, \
    char *: test__fmt_ptr, \
    default: test__fmt_int)(buf, v)

/* Reports the first difference of two byte ranges; see ASSERT_MEMEQ. */
void test__fail_mem(const char *file, int line, const char *expr,
                    const void *a, const void *b, size_t n);
/* Reports two different strings (either may be NULL); see ASSERT_STREQ. */
void test__fail_str(const char *file, int line, const char *expr,
                    const char *a, const char *b);

/* Fails unless a == b; prints both expressions and both values. */
#define ASSERT_EQ(a, b) \
  do { \
    __typeof__(a) test__a = (a); \
    __typeof__(b) test__b = (b); \
    if (!(test__a == test__b)) { \
      char test__sa[TEST__VALUE_MAX], test__sb[TEST__VALUE_MAX]; \
      TEST__FMT(test__sa, test__a); \
      TEST__FMT(test__sb, test__b); \
      test__fail(__FILE__, __LINE__, "ASSERT_EQ(%s, %s): %s != %s", #a, #b, \
                 test__sa, test__sb); \
      return; \
    } \
  } while (0)

/* Fails unless x is true (nonzero). */
#define ASSERT_TRUE(x) \
  do { \
    if (!(x)) { \
      test__fail(__FILE__, __LINE__, "ASSERT_TRUE(%s): false", #x); \
      return; \
    } \
  } while (0)

/* Fails unless the n bytes at a and at b are equal; prints the offset of
** the first difference and the bytes around it on both sides. */
#define ASSERT_MEMEQ(a, b, n) \
  do { \
    const void *test__pa = (a), *test__pb = (b); \
    size_t test__n = (n); \
    if (memcmp(test__pa, test__pb, test__n) != 0) { \
      test__fail_mem(__FILE__, __LINE__, "ASSERT_MEMEQ(" #a ", " #b ", " #n \
                     ")", test__pa, test__pb, test__n); \
      return; \
    } \
  } while (0)

/* Fails unless the strings a and b are equal (two NULLs are equal). */
#define ASSERT_STREQ(a, b) \
  do { \
    const char *test__sa = (a), *test__sb = (b); \
    if (test__sa == NULL || test__sb == NULL ? test__sa != test__sb \
                                             : strcmp(test__sa, test__sb)) { \
      test__fail_str(__FILE__, __LINE__, "ASSERT_STREQ(" #a ", " #b ")", \
                     test__sa, test__sb); \
      return; \
    } \
  } while (0)

#endif
