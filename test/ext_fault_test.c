/* SPDX-License-Identifier: MIT */
/*
** ext_fault_test.c - the SQL extension with a failure at every operation
** of a workload, in turn (SQLite's I/O error tests, through SQL). The
** extension is compiled into this program (SQLITE_CORE), so the library's
** os hook reaches the files its tables write.
**
** The workload, each step a unit whose entries carry its number:
**   1 an autocommit INSERT          5 INSERT INTO t(t) VALUES ('compact')
**   2 BEGIN, three rows, COMMIT     6 BEGIN, two rows, COMMIT
**   3 a snapshot                    7 a transaction that spills (spill=4K)
**   4 BEGIN, a row, SAVEPOINT, a row, ROLLBACK TO, a row, COMMIT
** The failures: EIO at each operation, ENOSPC at each, and a disk that
** fills at each (every write fails from there on). After each run: no
** unit is in part; every unit whose statement succeeded is there (units 1
** and 2 may be gone once compaction got as far as its rename); none whose
** statement failed is; the row rolled back to the savepoint never is;
** every error message is the extension's or SQLite's own, printable, with
** no file but the log's own named; and a new connection can commit.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "stateio.h"
#include "sweep.h"
#include "testhelp.h"

int sqlite3_stateio_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi);

static char tmpdir[256];
static char logpath[320];

/* Why a message is wrong, or NULL: printable, and naming no file but the log's own. */
static const char *bad_message(const char *m){
  if( !m ) return "no message";
  for(const unsigned char *p = (const unsigned char*)m; *p; p++){
    if( *p < 0x20 || *p > 0x7e ) return "a byte that is not printable";
  }
  /* Every absolute path in it (one that follows a space) is the log's, or begins with it. */
  for(const char *p = strstr(m, " /"); p; p = strstr(p + 1, " /")){
    if( strncmp(p + 1, logpath, strlen(logpath)) != 0 ) return "a path that is not the log's";
  }
  return NULL;
}

typedef struct unit { int ok, tried; } unit;

/* One step: each statement in turn; on failure ROLLBACK (no transaction: nothing). */
static int step(sqlite3 *db, const char *const *sql, char *why, size_t whylen){
  for(int i = 0; sql[i]; i++){
    char *err = NULL;
    int rc = sqlite3_exec(db, sql[i], NULL, NULL, &err);
    if( rc != SQLITE_OK ){
      const char *b = bad_message(err);
      if( b && !why[0] ) snprintf(why, whylen, "%s in \"%s\" for %s", b, err ? err : "", sql[i]);
      sqlite3_free(err);
      if( !sqlite3_get_autocommit(db) ) (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
      return 0;
    }
  }
  return 1;
}

static void workload(unit u[8], char *why, size_t whylen){
  memset(u, 0, 8 * sizeof(unit));
  why[0] = 0;
  sqlite3 *db;
  if( sqlite3_open(":memory:", &db) != SQLITE_OK ) return;
  char *create = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING stateio(%Q, spill='4K')", logpath);
  const char *c[] = { create, NULL };
  int opened = step(db, c, why, whylen);
  sqlite3_free(create);
  if( opened ){
    static const char *const s1[] = { "INSERT INTO t_updates(data) VALUES ('1.0')", NULL };
    static const char *const s2[] = { "BEGIN", "INSERT INTO t_updates(data) VALUES ('2.0'), ('2.1'), ('2.2')", "COMMIT", NULL };
    static const char *const s3[] = { "INSERT INTO t_snapshot(data) VALUES ('3.0')", NULL };
    static const char *const s4[] = { "BEGIN", "INSERT INTO t_updates(data) VALUES ('4.0')", "SAVEPOINT s",
                                      "INSERT INTO t_updates(data) VALUES ('4.x')", "ROLLBACK TO s",
                                      "INSERT INTO t_updates(data) VALUES ('4.1')", "COMMIT", NULL };
    static const char *const s5[] = { "INSERT INTO t(t) VALUES ('compact')", NULL };
    static const char *const s6[] = { "BEGIN", "INSERT INTO t_updates(data) VALUES ('6.0'), ('6.1')", "COMMIT", NULL };
    static const char *const s7[] = { "BEGIN",
      "INSERT INTO t_updates(data) WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 9)"
      " SELECT '7.' || x || ':' || hex(zeroblob(600)) FROM c",
      "COMMIT", NULL };
    const char *const *steps[8] = { NULL, s1, s2, s3, s4, s5, s6, s7 };
    for(int k = 1; k <= 7; k++){
      u[k].tried = 1;
      u[k].ok = step(db, steps[k], why, whylen);
    }
  }
  sqlite3_close(db);
}

/* The units of the log as read now: the number of entries of each, or -1 for an entry of no unit. */
static int read_units(int n[8], int *rolled_back){
  memset(n, 0, 8 * sizeof(int));
  *rolled_back = 0;
  if( access(logpath, F_OK) != 0 ) return 0;
  stateio_image img;
  if( stateio_open_image(logpath, &img) != STATEIO_OK ) return -1;
  stateio_scan *s;
  int rc = stateio_scan_open(&s, &img, 0, 0);
  int bad = rc != STATEIO_OK;
  while( !bad ){
    stateio_entry e;
    rc = stateio_scan_next(s, &e);
    if( rc == STATEIO_DONE ) break;
    if( rc != STATEIO_OK || e.len < 3 || e.data[1] != '.' || e.data[0] < '1' || e.data[0] > '7' ){ bad = 1; break; }
    if( e.data[2] == 'x' ) *rolled_back = 1;
    n[e.data[0] - '0']++;
  }
  if( rc == STATEIO_OK || rc == STATEIO_DONE ) stateio_scan_close(s);
  stateio_close_image(&img);
  return bad ? -1 : 0;
}

int main(void){
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof(tmpdir), "%s/ext_fault.XXXXXX", t && *t ? t : "/tmp");
  if( !mkdtemp(tmpdir) ){ perror("mkdtemp"); return 2; }
  snprintf(logpath, sizeof(logpath), "%s/f.log", tmpdir);
  char cpath[340];
  snprintf(cpath, sizeof(cpath), "%s-commit", logpath);
  if( sqlite3_auto_extension((void(*)(void))sqlite3_stateio_init) != SQLITE_OK ) return 2;
  static const int whole[8] = { 0, 1, 3, 1, 2, 0, 2, 10 };   /* entries of each unit */
  static const int modes[][2] = { { EIO, 0 }, { ENOSPC, 0 }, { ENOSPC, 1 } };
  unit u[8];
  char why[600];
  int runs = 0, wrong = 0, failing = 0;
  for(size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++){
    unlink(logpath);
    unlink(cpath);
    sweep_arm(0, 0, 0);
    workload(u, why, sizeof(why));
    int total = sweep_disarm();
    int n[8], rb;
    int all = read_units(n, &rb) == 0;
    for(int k = 1; k <= 7; k++) all = all && u[k].ok;
    CHECK_MSG(all && n[7] == 10 && n[4] == 2 && !rb && total > 30, "the workload runs (%d operations)", total);
    for(int k = 1; k <= total; k++){
      unlink(logpath);
      unlink(cpath);
      sweep_arm(k, modes[m][0], modes[m][1]);
      workload(u, why, sizeof(why));
      sweep_disarm();
      runs++;
      for(int j = 1; j <= 7; j++){
        if( u[j].tried && !u[j].ok ){ failing++; break; }
      }
      char bad[800] = "";
      if( why[0] ) snprintf(bad, sizeof(bad), "%s", why);
      else if( read_units(n, &rb) != 0 ) snprintf(bad, sizeof(bad), "the log does not read back");
      else if( rb ) snprintf(bad, sizeof(bad), "the row rolled back to its savepoint is there");
      for(int j = 1; j <= 7 && !bad[0]; j++){
        if( j == 5 ) continue;
        if( n[j] != 0 && n[j] != whole[j] ) snprintf(bad, sizeof(bad), "unit %d is in part (%d of %d entries)", j, n[j], whole[j]);
        else if( u[j].ok && n[j] == 0 && j > 2 ) snprintf(bad, sizeof(bad), "unit %d succeeded and is missing", j);
        else if( u[j].tried && !u[j].ok && n[j] != 0 ) snprintf(bad, sizeof(bad), "unit %d failed and is there", j);
      }
      if( !bad[0] ){
        sqlite3 *db;
        char *err = NULL;
        char *sql = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING stateio(%Q);"
                                    "BEGIN; INSERT INTO t_updates(data) VALUES ('6.8'), ('6.9'); COMMIT;", logpath);
        int rc = sqlite3_open(":memory:", &db);
        if( rc == SQLITE_OK ) rc = sqlite3_exec(db, sql, NULL, NULL, &err);
        if( rc != SQLITE_OK ) snprintf(bad, sizeof(bad), "a new connection then: %s", err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        sqlite3_free(sql);
        sqlite3_close(db);
        int before = n[6];
        if( !bad[0] && (read_units(n, &rb) != 0 || n[6] != before + 2) ){
          snprintf(bad, sizeof(bad), "a new connection's transaction does not read back");
        }
      }
      if( bad[0] ){
        wrong++;
        CHECK_MSG(0, "%s%s at operation %d of %d: %s", strerror(modes[m][0]),
                  modes[m][1] ? " for every write" : "", k, total, bad);
      }
    }
  }
  printf("ext fault sweep: %d runs of the SQL workload, %d with a statement failing, %d wrong\n",
         runs, failing, wrong);
  CHECK(runs > 100 && failing > runs / 2);
  unlink(logpath);
  unlink(cpath);
  rmdir(tmpdir);
  return test_report();
}
