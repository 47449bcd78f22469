variable "project_id" {
  description = "Project of the lake."
  type        = string
}

variable "region" {
  description = "Dataplex region (the lake bucket's and datasets' region)."
  type        = string
}

variable "environment" {
  description = "dev, staging or prod (part of the lake name)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the lake and scan names."
  type        = string
  default     = "sfpipe"
}

variable "lake_bucket" {
  description = "Name of the Parquet lake bucket."
  type        = string
}

variable "discovery_cron" {
  description = "When Dataplex discovery scans the zones."
  type        = string
  default     = "0 */6 * * *"
}

variable "quality_scan_enabled" {
  description = "Create the data quality scan (needs the scanned raw table to exist: set after the first load)."
  type        = bool
  default     = false
}

variable "quality_scan_table" {
  description = "Raw-layer table the scan checks (lower-case API name)."
  type        = string
  default     = "opportunity"
}

variable "quality_scan_cron" {
  description = "When the data quality scan runs."
  type        = string
  default     = "0 6 * * *"
}

variable "labels" {
  description = "Labels put on every Dataplex resource."
  type        = map(string)
  default     = {}
}
