"""The AWS seam: boto3 clients for S3, SQS and Kinesis (``clients``), as Dagster resources
(``resources``), and a local AWS on moto for demos (``local``)."""
