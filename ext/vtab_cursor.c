/* SPDX-License-Identifier: MIT */
/*
** vtab_cursor.c - the methods all stateio tables and functions share:
** xBestIndex (the common part), and a cursor that opens a fresh image of
** the log at each xFilter and hands the rows to the table's kind
** (vtab_entries.c, vtab_updates.c, ...).
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

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

int sioIntRange(sqlite3_value *v, int op, uint64_t *pLo, uint64_t *pHi){
  uint64_t lo = 0, hi = UINT64_MAX;
  sqlite3_value *p;
  int eType;
  int bNone = 0;
  p = sqlite3_value_dup(v);
  if( p==0 ) return 0;              /* out of memory: no narrowing */
  eType = sqlite3_value_numeric_type(p);
  if( eType==SQLITE_NULL ){
    bNone = 1;                      /* a comparison with NULL is never true */
  }else if( eType==SQLITE_INTEGER || eType==SQLITE_FLOAT ){
    /* The integers x with x OP v, where v is sqlite3_value_double(p). */
    int64_t i = sqlite3_value_int64(p);
    int bExact = 1;
    if( eType==SQLITE_FLOAT ){
      double d = sqlite3_value_double(p);
      if( d<0.0 ){
        i = -1; bExact = 0;         /* between -1 and 0, or below */
        if( d<=-1.0 ) i = -2;
      }else if( d>=9.0e18 ){
        i = INT64_MAX; bExact = 0;
      }else{
        i = (int64_t)d;             /* floor(d) for d >= 0 */
        bExact = (double)i==d;
      }
    }
    switch( op ){
      case SQLITE_INDEX_CONSTRAINT_EQ:
        if( !bExact || i<0 ) bNone = 1; else { lo = (uint64_t)i; hi = lo + 1; }
        break;
      case SQLITE_INDEX_CONSTRAINT_GT:     /* x > v: x >= floor(v)+1 */
        if( i==INT64_MAX ) bNone = 1; else if( i>=0 ) lo = (uint64_t)i + 1;
        break;
      case SQLITE_INDEX_CONSTRAINT_GE:     /* x >= v: x >= ceil(v) */
        if( i==INT64_MAX && !bExact ) bNone = 1;
        else if( i>=0 ) lo = (uint64_t)i + (bExact ? 0 : 1);
        break;
      case SQLITE_INDEX_CONSTRAINT_LT:     /* x < v: x < ceil(v) */
        if( i==INT64_MAX && !bExact ) break;
        if( i<0 || (i==0 && bExact) ) bNone = 1;
        else hi = (uint64_t)i + (bExact ? 0 : 1);
        break;
      case SQLITE_INDEX_CONSTRAINT_LE:     /* x <= v: x < floor(v)+1 */
        if( i==INT64_MAX ) break;
        if( i<0 ) bNone = 1; else hi = (uint64_t)i + 1;
        break;
    }
  }else{
    /* Text or blob: greater than every integer. */
    if( op==SQLITE_INDEX_CONSTRAINT_EQ || op==SQLITE_INDEX_CONSTRAINT_GT
     || op==SQLITE_INDEX_CONSTRAINT_GE ){
      bNone = 1;
    }
  }
  sqlite3_value_free(p);
  if( lo>*pLo ) *pLo = lo;
  if( hi<*pHi ) *pHi = hi;
  return bNone;
}

void sioResultData(sqlite3_context *ctx, const void *p, size_t n, int bText){
  if( bText ){
    if( n==0 ){
      sqlite3_result_text(ctx, "", 0, SQLITE_STATIC);
    }else{
      sqlite3_result_text64(ctx, p, (sqlite3_uint64)n, SQLITE_TRANSIENT, SQLITE_UTF8);
    }
  }else if( n==0 ){
    sqlite3_result_zeroblob(ctx, 0);
  }else{
    sqlite3_result_blob64(ctx, p, (sqlite3_uint64)n, SQLITE_TRANSIENT);
  }
}

/* ---------------------------------------------------------- xBestIndex */

/*
** What each idxNum bit (stateio_ext.h) does, in the words EXPLAIN QUERY
** PLAN shows: idxStr is these words for the bits of the plan, or the
** kind's zScan when the plan has none of the kind's own.
*/
static const char *const azSioBit[SIO_NBIT] = {
  /* SIO_BIT_FILE */     "file=?",
  /* SIO_BIT_AT_EPOCH */ "at_epoch=? (read that epoch)",
  /* SIO_BIT_OFF_EQ */   "offset=?",
  /* SIO_BIT_OFF_GT */   "offset>?",
  /* SIO_BIT_OFF_GE */   "offset>=?",
  /* SIO_BIT_OFF_LT */   "offset<?",
  /* SIO_BIT_OFF_LE */   "offset<=?",
  /* SIO_BIT_LOG_ID */   "log_id=? (checked)",
  /* SIO_BIT_EPOCH_EQ */ "epoch=?",
  /* SIO_BIT_EPOCH_GT */ "epoch>?",
  /* SIO_BIT_EPOCH_GE */ "epoch>=?",
  /* SIO_BIT_DATA */     "data",
  /* SIO_BIT_UPDATES */  "every entry (updates counted)",
};

/*
** The bits that make a scan of the entries start past the log's start (a
** seek); the upper bounds make it stop early.
*/
#define SIO_SEEK_BITS (SIO_IDX(SIO_BIT_OFF_EQ) | SIO_IDX(SIO_BIT_OFF_GT) \
  | SIO_IDX(SIO_BIT_OFF_GE) | SIO_IDX(SIO_BIT_EPOCH_EQ) \
  | SIO_IDX(SIO_BIT_EPOCH_GT) | SIO_IDX(SIO_BIT_EPOCH_GE))

static char *sio_idx_str(const SioKind *pKind, int idxNum){
  sqlite3_str *p = sqlite3_str_new(0);
  const char *zSep = "";
  int b;
  for(b=0; b<SIO_NBIT; b++){
    if( (idxNum & SIO_IDX(b))==0 || b==SIO_BIT_DATA ) continue;
    sqlite3_str_appendf(p, "%s%s", zSep, azSioBit[b]);
    zSep = ", ";
  }
  if( (idxNum & ~(SIO_IDX(SIO_BIT_FILE) | SIO_IDX(SIO_BIT_DATA)))==0 ){
    sqlite3_str_appendf(p, "%s%s", zSep, pKind->zScan);
  }
  if( idxNum & SIO_SEEK_BITS ){
    sqlite3_str_appendf(p, " (seek)");
  }else if( idxNum & (SIO_IDX(SIO_BIT_OFF_LT) | SIO_IDX(SIO_BIT_OFF_LE)) ){
    sqlite3_str_appendf(p, " (stops early)");
  }
  return sqlite3_str_finish(p);
}

/*
** A parameter: an = (or IS, when bIs) constraint on hidden column iCol.
** *piUse is the first usable one, -1 when there is none. Returns 1 when one
** is there but none is usable in this plan.
*/
static int sio_param(sqlite3_index_info *pInfo, int iCol, int bIs, int *piUse){
  int i, bSeen = 0;
  *piUse = -1;
  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *p = &pInfo->aConstraint[i];
    if( p->iColumn!=iCol ) continue;
    if( p->op!=SQLITE_INDEX_CONSTRAINT_EQ
     && !(bIs && p->op==SQLITE_INDEX_CONSTRAINT_IS) ) continue;
    bSeen = 1;
    if( p->usable ){
      *piUse = i;
      pInfo->aConstraintUsage[i].omit = 1;
      return 0;
    }
  }
  return bSeen;
}

/*
** The common part of every xBestIndex; the kind adds its own constraints.
**
**   - The hidden columns are parameters: = on them chooses what the table
**     shows, so they are used (and omitted) whenever they are given, and a
**     plan where one is given but not usable yet is SQLITE_CONSTRAINT (the
**     planner then tries another order, as for series.c's start/stop):
**       file      a table-valued function's log file. A plan without it
**                 is the dearest of all, and fails in xFilter.
**       at_epoch  updates, snapshot: which epoch (default: the current one)
**       log_id    entries: xFilter checks that the file is still that log
**   - The visible columns are columns: the kind may use their constraints
**     to skip what cannot match (a seek), never to change what the table
**     holds, and leaves them for SQLite to check (omit is not set).
**   - SIO_BIT_DATA tells xFilter whether the data column is used.
**   - ORDER BY is consumed when the rows already come in that order: each
**     term ascending and on a column that is the same on every row
**     (mConst), up to a term on a column that is unique and ascending
**     (mUnique).
**   - xFilter's argv: one value per bit that passes one, in bit order.
*/
int sioBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  SioTab *pTab = (SioTab*)pVtab;
  const SioKind *pKind = pTab->pKind;
  const SioCols *pCols = pTab->pCols;
  int aUse[SIO_NBIT];
  int idxNum = 0;
  int nArg = 0;
  int rc, b, i;

  for(b=0; b<SIO_NBIT; b++) aUse[b] = -1;
  if( pCols->iFile>=0 && sio_param(pInfo, pCols->iFile, 0, &aUse[SIO_BIT_FILE]) ){
    return SQLITE_CONSTRAINT;
  }
  if( pCols->iAtEpoch>=0
   && sio_param(pInfo, pCols->iAtEpoch, 1, &aUse[SIO_BIT_AT_EPOCH]) ){
    return SQLITE_CONSTRAINT;
  }
  if( pCols->iLogId>=0
   && sio_param(pInfo, pCols->iLogId, 0, &aUse[SIO_BIT_LOG_ID]) ){
    return SQLITE_CONSTRAINT;
  }

  pInfo->estimatedCost = 1000000.0;
  pInfo->estimatedRows = 1000000;
  if( pKind->xBestIndex ){
    rc = pKind->xBestIndex(pInfo, pCols, aUse, &idxNum);
    if( rc!=SQLITE_OK ) return rc;
  }
  if( pCols->iFile>=0 && aUse[SIO_BIT_FILE]<0 ){
    /*
    ** No file at all: a plan that xFilter refuses with a message, costed
    ** so that any plan with the file wins. (SQLite may ask for this plan
    ** when the file is there too, e.g. for the right side of a RIGHT JOIN;
    ** an error here would fail the statement.)
    */
    pInfo->estimatedCost = 1e300;
    pInfo->estimatedRows = 1000000000;
  }

  if( pKind->iDataCol>=0 ){
    sqlite3_uint64 m = ((sqlite3_uint64)1) << pKind->iDataCol;
    if( pCols->iText>=0 ) m |= ((sqlite3_uint64)1) << (pCols->iText<63 ? pCols->iText : 63);
    if( pInfo->colUsed & m ) idxNum |= SIO_IDX(SIO_BIT_DATA);
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

  for(b=0; b<SIO_NBIT; b++){
    if( aUse[b]<0 ) continue;
    pInfo->aConstraintUsage[aUse[b]].argvIndex = ++nArg;
    idxNum |= SIO_IDX(b);
  }
  pInfo->idxNum = idxNum;
  pInfo->idxStr = sio_idx_str(pKind, idxNum);
  if( pInfo->idxStr==0 ) return SQLITE_NOMEM;
  pInfo->needToFreeIdxStr = 1;
  return SQLITE_OK;
}

/* ---------------------------------------------------------- the cursor */

int sioOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCursor){
  SioTab *pTab = (SioTab*)pVtab;
  SioCursor *pCur = sqlite3_malloc(pTab->pKind->szCursor);
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, pTab->pKind->szCursor);
  sioImageInit(&pCur->img);
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
  sqlite3_value *aArg[SIO_NBIT];
  int b, k = 0;
  int rc;

  (void)idxStr;
  sio_cursor_reset(pCur);
  for(b=0; b<SIO_NBIT; b++){
    int bArg = (idxNum & SIO_IDX(b)) && (SIO_IDX(b) & SIO_NOARGV)==0;
    aArg[b] = bArg && k<argc ? argv[k++] : 0;
  }
  if( pTab->bFunc ){
    const char *zFile;
    if( aArg[SIO_BIT_FILE]==0 ){
      sioErrMsg(pzErr, "stateio: %s needs a log file: %s('FILE')",
                pTab->pKind->zFunc, pTab->pKind->zFunc);
      return SQLITE_ERROR;
    }
    zFile = (const char*)sqlite3_value_text(aArg[SIO_BIT_FILE]);
    if( zFile==0 ){
      if( sqlite3_value_type(aArg[SIO_BIT_FILE])!=SQLITE_NULL ) return SQLITE_NOMEM;
      sioErrMsg(pzErr, "stateio: %s needs a log file, not null", pTab->pKind->zFunc);
      return SQLITE_ERROR;
    }
    if( (size_t)sqlite3_value_bytes(aArg[SIO_BIT_FILE])!=strlen(zFile) ){
      /* A BLOB with a zero byte in it: the name would end there, at another file. */
      sioErrMsg(pzErr, "stateio: %s: the log file's name holds a zero byte", pTab->pKind->zFunc);
      return SQLITE_ERROR;
    }
    if( zFile[0]==0 ){
      sioErrMsg(pzErr, "stateio: %s needs a log file, not an empty name", pTab->pKind->zFunc);
      return SQLITE_ERROR;
    }
    pCur->zFuncPath = sqlite3_mprintf("%s", zFile);
    if( pCur->zFuncPath==0 ) return SQLITE_NOMEM;
    pCur->zPath = pCur->zFuncPath;
    pCur->bSkip = 0;
    pCur->bText = 0;
    rc = sioPathImage(pTab->pConn, pCur->zPath, &pCur->img, pzErr);
  }else{
    pCur->zPath = pTab->args.zFile;
    pCur->bSkip = pTab->args.bSkip;
    pCur->bText = pTab->args.bText;
    rc = sioTabLog(pTab, pzErr);
    if( rc==SQLITE_OK ) rc = sioLogImage(pTab->pLog, pCur->zPath, &pCur->img, pzErr);
  }
  if( rc==SQLITE_OK && !pTab->pKind->bAnyFile ){
    int src = sioImageCheck(&pCur->img.img);
    if( src!=STATEIO_OK ) rc = sioStatus(pzErr, src, pCur->zPath);
  }
  if( rc!=SQLITE_OK ){
    sio_cursor_reset(pCur);
    return rc;
  }
  pCur->bEof = 0;
  rc = pTab->pKind->xFilter(pCur, idxNum, aArg);
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
  const SioCols *pCols = pTab->pCols;
  if( iCol<pTab->pKind->nCol ) return pTab->pKind->xColumn(pCur, ctx, iCol);
  if( iCol==pCols->iFile ){
    sqlite3_result_text(ctx, pCur->zPath, -1, SQLITE_TRANSIENT);
  }else if( iCol==pCols->iAtEpoch ){
    return pTab->pKind->xColumn(pCur, ctx, SIO_COL_AT_EPOCH);
  }else if( iCol==pCols->iLogId ){
    return pTab->pKind->xColumn(pCur, ctx, SIO_COL_LOG_ID);
  }else if( iCol==pCols->iText ){
    return pTab->pKind->xColumn(pCur, ctx, SIO_COL_TEXT);
  }
  /* The command column: NULL (it takes commands, it holds nothing). */
  return SQLITE_OK;
}

int sioRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  *pRowid = ((SioCursor*)cur)->iRowid;
  return SQLITE_OK;
}

int sioEpochOpen(SioCursor *pBase, sqlite3_value **aArg, stateio_state *st){
  const stateio_image *img = &pBase->img.img;
  int rc;
  memset(st, 0, sizeof(*st));
  if( aArg[SIO_BIT_AT_EPOCH] ){
    int64_t iEpoch = sioValueInt(aArg[SIO_BIT_AT_EPOCH]);
    if( iEpoch<0 ){
      pBase->bEof = 1;              /* NULL, -1, 'abc', 1.5: no such epoch */
      return SQLITE_OK;
    }
    rc = stateio_read_epoch(img, (uint64_t)iEpoch, st);
    if( rc==STATEIO_NOTFOUND || (rc!=STATEIO_OK && rc!=STATEIO_NOMEM && rc!=STATEIO_IOERR && pBase->bSkip) ){
      pBase->bEof = 1;
      return SQLITE_OK;
    }
  }else{
    /* The current epoch: restore never falls back to an older one. */
    rc = stateio_restore(img, st);
  }
  if( rc==STATEIO_CORRUPT_LOG || rc==STATEIO_CORRUPT_ENTRY ){
    return sioCorrupt(SIO_CUR_ERR(pBase), rc, st->bad_offset, -1, pBase->zPath);
  }
  return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
}
