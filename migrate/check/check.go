// Package check sends the same requests through an Ingress and through the Gateway API
// objects that replace it and compares the answers: status, which backend answered, the path
// the backend saw, the redirect Location. The requests come from the Ingress rules (hosts x
// paths x canary headers, over HTTP and, for TLS hosts, HTTPS) plus near-misses: trailing
// slashes, another case, prefixes that must not match, unknown hosts. Canary weights are
// compared separately, with the verdict engine (Splits).
package check

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/gatecheck/gatecheck/verdict"
)

const nginx = "nginx.ingress.kubernetes.io/"

// Request is one request of the matrix.
type Request struct {
	Scheme string            `json:"scheme"`
	Host   string            `json:"host"`
	Path   string            `json:"path"`
	Header map[string]string `json:"header,omitempty"`
	// Why says where it comes from: "rule", or the near-miss it is.
	Why string `json:"why"`
}

func (r Request) String() string {
	s := fmt.Sprintf("GET %s://%s%s", r.Scheme, r.Host, r.Path)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s += fmt.Sprintf(" [%s: %s]", k, r.Header[k])
	}
	return s + " (" + r.Why + ")"
}

// Answer is what came back.
type Answer struct {
	Status   int    `json:"status,omitempty"`
	Backend  string `json:"backend,omitempty"`
	Path     string `json:"path,omitempty"` // as the backend saw it
	Location string `json:"location,omitempty"`
	Err      string `json:"error,omitempty"`
}

func (a Answer) String() string {
	if a.Err != "" {
		return "error: " + a.Err
	}
	s := strconv.Itoa(a.Status)
	if a.Backend != "" {
		s += " from " + a.Backend + " path " + a.Path
	}
	if a.Location != "" {
		s += " -> " + a.Location
	}
	return s
}

// Split is a canary weight split the Ingresses declare on one host and path.
type Split struct {
	Scheme   string            `json:"scheme"`
	Host     string            `json:"host"`
	Path     string            `json:"path"`
	Backends []verdict.Backend `json:"backends"`
}

// Plan is what to send.
type Plan struct {
	Requests []Request
	Splits   []Split
	// Skipped lists rule paths that cannot be turned into requests (regular expressions).
	Skipped []string
}

type canaryInfo struct {
	service  string
	weight   int32
	total    int32
	header   string
	value    string
	hasSplit bool
}

// Matrix derives the requests from the Ingresses (canaries included).
func Matrix(ings []*networkingv1.Ingress) Plan {
	var p Plan
	seen := map[string]bool{}
	add := func(r Request) {
		k := r.String()
		k = k[:strings.LastIndex(k, " (")]
		if !seen[k] {
			seen[k] = true
			p.Requests = append(p.Requests, r)
		}
	}
	tlsHosts := map[string]bool{}
	canaries := map[string]canaryInfo{} // host|path
	for _, ing := range ings {
		for _, t := range ing.Spec.TLS {
			for _, h := range t.Hosts {
				tlsHosts[h] = true
			}
		}
		a := ing.Annotations
		if a[nginx+"canary"] != "true" {
			continue
		}
		ci := canaryInfo{total: 100, header: a[nginx+"canary-by-header"], value: a[nginx+"canary-by-header-value"]}
		if n, err := strconv.Atoi(a[nginx+"canary-weight-total"]); err == nil && n > 0 {
			ci.total = int32(n)
		}
		if n, err := strconv.Atoi(a[nginx+"canary-weight"]); err == nil {
			ci.weight, ci.hasSplit = int32(n), true
		}
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, path := range r.HTTP.Paths {
				if path.Backend.Service != nil {
					c := ci
					c.service = path.Backend.Service.Name
					canaries[r.Host+"|"+trim(path.Path)] = c
				}
			}
		}
	}
	schemes := func(host string) []string {
		if tlsHosts[host] {
			return []string{"http", "https"}
		}
		return []string{"http"}
	}
	for _, ing := range ings {
		if ing.Annotations[nginx+"canary"] == "true" {
			continue
		}
		regex := ing.Annotations[nginx+"use-regex"] == "true"
		if ing.Spec.DefaultBackend != nil {
			add(Request{Scheme: "http", Host: "unknown-host.invalid", Path: "/", Why: "no rule's host: default backend"})
			add(Request{Scheme: "http", Host: "unknown-host.invalid", Path: "/some/path", Why: "no rule's host: default backend"})
		}
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			host := cmp.Or(r.Host, "any-host.invalid")
			for _, sch := range schemes(r.Host) {
				add(Request{Scheme: sch, Host: host, Path: "/gatecheck-no-such-path", Why: "near-miss: path no rule has"})
				if r.Host != "" {
					add(Request{Scheme: sch, Host: strings.ToUpper(host), Path: "/", Why: "near-miss: host in upper case"})
				}
			}
			if r.Host != "" && !strings.HasPrefix(r.Host, "*") {
				add(Request{Scheme: "http", Host: "other-" + r.Host, Path: "/", Why: "near-miss: a host no rule has"})
			}
			for _, path := range r.HTTP.Paths {
				pt := networkingv1.PathTypePrefix
				if path.PathType != nil {
					pt = *path.PathType
				}
				if regex && pt == networkingv1.PathTypeImplementationSpecific {
					p.Skipped = append(p.Skipped, fmt.Sprintf("Ingress %s/%s host %q path %q: a regular expression, no request derived", ing.Namespace, ing.Name, r.Host, path.Path))
					continue
				}
				base := trim(path.Path)
				var hs []map[string]string
				hs = append(hs, nil)
				ci, isCanary := canaries[r.Host+"|"+base]
				if isCanary && ci.header != "" {
					if ci.value != "" {
						hs = append(hs, map[string]string{ci.header: ci.value}, map[string]string{ci.header: ci.value + "-not"})
					} else {
						hs = append(hs, map[string]string{ci.header: "always"}, map[string]string{ci.header: "never"})
					}
				}
				if isCanary && ci.hasSplit && path.Backend.Service != nil {
					// Over HTTPS for a TLS host (its HTTP requests are redirected by default).
					sch := schemes(r.Host)[len(schemes(r.Host))-1]
					{
						p.Splits = append(p.Splits, Split{Scheme: sch, Host: host, Path: joinPath(base, "gatecheck-split"), Backends: []verdict.Backend{
							{Name: path.Backend.Service.Name, Weight: float64(ci.total - ci.weight)},
							{Name: ci.service, Weight: float64(ci.weight)},
						}})
					}
				}
				for _, sch := range schemes(r.Host) {
					for _, h := range hs {
						add(Request{Scheme: sch, Host: host, Path: base, Header: h, Why: "rule path"})
						add(Request{Scheme: sch, Host: host, Path: joinPath(base, "sub/page"), Header: h, Why: "below the rule path"})
						if base != "/" {
							add(Request{Scheme: sch, Host: host, Path: base + "/", Header: h, Why: "near-miss: trailing slash"})
							add(Request{Scheme: sch, Host: host, Path: base + "x", Header: h, Why: "near-miss: the path as a string prefix"})
							if up := strings.ToUpper(base); up != base {
								add(Request{Scheme: sch, Host: host, Path: up, Header: h, Why: "near-miss: path in upper case"})
							}
						}
					}
				}
			}
		}
	}
	return p
}

func trim(p string) string {
	if p == "" {
		return "/"
	}
	if len(p) > 1 {
		return strings.TrimSuffix(p, "/")
	}
	return p
}

func joinPath(base, rest string) string {
	return strings.TrimSuffix(base, "/") + "/" + rest
}

// Target is where one side is reached: the address (IP or host name) whose port 80 serves
// HTTP and 443 HTTPS, or explicit host:port pairs.
type Target struct {
	HTTP, HTTPS string
	Timeout     time.Duration
}

// TargetAt is the Target of an address on the usual ports.
func TargetAt(addr string) Target {
	return Target{HTTP: net.JoinHostPort(addr, "80"), HTTPS: net.JoinHostPort(addr, "443")}
}

// URL is where a request of this scheme goes.
func (t Target) URL(scheme, path string) string {
	if scheme == "https" {
		return "https://" + t.HTTPS + path
	}
	return "http://" + t.HTTP + path
}

// Do sends one request (no redirects followed, any certificate accepted, SNI = Host).
func (t Target) Do(ctx context.Context, r Request) Answer {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: strings.ToLower(r.Host)}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: cmp.Or(t.Timeout, 10*time.Second), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL(r.Scheme, r.Path), nil)
	if err != nil {
		return Answer{Err: err.Error()}
	}
	req.Host = r.Host
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return Answer{Err: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	a := Answer{Status: resp.StatusCode, Location: resp.Header.Get("Location")}
	var echo struct {
		Backend string `json:"backend"`
		Path    string `json:"path"`
	}
	if json.Unmarshal(body, &echo) == nil {
		a.Backend, a.Path = echo.Backend, echo.Path
	}
	return a
}

// Row is one request through both.
type Row struct {
	Request Request `json:"request"`
	Ingress Answer  `json:"ingress"`
	Gateway Answer  `json:"gateway"`
	// Diff says how the answers differ; empty when they agree.
	Diff string `json:"diff,omitempty"`
}

// Compare says how two answers differ ("" when they agree). Backends of one canary split
// agree with each other: which one answers a single request is the split's business,
// checked by the Splits.
func Compare(a, b Answer, splits []Split) string {
	var d []string
	if a.Err != "" || b.Err != "" {
		if a.Err != "" && b.Err != "" {
			return ""
		}
		return "one side failed"
	}
	if a.Status != b.Status {
		d = append(d, fmt.Sprintf("status %d vs %d", a.Status, b.Status))
	}
	if a.Backend != b.Backend && !sameSplit(a.Backend, b.Backend, splits) {
		d = append(d, fmt.Sprintf("backend %q vs %q", a.Backend, b.Backend))
	}
	if a.Path != b.Path {
		d = append(d, fmt.Sprintf("backend saw path %q vs %q", a.Path, b.Path))
	}
	if a.Location != b.Location {
		d = append(d, fmt.Sprintf("Location %q vs %q", a.Location, b.Location))
	}
	return strings.Join(d, "; ")
}

func sameSplit(a, b string, splits []Split) bool {
	for _, s := range splits {
		in := func(n string) bool {
			return slices.ContainsFunc(s.Backends, func(x verdict.Backend) bool { return x.Name == n && x.Weight > 0 })
		}
		if in(a) && in(b) {
			return true
		}
	}
	return false
}

// Result is the comparison of every request.
type Result struct {
	Rows []Row `json:"rows"`
	// Differing counts rows with a Diff; First is the first of them (nil when none).
	Differing int  `json:"differing"`
	First     *Row `json:"first,omitempty"`
}

// Run sends every request of plan to both targets, in order, and compares.
func Run(ctx context.Context, plan Plan, ingress, gateway Target) Result {
	var res Result
	for _, r := range plan.Requests {
		row := Row{Request: r, Ingress: ingress.Do(ctx, r), Gateway: gateway.Do(ctx, r)}
		row.Diff = Compare(row.Ingress, row.Gateway, plan.Splits)
		res.Rows = append(res.Rows, row)
		if row.Diff != "" {
			res.Differing++
			if res.First == nil {
				res.First = &res.Rows[len(res.Rows)-1]
			}
		}
	}
	if res.First != nil {
		// Rows may have moved while appending.
		for i := range res.Rows {
			if res.Rows[i].Diff != "" {
				res.First = &res.Rows[i]
				break
			}
		}
	}
	return res
}

// Table is the side-by-side text of a result: every row, the differing ones marked.
func (r Result) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-3s %-70s | %-45s | %-45s\n", "", "request", "through the Ingress", "through the Gateway")
	for _, row := range r.Rows {
		mark := "ok"
		if row.Diff != "" {
			mark = "XX"
		}
		fmt.Fprintf(&b, "%-3s %-70s | %-45s | %-45s\n", mark, row.Request, row.Ingress, row.Gateway)
	}
	fmt.Fprintf(&b, "%d request(s), %d differ\n", len(r.Rows), r.Differing)
	if r.First != nil {
		fmt.Fprintf(&b, "first differing request: %s\n  through the Ingress: %s\n  through the Gateway: %s\n  difference: %s\n", r.First.Request, r.First.Ingress, r.First.Gateway, r.First.Diff)
	}
	return b.String()
}
