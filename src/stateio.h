/* SPDX-License-Identifier: MIT */
/*
** stateio.h - the state log: the stateio format (doc/FORMAT.md), the one
** public header of the library.
**
** Every block-log entry is a state entry: kind (1 update, 2 snapshot),
** an 8-byte epoch field, then the application's data. An epoch is named by
** the file offset of its snapshot; epoch 0 is the first and need not have
** a snapshot. Restore gives the last epoch's snapshot and a reader of its
** updates; a writer appends updates and snapshots, in batches, under an
** advisory lock, with one write() and one fdatasync() per commit.
** A commit is atomic, isolated and durable before it is visible: the
** small commit file PATH-commit beside the log says what a commit is and
** how far readers may see (doc/COMMIT.md); the log's bytes stay the
** reference format.
**
** All functions return STATEIO_* status codes (below). After STATEIO_IOERR,
** errno holds the failing system call's error. Nothing here prints.
**
** Damage, and what the library does with it:
**  - A torn tail (bytes after the last complete entry with no complete entry
**    after them: a crash during the last append) is not an error. Restore
**    ignores it; a writer truncates it (and syncs the cut) before it appends.
**  - A torn commit (a batch the commit file says was in flight, not all of
**    it there) is cut back whole by the next writer, compaction, or a reader
**    that finds the lock free: never half a transaction.
**  - Damage in the middle of the log is never truncated. Readers report it
**    (offset and length) and can go on past it.
**  - A non-empty file in which no block holds a log record is
**    STATEIO_NOTLOG: never truncated, never written to. One that holds
**    records but no complete entry, and does not begin with a record, is
**    damaged from offset 0 (STATEIO_CORRUPT_LOG), never a torn tail.
*/
#ifndef STATEIO_STATEIO_H
#define STATEIO_STATEIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: every function that can fail returns one. */
enum {
  STATEIO_OK = 0,
  STATEIO_DONE,           /* clean end: no more entries */
  STATEIO_CORRUPT_LOG,    /* a damaged region of the block log (bad record, broken sequence) */
  STATEIO_CORRUPT_ENTRY,  /* a complete block-log entry that is not a valid state entry */
  STATEIO_TORN,           /* incomplete or invalid bytes after the last complete entry */
  STATEIO_NOTLOG,         /* no block of the file holds a log record: not a stateio log */
  STATEIO_IOERR,          /* a system call failed; errno says why */
  STATEIO_NOMEM,          /* out of memory */
  STATEIO_BUSY,           /* another open file description holds the log's write lock */
  STATEIO_MISUSE,         /* bad argument or call out of order */
  STATEIO_NOTFOUND,       /* no epoch / entry at the given offset */
  STATEIO_TOOBIG,         /* an entry larger than the format or memory allows */
  STATEIO_CORRUPT_COMMIT  /* the log's commit file PATH-commit is damaged (doc/COMMIT.md) */
};

/* A short, lowercase, static description of a status code. */
const char *stateio_errstr(int rc);

/* Free memory that this library handed to the caller (NULL is a no-op). */
void stateio_free(void *p);

/*
** A log image: the first file_size bytes of file descriptor fd, followed
** by tail_len bytes held in memory at tail. The tail lets a reader see a
** writer's pending (uncommitted) entries as if they were already in the file.
** fd may be -1 when file_size is 0. Readers never read past
** file_size + tail_len, so a file that grows while it is read is seen at
** the size the image was made with.
*/
typedef struct stateio_image {
  int fd;
  uint64_t file_size;
  const unsigned char *tail;
  size_t tail_len;
  /*
  ** What the log's commit file (commit.c) says, for telling a torn commit
  ** from damage at the end of the image. journaled: the log has a commit
  ** file, so every commit but the last was synced before the next began.
  ** committed: bytes before it belong to commits the file records as done,
  ** so damage there is corruption, never a torn tail. Both 0 for a log
  ** written by another program (and for images made by hand).
  */
  int journaled;
  uint64_t committed;
} stateio_image;

/* Total size of the image in bytes. */
uint64_t stateio_image_size(const stateio_image *img);

/* Fill *img for fd with its current size (fstat) and no tail. */
int stateio_image_from_fd(stateio_image *img, int fd);


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
** Decode payload p[0..n) as a state entry. STATEIO_CORRUPT_ENTRY when it is
** shorter than 9 bytes or its kind is neither 1 nor 2.
*/
int stateio_parse_entry(const unsigned char *p, size_t n, stateio_entry *out);

/* One epoch of a log, as restore or stateio_read_epoch() finds it. */
typedef struct stateio_state {
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
} stateio_state;

/*
** Restore the current state of a log image: the last epoch, its snapshot,
** and where its updates start (read them with stateio_updates_open()).
** An empty image is epoch 0 with no snapshot. Errors:
**   STATEIO_CORRUPT_ENTRY  the last entry, or the entry its epoch names, is not
**                      a valid state entry (st->bad_offset says where)
**   STATEIO_CORRUPT_LOG    the current epoch's snapshot is damaged: restore never
**                      falls back to an older epoch (st->bad_offset)
**   STATEIO_NOTLOG         not a stateio log at all
** On success the caller owns st->snapshot: free it with stateio_state_clear().
*/
int stateio_restore(const stateio_image *img, stateio_state *st);

/*
** Read any epoch given its number (from restore, a snapshot's prev_epoch,
** or the epochs of a scan). STATEIO_NOTFOUND when no snapshot starts at
** `epoch` (and epoch is not 0). Walk the chain of epochs backwards with
** st->prev_epoch until an epoch without snapshot or epoch 0.
*/
int stateio_read_epoch(const stateio_image *img, uint64_t epoch, stateio_state *st);

/* Free what an epoch holds and zero it. */
void stateio_state_clear(stateio_state *st);

/*
** Open `path` read-only and make an image of it as readers may see it:
** up to the last commit that is done (doc/COMMIT.md, "Readers"). The
** commit file's record is read around an fstat of the log (seqlock), so
** the image never holds a commit in flight, nor one that failed. A commit
** left in flight by a dead writer (the lock is free) is settled first:
** recovered when the files can be written, else decided in memory (the
** files are not changed). img->journaled and img->committed say what the
** commit file says. Never blocks: a FIFO or device is refused before any
** read, and the lock is only tried. A symbolic link is resolved: the
** commit file is the one beside the file it names (doc/COMMIT.md, "Names").
** STATEIO_IOERR with errno (ENOENT, EACCES, EISDIR for a directory ...);
** STATEIO_NOTLOG for anything but a regular file (/dev/null, a pipe ...);
** STATEIO_CORRUPT_COMMIT when PATH-commit is damaged (wrong size, bad
** checksum): the file named by the status, never silently ignored.
*/
int stateio_open_image(const char *path, stateio_image *img);

/* Close the file of an image made by stateio_open_image(). */
void stateio_close_image(stateio_image *img);

/* Reader of one epoch's updates, in order. */
typedef struct stateio_updates stateio_updates;

/* Open a reader of the updates of epoch st (restored or read). */
int stateio_updates_open(stateio_updates **pp, const stateio_image *img,
                         const stateio_state *st);

/*
** Next update of the epoch:
**   STATEIO_OK            *e is the update: e->offset and e->end (where its
**                         entry lies), e->epoch, e->data and e->len (the
**                         application's bytes, valid until the next call)
**   STATEIO_DONE          the epoch ends (next snapshot, or end of the log;
**                         a torn tail is the end of the log)
**   STATEIO_CORRUPT_LOG   a damaged region [e->offset, e->end) (e->len is its
**                         length, e->data NULL, e->problem why); calling
**                         again goes on
**   STATEIO_CORRUPT_ENTRY an entry at e->offset that is not a valid update of
**                         this epoch; calling again goes on
** The sequence number of the last update returned is stateio_updates_seq().
*/
int stateio_updates_next(stateio_updates *u, stateio_entry *e);

/*
** An epoch whose updates will be read to the end and are many (a restore
** of a long epoch): read ahead and verify checksums on a second thread, as
** stateio_scan_parallel() does, from the next update on (before the first
** stateio_updates_next(), or later); when less than 8 MiB is left it does
** nothing.
*/
int stateio_updates_parallel(stateio_updates *u);

/* 0 for the epoch's first update, 1 for the next ... (-1 before the first). */
int64_t stateio_updates_seq(const stateio_updates *u);

/*
** Restore the log at path in one call (the counterpart of the reference's
** RestoreFile): *state is the current state (its epoch, its snapshot), and
** *updates a reader of the epoch's updates (stateio_updates_next). The
** reader owns the open file and the snapshot's bytes: one
** stateio_updates_close(*updates) releases everything (state->snapshot is
** valid until then). The log is seen as every reader sees it: up to its
** last commit that is done (doc/COMMIT.md). A missing file is
** STATEIO_IOERR with errno ENOENT; on an error nothing is left open and
** state->bad_offset says where the damage is, when it is damage.
*/
int stateio_restore_file(const char *path, stateio_state *state, stateio_updates **updates);

/*
** The same on the caller's descriptor, which stays the caller's (read, not
** closed; it must stay open until the reader is closed). Without a path
** there is no commit file to consult: the log is taken as it is.
*/
int stateio_restore_fd(int fd, stateio_state *state, stateio_updates **updates);

/* Close an update reader (NULL is a no-op). */
void stateio_updates_close(stateio_updates *u);

/*
** Check a whole log and call cb once per problem, in file order, with its
** offset, length and a short phrase ("checksum mismatch", "broken entry
** sequence", "torn tail", "bad entry kind", "update of the wrong epoch",
** ...). A callback that returns non-zero stops the check, and that value is
** returned. STATEIO_OK when the whole log was checked (problems or not).
*/
typedef int (*stateio_check_fn)(void *arg, uint64_t offset, uint64_t length,
                                const char *problem);
int stateio_check(const stateio_image *img, stateio_check_fn cb, void *arg);

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
int stateio_scan_open(stateio_scan **pp, const stateio_image *img,
                      uint64_t start, uint64_t epoch);

/*
** The next entry or damaged region, in file order:
**   STATEIO_OK            *e is a valid state entry that keeps the epoch rules
**                     as far as the scan knows them: an update of the epoch
**                     in force, a snapshot naming the epoch before it
**   STATEIO_CORRUPT_LOG   e->offset, e->end: a damaged region of the block log
**                     (bytes that hold no complete valid entry); e->problem
**   STATEIO_CORRUPT_ENTRY a complete block-log entry that is not a good state
**                     entry: shorter than 9 bytes, an unknown kind, an
**                     update of another epoch, a snapshot whose previous
**                     epoch is wrong; e->problem says which, and kind,
**                     epoch and data are set when the entry decodes
**   STATEIO_DONE          the end of the log; a torn tail, if any, is given by
**                     stateio_scan_torn()
**   STATEIO_IOERR / STATEIO_NOMEM / STATEIO_TOOBIG  the scan cannot go on
** After STATEIO_CORRUPT_* the next call goes on past the entry or region.
** e->data is valid until the next call.
*/
int stateio_scan_next(stateio_scan *s, stateio_entry *e);

/*
** After STATEIO_DONE: where a torn tail begins and how long it is (0 when the
** log ends cleanly): bytes after the last complete entry that hold no
** complete entry (an append cut short by a crash).
*/
uint64_t stateio_scan_torn(const stateio_scan *s, uint64_t *torn_len);

/*
** A scan that will go through much of the log in order (a check, a copy, a
** full read): read ahead and verify checksums on a second thread. Call it
** before the first stateio_scan_next(), or later: it applies to the rest
** of the scan; when less than 8 MiB is left to read it does nothing. In a
** child of fork() the scan goes on without the helper thread (the child
** has none): it reads the rest itself.
*/
int stateio_scan_parallel(stateio_scan *s);

/* The epoch in force after the last entry returned (or UNKNOWN). */
uint64_t stateio_scan_epoch(const stateio_scan *s);

/* Close a scan (NULL is a no-op). */
void stateio_scan_close(stateio_scan *s);

/* ---------------------------------------------------------------- writer */

#define STATEIO_SYNC   0x01  /* fdatasync at every commit: a commit that returned STATEIO_OK is durable */
#define STATEIO_CREATE 0x02  /* stateio_writer_open: create the file if missing */
/*
** STATEIO_EXCLUSIVE: the writer takes the log's lock at its first append
** and keeps it until stateio_writer_close(), as SQLite's
** locking_mode=EXCLUSIVE does: other writers and compaction wait (or get
** STATEIO_BUSY) all that time, and in return a commit costs no lock and no
** look at the file: one pwrite() (and the syncs STATEIO_SYNC asks for).
** Readers are not held back.
*/
#define STATEIO_EXCLUSIVE 0x04

typedef struct stateio_writer stateio_writer;

/*
** Open a writer on `path` (like the reference's NewFileWriter): the epoch
** and the end of the log are read from the file's contents now, and again
** under the write lock when it is first taken (another process may have
** appended meanwhile). Nothing is locked or written until then. The
** writer keeps the commit file PATH-commit (created by the first commit
** that needs it: with STATEIO_SYNC or several entries; created crash-safe
** through PATH-commit.tmp and a rename, the directory synced). A symbolic
** link is resolved first: PATH is the file it names; a relative path is
** taken from the working directory now (a later chdir() changes nothing).
** A file compacted or renamed over is followed to the one the path names
** then.
** STATEIO_IOERR with errno for an unopenable path, or (STATEIO_CREATE with
** STATEIO_SYNC) when the new file's directory cannot be synced; with
** ENAMETOOLONG, before anything is made, when the name leaves no room for
** the commit file's (PATH-commit.tmp is 11 bytes longer than PATH's last
** component; compaction refuses such a log the same way, readers read it);
** STATEIO_NOTLOG / STATEIO_CORRUPT_* are reported by the first append if the file
** is not a healthy log.
*/
int stateio_writer_open(stateio_writer **pp, const char *path, int flags);

/*
** Open a writer on the caller's descriptor (like NewWriter): the log is
** `offset` bytes long and its current epoch is `epoch`. The descriptor is
** not closed by stateio_writer_close(). If, when the lock is taken, the
** file's size is not `offset`, the writer restores from the file instead.
** Without a path there is no commit file: its batches are not atomic
** across a crash (as for a log of another program). Use it on logs that
** have no commit file, or that no path writer uses meanwhile.
*/
int stateio_writer_open_fd(stateio_writer **pp, int fd, uint64_t offset,
                           uint64_t epoch, int flags);

/*
** How long the first append of a batch waits for the write lock while
** another writer (or compaction) holds it, in milliseconds (0, the
** default: STATEIO_BUSY at once). Like SQLite's busy handler, it polls with
** growing sleeps (1, 2, 5, 10 ... 100 ms). A writer that has waited
** announces itself in the commit file, and writers that come later let it
** in first (they wait, or get STATEIO_BUSY with no timeout), so a waiter is
** not starved by writers that commit in a loop.
*/
void stateio_writer_set_timeout(stateio_writer *w, int ms);

/*
** The file the writer's last failure was on: the log's path, PATH-commit,
** the directory (a failed directory sync), or, for compaction's own
** writer, PATH.compact. NULL when the last failure was not a file's (or
** nothing failed since the last append began). Valid while w lives.
*/
const char *stateio_writer_errfile(const stateio_writer *w);

/*
** Start a batch: the entries appended until stateio_writer_commit() are
** kept in memory and written with one write() and one fdatasync() (up to
** stateio_writer_set_spill()'s size; past it the batch goes on as a bulk
** batch). Outside a batch every append is its own commit.
*/
int stateio_writer_begin(stateio_writer *w);

/*
** Start a bulk batch, for loading many entries fast: like a batch, but the
** pending entries are written out in chunks of a few MiB as they come (no
** write per entry, little memory), and synced at commit (two syncs: the
** log, then the commit file, whose sync is the commit point). It is as
** atomic as a batch: before its first chunk the commit file records it in
** flight, and a crash before the commit leaves none of it.
** stateio_writer_rollback() truncates what it wrote.
*/
int stateio_writer_begin_bulk(stateio_writer *w);

/*
** How many bytes of pending entries a batch keeps in memory before it goes
** on as a bulk batch (stateio_writer_begin_bulk()): its bytes then go out
** in chunks behind its record in flight, as SQLite's pager spills its cache
** to the journal. The batch stays as atomic and as invisible to readers
** until its commit, and can still be rolled back, to a mark too; its
** commit takes the bulk batch's syncs. Only a writer on a path spills (it
** needs the commit file). 0: never (the batch is written at its commit).
** The default is 64 MiB. Below 4 MiB, the size is also that of the chunks
** (a bulk batch's too).
*/
void stateio_writer_set_spill(stateio_writer *w, size_t bytes);

/*
** Append an update / a snapshot to the current epoch. The first append of
** a batch takes the write lock (waiting as set by
** stateio_writer_set_timeout(); STATEIO_BUSY if another open file description
** holds it), settles a commit a dead writer left in flight, and re-reads
** the end of the file. A snapshot starts a new epoch at aligned(end).
** STATEIO_CORRUPT_COMMIT: PATH-commit is damaged (nothing is written).
*/
int stateio_update(stateio_writer *w, const void *data, size_t len);
int stateio_snapshot(stateio_writer *w, const void *data, size_t len);

/*
** Commit the batch: write it (cutting a torn tail first), sync it, make it
** visible, release the lock (doc/COMMIT.md, "The protocol"):
**  1. the commit file records it in flight: where the log ends before and
**     after it, and the XXH64 of its bytes (synced first when the batch
**     has several entries and STATEIO_SYNC);
**  2. one pwrite() of the batch, one fdatasync() of the log (STATEIO_SYNC):
**     the commit point;
**  3. the record is marked done: readers see the batch from now on.
** A single entry without STATEIO_SYNC skips the commit file (one entry is
** atomic by itself).
**
** Crash atomicity: a crash or kill -9 at any point leaves the whole batch
** or none of it, once the next writer, compaction or reader has recovered
** the log. With STATEIO_SYNC a commit that returned STATEIO_OK survives a
** power loss; no complete entry is ever lost or followed by garbage.
**
** A failed commit leaves nothing: the file is cut back to where the batch
** began, the cut synced, and the batch is gone (the lock is released
** either way). If even the cut fails, the commit file says "cut" and this
** writer, or whoever recovers next, finishes the cut (synced) before any
** later append; readers never see the failed batch meanwhile.
**
** A bulk batch whose chunk could not be written is failed: the file is put
** back to where the batch began, and every later append and the commit
** return the error until stateio_writer_rollback() (commit rolls back).
*/
int stateio_writer_commit(stateio_writer *w);

/*
** Two-phase commit, for SQLite's xSync / xCommit / xRollback: prepare does
** steps 1 and 2 of the commit (the batch is written and synced: durable)
** and keeps the lock; readers do not see it yet. Then either
** stateio_writer_commit() (step 3: visible, lock released) or
** stateio_writer_rollback() (the batch is cut back, the cut synced, the
** record done; as if it had never been). No append between the two
** (STATEIO_MISUSE). On failure prepare undoes the batch as a failed commit
** does, releases the lock and returns the error; the writer is outside a
** batch. A crash between prepare and commit leaves the batch in the log
** (it is durable and whole): a caller that needs the log to agree with
** another store must decide at recovery (doc/COMMIT.md, "Two-phase").
*/
int stateio_writer_prepare(stateio_writer *w);

/*
** After stateio_writer_prepare(), when the commit that should follow does
** not (SQLite's own commit failed, and its transaction stays open): take
** the batch back. Its bytes leave the file again (the cut synced, the
** record says nothing is in flight) and are pending in memory, as before
** the prepare, so that the batch can grow, be rolled back to a mark, be
** prepared again or rolled back. The lock is kept. STATEIO_OK when nothing was
** prepared. A bulk (or spilled) batch whose chunks were out stays in the
** file instead, its record back to "in flight, end unknown"; if that record
** cannot be written, the batch is failed (cut away: only rollback goes on).
*/
int stateio_writer_reopen(stateio_writer *w);

/* Discard the batch (also after prepare, or after chunks of a bulk batch were written) and release the lock. */
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

/*
** Where the entry the last stateio_update() or stateio_snapshot() appended
** begins (a file offset; a snapshot's is the epoch it begins): what a
** follower keeps to read on from, what SQL shows as the rowid.
*/
uint64_t stateio_writer_last_offset(const stateio_writer *w);

/* Current epoch (including pending snapshots) and the number of pending entries. */
uint64_t stateio_writer_epoch(const stateio_writer *w);
uint64_t stateio_writer_pending_count(const stateio_writer *w);

/* Whether the writer holds the lock (inside a batch, after its first append). */
int stateio_writer_locked(const stateio_writer *w);

/*
** An image of the log as the writer sees it. While locked: the committed
** file (without its torn tail) followed by the pending entries. Otherwise
** what readers see (stateio_open_image(): up to the last commit that is
** done), following a replaced (compacted) file. Valid until the next call
** on the writer.
*/
int stateio_writer_image(stateio_writer *w, stateio_image *img);

/*
** Roll back any open batch, release the lock, close the file (if owned).
**
** A writer belongs to the process that opened it. In a child of fork(),
** which shares its descriptors and so its lock, every call on it that
** would touch the files returns STATEIO_MISUSE, and rollback and close
** only forget it: the parent's lock and batch are left whole. A child
** opens its own writer.
*/
int stateio_writer_close(stateio_writer *w);

/* ---------------------------------------------------------- compaction */

/* Which of a log's files an operation or a failure is on (compaction's errfile, the os hook). */
#define STATEIO_FILE_LOG     1   /* the log, PATH */
#define STATEIO_FILE_COMMIT  2   /* its commit file, PATH-commit (and PATH-commit.tmp) */
#define STATEIO_FILE_COMPACT 3   /* compaction's new log, PATH.compact */
#define STATEIO_FILE_DIR     4   /* the directory that holds them */

typedef struct stateio_compact_info {
  int compacted;           /* 0: nothing before the kept epochs, file untouched */
  uint64_t old_size;       /* file size before */
  uint64_t new_size;       /* file size after */
  uint64_t dropped_bytes;  /* bytes of the old file before the first kept snapshot */
  uint64_t new_epoch;      /* the current epoch's number in the new file */
  uint64_t bad_offset;     /* on a corruption error: where */
  int errfile;             /* on an error: the file it is on (STATEIO_FILE_*), 0 if none */
} stateio_compact_info;

/*
** Compact the log at path, keeping its last `keep` epochs (keep >= 1; 1
** keeps the current epoch only: its snapshot and the updates after it).
** The new log restores to exactly the same state and updates. Epoch
** numbers change (they are offsets): the oldest kept snapshot moves to
** offset 0 and becomes epoch 0. A torn tail is dropped when the file is
** rewritten (with nothing to drop, the file is left untouched, tail and all).
**
** Crash-safe: the log is recovered first (a dead writer's commit settled);
** the new log is written to PATH.compact and synced; PATH-commit gets the
** new log's record (its identity, all of it done) and is synced; then
** PATH.compact is renamed over path and the directory is synced. Any crash
** leaves the old log (with its own record, or one that is stale for it:
** taken as it is) or the new log with its own, never a mix. The log's
** write lock is held meanwhile: STATEIO_BUSY if a writer holds it.
** Writers and readers that have the old file open notice the new one when
** they next lock or take an image (its link count is 0; with another name,
** a hard link, the path names another file). A symbolic link is resolved:
** the file it names is compacted, the link stays. The new log gets the old
** one's permissions, whatever the umask, its group (made by root or by a
** member of the group) and, made by root, its owner. Damage in the
** kept epochs: STATEIO_CORRUPT_* and nothing changes (info->bad_offset says
** where). On any error info->errfile names the file (STATEIO_FILE_LOG,
** _COMMIT, _COMPACT for PATH.compact, _DIR). The test hooks are also
** called with op "compact:written", "compact:synced", "compact:commit"
** and "compact:renamed" between the steps.
*/
int stateio_compact(const char *path, unsigned keep, stateio_compact_info *info);

/*
** The same, waiting up to timeout_ms for the write lock (as
** stateio_writer_set_timeout() does; 0: stateio_compact()). A compaction
** that waits announces itself, so writers that keep committing let it in.
*/
int stateio_compact_wait(const char *path, unsigned keep, int timeout_ms,
                         stateio_compact_info *info);

/*
** A positive 63-bit identity of the log file open on fd, for followers: a
** reader that keeps (log_id, offset) knows its offset is stale when the
** log_id of the file at the path changes (the log was compacted: offsets
** of the new file mean other entries).
*/
int stateio_log_id(int fd, int64_t *id);

/* --------------------------------------------------------- testing hooks */

/*
** Fault injection for tests (the old hook, kept as it was). Before each
** write, fdatasync, fsync and ftruncate of the log (and of PATH.compact)
** the library calls fn(arg, op, &n) with op "write", "fdatasync", "fsync"
** or "ftruncate" and n the byte count (write) or length (ftruncate); the
** commit file's are "commit:write" and "commit:fdatasync"; other
** operations are "create", "open", "rename", "unlink", "syncdir", "flock",
** "unlock", "chmod", "chown" and compaction's steps. A non-zero return is the errno the call
** fails with (EINTR: the call is retried, as a real EINTR is); fn may
** instead lower n for a write to make it short. NULL removes the hook.
*/
typedef int (*stateio_fault_fn)(void *arg, const char *op, size_t *n);
void stateio_set_fault_hook(stateio_fault_fn fn, void *arg);

/*
** The os hook: every operation that changes a file, or locks one, with
** what a crash simulator needs to record it. Called twice: before the
** call (after == 0: a non-zero return fails it with that errno, EINTR
** retries it, lowering len makes a write short, sleeping delays it), and
** after it succeeded (after == 1: the return value is ignored; len is what
** was written). Ops: "write" (offset, data, len), "fdatasync", "fsync",
** "ftruncate" (offset: the new length), "create" and "open" (offset: the
** open flags; only opens that create or may write), "rename" (path ->
** path2), "unlink", "syncdir" (path: the directory), "flock" and
** "unlock" (offset: the flock operation), "chmod" (offset: the mode) and
** "chown" of a file the library made (its commit file, PATH.compact: the
** log's permissions and owner), and compaction's steps
** ("compact:written", ...). file says which of the log's files it is
** (STATEIO_FILE_*), path its name (NULL for a caller's descriptor).
** Both hooks are process-wide and not thread-safe to change.
*/
typedef struct stateio_os_op {
  const char *op;
  int file;                /* STATEIO_FILE_* */
  const char *path;
  const char *path2;       /* rename: the new name */
  uint64_t offset;
  const void *data;
  size_t len;
  int after;               /* 0: before the call; 1: after it succeeded */
} stateio_os_op;
typedef int (*stateio_os_hook)(void *arg, stateio_os_op *op);
void stateio_set_os_hook(stateio_os_hook fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* STATEIO_STATEIO_H */
