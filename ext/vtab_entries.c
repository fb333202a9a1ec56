/* SPDX-License-Identifier: MIT */
/*
** vtab_entries.c - the rows of statelog and stateio_entries('FILE'):
** every entry of the log, in file order.
**
**   offset      where the entry starts (also the rowid)
**   type        'update' or 'snapshot'
**   epoch       the epoch the entry belongs to (a snapshot: its own offset)
**   prev_epoch  a snapshot's epoch field, the epoch before it; NULL for
**               updates and for a snapshot at offset 0 (the first epoch:
**               there is none before it)
**   data        the application's bytes (BLOB; TEXT with data=text)
**   log_id      (hidden) which log file the row was read from: see below
**   data_text   (hidden, the function only) data as TEXT
**
** A row is an entry as it is written: its own kind, epoch field and data.
** An entry is a row unless it is damaged or breaks a rule it keeps by
** itself: an update's epoch is never after the update, a snapshot's
** previous epoch is before it. Those entries are errors (or, with
** on_corrupt=skip, not rows). The rules an entry keeps only with its
** neighbours (an update of the epoch in force) are reported by
** stateio_check and the companions, not here: whether they hold depends on
** what was read before, and a seek starts in the middle of the log, so a
** row must not depend on them.
**
** Seeks. Constraints on offset (or rowid) =, >, >=, <, <= make the scan
** start at the block that holds the lower bound, and stop past the upper
** bound: a reader opened on a block boundary skips the records of an entry
** begun in an earlier block, and entries below the bound are passed over.
** epoch =, >, >= give a lower bound on offset too, as no row's epoch is
** after its offset (epoch E's entries start at offset E). There is no upper
** bound from epoch: a damaged log may hold an update of epoch E after a
** later snapshot, and it is a row like any other. SQLite still checks every
** constraint (omit is not set): the bounds only need to be wide enough,
** never exact, so values of any type are safe.
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
**
** Commands: INSERT INTO statelog(statelog) VALUES ('compact'),
** ('compact=N'), ('create'): see entriesInsert.
*/
#include <string.h>
#include <sys/stat.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

/* The table: %s the type of data, %w the table's name (its command column). */
#define ENTRIES_SCHEMA \
  "CREATE TABLE x(offset INTEGER, type TEXT, epoch INTEGER, prev_epoch INTEGER," \
  " data %s, \"%w\" HIDDEN, log_id INTEGER HIDDEN)"
/* The function stateio_entries(FILE [, LOG_ID]). */
#define ENTRIES_FUNC_SCHEMA \
  "CREATE TABLE x(offset INTEGER, type TEXT, epoch INTEGER, prev_epoch INTEGER," \
  " data BLOB, file TEXT HIDDEN, log_id INTEGER HIDDEN, data_text TEXT HIDDEN)"
#define ENTRIES_OFFSET     0
#define ENTRIES_TYPE       1
#define ENTRIES_EPOCH      2
#define ENTRIES_PREV_EPOCH 3
#define ENTRIES_DATA       4
#define ENTRIES_CMD        5   /* the table */
#define ENTRIES_FILE       5   /* the function */
#define ENTRIES_LOG_ID     6
#define ENTRIES_DATA_TEXT  7   /* the function */

typedef struct EntriesCursor {
  SioCursor base;
  stateio_scan *pScan;
  uint64_t iLo;            /* no row below this offset */
  uint64_t iHi;            /* no row at or above this offset */
  stateio_entry e;         /* the current entry (points into the scan) */
  int bLogId;              /* iLogId is known */
  sqlite3_int64 iLogId;    /* the log_id of the file read */
  uint64_t nRead;          /* bytes of entries read (SIO_PARALLEL_AFTER) */
} EntriesCursor;

/*
** The constraints a seek uses: the first usable one of each kind (one bit
** each). Every one of them narrows the range read; SQLite checks them all.
*/
static const struct { int iCol; int op; int bit; } aEntriesCons[] = {
  { ENTRIES_OFFSET, SQLITE_INDEX_CONSTRAINT_EQ, SIO_BIT_OFF_EQ },
  { ENTRIES_OFFSET, SQLITE_INDEX_CONSTRAINT_GT, SIO_BIT_OFF_GT },
  { ENTRIES_OFFSET, SQLITE_INDEX_CONSTRAINT_GE, SIO_BIT_OFF_GE },
  { ENTRIES_OFFSET, SQLITE_INDEX_CONSTRAINT_LT, SIO_BIT_OFF_LT },
  { ENTRIES_OFFSET, SQLITE_INDEX_CONSTRAINT_LE, SIO_BIT_OFF_LE },
  { ENTRIES_EPOCH,  SQLITE_INDEX_CONSTRAINT_EQ, SIO_BIT_EPOCH_EQ },
  { ENTRIES_EPOCH,  SQLITE_INDEX_CONSTRAINT_GT, SIO_BIT_EPOCH_GT },
  { ENTRIES_EPOCH,  SQLITE_INDEX_CONSTRAINT_GE, SIO_BIT_EPOCH_GE },
};
#define ENTRIES_NCONS ((int)(sizeof(aEntriesCons)/sizeof(aEntriesCons[0])))

static int entriesBestIndex(sqlite3_index_info *pInfo, const SioCols *pCols,
                            int *aUse, int *pIdxNum){
  const int L = SIO_IDX(SIO_BIT_OFF_GT) | SIO_IDX(SIO_BIT_OFF_GE)
              | SIO_IDX(SIO_BIT_EPOCH_EQ) | SIO_IDX(SIO_BIT_EPOCH_GT)
              | SIO_IDX(SIO_BIT_EPOCH_GE);
  const int U = SIO_IDX(SIO_BIT_OFF_LT) | SIO_IDX(SIO_BIT_OFF_LE);
  int i, j, m = 0;
  (void)pCols;
  (void)pIdxNum;
  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *p = &pInfo->aConstraint[i];
    int iCol = p->iColumn<0 ? ENTRIES_OFFSET : p->iColumn;   /* rowid is offset */
    if( !p->usable ) continue;
    for(j=0; j<ENTRIES_NCONS; j++){
      int b = aEntriesCons[j].bit;
      if( iCol==aEntriesCons[j].iCol && p->op==aEntriesCons[j].op && aUse[b]<0 ){
        aUse[b] = i;
        m |= SIO_IDX(b);
      }
    }
  }
  if( m & SIO_IDX(SIO_BIT_OFF_EQ) ){
    pInfo->estimatedCost = 10.0;
    pInfo->estimatedRows = 1;
    pInfo->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
  }else if( (m & L) && (m & U) ){
    pInfo->estimatedCost = 2500.0;
    pInfo->estimatedRows = 2500;
  }else if( m & (L | U) ){
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
  stateio_scan_close(pCur->pScan);
  pCur->pScan = 0;
}

/*
** Whether e, which the scan called a bad entry, is a row all the same: it
** decodes and keeps the rules it keeps by itself (see the comment above).
*/
static int entries_is_row(const stateio_entry *e){
  if( e->kind==STATEIO_UPDATE ) return e->epoch<=e->offset;
  if( e->kind==STATEIO_SNAPSHOT ) return e->epoch<e->offset || e->offset==0;
  return 0;
}

static int entriesNext(SioCursor *pBase){
  EntriesCursor *pCur = (EntriesCursor*)pBase;
  for(;;){
    stateio_entry *e = &pCur->e;
    int rc = stateio_scan_next(pCur->pScan, e);
    if( rc==STATEIO_DONE ) break;       /* a torn tail is the end */
    if( rc==STATEIO_OK || (rc==STATEIO_CORRUPT_ENTRY && entries_is_row(e)) ){
      if( e->offset>=pCur->iHi ) break;
      if( e->offset<pCur->iLo ) continue;
      pBase->iRowid = (sqlite3_int64)e->offset;
      /* A scan with no end short of the log's: a long one, once it has read enough. */
      if( pCur->nRead<SIO_PARALLEL_AFTER && pCur->iHi==UINT64_MAX ){
        pCur->nRead += e->end - e->offset;
        if( pCur->nRead>=SIO_PARALLEL_AFTER ){
          rc = stateio_scan_parallel(pCur->pScan);
          if( rc!=STATEIO_OK ) return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
        }
      }
      return SQLITE_OK;
    }
    if( rc==STATEIO_CORRUPT_LOG || rc==STATEIO_CORRUPT_ENTRY ){
      if( e->offset>=pCur->iHi ) break;
      if( pBase->bSkip ) continue;
      if( rc==STATEIO_CORRUPT_ENTRY ? e->offset<pCur->iLo : e->end<=pCur->iLo ) continue;
      return sioCorrupt(SIO_CUR_ERR(pBase), rc, e->offset,
                        (int64_t)(e->end - e->offset), pBase->zPath);
    }
    return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  }
  pBase->bEof = 1;
  return SQLITE_OK;
}

static int entriesFilter(SioCursor *pBase, int idxNum, sqlite3_value **aArg){
  EntriesCursor *pCur = (EntriesCursor*)pBase;
  int bNone = 0;
  uint64_t iStart;
  int j, rc;
  (void)idxNum;
  pCur->iLo = 0;
  pCur->iHi = UINT64_MAX;
  for(j=0; j<ENTRIES_NCONS; j++){
    sqlite3_value *v = aArg[aEntriesCons[j].bit];
    if( v==0 ) continue;
    if( aEntriesCons[j].iCol==ENTRIES_OFFSET ){
      bNone |= sioIntRange(v, aEntriesCons[j].op, &pCur->iLo, &pCur->iHi);
    }else{
      /* epoch OP v: the epochs that match; the rows start at or after the first. */
      uint64_t lo = 0, hi = UINT64_MAX;
      bNone |= sioIntRange(v, aEntriesCons[j].op, &lo, &hi);
      if( lo>pCur->iLo ) pCur->iLo = lo;
    }
  }
  pCur->bLogId = 0;
  if( pBase->img.img.fd>=0 ){
    int64_t id;
    if( stateio_log_id(pBase->img.img.fd, &id)!=STATEIO_OK ){
      return sioStatus(SIO_CUR_ERR(pBase), STATEIO_IOERR, pBase->zPath);
    }
    pCur->bLogId = 1;
    pCur->iLogId = (sqlite3_int64)id;
  }
  if( aArg[SIO_BIT_LOG_ID] ){
    sqlite3_value *pId = aArg[SIO_BIT_LOG_ID];
    int eType = sqlite3_value_numeric_type(pId);
    if( eType==SQLITE_NULL ){
      bNone = 1;                    /* log_id = NULL is never true */
    }else if( eType!=SQLITE_INTEGER ){
      const char *z = (const char*)sqlite3_value_text(pId);
      sioErrMsg(SIO_CUR_ERR(pBase),
                "stateio: log_id must be an integer (the log_id of a row of %s), not '%s'",
                pBase->zPath, z ? z : "");
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
  iStart = pCur->iLo - pCur->iLo % LOGIO_BLOCK;
  rc = stateio_scan_open(&pCur->pScan, &pBase->img.img, iStart,
                         iStart==0 ? 0 : STATEIO_EPOCH_UNKNOWN);
  if( rc!=STATEIO_OK ) return sioStatus(SIO_CUR_ERR(pBase), rc, pBase->zPath);
  pCur->nRead = 0;
  return entriesNext(pBase);
}

static int entriesColumn(SioCursor *pBase, sqlite3_context *ctx, int iCol){
  EntriesCursor *pCur = (EntriesCursor*)pBase;
  const stateio_entry *e = &pCur->e;
  int bSnap = e->kind==STATEIO_SNAPSHOT;
  switch( iCol ){
    case ENTRIES_OFFSET:
      sqlite3_result_int64(ctx, (sqlite3_int64)e->offset);
      break;
    case ENTRIES_TYPE:
      sqlite3_result_text(ctx, bSnap ? "snapshot" : "update", -1, SQLITE_STATIC);
      break;
    case ENTRIES_EPOCH:
      sqlite3_result_int64(ctx, (sqlite3_int64)(bSnap ? e->offset : e->epoch));
      break;
    case ENTRIES_PREV_EPOCH:
      if( bSnap && e->offset>0 ) sqlite3_result_int64(ctx, (sqlite3_int64)e->epoch);
      break;
    case ENTRIES_DATA:
      sioResultData(ctx, e->data, e->len, pBase->bText);
      break;
    case SIO_COL_TEXT:
      sioResultData(ctx, e->data, e->len, 1);
      break;
    case SIO_COL_LOG_ID:
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
  SioLog *pLog;
  stateio_compact_info info;
  struct stat st;
  int rc = sioTabLog(pTab, &pTab->base.zErrMsg);
  if( rc!=SQLITE_OK ) return rc;
  pLog = pTab->pLog;
  if( pLog->pWriter && stateio_writer_locked(pLog->pWriter) ){
    sioErrMsg(&pTab->base.zErrMsg,
              "stateio: cannot compact %s: this transaction has appended to it; "
              "compact after COMMIT", pTab->args.zFile);
    return SQLITE_ERROR;
  }
  if( pLog->pWriter && (pLog->flags & STATEIO_EXCLUSIVE) ){
    /* locking=exclusive: our own writer keeps the lock; it lets go for the compaction. */
    if( pLog->bBatch || pLog->bPrepared ){
      sioErrMsg(&pTab->base.zErrMsg,
                "stateio: cannot compact %s: this transaction is writing to it; "
                "compact after COMMIT", pTab->args.zFile);
      return SQLITE_ERROR;
    }
    rc = stateio_writer_close(pLog->pWriter);
    pLog->pWriter = 0;                 /* the next append opens a new one */
    if( rc!=STATEIO_OK ) return sioStatus(&pTab->base.zErrMsg, rc, pTab->args.zFile);
  }
  /* Compaction opens the file for writing: never a FIFO or a device. */
  if( stat(pLog->zAbs, &st)!=0 ) return sioOpenStatus(&pTab->base.zErrMsg, STATEIO_IOERR, pTab->args.zFile);
  rc = sioRegularFile(&pTab->base.zErrMsg, st.st_mode, pTab->args.zFile);
  if( rc!=SQLITE_OK ) return rc;
  /* The connection's busy timeout applies to the log's lock, as to SQLite's own. */
  rc = stateio_compact_wait(pLog->zAbs, (unsigned)nKeep, sioBusyTimeout(pTab->db), &info);
  if( rc==STATEIO_OK ) return SQLITE_OK;
  if( rc==STATEIO_CORRUPT_LOG || rc==STATEIO_CORRUPT_ENTRY ){
    sioErrMsg(&pTab->base.zErrMsg, "stateio: cannot compact %s: %s at offset %llu "
              "(the log is left as it was)", pTab->args.zFile, stateio_errstr(rc),
              (unsigned long long)info.bad_offset);
    return SQLITE_CORRUPT;
  }
  if( rc==STATEIO_BUSY ){
    sioErrMsg(&pTab->base.zErrMsg, "stateio: cannot compact %s: another writer holds "
              "its lock (try again, or set a busy timeout)", pTab->args.zFile);
    return SQLITE_BUSY;
  }
  {
    /* Name the file that failed: the log, PATH-commit, PATH.compact or the directory. */
    const char *zSuffix = info.errfile==STATEIO_FILE_COMMIT ? "-commit"
                        : info.errfile==STATEIO_FILE_COMPACT ? ".compact" : "";
    char *zName = info.errfile==STATEIO_FILE_DIR
        ? sqlite3_mprintf("the directory of %s", pTab->args.zFile)
        : sqlite3_mprintf("%s%s", pTab->args.zFile, zSuffix);
    if( zName==0 ) return SQLITE_NOMEM;
    rc = sioStatus(&pTab->base.zErrMsg, rc, zName);
    sqlite3_free(zName);
    return rc;
  }
}

/*
** The hidden column named after the table takes commands (as FTS5's does):
**   'compact', 'compact=N'   compaction (above)
**   'create'                 make a new, empty log file when the file is
**                            missing (a persistent schema whose log was
**                            deleted, or that is opened where the log is
**                            not); nothing when it is there. The file is
**                            never created otherwise, but by CREATE.
*/
static int entriesInsert(SioTab *pTab, sqlite3_value **apCol, sqlite3_int64 *pRowid){
  sqlite3_value *pCmd = apCol[ENTRIES_CMD];
  (void)pRowid;
  if( sqlite3_value_type(apCol[ENTRIES_LOG_ID])!=SQLITE_NULL ){
    sioErrMsg(&pTab->base.zErrMsg, "stateio: cannot set log_id in %s: it is computed",
              pTab->zName);
    return SQLITE_ERROR;
  }
  if( sqlite3_value_type(pCmd)!=SQLITE_NULL ){
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
    if( sqlite3_stricmp(zCmd, "create")==0 ){
      int bCreated;
      dev_t dev;
      ino_t ino;
      return sioFileCreate(pTab->args.zFile, pTab->args.bSync, &bCreated, &dev, &ino,
                           &pTab->base.zErrMsg);
    }
    nKeep = entries_compact_keep(zCmd);
    if( nKeep>0 ) return entriesCompact(pTab, nKeep);
    if( nKeep<0 ){
      sioErrMsg(&pTab->base.zErrMsg,
                "stateio: bad command '%s': compact=N needs a whole number of epochs >= 1",
                zCmd);
    }else{
      sioErrMsg(&pTab->base.zErrMsg,
                "stateio: unknown command '%s': the commands are 'compact', "
                "'compact=N' and 'create'", zCmd);
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
  .zPart = "entries",
  .zFunc = "stateio_entries",
  .zSchema = ENTRIES_SCHEMA,
  .tab = { .nCol = 7, .iCmd = ENTRIES_CMD, .iFile = -1, .iAtEpoch = -1,
           .iLogId = ENTRIES_LOG_ID, .iText = -1 },
  .zFuncSchema = ENTRIES_FUNC_SCHEMA,
  .func = { .nCol = 8, .iCmd = -1, .iFile = ENTRIES_FILE, .iAtEpoch = -1,
            .iLogId = ENTRIES_LOG_ID, .iText = ENTRIES_DATA_TEXT },
  .azCol = azEntriesCol,
  .nCol = 5,
  .iDataCol = ENTRIES_DATA,
  .szCursor = (int)sizeof(EntriesCursor),
  .mConst = 0,
  .mUnique = (1u << ENTRIES_OFFSET) | (1u << SIO_ROWID_BIT),
  .zScan = "every entry",
  .xBestIndex = entriesBestIndex,
  .xFilter = entriesFilter,
  .xNext = entriesNext,
  .xColumn = entriesColumn,
  .xReset = entriesReset,
  .xInsert = entriesInsert,
};
