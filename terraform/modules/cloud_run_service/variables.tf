variable "project_id" {
  description = "Project of the service."
  type        = string
}

variable "region" {
  description = "Cloud Run region."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the Cloud Run service name (<prefix>-<name>)."
  type        = string
  default     = "sfpipe"
}

variable "name" {
  description = "sfpipe service name: extractor, loader, transform, reconciler, quality, cdc-publisher, dashboard or simulator."
  type        = string
}

variable "service_account_email" {
  description = "The service's own account (from the service_accounts module); no two services share one."
  type        = string
}

variable "bootstrap_image" {
  description = "Image of the first revision, before the first skaffold deploy replaces it with .../sfpipe-<name>."
  type        = string
  default     = "us-docker.pkg.dev/cloudrun/container/hello"
}

variable "port" {
  description = "Container port (the service's SFPIPE_<NAME>_PORT default)."
  type        = number
}

variable "ingress" {
  description = "INGRESS_TRAFFIC_INTERNAL_ONLY for event-driven services (Pub/Sub, Eventarc and Scheduler count as internal), INGRESS_TRAFFIC_ALL for the dashboard and simulator."
  type        = string
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be one of INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY, INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "invokers" {
  description = "Members granted roles/run.invoker on this service only."
  type        = list(string)
  default     = []
}

variable "min_instances" {
  description = "Minimum instances (1 for the long-running cdc-publisher)."
  type        = number
  default     = 0
}

variable "max_instances" {
  description = "Maximum instances."
  type        = number
  default     = 10
}

variable "always_on" {
  description = "Keep CPU allocated outside requests (a long-running subscriber such as cdc-publisher)."
  type        = bool
  default     = false
}

variable "concurrency" {
  description = "Requests one instance serves at once."
  type        = number
  default     = 8
}

variable "request_timeout_seconds" {
  description = "Request timeout; a load or a Dataform invocation can take minutes."
  type        = number
  default     = 900
}

variable "cpu" {
  description = "CPU limit of the container."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory limit of the container."
  type        = string
  default     = "1Gi"
}

variable "deletion_protection" {
  description = "Refuse terraform destroy of the service (true in staging and prod)."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels put on the service and its revisions."
  type        = map(string)
  default     = {}
}
