package tenancy

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"strconv"
	"strings"
	"time"
)

// LogoKind is which of a tenant's logos an image is.
type LogoKind string

const (
	LogoMain  LogoKind = "main"  // shown in the portal's header and on the sign-in page
	LogoIcon  LogoKind = "icon"  // the favicon
	LogoEmail LogoKind = "email" // shown in emails
	LogoDark  LogoKind = "dark"  // the main logo for dark backgrounds
)

// LogoKinds lists every kind, in the order they are shown.
var LogoKinds = []LogoKind{LogoMain, LogoIcon, LogoEmail, LogoDark}

// ParseLogoKind checks a kind named by a person.
func ParseLogoKind(s string) (LogoKind, error) {
	for _, k := range LogoKinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", FieldErrorf(EINVALID, "type", "logo type %s is not one of main, icon, email, dark", Quote(s))
}

// Logo is a stored logo: its object in the tenant's bucket and what was
// learnt of the image when it was checked.
type Logo struct {
	TenantID    string
	Kind        LogoKind
	ObjectKey   string
	ContentType string
	Size        int64
	Width       int // 0 when an SVG does not say
	Height      int
	SHA256      string // hex; also the HTTP ETag
	CreatedAt   time.Time
}

// LogoService stores tenants' logos. Every call is in one tenant's context.
type LogoService interface {
	// UploadLogo checks data and makes it the tenant's logo of that kind,
	// replacing any previous one.
	UploadLogo(ctx context.Context, tenantID string, kind LogoKind, data []byte) (*Logo, error)
	// RemoveLogo removes the tenant's logo of that kind; ENOTFOUND if none.
	RemoveLogo(ctx context.Context, tenantID string, kind LogoKind) (*Logo, error)
	// ListLogos returns the tenant's logos, in the order of LogoKinds.
	ListLogos(ctx context.Context, tenantID string) ([]*Logo, error)
	// GetLogo returns the tenant's logo of that kind and its bytes;
	// ENOTFOUND if none.
	GetLogo(ctx context.Context, tenantID string, kind LogoKind) (*Logo, []byte, error)
}

// BlobStore keeps objects in buckets: the storage behind logos.
type BlobStore interface {
	Put(ctx context.Context, bucket, key string, data []byte, contentType string) error
	// Get returns an object's bytes; ENOTFOUND when it does not exist.
	Get(ctx context.Context, bucket, key string) ([]byte, error)
	// Remove removes an object; removing a missing one is not an error.
	Remove(ctx context.Context, bucket, key string) error
	EnsureBucket(ctx context.Context, bucket string) error
}

// TenantBucket is the name of a tenant's bucket: "tenant-" and its id, 43
// characters, within the 63 a bucket name may have.
func TenantBucket(tenantID string) string { return "tenant-" + strings.ToLower(tenantID) }

// Image content types a logo may have.
const (
	TypePNG  = "image/png"
	TypeJPEG = "image/jpeg"
	TypeWebP = "image/webp"
	TypeSVG  = "image/svg+xml"
)

// LogoLimits bound an upload.
type LogoLimits struct {
	MaxBytes  int
	MaxWidth  int
	MaxHeight int
}

// DefaultLogoLimits are the limits the product guide states.
var DefaultLogoLimits = LogoLimits{MaxBytes: 2 << 20, MaxWidth: 4096, MaxHeight: 4096}

// LogoImage is what checking an upload learnt of it.
type LogoImage struct {
	ContentType string
	Width       int
	Height      int
}

// Ext is the file name extension for the image's type.
func (i *LogoImage) Ext() string {
	switch i.ContentType {
	case TypePNG:
		return ".png"
	case TypeJPEG:
		return ".jpg"
	case TypeWebP:
		return ".webp"
	}
	return ".svg"
}

func logoInvalid(format string, args ...any) error {
	return FieldErrorf(EINVALID, "file", format, args...)
}

// Check decides what an upload is from its bytes alone (the name and the
// type a client claims are ignored) and refuses it unless it is a PNG,
// JPEG, WebP or SVG image within the limits. Raster dimensions are read
// from the image's header without decoding its pixels, so an image that
// claims enormous dimensions is refused before anything is allocated for
// it. An SVG with anything that could run script or fetch from elsewhere
// is refused rather than cleaned: a cleaner that misses one construct
// serves script from the tenant's host, a refusal costs the uploader an
// edit. The SVG rules are in svg.go.
func (l LogoLimits) Check(data []byte) (*LogoImage, error) {
	if len(data) == 0 {
		return nil, logoInvalid("the file is empty")
	}
	if len(data) > l.MaxBytes {
		return nil, logoInvalid("the file is %s; a logo may be at most %s", FormatBytes(int64(len(data))), FormatBytes(int64(l.MaxBytes)))
	}
	var img *LogoImage
	var err error
	switch {
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		img, err = configOf(TypePNG, png.DecodeConfig, data)
	case bytes.HasPrefix(data, []byte("\xff\xd8\xff")):
		img, err = configOf(TypeJPEG, jpeg.DecodeConfig, data)
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		img, err = webpConfig(data)
	default:
		img, err = checkSVG(data)
	}
	if err != nil {
		return nil, err
	}
	if img.Width > l.MaxWidth || img.Height > l.MaxHeight {
		return nil, logoInvalid("the image is %d×%d pixels; a logo may be at most %d×%d", img.Width, img.Height, l.MaxWidth, l.MaxHeight)
	}
	return img, nil
}

func configOf(ct string, decode func(io.Reader) (image.Config, error), data []byte) (*LogoImage, error) {
	c, err := decode(bytes.NewReader(data))
	if err != nil || c.Width <= 0 || c.Height <= 0 {
		return nil, logoInvalid("the file is not a readable %s image", strings.TrimPrefix(ct, "image/"))
	}
	return &LogoImage{ContentType: ct, Width: c.Width, Height: c.Height}, nil
}

// webpConfig reads a WebP's dimensions from its first chunk: VP8 (lossy),
// VP8L (lossless) or VP8X (extended, with the canvas size).
func webpConfig(data []byte) (*LogoImage, error) {
	bad := logoInvalid("the file is not a readable webp image")
	if len(data) < 30 {
		return nil, bad
	}
	chunk, body := string(data[12:16]), data[20:]
	var w, h int
	switch chunk {
	case "VP8 ":
		// A frame tag of 3 bytes, the start code, then 14-bit dimensions.
		if body[3] != 0x9d || body[4] != 0x01 || body[5] != 0x2a {
			return nil, bad
		}
		w = int(binary.LittleEndian.Uint16(body[6:8]) & 0x3fff)
		h = int(binary.LittleEndian.Uint16(body[8:10]) & 0x3fff)
	case "VP8L":
		if body[0] != 0x2f {
			return nil, bad
		}
		b := binary.LittleEndian.Uint32(body[1:5])
		w, h = int(b&0x3fff)+1, int((b>>14)&0x3fff)+1
	case "VP8X":
		w = int(uint32(body[4])|uint32(body[5])<<8|uint32(body[6])<<16) + 1
		h = int(uint32(body[7])|uint32(body[8])<<8|uint32(body[9])<<16) + 1
	default:
		return nil, bad
	}
	if w <= 0 || h <= 0 {
		return nil, bad
	}
	return &LogoImage{ContentType: TypeWebP, Width: w, Height: h}, nil
}

// errNotSVG marks bytes that are no image of any accepted type.
var errNotSVG = logoInvalid("the file is not a PNG, JPEG, WebP or SVG image")

// svgSize reads an SVG's size from width and height in pixels, or its
// viewBox; 0 when it says neither.
func svgSize(attrs []xml.Attr) (int, int) {
	var w, h float64
	var viewBox string
	for _, a := range attrs {
		switch a.Name.Local {
		case "width":
			w = pixels(a.Value)
		case "height":
			h = pixels(a.Value)
		case "viewBox":
			viewBox = a.Value
		}
	}
	if (w == 0 || h == 0) && viewBox != "" {
		f := strings.Fields(strings.ReplaceAll(viewBox, ",", " "))
		if len(f) == 4 {
			w, _ = strconv.ParseFloat(f[2], 64)
			h, _ = strconv.ParseFloat(f[3], 64)
		}
	}
	if w < 0 || h < 0 || w > 1e6 || h > 1e6 {
		return 1 << 30, 1 << 30 // refused by the limits
	}
	return int(w + 0.5), int(h + 0.5)
}

func pixels(s string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "px"), 64)
	if err != nil {
		return 0 // a percentage or other unit: no size in pixels
	}
	return f
}

// FormatBytes writes a size for people: 512 bytes, 1.5 KB, 2.0 MB.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KB"
	}
	return fmt.Sprintf("%d bytes", n)
}
