package sidecar

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/suites/sidecar/timeline"
)

// The echo-backend lifecycle endpoints the probes use.
const (
	lifecycleStartupPath = "/startup"
	lifecycleReadyPath   = "/ready"
)

// parseLifecycleLine reads the echo-backend events format (see timeline.ParseLine).
var parseLifecycleLine timeline.ParseFunc = timeline.ParseLine

// lifecycleArgs turns the fixtures' short options ("name=main", "startup-delay=1s", ...) into
// echo-backend lifecycle flags. Keys: name, port, startup-delay, ready-delay,
// termination-delay, exit-code, exit-after, crash-after, crash-exit-code, outbound. Without a
// port the /startup and /ready endpoints are off (containers of a Pod share one network
// namespace, so two on the default port would collide).
func lifecycleArgs(kv ...string) ([]string, error) {
	args := []string{"--mode=lifecycle", "--events-file=" + eventsDir + "/events.log"}
	port := false
	for _, s := range kv {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("lifecycle option %q: want key=value", s)
		}
		switch k {
		case "name":
			args = append(args, "--name="+v)
		case "port":
			args = append(args, "--addr=:"+v)
			port = true
		case "startup-delay", "ready-delay", "termination-delay", "exit-code", "exit-after", "crash-after", "crash-exit-code":
			args = append(args, "--"+k+"="+v)
		case "outbound":
			args = append(args, "--outbound-url="+v)
		default:
			return nil, fmt.Errorf("lifecycle option %q: unknown key %q", s, k)
		}
	}
	if !port {
		args = append(args, "--addr=")
	}
	return args, nil
}

// echoArgs are the flags of echo-backend's plain HTTP mode, records admin API off. Keys: port.
func echoArgs(kv ...string) ([]string, error) {
	args := []string{"--mode=http", "--admin-addr="}
	for _, s := range kv {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k != "port" {
			return nil, fmt.Errorf("echo option %q: want port=N", s)
		}
		args = append(args, "--addr=:"+v)
	}
	return args, nil
}

// proxyArgs are the flags of echo-backend's forward-proxy mode, the mesh spec's stand-in for a
// sidecar proxy: named "proxy" in its lifecycle events, listening on port, forwarding to
// upstream, records admin API off (it shares the Pod's network namespace with the app).
func proxyArgs(port int, upstream string) []string {
	return []string{"--mode=forward-proxy", "--name=proxy", "--addr=:" + strconv.Itoa(port), "--admin-addr=", "--upstream=" + upstream}
}
