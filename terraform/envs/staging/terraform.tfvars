project_id  = "sfpipe-staging"
region      = "europe-west1"
environment = "staging"

services = {
  extractor = {
    description = "incremental Salesforce extraction to the lake (POST /runs)"
    port        = 8310
  }
  loader = {
    description = "run manifest to raw layer (BigQuery load + MERGE, or a Dataflow job)"
    port        = 8320
  }
  transform = {
    description = "Dataform compile and invocation after each load"
    port        = 8330
  }
  reconciler = {
    description = "reconciliation of the raw layer with Salesforce, repair and formula refresh after each load"
    port        = 8380
  }
  quality = {
    description = "Great Expectations suites after each transform"
    port        = 8340
  }
  cdc-publisher = {
    description = "Salesforce Pub/Sub API to the sfpipe-cdc topic, long-running"
    port        = 8350
  }
  dashboard = {
    description = "pipeline runs, freshness and CDC lag for people"
    port        = 8360
    ingress     = "INGRESS_TRAFFIC_ALL"
    invokers    = ["group:sfpipe-staging-viewers@example.com"]
  }
}

extract_schedules = {
  extract-incremental = {
    schedule    = "*/30 * * * *"
    description = "Incremental extraction of every object every 30 minutes"
    body        = { mode = "incremental" }
  }
}

lake_retention_days     = 90
force_destroy           = false
deletion_protection     = true
quality_scan_enabled    = false
alert_emails            = ["sfpipe-staging-alerts@example.com"]
billing_account         = "000000-000000-000000"
monthly_budget          = 300
dataform_git_url        = "https://github.com/example/sfpipe.git"
github_owner            = "example"
github_repository       = "sfpipe"
build_branch_pattern    = "^main$"
build_approval_required = true
promote_from_repository = "europe-west1-docker.pkg.dev/sfpipe-dev/sfpipe"
registry_readers        = ["serviceAccount:sfpipe-build@sfpipe-prod.iam.gserviceaccount.com"]
salesforce_login_url    = "https://example--staging.sandbox.my.salesforce.com"
