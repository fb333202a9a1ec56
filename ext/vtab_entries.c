/*
** vtab_entries.c - the rows of statelog and stateio_entries('FILE'):
** every entry of the log, in file order.
**
**   offset      where the entry starts (also the rowid)
**   type        'update' or 'snapshot'
**   epoch       the epoch the entry belongs to (a snapshot: its own offset)
**   prev_epoch  a snapshot's epoch field, the epoch before it; NULL for updates
**   data        the application's bytes
**   log_id      (hidden) which log file the row was read from: see below
**
** Constraints on offset (or rowid) =, >, >=, <, <= make the scan start at
** the block that holds the lower bound, and stop past the upper bound: a
** reader opened on a block boundary skips the records of an entry begun in
** an earlier block, and entries below the bound are passed over. SQLite
** still checks these constraints (omit is not set): the bounds only need to
** be wide enough, never exact, so values of any type are safe.
**
** Following a live log: a consumer keeps the log_id and offset of the last
** row it read and polls with
**
**   SELECT ... FROM statelog WHERE log_id = :id AND offset > :off
**
** Offsets name entries of one file only. When the log has been compacted
** (or replaced) since, the file has another log_id (stateio_log_id():
** device, inode and birth time) and the query fails with "stateio: stale
** log_id ...", rather than return entries of the new file as if they came
** after :off. The consumer then restarts from the start of the new file,
** which begins with the current snapshot (test/ext_follow.test).
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

#define ENTRIES_OFFSET     0
#define ENTRIES_TYPE       1
#define ENTRIES_EPOCH      2
#define ENTRIES_PREV_EPOCH 3
#define ENTRIES_DATA       4
#define ENTRIES_LOG_ID     6   /* after the command column / the function's file */

typedef struct EntriesCursor {
  SioCursor base;
  logio_reader *pReader;
  uint64_t iLo;            /* no row below this offset */
  uint64_t iHi;            /* no row at or above this offset */
  logio_entry e;           /* the current entry (points into the reader) */
  stateio_entry se;        /* ... decoded */
  int bLogId;              /* iLogId is known */
  sqlite3_int64 iLogId;    /* the log_id of the file read */
} EntriesCursor;

/*
** Narrow [*pLo, *pHi) for "offset OP v", as SQLite compares an INTEGER
** column with v. Returns 1 when no row can match.
*/
static int entries_bound(sqlite3_value *v, int op, uint64_t *pLo, uint64_t *pHi){
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

static int entriesBestIndex(sqlite3_index_info *pInfo, int *pnArg, int *pIdxNum){
  /* The first usable constraint of each SIO_IDX_OFF_* kind. */
  static const struct { int op; int bit; } aOp[] = {
    { SQLITE_INDEX_CONSTRAINT_EQ, SIO_IDX_OFF_EQ },
    { SQLITE_INDEX_CONSTRAINT_GT, SIO_IDX_OFF_GT },
    { SQLITE_INDEX_CONSTRAINT_GE, SIO_IDX_OFF_GE },
    { SQLITE_INDEX_CONSTRAINT_LT, SIO_IDX_OFF_LT },
    { SQLITE_INDEX_CONSTRAINT_LE, SIO_IDX_OFF_LE },
  };
  int aIdx[5] = { -1, -1, -1, -1, -1 };
  int iLogId = -1, bLogIdSeen = 0;
  int i, j;
  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *p = &pInfo->aConstraint[i];
    if( p->iColumn==ENTRIES_LOG_ID && p->op==SQLITE_INDEX_CONSTRAINT_EQ ){
      bLogIdSeen = 1;
      if( p->usable && iLogId<0 ) iLogId = i;
      continue;
    }
    if( !p->usable ) continue;
    if( p->iColumn!=ENTRIES_OFFSET && p->iColumn!=-1 ) continue;
    for(j=0; j<5; j++){
      if( p->op==aOp[j].op && aIdx[j]<0 ) aIdx[j] = i;
    }
  }
  if( aIdx[0]>=0 ){
    /* offset = ?: one row at most; the other bounds add nothing. */
    aIdx[1] = aIdx[2] = aIdx[3] = aIdx[4] = -1;
  }
  if( aIdx[1]>=0 ) aIdx[2] = -1;      /* one lower bound ... */
  if( aIdx[3]>=0 ) aIdx[4] = -1;      /* ... and one upper bound */
  /*
  ** log_id = ? is checked by xFilter against the file (omitted here), so a
  ** plan that would leave it for later is refused, as for epoch = ?.
  */
  if( bLogIdSeen && iLogId<0 ) return SQLITE_CONSTRAINT;
  for(j=0; j<5; j++){
    if( aIdx[j]<0 ) continue;
    pInfo->aConstraintUsage[aIdx[j]].argvIndex = (*pnArg)++;
    *pIdxNum |= aOp[j].bit;
  }
  if( iLogId>=0 ){
    pInfo->aConstraintUsage[iLogId].argvIndex = (*pnArg)++;
    pInfo->aConstraintUsage[iLogId].omit = 1;
    *pIdxNum |= SIO_IDX_LOG_ID;
  }
  if( *pIdxNum & SIO_IDX_OFF_EQ ){
    pInfo->estimatedCost = 10.0;
    pInfo->estimatedRows = 1;
    pInfo->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
  }else if( (*pIdxNum & (SIO_IDX_OFF_GT|SIO_IDX_OFF_GE))
         && (*pIdxNum & (SIO_IDX_OFF_LT|SIO_IDX_OFF_LE)) ){
    pInfo->estimatedCost = 2500.0;
    pInfo->estimatedRows = 2500;
  }else if( *pIdxNum & (SIO_IDX_OFF_GT|SIO_IDX_OFF_GE|SIO_IDX_OFF_LT|SIO_IDX_OFF_LE) ){
    pInfo->estimatedCost = 50000.0;
    pInfo->estimatedRows = 50000;
  }else{
    pInfo->estimatedCost = 100000.0;
    pInfo->estimatedRows = 100000;
  }
  return SQLITE_OK;
}

static void entriesReset(SioCursor *pBase){
  EntriesCursor *pCur = (EntriesCursor*)pBase;
  logio_reader_close(pCur->pReader);
  pCur->pReader = 0;
}

static int entriesNext(SioCursor *pBase){
  EntriesCursor *pCur = (EntriesCursor*)pBase;
  for(;;){
    logio_entry *e = &pCur->e;
    int rc = logio_reader_next(pCur->pReader, e);
    if( rc==SIO_OK ){
      if( e->offset>=pCur->iHi ) break;
      if( e->offset<pCur->iLo ) continue;
      rc = stateio_parse_entry(e->data, e->len, &pCur->se);
      if( rc!=SIO_OK ){
        if( pBase->bSkip ) continue;
        return sioCorrupt(SIO_CUR_ERR(pBase), rc, e->offset,
                          (int64_t)(e->end - e->offset), pBase->zPath);
      }
      pBase->iRowid = (sqlite3_int64)e->offset;
      return SQLITE_OK;
    }
    if( rc==SIO_CORRUPT_LOG ){
      if( e->offset>=pCur->iHi ) break;
      if( e->offset + e->len<=pCur->iLo || pBase->bSkip ) continue;
      return sioCorrupt(SIO_CUR_ERR(pBase), rc, e->offset, (int64_t)e->len, pBase->zPath);
    }
    if( rc==SIO_TORN || rc==SIO_DONE ) break;   /* a torn tail is the end */
    return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  }
  pBase->bEof = 1;
  return SQLITE_OK;
}

static int entriesFilter(SioCursor *pBase, int idxNum, sqlite3_value **apArg){
  EntriesCursor *pCur = (EntriesCursor*)pBase;
  static const struct { int bit; int op; } aBit[] = {
    { SIO_IDX_OFF_EQ, SQLITE_INDEX_CONSTRAINT_EQ },
    { SIO_IDX_OFF_GT, SQLITE_INDEX_CONSTRAINT_GT },
    { SIO_IDX_OFF_GE, SQLITE_INDEX_CONSTRAINT_GE },
    { SIO_IDX_OFF_LT, SQLITE_INDEX_CONSTRAINT_LT },
    { SIO_IDX_OFF_LE, SQLITE_INDEX_CONSTRAINT_LE },
  };
  int bNone = 0;
  int i, rc;
  pCur->iLo = 0;
  pCur->iHi = UINT64_MAX;
  for(i=0; i<5; i++){
    if( idxNum & aBit[i].bit ){
      bNone |= entries_bound(*apArg++, aBit[i].op, &pCur->iLo, &pCur->iHi);
    }
  }
  pCur->bLogId = 0;
  if( pBase->img.img.fd>=0 ){
    int64_t id;
    if( stateio_log_id(pBase->img.img.fd, &id)!=SIO_OK ){
      return sioStatus(SIO_CUR_ERR(pBase), SIO_IOERR, pBase->zPath);
    }
    pCur->bLogId = 1;
    pCur->iLogId = (sqlite3_int64)id;
  }
  if( idxNum & SIO_IDX_LOG_ID ){
    sqlite3_value *pId = *apArg++;
    int eType = sqlite3_value_numeric_type(pId);
    if( eType==SQLITE_NULL ){
      bNone = 1;                    /* log_id = NULL is never true */
    }else if( eType!=SQLITE_INTEGER ){
      sioErrMsg(SIO_CUR_ERR(pBase),
                "stateio: log_id must be an integer (the log_id of a row of %s), not %s",
                pBase->zPath, sqlite3_value_text(pId) ? (const char*)sqlite3_value_text(pId) : "a blob");
      return SQLITE_MISMATCH;
    }else if( !pCur->bLogId || sqlite3_value_int64(pId)!=pCur->iLogId ){
      sioErrMsg(SIO_CUR_ERR(pBase),
                "stateio: stale log_id %lld: %s is another log file now (log_id %lld): "
                "it was compacted or replaced, so offsets read before mean nothing in it; "
                "start again from its first entry (the current snapshot)",
                (long long)sqlite3_value_int64(pId), pBase->zPath,
                (long long)(pCur->bLogId ? pCur->iLogId : 0));
      return SQLITE_ERROR;
    }
  }
  if( bNone || pCur->iLo>=pCur->iHi ){
    pBase->bEof = 1;
    return SQLITE_OK;
  }
  rc = logio_reader_open(&pCur->pReader, &pBase->img.img,
                         pCur->iLo - pCur->iLo % LOGIO_BLOCK);
  if( rc!=SIO_OK ) return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  return entriesNext(pBase);
}

static int entriesColumn(SioCursor *pBase, sqlite3_context *ctx, int iCol){
  EntriesCursor *pCur = (EntriesCursor*)pBase;
  int bSnap = pCur->se.kind==STATEIO_SNAPSHOT;
  switch( iCol ){
    case ENTRIES_OFFSET:
      sqlite3_result_int64(ctx, (sqlite3_int64)pCur->e.offset);
      break;
    case ENTRIES_TYPE:
      sqlite3_result_text(ctx, bSnap ? "snapshot" : "update", -1, SQLITE_STATIC);
      break;
    case ENTRIES_EPOCH:
      sqlite3_result_int64(ctx, (sqlite3_int64)(bSnap ? pCur->e.offset : pCur->se.epoch));
      break;
    case ENTRIES_PREV_EPOCH:
      if( bSnap ) sqlite3_result_int64(ctx, (sqlite3_int64)pCur->se.epoch);
      break;
    case ENTRIES_DATA:
      sioResultBlob(ctx, pCur->se.data, pCur->se.len);
      break;
    case ENTRIES_LOG_ID:
      if( pCur->bLogId ) sqlite3_result_int64(ctx, pCur->iLogId);
      break;
  }
  return SQLITE_OK;
}

/*
** The number N of 'compact=N' (1 for 'compact'), or 0 when zCmd is not a
** compact command at all, or -1 when N is not a whole number >= 1.
*/
static int entries_compact_keep(const char *zCmd){
  const char *z;
  int n = 0;
  if( sqlite3_strnicmp(zCmd, "compact", 7)!=0 ) return 0;
  z = zCmd + 7;
  if( z[0]==0 ) return 1;
  if( z[0]!='=' ) return 0;
  for(z++; *z>='0' && *z<='9'; z++){
    n = n*10 + (*z - '0');
    if( n>1000000 ) return -1;
  }
  return (*z==0 && z[-1]!='=' && n>=1) ? n : -1;
}

/*
** INSERT INTO statelog(statelog) VALUES('compact'): drop every epoch
** before the current one; 'compact=N' keeps the last N epochs. It acts at
** once, outside the transaction (a ROLLBACK does not undo it; the state
** is the same either way), and is refused while this connection's
** transaction has appended to the log (its entries are not in the file yet).
*/
static int entriesCompact(SioTab *pTab, int nKeep){
  SioLog *pLog = pTab->pLog;
  stateio_compact_info info;
  int rc;
  if( pLog->pWriter && stateio_writer_locked(pLog->pWriter) ){
    sioErrMsg(&pTab->base.zErrMsg,
              "stateio: cannot compact %s: this transaction has appended to it; "
              "compact after COMMIT", pTab->args.zFile);
    return SQLITE_ERROR;
  }
  rc = stateio_compact(pLog->zReal, (unsigned)nKeep, &info);
  if( rc==SIO_OK ) return SQLITE_OK;
  if( rc==SIO_CORRUPT_LOG || rc==SIO_CORRUPT_ENTRY ){
    sioErrMsg(&pTab->base.zErrMsg, "stateio: cannot compact %s: %s at offset %llu "
              "(the log is left as it was)", pTab->args.zFile, sio_strstatus(rc),
              (unsigned long long)info.bad_offset);
    return SQLITE_CORRUPT;
  }
  if( rc==SIO_BUSY ){
    sioErrMsg(&pTab->base.zErrMsg, "stateio: cannot compact %s: another writer holds "
              "its lock (try again)", pTab->args.zFile);
    return SQLITE_BUSY;
  }
  return sioStatus(&pTab->base.zErrMsg, rc, pTab->args.zFile);
}

static int entriesInsert(SioTab *pTab, sqlite3_value **apCol, sqlite3_int64 *pRowid){
  /* The hidden column named after the table takes commands (as FTS5 does). */
  sqlite3_value *pCmd = apCol[sioKindEntries.nCol];
  (void)pRowid;
  if( sqlite3_value_type(apCol[ENTRIES_LOG_ID])!=SQLITE_NULL ){
    sioErrMsg(&pTab->base.zErrMsg, "stateio: cannot set log_id in %s: it is computed",
              pTab->zName);
    return SQLITE_ERROR;
  }
  if( !pTab->bFunc && sqlite3_value_type(pCmd)!=SQLITE_NULL ){
    const char *zCmd = (const char*)sqlite3_value_text(pCmd);
    int nKeep;
    int i;
    if( zCmd==0 ) return SQLITE_NOMEM;
    for(i=0; i<sioKindEntries.nCol; i++){
      if( sqlite3_value_type(apCol[i])!=SQLITE_NULL ){
        sioErrMsg(&pTab->base.zErrMsg, "stateio: a command sets %s only, not %s",
                  pTab->zName, sioKindEntries.azCol[i]);
        return SQLITE_ERROR;
      }
    }
    nKeep = entries_compact_keep(zCmd);
    if( nKeep>0 ) return entriesCompact(pTab, nKeep);
    if( nKeep<0 ){
      sioErrMsg(&pTab->base.zErrMsg,
                "stateio: bad command %s: compact=N needs a whole number of epochs >= 1",
                zCmd);
    }else{
      sioErrMsg(&pTab->base.zErrMsg,
                "stateio: unknown command %s: the commands are 'compact' and 'compact=N'",
                zCmd);
    }
    return SQLITE_ERROR;
  }
  sioErrMsg(&pTab->base.zErrMsg,
            "stateio: cannot insert into %s: insert into %s_updates or %s_snapshot",
            pTab->zName, pTab->zName, pTab->zName);
  return SQLITE_ERROR;
}

static const char *const azEntriesCol[] = {
  "offset", "type", "epoch", "prev_epoch", "data"
};

const SioKind sioKindEntries = {
  "entries", "stateio_entries",
  "offset INTEGER, type TEXT, epoch INTEGER, prev_epoch INTEGER, data BLOB",
  azEntriesCol,
  5, ENTRIES_DATA, (int)sizeof(EntriesCursor),
  0,
  (1u << ENTRIES_OFFSET) | (1u << SIO_ROWID_BIT),
  entriesBestIndex, entriesFilter, entriesNext, entriesColumn, entriesReset,
  entriesInsert,
  "log_id INTEGER HIDDEN"
};
