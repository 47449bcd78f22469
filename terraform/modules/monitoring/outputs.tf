output "notification_channels" {
  description = "Notification channel ids (the budget alert notifies them too)."
  value       = local.channels
}

output "alert_policies" {
  description = "Alert policy display name to id."
  value = merge(
    { (google_monitoring_alert_policy.dead_letter_backlog.display_name) = google_monitoring_alert_policy.dead_letter_backlog.id },
    { (google_monitoring_alert_policy.cdc_lag.display_name) = google_monitoring_alert_policy.cdc_lag.id },
    { for p in google_monitoring_alert_policy.failure_events : p.display_name => p.id },
  )
}
