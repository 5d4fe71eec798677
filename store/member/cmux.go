package member

import (
	"bufio"
	"bytes"
	"net"
	"sync"
	"time"
)

// splitListener serves gRPC and plain HTTP on one port, as etcd does on its
// client URL: a connection that opens with the HTTP/2 preface goes to gRPC,
// anything else (curl, Prometheus) to the HTTP server.
type splitListener struct {
	base net.Listener
	grpc *chanListener
	http *chanListener
	wg   sync.WaitGroup
}

func newSplitListener(base net.Listener) *splitListener {
	s := &splitListener{
		base: base,
		grpc: newChanListener(base.Addr()),
		http: newChanListener(base.Addr()),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run()
	}()
	return s
}

func (s *splitListener) run() {
	defer s.grpc.Close()
	defer s.http.Close()
	for {
		c, err := s.base.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		go s.route(c)
	}
}

var http2Preface = []byte("PRI * HTTP/2")

func (s *splitListener) route(c net.Conn) {
	// Both protocols make the client speak first; a silent client is
	// dropped rather than allowed to hold a goroutine forever.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	head, err := br.Peek(len(http2Preface))
	if err != nil && len(head) == 0 {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if bytes.Equal(head, http2Preface) {
		s.grpc.deliver(pc)
	} else {
		s.http.deliver(pc)
	}
}

// Close stops accepting and waits for the accept loop.
func (s *splitListener) Close() error {
	err := s.base.Close()
	s.wg.Wait()
	return err
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed by splitListener.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
