"""The POS drop folder: stores upload sales and stock files into one tree, at any depth."""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd

from retail_assets.layouts import Layout, load_layouts

STORES_FILE = "stores.csv"
IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload")


@dataclass(frozen=True)
class DropFile:
    """A file in the drop folder, with what its name says about it (layout None: no layout matches)."""

    path: str  # relative to the drop folder, '/'-separated
    size: int
    mtime: float
    layout: str | None = None
    kind: str | None = None
    store_code: str | None = None
    business_date: date | None = None


class PosDropFolder(dg.ConfigurableResource):
    """The folder tree ``RETAIL_POS_DROP_DIR``, read with the layouts in ``RETAIL_POS_LAYOUTS_DIR``."""

    path: str
    layouts_dir: str = ""

    @property
    def root(self) -> Path:
        return Path(self.path)

    def layouts(self) -> dict[str, Layout]:
        return load_layouts(Path(self.layouts_dir) if self.layouts_dir else None)

    def stores_csv(self) -> Path:
        return self.root / STORES_FILE

    def _walk(self, folder: str) -> Iterator[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        yield from self._walk(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        yield entry
        except FileNotFoundError:
            return

    def scan(self, layouts: dict[str, Layout] | None = None) -> list[DropFile]:
        """Every complete file below the folder (in-progress uploads and stores.csv left out), classified."""
        layouts = layouts if layouts is not None else self.layouts()
        root = str(self.root)
        prefix = len(os.path.join(root, ""))
        files = []
        for entry in self._walk(root):
            name = entry.name
            if name.endswith(IN_PROGRESS_SUFFIXES) or name.startswith("."):
                continue
            rel = entry.path[prefix:].replace(os.sep, "/")  # relpath is the slowest step at 100,000 files
            if rel == STORES_FILE:
                continue
            st = entry.stat(follow_symlinks=False)
            files.append(classify(rel, st.st_size, st.st_mtime, layouts))
        files.sort(key=lambda f: f.path)
        return files

    def read_bytes(self, rel: str) -> bytes:
        """The file's content, gunzipped when its name ends in .gz."""
        data = (self.root / rel).read_bytes()
        if rel.endswith(".gz"):
            data = gzip.decompress(data)
        return data

    def read_stores(self) -> pd.DataFrame:
        """stores.csv as strings, header names lower-cased; raises FileNotFoundError with what to do."""
        path = self.stores_csv()
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: the stores reference (SPEC 2.1) must sit at the root of RETAIL_POS_DROP_DIR"
            )
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        frame.columns = [str(c).strip().lower() for c in frame.columns]
        return frame


def classify(rel: str, size: int, mtime: float, layouts: dict[str, Layout]) -> DropFile:
    name = rel.rsplit("/", 1)[-1]
    for layout in layouts.values():
        hit = layout.match(name)
        if hit:
            store, day = hit
            return DropFile(rel, size, mtime, layout.name, layout.kind, store, day)
    return DropFile(rel, size, mtime)


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
