variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"lakehouse-prod\"."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the replication instance."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two AZs) for the replication instance."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "DMS needs private subnets in at least two availability zones."
  }
}

variable "source_endpoint" {
  description = <<-EOT
    The source database. Credentials are never given here: secret_arn names a Secrets Manager secret
    holding {"username", "password", "host", "port"} (the DMS secret format), which DMS reads through
    a dedicated role. secret_kms_key_arn is the CMK of that secret, or null for the AWS-managed key.
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

  validation {
    condition     = contains(["postgres", "aurora-postgresql", "mysql", "aurora", "mariadb", "sqlserver", "oracle"], var.source_endpoint.engine_name)
    error_message = "engine_name must be a relational engine that supports Secrets Manager credentials."
  }

  validation {
    condition     = var.source_endpoint.ssl_mode != "none"
    error_message = "The source connection must use TLS (ssl_mode require, verify-ca or verify-full)."
  }
}

variable "source_schema" {
  description = "Schema of the replicated tables in the source database."
  type        = string
  default     = "sales"
}

variable "source_tables" {
  description = "Tables of source_schema replicated to the landing bucket (full load, then CDC)."
  type        = list(string)
  default     = ["customers", "products", "orders", "order_items"]
}

variable "landing_bucket_name" {
  description = "Landing bucket that receives the DMS CSV files under dms/."
  type        = string
}

variable "landing_bucket_arn" {
  description = "ARN of the landing bucket."
  type        = string
}

variable "lake_kms_key_arn" {
  description = "CMK of the lake buckets (SSE-KMS of the files DMS writes)."
  type        = string
}

variable "platform_kms_key_arn" {
  description = "CMK of the replication instance storage and of the endpoints' connection settings."
  type        = string
}

variable "replication_instance_class" {
  description = "Class of the DMS replication instance."
  type        = string
  default     = "dms.t3.medium"
}

variable "allocated_storage_gb" {
  description = "Storage of the replication instance (GiB)."
  type        = number
  default     = 50
}

variable "multi_az" {
  description = "Run the replication instance in two AZs (standby for failover)."
  type        = bool
  default     = true
}

variable "create_dms_account_roles" {
  description = "Create the account-wide roles DMS expects (dms-vpc-role, dms-cloudwatch-logs-role). Set false when they already exist in the account."
  type        = bool
  default     = true
}
