/* SPDX-License-Identifier: MIT */
/*
** powerloss_test.c - a crash simulator (after ALICE, Pillai et al. 2014):
** what a power loss may leave of a workload, and whether recovery always
** finds exactly the acknowledged commits.
**
** 1. A workload runs with STATEIO_SYNC through the os hook
**    (stateio_set_os_hook), which records every operation that changes a
**    file: writes (file, offset, bytes), truncations, syncs, creations,
**    renames, unlinks, directory syncs. The workload: single-entry
**    commits, transactions of 2..12 entries, a bulk batch written in
**    chunks, batches that spill (one prepared and rolled back), commits
**    whose fdatasync fails (and one whose cut fails too: a
**    double fault), a rolled-back prepare, and compactions.
** 2. The operations are replayed into a model of the file system: per
**    file, what its last sync made durable and the operations since; per
**    directory, the names its last sync made durable and the renames,
**    creations and unlinks since. Before each sync, crash states are made:
**    the durable content plus a random subset of the later writes, cut in
**    4 KiB pieces (aligned to the file), applied in order (a later write
**    to a piece replaces an earlier one only if it persisted), each later
**    truncation kept or lost, and a prefix of the later directory
**    operations. The commit file's writes are crashed like the log's.
** 3. Each state is written to a fresh directory and recovered the way a
**    reader does (stateio_open_image, then restore and a scan of every
**    entry). It must hold exactly the acknowledged commits (a suffix of
**    them after a compaction dropped old epochs), whole, plus possibly the
**    one commit in flight, whole; never an error; and a writer must then
**    be able to append.
**
** Environment: STATEIO_POWERLOSS_STATES=N crash states per sync point
** (default 200), STATEIO_POWERLOSS_SEED, STATEIO_POWERLOSS_DIR (where
** the crash states are written; default /dev/shm when it exists),
** STATEIO_POWERLOSS_KEEP (copy the first failing state to /tmp/plkeep and stop).
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "stateio.h"
#include "logio.h"
#include "testhelp.h"

#define PIECE 4096

static char wdir[256], cdir[256];
static char logpath[320];

/* ------------------------------------------------------------ entries */

static uint64_t mix(uint64_t x){
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Entry k of n of transaction t: 16 bytes (t, k, n), then len-16 bytes that depend on them. */
static void fill(unsigned char *p, size_t len, uint64_t t, uint32_t k, uint32_t n){
  memcpy(p, &t, 8);
  memcpy(p + 8, &k, 4);
  memcpy(p + 12, &n, 4);
  for(size_t j = 16; j < len; j++) p[j] = (unsigned char)(t * 131 + k * 17 + j);
}

static int is_fill(const unsigned char *p, size_t len, uint64_t *t, uint32_t *k, uint32_t *n){
  if( len < 16 ) return 0;
  memcpy(t, p, 8);
  memcpy(k, p + 8, 4);
  memcpy(n, p + 12, 4);
  for(size_t j = 16; j < len; j++) if( p[j] != (unsigned char)(*t * 131 + *k * 17 + j) ) return 0;
  return *k < *n;
}

/* ------------------------------------------------------------ recording */

typedef struct rop {
  char op[24];
  char path[320], path2[320];
  uint64_t offset;
  unsigned char *data;
  size_t len;
  int nacked;              /* acknowledged commits when the op ran */
  int64_t id;              /* create: the identity (stateio_log_id) of the file made */
  uint64_t inflight;       /* the transaction being committed then, or 0 */
} rop;

static rop *ops;
static int nops, capops;
static int recording;

static uint64_t acked[4096];      /* acknowledged transactions, in order */
static int nacked;
static uint64_t inflight;
static int starts[64];            /* where in acked a log may begin (compactions) */
static int nstarts;

static int record_hook(void *arg, stateio_os_op *o){
  (void)arg;
  if( !recording || !o->after ) return 0;
  if( strcmp(o->op, "flock") == 0 || strcmp(o->op, "unlock") == 0 || strcmp(o->op, "open") == 0 ) return 0;
  if( strncmp(o->op, "compact:", 8) == 0 ) return 0;
  if( nops == capops ){
    capops = capops ? capops * 2 : 1024;
    ops = realloc(ops, (size_t)capops * sizeof(*ops));
  }
  rop *r = &ops[nops++];
  memset(r, 0, sizeof(*r));
  snprintf(r->op, sizeof(r->op), "%s", o->op);
  if( o->path ) snprintf(r->path, sizeof(r->path), "%s", o->path);
  if( o->path2 ) snprintf(r->path2, sizeof(r->path2), "%s", o->path2);
  r->offset = o->offset;
  r->len = o->len;
  if( strcmp(o->op, "write") == 0 ){
    r->data = malloc(o->len ? o->len : 1);
    memcpy(r->data, o->data, o->len);
  }
  r->nacked = nacked;
  r->inflight = inflight;
  if( strcmp(o->op, "create") == 0 ){
    int fd = open(o->path, O_RDONLY);
    if( fd >= 0 ){
      if( stateio_log_id(fd, &r->id) != STATEIO_OK ) r->id = -1;
      close(fd);
    }
  }
  return 0;
}

/* A hook that fails the nth fdatasync of the log (and, with cut_fails, the ftruncate after it). */
static struct { int fail_sync, cut_fails, seen; } inject;
static int fail_hook(void *arg, stateio_os_op *o){
  if( !o->after && inject.fail_sync && o->file == STATEIO_FILE_LOG ){
    if( strcmp(o->op, "fdatasync") == 0 && inject.seen == 0 ){
      inject.seen = 1;
      return EIO;
    }
    if( strcmp(o->op, "ftruncate") == 0 && inject.seen == 1 && inject.cut_fails ){
      inject.seen = 2;
      return EIO;
    }
  }
  return record_hook(arg, o);
}

/* ------------------------------------------------------------ the workload */

static uint64_t next_txn = 1;
static int f_workload;

/* One transaction of n entries (sizes from the seed), committed; the first may be a snapshot. */
static int txn(stateio_writer *w, int n, size_t maxlen, int bulk, int snapshot, int prepare_rollback){
  uint64_t t = next_txn++;
  unsigned char *buf = malloc(maxlen + 16);
  int rc = n > 1 || bulk ? (bulk ? stateio_writer_begin_bulk(w) : stateio_writer_begin(w)) : STATEIO_OK;
  inflight = t;
  for(int k = 0; rc == STATEIO_OK && k < n; k++){
    size_t len = bulk ? maxlen : 16 + (size_t)(mix(t * 64 + (uint64_t)k) % (maxlen - 16 + 1));
    fill(buf, len, t, (uint32_t)k, (uint32_t)n);
    rc = (snapshot && k == 0) ? stateio_snapshot(w, buf, len) : stateio_update(w, buf, len);
  }
  if( rc == STATEIO_OK && (n > 1 || bulk) ){
    if( prepare_rollback ){
      rc = stateio_writer_prepare(w);
      stateio_writer_rollback(w);
      if( rc == STATEIO_OK ) rc = -1;
    }else{
      rc = stateio_writer_commit(w);
    }
  }
  if( rc == STATEIO_OK ) acked[nacked++] = t;
  inflight = 0;
  free(buf);
  return rc;
}

static void workload(void){
  stateio_writer *w;
  recording = 1;
  stateio_set_os_hook(record_hook, NULL);
  int rc = stateio_writer_open(&w, logpath, STATEIO_CREATE | STATEIO_SYNC);
  if( !CHECK_MSG(rc == STATEIO_OK, "workload: open %s", stateio_errstr(rc)) ) return;
  starts[nstarts++] = 0;
#define EXPECT(x) do{ if( (x) != STATEIO_OK ){ f_workload++; printf("workload: %s failed at line %d\n", #x, __LINE__); } }while(0)
  EXPECT(txn(w, 1, 200, 0, 1, 0));                 /* a snapshot alone */
  for(int i = 0; i < 6; i++) EXPECT(txn(w, 1, 3000, 0, 0, 0));
  for(int i = 0; i < 6; i++) EXPECT(txn(w, 2 + i * 2, 9000, 0, i == 3, 0));
  EXPECT(txn(w, 3, 40000, 0, 0, 0));               /* entries over several blocks */
  /* A failed commit: its fdatasync fails; then one whose cut fails too (double fault). */
  stateio_set_os_hook(fail_hook, NULL);
  inject.fail_sync = 1; inject.cut_fails = 0; inject.seen = 0;
  if( txn(w, 4, 5000, 0, 0, 0) == STATEIO_OK ) f_workload++;
  /* Single-entry commits right after it: their records are not synced, its cut record must be. */
  inject.fail_sync = 0;
  EXPECT(txn(w, 1, 900, 0, 0, 0));
  EXPECT(txn(w, 1, 900, 0, 0, 0));
  inject.fail_sync = 1;
  inject.seen = 0;
  if( txn(w, 1, 5000, 0, 0, 0) == STATEIO_OK ) f_workload++;
  inject.cut_fails = 1; inject.seen = 0;
  if( txn(w, 5, 5000, 0, 0, 0) == STATEIO_OK ) f_workload++;
  inject.fail_sync = 0;
  stateio_set_os_hook(record_hook, NULL);
  EXPECT(txn(w, 1, 700, 0, 0, 0));                 /* the next append finishes the cut */
  EXPECT(txn(w, 3, 700, 0, 0, 0));
  /* Two-phase: prepared, then rolled back. */
  if( txn(w, 3, 2000, 0, 0, 1) == STATEIO_OK ) f_workload++;
  EXPECT(txn(w, 2, 2000, 0, 0, 0));
  /* Compaction (keep the current epoch): the log is replaced. */
  EXPECT(txn(w, 2, 3000, 0, 1, 0));
  starts[nstarts++] = nacked - 1;
  EXPECT(txn(w, 1, 300, 0, 0, 0));
  stateio_compact_info info;
  EXPECT(stateio_compact(logpath, 1, &info));
  CHECK_MSG(info.compacted, "workload: the log was compacted");
  for(int i = 0; i < 4; i++) EXPECT(txn(w, 1 + i, 6000, 0, 0, 0));
  /* A bulk batch over 4 MiB: written in chunks, committed with two syncs. */
  EXPECT(txn(w, 3, (size_t)2 << 20, 1, 0, 0));
  for(int i = 0; i < 3; i++) EXPECT(txn(w, 1 + i, 4000, 0, 0, 0));
  /* Batches that spill past 64 KiB: out in chunks before the commit; one prepared, then rolled back. */
  stateio_writer_set_spill(w, 64 << 10);
  EXPECT(txn(w, 16, 20000, 0, 0, 0));
  if( txn(w, 16, 20000, 0, 0, 1) == STATEIO_OK ) f_workload++;
  EXPECT(txn(w, 1, 500, 0, 0, 0));
  stateio_writer_set_spill(w, (size_t)64 << 20);
  EXPECT(txn(w, 2, 3000, 0, 1, 0));
  starts[nstarts++] = nacked - 1;
  EXPECT(stateio_compact(logpath, 1, &info));
  EXPECT(txn(w, 6, 3000, 0, 0, 0));
  EXPECT(txn(w, 1, 100, 0, 0, 0));
#undef EXPECT
  stateio_writer_close(w);
  stateio_set_os_hook(NULL, NULL);
  recording = 0;
}

/* ------------------------------------------------------------ the file system model */

/* A file: its durable bytes and its bytes now, and the ops since its last sync. */
typedef struct mfile {
  int64_t id;                         /* the identity of the workload's file */
  unsigned char *dur; size_t dur_len;
  unsigned char *cur; size_t cur_len;
  int *pend; int npend, cappend;      /* indexes into ops[] (writes, truncations) */
} mfile;

static mfile files[64];
static int nfiles;

/* A directory: names to files, durable and now, and the name ops since its sync. */
typedef struct dentry { char name[320]; int file; } dentry;
static dentry dur_dir[32], cur_dir[32];
static int ndur, ncur;
static int dpend[4096];
static int ndpend;

static int dir_find(dentry *d, int n, const char *name){
  for(int i = 0; i < n; i++) if( strcmp(d[i].name, name) == 0 ) return i;
  return -1;
}

static void dir_apply(dentry *d, int *n, const rop *o, int *newfile){
  if( strcmp(o->op, "create") == 0 ){
    int i = dir_find(d, *n, o->path);
    int f = newfile ? *newfile : -1;
    if( i >= 0 ){ if( f >= 0 ) d[i].file = f; return; }
    snprintf(d[*n].name, sizeof(d[*n].name), "%s", o->path);
    d[*n].file = f;
    (*n)++;
  }else if( strcmp(o->op, "rename") == 0 ){
    int i = dir_find(d, *n, o->path);
    if( i < 0 ) return;
    int f = d[i].file;
    d[i] = d[--(*n)];
    int j = dir_find(d, *n, o->path2);
    if( j >= 0 ) d[j].file = f;
    else{ snprintf(d[*n].name, sizeof(d[*n].name), "%s", o->path2); d[*n].file = f; (*n)++; }
  }else if( strcmp(o->op, "unlink") == 0 ){
    int i = dir_find(d, *n, o->path);
    if( i >= 0 ) d[i] = d[--(*n)];
  }
}

static void grow(unsigned char **p, size_t *len, size_t want){
  if( want > *len ){
    *p = realloc(*p, want);
    memset(*p + *len, 0, want - *len);
  }
  *len = want;
}

static void apply_write(unsigned char **p, size_t *len, uint64_t off, const unsigned char *d, size_t n){
  if( off + n > *len ) grow(p, len, (size_t)(off + n));
  memcpy(*p + off, d, n);
}

static void apply_trunc(unsigned char **p, size_t *len, uint64_t to){
  if( to > *len ) grow(p, len, (size_t)to);
  else *len = (size_t)to;
}

static int file_of(const char *path){
  int i = dir_find(cur_dir, ncur, path);
  return i >= 0 ? cur_dir[i].file : -1;
}

/* ------------------------------------------------------------ crash states */

static uint64_t rng;
static long states, partial_seen, inflight_kept;
static int f_state, f_error, f_append;

static int write_file(const char *path, const unsigned char *p, size_t n){
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if( fd < 0 ) return -1;
  int ok = n == 0 || write(fd, p, n) == (ssize_t)n;
  close(fd);
  return ok ? 0 : -1;
}

static void clear_dir(const char *dir){
  DIR *d = opendir(dir);
  if( !d ) return;
  struct dirent *de;
  while( (de = readdir(d)) != NULL ){
    if( de->d_name[0] == '.' ) continue;
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
    unlink(p);
  }
  closedir(d);
}

/* The content file f may have after a crash: durable + a subset of its later pieces. */
static void crash_file(int f, int mode, unsigned char **out, size_t *out_len){
  mfile *m = &files[f];
  *out = malloc(m->dur_len + 1);
  if( m->dur_len ) memcpy(*out, m->dur, m->dur_len);
  *out_len = m->dur_len;
  for(int i = 0; i < m->npend; i++){
    rop *o = &ops[m->pend[i]];
    if( strcmp(o->op, "ftruncate") == 0 ){
      int keep = mode == 1 ? 1 : mode == 0 ? 0 : (int)(mix(rng++) & 1);
      if( keep ) apply_trunc(out, out_len, o->offset);
      continue;
    }
    for(uint64_t p = o->offset; p < o->offset + o->len; ){
      uint64_t end = (p / PIECE + 1) * PIECE;
      if( end > o->offset + o->len ) end = o->offset + o->len;
      int keep = mode == 1 ? 1 : mode == 0 ? 0 : (int)(mix(rng++) % 3 != 0);
      if( keep ) apply_write(out, out_len, p, o->data + (p - o->offset), (size_t)(end - p));
      p = end;
    }
  }
}

/* Read the recovered log: the transactions it holds, in order. -1: an error (counted). */
static int recover_and_read(const char *path, uint64_t *txns, int *ntxn, int *partial, char *why, size_t whyn){
  *ntxn = 0;
  *partial = 0;
  stateio_image img;
  int rc = stateio_open_image(path, &img);
  if( rc == STATEIO_IOERR && errno == ENOENT ) return 0;   /* the log's name did not survive: nothing */
  if( rc ){ snprintf(why, whyn, "open image: %s", stateio_errstr(rc)); return -1; }
  stateio_state st;
  rc = stateio_restore(&img, &st);
  if( rc ){
    snprintf(why, whyn, "restore: %s at %llu", stateio_errstr(rc), (unsigned long long)st.bad_offset);
    stateio_close_image(&img);
    return -1;
  }
  stateio_state_clear(&st);
  stateio_scan *s;
  rc = stateio_scan_open(&s, &img, 0, 0);
  uint64_t cur = 0;
  uint32_t want_k = 0, want_n = 0;
  while( rc == STATEIO_OK ){
    stateio_entry e;
    rc = stateio_scan_next(s, &e);
    if( rc == STATEIO_DONE ){ rc = STATEIO_OK; break; }
    if( rc ){ snprintf(why, whyn, "scan: %s at %llu (%s)", stateio_errstr(rc), (unsigned long long)e.offset, e.problem ? e.problem : ""); break; }
    uint64_t t; uint32_t k, n;
    if( !is_fill(e.data, e.len, &t, &k, &n) ){ snprintf(why, whyn, "entry at %llu is not ours", (unsigned long long)e.offset); rc = -1; break; }
    if( k == 0 ){
      if( want_k != want_n ){ *partial = 1; snprintf(why, whyn, "transaction %llu has %u of %u entries", (unsigned long long)cur, want_k, want_n); rc = -1; break; }
      cur = t; want_k = 1; want_n = n;
      txns[(*ntxn)++] = t;
    }else if( t != cur || k != want_k ){
      snprintf(why, whyn, "entry %u of transaction %llu out of place", k, (unsigned long long)t);
      rc = -1;
      break;
    }else{
      want_k++;
    }
  }
  stateio_scan_close(s);
  stateio_close_image(&img);
  if( rc == STATEIO_OK && want_k != want_n ){
    *partial = 1;
    snprintf(why, whyn, "the last transaction %llu has %u of %u entries", (unsigned long long)cur, want_k, want_n);
    rc = -1;
  }
  return rc == STATEIO_OK ? 0 : -1;
}

/* One crash state: the dir after a prefix of its pending ops, each file crashed. */
static void check_state(int opi, int mode){
  /* Directory: durable names + a prefix of the pending name operations. */
  dentry d[32];
  int nd = ndur;
  memcpy(d, dur_dir, sizeof(d));
  int prefix = mode == 1 ? ndpend : mode == 0 ? 0 : (int)(mix(rng++) % (uint64_t)(ndpend + 1));
  for(int i = 0; i < prefix; i++){
    const rop *o = &ops[dpend[i]];
    int f = (int)o->offset;         /* create: the file it made (see replay) */
    dir_apply(d, &nd, o, strcmp(o->op, "create") == 0 ? &f : NULL);
  }
  /* Write the files that have a name into cdir, under their base names. */
  clear_dir(cdir);
  for(int i = 0; i < nd; i++){
    if( d[i].file < 0 ) continue;
    const char *base = strrchr(d[i].name, '/');
    base = base ? base + 1 : d[i].name;
    char p[1200];
    snprintf(p, sizeof(p), "%.256s/%.600s", cdir, base);
    unsigned char *c;
    size_t n;
    crash_file(d[i].file, mode, &c, &n);
    if( write_file(p, c, n) != 0 ) f_state++;
    free(c);
  }
  states++;
  /*
  ** A copy has another identity than the file it copies, where a real
  ** crash keeps the inode: a record that names the crashed log's file is
  ** given the copy's identity (and its checksum fixed).
  */
  {
    int li = dir_find(d, nd, logpath);
    char lp2[600], cp2[620];
    snprintf(lp2, sizeof(lp2), "%s/%s", cdir, strrchr(logpath, '/') + 1);
    snprintf(cp2, sizeof(cp2), "%s-commit", lp2);
    int cfd = open(cp2, O_RDWR), lfd = open(lp2, O_RDONLY);
    /* The record (doc/COMMIT.md): 72 bytes, the log's identity at 24, its checksum at 64. */
    unsigned char rec[72];
    if( li >= 0 && d[li].file >= 0 && cfd >= 0 && lfd >= 0 && pread(cfd, rec, 72, 0) == 72 ){
      int64_t was, now;
      memcpy(&was, rec + 24, 8);
      if( was == files[d[li].file].id && stateio_log_id(lfd, &now) == STATEIO_OK ){
        memcpy(rec + 24, &now, 8);
        uint64_t ck = XXH64(rec, 64, 0);
        memcpy(rec + 64, &ck, 8);
        if( pwrite(cfd, rec, 72, 0) != 72 ) f_state++;
      }
    }
    if( cfd >= 0 ) close(cfd);
    if( lfd >= 0 ) close(lfd);
  }
  /* Recover and read. */
  char lp[600], why[300] = "";
  snprintf(lp, sizeof(lp), "%s/%s", cdir, strrchr(logpath, '/') + 1);
  uint64_t txns[4096];
  int ntxn, partial;
  if( getenv("STATEIO_POWERLOSS_KEEP") ){
    char cmd[900];
    snprintf(cmd, sizeof(cmd), "rm -rf /tmp/plkeep; cp -r %s /tmp/plkeep", cdir);
    if( system(cmd) != 0 ){}
  }
  if( recover_and_read(lp, txns, &ntxn, &partial, why, sizeof(why)) != 0 ){
    if( getenv("STATEIO_POWERLOSS_KEEP") ){ printf("kept: %s\n", why); exit(3); }
    if( partial ) partial_seen++;
    test_detail(&f_error, "op %d (%s %s), state %ld: %s", opi, ops[opi].op, ops[opi].path, states, why);
    return;
  }
  /* Exactly the acknowledged commits (from a start), whole, plus possibly the one in flight. */
  int na = ops[opi].nacked;
  uint64_t fl = ops[opi].inflight;
  int n = ntxn;
  if( n > 0 && fl && txns[n - 1] == fl ){ n--; inflight_kept++; }
  int ok = 0;
  for(int si = 0; si < nstarts && !ok; si++){
    int s0 = starts[si];
    if( s0 > na ) continue;
    if( n == na - s0 && (n == 0 || memcmp(txns, acked + s0, (size_t)n * sizeof(uint64_t)) == 0) ) ok = 1;
  }
  if( na == 0 && n == 0 ) ok = 1;
  if( !ok ){
    char got[200] = "", want[200] = "";
    for(int i = 0, k = 0; i < ntxn && k < 180; i++) k += snprintf(got + k, sizeof(got) - (size_t)k, "%llu ", (unsigned long long)txns[i]);
    for(int i = 0, k = 0; i < na && k < 180; i++) k += snprintf(want + k, sizeof(want) - (size_t)k, "%llu ", (unsigned long long)acked[i]);
    test_detail(&f_state, "op %d (%s %s), state %ld: recovered [%s] but acknowledged [%s] (in flight %llu)",
                opi, ops[opi].op, ops[opi].path, states, got, want, (unsigned long long)fl);
    return;
  }
  /* The log takes the next commit. */
  if( states % 7 == 0 ){
    stateio_writer *w;
    int rc = stateio_writer_open(&w, lp, STATEIO_CREATE | STATEIO_SYNC);
    if( rc == STATEIO_OK ){
      rc = stateio_writer_begin(w);
      unsigned char b[40];
      fill(b, sizeof(b), 999999, 0, 2);
      if( rc == STATEIO_OK ) rc = stateio_update(w, b, sizeof(b));
      fill(b, sizeof(b), 999999, 1, 2);
      if( rc == STATEIO_OK ) rc = stateio_update(w, b, sizeof(b));
      if( rc == STATEIO_OK ) rc = stateio_writer_commit(w);
      stateio_writer_close(w);
    }
    if( rc != STATEIO_OK ) test_detail(&f_append, "op %d, state %ld: append after recovery: %s", opi, states, stateio_errstr(rc));
    else if( recover_and_read(lp, txns, &ntxn, &partial, why, sizeof(why)) != 0 || ntxn == 0 || txns[ntxn - 1] != 999999 ){
      test_detail(&f_append, "op %d, state %ld: after the append: %s", opi, states, why);
    }
  }
}

/* Replay the recorded ops into the model; crash states before each sync. */
static void replay(int per_sync){
  for(int i = 0; i < nops; i++){
    rop *o = &ops[i];
    int issync = strcmp(o->op, "fdatasync") == 0 || strcmp(o->op, "fsync") == 0 || strcmp(o->op, "syncdir") == 0;
    if( issync ){
      /* A crash just before this sync: everything before it, durable or not. */
      int pending = ndpend;
      for(int f = 0; f < nfiles; f++) pending += files[f].npend;
      if( pending > 0 ){
        /* Fewer states where the files are big. */
        size_t big = 0;
        for(int f = 0; f < nfiles; f++) if( files[f].cur_len > big ) big = files[f].cur_len;
        int n = big > ((size_t)4 << 20) ? per_sync / 6 : per_sync;
        check_state(i, 0);
        check_state(i, 1);
        for(int k = 0; k < n; k++) check_state(i, 2);
      }
    }
    if( strcmp(o->op, "write") == 0 || strcmp(o->op, "ftruncate") == 0 ){
      int f = file_of(o->path);
      if( f < 0 ){ f_state++; printf("replay: op %d on %s: no such file\n", i, o->path); continue; }
      mfile *m = &files[f];
      if( strcmp(o->op, "write") == 0 ) apply_write(&m->cur, &m->cur_len, o->offset, o->data, o->len);
      else apply_trunc(&m->cur, &m->cur_len, o->offset);
      if( m->npend == m->cappend ){ m->cappend = m->cappend ? m->cappend * 2 : 64; m->pend = realloc(m->pend, (size_t)m->cappend * sizeof(int)); }
      m->pend[m->npend++] = i;
    }else if( strcmp(o->op, "fdatasync") == 0 || strcmp(o->op, "fsync") == 0 ){
      int f = file_of(o->path);
      if( f < 0 ) continue;
      mfile *m = &files[f];
      m->dur = realloc(m->dur, m->cur_len + 1);
      if( m->cur_len ) memcpy(m->dur, m->cur, m->cur_len);
      m->dur_len = m->cur_len;
      m->npend = 0;
    }else if( strcmp(o->op, "create") == 0 ){
      /* A new file (an O_TRUNC of an existing name is taken as a new, empty one). */
      int f = file_of(o->path);
      if( f < 0 || (o->offset & O_TRUNC) ){
        f = nfiles++;
        memset(&files[f], 0, sizeof(files[f]));
        files[f].id = o->id;
      }
      o->offset = (uint64_t)f;         /* remember which file this create made */
      int ff = f;
      dir_apply(cur_dir, &ncur, o, &ff);
      dpend[ndpend++] = i;
    }else if( strcmp(o->op, "rename") == 0 || strcmp(o->op, "unlink") == 0 ){
      dir_apply(cur_dir, &ncur, o, NULL);
      dpend[ndpend++] = i;
    }else if( strcmp(o->op, "syncdir") == 0 ){
      memcpy(dur_dir, cur_dir, sizeof(dur_dir));
      ndur = ncur;
      ndpend = 0;
    }
  }
  /* And after the last operation. */
  if( nops > 0 ){
    check_state(nops - 1, 0);
    check_state(nops - 1, 1);
  }
}

int main(void){
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *t = getenv("TMPDIR");
  snprintf(wdir, sizeof(wdir), "%s/stateio-power-XXXXXX", t && *t ? t : "/tmp");
  /* The crash states are many small files that recovery syncs: on tmpfs when there is one. */
  struct stat shm;
  const char *cbase = getenv("STATEIO_POWERLOSS_DIR");
  if( !cbase ) cbase = stat("/dev/shm", &shm) == 0 && S_ISDIR(shm.st_mode) && access("/dev/shm", W_OK) == 0
                       ? "/dev/shm" : (t && *t ? t : "/tmp");
  snprintf(cdir, sizeof(cdir), "%s/stateio-crash-XXXXXX", cbase);
  if( !mkdtemp(wdir) || !mkdtemp(cdir) ){ perror("mkdtemp"); return 1; }
  snprintf(logpath, sizeof(logpath), "%s/p.log", wdir);
  int per_sync = 200;
  const char *env = getenv("STATEIO_POWERLOSS_STATES");
  if( env && atoi(env) > 0 ) per_sync = atoi(env);
  if( UNDER_ASAN && !env ) per_sync = 40;
  rng = (uint64_t)time(NULL);
  env = getenv("STATEIO_POWERLOSS_SEED");
  if( env ) rng = strtoull(env, NULL, 10);
  printf("powerloss: seed %llu (STATEIO_POWERLOSS_SEED to repeat), %d states per sync point\n",
         (unsigned long long)rng, per_sync);

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  workload();
  int nsync = 0, nwrite = 0, ncommit_w = 0;
  for(int i = 0; i < nops; i++){
    if( strcmp(ops[i].op, "fdatasync") == 0 || strcmp(ops[i].op, "fsync") == 0 || strcmp(ops[i].op, "syncdir") == 0 ) nsync++;
    if( strcmp(ops[i].op, "write") == 0 ){
      nwrite++;
      if( strstr(ops[i].path, "-commit") ) ncommit_w++;
    }
  }
  printf("powerloss: workload: %d acknowledged commits, %d operations recorded (%d writes, %d of them to the commit file; %d syncs)\n",
         nacked, nops, nwrite, ncommit_w, nsync);
  CHECK_MSG(f_workload == 0, "powerloss: the workload ran as planned (%d surprises)", f_workload);
  CHECK_MSG(nacked >= 30 && nsync >= 50, "powerloss: a workload of %d commits, %d syncs", nacked, nsync);
  replay(per_sync);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("powerloss: %ld crash states checked in %.1f s; the commit in flight survived whole in %ld of them\n",
         states, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, inflight_kept);
  CHECK_MSG(states >= (UNDER_ASAN ? 2000 : 10000), "powerloss: crash states checked: %ld", states);
  CHECK_MSG(f_error == 0, "powerloss: every crash state recovers without an error and without a partial transaction (%d did not, %ld partial)",
            f_error, partial_seen);
  CHECK_MSG(f_state == 0, "powerloss: every crash state holds exactly the acknowledged commits, plus possibly the one in flight (%d wrong)", f_state);
  CHECK_MSG(f_append == 0, "powerloss: the recovered log takes the next commit (%d failed)", f_append);
  CHECK_MSG(inflight_kept > 0, "powerloss: some crash states kept the commit in flight (%ld)", inflight_kept);

  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf %s %s", wdir, cdir);
  if( system(cmd) != 0 ){}
  for(int i = 0; i < nops; i++) free(ops[i].data);
  free(ops);
  for(int f = 0; f < nfiles; f++){ free(files[f].dur); free(files[f].cur); free(files[f].pend); }
  return test_report();
}
