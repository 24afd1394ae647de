"""Errors caused by user input; the CLI prints them in one line and exits with status 2."""


class InputError(Exception):
    """Bad user input: a flag, a config file, a data file or an output folder."""


class ConfigError(InputError):
    """One or more options are invalid; the message lists every one of them."""


class DataError(InputError):
    """A data file is missing, empty or malformed; the message names the file and line."""
