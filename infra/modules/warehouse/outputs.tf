output "glue_database_name" {
  description = "Name of the Glue database of the lake."
  value       = aws_glue_catalog_database.lake.name
}

output "workgroup_name" {
  description = "Name of the Redshift Serverless workgroup."
  value       = aws_redshiftserverless_workgroup.bi.workgroup_name
}

output "glue_database_arn" {
  description = "ARN of the Glue database of the lake."
  value       = aws_glue_catalog_database.lake.arn
}

output "workgroup_arn" {
  description = "ARN of the Redshift Serverless workgroup."
  value       = aws_redshiftserverless_workgroup.bi.arn
}

output "database_name" {
  description = "Database of the Redshift Serverless namespace that gold is served to."
  value       = aws_redshiftserverless_namespace.bi.db_name
}
