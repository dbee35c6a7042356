# Warehouse for BI serving: a Glue database describing the gold tables and a Redshift Serverless
# namespace + workgroup that queries them through Spectrum. The admin password is generated and
# kept by Redshift in Secrets Manager (manage_admin_password), never in a variable.

data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

resource "aws_glue_catalog_database" "lake" {
  name         = var.glue_database_name
  description  = "Gold tables of the ${var.name_prefix} lakehouse"
  location_uri = "s3://${var.gold_bucket_name}/"
}

# --- Role Redshift uses to read the Glue catalog and the gold bucket (Spectrum) ----------------

data "aws_iam_policy_document" "redshift_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["redshift.amazonaws.com", "redshift-serverless.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "spectrum" {
  name               = "${var.name_prefix}-redshift-spectrum"
  assume_role_policy = data.aws_iam_policy_document.redshift_assume.json
}

locals {
  glue_prefix = "arn:${data.aws_partition.current.partition}:glue:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}"
}

data "aws_iam_policy_document" "spectrum" {
  statement {
    sid = "ReadTheLakeCatalog"
    actions = [
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:GetTables",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
    ]
    resources = [
      "${local.glue_prefix}:catalog",
      aws_glue_catalog_database.lake.arn,
      "${local.glue_prefix}:table/${aws_glue_catalog_database.lake.name}/*",
    ]
  }

  statement {
    sid       = "ReadGoldObjects"
    actions   = ["s3:GetObject"]
    resources = ["${var.gold_bucket_arn}/*"]
  }

  statement {
    sid       = "ListGold"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.gold_bucket_arn]
  }

  statement {
    sid       = "DecryptGold"
    actions   = ["kms:Decrypt"]
    resources = [var.lake_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "spectrum" {
  name   = "read-gold"
  role   = aws_iam_role.spectrum.id
  policy = data.aws_iam_policy_document.spectrum.json
}

# --- Redshift Serverless ----------------------------------------------------------------------

resource "aws_redshiftserverless_namespace" "bi" {
  namespace_name                   = "${var.name_prefix}-bi"
  db_name                          = "lakehouse"
  admin_username                   = "lakehouse_admin"
  manage_admin_password            = true
  admin_password_secret_kms_key_id = var.platform_kms_key_arn
  kms_key_id                       = var.platform_kms_key_arn
  iam_roles                        = [aws_iam_role.spectrum.arn]
  default_iam_role_arn             = aws_iam_role.spectrum.arn
  log_exports                      = ["userlog", "connectionlog", "useractivitylog"]
}

resource "aws_security_group" "workgroup" {
  name        = "${var.name_prefix}-redshift"
  description = "Redshift Serverless workgroup: BI clients in on 5439; HTTPS out to S3 and Glue"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "bi_clients" {
  for_each = toset(var.bi_client_cidr_blocks)

  security_group_id = aws_security_group.workgroup.id
  description       = "BI client"
  ip_protocol       = "tcp"
  from_port         = 5439
  to_port           = 5439
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.workgroup.id
  description       = "HTTPS to S3 and Glue (enhanced VPC routing) through VPC endpoints or NAT"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_redshiftserverless_workgroup" "bi" {
  namespace_name       = aws_redshiftserverless_namespace.bi.namespace_name
  workgroup_name       = var.workgroup_name
  base_capacity        = var.base_capacity_rpu
  max_capacity         = var.max_capacity_rpu
  publicly_accessible  = false
  enhanced_vpc_routing = true
  subnet_ids           = var.private_subnet_ids
  security_group_ids   = [aws_security_group.workgroup.id]

  config_parameter {
    parameter_key   = "require_ssl"
    parameter_value = "true"
  }

  config_parameter {
    parameter_key   = "enable_user_activity_logging"
    parameter_value = "true"
  }
}
