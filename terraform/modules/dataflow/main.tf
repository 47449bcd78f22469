# The Flex Template spec, staging and temp files of the Beam load pipeline, and the account
# its workers run as.
resource "google_storage_bucket" "dataflow" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs (data access logs); legacy usage-log buckets are not used.
  #checkov:skip=CKV_GCP_78:Holds rebuildable template specs and job scratch files only; versions would be dead weight.
  project                     = var.project_id
  name                        = var.bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  lifecycle_rule {
    condition {
      age            = var.scratch_retention_days
      matches_prefix = ["staging/", "temp/"]
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-dataflow-worker"
  display_name = "sfpipe Dataflow worker"
  description  = "Workers of the sfpipe Beam load and CDC pipelines"
}

# roles/dataflow.worker exists only at project level: it lets the VMs lease work items of
# their own jobs and is what Google documents for a worker account.
resource "google_project_iam_member" "worker" {
  project = var.project_id
  role    = "roles/dataflow.worker"
  member  = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_storage_bucket_iam_member" "worker" {
  bucket = google_storage_bucket.dataflow.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.worker.email}"
}

resource "google_storage_bucket_iam_member" "launcher" {
  for_each = toset(var.launchers)

  bucket = google_storage_bucket.dataflow.name
  role   = "roles/storage.objectUser"
  member = each.value
}

# A launcher submits jobs that run as the worker account, so it must be allowed to act as
# that account (and no other).
resource "google_service_account_iam_member" "launcher_act_as" {
  for_each = toset(var.launchers)

  service_account_id = google_service_account.worker.name
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}
