"""The operational ``sales`` database, as AWS DMS replicates it to the landing zone.

Tables land under ``<landing>/dms/sales/<table>/``: full-load files (``LOAD00000001.csv``)
with ``dms_commit_ts``, the columns below, then ``AR_H_CHANGE_SEQ`` (empty), and CDC files with
``Op``, ``dms_commit_ts``, the columns, then ``AR_H_CHANGE_SEQ``.

``dms_commit_ts`` is the commit time (DMS's ``TimestampColumnName``): every change of one
transaction carries it. ``AR_H_CHANGE_SEQ`` is DMS's change-sequence header, added to every row
by a transformation rule: ``YYYYMMDDHHmmSShh`` then a 19-digit change number, strictly increasing
in commit order and within a transaction. Together they order a key's changes.
"""

from __future__ import annotations

SCHEMA = "sales"
DMS_FOLDER = f"dms/{SCHEMA}"
SEQUENCE = "dms_commit_ts"
CHANGE_SEQUENCE = "AR_H_CHANGE_SEQ"
#: What orders a key's changes: the commit time, then the change sequence within it.
SEQUENCE_BY = (SEQUENCE, CHANGE_SEQUENCE)

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "street",
        "city",
        "country",
        "created_at",
        "updated_at",
    ),
    "products": ("product_id", "sku", "name", "category", "price", "currency", "updated_at"),
    "orders": ("order_id", "customer_id", "order_ts", "status", "currency", "updated_at"),
    "order_items": ("order_id", "line_number", "product_id", "quantity", "unit_price", "updated_at"),
}
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "products": ("product_id",),
    "orders": ("order_id",),
    "order_items": ("order_id", "line_number"),
}
TABLES = tuple(TABLE_COLUMNS)
ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled")
CANCELLED = "cancelled"
#: A change to these columns of a customer starts a new version in the customer history.
CUSTOMER_HISTORY_COLUMNS = ("email", "street", "city", "country")
