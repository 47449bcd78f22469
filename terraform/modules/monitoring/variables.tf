variable "project_id" {
  description = "Project that is monitored."
  type        = string
}

variable "environment" {
  description = "dev, staging or prod (shown in every policy and dashboard name)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the Cloud Run service names charted on the dashboard."
  type        = string
  default     = "sfpipe"
}

variable "alert_emails" {
  description = "Addresses that receive the alerts (one email channel each)."
  type        = list(string)
}

variable "dead_letter_subscription" {
  description = "Subscription of the dead-letter topic (from the topology)."
  type        = string
  default     = "dead-letter"
}

variable "max_delivery_attempts" {
  description = "Deliveries before an event is dead-lettered (from the topology; used in the runbook text)."
  type        = number
  default     = 5
}

variable "cdc_subscription" {
  description = "Subscription the CDC streaming pipeline reads (from the topology)."
  type        = string
  default     = "cdc-stream"
}

variable "cdc_lag_threshold_seconds" {
  description = "Age of the oldest unapplied change above which the CDC lag alert fires."
  type        = number
  default     = 300
}

variable "failure_topics" {
  description = "Alert name to the topic whose every message is a failure (failed loads, quality failures...)."
  type        = map(string)
  default = {
    "failed loads"          = "sfpipe-load-failed"
    "failed transforms"     = "sfpipe-transform-failed"
    "quality failures"      = "sfpipe-quality-alert"
    "reconciliation alerts" = "sfpipe-reconcile-alert"
  }
}

variable "labels" {
  description = "User labels put on every alert policy."
  type        = map(string)
  default     = {}
}
