variable "project_id" {
  description = "Google Cloud project of this environment (one project per environment)."
  type        = string
}

variable "region" {
  description = "Region of every regional resource: Cloud Run, buckets, BigQuery, Dataflow, Dataform, Dataplex."
  type        = string
}

variable "environment" {
  description = "dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "services" {
  description = "Cloud Run services of this environment (the simulator only in dev): port, ingress and extra invokers. Image, environment and scaling are deployed from deploy/cloudrun (docs/adr/0053)."
  type = map(object({
    description = string
    port        = number
    ingress     = optional(string, "INGRESS_TRAFFIC_INTERNAL_ONLY")
    invokers    = optional(list(string), [])
  }))

  validation {
    condition = alltrue([
      for name in ["extractor", "loader", "transform", "reconciler", "quality", "cdc-publisher", "dashboard"] : contains(keys(var.services), name)
    ])
    error_message = "services must include extractor, loader, transform, reconciler, quality, cdc-publisher and dashboard."
  }
}

variable "delivery" {
  description = "How events reach the push targets: \"push\" (Pub/Sub push subscriptions) or \"eventarc\" (see docs/adr/0051)."
  type        = string
  default     = "push"
}

variable "extract_schedules" {
  description = "Cloud Scheduler jobs calling POST /runs on the extractor: name to cron, description and body."
  type = map(object({
    schedule    = string
    description = string
    body        = any
  }))
}

variable "scheduler_paused" {
  description = "Create the extraction jobs paused (until the first deploy and the secrets are in place)."
  type        = bool
  default     = false
}

variable "lake_retention_days" {
  description = "Days extracted Parquet and manifests are kept in the lake."
  type        = number
}

variable "force_destroy" {
  description = "Let terraform destroy delete buckets and datasets that still hold data (dev only)."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Refuse terraform destroy of Cloud Run services."
  type        = bool
  default     = true
}

variable "quality_scan_enabled" {
  description = "Create the Dataplex data quality scan (after the first load has created the scanned table)."
  type        = bool
  default     = false
}

variable "alert_emails" {
  description = "Addresses that receive pipeline alerts and budget notifications."
  type        = list(string)
}

variable "cdc_lag_threshold_seconds" {
  description = "CDC lag above which the alert fires."
  type        = number
  default     = 300
}

variable "billing_account" {
  description = "Billing account id (XXXXXX-XXXXXX-XXXXXX) for the budget."
  type        = string
}

variable "monthly_budget" {
  description = "Monthly budget of this environment in the billing account's currency."
  type        = number
}

variable "dataform_git_url" {
  description = "HTTPS URL of the git repository holding dataform/."
  type        = string
}

variable "dataform_git_commitish" {
  description = "Branch Dataform reads: dataform/ published at the root of its own branch (docs/deploy.md, step 7)."
  type        = string
  default     = "dataform"
}

variable "github_owner" {
  description = "GitHub owner of the repository Cloud Build builds."
  type        = string
}

variable "github_repository" {
  description = "GitHub repository name Cloud Build builds."
  type        = string
}

variable "build_branch_pattern" {
  description = "Branch regex that starts this environment's build."
  type        = string
  default     = "^main$"
}

variable "build_tag_pattern" {
  description = "Tag regex that starts this environment's build instead of a branch (prod); empty = branch."
  type        = string
  default     = ""
}

variable "build_approval_required" {
  description = "Each build waits for a person's approval (staging and prod)."
  type        = bool
  default     = false
}

variable "promote_from_repository" {
  description = "Registry the images are promoted from (the previous environment's); empty = build from source (dev)."
  type        = string
  default     = ""
}

variable "registry_readers" {
  description = "Extra members that may pull this environment's images (the next environment's build account)."
  type        = list(string)
  default     = []
}

variable "salesforce_login_url" {
  description = "Salesforce My Domain login URL; empty in dev, where the simulator service is the org."
  type        = string
  default     = ""
}
