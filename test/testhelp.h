/* SPDX-License-Identifier: MIT */
/*
** testhelp.h - a tiny test harness for the C tests, after sds's testhelp.h.
**
**   CHECK(cond)                  count a pass, or a failure printed as
**                                "FAILED file:line: cond"
**   CHECK_MSG(cond, fmt, ...)    the same, and the printf-style message
**   test_cond(descr, cond)       sds's spelling: descr names the check
**   test_report()                print "N passed, N failed" as the last
**                                line; returns the exit status (1 if any
**                                check failed, else 0)
**
** Each macro evaluates cond exactly once (it may have side effects, e.g.
** CHECK(stateio_update(w, p, n) == STATEIO_OK)) and is an expression whose
** value is 1 when the check passed, 0 when it failed, so a test can write
** `if( !CHECK(p != NULL) ) return;`.
**
** Passing checks print nothing unless TESTHELP_VERBOSE is set in the
** environment (then they print like failures, with "ok"); failures always print, on stdout, so that they interleave
** with the test's own output. The counters live in this header (one test
** program, one set of counters); a forked child's checks are not seen by
** the parent, so a child must report its results some other way.
*/
#ifndef STATEIO_TESTHELP_H
#define STATEIO_TESTHELP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int test_passed_count;
static int test_failed_count;

__attribute__((unused))
static int test_verbose_(void){
  static int v = -1;
  if( v < 0 ) v = getenv("TESTHELP_VERBOSE") != NULL;
  return v;
}

__attribute__((unused))
static int test_check_(int ok, const char *cond, const char *file, int line){
  if( ok ){
    test_passed_count++;
    if( test_verbose_() ) printf("ok %s:%d: %s\n", file, line, cond);
  }else{
    test_failed_count++;
    printf("FAILED %s:%d: %s\n", file, line, cond);
    fflush(stdout);
  }
  return ok;
}

__attribute__((unused, format(printf, 5, 6)))
static int test_check_msg_(int ok, const char *cond, const char *file, int line,
                           const char *fmt, ...){
  if( ok ) test_passed_count++;
  else test_failed_count++;
  if( !ok || test_verbose_() ){
    va_list ap;
    printf("%s %s:%d: %s: ", ok ? "ok" : "FAILED", file, line, cond);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
  }
  return ok;
}

#define CHECK(cond) test_check_((cond) ? 1 : 0, #cond, __FILE__, __LINE__)
#define CHECK_MSG(cond, ...) \
  test_check_msg_((cond) ? 1 : 0, #cond, __FILE__, __LINE__, __VA_ARGS__)
#define test_cond(descr, cond) \
  test_check_msg_((cond) ? 1 : 0, #cond, __FILE__, __LINE__, "%s", (descr))

/* Number of failures so far (a test may use it to skip dependent checks). */
#define test_failures() (test_failed_count)

__attribute__((unused))
static int test_report(void){
  printf("%d passed, %d failed\n", test_passed_count, test_failed_count);
  fflush(stdout);
  return test_failed_count ? 1 : 0;
}


/* UNDER_ASAN: 1 when built with AddressSanitizer (tests use smaller sizes). */
#if defined(__SANITIZE_ADDRESS__)
# define UNDER_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define UNDER_ASAN 1
# endif
#endif
#ifndef UNDER_ASAN
# define UNDER_ASAN 0
#endif

/* A growing string: sb_printf appends, sb_str reads, sb_free frees. */
typedef struct sbuf { char *s; size_t len, cap; } sbuf;

__attribute__((unused, format(printf, 2, 3)))
static void sb_printf(sbuf *b, const char *fmt, ...){
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if( n < 0 ) return;
  if( b->len + (size_t)n + 1 > b->cap ){
    b->cap = (b->len + (size_t)n + 1) * 2;
    b->s = realloc(b->s, b->cap);
    if( !b->s ){ perror("realloc"); exit(2); }
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

__attribute__((unused))
static const char *sb_str(sbuf *b){ return b->s ? b->s : ""; }
__attribute__((unused))
static void sb_free(sbuf *b){ free(b->s); b->s = NULL; b->len = b->cap = 0; }


/*
** test_detail(&counter, fmt, ...): count one failure of a property that
** many cases share, and print the first 25 such details of the program
** ("  detail: ..."). The property is then checked once with CHECK_MSG on
** its counter, so that a bug shows as a handful of lines, not thousands.
*/
static int test_details_shown;
__attribute__((unused, format(printf, 2, 3)))
static void test_detail(int *counter, const char *fmt, ...){
  (*counter)++;
  if( ++test_details_shown <= 25 ){
    va_list ap;
    va_start(ap, fmt);
    printf("  detail: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
  }else if( test_details_shown == 26 ){
    printf("  detail: (further details not shown)\n");
  }
}

#endif /* STATEIO_TESTHELP_H */
