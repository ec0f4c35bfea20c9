"""Sync: the durable webhook inbox (partial sync, full sync and write-back build on it)."""
