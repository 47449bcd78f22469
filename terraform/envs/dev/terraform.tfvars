project_id  = "sfpipe-dev"
region      = "europe-west1"
environment = "dev"

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
    invokers    = ["group:sfpipe-dev-viewers@example.com"]
  }
  simulator = {
    description = "Salesforce org simulator, so that dev needs no Salesforce org"
    port        = 8300
    ingress     = "INGRESS_TRAFFIC_ALL"
    invokers    = ["allUsers"]
  }
}

extract_schedules = {
  extract-incremental = {
    schedule    = "0 * * * *"
    description = "Hourly incremental extraction of every object"
    body        = { mode = "incremental" }
  }
}

lake_retention_days     = 30
force_destroy           = true
deletion_protection     = false
quality_scan_enabled    = false
alert_emails            = ["sfpipe-dev-alerts@example.com"]
billing_account         = "000000-000000-000000"
monthly_budget          = 150
dataform_git_url        = "https://github.com/example/sfpipe.git"
github_owner            = "example"
github_repository       = "sfpipe"
build_branch_pattern    = "^main$"
build_approval_required = false
promote_from_repository = ""
registry_readers        = ["serviceAccount:sfpipe-build@sfpipe-staging.iam.gserviceaccount.com"]
