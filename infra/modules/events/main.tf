# S3 "Object Created" events of the landing bucket -> EventBridge rule -> SQS queue (+ DLQ).
# The Dagster sensor polls the queue; run keys deduplicate redeliveries. Both queues are
# encrypted with the platform CMK, and only this rule may send to the queue.

resource "aws_sqs_queue" "events_dlq" {
  name                      = "${var.name_prefix}-landing-events-dlq"
  kms_master_key_id         = var.kms_key_arn
  message_retention_seconds = 1209600
}

resource "aws_sqs_queue" "events" {
  name                       = "${var.name_prefix}-landing-events"
  kms_master_key_id          = var.kms_key_arn
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 20

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.events_dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

# Only the events queue may use the DLQ as its dead-letter target.
resource "aws_sqs_queue_redrive_allow_policy" "events_dlq" {
  queue_url = aws_sqs_queue.events_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.events.arn]
  })
}

resource "aws_cloudwatch_event_rule" "landing_object_created" {
  name        = "${var.name_prefix}-landing-object-created"
  description = "S3 Object Created under the landing prefixes of ${var.landing_bucket_name}"

  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = [var.landing_bucket_name] }
      object = { key = [for prefix in var.landing_prefixes : { prefix = prefix }] }
    }
  })
}

resource "aws_cloudwatch_event_target" "events_queue" {
  rule      = aws_cloudwatch_event_rule.landing_object_created.name
  target_id = "landing-events-queue"
  arn       = aws_sqs_queue.events.arn

  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }

  dead_letter_config {
    arn = aws_sqs_queue.events_dlq.arn
  }
}

data "aws_iam_policy_document" "events_queue" {
  statement {
    sid       = "OnlyTheLandingRuleSends"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.landing_object_created.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "events" {
  queue_url = aws_sqs_queue.events.id
  policy    = data.aws_iam_policy_document.events_queue.json
}

# Events the rule could not deliver to the queue land in the DLQ too (target dead_letter_config).
data "aws_iam_policy_document" "events_dlq" {
  statement {
    sid       = "OnlyTheLandingRuleSendsUndeliverableEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events_dlq.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.landing_object_created.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "events_dlq" {
  queue_url = aws_sqs_queue.events_dlq.id
  policy    = data.aws_iam_policy_document.events_dlq.json
}
