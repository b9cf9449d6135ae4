package proxy

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// applyHeaderModifier applies set, then add, then remove, to h.
func applyHeaderModifier(h http.Header, m *ir.HeaderModifier) {
	for _, x := range m.Set {
		h.Set(x.Name, x.Value)
	}
	for _, x := range m.Add {
		h.Add(x.Name, x.Value)
	}
	for _, name := range m.Remove {
		h.Del(name)
	}
}

// modifyPath applies a path modifier. prefix is the PathPrefix value (without trailing slash)
// of the match that selected the rule, and isPrefix says whether that match was a PathPrefix.
// ReplacePrefixMatch replaces whole path elements: with prefix "/foo", "/foo/bar" becomes
// replacement + "/bar"; replacing with "/" turns "/foo/bar" into "/bar" and "/foo" into "/".
func modifyPath(path string, m *ir.PathModifier, prefix string, isPrefix bool) string {
	switch m.Type {
	case ir.ReplaceFullPath:
		return m.ReplaceFullPath
	case ir.ReplacePrefixMatch:
		if !isPrefix || !prefixMatches(prefix, path) {
			// Validation (CRD CEL) guarantees a PathPrefix match; without one there is no
			// prefix to replace, so the path stays.
			return path
		}
		rest := path[len(prefix):]
		if rest == "" {
			return m.ReplacePrefixMatch
		}
		out := strings.TrimSuffix(m.ReplacePrefixMatch, "/") + rest
		if out == "" {
			return "/"
		}
		return out
	}
	return path
}

// redirectLocation builds the Location of a RequestRedirect. Port rules, from the spec: an
// explicit port wins; else a set scheme implies its well-known port (http 80, https 443); else
// the listener's port. The port is left out when it is the well-known one for the scheme.
func redirectLocation(rd *ir.Redirect, scheme, host string, listenerPort int32, path, rawQuery string, prefix string, isPrefix bool) string {
	if rd.Scheme != nil {
		scheme = *rd.Scheme
	}
	if rd.Hostname != nil {
		host = *rd.Hostname
	}
	port := listenerPort
	switch {
	case rd.Port != nil:
		port = *rd.Port
	case rd.Scheme != nil && scheme == "http":
		port = 80
	case rd.Scheme != nil && scheme == "https":
		port = 443
	}
	if rd.Path != nil {
		path = modifyPath(path, rd.Path, prefix, isPrefix)
	}
	hostport := host
	if !(scheme == "http" && port == 80) && !(scheme == "https" && port == 443) {
		hostport = net.JoinHostPort(host, strconv.Itoa(int(port)))
	} else if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	u := url.URL{Scheme: scheme, Host: hostport, Path: path, RawQuery: rawQuery}
	return u.String()
}

func redirectStatus(rd *ir.Redirect) int {
	if rd.StatusCode == 0 {
		return http.StatusFound
	}
	return rd.StatusCode
}
