variable "bucket_name_prefix" {
  description = "Globally unique prefix of the bucket names: buckets are <prefix>-landing, -bronze, -silver, -gold and -access-logs."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,40}[a-z0-9]$", var.bucket_name_prefix))
    error_message = "bucket_name_prefix must be 3-42 lowercase letters, digits or hyphens (S3 naming rules)."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key that encrypts every bucket (SSE-KMS)."
  type        = string
}

variable "zone_lifecycle" {
  description = <<-EOT
    Per zone: days after which current objects move to a cheaper storage class, and which class.
    Landing files are read once by ingestion, so STANDARD_IA suits them; Delta tables have unpredictable
    access, so INTELLIGENT_TIERING (no retrieval fee) suits the medallion zones.
  EOT
  type = map(object({
    transition_days = number
    storage_class   = string
  }))
  default = {
    landing = { transition_days = 30, storage_class = "STANDARD_IA" }
    bronze  = { transition_days = 60, storage_class = "INTELLIGENT_TIERING" }
    silver  = { transition_days = 90, storage_class = "INTELLIGENT_TIERING" }
    gold    = { transition_days = 180, storage_class = "INTELLIGENT_TIERING" }
  }
  # Null (the root module's default) keeps this default.
  nullable = false

  validation {
    condition     = toset(keys(var.zone_lifecycle)) == toset(["landing", "bronze", "silver", "gold"])
    error_message = "zone_lifecycle must have exactly the keys landing, bronze, silver and gold."
  }

  validation {
    condition = alltrue([
      for zone in values(var.zone_lifecycle) :
      contains(["STANDARD_IA", "INTELLIGENT_TIERING"], zone.storage_class) && zone.transition_days >= 30
    ])
    error_message = "storage_class must be STANDARD_IA or INTELLIGENT_TIERING, after at least 30 days."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which noncurrent object versions are deleted (Delta time travel relies on the Delta log, not on S3 versions)."
  type        = number
  default     = 30
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which incomplete multipart uploads are aborted."
  type        = number
  default     = 7
}

variable "access_log_retention_days" {
  description = "Days the S3 server access logs are kept."
  type        = number
  default     = 365
}
