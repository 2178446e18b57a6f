"""Cross-cutting plumbing: settings, Redis connection, logging, phone numbers, money and time helpers."""
