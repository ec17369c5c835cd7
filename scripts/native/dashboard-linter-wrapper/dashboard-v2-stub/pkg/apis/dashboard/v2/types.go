// Package v2 stands in for Grafana's generated v2 dashboard types, which the Go
// module proxy refuses to serve at the version dashboard-linter v0.2.0 requires.
// Only the names dashboard-linter's v2 adapter uses exist here; decoding a v2 spec
// always fails (see DashboardSpec.UnmarshalJSON).
package v2

import "errors"

// ErrV2Unsupported is returned for every v2 dashboard: this build lints classic JSON only.
var ErrV2Unsupported = errors.New("v2 dashboards are not supported by this dashboard-linter build " +
	"(github.com/grafana/grafana/apps/dashboard is replaced by a stub; see scripts/native/dashboard-linter-wrapper)")

type DashboardSpec struct {
	Title       string
	Editable    *bool
	Elements    map[string]DashboardElement
	Variables   []DashboardVariableKind
	Annotations []DashboardAnnotationQueryKind
}

// UnmarshalJSON refuses v2 specs (see ErrV2Unsupported).
func (*DashboardSpec) UnmarshalJSON([]byte) error { return ErrV2Unsupported }

type DashboardElement struct{ PanelKind *DashboardPanelKind }

type DashboardPanelKind struct{ Spec DashboardPanelSpec }

type DashboardPanelSpec struct {
	Id          float64
	Title       string
	Description string
	VizConfig   struct {
		Group string
		Spec  struct {
			FieldConfig map[string]interface{}
			Options     map[string]interface{}
		}
	}
	Data struct {
		Spec struct{ Queries []DashboardPanelQueryKind }
	}
}

type DashboardPanelQueryKind struct {
	Spec struct {
		RefId  string
		Hidden bool
		Query  DashboardDataQueryKind
	}
}

type DashboardDataQueryKind struct {
	Group      string
	Datasource *struct{ Name *string }
	Spec       map[string]interface{}
}

type DashboardVariableRefresh string

const (
	DashboardVariableRefreshNever              DashboardVariableRefresh = "never"
	DashboardVariableRefreshOnDashboardLoad    DashboardVariableRefresh = "onDashboardLoad"
	DashboardVariableRefreshOnTimeRangeChanged DashboardVariableRefresh = "onTimeRangeChanged"
)

type variableSpec struct {
	Name     string
	Label    *string
	Multi    bool
	AllValue *string
	Refresh  DashboardVariableRefresh
	Query    string
}

type DashboardVariableKind struct {
	QueryVariableKind *struct {
		Spec struct {
			Name     string
			Label    *string
			Multi    bool
			AllValue *string
			Refresh  DashboardVariableRefresh
			Query    DashboardDataQueryKind
		}
	}
	DatasourceVariableKind *struct {
		Spec struct {
			Name     string
			Label    *string
			Multi    bool
			AllValue *string
			Refresh  DashboardVariableRefresh
			PluginId string
		}
	}
	CustomVariableKind   *struct{ Spec variableSpec }
	IntervalVariableKind *struct{ Spec variableSpec }
	ConstantVariableKind *struct{ Spec variableSpec }
	TextVariableKind     *struct{ Spec variableSpec }
	AdhocVariableKind    *struct{ Spec variableSpec }
	GroupByVariableKind  *struct{ Spec variableSpec }
	SwitchVariableKind   *struct{ Spec variableSpec }
}

type DashboardAnnotationQueryKind struct {
	Spec struct {
		Name  string
		Query DashboardDataQueryKind
	}
}
