resource "google_service_account" "extractor" {
  project    = "sfpipe-example"
  account_id = "sfpipe-extractor"
}

module "extractor" {
  source = "../.."

  project_id            = "sfpipe-example"
  region                = "europe-west1"
  name                  = "extractor"
  port                  = 8310
  service_account_email = google_service_account.extractor.email
  invokers              = ["serviceAccount:sfpipe-scheduler@sfpipe-example.iam.gserviceaccount.com"]
}
