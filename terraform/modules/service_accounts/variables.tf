variable "project_id" {
  description = "Project that owns the service accounts."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every account id (account ids are at most 30 characters)."
  type        = string
  default     = "sfpipe"
}

variable "accounts" {
  description = "Workload name (e.g. extractor) to a sentence saying what the account runs."
  type        = map(string)

  validation {
    condition     = alltrue([for k in keys(var.accounts) : can(regex("^[a-z][a-z0-9-]{2,22}$", k))])
    error_message = "Workload names are lower-case, 3 to 23 characters, so that prefix-name fits in 30."
  }
}
