"""Small helpers shared across pixelseg."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    match = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def progress_bar(iterable=None, enabled: bool = True, **options):
    """A tqdm bar, shown on a terminal when ``enabled``; never written into logs that are not a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, disable=None if enabled else True, leave=False, **options)
