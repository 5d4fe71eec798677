package member

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"

	"google.golang.org/grpc/credentials"
)

// TLSInfo names the files of one side's TLS setup, as etcd's flags do.
type TLSInfo struct {
	CertFile       string
	KeyFile        string
	TrustedCAFile  string
	ClientCertAuth bool
}

func (t TLSInfo) empty() bool { return t.CertFile == "" && t.KeyFile == "" }

func listenAll(urls []string, tlsConfig *tls.Config, h2 bool) ([]net.Listener, error) {
	var lns []net.Listener
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			closeAll(lns)
			return nil, fmt.Errorf("parse listen URL %q: %w", s, err)
		}
		if u.Scheme == "https" && tlsConfig == nil {
			closeAll(lns)
			return nil, fmt.Errorf("listen URL %s is https but no certificate was given", s)
		}
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			closeAll(lns)
			return nil, fmt.Errorf("listen on %s: %w", s, err)
		}
		if u.Scheme == "https" {
			c := tlsConfig.Clone()
			if h2 {
				c.NextProtos = []string{"h2", "http/1.1"}
			}
			ln = tls.NewListener(ln, c)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

func serverTLS(t TLSInfo) (*tls.Config, error) {
	if t.empty() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load key pair: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.TrustedCAFile != "" {
		pool, err := loadPool(t.TrustedCAFile)
		if err != nil {
			return nil, err
		}
		c.ClientCAs = pool
	}
	if t.ClientCertAuth {
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

func clientTLSConfig(t TLSInfo) (*tls.Config, error) {
	if t.empty() && t.TrustedCAFile == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if !t.empty() {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load key pair: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if t.TrustedCAFile != "" {
		pool, err := loadPool(t.TrustedCAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	return c, nil
}

func loadPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("no certificates in %s", path)
	}
	return pool, nil
}

// terminatedTLS tells gRPC that connections arrive already secured by the
// TLS listener, so it does not run a second handshake.
type terminatedTLS struct{}

func (terminatedTLS) ClientHandshake(ctx context.Context, authority string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, nil, errors.New("server-side credentials only")
}

func (terminatedTLS) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, credentials.TLSInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (terminatedTLS) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (terminatedTLS) Clone() credentials.TransportCredentials { return terminatedTLS{} }

func (terminatedTLS) OverrideServerName(string) error { return nil }
