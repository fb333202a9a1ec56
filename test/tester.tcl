# SPDX-License-Identifier: MIT
# tester.tcl - a small test harness for the Tcl tests, in the style of
# SQLite's test/tester.tcl, for plain `tclsh` + `package require sqlite3`
# (SQLite's own tester.tcl needs its testfixture binary).
#
# A test file:
#
#   set testdir [file dirname $argv0]
#   source $testdir/tester.tcl
#   set testprefix stateio1
#
#   do_execsql_test 1.0 { SELECT 1, 2 } {1 2}
#   do_catchsql_test 1.1 { SELECT * FROM nosuch } {1 {no such table: nosuch}}
#   do_test 1.2 { expr {6*7} } 42
#   finish_test
#
# It is run from the project root as `tclsh test/NAME.test`; it ends with a
# line "N passed, N failed" and exits 1 when anything failed (or when the
# script dies before finish_test: then there is no such line at all).
#
# What this file provides:
#   do_test NAME SCRIPT EXPECTED     SCRIPT's result equals EXPECTED; an
#                                    EXPECTED of the form /RE/ is a regexp
#                                    the result must match, ~/RE/ one it must
#                                    not; an error in SCRIPT is a failure
#   do_execsql_test NAME SQL ?EXPECTED?    db eval SQL, compared as lists
#   do_catchsql_test NAME SQL EXPECTED     {0 result} or {1 message}, as lists
#   execsql SQL ?DB?, catchsql SQL ?DB?
#   testprefix PREFIX (or `set testprefix PREFIX`): test names that start
#                                    with a digit are shown as PREFIX-NAME
#   finish_test                      summary, cleanup, exit status
#   db                               a fresh connection on test.db in this
#                                    file's temporary directory
#   reset_db                         close db, delete test.db, open it again
#   load_stateio ?DB?                load the extension (stateio.so in the
#                                    project root) into DB
#   forcedelete FILE...              delete files (and directories), no error
#   hexio_read FILE OFFSET AMT       AMT bytes at OFFSET, as upper-case hex
#   hexio_write FILE OFFSET HEX      write bytes at OFFSET; returns the count
#   hexio_get_int HEX                a big-endian integer from hex (SQLite's)
#   hexio_get_le HEX                 a little-endian integer from hex (the
#                                    stateio format's byte order)
#   file_truncate FILE SIZE          cut (or extend with zeros) FILE to SIZE
#   file_bytes FILE                  the whole file, as a binary string
#   copy_golden CASE ?DEST?          copy golden CASE's log.bin to DEST
#                                    (default CASE.log); returns DEST
#   name_max                         the longest file name the current
#                                    directory takes (255 on ext4, tmpfs)
# Variables:
#   ::testdir     absolute path of test/          ::projectdir  the project root
#   ::goldendir   the golden test vectors (test/golden, or
#                 $env(GOLDEN_DIR))
#   ::tmpdir      this file's temporary directory, test/tmp/NAME/; the
#                 current directory while the test runs; emptied when the
#                 file starts, removed by finish_test when nothing failed
#   ::extpath     the extension, without its .so suffix

package require sqlite3

# Absolute paths: the test runs with its temporary directory as the cwd.
set ::testdir [file dirname [file normalize [info script]]]
set ::projectdir [file dirname $::testdir]
if {[info exists ::env(GOLDEN_DIR)] && $::env(GOLDEN_DIR) ne ""} {
  set ::goldendir [file normalize $::env(GOLDEN_DIR)]
} else {
  set ::goldendir [file join $::testdir golden]
}
# STATEIO_EXT names another build of it (test/run-all.sh: the sanitized one).
if {[info exists ::env(STATEIO_EXT)] && $::env(STATEIO_EXT) ne ""} {
  set ::extpath [file normalize $::env(STATEIO_EXT)]
} else {
  set ::extpath [file join $::projectdir stateio]
}
set ::argv0 [file normalize $::argv0]

set ::tester_name [file rootname [file tail $::argv0]]
set ::tmpdir [file join $::testdir tmp $::tester_name]
file delete -force $::tmpdir
file mkdir $::tmpdir
cd $::tmpdir

set ::nTest 0
set ::nFail 0
set ::failList [list]
if {![info exists ::testprefix]} { set ::testprefix "" }

proc testprefix {prefix} { set ::testprefix $prefix }

# The name a test is shown under: PREFIX-NAME when NAME starts with a digit.
proc tester_name {name} {
  if {$::testprefix ne "" && [string is digit [string index $name 0]]} {
    return "$::testprefix-$name"
  }
  return $name
}

proc tester_pass {name} {
  incr ::nTest
  puts "$name... Ok"
}

proc tester_fail {name why} {
  incr ::nTest
  incr ::nFail
  lappend ::failList $name
  puts "$name..."
  foreach line [split $why \n] { puts "! $line" }
  flush stdout
}

# Whether result matches expected (exact, or /RE/, or ~/RE/).
proc tester_match {expected result} {
  if {[regexp {^(~?)/(.*)/$} $expected -> neg re]} {
    set m [regexp -- $re $result]
    return [expr {$neg eq "" ? $m : !$m}]
  }
  return [expr {$result eq $expected}]
}

proc do_test {name script expected} {
  set name [tester_name $name]
  if {[catch {uplevel #0 $script} result opts]} {
    tester_fail $name "$name error: $result\n[dict get $opts -errorinfo]"
    return
  }
  if {[tester_match $expected $result]} {
    tester_pass $name
  } else {
    tester_fail $name "$name expected: \[$expected\]\n$name got:      \[$result\]"
  }
}

# Compare as lists, as SQLite does: whitespace and quoting do not matter.
proc tester_list_eq {a b} {
  if {[catch {set la [lrange $a 0 end]; set lb [lrange $b 0 end]}]} { return [expr {$a eq $b}] }
  if {[llength $la] != [llength $lb]} { return 0 }
  foreach x $la y $lb { if {$x ne $y} { return 0 } }
  return 1
}

proc do_execsql_test {name sql {expected {}}} {
  set name [tester_name $name]
  if {[catch {uplevel #0 [list db eval $sql]} result]} {
    tester_fail $name "$name error: $result"
    return
  }
  if {[tester_list_eq $expected $result]} {
    tester_pass $name
  } else {
    tester_fail $name "$name expected: \[[lrange $expected 0 end]\]\n$name got:      \[$result\]"
  }
}

proc do_catchsql_test {name sql expected} {
  set name [tester_name $name]
  set rc [catch {uplevel #0 [list db eval $sql]} result]
  set got [list $rc $result]
  if {[tester_list_eq $expected $got]} {
    tester_pass $name
  } else {
    tester_fail $name "$name expected: \[[lrange $expected 0 end]\]\n$name got:      \[$got\]"
  }
}

proc execsql {sql {db db}} {
  uplevel #0 [list $db eval $sql]
}

proc catchsql {sql {db db}} {
  set rc [catch {uplevel #0 [list $db eval $sql]} msg]
  list $rc $msg
}

proc forcedelete {args} {
  foreach f $args { catch {file delete -force -- $f} }
}

proc reset_db {} {
  catch {db close}
  forcedelete test.db test.db-journal test.db-wal test.db-shm
  sqlite3 db test.db
}

proc load_stateio {{db db}} {
  $db enable_load_extension 1
  $db eval {SELECT load_extension($::extpath)}
}

proc hexio_read {file offset amt} {
  set fd [open $file rb]
  seek $fd $offset
  set data [read $fd $amt]
  close $fd
  binary scan $data H* hex
  string toupper $hex
}

proc hexio_write {file offset hex} {
  set data [binary format H* $hex]
  set fd [open $file {RDWR BINARY}]
  seek $fd $offset
  puts -nonewline $fd $data
  close $fd
  string length $data
}

proc hexio_get_int {hex} {
  set v 0
  foreach byte [regexp -all -inline .. $hex] { set v [expr {($v << 8) | [scan $byte %x]}] }
  return $v
}

proc hexio_get_le {hex} {
  set v 0
  set bytes [regexp -all -inline .. $hex]
  foreach byte [lreverse $bytes] { set v [expr {($v << 8) | [scan $byte %x]}] }
  return $v
}

proc file_truncate {file size} {
  set fd [open $file {RDWR BINARY}]
  chan truncate $fd $size
  close $fd
}

proc file_bytes {file} {
  set fd [open $file rb]
  set data [read $fd]
  close $fd
  return $data
}

proc copy_golden {case {dest ""}} {
  if {$dest eq ""} { set dest $case.log }
  file copy -force [file join $::goldendir $case log.bin] $dest
  file attributes $dest -permissions 0644
  return $dest
}

proc name_max {} {
  for {set n 1024} {$n > 14} {incr n -1} {
    if {![catch { close [open [string repeat m $n] w] }]} {
      file delete [string repeat m $n]
      return $n
    }
  }
  return 255
}

# The last line: "N passed, M failed" (N counts passes, not tests).
proc finish_test {} {
  catch {db close}
  set passed [expr {$::nTest - $::nFail}]
  if {$::nFail > 0} {
    puts "[llength $::failList] failed: [join $::failList { }]"
  }
  cd $::testdir
  if {$::nFail == 0} { file delete -force $::tmpdir }
  puts "$passed passed, $::nFail failed"
  flush stdout
  exit [expr {$::nFail > 0 ? 1 : 0}]
}

sqlite3 db test.db
