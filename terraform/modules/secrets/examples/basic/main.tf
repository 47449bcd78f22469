module "secrets" {
  source = "../.."

  project_id        = "sfpipe-example"
  replica_locations = ["europe-west1"]
  secrets = {
    sfpipe-sf-client-secret = {
      description = "Salesforce connected app consumer secret"
      accessors   = ["serviceAccount:sfpipe-extractor@sfpipe-example.iam.gserviceaccount.com"]
    }
  }
}
