"""The tables of this code location: its domains, and the defaults every table falls back to.

The only module that imports the domains. To add a domain, write its package under
``domains/`` and list its ``DOMAIN`` here.
"""

from __future__ import annotations

from datetime import timedelta

from lakehouse_dagster.declarations.table import Registry
from lakehouse_dagster.declarations.timing import Freshness, Job
from lakehouse_dagster.domains.customers.tables import DOMAIN as CUSTOMERS
from lakehouse_dagster.domains.events.tables import DOMAIN as EVENTS
from lakehouse_dagster.domains.ml.tables import DOMAIN as ML
from lakehouse_dagster.domains.sales.tables import DOMAIN as SALES

LAKEHOUSE_JOB = Job(
    "lakehouse_job",
    "Ingest newly landed files, apply changes and rebuild every table that is not partitioned, "
    "bronze to gold.",
    cron="0 5 * * *",
)

REGISTRY = Registry(
    domains=(CUSTOMERS, SALES, EVENTS, ML),
    default_job=LAKEHOUSE_JOB,
    # Tables are rebuilt daily: warn after 26 hours without a materialisation, fail after 50
    # (two missed days).
    default_freshness=Freshness(warn_after=timedelta(hours=26), fail_after=timedelta(hours=50)),
)
