output "job_names" {
  description = "Names of the scheduler jobs."
  value       = [for j in google_cloud_scheduler_job.extract : j.name]
}
