variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"lakehouse-prod\"."
  type        = string
}

variable "landing_bucket_name" {
  description = "Name of the landing bucket whose \"Object Created\" events feed the queue."
  type        = string
}

variable "landing_prefixes" {
  description = "Key prefixes in the landing bucket that ingestion watches (each ends with \"/\")."
  type        = list(string)

  validation {
    condition     = length(var.landing_prefixes) > 0 && alltrue([for prefix in var.landing_prefixes : endswith(prefix, "/")])
    error_message = "Give at least one landing prefix; each must end with \"/\"."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key that encrypts both queues."
  type        = string
}

variable "max_receive_count" {
  description = "Deliveries of a message before SQS moves it to the dead-letter queue."
  type        = number
  default     = 5
}

variable "visibility_timeout_seconds" {
  description = "How long a received message stays hidden while the sensor processes it."
  type        = number
  default     = 300
}

variable "message_retention_seconds" {
  description = "How long the queue keeps an unconsumed event (the DLQ keeps messages 14 days)."
  type        = number
  default     = 345600
}
