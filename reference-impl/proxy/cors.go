package proxy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// cors applies a CORS filter (HTTPRouteCORS). A request without an Origin header is not a
// CORS request and passes untouched. A preflight (OPTIONS with
// Access-Control-Request-Method) is answered here with 204: with the CORS headers when its
// origin is allowed, without them otherwise (the browser then refuses the real request). Any
// other request from an allowed origin goes on to the backend, and its answer gets
// Access-Control-Allow-Origin, -Allow-Credentials and -Expose-Headers. It reports whether it
// answered the request.
func (p *Proxy) cors(w http.ResponseWriter, st *reqState, c *ir.CORS, f *forward) bool {
	origin := st.r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	allowed := corsOriginAllowed(c.AllowOrigins, origin)
	reqMethod := st.r.Header.Get("Access-Control-Request-Method")
	if st.r.Method != http.MethodOptions || reqMethod == "" {
		if allowed {
			set, vary := corsOrigin(c, origin)
			if len(c.ExposeHeaders) > 0 {
				set = append(set, ir.Header{Name: "Access-Control-Expose-Headers", Value: strings.Join(c.ExposeHeaders, ", ")})
			}
			f.respMods = append(f.respMods, &ir.HeaderModifier{Set: set, Add: vary})
		}
		return false
	}
	h := w.Header()
	for _, m := range f.respMods {
		applyHeaderModifier(h, m)
	}
	if allowed {
		set, vary := corsOrigin(c, origin)
		methods := strings.Join(c.AllowMethods, ", ")
		if slices.Contains(c.AllowMethods, "*") {
			methods = reqMethod // "*" is no wildcard for requests with credentials: name it
		}
		set = append(set, ir.Header{Name: "Access-Control-Allow-Methods", Value: methods})
		headers := strings.Join(c.AllowHeaders, ", ")
		if slices.Contains(c.AllowHeaders, "*") {
			headers = st.r.Header.Get("Access-Control-Request-Headers")
		}
		if headers != "" {
			set = append(set, ir.Header{Name: "Access-Control-Allow-Headers", Value: headers})
		}
		if len(c.ExposeHeaders) > 0 {
			set = append(set, ir.Header{Name: "Access-Control-Expose-Headers", Value: strings.Join(c.ExposeHeaders, ", ")})
		}
		if c.MaxAge > 0 {
			set = append(set, ir.Header{Name: "Access-Control-Max-Age", Value: strconv.Itoa(int(c.MaxAge))})
		}
		applyHeaderModifier(h, &ir.HeaderModifier{Set: set, Add: vary})
	}
	w.WriteHeader(http.StatusNoContent)
	p.metrics.request(f.route, "", http.StatusNoContent)
	return true
}

// corsOrigin is Access-Control-Allow-Origin (and -Allow-Credentials) for an allowed origin:
// "*" when any origin is allowed and no credentials are, else the origin itself, and then
// Vary: Origin, since the answer depends on it.
func corsOrigin(c *ir.CORS, origin string) (set, vary []ir.Header) {
	if !c.AllowCredentials && slices.Contains(c.AllowOrigins, "*") {
		return []ir.Header{{Name: "Access-Control-Allow-Origin", Value: "*"}}, nil
	}
	set = []ir.Header{{Name: "Access-Control-Allow-Origin", Value: origin}}
	if c.AllowCredentials {
		set = append(set, ir.Header{Name: "Access-Control-Allow-Credentials", Value: "true"})
	}
	return set, []ir.Header{{Name: "Vary", Value: "Origin"}}
}

// corsOriginAllowed matches an Origin against allowOrigins: "*", an exact origin (ASCII case
// ignored), or a pattern with one "*" standing for any text without "/" (so
// "https://*.example.com" allows "https://a.b.example.com" but not "http://a.example.com"
// or "https://a.example.com:8443").
func corsOriginAllowed(allow []string, origin string) bool {
	for _, a := range allow {
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
		pre, suf, ok := strings.Cut(a, "*")
		if !ok || len(origin) < len(pre)+len(suf)+1 {
			continue
		}
		o := strings.ToLower(origin)
		if strings.HasPrefix(o, strings.ToLower(pre)) && strings.HasSuffix(o, strings.ToLower(suf)) &&
			!strings.Contains(o[len(pre):len(o)-len(suf)], "/") {
			return true
		}
	}
	return false
}
