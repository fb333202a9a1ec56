/* SPDX-License-Identifier: MIT */
/*
** os.c - the system calls that change a log's files, in one place.
**
** Every write, sync, truncation, rename, creation, unlink, directory sync
** and lock of the library goes through here, and each one first asks the
** test hooks (stateio.h, "testing hook"): the old fault hook
** (stateio_set_fault_hook: fail a call or make a write short) and the os
** hook (stateio_set_os_hook: the same, plus the file, offset and bytes of
** every operation, and a second call after it succeeded, so that a crash
** simulator can record the workload). EINTR is retried everywhere, the
** injected one too.
**
** Files are opened without blocking (O_NONBLOCK) and anything but a
** regular file is refused before a byte is read, so a FIFO or a device at
** a log's path never hangs a reader or a writer.
*/
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sio_int.h"
#include "stateio.h"

#define SIO_WRITE_CHUNK ((size_t)4 << 20)

static stateio_fault_fn fault_fn;
static void *fault_arg;
static stateio_os_hook os_fn;
static void *os_arg;

void stateio_set_fault_hook(stateio_fault_fn fn, void *arg){
  fault_fn = fn;
  fault_arg = arg;
}

void stateio_set_os_hook(stateio_os_hook fn, void *arg){
  os_fn = fn;
  os_arg = arg;
}

/*
** The name the old fault hook knows an operation by: the log's own writes
** and syncs keep their historic names ("write", "fdatasync", ...); those of
** the commit file are "commit:write", "commit:fdatasync"; the others
** ("create", "rename", "flock", ...) are new names.
*/
static const char *fault_name(const stateio_os_op *o, char *buf, size_t n){
  if( o->file != STATEIO_FILE_COMMIT ) return o->op;
  snprintf(buf, n, "commit:%s", o->op);
  return buf;
}

/* Ask the hooks about o before it runs; the errno to fail it with, or 0. */
static int ask(stateio_os_op *o){
  o->after = 0;
  if( fault_fn ){
    char buf[64];
    size_t n = o->len;
    int e = fault_fn(fault_arg, fault_name(o, buf, sizeof(buf)), &n);
    if( e ) return e;
    if( n < o->len ) o->len = n;
  }
  if( os_fn ){
    int e = os_fn(os_arg, o);
    if( e ) return e;
  }
  return 0;
}

/* Tell the os hook that o succeeded (for a recorder). */
static void tell(stateio_os_op *o){
  if( os_fn ){
    o->after = 1;
    (void)os_fn(os_arg, o);
  }
}

static stateio_os_op op_of(const char *op, int file, const char *path){
  stateio_os_op o;
  memset(&o, 0, sizeof(o));
  o.op = op;
  o.file = file;
  o.path = path;
  return o;
}

int sio_step(const char *name, const char *path){
  stateio_os_op o = op_of(name, STATEIO_FILE_LOG, path);
  int e = ask(&o);
  if( e ){ errno = e; return STATEIO_IOERR; }
  tell(&o);
  return STATEIO_OK;
}

int sio_pread_full(int fd, void *buf, size_t n, uint64_t off){
  unsigned char *p = buf;
  while( n > 0 ){
    ssize_t got = pread(fd, p, n, (off_t)off);
    if( got < 0 ){
      if( errno == EINTR ) continue;
      return STATEIO_IOERR;
    }
    if( got == 0 ){ errno = EIO; return STATEIO_IOERR; }  /* file shrank under us */
    p += got; n -= (size_t)got; off += (uint64_t)got;
  }
  return STATEIO_OK;
}

int sio_pwrite_full(int fd, int file, const char *name, const void *buf,
                    size_t n, uint64_t off){
  const unsigned char *p = buf;
  while( n > 0 ){
    /*
    ** Large chunks, but not one giant write: the kernel copies a
    ** multi-gigabyte write into the page cache several times slower than
    ** the same bytes in pieces of a few MiB (measured: 1 GiB, 220 vs
    ** 1600 MB/s), since one huge write is throttled as a whole.
    */
    size_t asked = n < SIO_WRITE_CHUNK ? n : SIO_WRITE_CHUNK;
    stateio_os_op o = op_of("write", file, name);
    o.offset = off;
    o.data = p;
    o.len = asked;
    int e = ask(&o);
    if( e == EINTR ) continue;
    if( e ){ errno = e; return STATEIO_IOERR; }
    size_t want = o.len == 0 ? asked : o.len;
    ssize_t put = pwrite(fd, p, want, (off_t)off);
    if( put < 0 ){
      if( errno == EINTR ) continue;
      return STATEIO_IOERR;
    }
    o.len = (size_t)put;
    tell(&o);
    if( want < asked && (size_t)put == want ){
      /* An injected short write: report it the way a full disk would. */
      errno = ENOSPC;
      return STATEIO_IOERR;
    }
    p += put; n -= (size_t)put; off += (uint64_t)put;
  }
  return STATEIO_OK;
}

/* fdatasync or fsync (full) of fd, EINTR retried. */
static int do_sync(int fd, int file, const char *name, const char *op, int full){
  for(;;){
    stateio_os_op o = op_of(op, file, name);
    int e = ask(&o);
    if( e == EINTR ) continue;
    if( e ){ errno = e; return STATEIO_IOERR; }
    if( (full ? fsync(fd) : fdatasync(fd)) != 0 ){
      if( errno == EINTR ) continue;
      return STATEIO_IOERR;
    }
    tell(&o);
    return STATEIO_OK;
  }
}

int sio_fdatasync(int fd, int file, const char *name){
  return do_sync(fd, file, name, "fdatasync", 0);
}

int sio_fsync(int fd, int file, const char *name){
  return do_sync(fd, file, name, "fsync", 1);
}

int sio_ftruncate(int fd, int file, const char *name, uint64_t len){
  for(;;){
    stateio_os_op o = op_of("ftruncate", file, name);
    o.offset = len;
    o.len = (size_t)len;
    int e = ask(&o);
    if( e == EINTR ) continue;
    if( e ){ errno = e; return STATEIO_IOERR; }
    if( ftruncate(fd, (off_t)len) != 0 ){
      if( errno == EINTR ) continue;
      return STATEIO_IOERR;
    }
    tell(&o);
    return STATEIO_OK;
  }
}

int sio_rename(int file, const char *from, const char *to){
  stateio_os_op o = op_of("rename", file, from);
  o.path2 = to;
  int e = ask(&o);
  if( e ){ errno = e; return STATEIO_IOERR; }
  if( rename(from, to) != 0 ) return STATEIO_IOERR;
  tell(&o);
  return STATEIO_OK;
}

int sio_unlink(int file, const char *path){
  stateio_os_op o = op_of("unlink", file, path);
  int e = ask(&o);
  if( e ){ errno = e; return STATEIO_IOERR; }
  if( unlink(path) != 0 ) return STATEIO_IOERR;
  tell(&o);
  return STATEIO_OK;
}

int sio_create_fresh(const char *path, int file, int mode, int *pfd){
  struct stat st;
  if( lstat(path, &st) == 0 ){
    int rc = sio_unlink(file, path);
    if( rc ) return rc;
  }
  return sio_open_regular(path, file, O_RDWR | O_CREAT | O_EXCL, mode, pfd);
}

int sio_sync_dir(const char *path){
  char *copy = sio_strdup(path);
  if( !copy ) return STATEIO_NOMEM;
  const char *dir = dirname(copy);
  int rc = STATEIO_IOERR;
  stateio_os_op o = op_of("syncdir", STATEIO_FILE_DIR, dir);
  int e = ask(&o);
  if( e ){
    errno = e;
  }else{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if( dfd >= 0 ){
      while( (rc = fsync(dfd) == 0 ? STATEIO_OK : STATEIO_IOERR) != STATEIO_OK && errno == EINTR ){}
      int e2 = errno;
      close(dfd);
      errno = e2;
      if( rc == STATEIO_OK ) tell(&o);
    }
  }
  sio_free(copy);
  return rc;
}

int sio_open_regular(const char *path, int file, int flags, int mode, int *pfd){
  struct stat st;
  return sio_open_regular_st(path, file, flags, mode, pfd, &st);
}

int sio_open_regular_st(const char *path, int file, int flags, int mode, int *pfd,
                        struct stat *pst){
  *pfd = -1;
  int create = (flags & O_CREAT) != 0;
  stateio_os_op o = op_of(create ? "create" : "open", file, path);
  o.offset = (uint64_t)flags;
  /* Only opens that can change something (create, or open for writing) are asked. */
  if( create || (flags & O_ACCMODE) != O_RDONLY ){
    int e = ask(&o);
    if( e ){ errno = e; return STATEIO_IOERR; }
  }
  int fd;
  while( (fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, mode)) < 0 && errno == EINTR ){}
  if( fd < 0 ) return STATEIO_IOERR;
  if( fstat(fd, pst) != 0 ){
    int e = errno;
    close(fd);
    errno = e;
    return STATEIO_IOERR;
  }
  if( !S_ISREG(pst->st_mode) ){
    close(fd);
    if( S_ISDIR(pst->st_mode) ){ errno = EISDIR; return STATEIO_IOERR; }
    return STATEIO_NOTLOG;       /* a device, a pipe ...: never a log */
  }
  if( create || (flags & O_ACCMODE) != O_RDONLY ) tell(&o);
  *pfd = fd;
  return STATEIO_OK;
}

/* ------------------------------------------------------------ fork */

static unsigned forks;           /* fork()s since the first watch: written only in the child */
static int watch_rc = STATEIO_OK;

static void count_fork(void){ forks++; }
static void watch(void){
  if( pthread_atfork(NULL, NULL, count_fork) != 0 ) watch_rc = STATEIO_NOMEM;
}

int sio_watch_forks(unsigned *count){
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  (void)pthread_once(&once, watch);
  *count = forks;
  return watch_rc;
}

int sio_forked_since(unsigned count){ return count != forks; }

int sio_match_owner(int fd, int file, const char *name, const struct stat *like, mode_t bits){
  struct stat st;
  if( fstat(fd, &st) != 0 ) return STATEIO_IOERR;
  mode_t want = like->st_mode & bits;
  int root = geteuid() == 0;
  uid_t uid = root ? like->st_uid : (uid_t)-1;
  if( (root && st.st_uid != like->st_uid) || st.st_gid != like->st_gid ){
    stateio_os_op o = op_of("chown", file, name);
    int e = ask(&o);
    if( e ){ errno = e; return STATEIO_IOERR; }
    if( fchown(fd, uid, like->st_gid) == 0 ){
      tell(&o);
      st.st_mode &= ~(mode_t)(S_ISUID | S_ISGID);   /* chown clears them: set below */
    }else if( root || errno != EPERM ){
      return STATEIO_IOERR;
    }
    /* Not root, and not in the log's group: the file keeps ours, as cp -p does. */
  }
  if( (st.st_mode & 07777) != want ){
    stateio_os_op o = op_of("chmod", file, name);
    o.offset = (uint64_t)want;
    int e = ask(&o);
    if( e ){ errno = e; return STATEIO_IOERR; }
    if( fchmod(fd, want) != 0 ) return STATEIO_IOERR;
    tell(&o);
  }
  return STATEIO_OK;
}

char *sio_suffixed(const char *path, const char *suffix){
  size_t n = strlen(path), k = strlen(suffix);
  char *p = sio_malloc(n + k + 1);
  if( p ){
    memcpy(p, path, n);
    memcpy(p + n, suffix, k + 1);
  }
  return p;
}

int sio_name_fits(const char *path){
  struct stat st;
  int e = errno;
  int fits = stat(path, &st) == 0 || errno != ENAMETOOLONG;
  errno = e;
  return fits;
}

int sio_path_names(const char *path, const struct stat *st){
  struct stat now;
  return stat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

/* path against the working directory, allocated (path itself if that cannot be known). */
static char *absolute(const char *path){
  if( path[0] == '/' ) return sio_strdup(path);
  char *cwd = getcwd(NULL, 0);           /* malloc()ed by libc */
  if( !cwd ) return sio_strdup(path);
  size_t n = strlen(cwd) + 1 + strlen(path) + 1;
  char *p = sio_malloc(n);
  if( p ) snprintf(p, n, "%s/%s", cwd, path);
  free(cwd);
  return p;
}

char *sio_log_path(const char *path){
  struct stat st;
  if( lstat(path, &st) != 0 || !S_ISLNK(st.st_mode) ) return absolute(path);
  char *real = realpath(path, NULL);     /* malloc()ed by libc: copied into ours */
  if( !real ) return absolute(path);     /* a dangling link: the open will say so */
  char *p = sio_strdup(real);
  free(real);
  return p;
}

int sio_flock(int fd, int file, const char *name, int how){
  for(;;){
    stateio_os_op o = op_of((how & LOCK_UN) ? "unlock" : "flock", file, name);
    o.offset = (uint64_t)how;
    int e = ask(&o);
    if( e == EINTR ) continue;
    if( e ){ errno = e; return e == EWOULDBLOCK ? STATEIO_BUSY : STATEIO_IOERR; }
    if( flock(fd, how) != 0 ){
      if( errno == EINTR ) continue;
      return errno == EWOULDBLOCK ? STATEIO_BUSY : STATEIO_IOERR;
    }
    tell(&o);
    return STATEIO_OK;
  }
}
