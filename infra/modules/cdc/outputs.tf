output "replication_task_arn" {
  description = "ARN of the full-load-and-CDC replication task."
  value       = aws_dms_replication_task.sales.replication_task_arn
}

output "replication_task_id" {
  description = "Identifier of the replication task (CloudWatch dimension)."
  value       = aws_dms_replication_task.sales.replication_task_id
}

output "replication_instance_id" {
  description = "Identifier of the replication instance (CloudWatch dimension)."
  value       = aws_dms_replication_instance.this.replication_instance_id
}
