/* SPDX-License-Identifier: MIT */
/*
** compact.c - dropping old epochs (log truncation).
**
** The kept epochs are re-encoded into PATH.compact beside the log, which is
** synced; then the commit file PATH-commit gets the new log's record (its
** identity, everything done), synced; then PATH.compact is renamed over
** the log and the directory synced. A crash at any point leaves either the
** old log (with a record that is its own, or stale: it was recovered
** first, so it is taken as it is) or the new log with its own record,
** never a mix. Epoch numbers are file offsets, so they change: the oldest
** kept snapshot lands at offset 0 and names epoch 0.
**
** The log's write lock is held throughout (taken with the caller's
** timeout), so no writer appends to the old file meanwhile; writers and
** readers notice the new file by its link count (the old one's is 0).
*/
#include <errno.h>
#include <fcntl.h>
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

/*
** Open and lock the file that is at path now (it may be replaced
** meanwhile), waiting up to timeout_ms, with its commit file (*pcfd, -1
** when there is none) and the record read under the lock.
*/
static int open_locked(const char *path, const char *cpath, int timeout_ms,
                       int *pfd, int *pcfd, sio_rec *r, struct stat *st,
                       stateio_compact_info *info){
  uint64_t token = sio_lock_token(info);
  for(;;){
    int fd, cfd = -1;
    int rc = sio_open_regular(path, STATEIO_FILE_LOG, O_RDWR, 0, &fd);
    if( rc ){ info->errfile = STATEIO_FILE_LOG; return rc; }
    const char *bad;
    rc = sio_lock_wait(fd, path, cpath, &cfd, timeout_ms, token, r, &bad);
    if( rc ) info->errfile = bad == cpath ? STATEIO_FILE_COMMIT : STATEIO_FILE_LOG;
    if( rc == STATEIO_OK && fstat(fd, st) != 0 ){
      rc = STATEIO_IOERR;
      info->errfile = STATEIO_FILE_LOG;
    }
    if( rc ){
      int e = errno;
      close(fd);
      if( cfd >= 0 ) close(cfd);
      errno = e;
      return rc;
    }
    if( sio_path_names(path, st) ){
      *pfd = fd;
      *pcfd = cfd;
      return STATEIO_OK;
    }
    close(fd);   /* replaced between open and lock: try the new one */
    if( cfd >= 0 ) close(cfd);
  }
}

/* Copy the entries from the snapshot at `from` to the log's end into w. */
static int copy_entries(const stateio_image *img, uint64_t from, uint64_t end,
                        stateio_writer *w, uint64_t *bad){
  stateio_scan *s;
  int rc = stateio_scan_open(&s, img, from, STATEIO_EPOCH_UNKNOWN);
  if( rc ) return rc;
  rc = stateio_scan_parallel(s);     /* the kept epochs, in order */
  if( rc ){
    stateio_scan_close(s);
    return rc;
  }
  uint64_t batched = 0;
  rc = stateio_writer_begin(w);
  while( rc == STATEIO_OK ){
    stateio_entry e;
    rc = stateio_scan_next(s, &e);
    if( rc == STATEIO_DONE ){ rc = STATEIO_OK; break; }
    if( rc == STATEIO_OK && e.offset >= end ) break;
    if( rc ){
      *bad = e.offset;
      break;
    }
    rc = e.kind == STATEIO_SNAPSHOT ? stateio_snapshot(w, e.data, e.len)
                                    : stateio_update(w, e.data, e.len);
    batched += e.len;
    if( rc == STATEIO_OK && batched >= COMPACT_BATCH ){
      batched = 0;
      rc = stateio_writer_commit(w);
      if( rc == STATEIO_OK ) rc = stateio_writer_begin(w);
    }
  }
  if( rc == STATEIO_OK ) rc = stateio_writer_commit(w);
  else stateio_writer_rollback(w);
  stateio_scan_close(s);
  return rc;
}

int stateio_compact(const char *path, unsigned keep, stateio_compact_info *info){
  return stateio_compact_wait(path, keep, 0, info);
}

int stateio_compact_wait(const char *path, unsigned keep, int timeout_ms,
                         stateio_compact_info *info){
  memset(info, 0, sizeof(*info));
  if( keep < 1 ) return STATEIO_MISUSE;
  /* From here on path is the file itself, not a symbolic link to it. */
  char *real = sio_log_path(path);
  if( !real ) return STATEIO_NOMEM;
  path = real;
  char *cpath = sio_commit_path(path);
  char *ctmp = cpath ? sio_suffixed(cpath, ".tmp") : NULL;
  char *tmp = sio_suffixed(path, ".compact");
  if( !cpath || !ctmp || !tmp ){
    sio_free(cpath);
    sio_free(ctmp);
    sio_free(tmp);
    sio_free(real);
    return STATEIO_NOMEM;
  }
  int fd = -1, cfd = -1, tfd = -1, rc, rec_changed = 0;
  struct stat st;
  sio_rec rec, old_rec;
  uint64_t log_id = 0;
  stateio_image img;
  stateio_state cur, ep;
  memset(&cur, 0, sizeof(cur));
  memset(&ep, 0, sizeof(ep));
  stateio_writer *w = NULL;

  if( !sio_name_fits(ctmp) ){
    /* No room for the commit file's names (PATH.compact is shorter): refused before anything is made. */
    info->errfile = STATEIO_FILE_COMMIT;
    errno = ENAMETOOLONG;
    rc = STATEIO_IOERR;
    goto done;
  }
  rc = open_locked(path, cpath, timeout_ms, &fd, &cfd, &rec, &st, info);
  if( rc ) goto done;
  old_rec = rec;
  rc = sio_log_id(fd, &log_id);
  if( rc ){ info->errfile = STATEIO_FILE_LOG; goto done; }

  /* Recover first: a dead writer's commit is settled before anything is copied. */
  uint64_t size = (uint64_t)st.st_size;
  int own = 0;
  if( cfd >= 0 ) rc = sio_rec_own(fd, &rec, log_id, size, &own);
  if( rc ){ info->errfile = STATEIO_FILE_LOG; goto done; }
  if( own && rec.state != SIO_REC_DONE ){
    const char *bad = NULL;
    rc = sio_commit_recover(fd, path, cfd, cpath, &rec, size, &size, &bad);
    if( rc ){ info->errfile = bad == cpath ? STATEIO_FILE_COMMIT : STATEIO_FILE_LOG; goto done; }
    old_rec = rec;
  }

  rc = stateio_image_from_fd(&img, fd);
  if( rc ){ info->errfile = STATEIO_FILE_LOG; goto done; }
  if( own ){
    img.journaled = 1;
    img.committed = (rec.flags & SIO_REC_SYNCED) ? rec.l1 : 0;
  }
  rc = stateio_restore(&img, &cur);
  if( rc ){
    info->bad_offset = cur.bad_offset;
    info->errfile = STATEIO_FILE_LOG;
    goto done;
  }
  info->old_size = img.file_size;
  info->new_size = img.file_size;

  /* Walk back keep-1 epochs from the current one. */
  uint64_t first = cur.epoch;
  int has_snapshot = cur.has_snapshot;
  for(unsigned i = 1; i < keep && has_snapshot && first != 0; i++){
    rc = stateio_read_epoch(&img, cur.prev_epoch, &ep);
    if( rc ){
      info->bad_offset = cur.prev_epoch;
      info->errfile = STATEIO_FILE_LOG;
      if( rc == STATEIO_NOTFOUND ) rc = STATEIO_CORRUPT_LOG;
      goto done;
    }
    first = ep.epoch;
    has_snapshot = ep.has_snapshot;
    cur.prev_epoch = ep.prev_epoch;
    stateio_state_clear(&ep);
  }
  if( !has_snapshot || first == 0 ){
    rc = STATEIO_OK;      /* nothing before the kept epochs: the log stays as it is */
    goto done;
  }

  rc = sio_create_fresh(tmp, STATEIO_FILE_COMPACT, (int)(st.st_mode & 07777), &tfd);
  if( rc ){ info->errfile = STATEIO_FILE_COMPACT; goto done; }
  /* The new log replaces the old: the same permissions, whatever the umask, and as root the same owner. */
  rc = sio_match_owner(tfd, STATEIO_FILE_COMPACT, tmp, &st, 07777);
  if( rc ){ info->errfile = STATEIO_FILE_COMPACT; goto failed; }
  rc = sio_writer_open_named(&w, tfd, STATEIO_FILE_COMPACT, tmp);
  if( rc ) goto done;
  rc = copy_entries(&img, first, cur.log_end, w, &info->bad_offset);
  if( rc ){
    info->errfile = stateio_writer_errfile(w) ? STATEIO_FILE_COMPACT : STATEIO_FILE_LOG;
    goto failed;
  }
  rc = sio_step("compact:written", tmp);
  if( rc == STATEIO_OK ) rc = sio_fsync(tfd, STATEIO_FILE_COMPACT, tmp);
  if( rc == STATEIO_OK ) rc = sio_step("compact:synced", tmp);
  if( rc ){ info->errfile = STATEIO_FILE_COMPACT; goto failed; }

  /*
  ** The new log's commit file before the rename: a crash from here on
  ** leaves the old log with a record that is not its own (stale: taken as
  ** it is, and it was recovered above), or the new log with its own.
  */
  {
    struct stat nst;
    sio_rec r;
    memset(&r, 0, sizeof(r));
    r.state = SIO_REC_DONE;
    r.flags = SIO_REC_SYNCED;
    r.seq = rec.seq + 1;
    r.l0 = 0;
    if( fstat(tfd, &nst) != 0 ) rc = STATEIO_IOERR;
    r.l1 = (uint64_t)nst.st_size;
    r.hash = 0;            /* a done record's hash is never checked */
    if( rc == STATEIO_OK ) rc = sio_log_id(tfd, &r.log_id);
    if( rc == STATEIO_OK ) rc = sio_log_fingerprint(tfd, r.l1, &r.fp);
    if( rc ){ info->errfile = STATEIO_FILE_COMPACT; goto failed; }
    if( cfd >= 0 ){
      rc = sio_commit_write(cfd, cpath, &r, 1);
      if( rc ) info->errfile = STATEIO_FILE_COMMIT;
    }else{
      const char *bad = NULL;
      rc = sio_commit_create(cpath, ctmp, &r, &st, &cfd, &bad);
      if( rc ) info->errfile = bad ? STATEIO_FILE_COMMIT : STATEIO_FILE_DIR;
    }
    if( rc ) goto failed;
    rec_changed = 1;
    rec = r;
  }
  rc = sio_step("compact:commit", cpath);
  if( rc ){ info->errfile = STATEIO_FILE_COMMIT; goto failed; }
  rc = sio_rename(STATEIO_FILE_COMPACT, tmp, path);
  if( rc ){ info->errfile = STATEIO_FILE_COMPACT; goto failed; }
  rec_changed = 0;
  rc = sio_step("compact:renamed", path);
  if( rc == STATEIO_OK ) rc = sio_sync_dir(path);
  if( rc ){ info->errfile = STATEIO_FILE_DIR; goto done; }
  {
    struct stat nst;
    info->compacted = 1;
    info->dropped_bytes = first;
    info->new_size = fstat(tfd, &nst) == 0 ? (uint64_t)nst.st_size : 0;
    stateio_image nimg;
    stateio_state nst_epoch;
    if( stateio_image_from_fd(&nimg, tfd) == STATEIO_OK
     && stateio_restore(&nimg, &nst_epoch) == STATEIO_OK ){
      info->new_epoch = nst_epoch.epoch;
      stateio_state_clear(&nst_epoch);
    }
  }
  goto done;

failed:
  {
    int e = errno;
    if( rec_changed ){
      /* Give the old log its own record back (the new one would be stale for it anyway). */
      old_rec.seq = rec.seq + 1;
      (void)sio_commit_write(cfd, cpath, &old_rec, 1);
    }
    (void)sio_unlink(STATEIO_FILE_COMPACT, tmp);
    errno = e;
  }

done:
  {
    int e = errno;
    if( w ) stateio_writer_close(w);
    if( tfd >= 0 ) close(tfd);
    stateio_state_clear(&cur);
    stateio_state_clear(&ep);
    if( cfd >= 0 ) close(cfd);
    if( fd >= 0 ) close(fd);      /* releases the lock on the old file */
    sio_free(tmp);
    sio_free(ctmp);
    sio_free(cpath);
    sio_free(real);
    errno = e;
  }
  if( rc == STATEIO_OK ) info->errfile = 0;
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
  if( statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &sx) != 0 ) return STATEIO_IOERR;
  uint64_t parts[5] = { sx.stx_dev_major, sx.stx_dev_minor, sx.stx_ino, 0, 0 };
  if( sx.stx_mask & STATX_BTIME ){
    parts[3] = (uint64_t)sx.stx_btime.tv_sec;
    parts[4] = sx.stx_btime.tv_nsec;
  }
  *id = (int64_t)(XXH64(parts, sizeof(parts), 0) & INT64_MAX);
  return STATEIO_OK;
}
