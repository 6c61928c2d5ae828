#!/usr/bin/env bash
# recurring-cpu, taskmanager against deadline-sleep-floor in 8 alternated
# pairs (each a child process measuring 4 s), for the ratio per pair:
# output in pairs-recurring-cpu-<date>.txt ("case system cpu_us sleeps").
set -euo pipefail
cargo bench --bench peers --no-run
peers=$(ls -t target/release/deps/peers-* | grep -v '\.d$' | head -1)
for i in $(seq 1 8); do
  for case in cpu_us_per_run_1ms cpu_us_per_run_10ms; do
    for system in taskmanager deadline-sleep-floor; do
      echo "$case $system $("$peers" --cpu-child "$system" "$case" 4)"
    done
  done
done
