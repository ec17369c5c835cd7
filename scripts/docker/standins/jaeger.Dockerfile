# Stand-in for jaegertracing/jaeger:${LAB_JAEGER_VERSION} (Jaeger v2), from the natively
# built cmd/jaeger (scripts/native/build.sh jaeger), by scripts/docker/standins.sh.
# Contract of the upstream image (github.com/jaegertracing/jaeger, cmd/jaeger/Dockerfile,
# release stage; base image: Jaeger's alpine base with ca-certificates):
#   alpine base -> busybox (sh, wget: compose's healthcheck uses wget)
#   ENV JAEGER_LISTEN_HOST=0.0.0.0 (read by the configs for their listen addresses)
#   /cmd/jaeger/jaeger-linux, /cmd/jaeger/sampling-strategies.json
#   VOLUME ["/tmp"]; USER 10001; ENTRYPOINT ["/cmd/jaeger/jaeger-linux"]; no CMD
#   (without --config the binary runs its built-in all-in-one config, memory storage)
#   EXPOSE 5778 5779 4317 4318 14268 14250 9411 16686 13132 13133
FROM scratch
COPY rootfs/ /
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV JAEGER_LISTEN_HOST=0.0.0.0
EXPOSE 5778 5779 4317 4318 14268 14250 9411 16686 13132 13133
COPY jaeger /cmd/jaeger/jaeger-linux
COPY sampling-strategies.json /cmd/jaeger/sampling-strategies.json
VOLUME ["/tmp"]
ENTRYPOINT ["/cmd/jaeger/jaeger-linux"]
USER 10001
