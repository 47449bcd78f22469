module "dataform" {
  source = "../.."

  project_id        = "sfpipe-example"
  region            = "europe-west1"
  bigquery_location = "europe-west1"
  environment       = "dev"
  git_url           = "https://github.com/example/sfpipe.git"
  git_token_secret  = "projects/sfpipe-example/secrets/sfpipe-dataform-git-token"
  invokers          = ["serviceAccount:sfpipe-transform@sfpipe-example.iam.gserviceaccount.com"]
}
