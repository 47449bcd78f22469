locals {
  bindings = flatten([
    for id, s in var.secrets : [for m in s.accessors : { secret = id, member = m }]
  ])
}

# Only the containers are created here; the values are added by a person with
# `gcloud secrets versions add` (docs/deploy.md), so no secret ever enters Terraform state.
resource "google_secret_manager_secret" "this" {
  for_each = var.secrets

  project   = var.project_id
  secret_id = each.key
  labels    = var.labels

  annotations = {
    description = each.value.description
  }

  replication {
    user_managed {
      dynamic "replicas" {
        for_each = var.replica_locations
        content {
          location = replicas.value
        }
      }
    }
  }
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = { for b in local.bindings : "${b.secret} ${b.member}" => b }

  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}
