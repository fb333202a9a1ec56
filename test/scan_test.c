/* SPDX-License-Identifier: MIT */
/*
** scan_test.c - the reader's damage rules, case by case: where it goes on
** after a damaged record (resync.c), what is a torn tail and what is
** corruption at the end of a log (with and without a commit file), what
** restore and a writer make of a damaged last entry, and the state log's
** rules in the one scan (the snapshot chain, updates of the wrong epoch).
**
** Logs are built in memory with logio_encode(), damaged with tiny helpers
** (flip a byte, set a byte, fix a checksum, cut), and read as memory
** images; the writer cases use a temporary file.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xxhash.h>

#include "stateio.h"
#include "logio.h"
#include "testhelp.h"

#define BLK    ((uint64_t)LOGIO_BLOCK)
#define HDR    LOGIO_HEADER
#define SUM    0             /* where a record header's checksum is */
#define OFF    7             /* ... and its offset field */
#define EHDR   STATEIO_ENTRY_HEADER

static char tmpdir[256];

/* ------------------------------------------------------------ logs in memory */

typedef struct went { uint64_t start, end; int kind; uint64_t efield; } went;

typedef struct mlog {
  unsigned char *p;
  size_t n, cap;
  went e[64];
  int ne;
  uint64_t epoch;
} mlog;

static void m_reset(mlog *m){ free(m->p); memset(m, 0, sizeof(*m)); }

/* Append a state entry [kind][epoch][data] as a writer would. */
static void m_add(mlog *m, int kind, const void *data, size_t len){
  unsigned char head[EHDR];
  head[0] = (unsigned char)kind;
  for(int i = 0; i < 8; i++) head[1 + i] = (unsigned char)(m->epoch >> (8 * i));
  uint64_t need = logio_encoded_size(m->n, EHDR + len);
  if( m->n + need > m->cap ){
    m->cap = (m->n + need) * 2;
    m->p = realloc(m->p, m->cap);
    if( !m->p ){ perror("realloc"); exit(2); }
  }
  uint64_t start;
  logio_encode(m->n, head, EHDR, data, len, m->p + m->n, &start);
  went *w = &m->e[m->ne++];
  w->start = start;
  w->end = m->n + need;
  w->kind = kind;
  w->efield = m->epoch;
  m->n += need;
  if( kind == STATEIO_SNAPSHOT ) m->epoch = start;
}

static void m_update(mlog *m, size_t len, int seed){
  unsigned char *d = malloc(len + 1);
  for(size_t i = 0; i < len; i++) d[i] = (unsigned char)(seed * 31 + i * 7);
  m_add(m, STATEIO_UPDATE, d, len);
  free(d);
}

static void m_snapshot(mlog *m, size_t len, int seed){
  unsigned char *d = malloc(len + 1);
  for(size_t i = 0; i < len; i++) d[i] = (unsigned char)(seed * 17 + i * 5);
  m_add(m, STATEIO_SNAPSHOT, d, len);
  free(d);
}

/* A whole small state log as bytes (to be an entry's data). */
static unsigned char *inner_log(size_t *n){
  mlog in = {0};
  m_update(&in, 20, 1);
  m_snapshot(&in, 30, 2);
  m_update(&in, 10, 3);
  m_update(&in, 5, 4);
  *n = in.n;
  return in.p;
}

static stateio_image mem(const unsigned char *p, size_t n){
  stateio_image img = { .fd = -1, .file_size = 0, .tail = p, .tail_len = n };
  return img;
}

/* Recompute the checksum of the record at p (its header says its length). */
static void fix_checksum(unsigned char *p){
  size_t len = (size_t)p[5] | ((size_t)p[6] << 8);
  uint32_t sum = (uint32_t)XXH64(p + 4, 11 + len, 0);
  for(int i = 0; i < 4; i++) p[i] = (unsigned char)(sum >> (8 * i));
}

/* Overwrite the 8-byte epoch field of the FULL entry at off (checksum fixed). */
static void set_epoch_field(unsigned char *log, uint64_t off, uint64_t v){
  for(int i = 0; i < 8; i++) log[off + HDR + 1 + i] = (unsigned char)(v >> (8 * i));
  fix_checksum(log + off);
}

/* ------------------------------------------------------------ what readers give */

/* The forward reader's reads: "entry S E", "corrupt S E", "torn S E", then "done". */
static char *events(const stateio_image *img, uint64_t start){
  sbuf b = {0};
  logio_reader *r;
  if( logio_reader_open(&r, img, start) ){ sb_printf(&b, "open failed\n"); return b.s; }
  for(int guard = 0; guard < 10000; guard++){
    logio_entry e;
    int rc = logio_reader_next(r, &e);
    if( rc == STATEIO_OK ) sb_printf(&b, "entry %llu %llu\n", (unsigned long long)e.offset, (unsigned long long)e.end);
    else if( rc == STATEIO_CORRUPT_LOG ) sb_printf(&b, "corrupt %llu %llu\n", (unsigned long long)e.offset,
                                               (unsigned long long)(e.offset + e.len));
    else if( rc == STATEIO_TORN ) sb_printf(&b, "torn %llu %llu\n", (unsigned long long)e.offset,
                                        (unsigned long long)(e.offset + e.len));
    else if( rc == STATEIO_DONE ){ sb_printf(&b, "done\n"); break; }
    else { sb_printf(&b, "error %s\n", stateio_errstr(rc)); break; }
  }
  logio_reader_close(r);
  return b.s ? b.s : strdup("");
}

static int expect_events(const char *ctx, const stateio_image *img, const char *want){
  char *got = events(img, 0);
  int ok = CHECK_MSG(strcmp(got, want) == 0, "%s: reader gives\n%s  want\n%s", ctx, got, want);
  free(got);
  return ok;
}

/* The common shape: entry 0 ending at end0, then one region ("corrupt" or "torn") [off, end), then the end. */
static int expect_one_then(const char *ctx, const stateio_image *img, uint64_t end0, const char *region,
                           uint64_t off, uint64_t end){
  char want[256];
  snprintf(want, sizeof(want), "entry 0 %llu\n%s %llu %llu\ndone\n", (unsigned long long)end0, region,
           (unsigned long long)off, (unsigned long long)end);
  return expect_events(ctx, img, want);
}

/* Restore and the update reader: "epoch E", "update S", "corrupt S E", "badentry S", "done"; or "error RC at OFF". */
static char *restored(const stateio_image *img){
  sbuf b = {0};
  stateio_state st;
  int rc = stateio_restore(img, &st);
  if( rc ){
    sb_printf(&b, "error %s at %llu\n", stateio_errstr(rc), (unsigned long long)st.bad_offset);
    return b.s;
  }
  sb_printf(&b, "epoch %llu end %llu torn %llu\n", (unsigned long long)st.epoch,
            (unsigned long long)st.log_end, (unsigned long long)st.torn_len);
  stateio_updates *u;
  if( stateio_updates_open(&u, img, &st) == STATEIO_OK ){
    for(int guard = 0; guard < 10000; guard++){
      stateio_entry e;
      rc = stateio_updates_next(u, &e);
      if( rc == STATEIO_OK ) sb_printf(&b, "update %llu\n", (unsigned long long)e.offset);
      else if( rc == STATEIO_CORRUPT_LOG ) sb_printf(&b, "corrupt %llu %llu\n", (unsigned long long)e.offset,
                                                 (unsigned long long)(e.offset + e.len));
      else if( rc == STATEIO_CORRUPT_ENTRY ) sb_printf(&b, "badentry %llu\n", (unsigned long long)e.offset);
      else if( rc == STATEIO_DONE ){ sb_printf(&b, "done\n"); break; }
      else { sb_printf(&b, "error %s\n", stateio_errstr(rc)); break; }
    }
    stateio_updates_close(u);
  }
  stateio_state_clear(&st);
  return b.s;
}

static int expect_restore(const char *ctx, const stateio_image *img, const char *want){
  char *got = restored(img);
  int ok = CHECK_MSG(strcmp(got, want) == 0, "%s: restore gives\n%s  want\n%s", ctx, got, want);
  free(got);
  return ok;
}

/* The problems stateio_check lists, as "OFF LEN problem" lines. */
static int check_cb(void *arg, uint64_t off, uint64_t len, const char *why){
  sb_printf(arg, "%llu %llu %s\n", (unsigned long long)off, (unsigned long long)len, why);
  return 0;
}
static char *problems(const stateio_image *img){
  sbuf b = {0};
  int rc = stateio_check(img, check_cb, &b);
  if( rc ) sb_printf(&b, "check failed: %s\n", stateio_errstr(rc));
  return b.s ? b.s : strdup("");
}

/*
** Every entry a reader of a prefix of the image finds, a reader of the
** whole finds too (a reader that sees more of a file never loses an entry
** another saw), for every prefix length. Returns the number of violations.
*/
static int prefixes_agree(const unsigned char *p, size_t n){
  char *whole = events(&(stateio_image){ .fd = -1, .tail = p, .tail_len = n }, 0);
  int bad = 0;
  for(size_t k = 0; k < n; k++){
    stateio_image img = mem(p, k);
    char *part = events(&img, 0);
    for(char *line = part; *line; ){
      char *nl = strchr(line, '\n');
      size_t len = nl ? (size_t)(nl - line) : strlen(line);
      if( len > 6 && strncmp(line, "entry ", 6) == 0 ){
        char want[64];
        snprintf(want, sizeof(want), "%.*s\n", (int)len, line);
        if( !strstr(whole, want) ){
          if( bad++ < 3 ) printf("  prefix %zu finds %.*s, the whole does not\n", k, (int)len, line);
        }
      }
      line = nl ? nl + 1 : line + len;
    }
    free(part);
  }
  free(whole);
  return bad;
}

/* ------------------------------------------------------------ 1. resync inside a block */

/*
** Three FULL entries in one block; every byte of the middle one's header,
** and payload bytes, damaged in turn. A damaged header byte: the reader
** reports exactly the middle entry and reads the other two (the damaged
** record's end is proven by its checksum with one field repaired, or by
** the checksum differing in one byte only). A damaged payload byte proves
** nothing about where the next record starts (its length may be damaged
** too): the rest of the block is one damaged region, and nothing in it is
** read (2026-12-01: it was read from the end the damaged header claimed).
*/
static void test_header_bytes(int embedded){
  mlog m = {0};
  size_t inner_n = 0;
  unsigned char *inner = inner_log(&inner_n);
  m_update(&m, 40, 1);
  if( embedded ){
    /* The middle entry's data is a whole log: its records must never come out. */
    m_add(&m, STATEIO_UPDATE, inner, inner_n);
  }else{
    m_update(&m, 60, 2);
  }
  m_update(&m, 30, 3);
  char want[256], want_payload[256], ctx[96];
  snprintf(want, sizeof(want), "entry 0 %llu\ncorrupt %llu %llu\nentry %llu %llu\ndone\n",
           (unsigned long long)m.e[0].end, (unsigned long long)m.e[1].start,
           (unsigned long long)m.e[1].end, (unsigned long long)m.e[2].start,
           (unsigned long long)m.e[2].end);
  snprintf(want_payload, sizeof(want_payload), "entry 0 %llu\ncorrupt %llu %llu\ndone\n",
           (unsigned long long)m.e[0].end, (unsigned long long)m.e[1].start, (unsigned long long)m.n);
  int bad = 0, cases = 0, bad_prefix = 0;
  static const unsigned char xors[] = { 0xff, 0x01, 0x80 };
  for(uint64_t i = 0; i < HDR + 2; i++){
    uint64_t at = m.e[1].start + (i < HDR ? i : HDR + 3 + (i - HDR) * 11);
    for(size_t x = 0; x < sizeof(xors); x++){
      m.p[at] ^= xors[x];
      stateio_image img = mem(m.p, m.n);
      snprintf(ctx, sizeof(ctx), "%s: byte %llu of the middle record ^ 0x%02x",
               embedded ? "a log inside the middle entry" : "three entries",
               (unsigned long long)(at - m.e[1].start), xors[x]);
      cases++;
      if( !expect_events(ctx, &img, i < HDR ? want : want_payload) ) bad++;
      if( x == 0 && i % 4 == 0 ) bad_prefix += prefixes_agree(m.p, m.n);
      m.p[at] ^= xors[x];
    }
  }
  printf("scan: %s: %d damaged headers and payloads, %d read wrong\n",
         embedded ? "log inside an entry" : "three entries", cases, bad);
  CHECK_MSG(bad_prefix == 0, "a reader of a prefix finds no entry the whole does not (%d)", bad_prefix);
  free(inner);
  m_reset(&m);
}

/*
** Damage that proves nothing (the length field and the payload both
** wrong): the rest of the block is dropped, as the reference does, and
** reading goes on at the next block, passing over the continuation of an
** entry begun in the damage. Nothing in between is searched for records.
*/
static void test_unprovable(void){
  mlog m = {0};
  m_update(&m, 100, 1);                        /* A */
  m_update(&m, 100, 2);                        /* B: damaged */
  m_update(&m, 100, 3);                        /* C: lost with the rest of the block */
  m_update(&m, BLK - m.n + 200, 4);            /* D: FIRST in block 0, LAST in block 1 */
  m_update(&m, 50, 5);                         /* E */
  m_update(&m, 60, 6);                         /* F */
  CHECK(m.e[3].start < BLK && m.e[3].end > BLK && m.e[4].start > BLK);
  m.p[m.e[1].start + 5] ^= 0x10;               /* length */
  m.p[m.e[1].start + HDR + 20] ^= 0x10;        /* and payload */
  stateio_image img = mem(m.p, m.n);
  char want[256];
  snprintf(want, sizeof(want), "entry 0 %llu\ncorrupt %llu %llu\nentry %llu %llu\nentry %llu %llu\ndone\n",
           (unsigned long long)m.e[0].end, (unsigned long long)m.e[1].start,
           (unsigned long long)m.e[4].start, (unsigned long long)m.e[4].start,
           (unsigned long long)m.e[4].end, (unsigned long long)m.e[5].start,
           (unsigned long long)m.e[5].end);
  expect_events("unprovable damage", &img, want);
  CHECK_MSG(prefixes_agree(m.p, m.n) == 0, "unprovable damage: prefixes agree");

  /* The same inside a log held by an entry: never one of its records. */
  m_reset(&m);
  size_t inner_n;
  unsigned char *inner = inner_log(&inner_n);
  m_update(&m, 10, 1);
  m_add(&m, STATEIO_UPDATE, inner, inner_n);
  m_update(&m, 10, 3);
  m.p[m.e[1].start + 6] ^= 0x80;               /* length, high byte: past the block */
  m.p[m.e[1].start + 2] ^= 0x44;               /* and the checksum */
  img = mem(m.p, m.n);
  expect_one_then("unprovable damage over a held log", &img, m.e[0].end, "corrupt", m.e[1].start, m.n);
  /*
  ** A length that runs past the end of the file instead: the signature of
  ** an append cut short. Whatever follows lies in its missing payload (a
  ** torn tail), so the last entry is not read either.
  */
  m.p[m.e[1].start + 6] ^= 0x80 ^ 0x01;
  expect_one_then("a damaged length past the end over a held log", &img, m.e[0].end, "torn", m.e[1].start, m.n);
  /*
  ** 2026-12-01 (found by the fuzz target): a checksum byte and the length
  ** of the first record both damaged, the wrong length ending it exactly at
  ** a record of the log held in the next entry's data. The end a damaged
  ** header claims is never followed: nothing of the held log comes out.
  */
  m_reset(&m);
  m_update(&m, 5, 1);
  m_add(&m, STATEIO_UPDATE, inner, inner_n);
  {
    uint64_t inner_rec = m.e[1].start + HDR + EHDR;     /* the held log's first record */
    uint64_t len = inner_rec - HDR;                     /* a length that ends the first record there */
    m.p[0] ^= 0x5a;
    m.p[5] = (unsigned char)len;
    m.p[6] = (unsigned char)(len >> 8);
  }
  img = mem(m.p, m.n);
  char *got = events(&img, 0);
  CHECK_MSG(strncmp(got, "corrupt 0 ", 10) == 0 && strstr(got, "entry ") == NULL,
            "a damaged length ending at a held log's record: nothing read\n%s", got);
  free(got);
  free(inner);
  m_reset(&m);
}

/* ------------------------------------------------------------ 2. the end of a log */

/*
** Without a commit file: only an entry cut short by the end is a torn tail;
** a complete entry, damaged, is corruption. With one: damage past what the
** file records as done is the last commit, torn.
*/
static void test_end(void){
  char want[256], ctx[96];
  mlog m = {0};
  m_update(&m, 40, 1);
  m_update(&m, 50, 2);
  m_update(&m, 60, 3);                         /* the last entry */
  uint64_t s = m.e[2].start, n = m.n;

  /* Cut at every length inside the last entry: torn. */
  int bad = 0;
  for(uint64_t k = s + 1; k < n; k++){
    stateio_image img = mem(m.p, k);
    snprintf(want, sizeof(want), "entry 0 %llu\nentry %llu %llu\ntorn %llu %llu\ndone\n",
             (unsigned long long)m.e[0].end, (unsigned long long)m.e[1].start,
             (unsigned long long)m.e[1].end, (unsigned long long)s, (unsigned long long)k);
    snprintf(ctx, sizeof(ctx), "cut at %llu", (unsigned long long)k);
    if( !expect_events(ctx, &img, want) ) bad++;
  }
  CHECK_MSG(bad == 0, "every cut inside the last entry is a torn tail (%d not)", bad);

  /* A damaged payload byte of the complete last entry: corruption. */
  m.p[s + HDR + 30] ^= 0xff;
  stateio_image img = mem(m.p, n);
  snprintf(want, sizeof(want), "entry 0 %llu\nentry %llu %llu\ncorrupt %llu %llu\ndone\n",
           (unsigned long long)m.e[0].end, (unsigned long long)m.e[1].start,
           (unsigned long long)m.e[1].end, (unsigned long long)s, (unsigned long long)n);
  expect_events("damaged last entry", &img, want);
  /* With a commit file: torn when it lies past what the file records as done. */
  img.journaled = 1;
  img.committed = s;
  snprintf(want, sizeof(want), "entry 0 %llu\nentry %llu %llu\ntorn %llu %llu\ndone\n",
           (unsigned long long)m.e[0].end, (unsigned long long)m.e[1].start,
           (unsigned long long)m.e[1].end, (unsigned long long)s, (unsigned long long)n);
  expect_events("damaged last entry past the commit file's last done commit", &img, want);
  img.committed = s + 1;
  snprintf(want, sizeof(want), "entry 0 %llu\nentry %llu %llu\ncorrupt %llu %llu\ndone\n",
           (unsigned long long)m.e[0].end, (unsigned long long)m.e[1].start,
           (unsigned long long)m.e[1].end, (unsigned long long)s, (unsigned long long)n);
  expect_events("damaged last entry inside a done commit", &img, want);
  m.p[s + HDR + 30] ^= 0xff;

  /* Garbage after the last entry: torn. Garbage with records written after it: damage. */
  m_reset(&m);
  m_update(&m, 40, 1);
  uint64_t e0 = m.n;
  m.p = realloc(m.p, m.n + 4096);
  memset(m.p + m.n, 0xab, 40);
  img = mem(m.p, e0 + 40);
  expect_one_then("garbage tail", &img, e0, "torn", e0, e0 + 40);
  memcpy(m.p + e0 + 40, m.p, e0);             /* a copy of a valid record after the garbage */
  img = mem(m.p, e0 + 40 + e0);
  expect_one_then("garbage with a record after it", &img, e0, "corrupt", e0, e0 + 40 + e0);
  m_reset(&m);

  /* A multi-block last entry: its FIRST damaged, its LAST there: corruption; without its LAST: torn. */
  m_update(&m, 100, 1);
  m_snapshot(&m, 40000, 2);
  s = m.e[1].start;
  n = m.n;
  m.p[s + HDR + 50] ^= 0xff;
  img = mem(m.p, n);
  expect_one_then("multi-block last entry, FIRST damaged", &img, m.e[0].end, "corrupt", s, n);
  snprintf(want, sizeof(want), "error corrupt log at %llu\n", (unsigned long long)s);
  expect_restore("multi-block last snapshot, FIRST damaged", &img, want);
  img = mem(m.p, BLK + 10);
  expect_one_then("multi-block last entry cut before its LAST", &img, m.e[0].end, "torn", s, BLK + 10);
  /*
  ** Its LAST's header destroyed (8 bytes zeroed: nothing proves where the
  ** record ends), the file not cut: the entry goes on into damage, so it
  ** is corruption, never a torn tail (fuzz_stateio found this).
  */
  m.p[s + HDR + 50] ^= 0xff;                   /* its FIRST intact again */
  memset(m.p + BLK, 0, 8);
  img = mem(m.p, n);
  expect_one_then("multi-block last entry, its LAST's header destroyed", &img, m.e[0].end, "corrupt", s, n);
  snprintf(want, sizeof(want), "error corrupt log at %llu\n", (unsigned long long)s);
  expect_restore("... and restore names it, never the epoch before", &img, want);
  m_reset(&m);
  /* The same for each continuation of a three-block entry (MIDDLE, then LAST). */
  m_update(&m, 100, 1);
  m_snapshot(&m, 70000, 2);
  s = m.e[1].start;
  n = m.n;
  for(uint64_t at = BLK; at < n; at += BLK){
    unsigned char save[8];
    memcpy(save, m.p + at, 8);
    memset(m.p + at, 0, 8);
    img = mem(m.p, n);
    snprintf(ctx, sizeof(ctx), "three-block last entry, the header at %llu destroyed", (unsigned long long)at);
    expect_one_then(ctx, &img, m.e[0].end, "corrupt", s, n);
    memcpy(m.p + at, save, 8);
  }
  m_reset(&m);

  /*
  ** An entry opening a block after one that ended at the boundary, whose
  ** data is a log, with its offset field damaged and the log cut inside
  ** it (fuzz_stateio found this). Read as a LAST (type damaged, offset
  ** right) it would continue an entry that never began, and the records
  ** in its data would make it damage; it opens an entry, so it is a FULL
  ** with a damaged offset, cut short: a torn tail.
  */
  m_update(&m, BLK - HDR - EHDR, 1);
  CHECK(m.n == BLK);
  mlog inner = {0};
  for(int i = 0; i < 6; i++) m_update(&inner, 20 + 5 * i, 10 + i);
  m_add(&m, STATEIO_UPDATE, inner.p, inner.n);
  s = m.e[1].start;
  m.p[s + OFF] = 0x37;
  n = m.n - 3;                                 /* every inner record lies before the cut */
  img = mem(m.p, n);
  expect_one_then("entry at a block start, offset damaged, cut short over a log in its data", &img, BLK, "torn", s, n);
  snprintf(want, sizeof(want), "epoch 0 end %llu torn %llu\nupdate 0\ndone\n", (unsigned long long)s,
           (unsigned long long)(n - s));
  expect_restore("... restores the entry before it", &img, want);
  m_reset(&inner);
  m_reset(&m);
}

/*
** Restore over a damaged last entry: a complete update of the current
** epoch whose kind and epoch a checksum proves (the damage is in its
** record's header) is reported at the end of its updates; one whose
** payload is damaged may be a snapshot with its kind byte changed, so
** restore fails naming it, as for a snapshot or an entry naming another
** epoch: never an older epoch as current. A writer appends after the first
** (never cutting it), in the next block, and refuses to append after what
** it cannot tell.
*/
static void test_restore_end(void){
  char want[320];
  mlog m = {0};
  m_update(&m, 20, 1);
  m_snapshot(&m, 50, 2);
  m_update(&m, 30, 3);
  m_update(&m, 40, 4);
  uint64_t E = m.e[1].start, s = m.e[3].start;
  stateio_image img = mem(m.p, m.n);
  m.p[s + SUM] ^= 0xff;                     /* its checksum field: the payload is proven */
  snprintf(want, sizeof(want), "epoch %llu end %llu torn 0\nupdate %llu\ncorrupt %llu %llu\ndone\n",
           (unsigned long long)E, (unsigned long long)m.n, (unsigned long long)m.e[2].start,
           (unsigned long long)s, (unsigned long long)m.n);
  expect_restore("damaged last update (its checksum field)", &img, want);
  m.p[s + SUM] ^= 0xff;
  m.p[s + HDR + EHDR + 10] ^= 0xff;            /* a data byte: nothing proves its kind */
  snprintf(want, sizeof(want), "error corrupt log at %llu\n", (unsigned long long)s);
  expect_restore("damaged last update (a data byte)", &img, want);
  m.p[s + HDR + EHDR + 10] ^= 0xff;
  m.p[s + HDR + 2] ^= 0xff;                    /* its epoch field: not the current epoch's */
  expect_restore("damaged last update naming another epoch", &img, want);
  m.p[s + HDR + 2] ^= 0xff;

  /* The writer: after a proven damaged last update it appends; after the others, it refuses. */
  char path[300];
  snprintf(path, sizeof(path), "%s/end.log", tmpdir);
  for(int variant = 0; variant < 3; variant++){
    uint64_t at = variant == 0 ? s + SUM : variant == 1 ? s + HDR + EHDR + 10 : s + HDR + 2;
    m.p[at] ^= 0xff;
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(m.p, 1, m.n, f) == m.n && fclose(f) == 0);
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, path, 0) == STATEIO_OK);
    int rc = stateio_update(w, "more", 4);
    stateio_writer_close(w);
    struct stat st;
    stat(path, &st);
    if( variant == 0 ){
      CHECK_MSG(rc == STATEIO_OK && (uint64_t)st.st_size > m.n, "writer appends after a damaged last update: %s",
                stateio_errstr(rc));
      stateio_image fimg;
      CHECK(stateio_open_image(path, &fimg) == STATEIO_OK);
      /* The new entry begins the next block: after damage, readers find nothing before it. */
      snprintf(want, sizeof(want), "epoch %llu end %llu torn 0\nupdate %llu\ncorrupt %llu %llu\nupdate %llu\ndone\n",
               (unsigned long long)E, (unsigned long long)st.st_size, (unsigned long long)m.e[2].start,
               (unsigned long long)s, (unsigned long long)BLK, (unsigned long long)BLK);
      expect_restore("after the append", &fimg, want);
      stateio_close_image(&fimg);
    }else{
      CHECK_MSG(rc == STATEIO_CORRUPT_LOG && (uint64_t)st.st_size == m.n,
                "writer refuses a log whose current epoch the damage hides (variant %d): %s, size %lld",
                variant, stateio_errstr(rc), (long long)st.st_size);
    }
    m.p[at] ^= 0xff;
  }
  unlink(path);

  /*
  ** A last snapshot whose kind byte is damaged into an update's: its
  ** prev_epoch reads as the current epoch, so it looks like an update of
  ** it (fuzz_stateio found this). An error naming it, not the epoch before.
  */
  m_reset(&m);
  m_update(&m, 20, 1);
  m_snapshot(&m, 50, 2);
  m_update(&m, 30, 3);
  m_snapshot(&m, 40, 4);
  s = m.e[3].start;
  CHECK(m.p[s + HDR] == STATEIO_SNAPSHOT);
  m.p[s + HDR] = STATEIO_UPDATE;
  img = mem(m.p, m.n);
  snprintf(want, sizeof(want), "error corrupt log at %llu\n", (unsigned long long)s);
  expect_restore("last snapshot damaged into an update of the current epoch", &img, want);

  /* The damaged current snapshot, last: an error naming it. */
  m_reset(&m);
  m_update(&m, 20, 1);
  m_snapshot(&m, 50, 2);
  m.p[m.e[1].start + HDR + EHDR + 3] ^= 0xff;
  img = mem(m.p, m.n);
  snprintf(want, sizeof(want), "error corrupt log at %llu\n", (unsigned long long)m.e[1].start);
  expect_restore("damaged last snapshot", &img, want);
  m_reset(&m);
}

/*
** What is a log: a file in which no block holds a record is not one
** (STATEIO_NOTLOG); one whose first block was destroyed is a damaged log,
** read from its first good block; one with records but no complete entry
** that does not begin with a record is damaged from 0, never a torn tail
** (which a writer would cut, to nothing).
*/
static void test_what_is_a_log(void){
  char want[320];
  mlog m = {0};
  m_update(&m, 20, 1);
  m_snapshot(&m, 30000, 2);                    /* ends in block 0 */
  m_update(&m, 20000, 3);                      /* crosses into block 1 */
  m_snapshot(&m, 100, 4);                      /* the current epoch, in block 1 */
  m_update(&m, 30, 5);
  uint64_t S = m.e[3].start;
  CHECK(S > BLK && m.e[2].start < BLK);
  memset(m.p, 0, BLK);                         /* the first block zeroed */
  stateio_image img = mem(m.p, m.n);
  CHECK(logio_holds_record(&img) && !logio_starts_with_record(&img));
  char region[64];
  snprintf(want, sizeof(want), "epoch %llu end %llu torn 0\nupdate %llu\ndone\n", (unsigned long long)S,
           (unsigned long long)m.n, (unsigned long long)m.e[4].start);
  /* One region: block 0 and the rest of the entry that began in it. */
  snprintf(region, sizeof(region), "0 %llu ", (unsigned long long)m.e[2].end);
  for(int garbage = 0; garbage < 2; garbage++){
    /* Zeros, then garbage (no byte of it a record). */
    if( garbage ) for(uint64_t i = 0; i < BLK; i++) m.p[i] = (unsigned char)(i * 131 + 7);
    const char *ctx = garbage ? "the first block garbage" : "the first block zeroed";
    expect_restore(ctx, &img, want);
    char *got = problems(&img);
    CHECK_MSG(strncmp(got, region, strlen(region)) == 0, "%s: stateio_check lists\n%s", ctx, got);
    free(got);
  }

  /* No complete entry: only the tail of one, in block 1, after a destroyed block 0. */
  m_reset(&m);
  m_update(&m, 40000, 1);                      /* FIRST in block 0, LAST in block 1 */
  memset(m.p, 0xee, BLK);
  img = mem(m.p, m.n);
  stateio_state st;
  int rc = stateio_restore(&img, &st);
  CHECK_MSG(rc == STATEIO_CORRUPT_LOG && st.bad_offset == 0, "records but no entry: damaged from 0 (%s at %llu)",
            stateio_errstr(rc), (unsigned long long)st.bad_offset);
  stateio_state_clear(&st);
  /* Nothing of a log in any block. */
  memset(m.p + BLK, 0xee, m.n - BLK);
  rc = stateio_restore(&img, &st);
  CHECK_MSG(rc == STATEIO_NOTLOG && !logio_holds_record(&img), "no record anywhere: not a log (%s)", stateio_errstr(rc));
  stateio_state_clear(&st);
  m_reset(&m);
}

/* ------------------------------------------------------------ 3. the state log's rules */

/*
** The snapshot chain: prev_epoch must name an earlier snapshot (or 0).
** Restore checks the current snapshot's link; the scan (and so
** stateio_check) checks every snapshot against the one before it.
*/
static void test_chain(void){
  char want[320], *got;
  mlog m = {0};
  m_update(&m, 20, 1);                         /* epoch 0 without a snapshot */
  m_snapshot(&m, 30, 2);                       /* S1 */
  m_update(&m, 20, 3);
  m_snapshot(&m, 30, 4);                       /* S2: the current one */
  m_update(&m, 20, 5);
  uint64_t S1 = m.e[1].start, S2 = m.e[3].start, U = m.e[2].start;
  struct { const char *name; uint64_t prev; const char *restore_rc; const char *problem; } cases[] = {
    { "itself",        S2,       "corrupt state entry", "snapshot names a previous epoch that is not before it" },
    { "forward",       S2 + 100, "corrupt state entry", "snapshot names a previous epoch that is not before it" },
    { "an update",     U,        "corrupt state entry", "snapshot names the wrong previous epoch" },
    { "epoch 0",       0,        NULL,                  "snapshot names the wrong previous epoch" },
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++){
    set_epoch_field(m.p, S2, cases[i].prev);
    stateio_image img = mem(m.p, m.n);
    if( cases[i].restore_rc ){
      snprintf(want, sizeof(want), "error %s at %llu\n", cases[i].restore_rc, (unsigned long long)S2);
    }else{
      /* One link deep: 0 names epoch 0 (begun without a snapshot): restore cannot tell. */
      snprintf(want, sizeof(want), "epoch %llu end %llu torn 0\nupdate %llu\ndone\n", (unsigned long long)S2,
               (unsigned long long)m.n, (unsigned long long)m.e[4].start);
    }
    char ctx[80];
    snprintf(ctx, sizeof(ctx), "prev_epoch of the current snapshot: %s", cases[i].name);
    expect_restore(ctx, &img, want);
    got = problems(&img);
    snprintf(want, sizeof(want), "%llu %llu %s\n", (unsigned long long)S2,
             (unsigned long long)(m.e[3].end - S2), cases[i].problem);
    CHECK_MSG(strcmp(got, want) == 0, "%s: stateio_check lists\n%s  want\n%s", ctx, got, want);
    free(got);
  }
  set_epoch_field(m.p, S2, S1);
  stateio_image img = mem(m.p, m.n);
  got = problems(&img);
  CHECK_MSG(strcmp(got, "") == 0, "restored chain: no problems (%s)", got);
  free(got);

  /* An update of the wrong epoch: a bad entry, the others read. */
  set_epoch_field(m.p, m.e[2].start, 0);
  snprintf(want, sizeof(want), "%llu %llu update of the wrong epoch\n", (unsigned long long)U,
           (unsigned long long)(m.e[2].end - U));
  got = problems(&img);
  CHECK_MSG(strcmp(got, want) == 0, "wrong-epoch update: stateio_check lists\n%s  want\n%s", got, want);
  free(got);
  stateio_state st;
  CHECK(stateio_read_epoch(&img, S1, &st) == STATEIO_OK);
  stateio_updates *u;
  CHECK(stateio_updates_open(&u, &img, &st) == STATEIO_OK);
  stateio_entry e;
  CHECK(stateio_updates_next(u, &e) == STATEIO_CORRUPT_ENTRY && e.offset == U);
  CHECK(stateio_updates_next(u, &e) == STATEIO_DONE);
  stateio_updates_close(u);
  stateio_state_clear(&st);
  m_reset(&m);
}

/* The scan itself: kinds, epochs, and the problems it names. */
static void test_scan(void){
  mlog m = {0};
  m_update(&m, 20, 1);
  m_snapshot(&m, 30, 2);
  m_update(&m, 0, 3);
  unsigned char shortent[3] = { 1, 2, 3 };     /* an entry shorter than a state entry header */
  uint64_t start;
  m.p = realloc(m.p, m.n + 64);
  logio_encode(m.n, shortent, 3, NULL, 0, m.p + m.n, &start);
  m.n += logio_encoded_size(m.n, 3);
  stateio_image img = mem(m.p, m.n);
  stateio_scan *s;
  CHECK(stateio_scan_open(&s, &img, 0, 0) == STATEIO_OK);
  stateio_entry e;
  CHECK(stateio_scan_next(s, &e) == STATEIO_OK && e.kind == STATEIO_UPDATE && e.epoch == 0 && e.len == 20);
  CHECK(stateio_scan_next(s, &e) == STATEIO_OK && e.kind == STATEIO_SNAPSHOT && e.epoch == 0
        && e.offset == m.e[1].start && stateio_scan_epoch(s) == m.e[1].start);
  CHECK(stateio_scan_next(s, &e) == STATEIO_OK && e.kind == STATEIO_UPDATE && e.epoch == m.e[1].start && e.len == 0);
  CHECK(stateio_scan_next(s, &e) == STATEIO_CORRUPT_ENTRY && e.offset == start && e.problem
        && strcmp(e.problem, "state entry shorter than 9 bytes") == 0);
  uint64_t torn_len;
  CHECK(stateio_scan_next(s, &e) == STATEIO_DONE && stateio_scan_torn(s, &torn_len) == 0 && torn_len == 0);
  stateio_scan_close(s);
  /* A torn tail: the scan ends, and says where the tail is. */
  img = mem(m.p, m.e[2].end - 3);
  CHECK(stateio_scan_open(&s, &img, 0, 0) == STATEIO_OK);
  while( stateio_scan_next(s, &e) == STATEIO_OK ){}
  CHECK(stateio_scan_torn(s, &torn_len) == m.e[2].start && torn_len == m.e[2].end - 3 - m.e[2].start);
  stateio_scan_close(s);
  m_reset(&m);
}

/* ------------------------------------------------------------ 4. the parallel scan */

/* The reads of scan s from its k-th entry on, as text; then it is closed. */
static void scan_rest(stateio_scan *s, long k, int par, sbuf *b){
  for(; ; k++){
    stateio_entry e;
    if( par == 2 && k == 777 ) CHECK(stateio_scan_parallel(s) == STATEIO_OK);   /* mid-scan */
    int rc = stateio_scan_next(s, &e);
    if( rc == STATEIO_DONE ) break;
    sb_printf(b, "%d %llu %llu %d %llu %zu %u\n", rc, (unsigned long long)e.offset, (unsigned long long)e.end,
              e.kind, (unsigned long long)e.epoch, e.len, e.len ? (unsigned)e.data[e.len - 1] : 0u);
    if( rc != STATEIO_OK && rc != STATEIO_CORRUPT_LOG && rc != STATEIO_CORRUPT_ENTRY ) break;
    if( par == 3 && k == 776 ) return;                   /* the caller forks here */
  }
  uint64_t torn_len, torn = stateio_scan_torn(s, &torn_len);
  sb_printf(b, "torn %llu %llu\n", (unsigned long long)torn, (unsigned long long)torn_len);
  stateio_scan_close(s);
}

/* The reads of a scan, as text (with the parallel reader when par is set). */
static char *scan_text(const stateio_image *img, int par){
  sbuf b = {0};
  stateio_scan *s;
  if( stateio_scan_open(&s, img, 0, 0) ){ sb_printf(&b, "open failed\n"); return b.s; }
  if( par == 1 ) CHECK(stateio_scan_parallel(s) == STATEIO_OK);
  scan_rest(s, 0, par, &b);
  return b.s;
}

/*
** The reads of a parallel scan that the process forks in the middle of
** (after entry 776, the helper thread working ahead), as the child goes on
** with it: the child has no helper, perhaps a chunk it left half filled or
** its mutex held, and must read for itself, never wait. The parent goes on
** too; both texts are returned (the child's through a file; "killed" if it
** hung and its alarm went off).
*/
static void scan_text_forked(const stateio_image *img, char **parent, char **child){
  sbuf b = {0}, c = {0};
  stateio_scan *s;
  *parent = *child = NULL;
  if( !CHECK(stateio_scan_open(&s, img, 0, 0) == STATEIO_OK) ) return;
  CHECK(stateio_scan_parallel(s) == STATEIO_OK);
  scan_rest(s, 0, 3, &b);
  char out[320];
  snprintf(out, sizeof(out), "%s/child.txt", tmpdir);
  fflush(stdout);
  pid_t pid = fork();
  if( pid == 0 ){
    alarm(60);
    scan_rest(s, 777, 0, &b);
    FILE *f = fopen(out, "wb");
    if( !f || fwrite(sb_str(&b), 1, b.len, f) != b.len || fclose(f) != 0 ) _exit(2);
    _exit(0);
  }
  scan_rest(s, 777, 0, &b);
  *parent = b.s;
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  if( WIFEXITED(status) && WEXITSTATUS(status) == 0 ){
    FILE *f = fopen(out, "rb");
    char buf[65536];
    size_t n;
    while( f && (n = fread(buf, 1, sizeof(buf), f)) > 0 ) sb_printf(&c, "%.*s", (int)n, buf);
    if( f ) fclose(f);
  }else{
    sb_printf(&c, "%s: status %d\n", WIFSIGNALED(status) ? "killed" : "failed", status);
  }
  unlink(out);
  *child = c.s ? c.s : strdup("");
}

/*
** A scan that verifies on a second thread reads exactly what the plain one
** does, on a log of some tens of MiB with damage sprinkled over it.
*/
static void test_parallel(void){
  char path[300];
  snprintf(path, sizeof(path), "%s/par.log", tmpdir);
  stateio_writer *w;
  unlink(path);
  if( !CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK) ) return;
  size_t cap = 200000;
  unsigned char *d = malloc(cap);
  uint64_t x = 88172645463325252ull;
  uint64_t target = UNDER_ASAN ? (12u << 20) : (40u << 20);
  CHECK(stateio_writer_begin_bulk(w) == STATEIO_OK);
  for(int i = 0; ; i++){
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    size_t len = (x % 7 == 0) ? (size_t)(x % 150000) : (size_t)(x % 300);
    for(size_t j = 0; j < len; j++) d[j] = (unsigned char)(i + j);
    int rc = (i % 500 == 499) ? stateio_snapshot(w, d, len) : stateio_update(w, d, len);
    if( !CHECK(rc == STATEIO_OK) ) break;
    stateio_image tmp;
    if( stateio_writer_image(w, &tmp) == STATEIO_OK && stateio_image_size(&tmp) > target ) break;
  }
  CHECK(stateio_writer_commit(w) == STATEIO_OK);
  stateio_writer_close(w);
  free(d);
  size_t n;
  FILE *f = fopen(path, "rb");
  struct stat st;
  stat(path, &st);
  n = (size_t)st.st_size;
  unsigned char *p = malloc(n);
  CHECK(f && fread(p, 1, n, f) == n);
  if( f ) fclose(f);
  /* Read from the file itself (pread on both threads). */
  stateio_image fimg;
  if( CHECK(stateio_open_image(path, &fimg) == STATEIO_OK) ){
    stateio_image img = mem(p, n);
    char *a = scan_text(&img, 0), *b = scan_text(&fimg, 1);
    CHECK_MSG(strcmp(a, b) == 0, "the parallel scan of the file reads what the plain one does");
    if( UNDER_ASAN ){
      /* GCC 12's ASan does not reset its allocator's locks in a child of a threaded fork: its malloc can hang. */
      printf("scan: not run under ASan: a parallel scan the process forks in\n");
    }else{
      char *parent, *child;
      scan_text_forked(&fimg, &parent, &child);
      CHECK_MSG(parent && strcmp(a, parent) == 0, "a parallel scan the process forks in: the parent's reads");
      CHECK_MSG(child && strcmp(a, child) == 0, "... and the child's, which goes on alone (%.40s)", child ? child : "");
      free(parent);
      free(child);
    }
    free(a);
    free(b);
    stateio_close_image(&fimg);
  }
  /*
  ** The file cut short under a parallel scan: the read that fails may be
  ** the helper thread's, and the error's errno must be that read's (EIO),
  ** not whatever the reading thread's errno was. 2026-12-01: the SQL
  ** message said "No such file or directory", a stale errno.
  */
  {
    int rounds = 8, right = 0, failed = 0;
    for(int round = 0; round < rounds; round++){
      FILE *g = fopen(path, "wb");
      CHECK(g && fwrite(p, 1, n, g) == n);
      if( g ) fclose(g);
      stateio_image cimg;
      stateio_scan *s;
      if( !CHECK(stateio_open_image(path, &cimg) == STATEIO_OK) ) break;
      CHECK(stateio_scan_open(&s, &cimg, 0, 0) == STATEIO_OK);
      CHECK(stateio_scan_parallel(s) == STATEIO_OK);
      int rc = STATEIO_OK, e = 0;
      for(long k = 0; ; k++){
        stateio_entry en;
        if( k == 20 ) CHECK(truncate(path, (off_t)(n / 3)) == 0);
        errno = ENOENT;                  /* what this thread's errno was before */
        rc = stateio_scan_next(s, &en);
        e = errno;
        if( rc != STATEIO_OK && rc != STATEIO_CORRUPT_LOG && rc != STATEIO_CORRUPT_ENTRY ) break;
      }
      if( rc == STATEIO_IOERR ){
        failed++;
        if( e == EIO ) right++;
      }
      stateio_scan_close(s);
      stateio_close_image(&cimg);
    }
    CHECK_MSG(failed == rounds && right == rounds, "a file cut short under a parallel scan: %d of %d scans failed, %d with EIO",
              failed, rounds, right);
    FILE *g = fopen(path, "wb");
    CHECK(g && fwrite(p, 1, n, g) == n);
    if( g ) fclose(g);
  }
  /* Undamaged, then with a byte flipped every few MiB (headers and payloads). */
  for(int round = 0; round < 3; round++){
    if( round > 0 ){
      for(uint64_t at = 1000003u * (uint64_t)round; at < n; at += 3000017u) p[at] ^= 0xff;
    }
    if( round == 2 ) n -= 12345;                 /* and cut short */
    stateio_image img = mem(p, n);
    char *a = scan_text(&img, 0), *b = scan_text(&img, 1), *c = scan_text(&img, 2);
    CHECK_MSG(strcmp(a, b) == 0, "round %d: the parallel scan reads what the plain one does", round);
    CHECK_MSG(strcmp(a, c) == 0, "round %d: ... also when it goes parallel in the middle", round);
    free(a);
    free(b);
    free(c);
  }
  printf("scan: parallel scan of a %zu-byte log: the same reads as one thread, damaged or not\n", n);
  free(p);
  unlink(path);
}

/* The current epoch's updates as text lines, read with or without the second thread. */
static char *updates_text(const stateio_image *img, int par){
  /* par: 1 from the start, 2 from the 1000th update on */
  sbuf b = {0};
  stateio_state st;
  int rc = stateio_restore(img, &st);
  if( rc ){ sb_printf(&b, "restore %s at %llu\n", stateio_errstr(rc), (unsigned long long)st.bad_offset); return b.s; }
  stateio_updates *u;
  if( stateio_updates_open(&u, img, &st) ){ stateio_state_clear(&st); sb_printf(&b, "open failed\n"); return b.s; }
  if( par == 1 ) CHECK(stateio_updates_parallel(u) == STATEIO_OK);
  for(long k = 0; ; k++){
    stateio_entry e;
    if( par == 2 && k == 1000 ) CHECK(stateio_updates_parallel(u) == STATEIO_OK);
    rc = stateio_updates_next(u, &e);
    if( rc == STATEIO_DONE ) break;
    sb_printf(&b, "%d %llu %llu %zu %u\n", rc, (unsigned long long)e.offset, (unsigned long long)e.end,
              e.len, e.data && e.len ? (unsigned)e.data[e.len - 1] : 0u);
    if( rc != STATEIO_OK && rc != STATEIO_CORRUPT_LOG && rc != STATEIO_CORRUPT_ENTRY ) break;
  }
  stateio_updates_close(u);
  stateio_state_clear(&st);
  return b.s;
}

/*
** The update reader on a second thread (stateio_updates_parallel) reads
** what the plain one does: an epoch of 10 MiB of small updates, the case
** where the helper thread verifies nearly every chunk, undamaged, damaged
** and cut short.
*/
static void test_updates_parallel(void){
  mlog m = {0};
  m_snapshot(&m, 100, 1);
  long count = 0;
  unsigned char d[400];
  for(uint64_t x = 88172645463325252ull; m.n < (10u << 20); count++){
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    size_t len = (size_t)(x % sizeof(d));
    memset(d, (int)(x >> 32), len);
    m.ne = 0;                                    /* only the bytes are kept */
    m_add(&m, STATEIO_UPDATE, d, len);
  }
  size_t n = m.n;
  int bad = 0;
  for(int round = 0; round < 3; round++){
    if( round > 0 ){
      for(uint64_t at = 700001u * (uint64_t)round; at < n; at += 2000003u) m.p[at] ^= 0x5a;
    }
    if( round == 2 ) n -= 777;
    stateio_image img = mem(m.p, n);
    char *a = updates_text(&img, 0), *b = updates_text(&img, 1), *c = updates_text(&img, 2);
    if( !CHECK_MSG(strcmp(a, b) == 0, "round %d: the parallel update reader reads what the plain one does", round) ) bad++;
    if( !CHECK_MSG(strcmp(a, c) == 0, "round %d: ... also when it goes parallel in the middle", round) ) bad++;
    free(c);
    if( round == 0 ){
      size_t lines = 0;
      for(const char *q = a; *q; q++) lines += *q == '\n';
      CHECK_MSG(lines == (size_t)count, "all %ld updates read (%zu)", count, lines);
    }else{
      char corrupt[16];
      snprintf(corrupt, sizeof(corrupt), "\n%d ", STATEIO_CORRUPT_LOG);
      CHECK_MSG(strstr(a, corrupt) != NULL, "round %d: the damage is read as damage", round);
    }
    free(a);
    free(b);
  }
  printf("scan: parallel update reader over %ld small updates (%zu bytes): %s\n", count, n,
         bad ? "DIFFERS" : "the same reads as one thread");
  m_reset(&m);
}

int main(void){
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof(tmpdir), "%s/scan_test.XXXXXX", t && *t ? t : "/tmp");
  if( !mkdtemp(tmpdir) ){ perror("mkdtemp"); return 2; }
  test_header_bytes(0);
  test_header_bytes(1);
  test_unprovable();
  test_end();
  test_restore_end();
  test_what_is_a_log();
  test_chain();
  test_scan();
  test_updates_parallel();
  test_parallel();
  rmdir(tmpdir);
  return test_report();
}
