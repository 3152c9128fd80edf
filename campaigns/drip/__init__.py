"""Drip campaigns: a list of people, steps with waits between them, sent at each sender's own speed inside
the sending window (docs/campaigns.md)."""
