output "dataset_ids" {
  description = "Dataset ids that were created."
  value       = [for d in google_bigquery_dataset.this : d.dataset_id]
}
