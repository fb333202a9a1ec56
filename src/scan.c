/* SPDX-License-Identifier: MIT */
/*
** scan.c - the one forward scan over state entries (stateio.h).
**
** The block-log reader (logio.c) yields complete entries and damaged
** regions; this layer decodes each entry as a state entry and applies the
** state log's rules (FORMAT.md, layer 2) as it goes: an update belongs to
** the epoch in force, a snapshot names the epoch before it and begins a
** new one at its own offset. Every caller that walks entries uses it, so
** the rules live here and nowhere else.
*/
#include <string.h>

#include "stateio.h"
#include "sio_int.h"

struct stateio_scan {
  logio_reader *r;
  uint64_t epoch;          /* in force after the last entry, or UNKNOWN */
  uint64_t torn_off, torn_len;
  int done;
};

int stateio_scan_open(stateio_scan **pp, const stateio_image *img,
                      uint64_t start, uint64_t epoch){
  *pp = NULL;
  stateio_scan *s = sio_malloc(sizeof(*s));
  if( !s ) return STATEIO_NOMEM;
  memset(s, 0, sizeof(*s));
  s->epoch = start == 0 ? 0 : epoch;
  int rc = logio_reader_open(&s->r, img, start);
  if( rc ){
    sio_free(s);
    return rc;
  }
  *pp = s;
  return STATEIO_OK;
}

void stateio_scan_close(stateio_scan *s){
  if( !s ) return;
  logio_reader_close(s->r);
  sio_free(s);
}

uint64_t stateio_scan_torn(const stateio_scan *s, uint64_t *torn_len){
  *torn_len = s->torn_len;
  return s->torn_off;
}

uint64_t stateio_scan_epoch(const stateio_scan *s){ return s->epoch; }

int stateio_scan_parallel(stateio_scan *s){ return logio_reader_parallel(s->r); }

/*
** Apply the epoch rules to the decoded entry e. Returns the problem, or
** NULL for a good entry; either way the epoch in force moves on as the
** entry says (a bad entry still tells where the log is).
*/
static const char *epoch_rules(stateio_scan *s, const stateio_entry *e){
  const char *why = NULL;
  if( e->kind == STATEIO_SNAPSHOT ){
    /* The epoch before a snapshot lies before it (or is 0 for one at 0). */
    if( e->epoch > e->offset || (e->epoch == e->offset && e->offset != 0) ){
      why = "snapshot names a previous epoch that is not before it";
    }else if( s->epoch != STATEIO_EPOCH_UNKNOWN && e->epoch != s->epoch ){
      why = "snapshot names the wrong previous epoch";
    }
    s->epoch = e->offset;
  }else if( e->epoch > e->offset ){
    why = "update of an epoch that begins after it";
    s->epoch = STATEIO_EPOCH_UNKNOWN;
  }else if( s->epoch == STATEIO_EPOCH_UNKNOWN ){
    s->epoch = e->epoch;
  }else if( e->epoch != s->epoch ){
    why = "update of the wrong epoch";
  }
  return why;
}

int stateio_scan_next(stateio_scan *s, stateio_entry *e){
  memset(e, 0, sizeof(*e));
  if( s->done ) return STATEIO_DONE;
  for(;;){
    logio_entry le;
    int rc = logio_reader_next(s->r, &le);
    if( rc == STATEIO_TORN ){
      s->torn_off = le.offset;
      s->torn_len = le.len;
      continue;                 /* the reader ends next */
    }
    if( rc == STATEIO_DONE ){
      s->done = 1;
      return STATEIO_DONE;
    }
    if( rc == STATEIO_CORRUPT_LOG ){
      e->offset = le.offset;
      e->end = le.offset + le.len;
      e->problem = logio_reader_problem(s->r);
      s->epoch = STATEIO_EPOCH_UNKNOWN;
      return STATEIO_CORRUPT_LOG;
    }
    if( rc ) return rc;
    e->offset = le.offset;
    e->end = le.end;
    if( le.len < STATEIO_ENTRY_HEADER ){
      e->problem = "state entry shorter than 9 bytes";
      s->epoch = STATEIO_EPOCH_UNKNOWN;
      return STATEIO_CORRUPT_ENTRY;
    }
    stateio_entry de;
    if( stateio_parse_entry(le.data, le.len, &de) != STATEIO_OK ){
      e->problem = "bad entry kind";
      s->epoch = STATEIO_EPOCH_UNKNOWN;
      return STATEIO_CORRUPT_ENTRY;
    }
    e->kind = de.kind;
    e->epoch = de.epoch;
    e->data = de.data;
    e->len = de.len;
    e->problem = epoch_rules(s, e);
    return e->problem ? STATEIO_CORRUPT_ENTRY : STATEIO_OK;
  }
}
