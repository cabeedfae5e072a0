# apiload-webhook: a small non-root image.
#
#   docker build -t ghcr.io/apiload/apiload-webhook:0.1.0 .
#
# The build stage runs the same `cargo build --release --locked` as CI; the
# runtime stage is distroless (CA certificates, no shell), user 65532.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p apiload-webhook -p apiload \
 && cp target/release/apiload-webhook target/release/apiload /usr/local/bin/

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/apiload-webhook /usr/local/bin/apiload-webhook
# The linter too, for `kubectl exec ... apiload explain AL101`.
COPY --from=build /usr/local/bin/apiload /usr/local/bin/apiload
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/apiload-webhook"]
