variable "project_id" {
  description = "Project of the secrets."
  type        = string
}

variable "secrets" {
  description = "Secret id to its description and the members allowed to read its versions."
  type = map(object({
    description = string
    accessors   = list(string)
  }))
}

variable "replica_locations" {
  description = "Regions the secrets are replicated to (kept in the pipeline's region for data residency)."
  type        = list(string)
}

variable "labels" {
  description = "Labels put on every secret."
  type        = map(string)
  default     = {}
}
