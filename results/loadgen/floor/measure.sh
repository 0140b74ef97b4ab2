#!/bin/bash
# Measurement plan for issue 13; each step writes a report dir.
set -u
LG=target/release/loadgen   # a release build of this commit
MAIN=path/to/skyrocket-d09231f   # a release build of main before #13 (d09231f)
R=results/loadgen

run() { echo "== $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg): $*"; "$@" 2>&1 | grep -vE "^\s*$" | tail -8; }
# 1. before/after, back to back: long poll 5,000 x 2 msg/s, short poll 10,000 x 2 msg/s
run $LG --server-bin $MAIN --transport longpoll --clients 5000 --rate 2 --report $R/before-after/longpoll-5000-before
run $LG --transport longpoll --clients 5000 --rate 2 --report $R/before-after/longpoll-5000-after
run $LG --server-bin $MAIN --transport poll --clients 10000 --rate 2 --report $R/before-after/poll-10000-before
run $LG --transport poll --clients 10000 --rate 2 --report $R/before-after/poll-10000-after
# 2. goals, with the floor
run $LG --transport longpoll --clients 5000,10000 --rate 2 --floor --report $R/floor/longpoll-2msgs
run $LG --transport ws --clients 1000 --rate 400 --report $R/floor/ws-1000-400msgs
run $LG --transport ws,sse,longpoll --clients 1000 --rate 40 --floor --report $R/floor/ratio-1000x40
run $LG --transport ws,sse --clients 10000 --rate 2 --floor --report $R/floor/ratio-10000x2
echo "== $(date -u +%T) done"
