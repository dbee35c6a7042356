# One output per wiring value (see dagster_env.tf, which maps each of them to a Dagster variable).

output "lakehouse_deployment" {
  description = "Deployment name the Dagster code selects (LAKEHOUSE_DEPLOYMENT)."
  value       = local.wiring.lakehouse_deployment
}

output "lakehouse_root_uri" {
  description = "Root of the layers without a bucket of their own: quarantine, ops (LAKEHOUSE_ROOT)."
  value       = local.wiring.lakehouse_root_uri
}

output "bronze_root_uri" {
  description = "Root of the bronze layer (LAKEHOUSE_ROOT_BRONZE)."
  value       = local.wiring.bronze_root_uri
}

output "silver_root_uri" {
  description = "Root of the silver layer (LAKEHOUSE_ROOT_SILVER)."
  value       = local.wiring.silver_root_uri
}

output "gold_root_uri" {
  description = "Root of the gold layer (LAKEHOUSE_ROOT_GOLD)."
  value       = local.wiring.gold_root_uri
}

output "landing_uri" {
  description = "Landing zone that sources and DMS write to (LAKEHOUSE_LANDING)."
  value       = local.wiring.landing_uri
}

output "catalog_name" {
  description = "Unity Catalog catalog (LAKEHOUSE_CATALOG)."
  value       = local.wiring.catalog_name
}

output "aws_region" {
  description = "AWS region of the platform (AWS_REGION)."
  value       = local.wiring.aws_region
}

output "dagster_role_arn" {
  description = "IAM role the Dagster deployment assumes (AWS_ROLE_ARN)."
  value       = local.wiring.dagster_role_arn
}

output "events_queue_url" {
  description = "SQS queue of landing 'Object Created' events (LAKEHOUSE_EVENTS_QUEUE_URL)."
  value       = local.wiring.events_queue_url
}

output "kinesis_stream_name" {
  description = "Kinesis stream of events (LAKEHOUSE_KINESIS_STREAM)."
  value       = local.wiring.kinesis_stream_name
}

output "databricks_host" {
  description = "Databricks workspace URL (DATABRICKS_HOST)."
  value       = local.wiring.databricks_host
}

output "cluster_policy_id" {
  description = "Cluster policy of the Pipes job clusters (LAKEHOUSE_DATABRICKS_CLUSTER_POLICY_ID)."
  value       = local.wiring.cluster_policy_id
}

output "instance_profile_arn" {
  description = "Instance profile of the Pipes job clusters (LAKEHOUSE_DATABRICKS_INSTANCE_PROFILE_ARN)."
  value       = local.wiring.instance_profile_arn
}

output "glue_database_name" {
  description = "Glue database where silver and gold are registered as Delta tables (LAKEHOUSE_GLUE_DATABASE)."
  value       = local.wiring.glue_database_name
}

output "warehouse_workgroup_name" {
  description = "Redshift Serverless workgroup that gold is served to (LAKEHOUSE_WAREHOUSE_WORKGROUP)."
  value       = local.wiring.warehouse_workgroup_name
}

output "warehouse_database_name" {
  description = "Database of the Redshift Serverless workgroup that gold is served to (LAKEHOUSE_WAREHOUSE_DATABASE)."
  value       = local.wiring.warehouse_database_name
}

output "spark_remote_secret_arn" {
  description = "Secrets Manager secret holding the Spark Connect URL (LAKEHOUSE_SPARK_REMOTE, set at deploy time)."
  value       = local.wiring.spark_remote_secret_arn
}

output "databricks_token_secret_arn" {
  description = "Secrets Manager secret holding the Databricks token of the Dagster service principal (DATABRICKS_TOKEN)."
  value       = local.wiring.databricks_token_secret_arn
}
