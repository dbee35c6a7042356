variable "name_prefix" {
  description = "Prefix of every resource name, e.g. \"lakehouse-prod\"."
  type        = string
}

variable "kms_key_arn" {
  description = "CMK that encrypts the alarm topic."
  type        = string
}

variable "alarm_email_addresses" {
  description = "E-mail addresses subscribed to the alarm topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "events_queue_name" {
  description = "Queue of landing events."
  type        = string
}

variable "events_dlq_name" {
  description = "Dead-letter queue of landing events."
  type        = string
}

variable "kinesis_stream_name" {
  description = "Stream of events."
  type        = string
}

variable "dms_replication_instance_id" {
  description = "DMS replication instance identifier."
  type        = string
}

variable "dms_replication_task_arn" {
  description = "ARN of the DMS replication task."
  type        = string
}

variable "dms_replication_task_id" {
  description = "Identifier of the DMS replication task (for the event subscription)."
  type        = string
}

variable "queue_oldest_message_age_threshold_seconds" {
  description = "Alarm when the oldest unconsumed landing event is older than this (the sensor is stuck)."
  type        = number
  default     = 900
}

variable "kinesis_iterator_age_threshold_ms" {
  description = "Alarm when Kinesis consumers lag behind by more than this many milliseconds."
  type        = number
  default     = 600000
}

variable "kinesis_unread_window_seconds" {
  description = "Alarm when no read of the Kinesis stream succeeds within a window this long (a multiple of 60)."
  type        = number
  default     = 1800

  validation {
    condition     = var.kinesis_unread_window_seconds >= 300 && var.kinesis_unread_window_seconds % 60 == 0
    error_message = "kinesis_unread_window_seconds must be a multiple of 60, at least 300."
  }
}

variable "dms_cdc_latency_threshold_seconds" {
  description = "Alarm when DMS applies changes to the landing bucket later than this after the source commit."
  type        = number
  default     = 900
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the materialisation metrics the Dagster deployment publishes (LAKEHOUSE_METRICS_NAMESPACE)."
  type        = string
}

variable "freshness_lag_threshold_seconds" {
  description = "Alarm when a table is materialised this long after its previous materialisation (the tables' freshness policy fails after 50 hours)."
  type        = number
  default     = 180000
}

variable "quiet_days_threshold" {
  description = "Alarm when no table was materialised for this many days."
  type        = number
  default     = 2
}

variable "expectation_failure_ratio_threshold" {
  description = "Alarm when an expectation fails for more than this share of a table's rows (0 to 1)."
  type        = number
  default     = 0.05
}

variable "materialisation_duration_threshold_seconds" {
  description = "Alarm when a table's unit runs longer than this."
  type        = number
  default     = 7200
}
