"""Record in a model folder the accuracy each eager inference path keeps on the model's validation data, so that
`--backend auto` can choose without that data (a user's machine): `meta["backend_accuracy"]` in its config.json.

    python scripts/record_backend_accuracy.py pixelseg/weights/camvid pixelseg/weights/portrait

Only config.json's meta changes; the weights file is not touched. The validation data is the split the model was
trained with (its meta), read from ../shared/data or $PIXELSEG_DATA.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pixelseg
from pixelseg.engine.auto_backend import model_validation_data, record_accuracy
from pixelseg.io import write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--images", type=int, default=20)
    args = parser.parse_args()
    for folder in args.folders:
        model = pixelseg.load(folder)
        dataset = model_validation_data(model)
        if dataset is None:
            raise SystemExit(f"{folder}: its validation data is not here (../shared/data or $PIXELSEG_DATA)")
        record = record_accuracy(model, dataset, args.images)
        saved = json.loads((folder / "config.json").read_text())
        saved["meta"]["backend_accuracy"] = record
        write_text(folder / "config.json", json.dumps(saved, indent=2))
        changes = ", ".join(f"{path} {value['change_points']:+.2f} points" for path, value in record["paths"].items())
        print(f"{folder}: {changes} on {record['images']} {record['split']} images")


if __name__ == "__main__":
    main()
