package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/nself/nself/internal/postgres"
)

// orphanSweep is serve's periodic removal of objects no row refers to.
type orphanSweep struct {
	every, grace time.Duration
}

func (o *orphanSweep) flags(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&o.every, "orphan-sweep", time.Hour, "how often objects no row refers to are looked for in tenants' buckets (0: never)")
	cmd.Flags().DurationVar(&o.grace, "orphan-grace", time.Hour, "how old an object no row refers to must be to be removed")
}

// start sweeps every interval until ctx ends. Several server processes may
// all run it: removing an object twice is no error.
func (o *orphanSweep) start(ctx context.Context, a *app, db *postgres.DB, log *slog.Logger) {
	if o.every <= 0 || a.cfg.MinioEndpoint == "" {
		return
	}
	store, err := a.blobStore()
	if err != nil {
		log.Warn("objects no row refers to are not swept", "err", err)
		return
	}
	sweeper := postgres.NewObjectSweeper(db, store)
	sweeper.Grace = o.grace
	sweeper.Log = log
	go runEvery(ctx, o.every, func() {
		n, err := sweeper.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("orphan sweep", "removed", n, "err", err)
		case n > 0:
			log.Info("orphan sweep", "removed", n)
		}
	})
}
