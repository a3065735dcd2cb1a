"""Write the README's settings table from the declarations in shared/settings.

`python scripts/settings_table.py` rewrites README.md between the markers; with `--check` it
only exits 1 when README.md is out of date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.settings.docs import replace_table  # noqa: E402 - after the path is set


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, do not write")
    args = parser.parse_args(argv)
    readme = ROOT / "README.md"
    current = readme.read_text(encoding="utf-8")
    updated = replace_table(current)
    if args.check:
        if updated != current:
            print("README.md's settings table is out of date: run scripts/settings_table.py")
            return 1
        return 0
    if updated != current:
        readme.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
