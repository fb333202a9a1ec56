/* SPDX-License-Identifier: MIT */
/*
** sio_args.c - the arguments of CREATE VIRTUAL TABLE ... USING stateio(...).
**
**   stateio('FILE' [, option ...])
**
** FILE is the log, relative to the process's working directory when the
** table first uses it (the table keeps the absolute path from then on, so a
** later chdir() does not move it to another file). Options, each at most
** once, keys and values case-insensitive:
**   sync=full|off         fdatasync at each commit (default full)
**   locking=normal|exclusive  the log's lock taken for each commit (default
**                         normal), or kept from the first append until the
**                         connection closes, as PRAGMA locking_mode=EXCLUSIVE
**                         does
**   readonly              no INSERT; the file must exist (also readonly=1/0,
**                         on/off, yes/no, true/false)
**   on_corrupt=error|skip a damaged region fails the SELECT (default error)
**                         or is stepped over
**   data=blob|text        the type of the data column: BLOB (default), or
**                         TEXT (the stored bytes as they are, so that =,
**                         LIKE and the JSON functions work on them)
**   spill=SIZE|off        a transaction whose entries pass SIZE bytes (with
**                         K, M or G: KiB, MiB, GiB) goes out to the log in
**                         chunks before COMMIT, as SQLite's cache spills
**                         (stateio_writer_set_spill; default 64M); off keeps
**                         every transaction in memory until COMMIT
** Values may be quoted; FILE is dequoted the same way ('...', "...", `...`,
** [...]), as csv.c does.
*/
#include <ctype.h>
#include <stddef.h>
#include <string.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

/* Copy z without leading and trailing white space, then dequote it. */
static char *sio_dequote(const char *z, int n){
  char *zOut;
  char cQuote, cEnd;
  int i, j;
  while( n>0 && isspace((unsigned char)z[0]) ){ z++; n--; }
  while( n>0 && isspace((unsigned char)z[n-1]) ) n--;
  zOut = sqlite3_malloc64((sqlite3_uint64)n + 1);
  if( zOut==0 ) return 0;
  memcpy(zOut, z, (size_t)n);
  zOut[n] = 0;
  cQuote = zOut[0];
  switch( cQuote ){
    case '\'': case '"': case '`': cEnd = cQuote; break;
    case '[': cEnd = ']'; break;
    default: return zOut;
  }
  if( n<2 || zOut[n-1]!=cEnd ) return zOut;
  for(i=1, j=0; i<n-1; i++){
    if( zOut[i]==cEnd && cQuote!='[' && i+1<n-1 && zOut[i+1]==cEnd ) i++;
    zOut[j++] = zOut[i];
  }
  zOut[j] = 0;
  return zOut;
}

/* 1 or 0 for a boolean word, -1 for anything else (csv.c's csv_boolean). */
static int sio_boolean(const char *z){
  if( sqlite3_stricmp(z, "1")==0 || sqlite3_stricmp(z, "yes")==0
   || sqlite3_stricmp(z, "on")==0 || sqlite3_stricmp(z, "true")==0 ){
    return 1;
  }
  if( sqlite3_stricmp(z, "0")==0 || sqlite3_stricmp(z, "no")==0
   || sqlite3_stricmp(z, "off")==0 || sqlite3_stricmp(z, "false")==0 ){
    return 0;
  }
  return -1;
}

void sioArgsFree(SioArgs *p){
  sqlite3_free(p->zFile);
  p->zFile = 0;
}

/*
** A size: digits with an optional K, M or G (KiB, MiB, GiB), or off (0);
** -1 for anything else.
*/
static sqlite3_int64 sio_size(const char *z){
  sqlite3_int64 n = 0;
  int i = 0;
  if( sqlite3_stricmp(z, "off")==0 ) return 0;
  if( !isdigit((unsigned char)z[0]) ) return -1;
  for(; isdigit((unsigned char)z[i]); i++){
    n = n*10 + (z[i] - '0');
    if( n > ((sqlite3_int64)1 << 40) ) return -1;
  }
  switch( z[i] ){
    case 0: return n;
    case 'k': case 'K': n <<= 10; break;
    case 'm': case 'M': n <<= 20; break;
    case 'g': case 'G': n <<= 30; break;
    default: return -1;
  }
  if( z[i+1]!=0 || n > ((sqlite3_int64)1 << 40) ) return -1;
  return n;
}

/* The options: a key, and how its value is parsed. */
typedef struct SioOption {
  const char *zKey;
  const char *zExpect;    /* the accepted values, for messages */
  const char *azVal[2];   /* value for 0, value for 1; NULL: a boolean (or a size) */
  int bFlag;              /* may be given without a value (means 1) */
  int bSize;              /* a size (sio_size), into an sqlite3_int64 */
  size_t iOff;            /* where the int (or the size) goes in SioArgs */
} SioOption;

static const SioOption aSioOption[] = {
  { "sync",       "full or off",    { "off", "full" },    0, 0, offsetof(SioArgs, bSync) },
  { "locking",    "normal or exclusive", { "normal", "exclusive" }, 0, 0, offsetof(SioArgs, bExclusive) },
  { "readonly",   "1 or 0",         { 0, 0 },             1, 0, offsetof(SioArgs, bReadonly) },
  { "on_corrupt", "error or skip",  { "error", "skip" },  0, 0, offsetof(SioArgs, bSkip) },
  { "data",       "blob or text",   { "blob", "text" },   0, 0, offsetof(SioArgs, bText) },
  { "spill",      "a size in bytes, with K, M or G, up to 1024G, or off", { 0, 0 }, 0, 1, offsetof(SioArgs, nSpill) },
};
#define SIO_NOPTION ((int)(sizeof(aSioOption)/sizeof(aSioOption[0])))

int sioArgsParse(int argc, const char *const *argv, int iFirst,
                 SioArgs *p, char **pzErr){
  int aSeen[SIO_NOPTION];
  int i, j;
  char *zKey = 0, *zVal = 0;
  int rc = SQLITE_ERROR;

  memset(p, 0, sizeof(*p));
  memset(aSeen, 0, sizeof(aSeen));
  p->bSync = 1;
  p->nSpill = -1;
  if( argc<=iFirst ){
    sioErrMsg(pzErr, "stateio: no log file: use stateio('FILE' [, option=value ...])");
    return SQLITE_ERROR;
  }
  if( strchr("'\"`[", argv[iFirst][0])==0 && strchr(argv[iFirst], '=')!=0 ){
    sioErrMsg(pzErr, "stateio: the first argument must be the log file, not '%s'",
              argv[iFirst]);
    return SQLITE_ERROR;
  }
  p->zFile = sio_dequote(argv[iFirst], (int)strlen(argv[iFirst]));
  if( p->zFile==0 ) goto args_oom;
  if( p->zFile[0]==0 ){
    sioErrMsg(pzErr, "stateio: the log file name is empty");
    goto args_error;
  }

  for(i=iFirst+1; i<argc; i++){
    const char *z = argv[i];
    const char *zEq = strchr(z, '=');
    const SioOption *pOpt = 0;
    sqlite3_int64 v;
    zKey = sio_dequote(z, zEq ? (int)(zEq - z) : (int)strlen(z));
    zVal = zEq ? sio_dequote(zEq+1, (int)strlen(zEq+1)) : 0;
    if( zKey==0 || (zEq && zVal==0) ) goto args_oom;
    for(j=0; j<SIO_NOPTION; j++){
      if( sqlite3_stricmp(zKey, aSioOption[j].zKey)==0 ){ pOpt = &aSioOption[j]; break; }
    }
    if( pOpt==0 ){
      sioErrMsg(pzErr, "stateio: unknown option: '%s' (the options are sync, locking, "
                "readonly, on_corrupt, data and spill)", zKey);
      goto args_error;
    }
    if( aSeen[j] ){
      sioErrMsg(pzErr, "stateio: option '%s' given more than once", zKey);
      goto args_error;
    }
    aSeen[j] = 1;
    if( zVal==0 ){
      if( !pOpt->bFlag ){
        sioErrMsg(pzErr, "stateio: option '%s' needs a value (%s)", zKey, pOpt->zExpect);
        goto args_error;
      }
      v = 1;
    }else if( pOpt->bSize ){
      v = sio_size(zVal);
    }else if( pOpt->azVal[0]==0 ){
      v = sio_boolean(zVal);
    }else{
      v = sqlite3_stricmp(zVal, pOpt->azVal[1])==0 ? 1
        : sqlite3_stricmp(zVal, pOpt->azVal[0])==0 ? 0 : -1;
    }
    if( v<0 ){
      sioErrMsg(pzErr, "stateio: bad value for %s: '%s' (expected %s)",
                pOpt->zKey, zVal, pOpt->zExpect);
      goto args_error;
    }
    if( pOpt->bSize ) *(sqlite3_int64*)((char*)p + pOpt->iOff) = v;
    else *(int*)((char*)p + pOpt->iOff) = (int)v;
    sqlite3_free(zKey);
    sqlite3_free(zVal);
    zKey = zVal = 0;
  }
  return SQLITE_OK;

args_oom:
  rc = SQLITE_NOMEM;
  sioErrMsg(pzErr, "stateio: out of memory");
args_error:
  sqlite3_free(zKey);
  sqlite3_free(zVal);
  sioArgsFree(p);
  return rc;
}

char *sioArgsOptions(const SioArgs *p){
  char zSpill[40] = "";
  if( p->nSpill>=0 ) sqlite3_snprintf(sizeof(zSpill), zSpill, ", spill=%lld", (long long)p->nSpill);
  return sqlite3_mprintf("%s%s%s%s%s%s",
      p->bSync ? "" : ", sync=off",
      p->bExclusive ? ", locking=exclusive" : "",
      p->bReadonly ? ", readonly" : "",
      p->bSkip ? ", on_corrupt=skip" : "",
      p->bText ? ", data=text" : "",
      zSpill);
}
