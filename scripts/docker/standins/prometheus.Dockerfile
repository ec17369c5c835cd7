# Stand-in for prom/prometheus:v${LAB_PROMETHEUS_VERSION}, built from the natively built
# static binaries (scripts/native/build.sh prometheus) by scripts/docker/standins.sh.
# Contract of the upstream image (github.com/prometheus/prometheus, Dockerfile at the
# module version of LAB_PROMETHEUS_VERSION):
#   FROM quay.io/prometheus/busybox  -> busybox (sh, wget: compose's healthcheck uses wget)
#   /bin/prometheus, /bin/promtool, /etc/prometheus/prometheus.yml (example config)
#   WORKDIR /prometheus, owned by nobody; USER nobody; VOLUME /prometheus
#   ENTRYPOINT ["/bin/prometheus"]
#   CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
# Difference: built with -tags remove_all_sd and without the web UI assets (API only).
FROM scratch
COPY rootfs/ /
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY prometheus promtool /bin/
COPY prometheus.yml /etc/prometheus/prometheus.yml
WORKDIR /prometheus
RUN chown -R nobody:nobody /etc/prometheus /prometheus && chmod g+w /prometheus
USER nobody
EXPOSE 9090
VOLUME ["/prometheus"]
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
