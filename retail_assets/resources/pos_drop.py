"""The POS drop folder: stores upload sales and stock files into one tree, at any depth."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

import dagster as dg
import pandas as pd
from pydantic import Field

from retail_assets.layouts import Layout, load_layouts
from retail_assets.settings import DEFAULTS

STORES_FILE = "stores.csv"
IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload")
HASH_BLOCK = 1 << 20


class DropFolderUnavailable(Exception):
    """The drop folder is missing, unreadable or has no stores.csv: nothing can be said about any store-day."""


@dataclass(frozen=True)
class FileDigest:
    """A file's content hash, and why it cannot be read when it cannot (``error_code`` None: it can)."""

    content_hash: str
    error_code: str | None = None
    error: str | None = None


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
    """The folder tree ``RETAIL_POS_DROP_DIR``, read with the layouts in ``RETAIL_POS_LAYOUTS_DIR``, and the knobs of
    how its files are taken: the run-time settings of the POS assets and sensors are fields of the resource that
    reads the files rather than of one settings resource, so that each asset and sensor declares what it depends
    on, and the many tests that bind ``pos_drop`` get the documented defaults without a new resource key."""

    path: str
    layouts_dir: str = ""
    max_rejected_line_rate: float = Field(
        default=float(DEFAULTS["RETAIL_MAX_REJECTED_LINE_RATE"]),
        description="RETAIL_MAX_REJECTED_LINE_RATE: above this share of bad lines a whole file is rejected")
    resend_hold_share: float = Field(
        default=float(DEFAULTS["RETAIL_RESEND_HOLD_SHARE"]),
        description="RETAIL_RESEND_HOLD_SHARE: a re-send that would remove more than this share of a store-day's "
                    "booked lines is held for an operator")
    chunk_bytes: int = Field(
        default=int(DEFAULTS["RETAIL_POS_CHUNK_BYTES"]),
        description="RETAIL_POS_CHUNK_BYTES: a file larger than this is read and checked chunk by chunk")
    settle_seconds: float = Field(
        default=float(DEFAULTS["RETAIL_POS_SETTLE_SECONDS"]),
        description="RETAIL_POS_SETTLE_SECONDS: a dropped file is taken once its mtime is this old and its size "
                    "and mtime held for a sensor tick")

    @property
    def root(self) -> Path:
        return Path(self.path)

    def layouts(self) -> dict[str, Layout]:
        return load_layouts(Path(self.layouts_dir) if self.layouts_dir else None)

    def stores_csv(self) -> Path:
        return self.root / STORES_FILE

    def _walk(self, folder: str, skipped: list[tuple[str, str]] | None) -> Iterator[os.DirEntry[str]]:
        """Regular files below ``folder``; what is passed over (links, hidden names, special or unreadable entries)
        goes to ``skipped`` as (path, reason), so nothing leaves the folder without a trace and nothing outside it
        is read (a link is never followed)."""
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    reason = _skip_reason(entry)
                    if reason is not None:
                        if skipped is not None:
                            skipped.append((self._rel(entry.path), reason))
                    elif entry.is_dir(follow_symlinks=False):
                        yield from self._walk(entry.path, skipped)
                    else:
                        yield entry
        except FileNotFoundError:
            return
        except OSError as exc:
            if folder == str(self.root):
                raise
            if skipped is not None:
                skipped.append((self._rel(folder), f"folder cannot be read ({exc.strerror}); nothing below it was "
                                                   "loaded: give the ETL's user read access"))

    def _rel(self, path: str) -> str:
        # relpath is the slowest step at 100,000 files
        return path[len(os.path.join(str(self.root), "")):].replace(os.sep, "/")

    def scan(self, layouts: dict[str, Layout] | None = None, skipped: list[tuple[str, str]] | None = None
             ) -> list[DropFile]:
        """Every complete file below the folder (in-progress uploads and stores.csv left out), classified; what is
        not read at all is appended to ``skipped`` when given."""
        layouts = layouts if layouts is not None else self.layouts()
        files = []
        for entry in self._walk(str(self.root), skipped):
            if entry.name.endswith(IN_PROGRESS_SUFFIXES):
                continue
            rel = self._rel(entry.path)
            if rel == STORES_FILE:
                continue
            st = entry.stat(follow_symlinks=False)
            files.append(classify(rel, st.st_size, st.st_mtime, layouts))
        files.sort(key=lambda f: f.path)
        return files

    def check_root(self) -> None:
        """Raise ``DropFolderUnavailable`` unless the folder is a readable directory with ``stores.csv``: a missing
        or unmounted share must fail a load, never look like a day without files."""
        root = self.root
        if not root.is_dir():
            raise DropFolderUnavailable(f"the POS drop folder {root} does not exist or is not a folder (unmounted "
                                        "share?); fix RETAIL_POS_DROP_DIR or mount it, then run the day again")
        if not os.access(root, os.R_OK | os.X_OK):
            raise DropFolderUnavailable(f"the POS drop folder {root} cannot be read; give the ETL's user read "
                                        "access (RETAIL_POS_DROP_DIR)")
        if not self.stores_csv().is_file():
            raise DropFolderUnavailable(f"the POS drop folder {root} has no {STORES_FILE} at its root (empty or "
                                        "unmounted share?); nothing was loaded: fix RETAIL_POS_DROP_DIR")

    def open(self, rel: str) -> BinaryIO:
        """The file's content as a stream, gunzipped when its name ends in .gz."""
        path = self.root / rel
        return gzip.open(path, "rb") if rel.endswith(".gz") else open(path, "rb")  # noqa: SIM115

    def read_bytes(self, rel: str) -> bytes:
        """The file's content, gunzipped when its name ends in .gz."""
        with self.open(rel) as stream:
            return stream.read()

    def digest(self, rel: str) -> FileDigest:
        """The content's hash, read in blocks (a file of any size), with why it cannot be read when it cannot.

        Identical content counts once whether it arrives plain or gzipped, so the hash is of the content. A
        corrupt, truncated or not-really-gzip archive, or a file the system will not read, gets the hash of its
        bytes on disk (the same broken upload counts once too) and the reason."""
        sha = hashlib.sha256()
        try:
            with self.open(rel) as stream:
                while block := stream.read(HASH_BLOCK):
                    sha.update(block)
            return FileDigest(sha.hexdigest())
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            reason = (f"file {rel} is not a readable gzip archive ({exc}); the upload is corrupt or "
                      "truncated: re-send it")
            code = "corrupt_archive"
        except OSError as exc:
            reason = f"file {rel} cannot be read ({exc.strerror or exc}); check its permissions and re-send it"
            code = "unreadable"
        sha = hashlib.sha256()
        try:
            with open(self.root / rel, "rb") as raw:
                while block := raw.read(HASH_BLOCK):
                    sha.update(block)
        except OSError:
            return FileDigest(f"unreadable:{rel}", code, reason)
        # Marked: plain text named .gz has the bytes of the good .csv it copies, and must not pass for its copy.
        return FileDigest(f"{code}:{sha.hexdigest()}", code, reason)

    def content_size(self, f: DropFile) -> int:
        """Bytes of the file's content: a gzip archive's trailer says how large its content is (modulo 4 GiB)."""
        if not f.path.endswith(".gz") or f.size < 18:
            return f.size
        try:
            with open(self.root / f.path, "rb") as raw:
                raw.seek(-4, os.SEEK_END)
                return max(f.size, int.from_bytes(raw.read(4), "little"))
        except OSError:
            return f.size

    def count_lines(self, rel: str) -> int:
        """Data lines of a file (non-blank lines after the header), read in blocks; 0 when it cannot be read."""
        lines, tail = 0, b""
        try:
            with self.open(rel) as stream:
                while block := stream.read(HASH_BLOCK):
                    parts = (tail + block).splitlines()
                    tail = parts.pop() if parts and not block.endswith((b"\n", b"\r")) else b""
                    lines += sum(1 for line in parts if line.strip())
        except (EOFError, zlib.error, OSError):
            return 0
        lines += 1 if tail.strip() else 0
        return max(0, lines - 1)

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


def _skip_reason(entry: os.DirEntry[str]) -> str | None:
    """Why an entry of the drop folder is not read, or None for a regular file or folder."""
    if entry.is_symlink():
        return "symbolic link, not followed (nothing outside the drop folder is read): copy the file itself in"
    if entry.name.startswith("."):
        what = "folder" if entry.is_dir(follow_symlinks=False) else "file"
        return (f"hidden {what} (name starts with '.'), not read: rename it without the dot if it holds POS "
                "files")
    if entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False):
        return None
    return "not a regular file (pipe, socket or device), not read"
