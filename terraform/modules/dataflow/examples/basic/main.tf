module "dataflow" {
  source = "../.."

  project_id  = "sfpipe-example"
  region      = "europe-west1"
  bucket_name = "sfpipe-example-dataflow"
  launchers   = ["serviceAccount:sfpipe-loader@sfpipe-example.iam.gserviceaccount.com"]
}
