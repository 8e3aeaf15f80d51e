# Production image: one image, every role (`--role api|router|smtp|relay|all`), configured by CC_* variables.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schema ./schema
COPY channels ./channels
COPY routing ./routing
COPY contactcenter ./contactcenter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 contactcenter
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER contactcenter
WORKDIR /home/contactcenter
ENV CC_HTTP_HOST=0.0.0.0 \
    CC_HTTP_PORT=8080 \
    PYTHONUNBUFFERED=1
EXPOSE 8080 2525
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz').status == 200 else 1)"
ENTRYPOINT ["contactcenter"]
CMD ["serve", "--role", "all"]
