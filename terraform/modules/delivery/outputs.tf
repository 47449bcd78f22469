output "build_service_account_email" {
  description = "Email of the build account (grant it writer on this registry, reader on the previous environment's)."
  value       = google_service_account.build.email
}

output "build_member" {
  description = "IAM member string of the build account."
  value       = "serviceAccount:${google_service_account.build.email}"
}

output "trigger_id" {
  description = "Cloud Build trigger id."
  value       = google_cloudbuild_trigger.this.id
}
