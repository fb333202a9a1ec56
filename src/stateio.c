/* SPDX-License-Identifier: MIT */
/*
** stateio.c - the state log (FORMAT.md, layer 2): decoding state entries,
** restore, reading any epoch, the update reader, and the log check.
** The writer is in writer.c.
*/
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stateio.h"
#include "sio_int.h"

int stateio_parse_entry(const unsigned char *p, size_t n, stateio_entry *out){
  if( n < STATEIO_ENTRY_HEADER ) return STATEIO_CORRUPT_ENTRY;
  if( p[0] != STATEIO_UPDATE && p[0] != STATEIO_SNAPSHOT ) return STATEIO_CORRUPT_ENTRY;
  out->kind = p[0];
  out->epoch = sio_get64(p + 1);
  out->data = p + STATEIO_ENTRY_HEADER;
  out->len = n - STATEIO_ENTRY_HEADER;
  return STATEIO_OK;
}

void stateio_state_clear(stateio_state *st){
  sio_free(st->snapshot);
  memset(st, 0, sizeof(*st));
}

/*
** The readers' view of a log (doc/COMMIT.md): the file opened without
** blocking (anything but a regular file is refused before a byte is read),
** and its size as far as commits are done: the commit file's record is read
** around an fstat (seqlock), so a commit in flight or one that failed is
** never seen; a dead writer's commit is settled when the lock is free
** (recovered if the files may be written, else decided in memory).
*/
int stateio_open_image(const char *path, stateio_image *img){
  memset(img, 0, sizeof(*img));
  img->fd = -1;
  int fd;
  /*
  ** A symbolic link's commit file is the one beside the file it names: the
  ** open refuses to follow one (ELOOP), and only then is it resolved, so
  ** that a plain path costs no extra call.
  */
  char *real = NULL;
  int rc = sio_open_regular(path, STATEIO_FILE_LOG, O_RDONLY | O_NOFOLLOW, 0, &fd);
  if( rc == STATEIO_IOERR && errno == ELOOP ){
    real = sio_log_path(path);
    if( !real ) return STATEIO_NOMEM;
    path = real;
    rc = sio_open_regular(path, STATEIO_FILE_LOG, O_RDONLY, 0, &fd);
  }
  if( rc == STATEIO_OK ){
    rc = sio_commit_view(fd, path, -1, -1, img);
    if( rc ){
      int e = errno;
      close(fd);
      errno = e;
    }
  }
  sio_free(real);          /* free() leaves errno alone */
  if( rc ){
    memset(img, 0, sizeof(*img));
    img->fd = -1;
  }
  return rc;
}

void stateio_close_image(stateio_image *img){
  if( img->fd >= 0 ) close(img->fd);
  img->fd = -1;
}

/*
** Fill the epoch fields of *st for the epoch named `epoch`: the snapshot
** that starts there, or (epoch 0 only) no snapshot when the log begins with
** an update. Leaves log_end and torn_len alone.
*/
static int read_epoch(const stateio_image *img, uint64_t epoch, stateio_state *st){
  sio_free(st->snapshot);
  st->snapshot = NULL;
  st->snapshot_len = 0;
  st->has_snapshot = 0;
  st->prev_epoch = 0;
  st->snapshot_end = 0;
  st->updates_start = 0;
  st->epoch = epoch;
  if( epoch == 0 && stateio_image_size(img) == 0 ) return STATEIO_OK;

  logio_entry e;
  int rc = logio_read_entry_at(img, epoch, &e);
  if( rc == STATEIO_CORRUPT_LOG || rc == STATEIO_TORN ) rc = STATEIO_NOTFOUND;
  if( rc ){
    st->bad_offset = epoch;
    return rc;
  }
  stateio_entry se;
  rc = stateio_parse_entry(e.data, e.len, &se);
  if( rc == STATEIO_OK && se.kind == STATEIO_SNAPSHOT ){
    /* The epoch before a snapshot lies before it (or is 0 for one at 0). */
    if( se.epoch > epoch || (se.epoch == epoch && epoch != 0) ) rc = STATEIO_CORRUPT_ENTRY;
  }else if( rc == STATEIO_OK ){
    if( epoch != 0 ) rc = STATEIO_NOTFOUND;   /* an update, not the start of an epoch */
  }
  if( rc ){
    sio_free((void*)e.data);
    st->bad_offset = epoch;
    return rc;
  }
  if( se.kind == STATEIO_SNAPSHOT ){
    /* Keep the application's bytes only: move them to the buffer's front. */
    unsigned char *buf = (unsigned char*)e.data;
    memmove(buf, se.data, se.len);
    st->has_snapshot = 1;
    st->prev_epoch = se.epoch;
    st->snapshot = buf;
    st->snapshot_len = se.len;
    st->snapshot_end = e.end;
    st->updates_start = e.end;
  }else{
    sio_free((void*)e.data);
    st->updates_start = 0;
  }
  return STATEIO_OK;
}

int stateio_read_epoch(const stateio_image *img, uint64_t epoch, stateio_state *st){
  memset(st, 0, sizeof(*st));
  return read_epoch(img, epoch, st);
}

/* ------------------------------------------------------------ the log's end */

/*
** How a log ends: its last complete entry, found from the end (rewind:
** O(that entry), not O(file)), and what lies after it, read forward:
** nothing, a torn tail (the end of the log), or damage that is not torn
** (logio.c's region_is_torn() decides). A damaged last entry that is a
** complete update of the current epoch (its kind and epoch proven by a
** checksum, not read from damaged bytes), and the only thing after the last
** good entry, leaves the current epoch as it is: readers report it as a
** damaged region at the end of the epoch's updates. Any other damage at
** the end might hide a snapshot, so the current epoch is not known:
** STATEIO_CORRUPT_LOG, never an older epoch as if it were current.
*/
typedef struct log_tail {
  int has_last;            /* the log has a complete, valid entry */
  uint64_t epoch;          /* the epoch in force after it (0 when none) */
  uint64_t end;            /* where the log's entries end (a damaged last update included) */
  int damaged_end;         /* the log ends with a damaged update */
  uint64_t torn_len;       /* bytes after end that are a torn tail */
  uint64_t bad_offset;     /* on an error: where */
} log_tail;

/* The epoch in force after the entry payload p[0..n) that starts at off. */
static int entry_epoch(const unsigned char *p, size_t n, uint64_t off, uint64_t *epoch){
  stateio_entry se;
  int rc = stateio_parse_entry(p, n, &se);
  if( rc ) return rc;
  if( se.kind == STATEIO_SNAPSHOT ){
    *epoch = off;
  }else{
    if( se.epoch > off ) return STATEIO_CORRUPT_ENTRY;
    *epoch = se.epoch;
  }
  return STATEIO_OK;
}

static int find_tail(const stateio_image *img, log_tail *t){
  memset(t, 0, sizeof(*t));
  uint64_t total = stateio_image_size(img), start, end;
  if( total == 0 ) return STATEIO_OK;
  int rc = logio_rewind(img, total, &start, &end);
  if( rc == STATEIO_OK ){
    logio_entry e;
    rc = logio_read_entry_at(img, start, &e);
    if( rc == STATEIO_OK ){
      rc = entry_epoch(e.data, e.len, start, &t->epoch);
      sio_free((void*)e.data);
    }
    if( rc ){
      t->bad_offset = start;
      return rc == STATEIO_NOTFOUND ? STATEIO_CORRUPT_LOG : rc;
    }
    t->has_last = 1;
    t->end = end;
  }else if( rc != STATEIO_DONE ){
    return rc;
  }else if( !logio_starts_with_record(img) ){
    if( !logio_holds_record(img) ) return STATEIO_NOTLOG;   /* nothing of a log: not ours to truncate */
    /*
    ** Records of a log, but no complete entry, and the file does not begin
    ** as a log: damage from offset 0, never a torn tail (that would be a
    ** first append cut short, which begins the file with its record).
    */
    t->bad_offset = 0;
    return STATEIO_CORRUPT_LOG;
  }
  if( t->end == total ) return STATEIO_OK;

  logio_reader *r;
  rc = logio_reader_open_after(&r, img, t->end);
  if( rc ) return rc;
  int at_region = 0;         /* the last read was a damaged region */
  logio_entry region;
  memset(&region, 0, sizeof(region));
  for(;;){
    logio_entry e;
    rc = logio_reader_next(r, &e);
    if( rc == STATEIO_OK ){
      /* Only when rewinding and reading forward disagree: the reader wins. */
      rc = entry_epoch(e.data, e.len, e.offset, &t->epoch);
      if( rc ){ t->bad_offset = e.offset; break; }
      t->has_last = 1;
      t->end = e.end;
      at_region = 0;
    }else if( rc == STATEIO_CORRUPT_LOG ){
      region = e;
      at_region = 1;
    }else if( rc == STATEIO_TORN ){
      /* Counted below. */
    }else if( rc == STATEIO_DONE ){
      rc = STATEIO_OK;
      if( at_region ){
        logio_damage d;
        logio_reader_damage(r, &d);
        /*
        ** Only a kind and epoch the checksum proves: one damaged byte
        ** turns a snapshot's kind into an update's, and its prev_epoch
        ** reads as the current epoch.
        */
        int last_update = d.complete && d.entry_start == region.offset && d.entry_end == total
                       && d.head_proven && d.head_len == STATEIO_ENTRY_HEADER
                       && d.head[0] == STATEIO_UPDATE && sio_get64(d.head + 1) == t->epoch;
        if( last_update ){
          t->end = total;
          t->damaged_end = 1;
        }else{
          t->bad_offset = region.offset;
          rc = STATEIO_CORRUPT_LOG;
        }
      }
      break;
    }else{
      break;
    }
  }
  logio_reader_close(r);
  /* What follows the entries holds none: a torn append (or its padding). */
  if( rc == STATEIO_OK ) t->torn_len = total - t->end;
  return rc;
}

/*
** The link from the snapshot of st to the epoch before it: prev_epoch must
** name an earlier snapshot (or 0, the first epoch). Checked one link deep,
** at the cost of one record: a valid entry at prev_epoch that is not such a
** snapshot is a broken chain. An entry there that cannot be read is damage
** in an older epoch, which does not make the current state wrong.
*/
static int check_chain(const stateio_image *img, const stateio_state *st){
  if( !st->has_snapshot || st->epoch == 0 ) return STATEIO_OK;
  uint64_t prev = st->prev_epoch;
  unsigned char head[STATEIO_ENTRY_HEADER];
  size_t n;
  int rc = logio_peek_entry(img, prev, head, &n);
  if( rc == STATEIO_CORRUPT_LOG ) return STATEIO_OK;
  if( rc ) return rc;
  if( n < STATEIO_ENTRY_HEADER ) return STATEIO_CORRUPT_ENTRY;
  uint64_t field = sio_get64(head + 1);
  if( head[0] == STATEIO_SNAPSHOT ){
    if( field < prev || (field == 0 && prev == 0) ) return STATEIO_OK;
  }else if( head[0] == STATEIO_UPDATE && prev == 0 ){
    return STATEIO_OK;           /* epoch 0 begun without a snapshot */
  }
  return STATEIO_CORRUPT_ENTRY;
}

int stateio_restore(const stateio_image *img, stateio_state *st){
  memset(st, 0, sizeof(*st));
  log_tail t;
  int rc = find_tail(img, &t);
  if( rc ){
    st->bad_offset = t.bad_offset;
    return rc;
  }
  if( t.has_last ){
    /*
    ** The last entry is a snapshot (its own offset is the epoch) or an
    ** update naming its epoch. Either way the epoch's snapshot is read at
    ** its offset; if it is damaged that is an error, never an older epoch.
    */
    rc = read_epoch(img, t.epoch, st);
    if( rc == STATEIO_NOTFOUND ) rc = STATEIO_CORRUPT_LOG;
    if( rc == STATEIO_OK ) rc = check_chain(img, st);
    if( rc ){
      stateio_state_clear(st);   /* the caller owns nothing after an error */
      st->bad_offset = t.epoch;
      return rc;
    }
  }
  /* Without a complete entry: epoch 0, no snapshot, updates from offset 0. */
  st->log_end = t.end;
  st->torn_len = t.torn_len;
  return STATEIO_OK;
}

int sio_log_end(const stateio_image *img, uint64_t *end, uint64_t *epoch, uint64_t *start_at){
  log_tail t;
  int rc = find_tail(img, &t);
  if( rc ) return rc;
  *end = t.end;
  *epoch = t.epoch;
  /*
  ** After a damaged last entry nothing proves where a record following it
  ** in its block starts (resync.c), so readers would drop what is appended
  ** there: the next entry goes to the next block, where they find it.
  */
  *start_at = t.damaged_end && t.end % LOGIO_BLOCK ? t.end - t.end % LOGIO_BLOCK + LOGIO_BLOCK : t.end;
  return STATEIO_OK;
}

/* ------------------------------------------------------------ update reader */

struct stateio_updates {
  stateio_scan *s;
  uint64_t epoch;
  int64_t seq;
  int done;
  /* Made by stateio_restore_file/_fd: the reader owns the image and the state. */
  stateio_image img;
  int own_fd;              /* img.fd is ours to close */
  stateio_state st;
};

int stateio_updates_open(stateio_updates **pp, const stateio_image *img,
                         const stateio_state *st){
  *pp = NULL;
  stateio_updates *u = sio_malloc(sizeof(*u));
  if( !u ) return STATEIO_NOMEM;
  memset(u, 0, sizeof(*u));
  u->epoch = st->epoch;
  u->seq = -1;
  int rc = stateio_scan_open(&u->s, img, st->updates_start, st->epoch);
  if( rc ){
    sio_free(u);
    return rc;
  }
  *pp = u;
  return STATEIO_OK;
}

int stateio_updates_parallel(stateio_updates *u){ return stateio_scan_parallel(u->s); }

int stateio_updates_next(stateio_updates *u, stateio_entry *e){
  if( u->done ){
    memset(e, 0, sizeof(*e));
    return STATEIO_DONE;
  }
  int rc = stateio_scan_next(u->s, e);
  if( rc == STATEIO_DONE || e->kind == STATEIO_SNAPSHOT ){
    u->done = 1;              /* the end of the log, or the next epoch begins */
    return STATEIO_DONE;
  }
  if( rc == STATEIO_OK && e->epoch != u->epoch ){
    rc = STATEIO_CORRUPT_ENTRY;
    e->problem = "update of the wrong epoch";
  }
  if( rc == STATEIO_CORRUPT_LOG || rc == STATEIO_CORRUPT_ENTRY ){
    e->data = NULL;
    e->len = (size_t)(e->end - e->offset);
    return rc;
  }
  if( rc != STATEIO_OK ) return rc;
  u->seq++;
  return STATEIO_OK;
}

int64_t stateio_updates_seq(const stateio_updates *u){ return u->seq; }

void stateio_updates_close(stateio_updates *u){
  if( !u ) return;
  stateio_scan_close(u->s);
  stateio_state_clear(&u->st);
  if( u->own_fd ) stateio_close_image(&u->img);
  sio_free(u);
}

/* The restore of stateio_restore_file/_fd on an image the reader will own. */
static int restore_owned(stateio_image *img, int own_fd, stateio_state *state,
                         stateio_updates **updates){
  stateio_state st;
  int rc = stateio_restore(img, &st);
  if( rc == STATEIO_OK ){
    stateio_updates *u;
    rc = stateio_updates_open(&u, img, &st);
    if( rc == STATEIO_OK ){
      /* The scan holds a copy of the image: the descriptor must outlive it, here. */
      u->img = *img;
      u->own_fd = own_fd;
      u->st = st;
      *state = st;
      *updates = u;
      return STATEIO_OK;
    }
    stateio_state_clear(&st);
  }
  state->bad_offset = st.bad_offset;
  if( own_fd ){
    int e = errno;
    stateio_close_image(img);
    errno = e;
  }
  return rc;
}

int stateio_restore_file(const char *path, stateio_state *state, stateio_updates **updates){
  memset(state, 0, sizeof(*state));
  *updates = NULL;
  stateio_image img;
  int rc = stateio_open_image(path, &img);
  if( rc ) return rc;
  return restore_owned(&img, 1, state, updates);
}

int stateio_restore_fd(int fd, stateio_state *state, stateio_updates **updates){
  memset(state, 0, sizeof(*state));
  *updates = NULL;
  stateio_image img;
  int rc = stateio_image_from_fd(&img, fd);
  if( rc ) return rc;
  return restore_owned(&img, 0, state, updates);
}

/* ------------------------------------------------------------ check */

int stateio_check(const stateio_image *img, stateio_check_fn cb, void *arg){
  stateio_scan *s;
  int rc = stateio_scan_open(&s, img, 0, 0);
  if( rc ) return rc;
  rc = stateio_scan_parallel(s);     /* the whole file, in order */
  if( rc ){
    stateio_scan_close(s);
    return rc;
  }
  int stop = 0;
  for(;;){
    stateio_entry e;
    rc = stateio_scan_next(s, &e);
    if( rc == STATEIO_CORRUPT_LOG || rc == STATEIO_CORRUPT_ENTRY ){
      if( (stop = cb(arg, e.offset, e.end - e.offset, e.problem)) != 0 ) break;
      continue;
    }
    if( rc == STATEIO_OK ) continue;
    if( rc == STATEIO_DONE ){
      uint64_t len, off = stateio_scan_torn(s, &len);
      rc = STATEIO_OK;
      if( len > 0 ) stop = cb(arg, off, len, "torn tail");
    }
    break;
  }
  stateio_scan_close(s);
  return stop ? stop : rc;
}
