/*
** stateio.h - the state log: layer 2 of the stateio format (../shared/FORMAT.md).
**
** Every block-log entry is a state entry: kind (1 update, 2 snapshot),
** an 8-byte epoch field, then the application's data. An epoch is named by
** the file offset of its snapshot; epoch 0 is the first and need not have
** a snapshot. Restore gives the last epoch's snapshot and a reader of its
** updates; a writer appends updates and snapshots, in batches, under an
** advisory lock, with one write() and one fdatasync() per commit.
**
** All functions return SIO_* status codes from logio.h. After SIO_IOERR,
** errno holds the failing system call's error. Nothing here prints.
**
** Damage, and what the library does with it:
**  - A torn tail (bytes after the last complete entry with no complete entry
**    after them: a crash during the last append) is not an error. Restore
**    ignores it; a writer truncates it before it appends.
**  - Damage in the middle of the log is never truncated. Readers report it
**    (offset and length) and can go on past it.
**  - A non-empty file with no complete entry and no valid record at offset 0
**    is SIO_NOTLOG: never truncated, never written to.
*/
#ifndef STATEIO_STATEIO_H
#define STATEIO_STATEIO_H

#include "logio.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
** The version of the library: STATEIO_VERSION is the text "X.Y.Z" and
** STATEIO_VERSION_NUMBER is X*1000000 + Y*1000 + Z (SQLite's scheme), for
** the header a program was compiled with; stateio_version() returns the
** version of the library it runs with.
*/
#define STATEIO_VERSION        "0.9.0"
#define STATEIO_VERSION_NUMBER 9000
const char *stateio_version(void);

#define STATEIO_UPDATE   1
#define STATEIO_SNAPSHOT 2
#define STATEIO_ENTRY_HEADER 9   /* kind u8 + epoch u64 */

/*
** A state entry: decoded from a block-log entry's payload by
** stateio_parse_entry(), or returned by the scan (below), which also says
** where it lies and, for a damaged region or a bad entry, why.
*/
typedef struct stateio_entry {
  int kind;                  /* STATEIO_UPDATE or STATEIO_SNAPSHOT; 0: not decodable */
  uint64_t epoch;            /* update: its epoch; snapshot: the epoch before it */
  const unsigned char *data; /* the application's bytes (points into the payload) */
  size_t len;
  uint64_t offset;           /* scan: where the entry (or damaged region) starts */
  uint64_t end;              /* scan: one past its last record */
  const char *problem;       /* scan: why it is damaged or bad; NULL for a good entry */
} stateio_entry;

/*
** Decode payload p[0..n) as a state entry. SIO_CORRUPT_ENTRY when it is
** shorter than 9 bytes or its kind is neither 1 nor 2.
*/
int stateio_parse_entry(const unsigned char *p, size_t n, stateio_entry *out);

/* One epoch of a log, as restore or stateio_read_epoch() finds it. */
typedef struct stateio_epoch {
  uint64_t epoch;          /* its number: the offset of its snapshot, 0 for the first */
  int has_snapshot;        /* 0: the first epoch, begun without a snapshot */
  uint64_t prev_epoch;     /* the snapshot's epoch field; 0 when there is no snapshot */
  unsigned char *snapshot; /* the snapshot's data (malloc'd; may be NULL when len is 0) */
  size_t snapshot_len;
  uint64_t snapshot_end;   /* end of the snapshot entry (0 without snapshot) */
  uint64_t updates_start;  /* where the reader of its updates starts */
  uint64_t log_end;        /* end of the log's last complete entry (restore only) */
  uint64_t torn_len;       /* bytes of torn tail after log_end (restore only) */
  uint64_t bad_offset;     /* on a corruption error: where the damage is */
} stateio_epoch;

/*
** Restore the current state of a log image: the last epoch, its snapshot,
** and where its updates start (read them with stateio_updates_open()).
** An empty image is epoch 0 with no snapshot. Errors:
**   SIO_CORRUPT_ENTRY  the last entry, or the entry its epoch names, is not
**                      a valid state entry (st->bad_offset says where)
**   SIO_CORRUPT_LOG    the current epoch's snapshot is damaged: restore never
**                      falls back to an older epoch (st->bad_offset)
**   SIO_NOTLOG         not a stateio log at all
** On success the caller owns st->snapshot: free it with stateio_epoch_clear().
*/
int stateio_restore(const logio_image *img, stateio_epoch *st);

/*
** Read any epoch given its number (from restore, a snapshot's prev_epoch,
** or the epochs of a scan). SIO_NOTFOUND when no snapshot starts at
** `epoch` (and epoch is not 0). Walk the chain of epochs backwards with
** st->prev_epoch until an epoch without snapshot or epoch 0.
*/
int stateio_read_epoch(const logio_image *img, uint64_t epoch, stateio_epoch *st);

/* Free what an epoch holds and zero it. */
void stateio_epoch_clear(stateio_epoch *st);

/*
** Open `path` read-only and make an image of it at its current size.
** SIO_IOERR with errno (ENOENT, EACCES, EISDIR for a directory ...);
** SIO_NOTLOG for anything but a regular file (/dev/null, a pipe ...).
*/
int stateio_open_image(const char *path, logio_image *img);

/* Close the file of an image made by stateio_open_image(). */
void stateio_close_image(logio_image *img);

/* Reader of one epoch's updates, in order. */
typedef struct stateio_updates stateio_updates;

/* Open a reader of the updates of epoch st (restored or read). */
int stateio_updates_open(stateio_updates **pp, const logio_image *img,
                         const stateio_epoch *st);

/*
** Next update of the epoch:
**   SIO_OK            e->offset (where the entry starts), e->data/e->len
**                     (the application's bytes, valid until the next call)
**   SIO_DONE          the epoch ends (next snapshot, or end of the log;
**                     a torn tail is the end of the log)
**   SIO_CORRUPT_LOG   damaged region e->offset, e->len; calling again goes on
**   SIO_CORRUPT_ENTRY an entry at e->offset that is not a valid update of
**                     this epoch; calling again goes on
** The sequence number of the last update returned is stateio_updates_seq().
*/
int stateio_updates_next(stateio_updates *u, logio_entry *e);

/* 0 for the epoch's first update, 1 for the next ... (-1 before the first). */
int64_t stateio_updates_seq(const stateio_updates *u);

/* Close an update reader (NULL is a no-op). */
void stateio_updates_close(stateio_updates *u);

/*
** Check a whole log and call cb once per problem, in file order, with its
** offset, length and a short phrase ("checksum mismatch", "broken entry
** sequence", "torn tail", "bad entry kind", "update of the wrong epoch",
** ...). A callback that returns non-zero stops the check, and that value is
** returned. SIO_OK when the whole log was checked (problems or not).
*/
typedef int (*stateio_check_fn)(void *arg, uint64_t offset, uint64_t length,
                                const char *problem);
int stateio_check(const logio_image *img, stateio_check_fn cb, void *arg);

/* ---------------------------------------------------------------- scan */

/*
** The one forward scan over a log's state entries. Every reader that walks
** entries (the update reader, stateio_check, compaction, the extension's
** tables, the command-line tool) goes through it, so what counts as an
** entry, a damaged region, a bad entry or the end of the log is decided
** in one place.
*/
typedef struct stateio_scan stateio_scan;

/* The epoch in force where a scan starts is not known (a seek). */
#define STATEIO_EPOCH_UNKNOWN UINT64_MAX

/*
** Open a scan of img at `start`: 0, a block boundary (records that
** continue an entry begun in an earlier block are skipped), or the offset
** of an entry. `epoch` is the epoch in force at start (0 at offset 0), or
** STATEIO_EPOCH_UNKNOWN. The image must stay valid while the scan lives.
*/
int stateio_scan_open(stateio_scan **pp, const logio_image *img,
                      uint64_t start, uint64_t epoch);

/*
** The next entry or damaged region, in file order:
**   SIO_OK            *e is a valid state entry that keeps the epoch rules
**                     as far as the scan knows them: an update of the epoch
**                     in force, a snapshot naming the epoch before it
**   SIO_CORRUPT_LOG   e->offset, e->end: a damaged region of the block log
**                     (bytes that hold no complete valid entry); e->problem
**   SIO_CORRUPT_ENTRY a complete block-log entry that is not a good state
**                     entry: shorter than 9 bytes, an unknown kind, an
**                     update of another epoch, a snapshot whose previous
**                     epoch is wrong; e->problem says which, and kind,
**                     epoch and data are set when the entry decodes
**   SIO_DONE          the end of the log; a torn tail, if any, is given by
**                     stateio_scan_torn()
**   SIO_IOERR / SIO_NOMEM / SIO_TOOBIG  the scan cannot go on
** After SIO_CORRUPT_* the next call goes on past the entry or region.
** e->data is valid until the next call.
*/
int stateio_scan_next(stateio_scan *s, stateio_entry *e);

/*
** After SIO_DONE: where a torn tail begins and how long it is (0 when the
** log ends cleanly): bytes after the last complete entry that hold no
** complete entry (an append cut short by a crash).
*/
uint64_t stateio_scan_torn(const stateio_scan *s, uint64_t *torn_len);

/*
** A scan that will go through much of the log in order (a check, a copy, a
** full read): read ahead and verify checksums on a second thread. Call it
** before the first stateio_scan_next(); below 8 MiB to read it does nothing.
*/
int stateio_scan_parallel(stateio_scan *s);

/* The epoch in force after the last entry returned (or UNKNOWN). */
uint64_t stateio_scan_epoch(const stateio_scan *s);

/* Close a scan (NULL is a no-op). */
void stateio_scan_close(stateio_scan *s);

/* ---------------------------------------------------------------- writer */

#define STATEIO_SYNC   0x01  /* fdatasync after every commit */
#define STATEIO_CREATE 0x02  /* stateio_writer_open: create the file if missing */

typedef struct stateio_writer stateio_writer;

/*
** Open a writer on `path` (like the reference's NewFileWriter): the epoch
** and the end of the log are read from the file's contents now, and again
** under the write lock when it is first taken (another process may have
** appended meanwhile). Nothing is locked or written until then.
** SIO_IOERR with errno for an unopenable path; SIO_NOTLOG / SIO_CORRUPT_*
** are reported by the first append if the file is not a healthy log.
*/
int stateio_writer_open(stateio_writer **pp, const char *path, int flags);

/*
** Open a writer on the caller's descriptor (like NewWriter): the log is
** `offset` bytes long and its current epoch is `epoch`. The descriptor is
** not closed by stateio_writer_close(). If, when the lock is taken, the
** file's size is not `offset`, the writer restores from the file instead.
*/
int stateio_writer_open_fd(stateio_writer **pp, int fd, uint64_t offset,
                           uint64_t epoch, int flags);

/*
** Start a batch: the entries appended until stateio_writer_commit() are
** kept in memory and written with one write() and one fdatasync(). Outside
** a batch every append is its own commit.
*/
int stateio_writer_begin(stateio_writer *w);

/*
** Start a bulk batch, for loading many entries fast: like a batch, but the
** pending entries are written out in chunks of a few MiB as they come (no
** write per entry, little memory), and synced once at commit. It is not
** atomic across a crash: after one, any prefix of its entries may be in the
** log. stateio_writer_rollback() truncates what it wrote.
*/
int stateio_writer_begin_bulk(stateio_writer *w);

/*
** Append an update / a snapshot to the current epoch. The first append of
** a batch takes the write lock (SIO_BUSY if another open file description
** holds it) and re-reads the end of the file. A snapshot starts a new
** epoch at aligned(end).
*/
int stateio_update(stateio_writer *w, const void *data, size_t len);
int stateio_snapshot(stateio_writer *w, const void *data, size_t len);

/*
** Write the batch (truncating a torn tail first), sync it, release the
** lock. On failure the file is truncated back to where the batch began and
** the batch is gone (the lock is released either way).
**
** Crash atomicity: the format has no commit record, so a batch is one
** write() and one fdatasync(), not an atomic unit on disk. A crash (or
** kill) during commit can leave any prefix of the batch's bytes in the
** file; restore then sees the complete entries of that prefix, and a torn
** tail after them. What the writer promises is that a commit that
** returned SIO_OK with STATEIO_SYNC is durable, and that no complete
** entry is ever lost or followed by garbage.
**
** A bulk batch whose chunk could not be written is failed: the file is put
** back to where the batch began, and every later append and the commit
** return the error until stateio_writer_rollback() (commit rolls back).
*/
int stateio_writer_commit(stateio_writer *w);

/* Discard the batch and release the lock. */
void stateio_writer_rollback(stateio_writer *w);

/*
** A point in a batch to roll back to (a savepoint). Treat it as opaque.
** A mark taken before the batch's first append (before it held the lock)
** rolls back the whole batch, even if other writers appended meanwhile.
*/
typedef struct stateio_mark {
  uint64_t offset;         /* end of the log, pending entries included */
  uint64_t epoch;
  uint64_t count;
} stateio_mark;
stateio_mark stateio_writer_mark(const stateio_writer *w);
void stateio_writer_rollback_to(stateio_writer *w, stateio_mark m);

/* Current epoch (including pending snapshots) and the number of pending entries. */
uint64_t stateio_writer_epoch(const stateio_writer *w);
uint64_t stateio_writer_pending_count(const stateio_writer *w);

/* Whether the writer holds the lock (inside a batch, after its first append). */
int stateio_writer_locked(const stateio_writer *w);

/*
** An image of the log as the writer sees it: the committed file (without
** its torn tail) followed by the pending entries. Valid until the next
** call on the writer. Only meaningful while locked; otherwise it is the
** file as it is now.
*/
int stateio_writer_image(stateio_writer *w, logio_image *img);

/* Roll back any open batch, release the lock, close the file (if owned). */
int stateio_writer_close(stateio_writer *w);

/* ---------------------------------------------------------- compaction */

typedef struct stateio_compact_info {
  int compacted;           /* 0: nothing before the kept epochs, file untouched */
  uint64_t old_size;       /* file size before */
  uint64_t new_size;       /* file size after */
  uint64_t dropped_bytes;  /* bytes of the old file before the first kept snapshot */
  uint64_t new_epoch;      /* the current epoch's number in the new file */
  uint64_t bad_offset;     /* on a corruption error: where */
} stateio_compact_info;

/*
** Compact the log at path, keeping its last `keep` epochs (keep >= 1; 1
** keeps the current epoch only: its snapshot and the updates after it).
** The new log restores to exactly the same state and updates. Epoch
** numbers change (they are offsets): the oldest kept snapshot moves to
** offset 0 and becomes epoch 0. A torn tail is dropped when the file is
** rewritten (with nothing to drop, the file is left untouched, tail and all).
**
** Crash-safe: the new log is written to PATH.compact, synced, renamed over
** path, and the directory is synced. The log's write lock is held
** meanwhile: SIO_BUSY if a writer holds it. Writers and readers that have
** the old file open notice the new one (inode change) when they next lock
** or take an image. Damage in the kept epochs: SIO_CORRUPT_* and nothing
** changes (info->bad_offset says where). The test hook is also called with
** op "compact:written", "compact:synced" and "compact:renamed" between the
** steps.
*/
int stateio_compact(const char *path, unsigned keep, stateio_compact_info *info);

/*
** A positive 63-bit identity of the log file open on fd, for followers: a
** reader that keeps (log_id, offset) knows its offset is stale when the
** log_id of the file at the path changes (the log was compacted: offsets
** of the new file mean other entries).
*/
int stateio_log_id(int fd, int64_t *id);

/* --------------------------------------------------------- testing hook */

/*
** Fault injection for tests. Before each write, fdatasync, fsync and
** ftruncate the library calls fn(arg, op, &n) with op "write", "fdatasync",
** "fsync" or "ftruncate" and n the byte count (write) or length
** (ftruncate). A non-zero return is the errno the call fails with; fn may
** instead lower n for a write to make it short. NULL removes the hook.
*/
typedef int (*stateio_fault_fn)(void *arg, const char *op, size_t *n);
void stateio_set_fault_hook(stateio_fault_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* STATEIO_STATEIO_H */
