# Stand-in for ${LAB_PYTHON_IMAGE} (python:3.11-slim), which runs
# alertmanager/webhook_sink.py in compose; built by scripts/docker/standins.sh FROM a
# Debian bookworm base made locally with `debootstrap --variant=minbase` and
# `docker import` (bookworm's python3 is 3.11, the stdlib is all the sink needs).
# Contract of the upstream image (docker-library/python, 3.11/slim-*/Dockerfile):
#   Debian slim base; python at /usr/local/bin/python and python3; ENV LANG C.UTF-8
#   user root; working directory /; no ENTRYPOINT; CMD ["python3"]
# Difference: the interpreter is Debian's /usr/bin/python3.11, linked from /usr/local/bin.
FROM ml-obs-lab/debian-bookworm-python3:base
RUN ln -sf /usr/bin/python3.11 /usr/local/bin/python3 && ln -sf /usr/bin/python3.11 /usr/local/bin/python
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
WORKDIR /
CMD ["python3"]
