# One output per wiring value (see dagster_env.tf, which maps each of them to a Dagster variable).

output "lakehouse_deployment" {
  description = "Deployment name the Dagster code selects (LAKEHOUSE_DEPLOYMENT)."
  value       = local.wiring.lakehouse_deployment
}

output "lakehouse_root_uri" {
  description = "Root of the layers without a bucket of their own: quarantine, ops, ml (LAKEHOUSE_ROOT)."
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

output "lakehouse_unit_runner" {
  description = "Where units of work run in production: databricks (LAKEHOUSE_UNIT_RUNNER)."
  value       = local.wiring.lakehouse_unit_runner
}

output "databricks_client_id" {
  description = "OAuth client ID of the Dagster service principal (DATABRICKS_CLIENT_ID); empty with a token."
  value       = local.wiring.databricks_client_id
}

output "databricks_client_secret_secret_arn" {
  description = "Secrets Manager secret holding the OAuth secret of the Dagster service principal (DATABRICKS_CLIENT_SECRET)."
  value       = local.wiring.databricks_client_secret_secret_arn
}

output "databricks_compute" {
  description = "Compute of the units' Databricks runs: job_cluster, serverless or existing_cluster (LAKEHOUSE_DATABRICKS_COMPUTE)."
  value       = local.wiring.databricks_compute
}

output "databricks_artifacts_path" {
  description = "Unity Catalog volume the project's wheel is uploaded to (LAKEHOUSE_DATABRICKS_ARTIFACTS)."
  value       = local.wiring.databricks_artifacts_path
}

output "databricks_pipes_channel" {
  description = "Where Pipes exchanges context and messages with a cluster: volume or dbfs (LAKEHOUSE_DATABRICKS_PIPES_CHANNEL)."
  value       = local.wiring.databricks_pipes_channel
}

output "databricks_pipes_volume_path" {
  description = "Unity Catalog volume of the Pipes channel (LAKEHOUSE_DATABRICKS_VOLUME)."
  value       = local.wiring.databricks_pipes_volume_path
}

output "databricks_spark_version" {
  description = "Databricks Runtime of the Pipes job clusters (LAKEHOUSE_DATABRICKS_SPARK_VERSION)."
  value       = local.wiring.databricks_spark_version
}

output "databricks_node_type" {
  description = "Node type of the Pipes job clusters (LAKEHOUSE_DATABRICKS_NODE_TYPE)."
  value       = local.wiring.databricks_node_type
}

output "databricks_min_workers" {
  description = "Fewest workers of a Pipes job cluster (LAKEHOUSE_DATABRICKS_MIN_WORKERS)."
  value       = local.wiring.databricks_min_workers
}

output "databricks_max_workers" {
  description = "Most workers of a Pipes job cluster (LAKEHOUSE_DATABRICKS_MAX_WORKERS)."
  value       = local.wiring.databricks_max_workers
}

output "databricks_cluster_tags" {
  description = "Custom tags of the Pipes job clusters, as JSON: those the cluster policy fixes (LAKEHOUSE_DATABRICKS_CLUSTER_TAGS)."
  value       = local.wiring.databricks_cluster_tags
}

output "databricks_existing_cluster_id" {
  description = "Cluster of existing_cluster compute; empty otherwise (LAKEHOUSE_DATABRICKS_CLUSTER_ID)."
  value       = local.wiring.databricks_existing_cluster_id
}

output "databricks_serverless_environment" {
  description = "Environment version of serverless compute (LAKEHOUSE_DATABRICKS_SERVERLESS_ENVIRONMENT)."
  value       = local.wiring.databricks_serverless_environment
}

output "alerts_topic_arn" {
  description = "SNS topic of the alarms, which the Dagster alert sensors publish to (LAKEHOUSE_ALERTS_TOPIC_ARN)."
  value       = local.wiring.alerts_topic_arn
}

output "metrics_namespace" {
  description = "CloudWatch namespace of the materialisation metrics (LAKEHOUSE_METRICS_NAMESPACE)."
  value       = local.wiring.metrics_namespace
}

output "dagster_url" {
  description = "Base URL of the Dagster UI, for the run links of alerts (LAKEHOUSE_DAGSTER_URL)."
  value       = local.wiring.dagster_url
}

output "slack_alert_channel" {
  description = "Slack channel of the alerts; empty: none (LAKEHOUSE_SLACK_CHANNEL)."
  value       = local.wiring.slack_alert_channel
}

output "slack_token_secret_arn" {
  description = "Secrets Manager secret holding the Slack bot token of the alerts (LAKEHOUSE_SLACK_TOKEN)."
  value       = local.wiring.slack_token_secret_arn
}
