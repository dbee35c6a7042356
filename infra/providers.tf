provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      "Project"     = var.project
      "Environment" = var.environment
      "ManagedBy"   = "terraform"
    })
  }
}

# Workspace-level provider. Authentication comes from the environment of whoever runs Terraform
# (DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET of a service principal, or DATABRICKS_TOKEN).
provider "databricks" {
  host = var.databricks_host
}

# Account-level provider, used only to register the cross-account role as a credential
# configuration of the Databricks account.
provider "databricks" {
  alias      = "account"
  host       = "https://accounts.cloud.databricks.com"
  account_id = var.databricks_account_id
}
