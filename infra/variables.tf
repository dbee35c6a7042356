# ---------------------------------------------------------------------------------------------
# Naming and placement
# ---------------------------------------------------------------------------------------------

variable "project" {
  description = "Project name, first part of every resource name."
  type        = string
  default     = "lakehouse"
}

variable "environment" {
  description = "Environment name (prod, staging, ...), second part of every resource name."
  type        = string
  default     = "prod"
}

variable "aws_region" {
  description = "AWS region of the whole platform (becomes AWS_REGION of the Dagster deployment)."
  type        = string
}

variable "bucket_name_prefix" {
  description = "Globally unique prefix of the S3 bucket names, e.g. \"acme-lakehouse-prod\"."
  type        = string
}

variable "tags" {
  description = "Extra tags on every AWS resource."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Network (existing VPC)
# ---------------------------------------------------------------------------------------------

variable "vpc_id" {
  description = "Existing VPC of the platform (Databricks workspace, DMS, Redshift Serverless)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of that VPC, in at least three availability zones."
  type        = list(string)
}

# ---------------------------------------------------------------------------------------------
# Ingestion
# ---------------------------------------------------------------------------------------------

variable "landing_prefixes" {
  description = "Key prefixes of the landing bucket whose new objects are announced on the events queue: one folder per landing source (<landing>/<folder>/, see lakehouse_dagster.ingest) and dms/ for the CDC files."
  type        = list(string)
  default     = ["customers/", "dms/"]
}

variable "kinesis_stream_name" {
  description = "Name of the Kinesis stream of events (becomes LAKEHOUSE_KINESIS_STREAM)."
  type        = string
  default     = "lakehouse-events"
}

variable "kinesis_stream_mode" {
  description = "ON_DEMAND or PROVISIONED."
  type        = string
  default     = "ON_DEMAND"
}

variable "kinesis_shard_count" {
  description = "Shards when kinesis_stream_mode is PROVISIONED."
  type        = number
  default     = 2
}

variable "dms_source" {
  description = <<-EOT
    Source database of the CDC replication. No credentials here: secret_arn names the Secrets Manager
    secret with the DMS connection details (username, password, host, port); secret_kms_key_arn is its
    CMK (null for the AWS-managed key); cidr_blocks are where the database listens.
  EOT
  type = object({
    engine_name        = string
    server_name        = string
    port               = number
    database_name      = string
    secret_arn         = string
    secret_kms_key_arn = optional(string)
    ssl_mode           = optional(string, "require")
    cidr_blocks        = list(string)
  })
}

variable "create_dms_account_roles" {
  description = "Create the account-wide roles DMS looks up by name (dms-vpc-role, dms-cloudwatch-logs-role); false when the account already has them."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Warehouse
# ---------------------------------------------------------------------------------------------

variable "glue_database_name" {
  description = "Glue database of the lake (becomes LAKEHOUSE_GLUE_DATABASE)."
  type        = string
  default     = "lakehouse"
}

variable "warehouse_workgroup_name" {
  description = "Redshift Serverless workgroup for BI (becomes LAKEHOUSE_WAREHOUSE_WORKGROUP)."
  type        = string
  default     = "lakehouse-bi"
}

variable "bi_client_cidr_blocks" {
  description = "CIDR blocks of BI tools allowed to reach the workgroup (none by default)."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------------

variable "dagster_trusted_principal_arns" {
  description = "IAM roles of the Dagster compute (ECS task role, EKS pod role) allowed to assume the Dagster role."
  type        = list(string)
}

variable "databricks_account_id" {
  description = "Databricks account ID (external ID of the cross-account role; account-level provider)."
  type        = string
}

variable "databricks_aws_account_id" {
  description = "AWS account of the Databricks control plane (commercial AWS)."
  type        = string
  default     = "414351767826"
}

variable "databricks_security_group_id" {
  description = "Security group of the workspace's cluster nodes (the cross-account role may only change this one)."
  type        = string
}

# ---------------------------------------------------------------------------------------------
# Databricks workspace
# ---------------------------------------------------------------------------------------------

variable "databricks_host" {
  description = "URL of the existing Databricks workspace, e.g. https://dbc-1234.cloud.databricks.com (becomes DATABRICKS_HOST)."
  type        = string

  validation {
    condition     = startswith(var.databricks_host, "https://")
    error_message = "databricks_host must be an https:// URL."
  }
}

variable "catalog_name" {
  description = "Unity Catalog catalog of the lakehouse (becomes LAKEHOUSE_CATALOG)."
  type        = string
  default     = "lakehouse"
}

variable "engineers_group" {
  description = "Databricks account group of the data engineers; add the Dagster service principal to it."
  type        = string
  default     = "lakehouse-engineers"
}

variable "analysts_group" {
  description = "Databricks account group of the analysts (USE_SCHEMA and SELECT on gold only; on PII see docs/infrastructure.md)."
  type        = string
  default     = "lakehouse-analysts"
}

variable "cluster_policy" {
  description = "Limits of the job clusters that the Pipes engine submits."
  type = object({
    max_workers        = optional(number, 8)
    allowed_node_types = optional(list(string), ["m6gd.xlarge", "m6gd.2xlarge", "r6gd.xlarge", "r6gd.2xlarge"])
    max_dbu_per_hour   = optional(number, 20)
    custom_tags        = optional(map(string), {})
  })
  default = {}
}

variable "databricks_client_id" {
  description = "OAuth client ID (application ID) of the Dagster service principal (becomes DATABRICKS_CLIENT_ID; its secret goes into the databricks_client_secret secret). Empty when the deployment authenticates with a token."
  type        = string
  default     = ""
}

variable "databricks_jobs" {
  description = "How the Dagster Pipes runner runs each unit on Databricks (the LAKEHOUSE_DATABRICKS_* settings)."
  type = object({
    compute                = optional(string, "job_cluster") # job_cluster, serverless or existing_cluster
    pipes_channel          = optional(string, "volume")      # volume or dbfs (DBFS is off with "Disable legacy features")
    spark_version          = optional(string, "16.4.x-scala2.12")
    node_type              = optional(string) # default: the policy's first allowed node type
    min_workers            = optional(number, 1)
    max_workers            = optional(number, 2)
    existing_cluster_id    = optional(string, "")
    serverless_environment = optional(string, "3")
  })
  default = {}

  validation {
    condition     = contains(["job_cluster", "serverless", "existing_cluster"], var.databricks_jobs.compute)
    error_message = "databricks_jobs.compute must be job_cluster, serverless or existing_cluster."
  }

  validation {
    condition     = contains(["volume", "dbfs"], var.databricks_jobs.pipes_channel) && !(var.databricks_jobs.compute == "serverless" && var.databricks_jobs.pipes_channel == "dbfs")
    error_message = "databricks_jobs.pipes_channel must be volume or dbfs; serverless compute needs volume."
  }

  validation {
    condition     = 1 <= var.databricks_jobs.min_workers && var.databricks_jobs.min_workers <= var.databricks_jobs.max_workers && var.databricks_jobs.max_workers <= var.cluster_policy.max_workers
    error_message = "databricks_jobs needs 1 <= min_workers <= max_workers <= cluster_policy.max_workers."
  }

  validation {
    condition     = var.databricks_jobs.compute != "existing_cluster" || var.databricks_jobs.existing_cluster_id != ""
    error_message = "databricks_jobs.compute = existing_cluster needs existing_cluster_id."
  }
}

variable "pii_email_columns" {
  description = "E-mail columns masked for everyone outside the engineers group, as <schema>.<table>.<column>."
  type        = list(string)
  default     = ["silver.customers.email", "gold.customer_360.email"]
}

variable "secret_scope_name" {
  description = "Databricks secret scope of the lakehouse jobs."
  type        = string
  default     = "lakehouse"
}

# ---------------------------------------------------------------------------------------------
# Monitoring
# ---------------------------------------------------------------------------------------------

variable "alarm_email_addresses" {
  description = "E-mail addresses subscribed to the alarm topic."
  type        = list(string)
  default     = []
}

variable "dagster_url" {
  description = "Base URL of the Dagster UI (https://...): alerts link to their run there."
  type        = string

  validation {
    condition     = can(regex("^https?://", var.dagster_url))
    error_message = "dagster_url must be a URL (https://dagster.example.com)."
  }
}

variable "slack_alert_channel" {
  description = "Slack channel that alerts are also posted to (put the bot token into the slack_token secret); empty: SNS only."
  type        = string
  default     = ""
}

variable "zone_lifecycle" {
  description = <<-EOT
    Per zone (landing, bronze, silver, gold): days after which current objects move to a cheaper storage
    class, and which class (STANDARD_IA or INTELLIGENT_TIERING, after 30 days at least). Null keeps the
    lake storage module's defaults: landing STANDARD_IA after 30 days, the medallion zones
    INTELLIGENT_TIERING after 60, 90 and 180 days.
  EOT
  type = map(object({
    transition_days = number
    storage_class   = string
  }))
  default = null
}
