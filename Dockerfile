# Production image: BoxSync only (no simulator sandbox). Configure with BOXSYNC_* variables;
# BOXSYNC_ENV=production requires an https BOXSYNC_BASE_URL and a BOXSYNC_SECRET_KEY.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BOXSYNC_HOME=/app \
    BOXSYNC_ENV=production

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && useradd --system --uid 10001 --home /app boxsync
COPY atlassian-connect.json ./
COPY templates ./templates
COPY static ./static
RUN mkdir -p /app/var && chown boxsync /app/var

USER boxsync
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
# Apply migrations, then serve; behind a TLS-terminating proxy that sets X-Forwarded-* headers.
# Every container may do this at once: migrations take turns under a PostgreSQL advisory lock, and a
# container whose release is behind a compatible newer schema leaves it alone (README, Storage).
# exec: the server receives the container's stop signal itself.
CMD ["sh", "-c", "boxsync migrate && exec boxsync serve --host 0.0.0.0 --port 8000"]
