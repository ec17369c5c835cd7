# Stand-in for victoriametrics/victoria-logs:v${LAB_VICTORIALOGS_VERSION}, from the
# natively built app/victoria-logs (scripts/native/build.sh victorialogs), by
# scripts/docker/standins.sh.
# Contract of the upstream image (github.com/VictoriaMetrics/VictoriaLogs,
# app/victoria-logs/multiarch/Dockerfile with deployment/docker/Makefile's root image
# gcr.io/distroless/static):
#   distroless/static: no shell, no wget (so compose has no healthcheck for it);
#   /etc/passwd, CA certificates; user root; working directory /
#   ENTRYPOINT ["/victoria-logs-prod"]; no CMD (-storageDataPath defaults to
#   victoria-logs-data relative to the working directory, i.e. /victoria-logs-data)
#   EXPOSE 9428
FROM scratch
COPY rootfs/ /
COPY victorialogs /victoria-logs-prod
EXPOSE 9428
ENTRYPOINT ["/victoria-logs-prod"]
