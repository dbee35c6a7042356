# Alarms on the ingestion paths, all notifying one encrypted SNS topic, and a dashboard.
# - events queue: ApproximateAgeOfOldestMessage (the sensor stopped consuming);
# - dead-letter queue: ApproximateNumberOfMessagesVisible > 0 (events that failed repeatedly);
# - Kinesis: GetRecords.IteratorAgeMilliseconds (consumers lag);
# - DMS: task failure events (DMS event subscription) and CDC latency to the target.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

locals {
  # CloudWatch identifies a DMS task by the resource ID at the end of its ARN
  # (arn:aws:dms:<region>:<account>:task:<resource-id>), not by replication_task_id.
  dms_task_resource_id = element(split(":", var.dms_replication_task_arn), 6)
  alarm_actions        = [aws_sns_topic.alarms.arn]
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = var.kms_key_arn
}

data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "AlarmsAndDmsEventsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "dms.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_email_addresses)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_metric_alarm" "events_queue_oldest_message" {
  alarm_name          = "${var.name_prefix}-landing-events-oldest-message-age"
  alarm_description   = "Landing events wait longer than ${var.queue_oldest_message_age_threshold_seconds}s: the Dagster S3 sensor is not consuming the queue."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = var.events_queue_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.queue_oldest_message_age_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "events_dlq_depth" {
  alarm_name          = "${var.name_prefix}-landing-events-dlq-depth"
  alarm_description   = "Landing events reached the dead-letter queue: inspect and redrive them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.events_dlq_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "kinesis_iterator_age" {
  alarm_name          = "${var.name_prefix}-kinesis-iterator-age"
  alarm_description   = "Kinesis consumers lag more than ${var.kinesis_iterator_age_threshold_ms} ms behind the stream; records expire after the retention period."
  namespace           = "AWS/Kinesis"
  metric_name         = "GetRecords.IteratorAgeMilliseconds"
  dimensions          = { StreamName = var.kinesis_stream_name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.kinesis_iterator_age_threshold_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "dms_cdc_latency" {
  alarm_name          = "${var.name_prefix}-dms-cdc-latency-target"
  alarm_description   = "DMS writes changes to the landing bucket more than ${var.dms_cdc_latency_threshold_seconds}s after the source commit."
  namespace           = "AWS/DMS"
  metric_name         = "CDCLatencyTarget"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.dms_cdc_latency_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  dimensions = {
    ReplicationInstanceIdentifier = var.dms_replication_instance_id
    ReplicationTaskIdentifier     = local.dms_task_resource_id
  }
}

# DMS reports a failed task as an event, not as a metric: subscribe the alarm topic to it.
resource "aws_dms_event_subscription" "task_failures" {
  name             = "${var.name_prefix}-dms-task-failures"
  enabled          = true
  source_type      = "replication-task"
  source_ids       = [var.dms_replication_task_id]
  event_categories = ["failure", "state change"]
  sns_topic_arn    = aws_sns_topic.alarms.arn

  depends_on = [aws_sns_topic_policy.alarms]
}

resource "aws_cloudwatch_dashboard" "lakehouse" {
  dashboard_name = "${var.name_prefix}-ingestion"

  dashboard_body = jsonencode({
    widgets = [
      {
        type   = "metric"
        x      = 0
        y      = 0
        width  = 12
        height = 6
        properties = {
          title  = "Landing events queue"
          region = data.aws_region.current.region
          stat   = "Maximum"
          period = 300
          metrics = [
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.events_queue_name],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.events_queue_name, { yAxis = "right" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.events_dlq_name, { yAxis = "right", label = "DLQ depth" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 12
        y      = 0
        width  = 12
        height = 6
        properties = {
          title  = "Kinesis stream"
          region = data.aws_region.current.region
          period = 300
          metrics = [
            ["AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", "StreamName", var.kinesis_stream_name, { stat = "Maximum" }],
            ["AWS/Kinesis", "IncomingRecords", "StreamName", var.kinesis_stream_name, { stat = "Sum", yAxis = "right" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 6
        width  = 12
        height = 6
        properties = {
          title  = "DMS CDC latency (s)"
          region = data.aws_region.current.region
          stat   = "Maximum"
          period = 300
          metrics = [
            ["AWS/DMS", "CDCLatencySource", "ReplicationInstanceIdentifier", var.dms_replication_instance_id, "ReplicationTaskIdentifier", local.dms_task_resource_id],
            ["AWS/DMS", "CDCLatencyTarget", "ReplicationInstanceIdentifier", var.dms_replication_instance_id, "ReplicationTaskIdentifier", local.dms_task_resource_id],
          ]
        }
      },
      {
        type   = "alarm"
        x      = 12
        y      = 6
        width  = 12
        height = 6
        properties = {
          title = "Ingestion alarms"
          alarms = [
            aws_cloudwatch_metric_alarm.events_queue_oldest_message.arn,
            aws_cloudwatch_metric_alarm.events_dlq_depth.arn,
            aws_cloudwatch_metric_alarm.kinesis_iterator_age.arn,
            aws_cloudwatch_metric_alarm.dms_cdc_latency.arn,
          ]
        }
      },
    ]
  })
}
