variable "project_id" {
  description = "Project of the Dataflow jobs."
  type        = string
}

variable "region" {
  description = "Region of the jobs and of the template bucket."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the worker account id."
  type        = string
  default     = "sfpipe"
}

variable "bucket_name" {
  description = "Globally unique name of the Flex Template / staging / temp bucket."
  type        = string
}

variable "launchers" {
  description = "Members that launch Flex Template jobs (the loader): they may act as the worker account and use the bucket."
  type        = list(string)
  default     = []
}

variable "scratch_retention_days" {
  description = "Days staging/ and temp/ files of finished jobs are kept."
  type        = number
  default     = 7
}

variable "force_destroy" {
  description = "Let terraform destroy delete the bucket with its objects."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels put on the bucket."
  type        = map(string)
  default     = {}
}
