/* SPDX-License-Identifier: MIT */
/*
** prefetch.c - reading ahead and verifying on a second thread, for large
** sequential scans (a check, a compaction, a salvage, a full scan).
**
** One core's XXH64 runs at about the speed of one copy out of the page
** cache, so a reader that copies and then verifies gets about a third of
** the bandwidth of a plain read(). Records never cross a block and every
** block's first record starts at the block's start, so each block can be
** verified on its own: the scan is cut into chunks of whole blocks, and
** the chunks are shared between the reader's thread and one helper
** thread, each reading a chunk and walking the records of each block from
** the block's start, checking headers and checksums. Chunks are claimed
** in order by whichever thread is free: the helper works ahead (up to the
** ring's size), and the reader fills a chunk itself (the first one, and
** any it would otherwise wait for). So the work divides by itself: with
** small entries, where the reader's own work per entry is large, the
** helper verifies nearly every chunk; with large ones the reader catches
** up and takes its share. For each block the reader is told how many
** bytes from its start form an unbroken chain of valid records; it takes
** a record on that chain as valid without hashing it again, and parses
** everything else itself, as always. The helper stops at the first record of a block
** that is not valid: what comes after damage is the reader's to judge.
*/
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "record.h"
#include "sio_int.h"

#define CHUNK_BLOCKS 16
#define CHUNK        (CHUNK_BLOCKS * REC_BLOCK)
#define RING         8

typedef struct slot {
  uint64_t k;              /* the chunk it holds (UINT64_MAX: none) */
  int ready;               /* filled and verified */
  int rc;                  /* the read's status */
  int err;                 /* ... and its errno (errno is the reading thread's own) */
  unsigned char *buf;
  uint32_t chain[CHUNK_BLOCKS];
} slot;

struct sio_prefetch {
  stateio_image img;
  uint64_t total;          /* read no further */
  uint64_t nchunks;        /* chunks up to total */
  uint64_t cur;            /* the chunk the reader is in */
  uint64_t next_claim;     /* the first chunk no thread has claimed */
  uint64_t have;           /* the chunk the reader last got, ready (UINT64_MAX: none) */
  slot ring[RING];
  pthread_t helper;
  int inited;              /* mu and cv are initialised */
  int started;             /* the helper thread runs */
  int quit;
  unsigned forks;          /* sio_watch_forks() at the start: forked since, a child */
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

/* Read chunk k into s and verify the record chain of each of its blocks. */
static void fill(sio_prefetch *pf, slot *s, uint64_t k){
  uint64_t base = k * CHUNK;
  uint64_t end = base + CHUNK < pf->total ? base + CHUNK : pf->total;
  s->rc = sio_image_read(&pf->img, base, (size_t)(end - base), s->buf);
  s->err = s->rc ? errno : 0;
  for(uint64_t b = 0; b < CHUNK_BLOCKS; b++){
    uint64_t bbase = base + b * REC_BLOCK;
    s->chain[b] = 0;
    if( s->rc || bbase >= end ) continue;
    sio_block blk;
    blk.p = s->buf + b * REC_BLOCK;
    blk.base = bbase;
    blk.n = (size_t)((end - bbase) < REC_BLOCK ? end - bbase : REC_BLOCK);
    blk.image_end = 0;
    s->chain[b] = (uint32_t)sio_block_chain(&blk);
  }
}

/*
** Claim the next chunk nobody has claimed and fill it, called and
** returning with the mutex held (released while the chunk is read).
*/
static void claim_and_fill(sio_prefetch *pf){
  uint64_t j = pf->next_claim++;
  slot *s = &pf->ring[j % RING];
  s->k = j;
  s->ready = 0;
  pthread_mutex_unlock(&pf->mu);
  fill(pf, s, j);
  pthread_mutex_lock(&pf->mu);
  s->ready = 1;
  pthread_cond_broadcast(&pf->cv);
}

static void *helper_main(void *arg){
  sio_prefetch *pf = arg;
  pthread_mutex_lock(&pf->mu);
  for(;;){
    /* A slot is free once the reader has moved past the chunk RING before. */
    while( !pf->quit && pf->next_claim < pf->nchunks && pf->next_claim >= pf->cur + RING ){
      pthread_cond_wait(&pf->cv, &pf->mu);
    }
    if( pf->quit || pf->next_claim >= pf->nchunks ) break;
    claim_and_fill(pf);
  }
  pthread_mutex_unlock(&pf->mu);
  return NULL;
}

int sio_prefetch_start(sio_prefetch **pp, const stateio_image *img, uint64_t from, uint64_t total){
  *pp = NULL;
  sio_prefetch *pf = sio_malloc(sizeof(*pf));
  if( !pf ) return STATEIO_NOMEM;
  memset(pf, 0, sizeof(*pf));
  pf->img = *img;
  pf->total = total;
  pf->cur = from / CHUNK;
  pf->next_claim = pf->cur;
  pf->have = UINT64_MAX;
  pf->nchunks = (total + CHUNK - 1) / CHUNK;
  for(int i = 0; i < RING; i++){
    pf->ring[i].k = UINT64_MAX;
    pf->ring[i].buf = sio_malloc(CHUNK);
    if( !pf->ring[i].buf ){
      sio_prefetch_stop(pf);
      return STATEIO_NOMEM;
    }
  }
  if( pthread_mutex_init(&pf->mu, NULL) != 0 ){
    sio_prefetch_stop(pf);
    return STATEIO_NOMEM;
  }
  if( pthread_cond_init(&pf->cv, NULL) != 0 ){
    pthread_mutex_destroy(&pf->mu);
    sio_prefetch_stop(pf);
    return STATEIO_NOMEM;
  }
  pf->inited = 1;
  /*
  ** The first chunk is the reader's, filled here: it never waits for a
  ** thread to be scheduled before its first entry, and a scan of one
  ** chunk starts no thread at all.
  */
  pthread_mutex_lock(&pf->mu);
  claim_and_fill(pf);
  pthread_mutex_unlock(&pf->mu);
  /*
  ** Without a helper (none needed, or none could start, or forks cannot be
  ** told) the reader fills every chunk.
  */
  if( pf->next_claim < pf->nchunks && sio_watch_forks(&pf->forks) == STATEIO_OK ){
    pf->started = pthread_create(&pf->helper, NULL, helper_main, pf) == 0;
  }
  *pp = pf;
  return STATEIO_OK;
}

int sio_prefetch_get(sio_prefetch *pf, uint64_t off, const unsigned char **p,
                     uint64_t *base, size_t *n, const uint32_t **chain){
  uint64_t k = off / CHUNK;
  if( k < pf->cur || k > pf->cur + 1 || k >= pf->nchunks ) return STATEIO_NOTFOUND;
  /*
  ** In a child of fork() the helper is gone, perhaps with a chunk half
  ** filled or the mutex held: the reader reads for itself from here on.
  */
  if( pf->started && sio_forked_since(pf->forks) ) return STATEIO_NOTFOUND;
  slot *s = &pf->ring[k % RING];
  if( k != pf->have ){
    /* Every record of a chunk asks for it: only the first ask takes the mutex. */
    pthread_mutex_lock(&pf->mu);
    if( k > pf->cur ){ pf->cur = k; pthread_cond_broadcast(&pf->cv); }
    while( !(s->k == k && s->ready) ){
      /*
      ** Not ready: rather than wait, fill the next chunk nobody has
      ** claimed (k itself when the helper is behind, else one ahead of
      ** the chunk the helper is filling).
      */
      if( pf->next_claim < pf->nchunks && pf->next_claim < pf->cur + RING ){
        claim_and_fill(pf);
      }else{
        pthread_cond_wait(&pf->cv, &pf->mu);
      }
    }
    pthread_mutex_unlock(&pf->mu);
    pf->have = k;
  }
  if( s->rc ){
    errno = s->err;        /* the helper's read may have failed: its errno, not this thread's */
    return s->rc;
  }
  *base = k * CHUNK;
  *n = (size_t)((k * CHUNK + CHUNK < pf->total ? k * CHUNK + CHUNK : pf->total) - k * CHUNK);
  *p = s->buf;
  *chain = s->chain;
  return STATEIO_OK;
}

void sio_prefetch_stop(sio_prefetch *pf){
  if( !pf ) return;
  if( pf->started && sio_forked_since(pf->forks) ){
    pf->started = pf->inited = 0;   /* the child has no helper to stop, nor a mutex to trust */
  }
  if( pf->started ){
    pthread_mutex_lock(&pf->mu);
    pf->quit = 1;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    pthread_join(pf->helper, NULL);
  }
  if( pf->inited ){
    pthread_cond_destroy(&pf->cv);
    pthread_mutex_destroy(&pf->mu);
  }
  for(int i = 0; i < RING; i++) sio_free(pf->ring[i].buf);
  sio_free(pf);
}
