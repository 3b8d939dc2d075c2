/**
 * A one-page pull (50 albums from the emulator, to /dev/null) through the bin, as a scheduled
 * small pull or `check` pays it: mostly start-up. With several build directories (each with its
 * own dist/, e.g. a git worktree of an older commit), their runs alternate, so they share the
 * machine's noise. Medians of `runs`.
 *
 *   npx node bench/one-page.ts [runs=15] [build dir…]   (default: this checkout)
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startEmulator } from '../src/emulator/server.ts';
import { binOf, median, PATH, root } from './harness.ts';

const run = promisify(execFile);
const runs = Number(process.argv[2] ?? 15);
const builds = process.argv.length > 3 ? process.argv.slice(3) : [root];
const emulator = await startEmulator({ albums: 50 });
const env = {
  ...process.env,
  SPOTIFY_API_URL: emulator.url,
  SPOTIFY_ACCOUNTS_URL: emulator.url,
  SPOTIFY_CLIENT_ID: 'emulator-id',
  SPOTIFY_CLIENT_SECRET: 'emulator-secret',
  PATH,
};
const times = new Map<string, number[]>(builds.map((b) => [b, []]));
try {
  for (let i = 0; i < runs; i++) {
    for (const build of builds) {
      const started = performance.now();
      await run(binOf(build), ['new-releases', '--out', '/dev/null', '--quiet'], { env });
      times.get(build)?.push(performance.now() - started);
    }
  }
} finally {
  await emulator.stop();
}
for (const [build, ms] of times) {
  ms.sort((a, b) => a - b);
  console.log(
    `${build}: median ${median(ms).toFixed(0)} ms (min ${ms[0]?.toFixed(0)}, max ${ms.at(-1)?.toFixed(0)}), ${runs} runs`,
  );
}
