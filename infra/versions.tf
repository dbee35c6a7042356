terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    databricks = {
      source  = "databricks/databricks"
      version = "~> 1.88"
    }
  }

  # Remote state: S3 with native locking. Values come from `terraform init -backend-config=backend.hcl`
  # (bucket, key, region, kms_key_id); see docs/infrastructure.md.
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
