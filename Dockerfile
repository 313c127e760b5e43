# Build a static nself binary (migrations and assets are embedded) and run it
# as a non-root user in an image with nothing else in it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/nself ./cmd/nself

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/nself /usr/local/bin/nself
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/nself"]
