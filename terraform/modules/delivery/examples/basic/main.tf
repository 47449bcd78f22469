module "delivery" {
  source = "../.."

  project_id         = "sfpipe-example"
  region             = "europe-west1"
  environment        = "dev"
  github_owner       = "example"
  github_repository  = "sfpipe"
  repository_url     = "europe-west1-docker.pkg.dev/sfpipe-example/sfpipe"
  cloud_run_services = ["sfpipe-extractor"]
  runtime_service_accounts = {
    extractor = "sfpipe-extractor@sfpipe-example.iam.gserviceaccount.com"
  }
}
