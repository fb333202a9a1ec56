/* SPDX-License-Identifier: MIT */
/*
** mirror.c - stateio mirror SRC DST [--once] [--interval MS]: keep DST a
** byte-identical copy of the log SRC as SRC grows.
**
** Each poll takes an image of SRC (stateio_open_image: the bytes a reader
** may see) and copies the new bytes up to the end of SRC's last complete
** entry (logio_rewind), never a torn tail, which a writer may cut and
** overwrite. The copy is byte for byte (pread/pwrite) and is the only place
** the tool reads a log's bytes itself, and never past the image's size.
**
** It starts again with a fresh copy (DST.tmp, synced, renamed over DST,
** directory synced) when SRC is another file (stateio_log_id changed: it
** was compacted or replaced), when SRC shrank below what was copied, or
** when the last bytes copied are no longer what SRC holds there. At start,
** an existing DST is appended to when it is a prefix of SRC (its first
** block and its last 4 KiB are SRC's), else copied afresh.
**
** How a standby follows a log on another machine: run the mirror where
** both SRC and DST can be reached (SRC on the primary's disk shared over
** NFS or SMB, DST local, or the other way round); the standby restores
** from DST, which is always a whole log up to an entry boundary.
*/
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define COPY_CHUNK ((size_t)1 << 20)
#define TAIL_CHECK 4096       /* bytes compared at each poll */
#define HEAD_CHECK 32768      /* bytes compared at start (the first block) */

typedef struct mirror {
  const char *src, *dst;
  char *tmp;                  /* DST.tmp */
  int dfd;                    /* DST, open for appends; -1 before the first copy */
  int have;                   /* DST holds SRC's bytes [0, copied) */
  int64_t id;                 /* the log_id of that SRC */
  uint64_t copied;
  unsigned char tail[TAIL_CHECK];  /* SRC's bytes [copied - tail_len, copied) */
  size_t tail_len;
  unsigned char *buf;         /* COPY_CHUNK bytes */
  unsigned char *buf2;        /* HEAD_CHECK bytes, for comparisons */
} mirror;

static volatile sig_atomic_t stop_asked;

static void on_signal(int sig){
  (void)sig;
  stop_asked = 1;
}

/* Read exactly n bytes at off; 1 when the file ends first, -1 on error. */
static int read_full(int fd, void *buf, size_t n, uint64_t off){
  unsigned char *p = buf;
  while( n > 0 ){
    ssize_t got = pread(fd, p, n, (off_t)off);
    if( got < 0 && errno == EINTR ) continue;
    if( got < 0 ) return -1;
    if( got == 0 ) return 1;
    p += got; n -= (size_t)got; off += (uint64_t)got;
  }
  return 0;
}

static int write_full(int fd, const void *buf, size_t n, uint64_t off){
  const unsigned char *p = buf;
  while( n > 0 ){
    ssize_t put = pwrite(fd, p, n, (off_t)off);
    if( put < 0 && errno == EINTR ) continue;
    if( put < 0 ) return -1;
    p += put; n -= (size_t)put; off += (uint64_t)put;
  }
  return 0;
}

/* Remember SRC's last bytes before `end` (they are in m->buf or re-read). */
static int keep_tail(mirror *m, int sfd, uint64_t end){
  m->tail_len = end < TAIL_CHECK ? (size_t)end : TAIL_CHECK;
  return read_full(sfd, m->tail, m->tail_len, end - m->tail_len);
}

/* Whether SRC still holds, before m->copied, the bytes copied last. */
static int tail_matches(mirror *m, int sfd){
  if( m->tail_len == 0 ) return 1;
  if( read_full(sfd, m->buf2, m->tail_len, m->copied - m->tail_len) != 0 ) return 0;
  return memcmp(m->buf2, m->tail, m->tail_len) == 0;
}

/*
** Copy SRC's [from, to) to dfd at the same offsets. 0, 1 when SRC ended
** first (it shrank meanwhile), -1 on an error (errno; *what names the side).
*/
static int copy_range(mirror *m, int sfd, int dfd, uint64_t from, uint64_t to,
                      const char **what){
  cli_progress p;
  cli_progress_start(&p, "mirror", to - from);
  p.every = 1;
  int rc = 0;
  for(uint64_t off = from; off < to && rc == 0; ){
    size_t n = to - off < COPY_CHUNK ? (size_t)(to - off) : COPY_CHUNK;
    rc = read_full(sfd, m->buf, n, off);
    if( rc != 0 ){
      *what = m->src;
      break;
    }
    if( write_full(dfd, m->buf, n, off) != 0 ){
      *what = m->dst;
      rc = -1;
      break;
    }
    off += n;
    cli_progress_update(&p, off - from);
  }
  cli_progress_end(&p);
  return rc;
}

/* A fresh copy of SRC's [0, end) to DST.tmp, renamed over DST. */
static int fresh_copy(mirror *m, int sfd, uint64_t end, int64_t id){
  const char *what = m->tmp;
  /*
  ** A DST.tmp left by a run that was killed is ours to replace; made anew
  ** (O_EXCL), so that a symbolic link planted there is never written
  ** through. SRC's permission bits: a copy of a private log stays private.
  */
  (void)unlink(m->tmp);
  int tfd = open(m->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, cli_copy_mode(sfd));
  if( tfd < 0 ){
    cli_error("mirror: cannot create '%s': %s", m->tmp, strerror(errno));
    return -1;
  }
  int rc = copy_range(m, sfd, tfd, 0, end, &what);
  if( rc == 0 && fdatasync(tfd) != 0 ){ rc = -1; what = m->tmp; }
  if( close(tfd) != 0 && rc == 0 ){ rc = -1; what = m->tmp; }
  if( rc == 0 && rename(m->tmp, m->dst) != 0 ){ rc = -1; what = m->dst; }
  if( rc == 0 && cli_sync_dir_of(m->dst) != 0 ){ rc = -1; what = m->dst; }
  if( rc != 0 ){
    int e = errno;
    unlink(m->tmp);
    if( rc == 1 ) return 1;  /* SRC shrank while copied: the next poll starts again */
    cli_error("mirror: cannot copy to '%s': %s", what, strerror(e));
    return -1;
  }
  if( m->dfd >= 0 ) close(m->dfd);
  m->dfd = open(m->dst, O_WRONLY | O_CLOEXEC);
  if( m->dfd < 0 ){
    cli_error("mirror: cannot open '%s': %s", m->dst, strerror(errno));
    return -1;
  }
  m->have = 1;
  m->id = id;
  m->copied = end;
  if( keep_tail(m, sfd, end) != 0 ){
    m->have = 0;             /* SRC changed under us: again at the next poll */
  }
  return 0;
}

/* At start: whether DST is a prefix of SRC's [0, end), to go on from. */
static int dst_is_prefix(mirror *m, int sfd, uint64_t end){
  int fd = open(m->dst, O_RDONLY | O_CLOEXEC);
  if( fd < 0 ) return 0;
  struct stat st;
  int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= end;
  uint64_t size = ok ? (uint64_t)st.st_size : 0;
  uint64_t at[2] = { 0, size > TAIL_CHECK ? size - TAIL_CHECK : 0 };
  size_t len[2] = { size < HEAD_CHECK ? (size_t)size : HEAD_CHECK,
                    size < TAIL_CHECK ? (size_t)size : TAIL_CHECK };
  for(int i = 0; ok && i < 2; i++){
    ok = read_full(fd, m->buf, len[i], at[i]) == 0
      && read_full(sfd, m->buf2, len[i], at[i]) == 0
      && memcmp(m->buf, m->buf2, len[i]) == 0;
  }
  close(fd);
  if( !ok ) return 0;
  m->dfd = open(m->dst, O_WRONLY | O_CLOEXEC);
  if( m->dfd < 0 ) return 0;
  m->copied = size;
  return keep_tail(m, sfd, size) == 0;
}

/*
** One poll: bring DST up to SRC. 0 done, -1 a fatal error (printed),
** 1 SRC cannot be read as a log now (the caller says so once).
*/
static int poll_once(mirror *m, int first){
  stateio_image img;
  if( first ){
    if( cli_open_log(m->src, &img, 1) ) return -1;
  }else{
    int rc = stateio_open_image(m->src, &img);
    if( rc ) return 1;
    if( stateio_image_size(&img) > 0 && !logio_holds_record(&img) ){
      stateio_close_image(&img);
      return 1;
    }
  }
  int64_t id;
  uint64_t size = stateio_image_size(&img), start, end = 0;
  int rc = stateio_log_id(img.fd, &id);
  if( rc == STATEIO_OK ){
    rc = size ? logio_rewind(&img, size, &start, &end) : STATEIO_DONE;
    if( rc == STATEIO_DONE ){ rc = STATEIO_OK; end = 0; }
  }
  if( rc ){
    if( first ) cli_error("mirror: cannot read '%s': %s", m->src, cli_strstatus(rc));
    stateio_close_image(&img);
    return first ? -1 : 1;
  }
  int out = 0;
  if( first && dst_is_prefix(m, img.fd, end) ){
    m->have = 1;
    m->id = id;
  }
  if( m->have && id == m->id && end >= m->copied && tail_matches(m, img.fd) ){
    if( end > m->copied ){
      const char *what = m->dst;
      int c = copy_range(m, img.fd, m->dfd, m->copied, end, &what);
      if( c == 0 && fdatasync(m->dfd) != 0 ) c = -1;
      if( c < 0 ){
        cli_error("mirror: cannot copy to '%s': %s", what, strerror(errno));
        out = -1;
      }else if( c == 0 ){
        m->copied = end;
        if( keep_tail(m, img.fd, end) != 0 ) m->have = 0;
      }else{
        m->have = 0;         /* SRC shrank while copied: again at the next poll */
      }
    }
  }else{
    if( m->have ){
      if( id != m->id ){
        cli_error("mirror: '%s' is another file now (log_id %" PRId64 ", was %" PRId64 "):"
                  " it was compacted or replaced: copying it again", m->src, id, m->id);
      }else if( end < m->copied ){
        cli_error("mirror: '%s' shrank to %" PRIu64 " bytes (%" PRIu64 " were copied):"
                  " copying it again", m->src, end, m->copied);
      }else{
        cli_error("mirror: the last bytes copied from '%s' changed: copying it again", m->src);
      }
    }
    if( fresh_copy(m, img.fd, end, id) < 0 ) out = -1;
  }
  stateio_close_image(&img);
  return out;
}

int cli_mirror(const cli_verb *v, int argc, char **argv){
  int once = 0;
  const char *interval_s = NULL;
  cli_opt opts[] = {
    { "once", &once, NULL },
    { "interval", NULL, &interval_s },
    { NULL, NULL, NULL }
  };
  char *pos[2];
  int n;
  int rc = cli_parse(v, argc, argv, opts, pos, 2, 2, &n);
  if( rc ) return rc == CLI_HELP ? CLI_OK : rc;
  uint64_t interval = 250;
  if( interval_s && cli_parse_count("--interval", interval_s, 1, 3600000, &interval) ){
    return CLI_ERROR;
  }
  mirror m;
  memset(&m, 0, sizeof(m));
  m.src = pos[0];
  m.dst = pos[1];
  m.dfd = -1;

  struct stat ss, ds;
  if( stat(m.src, &ss) == 0 && stat(m.dst, &ds) == 0 ){
    if( ss.st_dev == ds.st_dev && ss.st_ino == ds.st_ino ){
      cli_error("mirror: '%s' and '%s' are the same file", m.src, m.dst);
      return CLI_ERROR;
    }
    if( !S_ISREG(ds.st_mode) ){
      cli_error("mirror: '%s' is not a regular file: it cannot be a copy", m.dst);
      return CLI_ERROR;
    }
  }
  size_t tlen = strlen(m.dst) + sizeof(".tmp");
  m.tmp = malloc(tlen);
  m.buf = malloc(COPY_CHUNK);
  m.buf2 = malloc(HEAD_CHECK);
  if( !m.tmp || !m.buf || !m.buf2 ){
    cli_error("mirror: out of memory");
    free(m.tmp); free(m.buf); free(m.buf2);
    return CLI_ERROR;
  }
  snprintf(m.tmp, tlen, "%s.tmp", m.dst);

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;           /* no SA_RESTART: the sleep ends at once */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  rc = poll_once(&m, 1) < 0 ? CLI_ERROR : CLI_OK;
  int unreadable = 0;
  while( rc == CLI_OK && !once && !stop_asked ){
    struct timespec ts = { (time_t)(interval / 1000), (long)(interval % 1000) * 1000000L };
    if( nanosleep(&ts, NULL) != 0 && stop_asked ) break;
    int p = poll_once(&m, 0);
    if( p < 0 ){
      rc = CLI_ERROR;
    }else if( p > 0 ){
      if( !unreadable ){
        cli_error("mirror: '%s' cannot be read as a log now: waiting for it", m.src);
      }
      unreadable = 1;
    }else{
      unreadable = 0;
    }
  }
  if( m.dfd >= 0 ) close(m.dfd);
  free(m.tmp);
  free(m.buf);
  free(m.buf2);
  return rc;
}
