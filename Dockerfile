# Liaison's image: a static-ish release build on a minimal, non-root runtime.
# Build: docker build -t ghcr.io/liaison-dev/liaison:0.1.0 .
# (This repository's CI machines have no Docker engine; the image is built by the release
# pipeline of whoever publishes it. The chart expects the binary at /liaison, user 65532.)

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that code changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin liaison

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/liaison /liaison
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/liaison"]
CMD ["run"]
