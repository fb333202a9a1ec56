/* SPDX-License-Identifier: MIT */
/*
** resync.c - the recovery policy: where a reader may go on after a damaged
** record.
**
** The reference (and LevelDB) drop the rest of the block: after a bad
** record nothing more of its block is read, and reading resumes with the
** first record of the next block. That never takes a byte inside a payload
** for a record, but it loses every entry that follows the damage in the
** block. A state log's entries often hold logs themselves (the snapshot of
** a service that keeps logs, a log shipped inside an update), so a reader
** that searched the rest of the block for something that looks like a
** record would find records that were never written as the log's own.
**
** We go on inside the block only at the END OF THE DAMAGED RECORD ITSELF,
** and only when the structure proves where that end is:
**
**   1. its stored checksum matches the record with one header field
**      repaired: another type, an offset of 0 (FULL/FIRST) or the distance
**      back to the entry being assembled (MIDDLE/LAST), or another length,
**      one a single damaged byte could have come from, that ends the
**      record at a record boundary (a valid record, the block's padding,
**      the block's end or the image's end): 32 bits of evidence that the
**      repaired header is the one written;
**   2. its checksum proves its length as it stands: the checksum of the
**      record as stored matches (its type or offset breaks the rules, but
**      its bytes are the ones checksummed), or differs from the stored one
**      in one byte only (the checksum field alone is damaged: 24 bits of
**      evidence that the other fields and the payload are intact);
**
** Damage in a payload proves nothing: the header's length may be damaged
** too, and the end it claims may then land on a record of a log held in
** some entry's data. So the rest of the block is dropped, as the reference
** does, and reported as damaged: a reader never goes on where only a
** damaged header says it may.
**
** Otherwise (and so after any damage to a payload) the rest of the block
** is dropped, and the reader goes on at the next block boundary (where records that
** continue an entry begun in the damage are passed over). Never at a byte
** found by searching the block: the only other positions tried are the
** candidate ends of (1)'s length repair, and each is accepted only by the
** damaged record's own checksum.
**
** A record that runs past the end of the image is a torn append, unless
** (1) proves its length field damaged: then nothing after it is a record,
** since its missing payload may have held anything, even a log.
*/
#include <string.h>

#include "record.h"

/* Whether the record h (as repaired) keeps the block's rules. */
static int repaired_ok(const sio_record *h, const sio_block *b){
  return sio_record_plausible(h) && h->pos + REC_HEADER + h->len <= b->base + b->n;
}

/* Whether h with its stored checksum is proven by its fields as they are. */
static int sum_matches(const sio_record *h){
  return sio_record_sum(h->type, h->len, h->off, h->payload) == h->checksum;
}

/* Whether the bytes [from, end of block) are padding: zeros, too few for a record. */
static int padding_from(const sio_block *b, uint64_t from){
  uint64_t bend = b->base + REC_BLOCK;
  if( b->base + b->n != bend || bend - from >= REC_HEADER + 1 ) return 0;
  for(uint64_t i = from; i < bend; i++) if( b->p[i - b->base] ) return 0;
  return 1;
}

/* Whether a valid record starts at c (a FULL or FIRST: nothing else starts inside a block). */
static int valid_record_at(const sio_block *b, uint64_t c, sio_record *rec){
  const char *why;
  int trunc;
  if( b->base + b->n - c < REC_HEADER + 1 ) return 0;
  const unsigned char *p = b->p + (c - b->base);
  /* Cheap filters first: the type, and the zero offset of FULL/FIRST. */
  if( p[REC_TYPE] != LOGIO_FULL && p[REC_TYPE] != LOGIO_FIRST ) return 0;
  for(int i = 0; i < 8; i++) if( p[REC_OFFSET + i] ) return 0;
  return sio_record_parse(b, c, rec, &why, &trunc);
}

/*
** Whether h would be plausible with its type replaced, or with the one
** damaged byte of a FULL or FIRST's zero offset cleared (*near: that header).
** With opens set the record before h ended an entry, so h opens one: only
** FULL and FIRST are candidates (a FULL whose offset is damaged is not a
** LAST of an entry that never began).
*/
static int one_field_off(const sio_record *h, int opens, sio_record *near){
  sio_record t = *h;
  for(int type = LOGIO_FULL; type <= (opens ? LOGIO_FIRST : LOGIO_LAST); type++){
    t.type = type;
    if( sio_record_plausible(&t) ){ *near = t; return 1; }
  }
  /* An offset of 0 with one of its bytes damaged (not any offset at all). */
  int nonzero = 0;
  for(int i = 0; i < 8; i++) if( (h->off >> (8 * i)) & 0xff ) nonzero++;
  if( nonzero != 1 ) return 0;
  t = *h;
  t.off = 0;
  if( sio_record_plausible(&t) ){ *near = t; return 1; }
  return 0;
}

static int proven_by_checksum(const sio_block *b, const sio_record *h, uint64_t ent_start,
                              int links, sio_record *out, const char **why);

/*
** Whether position c is a proven record boundary of the block: its end,
** the end of the window (the image's end, or a rewind's limit, which is
** the start of an entry found before), the start of the block's zero
** padding, or the start of a valid record (with links set: or of a
** record whose end its own checksum proves, rules 1 and 2).
**
** Only what lies at c is looked at, never further: a reader that sees
** more of a growing file (or the whole of a file another saw cut short)
** then finds every entry the other found.
*/
static int boundary_at(const sio_block *b, uint64_t c, int links){
  uint64_t end = b->base + b->n;
  if( c == b->base + REC_BLOCK || c == end ) return 1;
  if( c > end ) return 0;
  if( padding_from(b, c) ) return 1;
  /* Too few bytes for a header before the end of the image: one cut short begins here. */
  if( b->image_end && end - c < REC_HEADER + 1 && end < b->base + REC_BLOCK ) return 1;
  sio_record rec;
  if( valid_record_at(b, c, &rec) ) return 1;
  if( !links || end - c < REC_HEADER + 1 ) return 0;
  sio_record h, fixed;
  const char *why;
  sio_record_decode(b->p + (c - b->base), c, &h);
  /* Cheap first: a header with at most its type or offset off. */
  if( !sio_record_plausible(&h) && !one_field_off(&h, 0, &fixed) ) return 0;
  return proven_by_checksum(b, &h, REC_NONE, 0, &fixed, &why);
}

/*
** Whether something at c looks like a record header (at most its type or
** offset off), however damaged what follows: a place where a record may
** begin, to try a repaired length against (the checksum decides).
*/
static int header_like(const sio_block *b, uint64_t c){
  if( c > b->base + b->n || b->base + b->n - c < REC_HEADER + 1 ) return 0;
  sio_record h, near;
  sio_record_decode(b->p + (c - b->base), c, &h);
  return sio_record_plausible(&h) || one_field_off(&h, 0, &near);
}

/*
** (1) One field repaired, proven by the stored checksum. With links unset
** (the record is itself the proof of another's end) the length is not
** tried: only its type and offset.
*/
static int repair_field(const sio_block *b, const sio_record *h, uint64_t ent_start,
                        int links, sio_record *out, const char **why){
  sio_record t = *h;
  /* The type. */
  for(int type = LOGIO_FULL; type <= LOGIO_LAST; type++){
    if( type == h->type ) continue;
    t.type = type;
    if( repaired_ok(&t, b) && sum_matches(&t) ){ *out = t; *why = "bad record type"; return 1; }
  }
  t = *h;
  /* The offset: 0 for FULL/FIRST, the way back to the entry for MIDDLE/LAST. */
  if( h->type == LOGIO_FULL || h->type == LOGIO_FIRST ) t.off = 0;
  else if( ent_start != REC_NONE && ent_start < h->pos ) t.off = h->pos - ent_start;
  if( t.off != h->off && repaired_ok(&t, b) && sum_matches(&t) ){
    *out = t;
    *why = "bad record offset";
    return 1;
  }
  /*
  ** The length: the lengths one damaged byte could have come from (the
  ** stored value with either of its bytes replaced, or one more or less,
  ** which may carry into the other byte), each tried only where it ends
  ** the record at a record boundary or before something that looks like a
  ** record header. A few hundred candidates, not every byte of the block:
  ** a torn append has its length tried, and a record whose payload holds
  ** a log offers a boundary at each of its records.
  */
  if( !links ) return 0;    /* a record that proves another's end: type and offset only */
  t = *h;
  for(int k = 0; k < 2 * 256 + 4; k++){
    size_t len;
    if( k < 256 ) len = (h->len & 0xff00) | (size_t)k;
    else if( k < 512 ) len = (h->len & 0x00ff) | ((size_t)(k - 256) << 8);
    else{
      static const int delta[4] = { 1, -1, 2, -2 };
      long v = (long)h->len + delta[k - 512];
      if( v <= 0 || v > 0xffff ) continue;
      len = (size_t)v;
    }
    if( len == 0 || len == h->len ) continue;
    uint64_t c = h->pos + REC_HEADER + len;
    if( c > b->base + b->n ) continue;
    if( !boundary_at(b, c, links) && !header_like(b, c) ) continue;
    t.len = len;
    if( repaired_ok(&t, b) && sum_matches(&t) ){ *out = t; *why = "bad record length"; return 1; }
  }
  return 0;
}

/*
** (2) The checksum proves the record's extent as it stands: it matches
** the fields as stored although they break the rules (a record whose type
** or offset a writer of the format never writes), or it differs from them
** in one byte only (the checksum field alone is damaged).
*/
static int extent_by_checksum(const sio_block *b, const sio_record *h, const char **why){
  if( h->len == 0 || h->pos + REC_HEADER + h->len > b->base + b->n ) return 0;
  uint32_t d = sio_record_sum(h->type, h->len, h->off, h->payload) ^ h->checksum;
  int bytes = 0;
  for(int i = 0; i < 4; i++) if( (d >> (8 * i)) & 0xff ) bytes++;
  if( bytes == 0 ){ *why = "bad record header"; return 1; }
  if( bytes == 1 ){ *why = "checksum mismatch"; return 1; }
  return 0;
}

/* Rules (1) and (2): the record's end proven by its stored checksum. */
static int proven_by_checksum(const sio_block *b, const sio_record *h, uint64_t ent_start,
                              int links, sio_record *out, const char **why){
  if( repair_field(b, h, ent_start, links, out, why) ) return 1;
  *out = *h;
  return extent_by_checksum(b, h, why);
}

void sio_resync_after(const sio_block *b, uint64_t pos, uint64_t ent_start, int opens,
                      sio_resync *out){
  uint64_t end = b->base + b->n;
  memset(out, 0, sizeof(*out));
  out->next = end;
  out->why = "bad record header";
  if( end - pos < REC_HEADER + 1 ){
    if( b->image_end && end < rec_block_end(pos) ){
      out->why = "truncated record";
      out->truncated = 1;
    }
    return;
  }
  sio_record h;
  sio_record_decode(b->p + (pos - b->base), pos, &h);
  int plausible = sio_record_plausible(&h);
  int fits = pos + REC_HEADER + h.len <= end;
  sio_record near;
  if( !fits && b->image_end && (plausible || one_field_off(&h, opens, &near)) ){
    /*
    ** A header (with at most one field damaged) whose record runs past
    ** the end of the image: an append cut short, whatever its payload
    ** holds. Its one damaged field cannot be proven without its bytes.
    */
    out->why = "truncated record";
    out->truncated = 1;
    out->plausible = 1;
    out->rec = plausible ? h : near;
  }
  sio_record fixed;
  const char *why;
  if( proven_by_checksum(b, &h, ent_start, 1, &fixed, &why) ){
    out->proven = 1;
    out->plausible = sio_record_plausible(&fixed);
    out->rec = fixed;
    out->truncated = 0;
    out->why = why;
    out->next = pos + REC_HEADER + fixed.len;
    return;
  }
  if( !fits ) return;                    /* torn, or outside the window */
  if( plausible ){
    /* A plausible header with a damaged payload: its extent is unproven. */
    out->plausible = 1;
    out->rec = h;
    out->why = "checksum mismatch";
  }
}

int sio_block_has_record(const sio_block *b, uint64_t from){
  uint64_t end = b->base + b->n;
  sio_record rec;
  const char *why;
  int trunc;
  /* A valid continuation record at the block's start counts as well. */
  if( from <= b->base && sio_record_parse(b, b->base, &rec, &why, &trunc) ) return 1;
  static const unsigned char zero8[8];
  for(uint64_t c = from; c + REC_HEADER + 1 <= end; c++){
    const unsigned char *p = b->p + (c - b->base);
    /* A FULL or FIRST header: its type, and its offset's eight zero bytes. */
    if( p[REC_TYPE] != LOGIO_FULL && p[REC_TYPE] != LOGIO_FIRST ) continue;
    if( memcmp(p + REC_OFFSET, zero8, 8) != 0 ) continue;
    if( valid_record_at(b, c, &rec) ) return 1;
    /* Or a header a writer wrote (however damaged its payload), ending at a boundary. */
    sio_record_decode(p, c, &rec);
    if( sio_record_plausible(&rec) && c + REC_HEADER + rec.len <= end
     && boundary_at(b, c + REC_HEADER + rec.len, 0) ) return 1;
  }
  return 0;
}
