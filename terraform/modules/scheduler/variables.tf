variable "project_id" {
  description = "Project of the jobs."
  type        = string
}

variable "region" {
  description = "Cloud Scheduler region."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every job name."
  type        = string
  default     = "sfpipe"
}

variable "extractor_uri" {
  description = "HTTPS URL of the extractor service (also the OIDC audience)."
  type        = string
}

variable "service_account_email" {
  description = "Account whose OIDC token the requests carry; it holds run.invoker on the extractor only."
  type        = string
}

variable "jobs" {
  description = "Job name to cron schedule, description and JSON body of POST /runs."
  type = map(object({
    schedule    = string
    description = string
    body        = any
  }))
  default = {
    extract-incremental = {
      schedule    = "*/15 * * * *"
      description = "Incremental extraction of every object"
      body        = { mode = "incremental" }
    }
  }
}

variable "time_zone" {
  description = "Time zone of the cron schedules."
  type        = string
  default     = "Etc/UTC"
}

variable "attempt_deadline_seconds" {
  description = "How long the scheduler waits for POST /runs to answer (it answers once the run is accepted)."
  type        = number
  default     = 320
}

variable "paused" {
  description = "Create the jobs paused (e.g. until the first deploy of the extractor)."
  type        = bool
  default     = false
}
