/* SPDX-License-Identifier: MIT */
/*
** vtab_check.c - the rows of stateio_check('FILE'): every problem of the
** log, in file order, as stateio_check() reports them; none for a healthy
** log.
**
**   offset   where the damaged region or bad entry starts
**   length   its length in bytes
**   problem  a short phrase: "checksum mismatch", "torn tail",
**            "update of the wrong epoch", ...; "not a stateio log" (one
**            row for the whole file) for a file that holds nothing of one
**
** The rows come from one forward scan (stateio_scan), a problem at a time
** in xNext, so sqlite3_interrupt() stops a check between two rows.
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

#define CHECK_FUNC_SCHEMA \
  "CREATE TABLE x(offset INTEGER, length INTEGER, problem TEXT, file TEXT HIDDEN)"
#define CHECK_OFFSET   0
#define CHECK_LENGTH   1
#define CHECK_PROBLEM  2
#define CHECK_F_FILE   3

typedef struct CheckCursor {
  SioCursor base;
  stateio_scan *pScan;
  int bDone;               /* the last row was returned */
  uint64_t iOffset;        /* the current row */
  uint64_t iLength;
  const char *zProblem;    /* static: the library's phrases */
} CheckCursor;

static void checkReset(SioCursor *pBase){
  CheckCursor *pCur = (CheckCursor*)pBase;
  stateio_scan_close(pCur->pScan);
  pCur->pScan = 0;
  pCur->bDone = 0;
}

static int checkNext(SioCursor *pBase){
  CheckCursor *pCur = (CheckCursor*)pBase;
  if( pCur->bDone ){
    pBase->bEof = 1;
    return SQLITE_OK;
  }
  for(;;){
    stateio_entry e;
    int rc = stateio_scan_next(pCur->pScan, &e);
    if( rc==STATEIO_OK ) continue;
    if( rc==STATEIO_CORRUPT_LOG || rc==STATEIO_CORRUPT_ENTRY ){
      pCur->iOffset = e.offset;
      pCur->iLength = e.end - e.offset;
      pCur->zProblem = e.problem ? e.problem : stateio_errstr(rc);
      break;
    }
    if( rc==STATEIO_DONE ){
      uint64_t len, off = stateio_scan_torn(pCur->pScan, &len);
      pCur->bDone = 1;
      if( len==0 ){
        pBase->bEof = 1;
        return SQLITE_OK;
      }
      pCur->iOffset = off;
      pCur->iLength = len;
      pCur->zProblem = "torn tail";
      break;
    }
    return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  }
  pBase->iRowid++;
  return SQLITE_OK;
}

static int checkFilter(SioCursor *pBase, int idxNum, sqlite3_value **aArg){
  CheckCursor *pCur = (CheckCursor*)pBase;
  const stateio_image *img = &pBase->img.img;
  int rc;
  (void)idxNum;
  (void)aArg;
  rc = sioImageCheck(img);
  if( rc==STATEIO_NOTLOG ){
    /* Nothing of a log in it: that is the one problem. */
    pCur->iOffset = 0;
    pCur->iLength = stateio_image_size(img);
    pCur->zProblem = "not a stateio log";
    pCur->bDone = 1;
    pBase->iRowid = 1;
    return SQLITE_OK;
  }
  if( rc!=STATEIO_OK ) return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  rc = stateio_scan_open(&pCur->pScan, img, 0, 0);
  /* A check reads the whole log, as stateio_check() does: on two threads when it is large. */
  if( rc==STATEIO_OK ) rc = stateio_scan_parallel(pCur->pScan);
  if( rc!=STATEIO_OK ) return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  return checkNext(pBase);
}

static int checkColumn(SioCursor *pBase, sqlite3_context *ctx, int iCol){
  CheckCursor *pCur = (CheckCursor*)pBase;
  switch( iCol ){
    case CHECK_OFFSET:
      sqlite3_result_int64(ctx, (sqlite3_int64)pCur->iOffset);
      break;
    case CHECK_LENGTH:
      sqlite3_result_int64(ctx, (sqlite3_int64)pCur->iLength);
      break;
    case CHECK_PROBLEM:
      sqlite3_result_text(ctx, pCur->zProblem, -1, SQLITE_TRANSIENT);
      break;
  }
  return SQLITE_OK;
}

static const char *const azCheckCol[] = { "offset", "length", "problem" };

const SioKind sioKindCheck = {
  .zPart = "check",
  .zFunc = "stateio_check",
  .zSchema = 0,                       /* a function only */
  .tab = { .nCol = 3, .iCmd = -1, .iFile = -1, .iAtEpoch = -1, .iLogId = -1, .iText = -1 },
  .zFuncSchema = CHECK_FUNC_SCHEMA,
  .func = { .nCol = 4, .iCmd = -1, .iFile = CHECK_F_FILE, .iAtEpoch = -1,
            .iLogId = -1, .iText = -1 },
  .azCol = azCheckCol,
  .nCol = 3,
  .iDataCol = -1,
  .szCursor = (int)sizeof(CheckCursor),
  .mConst = 0,
  .mUnique = 1u << SIO_ROWID_BIT,
  .zScan = "every entry",
  .bAnyFile = 1,
  .xBestIndex = 0,
  .xFilter = checkFilter,
  .xNext = checkNext,
  .xColumn = checkColumn,
  .xReset = checkReset,
  .xInsert = 0,
};
