output "lake_id" {
  description = "Dataplex lake resource name."
  value       = google_dataplex_lake.this.id
}

output "quality_scan_ids" {
  description = "Data quality scan resource names (empty until quality_scan_enabled)."
  value       = [for s in google_dataplex_datascan.raw_quality : s.id]
}
