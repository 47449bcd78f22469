# With delivery = "eventarc" each push route of the topology becomes an Eventarc trigger on
# the same topic, delivering the same Pub/Sub message to the same Cloud Run service
# (docs/adr/0051). With delivery = "push" no trigger is created.
resource "google_eventarc_trigger" "route" {
  for_each = var.delivery == "eventarc" ? var.routes : {}

  project         = var.project_id
  location        = var.region
  name            = "${var.name_prefix}-${each.key}"
  service_account = var.invoker_service_accounts[each.value.service]
  labels          = var.labels

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.pubsub.topic.v1.messagePublished"
  }

  destination {
    cloud_run_service {
      service = var.cloud_run_services[each.value.service]
      region  = var.region
      path    = "/"
    }
  }

  transport {
    pubsub {
      topic = var.topics[each.value.topic]
    }
  }
}
