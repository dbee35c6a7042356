from setuptools import find_packages, setup

# Exact pins: an unpinned install resolves the Dagster integration libraries to their 2021
# releases. Upgrade dagster and its libraries together, and
# pysail with pyspark. constraints.txt pins everything they pull in.
#
# The package splits into what a unit of work needs (it runs on a cluster too) and what
# orchestrating it needs:
CORE = [  # a unit of work, wherever it runs; no Dagster but the dependency-free dagster-pipes
    "pyarrow==26.0.1",
    "pandas==2.3.3",
    "deltalake==1.6.6",
    "PyYAML==6.0.4",
    "dagster-pipes==1.13.27",
    # S3 listing with ETags, Kinesis records (read by the unit itself); SQS, Glue, the Redshift Data API.
    "boto3==1.44.8",
]
# A Spark client, where no Spark is provided. Not for Databricks clusters: their runtime
# ships its own Spark, which a pip-installed pyspark would shadow.
SPARK = ["pyspark[connect]==4.2.0"]
# Machine learning on gold (the churn model): scikit-learn, and MLflow's client with what its local
# SQLite tracking store and model registry need (SQLAlchemy, alembic) and skops, mlflow.sklearn's
# model format. mlflow-skinny, not mlflow: mlflow 3.17 caps pyarrow below 26 (the UI of
# `make mlflow-ui` runs from its own environment, .venv-mlflow). Databricks ML runtimes ship both.
ML = [
    "mlflow-skinny==3.17.2",
    "scikit-learn==1.9.1",
    "skops==0.16.0",
    "SQLAlchemy==2.1.9",
    "alembic==1.20.1",
]
LOCAL = [*SPARK, "pysail==0.7.2", *ML]  # the embedded engine, and the units' ML libraries
# Open-source Spark with Delta (EMR, Kubernetes, self-hosted): delta-spark 4.4.1 caps pyspark at 4.2.0.
CLASSIC = [*SPARK, "delta-spark==4.4.1"]
# The orchestrating process also serves gold: a PostgreSQL warehouse locally (psycopg), Redshift
# Serverless through the Redshift Data API and the Glue catalog in production (boto3, in the core).
WAREHOUSE = ["psycopg[binary]==3.3.9"]
DAGSTER = [
    *SPARK,
    *ML,
    *WAREHOUSE,
    "dagster==1.13.27",
    "dagster-webserver==1.13.27",
    "dagster-pyspark==0.29.27",
    "dagster-aws==0.29.27",
    # The Databricks runner (Pipes clients, the workspace SDK); dagster-databricks needs databricks-sdk<0.61.
    "dagster-databricks==0.29.27",
    "databricks-sdk==0.60.0",
    # Optional Slack alerts, besides SNS (production) and the local alerts file.
    "dagster-slack==0.29.27",
]
# The BI dashboard over the warehouse (`make dashboard`).
DASHBOARD = ["streamlit==1.67.0", "psycopg[binary]==3.3.9"]
# Test-only: a moto server on loopback for AWS (the services the project uses), Playwright to
# drive Debian's Chromium.
TEST = [
    "pytest==9.2.0",
    "pytest-xdist==3.8.0",  # `make test` runs the suite on two workers
    "moto[server,events,glue,kinesis,s3,sqs]==5.2.5",
    "flask==3.1.3",
    "flask-cors==6.0.5",
    "playwright==1.65.2",
]
# The benchmarks' hand-written reference builds (benchmarks/reference) and the profiler.
BENCH = ["polars==2.1.0", "py-spy==0.4.3"]

setup(
    name="lakehouse_dagster",
    version="0.1.0",
    description="A medallion lakehouse of Delta tables as Dagster assets, on Sail locally and Databricks.",
    packages=find_packages(exclude=["lakehouse_dagster_tests*"]),
    package_data={"lakehouse_dagster": ["quality/*.yaml"]},
    python_requires=">=3.11,<3.13",
    install_requires=CORE,
    # The unit of work on a Databricks cluster, through Dagster Pipes (the python_wheel_task's entry point).
    entry_points={"console_scripts": ["lakehouse-pipes-unit = lakehouse_dagster.units.pipes_entry:main"]},
    extras_require={
        "core": [],  # install_requires: named for the cluster install, `lakehouse_dagster[core]`
        "spark": SPARK,
        "local": LOCAL,
        "classic": CLASSIC,
        "dagster": DAGSTER,
        "ml": ML,
        # The production Dagster instance (infra/dagster/dagster.yaml) keeps its state in PostgreSQL.
        "prod": [*DAGSTER, "dagster-postgres==0.29.27"],
        "dashboard": DASHBOARD,
        "bench": BENCH,
        "dev": [*LOCAL, *CLASSIC, *DAGSTER, *DASHBOARD, *TEST, "ruff==0.17.6", "python-hcl2==8.1.4"],
    },
)
