package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nself/nself/internal/pgtest"
)

// startServer runs `nself serve` on a free port and returns its address.
func startServer(t *testing.T, c *cli, flags ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--addr", "127.0.0.1:0", "--shutdown-grace", "10s", "--shutdown-drain", "0"}, flags...)...)
	cmd.Env = c.env
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed nothing: %v", err)
	}
	addr := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)`).FindStringSubmatch(line)
	if addr == nil {
		t.Fatalf("serve said %q", line)
	}
	go io.Copy(io.Discard, stdout)
	return addr[1], cmd
}

func get(t *testing.T, addr, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServe(t *testing.T) {
	t.Parallel()
	c := newCLI(t, pgtest.NewURLs(t), "SESSION_SECRET=serve-test-secret-0123456789abcdef")
	c.ok("tenant", "create", "Acme Corporation", "--slug", "acme")
	addr, cmd := startServer(t, c)

	if code, body := get(t, addr, "any", "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
	if code, _ := get(t, addr, "any", "/readyz"); code != 200 {
		t.Errorf("readyz: %d", code)
	}
	if code, body := get(t, addr, "acme.example.test", "/"); code != 200 || !strings.Contains(body, "Sign in to Acme Corporation") {
		t.Errorf("landing: %d", code)
	}
	// A suspension made by another process (the CLI) reaches the server.
	c.ok("tenant", "suspend", "acme")
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := get(t, addr, "acme.example.test", "/")
		if code == 403 && strings.Contains(body, "suspended") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after suspend: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Graceful shutdown: a request in flight when SIGTERM arrives is
	// answered before the process exits.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := "email=a%40b.test&password=x"
	io.WriteString(conn, "POST /signin HTTP/1.1\r\nHost: acme.example.test\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body[:5])
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	io.WriteString(conn, body[5:])
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 ") {
		t.Errorf("in-flight request after SIGTERM: %q, %v", status, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("serve did not exit after SIGTERM")
	}
}

func TestServeRefusesUnsafeRole(t *testing.T) {
	t.Parallel()
	urls := pgtest.NewURLs(t)
	c := newCLI(t, urls, "DATABASE_URL="+urls.Admin)
	r := c.run("", "serve", "--addr", "127.0.0.1:0")
	if r.code != 1 || !strings.Contains(r.err, "owns table") {
		t.Errorf("serve as the owner: %d %q", r.code, r.err)
	}
}

// A server whose address is taken says so and exits, rather than wait
// forever for its mail sender, which runs until the server ends.
func TestServeAddressTaken(t *testing.T) {
	t.Parallel()
	if os.Getenv("SMTP_HOST") == "" {
		t.Fatal("SMTP_HOST and SMTP_PORT must be set: run `make test`")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := newCLI(t, pgtest.NewURLs(t), "SESSION_SECRET=serve-test-secret-0123456789abcdef",
		"SMTP_HOST="+os.Getenv("SMTP_HOST"), "SMTP_PORT="+os.Getenv("SMTP_PORT"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--addr", ln.Addr().String())
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("serve on a taken address still ran after 30s: %s", out)
	}
	if err == nil || !strings.Contains(string(out), "address already in use") {
		t.Errorf("serve on a taken address: %v %s", err, out)
	}
}
