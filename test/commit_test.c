/* SPDX-License-Identifier: MIT */
/*
** commit_test.c - the commit file and the writer's promises around it
** (doc/COMMIT.md):
**  1. isolation: reader processes (restore, and a follower's update
**     reader) never see part of an 8-entry transaction, nor a commit whose
**     fdatasync has not returned, while a writer process commits (also
**     when its transactions spill, their chunks out before the commit);
**  2. a delayed, then failing fdatasync: a polling follower gets exactly
**     the committed entries, and the next real commit at that offset;
**  3. a failed commit leaves nothing, even when its cut fails too: readers
**     never see it, and the next append first finishes the cut, synced;
**  4. EINTR from fdatasync and flock is retried; a failed unlock does not
**     keep the lock; errors name the file; a failed directory sync when
**     the log is created is an error;
**  5. the busy timeout: the writer's lock and compaction wait; with 3
**     writer processes committing in a loop, compaction gets in;
**  6. the commit file's own life: missing, damaged, stale, read-only;
**     compaction gives the new log its record before the rename;
**  7. two-phase: prepare, then commit or rollback;
**  8. a commit file that another writer creates while a writer, a
**     compaction or a reader looks: its commit in flight is settled
**     first, never built on (the child writer dies with its batch torn
**     between the look for the file and the lock, or the size);
**  9. a batch that spills (stateio_writer_set_spill): out in chunks before
**     its commit, invisible until then, rolled back whole or to marks,
**     prepared and taken back, killed at each stage;
** 10. a writer carried across fork(): the child touches nothing of the
**     parent's lock and batch.
**
** Environment: STATEIO_ISOLATION_READS=N reads for 1 (default 12000).
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stateio.h"
#include "logio.h"
#include "sweep.h"
#include "testhelp.h"

static char tmpdir[256];

static const char *tpath(const char *name){
  static char buf[8][600];
  static int k;
  char *p = buf[k++ % 8];
  snprintf(p, 600, "%s/%s", tmpdir, name);
  return p;
}

static void rm_log(const char *path){
  char c[620];
  unlink(path);
  snprintf(c, sizeof(c), "%s-commit", path);
  unlink(c);
}

static uint64_t fsize(const char *path){
  struct stat st;
  return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static double now_ms(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms){
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
  nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ entries */

/* Entry k of n of transaction t: (t, k, n) then len-16 bytes. */
static void fill(unsigned char *p, size_t len, uint64_t t, uint32_t k, uint32_t n){
  memcpy(p, &t, 8);
  memcpy(p + 8, &k, 4);
  memcpy(p + 12, &n, 4);
  for(size_t j = 16; j < len; j++) p[j] = (unsigned char)(t + k + j);
}

static int parse(const unsigned char *p, size_t len, uint64_t *t, uint32_t *k, uint32_t *n){
  if( len < 16 ) return 0;
  memcpy(t, p, 8);
  memcpy(k, p + 8, 4);
  memcpy(n, p + 12, 4);
  for(size_t j = 16; j < len; j++) if( p[j] != (unsigned char)(*t + *k + j) ) return 0;
  return *k < *n;
}

/* Transaction t of n entries of len bytes (the first a snapshot if snap). */
static int put_txn(stateio_writer *w, uint64_t t, uint32_t n, size_t len, int snap){
  unsigned char buf[4096];
  int rc = n > 1 ? stateio_writer_begin(w) : STATEIO_OK;
  for(uint32_t k = 0; rc == STATEIO_OK && k < n; k++){
    fill(buf, len, t, k, n);
    rc = (snap && k == 0) ? stateio_snapshot(w, buf, len) : stateio_update(w, buf, len);
  }
  if( n > 1 ){
    if( rc == STATEIO_OK ) rc = stateio_writer_commit(w);
    else stateio_writer_rollback(w);
  }
  return rc;
}

/* Every transaction in the log from 0, as (t) in order; -1 if any is partial or out of order. */
static int read_txns(const char *path, uint64_t *out, int max, uint64_t *first_off){
  stateio_image img;
  if( stateio_open_image(path, &img) != STATEIO_OK ) return -1;
  stateio_scan *s;
  int n = 0, bad = 0;
  uint32_t want = 0, cnt = 0;
  if( stateio_scan_open(&s, &img, 0, 0) != STATEIO_OK ){ stateio_close_image(&img); return -1; }
  for(;;){
    stateio_entry e;
    int rc = stateio_scan_next(s, &e);
    if( rc == STATEIO_DONE ) break;
    uint64_t t; uint32_t k, nn;
    if( rc != STATEIO_OK || !parse(e.data, e.len, &t, &k, &nn) ){ bad = 1; break; }
    if( k == 0 ){
      if( want != cnt ){ bad = 1; break; }
      if( n < max ){ if( first_off ) first_off[n] = e.offset; out[n] = t; }
      n++;
      want = 1; cnt = nn;
    }else if( k != want ){ bad = 1; break; }
    else want++;
  }
  if( want != cnt ) bad = 1;
  stateio_scan_close(s);
  stateio_close_image(&img);
  return bad ? -1 : n;
}

/* ------------------------------------------------------------ hooks */

/* A scriptable os hook: fail (or EINTR, or delay) the nth call of an op on a file. */
static struct hookplan {
  const char *op;
  int file;                /* 0: any */
  int nth;                 /* 1: the first such call */
  int err;
  int delay_ms;
  int times;               /* how many calls from nth on (0: 1) */
  const char *op2;         /* a second failure, after the first fired */
  int err2;
  int seen, fired, fired2;
  /* recording of log ops after a point */
  int record;
  char trace[4096];
  int tlen;
} plan;

static int plan_hook(void *arg, stateio_os_op *o){
  (void)arg;
  if( o->after ){
    if( plan.record && plan.tlen < (int)sizeof(plan.trace) - 64 ){
      plan.tlen += snprintf(plan.trace + plan.tlen, sizeof(plan.trace) - (size_t)plan.tlen, "%s%s:%s",
                            plan.tlen ? " " : "", o->file == STATEIO_FILE_COMMIT ? "c" : o->file == STATEIO_FILE_LOG ? "l" : "o",
                            o->op);
    }
    return 0;
  }
  if( plan.fired && plan.op2 && !plan.fired2 && strcmp(o->op, plan.op2) == 0 && (!plan.file || o->file == plan.file) ){
    plan.fired2 = 1;
    return plan.err2;
  }
  if( plan.op && strcmp(o->op, plan.op) == 0 && (!plan.file || o->file == plan.file) ){
    int n = ++plan.seen;
    int times = plan.times ? plan.times : 1;
    if( n >= plan.nth && n < plan.nth + times ){
      plan.fired++;
      if( plan.delay_ms ) sleep_ms(plan.delay_ms);
      return plan.err;
    }
  }
  return 0;
}

static void plan_set(const char *op, int file, int nth, int err){
  memset(&plan, 0, sizeof(plan));
  plan.op = op;
  plan.file = file;
  plan.nth = nth;
  plan.err = err;
  stateio_set_os_hook(plan_hook, NULL);
}

static void plan_off(void){
  stateio_set_os_hook(NULL, NULL);
  memset(&plan, 0, sizeof(plan));
}

/* stat() calls on one path (commit_test is linked with --wrap=stat; __wrap_stat is below). */
static const char *stat_counted;
static int stat_count;

/* ------------------------------------------------------------ 1. isolation */

/* Shared with the writer process: the last transaction whose log fdatasync returned. */
static volatile uint64_t *synced_txn;
static uint64_t writing_txn;

static int synced_hook(void *arg, stateio_os_op *o){
  (void)arg;
  if( o->after && o->file == STATEIO_FILE_LOG && strcmp(o->op, "fdatasync") == 0 ){
    __atomic_store_n(synced_txn, writing_txn, __ATOMIC_SEQ_CST);
  }
  return 0;
}

/* spill > 0: the writer's transactions spill past that many bytes (out in chunks before their commit). */
static void isolation_with(size_t spill){
  const char *path = tpath("iso.log");
  rm_log(path);
  int reads = 12000;
  const char *env = getenv("STATEIO_ISOLATION_READS");
  if( env && atoi(env) > 0 ) reads = atoi(env);
  if( UNDER_ASAN && !env ) reads = 4000;
  if( spill ) reads /= 2;
  synced_txn = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  volatile int *stop = (volatile int *)(synced_txn + 8);
  *synced_txn = 0;
  *stop = 0;
  {
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, path, STATEIO_CREATE | STATEIO_SYNC) == STATEIO_OK);
    CHECK(put_txn(w, 1, 8, 40, 1) == STATEIO_OK);
    stateio_writer_close(w);
    *synced_txn = 1;
  }
  pid_t wpid = fork();
  if( wpid == 0 ){
    stateio_writer *w;
    if( stateio_writer_open(&w, path, STATEIO_SYNC) ) _exit(2);
    if( spill ) stateio_writer_set_spill(w, spill);
    stateio_set_os_hook(synced_hook, NULL);
    for(uint64_t t = 2; !*stop; t++){
      writing_txn = t;
      if( put_txn(w, t, 8, 30 + (size_t)(t % 200), t % 50 == 0) != STATEIO_OK ) _exit(3);
    }
    stateio_writer_close(w);
    _exit(0);
  }
  /* Two readers: one restores, one follows with the update reader from its offset. */
  int pfd[2][2];
  pid_t rpid[2];
  for(int r = 0; r < 2; r++){
    if( pipe(pfd[r]) ) return;
    rpid[r] = fork();
    if( rpid[r] == 0 ){
      close(pfd[r][0]);
      long nread = 0, partial = 0, unsynced = 0, errors = 0, seen_max = 0;
      uint64_t follow_off = 0, follow_epoch = 0, cur = 0;
      uint32_t want = 0, cnt = 0;
      while( nread < reads / 2 ){
        stateio_image img;
        if( stateio_open_image(path, &img) != STATEIO_OK ){ errors++; nread++; continue; }
        uint64_t last = 0;
        if( r == 0 ){
          /* Restore: the current epoch's snapshot (a transaction's first entry) and its updates. */
          stateio_state st;
          if( stateio_restore(&img, &st) != STATEIO_OK ){ errors++; }
          else{
            stateio_updates *u;
            uint64_t t = 0; uint32_t k = 0, n = 0, have = 0;
            int ok = 1;
            if( st.has_snapshot ){
              if( !parse(st.snapshot, st.snapshot_len, &t, &k, &n) || k != 0 ) ok = 0;
              have = 1;
            }
            if( ok && stateio_updates_open(&u, &img, &st) == STATEIO_OK ){
              stateio_entry e;
              int rc;
              while( (rc = stateio_updates_next(u, &e)) == STATEIO_OK ){
                uint64_t t2; uint32_t k2, n2;
                if( !parse(e.data, e.len, &t2, &k2, &n2) ){ ok = 0; break; }
                if( k2 == 0 ){ if( have != n && t != 0 ) partial++; t = t2; n = n2; have = 1; }
                else if( t2 != t || k2 != have ){ ok = 0; break; }
                else have++;
              }
              if( rc != STATEIO_DONE && rc != STATEIO_OK ) ok = 0;
              stateio_updates_close(u);
              if( have != n ) partial++;
              last = t;
            }
            if( !ok ) errors++;
          }
          stateio_state_clear(&st);
        }else{
          /* A follower: read on from where it stopped, entry by entry. */
          stateio_scan *s;
          if( stateio_scan_open(&s, &img, follow_off, follow_off ? follow_epoch : 0) == STATEIO_OK ){
            for(;;){
              stateio_entry e;
              int rc = stateio_scan_next(s, &e);
              if( rc == STATEIO_DONE ) break;
              uint64_t t; uint32_t k, n;
              if( rc != STATEIO_OK || !parse(e.data, e.len, &t, &k, &n) ){ errors++; break; }
              if( k == 0 ){ if( want != cnt ) partial++; cur = t; want = 1; cnt = n; }
              else if( t != cur || k != want ){ errors++; break; }
              else want++;
              follow_off = e.end;
              follow_epoch = stateio_scan_epoch(s);
            }
            stateio_scan_close(s);
            /* At the end of what is visible, the last transaction is whole. */
            if( want != cnt ) partial++;
            last = cur;
          }
        }
        stateio_close_image(&img);
        /* Nothing visible before its fdatasync returned. */
        uint64_t synced = __atomic_load_n(synced_txn, __ATOMIC_SEQ_CST);
        if( last > synced ) unsynced++;
        if( (long)last > seen_max ) seen_max = (long)last;
        nread++;
      }
      long res[5] = { nread, partial, unsynced, errors, seen_max };
      if( write(pfd[r][1], res, sizeof(res)) != (ssize_t)sizeof(res) ) _exit(4);
      _exit(0);
    }
    close(pfd[r][1]);
  }
  long tot[5] = {0};
  for(int r = 0; r < 2; r++){
    long res[5] = {0};
    if( read(pfd[r][0], res, sizeof(res)) != (ssize_t)sizeof(res) ) res[3] = 1;
    close(pfd[r][0]);
    for(int i = 0; i < 4; i++) tot[i] += res[i];
    if( res[4] > tot[4] ) tot[4] = res[4];
    int st;
    waitpid(rpid[r], &st, 0);
  }
  *stop = 1;
  int st;
  waitpid(wpid, &st, 0);
  printf("isolation: %ld reads while a writer committed 8-entry transactions%s (up to %ld): %ld partial, %ld before their sync, %ld errors\n",
         tot[0], spill ? " that spill past 512 bytes" : "", tot[4], tot[1], tot[2], tot[3]);
  CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "isolation: writer status %d", st);
  CHECK_MSG(tot[0] >= reads, "isolation: %ld reads", tot[0]);
  CHECK_MSG(tot[4] > 20, "isolation: the readers saw the writer's commits (up to %ld)", tot[4]);
  CHECK_MSG(tot[1] == 0, "isolation: no reader saw part of a transaction (%ld)", tot[1]);
  CHECK_MSG(tot[2] == 0, "isolation: no reader saw a commit before its fdatasync returned (%ld)", tot[2]);
  CHECK_MSG(tot[3] == 0, "isolation: no read failed (%ld)", tot[3]);
  munmap((void*)synced_txn, 4096);
  rm_log(path);
}

/* ------------------------------------------------------------ 2. delayed, failing fdatasync */

static void test_isolation(void){ isolation_with(0); }
static void test_isolation_spill(void){ isolation_with(512); }

static void test_failing_sync_follower(void){
  const char *path = tpath("follow.log");
  rm_log(path);
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE | STATEIO_SYNC) == STATEIO_OK);
  CHECK(put_txn(w, 1, 1, 100, 1) == STATEIO_OK);
  stateio_writer_close(w);
  volatile int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  shared[0] = 0;
  pid_t fpid = fork();
  if( fpid == 0 ){
    /* The follower: polls every 0.5 ms, keeps (log_id, offset), records what it gets. */
    uint64_t off = 0, epoch = 0, seen[64];
    uint64_t at[64];
    int n = 0, errors = 0;
    double t_end = 0;
    for(;;){
      /* Go on for 50 ms after the writer is done. */
      if( shared[0] && t_end == 0 ) t_end = now_ms() + 50;
      if( t_end != 0 && now_ms() > t_end ) break;
      stateio_image img;
      if( stateio_open_image(path, &img) == STATEIO_OK ){
        stateio_scan *s;
        if( stateio_scan_open(&s, &img, off, off ? epoch : 0) == STATEIO_OK ){
          stateio_entry e;
          int rc;
          while( (rc = stateio_scan_next(s, &e)) == STATEIO_OK ){
            uint64_t t = 0; uint32_t k, nn;
            if( !parse(e.data, e.len, &t, &k, &nn) ) errors++;
            if( n < 64 ){ seen[n] = t; at[n] = e.offset; n++; }
            off = e.end;
            epoch = stateio_scan_epoch(s);
          }
          if( rc != STATEIO_DONE ) errors++;
          stateio_scan_close(s);
        }
        stateio_close_image(&img);
      }
      sleep_ms(0);
      struct timespec ts = { 0, 500000 };
      nanosleep(&ts, NULL);
    }
    shared[2] = n;
    shared[3] = errors;
    for(int i = 0; i < n && i < 64; i++){ shared[8 + 2 * i] = (int)seen[i]; shared[9 + 2 * i] = (int)at[i]; }
    _exit(0);
  }
  /* The writer: 2 commits, one whose fdatasync waits 300 ms and fails, one more. */
  CHECK(stateio_writer_open(&w, path, STATEIO_SYNC) == STATEIO_OK);
  sleep_ms(20);
  CHECK(put_txn(w, 2, 1, 50, 0) == STATEIO_OK);
  uint64_t before = fsize(path);
  plan_set("fdatasync", STATEIO_FILE_LOG, 1, EIO);
  plan.delay_ms = 300;
  int rc = put_txn(w, 3, 1, 60, 0);
  plan_off();
  CHECK_MSG(rc == STATEIO_IOERR, "failing sync: the commit fails (%s)", stateio_errstr(rc));
  CHECK_MSG(fsize(path) == before, "failing sync: the file is cut back (%llu, was %llu)",
            (unsigned long long)fsize(path), (unsigned long long)before);
  CHECK(put_txn(w, 4, 1, 70, 0) == STATEIO_OK);     /* the next real commit, at the same offset */
  stateio_writer_close(w);
  shared[0] = 1;
  int st;
  waitpid(fpid, &st, 0);
  int n = shared[2];
  char got[200] = "";
  for(int i = 0, k = 0; i < n && k < 180; i++) k += snprintf(got + k, sizeof(got) - (size_t)k, "%d@%d ", shared[8 + 2 * i], shared[9 + 2 * i]);
  CHECK_MSG(n == 3 && shared[8] == 1 && shared[10] == 2 && shared[12] == 4 && (uint64_t)shared[13] == before && shared[3] == 0,
            "failing sync: the follower got exactly 1, 2 and 4 (4 at %llu, where 3 was written): %s",
            (unsigned long long)before, got);
  munmap((void*)shared, 4096);
  rm_log(path);
}

/* ------------------------------------------------------------ 3. failed commits, double fault */

static int raw_record(const char *path, unsigned *state, uint64_t *l0){
  char c[450];
  snprintf(c, sizeof(c), "%s-commit", path);
  int fd = open(c, O_RDONLY);
  unsigned char r[64];
  int ok = fd >= 0 && pread(fd, r, 64, 0) == 64;
  if( fd >= 0 ) close(fd);
  if( !ok ) return 0;
  *state = (unsigned)r[12] | (unsigned)r[13] << 8;
  memcpy(l0, r + 32, 8);
  return 1;
}

static void test_double_fault(void){
  const char *path = tpath("double.log");
  for(int multi = 0; multi < 2; multi++){
    rm_log(path);
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, path, STATEIO_CREATE | STATEIO_SYNC) == STATEIO_OK);
    CHECK(put_txn(w, 1, 3, 100, 1) == STATEIO_OK);
    uint64_t l0 = fsize(path);
    /* The sync fails, then the cut fails too. */
    plan_set("fdatasync", STATEIO_FILE_LOG, 1, EIO);
    plan.op2 = "ftruncate";
    plan.err2 = EIO;
    errno = 0;
    int rc = put_txn(w, 2, multi ? 4 : 1, 200, 0);
    int e = errno, fired2 = plan.fired2;
    plan_off();
    CHECK_MSG(rc == STATEIO_IOERR && e == EIO && fired2, "double fault (%d entries): the commit fails with the sync's error (%s, %d)",
              multi ? 4 : 1, stateio_errstr(rc), e);
    CHECK_MSG(strcmp(stateio_writer_errfile(w) ? stateio_writer_errfile(w) : "", path) == 0,
              "double fault: the error names the log (%s)", stateio_writer_errfile(w) ? stateio_writer_errfile(w) : "NULL");
    unsigned state = 0;
    uint64_t rl0 = 0;
    CHECK_MSG(fsize(path) > l0 && raw_record(path, &state, &rl0) && state == 3 && rl0 == l0,
              "double fault: the failed bytes are still there (%llu > %llu), the record says cut to %llu (state %u at %llu)",
              (unsigned long long)fsize(path), (unsigned long long)l0, (unsigned long long)l0, state, (unsigned long long)rl0);
    /* A reader that may not write (EACCES) sees the log without the failed commit, and changes nothing. */
    uint64_t size_then = fsize(path);
    plan_set("open", STATEIO_FILE_LOG, 1, EACCES);
    plan.times = 100;
    stateio_image img;
    rc = stateio_open_image(path, &img);
    plan_off();
    CHECK_MSG(rc == STATEIO_OK && img.file_size == l0, "double fault: a read-only reader sees %llu bytes (want %llu): %s",
              (unsigned long long)img.file_size, (unsigned long long)l0, stateio_errstr(rc));
    if( rc == STATEIO_OK ) stateio_close_image(&img);
    CHECK_MSG(fsize(path) == size_then && raw_record(path, &state, &rl0) && state == 3,
              "double fault: the read-only reader changed nothing");
    int n;
    /* The next append finishes the cut, synced, before it writes. */
    plan_set(NULL, 0, 0, 0);
    plan.record = 1;
    CHECK(put_txn(w, 3, 2, 50, 0) == STATEIO_OK);
    const char *cut = strstr(plan.trace, "l:ftruncate l:fdatasync");
    const char *wr = strstr(plan.trace, "l:write");
    CHECK_MSG(cut && wr && cut < wr, "double fault: the next append first cuts and syncs the log: %s", plan.trace);
    plan_off();
    uint64_t txns[8];
    n = read_txns(path, txns, 8, NULL);
    CHECK_MSG(n == 2 && txns[0] == 1 && txns[1] == 3, "double fault: the log holds transactions 1 and 3 (%d)", n);
    stateio_writer_close(w);
  }
  rm_log(path);
}

/* ------------------------------------------------------------ 4. EINTR, unlock, errfile, dir sync */

static void test_os_errors(void){
  const char *path = tpath("os.log");
  rm_log(path);
  stateio_writer *w, *w2;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE | STATEIO_SYNC) == STATEIO_OK);
  /* EINTR from fdatasync (three times) and flock: retried. */
  plan_set("fdatasync", 0, 1, EINTR);
  plan.times = 3;
  int rc = put_txn(w, 1, 3, 30, 0);
  CHECK_MSG(rc == STATEIO_OK && plan.fired == 3, "EINTR from fdatasync is retried (%s, %d)", stateio_errstr(rc), plan.fired);
  plan_set("flock", 0, 1, EINTR);
  plan.times = 2;
  rc = put_txn(w, 2, 1, 30, 0);
  CHECK_MSG(rc == STATEIO_OK && plan.fired == 2, "EINTR from flock is retried (%s, %d)", stateio_errstr(rc), plan.fired);
  /* A failed unlock: the lock is not kept. */
  plan_set("unlock", STATEIO_FILE_LOG, 1, EIO);
  rc = put_txn(w, 3, 2, 30, 0);
  int fired = plan.fired;
  plan_off();
  plan.fired = fired;
  CHECK_MSG(rc == STATEIO_OK && plan.fired == 1, "a commit whose unlock fails succeeds (%s, %d)", stateio_errstr(rc), plan.fired);
  CHECK(!stateio_writer_locked(w));
  CHECK(stateio_writer_open(&w2, path, 0) == STATEIO_OK);
  rc = put_txn(w2, 4, 1, 30, 0);
  CHECK_MSG(rc == STATEIO_OK, "after a failed unlock another writer gets the lock (%s)", stateio_errstr(rc));
  stateio_writer_close(w2);
  CHECK(put_txn(w, 5, 1, 30, 0) == STATEIO_OK);     /* and the first one goes on */
  uint64_t txns[16];
  CHECK(read_txns(path, txns, 16, NULL) == 5);
  /* Errors name the file: the commit file's write, the log's write. */
  plan_set("write", STATEIO_FILE_COMMIT, 1, EIO);
  rc = put_txn(w, 6, 2, 30, 0);
  plan_off();
  char cpath[450];
  snprintf(cpath, sizeof(cpath), "%s-commit", path);
  const char *ef = stateio_writer_errfile(w);
  CHECK_MSG(rc == STATEIO_IOERR && ef && strcmp(ef, cpath) == 0, "a failed write of the commit file names it (%s, %s)",
            stateio_errstr(rc), ef ? ef : "NULL");
  plan_set("write", STATEIO_FILE_LOG, 1, ENOSPC);
  rc = put_txn(w, 7, 2, 30, 0);
  plan_off();
  ef = stateio_writer_errfile(w);
  CHECK_MSG(rc == STATEIO_IOERR && ef && strcmp(ef, path) == 0, "a failed write of the log names it (%s, %s)",
            stateio_errstr(rc), ef ? ef : "NULL");
  CHECK(read_txns(path, txns, 16, NULL) == 5);
  CHECK(put_txn(w, 8, 2, 30, 0) == STATEIO_OK && stateio_writer_errfile(w) == NULL);
  stateio_writer_close(w);
  /* Compaction: a failed write of PATH.compact names it, and nothing changes. */
  {
    CHECK(stateio_writer_open(&w, path, STATEIO_SYNC) == STATEIO_OK);
    CHECK(put_txn(w, 9, 2, 30, 1) == STATEIO_OK);
    stateio_writer_close(w);
    uint64_t size = fsize(path);
    stateio_compact_info info;
    plan_set("write", STATEIO_FILE_COMPACT, 1, EIO);
    rc = stateio_compact(path, 1, &info);
    plan_off();
    CHECK_MSG(rc == STATEIO_IOERR && info.errfile == STATEIO_FILE_COMPACT && fsize(path) == size,
              "compaction: a failed write names PATH.compact (%s, file %d)", stateio_errstr(rc), info.errfile);
    char tmp[450];
    snprintf(tmp, sizeof(tmp), "%s.compact", path);
    CHECK(access(tmp, F_OK) != 0);
    plan_set("fdatasync", STATEIO_FILE_COMMIT, 1, EIO);
    rc = stateio_compact(path, 1, &info);
    plan_off();
    CHECK_MSG(rc == STATEIO_IOERR && info.errfile == STATEIO_FILE_COMMIT && fsize(path) == size,
              "compaction: a failed sync of the commit file names it (%s, file %d)", stateio_errstr(rc), info.errfile);
    CHECK(read_txns(path, txns, 16, NULL) == 7);
  }
  /* A failed directory sync when the log is created: an error. */
  const char *p2 = tpath("dirsync.log");
  rm_log(p2);
  plan_set("syncdir", 0, 1, EIO);
  errno = 0;
  rc = stateio_writer_open(&w, p2, STATEIO_CREATE | STATEIO_SYNC);
  int e = errno;
  plan_off();
  CHECK_MSG(rc == STATEIO_IOERR && e == EIO, "a failed directory sync on create is an error (%s, %d)", stateio_errstr(rc), e);
  if( rc == STATEIO_OK ) stateio_writer_close(w);
  /* And when the commit file is created. */
  rm_log(p2);
  CHECK(stateio_writer_open(&w, p2, STATEIO_CREATE) == STATEIO_OK);
  plan_set("syncdir", 0, 1, EIO);
  rc = put_txn(w, 1, 2, 30, 0);
  plan_off();
  ef = stateio_writer_errfile(w);
  CHECK_MSG(rc == STATEIO_IOERR && ef && strcmp(ef, tmpdir) == 0, "a failed directory sync of the new commit file names the directory (%s, %s)",
            stateio_errstr(rc), ef ? ef : "NULL");
  CHECK(put_txn(w, 2, 2, 30, 0) == STATEIO_OK);
  CHECK(read_txns(p2, txns, 16, NULL) == 1 && txns[0] == 2);
  stateio_writer_close(w);
  rm_log(p2);
  rm_log(path);
}

/* ------------------------------------------------------------ 5. busy timeout, fairness */

static void test_timeout(void){
  const char *path = tpath("busy.log");
  rm_log(path);
  stateio_writer *w, *w2;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE | STATEIO_SYNC) == STATEIO_OK);
  CHECK(put_txn(w, 1, 2, 30, 1) == STATEIO_OK);
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  CHECK(stateio_update(w, "held", 4) == STATEIO_OK);        /* holds the lock */
  CHECK(stateio_writer_open(&w2, path, STATEIO_SYNC) == STATEIO_OK);
  double t0 = now_ms();
  CHECK(stateio_update(w2, "x", 1) == STATEIO_BUSY);
  double dt0 = now_ms() - t0;
  stateio_writer_set_timeout(w2, 200);
  t0 = now_ms();
  int rc = stateio_update(w2, "x", 1);
  double dt = now_ms() - t0;
  CHECK_MSG(rc == STATEIO_BUSY && dt >= 190 && dt0 < 50, "timeout: BUSY after waiting %.0f ms (200 asked; none: %.1f ms)", dt, dt0);
  stateio_compact_info info;
  t0 = now_ms();
  rc = stateio_compact_wait(path, 1, 150, &info);
  dt = now_ms() - t0;
  CHECK_MSG(rc == STATEIO_BUSY && dt >= 140, "timeout: compaction BUSY after %.0f ms (150 asked)", dt);
  stateio_writer_rollback(w);
  /* A holder in another process that lets go after 100 ms: the waiter gets in. */
  pid_t pid = fork();
  if( pid == 0 ){
    stateio_writer *h;
    if( stateio_writer_open(&h, path, 0) ) _exit(2);
    if( stateio_writer_begin(h) || stateio_update(h, "h", 1) ) _exit(3);
    sleep_ms(100);
    stateio_writer_rollback(h);
    stateio_writer_close(h);
    _exit(0);
  }
  sleep_ms(30);
  stateio_writer_set_timeout(w2, 2000);
  t0 = now_ms();
  rc = put_txn(w2, 2, 2, 30, 0);
  dt = now_ms() - t0;
  int st;
  waitpid(pid, &st, 0);
  CHECK_MSG(rc == STATEIO_OK && dt >= 40, "timeout: the waiting writer commits once the holder lets go (%s after %.0f ms)",
            stateio_errstr(rc), dt);
  stateio_writer_close(w2);
  stateio_writer_close(w);

  /* Three writer processes commit in a loop; compaction with a timeout gets in every time. */
  volatile int *stop = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  *stop = 0;
  pid_t kids[3];
  for(int i = 0; i < 3; i++){
    kids[i] = fork();
    if( kids[i] == 0 ){
      stateio_writer *k;
      if( stateio_writer_open(&k, path, STATEIO_SYNC) ) _exit(2);
      stateio_writer_set_timeout(k, 10000);
      for(uint64_t t = 1000 * (uint64_t)(i + 1); !*stop; t++){
        int r = put_txn(k, t, 4, 40, t % 10 == 0);
        if( r != STATEIO_OK ) _exit(3);
      }
      stateio_writer_close(k);
      _exit(0);
    }
  }
  sleep_ms(100);
  int ok = 0, tries = 5;
  double worst = 0, without = 0;
  int busy_without = 0;
  for(int i = 0; i < 20; i++){
    if( stateio_compact(path, 1, &info) == STATEIO_BUSY ) busy_without++;
    sleep_ms(1);
  }
  for(int i = 0; i < tries; i++){
    t0 = now_ms();
    rc = stateio_compact_wait(path, 1, 3000, &info);
    dt = now_ms() - t0;
    if( rc == STATEIO_OK ) ok++;
    if( dt > worst ) worst = dt;
    sleep_ms(50);
  }
  (void)without;
  *stop = 1;
  int bad = 0;
  for(int i = 0; i < 3; i++){
    waitpid(kids[i], &st, 0);
    if( !WIFEXITED(st) || WEXITSTATUS(st) != 0 ) bad++;
  }
  printf("timeout: with 3 writers committing, compaction without a timeout was busy %d times of 20;"
         " with a 3 s timeout it got in %d times of %d (the longest wait %.0f ms)\n", busy_without, ok, tries, worst);
  CHECK_MSG(ok == tries, "timeout: with 3 busy writers compaction succeeds within its timeout (%d of %d)", ok, tries);
  CHECK_MSG(bad == 0, "timeout: the writers never failed (%d)", bad);
  {
    /* Every transaction in the log is whole. */
    uint64_t txns[1];
    CHECK(read_txns(path, txns, 0, NULL) > 0);
  }
  munmap((void*)stop, 4096);
  rm_log(path);
}

/* ------------------------------------------------------------ 5b. STATEIO_EXCLUSIVE: the lock kept between commits */

static void test_exclusive(void){
  const char *path = tpath("excl.log");
  rm_log(path);
  stateio_writer *w, *w2;
  uint64_t txns[64];
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE | STATEIO_EXCLUSIVE) == STATEIO_OK);
  CHECK(stateio_writer_open(&w2, path, 0) == STATEIO_OK);
  /* Before its first append the exclusive writer holds nothing. */
  CHECK_MSG(put_txn(w2, 1, 1, 30, 1) == STATEIO_OK, "exclusive: no lock before the first append");
  CHECK(put_txn(w, 2, 1, 30, 0) == STATEIO_OK);
  /* Between its commits, single entries and transactions, it keeps the lock. */
  for(uint64_t t = 3; t < 40; t++){
    int rc = put_txn(w, t, t % 3 ? 1 : 4, 40, t % 10 == 0);
    CHECK_MSG(rc == STATEIO_OK, "exclusive: commit %llu (%s)", (unsigned long long)t, stateio_errstr(rc));
    if( t % 7 == 0 ){
      rc = put_txn(w2, 1000 + t, 1, 30, 0);
      CHECK_MSG(rc == STATEIO_BUSY, "exclusive: another writer gets BUSY between commits (%s)", stateio_errstr(rc));
      stateio_compact_info info;
      rc = stateio_compact_wait(path, 1, 0, &info);
      CHECK_MSG(rc == STATEIO_BUSY, "exclusive: compaction gets BUSY (%s)", stateio_errstr(rc));
      /* Readers are not held back: every commit so far is there, in order. */
      int n = read_txns(path, txns, 64, NULL);
      CHECK_MSG(n == (int)t && txns[0] == 1 && txns[n - 1] == t, "exclusive: a reader sees all %llu commits (%d)",
                (unsigned long long)t, n);
    }
  }
  /* A rolled-back transaction leaves nothing and the lock is still ours. */
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  CHECK(stateio_update(w, "gone", 4) == STATEIO_OK);
  stateio_writer_rollback(w);
  CHECK(put_txn(w2, 2000, 1, 30, 0) == STATEIO_BUSY);
  CHECK(put_txn(w, 40, 2, 30, 0) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  /* Closed: the lock is free, and the other writer appends after all of it. */
  int rc = put_txn(w2, 41, 1, 30, 0);
  CHECK_MSG(rc == STATEIO_OK, "exclusive: close releases the lock (%s)", stateio_errstr(rc));
  int n = read_txns(path, txns, 64, NULL);
  CHECK_MSG(n == 41 && txns[39] == 40 && txns[40] == 41, "exclusive: 41 transactions in order after close (%d)", n);
  stateio_writer_close(w2);
  /* A writer that dies holding it lets the next one in (the kernel drops flock). */
  pid_t pid = fork();
  if( pid == 0 ){
    stateio_writer *k;
    if( stateio_writer_open(&k, path, STATEIO_EXCLUSIVE) || put_txn(k, 42, 1, 30, 0) ) _exit(2);
    _exit(0);                 /* no close */
  }
  int st;
  waitpid(pid, &st, 0);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CHECK(stateio_writer_open(&w2, path, 0) == STATEIO_OK);
  rc = put_txn(w2, 43, 1, 30, 0);
  CHECK_MSG(rc == STATEIO_OK, "exclusive: a dead exclusive writer's lock is gone (%s)", stateio_errstr(rc));
  n = read_txns(path, txns, 64, NULL);
  CHECK_MSG(n == 43 && txns[41] == 42 && txns[42] == 43, "exclusive: 43 transactions (%d)", n);
  stateio_writer_close(w2);
  rm_log(path);
}

/* ------------------------------------------------------------ 6. the commit file's life */

static int copy_file(const char *from, const char *to){
  char cmd[1000];
  snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
  return system(cmd);
}

static int compact_rename_checked, compact_rename_ok;
static int rename_hook(void *arg, stateio_os_op *o){
  const char *path = arg;
  if( !o->after && strcmp(o->op, "rename") == 0 && o->file == STATEIO_FILE_COMPACT ){
    /* At the rename, PATH-commit already holds the new log's record, done, synced. */
    char c[450];
    snprintf(c, sizeof(c), "%s-commit", path);
    int cfd = open(c, O_RDONLY), nfd = open(o->path, O_RDONLY);
    unsigned char r[64];
    int64_t id = 0, rid;
    struct stat st;
    if( cfd >= 0 && nfd >= 0 && pread(cfd, r, 64, 0) == 64 && stateio_log_id(nfd, &id) == STATEIO_OK && fstat(nfd, &st) == 0 ){
      uint64_t l0, l1;
      memcpy(&rid, r + 24, 8);
      memcpy(&l0, r + 32, 8);
      memcpy(&l1, r + 40, 8);
      compact_rename_ok = rid == id && r[12] == 2 && l0 == 0 && l1 == (uint64_t)st.st_size;
    }
    compact_rename_checked = 1;
    if( cfd >= 0 ) close(cfd);
    if( nfd >= 0 ) close(nfd);
  }
  return 0;
}

/* Kill the process at the log's first fdatasync (after its write). */
static int kill_at_sync(void *arg, stateio_os_op *o){
  (void)arg;
  if( !o->after && o->file == STATEIO_FILE_LOG && strcmp(o->op, "fdatasync") == 0 ) kill(getpid(), SIGKILL);
  return 0;
}

static void test_commit_file_life(void){
  const char *path = tpath("life.log");
  char cpath[450];
  snprintf(cpath, sizeof(cpath), "%s-commit", path);
  rm_log(path);
  stateio_writer *w;
  stateio_image img;
  uint64_t txns[16];
  /* Missing: a log written without one (single entries, no sync) is taken as it is. */
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(put_txn(w, 1, 1, 40, 1) == STATEIO_OK);
  CHECK(put_txn(w, 2, 1, 40, 0) == STATEIO_OK);
  stateio_writer_close(w);
  CHECK_MSG(access(cpath, F_OK) != 0, "single entries without sync make no commit file");
  CHECK(stateio_open_image(path, &img) == STATEIO_OK && img.file_size == fsize(path) && !img.journaled);
  stateio_close_image(&img);
  /* The first transaction makes it; then the log is journaled. */
  CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
  CHECK(put_txn(w, 3, 3, 40, 0) == STATEIO_OK);
  stateio_writer_close(w);
  struct stat st;
  CHECK_MSG(stat(cpath, &st) == 0 && st.st_size == 1024, "a transaction makes the commit file (1024 bytes)");
  CHECK(stateio_open_image(path, &img) == STATEIO_OK && img.file_size == fsize(path) && img.journaled);
  stateio_close_image(&img);
  CHECK(read_txns(path, txns, 16, NULL) == 3);
  /* Stale: a copy of the log and its commit file is another log; the record is ignored, then replaced. */
  {
    const char *cp = tpath("copy.log");
    char ccp[450];
    snprintf(ccp, sizeof(ccp), "%s-commit", cp);
    rm_log(cp);
    CHECK(copy_file(path, cp) == 0 && copy_file(cpath, ccp) == 0);
    CHECK(stateio_open_image(cp, &img) == STATEIO_OK && img.file_size == fsize(cp) && !img.journaled);
    stateio_close_image(&img);
    /*
    ** Even a single unsynced commit, which needs no record, makes it the
    ** log's own (until then the writer looks its path up at every commit);
    ** the next one writes nothing to the commit file.
    */
    CHECK(stateio_writer_open(&w, cp, 0) == STATEIO_OK);
    plan_set(NULL, 0, 0, 0);
    plan.record = 1;
    CHECK(put_txn(w, 4, 1, 40, 0) == STATEIO_OK);
    int adopted = strstr(plan.trace, "c:write") != NULL;
    char first[sizeof(plan.trace)];
    snprintf(first, sizeof(first), "%s", plan.trace);
    plan.tlen = 0;
    plan.trace[0] = 0;
    stat_counted = cp;
    stat_count = 0;
    CHECK(put_txn(w, 5, 1, 40, 0) == STATEIO_OK);
    stat_counted = NULL;
    int again = strstr(plan.trace, "c:") != NULL;
    CHECK_MSG(adopted && !again, "a stale record is made the log's own once (first commit: %s; second: %s)", first, plan.trace);
    CHECK_MSG(stat_count == 0, "then the path is not looked up at each commit (%d stat calls)", stat_count);
    plan_off();
    CHECK(stateio_open_image(cp, &img) == STATEIO_OK && img.journaled && img.file_size == fsize(cp));
    stateio_close_image(&img);
    CHECK(put_txn(w, 6, 2, 40, 0) == STATEIO_OK);
    stateio_writer_close(w);
    CHECK(stateio_open_image(cp, &img) == STATEIO_OK && img.journaled);
    stateio_close_image(&img);
    CHECK(read_txns(cp, txns, 16, NULL) == 6);
    rm_log(cp);
  }
  /* Damaged: a byte of the record, or the wrong size: a clear error naming the commit file. */
  {
    int fd = open(cpath, O_RDWR);
    unsigned char b;
    CHECK(fd >= 0 && pread(fd, &b, 1, 33) == 1);
    b ^= 0x40;
    CHECK(pwrite(fd, &b, 1, 33) == 1);
    int rc = stateio_open_image(path, &img);
    CHECK_MSG(rc == STATEIO_CORRUPT_COMMIT, "damaged record: the reader says %s", stateio_errstr(rc));
    CHECK(strcmp(stateio_errstr(STATEIO_CORRUPT_COMMIT), "corrupt commit file") == 0);
    CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
    rc = put_txn(w, 4, 2, 40, 0);
    const char *ef = stateio_writer_errfile(w);
    CHECK_MSG(rc == STATEIO_CORRUPT_COMMIT && ef && strcmp(ef, cpath) == 0, "damaged record: the writer says %s, naming %s",
              stateio_errstr(rc), ef ? ef : "NULL");
    stateio_writer_close(w);
    stateio_compact_info info;
    rc = stateio_compact(path, 1, &info);
    CHECK_MSG(rc == STATEIO_CORRUPT_COMMIT && info.errfile == STATEIO_FILE_COMMIT, "damaged record: compaction says %s", stateio_errstr(rc));
    b ^= 0x40;
    CHECK(pwrite(fd, &b, 1, 33) == 1);
    CHECK(ftruncate(fd, 100) == 0);
    rc = stateio_open_image(path, &img);
    CHECK_MSG(rc == STATEIO_CORRUPT_COMMIT, "a commit file of the wrong size: %s", stateio_errstr(rc));
    CHECK(ftruncate(fd, 1024) == 0);
    close(fd);
    CHECK(read_txns(path, txns, 16, NULL) == 3);
  }
  /* Read-only: a commit in flight left by a killed writer; a reader that cannot write decides in memory. */
  {
    pid_t pid = fork();
    if( pid == 0 ){
      stateio_writer *k;
      if( stateio_writer_open(&k, path, STATEIO_SYNC) ) _exit(2);
      /* Die right before the log's sync: the record in flight, the bytes written. */
      stateio_set_os_hook(kill_at_sync, NULL);
      put_txn(k, 5, 3, 40, 0);
      _exit(3);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFSIGNALED(status), "a writer killed in its commit (%d)", status);
    unsigned state = 0;
    uint64_t l0 = 0;
    uint64_t size = fsize(path);
    CHECK(raw_record(path, &state, &l0) && state == 1 && size > l0);
    plan_set("open", 0, 1, EROFS);
    plan.times = 100;
    int rc = stateio_open_image(path, &img);
    plan_off();
    CHECK_MSG(rc == STATEIO_OK && img.file_size == size, "read-only reader: the commit is whole, so it is seen (%llu of %llu): %s",
              (unsigned long long)img.file_size, (unsigned long long)size, stateio_errstr(rc));
    if( rc == STATEIO_OK ) stateio_close_image(&img);
    CHECK_MSG(fsize(path) == size && raw_record(path, &state, &l0) && state == 1, "read-only reader: nothing changed");
    /* Cut one byte off: now the commit is torn; the read-only reader sees the log without it. */
    CHECK(truncate(path, (off_t)size - 1) == 0);
    plan_set("open", 0, 1, EACCES);
    plan.times = 100;
    rc = stateio_open_image(path, &img);
    plan_off();
    CHECK_MSG(rc == STATEIO_OK && img.file_size == l0, "read-only reader: a torn commit is not seen (%llu, want %llu)",
              (unsigned long long)img.file_size, (unsigned long long)l0);
    if( rc == STATEIO_OK ) stateio_close_image(&img);
    CHECK(fsize(path) == size - 1);
    /* A reader that may write recovers it: cut back, synced, done. */
    CHECK(stateio_open_image(path, &img) == STATEIO_OK && img.file_size == l0);
    stateio_close_image(&img);
    CHECK_MSG(fsize(path) == l0 && raw_record(path, &state, &l0) && state == 2, "a reader recovers a dead writer's torn commit");
    CHECK(read_txns(path, txns, 16, NULL) == 3);
  }
  /* Compaction gives the new log its record before the rename. */
  {
    CHECK(stateio_writer_open(&w, path, STATEIO_SYNC) == STATEIO_OK);
    CHECK(put_txn(w, 6, 2, 40, 1) == STATEIO_OK);
    CHECK(put_txn(w, 7, 2, 40, 0) == STATEIO_OK);
    stateio_set_os_hook(rename_hook, (void*)path);
    stateio_compact_info info;
    int rc = stateio_compact(path, 1, &info);
    stateio_set_os_hook(NULL, NULL);
    CHECK_MSG(rc == STATEIO_OK && info.compacted && compact_rename_checked && compact_rename_ok,
              "compaction: at the rename the commit file holds the new log's record (%s, %d, %d)",
              stateio_errstr(rc), compact_rename_checked, compact_rename_ok);
    CHECK(stateio_open_image(path, &img) == STATEIO_OK && img.journaled && img.file_size == fsize(path));
    stateio_close_image(&img);
    CHECK(put_txn(w, 8, 3, 40, 0) == STATEIO_OK);      /* the writer follows the new log */
    stateio_writer_close(w);
    int n = read_txns(path, txns, 16, NULL);
    CHECK_MSG(n == 3 && txns[0] == 6 && txns[2] == 8, "after compaction: transactions 6, 7, 8 (%d)", n);
  }
  rm_log(path);
}

/* ------------------------------------------------------------ long names */

/* tmpdir/nnn...n.log, a name of len bytes (the last component). */
static const char *long_name(size_t len){
  char name[300];
  memset(name, 'n', len - 4);
  memcpy(name + len - 4, ".log", 5);
  return tpath(name);
}

/*
** A log's own files add to its name ("-commit", "-commit.tmp", ".compact").
** A name that leaves no room for them: writers and compaction refuse it
** before anything is made (it was the first transaction that failed, and
** its error named a freed buffer); readers read such a log (the reference
** may have written it), as one without a commit file.
*/
static void test_long_name(void){
  long max = pathconf(tmpdir, _PC_NAME_MAX);
  if( max <= 0 || max > 280 ) max = 255;
  uint64_t txns[8];
  /* The log's name fits, not its commit file's; then only the .tmp does not fit. */
  size_t tight[2] = { (size_t)max - 5, (size_t)max - 9 };
  for(int i = 0; i < 2; i++){
    const char *path = long_name(tight[i]);
    unlink(path);
    stateio_writer *w = NULL;
    errno = 0;
    int rc = stateio_writer_open(&w, path, STATEIO_CREATE);
    int e = errno;
    CHECK_MSG(rc == STATEIO_IOERR && e == ENAMETOOLONG && access(path, F_OK) != 0,
              "a name of %zu bytes: the writer refuses it before making the file (%s, %s)",
              tight[i], stateio_errstr(rc), strerror(e));
    if( rc == STATEIO_OK ) stateio_writer_close(w);
    /* Written by another program (here: a writer on a descriptor). */
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    if( fd < 0 ) continue;
    CHECK(stateio_writer_open_fd(&w, fd, 0, 0, 0) == STATEIO_OK);
    CHECK(put_txn(w, 1, 1, 40, 1) == STATEIO_OK);
    CHECK(put_txn(w, 2, 1, 40, 0) == STATEIO_OK);
    stateio_writer_close(w);
    close(fd);
    uint64_t size = fsize(path);
    stateio_image img;
    rc = stateio_open_image(path, &img);
    CHECK_MSG(rc == STATEIO_OK && img.file_size == size && !img.journaled,
              "a name of %zu bytes: read as a log without a commit file (%s)", tight[i], stateio_errstr(rc));
    if( rc == STATEIO_OK ) stateio_close_image(&img);
    CHECK(read_txns(path, txns, 8, NULL) == 2);
    stateio_compact_info info;
    errno = 0;
    rc = stateio_compact(path, 1, &info);
    e = errno;
    CHECK_MSG(rc == STATEIO_IOERR && e == ENAMETOOLONG && info.errfile == STATEIO_FILE_COMMIT
              && !info.compacted && fsize(path) == size,
              "a name of %zu bytes: compaction refuses it, naming the commit file (%s, %s, %d)",
              tight[i], stateio_errstr(rc), strerror(e), info.errfile);
    CHECK(read_txns(path, txns, 8, NULL) == 2);
    unlink(path);
  }
  /* The longest name with room for them all: transactions and compaction work. */
  {
    const char *path = long_name((size_t)max - 11);
    rm_log(path);
    stateio_writer *w = NULL;
    CHECK(stateio_writer_open(&w, path, STATEIO_CREATE | STATEIO_SYNC) == STATEIO_OK);
    if( w ){
      CHECK(put_txn(w, 1, 3, 40, 1) == STATEIO_OK);
      CHECK(put_txn(w, 2, 3, 40, 1) == STATEIO_OK);
      stateio_writer_close(w);
    }
    stateio_compact_info info;
    int rc = stateio_compact(path, 1, &info);
    CHECK_MSG(rc == STATEIO_OK && info.compacted, "a name of %ld bytes: compaction (%s)", max - 11, stateio_errstr(rc));
    int n = read_txns(path, txns, 8, NULL);
    CHECK_MSG(n == 1 && txns[0] == 2, "a name of %ld bytes: the last epoch's transaction (%d)", max - 11, n);
    rm_log(path);
  }
}

/* ------------------------------------------------------------ the commit file's temporary name */

/*
** A commit file that cannot be made under its temporary name: the writer's
** error names it. 2026-12-01: the name was freed before it was returned
** (ASan: heap-use-after-free in stateio_writer_errfile's caller).
*/
static void test_commit_tmp_fails(void){
  uint64_t txns[8];
  /* The commit file's temporary name failing: the writer names it, in its own memory. */
  {
    const char *path = tpath("tmpfail.log");
    char ctmp[620];
    snprintf(ctmp, sizeof(ctmp), "%s-commit.tmp", path);
    rm_log(path);
    stateio_writer *w = NULL;
    CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
    if( w ){
      plan_set("create", STATEIO_FILE_COMMIT, 1, EACCES);
      int rc = put_txn(w, 1, 2, 40, 0);
      plan_off();
      const char *ef = stateio_writer_errfile(w);
      CHECK_MSG(rc == STATEIO_IOERR && ef && strcmp(ef, ctmp) == 0,
                "a commit file that cannot be made: the error names %s (%s)", ef ? ef : "NULL", stateio_errstr(rc));
      CHECK(put_txn(w, 2, 2, 40, 0) == STATEIO_OK);
      stateio_writer_close(w);
    }
    CHECK(read_txns(path, txns, 8, NULL) == 1 && txns[0] == 2);
    rm_log(path);
  }
}

/* ------------------------------------------------------------ a reader between two commits */

/*
** A reader finds a commit in flight; reading the record once more it sees
** the commit done; and before it reads the log's size, the writer has
** begun its next batch and spilled a chunk of it. The size must come with
** the record it belongs to (the seqlock), not after it: 2026-12-01, under
** valgrind a reader saw part of a spilled transaction this way.
**
** commit_test is linked with --wrap=pread: the reader's third read of the
** record (72 bytes at offset 0; the seqlock's two, then the look once
** more) is where the writer, in this process on its own descriptor, does
** the two steps, before and after that read.
*/
#define SIO_TEST_REC_SIZE 72          /* the commit record (doc/COMMIT.md); its state is the u16 at 12 */
static struct { int armed, n, reached; stateio_writer *w; } race;

/* Begin transaction t and append its n entries of len bytes, leaving it open. */
static void open_txn(stateio_writer *w, uint64_t t, uint32_t n, size_t len){
  unsigned char buf[4096];
  CHECK(len <= sizeof(buf) && stateio_writer_begin(w) == STATEIO_OK);
  for(uint32_t k = 0; k < n; k++){
    fill(buf, len, t, k, n);
    CHECK(stateio_update(w, buf, len) == STATEIO_OK);
  }
}

ssize_t __real_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off){
  if( !race.armed || n != SIO_TEST_REC_SIZE || off != 0 || ++race.n != 3 ) return __real_pread(fd, buf, n, off);
  race.armed = 0;
  CHECK(stateio_writer_commit(race.w) == STATEIO_OK);          /* the commit in flight is done */
  ssize_t got = __real_pread(fd, buf, n, off);
  race.reached = got == (ssize_t)n && ((unsigned char*)buf)[12] == 2;   /* and the reader saw it done */
  open_txn(race.w, 3, 8, 1000);                                /* the next batch spills a chunk */
  return got;
}

static void test_view_race(void){
  const char *path = tpath("race.log");
  rm_log(path);
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(put_txn(w, 1, 8, 40, 1) == STATEIO_OK);
  stateio_writer_set_spill(w, 4096);
  open_txn(w, 2, 2, 100);
  CHECK(stateio_writer_prepare(w) == STATEIO_OK);     /* transaction 2 in flight, its end known */
  uint64_t end2 = fsize(path);
  memset(&race, 0, sizeof(race));
  race.w = w;
  race.armed = 1;
  stateio_image img;
  int rc = stateio_open_image(path, &img);
  race.armed = 0;
  uint64_t seen = rc == STATEIO_OK ? img.file_size : 0;
  if( rc == STATEIO_OK ) stateio_close_image(&img);
  CHECK_MSG(race.reached, "the interleaving is reached: the reader's third read of the record saw it done (%d reads)", race.n);
  CHECK_MSG(fsize(path) > end2, "the next batch has spilled (%llu bytes, %llu committed)",
            (unsigned long long)fsize(path), (unsigned long long)end2);
  CHECK_MSG(rc == STATEIO_OK && seen == end2, "the reader sees the log up to the commit done (%s, %llu bytes, want %llu)",
            stateio_errstr(rc), (unsigned long long)seen, (unsigned long long)end2);
  stateio_writer_rollback(w);
  stateio_writer_close(w);
  uint64_t txns[8];
  CHECK(read_txns(path, txns, 8, NULL) == 2);
  rm_log(path);
}

/* ------------------------------------------------------------ a mark from another clock */

/* CLOCK_MONOTONIC in ms, the clock of the waiter's mark. */
static uint64_t mono_ms(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void put_le(unsigned char *p, uint64_t v, int n){
  for(int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Write a waiter's mark (nobody's token) into the commit file cpath. */
static void put_mark(const char *cpath, uint64_t since, uint64_t until){
  unsigned char m[32];
  memset(m, 0, sizeof(m));
  put_le(m, 0x74696177u, 4);                            /* "wait" */
  put_le(m + 8, 0x1234567u, 8);
  put_le(m + 16, since, 8);
  put_le(m + 24, until, 8);
  int fd = open(cpath, O_RDWR);
  CHECK(fd >= 0 && pwrite(fd, m, sizeof(m), 512) == (ssize_t)sizeof(m));
  if( fd >= 0 ) close(fd);
}

/*
** A waiter's mark left by a process that waited when the machine lost its
** power (or on another machine over a network file system) holds times
** of a clock this one cannot compare with: CLOCK_MONOTONIC starts again at
** boot. A mark that says it lasts longer than any mark can (a second from
** its last renewal) is not a live waiter's. 2026-12-01: a writer without a
** timeout yielded to it at every try and got STATEIO_BUSY, for as long as
** the old machine had been up.
*/
static void test_foreign_mark(void){
  const char *path = tpath("mark.log");
  char cpath[620];
  snprintf(cpath, sizeof(cpath), "%s-commit", path);
  rm_log(path);
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(put_txn(w, 1, 2, 40, 0) == STATEIO_OK);         /* makes the commit file */
  stateio_writer_close(w);
  static const struct { int64_t since, until; const char *what; } marks[] = {
    { 5 * 86400000LL, 5 * 86400000LL + 1000, "from before a reboot (its clock 5 days ahead)" },
    { -1000, 3 * 86400000LL, "lasting three days" },
    { 10000, 11000, "from a clock ahead of this one" },
  };
  for(size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++){
    uint64_t now = mono_ms();
    put_mark(cpath, (uint64_t)((int64_t)now + marks[i].since), (uint64_t)((int64_t)now + marks[i].until));
    CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
    int rc = put_txn(w, 2 + i, 1, 40, 0);
    stateio_writer_close(w);
    CHECK_MSG(rc == STATEIO_OK, "a mark %s: a writer without a timeout commits (%s)", marks[i].what, stateio_errstr(rc));
  }
  /* A live mark (a waiter that renews it) is still let in first. */
  {
    uint64_t now = mono_ms();
    put_mark(cpath, now - 50, now + 900);
    CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
    int rc = put_txn(w, 9, 1, 40, 0);
    stateio_writer_close(w);
    CHECK_MSG(rc == STATEIO_BUSY, "a live mark: a writer without a timeout lets the waiter in (%s)", stateio_errstr(rc));
  }
  rm_log(path);
}

/* ------------------------------------------------------------ a failure at every step */

/*
** One failure (EIO, or ENOSPC) at every operation of a workload in turn,
** or every write failing from there on (a full disk), as SQLite's I/O
** error tests do: transactions, a single append, a batch
** that spills, a compaction, and transactions after it. After each run:
** no transaction is partial; every one acknowledged is there (the first,
** in the epoch compaction drops, may be gone once compaction got as far
** as its rename); none whose commit failed is there; an error names one of
** the log's own files (the writer's errfile is its own memory: ASan sees
** a freed one); nothing is left beside the log but its commit file; and a
** new writer can commit.
*/
/* Whether the writer's error file is one of the log's own names. */
static int known_errfile(stateio_writer *w, const char *path){
  const char *ef = stateio_writer_errfile(w);
  if( !ef ) return 1;
  char c[620], t[620];
  snprintf(c, sizeof(c), "%s-commit", path);
  snprintf(t, sizeof(t), "%s-commit.tmp", path);
  return strcmp(ef, path) == 0 || strcmp(ef, c) == 0 || strcmp(ef, t) == 0 || strcmp(ef, tmpdir) == 0;
}

/* The workload; acked[t] = 1 for each transaction t whose commit returned OK, -1 when it failed. */
static void sweep_run(const char *path, int flags, int acked[8], char *why, size_t whylen){
  stateio_writer *w = NULL;
  why[0] = 0;
  memset(acked, 0, 8 * sizeof(int));
  if( stateio_writer_open(&w, path, STATEIO_CREATE | flags) != STATEIO_OK ) return;
  static const struct { uint32_t n; size_t len; int snap; } txn[8] = {
    { 0, 0, 0 }, { 2, 60, 0 }, { 3, 80, 1 }, { 1, 50, 0 }, { 12, 1000, 0 }, { 2, 70, 0 }, { 1, 40, 0 }, { 0, 0, 0 }
  };
  stateio_writer_set_spill(w, 4096);
  for(int t = 1; t <= 6; t++){
    if( t == 5 ){
      stateio_compact_info info;
      int rc = stateio_compact(path, 1, &info);
      if( rc != STATEIO_OK && (info.errfile < STATEIO_FILE_LOG || info.errfile > STATEIO_FILE_DIR) ){
        snprintf(why, whylen, "compaction failed (%s) naming file %d", stateio_errstr(rc), info.errfile);
      }
    }
    int rc = put_txn(w, (uint64_t)t, txn[t].n, txn[t].len, txn[t].snap);
    if( rc != STATEIO_OK ) stateio_writer_rollback(w);
    acked[t] = rc == STATEIO_OK ? 1 : -1;
    if( rc != STATEIO_OK && !known_errfile(w, path) && !why[0] ){
      snprintf(why, whylen, "transaction %d failed (%s) naming %s", t, stateio_errstr(rc), stateio_writer_errfile(w));
    }
  }
  stateio_writer_close(w);
}

static void test_fault_sweep(void){
  const char *path = tpath("sweep.log");
  char cpath[620];
  snprintf(cpath, sizeof(cpath), "%s-commit", path);
  int acked[8];
  char why[700];
  /* flags, errno, and whether every write fails from there on (a full disk) */
  static const int modes[][3] = { { STATEIO_SYNC, EIO, 0 }, { 0, EIO, 0 }, { STATEIO_SYNC, ENOSPC, 0 },
                                  { STATEIO_SYNC, ENOSPC, 1 }, { 0, ENOSPC, 1 } };
  int runs = 0, failed_runs = 0;
  for(size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++){
    /* A dry run counts the operations. */
    rm_log(path);
    sweep_arm(0, 0, 0);
    sweep_run(path, modes[m][0], acked, why, sizeof(why));
    int total = sweep_disarm();
    CHECK_MSG(total > 50 && acked[1] == 1 && acked[6] == 1, "the workload runs (%d operations)", total);
    for(int k = 1; k <= total; k++){
      rm_log(path);
      sweep_arm(k, modes[m][1], modes[m][2]);
      sweep_run(path, modes[m][0], acked, why, sizeof(why));
      sweep_disarm();
      runs++;
      uint64_t txns[16];
      int n = access(path, F_OK) == 0 ? read_txns(path, txns, 16, NULL) : 0;
      int present[8] = { 0 };
      for(int i = 0; i < n && i < 16; i++) if( txns[i] < 8 ) present[txns[i]] = 1;
      char bad[1000] = "";
      if( why[0] ) snprintf(bad, sizeof(bad), "%s", why);
      else if( n < 0 ) snprintf(bad, sizeof(bad), "a transaction is partial or out of order");
      for(int t = 1; t <= 6 && !bad[0]; t++){
        if( acked[t] == 1 && !present[t] && t != 1 ) snprintf(bad, sizeof(bad), "acknowledged transaction %d is missing", t);
        if( acked[t] == -1 && present[t] ) snprintf(bad, sizeof(bad), "transaction %d, whose commit failed, is there", t);
      }
      if( !bad[0] ){
        DIR *d = opendir(tmpdir);
        struct dirent *de;
        while( d && (de = readdir(d)) != NULL ){
          if( strncmp(de->d_name, "sweep.log", 9) == 0 && strcmp(de->d_name, "sweep.log") != 0
           && strcmp(de->d_name, "sweep.log-commit") != 0 ){
            snprintf(bad, sizeof(bad), "left beside the log: %s", de->d_name);
          }
        }
        if( d ) closedir(d);
      }
      if( !bad[0] ){
        stateio_writer *w;
        int rc = stateio_writer_open(&w, path, STATEIO_CREATE | STATEIO_SYNC);
        if( rc == STATEIO_OK ){
          rc = put_txn(w, 7, 2, 30, 0);
          stateio_writer_close(w);
        }
        int n2 = read_txns(path, txns, 16, NULL);
        if( rc != STATEIO_OK || n2 < 1 || txns[n2 - 1] != 7 ){
          snprintf(bad, sizeof(bad), "a new writer then: %s, %d transactions", stateio_errstr(rc), n2);
        }
      }
      if( bad[0] ){
        failed_runs++;
        CHECK_MSG(0, "%s%s at operation %d of %d (%s): %s", strerror(modes[m][1]),
                  modes[m][2] ? " for every write" : "", k, total, modes[m][0] ? "STATEIO_SYNC" : "no sync", bad);
      }
    }
  }
  printf("fault sweep: %d runs, %d wrong\n", runs, failed_runs);
  CHECK(runs > 250);
  rm_log(path);
}

/* ------------------------------------------------------------ 7. two-phase */

static void test_two_phase(void){
  const char *path = tpath("twophase.log");
  rm_log(path);
  stateio_writer *w;
  uint64_t txns[16];
  stateio_image img;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE | STATEIO_SYNC) == STATEIO_OK);
  CHECK(put_txn(w, 1, 2, 50, 1) == STATEIO_OK);
  uint64_t size1 = fsize(path);
  unsigned char b[64];
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  for(uint32_t k = 0; k < 3; k++){ fill(b, sizeof(b), 2, k, 3); CHECK(stateio_update(w, b, sizeof(b)) == STATEIO_OK); }
  CHECK(stateio_writer_prepare(w) == STATEIO_OK);
  CHECK(stateio_writer_locked(w) && fsize(path) > size1);
  CHECK(stateio_update(w, b, sizeof(b)) == STATEIO_MISUSE);
  /* Written and synced, but not visible. */
  CHECK(stateio_open_image(path, &img) == STATEIO_OK && img.file_size == size1);
  stateio_close_image(&img);
  CHECK(stateio_writer_commit(w) == STATEIO_OK && !stateio_writer_locked(w));
  CHECK(read_txns(path, txns, 16, NULL) == 2);
  /* Prepared, then rolled back: nothing left. */
  uint64_t size2 = fsize(path);
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  for(uint32_t k = 0; k < 2; k++){ fill(b, sizeof(b), 3, k, 2); CHECK(stateio_update(w, b, sizeof(b)) == STATEIO_OK); }
  CHECK(stateio_writer_prepare(w) == STATEIO_OK);
  stateio_writer_rollback(w);
  CHECK(!stateio_writer_locked(w) && fsize(path) == size2);
  CHECK(read_txns(path, txns, 16, NULL) == 2);
  /* A prepare that fails (its sync): the batch is gone, the lock released. */
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  fill(b, sizeof(b), 4, 0, 1);
  CHECK(stateio_update(w, b, sizeof(b)) == STATEIO_OK);
  plan_set("fdatasync", STATEIO_FILE_LOG, 1, EIO);
  int rc = stateio_writer_prepare(w);
  plan_off();
  CHECK(rc == STATEIO_IOERR && !stateio_writer_locked(w) && fsize(path) == size2);
  /* An empty prepared batch. */
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  CHECK(stateio_writer_prepare(w) == STATEIO_OK);
  CHECK(stateio_writer_commit(w) == STATEIO_OK);
  CHECK(put_txn(w, 5, 2, 50, 0) == STATEIO_OK);
  int n = read_txns(path, txns, 16, NULL);
  CHECK_MSG(n == 3 && txns[2] == 5, "two-phase: transactions 1, 2, 5 (%d)", n);
  stateio_writer_close(w);
  rm_log(path);
}

/* ------------------------------------------------------------ 8. a commit file appears */

/*
** In the child: write all but the last byte of the log write, then die,
** as a writer killed in the middle of its batch's pwrite.
*/
static int die_mid_write(void *arg, stateio_os_op *o){
  (void)arg;
  if( !o->after && o->file == STATEIO_FILE_LOG && strcmp(o->op, "write") == 0 && o->len > 1 ){
    int fd = open(o->path, O_WRONLY);
    if( fd >= 0 && pwrite(fd, o->data, o->len - 1, (off_t)o->offset) > 0 ) kill(getpid(), SIGKILL);
    _exit(4);
  }
  return 0;
}

/*
** A writer process that creates the log's commit file for transaction 2
** (3 entries), records it in flight and dies with its batch torn: two
** complete entries of it are in the log. Returns 1 if it died that way.
*/
static int torn_batch_elsewhere(const char *path){
  pid_t pid = fork();
  if( pid == 0 ){
    stateio_set_os_hook(die_mid_write, NULL);
    stateio_writer *w;
    if( stateio_writer_open(&w, path, 0) != STATEIO_OK ) _exit(2);
    put_txn(w, 2, 3, 40, 0);
    _exit(3);
  }
  int st;
  return pid > 0 && waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

/* Run torn_batch_elsewhere() at the first flock of the log (before it is taken). */
static const char *appear_path;
static int appear_done, appear_ok, appear_in_look;
static int appear_at_flock(void *arg, stateio_os_op *o){
  (void)arg;
  if( !o->after && !appear_done && o->file == STATEIO_FILE_LOG && strcmp(o->op, "flock") == 0
   && (o->offset & LOCK_EX) ){
    appear_done = 1;
    appear_ok = torn_batch_elsewhere(appear_path);
  }
  return 0;
}

/* The reader's look for the commit file (a stat): commit_test is linked with --wrap=stat. */
int __real_stat(const char *path, struct stat *st);
int __wrap_stat(const char *path, struct stat *st){
  int rc = __real_stat(path, st);
  size_t n = strlen(path);
  if( stat_counted && strcmp(path, stat_counted) == 0 ) stat_count++;
  if( rc != 0 && errno == ENOENT && appear_in_look && !appear_done && n > 7 && strcmp(path + n - 7, "-commit") == 0 ){
    int e = errno;
    appear_done = 1;
    appear_ok = torn_batch_elsewhere(appear_path);
    errno = e;
  }
  return rc;
}

static void test_commit_file_appears(void){
  const char *path = tpath("appear.log");
  char cpath[450];
  snprintf(cpath, sizeof(cpath), "%s-commit", path);
  uint64_t txns[16];
  for(int who = 0; who < 3; who++){
    static const char *const what[] = { "writer", "compaction", "reader" };
    rm_log(path);
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
    CHECK(put_txn(w, 1, 1, 40, 1) == STATEIO_OK);
    CHECK(access(cpath, F_OK) != 0);
    uint64_t size1 = fsize(path);
    appear_path = path;
    appear_done = appear_ok = 0;
    appear_in_look = who == 2;
    if( who == 0 ){
      /* The writer has looked (no commit file) and waits for the lock meanwhile. */
      stateio_set_os_hook(appear_at_flock, NULL);
      CHECK(put_txn(w, 3, 1, 40, 0) == STATEIO_OK);
      stateio_set_os_hook(NULL, NULL);
    }else if( who == 1 ){
      stateio_compact_info info;
      stateio_set_os_hook(appear_at_flock, NULL);
      CHECK(stateio_compact(path, 1, &info) == STATEIO_OK);
      stateio_set_os_hook(NULL, NULL);
      CHECK(put_txn(w, 3, 1, 40, 0) == STATEIO_OK);
    }else{
      /* The reader has found no commit file; the torn batch is in the file before its size is read. */
      stateio_image img;
      CHECK(stateio_open_image(path, &img) == STATEIO_OK);
      CHECK_MSG(img.file_size == size1, "reader: sees %llu bytes, committed %llu",
                (unsigned long long)img.file_size, (unsigned long long)size1);
      stateio_close_image(&img);
      CHECK(put_txn(w, 3, 1, 40, 0) == STATEIO_OK);
    }
    appear_path = NULL;
    appear_in_look = 0;
    CHECK_MSG(appear_done && appear_ok, "%s: the other writer died in its batch", what[who]);
    stateio_writer_close(w);
    int n = read_txns(path, txns, 16, NULL);
    CHECK_MSG(n == 2 && txns[0] == 1 && txns[1] == 3,
              "%s: transactions 1 and 3, none of the torn 2 (%d: %llu %llu)", what[who], n,
              (unsigned long long)(n > 0 ? txns[0] : 0), (unsigned long long)(n > 1 ? txns[1] : 0));
  }
  rm_log(path);
}

/* ------------------------------------------------------------ 9. a batch that spills */

/* Entries from..to-1 of transaction t (of n) of len bytes, into the open batch. */
static int add_entries(stateio_writer *w, uint64_t t, uint32_t from, uint32_t to, uint32_t n, size_t len){
  unsigned char buf[256];
  int rc = STATEIO_OK;
  for(uint32_t k = from; rc == STATEIO_OK && k < to; k++){
    fill(buf, len, t, k, n);
    rc = stateio_update(w, buf, len);
  }
  return rc;
}

/* Entries in the writer's own view (its pending ones too), or -1. */
static long writer_view_count(stateio_writer *w){
  stateio_image img;
  stateio_scan *sc;
  long n = 0;
  if( stateio_writer_image(w, &img) != STATEIO_OK ) return -1;
  if( stateio_scan_open(&sc, &img, 0, 0) != STATEIO_OK ) return -1;
  stateio_entry e;
  int rc;
  while( (rc = stateio_scan_next(sc, &e)) == STATEIO_OK ) n++;
  stateio_scan_close(sc);
  return rc == STATEIO_DONE ? n : -1;
}

/* What other readers see: the visible size. */
static uint64_t visible_size(const char *path){
  stateio_image img;
  if( stateio_open_image(path, &img) != STATEIO_OK ) return UINT64_MAX;
  uint64_t n = img.file_size;
  stateio_close_image(&img);
  return n;
}

/* A child that spills transaction t and dies: at its second chunk (stage 0), after prepare (1), after reopen (2). */
static int spill_and_die(const char *path, int flags, uint64_t t, int stage){
  pid_t pid = fork();
  if( pid == 0 ){
    stateio_writer *w;
    if( stateio_writer_open(&w, path, flags) != STATEIO_OK ) _exit(2);
    stateio_writer_set_spill(w, 64 << 10);
    if( stage == 0 ) plan_set("write", STATEIO_FILE_LOG, 2, 0);
    if( stateio_writer_begin(w) != STATEIO_OK ) _exit(3);
    if( stage == 0 ){
      /* Die at the second chunk's write (the first is out). */
      for(uint32_t k = 0; k < 3000; k++){
        if( plan.seen >= 2 ) kill(getpid(), SIGKILL);
        if( add_entries(w, t, k, k + 1, 3000, 100) != STATEIO_OK ) _exit(4);
      }
      _exit(5);
    }
    if( add_entries(w, t, 0, 3000, 3000, 100) != STATEIO_OK ) _exit(4);
    if( stateio_writer_prepare(w) != STATEIO_OK ) _exit(6);
    if( stage == 2 && stateio_writer_reopen(w) != STATEIO_OK ) _exit(7);
    kill(getpid(), SIGKILL);
    _exit(8);
  }
  int st;
  return pid > 0 && waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

static void test_spill(void){
  const char *path = tpath("spill.log");
  uint64_t txns[16];
  for(int pass = 0; pass < 2; pass++){
    int flags = pass ? STATEIO_SYNC : 0;
    const char *how = pass ? "sync" : "no sync";
    rm_log(path);
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, path, STATEIO_CREATE | flags) == STATEIO_OK);
    stateio_writer_set_spill(w, 64 << 10);
    CHECK(put_txn(w, 1, 1, 40, 1) == STATEIO_OK);
    uint64_t size1 = fsize(path);

    /* Spilled, then committed: out before the commit, seen by nobody else until it. */
    CHECK(stateio_writer_begin(w) == STATEIO_OK);
    CHECK(add_entries(w, 2, 0, 3000, 3000, 100) == STATEIO_OK);
    CHECK_MSG(fsize(path) > size1 + (200 << 10), "spill (%s): the batch's chunks are out (%llu bytes)", how,
              (unsigned long long)(fsize(path) - size1));
    CHECK_MSG(visible_size(path) == size1, "spill (%s): readers do not see the batch", how);
    long seen = writer_view_count(w);
    CHECK_MSG(seen == 3001, "spill (%s): the writer sees its 3000 pending entries (%ld)", how, seen);
    CHECK(stateio_writer_commit(w) == STATEIO_OK);
    int n = read_txns(path, txns, 16, NULL);
    CHECK_MSG(n == 2 && txns[1] == 2, "spill (%s): committed whole (%d)", how, n);
    uint64_t size2 = fsize(path);
    CHECK(visible_size(path) == size2);

    /* Spilled, then rolled back: nothing left. */
    CHECK(stateio_writer_begin(w) == STATEIO_OK);
    CHECK(add_entries(w, 90, 0, 3000, 3000, 100) == STATEIO_OK);
    CHECK(fsize(path) > size2);
    stateio_writer_rollback(w);
    CHECK_MSG(fsize(path) == size2 && read_txns(path, txns, 16, NULL) == 2, "spill (%s): a rollback cuts it away", how);

    /* Marks: before the spill, and inside what is already out. */
    CHECK(stateio_writer_begin(w) == STATEIO_OK);
    CHECK(add_entries(w, 3, 0, 10, 1010, 100) == STATEIO_OK);
    stateio_mark m0 = stateio_writer_mark(w);
    CHECK(add_entries(w, 91, 0, 2000, 2000, 100) == STATEIO_OK);
    CHECK(fsize(path) > size2 + (100 << 10));
    stateio_writer_rollback_to(w, m0);
    CHECK(add_entries(w, 3, 10, 1000, 1010, 100) == STATEIO_OK);
    stateio_mark m1 = stateio_writer_mark(w);
    CHECK(add_entries(w, 92, 0, 500, 500, 100) == STATEIO_OK);
    stateio_writer_rollback_to(w, m1);
    CHECK(add_entries(w, 3, 1000, 1010, 1010, 100) == STATEIO_OK);
    CHECK(stateio_writer_commit(w) == STATEIO_OK);
    n = read_txns(path, txns, 16, NULL);
    CHECK_MSG(n == 3 && txns[2] == 3, "spill (%s): rolled back to marks before and after the spill (%d)", how, n);

    /* Prepared and taken back (still out, not visible); then grown and committed, or rolled back. */
    uint64_t size4 = 0;
    for(int undo = 0; undo < 2; undo++){
      uint64_t before = fsize(path);
      uint64_t t = undo ? 93 : 4;
      uint32_t all = undo ? 2000 : 3000;
      CHECK(stateio_writer_begin(w) == STATEIO_OK);
      CHECK(add_entries(w, t, 0, 2000, all, 100) == STATEIO_OK);
      CHECK(stateio_writer_prepare(w) == STATEIO_OK);
      CHECK(stateio_writer_reopen(w) == STATEIO_OK);
      CHECK_MSG(fsize(path) > before && visible_size(path) == before, "spill (%s): taken back, still out, not visible", how);
      if( undo ){
        stateio_writer_rollback(w);
        CHECK_MSG(fsize(path) == before && read_txns(path, txns, 16, NULL) == 4, "spill (%s): taken back, rolled back", how);
      }else{
        CHECK(add_entries(w, t, 2000, all, all, 100) == STATEIO_OK);
        CHECK(stateio_writer_commit(w) == STATEIO_OK);
        n = read_txns(path, txns, 16, NULL);
        CHECK_MSG(n == 4 && txns[3] == 4, "spill (%s): prepared, taken back, grown, committed (%d)", how, n);
        size4 = fsize(path);
      }
    }
    CHECK(stateio_writer_close(w) == STATEIO_OK);

    /* Killed with a chunk out, or after being taken back: none of it. Killed after prepare: all of it. */
    CHECK_MSG(spill_and_die(path, flags, 94, 0), "spill (%s): the child died at its second chunk", how);
    CHECK_MSG(read_txns(path, txns, 16, NULL) == 4 && fsize(path) == size4, "spill (%s): killed with a chunk out: none of it", how);
    CHECK_MSG(spill_and_die(path, flags, 95, 2), "spill (%s): the child died after reopen", how);
    CHECK_MSG(read_txns(path, txns, 16, NULL) == 4 && fsize(path) == size4, "spill (%s): killed after reopen: none of it", how);
    CHECK_MSG(spill_and_die(path, flags, 5, 1), "spill (%s): the child died after prepare", how);
    n = read_txns(path, txns, 16, NULL);
    CHECK_MSG(n == 5 && txns[4] == 5, "spill (%s): killed after prepare: all of it (%d)", how, n);
    /* And the log goes on. */
    CHECK(stateio_writer_open(&w, path, flags) == STATEIO_OK);
    CHECK(put_txn(w, 6, 3, 40, 0) == STATEIO_OK);
    CHECK(stateio_writer_close(w) == STATEIO_OK);
    n = read_txns(path, txns, 16, NULL);
    CHECK_MSG(n == 6 && txns[5] == 6, "spill (%s): appended after the kills (%d)", how, n);
  }
  /* A writer on a descriptor (no commit file) streams a bulk batch too; taken back after prepare, it goes on. */
  rm_log(path);
  int fd = open(path, O_RDWR | O_CREAT, 0644);
  stateio_writer *fw;
  CHECK(fd >= 0 && stateio_writer_open_fd(&fw, fd, 0, 0, 0) == STATEIO_OK);
  CHECK(stateio_writer_begin_bulk(fw) == STATEIO_OK);
  CHECK(add_entries(fw, 1, 0, 50000, 50001, 100) == STATEIO_OK);
  CHECK(fsize(path) > ((uint64_t)4 << 20));
  CHECK(stateio_writer_prepare(fw) == STATEIO_OK);
  CHECK_MSG(stateio_writer_reopen(fw) == STATEIO_OK, "spill: a descriptor writer's streamed batch is taken back");
  CHECK(add_entries(fw, 1, 50000, 50001, 50001, 100) == STATEIO_OK);
  CHECK(stateio_writer_commit(fw) == STATEIO_OK);
  CHECK(stateio_writer_close(fw) == STATEIO_OK);
  close(fd);
  int n = read_txns(path, txns, 16, NULL);
  CHECK_MSG(n == 1 && txns[0] == 1, "spill: the descriptor writer's batch, whole (%d)", n);
  rm_log(path);
}

/* ------------------------------------------------------------ fork */

/*
** 10. A writer carried across fork(): the child shares its descriptors,
** and so its lock. There it refuses everything that would touch the files
** (MISUSE), and its rollback and close only forget: the parent's lock,
** held between commits (STATEIO_EXCLUSIVE) and during a spilled batch,
** and the batch's bytes in the file, are as they were; the parent commits.
** A writer the child opens itself works as any other (BUSY while the
** parent holds the lock).
*/
static void test_fork(void){
  const char *path = tpath("fork.log");
  rm_log(path);
  stateio_writer *w;
  uint64_t txns[16];
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE | STATEIO_EXCLUSIVE) == STATEIO_OK);
  CHECK(put_txn(w, 1, 2, 30, 1) == STATEIO_OK);
  stateio_writer_set_spill(w, 512);
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  unsigned char buf[300];
  for(uint32_t k = 0; k < 4; k++){
    fill(buf, sizeof(buf), 2, k, 4);
    CHECK(stateio_update(w, buf, sizeof(buf)) == STATEIO_OK);
  }
  uint64_t spilled = fsize(path);
  CHECK(read_txns(path, txns, 16, NULL) == 1 && spilled > 200);
  fflush(stdout);
  pid_t pid = fork();
  if( pid == 0 ){
    int bad = 0;
    fill(buf, sizeof(buf), 3, 0, 1);
    if( stateio_update(w, buf, sizeof(buf)) != STATEIO_MISUSE ) bad |= 1;
    if( stateio_writer_commit(w) != STATEIO_MISUSE ) bad |= 2;
    if( stateio_writer_prepare(w) != STATEIO_MISUSE ) bad |= 4;
    stateio_image img;
    if( stateio_writer_image(w, &img) != STATEIO_MISUSE ) bad |= 8;
    stateio_writer_rollback_to(w, stateio_writer_mark(w));
    stateio_writer_rollback(w);
    if( stateio_writer_close(w) != STATEIO_OK ) bad |= 16;
    stateio_writer *mine;
    if( stateio_writer_open(&mine, path, 0) != STATEIO_OK ) bad |= 32;
    else{
      if( stateio_update(mine, "child", 5) != STATEIO_BUSY ) bad |= 64;
      stateio_writer_close(mine);
    }
    _exit(bad);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork: the child's writer (status %d, bits %d)",
            status, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  CHECK_MSG(fsize(path) == spilled, "fork: the spilled batch is still out (%llu of %llu bytes)",
            (unsigned long long)fsize(path), (unsigned long long)spilled);
  stateio_writer *other;
  CHECK(stateio_writer_open(&other, path, 0) == STATEIO_OK);
  CHECK_MSG(stateio_update(other, "other", 5) == STATEIO_BUSY, "fork: the parent still holds the lock");
  CHECK(stateio_writer_commit(w) == STATEIO_OK);
  CHECK(put_txn(w, 3, 1, 30, 0) == STATEIO_OK);
  stateio_writer_close(w);
  CHECK(put_txn(other, 4, 1, 30, 0) == STATEIO_OK);
  stateio_writer_close(other);
  int n = read_txns(path, txns, 16, NULL);
  CHECK_MSG(n == 4 && txns[0] == 1 && txns[1] == 2 && txns[2] == 3 && txns[3] == 4, "fork: the log holds %d transactions", n);
}

int main(void){
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof(tmpdir), "%s/stateio-commit-XXXXXX", t && *t ? t : "/tmp");
  if( !mkdtemp(tmpdir) ){ perror("mkdtemp"); return 1; }
  struct { void (*fn)(void); const char *name; } tests[] = {
    { test_two_phase, "two-phase" },
    { test_double_fault, "double fault" },
    { test_os_errors, "os errors" },
    { test_commit_file_life, "commit file life" },
    { test_timeout, "busy timeout" },
    { test_exclusive, "exclusive" },
    { test_failing_sync_follower, "failing sync, follower" },
    { test_isolation, "isolation" },
    { test_isolation_spill, "isolation, spilling" },
    { test_commit_file_appears, "a commit file appears" },
    { test_spill, "a batch that spills" },
    { test_fork, "a writer carried across fork" },
    { test_commit_tmp_fails, "the commit file cannot be made" },
    { test_long_name, "long names" },
    { test_view_race, "a reader between two commits" },
    { test_foreign_mark, "a mark from another clock" },
    { test_fault_sweep, "a failure at every step" },
  };
  for(size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++){
    int before = test_failures();
    double t0 = now_ms();
    tests[i].fn();
    printf("commit %s: %s (%.2f s)\n", tests[i].name, test_failures() == before ? "ok" : "FAILED", (now_ms() - t0) / 1e3);
  }
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
  if( system(cmd) != 0 ){}
  return test_report();
}
