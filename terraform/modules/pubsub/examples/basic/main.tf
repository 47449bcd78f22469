module "pubsub" {
  source = "../.."

  project_id  = "sfpipe-example"
  lake_bucket = "sfpipe-example-lake"
  topology    = yamldecode(file("${path.module}/../../../../../libs/sfpipe/topology.yaml"))
  push_endpoints = {
    loader    = "https://sfpipe-loader-abc-ew.a.run.app"
    transform = "https://sfpipe-transform-abc-ew.a.run.app"
    quality   = "https://sfpipe-quality-abc-ew.a.run.app"
  }
  push_service_accounts = {
    loader    = "sfpipe-push-loader@sfpipe-example.iam.gserviceaccount.com"
    transform = "sfpipe-push-transform@sfpipe-example.iam.gserviceaccount.com"
    quality   = "sfpipe-push-quality@sfpipe-example.iam.gserviceaccount.com"
  }
}
