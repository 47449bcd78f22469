module "service_accounts" {
  source = "../.."

  project_id = "sfpipe-example"
  accounts = {
    extractor = "Cloud Run service: Salesforce extraction to the lake"
    loader    = "Cloud Run service: lake to raw layer"
  }
}
