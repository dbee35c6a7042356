"""Stream ingestion: Kinesis records into a bronze table, one micro-batch at a time, exactly once.

- ``sources``: the declaration (``StreamSource``) and bronze's columns;
- ``kinesis``: the shards, in parent-before-child order, and their records;
- ``checkpoints``: per-shard positions, claimed then committed around the bronze commit;
- ``microbatch``: one micro-batch; ``unit``: the bronze table's unit of work.
"""
