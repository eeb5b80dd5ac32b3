"""FinOps: the cost report from the JSONL ledger (and errors from the audit log)."""
