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
