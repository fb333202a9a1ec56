/* SPDX-License-Identifier: MIT */
/*
** logio.c - the block log (FORMAT.md, layer 1): encoding entries into
** records, reading them forward, and rewinding to the last entry.
**
** The reader is modelled on LevelDB's log_reader: one loop over records,
** with damaged regions reported (offset, length) instead of dropped
** silently. What a valid record is lives in record.c; where reading may go
** on after a damaged one (the recovery policy) in resync.c; whether a
** damaged region at the end of the image is a torn append or corruption
** is decided here, once, in region_is_torn().
*/
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logio.h"
#include "record.h"
#include "sio_int.h"

#define BLOCK  ((uint64_t)LOGIO_BLOCK)
#define HEADER LOGIO_HEADER

/*
** Reads are made in chunks of whole blocks (a record never crosses a
** block). A reader starts with one block, for random access (rewind, the
** entry at an offset), and doubles its chunk on each sequential refill up to
** MAX_CHUNK_BLOCKS, so a scan reads large sequential pieces.
*/
#define MAX_CHUNK_BLOCKS 32

const char *stateio_errstr(int rc){
  switch( rc ){
    case STATEIO_OK:            return "ok";
    case STATEIO_DONE:          return "end of log";
    case STATEIO_CORRUPT_LOG:   return "corrupt log";
    case STATEIO_CORRUPT_ENTRY: return "corrupt state entry";
    case STATEIO_TORN:          return "torn tail";
    case STATEIO_NOTLOG:        return "not a stateio log";
    case STATEIO_IOERR:         return "i/o error";
    case STATEIO_NOMEM:         return "out of memory";
    case STATEIO_BUSY:          return "log is locked by another writer";
    case STATEIO_MISUSE:        return "library misuse";
    case STATEIO_NOTFOUND:      return "not found";
    case STATEIO_TOOBIG:        return "entry too big";
    case STATEIO_CORRUPT_COMMIT: return "corrupt commit file";
  }
  return "unknown status";
}

/* ------------------------------------------------------------ images */

uint64_t stateio_image_size(const stateio_image *img){
  return img->file_size + img->tail_len;
}

int stateio_image_from_fd(stateio_image *img, int fd){
  struct stat st;
  if( fstat(fd, &st) != 0 ) return STATEIO_IOERR;
  if( S_ISDIR(st.st_mode) ){ errno = EISDIR; return STATEIO_IOERR; }
  img->fd = fd;
  img->file_size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
  img->tail = NULL;
  img->tail_len = 0;
  img->journaled = 0;
  img->committed = 0;
  return STATEIO_OK;
}

static uint64_t block_end(uint64_t pos){ return pos - pos % BLOCK + BLOCK; }

int sio_image_read(const stateio_image *img, uint64_t off, size_t n, unsigned char *dst){
  if( off < img->file_size ){
    uint64_t avail = img->file_size - off;
    size_t k = n < avail ? n : (size_t)avail;
    int rc = sio_pread_full(img->fd, dst, k, off);
    if( rc ) return rc;
    dst += k; off += k; n -= k;
  }
  if( n > 0 ) memcpy(dst, img->tail + (off - img->file_size), n);
  return STATEIO_OK;
}

/* ------------------------------------------------------------ encoding */

uint64_t logio_aligned(uint64_t off){
  uint64_t room = BLOCK - off % BLOCK;
  return room <= HEADER ? off + room : off;
}

/*
** Padding written before an entry appended at off: to the next block when
** the block's rest cannot hold a header and a byte, and also when the file
** ends 1..14 bytes into a block (garbage the reference steps over).
*/
static uint64_t padding_before(uint64_t off){
  uint64_t r = off % BLOCK;
  if( r > 0 && r < HEADER ) return BLOCK - r;
  if( BLOCK - r <= HEADER ) return BLOCK - r;
  return 0;
}

uint64_t logio_encoded_size(uint64_t off, uint64_t len){
  uint64_t pad = padding_before(off);
  uint64_t pos = off + pad;
  uint64_t first_room = BLOCK - pos % BLOCK - HEADER;
  uint64_t records = 1;
  if( len > first_room ){
    uint64_t rest = len - first_room;
    records += (rest + (BLOCK - HEADER) - 1) / (BLOCK - HEADER);
  }
  return pad + records * HEADER + len;
}

void logio_encode(uint64_t off, const void *head, size_t head_len,
                  const void *data, size_t data_len,
                  unsigned char *out, uint64_t *start){
  const unsigned char *h = head, *d = data;
  size_t total = head_len + data_len, done = 0;
  uint64_t pad = padding_before(off);
  memset(out, 0, (size_t)pad);
  out += pad;
  uint64_t pos = off + pad;
  *start = pos;
  do{
    size_t room = (size_t)(BLOCK - pos % BLOCK) - HEADER;
    size_t take = total - done < room ? total - done : room;
    int type;
    if( done == 0 ) type = take == total ? LOGIO_FULL : LOGIO_FIRST;
    else type = done + take == total ? LOGIO_LAST : LOGIO_MIDDLE;
    /* The payload is head then data; a record may take from both. */
    unsigned char *p = out + HEADER;
    size_t from = done, left = take;
    if( from < head_len ){
      size_t k = head_len - from < left ? head_len - from : left;
      memcpy(p, h + from, k);
      p += k; from += k; left -= k;
    }
    if( left > 0 ) memcpy(p, d + (from - head_len), left);
    sio_record_encode(out, type, take, pos - *start, out + HEADER);
    out += HEADER + take;
    pos += HEADER + take;
    done += take;
  }while( done < total );
}

/* ------------------------------------------------------------ the reader */

struct logio_reader {
  stateio_image img;
  uint64_t image_size;     /* the image's size: a record cut short there is torn */
  uint64_t total;          /* read no further than this (<= image_size) */
  uint64_t pos;            /* next byte to parse */
  unsigned char *buf;      /* cached bytes [buf_off, buf_off + buf_len) */
  uint64_t buf_off;
  size_t buf_len;
  size_t chunk_blocks;     /* blocks read at the last refill */
  size_t cap_blocks;       /* blocks buf can hold */
  unsigned char *ent;      /* payload of the multi-record entry being assembled */
  size_t ent_len, ent_cap;
  int assembling;
  int verify_only;         /* rewind: check records, do not keep payloads */
  uint64_t ent_start;
  int skip_continuations;  /* opened on a block boundary: MIDDLE/LAST of an earlier entry */
  int have_bad;            /* a damaged region begins at bad_start, end not yet known */
  uint64_t bad_start;
  const char *bad_why;     /* why that region is damaged */
  logio_damage bad;        /* what is known of the region being built */
  int bad_broken;          /* its first entry goes on into damage (not into the image's end) */
  logio_damage last;       /* ... of the region reported last */
  int have_stash;          /* a complete entry found after a damaged region */
  logio_entry stash;
  int done;
  sio_prefetch *pf;        /* a large sequential scan: verifying on a second thread */
  const unsigned char *pf_p;  /* the chunk pf gave last: its bytes, where and how many */
  uint64_t pf_base;
  size_t pf_n;
  const uint32_t *pf_chain;
  uint32_t blk_chain;      /* bytes of the block last loaded that pf verified */
  uint64_t walk;           /* the reader follows the block's chain of records to here */
};

/* Make bytes [off, off+n) available in r->buf; they lie in one block. */
/* Whether the prefetch chunk in hand holds [off, off+n). */
static int in_chunk(const logio_reader *r, uint64_t off, size_t n){
  return r->pf_p && off >= r->pf_base && off + n <= r->pf_base + r->pf_n;
}

static int load(logio_reader *r, uint64_t off, size_t n, const unsigned char **p){
  r->blk_chain = 0;
  if( r->pf ){
    /* Every record asks for its block: the chunk in hand serves most without a call. */
    if( !in_chunk(r, off, n) ){
      const unsigned char *cp;
      const uint32_t *chain;
      uint64_t base;
      size_t cn;
      int rc = sio_prefetch_get(r->pf, off, &cp, &base, &cn, &chain);
      if( rc != STATEIO_OK && rc != STATEIO_NOTFOUND ) return rc;
      r->pf_p = rc == STATEIO_OK ? cp : NULL;
      r->pf_base = base;
      r->pf_n = cn;
      r->pf_chain = chain;
    }
    if( in_chunk(r, off, n) ){
      *p = r->pf_p + (off - r->pf_base);
      r->blk_chain = r->pf_chain[(off - r->pf_base) / BLOCK];
      return STATEIO_OK;
    }
  }
  if( off < r->buf_off || off + n > r->buf_off + r->buf_len ){
    uint64_t from = off - off % BLOCK;
    size_t blocks = 1;                        /* a jump: start small */
    if( r->buf_len > 0 && from == r->buf_off + r->buf_len ){
      blocks = r->chunk_blocks * 2;           /* sequential: read more */
      if( blocks > MAX_CHUNK_BLOCKS ) blocks = MAX_CHUNK_BLOCKS;
    }
    if( blocks > r->cap_blocks ){
      unsigned char *p = sio_realloc(r->buf, blocks * LOGIO_BLOCK);
      if( !p ) return STATEIO_NOMEM;
      r->buf = p;
      r->cap_blocks = blocks;
    }
    r->chunk_blocks = blocks;
    uint64_t want = blocks * BLOCK;
    if( want > r->total - from ) want = r->total - from;
    r->buf_len = 0;
    int rc = sio_image_read(&r->img, from, (size_t)want, r->buf);
    if( rc ) return rc;
    r->buf_off = from;
    r->buf_len = (size_t)want;
  }
  *p = r->buf + (off - r->buf_off);
  return STATEIO_OK;
}

/* The bytes of pos's block up to lim (at most the reader's total), as a sio_block. */
static int block_at(logio_reader *r, uint64_t pos, uint64_t lim, sio_block *b){
  uint64_t base = pos - pos % BLOCK;
  uint64_t end = base + BLOCK;
  if( end > lim ) end = lim;
  const unsigned char *p;
  int rc = load(r, base, (size_t)(end - base), &p);
  if( rc ) return rc;
  b->p = p;
  b->base = base;
  b->n = (size_t)(end - base);
  b->image_end = end == r->image_size;
  return STATEIO_OK;
}

static int reader_new(logio_reader **pp, const stateio_image *img, uint64_t start){
  *pp = NULL;
  logio_reader *r = sio_malloc(sizeof(*r));
  if( !r ) return STATEIO_NOMEM;
  memset(r, 0, sizeof(*r));
  r->img = *img;
  r->image_size = stateio_image_size(img);
  r->total = r->image_size;
  r->pos = start;
  r->skip_continuations = (start % BLOCK == 0);
  r->walk = UINT64_MAX;
  *pp = r;
  return STATEIO_OK;
}

/* Scans shorter than this read and verify on one thread. */
#define PARALLEL_MIN ((uint64_t)8 << 20)
static uint64_t parallel_min = PARALLEL_MIN;

void logio_parallel_always(int on){ parallel_min = on ? 0 : PARALLEL_MIN; }

int logio_reader_parallel(logio_reader *r){
  if( r->pf || r->pos >= r->total || r->total - r->pos < parallel_min ) return STATEIO_OK;
  return sio_prefetch_start(&r->pf, &r->img, r->pos, r->total);
}

int logio_reader_open(logio_reader **pp, const stateio_image *img, uint64_t start){
  return reader_new(pp, img, start);
}

int logio_reader_open_after(logio_reader **pp, const stateio_image *img, uint64_t end){
  int rc = reader_new(pp, img, end);
  if( rc == STATEIO_OK ) (*pp)->skip_continuations = 0;
  return rc;
}

void logio_reader_close(logio_reader *r){
  if( !r ) return;
  sio_prefetch_stop(r->pf);
  sio_free(r->buf);
  sio_free(r->ent);
  sio_free(r);
}

uint64_t logio_reader_tell(const logio_reader *r){ return r->pos; }

const char *logio_reader_problem(const logio_reader *r){
  return r->bad_why ? r->bad_why : "damaged region";
}

void logio_reader_damage(const logio_reader *r, logio_damage *d){
  *d = r->last;
}

/*
** A damaged region begins at off (unless one is already open). Its first
** entry, if it is known to begin at off, is described by *first.
*/
static void bad_begin(logio_reader *r, uint64_t off, const char *why){
  if( r->have_bad ) return;
  r->have_bad = 1;
  r->bad_start = off;
  r->bad_why = why;
  r->bad_broken = 0;
  memset(&r->bad, 0, sizeof(r->bad));
  r->bad.entry_start = LOGIO_NO_ENTRY;
}

/*
** The region's first entry begins at start; head[0..n) its first payload
** bytes, proven (by a checksum) or as they stand.
*/
static void bad_entry(logio_reader *r, uint64_t start, const unsigned char *head, size_t n,
                      int proven){
  r->bad.entry_start = start;
  if( n > sizeof(r->bad.head) ) n = sizeof(r->bad.head);
  if( head ) memcpy(r->bad.head, head, n);
  r->bad.head_len = head ? n : 0;
  r->bad.head_proven = head && proven;
}

/* The entry being assembled is broken: a region begins at its start. */
static void bad_assembling(logio_reader *r, const char *why){
  int opens = !r->have_bad;
  bad_begin(r, r->ent_start, why);
  /* What was assembled came from valid records. */
  if( opens ) bad_entry(r, r->ent_start, r->verify_only ? NULL : r->ent, r->ent_len, 1);
}

/* A record [pos, end) of type LAST that closes the entry starting at start. */
static void bad_last_record(logio_reader *r, uint64_t start, uint64_t end){
  if( r->have_bad && !r->bad.complete && r->bad.entry_start == start ){
    r->bad.complete = 1;
    r->bad.entry_end = end;
  }
}

/* The record at r->pos did not parse; rs is what the recovery policy says. */
static void damaged_record(logio_reader *r, const sio_block *b, const sio_resync *rs){
  uint64_t pos = r->pos;
  const sio_record *h = &rs->rec;
  int opens = !r->have_bad;
  /*
  ** Damage where the region's first entry goes on (not that entry's first
  ** record): set below, once the region is open (opening it clears it).
  */
  int broken = (r->assembling || !opens) && !rs->truncated;
  if( r->assembling ){
    bad_assembling(r, rs->why);
  }else{
    bad_begin(r, pos, rs->why);
    if( opens && rs->plausible && (h->type == LOGIO_FULL || h->type == LOGIO_FIRST) ){
      size_t avail = (size_t)(b->base + b->n - pos);
      avail = avail > HEADER ? avail - HEADER : 0;
      /* Its payload is the one written only if its checksum proves it (rules 1 and 2). */
      bad_entry(r, pos, h->payload, h->len < avail ? h->len : avail, rs->proven);
      if( h->type == LOGIO_FULL && !rs->truncated ){
        r->bad.complete = 1;
        r->bad.entry_end = pos + HEADER + h->len;
      }
    }
  }
  if( broken ) r->bad_broken = 1;
  if( rs->plausible && !rs->truncated && h->type == LOGIO_LAST && h->off <= pos ){
    bad_last_record(r, pos - h->off, pos + HEADER + h->len);
  }
}

/*
** Whether the damaged region now open, which runs to the end of the image
** with no complete entry after it, is a torn tail (the end of the log) or
** corruption. In a log with a commit file every commit but the last was
** synced before the next began, so damage past the last range the file
** records as done can only be the last commit, torn; damage before it is
** corruption. Without a commit file only an entry cut short by the end of
** the file is torn: a region whose first entry is all there (a FULL record
** to its full length, or FIRST ... LAST) is a complete entry, damaged, and
** one that goes on into damage is damaged. Bytes that begin with no
** entry's header are garbage after the last entry (torn), unless records
** were written after them.
*/
static int region_is_torn(logio_reader *r, int *torn){
  if( r->img.journaled ){
    *torn = r->bad_start >= r->img.committed;
    return STATEIO_OK;
  }
  /*
  ** The region begins with an entry's header: torn only if that entry is
  ** cut short by the end of the image, not complete, and not going on
  ** into damage (an append cut short leaves a prefix of its bytes, never
  ** damage followed by more bytes).
  */
  *torn = !r->bad.complete && !r->bad_broken;
  if( r->bad.entry_start != LOGIO_NO_ENTRY ) return STATEIO_OK;
  /*
  ** The region does not begin with an entry's header: garbage after the
  ** last entry (a torn tail) unless records were written after it, which
  ** no append cut short leaves behind: then it is damage.
  */
  for(uint64_t b = r->bad_start - r->bad_start % BLOCK; *torn && b < r->total; b += BLOCK){
    sio_block blk;
    int rc = block_at(r, b < r->bad_start ? r->bad_start : b, r->total, &blk);
    if( rc ) return rc;
    if( sio_block_has_record(&blk, b < r->bad_start ? r->bad_start : b) ) *torn = 0;
  }
  return STATEIO_OK;
}

/* A damaged region is reported only once we know what ends it. */
static int deliver(logio_reader *r, const logio_entry *ent, logio_entry *e){
  r->skip_continuations = 0;
  if( r->have_bad ){
    e->offset = r->bad_start;
    e->end = ent->offset;
    e->len = (size_t)(ent->offset - r->bad_start);
    e->data = NULL;
    r->have_bad = 0;
    r->last = r->bad;
    r->stash = *ent;
    r->have_stash = 1;
    return STATEIO_CORRUPT_LOG;
  }
  *e = *ent;
  return STATEIO_OK;
}

/* The end of the image: a damaged region still open is reported now. */
static int reader_end(logio_reader *r, logio_entry *e){
  if( r->assembling ){
    bad_assembling(r, "incomplete entry at end of log");
    r->assembling = 0;
  }
  r->done = 1;
  if( !r->have_bad ) return STATEIO_DONE;
  r->have_bad = 0;
  r->last = r->bad;
  e->offset = r->bad_start;
  e->end = r->total;
  e->len = (size_t)(r->total - r->bad_start);
  e->data = NULL;
  int torn;
  int rc = region_is_torn(r, &torn);
  if( rc ) return rc;
  return torn ? STATEIO_TORN : STATEIO_CORRUPT_LOG;
}

static int append_payload(logio_reader *r, const sio_record *rec){
  if( r->verify_only ){
    r->ent_len += rec->len;
    return STATEIO_OK;
  }
  if( r->ent_len + rec->len > r->ent_cap ){
    size_t cap = r->ent_cap ? r->ent_cap : LOGIO_BLOCK;
    while( cap < r->ent_len + rec->len ){
      if( cap > ((size_t)-1) / 2 ) return STATEIO_TOOBIG;
      cap *= 2;
    }
    unsigned char *p = sio_realloc(r->ent, cap);
    if( !p ) return STATEIO_NOMEM;
    r->ent = p;
    r->ent_cap = cap;
  }
  memcpy(r->ent + r->ent_len, rec->payload, rec->len);
  r->ent_len += rec->len;
  return STATEIO_OK;
}

/*
** The record at r->pos is one the prefetch thread verified: the reader has
** followed its block's records from the block's start, and the record lies
** inside the chain of valid records found there. Then only its header is
** decoded; its checksum was checked once, on the other thread.
*/
static int on_verified_chain(logio_reader *r, const sio_block *b, sio_record *rec){
  if( r->walk != r->pos || r->blk_chain == 0 ) return 0;
  if( b->base + b->n - r->pos < HEADER + 1 ) return 0;
  sio_record_decode(b->p + (r->pos - b->base), r->pos, rec);
  return r->pos + HEADER + rec->len <= b->base + r->blk_chain && rec->len > 0;
}

int logio_reader_next(logio_reader *r, logio_entry *e){
  if( r->have_stash ){
    r->have_stash = 0;
    *e = r->stash;
    return STATEIO_OK;
  }
  if( r->done ) return STATEIO_DONE;
  for(;;){
    if( r->pos >= r->total ) return reader_end(r, e);
    uint64_t bend = block_end(r->pos);
    uint64_t wend = bend < r->total ? bend : r->total;
    if( wend - r->pos < HEADER + 1 ){
      if( wend < bend && wend == r->image_size ){
        /* The image ends a few bytes into a record header: a torn write. */
        if( r->assembling ) bad_assembling(r, "truncated record");
        else bad_begin(r, r->pos, "truncated record");
        r->assembling = 0;
      }
      r->pos = wend;          /* else the padding at the end of a block */
      continue;
    }
    sio_block b;
    int rc = block_at(r, r->pos, r->total, &b);
    if( rc ) return rc;
    sio_record rec;
    const char *why;
    int truncated;
    if( r->pos == b.base ) r->walk = r->pos;
    if( !on_verified_chain(r, &b, &rec) && !sio_record_parse(&b, r->pos, &rec, &why, &truncated) ){
      r->walk = UINT64_MAX;
      sio_resync rs;
      /* Not assembling, nothing damaged, not skipping an earlier entry's tail: an entry opens here. */
      int opens = !r->assembling && !r->have_bad && !r->skip_continuations;
      sio_resync_after(&b, r->pos, r->assembling ? r->ent_start : REC_NONE, opens, &rs);
      damaged_record(r, &b, &rs);
      r->assembling = 0;
      r->skip_continuations = 0;
      r->pos = rs.next;
      continue;
    }
    uint64_t rec_end = rec.pos + HEADER + rec.len;
    if( r->walk == rec.pos ) r->walk = rec_end;
    if( rec.type == LOGIO_FULL || rec.type == LOGIO_FIRST ){
      if( r->assembling ) bad_assembling(r, "broken entry sequence");
      r->assembling = 0;
      r->pos = rec_end;
      if( rec.type == LOGIO_FULL ){
        logio_entry ent = { rec.pos, rec_end, rec.payload, rec.len };
        return deliver(r, &ent, e);
      }
      r->assembling = 1;
      r->ent_start = rec.pos;
      r->ent_len = 0;
      rc = append_payload(r, &rec);
      if( rc ) return rc;
      continue;
    }
    /* MIDDLE or LAST */
    r->pos = rec_end;
    if( !r->assembling || rec.off != rec.pos - r->ent_start ){
      if( r->assembling ){
        bad_assembling(r, "broken entry sequence");
      }else if( !r->skip_continuations ){
        bad_begin(r, rec.pos, "broken entry sequence");
      }
      r->assembling = 0;
      if( rec.type == LOGIO_LAST ) bad_last_record(r, rec.pos - rec.off, rec_end);
      continue;
    }
    rc = append_payload(r, &rec);
    if( rc ) return rc;
    if( rec.type == LOGIO_LAST ){
      r->assembling = 0;
      logio_entry ent = { r->ent_start, rec_end, r->ent, r->ent_len };
      return deliver(r, &ent, e);
    }
  }
}

/* ------------------------------------------------------------ entries at an offset */

int logio_read_entry_at(const stateio_image *img, uint64_t off, logio_entry *e){
  memset(e, 0, sizeof(*e));
  if( off >= stateio_image_size(img) ) return STATEIO_NOTFOUND;
  logio_reader *r;
  int rc = logio_reader_open(&r, img, off);
  if( rc ) return rc;
  logio_entry got;
  rc = logio_reader_next(r, &got);
  if( rc == STATEIO_OK && got.offset != off ) rc = STATEIO_CORRUPT_LOG;
  if( rc == STATEIO_DONE ) rc = STATEIO_CORRUPT_LOG;
  if( rc == STATEIO_OK ){
    if( got.data == r->ent ){
      r->ent = NULL;            /* a multi-record entry: take the buffer */
      *e = got;
    }else{
      unsigned char *copy = sio_malloc(got.len);
      if( !copy ){
        rc = STATEIO_NOMEM;
      }else{
        memcpy(copy, got.data, got.len);
        *e = got;
        e->data = copy;
      }
    }
  }
  logio_reader_close(r);
  return rc;
}

int logio_peek_entry(const stateio_image *img, uint64_t off, unsigned char *head,
                     size_t *head_len){
  *head_len = 0;
  if( off >= stateio_image_size(img) ) return STATEIO_NOTFOUND;
  logio_reader *r;
  int rc = logio_reader_open(&r, img, off);
  if( rc ) return rc;
  /* The first record, and the next ones while fewer than 9 bytes are known (a FIRST may hold 1). */
  uint64_t pos = off;
  for(int first = 1; rc == STATEIO_OK && *head_len < 9; first = 0){
    sio_block b;
    rc = block_at(r, pos, r->total, &b);
    if( rc ) break;
    sio_record rec;
    const char *why;
    int truncated;
    int ok = sio_record_parse(&b, pos, &rec, &why, &truncated);
    if( ok && first ) ok = rec.type == LOGIO_FULL || rec.type == LOGIO_FIRST;
    if( ok && !first ) ok = (rec.type == LOGIO_MIDDLE || rec.type == LOGIO_LAST) && rec.off == pos - off;
    if( !ok ){
      rc = STATEIO_CORRUPT_LOG;
      break;
    }
    size_t n = 9 - *head_len < rec.len ? 9 - *head_len : rec.len;
    memcpy(head + *head_len, rec.payload, n);
    *head_len += n;
    if( rec.type == LOGIO_FULL || rec.type == LOGIO_LAST ) break;
    pos = rec.pos + HEADER + rec.len;    /* the block's end: the next record continues */
    if( pos >= r->total ) break;
  }
  logio_reader_close(r);
  return rc;
}

int logio_starts_with_record(const stateio_image *img){
  uint64_t total = stateio_image_size(img);
  if( total == 0 ) return 0;
  logio_reader *r;
  if( logio_reader_open(&r, img, 0) ) return 0;
  int ok = 0;
  sio_block b;
  if( block_at(r, 0, total, &b) == STATEIO_OK ){
    if( total >= HEADER + 1 ){
      /* A valid first record, or the header of one (damaged, or cut short). */
      sio_record rec;
      const char *why;
      int truncated;
      int type = 0;
      if( sio_record_parse(&b, 0, &rec, &why, &truncated) ){
        type = rec.type;
      }else{
        sio_resync rs;
        sio_resync_after(&b, 0, REC_NONE, 1, &rs);   /* a log opens with an entry */
        if( rs.plausible ) type = rs.rec.type;
      }
      ok = type == LOGIO_FULL || type == LOGIO_FIRST;
      /* Or a damaged first record with records of the log after it. */
      if( !ok ) ok = sio_block_has_record(&b, 0);
    }else if( total > 4 ){
      /* Part of a header: its type says FULL or FIRST, its offset bytes are 0. */
      ok = b.p[REC_TYPE] == LOGIO_FULL || b.p[REC_TYPE] == LOGIO_FIRST;
      for(uint64_t i = REC_OFFSET; ok && i < total; i++) ok = b.p[i] == 0;
    }
  }
  logio_reader_close(r);
  return ok;
}

int logio_holds_record(const stateio_image *img){
  if( logio_starts_with_record(img) ) return 1;
  uint64_t total = stateio_image_size(img);
  if( total <= BLOCK ) return 0;
  logio_reader *r;
  if( logio_reader_open(&r, img, 0) ) return 0;
  /*
  ** The last block first: a log damaged from its start (a zeroed region,
  ** say) usually still ends in records, and every query asks this, so it
  ** should not read the damage to find them. Then the blocks in order.
  */
  uint64_t last = (total - 1) / BLOCK * BLOCK;
  sio_block b;
  int found = block_at(r, last, total, &b) == STATEIO_OK && sio_block_has_record(&b, last);
  for(uint64_t q = BLOCK; !found && q < last; q += BLOCK){
    if( block_at(r, q, total, &b) != STATEIO_OK ) break;
    found = sio_block_has_record(&b, q);
  }
  logio_reader_close(r);
  return found;
}

/* ------------------------------------------------------------ rewind */

/* Whether a complete, valid entry starts at start and ends at end. */
static int entry_spans(const stateio_image *img, uint64_t start, uint64_t end, int *ok){
  logio_reader *r;
  int rc = logio_reader_open(&r, img, start);
  if( rc ) return rc;
  r->total = end;             /* nothing past the candidate's last record */
  r->verify_only = 1;
  logio_entry e;
  rc = logio_reader_next(r, &e);
  *ok = (rc == STATEIO_OK && e.offset == start && e.end == end);
  if( rc == STATEIO_OK || rc == STATEIO_DONE || rc == STATEIO_CORRUPT_LOG || rc == STATEIO_TORN ) rc = STATEIO_OK;
  logio_reader_close(r);
  return rc;
}

/*
** Where the entry that the block before bstart leaves open began: its
** last record parsed from its start (by the same rules as reading) is a
** FIRST or MIDDLE that fills it. *ent = REC_NONE when there is none.
*/
static int entry_open_at(logio_reader *r, const stateio_image *img, uint64_t bstart, uint64_t *ent){
  (void)img;
  *ent = REC_NONE;
  uint64_t q = bstart - BLOCK;
  sio_block blk;
  int rc = block_at(r, q, bstart, &blk);
  if( rc ) return rc;
  while( bstart - q >= HEADER + 1 ){
    sio_record rec;
    const char *why;
    int truncated;
    if( !sio_record_parse(&blk, q, &rec, &why, &truncated) ){
      sio_resync rs;
      sio_resync_after(&blk, q, REC_NONE, 0, &rs);
      if( !rs.proven ) return STATEIO_OK;
      rec = rs.rec;
    }
    uint64_t rec_end = q + HEADER + rec.len;
    if( rec_end == bstart && (rec.type == LOGIO_FIRST || rec.type == LOGIO_MIDDLE) && rec.off <= q ){
      *ent = q - rec.off;
    }
    q = rec_end;
  }
  return STATEIO_OK;
}

int logio_rewind(const stateio_image *img, uint64_t limit,
                 uint64_t *start, uint64_t *end){
  uint64_t total = stateio_image_size(img);
  if( limit > total ) limit = total;
  if( limit == 0 ) return STATEIO_DONE;
  logio_reader *r;
  int rc = logio_reader_open(&r, img, 0);
  if( rc ) return rc;
  /* Record ends (FULL or LAST) of the block being looked at. */
  enum { MAX_RECORDS = LOGIO_BLOCK / (HEADER + 1) + 1 };
  uint64_t *ends_pos = sio_malloc(sizeof(uint64_t) * 2 * MAX_RECORDS);
  if( !ends_pos ){ logio_reader_close(r); return STATEIO_NOMEM; }
  uint64_t *ends_start = ends_pos + MAX_RECORDS;
  rc = STATEIO_DONE;
  for(uint64_t b = (limit - 1) / BLOCK; ; b--){
    uint64_t q = b * BLOCK;
    uint64_t bend = q + BLOCK < limit ? q + BLOCK : limit;
    int n = 0;
    sio_block blk;
    int rc2 = block_at(r, q, limit, &blk);
    if( rc2 ){ rc = rc2; goto done; }
    /*
    ** The block's records from its start, in the order a forward reader
    ** parses them: after a damaged record only where the recovery policy
    ** proves the next record starts (the same rule as reading forward).
    */
    while( bend - q >= HEADER + 1 ){
      sio_record rec;
      const char *why;
      int truncated;
      if( !sio_record_parse(&blk, q, &rec, &why, &truncated) ){
        sio_resync rs;
        uint64_t ent = REC_NONE;
        if( q == b * BLOCK && b > 0 ){
          /* A continuation's offset can only be repaired knowing where its entry began. */
          rc2 = entry_open_at(r, img, q, &ent);
          if( rc2 ){ rc = rc2; goto done; }
          rc2 = block_at(r, q, limit, &blk);
          if( rc2 ){ rc = rc2; goto done; }
        }
        sio_resync_after(&blk, q, ent, 0, &rs);
        if( !rs.proven ) break;
        if( rs.rec.type == LOGIO_LAST && ent != REC_NONE ){
          /* Its entry ends here (it is checked whole below, like any LAST). */
          ends_pos[n] = rs.next;
          ends_start[n] = ent;
          n++;
        }
        q = rs.next;
        continue;
      }
      if( rec.type == LOGIO_FULL || rec.type == LOGIO_LAST ){
        ends_pos[n] = rec.pos + HEADER + rec.len;
        ends_start[n] = rec.pos - rec.off;
        n++;
      }
      q = rec.pos + HEADER + rec.len;
    }
    while( n-- > 0 ){
      int ok = 1;
      if( ends_start[n] < b * BLOCK ){
        /* A LAST record: the whole entry must be valid, not just its end. */
        rc2 = entry_spans(img, ends_start[n], ends_pos[n], &ok);
        if( rc2 ){ rc = rc2; goto done; }
      }
      if( ok ){
        *start = ends_start[n];
        *end = ends_pos[n];
        rc = STATEIO_OK;
        goto done;
      }
    }
    if( b == 0 ) break;
  }
done:
  sio_free(ends_pos);
  logio_reader_close(r);
  return rc;
}
