variable "project_id" {
  description = "Project that owns the buckets."
  type        = string
}

variable "location" {
  description = "Bucket location (a region such as europe-west1, or a multi-region)."
  type        = string
}

variable "lake_bucket_name" {
  description = "Globally unique name of the lake bucket (SFPIPE_LAKE_BUCKET)."
  type        = string
}

variable "state_bucket_name" {
  description = "Globally unique name of the versioned state bucket (SFPIPE_STATE_BUCKET)."
  type        = string
}

variable "nearline_after_days" {
  description = "Age in days after which extracted Parquet moves to Nearline."
  type        = number
  default     = 30
}

variable "coldline_after_days" {
  description = "Age in days after which extracted Parquet moves from Nearline to Coldline."
  type        = number
  default     = 90
}

variable "lake_retention_days" {
  description = "Age in days after which any lake object is deleted (the raw layer keeps the data)."
  type        = number
  default     = 400
}

variable "noncurrent_retention_days" {
  description = "Days an overwritten or deleted lake object version is kept."
  type        = number
  default     = 7
}

variable "state_versions_kept" {
  description = "Older versions of each watermark or checkpoint object that are kept."
  type        = number
  default     = 50
}

variable "force_destroy" {
  description = "Let terraform destroy delete non-empty buckets (true only for throw-away environments)."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels put on both buckets."
  type        = map(string)
  default     = {}
}

variable "lake_iam" {
  description = "Role (predefined, bucket-level) to members on the lake bucket."
  type        = map(list(string))
  default     = {}
}

variable "state_iam" {
  description = "Role (predefined, bucket-level) to members on the state bucket."
  type        = map(list(string))
  default     = {}
}
