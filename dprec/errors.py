"""User-facing errors: each carries one line that names the problem and the fix.

`dprec.main` turns them into that line on stderr and exit status 2.
"""


class UserInputError(Exception):
    """Bad input from the user (config value, data file, workdir); the message says what to fix."""


class ConfigError(UserInputError):
    """A config value is invalid."""


class DataError(UserInputError):
    """A data file is missing or malformed, or the data is empty after filtering."""


class TrainingError(UserInputError):
    """Training diverged (a non-finite loss); the message names the epoch and what to change."""
