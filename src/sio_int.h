/* SPDX-License-Identifier: MIT */
/*
** sio_int.h - internals shared by the library's files; not installed.
** The allocator lives in one place (alloc.c) and every system call that
** changes a file goes through os.c, where tests can inject faults.
*/
#ifndef STATEIO_SIO_INT_H
#define STATEIO_SIO_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "logio.h"

void *sio_malloc(size_t n);
void *sio_realloc(void *p, size_t n);
char *sio_strdup(const char *s);
void sio_free(void *p);   /* stateio_free() is the public name (stateio.h) */

/* Read exactly n bytes at off (loops over short reads); STATEIO_OK or STATEIO_IOERR. */
int sio_pread_full(int fd, void *buf, size_t n, uint64_t off);
struct stateio_image;
/* Copy bytes [off, off+n) of an image to dst: the file first, then the tail. */
int sio_image_read(const struct stateio_image *img, uint64_t off, size_t n, unsigned char *dst);

/*
** The calls that change files (os.c). Each passes through the test hooks
** (stateio.h) with `file` (STATEIO_FILE_LOG, _COMMIT, _COMPACT, _DIR) and
** the file's name (may be NULL), retries EINTR, and returns STATEIO_OK or
** STATEIO_IOERR with errno set.
*/
/* Write exactly n bytes at off (loops; an injected short write is ENOSPC). */
int sio_pwrite_full(int fd, int file, const char *name, const void *buf,
                    size_t n, uint64_t off);
int sio_fdatasync(int fd, int file, const char *name);
int sio_fsync(int fd, int file, const char *name);
int sio_ftruncate(int fd, int file, const char *name, uint64_t len);
int sio_rename(int file, const char *from, const char *to);
int sio_unlink(int file, const char *path);
/*
** Create path anew, read-write (PATH-commit.tmp, PATH.compact: names only
** stateio makes): one that a crashed run left is removed first, and
** O_EXCL makes sure a symbolic link planted at the name is replaced, never
** followed (an open with O_TRUNC would write into the file it names).
*/
int sio_create_fresh(const char *path, int file, int mode, int *pfd);
/* fsync the directory that holds path. */
int sio_sync_dir(const char *path);
/*
** Open path with flags (| O_NONBLOCK | O_CLOEXEC) and refuse anything but
** a regular file before a byte is read: STATEIO_NOTLOG for a device or a pipe,
** STATEIO_IOERR with EISDIR for a directory. Creating or writable opens are
** shown to the hooks ("create", "open").
*/
int sio_open_regular(const char *path, int file, int flags, int mode, int *pfd);
/* The same, and the open file's fstat() in *pst. */
struct stat;
int sio_open_regular_st(const char *path, int file, int flags, int mode, int *pfd,
                        struct stat *pst);
/*
** fork(): a writer belongs to the process that opened it. Its child shares
** the writer's descriptors and so its flock (one lock per open file
** description): an append or an unlock there would break the parent's
** lock. sio_watch_forks() starts counting the fork()s of this process (a
** pthread_atfork() child handler; STATEIO_NOMEM if it cannot be set) and
** gives the count now; sio_forked_since(count) says whether this is
** another process than the one that had that count (a child of fork()).
*/
int sio_watch_forks(unsigned *count);
int sio_forked_since(unsigned count);
/*
** Give the new file fd (one of a log's own: its commit file, compaction's
** new log) the log's permission bits (like->st_mode & bits) exactly,
** whatever the umask, and the log's group, and, when running as root, its
** owner, as SQLite does for its journal and WAL: a root process, or a
** member of the log's group, that creates the file must not lock the
** log's owner or group out of it. A process that is not root and not in
** the log's group cannot give it the group: the file keeps the process's
** (as cp -p does), with the log's permission bits.
*/
int sio_match_owner(int fd, int file, const char *name, const struct stat *like, mode_t bits);
/*
** Whether path names the file st describes now: a file renamed over (by
** compaction, or by hand) or removed since it was opened is no longer it.
*/
int sio_path_names(const char *path, const struct stat *st);
/*
** The name a log's own files go by, allocated and absolute: path against
** the working directory, or the file it leads to when path is a symbolic
** link. The commit file (PATH-commit) and compaction's new log sit beside
** the file itself, so every process sees one commit file whichever link
** it names the log by, compaction replaces the file, not a link to it,
** and a writer that keeps the name finds them after a chdir() (SQLite
** keeps its journal beside the file a link names, by its full path, in
** the same way). NULL when out of memory.
*/
char *sio_log_path(const char *path);
/* path followed by suffix, allocated; NULL when out of memory. */
char *sio_suffixed(const char *path, const char *suffix);
/*
** Whether a file may be named path: not when a name on it is longer than
** its file system allows (ENAMETOOLONG). A log's own files add a suffix
** to its name (PATH-commit.tmp is the longest), so a log whose name
** leaves no room for them cannot be written here.
*/
int sio_name_fits(const char *path);
/* flock(fd, how), EINTR retried: STATEIO_OK, STATEIO_BUSY (EWOULDBLOCK) or STATEIO_IOERR. */
int sio_flock(int fd, int file, const char *name, int how);
/* A named step for the hooks ("compact:written" ...): STATEIO_IOERR if one fails it. */
int sio_step(const char *name, const char *path);

/* ------------------------------------------------------------ commit.c */

/*
** The commit file PATH-commit (doc/COMMIT.md): one 64-byte record at
** offset 0 and a waiter's mark at offset 512, in a file of
** SIO_COMMIT_FILE_SIZE bytes.
*/
#define SIO_COMMIT_FILE_SIZE 1024
#define SIO_REC_SIZE 72
#define SIO_WAIT_OFF 512
#define SIO_WAIT_SIZE 32

#define SIO_REC_INFLIGHT 1   /* a commit is being written: [l0, l1) with hash */
#define SIO_REC_DONE     2   /* the last commit is done (or was cut back) */
#define SIO_REC_CUT      3   /* the log must be cut back to l0 */
#define SIO_REC_SYNCED   0x1 /* flags: the commit's bytes were synced before it was done */
#define SIO_L1_UNKNOWN   UINT64_MAX   /* a bulk batch whose end is not known yet */

typedef struct sio_rec {
  unsigned state, flags;
  uint64_t seq, log_id, l0, l1, hash;
  uint64_t fp;             /* the log's bytes before sio_rec_anchor() (sio_log_fingerprint) */
} sio_rec;

/*
** A record's fingerprint covers the log's last bytes (up to SIO_FP_LEN)
** before its anchor: a done record's l1, any other's l0: bytes that were
** in the log, committed, when the record was written. A record whose
** fingerprint does not match the log (the file was rewritten in place, say
** by cp over it) is not the log's own, like one of another log's identity.
*/
#define SIO_FP_LEN 64
uint64_t sio_rec_anchor(const sio_rec *r);
int sio_log_fingerprint(int fd, uint64_t anchor, uint64_t *fp);
/* The fingerprint of p[0..n), the last bytes before an anchor. */
uint64_t sio_fingerprint_of(const unsigned char *p, size_t n);
/*
** Whether r is the record of the log open on fd (identity id, size bytes):
** its identity, its ranges inside the file, its fingerprint.
*/
int sio_rec_own(int fd, const sio_rec *r, uint64_t id, uint64_t size, int *own);

/* PATH-commit for the log at path (malloc'd), or NULL when out of memory. */
char *sio_commit_path(const char *path);
void sio_rec_encode(const sio_rec *r, unsigned char out[SIO_REC_SIZE]);
/* STATEIO_OK, or STATEIO_CORRUPT_COMMIT for a bad magic, version, state or checksum. */
int sio_rec_decode(const unsigned char in[SIO_REC_SIZE], sio_rec *r);

/* The identity a record carries for the log open on fd (stateio_log_id). */
int sio_log_id(int fd, uint64_t *id);

/*
** Read the record (and the waiter's mark) of the commit file open on cfd.
** STATEIO_CORRUPT_COMMIT when the file has the wrong size or a record
** that does not decode (a read that races a write is retried first).
*/
typedef struct sio_waiter {
  uint64_t token, since, until;   /* 0: nobody waits */
} sio_waiter;
int sio_commit_read(int cfd, sio_rec *r, sio_waiter *wt);
/* Write r at offset 0 of cfd; fdatasync it when sync. */
int sio_commit_write(int cfd, const char *cpath, const sio_rec *r, int sync);
/*
** Create cpath holding r, crash-safe: written to cpath.tmp, synced,
** renamed, the directory synced; with the permissions (and, as root, the
** owner) of the log, log_st. *pcfd: the new file open read-write.
** tmp: the name it is written under first (cpath.tmp, the caller's). A
** failure names the file in *errfile: cpath, tmp, or NULL for the directory.
*/
int sio_commit_create(const char *cpath, const char *tmp, const sio_rec *r,
                      const struct stat *log_st, int *pcfd, const char **errfile);

/*
** Recovery of the log open read-write on fd (size bytes) under its write
** lock, given its record *r (in flight or cut, and the log's own):
** an in-flight batch whose bytes [l0, l1) are all there with their hash is
** committed (the log is synced, the record marked done); anything else is
** cut back to l0, the cut synced, and a done record synced. *r is updated
** to the record written; *end to where the commits end. Failures name the
** file in *errfile (path or cpath).
*/
int sio_commit_recover(int fd, const char *path, int cfd, const char *cpath,
                       sio_rec *r, uint64_t size, uint64_t *end,
                       const char **errfile);

/*
** The readers' view of the log open on fd (read-only is fine) at path:
** seqlock read of the commit file's record around an fstat of the log.
** Sets img->file_size (the visible size: nothing in flight, nothing
** failed), img->journaled and img->committed. A record in flight with the
** lock free is recovered (with a read-write descriptor when the files can
** be written, else decided in memory, changing nothing). lock_fd: a
** descriptor of the log to try the lock on and recover with (-1: open one);
** cfd: the commit file if already open (-1: open it).
*/
int sio_commit_view(int fd, const char *path, int lock_fd, int cfd,
                    stateio_image *img);

/*
** Open the commit file cpath (flags: O_RDWR for lockers, O_RDONLY for
** readers) into *pcfd, if it exists and is not open yet (*pcfd stays -1
** when there is none): the one place that says what a commit file is. A
** file of another size, or not a regular file: STATEIO_CORRUPT_COMMIT.
*/
int sio_commit_open(const char *cpath, int flags, int *pcfd);

/*
** Take the write lock of the log open on fd (named path), waiting up to
** timeout_ms (0: try once) with SQLite's backoff. *pcfd is its commit file
** cpath, or -1: once the lock is held, the file is looked for again (only
** a locker creates one, so the look under the lock is the one that counts)
** and opened into *pcfd. The lock reads its record into *r (r->state 0
** when there is no record) and honours a waiter's mark there: a locker
** that has not waited itself lets an earlier waiter in (STATEIO_BUSY /
** waits on), and one that waits marks the file so that lockers that keep
** coming let it in. token names this locker. STATEIO_OK, STATEIO_BUSY,
** STATEIO_IOERR, STATEIO_CORRUPT_COMMIT; *bad is cpath when the commit
** file failed, else path.
*/
int sio_lock_wait(int fd, const char *path, const char *cpath, int *pcfd,
                  int timeout_ms, uint64_t token, sio_rec *r, const char **bad);
/* A token for sio_lock_wait() unique to the caller (its address, pid, time). */
uint64_t sio_lock_token(const void *owner);

/* A writer on a descriptor whose errors and hook calls name `name` as file `file`. */
struct stateio_writer;
int sio_writer_open_named(struct stateio_writer **pp, int fd, int file,
                          const char *name);

/*
** Where an appending writer must go on: the end of the last complete entry
** of img (*end), damaged or not, and the epoch in force there (*epoch);
** whatever lies past *end is a torn tail, to be cut before appending.
** *start_at: where the next entry must begin (*end, or the next block
** boundary after a damaged last entry: zero padding goes in between).
** STATEIO_NOTLOG when img holds nothing of a log; STATEIO_CORRUPT_* when the end of
** the log cannot say which epoch is current.
*/
struct stateio_image;
int sio_log_end(const struct stateio_image *img, uint64_t *end, uint64_t *epoch,
                uint64_t *start_at);

/* Little-endian helpers. */
static inline uint64_t sio_get64(const unsigned char *p){
  uint64_t v = 0;
  for(int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static inline void sio_put64(unsigned char *p, uint64_t v){
  for(int i = 0; i < 8; i++){ p[i] = (unsigned char)v; v >>= 8; }
}

#endif
