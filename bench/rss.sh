#!/usr/bin/env bash
# Prints VmRSS (kB) of one process, or the sum over PIDs given: rss.sh PID [PID...]
total=0
for p in "$@"; do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
    total=$((total + ${v:-0}))
done
echo "$total"
