"""The operations rehearsal checklist (seed v6.10) as tests, one module per stage.

Run from a clone (`pytest rehearsal_tests`) or installed (`pytest --pyargs rehearsal_tests`),
with `--nexus-env NAME` and `--scorecard out.md`.
"""
