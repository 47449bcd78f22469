variable "project_id" {
  description = "Project whose spend the budget tracks."
  type        = string
}

variable "environment" {
  description = "dev, staging or prod (in the budget name)."
  type        = string
}

variable "billing_account" {
  description = "Billing account id (XXXXXX-XXXXXX-XXXXXX) the project is charged to."
  type        = string
}

variable "monthly_amount" {
  description = "Monthly budget in whole units of currency (see docs/deploy.md for the estimate per environment)."
  type        = number
}

variable "currency" {
  description = "Currency of the billing account."
  type        = string
  default     = "USD"
}

variable "thresholds" {
  description = "Shares of the budget, on actual spend, at which a notification is sent."
  type        = list(number)
  default     = [0.5, 0.9, 1.0]
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids to notify."
  type        = list(string)
  default     = []
}
