"""Errors that mean "the user asked for something impossible": one line, exit code 2."""


class UserInputError(ValueError):
    """Bad input from the user. The CLI prints ``error: <message>`` and exits 2, changing nothing."""


class EnvironmentFault(RuntimeError):
    """The environment cannot do what was asked (a storage unreachable, a folder not writable,
    a port in use). The CLI prints ``error: <message>`` and exits 1."""
