/* SPDX-License-Identifier: MIT */
/*
** compact.c - stateio compact LOG [--keep N]: stateio_compact(), which
** keeps the last N epochs and replaces the log crash-safely. The progress
** line follows the size of the new log (LOG.compact) as it is written.
*/
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

typedef struct watch_state {
  char *tmp;                  /* LOG.compact */
  uint64_t total;
  atomic_int stop;
} watch_state;

static void *watch(void *arg){
  watch_state *w = arg;
  cli_progress p;
  cli_progress_start(&p, "compact", w->total);
  p.every = 1;
  while( !atomic_load(&w->stop) ){
    struct stat st;
    if( stat(w->tmp, &st) == 0 ) cli_progress_update(&p, (uint64_t)st.st_size);
    struct timespec ts = { 0, 50 * 1000000L };
    nanosleep(&ts, NULL);
  }
  cli_progress_end(&p);
  return NULL;
}

int cli_compact(const cli_verb *v, int argc, char **argv){
  const char *keep_s = NULL;
  cli_opt opts[] = {
    { "keep", NULL, &keep_s },
    { NULL, NULL, NULL }
  };
  char *pos[1];
  int n;
  int rc = cli_parse(v, argc, argv, opts, pos, 1, 1, &n);
  if( rc ) return rc == CLI_HELP ? CLI_OK : rc;
  uint64_t keep = 1;
  if( keep_s && cli_parse_count("--keep", keep_s, 1, UINT32_MAX, &keep) ) return CLI_ERROR;
  const char *path = pos[0];

  /* The same refusals as every verb (not a file, not a log) before any lock. */
  stateio_image img;
  if( cli_open_log(path, &img, 1) ) return CLI_ERROR;
  watch_state w;
  memset(&w, 0, sizeof(w));
  w.total = stateio_image_size(&img);
  stateio_close_image(&img);

  pthread_t th;
  int watching = 0;
  if( isatty(2) ){
    size_t len = strlen(path) + sizeof(".compact");
    w.tmp = malloc(len);
    if( w.tmp ){
      snprintf(w.tmp, len, "%s.compact", path);
      watching = pthread_create(&th, NULL, watch, &w) == 0;
    }
  }
  stateio_compact_info info;
  rc = stateio_compact(path, (unsigned)keep, &info);
  int e = errno;
  if( watching ){
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
  }
  free(w.tmp);
  errno = e;

  char b1[32], b2[32], b3[32], kept[64];
  if( keep == 1 ) snprintf(kept, sizeof(kept), "the current epoch");
  else snprintf(kept, sizeof(kept), "the last %" PRIu64 " epochs", keep);
  switch( rc ){
    case STATEIO_OK:
      if( !info.compacted ){
        printf("%s: nothing before %s: left as it is\n", path, kept);
        return CLI_OK;
      }
      printf("%s: compacted: kept %s; %s -> %s (%s dropped); the current epoch is now %"
             PRIu64 "\n", path, kept, cli_size(info.old_size, b1, sizeof(b1)),
             cli_size(info.new_size, b2, sizeof(b2)),
             cli_size(info.dropped_bytes, b3, sizeof(b3)), info.new_epoch);
      return CLI_OK;
    case STATEIO_BUSY:
      cli_error("compact: '%s': another writer holds the log's lock (try again)", path);
      return CLI_ERROR;
    case STATEIO_CORRUPT_LOG:
    case STATEIO_CORRUPT_ENTRY:
      cli_error("compact: '%s' is damaged at offset %" PRIu64 " (%s): not compacted, nothing"
                " changed (stateio check shows the damage, stateio salvage copies what can"
                " be read)", path, info.bad_offset, stateio_errstr(rc));
      return CLI_DAMAGED;
    case STATEIO_NOTLOG:
      cli_error("compact: '%s' is not a stateio log", path);
      return CLI_ERROR;
    default:
      if( rc == STATEIO_IOERR && errno == ENAMETOOLONG && info.errfile == STATEIO_FILE_COMMIT ){
        cli_error("compact: '%s': its name leaves no room for its commit file's, '%s-commit.tmp',"
                  " which would be longer than the file system allows a name to be: nothing"
                  " changed (use a shorter name)", path, path);
        return CLI_ERROR;
      }
      {
        /* Name the file the error is on (info.errfile), not only the log. */
        static const char *const on[] = { "", "", " (its commit file, -commit)",
                                          " (the new log, .compact)", " (its directory)" };
        int k = info.errfile >= 0 && info.errfile <= STATEIO_FILE_DIR ? info.errfile : 0;
        cli_error("compact: '%s'%s: %s", path, on[k], cli_strstatus(rc));
      }
      return CLI_ERROR;
  }
}
