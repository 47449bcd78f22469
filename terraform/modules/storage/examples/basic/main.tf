module "storage" {
  source = "../.."

  project_id        = "sfpipe-example"
  location          = "europe-west1"
  lake_bucket_name  = "sfpipe-example-lake"
  state_bucket_name = "sfpipe-example-state"
  lake_iam = {
    "roles/storage.objectUser" = ["serviceAccount:sfpipe-extractor@sfpipe-example.iam.gserviceaccount.com"]
  }
}
