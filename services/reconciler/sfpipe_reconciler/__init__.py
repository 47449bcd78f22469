"""sfpipe reconciler: proves the raw layer equals Salesforce, and repairs it where it does not."""
