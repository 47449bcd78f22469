output "trigger_ids" {
  description = "Route name to trigger id (empty with push delivery)."
  value       = { for k, t in google_eventarc_trigger.route : k => t.id }
}
