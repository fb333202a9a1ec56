/* SPDX-License-Identifier: MIT */
/*
** alloc.c - the library's one allocator. Every allocation goes through
** here so that a port, or a test that counts allocations, changes one file.
*/
#include <stdlib.h>
#include <string.h>
#include "sio_int.h"
#include "logio.h"

void *sio_malloc(size_t n){ return malloc(n ? n : 1); }
void *sio_realloc(void *p, size_t n){ return realloc(p, n ? n : 1); }
void sio_free(void *p){ free(p); }
void stateio_free(void *p){ free(p); }

char *sio_strdup(const char *s){
  size_t n = strlen(s) + 1;
  char *p = sio_malloc(n);
  if( p ) memcpy(p, s, n);
  return p;
}
