/* SPDX-License-Identifier: MIT */
/*
** record.h - one record of the block log (FORMAT.md, layer 1): where the
** fields of its header lie, how a header is decoded and checked, and the
** recovery policy that decides where a reader may go on after a damaged
** record (resync.c). Internal to the library.
**
**   offset  size  field
**   0       4     checksum: low 32 bits of XXH64 (seed 0) of bytes 4..end
**   4       1     type: FULL 1, FIRST 2, MIDDLE 3, LAST 4
**   5       2     length of the payload
**   7       8     offset: from the entry's first record to this one
**   15      len   payload
*/
#ifndef STATEIO_RECORD_H
#define STATEIO_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "logio.h"

#define REC_CHECKSUM 0
#define REC_TYPE     4
#define REC_LENGTH   5
#define REC_OFFSET   7
#define REC_HEADER   LOGIO_HEADER
#define REC_BLOCK    ((uint64_t)LOGIO_BLOCK)

/* No entry is being assembled (resync's ent_start). */
#define REC_NONE UINT64_MAX

/* A record header, decoded (the fields as stored, or as a repair has them). */
typedef struct sio_record {
  uint64_t pos;                  /* file offset of the header */
  uint32_t checksum;             /* as stored */
  int type;
  size_t len;
  uint64_t off;
  const unsigned char *payload;  /* the bytes after the header */
} sio_record;

/*
** The bytes of one block that a reader holds: p[0..n) are the block's
** bytes from its start, file offset base (a multiple of the block size).
** n is less than a block when the image (or the reader's limit) ends in
** the block. image_end: base + n is the end of the image itself, so a
** record running past it was cut short (a torn append), not merely left
** outside the reader's window.
*/
typedef struct sio_block {
  const unsigned char *p;
  uint64_t base;
  size_t n;
  int image_end;
} sio_block;

static inline uint64_t rec_block_end(uint64_t pos){
  return pos - pos % REC_BLOCK + REC_BLOCK;
}

/* The header at p, for a record at file offset pos. */
void sio_record_decode(const unsigned char *p, uint64_t pos, sio_record *h);

/*
** Whether h is a header a writer of the format could have written,
** judged without its checksum: type 1..4, a length > 0 that keeps the
** record inside its block, offset 0 for FULL/FIRST, and for MIDDLE/LAST a
** block boundary and an offset reaching back no further than the start of
** the file; FIRST and MIDDLE fill their block to its end.
*/
int sio_record_plausible(const sio_record *h);

/* The checksum a record with these fields and this payload has. */
uint32_t sio_record_sum(int type, size_t len, uint64_t off,
                        const unsigned char *payload);

/* Write a header (checksum included) for payload[0..len) at out. */
void sio_record_encode(unsigned char *out, int type, size_t len, uint64_t off,
                       const unsigned char *payload);

/*
** Parse the record at pos in block b. Returns 1 for a valid record
** (plausible header, inside the block's bytes, checksum matches), else 0
** with *why set and *truncated set when a plausible header runs past the
** end of the image (or the image ends inside the header).
*/
int sio_record_parse(const sio_block *b, uint64_t pos, sio_record *rec,
                     const char **why, int *truncated);

/*
** How many bytes from the start of block b (b->base a block boundary) form
** an unbroken chain of valid records: the records a reader that enters
** the block at its start finds valid, one after the other.
*/
size_t sio_block_chain(const sio_block *b);

/* ------------------------------------------------------------ prefetch.c */

/* Reading ahead and verifying on a second thread (prefetch.c). */
typedef struct sio_prefetch sio_prefetch;
int sio_prefetch_start(sio_prefetch **pp, const stateio_image *img, uint64_t from, uint64_t total);
/*
** The chunk of whole blocks that holds off, read and verified: its bytes
** p[0..n) from file offset base, and chain[i], the bytes from the start of
** its block i that form a chain of valid records (sio_block_chain).
** Only for the reader's chunk and the next one: STATEIO_NOTFOUND for any other
** (the caller reads it itself).
*/
int sio_prefetch_get(sio_prefetch *pf, uint64_t off, const unsigned char **p,
                     uint64_t *base, size_t *n, const uint32_t **chain);
void sio_prefetch_stop(sio_prefetch *pf);

/* ------------------------------------------------------------ resync.c */

/* What the recovery policy found about a damaged record. */
typedef struct sio_resync {
  uint64_t next;      /* where the reader goes on: the damaged record's proven
                      ** end, or the end of the block's bytes */
  int proven;         /* next is the record's end, proven (see resync.c) */
  const char *why;    /* what is wrong with the record */
  int plausible;      /* rec is a header a writer could have written (as
                      ** stored, or with its one damaged field repaired) */
  sio_record rec;     /* that header (when plausible) */
  int truncated;      /* the record runs past the end of the image: a torn
                      ** append (nothing after it is a record) */
} sio_resync;

/*
** The record at pos in block b did not parse. Decide where reading may go
** on (resync.c explains the policy). ent_start: where the entry being
** assembled began (a damaged MIDDLE/LAST may have its offset repaired from
** it), or REC_NONE. opens: an entry must open at pos (the record before
** it was a valid FULL or LAST, or reading began at pos, an entry's start),
** so a damaged header there is read as a FULL or FIRST, never as the
** continuation of an entry that never began.
*/
void sio_resync_after(const sio_block *b, uint64_t pos, uint64_t ent_start, int opens,
                      sio_resync *out);

/*
** Whether a record lies anywhere in block b at or after from: a valid one,
** or a FULL/FIRST header a writer could have written whose length ends it
** at a record boundary (a search, used only as evidence: a damaged region
** with records written after the damage is not an append cut short;
** nothing found this way is ever read as a record).
*/
int sio_block_has_record(const sio_block *b, uint64_t from);

#endif /* STATEIO_RECORD_H */
