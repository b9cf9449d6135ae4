package controller

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// Delivery serves versioned snapshots to proxies and records their acknowledgements
// (protocol in package ir, delivery.go).
type Delivery struct {
	log *slog.Logger
	// onAck is called (without locks held) after an ack or a stream change, so the controller
	// can re-evaluate Programmed.
	onAck func(types.NamespacedName)

	mu       sync.Mutex
	gateways map[types.NamespacedName]*published
	// nextVersion is shared by all Gateways; it starts at the wall clock so that versions keep
	// increasing across controller restarts.
	nextVersion int64
	// newGateway is closed and replaced whenever a Gateway gets its first snapshot, waking
	// streams waiting for it (see authorize).
	newGateway chan struct{}
	// unknownWait: see the constant; tests shorten it.
	unknownWait time.Duration
}

type published struct {
	snap *ir.Snapshot
	// history holds the last versions published, newest last: an ack must name one of them.
	history []int64
	line    []byte // JSON of snap, newline terminated
	content []byte // JSON of snap with Version 0, to detect changes
	changed chan struct{}
	acks    map[string]ir.Ack
	// invalid is the validation error of snap, once known.
	invalid error
	streams map[string]int // proxy pod -> open streams
	// sent is the newest version written to each proxy with an open stream: a proxy may not
	// acknowledge a version it was never sent.
	sent map[string]int64
	// acked is closed and replaced on every ack, to wake WaitAcked.
	acked chan struct{}
	// notify asks for onAck on the next ack or stream change (see NotifyOnAck).
	notify bool
}

// NewDelivery returns a Delivery; onAck may be nil.
func NewDelivery(log *slog.Logger, onAck func(types.NamespacedName)) *Delivery {
	return &Delivery{log: log, onAck: onAck, gateways: map[types.NamespacedName]*published{}, nextVersion: time.Now().UnixMilli(),
		newGateway: make(chan struct{}), unknownWait: unknownWait}
}

func (d *Delivery) entry(gw types.NamespacedName) *published {
	p, ok := d.gateways[gw]
	if !ok {
		p = &published{changed: make(chan struct{}), acked: make(chan struct{}), acks: map[string]ir.Ack{}, streams: map[string]int{}, sent: map[string]int64{}}
		d.gateways[gw] = p
	}
	return p
}

// Publish stores snap as the Gateway's current snapshot. It assigns a new version only when
// the content changed, and returns the current version.
//
// Validation (a 1,000-route snapshot takes milliseconds) is kept off the propagation path:
// every proxy validates what it receives with the same code (ir.Snapshot.Validate) and rejects
// an invalid snapshot with a failed ack, keeping its previous configuration. So with proxies
// connected, a changed snapshot is published at once and validated later only if no proxy
// acknowledged it without error within validateWait; when that finds it invalid (a
// translation bug), onAck asks for a reconcile, whose Publish of the same content returns the
// error. With no proxy connected it is validated before Publish returns.
func (d *Delivery) Publish(snap *ir.Snapshot) (int64, error) {
	return d.PublishEncoded(snap, nil)
}

// PublishEncoded is Publish with snap's encoding supplied by the caller (translate.Memo keeps
// the encodings of unchanged routes, which saves encoding the whole snapshot on every change).
// encoded must be exactly what json.Marshal writes for snap, whose Version must be 0; nil
// means Publish encodes it.
func (d *Delivery) PublishEncoded(snap *ir.Snapshot, encoded []byte) (int64, error) {
	gw := types.NamespacedName{Namespace: snap.Gateway.Namespace, Name: snap.Gateway.Name}
	s := *snap
	content := encoded
	if content == nil || s.Version != 0 {
		s.Version = 0
		var err error
		if content, err = json.Marshal(&s); err != nil {
			return 0, fmt.Errorf("encode snapshot of gateway %s: %w", gw, err)
		}
	}
	d.mu.Lock()
	v, changed, err := d.store(gw, &s, content)
	if err == nil && !changed {
		err = d.gateways[gw].invalid
	}
	streams := len(d.gateways[gw].streams)
	d.mu.Unlock()
	if err != nil || !changed {
		return v, err
	}
	if streams > 0 {
		go d.validateLater(gw, &s)
		return v, nil
	}
	if err := d.validate(gw, &s); err != nil {
		return 0, err
	}
	return v, nil
}

// validateWait bounds how long a published snapshot waits for a successful ack before the
// controller validates it itself.
const validateWait = 250 * time.Millisecond

// validateLater validates s unless a proxy acknowledges it without error first (the proxy ran
// the same validation) or a newer snapshot replaces it (which gets its own check).
func (d *Delivery) validateLater(gw types.NamespacedName, s *ir.Snapshot) {
	deadline := time.NewTimer(validateWait)
	defer deadline.Stop()
wait:
	for {
		d.mu.Lock()
		p, ok := d.gateways[gw]
		if !ok || p.snap != s {
			d.mu.Unlock()
			return
		}
		rejected := false
		for _, a := range p.acks {
			if a.Version == s.Version && a.Error == "" {
				d.mu.Unlock()
				return
			}
			rejected = rejected || a.Version == s.Version
		}
		wake := p.acked
		d.mu.Unlock()
		if rejected {
			break
		}
		select {
		case <-wake:
		case <-deadline.C:
			break wait
		}
	}
	if err := d.validate(gw, s); err != nil {
		d.log.Error("published snapshot is invalid", "gateway", gw.String(), "version", s.Version, "error", err)
		if d.onAck != nil {
			d.onAck(gw)
		}
	}
}

// validate validates s and, when it is invalid and still current, records the error so that
// publishing the same content again fails too instead of passing as unchanged.
func (d *Delivery) validate(gw types.NamespacedName, s *ir.Snapshot) error {
	verr := s.Validate()
	if verr == nil {
		return nil
	}
	err := fmt.Errorf("snapshot of gateway %s version %d is invalid (a translation bug): %w", gw, s.Version, verr)
	d.mu.Lock()
	if p, ok := d.gateways[gw]; ok && p.snap == s {
		p.invalid = err
	}
	d.mu.Unlock()
	return err
}

// store makes s (encoded as content, with version 0) the Gateway's snapshot unless the content
// is unchanged; it reports the current version and whether it changed. d.mu must be held.
func (d *Delivery) store(gw types.NamespacedName, s *ir.Snapshot, content []byte) (int64, bool, error) {
	p := d.entry(gw)
	if p.snap != nil && bytes.Equal(p.content, content) {
		return p.snap.Version, false, nil
	}
	d.nextVersion++
	s.Version = d.nextVersion
	// Encoding a large snapshot twice would double the cost on the propagation path: splice
	// the version into the version-0 encoding instead (its first "version":0 is the top-level
	// field, which json.Marshal writes right after the fixed schema string).
	line, err := withVersion(content, s.Version)
	if err != nil {
		return 0, false, fmt.Errorf("encode snapshot of gateway %s: %w", gw, err)
	}
	if p.snap == nil {
		close(d.newGateway)
		d.newGateway = make(chan struct{})
	}
	p.snap, p.content, p.line, p.invalid = s, content, line, nil
	if len(p.history) == historyLen {
		copy(p.history, p.history[1:])
		p.history = p.history[:historyLen-1]
	}
	p.history = append(p.history, s.Version)
	close(p.changed)
	p.changed = make(chan struct{})
	return s.Version, true, nil
}

func withVersion(content []byte, v int64) ([]byte, error) {
	const zero = `"version":0,`
	i := bytes.Index(content, []byte(zero))
	if i < 0 || i > 64 {
		return nil, fmt.Errorf("version field not found at the start of the encoding")
	}
	out := make([]byte, 0, len(content)+24)
	out = append(out, content[:i]...)
	out = append(out, `"version":`...)
	out = strconv.AppendInt(out, v, 10)
	out = append(out, ',')
	out = append(out, content[i+len(zero):]...)
	return append(out, '\n'), nil
}

// Forget drops a deleted Gateway.
func (d *Delivery) Forget(gw types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.gateways[gw]; ok {
		close(p.changed)
		delete(d.gateways, gw)
	}
}

// Gateways lists the Gateways with a published snapshot.
func (d *Delivery) Gateways() []types.NamespacedName {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]types.NamespacedName, 0, len(d.gateways))
	for k, p := range d.gateways {
		if p.snap != nil {
			out = append(out, k)
		}
	}
	return out
}

// AckState says whether every named proxy acknowledged the Gateway's current version without
// error; when not, the message names who is behind.
func (d *Delivery) AckState(gw types.NamespacedName, proxies []string) (bool, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.gateways[gw]
	if !ok || p.snap == nil {
		return false, "no configuration published yet"
	}
	if len(proxies) == 0 {
		return false, "waiting for a ready proxy pod"
	}
	for _, name := range proxies {
		a, ok := p.acks[name]
		switch {
		case !ok:
			return false, fmt.Sprintf("proxy %s has not acknowledged version %d yet", name, p.snap.Version)
		case a.Version != p.snap.Version:
			return false, fmt.Sprintf("proxy %s applied version %d, current is %d", name, a.Version, p.snap.Version)
		case a.Error != "":
			return false, fmt.Sprintf("proxy %s rejected version %d: %s", name, a.Version, a.Error)
		}
	}
	return true, ""
}

// NotifyOnAck arms onAck for the Gateway's next ack or stream change. The controller arms it
// only when it wrote a Gateway as not yet Programmed, so the common case (the ack arrives
// while WaitAcked waits) costs no extra reconcile.
func (d *Delivery) NotifyOnAck(gw types.NamespacedName) {
	d.mu.Lock()
	if p, ok := d.gateways[gw]; ok {
		p.notify = true
	}
	d.mu.Unlock()
}

// WaitAcked waits up to timeout for AckState to turn true, so that a configuration change the
// proxies apply within milliseconds does not flip the Gateway to Programmed=False and back.
func (d *Delivery) WaitAcked(ctx context.Context, gw types.NamespacedName, proxies []string, timeout time.Duration) (bool, string) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ok, msg := d.AckState(gw, proxies)
		if ok || len(proxies) == 0 {
			return ok, msg
		}
		d.mu.Lock()
		p, ok := d.gateways[gw]
		if !ok {
			d.mu.Unlock()
			return d.AckState(gw, proxies)
		}
		wake := p.acked
		d.mu.Unlock()
		// Re-check after taking the channel: an ack may have landed in between.
		if ok, msg = d.AckState(gw, proxies); ok {
			return ok, msg
		}
		select {
		case <-wake:
		case <-deadline.C:
			return d.AckState(gw, proxies)
		case <-ctx.Done():
			return d.AckState(gw, proxies)
		}
	}
}

// Limits of what one Gateway's proxies can make the controller keep.
const (
	// historyLen is how many of a Gateway's latest versions an ack may name.
	historyLen = 8
	// maxStreams bounds the open streams of one Gateway (its proxy replicas, plus a few
	// reconnecting while their old connection times out).
	maxStreams = 64
	// maxAcks bounds the proxies whose last ack a Gateway keeps; beyond it, the acks of
	// proxies without an open stream are dropped.
	maxAcks = 2 * maxStreams
)

// Handler serves the delivery endpoints. It must be served with a TLS configuration that
// verifies client certificates (CA.ServerTLS): a request is served only for the Gateway its
// verified certificate names.
func (d *Delivery) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ir.SnapshotsPath+"{namespace}/{gateway}", d.serveStream)
	mux.HandleFunc("POST "+ir.AcksPath, d.serveAck)
	return mux
}

// unknownWait is how long a stream request for a Gateway without published configuration
// waits for it before the 404: after a controller restart, proxies reconnect before the first
// reconcile publishes, and would otherwise back off for seconds.
const unknownWait = 10 * time.Second

// authorize answers the request with an error and returns false unless its verified client
// certificate names gw, and gw has a published snapshot, waiting up to wait for one. It
// creates no state.
func (d *Delivery) authorize(w http.ResponseWriter, r *http.Request, gw types.NamespacedName, wait time.Duration) bool {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		http.Error(w, "a client certificate from the controller's delivery CA is required", http.StatusUnauthorized)
		return false
	}
	id, err := identityOf(r.TLS.VerifiedChains[0][0])
	if err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return false
	}
	if id != gw {
		d.log.Warn("refused a proxy asking for another Gateway", "certificate", id.String(), "gateway", gw.String(), "remote", r.RemoteAddr)
		http.Error(w, fmt.Sprintf("the certificate of gateway %s may not read or acknowledge gateway %s", id, gw), http.StatusForbidden)
		return false
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		p, ok := d.gateways[gw]
		known := ok && p.snap != nil
		wake := d.newGateway
		d.mu.Unlock()
		if known {
			return true
		}
		select {
		case <-wake:
			continue
		case <-r.Context().Done():
			return false
		case <-deadline.C:
		}
		http.Error(w, fmt.Sprintf("gateway %s has no published configuration", gw), http.StatusNotFound)
		return false
	}
}

// validProxyName accepts what a Pod name can be (a DNS subdomain).
func validProxyName(name string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("proxy %q is not a Pod name: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

func (d *Delivery) serveStream(w http.ResponseWriter, r *http.Request) {
	gw := types.NamespacedName{Namespace: r.PathValue("namespace"), Name: r.PathValue("gateway")}
	if !d.authorize(w, r, gw, d.unknownWait) {
		return
	}
	proxy := r.URL.Query().Get("proxy")
	if err := validProxyName(proxy); err != nil {
		http.Error(w, "query parameter proxy (the proxy pod name): "+err.Error(), http.StatusBadRequest)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	if err := d.streamOpened(gw, proxy); err != nil {
		http.Error(w, err.Error(), http.StatusTooManyRequests)
		return
	}
	defer d.streamClosed(gw, proxy)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	d.log.Info("proxy connected", "gateway", gw.String(), "proxy", proxy)

	heartbeat := time.NewTicker(ir.HeartbeatInterval)
	defer heartbeat.Stop()
	var sent int64 = -1
	for {
		d.mu.Lock()
		p, ok := d.gateways[gw]
		if !ok {
			// Forgotten: the Gateway is gone or no longer valid.
			d.mu.Unlock()
			d.log.Info("gateway forgotten; closing its stream", "gateway", gw.String(), "proxy", proxy)
			return
		}
		line, version, changed := p.line, int64(-1), p.changed
		if p.snap != nil {
			version = p.snap.Version
		}
		if version != sent && line != nil {
			p.sent[proxy] = max(p.sent[proxy], version)
		}
		d.mu.Unlock()
		if version != sent && line != nil {
			if _, err := w.Write(line); err != nil {
				return
			}
			fl.Flush()
			sent = version
		}
		select {
		case <-r.Context().Done():
			d.log.Info("proxy disconnected", "gateway", gw.String(), "proxy", proxy)
			return
		case <-changed:
		case <-heartbeat.C:
			if _, err := io.WriteString(w, "\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// streamOpened counts a stream of an authorized proxy of a published Gateway; it refuses one
// beyond maxStreams.
func (d *Delivery) streamOpened(gw types.NamespacedName, proxy string) error {
	d.mu.Lock()
	p, ok := d.gateways[gw]
	if !ok {
		d.mu.Unlock()
		return fmt.Errorf("gateway %s has no published configuration", gw)
	}
	open := 0
	for _, n := range p.streams {
		open += n
	}
	if open >= maxStreams {
		d.mu.Unlock()
		return fmt.Errorf("gateway %s already has %d open streams", gw, open)
	}
	p.streams[proxy]++
	notify := d.takeNotify(p)
	d.mu.Unlock()
	if notify {
		d.onAck(gw)
	}
	return nil
}

func (d *Delivery) streamClosed(gw types.NamespacedName, proxy string) {
	d.mu.Lock()
	p, ok := d.gateways[gw]
	if !ok {
		d.mu.Unlock()
		return
	}
	if p.streams[proxy]--; p.streams[proxy] <= 0 {
		// Acks stay: a restarted proxy is not Ready until it applied (and acked) a snapshot, and
		// Programmed only looks at ready proxies.
		delete(p.streams, proxy)
		delete(p.sent, proxy)
	}
	notify := d.takeNotify(p)
	d.mu.Unlock()
	if notify {
		d.onAck(gw)
	}
}

// takeNotify reports and disarms NotifyOnAck. d.mu must be held.
func (d *Delivery) takeNotify(p *published) bool {
	n := p.notify && d.onAck != nil
	p.notify = false
	return n
}

func (d *Delivery) serveAck(w http.ResponseWriter, r *http.Request) {
	var a ir.Ack
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&a); err != nil {
		http.Error(w, "decode ack: "+err.Error(), http.StatusBadRequest)
		return
	}
	if a.Gateway.Name == "" || a.Gateway.Namespace == "" {
		http.Error(w, "ack: gateway is required", http.StatusBadRequest)
		return
	}
	if err := validProxyName(a.Proxy); err != nil {
		http.Error(w, "ack: "+err.Error(), http.StatusBadRequest)
		return
	}
	gw := types.NamespacedName{Namespace: a.Gateway.Namespace, Name: a.Gateway.Name}
	if !d.authorize(w, r, gw, 0) {
		return
	}
	d.mu.Lock()
	p, ok := d.gateways[gw]
	var refused string
	switch {
	case !ok:
		refused = fmt.Sprintf("gateway %s has no published configuration", gw)
	case p.streams[a.Proxy] == 0:
		refused = fmt.Sprintf("proxy %s has no open stream for gateway %s", a.Proxy, gw)
	case a.Version > p.sent[a.Proxy] || !slices.Contains(p.history, a.Version):
		refused = fmt.Sprintf("version %d was never sent to proxy %s (or is too old)", a.Version, a.Proxy)
	}
	if refused != "" {
		d.mu.Unlock()
		d.log.Warn("refused ack", "gateway", gw.String(), "proxy", a.Proxy, "version", a.Version, "reason", refused)
		http.Error(w, "ack: "+refused, http.StatusConflict)
		return
	}
	if prev, ok := p.acks[a.Proxy]; !ok || a.Version >= prev.Version {
		p.acks[a.Proxy] = a
	}
	if len(p.acks) > maxAcks {
		for name := range p.acks {
			if p.streams[name] == 0 {
				delete(p.acks, name)
			}
		}
	}
	close(p.acked)
	p.acked = make(chan struct{})
	notify := d.takeNotify(p)
	d.mu.Unlock()
	if a.Error != "" {
		d.log.Warn("proxy rejected snapshot", "gateway", gw.String(), "proxy", a.Proxy, "version", a.Version, "error", strings.TrimSpace(a.Error))
	}
	w.WriteHeader(http.StatusNoContent)
	if notify {
		d.onAck(gw)
	}
}

// Serve runs the delivery server on addr with tlsConfig (CA.ServerTLS) until ctx ends.
func (d *Delivery) Serve(ctx context.Context, addr string, tlsConfig *tls.Config) error {
	if tlsConfig == nil || tlsConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		return fmt.Errorf("delivery server on %s: a TLS configuration requiring client certificates is required", addr)
	}
	srv := &http.Server{Addr: addr, Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConfig,
		// Streams never end on their own: tie them to ctx so shutdown closes them.
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServeTLS("", "") }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		return fmt.Errorf("delivery server on %s: %w", addr, err)
	}
}
