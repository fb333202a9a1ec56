/* SPDX-License-Identifier: MIT */
/*
** version.c - the version of the library (stateio.h).
*/
#include "stateio.h"

const char *stateio_version(void){
  return STATEIO_VERSION;
}
