data "google_project" "this" {
  project_id = var.project_id
}

locals {
  dataform_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-dataform.iam.gserviceaccount.com"
}

# The repository links to the project's git remote (dataform/ in this repository); the
# token is read from Secret Manager by Dataform's service agent.
resource "google_dataform_repository" "this" {
  provider = google-beta

  project      = var.project_id
  region       = var.region
  name         = var.repository_name
  display_name = "sfpipe marts"
  labels       = var.labels

  git_remote_settings {
    url                                 = var.git_url
    default_branch                      = var.git_branch
    authentication_token_secret_version = "${var.git_token_secret}/versions/latest"
  }

  workspace_compilation_overrides {
    default_database = var.project_id
    schema_suffix    = "dev"
  }
}

# Compiles the branch on a schedule; the transform service also compiles on demand after
# each load and runs the result (the event path), the workflow config is the safety net.
resource "google_dataform_repository_release_config" "this" {
  provider = google-beta

  project    = var.project_id
  region     = var.region
  repository = google_dataform_repository.this.name

  name          = "sfpipe-${var.environment}"
  git_commitish = var.git_commitish
  cron_schedule = var.release_cron
  time_zone     = var.time_zone

  code_compilation_config {
    default_database = var.project_id
    default_schema   = "sfpipe_staging"
    default_location = var.bigquery_location
    assertion_schema = "sfpipe_assertions"
    vars = {
      environment = var.environment
    }
  }
}

resource "google_dataform_repository_workflow_config" "this" {
  provider = google-beta

  project        = var.project_id
  region         = var.region
  repository     = google_dataform_repository.this.name
  name           = "sfpipe-${var.environment}-daily"
  release_config = google_dataform_repository_release_config.this.id
  cron_schedule  = var.workflow_cron
  time_zone      = var.time_zone

  invocation_config {
    transitive_dependencies_included         = true
    transitive_dependents_included           = false
    fully_refresh_incremental_tables_enabled = false
    service_account                          = google_service_account.runner.email
  }
}

# Workflow invocations run as this account: it reads the raw layer and writes staging,
# marts and assertions, nothing else.
resource "google_service_account" "runner" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-dataform"
  display_name = "sfpipe Dataform runner"
  description  = "Dataform workflow invocations (staging, marts, assertions)"
}

resource "google_service_account_iam_member" "agent_token_creator" {
  service_account_id = google_service_account.runner.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.dataform_agent
}

resource "google_secret_manager_secret_iam_member" "agent_git_token" {
  project   = var.project_id
  secret_id = var.git_token_secret
  role      = "roles/secretmanager.secretAccessor"
  member    = local.dataform_agent
}

# Invokers (the transform service) start compilations and invocations that run as the runner.
resource "google_dataform_repository_iam_member" "invoker" {
  provider = google-beta
  for_each = toset(var.invokers)

  project    = var.project_id
  region     = var.region
  repository = google_dataform_repository.this.name
  role       = "roles/dataform.editor"
  member     = each.value
}

resource "google_service_account_iam_member" "invoker_act_as" {
  for_each = toset(var.invokers)

  service_account_id = google_service_account.runner.name
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}
