/* SPDX-License-Identifier: MIT */
/*
** vtab_updates.c - the rows of statelog_updates and stateio_updates('FILE'):
** the updates of one epoch, in order (what restore's update reader
** returns): the current epoch's, or epoch E's with the argument at_epoch,
** found with stateio_read_epoch() (a seek, not a scan):
**
**   SELECT * FROM statelog_updates;                  -- the current epoch
**   SELECT * FROM statelog_updates(E);               -- epoch E
**   SELECT * FROM stateio_updates('app.log', E);
**
**   epoch     the epoch (an ordinary column: WHERE epoch = E filters the
**             rows of the epoch shown, it chooses nothing)
**   seq       0, 1, 2 ... within the epoch
**   offset    where the update's entry starts (also the rowid)
**   data      the application's bytes (BLOB; TEXT with data=text)
**   at_epoch  (hidden) the argument: which epoch is shown
**   data_text (hidden, the function only) data as TEXT
**
** INSERT INTO statelog_updates(data) VALUES (?) appends an update.
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

/* The table: %s the type of data. */
#define UPDATES_SCHEMA \
  "CREATE TABLE x(epoch INTEGER, seq INTEGER, offset INTEGER, data %s," \
  " at_epoch INTEGER HIDDEN)"
/* The function stateio_updates(FILE [, E]). */
#define UPDATES_FUNC_SCHEMA \
  "CREATE TABLE x(epoch INTEGER, seq INTEGER, offset INTEGER, data BLOB," \
  " file TEXT HIDDEN, at_epoch INTEGER HIDDEN, data_text TEXT HIDDEN)"
#define UPDATES_EPOCH       0
#define UPDATES_SEQ         1
#define UPDATES_OFFSET      2
#define UPDATES_DATA        3
#define UPDATES_AT_EPOCH    4   /* the table */
#define UPDATES_F_FILE      4   /* the function */
#define UPDATES_F_AT_EPOCH  5
#define UPDATES_F_DATA_TEXT 6

typedef struct UpdatesCursor {
  SioCursor base;
  stateio_state st;          /* the epoch read */
  stateio_updates *pUpd;     /* reader of its updates */
  stateio_entry e;             /* the current update */
  int64_t iSeq;
  uint64_t nRead;            /* bytes of the updates read (SIO_PARALLEL_AFTER) */
} UpdatesCursor;

static int updatesBestIndex(sqlite3_index_info *pInfo, const SioCols *pCols,
                            int *aUse, int *pIdxNum){
  (void)pCols;
  (void)pIdxNum;
  /* One epoch's updates: a read of its snapshot, then its updates. */
  pInfo->estimatedCost = aUse[SIO_BIT_AT_EPOCH]>=0 ? 50.0 : 100.0;
  pInfo->estimatedRows = 100;
  return SQLITE_OK;
}

static void updatesReset(SioCursor *pBase){
  UpdatesCursor *pCur = (UpdatesCursor*)pBase;
  stateio_updates_close(pCur->pUpd);
  pCur->pUpd = 0;
  stateio_state_clear(&pCur->st);
}

static int updatesNext(SioCursor *pBase){
  UpdatesCursor *pCur = (UpdatesCursor*)pBase;
  for(;;){
    stateio_entry *e = &pCur->e;
    int rc = stateio_updates_next(pCur->pUpd, e);
    if( rc==STATEIO_OK ){
      pCur->iSeq = stateio_updates_seq(pCur->pUpd);
      pBase->iRowid = (sqlite3_int64)e->offset;
      if( pCur->nRead<SIO_PARALLEL_AFTER ){
        pCur->nRead += e->end - e->offset;
        if( pCur->nRead>=SIO_PARALLEL_AFTER ){
          rc = stateio_updates_parallel(pCur->pUpd);
          if( rc!=STATEIO_OK ) return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
        }
      }
      return SQLITE_OK;
    }
    if( rc==STATEIO_DONE ) break;
    if( rc==STATEIO_CORRUPT_LOG || rc==STATEIO_CORRUPT_ENTRY ){
      if( pBase->bSkip ) continue;
      return sioCorrupt(SIO_CUR_ERR(pBase), rc, e->offset, (int64_t)(e->end - e->offset),
                        pBase->zPath);
    }
    return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  }
  pBase->bEof = 1;
  return SQLITE_OK;
}

static int updatesFilter(SioCursor *pBase, int idxNum, sqlite3_value **aArg){
  UpdatesCursor *pCur = (UpdatesCursor*)pBase;
  int rc;
  (void)idxNum;
  rc = sioEpochOpen(pBase, aArg, &pCur->st);
  if( rc!=SQLITE_OK || pBase->bEof ) return rc;
  rc = stateio_updates_open(&pCur->pUpd, &pBase->img.img, &pCur->st);
  if( rc!=STATEIO_OK ) return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  pCur->nRead = 0;
  return updatesNext(pBase);
}

static int updatesColumn(SioCursor *pBase, sqlite3_context *ctx, int iCol){
  UpdatesCursor *pCur = (UpdatesCursor*)pBase;
  switch( iCol ){
    case UPDATES_EPOCH:
    case SIO_COL_AT_EPOCH:
      sqlite3_result_int64(ctx, (sqlite3_int64)pCur->st.epoch);
      break;
    case UPDATES_SEQ:
      sqlite3_result_int64(ctx, (sqlite3_int64)pCur->iSeq);
      break;
    case UPDATES_OFFSET:
      sqlite3_result_int64(ctx, (sqlite3_int64)pCur->e.offset);
      break;
    case UPDATES_DATA:
      sioResultData(ctx, pCur->e.data, pCur->e.len, pBase->bText);
      break;
    case SIO_COL_TEXT:
      sioResultData(ctx, pCur->e.data, pCur->e.len, 1);
      break;
  }
  return SQLITE_OK;
}

static int updatesInsert(SioTab *pTab, sqlite3_value **apCol, sqlite3_int64 *pRowid){
  return sioInsertData(pTab, apCol, stateio_update, pRowid);
}

static const char *const azUpdatesCol[] = { "epoch", "seq", "offset", "data" };

const SioKind sioKindUpdates = {
  .zPart = "updates",
  .zFunc = "stateio_updates",
  .zSchema = UPDATES_SCHEMA,
  .tab = { .nCol = 5, .iCmd = -1, .iFile = -1, .iAtEpoch = UPDATES_AT_EPOCH,
           .iLogId = -1, .iText = -1 },
  .zFuncSchema = UPDATES_FUNC_SCHEMA,
  .func = { .nCol = 7, .iCmd = -1, .iFile = UPDATES_F_FILE,
            .iAtEpoch = UPDATES_F_AT_EPOCH, .iLogId = -1, .iText = UPDATES_F_DATA_TEXT },
  .azCol = azUpdatesCol,
  .nCol = 4,
  .iDataCol = UPDATES_DATA,
  .szCursor = (int)sizeof(UpdatesCursor),
  .mConst = 1u << UPDATES_EPOCH,
  .mUnique = (1u << UPDATES_SEQ) | (1u << UPDATES_OFFSET) | (1u << SIO_ROWID_BIT),
  .zScan = "current epoch (restore)",
  .xBestIndex = updatesBestIndex,
  .xFilter = updatesFilter,
  .xNext = updatesNext,
  .xColumn = updatesColumn,
  .xReset = updatesReset,
  .xInsert = updatesInsert,
};
