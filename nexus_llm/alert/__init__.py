"""Alerts: anomaly rules over a sliding window, the alert lifecycle, and Slack/Teams delivery.

- `model.py`: what the rules produce (`Evaluation`) and what is delivered (`Alert`, `AlertMessage`).
- `window.py`: the incremental scan of the audit log and ledger into per-minute buckets.
- `anomaly.py`: the rules, evaluated over those buckets.
- `lifecycle.py`: fired / repeated / resolved, kept in the state store, with the spool.
- `notify.py`, `slack.py`, `teams.py`: the message formats and the delivering router.
"""
