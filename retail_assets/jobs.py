"""Jobs: the reference refresh (unpartitioned snapshots and dimensions) and the daily load of business dates."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from retail_assets.assets.retry import TRANSIENT_RETRY
from retail_assets.partitions import daily_partitions

REFERENCE_JOB = "refresh_reference"
DAILY_JOB = "daily_load"
MARTS_JOB = "refresh_marts"


def build_jobs(assets: Sequence[dg.AssetsDefinition], marts_group: str = "marts",
               not_in_loads: Sequence[dg.AssetChecksDefinition] = ()) -> list[dg.UnresolvedAssetJobDefinition]:
    """Split the graph in the order a load runs: reference data, then the day(s), then the whole-history marts.
    The checks ``not_in_loads`` (freshness, which has its own schedule) are left out of all three. Every step of them
    retries transient failures (``TRANSIENT_RETRY``), also an asset whose own decorator does not say so."""
    def keys(partitioned: bool, marts: bool) -> list[dg.AssetKey]:
        return [key for a in assets for key in a.keys
                if (a.partitions_def is not None) == partitioned
                and (a.group_names_by_key.get(key) == marts_group) == marts]

    daily = [k for a in assets if a.partitions_def is not None for k in a.keys]
    excluded = dg.AssetSelection.checks(*not_in_loads)

    def select(keys: list[dg.AssetKey]) -> dg.AssetSelection:
        return dg.AssetSelection.assets(*keys) - excluded

    return [
        dg.define_asset_job(REFERENCE_JOB, selection=select(keys(False, False)), op_retry_policy=TRANSIENT_RETRY,
                            description="Stores, catalog, customers, contacts and the dimensions built from them"),
        dg.define_asset_job(DAILY_JOB, selection=select(daily), partitions_def=daily_partitions,
                            op_retry_policy=TRANSIENT_RETRY,
                            description="Everything dated: POS files, orders, returns, the facts and marts of a day"),
        dg.define_asset_job(MARTS_JOB, selection=select(keys(False, True)), op_retry_policy=TRANSIENT_RETRY,
                            description="Marts over the whole history (products by week, customer 360), rebuilt "
                                        "after the days are loaded"),
    ]
