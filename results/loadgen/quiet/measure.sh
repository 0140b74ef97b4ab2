#!/bin/bash
# The quiet-window measurements of issue 13 (and the numbers issue 18's
# slides quote): every transport against the floor and the axum-example
# shape, and the latency goals. Run from the repository root on a machine
# with nothing else running; each report records the load average at its
# start. About 10 minutes in all; the estimates below were timed on this
# project's 2-core machine (at load 3-8, so a quiet run is no slower).
set -u
cargo build --release --bin loadgen || exit 1
LG=target/release/loadgen
R=results/loadgen/quiet
run() { echo "== $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg): $*"; "$@" 2>&1 | grep -vE "^\s*$|^wrote" | tail -12; }

# 1. CPU per delivery against the floor and the axum shape, 1,000 x 40 msg/s,
#    all four transports (10 runs: ours x4, floor x4, axum shape for ws and sse). ~3.5 min
run $LG --transport all --clients 1000 --rate 40 --floor --axum-shape --report $R/ratio-1000x40
# 2. The same at 10,000 x 2 msg/s, streams (6 runs). ~2 min
run $LG --transport ws,sse --clients 10000 --rate 2 --floor --axum-shape --report $R/ratio-10000x2-streams
# 3. The same at 10,000 x 2 msg/s, polls (4 runs; no axum shape: it has no
#    polling). A longer drain lets a poller that is behind catch up; it ends
#    as soon as everything arrived, and what is still behind is "queued". ~3 min
run $LG --transport longpoll,poll --clients 10000 --rate 2 --drain 15s --floor --report $R/ratio-10000x2-polls
# 4. Long-poll goals: 5,000 and 10,000 x 2 msg/s, p99 <= 150 ms / 400 ms,
#    nothing lost; the floor on the same workloads says what p99 this
#    machine gives with no server work beyond the writes (4 runs). ~3 min
run $LG --transport longpoll --clients 5000,10000 --rate 2 --drain 15s --floor --report $R/longpoll-goals
# 5. Short-poll goal: 10,000 clients, nothing lost (1 run). ~1 min
run $LG --transport poll --clients 10000 --rate 2 --drain 15s --report $R/poll-10000
# 6. WebSocket throughput goal: 1,000 clients x 400 msg/s = 400k
#    deliveries/s offered, p99 <= 100 ms; 8 senders keep the schedule (1 run). ~40 s
run $LG --transport ws --clients 1000 --rate 400 --senders 8 --report $R/ws-1000x400
# 7. The same against the floor: what p99 this machine gives at that rate
#    with no server work beyond the writes (2 runs). ~1.5 min
run $LG --transport ws --clients 1000 --rate 400 --senders 8 --floor --report $R/ws-1000x400-floor
echo "== $(date -u +%T) done"
