output "bucket_names" {
  description = "Bucket name per zone (landing, bronze, silver, gold)."
  value       = { for zone, bucket in aws_s3_bucket.zone : zone => bucket.id }
}

output "bucket_arns" {
  description = "Bucket ARN per zone (landing, bronze, silver, gold)."
  value       = { for zone, bucket in aws_s3_bucket.zone : zone => bucket.arn }
}
