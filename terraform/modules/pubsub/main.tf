data "google_project" "this" {
  project_id = var.project_id
}

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  publisher_bindings = flatten([
    for topic, members in var.topic_publishers : [for m in members : { topic = topic, member = m }]
  ])
  subscriber_bindings = flatten([
    for sub, members in var.subscription_subscribers : [for m in members : { subscription = sub, member = m }]
  ])
  dead_lettered = { for k, s in local.subscriptions : k => s if s.dead_letter_topic != null }
}

resource "google_pubsub_topic" "this" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption by default; set kms_key_name to use a customer-managed key.
  for_each = local.topics

  project      = var.project_id
  name         = each.key
  kms_key_name = var.kms_key_name
  labels       = merge(var.labels, each.value.event_type == null ? {} : { event-type = replace(each.value.event_type, ".", "_") })
}

resource "google_pubsub_subscription" "this" {
  for_each = local.subscriptions

  project                    = var.project_id
  name                       = each.key
  topic                      = google_pubsub_topic.this[each.value.topic].id
  ack_deadline_seconds       = each.value.ack_deadline_seconds
  message_retention_duration = "${each.value.retention_seconds}s"
  enable_message_ordering    = each.value.ordering
  labels                     = var.labels

  # Never expire for inactivity: an idle pipeline must not lose its routes.
  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "${each.value.retry_min_seconds}s"
    maximum_backoff = "${each.value.retry_max_seconds}s"
  }

  dynamic "dead_letter_policy" {
    for_each = each.value.dead_letter_topic == null ? [] : [each.value.dead_letter_topic]
    content {
      dead_letter_topic     = google_pubsub_topic.this[dead_letter_policy.value].id
      max_delivery_attempts = each.value.max_delivery_attempts
    }
  }

  dynamic "push_config" {
    for_each = each.value.push_service == null ? [] : [each.value.push_service]
    content {
      push_endpoint = var.push_endpoints[push_config.value]

      oidc_token {
        service_account_email = var.push_service_accounts[push_config.value]
        audience              = var.push_endpoints[push_config.value]
      }
    }
  }
}

# Pub/Sub forwards undeliverable messages as its own service agent: it must publish to the
# dead-letter topic and acknowledge on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.this[local.defaults.dead_letter_topic].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = local.dead_lettered

  project      = var.project_id
  subscription = google_pubsub_subscription.this[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Pub/Sub signs the OIDC token of a push request as the push service account.
resource "google_service_account_iam_member" "push_token_creator" {
  for_each = var.delivery == "push" ? toset(distinct([for r in local.push_routes : r.service])) : toset([])

  service_account_id = "projects/${var.project_id}/serviceAccounts/${var.push_service_accounts[each.value]}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = { for b in local.publisher_bindings : "${b.topic} ${b.member}" => b }

  project = var.project_id
  topic   = google_pubsub_topic.this[each.value.topic].name
  role    = "roles/pubsub.publisher"
  member  = each.value.member
}

resource "google_pubsub_subscription_iam_member" "subscriber" {
  for_each = { for b in local.subscriber_bindings : "${b.subscription} ${b.member}" => b }

  project      = var.project_id
  subscription = google_pubsub_subscription.this[each.value.subscription].name
  role         = "roles/pubsub.subscriber"
  member       = each.value.member
}

# Manifests only (DESIGN.md §6): the loader wakes once per run, not once per Parquet file.
resource "google_pubsub_topic_iam_member" "gcs_notifications" {
  project = var.project_id
  topic   = google_pubsub_topic.this[var.lake_notifications_topic].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "manifests" {
  bucket             = var.lake_bucket
  topic              = google_pubsub_topic.this[var.lake_notifications_topic].id
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = var.manifest_prefix

  depends_on = [google_pubsub_topic_iam_member.gcs_notifications]
}
