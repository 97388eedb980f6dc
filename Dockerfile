# One image for the web, model and job processes (docker-compose.yml). CPU torch by default; for a GPU node build
# with --build-arg TORCH_INDEX_URL=<a CUDA wheel index> --build-arg TORCH_SPEC=torch==<version>.
FROM python:3.11-slim
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /srv/dynairx
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "$TORCH_SPEC"
COPY pyproject.toml README.md dynairx_cli.py gunicorn.conf.py Procfile ./
COPY app ./app
COPY clinical ./clinical
COPY data_access ./data_access
COPY models ./models
COPY assets ./assets
RUN pip install --no-cache-dir . && useradd --create-home dynairx && mkdir -p var && chown dynairx var
USER dynairx
EXPOSE 8050 8060
CMD ["gunicorn", "-c", "gunicorn.conf.py", "app.wsgi:server"]
