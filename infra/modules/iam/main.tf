# IAM, least privilege:
# - databricks_cross_account: lets the Databricks control plane run clusters in our VPC;
# - unity_catalog: the storage-credential role, limited to the lake buckets and the lake key;
# - cluster_instance_profile: the job clusters' instance profile, with the same lake-only access;
# - dagster: the Dagster deployment reads landing, consumes the queue and the stream, nothing more.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  ec2_prefix = "arn:${local.partition}:ec2:${local.region}:${local.account_id}"
  vpc_arn    = "${local.ec2_prefix}:vpc/${var.vpc_id}"

  unity_catalog_role_arn = "arn:${local.partition}:iam::${local.account_id}:role/${var.unity_catalog_role_name}"
  writable_zones         = ["bronze", "silver", "gold"]
}

# ==============================================================================================
# Databricks cross-account role ("restricted" policy of the Databricks documentation: instances
# only in our VPC and security group, and only on resources Databricks tagged itself).
# ==============================================================================================

data "aws_iam_policy_document" "databricks_cross_account_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${var.databricks_aws_account_id}:root"]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.databricks_account_id]
    }
  }
}

resource "aws_iam_role" "databricks_cross_account" {
  name               = "${var.name_prefix}-databricks-cross-account"
  assume_role_policy = data.aws_iam_policy_document.databricks_cross_account_assume.json
}

data "aws_iam_policy_document" "databricks_cross_account" {
  #checkov:skip=CKV_AWS_356:These EC2 Describe/Spot/Fleet/LaunchTemplate actions do not support resource-level permissions or are needed before the resources exist; this is Databricks' documented "restricted" policy, and every mutating action on instances, volumes and security groups is constrained by VPC or Vendor tag below.
  #checkov:skip=CKV_AWS_111:Only the NonResourceBasedPermissions statement has Resource "*": EC2 Describe/Spot/Fleet/LaunchTemplate/CreateTags actions that Databricks needs to launch clusters and that lack usable resource-level permissions; RunInstances, TerminateInstances, volumes and security-group changes are constrained by VPC, security group or the Vendor=Databricks tag.
  statement {
    sid = "NonResourceBasedPermissions"
    actions = [
      "ec2:AssignPrivateIpAddresses",
      "ec2:CancelSpotInstanceRequests",
      "ec2:DescribeAvailabilityZones",
      "ec2:DescribeIamInstanceProfileAssociations",
      "ec2:DescribeInstanceStatus",
      "ec2:DescribeInstances",
      "ec2:DescribeInternetGateways",
      "ec2:DescribeNatGateways",
      "ec2:DescribeNetworkAcls",
      "ec2:DescribePrefixLists",
      "ec2:DescribeReservedInstancesOfferings",
      "ec2:DescribeRouteTables",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeSpotInstanceRequests",
      "ec2:DescribeSpotPriceHistory",
      "ec2:DescribeSubnets",
      "ec2:DescribeVolumes",
      "ec2:DescribeVpcAttribute",
      "ec2:DescribeVpcs",
      "ec2:CreateTags",
      "ec2:DeleteTags",
      "ec2:GetSpotPlacementScores",
      "ec2:RequestSpotInstances",
      "ec2:DescribeFleetHistory",
      "ec2:ModifyFleet",
      "ec2:DeleteFleets",
      "ec2:DescribeFleetInstances",
      "ec2:DescribeFleets",
      "ec2:CreateFleet",
      "ec2:DeleteLaunchTemplate",
      "ec2:GetLaunchTemplateData",
      "ec2:CreateLaunchTemplate",
      "ec2:DescribeLaunchTemplates",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:ModifyLaunchTemplate",
      "ec2:DeleteLaunchTemplateVersions",
      "ec2:CreateLaunchTemplateVersion",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "SpotServiceLinkedRole"
    actions   = ["iam:CreateServiceLinkedRole", "iam:PutRolePolicy"]
    resources = ["arn:${local.partition}:iam::*:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"]

    condition {
      test     = "StringLike"
      variable = "iam:AWSServiceName"
      values   = ["spot.amazonaws.com"]
    }
  }

  statement {
    sid       = "PassOnlyTheClusterInstanceProfileRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.cluster_instance_profile.arn]
  }

  statement {
    sid = "InstancePoolsSupport"
    actions = [
      "ec2:AssociateIamInstanceProfile",
      "ec2:DisassociateIamInstanceProfile",
      "ec2:ReplaceIamInstanceProfileAssociation",
    ]
    resources = ["${local.ec2_prefix}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/Vendor"
      values   = ["Databricks"]
    }
  }

  statement {
    sid       = "AllowEc2RunInstancePerTag"
    actions   = ["ec2:RunInstances"]
    resources = ["${local.ec2_prefix}:volume/*", "${local.ec2_prefix}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Vendor"
      values   = ["Databricks"]
    }
  }

  statement {
    sid       = "AllowEc2RunInstanceImagePerTag"
    actions   = ["ec2:RunInstances"]
    resources = ["${local.ec2_prefix}:image/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Vendor"
      values   = ["Databricks"]
    }
  }

  statement {
    sid     = "AllowEc2RunInstancePerVpc"
    actions = ["ec2:RunInstances"]
    resources = [
      "${local.ec2_prefix}:network-interface/*",
      "${local.ec2_prefix}:subnet/*",
      "${local.ec2_prefix}:security-group/*",
    ]

    condition {
      test     = "StringEquals"
      variable = "ec2:vpc"
      values   = [local.vpc_arn]
    }
  }

  statement {
    sid     = "AllowEc2RunInstanceOtherResources"
    actions = ["ec2:RunInstances"]
    not_resources = [
      "${local.ec2_prefix}:image/*",
      "${local.ec2_prefix}:network-interface/*",
      "${local.ec2_prefix}:subnet/*",
      "${local.ec2_prefix}:security-group/*",
      "${local.ec2_prefix}:volume/*",
      "${local.ec2_prefix}:instance/*",
    ]
  }

  statement {
    sid       = "EC2TerminateInstancesTag"
    actions   = ["ec2:TerminateInstances"]
    resources = ["${local.ec2_prefix}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/Vendor"
      values   = ["Databricks"]
    }
  }

  statement {
    sid       = "EC2AttachDetachVolumeTag"
    actions   = ["ec2:AttachVolume", "ec2:DetachVolume"]
    resources = ["${local.ec2_prefix}:instance/*", "${local.ec2_prefix}:volume/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/Vendor"
      values   = ["Databricks"]
    }
  }

  statement {
    sid       = "EC2CreateVolumeByTag"
    actions   = ["ec2:CreateVolume"]
    resources = ["${local.ec2_prefix}:volume/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Vendor"
      values   = ["Databricks"]
    }
  }

  statement {
    sid       = "EC2DeleteVolumeByTag"
    actions   = ["ec2:DeleteVolume"]
    resources = ["${local.ec2_prefix}:volume/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:ResourceTag/Vendor"
      values   = ["Databricks"]
    }
  }

  statement {
    sid = "VpcNonresourceSpecificActions"
    actions = [
      "ec2:AuthorizeSecurityGroupEgress",
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:RevokeSecurityGroupEgress",
      "ec2:RevokeSecurityGroupIngress",
    ]
    resources = ["${local.ec2_prefix}:security-group/${var.databricks_security_group_id}"]

    condition {
      test     = "StringEquals"
      variable = "ec2:vpc"
      values   = [local.vpc_arn]
    }
  }
}

resource "aws_iam_role_policy" "databricks_cross_account" {
  name   = "databricks-restricted-cross-account"
  role   = aws_iam_role.databricks_cross_account.id
  policy = data.aws_iam_policy_document.databricks_cross_account.json
}

# ==============================================================================================
# Lake access shared by the Unity Catalog role and the cluster instance profile:
# read all four zones, write bronze/silver/gold (landing is written by sources and DMS only).
# ==============================================================================================

data "aws_iam_policy_document" "lake_access" {
  statement {
    sid       = "ListTheLakeBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = values(var.lake_bucket_arns)
  }

  statement {
    sid       = "ReadTheLakeObjects"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [for arn in values(var.lake_bucket_arns) : "${arn}/*"]
  }

  statement {
    sid       = "WriteTheMedallionZones"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = [for zone in local.writable_zones : "${var.lake_bucket_arns[zone]}/*"]
  }

  statement {
    sid       = "UseTheLakeKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"]
    resources = [var.lake_kms_key_arn]
  }
}

# --- Unity Catalog storage-credential role ----------------------------------------------------

data "aws_iam_policy_document" "unity_catalog_assume" {
  statement {
    sid     = "UnityCatalogAssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = [var.unity_catalog_iam_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.unity_catalog_external_id]
    }
  }

  statement {
    sid     = "ExplicitSelfRoleAssumption"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:PrincipalArn"
      values   = [local.unity_catalog_role_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.unity_catalog_external_id]
    }
  }
}

resource "aws_iam_role" "unity_catalog" {
  name               = var.unity_catalog_role_name
  assume_role_policy = data.aws_iam_policy_document.unity_catalog_assume.json
}

data "aws_iam_policy_document" "unity_catalog_self_assume" {
  statement {
    sid       = "SelfAssume"
    actions   = ["sts:AssumeRole"]
    resources = [local.unity_catalog_role_arn]
  }
}

resource "aws_iam_role_policy" "unity_catalog_lake" {
  name   = "lake-buckets"
  role   = aws_iam_role.unity_catalog.id
  policy = data.aws_iam_policy_document.lake_access.json
}

resource "aws_iam_role_policy" "unity_catalog_self_assume" {
  name   = "self-assume"
  role   = aws_iam_role.unity_catalog.id
  policy = data.aws_iam_policy_document.unity_catalog_self_assume.json
}

# --- Instance profile of the job clusters that the Pipes engine submits -----------------------

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster_instance_profile" {
  name               = "${var.name_prefix}-databricks-cluster"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy" "cluster_instance_profile_lake" {
  name   = "lake-buckets"
  role   = aws_iam_role.cluster_instance_profile.id
  policy = data.aws_iam_policy_document.lake_access.json
}

# Reading the stream, for whichever role runs bronze.events: the cluster's (the Databricks
# runner) and the Dagster role's (the in-process and subprocess runners).
data "aws_iam_policy_document" "read_the_stream" {
  statement {
    sid = "ReadTheStream"
    actions = [
      "kinesis:DescribeStreamSummary",
      "kinesis:ListShards",
      "kinesis:GetShardIterator",
      "kinesis:GetRecords",
    ]
    resources = [var.kinesis_stream_arn]
  }

  statement {
    sid       = "DecryptTheRecords"
    actions   = ["kms:Decrypt"]
    resources = [var.platform_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["kinesis.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "cluster_instance_profile_stream" {
  name   = "read-the-stream"
  role   = aws_iam_role.cluster_instance_profile.id
  policy = data.aws_iam_policy_document.read_the_stream.json
}

resource "aws_iam_instance_profile" "cluster" {
  name = "${var.name_prefix}-databricks-cluster"
  role = aws_iam_role.cluster_instance_profile.name
}

# ==============================================================================================
# Dagster deployment role: read the landing bucket, consume the queue and the stream.
# ==============================================================================================

data "aws_iam_policy_document" "dagster_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = var.dagster_trusted_principal_arns
    }
  }
}

resource "aws_iam_role" "dagster" {
  name               = "${var.name_prefix}-dagster"
  assume_role_policy = data.aws_iam_policy_document.dagster_assume.json
}

data "aws_iam_policy_document" "dagster" {
  statement {
    sid       = "ListLanding"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.lake_bucket_arns["landing"]]
  }

  statement {
    sid       = "ReadLanding"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${var.lake_bucket_arns["landing"]}/*"]
  }

  statement {
    sid = "ConsumeTheEventsQueue"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
    ]
    resources = [var.events_queue_arn]
  }

  statement {
    sid       = "DecryptLandingObjects"
    actions   = ["kms:Decrypt"]
    resources = [var.lake_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "DecryptMessages"
    actions   = ["kms:Decrypt"]
    resources = [var.platform_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "dagster" {
  name   = "read-landing-consume-events"
  role   = aws_iam_role.dagster.id
  policy = data.aws_iam_policy_document.dagster.json
}

resource "aws_iam_role_policy" "dagster_stream" {
  name   = "read-the-stream"
  role   = aws_iam_role.dagster.id
  policy = data.aws_iam_policy_document.read_the_stream.json
}

# ==============================================================================================
# Dagster serving: read silver and gold (Delta logs for Glue, gold rows for the warehouse), stage
# loads under one prefix of gold, register tables in the lake's Glue database, load Redshift.
# ==============================================================================================

locals {
  glue_prefix = "arn:${local.partition}:glue:${local.region}:${local.account_id}"
}

data "aws_iam_policy_document" "dagster_serving" {
  #checkov:skip=CKV_AWS_356:redshift-data DescribeStatement, GetStatementResult and CancelStatement have no resource-level permission; they are limited to the statements this role ran (statement-owner condition).
  statement {
    sid       = "ListSilverAndGold"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.lake_bucket_arns["silver"], var.lake_bucket_arns["gold"]]
  }

  statement {
    sid       = "FindUnfinishedStagingUploads"
    actions   = ["s3:ListBucketMultipartUploads"]
    resources = [var.lake_bucket_arns["gold"]]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.warehouse_staging_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadSilverAndGold"
    actions   = ["s3:GetObject"]
    resources = ["${var.lake_bucket_arns["silver"]}/*", "${var.lake_bucket_arns["gold"]}/*"]
  }

  statement {
    sid       = "StageWarehouseLoads"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${var.lake_bucket_arns["gold"]}/${var.warehouse_staging_prefix}/*"]
  }

  statement {
    sid       = "UseTheLakeKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.lake_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid     = "RegisterLakeTablesInGlue"
    actions = ["glue:GetDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable"]
    resources = [
      "${local.glue_prefix}:catalog",
      var.glue_database_arn,
      "${local.glue_prefix}:table/${var.glue_database_name}/*",
    ]
  }

  statement {
    sid       = "LoadTheWarehouse"
    actions   = ["redshift-data:ExecuteStatement", "redshift-data:BatchExecuteStatement", "redshift-serverless:GetCredentials"]
    resources = [var.warehouse_workgroup_arn]
  }

  statement {
    sid       = "FollowOwnStatements"
    actions   = ["redshift-data:DescribeStatement", "redshift-data:GetStatementResult", "redshift-data:CancelStatement"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "redshift-data:statement-owner-iam-userid"
      values   = ["$${aws:userid}"]
    }
  }
}

resource "aws_iam_role_policy" "dagster_serving" {
  name   = "serve-gold-register-tables"
  role   = aws_iam_role.dagster.id
  policy = data.aws_iam_policy_document.dagster_serving.json
}

# ==============================================================================================
# Dagster monitoring: publish alerts to the alarm topic (encrypted with the platform key) and the
# materialisation metrics to one CloudWatch namespace.
# ==============================================================================================

data "aws_iam_policy_document" "dagster_monitoring" {
  #checkov:skip=CKV_AWS_356:cloudwatch:PutMetricData has no resource-level permission; it is limited to the lakehouse's namespace (cloudwatch:namespace condition).
  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [var.alarm_topic_arn]
  }

  statement {
    sid       = "EncryptAlertsThroughSns"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.platform_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "PublishMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }
}

resource "aws_iam_role_policy" "dagster_monitoring" {
  name   = "publish-alerts-and-metrics"
  role   = aws_iam_role.dagster.id
  policy = data.aws_iam_policy_document.dagster_monitoring.json
}
