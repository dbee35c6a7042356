output "alarm_topic_arn" {
  description = "The alarm topic: CloudWatch alarms, DMS failures and the Dagster alert sensors publish to it."
  value       = aws_sns_topic.alarms.arn
}
