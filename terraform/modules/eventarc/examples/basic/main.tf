module "eventarc" {
  source = "../.."

  project_id = "sfpipe-example"
  region     = "europe-west1"
  delivery   = "eventarc"
  routes = {
    transform = { topic = "sfpipe-load-completed", service = "transform" }
  }
  topics                   = { sfpipe-load-completed = "projects/sfpipe-example/topics/sfpipe-load-completed" }
  cloud_run_services       = { transform = "sfpipe-transform" }
  invoker_service_accounts = { transform = "sfpipe-push-transform@sfpipe-example.iam.gserviceaccount.com" }
}
