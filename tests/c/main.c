/*
** main.c: the runner of the C unit tests.
**
** Usage: test_c [filter]
** Runs every test listed in test_list.h (only those whose name contains
** 'filter', when given), one at a time, in list order. Prints one line per
** failed assertion and ends with exactly one line "N passed, N failed".
** Exits with 1 if a test failed or if no test ran, else 0.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "test.h"

/* Declarations of every test function, from the list. */
#define X(name) void test_##name(void);
#include "test_list.h"
#undef X

struct test {
  const char *name;
  void (*fn)(void);
};

static const struct test tests[] = {
#define X(name) {#name, test_##name},
#include "test_list.h"
#undef X
};

int test__failed;
/* The name of the running test, for failure lines. */
static const char *current;

void test__fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  printf("FAIL %s: %s:%d: ", current, file, line);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
  test__failed = 1;
}

void test__fmt_int(char *buf, long long v) {
  snprintf(buf, TEST__VALUE_MAX, "%lld", v);
}

void test__fmt_uint(char *buf, unsigned long long v) {
  snprintf(buf, TEST__VALUE_MAX, "%llu (0x%llx)", v, v);
}

/* %a shows every bit, so 0.0 and -0.0, or two NaNs, print differently. */
void test__fmt_float(char *buf, double v) {
  snprintf(buf, TEST__VALUE_MAX, "%.17g (%a)", v, v);
}

void test__fmt_ptr(char *buf, const void *p) {
  snprintf(buf, TEST__VALUE_MAX, "%p", p);
}

/* Writes up to 8 bytes of 'p' from offset 'at' (at most 'n') as hex. */
static void hex_window(char *buf, size_t size, const unsigned char *p,
                       size_t at, size_t n) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = at; i < n && i < at + 8 && used + 4 < size; i++) {
    const char *fmt = i == at ? "%02x" : " %02x";
    used += (size_t)snprintf(buf + used, size - used, fmt, p[i]);
  }
}

void test__fail_mem(const char *file, int line, const char *expr,
                    const void *a, const void *b, size_t n) {
  const unsigned char *pa = a, *pb = b;
  size_t at = 0;
  while (at < n && pa[at] == pb[at]) at++;
  char ha[40], hb[40];
  hex_window(ha, sizeof ha, pa, at, n);
  hex_window(hb, sizeof hb, pb, at, n);
  test__fail(file, line, "%s: differ at byte %zu of %zu: [%s] != [%s]", expr,
             at, n, ha, hb);
}

/* Writes 's' quoted into 'buf', with control bytes escaped, so that a
** failure stays on one line; long strings are cut with "...". */
static void quote(char *buf, size_t size, const char *s) {
  if (s == NULL) {
    snprintf(buf, size, "NULL");
    return;
  }
  size_t used = 0;
  buf[used++] = '"';
  for (; *s != '\0' && used + 8 < size; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      used += (size_t)snprintf(buf + used, size - used, "\\x%02x", c);
    } else {
      buf[used++] = (char)c;
    }
  }
  snprintf(buf + used, size - used, *s != '\0' ? "\"..." : "\"");
}

void test__fail_str(const char *file, int line, const char *expr,
                    const char *a, const char *b) {
  char qa[200], qb[200];
  quote(qa, sizeof qa, a);
  quote(qb, sizeof qb, b);
  test__fail(file, line, "%s: %s != %s", expr, qa, qb);
}

/* Runs the tests whose names contain 'filter' (all when NULL); adds to
** the pass and failure counts. */
static void run(const char *filter, int *passed, int *failed) {
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    if (filter != NULL && strstr(tests[i].name, filter) == NULL) continue;
    current = tests[i].name;
    test__failed = 0;
    tests[i].fn();
    if (test__failed) {
      (*failed)++;
    } else {
      (*passed)++;
    }
  }
}

int main(int argc, char **argv) {
  int passed = 0, failed = 0;
  run(argc > 1 ? argv[1] : NULL, &passed, &failed);
  printf("%d passed, %d failed\n", passed, failed);
  return (failed > 0 || passed + failed == 0) ? EXIT_FAILURE : EXIT_SUCCESS;
}
