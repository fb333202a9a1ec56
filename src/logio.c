/*
** logio.c - the block log (FORMAT.md, layer 1): encoding entries into
** records, reading them forward, and rewinding to the last entry.
**
** The reader is modelled on LevelDB's log_reader: one loop over records,
** with damaged regions reported (offset, length) instead of dropped
** silently. It is stricter than the reference about what a valid record is
** (every rule below holds for every file the reference writes), which is
** what lets it re-synchronise inside a damaged block without mistaking
** payload bytes for records.
*/
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL   /* the library's inlined fast path (header from libxxhash-dev) */
#include <xxhash.h>

#include "logio.h"
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

const char *sio_strstatus(int rc){
  switch( rc ){
    case SIO_OK:            return "ok";
    case SIO_DONE:          return "end of log";
    case SIO_CORRUPT_LOG:   return "corrupt log";
    case SIO_CORRUPT_ENTRY: return "corrupt state entry";
    case SIO_TORN:          return "torn tail";
    case SIO_NOTLOG:        return "not a stateio log";
    case SIO_IOERR:         return "i/o error";
    case SIO_NOMEM:         return "out of memory";
    case SIO_BUSY:          return "log is locked by another writer";
    case SIO_MISUSE:        return "library misuse";
    case SIO_NOTFOUND:      return "not found";
    case SIO_TOOBIG:        return "entry too big";
    case STATEIO_CORRUPT_COMMIT: return "corrupt commit file";
  }
  return "unknown status";
}

/* ------------------------------------------------------------ images */

uint64_t logio_image_size(const logio_image *img){
  return img->file_size + img->tail_len;
}

int logio_image_from_fd(logio_image *img, int fd){
  struct stat st;
  if( fstat(fd, &st) != 0 ) return SIO_IOERR;
  if( S_ISDIR(st.st_mode) ){ errno = EISDIR; return SIO_IOERR; }
  img->fd = fd;
  img->file_size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
  img->tail = NULL;
  img->tail_len = 0;
  img->journaled = 0;
  img->committed = 0;
  return SIO_OK;
}

/* Copy bytes [off, off+n) of the image to dst: file first, then the tail. */
static int image_read(const logio_image *img, uint64_t off, size_t n,
                      unsigned char *dst){
  if( off < img->file_size ){
    uint64_t avail = img->file_size - off;
    size_t k = n < avail ? n : (size_t)avail;
    int rc = sio_pread_full(img->fd, dst, k, off);
    if( rc ) return rc;
    dst += k; off += k; n -= k;
  }
  if( n > 0 ) memcpy(dst, img->tail + (off - img->file_size), n);
  return SIO_OK;
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

static uint32_t record_checksum(const unsigned char *rec, size_t payload_len){
  /* Over type, length, offset and payload: everything after the field. */
  return (uint32_t)XXH64(rec + 4, 11 + payload_len, 0);
}

/*
** The checksum the record at rec would have if its length field said
** payload_len (repairing a damaged length field; see repair_length()).
*/
static uint32_t record_checksum_as(const unsigned char *rec, size_t payload_len){
  unsigned char lenb[2] = { (unsigned char)payload_len, (unsigned char)(payload_len >> 8) };
  XXH64_state_t h;
  XXH64_reset(&h, 0);
  XXH64_update(&h, rec + 4, 1);
  XXH64_update(&h, lenb, 2);
  XXH64_update(&h, rec + 7, 8 + payload_len);
  return (uint32_t)XXH64_digest(&h);
}

/* The checksum stored in the record header at rec. */
static uint32_t stored_checksum(const unsigned char *rec){
  return (uint32_t)rec[0] | ((uint32_t)rec[1] << 8)
       | ((uint32_t)rec[2] << 16) | ((uint32_t)rec[3] << 24);
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
    out[4] = (unsigned char)type;
    out[5] = (unsigned char)(take & 0xff);
    out[6] = (unsigned char)(take >> 8);
    sio_put64(out + 7, pos - *start);
    /* The payload is head then data; a record may take from both. */
    unsigned char *p = out + HEADER;
    size_t from = done, left = take;
    if( from < head_len ){
      size_t k = head_len - from < left ? head_len - from : left;
      memcpy(p, h + from, k);
      p += k; from += k; left -= k;
    }
    if( left > 0 ) memcpy(p, d + (from - head_len), left);
    uint32_t sum = record_checksum(out, take);
    out[0] = (unsigned char)sum;
    out[1] = (unsigned char)(sum >> 8);
    out[2] = (unsigned char)(sum >> 16);
    out[3] = (unsigned char)(sum >> 24);
    out += HEADER + take;
    pos += HEADER + take;
    done += take;
  }while( done < total );
}

/* ------------------------------------------------------------ records */

struct logio_reader {
  logio_image img;
  uint64_t total;          /* image size when opened */
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
  const char *why;         /* why the last record parsed was invalid */
  size_t claimed;          /* its header's length, when the header itself is plausible; else 0 */
  int truncated;           /* it is cut short by the end of the image (a torn write) */
  int have_stash;          /* a complete entry found after a damaged region */
  logio_entry stash;
  int done;
};

typedef struct record {
  uint64_t pos;
  int type;
  size_t len;
  uint64_t off;
  const unsigned char *payload;
} record;

static uint64_t block_end(uint64_t pos){ return pos - pos % BLOCK + BLOCK; }

/* Make bytes [off, off+n) available in r->buf; they lie in one block. */
static int load(logio_reader *r, uint64_t off, size_t n, const unsigned char **p){
  if( off < r->buf_off || off + n > r->buf_off + r->buf_len ){
    uint64_t from = off - off % BLOCK;
    size_t blocks = 1;                        /* a jump: start small */
    if( r->buf_len > 0 && from == r->buf_off + r->buf_len ){
      blocks = r->chunk_blocks * 2;           /* sequential: read more */
      if( blocks > MAX_CHUNK_BLOCKS ) blocks = MAX_CHUNK_BLOCKS;
    }
    if( blocks > r->cap_blocks ){
      unsigned char *p = sio_realloc(r->buf, blocks * LOGIO_BLOCK);
      if( !p ) return SIO_NOMEM;
      r->buf = p;
      r->cap_blocks = blocks;
    }
    r->chunk_blocks = blocks;
    uint64_t want = blocks * BLOCK;
    if( want > r->total - from ) want = r->total - from;
    r->buf_len = 0;
    int rc = image_read(&r->img, from, (size_t)want, r->buf);
    if( rc ) return rc;
    r->buf_off = from;
    r->buf_len = (size_t)want;
  }
  *p = r->buf + (off - r->buf_off);
  return SIO_OK;
}

/*
** Whether the header at p (a record at pos) could be a record written by a
** writer of the format, judged without its checksum: type 1..4, a length
** > 0 that fits in the block, a zero offset for FULL/FIRST, and for
** MIDDLE/LAST a block boundary and an offset reaching back no further than
** the start of the file; FIRST/MIDDLE fill their block to the end.
*/
static int header_plausible(const unsigned char *p, uint64_t pos, size_t *plen){
  int type = p[4];
  size_t len = (size_t)p[5] | ((size_t)p[6] << 8);
  *plen = len;
  uint64_t off = sio_get64(p + 7);
  uint64_t bend = block_end(pos);
  if( type < LOGIO_FULL || type > LOGIO_LAST || len == 0 ) return 0;
  if( pos + HEADER + len > bend ) return 0;
  if( type == LOGIO_FULL || type == LOGIO_FIRST ){
    if( off != 0 ) return 0;
  }else{
    if( off == 0 || off > pos || pos % BLOCK != 0 ) return 0;
  }
  if( (type == LOGIO_FIRST || type == LOGIO_MIDDLE) && pos + HEADER + len != bend ) return 0;
  return 1;
}

/*
** Parse the record at pos, which must end at or before lim. Returns 1 for
** a valid record (filled in *rec), 0 for none, or a negative status.
** Valid means a plausible header (above) whose record ends before lim and
** whose checksum matches. For an invalid record, r->why says why,
** r->claimed is its header's length if the header is plausible, and
** r->truncated is set when a plausible record runs past the end of the
** image: the signature of an append cut short by a crash.
*/
static int parse_record(logio_reader *r, uint64_t pos, uint64_t lim, record *rec){
  uint64_t bend = block_end(pos);
  uint64_t end = bend < lim ? bend : lim;
  r->claimed = 0;
  r->truncated = 0;
  r->why = "bad record header";
  if( end - pos < HEADER + 1 ){
    /* The image ends inside the header: a torn write, whatever it holds. */
    if( end == r->total && end < bend ){
      r->why = "truncated record";
      r->truncated = 1;
    }
    return 0;
  }
  const unsigned char *p;
  int rc = load(r, pos, (size_t)(end - pos), &p);
  if( rc ) return -rc;
  size_t len;
  if( !header_plausible(p, pos, &len) ) return 0;
  r->claimed = len;
  if( HEADER + len > end - pos ){
    if( end == r->total ){
      r->why = "truncated record";
      r->truncated = 1;
    }
    return 0;
  }
  if( record_checksum(p, len) != stored_checksum(p) ){ r->why = "checksum mismatch"; return 0; }
  rec->pos = pos;
  rec->type = p[4];
  rec->len = len;
  rec->off = sio_get64(p + 7);
  rec->payload = p + HEADER;
  return 1;
}

/*
** After a damaged record: the next position in pos's block, at or after
** `from` and before lim, where a valid FULL or FIRST record starts, or the
** end of the block (or lim) when there is none. MIDDLE/LAST records only
** ever start at a block boundary, so they are never searched for here.
*/
static int scan_for_record(logio_reader *r, uint64_t from, uint64_t lim, uint64_t *next){
  uint64_t bend = block_end(from - 1);
  uint64_t end = bend < lim ? bend : lim;
  *next = end;
  if( from + HEADER + 1 > end ) return SIO_OK;
  const unsigned char *base;
  int rc = load(r, from, (size_t)(end - from), &base);
  if( rc ) return rc;
  static const unsigned char zero8[8];
  size_t n = (size_t)(end - from) - HEADER;
  for(size_t i = 0; i < n; i++){
    const unsigned char *p = base + i;
    /* Cheap filters first: the type byte and the zero offset of FULL/FIRST. */
    if( p[4] != LOGIO_FULL && p[4] != LOGIO_FIRST ) continue;
    if( memcmp(p + 7, zero8, 8) != 0 ) continue;
    record rec;
    int v = parse_record(r, from + i, lim, &rec);
    if( v < 0 ) return -v;
    if( v ){ *next = from + i; return SIO_OK; }
  }
  return SIO_OK;
}

/*
** The invalid record at pos (just parsed, its header plausible) may have
** only its length field damaged: then some valid record starts at c
** further in its block, and the record read with length c - pos - HEADER
** has a matching checksum (32 bits of evidence). *next = the first such c
** before lim, or 0 when there is none.
*/
static int repair_length(logio_reader *r, uint64_t pos, uint64_t lim, uint64_t *next){
  uint64_t bend = block_end(pos);
  uint64_t end = bend < lim ? bend : lim;
  uint64_t from = pos + HEADER + 1;
  *next = 0;
  while( from < end ){
    uint64_t c;
    int rc = scan_for_record(r, from, end, &c);
    if( rc ) return rc;
    if( c >= end ) break;
    const unsigned char *p;
    rc = load(r, pos, (size_t)(c - pos), &p);
    if( rc ) return rc;
    if( record_checksum_as(p, (size_t)(c - pos - HEADER)) == stored_checksum(p) ){
      *next = c;
      return SIO_OK;
    }
    from = c + 1;
  }
  return SIO_OK;
}

/*
** Where to look for the next record after the invalid one at pos (just
** parsed). If only its length field is damaged, at the record its true
** length leads to. Else, when its header is plausible and the position
** it claims to end at is confirmed (a valid record starts there, or the
** block's padding, or lim), the damage is in its payload: go on from
** there, so that records inside the damaged payload (an entry may hold a
** log) are never taken for the log's own. Otherwise scan the block byte
** by byte.
*/
static int resync(logio_reader *r, uint64_t pos, uint64_t lim, uint64_t *next){
  if( r->claimed > 0 ){
    uint64_t claimed = r->claimed;
    int rc = repair_length(r, pos, lim, next);
    if( rc || *next ) return rc;
    if( pos + HEADER + claimed <= lim ){
      uint64_t cand = pos + HEADER + claimed;
      uint64_t bend = block_end(pos);
      int confirmed = cand == lim || cand == bend;
      if( !confirmed && bend - cand < HEADER + 1 ){
        /* Only the block's zero padding can follow. */
        uint64_t pend = bend < lim ? bend : lim;
        const unsigned char *p;
        rc = load(r, cand, (size_t)(pend - cand), &p);
        if( rc ) return rc;
        confirmed = 1;
        for(uint64_t i = 0; i < pend - cand; i++) if( p[i] ) confirmed = 0;
      }else if( !confirmed ){
        record rec;
        int v = parse_record(r, cand, lim, &rec);
        if( v < 0 ) return -v;
        /* A record there that the end of the image cuts short confirms it too. */
        confirmed = v || r->truncated;
      }
      if( confirmed ){ *next = cand; return SIO_OK; }
    }
  }
  return scan_for_record(r, pos + 1, lim, next);
}

/*
** The record at pos claims a length that runs past the end of the image.
** Usually that is a torn append, and nothing after it is a record (its
** payload may hold anything, even a log): *next = the end of the image.
** But a damaged length field looks the same (see repair_length()).
*/
static int truncated_or_damaged(logio_reader *r, uint64_t pos, uint64_t *next){
  int rc = repair_length(r, pos, r->total, next);
  if( rc == SIO_OK && *next == 0 ) *next = r->total;
  return rc;
}

/* ------------------------------------------------------------ reader */

int logio_reader_open(logio_reader **pp, const logio_image *img, uint64_t start){
  *pp = NULL;
  logio_reader *r = sio_malloc(sizeof(*r));
  if( !r ) return SIO_NOMEM;
  memset(r, 0, sizeof(*r));
  r->img = *img;
  r->total = logio_image_size(img);
  r->pos = start;
  r->skip_continuations = (start % BLOCK == 0);
  *pp = r;
  return SIO_OK;
}

void logio_reader_close(logio_reader *r){
  if( !r ) return;
  sio_free(r->buf);
  sio_free(r->ent);
  sio_free(r);
}

uint64_t logio_reader_tell(const logio_reader *r){ return r->pos; }

static void mark_bad(logio_reader *r, uint64_t off, const char *why){
  if( !r->have_bad ){
    r->have_bad = 1;
    r->bad_start = off;
    r->bad_why = why;
  }
}

const char *logio_reader_problem(const logio_reader *r){
  return r->bad_why ? r->bad_why : "damaged region";
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
    r->stash = *ent;
    r->have_stash = 1;
    return SIO_CORRUPT_LOG;
  }
  *e = *ent;
  return SIO_OK;
}

static int append_payload(logio_reader *r, const record *rec){
  if( r->verify_only ){
    r->ent_len += rec->len;
    return SIO_OK;
  }
  if( r->ent_len + rec->len > r->ent_cap ){
    size_t cap = r->ent_cap ? r->ent_cap : LOGIO_BLOCK;
    while( cap < r->ent_len + rec->len ){
      if( cap > ((size_t)-1) / 2 ) return SIO_TOOBIG;
      cap *= 2;
    }
    unsigned char *p = sio_realloc(r->ent, cap);
    if( !p ) return SIO_NOMEM;
    r->ent = p;
    r->ent_cap = cap;
  }
  memcpy(r->ent + r->ent_len, rec->payload, rec->len);
  r->ent_len += rec->len;
  return SIO_OK;
}

int logio_reader_next(logio_reader *r, logio_entry *e){
  if( r->have_stash ){
    r->have_stash = 0;
    *e = r->stash;
    return SIO_OK;
  }
  if( r->done ) return SIO_DONE;
  for(;;){
    if( r->pos >= r->total ){
      if( r->assembling ){ mark_bad(r, r->ent_start, "incomplete entry at end of log"); r->assembling = 0; }
      r->done = 1;
      if( r->have_bad ){
        r->have_bad = 0;
        e->offset = r->bad_start;
        e->end = r->total;
        e->len = (size_t)(r->total - r->bad_start);
        e->data = NULL;
        return SIO_TORN;
      }
      return SIO_DONE;
    }
    uint64_t bend = block_end(r->pos);
    if( r->total - r->pos < HEADER + 1 && r->total < bend ){
      /* The image ends a few bytes into a record header: a torn write. */
      mark_bad(r, r->assembling ? r->ent_start : r->pos, "truncated record");
      r->assembling = 0;
      r->pos = r->total;
      continue;
    }
    if( bend - r->pos < HEADER + 1 ){
      r->pos = bend;          /* padding at the end of a block */
      continue;
    }
    record rec;
    int v = parse_record(r, r->pos, r->total, &rec);
    if( v < 0 ) return -v;
    if( v == 0 ){
      mark_bad(r, r->assembling ? r->ent_start : r->pos, r->why);
      r->assembling = 0;
      r->skip_continuations = 0;
      if( r->truncated ){
        /* Cut short by the end: a torn append (what follows lies in its
        ** unwritten payload), unless only its length field is damaged. */
        uint64_t at = r->pos;
        int rc = truncated_or_damaged(r, at, &r->pos);
        if( rc ) return rc;
        if( r->pos < r->total && r->bad_start == at ) r->bad_why = "bad record length";
        continue;
      }
      int rc = resync(r, r->pos, r->total, &r->pos);
      if( rc ) return rc;
      continue;
    }
    uint64_t rec_end = rec.pos + HEADER + rec.len;
    if( rec.type == LOGIO_FULL || rec.type == LOGIO_FIRST ){
      if( r->assembling ) mark_bad(r, r->ent_start, "broken entry sequence");
      r->assembling = 0;
      r->pos = rec_end;
      if( rec.type == LOGIO_FULL ){
        logio_entry ent = { rec.pos, rec_end, rec.payload, rec.len };
        return deliver(r, &ent, e);
      }
      r->assembling = 1;
      r->ent_start = rec.pos;
      r->ent_len = 0;
      int rc = append_payload(r, &rec);
      if( rc ) return rc;
      continue;
    }
    /* MIDDLE or LAST */
    r->pos = rec_end;
    if( !r->assembling || rec.off != rec.pos - r->ent_start ){
      if( r->assembling ) mark_bad(r, r->ent_start, "broken entry sequence");
      else if( !r->skip_continuations ) mark_bad(r, rec.pos, "broken entry sequence");
      r->assembling = 0;
      continue;
    }
    int rc = append_payload(r, &rec);
    if( rc ) return rc;
    if( rec.type == LOGIO_LAST ){
      r->assembling = 0;
      logio_entry ent = { r->ent_start, rec_end, r->ent, r->ent_len };
      return deliver(r, &ent, e);
    }
  }
}

/* ------------------------------------------------------------ entries at an offset */

int logio_read_entry_at(const logio_image *img, uint64_t off, logio_entry *e){
  memset(e, 0, sizeof(*e));
  if( off >= logio_image_size(img) ) return SIO_NOTFOUND;
  logio_reader *r;
  int rc = logio_reader_open(&r, img, off);
  if( rc ) return rc;
  logio_entry got;
  rc = logio_reader_next(r, &got);
  if( rc == SIO_OK && got.offset != off ) rc = SIO_CORRUPT_LOG;
  if( rc == SIO_DONE ) rc = SIO_CORRUPT_LOG;
  if( rc == SIO_OK ){
    if( got.data == r->ent ){
      r->ent = NULL;            /* a multi-record entry: take the buffer */
      *e = got;
    }else{
      unsigned char *copy = sio_malloc(got.len);
      if( !copy ){
        rc = SIO_NOMEM;
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

int logio_starts_with_record(const logio_image *img){
  uint64_t total = logio_image_size(img);
  if( total == 0 ) return 0;
  logio_reader *r;
  if( logio_reader_open(&r, img, 0) ) return 0;
  int ok = 0;
  if( total >= HEADER + 1 ){
    record rec;
    int v = parse_record(r, 0, total, &rec);
    int type = v == 1 ? rec.type : 0;
    if( v == 0 && r->truncated ){
      const unsigned char *p;
      if( load(r, 0, HEADER, &p) == SIO_OK ) type = p[4];
    }
    ok = type == LOGIO_FULL || type == LOGIO_FIRST;
  }else if( total > 4 ){
    /* Part of a header: its type says FULL or FIRST, its offset bytes are 0. */
    const unsigned char *p;
    if( load(r, 0, (size_t)total, &p) == SIO_OK ){
      ok = p[4] == LOGIO_FULL || p[4] == LOGIO_FIRST;
      for(uint64_t i = 7; ok && i < total; i++) ok = p[i] == 0;
    }
  }
  logio_reader_close(r);
  return ok;
}

/* ------------------------------------------------------------ rewind */

/* Whether a complete, valid entry starts at start and ends at end. */
static int entry_spans(const logio_image *img, uint64_t start, uint64_t end, int *ok){
  logio_reader *r;
  int rc = logio_reader_open(&r, img, start);
  if( rc ) return rc;
  r->total = end;             /* nothing past the candidate's last record */
  r->verify_only = 1;
  logio_entry e;
  rc = logio_reader_next(r, &e);
  *ok = (rc == SIO_OK && e.offset == start && e.end == end);
  if( rc == SIO_OK || rc == SIO_DONE || rc == SIO_CORRUPT_LOG || rc == SIO_TORN ) rc = SIO_OK;
  logio_reader_close(r);
  return rc;
}

int logio_rewind(const logio_image *img, uint64_t limit,
                 uint64_t *start, uint64_t *end){
  uint64_t total = logio_image_size(img);
  if( limit > total ) limit = total;
  if( limit == 0 ) return SIO_DONE;
  logio_reader *r;
  int rc = logio_reader_open(&r, img, 0);
  if( rc ) return rc;
  /* Record ends (FULL or LAST) of the block being looked at. */
  enum { MAX_RECORDS = LOGIO_BLOCK / (HEADER + 1) + 1 };
  uint64_t *ends_pos = sio_malloc(sizeof(uint64_t) * 2 * MAX_RECORDS);
  if( !ends_pos ){ logio_reader_close(r); return SIO_NOMEM; }
  uint64_t *ends_start = ends_pos + MAX_RECORDS;
  rc = SIO_DONE;
  for(uint64_t b = (limit - 1) / BLOCK; ; b--){
    uint64_t q = b * BLOCK;
    uint64_t bend = q + BLOCK < limit ? q + BLOCK : limit;
    int n = 0;
    while( bend - q >= HEADER + 1 ){
      record rec;
      int v = parse_record(r, q, limit, &rec);
      if( v < 0 ){ rc = -v; goto done; }
      if( v == 0 ){
        int rc2 = r->truncated ? truncated_or_damaged(r, q, &q)
                               : resync(r, q, limit, &q);
        if( rc2 ){ rc = rc2; goto done; }
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
        int rc2 = entry_spans(img, ends_start[n], ends_pos[n], &ok);
        if( rc2 ){ rc = rc2; goto done; }
      }
      if( ok ){
        *start = ends_start[n];
        *end = ends_pos[n];
        rc = SIO_OK;
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
