package traffic

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// IdentityFunc names the backend that produced a response; an error means "unidentified".
type IdentityFunc func(resp *http.Response, body []byte) (string, error)

// DefaultIdentityFields are the echo backend's JSON fields tried in order: the backend label,
// then the pod name for backends that carry no label (echo-basic).
var DefaultIdentityFields = []string{"backend", "pod"}

// JSONIdentity reads the first non-empty string among the top-level JSON fields.
func JSONIdentity(fields ...string) IdentityFunc {
	if len(fields) == 0 {
		fields = DefaultIdentityFields
	}
	return func(_ *http.Response, body []byte) (string, error) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return "", fmt.Errorf("response body: not a JSON object: %w", err)
		}
		for _, f := range fields {
			raw, ok := m[f]
			if !ok {
				continue
			}
			var s string
			if err := json.Unmarshal(raw, &s); err == nil && s != "" {
				return s, nil
			}
		}
		return "", fmt.Errorf("response body: none of the fields %s holds a non-empty string", strings.Join(fields, ", "))
	}
}

// HeaderIdentity reads the identity from a response header, for backends that announce
// themselves there instead of in the body.
func HeaderIdentity(name string) IdentityFunc {
	return func(resp *http.Response, _ []byte) (string, error) {
		if v := resp.Header.Get(name); v != "" {
			return v, nil
		}
		return "", errors.New("response header " + name + ": missing")
	}
}
