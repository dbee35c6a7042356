output "cluster_policy_id" {
  description = "ID of the cluster policy of the Pipes job clusters."
  value       = databricks_cluster_policy.pipes_jobs.id
}

output "catalog_name" {
  description = "Name of the Unity Catalog catalog."
  value       = databricks_catalog.lakehouse.name
}

output "instance_profile_arn" {
  description = "Instance profile registered in the workspace (fixed by the cluster policy)."
  value       = databricks_instance_profile.cluster.id
}

output "pipes_volume_path" {
  description = "Volume of the Dagster Pipes context and messages, as /Volumes/<catalog>/ops/pipes."
  value       = databricks_volume.pipes_runner["pipes"].volume_path
}

output "artifacts_volume_path" {
  description = "Volume of the project's wheel, as /Volumes/<catalog>/ops/artifacts."
  value       = databricks_volume.pipes_runner["artifacts"].volume_path
}

output "cluster_tags" {
  description = "Custom tags the cluster policy fixes on every job cluster."
  value       = local.cluster_policy_tags
}
