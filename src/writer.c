/*
** writer.c - appending updates and snapshots (FORMAT.md, "Writing").
**
** Entries are encoded into a pending buffer as they are appended and
** written at commit with one pwrite() and one fdatasync(). The first append
** of a batch takes an flock() on the file (flock, not fcntl: fcntl locks
** belong to the process and vanish when any descriptor of the file is
** closed, so two connections in one process would not exclude each other)
** and re-reads the end of the log, since another process may have
** appended, or replaced the file, since we last looked.
*/
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stateio.h"
#include "sio_int.h"

/* A bulk batch writes its pending entries out whenever this many are pending. */
#define SIO_BULK_CHUNK ((size_t)4 << 20)

struct stateio_writer {
  int fd;
  int own_fd;              /* opened by us: closed (and reopened) by us */
  int flags;
  char *path;              /* NULL for a caller's descriptor */
  dev_t dev;               /* identity of the open file, to notice replacement */
  ino_t ino;
  int given;               /* end/epoch given by the caller, not yet checked */
  int known;               /* end/epoch/file_size below are valid */
  uint64_t end;            /* end of the log's last complete entry */
  uint64_t file_size;      /* file size when last looked at; past end is torn */
  uint64_t epoch;          /* committed current epoch */
  int in_batch;
  int bulk;                /* in a bulk batch: pending bytes go out in chunks */
  uint64_t batch_start;    /* end of the log when the batch began (bulk rollback) */
  uint64_t batch_epoch;    /* epoch when the batch began */
  int locked;
  int batch_rc;            /* a bulk batch could not write a chunk: only rollback goes on */
  unsigned char *pend;     /* encoded pending entries, to be written at end */
  size_t pend_len, pend_cap;
  uint64_t pend_epoch;     /* current epoch including pending snapshots */
  uint64_t pend_count;
};

static int open_path(stateio_writer *w){
  int oflags = O_RDWR | O_CLOEXEC;
  int created = 0;
  int fd = -1;
  if( w->flags & STATEIO_CREATE ){
    fd = open(w->path, oflags | O_CREAT | O_EXCL, 0644);
    if( fd >= 0 ) created = 1;
    else if( errno != EEXIST ) return SIO_IOERR;
  }
  if( fd < 0 ){
    fd = open(w->path, oflags);
    if( fd < 0 ) return SIO_IOERR;
  }
  struct stat st;
  if( fstat(fd, &st) != 0 ){
    int e = errno;
    close(fd);
    errno = e;
    return SIO_IOERR;
  }
  if( !S_ISREG(st.st_mode) ){
    close(fd);
    return SIO_NOTLOG;
  }
  if( created && (w->flags & STATEIO_SYNC) ){
    /* Make the new file's directory entry durable too. */
    char *copy = sio_strdup(w->path);
    if( copy ){
      int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if( dfd >= 0 ){
        sio_fsync(dfd);
        close(dfd);
      }
      sio_free(copy);
    }
  }
  w->fd = fd;
  w->dev = st.st_dev;
  w->ino = st.st_ino;
  w->known = 0;
  return SIO_OK;
}

static int find_end(stateio_writer *w);

static stateio_writer *writer_new(int flags){
  stateio_writer *w = sio_malloc(sizeof(*w));
  if( w ){
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->flags = flags;
  }
  return w;
}

int stateio_writer_open(stateio_writer **pp, const char *path, int flags){
  *pp = NULL;
  stateio_writer *w = writer_new(flags);
  if( !w ) return SIO_NOMEM;
  w->path = sio_strdup(path);
  if( !w->path ){
    sio_free(w);
    return SIO_NOMEM;
  }
  w->own_fd = 1;
  int rc = open_path(w);
  if( rc ){
    int e = errno;
    sio_free(w->path);
    sio_free(w);
    errno = e;
    return rc;
  }
  /*
  ** Learn the epoch now, without the lock, so stateio_writer_epoch() means
  ** something before the first append. The first append checks it again
  ** under the lock and reports a file that is not a healthy log.
  */
  if( find_end(w) != SIO_OK ) w->known = 0;
  *pp = w;
  return SIO_OK;
}

int stateio_writer_open_fd(stateio_writer **pp, int fd, uint64_t offset,
                           uint64_t epoch, int flags){
  *pp = NULL;
  if( fd < 0 || epoch > offset ) return SIO_MISUSE;
  stateio_writer *w = writer_new(flags & ~STATEIO_CREATE);
  if( !w ) return SIO_NOMEM;
  w->fd = fd;
  w->given = 1;
  w->end = offset;
  w->file_size = offset;
  w->epoch = epoch;
  *pp = w;
  return SIO_OK;
}

/* Find the end of the log and its current epoch from the file (sio_log_end). */
static int find_end(stateio_writer *w){
  logio_image img;
  int rc = logio_image_from_fd(&img, w->fd);
  if( rc == SIO_OK ) rc = sio_log_end(&img, &w->end, &w->epoch);
  if( rc ) return rc;
  w->file_size = img.file_size;
  w->known = 1;
  return SIO_OK;
}

/* Take the lock, then make sure end/epoch describe the file as it is now. */
static int lock_and_refresh(stateio_writer *w){
  for(;;){
    if( flock(w->fd, LOCK_EX | LOCK_NB) != 0 ){
      if( errno == EINTR ) continue;
      return (errno == EWOULDBLOCK) ? SIO_BUSY : SIO_IOERR;
    }
    if( !w->path ) break;
    /* The file may have been replaced (compacted) since we opened it. */
    struct stat st;
    if( stat(w->path, &st) == 0 && st.st_dev == w->dev && st.st_ino == w->ino ) break;
    flock(w->fd, LOCK_UN);
    close(w->fd);
    w->fd = -1;
    int rc = open_path(w);
    if( rc ) return rc;
  }
  w->locked = 1;
  struct stat st;
  if( fstat(w->fd, &st) != 0 ) return SIO_IOERR;
  uint64_t size = (uint64_t)st.st_size;
  if( w->given ){
    w->given = 0;
    w->known = (size == w->end);
    w->file_size = size;
  }
  /*
  ** Same size as before is not proof of no change when we saw a torn tail:
  ** another writer may have cut it and appended exactly as many bytes.
  */
  if( !w->known || size != w->file_size || w->file_size != w->end ){
    int rc = find_end(w);
    if( rc ) return rc;
  }
  w->pend_epoch = w->epoch;
  w->pend_len = 0;
  w->pend_count = 0;
  return SIO_OK;
}

static void unlock(stateio_writer *w){
  if( w->locked ){
    flock(w->fd, LOCK_UN);
    w->locked = 0;
  }
}

int stateio_writer_begin(stateio_writer *w){
  if( w->in_batch ) return SIO_MISUSE;
  w->in_batch = 1;
  w->bulk = 0;
  return SIO_OK;
}

int stateio_writer_begin_bulk(stateio_writer *w){
  int rc = stateio_writer_begin(w);
  if( rc == SIO_OK ) w->bulk = 1;
  return rc;
}

/* Write the pending bytes at the end of the log (not synced). */
static int flush_pending(stateio_writer *w){
  int rc = SIO_OK;
  if( w->file_size > w->end ){
    /* A torn tail: new entries must never sit behind garbage. */
    rc = sio_ftruncate(w->fd, w->end);
    if( rc ) return rc;
    w->file_size = w->end;
  }
  rc = sio_pwrite_full(w->fd, w->pend, w->pend_len, w->end);
  if( rc ) return rc;
  w->end += w->pend_len;
  w->file_size = w->end;
  w->pend_len = 0;
  return SIO_OK;
}

/* Put the file back to `end` bytes after a failed or rolled-back write. */
static void truncate_back(stateio_writer *w, uint64_t end){
  int e = errno;
  if( sio_ftruncate(w->fd, end) == SIO_OK ){
    w->end = end;
    w->file_size = end;
  }else{
    w->known = 0;     /* look at the file afresh next time */
  }
  errno = e;
}

static int append(stateio_writer *w, int kind, const void *data, size_t len){
  if( !data && len > 0 ) return SIO_MISUSE;
  if( w->batch_rc ) return w->batch_rc;
  if( !w->locked ){
    int rc = lock_and_refresh(w);
    if( rc ){
      unlock(w);
      return rc;
    }
    w->batch_start = w->end;
    w->batch_epoch = w->epoch;
  }
  uint64_t off = w->end + w->pend_len;
  uint64_t need = logio_encoded_size(off, STATEIO_ENTRY_HEADER + (uint64_t)len);
  if( need > ((size_t)-1) / 2 - w->pend_len ) return SIO_TOOBIG;
  if( w->pend_len + need > w->pend_cap ){
    size_t cap = w->pend_cap ? w->pend_cap : 64 * 1024;
    while( cap < w->pend_len + need ) cap *= 2;
    unsigned char *p = sio_realloc(w->pend, cap);
    if( !p ) return SIO_NOMEM;
    w->pend = p;
    w->pend_cap = cap;
    if( cap >= ((size_t)8 << 20) ){
      /*
      ** A large batch: back it with transparent huge pages, 512 times fewer
      ** page faults while it fills. The whole mapping is advised (glibc's
      ** mmapped chunk starts a page below p) so that it stays one mapping
      ** that realloc can mremap. Only advice: failure changes nothing.
      */
      uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095;
      uintptr_t e = ((uintptr_t)p + cap + 4095) & ~(uintptr_t)4095;
      (void)madvise((void*)a, e - a, MADV_HUGEPAGE);
    }
  }
  unsigned char head[STATEIO_ENTRY_HEADER];
  head[0] = (unsigned char)kind;
  sio_put64(head + 1, w->pend_epoch);
  uint64_t start;
  logio_encode(off, head, sizeof(head), data, len, w->pend + w->pend_len, &start);
  w->pend_len += (size_t)need;
  w->pend_count++;
  if( kind == STATEIO_SNAPSHOT ) w->pend_epoch = start;
  if( !w->in_batch ) return stateio_writer_commit(w);
  if( w->bulk && w->pend_len >= SIO_BULK_CHUNK ){
    int rc = flush_pending(w);
    if( rc ){
      /* The pending entries were encoded for offsets that are gone now. */
      truncate_back(w, w->batch_start);
      w->pend_len = 0;
      w->pend_count = 0;
      w->batch_rc = rc;
    }
    return rc;
  }
  return SIO_OK;
}

int stateio_update(stateio_writer *w, const void *data, size_t len){
  return append(w, STATEIO_UPDATE, data, len);
}

int stateio_snapshot(stateio_writer *w, const void *data, size_t len){
  return append(w, STATEIO_SNAPSHOT, data, len);
}

int stateio_writer_commit(stateio_writer *w){
  int rc = SIO_OK;
  if( w->batch_rc ){
    rc = w->batch_rc;
    stateio_writer_rollback(w);
    return rc;
  }
  w->in_batch = 0;
  w->bulk = 0;
  if( !w->locked ) return SIO_OK;
  if( w->pend_len > 0 || w->end > w->batch_start ){
    if( w->pend_len > 0 ) rc = flush_pending(w);
    if( rc == SIO_OK && (w->flags & STATEIO_SYNC) ) rc = sio_fdatasync(w->fd);
    if( rc == SIO_OK ){
      w->epoch = w->pend_epoch;
    }else{
      /*
      ** Put the file back as it was. If even that fails, what is left is a
      ** torn tail (or whole entries) that the next writer looks at afresh.
      */
      truncate_back(w, w->batch_start);
    }
  }
  w->pend_len = 0;
  w->pend_count = 0;
  w->pend_epoch = w->epoch;
  unlock(w);
  return rc;
}

void stateio_writer_rollback(stateio_writer *w){
  if( w->locked && w->end > w->batch_start ) truncate_back(w, w->batch_start);
  w->batch_rc = 0;
  w->in_batch = 0;
  w->bulk = 0;
  w->pend_len = 0;
  w->pend_count = 0;
  w->pend_epoch = w->epoch;
  unlock(w);
}

stateio_mark stateio_writer_mark(const stateio_writer *w){
  stateio_mark m;
  m.offset = w->end + w->pend_len;
  m.epoch = w->locked ? w->pend_epoch : w->epoch;
  m.count = w->pend_count;
  return m;
}

void stateio_writer_rollback_to(stateio_writer *w, stateio_mark m){
  if( !w->locked || w->batch_rc || m.offset > w->end + w->pend_len ) return;
  if( m.count == 0 || m.offset < w->batch_start ){
    /* Taken before the batch's first append (and its lock): undo it all. */
    m.offset = w->batch_start;
    m.epoch = w->batch_epoch;
    m.count = 0;
  }
  if( m.offset >= w->end ){
    w->pend_len = (size_t)(m.offset - w->end);
  }else{
    truncate_back(w, m.offset);   /* a bulk batch already wrote past the mark */
    w->pend_len = 0;
  }
  w->pend_epoch = m.epoch;
  w->pend_count = m.count;
}

uint64_t stateio_writer_epoch(const stateio_writer *w){
  return w->locked ? w->pend_epoch : w->epoch;
}

uint64_t stateio_writer_pending_count(const stateio_writer *w){
  return w->pend_count;
}

int stateio_writer_locked(const stateio_writer *w){ return w->locked; }

/* Reopen path if the file there is no longer the one we have open. */
static int follow_replacement(stateio_writer *w){
  struct stat st;
  if( !w->path || stat(w->path, &st) != 0 ) return SIO_OK;
  if( st.st_dev == w->dev && st.st_ino == w->ino ) return SIO_OK;
  int old = w->fd;
  int rc = open_path(w);
  if( rc ){
    w->fd = old;
    return rc;
  }
  close(old);
  return SIO_OK;
}

int stateio_writer_image(stateio_writer *w, logio_image *img){
  if( !w->locked ){
    int rc = follow_replacement(w);
    if( rc ) return rc;
    return logio_image_from_fd(img, w->fd);
  }
  img->fd = w->fd;
  img->file_size = w->end;     /* without the torn tail, if any */
  img->tail = w->pend;
  img->tail_len = w->pend_len;
  return SIO_OK;
}

int stateio_writer_close(stateio_writer *w){
  if( !w ) return SIO_OK;
  stateio_writer_rollback(w);
  int rc = SIO_OK;
  if( w->own_fd && w->fd >= 0 && close(w->fd) != 0 ) rc = SIO_IOERR;
  sio_free(w->pend);
  sio_free(w->path);
  sio_free(w);
  return rc;
}
