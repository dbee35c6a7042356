variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"lakehouse-prod\"."
  type        = string
}

variable "bucket_names" {
  description = "Bucket name per zone (landing, bronze, silver, gold)."
  type        = map(string)
}

variable "lake_kms_key_arn" {
  description = "CMK of the lake buckets (external locations send it as the SSE-KMS key)."
  type        = string
}

variable "storage_credential_name" {
  description = "Unity Catalog storage credential backed by the lake IAM role."
  type        = string
}

variable "instance_profile_arn" {
  description = "Instance profile of the job clusters (registered in the workspace and fixed by the cluster policy)."
  type        = string
}

variable "instance_profile_role_arn" {
  description = "IAM role behind the instance profile."
  type        = string
}

variable "catalog_name" {
  description = "Unity Catalog catalog of the lakehouse."
  type        = string
}

variable "catalog_storage_root" {
  description = "Managed storage of the catalog (an S3 URI inside one of the lake buckets)."
  type        = string
}

variable "engineers_group" {
  description = "Account group of the data engineers (and of the Dagster service principal): builds and modifies every layer."
  type        = string
}

variable "analysts_group" {
  description = "Account group of the analysts: USE + SELECT on gold only, e-mails masked."
  type        = string
}

variable "cluster_policy" {
  description = "Limits of the job clusters that the Pipes engine submits."
  type = object({
    max_workers        = number
    allowed_node_types = list(string)
    max_dbu_per_hour   = number
    custom_tags        = map(string)
  })

  validation {
    condition     = length(var.cluster_policy.allowed_node_types) > 0 && var.cluster_policy.max_workers > 0
    error_message = "Allow at least one node type and one worker."
  }
}

variable "pii_email_columns" {
  description = "E-mail columns to mask, as \"<schema>.<table>.<column>\" inside the catalog."
  type        = list(string)

  validation {
    condition     = alltrue([for column in var.pii_email_columns : length(split(".", column)) == 3])
    error_message = "Each entry must be <schema>.<table>.<column>."
  }
}

variable "secret_scope_name" {
  description = "Databricks secret scope of the lakehouse jobs."
  type        = string
}
