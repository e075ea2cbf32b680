"""Errors a user can act on. Their message is one line and names no internals."""


class ModelReadError(Exception):
    """The file cannot be read as a Keras model. `str(exc)` is the reason, one line."""


class ConfigError(Exception):
    """The modelaudit configuration (pyproject.toml or flags) is wrong. One line."""
