/* SPDX-License-Identifier: MIT */
/*
** util.c - the parts of the command-line tool every verb uses: messages,
** options, opening a log, the progress line, printing data.
*/
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* The progress line on the screen now, cleared before a message. */
static cli_progress *shown_progress;

static void clear_progress(void){
  if( shown_progress && shown_progress->shown ){
    fputs("\r\033[K", stderr);
    shown_progress->shown = 0;
  }
}

void cli_error(const char *fmt, ...){
  va_list ap;
  clear_progress();
  fputs("stateio: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

const char *cli_strstatus(int rc){
  if( rc == STATEIO_IOERR ) return strerror(errno);
  return stateio_errstr(rc);
}

/* ---------------------------------------------------------------- options */

static void print_help(const cli_verb *v){
  printf("usage: stateio %s\n\n%s", v->usage, v->help);
}

int cli_parse(const cli_verb *v, int argc, char **argv, const cli_opt *opts,
              char **pos, int npos_min, int npos_max, int *npos){
  int n = 0, only_operands = 0;
  for(int i = 1; i < argc; i++){
    const char *a = argv[i];
    if( only_operands || a[0] != '-' || a[1] == 0 ){
      if( n == npos_max ){
        cli_error("%s: too many arguments: '%s' (usage: stateio %s)", v->name, a, v->usage);
        return CLI_ERROR;
      }
      pos[n++] = argv[i];
      continue;
    }
    if( strcmp(a, "--") == 0 ){ only_operands = 1; continue; }
    if( strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 ){
      print_help(v);
      return CLI_HELP;
    }
    const cli_opt *o = NULL;
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    for(const cli_opt *p = opts; p && p->name; p++){
      if( a[0] == '-' && a[1] == '-' && strlen(p->name) == len - 2
       && strncmp(a + 2, p->name, len - 2) == 0 ){
        o = p;
        break;
      }
    }
    if( !o ){
      cli_error("%s: unknown option '%.*s' (stateio %s --help)", v->name, (int)len, a, v->name);
      return CLI_ERROR;
    }
    if( o->flag ){
      if( eq ){
        cli_error("%s: option '--%s' takes no value", v->name, o->name);
        return CLI_ERROR;
      }
      *o->flag = 1;
    }else if( eq ){
      *o->value = eq + 1;
    }else if( i + 1 < argc ){
      *o->value = argv[++i];
    }else{
      cli_error("%s: option '--%s' needs a value (stateio %s --help)", v->name, o->name, v->name);
      return CLI_ERROR;
    }
  }
  if( n < npos_min ){
    cli_error("%s: missing argument (usage: stateio %s)", v->name, v->usage);
    return CLI_ERROR;
  }
  *npos = n;
  return CLI_OK;
}

int cli_parse_count(const char *opt, const char *s, uint64_t min, uint64_t max,
                    uint64_t *out){
  char *end;
  errno = 0;
  unsigned long long v = 0;
  int ok = *s >= '0' && *s <= '9';
  if( ok ){
    v = strtoull(s, &end, 10);
    ok = errno == 0 && *end == 0 && v >= min && v <= max;
  }
  if( !ok ){
    cli_error("bad value for %s: '%s' (a whole number from %llu to %llu)", opt, s,
              (unsigned long long)min, (unsigned long long)max);
    return CLI_ERROR;
  }
  *out = v;
  return CLI_OK;
}

/* ---------------------------------------------------------------- logs */

int cli_open_log(const char *path, stateio_image *img, int must_be_log){
  struct stat st;
  memset(img, 0, sizeof(*img));
  img->fd = -1;
  if( stat(path, &st) != 0 ){
    cli_error("cannot open '%s': %s", path, strerror(errno));
    return CLI_ERROR;
  }
  if( S_ISDIR(st.st_mode) ){
    cli_error("'%s' is a directory, not a log", path);
    return CLI_ERROR;
  }
  if( !S_ISREG(st.st_mode) ){
    cli_error("'%s' is not a regular file, so not a log", path);
    return CLI_ERROR;
  }
  int rc = stateio_open_image(path, img);
  if( rc == STATEIO_NOTLOG ){
    cli_error("'%s' is not a stateio log", path);
    return CLI_ERROR;
  }
  if( rc ){
    cli_error("cannot open '%s': %s", path, cli_strstatus(rc));
    return CLI_ERROR;
  }
  if( must_be_log && stateio_image_size(img) > 0 && !logio_holds_record(img) ){
    cli_error("'%s' is not a stateio log (no block of it holds a log record)", path);
    stateio_close_image(img);
    return CLI_ERROR;
  }
  return CLI_OK;
}

/* ---------------------------------------------------------------- progress */

static uint64_t now_ms(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *cli_size(uint64_t n, char *buf, size_t len){
  static const char *units[] = { "KiB", "MiB", "GiB", "TiB" };
  if( n < 1024 ){
    snprintf(buf, len, "%llu bytes", (unsigned long long)n);
    return buf;
  }
  double v = (double)n / 1024;
  int u = 0;
  while( v >= 1024 && u < 3 ){ v /= 1024; u++; }
  snprintf(buf, len, "%.1f %s", v, units[u]);
  return buf;
}

void cli_progress_start(cli_progress *p, const char *what, uint64_t total){
  memset(p, 0, sizeof(*p));
  p->what = what;
  p->total = total;
  p->on = isatty(2);
  p->every = 64;
  p->interval_ms = 250;
  const char *e = getenv("STATEIO_PROGRESS_MS");
  if( e && *e ) p->interval_ms = strtoull(e, NULL, 10);
  p->last_ms = now_ms();
  if( p->on ) shown_progress = p;
}

void cli_progress_update(cli_progress *p, uint64_t done){
  if( !p->on ) return;
  /* A scan calls once per entry: the clock is read once every 64 calls. */
  if( p->interval_ms > 0 && p->calls++ % p->every != 0 ) return;
  uint64_t t = now_ms();
  if( t - p->last_ms < p->interval_ms ) return;
  p->last_ms = t;
  char a[32], b[32];
  int pct = p->total ? (int)(done * 100 / p->total) : 100;
  fprintf(stderr, "\r%s: %s of %s (%d%%)\033[K", p->what, cli_size(done, a, sizeof(a)),
          cli_size(p->total, b, sizeof(b)), pct > 100 ? 100 : pct);
  fflush(stderr);
  p->shown = 1;
}

void cli_progress_end(cli_progress *p){
  if( shown_progress == p ){
    clear_progress();
    shown_progress = NULL;
  }
}

/* ---------------------------------------------------------------- data */

int cli_is_utf8(const unsigned char *p, size_t n){
  size_t i = 0;
  while( i < n ){
    unsigned c = p[i];
    if( c < 0x80 ){ i++; continue; }
    size_t k;
    unsigned min;
    uint32_t cp;
    if( (c & 0xe0) == 0xc0 ){ k = 1; min = 0x80; cp = c & 0x1f; }
    else if( (c & 0xf0) == 0xe0 ){ k = 2; min = 0x800; cp = c & 0x0f; }
    else if( (c & 0xf8) == 0xf0 ){ k = 3; min = 0x10000; cp = c & 0x07; }
    else return 0;
    if( n - i <= k ) return 0;          /* cut short */
    for(size_t j = 1; j <= k; j++){
      if( (p[i + j] & 0xc0) != 0x80 ) return 0;
      cp = (cp << 6) | (p[i + j] & 0x3f);
    }
    if( cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ) return 0;
    i += k + 1;
  }
  return 1;
}

void cli_put_hex(FILE *out, const unsigned char *p, size_t n){
  static const char hex[] = "0123456789abcdef";
  for(size_t i = 0; i < n; i++){
    putc(hex[p[i] >> 4], out);
    putc(hex[p[i] & 15], out);
  }
}

/* p[0..n) quoted, with C escapes (\xNN) or JSON escapes (\uNNNN). */
static void put_escaped(FILE *out, const unsigned char *p, size_t n, int json){
  putc('"', out);
  for(size_t i = 0; i < n; i++){
    unsigned c = p[i];
    switch( c ){
      case '"':  fputs("\\\"", out); break;
      case '\\': fputs("\\\\", out); break;
      case '\n': fputs("\\n", out); break;
      case '\r': fputs("\\r", out); break;
      case '\t': fputs("\\t", out); break;
      default:
        if( c < 0x20 || c == 0x7f ) fprintf(out, json ? "\\u%04x" : "\\x%02x", c);
        else putc((int)c, out);
    }
  }
  putc('"', out);
}

void cli_put_data(FILE *out, const unsigned char *p, size_t n){
  if( cli_is_utf8(p, n) ){
    put_escaped(out, p, n, 0);
  }else{
    fputs("hex:", out);
    cli_put_hex(out, p, n);
  }
}

void cli_put_json_string(FILE *out, const unsigned char *p, size_t n){
  put_escaped(out, p, n, 1);
}

mode_t cli_copy_mode(int fd){
  struct stat st;
  if( fstat(fd, &st) != 0 ) return 0600;
  return st.st_mode & 0666;
}

int cli_sync_dir_of(const char *path){
  char *copy = strdup(path);
  if( !copy ) return -1;
  int rc = -1;
  int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if( dfd >= 0 ){
    rc = fsync(dfd);
    close(dfd);
  }
  free(copy);
  return rc;
}
