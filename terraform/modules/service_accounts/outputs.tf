output "emails" {
  description = "Workload name to service account email."
  value       = { for k, sa in google_service_account.this : k => sa.email }
}

output "members" {
  description = "Workload name to IAM member string (serviceAccount:...)."
  value       = { for k, sa in google_service_account.this : k => "serviceAccount:${sa.email}" }
}

output "ids" {
  description = "Workload name to service account resource id (for resource-level IAM on the account)."
  value       = { for k, sa in google_service_account.this : k => sa.name }
}
