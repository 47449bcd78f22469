variable "project_id" {
  description = "Project of the triggers."
  type        = string
}

variable "region" {
  description = "Region of the triggers and of the Cloud Run services they deliver to."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every trigger name."
  type        = string
  default     = "sfpipe"
}

variable "delivery" {
  description = "\"eventarc\" creates a trigger per route; \"push\" creates none (push subscriptions deliver)."
  type        = string
  default     = "push"

  validation {
    condition     = contains(["push", "eventarc"], var.delivery)
    error_message = "delivery must be \"push\" or \"eventarc\"."
  }
}

variable "routes" {
  description = "Route name to the topic it listens on and the service it delivers to (the pubsub module's push_routes)."
  type = map(object({
    topic   = string
    service = string
  }))
}

variable "topics" {
  description = "Topic name to topic id (projects/.../topics/...)."
  type        = map(string)
}

variable "cloud_run_services" {
  description = "Service name (as in the topology) to Cloud Run service name."
  type        = map(string)
}

variable "invoker_service_accounts" {
  description = "Service name to the email of the account the trigger invokes it as (holds run.invoker on it)."
  type        = map(string)
}

variable "labels" {
  description = "Labels put on every trigger."
  type        = map(string)
  default     = {}
}
