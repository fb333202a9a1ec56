/* SPDX-License-Identifier: MIT */
/*
** version_test.c - the library's version: stateio_version() is the
** header's STATEIO_VERSION, a version "X.Y.Z", and STATEIO_VERSION_NUMBER
** is X*1000000 + Y*1000 + Z. (test/version.test checks that the extension,
** the tool, the pkg-config file, the man page and CHANGELOG.md say the same.)
*/
#include <stdio.h>
#include <string.h>

#include "stateio.h"
#include "logio.h"
#include "testhelp.h"

int main(void){
  unsigned x, y, z;
  char rest[2];
  const char *v = stateio_version();
  CHECK(v != NULL);
  CHECK_MSG(strcmp(v, STATEIO_VERSION) == 0, "stateio_version() '%s', STATEIO_VERSION '%s'",
            v, STATEIO_VERSION);
  CHECK_MSG(sscanf(STATEIO_VERSION, "%u.%u.%u%1s", &x, &y, &z, rest) == 3,
            "STATEIO_VERSION '%s' is not X.Y.Z", STATEIO_VERSION);
  CHECK(y < 1000 && z < 1000);
  CHECK_MSG(STATEIO_VERSION_NUMBER == x * 1000000 + y * 1000 + z,
            "STATEIO_VERSION_NUMBER %d for '%s'", STATEIO_VERSION_NUMBER, STATEIO_VERSION);
  printf("version: %s (%d)\n", v, STATEIO_VERSION_NUMBER);
  return test_report();
}
