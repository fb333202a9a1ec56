/* SPDX-License-Identifier: MIT */
/*
** salvage.c - stateio salvage DAMAGED OUT: a new log with every entry of a
** damaged log that can be read, in order, re-encoded through the writer.
**
** The entries come from the library's scan. A snapshot is always kept (its
** bytes passed their checksums) and begins a new epoch in OUT, so OUT's
** epochs are consistent whatever the damage did to the chain of previous
** epochs. An update is kept when the epoch it names is the one whose
** snapshot was kept last (or epoch 0, when the log begins with updates):
** an update whose epoch's snapshot was lost cannot be placed, and is
** dropped. Every damaged region, bad entry and dropped update, and the torn
** tail, is reported on stderr with its offset and length.
**
** OUT is written beside its final name (OUT.salvage.tmp), synced, and
** linked to OUT, which must not exist: an existing file is never replaced.
*/
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

typedef struct salvage_state {
  stateio_writer *w;
  int seen;                   /* an entry or region was seen */
  int placed;                 /* OUT's current epoch is a source epoch ... */
  uint64_t src_epoch;         /* ... this one */
  uint64_t snapshots, updates;
  uint64_t dropped, dropped_bytes;
} salvage_state;

__attribute__((format(printf, 4, 5)))
static void drop(salvage_state *s, uint64_t off, uint64_t len, const char *fmt, ...){
  char why[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  s->dropped++;
  s->dropped_bytes += len;
  cli_error("salvage: dropped offset %" PRIu64 " length %" PRIu64 ": %s", off, len, why);
}

static int salvage_entry(void *arg, int rc, const stateio_entry *e){
  salvage_state *s = arg;
  int first = !s->seen;
  s->seen = 1;
  uint64_t len = e->end - e->offset;
  if( rc == STATEIO_CORRUPT_LOG ){
    drop(s, e->offset, len, "damaged region (%s)", e->problem);
    return STATEIO_OK;
  }
  if( e->kind == 0 ){
    drop(s, e->offset, len, "not a state entry (%s)", e->problem);
    return STATEIO_OK;
  }
  if( e->kind == STATEIO_SNAPSHOT ){
    /* Whole and checksummed: kept, whatever previous epoch it named. */
    rc = stateio_snapshot(s->w, e->data, e->len);
    if( rc ) return rc;
    s->snapshots++;
    s->placed = 1;
    s->src_epoch = e->offset;
    return STATEIO_OK;
  }
  if( first && e->offset == 0 && e->epoch == 0 ){
    s->placed = 1;            /* the log begins with updates: epoch 0, no snapshot */
    s->src_epoch = 0;
  }
  if( !s->placed || e->epoch != s->src_epoch ){
    drop(s, e->offset, len, "update of epoch %" PRIu64 ", whose snapshot was lost", e->epoch);
    return STATEIO_OK;
  }
  rc = stateio_update(s->w, e->data, e->len);
  if( rc ) return rc;
  s->updates++;
  return STATEIO_OK;
}

int cli_salvage(const cli_verb *v, int argc, char **argv){
  char *pos[2];
  int n;
  int rc = cli_parse(v, argc, argv, NULL, pos, 2, 2, &n);
  if( rc ) return rc == CLI_HELP ? CLI_OK : rc;
  const char *in = pos[0], *out = pos[1];
  struct stat st;
  if( lstat(out, &st) == 0 ){
    cli_error("salvage: '%s' exists: salvage writes a new file and never replaces one", out);
    return CLI_ERROR;
  }
  stateio_image img;
  if( cli_open_log(in, &img, 0) ) return CLI_ERROR;
  if( stateio_image_size(&img) > 0 && !logio_holds_record(&img) ){
    cli_error("salvage: no block of '%s' holds a log record: it may not be a stateio log", in);
  }

  size_t tlen = strlen(out) + sizeof(".salvage.tmp");
  char *tmp = malloc(tlen);
  if( !tmp ){
    stateio_close_image(&img);
    cli_error("salvage: out of memory");
    return CLI_ERROR;
  }
  snprintf(tmp, tlen, "%s.salvage.tmp", out);
  int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, cli_copy_mode(img.fd));
  if( fd < 0 ){
    cli_error("salvage: cannot create '%s': %s", tmp, strerror(errno));
    stateio_close_image(&img);
    free(tmp);
    return CLI_ERROR;
  }

  salvage_state s;
  memset(&s, 0, sizeof(s));
  const char *step = "write";
  uint64_t torn_off = 0, torn_len = 0;
  rc = stateio_writer_open_fd(&s.w, fd, 0, 0, STATEIO_SYNC);
  if( rc == STATEIO_OK ) rc = stateio_writer_begin_bulk(s.w);
  if( rc == STATEIO_OK ){
    rc = cli_walk("salvage", &img, salvage_entry, &s, &torn_off, &torn_len);
    if( rc ) step = "salvage";
  }
  if( rc == STATEIO_OK ) rc = stateio_writer_commit(s.w);
  if( s.w ){
    int crc = stateio_writer_close(s.w);
    if( rc == STATEIO_OK ) rc = crc;
  }
  if( rc == STATEIO_OK && torn_len > 0 ){
    drop(&s, torn_off, torn_len, "torn tail (an append cut short)");
  }
  if( rc == STATEIO_OK && fsync(fd) != 0 ) rc = STATEIO_IOERR;
  int e = errno;
  close(fd);
  errno = e;
  stateio_close_image(&img);
  if( rc ){
    cli_error("salvage: cannot %s '%s': %s", step, strcmp(step, "write") ? in : tmp, cli_strstatus(rc));
    unlink(tmp);
    free(tmp);
    return CLI_ERROR;
  }
  if( link(tmp, out) != 0 ){
    cli_error("salvage: cannot create '%s': %s", out, strerror(errno));
    unlink(tmp);
    free(tmp);
    return CLI_ERROR;
  }
  unlink(tmp);
  free(tmp);
  if( cli_sync_dir_of(out) != 0 ){
    cli_error("salvage: cannot sync the directory of '%s': %s", out, strerror(errno));
    return CLI_ERROR;
  }
  char b[32];
  if( s.dropped ){
    cli_error("salvage: wrote '%s': %" PRIu64 " snapshot%s and %" PRIu64 " update%s; dropped %"
              PRIu64 " (%s)", out, s.snapshots, s.snapshots == 1 ? "" : "s", s.updates,
              s.updates == 1 ? "" : "s", s.dropped, cli_size(s.dropped_bytes, b, sizeof(b)));
    return CLI_DAMAGED;
  }
  cli_error("salvage: wrote '%s': %" PRIu64 " snapshot%s and %" PRIu64 " update%s; nothing dropped",
            out, s.snapshots, s.snapshots == 1 ? "" : "s", s.updates, s.updates == 1 ? "" : "s");
  return CLI_OK;
}
