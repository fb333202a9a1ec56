/* SPDX-License-Identifier: MIT */
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
** xDestroy drops). The same five views of a log (the four, and a check)
** are also eponymous, read-only table-valued functions:
** stateio_entries('app.log'), ...
**
** The pieces, one job per file:
**   stateio_ext.c    entry point: registers the modules
**   sio_args.c       the constructor's arguments and options
**   sio_err.c        status codes of the library -> SQLite errors, messages
**   sio_image.c      images to read: a file opened without blocking, or a
**                    copy of the writer's view with its pending entries
**   sio_log.c        the connection's open logs (one writer per file),
**                    transactions and savepoints on the writer
**   vtab_table.c     modules stateio and stateio_part: create, connect,
**                    drop, INSERT, transactions and savepoints; stateio_txn,
**                    which keeps a table dropped in a transaction to its end
**   vtab_func.c      the eponymous table-valued functions
**   vtab_cursor.c    what every table shares: xBestIndex, the cursor
**   vtab_entries.c   rows of statelog / stateio_entries
**   vtab_updates.c   rows of statelog_updates / stateio_updates
**   vtab_snapshot.c  rows of statelog_snapshot / stateio_snapshot
**   vtab_epochs.c    rows of statelog_epochs / stateio_epochs
**   vtab_check.c     rows of stateio_check
**
** Nothing in xConnect or xBestIndex touches the file system: a database
** file received from elsewhere can be opened, its schema read and its
** statements prepared (and refused, for SQLITE_VTAB_DIRECTONLY) without any
** file being opened or created. The log is opened by the first read or
** write (xFilter, xUpdate), created only by xCreate (or the 'create'
** command), and never opened in a way that could block (a FIFO, a device).
*/
#ifndef STATEIO_EXT_H
#define STATEIO_EXT_H

#include <sqlite3ext.h>
#include <stdint.h>
#include <sys/types.h>

#include "stateio.h"
#include "logio.h"     /* the block log (internal): the extension is built with the library */

typedef struct SioArgs SioArgs;
typedef struct SioConn SioConn;
typedef struct SioLog SioLog;
typedef struct SioImage SioImage;
typedef struct SioCols SioCols;
typedef struct SioKind SioKind;
typedef struct SioTab SioTab;
typedef struct SioCursor SioCursor;
typedef struct SioMark SioMark;

/* ------------------------------------------------------------- arguments */

/* The constructor's arguments: stateio('FILE' [, option=value ...]). */
struct SioArgs {
  char *zFile;        /* the log file, dequoted (sqlite3_malloc'd) */
  int bSync;          /* sync=full (1, the default) or sync=off (0) */
  int bExclusive;     /* locking=exclusive (1) or locking=normal (0, default) */
  int bReadonly;      /* readonly: no INSERT, the file is never created */
  int bSkip;          /* on_corrupt=skip (1) or on_corrupt=error (0, default) */
  int bText;          /* data=text (1) or data=blob (0, default) */
  sqlite3_int64 nSpill;  /* spill=SIZE in bytes (0: off); -1 when not given (the library's default) */
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
** STATEIO_IOERR it reads errno. STATEIO_NOTLOG is SQLITE_NOTADB.
*/
int sioStatus(char **pz, int rc, const char *zPath);
/* The same for a status met while opening zPath ("cannot open ..."). */
int sioOpenStatus(char **pz, int rc, const char *zPath);
/*
** The same for stateio_writer_open() of zName, a file that exists: its
** ENAMETOOLONG is the commit file's name (zName-commit.tmp), not zName's.
*/
int sioWriterOpenStatus(char **pz, int rc, const char *zName);
/* The same after a call on writer w: the file the writer says failed (its commit file ...). */
int sioWriterStatus(char **pz, int rc, stateio_writer *w, const char *zName);
/* At every load: remembers the first loading process (fork() is told apart by it). */
void sioNoteLoad(void);
/*
** A damaged region met while reading: SQLITE_CORRUPT and "stateio:
** corrupt log at offset N (length L) in PATH" (rc STATEIO_CORRUPT_LOG) or
** "... corrupt state entry at ..." (STATEIO_CORRUPT_ENTRY). len < 0: unknown.
*/
int sioCorrupt(char **pz, int rc, uint64_t off, int64_t len, const char *zPath);
/*
** Check what stat() said of zPath (as named: zName): SQLITE_OK for a
** regular file; a directory is "cannot open: Is a directory"
** (SQLITE_CANTOPEN); a FIFO, a device or a socket is not a log
** (SQLITE_NOTADB): such a file is never opened.
*/
int sioRegularFile(char **pz, mode_t mode, const char *zName);

/* ---------------------------------------------------------- images */

/* An image to read, owned by one cursor. */
struct SioImage {
  stateio_image img;        /* img.fd is ours to close */
  unsigned char *aTail;   /* our copy of the writer's pending entries */
};
void sioImageInit(SioImage *p);
void sioImageClose(SioImage *p);
/* STATEIO_OK, or STATEIO_NOTLOG when a non-empty image holds nothing of a log. */
int sioImageCheck(const stateio_image *img);
/*
** Open zPath read-only (O_NONBLOCK: a FIFO or a device cannot make it
** wait), refuse anything but a regular file, and make an image of it at its
** current size. Messages name the file zName.
*/
int sioImageOpen(const char *zPath, const char *zName, SioImage *pImg, char **pzErr);
/*
** Make *pImg a copy of img that the cursor owns: its own descriptor (a
** dup) and its own copy of the pending entries.
*/
int sioImageCopy(const stateio_image *img, SioImage *pImg);

/* ---------------------------------------------------------- open logs */

/*
** The open logs of one connection: the registry every table and
** table-valued function of the connection shares. It is the pAux of the
** extension's modules (each module holds a reference; the last module's
** destructor, when the connection closes, frees it), so no process-wide
** list and no mutex are needed: SQLite calls a connection's modules from
** one thread at a time. (sqlite3_set_clientdata() would be the natural
** home, but SQLite 3.40 does not have it.) Loading the extension again into
** a connection replaces the modules: tables connected before keep the old
** registry, those connected after use the new one, and the two do not
** share writers.
*/
struct SioConn {
  int nRef;                 /* the modules registered with it */
  SioLog *pLogs;            /* the open logs */
  SioTab *pKept;            /* dropped tables kept until the end of the
                            ** transaction (vtab_table.c, stateio_txn) */
  int bKeeping;             /* a table is being handed to stateio_txn */
};
SioConn *sioConnNew(void);
void sioConnUnref(SioConn *p);

/*
** One open log per file and connection, shared by every table of that
** connection over the file (the four tables of one CREATE, and any other
** CREATE on the same file, by any name: a hard link, another spelling of
** the path): it owns the one writer, so that the pending entries,
** savepoints and the write lock of a transaction are the same for all of
** them. Found by the file's device and inode; reference counted.
*/
struct SioLog {
  SioConn *pConn;
  char *zAbs;               /* absolute path it was opened by (images, writer) */
  dev_t dev;                /* the file it is: device and inode, as last seen */
  ino_t ino;
  uint64_t birth;           /* ... and its birth time (ns; 0: not kept by the file system) */
  int nRef;                 /* tables using this log */
  int nWriteRef;            /* ... of them writable: their options are the writer's */
  stateio_writer *pWriter;  /* opened by the first write */
  int flags;                /* the writer's flags (STATEIO_SYNC, STATEIO_EXCLUSIVE) ... */
  sqlite3_int64 nSpill;     /* ... and its spill size (-1: the library's default) ... */
  int bFlagsSet;            /* ... once a writable table has said them (while one holds the log) */
  int nTxn;                 /* tables in the current transaction (xBegin) */
  int bBatch;               /* stateio_writer_begin() called, not yet ended */
  int bPrepared;            /* xSync wrote and synced the batch (not yet visible) */
  SioLog *pNext;
};

/*
** Open (or share) the log of the file zFile (as a table names it; a
** relative name is taken from the working directory now) for a table.
** bWrite: the table may write, with the writer's flags (STATEIO_SYNC,
** STATEIO_EXCLUSIVE: sync= and locking=) and spill size (spill=, or -1).
** A missing file is
** SQLITE_CANTOPEN; zTable, when not NULL, is the main table whose 'create'
** command the message suggests.
*/
int sioLogOpen(SioConn *pConn, const char *zFile, int bWrite, int flags,
               sqlite3_int64 nSpill, const char *zTable, SioLog **ppLog, char **pzErr);
void sioLogRelease(SioLog *pLog, int bWrite);
/*
** A fresh image of the log as this connection sees it now: the file, and
** the transaction's pending entries when this connection holds the lock.
*/
int sioLogImage(SioLog *pLog, const char *zName, SioImage *pImg, char **pzErr);
/* The same for a path named in a query (table-valued functions). */
int sioPathImage(SioConn *pConn, const char *zPath, SioImage *pImg, char **pzErr);
/*
** The log's writer, opened now if it is not yet (the file must exist: it
** is never created here), in the transaction's batch when a table of the
** log is in a transaction.
*/
int sioLogWriter(SioLog *pLog, const char *zName, stateio_writer **ppW, char **pzErr);

/* Transactions (see vtab_table.c for how SQLite's calls map here). */
void sioLogBegin(SioLog *pLog);
int sioLogSync(SioLog *pLog, const char *zName, char **pzErr);
/* After a failed COMMIT: take the prepared batch back (pending again). */
int sioLogReopen(SioLog *pLog, const char *zName, char **pzErr);
/* The connection's busy timeout in ms (PRAGMA busy_timeout), for the log's lock. */
int sioBusyTimeout(sqlite3 *db);
void sioLogEnd(SioLog *pLog, int bCommit);
/* A table in the transaction goes away (DROP TABLE): it takes part no more. */
void sioLogLeave(SioLog *pLog);

/*
** Create the log file zFile (for xCreate and the 'create' command): a new,
** empty file when it is missing (*pbCreated = 1, and its device and
** inode), the directory synced with bSync; nothing when a regular file is
** there. Anything else is an error.
*/
int sioFileCreate(const char *zFile, int bSync, int *pbCreated,
                  dev_t *pDev, ino_t *pIno, char **pzErr);
/* Remove the file sioFileCreate() created, if it is still that file and empty. */
void sioFileRemoveIfEmpty(const char *zFile, dev_t dev, ino_t ino);

/* A savepoint: the writer's mark, or "before the first write" (bLocked 0). */
struct SioMark {
  int iLevel;
  int bLocked;
  stateio_mark m;
};
SioMark sioLogMark(SioLog *pLog, int iLevel);
int sioLogRollbackTo(SioLog *pLog, const SioMark *pMark, const char *zName,
                     char **pzErr);

/* ---------------------------------------------------------- plans */

/*
** The idxNum bits of every table's xBestIndex, in one place. A bit marked
** "argv" passes one value to xFilter; xFilter's argv holds them in the
** order of the bits, lowest first, and sioFilter hands the kind an array
** indexed by bit number (aArg[SIO_BIT_...]), NULL where the bit is clear.
** EXPLAIN QUERY PLAN shows them in words (sio_idx_str, vtab_cursor.c).
** The entries' bounds (offset, epoch) only narrow what is read: the scan
** starts at the greatest lower bound and stops at the least upper one, and
** SQLite still checks every constraint.
*/
#define SIO_BIT_FILE      0   /* argv: file = ? (functions: always) */
#define SIO_BIT_AT_EPOCH  1   /* argv: at_epoch = ? (updates, snapshot) */
#define SIO_BIT_OFF_EQ    2   /* argv: offset = ? (entries; also rowid) */
#define SIO_BIT_OFF_GT    3   /* argv: offset > ?     } lower bounds */
#define SIO_BIT_OFF_GE    4   /* argv: offset >= ?    } */
#define SIO_BIT_OFF_LT    5   /* argv: offset < ?     } upper bounds */
#define SIO_BIT_OFF_LE    6   /* argv: offset <= ?    } */
#define SIO_BIT_LOG_ID    7   /* argv: log_id = ? (entries) */
#define SIO_BIT_EPOCH_EQ  8   /* argv: epoch = ? (entries)  } lower bounds on */
#define SIO_BIT_EPOCH_GT  9   /* argv: epoch > ?            } offset: no row's */
#define SIO_BIT_EPOCH_GE  10  /* argv: epoch >= ?           } epoch is after it */
#define SIO_BIT_DATA      11  /* no argv: data (or data_text) is used */
#define SIO_BIT_UPDATES   12  /* no argv: epochs: the updates column is used */
#define SIO_NBIT          13
#define SIO_IDX(b)        (1 << (b))
/* The bits that pass no value. */
#define SIO_NOARGV        (SIO_IDX(SIO_BIT_DATA) | SIO_IDX(SIO_BIT_UPDATES))

/* The rowid, as a column index in the order-by masks below. */
#define SIO_ROWID_BIT    31

/* The hidden columns a kind's xColumn is asked for (the visible: 0, 1, ...). */
#define SIO_COL_AT_EPOCH  (-2)   /* the epoch shown (updates, snapshot) */
#define SIO_COL_LOG_ID    (-3)   /* the log file's identity (entries) */
#define SIO_COL_TEXT      (-4)   /* data_text: data as TEXT (functions) */

/*
** Where the hidden columns of a table or function are (column indexes,
** -1 when it has none): they follow the visible columns.
*/
struct SioCols {
  int nCol;                 /* all columns, hidden ones too */
  int iCmd;                 /* the command column (the main table) */
  int iFile;                /* file (functions: their first argument) */
  int iAtEpoch;             /* at_epoch: which epoch (updates, snapshot) */
  int iLogId;               /* log_id (entries) */
  int iText;                /* data_text (functions) */
};

/* One of the five views of a log. */
struct SioKind {
  const char *zPart;        /* "entries", "updates", ... (stateio_part's arg) */
  const char *zFunc;        /* the table-valued function: "stateio_entries" */
  /*
  ** The schemas, each one string: the table's (an sqlite3_mprintf format:
  ** %s the declared type of data, BLOB or TEXT, then %w the table's name
  ** for the main table's command column), and the function's. With the
  ** column indexes of their hidden columns.
  */
  const char *zSchema;
  SioCols tab;
  const char *zFuncSchema;
  SioCols func;
  const char *const *azCol; /* the visible columns' names */
  int nCol;                 /* how many */
  int iDataCol;             /* the data column (SIO_BIT_DATA), or -1 */
  int szCursor;             /* bytes of the kind's cursor (starts with SioCursor) */
  /*
  ** For ORDER BY: columns that are the same on every row of one xFilter,
  ** and columns that are unique and ascending in the order rows come
  ** (bit SIO_ROWID_BIT for the rowid).
  */
  unsigned mConst;
  unsigned mUnique;
  /* EXPLAIN QUERY PLAN: what a plan without any of the kind's bits does. */
  const char *zScan;
  /* stateio_check: a file that is not a log is a problem row, not an error. */
  int bAnyFile;
  /*
  ** The kind's own constraints: for each it uses, aUse[bit] = the
  ** constraint's index (sioBestIndex gives the argvIndex) and its omit
  ** flag; idxNum bits in *pIdxNum; the cost. SQLITE_CONSTRAINT for an
  ** unusable plan. NULL: none.
  */
  int (*xBestIndex)(sqlite3_index_info*, const SioCols*, int *aUse, int *pIdxNum);
  /* Start a scan of pCur->img (opened by the caller); go to the first row. */
  int (*xFilter)(SioCursor*, int idxNum, sqlite3_value **aArg);
  int (*xNext)(SioCursor*);
  /* A visible column, or SIO_COL_* for a hidden one. */
  int (*xColumn)(SioCursor*, sqlite3_context*, int iCol);
  void (*xReset)(SioCursor*);        /* free what a scan holds */
  /* INSERT: the values of the columns, hidden ones too. NULL: refused. */
  int (*xInsert)(SioTab*, sqlite3_value **apCol, sqlite3_int64 *pRowid);
};

extern const SioKind sioKindEntries;
extern const SioKind sioKindUpdates;
extern const SioKind sioKindSnapshot;
extern const SioKind sioKindEpochs;
extern const SioKind sioKindCheck;

/* A table: a CREATEd one (args set) or a table-valued function. */
struct SioTab {
  sqlite3_vtab base;
  sqlite3 *db;
  SioConn *pConn;
  const SioKind *pKind;
  const SioCols *pCols;     /* &pKind->tab or &pKind->func */
  int bFunc;                /* a table-valued function: the file is an argument */
  int bMain;                /* the stateio table (owns the companions) */
  char *zDb;                /* schema and name of the table */
  char *zName;
  SioLog *pLog;             /* tables only; NULL until the file is first used */
  SioArgs args;             /* tables only */
  int bInTxn;               /* between xBegin and xCommit/xRollback */
  SioMark join;             /* the log when the table joined the transaction */
  SioMark *aMark;           /* open savepoints, oldest first */
  int nMark, nMarkAlloc;
  SioTab *pNextKept;        /* SioConn.pKept */
};

/* A cursor; each kind's cursor starts with this. */
struct SioCursor {
  sqlite3_vtab_cursor base;
  SioImage img;             /* what this scan reads */
  const char *zPath;        /* the file, for messages */
  char *zFuncPath;          /* functions: our copy of the file argument */
  int bSkip;                /* on_corrupt=skip */
  int bText;                /* data=text */
  int bEof;
  sqlite3_int64 iRowid;
};

/* The error message of the cursor's table. */
#define SIO_CUR_ERR(pCur) (&(pCur)->base.pVtab->zErrMsg)

/* vtab_table.c: the table's log, opened now if it is not yet. */
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
** xFilter of the tables that show one epoch: read into *st the epoch that
** at_epoch = ? names (aArg[SIO_BIT_AT_EPOCH]), or the current one
** (restore). No such epoch (or damage, with on_corrupt=skip): SQLITE_OK
** with pBase->bEof set. Errors set the table's message.
*/
int sioEpochOpen(SioCursor *pBase, sqlite3_value **aArg, stateio_state *st);
/* The integer v is, or -1 when none (NULL, text that is no number, 1.5 ...). */
int64_t sioValueInt(sqlite3_value *v);
/*
** Narrow [*pLo, *pHi) to the integers x for which "x OP v" holds (op an
** SQLITE_INDEX_CONSTRAINT_EQ, GT, GE, LT or LE), comparing as SQLite does
** with an INTEGER column. Returns 1 when no integer can match.
*/
int sioIntRange(sqlite3_value *v, int op, uint64_t *pLo, uint64_t *pHi);
/* Hand data to SQLite: a BLOB (an empty one when n is 0), or TEXT. */
void sioResultData(sqlite3_context *ctx, const void *p, size_t n, int bText);
/*
** A cursor that has read this many bytes of entries in order is a long
** scan: from there on the library verifies on a second thread
** (stateio_scan_parallel, stateio_updates_parallel; nothing when less than
** 8 MiB is left). Not from the first row: a LIMIT 1 over a long epoch
** starts no thread.
*/
#define SIO_PARALLEL_AFTER ((uint64_t)1 << 20)

/*
** vtab_table.c: an INSERT that gives data only (apCol: every column of the
** table). Checks the values, then appends with xAppend (stateio_update or
** stateio_snapshot); sets *pRowid to the new entry's offset.
*/
int sioInsertData(SioTab *pTab, sqlite3_value **apCol,
                  int (*xAppend)(stateio_writer*, const void*, size_t),
                  sqlite3_int64 *pRowid);

/*
** vtab_table.c: register the modules (the tables', and through
** sioRegisterFuncModules the table-valued functions', all sharing one
** SioConn). vtab_func.c: sioRegisterFunctions registers the extension's
** scalar SQL functions.
*/
int sioRegisterTables(sqlite3 *db);
int sioRegisterFuncModules(sqlite3 *db, SioConn *pConn);
int sioRegisterFunctions(sqlite3 *db);

#endif /* STATEIO_EXT_H */
