"""core layer (see anytask's package docstring)."""
