// Command oidc-provider is the OpenID Provider the tests sign in with: the
// provider of github.com/zitadel/oidc (its op package, with the example's
// in-memory storage and login page), listening on one address, with web
// clients whose redirect URIs may be any tenant's /sso/callback on this
// machine, and the users of a JSON file. scripts/services.sh builds and
// starts it; it is a module of its own so the product does not carry the
// provider's dependencies.
//
//	oidc-provider -addr 127.0.0.1:59080 -users users.json -clients tenant-a:secret-a,tenant-b:secret-b
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "oidc-provider:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:59080", "address to listen on")
	issuer := flag.String("issuer", "", "issuer URL (default http://ADDR)")
	users := flag.String("users", "", "JSON file of users, as the example provider reads (USERS_FILE)")
	clients := flag.String("clients", "", "web clients, comma-separated ID:SECRET")
	globs := flag.String("redirect-globs", "http://*.localhost:*/sso/callback,http://127.0.0.1:*/sso/callback",
		"redirect URIs every client accepts, comma-separated globs")
	flag.Parse()
	if *users == "" || *clients == "" {
		return fmt.Errorf("-users and -clients are needed")
	}
	if *issuer == "" {
		*issuer = "http://" + *addr
	}
	store, err := storage.StoreFromFile(*users)
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	for _, c := range strings.Split(*clients, ",") {
		id, secret, ok := strings.Cut(strings.TrimSpace(c), ":")
		if !ok || id == "" || secret == "" {
			return fmt.Errorf("client %q is not ID:SECRET", c)
		}
		// Never matched: every redirect URI is accepted by the globs.
		storage.RegisterClients(storage.WebClient(id, secret, "http://localhost/unused"))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	st := &globStorage{Storage: storage.NewStorage(store), globs: strings.Split(*globs, ",")}
	h := exampleop.SetupServer(*issuer, st, log, false)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("serving", "issuer", *issuer, "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// globStorage is the example's storage, whose clients also accept the
// redirect URIs matching globs: the tests' portals listen on ports chosen
// at random, so no fixed list of URIs could name them.
type globStorage struct {
	*storage.Storage
	globs []string
}

func (s *globStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return globClient{Client: c, globs: s.globs}, nil
}

type globClient struct {
	op.Client
	globs []string
}

func (c globClient) RedirectURIGlobs() []string           { return c.globs }
func (c globClient) PostLogoutRedirectURIGlobs() []string { return nil }
