// Stand-in for github.com/grafana/grafana/apps/dashboard (see ../go.mod for why).
// It declares only the v2 dashboard types that dashboard-linter's lint/v2.go names,
// and refuses to decode them, so a v2 (Kubernetes-shaped, apiVersion .../v2*)
// dashboard fails with a clear error instead of being linted wrongly. The lab's
// dashboards are classic JSON, which never reaches this code.
module github.com/grafana/grafana/apps/dashboard

go 1.26.0
