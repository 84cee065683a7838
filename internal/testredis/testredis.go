// Package testredis starts real redis-server processes on loopback for
// tests. When redis-server is not installed a test is skipped, except under
// CI=true, where it fails: CI must exercise the Redis paths.
package testredis

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options configures a test server.
type Options struct {
	// Password sets requirepass (the default user's password).
	Password string
	// ACLUser and ACLPassword add an ACL user with full access.
	ACLUser, ACLPassword string
	// TLS serves TLS only (no plain port), with a fresh CA; see Server.CAFile.
	TLS bool
	// Persist turns on the append-only file with fsync on every write, so
	// data survives Kill and Restart (outage tests).
	Persist bool
	// Conf is appended to the generated configuration (cluster or
	// replication settings).
	Conf string
	// Sentinel runs the server in sentinel mode (redis-server --sentinel).
	Sentinel bool
}

// Server is a running redis-server. Stop is registered with t.Cleanup.
type Server struct {
	Port   int
	Dir    string
	CAFile string // PEM CA certificate when Options.TLS

	t    testing.TB
	opts Options
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is a redis:// (or rediss://) URL with the configured credentials.
func (s *Server) URL() string {
	scheme := "redis"
	if s.opts.TLS {
		scheme = "rediss"
	}
	auth := ""
	switch {
	case s.opts.ACLUser != "":
		auth = s.opts.ACLUser + ":" + s.opts.ACLPassword + "@"
	case s.opts.Password != "":
		auth = ":" + s.opts.Password + "@"
	}
	return fmt.Sprintf("%s://%s%s/0", scheme, auth, s.Addr())
}

// Require returns the redis-server path, skipping (or failing under CI) when
// it is missing.
func Require(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found and CI=true: %v", err)
		}
		t.Skip("redis-server not installed; run `make deps`")
	}
	return p
}

// Start starts a redis-server on a free loopback port.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	s := &Server{t: t, opts: opts, Dir: t.TempDir()}
	if opts.TLS {
		s.writeCerts()
	}
	s.Port = freePort(t)
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) conf() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bind 127.0.0.1\nprotected-mode no\ndir %s\nsave \"\"\ndaemonize no\nlogfile \"\"\n", s.Dir)
	if s.opts.TLS {
		fmt.Fprintf(&b, "port 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients no\n",
			s.Port, filepath.Join(s.Dir, "server.crt"), filepath.Join(s.Dir, "server.key"), s.CAFile)
	} else {
		fmt.Fprintf(&b, "port %d\n", s.Port)
	}
	if s.opts.Persist {
		b.WriteString("appendonly yes\nappendfsync always\n")
	}
	if s.opts.Password != "" {
		fmt.Fprintf(&b, "requirepass %s\n", s.opts.Password)
	}
	if s.opts.ACLUser != "" {
		fmt.Fprintf(&b, "user %s on >%s ~* &* +@all\n", s.opts.ACLUser, s.opts.ACLPassword)
		if s.opts.Password == "" {
			b.WriteString("user default off\n")
		}
	}
	b.WriteString(s.opts.Conf)
	return b.String()
}

func (s *Server) start() {
	s.t.Helper()
	conf := filepath.Join(s.Dir, "redis.conf")
	if err := os.WriteFile(conf, []byte(s.conf()), 0o600); err != nil {
		s.t.Fatal(err)
	}
	args := []string{conf}
	ready := "Ready to accept connections"
	if s.opts.Sentinel {
		args = append(args, "--sentinel")
		ready = "+monitor master"
	}
	cmd := exec.Command("redis-server", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	readyc := make(chan struct{})
	var logMu sync.Mutex
	var log strings.Builder
	go func() { // owned by cmd: ends when the process closes its stdout
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if strings.Contains(sc.Text(), ready) {
				once.Do(func() { close(readyc) })
			}
		}
	}()
	select {
	case <-readyc:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logMu.Lock()
		defer logMu.Unlock()
		s.t.Fatalf("redis-server did not start:\n%s", log.String())
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
}

// Kill kills the server abruptly (SIGKILL), as an outage.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Pause freezes the server (SIGSTOP): its connections stay open and
// nothing answers, as a Redis stuck on a slow disk or swapped out. Resume
// undoes it; Kill and Stop work on a paused server.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		if err := s.cmd.Process.Signal(sig); err != nil {
			s.t.Errorf("redis-server: %v: %v", sig, err)
		}
	}
}

// Restart starts the server again on the same port (empty unless Persist).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Stop stops the server; it is idempotent.
func (s *Server) Stop() { s.Kill() }

// WaitPort waits until the port accepts TCP connections.
func (s *Server) WaitPort(ctx context.Context) error {
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Server) writeCerts() {
	t := s.t
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chrysalis test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(s.Dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.crt", "CERTIFICATE", caDER)
	write("server.crt", "CERTIFICATE", der)
	write("server.key", "EC PRIVATE KEY", keyDER)
	s.CAFile = filepath.Join(s.Dir, "ca.crt")
}
