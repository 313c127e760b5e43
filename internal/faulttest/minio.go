package faulttest

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// MinIO is a MinIO server of the test's own, which it may stop: the
// shared one serves other tests.
type MinIO struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string

	bin, dir, console string
	cmd               *exec.Cmd
	done              chan struct{}
}

// minioBinary is the MinIO that scripts/services.sh builds, in
// NSELF_STATE_DIR/bin (by default ~/.cache/nself/bin).
func minioBinary(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("NSELF_STATE_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatalf("find the MinIO binary: %v", err)
		}
		dir = filepath.Join(cache, "nself")
	}
	bin := filepath.Join(dir, "bin", "minio")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("MinIO binary %s: %v; scripts/services.sh start minio builds it (set NSELF_STATE_DIR if it lives elsewhere)", bin, err)
	}
	return bin
}

// StartMinIO starts a MinIO on free ports with a temporary data folder and
// waits until it is ready; it is killed when the test ends, if not before.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	m := &MinIO{Endpoint: freeAddr(t), AccessKey: "faulttestminio", SecretKey: "faulttestminiosecret",
		bin: minioBinary(t), dir: t.TempDir(), console: freeAddr(t)}
	m.start(t)
	t.Cleanup(m.Stop)
	return m
}

// Restart starts a stopped server again, on the same address with the
// same data, as after an outage, and waits until it is ready.
func (m *MinIO) Restart(t testing.TB) {
	t.Helper()
	m.Stop()
	m.start(t)
}

func (m *MinIO) start(t testing.TB) {
	t.Helper()
	m.done = make(chan struct{})
	m.cmd = exec.Command(m.bin, "server", m.dir, "--address", m.Endpoint, "--console-address", m.console, "--quiet")
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start MinIO: %v", err)
	}
	done := m.done
	go func() { m.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + m.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-m.done:
			t.Fatalf("MinIO exited before it was ready: %v", m.cmd.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("MinIO was not ready within 60 seconds")
		}
	}
}

// Stop kills the server, as a crash would, and waits until it is gone.
func (m *MinIO) Stop() {
	select {
	case <-m.done:
		return
	default:
	}
	m.cmd.Process.Kill()
	<-m.done
}

// freeAddr is a local address nothing listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
