/*
** stateio_ext.h - what the files of the SQLite extension share.
**
** The extension shows a stateio log (../src/stateio.h) as virtual tables:
**
**   CREATE VIRTUAL TABLE statelog USING stateio('app.log' [, option ...]);
**
** makes four tables over the one file: statelog (every entry), and the
** companions statelog_updates, statelog_snapshot and statelog_epochs, which
** the main table's xCreate creates with module stateio_part (and its
** xDestroy drops). The same four views of a log are also eponymous,
** read-only table-valued functions: stateio_entries('app.log'), ...
**
** The pieces, one job per file:
**   stateio_ext.c    entry point: registers the modules
**   sio_args.c       the constructor's arguments and options
**   sio_log.c        the per-connection shared log (one writer per file),
**                    transactions, images to read, status -> SQLite errors
**   vtab_table.c     modules stateio and stateio_part: create, connect,
**                    drop, INSERT, transactions and savepoints
**   vtab_func.c      the eponymous table-valued functions
**   vtab_cursor.c    what every table shares: xBestIndex, the cursor
**   vtab_entries.c   rows of statelog / stateio_entries
**   vtab_updates.c   rows of statelog_updates / stateio_updates
**   vtab_snapshot.c  rows of statelog_snapshot / stateio_snapshot
**   vtab_epochs.c    rows of statelog_epochs / stateio_epochs
**   vtab_check.c     rows of stateio_check
*/
#ifndef STATEIO_EXT_H
#define STATEIO_EXT_H

#include <sqlite3ext.h>
#include <stdint.h>

#include "stateio.h"

typedef struct SioArgs SioArgs;
typedef struct SioLog SioLog;
typedef struct SioImage SioImage;
typedef struct SioKind SioKind;
typedef struct SioTab SioTab;
typedef struct SioCursor SioCursor;
typedef struct SioMark SioMark;

/* ------------------------------------------------------------- arguments */

/* The constructor's arguments: stateio('FILE' [, option=value ...]). */
struct SioArgs {
  char *zFile;        /* the log file, dequoted (sqlite3_malloc'd) */
  int bSync;          /* sync=full (1, the default) or sync=off (0) */
  int bReadonly;      /* readonly: no INSERT, the file is never created */
  int bSkip;          /* on_corrupt=skip (1) or on_corrupt=error (0, default) */
};

/*
** Parse argv[iFirst] (the file name) and the options after it. On error
** returns SQLITE_ERROR (or SQLITE_NOMEM) with a message in *pzErr.
*/
int sioArgsParse(int argc, const char *const *argv, int iFirst,
                 SioArgs *p, char **pzErr);
void sioArgsFree(SioArgs *p);
/* The options in p that differ from the defaults, as ", opt, opt=val" text. */
char *sioArgsOptions(const SioArgs *p);

/* ---------------------------------------------------------- errors */

/* Set *pz to a new message (sqlite3_mprintf format), freeing the old one. */
void sioErrMsg(char **pz, const char *zFmt, ...);

/*
** Turn a SIO_* status from the library into an SQLite result code and a
** message in *pz naming zPath. Call it right after the failing call: for
** SIO_IOERR it reads errno.
*/
int sioStatus(char **pz, int rc, const char *zPath);
/* The same for a status met while opening zPath ("cannot open ..."). */
int sioOpenStatus(char **pz, int rc, const char *zPath);
/*
** A damaged region met while reading: SQLITE_CORRUPT and "stateio:
** corrupt log at offset N (length L) in PATH" (rc SIO_CORRUPT_LOG) or
** "... corrupt state entry at ..." (SIO_CORRUPT_ENTRY). len < 0: unknown.
*/
int sioCorrupt(char **pz, int rc, uint64_t off, int64_t len, const char *zPath);

/* ---------------------------------------------------------- images */

/* An image to read, owned by one cursor. */
struct SioImage {
  logio_image img;        /* img.fd is ours to close (a dup or an open) */
  unsigned char *aTail;   /* our copy of the writer's pending entries */
};
void sioImageClose(SioImage *p);
/* SIO_OK, or SIO_NOTLOG when a non-empty image holds nothing of a log. */
int sioImageCheck(const logio_image *img);

/* ---------------------------------------------------------- shared log */

/*
** One open log per file and connection, shared by every table of that
** connection over the file (the four tables of one CREATE, and any other
** CREATE on the same file): it owns the one writer, so that the pending
** entries, savepoints and the write lock of a transaction are the same for
** all of them. Found by (connection, real path); reference counted.
*/
struct SioLog {
  sqlite3 *db;              /* the connection */
  char *zReal;              /* realpath() of the file: the key */
  char *zPath;              /* the name the first table gave (messages) */
  int nRef;                 /* tables using this log */
  stateio_writer *pWriter;  /* NULL while every table on it is readonly */
  int bSync;                /* the writer's sync option */
  int nTxn;                 /* tables in the current transaction (xBegin) */
  int bBatch;               /* stateio_writer_begin() called, not yet ended */
  SioLog *pNext;
};

/* Open (or share) the log of p->zFile for a table; *pzErr on error. */
int sioLogOpen(sqlite3 *db, const SioArgs *p, SioLog **ppLog, char **pzErr);
void sioLogRelease(SioLog *pLog);
/*
** A fresh image of the log as this connection sees it now: the file, and
** the transaction's pending entries when this connection holds the lock.
*/
int sioLogImage(SioLog *pLog, SioImage *pImg, char **pzErr);
/* The same for a path named in a query (table-valued functions). */
int sioPathImage(sqlite3 *db, const char *zPath, SioImage *pImg, char **pzErr);

/* Transactions (see vtab_table.c for how SQLite's calls map here). */
int sioLogBegin(SioLog *pLog, char **pzErr);
int sioLogSync(SioLog *pLog, char **pzErr);
void sioLogEnd(SioLog *pLog, int bCommit);
/* A table in the transaction goes away (DROP TABLE): it takes part no more. */
void sioLogLeave(SioLog *pLog);

/* A savepoint: the writer's mark, or "before the first write" (bLocked 0). */
struct SioMark {
  int iLevel;
  int bLocked;
  stateio_mark m;
};
SioMark sioLogMark(SioLog *pLog, int iLevel);
int sioLogRollbackTo(SioLog *pLog, const SioMark *pMark, char **pzErr);

/* ---------------------------------------------------------- tables */

/*
** idxNum bits of every table's xBestIndex, and the order of xFilter's argv
** (the arguments come in the order of these bits, lowest first):
*/
#define SIO_IDX_FILE     0x0001  /* argv: the log file (functions only) */
#define SIO_IDX_EPOCH    0x0002  /* argv: epoch = ? (updates, snapshot) */
#define SIO_IDX_OFF_EQ   0x0004  /* argv: offset = ? (entries) */
#define SIO_IDX_OFF_GT   0x0008  /* argv: offset > ? */
#define SIO_IDX_OFF_GE   0x0010  /* argv: offset >= ? */
#define SIO_IDX_OFF_LT   0x0020  /* argv: offset < ? */
#define SIO_IDX_OFF_LE   0x0040  /* argv: offset <= ? */
#define SIO_IDX_LOG_ID   0x0080  /* argv: log_id = ? (entries) */
#define SIO_IDX_DATA     0x0100  /* no argv: the data column is used (the
                                 ** data is copied to SQLite only in xColumn,
                                 ** which SQLite calls for used columns) */

/* The rowid, as a column index in the order-by masks below. */
#define SIO_ROWID_BIT    31

/* One of the five views of a log. */
struct SioKind {
  const char *zPart;        /* "entries", "updates", ... (stateio_part's arg) */
  const char *zFunc;        /* the table-valued function: "stateio_entries" */
  const char *zCols;        /* visible columns, in CREATE TABLE syntax */
  const char *const *azCol; /* their names */
  int nCol;                 /* how many; hidden columns follow */
  int iDataCol;             /* the data column (SIO_IDX_DATA), or -1 */
  int szCursor;             /* bytes of the kind's cursor (starts with SioCursor) */
  /*
  ** For ORDER BY: columns that are the same on every row of one xFilter,
  ** and columns that are unique and ascending in the order rows come
  ** (bit SIO_ROWID_BIT for the rowid).
  */
  unsigned mConst;
  unsigned mUnique;
  /*
  ** The kind's own constraints: set argvIndex (from *pnArg on) and omit,
  ** add SIO_IDX_* bits to *pIdxNum, set the cost. SQLITE_CONSTRAINT for an
  ** unusable plan.
  */
  int (*xBestIndex)(sqlite3_index_info*, int *pnArg, int *pIdxNum);
  /* Start a scan of pCur->img (opened by the caller); go to the first row. */
  int (*xFilter)(SioCursor*, int idxNum, sqlite3_value **apArg);
  int (*xNext)(SioCursor*);
  int (*xColumn)(SioCursor*, sqlite3_context*, int iCol);
  void (*xReset)(SioCursor*);        /* free what a scan holds */
  /* INSERT: the values of the columns, hidden ones too. NULL: refused. */
  int (*xInsert)(SioTab*, sqlite3_value **apCol, sqlite3_int64 *pRowid);
  /*
  ** More hidden columns of the kind's own, declared after the table's
  ** hidden column (the command column, or a function's "file"), so their
  ** indexes are nCol+1, ...; xColumn gets them. NULL: none.
  */
  const char *zExtra;
};

extern const SioKind sioKindEntries;
extern const SioKind sioKindUpdates;
extern const SioKind sioKindSnapshot;
extern const SioKind sioKindEpochs;
extern const SioKind sioKindCheck;

/* A table: a CREATEd one (pLog set) or a table-valued function. */
struct SioTab {
  sqlite3_vtab base;
  sqlite3 *db;
  const SioKind *pKind;
  int bFunc;                /* a table-valued function: the file is argv[0] */
  int bMain;                /* the stateio table (owns the companions) */
  char *zDb;                /* schema and name of the table */
  char *zName;
  SioLog *pLog;             /* tables only; NULL until the file opens */
  SioArgs args;             /* tables only */
  int bInTxn;               /* between xBegin and xCommit/xRollback */
  SioMark *aMark;           /* open savepoints, oldest first */
  int nMark, nMarkAlloc;
};

/* A cursor; each kind's cursor starts with this. */
struct SioCursor {
  sqlite3_vtab_cursor base;
  SioImage img;             /* what this scan reads */
  const char *zPath;        /* the file, for messages */
  char *zFuncPath;          /* functions: our copy of argv[0] */
  int bSkip;                /* on_corrupt=skip */
  int bEof;
  sqlite3_int64 iRowid;
};

/* The error message of the cursor's table. */
#define SIO_CUR_ERR(pCur) (&(pCur)->base.pVtab->zErrMsg)

/* vtab_table.c: the table's log, opened now if xConnect could not. */
int sioTabLog(SioTab *pTab, char **pzErr);

/* vtab_cursor.c: the methods every module shares. */
int sioBestIndex(sqlite3_vtab*, sqlite3_index_info*);
int sioOpen(sqlite3_vtab*, sqlite3_vtab_cursor**);
int sioClose(sqlite3_vtab_cursor*);
int sioFilter(sqlite3_vtab_cursor*, int, const char*, int, sqlite3_value**);
int sioNext(sqlite3_vtab_cursor*);
int sioEof(sqlite3_vtab_cursor*);
int sioColumn(sqlite3_vtab_cursor*, sqlite3_context*, int);
int sioRowid(sqlite3_vtab_cursor*, sqlite3_int64*);
/*
** xBestIndex for tables that show one epoch: the current one, or the one
** an = (or IS) constraint on column iEpochCol names (SIO_IDX_EPOCH).
*/
int sioBestIndexEpoch(sqlite3_index_info*, int iEpochCol, int *pnArg, int *pIdxNum);
/*
** xFilter of the tables that show one epoch: read into *st the epoch that
** epoch = ? names (SIO_IDX_EPOCH in idxNum, the value in apArg[0]), or the
** current one (restore). No such epoch (or damage, with on_corrupt=skip):
** SQLITE_OK with pBase->bEof set. Errors set the table's message.
*/
int sioEpochOpen(SioCursor *pBase, int idxNum, sqlite3_value **apArg,
                 stateio_epoch *st);
/*
** "CREATE TABLE x(...)" for a kind, with its hidden column zHidden (and
** then the kind's zExtra columns, which need zHidden).
*/
char *sioSchema(const SioKind *pKind, const char *zHidden);
/* The integer v is, or -1 when none (NULL, text that is no number, 1.5 ...). */
int64_t sioValueInt(sqlite3_value *v);
/* Hand a blob to SQLite (an empty one when n is 0). */
void sioResultBlob(sqlite3_context *ctx, const void *p, size_t n);

/*
** vtab_table.c: an INSERT that gives data only (apCol: the visible
** columns). Checks the values, then appends with xAppend
** (stateio_update or stateio_snapshot); sets *pRowid to the new entry's
** offset.
*/
int sioInsertData(SioTab *pTab, sqlite3_value **apCol,
                  int (*xAppend)(stateio_writer*, const void*, size_t),
                  sqlite3_int64 *pRowid);

/* vtab_table.c and vtab_func.c: register the modules. */
int sioRegisterTables(sqlite3 *db);
int sioRegisterFunctions(sqlite3 *db);

#endif /* STATEIO_EXT_H */
