# pint (cloudflare's Prometheus rule linter) configuration; LAB_PINT_VERSION in .env.
# Offline:  pint --offline lint prometheus/        (`make test-alerts`)
# Live:     tests/alerts/test_pint.py adds a `prometheus` block pointing at the test
#           stack's Prometheus, so pint also checks that every series exists there,
#           rate windows fit the scrape interval, and vector matching lines up.
# Only the rule files: prometheus.yml, promtool tests and file_sd targets are not rules.
parser {
  include = ["prometheus/(alerts|rules)/.+[.]rules[.]yml"]
}

# House style (docs/runbooks/README.md): every alert has a severity, a one-sentence
# summary, a templated description and a runbook in docs/runbooks/.
rule {
  match {
    kind = "alerting"
  }
  label "severity" {
    severity = "bug"
    value    = "(none|info|warning|critical)"
    required = true
  }
  annotation "summary" {
    severity = "bug"
    value    = "[A-Z][^\n]*[.]"
    required = true
  }
  annotation "description" {
    severity = "bug"
    required = true
  }
  # <LAB_RUNBOOK_BASE of .env>/MLLab<Name>.md, written by `make runbook-links` (lab/dev/runbook_links.py).
  annotation "runbook_url" {
    severity = "bug"
    value    = "docs/runbooks/MLLab[A-Za-z]+[.]md"
    required = true
  }
}
