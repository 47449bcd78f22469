variable "project_id" {
  description = "Project in which the APIs are enabled."
  type        = string
}

variable "services" {
  description = "API service names to enable (e.g. run.googleapis.com)."
  type        = list(string)
  default = [
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "billingbudgets.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudscheduler.googleapis.com",
    "dataflow.googleapis.com",
    "dataform.googleapis.com",
    "dataplex.googleapis.com",
    "eventarc.googleapis.com",
    "iam.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}
