module "monitoring" {
  source = "../.."

  project_id   = "sfpipe-example"
  environment  = "dev"
  alert_emails = ["data-platform@example.com"]
}
