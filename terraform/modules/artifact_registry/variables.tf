variable "project_id" {
  description = "Project of the repository."
  type        = string
}

variable "region" {
  description = "Repository location (same region as Cloud Run, so pulls stay regional)."
  type        = string
}

variable "repository_id" {
  description = "Repository id; images are <region>-docker.pkg.dev/<project>/<id>/sfpipe-<name>."
  type        = string
  default     = "sfpipe"
}

variable "immutable_tags" {
  description = "Refuse to move a tag once pushed (skaffold tags by input digest, so a tag names one content)."
  type        = bool
  default     = true
}

variable "keep_recent" {
  description = "Most recent versions of each image kept whatever their age (rollback targets)."
  type        = number
  default     = 20
}

variable "delete_after_days" {
  description = "Versions older than this are deleted unless kept by keep_recent."
  type        = number
  default     = 90
}

variable "readers" {
  description = "Members granted roles/artifactregistry.reader on this repository."
  type        = list(string)
  default     = []
}

variable "writers" {
  description = "Members granted roles/artifactregistry.writer on this repository (the build account)."
  type        = list(string)
  default     = []
}

variable "kms_key_name" {
  description = "Cloud KMS key for the repository; null keeps Google-managed keys."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels put on the repository."
  type        = map(string)
  default     = {}
}
