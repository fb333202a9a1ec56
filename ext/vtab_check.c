/*
** vtab_check.c - the rows of stateio_check('FILE'): every problem
** stateio_check() finds in the log, in file order; none for a healthy log.
**
**   offset   where the damaged region or bad entry starts
**   length   its length in bytes
**   problem  a short phrase: "checksum mismatch", "torn tail",
**            "update of the wrong epoch", ...
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

#define CHECK_OFFSET   0
#define CHECK_LENGTH   1
#define CHECK_PROBLEM  2

typedef struct CheckRow {
  uint64_t offset;
  uint64_t length;
  char *zProblem;
} CheckRow;

typedef struct CheckCursor {
  SioCursor base;
  CheckRow *a;
  int n, nAlloc;
  int i;
} CheckCursor;

static int checkBestIndex(sqlite3_index_info *pInfo, int *pnArg, int *pIdxNum){
  (void)pnArg;
  (void)pIdxNum;
  pInfo->estimatedCost = 100000.0;
  pInfo->estimatedRows = 10;
  return SQLITE_OK;
}

static void checkReset(SioCursor *pBase){
  CheckCursor *pCur = (CheckCursor*)pBase;
  int i;
  for(i=0; i<pCur->n; i++) sqlite3_free(pCur->a[i].zProblem);
  sqlite3_free(pCur->a);
  pCur->a = 0;
  pCur->n = pCur->nAlloc = 0;
  pCur->i = 0;
}

/* stateio_check()'s callback: one row per problem; non-zero stops (OOM). */
static int check_cb(void *pArg, uint64_t offset, uint64_t length, const char *zProblem){
  CheckCursor *pCur = (CheckCursor*)pArg;
  CheckRow *p;
  if( pCur->n==pCur->nAlloc ){
    int nNew = pCur->nAlloc ? pCur->nAlloc*2 : 8;
    CheckRow *aNew = sqlite3_realloc64(pCur->a, sizeof(CheckRow)*(sqlite3_uint64)nNew);
    if( aNew==0 ) return SIO_NOMEM;
    pCur->a = aNew;
    pCur->nAlloc = nNew;
  }
  p = &pCur->a[pCur->n];
  p->offset = offset;
  p->length = length;
  p->zProblem = sqlite3_mprintf("%s", zProblem);
  if( p->zProblem==0 ) return SIO_NOMEM;
  pCur->n++;
  return 0;
}

static int checkNext(SioCursor *pBase){
  CheckCursor *pCur = (CheckCursor*)pBase;
  pCur->i++;
  if( pCur->i>=pCur->n ) pBase->bEof = 1;
  else pBase->iRowid = pCur->i + 1;
  return SQLITE_OK;
}

static int checkFilter(SioCursor *pBase, int idxNum, sqlite3_value **apArg){
  CheckCursor *pCur = (CheckCursor*)pBase;
  int rc;
  (void)idxNum;
  (void)apArg;
  rc = stateio_check(&pBase->img.img, check_cb, pCur);
  if( rc!=SIO_OK ) return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  pCur->i = -1;
  return checkNext(pBase);
}

static int checkColumn(SioCursor *pBase, sqlite3_context *ctx, int iCol){
  CheckCursor *pCur = (CheckCursor*)pBase;
  const CheckRow *p = &pCur->a[pCur->i];
  switch( iCol ){
    case CHECK_OFFSET:
      sqlite3_result_int64(ctx, (sqlite3_int64)p->offset);
      break;
    case CHECK_LENGTH:
      sqlite3_result_int64(ctx, (sqlite3_int64)p->length);
      break;
    case CHECK_PROBLEM:
      sqlite3_result_text(ctx, p->zProblem, -1, SQLITE_TRANSIENT);
      break;
  }
  return SQLITE_OK;
}

static const char *const azCheckCol[] = { "offset", "length", "problem" };

const SioKind sioKindCheck = {
  "check", "stateio_check",
  "offset INTEGER, length INTEGER, problem TEXT",
  azCheckCol,
  3, -1, (int)sizeof(CheckCursor),
  0,
  1u << SIO_ROWID_BIT,
  checkBestIndex, checkFilter, checkNext, checkColumn, checkReset,
  0,
  0
};
