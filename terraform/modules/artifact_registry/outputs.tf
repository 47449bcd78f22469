output "repository_url" {
  description = "Docker registry prefix of the images: <region>-docker.pkg.dev/<project>/<repository>."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "repository_name" {
  description = "Repository resource name."
  value       = google_artifact_registry_repository.images.name
}
