output "bucket" {
  description = "Name of the template bucket."
  value       = google_storage_bucket.dataflow.name
}

output "template_path" {
  description = "gs:// path of the load pipeline's Flex Template spec (SFPIPE_DATAFLOW_TEMPLATE)."
  value       = "gs://${google_storage_bucket.dataflow.name}/templates/sfpipe-load.json"
}

output "worker_service_account_email" {
  description = "Email of the worker account."
  value       = google_service_account.worker.email
}

output "worker_member" {
  description = "IAM member string of the worker account."
  value       = "serviceAccount:${google_service_account.worker.email}"
}
