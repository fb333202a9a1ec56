/* SPDX-License-Identifier: MIT */
/*
** inspect.c - stateio check, dump and stat: each one walk over the log
** with the library's scan (stateio_scan_*), which says what every byte
** of the log is: an entry, a damaged region, a bad entry or the torn tail.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_walk(const char *what, const stateio_image *img, cli_walk_fn fn, void *arg,
             uint64_t *torn_off, uint64_t *torn_len){
  stateio_scan *s;
  *torn_off = *torn_len = 0;
  int rc = stateio_scan_open(&s, img, 0, 0);
  if( rc ) return rc;
  /* The whole file in order: read ahead and verify on a second thread (large files only). */
  rc = stateio_scan_parallel(s);
  if( rc ){
    stateio_scan_close(s);
    return rc;
  }
  cli_progress pr;
  cli_progress_start(&pr, what, stateio_image_size(img));
  for(;;){
    stateio_entry e;
    rc = stateio_scan_next(s, &e);
    if( rc == STATEIO_DONE ){
      *torn_off = stateio_scan_torn(s, torn_len);
      rc = STATEIO_OK;
      break;
    }
    if( rc != STATEIO_OK && rc != STATEIO_CORRUPT_LOG && rc != STATEIO_CORRUPT_ENTRY ) break;
    if( (rc = fn(arg, rc, &e)) != STATEIO_OK ) break;
    cli_progress_update(&pr, e.end);
  }
  cli_progress_end(&pr);
  stateio_scan_close(s);
  return rc;
}

/* ---------------------------------------------------------------- check */

typedef struct check_state {
  uint64_t entries, problems;
} check_state;

static int check_entry(void *arg, int rc, const stateio_entry *e){
  check_state *c = arg;
  if( rc == STATEIO_OK ){
    c->entries++;
    return STATEIO_OK;
  }
  c->problems++;
  printf("offset %" PRIu64 " length %" PRIu64 ": %s: %s\n", e->offset, e->end - e->offset,
         rc == STATEIO_CORRUPT_LOG ? "damaged region" : "bad entry", e->problem);
  return STATEIO_OK;
}

int cli_check(const cli_verb *v, int argc, char **argv){
  char *pos[1];
  int n;
  int rc = cli_parse(v, argc, argv, NULL, pos, 1, 1, &n);
  if( rc ) return rc == CLI_HELP ? CLI_OK : rc;
  stateio_image img;
  if( cli_open_log(pos[0], &img, 1) ) return CLI_ERROR;

  check_state c = { 0, 0 };
  uint64_t torn_off, torn_len;
  rc = cli_walk("check", &img, check_entry, &c, &torn_off, &torn_len);
  if( rc ){
    cli_error("cannot read '%s': %s", pos[0], cli_strstatus(rc));
    stateio_close_image(&img);
    return CLI_ERROR;
  }
  if( torn_len > 0 ){
    printf("offset %" PRIu64 " length %" PRIu64 ": torn tail: an append cut short"
           " (not damage: restore ignores it, the next writer cuts it)\n", torn_off, torn_len);
  }
  /* What a program that restores the log gets. */
  stateio_state st;
  rc = stateio_restore(&img, &st);
  if( rc == STATEIO_IOERR || rc == STATEIO_NOMEM ){
    cli_error("cannot read '%s': %s", pos[0], cli_strstatus(rc));
    stateio_close_image(&img);
    return CLI_ERROR;
  }
  if( rc ){
    c.problems++;
    printf("offset %" PRIu64 ": restore fails: %s\n", st.bad_offset, stateio_errstr(rc));
  }
  stateio_state_clear(&st);
  uint64_t size = stateio_image_size(&img);
  stateio_close_image(&img);
  if( c.problems ){
    printf("%s: damaged: %" PRIu64 " problem%s\n", pos[0], c.problems, c.problems == 1 ? "" : "s");
    return CLI_DAMAGED;
  }
  printf("%s: healthy: %" PRIu64 " entr%s, %" PRIu64 " bytes%s\n", pos[0], c.entries,
         c.entries == 1 ? "y" : "ies", size, torn_len ? ", a torn tail" : "");
  return CLI_OK;
}

/* ---------------------------------------------------------------- dump */

typedef struct dump_state {
  int json;
  uint64_t max;               /* bytes of data shown at most (UINT64_MAX: all) */
  int damaged;
} dump_state;

/* The data of an entry, at most d->max bytes of it (cut on a character). */
static void dump_data(const dump_state *d, const unsigned char *p, size_t n){
  size_t show = n;
  if( (uint64_t)n > d->max ){
    show = (size_t)d->max;
    while( show > 0 && (p[show] & 0xc0) == 0x80 ) show--;
  }
  if( d->json ){
    int text = cli_is_utf8(p, show);
    printf(",\"encoding\":\"%s\",\"data\":", text ? "utf8" : "hex");
    if( text ){
      cli_put_json_string(stdout, p, show);
    }else{
      putchar('"');
      cli_put_hex(stdout, p, show);
      putchar('"');
    }
    if( show < n ) fputs(",\"truncated\":true", stdout);
  }else{
    putchar(' ');
    cli_put_data(stdout, p, show);
    if( show < n ) fputs("...", stdout);
  }
}

static int dump_entry(void *arg, int rc, const stateio_entry *e){
  dump_state *d = arg;
  if( rc == STATEIO_OK ){
    int snap = e->kind == STATEIO_SNAPSHOT;
    int has_prev = snap && e->offset != 0;   /* the first epoch has none before it */
    uint64_t epoch = snap ? e->offset : e->epoch;
    if( d->json ){
      printf("{\"offset\":%" PRIu64 ",\"end\":%" PRIu64 ",\"type\":\"%s\",\"epoch\":%" PRIu64,
             e->offset, e->end, snap ? "snapshot" : "update", epoch);
      if( has_prev ) printf(",\"prev_epoch\":%" PRIu64, e->epoch);
      else fputs(",\"prev_epoch\":null", stdout);
      printf(",\"length\":%zu", e->len);
      dump_data(d, e->data, e->len);
      puts("}");
    }else{
      printf("%" PRIu64 " %s %" PRIu64, e->offset, snap ? "snapshot" : "update", epoch);
      if( has_prev ) printf(" %" PRIu64, e->epoch);
      else fputs(" -", stdout);
      printf(" %zu", e->len);
      dump_data(d, e->data, e->len);
      putchar('\n');
    }
    return STATEIO_OK;
  }
  const char *type = rc == STATEIO_CORRUPT_LOG ? "damaged" : "bad";
  d->damaged = 1;
  if( d->json ){
    printf("{\"offset\":%" PRIu64 ",\"end\":%" PRIu64 ",\"type\":\"%s\",\"length\":%" PRIu64
           ",\"problem\":", e->offset, e->end, type, e->end - e->offset);
    cli_put_json_string(stdout, (const unsigned char*)e->problem, strlen(e->problem));
    puts("}");
  }else{
    printf("%" PRIu64 " %s - - %" PRIu64 " %s\n", e->offset, type, e->end - e->offset, e->problem);
  }
  return STATEIO_OK;
}

int cli_dump(const cli_verb *v, int argc, char **argv){
  dump_state d = { 0, UINT64_MAX, 0 };
  const char *max = NULL;
  cli_opt opts[] = {
    { "json", &d.json, NULL },
    { "max-data", NULL, &max },
    { NULL, NULL, NULL }
  };
  char *pos[1];
  int n;
  int rc = cli_parse(v, argc, argv, opts, pos, 1, 1, &n);
  if( rc ) return rc == CLI_HELP ? CLI_OK : rc;
  if( max && cli_parse_count("--max-data", max, 0, UINT64_MAX - 1, &d.max) ) return CLI_ERROR;
  stateio_image img;
  if( cli_open_log(pos[0], &img, 1) ) return CLI_ERROR;
  uint64_t torn_off, torn_len;
  rc = cli_walk("dump", &img, dump_entry, &d, &torn_off, &torn_len);
  stateio_close_image(&img);
  if( rc == STATEIO_OK && torn_len > 0 ){
    if( d.json ){
      printf("{\"offset\":%" PRIu64 ",\"end\":%" PRIu64 ",\"type\":\"torn\",\"length\":%" PRIu64
             ",\"problem\":\"torn tail\"}\n", torn_off, torn_off + torn_len, torn_len);
    }else{
      printf("%" PRIu64 " torn - - %" PRIu64 " torn tail\n", torn_off, torn_len);
    }
  }
  if( fflush(stdout) != 0 || ferror(stdout) ){
    cli_error("cannot write the dump: %s", strerror(errno));
    return CLI_ERROR;
  }
  if( rc ){
    cli_error("cannot read '%s': %s", pos[0], cli_strstatus(rc));
    return CLI_ERROR;
  }
  return d.damaged ? CLI_DAMAGED : CLI_OK;
}

/* ---------------------------------------------------------------- stat */

/* One epoch as the scan found it. */
typedef struct epoch_row {
  uint64_t epoch;
  uint64_t prev_epoch;
  uint64_t start;             /* where its bytes begin (its snapshot, 0 for epoch 0) */
  int snapshot;               /* 1 read, 0 none (epoch 0), -1 not found (damaged) */
  uint64_t snapshot_len;
  uint64_t updates;
} epoch_row;

typedef struct stat_state {
  epoch_row *rows;
  size_t nrows, cap;
  uint64_t updates, snapshots, data_bytes;
  uint64_t regions, region_bytes, bad;
  int nomem;
} stat_state;

static epoch_row *add_row(stat_state *s, uint64_t epoch, uint64_t start, int snapshot){
  if( s->nrows == s->cap ){
    size_t cap = s->cap ? s->cap * 2 : 16;
    epoch_row *r = realloc(s->rows, cap * sizeof(*r));
    if( !r ) return NULL;
    s->rows = r;
    s->cap = cap;
  }
  epoch_row *r = &s->rows[s->nrows++];
  memset(r, 0, sizeof(*r));
  r->epoch = epoch;
  r->start = start;
  r->snapshot = snapshot;
  return r;
}

static int stat_entry(void *arg, int rc, const stateio_entry *e){
  stat_state *s = arg;
  if( rc == STATEIO_CORRUPT_LOG ){
    s->regions++;
    s->region_bytes += e->end - e->offset;
    return STATEIO_OK;
  }
  if( rc == STATEIO_CORRUPT_ENTRY ){
    s->bad++;
    return STATEIO_OK;
  }
  s->data_bytes += e->len;
  if( e->kind == STATEIO_SNAPSHOT ){
    epoch_row *r = add_row(s, e->offset, e->offset, 1);
    if( !r ) return STATEIO_NOMEM;
    r->prev_epoch = e->epoch;
    r->snapshot_len = e->len;
    s->snapshots++;
    return STATEIO_OK;
  }
  epoch_row *r = s->nrows ? &s->rows[s->nrows - 1] : NULL;
  if( !r || r->epoch != e->epoch ){
    /* An epoch whose snapshot the scan did not read (damage before it). */
    r = add_row(s, e->epoch, e->epoch, e->epoch == 0 && !s->nrows ? 0 : -1);
    if( !r ) return STATEIO_NOMEM;
  }
  r->updates++;
  s->updates++;
  return STATEIO_OK;
}

int cli_stat(const cli_verb *v, int argc, char **argv){
  char *pos[1];
  int n;
  int rc = cli_parse(v, argc, argv, NULL, pos, 1, 1, &n);
  if( rc ) return rc == CLI_HELP ? CLI_OK : rc;
  stateio_image img;
  if( cli_open_log(pos[0], &img, 1) ) return CLI_ERROR;

  stat_state s;
  memset(&s, 0, sizeof(s));
  uint64_t torn_off, torn_len;
  rc = cli_walk("stat", &img, stat_entry, &s, &torn_off, &torn_len);
  stateio_state st;
  memset(&st, 0, sizeof(st));
  int rrc = rc ? rc : stateio_restore(&img, &st);
  int64_t id = 0;
  int idrc = stateio_log_id(img.fd, &id);
  uint64_t size = stateio_image_size(&img);
  stateio_close_image(&img);
  if( rc || rrc == STATEIO_IOERR || rrc == STATEIO_NOMEM ){
    cli_error("cannot read '%s': %s", pos[0], cli_strstatus(rc ? rc : rrc));
    stateio_state_clear(&st);
    free(s.rows);
    return CLI_ERROR;
  }
  uint64_t end = torn_len ? torn_off : size;
  char b1[32], b2[32];

  printf("log         %s\n", pos[0]);
  if( size < 1024 ) printf("size        %" PRIu64 " bytes\n", size);
  else printf("size        %" PRIu64 " bytes (%s)\n", size, cli_size(size, b1, sizeof(b1)));
  if( idrc == STATEIO_OK ) printf("log_id      %" PRId64 "\n", id);
  printf("entries     %" PRIu64 ": %" PRIu64 " update%s, %" PRIu64 " snapshot%s, %s of data\n",
         s.updates + s.snapshots, s.updates, s.updates == 1 ? "" : "s",
         s.snapshots, s.snapshots == 1 ? "" : "s", cli_size(s.data_bytes, b2, sizeof(b2)));
  printf("epochs      %zu\n", s.nrows);
  if( rrc == STATEIO_OK ){
    uint64_t updates = 0;
    for(size_t i = 0; i < s.nrows; i++){
      if( s.rows[i].epoch == st.epoch ) updates = s.rows[i].updates;
    }
    if( st.has_snapshot ){
      printf("current     epoch %" PRIu64 ": a snapshot of %zu bytes, %" PRIu64 " update%s\n",
             st.epoch, st.snapshot_len, updates, updates == 1 ? "" : "s");
    }else{
      printf("current     epoch %" PRIu64 ": no snapshot, %" PRIu64 " update%s\n",
             st.epoch, updates, updates == 1 ? "" : "s");
    }
  }else{
    printf("current     unknown: restore fails at offset %" PRIu64 ": %s\n",
           st.bad_offset, stateio_errstr(rrc));
  }
  if( s.regions + s.bad == 0 ){
    printf("damage      none\n");
  }else{
    printf("damage      %" PRIu64 " damaged region%s (%" PRIu64 " bytes), %" PRIu64 " bad entr%s"
           " (stateio check shows where)\n", s.regions, s.regions == 1 ? "" : "s",
           s.region_bytes, s.bad, s.bad == 1 ? "y" : "ies");
  }
  if( torn_len ){
    printf("torn tail   %" PRIu64 " bytes at offset %" PRIu64 " (an append cut short: the next"
           " writer cuts it)\n", torn_len, torn_off);
  }else{
    printf("torn tail   none\n");
  }
  if( s.nrows ){
    printf("\n%-12s %-12s %-12s %-12s %s\n", "epoch", "prev_epoch", "snapshot", "updates", "bytes");
  }
  for(size_t i = 0; i < s.nrows; i++){
    epoch_row *r = &s.rows[i];
    uint64_t next = i + 1 < s.nrows ? s.rows[i + 1].start : end;
    char prev[24], snap[24];
    if( r->snapshot == 1 ){
      if( r->start == 0 ) snprintf(prev, sizeof(prev), "-");
      else snprintf(prev, sizeof(prev), "%" PRIu64, r->prev_epoch);
      snprintf(snap, sizeof(snap), "%" PRIu64, r->snapshot_len);
    }else{
      snprintf(prev, sizeof(prev), "-");
      snprintf(snap, sizeof(snap), "%s", r->snapshot == 0 ? "-" : "lost");
    }
    printf("%-12" PRIu64 " %-12s %-12s %-12" PRIu64 " %" PRIu64 "%s\n", r->epoch, prev, snap,
           r->updates, next > r->start ? next - r->start : 0,
           rrc == STATEIO_OK && r->epoch == st.epoch ? "  (current)" : "");
  }
  int damaged = s.regions + s.bad > 0 || rrc != STATEIO_OK;
  stateio_state_clear(&st);
  free(s.rows);
  return damaged ? CLI_DAMAGED : CLI_OK;
}
