# Terraform owns what a service is allowed to do and who may call it: its identity,
# ingress, scaling bounds and invokers. What runs in it (image, environment, secrets) is
# deployed by skaffold from deploy/cloudrun (docs/adr/0053), so the revision template is
# created once here and left to the deploys afterwards.
resource "google_cloud_run_v2_service" "this" {
  project             = var.project_id
  location            = var.region
  name                = "${var.name_prefix}-${var.name}"
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = merge(var.labels, { sfpipe-service = var.name })

  template {
    service_account                  = var.service_account_email
    timeout                          = "${var.request_timeout_seconds}s"
    max_instance_request_concurrency = var.concurrency
    labels                           = merge(var.labels, { sfpipe-service = var.name })

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      image = var.bootstrap_image

      ports {
        container_port = var.port
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = !var.always_on
        startup_cpu_boost = true
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template,
      client,
      client_version,
    ]
  }
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = toset(var.invokers)

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = each.value
}
