output "topics" {
  description = "Topic name to topic id."
  value       = { for k, t in google_pubsub_topic.this : k => t.id }
}

output "subscriptions" {
  description = "Subscription name to subscription id."
  value       = { for k, s in google_pubsub_subscription.this : k => s.id }
}

output "push_routes" {
  description = "Push subscription name (from the topology) to its topic and target service."
  value       = local.push_routes
}
