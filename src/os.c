/*
** os.c - the system calls that read and change a log file. Writes, syncs
** and truncations pass through the test hook (stateio_set_fault_hook) so
** that tests can make any of them fail or come up short.
*/
#include <errno.h>
#include <unistd.h>
#include "sio_int.h"
#include "stateio.h"

#define SIO_WRITE_CHUNK ((size_t)4 << 20)

static stateio_fault_fn fault_fn;
static void *fault_arg;

void stateio_set_fault_hook(stateio_fault_fn fn, void *arg){
  fault_fn = fn;
  fault_arg = arg;
}

/* Ask the hook about op; returns the errno to fail with, or 0. */
int sio_fault(const char *op, size_t *n){
  return fault_fn ? fault_fn(fault_arg, op, n) : 0;
}

int sio_pread_full(int fd, void *buf, size_t n, uint64_t off){
  unsigned char *p = buf;
  while( n > 0 ){
    ssize_t got = pread(fd, p, n, (off_t)off);
    if( got < 0 ){
      if( errno == EINTR ) continue;
      return SIO_IOERR;
    }
    if( got == 0 ){ errno = EIO; return SIO_IOERR; }  /* file shrank under us */
    p += got; n -= (size_t)got; off += (uint64_t)got;
  }
  return SIO_OK;
}

int sio_pwrite_full(int fd, const void *buf, size_t n, uint64_t off){
  const unsigned char *p = buf;
  while( n > 0 ){
    /*
    ** Large chunks, but not one giant write: the kernel copies a
    ** multi-gigabyte write into the page cache several times slower than
    ** the same bytes in pieces of a few MiB (measured: 1 GiB, 220 vs
    ** 1600 MB/s), since one huge write is throttled as a whole.
    */
    size_t asked = n < SIO_WRITE_CHUNK ? n : SIO_WRITE_CHUNK;
    size_t want = asked;
    int e = sio_fault("write", &want);
    if( e ){ errno = e; return SIO_IOERR; }
    if( want == 0 || want > asked ) want = asked;
    ssize_t put = pwrite(fd, p, want, (off_t)off);
    if( put < 0 ){
      if( errno == EINTR ) continue;
      return SIO_IOERR;
    }
    if( want < asked && (size_t)put == want ){
      /* An injected short write: report it the way a full disk would. */
      errno = ENOSPC;
      return SIO_IOERR;
    }
    p += put; n -= (size_t)put; off += (uint64_t)put;
  }
  return SIO_OK;
}

int sio_fdatasync(int fd){
  size_t n = 0;
  int e = sio_fault("fdatasync", &n);
  if( e ){ errno = e; return SIO_IOERR; }
  return fdatasync(fd) == 0 ? SIO_OK : SIO_IOERR;
}

int sio_fsync(int fd){
  size_t n = 0;
  int e = sio_fault("fsync", &n);
  if( e ){ errno = e; return SIO_IOERR; }
  return fsync(fd) == 0 ? SIO_OK : SIO_IOERR;
}

int sio_ftruncate(int fd, uint64_t len){
  size_t n = (size_t)len;
  int e = sio_fault("ftruncate", &n);
  if( e ){ errno = e; return SIO_IOERR; }
  while( ftruncate(fd, (off_t)len) != 0 ){
    if( errno != EINTR ) return SIO_IOERR;
  }
  return SIO_OK;
}
