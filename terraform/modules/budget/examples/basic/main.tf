module "budget" {
  source = "../.."

  project_id      = "sfpipe-example"
  environment     = "dev"
  billing_account = "000000-000000-000000"
  monthly_amount  = 60
}
