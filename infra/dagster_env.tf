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
  }

  dagster_env_outputs = {
    LAKEHOUSE_DEPLOYMENT                      = "lakehouse_deployment"
    LAKEHOUSE_ROOT                            = "lakehouse_root_uri"
    LAKEHOUSE_ROOT_BRONZE                     = "bronze_root_uri"
    LAKEHOUSE_ROOT_SILVER                     = "silver_root_uri"
    LAKEHOUSE_ROOT_GOLD                       = "gold_root_uri"
    LAKEHOUSE_LANDING                         = "landing_uri"
    LAKEHOUSE_CATALOG                         = "catalog_name"
    AWS_REGION                                = "aws_region"
    AWS_ROLE_ARN                              = "dagster_role_arn"
    LAKEHOUSE_EVENTS_QUEUE_URL                = "events_queue_url"
    LAKEHOUSE_KINESIS_STREAM                  = "kinesis_stream_name"
    DATABRICKS_HOST                           = "databricks_host"
    LAKEHOUSE_DATABRICKS_CLUSTER_POLICY_ID    = "cluster_policy_id"
    LAKEHOUSE_DATABRICKS_INSTANCE_PROFILE_ARN = "instance_profile_arn"
    LAKEHOUSE_GLUE_DATABASE                   = "glue_database_name"
    LAKEHOUSE_WAREHOUSE_WORKGROUP             = "warehouse_workgroup_name"
    LAKEHOUSE_WAREHOUSE_DATABASE              = "warehouse_database_name"
  }

  dagster_secret_env_outputs = {
    LAKEHOUSE_SPARK_REMOTE = "spark_remote_secret_arn"
    DATABRICKS_TOKEN       = "databricks_token_secret_arn"
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
