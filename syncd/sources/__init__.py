"""Where highlights come from: the Readwise API client."""
