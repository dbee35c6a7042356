output "glue_database_name" {
  description = "Name of the Glue database of the lake."
  value       = aws_glue_catalog_database.lake.name
}

output "workgroup_name" {
  description = "Name of the Redshift Serverless workgroup."
  value       = aws_redshiftserverless_workgroup.bi.workgroup_name
}
