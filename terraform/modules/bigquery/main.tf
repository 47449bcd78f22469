locals {
  bindings = flatten([
    for ds, roles in var.dataset_iam : [
      for role, members in roles : [
        for m in members : { dataset = ds, role = role, member = m }
      ]
    ]
  ])
}

resource "google_bigquery_dataset" "this" {
  #checkov:skip=CKV_GCP_81:Google-managed encryption by default; set kms_key_name to use a customer-managed key.
  for_each = var.datasets

  project                         = var.project_id
  dataset_id                      = each.key
  location                        = var.location
  description                     = each.value.description
  default_table_expiration_ms     = each.value.table_expiration_days == null ? null : each.value.table_expiration_days * 86400000
  default_partition_expiration_ms = each.value.partition_expiration_days == null ? null : each.value.partition_expiration_days * 86400000
  delete_contents_on_destroy      = var.delete_contents_on_destroy
  labels                          = var.labels

  dynamic "default_encryption_configuration" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }
}

# Dataset-level grants only: a service reads or writes the datasets it owns, nothing else.
resource "google_bigquery_dataset_iam_member" "this" {
  for_each = { for b in local.bindings : "${b.dataset} ${b.role} ${b.member}" => b }

  project    = var.project_id
  dataset_id = google_bigquery_dataset.this[each.value.dataset].dataset_id
  role       = each.value.role
  member     = each.value.member
}
