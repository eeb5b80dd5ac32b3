"""The checklist's checks as plain functions: the CLI prints them, rehearsal tests assert them."""
