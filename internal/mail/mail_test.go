package mail_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nself/nself/internal/faulttest"
	"github.com/nself/nself/internal/mail"
	"github.com/nself/nself/internal/tenancy"
)

// Sends through the real SMTP server (mailpit) that scripts/services.sh
// starts, and reads the message back through its API.
func TestSendThroughSMTP(t *testing.T) {
	host, portText, api := os.Getenv("SMTP_HOST"), os.Getenv("SMTP_PORT"), os.Getenv("MAILPIT_URL")
	if host == "" || api == "" {
		t.Fatal("SMTP_HOST, SMTP_PORT and MAILPIT_URL must be set: run `make test` or eval \"$(scripts/services.sh env)\"")
	}
	port, _ := strconv.Atoi(portText)
	to := "user-" + uuid.NewString()[:8] + "@example.test"
	m := mail.New(mail.Config{Host: host, Port: port, From: "no-reply@nself.test"})
	err := m.Send(context.Background(), tenancy.Message{
		To: to, Subject: "Welcome to Acme <&>",
		HTML: "<p>Hello <strong>Ann</strong></p>", Text: "Hello Ann", FromName: "Acme, \"Corp\" <Ltd>",
	})
	if err != nil {
		t.Fatal(err)
	}

	var found struct {
		Messages []struct {
			ID      string
			Subject string
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(found.Messages) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no message to %s arrived", to)
		}
		getJSON(t, api+"/api/v1/search?query="+url.QueryEscape("to:"+to), &found)
		time.Sleep(50 * time.Millisecond)
	}
	if found.Messages[0].Subject != "Welcome to Acme <&>" {
		t.Errorf("subject = %q", found.Messages[0].Subject)
	}
	var msg struct {
		HTML, Text string
		From       struct{ Name, Address string }
	}
	getJSON(t, api+"/api/v1/message/"+found.Messages[0].ID, &msg)
	// The tenant's name beside the platform's address, quoted as it must be.
	if !strings.Contains(msg.HTML, "<strong>Ann</strong>") || strings.TrimSpace(msg.Text) != "Hello Ann" ||
		msg.From.Address != "no-reply@nself.test" || msg.From.Name != `Acme, "Corp" <Ltd>` {
		t.Errorf("message = %+v", msg)
	}
}

func TestSendErrors(t *testing.T) {
	err := mail.New(mail.Config{}).Send(context.Background(), tenancy.Message{To: "a@b.test"})
	if err == nil || !strings.Contains(err.Error(), "SMTP_HOST is not set") {
		t.Errorf("no host: %v", err)
	}
	// Nothing listens on port 9 of the loopback: a clear error, quickly.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = mail.New(mail.Config{Host: "127.0.0.1", Port: 9, From: "x@nself.test"}).Send(ctx, tenancy.Message{To: "a@b.test", Text: "x", HTML: "x"})
	if err == nil || !strings.Contains(err.Error(), "a@b.test") {
		t.Errorf("unreachable server: %v", err)
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(fmt.Errorf("GET %s: %w", u, err))
	}
}

// A mail server that accepts connections and never answers (or none at
// all) fails a send within the timeout, as unavailable, naming the mail
// server; the request that sends does not hang.
func TestSendToUnavailableServer(t *testing.T) {
	t.Parallel()
	hole := faulttest.NewBlackhole(t)
	for name, addr := range map[string]string{"never answers": hole.Addr(), "refuses": "127.0.0.1:1"} {
		host, portText, _ := strings.Cut(addr, ":")
		port, _ := strconv.Atoi(portText)
		m := mail.New(mail.Config{Host: host, Port: port, From: "no-reply@nself.test", Timeout: time.Second})
		start := time.Now()
		err := m.Send(context.Background(), tenancy.Message{To: "ann@example.test", Subject: "Hi", HTML: "<p>Hi</p>", Text: "Hi"})
		var te *tenancy.Error
		if !errors.As(err, &te) || te.Code != tenancy.EUNAVAILABLE || te.Service != tenancy.ServiceMail ||
			!strings.HasPrefix(tenancy.ErrorMessage(err), "The mail server is unavailable") {
			t.Errorf("%s: %v, want the mail server unavailable", name, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: failed after %s; the timeout is 1s", name, d)
		}
	}
}
