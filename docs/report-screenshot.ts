/**
 * Makes docs/report.png, docs/report.md's picture of a --report page: the emulator (three markets,
 * one 429 with Retry-After: 1, some latency), that page's command through the built CLI, and
 * the page opened from file:// in headless Chromium (test/helpers/browser.ts), 1000 px wide.
 *
 *   npm run build && npx node docs/report-screenshot.ts
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startEmulator } from '../src/emulator/server.ts';
import { Browser } from '../test/helpers/browser.ts';
import { emulatorEnv, runCli } from '../test/helpers/cli.ts';

const target = fileURLToPath(new URL('./report.png', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'spotify-batch-screenshot-'));
const emulator = await startEmulator({
  albums: 300,
  latencyMs: 40,
  latencyJitterMs: 40,
  faults: [{ kind: '429', times: 1, offset: 150, retryAfter: '1' }],
});
const browser = await Browser.launch();
try {
  const result = await runCli(
    [
      'new-releases',
      '--market',
      'SE,DE,US',
      '--out',
      'out/{market}.csv',
      '--report',
      'out/report.html',
      '--concurrency',
      '2',
    ],
    { env: emulatorEnv(emulator), cwd: dir },
  );
  if (result.status !== 0) throw new Error(result.stderr);
  const page = await browser.newPage();
  await page.goto(pathToFileURL(join(dir, 'out/report.html')).href);
  if (page.log.errors.length > 0 || page.log.requests.length !== 1) {
    throw new Error(`the page misbehaved: ${JSON.stringify(page.log)}`);
  }
  await writeFile(target, await page.screenshot(1000));
  process.stdout.write(`${target}\n`);
} finally {
  await browser.close();
  await emulator.stop();
  await rm(dir, { recursive: true, force: true });
}
