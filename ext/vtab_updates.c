/*
** vtab_updates.c - the rows of statelog_updates and stateio_updates('FILE'):
** the updates of the current epoch, in order (what restore's update reader
** returns), or with "WHERE epoch = E" those of epoch E, found with
** stateio_read_epoch() (a seek, not a scan).
**
**   epoch   the epoch
**   seq     0, 1, 2 ... within the epoch
**   offset  where the update's entry starts (also the rowid)
**   data    the application's bytes
**
** INSERT INTO statelog_updates(data) VALUES (?) appends an update.
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

#define UPDATES_EPOCH   0
#define UPDATES_SEQ     1
#define UPDATES_OFFSET  2
#define UPDATES_DATA    3

typedef struct UpdatesCursor {
  SioCursor base;
  stateio_epoch st;          /* the epoch read */
  stateio_updates *pUpd;     /* reader of its updates */
  logio_entry e;             /* the current update */
  int64_t iSeq;
} UpdatesCursor;

static int updatesBestIndex(sqlite3_index_info *pInfo, int *pnArg, int *pIdxNum){
  return sioBestIndexEpoch(pInfo, UPDATES_EPOCH, pnArg, pIdxNum);
}

static void updatesReset(SioCursor *pBase){
  UpdatesCursor *pCur = (UpdatesCursor*)pBase;
  stateio_updates_close(pCur->pUpd);
  pCur->pUpd = 0;
  stateio_epoch_clear(&pCur->st);
}

static int updatesNext(SioCursor *pBase){
  UpdatesCursor *pCur = (UpdatesCursor*)pBase;
  for(;;){
    logio_entry *e = &pCur->e;
    int rc = stateio_updates_next(pCur->pUpd, e);
    if( rc==SIO_OK ){
      pCur->iSeq = stateio_updates_seq(pCur->pUpd);
      pBase->iRowid = (sqlite3_int64)e->offset;
      return SQLITE_OK;
    }
    if( rc==SIO_DONE ) break;
    if( rc==SIO_CORRUPT_LOG || rc==SIO_CORRUPT_ENTRY ){
      int64_t len = rc==SIO_CORRUPT_LOG ? (int64_t)e->len : (int64_t)(e->end - e->offset);
      if( pBase->bSkip ) continue;
      return sioCorrupt(SIO_CUR_ERR(pBase), rc, e->offset, len, pBase->zPath);
    }
    return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  }
  pBase->bEof = 1;
  return SQLITE_OK;
}

static int updatesFilter(SioCursor *pBase, int idxNum, sqlite3_value **apArg){
  UpdatesCursor *pCur = (UpdatesCursor*)pBase;
  int rc = sioEpochOpen(pBase, idxNum, apArg, &pCur->st);
  if( rc!=SQLITE_OK || pBase->bEof ) return rc;
  rc = stateio_updates_open(&pCur->pUpd, &pBase->img.img, &pCur->st);
  if( rc!=SIO_OK ) return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  return updatesNext(pBase);
}

static int updatesColumn(SioCursor *pBase, sqlite3_context *ctx, int iCol){
  UpdatesCursor *pCur = (UpdatesCursor*)pBase;
  switch( iCol ){
    case UPDATES_EPOCH:
      sqlite3_result_int64(ctx, (sqlite3_int64)pCur->st.epoch);
      break;
    case UPDATES_SEQ:
      sqlite3_result_int64(ctx, (sqlite3_int64)pCur->iSeq);
      break;
    case UPDATES_OFFSET:
      sqlite3_result_int64(ctx, (sqlite3_int64)pCur->e.offset);
      break;
    case UPDATES_DATA:
      sioResultBlob(ctx, pCur->e.data, pCur->e.len);
      break;
  }
  return SQLITE_OK;
}

static int updatesInsert(SioTab *pTab, sqlite3_value **apCol, sqlite3_int64 *pRowid){
  return sioInsertData(pTab, apCol, stateio_update, pRowid);
}

static const char *const azUpdatesCol[] = { "epoch", "seq", "offset", "data" };

const SioKind sioKindUpdates = {
  "updates", "stateio_updates",
  "epoch INTEGER, seq INTEGER, offset INTEGER, data BLOB",
  azUpdatesCol,
  4, UPDATES_DATA, (int)sizeof(UpdatesCursor),
  1u << UPDATES_EPOCH,
  (1u << UPDATES_SEQ) | (1u << UPDATES_OFFSET) | (1u << SIO_ROWID_BIT),
  updatesBestIndex, updatesFilter, updatesNext, updatesColumn, updatesReset,
  updatesInsert,
  0
};
