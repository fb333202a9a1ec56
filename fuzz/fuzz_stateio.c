/*
** fuzz_stateio.c - libFuzzer target: any bytes as a log image.
**
** The input is the whole log, held in memory (logio_image with fd -1,
** file_size 0 and the input as its tail). Every reader runs over it to the
** end, and what must hold for ANY input is asserted (abort() on failure,
** which libFuzzer reports as a crash):
**  - the forward reader, from 0 and from block boundaries: entries and
**    damaged regions lie in the image, in order, never overlap, regions are
**    not empty, an entry's bytes are the payloads of its records, a damaged
**    region is followed by the entry that ends it, a torn tail runs to the
**    end, and it terminates; from a block boundary it finds nothing the
**    reader from 0 does not;
**  - logio_read_entry_at() on every entry found gives the same entry;
**  - a prefix of the image (a crash during the last write) holds no entry,
**    for the forward reader or rewind, that the whole image does not;
**  - the rewind walk: entries found by the forward reader, ending at or
**    before the limit, with strictly decreasing starts; rewind from the end
**    finds the forward reader's last entry, and nothing exactly when the
**    forward reader finds nothing;
**  - restore: a consistent epoch (log_end + torn_len = size, snapshot
**    inside the log, ...), snapshot and updates that the forward reader
**    also returns, and an update reader that terminates;
**  - stateio_check: problems in file order, inside the image, never empty;
**    a log it finds no problem in restores, with no error from the update
**    reader.
**
** Build: make build/fuzz_stateio (clang -fsanitize=fuzzer,address,undefined).
** Run:   make fuzz (FUZZ_SECONDS) or sh test/fuzz-short.sh.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stateio.h"

#define BLK ((uint64_t)LOGIO_BLOCK)
#define HDR ((uint64_t)LOGIO_HEADER)

#define ASSERT(c) do{ if( !(c) ){ \
  fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); abort(); } }while(0)

/* Entries the forward reader from 0 returned: (offset, end), in order. */
typedef struct span { uint64_t off, end; } span;
typedef struct spans { span *v; size_t n, cap; } spans;

static void spans_add(spans *s, uint64_t off, uint64_t end){
  if( s->n == s->cap ){
    s->cap = s->cap ? s->cap * 2 : 64;
    s->v = realloc(s->v, s->cap * sizeof(span));
    ASSERT(s->v != NULL);
  }
  s->v[s->n].off = off;
  s->v[s->n].end = end;
  s->n++;
}

/* Whether (off, end) is one of the entries in s (sorted by offset). */
static int spans_has(const spans *s, uint64_t off, uint64_t end){
  size_t lo = 0, hi = s->n;
  while( lo < hi ){
    size_t mid = (lo + hi) / 2;
    if( s->v[mid].off < off ) lo = mid + 1; else hi = mid;
  }
  return lo < s->n && s->v[lo].off == off && s->v[lo].end == end;
}

/*
** The payload of the entry at [off, end) as the image holds it: every
** record but the last fills its block, so the payload is the bytes after
** each block's 15-byte header. Checks that e's data are those bytes.
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

/*
** Read forward from start to the end. Every entry is added to *all (when
** given) and must be in *known (when given).
*/
static void forward(const logio_image *img, const unsigned char *data, uint64_t start,
                    spans *all, const spans *known, int *damaged){
  uint64_t size = logio_image_size(img);
  logio_reader *r;
  ASSERT(logio_reader_open(&r, img, start) == SIO_OK);
  uint64_t prev = start;
  uint64_t steps = 0;
  for(;;){
    ASSERT(++steps <= size + 2);
    logio_entry e;
    int rc = logio_reader_next(r, &e);
    if( rc == SIO_DONE ) break;
    ASSERT(rc == SIO_OK || rc == SIO_CORRUPT_LOG || rc == SIO_TORN);
    ASSERT(e.offset >= prev);
    if( rc == SIO_OK ){
      ASSERT(e.end > e.offset && e.end <= size && e.len > 0 && e.data != NULL);
      /* The entry's records: one header per block it touches, no padding inside. */
      uint64_t nblocks = (e.end - 1) / BLK - e.offset / BLK + 1;
      ASSERT(e.end - e.offset == nblocks * HDR + e.len);
      check_payload(data, &e);
      if( all ) spans_add(all, e.offset, e.end);
      if( known ) ASSERT(spans_has(known, e.offset, e.end));
      prev = e.end;
      continue;
    }
    if( damaged ) *damaged = 1;
    ASSERT(e.len > 0 && e.data == NULL && e.offset + e.len <= size);
    ASSERT(strlen(logio_reader_problem(r)) > 0);
    if( rc == SIO_TORN ){
      ASSERT(e.offset + e.len == size);
      ASSERT(logio_reader_next(r, &e) == SIO_DONE);
      break;
    }
    /* A damaged region is reported once the entry after it is known: it comes next. */
    uint64_t region_end = e.offset + e.len;
    rc = logio_reader_next(r, &e);
    ASSERT(rc == SIO_OK && e.offset == region_end);
    ASSERT(e.end > e.offset && e.end <= size && e.len > 0 && e.data != NULL);
    check_payload(data, &e);
    if( all ) spans_add(all, e.offset, e.end);
    if( known ) ASSERT(spans_has(known, e.offset, e.end));
    prev = e.end;
  }
  logio_entry e;
  ASSERT(logio_reader_next(r, &e) == SIO_DONE);    /* and stays done */
  logio_reader_close(r);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size){
  logio_image img = { -1, 0, data, size, 0, 0 };
  spans all = {0};

  /* The forward reader from 0, and from block boundaries. */
  int damaged = 0;
  forward(&img, data, 0, &all, NULL, &damaged);
  for(size_t i = 1; i < all.n; i++) ASSERT(all.v[i].off >= all.v[i - 1].end);
  if( size > BLK ) forward(&img, data, BLK, NULL, &all, NULL);
  if( size > 2 * BLK ) forward(&img, data, (size - 1) / BLK * BLK, NULL, &all, NULL);

  /*
  ** Cutting the image short (a crash while the end was being written) only
  ** loses entries: every entry found in a prefix is an entry of the whole.
  ** (A record cut by the end must not expose records inside its payload.)
  */
  uint64_t cuts[4];
  int ncut = 0;
  if( all.n > 0 ){
    const span *last = &all.v[all.n - 1];
    cuts[ncut++] = last->end - 1;
    cuts[ncut++] = last->off + (last->end - last->off) / 2;
    if( all.n > 1 ) cuts[ncut++] = all.v[all.n - 2].off + (all.v[all.n - 2].end - all.v[all.n - 2].off) * 2 / 3;
  }
  if( size > 2 ) cuts[ncut++] = size - 1 - (size > 64 ? data[size / 2] % 64 : 0);
  for(int c = 0; c < ncut; c++){
    logio_image cut = { -1, 0, data, (size_t)cuts[c], 0, 0 };
    forward(&cut, data, 0, NULL, &all, NULL);
    uint64_t cs, ce;
    if( logio_rewind(&cut, cuts[c], &cs, &ce) == SIO_OK ) ASSERT(spans_has(&all, cs, ce));
  }

  /* Each entry found is found again where it starts. */
  for(size_t i = 0; i < all.n && i < 64; i++){
    logio_entry e;
    ASSERT(logio_read_entry_at(&img, all.v[i].off, &e) == SIO_OK);
    ASSERT(e.offset == all.v[i].off && e.end == all.v[i].end);
    check_payload(data, &e);
    sio_free((void*)e.data);
  }

  /* Rewind: the last entry, then a walk back (at most 12 steps: each can cost O(image)). */
  uint64_t s, e;
  int rc = logio_rewind(&img, size, &s, &e);
  ASSERT(rc == SIO_OK || rc == SIO_DONE);
  ASSERT((rc == SIO_DONE) == (all.n == 0));
  if( rc == SIO_OK ) ASSERT(s == all.v[all.n - 1].off && e == all.v[all.n - 1].end);
  uint64_t limit = size;
  for(int step = 0; step < 12; step++){
    rc = logio_rewind(&img, limit, &s, &e);
    ASSERT(rc == SIO_OK || rc == SIO_DONE);
    if( rc == SIO_DONE ) break;
    ASSERT(s < e && e <= limit);
    ASSERT(spans_has(&all, s, e));
    limit = s;
  }
  /* Rewinding to where an entry ends finds that entry. */
  for(size_t i = 0; i < all.n; i += 1 + all.n / 3){
    rc = logio_rewind(&img, all.v[i].end, &s, &e);
    ASSERT(rc == SIO_OK && s == all.v[i].off && e == all.v[i].end);
  }

  /* Restore and the update reader. */
  stateio_epoch st;
  int rrc = stateio_restore(&img, &st);
  ASSERT(rrc == SIO_OK || rrc == SIO_CORRUPT_ENTRY || rrc == SIO_CORRUPT_LOG || rrc == SIO_NOTLOG);
  if( size == 0 ) ASSERT(rrc == SIO_OK && st.epoch == 0 && !st.has_snapshot);
  if( rrc == SIO_NOTLOG ) ASSERT(all.n == 0);
  if( rrc != SIO_OK && rrc != SIO_NOTLOG ) ASSERT(st.bad_offset < size);
  int update_errors = 0;
  if( rrc == SIO_OK ){
    ASSERT(st.log_end <= size && st.log_end + st.torn_len == size);
    if( st.log_end > 0 ) ASSERT(all.n > 0 && st.log_end == all.v[all.n - 1].end);
    else ASSERT(all.n == 0);
    int snap_known = 1;
    if( st.has_snapshot ){
      ASSERT(st.epoch < st.snapshot_end && st.snapshot_end <= st.log_end);
      ASSERT(st.updates_start == st.snapshot_end);
      ASSERT(st.snapshot_end - st.epoch >= HDR + STATEIO_ENTRY_HEADER + st.snapshot_len);
      ASSERT(st.prev_epoch < st.epoch || st.epoch == 0);
      ASSERT(st.snapshot_len == 0 || st.snapshot != NULL);
      snap_known = spans_has(&all, st.epoch, st.snapshot_end);
    }else{
      ASSERT(st.epoch == 0 && st.snapshot_len == 0 && st.updates_start == 0);
    }
    stateio_updates *u;
    ASSERT(stateio_updates_open(&u, &img, &st) == SIO_OK);
    uint64_t prev = st.updates_start;
    int64_t seq = -1;
    for(uint64_t steps = 0; ; steps++){
      ASSERT(steps <= size + 2);
      logio_entry ue;
      rc = stateio_updates_next(u, &ue);
      if( rc == SIO_DONE ) break;
      ASSERT(rc == SIO_OK || rc == SIO_CORRUPT_LOG || rc == SIO_CORRUPT_ENTRY);
      ASSERT(ue.offset >= prev && ue.offset < size);
      if( rc != SIO_OK ){
        update_errors++;
        if( rc == SIO_CORRUPT_LOG ) ASSERT(ue.len > 0 && ue.offset + ue.len <= size);
        prev = ue.offset;
        continue;
      }
      ASSERT(ue.offset + HDR + STATEIO_ENTRY_HEADER + ue.len <= ue.end && ue.end <= size);
      ASSERT(ue.len == 0 || ue.data != NULL);
      ASSERT(stateio_updates_seq(u) == ++seq);
      if( snap_known ) ASSERT(spans_has(&all, ue.offset, ue.end));
      prev = ue.offset + 1;
    }
    stateio_updates_close(u);
  }
  stateio_epoch_clear(&st);

  /* The check: problems in order; a log with none restores cleanly. */
  check_state cs = { size, 0, 0 };
  ASSERT(stateio_check(&img, check_cb, &cs) == SIO_OK);
  if( damaged ) ASSERT(cs.n > 0);
  if( cs.n == 0 && size > 0 ){
    ASSERT(rrc == SIO_OK);
    ASSERT(update_errors == 0);
  }
  free(all.v);
  return 0;
}
