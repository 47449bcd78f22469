module "artifact_registry" {
  source = "../.."

  project_id = "sfpipe-example"
  region     = "europe-west1"
  readers    = ["serviceAccount:sfpipe-extractor@sfpipe-example.iam.gserviceaccount.com"]
}
