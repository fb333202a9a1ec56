/* SPDX-License-Identifier: MIT */
/*
** sio_err.c - the library's SIO_* status codes as SQLite errors, and the
** messages that go with them. Messages are lowercase, start with
** "stateio: " and name the file as the table or query named it.
*/
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

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
    case STATEIO_OK:
      return SQLITE_OK;
    case STATEIO_BUSY:
      sioErrMsg(pz, "stateio: log file is locked by another writer: %s", zPath);
      return SQLITE_BUSY;
    case STATEIO_IOERR:
      sioErrMsg(pz, "stateio: i/o error on %s: %s", zPath, strerror(e));
      return SQLITE_IOERR;
    case STATEIO_NOMEM:
      sioErrMsg(pz, "stateio: out of memory");
      return SQLITE_NOMEM;
    case STATEIO_NOTLOG:
      sioErrMsg(pz, "stateio: not a stateio log: %s", zPath);
      return SQLITE_NOTADB;
    case STATEIO_CORRUPT_LOG:
    case STATEIO_CORRUPT_ENTRY:
    case STATEIO_TORN:
      sioErrMsg(pz, "stateio: %s in %s", stateio_errstr(rc), zPath);
      return SQLITE_CORRUPT;
    case STATEIO_TOOBIG:
      sioErrMsg(pz, "stateio: entry too big for %s", zPath);
      return SQLITE_TOOBIG;
    case STATEIO_CORRUPT_COMMIT: {
      size_t n = strlen(zPath);
      int bNamed = n>=7 && strcmp(zPath + n - 7, "-commit")==0;
      sioErrMsg(pz, "stateio: corrupt commit file: %s%s", zPath, bNamed ? "" : "-commit");
      return SQLITE_CORRUPT;
    }
    case STATEIO_MISUSE:
      sioErrMsg(pz, "stateio: library misuse on %s", zPath);
      return SQLITE_MISUSE;
    default:
      sioErrMsg(pz, "stateio: %s: %s", stateio_errstr(rc), zPath);
      return SQLITE_ERROR;
  }
}

/*
** The process that first loaded the extension. A writer refuses to work in
** a child of fork() (STATEIO_MISUSE): there the connection that owns it was
** carried across the fork, which SQLite forbids too; the message says so.
*/
static pid_t sioLoadPid;

void sioNoteLoad(void){
  pid_t none = 0;
  (void)__atomic_compare_exchange_n(&sioLoadPid, &none, getpid(), 0,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

static int sio_forked(void){
  pid_t p = __atomic_load_n(&sioLoadPid, __ATOMIC_RELAXED);
  return p!=0 && p!=getpid();
}

int sioWriterStatus(char **pz, int rc, stateio_writer *w, const char *zName){
  int e = errno;     /* the failure's: the stat() below must not change it */
  if( rc==STATEIO_MISUSE && sio_forked() ){
    sioErrMsg(pz, "stateio: %s: this connection was carried across fork(), and its "
              "writer belongs to the process that opened it: open a new connection here", zName);
    return SQLITE_MISUSE;
  }
  /*
  ** The writer says which file failed: the log (named as the table names
  ** it), its commit file (NAME-commit), or the directory that holds them.
  */
  const char *zFile = w ? stateio_writer_errfile(w) : 0;
  size_t n = zFile ? strlen(zFile) : 0;
  char *zMsgName;
  if( zFile==0 ) return sioStatus(pz, rc, zName);
  if( n>=7 && strcmp(zFile + n - 7, "-commit")==0 ){
    zMsgName = sqlite3_mprintf("%s-commit", zName);
  }else if( n>=11 && strcmp(zFile + n - 11, "-commit.tmp")==0 ){
    zMsgName = sqlite3_mprintf("%s-commit.tmp", zName);
  }else{
    struct stat st;
    int bDir = stat(zFile, &st)==0 && S_ISDIR(st.st_mode);
    zMsgName = bDir ? sqlite3_mprintf("the directory of %s", zName) : sqlite3_mprintf("%s", zName);
  }
  if( zMsgName==0 ) return SQLITE_NOMEM;
  errno = e;
  rc = sioStatus(pz, rc, zMsgName);
  sqlite3_free(zMsgName);
  return rc;
}

int sioOpenStatus(char **pz, int rc, const char *zPath){
  int e = errno;
  if( rc==STATEIO_IOERR ){
    sioErrMsg(pz, "stateio: cannot open %s: %s", zPath, strerror(e));
    errno = e;
    return SQLITE_CANTOPEN;
  }
  errno = e;
  return sioStatus(pz, rc, zPath);
}

int sioWriterOpenStatus(char **pz, int rc, const char *zName){
  if( rc==STATEIO_IOERR && errno==ENAMETOOLONG ){
    sioErrMsg(pz, "stateio: cannot write %s: its name leaves no room for its commit "
              "file's, %s-commit.tmp, which would be longer than the file system "
              "allows a name to be: use a shorter name", zName, zName);
    return SQLITE_CANTOPEN;
  }
  return sioOpenStatus(pz, rc, zName);
}

int sioCorrupt(char **pz, int rc, uint64_t off, int64_t len, const char *zPath){
  const char *zWhat = rc==STATEIO_CORRUPT_ENTRY ? "corrupt state entry" : "corrupt log";
  if( len<0 ){
    sioErrMsg(pz, "stateio: %s at offset %llu in %s", zWhat,
              (unsigned long long)off, zPath);
  }else{
    sioErrMsg(pz, "stateio: %s at offset %llu (length %lld) in %s", zWhat,
              (unsigned long long)off, (long long)len, zPath);
  }
  return SQLITE_CORRUPT;
}

int sioRegularFile(char **pz, mode_t mode, const char *zName){
  const char *zWhat;
  if( S_ISREG(mode) ) return SQLITE_OK;
  if( S_ISDIR(mode) ){
    errno = EISDIR;
    return sioOpenStatus(pz, STATEIO_IOERR, zName);
  }
  zWhat = S_ISFIFO(mode) ? "a fifo" : S_ISCHR(mode) ? "a character device"
        : S_ISBLK(mode) ? "a block device" : S_ISSOCK(mode) ? "a socket" : "a special file";
  sioErrMsg(pz, "stateio: not a stateio log: %s (%s, not a regular file)", zName, zWhat);
  return SQLITE_NOTADB;
}
