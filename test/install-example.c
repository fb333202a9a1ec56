/* SPDX-License-Identifier: MIT */
/*
** install-example.c - a program built against an installed stateio, the
** way a user builds one (test/install.test):
**
**   cc install-example.c $(pkg-config --cflags --libs stateio)
**
** It writes a log (an update, a snapshot, an update) to the path given,
** restores it, and prints what it restored, one line each.
*/
#include <stdio.h>
#include <string.h>

#include <stateio.h>

static int fail(const char *what, int rc){
  fprintf(stderr, "install-example: %s: %s\n", what, stateio_errstr(rc));
  return 1;
}

int main(int argc, char **argv){
  const char *path = argc > 1 ? argv[1] : "example.log";
  stateio_writer *w;
  int rc = stateio_writer_open(&w, path, STATEIO_CREATE | STATEIO_SYNC);
  if( rc ) return fail("open", rc);
  if( (rc = stateio_update(w, "x=1", 3)) != STATEIO_OK
   || (rc = stateio_snapshot(w, "{x:1}", 5)) != STATEIO_OK
   || (rc = stateio_update(w, "x=2", 3)) != STATEIO_OK ){
    stateio_writer_close(w);
    return fail("append", rc);
  }
  if( (rc = stateio_writer_close(w)) != STATEIO_OK ) return fail("close", rc);

  stateio_state st;
  stateio_updates *u;
  stateio_entry e;
  if( (rc = stateio_restore_file(path, &st, &u)) != STATEIO_OK ) return fail("restore", rc);
  printf("version %s\n", stateio_version());
  printf("epoch %llu\n", (unsigned long long)st.epoch);
  printf("snapshot %.*s\n", (int)st.snapshot_len, (const char*)st.snapshot);
  while( (rc = stateio_updates_next(u, &e)) == STATEIO_OK ){
    printf("update %.*s\n", (int)e.len, (const char*)e.data);
  }
  stateio_updates_close(u);
  return rc == STATEIO_DONE ? 0 : fail("read updates", rc);
}
