"""Scheduled jobs (seed check 7): what cron runs, how each run is recorded, and how to tell
from the audit log whether every expected tick ran and succeeded.

`jobs` holds the seed's two schedules as data, `runs` wraps one run so it leaves a `job_run`
audit event and the last-success gauge, `crontab` renders the lines a user installs, and
`check` compares the expected ticks with the recorded runs.
"""
