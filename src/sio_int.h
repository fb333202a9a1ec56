/*
** sio_int.h - internals shared by the library's files; not installed.
** The allocator lives in one place (alloc.c) and every system call that
** changes a file goes through os.c, where tests can inject faults.
*/
#ifndef STATEIO_SIO_INT_H
#define STATEIO_SIO_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

void *sio_malloc(size_t n);
void *sio_realloc(void *p, size_t n);
char *sio_strdup(const char *s);
/* sio_free() is public: see logio.h. */

/* Read exactly n bytes at off (loops over short reads); SIO_OK or SIO_IOERR. */
int sio_pread_full(int fd, void *buf, size_t n, uint64_t off);
/* Write exactly n bytes at off (loops); SIO_OK or SIO_IOERR (errno set). */
int sio_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
int sio_fdatasync(int fd);
/* The test hook (stateio_set_fault_hook): errno to fail op with, or 0. */
int sio_fault(const char *op, size_t *n);
int sio_fsync(int fd);
int sio_ftruncate(int fd, uint64_t len);

/*
** Where an appending writer must go on: the end of the last complete entry
** of img (*end) and the epoch in force there (*epoch). SIO_NOTLOG when img
** holds nothing of a log; SIO_CORRUPT_* when the last entry cannot say
** which epoch is current.
*/
struct logio_image;
int sio_log_end(const struct logio_image *img, uint64_t *end, uint64_t *epoch);

/* Little-endian helpers. */
static inline uint64_t sio_get64(const unsigned char *p){
  uint64_t v = 0;
  for(int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static inline void sio_put64(unsigned char *p, uint64_t v){
  for(int i = 0; i < 8; i++){ p[i] = (unsigned char)v; v >>= 8; }
}

#endif
