# Kinesis data stream of events, encrypted at rest with the platform CMK.
resource "aws_kinesis_stream" "events" {
  name             = var.stream_name
  shard_count      = var.stream_mode == "PROVISIONED" ? var.shard_count : null
  retention_period = var.retention_hours
  encryption_type  = "KMS"
  kms_key_id       = var.kms_key_arn

  shard_level_metrics = ["IncomingRecords", "IteratorAgeMilliseconds"]

  stream_mode_details {
    stream_mode = var.stream_mode
  }
}
