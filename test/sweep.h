/* SPDX-License-Identifier: MIT */
/*
** sweep.h - for the tests that fail each operation of a workload in turn,
** as SQLite's I/O error tests do: through the library's os hook, the k-th
** operation fails with err, or (full: a disk that fills) every write from
** the k-th on.
**
**   sweep_arm(k, err, full)   count operations from zero, failing as said
**                             (k = 0: none fails, the run counts them)
**   sweep_disarm()            remove the hook; the operations it saw
*/
#ifndef STATEIO_SWEEP_H
#define STATEIO_SWEEP_H

#include <string.h>

#include "stateio.h"

static struct { int count, fail_at, err, full; } sweep;

static int sweep_hook(void *arg, stateio_os_op *o){
  (void)arg;
  if( o->after ) return 0;
  ++sweep.count;
  if( sweep.full ){
    return sweep.fail_at && sweep.count >= sweep.fail_at && strcmp(o->op, "write") == 0 ? sweep.err : 0;
  }
  return sweep.count == sweep.fail_at ? sweep.err : 0;
}

__attribute__((unused))
static void sweep_arm(int k, int err, int full){
  memset(&sweep, 0, sizeof(sweep));
  sweep.fail_at = k;
  sweep.err = err;
  sweep.full = full;
  stateio_set_os_hook(sweep_hook, NULL);
}

__attribute__((unused))
static int sweep_disarm(void){
  stateio_set_os_hook(NULL, NULL);
  return sweep.count;
}

#endif /* STATEIO_SWEEP_H */
