/* SPDX-License-Identifier: MIT */
/*
** kill_test.c - SIGKILL a writer in the middle of its transactions, over
** and over: a transaction is all or nothing.
**
** Each iteration forks a child that commits transactions to one log:
** transaction t has 2..50 entries (the first one a snapshot now and then),
** most of them small, every 6th or so up to 4 MiB in all; every 4th run
** with STATEIO_SYNC, every 4th run (another one) in bulk batches
** (stateio_writer_begin_bulk: written out in chunks as they grow), and
** every 4th (a third one) and every 8th with STATEIO_SYNC in ordinary
** batches that spill past 64 KiB (stateio_writer_set_spill). Entry k
** of transaction t carries (t, k, n) and bytes that depend on them, so
** order, gaps, duplicates and damage all show. The parent kills the child
** with SIGKILL after a random delay (often while it writes), then:
**  - peeks at the commit file (doc/COMMIT.md) before anything recovers,
**    to count the kills that left a commit in flight with its bytes partly
**    or wholly in the log;
**  - opens the log as a reader does (which settles a dead writer's commit)
**    and reads every entry: whole transactions only, consecutive, ending
**    at the last one the child reported committed, or the one after it
**    (the one in flight, whole);
**  - restores, and checks the current epoch is the last snapshot's;
**  - lets a new writer append the next transaction (the log is appendable).
**
** Environment: STATEIO_KILL_ITERS (default 1000; 200 under ASan),
** STATEIO_KILL_SEED.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stateio.h"
#include "logio.h"
#include "testhelp.h"

#define RESET_SIZE (16u << 20)    /* start a new log beyond this size */
#define MAXTXN ((size_t)4 << 20)  /* the largest transaction's data */

static char tmpdir[256], path[300], cpath[320];

/* ------------------------------------------------------------ the transactions */

static uint64_t mix(uint64_t x){
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static uint32_t txn_n(uint64_t t){ return 2 + (uint32_t)(mix(t) % 49); }
static int txn_big(uint64_t t){ return mix(t ^ 0xb16) % 6 == 0; }
static int txn_snap(uint64_t t){ return mix(t ^ 0x5eed) % 5 == 0; }

/* Size of entry k of transaction t: 16 .. (big: 4 MiB / n, else 2000) bytes. */
static size_t ent_len(uint64_t t, uint32_t k){
  size_t cap = txn_big(t) ? MAXTXN / txn_n(t) : 2000;
  return 16 + (size_t)(mix(t * 131 + k) % (cap - 15));
}

static void ent_fill(unsigned char *p, uint64_t t, uint32_t k){
  size_t len = ent_len(t, k);
  uint32_t n = txn_n(t);
  memcpy(p, &t, 8);
  memcpy(p + 8, &k, 4);
  memcpy(p + 12, &n, 4);
  for(size_t j = 16; j < len; j++) p[j] = (unsigned char)(t * 31 + k * 7 + j);
}

/* Whether p[0..len) is an entry of ours; its (t, k). */
static int ent_is(const unsigned char *p, size_t len, uint64_t *t, uint32_t *k){
  if( len < 16 ) return 0;
  uint32_t n;
  memcpy(t, p, 8);
  memcpy(k, p + 8, 4);
  memcpy(&n, p + 12, 4);
  if( n != txn_n(*t) || *k >= n || len != ent_len(*t, *k) ) return 0;
  for(size_t j = 16; j < len; j++) if( p[j] != (unsigned char)(*t * 31 + *k * 7 + j) ) return 0;
  return 1;
}

/* Append transaction t to w and commit it. */
static int put_txn(stateio_writer *w, uint64_t t, int bulk, unsigned char *buf){
  int rc = bulk ? stateio_writer_begin_bulk(w) : stateio_writer_begin(w);
  uint32_t n = txn_n(t);
  for(uint32_t k = 0; rc == STATEIO_OK && k < n; k++){
    ent_fill(buf, t, k);
    size_t len = ent_len(t, k);
    rc = (k == 0 && txn_snap(t)) ? stateio_snapshot(w, buf, len) : stateio_update(w, buf, len);
  }
  if( rc == STATEIO_OK ) rc = stateio_writer_commit(w);
  else stateio_writer_rollback(w);
  return rc;
}

/* ------------------------------------------------------------ the child */

static void child(int ready_fd, int commit_fd, uint64_t t, int flags, int bulk, int spill){
  stateio_writer *w;
  if( stateio_writer_open(&w, path, flags | STATEIO_CREATE) != STATEIO_OK ) _exit(2);
  if( spill ) stateio_writer_set_spill(w, 64 << 10);
  unsigned char *buf = malloc(MAXTXN + 16);
  signal(SIGPIPE, SIG_IGN);     /* the parent stops listening early */
  if( write(ready_fd, "R", 1) != 1 ) _exit(3);
  for(;; t++){
    if( write(ready_fd, "C", 1) ){}    /* about to commit (the parent may not listen) */
    if( put_txn(w, t, bulk, buf) != STATEIO_OK ) _exit(7);
    /* Tell the parent: transaction t is committed. */
    if( write(commit_fd, &t, sizeof(t)) != (ssize_t)sizeof(t) ) _exit(8);
  }
}

/* ------------------------------------------------------------ checking */

typedef struct scan_result {
  uint64_t first, last;     /* the log's transactions first..last (last < first: none) */
  uint64_t snap_off;        /* offset of the last snapshot (0: none) */
  int has_snap;
  uint64_t end;             /* end of the last entry */
} scan_result;

/* Read the whole log: whole transactions, consecutive from the first. */
static int scan_log(const stateio_image *img, uint64_t first, scan_result *sr, int *nfail, int iter){
  memset(sr, 0, sizeof(*sr));
  sr->first = first;
  sr->last = first - 1;
  stateio_scan *s;
  if( stateio_scan_open(&s, img, 0, 0) != STATEIO_OK ){ test_detail(nfail, "iter %d: scan_open", iter); return 0; }
  uint64_t cur = first - 1;
  uint32_t want = 0, n = 0;
  int ok = 1;
  for(;;){
    stateio_entry e;
    int rc = stateio_scan_next(s, &e);
    if( rc == STATEIO_DONE ) break;
    uint64_t t;
    uint32_t k;
    if( rc != STATEIO_OK ){
      test_detail(nfail, "iter %d: %s at %llu (%s)", iter, stateio_errstr(rc), (unsigned long long)e.offset,
                  e.problem ? e.problem : "");
      ok = 0;
      break;
    }
    if( !ent_is(e.data, e.len, &t, &k) ){
      test_detail(nfail, "iter %d: the entry at %llu is not one of ours", iter, (unsigned long long)e.offset);
      ok = 0;
      break;
    }
    if( k == 0 ){
      if( want != n || t != cur + 1 ){
        test_detail(nfail, "iter %d: transaction %llu begins at %llu after %u of %u entries of transaction %llu",
                    iter, (unsigned long long)t, (unsigned long long)e.offset, want, n, (unsigned long long)cur);
        ok = 0;
        break;
      }
      cur = t;
      want = 1;
      n = txn_n(t);
    }else if( t != cur || k != want ){
      test_detail(nfail, "iter %d: entry %u of transaction %llu at %llu, want entry %u of %llu", iter, k,
                  (unsigned long long)t, (unsigned long long)e.offset, want, (unsigned long long)cur);
      ok = 0;
      break;
    }else{
      want++;
    }
    if( e.kind == STATEIO_SNAPSHOT ){
      sr->has_snap = 1;
      sr->snap_off = e.offset;
    }
    sr->end = e.end;
  }
  uint64_t tl, toff = stateio_scan_torn(s, &tl);
  stateio_scan_close(s);
  if( ok && want != n ){
    test_detail(nfail, "iter %d: the log ends with %u of %u entries of transaction %llu", iter, want, n,
                (unsigned long long)cur);
    ok = 0;
  }
  if( ok && tl > 0 ){
    test_detail(nfail, "iter %d: a torn tail of %llu bytes at %llu after recovery", iter, (unsigned long long)tl,
                (unsigned long long)toff);
    ok = 0;
  }
  sr->last = cur;
  return ok;
}

static uint64_t file_size(const char *p){
  struct stat st;
  return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* The commit file's record as the kill left it: state, l0, l1 (doc/COMMIT.md). */
static int peek_record(unsigned *state, uint64_t *l0, uint64_t *l1){
  unsigned char r[64];
  int fd = open(cpath, O_RDONLY);
  if( fd < 0 ) return 0;
  int ok = pread(fd, r, 64, 0) == 64;
  close(fd);
  if( !ok ) return 0;
  *state = (unsigned)r[12] | (unsigned)r[13] << 8;
  memcpy(l0, r + 32, 8);
  memcpy(l1, r + 40, 8);
  return 1;
}

static double now_sec(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void){
  int iters = UNDER_ASAN ? 200 : 1000;
  const char *env = getenv("STATEIO_KILL_ITERS");
  if( env && atoi(env) > 0 ) iters = atoi(env);
  uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
  env = getenv("STATEIO_KILL_SEED");
  if( env ) seed = strtoull(env, NULL, 10);
  printf("kill: seed %llu (STATEIO_KILL_SEED to repeat), %d iterations, transactions of 2..50 entries, up to %zu MiB\n",
         (unsigned long long)seed, iters, MAXTXN >> 20);

  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof(tmpdir), "%s/stateio-kill-XXXXXX", t && *t ? t : "/tmp");
  if( !mkdtemp(tmpdir) ){ perror("mkdtemp"); return 1; }
  snprintf(path, sizeof(path), "%s/kill.log", tmpdir);
  snprintf(cpath, sizeof(cpath), "%s-commit", path);

  int f_child = 0, f_scan = 0, f_restore = 0, f_lost = 0, f_append = 0;
  int inflight_partial = 0, inflight_whole = 0, resets = 0, committed_runs = 0, sync_runs = 0, bulk_runs = 0, spill_runs = 0;
  int kept_inflight = 0;
  uint64_t max_size = 0, total_txns = 0;
  uint64_t first = 1;              /* the log's first transaction */
  uint64_t next = 1;               /* the next transaction of the sequence */
  uint64_t rng = seed;
  unsigned char *buf = malloc(MAXTXN + 16);
  double t0 = now_sec();
  int it;
  for(it = 0; it < iters; it++){
    int flags = (it % 4 == 3) ? STATEIO_SYNC : 0;
    int bulk = (it % 4 == 1);
    int spill = (it % 4 == 2) || (it % 8 == 7);
    if( flags ) sync_runs++;
    if( bulk ) bulk_runs++;
    if( spill ) spill_runs++;
    int ready[2], commits[2];
    if( pipe(ready) || pipe(commits) ){ perror("pipe"); return 1; }
    uint64_t start = next;
    fflush(stdout);
    pid_t pid = fork();
    if( pid == 0 ){
      close(ready[0]);
      close(commits[0]);
      child(ready[1], commits[1], next, flags, bulk, spill);
      _exit(9);
    }
    close(ready[1]);
    close(commits[1]);
    /*
    ** Kill 0 .. 8 ms after the child says it is about to commit its first
    ** (even iterations) or a later (odd: after a few) transaction.
    */
    rng = mix(rng);
    char c = 0;
    int was_ready = read(ready[0], &c, 1) == 1 && c == 'R';
    int skip = it % 2 ? 1 + (int)(rng % 4) : 1;
    for(int i = 0; i < skip && was_ready; i++) was_ready = read(ready[0], &c, 1) == 1 && c == 'C';
    long us = (long)((rng >> 8) % 8000);
    close(ready[0]);
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    uint64_t committed = start - 1, got;
    while( read(commits[0], &got, sizeof(got)) == (ssize_t)sizeof(got) ) committed = got;
    close(commits[0]);
    if( !was_ready || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL ){
      test_detail(&f_child, "iter %d: the child was not killed as planned (ready %d, status 0x%x)", it, was_ready, status);
    }
    if( committed >= start ) committed_runs++;

    /* What the kill left, before anyone recovers. */
    unsigned state;
    uint64_t l0, l1, size = file_size(path);
    if( size > max_size ) max_size = size;
    if( peek_record(&state, &l0, &l1) && state == 1 && size > l0 ){
      if( l1 != UINT64_MAX && size >= l1 ) inflight_whole++;
      else inflight_partial++;
    }

    /* Open as a reader (recovers), read everything. */
    stateio_image img;
    int rc = stateio_open_image(path, &img);
    if( rc != STATEIO_OK ){ test_detail(&f_scan, "iter %d: open image: %s", it, stateio_errstr(rc)); break; }
    scan_result sr;
    int ok = scan_log(&img, first, &sr, &f_scan, it);
    if( ok ){
      stateio_state st;
      rc = stateio_restore(&img, &st);
      if( rc != STATEIO_OK || st.epoch != (sr.has_snap ? sr.snap_off : 0) || st.log_end != sr.end ){
        test_detail(&f_restore, "iter %d: restore %s: epoch %llu end %llu, the scan says %llu %llu", it,
                    stateio_errstr(rc), (unsigned long long)st.epoch, (unsigned long long)st.log_end,
                    (unsigned long long)(sr.has_snap ? sr.snap_off : 0), (unsigned long long)sr.end);
        ok = 0;
      }
      stateio_state_clear(&st);
    }
    stateio_close_image(&img);
    if( !ok ) break;
    if( sr.last < committed || sr.last > committed + 1 ){
      test_detail(&f_lost, "iter %d: the log ends at transaction %llu, %llu were committed", it,
                  (unsigned long long)sr.last, (unsigned long long)committed);
      break;
    }
    if( sr.last == committed + 1 ) kept_inflight++;
    total_txns += sr.last + 1 - start;

    /* A new writer appends the next transaction. */
    next = sr.last + 1;
    stateio_writer *w;
    rc = stateio_writer_open(&w, path, 0);
    if( rc == STATEIO_OK ) rc = put_txn(w, next, 0, buf);
    stateio_writer_close(w);
    if( rc != STATEIO_OK ){
      test_detail(&f_append, "iter %d: append after the kill: %s", it, stateio_errstr(rc));
      break;
    }
    next++;
    if( file_size(path) > RESET_SIZE || it % 50 == 49 ){
      /* Check once more with the appended transaction, then start a new log when it is big. */
      if( stateio_open_image(path, &img) == STATEIO_OK ){
        if( scan_log(&img, first, &sr, &f_scan, it) && sr.last != next - 1 ){
          test_detail(&f_append, "iter %d: after the append the log ends at %llu, want %llu", it,
                      (unsigned long long)sr.last, (unsigned long long)(next - 1));
        }
        stateio_close_image(&img);
      }
      if( file_size(path) > RESET_SIZE ){
        unlink(path);
        unlink(cpath);
        first = next;
        resets++;
      }
    }
  }
  double secs = now_sec() - t0;
  printf("kill: %d kills in %.1f s, %d after at least one commit; %d runs with STATEIO_SYNC, %d bulk, %d spilling;"
         " %llu transactions survived, largest log %.1f MB, %d fresh logs\n",
         it, secs, committed_runs, sync_runs, bulk_runs, spill_runs, (unsigned long long)total_txns, max_size / 1048576.0, resets);
  printf("kill: the kill left a commit in flight with part of its bytes in the log %d times (cut back whole),"
         " with all of them %d times; the commit in flight was kept whole %d times\n",
         inflight_partial, inflight_whole, kept_inflight);
  CHECK_MSG(it == iters, "kill: all %d iterations done (%d)", iters, it);
  CHECK_MSG(f_child == 0, "kill: every child was killed by SIGKILL (%d not)", f_child);
  CHECK_MSG(f_scan == 0, "kill: the log holds whole transactions only, in order (%d wrong)", f_scan);
  CHECK_MSG(f_restore == 0, "kill: restore succeeds and agrees with the log (%d wrong)", f_restore);
  CHECK_MSG(f_lost == 0, "kill: no acknowledged commit lost (%d)", f_lost);
  CHECK_MSG(f_append == 0, "kill: a new writer appends after the kill (%d failed)", f_append);
  /* Under ASan the writes are slow and the kills land mid-write more rarely: any commit in flight counts. */
  CHECK_MSG(iters < 100 || (UNDER_ASAN ? inflight_partial + inflight_whole : inflight_partial) > 0,
            "kill: at least one kill landed in the middle of a commit's write (%d)", inflight_partial);
  free(buf);
  unlink(path);
  unlink(cpath);
  rmdir(tmpdir);
  return test_report();
}
