"""Small helpers every layer may use: atomic files, JSON, /proc, timed runs."""
