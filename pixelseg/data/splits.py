"""Splits that hold out whole groups of files: sequences, scenes, patients or fields.

A model validated on frames of the street it was trained on measures memory, not generalisation (CamVid's val
split is 101 frames of sequence 0016E5, whose other 204 frames are in train). File names usually say which group a
file belongs to (``0016E5_07959`` -> ``0016E5``; ``V3_p30_12`` -> ``V3_p30``), so a regular expression on the stem
names the group, and a split is a list of stems that the ``folder`` and ``camvid`` layouts read
(``SPLITS_DIR/NAME.txt``, chosen with the ``splits_dir`` layout option).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pixelseg.errors import ConfigError, DataError
from pixelseg.io import write_text

DEFAULT_GROUP_PATTERN = r"^[^_]+"
"""The file stem up to its first underscore (CamVid's sequence name)."""


def group_of(stem: str, pattern: str = DEFAULT_GROUP_PATTERN) -> str:
    """The group a file stem belongs to: the pattern's first capturing group if it has one, else its whole match."""
    try:
        match = re.search(pattern, stem)
    except re.error as error:
        raise ConfigError(f"group pattern {pattern!r}: not a regular expression ({error})") from None
    if match is None:
        raise DataError(f"{stem}: the group pattern {pattern!r} does not match this file name")
    return match.group(1) if match.groups() else match.group(0)


def group_split(stems: Iterable[str], holdout: Iterable[str], pattern: str = DEFAULT_GROUP_PATTERN
                ) -> tuple[list[str], list[str]]:
    """``(kept, held_out)``: the stems of the groups in ``holdout`` and all the others, each sorted."""
    stems = sorted(set(stems))
    holdout = set(holdout)
    groups = {stem: group_of(stem, pattern) for stem in stems}
    unknown = holdout - set(groups.values())
    if unknown:
        found = ", ".join(f"{g} ({n})" for g, n in sorted(Counter(groups.values()).items()))
        raise DataError(f"no file belongs to group(s) {', '.join(sorted(unknown))}; the groups are: {found}")
    held_out = [s for s in stems if groups[s] in holdout]
    kept = [s for s in stems if groups[s] not in holdout]
    if not kept:
        raise DataError("holding out those groups leaves no file to train on")
    return kept, held_out


def write_split(path: Path, stems: list[str], header: str) -> Path:
    """A split list: one stem per line after ``#`` comment lines (which the readers skip)."""
    lines = [f"# {line}" for line in header.splitlines()] + stems
    write_text(path, "\n".join(lines) + "\n")
    return path


def count_groups(stems: Iterable[str], pattern: str = DEFAULT_GROUP_PATTERN) -> dict[str, int]:
    return dict(sorted(Counter(group_of(s, pattern) for s in stems).items()))
