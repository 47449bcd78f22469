module "dataplex" {
  source = "../.."

  project_id           = "sfpipe-example"
  region               = "europe-west1"
  environment          = "dev"
  lake_bucket          = "sfpipe-example-lake"
  quality_scan_enabled = true
}
