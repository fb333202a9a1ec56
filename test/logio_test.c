/* SPDX-License-Identifier: MIT */
/*
** logio_test.c - edge cases of the block log and the state log, after
** LevelDB's db/log_test.cc: marginal and short trailers, aligned EOF, open
** for append, checksum mismatch, truncated trailing record, bad length,
** unexpected MIDDLE/LAST/FULL/FIRST records, partial last record; and of
** stateio: entry sizes around the block and header sizes, reopening in
** the middle of an epoch, a snapshot at offset 0, empty files, files that
** are not logs, directories, reading every epoch and walking the chain,
** batches and savepoints, two writers, injected write failures,
** stateio_check, and one big entry.
**
** Every log written here is checked against a model of what was written
** (offsets computed independently of the library): the forward reader, the
** rewind walk, restore, the update reader, read_entry_at and stateio_check.
** Damage is made with tiny helpers, as in log_test.cc: increment a byte,
** set a byte, shrink the file, fix a record's checksum.
**
** Environment: STATEIO_BIG=N  size of the big-entry test in MiB (default 64,
**              or 8 with STATEIO_SMALL).
**              STATEIO_SMALL=1  smaller runs (for valgrind): no 1 MiB entry
**              sizes, fewer small entries, a smaller bulk batch.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "stateio.h"
#include "logio.h"
#include "testhelp.h"

#define BLOCK  ((uint64_t)LOGIO_BLOCK)
#define HEADER ((uint64_t)LOGIO_HEADER)
#define EHDR   ((uint64_t)STATEIO_ENTRY_HEADER)

static char tmpdir[512];
static int small;          /* STATEIO_SMALL set: smaller runs (valgrind) */

/* ---------------------------------------------------------------- utilities */

static void *xmalloc(size_t n){
  void *p = malloc(n ? n : 1);
  if( !p ){ perror("malloc"); exit(2); }
  return p;
}

static void *xrealloc(void *p, size_t n){
  p = realloc(p, n ? n : 1);
  if( !p ){ perror("realloc"); exit(2); }
  return p;
}

/* A path in the temporary directory (a few rotating buffers). */
static const char *tpath(const char *name){
  static char buf[4][700];
  static int k;
  char *p = buf[k++ & 3];
  snprintf(p, 700, "%s/%s", tmpdir, name);
  return p;
}

static uint64_t fsize(const char *path){
  struct stat st;
  return stat(path, &st) == 0 ? (uint64_t)st.st_size : (uint64_t)-1;
}

static unsigned char *read_all(const char *path, size_t *len){
  *len = 0;
  int fd = open(path, O_RDONLY);
  if( fd < 0 ) return NULL;
  struct stat st;
  if( fstat(fd, &st) != 0 ){ close(fd); return NULL; }
  unsigned char *p = xmalloc((size_t)st.st_size);
  size_t n = 0;
  while( n < (size_t)st.st_size ){
    ssize_t got = read(fd, p + n, (size_t)st.st_size - n);
    if( got <= 0 ) break;
    n += (size_t)got;
  }
  close(fd);
  *len = n;
  return p;
}

static int write_all(const char *path, const void *p, size_t n){
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if( fd < 0 ) return -1;
  int ok = write(fd, p, n) == (ssize_t)n;
  return (close(fd) == 0 && ok) ? 0 : -1;
}

static int append_raw(const char *path, const void *p, size_t n){
  int fd = open(path, O_WRONLY | O_APPEND);
  if( fd < 0 ) return -1;
  int ok = write(fd, p, n) == (ssize_t)n;
  return (close(fd) == 0 && ok) ? 0 : -1;
}

/* The corruption helpers of log_test.cc. */
static int get_byte(const char *path, uint64_t off){
  unsigned char b;
  int fd = open(path, O_RDONLY);
  int ok = fd >= 0 && pread(fd, &b, 1, (off_t)off) == 1;
  if( fd >= 0 ) close(fd);
  return ok ? b : -1;
}
static void set_byte(const char *path, uint64_t off, int v){
  unsigned char b = (unsigned char)v;
  int fd = open(path, O_WRONLY);
  int ok = fd >= 0 && pwrite(fd, &b, 1, (off_t)off) == 1;
  if( fd >= 0 ) close(fd);
  CHECK_MSG(ok, "set_byte %s %llu", path, (unsigned long long)off);
}
static void increment_byte(const char *path, uint64_t off, int delta){
  set_byte(path, off, get_byte(path, off) + delta);
}
static void shrink_file(const char *path, uint64_t bytes){
  CHECK(truncate(path, (off_t)(fsize(path) - bytes)) == 0);
}
static void truncate_to(const char *path, uint64_t size){
  CHECK(truncate(path, (off_t)size) == 0);
}
/* Recompute the checksum of the record at rec (its length field as it is now). */
static void fix_checksum(const char *path, uint64_t rec){
  size_t n;
  unsigned char *p = read_all(path, &n);
  if( !CHECK(p && rec + HEADER <= n) ){ free(p); return; }
  size_t len = (size_t)p[rec + 5] | ((size_t)p[rec + 6] << 8);
  if( rec + HEADER + len > n ) len = n - (size_t)rec - (size_t)HEADER;
  uint32_t sum = (uint32_t)XXH64(p + rec + 4, 11 + len, 0);
  for(int i = 0; i < 4; i++) set_byte(path, rec + (uint64_t)i, (int)((sum >> (8 * i)) & 0xff));
  free(p);
}

/* Application data of entry `seed`: recognisable bytes. */
static unsigned char *pattern(size_t len, unsigned seed){
  unsigned char *p = xmalloc(len);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for(size_t i = 0; i < len; i++){
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    p[i] = (unsigned char)x;
  }
  return p;
}

/* ---------------------------------------------------------------- the model */

/* Where an entry appended to a log of `off` bytes starts (FORMAT.md step 1). */
static uint64_t my_start(uint64_t off){
  uint64_t r = off % BLOCK;
  if( r > 0 && r < HEADER ) return off + (BLOCK - r);
  if( BLOCK - r <= HEADER ) return off + (BLOCK - r);
  return off;
}

/* Bytes added by appending an entry of payload len at off, by simulation. */
static uint64_t my_encoded_size(uint64_t off, uint64_t len){
  uint64_t pos = my_start(off), left = len;
  do{
    uint64_t room = BLOCK - pos % BLOCK - HEADER;
    uint64_t take = left < room ? left : room;
    pos += HEADER + take;
    left -= take;
  }while( left > 0 );
  return pos - off;
}

typedef struct went {
  uint64_t start, end;
  int kind;
  uint64_t efield;        /* the entry's epoch field */
  unsigned char *data;
  size_t len;
} went;

typedef struct model {
  went *w;
  int n, cap;
  uint64_t end;           /* the log's size */
  uint64_t epoch;         /* current epoch */
} model;

typedef struct model_mark { int n; uint64_t end, epoch; } model_mark;

static void model_add(model *m, int kind, const void *data, size_t len){
  if( m->n == m->cap ){
    m->cap = m->cap ? 2 * m->cap : 64;
    m->w = xrealloc(m->w, sizeof(went) * (size_t)m->cap);
  }
  went *x = &m->w[m->n++];
  x->start = my_start(m->end);
  x->end = m->end + my_encoded_size(m->end, EHDR + len);
  x->kind = kind;
  x->efield = m->epoch;
  x->data = xmalloc(len);
  if( len ) memcpy(x->data, data, len);
  x->len = len;
  m->end = x->end;
  if( kind == STATEIO_SNAPSHOT ) m->epoch = x->start;
}

static model_mark model_get_mark(const model *m){ return (model_mark){ m->n, m->end, m->epoch }; }

static void model_reset(model *m, model_mark k){
  while( m->n > k.n ) free(m->w[--m->n].data);
  m->end = k.end;
  m->epoch = k.epoch;
}

static void model_free(model *m){
  model_reset(m, (model_mark){ 0, 0, 0 });
  free(m->w);
  memset(m, 0, sizeof(*m));
}

/* Append through the writer and, when it succeeds, to the model. */
static int put(stateio_writer *w, model *m, int kind, const void *data, size_t len){
  int rc = kind == STATEIO_UPDATE ? stateio_update(w, data, len) : stateio_snapshot(w, data, len);
  if( rc == STATEIO_OK ) model_add(m, kind, data, len);
  return rc;
}

static int put_pattern(stateio_writer *w, model *m, int kind, size_t len, unsigned seed){
  unsigned char *p = pattern(len, seed);
  int rc = put(w, m, kind, p, len);
  free(p);
  return rc;
}

static int same_entry(const went *x, const logio_entry *e){
  stateio_entry se;
  if( e->offset != x->start || e->end != x->end ) return 0;
  if( stateio_parse_entry(e->data, e->len, &se) != STATEIO_OK ) return 0;
  return se.kind == x->kind && se.epoch == x->efield && se.len == x->len
      && (x->len == 0 || memcmp(se.data, x->data, x->len) == 0);
}

/* ---------------------------------------------------------------- verify a healthy log */

typedef struct problems { int n; uint64_t off[16], len[16]; char why[16][64]; int stop_at; } problems;

static int problem_cb(void *arg, uint64_t off, uint64_t len, const char *why){
  problems *g = arg;
  if( g->n < 16 ){
    g->off[g->n] = off;
    g->len[g->n] = len;
    snprintf(g->why[g->n], sizeof(g->why[0]), "%s", why);
  }
  g->n++;
  return g->stop_at && g->n >= g->stop_at ? 7 : 0;
}

/*
** The log at path holds exactly the model's entries: forward reader, rewind
** walk, restore and the update reader, read_entry_at, stateio_check.
** The log may end in a torn tail of torn bytes after the model's end.
*/
static void verify_image(const char *ctx, const stateio_image *imgp, const model *m, uint64_t torn){
  stateio_image img = *imgp;
  int rc;
  CHECK_MSG(stateio_image_size(&img) == m->end + torn, "%s: log is %llu bytes, model says %llu + torn %llu", ctx,
            (unsigned long long)stateio_image_size(&img), (unsigned long long)m->end, (unsigned long long)torn);

  /* Forward: every entry, in order, then (torn tail) then the end. */
  logio_reader *r;
  rc = logio_reader_open(&r, &img, 0);
  CHECK(rc == STATEIO_OK);
  int i = 0, bad = 0;
  logio_entry e;
  for(int guard = 0; guard < 10000000; guard++){
    rc = logio_reader_next(r, &e);
    if( rc != STATEIO_OK ) break;
    if( i >= m->n || !same_entry(&m->w[i], &e) ){
      if( bad++ < 3 ) printf("  %s: reader: entry %d at %llu..%llu is not the one written\n", ctx, i,
                             (unsigned long long)e.offset, (unsigned long long)e.end);
    }
    i++;
  }
  if( torn > 0 ){
    CHECK_MSG(rc == STATEIO_TORN && e.offset == m->end && e.len == torn, "%s: torn tail reported (%s at %llu, %zu)",
              ctx, stateio_errstr(rc), (unsigned long long)e.offset, e.len);
    rc = logio_reader_next(r, &e);
  }
  CHECK_MSG(bad == 0 && i == m->n && rc == STATEIO_DONE,
            "%s: reader gives the %d entries written (%d read, %d wrong, then %s)", ctx, m->n, i, bad,
            stateio_errstr(rc));
  logio_reader_close(r);

  /* Rewind walk, newest first. */
  uint64_t limit = stateio_image_size(&img);
  int j;
  for(j = m->n - 1; j >= -1; j--){
    uint64_t s = 0, en = 0;
    rc = logio_rewind(&img, limit, &s, &en);
    if( j < 0 ){
      CHECK_MSG(rc == STATEIO_DONE, "%s: rewind ends after the first entry (%s)", ctx, stateio_errstr(rc));
      break;
    }
    if( !CHECK_MSG(rc == STATEIO_OK && s == m->w[j].start && en == m->w[j].end,
                   "%s: rewind from %llu: %s %llu..%llu, expected %llu..%llu", ctx,
                   (unsigned long long)limit, stateio_errstr(rc), (unsigned long long)s,
                   (unsigned long long)en, (unsigned long long)m->w[j].start,
                   (unsigned long long)m->w[j].end) ) break;
    limit = s;
  }

  /* Restore: the last entry decides the epoch. */
  stateio_state st;
  rc = stateio_restore(&img, &st);
  if( CHECK_MSG(rc == STATEIO_OK, "%s: restore: %s", ctx, stateio_errstr(rc)) ){
    int si = -1;
    uint64_t E = 0;
    if( m->n > 0 ){
      const went *L = &m->w[m->n - 1];
      E = L->kind == STATEIO_SNAPSHOT ? L->start : L->efield;
      for(int k = 0; k < m->n; k++) if( m->w[k].kind == STATEIO_SNAPSHOT && m->w[k].start == E ) si = k;
    }
    CHECK_MSG(st.epoch == E && st.has_snapshot == (si >= 0) && st.log_end == m->end && st.torn_len == torn,
              "%s: restore: epoch %llu snapshot %d log_end %llu torn %llu; expected %llu %d %llu %llu", ctx,
              (unsigned long long)st.epoch, st.has_snapshot, (unsigned long long)st.log_end,
              (unsigned long long)st.torn_len, (unsigned long long)E, si >= 0,
              (unsigned long long)m->end, (unsigned long long)torn);
    if( si >= 0 ){
      const went *s = &m->w[si];
      CHECK_MSG(st.snapshot_len == s->len && (s->len == 0 || memcmp(st.snapshot, s->data, s->len) == 0)
                && st.prev_epoch == s->efield && st.snapshot_end == s->end && st.updates_start == s->end,
                "%s: restored snapshot is the one written at %llu", ctx, (unsigned long long)s->start);
    }
    stateio_updates *u;
    rc = stateio_updates_open(&u, &img, &st);
    if( CHECK(rc == STATEIO_OK) ){
      int k = si + 1, ok = 1, count = 0;
      stateio_entry ue;
      for(int guard = 0; guard < 10000000; guard++){
        rc = stateio_updates_next(u, &ue);
        if( rc == STATEIO_DONE ) break;
        if( rc != STATEIO_OK || k >= m->n || m->w[k].kind != STATEIO_UPDATE || ue.offset != m->w[k].start
            || ue.len != m->w[k].len || (ue.len && memcmp(ue.data, m->w[k].data, ue.len) != 0)
            || stateio_updates_seq(u) != count ){
          ok = 0;
          break;
        }
        k++;
        count++;
      }
      CHECK_MSG(ok && k == m->n, "%s: update reader gives the %d updates of epoch %llu (%d, then %s)", ctx,
                m->n - si - 1, (unsigned long long)E, count, stateio_errstr(rc));
      stateio_updates_close(u);
    }
    stateio_state_clear(&st);
  }

  /* Random access: read_entry_at every entry (at most 300 of them). */
  int step = m->n > 300 ? m->n / 300 : 1, bad_at = 0;
  for(int k = 0; k < m->n; k += step){
    rc = logio_read_entry_at(&img, m->w[k].start, &e);
    if( rc != STATEIO_OK || !same_entry(&m->w[k], &e) ) bad_at++;
    if( rc == STATEIO_OK ) stateio_free((void*)e.data);
  }
  CHECK_MSG(bad_at == 0, "%s: read_entry_at gives each entry (%d wrong)", ctx, bad_at);

  /* Rewind from a limit inside an entry finds the entry before it. */
  int bad_rw = 0;
  for(int k = 0; k < m->n; k += step){
    uint64_t s = 0, en = 0;
    rc = logio_rewind(&img, m->w[k].end - 1, &s, &en);
    if( k == 0 ? rc != STATEIO_DONE : (rc != STATEIO_OK || s != m->w[k - 1].start || en != m->w[k - 1].end) ){
      if( bad_rw++ < 3 ) printf("  %s: rewind(%llu): %s %llu..%llu\n", ctx, (unsigned long long)(m->w[k].end - 1),
                                stateio_errstr(rc), (unsigned long long)s, (unsigned long long)en);
    }
  }
  CHECK_MSG(bad_rw == 0, "%s: rewind from inside each entry finds the one before (%d wrong)", ctx, bad_rw);

  /* stateio_check: nothing, or just the torn tail. */
  problems g = {0};
  rc = stateio_check(&img, problem_cb, &g);
  if( torn == 0 ){
    CHECK_MSG(rc == STATEIO_OK && g.n == 0, "%s: stateio_check: %s, %d problems (first: %s at %llu)", ctx,
              stateio_errstr(rc), g.n, g.n ? g.why[0] : "-", (unsigned long long)(g.n ? g.off[0] : 0));
  }else{
    CHECK_MSG(rc == STATEIO_OK && g.n == 1 && g.off[0] == m->end && g.len[0] == torn
              && strcmp(g.why[0], "torn tail") == 0,
              "%s: stateio_check reports the torn tail only: %s, %d problems (first: %s at %llu len %llu)",
              ctx, stateio_errstr(rc), g.n, g.n ? g.why[0] : "-", (unsigned long long)(g.n ? g.off[0] : 0),
              (unsigned long long)(g.n ? g.len[0] : 0));
  }
}

/*
** verify_image on the file, on the same bytes held in memory (fd -1, all
** tail), and on an image that is half file, half memory tail.
*/
static void verify_torn(const char *ctx, const char *path, const model *m, uint64_t torn){
  stateio_image img;
  char c2[200];
  int rc = stateio_open_image(path, &img);
  if( !CHECK_MSG(rc == STATEIO_OK, "%s: open image: %s", ctx, stateio_errstr(rc)) ) return;
  int before = test_failures();
  verify_image(ctx, &img, m, torn);
  size_t n;
  unsigned char *bytes = read_all(path, &n);
  /* (Only when the file passed: one bug, one set of messages.) */
  if( test_failures() == before && CHECK(bytes != NULL && n == img.file_size) ){
    stateio_image mem = { .fd = -1, .file_size = 0, .tail = bytes, .tail_len = n };
    snprintf(c2, sizeof(c2), "%s (in memory)", ctx);
    verify_image(c2, &mem, m, torn);
    stateio_image half = { .fd = img.fd, .file_size = n / 2, .tail = bytes + n / 2, .tail_len = n - n / 2 };
    snprintf(c2, sizeof(c2), "%s (half file, half tail)", ctx);
    verify_image(c2, &half, m, torn);
  }
  free(bytes);
  stateio_close_image(&img);
}

static void verify(const char *ctx, const char *path, const model *m){ verify_torn(ctx, path, m, 0); }

/* ---------------------------------------------------------------- texts of damaged logs */

/*
** What the forward reader reads from `start`, one line per read:
** "entry START END", "corrupt OFF LEN", "torn OFF LEN", "eof", "error X".
** The caller frees the result.
*/
static char *events_from(const char *path, uint64_t start){
  sbuf b = {0};
  stateio_image img;
  int rc = stateio_open_image(path, &img);
  if( rc ){ sb_printf(&b, "error %s\n", stateio_errstr(rc)); return b.s; }
  logio_reader *r;
  rc = logio_reader_open(&r, &img, start);
  if( rc ){ sb_printf(&b, "error %s\n", stateio_errstr(rc)); stateio_close_image(&img); return b.s; }
  for(int guard = 0; guard < 100000; guard++){
    logio_entry e;
    rc = logio_reader_next(r, &e);
    if( rc == STATEIO_OK ) sb_printf(&b, "entry %llu %llu\n", (unsigned long long)e.offset, (unsigned long long)e.end);
    else if( rc == STATEIO_CORRUPT_LOG ) sb_printf(&b, "corrupt %llu %zu\n", (unsigned long long)e.offset, e.len);
    else if( rc == STATEIO_TORN ) sb_printf(&b, "torn %llu %zu\n", (unsigned long long)e.offset, e.len);
    else if( rc == STATEIO_DONE ){ sb_printf(&b, "eof\n"); break; }
    else { sb_printf(&b, "error %s\n", stateio_errstr(rc)); break; }
  }
  logio_reader_close(r);
  stateio_close_image(&img);
  return b.s;
}
static char *events(const char *path){ return events_from(path, 0); }

/*
** What restore and the update reader give: "epoch E snapshot S|nil", then
** "update OFF LEN", "corrupt OFF LEN", "badentry OFF", then "eof"; or
** "error STATUS at BAD".
*/
static char *restore_str(const char *path){
  sbuf b = {0};
  stateio_image img;
  int rc = stateio_open_image(path, &img);
  if( rc ){ sb_printf(&b, "error %s\n", stateio_errstr(rc)); return b.s; }
  stateio_state st;
  rc = stateio_restore(&img, &st);
  if( rc ){
    sb_printf(&b, "error %s at %llu\n", stateio_errstr(rc), (unsigned long long)st.bad_offset);
  }else{
    if( st.has_snapshot ) sb_printf(&b, "epoch %llu snapshot %zu\n", (unsigned long long)st.epoch, st.snapshot_len);
    else sb_printf(&b, "epoch %llu nil\n", (unsigned long long)st.epoch);
    stateio_updates *u;
    if( stateio_updates_open(&u, &img, &st) == STATEIO_OK ){
      for(int guard = 0; guard < 100000; guard++){
        stateio_entry e;
        rc = stateio_updates_next(u, &e);
        if( rc == STATEIO_OK ) sb_printf(&b, "update %llu %zu\n", (unsigned long long)e.offset, e.len);
        else if( rc == STATEIO_CORRUPT_LOG ) sb_printf(&b, "corrupt %llu %zu\n", (unsigned long long)e.offset, e.len);
        else if( rc == STATEIO_CORRUPT_ENTRY ) sb_printf(&b, "badentry %llu\n", (unsigned long long)e.offset);
        else if( rc == STATEIO_DONE ){ sb_printf(&b, "eof\n"); break; }
        else { sb_printf(&b, "error %s\n", stateio_errstr(rc)); break; }
      }
      stateio_updates_close(u);
    }
    stateio_state_clear(&st);
  }
  stateio_close_image(&img);
  return b.s;
}

__attribute__((format(printf, 3, 4)))
static void check_text(const char *ctx, char *got, const char *fmt, ...){
  char want[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(want, sizeof(want), fmt, ap);
  va_end(ap);
  CHECK_MSG(got && strcmp(got, want) == 0, "%s:\n  [expected]\n%s  [got]\n%s", ctx, want, got ? got : "(null)\n");
  free(got);
}

/* A log of the given update data lengths (epoch 0, no snapshot). */
static void make_updates(const char *path, model *m, const size_t *lens, int n){
  unlink(path);
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  for(int i = 0; i < n; i++) CHECK(put_pattern(w, m, STATEIO_UPDATE, lens[i], (unsigned)(i + 1)) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
}

/* Build a record by hand: header at buf+pos, checksum computed. */
static void craft(unsigned char *buf, uint64_t pos, int type, uint64_t offfield, const void *payload, size_t len){
  unsigned char *p = buf + pos;
  p[4] = (unsigned char)type;
  p[5] = (unsigned char)(len & 0xff);
  p[6] = (unsigned char)(len >> 8);
  for(int i = 0; i < 8; i++) p[7 + i] = (unsigned char)(offfield >> (8 * i));
  memcpy(p + HEADER, payload, len);
  uint32_t sum = (uint32_t)XXH64(p + 4, 11 + len, 0);
  for(int i = 0; i < 4; i++) p[i] = (unsigned char)(sum >> (8 * i));
}

/* A state update payload of n bytes (n >= 9): kind 1, epoch 0, pattern. */
static unsigned char *upd_payload(size_t n, unsigned seed){
  unsigned char *p = pattern(n, seed);
  p[0] = STATEIO_UPDATE;
  memset(p + 1, 0, 8);
  return p;
}

/* ================================================================ 1. encoding */

/*
** logio_encode against an independent parse of its output, and against
** logio_encoded_size and logio_aligned, for offsets all around a block
** (including the 1..14 bytes of garbage case) and lengths around the
** block and header sizes.
*/
static void test_encode(void){
  static const uint64_t offs[] = {
    0, 1, 7, 14, 15, 16, 100, BLOCK - 31, BLOCK - 30, BLOCK - 17, BLOCK - 16, BLOCK - 15, BLOCK - 14,
    BLOCK - 1, BLOCK, BLOCK + 1, BLOCK + 14, BLOCK + 15, BLOCK + 16, 3 * BLOCK - 16, 5 * BLOCK + 14,
    (1ull << 32) + 7, (1ull << 40) - 15
  };
  static const uint64_t lens[] = {
    1, 2, 9, 10, BLOCK - HEADER - 9 - 1, BLOCK - HEADER - 9, BLOCK - HEADER - 1, BLOCK - HEADER,
    BLOCK - HEADER + 1, 32752, 32753, 32754, BLOCK - 1, BLOCK, BLOCK + 1, 2 * (BLOCK - HEADER),
    2 * (BLOCK - HEADER) + 1, 100000
  };
  int cases = 0, bad = 0;
  for(size_t oi = 0; oi < sizeof(offs) / sizeof(offs[0]); oi++){
    uint64_t off = offs[oi];
    /* logio_aligned is the reference's: it ignores the garbage case. */
    uint64_t room = BLOCK - off % BLOCK;
    CHECK_MSG(logio_aligned(off) == (room <= HEADER ? off + room : off), "logio_aligned(%llu) = %llu",
              (unsigned long long)off, (unsigned long long)logio_aligned(off));
    for(size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++){
      uint64_t len = lens[li];
      unsigned char *in = pattern((size_t)len, (unsigned)(oi * 100 + li));
      uint64_t size = logio_encoded_size(off, len);
      if( !CHECK_MSG(size == my_encoded_size(off, len), "logio_encoded_size(%llu, %llu) = %llu, expected %llu",
                     (unsigned long long)off, (unsigned long long)len, (unsigned long long)size,
                     (unsigned long long)my_encoded_size(off, len)) ){
        free(in);
        continue;
      }
      for(int split = 0; split < 3; split++){
        size_t head_len = split == 0 ? (len < 9 ? (size_t)len : 9) : split == 1 ? 0 : (size_t)len;
        unsigned char *out = xmalloc((size_t)size + 64);
        memset(out, 0xA5, (size_t)size + 64);
        uint64_t start = 0;
        logio_encode(off, in, head_len, in + head_len, (size_t)len - head_len, out, &start);
        cases++;
        const char *why = NULL;
        for(size_t k = 0; k < 64 && !why; k++) if( out[size + k] != 0xA5 ) why = "wrote past encoded_size";
        if( !why && start != my_start(off) ) why = "start";
        for(uint64_t k = 0; !why && k < start - off; k++) if( out[k] != 0 ) why = "padding not zero";
        /* Parse the records independently. */
        uint64_t pos = start, got = 0;
        int nrec = 0;
        while( !why && got < len ){
          const unsigned char *p = out + (pos - off);
          uint64_t rlen = (uint64_t)p[5] | ((uint64_t)p[6] << 8);
          uint64_t offf = 0;
          for(int i = 7; i >= 0; i--) offf = (offf << 8) | p[7 + i];
          uint32_t sum = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
          int last = got + rlen == len;
          int want_type = nrec == 0 ? (last ? LOGIO_FULL : LOGIO_FIRST) : (last ? LOGIO_LAST : LOGIO_MIDDLE);
          if( rlen == 0 ) why = "empty record";
          else if( p[4] != want_type ) why = "record type";
          else if( offf != pos - start ) why = "record offset field";
          else if( pos / BLOCK != (pos + HEADER + rlen - 1) / BLOCK ) why = "record crosses a block";
          else if( !last && (pos + HEADER + rlen) % BLOCK != 0 ) why = "FIRST/MIDDLE does not fill its block";
          else if( (uint32_t)XXH64(p + 4, 11 + rlen, 0) != sum ) why = "checksum";
          else if( memcmp(p + HEADER, in + got, (size_t)rlen) != 0 ) why = "payload";
          else if( nrec == 0 && BLOCK - pos % BLOCK <= HEADER ) why = "entry starts in a trailer";
          got += rlen;
          pos += HEADER + rlen;
          nrec++;
        }
        if( !why && pos - off != size ) why = "records do not end at encoded_size";
        if( why ){
          if( bad++ < 5 ) printf("  encode off %llu len %llu head %zu: %s\n", (unsigned long long)off,
                                 (unsigned long long)len, head_len, why);
        }
        free(out);
      }
      free(in);
    }
  }
  CHECK_MSG(bad == 0, "logio_encode: %d of %d encodings wrong", bad, cases);
  printf("encode: %d (offset, length, split) encodings parsed independently\n", cases);
}

/* ================================================================ 2. sizes */

/*
** Entries whose data, or whose whole block-log payload (data + 9), is
** around the block and header sizes, written after a preamble that leaves
** 0, 16, 15 or 30 bytes in the first block, round trip through the writer
** to the reader, rewind and restore.
*/
static void test_sizes(void){
  static const size_t sizes[] = {
    32768, 32768 - 15, 32768 - 15 - 9, 32753, 32752, 32754, 0, 1, 100000, 1 << 20
  };
  size_t nsizes = sizeof(sizes) / sizeof(sizes[0]) - (small ? 1 : 0);
  static const uint64_t leaves[] = { 0, 16, 15, 30 };   /* bytes left in block 0 by the preamble */
  const char *path = tpath("sizes.log");
  int logs = 0;
  for(size_t si = 0; si < nsizes; si++){
    for(int as_payload = 0; as_payload < 2; as_payload++){
      if( as_payload && sizes[si] < EHDR ) continue;
      size_t len = as_payload ? sizes[si] - (size_t)EHDR : sizes[si];
      for(size_t pi = 0; pi < sizeof(leaves) / sizeof(leaves[0]); pi++){
        char ctx[128];
        snprintf(ctx, sizeof(ctx), "sizes: %s %zu after a preamble leaving %llu",
                 as_payload ? "payload" : "data", sizes[si], (unsigned long long)leaves[pi]);
        unlink(path);
        model m = {0};
        stateio_writer *w;
        CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
        if( leaves[pi] ){
          size_t pre = (size_t)(BLOCK - leaves[pi] - HEADER - EHDR);
          CHECK(put_pattern(w, &m, STATEIO_UPDATE, pre, 1) == STATEIO_OK);
          CHECK_MSG(fsize(path) == BLOCK - leaves[pi], "%s: preamble", ctx);
        }
        CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, len, 2) == STATEIO_OK);
        CHECK(put_pattern(w, &m, STATEIO_UPDATE, len, 3) == STATEIO_OK);
        CHECK(put_pattern(w, &m, STATEIO_UPDATE, 0, 4) == STATEIO_OK);     /* a 0-byte update */
        CHECK(put_pattern(w, &m, STATEIO_UPDATE, len, 5) == STATEIO_OK);
        CHECK(stateio_writer_close(w) == STATEIO_OK);
        verify(ctx, path, &m);
        model_free(&m);
        logs++;
      }
    }
  }
  printf("sizes: %d logs of entries around the block and header sizes\n", logs);
}

/* ================================================================ 3. log_test.cc */

/* MarginalTrailer, ShortTrailer, AlignedEof: what is left at a block's end. */
static void test_trailers(void){
  const char *path = tpath("trailer.log");
  for(uint64_t left = 0; left <= 20; left++){
    char ctx[64];
    snprintf(ctx, sizeof(ctx), "trailer of %llu bytes", (unsigned long long)left);
    /* An entry that ends `left` bytes before the end of block 0. */
    model m = {0};
    size_t first = (size_t)(BLOCK - left - HEADER - EHDR);
    size_t lens1[1] = { first };
    make_updates(path, &m, lens1, 1);
    /* AlignedEof / MarginalTrailer2: the file ends there; it reads cleanly. */
    check_text(ctx, events(path), "entry 0 %llu\neof\n", (unsigned long long)(BLOCK - left));
    verify(ctx, path, &m);
    /* Open for append: the next entry goes after padding when <= 15 bytes are left. */
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
    CHECK(put_pattern(w, &m, STATEIO_UPDATE, 5, 7) == STATEIO_OK);
    CHECK(put_pattern(w, &m, STATEIO_UPDATE, 0, 8) == STATEIO_OK);
    CHECK(stateio_writer_close(w) == STATEIO_OK);
    uint64_t want_start = left <= HEADER ? BLOCK : BLOCK - left;
    CHECK_MSG(m.w[1].start == want_start && get_byte(path, BLOCK - left) == (left <= HEADER && left > 0 ? 0 : get_byte(path, BLOCK - left)),
              "%s: second entry at %llu", ctx, (unsigned long long)m.w[1].start);
    if( left > 0 && left <= HEADER ){
      size_t n;
      unsigned char *p = read_all(path, &n);
      int zero = 1;
      for(uint64_t k = BLOCK - left; k < BLOCK; k++) if( p[k] ) zero = 0;
      CHECK_MSG(zero, "%s: trailer padded with zeros", ctx);
      free(p);
    }
    verify(ctx, path, &m);
    model_free(&m);
  }
}

/* ChecksumMismatch, BadRecordType, BadLength: damage with an entry after it. */
static void test_damaged_records(void){
  const char *path = tpath("damage.log");
  static const size_t lens[] = { 100, 200, 300 };
  model m = {0};
  char ctx[80];

  /* ChecksumMismatch: the middle entry's checksum is off by one. */
  make_updates(path, &m, lens, 3);
  increment_byte(path, m.w[1].start, 1);
  snprintf(ctx, sizeof(ctx), "checksum mismatch");
  check_text(ctx, events(path), "entry 0 %llu\ncorrupt %llu %llu\nentry %llu %llu\neof\n",
             (unsigned long long)m.w[0].end, (unsigned long long)m.w[1].start,
             (unsigned long long)(m.w[2].start - m.w[1].start), (unsigned long long)m.w[2].start,
             (unsigned long long)m.w[2].end);
  /* Restore: epoch 0 begins with an update; the damage is reported and the reader goes on. */
  check_text(ctx, restore_str(path), "epoch 0 nil\nupdate 0 100\ncorrupt %llu %llu\nupdate %llu 300\neof\n",
             (unsigned long long)m.w[1].start, (unsigned long long)(m.w[2].start - m.w[1].start),
             (unsigned long long)m.w[2].start);
  {
    stateio_image img;
    problems g = {0};
    CHECK(stateio_open_image(path, &img) == STATEIO_OK);
    CHECK(stateio_check(&img, problem_cb, &g) == STATEIO_OK);
    CHECK_MSG(g.n == 1 && g.off[0] == m.w[1].start && g.len[0] == m.w[2].start - m.w[1].start
              && strcmp(g.why[0], "checksum mismatch") == 0,
              "stateio_check: %d problems, first %s at %llu len %llu", g.n, g.n ? g.why[0] : "-",
              (unsigned long long)g.off[0], (unsigned long long)g.len[0]);
    /* logio_reader_problem names it too. */
    logio_reader *r;
    logio_entry e;
    CHECK(logio_reader_open(&r, &img, 0) == STATEIO_OK);
    CHECK(logio_reader_next(r, &e) == STATEIO_OK);
    CHECK(logio_reader_next(r, &e) == STATEIO_CORRUPT_LOG);
    CHECK_MSG(strcmp(logio_reader_problem(r), "checksum mismatch") == 0, "problem: %s", logio_reader_problem(r));
    logio_reader_close(r);
    /*
    ** Damage in the last entry too: nothing complete follows the first
    ** damage, but the damaged entries are complete (all their bytes are
    ** there), so it is one damaged region, never a torn tail.
    ** (2026-12-01: was reported as a torn tail and so dropped in silence.)
    */
    increment_byte(path, m.w[2].start + 20, 1);
    problems g3 = {0};
    CHECK(stateio_check(&img, problem_cb, &g3) == STATEIO_OK);
    CHECK_MSG(g3.n == 1 && g3.off[0] == m.w[1].start && g3.len[0] == m.w[2].end - m.w[1].start
              && strcmp(g3.why[0], "checksum mismatch") == 0,
              "stateio_check: %d problems; first %s at %llu", g3.n, g3.n ? g3.why[0] : "-",
              (unsigned long long)g3.off[0]);
    stateio_close_image(&img);
  }
  model_free(&m);

  /*
  ** Two damaged entries with whole entries after each (a checksum byte
  ** each: their ends are proven): two problems; a callback can stop the check.
  */
  {
    static const size_t lens5[] = { 10, 20, 30, 40, 50 };
    make_updates(path, &m, lens5, 5);
    increment_byte(path, m.w[1].start + 1, 1);
    increment_byte(path, m.w[3].start + 2, 1);
    stateio_image img;
    CHECK(stateio_open_image(path, &img) == STATEIO_OK);
    problems g = {0};
    CHECK(stateio_check(&img, problem_cb, &g) == STATEIO_OK);
    CHECK_MSG(g.n == 2 && g.off[0] == m.w[1].start && g.len[0] == m.w[2].start - m.w[1].start
              && g.off[1] == m.w[3].start && g.len[1] == m.w[4].start - m.w[3].start
              && strcmp(g.why[0], "checksum mismatch") == 0 && strcmp(g.why[1], "checksum mismatch") == 0,
              "stateio_check: two damaged entries: %d problems", g.n);
    /* A callback that returns non-zero stops the check with that value. */
    problems g2 = {0};
    g2.stop_at = 1;
    CHECK(stateio_check(&img, problem_cb, &g2) == 7 && g2.n == 1);
    stateio_close_image(&img);
    check_text("two damaged entries: restore", restore_str(path),
               "epoch 0 nil\nupdate 0 10\ncorrupt %llu %llu\nupdate %llu 30\ncorrupt %llu %llu\nupdate %llu 50\neof\n",
               (unsigned long long)m.w[1].start, (unsigned long long)(m.w[2].start - m.w[1].start),
               (unsigned long long)m.w[2].start, (unsigned long long)m.w[3].start,
               (unsigned long long)(m.w[4].start - m.w[3].start), (unsigned long long)m.w[4].start);
    /*
    ** A damaged payload proves nothing about where the next record starts:
    ** the rest of the block is one damaged region (nothing in it is read),
    ** and restore, which cannot know the current epoch, names where it
    ** begins. (2026-12-01: the end the damaged header claimed was trusted.)
    */
    increment_byte(path, m.w[1].start + 1, -1);
    increment_byte(path, m.w[3].start + 2, -1);
    increment_byte(path, m.w[1].start + 30, 1);
    CHECK(stateio_open_image(path, &img) == STATEIO_OK);
    problems g4 = {0};
    CHECK(stateio_check(&img, problem_cb, &g4) == STATEIO_OK);
    CHECK_MSG(g4.n == 1 && g4.off[0] == m.w[1].start && g4.len[0] == m.w[4].end - m.w[1].start
              && strcmp(g4.why[0], "checksum mismatch") == 0,
              "stateio_check: a damaged payload: %d problems, first %s at %llu len %llu", g4.n,
              g4.n ? g4.why[0] : "-", (unsigned long long)g4.off[0], (unsigned long long)g4.len[0]);
    stateio_close_image(&img);
    check_text("a damaged payload: restore", restore_str(path), "error corrupt log at %llu\n",
               (unsigned long long)m.w[1].start);
    model_free(&m);
  }

  /* BadRecordType: type 100, checksum fixed. */
  make_updates(path, &m, lens, 3);
  set_byte(path, m.w[1].start + 4, 100);
  fix_checksum(path, m.w[1].start);
  check_text("bad record type", events(path), "entry 0 %llu\ncorrupt %llu %llu\nentry %llu %llu\neof\n",
             (unsigned long long)m.w[0].end, (unsigned long long)m.w[1].start,
             (unsigned long long)(m.w[2].start - m.w[1].start), (unsigned long long)m.w[2].start,
             (unsigned long long)m.w[2].end);
  model_free(&m);

  /* BadLength: a record that fills block 0, its length made one larger. */
  size_t lens2[2] = { (size_t)(BLOCK - HEADER - EHDR), 3 };
  make_updates(path, &m, lens2, 2);
  CHECK(m.w[1].start == BLOCK);
  increment_byte(path, 5, 1);
  check_text("bad length", events(path), "corrupt 0 %llu\nentry %llu %llu\neof\n", (unsigned long long)BLOCK,
             (unsigned long long)BLOCK, (unsigned long long)m.w[1].end);
  model_free(&m);

  /* A length that stays inside the block, checksum fixed: still never a phantom entry. */
  make_updates(path, &m, lens, 3);
  increment_byte(path, m.w[0].start + 5, 1);
  fix_checksum(path, m.w[0].start);
  {
    char *ev = events(path);
    /* The grown record is the only way to read the first entry: if it is taken, its data is wrong. */
    stateio_image img;
    CHECK(stateio_open_image(path, &img) == STATEIO_OK);
    logio_reader *r;
    CHECK(logio_reader_open(&r, &img, 0) == STATEIO_OK);
    int invented = 0, found_last = 0, reported = 0;
    for(int guard = 0; guard < 100; guard++){
      logio_entry e;
      int rc = logio_reader_next(r, &e);
      if( rc == STATEIO_DONE || (rc != STATEIO_OK && rc != STATEIO_CORRUPT_LOG && rc != STATEIO_TORN) ) break;
      /* The grown record took the first byte of w[1]: the region starts one past it. */
      if( rc == STATEIO_CORRUPT_LOG && e.offset <= m.w[1].start + 1 && e.offset + e.len >= m.w[2].end ) reported = 1;
      if( rc != STATEIO_OK ) continue;
      if( e.offset == m.w[2].start && same_entry(&m.w[2], &e) ) found_last = 1;
      else if( e.offset != m.w[0].start && !(e.offset == m.w[1].start && same_entry(&m.w[1], &e)) ) invented++;
    }
    logio_reader_close(r);
    stateio_close_image(&img);
    /*
    ** Known limit: the checksum was fixed, so the grown record is valid. The
    ** bytes after it are no record, and nothing proves where the next one
    ** starts: the rest of the block is a damaged region (never searched for
    ** something that looks like a record), reported, and nothing in it is
    ** returned. (2026-12-01: was searched byte by byte.)
    */
    CHECK_MSG(reported && !found_last && invented == 0,
              "length grown within the block: the rest of the block is reported, nothing invented\n%s", ev);
    if( invented ) printf("  note: a record whose length and checksum were both rewritten is read as an entry (%d)\n", invented);
    free(ev);
  }
  model_free(&m);
}

/* TruncatedTrailingRecordIsIgnored, BadLengthAtEndIsIgnored, PartialLastIsIgnored. */
static void test_torn_tails(void){
  const char *path = tpath("torn.log");
  static const size_t lens[] = { 100, 200, 300 };
  char ctx[96];

  /* Cut the last entry at every point of its header and a few of its payload. */
  static const uint64_t cuts[] = { 1, 4, 5, 7, 14, 15, 16, 17, 100, 323 };
  for(size_t ci = 0; ci < sizeof(cuts) / sizeof(cuts[0]); ci++){
    model m = {0};
    make_updates(path, &m, lens, 3);
    uint64_t keep = cuts[ci];                          /* bytes of the last entry left */
    truncate_to(path, m.w[2].start + keep);
    snprintf(ctx, sizeof(ctx), "last entry cut to %llu bytes", (unsigned long long)keep);
    model_mark k = { 2, m.w[1].end, 0 };
    model_reset(&m, k);
    check_text(ctx, events(path), "entry 0 %llu\nentry %llu %llu\ntorn %llu %llu\neof\n",
               (unsigned long long)m.w[0].end, (unsigned long long)m.w[1].start, (unsigned long long)m.w[1].end,
               (unsigned long long)m.w[1].end, (unsigned long long)keep);
    verify_torn(ctx, path, &m, keep);
    /* A writer truncates the torn tail before it appends. */
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
    CHECK(put_pattern(w, &m, STATEIO_UPDATE, 50, 9) == STATEIO_OK);
    CHECK(stateio_writer_close(w) == STATEIO_OK);
    verify(ctx, path, &m);
    model_free(&m);
  }

  /* Garbage (not a record) appended after the last entry: a torn tail too. */
  {
    model m = {0};
    make_updates(path, &m, lens, 3);
    static const char junk[] = "\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab\xab";
    CHECK(append_raw(path, junk, 11) == 0);
    verify_torn("garbage tail", path, &m, 11);
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
    CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 10, 9) == STATEIO_OK);
    CHECK(put_pattern(w, &m, STATEIO_UPDATE, 10, 10) == STATEIO_OK);
    CHECK(stateio_writer_close(w) == STATEIO_OK);
    verify("garbage tail, then appended", path, &m);
    model_free(&m);
  }

  /* PartialLastIsIgnored: a multi-block entry (FIRST, LAST) missing its last byte / its LAST record. */
  static const uint64_t short_by[] = { 1, 20 };
  for(int i = 0; i < 2; i++){
    model m = {0};
    size_t l2[2] = { 100, (size_t)BLOCK };
    make_updates(path, &m, l2, 2);
    uint64_t cut = short_by[i] == 20 ? m.w[1].end - (m.w[1].end % BLOCK) : m.w[1].end - 1;
    if( short_by[i] == 1 ) shrink_file(path, 1);
    else truncate_to(path, cut);
    snprintf(ctx, sizeof(ctx), "multi-block entry cut at %llu", (unsigned long long)cut);
    model_reset(&m, (model_mark){ 1, m.w[0].end, 0 });
    verify_torn(ctx, path, &m, cut - m.end);
    model_free(&m);
  }

  /*
  ** BadLengthAtEndIsIgnored with a single entry: the first append of a new
  ** log was torn. Nothing complete was ever written: restore must give the
  ** empty state (not STATEIO_NOTLOG), and a writer must be able to start the
  ** log. Cuts that leave the whole record header (type FULL, offset 0):
  ** such a file is a torn log, not some other file.
  */
  static const uint64_t first_cuts[] = { 15, 16, 50, 108 };
  for(size_t ci = 0; ci < sizeof(first_cuts) / sizeof(first_cuts[0]); ci++){
    model m = {0};
    size_t l1[1] = { 100 };
    make_updates(path, &m, l1, 1);                      /* one entry of 124 bytes */
    truncate_to(path, first_cuts[ci]);
    snprintf(ctx, sizeof(ctx), "first entry of the log cut to %llu bytes", (unsigned long long)first_cuts[ci]);
    model_reset(&m, (model_mark){ 0, 0, 0 });
    check_text(ctx, events(path), "torn 0 %llu\neof\n", (unsigned long long)first_cuts[ci]);
    check_text(ctx, restore_str(path), "epoch 0 nil\neof\n");
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
    int rc = put_pattern(w, &m, STATEIO_UPDATE, 30, 11);
    CHECK_MSG(rc == STATEIO_OK, "%s: a writer appends: %s", ctx, stateio_errstr(rc));
    CHECK(stateio_writer_close(w) == STATEIO_OK);
    if( rc == STATEIO_OK ) verify(ctx, path, &m);
    model_free(&m);
  }
  /* A torn FIRST record of a multi-block first entry (its header complete). */
  {
    model m = {0};
    size_t l1[1] = { 50000 };
    make_updates(path, &m, l1, 1);
    truncate_to(path, BLOCK - 100);
    check_text("first FIRST record cut", restore_str(path), "epoch 0 nil\neof\n");
    model_free(&m);
  }
}

/* Unexpected MIDDLE, LAST, FULL, FIRST records, made by hand. */
static void test_unexpected_types(void){
  const char *path = tpath("types.log");
  size_t fill = (size_t)(BLOCK - HEADER);           /* a payload that fills a block */
  unsigned char *a = upd_payload(fill, 1), *b = upd_payload(fill, 2), *c = upd_payload(100, 3);
  unsigned char *buf = xmalloc((size_t)(4 * BLOCK));
  memset(buf, 0, (size_t)(4 * BLOCK));
  uint64_t cend;

  /* UnexpectedMiddleType: FULL A | MIDDLE (no FIRST before it) | FULL C. */
  craft(buf, 0, LOGIO_FULL, 0, a, fill);
  craft(buf, BLOCK, LOGIO_MIDDLE, BLOCK, b, fill);
  craft(buf, 2 * BLOCK, LOGIO_FULL, 0, c, 100);
  cend = 2 * BLOCK + HEADER + 100;
  CHECK(write_all(path, buf, (size_t)cend) == 0);
  check_text("unexpected MIDDLE", events(path), "entry 0 %llu\ncorrupt %llu %llu\nentry %llu %llu\neof\n",
             (unsigned long long)BLOCK, (unsigned long long)BLOCK, (unsigned long long)BLOCK,
             (unsigned long long)(2 * BLOCK), (unsigned long long)cend);
  /* Opened at that block boundary, a continuation is skipped silently. */
  check_text("MIDDLE skipped when opened at its block", events_from(path, BLOCK), "entry %llu %llu\neof\n",
             (unsigned long long)(2 * BLOCK), (unsigned long long)cend);

  /* UnexpectedLastType: FULL A | LAST (no FIRST) FULL C in the same block. */
  memset(buf, 0, (size_t)(4 * BLOCK));
  craft(buf, 0, LOGIO_FULL, 0, a, fill);
  craft(buf, BLOCK, LOGIO_LAST, BLOCK, b, 200);
  craft(buf, BLOCK + HEADER + 200, LOGIO_FULL, 0, c, 100);
  cend = BLOCK + 2 * HEADER + 300;
  CHECK(write_all(path, buf, (size_t)cend) == 0);
  check_text("unexpected LAST", events(path), "entry 0 %llu\ncorrupt %llu %llu\nentry %llu %llu\neof\n",
             (unsigned long long)BLOCK, (unsigned long long)BLOCK, (unsigned long long)(HEADER + 200),
             (unsigned long long)(BLOCK + HEADER + 200), (unsigned long long)cend);

  /* UnexpectedFullType: FIRST (fills block 0) | FULL C: the FIRST is dropped. */
  memset(buf, 0, (size_t)(4 * BLOCK));
  craft(buf, 0, LOGIO_FIRST, 0, a, fill);
  craft(buf, BLOCK, LOGIO_FULL, 0, c, 100);
  cend = BLOCK + HEADER + 100;
  CHECK(write_all(path, buf, (size_t)cend) == 0);
  check_text("unexpected FULL", events(path), "corrupt 0 %llu\nentry %llu %llu\neof\n", (unsigned long long)BLOCK,
             (unsigned long long)BLOCK, (unsigned long long)cend);

  /* UnexpectedFirstType: FIRST | FIRST LAST: the first FIRST is dropped, the second entry read. */
  memset(buf, 0, (size_t)(4 * BLOCK));
  craft(buf, 0, LOGIO_FIRST, 0, a, fill);
  craft(buf, BLOCK, LOGIO_FIRST, 0, b, fill);
  craft(buf, 2 * BLOCK, LOGIO_LAST, BLOCK, c, 100);
  cend = 2 * BLOCK + HEADER + 100;
  CHECK(write_all(path, buf, (size_t)cend) == 0);
  check_text("unexpected FIRST", events(path), "corrupt 0 %llu\nentry %llu %llu\neof\n", (unsigned long long)BLOCK,
             (unsigned long long)BLOCK, (unsigned long long)cend);
  {
    /* The entry read is FIRST+LAST joined, payload b then c. */
    stateio_image img;
    logio_entry e;
    CHECK(stateio_open_image(path, &img) == STATEIO_OK);
    int rc = logio_read_entry_at(&img, BLOCK, &e);
    CHECK(rc == STATEIO_OK && e.len == fill + 100 && memcmp(e.data, b, fill) == 0 && memcmp(e.data + fill, c, 100) == 0);
    if( rc == STATEIO_OK ) stateio_free((void*)e.data);
    /* rewind finds it, and nothing before it. */
    uint64_t s, en;
    CHECK(logio_rewind(&img, cend, &s, &en) == STATEIO_OK && s == BLOCK && en == cend);
    CHECK(logio_rewind(&img, BLOCK, &s, &en) == STATEIO_DONE);
    stateio_close_image(&img);
  }

  /* A LAST whose offset points at the wrong FIRST: broken sequence, nothing joined. */
  memset(buf, 0, (size_t)(4 * BLOCK));
  craft(buf, 0, LOGIO_FULL, 0, a, fill);
  craft(buf, BLOCK, LOGIO_FIRST, 0, a, fill);
  craft(buf, 2 * BLOCK, LOGIO_LAST, 2 * BLOCK, b, 100);   /* claims to start at 0 */
  craft(buf, 2 * BLOCK + HEADER + 100, LOGIO_FULL, 0, c, 100);
  cend = 2 * BLOCK + 2 * HEADER + 200;
  CHECK(write_all(path, buf, (size_t)cend) == 0);
  check_text("LAST with a wrong offset", events(path), "entry 0 %llu\ncorrupt %llu %llu\nentry %llu %llu\neof\n",
             (unsigned long long)BLOCK, (unsigned long long)BLOCK, (unsigned long long)(BLOCK + HEADER + 100),
             (unsigned long long)(2 * BLOCK + HEADER + 100), (unsigned long long)cend);

  /* MissingLastIsIgnored: FULL C | FIRST at the end of the file: a torn tail. */
  memset(buf, 0, (size_t)(4 * BLOCK));
  craft(buf, 0, LOGIO_FULL, 0, c, 100);
  craft(buf, HEADER + 100, LOGIO_FIRST, 0, a, (size_t)(BLOCK - 2 * HEADER - 100));
  CHECK(write_all(path, buf, (size_t)BLOCK) == 0);
  check_text("missing LAST", events(path), "entry 0 %llu\ntorn %llu %llu\neof\n", (unsigned long long)(HEADER + 100),
             (unsigned long long)(HEADER + 100), (unsigned long long)(BLOCK - HEADER - 100));
  check_text("missing LAST: restore", restore_str(path), "epoch 0 nil\nupdate 0 91\neof\n");

  free(a); free(b); free(c); free(buf);
}

/* ErrorJoinsRecords: a damaged MIDDLE never joins two entries' records. */
static void test_error_joins_records(void){
  const char *path = tpath("joins.log");
  model m = {0};
  size_t lens[3] = { 3 * (size_t)BLOCK, 3 * (size_t)BLOCK, 100 };   /* FIRST MIDDLE MIDDLE LAST each */
  make_updates(path, &m, lens, 3);
  /* Wipe the block that holds entry 0's second MIDDLE record and entry 1's start. */
  uint64_t b0 = (m.w[1].start / BLOCK) * BLOCK;
  for(uint64_t k = b0; k < b0 + BLOCK; k += 997) set_byte(path, k, 0x5a);
  set_byte(path, b0, 0x5a);
  char *ev = events(path);
  /* Whatever is reported, no entry other than entry 2 is returned (0 and 1 are both damaged). */
  char want[128];
  snprintf(want, sizeof(want), "entry %llu %llu\neof\n", (unsigned long long)m.w[2].start, (unsigned long long)m.w[2].end);
  size_t wl = strlen(want), el = strlen(ev);
  CHECK_MSG(el >= wl && strcmp(ev + el - wl, want) == 0 && strncmp(ev, "corrupt 0 ", 10) == 0
            && strstr(ev, "entry") == strstr(ev, want),
            "error joins records: only entry 2 is read:\n%s", ev);
  free(ev);
  model_free(&m);
}

/* ================================================================ 4. stateio */

/* A log of FULL records made by hand from state payloads; starts[] gets their offsets. */
static void craft_log(const char *path, unsigned char **pl, const size_t *lens, int n, uint64_t *starts){
  size_t total = 0;
  for(int i = 0; i < n; i++) total += (size_t)HEADER + lens[i];
  unsigned char *buf = xmalloc(total);
  uint64_t pos = 0;
  for(int i = 0; i < n; i++){
    starts[i] = pos;
    craft(buf, pos, LOGIO_FULL, 0, pl[i], lens[i]);
    pos += HEADER + lens[i];
  }
  CHECK(write_all(path, buf, total) == 0);
  free(buf);
}

/* A state payload: kind, epoch field, n bytes of data. */
static unsigned char *state_payload(int kind, uint64_t epoch, size_t n, size_t *len){
  unsigned char *p = xmalloc(EHDR + n);
  p[0] = (unsigned char)kind;
  for(int i = 0; i < 8; i++) p[1 + i] = (unsigned char)(epoch >> (8 * i));
  memset(p + EHDR, 'd', n);
  *len = (size_t)EHDR + n;
  return p;
}

/* Entries that are valid records but not valid state entries. */
static void test_bad_state_entries(void){
  const char *path = tpath("badstate.log");
  unsigned char *pl[4];
  size_t lens[4];
  uint64_t st[4];
  char ctx[64];

  /* stateio_parse_entry itself. */
  stateio_entry se;
  unsigned char raw[12] = { 2, 7, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c' };
  CHECK(stateio_parse_entry(raw, 12, &se) == STATEIO_OK && se.kind == 2 && se.epoch == 7 && se.len == 3
        && se.data == raw + 9);
  CHECK(stateio_parse_entry(raw, 9, &se) == STATEIO_OK && se.len == 0);
  CHECK(stateio_parse_entry(raw, 8, &se) == STATEIO_CORRUPT_ENTRY);
  CHECK(stateio_parse_entry(raw, 0, &se) == STATEIO_CORRUPT_ENTRY);
  raw[0] = 0;
  CHECK(stateio_parse_entry(raw, 12, &se) == STATEIO_CORRUPT_ENTRY);
  raw[0] = 3;
  CHECK(stateio_parse_entry(raw, 12, &se) == STATEIO_CORRUPT_ENTRY);

  /* A kind-3 entry among the updates: the update reader reports it and goes on. */
  pl[0] = state_payload(STATEIO_SNAPSHOT, 0, 10, &lens[0]);
  pl[1] = state_payload(STATEIO_UPDATE, 0, 5, &lens[1]);
  pl[2] = state_payload(3, 0, 5, &lens[2]);
  pl[3] = state_payload(STATEIO_UPDATE, 0, 6, &lens[3]);
  craft_log(path, pl, lens, 4, st);
  check_text("kind 3 entry", restore_str(path), "epoch 0 snapshot 10\nupdate %llu 5\nbadentry %llu\nupdate %llu 6\neof\n",
             (unsigned long long)st[1], (unsigned long long)st[2], (unsigned long long)st[3]);
  {
    stateio_image img;
    problems g = {0};
    CHECK(stateio_open_image(path, &img) == STATEIO_OK);
    CHECK(stateio_check(&img, problem_cb, &g) == STATEIO_OK);
    CHECK_MSG(g.n == 1 && g.off[0] == st[2] && g.len[0] == st[3] - st[2] && strcmp(g.why[0], "bad entry kind") == 0,
              "check: kind 3: %d problems, first %s", g.n, g.n ? g.why[0] : "-");
    stateio_close_image(&img);
  }
  /* An update of another epoch among them: reported, the reader goes on. */
  free(pl[2]);
  pl[2] = state_payload(STATEIO_UPDATE, 7, 5, &lens[2]);
  craft_log(path, pl, lens, 4, st);
  check_text("update of another epoch", restore_str(path),
             "epoch 0 snapshot 10\nupdate %llu 5\nbadentry %llu\nupdate %llu 6\neof\n",
             (unsigned long long)st[1], (unsigned long long)st[2], (unsigned long long)st[3]);
  /* The last entry is a kind-3 entry: restore fails naming it. */
  free(pl[3]);
  pl[3] = state_payload(3, 0, 6, &lens[3]);
  craft_log(path, pl, lens, 4, st);
  check_text("last entry of kind 3", restore_str(path), "error corrupt state entry at %llu\n", (unsigned long long)st[3]);
  /* The last entry is shorter than 9 bytes. */
  lens[3] = 5;
  craft_log(path, pl, lens, 4, st);
  check_text("last entry of 5 bytes", restore_str(path), "error corrupt state entry at %llu\n", (unsigned long long)st[3]);
  {
    stateio_image img;
    problems g = {0};
    CHECK(stateio_open_image(path, &img) == STATEIO_OK);
    CHECK(stateio_check(&img, problem_cb, &g) == STATEIO_OK);
    CHECK_MSG(g.n == 2 && g.off[1] == st[3] && strcmp(g.why[1], "state entry shorter than 9 bytes") == 0,
              "check: short entry: %d problems, second %s", g.n, g.n > 1 ? g.why[1] : "-");
    stateio_close_image(&img);
  }
  /* The last entry is an update naming an epoch after itself. */
  free(pl[3]);
  pl[3] = state_payload(STATEIO_UPDATE, 99999, 6, &lens[3]);
  craft_log(path, pl, lens, 4, st);
  check_text("update naming a later epoch", restore_str(path), "error corrupt state entry at %llu\n",
             (unsigned long long)st[3]);
  /* The last entry is an update naming an epoch where an update starts (not a snapshot). */
  free(pl[2]);
  free(pl[3]);
  pl[2] = state_payload(STATEIO_UPDATE, 0, 5, &lens[2]);
  pl[3] = state_payload(STATEIO_UPDATE, st[1], 6, &lens[3]);
  craft_log(path, pl, lens, 4, st);
  {
    char *got = restore_str(path);
    snprintf(ctx, sizeof(ctx), "at %llu\n", (unsigned long long)st[1]);
    CHECK_MSG(strncmp(got, "error corrupt", 13) == 0 && strstr(got, ctx) != NULL,
              "update naming an epoch that is an update: restore fails naming %llu: %s", (unsigned long long)st[1], got);
    free(got);
  }
  /* The last entry names an epoch that is not an entry's start at all. */
  free(pl[3]);
  pl[3] = state_payload(STATEIO_UPDATE, st[1] + 3, 6, &lens[3]);
  craft_log(path, pl, lens, 4, st);
  {
    char *got = restore_str(path);
    snprintf(ctx, sizeof(ctx), "at %llu\n", (unsigned long long)(st[1] + 3));
    CHECK_MSG(strncmp(got, "error corrupt", 13) == 0 && strstr(got, ctx) != NULL,
              "update naming an epoch inside an entry: restore fails naming it: %s", got);
    free(got);
  }
  /* A snapshot whose previous epoch lies after it. */
  free(pl[3]);
  pl[3] = state_payload(STATEIO_SNAPSHOT, 99999, 6, &lens[3]);
  craft_log(path, pl, lens, 4, st);
  check_text("snapshot naming a later previous epoch", restore_str(path), "error corrupt state entry at %llu\n",
             (unsigned long long)st[3]);
  for(int i = 0; i < 4; i++) free(pl[i]);

  /* Status strings: every code has its own. */
  for(int a = STATEIO_OK; a <= STATEIO_TOOBIG; a++){
    CHECK(stateio_errstr(a) != NULL && stateio_errstr(a)[0] != 0);
    for(int b = STATEIO_OK; b < a; b++) CHECK(strcmp(stateio_errstr(a), stateio_errstr(b)) != 0);
  }
}


/* Reopening in the middle of an epoch: the writer learns the epoch from the file. */
static void test_reopen(void){
  const char *path = tpath("reopen.log");
  unlink(path);
  model m = {0};
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 10, 1) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
  CHECK(stateio_writer_epoch(w) == 0);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 11, 2) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 40000, 3) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 12, 4) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  for(int i = 0; i < 3; i++){
    CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
    CHECK_MSG(stateio_writer_epoch(w) == m.epoch, "reopen %d: epoch %llu, expected %llu", i,
              (unsigned long long)stateio_writer_epoch(w), (unsigned long long)m.epoch);
    CHECK(put_pattern(w, &m, STATEIO_UPDATE, 13 + (size_t)i, 5 + (unsigned)i) == STATEIO_OK);
    CHECK(stateio_writer_close(w) == STATEIO_OK);
  }
  CHECK(m.w[m.n - 1].efield == m.w[2].start);
  verify("reopen in the middle of an epoch", path, &m);
  /* Reopened with a snapshot last: the epoch is the snapshot's offset. */
  CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 7, 20) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
  CHECK(stateio_writer_epoch(w) == m.w[m.n - 1].start);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 1, 21) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  verify("reopen after a snapshot", path, &m);
  model_free(&m);
}

/* A snapshot at offset 0 names epoch 0; the updates after it carry 0. */
static void test_snapshot_at_zero(void){
  const char *path = tpath("snap0.log");
  unlink(path);
  model m = {0};
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 33, 1) == STATEIO_OK);
  CHECK(stateio_writer_epoch(w) == 0);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 5, 2) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 6, 3) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  CHECK(m.w[1].efield == 0 && m.w[2].efield == 0);
  verify("snapshot at 0", path, &m);
  stateio_image img;
  stateio_state st;
  CHECK(stateio_open_image(path, &img) == STATEIO_OK);
  CHECK(stateio_restore(&img, &st) == STATEIO_OK);
  CHECK(st.epoch == 0 && st.has_snapshot == 1 && st.prev_epoch == 0 && st.snapshot_len == 33
        && memcmp(st.snapshot, m.w[0].data, 33) == 0);
  stateio_state_clear(&st);
  CHECK(stateio_read_epoch(&img, 0, &st) == STATEIO_OK);
  CHECK(st.epoch == 0 && st.has_snapshot == 1 && st.snapshot_len == 33 && st.updates_start == m.w[0].end);
  stateio_state_clear(&st);
  stateio_close_image(&img);
  /* The next snapshot names epoch 0 as the one before it. */
  CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 8, 4) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  CHECK(stateio_open_image(path, &img) == STATEIO_OK);
  CHECK(stateio_read_epoch(&img, m.w[3].start, &st) == STATEIO_OK);
  CHECK(st.has_snapshot && st.prev_epoch == 0 && st.snapshot_len == 8);
  stateio_state_clear(&st);
  stateio_close_image(&img);
  verify("snapshot at 0, then another", path, &m);
  model_free(&m);
}

/* An empty file: epoch 0, no state, no updates; a writer starts it. */
static void test_empty(void){
  const char *path = tpath("empty.log");
  CHECK(write_all(path, "", 0) == 0);
  model m = {0};
  verify("empty file", path, &m);
  check_text("empty file", events(path), "eof\n");
  check_text("empty file", restore_str(path), "epoch 0 nil\neof\n");
  stateio_image img;
  stateio_state st;
  CHECK(stateio_open_image(path, &img) == STATEIO_OK);
  CHECK(stateio_read_epoch(&img, 0, &st) == STATEIO_OK && st.has_snapshot == 0 && st.updates_start == 0);
  stateio_state_clear(&st);
  CHECK(stateio_read_epoch(&img, 100, &st) == STATEIO_NOTFOUND);
  stateio_state_clear(&st);
  logio_entry e;
  CHECK(logio_read_entry_at(&img, 0, &e) == STATEIO_NOTFOUND);
  CHECK(logio_starts_with_record(&img) == 0);
  stateio_close_image(&img);
  /* An image of nothing at all (fd -1). */
  stateio_image none = { .fd = -1, .file_size = 0, .tail = NULL, .tail_len = 0 };
  CHECK(stateio_restore(&none, &st) == STATEIO_OK && st.epoch == 0 && !st.has_snapshot);
  stateio_state_clear(&st);
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 0, 1) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  verify("empty file, then an empty update", path, &m);
  model_free(&m);
  /* A writer that creates the file and writes nothing leaves it empty. */
  const char *p2 = tpath("never.log");
  unlink(p2);
  CHECK(stateio_writer_open(&w, p2, STATEIO_CREATE) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  CHECK(fsize(p2) == 0);
  /* Without STATEIO_CREATE a missing file is an error (ENOENT). */
  unlink(p2);
  errno = 0;
  CHECK(stateio_writer_open(&w, p2, 0) == STATEIO_IOERR && errno == ENOENT);
}

/* Files that are not logs: STATEIO_NOTLOG, and never written to. */
static void test_not_a_log(void){
  const char *path = tpath("notes.txt");
  sbuf text = {0};
  for(int i = 0; text.len < 70000; i++) sb_printf(&text, "line %d: this is a text file, not a log\n", i);
  static const size_t sizes[] = { 1, 5, 14, 15, 16, 40, 1000, 70000 };
  for(size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++){
    char ctx[64];
    snprintf(ctx, sizeof(ctx), "a text file of %zu bytes", sizes[si]);
    CHECK(write_all(path, text.s, sizes[si]) == 0);
    char *rs = restore_str(path);
    CHECK_MSG(strncmp(rs, "error not a stateio log", 23) == 0, "%s: restore: %s", ctx, rs);
    free(rs);
    stateio_writer *w;
    int rc = stateio_writer_open(&w, path, 0);
    CHECK_MSG(rc == STATEIO_OK, "%s: writer_open: %s", ctx, stateio_errstr(rc));
    if( rc == STATEIO_OK ){
      rc = stateio_update(w, "x", 1);
      CHECK_MSG(rc == STATEIO_NOTLOG, "%s: first append: %s", ctx, stateio_errstr(rc));
      CHECK(stateio_writer_begin(w) == STATEIO_OK);
      rc = stateio_snapshot(w, "y", 1);
      CHECK_MSG(rc == STATEIO_NOTLOG, "%s: append in a batch: %s", ctx, stateio_errstr(rc));
      stateio_writer_rollback(w);
      CHECK(stateio_writer_close(w) == STATEIO_OK);
    }
    size_t n;
    unsigned char *p = read_all(path, &n);
    CHECK_MSG(p && n == sizes[si] && memcmp(p, text.s, n) == 0, "%s: the file is unchanged", ctx);
    free(p);
  }
  /* A file of zeros is not a log either. */
  unsigned char *z = calloc(1, 5000);
  CHECK(write_all(path, z, 5000) == 0);
  char *rs = restore_str(path);
  CHECK_MSG(strncmp(rs, "error not a stateio log", 23) == 0, "zeros: restore: %s", rs);
  free(rs);
  free(z);
  free(text.s);
}

/* A directory: STATEIO_IOERR with errno EISDIR. */
static void test_directory(void){
  const char *dir = tpath("adir");
  CHECK(mkdir(dir, 0755) == 0);
  stateio_image img;
  errno = 0;
  int rc = stateio_open_image(dir, &img);
  CHECK_MSG(rc == STATEIO_IOERR && errno == EISDIR, "open_image(dir): %s, errno %d", stateio_errstr(rc), errno);
  stateio_writer *w = NULL;
  errno = 0;
  rc = stateio_writer_open(&w, dir, 0);
  CHECK_MSG(rc == STATEIO_IOERR && errno == EISDIR, "writer_open(dir): %s, errno %d", stateio_errstr(rc), errno);
  if( rc == STATEIO_OK ) stateio_writer_close(w);
  errno = 0;
  rc = stateio_writer_open(&w, dir, STATEIO_CREATE);
  CHECK_MSG(rc == STATEIO_IOERR && errno == EISDIR, "writer_open(dir, CREATE): %s, errno %d", stateio_errstr(rc), errno);
  if( rc == STATEIO_OK ) stateio_writer_close(w);
  rmdir(dir);
}

/* stateio_read_epoch for every epoch, its updates, and the chain back to 0. */
static void test_epochs(void){
  const char *path = tpath("epochs.log");
  unlink(path);
  model m = {0};
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 20, 1) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 21, 2) == STATEIO_OK);
  unsigned seed = 10;
  for(int e = 0; e < 6; e++){
    CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, e == 3 ? 70000 : 100 + (size_t)e, seed++) == STATEIO_OK);
    for(int u = 0; u < e; u++) CHECK(put_pattern(w, &m, STATEIO_UPDATE, 10 + (size_t)u * 5000, seed++) == STATEIO_OK);
  }
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  verify("epochs", path, &m);

  stateio_image img;
  CHECK(stateio_open_image(path, &img) == STATEIO_OK);
  /* Every epoch: 0 (no snapshot) and each snapshot. */
  int epochs = 0;
  for(int i = -1; i < m.n; i++){
    if( i >= 0 && m.w[i].kind != STATEIO_SNAPSHOT ) continue;
    uint64_t E = i < 0 ? 0 : m.w[i].start;
    stateio_state st;
    int rc = stateio_read_epoch(&img, E, &st);
    epochs++;
    if( !CHECK_MSG(rc == STATEIO_OK, "read_epoch(%llu): %s", (unsigned long long)E, stateio_errstr(rc)) ) continue;
    if( i < 0 ){
      CHECK(st.epoch == 0 && !st.has_snapshot && st.updates_start == 0 && st.snapshot_len == 0);
    }else{
      CHECK_MSG(st.epoch == E && st.has_snapshot && st.prev_epoch == m.w[i].efield
                && st.snapshot_len == m.w[i].len && memcmp(st.snapshot, m.w[i].data, m.w[i].len) == 0
                && st.snapshot_end == m.w[i].end && st.updates_start == m.w[i].end,
                "read_epoch(%llu) gives the snapshot written there", (unsigned long long)E);
    }
    /* Its updates, up to the next snapshot. */
    stateio_updates *u;
    CHECK(stateio_updates_open(&u, &img, &st) == STATEIO_OK);
    int k = i + 1, ok = 1;
    for(;;){
      stateio_entry e;
      rc = stateio_updates_next(u, &e);
      if( rc == STATEIO_DONE ) break;
      if( rc != STATEIO_OK || k >= m.n || m.w[k].kind != STATEIO_UPDATE || e.offset != m.w[k].start
          || e.len != m.w[k].len || memcmp(e.data, m.w[k].data, e.len) != 0 ){ ok = 0; break; }
      k++;
    }
    CHECK_MSG(ok && (k == m.n || m.w[k].kind == STATEIO_SNAPSHOT), "updates of epoch %llu", (unsigned long long)E);
    stateio_updates_close(u);
    stateio_state_clear(&st);
  }
  CHECK(epochs == 7);

  /* The chain: from the current epoch back through prev_epoch to 0. */
  stateio_state st;
  CHECK(stateio_restore(&img, &st) == STATEIO_OK);
  int i = m.n - 1, steps = 0, ok = 1;
  uint64_t E = st.epoch;
  stateio_state_clear(&st);
  for(;;){
    while( i >= 0 && m.w[i].kind != STATEIO_SNAPSHOT ) i--;
    if( stateio_read_epoch(&img, E, &st) != STATEIO_OK ){ ok = 0; break; }
    steps++;
    if( i >= 0 ){
      if( !st.has_snapshot || st.epoch != m.w[i].start ){ ok = 0; stateio_state_clear(&st); break; }
      i--;
    }else if( st.has_snapshot || E != 0 ){
      ok = 0;
    }
    int has = st.has_snapshot;
    E = st.prev_epoch;
    stateio_state_clear(&st);
    if( !has ) break;       /* an epoch without snapshot: the chain's start */
  }
  CHECK_MSG(ok && i < 0 && steps == 7, "the chain of epochs walks back to 0 (%d steps)", steps);

  /* Not epochs: an update's offset, a misaligned offset, past the end. */
  CHECK(stateio_read_epoch(&img, m.w[1].start, &st) == STATEIO_NOTFOUND);
  stateio_state_clear(&st);
  CHECK(stateio_read_epoch(&img, m.w[2].start + 1, &st) == STATEIO_NOTFOUND);
  stateio_state_clear(&st);
  CHECK(stateio_read_epoch(&img, m.end + 100, &st) == STATEIO_NOTFOUND);
  stateio_state_clear(&st);
  stateio_close_image(&img);
  model_free(&m);
}

/* Counts the calls the library makes (and can fail them); see stateio_set_fault_hook. */
typedef struct faults {
  int writes, syncs, truncates;
  const char *fail_op;     /* "write", "fdatasync", "ftruncate" or NULL */
  int fail_nth;            /* 1: the first such call */
  int err;                 /* errno to fail with, or 0 for a short write */
  int seen;
} faults;

static int fault_hook(void *arg, const char *op, size_t *n){
  faults *f = arg;
  if( strcmp(op, "write") == 0 ) f->writes++;
  else if( strcmp(op, "fdatasync") == 0 || strcmp(op, "fsync") == 0 ) f->syncs++;
  else if( strcmp(op, "ftruncate") == 0 ) f->truncates++;
  if( f->fail_op && strcmp(op, f->fail_op) == 0 && ++f->seen == f->fail_nth ){
    if( f->err ) return f->err;
    *n = *n / 2;           /* a short write */
  }
  return 0;
}

/* Batches: one write at commit; rollback; savepoints. */
static void test_batches(void){
  const char *path = tpath("batch.log");
  unlink(path);
  model m = {0};
  stateio_writer *w;
  faults f = {0};
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 10, 1) == STATEIO_OK);

  /* begin, several updates and a snapshot, commit: the file grows once. */
  stateio_set_fault_hook(fault_hook, &f);
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  CHECK(stateio_writer_begin(w) == STATEIO_MISUSE);
  uint64_t before = fsize(path);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 20, 2) == STATEIO_OK);
  CHECK(stateio_writer_locked(w));
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 40000, 3) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 30, 4) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 0, 5) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 7, 6) == STATEIO_OK);
  CHECK(fsize(path) == before && f.writes == 0);
  CHECK(stateio_writer_pending_count(w) == 5);
  CHECK(stateio_writer_epoch(w) == m.epoch);
  {
    /* The writer's image shows the pending entries after the file. */
    stateio_image img;
    CHECK(stateio_writer_image(w, &img) == STATEIO_OK);
    CHECK(stateio_image_size(&img) == m.end && img.file_size == before);
    stateio_state st;
    CHECK(stateio_restore(&img, &st) == STATEIO_OK && st.epoch == m.epoch && st.has_snapshot);
    stateio_state_clear(&st);
    verify_image("the writer's image of a batch", &img, &m, 0);
  }
  CHECK(stateio_writer_commit(w) == STATEIO_OK);
  CHECK_MSG(f.writes == 1 && f.syncs == 0, "commit: %d writes, %d syncs (no STATEIO_SYNC)", f.writes, f.syncs);
  CHECK(!stateio_writer_locked(w) && stateio_writer_pending_count(w) == 0);
  verify("batch committed", path, &m);

  /* rollback: nothing changes. */
  size_t n0;
  unsigned char *p0 = read_all(path, &n0);
  uint64_t e0 = m.epoch;
  f.writes = 0;
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  CHECK(stateio_update(w, "aaa", 3) == STATEIO_OK);
  CHECK(stateio_snapshot(w, "bbb", 3) == STATEIO_OK);
  CHECK(stateio_writer_epoch(w) != e0);
  stateio_writer_rollback(w);
  CHECK(stateio_writer_epoch(w) == e0 && !stateio_writer_locked(w) && stateio_writer_pending_count(w) == 0);
  size_t n1;
  unsigned char *p1 = read_all(path, &n1);
  CHECK(f.writes == 0 && n1 == n0 && memcmp(p0, p1, n0) == 0);
  free(p1);
  verify("batch rolled back", path, &m);

  /* An empty batch writes nothing. */
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  CHECK(stateio_writer_commit(w) == STATEIO_OK);
  CHECK(f.writes == 0);

  /* mark / rollback_to. */
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  stateio_mark m0 = stateio_writer_mark(w);            /* before the first append */
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 11, 7) == STATEIO_OK);
  model_mark mm = model_get_mark(&m);
  stateio_mark m1 = stateio_writer_mark(w);
  CHECK(stateio_update(w, "u2", 2) == STATEIO_OK);
  CHECK(stateio_snapshot(w, "s", 1) == STATEIO_OK);
  stateio_mark m2 = stateio_writer_mark(w);
  CHECK(stateio_update(w, "u3", 2) == STATEIO_OK);
  stateio_writer_rollback_to(w, m2);
  CHECK(stateio_writer_pending_count(w) == 3);
  stateio_writer_rollback_to(w, m1);
  CHECK(stateio_writer_pending_count(w) == 1 && stateio_writer_epoch(w) == e0);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 12, 8) == STATEIO_OK);
  CHECK(stateio_writer_commit(w) == STATEIO_OK);
  CHECK(m.n == mm.n + 1);
  verify("savepoint rolled back to", path, &m);
  /* Back to a mark taken before the batch's first append: the batch is empty. */
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  m0 = stateio_writer_mark(w);
  CHECK(stateio_update(w, "zz", 2) == STATEIO_OK);
  stateio_writer_rollback_to(w, m0);
  CHECK(stateio_writer_pending_count(w) == 0);
  CHECK(stateio_writer_commit(w) == STATEIO_OK);
  verify("rolled back to the batch's start", path, &m);

  /* A bulk batch bigger than its chunk, committed, then one rolled back. */
  f.writes = 0;
  CHECK(stateio_writer_begin_bulk(w) == STATEIO_OK);
  int nbulk = small ? 5 : 10;     /* > 4 MiB: the batch is written out in chunks */
  for(int i = 0; i < nbulk; i++) CHECK(put_pattern(w, &m, STATEIO_UPDATE, 1000000, 100 + (unsigned)i) == STATEIO_OK);
  CHECK(stateio_writer_commit(w) == STATEIO_OK);
  verify("bulk batch", path, &m);
  free(p0);
  p0 = read_all(path, &n0);
  CHECK(stateio_writer_begin_bulk(w) == STATEIO_OK);
  for(int i = 0; i < nbulk; i++) CHECK(stateio_update(w, p0, 1000000) == STATEIO_OK);
  stateio_writer_rollback(w);
  p1 = read_all(path, &n1);
  CHECK_MSG(n1 == n0 && memcmp(p0, p1, n0) == 0, "bulk batch rolled back: the file is as before");
  free(p1);

  /*
  ** A bulk batch whose chunk fails to write is failed as a whole: later
  ** appends and the commit report the error, the file is as before, and
  ** the writer works again after it.
  */
  faults bf = { 0, 0, 0, "write", 2, ENOSPC, 0 };
  stateio_set_fault_hook(fault_hook, &bf);
  CHECK(stateio_writer_begin_bulk(w) == STATEIO_OK);
  int brc = STATEIO_OK, i_failed = -1;
  for(int i = 0; i < nbulk && brc == STATEIO_OK; i++){
    brc = stateio_update(w, p0, 1000000);
    if( brc ) i_failed = i;
  }
  CHECK_MSG(brc == STATEIO_IOERR && i_failed > 0, "bulk batch: the second chunk's write fails (%s at %d)",
            stateio_errstr(brc), i_failed);
  CHECK(stateio_update(w, "more", 4) == STATEIO_IOERR);
  CHECK(stateio_snapshot(w, "more", 4) == STATEIO_IOERR);
  CHECK(stateio_writer_commit(w) == STATEIO_IOERR);
  CHECK(!stateio_writer_locked(w));
  stateio_set_fault_hook(NULL, NULL);
  p1 = read_all(path, &n1);
  CHECK_MSG(n1 == n0 && memcmp(p0, p1, n0) == 0, "failed bulk batch: the file is as before");
  free(p1);
  verify("failed bulk batch", path, &m);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 9, 77) == STATEIO_OK);
  verify("append after a failed bulk batch", path, &m);
  free(p0);

  /*
  ** A mark taken before the batch's first append, while another writer
  ** appends: rolling back to it undoes this batch only, never the other
  ** writer's entries.
  */
  {
    stateio_writer *w2;
    CHECK(stateio_writer_open(&w2, path, 0) == STATEIO_OK);
    CHECK(stateio_writer_begin(w) == STATEIO_OK);
    stateio_mark before = stateio_writer_mark(w);
    CHECK(put_pattern(w2, &m, STATEIO_UPDATE, 20, 78) == STATEIO_OK);
    CHECK(put_pattern(w2, &m, STATEIO_SNAPSHOT, 21, 79) == STATEIO_OK);
    CHECK(stateio_update(w, "mine", 4) == STATEIO_OK);
    stateio_writer_rollback_to(w, before);
    CHECK(stateio_writer_pending_count(w) == 0);
    CHECK(stateio_writer_epoch(w) == m.epoch);
    CHECK(put_pattern(w, &m, STATEIO_UPDATE, 22, 80) == STATEIO_OK);
    CHECK(stateio_writer_commit(w) == STATEIO_OK);
    verify("rolled back to a mark taken before another writer appended", path, &m);
    CHECK(stateio_writer_close(w2) == STATEIO_OK);
  }
  stateio_set_fault_hook(NULL, NULL);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  verify("batches", path, &m);
  model_free(&m);
}

/* Two writers on one file: the second is refused while the first is in a batch. */
static void test_two_writers(void){
  const char *path = tpath("two.log");
  unlink(path);
  model m = {0};
  stateio_writer *w1, *w2;
  CHECK(stateio_writer_open(&w1, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(stateio_writer_open(&w2, path, 0) == STATEIO_OK);
  CHECK(put_pattern(w1, &m, STATEIO_UPDATE, 10, 1) == STATEIO_OK);
  CHECK(stateio_writer_begin(w1) == STATEIO_OK);
  CHECK(put_pattern(w1, &m, STATEIO_UPDATE, 11, 2) == STATEIO_OK);
  uint64_t size = fsize(path);
  CHECK(stateio_update(w2, "busy", 4) == STATEIO_BUSY);
  CHECK(stateio_writer_begin(w2) == STATEIO_OK);
  CHECK(stateio_snapshot(w2, "busy", 4) == STATEIO_BUSY);
  CHECK(!stateio_writer_locked(w2));
  stateio_writer_rollback(w2);
  CHECK(fsize(path) == size);
  CHECK(stateio_writer_commit(w1) == STATEIO_OK);
  /* Now w2 can write; it sees w1's entries and epoch. */
  CHECK(put_pattern(w2, &m, STATEIO_UPDATE, 12, 3) == STATEIO_OK);
  CHECK(put_pattern(w1, &m, STATEIO_SNAPSHOT, 13, 4) == STATEIO_OK);
  CHECK(put_pattern(w2, &m, STATEIO_UPDATE, 14, 5) == STATEIO_OK);
  CHECK(stateio_writer_epoch(w2) == m.epoch);
  CHECK(put_pattern(w1, &m, STATEIO_UPDATE, 15, 6) == STATEIO_OK);
  /* w2 in a batch: w1 is refused. */
  CHECK(stateio_writer_begin(w2) == STATEIO_OK);
  CHECK(put_pattern(w2, &m, STATEIO_SNAPSHOT, 16, 7) == STATEIO_OK);
  CHECK(stateio_update(w1, "busy", 4) == STATEIO_BUSY);
  CHECK(stateio_writer_commit(w2) == STATEIO_OK);
  CHECK(put_pattern(w1, &m, STATEIO_UPDATE, 17, 8) == STATEIO_OK);
  CHECK(m.w[m.n - 1].efield == m.w[m.n - 2].start);
  CHECK(stateio_writer_close(w1) == STATEIO_OK);
  CHECK(stateio_writer_close(w2) == STATEIO_OK);
  verify("two writers", path, &m);

  /* Closing a writer in the middle of a batch rolls it back. */
  CHECK(stateio_writer_open(&w1, path, 0) == STATEIO_OK);
  CHECK(stateio_writer_begin(w1) == STATEIO_OK);
  CHECK(stateio_update(w1, "gone", 4) == STATEIO_OK);
  CHECK(stateio_writer_close(w1) == STATEIO_OK);
  verify("closed in a batch", path, &m);
  model_free(&m);

  /*
  ** A torn tail repaired by another writer whose entry happens to be as
  ** long as the tail: the file's size is what this writer saw when it
  ** opened, but its contents are not. The second writer must not truncate
  ** the first one's committed entry as if it were still the torn tail.
  */
  unlink(path);
  CHECK(stateio_writer_open(&w1, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(put_pattern(w1, &m, STATEIO_UPDATE, 10, 1) == STATEIO_OK);
  CHECK(stateio_writer_close(w1) == STATEIO_OK);
  static const unsigned char junk[24] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17 };
  CHECK(append_raw(path, junk, sizeof(junk)) == 0);          /* a torn tail of 24 bytes */
  CHECK(stateio_writer_open(&w1, path, 0) == STATEIO_OK);
  CHECK(stateio_writer_open(&w2, path, 0) == STATEIO_OK);        /* both see end 34, size 58 */
  CHECK(put_pattern(w1, &m, STATEIO_UPDATE, 0, 2) == STATEIO_OK); /* 24 bytes: the size is 58 again */
  CHECK(fsize(path) == m.end && m.end == m.w[0].end + sizeof(junk));
  CHECK(put_pattern(w2, &m, STATEIO_UPDATE, 5, 3) == STATEIO_OK);
  CHECK(stateio_writer_close(w1) == STATEIO_OK);
  CHECK(stateio_writer_close(w2) == STATEIO_OK);
  char *got = restore_str(path);
  char want[200];
  snprintf(want, sizeof(want), "epoch 0 nil\nupdate 0 10\nupdate %llu 0\nupdate %llu 5\neof\n",
           (unsigned long long)m.w[1].start, (unsigned long long)m.w[2].start);
  if( CHECK_MSG(strcmp(got, want) == 0, "torn tail repaired by another writer whose entry is as long as the "
                "tail: the second writer keeps the first one's committed entry:\n  [expected]\n%s  [got]\n%s", want, got) )
    verify("torn tail repaired by another writer, same size", path, &m);
  free(got);
  model_free(&m);
}

/* Failed writes: the commit fails, the file is as before, the next commit works. */
static void test_faults(void){
  const char *path = tpath("faults.log");
  struct { const char *op; int nth; int err; int sync; size_t big; int spill; const char *name; } plan[] = {
    { "write", 1, ENOSPC, 0, 0, 0, "write fails with ENOSPC" },
    { "write", 1, 0, 0, 0, 0, "short write" },
    { "write", 2, ENOSPC, 0, 6 << 20, 0, "second write of a large commit fails" },
    { "write", 2, 0, 0, 6 << 20, 0, "second write of a large commit is short" },
    { "fdatasync", 1, EIO, 1, 0, 0, "fdatasync fails" },
    /* The batch spills (set to 4 MiB): the failure may come at an append (then the batch is failed) or at commit. */
    { "write", 1, ENOSPC, 0, 6 << 20, 1, "a spilled batch's first write fails" },
    { "write", 2, 0, 1, 6 << 20, 1, "a spilled batch's second write is short" },
  };
  for(size_t pi = 0; pi < sizeof(plan) / sizeof(plan[0]); pi++){
    const char *ctx = plan[pi].name;
    unlink(path);
    model m = {0};
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, path, STATEIO_CREATE | (plan[pi].sync ? STATEIO_SYNC : 0)) == STATEIO_OK);
    stateio_writer_set_spill(w, plan[pi].spill ? (size_t)4 << 20 : 0);   /* spill plans: past 4 MiB */
    CHECK(put_pattern(w, &m, STATEIO_UPDATE, 10, 1) == STATEIO_OK);
    CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 100, 2) == STATEIO_OK);
    CHECK(put_pattern(w, &m, STATEIO_UPDATE, 10, 3) == STATEIO_OK);
    size_t n0;
    unsigned char *p0 = read_all(path, &n0);
    uint64_t e0 = m.epoch;

    faults f = { 0, 0, 0, plan[pi].op, plan[pi].nth, plan[pi].err, 0 };
    stateio_set_fault_hook(fault_hook, &f);
    /* A batch. */
    CHECK(stateio_writer_begin(w) == STATEIO_OK);
    CHECK(stateio_update(w, "one", 3) == STATEIO_OK);
    CHECK(stateio_snapshot(w, "two", 3) == STATEIO_OK);
    int arc = STATEIO_OK, ae = 0;
    if( plan[pi].big ){
      unsigned char *big = pattern(plan[pi].big, 9);
      arc = stateio_update(w, big, plan[pi].big);
      ae = errno;
      free(big);
    }
    if( arc == STATEIO_OK ){
      arc = stateio_update(w, "three", 5);
      ae = errno;
    }else{
      CHECK_MSG(stateio_update(w, "three", 5) == arc, "%s: a failed batch fails every append after it", ctx);
    }
    CHECK_MSG(arc == STATEIO_OK || (plan[pi].spill && arc == STATEIO_IOERR), "%s: append: %s", ctx, stateio_errstr(arc));
    errno = 0;
    int rc = stateio_writer_commit(w);
    int e = arc == STATEIO_OK ? errno : ae;
    CHECK_MSG(rc == STATEIO_IOERR && e == (plan[pi].err ? plan[pi].err : ENOSPC),
              "%s: commit: %s, errno %d", ctx, stateio_errstr(rc), e);
    CHECK_MSG(f.seen >= plan[pi].nth, "%s: the fault was injected", ctx);
    stateio_set_fault_hook(NULL, NULL);
    CHECK(stateio_writer_epoch(w) == e0 && !stateio_writer_locked(w));
    size_t n1;
    unsigned char *p1 = read_all(path, &n1);
    CHECK_MSG(n1 == n0 && memcmp(p0, p1, n0) == 0, "%s: the file is as before the batch (%zu bytes, was %zu)",
              ctx, n1, n0);
    free(p1);
    verify(ctx, path, &m);

    /* A single append outside a batch fails the same way. */
    f.seen = 0;
    stateio_set_fault_hook(fault_hook, &f);
    if( plan[pi].big == 0 ){
      rc = stateio_update(w, "four", 4);
      CHECK_MSG(rc == STATEIO_IOERR, "%s: a single append: %s", ctx, stateio_errstr(rc));
    }
    stateio_set_fault_hook(NULL, NULL);
    p1 = read_all(path, &n1);
    CHECK_MSG(n1 == n0 && memcmp(p0, p1, n0) == 0, "%s: the file is as before the append", ctx);
    free(p1);
    free(p0);

    /* The next commit works. */
    CHECK(stateio_writer_begin(w) == STATEIO_OK);
    CHECK(put_pattern(w, &m, STATEIO_UPDATE, 5, 4) == STATEIO_OK);
    CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 6, 5) == STATEIO_OK);
    rc = stateio_writer_commit(w);
    CHECK_MSG(rc == STATEIO_OK, "%s: the next commit: %s", ctx, stateio_errstr(rc));
    CHECK(put_pattern(w, &m, STATEIO_UPDATE, 7, 6) == STATEIO_OK);
    CHECK(stateio_writer_close(w) == STATEIO_OK);
    verify(ctx, path, &m);
    model_free(&m);
  }
  stateio_set_fault_hook(NULL, NULL);

  /* The truncation of a torn tail fails: the commit fails, nothing is lost, the next one repairs it. */
  {
    const char *ctx = "ftruncate of a torn tail fails";
    unlink(path);
    model m = {0};
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
    CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 100, 1) == STATEIO_OK);
    CHECK(put_pattern(w, &m, STATEIO_UPDATE, 10, 2) == STATEIO_OK);
    CHECK(stateio_writer_close(w) == STATEIO_OK);
    CHECK(append_raw(path, "\x01\x02\x03\x04\x01\x50", 6) == 0);    /* a torn header */
    size_t n0;
    unsigned char *p0 = read_all(path, &n0);
    CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
    faults f = { 0, 0, 0, "ftruncate", 1, EIO, 0 };
    f.fail_nth = 1;
    stateio_set_fault_hook(fault_hook, &f);
    CHECK(stateio_writer_begin(w) == STATEIO_OK);
    CHECK(stateio_update(w, "lost", 4) == STATEIO_OK);
    errno = 0;
    int rc = stateio_writer_commit(w);
    CHECK_MSG(rc == STATEIO_IOERR && errno == EIO, "%s: commit: %s", ctx, stateio_errstr(rc));
    stateio_set_fault_hook(NULL, NULL);
    size_t n1;
    unsigned char *p1 = read_all(path, &n1);
    /* As it was, or without its torn tail (the rollback's own truncation may remove it). */
    CHECK_MSG((n1 == n0 || n1 == m.end) && memcmp(p0, p1, n1) == 0, "%s: the file is as it was (%zu bytes, was %zu)",
              ctx, n1, n0);
    free(p0);
    free(p1);
    verify_torn(ctx, path, &m, n1 - m.end);
    CHECK(put_pattern(w, &m, STATEIO_UPDATE, 3, 3) == STATEIO_OK);
    CHECK(stateio_writer_close(w) == STATEIO_OK);
    verify(ctx, path, &m);
    model_free(&m);
  }
}

/* Argument checks, and a writer on the caller's descriptor. */
static void test_misuse_and_fd(void){
  const char *path = tpath("fd.log");
  unlink(path);
  model m = {0};
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(stateio_update(w, NULL, 5) == STATEIO_MISUSE);
  CHECK(!stateio_writer_locked(w));
  CHECK(put(w, &m, STATEIO_UPDATE, NULL, 0) == STATEIO_OK);       /* no data at all is fine */
  CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 20, 1) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 20, 2) == STATEIO_OK);
  CHECK(stateio_writer_commit(w) == STATEIO_OK);                   /* no batch: nothing to do */
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  CHECK(stateio_writer_close(NULL) == STATEIO_OK);
  verify("misuse", path, &m);

  int fd = open(path, O_RDWR);
  CHECK(fd >= 0);
  /* The caller's offset and epoch are right: used as given. */
  CHECK(stateio_writer_open_fd(&w, fd, m.end, m.epoch, 0) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 5, 3) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  /* An epoch after the offset is misuse. */
  CHECK(stateio_writer_open_fd(&w, fd, 10, 20, 0) == STATEIO_MISUSE);
  /* The caller's offset is stale: the writer restores from the file instead. */
  CHECK(stateio_writer_open_fd(&w, fd, 24, 0, 0) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 6, 4) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  CHECK(fcntl(fd, F_GETFD) != -1);                             /* not closed by the writer */
  close(fd);
  verify("writer on a descriptor", path, &m);
  model_free(&m);
}

/* stateio_check on damaged logs: offsets and phrases. */
static void test_check(void){
  const char *path = tpath("check.log");
  unlink(path);
  model m = {0};
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 50, 1) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 40000, 2) == STATEIO_OK);   /* FIRST + LAST */
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 30, 3) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 30, 4) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 30, 5) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  verify("check: healthy", path, &m);

  stateio_image img;
  problems g;
  /* A payload byte of the LAST record of entry 1. */
  increment_byte(path, BLOCK + HEADER + 3, 1);
  memset(&g, 0, sizeof(g));
  CHECK(stateio_open_image(path, &img) == STATEIO_OK);
  CHECK(stateio_check(&img, problem_cb, &g) == STATEIO_OK);
  /* The rest of its block goes with it: nothing proves where the next record starts. */
  CHECK_MSG(g.n == 1 && g.off[0] == m.w[1].start && g.len[0] == m.w[m.n - 1].end - m.w[1].start,
            "check: damaged LAST record: %d problems, first %s at %llu len %llu", g.n, g.n ? g.why[0] : "-",
            (unsigned long long)g.off[0], (unsigned long long)g.len[0]);
  stateio_close_image(&img);
  increment_byte(path, BLOCK + HEADER + 3, -1);

  /* An update of the wrong epoch: a writer told the wrong epoch. */
  int fd = open(path, O_RDWR);
  CHECK(fd >= 0);
  CHECK(stateio_writer_open_fd(&w, fd, m.end, 0, 0) == STATEIO_OK);
  CHECK(stateio_update(w, "wrong", 5) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  close(fd);
  memset(&g, 0, sizeof(g));
  CHECK(stateio_open_image(path, &img) == STATEIO_OK);
  CHECK(stateio_check(&img, problem_cb, &g) == STATEIO_OK);
  CHECK_MSG(g.n == 1 && g.off[0] == m.end && strcmp(g.why[0], "update of the wrong epoch") == 0,
            "check: wrong epoch: %d problems, first %s at %llu", g.n, g.n ? g.why[0] : "-",
            (unsigned long long)g.off[0]);
  stateio_close_image(&img);

  /* A torn tail. */
  truncate_to(path, m.end + 10);
  memset(&g, 0, sizeof(g));
  CHECK(stateio_open_image(path, &img) == STATEIO_OK);
  CHECK(stateio_check(&img, problem_cb, &g) == STATEIO_OK);
  CHECK_MSG(g.n == 1 && g.off[0] == m.end && g.len[0] == 10 && strcmp(g.why[0], "torn tail") == 0,
            "check: torn tail: %d problems, first %s at %llu len %llu", g.n, g.n ? g.why[0] : "-",
            (unsigned long long)g.off[0], (unsigned long long)g.len[0]);
  stateio_close_image(&img);
  model_free(&m);
}

/* Damage to the current snapshot: restore fails naming it, never an older epoch. */
static void test_damaged_snapshot(void){
  const char *path = tpath("snapdamage.log");
  unlink(path);
  model m = {0};
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 50, 1) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 20, 2) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, 60000, 3) == STATEIO_OK);   /* FIRST + LAST */
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 20, 4) == STATEIO_OK);
  CHECK(put_pattern(w, &m, STATEIO_UPDATE, 20, 5) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  uint64_t S = m.w[2].start;
  /* Its FIRST record, then its LAST record. */
  uint64_t spots[2] = { S + 20, BLOCK + HEADER + 5 };
  for(int i = 0; i < 2; i++){
    increment_byte(path, spots[i], 1);
    check_text("damaged current snapshot", restore_str(path), "error corrupt log at %llu\n", (unsigned long long)S);
    /* A writer must not append to it as if the epoch were an older one. */
    increment_byte(path, spots[i], -1);
  }
  verify("snapshot repaired", path, &m);
  model_free(&m);
}

/* One big entry, written and restored. */
static void test_big(void){
  const char *env = getenv("STATEIO_BIG");
  size_t mib = env && atoi(env) > 0 ? (size_t)atoi(env) : small ? 8 : 64;
  size_t len = mib << 20;
  const char *path = tpath("big.log");
  unlink(path);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  unsigned char *data = xmalloc(len);
  for(size_t i = 0; i < len; i += 8){
    uint64_t v = i * 0x9E3779B97F4A7C15ull;
    memcpy(data + i, &v, len - i < 8 ? len - i : 8);
  }
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(stateio_update(w, "before", 6) == STATEIO_OK);
  CHECK(stateio_snapshot(w, data, len) == STATEIO_OK);
  CHECK(stateio_update(w, "after", 5) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  uint64_t snap_start = my_start(HEADER + EHDR + 6);
  uint64_t snap_end = snap_start + my_encoded_size(snap_start, EHDR + len);
  CHECK_MSG(fsize(path) == snap_end + my_encoded_size(snap_end, EHDR + 5), "big: file size %llu",
            (unsigned long long)fsize(path));
  stateio_image img;
  stateio_state st;
  CHECK(stateio_open_image(path, &img) == STATEIO_OK);
  int rc = stateio_restore(&img, &st);
  CHECK_MSG(rc == STATEIO_OK && st.epoch == snap_start && st.has_snapshot && st.snapshot_len == len
            && memcmp(st.snapshot, data, len) == 0, "big: restore gives the %zu MiB snapshot (%s)", mib,
            stateio_errstr(rc));
  stateio_updates *u;
  stateio_entry e;
  CHECK(stateio_updates_open(&u, &img, &st) == STATEIO_OK);
  CHECK(stateio_updates_next(u, &e) == STATEIO_OK && e.len == 5 && memcmp(e.data, "after", 5) == 0);
  CHECK(stateio_updates_next(u, &e) == STATEIO_DONE);
  stateio_updates_close(u);
  stateio_state_clear(&st);
  stateio_close_image(&img);
  free(data);
  unlink(path);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("big: a %zu MiB snapshot written and restored in %.1f s\n", mib,
         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

/* Many small entries over many blocks (log_test.cc ManyBlocks). */
static void test_many(void){
  const char *path = tpath("many.log");
  unlink(path);
  model m = {0};
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  int n = small ? 2000 : 20000;
  for(int i = 0; i < n; i++){
    if( i % 5000 == 4999 || i == n / 2 ) CHECK(put_pattern(w, &m, STATEIO_SNAPSHOT, (size_t)(i % 97), (unsigned)i) == STATEIO_OK);
    else CHECK(put_pattern(w, &m, STATEIO_UPDATE, (size_t)(i % 23), (unsigned)i) == STATEIO_OK);
  }
  CHECK(stateio_writer_commit(w) == STATEIO_OK);
  CHECK(stateio_writer_close(w) == STATEIO_OK);
  verify("many blocks", path, &m);
  model_free(&m);
}

int main(void){
  setvbuf(stdout, NULL, _IOLBF, 0);
  small = getenv("STATEIO_SMALL") != NULL && atoi(getenv("STATEIO_SMALL")) != 0;
  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof(tmpdir), "%s/logio_test.XXXXXX", t && *t ? t : "/tmp");
  if( !mkdtemp(tmpdir) ){
    perror("mkdtemp");
    CHECK(0);
    return test_report();
  }
  struct { void (*fn)(void); const char *name; } tests[] = {
    { test_encode, "encode" },
    { test_sizes, "sizes" },
    { test_trailers, "trailers" },
    { test_damaged_records, "damaged records" },
    { test_torn_tails, "torn tails" },
    { test_unexpected_types, "unexpected record types" },
    { test_error_joins_records, "error joins records" },
    { test_bad_state_entries, "bad state entries" },
    { test_reopen, "reopen" },
    { test_snapshot_at_zero, "snapshot at 0" },
    { test_empty, "empty" },
    { test_not_a_log, "not a log" },
    { test_directory, "directory" },
    { test_epochs, "epochs" },
    { test_batches, "batches" },
    { test_two_writers, "two writers" },
    { test_faults, "faults" },
    { test_misuse_and_fd, "misuse and descriptors" },
    { test_check, "check" },
    { test_damaged_snapshot, "damaged snapshot" },
    { test_many, "many" },
    { test_big, "big" },
  };
  for(size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++){
    int before = test_failures();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tests[i].fn();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("logio %s: %s (%.2f s)\n", tests[i].name, test_failures() == before ? "ok" : "FAILED",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  }
  /* Clean up the temporary directory. */
  static const char *names[] = {
    "sizes.log", "trailer.log", "damage.log", "torn.log", "types.log", "joins.log", "reopen.log",
    "snap0.log", "empty.log", "never.log", "notes.txt", "epochs.log", "batch.log", "two.log",
    "faults.log", "check.log", "snapdamage.log", "many.log", "big.log", "badstate.log", "fd.log"
  };
  for(size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++){
    char c[600];
    unlink(tpath(names[i]));
    snprintf(c, sizeof(c), "%s-commit", tpath(names[i]));   /* the log's commit file, if any */
    unlink(c);
  }
  rmdir(tmpdir);
  return test_report();
}
