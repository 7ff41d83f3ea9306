"""Sending the user's edits made in the vault back to Readwise (issue 11)."""
