package password

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestHashMemory(t *testing.T) {
	if int(params.Memory)<<10 != HashMemory {
		t.Errorf("params take %d KiB, HashMemory says %d bytes", params.Memory, HashMemory)
	}
}

// No more than MaxConcurrent hashes run at once; a caller waits for a
// turn only as long as its context allows.
func TestHashesWaitTheirTurn(t *testing.T) {
	h, err := Hash(context.Background(), "a password")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Check(context.Background(), "a password", h); !ok || err != nil {
		t.Fatalf("check: %v %v", ok, err)
	}
	// Every turn taken, as by MaxConcurrent hashes under way.
	if err := slots.Acquire(context.Background(), MaxConcurrent); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Hash(ctx, "a password"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hash with every turn taken: %v", err)
	}
	if _, err := Check(ctx, "a password", h); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("check with every turn taken: %v", err)
	}
	done := make(chan error)
	go func() {
		_, err := Check(context.Background(), "a password", h)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a check ran with every turn taken: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	slots.Release(MaxConcurrent)
	if err := <-done; err != nil {
		t.Errorf("check after a turn freed: %v", err)
	}
}
