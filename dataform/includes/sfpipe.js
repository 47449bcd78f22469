// Helpers shared by every model: the as_of date, the dataset names, and the few expressions
// whose rules must be identical wherever they appear (status, money, percentages).

const vars = dataform.projectConfig.vars;

const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

function datasetVar(name) {
  const value = vars[name];
  if (!value || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) {
    throw new Error(`compile var ${name} must be a dataset name, got ${JSON.stringify(value)}`);
  }
  return value;
}

const RAW = datasetVar("raw_dataset");
const STAGING = datasetVar("staging_dataset");
const MARTS = datasetVar("marts_dataset");

// The date the model is computed "as of", as a BigQuery DATE expression.
function asOf() {
  const value = vars.as_of || "";
  if (value === "") {
    return "CURRENT_DATE()";
  }
  if (!DATE_PATTERN.test(value) || isNaN(Date.parse(value))) {
    throw new Error(`compile var as_of must be a date as YYYY-MM-DD, got ${JSON.stringify(value)}`);
  }
  return `DATE '${value}'`;
}

// Rows that Salesforce deleted (recycle bin or hard delete) are dropped in staging.
function notDeleted(hasIsDeleted = true) {
  const hard = "NOT COALESCE(_hard_deleted, FALSE)";
  return hasIsDeleted ? `NOT COALESCE(IsDeleted, FALSE) AND ${hard}` : hard;
}

// dbt_salesforce's opportunity status, with NULL flags read as FALSE.
function opportunityStatus(alias = "") {
  const p = alias ? `${alias}.` : "";
  return `CASE
      WHEN COALESCE(${p}is_won, FALSE) THEN 'Won'
      WHEN COALESCE(${p}is_closed, FALSE) THEN 'Lost'
      WHEN LOWER(${p}forecast_category) IN ('pipeline', 'forecast', 'bestcase') THEN 'Pipeline'
      ELSE 'Other'
    END`;
}

// Money and averages: NUMERIC rounded to cents, so that BigQuery and the local warehouse agree
// to the last digit.
function round2(expr) {
  return `ROUND(CAST(${expr} AS NUMERIC), 2)`;
}

// Sum of money that is 0 (not NULL) when there is nothing to add.
function sumMoney(expr) {
  return round2(`COALESCE(SUM(${expr}), 0)`);
}

// Sum of counts that is 0 (not NULL) when there is nothing to add, and INT64 on every
// warehouse (DuckDB widens integer sums to 128 bits).
function sumCount(expr) {
  return `CAST(COALESCE(SUM(${expr}), 0) AS INT64)`;
}

// Amount weighted by its probability (0–100), as NUMERIC.
function forecast(amount, probability) {
  return `${amount} * CAST(${probability} / 100 AS NUMERIC)`;
}

// Won amount over won + lost amount, in percent; NULL when nothing was won or lost.
function winPercent(won, lost) {
  const w = `COALESCE(${won}, 0)`;
  const l = `COALESCE(${lost}, 0)`;
  return `ROUND(CAST(SAFE_DIVIDE(100 * ${w}, ${w} + ${l}) AS NUMERIC), 2)`;
}

// A percentage column is NULL or within [0, 100].
function percentCondition(column) {
  return `${column} IS NULL OR ${column} BETWEEN 0 AND 100`;
}

module.exports = {
  RAW,
  STAGING,
  MARTS,
  asOf,
  notDeleted,
  opportunityStatus,
  round2,
  sumMoney,
  sumCount,
  forecast,
  winPercent,
  percentCondition,
};
