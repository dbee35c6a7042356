"""Machine learning on the lake: the MLflow seam, model training and evaluation, score drift.

Free of Dagster but for ``resource.py``; free of the domains (a domain declares its models).
"""
