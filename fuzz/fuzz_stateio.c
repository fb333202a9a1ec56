/* SPDX-License-Identifier: MIT */
/*
** fuzz_stateio.c - libFuzzer target: logs built from the input, damaged,
** and read by every reader against what was written.
**
** Two modes, chosen by the input's first byte:
**
**  - Structured (first byte % 4 != 3): the bytes are a list of operations
**    (updates and snapshots of generated data, of data copied from the
**    input, of data that holds whole logs, batches, reopens) and then a list
**    of mutations (XOR, set or overwrite bytes; truncate), each aimed at an
**    absolute offset, a record header, a record payload or the end. The
**    target writes the log with the library's writer into a memfd,
**    remembers every entry written (offset, end, kind, epoch field, data),
**    applies the mutations, and checks, with the scan (skip mode, and its
**    prefix up to the first error for strict mode), stateio_check, restore
**    and the update reader, the rewind walk (8 steps back from the end, and
**    a rewind to the end of up to 8 intact entries spread over the log) and
**    logio_read_entry_at (every damaged entry, up to 8 intact ones spread
**    over the log and a few others: each look costs a block or more, so
**    every entry would cost O(entries x block) an input):
**      invented     nothing returned that was never written (at that offset,
**                   with that data), no damaged entry returned as intact,
**                   no state (epoch, snapshot) that was never written;
**      older epoch  restore never gives an older epoch as the current one;
**      lost         every complete entry whose blocks no mutation touched
**                   is read (scan, rewind walk, read_at; the update reader
**                   for the current epoch's updates);
**      unreported   every changed byte of a complete entry is covered by a
**                   damaged region of the scan and a problem of the check;
**      taken torn   the torn tail never covers a complete entry;
**      strict       the scan's results before its first error are every
**                   entry before the first damaged one;
**      torn error   with no complete entry damaged (a cut only), there is no
**                   error at all and restore gives the state after the last
**                   complete entry;
**      restore      restore fails only when a complete entry is damaged,
**                   naming the offset of one, and not when the last entry
**                   and the current snapshot lie in blocks no mutation
**                   touched;
**      same block   one changed byte in a type, length or offset field (its
**                   checksum confirms the field): the entries after that
**                   record in its block are read.
**    A failed check aborts (libFuzzer keeps the input), unless
**    STATEIO_FUZZ_COUNT is set: then each class is counted and the counts
**    are printed every 2048 inputs and at exit ("fuzz-count: ..."), and
**    only the class named by STATEIO_FUZZ_ONLY (e.g. "lost") aborts.
**    A record's damage that may claim any length (a changed type, length or
**    offset byte and another changed byte in the same record) may be taken
**    for a torn append when nothing complete follows in a later block: the
**    damage after it need not be reported, and restore may give the state
**    before it (a log without a commit file cannot tell that damage from
**    an append cut short; with one, the last done commit tells).
**  - Raw (first byte % 4 == 3): the rest is the log image, read by every
**    reader for crash-freedom and the structural checks that hold for any
**    bytes: results inside the image, in file order, not overlapping, an
**    entry's data is its records' payloads, every reader ends (and stays
**    ended), restore's fields agree, a log with no problem restores with
**    no error.
**  In both modes the scan is read once more through prefetch.c's verified
**  record chains (stateio_scan_parallel, made to act on small images by
**  logio_parallel_always) and must return exactly what the plain scan
**  returns: statuses, offsets, data and torn tail.
**
** STATEIO_FUZZ_WRITE_LOG=PATH (with one input): write the log the input
** builds, mutated, to PATH (for seeds of the raw mode). STATEIO_FUZZ_TRACE:
** print the entries written and the bytes changed.
**
** Build: make build/fuzz_stateio (clang -fsanitize=fuzzer,address,undefined).
** Run:   make fuzz (FUZZ_SECONDS) or sh test/fuzz-short.sh; seeds from
**        fuzz/make-seeds.py.
*/
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>

#include "stateio.h"
#include "logio.h"
#include "../test/layout.h"

#define BLK ((uint64_t)LOGIO_BLOCK)
#define HDR ((uint64_t)LOGIO_HEADER)
#define SHDR STATEIO_ENTRY_HEADER

#define MAX_LOG   (3 * BLK + 2000)   /* structured logs stay below this size */
#define MAX_OPS   48
#define MAX_MUT   8

#define ASSERT(c) do{ if( !(c) ){ \
  fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); abort(); } }while(0)

static void put64(unsigned char *p, uint64_t v){
  for(int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p){
  uint64_t v = 0;
  for(int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static stateio_image mem_image(const unsigned char *p, uint64_t n){
  stateio_image img;
  memset(&img, 0, sizeof(img));
  img.fd = -1;
  img.tail = p;
  img.tail_len = (size_t)n;
  return img;
}

/* =================================================================== raw mode */

/*
** The payload of the entry e as the image holds it: every record but the
** last fills its block, so the payload is the bytes after each block's
** 15-byte header.
*/
static void check_payload(const unsigned char *img, const logio_entry *e){
  uint64_t pos = e->offset;
  size_t done = 0;
  while( done < e->len ){
    ASSERT(pos + HDR < e->end);
    uint64_t room = BLK - pos % BLK - HDR;
    size_t take = e->len - done < room ? e->len - done : (size_t)room;
    ASSERT(memcmp(e->data + done, img + pos + HDR, take) == 0);
    done += take;
    pos += HDR + take;
  }
  ASSERT(pos == e->end);
}

typedef struct check_state { uint64_t size, prev; int n; } check_state;

static int check_cb(void *arg, uint64_t offset, uint64_t length, const char *problem){
  check_state *c = arg;
  ASSERT(problem != NULL && problem[0] != 0);
  ASSERT(length > 0 && offset + length <= c->size);
  ASSERT(offset >= c->prev);
  c->prev = offset;
  c->n++;
  return 0;
}

/*
** What the one forward scan returns, as one hash: every status, offset,
** end, kind, epoch, length and data byte, and the torn tail at the end.
*/
static uint64_t scan_digest(const stateio_image *img, int parallel){
  XXH64_state_t *h = XXH64_createState();
  ASSERT(h != NULL);
  XXH64_reset(h, 0);
  stateio_scan *sc;
  ASSERT(stateio_scan_open(&sc, img, 0, 0) == STATEIO_OK);
  if( parallel ){
    logio_parallel_always(1);
    ASSERT(stateio_scan_parallel(sc) == STATEIO_OK);
    logio_parallel_always(0);
  }
  for(uint64_t steps = 0; steps <= stateio_image_size(img) + 2; steps++){
    stateio_entry e;
    int rc = stateio_scan_next(sc, &e);
    uint64_t f[6] = { (uint64_t)rc, e.offset, e.end, (uint64_t)e.kind, e.epoch, e.len };
    XXH64_update(h, f, sizeof(f));
    if( e.data && e.len ) XXH64_update(h, e.data, e.len);
    if( rc == STATEIO_DONE ){
      uint64_t tl, to = stateio_scan_torn(sc, &tl);
      uint64_t t[2] = { to, tl };
      XXH64_update(h, t, sizeof(t));
      break;
    }
  }
  stateio_scan_close(sc);
  uint64_t d = XXH64_digest(h);
  XXH64_freeState(h);
  return d;
}

/*
** The scan through prefetch.c (a reader that takes the records of a
** verified chain as valid without hashing them again) returns exactly
** what the plain scan returns, whatever the bytes.
*/
static void same_in_parallel(const stateio_image *img){
  ASSERT(scan_digest(img, 1) == scan_digest(img, 0));
}

static void raw_mode(const unsigned char *data, size_t size){
  stateio_image img = mem_image(data, size);

  /* The forward reader from 0: bounds, order, payloads, termination. */
  uint64_t offs[64], ends[64];
  int nent = 0, damaged = 0;
  logio_reader *r;
  ASSERT(logio_reader_open(&r, &img, 0) == STATEIO_OK);
  uint64_t prev = 0;
  for(uint64_t steps = 0; ; steps++){
    ASSERT(steps <= size + 2);
    logio_entry e;
    int rc = logio_reader_next(r, &e);
    if( rc == STATEIO_DONE ) break;
    ASSERT(rc == STATEIO_OK || rc == STATEIO_CORRUPT_LOG || rc == STATEIO_TORN);
    ASSERT(e.offset >= prev);
    if( rc == STATEIO_OK ){
      ASSERT(e.end > e.offset && e.end <= size && e.len > 0 && e.data != NULL);
      check_payload(data, &e);
      if( nent < 64 ){ offs[nent] = e.offset; ends[nent] = e.end; nent++; }
      prev = e.end;
      continue;
    }
    damaged = 1;
    ASSERT(e.len > 0 && e.data == NULL && e.offset + e.len <= size);
    ASSERT(strlen(logio_reader_problem(r)) > 0);
    prev = e.offset + e.len;
    if( rc == STATEIO_TORN ) ASSERT(e.offset + e.len == size);
  }
  logio_entry e;
  ASSERT(logio_reader_next(r, &e) == STATEIO_DONE);    /* and stays done */
  logio_reader_close(r);

  /* Each entry found is found again where it starts. */
  for(int i = 0; i < nent; i++){
    ASSERT(logio_read_entry_at(&img, offs[i], &e) == STATEIO_OK);
    ASSERT(e.offset == offs[i] && e.end == ends[i]);
    check_payload(data, &e);
    stateio_free((void*)e.data);
  }

  /* A short rewind walk: entries inside the limit, going back. */
  uint64_t limit = size;
  for(int step = 0; step < 8; step++){
    uint64_t s, en;
    int rc = logio_rewind(&img, limit, &s, &en);
    ASSERT(rc == STATEIO_OK || rc == STATEIO_DONE);
    if( rc == STATEIO_DONE ) break;
    ASSERT(s < en && en <= limit);
    limit = s;
  }

  /* The scan: in order, inside the image, ends. */
  stateio_scan *sc;
  ASSERT(stateio_scan_open(&sc, &img, 0, 0) == STATEIO_OK);
  prev = 0;
  for(uint64_t steps = 0; ; steps++){
    ASSERT(steps <= size + 2);
    stateio_entry se;
    int rc = stateio_scan_next(sc, &se);
    if( rc == STATEIO_DONE ){
      uint64_t tl, to = stateio_scan_torn(sc, &tl);
      ASSERT(tl == 0 || (to >= prev && to + tl == size));
      break;
    }
    ASSERT(rc == STATEIO_OK || rc == STATEIO_CORRUPT_LOG || rc == STATEIO_CORRUPT_ENTRY);
    ASSERT(se.offset >= prev && se.end > se.offset && se.end <= size);
    ASSERT(rc == STATEIO_OK || (se.problem && se.problem[0]));
    prev = se.end;
  }
  stateio_scan_close(sc);
  same_in_parallel(&img);

  /* Restore and the update reader. */
  stateio_state st;
  int rrc = stateio_restore(&img, &st);
  ASSERT(rrc == STATEIO_OK || rrc == STATEIO_CORRUPT_ENTRY || rrc == STATEIO_CORRUPT_LOG || rrc == STATEIO_NOTLOG);
  if( size == 0 ) ASSERT(rrc == STATEIO_OK && st.epoch == 0 && !st.has_snapshot);
  if( rrc == STATEIO_NOTLOG ) ASSERT(nent == 0);
  if( rrc != STATEIO_OK && rrc != STATEIO_NOTLOG ) ASSERT(st.bad_offset < size);
  int update_errors = 0;
  if( rrc == STATEIO_OK ){
    ASSERT(st.log_end <= size && st.log_end + st.torn_len == size);
    if( st.has_snapshot ){
      ASSERT(st.epoch < st.snapshot_end && st.snapshot_end <= st.log_end);
      ASSERT(st.updates_start == st.snapshot_end);
      ASSERT(st.snapshot_end - st.epoch >= HDR + SHDR + st.snapshot_len);
      ASSERT(st.prev_epoch < st.epoch || st.epoch == 0);
      ASSERT(st.snapshot_len == 0 || st.snapshot != NULL);
    }else{
      ASSERT(st.epoch == 0 && st.snapshot_len == 0 && st.updates_start == 0);
    }
    stateio_updates *u;
    ASSERT(stateio_updates_open(&u, &img, &st) == STATEIO_OK);
    prev = st.updates_start;
    int64_t seq = -1;
    for(uint64_t steps = 0; ; steps++){
      ASSERT(steps <= size + 2);
      stateio_entry ue;
      int rc = stateio_updates_next(u, &ue);
      if( rc == STATEIO_DONE ) break;
      ASSERT(rc == STATEIO_OK || rc == STATEIO_CORRUPT_LOG || rc == STATEIO_CORRUPT_ENTRY);
      ASSERT(ue.offset >= prev && ue.offset < size);
      if( rc != STATEIO_OK ){
        update_errors++;
        if( rc == STATEIO_CORRUPT_LOG ) ASSERT(ue.len > 0 && ue.offset + ue.len <= size);
        prev = ue.offset;
        continue;
      }
      ASSERT(ue.offset + HDR + SHDR + ue.len <= ue.end && ue.end <= size);
      ASSERT(ue.len == 0 || ue.data != NULL);
      ASSERT(stateio_updates_seq(u) == ++seq);
      prev = ue.offset + 1;
    }
    stateio_entry ue;
    ASSERT(stateio_updates_next(u, &ue) == STATEIO_DONE);
    stateio_updates_close(u);
  }
  stateio_state_clear(&st);

  /* The check: problems in order; a log with none restores cleanly. */
  check_state cs = { size, 0, 0 };
  ASSERT(stateio_check(&img, check_cb, &cs) == STATEIO_OK);
  if( damaged ) ASSERT(cs.n > 0);
  if( cs.n == 0 && size > 0 ){
    ASSERT(rrc == STATEIO_OK);
    ASSERT(update_errors == 0);
  }
}

/* =================================================================== structured mode */

/* ------------------------------------------------------------ reading the input */

typedef struct input { const unsigned char *p; size_t n, i; } input;

static int more(const input *in){ return in->i < in->n; }
static unsigned next(input *in){ return in->i < in->n ? in->p[in->i++] : 0; }
static unsigned next16(input *in){ unsigned a = next(in); return a | (next(in) << 8); }

/* ------------------------------------------------------------ the oracle */

typedef struct went {
  int kind;
  uint64_t efield;
  unsigned char *data;
  size_t len;
  uint64_t start, end;
} went;

typedef struct wrec { uint64_t pos; size_t len; int entry; } wrec;

typedef struct oracle {
  went W[MAX_OPS];
  int n;
  wrec R[MAX_OPS * 8];
  int nr;
  uint64_t off, epoch;         /* the log's size and epoch as the writer goes */
} oracle;





/*
** Small state logs in e's data from x up to cap (see test/damage_test.c):
** forge=0 as written at offset 0 of a file of their own, forge=1 encoded as
** the writer would append them where their bytes land, continuing the
** outer log's epochs. Returns the data offset after them.
*/
static size_t put_logs(went *e, size_t x, size_t cap, int nlogs, int forge, input *in){
  uint64_t E = e->kind == STATEIO_SNAPSHOT ? e->start : e->efield;
  unsigned shape[64];
  if( nlogs > 64 ) nlogs = 64;
  for(int l = 0; l < nlogs; l++) shape[l] = next(in);  /* one byte a log, used or not */
  for(int l = 0; l < nlogs; l++){
    unsigned b = shape[l];
    int m = 2 + (int)(b % 5);
    uint64_t io = 0, iE = forge ? E : 0;
    for(int k = 0; k < m; k++){
      size_t dl = (size_t)((b >> 3) * 7 + k * 13) % 64;
      int kind = k == m / 2 ? STATEIO_SNAPSHOT : STATEIO_UPDATE;
      uint64_t q = forge ? layout_landing(e->start, x) : io;
      uint64_t sz = logio_encoded_size(q, SHDR + dl);
      if( x + sz > cap ) return x;
      unsigned char head[SHDR], d[64];
      head[0] = (unsigned char)kind;
      put64(head + 1, iE);
      layout_gen(d, dl, b + (unsigned)k);
      uint64_t st;
      logio_encode(q, head, SHDR, d, dl, e->data + x, &st);
      if( kind == STATEIO_SNAPSHOT ) iE = st;
      x += (size_t)sz;
      io += sz;
    }
    if( forge ) E = iE;
  }
  return x;
}

static void list_records(oracle *o){
  o->nr = 0;
  for(int i = 0; i < o->n; i++){
    uint64_t pos = o->W[i].start, left = SHDR + o->W[i].len;
    while( left > 0 && o->nr < MAX_OPS * 8 ){
      uint64_t room = BLK - pos % BLK - HDR;
      uint64_t take = left < room ? left : room;
      wrec *r = &o->R[o->nr++];
      r->pos = pos;
      r->len = (size_t)take;
      r->entry = i;
      left -= take;
      pos += HDR + take;
    }
  }
}

static int memfd = -1;

/*
** The data of the entries, the log as written and as mutated: one buffer
** each for every input (no allocation per input; an entry's data takes at
** most what the log has room for, so twice the largest log is enough).
*/
static unsigned char arena[2 * MAX_LOG];
static unsigned char orig_bytes[MAX_LOG], mutated_bytes[MAX_LOG];
static oracle the_oracle;

/*
** Decode the operations and write them with the writer into the memfd.
** Fills the oracle; returns the log's bytes (malloc'd) and *size.
*/
static unsigned char *build(input *in, oracle *o, uint64_t *size){
  memset(o, 0, sizeof(*o));
  if( memfd < 0 ) memfd = memfd_create("fuzz_stateio", 0);
  ASSERT(memfd >= 0);
  ASSERT(ftruncate(memfd, 0) == 0);
  stateio_writer *w;
  ASSERT(stateio_writer_open_fd(&w, memfd, 0, 0, 0) == STATEIO_OK);
  int in_batch = 0;
  size_t arena_used = 0;
  while( more(in) && o->n < MAX_OPS ){
    unsigned op = next(in);
    if( op % 11 == 10 ) break;                      /* the mutations follow */
    if( op % 11 == 8 ){                             /* reopen */
      if( in_batch ){ ASSERT(stateio_writer_commit(w) == STATEIO_OK); in_batch = 0; }
      ASSERT(stateio_writer_close(w) == STATEIO_OK);
      ASSERT(stateio_writer_open_fd(&w, memfd, 0, 0, 0) == STATEIO_OK);
      continue;
    }
    if( op % 11 == 9 ){                             /* begin or commit a batch */
      if( in_batch ) ASSERT(stateio_writer_commit(w) == STATEIO_OK);
      else ASSERT(stateio_writer_begin(w) == STATEIO_OK);
      in_batch = !in_batch;
      continue;
    }
    unsigned a = next(in);
    int kind = (op % 11) % 2 ? STATEIO_SNAPSHOT : STATEIO_UPDATE;
    size_t cap;
    switch( op % 11 ){
      case 0: case 1: cap = a % 48; break;                  /* small */
      case 2: cap = (size_t)a * 40; break;                  /* up to ~10 KB */
      case 3: cap = (size_t)a * 130; break;                 /* up to ~33 KB */
      case 4: case 5: cap = 200 + (size_t)a * 40; break;    /* logs */
      case 6: cap = (size_t)(a % 40); break;                /* bytes from the input */
      default: cap = 40000 + (size_t)a * 240; break;        /* logs across blocks */
    }
    went *e = &o->W[o->n];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->start = layout_aligned(o->off);
    e->efield = o->epoch;
    if( layout_entry_end(e->start, SHDR + cap) > MAX_LOG ) continue;
    e->data = arena + arena_used;
    size_t len = cap;
    switch( op % 11 ){
      case 4: case 5:
        len = put_logs(e, 0, cap, 1 + (int)(a % 4), (op >> 4) & 1, in);
        break;
      case 7: {
        /* Generated bytes, then up to 40 logs: they cross a block boundary. */
        size_t fill = (size_t)a * 131 % 32000;
        layout_gen(e->data, fill, op);
        len = put_logs(e, fill, cap, 1 + (int)(a % 40), (op >> 4) & 1, in);
        break;
      }
      case 6:
        for(size_t j = 0; j < cap; j++) e->data[j] = (unsigned char)next(in);
        break;
      default:
        layout_gen(e->data, cap, op + a);
    }
    e->len = len;
    arena_used += len;
    e->end = layout_entry_end(e->start, SHDR + len);
    o->off = e->end;
    if( kind == STATEIO_SNAPSHOT ) o->epoch = e->start;
    o->n++;
    int rc = kind == STATEIO_SNAPSHOT ? stateio_snapshot(w, e->data, len)
                                      : stateio_update(w, e->data, len);
    ASSERT(rc == STATEIO_OK);
  }
  if( in_batch ) ASSERT(stateio_writer_commit(w) == STATEIO_OK);
  ASSERT(stateio_writer_close(w) == STATEIO_OK);
  *size = (uint64_t)lseek(memfd, 0, SEEK_END);
  ASSERT(*size == o->off);
  ASSERT(*size <= MAX_LOG);
  ASSERT(pread(memfd, orig_bytes, *size, 0) == (ssize_t)*size);
  list_records(o);
  return orig_bytes;
}

/* ------------------------------------------------------------ violations */

enum {
  V_INVENTED, V_EPOCH, V_LOST, V_UNREPORTED, V_TAKEN_TORN, V_STRICT, V_TORN_ERROR,
  V_RESTORE, V_SAME_BLOCK, NVIOL
};
static const char *const viol_name[NVIOL] = {
  "invented", "older-epoch", "lost", "unreported", "taken-torn", "strict",
  "torn-error", "restore", "same-block"
};
static long v_count[NVIOL];
static long inputs, structured_inputs;
static int count_mode = -1;
static const char *only;           /* STATEIO_FUZZ_ONLY: the class that still aborts */

static void print_counts(void){
  fprintf(stderr, "fuzz-count: %ld inputs (%ld structured):", inputs, structured_inputs);
  for(int v = 0; v < NVIOL; v++) fprintf(stderr, " %s %ld", viol_name[v], v_count[v]);
  fprintf(stderr, "\n");
}

static unsigned case_flags;

__attribute__((format(printf, 2, 3)))
static void viol(int cls, const char *fmt, ...){
  if( case_flags & (1u << cls) ) return;       /* once per input and class */
  case_flags |= 1u << cls;
  v_count[cls]++;
  if( count_mode && !(only && strcmp(only, viol_name[cls]) == 0) ) return;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "invariant failed: %s: ", viol_name[cls]);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();
}

/* ------------------------------------------------------------ what must hold */

typedef struct expect {
  unsigned char must[MAX_OPS];     /* complete, undamaged, in untouched blocks */
  unsigned char damaged[MAX_OPS];  /* holds a changed byte */
  unsigned char complete[MAX_OPS]; /* ends at or before the cut */
  unsigned char same[MAX_OPS];     /* after a confirmable damaged header field, same block */
  uint64_t first_hit[MAX_OPS];     /* lowest changed byte of each entry */
  int last, si;                    /* last complete entry, the current snapshot */
  uint64_t E, log_end, L;
  uint64_t torn_floor;             /* a torn tail may begin here, not before */
  unsigned char ambiguous[MAX_OPS];/* damage the reader cannot tell from a torn append */
  int any_damage;                  /* a complete entry is damaged */
  int cut_claims;                  /* an entry the cut cut short has changed bytes: as the
                                   ** file stands it may look complete, or damaged (its damage
                                   ** may be reported; the cut alone is never an error) */
  int first_damaged;               /* the first complete damaged entry, or -1 */
} expect;

static expect the_expect;

static int find_start(const oracle *o, uint64_t off){
  int lo = 0, hi = o->n - 1;
  while( lo <= hi ){
    int mid = (lo + hi) / 2;
    if( o->W[mid].start == off ) return mid;
    if( o->W[mid].start < off ) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}

static int touches(const went *e, uint64_t b){
  return e->start / BLK <= b && (e->end - 1) / BLK >= b;
}

static int covers(uint64_t off, uint64_t end, uint64_t p){ return off <= p && p < end; }

static int state_is(const went *w, const stateio_entry *e){
  if( e->offset != w->start || e->end != w->end || e->kind != w->kind ) return 0;
  if( e->epoch != w->efield || e->len != w->len ) return 0;
  return w->len == 0 || (e->data && memcmp(e->data, w->data, w->len) == 0);
}

static int payload_is(const went *w, const logio_entry *e){
  if( e->offset != w->start || e->end != w->end || e->len != SHDR + w->len || !e->data ) return 0;
  if( e->data[0] != w->kind || get64(e->data + 1) != w->efield ) return 0;
  return w->len == 0 || memcmp(e->data + SHDR, w->data, w->len) == 0;
}

/* Which entry, and which record, holds byte p (-1: padding). */
static int record_at(const oracle *o, uint64_t p){
  int lo = 0, hi = o->nr - 1;
  while( lo <= hi ){
    int mid = (lo + hi) / 2;
    if( p < o->R[mid].pos ) hi = mid - 1;
    else if( p >= o->R[mid].pos + HDR + o->R[mid].len ) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/*
** What the mutations did: hits[0..nh) are the changed bytes that lie in
** records, before the cut at L, in increasing order.
*/
static void compute_expect(const oracle *o, const uint64_t *hits, int nh, uint64_t L, expect *x){
  memset(x, 0, sizeof(*x));
  x->L = L;
  x->first_damaged = -1;
  for(int i = 0; i < o->n; i++){
    x->complete[i] = o->W[i].end <= L;
    x->first_hit[i] = UINT64_MAX;
  }
  for(int h = 0; h < nh; h++){
    int i = o->R[record_at(o, hits[h])].entry;
    x->damaged[i] = 1;
    if( hits[h] < x->first_hit[i] ) x->first_hit[i] = hits[h];
  }
  x->last = -1;
  for(int i = 0; i < o->n; i++){
    if( !x->complete[i] ) continue;
    x->last = i;
    int m = !x->damaged[i];
    for(int h = 0; h < nh && m; h++) if( touches(&o->W[i], hits[h] / BLK) ) m = 0;
    x->must[i] = (unsigned char)m;
    if( x->damaged[i] ){
      x->any_damage = 1;
      if( x->first_damaged < 0 ) x->first_damaged = i;
    }
  }
  x->log_end = x->last >= 0 ? o->W[x->last].end : 0;
  for(int h = 0; h < nh; h++){
    const wrec *rec = &o->R[record_at(o, hits[h])];
    if( !x->complete[rec->entry] ) x->cut_claims = 1;
  }

  /*
  ** A complete damaged entry is corruption, never a torn tail, when its
  ** records say they are complete: each record's header is intact, or one
  ** byte of its type, length or offset changed and nothing else in it (its
  ** checksum then confirms the field). A record with a changed type, length
  ** or offset field and another changed byte (in it, or in the header of
  ** the record after it) may claim any length: when
  ** nothing complete can be found after it (no complete entry starts in a
  ** later block), the reader may take it for a torn append.
  */
  x->torn_floor = x->log_end;
  for(int h = 0; h < nh; ){
    int r = record_at(o, hits[h]);
    const wrec *rec = &o->R[r];
    int i = rec->entry, count = 0, field_hits = 0;
    for(; h < nh && record_at(o, hits[h]) == r; h++){
      count++;
      if( hits[h] >= rec->pos + 4 && hits[h] < rec->pos + HDR ) field_hits++;
    }
    if( !x->complete[i] || field_hits == 0 ) continue;
    /*
    ** One changed field byte alone is proven by the checksum, unless what
    ** marks the record's true end is damaged too: the record that follows
    ** it, when its own header changed (then nothing shows where a repaired
    ** length would end, and a length past the end of the file looks like
    ** an append cut short).
    */
    if( count < 2 ){
      int next = r + 1 < o->nr ? r + 1 : -1;
      int next_hit = 0;
      for(int h2 = 0; next >= 0 && h2 < nh; h2++){
        if( hits[h2] >= o->R[next].pos && hits[h2] < o->R[next].pos + HDR ) next_hit = 1;
      }
      if( !next_hit ) continue;
    }
    x->ambiguous[i] = 1;
    int later = 0;
    for(int j = i + 1; j <= x->last; j++) if( o->W[j].start / BLK > rec->pos / BLK ) later = 1;
    /* The tail begins where the entry before it ended: block padding between them is the tail's. */
    uint64_t from = i > 0 ? o->W[i - 1].end : 0;
    if( !later && from < x->torn_floor ) x->torn_floor = from;
  }
  x->si = -1;
  if( x->last >= 0 ){
    const went *w = &o->W[x->last];
    x->E = w->kind == STATEIO_SNAPSHOT ? w->start : w->efield;
    for(int j = x->last; j >= 0; j--){
      if( o->W[j].kind == STATEIO_SNAPSHOT && o->W[j].start == x->E ){ x->si = j; break; }
    }
  }
  /* One changed byte in a type, length or offset field: the checksum confirms it. */
  if( nh == 1 ){
    const wrec *rec = &o->R[record_at(o, hits[0])];
    int d = rec->entry;
    uint64_t in = hits[0] - rec->pos;
    if( x->complete[d] && in >= 4 && in < HDR ){
      uint64_t rend = rec->pos + HDR + rec->len;
      for(int j = d + 1; j <= x->last; j++){
        if( o->W[j].start >= rend && o->W[j].start / BLK == hits[0] / BLK ) x->same[j] = 1;
      }
    }
  }
}

/* ------------------------------------------------------------ the readers */

static void structured_scan(const oracle *o, const stateio_image *img, const expect *x){
  unsigned char got[MAX_OPS] = {0};
  unsigned char reported[MAX_OPS] = {0};
  stateio_scan *sc;
  ASSERT(stateio_scan_open(&sc, img, 0, 0) == STATEIO_OK);
  uint64_t prev = 0;
  int strict_done = 0, strict_next = 0, strict_bad = 0;
  for(uint64_t steps = 0; ; steps++){
    ASSERT(steps <= x->L + 2);
    stateio_entry e;
    int rc = stateio_scan_next(sc, &e);
    if( rc == STATEIO_DONE ){
      uint64_t tl, to = stateio_scan_torn(sc, &tl);
      if( tl > 0 && to < x->torn_floor ){
        viol(V_TAKEN_TORN, "scan: torn tail %llu..%llu covers the complete entries before %llu",
             (unsigned long long)to, (unsigned long long)(to + tl), (unsigned long long)x->log_end);
      }
      ASSERT(tl == 0 || to + tl == x->L);
      break;
    }
    ASSERT(rc == STATEIO_OK || rc == STATEIO_CORRUPT_LOG || rc == STATEIO_CORRUPT_ENTRY);
    ASSERT(e.offset >= prev && e.end > e.offset && e.end <= x->L);
    prev = e.end;
    if( rc == STATEIO_OK ){
      int i = find_start(o, e.offset);
      if( i < 0 || !state_is(&o->W[i], &e) || x->damaged[i] ){
        viol(V_INVENTED, "scan: %s entry of epoch %llu, %zu bytes at %llu..%llu, never written%s",
             e.kind == STATEIO_SNAPSHOT ? "snapshot" : "update", (unsigned long long)e.epoch, e.len,
             (unsigned long long)e.offset, (unsigned long long)e.end,
             i >= 0 && x->damaged[i] ? " (a damaged entry)" : "");
        strict_bad = 1;
      }else{
        got[i] = 1;
        if( i == strict_next ) strict_next++; else strict_bad = 1;
      }
    }else if( rc == STATEIO_CORRUPT_ENTRY ){
      int i = find_start(o, e.offset);
      if( i < 0 || o->W[i].end != e.end ){
        viol(V_INVENTED, "scan: a bad entry (%s) at %llu..%llu, never written",
             e.problem ? e.problem : "?", (unsigned long long)e.offset, (unsigned long long)e.end);
      }
    }else{
      for(int i = 0; i < o->n; i++){
        if( x->damaged[i] && x->complete[i] && covers(e.offset, e.end, x->first_hit[i]) ) reported[i] = 1;
      }
      if( !x->any_damage && !x->cut_claims ){
        viol(V_TORN_ERROR, "scan: damaged region %llu..%llu (%s) where only a cut was made",
             (unsigned long long)e.offset, (unsigned long long)e.end, e.problem ? e.problem : "?");
      }
    }
    if( rc != STATEIO_OK && !strict_done ){
      strict_done = 1;
      if( x->any_damage && (strict_bad || strict_next != x->first_damaged) ){
        viol(V_STRICT, "scan: %d entries before the first error at %llu, want the %d before the first damaged one",
             strict_next, (unsigned long long)e.offset, x->first_damaged);
      }else if( x->any_damage && (rc != STATEIO_CORRUPT_LOG || !covers(e.offset, e.end, x->first_hit[x->first_damaged])) ){
        viol(V_STRICT, "scan: the first error, %s at %llu..%llu, does not cover the damage at %llu",
             stateio_errstr(rc), (unsigned long long)e.offset, (unsigned long long)e.end,
             (unsigned long long)x->first_hit[x->first_damaged]);
      }
    }
  }
  stateio_scan_close(sc);
  /* Damage that may be taken for a torn append need not be an error. */
  int fd = x->first_damaged;
  int fd_torn = fd >= 0 && x->ambiguous[fd] && o->W[fd].start >= x->torn_floor;
  if( x->any_damage && !strict_done && (!fd_torn || strict_bad || strict_next != fd) ){
    viol(V_STRICT, "scan: no error at all, %d entries read, want the %d before the first damaged one", strict_next, fd);
  }
  for(int i = 0; i < o->n; i++){
    if( x->must[i] && !got[i] ){
      viol(V_LOST, "scan: entry %d at %llu..%llu not read", i,
           (unsigned long long)o->W[i].start, (unsigned long long)o->W[i].end);
    }
    if( x->same[i] && !got[i] ){
      viol(V_SAME_BLOCK, "scan: entry %d at %llu..%llu after a confirmable header damage not read", i,
           (unsigned long long)o->W[i].start, (unsigned long long)o->W[i].end);
    }
    if( x->damaged[i] && x->complete[i] && !reported[i]
        && o->W[i].start < x->torn_floor ){
      viol(V_UNREPORTED, "scan: the damage at %llu (entry %d) is in no damaged region",
           (unsigned long long)x->first_hit[i], i);
    }
  }
}

typedef struct probs { int n; uint64_t off[64], len[64]; const char *why[64]; } probs;

static int probs_cb(void *arg, uint64_t off, uint64_t len, const char *why){
  probs *g = arg;
  if( g->n < 64 ){ g->off[g->n] = off; g->len[g->n] = len; g->why[g->n] = why; }
  g->n++;
  return 0;
}

static void structured_check(const oracle *o, const stateio_image *img, const expect *x){
  probs g;
  g.n = 0;
  ASSERT(stateio_check(img, probs_cb, &g) == STATEIO_OK);
  unsigned char reported[MAX_OPS] = {0};
  for(int k = 0; k < g.n && k < 64; k++){
    int torn = g.why[k] && strcmp(g.why[k], "torn tail") == 0;
    if( torn ){
      if( g.off[k] < x->torn_floor ){
        viol(V_TAKEN_TORN, "check: torn tail %llu..%llu covers the complete entries before %llu",
             (unsigned long long)g.off[k], (unsigned long long)(g.off[k] + g.len[k]), (unsigned long long)x->log_end);
      }
      continue;
    }
    if( !x->any_damage && !x->cut_claims ){
      viol(V_TORN_ERROR, "check: %s at %llu..%llu where only a cut was made", g.why[k] ? g.why[k] : "?",
           (unsigned long long)g.off[k], (unsigned long long)(g.off[k] + g.len[k]));
    }
    for(int i = 0; i < o->n; i++){
      if( x->damaged[i] && x->complete[i] && covers(g.off[k], g.off[k] + g.len[k], x->first_hit[i]) ) reported[i] = 1;
    }
  }
  for(int i = 0; i < o->n && g.n <= 64; i++){
    if( x->damaged[i] && x->complete[i] && !reported[i]
        && o->W[i].start < x->torn_floor ){
      viol(V_UNREPORTED, "check: the damage at %llu (entry %d) is in no problem", (unsigned long long)x->first_hit[i], i);
    }
  }
}

static void structured_restore(const oracle *o, const stateio_image *img, const expect *x,
                               const uint64_t *hit_blocks, int nhb){
  stateio_state st;
  int rc = stateio_restore(img, &st);
  if( x->L >= 1 && x->L <= 4 ){
    ASSERT(rc == STATEIO_NOTLOG);
    stateio_state_clear(&st);
    return;
  }
  int intact_entries = 0;
  for(int i = 0; i <= x->last; i++) intact_entries += !x->damaged[i];
  if( rc == STATEIO_NOTLOG && intact_entries == 0 && o->n > 0 && x->damaged[0] ){
    /* No intact entry, and what begins the file no longer looks like a record. */
    stateio_state_clear(&st);
    return;
  }
  if( rc != STATEIO_OK ){
    if( !x->any_damage && !x->cut_claims ){
      viol(V_TORN_ERROR, "restore: %s (bad_offset %llu) where only a cut was made",
           stateio_errstr(rc), (unsigned long long)st.bad_offset);
    }else if( !x->any_damage ){
      /* The cut entry claims to be complete: its damage may be named. */
    }else{
      int named = 0;
      for(int i = 0; i < o->n; i++){
        if( x->damaged[i] && (x->complete[i] || x->cut_claims) && covers(o->W[i].start, o->W[i].end, st.bad_offset) ) named = 1;
      }
      if( !named || (rc != STATEIO_CORRUPT_LOG && rc != STATEIO_CORRUPT_ENTRY) ){
        viol(V_RESTORE, "restore: %s with bad_offset %llu, in no damaged entry",
             stateio_errstr(rc), (unsigned long long)st.bad_offset);
      }
      int intact = x->last >= 0;
      int ee = x->si >= 0 ? x->si : 0;
      for(int h = 0; h < nhb && intact; h++){
        if( touches(&o->W[x->last], hit_blocks[h]) || touches(&o->W[ee], hit_blocks[h]) ) intact = 0;
      }
      /* As without other damage: the entry the cut cut short, damaged, may look complete. */
      for(int i = 0; i < o->n && intact; i++){
        if( x->damaged[i] && !x->complete[i] && covers(o->W[i].start, o->W[i].end, st.bad_offset) ) intact = 0;
      }
      if( intact ){
        viol(V_RESTORE, "restore: %s (bad_offset %llu) although the last entry and the current snapshot are intact",
             stateio_errstr(rc), (unsigned long long)st.bad_offset);
      }
    }
    stateio_state_clear(&st);
    return;
  }
  if( st.log_end >= x->torn_floor && st.log_end < x->log_end && st.torn_len > 0 ){
    /*
    ** A record whose damage may claim any length was taken for a torn
    ** append (allowed without a commit file, see above): the log ends
    ** before it (at or after the first such record), and restore gives the
    ** state there. Nothing after it is read, so there is nothing more to
    ** check.
    */
    stateio_state_clear(&st);
    return;
  }
  if( st.epoch != x->E ){
    int written = st.epoch == 0 || (find_start(o, st.epoch) >= 0 && o->W[find_start(o, st.epoch)].kind == STATEIO_SNAPSHOT);
    viol(st.epoch < x->E && written ? V_EPOCH : V_INVENTED,
         "restore: epoch %llu as the current one; the last epoch written is %llu",
         (unsigned long long)st.epoch, (unsigned long long)x->E);
    stateio_state_clear(&st);
    return;
  }
  int ok;
  if( x->si >= 0 ){
    const went *w = &o->W[x->si];
    ok = st.has_snapshot && st.snapshot_len == w->len && st.prev_epoch == w->efield && !x->damaged[x->si]
      && st.snapshot_end == w->end && (w->len == 0 || memcmp(st.snapshot, w->data, w->len) == 0);
  }else{
    ok = !st.has_snapshot;
  }
  if( !ok ){
    viol(V_INVENTED, "restore: a snapshot of %zu bytes ending at %llu for epoch %llu, not the one written",
         st.snapshot_len, (unsigned long long)st.snapshot_end, (unsigned long long)st.epoch);
    stateio_state_clear(&st);
    return;
  }
  if( st.log_end < x->torn_floor ){
    viol(V_TAKEN_TORN, "restore: the log ends at %llu (torn tail %llu bytes), before the complete entries ending at %llu",
         (unsigned long long)st.log_end, (unsigned long long)st.torn_len, (unsigned long long)x->log_end);
  }
  if( !x->any_damage && !x->cut_claims && (st.log_end != x->log_end || st.torn_len != x->L - x->log_end) ){
    viol(V_TORN_ERROR, "restore: log_end %llu torn %llu, want %llu %llu", (unsigned long long)st.log_end,
         (unsigned long long)st.torn_len, (unsigned long long)x->log_end, (unsigned long long)(x->L - x->log_end));
  }

  /* The update reader. */
  unsigned char got[MAX_OPS] = {0};
  stateio_updates *u;
  ASSERT(stateio_updates_open(&u, img, &st) == STATEIO_OK);
  int j0 = x->si + 1;
  uint64_t prev = st.updates_start;
  for(uint64_t steps = 0; ; steps++){
    ASSERT(steps <= x->L + 2);
    stateio_entry e;
    rc = stateio_updates_next(u, &e);
    if( rc == STATEIO_DONE ) break;
    ASSERT(rc == STATEIO_OK || rc == STATEIO_CORRUPT_LOG || rc == STATEIO_CORRUPT_ENTRY);
    ASSERT(e.offset >= prev);
    prev = e.offset;
    if( rc == STATEIO_OK ){
      int i = find_start(o, e.offset);
      const went *w = i >= 0 ? &o->W[i] : NULL;
      if( !w || i < j0 || i > x->last || w->kind != STATEIO_UPDATE || w->efield != x->E || x->damaged[i]
          || e.end != w->end || e.len != w->len || (w->len && memcmp(e.data, w->data, w->len) != 0) ){
        viol(V_INVENTED, "updates: an update of %zu bytes at %llu..%llu, never written as an update of epoch %llu",
             e.len, (unsigned long long)e.offset, (unsigned long long)e.end, (unsigned long long)x->E);
      }else{
        got[i] = 1;
      }
    }else if( rc == STATEIO_CORRUPT_ENTRY ){
      if( find_start(o, e.offset) < 0 ){
        viol(V_INVENTED, "updates: a bad entry at %llu..%llu, never written",
             (unsigned long long)e.offset, (unsigned long long)e.end);
      }
    }else if( !x->any_damage && !x->cut_claims ){
      viol(V_TORN_ERROR, "updates: damaged region at %llu where only a cut was made", (unsigned long long)e.offset);
    }
  }
  stateio_updates_close(u);
  for(int i = j0; i <= x->last; i++){
    const went *w = &o->W[i];
    if( w->kind != STATEIO_UPDATE || w->efield != x->E ) continue;
    if( x->must[i] && !got[i] ){
      viol(V_LOST, "updates: the update %d at %llu..%llu not read", i,
           (unsigned long long)w->start, (unsigned long long)w->end);
    }
  }
  stateio_state_clear(&st);
}

/*
** Up to `most` entries that must be read, spread over the log, plus every
** damaged one: the entries rewind and read_at look at (each look costs a
** block or more, every one of them would cost O(entries x block)).
*/
static int pick_entries(const oracle *o, const expect *x, int most, int *pick){
  int nmust = 0, np = 0;
  for(int i = 0; i < o->n; i++) nmust += x->must[i];
  int stride = nmust > most ? (nmust + most - 1) / most : 1, k = 0;
  for(int i = 0; i < o->n; i++){
    if( x->must[i] ){
      if( k++ % stride == 0 ) pick[np++] = i;
    }else if( x->damaged[i] || (o->W[i].start < x->L && np < most + MAX_MUT) ){
      pick[np++] = i;
    }
  }
  return np;
}

static void structured_rewind(const oracle *o, const stateio_image *img, const expect *x){
  /* The walk back from the end, eight steps: written entries only, going back. */
  uint64_t limit = x->L;
  for(int step = 0; step < 8; step++){
    uint64_t s, e;
    int rc = logio_rewind(img, limit, &s, &e);
    ASSERT(rc == STATEIO_OK || rc == STATEIO_DONE);
    if( rc == STATEIO_DONE ){
      for(int i = 0; i < o->n; i++){
        if( x->must[i] && o->W[i].end <= limit ){
          viol(V_LOST, "rewind from %llu finds nothing; entry %d at %llu..%llu is intact",
               (unsigned long long)limit, i, (unsigned long long)o->W[i].start, (unsigned long long)o->W[i].end);
        }
      }
      break;
    }
    ASSERT(s < e && e <= limit);
    int i = find_start(o, s);
    if( i < 0 || o->W[i].end != e || x->damaged[i] ){
      viol(V_INVENTED, "rewind from %llu: an entry at %llu..%llu, never written%s", (unsigned long long)limit,
           (unsigned long long)s, (unsigned long long)e, i >= 0 && x->damaged[i] ? " (a damaged entry)" : "");
    }
    /* Nothing intact between what it found and the limit is passed over. */
    for(int j = 0; j < o->n; j++){
      if( x->must[j] && o->W[j].start >= e && o->W[j].end <= limit ){
        viol(V_LOST, "rewind from %llu: %llu..%llu found, entry %d at %llu..%llu passed over",
             (unsigned long long)limit, (unsigned long long)s, (unsigned long long)e, j,
             (unsigned long long)o->W[j].start, (unsigned long long)o->W[j].end);
      }
    }
    limit = s;
  }
  /* Rewinding to where an intact entry ends finds it: its blocks are untouched. */
  int pick[MAX_OPS * 2], np = pick_entries(o, x, 8, pick);
  for(int k = 0; k < np; k++){
    int i = pick[k];
    if( !x->must[i] ) continue;
    uint64_t s, e;
    int rc = logio_rewind(img, o->W[i].end, &s, &e);
    if( rc != STATEIO_OK || s != o->W[i].start || e != o->W[i].end ){
      viol(V_LOST, "rewind from %llu: %s %llu..%llu, not entry %d at %llu", (unsigned long long)o->W[i].end,
           stateio_errstr(rc), (unsigned long long)s, (unsigned long long)e, i, (unsigned long long)o->W[i].start);
    }
  }
}

static void structured_read_at(const oracle *o, const stateio_image *img, const expect *x){
  int pick[MAX_OPS * 2], np = pick_entries(o, x, 8, pick);
  for(int k = 0; k < np; k++){
    int i = pick[k];
    const went *w = &o->W[i];
    if( w->start >= x->L ) continue;
    logio_entry e;
    int rc = logio_read_entry_at(img, w->start, &e);
    if( rc == STATEIO_OK ){
      if( !payload_is(w, &e) || x->damaged[i] ){
        viol(V_INVENTED, "read_at %llu: %zu bytes ending at %llu, not the entry written%s",
             (unsigned long long)w->start, e.len, (unsigned long long)e.end,
             x->damaged[i] ? " (a damaged entry)" : "");
      }
      stateio_free((void*)e.data);
    }else{
      ASSERT(rc == STATEIO_CORRUPT_LOG || rc == STATEIO_TORN || rc == STATEIO_NOTFOUND || rc == STATEIO_CORRUPT_ENTRY);
      if( x->must[i] ){
        viol(V_LOST, "read_at %llu: %s", (unsigned long long)w->start, stateio_errstr(rc));
      }
    }
  }
}

/*
** Mutations, 5 bytes each: t, a (2 bytes), b, v. t & 3: 0 XOR v (0xff for
** 0), 1 set to v, 2 truncate, 3 set 1 + b%8 bytes to v. (t >> 2) & 3: where:
** 0 at a % size, 1 header byte b % 15 of record a % records, 2 payload byte
** b/256 of the way into record a % records, 3 a % 256 bytes before the end.
** Returns the size after the cut.
*/
static uint64_t mutate(input *in, const oracle *o, unsigned char *buf, uint64_t size,
                       uint64_t *changed, int *nchanged){
  uint64_t L = size;
  int nm = 0;
  *nchanged = 0;
  while( more(in) && nm < MAX_MUT && size > 0 ){
    unsigned t = next(in), a = next16(in), b = next(in), v = next(in);
    uint64_t pos;
    int where = (int)((t >> 2) & 3);
    if( (where == 1 || where == 2) && o->nr > 0 ){
      const wrec *r = &o->R[a % (unsigned)o->nr];
      if( where == 1 ){
        pos = r->pos + b % 15;
      }else{
        pos = r->pos + HDR + (uint64_t)b * r->len / 256;
      }
    }else if( where == 3 ){
      pos = size - 1 - a % (size < 256 ? size : 256);
    }else{
      pos = a % size;
    }
    switch( t & 3 ){
      case 0: buf[pos] ^= (unsigned char)(v ? v : 0xff); changed[(*nchanged)++] = pos; break;
      case 1: buf[pos] = (unsigned char)v; changed[(*nchanged)++] = pos; break;
      case 2: if( pos < L ) L = pos; break;
      default:
        for(unsigned k = 0; k <= b % 8 && pos + k < size; k++){
          buf[pos + k] = (unsigned char)v;
          changed[(*nchanged)++] = pos + k;
        }
    }
    nm++;
  }
  return L;
}

static void structured_mode(const unsigned char *data, size_t size){
  input in = { data, size, 1 };
  oracle *o = &the_oracle;
  uint64_t n;
  unsigned char *orig = build(&in, o, &n);

  /* The writer put every record where the oracle says (the readers check the rest). */
  for(int r = 0; r < o->nr; r++){
    const unsigned char *h = orig + o->R[r].pos;
    ASSERT(((size_t)h[5] | ((size_t)h[6] << 8)) == o->R[r].len);
    ASSERT(get64(h + 7) == o->R[r].pos - o->W[o->R[r].entry].start);
    ASSERT(h[4] >= LOGIO_FULL && h[4] <= LOGIO_LAST);
  }

  unsigned char *buf = mutated_bytes;
  memcpy(buf, orig, n);
  uint64_t changed[MAX_MUT * 8], hits[MAX_MUT * 8];
  int nchanged, nh = 0;
  uint64_t L = mutate(&in, o, buf, n, changed, &nchanged);
  /* The bytes changed, in order, once each: those in records before the cut. */
  for(int k = 0; k < nchanged; k++){
    uint64_t p = changed[k];
    int dup = 0;
    for(int j = 0; j < nh; j++) if( hits[j] == p ) dup = 1;
    if( dup || p >= L || orig[p] == buf[p] || record_at(o, p) < 0 ) continue;
    int j = nh++;
    while( j > 0 && hits[j - 1] > p ){ hits[j] = hits[j - 1]; j--; }
    hits[j] = p;
  }

  const char *dump = getenv("STATEIO_FUZZ_WRITE_LOG");
  if( dump ){
    FILE *f = fopen(dump, "wb");
    ASSERT(f != NULL);
    ASSERT(fwrite(buf, 1, (size_t)L, f) == (size_t)L || L == 0);
    fclose(f);
  }

  expect *x = &the_expect;
  compute_expect(o, hits, nh, L, x);
  if( getenv("STATEIO_FUZZ_TRACE") ){
    fprintf(stderr, "log of %llu bytes, cut at %llu; entries:\n", (unsigned long long)n, (unsigned long long)L);
    for(int i = 0; i < o->n; i++){
      fprintf(stderr, "  %d: %s epoch %llu, %zu bytes at %llu..%llu%s%s\n", i,
              o->W[i].kind == STATEIO_SNAPSHOT ? "snapshot" : "update", (unsigned long long)o->W[i].efield,
              o->W[i].len, (unsigned long long)o->W[i].start, (unsigned long long)o->W[i].end,
              x->damaged[i] ? " damaged" : "", x->must[i] ? " must" : "");
    }
    for(int h = 0; h < nh; h++){
      fprintf(stderr, "  byte %llu: %02x -> %02x\n", (unsigned long long)hits[h], orig[hits[h]], buf[hits[h]]);
    }
  }
  uint64_t hit_blocks[MAX_MUT * 8];
  int nhb = 0;
  for(int h = 0; h < nh; h++) hit_blocks[nhb++] = hits[h] / BLK;
  stateio_image img = mem_image(buf, L);
  structured_scan(o, &img, x);
  structured_check(o, &img, x);
  structured_restore(o, &img, x, hit_blocks, nhb);
  structured_rewind(o, &img, x);
  structured_read_at(o, &img, x);
  same_in_parallel(&img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size){
  if( count_mode < 0 ){
    count_mode = getenv("STATEIO_FUZZ_COUNT") != NULL;
    only = getenv("STATEIO_FUZZ_ONLY");
    if( count_mode ) atexit(print_counts);
  }
  inputs++;
  case_flags = 0;
  if( size == 0 ) return 0;
  if( data[0] % 4 == 3 ){
    raw_mode(data + 1, size - 1);
  }else{
    structured_inputs++;
    structured_mode(data, size);
  }
  if( count_mode && inputs % 2048 == 0 ) print_counts();
  return 0;
}
