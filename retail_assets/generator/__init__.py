"""The sample company behind ``retail-etl generate``: all three sources, dirty on purpose, plus a manifest.

``generate_company(out, ...)`` writes

- ``out/pos_drop/``: ``stores.csv`` at the root; one sales file (layout ``standard`` or ``legacy``) and one
  ``stock_<STORE>_<YYYYMMDD>.csv`` per open store-day, at varying depths; and the delivery dirt of SPEC 2.5;
- ``out/online_store.db`` and ``out/crm.db``: SQLite databases with the tables of SPEC 3 and 4;
- ``out/manifest.json``: what a correct loader must make of it all, which the tests of the loaders compare to.

Manifest keys (all keys strings, amounts exact 2-decimal strings):

- ``params``: the arguments; ``business_dates``: every date of the period.
- ``pos[date][store]``: the winning sales file of each store-day that has a loadable one: ``file`` (path under
  pos_drop, ``/``-separated; for a re-sent day the newer file, for a file delivered twice the first-received
  copy), ``layout``, ``lines`` (data lines, header excluded, duplicated lines included), ``valid_lines``,
  ``rejected`` (reason -> count, only reasons that occur), ``unknown_sku_lines`` (valid lines whose SKU matches
  no product), ``quantity`` (signed, valid lines), ``net_amount`` (sum of quantity * unit_price
  - sign(quantity) * discount over valid lines), ``return_lines`` (valid lines with a negative quantity).
  Rejection reasons: ``quantity_invalid``, ``price_invalid``, ``discount_invalid``, ``sold_at_invalid``,
  ``payment_method_invalid`` (standard), ``type_invalid`` (legacy), ``duplicate_line`` (the second occurrence
  of a receipt_id + line_no), ``missing_value`` (empty receipt_id or sku). Each bad line breaks one rule only.
- ``pos_missing``: ``[date, store]`` pairs of open store-days with no file at all (neither sales nor stock).
- ``pos_inventory[date][store]``: rows of the stock-count file.
- ``bad_files``: whole files to reject, ``{"file", "reason", "lines"}`` with reason ``no_layout``,
  ``unknown_store`` or ``missing_column``; ``lines`` = lines after the first (header) line. A store-day whose
  only sales file is rejected for ``missing_column`` is absent from ``pos`` (and from ``pos_missing``).
- ``ignored_files`` (``.part`` uploads in progress), ``duplicate_files`` (later copies with the same bytes as a
  counted file), ``superseded_files`` (older versions of a re-sent file; the newer has the newer mtime).
- ``online[date]``: by business date in ``timezone``: ``order_lines`` (items of orders placed that day, any
  status), ``sale_lines`` / ``not_sale_lines`` (items of orders now paid, shipped or delivered / the rest),
  ``returns`` (returns whose ``returned_at`` falls that day), ``quantity`` (sold minus returned units),
  ``net_amount`` (sale lines' quantity * unit_price - discount_amount, minus that day's refund_amount).
- ``crm``: ``contacts``, ``deleted``, ``duplicate_contacts``; ``online_customers``, ``products``, ``orders``.
- ``history``: what changed during the period, each entity at most once (the sources keep only the current row
  and its ``updated_at``): ``products`` (``price_changed``, ``category_moved``) and ``contacts`` (``moved``,
  ``tier``, ``opt_in``, ``phone``: contacts updated in the period; ``signed_up_again``: new contacts of people
  already in the CRM, who pay with the new card from the next day; ``deleted``: deleted in the period).

``generate_company(out, as_of_start=True)`` writes the sources as they stood when the period began instead: the
catalog, contacts and shop accounts before those changes, no orders and no POS files (``stores.csv`` only). Its
manifest has empty day sections, no ``history`` and ``params.as_of_start``. Loading it, then the full company,
is how the warehouse gets the period's history (``retail-etl generate --as-of-start``).
"""

from .company import generate_company
from .pos import REJECTION_REASONS

__all__ = ["REJECTION_REASONS", "generate_company"]
