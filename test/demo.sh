#!/bin/sh
# SPDX-License-Identifier: MIT
# demo.sh - what `make demo` shows: the SQLite extension on a fresh log.
#
#   sh test/demo.sh
#
# In a new temporary directory (removed at the end) it runs the sqlite3
# shell on test/readme-session.sql, the session README.md shows and
# test/ext_readme.test checks: `.load ./stateio`, CREATE VIRTUAL TABLE,
# INSERTs of updates and snapshots, a transaction, and SELECTs of the four
# tables. Then it shows the log it made with the command-line tool
# (build/stateio: stat, dump, check) and its first bytes.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
for f in stateio.so build/stateio; do
  if [ ! -f "$root/$f" ]; then
    echo "demo: $root/$f is missing (run make)" >&2
    exit 1
  fi
done
if ! command -v sqlite3 >/dev/null 2>&1; then
  echo "demo: the sqlite3 shell is missing (apt-get install sqlite3)" >&2
  exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stateio-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
# The session loads ./stateio, as a user in the project root would.
ln -s "$root/stateio.so" "$tmp/stateio.so"
cd "$tmp"

echo "== sqlite3 -echo < test/readme-session.sql    (in $tmp)"
echo
sqlite3 -echo :memory: < "$root/test/readme-session.sql"
echo
echo "== stateio stat app.log"
"$root/build/stateio" stat app.log
echo
echo "== stateio dump app.log    (offset, type, epoch, prev_epoch, length, data)"
"$root/build/stateio" dump app.log
echo
echo "== stateio check app.log"
"$root/build/stateio" check app.log
echo
echo "== app.log: $(wc -c < app.log) bytes; the first entry"
echo "   (checksum u32, type 1 FULL, length u16, offset u64; kind 1 update, epoch u64; data):"
od -A d -t x1 -N 27 app.log
