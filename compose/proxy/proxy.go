// Package proxy is the TCP proxy placed in front of a member's peer port,
// where the nemesis slows or cuts the links between members. The agent
// runs one inside each container (for latency; netfilter makes the
// partitions there), and the local runtime runs one per member process
// (for latency and partitions both, as local processes share one network
// stack and no packet filter can tell them apart).
package proxy

import (
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"
)

// Proxy forwards every connection it accepts to Target. It can hold every
// chunk of bytes back delay ± jitter, either way, never reordering them;
// and it can cut off named sources: their open connections are closed and
// new ones are accepted but never answered until the cut is lifted, as on
// a link that drops every packet.
type Proxy struct {
	Target string
	// Source names who a connection comes from ("" when unknown, which no
	// cut matches). Without it no cut applies.
	Source func(net.Conn) string

	mu            sync.Mutex
	delay, jitter time.Duration
	cut           []string
	// open maps each forwarded connection (the accepted side) to its
	// source; held are the accepted connections of cut-off sources.
	open   map[net.Conn]string
	held   map[net.Conn]string
	closed bool
}

// Serve accepts connections on ln until it is closed.
func (p *Proxy) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go p.handle(c)
	}
}

func (p *Proxy) handle(c net.Conn) {
	src := ""
	if p.Source != nil {
		src = p.Source(c)
	}
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		c.Close()
		return
	case src != "" && slices.Contains(p.cut, src):
		p.track(&p.held, c, src)
		p.mu.Unlock()
		return
	}
	p.track(&p.open, c, src)
	p.mu.Unlock()
	defer p.forget(c)
	defer c.Close()

	t, err := net.DialTimeout("tcp", p.Target, 5*time.Second)
	if err != nil {
		return
	}
	defer t.Close()
	done := make(chan struct{}, 2)
	go func() { p.pipe(t, c); done <- struct{}{} }()
	go func() { p.pipe(c, t); done <- struct{}{} }()
	<-done // one way ended: end both
}

func (p *Proxy) track(m *map[net.Conn]string, c net.Conn, src string) {
	if *m == nil {
		*m = map[net.Conn]string{}
	}
	(*m)[c] = src
}

func (p *Proxy) forget(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.open, c)
}

// SetDelay holds every chunk back d ± j from now on (0, 0: no delay).
func (p *Proxy) SetDelay(d, j time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay, p.jitter = d, j
}

// Delay returns the current delay and jitter.
func (p *Proxy) Delay() (d, j time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delay, p.jitter
}

// SetCut cuts off exactly these sources (none: heal). Connections of
// sources newly cut are closed; held connections of sources no longer cut
// are closed too, so that their dialers try again, now through.
func (p *Proxy) SetCut(sources []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = slices.Clone(sources)
	for c, src := range p.open {
		if slices.Contains(p.cut, src) {
			c.Close()
		}
	}
	for c, src := range p.held {
		if !slices.Contains(p.cut, src) {
			c.Close()
			delete(p.held, c)
		}
	}
}

// Cut returns the sources cut off.
func (p *Proxy) Cut() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.cut)
}

// Close ends every connection; the listener is the caller's to close.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for c := range p.open {
		c.Close()
	}
	for c := range p.held {
		c.Close()
	}
	p.held = nil
}

func (p *Proxy) hold() time.Duration {
	d, j := p.Delay()
	if j > 0 {
		d += time.Duration(rand.Int64N(int64(2*j+1))) - j
	}
	return max(d, 0)
}

// pipe copies src to dst, holding each chunk back as the delay says, in
// order: a chunk never leaves before the one read before it.
func (p *Proxy) pipe(dst, src net.Conn) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	ch := make(chan chunk, 256)
	go func() {
		defer close(ch)
		var last time.Time
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				at := time.Now().Add(p.hold())
				if at.Before(last) {
					at = last
				}
				last = at
				ch <- chunk{buf[:n], at}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		if w := time.Until(c.at); w > 0 {
			time.Sleep(w)
		}
		if _, err := dst.Write(c.b); err != nil {
			src.Close()
			for range ch {
			}
			return
		}
	}
}
