locals {
  lake_bindings = flatten([
    for role, members in var.lake_iam : [for m in members : { role = role, member = m }]
  ])
  state_bindings = flatten([
    for role, members in var.state_iam : [for m in members : { role = role, member = m }]
  ])
}

# The Parquet lake and the run manifests (DESIGN.md §6). Versioned so that the object
# generations a manifest names stay readable for a replay; old versions expire.
resource "google_storage_bucket" "lake" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs (data access logs); legacy usage-log buckets are not used.
  project                     = var.project_id
  name                        = var.lake_bucket_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  versioning {
    enabled = true
  }

  # Extracted Parquet is read by the loader within minutes and afterwards only for a
  # replay or a repair: it moves to colder classes, then expires.
  lifecycle_rule {
    condition {
      age                   = var.nearline_after_days
      matches_prefix        = ["salesforce/"]
      matches_storage_class = ["STANDARD"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }

  lifecycle_rule {
    condition {
      age                   = var.coldline_after_days
      matches_prefix        = ["salesforce/"]
      matches_storage_class = ["NEARLINE"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "COLDLINE"
    }
  }

  lifecycle_rule {
    condition {
      age = var.lake_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }
}

# Watermarks and CDC checkpoints: small, written with generation preconditions, versioned
# so that a bad write can be rolled back by hand.
resource "google_storage_bucket" "state" {
  #checkov:skip=CKV_GCP_62:Access is recorded by Cloud Audit Logs (data access logs); legacy usage-log buckets are not used.
  project                     = var.project_id
  name                        = var.state_bucket_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      num_newer_versions = var.state_versions_kept
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_iam_member" "lake" {
  for_each = { for b in local.lake_bindings : "${b.role} ${b.member}" => b }

  bucket = google_storage_bucket.lake.name
  role   = each.value.role
  member = each.value.member
}

resource "google_storage_bucket_iam_member" "state" {
  for_each = { for b in local.state_bindings : "${b.role} ${b.member}" => b }

  bucket = google_storage_bucket.state.name
  role   = each.value.role
  member = each.value.member
}
