"""Errors that mean "the user asked for something impossible": one line, exit code 2."""


class UserInputError(ValueError):
    """Bad input from the user. The CLI prints ``error: <message>`` and exits 2, changing nothing."""
