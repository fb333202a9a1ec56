/*
** vtab_table.c - the modules stateio and stateio_part: a log as four tables.
**
**   CREATE VIRTUAL TABLE statelog USING stateio('app.log' [, option ...]);
**
** xCreate of the stateio table declares statelog (every entry; see
** vtab_entries.c) and creates the three companions with nested statements:
**
**   CREATE VIRTUAL TABLE statelog_updates  USING stateio_part(updates,  'app.log' ...)
**   CREATE VIRTUAL TABLE statelog_snapshot USING stateio_part(snapshot, 'app.log' ...)
**   CREATE VIRTUAL TABLE statelog_epochs   USING stateio_part(epochs,   'app.log' ...)
**
** Each companion is an ordinary virtual table of its own in the schema
** (it connects by itself when the database is opened again), and xDestroy
** of statelog drops them: DROP TABLE statelog removes the four tables, and
** never the log file. xRename of statelog renames them along.
**
** All four share the connection's SioLog for the file (sio_log.c), and so
** one writer. Transactions map to the writer's batch API:
**
**   xBegin        a table joins the transaction; the first one to join
**                 starts the writer's batch (stateio_writer_begin)
**   xUpdate       INSERT appends to the batch (stateio_update or
**                 stateio_snapshot): the first append takes the write lock,
**                 SQLITE_BUSY if another connection or process holds it
**   xSync         the whole batch is written with one write() and synced
**                 with one fdatasync() (stateio_writer_commit), so an I/O
**                 error fails the COMMIT before SQLite commits its journal
**   xCommit       the table leaves the transaction (nothing left to write)
**   xRollback     the batch is discarded (stateio_writer_rollback)
**   xSavepoint    the table remembers the writer's mark for that level
**   xRollbackTo   the writer goes back to the mark (stateio_writer_rollback_to)
**   xRelease      the marks of released levels are forgotten
**
** A savepoint can be shared by several tables of the log: each keeps its
** own marks, and rolling back applies each table's; the earliest wins,
** which is the state when the savepoint began.
**
** xConnect (not xCreate) does not fail when the file cannot be opened: the
** error comes when the table is used, so that the table can still be
** dropped; the file is opened again at each use until it works.
*/
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
    sioLogRelease(pTab->pLog);
  }
  sioArgsFree(&pTab->args);
  sqlite3_free(pTab->base.zErrMsg);   /* one SQLite never took (xDestroy's) */
  sqlite3_free(pTab->zDb);
  sqlite3_free(pTab->zName);
  sqlite3_free(pTab->aMark);
  sqlite3_free(pTab);
}

int sioTabLog(SioTab *pTab, char **pzErr){
  if( pTab->pLog ) return SQLITE_OK;
  return sioLogOpen(pTab->db, &pTab->args, &pTab->pLog, pzErr);
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
** xCreate and xConnect of both modules.
**   stateio:       argv[3] the file, then options
**   stateio_part:  argv[3] the part (updates, snapshot, epochs), argv[4]
**                  the file, then options
*/
static int sio_tab_init(
  sqlite3 *db,
  int argc, const char *const *argv,
  sqlite3_vtab **ppVtab,
  char **pzErr,
  int bMain,
  int bCreate
){
  SioTab *pTab = 0;
  const SioKind *pKind = &sioKindEntries;
  char *zSchema = 0;
  int rc;
  int i;

  *ppVtab = 0;
  if( !bMain ){
    pKind = 0;
    for(i=0; argc>3 && i<SIO_NPART; i++){
      if( sqlite3_stricmp(argv[3], aSioPart[i]->zPart)==0 ) pKind = aSioPart[i];
    }
    if( pKind==0 ){
      sioErrMsg(pzErr, "stateio: stateio_part needs updates, snapshot or epochs, not %s",
                argc>3 ? argv[3] : "nothing");
      return SQLITE_ERROR;
    }
  }
  pTab = sqlite3_malloc(sizeof(*pTab));
  if( pTab==0 ) return SQLITE_NOMEM;
  memset(pTab, 0, sizeof(*pTab));
  pTab->db = db;
  pTab->pKind = pKind;
  pTab->bMain = bMain;
  pTab->zDb = sqlite3_mprintf("%s", argv[1]);
  pTab->zName = sqlite3_mprintf("%s", argv[2]);
  if( pTab->zDb==0 || pTab->zName==0 ){ rc = SQLITE_NOMEM; goto init_error; }

  rc = sioArgsParse(argc, argv, bMain ? 3 : 4, &pTab->args, pzErr);
  if( rc!=SQLITE_OK ) goto init_error;

  if( bMain ){
    /* The hidden command column is named after the table (as in FTS5). */
    for(i=0; i<pKind->nCol; i++){
      if( sqlite3_stricmp(pTab->zName, pKind->azCol[i])==0 ){
        sioErrMsg(pzErr, "stateio: a stateio table cannot be named %s", pTab->zName);
        rc = SQLITE_ERROR;
        goto init_error;
      }
    }
  }
  zSchema = sioSchema(pKind, bMain ? pTab->zName : 0);
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
  if( rc!=SQLITE_OK ) goto init_error;

  rc = sioTabLog(pTab, pzErr);
  if( rc!=SQLITE_OK ){
    if( bCreate ) goto init_error;
    /* xConnect: keep the table usable enough to be dropped; see above. */
    sqlite3_free(*pzErr);
    *pzErr = 0;
    rc = SQLITE_OK;
  }
  if( bMain && bCreate ){
    rc = sio_create_parts(pTab, pzErr);
    if( rc!=SQLITE_OK ) goto init_error;
  }
  sqlite3_free(zSchema);
  *ppVtab = &pTab->base;
  return SQLITE_OK;

init_error:
  if( rc==SQLITE_NOMEM ) sioErrMsg(pzErr, "stateio: out of memory");
  sqlite3_free(zSchema);
  sio_tab_free(pTab);
  return rc;
}

static int sioMainCreate(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                         sqlite3_vtab **ppVtab, char **pzErr){
  (void)pAux;
  return sio_tab_init(db, argc, argv, ppVtab, pzErr, 1, 1);
}
static int sioMainConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                          sqlite3_vtab **ppVtab, char **pzErr){
  (void)pAux;
  return sio_tab_init(db, argc, argv, ppVtab, pzErr, 1, 0);
}
static int sioPartCreate(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                         sqlite3_vtab **ppVtab, char **pzErr){
  (void)pAux;
  return sio_tab_init(db, argc, argv, ppVtab, pzErr, 0, 1);
}
static int sioPartConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                          sqlite3_vtab **ppVtab, char **pzErr){
  (void)pAux;
  return sio_tab_init(db, argc, argv, ppVtab, pzErr, 0, 0);
}

static int sioTabDisconnect(sqlite3_vtab *pVtab){
  sio_tab_free((SioTab*)pVtab);
  return SQLITE_OK;
}

static int sioTabDestroy(sqlite3_vtab *pVtab){
  SioTab *pTab = (SioTab*)pVtab;
  int i, rc;
  if( pTab->pLog && pTab->pLog->pWriter
   && stateio_writer_pending_count(pTab->pLog->pWriter)>0 ){
    /*
    ** Dropping it would lose them: the table is not there at COMMIT.
    ** SQLite does not pass xDestroy's message on, so the code must say it:
    ** SQLITE_LOCKED, "database table is locked", as SQLite itself answers
    ** a DROP TABLE of a table in use.
    */
    sioErrMsg(&pVtab->zErrMsg,
              "stateio: cannot drop %s: the transaction has uncommitted writes to %s",
              pTab->zName, pTab->args.zFile);
    return SQLITE_LOCKED;
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
  sio_tab_free(pTab);
  return SQLITE_OK;
}

static int sioTabRename(sqlite3_vtab *pVtab, const char *zNew){
  SioTab *pTab = (SioTab*)pVtab;
  char *zName;
  int i, rc;
  for(i=0; i<SIO_NPART; i++){
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

/* Where an entry of L payload bytes that ends at `end` begins. */
static uint64_t sio_entry_start(uint64_t end, uint64_t L){
  const uint64_t B = LOGIO_BLOCK, H = LOGIO_HEADER, C = LOGIO_BLOCK - LOGIO_HEADER;
  uint64_t last = (end - 1) / B * B;   /* the block of its last byte */
  uint64_t p, R, k;
  if( end>=H + L && end - H - L>=last ) return end - H - L;   /* one record */
  /* FIRST at the end of a block, k MIDDLEs, LAST at `last`. */
  p = end - last - H;
  R = L - p;
  k = (R - 1) / C;
  return last - k*B - H - (R - k*C);
}

int sioInsertData(SioTab *pTab, sqlite3_value **apCol,
                  int (*xAppend)(stateio_writer*, const void*, size_t),
                  sqlite3_int64 *pRowid){
  const SioKind *pKind = pTab->pKind;
  stateio_writer *w = pTab->pLog->pWriter;
  sqlite3_value *pData = apCol[pKind->iDataCol];
  const void *p;
  size_t n;
  int i, rc;

  for(i=0; i<pKind->nCol; i++){
    if( i!=pKind->iDataCol && sqlite3_value_type(apCol[i])!=SQLITE_NULL ){
      sioErrMsg(&pTab->base.zErrMsg,
                "stateio: cannot set %s in %s: only data can be inserted",
                pKind->azCol[i], pTab->zName);
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
      sioErrMsg(&pTab->base.zErrMsg, "stateio: data must be a blob or text, not %s",
                sqlite3_value_type(pData)==SQLITE_NULL ? "null" :
                sqlite3_value_type(pData)==SQLITE_INTEGER ? "integer" : "real");
      return SQLITE_MISMATCH;
  }
  n = (size_t)sqlite3_value_bytes(pData);
  if( p==0 && n>0 ) return SQLITE_NOMEM;
  if( w==0 ) return SQLITE_MISUSE;      /* not reached: readonly is refused */
  rc = xAppend(w, p, n);
  if( rc!=SIO_OK ) return sioStatus(&pTab->base.zErrMsg, rc, pTab->args.zFile);
  /* The rowid (last_insert_rowid()) is the new entry's offset. */
  if( xAppend==stateio_snapshot ){
    *pRowid = (sqlite3_int64)stateio_writer_epoch(w);
  }else{
    stateio_mark m = stateio_writer_mark(w);
    *pRowid = (sqlite3_int64)sio_entry_start(m.offset, STATEIO_ENTRY_HEADER + (uint64_t)n);
  }
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
  rc = sioTabLog(pTab, &pVtab->zErrMsg);
  if( rc!=SQLITE_OK ) return rc;
  if( !pTab->bInTxn ){
    /* xBegin ran while the file could not be opened. */
    rc = sioTabBegin(pVtab);
    if( rc!=SQLITE_OK ) return rc;
  }
  return pTab->pKind->xInsert(pTab, argv+2, pRowid);
}

/* ---------------------------------------------------------- transactions */

static int sioTabBegin(sqlite3_vtab *pVtab){
  SioTab *pTab = (SioTab*)pVtab;
  int rc;
  if( pTab->bInTxn ) return SQLITE_OK;
  if( pTab->pLog==0 ){
    /*
    ** No file (xConnect could not open it): try again, quietly. DROP TABLE
    ** begins a transaction too, and must work without the file; a write
    ** reports the error (see xUpdate).
    */
    if( sioTabLog(pTab, &pVtab->zErrMsg)!=SQLITE_OK ){
      sqlite3_free(pVtab->zErrMsg);
      pVtab->zErrMsg = 0;
      return SQLITE_OK;
    }
  }
  rc = sioLogBegin(pTab->pLog, &pVtab->zErrMsg);
  if( rc==SQLITE_OK ){
    pTab->bInTxn = 1;
    pTab->nMark = 0;
  }
  return rc;
}

static int sioTabSync(sqlite3_vtab *pVtab){
  SioTab *pTab = (SioTab*)pVtab;
  if( !pTab->bInTxn ) return SQLITE_OK;
  return sioLogSync(pTab->pLog, &pVtab->zErrMsg);
}

static int sio_tab_end(sqlite3_vtab *pVtab, int bCommit){
  SioTab *pTab = (SioTab*)pVtab;
  if( pTab->bInTxn ){
    pTab->bInTxn = 0;
    pTab->nMark = 0;
    sioLogEnd(pTab->pLog, bCommit);
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
  int i;
  if( !pTab->bInTxn ) return SQLITE_OK;
  /*
  ** The first mark at this level or above: the table's state when the
  ** savepoint began, or when the table joined the transaction if later
  ** (nothing of it was pending before that). It stays, for this level.
  */
  for(i=0; i<pTab->nMark && pTab->aMark[i].iLevel<iLevel; i++){}
  if( i==pTab->nMark ) return SQLITE_OK;
  pTab->aMark[i].iLevel = iLevel;
  pTab->nMark = i + 1;
  return sioLogRollbackTo(pTab->pLog, &pTab->aMark[i], &pVtab->zErrMsg);
}

/* ---------------------------------------------------------- modules */

static const sqlite3_module sioMainModule = {
  3,                      /* iVersion: savepoints (2), xShadowName (3) */
  sioMainCreate,          /* xCreate: also creates the companions */
  sioMainConnect,         /* xConnect */
  sioBestIndex,           /* xBestIndex */
  sioTabDisconnect,       /* xDisconnect */
  sioTabDestroy,          /* xDestroy: also drops the companions */
  sioOpen,                /* xOpen */
  sioClose,               /* xClose */
  sioFilter,              /* xFilter */
  sioNext,                /* xNext */
  sioEof,                 /* xEof */
  sioColumn,              /* xColumn */
  sioRowid,               /* xRowid */
  sioTabUpdate,           /* xUpdate */
  sioTabBegin,            /* xBegin */
  sioTabSync,             /* xSync */
  sioTabCommit,           /* xCommit */
  sioTabRollback,         /* xRollback */
  0,                      /* xFindFunction */
  sioTabRename,           /* xRename: also renames the companions */
  sioTabSavepoint,        /* xSavepoint */
  sioTabRelease,          /* xRelease */
  sioTabRollbackTo,       /* xRollbackTo */
  0                       /* xShadowName */
};

static const sqlite3_module sioPartModule = {
  3,                      /* iVersion */
  sioPartCreate,          /* xCreate (not xConnect: no eponymous table) */
  sioPartConnect,         /* xConnect */
  sioBestIndex,           /* xBestIndex */
  sioTabDisconnect,       /* xDisconnect */
  sioTabDestroy,          /* xDestroy */
  sioOpen,                /* xOpen */
  sioClose,               /* xClose */
  sioFilter,              /* xFilter */
  sioNext,                /* xNext */
  sioEof,                 /* xEof */
  sioColumn,              /* xColumn */
  sioRowid,               /* xRowid */
  sioTabUpdate,           /* xUpdate */
  sioTabBegin,            /* xBegin */
  sioTabSync,             /* xSync */
  sioTabCommit,           /* xCommit */
  sioTabRollback,         /* xRollback */
  0,                      /* xFindFunction */
  0,                      /* xRename */
  sioTabSavepoint,        /* xSavepoint */
  sioTabRelease,          /* xRelease */
  sioTabRollbackTo,       /* xRollbackTo */
  0                       /* xShadowName */
};

int sioRegisterTables(sqlite3 *db){
  int rc = sqlite3_create_module(db, "stateio", &sioMainModule, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_create_module(db, "stateio_part", &sioPartModule, 0);
  return rc;
}
