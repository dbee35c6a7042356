# AWS DMS: full load then CDC of the sales schema into the landing bucket as CSV, in the layout the
# ingestion reads: dms/<schema>/<table>/LOAD*.csv and dms/<schema>/<table>/<timestamp>.csv, with a
# header row, the Op column (I/U/D) on CDC rows only, and dms_commit_ts as the sequence column.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

# --- Account-wide service roles that DMS looks up by name ---------------------------------------

data "aws_iam_policy_document" "dms_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["dms.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "dms_vpc" {
  count = var.create_dms_account_roles ? 1 : 0

  name               = "dms-vpc-role"
  assume_role_policy = data.aws_iam_policy_document.dms_assume.json
}

resource "aws_iam_role_policy_attachment" "dms_vpc" {
  count = var.create_dms_account_roles ? 1 : 0

  role       = aws_iam_role.dms_vpc[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonDMSVPCManagementRole"
}

resource "aws_iam_role" "dms_cloudwatch_logs" {
  count = var.create_dms_account_roles ? 1 : 0

  name               = "dms-cloudwatch-logs-role"
  assume_role_policy = data.aws_iam_policy_document.dms_assume.json
}

resource "aws_iam_role_policy_attachment" "dms_cloudwatch_logs" {
  count = var.create_dms_account_roles ? 1 : 0

  role       = aws_iam_role.dms_cloudwatch_logs[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonDMSCloudWatchLogsRole"
}

# --- Network ----------------------------------------------------------------------------------

resource "aws_dms_replication_subnet_group" "this" {
  replication_subnet_group_id          = "${var.name_prefix}-dms"
  replication_subnet_group_description = "Private subnets of the ${var.name_prefix} DMS replication instance"
  subnet_ids                           = var.private_subnet_ids

  depends_on = [aws_iam_role_policy_attachment.dms_vpc]
}

resource "aws_security_group" "replication_instance" {
  name        = "${var.name_prefix}-dms"
  description = "DMS replication instance: no inbound; outbound to the source database and HTTPS (S3, KMS, Secrets Manager)"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "to_source_database" {
  for_each = toset(var.source_endpoint.cidr_blocks)

  security_group_id = aws_security_group.replication_instance.id
  description       = "Source database"
  ip_protocol       = "tcp"
  from_port         = var.source_endpoint.port
  to_port           = var.source_endpoint.port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.replication_instance.id
  description       = "HTTPS to AWS APIs (S3, KMS, Secrets Manager) through VPC endpoints or NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# --- Replication instance ---------------------------------------------------------------------

resource "aws_dms_replication_instance" "this" {
  replication_instance_id     = "${var.name_prefix}-dms"
  replication_instance_class  = var.replication_instance_class
  allocated_storage           = var.allocated_storage_gb
  multi_az                    = var.multi_az
  publicly_accessible         = false
  kms_key_arn                 = var.platform_kms_key_arn
  replication_subnet_group_id = aws_dms_replication_subnet_group.this.id
  vpc_security_group_ids      = [aws_security_group.replication_instance.id]
  auto_minor_version_upgrade  = true
  apply_immediately           = false
}

# --- Source endpoint: credentials from Secrets Manager ----------------------------------------

data "aws_iam_policy_document" "dms_regional_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["dms.${data.aws_region.current.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "source_secret_access" {
  name               = "${var.name_prefix}-dms-source-secret"
  assume_role_policy = data.aws_iam_policy_document.dms_regional_assume.json
}

data "aws_iam_policy_document" "source_secret_access" {
  statement {
    sid       = "ReadTheSourceCredentials"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.source_endpoint.secret_arn]
  }

  dynamic "statement" {
    for_each = var.source_endpoint.secret_kms_key_arn == null ? [] : [var.source_endpoint.secret_kms_key_arn]

    content {
      sid       = "DecryptTheSourceCredentials"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${data.aws_region.current.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "source_secret_access" {
  name   = "read-source-secret"
  role   = aws_iam_role.source_secret_access.id
  policy = data.aws_iam_policy_document.source_secret_access.json
}

# DMS connects with the host, port and credentials stored in the secret; server_name and port are
# given too (and must match the secret) because Terraform reads them back from DMS.
resource "aws_dms_endpoint" "source" {
  endpoint_id                     = "${var.name_prefix}-source"
  endpoint_type                   = "source"
  engine_name                     = var.source_endpoint.engine_name
  server_name                     = var.source_endpoint.server_name
  port                            = var.source_endpoint.port
  database_name                   = var.source_endpoint.database_name
  ssl_mode                        = var.source_endpoint.ssl_mode
  secrets_manager_arn             = var.source_endpoint.secret_arn
  secrets_manager_access_role_arn = aws_iam_role.source_secret_access.arn
  kms_key_arn                     = var.platform_kms_key_arn

  depends_on = [aws_iam_role_policy.source_secret_access]
}

# --- Target endpoint: CSV files in the landing bucket -----------------------------------------

resource "aws_iam_role" "s3_target" {
  name               = "${var.name_prefix}-dms-s3-target"
  assume_role_policy = data.aws_iam_policy_document.dms_assume.json
}

data "aws_iam_policy_document" "s3_target" {
  statement {
    sid       = "WriteUnderTheDmsFolder"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:PutObjectTagging"]
    resources = ["${var.landing_bucket_arn}/dms/*"]
  }

  statement {
    sid       = "ListTheDmsFolder"
    actions   = ["s3:ListBucket"]
    resources = [var.landing_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["dms/*"]
    }
  }

  statement {
    sid       = "EncryptWithTheLakeKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.lake_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "s3_target" {
  name   = "write-landing-dms-folder"
  role   = aws_iam_role.s3_target.id
  policy = data.aws_iam_policy_document.s3_target.json
}

resource "aws_dms_s3_endpoint" "landing" {
  endpoint_id             = "${var.name_prefix}-landing"
  endpoint_type           = "target"
  bucket_name             = var.landing_bucket_name
  bucket_folder           = "dms"
  service_access_role_arn = aws_iam_role.s3_target.arn
  expected_bucket_owner   = data.aws_caller_identity.current.account_id
  kms_key_arn             = var.platform_kms_key_arn

  # The format the ingestion expects (see DESIGN.md, "AWS DMS to S3").
  data_format              = "csv"
  csv_delimiter            = ","
  add_column_name          = true
  include_op_for_full_load = false
  timestamp_column_name    = "dms_commit_ts"
  date_partition_enabled   = false
  compression_type         = "NONE"
  cdc_inserts_only         = false
  cdc_inserts_and_updates  = false

  encryption_mode                   = "SSE_KMS"
  server_side_encryption_kms_key_id = var.lake_kms_key_arn

  depends_on = [aws_iam_role_policy.s3_target]
}

# --- Replication task -------------------------------------------------------------------------

resource "aws_dms_replication_task" "sales" {
  replication_task_id      = "${var.name_prefix}-${var.source_schema}"
  migration_type           = "full-load-and-cdc"
  replication_instance_arn = aws_dms_replication_instance.this.replication_instance_arn
  source_endpoint_arn      = aws_dms_endpoint.source.endpoint_arn
  target_endpoint_arn      = aws_dms_s3_endpoint.landing.endpoint_arn
  start_replication_task   = false

  # The selected tables, and every row's DMS change-sequence header as its last column
  # (AR_H_CHANGE_SEQ, empty in full-load rows): with dms_commit_ts it orders a key's changes,
  # two changes of one transaction included (lakehouse_dagster/domains/sales/source.py).
  table_mappings = jsonencode({
    rules = concat(
      [
        for index, table in var.source_tables : {
          "rule-type"   = "selection"
          "rule-id"     = tostring(index + 1)
          "rule-name"   = "include-${var.source_schema}-${table}"
          "rule-action" = "include"
          "object-locator" = {
            "schema-name" = var.source_schema
            "table-name"  = table
          }
        }
      ],
      [
        {
          "rule-type"   = "transformation"
          "rule-id"     = tostring(length(var.source_tables) + 1)
          "rule-name"   = "add-change-sequence"
          "rule-target" = "column"
          "rule-action" = "add-column"
          "object-locator" = {
            "schema-name" = var.source_schema
            "table-name"  = "%"
          }
          "value"      = "AR_H_CHANGE_SEQ"
          "expression" = "$AR_H_CHANGE_SEQ"
          "data-type" = {
            "type"   = "string"
            "length" = 50
          }
        }
      ],
    )
  })

  replication_task_settings = jsonencode({
    FullLoadSettings = {
      # Never delete files already in the landing zone: ingestion keeps its own record of them.
      TargetTablePrepMode = "DO_NOTHING"
    }
    Logging = {
      EnableLogging = true
    }
  })

  depends_on = [aws_iam_role_policy_attachment.dms_cloudwatch_logs]
}
