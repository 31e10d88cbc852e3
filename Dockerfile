# syntax=docker/dockerfile:1
# One image for the whole mesh: `docker run IMAGE <service>` runs one service (edge, connection,
# message-store, routing, presence, group, push), `IMAGE migrate` applies every store's
# migrations and exits (the Helm chart's pre-install/pre-upgrade Job). Same entry point as
# `make cluster`: node dist/cmd/chat.js. Base images are pinned by version; the Node version is
# the one package.json pins (node@24.21.0). Checked by tests/deploy/dockerfile.test.ts.

# Build: the full toolchain, TypeScript compiled to dist/.
FROM node:24.21.0-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the image's Node is the pinned one, so the `node` and buf packages' installers
# are not needed; gen/ is committed, so buf never runs here.
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
COPY tsconfig.json ./
COPY gen ./gen
COPY packages ./packages
COPY services ./services
COPY cmd ./cmd
COPY tests ./tests
COPY bench ./bench
RUN node_modules/.bin/tsc -p tsconfig.json

# Production dependencies only.
FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error && npm cache clean --force

# Runtime: compiled services and production dependencies, no compiler, no tests, non-root.
FROM node:24.21.0-bookworm-slim
# NODE_OPTIONS: a 16 MB young generation and one V8 helper thread, as the local cluster runs its
# services (cmd/cluster.ts SERVICE_NODE_OPTIONS); a service's settings.NODE_OPTIONS in the chart
# replaces it.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=16 --v8-pool-size=1" \
    HOST=0.0.0.0 \
    PUBLIC_HOST=0.0.0.0 \
    DATA_DIR=/tmp/chat-data
WORKDIR /app
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist/cmd ./dist/cmd
COPY --from=build /src/dist/gen ./dist/gen
COPY --from=build /src/dist/packages ./dist/packages
COPY --from=build /src/dist/services ./dist/services
COPY package.json ./
# uid/gid 1000 is the image's unprivileged `node` user; numeric so runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080 9100 9101 9102 9103 9104 9105 9106
ENTRYPOINT ["node", "dist/cmd/chat.js"]
CMD ["help"]
