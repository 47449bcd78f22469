output "enabled" {
  description = "The API service names that are enabled, for depends_on in callers."
  value       = [for s in google_project_service.this : s.service]
}
