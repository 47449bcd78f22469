output "service_urls" {
  description = "Service name to Cloud Run URL."
  value       = { for name, m in module.cloud_run : name => m.uri }
}

output "service_accounts" {
  description = "Account name to email (one per service, plus the push and scheduler accounts)."
  value       = module.service_accounts.emails
}

output "registry" {
  description = "Artifact Registry prefix for skaffold's --default-repo."
  value       = module.artifact_registry.repository_url
}

output "deploy_values" {
  description = "Values deploy/cloudrun/<env>/values.env must hold for this environment (a test compares them)."
  value = {
    SFPIPE_PROJECT                  = var.project_id
    SFPIPE_REGION                   = var.region
    SFPIPE_LAKE_BUCKET              = module.storage.lake_bucket
    SFPIPE_STATE_BUCKET             = module.storage.state_bucket
    SFPIPE_DATAFLOW_TEMPLATE        = module.dataflow.template_path
    SFPIPE_DATAFORM_REPOSITORY      = module.dataform.repository_id
    SFPIPE_DATAFORM_RELEASE_CONFIG  = module.dataform.release_config
    SFPIPE_DATAFORM_SERVICE_ACCOUNT = module.dataform.runner_email
    SFPIPE_EXTRACTOR_AUDIENCE       = module.cloud_run["extractor"].uri
    SFPIPE_SF_LOGIN_URL             = var.salesforce_login_url != "" ? var.salesforce_login_url : module.cloud_run["simulator"].uri
  }
}

output "build_service_account" {
  description = "Email of this environment's build account."
  value       = module.delivery.build_service_account_email
}
