output "databricks_cross_account_role_arn" {
  description = "Role the Databricks control plane assumes (registered as the workspace credential)."
  value       = aws_iam_role.databricks_cross_account.arn
}

output "unity_catalog_role_arn" {
  description = "Role of the Unity Catalog storage credential."
  value       = aws_iam_role.unity_catalog.arn
}

output "cluster_instance_profile_arn" {
  description = "Instance profile of the job clusters submitted through Pipes."
  value       = aws_iam_instance_profile.cluster.arn
}

output "cluster_instance_profile_role_arn" {
  description = "Role behind the cluster instance profile."
  value       = aws_iam_role.cluster_instance_profile.arn
}

output "dagster_role_arn" {
  description = "Role the Dagster deployment assumes."
  value       = aws_iam_role.dagster.arn
}
