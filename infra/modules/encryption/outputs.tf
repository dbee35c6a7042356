output "lake_key_arn" {
  description = "ARN of the CMK that encrypts the lake buckets."
  value       = aws_kms_key.lake.arn
}

output "platform_key_arn" {
  description = "ARN of the CMK that encrypts queues, topics, the stream, DMS, Redshift and secrets."
  value       = aws_kms_key.platform.arn
}
