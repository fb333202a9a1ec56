/*
** vtab_cursor.c - the methods all stateio tables and functions share:
** xBestIndex (the common part), and a cursor that opens a fresh image of
** the log at each xFilter and hands the rows to the table's kind
** (vtab_entries.c, vtab_updates.c, ...).
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

char *sioSchema(const SioKind *pKind, const char *zHidden){
  if( zHidden ){
    return sqlite3_mprintf("CREATE TABLE x(%s, \"%w\" HIDDEN%s%s)", pKind->zCols, zHidden,
                           pKind->zExtra ? ", " : "", pKind->zExtra ? pKind->zExtra : "");
  }
  return sqlite3_mprintf("CREATE TABLE x(%s)", pKind->zCols);
}

int64_t sioValueInt(sqlite3_value *v){
  int64_t r = -1;
  sqlite3_value *p;
  if( sqlite3_value_type(v)==SQLITE_INTEGER ) return sqlite3_value_int64(v);
  if( sqlite3_value_type(v)==SQLITE_NULL ) return -1;
  /* Compare as SQLite would with an INTEGER column: numeric affinity. */
  p = sqlite3_value_dup(v);
  if( p==0 ) return -1;
  switch( sqlite3_value_numeric_type(p) ){
    case SQLITE_INTEGER:
      r = sqlite3_value_int64(p);
      break;
    case SQLITE_FLOAT: {
      double d = sqlite3_value_double(p);
      if( d>=0.0 && d<9.0e18 && (double)(int64_t)d==d ) r = (int64_t)d;
      break;
    }
  }
  sqlite3_value_free(p);
  return r;
}

void sioResultBlob(sqlite3_context *ctx, const void *p, size_t n){
  if( n==0 ){
    sqlite3_result_zeroblob(ctx, 0);
  }else{
    sqlite3_result_blob64(ctx, p, (sqlite3_uint64)n, SQLITE_TRANSIENT);
  }
}

/*
** The common part of every xBestIndex; the kind adds its own constraints.
**
** idxNum bits (SIO_IDX_* in stateio_ext.h); xFilter's argv holds one value
** per bit set, in this order:
**
**   0x0001  SIO_IDX_FILE    the log file (table-valued functions: always)
**   0x0002  SIO_IDX_EPOCH   epoch = ? or IS ? (updates, snapshot): a seek
**                           with stateio_read_epoch(); without it the
**                           current epoch (stateio_restore())
**   0x0004  SIO_IDX_OFF_EQ  offset = ? (entries; also rowid)
**   0x0008  SIO_IDX_OFF_GT  offset > ?     } at most one lower bound
**   0x0010  SIO_IDX_OFF_GE  offset >= ?    }
**   0x0020  SIO_IDX_OFF_LT  offset < ?     } at most one upper bound
**   0x0040  SIO_IDX_OFF_LE  offset <= ?    }
**   0x0080  SIO_IDX_LOG_ID  log_id = ? (entries): the scan fails when the
**                           file is no longer that log (vtab_entries.c)
**   0x0100  SIO_IDX_DATA    the data column is used (no argv): rows hand
**                           SQLite their data only when it is asked for
**
** The offset bounds start the scan at the lower bound's block and stop it
** past the upper bound (vtab_entries.c); SQLite still checks them. The
** epoch and file constraints are omitted: they choose what the table is.
**
**   - A table-valued function needs its hidden argument, the log file:
**     an = constraint on column "file". Missing altogether is an error
**     with a message; present but not usable in this plan is
**     SQLITE_CONSTRAINT (the planner then tries another order).
**   - SIO_IDX_DATA tells xFilter whether the data column is used.
**   - ORDER BY is consumed when the rows already come in that order: each
**     term ascending and on a column that is the same on every row
**     (mConst), up to a term on a column that is unique and ascending
**     (mUnique).
*/
int sioBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  SioTab *pTab = (SioTab*)pVtab;
  const SioKind *pKind = pTab->pKind;
  int nArg = 1;
  int idxNum = 0;
  int rc;
  int i;

  if( pTab->bFunc ){
    int iFile = -1, bSeen = 0;
    for(i=0; i<pInfo->nConstraint; i++){
      const struct sqlite3_index_constraint *p = &pInfo->aConstraint[i];
      if( p->iColumn!=pKind->nCol || p->op!=SQLITE_INDEX_CONSTRAINT_EQ ) continue;
      bSeen = 1;
      if( p->usable ){ iFile = i; break; }
    }
    if( !bSeen ){
      sioErrMsg(&pVtab->zErrMsg, "stateio: %s needs a log file: %s('FILE')",
                pKind->zFunc, pKind->zFunc);
      return SQLITE_ERROR;
    }
    if( iFile<0 ) return SQLITE_CONSTRAINT;
    pInfo->aConstraintUsage[iFile].argvIndex = nArg++;
    pInfo->aConstraintUsage[iFile].omit = 1;
    idxNum |= SIO_IDX_FILE;
  }

  pInfo->estimatedCost = 1000000.0;
  pInfo->estimatedRows = 1000000;
  rc = pKind->xBestIndex(pInfo, &nArg, &idxNum);
  if( rc!=SQLITE_OK ) return rc;

  if( pKind->iDataCol>=0 ){
    sqlite3_uint64 mData = ((sqlite3_uint64)1) << pKind->iDataCol;
    if( pInfo->colUsed & mData ) idxNum |= SIO_IDX_DATA;
  }

  if( pInfo->nOrderBy>0 ){
    int bConsumed = 1;
    for(i=0; i<pInfo->nOrderBy; i++){
      int iCol = pInfo->aOrderBy[i].iColumn;
      unsigned m = iCol<0 ? (1u << SIO_ROWID_BIT) : (iCol<SIO_ROWID_BIT ? (1u << iCol) : 0);
      if( pInfo->aOrderBy[i].desc ){ bConsumed = 0; break; }
      if( m & pKind->mUnique ) break;
      if( (m & pKind->mConst)==0 ){ bConsumed = 0; break; }
    }
    pInfo->orderByConsumed = bConsumed;
  }
  pInfo->idxNum = idxNum;
  return SQLITE_OK;
}

int sioOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor){
  SioTab *pTab = (SioTab*)pVtab;
  SioCursor *pCur = sqlite3_malloc(pTab->pKind->szCursor);
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, pTab->pKind->szCursor);
  pCur->img.img.fd = -1;
  pCur->bEof = 1;
  *ppCursor = &pCur->base;
  return SQLITE_OK;
}

/* Free what the last scan held. */
static void sio_cursor_reset(SioCursor *pCur){
  SioTab *pTab = (SioTab*)pCur->base.pVtab;
  pTab->pKind->xReset(pCur);
  sioImageClose(&pCur->img);
  sqlite3_free(pCur->zFuncPath);
  pCur->zFuncPath = 0;
  pCur->zPath = 0;
  pCur->bEof = 1;
  pCur->iRowid = 0;
}

int sioClose(sqlite3_vtab_cursor *cur){
  SioCursor *pCur = (SioCursor*)cur;
  sio_cursor_reset(pCur);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

int sioFilter(
  sqlite3_vtab_cursor *cur,
  int idxNum, const char *idxStr,
  int argc, sqlite3_value **argv
){
  SioCursor *pCur = (SioCursor*)cur;
  SioTab *pTab = (SioTab*)cur->pVtab;
  char **pzErr = &pTab->base.zErrMsg;
  int rc;

  (void)idxStr;
  (void)argc;
  sio_cursor_reset(pCur);
  if( pTab->bFunc ){
    /* argv[0] is the log file (SIO_IDX_FILE is always set: see above). */
    const char *zFile = (const char*)sqlite3_value_text(argv[0]);
    if( zFile==0 ){
      if( sqlite3_value_type(argv[0])!=SQLITE_NULL ) return SQLITE_NOMEM;
      sioErrMsg(pzErr, "stateio: %s needs a log file, not null", pTab->pKind->zFunc);
      return SQLITE_ERROR;
    }
    pCur->zFuncPath = sqlite3_mprintf("%s", zFile);
    if( pCur->zFuncPath==0 ) return SQLITE_NOMEM;
    pCur->zPath = pCur->zFuncPath;
    pCur->bSkip = 0;
    rc = sioPathImage(pTab->db, pCur->zPath, &pCur->img, pzErr);
    argv++;
  }else{
    pCur->zPath = pTab->args.zFile;
    pCur->bSkip = pTab->args.bSkip;
    rc = sioTabLog(pTab, pzErr);
    if( rc==SQLITE_OK ) rc = sioLogImage(pTab->pLog, &pCur->img, pzErr);
    if( rc==SQLITE_OK ){
      int src = sioImageCheck(&pCur->img.img);
      if( src!=SIO_OK ) rc = sioStatus(pzErr, src, pCur->zPath);
    }
  }
  if( rc!=SQLITE_OK ){
    sio_cursor_reset(pCur);
    return rc;
  }
  pCur->bEof = 0;
  rc = pTab->pKind->xFilter(pCur, idxNum, argv);
  if( rc!=SQLITE_OK ) pCur->bEof = 1;
  return rc;
}

int sioNext(sqlite3_vtab_cursor *cur){
  SioCursor *pCur = (SioCursor*)cur;
  SioTab *pTab = (SioTab*)cur->pVtab;
  int rc = pTab->pKind->xNext(pCur);
  if( rc!=SQLITE_OK ) pCur->bEof = 1;
  return rc;
}

int sioEof(sqlite3_vtab_cursor *cur){
  return ((SioCursor*)cur)->bEof;
}

int sioColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int iCol){
  SioCursor *pCur = (SioCursor*)cur;
  SioTab *pTab = (SioTab*)cur->pVtab;
  if( iCol!=pTab->pKind->nCol ) return pTab->pKind->xColumn(pCur, ctx, iCol);
  /* The hidden column: a function's file argument, or the command column. */
  if( pTab->bFunc ) sqlite3_result_text(ctx, pCur->zPath, -1, SQLITE_TRANSIENT);
  return SQLITE_OK;
}

int sioRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  *pRowid = ((SioCursor*)cur)->iRowid;
  return SQLITE_OK;
}

int sioEpochOpen(SioCursor *pBase, int idxNum, sqlite3_value **apArg,
                 stateio_epoch *st){
  const logio_image *img = &pBase->img.img;
  int rc;
  if( idxNum & SIO_IDX_EPOCH ){
    int64_t iEpoch = sioValueInt(apArg[0]);
    if( iEpoch<0 ){
      pBase->bEof = 1;
      return SQLITE_OK;
    }
    rc = stateio_read_epoch(img, (uint64_t)iEpoch, st);
    if( rc==SIO_NOTFOUND || (rc!=SIO_OK && rc!=SIO_NOMEM && rc!=SIO_IOERR && pBase->bSkip) ){
      pBase->bEof = 1;
      return SQLITE_OK;
    }
  }else{
    /* The current epoch: restore never falls back to an older one. */
    rc = stateio_restore(img, st);
  }
  if( rc==SIO_CORRUPT_LOG || rc==SIO_CORRUPT_ENTRY ){
    return sioCorrupt(SIO_CUR_ERR(pBase), rc, st->bad_offset, -1, pBase->zPath);
  }
  return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
}

int sioBestIndexEpoch(
  sqlite3_index_info *pInfo,
  int iEpochCol,
  int *pnArg,
  int *pIdxNum
){
  int iUse = -1, bSeen = 0;
  int i;
  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *p = &pInfo->aConstraint[i];
    if( p->iColumn!=iEpochCol ) continue;
    if( p->op!=SQLITE_INDEX_CONSTRAINT_EQ && p->op!=SQLITE_INDEX_CONSTRAINT_IS ) continue;
    bSeen = 1;
    if( p->usable ){ iUse = i; break; }
  }
  if( iUse<0 ){
    /*
    ** Without epoch = ? the table shows the current epoch only, so a plan
    ** that leaves an epoch = ? constraint for later would filter the wrong
    ** rows. Refuse it: SQLite picks an order where the value is known.
    */
    if( bSeen ) return SQLITE_CONSTRAINT;
    pInfo->estimatedCost = 100.0;
    pInfo->estimatedRows = 100;
    return SQLITE_OK;
  }
  pInfo->aConstraintUsage[iUse].argvIndex = (*pnArg)++;
  pInfo->aConstraintUsage[iUse].omit = 1;
  *pIdxNum |= SIO_IDX_EPOCH;
  pInfo->estimatedCost = 50.0;
  pInfo->estimatedRows = 100;
  return SQLITE_OK;
}
