/* SPDX-License-Identifier: MIT */
/*
** vtab_func.c - the read-only table-valued functions, eponymous virtual
** tables in the style of series.c: the log file is a hidden column "file",
** the function's first argument, and the hidden columns after it take the
** other arguments.
**
**   SELECT * FROM stateio_entries('app.log' [, LOG_ID]);  -- like statelog
**   SELECT * FROM stateio_updates('app.log' [, E]);   -- like statelog_updates
**   SELECT * FROM stateio_snapshot('app.log' [, E]);  -- like statelog_snapshot
**   SELECT * FROM stateio_epochs('app.log');          -- like statelog_epochs
**   SELECT * FROM stateio_check('app.log');           -- the log's problems
**
** data is a BLOB; the hidden column data_text is the same bytes as TEXT,
** for =, LIKE and the JSON functions (the tables have the option data=text
** instead):
**
**   SELECT data_text FROM stateio_updates('app.log') WHERE data_text LIKE 'x=%';
**
** Each query opens the file afresh (or, when a table of this connection
** has it open, sees what that table sees, pending entries included).
** Damage is an error (on_corrupt=error); stateio_check lists it instead.
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

/* A function module's pAux: which view, and the connection's open logs. */
typedef struct SioFuncAux {
  SioConn *pConn;
  const SioKind *pKind;
} SioFuncAux;

static void sio_func_aux_free(void *p){
  SioFuncAux *pAux = (SioFuncAux*)p;
  sioConnUnref(pAux->pConn);
  sqlite3_free(pAux);
}

static int sioFuncConnect(
  sqlite3 *db,
  void *pAux,
  int argc, const char *const *argv,
  sqlite3_vtab **ppVtab,
  char **pzErr
){
  const SioFuncAux *pFunc = (const SioFuncAux*)pAux;
  const SioKind *pKind = pFunc->pKind;
  SioTab *pTab;
  int rc;

  (void)argc;
  (void)argv;
  rc = sqlite3_declare_vtab(db, pKind->zFuncSchema);
  if( rc!=SQLITE_OK ){
    sioErrMsg(pzErr, "stateio: %s: %s", pKind->zFunc, sqlite3_errmsg(db));
    return rc;
  }
  /*
  ** Rationale for DIRECTONLY (as csv.c): these functions read any file the
  ** process can read. A hostile database schema must not be able to reach
  ** the file system through them from a trigger or a view.
  */
  rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  if( rc!=SQLITE_OK ) return rc;
  pTab = sqlite3_malloc(sizeof(*pTab));
  if( pTab==0 ) return SQLITE_NOMEM;
  memset(pTab, 0, sizeof(*pTab));
  pTab->db = db;
  pTab->pConn = pFunc->pConn;
  pTab->pKind = pKind;
  pTab->pCols = &pKind->func;
  pTab->bFunc = 1;
  *ppVtab = &pTab->base;
  return SQLITE_OK;
}

static int sioFuncDisconnect(sqlite3_vtab *pVtab){
  sqlite3_free(pVtab->zErrMsg);
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

static const sqlite3_module sioFuncModule = {
  .iVersion = 0,
  .xCreate = 0,               /* none: an eponymous-only table */
  .xConnect = sioFuncConnect,
  .xBestIndex = sioBestIndex,
  .xDisconnect = sioFuncDisconnect,
  .xDestroy = 0,
  .xOpen = sioOpen,
  .xClose = sioClose,
  .xFilter = sioFilter,
  .xNext = sioNext,
  .xEof = sioEof,
  .xColumn = sioColumn,
  .xRowid = sioRowid,
  .xUpdate = 0,               /* read-only */
};

int sioRegisterFuncModules(sqlite3 *db, SioConn *pConn){
  static const SioKind *const aKind[] = {
    &sioKindEntries, &sioKindUpdates, &sioKindSnapshot, &sioKindEpochs,
    &sioKindCheck
  };
  int i, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<(int)(sizeof(aKind)/sizeof(aKind[0])); i++){
    SioFuncAux *pAux = sqlite3_malloc(sizeof(*pAux));
    if( pAux==0 ) return SQLITE_NOMEM;
    pAux->pConn = pConn;
    pAux->pKind = aKind[i];
    pConn->nRef++;        /* released by sio_func_aux_free, even on failure */
    rc = sqlite3_create_module_v2(db, aKind[i]->zFunc, &sioFuncModule, pAux,
                                  sio_func_aux_free);
  }
  return rc;
}

/*
** The scalar SQL functions. None writes: a function cannot take part in
** SQLite's transactions (it has no xBegin, xSync, xCommit or xRollback), so
** an append function would write outside them (README.md, "Triggers").
*/
int sioRegisterFunctions(sqlite3 *db){
  (void)db;
  return SQLITE_OK;
}
