variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"lakehouse-prod\"."
  type        = string
}

variable "databricks_account_id" {
  description = "Databricks account ID: the external ID the Databricks control plane presents when it assumes the cross-account role."
  type        = string
}

variable "databricks_aws_account_id" {
  description = "AWS account of the Databricks control plane, trusted by the cross-account role."
  type        = string
}

variable "unity_catalog_iam_arn" {
  description = "IAM identity of Unity Catalog that assumes the storage-credential role (databricks_storage_credential.aws_iam_role.unity_catalog_iam_arn)."
  type        = string
}

variable "unity_catalog_role_name" {
  description = "Name of the storage-credential role (its ARN is known before it exists, which breaks the credential <-> role cycle)."
  type        = string
}

variable "unity_catalog_external_id" {
  description = "External ID of the Unity Catalog storage credential (databricks_storage_credential.aws_iam_role.external_id)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the Databricks workspace (the cross-account role may only launch instances there)."
  type        = string
}

variable "databricks_security_group_id" {
  description = "Security group of the Databricks workspace's cluster nodes."
  type        = string
}

variable "lake_bucket_arns" {
  description = "Bucket ARN per zone: landing (read-only for Databricks), bronze, silver, gold (read-write)."
  type        = map(string)
}

variable "lake_kms_key_arn" {
  description = "CMK of the lake buckets."
  type        = string
}

variable "platform_kms_key_arn" {
  description = "CMK of the queue and the stream (the Dagster role decrypts messages and records with it)."
  type        = string
}

variable "events_queue_arn" {
  description = "Queue of landing events that the Dagster sensor consumes."
  type        = string
}

variable "kinesis_stream_arn" {
  description = "Stream of events that Dagster ingestion consumes."
  type        = string
}

variable "dagster_trusted_principal_arns" {
  description = "IAM principals of the Dagster deployment's compute (e.g. the ECS task role or EKS pod role) allowed to assume the Dagster role."
  type        = list(string)

  validation {
    condition     = length(var.dagster_trusted_principal_arns) > 0 && alltrue([for arn in var.dagster_trusted_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", arn))])
    error_message = "Give at least one IAM role ARN; account roots and wildcards are not accepted."
  }
}

variable "glue_database_name" {
  description = "Glue database in which Dagster registers the silver and gold tables."
  type        = string
}

variable "glue_database_arn" {
  description = "ARN of that Glue database."
  type        = string
}

variable "warehouse_workgroup_arn" {
  description = "Redshift Serverless workgroup that Dagster loads gold into (Data API, temporary credentials)."
  type        = string
}

variable "warehouse_staging_prefix" {
  description = "Prefix of the gold bucket where Dagster stages the Parquet files that Redshift COPYs (the code's REDSHIFT_STAGING)."
  type        = string
  default     = "_serving_staging"
}

variable "alarm_topic_arn" {
  description = "SNS topic the Dagster alert sensors publish to."
  type        = string
}

variable "metrics_namespace" {
  description = "The only CloudWatch namespace the Dagster deployment may publish metrics to."
  type        = string
}
