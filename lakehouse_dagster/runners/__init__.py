"""Where a unit of work runs: the runner seam, one resource chosen by deployment.

- ``InProcessRunner``: in the Dagster step's process, on the run's engine session;
- ``SubprocessRunner``: in a process of its own (``python -m lakehouse_dagster.units``);
- ``DatabricksRunner``: as a Databricks job run, through Dagster Pipes (production).

Each returns the unit's JSON report; ``defs/report.py`` turns it into Dagster events. The
asset body is the same whichever runner the deployment chose.
"""
