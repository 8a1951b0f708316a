"""Jobs: the reference refresh (unpartitioned snapshots and dimensions) and the daily load of business dates."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from retail_assets.partitions import daily_partitions

REFERENCE_JOB = "refresh_reference"
DAILY_JOB = "daily_load"


def build_jobs(assets: Sequence[dg.AssetsDefinition]) -> list[dg.UnresolvedAssetJobDefinition]:
    """Split the graph by partitioning: the reference refresh runs first, then the day(s)."""
    unpartitioned = [k for a in assets if a.partitions_def is None for k in a.keys]
    daily = [k for a in assets if a.partitions_def is not None for k in a.keys]
    return [
        dg.define_asset_job(REFERENCE_JOB, selection=dg.AssetSelection.assets(*unpartitioned),
                            description="Stores, catalog, customers, contacts and the dimensions built from them"),
        dg.define_asset_job(DAILY_JOB, selection=dg.AssetSelection.assets(*daily), partitions_def=daily_partitions,
                            description="Everything dated: POS files, orders, returns and the facts of a day"),
    ]
