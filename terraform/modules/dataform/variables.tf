variable "project_id" {
  description = "Project of the repository and of the BigQuery datasets it writes."
  type        = string
}

variable "region" {
  description = "Dataform region."
  type        = string
}

variable "bigquery_location" {
  description = "BigQuery location of the datasets the workflows write."
  type        = string
}

variable "environment" {
  description = "dev, staging or prod (passed to the project as a compilation variable)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the runner account id."
  type        = string
  default     = "sfpipe"
}

variable "repository_name" {
  description = "Dataform repository id (SFPIPE_DATAFORM_REPOSITORY ends with it)."
  type        = string
  default     = "sfpipe"
}

variable "git_url" {
  description = "HTTPS URL of the git repository that holds dataform/."
  type        = string
}

variable "git_branch" {
  description = "Default branch of the git remote."
  type        = string
  default     = "main"
}

variable "git_commitish" {
  description = "Branch, tag or commit the release config compiles (a release tag in prod)."
  type        = string
  default     = "main"
}

variable "git_token_secret" {
  description = "Secret Manager secret id (projects/.../secrets/...) holding the git access token."
  type        = string
}

variable "release_cron" {
  description = "When the release config compiles."
  type        = string
  default     = "0 */6 * * *"
}

variable "workflow_cron" {
  description = "When the scheduled full workflow runs (the event path runs after each load)."
  type        = string
  default     = "30 5 * * *"
}

variable "time_zone" {
  description = "Time zone of the cron schedules."
  type        = string
  default     = "Etc/UTC"
}

variable "invokers" {
  description = "Members that compile and invoke workflows (the transform service)."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels put on the repository."
  type        = map(string)
  default     = {}
}
