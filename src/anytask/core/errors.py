"""The one exception type users catch: bad input, missing files, unknown names."""


class AnytaskError(ValueError):
    """A problem with the caller's input or files, with a message that says how to fix it."""
