# The lake buckets (one per zone) and the bucket that receives their server access logs.
# Every bucket: versioning, SSE-KMS with the customer-managed key (bucket keys on), public access
# blocked, owner-enforced object ownership (no ACLs), a TLS-only bucket policy and lifecycle rules.
# Zone buckets also log every request to the access-log bucket.

data "aws_caller_identity" "current" {}

locals {
  zones = toset(["landing", "bronze", "silver", "gold"])
}

resource "aws_s3_bucket" "zone" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery decision with its own cost; versioning plus noncurrent-version retention covers accidental deletes. Add a replica region per environment if required.
  #checkov:skip=CKV2_AWS_62:Only the landing bucket triggers processing (EventBridge notifications, below); the medallion zones are written by the pipeline itself, which already knows what it wrote.
  for_each = local.zones

  bucket        = "${var.bucket_name_prefix}-${each.key}"
  force_destroy = false

  tags = {
    "lakehouse:zone" = each.key
  }
}

resource "aws_s3_bucket_versioning" "zone" {
  for_each = local.zones

  bucket = aws_s3_bucket.zone[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "zone" {
  for_each = local.zones

  bucket = aws_s3_bucket.zone[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "zone" {
  for_each = local.zones

  bucket                  = aws_s3_bucket.zone[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "zone" {
  for_each = local.zones

  bucket = aws_s3_bucket.zone[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "zone" {
  for_each = local.zones

  bucket = aws_s3_bucket.zone[each.key].id

  rule {
    id     = "${each.key}-tiering-and-cleanup"
    status = "Enabled"

    filter {}

    transition {
      days          = var.zone_lifecycle[each.key].transition_days
      storage_class = var.zone_lifecycle[each.key].storage_class
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }

  rule {
    id     = "${each.key}-expired-delete-markers"
    status = "Enabled"

    filter {}

    expiration {
      expired_object_delete_marker = true
    }
  }

  depends_on = [aws_s3_bucket_versioning.zone]
}

resource "aws_s3_bucket_logging" "zone" {
  for_each = local.zones

  bucket        = aws_s3_bucket.zone[each.key].id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "${each.key}/"
}

data "aws_iam_policy_document" "zone_bucket" {
  for_each = local.zones

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.zone[each.key].arn, "${aws_s3_bucket.zone[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "zone" {
  for_each = local.zones

  bucket = aws_s3_bucket.zone[each.key].id
  policy = data.aws_iam_policy_document.zone_bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.zone]
}

# Object-level events of the landing bucket go to EventBridge, where a rule forwards
# "Object Created" under the landing prefixes to the ingestion queue (module "events").
resource "aws_s3_bucket_notification" "landing" {
  bucket      = aws_s3_bucket.zone["landing"].id
  eventbridge = true
}

# ---------------------------------------------------------------------------------------------
# Access-log bucket: hardened like the zones. It does not log its own requests: S3 would write
# a log object for every log object it delivers.
# ---------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_144:Cross-region replication of access logs is a disaster-recovery decision made per environment; versioning protects against accidental deletes.
  #checkov:skip=CKV2_AWS_62:Access logs are read on demand (Athena, audits); nothing reacts to new log objects.
  bucket        = "${var.bucket_name_prefix}-access-logs"
  force_destroy = false
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "access-logs-retention"
    status = "Enabled"

    filter {}

    transition {
      days          = 30
      storage_class = "STANDARD_IA"
    }

    expiration {
      days = var.access_log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "S3ServerAccessLogDeliveryFromTheZoneBuckets"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/*"]

    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [for bucket in aws_s3_bucket.zone : bucket.arn]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}
