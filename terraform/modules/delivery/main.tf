# The Cloud Build trigger of this environment and the account its builds run as
# (docs/adr/0054). dev builds and deploys on every push to main; staging and prod promote
# the images dev built (same sources, same input-digest tags) after an approval.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "sfpipe build and deploy (${var.environment})"
  description  = "Cloud Build: lint, test, build changed images, deploy to Cloud Run"
}

# Build logs go to Cloud Logging; writing log entries exists only as a project role.
resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# Deploying a revision: update rights on each sfpipe service, and acting as that service's
# own account, no other.
resource "google_cloud_run_v2_service_iam_member" "deployer" {
  for_each = toset(var.cloud_run_services)

  project  = var.project_id
  location = var.region
  name     = each.value
  role     = "roles/run.developer"
  member   = "serviceAccount:${google_service_account.build.email}"
}

resource "google_service_account_iam_member" "deployer_act_as" {
  for_each = var.runtime_service_accounts

  service_account_id = "projects/${var.project_id}/serviceAccounts/${each.value}"
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.build.email}"
}

resource "google_cloudbuild_trigger" "this" {
  project         = var.project_id
  location        = var.trigger_location
  name            = "sfpipe-${var.environment}"
  description     = var.promote_from_repository == "" ? "Lint, test, build changed images and deploy to ${var.environment}" : "Promote the images of ${var.promote_from_repository} to ${var.environment}"
  filename        = "cloudbuild.yaml"
  service_account = google_service_account.build.id

  github {
    owner = var.github_owner
    name  = var.github_repository

    push {
      branch = var.tag_pattern == "" ? var.branch_pattern : null
      tag    = var.tag_pattern == "" ? null : var.tag_pattern
    }
  }

  approval_config {
    approval_required = var.approval_required
  }

  substitutions = {
    _ENV          = var.environment
    _REGION       = var.region
    _REPOSITORY   = var.repository_url
    _PROMOTE_FROM = var.promote_from_repository
  }

  include_build_logs = "INCLUDE_BUILD_LOGS_WITH_STATUS"
}
