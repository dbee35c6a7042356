output "queue_url" {
  description = "URL of the queue the Dagster sensor polls."
  value       = aws_sqs_queue.events.id
}

output "queue_arn" {
  description = "ARN of the queue the Dagster sensor polls."
  value       = aws_sqs_queue.events.arn
}

output "queue_name" {
  description = "Name of the queue (CloudWatch dimension)."
  value       = aws_sqs_queue.events.name
}

output "dlq_name" {
  description = "Name of the dead-letter queue (CloudWatch dimension)."
  value       = aws_sqs_queue.events_dlq.name
}
