"""apps layer (see anytask's package docstring)."""
