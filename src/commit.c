/* SPDX-License-Identifier: MIT */
/*
** commit.c - the commit file PATH-commit: what a commit is, and what
** stateio's readers may see (doc/COMMIT.md has the format and the
** protocol; this is the code).
**
** The log's bytes stay the reference format. Beside the log, one record
** at offset 0 of PATH-commit says where the last commit began (l0) and
** ended (l1), the XXH64 of its bytes, and whether it is in flight, done,
** or must be cut back. Writers write it around every commit (writer.c);
** recovery (a writer's first append under the lock, compaction, a reader
** that finds a dead writer's commit) settles an in-flight one; readers read
** it seqlock style around an fstat of the log and see the log only up to
** the last commit that is done.
**
** A record is written with one pwrite of 64 bytes at offset 0: one sector
** and one 4 KiB page, so a crash leaves one record or another, never half
** of one; a checksum still guards it. A reader's pread may race a
** writer's pwrite: a record that does not decode is read again before it
** counts as damage.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "stateio.h"
#include "sio_int.h"

static const unsigned char rec_magic[8] = { 's', 't', 'a', 't', 'e', 'i', 'o', 0 };
#define REC_VERSION 1
#define WAIT_MAGIC 0x74696177u    /* "wait" */

/* Byte offsets of the record's fields (little-endian). */
#define R_MAGIC    0
#define R_VERSION  8
#define R_STATE   12
#define R_FLAGS   14
#define R_SEQ     16
#define R_LOGID   24
#define R_L0      32
#define R_L1      40
#define R_HASH    48
#define R_FP      56
#define R_CHECK   64

static void put32(unsigned char *p, uint32_t v){
  for(int i = 0; i < 4; i++){ p[i] = (unsigned char)v; v >>= 8; }
}
static uint32_t get32(const unsigned char *p){
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

char *sio_commit_path(const char *path){
  return sio_suffixed(path, "-commit");
}

void sio_rec_encode(const sio_rec *r, unsigned char out[SIO_REC_SIZE]){
  memset(out, 0, SIO_REC_SIZE);
  memcpy(out + R_MAGIC, rec_magic, 8);
  put32(out + R_VERSION, REC_VERSION);
  out[R_STATE] = (unsigned char)r->state;
  out[R_STATE + 1] = (unsigned char)(r->state >> 8);
  out[R_FLAGS] = (unsigned char)r->flags;
  out[R_FLAGS + 1] = (unsigned char)(r->flags >> 8);
  sio_put64(out + R_SEQ, r->seq);
  sio_put64(out + R_LOGID, r->log_id);
  sio_put64(out + R_L0, r->l0);
  sio_put64(out + R_L1, r->l1);
  sio_put64(out + R_HASH, r->hash);
  sio_put64(out + R_FP, r->fp);
  sio_put64(out + R_CHECK, XXH64(out, R_CHECK, 0));
}

int sio_rec_decode(const unsigned char in[SIO_REC_SIZE], sio_rec *r){
  memset(r, 0, sizeof(*r));
  if( memcmp(in + R_MAGIC, rec_magic, 8) != 0 ) return STATEIO_CORRUPT_COMMIT;
  if( sio_get64(in + R_CHECK) != XXH64(in, R_CHECK, 0) ) return STATEIO_CORRUPT_COMMIT;
  if( get32(in + R_VERSION) != REC_VERSION ) return STATEIO_CORRUPT_COMMIT;
  r->state = (unsigned)in[R_STATE] | (unsigned)in[R_STATE + 1] << 8;
  r->flags = (unsigned)in[R_FLAGS] | (unsigned)in[R_FLAGS + 1] << 8;
  r->seq = sio_get64(in + R_SEQ);
  r->log_id = sio_get64(in + R_LOGID);
  r->l0 = sio_get64(in + R_L0);
  r->l1 = sio_get64(in + R_L1);
  r->hash = sio_get64(in + R_HASH);
  r->fp = sio_get64(in + R_FP);
  if( r->state < SIO_REC_INFLIGHT || r->state > SIO_REC_CUT ) return STATEIO_CORRUPT_COMMIT;
  if( r->l1 < r->l0 ) return STATEIO_CORRUPT_COMMIT;
  return STATEIO_OK;
}

uint64_t sio_rec_anchor(const sio_rec *r){
  return r->state == SIO_REC_DONE ? r->l1 : r->l0;
}

uint64_t sio_fingerprint_of(const unsigned char *p, size_t n){
  return XXH64(p, n, 0);
}

int sio_log_fingerprint(int fd, uint64_t anchor, uint64_t *fp){
  unsigned char buf[SIO_FP_LEN];
  size_t n = anchor < SIO_FP_LEN ? (size_t)anchor : SIO_FP_LEN;
  int rc = n ? sio_pread_full(fd, buf, n, anchor - n) : STATEIO_OK;
  if( rc ) return rc;
  *fp = sio_fingerprint_of(buf, n);
  return STATEIO_OK;
}

int sio_rec_own(int fd, const sio_rec *r, uint64_t id, uint64_t size, int *own){
  *own = 0;
  if( r->log_id != id || r->l0 > size ) return STATEIO_OK;
  if( r->state == SIO_REC_DONE && r->l1 > size ) return STATEIO_OK;
  uint64_t fp;
  int rc = sio_log_fingerprint(fd, sio_rec_anchor(r), &fp);
  if( rc ) return rc;
  *own = fp == r->fp;
  return STATEIO_OK;
}

int sio_log_id(int fd, uint64_t *id){
  int64_t v;
  int rc = stateio_log_id(fd, &v);
  *id = (uint64_t)v;
  return rc;
}

int sio_commit_read(int cfd, sio_rec *r, sio_waiter *wt){
  unsigned char buf[SIO_WAIT_OFF + SIO_WAIT_SIZE];
  size_t want = wt ? sizeof(buf) : SIO_REC_SIZE;
  ssize_t got;
  while( (got = pread(cfd, buf, want, 0)) < 0 && errno == EINTR ){}
  if( got < 0 ) return STATEIO_IOERR;
  if( (size_t)got < want ) return STATEIO_CORRUPT_COMMIT;   /* the file is too short */
  if( wt ){
    const unsigned char *m = buf + SIO_WAIT_OFF;
    memset(wt, 0, sizeof(*wt));
    if( get32(m) == WAIT_MAGIC ){
      wt->token = sio_get64(m + 8);
      wt->since = sio_get64(m + 16);
      wt->until = sio_get64(m + 24);
    }
  }
  return sio_rec_decode(buf, r);
}

int sio_commit_write(int cfd, const char *cpath, const sio_rec *r, int sync){
  unsigned char buf[SIO_REC_SIZE];
  sio_rec_encode(r, buf);
  int rc = sio_pwrite_full(cfd, STATEIO_FILE_COMMIT, cpath, buf, sizeof(buf), 0);
  if( rc == STATEIO_OK && sync ) rc = sio_fdatasync(cfd, STATEIO_FILE_COMMIT, cpath);
  return rc;
}

int sio_commit_create(const char *cpath, const char *tmp, const sio_rec *r,
                      const struct stat *log_st, int *pcfd, const char **errfile){
  *pcfd = -1;
  unsigned char buf[SIO_COMMIT_FILE_SIZE];
  memset(buf, 0, sizeof(buf));
  sio_rec_encode(r, buf);
  int fd = -1;
  const char *bad = tmp;
  int rc = sio_create_fresh(tmp, STATEIO_FILE_COMMIT, 0644, &fd);
  /* Whoever may read or write the log may read or write its commit file. */
  if( rc == STATEIO_OK ) rc = sio_match_owner(fd, STATEIO_FILE_COMMIT, tmp, log_st, 0666);
  if( rc == STATEIO_OK ) rc = sio_pwrite_full(fd, STATEIO_FILE_COMMIT, tmp, buf, sizeof(buf), 0);
  if( rc == STATEIO_OK ) rc = sio_fdatasync(fd, STATEIO_FILE_COMMIT, tmp);
  if( rc == STATEIO_OK ){
    bad = cpath;
    rc = sio_rename(STATEIO_FILE_COMMIT, tmp, cpath);
  }
  if( rc == STATEIO_OK ){
    /* The new name must be durable before any commit relies on it. */
    rc = sio_sync_dir(cpath);
    if( rc ) bad = NULL;   /* the directory: the caller names it */
  }
  if( rc ){
    int e = errno;
    if( fd >= 0 ) close(fd);
    if( bad == tmp ) (void)unlink(tmp);
    *errfile = bad;
    errno = e;
    return rc;
  }
  *pcfd = fd;
  return STATEIO_OK;
}

/* Whether the bytes [l0, l1) of fd hash to h (STATEIO_OK and *match), reading in pieces. */
static int range_matches(int fd, uint64_t l0, uint64_t l1, uint64_t h, int *match){
  *match = 0;
  XXH64_state_t *st = XXH64_createState();
  size_t cap = 1u << 20;
  unsigned char *buf = sio_malloc(cap);
  int rc = (st && buf) ? STATEIO_OK : STATEIO_NOMEM;
  if( rc == STATEIO_OK ) XXH64_reset(st, 0);
  for(uint64_t off = l0; rc == STATEIO_OK && off < l1; ){
    size_t k = l1 - off < cap ? (size_t)(l1 - off) : cap;
    rc = sio_pread_full(fd, buf, k, off);
    if( rc == STATEIO_OK ) XXH64_update(st, buf, k);
    off += k;
  }
  if( rc == STATEIO_OK ) *match = XXH64_digest(st) == h;
  if( st ) XXH64_freeState(st);
  sio_free(buf);
  return rc;
}

static int file_size(int fd, uint64_t *size){
  struct stat st;
  if( fstat(fd, &st) != 0 ) return STATEIO_IOERR;
  *size = (uint64_t)st.st_size;
  return STATEIO_OK;
}

/* Whether an in-flight record's batch is all there, with its hash. */
static int batch_present(int fd, const sio_rec *r, uint64_t size, int *present){
  *present = 0;
  if( r->state != SIO_REC_INFLIGHT || r->l1 == SIO_L1_UNKNOWN || r->l1 > size ) return STATEIO_OK;
  return range_matches(fd, r->l0, r->l1, r->hash, present);
}

int sio_commit_recover(int fd, const char *path, int cfd, const char *cpath,
                       sio_rec *r, uint64_t size, uint64_t *end,
                       const char **errfile){
  *end = size;
  if( r->state == SIO_REC_DONE ) return STATEIO_OK;
  if( r->l0 > size ){
    /* The log is shorter than where the commit began: not this record's log. */
    return STATEIO_OK;
  }
  int present;
  int rc = batch_present(fd, r, size, &present);
  if( rc ){ *errfile = path; return rc; }
  sio_rec d = *r;
  d.state = SIO_REC_DONE;
  d.seq = r->seq + 1;
  if( present ){
    /*
    ** A committed batch whose writer died before marking it done. Its
    ** bytes may still be in the page cache only: sync them before saying
    ** so. The done record needs no sync: its in-flight one says the same.
    */
    rc = sio_fdatasync(fd, STATEIO_FILE_LOG, path);
    if( rc ){ *errfile = path; return rc; }
    d.flags |= SIO_REC_SYNCED;
    rc = sio_log_fingerprint(fd, sio_rec_anchor(&d), &d.fp);
    if( rc ){ *errfile = path; return rc; }
    rc = sio_commit_write(cfd, cpath, &d, 0);
    if( rc ){ *errfile = cpath; return rc; }
    *r = d;
    *end = size;
    return STATEIO_OK;
  }
  /*
  ** A torn or failed commit: cut back to l0 and sync the cut. Then a done
  ** record, synced: an in-flight or cut record left on disk would cut
  ** again after a power loss, through the commits written past l0 since.
  */
  if( size > r->l0 ){
    rc = sio_ftruncate(fd, STATEIO_FILE_LOG, path, r->l0);
    if( rc == STATEIO_OK ) rc = sio_fdatasync(fd, STATEIO_FILE_LOG, path);
    if( rc ){ *errfile = path; return rc; }
  }
  d.l1 = d.l0;
  d.hash = XXH64(NULL, 0, 0);
  d.flags |= SIO_REC_SYNCED;
  rc = sio_log_fingerprint(fd, sio_rec_anchor(&d), &d.fp);
  if( rc ){ *errfile = path; return rc; }
  rc = sio_commit_write(cfd, cpath, &d, 1);
  if( rc ){ *errfile = cpath; return rc; }
  *r = d;
  *end = r->l0;
  return STATEIO_OK;
}

/* ------------------------------------------------------------ readers */

/* Read the record of cfd, retrying a read that raced a write: STATEIO_OK, or damage after many tries. */
static int read_stable(int cfd, sio_rec *r, unsigned char raw[SIO_REC_SIZE]){
  int rc = STATEIO_OK;
  for(int tries = 0; tries < 200; tries++){
    ssize_t got;
    while( (got = pread(cfd, raw, SIO_REC_SIZE, 0)) < 0 && errno == EINTR ){}
    if( got < 0 ) return STATEIO_IOERR;
    if( got < SIO_REC_SIZE ) return STATEIO_CORRUPT_COMMIT;
    rc = sio_rec_decode(raw, r);
    if( rc == STATEIO_OK ) return STATEIO_OK;
    struct timespec ts = { 0, 100000 };    /* 0.1 ms: a writer's pwrite is shorter */
    nanosleep(&ts, NULL);
  }
  return rc;
}

/* Fill the view fields of img for record r (the log's own) and size. */
static void view_done(stateio_image *img, const sio_rec *r, uint64_t size){
  img->file_size = size;
  img->journaled = 1;
  img->committed = (r->flags & SIO_REC_SYNCED) ? r->l1 : 0;
}

/* view_inflight(): the writer finished meanwhile; read the view again. */
#define VIEW_AGAIN (-1)

/*
** A record in flight (or cut) with a reader looking: if the lock is held a
** writer is committing and nothing of its commit is visible; if it is free
** the writer died, and the reader settles the commit (recovers it when it
** may write the files, else decides in memory and changes nothing).
*/
static int view_inflight(int fd, const char *path, const char *cpath, int lock_fd,
                         int cfd, uint64_t id, sio_rec *r, uint64_t size,
                         stateio_image *img){
  int lfd = lock_fd, own_lfd = 0, ro = 0, rc;
  if( lfd < 0 ){
    rc = sio_open_regular(path, STATEIO_FILE_LOG, O_RDWR, 0, &lfd);
    if( rc == STATEIO_IOERR && (errno == EACCES || errno == EROFS || errno == EPERM) ){
      lfd = fd;        /* flock works on a read-only descriptor too */
      ro = 1;
    }else if( rc ){
      return rc;
    }else{
      own_lfd = 1;
      struct stat a, b;
      if( fstat(fd, &a) != 0 || fstat(lfd, &b) != 0 ){ close(lfd); return STATEIO_IOERR; }
      if( a.st_ino != b.st_ino || a.st_dev != b.st_dev ){
        /* The path holds another file now: settle ours without writing. */
        close(lfd);
        own_lfd = 0;
        lfd = fd;
        ro = 1;
      }
    }
  }
  /*
  ** Read once more before trying the lock: a writer that just finished
  ** has marked its record done, and a reader that takes the lock even for
  ** a moment can make a writer wait.
  */
  {
    sio_rec again;
    unsigned char raw[SIO_REC_SIZE];
    if( read_stable(cfd, &again, raw) == STATEIO_OK && again.state == SIO_REC_DONE ){
      /*
      ** Its size must be read with the record, inside the seqlock: a size
      ** read after this record may already hold the first chunks of the
      ** next batch, which a writer can spill before its commit. (2026-12-01:
      ** under valgrind a reader saw part of a spilled transaction.)
      */
      if( own_lfd ) close(lfd);
      return VIEW_AGAIN;
    }
  }
  rc = sio_flock(lfd, STATEIO_FILE_LOG, path, LOCK_EX | LOCK_NB);
  if( rc == STATEIO_BUSY ){
    /* A live writer: its commit is not visible yet. */
    img->file_size = r->l0;
    img->journaled = 1;
    img->committed = 0;
    if( own_lfd ) close(lfd);
    return STATEIO_OK;
  }
  if( rc ){
    if( own_lfd ) close(lfd);
    return rc;
  }
  /* Under the lock: read again, the writer may just have finished. */
  int wcfd = -1;
  rc = sio_commit_read(cfd, r, NULL);
  if( rc == STATEIO_OK ) rc = file_size(fd, &size);
  int own = 0;
  if( rc == STATEIO_OK ) rc = sio_rec_own(fd, r, id, size, &own);
  if( rc == STATEIO_OK && !own ){
    img->file_size = size;            /* no longer this log's record */
  }else if( rc == STATEIO_OK && r->state == SIO_REC_DONE ){
    view_done(img, r, size);
  }else if( rc == STATEIO_OK ){
    if( !ro ){
      rc = sio_open_regular(cpath, STATEIO_FILE_COMMIT, O_RDWR, 0, &wcfd);
      if( rc == STATEIO_IOERR && (errno == EACCES || errno == EROFS || errno == EPERM) ){
        ro = 1;
        rc = STATEIO_OK;
      }
    }
    if( rc == STATEIO_OK && !ro ){
      uint64_t end;
      const char *bad = NULL;
      rc = sio_commit_recover(lfd, path, wcfd, cpath, r, size, &end, &bad);
      if( rc == STATEIO_OK ){
        /* Committed up to the settled commit's end; past it, a torn tail at most. */
        img->file_size = end;
        img->journaled = 1;
        img->committed = r->l1 < end ? r->l1 : end;
      }
    }else if( rc == STATEIO_OK ){
      /* Read-only: decide in memory, change nothing. */
      int present;
      rc = batch_present(fd, r, size, &present);
      img->file_size = present ? size : r->l0;
      img->journaled = 1;
      img->committed = 0;
    }
  }
  if( wcfd >= 0 ) close(wcfd);
  int urc = sio_flock(lfd, STATEIO_FILE_LOG, path, LOCK_UN);
  if( own_lfd ) close(lfd);     /* drops the lock even if unlocking failed */
  else if( urc && rc == STATEIO_OK ) rc = urc;
  return rc;
}

int sio_commit_view(int fd, const char *path, int lock_fd, int cfd_in,
                    stateio_image *img){
  img->fd = fd;
  img->tail = NULL;
  img->tail_len = 0;
  img->journaled = 0;
  img->committed = 0;
  uint64_t size = 0;
  int rc;
  if( !path ){
    rc = file_size(fd, &size);
    img->file_size = size;
    return rc;
  }
  char *cpath = sio_commit_path(path);
  if( !cpath ) return STATEIO_NOMEM;
  int cfd = cfd_in;
  if( cfd < 0 ){
    /*
    ** The size first, then the look: a writer creates the commit file
    ** before it writes a byte of a commit that needs one, so when the
    ** file is not there after the size was read, no such commit had
    ** begun when it was.
    */
    rc = file_size(fd, &size);
    if( rc ){
      sio_free(cpath);
      return rc;
    }
    rc = sio_commit_open(cpath, O_RDONLY, &cfd);
    if( rc || cfd < 0 ){
      int e = errno;
      sio_free(cpath);
      errno = e;
      /* No commit file: a log written by another program (or by single unsynced entries), taken as it is. */
      if( rc == STATEIO_OK ) img->file_size = size;
      return rc;
    }
  }
  uint64_t id;
  rc = sio_log_id(fd, &id);
  if( rc ) goto done;
  /* Seqlock: the record, the size, the record again; equal records bracket a size. */
  sio_rec r;
  int views = 0;
again:
  for(int tries = 0; ; tries++){
    unsigned char r1[SIO_REC_SIZE], r2[SIO_REC_SIZE];
    rc = read_stable(cfd, &r, r1);
    if( rc == STATEIO_OK ) rc = file_size(fd, &size);
    if( rc == STATEIO_OK ){
      ssize_t got;
      while( (got = pread(cfd, r2, SIO_REC_SIZE, 0)) < 0 && errno == EINTR ){}
      if( got != SIO_REC_SIZE ) rc = got < 0 ? STATEIO_IOERR : STATEIO_CORRUPT_COMMIT;
    }
    if( rc ) goto done;
    if( memcmp(r1, r2, SIO_REC_SIZE) == 0 ) break;
    if( tries > 1000 ){ errno = EAGAIN; rc = STATEIO_IOERR; goto done; }
  }
  int own;
  rc = sio_rec_own(fd, &r, id, size, &own);
  if( rc ) goto done;
  if( !own ){
    /*
    ** Stale: another log's record (the log was compacted, copied or
    ** replaced), or one that does not fit this file (cut, or rewritten
    ** in place, by someone else): the log is taken as it is.
    */
    img->file_size = size;
  }else if( r.state == SIO_REC_DONE ){
    view_done(img, &r, size);
  }else{
    rc = view_inflight(fd, path, cpath, lock_fd, cfd, id, &r, size, img);
    if( rc == VIEW_AGAIN ){
      if( ++views < 1000 ) goto again;
      errno = EAGAIN;
      rc = STATEIO_IOERR;
    }
  }

done:
  {
    int e = errno;
    if( cfd >= 0 && cfd != cfd_in ) close(cfd);
    sio_free(cpath);
    errno = e;
  }
  return rc;
}

/* ------------------------------------------------------------ the lock */

static uint64_t now_ms(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t sio_lock_token(const void *owner){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t parts[4] = { (uint64_t)(uintptr_t)owner, (uint64_t)getpid(),
                        (uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec };
  uint64_t t = XXH64(parts, sizeof(parts), 0);
  return t ? t : 1;
}

static int write_waiter(int cfd, const char *cpath, uint64_t token, uint64_t since, uint64_t until){
  unsigned char m[SIO_WAIT_SIZE];
  memset(m, 0, sizeof(m));
  if( token ){
    put32(m, WAIT_MAGIC);
    sio_put64(m + 8, token);
    sio_put64(m + 16, since);
    sio_put64(m + 24, until);
  }
  return sio_pwrite_full(cfd, STATEIO_FILE_COMMIT, cpath, m, sizeof(m), SIO_WAIT_OFF);
}

/*
** The waiter's mark of the commit file open on cfd, read with its record:
** a file whose record does not decode is not a commit file, and nothing
** is ever written to it.
*/
static int read_waiter(int cfd, sio_waiter *wt){
  sio_rec r;
  return sio_commit_read(cfd, &r, wt);
}

/* How long a waiter's mark lasts unless renewed (it is renewed at every poll). */
#define WAIT_MARK_MS 1000

/*
** Whether wt is the mark of a waiter alive now (now: CLOCK_MONOTONIC ms).
** The clock starts again at boot, and is another one on another machine
** (over a network file system): a mark left by a waiter when the power
** went can hold times far ahead of this clock. A live mark began in the
** past and ends at most WAIT_MARK_MS after its last renewal; any other is
** from a clock not ours, and counts as no mark (a writer without a
** timeout yielded to it at every try, for as long as the old boot had run).
*/
static int mark_live(const sio_waiter *wt, uint64_t now){
  return wt->token != 0 && wt->since <= now && wt->until > now && wt->until <= now + WAIT_MARK_MS;
}

int sio_commit_open(const char *cpath, int flags, int *pcfd){
  if( *pcfd >= 0 ) return STATEIO_OK;
  /*
  ** Most logs written with single unsynced entries have none: a stat()
  ** says so at half an open()'s cost. A name too long for the file system
  ** cannot be there either (a log the reference wrote with a name that
  ** leaves no room for "-commit"; stateio's writers refuse such names).
  */
  struct stat st;
  if( stat(cpath, &st) != 0 && (errno == ENOENT || errno == ENAMETOOLONG) ) return STATEIO_OK;
  int cfd;
  /*
  ** O_NOFOLLOW: stateio makes it by a rename of a file of its own, so a
  ** symbolic link there was put by someone else, and the file it names
  ** is not to be written (the waiter's mark would be): damage.
  */
  int rc = sio_open_regular_st(cpath, STATEIO_FILE_COMMIT, flags | O_NOFOLLOW, 0, &cfd, &st);
  if( rc == STATEIO_IOERR && (errno == ENOENT || errno == ENAMETOOLONG) ) return STATEIO_OK;
  if( rc == STATEIO_NOTLOG || (rc == STATEIO_IOERR && (errno == EISDIR || errno == ELOOP)) ) return STATEIO_CORRUPT_COMMIT;
  if( rc ) return rc;
  if( st.st_size != SIO_COMMIT_FILE_SIZE ){
    close(cfd);
    return STATEIO_CORRUPT_COMMIT;
  }
  *pcfd = cfd;
  return STATEIO_OK;
}

int sio_lock_wait(int fd, const char *path, const char *cpath, int *pcfd,
                  int timeout_ms, uint64_t token, sio_rec *r, const char **bad){
  /* SQLite's default busy handler's delays (ms). */
  static const int delays[] = { 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 };
  const int ndelays = (int)(sizeof(delays) / sizeof(delays[0]));
  uint64_t t0 = 0;                 /* when we first found the lock held */
  int waited = 0, marked = 0, i = 0, spins = 0;
  memset(r, 0, sizeof(*r));
  *bad = path;
  for(;;){
    int rc = sio_flock(fd, STATEIO_FILE_LOG, path, LOCK_EX | LOCK_NB);
    if( rc == STATEIO_OK && cpath ){
      /*
      ** Look for the commit file under the lock: one created by another
      ** writer between an earlier look and this lock may hold a commit
      ** in flight that must be settled before anything is built on it.
      */
      rc = sio_commit_open(cpath, O_RDWR, pcfd);
      sio_waiter wt;
      if( rc == STATEIO_OK && *pcfd >= 0 ) rc = sio_commit_read(*pcfd, r, &wt);
      if( rc ){
        int e = errno;
        (void)sio_flock(fd, STATEIO_FILE_LOG, path, LOCK_UN);
        errno = e;
        *bad = cpath;
        return rc;
      }
      if( *pcfd < 0 ) return STATEIO_OK;
      if( wt.token != token && mark_live(&wt, now_ms()) && (!waited || wt.since < t0) ){
        /* Someone waits, and longer than we do: let it in. */
        (void)sio_flock(fd, STATEIO_FILE_LOG, path, LOCK_UN);
        rc = STATEIO_BUSY;
      }else{
        if( wt.token == token ) (void)write_waiter(*pcfd, cpath, 0, 0, 0);
        return STATEIO_OK;
      }
    }
    if( rc != STATEIO_BUSY ) return rc;
    uint64_t now = now_ms();
    if( !t0 ) t0 = now;
    if( timeout_ms <= 0 && spins < 20 ){
      /*
      ** No timeout: still try again a few times over about a millisecond,
      ** as a reader that settles a record takes the lock for a moment.
      */
      spins++;
      struct timespec ts = { 0, 50000 };
      nanosleep(&ts, NULL);
      continue;
    }
    if( timeout_ms <= 0 || now - t0 >= (uint64_t)timeout_ms ){
      if( marked ){
        sio_waiter wt;
        if( read_waiter(*pcfd, &wt) == STATEIO_OK && wt.token == token ) (void)write_waiter(*pcfd, cpath, 0, 0, 0);
      }
      errno = EWOULDBLOCK;
      return STATEIO_BUSY;
    }
    waited = 1;
    /* Announce ourselves, unless an earlier waiter has (its failures are the look under the lock's). */
    if( cpath && sio_commit_open(cpath, O_RDWR, pcfd) == STATEIO_OK && *pcfd >= 0 ){
      sio_waiter wt;
      if( read_waiter(*pcfd, &wt) == STATEIO_OK
       && (wt.token == token || !mark_live(&wt, now) || wt.since > t0) ){
        if( write_waiter(*pcfd, cpath, token, t0, now + WAIT_MARK_MS) == STATEIO_OK ) marked = 1;
      }
    }
    uint64_t left = (uint64_t)timeout_ms - (now - t0);
    uint64_t d = (uint64_t)delays[i < ndelays ? i : ndelays - 1];
    if( d > left ) d = left;
    i++;
    struct timespec ts = { (time_t)(d / 1000), (long)(d % 1000) * 1000000L };
    while( nanosleep(&ts, &ts) != 0 && errno == EINTR ){}
  }
}
