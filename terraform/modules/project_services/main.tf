# The APIs sfpipe uses. Disabling them on destroy is left off: other workloads in the
# project may depend on the same APIs.
resource "google_project_service" "this" {
  for_each = toset(var.services)

  project                    = var.project_id
  service                    = each.value
  disable_on_destroy         = false
  disable_dependent_services = false
}
