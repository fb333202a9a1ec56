/*
** compact.c - dropping old epochs (log truncation).
**
** The kept epochs are re-encoded into PATH.compact beside the log, which is
** synced and renamed over the log, and then the directory is synced: a
** crash at any point leaves either the old log or the new one, never a mix.
** Epoch numbers are file offsets, so they change: the oldest kept snapshot
** lands at offset 0 and names epoch 0.
**
** The log's write lock is held throughout, so no writer appends to the old
** file meanwhile; writers and readers notice the new file by its inode.
*/
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "stateio.h"
#include "sio_int.h"

/* Flush the new file's entries to disk every so many bytes of input. */
#define COMPACT_BATCH (8u << 20)

static int sync_dir_of(const char *path){
  char *copy = sio_strdup(path);
  if( !copy ) return SIO_NOMEM;
  int rc = SIO_IOERR;
  int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if( dfd >= 0 ){
    rc = sio_fsync(dfd);
    close(dfd);
  }
  sio_free(copy);
  return rc;
}

/* Open and lock the file that is at path now (it may be replaced meanwhile). */
static int open_locked(const char *path, int *pfd, struct stat *st){
  for(;;){
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if( fd < 0 ) return SIO_IOERR;
    if( fstat(fd, st) != 0 || !S_ISREG(st->st_mode) ){
      int e = errno;
      close(fd);
      if( S_ISDIR(st->st_mode) ){ errno = EISDIR; return SIO_IOERR; }
      errno = e;
      return S_ISREG(st->st_mode) ? SIO_IOERR : SIO_NOTLOG;
    }
    if( flock(fd, LOCK_EX | LOCK_NB) != 0 ){
      int e = errno;
      close(fd);
      errno = e;
      return e == EWOULDBLOCK ? SIO_BUSY : SIO_IOERR;
    }
    struct stat now;
    if( stat(path, &now) == 0 && now.st_ino == st->st_ino && now.st_dev == st->st_dev ){
      *pfd = fd;
      return SIO_OK;
    }
    close(fd);   /* replaced between open and lock: try the new one */
  }
}

/* Copy the entries from the snapshot at `from` to the log's end into w. */
static int copy_entries(const logio_image *img, uint64_t from, uint64_t end,
                        stateio_writer *w, uint64_t *bad){
  stateio_scan *s;
  int rc = stateio_scan_open(&s, img, from, STATEIO_EPOCH_UNKNOWN);
  if( rc ) return rc;
  uint64_t batched = 0;
  rc = stateio_writer_begin(w);
  while( rc == SIO_OK ){
    stateio_entry e;
    rc = stateio_scan_next(s, &e);
    if( rc == SIO_DONE ){ rc = SIO_OK; break; }
    if( rc == SIO_OK && e.offset >= end ) break;
    if( rc ){
      *bad = e.offset;
      break;
    }
    rc = e.kind == STATEIO_SNAPSHOT ? stateio_snapshot(w, e.data, e.len)
                                    : stateio_update(w, e.data, e.len);
    batched += e.len;
    if( rc == SIO_OK && batched >= COMPACT_BATCH ){
      batched = 0;
      rc = stateio_writer_commit(w);
      if( rc == SIO_OK ) rc = stateio_writer_begin(w);
    }
  }
  if( rc == SIO_OK ) rc = stateio_writer_commit(w);
  else stateio_writer_rollback(w);
  stateio_scan_close(s);
  return rc;
}

/* Give the test hook a chance to stop the process between steps. */
static int step(const char *name){
  size_t n = 0;
  int e = sio_fault(name, &n);
  if( e ){ errno = e; return SIO_IOERR; }
  return SIO_OK;
}

int stateio_compact(const char *path, unsigned keep, stateio_compact_info *info){
  memset(info, 0, sizeof(*info));
  if( keep < 1 ) return SIO_MISUSE;
  int fd;
  struct stat st;
  int rc = open_locked(path, &fd, &st);
  if( rc ) return rc;
  logio_image img;
  stateio_epoch cur, ep;
  memset(&cur, 0, sizeof(cur));
  memset(&ep, 0, sizeof(ep));
  char *tmp = NULL;
  int tfd = -1;
  stateio_writer *w = NULL;

  rc = logio_image_from_fd(&img, fd);
  if( rc == SIO_OK ) rc = stateio_restore(&img, &cur);
  if( rc ){ info->bad_offset = cur.bad_offset; goto done; }
  info->old_size = img.file_size;
  info->new_size = img.file_size;

  /* Walk back keep-1 epochs from the current one. */
  uint64_t first = cur.epoch;
  int has_snapshot = cur.has_snapshot;
  for(unsigned i = 1; i < keep && has_snapshot && first != 0; i++){
    rc = stateio_read_epoch(&img, cur.prev_epoch, &ep);
    if( rc ){
      info->bad_offset = cur.prev_epoch;
      if( rc == SIO_NOTFOUND ) rc = SIO_CORRUPT_LOG;
      goto done;
    }
    first = ep.epoch;
    has_snapshot = ep.has_snapshot;
    cur.prev_epoch = ep.prev_epoch;
    stateio_epoch_clear(&ep);
  }
  if( !has_snapshot || first == 0 ){
    rc = SIO_OK;      /* nothing before the kept epochs: the log stays as it is */
    goto done;
  }

  size_t n = strlen(path) + sizeof(".compact");
  tmp = sio_malloc(n);
  if( !tmp ){ rc = SIO_NOMEM; goto done; }
  snprintf(tmp, n, "%s.compact", path);
  tfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
  if( tfd < 0 ){ rc = SIO_IOERR; goto done; }
  rc = stateio_writer_open_fd(&w, tfd, 0, 0, 0);
  if( rc ) goto done;
  rc = copy_entries(&img, first, cur.log_end, w, &info->bad_offset);
  if( rc == SIO_OK ) rc = step("compact:written");
  if( rc == SIO_OK ) rc = sio_fsync(tfd);
  if( rc == SIO_OK ) rc = step("compact:synced");
  if( rc == SIO_OK && rename(tmp, path) != 0 ) rc = SIO_IOERR;
  if( rc == SIO_OK ) rc = step("compact:renamed");
  if( rc == SIO_OK ) rc = sync_dir_of(path);
  if( rc == SIO_OK ){
    struct stat nst;
    info->compacted = 1;
    info->dropped_bytes = first;
    info->new_size = fstat(tfd, &nst) == 0 ? (uint64_t)nst.st_size : 0;
    logio_image nimg;
    stateio_epoch nst_epoch;
    if( logio_image_from_fd(&nimg, tfd) == SIO_OK
     && stateio_restore(&nimg, &nst_epoch) == SIO_OK ){
      info->new_epoch = nst_epoch.epoch;
      stateio_epoch_clear(&nst_epoch);
    }
  }else if( tfd >= 0 ){
    int e = errno;
    unlink(tmp);
    errno = e;
  }

done:
  {
    int e = errno;
    if( w ) stateio_writer_close(w);
    if( tfd >= 0 ) close(tfd);
    stateio_epoch_clear(&cur);
    stateio_epoch_clear(&ep);
    sio_free(tmp);
    close(fd);              /* releases the lock on the old file */
    errno = e;
  }
  return rc;
}

/*
** The identity of the open file: device, inode and birth time. Compaction
** replaces the file, so the identity changes even when the filesystem hands
** the new file a recycled inode number (ext4 does), because the birth time
** differs. Filesystems without birth times fall back to device and inode.
*/
int stateio_log_id(int fd, int64_t *id){
  struct statx sx;
  if( statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &sx) != 0 ) return SIO_IOERR;
  uint64_t parts[5] = { sx.stx_dev_major, sx.stx_dev_minor, sx.stx_ino, 0, 0 };
  if( sx.stx_mask & STATX_BTIME ){
    parts[3] = (uint64_t)sx.stx_btime.tv_sec;
    parts[4] = sx.stx_btime.tv_nsec;
  }
  *id = (int64_t)(XXH64(parts, sizeof(parts), 0) & INT64_MAX);
  return SIO_OK;
}
