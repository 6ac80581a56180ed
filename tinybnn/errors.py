"""The errors tinybnn raises on bad input.

Every message names the problem and the fix. The CLI catches :class:`TinyBNNError`, prints its
message on one line and exits with status 2 (no traceback).
"""


class TinyBNNError(Exception):
    """Base class of every error tinybnn raises deliberately on bad input."""


class ShapeError(TinyBNNError, ValueError):
    """Arrays whose shapes do not fit together."""


class ConfigError(TinyBNNError, ValueError):
    """An unknown name (model, data set, estimator, optimizer) or a bad option value."""


class DatasetError(TinyBNNError):
    """A data set file that is missing, truncated, corrupt or fails its checksum."""


class CheckpointError(TinyBNNError):
    """A checkpoint or exported model that is missing, corrupt or does not match the model."""
