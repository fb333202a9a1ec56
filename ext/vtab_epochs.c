/* SPDX-License-Identifier: MIT */
/*
** vtab_epochs.c - the rows of statelog_epochs and stateio_epochs('FILE'):
** every epoch of the log, oldest first.
**
**   epoch          its number: the offset of its snapshot (0 for the first)
**   prev_epoch     the snapshot's epoch field, the epoch before it; NULL
**                  for an epoch without snapshot, and for epoch 0 (there
**                  is none before it), so that a recursive walk ends
**   snapshot_size  bytes of the snapshot's data; NULL without snapshot
**   updates        how many updates it has
**   bytes          its share of the file: from its first byte to the next
**                  epoch's (the last one: to the end of the last complete
**                  entry; a torn tail is no epoch's); they add up to the log
**   current        1 for the current (last) epoch, else 0; NULL when the
**                  damage hides which epoch is current (on_corrupt=skip
**                  over a log that restore refuses)
**
** Two ways to the same rows:
**   - The chain. Restore finds the current epoch, and each snapshot names
**     the epoch before it (stateio_read_epoch, prev_epoch), back to epoch
**     0: that gives every column but updates, with one read per epoch, not
**     a read of the log. When updates is used (colUsed: SIO_BIT_UPDATES),
**     each row counts its epoch's updates with the update reader, as it is
**     returned.
**   - The scan, when the chain is broken (a damaged snapshot, a log that is
**     not one): one forward scan of every entry (stateio_scan), a row
**     returned as soon as the next epoch begins. With on_corrupt=skip,
**     damage is stepped over; an update whose epoch is newer than the
**     epoch being read (its snapshot was damaged) begins that epoch, shown
**     without snapshot.
** Which of the two is chosen depends on the log only (is the chain
** intact?), never on the columns asked for, so the rows do not either. The
** work is done in xNext, a row at a time: sqlite3_interrupt() stops it.
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

#define EPOCHS_SCHEMA \
  "CREATE TABLE x(epoch INTEGER, prev_epoch INTEGER, snapshot_size INTEGER," \
  " updates INTEGER, bytes INTEGER, current INTEGER)"
/* The function stateio_epochs(FILE). */
#define EPOCHS_FUNC_SCHEMA \
  "CREATE TABLE x(epoch INTEGER, prev_epoch INTEGER, snapshot_size INTEGER," \
  " updates INTEGER, bytes INTEGER, current INTEGER, file TEXT HIDDEN)"
#define EPOCHS_EPOCH          0
#define EPOCHS_PREV_EPOCH     1
#define EPOCHS_SNAPSHOT_SIZE  2
#define EPOCHS_UPDATES        3
#define EPOCHS_BYTES          4
#define EPOCHS_CURRENT        5
#define EPOCHS_F_FILE         6   /* the function */

typedef struct EpochRow {
  uint64_t epoch;
  int bSnap;
  uint64_t prev;
  uint64_t snapLen;
  uint64_t updatesStart;   /* the chain: where its update reader starts */
  uint64_t nUpdate;
  uint64_t bytes;
} EpochRow;

typedef struct EpochsCursor {
  SioCursor base;
  int bUpdates;            /* count the updates (the column is used) */
  EpochRow row;            /* the current row */
  int bCurrent;            /* it is the current epoch (the chain: the last one) */
  int bCurKnown;           /* restore succeeded: the current epoch is known */
  /* The chain, oldest first; iChain is the current row. */
  EpochRow *aChain;
  int nChain, nAlloc, iChain;
  /* The scan (aChain==0): the epoch being read, after the current row. */
  stateio_scan *pScan;
  EpochRow pend;
  uint64_t iEnd;           /* end of the last complete entry read */
  int bDone;               /* the scan has returned the last row */
} EpochsCursor;

static int epochsBestIndex(sqlite3_index_info *pInfo, const SioCols *pCols,
                           int *aUse, int *pIdxNum){
  (void)pCols;
  (void)aUse;
  if( pInfo->colUsed & (((sqlite3_uint64)1) << EPOCHS_UPDATES) ){
    *pIdxNum |= SIO_IDX(SIO_BIT_UPDATES);
    pInfo->estimatedCost = 100000.0;  /* a read of every entry */
  }else{
    pInfo->estimatedCost = 1000.0;    /* a read per epoch */
  }
  pInfo->estimatedRows = 100;
  return SQLITE_OK;
}

static void epochsReset(SioCursor *pBase){
  EpochsCursor *pCur = (EpochsCursor*)pBase;
  sqlite3_free(pCur->aChain);
  stateio_scan_close(pCur->pScan);
  memset((char*)pCur + sizeof(SioCursor), 0, sizeof(*pCur) - sizeof(SioCursor));
}

/* Append a row to the chain (newest first while it is built). */
static int epochs_chain_add(EpochsCursor *pCur, const stateio_state *st){
  EpochRow *p;
  if( pCur->nChain==pCur->nAlloc ){
    int nNew = pCur->nAlloc ? pCur->nAlloc*2 : 16;
    EpochRow *aNew = sqlite3_realloc64(pCur->aChain, sizeof(EpochRow)*(sqlite3_uint64)nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    pCur->aChain = aNew;
    pCur->nAlloc = nNew;
  }
  p = &pCur->aChain[pCur->nChain++];
  memset(p, 0, sizeof(*p));
  p->epoch = st->epoch;
  p->bSnap = st->has_snapshot;
  p->prev = st->prev_epoch;
  p->snapLen = st->snapshot_len;
  p->updatesStart = st->updates_start;
  return SQLITE_OK;
}

/*
** Walk the chain of epochs back from the current one. SQLITE_OK with
** pCur->aChain set (oldest first), or SQLITE_OK with aChain NULL when the
** chain is broken somewhere (the scan then tells what the log holds).
*/
static int epochs_chain(EpochsCursor *pCur){
  const stateio_image *img = &pCur->base.img.img;
  stateio_state st;
  uint64_t iLogEnd;
  int i, rc;
  rc = stateio_restore(img, &st);
  if( rc==STATEIO_NOMEM ) return SQLITE_NOMEM;
  pCur->bCurKnown = rc==STATEIO_OK;
  if( rc!=STATEIO_OK ) goto broken;
  iLogEnd = st.log_end;
  for(;;){
    uint64_t prev = st.prev_epoch;
    int bMore = st.has_snapshot && st.epoch>0;
    rc = epochs_chain_add(pCur, &st);
    stateio_state_clear(&st);
    if( rc!=SQLITE_OK ) return rc;
    if( !bMore ) break;
    rc = stateio_read_epoch(img, prev, &st);
    if( rc==STATEIO_NOMEM ) return SQLITE_NOMEM;
    if( rc!=STATEIO_OK || st.epoch>=pCur->aChain[pCur->nChain-1].epoch ) goto broken;
  }
  /* Oldest first; each epoch's bytes run to the next one's start. */
  for(i=0; i<pCur->nChain/2; i++){
    EpochRow t = pCur->aChain[i];
    pCur->aChain[i] = pCur->aChain[pCur->nChain-1-i];
    pCur->aChain[pCur->nChain-1-i] = t;
  }
  for(i=0; i<pCur->nChain; i++){
    EpochRow *p = &pCur->aChain[i];
    uint64_t end = i+1<pCur->nChain ? p[1].epoch : iLogEnd;
    p->bytes = end>p->epoch ? end - p->epoch : 0;
  }
  pCur->iChain = -1;
  return SQLITE_OK;

broken:
  stateio_state_clear(&st);
  sqlite3_free(pCur->aChain);
  pCur->aChain = 0;
  pCur->nChain = pCur->nAlloc = 0;
  return SQLITE_OK;
}

/* Count the updates of chain row p with the update reader. */
static int epochs_count(EpochsCursor *pCur, EpochRow *p){
  SioCursor *pBase = &pCur->base;
  stateio_updates *pUpd = 0;
  stateio_state st;
  int rc;
  memset(&st, 0, sizeof(st));
  st.epoch = p->epoch;
  st.has_snapshot = p->bSnap;
  st.updates_start = p->updatesStart;
  rc = stateio_updates_open(&pUpd, &pBase->img.img, &st);
  if( rc!=STATEIO_OK ) return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  p->nUpdate = 0;
  for(;;){
    stateio_entry e;
    rc = stateio_updates_next(pUpd, &e);
    if( rc==STATEIO_OK ){ p->nUpdate++; continue; }
    if( rc==STATEIO_DONE ){ rc = SQLITE_OK; break; }
    if( rc==STATEIO_CORRUPT_LOG || rc==STATEIO_CORRUPT_ENTRY ){
      if( pBase->bSkip ) continue;
      rc = sioCorrupt(SIO_CUR_ERR(pBase), rc, e.offset, (int64_t)(e.end - e.offset),
                      pBase->zPath);
      break;
    }
    rc = sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
    break;
  }
  stateio_updates_close(pUpd);
  return rc;
}

static int epochs_chain_next(EpochsCursor *pCur){
  SioCursor *pBase = &pCur->base;
  pCur->iChain++;
  if( pCur->iChain>=pCur->nChain ){
    pBase->bEof = 1;
    return SQLITE_OK;
  }
  if( pCur->bUpdates ){
    int rc = epochs_count(pCur, &pCur->aChain[pCur->iChain]);
    if( rc!=SQLITE_OK ) return rc;
  }
  pCur->row = pCur->aChain[pCur->iChain];
  pCur->bCurrent = pCur->iChain==pCur->nChain-1;
  pBase->iRowid = (sqlite3_int64)pCur->row.epoch;
  return SQLITE_OK;
}

/*
** The scan: read on until the epoch being read (pend) ends, then make it
** the current row. An epoch ends where the next begins, or at the end of
** the log (the last row).
*/
static int epochs_scan_next(EpochsCursor *pCur){
  SioCursor *pBase = &pCur->base;
  if( pCur->bDone ){
    pBase->bEof = 1;
    return SQLITE_OK;
  }
  for(;;){
    stateio_entry e;
    EpochRow next;
    int rc = stateio_scan_next(pCur->pScan, &e);
    if( rc==STATEIO_DONE ){
      pCur->row = pCur->pend;
      pCur->row.bytes = pCur->iEnd>pCur->row.epoch ? pCur->iEnd - pCur->row.epoch : 0;
      pCur->bCurrent = 1;
      pCur->bDone = 1;
      break;
    }
    if( rc==STATEIO_CORRUPT_LOG || (rc==STATEIO_CORRUPT_ENTRY && e.kind==0) ){
      if( pBase->bSkip ) continue;
      return sioCorrupt(SIO_CUR_ERR(pBase), rc, e.offset, (int64_t)(e.end - e.offset),
                        pBase->zPath);
    }
    if( rc!=STATEIO_OK && rc!=STATEIO_CORRUPT_ENTRY ){
      return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
    }
    /* A decoded entry: the epoch rules are applied here, as they were read. */
    memset(&next, 0, sizeof(next));
    if( e.kind==STATEIO_UPDATE ){
      if( e.epoch==pCur->pend.epoch ){
        pCur->pend.nUpdate++;
        pCur->iEnd = e.end;
        continue;
      }
      if( !(pBase->bSkip && e.epoch>pCur->pend.epoch && e.epoch<=e.offset) ){
        if( pBase->bSkip ) continue;
        return sioCorrupt(SIO_CUR_ERR(pBase), STATEIO_CORRUPT_ENTRY, e.offset,
                          (int64_t)(e.end - e.offset), pBase->zPath);
      }
      /* The snapshot that began this epoch was lost to damage. */
      next.epoch = e.epoch;
      next.nUpdate = 1;
    }else{
      if( !(e.epoch<e.offset || e.offset==0) ){
        if( pBase->bSkip ) continue;
        return sioCorrupt(SIO_CUR_ERR(pBase), STATEIO_CORRUPT_ENTRY, e.offset,
                          (int64_t)(e.end - e.offset), pBase->zPath);
      }
      next.epoch = e.offset;
      next.bSnap = 1;
      next.prev = e.epoch;
      next.snapLen = e.len;
    }
    pCur->iEnd = e.end;
    if( next.epoch==0 ){
      pCur->pend = next;           /* a snapshot at 0: epoch 0 has one */
      continue;
    }
    pCur->row = pCur->pend;
    pCur->row.bytes = next.epoch - pCur->row.epoch;
    pCur->bCurrent = 0;
    pCur->pend = next;
    break;
  }
  pBase->iRowid = (sqlite3_int64)pCur->row.epoch;
  return SQLITE_OK;
}

static int epochsNext(SioCursor *pBase){
  EpochsCursor *pCur = (EpochsCursor*)pBase;
  return pCur->aChain ? epochs_chain_next(pCur) : epochs_scan_next(pCur);
}

static int epochsFilter(SioCursor *pBase, int idxNum, sqlite3_value **aArg){
  EpochsCursor *pCur = (EpochsCursor*)pBase;
  int rc;
  (void)aArg;
  pCur->bUpdates = (idxNum & SIO_IDX(SIO_BIT_UPDATES))!=0;
  rc = epochs_chain(pCur);
  if( rc==SQLITE_NOMEM ) sioErrMsg(SIO_CUR_ERR(pBase), "stateio: out of memory");
  if( rc!=SQLITE_OK ) return rc;
  if( pCur->aChain==0 ){
    /* The scan reads every entry of the log: on two threads when it is large. */
    rc = stateio_scan_open(&pCur->pScan, &pBase->img.img, 0, 0);
    if( rc==STATEIO_OK ) rc = stateio_scan_parallel(pCur->pScan);
    if( rc!=STATEIO_OK ) return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  }
  return epochsNext(pBase);
}

static int epochsColumn(SioCursor *pBase, sqlite3_context *ctx, int iCol){
  EpochsCursor *pCur = (EpochsCursor*)pBase;
  const EpochRow *p = &pCur->row;
  switch( iCol ){
    case EPOCHS_EPOCH:
      sqlite3_result_int64(ctx, (sqlite3_int64)p->epoch);
      break;
    case EPOCHS_PREV_EPOCH:
      if( p->bSnap && p->epoch>0 ) sqlite3_result_int64(ctx, (sqlite3_int64)p->prev);
      break;
    case EPOCHS_SNAPSHOT_SIZE:
      if( p->bSnap ) sqlite3_result_int64(ctx, (sqlite3_int64)p->snapLen);
      break;
    case EPOCHS_UPDATES:
      sqlite3_result_int64(ctx, (sqlite3_int64)p->nUpdate);
      break;
    case EPOCHS_BYTES:
      sqlite3_result_int64(ctx, (sqlite3_int64)p->bytes);
      break;
    case EPOCHS_CURRENT:
      /*
      ** Scanning because restore failed (the damage hides which epoch is
      ** current, on_corrupt=skip): NULL, never an older epoch marked as
      ** the current one.
      */
      if( pCur->aChain || pCur->bCurKnown ) sqlite3_result_int(ctx, pCur->bCurrent);
      break;
  }
  return SQLITE_OK;
}

static const char *const azEpochsCol[] = {
  "epoch", "prev_epoch", "snapshot_size", "updates", "bytes", "current"
};

const SioKind sioKindEpochs = {
  .zPart = "epochs",
  .zFunc = "stateio_epochs",
  .zSchema = EPOCHS_SCHEMA,
  .tab = { .nCol = 6, .iCmd = -1, .iFile = -1, .iAtEpoch = -1, .iLogId = -1, .iText = -1 },
  .zFuncSchema = EPOCHS_FUNC_SCHEMA,
  .func = { .nCol = 7, .iCmd = -1, .iFile = EPOCHS_F_FILE, .iAtEpoch = -1,
            .iLogId = -1, .iText = -1 },
  .azCol = azEpochsCol,
  .nCol = 6,
  .iDataCol = -1,
  .szCursor = (int)sizeof(EpochsCursor),
  .mConst = 0,
  .mUnique = (1u << EPOCHS_EPOCH) | (1u << SIO_ROWID_BIT),
  .zScan = "the chain of snapshots (prev_epoch)",
  .xBestIndex = epochsBestIndex,
  .xFilter = epochsFilter,
  .xNext = epochsNext,
  .xColumn = epochsColumn,
  .xReset = epochsReset,
  .xInsert = 0,
};
