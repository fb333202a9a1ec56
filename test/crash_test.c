/* SPDX-License-Identifier: MIT */
/*
** crash_test.c - crash safety and bad input: nothing written is lost,
** nothing unwritten is invented.
**
**  1. Torn writes. A log of several epochs and entries of many sizes (empty
**     data, tiny, a record that exactly fills a block, a FIRST record of one
**     byte, padding of exactly 15 bytes, 32744 and 32770 bytes, a ~98 KB
**     snapshot over three blocks) is cut to every length L from 0 to its
**     size. Restore must give the state after the last entry complete within
**     L, computed here from our own record of what was written; then a
**     writer appends an update and a snapshot+update batch (repairing the
**     torn tail) and a restore returns all of it.
**  2. Damage. One byte of every record (checksum, type, length, offset,
**     first/middle/last payload byte) is flipped in turn. No reader returns
**     an entry that was not written; the damage is reported where it is;
**     every other entry is still read; restore gives the true current state
**     or fails naming the damaged snapshot, never an older epoch.
**  2b. Entries whose data is itself a log (valid records inside the
**     payload): cut at every length, and with a damaged record header, the
**     records inside must never come out as entries of the outer log.
**  3. Faults. Every write, fdatasync and ftruncate of a batch commit fails
**     in turn (ENOSPC, EIO, short writes; also the rollback's ftruncate):
**     the commit fails, the log still restores to the state before the
**     batch, and the next commit works.
**
** Environment:
**   STATEIO_TORN_STRIDE=N  cut at every L near a record boundary and every
**                          Nth L elsewhere (default 1, or 17 under ASan);
**                          also for 2b.
**   STATEIO_JOBS=N         processes sharing the lengths (default: CPUs, at most 4).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
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
#include "layout.h"

#define BLK ((uint64_t)LOGIO_BLOCK)
#define HDR ((uint64_t)LOGIO_HEADER)
#define NEAR 40            /* "near a boundary": within this many bytes */

static char tmpdir[256];

/* ------------------------------------------------------------ failures */

/*
** Each section counts its failures and prints the first few in detail;
** the section then makes one CHECK per property, so that a bug shows up as
** a handful of lines, not thousands.
*/

static double now_sec(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ what was written */

/* An entry as written, with where our own arithmetic says it lies. */
typedef struct went {
  int kind;                /* STATEIO_UPDATE or STATEIO_SNAPSHOT */
  uint64_t efield;         /* the epoch field */
  unsigned char *data;
  size_t len;
  uint64_t start, end;
} went;




/* Place e after a log of `off` bytes whose current epoch is *epoch. */
static void place(went *e, uint64_t off, uint64_t *epoch){
  e->start = layout_aligned(off);
  e->end = layout_entry_end(e->start, STATEIO_ENTRY_HEADER + e->len);
  e->efield = *epoch;
  if( e->kind == STATEIO_SNAPSHOT ) *epoch = e->start;
}

static went *went_new(int kind, size_t len, unsigned seed){
  went *e = calloc(1, sizeof(*e));
  e->kind = kind;
  e->len = len;
  e->data = malloc(len ? len : 1);
  layout_gen(e->data, len, seed);
  return e;
}

static void went_free(went *e){
  if( e ){ free(e->data); free(e); }
}

/* Whether a block-log entry returned by a reader is exactly e. */
static int entry_is(const logio_entry *got, const went *e){
  if( got->offset != e->start || got->end != e->end ) return 0;
  if( got->len != STATEIO_ENTRY_HEADER + e->len || !got->data ) return 0;
  if( got->data[0] != e->kind ) return 0;
  uint64_t ef = 0;
  for(int i = 8; i >= 1; i--) ef = (ef << 8) | got->data[i];
  if( ef != e->efield ) return 0;
  return e->len == 0 || memcmp(got->data + STATEIO_ENTRY_HEADER, e->data, e->len) == 0;
}

/* Index of the entry of list[0..n) that starts at off, or -1. */
static int find_start(went *const *list, int n, uint64_t off){
  int lo = 0, hi = n - 1;
  while( lo <= hi ){
    int mid = (lo + hi) / 2;
    if( list[mid]->start == off ) return mid;
    if( list[mid]->start < off ) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}

static int append_entry(stateio_writer *w, const went *e){
  return e->kind == STATEIO_SNAPSHOT ? stateio_snapshot(w, e->data, e->len)
                                     : stateio_update(w, e->data, e->len);
}

static uint64_t fd_size(int fd){
  struct stat st;
  return fstat(fd, &st) == 0 ? (uint64_t)st.st_size : (uint64_t)-1;
}

static uint64_t path_size(const char *path){
  struct stat st;
  return stat(path, &st) == 0 ? (uint64_t)st.st_size : (uint64_t)-1;
}

static unsigned char *read_all(const char *path, uint64_t *n){
  int fd = open(path, O_RDONLY);
  if( fd < 0 ) return NULL;
  *n = fd_size(fd);
  unsigned char *p = malloc(*n ? *n : 1);
  if( pread(fd, p, *n, 0) != (ssize_t)*n ){ free(p); p = NULL; }
  close(fd);
  return p;
}

static int write_all(const char *path, const unsigned char *p, uint64_t n){
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if( fd < 0 ) return -1;
  int ok = pwrite(fd, p, n, 0) == (ssize_t)n;
  close(fd);
  return ok ? 0 : -1;
}

static stateio_image mem_image(const unsigned char *p, uint64_t n){
  stateio_image img = { .fd = -1, .file_size = 0, .tail = p, .tail_len = (size_t)n };
  return img;
}

/* ------------------------------------------------------------ expected state */

/*
** Check that restoring img (size bytes) gives the state of a log whose
** complete entries are list[0..n): the current epoch, its snapshot, the
** end of the last entry, the torn tail, and the epoch's updates in order.
** Returns 1 if so; otherwise reports the first difference under ctx.
*/
static int check_state(const stateio_image *img, went *const *list, int n,
                       uint64_t size, int *nfail, const char *ctx, uint64_t L){
  uint64_t E = 0;
  int si = -1;
  if( n > 0 ){
    const went *last = list[n - 1];
    E = last->kind == STATEIO_SNAPSHOT ? last->start : last->efield;
    for(int j = n - 1; j >= 0; j--){
      if( list[j]->kind == STATEIO_SNAPSHOT && list[j]->start == E ){ si = j; break; }
    }
  }
  uint64_t log_end = n > 0 ? list[n - 1]->end : 0;
  stateio_state st;
  int rc = stateio_restore(img, &st);
  if( rc != STATEIO_OK ){
    test_detail(nfail, "%s L=%llu: restore: %s (bad_offset %llu), want epoch %llu",
         ctx, (unsigned long long)L, stateio_errstr(rc),
         (unsigned long long)st.bad_offset, (unsigned long long)E);
    stateio_state_clear(&st);
    return 0;
  }
  int ok = st.epoch == E && st.has_snapshot == (si >= 0)
        && st.log_end == log_end && st.torn_len == size - log_end;
  if( ok && si >= 0 ){
    const went *s = list[si];
    ok = st.snapshot_len == s->len && (s->len == 0 || memcmp(st.snapshot, s->data, s->len) == 0)
      && st.prev_epoch == s->efield && st.snapshot_end == s->end && st.updates_start == s->end;
  }else if( ok ){
    ok = st.updates_start == 0 && st.snapshot_len == 0;
  }
  if( !ok ){
    test_detail(nfail, "%s L=%llu: restore gave epoch %llu snapshot %d/%zu log_end %llu torn %llu;"
         " want epoch %llu snapshot %d/%zu log_end %llu torn %llu", ctx, (unsigned long long)L,
         (unsigned long long)st.epoch, st.has_snapshot, st.snapshot_len,
         (unsigned long long)st.log_end, (unsigned long long)st.torn_len,
         (unsigned long long)E, si >= 0, si >= 0 ? list[si]->len : (size_t)0,
         (unsigned long long)log_end, (unsigned long long)(size - log_end));
    stateio_state_clear(&st);
    return 0;
  }
  stateio_updates *u;
  rc = stateio_updates_open(&u, img, &st);
  if( rc ){
    test_detail(nfail, "%s L=%llu: updates_open: %s", ctx, (unsigned long long)L, stateio_errstr(rc));
    stateio_state_clear(&st);
    return 0;
  }
  int j = si + 1;
  for(;;){
    stateio_entry e;
    rc = stateio_updates_next(u, &e);
    while( j < n && list[j]->kind != STATEIO_UPDATE ) j++;
    if( rc == STATEIO_DONE ){
      if( j < n ){
        test_detail(nfail, "%s L=%llu: update reader ended before the update at %llu",
             ctx, (unsigned long long)L, (unsigned long long)list[j]->start);
        ok = 0;
      }
      break;
    }
    if( rc != STATEIO_OK ){
      test_detail(nfail, "%s L=%llu: update reader: %s at %llu", ctx, (unsigned long long)L,
           stateio_errstr(rc), (unsigned long long)e.offset);
      ok = 0;
      break;
    }
    if( j >= n || e.offset != list[j]->start || e.len != list[j]->len
        || (e.len && memcmp(e.data, list[j]->data, e.len) != 0) ){
      test_detail(nfail, "%s L=%llu: update reader returned %zu bytes at %llu, want %s",
           ctx, (unsigned long long)L, e.len, (unsigned long long)e.offset,
           j < n ? "another update" : "the end");
      ok = 0;
      break;
    }
    j++;
  }
  stateio_updates_close(u);
  stateio_state_clear(&st);
  return ok;
}

/* ------------------------------------------------------------ the test log */

#define MAXW 64
static went *W[MAXW];
static int NW;
static unsigned char *orig;     /* the test log's bytes */
static uint64_t orig_size;

/* Data length that makes an entry at off end `leave` bytes before its block's end. */
static size_t fill_len(uint64_t off, uint64_t leave){
  uint64_t s = layout_aligned(off);
  return (size_t)(BLK - s % BLK - HDR - STATEIO_ENTRY_HEADER - leave);
}

/*
** Write the test log to path. Blocks:
**   0    epoch 0: updates of 0, 1, 7 and 100 bytes; a snapshot of 0 bytes
**        (epoch 1); an update that leaves exactly 15 bytes: padding
**   1    an update of 32744 bytes: one FULL record that fills the block
**   2    updates of 5 and 0 bytes; one batch: update 10, snapshot 30
**        (epoch 2), update 40
**   2-4  a snapshot of ~98 KB (epoch 3): FIRST, MIDDLE, LAST; its LAST
**        record leaves exactly 16 bytes in block 4
**   4-6  an update of 32770 bytes: a FIRST record of 1 byte, MIDDLE, LAST
**   6    an update of 50 bytes (the last entry is an update)
*/
static int build_log(const char *path){
  /* len < 0: the length that leaves -len bytes in the block (-1000-k: the same over 3 blocks). */
  struct { int kind; long len; int batch; } ops[] = {
    {1, 0, 0}, {1, 1, 0}, {1, 7, 0}, {1, 100, 0}, {2, 0, 0}, {1, -15, 0},
    {1, 32744, 0}, {1, 5, 0}, {1, 0, 0}, {1, 10, 1}, {2, 30, 1}, {1, 40, 2},
    {2, -1016, 0}, {1, 32770, 0}, {1, 50, 0},
  };
  unlink(path);
  stateio_writer *w;
  if( stateio_writer_open(&w, path, STATEIO_CREATE) != STATEIO_OK ) return -1;
  uint64_t off = 0, epoch = 0;
  int bad = 0;
  for(size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++){
    size_t len = ops[i].len >= 0 ? (size_t)ops[i].len
               : ops[i].len > -1000 ? fill_len(off, (uint64_t)-ops[i].len)
               : fill_len(off, (uint64_t)(-ops[i].len - 1000)) + 2 * (size_t)(BLK - HDR);
    went *e = went_new(ops[i].kind, len, (unsigned)i * 17 + 3);
    place(e, off, &epoch);
    off = e->end;
    W[NW++] = e;
    if( ops[i].batch == 1 && (i == 0 || ops[i - 1].batch == 0) ) bad |= stateio_writer_begin(w);
    bad |= append_entry(w, e);
    if( ops[i].batch == 2 ) bad |= stateio_writer_commit(w);
    if( ops[i].batch == 0 || ops[i].batch == 2 ){
      uint64_t sz = path_size(path);
      if( sz != off ){
        printf("  build: after entry %zu the file has %llu bytes, want %llu\n",
               i, (unsigned long long)sz, (unsigned long long)off);
        bad = 1;
      }
    }
  }
  stateio_writer_close(w);
  orig = read_all(path, &orig_size);
  return bad || !orig || orig_size != off ? -1 : 0;
}

/* One record of the test log, from our own arithmetic. */
typedef struct wrec { uint64_t pos; size_t len; int type; uint64_t off; int entry; } wrec;
static wrec R[MAXW * 8];
static int NR;

static void list_records(void){
  NR = 0;
  for(int i = 0; i < NW; i++){
    uint64_t pos = W[i]->start, left = STATEIO_ENTRY_HEADER + W[i]->len;
    int first = 1;
    while( left > 0 ){
      uint64_t room = BLK - pos % BLK - HDR;
      uint64_t take = left < room ? left : room;
      wrec *r = &R[NR++];
      r->pos = pos;
      r->len = (size_t)take;
      r->type = first ? (take == left ? LOGIO_FULL : LOGIO_FIRST)
                      : (take == left ? LOGIO_LAST : LOGIO_MIDDLE);
      r->off = pos - W[i]->start;
      r->entry = i;
      left -= take;
      pos += HDR + take;
      first = 0;
    }
  }
}

/* The records' headers in the file are the ones our arithmetic predicts. */
static void test_layout(void){
  int nfail = 0;
  for(int i = 0; i < NR; i++){
    const unsigned char *p = orig + R[i].pos;
    uint64_t off = 0;
    for(int k = 14; k >= 7; k--) off = (off << 8) | p[k];
    size_t len = (size_t)p[5] | ((size_t)p[6] << 8);
    if( p[4] != R[i].type || len != R[i].len || off != R[i].off ){
      test_detail(&nfail, "record %d at %llu: type %d len %zu off %llu, want %d %zu %llu", i,
           (unsigned long long)R[i].pos, p[4], len, (unsigned long long)off,
           R[i].type, R[i].len, (unsigned long long)R[i].off);
    }
  }
  int full_block = 0, first_one = 0, pad15 = 0, blocks4 = 0, at_boundary = 0;
  for(int i = 0; i < NR; i++){
    if( R[i].type == LOGIO_FULL && R[i].len == BLK - HDR ) full_block = 1;
    if( R[i].type == LOGIO_FIRST && R[i].len == 1 ) first_one = 1;
    if( R[i].type == LOGIO_LAST && R[i].off >= BLK && W[R[i].entry]->len > 90000 ) blocks4 = 1;
  }
  for(int i = 0; i + 1 < NW; i++){
    if( W[i + 1]->start - W[i]->end == HDR ) pad15 = 1;
    if( W[i]->end % BLK == 0 ) at_boundary = 1;
  }
  printf("crash: test log of %llu bytes, %d entries, %d records, 4 epochs\n",
         (unsigned long long)orig_size, NW, NR);
  CHECK_MSG(nfail == 0, "record headers as computed (%d differ)", nfail);
  CHECK_MSG(full_block && first_one && pad15 && blocks4 && at_boundary,
            "log shape: block-filling record %d, 1-byte FIRST %d, 15-byte padding %d, "
            "~100 KB entry over 3 blocks %d, entry ending on a block boundary %d",
            full_block, first_one, pad15, blocks4, at_boundary);
  CHECK_MSG(orig_size >= 150000 && orig_size <= 250000, "log size %llu", (unsigned long long)orig_size);
}

/* ------------------------------------------------------------ 1. torn writes */

/* Extra checks at a cut near a boundary: forward reader, rewind walk, check. */
typedef struct regions { int n; uint64_t off[64], len[64]; const char *why[64]; } regions;

static int collect_cb(void *arg, uint64_t off, uint64_t len, const char *why){
  regions *g = arg;
  if( g->n < 64 ){ g->off[g->n] = off; g->len[g->n] = len; g->why[g->n] = why; }
  g->n++;
  return 0;
}

static void torn_readers(const unsigned char *p, uint64_t L, int k, int *nfail){
  stateio_image img = mem_image(p, L);
  uint64_t log_end = k >= 0 ? W[k]->end : 0;
  /* The forward reader: W[0..k], then at most a torn region ending at L. */
  logio_reader *r;
  if( logio_reader_open(&r, &img, 0) != STATEIO_OK ){ test_detail(nfail, "reader_open"); return; }
  int j = 0, torn = 0;
  for(int guard = 0; guard < 1000; guard++){
    logio_entry e;
    int rc = logio_reader_next(r, &e);
    if( rc == STATEIO_DONE ) break;
    if( rc == STATEIO_OK && j <= k && entry_is(&e, W[j]) && !torn ){ j++; continue; }
    if( rc == STATEIO_TORN && !torn && e.offset >= log_end && e.len > 0 && e.offset + e.len == L ){
      torn = 1;
      continue;
    }
    test_detail(nfail, "torn L=%llu: forward reader: %s at %llu len %zu (entry %d of %d expected next)",
         (unsigned long long)L, stateio_errstr(rc), (unsigned long long)e.offset, e.len, j, k + 1);
    break;
  }
  logio_reader_close(r);
  if( j != k + 1 ) test_detail(nfail, "torn L=%llu: forward reader read %d entries, want %d", (unsigned long long)L, j, k + 1);
  /* The rewind walk: W[k], W[k-1], ... W[0]. */
  uint64_t limit = L;
  for(int i = k; ; i--){
    uint64_t s, e;
    int rc = logio_rewind(&img, limit, &s, &e);
    if( i < 0 ){
      if( rc != STATEIO_DONE ) test_detail(nfail, "torn L=%llu: rewind past the first entry: %s at %llu",
                                (unsigned long long)L, stateio_errstr(rc), (unsigned long long)s);
      break;
    }
    if( rc != STATEIO_OK || s != W[i]->start || e != W[i]->end ){
      test_detail(nfail, "torn L=%llu: rewind from %llu: %s %llu..%llu, want entry %d at %llu..%llu",
           (unsigned long long)L, (unsigned long long)limit, stateio_errstr(rc),
           (unsigned long long)s, (unsigned long long)e, i,
           (unsigned long long)W[i]->start, (unsigned long long)W[i]->end);
      break;
    }
    limit = s;
  }
  /* stateio_check: nothing, or one torn tail ending at L. */
  regions g = {0};
  int rc = stateio_check(&img, collect_cb, &g);
  if( rc != STATEIO_OK || g.n > 1 || (g.n == 1 && (g.off[0] < log_end || g.off[0] + g.len[0] != L
                                                 || strcmp(g.why[0], "torn tail") != 0)) ){
    test_detail(nfail, "torn L=%llu: stateio_check: rc %s, %d problems, first %s at %llu len %llu",
         (unsigned long long)L, stateio_errstr(rc), g.n, g.n ? g.why[0] : "-",
         (unsigned long long)(g.n ? g.off[0] : 0), (unsigned long long)(g.n ? g.len[0] : 0));
  }
}

/* What one worker of the torn-write test counted. */
typedef struct torn_counts {
  int f_restore, f_readers, f_writer, f_after, f_file, crashed;
  long tried, near_tried, skipped_writer;
} torn_counts;

#define TORN_CHUNK 2048    /* lengths a worker takes at a time */

/* Try the lengths of every chunk c with c % jobs == id. */
static void torn_worker(int id, int jobs, uint64_t stride, const unsigned char *near, torn_counts *t){
  char path[300];
  snprintf(path, sizeof(path), "%s/torn-%d.log", tmpdir, id);
  /* Appended after the surviving entries: an update, then a snapshot + update batch. */
  went *A = went_new(STATEIO_UPDATE, 40, 901);
  went *B = went_new(STATEIO_SNAPSHOT, 25, 902);
  went *C = went_new(STATEIO_UPDATE, 7, 903);
  went *list[MAXW + 3];

  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if( fd < 0 ){ test_detail(&t->f_file, "open %s: %s", path, strerror(errno)); return; }
  uint64_t valid_to = 0;     /* the file's first valid_to bytes are orig's */
  int k = -1;
  for(uint64_t L = 0; L <= orig_size; L++){
    if( (L / TORN_CHUNK) % (uint64_t)jobs != (uint64_t)id ) continue;
    if( !near[L] && L % stride != 0 ) continue;
    t->tried++;
    while( k + 1 < NW && W[k + 1]->end <= L ) k++;
    while( k >= 0 && W[k]->end > L ) k--;

    /* Restore of the cut log (in memory). */
    stateio_image img = mem_image(orig, L);
    if( L >= 1 && L <= 4 ){
      /*
      ** 1..4 bytes hold only part of a checksum: nothing says "log", and a
      ** writer must not truncate a file it cannot tell is one. Real crashes
      ** do not leave these (the first append writes >= 25 bytes at once).
      */
      stateio_state st;
      int rc = stateio_restore(&img, &st);
      if( rc != STATEIO_NOTLOG ) test_detail(&t->f_restore, "torn L=%llu: restore: %s, want %s",
                                  (unsigned long long)L, stateio_errstr(rc), stateio_errstr(STATEIO_NOTLOG));
      stateio_state_clear(&st);
      continue;
    }
    int restored = check_state(&img, W, k + 1, L, &t->f_restore, "torn", L);
    if( near[L] ){
      t->near_tried++;
      torn_readers(orig, L, k, &t->f_readers);
    }
    if( !restored ){ t->skipped_writer++; continue; }

    /* The same cut as a file, then a writer appends to it. */
    if( valid_to < L && pwrite(fd, orig + valid_to, L - valid_to, (off_t)valid_to) != (ssize_t)(L - valid_to) ){
      test_detail(&t->f_file, "pwrite: %s", strerror(errno));
      break;
    }
    if( ftruncate(fd, (off_t)L) != 0 ){ test_detail(&t->f_file, "ftruncate: %s", strerror(errno)); break; }
    valid_to = L;

    uint64_t log_end = k >= 0 ? W[k]->end : 0;
    uint64_t epoch = k >= 0 ? (W[k]->kind == STATEIO_SNAPSHOT ? W[k]->start : W[k]->efield) : 0;
    place(A, log_end, &epoch);
    place(B, A->end, &epoch);
    place(C, B->end, &epoch);
    stateio_writer *w;
    int rc = stateio_writer_open(&w, path, 0);
    int rc1 = -1, rc2 = -1, rc3 = -1, rc4 = -1;
    if( rc == STATEIO_OK ){
      rc1 = append_entry(w, A);
      rc2 = stateio_writer_begin(w);
      if( rc2 == STATEIO_OK ) rc3 = append_entry(w, B);
      if( rc3 == STATEIO_OK ) rc3 = append_entry(w, C);
      rc4 = stateio_writer_commit(w);
      stateio_writer_close(w);
    }
    valid_to = log_end < L ? log_end : L;
    if( rc || rc1 || rc2 || rc3 || rc4 ){
      test_detail(&t->f_writer, "torn L=%llu: writer open %s, update %s, begin %s, append %s, commit %s",
           (unsigned long long)L, stateio_errstr(rc), stateio_errstr(rc1), stateio_errstr(rc2),
           stateio_errstr(rc3), stateio_errstr(rc4));
      continue;
    }
    uint64_t size = fd_size(fd);
    if( size != C->end ){
      test_detail(&t->f_after, "torn L=%llu: file is %llu bytes after the appends, want %llu",
           (unsigned long long)L, (unsigned long long)size, (unsigned long long)C->end);
      continue;
    }
    int n = 0;
    for(int i = 0; i <= k; i++) list[n++] = W[i];
    list[n++] = A; list[n++] = B; list[n++] = C;
    stateio_image fimg = { .fd = fd, .file_size = size, .tail = NULL, .tail_len = 0 };
    check_state(&fimg, list, n, size, &t->f_after, "torn+append", L);
  }
  close(fd);
  unlink(path);
  went_free(A); went_free(B); went_free(C);
}

static void test_torn(void){
  uint64_t stride = UNDER_ASAN ? 17 : 1;
  const char *env = getenv("STATEIO_TORN_STRIDE");
  if( env && atoi(env) >= 1 ) stride = (uint64_t)atoi(env);
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int jobs = ncpu < 1 ? 1 : ncpu > 4 ? 4 : (int)ncpu;
  env = getenv("STATEIO_JOBS");
  if( env && atoi(env) >= 1 && atoi(env) <= 16 ) jobs = atoi(env);

  /* Lengths near a record boundary or block boundary are always tried. */
  unsigned char *near = calloc(orig_size + 1, 1);
  for(int i = 0; i < NR; i++){
    uint64_t marks[2] = { R[i].pos, R[i].pos + HDR + R[i].len };
    for(int m = 0; m < 2; m++){
      uint64_t lo = marks[m] > NEAR ? marks[m] - NEAR : 0;
      for(uint64_t L = lo; L <= marks[m] + NEAR && L <= orig_size; L++) near[L] = 1;
    }
  }
  for(uint64_t b = 0; b <= orig_size; b += BLK){
    for(uint64_t L = b > NEAR ? b - NEAR : 0; L <= b + NEAR && L <= orig_size; L++) near[L] = 1;
  }
  near[orig_size] = 1;

  /* The lengths are shared out among `jobs` processes; each reports its counts through a pipe. */
  double t0 = now_sec();
  torn_counts sum;
  memset(&sum, 0, sizeof(sum));
  pid_t pids[16];
  int fds[16];
  fflush(stdout);
  for(int id = 0; id < jobs; id++){
    int pfd[2];
    if( jobs == 1 || pipe(pfd) != 0 ){
      torn_worker(0, 1, stride, near, &sum);
      jobs = 1;
      break;
    }
    pids[id] = fork();
    if( pids[id] == 0 ){
      close(pfd[0]);
      torn_counts t;
      memset(&t, 0, sizeof(t));
      torn_worker(id, jobs, stride, near, &t);
      fflush(stdout);
      ssize_t put = write(pfd[1], &t, sizeof(t));
      _exit(put == (ssize_t)sizeof(t) ? 0 : 1);
    }
    close(pfd[1]);
    fds[id] = pfd[0];
  }
  for(int id = 0; jobs > 1 && id < jobs; id++){
    torn_counts t;
    ssize_t got = read(fds[id], &t, sizeof(t));
    close(fds[id]);
    int status = 0;
    waitpid(pids[id], &status, 0);
    if( got != (ssize_t)sizeof(t) || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ){
      printf("  detail: torn worker %d died (status 0x%x)\n", id, status);
      sum.crashed++;
      continue;
    }
    sum.f_restore += t.f_restore; sum.f_readers += t.f_readers; sum.f_writer += t.f_writer;
    sum.f_after += t.f_after; sum.f_file += t.f_file;
    sum.tried += t.tried; sum.near_tried += t.near_tried; sum.skipped_writer += t.skipped_writer;
  }
  double secs = now_sec() - t0;
  free(near);
  if( stride > 1 ){
    printf("crash: torn writes: tried %ld of %llu lengths (every length within %d bytes of a record "
           "or block boundary, every %lluth elsewhere%s) in %.1f s, %d processes\n",
           sum.tried, (unsigned long long)orig_size + 1, NEAR, (unsigned long long)stride,
           UNDER_ASAN ? "; sanitizer build" : "", secs, jobs);
  }else{
    printf("crash: torn writes: tried all %ld lengths 0..%llu in %.1f s, %d processes "
           "(%ld near boundaries also with forward reader, rewind walk and check)\n",
           sum.tried, (unsigned long long)orig_size, secs, jobs, sum.near_tried);
  }
  CHECK_MSG(sum.crashed == 0, "torn: every worker finished (%d died)", sum.crashed);
  CHECK_MSG(stride > 1 ? sum.tried > 0 : sum.tried == (long)orig_size + 1, "torn: lengths tried %ld", sum.tried);
  CHECK_MSG(sum.f_restore == 0, "torn: restore gives the state after the last complete entry (%d lengths wrong)", sum.f_restore);
  CHECK_MSG(sum.f_readers == 0, "torn: forward reader, rewind walk and check see exactly the complete entries (%d wrong)", sum.f_readers);
  CHECK_MSG(sum.f_file == 0, "torn: test file handling (%d)", sum.f_file);
  CHECK_MSG(sum.f_writer == 0, "torn: a writer appends to every cut log (%d lengths failed)", sum.f_writer);
  CHECK_MSG(sum.f_after == 0, "torn: restore after the appends gives old + new entries (%d lengths wrong)", sum.f_after);
  CHECK_MSG(sum.skipped_writer == 0, "torn: lengths whose restore failed, writer not tried: %ld", sum.skipped_writer);
}

/* ------------------------------------------------------------ 2. damage */

static int covers(uint64_t off, uint64_t len, uint64_t p){ return off <= p && p < off + len; }

/* Whether entry i has a record in block b. */
static int entry_in_block(int i, uint64_t b){
  return W[i]->start / BLK <= b && (W[i]->end - 1) / BLK >= b;
}

static void test_damage(void){
  unsigned char *buf = malloc(orig_size);
  memcpy(buf, orig, orig_size);
  stateio_image img = mem_image(buf, orig_size);
  int f_invented = 0, f_report = 0, f_lost_other = 0, f_lost_same = 0, f_restore = 0;
  int f_rewind = 0, f_rewind_lost = 0, f_check = 0, f_updates = 0;
  long flipped = 0, restore_failed = 0;
  int last = NW - 1;
  /* The current epoch's snapshot. */
  uint64_t E = W[last]->kind == STATEIO_SNAPSHOT ? W[last]->start : W[last]->efield;
  int cur_snap = find_start(W, NW, E);
  for(int ri = 0; ri < NR; ri++){
    const wrec *rec = &R[ri];
    uint64_t cand[9] = { 0, 3, 4, 5, 6, 7, 14, HDR, HDR + rec->len / 2 };
    uint64_t pos_list[10];
    int np = 0;
    for(int c = 0; c < 9; c++) pos_list[np++] = rec->pos + cand[c];
    pos_list[np++] = rec->pos + HDR + rec->len - 1;
    for(int c = 0; c < np; c++){
      uint64_t p = pos_list[c];
      int dup = 0;
      for(int c2 = 0; c2 < c; c2++) if( pos_list[c2] == p ) dup = 1;
      if( dup ) continue;
      int d = rec->entry;
      /*
      ** A damaged payload proves nothing about where the next record starts:
      ** the rest of its block is a damaged region, the entries that begin
      ** there are not read (they must be inside a reported region), and
      ** restore may fail naming the damage when one of them is the last.
      ** A damaged header field is proven by the checksum: nothing else lost.
      */
      int payload = p >= rec->pos + HDR;
      uint64_t dblock0 = p / BLK;
      buf[p] ^= 0xff;
      flipped++;
      char ctx[96];
      snprintf(ctx, sizeof(ctx), "flip %llu (record %d, entry %d)", (unsigned long long)p, ri, d);

      /* The forward reader from 0. */
      unsigned char *seen = calloc((size_t)NW, 1);
      int covered = 0;
      uint64_t prev_end = 0;
      logio_reader *r;
      logio_reader_open(&r, &img, 0);
      for(int guard = 0; guard < 10000; guard++){
        logio_entry e;
        int rc = logio_reader_next(r, &e);
        if( rc == STATEIO_DONE ) break;
        if( e.offset < prev_end ){
          test_detail(&f_invented, "%s: reader went back to %llu", ctx, (unsigned long long)e.offset);
          break;
        }
        prev_end = e.offset + (rc == STATEIO_OK ? 0 : e.len);
        if( rc == STATEIO_OK ){
          int i = find_start(W, NW, e.offset);
          if( i < 0 || i == d || !entry_is(&e, W[i]) ){
            test_detail(&f_invented, "%s: reader returned an entry that was not written at %llu..%llu",
                 ctx, (unsigned long long)e.offset, (unsigned long long)e.end);
          }else{
            seen[i] = 1;
          }
          prev_end = e.end;
        }else if( rc == STATEIO_CORRUPT_LOG || rc == STATEIO_TORN ){
          if( e.len == 0 ) test_detail(&f_report, "%s: empty damaged region at %llu", ctx, (unsigned long long)e.offset);
          if( covers(e.offset, e.len, p) ) covered = 1;
        }else{
          test_detail(&f_report, "%s: reader: %s", ctx, stateio_errstr(rc));
          break;
        }
      }
      logio_reader_close(r);
      if( !covered ) test_detail(&f_report, "%s: no damaged region reported covers the flipped byte", ctx);
      uint64_t dblock = p / BLK;
      for(int i = 0; i < NW; i++){
        if( i == d || seen[i] ) continue;
        if( payload && i > d && W[i]->start / BLK == dblock0 ) continue;   /* lost with the rest of the block */
        if( entry_in_block(i, dblock) ){
          test_detail(&f_lost_same, "%s: entry %d at %llu (same block as the damage) not read",
               ctx, i, (unsigned long long)W[i]->start);
        }else{
          test_detail(&f_lost_other, "%s: entry %d at %llu (another block) not read",
               ctx, i, (unsigned long long)W[i]->start);
        }
      }

      /* The rewind walk. */
      memset(seen, 0, (size_t)NW);
      uint64_t limit = orig_size;
      for(int guard = 0; guard < 10000; guard++){
        uint64_t s, e;
        int rc = logio_rewind(&img, limit, &s, &e);
        if( rc == STATEIO_DONE ) break;
        int i = rc == STATEIO_OK ? find_start(W, NW, s) : -1;
        if( rc != STATEIO_OK || i < 0 || i == d || W[i]->end != e || e > limit ){
          test_detail(&f_rewind, "%s: rewind from %llu: %s %llu..%llu, not a written entry",
               ctx, (unsigned long long)limit, stateio_errstr(rc), (unsigned long long)s, (unsigned long long)e);
          break;
        }
        seen[i] = 1;
        limit = s;
      }
      int lost_last = 0;     /* the last entry went with the rest of the damaged block */
      for(int i = 0; i < NW; i++){
        if( payload && i > d && W[i]->start / BLK == dblock0 ){
          if( i == last ) lost_last = 1;
          continue;
        }
        if( i != d && !seen[i] ){
          test_detail(&f_rewind_lost, "%s: rewind walk passed over entry %d at %llu",
               ctx, i, (unsigned long long)W[i]->start);
        }
      }
      free(seen);

      /* stateio_check. */
      regions g = {0};
      int rc = stateio_check(&img, collect_cb, &g);
      int cov = 0;
      for(int i = 0; i < g.n && i < 64; i++) if( covers(g.off[i], g.len[i], p) && g.len[i] > 0 ) cov = 1;
      if( rc != STATEIO_OK || !cov ) test_detail(&f_check, "%s: stateio_check (%s, %d problems) lists no region covering it",
                                      ctx, stateio_errstr(rc), g.n);

      /*
      ** Restore: the true current state, or an error naming the damaged
      ** snapshot. A damaged last entry is complete (all its bytes are in
      ** the file): corruption, never a torn tail dropped in silence
      ** (2026-12-01: it was taken for one). As an update of the current
      ** epoch it is reported by the update reader, or restore fails naming
      ** it when the damage hides what it is.
      */
      if( lost_last ){
        stateio_state st;
        rc = stateio_restore(&img, &st);
        if( rc == STATEIO_CORRUPT_LOG && st.bad_offset == W[d]->start ){
          restore_failed++;
        }else{
          test_detail(&f_restore, "%s: restore: %s (bad_offset %llu) where the damage hides the last entry",
               ctx, stateio_errstr(rc), (unsigned long long)st.bad_offset);
          if( rc == STATEIO_OK ) stateio_state_clear(&st);
        }
      }else if( d == cur_snap ){
        stateio_state st;
        rc = stateio_restore(&img, &st);
        if( rc == STATEIO_OK ){
          test_detail(&f_restore, "%s: restore succeeded although the current snapshot is damaged (epoch %llu)",
               ctx, (unsigned long long)st.epoch);
        }else if( st.bad_offset != W[d]->start ){
          test_detail(&f_restore, "%s: restore: %s with bad_offset %llu, want %llu",
               ctx, stateio_errstr(rc), (unsigned long long)st.bad_offset, (unsigned long long)W[d]->start);
        }else{
          restore_failed++;
        }
        stateio_state_clear(&st);
      }else if( W[d]->kind == STATEIO_UPDATE && W[d]->efield == E && d > cur_snap ){
        /* A damaged update of the current epoch: reported, and the rest read. */
        stateio_state st;
        rc = stateio_restore(&img, &st);
        if( rc != STATEIO_OK && d == last && rc == STATEIO_CORRUPT_LOG && st.bad_offset == W[d]->start ){
          restore_failed++;
        }else if( rc != STATEIO_OK || st.epoch != E || st.log_end != W[last]->end ){
          test_detail(&f_restore, "%s: restore: %s epoch %llu", ctx, stateio_errstr(rc), (unsigned long long)st.epoch);
        }else{
          stateio_updates *u;
          stateio_updates_open(&u, &img, &st);
          int j = cur_snap + 1, reported = 0, bad = 0;
          for(int guard = 0; guard < 10000; guard++){
            stateio_entry e;
            rc = stateio_updates_next(u, &e);
            if( j == d ) j++;
            while( j < NW && W[j]->kind != STATEIO_UPDATE ) j++;
            if( rc == STATEIO_DONE ) break;
            if( rc == STATEIO_CORRUPT_LOG && covers(e.offset, e.len, p) ){ reported = 1; continue; }
            if( rc != STATEIO_OK || j >= NW || e.offset != W[j]->start || e.len != W[j]->len
                || (e.len && memcmp(e.data, W[j]->data, e.len) != 0) ){
              test_detail(&f_updates, "%s: update reader: %s at %llu", ctx, stateio_errstr(rc), (unsigned long long)e.offset);
              bad = 1;
              break;
            }
            j++;
          }
          if( !bad && (j < NW || !reported) ){
            test_detail(&f_updates, "%s: update reader: damage reported %d, stopped before entry %d", ctx, reported, j);
          }
          stateio_updates_close(u);
        }
        stateio_state_clear(&st);
      }else{
        check_state(&img, W, NW, orig_size, &f_restore, ctx, orig_size);
      }
      buf[p] ^= 0xff;
    }
  }
  free(buf);
  printf("crash: damage: flipped %ld bytes in %d records (checksum, type, length, offset, payload);"
         " restore refused the damaged current snapshot %ld times\n", flipped, NR, restore_failed);
  CHECK_MSG(f_invented == 0, "damage: the forward reader returns only written entries (%d wrong)", f_invented);
  CHECK_MSG(f_report == 0, "damage: the forward reader reports a region covering the flipped byte (%d wrong)", f_report);
  CHECK_MSG(f_lost_other == 0, "damage: every entry in other blocks is still read (%d lost)", f_lost_other);
  CHECK_MSG(f_lost_same == 0, "damage: every undamaged entry in the damaged block is still read (%d lost)", f_lost_same);
  CHECK_MSG(f_rewind == 0, "damage: the rewind walk returns only written entries (%d wrong)", f_rewind);
  CHECK_MSG(f_rewind_lost == 0, "damage: the rewind walk finds every undamaged entry (%d lost)", f_rewind_lost);
  CHECK_MSG(f_check == 0, "damage: stateio_check lists a region covering the flipped byte (%d wrong)", f_check);
  CHECK_MSG(f_restore == 0, "damage: restore gives the true state or names the damaged snapshot (%d wrong)", f_restore);
  CHECK_MSG(f_updates == 0, "damage: the update reader reports the damaged update and reads the others (%d wrong)", f_updates);
  CHECK_MSG(restore_failed > 0, "damage: the current snapshot was damaged at least once");
}

/* ------------------------------------------------------------ 2b. entries that hold a log */

/*
** Application data may itself look like a log: a snapshot that is a copy of
** another stateio log, a blob that holds one. Such data holds valid records
** (checksums and all). When the entry that carries it is torn, or one of its
** record headers is damaged, the records inside its payload must not come
** out as entries of the outer log.
*/
static void test_nested(void){
  char path[300];
  snprintf(path, sizeof(path), "%s/nested.log", tmpdir);
  /* The inner log: updates and a snapshot, as a writer would encode them. */
  unsigned char inner[2048];
  size_t in_len = 0;
  for(int i = 0; i < 4; i++){
    unsigned char head[9] = { (unsigned char)(i == 2 ? STATEIO_SNAPSHOT : STATEIO_UPDATE) };
    unsigned char d[60];
    memset(d, 'a' + i, sizeof(d));
    uint64_t st;
    uint64_t n = logio_encoded_size(in_len, 9 + sizeof(d));
    logio_encode(in_len, head, 9, d, sizeof(d), inner + in_len, &st);
    in_len += (size_t)n;
  }
  /* The outer log: small update, the inner log as an update, small update,
     ~40 KB of inner logs one after another, small update. */
  went *list[8];
  int n = 0;
  uint64_t off = 0, epoch = 0;
  list[n++] = went_new(STATEIO_UPDATE, 5, 1);
  list[n] = went_new(STATEIO_UPDATE, in_len, 2);
  memcpy(list[n++]->data, inner, in_len);
  list[n++] = went_new(STATEIO_UPDATE, 8, 3);
  list[n] = went_new(STATEIO_UPDATE, 40000, 4);
  for(size_t k = 0; k < 40000; k += in_len){
    memcpy(list[n]->data + k, inner, 40000 - k < in_len ? 40000 - k : in_len);
  }
  n++;
  list[n++] = went_new(STATEIO_UPDATE, 9, 5);
  unlink(path);
  stateio_writer *w;
  int rc = stateio_writer_open(&w, path, STATEIO_CREATE);
  for(int i = 0; i < n; i++){
    place(list[i], off, &epoch);
    off = list[i]->end;
    if( rc == STATEIO_OK ) rc = append_entry(w, list[i]);
  }
  stateio_writer_close(w);
  uint64_t size;
  unsigned char *log = read_all(path, &size);
  CHECK_MSG(rc == STATEIO_OK && log && size == off, "nested: log of entries holding logs written (%llu bytes)",
            (unsigned long long)size);
  if( rc || !log || size != off ) return;

  /* Torn: every cut restores to the entries complete within it (cuts in the
     first entry are the torn-write test's business). */
  int f_torn = 0, f_flip = 0;
  long cuts = 0, flips = 0;
  int k = -1;
  uint64_t stride = UNDER_ASAN ? 17 : 1;
  const char *env = getenv("STATEIO_TORN_STRIDE");
  if( env && atoi(env) >= 1 ) stride = (uint64_t)atoi(env);
  for(uint64_t L = list[0]->end; L <= size; L++){
    if( stride > 1 && L % stride != 0 ){
      int near = L % BLK < NEAR || BLK - L % BLK < NEAR;
      for(int i = 0; i < n && !near; i++){
        near = (L >= list[i]->start && L - list[i]->start < NEAR) || (L <= list[i]->end && list[i]->end - L < NEAR);
      }
      if( !near ) continue;
    }
    while( k + 1 < n && list[k + 1]->end <= L ) k++;
    stateio_image img = mem_image(log, L);
    check_state(&img, list, k + 1, L, &f_torn, "nested torn", L);
    cuts++;
  }
  /* Damage: a flipped checksum byte in each record; the reader must not return inner entries. */
  unsigned char *buf = malloc(size);
  memcpy(buf, log, size);
  stateio_image img = mem_image(buf, size);
  for(int i = 0; i < n; i++){
    for(uint64_t pos = list[i]->start; pos < list[i]->end; pos = pos - pos % BLK + BLK){
      buf[pos] ^= 0xff;
      flips++;
      logio_reader *r;
      logio_reader_open(&r, &img, 0);
      for(int guard = 0; guard < 10000; guard++){
        logio_entry e;
        rc = logio_reader_next(r, &e);
        if( rc == STATEIO_DONE || (rc != STATEIO_OK && rc != STATEIO_CORRUPT_LOG && rc != STATEIO_TORN) ) break;
        if( rc != STATEIO_OK ) continue;
        int j = find_start(list, n, e.offset);
        if( j < 0 || j == i || !entry_is(&e, list[j]) ){
          test_detail(&f_flip, "nested: flip at %llu (entry %d): the reader returned %zu bytes at %llu..%llu,"
               " which were never written as an entry", (unsigned long long)pos, i, e.len,
               (unsigned long long)e.offset, (unsigned long long)e.end);
          break;
        }
      }
      logio_reader_close(r);
      buf[pos] ^= 0xff;
    }
  }
  free(buf);
  printf("crash: entries holding logs: %ld cuts, %ld damaged record headers\n", cuts, flips);
  CHECK_MSG(f_torn == 0, "nested: a torn entry whose data holds log records is never restored as entries (%d cuts wrong)", f_torn);
  CHECK_MSG(f_flip == 0, "nested: after a damaged header the records inside the payload are not returned (%d wrong)", f_flip);
  for(int i = 0; i < n; i++) went_free(list[i]);
  free(log);
  unlink(path);
}

/* ------------------------------------------------------------ 3. faults */

/*
** One fault: the index-th call (from 0) of op fails with err, or, for a
** write with err 0, writes only short_to bytes. With rollback_err, the
** ftruncate that follows the fault (the commit putting the file back)
** fails too.
*/
typedef struct fault {
  const char *op;
  int index;
  int err;
  size_t short_to;
  int rollback_err;
  int calls[4];
  int fired, fired2;
} fault;

static int op_index(const char *op){
  if( strcmp(op, "write") == 0 ) return 0;
  if( strcmp(op, "fdatasync") == 0 ) return 1;
  if( strcmp(op, "ftruncate") == 0 ) return 2;
  return 3;
}

static int fault_hook(void *arg, const char *op, size_t *n){
  fault *f = arg;
  int c = f->calls[op_index(op)]++;
  if( !f->fired && strcmp(op, f->op) == 0 && c == f->index ){
    f->fired = 1;
    if( f->err ) return f->err;
    if( f->short_to < *n ) *n = f->short_to;
    return 0;
  }
  if( f->fired && !f->fired2 && f->rollback_err && strcmp(op, "ftruncate") == 0 ){
    f->fired2 = 1;
    return f->rollback_err;
  }
  return 0;
}

/* One way of appending a batch, and the entries it appends. */
typedef struct fault_variant {
  const char *name;
  int bulk;                /* stateio_writer_begin_bulk(): chunks are written during the appends */
  int careless;            /* after an error, go on appending and commit (else roll back) */
  int n;
  went *e[8];
} fault_variant;

/* What the fault runs share. */
static struct {
  char path[300];
  went *base[8];
  int nbase;
  unsigned char *clean, *torn;
  uint64_t clean_size, torn_size;
  went *after[3];
  int f_rc, f_state, f_next, f_setup;
  long points, doubles, partial_visible, whole_visible, runs;
} FX;

/* list[0..nbase) = the base; then add[0..nadd) placed one after the other. Returns the count. */
static int expect_list(went **list, went *const *add, int nadd){
  int n = 0;
  for(int i = 0; i < FX.nbase; i++) list[n++] = FX.base[i];
  uint64_t off = list[n - 1]->end;
  uint64_t ep = list[n - 1]->kind == STATEIO_SNAPSHOT ? list[n - 1]->start : list[n - 1]->efield;
  for(int i = 0; i < nadd; i++){
    place(add[i], off, &ep);
    off = add[i]->end;
    list[n++] = add[i];
  }
  return n;
}

/* Whether the log at FX.path restores to exactly list[0..n) (quietly). */
static int log_is(went *const *list, int n){
  stateio_image img;
  if( stateio_open_image(FX.path, &img) != STATEIO_OK ) return 0;
  int save = test_details_shown, dummy = 0;
  test_details_shown = 1000;
  int ok = check_state(&img, list, n, path_size(FX.path), &dummy, "", 0);
  test_details_shown = save;
  stateio_close_image(&img);
  return ok;
}

/* One batch under one fault (and maybe a failing rollback after it). */
static void fault_run(const fault_variant *v, fault f, int tornbase, int sync){
  FX.runs++;
  uint64_t size0 = tornbase ? FX.torn_size : FX.clean_size;
  if( write_all(FX.path, tornbase ? FX.torn : FX.clean, size0) ){ test_detail(&FX.f_setup, "write %s", FX.path); return; }
  char ctx[200];
  if( f.err ){
    snprintf(ctx, sizeof(ctx), "%s, %s base, %ssync: %s #%d fails with %s%s", v->name, tornbase ? "torn" : "clean",
             sync ? "" : "no ", f.op, f.index, strerror(f.err), f.rollback_err ? ", and so does the rollback" : "");
  }else{
    snprintf(ctx, sizeof(ctx), "%s, %s base, %ssync: write #%d cut to %zu bytes%s", v->name, tornbase ? "torn" : "clean",
             sync ? "" : "no ", f.index, f.short_to, f.rollback_err ? ", and the rollback fails" : "");
  }
  stateio_writer *w;
  int rc = stateio_writer_open(&w, FX.path, sync ? STATEIO_SYNC : 0);
  if( rc ){ test_detail(&FX.f_setup, "%s: writer_open %s", ctx, stateio_errstr(rc)); return; }
  rc = v->bulk ? stateio_writer_begin_bulk(w) : stateio_writer_begin(w);
  if( rc ){ test_detail(&FX.f_setup, "%s: begin %s", ctx, stateio_errstr(rc)); stateio_writer_close(w); return; }

  /* Append, then commit; the first error is the one the fault caused. */
  stateio_set_fault_hook(fault_hook, &f);
  int first_rc = STATEIO_OK, first_errno = 0, committed = 0, rolled_back = 0;
  const char *first_where = "";
  went *ok_entries[8];
  int nok = 0;
  for(int i = 0; i < v->n; i++){
    errno = 0;
    rc = append_entry(w, v->e[i]);
    if( rc == STATEIO_OK ){ ok_entries[nok++] = v->e[i]; continue; }
    if( first_rc == STATEIO_OK ){ first_rc = rc; first_errno = errno; first_where = "append"; }
    if( !v->careless ){ stateio_writer_rollback(w); rolled_back = 1; break; }
  }
  if( !rolled_back ){
    errno = 0;
    rc = stateio_writer_commit(w);
    if( rc == STATEIO_OK ) committed = 1;
    else if( first_rc == STATEIO_OK ){ first_rc = rc; first_errno = errno; first_where = "commit"; }
  }
  stateio_set_fault_hook(NULL, NULL);

  if( !f.fired || (f.rollback_err && !f.fired2) ){
    /* No such call here (or no rollback after it): the batch must simply have worked. */
    stateio_writer_close(w);
    if( !f.fired && (first_rc != STATEIO_OK || !committed) ){
      test_detail(&FX.f_rc, "%s: never fired, yet %s gave %s", ctx, first_where, stateio_errstr(first_rc));
    }
    return;
  }
  FX.points++;
  if( f.fired2 ) FX.doubles++;
  int want_err = f.err ? f.err : ENOSPC;
  if( first_rc != STATEIO_IOERR || first_errno != want_err ){
    test_detail(&FX.f_rc, "%s: the first error was %s (errno %d) from %s, want i/o error errno %d",
         ctx, stateio_errstr(first_rc), first_errno, first_where, want_err);
  }

  /*
  ** The file now. A failed or rolled-back batch leaves the state before it.
  ** A careless caller's commit that succeeded holds the entries whose
  ** appends succeeded (or all of them: an entry whose chunk failed to go out
  ** may stay pending), never a damaged log. Only when the rollback's
  ** ftruncate failed too may some prefix of the batch remain.
  */
  went *list[20];
  int n = -1;
  if( committed ){
    /* The appends that failed are either left out, or (still pending) written now. */
    int k = expect_list(list, ok_entries, nok);
    if( log_is(list, k) ) n = k;
    if( n < 0 && nok < v->n ){
      k = expect_list(list, v->e, v->n);
      if( log_is(list, k) ) n = k;
    }
  }else{
    int k = expect_list(list, NULL, 0);
    if( log_is(list, k) ) n = k;
  }
  if( n < 0 && f.fired2 ){
    for(int j = 1; j <= v->n && n < 0; j++){
      int k = expect_list(list, v->e, j);
      if( log_is(list, k) ){
        n = k;
        if( j < v->n ) FX.partial_visible++; else FX.whole_visible++;
      }
    }
  }
  if( n < 0 ){
    int k = committed ? expect_list(list, ok_entries, nok) : expect_list(list, NULL, 0);
    stateio_image img;
    if( stateio_open_image(FX.path, &img) == STATEIO_OK ){
      uint64_t fsize = path_size(FX.path);
      check_state(&img, list, k, fsize, &FX.f_state, ctx, fsize);   /* says what differs */
      stateio_close_image(&img);
    }else{
      test_detail(&FX.f_state, "%s: cannot open the log", ctx);
    }
    stateio_writer_close(w);
    return;
  }
  uint64_t fsize = path_size(FX.path);
  if( !f.fired2 && !committed && fsize != FX.clean_size && !(tornbase && fsize == size0) ){
    test_detail(&FX.f_state, "%s: file is %llu bytes, want %llu", ctx, (unsigned long long)fsize,
         (unsigned long long)FX.clean_size);
  }

  /* The next commit (same writer, or a new one) works and is readable. */
  if( FX.runs % 2 ){
    stateio_writer_close(w);
    rc = stateio_writer_open(&w, FX.path, sync ? STATEIO_SYNC : 0);
    if( rc ){ test_detail(&FX.f_next, "%s: reopen %s", ctx, stateio_errstr(rc)); return; }
  }
  uint64_t o = list[n - 1]->end;
  uint64_t ep = list[n - 1]->kind == STATEIO_SNAPSHOT ? list[n - 1]->start : list[n - 1]->efield;
  for(int i = 0; i < 3; i++){ place(FX.after[i], o, &ep); o = FX.after[i]->end; list[n++] = FX.after[i]; }
  rc = stateio_writer_begin(w);
  for(int i = 0; rc == STATEIO_OK && i < 3; i++) rc = append_entry(w, FX.after[i]);
  if( rc == STATEIO_OK ) rc = stateio_writer_commit(w);
  stateio_writer_close(w);
  if( rc ){ test_detail(&FX.f_next, "%s: next commit: %s", ctx, stateio_errstr(rc)); return; }
  fsize = path_size(FX.path);
  if( fsize != o ) test_detail(&FX.f_next, "%s: after the next commit the file is %llu bytes, want %llu",
                        ctx, (unsigned long long)fsize, (unsigned long long)o);
  stateio_image img;
  if( stateio_open_image(FX.path, &img) == STATEIO_OK ){
    check_state(&img, list, n, fsize, &FX.f_next, ctx, fsize);
    stateio_close_image(&img);
  }
}

static fault fault_spec(const char *op, int index, int err, size_t short_to){
  fault f;
  memset(&f, 0, sizeof(f));
  f.op = op;
  f.index = index;
  f.err = err;
  f.short_to = short_to;
  return f;
}

static void test_faults(void){
  memset(&FX, 0, sizeof(FX));
  snprintf(FX.path, sizeof(FX.path), "%s/fault.log", tmpdir);
  int small = getenv("STATEIO_SMALL") != NULL;

  /* The base log: two epochs, one entry spanning blocks. */
  uint64_t off = 0, epoch = 0;
  int kinds[] = { 1, 2, 1, 1, 1 };
  size_t lens[] = { 10, 100, 200, 33000, 0 };
  for(int i = 0; i < 5; i++){
    FX.base[FX.nbase] = went_new(kinds[i], lens[i], 500 + (unsigned)i);
    place(FX.base[FX.nbase], off, &epoch);
    off = FX.base[FX.nbase]->end;
    FX.nbase++;
  }
  stateio_writer *w;
  unlink(FX.path);
  int rc = stateio_writer_open(&w, FX.path, STATEIO_CREATE);
  for(int i = 0; rc == STATEIO_OK && i < FX.nbase; i++) rc = append_entry(w, FX.base[i]);
  stateio_writer_close(w);
  FX.clean = read_all(FX.path, &FX.clean_size);
  CHECK_MSG(rc == STATEIO_OK && FX.clean && FX.clean_size == off, "faults: base log written (%llu bytes)",
            (unsigned long long)FX.clean_size);
  if( rc || !FX.clean ) return;
  /* The torn base: the clean one plus the first 100 bytes of a 500-byte update. */
  FX.torn = malloc(FX.clean_size + 600);
  memcpy(FX.torn, FX.clean, FX.clean_size);
  {
    unsigned char head[9] = { 1 };
    for(int i = 0; i < 8; i++) head[1 + i] = (unsigned char)(epoch >> (8 * i));
    unsigned char data[500];
    layout_gen(data, sizeof(data), 77);
    uint64_t st;
    logio_encode(FX.clean_size, head, 9, data, sizeof(data), FX.torn + FX.clean_size, &st);
  }
  FX.torn_size = FX.clean_size + 100;
  FX.after[0] = went_new(STATEIO_UPDATE, 33, 700);
  FX.after[1] = went_new(STATEIO_SNAPSHOT, 44, 701);
  FX.after[2] = went_new(STATEIO_UPDATE, 55, 702);

  /* The batches: small (one write at commit), over 4 MiB (written in chunks), bulk. */
  const size_t MB = 1u << 20;
  struct { const char *name; int bulk, careless; int n; int kind[6]; size_t len[6]; } vdef[] = {
    { "batch", 0, 0, 5, { 1, 1, 2, 1, 1 }, { 50, 40000, 300, 0, 70 } },
    { "batch of 5 MB", 0, 0, 5, { 1, 1, 2, 1, 1 }, { 50, 5 * MB, 300, 0, 70 } },
    { "bulk batch", 1, 0, 6, { 1, 1, 2, 1, 1, 1 }, { 3 * MB, 3 * MB, 100, 3 * MB, 3 * MB, 50 } },
    { "bulk batch, going on after an error", 1, 1, 6, { 1, 1, 2, 1, 1, 1 }, { 3 * MB, 3 * MB, 100, 3 * MB, 3 * MB, 50 } },
  };
  const char *ops[] = { "write", "fdatasync", "ftruncate" };
  int errs[] = { ENOSPC, EIO, EDQUOT };
  for(size_t vi = 0; vi < sizeof(vdef) / sizeof(vdef[0]); vi++){
    fault_variant v;
    memset(&v, 0, sizeof(v));
    v.name = vdef[vi].name;
    v.bulk = vdef[vi].bulk;
    v.careless = vdef[vi].careless;
    v.n = vdef[vi].n;
    for(int i = 0; i < v.n; i++) v.e[i] = went_new(vdef[vi].kind[i], vdef[vi].len[i], 600 + (unsigned)(vi * 10 + i));
    went *list[20];
    expect_list(list, v.e, v.n);          /* places the batch after the base */
    uint64_t b0 = FX.clean_size;
    fault specs[80];
    int nspec = 0;
    if( vi == 0 ){
      /* Every call of each op fails; the one write comes up short at many points. */
      size_t wlen = (size_t)(v.e[v.n - 1]->end - b0);
      size_t shorts[] = { 1, 14, 15, 16, (size_t)(v.e[0]->end - b0), (size_t)(v.e[0]->end - b0) + 1,
                          (size_t)(BLK - b0 % BLK), wlen / 2, (size_t)(v.e[1]->end - b0),
                          (size_t)(v.e[2]->end - b0), (size_t)(v.e[3]->end - b0), wlen - 1 };
      for(int oi = 0; oi < 3; oi++)
        for(int index = 0; index < 2; index++)
          for(int ei = 0; ei < 3; ei++) specs[nspec++] = fault_spec(ops[oi], index, errs[ei], 0);
      for(size_t si = 0; si < sizeof(shorts) / sizeof(shorts[0]); si++) specs[nspec++] = fault_spec("write", 0, 0, shorts[si]);
    }else{
      /* Large batches: each write (4 MiB chunks), the sync and each truncation fail with EIO. */
      int nw = small ? 2 : 6;
      for(int index = 0; index < nw; index++) specs[nspec++] = fault_spec("write", small ? 1 + 2 * index : index, EIO, 0);
      if( !small ){
        specs[nspec++] = fault_spec("fdatasync", 0, EIO, 0);
        for(int index = 0; index < 3; index++) specs[nspec++] = fault_spec("ftruncate", index, EIO, 0);
        specs[nspec++] = fault_spec("write", 1, 0, MB);
        specs[nspec++] = fault_spec("write", 0, 0, (size_t)(v.e[0]->end - b0));
      }
    }
    for(int tornbase = 0; tornbase < 2; tornbase++){
      if( tornbase && vi == 1 ) continue;
      if( tornbase && small && vi > 0 ) continue;
      for(int sync = 0; sync < 2; sync++){
        if( vi > 0 && !sync ) continue;
        for(int sp = 0; sp < nspec; sp++){
          for(int rb = 0; rb < 2; rb++){
            if( small && vi > 0 && rb ) continue;
            fault f = specs[sp];
            f.rollback_err = rb ? EIO : 0;
            fault_run(&v, f, tornbase, sync);
          }
        }
      }
    }
    for(int i = 0; i < v.n; i++) went_free(v.e[i]);
  }
  printf("crash: faults: %ld fault points injected in %ld runs (%ld of them with the rollback's ftruncate failing too)\n",
         FX.points, FX.runs, FX.doubles);
  if( FX.partial_visible || FX.whole_visible ){
    printf("crash: faults: when the rollback failed too, entries of the failed batch stayed in the log:"
           " some of them %ld times, all %ld times (the commit had returned an error)\n",
           FX.partial_visible, FX.whole_visible);
  }
  CHECK_MSG(FX.f_setup == 0, "faults: setup (%d)", FX.f_setup);
  CHECK_MSG(FX.points >= (small ? 100 : 200), "faults: fault points injected: %ld", FX.points);
  CHECK_MSG(FX.f_rc == 0, "faults: the call that meets the fault returns STATEIO_IOERR with its errno (%d wrong)", FX.f_rc);
  CHECK_MSG(FX.f_state == 0, "faults: after a failed batch the log restores to the state before it;"
            " a careless caller's later commit that succeeds gives the entries appended (%d wrong)", FX.f_state);
  CHECK_MSG(FX.f_next == 0, "faults: the next commit succeeds and is readable (%d wrong)", FX.f_next);
  for(int i = 0; i < FX.nbase; i++) went_free(FX.base[i]);
  for(int i = 0; i < 3; i++) went_free(FX.after[i]);
  free(FX.clean);
  free(FX.torn);
  unlink(FX.path);
}

/* ------------------------------------------------------------ main */

int main(void){
  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof(tmpdir), "%s/stateio-crash-XXXXXX", t && *t ? t : "/tmp");
  if( !mkdtemp(tmpdir) ){
    perror("mkdtemp");
    return 1;
  }
  char path[300];
  snprintf(path, sizeof(path), "%s/test.log", tmpdir);
  int built = build_log(path) == 0;
  CHECK_MSG(built, "the test log is written as computed");
  if( built ){
    list_records();
    test_layout();
    test_details_shown = 0;
    test_torn();
    test_details_shown = 0;
    test_damage();
  }
  test_details_shown = 0;
  test_nested();
  test_details_shown = 0;
  test_faults();
  unlink(path);
  {
    /* The logs' commit files (doc/COMMIT.md) and whatever else is left. */
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if( system(cmd) != 0 ) fprintf(stderr, "could not remove %s\n", tmpdir);
  }
  for(int i = 0; i < NW; i++) went_free(W[i]);
  free(orig);
  return test_report();
}
