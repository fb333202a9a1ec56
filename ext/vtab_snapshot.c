/* SPDX-License-Identifier: MIT */
/*
** vtab_snapshot.c - the row of statelog_snapshot and
** stateio_snapshot('FILE'): the snapshot of one epoch (one row, or none
** when the epoch began without one): the current epoch's, or epoch E's
** with the argument at_epoch, found with stateio_read_epoch():
**
**   SELECT * FROM statelog_snapshot;                 -- the current epoch
**   SELECT * FROM statelog_snapshot(E);              -- epoch E
**   SELECT * FROM stateio_snapshot('app.log', E);
**
**   epoch     the epoch the snapshot begins (an ordinary column)
**   offset    where the snapshot's entry starts (an epoch is named by it,
**             so this is the epoch again; also the rowid)
**   data      the application's bytes (BLOB; TEXT with data=text)
**   at_epoch  (hidden) the argument: which epoch is shown
**   data_text (hidden, the function only) data as TEXT
**
** INSERT INTO statelog_snapshot(data) VALUES (?) appends a snapshot: a new
** epoch begins.
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

/* The table: %s the type of data. */
#define SNAPSHOT_SCHEMA \
  "CREATE TABLE x(epoch INTEGER, offset INTEGER, data %s, at_epoch INTEGER HIDDEN)"
/* The function stateio_snapshot(FILE [, E]). */
#define SNAPSHOT_FUNC_SCHEMA \
  "CREATE TABLE x(epoch INTEGER, offset INTEGER, data BLOB," \
  " file TEXT HIDDEN, at_epoch INTEGER HIDDEN, data_text TEXT HIDDEN)"
#define SNAPSHOT_EPOCH       0
#define SNAPSHOT_OFFSET      1
#define SNAPSHOT_DATA        2
#define SNAPSHOT_AT_EPOCH    3   /* the table */
#define SNAPSHOT_F_FILE      3   /* the function */
#define SNAPSHOT_F_AT_EPOCH  4
#define SNAPSHOT_F_DATA_TEXT 5

typedef struct SnapshotCursor {
  SioCursor base;
  stateio_state st;
} SnapshotCursor;

static int snapshotBestIndex(sqlite3_index_info *pInfo, const SioCols *pCols,
                             int *aUse, int *pIdxNum){
  (void)pCols;
  (void)pIdxNum;
  pInfo->estimatedCost = aUse[SIO_BIT_AT_EPOCH]>=0 ? 5.0 : 10.0;
  pInfo->estimatedRows = 1;
  return SQLITE_OK;
}

static void snapshotReset(SioCursor *pBase){
  stateio_state_clear(&((SnapshotCursor*)pBase)->st);
}

static int snapshotNext(SioCursor *pBase){
  pBase->bEof = 1;
  return SQLITE_OK;
}

static int snapshotFilter(SioCursor *pBase, int idxNum, sqlite3_value **aArg){
  SnapshotCursor *pCur = (SnapshotCursor*)pBase;
  int rc;
  (void)idxNum;
  rc = sioEpochOpen(pBase, aArg, &pCur->st);
  if( rc!=SQLITE_OK || pBase->bEof ) return rc;
  pBase->bEof = !pCur->st.has_snapshot;
  pBase->iRowid = (sqlite3_int64)pCur->st.epoch;
  return SQLITE_OK;
}

static int snapshotColumn(SioCursor *pBase, sqlite3_context *ctx, int iCol){
  SnapshotCursor *pCur = (SnapshotCursor*)pBase;
  switch( iCol ){
    case SNAPSHOT_EPOCH:
    case SNAPSHOT_OFFSET:
    case SIO_COL_AT_EPOCH:
      sqlite3_result_int64(ctx, (sqlite3_int64)pCur->st.epoch);
      break;
    case SNAPSHOT_DATA:
      sioResultData(ctx, pCur->st.snapshot, pCur->st.snapshot_len, pBase->bText);
      break;
    case SIO_COL_TEXT:
      sioResultData(ctx, pCur->st.snapshot, pCur->st.snapshot_len, 1);
      break;
  }
  return SQLITE_OK;
}

static int snapshotInsert(SioTab *pTab, sqlite3_value **apCol, sqlite3_int64 *pRowid){
  return sioInsertData(pTab, apCol, stateio_snapshot, pRowid);
}

static const char *const azSnapshotCol[] = { "epoch", "offset", "data" };

const SioKind sioKindSnapshot = {
  .zPart = "snapshot",
  .zFunc = "stateio_snapshot",
  .zSchema = SNAPSHOT_SCHEMA,
  .tab = { .nCol = 4, .iCmd = -1, .iFile = -1, .iAtEpoch = SNAPSHOT_AT_EPOCH,
           .iLogId = -1, .iText = -1 },
  .zFuncSchema = SNAPSHOT_FUNC_SCHEMA,
  .func = { .nCol = 6, .iCmd = -1, .iFile = SNAPSHOT_F_FILE,
            .iAtEpoch = SNAPSHOT_F_AT_EPOCH, .iLogId = -1, .iText = SNAPSHOT_F_DATA_TEXT },
  .azCol = azSnapshotCol,
  .nCol = 3,
  .iDataCol = SNAPSHOT_DATA,
  .szCursor = (int)sizeof(SnapshotCursor),
  /* One row at most: any order is the order it comes in. */
  .mConst = (1u << SNAPSHOT_EPOCH) | (1u << SNAPSHOT_OFFSET) | (1u << SNAPSHOT_DATA),
  .mUnique = 1u << SIO_ROWID_BIT,
  .zScan = "current epoch (restore)",
  .xBestIndex = snapshotBestIndex,
  .xFilter = snapshotFilter,
  .xNext = snapshotNext,
  .xColumn = snapshotColumn,
  .xReset = snapshotReset,
  .xInsert = snapshotInsert,
};
