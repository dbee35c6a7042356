from setuptools import find_packages, setup

# Exact pins: an unpinned install resolves the Dagster integration libraries to their
# 2021 releases (see DESIGN.md §3). Upgrade dagster and its libraries together, and
# pysail with pyspark.
setup(
    name="lakehouse_dagster",
    version="0.1.0",
    description="A medallion lakehouse of Delta tables as Dagster assets, on Sail locally and Databricks.",
    packages=find_packages(exclude=["lakehouse_dagster_tests*"]),
    package_data={"lakehouse_dagster": ["quality/*.yaml"]},
    python_requires=">=3.11,<3.13",
    install_requires=[
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",
        "pyspark[connect]==4.2.0",
        "pysail==0.7.2",
        "deltalake==1.6.6",
        "pyarrow==26.0.1",
        "pandas==2.3.3",
    ],
    extras_require={
        # The production Dagster instance (infra/dagster/dagster.yaml) keeps its state in PostgreSQL.
        "prod": ["dagster-postgres==0.29.27"],
        "dev": [
            "pytest==9.2.0",
            "ruff==0.17.6",
            "python-hcl2==8.1.4",
        ],
    },
)
