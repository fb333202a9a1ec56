/* SPDX-License-Identifier: MIT */
/*
** golden_test.c - the golden test vectors of the reference implementation
** (test/golden, see its README.md), against our library.
**
** For every case folder (found with opendir, never a fixed list):
**  a. ops.txt is replayed with our writer into a temporary file; mutate.txt
**     is applied; the bytes must equal log.bin exactly.
**  b. While replaying, every entry written is recorded (offset, end, kind,
**     epoch field, data): the oracle of what was written. The offsets are
**     computed here from the file size before each operation (with the
**     garbage rule of FORMAT.md step 1), and checked against a forward
**     reader over the unmutated file.
**  c. restore / scan / rewind of log.bin are rendered in the reference's
**     text format.
**  d. Undamaged cases: those texts equal restore.txt, scan.txt, rewind.txt
**     byte for byte.
**  e. Damaged cases (mutate.txt or a `raw` op): the library does better
**     than the reference; the properties it must have are checked against
**     the oracle (see check_damaged()). They are checked for the undamaged
**     cases too, where they must hold as well.
**  f. Every case whose restore must succeed: a writer on a copy of log.bin
**     appends an update (truncating a torn tail first), and a restore then
**     returns what it returned before plus the new update.
**
** Usage: golden_test [GOLDEN_DIR]     (default test/golden)
** Prints one line per case, "golden CASE: ok" or what differed, and ends
** with "N passed, N failed".
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "stateio.h"
#include "logio.h"
#include "testhelp.h"

/* The number of case folders the golden set has (README.md's list). */
#define MIN_CASES 18
/* Safety net: no reader loop of this test runs longer than this. */
#define MAX_STEPS 1000000

static char tmpdir[512];

/* ---------------------------------------------------------------- utilities */


static void *xmalloc(size_t n){
  void *p = malloc(n ? n : 1);
  if( !p ){ perror("malloc"); exit(2); }
  return p;
}

/* Whole file into memory; NULL (and *len 0) if it cannot be read. */
static unsigned char *read_file(const char *path, size_t *len){
  *len = 0;
  FILE *f = fopen(path, "rb");
  if( !f ) return NULL;
  size_t cap = 65536, n = 0;
  unsigned char *p = xmalloc(cap);
  size_t got;
  while( (got = fread(p + n, 1, cap - n, f)) > 0 ){
    n += got;
    if( n == cap ){
      cap *= 2;
      p = realloc(p, cap);
      if( !p ){ perror("realloc"); exit(2); }
    }
  }
  fclose(f);
  *len = n;
  return p;
}

static int write_file(const char *path, const void *p, size_t n){
  FILE *f = fopen(path, "wb");
  if( !f ) return -1;
  size_t put = fwrite(p, 1, n, f);
  return (fclose(f) == 0 && put == n) ? 0 : -1;
}

static uint64_t file_size(const char *path){
  struct stat st;
  return stat(path, &st) == 0 ? (uint64_t)st.st_size : (uint64_t)-1;
}

/* gen(LEN, SEED) of golden/README.md. */
static unsigned char *gen(size_t len, unsigned seed){
  unsigned char *p = xmalloc(len);
  for(size_t j = 0; j < len; j++) p[j] = (unsigned char)((seed * 131u + j * 7u + (j >> 8)) & 0xff);
  return p;
}

static void sha256_hex(const unsigned char *p, size_t n, char out[65]){
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  static const unsigned char empty[1];
  if( EVP_Digest(n ? p : empty, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32 ){
    strcpy(out, "sha256-failed");
    return;
  }
  for(unsigned i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", md[i]);
}

/* Where an entry appended to a log of `off` bytes starts (FORMAT.md step 1). */
static uint64_t model_start(uint64_t off){
  uint64_t r = off % LOGIO_BLOCK;
  if( r > 0 && r < LOGIO_HEADER ) return off + (LOGIO_BLOCK - r);   /* garbage */
  if( LOGIO_BLOCK - r <= LOGIO_HEADER ) return off + (LOGIO_BLOCK - r);
  return off;
}

/* First line where two texts differ, for the report. */
static void show_diff(const char *what, const char *want, const char *got){
  int line = 1;
  const char *a = want, *b = got;
  for(;;){
    const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
    size_t la = ea ? (size_t)(ea - a) : strlen(a);
    size_t lb = eb ? (size_t)(eb - b) : strlen(b);
    if( la != lb || memcmp(a, b, la) != 0 || (!ea) != (!eb) ){
      printf("  %s differs at line %d:\n    reference: %.*s\n    ours:      %.*s\n",
             what, line, (int)la, *a ? a : "(end)", (int)lb, *b ? b : "(end)");
      return;
    }
    if( !ea ) return;
    a = ea + 1; b = eb + 1; line++;
  }
}

/* ---------------------------------------------------------------- the oracle */

typedef struct written {
  uint64_t start, end;     /* file offsets of the entry (end: one past its last record) */
  int kind;                /* STATEIO_UPDATE or STATEIO_SNAPSHOT */
  uint64_t epoch;          /* the entry's epoch field */
  unsigned char *data;     /* the application's bytes */
  size_t len;
  int survives;            /* bytes in log.bin identical to those written, within the file */
} written;

typedef struct gcase {
  const char *name;
  char dir[1024];
  written *w;
  int nw, capw;
  unsigned char *orig;     /* the file as written, before mutate.txt */
  size_t orig_len;
  unsigned char *gold;     /* log.bin */
  size_t gold_len;
  int has_mutate, has_raw, damaged;
  char gold_path[1100];
} gcase;

static void add_written(gcase *c, uint64_t start, uint64_t end, int kind,
                        uint64_t epoch, unsigned char *data, size_t len){
  if( c->nw == c->capw ){
    c->capw = c->capw ? c->capw * 2 : 64;
    c->w = realloc(c->w, sizeof(written) * (size_t)c->capw);
    if( !c->w ){ perror("realloc"); exit(2); }
  }
  written *x = &c->w[c->nw++];
  memset(x, 0, sizeof(*x));
  x->start = start; x->end = end; x->kind = kind; x->epoch = epoch;
  x->data = data; x->len = len;
}

static int hexval(int ch){
  if( ch >= '0' && ch <= '9' ) return ch - '0';
  if( ch >= 'a' && ch <= 'f' ) return ch - 'a' + 10;
  if( ch >= 'A' && ch <= 'F' ) return ch - 'A' + 10;
  return -1;
}

/* The bytes of hex text h (to its end); NULL when it is not whole hex pairs. */
static unsigned char *hex_decode(const char *h, size_t *len){
  size_t n = strlen(h);
  if( n % 2 ) return NULL;
  unsigned char *p = xmalloc(n / 2);
  for(size_t i = 0; i < n / 2; i++){
    int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
    if( hi < 0 || lo < 0 ){ free(p); return NULL; }
    p[i] = (unsigned char)(hi << 4 | lo);
  }
  *len = n / 2;
  return p;
}

/*
** (a)+(b): replay ops.txt with our writer into tmp file `log`, recording
** every entry written. Returns 0 when the replay itself went through.
*/
static int replay(gcase *c, const char *log){
  char path[1200];
  snprintf(path, sizeof(path), "%s/ops.txt", c->dir);
  FILE *f = fopen(path, "r");
  if( !CHECK_MSG(f != NULL, "%s: cannot open %s", c->name, path) ) return -1;
  unlink(log);
  stateio_writer *w = NULL;
  int rc = stateio_writer_open(&w, log, STATEIO_CREATE);
  if( !CHECK_MSG(rc == STATEIO_OK, "%s: writer_open: %s", c->name, stateio_errstr(rc)) ){
    fclose(f);
    return -1;
  }
  uint64_t epoch = 0;     /* our model of the writer's current epoch */
  static char line[1 << 20];
  int lineno = 0, bad = 0;
  while( !bad && fgets(line, sizeof(line), f) ){
    lineno++;
    char op[32];
    unsigned long long len;
    unsigned seed;
    line[strcspn(line, "\r\n")] = 0;
    if( line[0] == 0 ) continue;
    uint64_t off = file_size(log);
    if( sscanf(line, "%31s", op) != 1 ){ bad = 1; break; }
    if( strcmp(op, "update") == 0 || strcmp(op, "snapshot") == 0 ){
      int kind = op[0] == 'u' ? STATEIO_UPDATE : STATEIO_SNAPSHOT;
      unsigned char *data;
      const char *arg = line + strlen(op);
      while( *arg == ' ' ) arg++;
      if( strncmp(arg, "hex:", 4) == 0 ){
        /* Exact bytes (an entry whose data holds a whole log, say). */
        size_t n;
        data = hex_decode(arg + 4, &n);
        if( !data ){ bad = 1; break; }
        len = n;
      }else{
        if( sscanf(arg, "%llu %u", &len, &seed) != 2 ){ bad = 1; break; }
        data = gen((size_t)len, seed);
      }
      rc = kind == STATEIO_UPDATE ? stateio_update(w, data, (size_t)len)
                                  : stateio_snapshot(w, data, (size_t)len);
      if( !CHECK_MSG(rc == STATEIO_OK, "%s: ops.txt:%d %s: %s", c->name, lineno, line, stateio_errstr(rc)) ){
        free(data);
        bad = 1;
        break;
      }
      uint64_t start = model_start(off), end = file_size(log);
      CHECK_MSG(end - off == logio_encoded_size(off, STATEIO_ENTRY_HEADER + len),
                "%s: ops.txt:%d: file grew by %llu, logio_encoded_size says %llu", c->name, lineno,
                (unsigned long long)(end - off),
                (unsigned long long)logio_encoded_size(off, STATEIO_ENTRY_HEADER + len));
      add_written(c, start, end, kind, epoch, data, (size_t)len);
      if( kind == STATEIO_SNAPSHOT ) epoch = start;
      CHECK_MSG(stateio_writer_epoch(w) == epoch, "%s: ops.txt:%d: writer epoch %llu, expected %llu",
                c->name, lineno, (unsigned long long)stateio_writer_epoch(w), (unsigned long long)epoch);
    }else if( strcmp(op, "reopen") == 0 ){
      rc = stateio_writer_close(w);
      CHECK_MSG(rc == STATEIO_OK, "%s: writer_close: %s", c->name, stateio_errstr(rc));
      w = NULL;
      rc = stateio_writer_open(&w, log, 0);
      if( !CHECK_MSG(rc == STATEIO_OK, "%s: ops.txt:%d reopen: %s", c->name, lineno, stateio_errstr(rc)) ){
        bad = 1;
        break;
      }
      /* The epoch is restored from the file. */
      CHECK_MSG(stateio_writer_epoch(w) == epoch, "%s: ops.txt:%d: reopened writer's epoch %llu, expected %llu",
                c->name, lineno, (unsigned long long)stateio_writer_epoch(w), (unsigned long long)epoch);
    }else if( strcmp(op, "raw") == 0 ){
      const char *h = line + 3;
      while( *h == ' ' ) h++;
      size_t n;
      unsigned char *bytes = hex_decode(h, &n);
      if( !bytes ){ bad = 1; break; }
      {
        /* Outside the writer: plain write() at the end of the file. */
        int fd = open(log, O_WRONLY | O_APPEND);
        int ok = fd >= 0 && write(fd, bytes, n) == (ssize_t)n;
        if( fd >= 0 ) close(fd);
        CHECK_MSG(ok, "%s: raw write: %s", c->name, strerror(errno));
      }
      free(bytes);
      c->has_raw = 1;
    }else{
      bad = 1;
    }
  }
  fclose(f);
  CHECK_MSG(!bad, "%s: ops.txt:%d: cannot replay \"%s\"", c->name, lineno, line);
  if( w ){
    rc = stateio_writer_close(w);
    CHECK_MSG(rc == STATEIO_OK, "%s: writer_close: %s", c->name, stateio_errstr(rc));
  }
  return bad ? -1 : 0;
}

/* Apply mutate.txt (if any) to c->orig, giving the bytes log.bin must hold. */
static unsigned char *mutate(gcase *c, size_t *len){
  char path[1200];
  snprintf(path, sizeof(path), "%s/mutate.txt", c->dir);
  unsigned char *m = xmalloc(c->orig_len);
  memcpy(m, c->orig, c->orig_len);
  *len = c->orig_len;
  FILE *f = fopen(path, "r");
  if( !f ) return m;
  c->has_mutate = 1;
  char line[256];
  while( fgets(line, sizeof(line), f) ){
    unsigned long long v;
    if( sscanf(line, "flip %llu", &v) == 1 ){
      if( CHECK_MSG(v < *len, "%s: flip %llu past the end (%zu)", c->name, v, *len) ) m[v] ^= 0xff;
    }else if( sscanf(line, "truncate %llu", &v) == 1 ){
      if( CHECK_MSG(v <= *len, "%s: truncate %llu past the end (%zu)", c->name, v, *len) ) *len = (size_t)v;
    }else if( line[strspn(line, " \t\r\n")] != 0 ){
      CHECK_MSG(0, "%s: unknown line in mutate.txt: %s", c->name, line);
    }
  }
  fclose(f);
  return m;
}

/* The payload [kind][epoch][data] of a written entry. */
static int same_payload(const written *x, const unsigned char *p, size_t n){
  stateio_entry se;
  if( stateio_parse_entry(p, n, &se) != STATEIO_OK ) return 0;
  return se.kind == x->kind && se.epoch == x->epoch && se.len == x->len
      && (x->len == 0 || memcmp(se.data, x->data, x->len) == 0);
}

/*
** The oracle's offsets, checked against a forward reader over the file as
** written (before mutate.txt): exactly the written entries, then at most a
** torn tail (the `raw` garbage), then the end.
*/
static void check_oracle(gcase *c, const char *log){
  stateio_image img;
  int rc = stateio_open_image(log, &img);
  if( !CHECK_MSG(rc == STATEIO_OK, "%s: open %s: %s", c->name, log, stateio_errstr(rc)) ) return;
  logio_reader *r;
  rc = logio_reader_open(&r, &img, 0);
  CHECK(rc == STATEIO_OK);
  int i = 0, ok = 1, steps = 0;
  logio_entry e;
  while( rc == STATEIO_OK && steps++ < MAX_STEPS ){
    rc = logio_reader_next(r, &e);
    if( rc != STATEIO_OK ) break;
    if( i >= c->nw || e.offset != c->w[i].start || e.end != c->w[i].end
        || !same_payload(&c->w[i], e.data, e.len) ){
      printf("  oracle: entry %d: reader gives [%llu,%llu), expected [%llu,%llu)\n", i,
             (unsigned long long)e.offset, (unsigned long long)e.end,
             i < c->nw ? (unsigned long long)c->w[i].start : 0ULL,
             i < c->nw ? (unsigned long long)c->w[i].end : 0ULL);
      ok = 0;
      break;
    }
    i++;
  }
  if( rc == STATEIO_TORN && c->has_raw ){
    CHECK_MSG(e.offset == c->w[c->nw - 1].end, "%s: the raw garbage is reported at %llu", c->name,
              (unsigned long long)e.offset);
    rc = logio_reader_next(r, &e);
  }
  CHECK_MSG(ok && i == c->nw && rc == STATEIO_DONE, "%s: the written file reads back as the %d entries written "
            "(read %d, then %s)", c->name, c->nw, i, stateio_errstr(rc));
  logio_reader_close(r);
  stateio_close_image(&img);
}

/* ---------------------------------------------------------------- (c) texts */

/* One read of the forward scan. */
typedef struct scan_item {
  int rc;                  /* logio_reader_next's status */
  uint64_t off, end;
  size_t len;              /* the entry's payload length (copy holds it) */
  int parsed;              /* stateio_parse_entry succeeded */
  stateio_entry se;        /* data points into copy */
  unsigned char *copy;
} scan_item;

typedef struct scan_result {
  scan_item *it;
  int n;
} scan_result;

static void scan_free(scan_result *s){
  for(int i = 0; i < s->n; i++) free(s->it[i].copy);
  free(s->it);
  memset(s, 0, sizeof(*s));
}

/*
** The reference's scan line for the entry p[0..n) at offset off:
** "entry KIND EPOCH LEN SHA256 OFFSET" (any kind byte, printed as it is), or
** "short LEN SHA256 OFFSET" for an entry shorter than a state entry header.
*/
static void scan_line(const unsigned char *p, size_t n, uint64_t off, char *out, size_t cap){
  char sha[65];
  if( n < STATEIO_ENTRY_HEADER ){
    sha256_hex(p, n, sha);
    snprintf(out, cap, "short %zu %s %llu", n, sha, (unsigned long long)off);
    return;
  }
  sha256_hex(p + STATEIO_ENTRY_HEADER, n - STATEIO_ENTRY_HEADER, sha);
  uint64_t epoch = 0;
  for(int i = 8; i >= 1; i--) epoch = (epoch << 8) | p[i];
  snprintf(out, cap, "entry %d %llu %zu %s %llu", p[0], (unsigned long long)epoch,
           n - STATEIO_ENTRY_HEADER, sha, (unsigned long long)off);
}

/* scan: a logio_reader from offset 0, each entry parsed as a state entry. */
static void scan_text(const stateio_image *img, sbuf *out, scan_result *res){
  logio_reader *r;
  memset(res, 0, sizeof(*res));
  int rc = logio_reader_open(&r, img, 0);
  if( rc ){
    sb_printf(out, "error %s\n", stateio_errstr(rc));
    return;
  }
  int cap = 0;
  for(int steps = 0; steps < MAX_STEPS; steps++){
    logio_entry e;
    rc = logio_reader_next(r, &e);
    if( res->n == cap ){
      cap = cap ? cap * 2 : 64;
      res->it = realloc(res->it, sizeof(scan_item) * (size_t)cap);
      if( !res->it ){ perror("realloc"); exit(2); }
    }
    scan_item *it = &res->it[res->n++];
    memset(it, 0, sizeof(*it));
    it->rc = rc;
    it->off = e.offset;
    it->end = e.end;
    if( rc == STATEIO_OK ){
      it->copy = xmalloc(e.len);
      memcpy(it->copy, e.data, e.len);
      it->len = e.len;
      char line[200];
      it->parsed = stateio_parse_entry(it->copy, e.len, &it->se) == STATEIO_OK;
      scan_line(it->copy, e.len, e.offset, line, sizeof(line));
      sb_printf(out, "%s\n", line);
      continue;
    }
    if( rc == STATEIO_CORRUPT_LOG ){ sb_printf(out, "corrupt\n"); continue; }
    /* Ours, not the reference's: a torn tail, after which the reader ends cleanly. */
    if( rc == STATEIO_TORN ){ sb_printf(out, "torn\n"); continue; }
    if( rc == STATEIO_DONE ){ sb_printf(out, "eof\n"); break; }
    sb_printf(out, "error %s\n", stateio_errstr(rc));
    break;
  }
  logio_reader_close(r);
}

/* rewind: repeated logio_rewind, each time with the previous start as limit. */
static int rewind_text(const stateio_image *img, sbuf *out, uint64_t *starts, uint64_t *ends, int max){
  uint64_t limit = stateio_image_size(img);
  int n = 0;
  for(int steps = 0; steps < MAX_STEPS; steps++){
    uint64_t s, e;
    int rc = logio_rewind(img, limit, &s, &e);
    if( rc == STATEIO_DONE ){ sb_printf(out, "eof\n"); break; }
    if( rc != STATEIO_OK ){ sb_printf(out, "error %s\n", stateio_errstr(rc)); break; }
    sb_printf(out, "entry %llu\n", (unsigned long long)s);
    if( n < max ){ starts[n] = s; ends[n] = e; }
    n++;
    if( s >= limit || e > limit ){ sb_printf(out, "error no progress\n"); break; }
    limit = s;
  }
  return n;
}

/* restore: stateio_restore, then the update reader to its end. */
static void restore_text(const stateio_image *img, sbuf *out){
  stateio_state st;
  int rc = stateio_restore(img, &st);
  if( rc ){
    sb_printf(out, "error %s\n", stateio_errstr(rc));
    return;
  }
  char sha[65];
  sb_printf(out, "epoch %llu\n", (unsigned long long)st.epoch);
  if( st.has_snapshot ){
    sha256_hex(st.snapshot, st.snapshot_len, sha);
    sb_printf(out, "state %zu %s\n", st.snapshot_len, sha);
  }else{
    sb_printf(out, "state nil\n");
  }
  stateio_updates *u;
  rc = stateio_updates_open(&u, img, &st);
  if( rc ){
    sb_printf(out, "error %s\n", stateio_errstr(rc));
  }else{
    for(int steps = 0; steps < MAX_STEPS; steps++){
      stateio_entry e;
      rc = stateio_updates_next(u, &e);
      if( rc == STATEIO_OK ){
        sha256_hex(e.data, e.len, sha);
        sb_printf(out, "update %zu %s\n", e.len, sha);
      }else if( rc == STATEIO_CORRUPT_LOG || rc == STATEIO_CORRUPT_ENTRY ){
        sb_printf(out, "error %s\n", stateio_errstr(rc));     /* the reader goes on */
      }else if( rc == STATEIO_DONE ){
        sb_printf(out, "eof\n");
        break;
      }else{
        sb_printf(out, "error %s\n", stateio_errstr(rc));
        break;
      }
    }
    stateio_updates_close(u);
  }
  stateio_state_clear(&st);
}

/* ---------------------------------------------------------------- (e) properties */

/* One expected read of the update reader: a written update, or a damaged region. */
typedef struct expect_item { const written *x; const unsigned char *data; size_t len; } expect_item;

typedef struct restore_expect {
  int must_fail;           /* the current epoch's snapshot is damaged */
  int may_fail;            /* epoch 0's first entry (an update) is damaged: either is right */
  uint64_t bad_offset;     /* must_fail/may_fail: where */
  uint64_t epoch;
  int has_snapshot;
  const written *snap;
  const written *last;     /* L, the last surviving entry (NULL: none) */
  uint64_t log_end;        /* end of the last complete entry, damaged or not */
  expect_item *seq;        /* the update reader's reads; x == NULL && data == NULL: corrupt */
  int nseq;
} restore_expect;

/*
** What restore must give, from the oracle. Let L be the last surviving
** entry. A snapshot: its epoch, its data, no updates. An update of epoch E:
** the snapshot at E (or none for E == 0 when the log begins with an
** update); if that snapshot is damaged restore must fail naming E, never
** fall back to an older epoch; otherwise the reader gives the surviving
** updates of E in order and one STATEIO_CORRUPT_LOG for each run of damaged
** entries between them. Damaged entries after L are a torn tail: not
** reported, the log simply ends.
*/
static void expect_restore(const gcase *c, restore_expect *x){
  memset(x, 0, sizeof(*x));
  x->seq = xmalloc(sizeof(expect_item) * (size_t)(c->nw + 2));
  int li = -1, lc = -1;
  for(int i = 0; i < c->nw; i++){
    if( c->w[i].survives ) li = i;
    if( c->w[i].end <= c->gold_len ) lc = i;
  }
  /*
  ** Entries after L that are complete (all their bytes in the file) but
  ** damaged, or lost with the rest of a damaged block, are corruption, not
  ** a torn tail. Only one damaged update of the current epoch that ends
  ** the file leaves the current epoch known (it is a damaged region at the
  ** end of the update reader); anything else might hide a snapshot, so
  ** restore must fail naming where the damage begins.
  */
  int damaged_tail = lc > li;
  if( damaged_tail ){
    const written *D = &c->w[li + 1];
    uint64_t cur = li < 0 ? 0 : c->w[li].kind == STATEIO_SNAPSHOT ? c->w[li].start : c->w[li].epoch;
    x->log_end = c->w[lc].end;
    if( lc != li + 1 || D->kind != STATEIO_UPDATE || D->end != c->gold_len || D->epoch != cur ){
      x->must_fail = 1;
      x->bad_offset = D->start;
      return;
    }
  }
  if( li < 0 ){
    if( damaged_tail ){
      /* Nothing but damaged updates: epoch 0, then the damaged region. */
      x->may_fail = 1;
      x->bad_offset = 0;
      x->seq[x->nseq++] = (expect_item){ NULL, NULL, 0 };
    }
    return;                                  /* nothing survives: epoch 0, no state */
  }
  const written *L = x->last = &c->w[li];
  if( !damaged_tail ) x->log_end = L->end;
  if( L->kind == STATEIO_SNAPSHOT ){
    x->epoch = L->start;
    x->has_snapshot = 1;
    x->snap = L;
    if( damaged_tail ) x->seq[x->nseq++] = (expect_item){ NULL, NULL, 0 };
    return;
  }
  uint64_t E = L->epoch;
  x->epoch = E;
  int si = -1;                               /* index of the epoch's snapshot */
  for(int i = 0; i < c->nw; i++) if( c->w[i].start == E ) si = i;
  int first;                                 /* first entry of the epoch's updates */
  if( si >= 0 && c->w[si].kind == STATEIO_SNAPSHOT ){
    if( !c->w[si].survives ){
      x->must_fail = 1;
      x->bad_offset = E;
      return;
    }
    x->has_snapshot = 1;
    x->snap = &c->w[si];
    first = si + 1;
  }else{
    first = 0;                               /* E == 0 and the log begins with an update */
    if( c->nw > 0 && !c->w[0].survives ){
      /* Nothing tells a damaged first update from a damaged first snapshot. */
      x->may_fail = 1;
      x->bad_offset = 0;
    }
  }
  int in_damage = 0;
  for(int i = first; i <= li; i++){
    if( !c->w[i].survives ){
      if( !in_damage ) x->seq[x->nseq++] = (expect_item){ NULL, NULL, 0 };
      in_damage = 1;
      continue;
    }
    in_damage = 0;
    x->seq[x->nseq++] = (expect_item){ &c->w[i], c->w[i].data, c->w[i].len };
  }
  if( damaged_tail ) x->seq[x->nseq++] = (expect_item){ NULL, NULL, 0 };
}

/*
** Check a restore of img against x (plus `extra`, an update appended after
** the log's last entry, when extra_data is not NULL). Returns the number of
** differences, printing the first few.
*/
static int check_restore(const gcase *c, const char *ctx, const stateio_image *img,
                         const restore_expect *x, const unsigned char *extra_data, size_t extra_len,
                         uint64_t extra_start){
  int bad = 0;
  stateio_state st;
  int rc = stateio_restore(img, &st);
  if( x->must_fail || (x->may_fail && rc != STATEIO_OK) ){
    /* The current epoch's snapshot is damaged: an error naming it, never an older epoch. */
    bad += !CHECK_MSG((rc == STATEIO_CORRUPT_LOG || rc == STATEIO_CORRUPT_ENTRY) && st.bad_offset == x->bad_offset,
                      "%s: %s: restore must fail naming the damaged snapshot at %llu: got %s, bad_offset %llu",
                      c->name, ctx, (unsigned long long)x->bad_offset, stateio_errstr(rc),
                      (unsigned long long)st.bad_offset);
    if( rc == STATEIO_OK ) stateio_state_clear(&st);
    return bad;
  }
  if( !CHECK_MSG(rc == STATEIO_OK, "%s: %s: restore: %s (bad_offset %llu)", c->name, ctx,
                 stateio_errstr(rc), (unsigned long long)st.bad_offset) ) return 1;
  /* The current epoch and its state. */
  bad += !CHECK_MSG(st.epoch == x->epoch && st.has_snapshot == x->has_snapshot,
                    "%s: %s: restore gives epoch %llu (snapshot %d), expected %llu (snapshot %d)",
                    c->name, ctx, (unsigned long long)st.epoch, st.has_snapshot,
                    (unsigned long long)x->epoch, x->has_snapshot);
  if( x->snap && st.has_snapshot ){
    bad += !CHECK_MSG(st.snapshot_len == x->snap->len
                      && (x->snap->len == 0 || memcmp(st.snapshot, x->snap->data, x->snap->len) == 0)
                      && st.prev_epoch == x->snap->epoch && st.snapshot_end == x->snap->end,
                      "%s: %s: restored state is not the snapshot written at %llu", c->name, ctx,
                      (unsigned long long)x->snap->start);
  }
  if( !extra_data ){
    /* Where the log ends: after L; whatever follows is a torn tail. */
    uint64_t want_end = x->log_end;
    bad += !CHECK_MSG(st.log_end == want_end && st.log_end + st.torn_len == stateio_image_size(img),
                      "%s: %s: log_end %llu torn_len %llu, expected log_end %llu of a %llu-byte file",
                      c->name, ctx, (unsigned long long)st.log_end, (unsigned long long)st.torn_len,
                      (unsigned long long)want_end, (unsigned long long)stateio_image_size(img));
  }
  /* The updates, in order. */
  stateio_updates *u;
  rc = stateio_updates_open(&u, img, &st);
  if( !CHECK_MSG(rc == STATEIO_OK, "%s: %s: updates_open: %s", c->name, ctx, stateio_errstr(rc)) ){
    stateio_state_clear(&st);
    return bad + 1;
  }
  int k = 0, nwant = x->nseq + (extra_data ? 1 : 0), mism = 0;
  for(int steps = 0; steps < MAX_STEPS; steps++){
    stateio_entry e;
    rc = stateio_updates_next(u, &e);
    if( rc == STATEIO_DONE ) break;
    if( k >= nwant ){
      printf("  %s: %s: update reader read %d: %s beyond the %d expected\n", c->name, ctx, k,
             stateio_errstr(rc), nwant);
      mism++;
      break;
    }
    expect_item want = k < x->nseq ? x->seq[k]
                                   : (expect_item){ NULL, extra_data, extra_len };
    uint64_t want_off = want.x ? want.x->start : extra_start;
    int ok;
    if( want.data == NULL && want.x == NULL ){
      ok = rc == STATEIO_CORRUPT_LOG;
    }else{
      ok = rc == STATEIO_OK && e.offset == want_off && e.len == want.len
        && (want.len == 0 || memcmp(e.data, want.data, want.len) == 0);
    }
    if( !ok ){
      if( mism < 3 )
        printf("  %s: %s: update reader read %d: %s at %llu (len %zu), expected %s at %llu\n",
               c->name, ctx, k, stateio_errstr(rc), (unsigned long long)e.offset,
               rc == STATEIO_OK ? e.len : (size_t)0,
               want.data == NULL && want.x == NULL ? "corrupt log" : "update",
               (unsigned long long)want_off);
      mism++;
      if( rc != STATEIO_OK && rc != STATEIO_CORRUPT_LOG && rc != STATEIO_CORRUPT_ENTRY ) break;
    }
    k++;
  }
  bad += !CHECK_MSG(mism == 0 && k == nwant, "%s: %s: update reader: %d reads, expected %d (%d differ)",
                    c->name, ctx, k, nwant, mism);
  stateio_updates_close(u);
  stateio_state_clear(&st);
  return bad;
}

/*
** (e) The properties of a damaged log (they hold for undamaged ones too).
** `scan` and `rw` are our scan and rewind of log.bin; ref_scan the
** reference's scan.txt.
*/
static void check_damaged(gcase *c, const stateio_image *img, const scan_result *scan,
                          const char *ref_scan, const uint64_t *rw_starts,
                          const uint64_t *rw_ends, int nrw){
  /*
  ** (i) Forward scan in skip mode: exactly the surviving entries, in order,
  ** each with the data written (a damaged entry is never returned as data,
  ** and nothing is invented). A torn tail is reported as STATEIO_TORN, which is
  ** not an error: the scan still ends with STATEIO_DONE.
  */
  int k = 0, extra = 0, bad_data = 0, errors = 0, steps_done = 0;
  for(int i = 0; i < scan->n; i++){
    const scan_item *it = &scan->it[i];
    if( it->rc == STATEIO_DONE ){ steps_done = 1; continue; }
    if( it->rc == STATEIO_CORRUPT_LOG || it->rc == STATEIO_TORN ) continue;
    if( it->rc != STATEIO_OK ){ errors++; continue; }
    while( k < c->nw && !c->w[k].survives ) k++;
    if( k >= c->nw ){ extra++; continue; }
    const written *x = &c->w[k++];
    if( it->off != x->start || it->end != x->end || !it->parsed || it->se.kind != x->kind
        || it->se.epoch != x->epoch || it->se.len != x->len
        || (x->len && memcmp(it->se.data, x->data, x->len) != 0) ){
      if( bad_data++ < 3 )
        printf("  %s: scan returned [%llu,%llu), expected the entry written at [%llu,%llu)\n", c->name,
               (unsigned long long)it->off, (unsigned long long)it->end,
               (unsigned long long)x->start, (unsigned long long)x->end);
    }
  }
  while( k < c->nw && !c->w[k].survives ) k++;
  CHECK_MSG(k == c->nw && extra == 0 && bad_data == 0,
            "%s: scan returns exactly the surviving entries (%d missing, %d extra, %d wrong)",
            c->name, k < c->nw ? c->nw - k : 0, extra, bad_data);
  CHECK_MSG(errors == 0 && steps_done, "%s: scan ends cleanly (%d errors)", c->name, errors);

  /* Every damaged entry (that begins within the file) lies in a reported damaged region. */
  int unreported = 0;
  for(int i = 0; i < c->nw; i++){
    const written *x = &c->w[i];
    if( x->survives || x->start >= c->gold_len ) continue;
    int found = 0;
    for(int j = 0; j < scan->n; j++){
      const scan_item *it = &scan->it[j];
      if( (it->rc == STATEIO_CORRUPT_LOG || it->rc == STATEIO_TORN) && it->off <= x->start && x->start < it->end ) found = 1;
    }
    if( !found ){
      unreported++;
      printf("  %s: damaged entry at %llu not inside any reported region\n", c->name,
             (unsigned long long)x->start);
    }
  }
  CHECK_MSG(unreported == 0, "%s: damage is reported where it is", c->name);

  /* Every entry line of the reference's scan appears in ours, in the same order. */
  {
    const char *p = ref_scan;
    int total = 0, found = 0;
    int j = 0;       /* position in our scan items */
    while( *p ){
      const char *nl = strchr(p, '\n');
      size_t n = nl ? (size_t)(nl - p) : strlen(p);
      if( n > 6 && (memcmp(p, "entry ", 6) == 0 || memcmp(p, "short ", 6) == 0) ){
        total++;
        while( j < scan->n ){
          const scan_item *it = &scan->it[j++];
          if( it->rc != STATEIO_OK ) continue;
          char mine[200];
          scan_line(it->copy, it->len, it->off, mine, sizeof(mine));
          if( strlen(mine) == n && memcmp(mine, p, n) == 0 ){ found++; break; }
        }
      }
      p = nl ? nl + 1 : p + n;
    }
    CHECK_MSG(found == total, "%s: every entry of the reference's scan is in ours, in order (%d of %d)",
              c->name, found, total);
  }

  /* (ii) The rewind walk: the surviving entries' offsets, newest first. */
  {
    int j = 0, ok = 1;
    for(int i = c->nw - 1; i >= 0; i--){
      if( !c->w[i].survives ) continue;
      if( j >= nrw || rw_starts[j] != c->w[i].start || rw_ends[j] != c->w[i].end ) ok = 0;
      j++;
    }
    CHECK_MSG(ok && j == nrw, "%s: rewind walks the %d surviving entries newest first (found %d)",
              c->name, j, nrw);
  }

  /*
  ** (iii) Restore: the last surviving entry decides (see expect_restore());
  ** never an older epoch's state presented as current.
  */
  restore_expect x;
  expect_restore(c, &x);
  check_restore(c, "restore", img, &x, NULL, 0, 0);

  /*
  ** (f) A writer on a copy appends an update: the torn tail (if any) is
  ** truncated first, so the file ends exactly after L plus the new entry,
  ** and a restore returns the same epoch with the new update last.
  ** Not for a log whose restore must fail (a writer must not build on it).
  */
  if( !x.must_fail && !x.may_fail ){
    char copy[700];
    static const char more[] = "golden: appended after the last entry";
    snprintf(copy, sizeof(copy), "%s/%s.copy", tmpdir, c->name);
    if( CHECK(write_file(copy, c->gold, c->gold_len) == 0) ){
      stateio_writer *w;
      int rc = stateio_writer_open(&w, copy, 0);
      if( CHECK_MSG(rc == STATEIO_OK, "%s: writer_open on a copy: %s", c->name, stateio_errstr(rc)) ){
        rc = stateio_update(w, more, sizeof(more) - 1);
        CHECK_MSG(rc == STATEIO_OK, "%s: writer appends to the copy: %s", c->name, stateio_errstr(rc));
        CHECK(stateio_writer_close(w) == STATEIO_OK);
      }
      uint64_t end = x.log_end;
      if( end != (x.last ? x.last->end : 0) && end % LOGIO_BLOCK ){
        /* After a damaged last entry the writer begins the next block (zero padding first). */
        end += LOGIO_BLOCK - end % LOGIO_BLOCK;
      }
      uint64_t want = end + logio_encoded_size(end, STATEIO_ENTRY_HEADER + sizeof(more) - 1);
      CHECK_MSG(file_size(copy) == want, "%s: after the append the file is %llu bytes, expected %llu",
                c->name, (unsigned long long)file_size(copy), (unsigned long long)want);
      stateio_image img2;
      if( CHECK(stateio_open_image(copy, &img2) == STATEIO_OK) ){
        check_restore(c, "restore after an append", &img2, &x, (const unsigned char*)more,
                      sizeof(more) - 1, model_start(end));
        stateio_close_image(&img2);
      }
      unlink(copy);
    }
  }
  free(x.seq);
}

/* ---------------------------------------------------------------- one case */

static void run_case(const char *golden, const char *name){
  int failed_before = test_failures();
  gcase c;
  memset(&c, 0, sizeof(c));
  c.name = name;
  snprintf(c.dir, sizeof(c.dir), "%s/%s", golden, name);
  snprintf(c.gold_path, sizeof(c.gold_path), "%s/log.bin", c.dir);
  char log[700];
  snprintf(log, sizeof(log), "%s/%s.log", tmpdir, name);

  /* (a) Replay, mutate, compare bytes. */
  if( replay(&c, log) == 0 ){
    c.orig = read_file(log, &c.orig_len);
    if( !c.orig ) c.orig = xmalloc(1);
    check_oracle(&c, log);
    size_t mlen;
    unsigned char *m = mutate(&c, &mlen);
    c.gold = read_file(c.gold_path, &c.gold_len);
    if( CHECK_MSG(c.gold != NULL, "%s: cannot read %s", name, c.gold_path) ){
      size_t i = 0;
      while( i < mlen && i < c.gold_len && m[i] == c.gold[i] ) i++;
      CHECK_MSG(mlen == c.gold_len && i == mlen,
                "%s: our file (%zu bytes) equals log.bin (%zu bytes); first difference at %zu",
                name, mlen, c.gold_len, i);
    }
    free(m);
  }
  c.damaged = c.has_mutate || c.has_raw;
  if( !c.gold ) c.gold = read_file(c.gold_path, &c.gold_len);
  if( !c.gold ){
    printf("golden %s: FAILED (no log.bin)\n", name);
    return;
  }

  /* Which written entries survive in log.bin. */
  for(int i = 0; i < c.nw; i++){
    written *x = &c.w[i];
    x->survives = x->end <= c.gold_len && x->end <= c.orig_len
               && memcmp(c.gold + x->start, c.orig + x->start, (size_t)(x->end - x->start)) == 0;
  }
  /*
  ** A damaged payload proves nothing about where the next record starts
  ** (resync.c): the rest of its block is lost, reported as damaged, and
  ** the entries that begin there do not survive either. (A damaged header
  ** field is proven by the record's checksum: nothing more is lost.)
  */
  for(size_t k = 0; k < c.gold_len && k < c.orig_len; k++){
    if( c.gold[k] == c.orig[k] ) continue;
    uint64_t block = k - k % LOGIO_BLOCK;
    for(int i = 0; i < c.nw; i++){
      written *x = &c.w[i];
      if( x->start > k || x->end <= k ) continue;
      uint64_t rec = x->start > block ? x->start : block;   /* the record that holds byte k */
      if( k - rec < LOGIO_HEADER ) continue;
      for(int j = i + 1; j < c.nw; j++){
        if( c.w[j].start < block + LOGIO_BLOCK ) c.w[j].survives = 0;
      }
    }
  }

  /* (c) Our restore, scan and rewind of log.bin. */
  stateio_image img;
  int rc = stateio_open_image(c.gold_path, &img);
  if( CHECK_MSG(rc == STATEIO_OK, "%s: open log.bin: %s", name, stateio_errstr(rc)) ){
    sbuf rs = {0}, sc = {0}, rw = {0};
    scan_result scan;
    int maxrw = c.nw + 16;
    uint64_t *rw_starts = xmalloc(sizeof(uint64_t) * (size_t)maxrw);
    uint64_t *rw_ends = xmalloc(sizeof(uint64_t) * (size_t)maxrw);
    restore_text(&img, &rs);
    scan_text(&img, &sc, &scan);
    int nrw = rewind_text(&img, &rw, rw_starts, rw_ends, maxrw);
    if( nrw > maxrw ) nrw = maxrw;

    char path[1200];
    size_t n;
    snprintf(path, sizeof(path), "%s/restore.txt", c.dir);
    char *ref_restore = (char*)read_file(path, &n);
    if( ref_restore ){ ref_restore = realloc(ref_restore, n + 1); ref_restore[n] = 0; }
    snprintf(path, sizeof(path), "%s/scan.txt", c.dir);
    char *ref_scan = (char*)read_file(path, &n);
    if( ref_scan ){ ref_scan = realloc(ref_scan, n + 1); ref_scan[n] = 0; }
    snprintf(path, sizeof(path), "%s/rewind.txt", c.dir);
    char *ref_rewind = (char*)read_file(path, &n);
    if( ref_rewind ){ ref_rewind = realloc(ref_rewind, n + 1); ref_rewind[n] = 0; }
    CHECK_MSG(ref_restore && ref_scan && ref_rewind, "%s: restore.txt, scan.txt, rewind.txt present", name);

    if( !c.damaged && ref_restore && ref_scan && ref_rewind ){
      /* (d) An undamaged log: exactly what the reference gives. */
      if( !CHECK_MSG(strcmp(sb_str(&rs), ref_restore) == 0, "%s: restore equals restore.txt", name) )
        show_diff("restore", ref_restore, sb_str(&rs));
      if( !CHECK_MSG(strcmp(sb_str(&sc), ref_scan) == 0, "%s: scan equals scan.txt", name) )
        show_diff("scan", ref_scan, sb_str(&sc));
      if( !CHECK_MSG(strcmp(sb_str(&rw), ref_rewind) == 0, "%s: rewind equals rewind.txt", name) )
        show_diff("rewind", ref_rewind, sb_str(&rw));
    }
    restore_expect want;
    expect_restore(&c, &want);
    if( c.damaged && ref_restore && strncmp(ref_restore, "error", 5) == 0 && !want.must_fail ){
      /* The torn cases: the reference cannot restore; we must. */
      CHECK_MSG(strncmp(sb_str(&rs), "epoch ", 6) == 0, "%s: restore succeeds where the reference "
                "fails (%s)", name, sb_str(&rs));
    }
    free(want.seq);
    /* (e) The properties; for undamaged logs they must hold as well. */
    check_damaged(&c, &img, &scan, ref_scan ? ref_scan : "", rw_starts, rw_ends, nrw);

    if( test_failures() != failed_before && c.damaged ){
      printf("  %s: our restore:\n%s  our scan:\n%s  our rewind:\n%s", name, sb_str(&rs), sb_str(&sc),
             sb_str(&rw));
    }
    free(ref_restore); free(ref_scan); free(ref_rewind);
    free(rw_starts); free(rw_ends);
    scan_free(&scan);
    sb_free(&rs); sb_free(&sc); sb_free(&rw);
    stateio_close_image(&img);
  }

  if( test_failures() == failed_before ){
    printf("golden %s: ok (%d entries%s)\n", name, c.nw, c.damaged ? ", damaged" : "");
  }else{
    printf("golden %s: FAILED (%d checks)\n", name, test_failures() - failed_before);
  }
  unlink(log);
  for(int i = 0; i < c.nw; i++) free(c.w[i].data);
  free(c.w);
  free(c.orig);
  free(c.gold);
}

static int cmp_str(const void *a, const void *b){
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv){
  const char *golden = argc > 1 ? argv[1] : "test/golden";
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *t = getenv("TMPDIR");
  snprintf(tmpdir, sizeof(tmpdir), "%s/golden_test.XXXXXX", t && *t ? t : "/tmp");
  if( !mkdtemp(tmpdir) ){
    perror("mkdtemp");
    CHECK(0);
    return test_report();
  }

  DIR *d = opendir(golden);
  CHECK_MSG(d != NULL, "cannot open the golden directory %s: %s", golden, strerror(errno));
  char **names = NULL;
  int n = 0, cap = 0;
  struct dirent *de;
  while( d && (de = readdir(d)) != NULL ){
    if( de->d_name[0] == '.' ) continue;
    char path[1200];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", golden, de->d_name);
    if( stat(path, &st) != 0 || !S_ISDIR(st.st_mode) ) continue;
    if( n == cap ){
      cap = cap ? cap * 2 : 32;
      names = realloc(names, sizeof(char*) * (size_t)cap);
      if( !names ){ perror("realloc"); exit(2); }
    }
    names[n++] = strdup(de->d_name);
  }
  if( d ) closedir(d);
  if( n > 0 ) qsort(names, (size_t)n, sizeof(char*), cmp_str);
  CHECK_MSG(n >= MIN_CASES, "golden cases found in %s: %d (expected at least %d)", golden, n, MIN_CASES);

  for(int i = 0; i < n; i++){
    run_case(golden, names[i]);
    free(names[i]);
  }
  free(names);
  rmdir(tmpdir);
  return test_report();
}
