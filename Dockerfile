# ssf-broker: build the TypeScript, then run on a slim Node 24 image.
FROM node:24-bookworm-slim AS build
WORKDIR /app
# The receiver SDK is a workspace: npm ci needs its manifest.
COPY package.json package-lock.json ./
COPY packages/receiver/package.json packages/receiver/tsconfig.json ./packages/receiver/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY openapi ./openapi
COPY package.json ./
USER node
EXPOSE 8080
CMD ["node", "dist/main.js"]
