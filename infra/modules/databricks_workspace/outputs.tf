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
