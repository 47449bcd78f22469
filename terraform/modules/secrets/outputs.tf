output "secret_ids" {
  description = "Secret id to secret resource name."
  value       = { for k, s in google_secret_manager_secret.this : k => s.name }
}
