package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Path normalisation, done once before matching; the normalised path is also what goes
// upstream, so a route and its backend never disagree about which resource was asked for.
//
// The policy follows Envoy's normalize_path + merge_slashes with
// path_with_escaped_slashes_action REJECT_REQUEST, applied to the path as it arrived (its
// escaped form, not net/http's decoded URL.Path, in which "%2e%2e" is already ".."):
//
//  1. A path longer than maxPathBytes, as it arrived or once normalised, is refused with 414.
//  2. Each percent-escape must be '%' and two hex digits, or the request is refused (400).
//  3. Escapes of unreserved characters (ALPHA DIGIT - . _ ~) are decoded, other escapes get
//     upper-case hex (RFC 3986 6.2.2.1-2); bytes not allowed raw in a path are escaped.
//  4. Refused with 400, as no normalisation makes them unambiguous:
//     - "%2F" and "%5C" (an encoded / or \): backends disagree whether they separate segments;
//     - a raw "\" (some backends treat it as /);
//     - control characters (raw or escaped, NUL included);
//     - a path that is not UTF-8 once decoded (overlong forms such as %C0%AE decode to '.'
//       in lax decoders);
//     - a dot segment with a path parameter ("..;", Tomcat's ".."), which RFC 3986 does not
//       remove but some servlet containers resolve.
//  5. Slashes are merged ("//admin" is "/admin").
//  6. Dot segments are removed (RFC 3986 5.2.4); ".." at the root stays at the root, so "/.."
//     is "/", as Envoy and browsers do.
//
// A path without any of these features (every ordinary path) is returned as it is, without
// allocating.

// maxPathBytes bounds a request path; nginx's default request line buffer is 8 KiB too.
const maxPathBytes = 8 << 10

// pathError is a path that cannot be normalised: the status to answer and why.
type pathError struct {
	status int
	reason string
}

func (e *pathError) Error() string { return e.reason }

func badPath(reason string) *pathError {
	return &pathError{status: http.StatusBadRequest, reason: reason}
}

// normalizePath returns the normalised form of an escaped request path.
func normalizePath(p string) (string, *pathError) {
	if len(p) > maxPathBytes {
		return "", &pathError{status: http.StatusRequestURITooLong, reason: "path longer than 8192 bytes"}
	}
	if p == "" {
		return "/", nil
	}
	if p[0] != '/' {
		return "", badPath("path does not start with /")
	}
	if pathIsNormal(p) {
		return p, nil
	}
	var b strings.Builder
	b.Grow(len(p))
	dec := make([]byte, 0, len(p)) // fully decoded, for the UTF-8 check
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return "", badPath("control character in path")
		case c == '\\':
			return "", badPath(`backslash (\) in path`)
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", badPath("incomplete percent-escape in path")
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			switch {
			case v < 0x20 || v == 0x7f:
				return "", badPath("percent-encoded control character in path")
			case v == '/':
				return "", badPath("percent-encoded slash (%2F) in path")
			case v == '\\':
				return "", badPath("percent-encoded backslash (%5C) in path")
			case isUnreserved(v):
				b.WriteByte(v)
			default:
				writeEscape(&b, v)
			}
			dec = append(dec, v)
		case c == '/' || isPchar(c):
			b.WriteByte(c)
			dec = append(dec, c)
		default:
			writeEscape(&b, c)
			dec = append(dec, c)
		}
	}
	if !utf8.Valid(dec) {
		return "", badPath("path is not valid UTF-8 once percent-decoded")
	}
	out, perr := removeDotSegments(b.String())
	if perr == nil && len(out) > maxPathBytes {
		// Escaping raw bytes can triple a path: the limit holds for what is matched and sent
		// upstream too (and normalising the result again gives the result, not a 414).
		return "", &pathError{status: http.StatusRequestURITooLong, reason: "path longer than 8192 bytes once normalised"}
	}
	return out, perr
}

// removeDotSegments merges slashes and removes "." and ".." segments of an escaped path whose
// unreserved escapes are already decoded.
func removeDotSegments(p string) (string, *pathError) {
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s == "":
			trailing = last
		case s == ".":
			trailing = last
		case s == "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = last
		case strings.HasPrefix(s, ".;") || strings.HasPrefix(s, "..;"):
			return "", badPath("dot segment with a path parameter (;) in path")
		default:
			out = append(out, s)
			trailing = false
		}
	}
	if len(out) == 0 {
		return "/", nil
	}
	n := "/" + strings.Join(out, "/")
	if trailing {
		n += "/"
	}
	return n, nil
}

// pathIsNormal reports whether p (starting with /) has nothing normalizePath would change or
// refuse: only pchars and single slashes, no escapes, no dot segments.
func pathIsNormal(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '/' {
			if i+1 < len(p) && p[i+1] == '/' {
				return false
			}
			continue
		}
		if !isPchar(c) || c == '%' {
			return false
		}
		if c == '.' && p[i-1] == '/' {
			// A segment starting with a dot: ".", "..", ".;" and "..;" need a closer look.
			rest := p[i+1:]
			if rest == "" || rest[0] == '/' || rest[0] == ';' || rest[0] == '.' {
				return false
			}
		}
	}
	return true
}

// isPchar reports whether c may appear raw in a path segment (RFC 3986 3.3: unreserved,
// sub-delims, ':' and '@'); '%' is handled by the caller.
func isPchar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func writeEscape(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&15])
}

// withNormalPath returns r with its path normalised, r itself when nothing changes, or the
// error to answer. OPTIONS * (the server-wide request target) is left alone.
func withNormalPath(r *http.Request) (*http.Request, *pathError) {
	if r.URL.Path == "*" {
		return r, nil
	}
	raw := r.URL.EscapedPath()
	n, perr := normalizePath(raw)
	if perr != nil {
		return nil, perr
	}
	if n == raw && r.URL.Path != "" {
		return r, nil
	}
	dec, err := url.PathUnescape(n)
	if err != nil {
		// normalizePath only returns valid escapes; this would be a bug in it.
		return nil, badPath("path cannot be decoded after normalisation")
	}
	r2 := r.WithContext(r.Context())
	u := *r.URL
	u.Path, u.RawPath = dec, ""
	if u.EscapedPath() != n {
		u.RawPath = n
	}
	r2.URL = &u
	return r2, nil
}
