# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 QUICKSEND_VAR_DIR=/app/var
WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir -e .
COPY . .
RUN QUICKSEND_MODE=embedded python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["uvicorn", "quicksend.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--lifespan", "off", "--proxy-headers", "--forwarded-allow-ips", "*"]
