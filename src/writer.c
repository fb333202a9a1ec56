/* SPDX-License-Identifier: MIT */
/*
** writer.c - appending updates and snapshots (FORMAT.md, "Writing"), in
** commits that are atomic, isolated and durable (doc/COMMIT.md).
**
** Entries are encoded into a pending buffer as they are appended and
** written at commit with one pwrite() and one fdatasync(), bracketed by the
** commit file's record (commit.c): in flight before the bytes go out
** (synced first for a batch of several entries), done after the sync.
** The first append of a batch takes an flock() on the file (flock, not
** fcntl: fcntl locks belong to the process and vanish when any descriptor
** of the file is closed, so two connections in one process would not
** exclude each other), settles whatever a dead writer left in flight, and
** re-reads the end of the log, since another process may have appended,
** or replaced the file, since we last looked.
*/
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "stateio.h"
#include "sio_int.h"

/* A bulk batch writes its pending entries out whenever this many are pending. */
#define SIO_BULK_CHUNK ((size_t)4 << 20)
/* A batch goes on as a bulk batch once this many bytes are pending (stateio_writer_set_spill). */
#define SIO_SPILL_DEFAULT ((size_t)64 << 20)

struct stateio_writer {
  int fd;
  int own_fd;              /* opened by us: closed (and reopened) by us */
  int flags;
  int file;                /* STATEIO_FILE_LOG, or _COMPACT for compaction's new log */
  char *path;              /* NULL for a caller's descriptor */
  const char *name;        /* the log's name in errors and hook calls (may be NULL) */
  char *cpath;             /* PATH-commit (NULL without a path) */
  char *ctmp;              /* PATH-commit.tmp, the name it is made under */
  char *dpath;             /* the directory of path */
  int cfd;                 /* the commit file, -1 while there is none */
  uint64_t log_id;         /* identity of the open log, for its records */
  int timeout_ms;          /* how long to wait for the lock */
  uint64_t token;          /* names this writer to other waiters */
  const char *errfile;     /* the file the last failure was on */
  sio_rec rec;             /* the record as last read or written */
  int own_rec;             /* rec is this log's own (not stale, not missing) */
  int linked;              /* the open file has been seen with another name (a hard link) */
  unsigned forks;          /* sio_watch_forks() when opened: forked since, another process */
  int rec_unsure;          /* the done record after a cut may not be durable */
  int given;               /* end/epoch given by the caller, not yet checked */
  int known;               /* end/epoch/file_size below are valid */
  uint64_t end;            /* end of the log's last complete entry */
  uint64_t start_at;       /* the next entry begins here: end, or the next block after damage */
  uint64_t last_start;     /* where the entry appended last begins */
  unsigned char tail[SIO_FP_LEN];  /* the last bytes this writer wrote, ending at tail_end */
  size_t tail_len;
  uint64_t tail_end;
  uint64_t file_size;      /* file size when last looked at; past end is torn */
  uint64_t epoch;          /* committed current epoch */
  int in_batch;
  int bulk;                /* in a bulk batch: pending bytes go out in chunks */
  int streamed;            /* this bulk batch's first chunk is out (its record: L1 unknown) */
  size_t spill;            /* a batch with this many pending bytes goes bulk (0: never) */
  uint64_t batch_start;    /* end of the log when the batch began */
  uint64_t batch_epoch;    /* epoch when the batch began */
  int locked;              /* a batch holds the lock */
  int held;                /* STATEIO_EXCLUSIVE: the lock is kept between batches */
  int prepared;            /* written and synced by stateio_writer_prepare(); lock kept */
  int inflight;            /* this batch's in-flight record is written */
  int wrote;               /* this batch wrote (or tried to write) bytes to the log */
  int batch_rc;            /* a bulk batch could not write a chunk: only rollback goes on */
  int cut_pending;         /* a failed commit's cut failed too: finish it first */
  uint64_t cut_to, cut_size;
  XXH64_state_t *hs;       /* bulk: hash of the batch's bytes written so far */
  unsigned char *pend;     /* encoded pending entries, to be written at end */
  size_t pend_len, pend_cap;
  uint64_t pend_epoch;     /* current epoch including pending snapshots */
  uint64_t pend_count;
};

/* Remember which file failed; returns rc. */
static int fail(stateio_writer *w, int rc, const char *file){
  if( rc != STATEIO_OK && rc != STATEIO_BUSY ) w->errfile = file;
  return rc;
}

static int open_path(stateio_writer *w){
  int created = 0;
  int fd = -1, rc;
  if( w->flags & STATEIO_CREATE ){
    rc = sio_open_regular(w->path, STATEIO_FILE_LOG, O_RDWR | O_CREAT | O_EXCL, 0644, &fd);
    if( rc == STATEIO_OK ) created = 1;
    else if( rc != STATEIO_IOERR || errno != EEXIST ) return fail(w, rc, w->path);
  }
  if( fd < 0 ){
    rc = sio_open_regular(w->path, STATEIO_FILE_LOG, O_RDWR, 0, &fd);
    if( rc ) return fail(w, rc, w->path);
  }
  if( created && (w->flags & STATEIO_SYNC) ){
    /* The new file's directory entry must be durable too; if it cannot be, say so. */
    rc = sio_sync_dir(w->path);
    if( rc ){
      int e = errno;
      close(fd);
      errno = e;
      return fail(w, rc, w->dpath);
    }
  }
  rc = sio_log_id(fd, &w->log_id);
  if( rc ){
    int e = errno;
    close(fd);
    errno = e;
    return fail(w, rc, w->path);
  }
  w->fd = fd;
  w->known = 0;
  w->own_rec = 0;
  w->linked = 0;
  w->tail_end = UINT64_MAX;    /* another file: nothing of it written by us yet */
  return STATEIO_OK;
}

static int find_end(stateio_writer *w);

static stateio_writer *writer_new(int flags){
  stateio_writer *w = sio_malloc(sizeof(*w));
  if( w ){
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->cfd = -1;
    w->tail_end = UINT64_MAX;
    w->flags = flags;
    w->file = STATEIO_FILE_LOG;
    w->token = sio_lock_token(w);
    w->spill = SIO_SPILL_DEFAULT;
    if( sio_watch_forks(&w->forks) != STATEIO_OK ){
      sio_free(w);
      return NULL;
    }
  }
  return w;
}

/*
** A writer inherited across fork(): the parent's lock and batch are the
** parent's. Nothing may touch the files (MISUSE), and rollback and close
** only forget (an unlock or a cut here would undo the parent's).
*/
static int inherited(const stateio_writer *w){
  return sio_forked_since(w->forks);
}

static void forget_inherited(stateio_writer *w){
  w->locked = w->held = 0;
  w->prepared = 0;
  w->wrote = 0;
}

static void writer_free(stateio_writer *w){
  if( w->hs ) XXH64_freeState(w->hs);
  sio_free(w->pend);
  sio_free(w->path);
  sio_free(w->cpath);
  sio_free(w->ctmp);
  sio_free(w->dpath);
  sio_free(w);
}

int stateio_writer_open(stateio_writer **pp, const char *path, int flags){
  *pp = NULL;
  stateio_writer *w = writer_new(flags);
  if( !w ) return STATEIO_NOMEM;
  w->path = sio_log_path(path);
  w->cpath = w->path ? sio_commit_path(w->path) : NULL;
  w->ctmp = w->cpath ? sio_suffixed(w->cpath, ".tmp") : NULL;
  w->dpath = w->path ? sio_strdup(w->path) : NULL;
  if( !w->path || !w->cpath || !w->ctmp || !w->dpath ){
    writer_free(w);
    return STATEIO_NOMEM;
  }
  if( !sio_name_fits(w->ctmp) ){
    /*
    ** The name leaves no room for the commit file's: the first commit
    ** that needs one would fail. Refuse now, before anything is made.
    */
    writer_free(w);
    errno = ENAMETOOLONG;
    return STATEIO_IOERR;
  }
  {
    /* dirname() may return a static string or shorten its argument. */
    char *d = sio_strdup(dirname(w->dpath));
    sio_free(w->dpath);
    w->dpath = d;
    if( !d ){ writer_free(w); return STATEIO_NOMEM; }
  }
  w->name = w->path;
  w->own_fd = 1;
  int rc = open_path(w);
  if( rc ){
    int e = errno;
    writer_free(w);
    errno = e;
    return rc;
  }
  /*
  ** Learn the epoch now, without the lock, so stateio_writer_epoch() means
  ** something before the first append. The first append checks it again
  ** under the lock and reports a file that is not a healthy log.
  */
  if( find_end(w) != STATEIO_OK ) w->known = 0;
  w->errfile = NULL;
  *pp = w;
  return STATEIO_OK;
}

int stateio_writer_open_fd(stateio_writer **pp, int fd, uint64_t offset,
                           uint64_t epoch, int flags){
  *pp = NULL;
  if( fd < 0 || epoch > offset ) return STATEIO_MISUSE;
  stateio_writer *w = writer_new(flags & ~STATEIO_CREATE);
  if( !w ) return STATEIO_NOMEM;
  w->fd = fd;
  w->given = 1;
  w->end = offset;
  w->file_size = offset;
  w->epoch = epoch;
  *pp = w;
  return STATEIO_OK;
}

int sio_writer_open_named(stateio_writer **pp, int fd, int file, const char *name){
  int rc = stateio_writer_open_fd(pp, fd, 0, 0, 0);
  if( rc == STATEIO_OK ){
    (*pp)->file = file;
    (*pp)->name = name;
  }
  return rc;
}

void stateio_writer_set_spill(stateio_writer *w, size_t bytes){
  w->spill = bytes;
}

void stateio_writer_set_timeout(stateio_writer *w, int ms){
  w->timeout_ms = ms > 0 ? ms : 0;
}

const char *stateio_writer_errfile(const stateio_writer *w){
  return w->errfile;
}

/* An image of the file as it is (fstat), with what its record says. */
static int file_image(stateio_writer *w, stateio_image *img){
  int rc = stateio_image_from_fd(img, w->fd);
  if( rc ) return fail(w, rc, w->name);
  if( w->own_rec && w->rec.state == SIO_REC_DONE && w->rec.l1 <= img->file_size ){
    img->journaled = 1;
    img->committed = (w->rec.flags & SIO_REC_SYNCED) ? w->rec.l1 : 0;
  }
  return STATEIO_OK;
}

/* Find the end of the log and its current epoch from the file (sio_log_end). */
static int find_end(stateio_writer *w){
  stateio_image img;
  int rc = file_image(w, &img);
  if( rc == STATEIO_OK ) rc = fail(w, sio_log_end(&img, &w->end, &w->epoch, &w->start_at), w->name);
  if( rc ) return rc;
  w->file_size = img.file_size;
  w->known = 1;
  return STATEIO_OK;
}

static int release(stateio_writer *w);

/*
** The batch gives up the lock (with STATEIO_EXCLUSIVE the writer keeps it).
** A failed unlock closes the descriptor, which drops it, and reopens.
*/
static int unlock(stateio_writer *w){
  if( !w->locked ) return STATEIO_OK;
  w->locked = 0;
  if( w->flags & STATEIO_EXCLUSIVE ){
    w->held = 1;                 /* kept until stateio_writer_close() */
    return STATEIO_OK;
  }
  return release(w);
}

/* Drop the flock itself. */
static int release(stateio_writer *w){
  w->held = 0;
  int rc = sio_flock(w->fd, w->file, w->name, LOCK_UN);
  if( rc == STATEIO_OK ) return STATEIO_OK;
  int e = errno;
  if( w->own_fd && w->path ){
    close(w->fd);
    w->fd = -1;
    (void)open_path(w);          /* if it fails, the next lock tries again */
    errno = e;
    fail(w, rc, w->path);
    return STATEIO_OK;               /* the lock is gone with the descriptor */
  }
  errno = e;
  return fail(w, rc, w->name);   /* the caller's descriptor: we cannot close it */
}

/*
** The fingerprint of the log's bytes before anchor (sio_int.h): from the
** last bytes this writer wrote when they end there, else read back.
*/
static int fingerprint(stateio_writer *w, uint64_t anchor, uint64_t *fp){
  size_t want = anchor < SIO_FP_LEN ? (size_t)anchor : SIO_FP_LEN;
  if( w->tail_end == anchor && w->tail_len == want ){
    *fp = sio_fingerprint_of(w->tail, want);
    return STATEIO_OK;
  }
  return fail(w, sio_log_fingerprint(w->fd, anchor, fp), w->name);
}

/* Remember the last bytes written: p[0..n) went to [at, at+n). */
static void note_tail(stateio_writer *w, const unsigned char *p, size_t n, uint64_t at){
  if( n >= SIO_FP_LEN ){
    memcpy(w->tail, p + n - SIO_FP_LEN, SIO_FP_LEN);
    w->tail_len = SIO_FP_LEN;
  }else if( w->tail_end == at && (w->tail_len == SIO_FP_LEN || w->tail_len == at) ){
    size_t keep = w->tail_len + n > SIO_FP_LEN ? SIO_FP_LEN - n : w->tail_len;
    memmove(w->tail, w->tail + w->tail_len - keep, keep);
    memcpy(w->tail + keep, p, n);
    w->tail_len = keep + n;
  }else{
    w->tail_len = 0;
    w->tail_end = UINT64_MAX;
    return;
  }
  w->tail_end = at + n;
}

/* Write a record r (seq taken from the last one, plus one); sync it when asked. */
static int put_record(stateio_writer *w, sio_rec r, int sync){
  r.seq = w->rec.seq + 1;
  r.log_id = w->log_id;
  int frc = fingerprint(w, sio_rec_anchor(&r), &r.fp);
  if( frc ) return frc;
  int rc = sio_commit_write(w->cfd, w->cpath, &r, sync);
  if( rc ) return fail(w, rc, w->cpath);
  w->rec = r;
  w->own_rec = 1;
  return STATEIO_OK;
}

/* Create the commit file, holding a done record for the log as it is. */
static int create_commit(stateio_writer *w, sio_rec r){
  r.seq = w->rec.seq + 1;
  r.log_id = w->log_id;
  int frc = fingerprint(w, sio_rec_anchor(&r), &r.fp);
  if( frc ) return frc;
  struct stat st;
  if( fstat(w->fd, &st) != 0 ) return fail(w, STATEIO_IOERR, w->name);
  const char *bad = NULL;
  int rc = sio_commit_create(w->cpath, w->ctmp, &r, &st, &w->cfd, &bad);
  if( rc ) return fail(w, rc, bad ? bad : w->dpath);
  w->rec = r;
  w->own_rec = 1;
  return STATEIO_OK;
}

/* A done record that says the log ends at l0, with nothing in flight. */
static sio_rec done_at(uint64_t l0){
  sio_rec r;
  memset(&r, 0, sizeof(r));
  r.state = SIO_REC_DONE;
  r.flags = SIO_REC_SYNCED;
  r.l0 = r.l1 = l0;
  r.hash = XXH64(NULL, 0, 0);
  return r;
}

/* Finish a cut that failed before (double fault), if nobody else has. */
static int finish_cut(stateio_writer *w, uint64_t *size){
  w->cut_pending = 0;
  if( *size != w->cut_size || w->cut_to > *size ) return STATEIO_OK;   /* settled by someone else */
  int rc = sio_ftruncate(w->fd, w->file, w->name, w->cut_to);
  if( rc == STATEIO_OK ) rc = sio_fdatasync(w->fd, w->file, w->name);
  if( rc ){
    w->cut_pending = 1;
    return fail(w, rc, w->name);
  }
  *size = w->cut_to;
  w->known = 0;
  if( w->cfd >= 0 ) return put_record(w, done_at(w->cut_to), 1);
  return STATEIO_OK;
}

/*
** Whether w's path still names its open file (st, under the lock; own:
** the commit file's record is this file's). A file renamed over loses its
** last link, unless it has another name: then only the path can tell. The
** path is looked up when the file has had another name, and when the
** commit file's record is not this file's (compaction leaves the new
** log's record there before its rename); otherwise the fstat has told.
*/
static int still_named(stateio_writer *w, const struct stat *st, int own){
  if( st->st_nlink == 0 ) return 0;
  if( st->st_nlink > 1 ) w->linked = 1;
  if( !w->linked && (w->cfd < 0 || own) ) return 1;
  return sio_path_names(w->path, st);
}

/* Take the lock, settle the commit file, make sure end/epoch describe the file as it is now. */
static int lock_and_refresh(stateio_writer *w){
  struct stat st;
  sio_rec r;
  int own, rc;
  if( w->held && w->known && !w->cut_pending && w->file_size == w->end ){
    /* STATEIO_EXCLUSIVE: nobody else has written since; the log is as we left it. */
    w->locked = 1;
    w->pend_epoch = w->epoch;
    w->pend_len = 0;
    w->pend_count = 0;
    return STATEIO_OK;
  }
  for(;;){
    if( w->fd < 0 ){
      rc = open_path(w);
      if( rc ) return rc;
    }
    const char *bad;
    rc = sio_lock_wait(w->fd, w->name, w->cpath, &w->cfd, w->timeout_ms, w->token, &r, &bad);
    if( rc ) return fail(w, rc, bad);
    w->locked = 1;
    if( fstat(w->fd, &st) != 0 ) return fail(w, STATEIO_IOERR, w->name);
    own = 0;
    if( w->cfd >= 0 ){
      rc = sio_rec_own(w->fd, &r, w->log_id, (uint64_t)st.st_size, &own);
      if( rc ) return fail(w, rc, w->name);
    }
    if( !w->path || still_named(w, &st, own) ) break;
    /* The file was replaced (compacted) or removed since we opened it. */
    w->locked = w->held = 0;
    close(w->fd);                /* drops the lock */
    w->fd = -1;
  }
  uint64_t size = (uint64_t)st.st_size;
  if( w->cfd >= 0 ){
    uint64_t seq = r.seq > w->rec.seq ? r.seq : w->rec.seq;
    if( own && r.state != SIO_REC_DONE ){
      /* A writer died in a commit (or could not finish a cut): settle it first. */
      const char *bad = NULL;
      uint64_t end;
      rc = sio_commit_recover(w->fd, w->name, w->cfd, w->cpath, &r, size, &end, &bad);
      if( rc ) return fail(w, rc, bad);
      size = end;
      w->known = 0;
      w->cut_pending = 0;
    }
    w->rec = r;
    w->rec.seq = seq > r.seq ? seq : r.seq;
    w->own_rec = own;
    if( own && w->rec_unsure && r.state == SIO_REC_DONE ){
      /* Our done record after a cut may not have reached the disk: make it so. */
      rc = put_record(w, r, 1);
      if( rc ) return rc;
    }
    w->rec_unsure = 0;
  }
  if( w->cut_pending ){
    rc = finish_cut(w, &size);
    if( rc ) return rc;
  }
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
    rc = find_end(w);
    if( rc ) return rc;
  }
  if( w->cfd >= 0 && !w->own_rec ){
    /*
    ** A stale record (a compaction that died before its rename, a commit
    ** file copied with the log): everyone ignores it, and while it is not
    ** this file's, still_named() looks the path up at every commit. Make it
    ** ours now, as a commit file created here would begin, rather than
    ** wait for a commit that needs a record (single unsynced ones never do).
    */
    rc = put_record(w, done_at(w->end), 0);
    if( rc ) return rc;
  }
  w->pend_epoch = w->epoch;
  w->pend_len = 0;
  w->pend_count = 0;
  return STATEIO_OK;
}

int stateio_writer_begin(stateio_writer *w){
  if( w->in_batch || w->prepared ) return STATEIO_MISUSE;
  w->in_batch = 1;
  w->bulk = 0;
  w->streamed = 0;
  return STATEIO_OK;
}

int stateio_writer_begin_bulk(stateio_writer *w){
  int rc = stateio_writer_begin(w);
  if( rc == STATEIO_OK ) w->bulk = 1;
  return rc;
}

/* Cut a torn tail (bytes past the last complete entry) before anything is appended. */
static int cut_torn(stateio_writer *w){
  if( w->file_size <= w->end ) return STATEIO_OK;
  int rc = sio_ftruncate(w->fd, w->file, w->name, w->end);
  if( rc == STATEIO_OK && (w->flags & STATEIO_SYNC) ) rc = sio_fdatasync(w->fd, w->file, w->name);
  if( rc ) return fail(w, rc, w->name);
  w->file_size = w->end;
  return STATEIO_OK;
}

/* Whether this batch's commit needs the commit file (a path writer only). */
static int needs_record(const stateio_writer *w){
  if( !w->cpath ) return 0;
  /* One entry without sync is atomic by itself (a torn one is a torn tail). */
  return w->bulk || w->pend_count > 1 || (w->flags & STATEIO_SYNC) || w->inflight;
}

/* Make sure the commit file exists (created holding "done at the batch's start"). */
static int ensure_commit(stateio_writer *w){
  if( w->cfd >= 0 ) return STATEIO_OK;
  return create_commit(w, done_at(w->batch_start));
}

/* Write the pending bytes at the end of the log (not synced), hashing them for a streamed batch's record. */
static int flush_pending(stateio_writer *w){
  w->wrote = 1;
  if( w->streamed && w->inflight ) XXH64_update(w->hs, w->pend, w->pend_len);
  int rc = sio_pwrite_full(w->fd, w->file, w->name, w->pend, w->pend_len, w->end);
  if( rc ){
    w->tail_end = UINT64_MAX;
    return fail(w, rc, w->name);
  }
  note_tail(w, w->pend, w->pend_len, w->end);
  w->end += w->pend_len;
  w->file_size = w->end;
  w->pend_len = 0;
  return STATEIO_OK;
}

/* A bulk batch's first chunk: record it in flight, its end unknown, before any byte goes out. */
static int bulk_start(stateio_writer *w){
  int rc = cut_torn(w);
  if( rc == STATEIO_OK && w->cpath ) rc = ensure_commit(w);
  if( rc == STATEIO_OK && w->cpath ){
    sio_rec r;
    memset(&r, 0, sizeof(r));
    r.state = SIO_REC_INFLIGHT;
    r.l0 = w->batch_start;
    r.l1 = SIO_L1_UNKNOWN;
    r.flags = (w->flags & STATEIO_SYNC) ? SIO_REC_SYNCED : 0;
    rc = put_record(w, r, (w->flags & STATEIO_SYNC) != 0);
    if( rc == STATEIO_OK ) w->inflight = 1;
  }
  if( rc == STATEIO_OK ) w->streamed = 1;
  if( rc == STATEIO_OK && w->inflight ){
    /* The record will hold the hash of the batch's bytes: stream it (a writer without a commit file has no use for it). */
    if( !w->hs ) w->hs = XXH64_createState();
    if( !w->hs ) return STATEIO_NOMEM;
    XXH64_reset(w->hs, 0);
  }
  return rc;
}

/*
** A commit (or a bulk chunk) failed, or a written batch is rolled back:
** leave nothing. Cut the log back to where the batch began and sync the
** cut; then a done record, synced. If the cut fails too (a double fault),
** a record "cut" (synced) makes whoever recovers next finish it, and this
** writer finishes it before its next append. Keeps errno and errfile of
** the first failure.
*/
static void undo_batch(stateio_writer *w){
  int e = errno;
  const char *ef = w->errfile;
  uint64_t l0 = w->batch_start;
  int sync = (w->flags & STATEIO_SYNC) != 0;
  if( w->wrote ){
    int rc = sio_ftruncate(w->fd, w->file, w->name, l0);
    if( rc == STATEIO_OK && sync ) rc = sio_fdatasync(w->fd, w->file, w->name);
    if( rc == STATEIO_OK ){
      w->end = w->file_size = l0;
      if( w->inflight && put_record(w, done_at(l0), sync) != STATEIO_OK ) w->rec_unsure = 1;
    }else{
      sio_rec c;
      memset(&c, 0, sizeof(c));
      c.state = SIO_REC_CUT;
      c.l0 = c.l1 = l0;
      int rc2 = STATEIO_OK;
      if( w->cpath && w->cfd < 0 ) rc2 = create_commit(w, c);
      else if( w->cpath ) rc2 = put_record(w, c, sync);
      (void)rc2;                       /* the writer's own memory covers it */
      w->cut_pending = 1;
      w->cut_to = l0;
      struct stat st;
      w->cut_size = fstat(w->fd, &st) == 0 ? (uint64_t)st.st_size : UINT64_MAX;
      w->known = 0;
    }
  }else if( w->inflight ){
    if( put_record(w, done_at(l0), 0) != STATEIO_OK ) w->rec_unsure = 1;
  }
  w->inflight = 0;
  w->wrote = 0;
  w->streamed = 0;
  w->end = l0 < w->end ? l0 : w->end;
  w->errfile = ef;
  errno = e;
}

/*
** A batch whose bytes in the file cannot be trusted or taken back any more
** (a chunk that could not be written, a record or a cut that failed): they
** are cut away, the batch fails with rc, and only rollback goes on.
*/
static void fail_batch(stateio_writer *w, int rc){
  w->wrote = 1;
  undo_batch(w);
  w->pend_len = 0;
  w->pend_count = 0;
  w->batch_rc = rc;
}

/* Re-hash the batch's bytes written so far, [batch_start, upto), after a rollback into them. */
static int rehash(stateio_writer *w, uint64_t upto){
  XXH64_reset(w->hs, 0);
  unsigned char buf[65536];
  for(uint64_t off = w->batch_start; off < upto; ){
    size_t k = upto - off < sizeof(buf) ? (size_t)(upto - off) : sizeof(buf);
    int rc = sio_pread_full(w->fd, buf, k, off);
    if( rc ) return fail(w, rc, w->name);
    XXH64_update(w->hs, buf, k);
    off += k;
  }
  return STATEIO_OK;
}

/* How many pending bytes a bulk batch writes out at a time. */
static size_t chunk_size(const stateio_writer *w){
  return w->spill && w->spill < SIO_BULK_CHUNK ? w->spill : SIO_BULK_CHUNK;
}

static int append(stateio_writer *w, int kind, const void *data, size_t len){
  if( !data && len > 0 ) return STATEIO_MISUSE;
  if( inherited(w) ) return STATEIO_MISUSE;
  if( w->prepared ) return STATEIO_MISUSE;
  if( w->batch_rc ) return w->batch_rc;
  if( !w->locked ){
    w->errfile = NULL;
    int rc = lock_and_refresh(w);
    if( rc ){
      int e = errno;
      (void)unlock(w);
      errno = e;
      return rc;
    }
    w->batch_start = w->end;
    w->batch_epoch = w->epoch;
    w->inflight = 0;
    w->wrote = 0;
  }
  if( w->pend_len == 0 && w->start_at > w->end && w->start_at - w->end < LOGIO_BLOCK ){
    /* The log ends with a damaged entry: pad its block, so that readers find what follows. */
    size_t pad = (size_t)(w->start_at - w->end);
    if( pad > w->pend_cap ){
      unsigned char *p = sio_realloc(w->pend, 64 * 1024);
      if( !p ) return STATEIO_NOMEM;
      w->pend = p;
      w->pend_cap = 64 * 1024;
    }
    memset(w->pend, 0, pad);
    w->pend_len = pad;
  }
  uint64_t off = w->end + w->pend_len;
  uint64_t need = logio_encoded_size(off, STATEIO_ENTRY_HEADER + (uint64_t)len);
  if( need > ((size_t)-1) / 2 - w->pend_len ) return STATEIO_TOOBIG;
  if( w->pend_len + need > w->pend_cap ){
    size_t cap = w->pend_cap ? w->pend_cap : 64 * 1024;
    while( cap < w->pend_len + need ) cap *= 2;
    unsigned char *p = sio_realloc(w->pend, cap);
    if( !p ) return STATEIO_NOMEM;
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
  w->last_start = start;
  w->pend_len += (size_t)need;
  w->pend_count++;
  if( kind == STATEIO_SNAPSHOT ) w->pend_epoch = start;
  if( !w->in_batch ) return stateio_writer_commit(w);
  if( !w->bulk && w->spill && w->cpath && w->pend_len >= w->spill ){
    /*
    ** Spill, as SQLite's pager does when its cache fills: a batch this big
    ** goes on as a bulk batch, its bytes out in chunks behind its record in
    ** flight (as atomic, and as invisible until the commit), so that memory
    ** does not grow with the batch.
    */
    w->bulk = 1;
  }
  if( w->bulk && w->pend_len >= chunk_size(w) ){
    int rc = w->wrote ? STATEIO_OK : bulk_start(w);
    if( rc == STATEIO_OK ) rc = flush_pending(w);
    if( rc ) fail_batch(w, rc);   /* the pending entries were encoded for offsets that are gone now */
    return rc;
  }
  return STATEIO_OK;
}

int stateio_update(stateio_writer *w, const void *data, size_t len){
  return append(w, STATEIO_UPDATE, data, len);
}

int stateio_snapshot(stateio_writer *w, const void *data, size_t len){
  return append(w, STATEIO_SNAPSHOT, data, len);
}

/*
** Steps 1 and 2 of a commit (doc/COMMIT.md): the record in flight, the
** bytes, the sync. On failure the batch is undone (undo_batch).
*/
static int write_batch(stateio_writer *w){
  int sync = (w->flags & STATEIO_SYNC) != 0;
  int rc = STATEIO_OK;
  if( w->bulk && w->wrote ){
    /* A bulk batch with chunks out: the rest, the log's sync, then the record says where it ends. */
    if( w->pend_len > 0 ) rc = flush_pending(w);
    if( rc == STATEIO_OK && sync ) rc = fail(w, sio_fdatasync(w->fd, w->file, w->name), w->name);
    if( rc == STATEIO_OK && w->inflight ){
      sio_rec r = w->rec;
      r.l1 = w->end;
      r.hash = XXH64_digest(w->hs);
      rc = put_record(w, r, sync);        /* its sync is the commit point */
    }
  }else{
    rc = cut_torn(w);
    int rec = rc == STATEIO_OK && needs_record(w);
    if( rec ) rc = ensure_commit(w);
    if( rc == STATEIO_OK && rec ){
      sio_rec r;
      memset(&r, 0, sizeof(r));
      r.state = SIO_REC_INFLIGHT;
      r.flags = sync ? SIO_REC_SYNCED : 0;
      r.l0 = w->end;
      r.l1 = w->end + w->pend_len;
      r.hash = XXH64(w->pend, w->pend_len, 0);
      /* Several entries: the record must be on disk before any of them can be. */
      rc = put_record(w, r, sync && w->pend_count > 1);
      if( rc == STATEIO_OK ) w->inflight = 1;
    }
    if( rc == STATEIO_OK ) rc = flush_pending(w);
    if( rc == STATEIO_OK && sync ) rc = fail(w, sio_fdatasync(w->fd, w->file, w->name), w->name);
  }
  if( rc ) undo_batch(w);
  return rc;
}

/* Forget the batch (the file is already as it should be) and release the lock; keeps errno. */
static int drop_batch(stateio_writer *w){
  int e = errno;
  w->batch_rc = 0;
  w->in_batch = 0;
  w->bulk = 0;
  w->streamed = 0;
  w->prepared = 0;
  w->inflight = 0;
  w->wrote = 0;
  w->pend_len = 0;
  w->pend_count = 0;
  w->pend_epoch = w->epoch;
  int rc = unlock(w);
  errno = e;
  return rc;
}

/* Step 3: the commit is done and visible; reset the batch, release the lock. */
static int finish_batch(stateio_writer *w){
  if( w->inflight ){
    sio_rec r = w->rec;
    r.state = SIO_REC_DONE;
    /*
    ** No sync: the in-flight record and the synced bytes already say
    ** "committed" to any recovery. If this write fails, the record stays
    ** in flight and the next locker (any writer or reader) marks it done
    ** after checking the hash: the commit stands either way.
    */
    (void)put_record(w, r, 0);
  }
  if( w->locked ) w->epoch = w->pend_epoch;
  return drop_batch(w);
}

int stateio_writer_prepare(stateio_writer *w){
  if( w->prepared || inherited(w) ) return STATEIO_MISUSE;
  if( w->batch_rc ){
    int rc = w->batch_rc;
    (void)drop_batch(w);
    return rc;
  }
  if( !w->locked ){
    /* Nothing appended: nothing to write; commit or rollback ends the batch. */
    w->prepared = 1;
    return STATEIO_OK;
  }
  if( w->pend_len == 0 && !w->wrote ){
    w->prepared = 1;
    return STATEIO_OK;
  }
  int rc = write_batch(w);
  if( rc ){
    (void)drop_batch(w);
    return rc;
  }
  w->prepared = 1;
  return STATEIO_OK;
}

int stateio_writer_reopen(stateio_writer *w){
  if( inherited(w) ) return STATEIO_MISUSE;
  if( !w->prepared ) return STATEIO_OK;
  if( !w->locked || !w->wrote ){
    w->prepared = 0;       /* nothing was written: the batch is as it was */
    return STATEIO_OK;
  }
  if( w->streamed && !w->inflight ){
    /* Streamed without a commit file (a writer on a descriptor): nothing says it committed. */
    w->prepared = 0;
    return STATEIO_OK;
  }
  if( w->streamed ){
    /*
    ** A bulk (or spilled) batch stays in the file, and its record goes back
    ** to "in flight, end unknown", which no recovery takes for a commit.
    ** If that cannot be written, the batch is failed as a chunk that
    ** cannot be written is: cut away, and only rollback goes on.
    */
    sio_rec r = w->rec;
    r.state = SIO_REC_INFLIGHT;
    r.l1 = SIO_L1_UNKNOWN;
    r.hash = 0;
    int rc = put_record(w, r, (w->flags & STATEIO_SYNC) != 0);
    w->prepared = 0;
    if( rc ) fail_batch(w, rc);
    return rc;
  }
  /* Bring the batch's bytes back from the file, then cut them away as a rollback does. */
  size_t n = (size_t)(w->end - w->batch_start);
  if( n > w->pend_cap ){
    unsigned char *p = sio_realloc(w->pend, n);
    if( !p ) return STATEIO_NOMEM;
    w->pend = p;
    w->pend_cap = n;
  }
  int rc = sio_pread_full(w->fd, w->pend, n, w->batch_start);
  if( rc ) return fail(w, rc, w->name);
  uint64_t count = w->pend_count, epoch = w->pend_epoch;
  undo_batch(w);
  if( w->cut_pending ){
    /* The cut failed (it is finished before the next append): nothing is pending. */
    w->prepared = 0;
    w->pend_len = 0;
    w->pend_count = 0;
    w->pend_epoch = w->epoch;
    return w->errfile ? STATEIO_IOERR : STATEIO_OK;
  }
  w->prepared = 0;
  w->pend_len = n;
  w->pend_count = count;
  w->pend_epoch = epoch;
  return STATEIO_OK;
}

int stateio_writer_commit(stateio_writer *w){
  if( inherited(w) ) return STATEIO_MISUSE;
  if( w->prepared ) return finish_batch(w);
  if( w->batch_rc ){
    int rc = w->batch_rc;
    int e = errno;
    stateio_writer_rollback(w);
    errno = e;
    return rc;
  }
  if( !w->locked ) return drop_batch(w);    /* nothing was appended */
  if( w->pend_len > 0 || w->wrote ){
    int rc = write_batch(w);
    if( rc ){
      (void)drop_batch(w);
      return rc;
    }
  }
  return finish_batch(w);
}

void stateio_writer_rollback(stateio_writer *w){
  if( inherited(w) ) forget_inherited(w);
  if( w->locked && (w->wrote || w->prepared) ) undo_batch(w);
  (void)drop_batch(w);
}

stateio_mark stateio_writer_mark(const stateio_writer *w){
  stateio_mark m;
  m.offset = w->end + w->pend_len;
  m.epoch = w->locked ? w->pend_epoch : w->epoch;
  m.count = w->pend_count;
  return m;
}

void stateio_writer_rollback_to(stateio_writer *w, stateio_mark m){
  if( inherited(w) ) return;
  if( !w->locked || w->prepared || w->batch_rc || m.offset > w->end + w->pend_len ) return;
  if( m.count == 0 || m.offset < w->batch_start ){
    /* Taken before the batch's first append (and its lock): undo it all. */
    m.offset = w->batch_start;
    m.epoch = w->batch_epoch;
    m.count = 0;
  }
  if( m.offset >= w->end ){
    w->pend_len = (size_t)(m.offset - w->end);
  }else{
    /* A bulk batch already wrote past the mark: cut back into it (its record is in flight). */
    int rc = sio_ftruncate(w->fd, w->file, w->name, m.offset);
    if( rc == STATEIO_OK && w->inflight ) rc = rehash(w, m.offset);
    if( rc ){
      fail(w, rc, w->name);
      fail_batch(w, rc);
      return;
    }
    w->end = w->file_size = m.offset;
    w->pend_len = 0;
  }
  w->pend_epoch = m.epoch;
  w->pend_count = m.count;
}

uint64_t stateio_writer_epoch(const stateio_writer *w){
  return w->locked ? w->pend_epoch : w->epoch;
}

uint64_t stateio_writer_last_offset(const stateio_writer *w){
  return w->last_start;
}

uint64_t stateio_writer_pending_count(const stateio_writer *w){
  return w->pend_count;
}

int stateio_writer_locked(const stateio_writer *w){ return w->locked; }

int stateio_writer_image(stateio_writer *w, stateio_image *img){
  if( inherited(w) ) return STATEIO_MISUSE;
  if( !w->locked ){
    if( w->path ){
      /* The file may have been replaced (compacted): follow it. */
      struct stat st;
      if( w->fd < 0 || (fstat(w->fd, &st) == 0 && !sio_path_names(w->path, &st)) ){
        int old = w->fd;
        w->fd = -1;
        int rc = open_path(w);
        if( rc ){
          w->fd = old;
          return rc;
        }
        if( old >= 0 ) close(old);
      }
      /* What readers see: the log up to its last commit that is done. */
      int rc = sio_commit_view(w->fd, w->path, w->fd, w->cfd, img);
      return fail(w, rc, rc == STATEIO_CORRUPT_COMMIT ? w->cpath : w->path);
    }
    return stateio_image_from_fd(img, w->fd);
  }
  memset(img, 0, sizeof(*img));
  img->fd = w->fd;
  img->file_size = w->end;     /* without the torn tail, if any */
  img->tail = w->pend;
  img->tail_len = w->pend_len;
  if( w->own_rec && w->rec.l1 != SIO_L1_UNKNOWN ){
    img->journaled = 1;
    img->committed = (w->rec.state == SIO_REC_DONE && (w->rec.flags & SIO_REC_SYNCED)) ? w->rec.l1 : 0;
  }
  return STATEIO_OK;
}

int stateio_writer_close(stateio_writer *w){
  if( !w ) return STATEIO_OK;
  stateio_writer_rollback(w);
  int rc = STATEIO_OK;
  if( w->held && release(w) != STATEIO_OK ) rc = STATEIO_IOERR;
  if( w->own_fd && w->fd >= 0 && close(w->fd) != 0 ) rc = STATEIO_IOERR;
  if( w->cfd >= 0 ) close(w->cfd);
  writer_free(w);
  return rc;
}
