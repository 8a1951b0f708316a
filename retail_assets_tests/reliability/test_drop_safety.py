"""What is booked stays booked: hostile re-sends, files that go away, operator acts and odd drop-folder entries.

SPEC 2.5 (issue 16): a store-day's booked lines stay until a newer acceptable file replaces them or an operator
withdraws them. Each test runs the real ``daily_load`` job through a real Dagster instance on a copy of one
generated company whose days are already loaded (once per module and engine, checked against the generator's
manifest to the cent), changes the drop folder as stores, archivers and operators do, runs the day again and
compares a golden snapshot of the warehouse (every ``raw_pos_sales`` row; ``fact_sales`` line count and
``sum(net_amount)`` per store-day, to the cent) before and after: nothing lost, nothing doubled. The corrupt
archive cases load a day for the first time instead, and compare with the manifest.
"""

from __future__ import annotations

import csv
import gzip
import io
import numbers
import os
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from retail_assets.resources import Warehouse
from retail_assets_tests.conftest import create_pg_database, drop_pg_database, pg_url, platform_environment

CENT = Decimal("0.01")
RAW_COLUMNS = ("receipt_id", "line_no", "sold_at", "sku_raw", "quantity", "unit_price", "discount", "loyalty_card",
               "payment_method", "source_file", "source_line")
FILES_CHECK = "no_refused_or_held_files"
# The operator's run tags (retail_assets.transforms.pos_files): people type them, so they are a contract.
ACCEPT_TAG = "retail/accept_held"
WITHDRAW_TAG = "retail/withdraw"
# Bytes of a spreadsheet saved under the CSV's name: an OLE header, then every byte value (NULs among them).
BINARY = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 8

Snapshot = dict[tuple[str, str], object]


# --------------------------------------------------------------------------------------------------- helpers


def _run(job: str, day: str | None = None, tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
    from retail_assets.definitions import build_definitions

    # built now: the resources are bound to the variables as the test set them (RETAIL_RESEND_HOLD_SHARE, ...)
    return build_definitions().resolve_job_def(job).execute_in_process(
        instance=dg.DagsterInstance.get(), partition_key=day, tags=tags, raise_on_error=False)


def _value(v: object) -> object:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, float | Decimal):
        return round(float(v), 2)
    return str(v)


def _raw(wh: Warehouse, with_run: bool = False) -> dict[tuple[str, str], list[tuple]]:
    """(day, store) -> its raw_pos_sales rows, sorted (with the loading run when ``with_run``)."""
    cols = RAW_COLUMNS + (("run_id",) if with_run else ())
    frame = wh.query(f"SELECT CAST(business_date AS VARCHAR(10)) AS day, store_code, {', '.join(cols)} "
                     "FROM raw_pos_sales")
    out: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for row in frame.to_dict("records"):
        out[(row["day"], row["store_code"])].append(tuple(_value(row[c]) for c in cols))
    return {key: sorted(rows, key=repr) for key, rows in out.items()}


def _facts(wh: Warehouse) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """(day, store or ONLINE) -> (fact_sales lines, sum of net_amount to the cent)."""
    frame = wh.query("SELECT CAST(f.business_date AS VARCHAR(10)) AS day, s.store_code, COUNT(*) AS n, "
                     "CAST(SUM(f.net_amount) AS VARCHAR(32)) AS net FROM fact_sales f "
                     "JOIN dim_store s ON s.store_key = f.store_key GROUP BY 1, 2")
    return {(r.day, r.store_code): (int(r.n), Decimal(r.net).quantize(CENT)) for r in frame.itertuples()}


def _golden(manifest: dict) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """What the generator says every store-day and online day sums to."""
    expected = {(day, store): (s["valid_lines"], Decimal(s["net_amount"]))
                for day, stores in manifest["pos"].items() for store, s in stores.items()}
    for day, d in manifest["online"].items():
        if d["sale_lines"] or d["returns"]:
            expected[(day, "ONLINE")] = (d["sale_lines"] + d["returns"], Decimal(d["net_amount"]))
    return expected


def _snapshot(wh: Warehouse, with_run: bool = False) -> dict[str, Snapshot]:
    return {"raw": _raw(wh, with_run), "facts": _facts(wh)}


def _without(snapshot: dict[str, Snapshot], *keys: tuple[str, str]) -> dict[str, Snapshot]:
    return {part: {k: v for k, v in rows.items() if k not in keys} for part, rows in snapshot.items()}


def _net(rows: list[tuple]) -> Decimal:
    """net_amount of raw rows as fact_sales computes it: quantity * unit_price - sign(quantity) * discount."""
    q, p, d = (RAW_COLUMNS.index(c) for c in ("quantity", "unit_price", "discount"))
    total = sum(Decimal(str(r[q])) * Decimal(str(r[p])) - (1 if r[q] > 0 else -1) * Decimal(str(r[d]))
                for r in rows)
    return Decimal(total).quantize(CENT)


def _ledger(wh: Warehouse, day: str | None = None) -> pd.DataFrame:
    where = ("business_date = :d AND kind = 'sales'", {"d": date.fromisoformat(day)}) if day else \
        ("business_date IS NULL", {})
    return wh.query(f"SELECT path, content_hash, store_code, status, reason, lines, rows_loaded, run_id "
                    f"FROM pos_file_ledger WHERE {where[0]} ORDER BY path, status", **where[1])


def _rejections(wh: Warehouse, path: str) -> pd.DataFrame:
    return wh.query("SELECT source_ref, source_key, reason_code, reason, run_id FROM rejections "
                    "WHERE source_ref = :p", p=path)


def _failed_error_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    return [f"{e.asset_key.to_user_string()}.{e.check_name}" for e in result.get_asset_check_evaluations()
            if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]


def _check(result: dg.ExecuteInProcessResult, asset: str, name: str) -> dg.AssetCheckEvaluation:
    return next(e for e in result.get_asset_check_evaluations()
                if e.asset_key == dg.AssetKey(asset) and e.check_name == name)


def _materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset))
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _logs(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(e.user_message for e in dg.DagsterInstance.get().all_logs(result.run_id))


def _write(path: Path, data: bytes | str, mtime: float | None = None) -> None:
    """Write like an uploader: the file's modification time is now (received last) unless given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    stamp = time.time() if mtime is None else mtime
    os.utime(path, (stamp, stamp))


def _text(path: Path) -> str:
    return path.read_bytes().decode("utf-8-sig")  # the generator's exports may start with a BOM


def _rows(text: str) -> tuple[list[str], list[list[str]]]:
    """An export's header (names lower-cased, as the layout matches them) and its data rows."""
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    return [h.strip().lower() for h in table[0]], [r for r in table[1:] if r]


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    return out.getvalue()


def _first_lines(data: bytes, keep: int) -> bytes:
    """The export cut after its first ``keep`` data lines (physical lines 2 .. keep + 1 stay as they were)."""
    return b"".join(data.splitlines(keepends=True)[:keep + 1])


def _with_extra_line(data: bytes, day: str) -> bytes:
    """The same export plus one new sale at its end: a complete, different file (2 units at 10.00, no discount);
    every earlier line keeps its number."""
    header, rows = _rows(data.decode("utf-8-sig"))
    extra = dict(zip(header, rows[0], strict=True))
    extra.update(receipt_id="ZNEW1", line_no="1", sold_at=f"{day}T12:00:00", quantity="2", unit_price="10.00",
                 discount="0", payment_method="cash")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([extra[h] for h in header])
    return data + (b"" if data.endswith(b"\n") else b"\n") + out.getvalue().encode()


def _changed(before: dict[str, Snapshot], after: dict[str, Snapshot]) -> dict[tuple[str, str, str], str]:
    """Store-days whose rows or money differ between two snapshots, with what each says (for a readable failure)."""
    out = {}
    for part in before:
        for key in sorted(set(before[part]) | set(after[part])):
            was, now = before[part].get(key), after[part].get(key)
            if was != now:
                if part == "raw":
                    file = RAW_COLUMNS.index("source_file")
                    was, now = ((len(r), sorted({x[file] for x in r})) if r else None for r in (was, now))
                out[(part, *key)] = f"{was} -> {now}"
    return out


def assert_same(after: dict[str, Snapshot], before: dict[str, Snapshot]) -> None:
    assert _changed(before, after) == {}
    assert after == before


# --------------------------------------------------------------------------------------------------- fixtures


def _load(engine: str, request: pytest.FixtureRequest, small_company: tuple[Path, dict],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The small company loaded day by day through the real jobs; its facts match the generator's manifest."""
    from retail_assets.jobs import DAILY_JOB, REFERENCE_JOB

    base = tmp_path_factory.mktemp(f"booked_{engine}")
    shutil.copytree(small_company[0], base / "company")
    (base / "home").mkdir()
    database = None
    if engine == "duckdb":
        url = f"duckdb:///{base / 'warehouse.duckdb'}"
    else:
        database = create_pg_database(request.getfixturevalue("pg_admin"))
        url = pg_url(database)
    manifest = small_company[1]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in platform_environment(base / "company", url, base / "home").items():
            mp.setenv(key, value)
        assert _run(REFERENCE_JOB).success
        for day in manifest["business_dates"]:
            result = _run(DAILY_JOB, day)
            assert result.success and not _failed_error_checks(result), day
        wh = Warehouse(url=url)
        try:
            assert _facts(wh) == _golden(manifest)
        finally:
            wh.dispose()
    yield {"backend": engine, "root": base / "company", "url": url, "database": database, "manifest": manifest}
    if database:
        drop_pg_database(request.getfixturevalue("pg_admin"), database)


# Loaded once per module and engine, read-only: a test works on a copy (``site``).
@pytest.fixture(scope="module")
def booked_duckdb(request: pytest.FixtureRequest, small_company: tuple[Path, dict],
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    yield from _load("duckdb", request, small_company, tmp_path_factory)


@pytest.fixture(scope="module")
def booked_postgres(request: pytest.FixtureRequest, small_company: tuple[Path, dict],
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    yield from _load("postgres", request, small_company, tmp_path_factory)


@dataclass
class Site:
    """A private copy of the loaded company: its drop folder, warehouse and an empty Dagster instance."""

    root: Path
    manifest: dict
    wh: Warehouse
    tmp: Path
    backend: str

    @property
    def drop(self) -> Path:
        return self.root / "pos_drop"

    def plain_store_day(self) -> tuple[str, str, str]:
        """(day, store, file) of a standard-layout store-day booked from one plain .csv file, the only sales file
        of that store-day, on a day other stores booked too."""
        ledger = self.wh.query("SELECT CAST(business_date AS VARCHAR(10)) AS day, store_code, path, status "
                               "FROM pos_file_ledger WHERE kind = 'sales' AND business_date IS NOT NULL")
        per_day = ledger[ledger["status"] == "loaded"].groupby("day")["store_code"].nunique()
        for (day, store), files in sorted(ledger.groupby(["day", "store_code"])):
            path = files["path"].iloc[0]
            if (len(files) == 1 and path.endswith(".csv") and path.rsplit("/", 1)[-1].startswith("sales_")
                    and files["status"].iloc[0] == "loaded" and per_day[day] >= 2):
                return day, store, path
        raise AssertionError("the company has no store-day booked from one plain standard .csv file")


@pytest.fixture(params=["duckdb", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """A private copy of the loaded company on the engine ``request.param``: its files, its warehouse (a copy of
    the DuckDB file, or a PostgreSQL database made from the loaded one as template) and a new DAGSTER_HOME."""
    booked = request.getfixturevalue(f"booked_{request.param}")
    root = tmp_path / "company"
    shutil.copytree(booked["root"], root)  # copy2 keeps the mtimes, which decide which of two files wins
    database = None
    if booked["backend"] == "duckdb":
        source = Path(booked["url"].removeprefix("duckdb:///"))
        for suffix in ("", ".wal"):  # no process has the file open: the jobs' resources are torn down
            if source.with_name(source.name + suffix).exists():
                shutil.copyfile(source.with_name(source.name + suffix), tmp_path / f"warehouse.duckdb{suffix}")
        url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    else:
        admin: sa.Engine = request.getfixturevalue("pg_admin")
        database = f"retail_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:  # a copy of the loaded database
            conn.exec_driver_sql(f'CREATE DATABASE "{database}" TEMPLATE "{booked["database"]}"')
        url = pg_url(database)
    (tmp_path / "home").mkdir()
    for key, value in platform_environment(root, url, tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    wh = Warehouse(url=url)
    yield Site(root, booked["manifest"], wh, tmp_path, booked["backend"])
    wh.dispose()
    if database:
        drop_pg_database(request.getfixturevalue("pg_admin"), database)


def _daily(day: str, tags: dict[str, str] | None = None) -> dg.ExecuteInProcessResult:
    from retail_assets.jobs import DAILY_JOB

    result = _run(DAILY_JOB, day, tags)
    assert result.success, [e.step_failure_data.error.message for e in result.all_events if e.is_step_failure]
    assert not _failed_error_checks(result)
    return result


# ------------------------------------------------------------------ 1. a refused re-send never replaces a good one


def _refused_resend(variant: str, data: bytes) -> bytes:
    text = data.decode("utf-8-sig")
    header, rows = _rows(text)
    q = header.index("quantity")
    if variant == "binary":
        return BINARY
    if variant == "utf16":
        return text.encode("utf-16")
    if variant == "missing_column":
        return _csv(header[:q] + header[q + 1:], [r[:q] + r[q + 1:] for r in rows]).encode()
    if variant == "bad_lines":  # 60% of the lines say "many" where a quantity belongs (over the 50% limit)
        return _csv(header, [r[:q] + ["many"] + r[q + 1:] if i < len(rows) * 0.6 else r
                             for i, r in enumerate(rows)]).encode()
    raise AssertionError(variant)


REFUSED = {  # variant -> what the refusal's reason says
    "binary": "NUL bytes", "utf16": "NUL bytes", "missing_column": "quantity", "bad_lines": "limit",
    "corrupt_gz_beside": "gzip",
}


@pytest.mark.parametrize(("site", "variant"), [
    ("duckdb", "binary"), ("postgres", "binary"), ("duckdb", "utf16"), ("duckdb", "missing_column"),
    ("duckdb", "bad_lines"), ("duckdb", "corrupt_gz_beside"), ("postgres", "corrupt_gz_beside"),
], indirect=["site"])
def test_a_refused_resend_keeps_the_booked_store_day(site: Site, variant: str):
    """A store re-sends its booked day as something that cannot be loaded, newer than what is booked: the
    store-day keeps its lines and money to the cent; the ledger has the refused file and the booked one."""
    day, store, path = site.plain_store_day()
    before = _snapshot(site.wh)
    old = _ledger(site.wh, day).set_index("path").loc[path]
    data = (site.drop / path).read_bytes()
    if variant == "corrupt_gz_beside":  # a second name for the same store-day: an archive cut short
        refused = f"{path}.gz"
        _write(site.drop / refused, gzip.compress(data)[:200])
    else:  # the same name: the booked bytes are gone from the folder, only the refused ones are there
        refused = path
        _write(site.drop / path, _refused_resend(variant, data))

    result = _daily(day)

    assert_same(_snapshot(site.wh), before)
    ledger = _ledger(site.wh, day)
    mine = ledger[ledger["store_code"] == store]
    rejected = mine[mine["status"] == "rejected"]
    assert rejected["path"].tolist() == [refused]
    assert REFUSED[variant] in rejected["reason"].iloc[0]
    loaded = mine[mine["status"] == "loaded"]
    assert loaded[["path", "content_hash", "rows_loaded"]].values.tolist() == [
        [path, old["content_hash"], old["rows_loaded"]]]
    assert rejected["content_hash"].iloc[0] != old["content_hash"]
    rejections = _rejections(site.wh, refused)
    assert len(rejections) and set(rejections["run_id"]) == {result.run_id}
    assert rejections["reason"].str.contains(REFUSED[variant], regex=False).all()
    check = _check(result, "raw_pos_sales", FILES_CHECK)
    assert not check.passed and f"store {store}, {day}, {refused}: rejected" in check.metadata["files"].value


@pytest.mark.parametrize("site", ["duckdb"], indirect=True)
@pytest.mark.parametrize("gone", ["overwritten_by_a_broken_upload", "archived"])
def test_an_older_export_does_not_come_back_when_the_booked_resend_goes(site: Site, gone: str):
    """A store corrected a day: its re-send is booked, its first export superseded (both in the folder). Then the
    re-send is overwritten by a broken upload, or archived alone. What is booked stays: the first export is older
    than the booked re-send, so it never replaces it (SPEC 2.5: booked lines stay until a *newer* file for that
    store-day replaces them)."""
    first = site.manifest["superseded_files"][0]
    day, store = site.wh.query("SELECT CAST(business_date AS VARCHAR(10)) AS day, store_code FROM pos_file_ledger "
                               "WHERE path = :p", p=first).iloc[0]
    resend = site.manifest["pos"][day][store]["file"]
    assert resend != first and (site.drop / first).stat().st_mtime < (site.drop / resend).stat().st_mtime
    before = _snapshot(site.wh)
    assert {r[RAW_COLUMNS.index("source_file")] for r in before["raw"][(day, store)]} == {resend}

    if gone == "archived":
        shutil.move(site.drop / resend, site.tmp / "archived.csv")
    else:
        _write(site.drop / resend, BINARY)
    _daily(day)

    assert_same(_snapshot(site.wh), before)
    status = _ledger(site.wh, day).groupby(["path", "status"]).size().to_dict()
    assert status.get((resend, "loaded")) == 1 and (first, "loaded") not in status


# ------------------------------------------------------------------ 2. a re-send that removes most lines is held


@pytest.mark.parametrize(("site", "resend"), [
    ("duckdb", "header_only"), ("duckdb", "truncated"), ("postgres", "truncated"),
], indirect=["site"])
def test_a_resend_that_would_remove_most_lines_is_held_until_accepted(site: Site, resend: str):
    day, store, path = site.plain_store_day()
    before = _snapshot(site.wh)
    data = (site.drop / path).read_bytes()
    keep = 0 if resend == "header_only" else round(len(_rows(_text(site.drop / path))[1]) * 0.3)
    _write(site.drop / path, _first_lines(data, keep))  # a truncated export: 70% (or all) of its lines gone

    result = _daily(day)

    assert_same(_snapshot(site.wh), before)
    ledger = _ledger(site.wh, day)
    mine = ledger[ledger["store_code"] == store].set_index("status")
    assert sorted(mine.index) == ["held", "loaded"]
    assert mine.loc["held", "path"] == path and mine.loc["loaded", "path"] == path
    assert mine.loc["held", "content_hash"] != mine.loc["loaded", "content_hash"]
    assert f"{ACCEPT_TAG}={store}" in mine.loc["held", "reason"]
    check = _check(result, "raw_pos_sales", FILES_CHECK)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert f"store {store}, {day}, {path}: held" in check.metadata["files"].value

    # The operator looked at it and accepts it: the store-day is now what the file says.
    _daily(day, tags={ACCEPT_TAG: store})

    after = _snapshot(site.wh)
    line = RAW_COLUMNS.index("source_line")
    expected = [r for r in before["raw"][(day, store)] if r[line] <= keep + 1]
    assert after["raw"].get((day, store), []) == expected
    assert after["facts"].get((day, store), (0, Decimal("0.00"))) == (len(expected), _net(expected))
    assert_same(_without(after, (day, store)), _without(before, (day, store)))
    status = _ledger(site.wh, day).set_index(["path", "status"])
    assert status.loc[(path, "loaded"), "rows_loaded"] == len(expected)
    assert (path, "held") not in status.index


@pytest.mark.parametrize("site", ["duckdb"], indirect=True)
def test_the_hold_share_is_a_setting(site: Site, monkeypatch: pytest.MonkeyPatch):
    """RETAIL_RESEND_HOLD_SHARE=0.9: a header-only re-send (all lines would go) is still held, a re-send that
    removes 70% of the lines is applied without an operator."""
    monkeypatch.setenv("RETAIL_RESEND_HOLD_SHARE", "0.9")
    day, store, path = site.plain_store_day()
    before = _snapshot(site.wh)
    data = (site.drop / path).read_bytes()
    _write(site.drop / path, _first_lines(data, 0))
    _daily(day)
    assert_same(_snapshot(site.wh), before)
    assert "held" in set(_ledger(site.wh, day)["status"])

    keep = round(len(_rows(data.decode("utf-8-sig"))[1]) * 0.3)
    _write(site.drop / path, _first_lines(data, keep))
    _daily(day)

    after = _snapshot(site.wh)
    line = RAW_COLUMNS.index("source_line")
    expected = [r for r in before["raw"][(day, store)] if r[line] <= keep + 1]
    assert 0 < len(expected) < len(before["raw"][(day, store)]) * 0.5
    assert after["raw"][(day, store)] == expected
    assert after["facts"][(day, store)] == (len(expected), _net(expected))
    assert_same(_without(after, (day, store)), _without(before, (day, store)))
    assert "held" not in set(_ledger(site.wh, day)["status"])


def test_the_operator_tags_are_the_documented_ones():
    from retail_assets.transforms import pos_files

    assert (pos_files.ACCEPT_TAG, pos_files.WITHDRAW_TAG) == (ACCEPT_TAG, WITHDRAW_TAG)


# ------------------------------------------------------------------ 3. files that disappear erase nothing


def _without_runs(snapshot: dict[str, Snapshot]) -> dict[str, Snapshot]:
    """A snapshot taken with the runs, as one taken without."""
    return {"raw": {k: sorted((r[:-1] for r in rows), key=repr) for k, rows in snapshot["raw"].items()},
            "facts": snapshot["facts"]}


def test_archived_files_keep_their_lines_until_a_newer_file_replaces_them(site: Site):
    day, store, path = site.plain_store_day()
    before = _snapshot(site.wh, with_run=True)
    ledger = _ledger(site.wh, day)
    booked_paths = sorted(ledger.loc[ledger["status"] == "loaded", "path"])
    assert len(booked_paths) >= 2
    archive = site.tmp / "archive"
    for rel in ledger["path"]:  # every sales file of the day, whatever became of it, leaves the drop folder
        if (site.drop / rel).exists():
            (archive / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(site.drop / rel, archive / rel)

    result = _daily(day)

    assert_same(_snapshot(site.wh, with_run=True), before)  # not even rewritten: the same rows of the same runs
    after = _ledger(site.wh, day)
    kept = after[after["status"] == "loaded"]
    assert sorted(kept["path"]) == booked_paths
    assert kept["reason"].str.contains("no longer in the drop folder").all()
    assert _materialization(result, "raw_pos_sales")["booked_files_missing"] == len(booked_paths)
    logs = _logs(result)
    assert all(p in logs for p in booked_paths)

    # One store re-sends a complete, different file: that store-day alone is replaced.
    _write(site.drop / path, _with_extra_line((archive / path).read_bytes(), day))
    _daily(day)

    after = _snapshot(site.wh)
    was = _without_runs(before)
    mine = after["raw"][(day, store)]
    assert [r for r in mine if r[0] != "ZNEW1"] == was["raw"][(day, store)]
    assert len(mine) == len(was["raw"][(day, store)]) + 1
    n, net = before["facts"][(day, store)]
    assert after["facts"][(day, store)] == (n + 1, net + Decimal("20.00"))
    assert_same(_without(after, (day, store)), _without(was, (day, store)))
    ledger = _ledger(site.wh, day)
    assert sorted(ledger.loc[ledger["status"] == "loaded", "path"]) == booked_paths  # the others: still booked


# ------------------------------------------------------------------ 4. withdrawing is an operator's act


def test_a_withdrawn_store_day_is_not_booked_again_from_the_same_bytes(site: Site):
    day, store, path = site.plain_store_day()
    before = _snapshot(site.wh)
    booked_hash = _ledger(site.wh, day).set_index("path").loc[path, "content_hash"]

    _daily(day, tags={WITHDRAW_TAG: store})

    after = _snapshot(site.wh)
    assert (day, store) not in after["raw"] and (day, store) not in after["facts"]
    assert_same(_without(after, (day, store)), _without(before, (day, store)))
    ledger = _ledger(site.wh, day)
    assert ledger.loc[ledger["path"] == path, ["content_hash", "status"]].values.tolist() == [
        [booked_hash, "withdrawn"]]

    # The same bytes are still in the folder: runs without the tag do not book them again.
    for _ in range(2):
        _daily(day)
        assert_same(_snapshot(site.wh), after)
    ledger = _ledger(site.wh, day)
    assert set(ledger.loc[ledger["path"] == path, "status"]) == {"withdrawn"}
    assert ledger[ledger.duplicated(["path", "content_hash"], keep=False)].empty, \
        ledger.loc[ledger["path"] == path, ["content_hash", "status", "reason"]].to_dict("records")


@pytest.mark.parametrize("site", ["duckdb"], indirect=True)
def test_a_different_resend_after_a_withdrawal_is_booked(site: Site):
    day, store, path = site.plain_store_day()
    before = _snapshot(site.wh)
    booked_hash = _ledger(site.wh, day).set_index("path").loc[path, "content_hash"]
    _daily(day, tags={WITHDRAW_TAG: store})

    _write(site.drop / path, _with_extra_line((site.drop / path).read_bytes(), day))
    _daily(day)

    after = _snapshot(site.wh)
    assert [r for r in after["raw"][(day, store)] if r[0] != "ZNEW1"] == before["raw"][(day, store)]
    assert len(after["raw"][(day, store)]) == len(before["raw"][(day, store)]) + 1
    n, net = before["facts"][(day, store)]
    assert after["facts"][(day, store)] == (n + 1, net + Decimal("20.00"))
    assert_same(_without(after, (day, store)), _without(before, (day, store)))
    mine = _ledger(site.wh, day).query("path == @path").set_index("content_hash")["status"].to_dict()
    assert mine.pop(booked_hash, None) == "withdrawn" and list(mine.values()) == ["loaded"]


# ------------------------------------------------------------------ 5. no drop folder: the run fails, clearly


@pytest.mark.parametrize(("site", "broken"), [
    ("duckdb", "missing"), ("postgres", "missing"), ("duckdb", "no_stores_csv"), ("postgres", "no_stores_csv"),
    ("duckdb", "empty_mount_point"),
], indirect=["site"])
def test_a_missing_drop_folder_fails_the_day_and_changes_nothing(site: Site, broken: str):
    from retail_assets.jobs import DAILY_JOB

    day = site.manifest["business_dates"][-1]
    before = _snapshot(site.wh, with_run=True)
    ledger_sql = "SELECT * FROM pos_file_ledger ORDER BY path, content_hash"
    rejections_sql = "SELECT * FROM rejections WHERE asset = 'raw_pos_sales' ORDER BY source_ref, source_key"
    ledger_before, rejections_before = site.wh.query(ledger_sql), site.wh.query(rejections_sql)
    if broken == "no_stores_csv":
        (site.drop / "stores.csv").unlink()
        said = "has no stores.csv"
    else:
        shutil.move(site.drop, site.tmp / "unmounted")
        said = "does not exist"
        if broken == "empty_mount_point":
            site.drop.mkdir()
            said = "has no stores.csv"

    result = _run(DAILY_JOB, day)

    assert not result.success
    failures = [e.step_failure_data for e in result.all_events if e.is_step_failure]
    described = [f.user_failure_data.description for f in failures if f.user_failure_data]
    assert described and all(str(site.drop) in d and said in d for d in described), described
    assert_same(_snapshot(site.wh, with_run=True), before)
    pd.testing.assert_frame_equal(site.wh.query(ledger_sql), ledger_before)
    pd.testing.assert_frame_equal(site.wh.query(rejections_sql), rejections_before)


# ------------------------------------------------------------------ 6. a corrupt archive among the day's files


def _gz_day(manifest: dict) -> tuple[str, str, str, str]:
    """(day, store with a .csv.gz file, another standard store with a plain .csv, its file) on one day."""
    for day, stores in manifest["pos"].items():
        gz = [s for s, e in stores.items() if e["layout"] == "standard" and e["file"].endswith(".csv.gz")]
        plain = [s for s, e in stores.items() if e["layout"] == "standard" and e["file"].endswith(".csv")]
        if gz and plain:
            return day, gz[0], plain[0], stores[plain[0]]["file"]
    raise AssertionError("the company has no day with both a .csv.gz and a plain .csv sales file")


def _first_load(platform_env: dict, day: str) -> dict:
    """refresh_reference and the day on the empty warehouse; the day's facts, ledger and rejections."""
    from retail_assets.jobs import REFERENCE_JOB

    assert _run(REFERENCE_JOB).success
    _daily(day)
    wh = Warehouse(url=platform_env["env"]["RETAIL_WAREHOUSE_URL"])
    try:
        return {"facts": {k: v for k, v in _facts(wh).items() if k[0] == day}, "ledger": _ledger(wh, day),
                "rejections": wh.query("SELECT source_ref, reason FROM rejections WHERE business_date = :d",
                                       d=date.fromisoformat(day))}
    finally:
        wh.dispose()


def test_a_corrupt_gzip_is_refused_and_the_rest_of_the_day_loads(platform_env: dict):
    """A first load of a day where one store's archive is cut short and another store sends, newer than its good
    file, a .gz that is no gzip at all: every other store-day and the online sales are as the manifest says."""
    root, manifest = platform_env["root"], platform_env["manifest"]
    drop = root / "pos_drop"
    day, gz_store, other, other_file = _gz_day(manifest)
    truncated = manifest["pos"][day][gz_store]["file"]
    _write(drop / truncated, (drop / truncated).read_bytes()[:-40], (drop / truncated).stat().st_mtime)
    not_gzip = f"{other_file}.gz"
    _write(drop / not_gzip, _with_extra_line((drop / other_file).read_bytes(), day))  # plain text, named .gz

    got = _first_load(platform_env, day)

    expected = {k: v for k, v in _golden(manifest).items() if k[0] == day and k != (day, gz_store)}
    assert (day, "ONLINE") in expected and (day, other) in expected
    assert got["facts"] == expected
    status = got["ledger"].set_index("path")
    assert status.loc[other_file, "status"] == "loaded"
    for path in (truncated, not_gzip):
        assert status.loc[path, "status"] == "rejected" and "gzip" in status.loc[path, "reason"]
        said = got["rejections"].loc[got["rejections"]["source_ref"] == path, "reason"]
        assert len(said) and said.str.contains("gzip").all()


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)
@pytest.mark.parametrize("gz_received", ["before", "after"])
def test_a_broken_gz_with_the_bytes_of_a_good_file_does_not_hide_it(platform_env: dict, gz_received: str):
    """An uploader that names plain text .gz: the same export arrives as ``sales_S_D.csv.gz`` (not gzip) and as
    ``sales_S_D.csv``. The .csv is loaded whichever came first; the .gz is refused as a broken archive."""
    root, manifest = platform_env["root"], platform_env["manifest"]
    drop = root / "pos_drop"
    day, _, store, good = _gz_day(manifest)
    stamp = (drop / good).stat().st_mtime
    _write(drop / f"{good}.gz", (drop / good).read_bytes(), stamp + (-60 if gz_received == "before" else 60))

    got = _first_load(platform_env, day)

    assert got["facts"].get((day, store)) == _golden(manifest)[(day, store)]
    status = got["ledger"].set_index("path")["status"].to_dict()
    assert (status[good], status[f"{good}.gz"]) == ("loaded", "rejected")


# ------------------------------------------------------------------ 7. links, hidden and special entries


def test_links_hidden_and_special_entries_are_never_read_and_are_listed(site: Site):
    from retail_assets.jobs import REFERENCE_JOB

    day, store, path = site.plain_store_day()
    name = f"sales_{store}_{day.replace('-', '')}.csv"
    header, rows = _rows(_text(site.drop / path))
    rid = header.index("receipt_id")
    foreign = _csv(header, [r[:rid] + [f"OUTSIDE{i}"] + r[rid + 1:] for i, r in enumerate(rows)])
    outside = site.tmp / "outside"
    _write(outside / name, foreign)  # a complete, newer export: were it read, it would replace the store-day
    _write(outside / "sub" / name, foreign)
    (site.drop / "links").mkdir()
    os.symlink(outside / name, site.drop / "links" / name)
    os.symlink(outside / "sub", site.drop / "linked_folder")
    _write(site.drop / f".{name}", foreign)
    _write(site.drop / ".hidden" / name, foreign)
    (site.drop / "fifo").mkdir()
    os.mkfifo(site.drop / "fifo" / name)  # a pipe named like a sales file: reading it would wait forever
    before = _snapshot(site.wh)

    reference = _run(REFERENCE_JOB)
    assert reference.success
    _daily(day)

    assert_same(_snapshot(site.wh), before)
    assert site.wh.scalar("SELECT COUNT(*) FROM raw_pos_sales WHERE receipt_id LIKE 'OUTSIDE%'") == 0
    ledger = _ledger(site.wh)
    skipped = ledger[ledger["status"] == "skipped"].set_index("path")["reason"].to_dict()
    expected = {f"links/{name}": "symbolic link", "linked_folder": "symbolic link", f".{name}": "hidden file",
                ".hidden": "hidden folder", f"fifo/{name}": "not a regular file"}
    assert set(skipped) == set(expected)
    for entry, said in expected.items():
        assert said in skipped[entry], (entry, skipped[entry])
    check = _check(reference, "pos_unrecognised_files", "no_unrecognised_files")
    assert not check.passed and check.metadata["skipped"].value == len(expected)
