module "bigquery" {
  source = "../.."

  project_id = "sfpipe-example"
  location   = "europe-west1"
  dataset_iam = {
    sfpipe_raw = {
      "roles/bigquery.dataEditor" = ["serviceAccount:sfpipe-loader@sfpipe-example.iam.gserviceaccount.com"]
    }
  }
}
