module "scheduler" {
  source = "../.."

  project_id            = "sfpipe-example"
  region                = "europe-west1"
  extractor_uri         = "https://sfpipe-extractor-abc-ew.a.run.app"
  service_account_email = "sfpipe-scheduler@sfpipe-example.iam.gserviceaccount.com"
  jobs = {
    extract-incremental = {
      schedule    = "*/15 * * * *"
      description = "Incremental extraction of every object"
      body        = { mode = "incremental" }
    }
    extract-full-weekly = {
      schedule    = "0 3 * * 0"
      description = "Full extraction of every object, Sunday 03:00"
      body        = { mode = "full" }
    }
  }
}
