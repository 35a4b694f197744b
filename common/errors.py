"""Errors that belong to no single package."""


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the variable (or the file) to fix."""
