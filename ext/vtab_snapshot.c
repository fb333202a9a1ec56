/*
** vtab_snapshot.c - the row of statelog_snapshot and
** stateio_snapshot('FILE'): the current epoch's snapshot (one row, or none
** when the current epoch began without one), or with "WHERE epoch = E"
** epoch E's snapshot, found with stateio_read_epoch().
**
**   epoch   the epoch the snapshot begins
**   offset  where the snapshot's entry starts (an epoch is named by it, so
**           this is the epoch again; also the rowid)
**   data    the application's bytes
**
** INSERT INTO statelog_snapshot(data) VALUES (?) appends a snapshot: a new
** epoch begins.
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

#define SNAPSHOT_EPOCH   0
#define SNAPSHOT_OFFSET  1
#define SNAPSHOT_DATA    2

typedef struct SnapshotCursor {
  SioCursor base;
  stateio_epoch st;
} SnapshotCursor;

static int snapshotBestIndex(sqlite3_index_info *pInfo, int *pnArg, int *pIdxNum){
  return sioBestIndexEpoch(pInfo, SNAPSHOT_EPOCH, pnArg, pIdxNum);
}

static void snapshotReset(SioCursor *pBase){
  stateio_epoch_clear(&((SnapshotCursor*)pBase)->st);
}

static int snapshotNext(SioCursor *pBase){
  pBase->bEof = 1;
  return SQLITE_OK;
}

static int snapshotFilter(SioCursor *pBase, int idxNum, sqlite3_value **apArg){
  SnapshotCursor *pCur = (SnapshotCursor*)pBase;
  int rc = sioEpochOpen(pBase, idxNum, apArg, &pCur->st);
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
      sqlite3_result_int64(ctx, (sqlite3_int64)pCur->st.epoch);
      break;
    case SNAPSHOT_DATA:
      sioResultBlob(ctx, pCur->st.snapshot, pCur->st.snapshot_len);
      break;
  }
  return SQLITE_OK;
}

static int snapshotInsert(SioTab *pTab, sqlite3_value **apCol, sqlite3_int64 *pRowid){
  return sioInsertData(pTab, apCol, stateio_snapshot, pRowid);
}

static const char *const azSnapshotCol[] = { "epoch", "offset", "data" };

const SioKind sioKindSnapshot = {
  "snapshot", "stateio_snapshot",
  "epoch INTEGER, offset INTEGER, data BLOB",
  azSnapshotCol,
  3, SNAPSHOT_DATA, (int)sizeof(SnapshotCursor),
  /* One row at most: any order is the order it comes in. */
  (1u << SNAPSHOT_EPOCH) | (1u << SNAPSHOT_OFFSET) | (1u << SNAPSHOT_DATA),
  1u << SIO_ROWID_BIT,
  snapshotBestIndex, snapshotFilter, snapshotNext, snapshotColumn, snapshotReset,
  snapshotInsert,
  0
};
