"""AUTO CDC: silver tables applied from change data, with the semantics of Delta Live Tables.

- ``spec``: the declaration (keys, sequence, deletes, SCD type, the partitions it touches);
- ``transforms``: pure DataFrame functions from changes to current state or SCD2 history;
- ``apply``: the unit of work that applies a bronze table's new batches with MERGE INTO.
"""
