/* SPDX-License-Identifier: MIT */
/*
** sio_image.c - images of a log for the cursors to read: the file opened
** read-only without blocking, or a copy of the writer's view (the file
** followed by the transaction's pending entries).
**
** Every open of a log by the extension for reading is here. The file is
** looked at with stat() first, and anything but a regular file is refused
** before it is opened: opening a FIFO (or a tty) would wait for the other
** end, forever. Only then the library opens it (stateio_open_image, which
** also gives the image what the library knows of the log's commits).
*/
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stateio_ext.h"
SQLITE_EXTENSION_INIT3

void sioImageInit(SioImage *p){
  memset(p, 0, sizeof(*p));
  p->img.fd = -1;
}

void sioImageClose(SioImage *p){
  if( p->img.fd>=0 ) close(p->img.fd);
  sqlite3_free(p->aTail);
  sioImageInit(p);
}

int sioImageCheck(const stateio_image *img){
  /* A damaged first record, or a whole first block destroyed: still a log. */
  if( stateio_image_size(img)==0 || logio_holds_record(img) ) return STATEIO_OK;
  return STATEIO_NOTLOG;
}

int sioImageOpen(const char *zPath, const char *zName, SioImage *pImg, char **pzErr){
  struct stat st;
  int rc;
  sioImageInit(pImg);
  if( stat(zPath, &st)!=0 ) return sioOpenStatus(pzErr, STATEIO_IOERR, zName);
  rc = sioRegularFile(pzErr, st.st_mode, zName);
  if( rc!=SQLITE_OK ) return rc;
  rc = stateio_open_image(zPath, &pImg->img);
  if( rc!=STATEIO_OK ){
    sioImageInit(pImg);
    return sioOpenStatus(pzErr, rc, zName);
  }
  return SQLITE_OK;
}

int sioImageCopy(const stateio_image *img, SioImage *pImg){
  sioImageInit(pImg);
  pImg->img = *img;
  pImg->img.fd = -1;
  pImg->img.tail = 0;
  if( img->tail_len>0 ){
    pImg->aTail = sqlite3_malloc64(img->tail_len);
    if( pImg->aTail==0 ) return STATEIO_NOMEM;
    memcpy(pImg->aTail, img->tail, img->tail_len);
  }
  pImg->img.tail = pImg->aTail;
  if( img->fd>=0 ){
    /* Our own descriptor: the writer may reopen or close its own. */
    pImg->img.fd = fcntl(img->fd, F_DUPFD_CLOEXEC, 0);
    if( pImg->img.fd<0 ){
      int e = errno;
      sqlite3_free(pImg->aTail);
      sioImageInit(pImg);
      errno = e;
      return STATEIO_IOERR;
    }
  }
  return STATEIO_OK;
}
