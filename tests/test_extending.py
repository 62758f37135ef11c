"""docs/extending.md's recipes work as written: each ```python block runs, in order, in a fresh namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pixelseg.data import layouts
from pixelseg.models import registry

PAGE = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_page_has_a_recipe_per_extension_point():
    assert len(BLOCKS) == 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_recipe_runs_as_written(index, monkeypatch):
    from pixelseg import losses
    from pixelseg.engine import methods

    # the recipes register new names: keep the registries as they were after the test
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))
    monkeypatch.setattr(losses, "LOSSES", dict(losses.LOSSES))
    monkeypatch.setattr(layouts, "LAYOUTS", dict(layouts.LAYOUTS))
    registered = dict(methods.METHODS)  # one copy where register_method writes and where the config reads
    monkeypatch.setattr(methods.base, "METHODS", registered)
    monkeypatch.setattr(methods, "METHODS", registered)
    exec(compile(BLOCKS[index], f"{PAGE}:block{index + 1}", "exec"), {"__name__": f"recipe{index}"})
