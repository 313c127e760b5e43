package web

import (
	"errors"

	"github.com/nself/nself/internal/tenancy"
)

func asDomain(err error, e **tenancy.Error) bool { return errors.As(err, e) }
