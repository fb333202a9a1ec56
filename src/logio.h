/* SPDX-License-Identifier: MIT */
/*
** logio.h - the block log: layer 1 of the stateio format (doc/FORMAT.md).
** Internal to the library (not installed): programs use stateio.h.
**
** A log is a sequence of 32 KiB blocks holding records (15-byte header,
** then payload). An entry is one FULL record, or FIRST, MIDDLE*, LAST.
** This layer knows nothing of snapshots and updates; see stateio.h.
**
** Every function that can fail returns a status code (STATEIO_OK on success,
** see the enum below); nothing here prints, exits or calls SQLite.
*/
#ifndef STATEIO_LOGIO_H
#define STATEIO_LOGIO_H

#include <stddef.h>
#include <stdint.h>

#include "stateio.h"   /* the status codes and stateio_image */

#ifdef __cplusplus
extern "C" {
#endif

#define LOGIO_BLOCK  32768   /* bytes in a block */
#define LOGIO_HEADER 15      /* bytes in a record header */

/* Record types (the header's type byte). */
#define LOGIO_FULL   1
#define LOGIO_FIRST  2
#define LOGIO_MIDDLE 3
#define LOGIO_LAST   4

/*
** Where an entry appended to a log of `off` bytes starts, as the reference
** computes it: off rounded up to the next block when the rest of the block
** is too small for a header and one byte (BLOCK - off%BLOCK <= HEADER).
*/
uint64_t logio_aligned(uint64_t off);

/*
** Bytes that appending an entry of `len` payload bytes to a log of `off`
** bytes adds to the file: padding, record headers and payload.
** len must be > 0 (an empty entry is never written).
*/
uint64_t logio_encoded_size(uint64_t off, uint64_t len);

/*
** Encode the entry whose payload is head[0..head_len) followed by
** data[0..data_len), as appended to a log of `off` bytes, into out (which
** must hold logio_encoded_size(off, head_len + data_len) bytes). Writes the
** padding (zeros), then FULL or FIRST, MIDDLE..., LAST records. Sets *start to
** the file offset where the entry's first record begins. head_len+data_len
** must be > 0. Byte-identical to the reference writer.
*/
void logio_encode(uint64_t off, const void *head, size_t head_len,
                  const void *data, size_t data_len,
                  unsigned char *out, uint64_t *start);

/* One entry returned by a reader. */
typedef struct logio_entry {
  uint64_t offset;             /* where the entry's first record starts */
  uint64_t end;                /* one past the entry's last record */
  const unsigned char *data;   /* payload; valid until the next call on the reader */
  size_t len;                  /* payload length */
} logio_entry;

/* A forward reader over a log image. */
typedef struct logio_reader logio_reader;

/*
** Open a reader at `start`. If start is a block boundary, records that
** continue an entry begun in an earlier block (MIDDLE/LAST) are skipped
** silently; otherwise start must be where an entry begins. The image is
** copied (its tail buffer is not) and must stay valid while the reader lives.
*/
int logio_reader_open(logio_reader **pp, const stateio_image *img, uint64_t start);

/*
** Open a reader at `end`, the end of a complete entry: whatever starts
** there is read as it stands (a continuation record at a block boundary
** is damage, not the rest of an earlier entry to pass over).
*/
int logio_reader_open_after(logio_reader **pp, const stateio_image *img, uint64_t end);

/*
** Ask a reader that will go through a large part of the image in order
** (a check, a compaction, a full scan) to read ahead and verify checksums
** on a second thread (prefetch.c), from the next entry on. When less than
** 8 MiB is left to read, nothing changes.
*/
int logio_reader_parallel(logio_reader *r);

/*
** Tests only: go parallel however little is left to read (on: 1), so that
** small damaged logs exercise the second thread's verification; 0 restores
** the 8 MiB threshold. Not thread-safe: set it before any reader opens.
*/
void logio_parallel_always(int on);

/*
** Read the next entry.
**   STATEIO_OK           *e holds an entry.
**   STATEIO_CORRUPT_LOG  *e->offset, e->len: a damaged region (bytes that hold
**                    no complete entry) followed by at least one complete
**                    entry; e->data is NULL. The next call goes on past it.
**   STATEIO_TORN         like STATEIO_CORRUPT_LOG, but nothing complete follows:
**                    the region runs to the end of the image and is a torn
**                    append (a crash during the last append: an entry cut
**                    short by the end, or, in a journaled image, damage past
**                    img->committed). The next call returns STATEIO_DONE. A
**                    region at the end that is not torn (a complete entry,
**                    damaged) is STATEIO_CORRUPT_LOG, then STATEIO_DONE.
**   STATEIO_DONE         clean end.
**   STATEIO_IOERR / STATEIO_NOMEM / STATEIO_TOOBIG  the reader cannot go on.
** After damage, reading goes on where the structure proves a record
** starts: the damaged record's own end when its checksum (or the records
** after it) prove it, else the next block (resync.c).
*/
int logio_reader_next(logio_reader *r, logio_entry *e);

/*
** Why the region last reported by logio_reader_next() (STATEIO_CORRUPT_LOG or
** STATEIO_TORN) is damaged, as a short phrase: "checksum mismatch", "bad record
** header", "truncated record", "broken entry sequence", ...
*/
const char *logio_reader_problem(const logio_reader *r);

/* No entry known (logio_damage.entry_start). */
#define LOGIO_NO_ENTRY UINT64_MAX

/*
** What the reader knows of the damaged region it reported last: whether
** its first entry is complete (all of its records present to their full
** length: a FULL record, or FIRST ... LAST), where that entry starts and
** ends, and its first payload bytes (the kind and epoch a state entry would
** have): proven, when a checksum proves the record that holds them (a
** valid record, or a damaged one whose checksum proves it, resync.c's rules
** 1 and 2), else as they stand, which one damaged byte may have changed.
*/
typedef struct logio_damage {
  int complete;
  uint64_t entry_start;    /* LOGIO_NO_ENTRY: the region does not begin with an entry's header */
  uint64_t entry_end;      /* when complete */
  unsigned char head[9];
  size_t head_len;
  int head_proven;         /* head[] is as written */
} logio_damage;
void logio_reader_damage(const logio_reader *r, logio_damage *d);

/*
** The first payload bytes (up to 9: a state entry's kind and epoch) of the
** entry that starts at off, when a valid FULL or FIRST record starts there
** (only that record is checked: O(one block), not O(entry)). STATEIO_OK, or
** STATEIO_CORRUPT_LOG / STATEIO_NOTFOUND.
*/
int logio_peek_entry(const stateio_image *img, uint64_t off, unsigned char *head,
                     size_t *head_len);

/* Offset of the next byte the reader will parse. */
uint64_t logio_reader_tell(const logio_reader *r);

/* Close a reader (NULL is a no-op). */
void logio_reader_close(logio_reader *r);

/*
** Read the one complete entry that starts exactly at `off`. On STATEIO_OK,
** e->data is a malloc'd copy the caller frees with stateio_free(). Returns
** STATEIO_CORRUPT_LOG (or STATEIO_TORN at the image's end) when no complete, valid
** entry starts at off.
*/
int logio_read_entry_at(const stateio_image *img, uint64_t off, logio_entry *e);

/*
** Rewind: find the last complete entry that ends at or before `limit`.
** Unlike the reference, a damaged record does not stop the search: valid
** records after it in the same block are found too, and an entry counts
** only if every record of it is valid (so a torn final entry is passed
** over). STATEIO_OK with *start, *end; STATEIO_DONE when there is none.
** Costs O(block + size of the entry found) on an undamaged log.
*/
int logio_rewind(const stateio_image *img, uint64_t limit,
                 uint64_t *start, uint64_t *end);

/*
** Whether the image begins as a log does: with a valid FULL or FIRST
** record, or with the beginning of one cut short by the end of the image
** (a crash during the first append), or with a damaged record followed by
** records of a log in the same block. Tells a damaged or torn log from a
** file that is not a log at all. Images of 1..4 bytes are not logs.
*/
int logio_starts_with_record(const stateio_image *img);

/*
** Whether the image holds anything of a log: it begins as one, or a later
** block holds a record (a log whose first block was destroyed, zeroed say,
** is a damaged log, not another kind of file). What "not a stateio log"
** (STATEIO_NOTLOG) means. O(file) for a file that is not a log.
*/
int logio_holds_record(const stateio_image *img);

#ifdef __cplusplus
}
#endif
#endif /* STATEIO_LOGIO_H */
