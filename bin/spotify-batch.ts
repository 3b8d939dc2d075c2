#!/usr/bin/env node
/**
 * The `spotify-batch` command. It checks the Node version before importing anything: the
 * dependencies (undici first) fail on older Nodes with stack traces that name none of this.
 */
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `spotify-batch: error: Node ${process.versions.node} is too old: it needs Node 22.19 or newer (22 LTS, or 24)\n`,
  );
  process.exit(2);
}

const { main } = await import('../src/cli/main.ts');
await main();
