"""Print docs/config.md, every training-config key: python scripts/config_reference.py > docs/config.md"""

from pixelseg.engine.config import reference_markdown

print(reference_markdown(), end="")
