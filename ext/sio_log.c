/* SPDX-License-Identifier: MIT */
/*
** sio_log.c - the logs a connection has open, and their writers.
**
** Every table of a connection over one file shares one SioLog, found in the
** connection's registry (SioConn, the modules' pAux: stateio_ext.h) by the
** file's device and inode: the four tables of one CREATE, and the tables of
** any other CREATE on the same file, whatever path names it (a hard link,
** "./x" for "x", a symbolic link). The SioLog owns the one stateio_writer,
** so a transaction's pending entries, its savepoints and its write lock are
** the same whichever of those tables is written or read. (Two writers on one
** file in one connection would also lock each other out: the library's lock
** is an flock() per open file description.)
**
** A SioLog is opened by a table's first read or write, never by xConnect,
** and opens nothing itself: reads take an image of the file as it is then
** (sio_image.c), and the writer is opened by the first write.
*/
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

/* ---------------------------------------------------------- the registry */

SioConn *sioConnNew(void){
  SioConn *p = sqlite3_malloc(sizeof(*p));
  if( p ) memset(p, 0, sizeof(*p));
  return p;
}

void sioConnUnref(SioConn *p){
  /* Tables hold their module, so every log is released before this. */
  if( p && --p->nRef==0 ) sqlite3_free(p);
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

/*
** What the registry knows a file by, in one statx(): its mode, device and
** inode (the only fields of *pSt filled), and *pBirth its birth time in
** ns, 0 when its file system keeps none. 0, or -1 with errno, as stat().
*/
static int sio_stat_id(const char *zPath, struct stat *pSt, uint64_t *pBirth){
  struct statx sx;
  if( statx(AT_FDCWD, zPath, 0, STATX_TYPE | STATX_MODE | STATX_INO | STATX_BTIME, &sx)!=0 ) return -1;
  memset(pSt, 0, sizeof(*pSt));
  pSt->st_mode = sx.stx_mode;
  pSt->st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
  pSt->st_ino = sx.stx_ino;
  *pBirth = (sx.stx_mask & STATX_BTIME)
          ? (uint64_t)sx.stx_btime.tv_sec * 1000000000u + sx.stx_btime.tv_nsec : 0;
  return 0;
}

/*
** The log of the file (dev, ino, birth) in the connection, or NULL. A log
** is the file its path names now (it was compacted since, perhaps: the new
** file replaced the one it was opened as), or the one it was opened as
** when its path names nothing now. That file may be gone, and its inode
** number given to a new file: the birth time tells them apart, or, where
** the file system keeps none, an open writer (which keeps the old inode
** from being reused). 2026-12-01: a table over a new file that got the
** inode number of a deleted one, which another table still held, shared
** that table's log and read the deleted path ("cannot open NEW: No such
** file or directory").
*/
static SioLog *sio_log_find(SioConn *pConn, dev_t dev, ino_t ino, uint64_t birth){
  SioLog *p;
  for(p=pConn->pLogs; p; p=p->pNext){
    struct stat st;
    uint64_t b;
    int bNamed = sio_stat_id(p->zAbs, &st, &b)==0;
    if( bNamed ){
      p->dev = st.st_dev;
      p->ino = st.st_ino;
      p->birth = b;
    }
    if( p->dev!=dev || p->ino!=ino ) continue;
    if( p->birth && birth ){
      if( p->birth==birth ) return p;
    }else if( bNamed || p->pWriter ){
      return p;
    }
  }
  return 0;
}

int sioLogOpen(SioConn *pConn, const char *zFile, int bWrite, int flags,
               sqlite3_int64 nSpill, const char *zTable, SioLog **ppLog, char **pzErr){
  SioLog *pLog;
  struct stat st;
  uint64_t birth;
  char *zAbs;
  int rc;

  *ppLog = 0;
  zAbs = sio_absolute(zFile);
  if( zAbs==0 ){
    if( errno==0 || errno==ENOMEM ){
      sioErrMsg(pzErr, "stateio: out of memory");
      return SQLITE_NOMEM;
    }
    return sioOpenStatus(pzErr, STATEIO_IOERR, zFile);
  }
  if( sio_stat_id(zAbs, &st, &birth)!=0 ){
    int e = errno;
    rc = sioOpenStatus(pzErr, STATEIO_IOERR, zFile);
    if( e==ENOENT && zTable ){
      /* Never made again in silence: the user says so. */
      sioErrMsg(pzErr, "stateio: log file %s is missing%s%s%s: "
                "INSERT INTO %s(%s) VALUES ('create') makes a new, empty one",
                zFile, strcmp(zFile, zAbs) ? " (" : "", strcmp(zFile, zAbs) ? zAbs : "",
                strcmp(zFile, zAbs) ? ")" : "", zTable, zTable);
    }
    sqlite3_free(zAbs);
    errno = e;
    return rc;
  }
  rc = sioRegularFile(pzErr, st.st_mode, zFile);
  if( rc!=SQLITE_OK ){
    sqlite3_free(zAbs);
    return rc;
  }
  pLog = sio_log_find(pConn, st.st_dev, st.st_ino, birth);
  if( pLog && bWrite && pLog->bFlagsSet && pLog->nWriteRef==0 && !pLog->bBatch && !pLog->bPrepared ){
    /*
    ** The tables that set the writer's options are gone (only functions or
    ** readonly tables hold the log): this one's options are the writer's now.
    */
    if( pLog->pWriter && (pLog->flags!=flags || pLog->nSpill!=nSpill) ){
      (void)stateio_writer_close(pLog->pWriter);
      pLog->pWriter = 0;
    }
    pLog->bFlagsSet = 0;
  }
  if( pLog ){
    sqlite3_free(zAbs);
    if( bWrite && pLog->bFlagsSet && (pLog->flags!=flags || pLog->nSpill!=nSpill) ){
      /* One writer per log and connection: its options are the first table's. */
      int bSync = (pLog->flags & STATEIO_SYNC)!=0;
      if( bSync!=((flags & STATEIO_SYNC)!=0) ){
        sioErrMsg(pzErr, "stateio: %s is already open in this connection with sync=%s",
                  zFile, bSync ? "full" : "off");
      }else if( pLog->nSpill!=nSpill ){
        if( pLog->nSpill<0 ){
          sioErrMsg(pzErr, "stateio: %s is already open in this connection without spill=", zFile);
        }else{
          sioErrMsg(pzErr, "stateio: %s is already open in this connection with spill=%lld",
                    zFile, (long long)pLog->nSpill);
        }
      }else{
        sioErrMsg(pzErr, "stateio: %s is already open in this connection with locking=%s",
                  zFile, (pLog->flags & STATEIO_EXCLUSIVE) ? "exclusive" : "normal");
      }
      return SQLITE_ERROR;
    }
    pLog->nRef++;
  }else{
    pLog = sqlite3_malloc(sizeof(*pLog));
    if( pLog==0 ){
      sqlite3_free(zAbs);
      sioErrMsg(pzErr, "stateio: out of memory");
      return SQLITE_NOMEM;
    }
    memset(pLog, 0, sizeof(*pLog));
    pLog->pConn = pConn;
    pLog->zAbs = zAbs;
    pLog->dev = st.st_dev;
    pLog->ino = st.st_ino;
    pLog->birth = birth;
    pLog->nRef = 1;
    pLog->pNext = pConn->pLogs;
    pConn->pLogs = pLog;
  }
  if( bWrite && !pLog->bFlagsSet ){
    pLog->flags = flags;
    pLog->nSpill = nSpill;
    pLog->bFlagsSet = 1;
  }
  if( bWrite ) pLog->nWriteRef++;
  *ppLog = pLog;
  return SQLITE_OK;
}

void sioLogRelease(SioLog *pLog, int bWrite){
  SioLog **pp;
  if( pLog && bWrite ) pLog->nWriteRef--;
  if( pLog==0 || --pLog->nRef>0 ) return;
  for(pp=&pLog->pConn->pLogs; *pp; pp=&(*pp)->pNext){
    if( *pp==pLog ){ *pp = pLog->pNext; break; }
  }
  /* Closing rolls back a batch still open (the connection is closing). */
  if( pLog->pWriter ) (void)stateio_writer_close(pLog->pWriter);
  sqlite3_free(pLog->zAbs);
  sqlite3_free(pLog);
}

/* ---------------------------------------------------------- creating */

/* fsync the directory that holds zAbs: the new file's name is durable then. */
static int sio_sync_dir(const char *zAbs){
  char *zCopy = sqlite3_mprintf("%s", zAbs);
  int fd, rc = 0;
  if( zCopy==0 ){ errno = ENOMEM; return -1; }
  fd = open(dirname(zCopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if( fd<0 || fsync(fd)!=0 ) rc = -1;
  if( fd>=0 ){
    int e = errno;
    close(fd);
    errno = e;
  }
  sqlite3_free(zCopy);
  return rc;
}

int sioFileCreate(const char *zFile, int bSync, int *pbCreated,
                  dev_t *pDev, ino_t *pIno, char **pzErr){
  struct stat st;
  char *zAbs;
  int fd, rc;
  *pbCreated = 0;
  zAbs = sio_absolute(zFile);
  if( zAbs==0 ) return sioOpenStatus(pzErr, STATEIO_IOERR, zFile);
  /*
  ** O_EXCL: we know whether we made it. O_NONBLOCK: a FIFO that appears
  ** there in between cannot make the open wait (it is refused below).
  */
  fd = open(zAbs, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644);
  if( fd>=0 ){
    rc = fstat(fd, &st);
    close(fd);
    if( rc!=0 ){
      rc = sioOpenStatus(pzErr, STATEIO_IOERR, zFile);
      (void)unlink(zAbs);
    }else if( bSync && sio_sync_dir(zAbs)!=0 ){
      sioErrMsg(pzErr, "stateio: cannot sync the directory of %s: %s", zFile, strerror(errno));
      (void)unlink(zAbs);
      rc = SQLITE_IOERR;
    }else{
      *pbCreated = 1;
      *pDev = st.st_dev;
      *pIno = st.st_ino;
      rc = SQLITE_OK;
    }
  }else if( errno==EEXIST && stat(zAbs, &st)==0 ){
    rc = sioRegularFile(pzErr, st.st_mode, zFile);
  }else{
    rc = sioOpenStatus(pzErr, STATEIO_IOERR, zFile);
  }
  sqlite3_free(zAbs);
  return rc;
}

void sioFileRemoveIfEmpty(const char *zFile, dev_t dev, ino_t ino){
  char *zAbs = sio_absolute(zFile);
  struct stat st;
  if( zAbs && stat(zAbs, &st)==0 && st.st_dev==dev && st.st_ino==ino
   && S_ISREG(st.st_mode) && st.st_size==0 ){
    (void)unlink(zAbs);
  }
  sqlite3_free(zAbs);
}

/* ---------------------------------------------------------- reading */

int sioLogImage(SioLog *pLog, const char *zName, SioImage *pImg, char **pzErr){
  if( pLog->pWriter && stateio_writer_locked(pLog->pWriter) ){
    /*
    ** This connection holds the lock (a transaction has written): the
    ** writer's image is the file followed by the pending entries.
    */
    stateio_image img;
    int rc = stateio_writer_image(pLog->pWriter, &img);
    if( rc!=STATEIO_OK ) return sioWriterStatus(pzErr, rc, pLog->pWriter, zName);
    rc = sioImageCopy(&img, pImg);
    if( rc!=STATEIO_OK ) return sioStatus(pzErr, rc, zName);
    return SQLITE_OK;
  }
  return sioImageOpen(pLog->zAbs, zName, pImg, pzErr);
}

int sioPathImage(SioConn *pConn, const char *zPath, SioImage *pImg, char **pzErr){
  struct stat st;
  SioLog *pLog;
  int rc;
  sioImageInit(pImg);
  uint64_t birth;
  if( sio_stat_id(zPath, &st, &birth)!=0 ) return sioOpenStatus(pzErr, STATEIO_IOERR, zPath);
  rc = sioRegularFile(pzErr, st.st_mode, zPath);
  if( rc!=SQLITE_OK ) return rc;
  pLog = sio_log_find(pConn, st.st_dev, st.st_ino, birth);
  if( pLog && pLog->pWriter && stateio_writer_locked(pLog->pWriter) ){
    /* A transaction of this connection has written the file: see what it sees. */
    return sioLogImage(pLog, zPath, pImg, pzErr);
  }
  /*
  ** Otherwise the file by the name given, which names it now (the log's
  ** own path may not: the file was renamed since a table opened it).
  */
  return sioImageOpen(zPath, zPath, pImg, pzErr);
}

/* ---------------------------------------------------------- writing */

int sioLogWriter(SioLog *pLog, const char *zName, stateio_writer **ppW, char **pzErr){
  int rc;
  *ppW = 0;
  if( pLog->pWriter==0 ){
    struct stat st;
    /* Not created here; and never a FIFO or a device (open could block). */
    if( stat(pLog->zAbs, &st)!=0 ) return sioOpenStatus(pzErr, STATEIO_IOERR, zName);
    rc = sioRegularFile(pzErr, st.st_mode, zName);
    if( rc!=SQLITE_OK ) return rc;
    rc = stateio_writer_open(&pLog->pWriter, pLog->zAbs, pLog->flags);
    if( rc!=STATEIO_OK ){
      pLog->pWriter = 0;
      return sioWriterOpenStatus(pzErr, rc, zName);
    }
    if( pLog->nSpill>=0 ) stateio_writer_set_spill(pLog->pWriter, (size_t)pLog->nSpill);
  }
  if( pLog->nTxn>0 && !pLog->bBatch ){
    /* The transaction's batch: one write and one sync at COMMIT. */
    rc = stateio_writer_begin(pLog->pWriter);
    if( rc!=STATEIO_OK ) return sioStatus(pzErr, rc, zName);
    pLog->bBatch = 1;
  }
  if( pLog->bPrepared ){
    /*
    ** xSync wrote the batch but SQLite's own commit failed (SQLITE_BUSY:
    ** another connection holds the database file) and the transaction
    ** goes on: the batch is taken back, pending again, for a later COMMIT
    ** or a ROLLBACK (2026-12-01, issue 9).
    */
    rc = sioLogReopen(pLog, zName, pzErr);
    if( rc!=SQLITE_OK ) return rc;
  }
  *ppW = pLog->pWriter;
  return SQLITE_OK;
}

int sioLogReopen(SioLog *pLog, const char *zName, char **pzErr){
  int rc;
  if( !pLog->bPrepared ) return SQLITE_OK;
  pLog->bPrepared = 0;
  rc = stateio_writer_reopen(pLog->pWriter);
  if( rc!=STATEIO_OK ) return sioWriterStatus(pzErr, rc, pLog->pWriter, zName);
  return SQLITE_OK;
}

/*
** The connection's busy timeout (PRAGMA busy_timeout), which applies to
** the log's lock as it does to SQLite's own locks; 0 when it cannot be read.
*/
int sioBusyTimeout(sqlite3 *db){
  sqlite3_stmt *pStmt = 0;
  int ms = 0;
  if( sqlite3_prepare_v2(db, "PRAGMA busy_timeout", -1, &pStmt, 0)==SQLITE_OK
   && sqlite3_step(pStmt)==SQLITE_ROW ){
    ms = sqlite3_column_int(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  return ms>0 ? ms : 0;
}

/* ---------------------------------------------------------- transactions */

void sioLogBegin(SioLog *pLog){
  pLog->nTxn++;
}

int sioLogSync(SioLog *pLog, const char *zName, char **pzErr){
  int rc;
  if( !pLog->bBatch || pLog->bPrepared ) return SQLITE_OK;
  /*
  ** Phase one of SQLite's two-phase commit: the whole transaction written
  ** with one write() and synced with one fdatasync(), its record in
  ** flight: durable, not yet visible to any reader. xCommit makes it
  ** visible; xRollback (SQLite's own commit failed) cuts it back. A crash
  ** between the two keeps it (recovery finds it whole and durable): see
  ** doc/COMMIT.md, "Two-phase". On failure the writer has put the file back.
  */
  rc = stateio_writer_prepare(pLog->pWriter);
  if( rc!=STATEIO_OK ){
    pLog->bBatch = 0;
    return sioWriterStatus(pzErr, rc, pLog->pWriter, zName);
  }
  pLog->bPrepared = 1;
  return SQLITE_OK;
}

void sioLogEnd(SioLog *pLog, int bCommit){
  if( pLog->nTxn>0 ) pLog->nTxn--;
  if( pLog->bBatch && (!bCommit || pLog->nTxn==0) ){
    pLog->bBatch = 0;
    pLog->bPrepared = 0;
    if( bCommit ){
      /*
      ** Phase two: the prepared batch becomes visible (its record done).
      ** SQLite has committed: nothing is left that can fail the COMMIT.
      */
      (void)stateio_writer_commit(pLog->pWriter);
    }else{
      /* Discarded; after xSync its bytes are cut back and the cut synced. */
      stateio_writer_rollback(pLog->pWriter);
    }
  }
}

void sioLogLeave(SioLog *pLog){
  if( pLog->nTxn>0 ) pLog->nTxn--;
  if( pLog->nTxn==0 && pLog->bBatch ){
    pLog->bBatch = 0;
    pLog->bPrepared = 0;
    stateio_writer_rollback(pLog->pWriter);
  }
}

SioMark sioLogMark(SioLog *pLog, int iLevel){
  SioMark m;
  memset(&m, 0, sizeof(m));
  m.iLevel = iLevel;
  if( pLog && pLog->pWriter && stateio_writer_locked(pLog->pWriter) ){
    m.bLocked = 1;
    m.m = stateio_writer_mark(pLog->pWriter);
  }
  return m;
}

int sioLogRollbackTo(SioLog *pLog, const SioMark *pMark, const char *zName,
                     char **pzErr){
  stateio_writer *w = pLog->pWriter;
  int rc;
  if( w==0 || !pLog->bBatch || !stateio_writer_locked(w) ) return SQLITE_OK;
  rc = sioLogReopen(pLog, zName, pzErr);      /* a failed COMMIT's prepared batch */
  if( rc!=SQLITE_OK ) return rc;
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
  rc = stateio_writer_begin(w);
  if( rc!=STATEIO_OK ) return sioStatus(pzErr, rc, zName);
  pLog->bBatch = 1;
  return SQLITE_OK;
}
