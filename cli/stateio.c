/* SPDX-License-Identifier: MIT */
/*
** stateio.c - main() of the command-line tool: look into a stateio log,
** mend it, follow it. `stateio --help`, `stateio VERB --help` and the man
** page stateio(1) (doc/stateio.1) say what each verb does.
**
** Exit status, for every verb: 0 done (the log is healthy), 1 the log is
** damaged (salvage: something was dropped), 2 an error (bad arguments, a
** file that cannot be used, I/O).
*/
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_verb verbs[] = {
  { "check", "check LOG",
    "Read the whole log and report every problem, one line each, with its\n"
    "offset and length: damaged regions (bytes that hold no valid entry), bad\n"
    "entries (complete, but not valid state entries), and whether restore\n"
    "fails. A torn tail (an append cut short by a crash) is shown but is not\n"
    "damage: restore ignores it and the next writer cuts it.\n"
    "\n"
    "Exit status: 0 healthy, 1 damaged, 2 error (not a log, cannot read).\n",
    cli_check },
  { "dump", "dump [--json] [--max-data N] LOG",
    "One line per entry, in file order:\n"
    "  OFFSET TYPE EPOCH PREV_EPOCH LENGTH DATA\n"
    "TYPE is update or snapshot (a snapshot's EPOCH is its own offset, PREV_EPOCH\n"
    "the epoch before it; an update's PREV_EPOCH is -). DATA is the entry's data\n"
    "as a quoted string with C escapes when it is UTF-8 text, else hex:HEX.\n"
    "Damaged regions, bad entries and the torn tail are lines of TYPE damaged,\n"
    "bad and torn, with their length and the problem in place of the data.\n"
    "\n"
    "  --json         one JSON object per line: offset, end, type, epoch,\n"
    "                 prev_epoch (null for an update), length, encoding (utf8\n"
    "                 or hex), data; or problem for damaged, bad and torn\n"
    "  --max-data N   show at most N bytes of each entry's data (a cut entry\n"
    "                 ends with ..., or has \"truncated\":true)\n"
    "\n"
    "Exit status: 0 healthy, 1 damage was shown, 2 error.\n",
    cli_dump },
  { "stat", "stat LOG",
    "The log at a glance: its size, log_id, entries (updates, snapshots, bytes of\n"
    "data), the current epoch (what restore returns), damage, the torn tail, and\n"
    "one line per epoch: its number, previous epoch, snapshot size, updates and\n"
    "bytes.\n"
    "\n"
    "Exit status: 0 healthy, 1 damaged, 2 error.\n",
    cli_stat },
  { "compact", "compact [--keep N] LOG",
    "Drop every epoch but the last N (default 1: the current snapshot and the\n"
    "updates after it). The new log is written to LOG.compact, synced and renamed\n"
    "over LOG: a crash leaves the old log or the new one. Epoch numbers change\n"
    "(the oldest kept snapshot becomes epoch 0). With nothing to drop the file is\n"
    "not touched. It takes the log's write lock and does not wait for it.\n"
    "\n"
    "  --keep N   the number of epochs to keep, 1 or more\n"
    "\n"
    "Exit status: 0 done, 1 the log is damaged (nothing changed; see salvage),\n"
    "2 error (another writer holds the lock, not a log, I/O).\n",
    cli_compact },
  { "salvage", "salvage DAMAGED OUT",
    "Write OUT, a new log with every entry of DAMAGED that can be read, in order,\n"
    "appended through the writer so that OUT's epochs are consistent: each kept\n"
    "snapshot begins a new epoch, and an update is kept when its epoch's snapshot\n"
    "was kept (or when the log begins with updates); an update whose snapshot was\n"
    "lost cannot be placed and is dropped. Every damaged region, bad entry,\n"
    "dropped update and torn tail is reported on stderr with its offset and\n"
    "length. OUT must not exist; it appears only when it is complete and synced,\n"
    "with DAMAGED's permission bits (less the umask).\n"
    "\n"
    "Exit status: 0 nothing was dropped, 1 something was, 2 error.\n",
    cli_salvage },
  { "mirror", "mirror [--once] [--interval MS] SRC DST",
    "Keep DST a byte-identical copy of the log SRC as SRC grows: every MS\n"
    "milliseconds (default 250) the new bytes of SRC, up to the end of its last\n"
    "complete entry, are appended to DST and synced. When SRC is another file\n"
    "(it was compacted or replaced: its log_id changed), when it shrank, or when\n"
    "the bytes copied last changed, DST is copied again: to DST.tmp, synced,\n"
    "renamed over DST, with SRC's permission bits (less the umask). An existing\n"
    "DST that is a prefix of SRC is appended to.\n"
    "This is how a standby on another machine follows a log through a shared\n"
    "or network file system: it restores from DST. Stop it with SIGINT or\n"
    "SIGTERM.\n"
    "\n"
    "  --once          copy what is there and exit\n"
    "  --interval MS   the time between polls, in milliseconds (1 to 3600000)\n"
    "\n"
    "Exit status: 0 done (--once) or stopped, 2 error.\n",
    cli_mirror },
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

static void usage(FILE *out){
  fprintf(out,
    "usage: stateio COMMAND [OPTIONS] ARGS...\n"
    "       stateio --help | --version | COMMAND --help\n"
    "\n"
    "Look into a stateio log (a state log of snapshots and updates), mend it,\n"
    "follow it.\n"
    "\n"
    "commands:\n");
  for(size_t i = 0; i < NVERBS; i++) fprintf(out, "  stateio %s\n", verbs[i].usage);
  fprintf(out,
    "\n"
    "Exit status: 0 done (the log is healthy), 1 the log is damaged (salvage:\n"
    "something was dropped), 2 error. See stateio(1).\n");
}

int main(int argc, char **argv){
  if( argc < 2 ){
    usage(stderr);
    return CLI_ERROR;
  }
  const char *a = argv[1];
  if( strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0 ){
    if( strcmp(a, "help") == 0 && argc > 2 ){
      for(size_t i = 0; i < NVERBS; i++){
        if( strcmp(argv[2], verbs[i].name) == 0 ){
          char *h[] = { argv[2], (char*)"--help", NULL };
          return verbs[i].run(&verbs[i], 2, h);
        }
      }
      cli_error("unknown command '%s' (stateio --help lists them)", argv[2]);
      return CLI_ERROR;
    }
    usage(stdout);
    return CLI_OK;
  }
  if( strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0 ){
    printf("stateio %s\n", stateio_version());
    return CLI_OK;
  }
  for(size_t i = 0; i < NVERBS; i++){
    if( strcmp(a, verbs[i].name) == 0 ) return verbs[i].run(&verbs[i], argc - 1, argv + 1);
  }
  if( a[0] == '-' ) cli_error("unknown option '%s' (stateio --help)", a);
  else cli_error("unknown command '%s' (stateio --help lists them)", a);
  return CLI_ERROR;
}
