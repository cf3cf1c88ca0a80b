"""The project's own error: one line for a person, exit code 2 at the command line."""

from __future__ import annotations


class ScenarioError(ValueError):
    """Bad input: names the file, the key path, the value and what is allowed."""

    def __init__(self, file: str, key_path: str, message: str) -> None:
        self.file = file
        self.key_path = key_path
        self.message = message
        super().__init__(f"{file}: {key_path}: {message}" if key_path else f"{file}: {message}")

    def __reduce__(self):
        # rebuilt from its parts, so an error raised in a worker process crosses back intact
        return (ScenarioError, (self.file, self.key_path, self.message))


class ModelFailure(ArithmeticError):
    """A replication that cannot give a result for a reason of the model (a numerical
    failure it names), as opposed to bad input (ScenarioError) or a bug in the code."""


# What a failed replication is: named model or numerical failures, recorded as a failed run
# with its message (by `famsim run`, `compare` and `sweep` alike). Any other exception is a
# bug: it stops the job, with its traceback in a log file.
MODEL_FAILURES: tuple[type[BaseException], ...] = (
    ModelFailure,
    FloatingPointError,
    OverflowError,
    ZeroDivisionError,
    MemoryError,
)
