#!/usr/bin/env bash
# `make test`'s pytest step: one pytest process per test-folder group (the whole suite in one process has died
# with SIGSEGV; README, "Tests"), in two chains side by side. Most of the suite waits on servers, browsers and
# subprocesses rather than computing, so two chains on 2 cores finish well before one would.
# Usage: PYTEST="python -m pytest" run_groups.sh "CHAIN_A_GROUPS" "CHAIN_B_GROUPS"  (groups: dir[+dir...])
set -u
base=$(mktemp -d "${TMPDIR:-/tmp}/outfit-tests.XXXXXX")

run_chain() {  # $1: groups, space-separated; stops at the chain's first failing group
    local g
    for g in $1; do
        echo "== pytest ${g//+/ }"
        # shellcheck disable=SC2086  # the group names are paths without spaces, split on purpose
        $PYTEST ${g//+/ } --basetemp="$base/${g//[\/+]/_}" || return 1
    done
}

run_chain "$2" > "$base/chain-b.log" 2>&1 &
pid=$!
run_chain "$1"
a=$?
wait "$pid"
b=$?
echo "== output of the second chain ($2)"
cat "$base/chain-b.log"
rm -rf "$base"
[ "$a" -eq 0 ] && [ "$b" -eq 0 ]
