// The raw layer that the loader and the CDC pipeline maintain (one row per Id, Salesforce API
// field names; see required_raw_columns.yaml for the columns this project reads).
const RAW_TABLES = [
  ["account", "Account: current state of each record."],
  ["contact", "Contact: current state of each record."],
  ["event", "Event: current state of each record."],
  ["lead", "Lead: current state of each record."],
  ["opportunity", "Opportunity: current state of each record."],
  ["opportunitylineitem", "OpportunityLineItem: current state of each record."],
  ["order", "Order: current state of each record."],
  ["product2", "Product2: current state of each record."],
  ["task", "Task: current state of each record."],
  ["user", "User: current state of each record."],
  ["userrole", "UserRole: current state of each record."],
  ["campaign", "Campaign: current state of each record."],
  ["opportunity__changes", "Opportunity: every version ever loaded (append-only), with _source_file."],
];

RAW_TABLES.forEach(([name, description]) =>
  declare({
    schema: sfpipe.RAW,
    name,
    description,
  })
);
