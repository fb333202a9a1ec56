/* SPDX-License-Identifier: MIT */
/*
** stateio_ext.c - the entry point of the stateio SQLite extension.
**
** Load it with ".load ./stateio" in the shell or
** SELECT load_extension('./stateio'); SQLite derives the name of the entry
** point, sqlite3_stateio_init, from the file name stateio.so.
**
** Modules:
**   stateio          CREATE VIRTUAL TABLE t USING stateio('app.log', ...):
**                    the table t and its companions t_updates, t_snapshot,
**                    t_epochs (vtab_table.c)
**   stateio_part     the companions' module (created by stateio)
**   stateio_entries, stateio_updates, stateio_snapshot, stateio_epochs,
**   stateio_check    read-only table-valued functions (vtab_func.c)
** Functions:
**   stateio_version()  the library's version, "X.Y.Z" (STATEIO_VERSION)
*/
#include "stateio_ext.h"
SQLITE_EXTENSION_INIT1

/* stateio_version(): the version of the library compiled into the extension. */
static void sioVersionFunc(
  sqlite3_context *ctx,
  int argc,
  sqlite3_value **argv
){
  (void)argc;
  (void)argv;
  sqlite3_result_text(ctx, stateio_version(), -1, SQLITE_STATIC);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_stateio_init(
  sqlite3 *db,
  char **pzErrMsg,
  const sqlite3_api_routines *pApi
){
  int rc;
  SQLITE_EXTENSION_INIT2(pApi);
  if( sqlite3_libversion_number()<3031000 ){
    /* SQLITE_VTAB_DIRECTONLY and module iVersion 3 need 3.31 or later. */
    *pzErrMsg = sqlite3_mprintf("stateio: needs SQLite 3.31.0 or later, not %s",
                                sqlite3_libversion());
    return SQLITE_ERROR;
  }
  sioNoteLoad();
  rc = sioRegisterTables(db);
  if( rc==SQLITE_OK ) rc = sioRegisterFunctions(db);
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "stateio_version", 0,
             SQLITE_UTF8|SQLITE_DETERMINISTIC|SQLITE_INNOCUOUS, 0,
             sioVersionFunc, 0, 0);
  }
  if( rc!=SQLITE_OK ){
    *pzErrMsg = sqlite3_mprintf("stateio: cannot register modules: %s",
                                sqlite3_errstr(rc));
  }
  return rc;
}
