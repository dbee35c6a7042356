# Wiring: Terraform outputs -> environment of the production Dagster deployment.
#
# This file is the single source of the mapping. lakehouse_dagster/deployment.py declares the
# variables (ENVIRONMENT_VARIABLES); the infra tests check that every variable the code reads in
# prod is produced here, and that nothing here is unknown to the code.
#
# - local.wiring holds the value of every wiring output, by output name (outputs.tf has one
#   output per entry, value = local.wiring.<name>);
# - local.dagster_env_outputs maps plain variables to the output that produces their value;
# - local.dagster_secret_env_outputs maps secret variables to the output holding the ARN of the
#   Secrets Manager secret with their value (the value itself is never a Terraform output).
#
# infra/scripts/render_dagster_env.py turns `terraform output -json` into an env file.

locals {
  wiring = {
    lakehouse_deployment        = "prod"
    lakehouse_root_uri          = "s3://${module.lake_storage.bucket_names["silver"]}/_lakehouse"
    bronze_root_uri             = "s3://${module.lake_storage.bucket_names["bronze"]}"
    silver_root_uri             = "s3://${module.lake_storage.bucket_names["silver"]}"
    gold_root_uri               = "s3://${module.lake_storage.bucket_names["gold"]}"
    landing_uri                 = "s3://${module.lake_storage.bucket_names["landing"]}"
    catalog_name                = module.databricks_workspace.catalog_name
    aws_region                  = var.aws_region
    dagster_role_arn            = module.iam.dagster_role_arn
    events_queue_url            = module.events.queue_url
    kinesis_stream_name         = module.streaming.stream_name
    databricks_host             = var.databricks_host
    cluster_policy_id           = module.databricks_workspace.cluster_policy_id
    instance_profile_arn        = module.databricks_workspace.instance_profile_arn
    glue_database_name          = module.warehouse.glue_database_name
    warehouse_workgroup_name    = module.warehouse.workgroup_name
    warehouse_database_name     = module.warehouse.database_name
    spark_remote_secret_arn     = aws_secretsmanager_secret.spark_remote.arn
    databricks_token_secret_arn = aws_secretsmanager_secret.databricks_token.arn

    # Alerts and metrics.
    alerts_topic_arn       = module.monitoring.alarm_topic_arn
    metrics_namespace      = local.metrics_namespace
    dagster_url            = var.dagster_url
    slack_alert_channel    = var.slack_alert_channel
    slack_token_secret_arn = aws_secretsmanager_secret.slack_token.arn

    # The Databricks runner: every value is a string (the env file's).
    lakehouse_unit_runner               = "databricks"
    databricks_client_id                = var.databricks_client_id
    databricks_client_secret_secret_arn = aws_secretsmanager_secret.databricks_client_secret.arn
    databricks_compute                  = var.databricks_jobs.compute
    databricks_artifacts_path           = module.databricks_workspace.artifacts_volume_path
    databricks_pipes_channel            = var.databricks_jobs.pipes_channel
    databricks_pipes_volume_path        = module.databricks_workspace.pipes_volume_path
    databricks_spark_version            = var.databricks_jobs.spark_version
    databricks_node_type                = coalesce(var.databricks_jobs.node_type, var.cluster_policy.allowed_node_types[0])
    databricks_min_workers              = tostring(var.databricks_jobs.min_workers)
    databricks_max_workers              = tostring(var.databricks_jobs.max_workers)
    databricks_cluster_tags             = jsonencode(module.databricks_workspace.cluster_tags)
    databricks_existing_cluster_id      = var.databricks_jobs.existing_cluster_id
    databricks_serverless_environment   = var.databricks_jobs.serverless_environment
  }

  dagster_env_outputs = {
    LAKEHOUSE_DEPLOYMENT                        = "lakehouse_deployment"
    LAKEHOUSE_ROOT                              = "lakehouse_root_uri"
    LAKEHOUSE_ROOT_BRONZE                       = "bronze_root_uri"
    LAKEHOUSE_ROOT_SILVER                       = "silver_root_uri"
    LAKEHOUSE_ROOT_GOLD                         = "gold_root_uri"
    LAKEHOUSE_LANDING                           = "landing_uri"
    LAKEHOUSE_CATALOG                           = "catalog_name"
    AWS_REGION                                  = "aws_region"
    AWS_ROLE_ARN                                = "dagster_role_arn"
    LAKEHOUSE_EVENTS_QUEUE_URL                  = "events_queue_url"
    LAKEHOUSE_KINESIS_STREAM                    = "kinesis_stream_name"
    DATABRICKS_HOST                             = "databricks_host"
    LAKEHOUSE_DATABRICKS_CLUSTER_POLICY_ID      = "cluster_policy_id"
    LAKEHOUSE_DATABRICKS_INSTANCE_PROFILE_ARN   = "instance_profile_arn"
    LAKEHOUSE_GLUE_DATABASE                     = "glue_database_name"
    LAKEHOUSE_WAREHOUSE_WORKGROUP               = "warehouse_workgroup_name"
    LAKEHOUSE_WAREHOUSE_DATABASE                = "warehouse_database_name"
    LAKEHOUSE_UNIT_RUNNER                       = "lakehouse_unit_runner"
    DATABRICKS_CLIENT_ID                        = "databricks_client_id"
    LAKEHOUSE_DATABRICKS_COMPUTE                = "databricks_compute"
    LAKEHOUSE_DATABRICKS_ARTIFACTS              = "databricks_artifacts_path"
    LAKEHOUSE_DATABRICKS_PIPES_CHANNEL          = "databricks_pipes_channel"
    LAKEHOUSE_DATABRICKS_VOLUME                 = "databricks_pipes_volume_path"
    LAKEHOUSE_DATABRICKS_SPARK_VERSION          = "databricks_spark_version"
    LAKEHOUSE_DATABRICKS_NODE_TYPE              = "databricks_node_type"
    LAKEHOUSE_DATABRICKS_MIN_WORKERS            = "databricks_min_workers"
    LAKEHOUSE_DATABRICKS_MAX_WORKERS            = "databricks_max_workers"
    LAKEHOUSE_DATABRICKS_CLUSTER_TAGS           = "databricks_cluster_tags"
    LAKEHOUSE_DATABRICKS_CLUSTER_ID             = "databricks_existing_cluster_id"
    LAKEHOUSE_DATABRICKS_SERVERLESS_ENVIRONMENT = "databricks_serverless_environment"
    LAKEHOUSE_ALERTS_TOPIC_ARN                  = "alerts_topic_arn"
    LAKEHOUSE_METRICS_NAMESPACE                 = "metrics_namespace"
    LAKEHOUSE_DAGSTER_URL                       = "dagster_url"
    LAKEHOUSE_SLACK_CHANNEL                     = "slack_alert_channel"
  }

  dagster_secret_env_outputs = {
    LAKEHOUSE_SPARK_REMOTE   = "spark_remote_secret_arn"
    DATABRICKS_TOKEN         = "databricks_token_secret_arn"
    DATABRICKS_CLIENT_SECRET = "databricks_client_secret_secret_arn"
    LAKEHOUSE_SLACK_TOKEN    = "slack_token_secret_arn"
  }
}

output "dagster_environment" {
  description = "Plain environment of the production Dagster deployment: variable name -> value."
  value       = { for name, output_name in local.dagster_env_outputs : name => local.wiring[output_name] }
}

output "dagster_secret_environment" {
  description = "Secret variables of the production Dagster deployment: variable name -> ARN of the Secrets Manager secret holding the value."
  value       = { for name, output_name in local.dagster_secret_env_outputs : name => local.wiring[output_name] }
}
