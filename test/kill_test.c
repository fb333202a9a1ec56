/*
** kill_test.c - SIGKILL a writer in the middle of its work, over and over.
**
** Each iteration forks a child that appends batches of 200 updates of
** random sizes (0..70000 bytes; every 4th batch or so starts with a
** snapshot) to one log, with STATEIO_SYNC off (and on in every 4th run),
** until the parent kills it with SIGKILL after a random delay of a few
** hundred microseconds to a few milliseconds. The parent then checks:
**  - restore succeeds, and gives the last snapshot and the updates after it;
**  - the log holds exactly a prefix of the sequence the children wrote:
**    update i carries i (its first 8 bytes) and its contents and size are a
**    function of i, so order, gaps, duplicates and damage all show;
**  - every batch the child reported committed is there;
**  - a new writer can append (it repairs a torn tail), and the sequence
**    goes on from there.
** It counts how often the kill landed in the middle of a write (a torn
** tail) and how often the log then ended inside a batch: a batch is one
** write() (two above 4 MiB), and a write cut short by SIGKILL leaves the
** batch's first entries complete. Every 8th run uses bulk batches
** (stateio_writer_begin_bulk), which are written out in chunks as they grow.
**
** Environment: STATEIO_KILL_ITERS (default 400; 200 under ASan), STATEIO_KILL_MAXLEN
** (largest update, default 70000), STATEIO_KILL_SEED.
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stateio.h"
#include "testhelp.h"

#define BATCH 200                 /* updates per batch */
#define RESET_SIZE (48u << 20)    /* start a new log beyond this size */

static char tmpdir[256], path[300];
static size_t maxlen = 70000;
static unsigned char *pattern;    /* update data comes from here */
static size_t pattern_len;

/* ------------------------------------------------------------ the sequence */

static uint64_t mix(uint64_t x){
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Size of update i: 0..maxlen, with a few empty and a few tiny ones. */
static size_t upd_len(uint64_t i){
  uint64_t h = mix(i);
  if( h % 29 == 0 ) return 0;
  if( h % 31 == 0 ) return (size_t)(h >> 40) % 8;
  return (size_t)((h >> 20) % (maxlen + 1));
}

/* Update i's bytes: i (little-endian, as much of it as fits), then the pattern from i % 251. */
static void upd_fill(uint64_t i, unsigned char *p, size_t len){
  for(size_t k = 0; k < 8 && k < len; k++) p[k] = (unsigned char)(i >> (8 * k));
  if( len > 8 ) memcpy(p + 8, pattern + i % 251, len - 8);
}

static int upd_is(uint64_t i, const unsigned char *p, size_t len){
  if( len != upd_len(i) ) return 0;
  for(size_t k = 0; k < 8 && k < len; k++) if( p[k] != (unsigned char)(i >> (8 * k)) ) return 0;
  return len <= 8 || memcmp(p + 8, pattern + i % 251, len - 8) == 0;
}

/* Whether the batch that starts at update i begins with a snapshot; its size. */
static int snap_at(uint64_t i){ return mix(i ^ 0x5eed) % 4 == 0; }
static size_t snap_len(uint64_t i){ return 8 + (size_t)(mix(i ^ 0xabc) % 5000); }

/* Whether p[0..len) is the snapshot taken before update i (upd_fill(i) of snap_len(i) bytes). */
static int snap_is(uint64_t i, const unsigned char *p, size_t len){
  if( !snap_at(i) || len != snap_len(i) ) return 0;
  for(size_t k = 0; k < 8; k++) if( p[k] != (unsigned char)(i >> (8 * k)) ) return 0;
  return memcmp(p + 8, pattern + i % 251, len - 8) == 0;
}

/* ------------------------------------------------------------ the child */

static void child(int ready_fd, int commit_fd, uint64_t seq, int flags, int bulk){
  stateio_writer *w;
  if( stateio_writer_open(&w, path, flags | STATEIO_CREATE) != SIO_OK ) _exit(2);
  unsigned char *buf = malloc(maxlen + 5000 + 16);
  signal(SIGPIPE, SIG_IGN);     /* the parent stops listening early */
  if( write(ready_fd, "R", 1) != 1 ) _exit(3);
  for(;;){
    if( (bulk ? stateio_writer_begin_bulk(w) : stateio_writer_begin(w)) != SIO_OK ) _exit(4);
    if( snap_at(seq) ){
      size_t n = snap_len(seq);
      upd_fill(seq, buf, n);
      if( stateio_snapshot(w, buf, n) != SIO_OK ) _exit(5);
    }
    for(int k = 0; k < BATCH; k++, seq++){
      size_t n = upd_len(seq);
      upd_fill(seq, buf, n);
      if( stateio_update(w, buf, n) != SIO_OK ) _exit(6);
    }
    if( write(ready_fd, "C", 1) ){}    /* about to write (the parent may not listen) */
    if( stateio_writer_commit(w) != SIO_OK ) _exit(7);
    /* Tell the parent: everything before seq is committed. */
    if( write(commit_fd, &seq, sizeof(seq)) != (ssize_t)sizeof(seq) ) _exit(8);
  }
}

/* ------------------------------------------------------------ checking */


typedef struct scan_result {
  uint64_t next_seq;        /* updates 0..next_seq-1 are in the log, in order */
  uint64_t end;             /* end of the last complete entry */
  uint64_t epoch;           /* the current epoch */
  uint64_t snap_seq;        /* the current epoch's snapshot was taken at this update (or -1) */
  uint64_t torn_len;        /* bytes of torn tail */
  int last_was_snapshot;
} scan_result;

/* Read the whole log forward; everything must be the sequence, in order. */
static int scan_log(const logio_image *img, scan_result *sr, int *nfail, int iter){
  memset(sr, 0, sizeof(*sr));
  sr->snap_seq = (uint64_t)-1;
  logio_reader *r;
  if( logio_reader_open(&r, img, 0) != SIO_OK ){ test_detail(nfail, "reader_open"); return 0; }
  int ok = 1;
  for(;;){
    logio_entry e;
    int rc = logio_reader_next(r, &e);
    if( rc == SIO_DONE ) break;
    if( rc == SIO_TORN ){
      sr->torn_len = e.len;
      /* It starts where the last entry ended, or after the block's padding there. */
      if( (e.offset != sr->end && e.offset != logio_aligned(sr->end))
       || e.offset + e.len != logio_image_size(img) ){
        test_detail(nfail, "iter %d: torn tail at %llu len %zu, last entry ended at %llu", iter,
             (unsigned long long)e.offset, e.len, (unsigned long long)sr->end);
        ok = 0;
      }
      continue;
    }
    if( rc != SIO_OK ){
      test_detail(nfail, "iter %d: forward reader: %s at %llu len %zu (%s)", iter, sio_strstatus(rc),
           (unsigned long long)e.offset, e.len, logio_reader_problem(r));
      ok = 0;
      break;
    }
    stateio_entry se;
    if( stateio_parse_entry(e.data, e.len, &se) != SIO_OK ){
      test_detail(nfail, "iter %d: unparsable entry at %llu", iter, (unsigned long long)e.offset);
      ok = 0;
      break;
    }
    if( se.kind == STATEIO_SNAPSHOT ){
      if( se.epoch != sr->epoch || !snap_is(sr->next_seq, se.data, se.len) ){
        test_detail(nfail, "iter %d: snapshot at %llu is not the one taken before update %llu", iter,
             (unsigned long long)e.offset, (unsigned long long)sr->next_seq);
        ok = 0;
        break;
      }
      sr->epoch = e.offset;
      sr->snap_seq = sr->next_seq;
      sr->last_was_snapshot = 1;
    }else{
      if( se.epoch != sr->epoch || !upd_is(sr->next_seq, se.data, se.len) ){
        test_detail(nfail, "iter %d: entry at %llu (%zu bytes, epoch %llu) is not update %llu", iter,
             (unsigned long long)e.offset, se.len, (unsigned long long)se.epoch,
             (unsigned long long)sr->next_seq);
        ok = 0;
        break;
      }
      sr->next_seq++;
      sr->last_was_snapshot = 0;
    }
    sr->end = e.end;
  }
  logio_reader_close(r);
  return ok;
}

/* Restore must agree with the scan: last snapshot, then the updates after it. */
static int check_restore(const logio_image *img, const scan_result *sr, int *nfail, int iter){
  stateio_epoch st;
  int rc = stateio_restore(img, &st);
  if( rc != SIO_OK ){
    test_detail(nfail, "iter %d: restore: %s (bad_offset %llu)", iter, sio_strstatus(rc), (unsigned long long)st.bad_offset);
    stateio_epoch_clear(&st);
    return 0;
  }
  int ok = st.epoch == sr->epoch && st.log_end == sr->end
        && st.torn_len == logio_image_size(img) - sr->end
        && st.has_snapshot == (sr->snap_seq != (uint64_t)-1);
  if( ok && st.has_snapshot ){
    ok = snap_is(sr->snap_seq, st.snapshot, st.snapshot_len);
  }
  if( !ok ){
    test_detail(nfail, "iter %d: restore gave epoch %llu log_end %llu torn %llu, scan says epoch %llu end %llu",
         iter, (unsigned long long)st.epoch, (unsigned long long)st.log_end,
         (unsigned long long)st.torn_len, (unsigned long long)sr->epoch, (unsigned long long)sr->end);
    stateio_epoch_clear(&st);
    return 0;
  }
  stateio_updates *u;
  if( stateio_updates_open(&u, img, &st) != SIO_OK ){ stateio_epoch_clear(&st); return 0; }
  uint64_t want = st.has_snapshot ? sr->snap_seq : 0;
  for(;;){
    logio_entry e;
    rc = stateio_updates_next(u, &e);
    if( rc == SIO_DONE ) break;
    if( rc != SIO_OK || !upd_is(want, e.data, e.len) ){
      test_detail(nfail, "iter %d: update reader: %s at %llu, want update %llu", iter, sio_strstatus(rc),
           (unsigned long long)e.offset, (unsigned long long)want);
      ok = 0;
      break;
    }
    want++;
  }
  if( ok && want != sr->next_seq ){
    test_detail(nfail, "iter %d: update reader stopped at update %llu of %llu", iter,
         (unsigned long long)want, (unsigned long long)sr->next_seq);
    ok = 0;
  }
  stateio_updates_close(u);
  stateio_epoch_clear(&st);
  return ok;
}

static uint64_t file_size(const char *p){
  struct stat st;
  return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static double now_sec(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void){
  int iters = UNDER_ASAN ? 200 : 400;
  const char *env = getenv("STATEIO_KILL_ITERS");
  if( env && atoi(env) > 0 ) iters = atoi(env);
  env = getenv("STATEIO_KILL_MAXLEN");
  if( env && atol(env) >= 16 ) maxlen = (size_t)atol(env);
  uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
  env = getenv("STATEIO_KILL_SEED");
  if( env ) seed = strtoull(env, NULL, 10);
  printf("kill: seed %llu (STATEIO_KILL_SEED to repeat), %d iterations, updates of 0..%zu bytes\n",
         (unsigned long long)seed, iters, maxlen);

  pattern_len = maxlen + 5000 + 256;
  pattern = malloc(pattern_len);
  for(size_t k = 0; k < pattern_len; k++) pattern[k] = (unsigned char)(mix(k) >> 13);

  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof(tmpdir), "%s/stateio-kill-XXXXXX", t && *t ? t : "/tmp");
  if( !mkdtemp(tmpdir) ){ perror("mkdtemp"); return 1; }
  snprintf(path, sizeof(path), "%s/kill.log", tmpdir);

  int f_child = 0, f_scan = 0, f_restore = 0, f_lost = 0, f_append = 0;
  int torn_seen = 0, partial_batch = 0, resets = 0, committed_runs = 0, sync_runs = 0;
  int no_write = 0, bulk_runs = 0, partial_plain = 0;
  uint64_t max_size = 0, total_updates = 0;
  uint64_t seq = 0;                /* the next update of the sequence */
  uint64_t rng = seed;
  double t0 = now_sec();
  int it;
  for(it = 0; it < iters; it++){
    int flags = (it % 4 == 3) ? STATEIO_SYNC : 0;
    int bulk = (it % 8 == 5);      /* bulk batches: written in chunks as they grow */
    if( flags ) sync_runs++;
    if( bulk ) bulk_runs++;
    int ready[2], commits[2];
    if( pipe(ready) || pipe(commits) ){ perror("pipe"); return 1; }
    uint64_t start_seq = seq;
    uint64_t size_before = file_size(path);
    fflush(stdout);
    pid_t pid = fork();
    if( pid == 0 ){
      close(ready[0]);
      close(commits[0]);
      child(ready[1], commits[1], seq, flags, bulk);
      _exit(9);
    }
    close(ready[1]);
    close(commits[1]);
    /*
    ** Odd iterations: kill 200 us .. 6 ms (now and then up to 40 ms: several
    ** batches) after the child is ready. Even ones: 0 .. 4 ms after it says
    ** it is about to write its first batch, to land in write() more often.
    */
    rng = mix(rng);
    char c = 0;
    int was_ready = read(ready[0], &c, 1) == 1 && c == 'R';
    long us = 200 + (long)(rng % 5800);
    if( rng % 8 == 0 ) us = 200 + (long)((rng >> 16) % 40000);
    if( it % 2 == 0 ){
      was_ready = was_ready && read(ready[0], &c, 1) == 1 && c == 'C';
      us = (long)(rng % 4000);
    }
    close(ready[0]);
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    uint64_t committed = start_seq, got;
    while( read(commits[0], &got, sizeof(got)) == (ssize_t)sizeof(got) ) committed = got;
    close(commits[0]);
    if( !was_ready || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL ){
      test_detail(&f_child, "iter %d: the child was not killed as planned (ready %d, status 0x%x)", it, was_ready, status);
    }
    if( committed > start_seq ) committed_runs++;

    /* What the kill left. */
    logio_image img;
    if( stateio_open_image(path, &img) != SIO_OK ){ test_detail(&f_scan, "iter %d: open image", it); break; }
    if( logio_image_size(&img) == size_before ) no_write++;
    if( logio_image_size(&img) > max_size ) max_size = logio_image_size(&img);
    scan_result sr;
    int ok = scan_log(&img, &sr, &f_scan, it);
    if( ok && sr.torn_len > 0 ) torn_seen++;
    if( ok && !check_restore(&img, &sr, &f_restore, it) ) ok = 0;
    stateio_close_image(&img);
    if( !ok ) break;
    if( sr.next_seq < committed || sr.next_seq < start_seq ){
      test_detail(&f_lost, "iter %d: the log ends at update %llu, but %llu were committed", it,
           (unsigned long long)sr.next_seq, (unsigned long long)(committed > start_seq ? committed : start_seq));
      break;
    }
    /* Batches of this run are [start_seq + k*BATCH, ...): did the log stop inside one? */
    if( (sr.next_seq > start_seq && (sr.next_seq - start_seq) % BATCH != 0)
        || (sr.last_was_snapshot && sr.end > size_before) ){
      partial_batch++;
      if( !bulk ) partial_plain++;
    }
    total_updates += sr.next_seq - start_seq;
    seq = sr.next_seq;

    /* A new writer appends the next update (and repairs a torn tail). */
    stateio_writer *w;
    int rc = stateio_writer_open(&w, path, 0);
    unsigned char *buf = malloc(maxlen + 16);
    size_t n = upd_len(seq);
    upd_fill(seq, buf, n);
    if( rc == SIO_OK ) rc = stateio_update(w, buf, n);
    stateio_writer_close(w);
    free(buf);
    if( rc != SIO_OK ){
      test_detail(&f_append, "iter %d: append after the kill: %s", it, sio_strstatus(rc));
      break;
    }
    seq++;
    uint64_t want_end = sr.end + logio_encoded_size(sr.end, STATEIO_ENTRY_HEADER + n);
    if( file_size(path) != want_end ){
      test_detail(&f_append, "iter %d: after the append the log is %llu bytes, want %llu", it,
           (unsigned long long)file_size(path), (unsigned long long)want_end);
      break;
    }
    if( file_size(path) > RESET_SIZE || (it % 50 == 49) ){
      /* Keep the log small enough to check in full every time (and check once more first). */
      if( stateio_open_image(path, &img) == SIO_OK ){
        ok = scan_log(&img, &sr, &f_scan, it) && check_restore(&img, &sr, &f_restore, it);
        if( ok && (sr.next_seq != seq || sr.torn_len != 0) ){
          test_detail(&f_append, "iter %d: after the append: %llu updates, torn %llu", it,
               (unsigned long long)sr.next_seq, (unsigned long long)sr.torn_len);
        }
        stateio_close_image(&img);
      }
      if( file_size(path) > RESET_SIZE ){
        unlink(path);
        seq = 0;
        resets++;
      }
    }
  }
  double secs = now_sec() - t0;
  printf("kill: %d iterations in %.1f s: the kill landed mid-write (torn tail) %d times, "
         "after at least one commit %d times, before any write %d times; %d runs with STATEIO_SYNC, %d bulk\n",
         it, secs, torn_seen, committed_runs, no_write, sync_runs, bulk_runs);
  printf("kill: %llu updates survived, largest log %.1f MB, %d fresh logs; "
         "the log ended inside a batch %d times, %d of them ordinary (not bulk) batches:"
         " a batch is not atomic across a crash\n",
         (unsigned long long)total_updates, max_size / 1048576.0, resets, partial_batch, partial_plain);
  CHECK_MSG(it == iters, "kill: all %d iterations done (%d)", iters, it);
  CHECK_MSG(f_child == 0, "kill: every child was killed by SIGKILL (%d not)", f_child);
  CHECK_MSG(f_scan == 0, "kill: the log is a prefix of the written sequence (%d wrong)", f_scan);
  CHECK_MSG(f_restore == 0, "kill: restore succeeds and agrees with the log (%d wrong)", f_restore);
  CHECK_MSG(f_lost == 0, "kill: no committed batch lost (%d)", f_lost);
  CHECK_MSG(f_append == 0, "kill: a new writer appends after the kill (%d failed)", f_append);
  CHECK_MSG(iters < 100 || torn_seen > 0, "kill: at least one kill landed mid-write (%d)", torn_seen);
  unlink(path);
  rmdir(tmpdir);
  free(pattern);
  return test_report();
}
