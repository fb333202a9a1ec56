/*
** sio_log.c - the log a connection's tables share, and what goes with it:
** the writer and its transactions, images for readers, and the mapping of
** the library's SIO_* status codes to SQLite errors.
**
** Every table of a connection over one file shares one SioLog, found by
** (connection, realpath of the file): the four tables of one CREATE, and
** the tables of any other CREATE on the same file. The SioLog owns the one
** stateio_writer, so a transaction's pending entries, its savepoints and its
** write lock are the same whichever of those tables is written or read. (Two
** writers on one file in one connection would also lock each other out: the
** library's lock is an flock() per open file description.)
*/
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

/* ---------------------------------------------------------- errors */

void sioErrMsg(char **pz, const char *zFmt, ...){
  va_list ap;
  va_start(ap, zFmt);
  sqlite3_free(*pz);
  *pz = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
}

int sioStatus(char **pz, int rc, const char *zPath){
  int e = errno;     /* first: nothing below may change it before we read it */
  switch( rc ){
    case SIO_OK:
      return SQLITE_OK;
    case SIO_BUSY:
      sioErrMsg(pz, "stateio: log file is locked by another writer: %s", zPath);
      return SQLITE_BUSY;
    case SIO_IOERR:
      sioErrMsg(pz, "stateio: i/o error on %s: %s", zPath, strerror(e));
      return SQLITE_IOERR;
    case SIO_NOMEM:
      sioErrMsg(pz, "stateio: out of memory");
      return SQLITE_NOMEM;
    case SIO_NOTLOG:
      sioErrMsg(pz, "stateio: not a stateio log: %s", zPath);
      return SQLITE_CORRUPT;
    case SIO_CORRUPT_LOG:
    case SIO_CORRUPT_ENTRY:
    case SIO_TORN:
      sioErrMsg(pz, "stateio: %s in %s", sio_strstatus(rc), zPath);
      return SQLITE_CORRUPT;
    case SIO_TOOBIG:
      sioErrMsg(pz, "stateio: entry too big for %s", zPath);
      return SQLITE_TOOBIG;
    case SIO_MISUSE:
      sioErrMsg(pz, "stateio: library misuse on %s", zPath);
      return SQLITE_MISUSE;
    default:
      sioErrMsg(pz, "stateio: %s: %s", sio_strstatus(rc), zPath);
      return SQLITE_ERROR;
  }
}

int sioOpenStatus(char **pz, int rc, const char *zPath){
  int e = errno;
  if( rc==SIO_IOERR ){
    sioErrMsg(pz, "stateio: cannot open %s: %s", zPath, strerror(e));
    return SQLITE_CANTOPEN;
  }
  errno = e;
  return sioStatus(pz, rc, zPath);
}

int sioCorrupt(char **pz, int rc, uint64_t off, int64_t len, const char *zPath){
  const char *zWhat = rc==SIO_CORRUPT_ENTRY ? "corrupt state entry" : "corrupt log";
  if( len<0 ){
    sioErrMsg(pz, "stateio: %s at offset %llu in %s", zWhat,
              (unsigned long long)off, zPath);
  }else{
    sioErrMsg(pz, "stateio: %s at offset %llu (length %lld) in %s", zWhat,
              (unsigned long long)off, (long long)len, zPath);
  }
  return SQLITE_CORRUPT;
}

/* ---------------------------------------------------------- images */

void sioImageClose(SioImage *p){
  if( p->img.fd>=0 ) close(p->img.fd);
  sqlite3_free(p->aTail);
  memset(p, 0, sizeof(*p));
  p->img.fd = -1;
}

int sioImageCheck(const logio_image *img){
  uint64_t start, end;
  int rc;
  if( logio_image_size(img)==0 || logio_starts_with_record(img) ) return SIO_OK;
  /* A damaged first record: still a log if a complete entry follows. */
  rc = logio_rewind(img, logio_image_size(img), &start, &end);
  if( rc==SIO_DONE ) return SIO_NOTLOG;
  return rc;
}

/*
** Make *pImg a copy of img that the cursor owns: its own descriptor (a
** dup, so that the writer may reopen or close its own) and its own copy of
** the pending entries (the writer's buffer moves when it grows).
*/
static int sio_image_copy(const logio_image *img, SioImage *pImg){
  pImg->img = *img;
  pImg->img.fd = -1;
  pImg->aTail = 0;
  if( img->tail_len>0 ){
    pImg->aTail = sqlite3_malloc64(img->tail_len);
    if( pImg->aTail==0 ) return SIO_NOMEM;
    memcpy(pImg->aTail, img->tail, img->tail_len);
  }
  pImg->img.tail = pImg->aTail;
  if( img->fd>=0 ){
    pImg->img.fd = dup(img->fd);
    if( pImg->img.fd<0 ){
      int e = errno;
      sqlite3_free(pImg->aTail);
      pImg->aTail = 0;
      errno = e;
      return SIO_IOERR;
    }
  }
  return SIO_OK;
}

/* ---------------------------------------------------------- the registry */

/*
** All open logs of the process, each tagged with its connection. Only the
** list needs the mutex: a SioLog itself is used by its connection only.
*/
static pthread_mutex_t sioMutex = PTHREAD_MUTEX_INITIALIZER;
static SioLog *sioLogs = 0;

/* The log of (db, zReal) with a new reference, or NULL. */
static SioLog *sio_log_find(sqlite3 *db, const char *zReal){
  SioLog *p;
  pthread_mutex_lock(&sioMutex);
  for(p=sioLogs; p; p=p->pNext){
    if( p->db==db && strcmp(p->zReal, zReal)==0 ){
      p->nRef++;
      break;
    }
  }
  pthread_mutex_unlock(&sioMutex);
  return p;
}

/* zPath made absolute against the working directory (not resolved). */
static char *sio_absolute(const char *zPath){
  char *zCwd, *zAbs;
  if( zPath[0]=='/' ) return sqlite3_mprintf("%s", zPath);
  zCwd = getcwd(0, 0);
  if( zCwd==0 ) return 0;
  zAbs = sqlite3_mprintf("%s/%s", zCwd, zPath);
  free(zCwd);
  return zAbs;
}

/* Open the writer of pLog (the file is created if missing). */
static int sio_log_writer(SioLog *pLog, const SioArgs *p, const char *zAbs,
                          char **pzErr){
  int rc = stateio_writer_open(&pLog->pWriter, zAbs,
                               STATEIO_CREATE | (p->bSync ? STATEIO_SYNC : 0));
  if( rc!=SIO_OK ){
    pLog->pWriter = 0;
    return sioOpenStatus(pzErr, rc, p->zFile);
  }
  pLog->bSync = p->bSync;
  return SQLITE_OK;
}

int sioLogOpen(sqlite3 *db, const SioArgs *p, SioLog **ppLog, char **pzErr){
  SioLog *pLog = 0;
  char *zAbs = 0;
  char *zReal = 0;
  SioImage img;
  int rc = SQLITE_OK;
  int e;

  *ppLog = 0;
  memset(&img, 0, sizeof(img));
  img.img.fd = -1;
  zAbs = sio_absolute(p->zFile);
  if( zAbs==0 ){
    e = errno;
    if( e==0 || e==ENOMEM ) return SQLITE_NOMEM;
    sioErrMsg(pzErr, "stateio: cannot open %s: %s", p->zFile, strerror(e));
    return SQLITE_CANTOPEN;
  }
  zReal = realpath(zAbs, 0);
  if( zReal==0 && (errno!=ENOENT || p->bReadonly) ){
    sioErrMsg(pzErr, "stateio: cannot open %s: %s", p->zFile, strerror(errno));
    rc = SQLITE_CANTOPEN;
    goto open_done;
  }
  if( zReal ) pLog = sio_log_find(db, zReal);
  if( pLog ){
    /* Shared with another table of this connection. */
    if( !p->bReadonly ){
      if( pLog->pWriter==0 ){
        rc = sio_log_writer(pLog, p, zReal, pzErr);
      }else if( pLog->bSync!=p->bSync ){
        sioErrMsg(pzErr, "stateio: %s is already open in this connection with sync=%s",
                  p->zFile, pLog->bSync ? "full" : "off");
        rc = SQLITE_ERROR;
      }
    }
  }else{
    pLog = sqlite3_malloc64(sizeof(*pLog));
    if( pLog==0 ){ rc = SQLITE_NOMEM; goto open_done; }
    memset(pLog, 0, sizeof(*pLog));
    pLog->db = db;
    pLog->nRef = 1;
    pLog->zPath = sqlite3_mprintf("%s", p->zFile);
    if( pLog->zPath==0 ) rc = SQLITE_NOMEM;
    if( rc==SQLITE_OK && !p->bReadonly ){
      rc = sio_log_writer(pLog, p, zAbs, pzErr);
      if( rc==SQLITE_OK && zReal==0 ){
        zReal = realpath(zAbs, 0);
        if( zReal==0 ){
          sioErrMsg(pzErr, "stateio: cannot open %s: %s", p->zFile, strerror(errno));
          rc = SQLITE_CANTOPEN;
        }
      }
    }
    if( rc==SQLITE_OK ){
      pLog->zReal = sqlite3_mprintf("%s", zReal);
      if( pLog->zReal==0 ) rc = SQLITE_NOMEM;
    }
    if( rc==SQLITE_OK ){
      pthread_mutex_lock(&sioMutex);
      pLog->pNext = sioLogs;
      sioLogs = pLog;
      pthread_mutex_unlock(&sioMutex);
    }else{
      if( pLog->pWriter ) (void)stateio_writer_close(pLog->pWriter);
      sqlite3_free(pLog->zPath);
      sqlite3_free(pLog->zReal);
      sqlite3_free(pLog);
      pLog = 0;
      goto open_done;
    }
  }

  /* The file must be readable, and a log (or empty). */
  if( rc==SQLITE_OK ){
    rc = sioLogImage(pLog, &img, pzErr);
    if( rc==SQLITE_OK ){
      int src = sioImageCheck(&img.img);
      if( src!=SIO_OK ) rc = sioStatus(pzErr, src, p->zFile);
    }
    sioImageClose(&img);
  }
  if( rc!=SQLITE_OK ){
    sioLogRelease(pLog);
    pLog = 0;
  }

open_done:
  if( rc==SQLITE_NOMEM ) sioErrMsg(pzErr, "stateio: out of memory");
  free(zReal);
  sqlite3_free(zAbs);
  *ppLog = pLog;
  return rc;
}

void sioLogRelease(SioLog *pLog){
  SioLog **pp;
  int bLast = 0;
  if( pLog==0 ) return;
  pthread_mutex_lock(&sioMutex);
  if( --pLog->nRef==0 ){
    bLast = 1;
    for(pp=&sioLogs; *pp; pp=&(*pp)->pNext){
      if( *pp==pLog ){ *pp = pLog->pNext; break; }
    }
  }
  pthread_mutex_unlock(&sioMutex);
  if( bLast ){
    /* Closing rolls back a batch still open (the connection is closing). */
    if( pLog->pWriter ) (void)stateio_writer_close(pLog->pWriter);
    sqlite3_free(pLog->zPath);
    sqlite3_free(pLog->zReal);
    sqlite3_free(pLog);
  }
}

/* ---------------------------------------------------------- reading */

int sioLogImage(SioLog *pLog, SioImage *pImg, char **pzErr){
  int rc;
  memset(pImg, 0, sizeof(*pImg));
  pImg->img.fd = -1;
  if( pLog->pWriter ){
    /*
    ** While this connection holds the lock (a transaction has written),
    ** the writer's image is the file followed by the pending entries;
    ** otherwise it is the file as it is now.
    */
    logio_image img;
    rc = stateio_writer_image(pLog->pWriter, &img);
    if( rc==SIO_OK ) rc = sio_image_copy(&img, pImg);
  }else{
    rc = stateio_open_image(pLog->zReal, &pImg->img);
    if( rc!=SIO_OK ) return sioOpenStatus(pzErr, rc, pLog->zPath);
  }
  if( rc!=SIO_OK ) return sioStatus(pzErr, rc, pLog->zPath);
  return SQLITE_OK;
}

int sioPathImage(sqlite3 *db, const char *zPath, SioImage *pImg, char **pzErr){
  char *zReal;
  SioLog *pLog;
  int rc;
  memset(pImg, 0, sizeof(*pImg));
  pImg->img.fd = -1;
  zReal = realpath(zPath, 0);
  if( zReal==0 ){
    sioErrMsg(pzErr, "stateio: cannot open %s: %s", zPath, strerror(errno));
    return SQLITE_CANTOPEN;
  }
  pLog = sio_log_find(db, zReal);
  free(zReal);
  if( pLog ){
    /* A table of this connection has the file open: see what it sees. */
    rc = sioLogImage(pLog, pImg, pzErr);
    sioLogRelease(pLog);
  }else{
    int src = stateio_open_image(zPath, &pImg->img);
    rc = src==SIO_OK ? SQLITE_OK : sioOpenStatus(pzErr, src, zPath);
  }
  if( rc==SQLITE_OK ){
    int src = sioImageCheck(&pImg->img);
    if( src!=SIO_OK ){
      rc = sioStatus(pzErr, src, zPath);
      sioImageClose(pImg);
    }
  }
  return rc;
}

/* ---------------------------------------------------------- transactions */

int sioLogBegin(SioLog *pLog, char **pzErr){
  pLog->nTxn++;
  if( pLog->pWriter && !pLog->bBatch ){
    int rc = stateio_writer_begin(pLog->pWriter);
    if( rc!=SIO_OK ){
      pLog->nTxn--;
      return sioStatus(pzErr, rc, pLog->zPath);
    }
    pLog->bBatch = 1;
  }
  return SQLITE_OK;
}

int sioLogSync(SioLog *pLog, char **pzErr){
  int rc;
  if( !pLog->bBatch ) return SQLITE_OK;
  /*
  ** One write() and one fdatasync() for the whole transaction. The writer
  ** releases its lock here too; on failure it has put the file back.
  */
  pLog->bBatch = 0;
  rc = stateio_writer_commit(pLog->pWriter);
  if( rc!=SIO_OK ) return sioStatus(pzErr, rc, pLog->zPath);
  return SQLITE_OK;
}

void sioLogEnd(SioLog *pLog, int bCommit){
  if( pLog->nTxn>0 ) pLog->nTxn--;
  if( pLog->bBatch && (!bCommit || pLog->nTxn==0) ){
    pLog->bBatch = 0;
    if( bCommit ){
      /* Not reached when SQLite called xSync first, as it does. */
      (void)stateio_writer_commit(pLog->pWriter);
    }else{
      stateio_writer_rollback(pLog->pWriter);
    }
  }
}

void sioLogLeave(SioLog *pLog){
  if( pLog->nTxn>0 ) pLog->nTxn--;
  if( pLog->nTxn==0 && pLog->bBatch ){
    pLog->bBatch = 0;
    stateio_writer_rollback(pLog->pWriter);
  }
}

SioMark sioLogMark(SioLog *pLog, int iLevel){
  SioMark m;
  memset(&m, 0, sizeof(m));
  m.iLevel = iLevel;
  if( pLog->pWriter && stateio_writer_locked(pLog->pWriter) ){
    m.bLocked = 1;
    m.m = stateio_writer_mark(pLog->pWriter);
  }
  return m;
}

int sioLogRollbackTo(SioLog *pLog, const SioMark *pMark, char **pzErr){
  stateio_writer *w = pLog->pWriter;
  if( w==0 || !pLog->bBatch || !stateio_writer_locked(w) ) return SQLITE_OK;
  if( pMark->bLocked ){
    stateio_writer_rollback_to(w, pMark->m);
    return SQLITE_OK;
  }
  /*
  ** The savepoint is older than the transaction's first write: drop every
  ** pending entry, and the lock with them (it is taken again by the next
  ** write). stateio_writer_rollback_to() cannot do this with a mark taken
  ** before the lock: when another process appended in between, the mark
  ** lies before the batch's start and the call does nothing.
  */
  stateio_writer_rollback(w);
  pLog->bBatch = 0;
  {
    int rc = stateio_writer_begin(w);
    if( rc!=SIO_OK ) return sioStatus(pzErr, rc, pLog->zPath);
  }
  pLog->bBatch = 1;
  return SQLITE_OK;
}
