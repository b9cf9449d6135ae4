package timeline

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gatecheck/gatecheck/reports/model"
)

// Model converts the timeline into the report's form. roles maps container names to init,
// sidecar or main; containers are listed in roles' declaration order (order), then any others.
//
// The report knows five event kinds; the lifecycle kinds map onto them as: starting -> start (a
// later run's starting -> restart), started -> ready with detail "started", ready -> ready,
// sigterm -> sigterm, exiting -> exit. Custom events have no report kind; they are attached as
// detail to the nearest preceding mapped event of the same container run, so they are not lost.
func (t *Timeline) Model(variant string, order []string, roles map[string]string) model.SidecarTimeline {
	names := append([]string(nil), order...)
	for _, c := range t.Containers() {
		if !slices.Contains(names, c) {
			names = append(names, c)
		}
	}
	out := model.SidecarTimeline{Variant: variant}
	for _, c := range names {
		ct := model.ContainerTimeline{Name: c, Role: roles[c], Events: []model.ContainerEvent{}}
		for i, run := range t.Runs(c) {
			for _, e := range run.Events {
				at := float64(e.Time.Sub(t.Origin).Microseconds()) / 1000
				var kind model.EventKind
				detail := e.Detail
				switch e.Kind {
				case KindStarting:
					kind = model.EventStart
					if i > 0 {
						kind = model.EventRestart
						detail = strings.TrimSpace(fmt.Sprintf("run %d %s", i+1, detail))
					}
				case KindStarted:
					kind, detail = model.EventReady, strings.TrimSpace("started "+detail)
				case KindReady:
					kind = model.EventReady
				case KindSigterm:
					kind = model.EventSigterm
				case KindExiting:
					kind = model.EventExit
				default:
					custom := strings.TrimSpace(e.Kind + " " + e.Detail)
					if n := len(ct.Events); n > 0 {
						ct.Events[n-1].Detail = joinDetail(ct.Events[n-1].Detail, custom)
					}
					continue
				}
				ct.Events = append(ct.Events, model.ContainerEvent{Kind: kind, TimeMs: at, Detail: detail})
			}
		}
		out.Containers = append(out.Containers, ct)
	}
	return out
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
