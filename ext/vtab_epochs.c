/*
** vtab_epochs.c - the rows of statelog_epochs and stateio_epochs('FILE'):
** every epoch of the log, oldest first, from one forward scan.
**
**   epoch          its number: the offset of its snapshot (0 for the first)
**   prev_epoch     the snapshot's epoch field, the epoch before it; NULL
**                  for an epoch without snapshot
**   snapshot_size  bytes of the snapshot's data; NULL without snapshot
**   updates        how many updates it has
**   bytes          its share of the file: from its first byte to the next
**                  epoch's (the last one: to the end of the last complete
**                  entry; a torn tail is no epoch's); they add up to the log
**   current        1 for the current (last) epoch, else 0
**
** With on_corrupt=skip, damage is stepped over; an update whose epoch is
** newer than the epoch being read (its snapshot was damaged) begins that
** epoch, shown without snapshot.
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

#define EPOCHS_EPOCH          0
#define EPOCHS_PREV_EPOCH     1
#define EPOCHS_SNAPSHOT_SIZE  2
#define EPOCHS_UPDATES        3
#define EPOCHS_BYTES          4
#define EPOCHS_CURRENT        5

typedef struct EpochRow {
  uint64_t epoch;
  int bSnap;
  uint64_t prev;
  uint64_t snapLen;
  uint64_t nUpdate;
  uint64_t bytes;
} EpochRow;

typedef struct EpochsCursor {
  SioCursor base;
  EpochRow *a;
  int n, nAlloc;
  int i;                 /* the current row */
} EpochsCursor;

static int epochsBestIndex(sqlite3_index_info *pInfo, int *pnArg, int *pIdxNum){
  (void)pnArg;
  (void)pIdxNum;
  pInfo->estimatedCost = 100000.0;    /* a scan of the whole log */
  pInfo->estimatedRows = 100;
  return SQLITE_OK;
}

static void epochsReset(SioCursor *pBase){
  EpochsCursor *pCur = (EpochsCursor*)pBase;
  sqlite3_free(pCur->a);
  pCur->a = 0;
  pCur->n = pCur->nAlloc = 0;
  pCur->i = 0;
}

/* A new epoch starting at `epoch`; NULL when out of memory. */
static EpochRow *epochs_add(EpochsCursor *pCur, uint64_t epoch){
  EpochRow *p;
  if( pCur->n==pCur->nAlloc ){
    int nNew = pCur->nAlloc ? pCur->nAlloc*2 : 16;
    EpochRow *aNew = sqlite3_realloc64(pCur->a, sizeof(EpochRow)*(sqlite3_uint64)nNew);
    if( aNew==0 ) return 0;
    pCur->a = aNew;
    pCur->nAlloc = nNew;
  }
  if( pCur->n>0 ){
    /* The previous epoch ends where this one begins. */
    EpochRow *pPrev = &pCur->a[pCur->n-1];
    pPrev->bytes = epoch - pPrev->epoch;
  }
  p = &pCur->a[pCur->n++];
  memset(p, 0, sizeof(*p));
  p->epoch = epoch;
  return p;
}

static int epochs_scan(EpochsCursor *pCur){
  SioCursor *pBase = &pCur->base;
  logio_reader *pReader = 0;
  uint64_t iEnd = 0;                 /* end of the last complete entry */
  EpochRow *pRow;
  int rc;

  pRow = epochs_add(pCur, 0);
  if( pRow==0 ) return SQLITE_NOMEM;
  rc = logio_reader_open(&pReader, &pBase->img.img, 0);
  if( rc!=SIO_OK ) return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  for(;;){
    logio_entry e;
    stateio_entry se;
    rc = logio_reader_next(pReader, &e);
    if( rc==SIO_TORN || rc==SIO_DONE ){ rc = SQLITE_OK; break; }
    if( rc==SIO_CORRUPT_LOG ){
      if( pBase->bSkip ) continue;
      rc = sioCorrupt(SIO_CUR_ERR(pBase), rc, e.offset, (int64_t)e.len, pBase->zPath);
      break;
    }
    if( rc!=SIO_OK ){
      rc = sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
      break;
    }
    rc = stateio_parse_entry(e.data, e.len, &se);
    if( rc==SIO_OK && se.kind==STATEIO_UPDATE && se.epoch!=pRow->epoch ){
      if( se.epoch>pRow->epoch && se.epoch<=e.offset && pBase->bSkip ){
        /* The snapshot that began this epoch was lost to damage. */
        pRow = epochs_add(pCur, se.epoch);
        if( pRow==0 ){ rc = SQLITE_NOMEM; break; }
      }else{
        rc = SIO_CORRUPT_ENTRY;      /* an update of the wrong epoch */
      }
    }
    if( rc!=SIO_OK ){
      if( pBase->bSkip ){ rc = SQLITE_OK; continue; }
      rc = sioCorrupt(SIO_CUR_ERR(pBase), rc, e.offset, (int64_t)(e.end - e.offset),
                      pBase->zPath);
      break;
    }
    iEnd = e.end;
    if( se.kind==STATEIO_UPDATE ){
      pRow->nUpdate++;
      continue;
    }
    /* A snapshot begins the epoch named by its offset (at 0: epoch 0). */
    if( e.offset!=0 ){
      pRow = epochs_add(pCur, e.offset);
      if( pRow==0 ){ rc = SQLITE_NOMEM; break; }
    }
    pRow->bSnap = 1;
    pRow->prev = se.epoch;
    pRow->snapLen = se.len;
  }
  logio_reader_close(pReader);
  if( rc==SQLITE_NOMEM ) sioErrMsg(SIO_CUR_ERR(pBase), "stateio: out of memory");
  if( rc==SQLITE_OK ){
    pRow->bytes = iEnd>pRow->epoch ? iEnd - pRow->epoch : 0;
  }
  return rc;
}

static int epochsNext(SioCursor *pBase){
  EpochsCursor *pCur = (EpochsCursor*)pBase;
  pCur->i++;
  if( pCur->i>=pCur->n ){
    pBase->bEof = 1;
  }else{
    pBase->iRowid = (sqlite3_int64)pCur->a[pCur->i].epoch;
  }
  return SQLITE_OK;
}

static int epochsFilter(SioCursor *pBase, int idxNum, sqlite3_value **apArg){
  EpochsCursor *pCur = (EpochsCursor*)pBase;
  int rc;
  (void)idxNum;
  (void)apArg;
  rc = epochs_scan(pCur);
  if( rc!=SQLITE_OK ) return rc;
  pCur->i = -1;
  return epochsNext(pBase);
}

static int epochsColumn(SioCursor *pBase, sqlite3_context *ctx, int iCol){
  EpochsCursor *pCur = (EpochsCursor*)pBase;
  const EpochRow *p = &pCur->a[pCur->i];
  switch( iCol ){
    case EPOCHS_EPOCH:
      sqlite3_result_int64(ctx, (sqlite3_int64)p->epoch);
      break;
    case EPOCHS_PREV_EPOCH:
      if( p->bSnap ) sqlite3_result_int64(ctx, (sqlite3_int64)p->prev);
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
      sqlite3_result_int(ctx, pCur->i==pCur->n-1);
      break;
  }
  return SQLITE_OK;
}

static const char *const azEpochsCol[] = {
  "epoch", "prev_epoch", "snapshot_size", "updates", "bytes", "current"
};

const SioKind sioKindEpochs = {
  "epochs", "stateio_epochs",
  "epoch INTEGER, prev_epoch INTEGER, snapshot_size INTEGER, updates INTEGER, "
  "bytes INTEGER, current INTEGER",
  azEpochsCol,
  6, -1, (int)sizeof(EpochsCursor),
  0,
  (1u << EPOCHS_EPOCH) | (1u << SIO_ROWID_BIT),
  epochsBestIndex, epochsFilter, epochsNext, epochsColumn, epochsReset,
  0,
  0
};
