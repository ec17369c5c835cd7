# Stand-in for otel/opentelemetry-collector-contrib:${LAB_OTELCOL_VERSION}, from the
# natively built collector (scripts/native/build.sh otelcol: the ocb manifest
# otel-collector/builder-config.yaml, i.e. only the components the lab's config uses,
# where contrib has hundreds), by scripts/docker/standins.sh.
# Contract of the upstream image (open-telemetry/opentelemetry-collector-releases,
# distributions/otelcol-contrib/Dockerfile):
#   FROM scratch: no shell, no wget/curl (so compose has no healthcheck for it)
#   /etc/ssl/certs/ca-certificates.crt; binary /otelcol-contrib
#   USER 10001; ENTRYPOINT ["/otelcol-contrib"]
#   CMD ["--config", "/etc/otelcol-contrib/config.yaml"] (a default config in the image)
#   EXPOSE 4317 4318 55678 55679
FROM scratch
COPY rootfs/ /
COPY otelcol /otelcol-contrib
COPY config.yaml /etc/otelcol-contrib/config.yaml
USER 10001
EXPOSE 4317 4318 55678 55679
ENTRYPOINT ["/otelcol-contrib"]
CMD ["--config", "/etc/otelcol-contrib/config.yaml"]
