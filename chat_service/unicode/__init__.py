"""Unicode's data files the service reads (package data; see README.md and LICENSE here)."""
