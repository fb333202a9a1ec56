/* SPDX-License-Identifier: MIT */
/*
** compact_test.c - compaction (stateio_compact): every golden log shape,
** keep-N, a crash at each step, a log with other names (hard and symbolic
** links), the new files' owner and mode, and compaction while another process appends and another reader
** restores.
**
** Usage: compact_test [GOLDEN_DIR]     (default test/golden)
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stateio.h"
#include "logio.h"
#include "testhelp.h"

static char tmpdir[256];

/* The state a restore gives, as text: snapshot bytes and updates in order. */
typedef struct state_text { char *s; size_t len, cap; int rc; } state_text;

static void st_add(state_text *t, const void *p, size_t n){
  if( t->len + n + 1 > t->cap ){
    t->cap = (t->len + n + 1) * 2;
    t->s = realloc(t->s, t->cap);
  }
  memcpy(t->s + t->len, p, n);
  t->len += n;
  t->s[t->len] = 0;
}

static void st_addf(state_text *t, const char *fmt, unsigned long long a){
  char buf[64];
  int n = snprintf(buf, sizeof(buf), fmt, a);
  st_add(t, buf, (size_t)n);
}

/* Restore path and render the state; rc is the restore's status. */
static state_text restore_text(const char *path){
  state_text t = {0};
  stateio_image img;
  stateio_state st;
  t.rc = stateio_open_image(path, &img);
  if( t.rc ) return t;
  t.rc = stateio_restore(&img, &st);
  if( t.rc == STATEIO_OK ){
    st_addf(&t, "snapshot %llu:", (unsigned long long)st.has_snapshot);
    st_add(&t, st.snapshot ? (const char*)st.snapshot : "", st.snapshot_len);
    stateio_updates *u;
    if( stateio_updates_open(&u, &img, &st) == STATEIO_OK ){
      stateio_entry e;
      int rc;
      while( (rc = stateio_updates_next(u, &e)) != STATEIO_DONE ){
        if( rc != STATEIO_OK ){
          /* A damaged region or entry is part of the state's text; the reader goes on. */
          st_addf(&t, "|error %llu", (unsigned long long)rc);
          if( rc == STATEIO_CORRUPT_LOG || rc == STATEIO_CORRUPT_ENTRY ) continue;
          break;
        }
        st_addf(&t, "|update %llu:", (unsigned long long)e.len);
        st_add(&t, e.data, e.len);
      }
      stateio_updates_close(u);
    }
    stateio_state_clear(&st);
  }
  stateio_close_image(&img);
  return t;
}

static int same_state(const state_text *a, const state_text *b){
  return a->rc == b->rc && a->len == b->len && (a->len == 0 || memcmp(a->s, b->s, a->len) == 0);
}

static int copy_file(const char *from, const char *to){
  FILE *f = fopen(from, "rb"), *g = fopen(to, "wb");
  if( !f || !g ){ if( f ) fclose(f); if( g ) fclose(g); return -1; }
  char buf[65536];
  size_t n;
  while( (n = fread(buf, 1, sizeof(buf), f)) > 0 ) fwrite(buf, 1, n, g);
  fclose(f);
  return fclose(g);
}

static uint64_t file_size(const char *path){
  struct stat st;
  return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* The number of epochs, counted by walking the chain back from restore. */
static int epoch_count(const char *path){
  stateio_image img;
  stateio_state st;
  if( stateio_open_image(path, &img) ) return -1;
  int n = 0;
  if( stateio_restore(&img, &st) == STATEIO_OK ){
    n = 1;
    while( st.has_snapshot && st.epoch != 0 ){
      uint64_t prev = st.prev_epoch;
      stateio_state_clear(&st);
      if( stateio_read_epoch(&img, prev, &st) != STATEIO_OK ){ n = -1; break; }
      n++;
    }
    stateio_state_clear(&st);
  }
  stateio_close_image(&img);
  return n;
}

/* ------------------------------------------------------------ golden shapes */

static void test_golden_shapes(const char *golden){
  DIR *d = opendir(golden);
  CHECK(d != NULL);
  if( !d ) return;
  struct dirent *de;
  int cases = 0;
  char log[512], src[1024];
  snprintf(log, sizeof(log), "%s/golden.log", tmpdir);
  while( (de = readdir(d)) != NULL ){
    if( de->d_name[0] == '.' ) continue;
    snprintf(src, sizeof(src), "%s/%s/log.bin", golden, de->d_name);
    if( access(src, R_OK) != 0 ) continue;
    cases++;
    copy_file(src, log);
    state_text before = restore_text(log);
    stateio_compact_info info;
    int rc = stateio_compact(log, 1, &info);
    state_text after = restore_text(log);
    if( before.rc != STATEIO_OK ){
      /* A log whose current state cannot be restored is left alone. */
      CHECK_MSG(rc != STATEIO_OK && !info.compacted, "%s: compaction of an unrestorable log must fail", de->d_name);
      CHECK_MSG(file_size(log) == file_size(src), "%s: file untouched", de->d_name);
    }else{
      CHECK_MSG(rc == STATEIO_OK, "%s: compact rc %s", de->d_name, stateio_errstr(rc));
      CHECK_MSG(same_state(&before, &after), "%s: same state after compaction", de->d_name);
      CHECK_MSG(epoch_count(log) == 1, "%s: one epoch left (got %d)", de->d_name, epoch_count(log));
      if( info.compacted ){
        CHECK_MSG(info.new_size == file_size(log) && info.new_size <= info.old_size,
                  "%s: sizes %llu -> %llu", de->d_name,
                  (unsigned long long)info.old_size, (unsigned long long)info.new_size);
      }
      /* The compacted log is appendable, and check finds nothing wrong in it. */
      stateio_writer *w;
      CHECK(stateio_writer_open(&w, log, 0) == STATEIO_OK);
      CHECK(stateio_update(w, "after", 5) == STATEIO_OK);
      stateio_writer_close(w);
      state_text more = restore_text(log);
      CHECK_MSG(more.rc == STATEIO_OK && more.len == after.len + strlen("|update 5:after")
                && memcmp(more.s, after.s, after.len) == 0, "%s: append after compaction", de->d_name);
      free(more.s);
    }
    free(before.s);
    free(after.s);
  }
  closedir(d);
  CHECK_MSG(cases >= 18, "golden cases found: %d", cases);
  printf("compaction: %d golden shapes\n", cases);
}

/* ------------------------------------------------------------ keep N */

static void write_epochs(const char *path, int epochs, int updates){
  unlink(path);
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, path, STATEIO_CREATE) == STATEIO_OK);
  char buf[64];
  for(int e = 0; e < epochs; e++){
    if( e > 0 ){
      int n = snprintf(buf, sizeof(buf), "snapshot %d", e);
      CHECK(stateio_snapshot(w, buf, (size_t)n) == STATEIO_OK);
    }
    for(int u = 0; u < updates; u++){
      int n = snprintf(buf, sizeof(buf), "update %d.%d", e, u);
      CHECK(stateio_update(w, buf, (size_t)n) == STATEIO_OK);
    }
  }
  stateio_writer_close(w);
}

static void test_keep_n(void){
  char log[512];
  snprintf(log, sizeof(log), "%s/keep.log", tmpdir);
  for(int keep = 1; keep <= 6; keep++){
    write_epochs(log, 5, 3);
    state_text before = restore_text(log);
    stateio_compact_info info;
    CHECK(stateio_compact(log, (unsigned)keep, &info) == STATEIO_OK);
    state_text after = restore_text(log);
    int want = keep < 5 ? keep : 5;   /* 5 epochs: 0 (no snapshot) and 4 snapshots */
    CHECK_MSG(same_state(&before, &after), "keep %d: same state", keep);
    CHECK_MSG(epoch_count(log) == want, "keep %d: %d epochs left (want %d)", keep, epoch_count(log), want);
    CHECK_MSG(info.compacted == (keep < 5), "keep %d: compacted=%d", keep, info.compacted);
    free(before.s);
    free(after.s);
  }
  CHECK(stateio_compact(log, 0, &(stateio_compact_info){0}) == STATEIO_MISUSE);
  char missing[600];
  snprintf(missing, sizeof(missing), "%s/no-such.log", tmpdir);
  stateio_compact_info info;
  errno = 0;
  CHECK(stateio_compact(missing, 1, &info) == STATEIO_IOERR && errno == ENOENT);
}

/* ------------------------------------------------------------ crash at each step */

static const char *crash_step;
static int crash_hook(void *arg, const char *op, size_t *n){
  (void)arg; (void)n;
  if( crash_step && strcmp(op, crash_step) == 0 ) _exit(9);   /* as if killed here */
  return 0;
}

static void test_crash_steps(void){
  static const char *steps[] = { "compact:written", "compact:synced", "compact:renamed", NULL };
  char log[512];
  snprintf(log, sizeof(log), "%s/crash.log", tmpdir);
  int tried = 0;
  for(int i = 0; steps[i] || i == 3; i++){
    write_epochs(log, 4, 50);
    state_text before = restore_text(log);
    uint64_t size_before = file_size(log);
    pid_t pid = fork();
    if( pid == 0 ){
      crash_step = steps[i];
      stateio_set_fault_hook(crash_hook, NULL);
      stateio_compact_info info;
      _exit(stateio_compact(log, 1, &info) == STATEIO_OK ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    tried++;
    int crashed = WIFEXITED(status) && WEXITSTATUS(status) == 9;
    CHECK_MSG(steps[i] ? crashed : WEXITSTATUS(status) == 0, "step %s: child status %d", steps[i] ? steps[i] : "none", status);
    state_text after = restore_text(log);
    CHECK_MSG(same_state(&before, &after), "crash at %s: same state", steps[i] ? steps[i] : "end");
    uint64_t size_after = file_size(log);
    /* Either the old log, whole, or the new one, whole. */
    int old_log = size_after == size_before;
    int new_log = epoch_count(log) == 1;
    CHECK_MSG(old_log || new_log, "crash at %s: old or new log", steps[i] ? steps[i] : "end");
    /* Before the rename the old log is there; from the rename on, the new. */
    if( steps[i] && strcmp(steps[i], "compact:renamed") != 0 ) CHECK(old_log);
    else CHECK(new_log);
    /* The next compaction, or writer, goes on. */
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, log, 0) == STATEIO_OK);
    CHECK(stateio_update(w, "next", 4) == STATEIO_OK);
    stateio_writer_close(w);
    stateio_compact_info info;
    CHECK(stateio_compact(log, 1, &info) == STATEIO_OK);
    free(before.s);
    free(after.s);
    if( !steps[i] ) break;
  }
  printf("compaction: crashed at %d points\n", tried - 1);
}

/* ------------------------------------------------------------ busy */

static void test_busy(void){
  char log[512];
  snprintf(log, sizeof(log), "%s/busy.log", tmpdir);
  write_epochs(log, 3, 2);
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, log, 0) == STATEIO_OK);
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  CHECK(stateio_update(w, "x", 1) == STATEIO_OK);     /* holds the lock */
  stateio_compact_info info;
  CHECK(stateio_compact(log, 1, &info) == STATEIO_BUSY);
  CHECK(stateio_writer_commit(w) == STATEIO_OK);
  CHECK(stateio_compact(log, 1, &info) == STATEIO_OK && info.compacted);
  /* The writer opened on the old file notices the new one and appends there. */
  CHECK(stateio_update(w, "y", 1) == STATEIO_OK);
  stateio_writer_close(w);
  state_text t = restore_text(log);
  CHECK_MSG(t.rc == STATEIO_OK && strstr(t.s, "|update 1:x|update 1:y") != NULL,
            "writer followed the new file: %s", t.s ? t.s : "");
  CHECK(epoch_count(log) == 1);
  free(t.s);
}

/* ------------------------------------------------------------ log_id */

static int64_t id_of(const char *path){
  int fd = open(path, O_RDONLY);
  int64_t id = -1;
  if( fd >= 0 ){
    if( stateio_log_id(fd, &id) != STATEIO_OK ) id = -1;
    close(fd);
  }
  return id;
}

/* A follower's (log_id, offset) stays valid across appends, not compaction. */
static void test_log_id(void){
  char log[512];
  snprintf(log, sizeof(log), "%s/id.log", tmpdir);
  write_epochs(log, 3, 2);
  int64_t id = id_of(log);
  CHECK(id > 0);
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, log, 0) == STATEIO_OK);
  CHECK(stateio_update(w, "more", 4) == STATEIO_OK);
  CHECK(id_of(log) == id);
  int changed = 0;
  for(int i = 0; i < 5; i++){          /* inode numbers get recycled: ids must not */
    CHECK(stateio_snapshot(w, "s", 1) == STATEIO_OK);
    int64_t before = id_of(log);
    stateio_compact_info info;
    CHECK(stateio_compact(log, 1, &info) == STATEIO_OK && info.compacted);
    int64_t after = id_of(log);
    changed += (after != before && after != id);
    CHECK(after > 0);
  }
  stateio_writer_close(w);
  CHECK_MSG(changed == 5, "log_id changed at %d of 5 compactions", changed);
}

/* ------------------------------------------------------------ other names */

/* Whether the state restored from path has an update "what". */
static int has_update(const char *path, const char *what){
  state_text t = restore_text(path);
  char want[128];
  snprintf(want, sizeof(want), "|update %zu:%s", strlen(what), what);
  int found = t.rc == STATEIO_OK && t.s && strstr(t.s, want) != NULL;
  free(t.s);
  return found;
}

static int exists(const char *path){
  struct stat st;
  return lstat(path, &st) == 0;
}

/* A log, a second name for it, another log, the log's commit file. */
typedef struct link_paths { char log[512], bak[512], other[512], clog[520]; } link_paths;

static void link_paths_of(link_paths *p, const char *stem){
  snprintf(p->log, sizeof(p->log), "%s/%s.log", tmpdir, stem);
  snprintf(p->bak, sizeof(p->bak), "%s/%s.bak", tmpdir, stem);
  snprintf(p->other, sizeof(p->other), "%s/%s.other", tmpdir, stem);
  snprintf(p->clog, sizeof(p->clog), "%s-commit", p->log);
}

/*
** A log with a second name (a hard link) is replaced under a writer open
** on its path: by compaction, or renamed over by hand. The old file keeps
** its other name, so it still has a link; the writer must go on in the file
** the path names now all the same, never in the old one, whichever way it
** was placed: (0) no commit file yet, (1) the commit file holding its own
** record, (2) having seen the other name before, (3) the file renamed over
** by hand after the writer saw the other name.
*/
static void test_hard_link(void){
  static const char *ways[] = { "no commit file", "own record", "link seen", "renamed by hand" };
  link_paths p;
  link_paths_of(&p, "hl");
  const char *log = p.log, *bak = p.bak, *other = p.other, *clog = p.clog;
  for(int way = 0; way < 4; way++){
    unlink(bak);
    unlink(clog);
    write_epochs(log, 3, 2);
    stateio_writer *w;
    CHECK(stateio_writer_open(&w, log, 0) == STATEIO_OK);
    if( way == 1 ){
      CHECK(stateio_writer_begin(w) == STATEIO_OK);
      CHECK(stateio_update(w, "a", 1) == STATEIO_OK);
      CHECK(stateio_update(w, "b", 1) == STATEIO_OK);
      CHECK(stateio_writer_commit(w) == STATEIO_OK);
      CHECK(exists(clog));
    }
    CHECK(link(log, bak) == 0);
    if( way >= 2 ) CHECK(stateio_update(w, "seen", 4) == STATEIO_OK);
    if( way < 3 ){
      stateio_compact_info info;
      CHECK(stateio_compact(log, 1, &info) == STATEIO_OK && info.compacted);
    }else{
      write_epochs(other, 2, 1);
      CHECK(rename(other, log) == 0);
    }
    CHECK(stateio_update(w, "after", 5) == STATEIO_OK);
    stateio_writer_close(w);
    CHECK_MSG(has_update(log, "after"), "%s: the entry is in the file the path names", ways[way]);
    CHECK_MSG(!has_update(bak, "after"), "%s: not in the old file", ways[way]);
    CHECK_MSG(epoch_count(bak) == 3, "%s: the old file is as it was", ways[way]);
  }
  unlink(bak);
}

/* Compaction's file is renamed over between its open and its lock: the old one has another name. */
static const char *swap_log, *swap_other;
static int swap_done;
static int swap_at_flock(void *arg, stateio_os_op *o){
  (void)arg;
  if( !o->after && !swap_done && o->file == STATEIO_FILE_LOG && strcmp(o->op, "flock") == 0 ){
    swap_done = 1;
    if( rename(swap_other, swap_log) != 0 ) return EIO;
  }
  return 0;
}

static void test_hard_link_race(void){
  link_paths p;
  link_paths_of(&p, "hr");
  const char *log = p.log, *bak = p.bak, *other = p.other, *clog = p.clog;
  unlink(bak);
  unlink(clog);
  write_epochs(log, 3, 2);
  write_epochs(other, 4, 1);
  CHECK(link(log, bak) == 0);
  swap_log = log;
  swap_other = other;
  swap_done = 0;
  stateio_set_os_hook(swap_at_flock, NULL);
  stateio_compact_info info;
  int rc = stateio_compact(log, 1, &info);
  stateio_set_os_hook(NULL, NULL);
  CHECK(swap_done);
  CHECK_MSG(rc == STATEIO_OK && info.compacted, "compaction: %s", stateio_errstr(rc));
  /* The file at the path when the lock was taken (other: 4 epochs, "update 3.0") was compacted. */
  CHECK(epoch_count(log) == 1);
  CHECK_MSG(has_update(log, "update 3.0"), "the file the path names now was compacted");
  CHECK_MSG(epoch_count(bak) == 3, "the old file, renamed over, is left alone");
  unlink(bak);
}

/*
** A log named through a symbolic link has one commit file, beside the file
** itself, and compaction through the link replaces the file, not the link.
*/
static void test_symlink(void){
  char log[512], lnk[512], clog[520], clnk[520], tlnk[520];
  snprintf(log, sizeof(log), "%s/sl.log", tmpdir);
  snprintf(lnk, sizeof(lnk), "%s/sl.link", tmpdir);
  snprintf(clog, sizeof(clog), "%s-commit", log);
  snprintf(clnk, sizeof(clnk), "%s-commit", lnk);
  snprintf(tlnk, sizeof(tlnk), "%s.compact", lnk);
  unlink(lnk);
  unlink(clog);
  write_epochs(log, 3, 2);
  CHECK(symlink("sl.log", lnk) == 0);        /* relative to the link's directory */
  stateio_writer *wl, *wp;
  CHECK(stateio_writer_open(&wl, lnk, 0) == STATEIO_OK);
  CHECK(stateio_writer_open(&wp, log, 0) == STATEIO_OK);
  CHECK(stateio_writer_begin(wl) == STATEIO_OK);
  CHECK(stateio_update(wl, "a", 1) == STATEIO_OK);
  CHECK(stateio_update(wl, "b", 1) == STATEIO_OK);
  CHECK(stateio_writer_commit(wl) == STATEIO_OK);
  CHECK_MSG(exists(clog) && !exists(clnk), "the commit file is beside the file, not the link");
  int64_t before = id_of(log);
  stateio_compact_info info;
  CHECK(stateio_compact(lnk, 1, &info) == STATEIO_OK && info.compacted);
  struct stat st;
  CHECK_MSG(lstat(lnk, &st) == 0 && S_ISLNK(st.st_mode), "the link is still a link");
  CHECK_MSG(id_of(log) != before, "the file it names was compacted");
  CHECK(!exists(clnk) && !exists(tlnk));
  CHECK(epoch_count(log) == 1);
  CHECK(stateio_update(wp, "by path", 7) == STATEIO_OK);
  CHECK(stateio_update(wl, "by link", 7) == STATEIO_OK);
  /* A batch in flight through the path (spilled: its first chunk is out) is invisible through the link. */
  uint64_t committed = file_size(log);
  stateio_writer_set_spill(wp, 4096);
  CHECK(stateio_writer_begin(wp) == STATEIO_OK);
  char big[3000];
  memset(big, 'x', sizeof(big));
  for(int i = 0; i < 3; i++) CHECK(stateio_update(wp, big, sizeof(big)) == STATEIO_OK);
  CHECK(file_size(log) > committed);
  stateio_image img;
  CHECK(stateio_open_image(lnk, &img) == STATEIO_OK);
  CHECK_MSG(img.file_size == committed, "a reader through the link sees %llu bytes, %llu committed",
            (unsigned long long)img.file_size, (unsigned long long)committed);
  stateio_close_image(&img);
  stateio_writer_rollback(wp);
  CHECK(file_size(log) == committed);
  stateio_writer_close(wl);
  stateio_writer_close(wp);
  CHECK(has_update(log, "a") && has_update(log, "by path") && has_update(log, "by link"));
  state_text a = restore_text(log), b = restore_text(lnk);
  CHECK(same_state(&a, &b));
  free(a.s);
  free(b.s);
  unlink(lnk);
}

/*
** Names only stateio makes, PATH-commit.tmp and PATH.compact, with a
** symbolic link planted there (another user of a shared directory), or a
** file a crashed run left: the link is replaced, never written through,
** and the file it names keeps its bytes. 2026-12-01: both were opened with
** O_TRUNC, which follows a link: the file it named was truncated, filled
** with the commit file's or the new log's bytes, and given the log's mode.
*/
static void test_planted(void){
  char log[512], ctmp[530], ctmp2[530], victim[520], cpath[520];
  snprintf(log, sizeof(log), "%s/pl.log", tmpdir);
  snprintf(ctmp, sizeof(ctmp), "%s-commit.tmp", log);
  snprintf(ctmp2, sizeof(ctmp2), "%s.compact", log);
  snprintf(cpath, sizeof(cpath), "%s-commit", log);
  snprintf(victim, sizeof(victim), "%s/victim.txt", tmpdir);
  unlink(cpath);
  write_epochs(log, 3, 2);
  FILE *f = fopen(victim, "w");
  CHECK(f && fputs("keep me", f) >= 0);
  if( f ) fclose(f);
  chmod(victim, 0600);
  struct stat vst, st;
  CHECK(stat(victim, &vst) == 0);
  /* The commit file's temporary name. */
  unlink(ctmp);
  CHECK(symlink(victim, ctmp) == 0);
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, log, STATEIO_SYNC) == STATEIO_OK);
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  CHECK(stateio_update(w, "t1", 2) == STATEIO_OK);
  CHECK(stateio_update(w, "t2", 2) == STATEIO_OK);
  int rc = stateio_writer_commit(w);
  stateio_writer_close(w);
  CHECK_MSG(rc == STATEIO_OK, "a transaction with a link at PATH-commit.tmp commits (%s)", stateio_errstr(rc));
  CHECK_MSG(stat(victim, &st) == 0 && st.st_size == 7 && st.st_mode == vst.st_mode,
            "the file the link named is untouched (%lld bytes, mode %o)", (long long)st.st_size, (unsigned)st.st_mode);
  CHECK(lstat(cpath, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 1024 && !exists(ctmp));
  CHECK(has_update(log, "t2"));
  /* Compaction's new log. */
  CHECK(symlink(victim, ctmp2) == 0);
  stateio_compact_info info;
  rc = stateio_compact(log, 1, &info);
  CHECK_MSG(rc == STATEIO_OK && info.compacted, "compaction with a link at PATH.compact (%s)", stateio_errstr(rc));
  CHECK_MSG(stat(victim, &st) == 0 && st.st_size == 7 && st.st_mode == vst.st_mode,
            "the file the link named is untouched (%lld bytes, mode %o)", (long long)st.st_size, (unsigned)st.st_mode);
  CHECK(lstat(log, &st) == 0 && S_ISREG(st.st_mode) && !exists(ctmp2) && epoch_count(log) == 1);
  /*
  ** The commit file itself a link (to a file of its size): damage, named,
  ** and nothing is written to the file it names, not even the mark of a
  ** writer that waits for the lock (2026-12-01: 32 bytes at offset 512).
  */
  {
    char v2[530], saved[530];
    snprintf(v2, sizeof(v2), "%s/victim1024", tmpdir);
    snprintf(saved, sizeof(saved), "%s.saved", cpath);
    unsigned char vb[1024];
    memset(vb, 'v', sizeof(vb));
    f = fopen(v2, "wb");
    CHECK(f && fwrite(vb, 1, sizeof(vb), f) == sizeof(vb));
    if( f ) fclose(f);
    stateio_writer *a, *b;
    CHECK(stateio_writer_open(&a, log, 0) == STATEIO_OK);
    CHECK(stateio_writer_open(&b, log, 0) == STATEIO_OK);
    CHECK(stateio_writer_begin(a) == STATEIO_OK);
    CHECK(stateio_update(a, "held", 4) == STATEIO_OK);   /* a holds the lock now */
    CHECK(rename(cpath, saved) == 0 && symlink(v2, cpath) == 0);
    stateio_writer_set_timeout(b, 60);
    rc = stateio_update(b, "waits", 5);
    CHECK_MSG(rc == STATEIO_BUSY, "a writer that waits for the lock: %s", stateio_errstr(rc));
    stateio_writer_rollback(a);
    rc = stateio_update(b, "now", 3);
    const char *ef = stateio_writer_errfile(b);
    CHECK_MSG(rc == STATEIO_CORRUPT_COMMIT && ef && strcmp(ef, cpath) == 0,
              "a commit file that is a link: %s, naming %s", stateio_errstr(rc), ef ? ef : "NULL");
    stateio_image img;
    rc = stateio_open_image(log, &img);
    CHECK_MSG(rc == STATEIO_CORRUPT_COMMIT, "... for a reader too (%s)", stateio_errstr(rc));
    if( rc == STATEIO_OK ) stateio_close_image(&img);
    unsigned char now[1100];
    f = fopen(v2, "rb");
    size_t got = f ? fread(now, 1, sizeof(now), f) : 0;
    if( f ) fclose(f);
    CHECK_MSG(got == sizeof(vb) && memcmp(now, vb, sizeof(vb)) == 0, "the file the link names is untouched");
    stateio_writer_close(a);
    stateio_writer_close(b);
    CHECK(unlink(cpath) == 0 && rename(saved, cpath) == 0);
    CHECK(has_update(log, "t2") && !has_update(log, "held"));
    unlink(v2);
  }
  /* A PATH.compact a crashed compaction left: replaced. */
  write_epochs(log, 3, 2);
  f = fopen(ctmp2, "w");
  CHECK(f && fputs("half a log", f) >= 0);
  if( f ) fclose(f);
  rc = stateio_compact(log, 1, &info);
  CHECK_MSG(rc == STATEIO_OK && info.compacted && !exists(ctmp2) && epoch_count(log) == 1,
            "compaction over a PATH.compact left by a crash (%s)", stateio_errstr(rc));
  unlink(victim);
  unlink(cpath);
  unlink(log);
}

/*
** A writer opened by a relative name goes on in the same log after the
** program changes its working directory (daemons chdir("/")): its commit
** file, and the new file when the log is compacted, are found where the
** log is.
*/
static void test_chdir(void){
  char log[512], clog[520], cwd[1024];
  snprintf(log, sizeof(log), "%s/rel.log", tmpdir);
  snprintf(clog, sizeof(clog), "%s-commit", log);
  unlink(clog);
  write_epochs(log, 3, 2);
  if( !CHECK(getcwd(cwd, sizeof(cwd)) != NULL) ) return;
  CHECK(chdir(tmpdir) == 0);
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, "rel.log", 0) == STATEIO_OK);
  CHECK(chdir("/") == 0);
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  CHECK(stateio_update(w, "a", 1) == STATEIO_OK);
  CHECK(stateio_update(w, "b", 1) == STATEIO_OK);
  CHECK(stateio_writer_commit(w) == STATEIO_OK);
  CHECK_MSG(exists(clog) && !exists("/rel.log-commit"), "the commit file is beside the log");
  stateio_compact_info info;
  CHECK(stateio_compact(log, 1, &info) == STATEIO_OK && info.compacted);
  CHECK(stateio_update(w, "after", 5) == STATEIO_OK);
  stateio_writer_close(w);
  CHECK(chdir(cwd) == 0);
  CHECK_MSG(has_update(log, "a") && has_update(log, "after"), "the writer followed the compacted log");
  unlink("/rel.log-commit");
}

/* ------------------------------------------------------------ owner and mode */

static int fail_op_hook(void *arg, stateio_os_op *o){
  return !o->after && strcmp(o->op, (const char *)arg) == 0 ? EPERM : 0;
}

/*
** The files a log gets (its commit file, the log compaction makes) have the
** log's permissions whatever the umask, and, made by root, the log's owner:
** a root cron job that compacts an application's log must not lock the
** application out. A failure to set them fails the compaction or the
** commit, and leaves the log as it was.
*/
static void test_owner(void){
  char log[512], clog[520], tlog[520];
  snprintf(log, sizeof(log), "%s/own.log", tmpdir);
  snprintf(clog, sizeof(clog), "%s-commit", log);
  snprintf(tlog, sizeof(tlog), "%s.compact", log);
  unlink(clog);
  write_epochs(log, 3, 2);
  int root = geteuid() == 0;
  uid_t uid = root ? 65534 : geteuid();
  gid_t gid = root ? 65534 : getegid();
  CHECK(chmod(log, 0660) == 0);
  if( root ) CHECK(chown(log, uid, gid) == 0);
  mode_t old_mask = umask(077);
  struct stat st;

  /* A failure to set them: the commit fails, nothing is written, no commit file. */
  uint64_t size = file_size(log);
  stateio_writer *w;
  CHECK(stateio_writer_open(&w, log, 0) == STATEIO_OK);
  stateio_set_os_hook(fail_op_hook, (void *)"chmod");
  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  CHECK(stateio_update(w, "a", 1) == STATEIO_OK);
  CHECK(stateio_update(w, "b", 1) == STATEIO_OK);
  int rc = stateio_writer_commit(w);
  stateio_set_os_hook(NULL, NULL);
  CHECK_MSG(rc == STATEIO_IOERR && errno == EPERM, "a commit file that cannot get the log's mode: %s",
            stateio_errstr(rc));
  CHECK(file_size(log) == size && !exists(clog));

  CHECK(stateio_writer_begin(w) == STATEIO_OK);
  CHECK(stateio_update(w, "a", 1) == STATEIO_OK);
  CHECK(stateio_update(w, "b", 1) == STATEIO_OK);
  CHECK(stateio_writer_commit(w) == STATEIO_OK);
  stateio_writer_close(w);
  CHECK(stat(clog, &st) == 0);
  CHECK_MSG((st.st_mode & 07777) == 0660, "commit file mode %o", (unsigned)(st.st_mode & 07777));
  CHECK_MSG(st.st_uid == uid && st.st_gid == gid, "commit file owner %d:%d", (int)st.st_uid, (int)st.st_gid);

  stateio_compact_info info;
  size = file_size(log);
  int64_t id = id_of(log);
  static const char *ops[] = { "chmod", "chown" };
  for(int i = 0; i < (root ? 2 : 1); i++){
    stateio_set_os_hook(fail_op_hook, (void *)ops[i]);
    rc = stateio_compact(log, 1, &info);
    stateio_set_os_hook(NULL, NULL);
    CHECK_MSG(rc == STATEIO_IOERR && info.errfile == STATEIO_FILE_COMPACT,
              "compaction that cannot %s its new log: %s", ops[i], stateio_errstr(rc));
    CHECK(id_of(log) == id && file_size(log) == size && !exists(tlog));
  }
  CHECK(stateio_compact(log, 1, &info) == STATEIO_OK && info.compacted);
  CHECK(stat(log, &st) == 0);
  CHECK_MSG((st.st_mode & 07777) == 0660, "compacted log mode %o", (unsigned)(st.st_mode & 07777));
  CHECK_MSG(st.st_uid == uid && st.st_gid == gid, "compacted log owner %d:%d", (int)st.st_uid, (int)st.st_gid);
  umask(old_mask);
  if( !root ) printf("compaction: owner not checked against another user (not root)\n");
}

/*
** The same made by a process that is not root (run as root, a child drops
** to uid 65534 with supplementary group 100): in the log's group (100) the
** new files get the group; outside it (the log's group is 1) they keep the
** process's, with the log's permission bits, and nothing fails.
*/
static void test_group(void){
  if( geteuid() != 0 ){
    printf("compaction: not run (not root): the group of a log compacted by a member\n");
    return;
  }
  char dir[512];
  snprintf(dir, sizeof(dir), "%s/grp", tmpdir);
  mkdir(dir, 0777);
  CHECK(chmod(dir, 0777) == 0 && chmod(tmpdir, 0755) == 0);
  static const gid_t groups[2] = { 100, 1 };
  static const mode_t modes[2] = { 0660, 0666 };
  for(int i = 0; i < 2; i++){
    char log[600], clog[620];
    snprintf(log, sizeof(log), "%s/g%d.log", dir, i);
    snprintf(clog, sizeof(clog), "%s-commit", log);
    unlink(clog);
    write_epochs(log, 3, 2);
    CHECK(chown(log, 65534, groups[i]) == 0 && chmod(log, modes[i]) == 0);
    fflush(stdout);
    pid_t pid = fork();
    if( pid == 0 ){
      gid_t extra = 100;
      if( setgroups(1, &extra) != 0 || setgid(65534) != 0 || setuid(65534) != 0 ) _exit(100);
      umask(022);
      stateio_writer *w;
      int bad = 0;
      if( stateio_writer_open(&w, log, 0) != STATEIO_OK ) _exit(101);
      if( stateio_writer_begin(w) || stateio_update(w, "a", 1) || stateio_update(w, "b", 1)
       || stateio_writer_commit(w) ) bad |= 1;
      stateio_writer_close(w);
      stateio_compact_info info;
      if( stateio_compact(log, 1, &info) != STATEIO_OK || !info.compacted ) bad |= 2;
      _exit(bad);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "group %d: the member's commit and compaction (status %d)",
              (int)groups[i], status);
    gid_t want = i == 0 ? 100 : 65534;
    struct stat st, cst;
    memset(&st, 0, sizeof(st));
    memset(&cst, 0, sizeof(cst));
    CHECK(stat(log, &st) == 0 && stat(clog, &cst) == 0);
    CHECK_MSG(st.st_uid == 65534 && st.st_gid == want && (st.st_mode & 07777) == modes[i],
              "group %d: the compacted log is %d:%d %o", (int)groups[i], (int)st.st_uid, (int)st.st_gid,
              (unsigned)(st.st_mode & 07777));
    CHECK_MSG(cst.st_gid == want && (cst.st_mode & 07777) == modes[i],
              "group %d: the commit file is %d:%d %o", (int)groups[i], (int)cst.st_uid, (int)cst.st_gid,
              (unsigned)(cst.st_mode & 07777));
  }
  chmod(tmpdir, 0700);
}

/* ------------------------------------------------------------ live compaction */

/*
** A child appends numbered updates (and a snapshot every 50) while the
** parent compacts and restores over and over. In the end every update the
** child committed is in the log exactly once, in order. With `linked`, the
** log has a second name (a hard link) from the start, which keeps the
** first file's link count above 0 after the first compaction.
*/
static void test_live(int linked){
  char log[512], bak[512];
  snprintf(log, sizeof(log), "%s/live.log", tmpdir);
  snprintf(bak, sizeof(bak), "%s/live.bak", tmpdir);
  unlink(log);
  unlink(bak);
  if( linked ){
    write_epochs(log, 1, 1);
    CHECK(link(log, bak) == 0);
  }
  enum { N = 3000 };
  pid_t pid = fork();
  if( pid == 0 ){
    stateio_writer *w;
    if( stateio_writer_open(&w, log, STATEIO_CREATE) ) _exit(2);
    char buf[32];
    if( linked && stateio_snapshot(w, "s", 1) ) _exit(3);   /* the link's file has a second epoch */
    for(int i = 0; i < N; i++){
      int n, rc;
      if( i % 50 == 0 ){
        n = snprintf(buf, sizeof(buf), "s%d", i);
        while( (rc = stateio_snapshot(w, buf, (size_t)n)) == STATEIO_BUSY ) usleep(100);
        if( rc ) _exit(3);
      }
      n = snprintf(buf, sizeof(buf), "u%d", i);
      while( (rc = stateio_update(w, buf, (size_t)n)) == STATEIO_BUSY ) usleep(100);
      if( rc ) _exit(4);
      if( i % 10 == 0 ) usleep(1000);   /* keep appending while the parent compacts */
    }
    stateio_writer_close(w);
    _exit(0);
  }
  int compactions = 0, busy = 0, restores = 0, bad_restores = 0, status = 0;
  for(;;){
    pid_t done = waitpid(pid, &status, WNOHANG);
    stateio_compact_info info;
    int rc = stateio_compact(log, 1, &info);
    if( rc == STATEIO_OK && info.compacted ) compactions++;
    else if( rc == STATEIO_BUSY ) busy++;
    else if( rc != STATEIO_OK && !(rc == STATEIO_IOERR && errno == ENOENT) ) bad_restores++;
    state_text t = restore_text(log);
    if( t.rc == STATEIO_OK ) restores++;
    else if( !(t.rc == STATEIO_IOERR) ) bad_restores++;
    free(t.s);
    if( done == pid ) break;
    usleep(2000);
  }
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "appender exit status %d", status);
  CHECK_MSG(bad_restores == 0, "restores/compactions that failed: %d", bad_restores);
  CHECK_MSG(compactions > 0, "compactions done while appending: %d", compactions);
  /* The current epoch began at update 2950: s2950, then u2950..u2999. */
  state_text t = restore_text(log);
  state_text want = {0};
  st_add(&want, "snapshot 1:s2950", 16);
  for(int i = 2950; i < N; i++){
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "|update 5:u%d", i);
    st_add(&want, buf, (size_t)n);
  }
  want.rc = STATEIO_OK;
  CHECK_MSG(same_state(&t, &want), "final state after live compaction");
  printf("compaction: %d compactions while appending (%d busy), %d restores%s\n", compactions, busy, restores,
         linked ? ", the log hard-linked" : "");
  if( linked ) CHECK_MSG(!has_update(bak, "u2999"), "the old file, kept by the hard link, got no appends at the end");
  unlink(bak);
  free(t.s);
  free(want.s);
}

int main(int argc, char **argv){
  const char *golden = argc > 1 ? argv[1] : "test/golden";
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/stateio-compact-%d", (int)getpid());
  mkdir(tmpdir, 0700);
  test_golden_shapes(golden);
  test_keep_n();
  test_crash_steps();
  test_busy();
  test_log_id();
  test_hard_link();
  test_hard_link_race();
  test_symlink();
  test_planted();
  test_chdir();
  test_owner();
  test_group();
  test_live(0);
  test_live(1);
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
  if( system(cmd) != 0 ) fprintf(stderr, "could not remove %s\n", tmpdir);
  return test_report();
}
