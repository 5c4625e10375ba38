"""The exceptions rewardkit raises.

Every error rewardkit raises on purpose derives from :class:`RewardkitError`,
so a caller can catch the whole family with one ``except``. Errors about bad
input also derive from :class:`ValueError`, so code written against plain
numpy conventions keeps working.
"""

from __future__ import annotations


class RewardkitError(Exception):
    """Root of every exception rewardkit raises on purpose."""


class InputError(RewardkitError, ValueError):
    """An argument has the wrong shape, type or value (NaN, too few rows, ...).

    The message names the argument, says what is wrong with it and, where
    one exists, what would fix it.
    """


class StatsFileError(RewardkitError, ValueError):
    """A statistics file is missing, unreadable, or not in rewardkit's format."""


class MissingDependencyError(RewardkitError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


class AudioError(RewardkitError, ValueError):
    """An audio file cannot be used: unreadable, empty, silent, too short, NaN samples, ..."""


class CacheError(RewardkitError):
    """The embedding cache directory cannot be used."""
