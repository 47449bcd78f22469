# Extraction is the one entry a scheduler calls (DESIGN.md §1): POST /runs on the
# extractor, authenticated with an OIDC token of the scheduler's own account.
resource "google_cloud_scheduler_job" "extract" {
  for_each = var.jobs

  project          = var.project_id
  region           = var.region
  name             = "${var.name_prefix}-${each.key}"
  description      = each.value.description
  schedule         = each.value.schedule
  time_zone        = var.time_zone
  attempt_deadline = "${var.attempt_deadline_seconds}s"
  paused           = var.paused

  retry_config {
    retry_count          = 2
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
  }

  http_target {
    http_method = "POST"
    uri         = "${var.extractor_uri}/runs"
    body        = base64encode(jsonencode(each.value.body))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = var.service_account_email
      audience              = var.extractor_uri
    }
  }
}
