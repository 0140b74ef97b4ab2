#!/bin/bash
# The feed counters (74a7705) alone, before and after, back to back.
# BEFORE_SERVER: a script that runs `loadgen serve "$@"` from a release
# build of the same tree with 74a7705 reverted (that tree is
# the revert that follows this results commit). "after" is this tree's own release build (9b6c455).
set -e
cd "$(git rev-parse --show-toplevel)"
L=target/release/loadgen
D=results/loadgen/quiet/feed-counters-ab
run() { # side workload args...
  local side=$1 name=$2; shift 2
  local extra=()
  [ "$side" = before ] && extra=(--server-bin "$BEFORE_SERVER")
  echo "== $side $name $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  $L --transport ws "$@" --floor --axum-shape "${extra[@]}" --report "$D/$side-$name" > "/tmp/$side-$name.log" 2>&1
}
for i in 1 2; do
  run before "1000x40-$i" --clients 1000 --rate 40
  run after "1000x40-$i" --clients 1000 --rate 40
done
run before 10000x2 --clients 10000 --rate 2
run after 10000x2 --clients 10000 --rate 2
