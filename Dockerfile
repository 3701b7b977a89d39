# One image for the five services (DESIGN.md §2); docker-compose.yml picks the service with SERVICE.
# syntax=docker/dockerfile:1.7

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY . .
RUN npm ci --no-audit --no-fund \
 && NX_DAEMON=false npx nx run-many -t build --output-style=static

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    EDGEFL_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json /app/.npmrc ./
COPY --from=build /app/libs ./libs
COPY --from=build /app/services ./services
COPY --from=build /app/tools ./tools
COPY --from=build /app/patches ./patches
RUN npm ci --omit=dev --no-audit --no-fund \
 && mkdir -p /data && chown node:node /data
USER node
VOLUME /data
ARG SERVICE=gateway
ENV EDGEFL_SERVICE=${SERVICE}
CMD ["sh", "-c", "exec node services/$EDGEFL_SERVICE/dist/main.js"]
