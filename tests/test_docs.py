"""The docs' generated parts are current: the model zoo's tables come from docs/results/zoo.json."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_model_zoo_tables_are_generated_from_the_results_file():
    spec = importlib.util.spec_from_file_location("zoo_table", ROOT / "scripts" / "zoo_table.py")
    zoo_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo_table)
    page = (ROOT / "docs" / "model_zoo.md").read_text()
    results = json.loads((ROOT / "docs" / "results" / "zoo.json").read_text())
    assert page == zoo_table.render_page(page, results), "run: python scripts/zoo_table.py --page"
    from pixelseg.models import list_models

    assert {m["name"] for m in results["models"]} == set(list_models())  # every architecture has its row
