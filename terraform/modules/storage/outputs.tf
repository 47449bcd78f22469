output "lake_bucket" {
  description = "Name of the lake bucket."
  value       = google_storage_bucket.lake.name
}

output "state_bucket" {
  description = "Name of the state bucket."
  value       = google_storage_bucket.state.name
}
