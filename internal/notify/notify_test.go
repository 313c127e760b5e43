package notify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nself/nself/internal/blob/blobtest"
	"github.com/nself/nself/internal/notify"
	"github.com/nself/nself/internal/pgtest"
	"github.com/nself/nself/internal/postgres"
	"github.com/nself/nself/internal/tenancy"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// tenantURL is how the platform configured with PUBLIC_SCHEME=https,
// BASE_DOMAIN=nself.test and PUBLIC_PORT=8443 names a tenant's portal.
func tenantURL(slug string) string {
	return "https://" + net.JoinHostPort(slug+".nself.test", strconv.Itoa(8443))
}

func composer(db *postgres.DB, logos notify.Logos) *notify.Composer {
	return &notify.Composer{Templates: postgres.NewEmailTemplateService(db), Branding: postgres.NewBrandingService(db),
		Logos: logos, TenantURL: tenantURL, Log: quiet}
}

// mailbox records what it is given; fail makes it refuse instead.
type mailbox struct {
	mu    sync.Mutex
	sent  []tenancy.Message
	tried int
	fail  error
	delay time.Duration
}

func (m *mailbox) Send(ctx context.Context, msg tenancy.Message) error {
	time.Sleep(m.delay)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tried++
	if m.fail != nil {
		return m.fail
	}
	m.sent = append(m.sent, msg)
	return nil
}

func (m *mailbox) messages() []tenancy.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]tenancy.Message(nil), m.sent...)
}

func sender(db *postgres.DB, mb *mailbox) *notify.Sender {
	return &notify.Sender{Outbox: postgres.NewMailOutbox(db), Mailer: mb, Composer: composer(db, nil),
		Retry: tenancy.DefaultMailRetry, Log: quiet}
}

func mustTenant(t *testing.T, db *postgres.DB, slug string) *tenancy.Tenant {
	t.Helper()
	c, err := postgres.NewTenantService(db, tenancy.ModeHybrid).CreateTenant(context.Background(), tenancy.NewTenant{Name: strings.ToUpper(slug[:1]) + slug[1:] + " Inc", Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	return c.Tenant
}

func pngLogo(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 40, 20))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The welcome mail of a new account is the tenant's customized template,
// filled with real values for every variable the guide names: the company
// name, the user, the email logo, the brand color, the support address and
// the sign-in link with the configured scheme, host and port.
func TestWelcomeUsesTheTenantsTemplateAndLook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	acme := mustTenant(t, db, "acme")
	branding := postgres.NewBrandingService(db)
	color := "#ff6b35"
	if _, err := branding.SetBrand(ctx, acme.ID, tenancy.BrandUpdate{Primary: &color}); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"branding.company_name": "Acme Corporation", "contact.support_email": "help@acme.test"} {
		if _, err := branding.SetSetting(ctx, acme.ID, k, v); err != nil {
			t.Fatal(err)
		}
	}
	logos := postgres.NewLogoService(db, blobtest.New(t))
	logo, err := logos.UploadLogo(ctx, acme.ID, tenancy.LogoEmail, pngLogo(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.NewEmailTemplateService(db).Customize(ctx, acme.ID, "welcome", "Welcome aboard {{TENANT_NAME}}, {{USER_NAME}}",
		`<img src="{{LOGO_URL}}" alt=""><h1 style="color:{{PRIMARY_COLOR}}">Hi {{USER_NAME}} ({{USER_EMAIL}})</h1>`+
			`<p><a href="{{ACTION_URL}}">Sign in</a> · <a href="{{SUPPORT_URL}}">Help</a></p>`, "", tenancy.PlatformActor()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := postgres.NewUserService(db).CreateUser(ctx, acme.ID, tenancy.NewUser{Email: "bob@acme.test", Name: "Bob", Password: "a long password"}); err != nil {
		t.Fatal(err)
	}
	mb := &mailbox{}
	s := sender(db, mb)
	s.Composer = composer(db, logos)
	if res, err := s.RunOnce(ctx); err != nil || res.Sent != 1 {
		t.Fatalf("run: %+v %v", res, err)
	}
	sent := mb.messages()
	if len(sent) != 1 {
		t.Fatalf("%d mails", len(sent))
	}
	m := sent[0]
	if m.To != "bob@acme.test" || m.Template != "welcome" || m.Subject != "Welcome aboard Acme Corporation, Bob" {
		t.Errorf("mail %q to %s (%s)", m.Subject, m.To, m.Template)
	}
	for _, want := range []string{
		`<img src="https://acme.nself.test:8443/logo/email?v=` + logo.SHA256[:16] + `"`,
		`color:#ff6b35`, `Hi Bob (bob@acme.test)`,
		`<a href="https://acme.nself.test:8443/">Sign in</a>`, `<a href="mailto:help@acme.test">Help</a>`,
	} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("HTML lacks %s:\n%s", want, m.HTML)
		}
	}
	// A sent mail forgets its link, which may be a secret.
	var link string
	if err := db.Admin.QueryRow(ctx, `SELECT link FROM tenants.tenant_mail_outbox`).Scan(&link); err != nil || link != "" {
		t.Errorf("link after sending: %q %v", link, err)
	}
}

// Two senders on their own connections, as two server processes are,
// deliver every mail exactly once between them.
func TestTwoSendersDeliverEachMailOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	urls := pgtest.NewURLs(t)
	open := func() *postgres.DB {
		db, err := postgres.Open(ctx, urls.App, urls.Admin)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return db
	}
	db := open()
	const perTenant = 20
	users := postgres.NewUserService(db)
	for _, slug := range []string{"acme", "beta", "gamma"} {
		tn := mustTenant(t, db, slug)
		for i := range perTenant {
			if _, _, err := users.CreateUser(ctx, tn.ID, tenancy.NewUser{Email: fmt.Sprintf("u%d@%s.test", i, slug), Password: "a long password"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var boxes []*mailbox
	var wg sync.WaitGroup
	// Both senders are made (their pools opened) before either sends, so
	// that neither has the outbox to itself for a while.
	start := make(chan struct{})
	for range 2 {
		mb := &mailbox{delay: 2 * time.Millisecond}
		boxes = append(boxes, mb)
		s := sender(open(), mb)
		s.Batch = 4
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for idle := 0; idle < 3; {
				res, err := s.RunOnce(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Sent == 0 {
					idle++
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	got := map[string]int{}
	for i, mb := range boxes {
		sent := mb.messages()
		if len(sent) == 0 {
			t.Errorf("sender %d sent nothing: the senders did not run side by side", i)
		}
		for _, m := range sent {
			got[m.To]++
		}
	}
	if len(got) != 3*perTenant {
		t.Errorf("%d recipients got mail, want %d", len(got), 3*perTenant)
	}
	for to, n := range got {
		if n != 1 {
			t.Errorf("%s got %d mails", to, n)
		}
	}
}

// A failed attempt is tried again after a wait that doubles, and the mail
// is given up after the last attempt, visible with why; sent again from
// the console, it goes. While the mail server cannot be reached, a run
// stops at the first failure and hands the rest back untried.
func TestFailedMailIsRetriedAndGivenUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	acme := mustTenant(t, db, "acme")
	users := postgres.NewUserService(db)
	for i := range 3 {
		if _, _, err := users.CreateUser(ctx, acme.ID, tenancy.NewUser{Email: fmt.Sprintf("u%d@acme.test", i), Password: "a long password"}); err != nil {
			t.Fatal(err)
		}
	}
	outbox := postgres.NewMailOutbox(db)
	mb := &mailbox{fail: tenancy.Unavailable(tenancy.ServiceMail, errors.New("dial tcp: connection refused"))}
	s := sender(db, mb)
	s.Retry = tenancy.MailRetry{MinDelay: 50 * time.Millisecond, MaxDelay: 100 * time.Millisecond, MaxAttempts: 3}

	res, err := s.RunOnce(ctx)
	if err != nil || res.Failed != 1 || res.Sent != 0 {
		t.Fatalf("first run with the server down: %+v %v", res, err)
	}
	all, _, err := outbox.List(ctx, tenancy.MailFilter{})
	if err != nil || len(all) != 3 {
		t.Fatalf("outbox: %d mails, %v", len(all), err)
	}
	tried := 0
	for _, m := range all {
		switch m.Attempts {
		case 1:
			tried++
			if m.State() != tenancy.MailRetrying || m.LastError != "the mail server could not be reached" {
				t.Errorf("tried mail: %s %q", m.State(), m.LastError)
			}
		case 0:
			if m.State() != tenancy.MailQueued {
				t.Errorf("untried mail: %s", m.State())
			}
		default:
			t.Errorf("a mail was tried %d times", m.Attempts)
		}
	}
	if tried != 1 {
		t.Errorf("%d mails tried while the server was down, want 1", tried)
	}

	// Tried until given up.
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, _, err := outbox.List(ctx, tenancy.MailFilter{Undelivered: true})
		if err != nil {
			t.Fatal(err)
		}
		given := 0
		for _, m := range list {
			if m.State() == tenancy.MailFailed {
				given++
				if m.Attempts != 3 {
					t.Errorf("given up after %d attempts", m.Attempts)
				}
			}
		}
		if given == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 mails given up", given)
		}
		s.RunOnce(ctx)
		time.Sleep(20 * time.Millisecond)
	}
	// Given up means given up: no more attempts.
	mb.fail = nil
	if res, _ := s.RunOnce(ctx); res.Sent != 0 {
		t.Errorf("a given-up mail was sent: %+v", res)
	}
	list, _, _ := outbox.List(ctx, tenancy.MailFilter{Undelivered: true})
	if _, err := outbox.Retry(ctx, acme.ID, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if res, _ := s.RunOnce(ctx); res.Sent != 1 || len(mb.messages()) != 1 || mb.messages()[0].To != list[0].To {
		t.Errorf("after sending again: %+v %v", res, mb.messages())
	}
	if _, err := outbox.Retry(ctx, acme.ID, list[0].ID); tenancy.ErrorCode(err) != tenancy.ENOTFOUND {
		t.Errorf("a sent mail sent again: %v", err)
	}
}

// A sender that claimed mail and died holds it only until its claim
// expires; then another sender sends it, and the dead one's claim no
// longer counts.
func TestCrashedSendersClaimExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	acme := mustTenant(t, db, "acme")
	if _, _, err := postgres.NewUserService(db).CreateUser(ctx, acme.ID, tenancy.NewUser{Email: "bob@acme.test", Password: "a long password"}); err != nil {
		t.Fatal(err)
	}
	outbox := postgres.NewMailOutbox(db)
	claimed, err := outbox.Claim(ctx, 10, 500*time.Millisecond)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	mb := &mailbox{}
	s := sender(db, mb)
	if res, _ := s.RunOnce(ctx); res.Sent != 0 {
		t.Fatalf("a claimed mail was sent by another sender: %+v", res)
	}
	time.Sleep(600 * time.Millisecond)
	if res, _ := s.RunOnce(ctx); res.Sent != 1 {
		t.Fatalf("after the claim expired: %+v", res)
	}
	if ok, err := outbox.Sent(ctx, claimed[0]); ok || err != nil {
		t.Errorf("the expired claim marked the mail: %v %v", ok, err)
	}
	if n := len(mb.messages()); n != 1 {
		t.Errorf("%d mails", n)
	}
}

// A change that fails leaves no mail behind: the mail is written in the
// change's transaction. A trigger makes the audit entry, the change's last
// write, fail.
func TestFailedChangeLeavesNoMail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	acme := mustTenant(t, db, "acme")
	for _, sql := range []string{
		`CREATE FUNCTION public.refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN
		   IF NEW.action IN ('user.create', 'invitation.create') THEN
		     RAISE EXCEPTION 'audit refused for the test';
		   END IF;
		   RETURN NEW;
		 END $$`,
		`CREATE TRIGGER refuse BEFORE INSERT ON audit.events FOR EACH ROW EXECUTE FUNCTION public.refuse_audit()`,
	} {
		if _, err := db.Admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := postgres.NewUserService(db).CreateUser(ctx, acme.ID, tenancy.NewUser{Email: "bob@acme.test"}); err == nil {
		t.Fatal("the user was created")
	}
	if _, _, err := postgres.NewInvitationService(db).Invite(ctx, acme.ID, tenancy.NewInvitation{Email: "ann@acme.test", Role: tenancy.RoleMember}, tenancy.PlatformActor()); err == nil {
		t.Fatal("the invitation was made")
	}
	var users, invitations, mails int
	if err := db.Admin.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM auth.users), (SELECT count(*) FROM tenants.tenant_invitations), (SELECT count(*) FROM tenants.tenant_mail_outbox)`).
		Scan(&users, &invitations, &mails); err != nil {
		t.Fatal(err)
	}
	if users != 0 || invitations != 0 || mails != 0 {
		t.Errorf("after failed changes: %d users, %d invitations, %d mails", users, invitations, mails)
	}
}

// A sender skips the mail another sender is claiming at that moment
// (FOR UPDATE SKIP LOCKED), instead of waiting for it or taking it too.
func TestClaimSkipsMailAnotherSenderHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	acme := mustTenant(t, db, "acme")
	users := postgres.NewUserService(db)
	for i := range 3 {
		if _, _, err := users.CreateUser(ctx, acme.ID, tenancy.NewUser{Email: fmt.Sprintf("u%d@acme.test", i), Password: "a long password"}); err != nil {
			t.Fatal(err)
		}
	}
	// Another sender's claim, caught before it commits: the row is locked.
	tx, err := db.App.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, acme.ID); err != nil {
		t.Fatal(err)
	}
	var held string
	if err := tx.QueryRow(ctx, `
		UPDATE tenants.tenant_mail_outbox SET claim = gen_random_uuid(), attempts = attempts + 1, next_attempt_at = now() + interval '1 minute'
		WHERE id = (SELECT id FROM tenants.tenant_mail_outbox ORDER BY recipient LIMIT 1)
		RETURNING recipient`).Scan(&held); err != nil {
		t.Fatal(err)
	}
	mb := &mailbox{}
	s := sender(db, mb)
	runCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	res, err := s.RunOnce(runCtx)
	if err != nil || res.Sent != 2 {
		t.Fatalf("run beside a claim in progress: %+v %v", res, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if res, _ := s.RunOnce(ctx); res.Sent != 0 {
		t.Errorf("the mail another sender holds was sent: %+v", res)
	}
	for _, m := range mb.messages() {
		if m.To == held {
			t.Errorf("%s was sent, though another sender held it", held)
		}
	}
}

// A mail the server refuses for good is given up at once. A given-up mail
// with a secret link forgets the link and cannot be sent again; one
// without a secret can. Old mail is forgotten even in a quiet tenant.
func TestRefusedMailAndOldMail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	acme := mustTenant(t, db, "acme")
	if _, _, err := postgres.NewUserService(db).CreateUser(ctx, acme.ID, tenancy.NewUser{Email: "ann@acme.test", Password: "a long password"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := postgres.NewAuthService(db).RequestPasswordReset(ctx, acme.ID, "ann@acme.test"); err != nil {
		t.Fatal(err)
	}
	outbox := postgres.NewMailOutbox(db)
	mb := &mailbox{fail: tenancy.Errorf(tenancy.EINVALID, "the mail server refused the message: 550 no such user")}
	s := sender(db, mb)
	if res, err := s.RunOnce(ctx); err != nil || res.GivenUp != 2 || res.Failed != 0 {
		t.Fatalf("run against a refusing server: %+v %v", res, err)
	}
	var secrets int
	tx, err := db.Admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	tx.Exec(ctx, `SELECT tenants.set_context($1, NULL)`, acme.ID)
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM tenants.tenant_mail_outbox WHERE link <> '' AND template = 'password_reset'`).Scan(&secrets); err != nil {
		t.Fatal(err)
	}
	if secrets != 0 {
		t.Error("a given-up reset mail keeps its link")
	}
	list, _, err := outbox.List(ctx, tenancy.MailFilter{Undelivered: true})
	if err != nil || len(list) != 2 {
		t.Fatalf("undelivered: %d, %v", len(list), err)
	}
	for _, m := range list {
		_, err := outbox.Retry(ctx, acme.ID, m.ID)
		switch {
		case m.Template == "password_reset" && tenancy.ErrorCode(err) != tenancy.EINVALID:
			t.Errorf("a reset mail without its link sent again: %v", err)
		case m.Template != "password_reset" && err != nil:
			t.Errorf("send %s again: %v", m.Template, err)
		}
	}

	// Mail sent long ago goes, though the tenant has none due.
	mb.fail = nil
	if res, _ := s.RunOnce(ctx); res.Sent != 1 {
		t.Fatalf("sent %+v, want the welcome", res)
	}
	tx.Exec(ctx, `UPDATE tenants.tenant_mail_outbox SET sent_at = now() - interval '40 days' WHERE sent_at IS NOT NULL`)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := outbox.Forget(ctx); err != nil || n != 1 {
		t.Errorf("forget: %d, %v", n, err)
	}
}

func (m *mailbox) messagesTried() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tried
}

func (m *mailbox) setFail(err error) {
	m.mu.Lock()
	m.fail = err
	m.mu.Unlock()
}

// A sender that sleeps until woken, with no notice coming and an hour
// between its own looks, still sends when mail falls due: a mail a dead
// sender claimed once the claim ends, and a failed mail when its retry is
// due.
func TestSenderWakesWhenMailFallsDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	acme := mustTenant(t, db, "acme")
	if _, _, err := postgres.NewUserService(db).CreateUser(ctx, acme.ID, tenancy.NewUser{Email: "bob@acme.test", Password: "a long password"}); err != nil {
		t.Fatal(err)
	}
	outbox := postgres.NewMailOutbox(db)
	if claimed, err := outbox.Claim(ctx, 10, 1500*time.Millisecond); err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	mb := &mailbox{fail: tenancy.Unavailable(tenancy.ServiceMail, errors.New("dial tcp: connection refused"))}
	s := sender(db, mb)
	s.Retry = tenancy.MailRetry{MinDelay: 1500 * time.Millisecond, MaxDelay: 2 * time.Second, MaxAttempts: 5}
	s.Wake = make(chan struct{})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.Run(runCtx, time.Hour) }()
	defer func() { stop(); <-done }()

	attempts := func() int {
		list, _, err := outbox.List(ctx, tenancy.MailFilter{})
		if err != nil || len(list) != 1 {
			t.Fatalf("outbox: %d mails, %v", len(list), err)
		}
		return list[0].Attempts
	}
	deadline := time.Now().Add(5 * time.Second)
	for attempts() < 2 || mb.messagesTried() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the dead sender's claim ended and no one tried the mail (attempts %d)", attempts())
		}
		time.Sleep(50 * time.Millisecond)
	}
	mb.setFail(nil)
	deadline = time.Now().Add(5 * time.Second)
	for len(mb.messages()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the failed mail was not tried again when its retry was due")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
