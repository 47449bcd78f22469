# State lives in a versioned bucket made once by hand (docs/deploy.md, step 2):
#   terraform init -backend-config=backend.hcl
terraform {
  backend "gcs" {
    prefix = "sfpipe/dev"
  }
}
