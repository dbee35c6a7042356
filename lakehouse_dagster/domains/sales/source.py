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
#: What the source database's columns hold, as DMS delivers them.
COLUMN_DOCS: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": "Sales database customer id (the key).",
        "first_name": "First name.",
        "last_name": "Last name.",
        "email": "E-mail address; PII.",
        "phone": "Phone number; PII.",
        "street": "Street address; PII.",
        "city": "City.",
        "country": "ISO 3166 alpha-2 country code.",
        "created_at": "When the customer was created in the source.",
        "updated_at": "When the customer was last changed in the source.",
    },
    "products": {
        "product_id": "Sales database product id (the key).",
        "sku": "Stock keeping unit: category prefix and number.",
        "name": "Product name.",
        "category": "Product category.",
        "price": "List price in the product's currency.",
        "currency": "ISO 4217 currency of the price.",
        "updated_at": "When the product was last changed in the source.",
    },
    "orders": {
        "order_id": "Sales database order id (the key).",
        "customer_id": "The customer who placed the order.",
        "order_ts": "When the order was placed (UTC).",
        "status": f"One of {', '.join(ORDER_STATUSES)}.",
        "currency": "ISO 4217 currency of the order's amounts.",
        "updated_at": "When the order was last changed in the source.",
    },
    "order_items": {
        "order_id": "The order of the line (the key, with line_number).",
        "line_number": "The line's number within its order.",
        "product_id": "The product ordered.",
        "quantity": "Units ordered.",
        "unit_price": "Price of one unit, in the order's currency.",
        "updated_at": "When the line was last changed in the source.",
    },
}
#: A change to these columns of a customer starts a new version in the customer history.
CUSTOMER_HISTORY_COLUMNS = ("email", "street", "city", "country")
