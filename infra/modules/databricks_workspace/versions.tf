terraform {
  required_version = ">= 1.11"

  required_providers {
    databricks = {
      source  = "databricks/databricks"
      version = ">= 1.88, < 2.0"
    }
  }
}
