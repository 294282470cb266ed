"""Mixed-traffic benchmark (issue 14): images alone, texts alone, both at once, and compare, per CPU plan.

`scripts/bench_mixed.py` is the command; `wrk.py` drives the C load generator, `stack.py` starts
Triton + gateway under one thread plan, `run.py` runs the scenarios, interleaved across plans.
"""
