variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"lakehouse-prod\"."
  type        = string
}

variable "glue_database_name" {
  description = "Glue catalog database of the lake (gold tables exposed to Redshift Spectrum and Athena)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9_]{1,255}$", var.glue_database_name))
    error_message = "glue_database_name must be lowercase letters, digits and underscores."
  }
}

variable "gold_bucket_name" {
  description = "Gold bucket, the location of the Glue database and what Redshift Spectrum reads."
  type        = string
}

variable "gold_bucket_arn" {
  description = "ARN of the gold bucket."
  type        = string
}

variable "lake_kms_key_arn" {
  description = "CMK of the lake buckets (Spectrum decrypts gold objects with it)."
  type        = string
}

variable "platform_kms_key_arn" {
  description = "CMK of the Redshift namespace and of its generated admin secret."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the Redshift Serverless workgroup."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the workgroup (Redshift Serverless needs three AZs)."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 3
    error_message = "Redshift Serverless needs subnets in at least three availability zones."
  }
}

variable "bi_client_cidr_blocks" {
  description = "CIDR blocks of the BI tools allowed to connect to the workgroup on 5439 (none by default)."
  type        = list(string)
  default     = []
}

variable "workgroup_name" {
  description = "Name of the Redshift Serverless workgroup that serves BI."
  type        = string
}

variable "base_capacity_rpu" {
  description = "Base capacity of the workgroup in RPUs (8-512, steps of 8)."
  type        = number
  default     = 8
}

variable "max_capacity_rpu" {
  description = "Cap on the RPUs the workgroup may scale to (cost guard)."
  type        = number
  default     = 32
}
