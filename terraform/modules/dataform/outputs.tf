output "repository_id" {
  description = "Repository resource name (SFPIPE_DATAFORM_REPOSITORY)."
  value       = google_dataform_repository.this.id
}

output "runner_member" {
  description = "IAM member string of the workflow runner account."
  value       = "serviceAccount:${google_service_account.runner.email}"
}

output "release_config" {
  description = "Release config resource name."
  value       = google_dataform_repository_release_config.this.id
}

output "runner_email" {
  description = "Email of the workflow runner account (SFPIPE_DATAFORM_SERVICE_ACCOUNT)."
  value       = google_service_account.runner.email
}
