/* SPDX-License-Identifier: MIT */
/*
** bench.c - the stateio benchmark: every figure next to its peer, in one run.
**
**   make bench                       build and run with the defaults (~2-3 minutes)
**   make bench BENCH_ARGS=--quick    a short smoke run (~25 s; smaller sizes, 3 reps)
**   build/bench --help               every flag
**
** It prints the machine it runs on (CPU, memory, kernel, the filesystem
** and device of its directory, SQLite, the compiler, the date and load),
** then measures. Each figure is measured after one warm-up run, --reps
** times (default 5; 3 for those that copy 1 GiB a run), and the median is
** reported. Nothing here passes or fails: the table says for each figure
** whether its target was met. The SQL figures need the extension
** (./stateio.so, or --ext PATH), figures 9 and 10 the command-line tool
** (./build/stateio, or --tool PATH), which runs as a child process; without
** them those figures are n/a and the others are still measured.
**
** Peak memory (figure 6) is measured in child processes (fork + exec of
** this program with --child), so that the peaks of different measurements
** never mix and the parent's buffers do not count.
*/
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "logio.h"
#include "stateio.h"

#define MiB (1024.0 * 1024.0)
#define MB  1e6

/* ------------------------------------------------------------ options */

static struct {
  int reps;
  int reps_given;     /* --reps was given */
  int quick;
  long rows;          /* figures 1, 2a: number of 100-byte updates */
  long big_rows;      /* figure 2b: number of 10 KiB updates */
  long durable;       /* figure 3: autocommit appends */
  long txns;          /* figure 7: durable transactions */
  long epochs;        /* figures 4-6, 8-11: epochs of the big log (1 MiB each) */
  long table_mib;     /* figure 5: size of the ordinary SQLite table */
  long small;         /* figure 12: small entries (100 B updates) */
  const char *dir;
  const char *ext;
  const char *tool;   /* the command-line tool */
  const char *only;   /* comma-separated figure numbers, NULL for all */
  int keep;
} opt = {
  .reps = 5, .rows = 1000000, .big_rows = 100000, .durable = 2000, .txns = 1000,
  .epochs = 1000, .table_mib = 256, .small = 1000000,
  .ext = "./stateio.so", .tool = "./build/stateio",
};

static char ext_path[PATH_MAX];
static int have_ext;                 /* the extension loads */
static char ext_error[512];
static char dir[PATH_MAX];
static int made_dir;

#define SNAP_LEN   (64 * 1024)       /* figure 4: snapshot of each epoch */
#define UPD_LEN    1024              /* figure 4: update size */
#define EPOCH_LEN  (1024 * 1024)     /* figure 4: bytes per epoch */

static void die(const char *fmt, ...){
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static void note(const char *fmt, ...){
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fflush(stderr);
}

static int want(int fig){
  if( !opt.only ) return 1;
  char buf[8];
  snprintf(buf, sizeof buf, "%d", fig);
  const char *p = opt.only;
  while( *p ){
    size_t n = strcspn(p, ",");
    if( n == strlen(buf) && strncmp(p, buf, n) == 0 ) return 1;
    p += n;
    if( *p == ',' ) p++;
  }
  return 0;
}

/* ------------------------------------------------------------ helpers */

static double now(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b){
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n){
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void fill_random(unsigned char *p, size_t n, uint64_t seed){
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for(size_t i = 0; i < n; i++){
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    p[i] = (unsigned char)(x >> 24);
  }
}

/* DIR/name, in memory that lives as long as the program (a few dozen calls). */
static char *path_in(const char *name){
  size_t n = strlen(dir) + strlen(name) + 2;
  char *b = malloc(n);
  if( !b ) die("out of memory");
  snprintf(b, n, "%s/%s", dir, name);
  return b;
}

/*
** Remove a file and its companions: SQLite's (-wal, -shm, -journal), the
** log's commit file (-commit, -commit.tmp), compaction's, mirror's and
** salvage's temporary files (.compact, .tmp, .salvage.tmp).
*/
static void rm_file(const char *path){
  static const char *const sfx[] = { "-wal", "-shm", "-journal", "-commit", "-commit.tmp",
                                     ".compact", ".tmp", ".salvage.tmp" };
  char b[PATH_MAX + 16];
  unlink(path);
  for(size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++){
    snprintf(b, sizeof b, "%s%s", path, sfx[i]);
    unlink(b);
  }
}

static uint64_t file_size(const char *path){
  struct stat st;
  if( stat(path, &st) != 0 ) die("stat %s: %s", path, strerror(errno));
  return (uint64_t)st.st_size;
}

static void check(int rc, const char *what){
  if( rc != STATEIO_OK ) die("%s: %s (errno %s)", what, stateio_errstr(rc), strerror(errno));
}

/* Read a whole file in 1 MiB chunks (the `cat file >/dev/null` peer). */
static uint64_t read_file(const char *path){
  static unsigned char *buf;
  if( !buf && !(buf = malloc(1 << 20)) ) die("out of memory");
  int fd = open(path, O_RDONLY);
  if( fd < 0 ) die("open %s: %s", path, strerror(errno));
  uint64_t total = 0;
  for(;;){
    ssize_t n = read(fd, buf, 1 << 20);
    if( n < 0 ){ if( errno == EINTR ) continue; die("read: %s", strerror(errno)); }
    if( n == 0 ) break;
    total += (uint64_t)n;
  }
  close(fd);
  return total;
}

/*
** The `cp` peer: read() [off, off+len) of src in 1 MiB chunks, write() it to
** a new file dst, fsync. Returns the seconds it took (dst is left in place).
*/
static double copy_file(const char *src, uint64_t off, uint64_t len, const char *dst){
  static unsigned char *buf;
  if( !buf && !(buf = malloc(1 << 20)) ) die("out of memory");
  rm_file(dst);
  double t0 = now();
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if( in < 0 ) die("open %s: %s", src, strerror(errno));
  int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if( out < 0 ) die("create %s: %s", dst, strerror(errno));
  if( lseek(in, (off_t)off, SEEK_SET) < 0 ) die("lseek %s: %s", src, strerror(errno));
  uint64_t left = len;
  while( left > 0 ){
    size_t want = left < (1 << 20) ? (size_t)left : (1 << 20);
    ssize_t n = read(in, buf, want);
    if( n < 0 ){ if( errno == EINTR ) continue; die("read %s: %s", src, strerror(errno)); }
    if( n == 0 ) die("%s ends before %" PRIu64, src, off + len);
    for(ssize_t done = 0; done < n; ){
      ssize_t w = write(out, buf + done, (size_t)(n - done));
      if( w < 0 ){ if( errno == EINTR ) continue; die("write %s: %s", dst, strerror(errno)); }
      done += w;
    }
    left -= (uint64_t)n;
  }
  if( fsync(out) != 0 ) die("fsync %s: %s", dst, strerror(errno));
  close(in);
  close(out);
  return now() - t0;
}

/* ------------------------------------------------------------ the tool (build/stateio) */

static char tool_path[PATH_MAX];
static int have_tool;

/*
** Run the tool as a child process: argv (argv[0] is replaced by the tool's
** path), stdout to /dev/null, stderr to DIR/tool.err. Returns the seconds
** from fork to its exit; dies unless it exits with `expect`.
*/
static double run_tool(const char **argv, int expect){
  const char *err = path_in("tool.err");
  fflush(stdout);
  fflush(stderr);
  double t0 = now();
  pid_t pid = fork();
  if( pid < 0 ) die("fork: %s", strerror(errno));
  if( pid == 0 ){
    int dn = open("/dev/null", O_RDWR);
    int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if( dn < 0 || fe < 0 || dup2(dn, 0) < 0 || dup2(dn, 1) < 0 || dup2(fe, 2) < 0 ) _exit(127);
    argv[0] = tool_path;
    execv(tool_path, (char**)argv);
    _exit(127);
  }
  int status;
  if( waitpid(pid, &status, 0) < 0 ) die("waitpid: %s", strerror(errno));
  double t = now() - t0;
  if( !WIFEXITED(status) || WEXITSTATUS(status) != expect ){
    char msg[1024] = "";
    FILE *f = fopen(err, "r");
    if( f ){ size_t n = fread(msg, 1, sizeof msg - 1, f); msg[n] = 0; fclose(f); }
    die("%s %s %s: exit status %d (expected %d): %s", tool_path, argv[1], argv[2] ? argv[2] : "",
        WIFEXITED(status) ? WEXITSTATUS(status) : -1, expect, msg);
  }
  unlink(err);
  return t;
}

/* ------------------------------------------------------------ SQL helpers */

static void sql_exec(sqlite3 *db, const char *sql){
  char *err = NULL;
  if( sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK ){
    die("SQL error: %s\n  in: %s", err ? err : sqlite3_errmsg(db), sql);
  }
}

/* Run a query returning one row of up to two integers. */
static void sql_ints(sqlite3 *db, const char *sql, int64_t *a, int64_t *b){
  sqlite3_stmt *st;
  if( sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ){
    die("SQL error: %s\n  in: %s", sqlite3_errmsg(db), sql);
  }
  int rc = sqlite3_step(st);
  if( rc == SQLITE_ROW ){
    if( a ) *a = sqlite3_column_int64(st, 0);
    if( b ) *b = sqlite3_column_count(st) > 1 ? sqlite3_column_int64(st, 1) : 0;
    rc = sqlite3_step(st);
  }
  if( rc != SQLITE_DONE ) die("SQL error: %s\n  in: %s", sqlite3_errmsg(db), sql);
  sqlite3_finalize(st);
}

/* A connection with the extension loaded (dbpath ":memory:" usually). */
static sqlite3 *ext_db_try(const char *dbpath, char *err_out, size_t err_len){
  sqlite3 *db;
  if( sqlite3_open(dbpath, &db) != SQLITE_OK ) die("sqlite3_open %s", dbpath);
  sqlite3_enable_load_extension(db, 1);
  char *err = NULL;
  /* The entry point is named after the file; a renamed copy still has stateio's. */
  if( sqlite3_load_extension(db, ext_path, NULL, &err) != SQLITE_OK
   && (sqlite3_free(err), err = NULL,
       sqlite3_load_extension(db, ext_path, "sqlite3_stateio_init", &err) != SQLITE_OK) ){
    if( err_out ) snprintf(err_out, err_len, "%s", err ? err : "load failed");
    sqlite3_free(err);
    sqlite3_close(db);
    return NULL;
  }
  return db;
}

static sqlite3 *ext_db(void){
  char err[512];
  sqlite3 *db = ext_db_try(":memory:", err, sizeof err);
  if( !db ) die("loading %s: %s", ext_path, err);
  return db;
}

/* CREATE VIRTUAL TABLE name USING stateio('path', sync=...) */
static void create_vtab(sqlite3 *db, const char *name, const char *path, const char *sync){
  char *sql = sqlite3_mprintf("CREATE VIRTUAL TABLE %s USING stateio(%Q%s%s)",
                              name, path, sync ? ", sync=" : "", sync ? sync : "");
  sql_exec(db, sql);
  sqlite3_free(sql);
}

/* A file database in WAL mode, synchronous=NORMAL (the ordinary-table peer). */
static sqlite3 *peer_db(const char *path, const char *sync){
  sqlite3 *db;
  if( sqlite3_open(path, &db) != SQLITE_OK ) die("sqlite3_open %s", path);
  sql_exec(db, "PRAGMA journal_mode=WAL");
  char *sql = sqlite3_mprintf("PRAGMA synchronous=%s", sync);
  sql_exec(db, sql);
  sqlite3_free(sql);
  return db;
}

/* ------------------------------------------------------------ the table */

typedef struct row {
  char fig[48], st[40], peer[40], ratio[16], target[24], met[8];
} row;

static row rows[64];
static int nrows;

static row *add_row(const char *fig){
  if( nrows >= (int)(sizeof rows / sizeof rows[0]) ) die("too many rows");
  row *r = &rows[nrows++];
  memset(r, 0, sizeof *r);
  snprintf(r->fig, sizeof r->fig, "%s", fig);
  return r;
}

static void na_row(const char *fig, const char *target, const char *why){
  row *r = add_row(fig);
  snprintf(r->st, sizeof r->st, "n/a");
  snprintf(r->peer, sizeof r->peer, "%s", why);
  snprintf(r->ratio, sizeof r->ratio, "-");
  snprintf(r->target, sizeof r->target, "%s", target);
  snprintf(r->met, sizeof r->met, "-");
}

/* A rate row: stateio and peer as values in unit, the ratio stateio/peer >= min. */
static void rate_row(const char *fig, double s, double p, const char *unit,
                     double min_ratio){
  row *r = add_row(fig);
  const char *fmt = s >= 1e5 ? "%.0f %s" : s >= 100 ? "%.0f %s" : "%.1f %s";
  snprintf(r->st, sizeof r->st, fmt, s, unit);
  fmt = p >= 1e5 ? "%.0f %s" : p >= 100 ? "%.0f %s" : "%.1f %s";
  snprintf(r->peer, sizeof r->peer, fmt, p, unit);
  double q = s / p;
  /* Two decimals, or three when two would hide which side of the target it is. */
  int close = min_ratio > 0 && fabs(q - min_ratio) < 0.005;
  snprintf(r->ratio, sizeof r->ratio, close ? "%.3fx" : "%.2fx", q);
  if( min_ratio > 0 ){
    snprintf(r->target, sizeof r->target, ">= %.2fx", min_ratio);
    snprintf(r->met, sizeof r->met, "%s", q >= min_ratio ? "yes" : "NO");
  }else{
    snprintf(r->target, sizeof r->target, "(info)");
    snprintf(r->met, sizeof r->met, "-");
  }
}

/*
** A time row: stateio's time against the peer's, the ratio of the times
** (lower is better) <= max_ratio (0: informative).
*/
static void fmt_time(char *out, size_t len, double t){
  if( t < 1e-3 ) snprintf(out, len, "%.1f us", t * 1e6);
  else if( t < 1 ) snprintf(out, len, "%.3f ms", t * 1e3);
  else snprintf(out, len, "%.2f s", t);
}

static void time_row(const char *fig, double ts, double tp, double max_ratio){
  row *r = add_row(fig);
  fmt_time(r->st, sizeof r->st, ts);
  fmt_time(r->peer, sizeof r->peer, tp);
  double q = ts / tp;
  snprintf(r->ratio, sizeof r->ratio, "%.3fx", q);
  if( max_ratio > 0 ){
    snprintf(r->target, sizeof r->target, "<= %.2fx", max_ratio);
    snprintf(r->met, sizeof r->met, "%s", q <= max_ratio ? "yes" : "NO");
  }else{
    snprintf(r->target, sizeof r->target, "(info)");
    snprintf(r->met, sizeof r->met, "-");
  }
}

static void print_table(void){
  int w[6] = { 6, 7, 4, 5, 6, 4 };
  const char *hd[6] = { "figure", "stateio", "peer", "ratio", "target", "met?" };
  for(int i = 0; i < nrows; i++){
    const char *c[6] = { rows[i].fig, rows[i].st, rows[i].peer, rows[i].ratio,
                         rows[i].target, rows[i].met };
    for(int k = 0; k < 6; k++) if( (int)strlen(c[k]) > w[k] ) w[k] = (int)strlen(c[k]);
  }
  printf("\n");
  for(int k = 0; k < 6; k++) printf("%s%-*s", k ? " | " : "", w[k], hd[k]);
  printf("\n");
  for(int k = 0; k < 6; k++){
    printf("%s", k ? "-|-" : "");
    for(int j = 0; j < w[k]; j++) putchar('-');
  }
  printf("\n");
  for(int i = 0; i < nrows; i++){
    const char *c[6] = { rows[i].fig, rows[i].st, rows[i].peer, rows[i].ratio,
                         rows[i].target, rows[i].met };
    for(int k = 0; k < 6; k++) printf("%s%-*s", k ? " | " : "", w[k], c[k]);
    printf("\n");
  }
  fflush(stdout);
}

/*
** Measure k things together: each runs once as a warm-up (in order), then
** opt.reps * mult times, interleaved (A B C, B C A, ...) so that a drift in
** the machine's load (other processes' I/O) hits all of them alike. Each
** fn returns a duration in seconds; m[i].med gets the median.
*/
typedef double (*measure_fn)(void *arg);
typedef struct meas { const char *what; measure_fn fn; void *arg; double med; } meas;

static void measure_n(meas *m, int k, int n){
  double *v = malloc(sizeof(double) * (size_t)(n * k));
  if( !v ) die("out of memory");
  for(int j = 0; j < k; j++) m[j].fn(m[j].arg);          /* warm-up */
  for(int i = 0; i < n; i++){
    for(int jj = 0; jj < k; jj++){
      int j = (i + jj) % k;
      v[j * n + i] = m[j].fn(m[j].arg);
    }
  }
  for(int j = 0; j < k; j++){
    double *w = v + j * n, lo = w[0], hi = w[0];
    for(int i = 1; i < n; i++){ if( w[i] < lo ) lo = w[i]; if( w[i] > hi ) hi = w[i]; }
    m[j].med = median(w, n);
    if( m[j].med < 0.01 ){
      note("  %-46s median %9.4f ms (min %.4f, max %.4f, n=%d)\n", m[j].what, m[j].med * 1e3,
           lo * 1e3, hi * 1e3, n);
    }else{
      note("  %-46s median %9.4f s  (min %.4f, max %.4f, n=%d)\n", m[j].what, m[j].med, lo, hi, n);
    }
  }
  free(v);
}

static void measure_all(meas *m, int k, int mult){
  measure_n(m, k, opt.reps * mult);
}

/*
** The long I/O figures (a 1 GiB copy each run) take at most 3 runs after
** the warm-up, unless --reps was given.
*/
static int heavy_reps(void){
  return opt.reps_given || opt.reps < 3 ? opt.reps : 3;
}

/* ------------------------------------------------------------ peers (plain I/O) */

/* Write `bytes` bytes to a fresh file in 1 MiB chunks, then fdatasync. */
typedef struct plain_write_arg { const char *path; const uint64_t *bytes; } plain_write_arg;

static double plain_write(void *a){
  plain_write_arg *p = a;
  static unsigned char *buf;
  if( !buf ){
    if( !(buf = malloc(1 << 20)) ) die("out of memory");
    fill_random(buf, 1 << 20, 7);
  }
  rm_file(p->path);
  int fd = open(p->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if( fd < 0 ) die("open %s: %s", p->path, strerror(errno));
  double t0 = now();
  uint64_t left = *p->bytes;
  while( left > 0 ){
    size_t k = left < (1 << 20) ? (size_t)left : (1 << 20);
    ssize_t n = write(fd, buf, k);
    if( n < 0 ){ if( errno == EINTR ) continue; die("write: %s", strerror(errno)); }
    left -= (uint64_t)n;
  }
  if( fdatasync(fd) != 0 ) die("fdatasync: %s", strerror(errno));
  double t = now() - t0;
  close(fd);
  rm_file(p->path);
  return t;
}

/* ------------------------------------------------------------ figure 1 */

typedef struct f1_arg { const char *path; long rows; uint64_t bytes; const char *sync; } f1_arg;

static char *cte_insert(const char *table, long rows){
  return sqlite3_mprintf(
    "INSERT INTO %s(data) WITH RECURSIVE c(x) AS "
    "(SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<%ld) "
    "SELECT zeroblob(100) FROM c", table, rows);
}

/* Seconds to insert rows of zeroblob(100) into table in one transaction. */
static double timed_bulk_insert(sqlite3 *db, const char *table, long rows){
  char *ins = cte_insert(table, rows);
  double t0 = now();
  sql_exec(db, "BEGIN");
  sql_exec(db, ins);
  sql_exec(db, "COMMIT");
  double t = now() - t0;
  sqlite3_free(ins);
  return t;
}

static double f1_stateio(void *a){
  f1_arg *p = a;
  rm_file(p->path);
  sqlite3 *db = ext_db();
  create_vtab(db, "statelog", p->path, p->sync);
  double t = timed_bulk_insert(db, "statelog_updates", p->rows);
  int64_t n = 0;
  sql_ints(db, "SELECT count(*) FROM statelog_updates", &n, NULL);
  if( n != p->rows ) die("figure 1: %lld updates read back, %ld written", (long long)n, p->rows);
  sqlite3_close(db);
  p->bytes = file_size(p->path);
  rm_file(p->path);
  return t;
}

static double f1_peer(void *a){
  f1_arg *p = a;
  rm_file(p->path);
  sqlite3 *db = peer_db(p->path, "NORMAL");
  sql_exec(db, "CREATE TABLE t(data BLOB)");
  double t = timed_bulk_insert(db, "t", p->rows);
  sqlite3_close(db);
  rm_file(p->path);
  return t;
}

static void figure1(void){
  note("figure 1: bulk append through SQL, %ld x 100 B in one transaction\n", opt.rows);
  if( !have_ext ){
    na_row("1 SQL bulk append (rows/s)", ">= 2.00x", "extension not loaded");
    return;
  }
  /*
  ** Like for like: synchronous=NORMAL in WAL mode does not sync at commit
  ** (only at checkpoints, which happen at close, outside the timing), which
  ** is stateio's sync=off. sync=full (an fdatasync of the whole
  ** transaction at COMMIT) is shown next to it.
  */
  f1_arg a = { path_in("f1.log"), opt.rows, 0, "off" };
  f1_arg b = { path_in("f1.db"), opt.rows, 0, NULL };
  f1_arg c = { path_in("f1full.log"), opt.rows, 0, "full" };
  meas m[3] = {
    { "stateio vtab INSERT ... SELECT (sync=off)", f1_stateio, &a, 0 },
    { "SQLite table (WAL, synchronous=NORMAL)", f1_peer, &b, 0 },
    { "stateio vtab INSERT ... SELECT (sync=full)", f1_stateio, &c, 0 },
  };
  measure_all(m, 3, 1);
  double ts = m[0].med, tp = m[1].med;
  rate_row("1 SQL bulk append 100 B (rows/s)", opt.rows / ts, opt.rows / tp, "rows/s", 2.0);
  rate_row("  same, sync=full (rows/s)", opt.rows / m[2].med, opt.rows / tp, "rows/s", 0);
}

/* ------------------------------------------------------------ figure 2 */

typedef struct f2_arg {
  const char *path; long n; size_t len; int bulk; uint64_t bytes;
} f2_arg;

static double f2_stateio(void *a){
  f2_arg *p = a;
  unsigned char *data = malloc(p->len);
  if( !data ) die("out of memory");
  fill_random(data, p->len, 3);
  rm_file(p->path);
  stateio_writer *w;
  check(stateio_writer_open(&w, p->path, STATEIO_CREATE | STATEIO_SYNC), "writer open");
  if( !p->bulk ) stateio_writer_set_spill(w, 0);    /* the in-memory batch: no spill */
  double t0 = now();
  check(p->bulk ? stateio_writer_begin_bulk(w) : stateio_writer_begin(w), "begin");
  for(long i = 0; i < p->n; i++) check(stateio_update(w, data, p->len), "update");
  check(stateio_writer_commit(w), "commit");
  double t = now() - t0;
  check(stateio_writer_close(w), "writer close");
  p->bytes = file_size(p->path);
  rm_file(p->path);
  free(data);
  return t;
}

static void figure2_one(const char *fig, long n, size_t len, double min_ratio){
  note("figure 2: bulk append through the C API, %ld x %zu B in one batch, one sync\n", n, len);
  f2_arg a = { path_in("f2.log"), n, len, 0, 0 };
  f2_arg b = { path_in("f2.log"), n, len, 1, 0 };
  plain_write_arg pw = { path_in("f2.peer"), &a.bytes };   /* as many bytes as the log */
  char w1[64], w2[64], w3[64];
  snprintf(w1, sizeof w1, "stateio_writer_begin .. commit (%zu B)", len);
  snprintf(w2, sizeof w2, "write() 1 MiB chunks + fdatasync");
  snprintf(w3, sizeof w3, "stateio_writer_begin_bulk .. commit (%zu B)", len);
  meas m[3] = { { w1, f2_stateio, &a, 0 }, { w2, plain_write, &pw, 0 }, { w3, f2_stateio, &b, 0 } };
  measure_all(m, 3, 1);
  note("  log file: %.1f MiB\n", a.bytes / MiB);
  /*
  ** The bulk-append API is begin_bulk (entries go out in 4 MiB chunks,
  ** one sync at commit): that is the figure. A plain batch (begin) with
  ** spilling off (stateio_writer_set_spill(w, 0); by default a batch
  ** spills past 64 MiB and is then a bulk batch) keeps the whole batch in
  ** memory until commit, so that nothing reaches the file before it; it
  ** is shown next to it.
  */
  rate_row(fig, b.bytes / m[2].med / MB, a.bytes / m[1].med / MB, "MB/s", min_ratio);
  rate_row("  same, in-memory batch (MB/s)", a.bytes / m[0].med / MB, a.bytes / m[1].med / MB, "MB/s", 0);
}

static void figure2(void){
  figure2_one("2a C bulk append 100 B (MB/s)", opt.rows, 100, 0.40);
  figure2_one("2b C bulk append 10 KiB (MB/s)", opt.big_rows, 10240, 0.80);
}

/* ------------------------------------------------------------ figure 3 */

/*
** Durable appends are timed method by method in small blocks (F3_BLOCK
** commits each, in rotating order), so that all methods see the same device:
** here fdatasync() latency drifts by 20x with other processes' I/O, which
** swamps a comparison of whole runs made one after the other.
*/
#define F3_BLOCK 25

typedef struct f3_state {
  const char *path;
  unsigned char data[LOGIO_BLOCK];
  int per_op;                /* entries per operation: 1 (figure 3) or TXN_ENTRIES (figure 7) */
  int fd;                    /* peer */
  uint64_t off;
  stateio_writer *w;         /* C API */
  sqlite3 *db;               /* SQL: stateio vtab or ordinary table */
  sqlite3_stmt *st;
} f3_state;

typedef struct f3_method {
  const char *what;
  void (*open)(f3_state*);
  void (*op)(f3_state*);
  void (*close)(f3_state*);
  f3_state s;
} f3_method;

/* The peer: one pwrite() of the operation's entries' encoded bytes at the end, fdatasync(). */
static void f3_peer_open(f3_state *s){
  s->fd = open(s->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if( s->fd < 0 ) die("open %s: %s", s->path, strerror(errno));
  s->off = 0;
}
static void f3_peer_op(f3_state *s){
  size_t k = 0;
  for(int i = 0; i < s->per_op; i++){
    k += (size_t)logio_encoded_size(s->off + k, STATEIO_ENTRY_HEADER + 100);
  }
  if( pwrite(s->fd, s->data, k, (off_t)s->off) != (ssize_t)k ) die("pwrite: %s", strerror(errno));
  if( fdatasync(s->fd) != 0 ) die("fdatasync: %s", strerror(errno));
  s->off += k;
}
static void f3_peer_close(f3_state *s){ close(s->fd); }

static void f3_c_open(f3_state *s){
  check(stateio_writer_open(&s->w, s->path, STATEIO_CREATE | STATEIO_SYNC), "writer open");
}
static void f3_c_op(f3_state *s){ check(stateio_update(s->w, s->data, 100), "update"); }
static void f3_c_close(f3_state *s){ check(stateio_writer_close(s->w), "writer close"); }

static void f3_prepare(f3_state *s, const char *sql){
  if( sqlite3_prepare_v2(s->db, sql, -1, &s->st, NULL) != SQLITE_OK ){
    die("prepare: %s", sqlite3_errmsg(s->db));
  }
}
static void f3_sql_open(f3_state *s){
  s->db = ext_db();
  create_vtab(s->db, "statelog", s->path, "full");
  f3_prepare(s, "INSERT INTO statelog_updates(data) VALUES(?)");
}
/* Informative: an ordinary SQLite table, WAL, synchronous=FULL, autocommit. */
static void f3_table_open(f3_state *s){
  s->db = peer_db(s->path, "FULL");
  sql_exec(s->db, "CREATE TABLE t(data BLOB)");
  f3_prepare(s, "INSERT INTO t(data) VALUES(?)");
}
static void f3_sql_op(f3_state *s){
  sqlite3_bind_blob(s->st, 1, s->data, 100, SQLITE_STATIC);
  if( sqlite3_step(s->st) != SQLITE_DONE ) die("insert: %s", sqlite3_errmsg(s->db));
  sqlite3_reset(s->st);
}
static void f3_sql_close(f3_state *s){
  sqlite3_finalize(s->st);
  sqlite3_close(s->db);
}

/*
** Run k durable methods `ops` operations each, opt.reps times after a
** warm-up, interleaved in blocks of F3_BLOCK operations (rotating order);
** med[j] gets method j's median total time.
*/
static void durable_run(f3_method *m, const char *const *names, int k, long ops, double *med){
  int n = opt.reps;
  double *v = malloc(sizeof(double) * (size_t)(n * k));
  if( !v ) die("out of memory");
  for(int j = 0; j < k; j++){
    m[j].s.path = path_in(names[j]);
    if( m[j].s.per_op < 1 ) m[j].s.per_op = 1;
    fill_random(m[j].s.data, sizeof m[j].s.data, 5);
  }
  for(int rep = -1; rep < n; rep++){          /* rep -1: the warm-up */
    double t[8] = {0};
    for(int j = 0; j < k; j++){ rm_file(m[j].s.path); m[j].open(&m[j].s); }
    long done = 0, blk = 0;
    while( done < ops ){
      long todo = ops - done < F3_BLOCK ? ops - done : F3_BLOCK;
      for(int jj = 0; jj < k; jj++){
        int j = (int)((blk + jj) % k);
        double t0 = now();
        for(long i = 0; i < todo; i++) m[j].op(&m[j].s);
        t[j] += now() - t0;
      }
      done += todo;
      blk++;
    }
    for(int j = 0; j < k; j++){ m[j].close(&m[j].s); rm_file(m[j].s.path); }
    if( rep >= 0 ) for(int j = 0; j < k; j++) v[j * n + rep] = t[j];
  }
  for(int j = 0; j < k; j++){
    double *w = v + j * n, lo = w[0], hi = w[0];
    for(int i = 1; i < n; i++){ if( w[i] < lo ) lo = w[i]; if( w[i] > hi ) hi = w[i]; }
    med[j] = median(w, n);
    note("  %-46s median %9.4f s  (min %.4f, max %.4f, n=%d)\n", m[j].what, med[j], lo, hi, n);
  }
  free(v);
}

static void figure3(void){
  note("figure 3: durable appends, %ld autocommit appends of 100 B, sync=full "
       "(methods interleaved in blocks of %d)\n", opt.durable, F3_BLOCK);
  static f3_method m[4] = {
    { "pwrite() + fdatasync() loop", f3_peer_open, f3_peer_op, f3_peer_close, {0} },
    { "C stateio_update, STATEIO_SYNC, no batch", f3_c_open, f3_c_op, f3_c_close, {0} },
    { "SQLite table autocommit (WAL, sync=FULL)", f3_table_open, f3_sql_op, f3_sql_close, {0} },
    { "SQL autocommit INSERT (sync=full)", f3_sql_open, f3_sql_op, f3_sql_close, {0} },
  };
  static const char *const names[4] = { "f3.peer", "f3.log", "f3.db", "f3.sql.log" };
  double med[4] = {0};
  durable_run(m, names, have_ext ? 4 : 3, opt.durable, med);
  double tp = med[0];
  if( have_ext ){
    rate_row("3 SQL durable appends (commits/s)", opt.durable / med[3], opt.durable / tp, "commits/s", 0.90);
  }else{
    na_row("3 SQL durable appends (commits/s)", ">= 0.90x", "extension not loaded");
  }
  rate_row("  same, C API (commits/s)", opt.durable / med[1], opt.durable / tp, "commits/s", 0.90);
  rate_row("  SQLite table WAL FULL vs peer", opt.durable / med[2], opt.durable / tp, "commits/s", 0);
}

/* ------------------------------------------------------------ figure 7 */

/*
** Durable multi-entry transactions: TXN_ENTRIES updates of 100 B per
** commit, STATEIO_SYNC. A commit of several entries syncs twice (the commit
** record in flight, then the log: doc/COMMIT.md), so the target against one
** write + fdatasync per commit is 0.45x.
*/
#define TXN_ENTRIES 8

static void f7_c_op(f3_state *s){
  check(stateio_writer_begin(s->w), "begin");
  for(int i = 0; i < TXN_ENTRIES; i++) check(stateio_update(s->w, s->data, 100), "update");
  check(stateio_writer_commit(s->w), "commit");
}
static void f7_sql_op(f3_state *s){
  sql_exec(s->db, "BEGIN");
  for(int i = 0; i < TXN_ENTRIES; i++) f3_sql_op(s);
  sql_exec(s->db, "COMMIT");
}

static void figure7(void){
  note("figure 7: durable transactions, %ld commits of %d x 100 B, sync=full "
       "(methods interleaved in blocks of %d)\n", opt.txns, TXN_ENTRIES, F3_BLOCK);
  static f3_method m[4] = {
    { "pwrite() of 8 entries + fdatasync() loop", f3_peer_open, f3_peer_op, f3_peer_close, {0} },
    { "C begin, 8 x stateio_update, commit (SYNC)", f3_c_open, f7_c_op, f3_c_close, {0} },
    { "SQLite table BEGIN, 8 INSERT, COMMIT (FULL)", f3_table_open, f7_sql_op, f3_sql_close, {0} },
    { "SQL BEGIN, 8 INSERT, COMMIT (sync=full)", f3_sql_open, f7_sql_op, f3_sql_close, {0} },
  };
  static const char *const names[4] = { "f7.peer", "f7.log", "f7.db", "f7.sql.log" };
  m[0].s.per_op = TXN_ENTRIES;
  double med[4] = {0};
  durable_run(m, names, have_ext ? 4 : 3, opt.txns, med);
  double tp = med[0];
  rate_row("7 C durable txns, 8 x 100 B (commits/s)", opt.txns / med[1], opt.txns / tp, "commits/s", 0.45);
  if( have_ext ){
    rate_row("  same, SQL BEGIN..COMMIT (commits/s)", opt.txns / med[3], opt.txns / tp, "commits/s", 0);
  }else{
    na_row("  same, SQL BEGIN..COMMIT (commits/s)", "(info)", "extension not loaded");
  }
  rate_row("  SQLite table WAL FULL vs peer", opt.txns / med[2], opt.txns / tp, "commits/s", 0);
}

/* ------------------------------------------------------------ the logs of figures 4-6 */

static uint64_t big_size, small_size, empty_size;
static struct stat big_stat;            /* big.log as built (figure 8 checks it stays so) */
static uint64_t last_epoch_updates;     /* updates in the last epoch */
static int logs_built;

/*
** Append `epochs` epochs to a log: each a 64 KiB snapshot, then 1 KiB
** updates until the epoch holds ~1 MiB. Epoch k's bytes depend only on k
** (seed), so the last epoch of the big log is the epoch of the small log.
*/
static void build_log(const char *path, long first, long last){
  unsigned char *snap = malloc(SNAP_LEN), *upd = malloc(UPD_LEN);
  if( !snap || !upd ) die("out of memory");
  rm_file(path);
  stateio_writer *w;
  check(stateio_writer_open(&w, path, STATEIO_CREATE | STATEIO_SYNC), "writer open");
  check(stateio_writer_begin_bulk(w), "begin_bulk");
  for(long k = first; k <= last; k++){
    fill_random(snap, SNAP_LEN, (uint64_t)k);
    uint64_t start = stateio_writer_mark(w).offset;
    check(stateio_snapshot(w, snap, SNAP_LEN), "snapshot");
    uint64_t n = 0;
    while( stateio_writer_mark(w).offset - start < EPOCH_LEN - UPD_LEN - 64 ){
      fill_random(upd, 16, (uint64_t)k * 1000003u + n);   /* vary the head */
      check(stateio_update(w, upd, UPD_LEN), "update");
      n++;
    }
    last_epoch_updates = n;
  }
  check(stateio_writer_commit(w), "commit");
  check(stateio_writer_close(w), "writer close");
  free(snap);
  free(upd);
}

static void build_logs(void){
  if( logs_built ) return;
  logs_built = 1;
  double t0 = now();
  note("building the logs: %ld epochs of ~1 MiB (64 KiB snapshot + 1 KiB updates) ...", opt.epochs);
  build_log(path_in("big.log"), 0, opt.epochs - 1);
  build_log(path_in("small.log"), opt.epochs - 1, opt.epochs - 1);
  int fd = open(path_in("empty.log"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if( fd < 0 ) die("create empty.log: %s", strerror(errno));
  close(fd);
  big_size = file_size(path_in("big.log"));
  if( stat(path_in("big.log"), &big_stat) != 0 ) die("stat big.log: %s", strerror(errno));
  small_size = file_size(path_in("small.log"));
  empty_size = 0;
  read_file(path_in("big.log"));              /* warm the page cache */
  note(" %.1f s (big %.0f MiB, small %.2f MiB, %" PRIu64 " updates in the last epoch)\n",
       now() - t0, big_size / MiB, small_size / MiB, last_epoch_updates);
}

/* ------------------------------------------------------------ figure 4 */

/*
** An image of the log at path: what readers see through stateio_open_image()
** (which reads the commit file PATH-commit around an fstat of the log), or,
** with from_fd, stateio_image_from_fd() on a descriptor of the log (no
** commit file consulted): the two differ by the cost of the record.
*/
static void image_open(const char *path, int from_fd, stateio_image *img){
  if( !from_fd ){
    check(stateio_open_image(path, img), "open image");
    return;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if( fd < 0 ) die("open %s: %s", path, strerror(errno));
  check(stateio_image_from_fd(img, fd), "image from fd");
}

static void image_close(stateio_image *img, int from_fd){
  if( from_fd ) close(img->fd);
  else stateio_close_image(img);
}

typedef struct f4_arg { const char *path; sqlite3 *db; const char *tab; int from_fd; } f4_arg;

/* Restore and read every update of the last epoch; returns bytes via *sum. */
static uint64_t restore_c_as(const char *path, int from_fd, int parallel, uint64_t *count){
  stateio_image img;
  image_open(path, from_fd, &img);
  stateio_state st;
  check(stateio_restore(&img, &st), "restore");
  uint64_t sum = st.snapshot_len, n = 0;
  stateio_updates *u;
  check(stateio_updates_open(&u, &img, &st), "updates open");
  if( parallel ) check(stateio_updates_parallel(u), "updates parallel");
  stateio_entry e;
  int rc;
  while( (rc = stateio_updates_next(u, &e)) == STATEIO_OK ){ sum += e.len; n++; }
  if( rc != STATEIO_DONE ) check(rc, "updates next");
  stateio_updates_close(u);
  stateio_state_clear(&st);
  image_close(&img, from_fd);
  if( count ) *count = n;
  return sum;
}

static uint64_t restore_c(const char *path, int from_fd, uint64_t *count){
  return restore_c_as(path, from_fd, 0, count);
}

static double f4_c(void *a){
  f4_arg *p = a;
  uint64_t n;
  double t0 = now();
  restore_c(p->path, p->from_fd, &n);
  double t = now() - t0;
  if( n != last_epoch_updates ) die("restore: %" PRIu64 " updates, expected %" PRIu64, n, last_epoch_updates);
  return t;
}

/* The image alone: 100 opens and closes, the time of one. */
static double f4_image(void *a){
  f4_arg *p = a;
  double t0 = now();
  for(int i = 0; i < 100; i++){
    stateio_image img;
    image_open(p->path, p->from_fd, &img);
    image_close(&img, p->from_fd);
  }
  return (now() - t0) / 100;
}

static void restore_sql(sqlite3 *db, const char *tab, int64_t *snap_len, int64_t *n, int64_t *sum){
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT length(data) FROM %s_snapshot", tab);
  sql_ints(db, sql, snap_len, NULL);
  snprintf(sql, sizeof sql, "SELECT count(*), sum(length(data)) FROM %s_updates", tab);
  sql_ints(db, sql, n, sum);
}

static double f4_sql(void *a){
  f4_arg *p = a;
  int64_t s = 0, n = 0, sum = 0;
  double t0 = now();
  restore_sql(p->db, p->tab, &s, &n, &sum);
  double t = now() - t0;
  if( (uint64_t)n != last_epoch_updates || s != SNAP_LEN ){
    die("SQL restore of %s: snapshot %lld B, %lld updates (expected %d, %" PRIu64 ")",
        p->tab, (long long)s, (long long)n, SNAP_LEN, last_epoch_updates);
  }
  return t;
}

static void restore_row(const char *fig, double tb, double ts){
  row *r = add_row(fig);
  snprintf(r->st, sizeof r->st, "%.0f MiB: %.3f ms", big_size / MiB, tb * 1e3);
  snprintf(r->peer, sizeof r->peer, "%.0f MiB: %.3f ms", small_size / MiB, ts * 1e3);
  double q = tb / ts;
  snprintf(r->ratio, sizeof r->ratio, "%.2fx", q);
  snprintf(r->target, sizeof r->target, "<= 1.20x, < 5 ms");
  snprintf(r->met, sizeof r->met, "%s", q <= 1.2 && tb < 5e-3 ? "yes" : "NO");
}

static void figure4(void){
  build_logs();
  note("figure 4: restore + read the last epoch's %" PRIu64 " updates\n", last_epoch_updates);
  f4_arg big = { path_in("big.log"), NULL, "big", 0 }, small = { path_in("small.log"), NULL, "small", 0 };
  f4_arg bigfd = { big.path, NULL, "big", 1 };
  meas m[3] = { { "C restore, big log", f4_c, &big, 0 }, { "C restore, small log", f4_c, &small, 0 },
                { "C restore, big log, image_from_fd", f4_c, &bigfd, 0 } };
  {
    /* The comparison means something only if the log has its commit record. */
    stateio_image img;
    image_open(big.path, 0, &img);
    if( !img.journaled ) die("big.log has no commit file: open_image would read no record");
    note("  big.log-commit: journaled, committed up to %" PRIu64 " of %" PRIu64 " bytes\n",
         img.committed, img.file_size);
    image_close(&img, 0);
  }
  measure_all(m, 3, 20);
  restore_row("4 C restore (big vs small log)", m[0].med, m[1].med);
  time_row("  commit record: open_image vs from_fd", m[0].med, m[2].med, 1.05);
  meas im[2] = { { "stateio_open_image + close (one of 100)", f4_image, &big, 0 },
                 { "open + stateio_image_from_fd + close", f4_image, &bigfd, 0 } };
  measure_all(im, 2, 4);
  time_row("  the image alone: open_image vs from_fd", im[0].med, im[1].med, 0);
  if( !have_ext ){
    na_row("4 SQL restore (big vs small log)", "<= 1.20x, < 5 ms", "extension not loaded");
    return;
  }
  sqlite3 *db = ext_db();
  create_vtab(db, "big", big.path, NULL);
  create_vtab(db, "small", small.path, NULL);
  big.db = small.db = db;
  meas q[2] = { { "SQL restore, big log", f4_sql, &big, 0 }, { "SQL restore, small log", f4_sql, &small, 0 } };
  measure_all(q, 2, 20);
  sqlite3_close(db);
  restore_row("4 SQL restore (big vs small log)", q[0].med, q[1].med);
}

/* ------------------------------------------------------------ figure 5 */

typedef struct f5_arg {
  const char *path; sqlite3 *db; const char *sql; uint64_t bytes, rows; int mode;
} f5_arg;

static uint64_t scan_c(const char *path, int from_fd, uint64_t *count){
  stateio_image img;
  image_open(path, from_fd, &img);
  logio_reader *r;
  check(logio_reader_open(&r, &img, 0), "reader open");
  logio_entry e;
  uint64_t n = 0, sum = 0;
  int rc;
  while( (rc = logio_reader_next(r, &e)) == STATEIO_OK ){ n++; sum += e.len; }
  if( rc != STATEIO_DONE ) check(rc, "reader next");
  logio_reader_close(r);
  image_close(&img, from_fd);
  if( count ) *count = n;
  return sum;
}

/*
** The public scan (stateio_scan_*: state entries, the epoch rules checked),
** single-threaded or with stateio_scan_parallel() (read ahead and verify
** on a second thread). Every entry must be good.
*/
static uint64_t scan_state(const char *path, int parallel, uint64_t *count){
  stateio_image img;
  image_open(path, 0, &img);
  stateio_scan *s;
  check(stateio_scan_open(&s, &img, 0, 0), "scan open");
  if( parallel ) check(stateio_scan_parallel(s), "scan parallel");
  stateio_entry e;
  uint64_t n = 0, sum = 0;
  int rc;
  while( (rc = stateio_scan_next(s, &e)) == STATEIO_OK ){ n++; sum += e.len; }
  if( rc != STATEIO_DONE ) check(rc, "scan next");
  stateio_scan_close(s);
  image_close(&img, 0);
  if( count ) *count = n;
  return sum;
}

/* mode 0: logio_reader on stateio_open_image, 1: the same on image_from_fd,
** 2: stateio_scan, 3: stateio_scan with stateio_scan_parallel(). */
static double f5_c(void *a){
  f5_arg *p = a;
  double t0 = now();
  p->bytes = p->mode < 2 ? scan_c(p->path, p->mode, &p->rows) : scan_state(p->path, p->mode == 3, &p->rows);
  return now() - t0;
}

static double f5_read(void *a){
  f5_arg *p = a;
  double t0 = now();
  p->bytes = read_file(p->path);
  return now() - t0;
}

static double f5_sql(void *a){
  f5_arg *p = a;
  int64_t n = 0, sum = 0;
  double t0 = now();
  sql_ints(p->db, p->sql, &n, &sum);
  double t = now() - t0;
  p->rows = (uint64_t)n;
  p->bytes = (uint64_t)sum;
  return t;
}

/* The ordinary table: the entries of the big log's first epochs, as rows. */
static void build_table(const char *path){
  double t0 = now();
  note("building the ordinary SQLite table (%ld MiB of the big log's entries) ...", opt.table_mib);
  rm_file(path);
  sqlite3 *db;
  if( sqlite3_open(path, &db) != SQLITE_OK ) die("sqlite3_open %s", path);
  sql_exec(db, "PRAGMA journal_mode=WAL");
  sql_exec(db, "CREATE TABLE t(offset INTEGER, type INTEGER, epoch INTEGER, data BLOB)");
  sql_exec(db, "BEGIN");
  sqlite3_stmt *st;
  if( sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?,?,?,?)", -1, &st, NULL) != SQLITE_OK ){
    die("prepare: %s", sqlite3_errmsg(db));
  }
  stateio_image img;
  check(stateio_open_image(path_in("big.log"), &img), "open image");
  logio_reader *r;
  check(logio_reader_open(&r, &img, 0), "reader open");
  logio_entry e;
  uint64_t limit = (uint64_t)opt.table_mib << 20;
  while( logio_reader_next(r, &e) == STATEIO_OK && e.offset < limit ){
    stateio_entry se;
    check(stateio_parse_entry(e.data, e.len, &se), "parse entry");
    sqlite3_bind_int64(st, 1, (sqlite3_int64)e.offset);
    sqlite3_bind_int(st, 2, se.kind);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)se.epoch);
    sqlite3_bind_blob(st, 4, se.data, (int)se.len, SQLITE_STATIC);
    if( sqlite3_step(st) != SQLITE_DONE ) die("insert: %s", sqlite3_errmsg(db));
    sqlite3_reset(st);
  }
  logio_reader_close(r);
  stateio_close_image(&img);
  sqlite3_finalize(st);
  sql_exec(db, "COMMIT");
  sql_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  sqlite3_close(db);
  note(" %.1f s (%.0f MiB file)\n", now() - t0, file_size(path) / MiB);
}

static void figure5(void){
  build_logs();
  note("figure 5: full scan of the %.0f MiB log, warm page cache\n", big_size / MiB);
  f5_arg c = { path_in("big.log"), NULL, NULL, 0, 0, 0 };
  f5_arg rd = c, cfd = c, sc = c, sp = c;
  cfd.mode = 1; sc.mode = 2; sp.mode = 3;
  meas m[5] = { { "C logio_reader loop", f5_c, &c, 0 }, { "read() 1 MiB chunks", f5_read, &rd, 0 },
                { "C logio_reader loop, image_from_fd", f5_c, &cfd, 0 },
                { "C stateio_scan loop", f5_c, &sc, 0 },
                { "C stateio_scan loop, stateio_scan_parallel", f5_c, &sp, 0 } };
  measure_all(m, 5, 2);
  double tc = m[0].med, tr = m[1].med;
  if( sc.rows != c.rows || sp.rows != c.rows || cfd.rows != c.rows ){
    die("figure 5: the scans read %" PRIu64 ", %" PRIu64 ", %" PRIu64 " and %" PRIu64 " entries",
        c.rows, cfd.rows, sc.rows, sp.rows);
  }
  rate_row("5 C reader full scan (MB/s)", big_size / tc / MB, big_size / tr / MB, "MB/s", 0.50);
  time_row("  commit record: open_image vs from_fd", tc, m[2].med, 1.05);
  rate_row("  C stateio_scan, one thread (MB/s)", big_size / m[3].med / MB, big_size / tr / MB, "MB/s", 0);
  rate_row("5 C scan, stateio_scan_parallel (MB/s)", big_size / m[4].med / MB, big_size / tr / MB, "MB/s", 0.60);
  if( !have_ext ){
    na_row("5 SQL full scan (MB/s of data)", ">= 1.00x", "extension not loaded");
    return;
  }
  const char *tpath = path_in("table.db");
  build_table(tpath);
  sqlite3 *db = ext_db();
  create_vtab(db, "statelog", c.path, NULL);
  char *att = sqlite3_mprintf("ATTACH %Q AS o", tpath);
  sql_exec(db, att);
  sqlite3_free(att);
  f5_arg s = { c.path, db, "SELECT count(*), sum(length(data)) FROM statelog", 0, 0, 0 };
  f5_arg t = { tpath, db, "SELECT count(*), sum(length(data)) FROM o.t", 0, 0, 0 };
  f5_arg tf = { tpath, db, "SELECT count(*), sum(length(CAST(data AS BLOB))) FROM o.t", 0, 0, 0 };
  read_file(tpath);
  meas q[3] = {
    { "SQL stateio vtab scan", f5_sql, &s, 0 },
    { "SQL ordinary table scan (length() only)", f5_sql, &t, 0 },
    { "SQL ordinary table scan (data read, CAST)", f5_sql, &tf, 0 },
  };
  measure_all(q, 3, 1);
  double ts = q[0].med, tt = q[1].med, tft = q[2].med;
  note("  stateio vtab: %" PRIu64 " rows, %.0f MiB of data; table: %" PRIu64 " rows, %.0f MiB\n",
       s.rows, s.bytes / MiB, t.rows, t.bytes / MiB);
  sqlite3_close(db);
  rate_row("5 SQL full scan (MB/s of data)", s.bytes / ts / MB, t.bytes / tt / MB, "MB/s", 1.0);
  rate_row("  vs table, data read (CAST)", s.bytes / ts / MB, tf.bytes / tft / MB, "MB/s", 0);
  rate_row("  SQL scan rows/s", s.rows / ts, t.rows / tt, "rows/s", 0);
}

/* ------------------------------------------------------------ figure 6 */

/*
** Peak RSS of this process in KiB: VmHWM of /proc/self/status, which is
** per address space. (getrusage's ru_maxrss of an exec'd child is not
** usable: Linux carries the pre-exec peak, i.e. the forking parent's RSS,
** over into it.) Falls back to ru_maxrss.
*/
static long self_peak_kib(void){
  long kib = -1;
  char line[256];
  FILE *f = fopen("/proc/self/status", "r");
  if( f ){
    while( fgets(line, sizeof line, f) ){
      if( sscanf(line, "VmHWM: %ld kB", &kib) == 1 ) break;
    }
    fclose(f);
  }
  if( kib < 0 ){
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    kib = ru.ru_maxrss;
  }
  return kib;
}

/* The child: one measurement; prints its peak RSS (KiB) on stdout. */
static int child_main(int argc, char **argv){
  if( argc < 4 ) return 2;
  const char *mode = argv[2], *path = argv[3];
  if( argc >= 5 ) snprintf(ext_path, sizeof ext_path, "%s", argv[4]);
  if( strcmp(mode, "scan-c") == 0 ){
    scan_c(path, 0, NULL);
  }else if( strcmp(mode, "restore-c") == 0 ){
    restore_c(path, 0, NULL);
  }else if( strcmp(mode, "scan-sql") == 0 || strcmp(mode, "restore-sql") == 0 ){
    sqlite3 *db = ext_db();
    create_vtab(db, "statelog", path, NULL);
    int64_t a, b, c;
    if( mode[0] == 's' ) sql_ints(db, "SELECT count(*), sum(length(data)) FROM statelog", &a, &b);
    else restore_sql(db, "statelog", &a, &b, &c);
    sqlite3_close(db);
  }else if( strncmp(mode, "append-sql=", 11) == 0 || strncmp(mode, "append-table=", 13) == 0 ){
    /* Figure 6's writers: one transaction of that many 100-byte rows, as figure 1's. */
    long rows = atol(strchr(mode, '=') + 1);
    rm_file(path);
    sqlite3 *db;
    if( mode[7] == 's' ){
      db = ext_db();
      create_vtab(db, "statelog", path, "off");
      (void)timed_bulk_insert(db, "statelog_updates", rows);
    }else{
      db = peer_db(path, "NORMAL");
      sql_exec(db, "CREATE TABLE t(data BLOB)");
      (void)timed_bulk_insert(db, "t", rows);
    }
    sqlite3_close(db);
    rm_file(path);
  }else{
    return 2;
  }
  printf("%ld\n", self_peak_kib());
  return 0;
}

/* Peak RSS in KiB of a child (fork + exec of this program) running `mode` on path. */
static long child_rss(const char *mode, const char *path){
  int fds[2];
  if( pipe(fds) != 0 ) die("pipe: %s", strerror(errno));
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if( pid < 0 ) die("fork: %s", strerror(errno));
  if( pid == 0 ){
    close(fds[0]);
    if( dup2(fds[1], 1) < 0 ) _exit(127);
    char *args[] = { "bench", "--child", (char*)mode, (char*)path, ext_path, NULL };
    execv("/proc/self/exe", args);
    _exit(127);
  }
  close(fds[1]);
  char buf[64] = {0};
  size_t got = 0;
  ssize_t n;
  while( got < sizeof buf - 1 && (n = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0 ) got += (size_t)n;
  close(fds[0]);
  int status;
  if( waitpid(pid, &status, 0) < 0 ) die("waitpid: %s", strerror(errno));
  if( !WIFEXITED(status) || WEXITSTATUS(status) != 0 ) die("child %s %s failed (status %d)", mode, path, status);
  long kib = atol(buf);
  if( kib <= 0 ) die("child %s %s reported no peak RSS", mode, path);
  return kib;
}

/* Median of reps children (RSS varies a little with the allocator). */
static long child_rss_med(const char *mode, const char *path){
  double v[64];
  int n = opt.reps < 64 ? opt.reps : 64;
  for(int i = 0; i < n; i++) v[i] = (double)child_rss(mode, path);
  return (long)median(v, n);
}

static void mem_row(const char *fig, long kib, long base, double allow_mib){
  row *r = add_row(fig);
  snprintf(r->st, sizeof r->st, "peak %.1f MiB", kib / 1024.0);
  snprintf(r->peer, sizeof r->peer, "empty %.1f MiB", base / 1024.0);
  double d = (kib - base) / 1024.0;
  snprintf(r->ratio, sizeof r->ratio, "%+.2f MiB", d);
  if( allow_mib < 0 ){
    snprintf(r->target, sizeof r->target, "(info)");
    snprintf(r->met, sizeof r->met, "-");
    return;
  }
  snprintf(r->target, sizeof r->target, "<= +%.2f MiB", allow_mib);
  snprintf(r->met, sizeof r->met, "%s", d <= allow_mib ? "yes" : "NO");
}

static void figure6(void){
  build_logs();
  note("figure 6: peak RSS (VmHWM of child processes, median of %d)\n", opt.reps);
  const char *big = path_in("big.log"), *empty = path_in("empty.log");
  double allow_restore = (SNAP_LEN + (1 << 20)) / MiB;
  long base = child_rss_med("scan-c", empty);
  long scan = child_rss_med("scan-c", big);
  long rest = child_rss_med("restore-c", big);
  note("  C: empty scan %ld KiB, scan %ld KiB, restore %ld KiB\n", base, scan, rest);
  mem_row("6 C scan peak RSS", scan, base, 16);
  mem_row("6 C restore peak RSS", rest, base, allow_restore);
  if( !have_ext ){
    na_row("6 SQL scan peak RSS", "<= +16 MiB", "extension not loaded");
    na_row("6 SQL restore peak RSS", "<= +1.06 MiB", "extension not loaded");
    return;
  }
  base = child_rss_med("scan-sql", empty);
  scan = child_rss_med("scan-sql", big);
  rest = child_rss_med("restore-sql", big);
  note("  SQL: empty scan %ld KiB, scan %ld KiB, restore %ld KiB\n", base, scan, rest);
  mem_row("6 SQL scan peak RSS", scan, base, 16);
  mem_row("6 SQL restore peak RSS", rest, base, allow_restore);
  /* Figure 1's transaction (134 MB of entries): a batch spills past 64 MiB; SQLite's table keeps a page cache. */
  char mode[64];
  snprintf(mode, sizeof mode, "append-sql=%ld", opt.rows);
  long app = child_rss_med(mode, path_in("f6.log"));
  snprintf(mode, sizeof mode, "append-table=%ld", opt.rows);
  long tab = child_rss_med(mode, path_in("f6.db"));
  note("  SQL: %ld-row transaction %ld KiB, into a table %ld KiB\n", opt.rows, app, tab);
  mem_row("  SQL 1-transaction bulk append, peak RSS", app, base, -1);
  mem_row("  same, into a WAL table", tab, base, -1);
}

/* ------------------------------------------------------------ figure 8 */

/*
** Compaction of the big log keeping its last 100 epochs, in MB/s of the
** kept bytes (the new file's size), against `cp` of as many bytes: read()
** of the kept range of the log, write() to a new file, fsync. Each run
** compacts a fresh hard link of big.log: compaction never writes to the
** old file (it writes PATH.compact, syncs it and renames it over PATH), so
** a link gives it the log's bytes without copying 1 GiB each run. big.log
** is checked to be untouched after every run.
*/
typedef struct f8_arg {
  const char *path; unsigned keep; stateio_compact_info info;
  uint64_t from, len;         /* the peer's range: the kept bytes */
} f8_arg;

static void big_untouched(const char *what){
  struct stat st;
  if( stat(path_in("big.log"), &st) != 0 ) die("stat big.log: %s", strerror(errno));
  if( st.st_size != big_stat.st_size || st.st_ino != big_stat.st_ino
   || st.st_mtim.tv_sec != big_stat.st_mtim.tv_sec || st.st_mtim.tv_nsec != big_stat.st_mtim.tv_nsec ){
    die("%s changed big.log", what);
  }
}

static double f8_compact(void *a){
  f8_arg *p = a;
  rm_file(p->path);
  if( link(path_in("big.log"), p->path) != 0 ) die("link big.log %s: %s", p->path, strerror(errno));
  double t0 = now();
  int rc = stateio_compact(p->path, p->keep, &p->info);
  double t = now() - t0;
  check(rc, "compact");
  if( !p->info.compacted || p->info.old_size != big_size ) die("compaction did not compact big.log");
  rm_file(p->path);
  big_untouched("compaction");
  p->from = p->info.dropped_bytes;
  p->len = big_size - p->info.dropped_bytes;
  return t;
}

static double f8_peer(void *a){
  f8_arg *p = a;
  double t = copy_file(path_in("big.log"), p->from, p->len, path_in("f8.peer"));
  rm_file(path_in("f8.peer"));
  return t;
}

static void figure8(void){
  build_logs();
  unsigned keep = opt.epochs > 200 ? 100 : (unsigned)(opt.epochs / 2 > 0 ? opt.epochs / 2 : 1);
  note("figure 8: compaction of the %.0f MiB log keeping its last %u epochs\n", big_size / MiB, keep);
  f8_arg a = { path_in("f8.log"), keep, { 0 }, 0, 0 };
  meas m[2] = { { "stateio_compact (keep last epochs)", f8_compact, &a, 0 },
                { "cp of the kept bytes (read+write+fsync)", f8_peer, &a, 0 } };
  measure_all(m, 2, 1);
  note("  kept %.1f MiB of %.1f MiB (new file %.1f MiB)\n", a.len / MiB, big_size / MiB,
       a.info.new_size / MiB);
  char fig[48];
  snprintf(fig, sizeof fig, "8 compact, keep %u epochs (MB/s kept)", keep);
  rate_row(fig, a.info.new_size / m[0].med / MB, a.len / m[1].med / MB, "MB/s", 0.50);
}

/* ------------------------------------------------------------ figure 9 */

/* `stateio check` and `stateio salvage` of the big log against `cat` of it. */
typedef struct f9_arg { const char *out; uint64_t problems; } f9_arg;

static double f9_check(void *a){
  (void)a;
  const char *argv[] = { "stateio", "check", path_in("big.log"), NULL };
  return run_tool(argv, 0);
}

static double f9_salvage(void *a){
  f9_arg *p = a;
  rm_file(p->out);
  const char *argv[] = { "stateio", "salvage", path_in("big.log"), p->out, NULL };
  double t = run_tool(argv, 0);
  if( file_size(p->out) != big_size ) die("salvage wrote %" PRIu64 " bytes of %" PRIu64, file_size(p->out), big_size);
  rm_file(p->out);
  return t;
}

static int f9_problem(void *arg, uint64_t offset, uint64_t length, const char *problem){
  (void)offset; (void)length; (void)problem;
  ((f9_arg*)arg)->problems++;
  return 0;
}

static double f9_libcheck(void *a){
  f9_arg *p = a;
  p->problems = 0;
  double t0 = now();
  stateio_image img;
  image_open(path_in("big.log"), 0, &img);
  check(stateio_check(&img, f9_problem, p), "check");
  image_close(&img, 0);
  double t = now() - t0;
  if( p->problems ) die("stateio_check found %" PRIu64 " problems in big.log", p->problems);
  return t;
}

static double f9_cat(void *a){
  (void)a;
  double t0 = now();
  read_file(path_in("big.log"));
  return now() - t0;
}

static double f9_cp(void *a){
  (void)a;
  double t = copy_file(path_in("big.log"), 0, big_size, path_in("f9.peer"));
  rm_file(path_in("f9.peer"));
  return t;
}

static void figure9(void){
  build_logs();
  note("figure 9: stateio check and salvage of the %.0f MiB log\n", big_size / MiB);
  if( !have_tool ){
    na_row("9 stateio check (MB/s)", ">= 0.40x", "no build/stateio");
    na_row("9 stateio salvage (MB/s)", ">= 0.40x", "no build/stateio");
    return;
  }
  f9_arg a = { path_in("f9.out"), 0 };
  meas m[3] = { { "stateio check (child process)", f9_check, &a, 0 },
                { "cat: read() 1 MiB chunks", f9_cat, &a, 0 },
                { "stateio_check() in this process", f9_libcheck, &a, 0 } };
  measure_all(m, 3, 1);
  meas q[2] = { { "stateio salvage (child process)", f9_salvage, &a, 0 },
                { "cp of the log (read+write+fsync)", f9_cp, &a, 0 } };
  measure_n(q, 2, heavy_reps());
  double c = big_size / m[1].med / MB;
  rate_row("9 stateio check (MB/s)", big_size / m[0].med / MB, c, "MB/s", 0.40);
  rate_row("  stateio_check() (MB/s)", big_size / m[2].med / MB, c, "MB/s", 0);
  rate_row("9 stateio salvage (MB/s)", big_size / q[0].med / MB, c, "MB/s", 0.40);
  rate_row("  salvage vs cp of the log (MB/s)", big_size / q[0].med / MB, big_size / q[1].med / MB, "MB/s", 0);
}

/* ------------------------------------------------------------ figure 10 */

/* `stateio mirror --once SRC DST` catching up the whole big log, against `cp`. */
static double f10_mirror(void *a){
  const char *dst = a;
  rm_file(dst);
  const char *argv[] = { "stateio", "mirror", "--once", path_in("big.log"), dst, NULL };
  double t = run_tool(argv, 0);
  if( file_size(dst) != big_size ) die("mirror copied %" PRIu64 " bytes of %" PRIu64, file_size(dst), big_size);
  rm_file(dst);
  return t;
}

static void figure10(void){
  build_logs();
  note("figure 10: stateio mirror --once of the %.0f MiB log into a new file\n", big_size / MiB);
  if( !have_tool ){
    na_row("10 stateio mirror --once (MB/s)", "(info)", "no build/stateio");
    return;
  }
  meas m[2] = { { "stateio mirror --once (child process)", f10_mirror, path_in("f10.dst"), 0 },
                { "cp of the log (read+write+fsync)", f9_cp, NULL, 0 } };
  measure_n(m, 2, heavy_reps());
  rate_row("10 stateio mirror --once (MB/s)", big_size / m[0].med / MB, big_size / m[1].med / MB, "MB/s", 0);
}

/* ------------------------------------------------------------ figure 11 */

/*
** The epochs table of the big log: without its updates column it needs
** the chain of previous epochs only (O(epochs)); with it, every entry.
** Against a restore through SQL (the snapshot, then every update of the
** current epoch), by the same table-valued functions.
*/
typedef struct f11_arg { sqlite3 *db; const char *const *sql; int nsql; int64_t rows; } f11_arg;

/* Step every row of every statement; p->rows counts the rows of the first. */
static double f11_run(void *a){
  f11_arg *p = a;
  double t0 = now();
  for(int i = 0; i < p->nsql; i++){
    sqlite3_stmt *st;
    if( sqlite3_prepare_v2(p->db, p->sql[i], -1, &st, NULL) != SQLITE_OK ){
      die("SQL error: %s\n  in: %s", sqlite3_errmsg(p->db), p->sql[i]);
    }
    int64_t n = 0;
    int rc;
    while( (rc = sqlite3_step(st)) == SQLITE_ROW ) n++;
    if( rc != SQLITE_DONE ) die("SQL error: %s\n  in: %s", sqlite3_errmsg(p->db), p->sql[i]);
    sqlite3_finalize(st);
    if( i == 0 ) p->rows = n;
  }
  return now() - t0;
}

static void figure11(void){
  build_logs();
  note("figure 11: stateio_epochs of the %ld-epoch log\n", opt.epochs);
  if( !have_ext ){
    na_row("11 SQL epochs, no updates column", "<= 5.00x", "extension not loaded");
    return;
  }
  sqlite3 *db = ext_db();
  char *e1 = sqlite3_mprintf("SELECT epoch, prev_epoch, snapshot_size, bytes FROM stateio_epochs(%Q)",
                             path_in("big.log"));
  char *e2 = sqlite3_mprintf("SELECT epoch, prev_epoch, snapshot_size, updates, bytes FROM stateio_epochs(%Q)",
                             path_in("big.log"));
  char *r1 = sqlite3_mprintf("SELECT length(data) FROM stateio_snapshot(%Q)", path_in("big.log"));
  char *r2 = sqlite3_mprintf("SELECT count(*), sum(length(data)) FROM stateio_updates(%Q)", path_in("big.log"));
  const char *se1[] = { e1 }, *se2[] = { e2 }, *sr[] = { r1, r2 };
  f11_arg a = { db, se1, 1, 0 }, b = { db, se2, 1, 0 }, r = { db, sr, 2, 0 };
  meas m[2] = { { "SQL stateio_epochs, no updates column", f11_run, &a, 0 },
                { "SQL restore (stateio_snapshot + _updates)", f11_run, &r, 0 } };
  measure_all(m, 2, 20);
  meas q[1] = { { "SQL stateio_epochs, with updates column", f11_run, &b, 0 } };
  measure_all(q, 1, 1);
  if( a.rows != opt.epochs || b.rows != opt.epochs ){
    die("stateio_epochs: %lld and %lld rows for %ld epochs", (long long)a.rows, (long long)b.rows, opt.epochs);
  }
  sqlite3_free(e1); sqlite3_free(e2); sqlite3_free(r1); sqlite3_free(r2);
  sqlite3_close(db);
  time_row("11 SQL epochs, no updates col vs restore", m[0].med, m[1].med, 5.0);
  time_row("  same, with the updates column", q[0].med, m[1].med, 0);
}

/* ------------------------------------------------------------ figure 12 */

/*
** Small entries: opt.small updates of 100 B, no STATEIO_SYNC. Appends
** autocommit (each its own commit), with STATEIO_EXCLUSIVE when the
** library has it (the lock kept from the first append to close), and in
** one batch; against write() of each entry's encoded bytes (one system
** call per append, what the Go reference's writer makes). Then the log of
** opt.small updates (one epoch) restored and read, in C and SQL, and
** scanned. The Go reference's own figures are measured by hand (README).
*/
typedef struct f12_arg { const char *path; int flags; int batch; } f12_arg;

static unsigned char small_data[100];

static double f12_write(void *a){
  f12_arg *p = a;
  rm_file(p->path);
  stateio_writer *w;
  double t0 = now();
  check(stateio_writer_open(&w, p->path, STATEIO_CREATE | p->flags), "writer open");
  if( p->batch ) check(stateio_writer_begin(w), "begin");
  for(long i = 0; i < opt.small; i++) check(stateio_update(w, small_data, sizeof small_data), "update");
  if( p->batch ) check(stateio_writer_commit(w), "commit");
  check(stateio_writer_close(w), "writer close");
  double t = now() - t0;
  rm_file(p->path);
  return t;
}

static double f12_peer(void *a){
  f12_arg *p = a;
  static unsigned char buf[2 * LOGIO_BLOCK];
  rm_file(p->path);
  double t0 = now();
  int fd = open(p->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if( fd < 0 ) die("open %s: %s", p->path, strerror(errno));
  uint64_t off = 0;
  for(long i = 0; i < opt.small; i++){
    size_t k = (size_t)logio_encoded_size(off, STATEIO_ENTRY_HEADER + sizeof small_data);
    if( write(fd, buf, k) != (ssize_t)k ) die("write: %s", strerror(errno));
    off += k;
  }
  close(fd);
  double t = now() - t0;
  rm_file(p->path);
  return t;
}

typedef struct f12r_arg { const char *path; sqlite3 *db; const char *sql; int mode; uint64_t n; } f12r_arg;

/* mode 0: C restore + every update; 1: SQL; 2: C stateio_scan; 3: the same, parallel; 4: read(). */
static double f12_read(void *a){
  f12r_arg *p = a;
  double t0 = now();
  int64_t n = 0, sum = 0;
  switch( p->mode ){
    case 0: case 5: restore_c_as(p->path, 0, p->mode == 5, &p->n); break;
    case 1: sql_ints(p->db, p->sql, &n, &sum); p->n = (uint64_t)n; break;
    case 2: case 3: scan_state(p->path, p->mode == 3, &p->n); break;
    default: read_file(p->path); p->n = (uint64_t)opt.small; break;
  }
  double t = now() - t0;
  if( p->n != (uint64_t)opt.small ) die("figure 12: read %" PRIu64 " updates of %ld", p->n, opt.small);
  return t;
}

/* A row with stateio's figure and no peer measured here. */
static void solo_row(const char *fig, const char *value, const char *peer){
  row *r = add_row(fig);
  snprintf(r->st, sizeof r->st, "%s", value);
  snprintf(r->peer, sizeof r->peer, "%s", peer);
  snprintf(r->ratio, sizeof r->ratio, "-");
  snprintf(r->target, sizeof r->target, "(info)");
  snprintf(r->met, sizeof r->met, "-");
}

static void figure12(void){
  note("figure 12: small entries, %ld updates of 100 B, no STATEIO_SYNC\n", opt.small);
  fill_random(small_data, sizeof small_data, 11);
  f12_arg ac = { path_in("f12.log"), 0, 0 }, bt = { path_in("f12.log"), 0, 1 }, pw = { path_in("f12.peer"), 0, 0 };
#ifdef STATEIO_EXCLUSIVE
  f12_arg ex = { path_in("f12.log"), STATEIO_EXCLUSIVE, 0 };
  meas m[4] = { { "C autocommit stateio_update", f12_write, &ac, 0 },
                { "write() of each entry (one call per append)", f12_peer, &pw, 0 },
                { "C one batch (begin .. commit)", f12_write, &bt, 0 },
                { "C autocommit, STATEIO_EXCLUSIVE", f12_write, &ex, 0 } };
  measure_n(m, 4, heavy_reps());
#else
  meas m[3] = { { "C autocommit stateio_update", f12_write, &ac, 0 },
                { "write() of each entry (one call per append)", f12_peer, &pw, 0 },
                { "C one batch (begin .. commit)", f12_write, &bt, 0 } };
  measure_n(m, 3, heavy_reps());
#endif
  double tp = m[1].med;
  rate_row("12 small: autocommit appends (/s)", opt.small / m[0].med, opt.small / tp, "appends/s", 0);
#ifdef STATEIO_EXCLUSIVE
  rate_row("  same, STATEIO_EXCLUSIVE (/s)", opt.small / m[3].med, opt.small / tp, "appends/s", 0);
#else
  na_row("  same, STATEIO_EXCLUSIVE (/s)", "(info)", "no STATEIO_EXCLUSIVE in stateio.h");
#endif
  rate_row("  same, one batch (/s)", opt.small / m[2].med, opt.small / tp, "appends/s", 0);

  /* The log of opt.small updates, for the readers. */
  const char *log = path_in("f12r.log");
  rm_file(log);
  {
    stateio_writer *w;
    check(stateio_writer_open(&w, log, STATEIO_CREATE | STATEIO_SYNC), "writer open");
    check(stateio_writer_begin_bulk(w), "begin bulk");
    for(long i = 0; i < opt.small; i++) check(stateio_update(w, small_data, sizeof small_data), "update");
    check(stateio_writer_commit(w), "commit");
    check(stateio_writer_close(w), "writer close");
  }
  uint64_t size = file_size(log);
  read_file(log);
  sqlite3 *db = have_ext ? ext_db() : NULL;
  char *sql = sqlite3_mprintf("SELECT count(*), sum(length(data)) FROM stateio_updates(%Q)", log);
  f12r_arg rc = { log, db, sql, 0, 0 }, rs = rc, sc = rc, sp = rc, rd = rc, rp = rc;
  rs.mode = 1; sc.mode = 2; sp.mode = 3; rd.mode = 4; rp.mode = 5;
  meas q[6] = { { "C restore + read every update", f12_read, &rc, 0 },
                { "C stateio_scan of the log", f12_read, &sc, 0 },
                { "C stateio_scan, stateio_scan_parallel", f12_read, &sp, 0 },
                { "read() 1 MiB chunks", f12_read, &rd, 0 },
                { "C restore + read, stateio_updates_parallel", f12_read, &rp, 0 },
                { "SQL restore: stateio_updates('FILE')", f12_read, &rs, 0 } };
  measure_all(q, have_ext ? 6 : 5, 1);
  sqlite3_free(sql);
  if( db ) sqlite3_close(db);
  char v[40];
  fmt_time(v, sizeof v, q[0].med);
  solo_row("  small: C restore + read all", v, "Go: see README");
  fmt_time(v, sizeof v, q[4].med);
  solo_row("  same, stateio_updates_parallel", v, "Go: see README");
  if( have_ext ){
    fmt_time(v, sizeof v, q[5].med);
    solo_row("  small: SQL restore + read all", v, "Go: see README");
  }else{
    na_row("  small: SQL restore + read all", "(info)", "extension not loaded");
  }
  rate_row("  small: C full scan (MB/s)", size / q[1].med / MB, size / q[3].med / MB, "MB/s", 0);
  rate_row("  same, stateio_scan_parallel (MB/s)", size / q[2].med / MB, size / q[3].med / MB, "MB/s", 0);
  solo_row("  small: Go reference (same file)", "-", "see README");
}

/* ------------------------------------------------------------ machine */

/* The value of the first "key : value" line of /proc/cpuinfo, or "?". */
static void cpuinfo_value(const char *key, char *out, size_t len){
  char line[512];
  snprintf(out, len, "?");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if( !f ) return;
  size_t k = strlen(key);
  while( fgets(line, sizeof line, f) ){
    if( strncmp(line, key, k) == 0 && (line[k] == ' ' || line[k] == '\t' || line[k] == ':') ){
      char *p = strchr(line, ':');
      if( p ){
        p++;
        while( *p == ' ' || *p == '\t' ) p++;
        p[strcspn(p, "\n")] = 0;
        snprintf(out, len, "%s", p);
      }
      break;
    }
  }
  fclose(f);
}

/* Distinct "physical id" values of /proc/cpuinfo (sockets); 0 when absent. */
static int cpu_sockets(void){
  char line[256];
  int ids[64], n = 0;
  FILE *f = fopen("/proc/cpuinfo", "r");
  if( !f ) return 0;
  while( fgets(line, sizeof line, f) ){
    int id;
    if( sscanf(line, "physical id : %d", &id) == 1 ){
      int seen = 0;
      for(int i = 0; i < n; i++) if( ids[i] == id ) seen = 1;
      if( !seen && n < 64 ) ids[n++] = id;
    }
  }
  fclose(f);
  return n;
}

static const char *fs_type_name(unsigned long t){
  switch( t ){
    case 0xEF53: return "ext2/3/4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x794C7630: return "overlayfs";
    case 0x6969: return "nfs";
    case 0x2FC12FC1: return "zfs";
    case 0xF2F52010: return "f2fs";
    case 0x65735546: return "fuse";
    default: return "?";
  }
}

/*
** The filesystem of the bench directory: its mount (the /proc/mounts entry
** whose mount point is the longest prefix of the directory's real path),
** that is its device, type and options, and statfs's magic number.
*/
static void print_fs(void){
  char line[4096], dev[1024] = "?", type[64] = "?", opts[1024] = "", best[PATH_MAX] = "";
  size_t best_len = 0;
  FILE *f = fopen("/proc/mounts", "r");
  if( f ){
    while( fgets(line, sizeof line, f) ){
      char d[1024], m[PATH_MAX], t[64], o[1024];
      if( sscanf(line, "%1023s %4095s %63s %1023s", d, m, t, o) != 4 ) continue;
      size_t k = strlen(m);
      int prefix = strcmp(m, "/") == 0
                || (strncmp(dir, m, k) == 0 && (dir[k] == '/' || dir[k] == 0));
      if( prefix && (strcmp(m, "/") == 0 ? 1 : k) >= best_len ){
        best_len = strcmp(m, "/") == 0 ? 1 : k;
        snprintf(dev, sizeof dev, "%s", d);
        snprintf(type, sizeof type, "%s", t);
        snprintf(opts, sizeof opts, "%s", o);
        snprintf(best, sizeof best, "%s", m);
      }
    }
    fclose(f);
  }
  struct statfs sf;
  unsigned long magic = 0;
  double size_gib = 0, free_gib = 0;
  if( statfs(dir, &sf) == 0 ){
    magic = (unsigned long)sf.f_type;
    size_gib = (double)sf.f_blocks * sf.f_bsize / (MiB * 1024);
    free_gib = (double)sf.f_bavail * sf.f_bsize / (MiB * 1024);
  }
  printf("filesystem: %s on %s (mounted on %s, %s; statfs type 0x%lx %s), %.0f GiB, %.0f GiB free\n",
         type, dev, best[0] ? best : "?", opts[0] ? opts : "?", magic, fs_type_name(magic),
         size_gib, free_gib);
  /* The block device, when it is one: rotational or not, and its model. */
  const char *base = strrchr(dev, '/');
  if( strncmp(dev, "/dev/", 5) == 0 && base ){
    char p[PATH_MAX], model[256] = "", rot[16] = "";
    snprintf(p, sizeof p, "/sys/class/block/%s/queue/rotational", base + 1);
    FILE *g = fopen(p, "r");
    if( g ){ if( !fgets(rot, sizeof rot, g) ) rot[0] = 0; fclose(g); }
    snprintf(p, sizeof p, "/sys/class/block/%s/device/model", base + 1);
    g = fopen(p, "r");
    if( g ){ if( !fgets(model, sizeof model, g) ) model[0] = 0; fclose(g); }
    model[strcspn(model, "\n")] = 0;
    rot[strcspn(rot, "\n")] = 0;
    if( rot[0] || model[0] ){
      printf("device: %s%s%s%s\n", base + 1, rot[0] ? (rot[0] == '0' ? ", queue/rotational 0" : ", queue/rotational 1") : "",
             model[0] ? ", model " : "", model);
    }
  }
}

#ifdef __clang__
# define BENCH_CC "clang " __clang_version__
#elif defined(__GNUC__)
# define BENCH_CC "gcc " __VERSION__
#else
# define BENCH_CC "unknown compiler"
#endif
#ifndef BENCH_CFLAGS
# define BENCH_CFLAGS "?"
#endif

static void load_avg(char *out, size_t len){
  snprintf(out, len, "?");
  FILE *f = fopen("/proc/loadavg", "r");
  if( !f ) return;
  double a, b, c;
  if( fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3 ) snprintf(out, len, "%.2f %.2f %.2f", a, b, c);
  fclose(f);
}

static void print_machine(void){
  char model[256], cores[32], siblings[32], mhz[32], line[256];
  cpuinfo_value("model name", model, sizeof model);
  cpuinfo_value("cpu cores", cores, sizeof cores);
  cpuinfo_value("siblings", siblings, sizeof siblings);
  cpuinfo_value("cpu MHz", mhz, sizeof mhz);
  long mem_kib = 0;
  FILE *f = fopen("/proc/meminfo", "r");
  if( f ){
    while( fgets(line, sizeof line, f) ){
      if( sscanf(line, "MemTotal: %ld kB", &mem_kib) == 1 ) break;
    }
    fclose(f);
  }
  time_t t = time(NULL);
  char date[64], load[64];
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", localtime(&t));
  load_avg(load, sizeof load);
  struct utsname u;
  if( uname(&u) != 0 ) memset(&u, 0, sizeof u);
  int sockets = cpu_sockets();
  printf("date: %s; load average %s\n", date, load);
  printf("cpu: %s, %ld online cpus (%d socket%s, %s cores and %s threads per socket), %s MHz\n",
         model, sysconf(_SC_NPROCESSORS_ONLN), sockets, sockets == 1 ? "" : "s",
         cores, siblings, mhz);
  printf("memory: %.1f GiB\n", mem_kib / MiB);
  printf("kernel: %s %s %s\n", u.sysname, u.release, u.machine);
  printf("bench dir: %s\n", dir);
  print_fs();
  printf("sqlite: %s (compiled against %s); stateio %s; compiler: %s, %s\n",
         sqlite3_libversion(), SQLITE_VERSION, stateio_version(), BENCH_CC, BENCH_CFLAGS);
  printf("reps %d (median; %d for figures 9, 10 and 12's writes), rows %ld x 100 B, "
         "%ld x 10 KiB, %ld durable appends, %ld durable txns, %ld epochs of ~1 MiB, "
         "table %ld MiB, %ld small entries%s\n",
         opt.reps, heavy_reps(), opt.rows, opt.big_rows, opt.durable, opt.txns, opt.epochs,
         opt.table_mib, opt.small, opt.quick ? " (--quick)" : "");
  printf("extension: %s\n", have_ext ? ext_path : ext_error);
  printf("tool: %s%s\n", tool_path, have_tool ? "" : " (not found: figures 9 and 10 are n/a)");
  fflush(stdout);
}

/* ------------------------------------------------------------ main */

static void usage(void){
  printf(
    "usage: bench [flags]\n"
    "  --quick          a short smoke run (~20 s: smaller sizes, 3 reps)\n"
    "  --reps N         repetitions after the warm-up; the median is reported (5;\n"
    "                   figures 9, 10, 12's writes: 3 unless --reps is given)\n"
    "  --rows N         figures 1, 2a: 100-byte updates (1000000)\n"
    "  --big-rows N     figure 2b: 10 KiB updates (100000)\n"
    "  --durable N      figure 3: autocommit durable appends (2000)\n"
    "  --txns N         figure 7: durable transactions of 8 entries (1000)\n"
    "  --epochs N       figures 4-6, 8-11: epochs of ~1 MiB in the big log (1000)\n"
    "  --table-mib N    figure 5: ordinary SQLite table size (256)\n"
    "  --small N        figure 12: small entries, 100-byte updates (1000000)\n"
    "  --only LIST      only these figures, e.g. --only 2,5\n"
    "  --dir DIR        work here (default: a new directory under /tmp, removed after)\n"
    "  --keep           keep the work directory\n"
    "  --ext PATH       the SQLite extension (./stateio.so)\n"
    "  --tool PATH      the command-line tool (./build/stateio), for figures 9, 10\n"
    "figures: 1 SQL bulk append, 2 C bulk append, 3 durable appends, 4 restore,\n"
    "  5 full scan, 6 peak RSS, 7 durable transactions, 8 compaction,\n"
    "  9 check and salvage, 10 mirror, 11 the epochs table, 12 small entries\n");
}

static void cleanup(void){
  if( !dir[0] || opt.keep ) return;
  static const char *const names[] = {
    "big.log", "small.log", "empty.log", "table.db", "f1.log", "f1.db", "f1full.log",
    "f2.log", "f2.peer", "f3.log", "f3.peer", "f3.db", "f3.sql.log",
    "f7.log", "f7.peer", "f7.db", "f7.sql.log", "f8.log", "f8.peer", "f9.out", "f9.peer",
    "f10.dst", "f12.log", "f12.peer", "f12r.log", "tool.err" };
  for(size_t i = 0; i < sizeof names / sizeof names[0]; i++) rm_file(path_in(names[i]));
  if( made_dir ) rmdir(dir);
}

int main(int argc, char **argv){
  if( argc >= 2 && strcmp(argv[1], "--child") == 0 ) return child_main(argc, argv);
  int explicit[10] = {0};
  for(int i = 1; i < argc; i++){
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NUM(flag, var, k) else if( strcmp(a, flag) == 0 && v ){ var = atol(v); i++; explicit[k] = 1; }
    if( strcmp(a, "--quick") == 0 ) opt.quick = 1;
    else if( strcmp(a, "--keep") == 0 ) opt.keep = 1;
    else if( strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 ){ usage(); return 0; }
    else if( strcmp(a, "--reps") == 0 && v ){ opt.reps = atoi(v); i++; explicit[0] = 1; opt.reps_given = 1; }
    NUM("--rows", opt.rows, 1)
    NUM("--big-rows", opt.big_rows, 2)
    NUM("--durable", opt.durable, 3)
    NUM("--epochs", opt.epochs, 4)
    NUM("--table-mib", opt.table_mib, 5)
    NUM("--txns", opt.txns, 6)
    NUM("--small", opt.small, 7)
    else if( strcmp(a, "--dir") == 0 && v ){ opt.dir = v; i++; }
    else if( strcmp(a, "--ext") == 0 && v ){ opt.ext = v; i++; }
    else if( strcmp(a, "--tool") == 0 && v ){ opt.tool = v; i++; }
    else if( strcmp(a, "--only") == 0 && v ){ opt.only = v; i++; }
    else{ usage(); die("unknown or incomplete flag: %s", a); }
#undef NUM
  }
  if( opt.quick ){
    if( !explicit[0] ) opt.reps = 3;
    if( !explicit[1] ) opt.rows = 300000;
    if( !explicit[2] ) opt.big_rows = 30000;
    if( !explicit[3] ) opt.durable = 500;
    if( !explicit[4] ) opt.epochs = 256;
    if( !explicit[5] ) opt.table_mib = 64;
    if( !explicit[6] ) opt.txns = 250;
    if( !explicit[7] ) opt.small = 200000;
  }
  if( opt.reps < 1 || opt.rows < 1 || opt.big_rows < 1 || opt.durable < 1 || opt.epochs < 1
   || opt.table_mib < 1 || opt.txns < 1 || opt.small < 1 ){
    die("sizes and --reps must be >= 1");
  }

  /* The work directory, and enough free space in it. */
  if( opt.dir ){
    if( mkdir(opt.dir, 0755) != 0 && errno != EEXIST ) die("mkdir %s: %s", opt.dir, strerror(errno));
    if( !realpath(opt.dir, dir) ) die("%s: %s", opt.dir, strerror(errno));
  }else{
    snprintf(dir, sizeof dir, "/tmp/stateio-bench.XXXXXX");
    if( !mkdtemp(dir) ) die("mkdtemp: %s", strerror(errno));
    made_dir = 1;
  }
  atexit(cleanup);
  struct statvfs vfs;
  if( statvfs(dir, &vfs) != 0 ) die("statvfs %s: %s", dir, strerror(errno));
  double free_mib = (double)vfs.f_bavail * vfs.f_frsize / MiB;
  /* The big log, its salvage or mirror copy and the cp peer's, the table, figure 2's logs. */
  double need_mib = opt.epochs * 1.01 * 3 + 1.1 + opt.table_mib * 1.1
                  + opt.big_rows * 10.3 / 1024 + opt.rows * 0.3 / 1024 + opt.small * 0.25 / 1024 + 256;
  if( free_mib < need_mib ) die("%s has %.0f MiB free; this run needs about %.0f MiB", dir, free_mib, need_mib);

  /* The extension. */
  if( !realpath(opt.ext, ext_path) ) snprintf(ext_path, sizeof ext_path, "%s", opt.ext);
  sqlite3 *probe = ext_db_try(":memory:", ext_error, sizeof ext_error);
  if( probe ){
    have_ext = 1;
    sqlite3_close(probe);
  }else{
    char tmp[sizeof ext_error];
    snprintf(tmp, sizeof tmp, "%s", ext_error);
    snprintf(ext_error, sizeof ext_error, "not loaded (%.400s): SQL figures are n/a", tmp);
  }

  /* The tool. */
  if( !realpath(opt.tool, tool_path) ) snprintf(tool_path, sizeof tool_path, "%s", opt.tool);
  have_tool = access(tool_path, X_OK) == 0;

  print_machine();
  double t0 = now();
  if( want(1) ) figure1();
  if( want(2) ) figure2();
  if( want(3) ) figure3();
  if( want(4) ) figure4();
  if( want(5) ) figure5();
  if( want(6) ) figure6();
  if( want(7) ) figure7();
  if( want(8) ) figure8();
  if( want(9) ) figure9();
  if( want(10) ) figure10();
  if( want(11) ) figure11();
  if( want(12) ) figure12();
  print_table();
  char load[64];
  load_avg(load, sizeof load);
  printf("\nrates are medians of %d runs after a warm-up (%d for figures 9, 10 and 12's "
         "writes); ratio = stateio / peer (rates), stateio's time / the peer's (times: "
         "lower is better; figure 4: big / small; figure 6: stateio - empty). "
         "total %.0f s; load average at the end %s\n",
         opt.reps, heavy_reps(), now() - t0, load);
  return 0;
}
