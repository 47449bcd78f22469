# The lake as Dataplex sees it: the Parquet lake and the raw layer in a raw zone, the
# Dataform output in a curated zone, and a data quality scan on the raw layer that runs
# independently of sfpipe's own quality service (a second opinion from outside the code).
resource "google_dataplex_lake" "this" {
  project      = var.project_id
  location     = var.region
  name         = "${var.name_prefix}-${var.environment}"
  display_name = "sfpipe ${var.environment}"
  description  = "Salesforce data: Parquet lake, raw layer and marts"
  labels       = var.labels
}

resource "google_dataplex_zone" "raw" {
  project  = var.project_id
  location = var.region
  lake     = google_dataplex_lake.this.name
  name     = "raw"
  type     = "RAW"
  labels   = var.labels

  resource_spec {
    location_type = "SINGLE_REGION"
  }

  discovery_spec {
    enabled  = true
    schedule = var.discovery_cron
  }
}

resource "google_dataplex_zone" "curated" {
  project  = var.project_id
  location = var.region
  lake     = google_dataplex_lake.this.name
  name     = "curated"
  type     = "CURATED"
  labels   = var.labels

  resource_spec {
    location_type = "SINGLE_REGION"
  }

  discovery_spec {
    enabled  = true
    schedule = var.discovery_cron
  }
}

resource "google_dataplex_asset" "lake_bucket" {
  project       = var.project_id
  location      = var.region
  lake          = google_dataplex_lake.this.name
  dataplex_zone = google_dataplex_zone.raw.name
  name          = "lake-bucket"
  labels        = var.labels

  discovery_spec {
    enabled          = true
    include_patterns = ["salesforce/**/*.parquet"]
    exclude_patterns = ["salesforce/_runs/**"]
  }

  resource_spec {
    name = "projects/${var.project_id}/buckets/${var.lake_bucket}"
    type = "STORAGE_BUCKET"
  }
}

resource "google_dataplex_asset" "datasets" {
  for_each = {
    raw     = { zone = google_dataplex_zone.raw.name, dataset = "sfpipe_raw" }
    staging = { zone = google_dataplex_zone.curated.name, dataset = "sfpipe_staging" }
    marts   = { zone = google_dataplex_zone.curated.name, dataset = "sfpipe_marts" }
  }

  project       = var.project_id
  location      = var.region
  lake          = google_dataplex_lake.this.name
  dataplex_zone = each.value.zone
  name          = "${each.key}-dataset"
  labels        = var.labels

  discovery_spec {
    enabled = false
  }

  resource_spec {
    name = "projects/${var.project_id}/datasets/${each.value.dataset}"
    type = "BIGQUERY_DATASET"
  }
}

# Created once the first load has made the table (quality_scan_enabled = true then; see
# docs/deploy.md), because a scan is validated against its table.
resource "google_dataplex_datascan" "raw_quality" {
  count = var.quality_scan_enabled ? 1 : 0

  project      = var.project_id
  location     = var.region
  data_scan_id = "${var.name_prefix}-raw-${var.quality_scan_table}"
  display_name = "sfpipe_raw.${var.quality_scan_table} quality"
  labels       = var.labels

  data {
    resource = "//bigquery.googleapis.com/projects/${var.project_id}/datasets/sfpipe_raw/tables/${var.quality_scan_table}"
  }

  execution_spec {
    trigger {
      schedule {
        cron = var.quality_scan_cron
      }
    }
  }

  data_quality_spec {
    sampling_percent = 100
    row_filter       = "NOT IsDeleted"

    rules {
      column      = "Id"
      dimension   = "COMPLETENESS"
      description = "Every record has an Id"
      non_null_expectation {}
    }

    rules {
      column      = "Id"
      dimension   = "UNIQUENESS"
      description = "The raw layer keeps one row per Id"
      uniqueness_expectation {}
    }

    rules {
      column      = "_ingested_at"
      dimension   = "COMPLETENESS"
      description = "Every row records when it was loaded"
      non_null_expectation {}
    }

    rules {
      column      = "_source"
      dimension   = "VALIDITY"
      description = "Rows come from the batch or the CDC path"
      set_expectation {
        values = ["batch", "cdc"]
      }
    }

    rules {
      dimension   = "VALIDITY"
      description = "Fresh: something was loaded in the last two days"
      threshold   = 1
      table_condition_expectation {
        sql_expression = "MAX(_ingested_at) > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 2 DAY)"
      }
    }
  }
}
