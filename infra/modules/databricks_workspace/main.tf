# Databricks workspace objects of the lakehouse:
# - the instance profile and the cluster policy of the job clusters that the Pipes engine submits;
# - the volumes of the Pipes runner (the project's wheel, Pipes' context and messages);
# - Unity Catalog: external locations on the lake buckets, the catalog and its layer schemas, grants;
# - PII masking of e-mail columns (SQL function + ALTER TABLE ... SET MASK, run by a job);
# - a secret scope for job secrets.

locals {
  schemas        = toset(["bronze", "silver", "gold", "quarantine", "ops", "ml"])
  zone_buckets   = toset(["landing", "bronze", "silver", "gold"])
  mask_function  = "${var.catalog_name}.ops.mask_email"
  masks_file_dir = "/Shared/${var.name_prefix}/governance"
}

# ---------------------------------------------------------------------------------------------
# Compute: instance profile + cluster policy for Pipes job clusters
# ---------------------------------------------------------------------------------------------

resource "databricks_instance_profile" "cluster" {
  instance_profile_arn = var.instance_profile_arn
  iam_role_arn         = var.instance_profile_role_arn
}

# Rules of the cluster policy (Databricks policy definition language). Every job cluster the Pipes
# engine submits must use it: job clusters only, capped workers and DBU/hour, allowed node types,
# the registered instance profile, UC single-user access mode, encrypted local disks, and the cost
# tags fixed so that every cluster is attributable. No auto-termination rule: a job cluster ends
# with its run, and Databricks refuses autotermination_minutes on one (a policy fixing it would
# write it into every submitted cluster: apply_policy_default_values).
locals {
  cluster_policy_rules = {
    "cluster_type"                        = { type = "fixed", value = "job" }
    "num_workers"                         = { type = "range", minValue = 1, maxValue = var.cluster_policy.max_workers, defaultValue = 2 }
    "autoscale.min_workers"               = { type = "range", minValue = 1, maxValue = var.cluster_policy.max_workers, defaultValue = 1 }
    "autoscale.max_workers"               = { type = "range", minValue = 1, maxValue = var.cluster_policy.max_workers, defaultValue = 2 }
    "node_type_id"                        = { type = "allowlist", values = var.cluster_policy.allowed_node_types, defaultValue = var.cluster_policy.allowed_node_types[0] }
    "driver_node_type_id"                 = { type = "allowlist", values = var.cluster_policy.allowed_node_types, defaultValue = var.cluster_policy.allowed_node_types[0] }
    "dbus_per_hour"                       = { type = "range", maxValue = var.cluster_policy.max_dbu_per_hour }
    "aws_attributes.instance_profile_arn" = { type = "fixed", value = databricks_instance_profile.cluster.id }
    "aws_attributes.availability"         = { type = "allowlist", values = ["SPOT_WITH_FALLBACK", "ON_DEMAND"], defaultValue = "SPOT_WITH_FALLBACK" }
    "data_security_mode"                  = { type = "fixed", value = "SINGLE_USER" }
    "enable_local_disk_encryption"        = { type = "fixed", value = true }
    "spark_version"                       = { type = "unlimited", defaultValue = "auto:latest-lts" }
  }

  cluster_policy_tags = merge(
    { Project = var.name_prefix },
    var.cluster_policy.custom_tags,
  )
}

resource "databricks_cluster_policy" "pipes_jobs" {
  name        = "${var.name_prefix}-pipes-job-clusters"
  description = "Job clusters submitted by the Dagster Pipes engine: capped size and cost, tagged, UC single-user."

  definition = jsonencode(merge(
    local.cluster_policy_rules,
    { for key, value in local.cluster_policy_tags : "custom_tags.${key}" => { type = "fixed", value = value } },
  ))
}

resource "databricks_permissions" "pipes_jobs_policy" {
  cluster_policy_id = databricks_cluster_policy.pipes_jobs.id

  access_control {
    group_name       = var.engineers_group
    permission_level = "CAN_USE"
  }
}

# ---------------------------------------------------------------------------------------------
# Unity Catalog: external locations, catalog, schemas
# ---------------------------------------------------------------------------------------------

resource "databricks_external_location" "zone" {
  for_each = local.zone_buckets

  name            = "${var.name_prefix}-${each.key}"
  url             = "s3://${var.bucket_names[each.key]}/"
  credential_name = var.storage_credential_name
  read_only       = each.key == "landing"
  comment         = "Lake ${each.key} zone (managed by Terraform)"
  isolation_mode  = "ISOLATION_MODE_ISOLATED"

  encryption_details {
    sse_encryption_details {
      algorithm       = "AWS_SSE_KMS"
      aws_kms_key_arn = var.lake_kms_key_arn
    }
  }
}

resource "databricks_catalog" "lakehouse" {
  name           = var.catalog_name
  storage_root   = var.catalog_storage_root
  isolation_mode = "ISOLATED"
  comment        = "Medallion lakehouse (managed by Terraform)"

  depends_on = [databricks_external_location.zone]
}

resource "databricks_schema" "layer" {
  for_each = local.schemas

  catalog_name = databricks_catalog.lakehouse.name
  name         = each.key
  comment      = "Lakehouse ${each.key} layer (managed by Terraform)"
}

# Volumes of the Dagster Pipes runner, in the ops schema: "artifacts" holds the project's wheel
# that job clusters install (`make wheel`, then upload it); "pipes" holds the context and the
# messages Pipes exchanges with each run (a temporary folder per run, deleted after it). Managed
# volumes: their files live in the catalog's storage; the engineers group (with the Dagster
# service principal) reads and writes them through the catalog grants below.
resource "databricks_volume" "pipes_runner" {
  for_each = {
    artifacts = "Wheels of the lakehouse code that Databricks job runs install (managed by Terraform)."
    pipes     = "Dagster Pipes context and messages of the lakehouse's job runs (managed by Terraform)."
  }

  name         = each.key
  catalog_name = databricks_catalog.lakehouse.name
  schema_name  = databricks_schema.layer["ops"].name
  volume_type  = "MANAGED"
  comment      = each.value
}

# ---------------------------------------------------------------------------------------------
# Grants. databricks_grants is authoritative for the securable: privileges not listed are revoked.
# ---------------------------------------------------------------------------------------------

resource "databricks_grants" "catalog" {
  catalog = databricks_catalog.lakehouse.name

  grant {
    principal = var.engineers_group
    privileges = [
      "USE_CATALOG",
      "USE_SCHEMA",
      "SELECT",
      "MODIFY",
      "CREATE_TABLE",
      "CREATE_FUNCTION",
      "CREATE_MODEL", # the churn model's versions, registered by MLflow in the ml schema
      "EXECUTE",
      "REFRESH",
      "CREATE_VOLUME",
      "READ_VOLUME",
      "WRITE_VOLUME",
    ]
  }

  grant {
    principal  = var.analysts_group
    privileges = ["USE_CATALOG"]
  }
}

resource "databricks_grants" "gold" {
  schema = databricks_schema.layer["gold"].id

  grant {
    principal  = var.analysts_group
    privileges = ["USE_SCHEMA", "SELECT"]
  }
}

resource "databricks_grants" "external_location" {
  for_each = databricks_external_location.zone

  external_location = each.value.id

  grant {
    principal  = var.engineers_group
    privileges = each.key == "landing" ? ["READ_FILES", "CREATE_EXTERNAL_TABLE"] : ["READ_FILES", "WRITE_FILES", "CREATE_EXTERNAL_TABLE"]
  }
}

# ---------------------------------------------------------------------------------------------
# PII: e-mail column mask.
#
# The provider has no resource for a Unity Catalog SQL function, and databricks_sql_table has no
# column-mask argument (and the customer tables are created by the pipeline, not by Terraform).
# So the DDL lives in a versioned SQL file (sql/pii_masks.sql.tftpl): CREATE OR REPLACE FUNCTION
# <catalog>.ops.mask_email, then ALTER TABLE ... ALTER COLUMN ... SET MASK for every e-mail column.
# Terraform uploads it and defines a SQL-file job on a small serverless warehouse; the job is
# idempotent and is run after the first pipeline run and after any table is recreated
# (`databricks jobs run-now <job id>`; see docs/infrastructure.md).
# ---------------------------------------------------------------------------------------------

resource "databricks_sql_endpoint" "governance" {
  name                      = "${var.name_prefix}-governance"
  cluster_size              = "2X-Small"
  min_num_clusters          = 1
  max_num_clusters          = 1
  auto_stop_mins            = 10
  enable_serverless_compute = true
  warehouse_type            = "PRO"
}

resource "databricks_workspace_file" "pii_masks" {
  path = "${local.masks_file_dir}/pii_masks.sql"
  content_base64 = base64encode(templatefile("${path.module}/sql/pii_masks.sql.tftpl", {
    mask_function   = local.mask_function
    engineers_group = var.engineers_group
    columns = [
      for column in var.pii_email_columns : {
        table  = "${var.catalog_name}.${join(".", slice(split(".", column), 0, 2))}"
        column = split(".", column)[2]
      }
    ]
  }))
}

resource "databricks_job" "pii_masks" {
  name        = "${var.name_prefix}-apply-pii-masks"
  description = "Creates ${local.mask_function} and sets it as the mask of every PII e-mail column. Idempotent."

  task {
    task_key = "apply_pii_masks"

    sql_task {
      warehouse_id = databricks_sql_endpoint.governance.id

      file {
        path   = databricks_workspace_file.pii_masks.path
        source = "WORKSPACE"
      }
    }
  }

  depends_on = [databricks_schema.layer]
}

resource "databricks_permissions" "pii_masks_job" {
  job_id = databricks_job.pii_masks.id

  access_control {
    group_name       = var.engineers_group
    permission_level = "CAN_MANAGE_RUN"
  }
}

# ---------------------------------------------------------------------------------------------
# Secret scope for job secrets (readable by the engineers group, which holds the Dagster
# service principal).
# ---------------------------------------------------------------------------------------------

resource "databricks_secret_scope" "lakehouse" {
  name = var.secret_scope_name
}

resource "databricks_secret_acl" "engineers_read" {
  scope      = databricks_secret_scope.lakehouse.name
  principal  = var.engineers_group
  permission = "READ"
}
