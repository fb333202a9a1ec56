/* SPDX-License-Identifier: MIT */
/*
** record.c - decoding, checking and encoding one record header (record.h).
*/
#include <string.h>

#define XXH_INLINE_ALL   /* the library's inlined fast path (header from libxxhash-dev) */
#include <xxhash.h>

#include "record.h"
#include "sio_int.h"

void sio_record_decode(const unsigned char *p, uint64_t pos, sio_record *h){
  h->pos = pos;
  h->checksum = (uint32_t)p[REC_CHECKSUM] | ((uint32_t)p[REC_CHECKSUM + 1] << 8)
              | ((uint32_t)p[REC_CHECKSUM + 2] << 16) | ((uint32_t)p[REC_CHECKSUM + 3] << 24);
  h->type = p[REC_TYPE];
  h->len = (size_t)p[REC_LENGTH] | ((size_t)p[REC_LENGTH + 1] << 8);
  h->off = sio_get64(p + REC_OFFSET);
  h->payload = p + REC_HEADER;
}

int sio_record_plausible(const sio_record *h){
  uint64_t bend = rec_block_end(h->pos);
  if( h->type < LOGIO_FULL || h->type > LOGIO_LAST || h->len == 0 ) return 0;
  if( h->pos + REC_HEADER + h->len > bend ) return 0;
  if( h->type == LOGIO_FULL || h->type == LOGIO_FIRST ){
    if( h->off != 0 ) return 0;
  }else{
    if( h->off == 0 || h->off > h->pos || h->pos % REC_BLOCK != 0 ) return 0;
  }
  if( (h->type == LOGIO_FIRST || h->type == LOGIO_MIDDLE)
   && h->pos + REC_HEADER + h->len != bend ) return 0;
  return 1;
}

uint32_t sio_record_sum(int type, size_t len, uint64_t off,
                        const unsigned char *payload){
  unsigned char head[REC_HEADER - REC_TYPE];
  head[0] = (unsigned char)type;
  head[1] = (unsigned char)len;
  head[2] = (unsigned char)(len >> 8);
  sio_put64(head + 3, off);
  XXH64_state_t st;
  XXH64_reset(&st, 0);
  XXH64_update(&st, head, sizeof(head));
  XXH64_update(&st, payload, len);
  return (uint32_t)XXH64_digest(&st);
}

/* The checksum of the record at p as it stands (the common, fast case). */
static uint32_t record_sum_in_place(const unsigned char *p, size_t len){
  return (uint32_t)XXH64(p + REC_TYPE, REC_HEADER - REC_TYPE + len, 0);
}

void sio_record_encode(unsigned char *out, int type, size_t len, uint64_t off,
                       const unsigned char *payload){
  out[REC_TYPE] = (unsigned char)type;
  out[REC_LENGTH] = (unsigned char)len;
  out[REC_LENGTH + 1] = (unsigned char)(len >> 8);
  sio_put64(out + REC_OFFSET, off);
  uint32_t sum = payload == out + REC_HEADER ? record_sum_in_place(out, len)
                                            : sio_record_sum(type, len, off, payload);
  out[REC_CHECKSUM] = (unsigned char)sum;
  out[REC_CHECKSUM + 1] = (unsigned char)(sum >> 8);
  out[REC_CHECKSUM + 2] = (unsigned char)(sum >> 16);
  out[REC_CHECKSUM + 3] = (unsigned char)(sum >> 24);
}

int sio_record_parse(const sio_block *b, uint64_t pos, sio_record *rec,
                     const char **why, int *truncated){
  uint64_t end = b->base + b->n;
  *truncated = 0;
  *why = "bad record header";
  if( end - pos < REC_HEADER + 1 ){
    /* The bytes end inside the header: a torn write, whatever it holds. */
    if( b->image_end && end < rec_block_end(pos) ){
      *why = "truncated record";
      *truncated = 1;
    }
    return 0;
  }
  const unsigned char *p = b->p + (pos - b->base);
  sio_record_decode(p, pos, rec);
  if( !sio_record_plausible(rec) ) return 0;
  if( REC_HEADER + rec->len > end - pos ){
    if( b->image_end ){
      *why = "truncated record";
      *truncated = 1;
    }
    return 0;
  }
  if( record_sum_in_place(p, rec->len) != rec->checksum ){
    *why = "checksum mismatch";
    return 0;
  }
  return 1;
}

size_t sio_block_chain(const sio_block *b){
  uint64_t pos = b->base, end = b->base + b->n;
  while( end - pos >= REC_HEADER + 1 ){
    const unsigned char *p = b->p + (pos - b->base);
    sio_record h;
    sio_record_decode(p, pos, &h);
    if( !sio_record_plausible(&h) || pos + REC_HEADER + h.len > end ) break;
    if( record_sum_in_place(p, h.len) != h.checksum ) break;
    pos += REC_HEADER + h.len;
  }
  return (size_t)(pos - b->base);
}
