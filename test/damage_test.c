/* SPDX-License-Identifier: MIT */
/*
** damage_test.c - a damage corpus: logs whose entries hold logs, damaged in
** every way a single change can damage them, read by every reader.
**
** Application data may itself be a log (the snapshot of a service that
** keeps logs, a log shipped inside an update): its bytes hold records with
** valid checksums. After damage a reader must resume only where the
** structure proves a record starts, never at a record found inside an
** entry's data. This test writes, with the library's writer, logs of these
** shapes, and remembers every entry written (offset, end, kind, epoch field,
** data) as the oracle:
**
**   plain       entries of many sizes, four epochs, padding, a
**               block-filling record, an entry across a block boundary
**   whole       whole small state logs each inside one record's data (some
**               copied as written at offset 0, some forged to continue the
**               outer log: their epochs are the outer log's, so a reader that
**               takes them for the log's own sees a consistent log)
**   whole-last  the same, the last entry an update holding a log
**   cross       logs inside entries that cross a block boundary
**   cross-last  the same, the last entry a multi-block update of logs
**   many        a ~100 KB snapshot holding dozens of small logs (the big log)
**   many-last   the same snapshot as the last entry
**
** Each is then mutated, one change at a time, and read again:
**   - every byte of every record header XORed with 0xff, +1, -1, set to 0;
**   - 50 payload bytes per record (spread over it) XORed with 0xff;
**   - every record's whole header destroyed (zeros, 0xff, other bytes, or
**     another record's header: plausible, and wrong);
**     when no complete entry starts in a later block, that is what a power
**     loss can leave, and a reader may take it for a torn append from the
**     end of the entry before it (then it must read the log as cut there);
**   - truncated at every length (sampled in the logs over two blocks: see
**     below).
** Every entry's data is remembered, so each reader's every result is
** checked against what was written; the records of the inner logs are
** counted too (valid FULL records where they lie in the file: proof that
** the corpus can fool a reader).
** For each mutated file: restore and the update reader, the scan (in skip
** mode; strict mode is its prefix up to the first error), stateio_check,
** the rewind walk from the end, logio_read_entry_at at every written
** offset, and the scan once more through prefetch.c's verified record
** chains (stateio_scan_parallel, made to act on these small logs by
** logio_parallel_always: the reader then takes records on a chain as
** valid without hashing them again). What must hold (each a violation class, counted; one CHECK each):
**
**   invented     no reader returns an entry that was never written, at
**                another offset, or with other data (records inside an
**                entry's data taken for the log's own), nor a state that
**                was never written
**   older epoch  restore never returns an older epoch as the current one:
**                it returns the true last epoch or fails naming the damage
**   lost         every entry all of whose records lie in blocks the
**                mutation did not touch (and that ends before a cut) is read
**   unreported   a damaged byte is covered by a reported damaged region
**                (the scan, stateio_check, and the update reader when the
**                damage is in the current epoch)
**   taken torn   a complete damaged entry is corruption, never a torn tail
**   strict       the scan stopped at its first error returns every entry
**                before the damage, then an error that covers it
**   torn error   a cut (a torn tail) is no error: restore gives the state
**                after the last complete entry, no reader reports damage
**   restore      restore fails only naming the damaged entry, and never
**                when the last entry and the current snapshot are intact
**   same block   after damage to a record's type, length or offset field
**                (which its stored checksum confirms) the entries after
**                that record in its block are read
**   repaired     a damaged entry is never returned as intact
**   api          results in file order, no overlaps, expected statuses
**
** Environment:
**   STATEIO_DAMAGE=full   every truncation length of every log, all header
**                         values, 50 payload bytes per record, even under ASan
**   STATEIO_DAMAGE=quick  the ASan sizes without ASan (also STATEIO_SMALL, set
**                         by test/valgrind.sh)
**   STATEIO_DAMAGE_SHOW=N print the first N cases of each violation (4)
**   STATEIO_DAMAGE_TRACE=SHAPE:POS:HEX  print what every reader returns
**                         for one mutation (byte POS set to HEX), or
**                         SHAPE:cut:L for the cut at L
** By default the logs over two blocks (plain, many, many-last) are cut at
** every length in their last two blocks (many, many-last: every 4th: today's
** reader is quadratic there), within 40 bytes of every record and block
** boundary, and at every 97th length elsewhere; the others at every length.
** Under ASan (the default there): header bytes XOR 0xff and +1 only, 12
** payload bytes per record, cuts near record and block boundaries plus
** every 31st length (logs over two blocks: every 3rd length near a
** boundary, every 197th elsewhere).
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
#include "layout.h"

#define BLK ((uint64_t)LOGIO_BLOCK)
#define HDR ((uint64_t)LOGIO_HEADER)
#define SHDR STATEIO_ENTRY_HEADER
#define NEAR 40            /* a cut "near" a boundary: within this many bytes */

static char tmpdir[256];

static double now_sec(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t n){
  void *p = malloc(n ? n : 1);
  if( !p ){ perror("malloc"); exit(2); }
  return p;
}

static void put64(unsigned char *p, uint64_t v){
  for(int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p){
  uint64_t v = 0;
  for(int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static uint32_t rnd(uint32_t *s){
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}


/* ------------------------------------------------------------ the oracle */

/* An entry as written, and where our own arithmetic says it lies. */
typedef struct went {
  int kind;                /* STATEIO_UPDATE or STATEIO_SNAPSHOT */
  uint64_t efield;         /* the epoch field */
  unsigned char *data;
  size_t len, cap;
  uint64_t start, end;
  int reopen_before;       /* the writer is closed and opened again before it */
} went;

/* One record, from our own arithmetic. */
typedef struct wrec { uint64_t pos; size_t len; int type; uint64_t off; int entry; } wrec;

typedef struct shape {
  const char *name, *what;
  went *W;
  int n, cap;
  wrec *R;
  int nr;
  unsigned char *bytes;    /* the file as the writer left it */
  uint64_t size;
  uint64_t off, epoch;     /* while building: the log's size and epoch */
  uint64_t *inner;         /* where inner entries' first records land */
  int ninner, capinner;
  int sampled;             /* cut in the last two blocks, near boundaries, every 97th elsewhere */
  int cut_stride;          /* sampled: every cut_stride-th length in the last two blocks */
  size_t inner_dmax;       /* inner entries hold up to this many bytes of data */
} shape;




/* Begin an entry of shape s: placed after the entries so far; data not yet set. */
static went *sh_begin(shape *s, int kind, size_t cap){
  if( s->n == s->cap ){
    s->cap = s->cap ? s->cap * 2 : 16;
    s->W = realloc(s->W, (size_t)s->cap * sizeof(went));
    if( !s->W ){ perror("realloc"); exit(2); }
  }
  went *e = &s->W[s->n++];
  memset(e, 0, sizeof(*e));
  e->kind = kind;
  e->start = layout_aligned(s->off);
  e->efield = s->epoch;
  e->cap = cap;
  e->data = xmalloc(cap);
  memset(e->data, 0, cap ? cap : 1);
  return e;
}

/* End the entry begun last, with len bytes of data. */
static void sh_end(shape *s, size_t len){
  went *e = &s->W[s->n - 1];
  if( len > e->cap ){ fprintf(stderr, "sh_end: %zu > %zu\n", len, e->cap); exit(2); }
  e->len = len;
  e->end = layout_entry_end(e->start, SHDR + len);
  s->off = e->end;
  if( e->kind == STATEIO_SNAPSHOT ) s->epoch = e->start;
}

static void add_gen(shape *s, int kind, size_t len, unsigned seed){
  went *e = sh_begin(s, kind, len);
  layout_gen(e->data, len, seed);
  sh_end(s, len);
}

/* Data length that makes an entry begun now end `leave` bytes before its block's end. */
static size_t fill_len(const shape *s, uint64_t leave){
  uint64_t st = layout_aligned(s->off);
  return (size_t)(BLK - st % BLK - HDR - SHDR - leave);
}

static void add_inner(shape *s, uint64_t pos){
  if( s->ninner == s->capinner ){
    s->capinner = s->capinner ? s->capinner * 2 : 64;
    s->inner = realloc(s->inner, (size_t)s->capinner * sizeof(uint64_t));
    if( !s->inner ){ perror("realloc"); exit(2); }
  }
  s->inner[s->ninner++] = pos;
}

/*
** Put small state logs into the data of e (the entry begun last), from
** data offset x up to limit, at most nlogs of them; returns the offset
** after the last. Each log has 3 to 6 entries of 0..47 bytes of data, the
** middle one a snapshot. forge=0: each log is encoded as written at offset
** 0 of a file of its own (its epochs are its own offsets: what a copied
** log looks like). forge=1: each entry is encoded as a writer would append
** it at the file position where its bytes land, with the outer log's epoch
** and an inner snapshot naming it, the logs following on from each other:
** records inside the data that, taken for the log's own, make a
** consistent log (a reader that resynchronises on them sees nothing odd).
** An inner entry that does not fit in the outer record it starts in is
** encoded anyway; its bytes are then split by the outer record header.
*/
static size_t put_logs(shape *s, size_t x, size_t limit, int nlogs, int forge, uint32_t *seed){
  went *e = &s->W[s->n - 1];
  uint64_t E = e->kind == STATEIO_SNAPSHOT ? e->start : e->efield;
  for(int l = 0; l < nlogs; l++){
    int m = 3 + (int)(rnd(seed) % 4);
    uint64_t io = 0, iE = forge ? E : 0;
    for(int k = 0; k < m; k++){
      size_t dl = rnd(seed) % (s->inner_dmax ? s->inner_dmax : 48);
      int kind = k == m / 2 ? STATEIO_SNAPSHOT : STATEIO_UPDATE;
      uint64_t q = forge ? layout_landing(e->start, x) : io;
      uint64_t sz = logio_encoded_size(q, SHDR + dl);
      if( x + sz > limit ) return x;
      unsigned char head[SHDR], d[1024];
      head[0] = (unsigned char)kind;
      put64(head + 1, iE);
      layout_gen(d, dl, rnd(seed));
      uint64_t st;
      logio_encode(q, head, SHDR, d, dl, e->data + x, &st);
      if( kind == STATEIO_SNAPSHOT ) iE = st;
      add_inner(s, layout_landing(e->start, x + (size_t)(st - q)));
      x += (size_t)sz;
      io += sz;
    }
    if( forge ) E = iE;
  }
  return x;
}

/* Begin an entry whose data is logs filling at most cap bytes; end it where they end. */
static void add_logs(shape *s, int kind, size_t cap, int nlogs, int forge, uint32_t *seed){
  sh_begin(s, kind, cap);
  size_t x = put_logs(s, 0, cap, nlogs, forge, seed);
  sh_end(s, x);
}

/* ------------------------------------------------------------ the shapes */

static void build_plain(shape *s){
  s->name = "plain";
  s->sampled = 1;
  s->cut_stride = 1;
  s->what = "entries of 0..32744 bytes, four epochs, padding, a block-filling record, entries across block boundaries";
  add_gen(s, STATEIO_UPDATE, 0, 1);
  add_gen(s, STATEIO_UPDATE, 1, 2);
  add_gen(s, STATEIO_UPDATE, 7, 3);
  add_gen(s, STATEIO_UPDATE, 100, 4);
  add_gen(s, STATEIO_SNAPSHOT, 0, 5);
  add_gen(s, STATEIO_UPDATE, 40, 6);
  add_gen(s, STATEIO_UPDATE, fill_len(s, 15), 7);        /* 15 bytes of padding follow */
  add_gen(s, STATEIO_UPDATE, 32744, 8);                  /* one record filling block 1 */
  add_gen(s, STATEIO_UPDATE, 5, 9);
  s->W[s->n - 1].reopen_before = 1;
  add_gen(s, STATEIO_SNAPSHOT, 30, 10);
  add_gen(s, STATEIO_UPDATE, 0, 11);
  add_gen(s, STATEIO_UPDATE, fill_len(s, 200), 12);
  add_gen(s, STATEIO_SNAPSHOT, 1000, 13);                /* across blocks 2 and 3 */
  add_gen(s, STATEIO_UPDATE, 300, 14);
  add_gen(s, STATEIO_UPDATE, 50, 15);
}

static void build_whole(shape *s, int last){
  uint32_t seed = last ? 77 : 7;
  s->name = last ? "whole-last" : "whole";
  s->what = last ? "whole logs inside one record; the last entry an update holding a forged log"
                 : "whole logs (copied and forged) each inside one record's data, in all three epochs";
  add_gen(s, STATEIO_UPDATE, 5, 21);
  add_logs(s, STATEIO_UPDATE, 600, 1, 0, &seed);         /* a copied log */
  add_gen(s, STATEIO_UPDATE, 8, 22);
  add_logs(s, STATEIO_UPDATE, 600, 1, 1, &seed);         /* a forged log */
  if( last ){
    add_logs(s, STATEIO_SNAPSHOT, 900, 2, 1, &seed);
    add_gen(s, STATEIO_UPDATE, 6, 23);
    s->W[s->n - 1].reopen_before = 1;
    add_logs(s, STATEIO_UPDATE, 700, 1, 1, &seed);       /* the last entry */
    return;
  }
  add_logs(s, STATEIO_SNAPSHOT, 900, 2, 1, &seed);       /* the snapshot is logs */
  add_logs(s, STATEIO_UPDATE, 600, 1, 0, &seed);
  s->W[s->n - 1].reopen_before = 1;
  add_logs(s, STATEIO_UPDATE, 2000, 3, 1, &seed);
  add_gen(s, STATEIO_UPDATE, 7, 24);
  add_logs(s, STATEIO_SNAPSHOT, 600, 1, 0, &seed);
  add_logs(s, STATEIO_UPDATE, 800, 1, 1, &seed);
  add_gen(s, STATEIO_UPDATE, 9, 25);
}

static void build_cross(shape *s, int last){
  uint32_t seed = last ? 99 : 9;
  s->name = last ? "cross-last" : "cross";
  s->what = last ? "logs inside an update across a block boundary, the last entry"
                 : "logs inside an update and a snapshot that cross block boundaries";
  add_gen(s, STATEIO_UPDATE, 10, 31);
  add_logs(s, STATEIO_UPDATE, 500, 1, 1, &seed);
  add_gen(s, STATEIO_UPDATE, fill_len(s, 1200), 32);
  add_logs(s, STATEIO_UPDATE, 5000, 12, 1, &seed);       /* FIRST in block 0, LAST in block 1 */
  if( last ) return;
  add_gen(s, STATEIO_UPDATE, 20, 33);
  add_gen(s, STATEIO_UPDATE, fill_len(s, 700), 34);
  s->W[s->n - 1].reopen_before = 1;
  add_logs(s, STATEIO_SNAPSHOT, 3000, 8, 0, &seed);      /* across blocks 1 and 2 */
  add_logs(s, STATEIO_UPDATE, 700, 1, 1, &seed);
  add_gen(s, STATEIO_UPDATE, 9, 35);
}

static void build_many(shape *s, int last){
  uint32_t seed = last ? 55 : 5;
  s->name = last ? "many-last" : "many";
  s->what = last ? "a ~100 KB snapshot holding dozens of logs, the last entry"
                 : "a ~100 KB snapshot holding dozens of logs across four blocks";
  s->sampled = 1;
  s->cut_stride = 4;       /* today's reader is quadratic in a block of records: every length costs ~35 s */
  add_gen(s, STATEIO_UPDATE, 10, 41);
  if( last ){
    add_gen(s, STATEIO_SNAPSHOT, 50, 42);
    add_logs(s, STATEIO_UPDATE, 600, 1, 1, &seed);
  }else{
    add_logs(s, STATEIO_UPDATE, 600, 1, 1, &seed);
  }
  /* Dozens of logs, copied and forged in turn, ~100 KB in all. */
  s->inner_dmax = 600;
  sh_begin(s, STATEIO_SNAPSHOT, 100000);
  size_t x = 0;
  for(int k = 0; x < 98000; k++){
    size_t nx = put_logs(s, x, 100000, 1, k & 1, &seed);
    if( nx == x ) break;
    x = nx;
  }
  sh_end(s, x);
  s->inner_dmax = 0;
  if( last ) return;
  add_logs(s, STATEIO_UPDATE, 600, 1, 0, &seed);
  add_gen(s, STATEIO_UPDATE, 20, 43);
}

static void list_records(shape *s){
  int cap = 64;
  s->R = xmalloc((size_t)cap * sizeof(wrec));
  s->nr = 0;
  for(int i = 0; i < s->n; i++){
    uint64_t pos = s->W[i].start, left = SHDR + s->W[i].len;
    int first = 1;
    while( left > 0 ){
      if( s->nr == cap ){
        cap *= 2;
        s->R = realloc(s->R, (size_t)cap * sizeof(wrec));
        if( !s->R ){ perror("realloc"); exit(2); }
      }
      uint64_t room = BLK - pos % BLK - HDR;
      uint64_t take = left < room ? left : room;
      wrec *r = &s->R[s->nr++];
      r->pos = pos;
      r->len = (size_t)take;
      r->type = first ? (take == left ? LOGIO_FULL : LOGIO_FIRST)
                      : (take == left ? LOGIO_LAST : LOGIO_MIDDLE);
      r->off = pos - s->W[i].start;
      r->entry = i;
      left -= take;
      pos += HDR + take;
      first = 0;
    }
  }
}

static uint64_t path_size(const char *path){
  struct stat st;
  return stat(path, &st) == 0 ? (uint64_t)st.st_size : (uint64_t)-1;
}

static unsigned char *read_all(const char *path, uint64_t *n){
  int fd = open(path, O_RDONLY);
  if( fd < 0 ) return NULL;
  struct stat st;
  if( fstat(fd, &st) != 0 ){ close(fd); return NULL; }
  *n = (uint64_t)st.st_size;
  unsigned char *p = xmalloc(*n);
  if( pread(fd, p, *n, 0) != (ssize_t)*n ){ free(p); p = NULL; }
  close(fd);
  return p;
}

/* Write s with the library's writer; 0 when the file is what the oracle says. */
static int write_shape(shape *s){
  char path[300];
  snprintf(path, sizeof(path), "%s/%s.log", tmpdir, s->name);
  unlink(path);
  stateio_writer *w;
  int rc = stateio_writer_open(&w, path, STATEIO_CREATE);
  for(int i = 0; i < s->n && rc == STATEIO_OK; i++){
    const went *e = &s->W[i];
    if( e->reopen_before ){
      rc = stateio_writer_close(w);
      w = NULL;
      if( rc == STATEIO_OK ) rc = stateio_writer_open(&w, path, 0);
      if( rc ) break;
    }
    rc = e->kind == STATEIO_SNAPSHOT ? stateio_snapshot(w, e->data, e->len)
                                     : stateio_update(w, e->data, e->len);
    if( rc == STATEIO_OK && path_size(path) != e->end ){
      printf("  %s: after entry %d the file has %llu bytes, want %llu\n", s->name, i,
             (unsigned long long)path_size(path), (unsigned long long)e->end);
      rc = -1;
    }
  }
  if( w ) stateio_writer_close(w);
  if( rc ){
    printf("  %s: writer: %s\n", s->name, rc < 0 ? "wrong size" : stateio_errstr(rc));
    return -1;
  }
  s->bytes = read_all(path, &s->size);
  unlink(path);
  if( !s->bytes || s->size != s->off ) return -1;
  list_records(s);
  return 0;
}

/* Whether a valid FULL record starts at pos in p[0..n) (our own parse). */
static int valid_full_at(const unsigned char *p, uint64_t n, uint64_t pos){
  if( pos + HDR + 1 > n || BLK - pos % BLK < HDR + 1 ) return 0;
  const unsigned char *h = p + pos;
  size_t len = (size_t)h[5] | ((size_t)h[6] << 8);
  if( h[4] != LOGIO_FULL || len == 0 || get64(h + 7) != 0 ) return 0;
  if( pos % BLK + HDR + len > BLK || pos + HDR + len > n ) return 0;
  uint32_t sum = (uint32_t)h[0] | ((uint32_t)h[1] << 8) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 24);
  return (uint32_t)XXH64(h + 4, 11 + len, 0) == sum;
}

/* The records' headers in the file are the ones our arithmetic predicts. */
static int layout_ok(const shape *s){
  int bad = 0;
  for(int i = 0; i < s->nr; i++){
    const unsigned char *p = s->bytes + s->R[i].pos;
    size_t len = (size_t)p[5] | ((size_t)p[6] << 8);
    if( p[4] != s->R[i].type || len != s->R[i].len || get64(p + 7) != s->R[i].off ){
      if( bad++ < 3 ) printf("  %s: record %d at %llu: type %d len %zu off %llu, want %d %zu %llu\n",
                             s->name, i, (unsigned long long)s->R[i].pos, p[4], len,
                             (unsigned long long)get64(p + 7), s->R[i].type, s->R[i].len,
                             (unsigned long long)s->R[i].off);
    }
  }
  return bad == 0;
}

/* ------------------------------------------------------------ mutations and violations */

enum { M_XOR, M_INC, M_DEC, M_ZERO, M_PAYLOAD, M_WIPE0, M_WIPEFF, M_WIPEX, M_WIPECOPY, M_TRUNC, M_NONE, NMUT };
static const char *const mut_name[NMUT] = {
  "header^0xff", "header+1", "header-1", "header=0", "payload^0xff",
  "header:=00..", "header:=ff..", "header:=other", "header:=another's", "truncate", "none"
};
/* Flips of a whole header: c->field is F_HEADER, c->pos its first byte, c->to the fill (or the first byte). */
#define F_HEADER (-2)

typedef struct mcase {
  const shape *s;
  int kind;                /* M_* */
  uint64_t pos;            /* flips: the byte changed */
  unsigned char from, to;
  int rec;                 /* flips: the record holding it */
  int field;               /* flips: header byte 0..14, -1 in the payload, F_HEADER all of it */
  int d;                   /* flips: the entry damaged */
  uint64_t L;              /* the file's size after the mutation */
} mcase;

enum { R_SCAN, R_CHECK, R_RESTORE, R_UPDATES, R_REWIND, R_READAT, R_PSCAN, NREADER };
static const char *const reader_name[NREADER] = {
  "scan", "check", "restore", "updates", "rewind", "read_at", "parallel scan"
};

enum {
  V_INVENTED, V_EPOCH, V_LOST, V_UNREPORTED, V_TAKEN_TORN, V_STRICT, V_TORN_ERROR,
  V_RESTORE, V_SAME_BLOCK, V_REPAIRED, V_API, NVIOL
};
static const char *const viol_name[NVIOL] = {
  "invented", "older epoch", "lost", "unreported", "taken torn", "strict",
  "torn error", "restore", "same block", "repaired", "api"
};
static const char *const viol_what[NVIOL] = {
  "no reader returns an entry (or state) that was never written, or at another offset, or with other data",
  "restore never returns an older epoch as the current one",
  "every entry of an undamaged block (before any cut) is read",
  "the damaged region reported covers the mutated byte",
  "a complete damaged entry is corruption, never a torn tail",
  "strict mode: every entry before the damage, then an error covering it",
  "a cut is a torn tail: no error, restore gives the state after the last complete entry",
  "restore fails only naming the damaged entry, never when the last entry and the current snapshot are intact",
  "after a damaged type, length or offset field, the entries after its record in its block are read",
  "a damaged entry is never returned as intact",
  "results in file order, no overlaps, expected statuses",
};

#define NSHAPE 8
static long v_count[NVIOL][NREADER];
static long v_cases[NVIOL];
static long v_cases_mut[NVIOL][NMUT];
static long v_cases_shape[NVIOL][NSHAPE];
static int v_shown[NVIOL];
static int show_max = 4;              /* details printed per class (STATEIO_DAMAGE_SHOW) */
static unsigned case_flags;            /* classes already counted for this case */
static const mcase *cur;
static int cur_shape;
static long entries_checked;
static long restore_refused;           /* restore failed naming the damaged entry */
static long wipes_ambiguous, wipes_torn;  /* destroyed headers that may be / that the scan took for a torn append */
static long cases[NSHAPE][NMUT];
static long bad_cases[NSHAPE][NMUT];   /* cases with at least one violation */
/*
** STATEIO_DAMAGE_TRACE=SHAPE:POS:HEX prints what every reader returns for
** the one flip of byte POS to HEX in that log; SHAPE:cut:L for a cut at L.
*/
static const char *trace;
static int tracing;
static double reader_secs[NREADER];   /* time spent in each reader (restore includes updates) */

static const char *type_name(int t){
  static const char *const n[] = { "?", "FULL", "FIRST", "MIDDLE", "LAST" };
  return t >= 1 && t <= 4 ? n[t] : "?";
}

static const char *field_name(int f){
  if( f == F_HEADER ) return "header";
  if( f < 0 ) return "payload";
  if( f < 4 ) return "checksum";
  if( f == 4 ) return "type";
  if( f < 7 ) return "length";
  return "offset";
}

static const char *kind_name(int k){
  return k == STATEIO_SNAPSHOT ? "snapshot" : k == STATEIO_UPDATE ? "update" : "?";
}

static void describe(char *buf, size_t n, const mcase *c){
  const shape *s = c->s;
  if( c->kind == M_TRUNC || c->kind == M_NONE ){
    int k = -1;
    for(int i = 0; i < s->n; i++) if( s->W[i].start < c->L && s->W[i].end > c->L ) k = i;
    if( k >= 0 ){
      snprintf(buf, n, "%s %s L=%llu (cuts entry %d, %s at %llu..%llu)", s->name, mut_name[c->kind],
               (unsigned long long)c->L, k, kind_name(s->W[k].kind),
               (unsigned long long)s->W[k].start, (unsigned long long)s->W[k].end);
    }else{
      snprintf(buf, n, "%s %s L=%llu", s->name, mut_name[c->kind], (unsigned long long)c->L);
    }
    return;
  }
  const wrec *r = &s->R[c->rec];
  const went *e = &s->W[c->d];
  snprintf(buf, n, "%s %s at %llu (%s byte %lld of the %s record at %llu) %02x->%02x;"
           " entry %d: %s of %zu bytes at %llu..%llu", s->name, mut_name[c->kind],
           (unsigned long long)c->pos, field_name(c->field),
           (long long)(c->field >= 0 ? c->field : c->field == F_HEADER ? 0 : (long long)(c->pos - r->pos - HDR)),
           type_name(r->type), (unsigned long long)r->pos, c->from, c->to, c->d,
           kind_name(e->kind), e->len, (unsigned long long)e->start, (unsigned long long)e->end);
}

__attribute__((format(printf, 3, 4)))
static void viol(int cls, int reader, const char *fmt, ...){
  v_count[cls][reader]++;
  if( !(case_flags & (1u << cls)) ){
    case_flags |= 1u << cls;
    v_cases[cls]++;
    v_cases_mut[cls][cur->kind]++;
    v_cases_shape[cls][cur_shape]++;
  }
  if( v_shown[cls] < show_max ){
    v_shown[cls]++;
    char what[400];
    describe(what, sizeof(what), cur);
    printf("  [%s] %s\n      %s: ", viol_name[cls], what, reader_name[reader]);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
  }
}

static long total_violations(void){
  long t = 0;
  for(int v = 0; v < NVIOL; v++) for(int r = 0; r < NREADER; r++) t += v_count[v][r];
  return t;
}

/* ------------------------------------------------------------ what each reader must do */

typedef struct expect {
  unsigned char *must;     /* entry i must be read (all its blocks untouched, before any cut) */
  unsigned char *same;     /* entry i follows a confirmable damaged record in its block */
  int last;                /* index of the last complete entry (-1: none) */
  uint64_t E;              /* the true current epoch */
  int si;                  /* its snapshot (-1: none) */
  uint64_t log_end;        /* cuts: the end of the last complete entry */
  int must_restore;        /* flips: restore must succeed */
  /*
  ** A destroyed header with no complete entry starting in a later block:
  ** what a power loss can leave (zeros or old bytes where the header was,
  ** then data), so a reader may take it for a torn append that begins at
  ** torn_floor (the end of the entry before it); it then reads the log as
  ** cut there: entries up to tlast, epoch tE, its snapshot tsi.
  */
  int may_torn, tlast, tsi;
  uint64_t torn_floor, tE;
  int torn_taken;          /* this reader took it so (for check_updates) */
} expect;

static int flip_case(const mcase *c){ return c->kind < M_TRUNC; }

static int covers(uint64_t off, uint64_t end, uint64_t p){ return off <= p && p < end; }

/* Whether a torn tail [to, to+tl) is an allowed reading of the case (expect.may_torn). */
static int torn_ok(const mcase *c, const expect *x, uint64_t to, uint64_t tl){
  return x->may_torn && to >= x->torn_floor && to <= c->pos && to + tl == c->L;
}

/* Whether entry e has a record in block b. */
static int touches(const went *e, uint64_t b){
  return e->start / BLK <= b && (e->end - 1) / BLK >= b;
}

static int find_start(const shape *s, uint64_t off){
  int lo = 0, hi = s->n - 1;
  while( lo <= hi ){
    int mid = (lo + hi) / 2;
    if( s->W[mid].start == off ) return mid;
    if( s->W[mid].start < off ) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}

/* Whether the block-log payload p[0..n) at [off, end) is exactly entry w. */
static int payload_is(const went *w, uint64_t off, uint64_t end, const unsigned char *p, size_t n){
  if( off != w->start || end != w->end || n != SHDR + w->len || !p ) return 0;
  if( p[0] != w->kind || get64(p + 1) != w->efield ) return 0;
  return w->len == 0 || memcmp(p + SHDR, w->data, w->len) == 0;
}

/* Whether a state entry returned by the scan is exactly entry w. */
static int state_is(const went *w, const stateio_entry *e){
  if( e->offset != w->start || e->end != w->end || e->kind != w->kind ) return 0;
  if( e->epoch != w->efield || e->len != w->len ) return 0;
  return w->len == 0 || (e->data && memcmp(e->data, w->data, w->len) == 0);
}

/* Whether epoch is one that was written: 0, or where an intact snapshot starts. */
static int written_epoch(const shape *s, uint64_t epoch){
  if( epoch == 0 ) return 1;
  int i = find_start(s, epoch);
  return i >= 0 && s->W[i].kind == STATEIO_SNAPSHOT;
}

static void compute_expect(const mcase *c, expect *x){
  const shape *s = c->s;
  int n = s->n;
  memset(x->must, 0, (size_t)n);
  memset(x->same, 0, (size_t)n);
  x->must_restore = 0;
  x->log_end = 0;
  x->may_torn = x->torn_taken = 0;
  x->tlast = x->tsi = -1;
  x->torn_floor = x->tE = 0;
  if( flip_case(c) && c->field == F_HEADER ){
    const wrec *r = &s->R[c->rec];
    int later = 0;
    for(int j = c->d + 1; j < n; j++) if( s->W[j].start / BLK > r->pos / BLK ) later = 1;
    if( !later ){
      x->may_torn = 1;
      x->tlast = c->d - 1;
      x->torn_floor = c->d > 0 ? s->W[c->d - 1].end : 0;
      if( x->tlast >= 0 ){
        const went *w = &s->W[x->tlast];
        x->tE = w->kind == STATEIO_SNAPSHOT ? w->start : w->efield;
        for(int j = x->tlast; j >= 0; j--){
          if( s->W[j].kind == STATEIO_SNAPSHOT && s->W[j].start == x->tE ){ x->tsi = j; break; }
        }
      }
    }
  }
  if( flip_case(c) ){
    uint64_t pb = c->pos / BLK;
    for(int i = 0; i < n; i++) x->must[i] = i != c->d && !touches(&s->W[i], pb);
    if( c->field >= 4 ){
      /* Type, length or offset: the stored checksum confirms the field. */
      const wrec *r = &s->R[c->rec];
      uint64_t rend = r->pos + HDR + r->len;
      for(int i = c->d + 1; i < n; i++){
        if( s->W[i].start >= rend && s->W[i].start / BLK == pb ) x->same[i] = 1;
      }
    }
    x->last = n - 1;
  }else{
    x->last = -1;
    for(int i = 0; i < n; i++){
      x->must[i] = s->W[i].end <= c->L;
      if( x->must[i] ) x->last = i;
    }
    x->log_end = x->last >= 0 ? s->W[x->last].end : 0;
  }
  x->E = 0;
  x->si = -1;
  if( x->last >= 0 ){
    const went *w = &s->W[x->last];
    x->E = w->kind == STATEIO_SNAPSHOT ? w->start : w->efield;
    for(int j = x->last; j >= 0; j--){
      if( s->W[j].kind == STATEIO_SNAPSHOT && s->W[j].start == x->E ){ x->si = j; break; }
    }
  }
  if( flip_case(c) ){
    uint64_t pb = c->pos / BLK;
    int epoch_entry = x->si >= 0 ? x->si : 0;
    x->must_restore = !touches(&s->W[n - 1], pb) && !touches(&s->W[epoch_entry], pb);
  }
}

/* ------------------------------------------------------------ the readers */

/*
** The scan (rd rd), or the same with the second thread verifying
** (R_PSCAN: stateio_scan_parallel, with logio_parallel_always on, so that
** these small logs go through prefetch.c's chain of verified records).
*/
static void check_scan(const mcase *c, const stateio_image *img, const expect *x, unsigned char *got,
                       int rd){
  const shape *s = c->s;
  int flip = flip_case(c);
  memset(got, 0, (size_t)s->n);
  stateio_scan *sc;
  if( stateio_scan_open(&sc, img, 0, 0) != STATEIO_OK ){
    viol(V_API, rd, "stateio_scan_open failed");
    return;
  }
  if( rd == R_PSCAN && stateio_scan_parallel(sc) != STATEIO_OK ){
    viol(V_API, rd, "stateio_scan_parallel failed");
    stateio_scan_close(sc);
    return;
  }
  uint64_t prev = 0;
  int reported = 0, strict_done = 0, strict_next = 0, strict_bad = 0, torn_taken = 0;
  for(long steps = 0; ; steps++){
    if( steps > (long)c->L + 10 ){ viol(V_API, rd, "the scan does not end"); break; }
    stateio_entry e;
    int rc = stateio_scan_next(sc, &e);
    if( tracing ){
      printf("    scan: %s %llu..%llu", stateio_errstr(rc), (unsigned long long)e.offset, (unsigned long long)e.end);
      if( rc == STATEIO_OK || (rc == STATEIO_CORRUPT_ENTRY && e.kind) ) printf(" %s epoch %llu, %zu bytes", kind_name(e.kind), (unsigned long long)e.epoch, e.len);
      if( e.problem ) printf(" (%s)", e.problem);
      if( rc == STATEIO_DONE ){ uint64_t tl, to = stateio_scan_torn(sc, &tl); printf(" torn %llu+%llu", (unsigned long long)to, (unsigned long long)tl); }
      printf("\n");
    }
    if( rc == STATEIO_DONE ){
      uint64_t tl, to = stateio_scan_torn(sc, &tl);
      if( tl > 0 && flip && torn_ok(c, x, to, tl) ){
        reported = torn_taken = 1;
        if( rd == R_SCAN ) wipes_torn++;
      }else if( tl > 0 && flip ){
        viol(V_TAKEN_TORN, rd, "torn tail %llu..%llu: the damage is dropped as a torn append",
             (unsigned long long)to, (unsigned long long)(to + tl));
      }else if( tl > 0 && (to < x->log_end || to + tl != c->L) ){
        viol(V_TORN_ERROR, rd, "torn tail %llu..%llu; the last complete entry ends at %llu",
             (unsigned long long)to, (unsigned long long)(to + tl), (unsigned long long)x->log_end);
      }
      break;
    }
    if( rc != STATEIO_OK && rc != STATEIO_CORRUPT_LOG && rc != STATEIO_CORRUPT_ENTRY ){
      viol(V_API, rd, "status %s", stateio_errstr(rc));
      break;
    }
    if( e.offset < prev || e.end <= e.offset || e.end > c->L ){
      viol(V_API, rd, "%s at %llu..%llu after %llu", stateio_errstr(rc),
           (unsigned long long)e.offset, (unsigned long long)e.end, (unsigned long long)prev);
    }
    if( e.end > prev ) prev = e.end;
    int cov = flip && covers(e.offset, e.end, c->pos);
    if( rc == STATEIO_OK ){
      entries_checked++;
      int i = find_start(s, e.offset);
      if( i < 0 || !state_is(&s->W[i], &e) ){
        viol(V_INVENTED, rd, "%s entry of epoch %llu, %zu bytes at %llu..%llu, never written",
             kind_name(e.kind), (unsigned long long)e.epoch, e.len,
             (unsigned long long)e.offset, (unsigned long long)e.end);
        strict_bad = 1;
      }else if( flip && i == c->d ){
        viol(V_REPAIRED, rd, "the damaged entry at %llu..%llu returned as intact",
             (unsigned long long)e.offset, (unsigned long long)e.end);
        strict_bad = 1;
      }else{
        got[i] = 1;
        if( i == strict_next ) strict_next++; else strict_bad = 1;
      }
    }else if( rc == STATEIO_CORRUPT_ENTRY ){
      int i = find_start(s, e.offset);
      if( i < 0 || s->W[i].end != e.end ){
        viol(V_INVENTED, rd, "a bad entry (%s) at %llu..%llu, never written",
             e.problem ? e.problem : "?", (unsigned long long)e.offset, (unsigned long long)e.end);
      }
    }else{
      if( cov ) reported = 1;
      if( !flip ){
        viol(V_TORN_ERROR, rd, "damaged region %llu..%llu (%s)", (unsigned long long)e.offset,
             (unsigned long long)e.end, e.problem ? e.problem : "?");
      }
    }
    if( rc != STATEIO_OK && !strict_done && flip ){
      strict_done = 1;
      if( strict_bad || strict_next != c->d ){
        viol(V_STRICT, rd, "%d written entries before the first error (%s at %llu..%llu), want the %d before the damage",
             strict_next, stateio_errstr(rc), (unsigned long long)e.offset, (unsigned long long)e.end, c->d);
      }else if( rc != STATEIO_CORRUPT_LOG || !cov ){
        viol(V_STRICT, rd, "the first error, %s at %llu..%llu, does not cover the damage",
             stateio_errstr(rc), (unsigned long long)e.offset, (unsigned long long)e.end);
      }
    }
  }
  stateio_scan_close(sc);
  if( flip && !strict_done && !torn_taken ) viol(V_STRICT, rd, "no error at all");
  if( flip && !strict_done && torn_taken && (strict_bad || strict_next != c->d) ){
    viol(V_STRICT, rd, "%d written entries before the torn tail, want the %d before the damage", strict_next, c->d);
  }
  for(int i = 0; i < s->n; i++){
    if( !x->must[i] && !x->same[i] ) continue;
    entries_checked++;
    if( got[i] ) continue;
    viol(x->must[i] ? V_LOST : V_SAME_BLOCK, rd, "entry %d (%s of %zu bytes at %llu..%llu) not read",
         i, kind_name(s->W[i].kind), s->W[i].len,
         (unsigned long long)s->W[i].start, (unsigned long long)s->W[i].end);
  }
  if( flip && !reported ){
    viol(V_UNREPORTED, rd, "no damaged region covers %llu", (unsigned long long)c->pos);
  }
}

typedef struct probs { int n; uint64_t off[64], len[64]; const char *why[64]; } probs;

static int probs_cb(void *arg, uint64_t off, uint64_t len, const char *why){
  probs *g = arg;
  if( g->n < 64 ){ g->off[g->n] = off; g->len[g->n] = len; g->why[g->n] = why; }
  g->n++;
  return 0;
}

static void check_check(const mcase *c, const stateio_image *img, const expect *x){
  probs g;
  g.n = 0;
  int rc = stateio_check(img, probs_cb, &g);
  for(int i = 0; tracing && i < g.n && i < 64; i++){
    printf("    check: %s at %llu..%llu\n", g.why[i], (unsigned long long)g.off[i], (unsigned long long)(g.off[i] + g.len[i]));
  }
  if( rc != STATEIO_OK ) viol(V_API, R_CHECK, "stateio_check: %s", stateio_errstr(rc));
  int cov = 0;
  for(int i = 0; i < g.n && i < 64; i++){
    int torn = g.why[i] && strcmp(g.why[i], "torn tail") == 0;
    if( flip_case(c) ){
      if( torn && torn_ok(c, x, g.off[i], g.len[i]) ){
        cov = 1;
      }else if( torn ){
        viol(V_TAKEN_TORN, R_CHECK, "torn tail %llu..%llu", (unsigned long long)g.off[i],
             (unsigned long long)(g.off[i] + g.len[i]));
      }else if( covers(g.off[i], g.off[i] + g.len[i], c->pos) ){
        cov = 1;
      }
    }else if( !torn || g.off[i] < x->log_end || g.off[i] + g.len[i] != c->L ){
      viol(V_TORN_ERROR, R_CHECK, "%s at %llu..%llu", g.why[i] ? g.why[i] : "?",
           (unsigned long long)g.off[i], (unsigned long long)(g.off[i] + g.len[i]));
    }
  }
  if( flip_case(c) && !cov ){
    viol(V_UNREPORTED, R_CHECK, "%d problems, none covering %llu", g.n, (unsigned long long)c->pos);
  }
}

static void check_updates(const mcase *c, const stateio_image *img, const expect *x,
                          const stateio_state *st, unsigned char *got){
  const shape *s = c->s;
  int flip = flip_case(c);
  memset(got, 0, (size_t)s->n);
  stateio_updates *u;
  if( stateio_updates_open(&u, img, st) != STATEIO_OK ){
    viol(V_API, R_UPDATES, "stateio_updates_open failed");
    return;
  }
  int j0 = x->si + 1;
  int reported = 0;
  uint64_t prev = st->updates_start;
  for(long steps = 0; ; steps++){
    if( steps > (long)c->L + 10 ){ viol(V_API, R_UPDATES, "the update reader does not end"); break; }
    stateio_entry e;
    int rc = stateio_updates_next(u, &e);
    if( tracing ) printf("    updates: %s at %llu (%zu bytes)\n", stateio_errstr(rc), (unsigned long long)e.offset, e.len);
    if( rc == STATEIO_DONE ) break;
    if( e.offset < prev ){
      viol(V_API, R_UPDATES, "%s at %llu after %llu", stateio_errstr(rc),
           (unsigned long long)e.offset, (unsigned long long)prev);
    }
    prev = e.offset;
    if( rc == STATEIO_OK ){
      entries_checked++;
      int i = find_start(s, e.offset);
      const went *w = i >= 0 ? &s->W[i] : NULL;
      if( !w || i < j0 || i > x->last || w->kind != STATEIO_UPDATE || w->efield != x->E
          || e.end != w->end || e.len != w->len || (w->len && memcmp(e.data, w->data, w->len) != 0) ){
        viol(V_INVENTED, R_UPDATES, "an update of %zu bytes at %llu..%llu, never written as an update of epoch %llu",
             e.len, (unsigned long long)e.offset, (unsigned long long)e.end, (unsigned long long)x->E);
      }else if( flip && i == c->d ){
        viol(V_REPAIRED, R_UPDATES, "the damaged update at %llu returned as intact", (unsigned long long)e.offset);
      }else{
        got[i] = 1;
      }
      prev = e.end;
    }else if( rc == STATEIO_CORRUPT_LOG ){
      if( flip && covers(e.offset, e.offset + e.len, c->pos) ) reported = 1;
      if( !flip ){
        viol(V_TORN_ERROR, R_UPDATES, "damaged region %llu..%llu", (unsigned long long)e.offset,
             (unsigned long long)(e.offset + e.len));
      }
      prev = e.offset + e.len;
    }else if( rc == STATEIO_CORRUPT_ENTRY ){
      if( find_start(s, e.offset) < 0 ){
        viol(V_INVENTED, R_UPDATES, "a bad entry at %llu..%llu, never written",
             (unsigned long long)e.offset, (unsigned long long)e.end);
      }
    }else{
      viol(V_API, R_UPDATES, "status %s", stateio_errstr(rc));
      break;
    }
  }
  stateio_updates_close(u);
  for(int i = j0; i <= x->last; i++){
    const went *w = &s->W[i];
    if( w->kind != STATEIO_UPDATE || w->efield != x->E ) continue;
    if( !x->must[i] && !x->same[i] ) continue;
    entries_checked++;
    if( got[i] ) continue;
    viol(x->must[i] ? V_LOST : V_SAME_BLOCK, R_UPDATES, "the update %d of %zu bytes at %llu..%llu not read",
         i, w->len, (unsigned long long)w->start, (unsigned long long)w->end);
  }
  if( flip && !x->torn_taken && c->d >= j0 && s->W[c->d].kind == STATEIO_UPDATE && s->W[c->d].efield == x->E && !reported ){
    viol(V_UNREPORTED, R_UPDATES, "the damaged update of the current epoch is not reported");
  }
}

static void check_restore(const mcase *c, const stateio_image *img, const expect *x, unsigned char *got){
  const shape *s = c->s;
  int flip = flip_case(c);
  stateio_state st;
  int rc = stateio_restore(img, &st);
  if( tracing ){
    printf("    restore: %s epoch %llu snapshot %d (%zu bytes) log_end %llu torn %llu bad_offset %llu\n",
           stateio_errstr(rc), (unsigned long long)st.epoch, st.has_snapshot, st.snapshot_len,
           (unsigned long long)st.log_end, (unsigned long long)st.torn_len, (unsigned long long)st.bad_offset);
  }
  if( !flip && c->L >= 1 && c->L <= 4 ){
    /* 1..4 bytes hold only part of a checksum: nothing says "log". */
    if( rc != STATEIO_NOTLOG ) viol(V_TORN_ERROR, R_RESTORE, "restore: %s, want %s", stateio_errstr(rc), stateio_errstr(STATEIO_NOTLOG));
    stateio_state_clear(&st);
    return;
  }
  if( rc != STATEIO_OK ){
    if( !flip ){
      viol(V_TORN_ERROR, R_RESTORE, "restore: %s (bad_offset %llu)", stateio_errstr(rc),
           (unsigned long long)st.bad_offset);
    }else if( x->must_restore ){
      viol(V_RESTORE, R_RESTORE, "restore: %s (bad_offset %llu), although the last entry and the current snapshot are intact%s",
           stateio_errstr(rc), (unsigned long long)st.bad_offset,
           s->W[c->d].kind == STATEIO_SNAPSHOT ? " (the damaged entry is an older snapshot)" : "");
    }else if( (rc != STATEIO_CORRUPT_LOG && rc != STATEIO_CORRUPT_ENTRY)
              || st.bad_offset < s->W[c->d].start || st.bad_offset >= s->W[c->d].end ){
      viol(V_RESTORE, R_RESTORE, "restore: %s with bad_offset %llu, not in the damaged entry",
           stateio_errstr(rc), (unsigned long long)st.bad_offset);
    }else{
      restore_refused++;
    }
    stateio_state_clear(&st);
    return;
  }
  entries_checked++;
  expect xt;
  if( flip && st.torn_len > 0 && torn_ok(c, x, st.log_end, st.torn_len) ){
    /* Taken for a torn append: the log as cut where it begins. */
    xt = *x;
    xt.E = x->tE;
    xt.si = x->tsi;
    xt.last = x->tlast;
    xt.torn_taken = 1;
    x = &xt;
  }
  if( st.epoch != x->E ){
    int older = st.epoch < x->E && written_epoch(s, st.epoch);
    viol(older ? V_EPOCH : V_INVENTED, R_RESTORE, "epoch %llu as the current one; the last epoch written is %llu",
         (unsigned long long)st.epoch, (unsigned long long)x->E);
    stateio_state_clear(&st);
    return;
  }
  int ok;
  if( x->si >= 0 ){
    const went *w = &s->W[x->si];
    ok = st.has_snapshot && st.snapshot_len == w->len && st.prev_epoch == w->efield
      && st.snapshot_end == w->end && (w->len == 0 || memcmp(st.snapshot, w->data, w->len) == 0);
  }else{
    ok = !st.has_snapshot && st.snapshot_len == 0;
  }
  if( !ok ){
    viol(V_INVENTED, R_RESTORE, "the state of epoch %llu: snapshot %d of %zu bytes ending at %llu, not the one written",
         (unsigned long long)st.epoch, st.has_snapshot, st.snapshot_len, (unsigned long long)st.snapshot_end);
    stateio_state_clear(&st);
    return;
  }
  if( flip && x->si == c->d ){
    viol(V_REPAIRED, R_RESTORE, "the damaged snapshot at %llu restored as intact", (unsigned long long)s->W[c->d].start);
  }
  if( x->torn_taken ){
    /* torn_ok() placed the tail. */
  }else if( flip ){
    if( st.torn_len > 0 ){
      viol(V_TAKEN_TORN, R_RESTORE, "%llu bytes at %llu taken for a torn tail (a writer would cut them)",
           (unsigned long long)st.torn_len, (unsigned long long)st.log_end);
    }else if( st.log_end != c->L ){
      viol(V_API, R_RESTORE, "log_end %llu + torn_len %llu is not the file size %llu",
           (unsigned long long)st.log_end, (unsigned long long)st.torn_len, (unsigned long long)c->L);
    }
  }else if( st.log_end != x->log_end || st.torn_len != c->L - x->log_end ){
    viol(V_TORN_ERROR, R_RESTORE, "log_end %llu torn_len %llu, want %llu %llu",
         (unsigned long long)st.log_end, (unsigned long long)st.torn_len,
         (unsigned long long)x->log_end, (unsigned long long)(c->L - x->log_end));
  }
  check_updates(c, img, x, &st, got);
  stateio_state_clear(&st);
}

static void check_rewind(const mcase *c, const stateio_image *img, const expect *x, unsigned char *got){
  const shape *s = c->s;
  memset(got, 0, (size_t)s->n);
  uint64_t limit = c->L;
  /* Each step goes back at least one record (16 bytes): the walk ends. */
  for(uint64_t step = 0; step <= c->L / (HDR + 1) + 1; step++){
    uint64_t st, en;
    int rc = logio_rewind(img, limit, &st, &en);
    if( tracing ) printf("    rewind from %llu: %s %llu..%llu\n", (unsigned long long)limit, stateio_errstr(rc), (unsigned long long)st, (unsigned long long)en);
    if( rc == STATEIO_DONE ) break;
    if( rc != STATEIO_OK ){ viol(V_API, R_REWIND, "rewind from %llu: %s", (unsigned long long)limit, stateio_errstr(rc)); break; }
    entries_checked++;
    int i = find_start(s, st);
    if( i < 0 || s->W[i].end != en || en > limit || en > c->L ){
      viol(V_INVENTED, R_REWIND, "rewind from %llu: an entry at %llu..%llu, never written",
           (unsigned long long)limit, (unsigned long long)st, (unsigned long long)en);
    }else if( flip_case(c) && i == c->d ){
      viol(c->field == -1 ? V_INVENTED : V_REPAIRED, R_REWIND, "rewind from %llu: the damaged entry at %llu..%llu",
           (unsigned long long)limit, (unsigned long long)st, (unsigned long long)en);
    }else{
      got[i] = 1;
    }
    if( st >= limit ){ viol(V_API, R_REWIND, "rewind from %llu returned %llu", (unsigned long long)limit, (unsigned long long)st); break; }
    limit = st;
  }
  for(int i = 0; i < s->n; i++){
    if( !x->must[i] ) continue;
    entries_checked++;
    if( !got[i] ){
      viol(V_LOST, R_REWIND, "the rewind walk passed over entry %d (%s at %llu..%llu)", i,
           kind_name(s->W[i].kind), (unsigned long long)s->W[i].start, (unsigned long long)s->W[i].end);
    }
  }
}

static void check_read_at(const mcase *c, const stateio_image *img, const expect *x){
  const shape *s = c->s;
  for(int i = 0; i < s->n; i++){
    const went *w = &s->W[i];
    if( w->start >= c->L ) continue;
    entries_checked++;
    logio_entry e;
    int rc = logio_read_entry_at(img, w->start, &e);
    if( tracing ) printf("    read_at %llu: %s\n", (unsigned long long)w->start, stateio_errstr(rc));
    if( rc == STATEIO_OK ){
      if( !payload_is(w, e.offset, e.end, e.data, e.len) ){
        viol(V_INVENTED, R_READAT, "at %llu: %zu bytes ending at %llu, not the entry written",
             (unsigned long long)w->start, e.len, (unsigned long long)e.end);
      }else if( flip_case(c) && i == c->d ){
        viol(V_REPAIRED, R_READAT, "the damaged entry at %llu returned as intact", (unsigned long long)w->start);
      }
      stateio_free((void*)e.data);
    }else{
      if( x->must[i] ){
        viol(V_LOST, R_READAT, "entry %d (%s at %llu..%llu): %s", i, kind_name(w->kind),
             (unsigned long long)w->start, (unsigned long long)w->end, stateio_errstr(rc));
      }
      if( rc != STATEIO_CORRUPT_LOG && rc != STATEIO_TORN && rc != STATEIO_NOTFOUND && rc != STATEIO_CORRUPT_ENTRY ){
        viol(V_API, R_READAT, "at %llu: %s", (unsigned long long)w->start, stateio_errstr(rc));
      }
    }
  }
}

/* The parallel scan reads every pscan_every-th case (fewer under ASan). */
static long pscan_every = 1, pscan_n, pscan_cases;

static void run_case(const mcase *c, const unsigned char *buf, expect *x, unsigned char *got){
  cur = c;
  case_flags = 0;
  cases[cur_shape][c->kind]++;
  stateio_image img;
  memset(&img, 0, sizeof(img));
  img.fd = -1;
  img.tail = buf;
  img.tail_len = (size_t)c->L;
  compute_expect(c, x);
  if( x->may_torn ) wipes_ambiguous++;
  tracing = 0;
  if( trace ){
    char want[128];
    if( flip_case(c) && c->field == F_HEADER ){
      snprintf(want, sizeof(want), "%s:wipe:%llu:%02x", c->s->name, (unsigned long long)c->pos, c->to);
    }else if( flip_case(c) ){
      snprintf(want, sizeof(want), "%s:%llu:%02x", c->s->name, (unsigned long long)c->pos, c->to);
    }
    else snprintf(want, sizeof(want), "%s:cut:%llu", c->s->name, (unsigned long long)c->L);
    tracing = strcmp(want, trace) == 0;
    if( tracing ){
      char what[400];
      describe(what, sizeof(what), c);
      printf("  trace: %s\n", what);
    }
  }
  double t0 = now_sec(), t1;
  check_scan(c, &img, x, got, R_SCAN);
  t1 = now_sec(); reader_secs[R_SCAN] += t1 - t0; t0 = t1;
  check_check(c, &img, x);
  t1 = now_sec(); reader_secs[R_CHECK] += t1 - t0; t0 = t1;
  check_restore(c, &img, x, got);
  t1 = now_sec(); reader_secs[R_RESTORE] += t1 - t0; t0 = t1;
  check_rewind(c, &img, x, got);
  t1 = now_sec(); reader_secs[R_REWIND] += t1 - t0; t0 = t1;
  check_read_at(c, &img, x);
  t1 = now_sec(); reader_secs[R_READAT] += t1 - t0; t0 = t1;
  if( pscan_every && ++pscan_n % pscan_every == 0 ){
    logio_parallel_always(1);
    check_scan(c, &img, x, got, R_PSCAN);
    logio_parallel_always(0);
    t1 = now_sec(); reader_secs[R_PSCAN] += t1 - t0;
    pscan_cases++;
  }
  if( case_flags ) bad_cases[cur_shape][c->kind]++;
}

/* ------------------------------------------------------------ the corpus */

static int quick, full;      /* sizes: see the comment at the top */

/* near[L]: L is within NEAR bytes of a block boundary or a record's start or end. */
static unsigned char *near_map(const shape *s){
  unsigned char *near = xmalloc(s->size + 1);
  memset(near, 0, s->size + 1);
  for(uint64_t L = 0; L <= s->size; L++){
    if( L % BLK < NEAR || BLK - L % BLK < NEAR ) near[L] = 1;
  }
  for(int i = 0; i < s->nr; i++){
    uint64_t a = s->R[i].pos, b = s->R[i].pos + HDR + s->R[i].len;
    for(uint64_t L = a > NEAR ? a - NEAR : 0; L <= a + NEAR && L <= s->size; L++) near[L] = 1;
    for(uint64_t L = b > NEAR ? b - NEAR : 0; L <= b + NEAR && L <= s->size; L++) near[L] = 1;
  }
  return near;
}

static int want_cut(const shape *s, const unsigned char *near, uint64_t L){
  if( full ) return 1;
  if( quick && s->sampled ) return (near[L] && L % 3 == 0) || L % 197 == 0;
  if( quick ) return near[L] || L % 31 == 0;
  if( !s->sampled ) return 1;
  uint64_t last2 = s->size > 2 * BLK ? ((s->size - 1) / BLK - 1) * BLK : 0;
  return (L >= last2 && L % (uint64_t)s->cut_stride == 0) || near[L] || L % 97 == 0;
}

static void damage_shape(const shape *s){
  unsigned char *buf = xmalloc(s->size);
  memcpy(buf, s->bytes, s->size);
  expect x;
  x.must = xmalloc((size_t)s->n);
  x.same = xmalloc((size_t)s->n);
  unsigned char *got = xmalloc((size_t)s->n);
  mcase c;
  memset(&c, 0, sizeof(c));
  c.s = s;

  /* Flips: every header byte (four values), payload bytes spread over each record. */
  int nkinds = quick && !full ? 2 : 4;
  size_t npay = quick && !full ? 12 : 50;
  c.L = s->size;
  for(int ri = 0; ri < s->nr; ri++){
    const wrec *r = &s->R[ri];
    c.rec = ri;
    c.d = r->entry;
    for(int f = 0; f < (int)HDR; f++){
      uint64_t p = r->pos + (uint64_t)f;
      unsigned char from = buf[p], vals[4];
      vals[0] = (unsigned char)(from ^ 0xff);
      vals[1] = (unsigned char)(from + 1);
      vals[2] = (unsigned char)(from - 1);
      vals[3] = 0;
      for(int k = 0; k < nkinds; k++){
        int dup = vals[k] == from;
        for(int k2 = 0; k2 < k; k2++) if( vals[k2] == vals[k] ) dup = 1;
        if( dup ) continue;
        c.kind = M_XOR + k;
        c.pos = p;
        c.field = f;
        c.from = from;
        c.to = vals[k];
        buf[p] = vals[k];
        run_case(&c, buf, &x, got);
        buf[p] = from;
      }
    }
    size_t np = r->len < npay ? r->len : npay;
    for(size_t j = 0; j < np; j++){
      size_t at = r->len <= npay ? j : j * (r->len - 1) / (npay - 1);
      uint64_t p = r->pos + HDR + at;
      c.kind = M_PAYLOAD;
      c.pos = p;
      c.field = -1;
      c.from = buf[p];
      c.to = (unsigned char)(buf[p] ^ 0xff);
      buf[p] = c.to;
      run_case(&c, buf, &x, got);
      buf[p] = c.from;
    }
    /* The whole header (where nothing complete follows in a later block, it may be taken for a torn append). */
    for(int k = 0; k < 4; k++){
      unsigned char save[HDR];
      memcpy(save, buf + r->pos, HDR);
      /* k == 3: the header of another record (the next one, or the one before): plausible, and wrong. */
      const wrec *o = ri + 1 < s->nr ? &s->R[ri + 1] : ri > 0 ? &s->R[ri - 1] : NULL;
      if( k == 3 && !o ) continue;
      for(int b = 0; b < (int)HDR; b++){
        buf[r->pos + b] = k == 0 ? 0 : k == 1 ? 0xff : k == 2 ? (unsigned char)(r->pos * 131 + (uint64_t)b * 77 + 5)
                        : s->bytes[o->pos + b];
      }
      c.kind = M_WIPE0 + k;
      c.pos = r->pos;
      c.field = F_HEADER;
      c.from = save[0];
      c.to = buf[r->pos];
      run_case(&c, buf, &x, got);
      memcpy(buf + r->pos, save, HDR);
    }
  }

  /* Cuts. */
  unsigned char *near = near_map(s);
  memset(&c, 0, sizeof(c));
  c.s = s;
  c.kind = M_TRUNC;
  for(uint64_t L = 0; L < s->size; L++){
    if( !want_cut(s, near, L) ) continue;
    c.L = L;
    run_case(&c, s->bytes, &x, got);
  }
  free(near);
  free(buf);
  free(x.must);
  free(x.same);
  free(got);
}

/* The undamaged log reads back exactly, by every reader. */
static int baseline_ok(const shape *s){
  expect x;
  x.must = xmalloc((size_t)s->n);
  x.same = xmalloc((size_t)s->n);
  unsigned char *got = xmalloc((size_t)s->n);
  mcase c;
  memset(&c, 0, sizeof(c));
  c.s = s;
  c.kind = M_NONE;
  c.L = s->size;
  long before = total_violations();
  run_case(&c, s->bytes, &x, got);
  free(x.must);
  free(x.same);
  free(got);
  return total_violations() == before;
}

int main(void){
  const char *mode = getenv("STATEIO_DAMAGE");
  full = mode && strcmp(mode, "full") == 0;
  quick = !full && (UNDER_ASAN || getenv("STATEIO_SMALL") || (mode && strcmp(mode, "quick") == 0));
  trace = getenv("STATEIO_DAMAGE_TRACE");
  const char *show = getenv("STATEIO_DAMAGE_SHOW");
  if( show && atoi(show) >= 0 ) show_max = atoi(show);
  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof(tmpdir), "%s/damage_test.XXXXXX", t && *t ? t : "/tmp");
  if( !mkdtemp(tmpdir) ){ perror("mkdtemp"); return 2; }
  printf("damage: sizes %s\n", full ? "full (STATEIO_DAMAGE=full)"
         : quick ? "quick (ASan, STATEIO_SMALL or STATEIO_DAMAGE=quick)" : "default");
  pscan_every = UNDER_ASAN ? 4 : 1;

  shape S[NSHAPE];
  memset(S, 0, sizeof(S));
  int ns = 0;
  build_plain(&S[ns++]);
  build_whole(&S[ns++], 0);
  build_whole(&S[ns++], 1);
  build_cross(&S[ns++], 0);
  build_cross(&S[ns++], 1);
  build_many(&S[ns++], 0);
  build_many(&S[ns++], 1);

  double t0 = now_sec();
  long total_cases = 0;
  for(int i = 0; i < ns; i++){
    shape *s = &S[i];
    int wrote = write_shape(s) == 0;
    CHECK_MSG(wrote, "%s: the writer wrote the log the oracle expects", s->name);
    if( !wrote ) continue;
    CHECK_MSG(layout_ok(s), "%s: record headers as computed", s->name);
    int valid = 0;
    for(int k = 0; k < s->ninner; k++) valid += valid_full_at(s->bytes, s->size, s->inner[k]);
    int multi = 0;
    for(int r = 0; r < s->nr; r++) multi += s->R[r].type == LOGIO_FIRST;
    printf("damage: %-10s %7llu bytes, %2d entries, %2d records (%d entries across blocks),"
           " %4d inner entries (%d valid FULL records where they lie): %s\n",
           s->name, (unsigned long long)s->size, s->n, s->nr, multi, s->ninner, valid, s->what);
    if( s->ninner > 0 ){
      CHECK_MSG(valid >= 5, "%s: the data holds valid records of inner logs (%d)", s->name, valid);
    }
    cur_shape = i;
    CHECK_MSG(baseline_ok(s), "%s: the undamaged log reads back exactly (scan, check, restore, updates, rewind, read_at)", s->name);
    double ts = now_sec();
    damage_shape(s);
    long nc = 0;
    for(int k = 0; k < M_NONE; k++) nc += cases[i][k];
    total_cases += nc;
    printf("damage: %-10s %6ld cases: ", s->name, nc);
    for(int k = 0; k < M_NONE; k++) printf("%s %ld%s", mut_name[k], cases[i][k], k + 1 < M_NONE ? ", " : "");
    printf(" (%.1f s)\n", now_sec() - ts);
  }
  long per_kind[NMUT] = {0}, bad_kind[NMUT] = {0};
  for(int i = 0; i < ns; i++){
    for(int k = 0; k < NMUT; k++){ per_kind[k] += cases[i][k]; bad_kind[k] += bad_cases[i][k]; }
  }
  printf("damage: %ld mutated files: ", total_cases);
  for(int k = 0; k < M_NONE; k++) printf("%s %ld%s", mut_name[k], per_kind[k], k + 1 < M_NONE ? ", " : "");
  printf("; %ld entry checks; restore refused naming the damaged entry %ld times (%.1f s)\n",
         entries_checked, restore_refused, now_sec() - t0);
  printf("damage: destroyed headers with nothing complete after them in a later block: %ld, the scan took %ld"
         " of them for a torn append\n", wipes_ambiguous, wipes_torn);
  printf("damage: mutated files with a violation:");
  for(int k = 0; k < M_NONE; k++) printf(" %s %ld of %ld%s", mut_name[k], bad_kind[k], per_kind[k], k + 1 < M_NONE ? "," : "");
  printf("\n");
  for(int i = 0; i < ns; i++){
    long b = 0, t = 0;
    for(int k = 0; k < M_NONE; k++){ b += bad_cases[i][k]; t += cases[i][k]; }
    printf("damage:   %-10s %ld of %ld\n", S[i].name, b, t);
  }
  printf("damage: seconds in each reader:");
  for(int r = 0; r < NREADER; r++) if( r != R_UPDATES ) printf(" %s %.2f", reader_name[r], reader_secs[r]);
  printf(" (restore includes the update reader)\n");
  printf("damage: the parallel scan read %ld of the mutated files (one in %ld)\n", pscan_cases, pscan_every);

  for(int v = 0; v < NVIOL; v++){
    char by[600];
    size_t o = 0;
    by[0] = 0;
    if( v_cases[v] ){
      o += (size_t)snprintf(by + o, sizeof(by) - o, " [readers:");
      for(int r = 0; r < NREADER; r++){
        if( v_count[v][r] ) o += (size_t)snprintf(by + o, sizeof(by) - o, " %s %ld", reader_name[r], v_count[v][r]);
      }
      o += (size_t)snprintf(by + o, sizeof(by) - o, "; cases by mutation:");
      for(int k = 0; k < NMUT; k++){
        if( v_cases_mut[v][k] ) o += (size_t)snprintf(by + o, sizeof(by) - o, " %s %ld", mut_name[k], v_cases_mut[v][k]);
      }
      o += (size_t)snprintf(by + o, sizeof(by) - o, "; by log:");
      for(int i = 0; i < ns; i++){
        if( v_cases_shape[v][i] ) o += (size_t)snprintf(by + o, sizeof(by) - o, " %s %ld", S[i].name, v_cases_shape[v][i]);
      }
      snprintf(by + o, sizeof(by) - o, "]");
    }
    CHECK_MSG(v_cases[v] == 0, "damage: %s: %s: %ld cases wrong%s", viol_name[v], viol_what[v], v_cases[v], by);
  }

  for(int i = 0; i < ns; i++){
    for(int k = 0; k < S[i].n; k++) free(S[i].W[k].data);
    free(S[i].W);
    free(S[i].R);
    free(S[i].bytes);
    free(S[i].inner);
  }
  rmdir(tmpdir);
  return test_report();
}
