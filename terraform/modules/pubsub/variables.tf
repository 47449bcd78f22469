variable "project_id" {
  description = "Project that owns the topics and subscriptions."
  type        = string
}

variable "lake_bucket" {
  description = "Name of the lake bucket whose manifest objects are announced on the notifications topic."
  type        = string
}

variable "lake_notifications_topic" {
  description = "Topic that receives the lake bucket's object notifications (sfpipe.topology.LAKE_NOTIFICATIONS_TOPIC)."
  type        = string
  default     = "sfpipe-lake-notifications"
}

variable "manifest_prefix" {
  description = "Object name prefix of run manifests (sfpipe.topology.MANIFEST_PREFIX)."
  type        = string
  default     = "salesforce/_runs/"
}

variable "push_endpoints" {
  description = "Service name (the topology's push target) to the HTTPS URL a push subscription delivers to."
  type        = map(string)
  default     = {}
}

variable "push_service_accounts" {
  description = "Service name to the email of the account whose OIDC token push requests carry (it holds run.invoker on that service)."
  type        = map(string)
  default     = {}
}

variable "topic_publishers" {
  description = "Topic name to members granted roles/pubsub.publisher on that topic."
  type        = map(list(string))
  default     = {}
}

variable "subscription_subscribers" {
  description = "Subscription name to members granted roles/pubsub.subscriber on that subscription."
  type        = map(list(string))
  default     = {}
}

variable "kms_key_name" {
  description = "Cloud KMS key for the topics; null keeps Google-managed keys."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels put on every topic and subscription."
  type        = map(string)
  default     = {}
}
