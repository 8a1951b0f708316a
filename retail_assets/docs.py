"""Table documentation generated from the pandera models, so the docs cannot drift from the code."""

from __future__ import annotations

from retail_assets.schemas import ALL_TABLES

HEADER = ("# Tables\n\nGenerated from `retail_assets/schemas/` by `python -m retail_assets.docs`; "
          "a test fails when it is stale.\n")


def tables_markdown() -> str:
    return "\n\n".join([HEADER, *(spec.markdown_doc() for spec in ALL_TABLES.values())]) + "\n"


if __name__ == "__main__":
    from pathlib import Path

    target = Path(__file__).resolve().parent.parent / "docs" / "tables.md"
    target.write_text(tables_markdown())
    print(f"wrote {target}")
