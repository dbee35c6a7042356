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
    # Kinesis records and S3 landing files are read by the unit itself.
    "boto3==1.44.8",
]
# A Spark client, where no Spark is provided. Not for Databricks clusters: their runtime
# ships its own Spark, which a pip-installed pyspark would shadow.
SPARK = ["pyspark[connect]==4.2.0"]
LOCAL = [*SPARK, "pysail==0.7.2"]  # the embedded engine
DAGSTER = [*SPARK, "dagster==1.13.27", "dagster-webserver==1.13.27", "dagster-aws==0.29.27"]
# A local AWS for tests and `make aws-local`: moto's services the project uses, and its HTTP server.
MOTO = ["moto[events,kinesis,s3,sqs]==5.2.5", "flask==3.1.3", "flask-cors==6.0.5"]

setup(
    name="lakehouse_dagster",
    version="0.1.0",
    description="A medallion lakehouse of Delta tables as Dagster assets, on Sail locally and Databricks.",
    packages=find_packages(exclude=["lakehouse_dagster_tests*"]),
    package_data={"lakehouse_dagster": ["quality/*.yaml"]},
    python_requires=">=3.11,<3.13",
    install_requires=CORE,
    extras_require={
        "core": [],  # install_requires: named for the cluster install, `lakehouse_dagster[core]`
        "spark": SPARK,
        "local": LOCAL,
        "dagster": DAGSTER,
        # The production Dagster instance (infra/dagster/dagster.yaml) keeps its state in PostgreSQL.
        "prod": [*DAGSTER, "dagster-postgres==0.29.27"],
        "dev": [*LOCAL, *DAGSTER, *MOTO, "pytest==9.2.0", "ruff==0.17.6", "python-hcl2==8.1.4"],
    },
)
