variable "project_id" {
  description = "Project of the environment (the trigger runs and deploys here)."
  type        = string
}

variable "region" {
  description = "Cloud Run region deployed to."
  type        = string
}

variable "environment" {
  description = "dev, staging or prod: the skaffold profile the build deploys with."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "name_prefix" {
  description = "Prefix of the build account id."
  type        = string
  default     = "sfpipe"
}

variable "trigger_location" {
  description = "Location of the trigger (global for GitHub app triggers)."
  type        = string
  default     = "global"
}

variable "github_owner" {
  description = "GitHub organisation or user that owns the repository (the Cloud Build GitHub app must be installed)."
  type        = string
}

variable "github_repository" {
  description = "GitHub repository name."
  type        = string
}

variable "branch_pattern" {
  description = "Branch regex that starts a build (used when tag_pattern is empty)."
  type        = string
  default     = "^main$"
}

variable "tag_pattern" {
  description = "Tag regex that starts a build instead of a branch (prod releases); empty = branch builds."
  type        = string
  default     = ""
}

variable "approval_required" {
  description = "Hold each build until a person approves it (staging and prod)."
  type        = bool
  default     = false
}

variable "repository_url" {
  description = "Artifact Registry prefix images are pushed to or promoted into."
  type        = string
}

variable "promote_from_repository" {
  description = "Registry prefix to copy images from (the previous environment's); empty = build from source."
  type        = string
  default     = ""
}

variable "cloud_run_services" {
  description = "Cloud Run service names the build may deploy."
  type        = list(string)
}

variable "runtime_service_accounts" {
  description = "Service name to the email of its runtime account (the build may act as exactly these)."
  type        = map(string)
}
