"""The GPU benchmark (issue 13 part 3, issue 14's GPU question): one command of at most 8 minutes on one GPU host.

`python -m clipbench.gpu --help` (console entry `clip-bench-gpu`); docs/gpu-bench.md. Importing this package,
`cli`, `plan`, `bundle` and `bootstrap` needs the standard library only: the bootstrap runs on a host with none of
our packages, and the heavy modules (`bench`, `towers`, `serving`, `cuda`, `report`) are imported after it.
"""
