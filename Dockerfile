# The hub's image: API (`exchange serve`) and workers (`exchange worker`) run from it.
FROM python:3.11-slim

RUN useradd --system --uid 10001 --home-dir /srv/exchange --create-home exchange \
 && install -d -o exchange -g exchange -m 0700 /run/exchange/keys
WORKDIR /srv/exchange

COPY pyproject.toml README.md ./
COPY exchange ./exchange
COPY workers ./workers
COPY connectors ./connectors
COPY schemas ./schemas
RUN pip install --no-cache-dir . && rm -rf /root/.cache

USER exchange
ENV EXCHANGE_ENV=production \
    EXCHANGE_KEY_DIR=/run/exchange/keys \
    PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["exchange", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "4"]
