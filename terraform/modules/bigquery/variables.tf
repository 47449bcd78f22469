variable "project_id" {
  description = "Project that owns the datasets."
  type        = string
}

variable "location" {
  description = "BigQuery location of every dataset (must match the lake bucket's region for load jobs)."
  type        = string
}

variable "datasets" {
  description = "Dataset id to description and optional default table / partition expiry in days."
  type = map(object({
    description               = string
    table_expiration_days     = optional(number)
    partition_expiration_days = optional(number)
  }))
  default = {
    sfpipe_raw = {
      description = "Current state of each Salesforce record, one row per Id, and the __changes logs."
    }
    sfpipe_staging = {
      description = "Dataform staging models over the raw layer."
    }
    sfpipe_marts = {
      description = "Dataform marts that sales teams read."
    }
    sfpipe_assertions = {
      description           = "Dataform assertion results; rebuilt every run, so old tables expire."
      table_expiration_days = 30
    }
    sfpipe_ops = {
      description               = "Runs, loads, processed events, quality results and CDC lag."
      partition_expiration_days = 400
    }
  }
}

variable "dataset_iam" {
  description = "Dataset id to role (predefined, dataset-level) to members."
  type        = map(map(list(string)))
  default     = {}
}

variable "kms_key_name" {
  description = "Cloud KMS key for default encryption of every dataset; null keeps Google-managed keys."
  type        = string
  default     = null
}

variable "delete_contents_on_destroy" {
  description = "Let terraform destroy drop datasets that still hold tables (true only for throw-away environments)."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels put on every dataset."
  type        = map(string)
  default     = {}
}
