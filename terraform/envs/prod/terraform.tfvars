project_id  = "sfpipe-prod"
region      = "europe-west1"
environment = "prod"

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
    invokers    = ["group:sfpipe-viewers@example.com"]
  }
}

extract_schedules = {
  extract-incremental = {
    schedule    = "*/15 * * * *"
    description = "Incremental extraction of every object every 15 minutes"
    body        = { mode = "incremental" }
  }
  extract-full-weekly = {
    schedule    = "0 3 * * 0"
    description = "Full extraction of every object, Sunday 03:00 UTC (catches what incremental windows miss)"
    body        = { mode = "full" }
  }
}

lake_retention_days       = 400
force_destroy             = false
deletion_protection       = true
quality_scan_enabled      = false
alert_emails              = ["sfpipe-alerts@example.com"]
cdc_lag_threshold_seconds = 120
billing_account           = "000000-000000-000000"
monthly_budget            = 900
dataform_git_url          = "https://github.com/example/sfpipe.git"
github_owner              = "example"
github_repository         = "sfpipe"
build_tag_pattern         = "^v[0-9]+\\.[0-9]+\\.[0-9]+$"
build_approval_required   = true
promote_from_repository   = "europe-west1-docker.pkg.dev/sfpipe-staging/sfpipe"
salesforce_login_url      = "https://example.my.salesforce.com"
