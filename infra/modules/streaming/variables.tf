variable "stream_name" {
  description = "Name of the Kinesis data stream of events."
  type        = string
}

variable "stream_mode" {
  description = "ON_DEMAND (pay per throughput, no shard management) or PROVISIONED (fixed shard_count)."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.stream_mode)
    error_message = "stream_mode must be ON_DEMAND or PROVISIONED."
  }
}

variable "shard_count" {
  description = "Number of shards when stream_mode is PROVISIONED (ignored for ON_DEMAND)."
  type        = number
  default     = 2
}

variable "retention_hours" {
  description = "How long records stay readable (24-8760 hours); must exceed the longest ingestion outage you want to survive."
  type        = number
  default     = 72
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key that encrypts the stream."
  type        = string
}
