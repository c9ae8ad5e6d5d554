FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 NOTIFIER_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY notifier ./notifier
COPY migrations ./migrations
COPY templates ./templates
RUN pip install -e . && useradd --system --home /data notifier && mkdir -p /data && chown notifier /data
USER notifier
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["notifier", "web", "--host", "0.0.0.0", "--port", "8000"]
