package proxy

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// grpcEntry is one GRPCRouteMatch of one rule.
type grpcEntry struct {
	route    *routeInfo
	rule     *grpcRule
	matchIdx int

	service, method     string         // Exact values; "" matches anything
	serviceRe, methodRe *regexp.Regexp // RegularExpression values
	slen, mlen          int            // characters of Exact values, for precedence
	sreLen, mreLen      int            // characters of RegularExpression values
	header              []valueMatch
}

func compileGRPCMatch(m ir.GRPCMatch) (grpcEntry, error) {
	var e grpcEntry
	if mm := m.Method; mm != nil {
		if mm.Type == ir.MatchRegularExpression {
			e.sreLen, e.mreLen = len(mm.Service), len(mm.Method)
			var err error
			if mm.Service != "" {
				if e.serviceRe, err = regexp.Compile("^(?:" + mm.Service + ")$"); err != nil {
					return e, err
				}
			}
			if mm.Method != "" {
				if e.methodRe, err = regexp.Compile("^(?:" + mm.Method + ")$"); err != nil {
					return e, err
				}
			}
		} else {
			e.service, e.method = mm.Service, mm.Method
			e.slen, e.mlen = len(mm.Service), len(mm.Method)
		}
	}
	var err error
	e.header, err = compileValueMatches(m.Headers, true)
	return e, err
}

// splitGRPCPath splits "/pkg.Service/Method" into service and method.
func splitGRPCPath(p string) (service, method string, ok bool) {
	if !strings.HasPrefix(p, "/") {
		return "", "", false
	}
	service, method, ok = strings.Cut(p[1:], "/")
	return service, method, ok && service != "" && method != "" && !strings.Contains(method, "/")
}

func (e *grpcEntry) matches(r *http.Request, service, method string) bool {
	switch {
	case e.serviceRe != nil && !e.serviceRe.MatchString(service):
		return false
	case e.methodRe != nil && !e.methodRe.MatchString(method):
		return false
	case e.service != "" && e.service != service:
		return false
	case e.method != "" && e.method != method:
		return false
	}
	for _, h := range e.header {
		vs, ok := r.Header[h.name]
		if !h.ok(strings.Join(vs, ","), ok) {
			return false
		}
	}
	return true
}

// grpcLess orders entries by the GRPCRoute precedence: characters in a matching service,
// characters in a matching method, number of header matches, then the route/rule ties. A
// regular expression's length says little about how much it matches, so for service and
// method an Exact value outranks any RegularExpression (as Exact outranks it for HTTP paths);
// among regular expressions the longer pattern wins.
func grpcLess(a, b *grpcEntry) bool {
	for _, k := range [][2]int{{a.slen, b.slen}, {a.sreLen, b.sreLen}, {a.mlen, b.mlen}, {a.mreLen, b.mreLen}} {
		if k[0] != k[1] {
			return k[0] > k[1]
		}
	}
	if len(a.header) != len(b.header) {
		return len(a.header) > len(b.header)
	}
	return routeTieLess(a.route, b.route, a.rule.index, b.rule.index, a.matchIdx, b.matchIdx)
}

func matchGRPC(t *hostTable[*grpcEntry], host string, r *http.Request) *grpcEntry {
	service, method, ok := splitGRPCPath(r.URL.Path)
	if !ok {
		return nil
	}
	var got *grpcEntry
	t.lookup(host, func(es []*grpcEntry) bool {
		for _, e := range es {
			if e.matches(r, service, method) {
				got = e
				return true
			}
		}
		return false
	})
	return got
}

// isGRPC reports whether r is a gRPC request (content-type application/grpc[+proto|;...]).
func isGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/grpc") && r.ProtoMajor == 2
}
