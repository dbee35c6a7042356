# Alarms on the ingestion paths and on the lakehouse's own metrics, all notifying one encrypted SNS
# topic (which the Dagster alert sensors publish to as well), and a dashboard.
# - events queue: ApproximateAgeOfOldestMessage (the sensor stopped consuming);
# - dead-letter queue: ApproximateNumberOfMessagesVisible > 0 (events that failed repeatedly);
# - Kinesis: GetRecords.IteratorAgeMilliseconds (consumers lag);
# - DMS: task failure events (DMS event subscription) and CDC latency to the target;
# - the materialisation metrics the Dagster deployment publishes in var.metrics_namespace
#   (lakehouse_dagster/monitoring/metrics.py: names, units and dimensions; a test checks that the
#   alarms and the dashboard use only those): a table refreshed too late, an expectation failing
#   too often, a unit running too long, nothing materialised at all.

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

# The iterator age is published only by GetRecords calls: when nothing reads the stream, that alarm
# is silent. The micro-batch sensor reads every shard every interval, new records or not, so a
# window without one successful read means the sensor or its runs stopped.
resource "aws_cloudwatch_metric_alarm" "kinesis_not_read" {
  alarm_name          = "${var.name_prefix}-kinesis-not-read"
  alarm_description   = "No read of the Kinesis stream succeeded for ${var.kinesis_unread_window_seconds}s: the Dagster stream sensor or its runs stopped (the micro-batch sensor reads every interval)."
  namespace           = "AWS/Kinesis"
  metric_name         = "GetRecords.Success"
  dimensions          = { StreamName = var.kinesis_stream_name }
  statistic           = "SampleCount"
  period              = var.kinesis_unread_window_seconds
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
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

# The lakehouse's metrics. Each is published per table (dimension Table; Table and Expectation for
# failure ratios) and rolled up over all tables (no dimension): the alarms watch the roll-ups, the
# dashboard shows both.

resource "aws_cloudwatch_metric_alarm" "table_freshness_lag" {
  alarm_name          = "${var.name_prefix}-table-freshness-lag"
  alarm_description   = "A table was materialised more than ${var.freshness_lag_threshold_seconds}s after its previous materialisation: the Dagster metric FreshnessLag (per table: dimension Table)."
  namespace           = var.metrics_namespace
  metric_name         = "FreshnessLag"
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.freshness_lag_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "no_materialisations" {
  alarm_name          = "${var.name_prefix}-no-materialisations"
  alarm_description   = "No table was materialised for ${var.quiet_days_threshold} day(s): the schedules or the Dagster deployment stopped (RowsWritten is published after every materialisation)."
  namespace           = var.metrics_namespace
  metric_name         = "RowsWritten"
  statistic           = "SampleCount"
  period              = 86400
  evaluation_periods  = var.quiet_days_threshold
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "expectation_failure_ratio" {
  alarm_name          = "${var.name_prefix}-expectation-failure-ratio"
  alarm_description   = "An expectation failed for more than ${var.expectation_failure_ratio_threshold * 100}% of a table's rows (ExpectationFailureRatio; per table and expectation: dimensions Table, Expectation)."
  namespace           = var.metrics_namespace
  metric_name         = "ExpectationFailureRatio"
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.expectation_failure_ratio_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "materialisation_duration" {
  alarm_name          = "${var.name_prefix}-materialisation-duration"
  alarm_description   = "A table's unit ran longer than ${var.materialisation_duration_threshold_seconds}s (MaterializationDuration, per table: dimension Table)."
  namespace           = var.metrics_namespace
  metric_name         = "MaterializationDuration"
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.materialisation_duration_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
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
          title = "Ingestion and lakehouse alarms"
          alarms = [
            aws_cloudwatch_metric_alarm.events_queue_oldest_message.arn,
            aws_cloudwatch_metric_alarm.events_dlq_depth.arn,
            aws_cloudwatch_metric_alarm.kinesis_iterator_age.arn,
            aws_cloudwatch_metric_alarm.dms_cdc_latency.arn,
            aws_cloudwatch_metric_alarm.table_freshness_lag.arn,
            aws_cloudwatch_metric_alarm.no_materialisations.arn,
            aws_cloudwatch_metric_alarm.expectation_failure_ratio.arn,
            aws_cloudwatch_metric_alarm.materialisation_duration.arn,
          ]
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 12
        width  = 12
        height = 6
        properties = {
          title  = "Rows written and quarantined per day, all tables"
          region = data.aws_region.current.region
          stat   = "Sum"
          period = 86400
          metrics = [
            [var.metrics_namespace, "RowsWritten", { label = "rows written" }],
            [var.metrics_namespace, "RowsQuarantined", { label = "rows quarantined", yAxis = "right" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 12
        y      = 12
        width  = 12
        height = 6
        properties = {
          title  = "Rows written per table and day"
          region = data.aws_region.current.region
          period = 86400
          metrics = [
            [{ expression = "SEARCH('{${var.metrics_namespace},Table} MetricName=\"RowsWritten\"', 'Sum', 86400)", id = "written", label = "" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 18
        width  = 12
        height = 6
        properties = {
          title  = "Freshness lag (h) and duration (min) per table"
          region = data.aws_region.current.region
          period = 3600
          metrics = [
            [{ expression = "SEARCH('{${var.metrics_namespace},Table} MetricName=\"FreshnessLag\"', 'Maximum', 3600) / 3600", id = "lag", label = "" }],
            [{ expression = "SEARCH('{${var.metrics_namespace},Table} MetricName=\"MaterializationDuration\"', 'Maximum', 3600) / 60", id = "duration", label = "", yAxis = "right" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 12
        y      = 18
        width  = 12
        height = 6
        properties = {
          title  = "Expectation failure ratio per table and expectation"
          region = data.aws_region.current.region
          period = 3600
          metrics = [
            [{ expression = "SEARCH('{${var.metrics_namespace},Table,Expectation} MetricName=\"ExpectationFailureRatio\"', 'Maximum', 3600)", id = "ratio", label = "" }],
            [var.metrics_namespace, "ExpectationFailureRatio", { stat = "Maximum", label = "worst of all", id = "worst" }],
          ]
        }
      },
    ]
  })
}
