# Root module of the lakehouse platform on AWS + Databricks.
# dagster_env.tf turns what is built here into the environment of the production Dagster deployment.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  name_prefix = "${var.project}-${var.environment}"
  # Where the Dagster deployment publishes its materialisation metrics, and the alarms look.
  metrics_namespace = "Lakehouse/${var.environment}"

  # The storage-credential role's ARN is known before the role exists: the credential is created
  # first (its external ID goes into the role's trust policy), the role right after.
  unity_catalog_role_name = "${local.name_prefix}-unity-catalog"
  unity_catalog_role_arn  = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/${local.unity_catalog_role_name}"
}

module "encryption" {
  source = "./modules/encryption"

  name_prefix = local.name_prefix
}

module "lake_storage" {
  source = "./modules/lake_storage"

  bucket_name_prefix = var.bucket_name_prefix
  kms_key_arn        = module.encryption.lake_key_arn
  zone_lifecycle     = var.zone_lifecycle
}

module "events" {
  source = "./modules/events"

  name_prefix         = local.name_prefix
  landing_bucket_name = module.lake_storage.bucket_names["landing"]
  landing_prefixes    = var.landing_prefixes
  kms_key_arn         = module.encryption.platform_key_arn
}

module "streaming" {
  source = "./modules/streaming"

  stream_name = var.kinesis_stream_name
  stream_mode = var.kinesis_stream_mode
  shard_count = var.kinesis_shard_count
  kms_key_arn = module.encryption.platform_key_arn
}

module "cdc" {
  source = "./modules/cdc"

  name_prefix          = local.name_prefix
  vpc_id               = var.vpc_id
  private_subnet_ids   = var.private_subnet_ids
  source_endpoint      = var.dms_source
  landing_bucket_name  = module.lake_storage.bucket_names["landing"]
  landing_bucket_arn   = module.lake_storage.bucket_arns["landing"]
  lake_kms_key_arn     = module.encryption.lake_key_arn
  platform_kms_key_arn = module.encryption.platform_key_arn

  create_dms_account_roles = var.create_dms_account_roles
}

module "warehouse" {
  source = "./modules/warehouse"

  name_prefix           = local.name_prefix
  glue_database_name    = var.glue_database_name
  gold_bucket_name      = module.lake_storage.bucket_names["gold"]
  gold_bucket_arn       = module.lake_storage.bucket_arns["gold"]
  lake_kms_key_arn      = module.encryption.lake_key_arn
  platform_kms_key_arn  = module.encryption.platform_key_arn
  vpc_id                = var.vpc_id
  private_subnet_ids    = var.private_subnet_ids
  bi_client_cidr_blocks = var.bi_client_cidr_blocks
  workgroup_name        = var.warehouse_workgroup_name
}

module "iam" {
  source = "./modules/iam"

  name_prefix                    = local.name_prefix
  databricks_account_id          = var.databricks_account_id
  databricks_aws_account_id      = var.databricks_aws_account_id
  unity_catalog_iam_arn          = databricks_storage_credential.lake.aws_iam_role[0].unity_catalog_iam_arn
  unity_catalog_role_name        = local.unity_catalog_role_name
  unity_catalog_external_id      = databricks_storage_credential.lake.aws_iam_role[0].external_id
  vpc_id                         = var.vpc_id
  databricks_security_group_id   = var.databricks_security_group_id
  lake_bucket_arns               = module.lake_storage.bucket_arns
  lake_kms_key_arn               = module.encryption.lake_key_arn
  platform_kms_key_arn           = module.encryption.platform_key_arn
  events_queue_arn               = module.events.queue_arn
  kinesis_stream_arn             = module.streaming.stream_arn
  dagster_trusted_principal_arns = var.dagster_trusted_principal_arns
  glue_database_name             = module.warehouse.glue_database_name
  glue_database_arn              = module.warehouse.glue_database_arn
  warehouse_workgroup_arn        = module.warehouse.workgroup_arn
  alarm_topic_arn                = module.monitoring.alarm_topic_arn
  metrics_namespace              = local.metrics_namespace
}

module "monitoring" {
  source = "./modules/monitoring"

  name_prefix                 = local.name_prefix
  kms_key_arn                 = module.encryption.platform_key_arn
  alarm_email_addresses       = var.alarm_email_addresses
  events_queue_name           = module.events.queue_name
  events_dlq_name             = module.events.dlq_name
  kinesis_stream_name         = module.streaming.stream_name
  dms_replication_instance_id = module.cdc.replication_instance_id
  dms_replication_task_arn    = module.cdc.replication_task_arn
  dms_replication_task_id     = module.cdc.replication_task_id
  metrics_namespace           = local.metrics_namespace
}

# ---------------------------------------------------------------------------------------------
# Databricks
# ---------------------------------------------------------------------------------------------

# Registers the cross-account role with the Databricks account; the workspace's credential
# configuration refers to it by name.
resource "databricks_mws_credentials" "workspace" {
  provider = databricks.account

  credentials_name = "${local.name_prefix}-cross-account"
  role_arn         = module.iam.databricks_cross_account_role_arn
}

# Created before its IAM role (see local.unity_catalog_role_arn), hence skip_validation; the external
# locations, created after the role (depends_on below), are validated.
resource "databricks_storage_credential" "lake" {
  name            = "${local.name_prefix}-lake"
  comment         = "Lake buckets of ${local.name_prefix} (managed by Terraform)"
  skip_validation = true

  aws_iam_role {
    role_arn = local.unity_catalog_role_arn
  }
}

module "databricks_workspace" {
  source = "./modules/databricks_workspace"

  name_prefix               = local.name_prefix
  bucket_names              = module.lake_storage.bucket_names
  lake_kms_key_arn          = module.encryption.lake_key_arn
  storage_credential_name   = databricks_storage_credential.lake.name
  instance_profile_arn      = module.iam.cluster_instance_profile_arn
  instance_profile_role_arn = module.iam.cluster_instance_profile_role_arn
  catalog_name              = var.catalog_name
  catalog_storage_root      = "s3://${module.lake_storage.bucket_names["silver"]}/_lakehouse/_unity_catalog"
  engineers_group           = var.engineers_group
  analysts_group            = var.analysts_group
  cluster_policy            = var.cluster_policy
  pii_email_columns         = var.pii_email_columns
  secret_scope_name         = var.secret_scope_name

  depends_on = [module.iam]
}

# ---------------------------------------------------------------------------------------------
# Deploy-time secrets of the Dagster deployment. Terraform creates the containers only; the values
# are put by whoever owns them (never in state):
#   aws secretsmanager put-secret-value --secret-id <arn> --secret-string '<value>'
# ---------------------------------------------------------------------------------------------

resource "aws_secretsmanager_secret" "spark_remote" {
  #checkov:skip=CKV2_AWS_57:The value is a Spark Connect URL issued outside AWS (Databricks); there is no rotation Lambda that could mint a new one. It is replaced by hand when the endpoint changes.
  name                    = "${local.name_prefix}/dagster/LAKEHOUSE_SPARK_REMOTE"
  description             = "Spark Connect URL (sc://host:port/;token=...) of the production Spark endpoint."
  kms_key_id              = module.encryption.platform_key_arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret" "databricks_token" {
  #checkov:skip=CKV2_AWS_57:A Databricks token (or OAuth secret) is minted by Databricks, not by AWS; rotation happens in Databricks and the new value is put here. A rotation Lambda would need workspace-admin credentials, which is worse.
  name                    = "${local.name_prefix}/dagster/DATABRICKS_TOKEN"
  description             = "Databricks token of the Dagster service principal."
  kms_key_id              = module.encryption.platform_key_arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret" "slack_token" {
  #checkov:skip=CKV2_AWS_57:A Slack bot token is minted by Slack, not by AWS; it is rotated in Slack and the new value is put here.
  name                    = "${local.name_prefix}/dagster/LAKEHOUSE_SLACK_TOKEN"
  description             = "Slack bot token (chat:write) of the Dagster alerts; used only with var.slack_alert_channel."
  kms_key_id              = module.encryption.platform_key_arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret" "databricks_client_secret" {
  #checkov:skip=CKV2_AWS_57:An OAuth secret of a Databricks service principal is minted by Databricks, not by AWS; rotation happens in Databricks and the new value is put here. A rotation Lambda would need workspace-admin credentials, which is worse.
  name                    = "${local.name_prefix}/dagster/DATABRICKS_CLIENT_SECRET"
  description             = "OAuth secret of the Dagster service principal (with DATABRICKS_CLIENT_ID); the preferred credential, instead of DATABRICKS_TOKEN."
  kms_key_id              = module.encryption.platform_key_arn
  recovery_window_in_days = 30
}
