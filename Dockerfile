# Liaison's image, for those with a Docker engine or BuildKit and a registry:
#   docker build -t ghcr.io/liaison-dev/liaison:0.1.0 .
# Without a Docker engine, `make image` builds the same image (scripts/image: buildah, FROM
# scratch) into target/image/liaison-<version>.oci.tar. Both give the same layout: one static
# musl binary at /liaison (where the chart expects it), the CA bundle, nothing else, user 65532.

FROM rust:1.95-bookworm AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
# Dependencies first, so that code changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --target x86_64-unknown-linux-musl && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --target x86_64-unknown-linux-musl --bin liaison \
    && strip -o /liaison target/x86_64-unknown-linux-musl/release/liaison

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /liaison /liaison
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/liaison"]
CMD ["run"]
