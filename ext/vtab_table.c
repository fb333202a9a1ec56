/* SPDX-License-Identifier: MIT */
/*
** vtab_table.c - the modules stateio and stateio_part: a log as four tables.
**
**   CREATE VIRTUAL TABLE statelog USING stateio('app.log' [, option ...]);
**
** xCreate of the stateio table creates the log file if it is missing,
** declares statelog (every entry; see vtab_entries.c) and creates the three
** companions with nested statements:
**
**   CREATE VIRTUAL TABLE statelog_updates  USING stateio_part(updates,  'app.log' ...)
**   CREATE VIRTUAL TABLE statelog_snapshot USING stateio_part(snapshot, 'app.log' ...)
**   CREATE VIRTUAL TABLE statelog_epochs   USING stateio_part(epochs,   'app.log' ...)
**
** Each companion is an ordinary virtual table of its own in the schema
** (it connects by itself when the database is opened again), and xDestroy
** of statelog drops them: DROP TABLE statelog removes the four tables, and
** never the log file. xRename of statelog renames them along. A CREATE that
** fails removes the log file it made (if it is still empty).
**
** xConnect touches no file: it declares the table and no more. The log is
** opened by the table's first read or write, relative to the working
** directory then; a missing log is an error then (never made again in
** silence: INSERT INTO statelog(statelog) VALUES ('create') does it).
** DROP TABLE needs no file.
**
** All four share the connection's SioLog for the file (sio_log.c), and so
** one writer. Transactions map to the writer's batch API:
**
**   xBegin        a table joins the transaction (and remembers the log as
**                 it is then: rolling back to a savepoint older than that
**                 drops what the table wrote, and nothing before)
**   xUpdate       INSERT appends to the batch (stateio_update or
**                 stateio_snapshot); the first append of the transaction
**                 begins the batch, and takes the write lock: SQLITE_BUSY if
**                 another connection or process holds it
**   xSync         the whole batch is written with one write() and synced
**                 with one fdatasync() (stateio_writer_commit), so an I/O
**                 error fails the COMMIT before SQLite commits its journal;
**                 a new batch begins for what the transaction may still
**                 append if SQLite's commit fails after this
**   xCommit       the table leaves the transaction (nothing left to write)
**   xRollback     the batch is discarded (stateio_writer_rollback)
**   xSavepoint    the table remembers the writer's mark for that level
**   xRollbackTo   the writer goes back to the mark of that level (or to the
**                 table's mark at xBegin, for a savepoint older than that)
**   xRelease      the marks of released levels are forgotten
**
** A savepoint can be shared by several tables of the log: each keeps its
** own marks, and rolling back applies each table's; the earliest wins,
** which is the state when the savepoint began.
**
** DROP TABLE of a table whose writes the transaction still holds (no other
** table of the log is in it) hands the table to stateio_txn (below), which
** takes its part in the transaction to the end: COMMIT writes the entries,
** ROLLBACK drops them.
*/
#include <errno.h>
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

/* The companions, in the order they are created. */
static const SioKind *const aSioPart[] = {
  &sioKindUpdates, &sioKindSnapshot, &sioKindEpochs
};
#define SIO_NPART ((int)(sizeof(aSioPart)/sizeof(aSioPart[0])))

static void sio_tab_free(SioTab *pTab){
  if( pTab==0 ) return;
  if( pTab->pLog ){
    if( pTab->bInTxn ) sioLogLeave(pTab->pLog);
    sioLogRelease(pTab->pLog, !pTab->args.bReadonly);
  }
  sioArgsFree(&pTab->args);
  sqlite3_free(pTab->base.zErrMsg);   /* one SQLite never took (xDestroy's) */
  sqlite3_free(pTab->zDb);
  sqlite3_free(pTab->zName);
  sqlite3_free(pTab->aMark);
  sqlite3_free(pTab);
}

/*
** The main table's name: the table's own, or a companion's without its
** "_part" suffix (the companions are made as NAME_updates, ...).
*/
static char *sio_main_name(const SioTab *pTab){
  int n = (int)strlen(pTab->zName);
  int k = (int)strlen(pTab->pKind->zPart) + 1;
  if( !pTab->bMain && n>k && pTab->zName[n-k]=='_'
   && sqlite3_stricmp(&pTab->zName[n-k+1], pTab->pKind->zPart)==0 ){
    n -= k;
  }
  return sqlite3_mprintf("%.*s", n, pTab->zName);
}

int sioTabLog(SioTab *pTab, char **pzErr){
  char *zMain;
  int rc;
  if( pTab->pLog ) return SQLITE_OK;
  zMain = pTab->args.bReadonly ? 0 : sio_main_name(pTab);
  if( zMain==0 && !pTab->args.bReadonly ) return SQLITE_NOMEM;
  rc = sioLogOpen(pTab->pConn, pTab->args.zFile, !pTab->args.bReadonly,
                  (pTab->args.bSync ? STATEIO_SYNC : 0) | (pTab->args.bExclusive ? STATEIO_EXCLUSIVE : 0),
                  pTab->args.nSpill, zMain, &pTab->pLog, pzErr);
  sqlite3_free(zMain);
  if( rc==SQLITE_OK && pTab->bInTxn ){
    /* Joined the transaction before the file could be opened. */
    sioLogBegin(pTab->pLog);
    pTab->join = sioLogMark(pTab->pLog, 0);
  }
  return rc;
}

/*
** Whether schema zDb holds the companion zName_zPart, made by stateio_part
** (and not some other table that happens to have the name).
*/
static int sio_part_exists(SioTab *pTab, const SioKind *pPart, int *pbExists){
  sqlite3_stmt *pStmt = 0;
  char *zSql;
  int rc;
  *pbExists = 0;
  zSql = sqlite3_mprintf(
      "SELECT sql FROM \"%w\".sqlite_master WHERE type='table' AND name='%q_%q'",
      pTab->zDb, pTab->zName, pPart->zPart);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(pTab->db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zDef = (const char*)sqlite3_column_text(pStmt, 0);
    *pbExists = zDef && sqlite3_strlike("%USING stateio_part(%", zDef, 0)==0;
  }
  if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
  return rc;
}

/* Run zSql (then free it) for the table; a message in *pzErr on error. */
static int sio_exec(SioTab *pTab, char *zSql, const char *zWhat,
                    const SioKind *pPart, char **pzErr){
  char *zErr = 0;
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_exec(pTab->db, zSql, 0, 0, &zErr);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ){
    sioErrMsg(pzErr, "stateio: cannot %s %s_%s: %s", zWhat, pTab->zName,
              pPart->zPart, zErr ? zErr : sqlite3_errstr(rc));
  }
  sqlite3_free(zErr);
  return rc;
}

static int sio_create_parts(SioTab *pTab, char **pzErr){
  char *zOpts = sioArgsOptions(&pTab->args);
  int i, rc = SQLITE_OK;
  if( zOpts==0 ) return SQLITE_NOMEM;
  for(i=0; rc==SQLITE_OK && i<SIO_NPART; i++){
    const SioKind *pPart = aSioPart[i];
    rc = sio_exec(pTab, sqlite3_mprintf(
        "CREATE VIRTUAL TABLE \"%w\".\"%w_%w\" USING stateio_part(%s, %Q%s)",
        pTab->zDb, pTab->zName, pPart->zPart, pPart->zPart,
        pTab->args.zFile, zOpts), "create", pPart, pzErr);
  }
  sqlite3_free(zOpts);
  return rc;
}

/*
** xCreate: the log file. It is created when missing (not for readonly),
** must be a regular file and a log (or empty), and its SioLog is opened (a
** table of this connection may have it open already, with another sync=).
** *pbCreated says whether this call made the file.
*/
static int sio_tab_create_file(SioTab *pTab, int *pbCreated, dev_t *pDev, ino_t *pIno,
                               char **pzErr){
  SioImage img;
  int rc, src;
  *pbCreated = 0;
  if( !pTab->args.bReadonly ){
    rc = sioFileCreate(pTab->args.zFile, pTab->args.bSync, pbCreated, pDev, pIno, pzErr);
    if( rc!=SQLITE_OK ) return rc;
  }
  rc = sioImageOpen(pTab->args.zFile, pTab->args.zFile, &img, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  src = sioImageCheck(&img.img);
  sioImageClose(&img);
  if( src!=STATEIO_OK ) return sioStatus(pzErr, src, pTab->args.zFile);
  if( !pTab->args.bReadonly ){
    /*
    ** A name with no room for the commit file's could never be written:
    ** say so now, not at the first INSERT. (Other reasons a writer cannot
    ** open, a file without write permission say, are left to the INSERT,
    ** as a table that is only read does not need one.)
    */
    stateio_writer *w = 0;
    src = stateio_writer_open(&w, pTab->args.zFile, 0);
    if( src==STATEIO_IOERR && errno==ENAMETOOLONG ){
      return sioWriterOpenStatus(pzErr, src, pTab->args.zFile);
    }
    if( src==STATEIO_OK ) (void)stateio_writer_close(w);
  }
  return sioTabLog(pTab, pzErr);
}

/*
** xCreate and xConnect of both tables.
**   stateio:       argv[3] the file, then options
**   stateio_part:  argv[3] the part (updates, snapshot, epochs), argv[4]
**                  the file, then options
*/
static int sio_tab_init(
  sqlite3 *db,
  SioConn *pConn,
  int argc, const char *const *argv,
  sqlite3_vtab **ppVtab,
  char **pzErr,
  int bMain,
  int bCreate
){
  SioTab *pTab = 0;
  const SioKind *pKind = &sioKindEntries;
  char *zSchema = 0;
  int bCreated = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  int rc;
  int i;

  *ppVtab = 0;
  if( !bMain ){
    pKind = 0;
    for(i=0; argc>3 && i<SIO_NPART; i++){
      if( sqlite3_stricmp(argv[3], aSioPart[i]->zPart)==0 ) pKind = aSioPart[i];
    }
    if( pKind==0 && argc>3 && argv[3][0] ){
      sioErrMsg(pzErr, "stateio: stateio_part needs updates, snapshot or epochs, not '%s'",
                argv[3]);
      return SQLITE_ERROR;
    }
    if( pKind==0 ){
      sioErrMsg(pzErr, "stateio: stateio_part needs updates, snapshot or epochs");
      return SQLITE_ERROR;
    }
  }
  pTab = sqlite3_malloc(sizeof(*pTab));
  if( pTab==0 ) return SQLITE_NOMEM;
  memset(pTab, 0, sizeof(*pTab));
  pTab->db = db;
  pTab->pConn = pConn;
  pTab->pKind = pKind;
  pTab->pCols = &pKind->tab;
  pTab->bMain = bMain;
  pTab->zDb = sqlite3_mprintf("%s", argv[1]);
  pTab->zName = sqlite3_mprintf("%s", argv[2]);
  if( pTab->zDb==0 || pTab->zName==0 ){ rc = SQLITE_NOMEM; goto init_error; }

  rc = sioArgsParse(argc, argv, bMain ? 3 : 4, &pTab->args, pzErr);
  if( rc!=SQLITE_OK ) goto init_error;

  if( bMain ){
    /* The hidden command column is named after the table (as in FTS5). */
    int bClash = sqlite3_stricmp(pTab->zName, "log_id")==0;
    for(i=0; i<pKind->nCol; i++){
      if( sqlite3_stricmp(pTab->zName, pKind->azCol[i])==0 ) bClash = 1;
    }
    if( bClash ){
      sioErrMsg(pzErr, "stateio: a stateio table cannot be named '%s' (a column's name)",
                pTab->zName);
      rc = SQLITE_ERROR;
      goto init_error;
    }
  }
  zSchema = sqlite3_mprintf(pKind->zSchema, pTab->args.bText ? "TEXT" : "BLOB",
                            pTab->zName);
  if( zSchema==0 ){ rc = SQLITE_NOMEM; goto init_error; }
  rc = sqlite3_declare_vtab(db, zSchema);
  if( rc!=SQLITE_OK ){
    sioErrMsg(pzErr, "stateio: cannot declare %s: %s", pTab->zName, sqlite3_errmsg(db));
    goto init_error;
  }
  /*
  ** Rationale for DIRECTONLY (as csv.c): a stateio table reads and writes
  ** the file its schema names. An attacker who controls a database schema
  ** must not reach the file system through it from a trigger or a view;
  ** use the tables directly, from SQL the application runs.
  */
  rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  /*
  ** Bad data is a constraint error, returned before anything is appended:
  ** SQLite applies the statement's conflict clause (OR IGNORE skips the
  ** row, OR ROLLBACK ends the transaction, ...).
  */
  if( rc==SQLITE_OK ) rc = sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
  if( rc!=SQLITE_OK ) goto init_error;

  if( bCreate ){
    rc = sio_tab_create_file(pTab, &bCreated, &dev, &ino, pzErr);
    if( rc==SQLITE_OK && bMain ) rc = sio_create_parts(pTab, pzErr);
    if( rc!=SQLITE_OK ) goto init_error;
  }
  sqlite3_free(zSchema);
  *ppVtab = &pTab->base;
  return SQLITE_OK;

init_error:
  if( rc==SQLITE_NOMEM ) sioErrMsg(pzErr, "stateio: out of memory");
  sqlite3_free(zSchema);
  /* A CREATE that fails leaves no file behind that it made. */
  if( bCreated ) sioFileRemoveIfEmpty(pTab->args.zFile, dev, ino);
  sio_tab_free(pTab);
  return rc;
}

/* A table module's pAux: the connection's open logs, and which module. */
typedef struct SioTabAux {
  SioConn *pConn;
  int bMain;                /* stateio (1) or stateio_part (0) */
} SioTabAux;

static int sioTabCreate(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                        sqlite3_vtab **ppVtab, char **pzErr){
  const SioTabAux *p = (const SioTabAux*)pAux;
  return sio_tab_init(db, p->pConn, argc, argv, ppVtab, pzErr, p->bMain, 1);
}
static int sioTabConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                         sqlite3_vtab **ppVtab, char **pzErr){
  const SioTabAux *p = (const SioTabAux*)pAux;
  return sio_tab_init(db, p->pConn, argc, argv, ppVtab, pzErr, p->bMain, 0);
}

static int sioTabDisconnect(sqlite3_vtab *pVtab){
  sio_tab_free((SioTab*)pVtab);
  return SQLITE_OK;
}

static int sio_keep(SioTab *pTab);

static int sioTabDestroy(sqlite3_vtab *pVtab){
  SioTab *pTab = (SioTab*)pVtab;
  SioLog *pLog = pTab->pLog;
  int bKeep = 0;
  int i, rc;
  if( pTab->bInTxn && pLog && pLog->nTxn==1 && pLog->pWriter
   && stateio_writer_pending_count(pLog->pWriter)>0 ){
    /*
    ** This table holds the transaction's pending entries of the log, and
    ** no other table of the log is in the transaction: SQLite calls no
    ** method of a dropped table at COMMIT, so the table is kept (not
    ** freed) by stateio_txn, which takes part in the transaction for it
    ** (see below). DROP TABLE never touches the file: what the
    ** transaction wrote is written at COMMIT, and dropped by ROLLBACK.
    */
    rc = sio_keep(pTab);
    if( rc!=SQLITE_OK ){
      /* SQLite does not pass this message on: it says "database table is locked". */
      sioErrMsg(&pVtab->zErrMsg,
                "stateio: cannot drop %s: the transaction has uncommitted writes to %s",
                pTab->zName, pTab->args.zFile);
      return SQLITE_LOCKED;
    }
    bKeep = 1;
  }
  for(i=0; pTab->bMain && i<SIO_NPART; i++){
    int bExists;
    rc = sio_part_exists(pTab, aSioPart[i], &bExists);
    if( rc==SQLITE_OK && bExists ){
      rc = sio_exec(pTab, sqlite3_mprintf("DROP TABLE \"%w\".\"%w_%w\"",
                    pTab->zDb, pTab->zName, aSioPart[i]->zPart),
                    "drop", aSioPart[i], &pVtab->zErrMsg);
    }
    if( rc!=SQLITE_OK ) return rc;
  }
  if( bKeep ){
    pTab->pNextKept = pTab->pConn->pKept;
    pTab->pConn->pKept = pTab;
  }else{
    sio_tab_free(pTab);
  }
  return SQLITE_OK;
}

static int sioTabRename(sqlite3_vtab *pVtab, const char *zNew){
  SioTab *pTab = (SioTab*)pVtab;
  char *zName;
  int i, rc;
  for(i=0; pTab->bMain && i<SIO_NPART; i++){
    int bExists;
    rc = sio_part_exists(pTab, aSioPart[i], &bExists);
    if( rc==SQLITE_OK && bExists ){
      rc = sio_exec(pTab, sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_%w\" RENAME TO \"%w_%w\"",
                    pTab->zDb, pTab->zName, aSioPart[i]->zPart, zNew, aSioPart[i]->zPart),
                    "rename", aSioPart[i], &pVtab->zErrMsg);
    }
    if( rc!=SQLITE_OK ) return rc;
  }
  zName = sqlite3_mprintf("%s", zNew);
  if( zName==0 ) return SQLITE_NOMEM;
  sqlite3_free(pTab->zName);
  pTab->zName = zName;
  return SQLITE_OK;
}

/* ---------------------------------------------------------- writing */

/* The name of column i of the table (for messages). */
static const char *sio_col_name(const SioTab *pTab, int i){
  if( i<pTab->pKind->nCol ) return pTab->pKind->azCol[i];
  if( i==pTab->pCols->iAtEpoch ) return "at_epoch";
  if( i==pTab->pCols->iLogId ) return "log_id";
  return pTab->zName;
}

int sioInsertData(SioTab *pTab, sqlite3_value **apCol,
                  int (*xAppend)(stateio_writer*, const void*, size_t),
                  sqlite3_int64 *pRowid){
  const SioKind *pKind = pTab->pKind;
  sqlite3_value *pData = apCol[pKind->iDataCol];
  stateio_writer *w;
  const void *p;
  size_t n;
  int i, rc;

  for(i=0; i<pTab->pCols->nCol; i++){
    if( i!=pKind->iDataCol && sqlite3_value_type(apCol[i])!=SQLITE_NULL ){
      sioErrMsg(&pTab->base.zErrMsg,
                "stateio: cannot set %s in %s: only data can be inserted",
                sio_col_name(pTab, i), pTab->zName);
      return SQLITE_ERROR;
    }
  }
  switch( sqlite3_value_type(pData) ){
    case SQLITE_BLOB:
      p = sqlite3_value_blob(pData);
      break;
    case SQLITE_TEXT:
      p = sqlite3_value_text(pData);
      break;
    default:
      /*
      ** A constraint error (SQLITE_VTAB_CONSTRAINT_SUPPORT), before anything
      ** is appended: SQLite applies the conflict clause. With OR IGNORE it
      ** skips the row: no message then.
      */
      if( sqlite3_vtab_on_conflict(pTab->db)!=SQLITE_IGNORE ){
        if( sqlite3_value_type(pData)==SQLITE_NULL ){
          sioErrMsg(&pTab->base.zErrMsg, "stateio: data must be a blob or text, not null");
        }else{
          sioErrMsg(&pTab->base.zErrMsg, "stateio: data must be a blob or text, not %s %s",
                    sqlite3_value_type(pData)==SQLITE_INTEGER ? "the integer" : "the real",
                    (const char*)sqlite3_value_text(pData));
        }
      }
      return SQLITE_CONSTRAINT_VTAB;
  }
  n = (size_t)sqlite3_value_bytes(pData);
  if( p==0 && n>0 ) return SQLITE_NOMEM;
  rc = sioTabLog(pTab, &pTab->base.zErrMsg);
  if( rc==SQLITE_OK ) rc = sioLogWriter(pTab->pLog, pTab->args.zFile, &w, &pTab->base.zErrMsg);
  if( rc!=SQLITE_OK ) return rc;
  rc = xAppend(w, p, n);
  if( rc==STATEIO_BUSY ){
    /* Another writer holds the log: wait as long as SQLite waits for its own locks. */
    int ms = sioBusyTimeout(pTab->db);
    if( ms>0 ){
      stateio_writer_set_timeout(w, ms);
      rc = xAppend(w, p, n);
      stateio_writer_set_timeout(w, 0);
    }
  }
  if( rc!=STATEIO_OK ) return sioWriterStatus(&pTab->base.zErrMsg, rc, w, pTab->args.zFile);
  /* The rowid (last_insert_rowid()) is the new entry's offset. */
  *pRowid = (sqlite3_int64)stateio_writer_last_offset(w);
  return SQLITE_OK;
}

static int sioTabBegin(sqlite3_vtab *pVtab);

static int sioTabUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                        sqlite3_int64 *pRowid){
  SioTab *pTab = (SioTab*)pVtab;
  int rc;
  if( argc==1 ){
    sioErrMsg(&pVtab->zErrMsg, "stateio: cannot delete from %s: the log is append-only",
              pTab->zName);
    return SQLITE_ERROR;
  }
  if( sqlite3_value_type(argv[0])!=SQLITE_NULL ){
    sioErrMsg(&pVtab->zErrMsg, "stateio: cannot update %s: the log is append-only",
              pTab->zName);
    return SQLITE_ERROR;
  }
  if( pTab->args.bReadonly ){
    sioErrMsg(&pVtab->zErrMsg, "stateio: cannot insert into %s: it is readonly",
              pTab->zName);
    return SQLITE_READONLY;
  }
  if( pTab->pKind->xInsert==0 ){
    sioErrMsg(&pVtab->zErrMsg,
              "stateio: cannot insert into %s: its rows are computed from the log",
              pTab->zName);
    return SQLITE_ERROR;
  }
  if( sqlite3_value_type(argv[1])!=SQLITE_NULL && !pTab->bMain ){
    sioErrMsg(&pVtab->zErrMsg, "stateio: cannot set the rowid of %s: it is the entry's offset",
              pTab->zName);
    return SQLITE_ERROR;
  }
  if( !pTab->bInTxn ){
    rc = sioTabBegin(pVtab);     /* not reached: SQLite calls xBegin first */
    if( rc!=SQLITE_OK ) return rc;
  }
  return pTab->pKind->xInsert(pTab, argv+2, pRowid);
}

/* ---------------------------------------------------------- transactions */

static int sioTabBegin(sqlite3_vtab *pVtab){
  SioTab *pTab = (SioTab*)pVtab;
  if( pTab->bInTxn ) return SQLITE_OK;
  if( pTab->pLog==0 && sioTabLog(pTab, &pVtab->zErrMsg)!=SQLITE_OK ){
    /*
    ** No file yet (it is missing: the statement may be the 'create'
    ** command): the write reports it, and the log joins when it opens.
    */
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = 0;
  }
  pTab->bInTxn = 1;
  pTab->nMark = 0;
  pTab->join = sioLogMark(pTab->pLog, 0);
  if( pTab->pLog ) sioLogBegin(pTab->pLog);
  return SQLITE_OK;
}

static int sioTabSync(sqlite3_vtab *pVtab){
  SioTab *pTab = (SioTab*)pVtab;
  if( !pTab->bInTxn || pTab->pLog==0 ) return SQLITE_OK;
  return sioLogSync(pTab->pLog, pTab->args.zFile, &pVtab->zErrMsg);
}

static int sio_tab_end(sqlite3_vtab *pVtab, int bCommit){
  SioTab *pTab = (SioTab*)pVtab;
  if( pTab->bInTxn ){
    pTab->bInTxn = 0;
    pTab->nMark = 0;
    if( pTab->pLog ) sioLogEnd(pTab->pLog, bCommit);
  }
  return SQLITE_OK;
}

static int sioTabCommit(sqlite3_vtab *pVtab){
  return sio_tab_end(pVtab, 1);
}

static int sioTabRollback(sqlite3_vtab *pVtab){
  return sio_tab_end(pVtab, 0);
}

/* Forget the marks of savepoints at level iLevel and above. */
static void sio_marks_release(SioTab *pTab, int iLevel){
  while( pTab->nMark>0 && pTab->aMark[pTab->nMark-1].iLevel>=iLevel ) pTab->nMark--;
}

static int sioTabSavepoint(sqlite3_vtab *pVtab, int iLevel){
  SioTab *pTab = (SioTab*)pVtab;
  if( !pTab->bInTxn ) return SQLITE_OK;
  sio_marks_release(pTab, iLevel);
  if( pTab->nMark==pTab->nMarkAlloc ){
    int nNew = pTab->nMarkAlloc ? pTab->nMarkAlloc*2 : 8;
    SioMark *aNew = sqlite3_realloc64(pTab->aMark, sizeof(SioMark)*(sqlite3_uint64)nNew);
    if( aNew==0 ) return SQLITE_NOMEM;
    pTab->aMark = aNew;
    pTab->nMarkAlloc = nNew;
  }
  pTab->aMark[pTab->nMark++] = sioLogMark(pTab->pLog, iLevel);
  return SQLITE_OK;
}

static int sioTabRelease(sqlite3_vtab *pVtab, int iLevel){
  SioTab *pTab = (SioTab*)pVtab;
  sio_marks_release(pTab, iLevel);
  return SQLITE_OK;
}

static int sioTabRollbackTo(sqlite3_vtab *pVtab, int iLevel){
  SioTab *pTab = (SioTab*)pVtab;
  const SioMark *pMark;
  int i;
  if( !pTab->bInTxn ) return SQLITE_OK;
  /*
  ** The mark of this level: the table's state when the savepoint began.
  ** It stays, as the savepoint does. A savepoint with no mark of the table
  ** began before the table joined the transaction: back to the state at
  ** xBegin then, before anything the table wrote. (Not a no-op: the
  ** savepoint may be the one that opened the transaction, and the statement
  ** savepoint the table joined in is released by then; 2026-12-01, issue 9.)
  */
  for(i=0; i<pTab->nMark && pTab->aMark[i].iLevel!=iLevel; i++){}
  if( i<pTab->nMark ){
    pTab->nMark = i + 1;
    pMark = &pTab->aMark[i];
  }else{
    sio_marks_release(pTab, iLevel);
    pMark = &pTab->join;
  }
  if( pTab->pLog==0 ) return SQLITE_OK;
  return sioLogRollbackTo(pTab->pLog, pMark, pTab->args.zFile, &pVtab->zErrMsg);
}

/* ---------------------------------------------------------- stateio_txn */

/*
** stateio_txn: the extension's own eponymous table, with no rows, that
** keeps the tables dropped in a transaction that had written through them
** (sioTabDestroy): SQLite calls xSync, xCommit, xRollback and the savepoint
** methods of the tables in the transaction only, and a dropped table is in
** it no more. So xDestroy makes stateio_txn join the transaction (a nested
** INSERT into it, which SQLite begins with xBegin), hands it the table, and
** stateio_txn passes every call on to the tables it keeps, then frees them
** at COMMIT or ROLLBACK.
*/
typedef struct SioKeeper {
  sqlite3_vtab base;
  SioConn *pConn;
} SioKeeper;

/* Make stateio_txn join the transaction, for pTab (about to be dropped). */
static int sio_keep(SioTab *pTab){
  SioConn *pConn = pTab->pConn;
  sqlite3_stmt *pStmt = 0;
  int rc, bTaken = 0;
  /* A table of the schema by that name would take the INSERT: none then. */
  rc = sqlite3_prepare_v2(pTab->db,
      "SELECT 1 FROM main.sqlite_master WHERE name = 'stateio_txn' COLLATE NOCASE", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    bTaken = sqlite3_step(pStmt)==SQLITE_ROW;
    rc = sqlite3_finalize(pStmt);
  }
  if( rc!=SQLITE_OK ) return rc;
  if( bTaken ) return SQLITE_LOCKED;
  pConn->bKeeping = 1;
  rc = sqlite3_exec(pTab->db, "INSERT INTO main.stateio_txn VALUES (NULL)", 0, 0, 0);
  pConn->bKeeping = 0;
  return rc;
}

static int sioKeeperConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                            sqlite3_vtab **ppVtab, char **pzErr){
  SioKeeper *p;
  int rc;
  (void)argc;
  (void)argv;
  (void)pzErr;
  rc = sqlite3_declare_vtab(db, "CREATE TABLE x(x)");
  if( rc==SQLITE_OK ) rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  if( rc!=SQLITE_OK ) return rc;
  p = sqlite3_malloc(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pConn = (SioConn*)pAux;
  *ppVtab = &p->base;
  return SQLITE_OK;
}

/* Pass xCommit (bEnd 1) or xRollback (bEnd 0) on, and free the tables. */
static void sio_keeper_end(SioConn *pConn, int bCommit){
  while( pConn->pKept ){
    SioTab *pTab = pConn->pKept;
    pConn->pKept = pTab->pNextKept;
    (void)sio_tab_end(&pTab->base, bCommit);
    sio_tab_free(pTab);
  }
}

static int sioKeeperDisconnect(sqlite3_vtab *pVtab){
  SioKeeper *p = (SioKeeper*)pVtab;
  sio_keeper_end(p->pConn, 0);       /* not reached: SQLite rolls back first */
  sqlite3_free(p->base.zErrMsg);
  sqlite3_free(p);
  return SQLITE_OK;
}

static int sioKeeperBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  (void)pVtab;
  pInfo->estimatedCost = 1.0;
  pInfo->estimatedRows = 0;
  return SQLITE_OK;
}

static int sioKeeperOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **pp){
  sqlite3_vtab_cursor *pCur = sqlite3_malloc(sizeof(*pCur));
  (void)pVtab;
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  *pp = pCur;
  return SQLITE_OK;
}
static int sioKeeperClose(sqlite3_vtab_cursor *pCur){ sqlite3_free(pCur); return SQLITE_OK; }
static int sioKeeperFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr,
                           int argc, sqlite3_value **argv){
  (void)pCur; (void)idxNum; (void)idxStr; (void)argc; (void)argv;
  return SQLITE_OK;
}
static int sioKeeperNext(sqlite3_vtab_cursor *pCur){ (void)pCur; return SQLITE_OK; }
static int sioKeeperEof(sqlite3_vtab_cursor *pCur){ (void)pCur; return 1; }
static int sioKeeperColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i){
  (void)pCur; (void)ctx; (void)i;
  return SQLITE_OK;
}
static int sioKeeperRowid(sqlite3_vtab_cursor *pCur, sqlite3_int64 *pRowid){
  (void)pCur;
  *pRowid = 0;
  return SQLITE_OK;
}

static int sioKeeperUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv,
                           sqlite3_int64 *pRowid){
  SioKeeper *p = (SioKeeper*)pVtab;
  (void)argc; (void)argv; (void)pRowid;
  if( p->pConn->bKeeping ) return SQLITE_OK;    /* sio_keep(): joined, that is all */
  sioErrMsg(&pVtab->zErrMsg, "stateio: stateio_txn is the extension's own: it keeps the "
            "writes of tables dropped in a transaction until its end");
  return SQLITE_ERROR;
}

static int sioKeeperBegin(sqlite3_vtab *pVtab){ (void)pVtab; return SQLITE_OK; }

static int sioKeeperSync(sqlite3_vtab *pVtab){
  SioKeeper *p = (SioKeeper*)pVtab;
  SioTab *pTab;
  int rc = SQLITE_OK;
  for(pTab=p->pConn->pKept; rc==SQLITE_OK && pTab; pTab=pTab->pNextKept){
    rc = sioTabSync(&pTab->base);
    if( rc!=SQLITE_OK ){
      sioErrMsg(&pVtab->zErrMsg, "%s", pTab->base.zErrMsg ? pTab->base.zErrMsg : "");
    }
  }
  return rc;
}

static int sioKeeperCommit(sqlite3_vtab *pVtab){
  sio_keeper_end(((SioKeeper*)pVtab)->pConn, 1);
  return SQLITE_OK;
}

static int sioKeeperRollback(sqlite3_vtab *pVtab){
  sio_keeper_end(((SioKeeper*)pVtab)->pConn, 0);
  return SQLITE_OK;
}

static int sioKeeperSavepoint(sqlite3_vtab *pVtab, int iLevel){
  SioTab *pTab;
  int rc = SQLITE_OK;
  for(pTab=((SioKeeper*)pVtab)->pConn->pKept; rc==SQLITE_OK && pTab; pTab=pTab->pNextKept){
    rc = sioTabSavepoint(&pTab->base, iLevel);
  }
  return rc;
}

static int sioKeeperRelease(sqlite3_vtab *pVtab, int iLevel){
  SioTab *pTab;
  for(pTab=((SioKeeper*)pVtab)->pConn->pKept; pTab; pTab=pTab->pNextKept){
    (void)sioTabRelease(&pTab->base, iLevel);
  }
  return SQLITE_OK;
}

static int sioKeeperRollbackTo(sqlite3_vtab *pVtab, int iLevel){
  SioTab *pTab;
  int rc = SQLITE_OK;
  for(pTab=((SioKeeper*)pVtab)->pConn->pKept; rc==SQLITE_OK && pTab; pTab=pTab->pNextKept){
    rc = sioTabRollbackTo(&pTab->base, iLevel);
  }
  return rc;
}

static const sqlite3_module sioKeeperModule = {
  .iVersion = 2,
  .xCreate = 0,                   /* eponymous only */
  .xConnect = sioKeeperConnect,
  .xBestIndex = sioKeeperBestIndex,
  .xDisconnect = sioKeeperDisconnect,
  .xDestroy = 0,
  .xOpen = sioKeeperOpen,
  .xClose = sioKeeperClose,
  .xFilter = sioKeeperFilter,
  .xNext = sioKeeperNext,
  .xEof = sioKeeperEof,
  .xColumn = sioKeeperColumn,
  .xRowid = sioKeeperRowid,
  .xUpdate = sioKeeperUpdate,
  .xBegin = sioKeeperBegin,
  .xSync = sioKeeperSync,
  .xCommit = sioKeeperCommit,
  .xRollback = sioKeeperRollback,
  .xSavepoint = sioKeeperSavepoint,
  .xRelease = sioKeeperRelease,
  .xRollbackTo = sioKeeperRollbackTo,
};

/* ---------------------------------------------------------- modules */

/* The module of both the stateio table and its companions (stateio_part). */
static const sqlite3_module sioTableModule = {
  .iVersion = 3,                  /* savepoints (2), xShadowName (3) */
  .xCreate = sioTabCreate,        /* stateio: also creates the companions */
  .xConnect = sioTabConnect,      /* not xCreate: no eponymous table */
  .xBestIndex = sioBestIndex,
  .xDisconnect = sioTabDisconnect,
  .xDestroy = sioTabDestroy,      /* stateio: also drops the companions */
  .xOpen = sioOpen,
  .xClose = sioClose,
  .xFilter = sioFilter,
  .xNext = sioNext,
  .xEof = sioEof,
  .xColumn = sioColumn,
  .xRowid = sioRowid,
  .xUpdate = sioTabUpdate,
  .xBegin = sioTabBegin,
  .xSync = sioTabSync,
  .xCommit = sioTabCommit,
  .xRollback = sioTabRollback,
  .xFindFunction = 0,
  .xRename = sioTabRename,        /* stateio: also renames the companions */
  .xSavepoint = sioTabSavepoint,
  .xRelease = sioTabRelease,
  .xRollbackTo = sioTabRollbackTo,
  .xShadowName = 0,
};

static void sio_conn_unref(void *p){
  sioConnUnref((SioConn*)p);
}

static void sio_tab_aux_free(void *p){
  SioTabAux *pAux = (SioTabAux*)p;
  sioConnUnref(pAux->pConn);
  sqlite3_free(pAux);
}

/*
** Every module of the extension: the tables' (stateio, stateio_part), the
** keeper's (stateio_txn) and the table-valued functions', all with the
** connection's registry of open logs (each holds a reference; SioConn in
** stateio_ext.h).
*/
int sioRegisterTables(sqlite3 *db){
  SioConn *pConn = sioConnNew();
  int i, rc = SQLITE_OK;
  if( pConn==0 ) return SQLITE_NOMEM;
  pConn->nRef = 1;           /* this function's, until its end */
  for(i=1; rc==SQLITE_OK && i>=0; i--){
    SioTabAux *pAux = sqlite3_malloc(sizeof(*pAux));
    if( pAux==0 ){ rc = SQLITE_NOMEM; break; }
    pAux->pConn = pConn;
    pAux->bMain = i;
    pConn->nRef++;           /* released by the destructor, even on failure */
    rc = sqlite3_create_module_v2(db, i ? "stateio" : "stateio_part", &sioTableModule,
                                  pAux, sio_tab_aux_free);
  }
  if( rc==SQLITE_OK ){
    pConn->nRef++;
    rc = sqlite3_create_module_v2(db, "stateio_txn", &sioKeeperModule, pConn, sio_conn_unref);
  }
  if( rc==SQLITE_OK ) rc = sioRegisterFuncModules(db, pConn);
  sioConnUnref(pConn);
  return rc;
}
