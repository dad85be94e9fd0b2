#!/usr/bin/python3
"""Sums a Chrome trace written by `sweep-worker bench --profile FILE` per operator.

usage: bench/worker/profile_summary.py TRACE.json [--top N]

Prints, per operator name, the number of calls and the total time in ms of its outermost calls
(an operator called inside another is counted in its caller, not twice), sorted by time, and the
share of the step each takes. Backward nodes are autograd's own names (e.g. MmBackward0).
"""
import argparse
import collections
import json

parser = argparse.ArgumentParser()
parser.add_argument("trace")
parser.add_argument("--top", type=int, default=25)
args = parser.parse_args()

with open(args.trace) as f:
    trace = json.load(f)
events = trace["traceEvents"] if isinstance(trace, dict) else trace
events = [e for e in events if e.get("ph") == "X" and "dur" in e]
# Outermost calls per thread: an event inside an earlier one's [ts, ts + dur) is nested.
by_thread = collections.defaultdict(list)
for e in events:
    by_thread[e.get("tid", 0)].append(e)
calls = collections.Counter()
total_us = collections.Counter()
step_us = 0.0
for tid, evs in by_thread.items():
    evs.sort(key=lambda e: (e["ts"], -e["dur"]))
    end = -1.0
    for e in evs:
        if e["ts"] >= end:
            calls[e["name"]] += 1
            total_us[e["name"]] += e["dur"]
            step_us += e["dur"]
            end = e["ts"] + e["dur"]
print(f"{'operator':44} {'calls':>6} {'ms':>8} {'share':>6}")
for name, us in total_us.most_common(args.top):
    print(f"{name[:44]:44} {calls[name]:6d} {us / 1e3:8.2f} {us / step_us:6.1%}")
print(f"{'(all outermost operators)':44} {sum(calls.values()):6d} {step_us / 1e3:8.2f}")
