# The topology file (libs/sfpipe/topology.yaml) expanded into the topics and subscriptions
# Terraform creates. This file holds only variables and locals, no resources, so that the
# infrastructure tests evaluate it offline against the same file the devstack applies.

variable "topology" {
  description = "The decoded topology file: yamldecode(file(\".../libs/sfpipe/topology.yaml\"))."
  type = object({
    defaults = optional(object({
      ack_deadline_seconds  = optional(number, 600)
      retry_min_seconds     = optional(number, 10)
      retry_max_seconds     = optional(number, 600)
      max_delivery_attempts = optional(number, 5)
      dead_letter_topic     = optional(string, "sfpipe-dead-letter")
      message_retention     = optional(string, "7d")
    }), {})
    topics = list(object({
      name        = string
      event_type  = optional(string)
      description = optional(string)
      subscriptions = optional(list(object({
        name                 = string
        push                 = optional(string)
        ordering             = optional(bool, false)
        dead_letter          = optional(bool, true)
        ack_deadline_seconds = optional(number)
        retention            = optional(string)
      })), [])
    }))
  })
}

variable "delivery" {
  description = "How push routes reach Cloud Run: \"push\" (Pub/Sub push subscriptions with OIDC and a dead-letter policy) or \"eventarc\" (Eventarc triggers on the same topics)."
  type        = string
  default     = "push"

  validation {
    condition     = contains(["push", "eventarc"], var.delivery)
    error_message = "delivery must be \"push\" or \"eventarc\"."
  }
}

locals {
  defaults       = var.topology.defaults
  duration_units = { s = 1, m = 60, h = 3600, d = 86400 }

  topics = {
    for t in var.topology.topics : t.name => {
      event_type = t.event_type
      ordering   = anytrue([for s in t.subscriptions : s.ordering])
    }
  }

  all_subscriptions = flatten([
    for t in var.topology.topics : [
      for s in t.subscriptions : {
        name                  = s.name
        topic                 = t.name
        push_service          = s.push
        ordering              = s.ordering
        ack_deadline_seconds  = coalesce(s.ack_deadline_seconds, local.defaults.ack_deadline_seconds)
        retry_min_seconds     = local.defaults.retry_min_seconds
        retry_max_seconds     = local.defaults.retry_max_seconds
        dead_letter_topic     = s.dead_letter ? local.defaults.dead_letter_topic : null
        max_delivery_attempts = s.dead_letter ? local.defaults.max_delivery_attempts : null
        retention_seconds = (
          tonumber(regex("^([0-9]+)([smhd])$", coalesce(s.retention, local.defaults.message_retention))[0])
          * local.duration_units[regex("^([0-9]+)([smhd])$", coalesce(s.retention, local.defaults.message_retention))[1]]
        )
      }
    ]
  ])

  # With Eventarc delivery a push route becomes a trigger on its topic, and Eventarc owns
  # the subscription behind it; every other subscription is created here either way.
  subscriptions = {
    for s in local.all_subscriptions : s.name => s
    if !(var.delivery == "eventarc" && s.push_service != null)
  }

  push_routes = {
    for s in local.all_subscriptions : s.name => {
      topic   = s.topic
      service = s.push_service
    } if s.push_service != null
  }
}
