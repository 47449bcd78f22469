# One service account per workload: a compromised service can reach only what its own
# account was granted on each resource (docs/adr/0052).
resource "google_service_account" "this" {
  for_each = var.accounts

  project      = var.project_id
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = "sfpipe ${each.key}"
  description  = each.value
}
