# Customer-managed KMS keys. Two keys keep the blast radius small:
# - "lake" encrypts the lake buckets (landing, bronze, silver, gold) and their access logs;
# - "platform" encrypts everything around them: SQS, SNS, Kinesis, DMS, Redshift, Secrets Manager.
# Both rotate yearly. Principals of this account get access through their IAM policies
# (the root statement delegates to IAM); AWS services that write on their own behalf
# (S3 log delivery, EventBridge, CloudWatch alarms) are allowed explicitly, scoped to this account.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
}

data "aws_iam_policy_document" "lake_key" {
  #checkov:skip=CKV_AWS_109:Key policy, not an identity policy: Resource "*" means this key only, and the root statement is AWS's default key policy, which hands access control to IAM policies of this account.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key; writes are granted to this account's IAM (delegation) and to AWS services scoped by aws:SourceAccount.
  #checkov:skip=CKV_AWS_356:Key policy: a key policy's Resource can only be "*" (the key it is attached to).
  statement {
    sid       = "DelegateToIamPoliciesOfThisAccount"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
  }

  statement {
    sid       = "S3ServerAccessLogDelivery"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "platform_key" {
  #checkov:skip=CKV_AWS_109:Key policy, not an identity policy: Resource "*" means this key only, and the root statement is AWS's default key policy, which hands access control to IAM policies of this account.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key; writes are granted to this account's IAM (delegation) and to AWS services scoped by aws:SourceAccount.
  #checkov:skip=CKV_AWS_356:Key policy: a key policy's Resource can only be "*" (the key it is attached to).
  statement {
    sid       = "DelegateToIamPoliciesOfThisAccount"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
  }

  statement {
    sid       = "AwsServicesPublishingToEncryptedQueuesAndTopics"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com", "cloudwatch.amazonaws.com", "dms.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_kms_key" "lake" {
  description             = "${var.name_prefix}: lake buckets and their access logs"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.deletion_window_days
  policy                  = data.aws_iam_policy_document.lake_key.json
}

resource "aws_kms_alias" "lake" {
  name          = "alias/${var.name_prefix}-lake"
  target_key_id = aws_kms_key.lake.key_id
}

resource "aws_kms_key" "platform" {
  description             = "${var.name_prefix}: queues, topics, streams, DMS, Redshift and secrets"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.deletion_window_days
  policy                  = data.aws_iam_policy_document.platform_key.json
}

resource "aws_kms_alias" "platform" {
  name          = "alias/${var.name_prefix}-platform"
  target_key_id = aws_kms_key.platform.key_id
}
