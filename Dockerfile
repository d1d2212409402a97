# The Berth image: the server (`berth serve`) and the static berth-init that sandbox Pods copy in
# (BERTH_K8S_INIT_IMAGE). Build: `docker build -t berth:0.1.0 .`
# Not built in CI: the build machine reaches no container registry for the base image. The
# manifests that run it (deploy/kubernetes) are validated by test/deploy/manifests.test.ts.

FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc g++ make python3 libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
COPY packages ./packages
RUN npm ci --ignore-scripts=false && npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /opt/berth/app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/packages ./packages
# Where sandbox Pods' initContainers copy them from (readable by uid 1000): berth-init, and the
# SDK's native `claude` for agent sessions (BERTH_K8S_CLAUDE_PATH's default).
COPY --from=build /src/packages/supervisor/build/berth-init /opt/berth/berth-init
COPY --from=build /src/node_modules/@anthropic-ai/claude-agent-sdk-linux-x64/claude /opt/berth/claude
RUN chmod 0755 /opt/berth/berth-init /opt/berth/claude && mkdir -p /var/lib/berth && chown 1000:1000 /var/lib/berth
# The Kubernetes driver needs no root on the server: it only talks to the API server.
USER 1000:1000
ENV BERTH_HOST=0.0.0.0 BERTH_DATA_DIR=/var/lib/berth BERTH_RUNTIME=kubernetes BERTH_PREVIEW_PORT=7073
# The API and dashboard; the preview listener (sandboxes' exposed ports, an origin of its own).
EXPOSE 7070 7073
ENTRYPOINT ["node", "packages/cli/dist/main.js", "serve"]
