# syntax=docker/dockerfile:1
# spotify-batch as a batch container: `docker run --rm -e SPOTIFY_CLIENT_ID -e SPOTIFY_CLIENT_SECRET
#   -e AWS_REGION ... IMAGE new-releases --out s3://bucket/key.csv`
# Not built on the machine this project is developed on (no Docker engine there); the install
# path it runs (npm ci --omit=dev, then the built CLI) is exercised by test/package.test.ts.

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc tsconfig.json tsconfig.build.json ./
# --ignore-scripts: the image already has Node 24; the node@24 devDependency is for checkouts.
RUN npm ci --ignore-scripts
COPY src src
COPY bin bin
COPY scripts/help.ts scripts/help.ts
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json && node scripts/help.ts

FROM node:24-slim
# tini as PID 1 forwards SIGTERM/SIGINT to Node, so `docker stop` and Kubernetes aborts the S3
# upload cleanly (exit 143) instead of being killed after the grace period.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini ca-certificates \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
# V8's young generation is fixed by the command's shebang (--max-semi-space-size=8), so it is
# the same inside a memory limit as outside; see bench/README.md, "Memory in a container".
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist/src dist/src
COPY --from=build /app/dist/bin dist/bin
RUN chmod 755 dist/bin/spotify-batch.js && ln -s /app/dist/bin/spotify-batch.js /usr/local/bin/spotify-batch
USER node
ENTRYPOINT ["/usr/bin/tini", "--", "spotify-batch"]
CMD ["--help"]
