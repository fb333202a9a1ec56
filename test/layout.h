/* SPDX-License-Identifier: MIT */
/*
** layout.h - where the block log puts an entry, computed from the format
** (doc/FORMAT.md) on its own, not with src/: the oracles of the crash,
** damage and fuzz tests predict with it where each entry they write lies,
** and then check the library against the prediction. Also the golden
** vectors' data generator.
**
**   layout_aligned(off)          where an entry appended at off starts: off,
**                                or the next block when too few bytes are
**                                left in this one for a record header
**   layout_entry_end(start, n)   the end of an entry of n payload bytes
**                                (state header included) starting at start
**   layout_landing(start, x)     the file position of byte x of the data of
**                                the state entry starting at start
**   layout_gen(p, len, seed)     ../shared/golden/README.md's data bytes
*/
#ifndef STATEIO_TEST_LAYOUT_H
#define STATEIO_TEST_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "logio.h"
#include "stateio.h"

#define LAYOUT_BLK  ((uint64_t)LOGIO_BLOCK)
#define LAYOUT_HDR  ((uint64_t)LOGIO_HEADER)

static inline uint64_t layout_aligned(uint64_t off){
  uint64_t room = LAYOUT_BLK - off % LAYOUT_BLK;
  return room <= LAYOUT_HDR ? off + room : off;
}

static inline uint64_t layout_entry_end(uint64_t start, uint64_t plen){
  uint64_t pos = start;
  for(;;){
    uint64_t room = LAYOUT_BLK - pos % LAYOUT_BLK - LAYOUT_HDR;
    if( plen <= room ) return pos + LAYOUT_HDR + plen;
    plen -= room;
    pos += LAYOUT_HDR + room;
  }
}

/* The payload fills each block after its record header. */
static inline uint64_t layout_landing(uint64_t start, size_t x){
  uint64_t y = STATEIO_ENTRY_HEADER + x;
  uint64_t room0 = LAYOUT_BLK - start % LAYOUT_BLK - LAYOUT_HDR;
  if( y < room0 ) return start + LAYOUT_HDR + y;
  y -= room0;
  return (start / LAYOUT_BLK + 1 + y / (LAYOUT_BLK - LAYOUT_HDR)) * LAYOUT_BLK + LAYOUT_HDR
         + y % (LAYOUT_BLK - LAYOUT_HDR);
}

static inline void layout_gen(unsigned char *p, size_t len, unsigned seed){
  for(size_t j = 0; j < len; j++) p[j] = (unsigned char)(seed * 131 + j * 7 + (j >> 8));
}

#endif
