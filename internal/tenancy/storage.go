package tenancy

import "context"

// StorageRemover removes what a deleted tenant kept in object storage: its
// bucket with its logos, and the archives of its exports. Deleting a
// tenant records that its files must go, in the same transaction; they are
// removed after the commit, and a removal that fails is tried again by the
// server until it succeeds.
type StorageRemover interface {
	// RemoveTenantStorage removes the files of a deleted tenant (by slug or
	// id) now and returns how many objects it removed; ECONFLICT for a
	// tenant that is not deleted, EUNAVAILABLE while the store cannot be
	// reached (the removal is then tried again later).
	RemoveTenantStorage(ctx context.Context, ref string) (int, error)
}
