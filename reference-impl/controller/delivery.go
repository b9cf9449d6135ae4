package controller

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/gatecheck/gatecheck/reference-impl/delta"
	"github.com/gatecheck/gatecheck/reference-impl/ir"
)

// Delivery serves each Gateway's configuration to its proxies as a stream of per-route updates
// (protocol in package ir, delivery.go; the updates are package delta's) and records their
// acknowledgements.
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
	// snap is the current snapshot (with its Version), table the same keyed by route.
	snap  *ir.Snapshot
	table *delta.Table
	// deltas are the encoded updates of the last versions published, oldest first: a stream
	// that sent version v sends the ones after it; one further behind gets the full state.
	deltas []encodedDelta
	// full is the encoded full state of the current version, made when a stream first needs it.
	full []byte
	// history holds the last versions published, newest last: an ack must name one of them.
	history []int64
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

// encodedDelta is one delta line of the stream, newline terminated.
type encodedDelta struct {
	base, version int64
	line          []byte
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

// Publish makes snap the Gateway's current configuration. It assigns a new version only when
// the configuration changed, and returns the current version. Streams then send the delta:
// the routes whose IR changed (and the Gateway-level part if it did), not the whole snapshot.
//
// Validation (a 1,000-route snapshot takes milliseconds) is kept off the propagation path:
// every proxy validates what it receives with the same code (ir.Snapshot.Validate) and rejects
// an invalid update with a failed ack, keeping its previous configuration. So with proxies
// connected, a changed snapshot is published at once and validated later only if no proxy
// acknowledged it without error within validateWait; when that finds it invalid (a
// translation bug), onAck asks for a reconcile, whose Publish of the same content returns the
// error. With no proxy connected it is validated before Publish returns.
func (d *Delivery) Publish(snap *ir.Snapshot) (int64, error) {
	return d.PublishRoutes(snap, nil)
}

// PublishRoutes is Publish for a snapshot that differs from the one published before at most
// in its Gateway-level part and in the routes named (a reconcile that translated only those):
// only they are filed and compared (delta.Next); the other routes are the same. nil names
// every route.
func (d *Delivery) PublishRoutes(snap *ir.Snapshot, changed []ir.RouteKey) (int64, error) {
	gw := types.NamespacedName{Namespace: snap.Gateway.Namespace, Name: snap.Gateway.Name}
	s := *snap
	s.Version = 0
	d.mu.Lock()
	v, changed2, err := d.store(gw, &s, changed)
	if err == nil && !changed2 {
		err = d.gateways[gw].invalid
	}
	streams := len(d.gateways[gw].streams)
	d.mu.Unlock()
	if err != nil || !changed2 {
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

// store makes s (with version 0) the Gateway's configuration unless it is unchanged (changed:
// see delta.Next); it reports the current version and whether it changed. d.mu must be held.
func (d *Delivery) store(gw types.NamespacedName, s *ir.Snapshot, changed []ir.RouteKey) (int64, bool, error) {
	p := d.entry(gw)
	var next *delta.Table
	var u *ir.Update
	if p.table == nil {
		next = delta.FromSnapshot(s)
	} else if next, u = delta.Next(p.table, s, changed); u == nil {
		return p.snap.Version, false, nil
	}
	d.nextVersion++
	s.Version, next.Version = d.nextVersion, d.nextVersion
	if u != nil {
		u.Version = s.Version
		line, err := json.Marshal(u)
		if err != nil {
			return 0, false, fmt.Errorf("encode update of gateway %s: %w", gw, err)
		}
		if len(p.deltas) == historyLen {
			copy(p.deltas, p.deltas[1:])
			p.deltas = p.deltas[:historyLen-1]
		}
		p.deltas = append(p.deltas, encodedDelta{base: u.BaseVersion, version: u.Version, line: append(line, '\n')})
	}
	if p.snap == nil {
		close(d.newGateway)
		d.newGateway = make(chan struct{})
	}
	p.snap, p.table, p.full, p.invalid = s, next, nil, nil
	if len(p.history) == historyLen {
		copy(p.history, p.history[1:])
		p.history = p.history[:historyLen-1]
	}
	p.history = append(p.history, s.Version)
	close(p.changed)
	p.changed = make(chan struct{})
	return s.Version, true, nil
}

// lines returns what a stream that last sent version sent (-1: nothing yet) must write to
// reach the current version: the deltas since, or the full state. d.mu must be held; the full
// state is encoded by fullLine, outside the lock.
func (p *published) lines(sent int64) (deltas [][]byte, full bool) {
	if sent < 0 {
		return nil, true
	}
	at := sent
	for _, e := range p.deltas {
		if e.version <= sent {
			continue
		}
		if e.base != at {
			return nil, true // a gap: the ring no longer reaches back to sent
		}
		deltas = append(deltas, e.line)
		at = e.version
	}
	if at != p.table.Version {
		return nil, true
	}
	return deltas, false
}

// fullLine returns the encoded full state of table, p's current one, encoding it once per
// version. d.mu must not be held.
func (d *Delivery) fullLine(gw types.NamespacedName, table *delta.Table) ([]byte, error) {
	d.mu.Lock()
	p, ok := d.gateways[gw]
	if ok && p.table == table && p.full != nil {
		line := p.full
		d.mu.Unlock()
		return line, nil
	}
	d.mu.Unlock()
	line, err := json.Marshal(delta.Full(table))
	if err != nil {
		return nil, fmt.Errorf("encode full state of gateway %s version %d: %w", gw, table.Version, err)
	}
	line = append(line, '\n')
	d.mu.Lock()
	if p, ok := d.gateways[gw]; ok && p.table == table {
		p.full = line
	}
	d.mu.Unlock()
	return line, nil
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
	// historyLen is how many of a Gateway's latest versions an ack may name, and how many
	// deltas it keeps for streams behind.
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
		changed, table := p.changed, p.table
		var deltas [][]byte
		full := false
		if table != nil && table.Version != sent {
			deltas, full = p.lines(sent)
		}
		d.mu.Unlock()
		if full {
			line, err := d.fullLine(gw, table)
			if err != nil {
				d.log.Error("cannot send the full state", "gateway", gw.String(), "proxy", proxy, "error", err)
				return
			}
			deltas = [][]byte{line}
		}
		if len(deltas) > 0 {
			d.mu.Lock()
			if p, ok := d.gateways[gw]; ok {
				p.sent[proxy] = max(p.sent[proxy], table.Version)
			}
			d.mu.Unlock()
			for _, line := range deltas {
				if _, err := w.Write(line); err != nil {
					return
				}
			}
			fl.Flush()
			sent = table.Version
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
