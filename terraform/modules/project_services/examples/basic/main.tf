module "project_services" {
  source = "../.."

  project_id = "sfpipe-example"
}
