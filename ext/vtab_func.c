/*
** vtab_func.c - the read-only table-valued functions, eponymous virtual
** tables in the style of series.c: the log file is a hidden column "file",
** given as the function's argument.
**
**   SELECT * FROM stateio_entries('app.log');    -- like statelog
**   SELECT * FROM stateio_updates('app.log');    -- like statelog_updates
**   SELECT * FROM stateio_snapshot('app.log');   -- like statelog_snapshot
**   SELECT * FROM stateio_epochs('app.log');     -- like statelog_epochs
**   SELECT * FROM stateio_check('app.log');      -- the log's problems
**
** Each query opens the file afresh (or, when a table of this connection
** has it open, sees what that table sees, pending entries included).
** Damage is an error (on_corrupt=error); stateio_check lists it instead.
*/
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

static int sioFuncConnect(
  sqlite3 *db,
  void *pAux,
  int argc, const char *const *argv,
  sqlite3_vtab **ppVtab,
  char **pzErr
){
  const SioKind *pKind = (const SioKind*)pAux;
  SioTab *pTab;
  char *zSchema;
  int rc;

  (void)argc;
  (void)argv;
  zSchema = sioSchema(pKind, "file");
  if( zSchema==0 ) return SQLITE_NOMEM;
  rc = sqlite3_declare_vtab(db, zSchema);
  sqlite3_free(zSchema);
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
  pTab->pKind = pKind;
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
  0,                      /* iVersion */
  0,                      /* xCreate: none, an eponymous-only table */
  sioFuncConnect,         /* xConnect */
  sioBestIndex,           /* xBestIndex */
  sioFuncDisconnect,      /* xDisconnect */
  0,                      /* xDestroy */
  sioOpen,                /* xOpen */
  sioClose,               /* xClose */
  sioFilter,              /* xFilter */
  sioNext,                /* xNext */
  sioEof,                 /* xEof */
  sioColumn,              /* xColumn */
  sioRowid,               /* xRowid */
  0,                      /* xUpdate: read-only */
  0, 0, 0, 0,             /* xBegin, xSync, xCommit, xRollback */
  0,                      /* xFindFunction */
  0,                      /* xRename */
  0, 0, 0,                /* xSavepoint, xRelease, xRollbackTo */
  0                       /* xShadowName */
};

int sioRegisterFunctions(sqlite3 *db){
  static const SioKind *const aKind[] = {
    &sioKindEntries, &sioKindUpdates, &sioKindSnapshot, &sioKindEpochs,
    &sioKindCheck
  };
  int i, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<(int)(sizeof(aKind)/sizeof(aKind[0])); i++){
    rc = sqlite3_create_module(db, aKind[i]->zFunc, &sioFuncModule, (void*)aKind[i]);
  }
  return rc;
}
