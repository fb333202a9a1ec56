/* SPDX-License-Identifier: MIT */
/*
** cli.h - what the files of the command-line tool `stateio` share.
**
** One file a job: stateio.c (main, the verbs' table, help), util.c
** (messages, opening a log, options, the progress line, printing data),
** inspect.c (check, dump, stat: the one scan), salvage.c, compact.c,
** mirror.c. The tool uses the library's public API only (stateio.h).
*/
#ifndef STATEIO_CLI_H
#define STATEIO_CLI_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "stateio.h"
#include "logio.h"

/* Exit codes. */
#define CLI_OK      0   /* done; the log is healthy */
#define CLI_DAMAGED 1   /* the log is damaged (salvage: something was dropped) */
#define CLI_ERROR   2   /* bad arguments, a file that cannot be used, I/O */
#define CLI_HELP    (-1) /* cli_parse(): --help was asked for and printed */

/* A verb: its name, its one-line usage, its help text, its function. */
typedef struct cli_verb {
  const char *name;
  const char *usage;          /* "check LOG" */
  const char *help;           /* what it does, its options, its exit codes */
  int (*run)(const struct cli_verb *v, int argc, char **argv);
} cli_verb;

int cli_check(const cli_verb *v, int argc, char **argv);
int cli_dump(const cli_verb *v, int argc, char **argv);
int cli_stat(const cli_verb *v, int argc, char **argv);
int cli_compact(const cli_verb *v, int argc, char **argv);
int cli_salvage(const cli_verb *v, int argc, char **argv);
int cli_mirror(const cli_verb *v, int argc, char **argv);

/* ---------------------------------------------------------------- messages */

/* "stateio: ..." on stderr (the progress line, if shown, is cleared first). */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A status code as text; for STATEIO_IOERR, errno's message. */
const char *cli_strstatus(int rc);

/* ---------------------------------------------------------------- options */

/*
** One option of a verb: "--name" (flag: *flag set to 1) or "--name VALUE"
** / "--name=VALUE" (*value set).
*/
typedef struct cli_opt {
  const char *name;
  int *flag;
  const char **value;
} cli_opt;

/*
** Parse a verb's arguments (argv[1..argc)): the options in opts (a list
** ended by a NULL name) anywhere before "--", and between npos_min and
** npos_max operands, stored in pos[]. Returns CLI_OK, CLI_HELP after
** printing the verb's help (-h, --help), or CLI_ERROR after printing what
** is wrong.
*/
int cli_parse(const cli_verb *v, int argc, char **argv, const cli_opt *opts,
              char **pos, int npos_min, int npos_max, int *npos);

/*
** A whole number in [min, max] given to option `opt`. CLI_OK, or CLI_ERROR
** after a message that quotes the bad value.
*/
int cli_parse_count(const char *opt, const char *s, uint64_t min, uint64_t max,
                    uint64_t *out);

/* ---------------------------------------------------------------- logs */

/*
** Open the log at path for reading (stateio_open_image). Anything but a
** regular file is refused before it is opened (opening a FIFO would
** wait for a writer). With must_be_log, a file that does not begin like a
** log is refused too. CLI_OK, or CLI_ERROR after a message.
*/
int cli_open_log(const char *path, stateio_image *img, int must_be_log);

/*
** The one walk over a log: the library's scan from offset 0, with a
** progress line named `what`. fn gets every entry (rc STATEIO_OK), damaged
** region (STATEIO_CORRUPT_LOG) and bad entry (STATEIO_CORRUPT_ENTRY) in file
** order; a non-zero return stops the walk and is returned. After the walk,
** *torn_off and *torn_len say where the torn tail is (length 0: none).
** STATEIO_OK, or the error that stopped the scan.
*/
typedef int (*cli_walk_fn)(void *arg, int rc, const stateio_entry *e);
int cli_walk(const char *what, const stateio_image *img, cli_walk_fn fn, void *arg,
             uint64_t *torn_off, uint64_t *torn_len);

/* fsync the directory that holds path (after a rename or link): 0 or -1. */
int cli_sync_dir_of(const char *path);
/*
** The permission bits for a copy of the file open on fd (salvage's OUT,
** mirror's DST): the source's read and write bits, the umask applied as
** cp applies it to a new file. A copy of a private log stays private.
*/
mode_t cli_copy_mode(int fd);

/* ---------------------------------------------------------------- progress */

/*
** A progress line on stderr, for long work, when stderr is a terminal
** (nothing otherwise): "VERB: 1.2 GiB of 4.0 GiB (30%)", redrawn at most
** every STATEIO_PROGRESS_MS milliseconds (default 250), erased at the end.
*/
typedef struct cli_progress {
  const char *what;
  uint64_t total;
  int on;                     /* stderr is a terminal */
  int shown;                  /* a line is on the screen */
  unsigned calls, every;      /* the clock is read once every `every` calls */
  uint64_t last_ms, interval_ms;
} cli_progress;

void cli_progress_start(cli_progress *p, const char *what, uint64_t total);
void cli_progress_update(cli_progress *p, uint64_t done);
void cli_progress_end(cli_progress *p);

/* "123 bytes", "4.5 KiB", "1.2 GiB" into buf. */
const char *cli_size(uint64_t n, char *buf, size_t len);

/* ---------------------------------------------------------------- data */

/* Whether p[0..n) is valid UTF-8. */
int cli_is_utf8(const unsigned char *p, size_t n);

/* p[0..n) as a quoted C-style string ("x=1\n"), or hex:..., on out. */
void cli_put_data(FILE *out, const unsigned char *p, size_t n);

/* p[0..n) as a JSON string (quoted, escaped); p must be valid UTF-8. */
void cli_put_json_string(FILE *out, const unsigned char *p, size_t n);

/* p[0..n) as lowercase hex. */
void cli_put_hex(FILE *out, const unsigned char *p, size_t n);

#endif /* STATEIO_CLI_H */
