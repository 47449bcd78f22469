# One environment of sfpipe. The three roots (dev, staging, prod) hold the same file and
# differ only in terraform.tfvars and the state prefix: a test keeps their modules equal.

locals {
  # The same topology file the devstack applies to the Pub/Sub emulator (DESIGN.md §5).
  topology = yamldecode(file("${path.root}/../../../libs/sfpipe/topology.yaml"))

  lake_bucket     = "${var.project_id}-sfpipe-lake"
  state_bucket    = "${var.project_id}-sfpipe-state"
  dataflow_bucket = "${var.project_id}-sfpipe-dataflow"

  labels = {
    app         = "sfpipe"
    environment = var.environment
  }

  push_targets = distinct(flatten([
    for t in local.topology.topics : [
      for s in lookup(t, "subscriptions", []) : s.push if lookup(s, "push", null) != null
    ]
  ]))

  # The event types each service publishes; topics come from the topology by event type.
  emits = {
    extractor     = ["sfpipe.extract.completed"]
    loader        = ["sfpipe.load.completed", "sfpipe.load.failed"]
    transform     = ["sfpipe.transform.completed", "sfpipe.transform.failed"]
    reconciler    = ["sfpipe.reconcile.alert"]
    quality       = ["sfpipe.quality.completed", "sfpipe.quality.alert"]
    cdc-publisher = ["sfpipe.cdc.change"]
  }

  sa = module.service_accounts.members

  topic_publishers = {
    for t in local.topology.topics : t.name => [
      for svc, types in local.emits : local.sa[svc]
      if contains(types, lookup(t, "event_type", "")) && contains(keys(var.services), svc)
    ] if length([for svc, types in local.emits : svc if contains(types, lookup(t, "event_type", ""))]) > 0
  }

  all_subscriptions = flatten([for t in local.topology.topics : [for s in lookup(t, "subscriptions", []) : s.name]])

  subscription_subscribers = merge(
    # The dashboard reads the ops and alerts subscriptions (pull).
    {
      for name in local.all_subscriptions : name => [local.sa["dashboard"]]
      if(endswith(name, "-ops") || endswith(name, "-alerts")) && contains(keys(var.services), "dashboard")
    },
    # The CDC streaming pipeline runs on Dataflow as the worker account.
    { "cdc-stream" = [module.dataflow.worker_member] },
  )

  service_invokers = merge(
    { extractor = [local.sa["scheduler"]] },
    { for name in local.push_targets : name => [local.sa["push-${name}"]] },
  )

  bigquery_job_users = concat(
    [for name in keys(var.services) : local.sa[name] if name != "simulator"],
    [module.dataflow.worker_member, module.dataform.runner_member],
  )
}

module "project_services" {
  source = "../../modules/project_services"

  project_id = var.project_id
}

module "service_accounts" {
  source = "../../modules/service_accounts"

  project_id = var.project_id
  accounts = merge(
    { for name, s in var.services : name => "Cloud Run service ${name}: ${s.description}" },
    { for name in local.push_targets : "push-${name}" => "Delivers events to ${name} (OIDC of Pub/Sub push or Eventarc)" },
    { scheduler = "Cloud Scheduler: POST /runs on the extractor" },
  )

  depends_on = [module.project_services]
}

module "storage" {
  source = "../../modules/storage"

  project_id          = var.project_id
  location            = var.region
  lake_bucket_name    = local.lake_bucket
  state_bucket_name   = local.state_bucket
  lake_retention_days = var.lake_retention_days
  force_destroy       = var.force_destroy
  labels              = local.labels

  lake_iam = {
    "roles/storage.objectUser"   = [local.sa["extractor"], local.sa["quality"], local.sa["reconciler"]]
    "roles/storage.objectViewer" = [local.sa["loader"], module.dataflow.worker_member]
  }
  state_iam = {
    "roles/storage.objectUser"   = [local.sa["extractor"], local.sa["cdc-publisher"]]
    "roles/storage.objectViewer" = [local.sa["reconciler"]]
  }
}

module "bigquery" {
  source = "../../modules/bigquery"

  project_id                 = var.project_id
  location                   = var.region
  delete_contents_on_destroy = var.force_destroy
  labels                     = local.labels

  dataset_iam = {
    sfpipe_raw = {
      "roles/bigquery.dataEditor" = [local.sa["loader"], module.dataflow.worker_member]
      "roles/bigquery.dataViewer" = [local.sa["quality"], local.sa["dashboard"], local.sa["extractor"], local.sa["reconciler"], module.dataform.runner_member]
    }
    sfpipe_staging = {
      "roles/bigquery.dataEditor" = [module.dataform.runner_member]
      "roles/bigquery.dataViewer" = [local.sa["quality"], local.sa["dashboard"]]
    }
    sfpipe_marts = {
      "roles/bigquery.dataEditor" = [module.dataform.runner_member]
      "roles/bigquery.dataViewer" = [local.sa["quality"], local.sa["dashboard"]]
    }
    sfpipe_assertions = {
      "roles/bigquery.dataEditor" = [module.dataform.runner_member]
      "roles/bigquery.dataViewer" = [local.sa["quality"], local.sa["transform"], local.sa["dashboard"]]
    }
    sfpipe_ops = {
      "roles/bigquery.dataEditor" = [
        local.sa["extractor"], local.sa["loader"], local.sa["transform"], local.sa["quality"],
        local.sa["cdc-publisher"], local.sa["reconciler"], module.dataflow.worker_member,
      ]
      "roles/bigquery.dataViewer" = [local.sa["dashboard"]]
    }
  }
}

# Running a query is a project-level permission (jobs belong to the project); what a job
# may read or write is still decided by the dataset grants above.
resource "google_project_iam_member" "bigquery_job_user" {
  for_each = toset(local.bigquery_job_users)

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = each.value
}

module "pubsub" {
  source = "../../modules/pubsub"

  project_id               = var.project_id
  topology                 = local.topology
  delivery                 = var.delivery
  lake_bucket              = module.storage.lake_bucket
  push_endpoints           = { for name in local.push_targets : name => module.cloud_run[name].uri }
  push_service_accounts    = { for name in local.push_targets : name => module.service_accounts.emails["push-${name}"] }
  topic_publishers         = local.topic_publishers
  subscription_subscribers = local.subscription_subscribers
  labels                   = local.labels
}

module "eventarc" {
  source = "../../modules/eventarc"

  project_id               = var.project_id
  region                   = var.region
  delivery                 = var.delivery
  routes                   = module.pubsub.push_routes
  topics                   = module.pubsub.topics
  cloud_run_services       = { for name in local.push_targets : name => module.cloud_run[name].name }
  invoker_service_accounts = { for name in local.push_targets : name => module.service_accounts.emails["push-${name}"] }
  labels                   = local.labels
}

module "artifact_registry" {
  source = "../../modules/artifact_registry"

  project_id = var.project_id
  region     = var.region
  readers    = concat([module.dataflow.worker_member], var.registry_readers)
  writers    = [module.delivery.build_member]
  labels     = local.labels

  depends_on = [module.project_services]
}

module "secrets" {
  source = "../../modules/secrets"

  project_id        = var.project_id
  replica_locations = [var.region]
  labels            = local.labels

  secrets = {
    sfpipe-sf-client-id = {
      description = "Salesforce connected app consumer key (SFPIPE_SF_CLIENT_ID)"
      accessors   = [local.sa["extractor"], local.sa["cdc-publisher"], local.sa["reconciler"]]
    }
    sfpipe-sf-client-secret = {
      description = "Salesforce connected app consumer secret (SFPIPE_SF_CLIENT_SECRET)"
      accessors   = [local.sa["extractor"], local.sa["cdc-publisher"], local.sa["reconciler"]]
    }
    sfpipe-dataform-git-token = {
      description = "Git access token Dataform uses to read the repository"
      accessors   = []
    }
  }

  depends_on = [module.project_services]
}

module "cloud_run" {
  source   = "../../modules/cloud_run_service"
  for_each = var.services

  project_id            = var.project_id
  region                = var.region
  name                  = each.key
  service_account_email = module.service_accounts.emails[each.key]
  port                  = each.value.port
  ingress               = each.value.ingress
  deletion_protection   = var.deletion_protection
  invokers              = concat(each.value.invokers, lookup(local.service_invokers, each.key, []))
  labels                = local.labels

  depends_on = [module.project_services]
}

module "scheduler" {
  source = "../../modules/scheduler"

  project_id            = var.project_id
  region                = var.region
  extractor_uri         = module.cloud_run["extractor"].uri
  service_account_email = module.service_accounts.emails["scheduler"]
  jobs                  = var.extract_schedules
  paused                = var.scheduler_paused
}

module "dataflow" {
  source = "../../modules/dataflow"

  project_id    = var.project_id
  region        = var.region
  bucket_name   = local.dataflow_bucket
  launchers     = [local.sa["loader"]]
  force_destroy = var.force_destroy
  labels        = local.labels

  depends_on = [module.project_services]
}

module "dataform" {
  source = "../../modules/dataform"

  project_id        = var.project_id
  region            = var.region
  bigquery_location = var.region
  environment       = var.environment
  git_url           = var.dataform_git_url
  git_branch        = var.dataform_git_commitish
  git_commitish     = var.dataform_git_commitish
  git_token_secret  = module.secrets.secret_ids["sfpipe-dataform-git-token"]
  invokers          = [local.sa["transform"]]
  labels            = local.labels
}

module "dataplex" {
  source = "../../modules/dataplex"

  project_id           = var.project_id
  region               = var.region
  environment          = var.environment
  lake_bucket          = module.storage.lake_bucket
  quality_scan_enabled = var.quality_scan_enabled
  labels               = local.labels

  depends_on = [module.bigquery]
}

module "monitoring" {
  source = "../../modules/monitoring"

  project_id                = var.project_id
  environment               = var.environment
  alert_emails              = var.alert_emails
  max_delivery_attempts     = lookup(lookup(local.topology, "defaults", {}), "max_delivery_attempts", 5)
  cdc_lag_threshold_seconds = var.cdc_lag_threshold_seconds
  labels                    = local.labels

  depends_on = [module.project_services]
}

module "budget" {
  source = "../../modules/budget"

  project_id            = var.project_id
  environment           = var.environment
  billing_account       = var.billing_account
  monthly_amount        = var.monthly_budget
  notification_channels = module.monitoring.notification_channels
}

module "delivery" {
  source = "../../modules/delivery"

  project_id               = var.project_id
  region                   = var.region
  environment              = var.environment
  github_owner             = var.github_owner
  github_repository        = var.github_repository
  branch_pattern           = var.build_branch_pattern
  tag_pattern              = var.build_tag_pattern
  approval_required        = var.build_approval_required
  repository_url           = "${var.region}-docker.pkg.dev/${var.project_id}/sfpipe"
  promote_from_repository  = var.promote_from_repository
  cloud_run_services       = [for m in module.cloud_run : m.name]
  runtime_service_accounts = { for name in keys(var.services) : name => module.service_accounts.emails[name] }
}
